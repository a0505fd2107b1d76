/* FindCoordinator v0-4 (flexible from v3; v4 asks for a batch of keys,
 * KIP-699, and answers each on its own).
 *
 * A group's coordinator is the leader of its partition of
 * __consumer_offsets: group_partition_for(key) over the partition count
 * the metadata gives the topic (Kafka reads the count of the existing
 * topic too; offsets.topic.num.partitions only sizes its creation). The
 * topic is created on first need, as Kafka does: the first FindCoordinator
 * asks the controller for it (one creation in flight per broker) and
 * answers COORDINATOR_NOT_AVAILABLE, which clients retry. There is no
 * transaction coordinator yet: key type 1 answers COORDINATOR_NOT_AVAILABLE
 * too, other key types INVALID_REQUEST.
 *
 * librdkafka gates features on this API (its LZ4 support requires
 * FindCoordinator v0 in ApiVersions), so v0 stays advertised. */
#include <assert.h>
#include <stdio.h>

#include "api_handlers.h"
#include "config.h"
#include "coordinator.h"
#include "group_coordinator.h"
#include "kafka_errors.h"
#include "vlog.h"

#define KEY_TYPE_GROUP       0
#define KEY_TYPE_TRANSACTION 1

/* The keys one v4 request may ask for: each answer is about 40 bytes plus
 * the key, so this bounds the response as the frame bounds the request. */
#define FIND_COORDINATOR_MAX_KEYS 10000

/* At most one creation of the offsets topic in flight per broker: every
 * consumer retries FindCoordinator until the topic has leaders. */
static struct {
    bool creating;
} offsets_topic;

typedef struct coordinator_answer {
    int16_t error;
    const char *message; /* NULL: none */
    int32_t node_id;
    const char *host;
    int32_t port;
} coordinator_answer_t;

static void offsets_topic_created(void *arg, int16_t error, const char *message)
{
    assert(arg == NULL);
    assert(offsets_topic.creating);
    offsets_topic.creating = false;
    if (error == KAFKA_NONE)
        VLOG_INFO(API_MODULE, "created %s", GROUP_OFFSETS_TOPIC);
    else if (error != KAFKA_TOPIC_ALREADY_EXISTS)
        VLOG_WARN(API_MODULE, "creating %s failed: %s%s%s", GROUP_OFFSETS_TOPIC,
                  kafka_error_name(error), message ? ": " : "", message ? message : "");
}

/* As Kafka creates it: compacted (only each key's latest offset and group
 * record matter). The log keeps the policy but does not compact yet, and a
 * compact-only log is never trimmed by retention, so nothing is lost
 * meanwhile: the partitions grow and are replayed whole. */
static void create_offsets_topic(api_context_t *ctx)
{
    const group_config_t *g = &ctx->config->groups;
    assert(g->offsets_topic_partitions > 0);
    if (offsets_topic.creating)
        return;
    char segment_bytes[16];
    snprintf(segment_bytes, sizeof(segment_bytes), "%d", (int)g->offsets_topic_segment_bytes);
    const char *const keys[] = {"cleanup.policy", "segment.bytes"};
    const char *const values[] = {"compact", segment_bytes};
    topic_spec_t spec = {
        .name = GROUP_OFFSETS_TOPIC,
        .partitions = g->offsets_topic_partitions,
        .replication_factor = g->offsets_topic_replication_factor,
        .config_keys = keys,
        .config_values = values,
        .nconfigs = sizeof(keys) / sizeof(keys[0]),
    };
    offsets_topic.creating = true;
    VLOG_INFO(API_MODULE, "creating %s (%d partitions, replication factor %d)", GROUP_OFFSETS_TOPIC,
              (int)spec.partitions, (int)spec.replication_factor);
    coordinator_create_topic(ctx->coord, &spec, offsets_topic_created, NULL);
}

/* The coordinator of one key. The answer's strings are views into the
 * metadata (valid until control returns to the loop) or static. *asked:
 * whether this request already asked for the offsets topic (once is
 * enough, whatever the number of keys). */
static void find_one(api_context_t *ctx, kslice_t key, int8_t key_type, bool *asked,
                     coordinator_answer_t *a)
{
    *a = (coordinator_answer_t){.error = KAFKA_COORDINATOR_NOT_AVAILABLE,
                                .message = "The coordinator is not available.",
                                .node_id = -1,
                                .host = "",
                                .port = -1};
    if (key_type == KEY_TYPE_TRANSACTION) {
        a->message = "This broker has no transaction coordinator";
        return;
    }
    if (key_type != KEY_TYPE_GROUP) {
        a->error = KAFKA_INVALID_REQUEST;
        a->message = "Unknown coordinator key type";
        return;
    }
    assert(key.ptr != NULL);
    const cluster_metadata_t *md = coordinator_metadata(ctx->coord);
    const md_topic_t *t =
        cluster_metadata_topic(md, GROUP_OFFSETS_TOPIC, sizeof(GROUP_OFFSETS_TOPIC) - 1);
    if (t == NULL) {
        if (!*asked)
            create_offsets_topic(ctx);
        *asked = true;
        a->message = "The offsets topic is being created";
        return;
    }
    if (t->npartitions <= 0)
        return;
    int32_t partition = group_partition_for(key.ptr, (size_t)key.len, t->npartitions);
    assert(partition >= 0 && partition < t->npartitions);
    const md_partition_t *p = &t->partitions[partition];
    const md_broker_t *b = p->leader < 0 ? NULL : cluster_metadata_broker(md, p->leader);
    if (b == NULL) {
        a->message = "The group's offsets partition has no live leader";
        return;
    }
    *a = (coordinator_answer_t){
        .error = KAFKA_NONE, .node_id = b->id, .host = b->host, .port = b->port};
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
    coordinator_answer_t a;
    bool asked = false;
    if (version <= 3) {
        find_one(ctx, key, key_type, &asked, &a);
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
        find_one(ctx, key, key_type, &asked, &a);
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
