/* Kafka's transaction metadata rules (see txn_meta.h): which change each
 * request asks for, and whether a written change follows from the
 * metadata it was prepared from. */
#include "txn_meta.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "kafka_errors.h"
#include "xalloc.h"

/* ---- partition sets ---- */

/* Orders a stored (NUL-terminated) topic against a view: bytewise, then the
 * shorter first. */
static int topic_cmp(const char *stored, const char *topic, size_t topic_len)
{
    size_t stored_len = strlen(stored);
    size_t n = stored_len < topic_len ? stored_len : topic_len;
    int c = memcmp(stored, topic, n);
    if (c != 0)
        return c;
    return stored_len < topic_len ? -1 : (stored_len > topic_len ? 1 : 0);
}

static int tp_cmp(const txn_tp_t *e, const char *topic, size_t topic_len, int32_t partition)
{
    int c = topic_cmp(e->topic, topic, topic_len);
    if (c != 0)
        return c;
    return e->partition < partition ? -1 : (e->partition > partition ? 1 : 0);
}

/* The index where (topic, partition) is or would go; *found says which. */
static int32_t tp_search(const txn_tp_set_t *s, const char *topic, size_t topic_len,
                         int32_t partition, bool *found)
{
    int32_t lo = 0, hi = s->count;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        int c = tp_cmp(&s->items[mid], topic, topic_len, partition);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

void txn_tp_set_free(txn_tp_set_t *s)
{
    for (int32_t i = 0; i < s->count; i++)
        free(s->items[i].topic);
    free(s->items);
    memset(s, 0, sizeof(*s));
}

int32_t txn_tp_set_find(const txn_tp_set_t *s, const char *topic, size_t topic_len,
                        int32_t partition)
{
    bool found;
    int32_t at = tp_search(s, topic, topic_len, partition, &found);
    return found ? at : -1;
}

bool txn_tp_set_add(txn_tp_set_t *s, const char *topic, size_t topic_len, int32_t partition)
{
    bool found;
    int32_t at = tp_search(s, topic, topic_len, partition, &found);
    if (found)
        return false;
    if (s->count == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 4;
        s->items = xrealloc(s->items, (size_t)s->cap * sizeof(*s->items));
    }
    memmove(&s->items[at + 1], &s->items[at], (size_t)(s->count - at) * sizeof(*s->items));
    s->items[at] = (txn_tp_t){.topic = xstrndup(topic, topic_len), .partition = partition};
    s->count++;
    assert(s->count <= s->cap);
    return true;
}

bool txn_tp_set_remove(txn_tp_set_t *s, const char *topic, size_t topic_len, int32_t partition)
{
    bool found;
    int32_t at = tp_search(s, topic, topic_len, partition, &found);
    if (!found)
        return false;
    free(s->items[at].topic);
    memmove(&s->items[at], &s->items[at + 1], (size_t)(s->count - at - 1) * sizeof(*s->items));
    s->count--;
    return true;
}

void txn_tp_set_copy(txn_tp_set_t *dst, const txn_tp_set_t *src)
{
    assert(dst != src);
    memset(dst, 0, sizeof(*dst));
    if (src->count == 0)
        return;
    dst->items = xmalloc((size_t)src->count * sizeof(*dst->items));
    dst->cap = dst->count = src->count;
    for (int32_t i = 0; i < src->count; i++)
        dst->items[i] =
            (txn_tp_t){.topic = xstrdup(src->items[i].topic), .partition = src->items[i].partition};
}

static bool tp_equal(const txn_tp_t *a, const txn_tp_t *b)
{
    return a->partition == b->partition && strcmp(a->topic, b->topic) == 0;
}

bool txn_tp_set_equal(const txn_tp_set_t *a, const txn_tp_set_t *b)
{
    if (a->count != b->count)
        return false;
    for (int32_t i = 0; i < a->count; i++)
        if (!tp_equal(&a->items[i], &b->items[i]))
            return false;
    return true;
}

bool txn_tp_set_subset(const txn_tp_set_t *sub, const txn_tp_set_t *of)
{
    for (int32_t i = 0; i < sub->count; i++)
        if (txn_tp_set_find(of, sub->items[i].topic, strlen(sub->items[i].topic),
                            sub->items[i].partition) < 0)
            return false;
    return true;
}

/* ---- metadata ---- */

void txn_transit_free(txn_transit_t *t)
{
    txn_tp_set_free(&t->partitions);
}

void txn_meta_init(txn_meta_t *m, int64_t producer_id, int32_t timeout_ms, int64_t now_ms)
{
    assert(producer_id >= 0);
    memset(m, 0, sizeof(*m));
    m->producer_id = producer_id;
    m->last_producer_id = TXN_NO_PRODUCER_ID;
    m->producer_epoch = TXN_NO_PRODUCER_EPOCH;
    m->last_producer_epoch = TXN_NO_PRODUCER_EPOCH;
    m->timeout_ms = timeout_ms;
    m->state = TXN_EMPTY;
    m->pending = TXN_NO_PENDING;
    m->start_ms = -1;
    m->update_ms = now_ms;
}

void txn_meta_free(txn_meta_t *m)
{
    txn_tp_set_free(&m->partitions);
}

bool txn_epoch_exhausted(int16_t epoch)
{
    return epoch >= INT16_MAX - 1;
}

/* Kafka's prepareTransitionTo: the transit, with every field given, and
 * the pending state set. The previous producer id is always the current
 * one. Takes ownership of *partitions. */
static void transit_to(txn_meta_t *m, txn_transit_t *t, txn_state_t state, int64_t producer_id,
                       int16_t epoch, int16_t last_epoch, int32_t timeout_ms,
                       txn_tp_set_t *partitions, int64_t start_ms, int64_t now_ms)
{
    assert(m->pending == TXN_NO_PENDING);
    assert(producer_id >= 0 && epoch >= 0);
    *t = (txn_transit_t){.producer_id = producer_id,
                         .last_producer_id = m->producer_id,
                         .producer_epoch = epoch,
                         .last_producer_epoch = last_epoch,
                         .timeout_ms = timeout_ms,
                         .state = state,
                         .partitions = *partitions,
                         .start_ms = start_ms,
                         .update_ms = now_ms};
    memset(partitions, 0, sizeof(*partitions));
    m->pending = (int)state;
}

static bool is_prepare(txn_state_t s)
{
    return s == TXN_PREPARE_COMMIT || s == TXN_PREPARE_ABORT;
}

static bool is_complete(txn_state_t s)
{
    return s == TXN_COMPLETE_COMMIT || s == TXN_COMPLETE_ABORT;
}

/* KIP-360: a request naming a producer id and epoch is fenced unless the
 * metadata was just created (no epoch yet: the producer recovers from
 * UNKNOWN_PRODUCER_ID), the id is the current one (the epoch is checked
 * next), or it is the previous one with an exhausted epoch (a retry after
 * the rotation to a new id whose answer was lost). */
static bool expected_valid(const txn_meta_t *m, int64_t expected_pid, int16_t expected_epoch)
{
    return m->producer_epoch == TXN_NO_PRODUCER_EPOCH || expected_pid == m->producer_id ||
           (expected_pid == m->last_producer_id && txn_epoch_exhausted(expected_epoch));
}

int16_t txn_meta_prepare_init(txn_meta_t *m, int32_t timeout_ms, int64_t expected_pid,
                              int16_t expected_epoch, int64_t new_pid, int64_t now_ms,
                              txn_init_plan_t *plan, txn_transit_t *t)
{
    const bool expected = expected_pid != TXN_NO_PRODUCER_ID;
    assert(expected == (expected_epoch != TXN_NO_PRODUCER_EPOCH));
    assert(m->state != TXN_DEAD && m->state != TXN_PREPARE_EPOCH_FENCE);
    if (m->pending != TXN_NO_PENDING)
        return KAFKA_CONCURRENT_TRANSACTIONS;
    if (expected && !expected_valid(m, expected_pid, expected_epoch))
        return KAFKA_PRODUCER_FENCED;
    if (is_prepare(m->state))
        return KAFKA_CONCURRENT_TRANSACTIONS;
    if (m->state == TXN_ONGOING) {
        /* The bumped epoch is never given to this client: it retries after
         * the abort and gets one more, or a new producer id if the fence
         * exhausted the epochs. */
        *plan = TXN_INIT_FENCE;
        return KAFKA_NONE;
    }
    txn_tp_set_t none = {0};
    if (txn_epoch_exhausted(m->producer_epoch) &&
        (!expected || expected_epoch == m->producer_epoch)) {
        if (new_pid < 0) {
            *plan = TXN_INIT_NEED_PID;
            return KAFKA_NONE;
        }
        /* prepareProducerIdRotation: the previous id's last epoch is kept
         * only for a KIP-360 caller, who may retry with it. */
        transit_to(m, t, TXN_EMPTY, new_pid, 0,
                   expected ? m->producer_epoch : TXN_NO_PRODUCER_EPOCH, timeout_ms, &none, -1,
                   now_ms);
        *plan = TXN_INIT_WRITE;
        return KAFKA_NONE;
    }
    /* prepareIncrementProducerEpoch. */
    int16_t epoch, last_epoch;
    if (!expected) {
        epoch = (int16_t)(m->producer_epoch + 1);
        last_epoch = TXN_NO_PRODUCER_EPOCH;
    } else if (m->producer_epoch == TXN_NO_PRODUCER_EPOCH || expected_epoch == m->producer_epoch) {
        /* Continuing after an error, and nobody else initialized since. */
        epoch = (int16_t)(m->producer_epoch + 1);
        last_epoch = m->producer_epoch;
    } else if (expected_epoch == m->last_producer_epoch) {
        /* A retry of a bump that succeeded: answer the current epoch. */
        epoch = m->producer_epoch;
        last_epoch = m->last_producer_epoch;
    } else {
        return KAFKA_PRODUCER_FENCED;
    }
    /* Exhausted epochs took the rotation branch above. */
    assert(epoch == m->producer_epoch || !txn_epoch_exhausted(m->producer_epoch));
    transit_to(m, t, TXN_EMPTY, m->producer_id, epoch, last_epoch, timeout_ms, &none, -1, now_ms);
    *plan = TXN_INIT_WRITE;
    return KAFKA_NONE;
}

int16_t txn_meta_prepare_add(txn_meta_t *m, int64_t producer_id, int16_t producer_epoch,
                             const txn_tp_view_t *parts, int32_t n, int64_t now_ms, bool *write,
                             txn_transit_t *t)
{
    assert(n >= 0 && (n == 0 || parts != NULL));
    *write = false;
    if (m->producer_id != producer_id)
        return KAFKA_INVALID_PRODUCER_ID_MAPPING;
    if (m->producer_epoch != producer_epoch)
        return KAFKA_PRODUCER_FENCED;
    if (m->pending != TXN_NO_PENDING || is_prepare(m->state))
        return KAFKA_CONCURRENT_TRANSACTIONS;
    txn_tp_set_t all;
    txn_tp_set_copy(&all, &m->partitions);
    bool added = false;
    for (int32_t i = 0; i < n && all.count <= TXN_MAX_PARTITIONS; i++)
        added |= txn_tp_set_add(&all, parts[i].topic, parts[i].topic_len, parts[i].partition);
    if (all.count > TXN_MAX_PARTITIONS) {
        txn_tp_set_free(&all);
        return KAFKA_UNKNOWN_SERVER_ERROR;
    }
    if (m->state == TXN_ONGOING && !added) {
        txn_tp_set_free(&all);
        return KAFKA_NONE; /* already in the transaction */
    }
    /* prepareAddPartitions: a new transaction starts now. */
    const int64_t start = m->state == TXN_EMPTY || is_complete(m->state) ? now_ms : m->start_ms;
    transit_to(m, t, TXN_ONGOING, m->producer_id, m->producer_epoch, m->last_producer_epoch,
               m->timeout_ms, &all, start, now_ms);
    *write = true;
    return KAFKA_NONE;
}

int16_t txn_meta_prepare_end(txn_meta_t *m, int64_t producer_id, int16_t producer_epoch,
                             bool commit, int64_t now_ms, bool *write, txn_transit_t *t)
{
    assert(m->state != TXN_DEAD && m->state != TXN_PREPARE_EPOCH_FENCE);
    *write = false;
    if (m->producer_id != producer_id)
        return KAFKA_INVALID_PRODUCER_ID_MAPPING;
    /* A client's epoch must be the current one (transaction version 0/1). */
    if (producer_epoch != m->producer_epoch)
        return KAFKA_PRODUCER_FENCED;
    if (m->pending != TXN_NO_PENDING)
        return KAFKA_CONCURRENT_TRANSACTIONS;
    switch (m->state) {
    case TXN_ONGOING: {
        txn_tp_set_t parts;
        txn_tp_set_copy(&parts, &m->partitions);
        transit_to(m, t, commit ? TXN_PREPARE_COMMIT : TXN_PREPARE_ABORT, m->producer_id,
                   m->producer_epoch, m->last_producer_epoch, m->timeout_ms, &parts, m->start_ms,
                   now_ms);
        *write = true;
        return KAFKA_NONE;
    }
    case TXN_COMPLETE_COMMIT:
        return commit ? KAFKA_NONE : KAFKA_INVALID_TXN_STATE; /* a retry */
    case TXN_COMPLETE_ABORT:
        return commit ? KAFKA_INVALID_TXN_STATE : KAFKA_NONE;
    case TXN_PREPARE_COMMIT:
        return commit ? KAFKA_CONCURRENT_TRANSACTIONS : KAFKA_INVALID_TXN_STATE;
    case TXN_PREPARE_ABORT:
        return commit ? KAFKA_INVALID_TXN_STATE : KAFKA_CONCURRENT_TRANSACTIONS;
    default:
        assert(m->state == TXN_EMPTY);
        return KAFKA_INVALID_TXN_STATE;
    }
}

void txn_meta_prepare_fence(txn_meta_t *m, int64_t now_ms, txn_transit_t *t)
{
    assert(m->state == TXN_ONGOING);
    assert(m->pending == TXN_NO_PENDING);
    /* A client never holds INT16_MAX (see txn_epoch_exhausted), so the bump
     * fits; a log that says otherwise gets no bump rather than an overflow. */
    if (!m->failed_epoch_fence && m->producer_epoch < INT16_MAX)
        m->producer_epoch++;
    m->last_producer_epoch = TXN_NO_PRODUCER_EPOCH;
    txn_tp_set_t parts;
    txn_tp_set_copy(&parts, &m->partitions);
    transit_to(m, t, TXN_PREPARE_ABORT, m->producer_id, m->producer_epoch, m->last_producer_epoch,
               m->timeout_ms, &parts, m->start_ms, now_ms);
}

void txn_meta_fence_failed(txn_meta_t *m)
{
    m->failed_epoch_fence = true;
    m->pending = TXN_NO_PENDING;
}

void txn_meta_prepare_complete(txn_meta_t *m, int64_t now_ms, txn_transit_t *t)
{
    assert(is_prepare(m->state));
    assert(m->pending == TXN_NO_PENDING);
    m->failed_epoch_fence = false;
    txn_tp_set_t none = {0};
    transit_to(m, t, m->state == TXN_PREPARE_COMMIT ? TXN_COMPLETE_COMMIT : TXN_COMPLETE_ABORT,
               m->producer_id, m->producer_epoch, m->producer_epoch, m->timeout_ms, &none,
               m->start_ms, now_ms);
}

void txn_meta_prepare_dead(txn_meta_t *m)
{
    assert(m->pending == TXN_NO_PENDING);
    assert(m->state == TXN_EMPTY || is_complete(m->state));
    m->pending = TXN_DEAD;
}

/* validProducerEpoch (transaction version 0/1). */
static bool same_producer(const txn_meta_t *m, const txn_transit_t *t)
{
    return t->producer_epoch == m->producer_epoch && t->producer_id == m->producer_id;
}

/* validProducerEpochBump: one more epoch, or epoch 0 of a new id. */
static bool valid_bump(const txn_meta_t *m, const txn_transit_t *t)
{
    return t->producer_epoch == m->producer_epoch + 1 ||
           (t->producer_epoch == 0 && t->producer_id != m->producer_id);
}

bool txn_meta_complete(txn_meta_t *m, const txn_transit_t *t)
{
    const int pending = m->pending;
    m->pending = TXN_NO_PENDING;
    if (pending == TXN_NO_PENDING || pending != (int)t->state)
        return false;
    switch (t->state) {
    case TXN_EMPTY: /* InitProducerId */
        if ((m->producer_epoch != t->producer_epoch && !valid_bump(m, t)) ||
            t->partitions.count != 0 || t->start_ms != -1)
            return false;
        m->timeout_ms = t->timeout_ms;
        m->producer_epoch = t->producer_epoch;
        m->last_producer_epoch = t->last_producer_epoch;
        m->producer_id = t->producer_id;
        m->last_producer_id = t->last_producer_id;
        break;
    case TXN_ONGOING: /* AddPartitionsToTxn */
        if (!same_producer(m, t) || !txn_tp_set_subset(&m->partitions, &t->partitions) ||
            m->timeout_ms != t->timeout_ms)
            return false;
        m->start_ms = t->start_ms;
        txn_tp_set_free(&m->partitions);
        txn_tp_set_copy(&m->partitions, &t->partitions);
        break;
    case TXN_PREPARE_COMMIT:
    case TXN_PREPARE_ABORT: /* EndTxn */
        if (!same_producer(m, t) || !txn_tp_set_equal(&m->partitions, &t->partitions) ||
            m->timeout_ms != t->timeout_ms || m->start_ms != t->start_ms)
            return false;
        break;
    case TXN_COMPLETE_COMMIT:
    case TXN_COMPLETE_ABORT: /* every marker written */
        if (!same_producer(m, t) || m->timeout_ms != t->timeout_ms || t->start_ms == -1)
            return false;
        m->start_ms = t->start_ms;
        txn_tp_set_free(&m->partitions);
        break;
    default:
        /* Dead ends in removal, PrepareEpochFence is never pending. */
        return false;
    }
    m->update_ms = t->update_ms;
    m->state = t->state;
    return true;
}

void txn_meta_drop_pending(txn_meta_t *m)
{
    m->pending = TXN_NO_PENDING;
}

bool txn_meta_timed_out(const txn_meta_t *m, int64_t now_ms)
{
    return m->pending == TXN_NO_PENDING && m->state == TXN_ONGOING &&
           m->start_ms + m->timeout_ms < now_ms;
}

bool txn_meta_expirable(const txn_meta_t *m, int64_t now_ms, int64_t expiration_ms)
{
    assert(expiration_ms >= 0);
    return m->pending == TXN_NO_PENDING && (m->state == TXN_EMPTY || is_complete(m->state)) &&
           m->update_ms <= now_ms - expiration_ms;
}

bool txn_meta_from_record(txn_meta_t *m, const txn_record_value_t *v)
{
    if (v->state == TXN_DEAD || v->state == TXN_PREPARE_EPOCH_FENCE || v->producer_id < 0 ||
        v->producer_epoch < TXN_NO_PRODUCER_EPOCH || v->npartitions > TXN_MAX_PARTITIONS)
        return false;
    txn_tp_set_t parts = {0};
    if (v->state != TXN_EMPTY) {
        for (int32_t i = 0; i < v->npartitions; i++) {
            if (v->partitions[i].partition < 0) {
                txn_tp_set_free(&parts);
                return false;
            }
            txn_tp_set_add(&parts, (const char *)v->partitions[i].topic.ptr,
                           (size_t)v->partitions[i].topic.len, v->partitions[i].partition);
        }
    }
    txn_meta_free(m);
    *m = (txn_meta_t){.producer_id = v->producer_id,
                      .last_producer_id = v->previous_producer_id,
                      .producer_epoch = v->producer_epoch,
                      .last_producer_epoch = TXN_NO_PRODUCER_EPOCH,
                      .timeout_ms = v->timeout_ms,
                      .state = v->state,
                      .pending = TXN_NO_PENDING,
                      .partitions = parts,
                      .start_ms = v->start_ms,
                      .update_ms = v->last_update_ms};
    return true;
}

void txn_transit_to_record(const txn_transit_t *t, txn_record_value_t *v)
{
    assert(t->state != TXN_DEAD && t->state != TXN_PREPARE_EPOCH_FENCE);
    assert(t->state != TXN_EMPTY || t->partitions.count == 0);
    *v = (txn_record_value_t){.producer_id = t->producer_id,
                              .previous_producer_id = t->last_producer_id,
                              .next_producer_id = TXN_NO_PRODUCER_ID,
                              .producer_epoch = t->producer_epoch,
                              .timeout_ms = t->timeout_ms,
                              .state = t->state,
                              .partitions_null = t->state == TXN_EMPTY,
                              .last_update_ms = t->update_ms,
                              .start_ms = t->start_ms};
    if (t->partitions.count == 0)
        return;
    v->partitions = xcalloc((size_t)t->partitions.count, sizeof(*v->partitions));
    v->npartitions = t->partitions.count;
    for (int32_t i = 0; i < t->partitions.count; i++) {
        const txn_tp_t *p = &t->partitions.items[i];
        v->partitions[i] = (txn_record_partition_t){
            .topic = {(const uint8_t *)p->topic, (int32_t)strlen(p->topic)},
            .partition = p->partition};
    }
}
