/* Produce v0-8 (non-flexible). v0-2 carry the old message-set formats,
 * which are refused per partition with UNSUPPORTED_FOR_MESSAGE_FORMAT (the
 * versions are advertised only because librdkafka's compression check asks
 * for Produce v0). From v3 the records are RecordBatch v2, appended in
 * place: the log rewrites BaseOffset and PartitionLeaderEpoch inside the
 * request frame and writes the bytes as they are, compressed or not.
 *
 * The append itself (min.insync.replicas, the idempotent producer's
 * checks, the log, the high watermark) is the replica layer's one call,
 * replica_manager_leader_append. acks=1 answers after it; acks=-1 waits in the produce purgatory
 * until the high watermark covers every partition's append (the replica manager moves it as
 * followers fetch), the leadership is lost (NOT_LEADER_OR_FOLLOWER) or the
 * request's timeout passes (REQUEST_TIMED_OUT). When the high watermark
 * covers it but the ISR has meanwhile shrunk below min.insync.replicas,
 * the partition answers NOT_ENOUGH_REPLICAS_AFTER_APPEND, as Kafka does.
 *
 * The request is decoded whole first (topics and partitions into arrays
 * whose size the frame bounds), then appended, then answered, so that a
 * parked request can write its answer later from the same arrays. */
#include <assert.h>
#include <ev.h>
#include <stdlib.h>
#include <string.h>

#include "api_handlers.h"
#include "coordinator.h"
#include "kafka_errors.h"
#include "vlog.h"
#include "xalloc.h"

typedef struct produce_result {
    int16_t error;
    int64_t base_offset;
    int64_t log_append_time;
    int64_t log_start_offset;
} produce_result_t;

static const produce_result_t produce_failed = {
    .error = KAFKA_UNKNOWN_SERVER_ERROR,
    .base_offset = -1,
    .log_append_time = -1,
    .log_start_offset = -1,
};

typedef struct produce_part {
    int32_t topic_index;
    int32_t partition;
    kslice_t records; /* in the request frame */
    produce_result_t res;
    bool waiting;        /* acks=-1: for the high watermark to pass last_offset */
    int64_t last_offset; /* of the append */
    int32_t leader_epoch;
} produce_part_t;

typedef struct produce_topic {
    kslice_t name; /* in the request frame */
    int32_t first_part, nparts;
} produce_topic_t;

/* A decoded request; lives as long as the request (until answered). */
typedef struct produce_req {
    struct produce_req *prev, *next; /* in the purgatory while parked */
    api_context_t *ctx;
    kafka_request_t *req;
    kafka_response_t *resp;
    produce_topic_t *topics;
    int32_t ntopics;
    produce_part_t *parts;
    int32_t nparts;
    int32_t nwaiting;
    ev_timer timer;
} produce_req_t;

struct produce_purgatory {
    api_context_t *ctx;
    produce_req_t *head;
    size_t count;
};

static void produce_partition(api_context_t *ctx, kafka_request_t *req, int16_t acks,
                              kslice_t topic, produce_part_t *part)
{
    produce_result_t res = produce_failed;
    const replica_partition_t *rp;
    int32_t partition = part->partition;
    kslice_t records = part->records;
    part->res = produce_failed;

    res.error = api_leader_replica(ctx, topic, partition, &rp);
    if (res.error != KAFKA_NONE)
        goto out;
    if (req->api_version < 3) {
        res.error = KAFKA_UNSUPPORTED_FOR_MESSAGE_FORMAT;
        goto out;
    }
    if (records.ptr == NULL || records.len == 0) {
        res.error = KAFKA_INVALID_RECORD;
        goto out;
    }
    /* The frame is the request's and mutable (api.h): the batches are
     * rewritten where they lie. */
    assert(records.ptr >= req->frame && records.ptr + records.len <= req->frame + req->frame_len);
    uint8_t *batches = req->frame + (records.ptr - req->frame);
    replica_append_result_t info;
    /* Also wakes the fetches and Produce requests waiting on it (the
     * listener, api_notify_partition). */
    res.error = replica_manager_leader_append(ctx->replicas, rp, REPLICA_APPEND_CLIENT, acks,
                                              batches, (size_t)records.len, &info);
    if (res.error != KAFKA_NONE) {
        VLOG_DEBUG(API_MODULE, "%s: produce to %.*s-%d refused: %s", req->peer, (int)topic.len,
                   (const char *)topic.ptr, partition, kafka_error_name(res.error));
        goto out;
    }
    res.base_offset = info.first_offset;
    res.log_append_time = info.log_append_time;
    res.log_start_offset = partition_log_start_offset(rp->log);
    /* A duplicate waits like the original would: it is acknowledged only
     * once replicated. */
    if (acks == -1 && info.high_watermark <= info.last_offset) {
        part->waiting = true;
        part->last_offset = info.last_offset;
        part->leader_epoch = rp->leader_epoch;
    }
out:
    part->res = res;
}

/* Re-checks a waiting partition: true when it no longer waits. */
static bool part_settle(api_context_t *ctx, kslice_t topic, produce_part_t *part)
{
    assert(part->waiting);
    const replica_partition_t *rp;
    int16_t error = api_leader_replica(ctx, topic, part->partition, &rp);
    if (error == KAFKA_NONE && rp->leader_epoch != part->leader_epoch)
        error = KAFKA_NOT_LEADER_OR_FOLLOWER;
    if (error != KAFKA_NONE) {
        part->res.error = error;
    } else if (partition_log_high_watermark(rp->log) > part->last_offset) {
        if (replica_manager_isr_size(ctx->replicas, rp) <
            partition_log_config(rp->log)->min_insync_replicas)
            part->res.error = KAFKA_NOT_ENOUGH_REPLICAS_AFTER_APPEND;
    } else {
        return false;
    }
    part->waiting = false;
    return true;
}

static void produce_write_answer(const produce_req_t *pr)
{
    kwriter_t *w = &pr->resp->body;
    const int16_t version = pr->req->api_version;
    kw_array_v(w, false, pr->ntopics);
    for (int32_t t = 0; t < pr->ntopics; t++) {
        const produce_topic_t *topic = &pr->topics[t];
        kw_string_v(w, false, (const char *)topic->name.ptr, topic->name.len);
        kw_array_v(w, false, topic->nparts);
        for (int32_t p = topic->first_part; p < topic->first_part + topic->nparts; p++) {
            const produce_part_t *part = &pr->parts[p];
            kw_i32(w, part->partition);
            kw_i16(w, part->res.error);
            kw_i64(w, part->res.base_offset);
            if (version >= 2)
                kw_i64(w, part->res.log_append_time);
            if (version >= 5)
                kw_i64(w, part->res.log_start_offset);
            if (version >= 8) {
                kw_array_v(w, false, 0); /* record_errors */
                kw_string_v(w, false, NULL, -1);
            }
        }
    }
    if (version >= 1)
        kw_i32(w, 0); /* throttle_time_ms */
}

static void produce_req_free(produce_req_t *pr)
{
    free(pr->topics);
    free(pr->parts);
    free(pr);
}

/* ---- purgatory ---- */

struct produce_purgatory *produce_purgatory_new(api_context_t *ctx)
{
    struct produce_purgatory *pp = xcalloc(1, sizeof(*pp));
    pp->ctx = ctx;
    return pp;
}

static void produce_unlink(produce_req_t *pr)
{
    struct produce_purgatory *pp = pr->ctx->produces;
    assert(pp->count > 0);
    if (pr->prev)
        pr->prev->next = pr->next;
    else
        pp->head = pr->next;
    if (pr->next)
        pr->next->prev = pr->prev;
    pr->prev = pr->next = NULL;
    pp->count--;
    ev_timer_stop(pr->ctx->loop, &pr->timer);
}

/* Answers (or, when `answer` is false, gives back unanswered) a request
 * already unlinked, and frees it. */
static void produce_finish(produce_req_t *pr, bool answer)
{
    kafka_request_t *req = pr->req;
    kafka_response_t *resp = pr->resp;
    if (answer)
        produce_write_answer(pr);
    produce_req_free(pr);
    api_request_complete(req, resp, answer ? API_RESPOND : API_NO_RESPONSE);
}

static void produce_timeout(struct ev_loop *loop, ev_timer *timer, int revents)
{
    produce_req_t *pr = timer->data;
    (void)loop;
    (void)revents;
    produce_unlink(pr);
    for (int32_t i = 0; i < pr->nparts; i++) {
        produce_part_t *part = &pr->parts[i];
        if (part->waiting && !part_settle(pr->ctx, pr->topics[part->topic_index].name, part)) {
            part->waiting = false;
            part->res.error = KAFKA_REQUEST_TIMED_OUT;
        }
    }
    produce_finish(pr, true);
}

void produce_purgatory_notify(struct produce_purgatory *pp, const char *topic, int32_t partition)
{
    produce_req_t *ready = NULL;
    produce_req_t *pr = pp->head;
    size_t tlen = strlen(topic);
    while (pr) {
        produce_req_t *next = pr->next;
        for (int32_t i = 0; i < pr->nparts; i++) {
            produce_part_t *part = &pr->parts[i];
            kslice_t name = pr->topics[part->topic_index].name;
            if (part->waiting && part->partition == partition && (size_t)name.len == tlen &&
                memcmp(name.ptr, topic, tlen) == 0 && part_settle(pp->ctx, name, part))
                pr->nwaiting--;
        }
        assert(pr->nwaiting >= 0);
        if (pr->nwaiting == 0) {
            produce_unlink(pr);
            pr->next = ready;
            ready = pr;
        }
        pr = next;
    }
    /* Completing may re-enter (net dispatches the connection's next
     * request), so the purgatory's list is not walked meanwhile. */
    while (ready) {
        produce_req_t *next = ready->next;
        produce_finish(ready, true);
        ready = next;
    }
}

void produce_purgatory_free(struct produce_purgatory *pp)
{
    if (!pp)
        return;
    while (pp->head) {
        produce_req_t *pr = pp->head;
        produce_unlink(pr);
        produce_finish(pr, false);
    }
    free(pp);
}

api_result_t api_handle_produce(api_context_t *ctx, kafka_request_t *req, kafka_response_t *resp)
{
    kreader_t *r = &req->body;
    const int16_t version = req->api_version;
    assert(version >= 0 && version <= 8);
    assert(!req->flexible);

    if (version >= 3) {
        kslice_t transactional_id;
        if (!kr_nullable_string_v(r, false, &transactional_id))
            return API_REFUSE(req, "malformed Produce request");
    }
    int16_t acks;
    int32_t timeout_ms, ntopics;
    if (!kr_i16(r, &acks) || !kr_i32(r, &timeout_ms) || !kr_array_v(r, false, 6, &ntopics))
        return API_REFUSE(req, "malformed Produce request");
    bool acks_valid = acks == 0 || acks == 1 || acks == -1;

    /* Decode everything first. kr_array_v bounded each count by the bytes
     * left, so the arrays are bounded by the frame. */
    produce_req_t *pr = xcalloc(1, sizeof(*pr));
    pr->ctx = ctx;
    pr->req = req;
    pr->resp = resp;
    pr->ntopics = ntopics < 0 ? 0 : ntopics;
    pr->topics = xcalloc((size_t)pr->ntopics + 1, sizeof(*pr->topics));
    size_t parts_cap = 8;
    pr->parts = xmalloc(parts_cap * sizeof(*pr->parts));
    for (int32_t t = 0; t < pr->ntopics; t++) {
        produce_topic_t *topic = &pr->topics[t];
        int32_t nparts;
        if (!kr_string_v(r, false, &topic->name) || !kr_array_v(r, false, 8, &nparts))
            goto malformed;
        topic->first_part = pr->nparts;
        topic->nparts = nparts < 0 ? 0 : nparts;
        for (int32_t p = 0; p < topic->nparts; p++) {
            if ((size_t)pr->nparts == parts_cap) {
                parts_cap *= 2;
                pr->parts = xrealloc(pr->parts, parts_cap * sizeof(*pr->parts));
            }
            produce_part_t *part = &pr->parts[pr->nparts++];
            memset(part, 0, sizeof(*part));
            part->topic_index = t;
            if (!kr_i32(r, &part->partition) || !kr_bytes_v(r, false, &part->records))
                goto malformed;
        }
    }

    for (int32_t i = 0; i < pr->nparts; i++) {
        produce_part_t *part = &pr->parts[i];
        if (acks_valid) {
            produce_partition(ctx, req, acks, pr->topics[part->topic_index].name, part);
        } else {
            part->res = produce_failed;
            part->res.error = KAFKA_INVALID_REQUIRED_ACKS;
        }
        if (part->waiting)
            pr->nwaiting++;
    }
    /* A partition may have been covered meanwhile (another partition's
     * append can complete follower fetches that move its high watermark). */
    for (int32_t i = 0; i < pr->nparts; i++) {
        produce_part_t *part = &pr->parts[i];
        if (part->waiting && part_settle(ctx, pr->topics[part->topic_index].name, part))
            pr->nwaiting--;
    }
    if (pr->nwaiting > 0) {
        assert(acks == -1);
        struct produce_purgatory *pp = ctx->produces;
        double timeout_s = timeout_ms > 0 ? timeout_ms / 1000.0 : 0.;
        ev_timer_init(&pr->timer, produce_timeout, timeout_s, 0.);
        pr->timer.data = pr;
        ev_timer_start(ctx->loop, &pr->timer);
        pr->next = pp->head;
        if (pp->head)
            pp->head->prev = pr;
        pp->head = pr;
        pp->count++;
        return API_DEFERRED;
    }
    if (acks != 0)
        produce_write_answer(pr);
    produce_req_free(pr);
    return acks == 0 ? API_NO_RESPONSE : API_RESPOND;

malformed:
    produce_req_free(pr);
    return API_REFUSE(req, "malformed Produce request");
}
