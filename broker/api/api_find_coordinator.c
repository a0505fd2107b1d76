/* FindCoordinator v0-4 (flexible from v3; v4 asks for a batch of keys,
 * KIP-699, and answers each on its own).
 *
 * The coordinator's endpoint is that of the listener the request came in
 * on; a coordinator without that listener answers COORDINATOR_NOT_AVAILABLE,
 * as Kafka does.
 *
 * A group's coordinator is the leader of its partition of
 * __consumer_offsets, a transactional id's (key type 1) the leader of its
 * partition of __transaction_state: group_partition_for(key) over the
 * partition count the metadata gives the topic (Kafka reads the count of
 * the existing topic too; the *.num.partitions settings only size its
 * creation). Each topic is created on first need, as Kafka does: the first
 * FindCoordinator asks the controller for it (one creation in flight per
 * topic per broker) and answers COORDINATOR_NOT_AVAILABLE, which clients
 * retry; with fewer live brokers than its replication factor the
 * controller creates nothing and the answer stays COORDINATOR_NOT_AVAILABLE.
 * Other key types answer INVALID_REQUEST.
 *
 * librdkafka gates features on this API (its LZ4 support requires
 * FindCoordinator v0 in ApiVersions), so v0 stays advertised. */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "api_handlers.h"
#include "config.h"
#include "coordinator.h"
#include "group_coordinator.h"
#include "txn_coordinator.h"
#include "kafka_errors.h"
#include "vlog.h"

#define KEY_TYPE_GROUP       0
#define KEY_TYPE_TRANSACTION 1

/* The keys one v4 request may ask for: each answer is about 40 bytes plus
 * the key, so this bounds the response as the frame bounds the request. */
#define FIND_COORDINATOR_MAX_KEYS 10000

/* An internal topic that coordinators live on. At most one creation of
 * each in flight per broker: every client retries FindCoordinator until
 * the topic has leaders. */
typedef struct coordinator_topic {
    const char *name;
    bool creating;
} coordinator_topic_t;

static coordinator_topic_t offsets_topic = {.name = GROUP_OFFSETS_TOPIC};
static coordinator_topic_t txn_topic = {.name = TXN_STATE_TOPIC};

typedef struct coordinator_answer {
    int16_t error;
    const char *message; /* NULL: none */
    int32_t node_id;
    const char *host;
    int32_t port;
} coordinator_answer_t;

static void topic_created(void *arg, int16_t error, const char *message)
{
    coordinator_topic_t *topic = arg;
    assert(topic->creating);
    topic->creating = false;
    if (error == KAFKA_NONE)
        VLOG_INFO(API_MODULE, "created %s", topic->name);
    else if (error != KAFKA_TOPIC_ALREADY_EXISTS)
        VLOG_WARN(API_MODULE, "creating %s failed: %s%s%s", topic->name, kafka_error_name(error),
                  message ? ": " : "", message ? message : "");
}

/* Asks the controller for topic (partitions, factor and its config). */
static void create_topic(api_context_t *ctx, coordinator_topic_t *topic, int32_t partitions,
                         int16_t replication_factor, const char *const *keys,
                         const char *const *values, size_t nconfigs)
{
    assert(partitions > 0 && replication_factor > 0);
    if (topic->creating)
        return;
    topic_spec_t spec = {
        .name = topic->name,
        .partitions = partitions,
        .replication_factor = replication_factor,
        .config_keys = keys,
        .config_values = values,
        .nconfigs = nconfigs,
    };
    topic->creating = true;
    VLOG_INFO(API_MODULE, "creating %s (%d partitions, replication factor %d)", topic->name,
              (int)partitions, (int)replication_factor);
    coordinator_create_topic(ctx->coord, &spec, topic_created, topic);
}

/* As Kafka creates it: compacted (only each key's latest offset and group
 * record matter). The log keeps the policy but does not compact yet, and a
 * compact-only log is never trimmed by retention, so nothing is lost
 * meanwhile: the partitions grow and are replayed whole. */
static void create_offsets_topic(api_context_t *ctx)
{
    const group_config_t *g = &ctx->config->groups;
    char segment_bytes[16];
    snprintf(segment_bytes, sizeof(segment_bytes), "%d", (int)g->offsets_topic_segment_bytes);
    const char *const keys[] = {"cleanup.policy", "segment.bytes"};
    const char *const values[] = {"compact", segment_bytes};
    create_topic(ctx, &offsets_topic, g->offsets_topic_partitions,
                 g->offsets_topic_replication_factor, keys, values, sizeof(keys) / sizeof(keys[0]));
}

/* Kafka's transactionTopicConfigs: compacted, with
 * transaction.state.log.min.isr as its min.insync.replicas (capped at the
 * replication factor, so that a cluster configured with a smaller factor
 * than the default can still write it). */
static void create_txn_topic(api_context_t *ctx)
{
    const txn_config_t *t = &ctx->config->txns;
    char segment_bytes[16], min_isr[8];
    snprintf(segment_bytes, sizeof(segment_bytes), "%d", (int)t->log_segment_bytes);
    snprintf(min_isr, sizeof(min_isr), "%d",
             (int)(t->log_min_isr < t->log_replication_factor ? t->log_min_isr
                                                              : t->log_replication_factor));
    const char *const keys[] = {"cleanup.policy", "segment.bytes", "min.insync.replicas"};
    const char *const values[] = {"compact", segment_bytes, min_isr};
    create_topic(ctx, &txn_topic, t->log_partitions, t->log_replication_factor, keys, values,
                 sizeof(keys) / sizeof(keys[0]));
}

/* The coordinator of one key, its endpoint that of `listener`. The
 * answer's strings are views into the metadata (valid until control
 * returns to the loop) or static. *asked: whether this request already
 * asked for the key type's topic (once is enough, whatever the number of
 * keys). */
static void find_one(api_context_t *ctx, const char *listener, kslice_t key, int8_t key_type,
                     bool *asked, coordinator_answer_t *a)
{
    *a = (coordinator_answer_t){.error = KAFKA_COORDINATOR_NOT_AVAILABLE,
                                .message = "The coordinator is not available.",
                                .node_id = -1,
                                .host = "",
                                .port = -1};
    if (key_type != KEY_TYPE_GROUP && key_type != KEY_TYPE_TRANSACTION) {
        a->error = KAFKA_INVALID_REQUEST;
        a->message = "Unknown coordinator key type";
        return;
    }
    assert(key.ptr != NULL);
    const bool txn = key_type == KEY_TYPE_TRANSACTION;
    const char *name = txn ? TXN_STATE_TOPIC : GROUP_OFFSETS_TOPIC;
    const cluster_metadata_t *md = coordinator_metadata(ctx->coord);
    const md_topic_t *t = cluster_metadata_topic(md, name, strlen(name));
    if (t == NULL) {
        if (!*asked) {
            if (txn)
                create_txn_topic(ctx);
            else
                create_offsets_topic(ctx);
        }
        *asked = true;
        a->message = txn ? "The transaction state topic is being created"
                         : "The offsets topic is being created";
        return;
    }
    if (t->npartitions <= 0)
        return;
    int32_t partition = group_partition_for(key.ptr, (size_t)key.len, t->npartitions);
    assert(partition >= 0 && partition < t->npartitions);
    const md_partition_t *p = &t->partitions[partition];
    const md_broker_t *b = p->leader < 0 ? NULL : cluster_metadata_broker(md, p->leader);
    if (b == NULL) {
        a->message = txn ? "The transactional id's partition has no live leader"
                         : "The group's offsets partition has no live leader";
        return;
    }
    const md_endpoint_t *e = md_broker_endpoint(b, listener);
    if (e == NULL) {
        a->message = "The coordinator has no endpoint on this listener";
        return;
    }
    *a = (coordinator_answer_t){
        .error = KAFKA_NONE, .node_id = b->id, .host = e->host, .port = e->port};
}

api_result_t api_handle_find_coordinator(api_context_t *ctx, kafka_request_t *req,
                                         kafka_response_t *resp)
{
    kreader_t *r = &req->body;
    kwriter_t *w = &resp->body;
    const int16_t version = req->api_version;
    const bool flexible = req->flexible;
    assert(version >= 0 && version <= 4);
    assert(flexible == (version >= 3));

    kslice_t key = {0};
    int8_t key_type = KEY_TYPE_GROUP;
    int32_t nkeys = 0;
    if (version <= 3)
        kr_string_v(r, flexible, &key);
    if (version >= 1)
        kr_i8(r, &key_type);
    if (version >= 4)
        kr_array_v(r, true, 1, &nkeys);
    kreader_t keys_at = *r;
    for (int32_t i = 0; i < nkeys; i++)
        kr_string_v(r, true, &key);
    kr_tags_v(r, flexible);
    if (!kr_ok(r) || nkeys < 0)
        return API_REFUSE(req, "malformed FindCoordinator request");
    if (nkeys > FIND_COORDINATOR_MAX_KEYS)
        return API_REFUSE(req, "FindCoordinator asks for too many keys");

    if (version >= 1)
        kw_i32(w, 0); /* throttle_time_ms */
    const char *listener = api_listener_name(ctx, req);
    coordinator_answer_t a;
    bool asked = false; /* for a v4 batch: one key type, one topic to create */
    if (version <= 3) {
        find_one(ctx, listener, key, key_type, &asked, &a);
        kw_i16(w, a.error);
        if (version >= 1)
            kw_string_v(w, flexible, a.message, -1);
        kw_i32(w, a.node_id);
        kw_string_v(w, flexible, a.host, -1);
        kw_i32(w, a.port);
        kw_tags_v(w, flexible);
        return API_RESPOND;
    }
    kw_array_v(w, true, nkeys);
    for (int32_t i = 0; i < nkeys; i++) {
        kr_string_v(&keys_at, true, &key); /* read above */
        find_one(ctx, listener, key, key_type, &asked, &a);
        kw_string_v(w, true, (const char *)key.ptr, key.len);
        kw_i32(w, a.node_id);
        kw_string_v(w, true, a.host, -1);
        kw_i32(w, a.port);
        kw_i16(w, a.error);
        kw_string_v(w, true, a.message, -1);
        kw_tags_v(w, true);
    }
    kw_tags_v(w, true);
    return API_RESPOND;
}
