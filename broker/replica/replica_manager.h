/* The replica manager: this broker's role for each partition it holds
 * (leader or follower, leader epoch), the partition's log, and its high
 * watermark. It applies the coordinator's partition_changed /
 * partition_removed callbacks (creating or deleting local logs), and it is
 * where replication (the replica fetcher, ISR tracking) lives.
 *
 * Locality: the broker's loop thread.
 */
#ifndef VLTAVA_REPLICA_MANAGER_H
#define VLTAVA_REPLICA_MANAGER_H

#include <stdbool.h>
#include <stdint.h>

#include "coordinator.h"
#include "log_manager.h"

struct ev_loop;
struct broker_config;

typedef struct replica_manager replica_manager_t;

replica_manager_t *replica_manager_new(struct ev_loop *loop, const struct broker_config *cfg,
                                       log_manager_t *logs);
void replica_manager_free(replica_manager_t *rm);
/* The callbacks to hand to coordinator_start(); they route to rm. */
coordinator_callbacks_t replica_manager_callbacks(replica_manager_t *rm);
void replica_manager_set_coordinator(replica_manager_t *rm, coordinator_t *coord);

typedef struct replica_partition {
    partition_log_t *log;
    int32_t leader_id;
    int32_t leader_epoch;
    bool is_leader;
} replica_partition_t;

/* The local replica of (topic, partition), or NULL when this broker holds
 * none. Valid until control returns to the loop. */
const replica_partition_t *replica_manager_get(replica_manager_t *rm, const char *topic,
                                               size_t topic_len, int32_t partition);

#endif
