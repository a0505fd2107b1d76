/* Metadata v0-8 (non-flexible), answered from the coordinator's cache.
 *
 * As Kafka's ZkMetadataCache does, the answer is about the listener the
 * request came in on: every live broker with its endpoint of that
 * listener, brokers without one left out. A partition whose leader is not
 * live answers leader -1 with LEADER_NOT_AVAILABLE; one whose live leader
 * lacks the listener, leader -1 with LISTENER_NOT_FOUND (v6+;
 * LEADER_NOT_AVAILABLE before). Version 0 also leaves out of the replica
 * and ISR lists the brokers without a live endpoint on the listener, and a
 * partition with a leader but such a replica answers REPLICA_NOT_AVAILABLE.
 *
 * A requested topic that does not exist is created when
 * auto.create.topics.enable is set and the client allows it (always for
 * v0-3, the AllowAutoTopicCreation flag from v4): the coordinator is asked
 * to create it with the broker defaults, and this answer says
 * LEADER_NOT_AVAILABLE for it, as Kafka does; the client asks again. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_handlers.h"
#include "config.h"
#include "coordinator.h"
#include "kafka_errors.h"
#include "vlog.h"
#include "xalloc.h"

static void auto_create_done(void *arg, int16_t error_code, const char *message)
{
    char *name = arg; /* owned by this callback */
    if (error_code == KAFKA_NONE)
        VLOG_INFO(API_MODULE, "auto-created topic %s", name);
    else if (error_code == KAFKA_TOPIC_ALREADY_EXISTS || error_code == KAFKA_NOT_CONTROLLER)
        VLOG_DEBUG(API_MODULE, "auto-creating topic %s: %s", name, kafka_error_name(error_code));
    else
        VLOG_WARN(API_MODULE, "auto-creating topic %s failed: %s%s%s", name,
                  kafka_error_name(error_code), message ? ": " : "", message ? message : "");
    free(name);
}

static void auto_create(api_context_t *ctx, kslice_t name)
{
    char *owned = kslice_strdup(name);
    topic_spec_t spec = {
        .name = owned,
        .partitions = -1,
        .replication_factor = -1,
    };
    coordinator_create_topic(ctx->coord, &spec, auto_create_done, owned);
}

/* Whether broker id is live with an endpoint on listener (Kafka's
 * hasAliveEndpoint). */
static bool reachable(const cluster_metadata_t *md, const char *listener, int32_t id)
{
    const md_broker_t *b = id >= 0 ? cluster_metadata_broker(md, id) : NULL;
    return b != NULL && md_broker_endpoint(b, listener) != NULL;
}

static int32_t count_reachable(const cluster_metadata_t *md, const char *listener,
                               const int32_t *ids, int32_t n)
{
    int32_t count = 0;
    for (int32_t i = 0; i < n; i++)
        count += reachable(md, listener, ids[i]);
    assert(count <= n);
    return count;
}

/* A replica or ISR list; with only_reachable (Metadata v0), the brokers
 * reachable on listener alone. */
static void write_broker_ids(kwriter_t *w, const cluster_metadata_t *md, const char *listener,
                             const int32_t *ids, int32_t n, bool only_reachable)
{
    kw_array_v(w, false, only_reachable ? count_reachable(md, listener, ids, n) : n);
    for (int32_t i = 0; i < n; i++)
        if (!only_reachable || reachable(md, listener, ids[i]))
            kw_i32(w, ids[i]);
}

/* The error and leader a partition answers with on listener (Kafka's
 * getPartitionMetadata). */
static int16_t partition_error(const cluster_metadata_t *md, const char *listener, int16_t version,
                               const md_partition_t *p, int32_t *leader)
{
    *leader = -1;
    if (!reachable(md, listener, p->leader)) {
        if (p->leader < 0 || cluster_metadata_broker(md, p->leader) == NULL)
            return KAFKA_LEADER_NOT_AVAILABLE;
        return version >= 6 ? KAFKA_LISTENER_NOT_FOUND : KAFKA_LEADER_NOT_AVAILABLE;
    }
    *leader = p->leader;
    if (version == 0 && (count_reachable(md, listener, p->replicas, p->nreplicas) < p->nreplicas ||
                         count_reachable(md, listener, p->isr, p->nisr) < p->nisr))
        return KAFKA_REPLICA_NOT_AVAILABLE;
    return KAFKA_NONE;
}

static void write_topic(kwriter_t *w, int16_t version, const cluster_metadata_t *md,
                        const char *listener, const md_topic_t *t)
{
    kw_i16(w, KAFKA_NONE);
    kw_string_v(w, false, t->name, -1);
    if (version >= 1)
        kw_bool(w, strcmp(t->name, "__consumer_offsets") == 0 ||
                       strcmp(t->name, "__transaction_state") == 0);
    kw_array_v(w, false, t->npartitions);
    for (int32_t i = 0; i < t->npartitions; i++) {
        const md_partition_t *p = &t->partitions[i];
        int32_t leader;
        kw_i16(w, partition_error(md, listener, version, p, &leader));
        kw_i32(w, p->id);
        kw_i32(w, leader);
        if (version >= 7)
            kw_i32(w, p->leader_epoch);
        write_broker_ids(w, md, listener, p->replicas, p->nreplicas, version == 0);
        write_broker_ids(w, md, listener, p->isr, p->nisr, version == 0);
        if (version >= 5)
            write_broker_ids(w, md, listener, p->offline, p->noffline, false);
    }
    if (version >= 8)
        kw_i32(w, API_AUTHORIZED_OPS_OMITTED);
}

/* A topic answered without partitions: unknown, being created, or named
 * illegally. */
static void write_missing_topic(kwriter_t *w, int16_t version, int16_t error, kslice_t name)
{
    kw_i16(w, error);
    kw_string_v(w, false, (const char *)name.ptr, name.len);
    if (version >= 1)
        kw_bool(w, false);
    kw_array_v(w, false, 0);
    if (version >= 8)
        kw_i32(w, API_AUTHORIZED_OPS_OMITTED);
}

api_result_t api_handle_metadata(api_context_t *ctx, kafka_request_t *req, kafka_response_t *resp)
{
    kreader_t *r = &req->body;
    const int16_t version = req->api_version;
    assert(version >= 0 && version <= 8);
    assert(!req->flexible);

    int32_t ntopics;
    if (!kr_array_v(r, false, 2, &ntopics))
        return API_REFUSE(req, "malformed Metadata request");
    /* v0 asks for every topic with an empty list, v1+ with a null one. */
    bool all_topics = version == 0 ? ntopics <= 0 : ntopics < 0;
    kreader_t topics_at = *r;
    for (int32_t i = 0; i < ntopics; i++) {
        kslice_t name;
        if (!kr_string_v(r, false, &name))
            return API_REFUSE(req, "malformed Metadata request");
    }
    bool allow_auto_create = true;
    if (version >= 4 && !kr_bool(r, &allow_auto_create))
        return API_REFUSE(req, "malformed Metadata request");
    if (version >= 8) {
        bool cluster_ops, topic_ops;
        if (!kr_bool(r, &cluster_ops) || !kr_bool(r, &topic_ops))
            return API_REFUSE(req, "malformed Metadata request");
    }

    const cluster_metadata_t *md = coordinator_metadata(ctx->coord);
    const char *listener = api_listener_name(ctx, req);
    kwriter_t *w = &resp->body;
    kslice_t *to_create = NULL; /* topics to auto-create, at most ntopics */
    int32_t ncreate = 0;
    if (version >= 3)
        kw_i32(w, 0);                    /* throttle_time_ms */
    size_t count_at = kw_reserve_i32(w); /* brokers with the listener, once known */
    int32_t nbrokers = 0;
    for (size_t i = 0; i < md->nbrokers; i++) {
        const md_broker_t *b = &md->brokers[i];
        const md_endpoint_t *e = md_broker_endpoint(b, listener);
        if (e == NULL)
            continue;
        kw_i32(w, b->id);
        kw_string_v(w, false, e->host, -1);
        kw_i32(w, e->port);
        if (version >= 1)
            kw_string_v(w, false, b->rack, -1);
        nbrokers++;
    }
    kw_patch_i32(w, count_at, nbrokers);
    if (version >= 2)
        kw_string_v(w, false, md->cluster_id, -1);
    if (version >= 1)
        kw_i32(w, md->controller_id);

    if (all_topics) {
        kw_array_v(w, false, (int32_t)md->ntopics);
        for (size_t i = 0; i < md->ntopics; i++)
            write_topic(w, version, md, listener, &md->topics[i]);
    } else {
        bool may_create = ctx->config->auto_create_topics && (version < 4 || allow_auto_create);
        to_create = xcalloc((size_t)ntopics, sizeof(*to_create));
        kw_array_v(w, false, ntopics);
        for (int32_t i = 0; i < ntopics; i++) {
            kslice_t name;
            kr_string_v(&topics_at, false, &name); /* validated above */
            const md_topic_t *t =
                cluster_metadata_topic(md, (const char *)name.ptr, (size_t)name.len);
            if (t) {
                write_topic(w, version, md, listener, t);
                continue;
            }
            char msg[256];
            if (api_validate_topic_name((const char *)name.ptr, (size_t)name.len, msg,
                                        sizeof(msg)) != KAFKA_NONE) {
                write_missing_topic(w, version, KAFKA_INVALID_TOPIC_EXCEPTION, name);
            } else if (may_create) {
                to_create[ncreate++] = name;
                write_missing_topic(w, version, KAFKA_LEADER_NOT_AVAILABLE, name);
            } else {
                write_missing_topic(w, version, KAFKA_UNKNOWN_TOPIC_OR_PARTITION, name);
            }
        }
    }
    if (version >= 8)
        kw_i32(w, API_AUTHORIZED_OPS_OMITTED); /* cluster_authorized_operations */
    /* Only now: asking the coordinator may change the cache md points into. */
    for (int32_t i = 0; i < ncreate; i++)
        auto_create(ctx, to_create[i]);
    free(to_create);
    return API_RESPOND;
}
