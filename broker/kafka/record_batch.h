/* RecordBatch v2 (magic 2): the one place batch headers are read; a
 * builder for the batches the broker appends to its internal topics
 * (__consumer_offsets) and for transaction markers; an iterator that replays
 * records from log bytes. Layout: reference/kafka-protocol.md §4.
 *
 * The builder writes what a producer with no compression and CreateTime
 * would: BaseOffset 0, PartitionLeaderEpoch -1, every record at timestamp
 * delta 0 and offset delta i, no headers; no producer (id, epoch and base
 * sequence -1) unless record_batch_set_producer names one. The log assigns
 * the offsets and the epoch on append; both sit outside the CRC.
 *
 * The iterator does not re-check CRCs: every byte it is given was validated
 * by the log on append or on recovery. It still treats every length and
 * varint as untrusted, so a corrupt batch is an error return, never a read
 * past the buffer or past the batch's own Length.
 */
#ifndef VLTAVA_RECORD_BATCH_H
#define VLTAVA_RECORD_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kafka_codec.h"

/* ---- Layout ---- */

/* Header field offsets, all big-endian; the log, which validates batches
 * and stamps BaseOffset and PartitionLeaderEpoch in place, uses them too. */
enum {
    BATCH_BASE_OFFSET = 0,
    BATCH_LENGTH = 8,
    BATCH_LEADER_EPOCH = 12,
    BATCH_MAGIC = 16,
    BATCH_CRC = 17,
    BATCH_ATTRIBUTES = 21,
    BATCH_LAST_OFFSET_DELTA = 23,
    BATCH_BASE_TIMESTAMP = 27,
    BATCH_MAX_TIMESTAMP = 35,
    BATCH_PRODUCER_ID = 43,
    BATCH_PRODUCER_EPOCH = 51,
    BATCH_BASE_SEQUENCE = 53,
    BATCH_RECORDS_COUNT = 57,
    BATCH_HEADER_SIZE = 61,
    /* BaseOffset and Length: the bytes Length does not count. */
    BATCH_LOG_OVERHEAD = 12,
};

#define BATCH_MAGIC_V2             2
#define BATCH_ATTR_CODEC_MASK      0x07
#define BATCH_ATTR_LOG_APPEND_TIME 0x08
#define BATCH_ATTR_TRANSACTIONAL   0x10
#define BATCH_ATTR_CONTROL         0x20

/* ---- Header ---- */

/* The fixed header, decoded. Every field is as untrusted as the bytes it
 * came from. */
typedef struct record_batch_header {
    int64_t base_offset;
    int32_t length;       /* bytes after the Length field */
    int32_t leader_epoch; /* PartitionLeaderEpoch */
    int8_t magic;
    uint32_t crc;
    int16_t attributes;
    int32_t last_offset_delta;
    int64_t base_timestamp;
    int64_t max_timestamp;
    int64_t producer_id;    /* -1: none */
    int16_t producer_epoch; /* -1: none */
    int32_t base_sequence;  /* -1: none */
    int32_t records_count;
} record_batch_header_t;

/* Decodes the header at the front of p[0..len): false when fewer than
 * BATCH_HEADER_SIZE bytes are there. Nothing else is checked: magic, Length,
 * CRC and counts are the log's validation (batch_validate). */
bool record_batch_read_header(const uint8_t *p, size_t len, record_batch_header_t *h);

static inline bool record_batch_is_transactional(const record_batch_header_t *h)
{
    return (h->attributes & BATCH_ATTR_TRANSACTIONAL) != 0;
}

static inline bool record_batch_is_control(const record_batch_header_t *h)
{
    return (h->attributes & BATCH_ATTR_CONTROL) != 0;
}

/* The batch's bytes: BaseOffset and Length, then Length bytes. */
static inline int64_t record_batch_size(const record_batch_header_t *h)
{
    return (int64_t)BATCH_LOG_OVERHEAD + h->length;
}

/* BaseOffset + LastOffsetDelta. Wraps instead of overflowing on garbage;
 * a validated batch's is exact. */
static inline int64_t record_batch_last_offset(const record_batch_header_t *h)
{
    return (int64_t)((uint64_t)h->base_offset + (uint64_t)(int64_t)h->last_offset_delta);
}

/* The sequence of the batch's last record: BaseSequence + LastOffsetDelta,
 * wrapping past INT32_MAX to 0 as Kafka's producers do; -1 when the batch
 * has no sequence (BaseSequence -1). */
int32_t record_batch_last_sequence(const record_batch_header_t *h);

/* ---- Builder ---- */

typedef struct record_batch_builder {
    kwriter_t w; /* the header's placeholder, then the records */
    int32_t count;
    int64_t base_timestamp;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
    int16_t attributes;
    bool finished;
} record_batch_builder_t;

void record_batch_begin(record_batch_builder_t *b, int64_t timestamp_ms);
/* Makes the batch a producer's (the group coordinator's transactional offset
 * commits): its ProducerId, ProducerEpoch, BaseSequence and, when
 * transactional, the transactional attribute. Call between begin and finish;
 * finish computes the CRC over them. An idempotent or transactional batch
 * needs a producer id >= 0 and an epoch >= 0. */
void record_batch_set_producer(record_batch_builder_t *b, int64_t producer_id, int16_t epoch,
                               int32_t base_sequence, bool transactional);
/* Appends a record. A NULL key or value (its length -1) is written as null;
 * a null value is a tombstone. */
void record_batch_add(record_batch_builder_t *b, const void *key, int32_t key_len,
                      const void *value, int32_t value_len);
/* Fills in the header and returns the whole batch, valid until
 * record_batch_builder_free. Needs at least one record (Kafka has no empty
 * client batch); nothing may be added afterwards. */
const uint8_t *record_batch_finish(record_batch_builder_t *b, size_t *len);
void record_batch_builder_free(record_batch_builder_t *b);

/* ---- Transaction markers ---- */

/* ControlRecordType values of an end-transaction marker's key. */
#define RECORD_BATCH_MARKER_ABORT  0
#define RECORD_BATCH_MARKER_COMMIT 1
/* A marker batch is always this long: the header and one 17-byte record
 * (key 4 bytes, value 6, every varint one byte). */
#define RECORD_BATCH_TXN_MARKER_SIZE 78

/* Writes Kafka's end-transaction marker batch (MemoryRecords.
 * withEndTransactionMarker) into out: attributes transactional|control,
 * CreateTime, no compression; the producer's id and epoch, BaseSequence -1;
 * BaseOffset 0 and PartitionLeaderEpoch -1 (the leader's append stamps
 * both); one record at timestamp_ms whose key is (version 0, type: 1 commit,
 * 0 abort) and value (version 0, coordinator_epoch), both int16/int32
 * big-endian. */
void record_batch_build_txn_marker(uint8_t out[RECORD_BATCH_TXN_MARKER_SIZE], int64_t producer_id,
                                   int16_t producer_epoch, bool commit, int32_t coordinator_epoch,
                                   int64_t timestamp_ms);
/* Reads the end-transaction marker in the batch at the front of
 * batch[0..len) (untrusted: nothing is read outside the batch's Length or
 * len). Returns RECORD_BATCH_MARKER_COMMIT or RECORD_BATCH_MARKER_ABORT and
 * sets *coordinator_epoch; -1 when it is not a well-formed marker: not
 * whole, magic not 2, not transactional|control, compressed, not exactly
 * one record, the record not filling the batch, a key shorter than 4 bytes
 * or of negative version or of another control type, a value shorter than
 * 6 bytes or of negative version. Longer keys and values of later versions
 * are read as version 0, as Kafka does. The CRC is not checked (the log
 * checked it on append). */
int record_batch_parse_txn_marker(const uint8_t *batch, size_t len, int32_t *coordinator_epoch);

/* ---- Iterator ---- */

typedef struct record_view {
    int64_t offset;
    int64_t timestamp; /* the batch's MaxTimestamp when it is LogAppendTime */
    kslice_t key;      /* ptr NULL: null */
    kslice_t value;    /* ptr NULL: null (a tombstone) */
} record_view_t;

/* Fields other than skipped_batches are the iterator's own. */
typedef struct record_batch_iter {
    const uint8_t *buf;
    size_t len;
    size_t batch_start; /* where the open batch starts */
    size_t batch_end;   /* where it ends: the next batch starts here */
    kreader_t records;  /* the open batch's records, bounded by its Length */
    int32_t records_left;
    int64_t base_offset;
    int64_t base_timestamp;
    int64_t log_append_time; /* -1 unless the open batch is LogAppendTime */
    bool corrupt;
    int64_t skipped_batches; /* compressed or control batches passed over whole */
} record_batch_iter_t;

/* buf holds zero or more whole batches, possibly followed by the start of
 * one more; it must outlive the iterator and every view it returns. */
void record_batch_iter_init(record_batch_iter_t *it, const uint8_t *buf, size_t len);
/* Returns 1 with the next record in *out (views into buf); 0 at the end of
 * the whole batches; -1 on a corrupt batch or record (bad magic, a length
 * below the header or a record length that does not tile the batch, a
 * varint or field past its bounds), and -1 again on every later call. Compressed batches (codec
 * bits != 0) and control batches (attribute bit 5) are skipped whole and counted in
 * skipped_batches. */
int record_batch_iter_next(record_batch_iter_t *it, record_view_t *out);
/* Bytes of buf made of batches whose records have all been returned (or
 * that were skipped). Once next() returned 0 this is where a trailing
 * partial batch starts (len when there is none): the caller reads on from
 * there. After -1 it is where the corrupt batch starts. */
size_t record_batch_iter_consumed(const record_batch_iter_t *it);

#endif
