#include "coord_log.h"

#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "kafka_codec.h"
#include "kafka_errors.h"
#include "record_batch.h"
#include "replica_manager.h"
#include "vlog.h"
#include "wall_clock.h"
#include "xalloc.h"

void coord_log_init(coord_log_t *log, struct ev_loop *loop, struct replica_manager *replicas,
                    const coord_log_ops_t *ops, const coord_log_names_t *names, void *owner,
                    size_t part_size)
{
    assert(ops->replay_batch && ops->loaded && ops->unloaded && ops->write_done &&
           ops->timed_out_error && ops->append_error);
    assert(part_size >= sizeof(coord_log_partition_t));
    memset(log, 0, sizeof(*log));
    log->loop = loop;
    log->replicas = replicas;
    log->ops = ops;
    log->names = names;
    log->owner = owner;
    log->part_size = part_size;
}

static coord_log_partition_t *part_get(coord_log_t *log, int32_t id, bool create)
{
    assert(id >= 0);
    if (id >= log->nparts) {
        if (!create)
            return NULL;
        log->parts = xrealloc(log->parts, (size_t)(id + 1) * sizeof(*log->parts));
        memset(log->parts + log->nparts, 0, (size_t)(id + 1 - log->nparts) * sizeof(*log->parts));
        log->nparts = id + 1;
    }
    if (log->parts[id] == NULL && create) {
        coord_log_partition_t *p = xcalloc(1, log->part_size);
        p->log = log;
        p->id = id;
        p->state = COORD_LOG_NOT_LEADER;
        log->parts[id] = p;
    }
    return log->parts[id];
}

coord_log_partition_t *coord_log_partition(const coord_log_t *log, int32_t id)
{
    return id >= 0 && id < log->nparts ? log->parts[id] : NULL;
}

int16_t coord_log_route(const coord_log_t *log, int32_t id)
{
    const coord_log_partition_t *p = coord_log_partition(log, id);
    if (p == NULL || p->state == COORD_LOG_NOT_LEADER)
        return KAFKA_NOT_COORDINATOR;
    return p->state == COORD_LOG_LOADING ? KAFKA_COORDINATOR_LOAD_IN_PROGRESS : KAFKA_NONE;
}

static const replica_partition_t *part_replica(coord_log_t *log, int32_t id)
{
    return replica_manager_get(log->replicas, log->names->topic, strlen(log->names->topic), id);
}

/* ---- writes ---- */

static void write_done(coord_log_t *log, coord_log_write_t *w, int16_t error)
{
    assert(w->next == NULL);
    ev_timer_stop(log->loop, &w->timer);
    log->ops->write_done(log->owner, w, error);
}

static void write_unlink(coord_log_partition_t *p, coord_log_write_t *w)
{
    coord_log_write_t **pp = &p->writes_head;
    coord_log_write_t *prev = NULL;
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
    coord_log_write_t *w = timer->data;
    coord_log_t *log = w->part->log;
    (void)loop;
    (void)revents;
    write_unlink(w->part, w);
    write_done(log, w, log->ops->timed_out_error(w));
}

/* Completes, in offset order, the writes the high watermark passed. */
static void part_complete_writes(coord_log_t *log, coord_log_partition_t *p, int64_t hw)
{
    assert(p->state == COORD_LOG_ACTIVE);
    while (p->writes_head && p->writes_head->last_offset < hw) {
        coord_log_write_t *w = p->writes_head;
        write_unlink(p, w);
        write_done(log, w, KAFKA_NONE);
    }
}

coord_log_partition_t *coord_log_writable(coord_log_t *log, int32_t id)
{
    coord_log_partition_t *p = coord_log_partition(log, id);
    const replica_partition_t *rp = part_replica(log, id);
    if (p == NULL || p->state != COORD_LOG_ACTIVE || rp == NULL || !rp->is_leader ||
        rp->leader_epoch != p->leader_epoch)
        return NULL;
    return p;
}

void coord_log_append(coord_log_t *log, coord_log_partition_t *p, uint8_t *batch, size_t len,
                      coord_log_write_t *w, int32_t timeout_ms)
{
    assert(p != NULL && p->log == log && p->state == COORD_LOG_ACTIVE);
    assert(batch != NULL && len > 0);
    ev_timer_init(&w->timer, write_timeout, timeout_ms / 1000.0, 0.);
    w->timer.data = w;
    w->part = p;
    const replica_partition_t *rp = part_replica(log, p->id);
    assert(rp != NULL && rp->is_leader && "p came from coord_log_writable this iteration");
    replica_append_result_t res;
    int16_t error = replica_manager_leader_append(log->replicas, rp, REPLICA_APPEND_COORDINATOR, -1,
                                                  batch, len, &res);
    if (error != KAFKA_NONE) {
        VLOG_WARN(log->names->module, "%s-%d: append refused: %s", log->names->topic, p->id,
                  kafka_error_name(error));
        write_done(log, w, log->ops->append_error(w, error));
        return;
    }
    /* The listener ran inside the append (a high-watermark move completes
     * earlier writes), but only a role change unloads, and an append
     * changes no role. */
    assert(p->state == COORD_LOG_ACTIVE);
    w->base_offset = res.first_offset;
    w->last_offset = res.last_offset;
    if (res.high_watermark > w->last_offset && p->writes_head == NULL) {
        write_done(log, w, KAFKA_NONE);
        return;
    }
    if (p->writes_tail)
        p->writes_tail->next = w;
    else
        p->writes_head = w;
    p->writes_tail = w;
    ev_timer_start(log->loop, &w->timer);
    part_complete_writes(log, p, res.high_watermark);
}

/* ---- loading ---- */

static void load_finish(coord_log_t *log, coord_log_partition_t *p)
{
    ev_timer_stop(log->loop, &p->load_timer);
    p->state = COORD_LOG_ACTIVE;
    int64_t n = log->ops->loaded(log->owner, p);
    VLOG_INFO(log->names->module,
              "%s-%d: loaded %" PRId64 " records, %" PRId64 " %s in %" PRId64 " ms (%s %d)",
              log->names->topic, p->id, p->loaded_records, n, log->names->entities,
              wall_clock_ms() - p->load_started_ms, log->names->epoch, p->leader_epoch);
}

/* Replays the whole batches in buf, one at a time. The log validated every
 * batch (CRC and lengths) on append and recovery, so a batch that does not
 * parse here is not expected; the owner skips it alone, and one whose
 * Length is impossible ends this read. */
static void load_batches(coord_log_t *log, coord_log_partition_t *p, const uint8_t *buf, size_t len)
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
            VLOG_ERR(log->names->module,
                     "%s-%d: unreadable record batch at offset %" PRId64
                     "; the rest of this read is skipped",
                     log->names->topic, p->id, base_offset);
            return;
        }
        if ((size_t)length > len - at - BATCH_LOG_OVERHEAD)
            return; /* a partial batch: reads return whole ones, so none is expected */
        size_t batch_len = BATCH_LOG_OVERHEAD + (size_t)length;
        log->ops->replay_batch(log->owner, p, buf + at, batch_len);
        at += batch_len;
    }
}

static void load_step(struct ev_loop *loop, ev_timer *timer, int revents)
{
    coord_log_partition_t *p = timer->data;
    coord_log_t *log = p->log;
    (void)loop;
    (void)revents;
    assert(p->state == COORD_LOG_LOADING);
    const replica_partition_t *rp = part_replica(log, p->id);
    if (rp == NULL || !rp->is_leader || rp->leader_epoch != p->leader_epoch)
        return; /* the role-change event unloads it */
    int64_t end = partition_log_end_offset(rp->log);
    if (p->load_offset < partition_log_start_offset(rp->log))
        p->load_offset = partition_log_start_offset(rp->log);
    if (p->load_offset >= end) {
        load_finish(log, p);
        return;
    }
    uint8_t *buf;
    size_t len;
    int64_t next;
    log_err_t err = partition_log_read_copy(rp->log, p->load_offset, COORD_LOG_LOAD_CHUNK_BYTES,
                                            end, &buf, &len, &next);
    if (err != LOG_OK) {
        /* The log refused (an I/O error): the partition stays loading and
         * clients keep retrying; a second later it tries again, without
         * spinning. */
        VLOG_ERR(log->names->module, "%s-%d: loading at offset %" PRId64 " failed: %s",
                 log->names->topic, p->id, p->load_offset, log_err_str(err));
        ev_timer_set(timer, 1., 0.);
        ev_timer_start(log->loop, timer);
        return;
    }
    if (buf == NULL) {
        load_finish(log, p); /* nothing below the end after all */
        return;
    }
    load_batches(log, p, buf, len);
    free(buf);
    p->load_offset = next > p->load_offset ? next : end;
    ev_timer_set(timer, 0., 0.);
    ev_timer_start(log->loop, timer);
}

static void part_load(coord_log_t *log, coord_log_partition_t *p, const replica_partition_t *rp)
{
    assert(p->state == COORD_LOG_NOT_LEADER);
    assert(p->writes_head == NULL);
    p->state = COORD_LOG_LOADING;
    p->leader_epoch = rp->leader_epoch;
    p->load_offset = partition_log_start_offset(rp->log);
    p->load_started_ms = wall_clock_ms();
    p->loaded_records = 0;
    ev_timer_init(&p->load_timer, load_step, 0., 0.);
    p->load_timer.data = p;
    ev_timer_start(log->loop, &p->load_timer);
    VLOG_INFO(log->names->module, "%s-%d: leader at epoch %d, loading %s from offset %" PRId64,
              log->names->topic, p->id, rp->leader_epoch, log->names->loading, p->load_offset);
}

static void part_unload(coord_log_t *log, coord_log_partition_t *p, int16_t error)
{
    assert(p->state != COORD_LOG_NOT_LEADER);
    ev_timer_stop(log->loop, &p->load_timer);
    p->state = COORD_LOG_NOT_LEADER;
    while (p->writes_head) {
        coord_log_write_t *w = p->writes_head;
        write_unlink(p, w);
        write_done(log, w, error);
    }
    int32_t dropped = log->ops->unloaded(log->owner, p, error);
    VLOG_INFO(log->names->module, "%s-%d: no longer leader; dropped %d %s", log->names->topic,
              p->id, dropped, log->names->entities);
}

void coord_log_partition_event(coord_log_t *log, int32_t id)
{
    assert(id >= 0);
    const replica_partition_t *rp = part_replica(log, id);
    coord_log_partition_t *p = part_get(log, id, rp != NULL && rp->is_leader);
    if (p == NULL)
        return;
    if (rp == NULL || !rp->is_leader) {
        if (p->state != COORD_LOG_NOT_LEADER)
            part_unload(log, p, KAFKA_NOT_COORDINATOR);
        return;
    }
    if (p->state != COORD_LOG_NOT_LEADER && p->leader_epoch != rp->leader_epoch)
        part_unload(log, p, KAFKA_NOT_COORDINATOR);
    if (p->state == COORD_LOG_NOT_LEADER)
        part_load(log, p, rp);
    else if (p->state == COORD_LOG_ACTIVE)
        part_complete_writes(log, p, partition_log_high_watermark(rp->log));
}

void coord_log_free(coord_log_t *log, void (*free_part)(coord_log_partition_t *p))
{
    for (int32_t i = 0; i < log->nparts; i++) {
        coord_log_partition_t *p = log->parts[i];
        if (p == NULL)
            continue;
        if (p->state != COORD_LOG_NOT_LEADER)
            part_unload(log, p, KAFKA_COORDINATOR_NOT_AVAILABLE);
        if (free_part)
            free_part(p);
        free(p);
    }
    free(log->parts);
    log->parts = NULL;
    log->nparts = 0;
}
