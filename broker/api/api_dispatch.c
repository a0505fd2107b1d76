/* The dispatch table and ApiVersions, which answers from it.
 *
 * Dispatch owns everything that depends on the table: it looks the key up,
 * checks the version, decides whether the request header is v2 (flexible)
 * and skips its tagged fields, then runs the handler. An unknown key or an
 * unsupported version is API_MALFORMED (net closes the connection, as Kafka
 * and librdkafka's mock broker do), except ApiVersions, which KIP-511 answers
 * with a v0-format UNSUPPORTED_VERSION response listing itself.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "api_handlers.h"
#include "kafka_codec.h"
#include "kafka_errors.h"
#include "metrics.h"

static api_result_t api_handle_api_versions(api_context_t *ctx, kafka_request_t *req,
                                            kafka_response_t *resp);

_Static_assert(KAFKA_API_KEY_COUNT <= METRICS_API_KEYS, "every API key has a metrics slot");

/* One row per supported API: {min, max, first flexible version, handler,
 * name}. ApiVersions advertises exactly these ranges, so a row's max must be
 * a version whose (flexible) encoding the handler really implements. */
static const api_entry_t api_table[KAFKA_API_KEY_COUNT] = {
    [KAFKA_API_PRODUCE] = {0, 8, 9, api_handle_produce, "Produce"},
    [KAFKA_API_FETCH] = {4, 11, 12, api_handle_fetch, "Fetch"},
    [KAFKA_API_LIST_OFFSETS] = {0, 5, 6, api_handle_list_offsets, "ListOffsets"},
    [KAFKA_API_METADATA] = {0, 8, 9, api_handle_metadata, "Metadata"},
    [KAFKA_API_OFFSET_COMMIT] = {0, 8, 8, api_handle_offset_commit, "OffsetCommit"},
    [KAFKA_API_OFFSET_FETCH] = {0, 8, 6, api_handle_offset_fetch, "OffsetFetch"},
    [KAFKA_API_FIND_COORDINATOR] = {0, 4, 3, api_handle_find_coordinator, "FindCoordinator"},
    [KAFKA_API_JOIN_GROUP] = {0, 9, 6, api_handle_join_group, "JoinGroup"},
    [KAFKA_API_HEARTBEAT] = {0, 4, 4, api_handle_heartbeat, "Heartbeat"},
    [KAFKA_API_LEAVE_GROUP] = {0, 5, 4, api_handle_leave_group, "LeaveGroup"},
    [KAFKA_API_SYNC_GROUP] = {0, 5, 4, api_handle_sync_group, "SyncGroup"},
    [KAFKA_API_DESCRIBE_GROUPS] = {0, 5, 5, api_handle_describe_groups, "DescribeGroups"},
    [KAFKA_API_LIST_GROUPS] = {0, 4, 3, api_handle_list_groups, "ListGroups"},
    [KAFKA_API_API_VERSIONS] = {0, 3, 3, api_handle_api_versions, "ApiVersions"},
    [KAFKA_API_CREATE_TOPICS] = {0, 4, 5, api_handle_create_topics, "CreateTopics"},
    [KAFKA_API_DELETE_TOPICS] = {0, 3, 4, api_handle_delete_topics, "DeleteTopics"},
    [KAFKA_API_INIT_PRODUCER_ID] = {0, 4, 2, api_handle_init_producer_id, "InitProducerId"},
    [KAFKA_API_ADD_PARTITIONS_TO_TXN] = {0, 3, 3, api_handle_add_partitions_to_txn,
                                         "AddPartitionsToTxn"},
    [KAFKA_API_ADD_OFFSETS_TO_TXN] = {0, 3, 3, api_handle_add_offsets_to_txn, "AddOffsetsToTxn"},
    [KAFKA_API_END_TXN] = {0, 3, 3, api_handle_end_txn, "EndTxn"},
    [KAFKA_API_TXN_OFFSET_COMMIT] = {0, 3, 3, api_handle_txn_offset_commit, "TxnOffsetCommit"},
    [KAFKA_API_DESCRIBE_CONFIGS] = {0, 2, 4, api_handle_describe_configs, "DescribeConfigs"},
    [KAFKA_API_CREATE_PARTITIONS] = {0, 1, 2, api_handle_create_partitions, "CreatePartitions"},
    [KAFKA_API_DELETE_GROUPS] = {0, 2, 2, api_handle_delete_groups, "DeleteGroups"},
    [KAFKA_API_ELECT_LEADERS] = {0, 2, 2, api_handle_elect_leaders, "ElectLeaders"},
    [KAFKA_API_ALTER_PARTITION_REASSIGNMENTS] = {0, 0, 0, api_handle_alter_partition_reassignments,
                                                 "AlterPartitionReassignments"},
    [KAFKA_API_LIST_PARTITION_REASSIGNMENTS] = {0, 0, 0, api_handle_list_partition_reassignments,
                                                "ListPartitionReassignments"},
    [KAFKA_API_OFFSET_DELETE] = {0, 0, -1, api_handle_offset_delete, "OffsetDelete"},
    [KAFKA_API_DESCRIBE_TRANSACTIONS] = {0, 0, 0, api_handle_describe_transactions,
                                         "DescribeTransactions"},
    [KAFKA_API_LIST_TRANSACTIONS] = {0, 1, 0, api_handle_list_transactions, "ListTransactions"},
};

const api_entry_t *api_lookup(int16_t api_key)
{
    if (api_key < 0 || api_key >= KAFKA_API_KEY_COUNT)
        return NULL;
    const api_entry_t *e = &api_table[api_key];
    if (e->handler == NULL)
        return NULL;
    assert(e->min_version >= 0 && e->min_version <= e->max_version);
    assert(e->name != NULL);
    return e;
}

bool api_is_flexible(int16_t api_key, int16_t api_version)
{
    const api_entry_t *e = api_lookup(api_key);
    if (e == NULL || e->first_flexible < 0)
        return false;
    return api_version >= e->first_flexible;
}

/* Where an answer's top-level ErrorCode is, for the error metrics: first
 * in the body, or after ThrottleTimeMs from version throttle_from on; only
 * versions below `until` have one. The APIs not listed answer errors per
 * item (topic, partition, group); Produce and Fetch count theirs. */
typedef struct api_top_error {
    int16_t throttle_from;
    int16_t until; /* 0: no top-level ErrorCode */
} api_top_error_t;

static const api_top_error_t api_top_errors[KAFKA_API_KEY_COUNT] = {
    [KAFKA_API_FIND_COORDINATOR] = {1, 4}, /* v4 answers per key */
    [KAFKA_API_JOIN_GROUP] = {2, INT16_MAX},
    [KAFKA_API_HEARTBEAT] = {1, INT16_MAX},
    [KAFKA_API_LEAVE_GROUP] = {1, INT16_MAX},
    [KAFKA_API_SYNC_GROUP] = {1, INT16_MAX},
    [KAFKA_API_LIST_GROUPS] = {1, INT16_MAX},
    [KAFKA_API_API_VERSIONS] = {INT16_MAX, INT16_MAX}, /* an unsupported version's too */
    [KAFKA_API_INIT_PRODUCER_ID] = {0, INT16_MAX},
    [KAFKA_API_ADD_OFFSETS_TO_TXN] = {0, INT16_MAX},
    [KAFKA_API_END_TXN] = {0, INT16_MAX},
    [KAFKA_API_OFFSET_DELETE] = {INT16_MAX, INT16_MAX},
    [KAFKA_API_LIST_TRANSACTIONS] = {0, INT16_MAX},
    [KAFKA_API_ALTER_PARTITION_REASSIGNMENTS] = {0, INT16_MAX},
    [KAFKA_API_LIST_PARTITION_REASSIGNMENTS] = {0, INT16_MAX},
};

/* A request answered (or given up) now: its latency, and the answer's
 * top-level error when it has one. */
static void api_request_accounted(kafka_request_t *req, const kafka_response_t *resp,
                                  api_result_t result)
{
    double seconds = (double)(metrics_clock_ns() - req->dispatched_ns) / 1e9;
    metrics_request_completed(req->metrics, req->api_key, seconds);
    assert(req->api_key >= 0 && req->api_key < KAFKA_API_KEY_COUNT);
    const api_top_error_t *top = &api_top_errors[req->api_key];
    if (result != API_RESPOND || req->api_version >= top->until)
        return;
    size_t at = req->api_version >= top->throttle_from ? 4 : 0;
    if (resp->body.len < at + 2)
        return;
    const uint8_t *p = resp->body.buf + at;
    metrics_request_error(req->metrics, req->api_key, (int16_t)((uint16_t)p[0] << 8 | p[1]));
}

/* Checks the version, decides the header's flexibility and runs the
 * handler. A refusal's error code (for the metrics) goes to *refusal. */
static api_result_t api_run(api_context_t *ctx, const api_entry_t *e, kafka_request_t *req,
                            kafka_response_t *resp, int16_t *refusal)
{
    *refusal = KAFKA_INVALID_REQUEST;
    if (req->api_version < e->min_version || req->api_version > e->max_version) {
        if (req->api_key == KAFKA_API_API_VERSIONS)
            return api_handle_api_versions(ctx, req, resp); /* KIP-511 */
        *refusal = KAFKA_UNSUPPORTED_VERSION;
        req->malformed_reason = "unsupported version";
        return API_MALFORMED;
    }
    req->flexible = e->first_flexible >= 0 && req->api_version >= e->first_flexible;
    if (!kr_tags_v(&req->body, req->flexible)) {
        req->malformed_reason = "bad request header tagged fields";
        return API_MALFORMED;
    }
    return e->handler(ctx, req, resp);
}

api_result_t api_dispatch(api_context_t *ctx, kafka_request_t *req, kafka_response_t *resp)
{
    assert(req != NULL && resp != NULL);
    assert(resp->body.len == 0);
    const api_entry_t *e = api_lookup(req->api_key);
    if (e == NULL) {
        req->malformed_reason = "unknown API key"; /* no API to count it under */
        return API_MALFORMED;
    }
    /* Set before the handler runs: it may complete a deferred request
     * before it returns. */
    req->metrics = ctx->metrics;
    req->dispatched_ns = metrics_clock_ns();
    req->on_complete = api_request_accounted;
    metrics_request_received(req->metrics, req->api_key, e->name);
    int16_t refusal;
    api_result_t result = api_run(ctx, e, req, resp, &refusal);
    if (result == API_DEFERRED)
        return result; /* req belongs to its handler now, and may be gone */
    if (result == API_MALFORMED)
        metrics_request_error(req->metrics, req->api_key, refusal);
    api_request_accounted(req, resp, result);
    return result;
}

/* Kafka's rule for ClientSoftwareName/Version (KIP-511):
 * [a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])? */
static bool is_alnum(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool valid_client_software(kslice_t s)
{
    if (s.ptr == NULL || s.len <= 0)
        return false;
    if (!is_alnum(s.ptr[0]) || !is_alnum(s.ptr[s.len - 1]))
        return false;
    for (int32_t i = 1; i < s.len - 1; i++) {
        uint8_t c = s.ptr[i];
        if (!is_alnum(c) && c != '-' && c != '.')
            return false;
    }
    return true;
}

/* Writes the ApiKeys array: every supported API, or only ApiVersions. */
static void write_api_keys(kwriter_t *w, bool flexible, bool only_api_versions)
{
    int32_t count = 0;
    for (int16_t key = 0; key < KAFKA_API_KEY_COUNT; key++)
        if (api_lookup(key) != NULL && (!only_api_versions || key == KAFKA_API_API_VERSIONS))
            count++;
    assert(count >= 1);
    kw_array_v(w, flexible, count);
    for (int16_t key = 0; key < KAFKA_API_KEY_COUNT; key++) {
        const api_entry_t *e = api_lookup(key);
        if (e == NULL || (only_api_versions && key != KAFKA_API_API_VERSIONS))
            continue;
        kw_i16(w, key);
        kw_i16(w, e->min_version);
        kw_i16(w, e->max_version);
        kw_tags_v(w, flexible);
    }
}

/* ApiVersions v0-3. The response header is always v0 (KIP-511), which net
 * applies by key. Body: ErrorCode, ApiKeys, ThrottleTimeMs (v1+), tags (v3+).
 * An unsupported version gets a v0 body: UNSUPPORTED_VERSION and only key 18,
 * so the client can retry with a version both sides know. */
static api_result_t api_handle_api_versions(api_context_t *ctx, kafka_request_t *req,
                                            kafka_response_t *resp)
{
    const api_entry_t *self = &api_table[KAFKA_API_API_VERSIONS];
    kwriter_t *w = &resp->body;

    assert(req->api_key == KAFKA_API_API_VERSIONS);
    if (req->api_version < self->min_version || req->api_version > self->max_version) {
        req->flexible = false;
        kw_i16(w, KAFKA_UNSUPPORTED_VERSION);
        write_api_keys(w, false, true);
        return API_RESPOND;
    }

    bool flexible = req->flexible;
    int16_t error = KAFKA_NONE;
    if (req->api_version >= 3) {
        kslice_t name, version;
        kr_string_v(&req->body, true, &name);
        kr_string_v(&req->body, true, &version);
        kr_tags_v(&req->body, true);
        if (!kr_ok(&req->body)) {
            req->malformed_reason = "bad ApiVersions v3 body";
            return API_MALFORMED;
        }
        if (!valid_client_software(name) || !valid_client_software(version))
            error = KAFKA_INVALID_REQUEST;
    }
    kw_i16(w, error);
    if (error == KAFKA_NONE)
        write_api_keys(w, flexible, false);
    else
        kw_array_v(w, flexible, 0); /* Kafka lists no APIs with INVALID_REQUEST */
    if (req->api_version >= 1)
        kw_i32(w, 0); /* ThrottleTimeMs */
    kw_tags_v(w, flexible);
    return API_RESPOND;
}
