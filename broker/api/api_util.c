/* Helpers shared by the API handlers that read broker state: leader
 * lookup, the request's listener. The pure ones are in api_validate.c. */
#include <assert.h>

#include "api_handlers.h"
#include "config.h"
#include "coordinator.h"
#include "kafka_errors.h"

int16_t api_leader_replica(api_context_t *ctx, kslice_t topic, int32_t partition,
                           const replica_partition_t **out)
{
    assert(topic.ptr != NULL);
    *out = NULL;
    const replica_partition_t *rp =
        replica_manager_get(ctx->replicas, (const char *)topic.ptr, (size_t)topic.len, partition);
    /* An fsync of its log failed: offline, though the replica layer's
     * next tick has not dropped it yet. */
    if (rp && partition_log_failed(rp->log))
        return KAFKA_KAFKA_STORAGE_ERROR;
    if (rp && rp->is_leader) {
        *out = rp;
        return KAFKA_NONE;
    }
    /* Kafka's HostedPartition.Offline: whoever leads, this replica cannot
     * serve. */
    if (!rp && replica_manager_offline(ctx->replicas, (const char *)topic.ptr, (size_t)topic.len,
                                       partition))
        return KAFKA_KAFKA_STORAGE_ERROR;
    const cluster_metadata_t *md = coordinator_metadata(ctx->coord);
    const md_topic_t *t = cluster_metadata_topic(md, (const char *)topic.ptr, (size_t)topic.len);
    if (!rp && (!t || partition < 0 || partition >= t->npartitions))
        return KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
    return KAFKA_NOT_LEADER_OR_FOLLOWER;
}

const char *api_listener_name(const api_context_t *ctx, const kafka_request_t *req)
{
    const broker_config_t *cfg = ctx->config;
    assert(req->listener < cfg->nlisteners);
    assert(cfg->listeners[req->listener].name != NULL);
    return cfg->listeners[req->listener].name;
}
