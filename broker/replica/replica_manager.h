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
/* Call after coordinator_start() returned (the metadata is loaded): also
 * removes orphaned logs (replica_manager_remove_orphans). */
void replica_manager_set_coordinator(replica_manager_t *rm, coordinator_t *coord);

typedef struct replica_partition {
    partition_log_t *log;
    int32_t leader_id;
    int32_t leader_epoch;
    bool is_leader;
} replica_partition_t;

/* The topic's effective settings: the broker defaults with the topic's
 * overrides applied (min.insync.replicas among them, which Produce reads
 * from the partition's log config). Keys the log does not keep are
 * skipped. Partitions' logs are opened with it; DescribeConfigs reports it. */
void replica_manager_topic_config(const replica_manager_t *rm, const md_topic_t *topic,
                                  log_config_t *cfg);

/* The local replica of (topic, partition), or NULL when this broker holds
 * none. Valid until control returns to the loop. */
const replica_partition_t *replica_manager_get(replica_manager_t *rm, const char *topic,
                                               size_t topic_len, int32_t partition);

/* The leader append, for Produce and for the broker's own internal-topic
 * writes (the group coordinator): appends client-format batches to `p`,
 * which this broker leads, at its leader epoch (partition_log_append:
 * validated, all-or-nothing, offsets assigned in place), then moves the
 * high watermark as far as the ISR allows (the least log end over the ISR;
 * the log end when the leader is the only member), tells the listener once
 * (see replica_manager_set_listener) and wakes follower fetches waiting for
 * data. On LOG_OK, *hw is the high watermark after the append. */
log_err_t replica_manager_leader_append(replica_manager_t *rm, const replica_partition_t *p,
                                        uint8_t *batches, size_t len, log_append_info_t *info,
                                        int64_t *hw);

/* The ISR size the leader of `p` counts on for acks=all: the current one,
 * or a smaller one being written. */
int32_t replica_manager_isr_size(replica_manager_t *rm, const replica_partition_t *p);

/* The high watermark moves when followers fetch, so listeners (see
 * replica_manager_set_listener) also hear about every high-watermark move
 * of a partition this broker leads. */

/* Stops replication: answers parked follower fetches and sends no more.
 * Call before coordinator_stop() (the RPC channel must still exist);
 * replica_manager_free() calls it too. */
void replica_manager_stop(replica_manager_t *rm);

/* Who hears about role changes, removed partitions and leader appends (the
 * API layer, so that it can wake the requests waiting on them). One
 * listener; NULL clears. */
typedef void (*replica_event_fn)(void *arg, const char *topic, int32_t partition);
void replica_manager_set_listener(replica_manager_t *rm, replica_event_fn fn, void *arg);

/* Deletes local logs that no topic in the loaded metadata assigns to this
 * broker (the topic was deleted, or the replica moved, while this broker
 * was down). Returns how many were removed. Call once the coordinator has
 * loaded the metadata (replica_manager_set_coordinator() does). */
int replica_manager_remove_orphans(replica_manager_t *rm);

#endif
