/* The store: the transactional ids this broker coordinates and the
 * __transaction_state partitions they live in. A partition's leader loads
 * it (replays every record, a bounded chunk per loop iteration, answering
 * COORDINATOR_LOAD_IN_PROGRESS meanwhile), then serves its ids; state
 * changes are leader appends that wait, in offset order, until the
 * partition's high watermark passes them, and only then become the ids'
 * metadata. Losing the leadership fails the waiting writes with
 * NOT_COORDINATOR and drops the partition's ids: the new leader rebuilds
 * them from the same records. */
#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator.h"
#include "group_coordinator.h"
#include "kafka_errors.h"
#include "record_batch.h"
#include "replica_manager.h"
#include "txn_internal.h"
#include "txn_records.h"
#include "vlog.h"
#include "wall_clock.h"
#include "xalloc.h"

/* Bytes replayed per loop iteration while loading: large enough that a
 * partition of 100,000 records loads in well under a second, small enough
 * that the loop keeps serving others in between. */
#define TXN_LOAD_CHUNK_BYTES (4 << 20)
/* A tombstone's wait for the in-sync replicas: Kafka's request.timeout.ms,
 * with which it writes them. */
#define TXN_TOMBSTONE_TIMEOUT_MS 30000

/* ---- entries ---- */

static uint64_t id_hash(const char *id, size_t len)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)id[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static void table_grow(txn_coordinator_t *tc)
{
    size_t n = tc->nbuckets ? tc->nbuckets * 2 : 64;
    txn_entry_t **b = xcalloc(n, sizeof(*b));
    for (size_t i = 0; i < tc->nbuckets; i++) {
        txn_entry_t *e = tc->buckets[i];
        while (e) {
            txn_entry_t *next = e->hnext;
            e->hnext = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(tc->buckets);
    tc->buckets = b;
    tc->nbuckets = n;
}

txn_entry_t *txn_entry_find(txn_coordinator_t *tc, const char *id, size_t len)
{
    if (tc->nbuckets == 0)
        return NULL;
    uint64_t h = id_hash(id, len);
    for (txn_entry_t *e = tc->buckets[h & (tc->nbuckets - 1)]; e; e = e->hnext)
        if (e->hash == h && e->id_len == len && memcmp(e->id, id, len) == 0)
            return e;
    return NULL;
}

txn_entry_t *txn_entry_create(txn_coordinator_t *tc, const char *id, size_t len, int32_t partition,
                              txn_meta_t *m)
{
    assert(txn_entry_find(tc, id, len) == NULL);
    assert(partition >= 0);
    if (tc->nentries >= tc->nbuckets)
        table_grow(tc);
    txn_entry_t *e = xcalloc(1, sizeof(*e));
    e->hash = id_hash(id, len);
    e->id = xstrndup(id, len);
    e->id_len = len;
    e->partition = partition;
    e->meta = *m;
    memset(m, 0, sizeof(*m));
    size_t at = e->hash & (tc->nbuckets - 1);
    e->hnext = tc->buckets[at];
    tc->buckets[at] = e;
    tc->nentries++;
    return e;
}

static void entry_free(txn_entry_t *e)
{
    assert(e->refs == 0 && e->removed);
    assert(e->markers == NULL);
    txn_meta_free(&e->meta);
    free(e->id);
    free(e);
}

void txn_entry_remove(txn_coordinator_t *tc, txn_entry_t *e)
{
    assert(!e->removed);
    txn_markers_cancel(tc, e);
    txn_entry_t **pp = &tc->buckets[e->hash & (tc->nbuckets - 1)];
    while (*pp != e) {
        assert(*pp != NULL && "entry not in its table");
        pp = &(*pp)->hnext;
    }
    *pp = e->hnext;
    e->hnext = NULL;
    tc->nentries--;
    e->removed = true;
    if (e->refs == 0)
        entry_free(e);
}

void txn_entry_release(txn_coordinator_t *tc, txn_entry_t *e)
{
    (void)tc;
    assert(e->refs > 0);
    if (--e->refs == 0 && e->removed)
        entry_free(e);
}

/* ---- partitions ---- */

static txn_log_partition_t *part_get(txn_coordinator_t *tc, int32_t id, bool create)
{
    assert(id >= 0);
    if (id >= tc->nparts) {
        if (!create)
            return NULL;
        tc->parts = xrealloc(tc->parts, (size_t)(id + 1) * sizeof(*tc->parts));
        memset(tc->parts + tc->nparts, 0, (size_t)(id + 1 - tc->nparts) * sizeof(*tc->parts));
        tc->nparts = id + 1;
    }
    if (tc->parts[id] == NULL && create) {
        txn_log_partition_t *p = xcalloc(1, sizeof(*p));
        p->tc = tc;
        p->id = id;
        p->state = TXN_LOG_NOT_LEADER;
        tc->parts[id] = p;
    }
    return tc->parts[id];
}

/* The __transaction_state partition of transactional id `id`; -1 while the
 * metadata has no such topic. */
static int32_t id_home(txn_coordinator_t *tc, const char *id, size_t len)
{
    const cluster_metadata_t *md = coordinator_metadata(tc->coord);
    const md_topic_t *t = cluster_metadata_topic(md, TXN_STATE_TOPIC, strlen(TXN_STATE_TOPIC));
    if (t == NULL || t->npartitions <= 0)
        return -1;
    return group_partition_for((const uint8_t *)id, len, t->npartitions);
}

int16_t txn_store_route(txn_coordinator_t *tc, const char *id, size_t len, int32_t *partition,
                        int32_t *coordinator_epoch)
{
    *partition = id_home(tc, id, len);
    *coordinator_epoch = -1;
    if (*partition < 0)
        return KAFKA_NOT_COORDINATOR;
    txn_log_partition_t *p = part_get(tc, *partition, false);
    if (p == NULL || p->state == TXN_LOG_NOT_LEADER)
        return KAFKA_NOT_COORDINATOR;
    if (p->state == TXN_LOG_LOADING)
        return KAFKA_COORDINATOR_LOAD_IN_PROGRESS;
    *coordinator_epoch = p->coordinator_epoch;
    return KAFKA_NONE;
}

txn_log_state_t txn_store_partition_state(const txn_coordinator_t *tc, int32_t partition)
{
    if (partition < 0 || partition >= tc->nparts || tc->parts[partition] == NULL)
        return TXN_LOG_NOT_LEADER;
    return tc->parts[partition]->state;
}

static const replica_partition_t *part_replica(txn_coordinator_t *tc, int32_t id)
{
    return replica_manager_get(tc->replicas, TXN_STATE_TOPIC, strlen(TXN_STATE_TOPIC), id);
}

/* ---- writes ---- */

/* The write's entry is still the one its epoch's load made, in a partition
 * this broker leads at that epoch. */
static bool write_current(const txn_write_t *w)
{
    const txn_log_partition_t *p = w->part;
    return !w->entry->removed && p != NULL && p->state == TXN_LOG_ACTIVE &&
           p->coordinator_epoch == w->coordinator_epoch;
}

/* Applies the outcome to the entry (appendTransactionToLog's callback),
 * runs done, drops the entry ref and frees w. w is out of its partition's
 * queue (or never was in it). */
static void write_finish(txn_coordinator_t *tc, txn_write_t *w, int16_t error)
{
    assert(w->next == NULL);
    txn_entry_t *e = w->entry;
    assert(e->refs > 0);
    ev_timer_stop(tc->loop, &w->timer);
    const bool current = write_current(w);
    if (error == KAFKA_NONE && !current) {
        /* Written, but the partition moved meanwhile: its new leader owns
         * the state now. */
        error = KAFKA_NOT_COORDINATOR;
    } else if (error == KAFKA_NONE && w->tombstone) {
        if (e->meta.pending == TXN_DEAD)
            txn_entry_remove(tc, e);
    } else if (error == KAFKA_NONE && !txn_meta_complete(&e->meta, &w->transit)) {
        VLOG_ERR(TXN_MODULE,
                 "transactional id %s: the written %s does not follow from its state %s", e->id,
                 txn_state_name(w->transit.state), txn_state_name(e->meta.state));
        error = KAFKA_UNKNOWN_SERVER_ERROR;
    } else if (error != KAFKA_NONE && current) {
        if (w->keep_pending_on_unavailable && error == KAFKA_COORDINATOR_NOT_AVAILABLE)
            ; /* the caller writes it again */
        else if (w->fence)
            txn_meta_fence_failed(&e->meta);
        else
            txn_meta_drop_pending(&e->meta);
    }
    w->done(tc, w, error);
    txn_transit_free(&w->transit);
    txn_entry_release(tc, e);
    free(w);
}

static void write_unlink(txn_log_partition_t *p, txn_write_t *w)
{
    txn_write_t **pp = &p->writes_head;
    txn_write_t *prev = NULL;
    while (*pp != w) {
        assert(*pp != NULL);
        prev = *pp;
        pp = &(*pp)->next;
    }
    *pp = w->next;
    if (p->writes_tail == w)
        p->writes_tail = prev;
    w->next = NULL;
}

static void write_timeout(struct ev_loop *loop, ev_timer *timer, int revents)
{
    txn_write_t *w = timer->data;
    (void)loop;
    (void)revents;
    write_unlink(w->part, w);
    /* Kafka: REQUEST_TIMED_OUT becomes COORDINATOR_NOT_AVAILABLE, which
     * clients retry. */
    write_finish(w->part->tc, w, KAFKA_COORDINATOR_NOT_AVAILABLE);
}

/* Completes, in offset order, the writes the high watermark passed. */
static void part_complete_writes(txn_coordinator_t *tc, txn_log_partition_t *p, int64_t hw)
{
    assert(p->state == TXN_LOG_ACTIVE);
    while (p->writes_head && p->writes_head->last_offset < hw) {
        txn_write_t *w = p->writes_head;
        write_unlink(p, w);
        write_finish(tc, w, KAFKA_NONE);
    }
}

/* Kafka's appendTransactionToLog mapping of an append's refusal to what
 * the coordinator answers: too few replicas (or a timeout) is retriable
 * COORDINATOR_NOT_AVAILABLE, a lost leadership or a storage error
 * NOT_COORDINATOR (the client looks for the coordinator again), a record
 * too large UNKNOWN_SERVER_ERROR; anything else as it is. */
static int16_t append_error(int16_t error)
{
    switch (error) {
    case KAFKA_UNKNOWN_TOPIC_OR_PARTITION:
    case KAFKA_NOT_ENOUGH_REPLICAS:
    case KAFKA_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case KAFKA_REQUEST_TIMED_OUT:
        return KAFKA_COORDINATOR_NOT_AVAILABLE;
    case KAFKA_NOT_LEADER_OR_FOLLOWER:
    case KAFKA_KAFKA_STORAGE_ERROR:
        return KAFKA_NOT_COORDINATOR;
    case KAFKA_MESSAGE_TOO_LARGE:
    case KAFKA_RECORD_LIST_TOO_LARGE:
        return KAFKA_UNKNOWN_SERVER_ERROR;
    default:
        return error;
    }
}

/* The record batch of w: the id's key and its transit (or null). */
static uint8_t *write_batch(const txn_write_t *w, record_batch_builder_t *b, size_t *len)
{
    kwriter_t key, value;
    kw_init(&key, 64);
    kw_init(&value, 128);
    txn_record_write_key(&key,
                         (kslice_t){(const uint8_t *)w->entry->id, (int32_t)w->entry->id_len});
    if (!w->tombstone) {
        txn_record_value_t v;
        txn_transit_to_record(&w->transit, &v);
        txn_record_write_value(&value, &v);
        free(v.partitions);
    }
    record_batch_begin(b, txn_now_ms());
    record_batch_add(b, key.buf, (int32_t)key.len, w->tombstone ? NULL : value.buf,
                     w->tombstone ? -1 : (int32_t)value.len);
    const uint8_t *batch = record_batch_finish(b, len);
    kw_free(&key);
    kw_free(&value);
    return (uint8_t *)batch;
}

void txn_store_write(txn_coordinator_t *tc, txn_write_t *w)
{
    txn_entry_t *e = w->entry;
    assert(e != NULL && w->done != NULL);
    assert(w->tombstone || (int)w->transit.state == e->meta.pending);
    e->refs++;
    int32_t timeout_ms = w->tombstone ? TXN_TOMBSTONE_TIMEOUT_MS : w->transit.timeout_ms;
    ev_timer_init(&w->timer, write_timeout, timeout_ms / 1000.0, 0.);
    w->timer.data = w;
    txn_log_partition_t *p = part_get(tc, e->partition, false);
    const replica_partition_t *rp = part_replica(tc, e->partition);
    w->part = p;
    if (!write_current(w) || rp == NULL || !rp->is_leader ||
        rp->leader_epoch != p->coordinator_epoch) {
        w->part = NULL; /* not this epoch's: leave the entry alone */
        write_finish(tc, w, KAFKA_NOT_COORDINATOR);
        return;
    }
    record_batch_builder_t b;
    size_t len;
    uint8_t *batch = write_batch(w, &b, &len);
    replica_append_result_t res;
    int16_t err = replica_manager_leader_append(tc->replicas, rp, REPLICA_APPEND_COORDINATOR, -1,
                                                batch, len, &res);
    record_batch_builder_free(&b);
    if (err != KAFKA_NONE) {
        VLOG_WARN(TXN_MODULE, "%s-%d: append refused: %s", TXN_STATE_TOPIC, e->partition,
                  kafka_error_name(err));
        write_finish(tc, w, append_error(err));
        return;
    }
    const int64_t hw = res.high_watermark;
    /* The listener ran inside the append, but an append changes no role. */
    assert(p->state == TXN_LOG_ACTIVE);
    w->last_offset = res.last_offset;
    if (p->writes_tail)
        p->writes_tail->next = w;
    else
        p->writes_head = w;
    p->writes_tail = w;
    ev_timer_start(tc->loop, &w->timer);
    part_complete_writes(tc, p, hw);
}

/* ---- loading ---- */

static void load_skip(const txn_log_partition_t *p, const record_view_t *rec, const char *what)
{
    VLOG_WARN(TXN_MODULE, "%s-%d: offset %" PRId64 ": %s, skipped", TXN_STATE_TOPIC, p->id,
              rec->offset, what);
}

/* Replays one record: the log is the truth, so each record replaces (or,
 * as a tombstone, removes) its id's state. Unreadable records are skipped,
 * never trusted: the partition may hold another writer's data. */
static void load_apply(txn_coordinator_t *tc, txn_log_partition_t *p, const record_view_t *rec)
{
    assert(p->state == TXN_LOG_LOADING);
    kslice_t id;
    if (rec->key.ptr == NULL || !txn_record_read_key(rec->key.ptr, (size_t)rec->key.len, &id)) {
        load_skip(p, rec, "unreadable key");
        return;
    }
    const char *name = (const char *)id.ptr;
    const size_t len = (size_t)id.len;
    if (id_home(tc, name, len) != p->id) {
        load_skip(p, rec, "transactional id of another partition");
        return;
    }
    txn_entry_t *e = txn_entry_find(tc, name, len);
    if (e != NULL && e->partition != p->id) {
        /* The partition count changed under the ids (Kafka refuses to run
         * so); the partition that loaded it first keeps it. */
        load_skip(p, rec, "transactional id loaded from another partition");
        return;
    }
    if (rec->value.ptr == NULL) {
        if (e)
            txn_entry_remove(tc, e);
        return;
    }
    txn_record_value_t v;
    if (!txn_record_read_value(rec->value.ptr, (size_t)rec->value.len, &v)) {
        load_skip(p, rec, "unreadable transaction state");
        return;
    }
    txn_meta_t m;
    memset(&m, 0, sizeof(m));
    bool ok = txn_meta_from_record(&m, &v);
    free(v.partitions);
    if (!ok) {
        load_skip(p, rec, "impossible transaction state");
        return;
    }
    if (e) {
        txn_meta_free(&e->meta);
        e->meta = m;
    } else if (tc->nentries >= TXN_MAX_IDS) {
        txn_meta_free(&m);
        load_skip(p, rec, "too many transactional ids on this broker");
    } else {
        txn_entry_create(tc, name, len, p->id, &m);
    }
}

static void load_finish(txn_coordinator_t *tc, txn_log_partition_t *p)
{
    ev_timer_stop(tc->loop, &p->load_timer);
    p->state = TXN_LOG_ACTIVE;
    int64_t nids = 0;
    for (size_t b = 0; b < tc->nbuckets; b++)
        for (txn_entry_t *e = tc->buckets[b]; e; e = e->hnext)
            nids += e->partition == p->id;
    VLOG_INFO(TXN_MODULE,
              "%s-%d: loaded %" PRId64 " records, %" PRId64 " transactional ids in %" PRId64
              " ms (coordinator epoch %d)",
              TXN_STATE_TOPIC, p->id, p->loaded_records, nids, wall_clock_ms() - p->load_started_ms,
              p->coordinator_epoch);
    txn_coordinator_loaded(tc, p->id);
}

/* Replays the whole batches in buf. The log validated every batch on
 * append and recovery, so a batch that does not parse is not expected; it
 * is skipped alone, by its Length, so that the records after it load. */
static void load_batches(txn_coordinator_t *tc, txn_log_partition_t *p, const uint8_t *buf,
                         size_t len)
{
    size_t at = 0;
    while (at < len) {
        record_batch_iter_t it;
        record_batch_iter_init(&it, buf + at, len - at);
        record_view_t rec;
        int rc;
        while ((rc = record_batch_iter_next(&it, &rec)) == 1) {
            if (rec.offset < p->load_offset)
                continue; /* the batch holding load_offset began before it */
            load_apply(tc, p, &rec);
            p->loaded_records++;
        }
        if (rc == 0)
            return;
        size_t bad = at + record_batch_iter_consumed(&it);
        kreader_t r;
        kr_init(&r, buf + bad, len - bad);
        int64_t base_offset;
        int32_t length;
        bool sized = kr_i64(&r, &base_offset) && kr_i32(&r, &length) &&
                     length >= BATCH_HEADER_SIZE - BATCH_LOG_OVERHEAD &&
                     (size_t)length <= len - bad - BATCH_LOG_OVERHEAD;
        VLOG_ERR(TXN_MODULE, "%s-%d: unreadable record batch at offset %" PRId64 "%s",
                 TXN_STATE_TOPIC, p->id, sized ? base_offset : p->load_offset,
                 sized ? ", skipped" : "; the rest of this read is skipped");
        if (!sized)
            return;
        at = bad + BATCH_LOG_OVERHEAD + (size_t)length;
        assert(at <= len);
    }
}

static void load_step(struct ev_loop *loop, ev_timer *timer, int revents)
{
    txn_log_partition_t *p = timer->data;
    txn_coordinator_t *tc = p->tc;
    (void)loop;
    (void)revents;
    assert(p->state == TXN_LOG_LOADING);
    const replica_partition_t *rp = part_replica(tc, p->id);
    if (rp == NULL || !rp->is_leader || rp->leader_epoch != p->coordinator_epoch)
        return; /* the role-change event unloads it */
    int64_t end = partition_log_end_offset(rp->log);
    if (p->load_offset < partition_log_start_offset(rp->log))
        p->load_offset = partition_log_start_offset(rp->log);
    if (p->load_offset >= end) {
        load_finish(tc, p);
        return;
    }
    uint8_t *buf;
    size_t len;
    int64_t next;
    log_err_t err = partition_log_read_copy(rp->log, p->load_offset, TXN_LOAD_CHUNK_BYTES, end,
                                            &buf, &len, &next);
    if (err != LOG_OK) {
        /* An I/O error: the partition stays loading and clients retry; a
         * second later it tries again, without spinning. */
        VLOG_ERR(TXN_MODULE, "%s-%d: loading at offset %" PRId64 " failed: %s", TXN_STATE_TOPIC,
                 p->id, p->load_offset, log_err_str(err));
        ev_timer_set(timer, 1., 0.);
        ev_timer_start(tc->loop, timer);
        return;
    }
    if (buf == NULL) {
        load_finish(tc, p);
        return;
    }
    load_batches(tc, p, buf, len);
    free(buf);
    p->load_offset = next > p->load_offset ? next : end;
    ev_timer_set(timer, 0., 0.);
    ev_timer_start(tc->loop, timer);
}

static void part_load(txn_coordinator_t *tc, txn_log_partition_t *p, const replica_partition_t *rp)
{
    assert(p->state == TXN_LOG_NOT_LEADER);
    assert(p->writes_head == NULL);
    p->state = TXN_LOG_LOADING;
    p->coordinator_epoch = rp->leader_epoch;
    p->load_offset = partition_log_start_offset(rp->log);
    p->load_started_ms = wall_clock_ms();
    p->loaded_records = 0;
    ev_timer_init(&p->load_timer, load_step, 0., 0.);
    p->load_timer.data = p;
    ev_timer_start(tc->loop, &p->load_timer);
    VLOG_INFO(TXN_MODULE, "%s-%d: leader at epoch %d, loading transactions from offset %" PRId64,
              TXN_STATE_TOPIC, p->id, rp->leader_epoch, p->load_offset);
}

static void part_unload(txn_coordinator_t *tc, txn_log_partition_t *p, int16_t error)
{
    assert(p->state != TXN_LOG_NOT_LEADER);
    ev_timer_stop(tc->loop, &p->load_timer);
    p->state = TXN_LOG_NOT_LEADER;
    while (p->writes_head) {
        txn_write_t *w = p->writes_head;
        write_unlink(p, w);
        write_finish(tc, w, error);
    }
    int32_t dropped = 0;
    for (size_t b = 0; b < tc->nbuckets; b++) {
        txn_entry_t *e = tc->buckets[b];
        while (e) {
            txn_entry_t *next = e->hnext;
            if (e->partition == p->id) {
                txn_entry_remove(tc, e);
                dropped++;
            }
            e = next;
        }
    }
    VLOG_INFO(TXN_MODULE, "%s-%d: no longer leader; dropped %d transactional ids", TXN_STATE_TOPIC,
              p->id, dropped);
}

void txn_store_partition_event(txn_coordinator_t *tc, int32_t partition)
{
    if (tc->freeing || partition < 0)
        return;
    const replica_partition_t *rp = part_replica(tc, partition);
    txn_log_partition_t *p = part_get(tc, partition, rp != NULL && rp->is_leader);
    if (p == NULL)
        return;
    if (rp == NULL || !rp->is_leader) {
        if (p->state != TXN_LOG_NOT_LEADER)
            part_unload(tc, p, KAFKA_NOT_COORDINATOR);
        return;
    }
    if (p->state != TXN_LOG_NOT_LEADER && p->coordinator_epoch != rp->leader_epoch)
        part_unload(tc, p, KAFKA_NOT_COORDINATOR);
    if (p->state == TXN_LOG_NOT_LEADER)
        part_load(tc, p, rp);
    else if (p->state == TXN_LOG_ACTIVE)
        part_complete_writes(tc, p, partition_log_high_watermark(rp->log));
}

void txn_store_free(txn_coordinator_t *tc)
{
    for (int32_t i = 0; i < tc->nparts; i++) {
        txn_log_partition_t *p = tc->parts[i];
        if (p == NULL)
            continue;
        if (p->state != TXN_LOG_NOT_LEADER)
            part_unload(tc, p, KAFKA_COORDINATOR_NOT_AVAILABLE);
        free(p);
    }
    free(tc->parts);
    tc->parts = NULL;
    tc->nparts = 0;
    /* Ids of partitions never led cannot exist. */
    assert(tc->nentries == 0);
    free(tc->buckets);
    tc->buckets = NULL;
    tc->nbuckets = 0;
}
