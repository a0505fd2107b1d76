/* Transactions: AddPartitionsToTxn v0-3, AddOffsetsToTxn v0-3, EndTxn v0-3
 * (flexible from v3), DescribeTransactions v0 and ListTransactions v0-1
 * (flexible from v0), decoded here and answered by the transaction
 * coordinator (broker/txn/txn_coordinator.h). InitProducerId's
 * transactional branch is in api_init_producer_id.c.
 *
 * Kafka's KafkaApis rules kept here: a partition the cluster does not have
 * fails the whole AddPartitionsToTxn (UNKNOWN_TOPIC_OR_PARTITION for it,
 * OPERATION_NOT_ATTEMPTED for the others), and so does a partition of an
 * internal topic (TOPIC_AUTHORIZATION_FAILED: Kafka never authorizes a
 * client to write those; AddOffsetsToTxn is the way to __consumer_offsets); AddOffsetsToTxn adds
 * the group's
 * __consumer_offsets partition; clients before v2 of the three write APIs
 * do not know PRODUCER_FENCED and get INVALID_PRODUCER_EPOCH instead.
 *
 * A request that waits for the coordinator lives in an op (api_deferred_t)
 * holding the request, so the decoded views into its frame stay valid. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "api_handlers.h"
#include "config.h"
#include "coordinator.h"
#include "group_coordinator.h"
#include "kafka_errors.h"
#include "txn_coordinator.h"
#include "xalloc.h"

/* The first version of AddPartitionsToTxn, AddOffsetsToTxn and EndTxn that
 * knows PRODUCER_FENCED (KIP-588). */
#define FIRST_VERSION_PRODUCER_FENCED 2

static int16_t fenced_for(int16_t version, int16_t error)
{
    if (error == KAFKA_PRODUCER_FENCED && version < FIRST_VERSION_PRODUCER_FENCED)
        return KAFKA_INVALID_PRODUCER_EPOCH;
    return error;
}

/* ---- AddPartitionsToTxn ---- */

/* The smallest topic entry: a name (a byte compact, two classic), an
 * array count (a byte / four) and, flexible, a tag section. */
#define TOPIC_MIN_BYTES(flexible) ((flexible) ? 3 : 6)

typedef struct add_partitions_op {
    api_deferred_t d;
    kreader_t topics; /* the request's topics array, re-read to answer */
    int32_t ntopics;
    /* Per partition, in request order: its own error, or NONE while the
     * coordinator decides for all. */
    int16_t *errors;
    txn_partition_ref_t *parts;
    int32_t nparts;
} add_partitions_op_t;

static void add_partitions_free(void *p)
{
    add_partitions_op_t *op = p;
    free(op->errors);
    free(op->parts);
    free(op);
}

/* The response: every partition of the request with `common`, the
 * coordinator's answer for all of them, or, when common is NONE and the
 * partition has an error of its own (nothing was attempted), that one. */
static void add_partitions_answer(add_partitions_op_t *op, int16_t common)
{
    kwriter_t *w = &op->d.resp->body;
    const bool flexible = op->d.req->flexible;
    kreader_t r = op->topics;
    kw_i32(w, 0); /* throttle_time_ms */
    kw_array_v(w, flexible, op->ntopics);
    int32_t at = 0;
    for (int32_t t = 0; t < op->ntopics; t++) {
        kslice_t name;
        int32_t n;
        kr_string_v(&r, flexible, &name);
        kr_array_v(&r, flexible, 4, &n);
        kw_string_v(w, flexible, (const char *)name.ptr, name.len);
        kw_array_v(w, flexible, n);
        for (int32_t i = 0; i < n; i++, at++) {
            int32_t partition;
            kr_i32(&r, &partition);
            kw_i32(w, partition);
            kw_i16(w,
                   common != KAFKA_NONE || op->errors[at] == KAFKA_NONE ? common : op->errors[at]);
            kw_tags_v(w, flexible);
        }
        kr_tags_v(&r, flexible);
        kw_tags_v(w, flexible);
    }
    assert(kr_ok(&r) && at == op->nparts);
    kw_tags_v(w, flexible);
}

static void add_partitions_done(void *arg, int16_t error)
{
    add_partitions_op_t *op = arg;
    add_partitions_answer(op, fenced_for(op->d.req->api_version, error));
    api_deferred_answer(&op->d);
}

static bool internal_topic(kslice_t name)
{
    return kslice_eq(name, GROUP_OFFSETS_TOPIC) || kslice_eq(name, TXN_STATE_TOPIC);
}

api_result_t api_handle_add_partitions_to_txn(api_context_t *ctx, kafka_request_t *req,
                                              kafka_response_t *resp)
{
    kreader_t *r = &req->body;
    const bool flexible = req->flexible;
    assert(req->api_version >= 0 && req->api_version <= 3);
    assert(flexible == (req->api_version >= 3));

    kslice_t id;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t ntopics;
    kr_string_v(r, flexible, &id);
    kr_i64(r, &producer_id);
    kr_i16(r, &producer_epoch);
    kr_array_v(r, flexible, TOPIC_MIN_BYTES(flexible), &ntopics);
    if (!kr_ok(r) || ntopics < 0)
        return API_REFUSE(req, "malformed AddPartitionsToTxn request");
    /* First pass: the shape, and the partition count to allocate for. */
    const kreader_t topics = *r;
    int64_t nparts = 0;
    for (int32_t t = 0; t < ntopics; t++) {
        kslice_t name;
        int32_t n;
        kr_string_v(r, flexible, &name);
        if (!kr_array_v(r, flexible, 4, &n) || n < 0)
            return API_REFUSE(req, "malformed AddPartitionsToTxn request");
        kr_skip(r, (size_t)n * 4);
        kr_tags_v(r, flexible);
        nparts += n;
    }
    kr_tags_v(r, flexible);
    if (!kr_ok(r))
        return API_REFUSE(req, "malformed AddPartitionsToTxn request");
    /* Each partition took 4 bytes of the frame. */
    assert(nparts <= INT32_MAX);

    add_partitions_op_t *op = xcalloc(1, sizeof(*op));
    op->topics = topics;
    op->ntopics = ntopics;
    op->nparts = (int32_t)nparts;
    op->errors = xcalloc((size_t)(nparts > 0 ? nparts : 1), sizeof(*op->errors));
    op->parts = xcalloc((size_t)(nparts > 0 ? nparts : 1), sizeof(*op->parts));
    kreader_t rr = topics;
    const cluster_metadata_t *md = coordinator_metadata(ctx->coord);
    bool missing = false; /* some partition cannot be added: none is */
    int32_t at = 0;
    for (int32_t t = 0; t < ntopics; t++) {
        kslice_t name;
        int32_t n;
        kr_string_v(&rr, flexible, &name);
        kr_array_v(&rr, flexible, 4, &n);
        const md_topic_t *mt = cluster_metadata_topic(md, (const char *)name.ptr, (size_t)name.len);
        for (int32_t i = 0; i < n; i++, at++) {
            int32_t partition;
            kr_i32(&rr, &partition);
            op->parts[at] = (txn_partition_ref_t){name, partition};
            if (internal_topic(name)) {
                op->errors[at] = KAFKA_TOPIC_AUTHORIZATION_FAILED;
                missing = true;
            } else if (mt == NULL || partition < 0 || partition >= mt->npartitions) {
                op->errors[at] = KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
                missing = true;
            }
        }
        kr_tags_v(&rr, flexible);
    }
    assert(kr_ok(&rr) && at == op->nparts);
    api_deferred_begin(&op->d, req, resp, add_partitions_free, op);
    if (missing) {
        /* Nothing is added: the partitions that exist were not attempted. */
        for (int32_t i = 0; i < op->nparts; i++)
            if (op->errors[i] == KAFKA_NONE)
                op->errors[i] = KAFKA_OPERATION_NOT_ATTEMPTED;
        add_partitions_answer(op, KAFKA_NONE);
        api_deferred_answer(&op->d);
        return api_deferred_end(&op->d);
    }
    if (ctx->txns == NULL)
        add_partitions_done(op, KAFKA_COORDINATOR_NOT_AVAILABLE);
    else
        txn_add_partitions(ctx->txns, id, producer_id, producer_epoch, op->parts, op->nparts,
                           add_partitions_done, op);
    return api_deferred_end(&op->d);
}

/* ---- AddOffsetsToTxn, EndTxn: one error code ---- */

typedef struct error_op {
    api_deferred_t d;
} error_op_t;

static void error_answer(void *arg, int16_t error)
{
    error_op_t *op = arg;
    kwriter_t *w = &op->d.resp->body;
    kw_i32(w, 0); /* throttle_time_ms */
    kw_i16(w, fenced_for(op->d.req->api_version, error));
    kw_tags_v(w, op->d.req->flexible);
    api_deferred_answer(&op->d);
}

/* The __consumer_offsets partition of group_id: over the topic's
 * partition count, or offsets.topic.num.partitions before it exists (as
 * Kafka's partitionFor). */
static int32_t offsets_partition_of(api_context_t *ctx, kslice_t group_id)
{
    const cluster_metadata_t *md = coordinator_metadata(ctx->coord);
    const md_topic_t *t =
        cluster_metadata_topic(md, GROUP_OFFSETS_TOPIC, strlen(GROUP_OFFSETS_TOPIC));
    int32_t n = t != NULL && t->npartitions > 0 ? t->npartitions
                                                : ctx->config->groups.offsets_topic_partitions;
    assert(n > 0);
    return group_partition_for(group_id.ptr, (size_t)group_id.len, n);
}

api_result_t api_handle_add_offsets_to_txn(api_context_t *ctx, kafka_request_t *req,
                                           kafka_response_t *resp)
{
    kreader_t *r = &req->body;
    const bool flexible = req->flexible;
    assert(req->api_version >= 0 && req->api_version <= 3);
    assert(flexible == (req->api_version >= 3));

    kslice_t id, group_id;
    int64_t producer_id;
    int16_t producer_epoch;
    kr_string_v(r, flexible, &id);
    kr_i64(r, &producer_id);
    kr_i16(r, &producer_epoch);
    kr_string_v(r, flexible, &group_id);
    kr_tags_v(r, flexible);
    if (!kr_ok(r))
        return API_REFUSE(req, "malformed AddOffsetsToTxn request");

    error_op_t *op = xcalloc(1, sizeof(*op));
    api_deferred_begin(&op->d, req, resp, free, op);
    if (ctx->txns == NULL) {
        error_answer(op, KAFKA_COORDINATOR_NOT_AVAILABLE);
        return api_deferred_end(&op->d);
    }
    const txn_partition_ref_t part = {
        .topic = {(const uint8_t *)GROUP_OFFSETS_TOPIC, (int32_t)strlen(GROUP_OFFSETS_TOPIC)},
        .partition = offsets_partition_of(ctx, group_id)};
    txn_add_partitions(ctx->txns, id, producer_id, producer_epoch, &part, 1, error_answer, op);
    return api_deferred_end(&op->d);
}

api_result_t api_handle_end_txn(api_context_t *ctx, kafka_request_t *req, kafka_response_t *resp)
{
    kreader_t *r = &req->body;
    const bool flexible = req->flexible;
    assert(req->api_version >= 0 && req->api_version <= 3);
    assert(flexible == (req->api_version >= 3));

    kslice_t id;
    int64_t producer_id;
    int16_t producer_epoch;
    bool committed;
    kr_string_v(r, flexible, &id);
    kr_i64(r, &producer_id);
    kr_i16(r, &producer_epoch);
    kr_bool(r, &committed);
    kr_tags_v(r, flexible);
    if (!kr_ok(r))
        return API_REFUSE(req, "malformed EndTxn request");

    error_op_t *op = xcalloc(1, sizeof(*op));
    api_deferred_begin(&op->d, req, resp, free, op);
    if (ctx->txns == NULL)
        error_answer(op, KAFKA_COORDINATOR_NOT_AVAILABLE);
    else
        txn_end(ctx->txns, id, producer_id, producer_epoch, committed, error_answer, op);
    return api_deferred_end(&op->d);
}

/* ---- DescribeTransactions, ListTransactions (always flexible) ---- */

/* Every transactional id costs a coordinator lookup and an answer of up to
 * a few KiB: this bounds a response as the frame bounds a request. */
#define DESCRIBE_MAX_IDS 10000

static void describe_one(api_context_t *ctx, kwriter_t *w, kslice_t id)
{
    txn_description_t d;
    if (ctx->txns != NULL) {
        txn_describe(ctx->txns, id, &d);
    } else {
        d = (txn_description_t){.error = KAFKA_COORDINATOR_NOT_AVAILABLE,
                                .state = "",
                                .producer_id = -1,
                                .producer_epoch = -1,
                                .start_ms = -1};
    }
    kw_i16(w, d.error);
    kw_string_v(w, true, (const char *)id.ptr, id.len);
    kw_string_v(w, true, d.state, -1);
    kw_i32(w, d.timeout_ms);
    kw_i64(w, d.start_ms);
    kw_i64(w, d.producer_id);
    kw_i16(w, d.producer_epoch);
    /* Topics: the sorted partitions, one entry per run of a topic. */
    int32_t ntopics = 0;
    for (int32_t i = 0; i < d.npartitions; i++)
        if (i == 0 || d.partitions[i].topic.len != d.partitions[i - 1].topic.len ||
            memcmp(d.partitions[i].topic.ptr, d.partitions[i - 1].topic.ptr,
                   (size_t)d.partitions[i].topic.len) != 0)
            ntopics++;
    kw_array_v(w, true, ntopics);
    for (int32_t i = 0; i < d.npartitions;) {
        kslice_t topic = d.partitions[i].topic;
        int32_t end = i + 1;
        while (end < d.npartitions && d.partitions[end].topic.len == topic.len &&
               memcmp(d.partitions[end].topic.ptr, topic.ptr, (size_t)topic.len) == 0)
            end++;
        kw_string_v(w, true, (const char *)topic.ptr, topic.len);
        kw_array_v(w, true, end - i);
        for (; i < end; i++)
            kw_i32(w, d.partitions[i].partition);
        kw_tags_v(w, true);
    }
    kw_tags_v(w, true);
    free(d.partitions);
}

api_result_t api_handle_describe_transactions(api_context_t *ctx, kafka_request_t *req,
                                              kafka_response_t *resp)
{
    kreader_t *r = &req->body;
    kwriter_t *w = &resp->body;
    assert(req->api_version == 0 && req->flexible);

    int32_t n;
    kslice_t id;
    kr_array_v(r, true, 1, &n);
    if (!kr_ok(r) || n < 0)
        return API_REFUSE(req, "malformed DescribeTransactions request");
    if (n > DESCRIBE_MAX_IDS)
        return API_REFUSE(req, "DescribeTransactions asks for too many ids");
    const kreader_t ids = *r;
    for (int32_t i = 0; i < n; i++)
        kr_string_v(r, true, &id);
    kr_tags_v(r, true);
    if (!kr_ok(r))
        return API_REFUSE(req, "malformed DescribeTransactions request");

    kreader_t rr = ids;
    kw_i32(w, 0); /* throttle_time_ms */
    kw_array_v(w, true, n);
    for (int32_t i = 0; i < n; i++) {
        kr_string_v(&rr, true, &id); /* read above */
        describe_one(ctx, w, id);
    }
    kw_tags_v(w, true);
    return API_RESPOND;
}

api_result_t api_handle_list_transactions(api_context_t *ctx, kafka_request_t *req,
                                          kafka_response_t *resp)
{
    kreader_t *r = &req->body;
    kwriter_t *w = &resp->body;
    const int16_t version = req->api_version;
    assert(version >= 0 && version <= 1 && req->flexible);

    int32_t nstates = 0, npids = 0;
    kr_array_v(r, true, 1, &nstates);
    if (!kr_ok(r) || nstates < 0)
        return API_REFUSE(req, "malformed ListTransactions request");
    kslice_t *states = xcalloc((size_t)(nstates > 0 ? nstates : 1), sizeof(*states));
    for (int32_t i = 0; i < nstates; i++)
        kr_string_v(r, true, &states[i]);
    kr_array_v(r, true, 8, &npids);
    int64_t *pids = NULL;
    if (kr_ok(r) && npids > 0) {
        pids = xcalloc((size_t)npids, sizeof(*pids));
        for (int32_t i = 0; i < npids; i++)
            kr_i64(r, &pids[i]);
    }
    int64_t duration = -1;
    if (version >= 1)
        kr_i64(r, &duration);
    kr_tags_v(r, true);
    if (!kr_ok(r) || npids < 0) {
        free(states);
        free(pids);
        return API_REFUSE(req, "malformed ListTransactions request");
    }

    txn_listing_t *list = NULL;
    int32_t count = 0, nunknown = 0;
    kslice_t *unknown = NULL;
    int16_t error = KAFKA_COORDINATOR_NOT_AVAILABLE;
    if (ctx->txns != NULL) {
        const txn_list_filter_t filter = {.states = states,
                                          .nstates = nstates,
                                          .producer_ids = pids,
                                          .nproducer_ids = npids,
                                          .min_duration_ms = duration};
        error = txn_list(ctx->txns, &filter, &list, &count, &unknown, &nunknown);
    }
    kw_i32(w, 0); /* throttle_time_ms */
    kw_i16(w, error);
    kw_array_v(w, true, nunknown);
    for (int32_t i = 0; i < nunknown; i++)
        kw_string_v(w, true, (const char *)unknown[i].ptr, unknown[i].len);
    kw_array_v(w, true, count);
    for (int32_t i = 0; i < count; i++) {
        kw_string_v(w, true, list[i].transactional_id, -1);
        kw_i64(w, list[i].producer_id);
        kw_string_v(w, true, list[i].state, -1);
        kw_tags_v(w, true);
    }
    kw_tags_v(w, true);
    free(list);
    free(unknown);
    free(states);
    free(pids);
    return API_RESPOND;
}
