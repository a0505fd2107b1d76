/* Module-internal: the Kafka API handlers the dispatch table names, the
 * fetch purgatory, and helpers shared by the handlers. Locality: the
 * broker's loop thread, like everything in broker/api. */
#ifndef VLTAVA_API_HANDLERS_H
#define VLTAVA_API_HANDLERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api.h"
#include "partition_log.h"
#include "replica_manager.h"
#include "topic_name.h"

/* ---- handlers (see api.h for the lifecycle) ---- */
api_result_t api_handle_produce(api_context_t *ctx, kafka_request_t *req, kafka_response_t *resp);
api_result_t api_handle_fetch(api_context_t *ctx, kafka_request_t *req, kafka_response_t *resp);
api_result_t api_handle_list_offsets(api_context_t *ctx, kafka_request_t *req,
                                     kafka_response_t *resp);
api_result_t api_handle_metadata(api_context_t *ctx, kafka_request_t *req, kafka_response_t *resp);
api_result_t api_handle_create_topics(api_context_t *ctx, kafka_request_t *req,
                                      kafka_response_t *resp);
api_result_t api_handle_delete_topics(api_context_t *ctx, kafka_request_t *req,
                                      kafka_response_t *resp);
api_result_t api_handle_create_partitions(api_context_t *ctx, kafka_request_t *req,
                                          kafka_response_t *resp);
api_result_t api_handle_find_coordinator(api_context_t *ctx, kafka_request_t *req,
                                         kafka_response_t *resp);
api_result_t api_handle_describe_configs(api_context_t *ctx, kafka_request_t *req,
                                         kafka_response_t *resp);
/* ElectLeaders (api_elect_leaders.c), run by the controller. */
api_result_t api_handle_elect_leaders(api_context_t *ctx, kafka_request_t *req,
                                      kafka_response_t *resp);
api_result_t api_handle_init_producer_id(api_context_t *ctx, kafka_request_t *req,
                                         kafka_response_t *resp);
/* Partition reassignment (api_reassign.c), answered by the controller. */
api_result_t api_handle_alter_partition_reassignments(api_context_t *ctx, kafka_request_t *req,
                                                      kafka_response_t *resp);
api_result_t api_handle_list_partition_reassignments(api_context_t *ctx, kafka_request_t *req,
                                                     kafka_response_t *resp);
/* Consumer groups (api_group.c, api_offsets.c), answered by ctx->groups. */
api_result_t api_handle_join_group(api_context_t *ctx, kafka_request_t *req,
                                   kafka_response_t *resp);
api_result_t api_handle_sync_group(api_context_t *ctx, kafka_request_t *req,
                                   kafka_response_t *resp);
api_result_t api_handle_heartbeat(api_context_t *ctx, kafka_request_t *req, kafka_response_t *resp);
api_result_t api_handle_leave_group(api_context_t *ctx, kafka_request_t *req,
                                    kafka_response_t *resp);
api_result_t api_handle_list_groups(api_context_t *ctx, kafka_request_t *req,
                                    kafka_response_t *resp);
api_result_t api_handle_describe_groups(api_context_t *ctx, kafka_request_t *req,
                                        kafka_response_t *resp);
api_result_t api_handle_delete_groups(api_context_t *ctx, kafka_request_t *req,
                                      kafka_response_t *resp);
api_result_t api_handle_offset_commit(api_context_t *ctx, kafka_request_t *req,
                                      kafka_response_t *resp);
api_result_t api_handle_offset_fetch(api_context_t *ctx, kafka_request_t *req,
                                     kafka_response_t *resp);
api_result_t api_handle_offset_delete(api_context_t *ctx, kafka_request_t *req,
                                      kafka_response_t *resp);
api_result_t api_handle_txn_offset_commit(api_context_t *ctx, kafka_request_t *req,
                                          kafka_response_t *resp);

/* Transactions (api_txn.c), answered by ctx->txns. */
api_result_t api_handle_add_partitions_to_txn(api_context_t *ctx, kafka_request_t *req,
                                              kafka_response_t *resp);
api_result_t api_handle_add_offsets_to_txn(api_context_t *ctx, kafka_request_t *req,
                                           kafka_response_t *resp);
api_result_t api_handle_end_txn(api_context_t *ctx, kafka_request_t *req, kafka_response_t *resp);
api_result_t api_handle_describe_transactions(api_context_t *ctx, kafka_request_t *req,
                                              kafka_response_t *resp);
api_result_t api_handle_list_transactions(api_context_t *ctx, kafka_request_t *req,
                                          kafka_response_t *resp);

/* ---- fetch purgatory (api_fetch.c) ---- */

/* Most fetches that may wait at once; beyond it a fetch answers at once
 * with what it has (a consumer then simply polls again). */
#define FETCH_PURGATORY_MAX 4096

struct fetch_purgatory *fetch_purgatory_new(api_context_t *ctx);
/* Gives every waiting fetch back to net unanswered (the broker is
 * stopping); frees. */
void fetch_purgatory_free(struct fetch_purgatory *fp);
/* Re-evaluates the fetches waiting on (topic, partition). */
void fetch_purgatory_notify(struct fetch_purgatory *fp, const char *topic, int32_t partition);
/* Gives the fetches of a closed connection back to net now, unanswered. */
void fetch_purgatory_connection_closed(struct fetch_purgatory *fp, void *conn);
size_t fetch_purgatory_size(const struct fetch_purgatory *fp);

/* ---- produce purgatory (api_produce.c): acks=-1 waiting on replication ---- */

struct produce_purgatory *produce_purgatory_new(api_context_t *ctx);
/* Gives every waiting Produce back to net unanswered (the broker is
 * stopping); frees. */
void produce_purgatory_free(struct produce_purgatory *pp);
/* Re-checks the Produce requests waiting on (topic, partition): its high
 * watermark or leadership changed. */
void produce_purgatory_notify(struct produce_purgatory *pp, const char *topic, int32_t partition);

/* ---- admin requests in flight (api_admin.c) ---- */

/* Answers every admin request still waiting on the coordinator with
 * REQUEST_TIMED_OUT and frees it. Only after coordinator_stop(): the
 * coordinator must not call their `done` afterwards. */
void api_admin_abort_all(api_context_t *ctx);

/* ---- answers that may come during a call or later (api_group.c) ---- */

/* For a request answered through a callback that runs exactly once, either
 * before the call that took it returns or later on the loop (the group
 * coordinator's). The request's state lives in an op that embeds the
 * api_deferred_t and is freed by free_op exactly once, by whichever of
 * these runs last:
 *   handler:  api_deferred_begin(), the call, return api_deferred_end();
 *   callback: write the answer into d->resp, then api_deferred_answer().
 * Answered during the call, the handler's return is API_RESPOND; later, it
 * is API_DEFERRED and api_deferred_answer() completes the request. The op
 * must not be touched after either of those two returns. */
typedef struct api_deferred {
    kafka_request_t *req;
    kafka_response_t *resp;
    void (*free_op)(void *op);
    void *op;
    bool in_call;  /* between begin and end */
    bool answered; /* the callback ran */
} api_deferred_t;

void api_deferred_begin(api_deferred_t *d, kafka_request_t *req, kafka_response_t *resp,
                        void (*free_op)(void *op), void *op);
api_result_t api_deferred_end(api_deferred_t *d);
void api_deferred_answer(api_deferred_t *d);

/* ---- helpers (api_util.c) ---- */

#define API_MODULE "api"

/* The name of the listener req came in on. Metadata and
 * FindCoordinator hand out each broker's endpoint of that listener
 * (md_broker_endpoint), leaving out brokers that lack it, as Kafka does. */
const char *api_listener_name(const api_context_t *ctx, const kafka_request_t *req);

/* Kafka's topic name rule: 1..249 characters of [a-zA-Z0-9._-], and not
 * "." or "..". Returns KAFKA_NONE or KAFKA_INVALID_TOPIC_EXCEPTION with the
 * reason in msg. */
#define API_TOPIC_NAME_MAX TOPIC_NAME_MAX
int16_t api_validate_topic_name(const char *name, size_t len, char *msg, size_t msg_size);

/* Checks one topic-level config entry as the log will apply it
 * (log_config_set; the log also owns min.insync.replicas and
 * cleanup.policy). Returns KAFKA_NONE or KAFKA_INVALID_CONFIG with the
 * reason, naming the key, in msg. */
int16_t api_validate_topic_config(const char *key, const char *value, char *msg, size_t msg_size);

/* A request's current_leader_epoch against the partition's: NONE when the
 * client sent none (-1) or they match; FENCED_LEADER_EPOCH when the client's
 * is older; UNKNOWN_LEADER_EPOCH when it is newer. */
int16_t api_check_leader_epoch(int32_t requested, int32_t current);

/* The local replica of (topic, partition) that this broker leads, or the
 * error to answer: UNKNOWN_TOPIC_OR_PARTITION when the cluster has no such
 * partition, NOT_LEADER_OR_FOLLOWER when another broker leads it (or this
 * broker has not taken it over yet). */
int16_t api_leader_replica(api_context_t *ctx, kslice_t topic, int32_t partition,
                           const replica_partition_t **out);

/* Refuses a request that does not decode; net logs `why` with the peer. */
#define API_REFUSE(req, why) ((req)->malformed_reason = (why), API_MALFORMED)

/* Kafka's "no authorized operations" marker (INT32_MIN). */
#define API_AUTHORIZED_OPS_OMITTED ((int32_t)(-2147483647 - 1))

#endif
