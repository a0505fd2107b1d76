/* CUnit tests for the transaction state machine (txn_meta.h): Kafka's
 * answers for InitProducerId (first init, bumps, KIP-360 retries and
 * fencing, epoch exhaustion and the rotation to a new producer id),
 * AddPartitionsToTxn, EndTxn in every state, the coordinator's fence, the
 * two-step prepare/complete with its validity checks, timeouts, expiry and
 * the record round trip. */
#include <CUnit/Basic.h>
#include <stdlib.h>
#include <string.h>

#include "kafka_errors.h"
#include "txn_meta.h"

void txn_meta_suite(void);

#define TP(topic, partition) ((txn_tp_view_t){(topic), strlen(topic), (partition)})

/* Applies a prepared transit as a replicated write would. */
static void complete(txn_meta_t *m, txn_transit_t *t)
{
    CU_ASSERT_TRUE(txn_meta_complete(m, t));
    CU_ASSERT_EQUAL(m->pending, TXN_NO_PENDING);
    txn_transit_free(t);
}

/* A new id initialized once: producer 100, epoch 0, Empty. */
static void init_fresh(txn_meta_t *m)
{
    txn_meta_init(m, 100, 60000, 1000);
    CU_ASSERT_EQUAL(m->producer_epoch, TXN_NO_PRODUCER_EPOCH);
    txn_init_plan_t plan;
    txn_transit_t t;
    CU_ASSERT_EQUAL_FATAL(txn_meta_prepare_init(m, 60000, -1, -1, -1, 1000, &plan, &t), KAFKA_NONE);
    CU_ASSERT_EQUAL_FATAL(plan, TXN_INIT_WRITE);
    CU_ASSERT_EQUAL(m->pending, TXN_EMPTY);
    CU_ASSERT_EQUAL(t.producer_id, 100);
    CU_ASSERT_EQUAL(t.producer_epoch, 0);
    CU_ASSERT_EQUAL(t.start_ms, -1);
    complete(m, &t);
    CU_ASSERT_EQUAL(m->producer_epoch, 0);
    CU_ASSERT_EQUAL(m->state, TXN_EMPTY);
}

/* init_fresh, then an ongoing transaction over t-0 and t-1 begun at 2000. */
static void begin_ongoing(txn_meta_t *m)
{
    init_fresh(m);
    txn_tp_view_t parts[] = {TP("t", 1), TP("t", 0)};
    bool write;
    txn_transit_t t;
    CU_ASSERT_EQUAL_FATAL(txn_meta_prepare_add(m, 100, 0, parts, 2, 2000, &write, &t), KAFKA_NONE);
    CU_ASSERT_TRUE_FATAL(write);
    complete(m, &t);
    CU_ASSERT_EQUAL(m->state, TXN_ONGOING);
}

/* ---- partition sets ---- */

static void test_tp_set(void)
{
    txn_tp_set_t s = {0};
    CU_ASSERT_TRUE(txn_tp_set_add(&s, "b", 1, 2));
    CU_ASSERT_TRUE(txn_tp_set_add(&s, "ab", 2, 0));
    CU_ASSERT_TRUE(txn_tp_set_add(&s, "a", 1, 5));
    CU_ASSERT_TRUE(txn_tp_set_add(&s, "b", 1, 1));
    CU_ASSERT_FALSE(txn_tp_set_add(&s, "b", 1, 2));
    CU_ASSERT_EQUAL_FATAL(s.count, 4);
    /* Sorted by topic bytes (a prefix first), then partition. */
    CU_ASSERT_STRING_EQUAL(s.items[0].topic, "a");
    CU_ASSERT_STRING_EQUAL(s.items[1].topic, "ab");
    CU_ASSERT_STRING_EQUAL(s.items[2].topic, "b");
    CU_ASSERT_EQUAL(s.items[2].partition, 1);
    CU_ASSERT_EQUAL(s.items[3].partition, 2);
    CU_ASSERT_EQUAL(txn_tp_set_find(&s, "ab", 2, 0), 1);
    CU_ASSERT_EQUAL(txn_tp_set_find(&s, "abc", 2, 0), 1); /* a view: only its length counts */
    CU_ASSERT_EQUAL(txn_tp_set_find(&s, "ab", 2, 1), -1);
    txn_tp_set_t c;
    txn_tp_set_copy(&c, &s);
    CU_ASSERT_TRUE(txn_tp_set_equal(&c, &s));
    CU_ASSERT_TRUE(txn_tp_set_remove(&c, "a", 1, 5));
    CU_ASSERT_FALSE(txn_tp_set_remove(&c, "a", 1, 5));
    CU_ASSERT_FALSE(txn_tp_set_equal(&c, &s));
    CU_ASSERT_TRUE(txn_tp_set_subset(&c, &s));
    CU_ASSERT_FALSE(txn_tp_set_subset(&s, &c));
    txn_tp_set_free(&c);
    txn_tp_set_free(&s);
    CU_ASSERT_EQUAL(s.count, 0);
}

/* ---- InitProducerId ---- */

static void test_init_bumps(void)
{
    txn_meta_t m;
    init_fresh(&m);
    txn_init_plan_t plan;
    txn_transit_t t;
    CU_ASSERT_EQUAL(txn_meta_prepare_init(&m, 30000, -1, -1, -1, 5000, &plan, &t), KAFKA_NONE);
    CU_ASSERT_EQUAL(plan, TXN_INIT_WRITE);
    CU_ASSERT_EQUAL(t.producer_epoch, 1);
    CU_ASSERT_EQUAL(t.last_producer_epoch, TXN_NO_PRODUCER_EPOCH);
    CU_ASSERT_EQUAL(t.timeout_ms, 30000);
    /* While the bump is being written, everything else waits. */
    txn_transit_t t2;
    bool write;
    txn_tp_view_t p = TP("t", 0);
    CU_ASSERT_EQUAL(txn_meta_prepare_init(&m, 30000, -1, -1, -1, 5000, &plan, &t2),
                    KAFKA_CONCURRENT_TRANSACTIONS);
    CU_ASSERT_EQUAL(txn_meta_prepare_add(&m, 100, 0, &p, 1, 5000, &write, &t2),
                    KAFKA_CONCURRENT_TRANSACTIONS);
    CU_ASSERT_EQUAL(txn_meta_prepare_end(&m, 100, 0, true, 5000, &write, &t2),
                    KAFKA_CONCURRENT_TRANSACTIONS);
    complete(&m, &t);
    CU_ASSERT_EQUAL(m.producer_epoch, 1);
    CU_ASSERT_EQUAL(m.timeout_ms, 30000);
    CU_ASSERT_EQUAL(m.update_ms, 5000);
    /* A failed write leaves the metadata as it was. */
    CU_ASSERT_EQUAL(txn_meta_prepare_init(&m, 30000, -1, -1, -1, 6000, &plan, &t), KAFKA_NONE);
    txn_meta_drop_pending(&m);
    txn_transit_free(&t);
    CU_ASSERT_EQUAL(m.producer_epoch, 1);
    CU_ASSERT_EQUAL(m.pending, TXN_NO_PENDING);
    txn_meta_free(&m);
}

static void test_init_kip360(void)
{
    txn_meta_t m;
    init_fresh(&m);
    txn_init_plan_t plan;
    txn_transit_t t;
    /* The current id and epoch: bump, remembering the epoch. */
    CU_ASSERT_EQUAL(txn_meta_prepare_init(&m, 60000, 100, 0, -1, 2000, &plan, &t), KAFKA_NONE);
    CU_ASSERT_EQUAL(t.producer_epoch, 1);
    CU_ASSERT_EQUAL(t.last_producer_epoch, 0);
    complete(&m, &t);
    CU_ASSERT_EQUAL(m.last_producer_epoch, 0);
    /* A retry of that call (its answer lost): the same epoch again. */
    CU_ASSERT_EQUAL(txn_meta_prepare_init(&m, 60000, 100, 0, -1, 2000, &plan, &t), KAFKA_NONE);
    CU_ASSERT_EQUAL(t.producer_epoch, 1);
    CU_ASSERT_EQUAL(t.last_producer_epoch, 0);
    complete(&m, &t);
    CU_ASSERT_EQUAL(m.producer_epoch, 1);
    /* Neither the current nor the last epoch, or another id: fenced. */
    CU_ASSERT_EQUAL(txn_meta_prepare_init(&m, 60000, 100, 5, -1, 2000, &plan, &t),
                    KAFKA_PRODUCER_FENCED);
    CU_ASSERT_EQUAL(txn_meta_prepare_init(&m, 60000, 99, 1, -1, 2000, &plan, &t),
                    KAFKA_PRODUCER_FENCED);
    CU_ASSERT_EQUAL(m.pending, TXN_NO_PENDING);
    /* An InitProducerId without them resets the last epoch: the old
     * producer's retry is fenced from then on. */
    CU_ASSERT_EQUAL(txn_meta_prepare_init(&m, 60000, -1, -1, -1, 2000, &plan, &t), KAFKA_NONE);
    complete(&m, &t);
    CU_ASSERT_EQUAL(m.producer_epoch, 2);
    CU_ASSERT_EQUAL(txn_meta_prepare_init(&m, 60000, 100, 1, -1, 2000, &plan, &t),
                    KAFKA_PRODUCER_FENCED);
    txn_meta_free(&m);

    /* A just-created id takes any expected producer (recovery from
     * UNKNOWN_PRODUCER_ID after the id expired). */
    txn_meta_init(&m, 500, 60000, 0);
    CU_ASSERT_EQUAL(txn_meta_prepare_init(&m, 60000, 123, 7, -1, 0, &plan, &t), KAFKA_NONE);
    CU_ASSERT_EQUAL(t.producer_id, 500);
    CU_ASSERT_EQUAL(t.producer_epoch, 0);
    complete(&m, &t);
    txn_meta_free(&m);
}

static void test_init_exhaustion(void)
{
    txn_meta_t m;
    init_fresh(&m);
    m.producer_epoch = INT16_MAX - 2;
    txn_init_plan_t plan;
    txn_transit_t t;
    CU_ASSERT_EQUAL(txn_meta_prepare_init(&m, 60000, -1, -1, -1, 0, &plan, &t), KAFKA_NONE);
    CU_ASSERT_EQUAL(plan, TXN_INIT_WRITE);
    CU_ASSERT_EQUAL(t.producer_epoch, INT16_MAX - 1);
    complete(&m, &t);
    CU_ASSERT_TRUE(txn_epoch_exhausted(m.producer_epoch));
    CU_ASSERT_FALSE(txn_epoch_exhausted(INT16_MAX - 2));
    /* No epoch left: a new producer id, asked for and given. */
    CU_ASSERT_EQUAL(txn_meta_prepare_init(&m, 60000, 100, INT16_MAX - 1, -1, 0, &plan, &t),
                    KAFKA_NONE);
    CU_ASSERT_EQUAL(plan, TXN_INIT_NEED_PID);
    CU_ASSERT_EQUAL(m.pending, TXN_NO_PENDING);
    CU_ASSERT_EQUAL(txn_meta_prepare_init(&m, 60000, 100, INT16_MAX - 1, 777, 0, &plan, &t),
                    KAFKA_NONE);
    CU_ASSERT_EQUAL(plan, TXN_INIT_WRITE);
    CU_ASSERT_EQUAL(t.producer_id, 777);
    CU_ASSERT_EQUAL(t.producer_epoch, 0);
    CU_ASSERT_EQUAL(t.last_producer_id, 100);
    CU_ASSERT_EQUAL(t.last_producer_epoch, INT16_MAX - 1);
    complete(&m, &t);
    CU_ASSERT_EQUAL(m.producer_id, 777);
    CU_ASSERT_EQUAL(m.last_producer_id, 100);
    /* The rotation's answer was lost: the old id with its exhausted epoch
     * gets the new id's epoch again. */
    CU_ASSERT_EQUAL(txn_meta_prepare_init(&m, 60000, 100, INT16_MAX - 1, -1, 0, &plan, &t),
                    KAFKA_NONE);
    CU_ASSERT_EQUAL(plan, TXN_INIT_WRITE);
    CU_ASSERT_EQUAL(t.producer_id, 777);
    CU_ASSERT_EQUAL(t.producer_epoch, 0);
    complete(&m, &t);
    /* The old id with any other epoch is fenced. */
    CU_ASSERT_EQUAL(txn_meta_prepare_init(&m, 60000, 100, 3, -1, 0, &plan, &t),
                    KAFKA_PRODUCER_FENCED);
    txn_meta_free(&m);
}

/* ---- AddPartitionsToTxn ---- */

static void test_add_partitions(void)
{
    txn_meta_t m;
    begin_ongoing(&m);
    CU_ASSERT_EQUAL(m.start_ms, 2000);
    CU_ASSERT_EQUAL_FATAL(m.partitions.count, 2);
    CU_ASSERT_EQUAL(m.partitions.items[0].partition, 0);
    bool write;
    txn_transit_t t;
    txn_tp_view_t same[] = {TP("t", 0)};
    CU_ASSERT_EQUAL(txn_meta_prepare_add(&m, 100, 0, same, 1, 3000, &write, &t), KAFKA_NONE);
    CU_ASSERT_FALSE(write); /* already there: nothing to write */
    CU_ASSERT_EQUAL(m.pending, TXN_NO_PENDING);
    txn_tp_view_t more[] = {TP("u", 4), TP("t", 1)};
    CU_ASSERT_EQUAL(txn_meta_prepare_add(&m, 100, 0, more, 2, 3000, &write, &t), KAFKA_NONE);
    CU_ASSERT_TRUE(write);
    CU_ASSERT_EQUAL(t.partitions.count, 3);
    CU_ASSERT_EQUAL(t.start_ms, 2000); /* the transaction began earlier */
    CU_ASSERT_EQUAL(t.update_ms, 3000);
    complete(&m, &t);
    CU_ASSERT_EQUAL(m.partitions.count, 3);
    CU_ASSERT_EQUAL(txn_meta_prepare_add(&m, 101, 0, more, 2, 3000, &write, &t),
                    KAFKA_INVALID_PRODUCER_ID_MAPPING);
    CU_ASSERT_EQUAL(txn_meta_prepare_add(&m, 100, 1, more, 2, 3000, &write, &t),
                    KAFKA_PRODUCER_FENCED);
    CU_ASSERT_FALSE(write);
    txn_meta_free(&m);
}

static void test_add_partitions_bound(void)
{
    txn_meta_t m;
    init_fresh(&m);
    const int32_t n = TXN_MAX_PARTITIONS + 1;
    txn_tp_view_t *parts = malloc((size_t)n * sizeof(*parts));
    for (int32_t i = 0; i < n; i++)
        parts[i] = TP("t", i);
    bool write;
    txn_transit_t t;
    CU_ASSERT_EQUAL(txn_meta_prepare_add(&m, 100, 0, parts, n, 0, &write, &t),
                    KAFKA_UNKNOWN_SERVER_ERROR);
    CU_ASSERT_FALSE(write);
    CU_ASSERT_EQUAL(m.pending, TXN_NO_PENDING);
    CU_ASSERT_EQUAL(txn_meta_prepare_add(&m, 100, 0, parts, n - 1, 0, &write, &t), KAFKA_NONE);
    CU_ASSERT_TRUE(write);
    CU_ASSERT_EQUAL(t.partitions.count, TXN_MAX_PARTITIONS);
    txn_transit_free(&t);
    txn_meta_drop_pending(&m);
    free(parts);
    txn_meta_free(&m);
}

/* ---- EndTxn ---- */

static void test_end_commit(void)
{
    txn_meta_t m;
    begin_ongoing(&m);
    bool write;
    txn_transit_t t, t2;
    CU_ASSERT_EQUAL(txn_meta_prepare_end(&m, 100, 1, true, 4000, &write, &t),
                    KAFKA_PRODUCER_FENCED);
    CU_ASSERT_EQUAL(txn_meta_prepare_end(&m, 7, 0, true, 4000, &write, &t),
                    KAFKA_INVALID_PRODUCER_ID_MAPPING);
    CU_ASSERT_EQUAL(txn_meta_prepare_end(&m, 100, 0, true, 4000, &write, &t), KAFKA_NONE);
    CU_ASSERT_TRUE(write);
    CU_ASSERT_EQUAL(t.state, TXN_PREPARE_COMMIT);
    CU_ASSERT_EQUAL(t.partitions.count, 2);
    CU_ASSERT_EQUAL(t.producer_epoch, 0); /* no bump at the end (transaction version 0/1) */
    complete(&m, &t);
    CU_ASSERT_EQUAL(m.state, TXN_PREPARE_COMMIT);
    /* Markers going out. */
    txn_tp_view_t p = TP("t", 0);
    CU_ASSERT_EQUAL(txn_meta_prepare_add(&m, 100, 0, &p, 1, 4000, &write, &t2),
                    KAFKA_CONCURRENT_TRANSACTIONS);
    CU_ASSERT_EQUAL(txn_meta_prepare_end(&m, 100, 0, true, 4000, &write, &t2),
                    KAFKA_CONCURRENT_TRANSACTIONS);
    CU_ASSERT_EQUAL(txn_meta_prepare_end(&m, 100, 0, false, 4000, &write, &t2),
                    KAFKA_INVALID_TXN_STATE);
    txn_init_plan_t plan;
    CU_ASSERT_EQUAL(txn_meta_prepare_init(&m, 60000, -1, -1, -1, 4000, &plan, &t2),
                    KAFKA_CONCURRENT_TRANSACTIONS);
    txn_meta_prepare_complete(&m, 4500, &t);
    CU_ASSERT_EQUAL(t.state, TXN_COMPLETE_COMMIT);
    CU_ASSERT_EQUAL(t.partitions.count, 0);
    CU_ASSERT_EQUAL(t.start_ms, 2000);
    CU_ASSERT_EQUAL(m.pending, TXN_COMPLETE_COMMIT);
    complete(&m, &t);
    CU_ASSERT_EQUAL(m.state, TXN_COMPLETE_COMMIT);
    CU_ASSERT_EQUAL(m.partitions.count, 0);
    CU_ASSERT_EQUAL(m.update_ms, 4500);
    /* A retried commit is answered NONE; an abort now is the wrong state. */
    CU_ASSERT_EQUAL(txn_meta_prepare_end(&m, 100, 0, true, 5000, &write, &t2), KAFKA_NONE);
    CU_ASSERT_FALSE(write);
    CU_ASSERT_EQUAL(txn_meta_prepare_end(&m, 100, 0, false, 5000, &write, &t2),
                    KAFKA_INVALID_TXN_STATE);
    /* The next transaction starts afresh. */
    CU_ASSERT_EQUAL(txn_meta_prepare_add(&m, 100, 0, &p, 1, 6000, &write, &t), KAFKA_NONE);
    CU_ASSERT_TRUE(write);
    CU_ASSERT_EQUAL(t.start_ms, 6000);
    CU_ASSERT_EQUAL(t.partitions.count, 1);
    complete(&m, &t);
    txn_meta_free(&m);
}

static void test_end_abort_and_empty(void)
{
    txn_meta_t m;
    init_fresh(&m);
    bool write;
    txn_transit_t t;
    CU_ASSERT_EQUAL(txn_meta_prepare_end(&m, 100, 0, true, 0, &write, &t), KAFKA_INVALID_TXN_STATE);
    CU_ASSERT_EQUAL(txn_meta_prepare_end(&m, 100, 0, false, 0, &write, &t),
                    KAFKA_INVALID_TXN_STATE);
    txn_meta_free(&m);

    begin_ongoing(&m);
    CU_ASSERT_EQUAL(txn_meta_prepare_end(&m, 100, 0, false, 3000, &write, &t), KAFKA_NONE);
    CU_ASSERT_EQUAL(t.state, TXN_PREPARE_ABORT);
    complete(&m, &t);
    CU_ASSERT_EQUAL(txn_meta_prepare_end(&m, 100, 0, false, 3000, &write, &t),
                    KAFKA_CONCURRENT_TRANSACTIONS);
    CU_ASSERT_EQUAL(txn_meta_prepare_end(&m, 100, 0, true, 3000, &write, &t),
                    KAFKA_INVALID_TXN_STATE);
    txn_meta_prepare_complete(&m, 3500, &t);
    CU_ASSERT_EQUAL(t.state, TXN_COMPLETE_ABORT);
    complete(&m, &t);
    CU_ASSERT_EQUAL(txn_meta_prepare_end(&m, 100, 0, false, 3000, &write, &t), KAFKA_NONE);
    CU_ASSERT_FALSE(write);
    CU_ASSERT_EQUAL(txn_meta_prepare_end(&m, 100, 0, true, 3000, &write, &t),
                    KAFKA_INVALID_TXN_STATE);
    txn_meta_free(&m);
}

/* ---- fencing ---- */

static void test_fence(void)
{
    txn_meta_t m;
    begin_ongoing(&m);
    txn_init_plan_t plan;
    txn_transit_t t;
    CU_ASSERT_EQUAL(txn_meta_prepare_init(&m, 60000, -1, -1, -1, 3000, &plan, &t), KAFKA_NONE);
    CU_ASSERT_EQUAL(plan, TXN_INIT_FENCE);
    CU_ASSERT_EQUAL(m.pending, TXN_NO_PENDING);
    txn_meta_prepare_fence(&m, 3000, &t);
    CU_ASSERT_EQUAL(t.state, TXN_PREPARE_ABORT);
    CU_ASSERT_EQUAL(t.producer_epoch, 1);
    CU_ASSERT_EQUAL(m.producer_epoch, 1); /* at once: the old producer is fenced */
    CU_ASSERT_EQUAL(t.partitions.count, 2);
    /* The write failed: a second fence reuses the epoch. */
    txn_transit_free(&t);
    txn_meta_fence_failed(&m);
    CU_ASSERT_EQUAL(m.state, TXN_ONGOING);
    bool write;
    txn_transit_t t2;
    CU_ASSERT_EQUAL(txn_meta_prepare_end(&m, 100, 0, true, 3000, &write, &t2),
                    KAFKA_PRODUCER_FENCED);
    txn_meta_prepare_fence(&m, 3100, &t);
    CU_ASSERT_EQUAL(t.producer_epoch, 1);
    complete(&m, &t);
    CU_ASSERT_EQUAL(m.state, TXN_PREPARE_ABORT);
    txn_meta_prepare_complete(&m, 3200, &t);
    CU_ASSERT_FALSE(m.failed_epoch_fence);
    complete(&m, &t);
    /* The retried InitProducerId now gets epoch 2. */
    CU_ASSERT_EQUAL(txn_meta_prepare_init(&m, 60000, -1, -1, -1, 3300, &plan, &t), KAFKA_NONE);
    CU_ASSERT_EQUAL(plan, TXN_INIT_WRITE);
    CU_ASSERT_EQUAL(t.producer_epoch, 2);
    complete(&m, &t);
    txn_meta_free(&m);
}

/* ---- completion checks ---- */

static void test_complete_checks(void)
{
    txn_meta_t m;
    init_fresh(&m);
    txn_init_plan_t plan;
    txn_transit_t t;
    /* A transit for another state than the pending one. */
    CU_ASSERT_EQUAL(txn_meta_prepare_init(&m, 60000, -1, -1, -1, 0, &plan, &t), KAFKA_NONE);
    t.state = TXN_ONGOING;
    CU_ASSERT_FALSE(txn_meta_complete(&m, &t));
    CU_ASSERT_EQUAL(m.pending, TXN_NO_PENDING);
    CU_ASSERT_EQUAL(m.producer_epoch, 0);
    /* An epoch jump that is no bump. */
    t.state = TXN_EMPTY;
    t.producer_epoch = 5;
    m.pending = TXN_EMPTY;
    CU_ASSERT_FALSE(txn_meta_complete(&m, &t));
    CU_ASSERT_EQUAL(m.producer_epoch, 0);
    /* Nothing pending. */
    t.producer_epoch = 1;
    CU_ASSERT_FALSE(txn_meta_complete(&m, &t));
    txn_transit_free(&t);
    txn_meta_free(&m);

    /* A prepare whose partitions differ from the transaction's. */
    begin_ongoing(&m);
    bool write;
    CU_ASSERT_EQUAL(txn_meta_prepare_end(&m, 100, 0, true, 0, &write, &t), KAFKA_NONE);
    txn_tp_set_remove(&t.partitions, "t", 1, 0);
    CU_ASSERT_FALSE(txn_meta_complete(&m, &t));
    CU_ASSERT_EQUAL(m.state, TXN_ONGOING);
    txn_transit_free(&t);
    txn_meta_free(&m);
}

/* ---- timeouts and expiry ---- */

static void test_timeout_and_expiry(void)
{
    txn_meta_t m;
    init_fresh(&m); /* update_ms 1000 */
    CU_ASSERT_FALSE(txn_meta_timed_out(&m, INT64_MAX / 2));
    CU_ASSERT_TRUE(txn_meta_expirable(&m, 11000, 10000));
    CU_ASSERT_FALSE(txn_meta_expirable(&m, 10999, 10000));
    txn_meta_prepare_dead(&m);
    CU_ASSERT_FALSE(txn_meta_expirable(&m, 11000, 10000));
    txn_meta_drop_pending(&m);
    txn_meta_free(&m);

    begin_ongoing(&m); /* start 2000, timeout 60000 */
    CU_ASSERT_FALSE(txn_meta_timed_out(&m, 62000));
    CU_ASSERT_TRUE(txn_meta_timed_out(&m, 62001));
    CU_ASSERT_FALSE(txn_meta_expirable(&m, INT64_MAX / 2, 1)); /* Ongoing never expires */
    txn_transit_t t;
    txn_meta_prepare_fence(&m, 62001, &t);
    CU_ASSERT_FALSE(txn_meta_timed_out(&m, 62001)); /* being aborted already */
    complete(&m, &t);
    CU_ASSERT_FALSE(txn_meta_timed_out(&m, INT64_MAX / 2));
    CU_ASSERT_FALSE(txn_meta_expirable(&m, INT64_MAX / 2, 1)); /* PrepareAbort neither */
    txn_meta_prepare_complete(&m, 62002, &t);
    complete(&m, &t);
    CU_ASSERT_TRUE(txn_meta_expirable(&m, 62002, 0));
    txn_meta_free(&m);
}

/* ---- records ---- */

static void test_record_round_trip(void)
{
    txn_meta_t m;
    begin_ongoing(&m);
    bool write;
    txn_transit_t t;
    CU_ASSERT_EQUAL(txn_meta_prepare_end(&m, 100, 0, true, 4000, &write, &t), KAFKA_NONE);
    txn_record_value_t v;
    txn_transit_to_record(&t, &v);
    kwriter_t w;
    kw_init(&w, 0);
    txn_record_write_value(&w, &v);
    free(v.partitions);
    txn_record_value_t back;
    CU_ASSERT_TRUE_FATAL(txn_record_read_value(w.buf, w.len, &back));
    txn_meta_t loaded;
    txn_meta_init(&loaded, 1, 1, 0);
    CU_ASSERT_TRUE(txn_meta_from_record(&loaded, &back));
    CU_ASSERT_EQUAL(loaded.state, TXN_PREPARE_COMMIT);
    CU_ASSERT_EQUAL(loaded.producer_id, 100);
    CU_ASSERT_EQUAL(loaded.producer_epoch, 0);
    CU_ASSERT_EQUAL(loaded.last_producer_epoch, TXN_NO_PRODUCER_EPOCH);
    CU_ASSERT_EQUAL(loaded.start_ms, 2000);
    CU_ASSERT_EQUAL(loaded.update_ms, 4000);
    CU_ASSERT_EQUAL(loaded.pending, TXN_NO_PENDING);
    CU_ASSERT_TRUE(txn_tp_set_equal(&loaded.partitions, &m.partitions));
    /* States the log never holds, and a negative producer id. */
    back.state = TXN_DEAD;
    CU_ASSERT_FALSE(txn_meta_from_record(&loaded, &back));
    back.state = TXN_PREPARE_EPOCH_FENCE;
    CU_ASSERT_FALSE(txn_meta_from_record(&loaded, &back));
    back.state = TXN_ONGOING;
    back.producer_id = -1;
    CU_ASSERT_FALSE(txn_meta_from_record(&loaded, &back));
    CU_ASSERT_EQUAL(loaded.state, TXN_PREPARE_COMMIT); /* unchanged */
    /* Empty ignores whatever partitions a record carries. */
    back.producer_id = 100;
    back.state = TXN_EMPTY;
    CU_ASSERT_TRUE(txn_meta_from_record(&loaded, &back));
    CU_ASSERT_EQUAL(loaded.partitions.count, 0);
    free(back.partitions);
    kw_free(&w);
    txn_transit_free(&t);
    txn_meta_free(&loaded);
    txn_meta_free(&m);
}

void txn_meta_suite(void)
{
    CU_pSuite s = CU_add_suite("txn_meta", NULL, NULL);
    CU_add_test(s, "partition sets", test_tp_set);
    CU_add_test(s, "InitProducerId bumps; pending blocks", test_init_bumps);
    CU_add_test(s, "InitProducerId KIP-360 producer id and epoch", test_init_kip360);
    CU_add_test(s, "InitProducerId epoch exhaustion and rotation", test_init_exhaustion);
    CU_add_test(s, "AddPartitionsToTxn", test_add_partitions);
    CU_add_test(s, "AddPartitionsToTxn partition bound", test_add_partitions_bound);
    CU_add_test(s, "EndTxn commit, every state", test_end_commit);
    CU_add_test(s, "EndTxn abort; Empty", test_end_abort_and_empty);
    CU_add_test(s, "fencing an ongoing transaction", test_fence);
    CU_add_test(s, "completion checks", test_complete_checks);
    CU_add_test(s, "timeouts and expiry", test_timeout_and_expiry);
    CU_add_test(s, "record round trip and load refusals", test_record_round_trip);
}
