/* The store: the __consumer_offsets partitions this broker leads. A
 * partition's leader loads it (replays every record, a bounded chunk per
 * loop iteration, answering COORDINATOR_LOAD_IN_PROGRESS meanwhile), then
 * serves its groups; writes are leader appends that wait, in offset order,
 * until the partition's high watermark passes them. Losing the leadership
 * fails the waiting writes with NOT_COORDINATOR and drops the partition's
 * groups: the new leader rebuilds them from the same records. */
#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator.h"
#include "group_internal.h"
#include "group_records.h"
#include "kafka_errors.h"
#include "record_batch.h"
#include "replica_manager.h"
#include "vlog.h"
#include "wall_clock.h"
#include "xalloc.h"

/* Bytes replayed per loop iteration while loading: large enough that
 * 100,000 commits load in well under a second, small enough that the loop
 * keeps serving other partitions and clients in between. */
#define GROUP_LOAD_CHUNK_BYTES (4 << 20)

/* ---- hash table ---- */

uint64_t group_hash_bytes(uint64_t h, const void *data, size_t len)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ULL; /* FNV-1a prime */
    }
    return h;
}

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

static offsets_partition_t *part_get(group_coordinator_t *gc, int32_t id, bool create)
{
    assert(id >= 0);
    if (id >= gc->nparts) {
        if (!create)
            return NULL;
        gc->parts = xrealloc(gc->parts, (size_t)(id + 1) * sizeof(*gc->parts));
        memset(gc->parts + gc->nparts, 0, (size_t)(id + 1 - gc->nparts) * sizeof(*gc->parts));
        gc->nparts = id + 1;
    }
    if (gc->parts[id] == NULL && create) {
        offsets_partition_t *p = xcalloc(1, sizeof(*p));
        p->gc = gc;
        p->id = id;
        p->state = OFFSETS_NOT_LEADER;
        gc->parts[id] = p;
    }
    return gc->parts[id];
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
    if (*partition < 0)
        return KAFKA_NOT_COORDINATOR;
    offsets_partition_t *p = part_get(gc, *partition, false);
    if (p == NULL || p->state == OFFSETS_NOT_LEADER)
        return KAFKA_NOT_COORDINATOR;
    return p->state == OFFSETS_LOADING ? KAFKA_COORDINATOR_LOAD_IN_PROGRESS : KAFKA_NONE;
}

static const replica_partition_t *part_replica(group_coordinator_t *gc, int32_t id)
{
    return replica_manager_get(gc->replicas, GROUP_OFFSETS_TOPIC, strlen(GROUP_OFFSETS_TOPIC), id);
}

/* ---- writes ---- */

/* Runs w's done once, drops its group ref and frees it. w is out of its
 * partition's queue (or never was in it). */
static void write_finish(group_coordinator_t *gc, group_write_t *w, int16_t error)
{
    assert(w->next == NULL);
    assert(w->group == NULL || w->group->refs > 0);
    ev_timer_stop(gc->loop, &w->timer);
    if (w->group && w->is_commit)
        w->group->commits_in_flight--;
    w->done(gc, w, error);
    if (w->group)
        group_release(w->group);
    free(w);
}

static void write_unlink(offsets_partition_t *p, group_write_t *w)
{
    group_write_t **pp = &p->writes_head;
    group_write_t *prev = NULL;
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

/* Kafka's answers for a write that timed out waiting for the ISR, or that
 * the log refused as too large: a commit's client retries the commit
 * (REQUEST_TIMED_OUT) or gives up on it (INVALID_COMMIT_OFFSET_SIZE); a
 * group's metadata (a generation's assignment, a static member's new id)
 * sends the members round again (REBALANCE_IN_PROGRESS: Kafka's storeGroup
 * mapping) or fails (UNKNOWN_SERVER_ERROR). Tombstones (DeleteGroups,
 * OffsetDelete) have no members to send round: a timeout is a coordinator
 * error their admin clients retry on. */
static int16_t write_timed_out_error(const group_write_t *w)
{
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
static int16_t append_error(const group_write_t *w, int16_t error)
{
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

static void write_timeout(struct ev_loop *loop, ev_timer *timer, int revents)
{
    group_write_t *w = timer->data;
    (void)loop;
    (void)revents;
    write_unlink(w->part, w);
    write_finish(w->part->gc, w, write_timed_out_error(w));
}

/* Completes, in offset order, the writes the high watermark passed. */
static void part_complete_writes(group_coordinator_t *gc, offsets_partition_t *p, int64_t hw)
{
    assert(p->state == OFFSETS_ACTIVE);
    while (p->writes_head && p->writes_head->last_offset < hw) {
        group_write_t *w = p->writes_head;
        write_unlink(p, w);
        write_finish(gc, w, KAFKA_NONE);
    }
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
    ev_timer_init(&w->timer, write_timeout, gc->cfg.offsets_commit_timeout_ms / 1000.0, 0.);
    w->timer.data = w;
    offsets_partition_t *p = part_get(gc, partition, false);
    const replica_partition_t *rp = part_replica(gc, partition);
    if (p == NULL || p->state != OFFSETS_ACTIVE || rp == NULL || !rp->is_leader ||
        rp->leader_epoch != p->leader_epoch) {
        write_finish(gc, w, KAFKA_NOT_COORDINATOR);
        return;
    }
    w->part = p;
    replica_append_result_t info;
    int16_t error = replica_manager_leader_append(gc->replicas, rp, REPLICA_APPEND_COORDINATOR, -1,
                                                  batch, len, &info);
    if (error != KAFKA_NONE) {
        VLOG_WARN(GROUP_MODULE, "%s-%d: append refused: %s", GROUP_OFFSETS_TOPIC, partition,
                  kafka_error_name(error));
        write_finish(gc, w, append_error(w, error));
        return;
    }
    int64_t hw = info.high_watermark;
    /* The listener ran inside the append (a high-watermark move completes
     * earlier writes), but only a role change unloads, and an append
     * changes no role. */
    assert(p->state == OFFSETS_ACTIVE);
    w->base_offset = info.first_offset;
    w->last_offset = info.last_offset;
    if (hw > w->last_offset && p->writes_head == NULL) {
        write_finish(gc, w, KAFKA_NONE);
        return;
    }
    if (p->writes_tail)
        p->writes_tail->next = w;
    else
        p->writes_head = w;
    p->writes_tail = w;
    ev_timer_start(gc->loop, &w->timer);
    part_complete_writes(gc, p, hw);
}

/* ---- loading ---- */

static void load_skip(const offsets_partition_t *p, const record_view_t *rec, const char *what)
{
    VLOG_WARN(GROUP_MODULE, "%s-%d: offset %" PRId64 ": %s, skipped", GROUP_OFFSETS_TOPIC, p->id,
              rec->offset, what);
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
        g = group_create(gc, (const char *)key->group.ptr, (size_t)key->group.len, p->id);
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
    assert(p->state == OFFSETS_LOADING);
    group_record_key_t key;
    if (rec->key.ptr == NULL || !group_record_read_key(rec->key.ptr, (size_t)rec->key.len, &key)) {
        load_skip(p, rec, "unreadable key");
        return;
    }
    assert(key.type == GROUP_RECORD_OFFSET_COMMIT || key.type == GROUP_RECORD_GROUP_METADATA);
    const char *id = (const char *)key.group.ptr;
    size_t id_len = (size_t)key.group.len;
    group_t *g = group_find(gc, id, id_len);
    if (group_home(gc, key.group.ptr, id_len) != p->id || (g && g->partition != p->id)) {
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
        g = group_create(gc, id, id_len, p->id);
    group_apply_metadata(gc, g, &v);
    free(v.members);
}

static void load_finish(group_coordinator_t *gc, offsets_partition_t *p)
{
    ev_timer_stop(gc->loop, &p->load_timer);
    p->state = OFFSETS_ACTIVE;
    int64_t ngroups = 0;
    for (size_t b = 0; b < gc->groups.nbuckets; b++)
        for (hnode_t *n = gc->groups.buckets[b]; n; n = n->next) {
            group_t *g = (group_t *)n;
            if (g->partition == p->id) {
                group_loaded(gc, g);
                ngroups++;
            }
        }
    VLOG_INFO(GROUP_MODULE,
              "%s-%d: loaded %" PRId64 " records, %" PRId64 " groups in %" PRId64
              " ms (leader epoch %d)",
              GROUP_OFFSETS_TOPIC, p->id, p->loaded_records, ngroups,
              wall_clock_ms() - p->load_started_ms, p->leader_epoch);
}

/* Replays one whole batch of len bytes: a transaction marker completes its
 * producer's pending offsets; a data batch's records are applied. */
static void load_batch(group_coordinator_t *gc, offsets_partition_t *p, const uint8_t *buf,
                       size_t len)
{
    assert(len >= BATCH_HEADER_SIZE);
    record_batch_header_t h;
    bool whole = record_batch_read_header(buf, len, &h);
    assert(whole && record_batch_size(&h) == (int64_t)len);
    (void)whole;
    load_batch_t batch = {.base_offset = h.base_offset,
                          .producer_id = record_batch_is_transactional(&h) ? h.producer_id : -1};
    if (record_batch_is_control(&h)) {
        if (record_batch_last_offset(&h) < p->load_offset)
            return; /* replayed by the previous read */
        int32_t coordinator_epoch;
        int marker = record_batch_parse_txn_marker(buf, len, &coordinator_epoch);
        if (marker < 0 || h.producer_id < 0) {
            /* Its producer's offsets stay pending (unstable) rather than
             * be committed or dropped on a guess. */
            VLOG_ERR(GROUP_MODULE,
                     "%s-%d: unreadable transaction marker at offset %" PRId64 ", skipped",
                     GROUP_OFFSETS_TOPIC, p->id, h.base_offset);
            return;
        }
        group_txns_complete(gc, p, h.producer_id, marker == RECORD_BATCH_MARKER_COMMIT);
        p->loaded_records++;
        return;
    }
    if (record_batch_is_transactional(&h) && h.producer_id < 0) {
        VLOG_ERR(GROUP_MODULE,
                 "%s-%d: transactional batch at offset %" PRId64 " without a producer id, skipped",
                 GROUP_OFFSETS_TOPIC, p->id, h.base_offset);
        return;
    }
    record_batch_iter_t it;
    record_batch_iter_init(&it, buf, len);
    record_view_t rec;
    int rc;
    while ((rc = record_batch_iter_next(&it, &rec)) == 1) {
        if (rec.offset < p->load_offset)
            continue; /* the batch holding load_offset began before it */
        load_apply(gc, p, &rec, &batch);
        p->loaded_records++;
    }
    if (rc < 0)
        VLOG_ERR(GROUP_MODULE, "%s-%d: unreadable record batch at offset %" PRId64 ", skipped",
                 GROUP_OFFSETS_TOPIC, p->id, batch.base_offset);
}

/* Replays the whole batches in buf, one at a time. The log validated every
 * batch (CRC and lengths) on append and recovery, so a batch that does not
 * parse here is not expected; it is skipped alone, by its Length, so that
 * the commits after it still load. */
static void load_batches(group_coordinator_t *gc, offsets_partition_t *p, const uint8_t *buf,
                         size_t len)
{
    size_t at = 0;
    while (len - at >= BATCH_LOG_OVERHEAD) {
        kreader_t r;
        kr_init(&r, buf + at, len - at);
        int64_t base_offset;
        int32_t length;
        kr_i64(&r, &base_offset);
        kr_i32(&r, &length);
        if (length < BATCH_HEADER_SIZE - BATCH_LOG_OVERHEAD) {
            VLOG_ERR(GROUP_MODULE,
                     "%s-%d: unreadable record batch at offset %" PRId64
                     "; the rest of this read is skipped",
                     GROUP_OFFSETS_TOPIC, p->id, base_offset);
            return;
        }
        if ((size_t)length > len - at - BATCH_LOG_OVERHEAD)
            return; /* a partial batch: reads return whole ones, so none is expected */
        size_t batch_len = BATCH_LOG_OVERHEAD + (size_t)length;
        load_batch(gc, p, buf + at, batch_len);
        at += batch_len;
    }
}

static void load_step(struct ev_loop *loop, ev_timer *timer, int revents)
{
    offsets_partition_t *p = timer->data;
    group_coordinator_t *gc = p->gc;
    (void)loop;
    (void)revents;
    assert(p->state == OFFSETS_LOADING);
    const replica_partition_t *rp = part_replica(gc, p->id);
    if (rp == NULL || !rp->is_leader || rp->leader_epoch != p->leader_epoch)
        return; /* the role-change event unloads it */
    int64_t end = partition_log_end_offset(rp->log);
    if (p->load_offset < partition_log_start_offset(rp->log))
        p->load_offset = partition_log_start_offset(rp->log);
    if (p->load_offset >= end) {
        load_finish(gc, p);
        return;
    }
    uint8_t *buf;
    size_t len;
    int64_t next;
    log_err_t err = partition_log_read_copy(rp->log, p->load_offset, GROUP_LOAD_CHUNK_BYTES, end,
                                            &buf, &len, &next);
    if (err != LOG_OK) {
        /* The log refused (an I/O error): the partition stays loading and
         * clients keep retrying; a second later it tries again, without
         * spinning. */
        VLOG_ERR(GROUP_MODULE, "%s-%d: loading at offset %" PRId64 " failed: %s",
                 GROUP_OFFSETS_TOPIC, p->id, p->load_offset, log_err_str(err));
        ev_timer_set(timer, 1., 0.);
        ev_timer_start(gc->loop, timer);
        return;
    }
    if (buf == NULL) {
        load_finish(gc, p); /* nothing below the end after all */
        return;
    }
    load_batches(gc, p, buf, len);
    free(buf);
    p->load_offset = next > p->load_offset ? next : end;
    ev_timer_set(timer, 0., 0.);
    ev_timer_start(gc->loop, timer);
}

static void part_load(group_coordinator_t *gc, offsets_partition_t *p,
                      const replica_partition_t *rp)
{
    assert(p->state == OFFSETS_NOT_LEADER);
    assert(p->writes_head == NULL);
    p->state = OFFSETS_LOADING;
    p->leader_epoch = rp->leader_epoch;
    p->load_offset = partition_log_start_offset(rp->log);
    p->load_started_ms = wall_clock_ms();
    p->loaded_records = 0;
    ev_timer_init(&p->load_timer, load_step, 0., 0.);
    p->load_timer.data = p;
    ev_timer_start(gc->loop, &p->load_timer);
    VLOG_INFO(GROUP_MODULE, "%s-%d: leader at epoch %d, loading groups from offset %" PRId64,
              GROUP_OFFSETS_TOPIC, p->id, rp->leader_epoch, p->load_offset);
}

static void part_unload(group_coordinator_t *gc, offsets_partition_t *p, int16_t error)
{
    assert(p->state != OFFSETS_NOT_LEADER);
    ev_timer_stop(gc->loop, &p->load_timer);
    p->state = OFFSETS_NOT_LEADER;
    while (p->writes_head) {
        group_write_t *w = p->writes_head;
        write_unlink(p, w);
        write_finish(gc, w, error);
    }
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
    assert(p->txns.count == 0 && "every pending transaction belongs to a dropped group");
    VLOG_INFO(GROUP_MODULE, "%s-%d: no longer leader; dropped %d groups", GROUP_OFFSETS_TOPIC,
              p->id, dropped);
}

void group_store_partition_event(group_coordinator_t *gc, int32_t partition)
{
    if (gc->stopping || partition < 0)
        return;
    const replica_partition_t *rp = part_replica(gc, partition);
    offsets_partition_t *p = part_get(gc, partition, rp != NULL && rp->is_leader);
    if (p == NULL)
        return;
    if (rp == NULL || !rp->is_leader) {
        if (p->state != OFFSETS_NOT_LEADER)
            part_unload(gc, p, KAFKA_NOT_COORDINATOR);
        return;
    }
    if (p->state != OFFSETS_NOT_LEADER && p->leader_epoch != rp->leader_epoch)
        part_unload(gc, p, KAFKA_NOT_COORDINATOR);
    if (p->state == OFFSETS_NOT_LEADER)
        part_load(gc, p, rp);
    else if (p->state == OFFSETS_ACTIVE)
        part_complete_writes(gc, p, partition_log_high_watermark(rp->log));
}

void group_store_free(group_coordinator_t *gc)
{
    for (int32_t i = 0; i < gc->nparts; i++) {
        offsets_partition_t *p = gc->parts[i];
        if (p == NULL)
            continue;
        if (p->state != OFFSETS_NOT_LEADER)
            part_unload(gc, p, KAFKA_COORDINATOR_NOT_AVAILABLE);
        assert(p->txns.count == 0);
        htable_free(&p->txns);
        free(p);
    }
    free(gc->parts);
    gc->parts = NULL;
    gc->nparts = 0;
}
