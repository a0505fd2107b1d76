/* The API context: what every handler may touch, and the routes by which
 * appends, role changes and closed connections reach waiting requests. */
#include <assert.h>
#include <string.h>

#include "api_handlers.h"
#include "group_coordinator.h"
#include "txn_coordinator.h"

/* Role changes and removed partitions wake the fetches waiting on them, so
 * that they answer NOT_LEADER_OR_FOLLOWER or UNKNOWN_TOPIC_OR_PARTITION at
 * once instead of at max_wait; high-watermark moves wake fetches and
 * acks=-1 Produce requests. */
static void api_on_replica_event(void *arg, const char *topic, int32_t partition)
{
    api_notify_partition(arg, topic, partition);
}

void api_context_init(api_context_t *ctx, struct ev_loop *loop, const struct broker_config *config,
                      struct log_manager *logs, struct coordinator *coord,
                      struct replica_manager *replicas)
{
    assert(ctx != NULL && config != NULL);
    memset(ctx, 0, sizeof(*ctx));
    ctx->loop = loop;
    ctx->config = config;
    ctx->logs = logs;
    ctx->coord = coord;
    ctx->replicas = replicas;
    ctx->fetches = fetch_purgatory_new(ctx);
    ctx->produces = produce_purgatory_new(ctx);
    if (replicas)
        replica_manager_set_listener(replicas, api_on_replica_event, ctx);
}

void api_context_destroy(api_context_t *ctx)
{
    if (ctx->replicas)
        replica_manager_set_listener(ctx->replicas, NULL, NULL);
    api_admin_abort_all(ctx);
    produce_purgatory_free(ctx->produces);
    ctx->produces = NULL;
    fetch_purgatory_free(ctx->fetches);
    ctx->fetches = NULL;
}

void api_notify_partition(api_context_t *ctx, const char *topic, int32_t partition)
{
    assert(topic != NULL);
    if (ctx->fetches)
        fetch_purgatory_notify(ctx->fetches, topic, partition);
    if (ctx->produces)
        produce_purgatory_notify(ctx->produces, topic, partition);
    if (ctx->groups)
        group_coordinator_partition_event(ctx->groups, topic, partition);
    if (ctx->txns)
        txn_coordinator_partition_event(ctx->txns, topic, partition);
}

void api_connection_closed(api_context_t *ctx, void *conn)
{
    if (ctx->fetches)
        fetch_purgatory_connection_closed(ctx->fetches, conn);
}
