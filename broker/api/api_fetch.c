/* Fetch v4-11 (non-flexible) and the fetch purgatory.
 *
 * Record data never passes through user space: each partition's records
 * are file ranges from partition_log_read(), handed to the response as
 * slices that net sends with sendfile(). Consumers read up to the high
 * watermark, read_committed ones up to the last stable offset, with the
 * aborted transactions among what they get (from the segments'
 * .txnindex); a follower (replica_id >= 0) reads up to the log end.
 *
 * Limits follow Kafka: the response holds at most max_bytes and each
 * partition at most its partition_max_bytes, except that the first
 * partition with data returns at least one whole batch even when that
 * batch is larger, so a consumer can always make progress.
 *
 * Long poll: a fetch that finds fewer than min_bytes and may wait
 * (max_wait_ms > 0, no partition error) is parked in the purgatory. An
 * append or a role change on one of its partitions (api_notify_partition)
 * rebuilds its answer and sends it once min_bytes are there; its own
 * ev_timer sends whatever there is at max_wait. A parked fetch keeps the
 * request, and re-decodes it from a saved copy of the body reader each
 * time (the frame is the request's and stays valid until completion), so
 * the purgatory holds no copy of the partition list. */
#include <assert.h>
#include <ev.h>
#include <stdlib.h>
#include <string.h>

#include "api_handlers.h"
#include "kafka_errors.h"
#include "metrics.h"
#include "vlog.h"
#include "xalloc.h"

#define KAFKA_FETCH_SESSION_ID_NOT_FOUND 70
/* Aborted transactions one partition's answer may list: 16 bytes each,
 * so at most 1 MiB. The list starts small and grows while it fills up
 * (collect_aborted); only a read overlapping more than this many aborted
 * transactions at once (that many transactions open together in one
 * partition, all aborted) could return records of an abort it does not
 * list, and then the read is cut to its first batch. */
#define FETCH_ABORTED_FIRST 256
#define FETCH_MAX_ABORTED   65536

/* What an answer delivered, per partition: counted in the metrics only
 * for the answer that is sent (a parked fetch rebuilds its answer each
 * time it is woken). Topic names are views into the request frame. */
typedef struct fetch_tally_entry {
    kslice_t topic;
    int64_t bytes;
    int64_t records; /* offsets past the fetch position */
    int16_t error;
} fetch_tally_entry_t;

typedef struct fetch_tally {
    fetch_tally_entry_t *entries; /* xmalloc'd; bounded by the request's partitions */
    size_t n, cap;
} fetch_tally_t;

typedef struct fetch_waiter {
    struct fetch_waiter *prev, *next;
    struct fetch_purgatory *fp;
    kafka_request_t *req; /* owned by net; ours until api_request_complete */
    kafka_response_t *resp;
    kreader_t body; /* the request body, from its start */
    int32_t min_bytes;
    fetch_tally_t tally; /* of the answer last built */
    ev_timer timer;
} fetch_waiter_t;

struct fetch_purgatory {
    api_context_t *ctx;
    fetch_waiter_t *head;
    size_t count;
};

typedef struct fetch_outcome {
    int64_t bytes; /* record bytes in the answer */
    int32_t min_bytes;
    int32_t max_wait_ms;
    int32_t npartitions;
    bool has_error;      /* a partition (or the request) failed: answer at once */
    fetch_tally_t tally; /* the caller frees (fetch_tally_free) */
} fetch_outcome_t;

/* Per-request state while the answer is built. */
typedef struct fetch_build {
    api_context_t *ctx;
    int16_t version;
    int32_t replica_id;
    int8_t isolation_level;
    int64_t remaining; /* of max_bytes */
    bool min_one;      /* no partition has returned data yet */
} fetch_build_t;

static void fetch_tally_add(fetch_tally_t *t, kslice_t topic, int64_t bytes, int64_t records,
                            int16_t error)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 16;
        t->entries = xrealloc(t->entries, t->cap * sizeof(*t->entries));
    }
    t->entries[t->n++] = (fetch_tally_entry_t){topic, bytes, records, error};
}

static void fetch_tally_free(fetch_tally_t *t)
{
    free(t->entries);
    memset(t, 0, sizeof(*t));
}

/* Counts an answer being sent: each partition's records out or error. */
static void fetch_tally_count(api_context_t *ctx, const fetch_tally_t *t)
{
    for (size_t i = 0; i < t->n; i++) {
        const fetch_tally_entry_t *e = &t->entries[i];
        if (e->error != KAFKA_NONE)
            metrics_request_error(ctx->metrics, KAFKA_API_FETCH, e->error);
        else if (e->bytes > 0)
            metrics_topic_out(ctx->metrics, (const char *)e->topic.ptr, (size_t)e->topic.len,
                              e->bytes, e->records);
    }
}

/* The aborted transactions overlapping the read rd from fetch_offset (all
 * whose marker is at or after fetch_offset and that began before the end
 * of the read), in *out (xmalloc'd, the caller's), at most
 * FETCH_MAX_ABORTED: the array doubles while it comes back full. */
static log_err_t collect_aborted(partition_log_t *log, int64_t fetch_offset, const log_read_t *rd,
                                 log_aborted_txn_t **out, size_t *n)
{
    size_t cap = FETCH_ABORTED_FIRST;
    for (;;) {
        *out = xrealloc(*out, cap * sizeof(**out));
        log_err_t err =
            partition_log_collect_aborted_txns(log, fetch_offset, rd->next_offset, *out, cap, n);
        if (err != LOG_OK || *n < cap || cap == FETCH_MAX_ABORTED)
            return err;
        cap *= 2;
    }
}

static void fetch_partition(fetch_build_t *b, kafka_response_t *resp, kslice_t topic,
                            int32_t partition, int32_t current_leader_epoch, int64_t fetch_offset,
                            int32_t partition_max_bytes, fetch_outcome_t *out)
{
    kwriter_t *w = &resp->body;
    const replica_partition_t *rp = NULL;
    int64_t hw = -1, lso = -1, log_start = -1;
    log_read_t rd = {.nranges = 0};
    bool have_data = false;
    const bool read_committed = b->isolation_level == 1 && b->replica_id < 0;
    log_aborted_txn_t *aborted = NULL;
    size_t naborted = 0;

    int16_t error = api_leader_replica(b->ctx, topic, partition, &rp);
    if (error == KAFKA_NONE)
        error = api_check_leader_epoch(current_leader_epoch, rp->leader_epoch);
    if (error == KAFKA_NONE) {
        partition_log_t *log = rp->log;
        hw = partition_log_high_watermark(log);
        lso = replica_manager_last_stable_offset(b->ctx->replicas, rp);
        log_start = partition_log_start_offset(log);
        int64_t max_offset = b->replica_id >= 0 ? partition_log_end_offset(log)
                             : read_committed   ? lso
                                                : hw;
        int64_t limit = partition_max_bytes < b->remaining ? partition_max_bytes : b->remaining;
        if (limit < 0)
            limit = 0;
        if (fetch_offset < log_start || fetch_offset > partition_log_end_offset(log)) {
            error = KAFKA_OFFSET_OUT_OF_RANGE;
        } else if (limit > 0 || b->min_one) {
            log_err_t err = partition_log_read(log, fetch_offset, limit, max_offset, &rd);
            if (err != LOG_OK) {
                error = log_err_kafka_error(err);
            } else if (rd.total_bytes > 0 && (b->min_one || rd.total_bytes <= limit)) {
                have_data = true;
            }
            if (err == LOG_OK && !have_data)
                partition_log_read_release(&rd);
        }
        if (have_data && read_committed) {
            log_err_t err = collect_aborted(log, fetch_offset, &rd, &aborted, &naborted);
            if (err == LOG_OK && naborted == FETCH_MAX_ABORTED && rd.nranges > 0) {
                /* Over the bound: one batch, whose overlapping aborts the
                 * list is most likely to hold. */
                partition_log_read_release(&rd);
                err = partition_log_read(log, fetch_offset, 1, max_offset, &rd);
                have_data = err == LOG_OK && rd.total_bytes > 0;
                if (err == LOG_OK && !have_data)
                    partition_log_read_release(&rd);
                if (have_data)
                    err = collect_aborted(log, fetch_offset, &rd, &aborted, &naborted);
            }
            if (err != LOG_OK) {
                error = log_err_kafka_error(err);
                if (have_data)
                    partition_log_read_release(&rd);
                have_data = false;
                naborted = 0;
            }
        }
    }
    /* Kafka's maybeDownConvertStorageError: a Fetch v5 or older client
     * may not know KAFKA_STORAGE_ERROR and would give up for good;
     * NOT_LEADER_OR_FOLLOWER makes it refresh its metadata and retry. */
    if (error == KAFKA_KAFKA_STORAGE_ERROR && b->version <= 5)
        error = KAFKA_NOT_LEADER_OR_FOLLOWER;
    if (error != KAFKA_NONE)
        out->has_error = true;

    kw_i32(w, partition);
    kw_i16(w, error);
    kw_i64(w, hw);
    kw_i64(w, lso);
    if (b->version >= 5)
        kw_i64(w, log_start);
    /* aborted_transactions: null unless read_committed asked for the list. */
    kw_array_v(w, false, read_committed && error == KAFKA_NONE ? (int32_t)naborted : -1);
    for (size_t i = 0; i < naborted; i++) {
        kw_i64(w, aborted[i].producer_id);
        kw_i64(w, aborted[i].first_offset);
    }
    free(aborted);
    if (b->version >= 11)
        kw_i32(w, -1); /* preferred_read_replica */
    if (!have_data) {
        kw_i32(w, 0); /* empty records */
        fetch_tally_add(&out->tally, topic, 0, 0, error);
        return;
    }
    assert(rd.total_bytes <= INT32_MAX);
    kw_i32(w, (int32_t)rd.total_bytes);
    for (int i = 0; i < rd.nranges; i++) {
        kafka_response_add_file(resp, rd.ranges[i].fd, rd.ranges[i].position, rd.ranges[i].length);
        rd.ranges[i].fd = -1; /* the response owns it now */
    }
    partition_log_read_release(&rd);
    b->remaining -= rd.total_bytes;
    b->min_one = false;
    out->bytes += rd.total_bytes;
    /* The first batch may begin below the fetch position. */
    int64_t from = rd.first_offset > fetch_offset ? rd.first_offset : fetch_offset;
    fetch_tally_add(&out->tally, topic, rd.total_bytes,
                    rd.next_offset > from ? rd.next_offset - from : 0, KAFKA_NONE);
}

/* Decodes the request from `body` and writes the whole answer into resp.
 * Returns false when the request is malformed (resp is then partial). */
static bool fetch_answer(api_context_t *ctx, const kafka_request_t *req, kreader_t body,
                         kafka_response_t *resp, fetch_outcome_t *out)
{
    kreader_t *r = &body;
    kwriter_t *w = &resp->body;
    fetch_build_t b = {.ctx = ctx, .version = req->api_version, .min_one = true};
    int32_t max_bytes, session_id = 0, session_epoch = -1, ntopics;
    memset(out, 0, sizeof(*out));

    if (!kr_i32(r, &b.replica_id) || !kr_i32(r, &out->max_wait_ms) || !kr_i32(r, &out->min_bytes) ||
        !kr_i32(r, &max_bytes) || !kr_i8(r, &b.isolation_level))
        return false;
    if (b.version >= 7 && (!kr_i32(r, &session_id) || !kr_i32(r, &session_epoch)))
        return false;
    if (!kr_array_v(r, false, 6, &ntopics))
        return false;
    b.remaining = max_bytes;

    kw_i32(w, 0); /* throttle_time_ms */
    if (b.version >= 7) {
        /* No fetch sessions: session 0 tells the client to send full
         * fetches. An id we never handed out is an error. */
        kw_i16(w, session_id != 0 ? KAFKA_FETCH_SESSION_ID_NOT_FOUND : KAFKA_NONE);
        kw_i32(w, 0);
        if (session_id != 0) {
            kw_array_v(w, false, 0);
            out->has_error = true;
            fetch_tally_add(&out->tally, (kslice_t){NULL, 0}, 0, 0,
                            KAFKA_FETCH_SESSION_ID_NOT_FOUND);
            return true;
        }
    }
    kw_array_v(w, false, ntopics < 0 ? 0 : ntopics);
    for (int32_t t = 0; t < ntopics; t++) {
        kslice_t topic;
        int32_t nparts;
        if (!kr_string_v(r, false, &topic) || !kr_array_v(r, false, 16, &nparts))
            return false;
        kw_string_v(w, false, (const char *)topic.ptr, topic.len);
        kw_array_v(w, false, nparts < 0 ? 0 : nparts);
        for (int32_t p = 0; p < nparts; p++) {
            int32_t partition, current_leader_epoch = -1, partition_max_bytes;
            int64_t fetch_offset, log_start_offset = -1;
            if (!kr_i32(r, &partition) || (b.version >= 9 && !kr_i32(r, &current_leader_epoch)) ||
                !kr_i64(r, &fetch_offset) || (b.version >= 5 && !kr_i64(r, &log_start_offset)) ||
                !kr_i32(r, &partition_max_bytes))
                return false;
            fetch_partition(&b, resp, topic, partition, current_leader_epoch, fetch_offset,
                            partition_max_bytes, out);
            out->npartitions++;
        }
    }
    if (b.version >= 7) {
        int32_t nforgotten;
        if (!kr_array_v(r, false, 6, &nforgotten))
            return false;
        for (int32_t i = 0; i < nforgotten; i++) {
            kslice_t topic;
            int32_t nparts;
            if (!kr_string_v(r, false, &topic) || !kr_array_v(r, false, 4, &nparts) ||
                !kr_skip(r, (size_t)(nparts < 0 ? 0 : nparts) * 4))
                return false;
        }
    }
    if (b.version >= 11) {
        kslice_t rack_id;
        if (!kr_string_v(r, false, &rack_id))
            return false;
    }
    return true;
}

/* Whether a parked request asks for (topic, partition). */
static bool fetch_mentions(const fetch_waiter_t *fw, const char *topic, int32_t partition)
{
    kreader_t r = fw->body;
    int16_t version = fw->req->api_version;
    int32_t ntopics;
    /* replica_id, max_wait, min_bytes, max_bytes, isolation, [session id, epoch] */
    if (!kr_skip(&r, 17 + (version >= 7 ? 8 : 0)) || !kr_array_v(&r, false, 6, &ntopics))
        return false;
    size_t per_partition = 4 + (version >= 9 ? 4 : 0) + 8 + (version >= 5 ? 8 : 0) + 4;
    for (int32_t t = 0; t < ntopics; t++) {
        kslice_t name;
        int32_t nparts;
        if (!kr_string_v(&r, false, &name) || !kr_array_v(&r, false, 16, &nparts))
            return false;
        bool same_topic = kslice_eq(name, topic);
        for (int32_t p = 0; p < nparts; p++) {
            int32_t id;
            if (!kr_i32(&r, &id) || !kr_skip(&r, per_partition - 4))
                return false;
            if (same_topic && id == partition)
                return true;
        }
    }
    return false;
}

/* ---- purgatory ---- */

static void waiter_unlink(fetch_waiter_t *fw)
{
    struct fetch_purgatory *fp = fw->fp;
    assert(fp->count > 0);
    if (fw->prev)
        fw->prev->next = fw->next;
    else
        fp->head = fw->next;
    if (fw->next)
        fw->next->prev = fw->prev;
    fw->prev = fw->next = NULL;
    fp->count--;
    ev_timer_stop(fp->ctx->loop, &fw->timer);
}

/* Rebuilds the answer into fw->resp; true when it is worth sending. */
static bool waiter_ready(fetch_waiter_t *fw)
{
    fetch_outcome_t out;
    kafka_response_free(fw->resp);
    kafka_response_init(fw->resp);
    bool ok = fetch_answer(fw->fp->ctx, fw->req, fw->body, fw->resp, &out);
    assert(ok); /* it decoded when it was parked */
    (void)ok;
    fetch_tally_free(&fw->tally);
    fw->tally = out.tally;
    return out.has_error || out.bytes >= out.min_bytes;
}

/* Hands fw's request back to net with `result` and frees fw (already
 * unlinked). */
static void waiter_finish(fetch_waiter_t *fw, api_result_t result)
{
    kafka_request_t *req = fw->req;
    kafka_response_t *resp = fw->resp;
    if (result == API_RESPOND)
        fetch_tally_count(fw->fp->ctx, &fw->tally);
    fetch_tally_free(&fw->tally);
    free(fw);
    api_request_complete(req, resp, result);
}

static void waiter_complete(fetch_waiter_t *fw)
{
    waiter_finish(fw, API_RESPOND);
}

static void waiter_timeout(struct ev_loop *loop, ev_timer *timer, int revents)
{
    fetch_waiter_t *fw = timer->data;
    (void)loop;
    (void)revents;
    waiter_unlink(fw);
    waiter_ready(fw);
    waiter_complete(fw);
}

struct fetch_purgatory *fetch_purgatory_new(api_context_t *ctx)
{
    struct fetch_purgatory *fp = xcalloc(1, sizeof(*fp));
    fp->ctx = ctx;
    return fp;
}

size_t fetch_purgatory_size(const struct fetch_purgatory *fp)
{
    return fp->count;
}

/* Completes every waiter on `ready`, a list no longer in the purgatory.
 * Completing may re-enter (net dispatches the connection's next request),
 * which is why nothing here walks the purgatory's own list meanwhile. */
static void complete_list(fetch_waiter_t *ready, api_result_t result)
{
    while (ready) {
        fetch_waiter_t *next = ready->next;
        waiter_finish(ready, result);
        ready = next;
    }
}

void fetch_purgatory_notify(struct fetch_purgatory *fp, const char *topic, int32_t partition)
{
    fetch_waiter_t *ready = NULL;
    fetch_waiter_t *fw = fp->head;
    while (fw) {
        fetch_waiter_t *next = fw->next;
        if (fetch_mentions(fw, topic, partition) && waiter_ready(fw)) {
            waiter_unlink(fw);
            fw->next = ready;
            ready = fw;
        }
        fw = next;
    }
    complete_list(ready, API_RESPOND);
}

/* Gives back the waiters of `conn` (all of them when `all`) without an
 * answer: their connection is gone, or the broker is stopping and the
 * state an answer is built from may already be torn down. */
static void purgatory_drain(struct fetch_purgatory *fp, void *conn, bool all)
{
    fetch_waiter_t *ready = NULL;
    fetch_waiter_t *fw = fp->head;
    while (fw) {
        fetch_waiter_t *next = fw->next;
        if (all || fw->req->conn == conn) {
            waiter_unlink(fw);
            fw->next = ready;
            ready = fw;
        }
        fw = next;
    }
    complete_list(ready, API_NO_RESPONSE);
}

void fetch_purgatory_connection_closed(struct fetch_purgatory *fp, void *conn)
{
    purgatory_drain(fp, conn, false);
}

void fetch_purgatory_free(struct fetch_purgatory *fp)
{
    if (!fp)
        return;
    purgatory_drain(fp, NULL, true);
    assert(fp->count == 0);
    free(fp);
}

api_result_t api_handle_fetch(api_context_t *ctx, kafka_request_t *req, kafka_response_t *resp)
{
    assert(req->api_version >= 4 && req->api_version <= 11);
    assert(!req->flexible);
    struct fetch_purgatory *fp = ctx->fetches;
    fetch_outcome_t out;
    kreader_t body = req->body;

    if (!fetch_answer(ctx, req, body, resp, &out)) {
        fetch_tally_free(&out.tally);
        return API_REFUSE(req, "malformed Fetch request");
    }
    bool may_wait =
        out.max_wait_ms > 0 && out.npartitions > 0 && !out.has_error && out.bytes < out.min_bytes;
    if (may_wait && fp->count >= FETCH_PURGATORY_MAX) {
        VLOG_DEBUG(API_MODULE, "%s: fetch purgatory full (%zu); answering at once", req->peer,
                   fp->count);
        may_wait = false;
    }
    if (!may_wait) {
        fetch_tally_count(ctx, &out.tally);
        fetch_tally_free(&out.tally);
        return API_RESPOND;
    }

    /* Park it: the answer is rebuilt when it is sent. */
    fetch_tally_free(&out.tally);
    kafka_response_free(resp);
    kafka_response_init(resp);
    fetch_waiter_t *fw = xcalloc(1, sizeof(*fw));
    fw->fp = fp;
    fw->req = req;
    fw->resp = resp;
    fw->body = body;
    fw->min_bytes = out.min_bytes;
    ev_timer_init(&fw->timer, waiter_timeout, out.max_wait_ms / 1000.0, 0.);
    fw->timer.data = fw;
    ev_timer_start(ctx->loop, &fw->timer);
    fw->next = fp->head;
    if (fp->head)
        fp->head->prev = fw;
    fp->head = fw;
    fp->count++;
    return API_DEFERRED;
}
