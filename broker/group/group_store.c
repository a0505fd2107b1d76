/* The store: the __consumer_offsets partitions this broker leads. A
 * partition's leader loads it (replays every record, a bounded chunk per
 * loop iteration, answering COORDINATOR_LOAD_IN_PROGRESS meanwhile), then
 * serves its groups; writes are leader appends that wait, in offset order,
 * until the partition's high watermark passes them. Losing the leadership
 * fails the waiting writes with NOT_COORDINATOR and drops the partition's
 * groups: the new leader rebuilds them from the same records. That
 * lifecycle and the write queue are coord_log's (shared with the
 * transaction coordinator); this file holds the groups' rules: what a
 * replayed record means, what loading and unloading do to the groups, and
 * Kafka's error mapping for the offsets writes. */
#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator.h"
#include "group_internal.h"
#include "group_records.h"
#include "kafka_errors.h"
#include "record_batch.h"
#include "vlog.h"
#include "xalloc.h"

/* ---- hash table ---- */

static void htable_grow(htable_t *t)
{
    size_t n = t->nbuckets ? t->nbuckets * 2 : 16;
    hnode_t **b = xcalloc(n, sizeof(*b));
    for (size_t i = 0; i < t->nbuckets; i++) {
        hnode_t *e = t->buckets[i];
        while (e) {
            hnode_t *next = e->next;
            size_t at = e->hash & (n - 1);
            e->next = b[at];
            b[at] = e;
            e = next;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->nbuckets = n;
}

void htable_insert(htable_t *t, hnode_t *n)
{
    if (t->count >= t->nbuckets)
        htable_grow(t);
    assert(t->nbuckets > 0 && (t->nbuckets & (t->nbuckets - 1)) == 0);
    size_t at = n->hash & (t->nbuckets - 1);
    n->next = t->buckets[at];
    t->buckets[at] = n;
    t->count++;
}

void htable_remove(htable_t *t, hnode_t *n)
{
    assert(t->count > 0);
    hnode_t **pp = &t->buckets[n->hash & (t->nbuckets - 1)];
    while (*pp != n) {
        assert(*pp != NULL && "node not in its table");
        pp = &(*pp)->next;
    }
    *pp = n->next;
    n->next = NULL;
    t->count--;
}

hnode_t *htable_chain(const htable_t *t, uint64_t hash)
{
    return t->nbuckets ? t->buckets[hash & (t->nbuckets - 1)] : NULL;
}

void htable_free(htable_t *t)
{
    free(t->buckets);
    memset(t, 0, sizeof(*t));
}

/* ---- partitions ---- */

offsets_partition_t *group_store_partition(group_coordinator_t *gc, int32_t id)
{
    return (offsets_partition_t *)coord_log_partition(&gc->store, id);
}

/* The offsets partition group `id` belongs to; -1 while the metadata has
 * no offsets topic. */
static int32_t group_home(group_coordinator_t *gc, const uint8_t *id, size_t len)
{
    const cluster_metadata_t *md = coordinator_metadata(gc->coord);
    const md_topic_t *t =
        cluster_metadata_topic(md, GROUP_OFFSETS_TOPIC, strlen(GROUP_OFFSETS_TOPIC));
    if (t == NULL || t->npartitions <= 0)
        return -1;
    return group_partition_for(id, len, t->npartitions);
}

int16_t group_store_route(group_coordinator_t *gc, const uint8_t *id, size_t len,
                          int32_t *partition)
{
    *partition = group_home(gc, id, len);
    return coord_log_route(&gc->store, *partition);
}

/* ---- writes ---- */

/* Runs w's done once, drops its group ref and frees it. w is out of its
 * partition's queue (or never was in it), its timer stopped. */
static void write_finish(group_coordinator_t *gc, group_write_t *w, int16_t error)
{
    assert(w->log.next == NULL);
    assert(w->group == NULL || w->group->refs > 0);
    if (w->group && w->is_commit)
        w->group->commits_in_flight--;
    w->done(gc, w, error);
    if (w->group)
        group_release(w->group);
    free(w);
}

static void store_write_done(void *owner, coord_log_write_t *w, int16_t error)
{
    write_finish(owner, group_write_of(w), error);
}

/* Kafka's answers for a write that timed out waiting for the ISR, or that
 * the log refused as too large: a commit's client retries the commit
 * (REQUEST_TIMED_OUT) or gives up on it (INVALID_COMMIT_OFFSET_SIZE); a
 * group's metadata (a generation's assignment, a static member's new id)
 * sends the members round again (REBALANCE_IN_PROGRESS: Kafka's storeGroup
 * mapping) or fails (UNKNOWN_SERVER_ERROR). Tombstones (DeleteGroups,
 * OffsetDelete) have no members to send round: a timeout is a coordinator
 * error their admin clients retry on. */
static int16_t write_timed_out_error(const coord_log_write_t *lw)
{
    const group_write_t *w = (const group_write_t *)lw;
    if (w->is_commit || w->is_txn_commit)
        return KAFKA_REQUEST_TIMED_OUT;
    return w->is_metadata ? KAFKA_REBALANCE_IN_PROGRESS : KAFKA_COORDINATOR_NOT_AVAILABLE;
}

static int16_t write_too_large_error(const group_write_t *w)
{
    return w->is_commit || w->is_txn_commit ? KAFKA_INVALID_COMMIT_OFFSET_SIZE
                                            : KAFKA_UNKNOWN_SERVER_ERROR;
}

/* Kafka's mapping of append errors for the coordinator's writes
 * (maybeConvertOffsetCommitError). A transactional commit's producer errors
 * reach its producer as they are: a stale epoch (INVALID_PRODUCER_EPOCH) is
 * how a fenced producer learns it is. */
static int16_t append_error(const coord_log_write_t *lw, int16_t error)
{
    const group_write_t *w = (const group_write_t *)lw;
    assert(error != KAFKA_NONE);
    if (error == KAFKA_MESSAGE_TOO_LARGE || error == KAFKA_RECORD_LIST_TOO_LARGE)
        return write_too_large_error(w);
    if (error == KAFKA_NOT_ENOUGH_REPLICAS || error == KAFKA_NOT_ENOUGH_REPLICAS_AFTER_APPEND ||
        error == KAFKA_UNKNOWN_TOPIC_OR_PARTITION)
        return KAFKA_COORDINATOR_NOT_AVAILABLE;
    if (w->is_txn_commit &&
        (error == KAFKA_INVALID_PRODUCER_EPOCH || error == KAFKA_INVALID_TXN_STATE))
        return error;
    return KAFKA_NOT_COORDINATOR; /* the storage error and the rest */
}

void group_store_write(group_coordinator_t *gc, int32_t partition, uint8_t *batch, size_t len,
                       group_write_t *w)
{
    assert(w->done != NULL);
    assert(batch != NULL && len > 0);
    if (w->group) {
        w->group->refs++;
        w->group->commits_in_flight += w->is_commit;
    }
    coord_log_partition_t *p = coord_log_writable(&gc->store, partition);
    if (p == NULL) {
        write_finish(gc, w, KAFKA_NOT_COORDINATOR);
        return;
    }
    coord_log_append(&gc->store, p, batch, len, &w->log, gc->cfg.offsets_commit_timeout_ms);
}

/* ---- loading ---- */

static void load_skip(const offsets_partition_t *p, const record_view_t *rec, const char *what)
{
    VLOG_WARN(GROUP_MODULE, "%s-%d: offset %" PRId64 ": %s, skipped", GROUP_OFFSETS_TOPIC,
              p->log.id, rec->offset, what);
}

/* What replaying a record needs of its batch. */
typedef struct load_batch {
    int64_t base_offset; /* the order rule's appended offset */
    int64_t producer_id; /* a transactional batch's producer; -1: not transactional */
} load_batch_t;

/* Replays an offset commit (or its tombstone): a regular one overwrites
 * (or deletes) the committed offset, a transactional one is held pending
 * under its producer until that producer's marker. */
static void load_offset_commit(group_coordinator_t *gc, offsets_partition_t *p, group_t *g,
                               const group_record_key_t *key, const record_view_t *rec,
                               const load_batch_t *batch)
{
    const char *topic = (const char *)key->topic.ptr;
    size_t topic_len = (size_t)key->topic.len;
    if (rec->value.ptr == NULL) {
        if (g == NULL)
            return;
        if (batch->producer_id >= 0) {
            group_txn_t *txn = group_txn_get(gc, g, batch->producer_id, false);
            if (txn)
                group_txn_offset_drop(txn, topic, topic_len, key->partition);
            return;
        }
        committed_offset_t *o = group_offset_find(g, topic, topic_len, key->partition);
        if (o)
            group_offset_remove(g, o);
        if (g->offsets.count == 0 && g->txns == NULL && g->generation == 0 &&
            g->protocol_type == NULL)
            group_remove(gc, g, KAFKA_NOT_COORDINATOR); /* it only ever held offsets */
        return;
    }
    group_offset_value_t v;
    if (!group_record_read_offset_value(rec->value.ptr, (size_t)rec->value.len, &v)) {
        load_skip(p, rec, "unreadable offset commit");
        return;
    }
    if (g == NULL)
        g = group_create(gc, (const char *)key->group.ptr, (size_t)key->group.len, p->log.id);
    const char *metadata = (const char *)v.metadata.ptr;
    size_t metadata_len = v.metadata.ptr ? (size_t)v.metadata.len : 0;
    if (batch->producer_id >= 0) {
        group_txn_t *txn = group_txn_get(gc, g, batch->producer_id, true);
        group_txn_offset_set(txn, topic, topic_len, key->partition, v.offset, v.leader_epoch,
                             metadata, metadata_len, v.commit_timestamp, batch->base_offset);
        return;
    }
    group_offset_set(g, topic, topic_len, key->partition, v.offset, v.leader_epoch, metadata,
                     metadata_len, v.commit_timestamp, v.expire_timestamp, batch->base_offset);
}

/* Replays one record: the log is the truth, so each record overwrites (or,
 * as a tombstone, deletes) what its key names. Unreadable records are
 * skipped, never trusted: the partition may hold another writer's data. */
static void load_apply(group_coordinator_t *gc, offsets_partition_t *p, const record_view_t *rec,
                       const load_batch_t *batch)
{
    assert(p->log.state == COORD_LOG_LOADING);
    group_record_key_t key;
    if (rec->key.ptr == NULL || !group_record_read_key(rec->key.ptr, (size_t)rec->key.len, &key)) {
        load_skip(p, rec, "unreadable key");
        return;
    }
    assert(key.type == GROUP_RECORD_OFFSET_COMMIT || key.type == GROUP_RECORD_GROUP_METADATA);
    const char *id = (const char *)key.group.ptr;
    size_t id_len = (size_t)key.group.len;
    group_t *g = group_find(gc, id, id_len);
    if (group_home(gc, key.group.ptr, id_len) != p->log.id || (g && g->partition != p->log.id)) {
        /* Foreign data: the group lives in another partition, whose own
         * load (here or elsewhere) is the truth about it. */
        load_skip(p, rec, "group of another partition");
        return;
    }
    if (key.type == GROUP_RECORD_OFFSET_COMMIT) {
        load_offset_commit(gc, p, g, &key, rec, batch);
        return;
    }
    if (rec->value.ptr == NULL) {
        if (g)
            group_remove(gc, g, KAFKA_NOT_COORDINATOR);
        return;
    }
    group_metadata_value_t v;
    if (!group_record_read_metadata_value(rec->value.ptr, (size_t)rec->value.len, &v)) {
        load_skip(p, rec, "unreadable group metadata");
        return;
    }
    if (v.nmembers > 0 && v.protocol.ptr == NULL) {
        /* Kafka writes members only with the protocol they were assigned
         * under; without it no rebalance could choose one. */
        load_skip(p, rec, "group metadata with members but no protocol");
        free(v.members);
        return;
    }
    if (g == NULL)
        g = group_create(gc, id, id_len, p->log.id);
    group_apply_metadata(gc, g, &v);
    free(v.members);
}

/* Replays one whole batch of len bytes: a transaction marker completes its
 * producer's pending offsets; a data batch's records are applied. */
static void load_batch(void *owner, coord_log_partition_t *lp, const uint8_t *buf, size_t len)
{
    group_coordinator_t *gc = owner;
    offsets_partition_t *p = (offsets_partition_t *)lp;
    assert(len >= BATCH_HEADER_SIZE);
    record_batch_header_t h;
    bool whole = record_batch_read_header(buf, len, &h);
    assert(whole && record_batch_size(&h) == (int64_t)len);
    (void)whole;
    load_batch_t batch = {.base_offset = h.base_offset,
                          .producer_id = record_batch_is_transactional(&h) ? h.producer_id : -1};
    if (record_batch_is_control(&h)) {
        if (record_batch_last_offset(&h) < p->log.load_offset)
            return; /* replayed by the previous read */
        int32_t coordinator_epoch;
        int marker = record_batch_parse_txn_marker(buf, len, &coordinator_epoch);
        if (marker < 0 || h.producer_id < 0) {
            /* Its producer's offsets stay pending (unstable) rather than
             * be committed or dropped on a guess. */
            VLOG_ERR(GROUP_MODULE,
                     "%s-%d: unreadable transaction marker at offset %" PRId64 ", skipped",
                     GROUP_OFFSETS_TOPIC, p->log.id, h.base_offset);
            return;
        }
        group_txns_complete(gc, p, h.producer_id, marker == RECORD_BATCH_MARKER_COMMIT,
                            h.base_offset);
        p->log.loaded_records++;
        return;
    }
    if (record_batch_is_transactional(&h) && h.producer_id < 0) {
        VLOG_ERR(GROUP_MODULE,
                 "%s-%d: transactional batch at offset %" PRId64 " without a producer id, skipped",
                 GROUP_OFFSETS_TOPIC, p->log.id, h.base_offset);
        return;
    }
    record_batch_iter_t it;
    record_batch_iter_init(&it, buf, len);
    record_view_t rec;
    int rc;
    while ((rc = record_batch_iter_next(&it, &rec)) == 1) {
        if (rec.offset < p->log.load_offset)
            continue; /* the batch holding load_offset began before it */
        load_apply(gc, p, &rec, &batch);
        p->log.loaded_records++;
    }
    if (rc < 0)
        VLOG_ERR(GROUP_MODULE, "%s-%d: unreadable record batch at offset %" PRId64 ", skipped",
                 GROUP_OFFSETS_TOPIC, p->log.id, batch.base_offset);
}

/* The partition's groups go live: with members Stable (session timers
 * running), the others Empty. */
static int64_t store_loaded(void *owner, coord_log_partition_t *p)
{
    group_coordinator_t *gc = owner;
    int64_t ngroups = 0;
    for (size_t b = 0; b < gc->groups.nbuckets; b++)
        for (hnode_t *n = gc->groups.buckets[b]; n; n = n->next) {
            group_t *g = (group_t *)n;
            if (g->partition == p->id) {
                group_loaded(gc, g);
                ngroups++;
            }
        }
    return ngroups;
}

static int32_t store_unloaded(void *owner, coord_log_partition_t *p, int16_t error)
{
    group_coordinator_t *gc = owner;
    int32_t dropped = 0;
    for (size_t b = 0; b < gc->groups.nbuckets; b++) {
        hnode_t *n = gc->groups.buckets[b];
        while (n) {
            hnode_t *next = n->next;
            group_t *g = (group_t *)n;
            if (g->partition == p->id) {
                group_remove(gc, g, error);
                dropped++;
            }
            n = next;
        }
    }
    assert(((offsets_partition_t *)p)->txns.count == 0 &&
           "every pending transaction belongs to a dropped group");
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
    .module = GROUP_MODULE,
    .topic = GROUP_OFFSETS_TOPIC,
    .loading = "groups",
    .entities = "groups",
    .epoch = "leader epoch",
};

void group_store_init(group_coordinator_t *gc)
{
    coord_log_init(&gc->store, gc->loop, gc->replicas, &store_ops, &store_names, gc,
                   sizeof(offsets_partition_t));
}

void group_store_partition_event(group_coordinator_t *gc, int32_t partition)
{
    if (gc->stopping || partition < 0)
        return;
    coord_log_partition_event(&gc->store, partition);
}

static void store_free_partition(coord_log_partition_t *p)
{
    offsets_partition_t *op = (offsets_partition_t *)p;
    assert(op->txns.count == 0);
    htable_free(&op->txns);
}

void group_store_free(group_coordinator_t *gc)
{
    coord_log_free(&gc->store, store_free_partition);
}
