/* Module-internal: one transactional id's metadata and Kafka's rules for
 * changing it (TransactionMetadata.scala, and the checks of
 * TransactionCoordinator.scala that decide which change a request asks
 * for), pure so that unit tests can drive it with plain numbers: no loop,
 * no log, no I/O. The only allocations are the partition sets, which abort
 * on OOM (xalloc.h).
 *
 * A change happens in two steps, as in Kafka: a prepare_* function checks
 * the request against the metadata and fills a transit (Kafka's
 * TxnTransitMetadata: the metadata as it will be) and sets the pending
 * state; the caller writes the transit to __transaction_state and, once the
 * write is replicated, applies it with txn_meta_complete (or drops it with
 * txn_meta_drop_pending when the write failed). While a change is pending,
 * every other request answers CONCURRENT_TRANSACTIONS.
 *
 * Only the transaction protocol before KIP-890 part 2 (transaction.version
 * 0/1: EndTxn v0-4) is served, so a transaction's end never bumps the epoch
 * and the next-producer-id field is never set.
 *
 * Two of Kafka's steps are one here: Kafka fences a producer by setting the
 * pending state PrepareEpochFence with a bumped epoch and then immediately
 * preparing PrepareAbort with it; txn_meta_prepare_fence does both, so
 * PrepareEpochFence is never a pending state (nor ever written: Kafka does
 * not write it either). */
#ifndef VLTAVA_TXN_META_H
#define VLTAVA_TXN_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "txn_records.h"

/* Kafka's RecordBatch.NO_PRODUCER_ID / NO_PRODUCER_EPOCH. */
#define TXN_NO_PRODUCER_ID    (-1)
#define TXN_NO_PRODUCER_EPOCH (-1)
/* No change pending. */
#define TXN_NO_PENDING (-1)

/* Most partitions one transaction may hold. Kafka has no bound of its own;
 * its transaction record must fit the log's max.message.bytes (1 MiB by
 * default), which a few thousand long topic names already fill. This bounds
 * the memory one producer can make the coordinator hold. */
#define TXN_MAX_PARTITIONS 100000

/* A set of (topic, partition), sorted by topic (bytewise) then partition,
 * without duplicates. Owns its topic strings. */
typedef struct txn_tp {
    char *topic;
    int32_t partition;
} txn_tp_t;

typedef struct txn_tp_set {
    txn_tp_t *items;
    int32_t count;
    int32_t cap;
} txn_tp_set_t;

void txn_tp_set_free(txn_tp_set_t *s);
/* The index of (topic, partition), or -1. */
int32_t txn_tp_set_find(const txn_tp_set_t *s, const char *topic, size_t topic_len,
                        int32_t partition);
/* Adds (topic, partition) unless present; true when it was added. */
bool txn_tp_set_add(txn_tp_set_t *s, const char *topic, size_t topic_len, int32_t partition);
/* Removes it if present; true when it was. */
bool txn_tp_set_remove(txn_tp_set_t *s, const char *topic, size_t topic_len, int32_t partition);
void txn_tp_set_copy(txn_tp_set_t *dst, const txn_tp_set_t *src);
bool txn_tp_set_equal(const txn_tp_set_t *a, const txn_tp_set_t *b);
bool txn_tp_set_subset(const txn_tp_set_t *sub, const txn_tp_set_t *of);

typedef struct txn_meta {
    int64_t producer_id;
    int64_t last_producer_id; /* Kafka's previousProducerId */
    int16_t producer_epoch;
    int16_t last_producer_epoch; /* the epoch before the last bump (KIP-360 retries) */
    int32_t timeout_ms;
    txn_state_t state;
    int pending; /* TXN_NO_PENDING or the txn_state_t being written */
    txn_tp_set_t partitions;
    int64_t start_ms; /* when the transaction began (its first partition); -1: none */
    int64_t update_ms;
    /* A fence's bumped epoch may not have been written: the next fence
     * reuses it instead of bumping again (Kafka's hasFailedEpochFence). */
    bool failed_epoch_fence;
} txn_meta_t;

/* The metadata as a write will make it (Kafka's TxnTransitMetadata). Owns
 * its partition set; txn_transit_free releases it. */
typedef struct txn_transit {
    int64_t producer_id;
    int64_t last_producer_id;
    int16_t producer_epoch;
    int16_t last_producer_epoch;
    int32_t timeout_ms;
    txn_state_t state;
    txn_tp_set_t partitions;
    int64_t start_ms;
    int64_t update_ms;
} txn_transit_t;

void txn_transit_free(txn_transit_t *t);

/* A new transactional id's metadata, as Kafka creates it before its first
 * InitProducerId is written: producer_id, no epoch, Empty. */
void txn_meta_init(txn_meta_t *m, int64_t producer_id, int32_t timeout_ms, int64_t now_ms);
void txn_meta_free(txn_meta_t *m);

/* Kafka's isEpochExhausted: a client never gets INT16_MAX - 1 or above, so
 * that the coordinator can always fence it with one more. */
bool txn_epoch_exhausted(int16_t epoch);

/* ---- InitProducerId ---- */

typedef enum txn_init_plan {
    TXN_INIT_WRITE,    /* write *t (an epoch bump or a new producer id), then answer with it */
    TXN_INIT_NEED_PID, /* the epoch is exhausted: get a new producer id, then ask again with it */
    TXN_INIT_FENCE,    /* an ongoing transaction: abort it (txn_meta_prepare_fence), then
                        * answer CONCURRENT_TRANSACTIONS so the client retries */
} txn_init_plan_t;

/* InitProducerId for an existing id (prepareInitProducerIdTransit).
 * expected_pid/expected_epoch: the request's (v3+, KIP-360), -1/-1 when
 * not given; the caller refuses one without the other (INVALID_REQUEST).
 * new_pid: a fresh producer id when the caller has one for this call, else
 * -1. Returns NONE with *plan set (and *t filled, pending set, for
 * TXN_INIT_WRITE), or the error to answer: CONCURRENT_TRANSACTIONS (a
 * change pending, or markers being written), PRODUCER_FENCED. */
int16_t txn_meta_prepare_init(txn_meta_t *m, int32_t timeout_ms, int64_t expected_pid,
                              int16_t expected_epoch, int64_t new_pid, int64_t now_ms,
                              txn_init_plan_t *plan, txn_transit_t *t);

/* ---- AddPartitionsToTxn, AddOffsetsToTxn ---- */

/* Adds parts[0..n) (views; copied into *t). NONE with *write false: the
 * partitions are already in the ongoing transaction, answer NONE at once.
 * NONE with *write true: *t filled, pending set. Errors:
 * INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED, CONCURRENT_TRANSACTIONS,
 * and UNKNOWN_SERVER_ERROR past TXN_MAX_PARTITIONS (what Kafka answers when
 * its record outgrows the log). */
typedef struct txn_tp_view {
    const char *topic;
    size_t topic_len;
    int32_t partition;
} txn_tp_view_t;

int16_t txn_meta_prepare_add(txn_meta_t *m, int64_t producer_id, int16_t producer_epoch,
                             const txn_tp_view_t *parts, int32_t n, int64_t now_ms, bool *write,
                             txn_transit_t *t);

/* ---- EndTxn ---- */

/* A client's EndTxn (endTransaction with isFromClient). NONE with *write
 * false: a retry of a completed end, answer NONE. NONE with *write true:
 * *t is PrepareCommit or PrepareAbort, pending set. Errors:
 * INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED, CONCURRENT_TRANSACTIONS,
 * INVALID_TXN_STATE. */
int16_t txn_meta_prepare_end(txn_meta_t *m, int64_t producer_id, int16_t producer_epoch,
                             bool commit, int64_t now_ms, bool *write, txn_transit_t *t);

/* The coordinator's own abort of an Ongoing transaction with no change
 * pending (an InitProducerId fencing it, or its timeout): bumps the epoch
 * in m (unless a failed fence already did), fills *t with PrepareAbort at
 * that epoch and sets pending. */
void txn_meta_prepare_fence(txn_meta_t *m, int64_t now_ms, txn_transit_t *t);
/* A fence's write failed: the next fence must not bump again. Also drops
 * the pending change. */
void txn_meta_fence_failed(txn_meta_t *m);

/* PrepareCommit/PrepareAbort is written and its markers go out: fills *t
 * with CompleteCommit/CompleteAbort and sets pending (prepareComplete). */
void txn_meta_prepare_complete(txn_meta_t *m, int64_t now_ms, txn_transit_t *t);

/* transactional.id.expiration.ms: sets pending Dead (the caller writes a
 * tombstone and, once it is replicated, forgets the id). */
void txn_meta_prepare_dead(txn_meta_t *m);

/* Applies a replicated transit (completeTransitionTo): false, changing
 * nothing, when it does not follow from m (Kafka's "this should not
 * happen"). Either way the pending state is cleared. */
bool txn_meta_complete(txn_meta_t *m, const txn_transit_t *t);
/* The transit's write failed: forget the pending change. */
void txn_meta_drop_pending(txn_meta_t *m);

/* ---- expiry, loading ---- */

/* An Ongoing transaction with no change pending that began more than its
 * timeout ago (timedOutTransactions). */
bool txn_meta_timed_out(const txn_meta_t *m, int64_t now_ms);
/* An idle id whose last update is expiration_ms or more ago, in a state
 * that allows expiry (Empty, CompleteCommit, CompleteAbort), nothing
 * pending (shouldExpire). */
bool txn_meta_expirable(const txn_meta_t *m, int64_t now_ms, int64_t expiration_ms);

/* Replaces m with what a replayed record says (readTxnRecordValue): no
 * pending change, last_producer_epoch unknown. False for a state the log
 * never holds (Dead, PrepareEpochFence), a negative producer id, or
 * partitions past TXN_MAX_PARTITIONS: m is then unchanged. */
bool txn_meta_from_record(txn_meta_t *m, const txn_record_value_t *v);
/* The record value for t. v->partitions is heap (views into t's topics),
 * the caller frees it. */
void txn_transit_to_record(const txn_transit_t *t, txn_record_value_t *v);

#endif
