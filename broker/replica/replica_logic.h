/* Module-internal: the pure rules of replication, kept apart from the loop
 * and the RPC so that unit tests can drive them with plain numbers.
 *
 * Times are the loop's monotonic milliseconds. */
#ifndef VLTAVA_REPLICA_LOGIC_H
#define VLTAVA_REPLICA_LOGIC_H

#include <stdbool.h>
#include <stdint.h>

/* Most replicas of one partition the leader tracks (Kafka allows more, but
 * a replication factor above this is refused here with a log line). */
#define REPLICA_MAX_REPLICAS 16

/* What the leader knows of one follower, from its fetches. */
typedef struct replica_progress {
    int32_t id;
    int64_t leo;                   /* -1: not fetched since this broker leads */
    int64_t caught_up_ms;          /* last time its log end reached ours */
    int64_t last_fetch_leader_leo; /* our log end when it fetched last */
    int64_t last_fetch_ms;
} replica_progress_t;

/* Resets progress for a new leadership: log end unknown, and caught up
 * "now" so that a follower gets replica.lag.time.max.ms to show up. */
void replica_progress_reset(replica_progress_t *p, int32_t id, int64_t now_ms);

/* A fetch at fetch_offset (the follower's log end) while our log end is
 * leader_leo. Kafka's rule: caught up now when it has all we have; caught
 * up at its previous fetch when it now has all we had then (so a follower
 * of a busy leader, always one round behind, still counts as caught up). */
void replica_progress_on_fetch(replica_progress_t *p, int64_t fetch_offset, int64_t leader_leo,
                               int64_t now_ms);

/* The high watermark the ISR allows: the least log end over the ISR
 * (self: leader_leo). -1 when an ISR member's log end is unknown. */
int64_t replica_isr_high_watermark(int32_t self, int64_t leader_leo, const int32_t *isr,
                                   int32_t nisr, const replica_progress_t *prog, int32_t nprog);

/* The ISR the leader wants: itself; every ISR member caught up within
 * lag_ms; every other replica caught up within lag_ms whose log end
 * reaches the high watermark and the start of the current epoch. Written
 * to out in `replicas` order; returns its size. */
int32_t replica_desired_isr(int32_t self, const int32_t *replicas, int32_t nreplicas,
                            const int32_t *isr, int32_t nisr, const replica_progress_t *prog,
                            int32_t nprog, int64_t hw, int64_t epoch_start_offset, int64_t lag_ms,
                            int64_t now_ms, int32_t *out);

/* Whether id is among ids[0..n). */
bool replica_contains(const int32_t *ids, int32_t n, int32_t id);

/* Same members, any order. */
bool replica_same_set(const int32_t *a, int32_t na, const int32_t *b, int32_t nb);

/* KIP-279 on the follower: the leader said our history diverges, its
 * largest epoch <= our last fetched epoch being leader_epoch (-1: none)
 * ending at leader_end_offset. local_epoch/local_end_offset are our own
 * partition_log_epoch_end_offset(leader_epoch) (local_end_offset -1:
 * none). Returns the offset to truncate to (never above local_leo). */
int64_t replica_truncation_offset(int32_t leader_epoch, int64_t leader_end_offset,
                                  int32_t local_epoch, int64_t local_end_offset, int64_t local_leo);

#endif
