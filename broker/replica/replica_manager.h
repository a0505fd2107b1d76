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

/* True when this broker holds a replica of (topic, partition) but cannot
 * open its log: the partition is offline here (Produce, Fetch and
 * ListOffsets answer KAFKA_STORAGE_ERROR) and the controller has been told
 * (coordinator_report_offline_replicas). The open is retried on the next
 * newer leader epoch for the partition, never on a timer. */
bool replica_manager_offline(const replica_manager_t *rm, const char *topic, size_t topic_len,
                             int32_t partition);

/* Who wrote the batches of a leader append: Kafka's AppendOrigin. */
typedef enum replica_append_origin {
    REPLICA_APPEND_CLIENT,      /* Produce: producer epochs and sequences checked */
    REPLICA_APPEND_COORDINATOR, /* the broker's coordinators: epochs checked, no sequences */
} replica_append_origin_t;

typedef struct replica_append_result {
    int64_t first_offset, last_offset; /* of the append, or of the original for a duplicate */
    int64_t log_append_time;           /* -1 unless LogAppendTime */
    int64_t high_watermark;            /* after the append */
    bool duplicate; /* a producer's retry of batches already in the log: nothing appended */
} replica_append_result_t;

/* The leader append, for Produce and for the broker's own internal-topic
 * writes (the group and transaction coordinators), as one partition-level
 * operation:
 *  1. required_acks -1: the ISR must hold min.insync.replicas
 *     (NOT_ENOUGH_REPLICAS, nothing appended);
 *  2. the producer state: a retry of one of a producer's last five batches
 *     is answered with the original offsets and not appended again
 *     (res->duplicate); OUT_OF_ORDER_SEQUENCE_NUMBER, INVALID_PRODUCER_EPOCH,
 *     INVALID_TXN_STATE, INVALID_RECORD (a producer id without a sequence
 *     from a client) refuse the whole append;
 *  3. partition_log_append: validated, all-or-nothing, offsets assigned in
 *     place, at the leader epoch (its refusals as log_err_kafka_error);
 *  4. the producer state takes the appended batches; the high watermark
 *     moves as far as the ISR allows, the listener hears once (see
 *     replica_manager_set_listener) and waiting follower fetches wake.
 * Returns KAFKA_NONE or the refusal; res is filled on KAFKA_NONE. */
int16_t replica_manager_leader_append(replica_manager_t *rm, const replica_partition_t *p,
                                      replica_append_origin_t origin, int16_t required_acks,
                                      uint8_t *batches, size_t len, replica_append_result_t *res);

/* Appends the end-transaction marker for producer_id to p (which this broker
 * leads): a control batch at the leader epoch, ending the producer's
 * transaction in the partition's producer state (an abort also records the
 * aborted range in the segment's .txnindex), then as step 4 above. Returns
 * KAFKA_NONE with *marker_offset; INVALID_PRODUCER_EPOCH (producer_epoch
 * older than the producer's), TRANSACTION_COORDINATOR_FENCED (an older
 * coordinator epoch than the last marker's) or the log's refusal, with
 * nothing appended. Markers are always written with acks=all semantics by
 * their callers, which wait for the high watermark. */
int16_t replica_manager_write_txn_marker(replica_manager_t *rm, const replica_partition_t *p,
                                         int64_t producer_id, int16_t producer_epoch, bool commit,
                                         int32_t coordinator_epoch, int64_t *marker_offset);

/* The last stable offset of p (read_committed consumers read below it): the
 * high watermark, or the first offset of a transaction not yet decided
 * (or decided by a marker the high watermark has not passed). */
int64_t replica_manager_last_stable_offset(replica_manager_t *rm, const replica_partition_t *p);

/* Whether producer_id (>= 0) has a transaction ongoing in p: a
 * transactional batch of it is in the log with no end marker after it yet
 * (Produce verifies a transaction's first batch in a partition with its
 * coordinator, KIP-890; later ones are not asked again). Read-only. */
bool replica_manager_producer_in_txn(replica_manager_t *rm, const replica_partition_t *p,
                                     int64_t producer_id);
/* A guard for that verification (Kafka's VerificationGuard): a value that
 * changes whenever an end marker of producer_id is appended to p. Produce
 * takes it before asking the coordinator and appends only if it is
 * unchanged when the answer comes, so a marker that ended the transaction
 * meanwhile cannot be followed by a batch that opens one nobody will end. */
uint32_t replica_manager_producer_txn_guard(replica_manager_t *rm, const replica_partition_t *p,
                                            int64_t producer_id);

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

/* ---- read at scrape time (broker/metrics) ---- */

/* One partition this broker holds. */
typedef struct replica_partition_info {
    const char *topic; /* valid until control returns to the loop */
    int32_t partition;
    bool is_leader;
    /* Leader only (0 on a follower): the assigned replicas, the ISR as last
     * written, and the topic's min.insync.replicas. */
    int32_t nreplicas;
    int32_t nisr;
    int32_t min_insync_replicas;
    int64_t size_bytes; /* the local log's segments */
} replica_partition_info_t;

/* Calls fn once for every partition this broker holds; fn must not change
 * the replica manager. */
void replica_manager_visit(replica_manager_t *rm,
                           void (*fn)(void *arg, const replica_partition_info_t *info), void *arg);
/* The ISR changes this broker wrote as a leader since it started: shrinks
 * (a replica left the ISR) and expands (one joined); a write that does
 * both counts as both. */
void replica_manager_isr_changes(const replica_manager_t *rm, uint64_t *shrinks, uint64_t *expands);

/* Deletes local logs that no topic in the loaded metadata assigns to this
 * broker (the topic was deleted, or the replica moved, while this broker
 * was down). Returns how many were removed. Call once the coordinator has
 * loaded the metadata (replica_manager_set_coordinator() does). */
int replica_manager_remove_orphans(replica_manager_t *rm);

#endif
