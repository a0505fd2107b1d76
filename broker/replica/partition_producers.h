/* Module-internal: one partition's producer state (producer_state.h) kept
 * in step with its log. The log holds the truth; this module derives the
 * state from it and keeps it across restarts and truncations, as Kafka's
 * UnifiedLog does with its ProducerStateManager:
 *
 *  - every batch the log takes (a leader's append, a follower's copy, a
 *    replay) goes through partition_producers_apply, which updates the
 *    producers, ends transactions at their markers and records aborted
 *    ranges in the log's .txnindex;
 *  - snapshots are Kafka's `<20-digit offset>.snapshot` files beside the
 *    segments, written when the active segment changes and on close;
 *  - partition_producers_rebuild (opening a log, after a truncation)
 *    loads the newest snapshot at or below the log end and replays the log
 *    from there, so an unclean stop loses nothing the log kept.
 *
 * Locality: the broker's loop thread. */
#ifndef VLTAVA_PARTITION_PRODUCERS_H
#define VLTAVA_PARTITION_PRODUCERS_H

#include <stdint.h>

#include "partition_log.h"
#include "producer_state.h"

/* Snapshot files kept below the newest (older ones and those below the log
 * start are deleted as new ones are written). A truncation below the
 * oldest kept replays from the log start instead. */
#define PARTITION_PRODUCERS_SNAPSHOTS_KEPT 4

typedef struct partition_producers {
    producer_state_t *state;       /* owned */
    int64_t snapshot_segment_base; /* active segment when the last snapshot was taken */
} partition_producers_t;

/* Builds the state for a log just opened: as partition_producers_rebuild,
 * except that after an unclean open no snapshot above the recovery point
 * is trusted, and after a clean one without any snapshot only the active
 * segment is replayed. */
void partition_producers_init(partition_producers_t *pp, partition_log_t *log);
void partition_producers_destroy(partition_producers_t *pp);

/* Drops snapshots above the log end, loads the newest usable one (a corrupt
 * one is deleted and the next older tried), drops the .txnindex entries
 * from its offset on and replays the log from there to the end. */
void partition_producers_rebuild(partition_producers_t *pp, partition_log_t *log);
/* After the log was emptied to restart at some offset (a follower behind
 * its leader's log start): every snapshot is of the old history, so all
 * are deleted and the state starts empty (Kafka's truncateFullyAndStartAt). */
void partition_producers_reset(partition_producers_t *pp, partition_log_t *log);

/* Applies batches the log has just taken at their final offsets (whole
 * batches, as appended): producers' batches update the state without
 * checks (the leader checked before appending), end markers end
 * transactions, and an aborted one goes to the .txnindex. Then snapshots
 * when the active segment changed. */
void partition_producers_apply(partition_producers_t *pp, partition_log_t *log,
                               const uint8_t *batches, size_t len);

/* Writes `<log end>.snapshot` now (the broker is closing the log). */
void partition_producers_snapshot(partition_producers_t *pp, partition_log_t *log);

/* The last stable offset: the high watermark, or the first offset of a
 * transaction still unstable below it. */
int64_t partition_producers_last_stable_offset(const partition_producers_t *pp,
                                               const partition_log_t *log);

#endif
