/* The record keys and values of __transaction_state, in Kafka's own schemas
 * (TransactionLogKey.json, TransactionLogValue.json), so that a partition
 * written by Kafka can be replayed here and the other way round.
 *
 * Every key and value starts with an int16 version. The key has one version
 * (0: the transactional id). The value has two: 0, which Kafka writes until
 * transaction.version 2 is enabled, and 1, flexible (compact strings and
 * arrays, tagged fields), whose tagged fields carry PreviousProducerId (tag
 * 0), NextProducerId (tag 1) and ClientTransactionVersion (tag 2). Writers
 * produce what Kafka writes for the transaction protocol served here (key
 * v0, value v0); readers accept both value versions. Unknown tags are
 * skipped; a known tag of the wrong size, an unknown version, a
 * TransactionStatus outside Kafka's states, a truncated record or bytes
 * left over after the last field is a decode error (false).
 *
 * A null value (a tombstone) removes the transactional id; that is the
 * caller's business, these functions only see non-null values.
 *
 * Decoded slices are views into the bytes given, valid as long as they are.
 */
#ifndef VLTAVA_TXN_RECORDS_H
#define VLTAVA_TXN_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kafka_codec.h"

/* Kafka's TransactionState ids (TransactionMetadata.scala), which the
 * value's TransactionStatus stores. */
typedef enum txn_state {
    TXN_EMPTY = 0,
    TXN_ONGOING = 1,
    TXN_PREPARE_COMMIT = 2,
    TXN_PREPARE_ABORT = 3,
    TXN_COMPLETE_COMMIT = 4,
    TXN_COMPLETE_ABORT = 5,
    TXN_DEAD = 6,
    TXN_PREPARE_EPOCH_FENCE = 7,
} txn_state_t;

#define TXN_STATE_COUNT 8

/* Kafka's name of a state ("PrepareCommit"), as DescribeTransactions and
 * ListTransactions report it; NULL for a value outside the enum. */
const char *txn_state_name(int state);
/* The state named `name` (exact, case-sensitive, as Kafka's fromName);
 * -1 when none is. */
int txn_state_from_name(kslice_t name);

typedef struct txn_record_partition {
    kslice_t topic;
    int32_t partition;
} txn_record_partition_t;

typedef struct txn_record_value {
    int64_t producer_id;
    int64_t previous_producer_id; /* v1 tag 0; -1 otherwise */
    int64_t next_producer_id;     /* v1 tag 1; -1 otherwise */
    int16_t producer_epoch;
    int32_t timeout_ms;
    txn_state_t state;
    /* Every (topic, partition) of TransactionPartitions, flattened in the
     * record's order. Written: entries of one topic must be consecutive
     * (each run becomes one PartitionsSchema). Decoded: heap (xcalloc),
     * caller frees; NULL when none. */
    txn_record_partition_t *partitions;
    int32_t npartitions;
    /* The array is nullable: Kafka writes null for Empty. Written: null
     * when the state is Empty, whatever this says (the reader sees 0
     * partitions either way). */
    bool partitions_null;
    int64_t last_update_ms;
    int64_t start_ms;
    int16_t client_txn_version; /* v1 tag 2; 0 otherwise */
} txn_record_value_t;

/* Writers append one key or value to w. The id must fit an int16 length,
 * as must every topic name. */
void txn_record_write_key(kwriter_t *w, kslice_t transactional_id);
/* v0 (no tagged fields: previous/next producer id and the client version
 * are not written, as Kafka's v0 cannot hold them). */
void txn_record_write_value(kwriter_t *w, const txn_record_value_t *v);

/* Readers decode exactly one key or value from p[0..len). On false, *out is
 * unspecified and nothing is left allocated. */
bool txn_record_read_key(const uint8_t *p, size_t len, kslice_t *transactional_id);
/* The partition count is bounded by the bytes present before anything is
 * allocated. */
bool txn_record_read_value(const uint8_t *p, size_t len, txn_record_value_t *out);

#endif
