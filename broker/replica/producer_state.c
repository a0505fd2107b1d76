/* Producer entries live in a slab indexed by int32; an open-addressing
 * table (linear probing, backward-shift deletion) maps producer ids to slab
 * indices, and a doubly linked list through the slab orders entries by
 * their last update for eviction. Indices rather than pointers, so that
 * growing the slab moves nothing the table refers to.
 *
 * Transactions: a second list through the slab holds the producers with an
 * ongoing transaction in order of its first offset (transactions begin in
 * offset order, so a new one joins at the tail); its head is the first
 * unstable offset. A completed transaction whose marker the high watermark
 * has not passed yet stays unstable (Kafka's unreplicatedTxns) in a FIFO
 * ordered by marker offset, which the high watermark drains from the
 * front. */
#include "producer_state.h"

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

#include "crc32c.h"
#include "xalloc.h"

#define NO_INDEX (-1)

/* Kafka's ProducerSnapshot v1 (storage's ProducerSnapshot.json): version
 * i16, crc u32 (CRC-32C of everything after it), then an int32 count of
 * 46-byte entries. */
#define SNAPSHOT_VERSION      1
#define SNAPSHOT_HEADER_BYTES 6
#define SNAPSHOT_ENTRY_BYTES  46

typedef struct producer_batch {
    int32_t first_seq;
    int32_t last_seq;
    int64_t last_offset;
    int32_t offset_delta; /* last_offset - first offset */
} producer_batch_t;

typedef struct producer_entry {
    int64_t producer_id;
    int64_t last_timestamp_ms;
    int16_t epoch;
    uint8_t batch_oldest; /* ring position of the oldest retained batch */
    uint8_t batch_count;  /* 1..PRODUCER_STATE_BATCHES_RETAINED while in use */
    producer_batch_t batches[PRODUCER_STATE_BATCHES_RETAINED];
    int32_t lru_older;          /* in use: toward lru_oldest; free: unused */
    int32_t lru_newer;          /* in use: toward lru_newest; free: next free entry */
    int32_t coordinator_epoch;  /* of the last marker; -1: none */
    uint32_t markers;           /* end markers applied (wrapping): a verification's guard */
    int64_t txn_first_offset;   /* the ongoing transaction's; -1: none */
    int32_t txn_prev, txn_next; /* in the ongoing list while txn_first_offset >= 0 */
} producer_entry_t;

typedef struct unreplicated_txn {
    int64_t first_offset;
    int64_t marker_offset;
} unreplicated_txn_t;

struct producer_state {
    producer_entry_t *entries;
    int32_t entry_capacity;
    int32_t count;
    int32_t free_head;
    int32_t lru_oldest;
    int32_t lru_newest;
    int32_t *slots; /* entry index, or NO_INDEX */
    uint32_t slot_capacity;
    int32_t txn_head, txn_tail; /* ongoing transactions, by first offset */
    int32_t ongoing;
    /* Completed, marker not yet under the high watermark; a ring. Bounded by
     * the markers appended above the high watermark, which waits for them
     * (markers are written with acks=all). */
    unreplicated_txn_t *unreplicated;
    int32_t unreplicated_head, unreplicated_count, unreplicated_capacity;
};

_Static_assert(PRODUCER_STATE_BATCHES_RETAINED <= UINT8_MAX, "batch ring indices are uint8_t");
_Static_assert(PRODUCER_STATE_HARD_MAX_PRODUCERS < INT32_MAX / 4, "slot table size fits in int32");
_Static_assert(PRODUCER_STATE_MAX_PRODUCERS <= PRODUCER_STATE_HARD_MAX_PRODUCERS, "bounds ordered");

static uint32_t producer_id_hash(int64_t producer_id)
{
    /* splitmix64's finaliser: ids come from consecutive blocks, so the low
     * bits alone would cluster. */
    uint64_t x = (uint64_t)producer_id;
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return (uint32_t)x;
}

producer_state_t *producer_state_new(void)
{
    producer_state_t *s = xcalloc(1, sizeof(*s));
    s->entry_capacity = 8;
    s->entries = xcalloc((size_t)s->entry_capacity, sizeof(*s->entries));
    s->free_head = NO_INDEX;
    s->lru_oldest = NO_INDEX;
    s->lru_newest = NO_INDEX;
    s->slot_capacity = 16;
    s->slots = xmalloc(s->slot_capacity * sizeof(*s->slots));
    for (uint32_t i = 0; i < s->slot_capacity; i++)
        s->slots[i] = NO_INDEX;
    s->txn_head = s->txn_tail = NO_INDEX;
    assert((s->slot_capacity & (s->slot_capacity - 1)) == 0);
    assert((uint32_t)s->entry_capacity * 2 <= s->slot_capacity);
    return s;
}

void producer_state_free(producer_state_t *s)
{
    if (s == NULL)
        return;
    assert(s->count >= 0 && s->count <= PRODUCER_STATE_HARD_MAX_PRODUCERS);
    free(s->unreplicated);
    free(s->slots);
    free(s->entries);
    free(s);
}

void producer_state_clear(producer_state_t *s)
{
    assert(s != NULL);
    s->count = 0;
    s->free_head = NO_INDEX;
    s->lru_oldest = s->lru_newest = NO_INDEX;
    for (uint32_t i = 0; i < s->slot_capacity; i++)
        s->slots[i] = NO_INDEX;
    s->txn_head = s->txn_tail = NO_INDEX;
    s->ongoing = 0;
    s->unreplicated_head = s->unreplicated_count = 0;
    assert(producer_state_first_unstable_offset(s) == -1);
}

int32_t producer_state_count(const producer_state_t *s)
{
    assert(s->count >= 0);
    assert(s->count <= PRODUCER_STATE_HARD_MAX_PRODUCERS);
    return s->count;
}

/* The slot holding producer_id, or the empty slot where it would go. */
static uint32_t slot_find(const producer_state_t *s, int64_t producer_id)
{
    uint32_t mask = s->slot_capacity - 1;
    assert((uint32_t)s->count < s->slot_capacity);
    uint32_t pos = producer_id_hash(producer_id) & mask;
    /* Terminates: the table is at most half full, so an empty slot exists. */
    while (s->slots[pos] != NO_INDEX && s->entries[s->slots[pos]].producer_id != producer_id)
        pos = (pos + 1) & mask;
    return pos;
}

static const producer_entry_t *entry_find(const producer_state_t *s, int64_t producer_id)
{
    assert(producer_id >= 0);
    int32_t index = s->slots[slot_find(s, producer_id)];
    if (index == NO_INDEX)
        return NULL;
    assert(index < s->entry_capacity);
    return &s->entries[index];
}

/* Backward-shift deletion: each later entry of the probe run moves into the
 * hole when the hole lies between its home slot and where it sits, so that
 * every entry stays reachable from its home without tombstones. */
static void slot_remove(producer_state_t *s, uint32_t hole)
{
    uint32_t mask = s->slot_capacity - 1;
    assert(s->slots[hole] != NO_INDEX);
    for (uint32_t pos = (hole + 1) & mask; s->slots[pos] != NO_INDEX; pos = (pos + 1) & mask) {
        uint32_t home = producer_id_hash(s->entries[s->slots[pos]].producer_id) & mask;
        if (((pos - home) & mask) >= ((pos - hole) & mask)) {
            s->slots[hole] = s->slots[pos];
            hole = pos;
        }
    }
    s->slots[hole] = NO_INDEX;
}

static void slots_grow(producer_state_t *s)
{
    uint32_t old_capacity = s->slot_capacity;
    int32_t *old_slots = s->slots;
    s->slot_capacity = old_capacity * 2;
    s->slots = xmalloc(s->slot_capacity * sizeof(*s->slots));
    for (uint32_t i = 0; i < s->slot_capacity; i++)
        s->slots[i] = NO_INDEX;
    for (uint32_t i = 0; i < old_capacity; i++) {
        if (old_slots[i] == NO_INDEX)
            continue;
        uint32_t pos = slot_find(s, s->entries[old_slots[i]].producer_id);
        assert(s->slots[pos] == NO_INDEX);
        s->slots[pos] = old_slots[i];
    }
    free(old_slots);
    assert((uint32_t)s->count * 2 <= s->slot_capacity);
}

static void lru_unlink(producer_state_t *s, int32_t index)
{
    producer_entry_t *e = &s->entries[index];
    assert(s->count > 0);
    if (e->lru_older != NO_INDEX)
        s->entries[e->lru_older].lru_newer = e->lru_newer;
    else
        s->lru_oldest = e->lru_newer;
    if (e->lru_newer != NO_INDEX)
        s->entries[e->lru_newer].lru_older = e->lru_older;
    else
        s->lru_newest = e->lru_older;
    e->lru_older = e->lru_newer = NO_INDEX;
}

static void lru_push_newest(producer_state_t *s, int32_t index)
{
    producer_entry_t *e = &s->entries[index];
    e->lru_older = s->lru_newest;
    e->lru_newer = NO_INDEX;
    if (s->lru_newest != NO_INDEX)
        s->entries[s->lru_newest].lru_newer = index;
    else
        s->lru_oldest = index;
    s->lru_newest = index;
    assert(s->lru_oldest != NO_INDEX);
    assert(s->entries[s->lru_newest].lru_newer == NO_INDEX);
}

static void txn_begin(producer_state_t *s, int32_t index, int64_t first_offset)
{
    producer_entry_t *e = &s->entries[index];
    assert(e->txn_first_offset < 0 && first_offset >= 0);
    assert(s->txn_tail == NO_INDEX || s->entries[s->txn_tail].txn_first_offset <= first_offset);
    e->txn_first_offset = first_offset;
    e->txn_prev = s->txn_tail;
    e->txn_next = NO_INDEX;
    if (s->txn_tail != NO_INDEX)
        s->entries[s->txn_tail].txn_next = index;
    else
        s->txn_head = index;
    s->txn_tail = index;
    s->ongoing++;
}

static void txn_unlink(producer_state_t *s, int32_t index)
{
    producer_entry_t *e = &s->entries[index];
    assert(e->txn_first_offset >= 0 && s->ongoing > 0);
    if (e->txn_prev != NO_INDEX)
        s->entries[e->txn_prev].txn_next = e->txn_next;
    else
        s->txn_head = e->txn_next;
    if (e->txn_next != NO_INDEX)
        s->entries[e->txn_next].txn_prev = e->txn_prev;
    else
        s->txn_tail = e->txn_prev;
    e->txn_prev = e->txn_next = NO_INDEX;
    e->txn_first_offset = -1;
    s->ongoing--;
}

static void entry_remove(producer_state_t *s, int32_t index)
{
    assert(index >= 0 && index < s->entry_capacity);
    uint32_t pos = slot_find(s, s->entries[index].producer_id);
    assert(s->slots[pos] == index);
    slot_remove(s, pos);
    lru_unlink(s, index);
    if (s->entries[index].txn_first_offset >= 0)
        txn_unlink(s, index);
    s->entries[index].batch_count = 0;
    s->entries[index].lru_newer = s->free_head;
    s->free_head = index;
    s->count--;
}

/* A fresh entry for producer_id, which is not tracked, evicting the least
 * recently updated producer when the table is full. */
static producer_entry_t *entry_insert(producer_state_t *s, int64_t producer_id, int16_t epoch)
{
    if (s->count >= PRODUCER_STATE_MAX_PRODUCERS) {
        /* The least recently updated outside a transaction; the table grows
         * instead while every one is inside one, up to the hard bound. */
        int32_t victim = s->lru_oldest;
        while (victim != NO_INDEX && s->entries[victim].txn_first_offset >= 0)
            victim = s->entries[victim].lru_newer;
        if (victim != NO_INDEX)
            entry_remove(s, victim);
        else if (s->count == PRODUCER_STATE_HARD_MAX_PRODUCERS)
            entry_remove(s, s->lru_oldest);
    }
    assert(s->count < PRODUCER_STATE_HARD_MAX_PRODUCERS);
    if ((uint32_t)(s->count + 1) * 2 > s->slot_capacity)
        slots_grow(s);
    int32_t index;
    if (s->free_head != NO_INDEX) {
        index = s->free_head;
        s->free_head = s->entries[index].lru_newer;
    } else {
        if (s->count == s->entry_capacity) {
            int32_t capacity = s->entry_capacity * 2;
            if (capacity > PRODUCER_STATE_HARD_MAX_PRODUCERS)
                capacity = PRODUCER_STATE_HARD_MAX_PRODUCERS;
            s->entries = xrealloc(s->entries, (size_t)capacity * sizeof(*s->entries));
            s->entry_capacity = capacity;
        }
        /* No free entry: every entry below count is in use. */
        index = s->count;
    }
    assert(index < s->entry_capacity);
    producer_entry_t *e = &s->entries[index];
    e->producer_id = producer_id;
    e->epoch = epoch;
    e->batch_oldest = 0;
    e->batch_count = 0;
    e->last_timestamp_ms = 0;
    e->coordinator_epoch = -1;
    e->markers = 0;
    e->txn_first_offset = -1;
    e->txn_prev = e->txn_next = NO_INDEX;
    uint32_t pos = slot_find(s, producer_id);
    assert(s->slots[pos] == NO_INDEX);
    s->slots[pos] = index;
    s->count++;
    lru_push_newest(s, index);
    return e;
}

static const producer_batch_t *entry_batch(const producer_entry_t *e, int32_t age_index)
{
    assert(age_index >= 0 && age_index < e->batch_count);
    return &e->batches[(e->batch_oldest + age_index) % PRODUCER_STATE_BATCHES_RETAINED];
}

/* Kafka's inSequence: the next after INT32_MAX is 0. */
static bool in_sequence(int32_t last_seq, int32_t next_seq)
{
    assert(last_seq >= 0 && next_seq >= 0);
    return (int64_t)next_seq == (int64_t)last_seq + 1 || (next_seq == 0 && last_seq == INT32_MAX);
}

producer_state_verdict_t producer_state_check(const producer_state_t *s, int64_t producer_id,
                                              int16_t epoch, int32_t first_seq, int32_t last_seq,
                                              bool transactional,
                                              producer_state_duplicate_t *duplicate)
{
    assert(epoch >= 0);
    assert(first_seq >= 0 && last_seq >= 0);
    const producer_entry_t *e = entry_find(s, producer_id);
    if (e == NULL)
        return PRODUCER_STATE_OK; /* NO_PRODUCER_EPOCH: any sequence */
    if (epoch == e->epoch) {
        for (int32_t i = 0; i < e->batch_count; i++) {
            const producer_batch_t *b = entry_batch(e, i);
            if (b->first_seq == first_seq && b->last_seq == last_seq) {
                duplicate->first_offset = b->last_offset - b->offset_delta;
                duplicate->last_offset = b->last_offset;
                return PRODUCER_STATE_DUPLICATE;
            }
        }
    }
    if (epoch < e->epoch)
        return PRODUCER_STATE_INVALID_PRODUCER_EPOCH;
    /* Kafka's checkTransactionalState... for data: a producer inside a
     * transaction may not write outside it. */
    if (!transactional && e->txn_first_offset >= 0)
        return PRODUCER_STATE_INVALID_TXN_STATE;
    if (epoch != e->epoch || e->batch_count == 0)
        return first_seq == 0 ? PRODUCER_STATE_OK : PRODUCER_STATE_OUT_OF_ORDER_SEQUENCE;
    int32_t newest_last_seq = entry_batch(e, e->batch_count - 1)->last_seq;
    return in_sequence(newest_last_seq, first_seq) ? PRODUCER_STATE_OK
                                                   : PRODUCER_STATE_OUT_OF_ORDER_SEQUENCE;
}

/* The entry for producer_id, made the most recently updated, inserted when
 * new; its epoch moved to `epoch` (a different one clears the retained
 * batches, Kafka's maybeUpdateProducerEpoch). */
static producer_entry_t *entry_touch(producer_state_t *s, int64_t producer_id, int16_t epoch)
{
    int32_t index = s->slots[slot_find(s, producer_id)];
    producer_entry_t *e;
    if (index == NO_INDEX) {
        e = entry_insert(s, producer_id, epoch);
    } else {
        e = &s->entries[index];
        lru_unlink(s, index);
        lru_push_newest(s, index);
    }
    if (e->epoch != epoch) {
        e->epoch = epoch;
        e->batch_count = 0;
    }
    assert(e->producer_id == producer_id);
    return e;
}

void producer_state_update(producer_state_t *s, int64_t producer_id, int16_t epoch,
                           int32_t first_seq, int32_t last_seq, int64_t first_offset,
                           int64_t last_offset, int64_t timestamp_ms, bool transactional)
{
    assert(epoch >= 0 && first_offset >= 0 && last_offset >= first_offset);
    assert(last_offset - first_offset <= INT32_MAX);
    producer_entry_t *e = entry_touch(s, producer_id, epoch);
    if (transactional && e->txn_first_offset < 0)
        txn_begin(s, (int32_t)(e - s->entries), first_offset);
    e->last_timestamp_ms = timestamp_ms;
    /* A batch without sequence (a coordinator's write, or a follower copying
     * one) moves the epoch and the transaction but is no retry candidate. */
    if (first_seq < 0 || last_seq < 0)
        return;
    if (e->batch_count == PRODUCER_STATE_BATCHES_RETAINED) {
        e->batch_oldest = (uint8_t)((e->batch_oldest + 1) % PRODUCER_STATE_BATCHES_RETAINED);
        e->batch_count--;
    }
    producer_batch_t *b =
        &e->batches[(e->batch_oldest + e->batch_count) % PRODUCER_STATE_BATCHES_RETAINED];
    b->first_seq = first_seq;
    b->last_seq = last_seq;
    b->last_offset = last_offset;
    b->offset_delta = (int32_t)(last_offset - first_offset);
    e->batch_count++;
    assert(e->batch_count > 0 && e->batch_count <= PRODUCER_STATE_BATCHES_RETAINED);
}

producer_state_verdict_t producer_state_check_epoch(const producer_state_t *s, int64_t producer_id,
                                                    int16_t epoch)
{
    assert(epoch >= 0);
    const producer_entry_t *e = entry_find(s, producer_id);
    return e != NULL && epoch < e->epoch ? PRODUCER_STATE_INVALID_PRODUCER_EPOCH
                                         : PRODUCER_STATE_OK;
}

producer_state_verdict_t producer_state_check_end_txn(const producer_state_t *s,
                                                      int64_t producer_id, int16_t epoch,
                                                      int32_t coordinator_epoch)
{
    assert(epoch >= 0);
    const producer_entry_t *e = entry_find(s, producer_id);
    if (e == NULL)
        return PRODUCER_STATE_OK;
    if (epoch < e->epoch)
        return PRODUCER_STATE_INVALID_PRODUCER_EPOCH;
    return coordinator_epoch < e->coordinator_epoch ? PRODUCER_STATE_TRANSACTION_COORDINATOR_FENCED
                                                    : PRODUCER_STATE_OK;
}

producer_state_verdict_t producer_state_end_txn(producer_state_t *s, int64_t producer_id,
                                                int16_t epoch, int32_t coordinator_epoch,
                                                int64_t marker_offset, int64_t timestamp_ms,
                                                bool check, producer_state_completed_txn_t *out)
{
    assert(epoch >= 0 && marker_offset >= 0);
    assert(out != NULL);
    out->first_offset = -1;
    out->last_offset = marker_offset;
    out->last_stable_offset = -1;
    if (check) {
        producer_state_verdict_t v =
            producer_state_check_end_txn(s, producer_id, epoch, coordinator_epoch);
        if (v != PRODUCER_STATE_OK)
            return v;
    }
    producer_entry_t *e = entry_touch(s, producer_id, epoch);
    e->coordinator_epoch = coordinator_epoch;
    e->last_timestamp_ms = timestamp_ms;
    e->markers++;
    if (e->txn_first_offset < 0)
        return PRODUCER_STATE_OK; /* nothing written in it: no effect on readers */
    out->first_offset = e->txn_first_offset;
    assert(out->first_offset <= marker_offset);
    txn_unlink(s, (int32_t)(e - s->entries));
    /* Kafka's lastStableOffset(completedTxn): the next ongoing transaction's
     * first offset, else just past the marker. */
    out->last_stable_offset =
        s->txn_head != NO_INDEX ? s->entries[s->txn_head].txn_first_offset : marker_offset + 1;
    if (s->unreplicated_count == s->unreplicated_capacity) {
        int32_t capacity = s->unreplicated_capacity ? s->unreplicated_capacity * 2 : 8;
        unreplicated_txn_t *ring = xmalloc((size_t)capacity * sizeof(*ring));
        for (int32_t i = 0; i < s->unreplicated_count; i++)
            ring[i] = s->unreplicated[(s->unreplicated_head + i) % s->unreplicated_capacity];
        free(s->unreplicated);
        s->unreplicated = ring;
        s->unreplicated_capacity = capacity;
        s->unreplicated_head = 0;
    }
    int32_t tail = (s->unreplicated_head + s->unreplicated_count) % s->unreplicated_capacity;
    s->unreplicated[tail] = (unreplicated_txn_t){out->first_offset, marker_offset};
    s->unreplicated_count++;
    return PRODUCER_STATE_OK;
}

void producer_state_on_high_watermark(producer_state_t *s, int64_t high_watermark)
{
    while (s->unreplicated_count > 0 &&
           s->unreplicated[s->unreplicated_head].marker_offset < high_watermark) {
        s->unreplicated_head = (s->unreplicated_head + 1) % s->unreplicated_capacity;
        s->unreplicated_count--;
    }
    assert(s->unreplicated_count >= 0);
}

int64_t producer_state_first_unstable_offset(const producer_state_t *s)
{
    int64_t first = s->txn_head != NO_INDEX ? s->entries[s->txn_head].txn_first_offset : -1;
    /* Few: only transactions completed since the high watermark last moved. */
    for (int32_t i = 0; i < s->unreplicated_count; i++) {
        int64_t offset =
            s->unreplicated[(s->unreplicated_head + i) % s->unreplicated_capacity].first_offset;
        if (first < 0 || offset < first)
            first = offset;
    }
    assert(first >= -1);
    return first;
}

uint32_t producer_state_markers(const producer_state_t *s, int64_t producer_id)
{
    assert(s != NULL && producer_id >= 0);
    const producer_entry_t *e = entry_find(s, producer_id);
    return e != NULL ? e->markers : 0;
}

bool producer_state_in_txn(const producer_state_t *s, int64_t producer_id)
{
    assert(s != NULL && producer_id >= 0);
    const producer_entry_t *e = entry_find(s, producer_id);
    return e != NULL && e->txn_first_offset >= 0;
}

int32_t producer_state_ongoing_count(const producer_state_t *s)
{
    assert(s->ongoing >= 0 && s->ongoing <= s->count);
    return s->ongoing;
}

/* ---- snapshots ---- */

static void put_be(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get_be(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v = (v << 8) | p[i];
    return v;
}

size_t producer_state_snapshot_size(const producer_state_t *s)
{
    return SNAPSHOT_HEADER_BYTES + 4 + (size_t)s->count * SNAPSHOT_ENTRY_BYTES;
}

void producer_state_snapshot_write(const producer_state_t *s, uint8_t *buf)
{
    put_be(buf, SNAPSHOT_VERSION, 2);
    put_be(buf + SNAPSHOT_HEADER_BYTES, (uint64_t)s->count, 4);
    uint8_t *p = buf + SNAPSHOT_HEADER_BYTES + 4;
    for (int32_t index = s->lru_oldest; index != NO_INDEX; index = s->entries[index].lru_newer) {
        const producer_entry_t *e = &s->entries[index];
        /* Kafka keeps one batch per producer in a snapshot: the newest. */
        int32_t last_seq = -1, offset_delta = 0;
        int64_t last_offset = -1;
        if (e->batch_count > 0) {
            const producer_batch_t *b = entry_batch(e, e->batch_count - 1);
            last_seq = b->last_seq;
            last_offset = b->last_offset;
            offset_delta = b->offset_delta;
        }
        put_be(p, (uint64_t)e->producer_id, 8);
        put_be(p + 8, (uint64_t)(uint16_t)e->epoch, 2);
        put_be(p + 10, (uint64_t)(uint32_t)last_seq, 4);
        put_be(p + 14, (uint64_t)last_offset, 8);
        put_be(p + 22, (uint64_t)(uint32_t)offset_delta, 4);
        put_be(p + 26, (uint64_t)e->last_timestamp_ms, 8);
        put_be(p + 34, (uint64_t)(uint32_t)e->coordinator_epoch, 4);
        put_be(p + 38, (uint64_t)e->txn_first_offset, 8);
        p += SNAPSHOT_ENTRY_BYTES;
    }
    assert((size_t)(p - buf) == producer_state_snapshot_size(s));
    size_t body = (size_t)(p - buf) - SNAPSHOT_HEADER_BYTES;
    put_be(buf + 2, crc32c(0, buf + SNAPSHOT_HEADER_BYTES, body), 4);
}

int producer_state_snapshot_load(producer_state_t *s, const uint8_t *buf, size_t len)
{
    assert(s != NULL);
    producer_state_clear(s);
    if (len < SNAPSHOT_HEADER_BYTES + 4 || get_be(buf, 2) != SNAPSHOT_VERSION)
        return -1;
    if (get_be(buf + 2, 4) != crc32c(0, buf + SNAPSHOT_HEADER_BYTES, len - SNAPSHOT_HEADER_BYTES))
        return -1;
    uint64_t count = get_be(buf + SNAPSHOT_HEADER_BYTES, 4);
    if (count > PRODUCER_STATE_HARD_MAX_PRODUCERS ||
        len != SNAPSHOT_HEADER_BYTES + 4 + count * SNAPSHOT_ENTRY_BYTES)
        return -1;
    const uint8_t *p = buf + SNAPSHOT_HEADER_BYTES + 4;
    /* Transactions must join the ongoing list in first-offset order. */
    int64_t *txn_order = NULL;
    int32_t ntxn = 0;
    for (uint64_t i = 0; i < count; i++, p += SNAPSHOT_ENTRY_BYTES) {
        int64_t producer_id = (int64_t)get_be(p, 8);
        int16_t epoch = (int16_t)get_be(p + 8, 2);
        int32_t last_seq = (int32_t)get_be(p + 10, 4);
        int64_t last_offset = (int64_t)get_be(p + 14, 8);
        int32_t offset_delta = (int32_t)get_be(p + 22, 4);
        int64_t txn_first = (int64_t)get_be(p + 38, 8);
        if (producer_id < 0 || epoch < 0 || offset_delta < 0 || entry_find(s, producer_id) ||
            (last_seq >= 0 && last_offset < offset_delta) || txn_first < -1)
            goto corrupt;
        producer_entry_t *e = entry_touch(s, producer_id, epoch);
        e->last_timestamp_ms = (int64_t)get_be(p + 26, 8);
        e->coordinator_epoch = (int32_t)get_be(p + 34, 4);
        if (last_seq >= 0 && last_offset >= 0) {
            int32_t first_seq = last_seq >= offset_delta
                                    ? last_seq - offset_delta
                                    : (int32_t)((int64_t)last_seq - offset_delta + INT32_MAX + 1);
            e->batches[0] = (producer_batch_t){first_seq, last_seq, last_offset, offset_delta};
            e->batch_oldest = 0;
            e->batch_count = 1;
        }
        if (txn_first >= 0) {
            txn_order = xrealloc(txn_order, (size_t)(ntxn + 1) * 2 * sizeof(*txn_order));
            txn_order[2 * ntxn] = txn_first;
            txn_order[2 * ntxn + 1] = producer_id;
            ntxn++;
        }
    }
    /* Insertion sort by first offset: few ongoing transactions. */
    for (int32_t i = 1; i < ntxn; i++)
        for (int32_t j = i; j > 0 && txn_order[2 * j] < txn_order[2 * (j - 1)]; j--) {
            int64_t t0 = txn_order[2 * j], t1 = txn_order[2 * j + 1];
            txn_order[2 * j] = txn_order[2 * (j - 1)];
            txn_order[2 * j + 1] = txn_order[2 * (j - 1) + 1];
            txn_order[2 * (j - 1)] = t0;
            txn_order[2 * (j - 1) + 1] = t1;
        }
    for (int32_t i = 0; i < ntxn; i++) {
        int32_t index = s->slots[slot_find(s, txn_order[2 * i + 1])];
        assert(index != NO_INDEX);
        txn_begin(s, index, txn_order[2 * i]);
    }
    free(txn_order);
    return 0;
corrupt:
    free(txn_order);
    producer_state_clear(s);
    return -1;
}

int32_t producer_state_expire(producer_state_t *s, int64_t now_ms, int64_t expiration_ms)
{
    assert(expiration_ms >= 0);
    int32_t count_before = s->count;
    int32_t index = s->lru_oldest;
    while (index != NO_INDEX) {
        int32_t next = s->entries[index].lru_newer;
        /* A producer inside a transaction is kept (Kafka's isProducerExpired):
         * the transaction times out at its coordinator instead. */
        if (now_ms - s->entries[index].last_timestamp_ms >= expiration_ms &&
            s->entries[index].txn_first_offset < 0)
            entry_remove(s, index);
        index = next;
    }
    assert(s->count <= count_before);
    return count_before - s->count;
}
