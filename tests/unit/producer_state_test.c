/* test_replica: the idempotent producer's per-partition state
 * (broker/replica/producer_state.c) against Kafka's rules, and against a
 * straightforward reference model under random batches. */
#include <CUnit/Basic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "producer_state.h"

/* Appends [first_seq, last_seq] as a leader would: checked, then recorded
 * at next_offset. Returns the verdict. */
static producer_state_verdict_t leader_append(producer_state_t *s, int64_t pid, int16_t epoch,
                                              int32_t first_seq, int32_t last_seq,
                                              int64_t *next_offset, int64_t ts)
{
    producer_state_duplicate_t dup;
    producer_state_verdict_t v =
        producer_state_check(s, pid, epoch, first_seq, last_seq, false, &dup);
    if (v == PRODUCER_STATE_OK) {
        int64_t records = (int64_t)last_seq - first_seq + 1;
        if (records <= 0)
            records += (int64_t)INT32_MAX + 1;
        producer_state_update(s, pid, epoch, first_seq, last_seq, *next_offset,
                              *next_offset + records - 1, ts, false);
        *next_offset += records;
    }
    return v;
}

static producer_state_verdict_t check(const producer_state_t *s, int64_t pid, int16_t epoch,
                                      int32_t first_seq, int32_t last_seq)
{
    producer_state_duplicate_t dup;
    return producer_state_check(s, pid, epoch, first_seq, last_seq, false, &dup);
}

static void test_first_and_consecutive(void)
{
    producer_state_t *s = producer_state_new();
    int64_t off = 100;
    CU_ASSERT_EQUAL(producer_state_count(s), 0);
    CU_ASSERT_EQUAL(leader_append(s, 7, 0, 0, 4, &off, 1), PRODUCER_STATE_OK);
    CU_ASSERT_EQUAL(producer_state_count(s), 1);
    CU_ASSERT_EQUAL(leader_append(s, 7, 0, 5, 5, &off, 2), PRODUCER_STATE_OK);
    CU_ASSERT_EQUAL(leader_append(s, 7, 0, 6, 9, &off, 3), PRODUCER_STATE_OK);
    CU_ASSERT_EQUAL(off, 110);
    /* another producer is independent */
    CU_ASSERT_EQUAL(leader_append(s, 8, 3, 0, 0, &off, 3), PRODUCER_STATE_OK);
    CU_ASSERT_EQUAL(producer_state_count(s), 2);
    CU_ASSERT_EQUAL(check(s, 7, 0, 10, 10), PRODUCER_STATE_OK);
    CU_ASSERT_EQUAL(check(s, 8, 3, 1, 1), PRODUCER_STATE_OK);
    producer_state_free(s);
}

static void test_duplicates_of_last_five(void)
{
    producer_state_t *s = producer_state_new();
    int64_t off = 1000;
    int64_t first_offsets[7];
    /* seven batches of three records: seq 3i..3i+2 */
    for (int i = 0; i < 7; i++) {
        first_offsets[i] = off;
        CU_ASSERT_EQUAL(leader_append(s, 1, 2, 3 * i, 3 * i + 2, &off, i), PRODUCER_STATE_OK);
        off += 10; /* other producers' batches in between */
    }
    for (int i = 2; i < 7; i++) {
        producer_state_duplicate_t dup = {-1, -1};
        CU_ASSERT_EQUAL(producer_state_check(s, 1, 2, 3 * i, 3 * i + 2, false, &dup),
                        PRODUCER_STATE_DUPLICATE);
        CU_ASSERT_EQUAL(dup.first_offset, first_offsets[i]);
        CU_ASSERT_EQUAL(dup.last_offset, first_offsets[i] + 2);
    }
    /* the 6th and 7th newest are no longer retained: out of order (Kafka:
     * findDuplicateBatch misses, then checkSequence fails) */
    CU_ASSERT_EQUAL(check(s, 1, 2, 3, 5), PRODUCER_STATE_OUT_OF_ORDER_SEQUENCE);
    CU_ASSERT_EQUAL(check(s, 1, 2, 0, 2), PRODUCER_STATE_OUT_OF_ORDER_SEQUENCE);
    /* same first sequence, other range: not a duplicate */
    CU_ASSERT_EQUAL(check(s, 1, 2, 18, 19), PRODUCER_STATE_OUT_OF_ORDER_SEQUENCE);
    /* a duplicate needs the same epoch: with a newer one it is a new
     * sequence that does not start at 0 */
    CU_ASSERT_EQUAL(check(s, 1, 3, 18, 20), PRODUCER_STATE_OUT_OF_ORDER_SEQUENCE);
    producer_state_free(s);
}

static void test_gap_and_epochs(void)
{
    producer_state_t *s = producer_state_new();
    int64_t off = 0;
    CU_ASSERT_EQUAL(leader_append(s, 5, 4, 0, 9, &off, 0), PRODUCER_STATE_OK);
    /* a gap, and a sequence behind the last */
    CU_ASSERT_EQUAL(check(s, 5, 4, 11, 11), PRODUCER_STATE_OUT_OF_ORDER_SEQUENCE);
    CU_ASSERT_EQUAL(check(s, 5, 4, 5, 12), PRODUCER_STATE_OUT_OF_ORDER_SEQUENCE);
    /* older epoch: fenced whatever the sequence */
    CU_ASSERT_EQUAL(check(s, 5, 3, 10, 10), PRODUCER_STATE_INVALID_PRODUCER_EPOCH);
    CU_ASSERT_EQUAL(check(s, 5, 3, 0, 0), PRODUCER_STATE_INVALID_PRODUCER_EPOCH);
    /* newer epoch: must start at 0 */
    CU_ASSERT_EQUAL(check(s, 5, 5, 10, 10), PRODUCER_STATE_OUT_OF_ORDER_SEQUENCE);
    CU_ASSERT_EQUAL(check(s, 5, 5, 0, 3), PRODUCER_STATE_OK);
    CU_ASSERT_EQUAL(leader_append(s, 5, 5, 0, 3, &off, 1), PRODUCER_STATE_OK);
    /* the new epoch reset the retained batches and the sequence */
    CU_ASSERT_EQUAL(check(s, 5, 5, 0, 3), PRODUCER_STATE_DUPLICATE);
    CU_ASSERT_EQUAL(check(s, 5, 5, 4, 4), PRODUCER_STATE_OK);
    CU_ASSERT_EQUAL(check(s, 5, 4, 0, 9), PRODUCER_STATE_INVALID_PRODUCER_EPOCH);
    producer_state_free(s);
}

/* Kafka 2.5+ (KIP-360): no UNKNOWN_PRODUCER_ID for data batches; an
 * unknown producer is accepted with any sequence. */
static void test_unknown_producer(void)
{
    producer_state_t *s = producer_state_new();
    int64_t off = 0;
    CU_ASSERT_EQUAL(check(s, 9, 0, 0, 0), PRODUCER_STATE_OK);
    CU_ASSERT_EQUAL(check(s, 9, 0, 42, 50), PRODUCER_STATE_OK);
    CU_ASSERT_EQUAL(check(s, 9, 7, 42, 50), PRODUCER_STATE_OK);
    CU_ASSERT_EQUAL(leader_append(s, 9, 7, 42, 50, &off, 0), PRODUCER_STATE_OK);
    CU_ASSERT_EQUAL(check(s, 9, 7, 51, 51), PRODUCER_STATE_OK);
    CU_ASSERT_EQUAL(check(s, 9, 7, 42, 50), PRODUCER_STATE_DUPLICATE);
    CU_ASSERT_EQUAL(check(s, 9, 7, 52, 52), PRODUCER_STATE_OUT_OF_ORDER_SEQUENCE);
    producer_state_free(s);
}

static void test_sequence_wrap(void)
{
    producer_state_t *s = producer_state_new();
    int64_t off = 0;
    CU_ASSERT_EQUAL(leader_append(s, 3, 1, INT32_MAX - 4, INT32_MAX, &off, 0), PRODUCER_STATE_OK);
    CU_ASSERT_EQUAL(check(s, 3, 1, INT32_MAX, INT32_MAX), PRODUCER_STATE_OUT_OF_ORDER_SEQUENCE);
    CU_ASSERT_EQUAL(check(s, 3, 1, 1, 1), PRODUCER_STATE_OUT_OF_ORDER_SEQUENCE);
    CU_ASSERT_EQUAL(leader_append(s, 3, 1, 0, 2, &off, 1), PRODUCER_STATE_OK);
    /* a batch straddling the wrap: INT32_MAX - 1, INT32_MAX, 0, 1 */
    producer_state_t *w = producer_state_new();
    int64_t woff = 0;
    CU_ASSERT_EQUAL(leader_append(w, 3, 1, INT32_MAX - 5, INT32_MAX - 2, &woff, 0),
                    PRODUCER_STATE_OK);
    CU_ASSERT_EQUAL(leader_append(w, 3, 1, INT32_MAX - 1, 1, &woff, 0), PRODUCER_STATE_OK);
    CU_ASSERT_EQUAL(woff, 8);
    producer_state_duplicate_t dup;
    CU_ASSERT_EQUAL(producer_state_check(w, 3, 1, INT32_MAX - 1, 1, false, &dup),
                    PRODUCER_STATE_DUPLICATE);
    CU_ASSERT_EQUAL(dup.first_offset, 4);
    CU_ASSERT_EQUAL(dup.last_offset, 7);
    CU_ASSERT_EQUAL(check(w, 3, 1, 2, 2), PRODUCER_STATE_OK);
    producer_state_free(w);
    producer_state_free(s);
}

/* A follower applies the leader's appended batches unchecked and then
 * answers as the leader would, once it leads. */
static void test_follower_reproduces_leader(void)
{
    producer_state_t *leader = producer_state_new();
    producer_state_t *follower = producer_state_new();
    struct {
        int64_t pid;
        int16_t epoch;
        int32_t first_seq, last_seq;
    } produced[] = {
        {1, 0, 0, 4},   {2, 0, 0, 0}, {1, 0, 5, 5},   {1, 0, 5, 5},  {2, 0, 2, 2},  {1, 1, 0, 1},
        {1, 0, 6, 6},   {2, 0, 1, 3}, {3, 9, 0, 0},   {1, 1, 2, 2},  {1, 1, 3, 3},  {1, 1, 4, 9},
        {1, 1, 10, 10}, {1, 1, 3, 3}, {1, 1, 11, 12}, {3, 10, 1, 1}, {3, 10, 0, 0},
    };
    int64_t off = 0;
    for (size_t i = 0; i < sizeof(produced) / sizeof(produced[0]); i++) {
        int64_t before = off;
        producer_state_verdict_t v =
            leader_append(leader, produced[i].pid, produced[i].epoch, produced[i].first_seq,
                          produced[i].last_seq, &off, (int64_t)i);
        if (v == PRODUCER_STATE_OK)
            producer_state_update(follower, produced[i].pid, produced[i].epoch,
                                  produced[i].first_seq, produced[i].last_seq, before, off - 1,
                                  (int64_t)i, false);
    }
    CU_ASSERT_EQUAL(producer_state_count(leader), producer_state_count(follower));
    for (int64_t pid = 1; pid <= 4; pid++)
        for (int16_t epoch = 0; epoch <= 11; epoch++)
            for (int32_t first = 0; first <= 13; first++)
                for (int32_t last = first; last <= 13; last++) {
                    producer_state_duplicate_t dl = {-1, -1}, df = {-1, -1};
                    producer_state_verdict_t vl =
                        producer_state_check(leader, pid, epoch, first, last, false, &dl);
                    producer_state_verdict_t vf =
                        producer_state_check(follower, pid, epoch, first, last, false, &df);
                    CU_ASSERT_EQUAL(vl, vf);
                    CU_ASSERT_EQUAL(dl.first_offset, df.first_offset);
                    CU_ASSERT_EQUAL(dl.last_offset, df.last_offset);
                }
    /* a follower takes an older epoch as it comes (Kafka only warns) */
    producer_state_update(follower, 1, 0, 7, 7, off, off, 99, false);
    CU_ASSERT_EQUAL(check(follower, 1, 0, 8, 8), PRODUCER_STATE_OK);
    CU_ASSERT_EQUAL(check(follower, 1, 1, 13, 13), PRODUCER_STATE_OUT_OF_ORDER_SEQUENCE);
    producer_state_free(leader);
    producer_state_free(follower);
}

static void test_expiry(void)
{
    producer_state_t *s = producer_state_new();
    int64_t off = 0;
    CU_ASSERT_EQUAL(leader_append(s, 1, 0, 0, 0, &off, 1000), PRODUCER_STATE_OK);
    CU_ASSERT_EQUAL(leader_append(s, 2, 0, 0, 0, &off, 2000), PRODUCER_STATE_OK);
    CU_ASSERT_EQUAL(leader_append(s, 3, 0, 0, 0, &off, 500), PRODUCER_STATE_OK);
    CU_ASSERT_EQUAL(leader_append(s, 1, 0, 1, 1, &off, 3000), PRODUCER_STATE_OK);
    /* idle for less than the expiration: kept; exactly it: dropped */
    CU_ASSERT_EQUAL(producer_state_expire(s, 1499, 1000), 0);
    CU_ASSERT_EQUAL(producer_state_expire(s, 1500, 1000), 1);
    CU_ASSERT_EQUAL(producer_state_count(s), 2);
    /* producer 3 is unknown again: any sequence goes, no duplicate */
    CU_ASSERT_EQUAL(check(s, 3, 0, 0, 0), PRODUCER_STATE_OK);
    CU_ASSERT_EQUAL(check(s, 2, 0, 0, 0), PRODUCER_STATE_DUPLICATE);
    /* the last batch's timestamp counts, not the first */
    CU_ASSERT_EQUAL(producer_state_expire(s, 3500, 1000), 1);
    CU_ASSERT_EQUAL(check(s, 2, 0, 0, 0), PRODUCER_STATE_OK);
    CU_ASSERT_EQUAL(check(s, 1, 0, 1, 1), PRODUCER_STATE_DUPLICATE);
    CU_ASSERT_EQUAL(producer_state_expire(s, 4000, 1000), 1);
    CU_ASSERT_EQUAL(producer_state_count(s), 0);
    /* the table works after emptying */
    CU_ASSERT_EQUAL(leader_append(s, 4, 0, 0, 0, &off, 5000), PRODUCER_STATE_OK);
    CU_ASSERT_EQUAL(check(s, 4, 0, 0, 0), PRODUCER_STATE_DUPLICATE);
    producer_state_free(s);
}

static void test_bound_evicts_least_recently_updated(void)
{
    producer_state_t *s = producer_state_new();
    for (int64_t pid = 0; pid < PRODUCER_STATE_MAX_PRODUCERS; pid++)
        producer_state_update(s, pid * 1000, 0, 0, 0, pid, pid, 0, false);
    CU_ASSERT_EQUAL(producer_state_count(s), PRODUCER_STATE_MAX_PRODUCERS);
    /* producer 0 is updated again, so producer 1 becomes the oldest */
    producer_state_update(s, 0, 0, 1, 1, 20000, 20000, 0, false);
    producer_state_update(s, 1000 * PRODUCER_STATE_MAX_PRODUCERS, 0, 0, 0, 20001, 20001, 0, false);
    CU_ASSERT_EQUAL(producer_state_count(s), PRODUCER_STATE_MAX_PRODUCERS);
    CU_ASSERT_EQUAL(check(s, 0, 0, 0, 0), PRODUCER_STATE_DUPLICATE);
    CU_ASSERT_EQUAL(check(s, 1000, 0, 0, 0), PRODUCER_STATE_OK);
    CU_ASSERT_EQUAL(check(s, 2000, 0, 0, 0), PRODUCER_STATE_DUPLICATE);
    producer_state_update(s, 1000 * PRODUCER_STATE_MAX_PRODUCERS + 1, 0, 0, 0, 20002, 20002, 0,
                          false);
    CU_ASSERT_EQUAL(check(s, 2000, 0, 0, 0), PRODUCER_STATE_OK);
    CU_ASSERT_EQUAL(check(s, 3000, 0, 0, 0), PRODUCER_STATE_DUPLICATE);
    CU_ASSERT_EQUAL(producer_state_count(s), PRODUCER_STATE_MAX_PRODUCERS);
    /* every producer still tracked answers with its own offsets */
    int32_t mismatches = 0;
    for (int64_t pid = 3; pid < PRODUCER_STATE_MAX_PRODUCERS; pid++) {
        producer_state_duplicate_t dup;
        if (producer_state_check(s, pid * 1000, 0, 0, 0, false, &dup) != PRODUCER_STATE_DUPLICATE ||
            dup.first_offset != pid)
            mismatches++;
    }
    CU_ASSERT_EQUAL(mismatches, 0);
    producer_state_free(s);
}

/* ---- Randomized comparison with a reference model ---- */

#define MODEL_PRODUCERS 24

typedef struct model_batch {
    int32_t first_seq, last_seq;
    int64_t first_offset, last_offset;
} model_batch_t;

typedef struct model_producer {
    bool known;
    int16_t epoch;
    int32_t nbatches; /* oldest first */
    model_batch_t batches[PRODUCER_STATE_BATCHES_RETAINED];
    int64_t last_ts;
} model_producer_t;

static producer_state_verdict_t model_check(const model_producer_t *p, int16_t epoch,
                                            int32_t first_seq, int32_t last_seq,
                                            producer_state_duplicate_t *dup)
{
    if (!p->known)
        return PRODUCER_STATE_OK;
    if (epoch == p->epoch)
        for (int32_t i = 0; i < p->nbatches; i++)
            if (p->batches[i].first_seq == first_seq && p->batches[i].last_seq == last_seq) {
                dup->first_offset = p->batches[i].first_offset;
                dup->last_offset = p->batches[i].last_offset;
                return PRODUCER_STATE_DUPLICATE;
            }
    if (epoch < p->epoch)
        return PRODUCER_STATE_INVALID_PRODUCER_EPOCH;
    if (epoch > p->epoch)
        return first_seq == 0 ? PRODUCER_STATE_OK : PRODUCER_STATE_OUT_OF_ORDER_SEQUENCE;
    int32_t last = p->batches[p->nbatches - 1].last_seq;
    int32_t expected = last == INT32_MAX ? 0 : last + 1;
    return first_seq == expected ? PRODUCER_STATE_OK : PRODUCER_STATE_OUT_OF_ORDER_SEQUENCE;
}

static void model_update(model_producer_t *p, int16_t epoch, model_batch_t batch, int64_t ts)
{
    if (!p->known || p->epoch != epoch)
        p->nbatches = 0;
    p->known = true;
    p->epoch = epoch;
    if (p->nbatches == PRODUCER_STATE_BATCHES_RETAINED) {
        memmove(&p->batches[0], &p->batches[1], sizeof(p->batches[0]) * (size_t)(p->nbatches - 1));
        p->nbatches--;
    }
    p->batches[p->nbatches++] = batch;
    p->last_ts = ts;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint32_t rng(uint32_t bound)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % bound);
}

static int32_t seq_add(int32_t seq, int32_t n)
{
    int64_t sum = (int64_t)seq + n;
    return (int32_t)(sum > INT32_MAX ? sum - INT32_MAX - 1 : sum);
}

static void test_random_against_model(void)
{
    producer_state_t *s = producer_state_new();
    model_producer_t model[MODEL_PRODUCERS];
    memset(model, 0, sizeof(model));
    int64_t off = 0, now = 0;
    int32_t verdicts[4] = {0};
    int32_t mismatches = 0;
    for (int step = 0; step < 20000; step++) {
        now += rng(50);
        if (rng(200) == 0) {
            int64_t expiration = 500 + rng(3000);
            int32_t expected = 0;
            for (int i = 0; i < MODEL_PRODUCERS; i++)
                if (model[i].known && now - model[i].last_ts >= expiration) {
                    model[i].known = false;
                    expected++;
                }
            if (producer_state_expire(s, now, expiration) != expected)
                mismatches++;
            continue;
        }
        int pid_index = (int)rng(MODEL_PRODUCERS);
        model_producer_t *p = &model[pid_index];
        /* ids spread over the range; half the producers live near the wrap */
        int64_t pid = (int64_t)pid_index * 7919 + 3;
        int16_t epoch = p->known ? p->epoch : (int16_t)rng(3);
        uint32_t epoch_roll = rng(20);
        if (epoch_roll == 0)
            epoch++;
        else if (epoch_roll == 1 && epoch > 0)
            epoch--;
        int32_t first_seq;
        uint32_t seq_roll = rng(10);
        if (p->known && p->nbatches > 0 && seq_roll < 6)
            first_seq = seq_add(p->batches[p->nbatches - 1].last_seq, 1);
        else if (p->known && p->nbatches > 0 && seq_roll < 8)
            first_seq = p->batches[rng((uint32_t)p->nbatches)].first_seq;
        else if (seq_roll == 8)
            first_seq = pid_index % 2 ? INT32_MAX - (int32_t)rng(8) : 0;
        else
            first_seq = (int32_t)rng(64);
        int32_t records = 1 + (int32_t)rng(4);
        int32_t last_seq = seq_add(first_seq, records - 1);
        producer_state_duplicate_t dup = {-1, -1}, model_dup = {-1, -1};
        producer_state_verdict_t v =
            producer_state_check(s, pid, epoch, first_seq, last_seq, false, &dup);
        producer_state_verdict_t mv = model_check(p, epoch, first_seq, last_seq, &model_dup);
        if (v != mv || dup.first_offset != model_dup.first_offset ||
            dup.last_offset != model_dup.last_offset)
            mismatches++;
        verdicts[mv]++;
        /* leaders append what passes; now and then a follower's unchecked
         * append of whatever its leader wrote */
        if (mv == PRODUCER_STATE_OK || rng(30) == 0) {
            model_batch_t b = {first_seq, last_seq, off, off + records - 1};
            int64_t ts = now + rng(20);
            producer_state_update(s, pid, epoch, first_seq, last_seq, off, off + records - 1, ts,
                                  false);
            model_update(p, epoch, b, ts);
            off += records;
        }
        int32_t known = 0;
        for (int i = 0; i < MODEL_PRODUCERS; i++)
            known += model[i].known;
        if (producer_state_count(s) != known)
            mismatches++;
    }
    CU_ASSERT_EQUAL(mismatches, 0);
    /* the walk reached every verdict */
    for (int i = 0; i < 4; i++)
        CU_ASSERT_TRUE(verdicts[i] > 50);
    producer_state_free(s);
}

/* ---- transactions ---- */

static void test_transactions_and_unstable_offsets(void)
{
    producer_state_t *s = producer_state_new();
    producer_state_completed_txn_t done;
    /* 1 writes 0-2 in a transaction, 2 writes 3-4 in one, 3 writes 5 plainly. */
    producer_state_update(s, 1, 0, 0, 2, 0, 2, 10, true);
    producer_state_update(s, 2, 0, 0, 1, 3, 4, 10, true);
    producer_state_update(s, 3, 0, 0, 0, 5, 5, 10, false);
    CU_ASSERT_EQUAL(producer_state_ongoing_count(s), 2);
    CU_ASSERT_EQUAL(producer_state_first_unstable_offset(s), 0);
    /* Inside its transaction, a producer may not write outside it. */
    producer_state_duplicate_t dup;
    CU_ASSERT_EQUAL(producer_state_check(s, 1, 0, 3, 3, false, &dup),
                    PRODUCER_STATE_INVALID_TXN_STATE);
    CU_ASSERT_EQUAL(producer_state_check(s, 1, 0, 3, 3, true, &dup), PRODUCER_STATE_OK);
    /* Markers: an old epoch or coordinator epoch is refused, changing nothing. */
    CU_ASSERT_EQUAL(producer_state_end_txn(s, 1, 0, 5, 6, 11, true, &done), PRODUCER_STATE_OK);
    CU_ASSERT_EQUAL(done.first_offset, 0);
    CU_ASSERT_EQUAL(done.last_offset, 6);
    CU_ASSERT_EQUAL(done.last_stable_offset, 3); /* producer 2's transaction is next */
    CU_ASSERT_EQUAL(producer_state_check_end_txn(s, 1, 0, 4),
                    PRODUCER_STATE_TRANSACTION_COORDINATOR_FENCED);
    producer_state_update(s, 1, 1, 0, 0, 7, 7, 12, false);
    CU_ASSERT_EQUAL(producer_state_end_txn(s, 1, 0, 5, 8, 12, true, &done),
                    PRODUCER_STATE_INVALID_PRODUCER_EPOCH);
    /* Producer 1's completed transaction stays unstable until the high
     * watermark passes its marker. */
    CU_ASSERT_EQUAL(producer_state_first_unstable_offset(s), 0);
    producer_state_on_high_watermark(s, 6);
    CU_ASSERT_EQUAL(producer_state_first_unstable_offset(s), 0);
    producer_state_on_high_watermark(s, 7);
    CU_ASSERT_EQUAL(producer_state_first_unstable_offset(s), 3);
    /* A marker for a producer with nothing written in its transaction
     * completes nothing (no index entry, no effect on readers). */
    CU_ASSERT_EQUAL(producer_state_end_txn(s, 3, 0, 0, 8, 13, true, &done), PRODUCER_STATE_OK);
    CU_ASSERT_EQUAL(done.first_offset, -1);
    CU_ASSERT_EQUAL(producer_state_end_txn(s, 2, 0, 0, 9, 13, true, &done), PRODUCER_STATE_OK);
    CU_ASSERT_EQUAL(done.first_offset, 3);
    CU_ASSERT_EQUAL(done.last_stable_offset, 10);
    CU_ASSERT_EQUAL(producer_state_ongoing_count(s), 0);
    producer_state_on_high_watermark(s, 10);
    CU_ASSERT_EQUAL(producer_state_first_unstable_offset(s), -1);
    /* Expiry keeps a producer inside a transaction. */
    producer_state_update(s, 4, 0, 0, 0, 10, 10, 0, true);
    CU_ASSERT_EQUAL(producer_state_expire(s, 1000000, 10), 3);
    CU_ASSERT_EQUAL(producer_state_count(s), 1);
    CU_ASSERT_EQUAL(producer_state_first_unstable_offset(s), 10);
    producer_state_free(s);
}

static void test_snapshot_round_trip(void)
{
    producer_state_t *s = producer_state_new();
    producer_state_update(s, 7, 2, 10, 14, 100, 104, 1000, false);
    producer_state_update(s, 9, 0, 0, 1, 105, 106, 1001, true); /* ongoing */
    producer_state_update(s, 8, 1, 0, 0, 107, 107, 1002, true); /* ongoing */
    producer_state_completed_txn_t done;
    producer_state_end_txn(s, 8, 1, 3, 108, 1003, false, &done);
    size_t len = producer_state_snapshot_size(s);
    CU_ASSERT_EQUAL(len, 6 + 4 + 3 * 46);
    uint8_t *buf = malloc(len);
    producer_state_snapshot_write(s, buf);
    CU_ASSERT_EQUAL(buf[0], 0);
    CU_ASSERT_EQUAL(buf[1], 1); /* version 1 */
    /* Kafka's layout: the entry count right after version and CRC, then the
     * entries oldest first: producer 7's id, epoch and last sequence. */
    static const uint8_t count_and_first[] = {0, 0, 0, 3, 0, 0, 0, 0, 0,
                                              0, 0, 7, 0, 2, 0, 0, 0, 14};
    CU_ASSERT_EQUAL(memcmp(buf + 6, count_and_first, sizeof(count_and_first)), 0);

    producer_state_t *t = producer_state_new();
    CU_ASSERT_EQUAL_FATAL(producer_state_snapshot_load(t, buf, len), 0);
    CU_ASSERT_EQUAL(producer_state_count(t), 3);
    /* The newest batch of each producer is a duplicate; sequences go on. */
    CU_ASSERT_EQUAL(check(t, 7, 2, 10, 14), PRODUCER_STATE_DUPLICATE);
    CU_ASSERT_EQUAL(check(t, 7, 2, 15, 15), PRODUCER_STATE_OK);
    CU_ASSERT_EQUAL(check(t, 7, 1, 15, 15), PRODUCER_STATE_INVALID_PRODUCER_EPOCH);
    /* The ongoing transaction, and the coordinator epoch of the marker. */
    CU_ASSERT_EQUAL(producer_state_ongoing_count(t), 1);
    CU_ASSERT_EQUAL(producer_state_first_unstable_offset(t), 105);
    CU_ASSERT_EQUAL(producer_state_check_end_txn(t, 8, 1, 2),
                    PRODUCER_STATE_TRANSACTION_COORDINATOR_FENCED);
    /* Any flipped byte, a cut or a longer file is refused; the state is
     * left empty. */
    for (size_t i = 0; i < len; i++) {
        buf[i] ^= 0x40;
        CU_ASSERT_EQUAL(producer_state_snapshot_load(t, buf, len), -1);
        CU_ASSERT_EQUAL(producer_state_count(t), 0);
        buf[i] ^= 0x40;
    }
    for (size_t cut = 0; cut < len; cut++)
        CU_ASSERT_EQUAL(producer_state_snapshot_load(t, buf, cut), -1);
    CU_ASSERT_EQUAL(producer_state_snapshot_load(t, buf, len), 0);
    producer_state_clear(t);
    CU_ASSERT_EQUAL(producer_state_count(t), 0);
    CU_ASSERT_EQUAL(producer_state_first_unstable_offset(t), -1);
    free(buf);
    producer_state_free(t);
    producer_state_free(s);
}

void producer_state_suite(void);

void producer_state_suite(void)
{
    CU_pSuite s = CU_add_suite("producer_state", NULL, NULL);
    CU_add_test(s, "first batch and consecutive batches", test_first_and_consecutive);
    CU_add_test(s, "duplicates of the last five batches", test_duplicates_of_last_five);
    CU_add_test(s, "gaps and epochs", test_gap_and_epochs);
    CU_add_test(s, "unknown producer (KIP-360)", test_unknown_producer);
    CU_add_test(s, "sequence wrap after INT32_MAX", test_sequence_wrap);
    CU_add_test(s, "follower reproduces leader", test_follower_reproduces_leader);
    CU_add_test(s, "expiry", test_expiry);
    CU_add_test(s, "bound evicts least recently updated", test_bound_evicts_least_recently_updated);
    CU_add_test(s, "random against model", test_random_against_model);
    CU_add_test(s, "transactions and unstable offsets", test_transactions_and_unstable_offsets);
    CU_add_test(s, "snapshot round trip", test_snapshot_round_trip);
}
