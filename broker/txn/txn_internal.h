/* Module-internal: the transaction coordinator's state, shared by the
 * protocol (txn_coordinator.c), the store (txn_store.c: the
 * __transaction_state partitions this broker leads, their loading and the
 * writes waiting on their high watermark) and the markers (txn_markers.c:
 * sending them as coordinator, writing them as partition leader).
 * Locality: the broker's loop thread. */
#ifndef VLTAVA_TXN_INTERNAL_H
#define VLTAVA_TXN_INTERNAL_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coord_log.h"
#include "txn_coordinator.h"
#include "txn_meta.h"

#define TXN_MODULE "txn"

/* ---- transactional ids ---- */

struct txn_marker_job;

typedef struct txn_entry {
    struct txn_entry *hnext; /* hash chain */
    uint64_t hash;
    char *id;
    size_t id_len;
    int32_t partition; /* of __transaction_state */
    txn_meta_t meta;
    /* Markers being written for the PrepareCommit/PrepareAbort in meta
     * (pending CompleteCommit/CompleteAbort); NULL otherwise. */
    struct txn_marker_job *markers;
    int32_t refs; /* writes, operations and marker jobs that name it */
    bool removed; /* unlinked; freed when refs reaches 0 */
} txn_entry_t;

/* ---- the __transaction_state partitions this broker leads ---- */

struct txn_write;
/* Runs once per write, after the store applied it (error NONE: the
 * transit is now the entry's metadata; a tombstone removed the entry). */
typedef void (*txn_write_done_fn)(txn_coordinator_t *tc, struct txn_write *w, int16_t error);

typedef struct txn_write {
    coord_log_write_t log; /* first: the store's queue, offsets and timeout (the
                            * transaction's, as Kafka's append) */
    txn_entry_t *entry;    /* holds a ref */
    int32_t coordinator_epoch;
    txn_transit_t transit; /* unused for a tombstone */
    bool tombstone;        /* transactional.id.expiration.ms: forget the id */
    bool fence;            /* a fence's PrepareAbort: a failure is remembered */
    /* On COORDINATOR_NOT_AVAILABLE keep the pending change (the caller
     * retries the same write: Kafka's completion retry). */
    bool keep_pending_on_unavailable;
    txn_write_done_fn done;
    void *arg;
} txn_write_t;
_Static_assert(offsetof(txn_write_t, log) == 0, "the store's queue holds txn_write_t");

/* ---- markers (txn_markers.c) ---- */

struct txn_marker_dest;
struct txn_marker_item;
struct txn_leader_batch;

struct txn_coordinator {
    struct ev_loop *loop;
    txn_config_t cfg;
    struct replica_manager *replicas;
    struct coordinator *coord;
    struct group_coordinator *groups;
    struct producer_id_manager *pids;
    /* transactional ids, chained, power-of-two buckets */
    txn_entry_t **buckets;
    size_t nbuckets;
    size_t nentries;
    coord_log_t store;     /* the __transaction_state partitions */
    ev_timer abort_timer;  /* transaction.abort.timed.out.transaction.cleanup.interval.ms */
    ev_timer expiry_timer; /* transaction.remove.expired.transaction.cleanup.interval.ms */
    /* coordinator side of the markers */
    struct txn_marker_dest **dests; /* one per leader broker markers went to */
    int32_t ndests;
    struct txn_marker_item *retry_head, *retry_tail; /* waiting for retry_timer */
    ev_timer retry_timer;
    ev_timer send_timer; /* sends what the destinations queued, once per loop iteration */
    /* leader side: marker writes waiting for their partition's high watermark */
    struct txn_leader_batch *batches;
    struct txn_leader_waiter **waiters; /* TXN_WAITER_BUCKETS chains by partition */
    int32_t verify_inflight;            /* txn_verify.c: RPCs to remote coordinators */
    bool stopped;                       /* txn_coordinator_stop ran: no RPC any more */
    bool freeing;
};

/* ---- entries (txn_store.c) ---- */

txn_entry_t *txn_entry_find(txn_coordinator_t *tc, const char *id, size_t len);
/* A new entry for id in partition, with m's metadata (moved in). */
txn_entry_t *txn_entry_create(txn_coordinator_t *tc, const char *id, size_t len, int32_t partition,
                              txn_meta_t *m);
/* Unlinks e (cancelling its markers); frees it now, or when its last ref
 * goes. */
void txn_entry_remove(txn_coordinator_t *tc, txn_entry_t *e);
void txn_entry_release(txn_coordinator_t *tc, txn_entry_t *e);

/* ---- store (txn_store.c) ---- */

/* Sets up tc->store; before the first partition event. */
void txn_store_init(txn_coordinator_t *tc);

/* The partition for a transactional id (from the metadata's partition
 * count) and the error a request for it gets: NONE when loaded here (with
 * *coordinator_epoch), COORDINATOR_LOAD_IN_PROGRESS while loading,
 * NOT_COORDINATOR otherwise. */
int16_t txn_store_route(txn_coordinator_t *tc, const char *id, size_t len, int32_t *partition,
                        int32_t *coordinator_epoch);
/* The state of a led partition's load; NOT_LEADER for others. */
coord_log_state_t txn_store_partition_state(const txn_coordinator_t *tc, int32_t partition);

/* Appends w's record (its transit, or a tombstone) to its entry's
 * partition, unless the partition moved past w->coordinator_epoch, and
 * queues w until the high watermark passes it. w->entry, done, arg,
 * coordinator_epoch and transit are the caller's to set; the store takes a
 * ref on the entry and owns w (and its transit) from here: once the write
 * is replicated it applies the transit (txn_meta_complete; a tombstone
 * removes the entry) if the entry is still this epoch's, or on failure
 * drops the pending change, then runs w->done and frees w. Kafka's
 * appendTransactionToLog error mapping: NOT_COORDINATOR (leadership or
 * epoch moved, storage error), COORDINATOR_NOT_AVAILABLE (too few in-sync
 * replicas, timed out), UNKNOWN_SERVER_ERROR (too large). */
void txn_store_write(txn_coordinator_t *tc, txn_write_t *w);

/* The replica event for one __transaction_state partition. */
void txn_store_partition_event(txn_coordinator_t *tc, int32_t partition);
void txn_store_free(txn_coordinator_t *tc);

/* ---- coordinator (txn_coordinator.c), called by the store ---- */

/* A partition finished loading: transactions found preparing get their
 * markers (again). */
void txn_coordinator_loaded(txn_coordinator_t *tc, int32_t partition);
int64_t txn_now_ms(void);

/* ---- markers (txn_markers.c) ---- */

/* e's PrepareCommit/PrepareAbort is the metadata now: prepares the
 * completion (pending CompleteCommit/CompleteAbort) and sends the markers
 * to every partition of the transaction; once all are acknowledged, writes
 * the completion. */
void txn_markers_start(txn_coordinator_t *tc, txn_entry_t *e);
/* Stops e's markers (its partition was unloaded, or it is removed). */
void txn_markers_cancel(txn_coordinator_t *tc, txn_entry_t *e);
/* Registers the RPC handler; frees. */
void txn_markers_init(txn_coordinator_t *tc);
/* Answers every parked leader-side write (REQUEST_TIMED_OUT) and forgets
 * the coordinator-side destinations' in-flight requests. */
void txn_markers_stop(txn_coordinator_t *tc);
void txn_markers_free(txn_coordinator_t *tc);
/* A replica event: answers leader-side writes parked on (topic, partition). */
void txn_markers_partition_event(txn_coordinator_t *tc, const char *topic, int32_t partition);

/* ---- partition verification (txn_verify.c) ---- */

/* Registers the RPC_VERIFY_PARTITIONS_IN_TXN handler. */
void txn_verify_init(txn_coordinator_t *tc);

#endif
