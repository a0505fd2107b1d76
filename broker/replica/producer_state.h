/* Module-internal: one partition's idempotent-producer state (Kafka's
 * ProducerStateManager, non-transactional part), pure so that unit tests can
 * drive it with plain numbers: no loop, no log, no I/O. The only allocation
 * is the state's own table, which aborts on OOM (xalloc.h).
 *
 * Kafka's facts, from storage/src/main/java/org/apache/kafka/storage/
 * internals/log/ (ProducerAppendInfo.java, ProducerStateEntry.java,
 * BatchMetadata.java, ProducerStateManager.java) and core/src/main/scala/
 * kafka/log/UnifiedLog.scala (analyzeAndValidateProducerState):
 *
 *  - An entry per producer id keeps its producerEpoch, the metadata of its
 *    last NUM_BATCHES_TO_RETAIN (5) batches (lastSeq, lastOffset,
 *    offsetDelta; firstSeq and firstOffset follow from them) and the
 *    lastTimestamp of its latest batch.
 *  - For a client append, UnifiedLog first asks findDuplicateBatch: same
 *    producerEpoch and a retained batch with exactly this firstSeq and
 *    lastSeq is a duplicate, answered with that batch's offsets and not
 *    appended. Only then does ProducerAppendInfo validate:
 *  - checkProducerEpoch: an epoch below the entry's is
 *    INVALID_PRODUCER_EPOCH (since 2.7, instead of PRODUCER_FENCED).
 *  - checkSequence, epoch differs from the entry's (a newer one): firstSeq
 *    must be 0, else OUT_OF_ORDER_SEQUENCE, unless the entry's epoch is
 *    NO_PRODUCER_EPOCH (the producer is unknown), which accepts any
 *    sequence.
 *  - checkSequence, same epoch: firstSeq must be inSequence with the
 *    newest retained batch's lastSeq: lastSeq + 1, or 0 after INT32_MAX.
 *    A retry of a batch older than the 5 retained is therefore
 *    OUT_OF_ORDER_SEQUENCE.
 *  - An unknown producer is accepted with any first sequence: since 2.5
 *    (KIP-360, KAFKA-8710, commit fecb977b257) the broker no longer answers
 *    UNKNOWN_PRODUCER_ID for data batches, because its state may have been
 *    lost to retention or DeleteRecords rather than never existed.
 *  - addBatch / maybeUpdateProducerEpoch: appending with an epoch other
 *    than the entry's (followers apply even an older one, with a warning)
 *    clears the retained batches first; the 6th batch drops the oldest.
 *  - removeExpiredProducers: a producer whose lastTimestamp is at least
 *    producer.id.expiration.ms before now is dropped.
 *
 * Not Kafka's: PRODUCER_STATE_MAX_PRODUCERS bounds the table; see there.
 *
 * Transactions (ProducerStateManager's ongoingTxns / unreplicatedTxns):
 *  - a transactional batch of a producer with no ongoing transaction
 *    begins one at its first offset; a non-transactional batch from a
 *    producer inside one is INVALID_TXN_STATE;
 *  - an end-transaction marker (appendEndTxnMarker) checks the epoch and
 *    the coordinator epoch (TRANSACTION_COORDINATOR_FENCED when older),
 *    ends the transaction and keeps it unstable until the high watermark
 *    passes the marker;
 *  - the first unstable offset is the least first offset of those, so the
 *    last stable offset is min(it, high watermark).
 *
 * Snapshots are Kafka's ProducerSnapshot v1 bytes; like Kafka's they keep
 * one batch (the newest) per producer. */
#ifndef VLTAVA_PRODUCER_STATE_H
#define VLTAVA_PRODUCER_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Kafka's ProducerStateEntry.NUM_BATCHES_TO_RETAIN; the producer keeps at
 * most max.in.flight.requests.per.connection = 5 batches in flight with
 * idempotence, so every retry it may send is among these. */
#define PRODUCER_STATE_BATCHES_RETAINED 5

/* Most producers one partition tracks. Kafka has no such bound and relies
 * on expiry alone (producer.id.expiration.ms, a day by default), so a
 * client that asks InitProducerId for a new id per send grows it without
 * limit for a day. Here an entry is about 150 bytes, so this caps a
 * partition near 2 MB. Over the bound, inserting a new producer evicts the
 * least recently updated one (by order of producer_state_update calls, not
 * by batch timestamps, which clients set). An evicted producer becomes
 * unknown: its next batch is accepted with any sequence, so retries of its
 * batches are no longer recognised as duplicates. */
#define PRODUCER_STATE_MAX_PRODUCERS 10000
/* Producers inside a transaction are never evicted (their transaction holds
 * the last stable offset, and forgetting it would show its records to
 * read_committed consumers): when every tracked producer is in one, the
 * table grows past PRODUCER_STATE_MAX_PRODUCERS, up to this. Transactions
 * end at their timeout (transaction.max.timeout.ms), so reaching it takes
 * that many transactions open at once in one partition; beyond it the
 * least recently updated is evicted all the same. */
#define PRODUCER_STATE_HARD_MAX_PRODUCERS 100000

typedef struct producer_state producer_state_t;

/* What a leader does with a producer's batch. The names are Kafka's error
 * codes (OK aside). */
typedef enum producer_state_verdict {
    PRODUCER_STATE_OK,        /* append it */
    PRODUCER_STATE_DUPLICATE, /* do not append; answer with the original offsets */
    PRODUCER_STATE_OUT_OF_ORDER_SEQUENCE,
    PRODUCER_STATE_INVALID_PRODUCER_EPOCH,
    PRODUCER_STATE_INVALID_TXN_STATE,
    PRODUCER_STATE_TRANSACTION_COORDINATOR_FENCED,
} producer_state_verdict_t;

/* Where a duplicate's original was appended. */
typedef struct producer_state_duplicate {
    int64_t first_offset; /* the base offset to answer with */
    int64_t last_offset;
} producer_state_duplicate_t;

producer_state_t *producer_state_new(void);
void producer_state_free(producer_state_t *s);
/* Forgets every producer and transaction (before a rebuild). */
void producer_state_clear(producer_state_t *s);

/* Producers tracked (see PRODUCER_STATE_HARD_MAX_PRODUCERS). */
int32_t producer_state_count(const producer_state_t *s);

/* For a batch a leader is about to append from a client: producer_id >= 0,
 * epoch >= 0, first_seq and last_seq >= 0 (last_seq may be below first_seq
 * when the batch wraps past INT32_MAX). Fills *duplicate only when the
 * verdict is PRODUCER_STATE_DUPLICATE. Changes nothing: the caller calls
 * producer_state_update once the batch is appended. */
producer_state_verdict_t producer_state_check(const producer_state_t *s, int64_t producer_id,
                                              int16_t epoch, int32_t first_seq, int32_t last_seq,
                                              bool transactional,
                                              producer_state_duplicate_t *duplicate);

/* Records a batch appended at [first_offset, last_offset]: after a leader's
 * append that producer_state_check allowed, and for every producer batch a
 * follower appends (followers apply without checking). timestamp_ms is
 * what expiry measures against (Kafka: the batch's max timestamp).
 * first_seq/last_seq -1: a batch without sequence (a coordinator's write),
 * which moves the epoch and the transaction only. A transactional batch
 * begins the producer's transaction when none is ongoing. */
void producer_state_update(producer_state_t *s, int64_t producer_id, int16_t epoch,
                           int32_t first_seq, int32_t last_seq, int64_t first_offset,
                           int64_t last_offset, int64_t timestamp_ms, bool transactional);

/* A transaction an end marker completed. first_offset -1: the producer had
 * written nothing in it (Kafka emits no CompletedTxn then: no index entry,
 * no effect on readers). last_stable_offset is what Kafka's AbortedTxn
 * records: the first offset of the next ongoing transaction, else
 * last_offset + 1. */
typedef struct producer_state_completed_txn {
    int64_t first_offset;
    int64_t last_offset; /* the marker's */
    int64_t last_stable_offset;
} producer_state_completed_txn_t;

/* For a batch the broker's own coordinators write (Kafka's
 * AppendOrigin.Coordinator: no sequence): only the epoch is checked. */
producer_state_verdict_t producer_state_check_epoch(const producer_state_t *s, int64_t producer_id,
                                                    int16_t epoch);
/* What producer_state_end_txn with check would refuse, changing nothing:
 * for a leader to decide before appending the marker. */
producer_state_verdict_t producer_state_check_end_txn(const producer_state_t *s,
                                                      int64_t producer_id, int16_t epoch,
                                                      int32_t coordinator_epoch);

/* The end marker of producer_id's transaction, appended at marker_offset.
 * check (a leader's append): refuses, changing nothing, an epoch older
 * than the producer's (INVALID_PRODUCER_EPOCH) or a coordinator epoch
 * older than the last marker's (TRANSACTION_COORDINATOR_FENCED); a
 * follower or a replay passes false and applies it as it is. */
producer_state_verdict_t producer_state_end_txn(producer_state_t *s, int64_t producer_id,
                                                int16_t epoch, int32_t coordinator_epoch,
                                                int64_t marker_offset, int64_t timestamp_ms,
                                                bool check, producer_state_completed_txn_t *out);
/* The high watermark moved: completed transactions whose marker is below it
 * are stable now. */
void producer_state_on_high_watermark(producer_state_t *s, int64_t high_watermark);
/* The least first offset of a transaction not yet stable, or -1. */
int64_t producer_state_first_unstable_offset(const producer_state_t *s);
int32_t producer_state_ongoing_count(const producer_state_t *s);
/* Whether producer_id (>= 0) has a transaction ongoing here: it wrote a
 * transactional batch that no end marker has ended yet. */
bool producer_state_in_txn(const producer_state_t *s, int64_t producer_id);
/* How many end markers of producer_id this state applied (0 for an
 * unknown producer; wraps). */
uint32_t producer_state_markers(const producer_state_t *s, int64_t producer_id);

/* Kafka's ProducerSnapshot v1 file contents. write fills exactly
 * producer_state_snapshot_size(s) bytes. load replaces the state with the
 * snapshot's: 0, or -1 (state left empty) for a bad version, CRC or
 * layout. */
size_t producer_state_snapshot_size(const producer_state_t *s);
void producer_state_snapshot_write(const producer_state_t *s, uint8_t *buf);
int producer_state_snapshot_load(producer_state_t *s, const uint8_t *buf, size_t len);

/* Drops every producer outside a transaction whose last timestamp is
 * expiration_ms or more before now_ms (Kafka's producer.id.expiration.ms, >= as Kafka). Returns how
 * many were dropped. */
int32_t producer_state_expire(producer_state_t *s, int64_t now_ms, int64_t expiration_ms);

#endif
