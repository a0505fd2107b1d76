/* The store: the transactional ids this broker coordinates and the
 * __transaction_state partitions they live in. A partition's leader loads
 * it (replays every record, a bounded chunk per loop iteration, answering
 * COORDINATOR_LOAD_IN_PROGRESS meanwhile), then serves its ids; state
 * changes are leader appends that wait, in offset order, until the
 * partition's high watermark passes them, and only then become the ids'
 * metadata. Losing the leadership fails the waiting writes with
 * NOT_COORDINATOR and drops the partition's ids: the new leader rebuilds
 * them from the same records. That lifecycle and the write queue are
 * coord_log's (shared with the group coordinator); this file holds the
 * ids' rules: the id table, what a replayed record means, how a completed
 * write becomes the id's metadata, and Kafka's appendTransactionToLog
 * error mapping. */
#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "fnv1a.h"
#include "coordinator.h"
#include "group_coordinator.h"
#include "kafka_errors.h"
#include "record_batch.h"
#include "txn_internal.h"
#include "txn_records.h"
#include "vlog.h"
#include "xalloc.h"

/* A tombstone's wait for the in-sync replicas: Kafka's request.timeout.ms,
 * with which it writes them. */
#define TXN_TOMBSTONE_TIMEOUT_MS 30000

/* ---- entries ---- */

static uint64_t id_hash(const char *id, size_t len)
{
    return fnv1a(FNV1A_BASIS, id, len);
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
    int16_t error = coord_log_route(&tc->store, *partition);
    if (error == KAFKA_NONE)
        *coordinator_epoch = coord_log_partition(&tc->store, *partition)->leader_epoch;
    return error;
}

coord_log_state_t txn_store_partition_state(const txn_coordinator_t *tc, int32_t partition)
{
    const coord_log_partition_t *p = coord_log_partition(&tc->store, partition);
    return p ? p->state : COORD_LOG_NOT_LEADER;
}

/* ---- writes ---- */

/* The write's entry is still the one its epoch's load made, in a partition
 * this broker leads at that epoch. */
static bool write_current(const txn_write_t *w)
{
    const coord_log_partition_t *p = w->log.part;
    return !w->entry->removed && p != NULL && p->state == COORD_LOG_ACTIVE &&
           p->leader_epoch == w->coordinator_epoch;
}

/* Applies the outcome to the entry (appendTransactionToLog's callback),
 * runs done, drops the entry ref and frees w. w is out of its partition's
 * queue (or never was in it), its timer stopped. */
static void write_finish(txn_coordinator_t *tc, txn_write_t *w, int16_t error)
{
    assert(w->log.next == NULL);
    txn_entry_t *e = w->entry;
    assert(e->refs > 0);
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

static void store_write_done(void *owner, coord_log_write_t *w, int16_t error)
{
    write_finish(owner, (txn_write_t *)w, error);
}

/* Kafka: REQUEST_TIMED_OUT becomes COORDINATOR_NOT_AVAILABLE, which clients
 * retry. */
static int16_t write_timed_out_error(const coord_log_write_t *w)
{
    (void)w;
    return KAFKA_COORDINATOR_NOT_AVAILABLE;
}

/* Kafka's appendTransactionToLog mapping of an append's refusal to what
 * the coordinator answers: too few replicas (or a timeout) is retriable
 * COORDINATOR_NOT_AVAILABLE, a lost leadership or a storage error
 * NOT_COORDINATOR (the client looks for the coordinator again), a record
 * too large UNKNOWN_SERVER_ERROR; anything else as it is. */
static int16_t append_error(const coord_log_write_t *w, int16_t error)
{
    (void)w;
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
    coord_log_partition_t *p = coord_log_writable(&tc->store, e->partition);
    w->log.part = p;
    if (p == NULL || !write_current(w)) {
        w->log.part = NULL; /* not this epoch's: leave the entry alone */
        write_finish(tc, w, KAFKA_NOT_COORDINATOR);
        return;
    }
    record_batch_builder_t b;
    size_t len;
    uint8_t *batch = write_batch(w, &b, &len);
    coord_log_append(&tc->store, p, batch, len, &w->log, timeout_ms);
    record_batch_builder_free(&b);
}

/* ---- loading ---- */

static void load_skip(const coord_log_partition_t *p, const record_view_t *rec, const char *what)
{
    VLOG_WARN(TXN_MODULE, "%s-%d: offset %" PRId64 ": %s, skipped", TXN_STATE_TOPIC, p->id,
              rec->offset, what);
}

/* Replays one record: the log is the truth, so each record replaces (or,
 * as a tombstone, removes) its id's state. Unreadable records are skipped,
 * never trusted: the partition may hold another writer's data. */
static void load_apply(txn_coordinator_t *tc, coord_log_partition_t *p, const record_view_t *rec)
{
    assert(p->state == COORD_LOG_LOADING);
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

/* Replays one whole batch: __transaction_state holds no transactions, so
 * every record is an id's state (a control record's key does not read). */
static void load_batch(void *owner, coord_log_partition_t *p, const uint8_t *buf, size_t len)
{
    record_batch_iter_t it;
    record_batch_iter_init(&it, buf, len);
    record_view_t rec;
    int rc;
    while ((rc = record_batch_iter_next(&it, &rec)) == 1) {
        if (rec.offset < p->load_offset)
            continue; /* the batch holding load_offset began before it */
        load_apply(owner, p, &rec);
        p->loaded_records++;
    }
    if (rc < 0) {
        kreader_t r;
        kr_init(&r, buf, len);
        int64_t base_offset = -1;
        kr_i64(&r, &base_offset); /* the store passes whole batches: 8 bytes are there */
        VLOG_ERR(TXN_MODULE, "%s-%d: unreadable record batch at offset %" PRId64 ", skipped",
                 TXN_STATE_TOPIC, p->id, base_offset);
    }
}

static int64_t store_loaded(void *owner, coord_log_partition_t *p)
{
    txn_coordinator_t *tc = owner;
    int64_t nids = 0;
    for (size_t b = 0; b < tc->nbuckets; b++)
        for (txn_entry_t *e = tc->buckets[b]; e; e = e->hnext)
            nids += e->partition == p->id;
    txn_coordinator_loaded(tc, p->id);
    return nids;
}

static int32_t store_unloaded(void *owner, coord_log_partition_t *p, int16_t error)
{
    txn_coordinator_t *tc = owner;
    (void)error; /* the ids' waiting writes were answered with it already */
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
    return dropped;
}

static const coord_log_ops_t store_ops = {
    .replay_batch = load_batch,
    .loaded = store_loaded,
    .unloaded = store_unloaded,
    .write_done = store_write_done,
    .timed_out_error = write_timed_out_error,
    .append_error = append_error,
};

static const coord_log_names_t store_names = {
    .module = TXN_MODULE,
    .topic = TXN_STATE_TOPIC,
    .loading = "transactions",
    .entities = "transactional ids",
    .epoch = "coordinator epoch",
};

void txn_store_init(txn_coordinator_t *tc)
{
    coord_log_init(&tc->store, tc->loop, tc->replicas, &store_ops, &store_names, tc,
                   sizeof(coord_log_partition_t));
}

void txn_store_partition_event(txn_coordinator_t *tc, int32_t partition)
{
    if (tc->freeing || partition < 0)
        return;
    coord_log_partition_event(&tc->store, partition);
}

void txn_store_free(txn_coordinator_t *tc)
{
    coord_log_free(&tc->store, NULL);
    /* Ids of partitions never led cannot exist. */
    assert(tc->nentries == 0);
    free(tc->buckets);
    tc->buckets = NULL;
    tc->nbuckets = 0;
}
