/* Producer entries live in a slab indexed by int32; an open-addressing
 * table (linear probing, backward-shift deletion) maps producer ids to slab
 * indices, and a doubly linked list through the slab orders entries by
 * their last update for eviction. Indices rather than pointers, so that
 * growing the slab moves nothing the table refers to. */
#include "producer_state.h"

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>

#include "xalloc.h"

#define NO_INDEX (-1)

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
    int32_t lru_older; /* in use: toward lru_oldest; free: unused */
    int32_t lru_newer; /* in use: toward lru_newest; free: next free entry */
} producer_entry_t;

struct producer_state {
    producer_entry_t *entries;
    int32_t entry_capacity;
    int32_t count;
    int32_t free_head;
    int32_t lru_oldest;
    int32_t lru_newest;
    int32_t *slots; /* entry index, or NO_INDEX */
    uint32_t slot_capacity;
};

_Static_assert(PRODUCER_STATE_BATCHES_RETAINED <= UINT8_MAX, "batch ring indices are uint8_t");
_Static_assert(PRODUCER_STATE_MAX_PRODUCERS < INT32_MAX / 4, "slot table size fits in int32");

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
    assert((s->slot_capacity & (s->slot_capacity - 1)) == 0);
    assert((uint32_t)s->entry_capacity * 2 <= s->slot_capacity);
    return s;
}

void producer_state_free(producer_state_t *s)
{
    if (s == NULL)
        return;
    assert(s->count >= 0 && s->count <= PRODUCER_STATE_MAX_PRODUCERS);
    free(s->slots);
    free(s->entries);
    free(s);
}

int32_t producer_state_count(const producer_state_t *s)
{
    assert(s->count >= 0);
    assert(s->count <= PRODUCER_STATE_MAX_PRODUCERS);
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

static void entry_remove(producer_state_t *s, int32_t index)
{
    assert(index >= 0 && index < s->entry_capacity);
    uint32_t pos = slot_find(s, s->entries[index].producer_id);
    assert(s->slots[pos] == index);
    slot_remove(s, pos);
    lru_unlink(s, index);
    s->entries[index].batch_count = 0;
    s->entries[index].lru_newer = s->free_head;
    s->free_head = index;
    s->count--;
}

/* A fresh entry for producer_id, which is not tracked, evicting the least
 * recently updated producer when the table is full. */
static producer_entry_t *entry_insert(producer_state_t *s, int64_t producer_id, int16_t epoch)
{
    if (s->count == PRODUCER_STATE_MAX_PRODUCERS)
        entry_remove(s, s->lru_oldest);
    assert(s->count < PRODUCER_STATE_MAX_PRODUCERS);
    if ((uint32_t)(s->count + 1) * 2 > s->slot_capacity)
        slots_grow(s);
    int32_t index;
    if (s->free_head != NO_INDEX) {
        index = s->free_head;
        s->free_head = s->entries[index].lru_newer;
    } else {
        if (s->count == s->entry_capacity) {
            int32_t capacity = s->entry_capacity * 2;
            if (capacity > PRODUCER_STATE_MAX_PRODUCERS)
                capacity = PRODUCER_STATE_MAX_PRODUCERS;
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
                                              producer_state_duplicate_t *duplicate)
{
    assert(epoch >= 0);
    assert(first_seq >= 0 && last_seq >= 0);
    const producer_entry_t *e = entry_find(s, producer_id);
    if (e == NULL)
        return PRODUCER_STATE_OK; /* NO_PRODUCER_EPOCH: any sequence */
    assert(e->batch_count > 0);
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
    if (epoch != e->epoch)
        return first_seq == 0 ? PRODUCER_STATE_OK : PRODUCER_STATE_OUT_OF_ORDER_SEQUENCE;
    int32_t newest_last_seq = entry_batch(e, e->batch_count - 1)->last_seq;
    return in_sequence(newest_last_seq, first_seq) ? PRODUCER_STATE_OK
                                                   : PRODUCER_STATE_OUT_OF_ORDER_SEQUENCE;
}

void producer_state_update(producer_state_t *s, int64_t producer_id, int16_t epoch,
                           int32_t first_seq, int32_t last_seq, int64_t first_offset,
                           int64_t last_offset, int64_t timestamp_ms)
{
    assert(epoch >= 0 && first_seq >= 0 && last_seq >= 0);
    assert(first_offset >= 0 && last_offset >= first_offset);
    assert(last_offset - first_offset <= INT32_MAX);
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
    e->last_timestamp_ms = timestamp_ms;
    assert(e->batch_count > 0 && e->batch_count <= PRODUCER_STATE_BATCHES_RETAINED);
}

int32_t producer_state_expire(producer_state_t *s, int64_t now_ms, int64_t expiration_ms)
{
    assert(expiration_ms >= 0);
    int32_t count_before = s->count;
    int32_t index = s->lru_oldest;
    while (index != NO_INDEX) {
        int32_t next = s->entries[index].lru_newer;
        if (now_ms - s->entries[index].last_timestamp_ms >= expiration_ms)
            entry_remove(s, index);
        index = next;
    }
    assert(s->count <= count_before);
    return count_before - s->count;
}
