/* Kafka API dispatch: one table {API key, min version, max version, first
 * flexible version, handler}. ApiVersions answers from the same table.
 *
 * Locality: everything here runs on the broker's loop thread.
 *
 * Request lifecycle (the contract between broker/net and the handlers):
 *  1. net reads one whole frame (size already checked against
 *     socket.request.max.bytes), parses the request header and builds a
 *     kafka_request_t whose `body` reader starts after the header.
 *  2. net calls api_dispatch(). Unknown keys and unsupported versions are
 *     answered or refused by api_dispatch itself, per the table; for
 *     flexible versions it sets req->flexible and skips the header's
 *     tagged fields, so handlers see `body` at the first body field.
 *  3. The handler decodes req->body, writes the response *body* (no size,
 *     no correlation id, no header tags: net writes the header) into
 *     `resp`, and returns:
 *       API_RESPOND      send resp now (in request order);
 *       API_NO_RESPONSE  send nothing (Produce acks=0);
 *       API_DEFERRED     the handler keeps req and resp and later calls
 *                        api_request_complete() exactly once (long-poll
 *                        Fetch, Produce waiting on replication, admin
 *                        requests waiting on ZooKeeper). Responses stay in
 *                        request order: later responses on the connection
 *                        wait for this one;
 *       API_MALFORMED    the request could not be decoded: net logs it with
 *                        the peer, key and reason, and closes that
 *                        connection.
 *  4. A deferred request whose connection closed meanwhile is still
 *     completed by its owner; net then just frees it. req and resp stay
 *     valid until api_request_complete() returns.
 */
#ifndef VLTAVA_API_H
#define VLTAVA_API_H

#include <stdbool.h>
#include <stdint.h>

#include "kafka_codec.h"

struct ev_loop;
struct broker_config;
struct log_manager;
struct coordinator;
struct replica_manager;
struct fetch_purgatory;
struct produce_purgatory;
struct admin_op;
struct group_coordinator;
struct txn_coordinator;
struct metrics;

enum kafka_api_key {
    KAFKA_API_PRODUCE = 0,
    KAFKA_API_FETCH = 1,
    KAFKA_API_LIST_OFFSETS = 2,
    KAFKA_API_METADATA = 3,
    KAFKA_API_OFFSET_COMMIT = 8,
    KAFKA_API_OFFSET_FETCH = 9,
    KAFKA_API_FIND_COORDINATOR = 10,
    KAFKA_API_JOIN_GROUP = 11,
    KAFKA_API_HEARTBEAT = 12,
    KAFKA_API_LEAVE_GROUP = 13,
    KAFKA_API_SYNC_GROUP = 14,
    KAFKA_API_DESCRIBE_GROUPS = 15,
    KAFKA_API_LIST_GROUPS = 16,
    KAFKA_API_API_VERSIONS = 18,
    KAFKA_API_CREATE_TOPICS = 19,
    KAFKA_API_DELETE_TOPICS = 20,
    KAFKA_API_INIT_PRODUCER_ID = 22,
    KAFKA_API_ADD_PARTITIONS_TO_TXN = 24,
    KAFKA_API_ADD_OFFSETS_TO_TXN = 25,
    KAFKA_API_END_TXN = 26,
    KAFKA_API_TXN_OFFSET_COMMIT = 28,
    KAFKA_API_DESCRIBE_CONFIGS = 32,
    KAFKA_API_CREATE_PARTITIONS = 37,
    KAFKA_API_DELETE_GROUPS = 42,
    KAFKA_API_ELECT_LEADERS = 43,
    KAFKA_API_ALTER_PARTITION_REASSIGNMENTS = 45,
    KAFKA_API_LIST_PARTITION_REASSIGNMENTS = 46,
    KAFKA_API_OFFSET_DELETE = 47,
    KAFKA_API_DESCRIBE_TRANSACTIONS = 65,
    KAFKA_API_LIST_TRANSACTIONS = 66,
    KAFKA_API_KEY_COUNT = 68 /* table size; keys at or above are unknown */
};

/* Everything a handler may touch. One per broker; owned by broker main. */
typedef struct api_context {
    struct ev_loop *loop;
    const struct broker_config *config;
    struct log_manager *logs;
    struct coordinator *coord;
    struct replica_manager *replicas;
    struct fetch_purgatory *fetches;
    struct admin_op *admin_ops;               /* admin requests waiting on the coordinator */
    struct produce_purgatory *produces;       /* acks=-1 Produce waiting on replication */
    struct group_coordinator *groups;         /* consumer groups (broker/group); set by main */
    struct txn_coordinator *txns;             /* transactions (broker/txn); set by main */
    struct producer_id_manager *producer_ids; /* InitProducerId (broker/txn); set by main */
    struct metrics *metrics; /* request counters (broker/metrics); set by main; NULL: none */
} api_context_t;

typedef enum api_result {
    API_RESPOND = 0,
    API_NO_RESPONSE,
    API_DEFERRED,
    API_MALFORMED,
} api_result_t;

typedef struct kafka_request {
    int16_t api_key;
    int16_t api_version;
    int32_t correlation_id;
    kslice_t client_id; /* nullable */
    bool flexible;      /* header v2 request; response header v1 */
    kreader_t body;     /* positioned after the request header */
    /* The whole frame, owned by net. Mutable: Produce rewrites BaseOffset
     * and PartitionLeaderEpoch of record batches in place. */
    uint8_t *frame;
    size_t frame_len;
    const char *peer; /* "ip:port", for logs */
    /* The listener the connection came in on: an index in the broker's
     * config->listeners (net's listeners, bound in that order). Metadata
     * and FindCoordinator answer with that listener's endpoints. */
    size_t listener;
    /* Why the request was refused, for net's log line when dispatch or a
     * handler returns API_MALFORMED (a static string; NULL: not given). */
    const char *malformed_reason;
    void *conn; /* opaque to handlers; net's */
    /* Request accounting, set by api_dispatch: when the request was
     * dispatched, the registry it counts in, and what net calls (once, in
     * api_request_complete, with its arguments) as a deferred request
     * completes. NULL: not accounted. */
    int64_t dispatched_ns;
    struct metrics *metrics;
    void (*on_complete)(struct kafka_request *req, const kafka_response_t *resp,
                        api_result_t result);
} kafka_request_t;

typedef api_result_t (*api_handler_fn)(api_context_t *ctx, kafka_request_t *req,
                                       kafka_response_t *resp);

typedef struct api_entry {
    int16_t min_version;
    int16_t max_version;
    int16_t first_flexible; /* -1: never flexible */
    api_handler_fn handler; /* NULL: not supported */
    const char *name;
} api_entry_t;

/* Builds the context (and the fetch purgatory it owns); frees it. */
void api_context_init(api_context_t *ctx, struct ev_loop *loop, const struct broker_config *config,
                      struct log_manager *logs, struct coordinator *coord,
                      struct replica_manager *replicas);
void api_context_destroy(api_context_t *ctx);
/* Wakes long-poll fetches waiting on (topic, partition): called after an
 * append or a high-watermark move. */
void api_notify_partition(api_context_t *ctx, const char *topic, int32_t partition);
/* Net calls this when a connection closes: deferred requests of `conn` that
 * wait only on time (long-poll Fetch) are completed at once instead of
 * holding a purgatory slot until max_wait. */
void api_connection_closed(api_context_t *ctx, void *conn);

/* The table entry for a key, or NULL when unknown/unsupported. */
const api_entry_t *api_lookup(int16_t api_key);
/* True when (key, version) uses flexible encoding (request header v2). */
bool api_is_flexible(int16_t api_key, int16_t api_version);

/* Runs the handler for req; see the lifecycle above. */
api_result_t api_dispatch(api_context_t *ctx, kafka_request_t *req, kafka_response_t *resp);

/* Completes a deferred request (implemented by broker/net). `result` is
 * API_RESPOND or API_NO_RESPONSE. Net takes back ownership of req and resp,
 * after calling req->on_complete when set. */
void api_request_complete(kafka_request_t *req, kafka_response_t *resp, api_result_t result);

#endif
