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
 * Transactions (KIP-890 part 1, transaction.partition.verification.enable,
 * Kafka 3.6+): a transactional batch that would begin its producer's
 * transaction in a partition (no transaction of that producer ongoing
 * there) is appended only once the transactional id's coordinator confirms
 * the partition is in the producer's ongoing transaction
 * (txn_verify_partitions); otherwise the partition answers the
 * coordinator's refusal as Kafka's ReplicaManager does for Produce v0-8:
 * INVALID_TXN_STATE (not added), INVALID_PRODUCER_EPOCH (PRODUCER_FENCED),
 * INVALID_PRODUCER_ID_MAPPING, and NOT_ENOUGH_REPLICAS (retriable, no
 * metadata refresh) for CONCURRENT_TRANSACTIONS, NETWORK_EXCEPTION and the
 * coordinator-moving errors. Later batches of the transaction there are
 * not verified again.
 *
 * The request is decoded whole first (topics and partitions into arrays
 * whose size the frame bounds); each partition is then appended (at once,
 * or once its verification is answered), and the request answered, so
 * that a parked request can write its answer later from the same arrays. */
#include <assert.h>
#include <ev.h>
#include <stdlib.h>
#include <string.h>

#include "api_handlers.h"
#include "config.h"
#include "coordinator.h"
#include "kafka_errors.h"
#include "metrics.h"
#include "record_batch.h"
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

/* A partition's way through the request: DECODED -> (VERIFYING ->)
 * WAITING (acks=-1) -> DONE; any step may end it in DONE with an error. */
typedef enum produce_part_state {
    PART_DECODED,   /* nothing done yet */
    PART_VERIFYING, /* its transaction's coordinator is being asked (KIP-890) */
    PART_WAITING,   /* appended; acks=-1: for the high watermark to pass last_offset */
    PART_DONE,      /* res is the answer */
} produce_part_state_t;

typedef struct produce_part {
    int32_t topic_index;
    int32_t partition;
    kslice_t records; /* in the request frame */
    produce_part_state_t state;
    produce_result_t res;
    int64_t last_offset; /* of the append */
    int32_t leader_epoch;
    uint32_t txn_guard; /* VERIFYING: replica_manager_producer_txn_guard when it began */
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
    int32_t nverifying;        /* parts in PART_VERIFYING */
    int32_t nwaiting;          /* parts in PART_WAITING */
    kslice_t transactional_id; /* in the request frame; ptr NULL: none (or v0-2) */
    /* The producer of the request's transactional batches (Kafka allows
     * one per request); -1 until one is seen. */
    int64_t txn_producer_id;
    int16_t txn_producer_epoch;
    int16_t acks;
    int32_t timeout_ms;
    bool in_handler; /* api_handle_produce has not returned yet */
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
    assert(part->state == PART_DECODED || part->state == PART_VERIFYING);
    produce_result_t res = produce_failed;
    const replica_partition_t *rp;
    int32_t partition = part->partition;
    kslice_t records = part->records;
    part->res = produce_failed;
    part->state = PART_DECODED;

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
    /* Offsets are dense: one per record appended. A duplicate appended
     * nothing. */
    if (!info.duplicate)
        metrics_topic_in(ctx->metrics, (const char *)topic.ptr, (size_t)topic.len, records.len,
                         info.last_offset - info.first_offset + 1);
    res.base_offset = info.first_offset;
    res.log_append_time = info.log_append_time;
    res.log_start_offset = partition_log_start_offset(rp->log);
    /* A duplicate waits like the original would: it is acknowledged only
     * once replicated. */
    if (acks == -1 && info.high_watermark <= info.last_offset) {
        part->state = PART_WAITING;
        part->last_offset = info.last_offset;
        part->leader_epoch = rp->leader_epoch;
    }
out:
    part->res = res;
    if (part->state != PART_WAITING)
        part->state = PART_DONE;
}

/* Re-checks a waiting partition: true when it no longer waits. */
static bool part_settle(api_context_t *ctx, kslice_t topic, produce_part_t *part)
{
    assert(part->state == PART_WAITING);
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
    part->state = PART_DONE;
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

/* The request's end: every part is DONE. Counts the parts' errors and,
 * unless acks=0, writes the answer. */
static void produce_answer(const produce_req_t *pr)
{
    for (int32_t i = 0; i < pr->nparts; i++) {
        assert(pr->parts[i].state == PART_DONE);
        metrics_request_error(pr->ctx->metrics, KAFKA_API_PRODUCE, pr->parts[i].res.error);
    }
    if (pr->acks != 0)
        produce_write_answer(pr);
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
        produce_answer(pr);
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
        if (part->state == PART_WAITING &&
            !part_settle(pr->ctx, pr->topics[part->topic_index].name, part)) {
            part->state = PART_DONE;
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
            if (part->state == PART_WAITING && part->partition == partition &&
                (size_t)name.len == tlen && memcmp(name.ptr, topic, tlen) == 0 &&
                part_settle(pp->ctx, name, part))
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

/* ---- transaction verification (KIP-890 part 1) ---- */

/* Kafka's ReplicaManager mapping of a verification's error for Produce
 * v0-8: the coordinator's retriable errors become NOT_ENOUGH_REPLICAS,
 * which old clients retry without refreshing metadata; PRODUCER_FENCED
 * becomes INVALID_PRODUCER_EPOCH (AddPartitionsToTxnManager), which
 * producers expect from a Produce. */
static int16_t verification_error(int16_t error)
{
    switch (error) {
    case KAFKA_PRODUCER_FENCED:
        return KAFKA_INVALID_PRODUCER_EPOCH;
    case KAFKA_CONCURRENT_TRANSACTIONS:
    case KAFKA_NETWORK_EXCEPTION:
    case KAFKA_COORDINATOR_LOAD_IN_PROGRESS:
    case KAFKA_COORDINATOR_NOT_AVAILABLE:
    case KAFKA_NOT_COORDINATOR:
        return KAFKA_NOT_ENOUGH_REPLICAS;
    default:
        return error;
    }
}

static void part_fail(produce_part_t *part, int16_t error)
{
    assert(error != KAFKA_NONE);
    part->res = produce_failed;
    part->res.error = error;
    part->state = PART_DONE;
}

/* Whether part must be verified before its append: one of its batches is
 * transactional and its producer has no transaction ongoing in the
 * partition (Kafka's maybeStartTransactionVerificationForPartition). A
 * partition this broker does not lead, or a malformed batch, needs none:
 * the append answers those. Fails part (DONE) for a request it cannot
 * verify. */
static bool part_needs_verification(api_context_t *ctx, produce_req_t *pr, produce_part_t *part)
{
    assert(part->state == PART_DECODED);
    const replica_partition_t *rp;
    if (!ctx->config->txns.partition_verification || pr->req->api_version < 3 ||
        part->records.ptr == NULL ||
        api_leader_replica(ctx, pr->topics[part->topic_index].name, part->partition, &rp) !=
            KAFKA_NONE)
        return false;
    bool needed = false;
    size_t at = 0;
    const size_t len = (size_t)part->records.len;
    /* Every batch's header, each bounded by the records' length (and at
     * least a header long, so the walk ends). */
    record_batch_header_t h;
    while (record_batch_read_header(part->records.ptr + at, len - at, &h)) {
        if (record_batch_is_transactional(&h) && h.producer_id >= 0 && h.producer_epoch < 0) {
            /* The append refuses it too; answered here so that no
             * coordinator is asked about epoch -1. */
            part_fail(part, KAFKA_INVALID_RECORD);
            return false;
        }
        if (record_batch_is_transactional(&h) && h.producer_id >= 0) {
            if (pr->txn_producer_id < 0) {
                pr->txn_producer_id = h.producer_id;
                pr->txn_producer_epoch = h.producer_epoch;
            } else if (pr->txn_producer_id != h.producer_id ||
                       pr->txn_producer_epoch != h.producer_epoch) {
                /* Kafka: "Transactional records contained more than one
                 * producer ID". */
                part_fail(part, KAFKA_INVALID_PRODUCER_ID_MAPPING);
                return false;
            }
            if (!replica_manager_producer_in_txn(ctx->replicas, rp, h.producer_id))
                needed = true;
        }
        if (h.length < BATCH_HEADER_SIZE - BATCH_LOG_OVERHEAD ||
            (uint64_t)record_batch_size(&h) > len - at)
            break;
        at += (size_t)record_batch_size(&h);
    }
    if (needed && pr->transactional_id.ptr == NULL) {
        /* Kafka refuses transactional records without a transactional id
         * before anything else (no id to authorize). */
        part_fail(part, KAFKA_TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
        return false;
    }
    return needed;
}

static api_result_t produce_proceed(produce_req_t *pr);

/* The partition's verification guard for the request's transactional
 * producer; 0 when this broker no longer leads it (the append then
 * answers that). */
static uint32_t part_txn_guard(api_context_t *ctx, const produce_req_t *pr,
                               const produce_part_t *part)
{
    assert(pr->txn_producer_id >= 0);
    const replica_partition_t *rp;
    if (api_leader_replica(ctx, pr->topics[part->topic_index].name, part->partition, &rp) !=
        KAFKA_NONE)
        return 0;
    return replica_manager_producer_txn_guard(ctx->replicas, rp, pr->txn_producer_id);
}

/* The coordinator's answers, in the order of the request's verifying
 * parts: each verified part is appended now, the others fail. */
static void produce_verified(void *arg, const int16_t *errors, int32_t n)
{
    produce_req_t *pr = arg;
    assert(n == pr->nverifying && n > 0);
    int32_t k = 0;
    for (int32_t i = 0; i < pr->nparts; i++) {
        produce_part_t *part = &pr->parts[i];
        if (part->state != PART_VERIFYING)
            continue;
        assert(k < n);
        int16_t error = errors[k++];
        /* A marker of the producer's since the question was asked: the
         * answer may be about a transaction that has ended (retriable: the
         * client's retry is verified afresh). */
        if (error == KAFKA_NONE && part_txn_guard(pr->ctx, pr, part) != part->txn_guard)
            error = KAFKA_CONCURRENT_TRANSACTIONS;
        if (error == KAFKA_NONE) {
            produce_partition(pr->ctx, pr->req, pr->acks, pr->topics[part->topic_index].name, part);
            if (part->state == PART_WAITING)
                pr->nwaiting++;
        } else {
            VLOG_DEBUG(API_MODULE, "%s: transactional produce to %.*s-%d not verified: %s",
                       pr->req->peer, (int)pr->topics[part->topic_index].name.len,
                       (const char *)pr->topics[part->topic_index].name.ptr, part->partition,
                       kafka_error_name(error));
            part_fail(part, verification_error(error));
        }
    }
    assert(k == n);
    pr->nverifying = 0;
    if (pr->in_handler)
        return; /* api_handle_produce goes on */
    kafka_request_t *req = pr->req;
    kafka_response_t *resp = pr->resp;
    api_result_t result = produce_proceed(pr);
    if (result != API_DEFERRED)
        api_request_complete(req, resp, result);
}

/* Asks the coordinator about the request's verifying parts. */
static void produce_verify(produce_req_t *pr)
{
    assert(pr->nverifying > 0 && pr->txn_producer_id >= 0);
    api_context_t *ctx = pr->ctx;
    if (ctx->txns == NULL || pr->nverifying > TXN_VERIFY_MAX_PARTITIONS) {
        int16_t *errors = xmalloc((size_t)pr->nverifying * sizeof(*errors));
        for (int32_t i = 0; i < pr->nverifying; i++)
            errors[i] = ctx->txns == NULL ? KAFKA_COORDINATOR_NOT_AVAILABLE : KAFKA_INVALID_REQUEST;
        produce_verified(pr, errors, pr->nverifying);
        free(errors);
        return;
    }
    txn_partition_ref_t *refs = xmalloc((size_t)pr->nverifying * sizeof(*refs));
    int32_t k = 0;
    for (int32_t i = 0; i < pr->nparts; i++)
        if (pr->parts[i].state == PART_VERIFYING)
            refs[k++] = (txn_partition_ref_t){pr->topics[pr->parts[i].topic_index].name,
                                              pr->parts[i].partition};
    assert(k == pr->nverifying);
    txn_verify_partitions(ctx->txns, pr->transactional_id, pr->txn_producer_id,
                          pr->txn_producer_epoch, refs, k, produce_verified, pr);
    free(refs);
}

/* Every part is appended or failed: answers now, or parks the request in
 * the purgatory until its acks=-1 parts are replicated. Frees pr unless
 * it returns API_DEFERRED. */
static api_result_t produce_proceed(produce_req_t *pr)
{
    assert(pr->nverifying == 0);
    api_context_t *ctx = pr->ctx;
    /* A partition may have been covered meanwhile (another partition's
     * append can complete follower fetches that move its high watermark). */
    for (int32_t i = 0; i < pr->nparts; i++) {
        produce_part_t *part = &pr->parts[i];
        if (part->state == PART_WAITING &&
            part_settle(ctx, pr->topics[part->topic_index].name, part))
            pr->nwaiting--;
    }
    if (pr->nwaiting > 0) {
        assert(pr->acks == -1);
        struct produce_purgatory *pp = ctx->produces;
        double timeout_s = pr->timeout_ms > 0 ? pr->timeout_ms / 1000.0 : 0.;
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
    const int16_t acks = pr->acks;
    produce_answer(pr);
    produce_req_free(pr);
    return acks == 0 ? API_NO_RESPONSE : API_RESPOND;
}

api_result_t api_handle_produce(api_context_t *ctx, kafka_request_t *req, kafka_response_t *resp)
{
    kreader_t *r = &req->body;
    const int16_t version = req->api_version;
    assert(version >= 0 && version <= 8);
    assert(!req->flexible);

    kslice_t transactional_id = {NULL, -1};
    if (version >= 3 && !kr_nullable_string_v(r, false, &transactional_id))
        return API_REFUSE(req, "malformed Produce request");
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
    pr->transactional_id = transactional_id;
    pr->txn_producer_id = -1;
    pr->txn_producer_epoch = -1;
    pr->acks = acks;
    pr->timeout_ms = timeout_ms;
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
            part->state = PART_DECODED;
            part->topic_index = t;
            if (!kr_i32(r, &part->partition) || !kr_bytes_v(r, false, &part->records))
                goto malformed;
        }
    }

    /* Parts needing no verification are appended at once, the others once
     * their coordinator answers (which may be before txn_verify_partitions
     * returns: in_handler keeps produce_verified from finishing pr). */
    pr->in_handler = true;
    for (int32_t i = 0; i < pr->nparts; i++) {
        produce_part_t *part = &pr->parts[i];
        if (!acks_valid) {
            part_fail(part, KAFKA_INVALID_REQUIRED_ACKS);
        } else if (part_needs_verification(ctx, pr, part)) {
            part->state = PART_VERIFYING;
            part->txn_guard = part_txn_guard(ctx, pr, part);
            pr->nverifying++;
        } else if (part->state == PART_DECODED) {
            produce_partition(ctx, req, acks, pr->topics[part->topic_index].name, part);
            if (part->state == PART_WAITING)
                pr->nwaiting++;
        }
    }
    if (pr->nverifying > 0)
        produce_verify(pr);
    pr->in_handler = false;
    if (pr->nverifying > 0)
        return API_DEFERRED; /* produce_verified completes it */
    return produce_proceed(pr);

malformed:
    produce_req_free(pr);
    return API_REFUSE(req, "malformed Produce request");
}
