/* The partition log: one directory of segments per partition, in Kafka's
 * file names and formats (<20-digit base offset>.log / .index / .timeindex /
 * .txnindex, leader-epoch-checkpoint).
 *
 * Locality: a partition_log_t is owned by one loop thread; nothing here is
 * thread-safe. Invariants (asserted in debug builds, checked by tests):
 *  - offsets are dense and strictly increasing; a batch never spans segments;
 *  - log start offset <= high watermark <= log end offset;
 *  - the indexes are hints and can always be rebuilt from the .log;
 *  - after open() every byte below the end is a whole batch with a valid CRC.
 */
#ifndef VLTAVA_PARTITION_LOG_H
#define VLTAVA_PARTITION_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct partition_log partition_log_t;

/* Per-partition settings, Kafka's topic-level keys. */
typedef struct log_config {
    int64_t segment_bytes;        /* segment.bytes (1 GiB) */
    int64_t segment_ms;           /* segment.ms (7 days) */
    int64_t retention_bytes;      /* retention.bytes (-1: unlimited) */
    int64_t retention_ms;         /* retention.ms (7 days; -1: unlimited) */
    int32_t max_message_bytes;    /* max.message.bytes (1048588) */
    int64_t flush_messages;       /* flush.messages (INT64_MAX: never) */
    int64_t flush_ms;             /* flush.ms (INT64_MAX: never) */
    int32_t index_interval_bytes; /* index.interval.bytes (4096) */
    int32_t segment_index_bytes;  /* segment.index.bytes (10 MiB) */
    bool log_append_time;         /* message.timestamp.type=LogAppendTime */
    int32_t min_insync_replicas;  /* min.insync.replicas (1); stored for the replica layer */
    bool cleanup_delete;          /* cleanup.policy has delete: retention removes old segments */
    bool cleanup_compact; /* cleanup.policy has compact (not implemented yet: the log is kept whole)
                           */
} log_config_t;

void log_config_defaults(log_config_t *cfg);
/* Sets one topic-level key from its string value. Returns 0, or -1 with a
 * message in err (unknown key, or a value out of range). */
int log_config_set(log_config_t *cfg, const char *key, const char *value, char *err,
                   size_t err_size);
/* Current value of a key as a string, for DescribeConfigs: 0, or -1 if the
 * key is unknown. `log_config_keys` lists every supported key,
 * NULL-terminated. cleanup.policy is delete, compact or both; the log itself
 * does not compact yet, so a compact-only log is simply never trimmed. */
extern const char *const log_config_keys[];
int log_config_get(const log_config_t *cfg, const char *key, char *out, size_t out_size);

typedef enum log_err {
    LOG_OK = 0,
    LOG_ERR_BAD_MAGIC,     /* magic != 2 (UNSUPPORTED_FOR_MESSAGE_FORMAT) */
    LOG_ERR_BAD_CRC,       /* CRC-32C mismatch (CORRUPT_MESSAGE) */
    LOG_ERR_BAD_LENGTH,    /* a length field inconsistent with the buffer (CORRUPT_MESSAGE) */
    LOG_ERR_BAD_COUNT,     /* lastOffsetDelta + 1 != recordCount, or count <= 0 (INVALID_RECORD) */
    LOG_ERR_TOO_LARGE,     /* a batch larger than max.message.bytes (MESSAGE_TOO_LARGE) */
    LOG_ERR_CONTROL_BATCH, /* control flag set on a client batch (INVALID_RECORD) */
    LOG_ERR_GAP,           /* follower append: first offset above the log end */
    LOG_ERR_OVERLAP,       /* follower append: first offset below the log end */
    LOG_ERR_OUT_OF_RANGE,  /* read/truncate offset outside [start, end] */
    LOG_ERR_IO,            /* the OS refused (errno is kept in the message) */
    LOG_ERR_LOCKED,        /* the log directory is locked by another process */
} log_err_t;

const char *log_err_str(log_err_t err);
/* The Kafka ErrorCode a client gets for a refused append or read. */
int16_t log_err_kafka_error(log_err_t err);

/* Segment .log files are opened on demand through one descriptor cache
 * shared by every log of the process (least recently used closed first),
 * so descriptors stay bounded whatever the partition count; index files
 * are opened for each write. Sets the cache's bound (>= 4; default 1024);
 * loop thread only. Reads stay valid across evictions: they hand out
 * dup()ed descriptors. */
#define LOG_MIN_OPEN_FILES 4
void partition_log_set_max_open_files(size_t max);
/* .log descriptors the cache holds now. */
size_t partition_log_open_files(void);

/* The text of the last error the log module logged on the loop thread (a
 * failing open, fsync, read... with its path and strerror), "" if none:
 * for callers that report a failed partition_log_open. */
const char *partition_log_last_error(void);

/* Opens (creating if needed) the partition directory `dir`.
 * clean_shutdown: the log dir's clean-shutdown marker was present, so the
 * segments are trusted and opened without scanning. Otherwise every batch
 * from recovery_point on is re-validated and a torn or corrupt tail is
 * truncated (later segments deleted); missing or corrupt indexes are rebuilt
 * in either case. A .txnindex keeps its valid entries below its segment's
 * end (so none at or past the recovered log end); a torn tail is cut. The
 * high watermark starts at the log start offset (the log manager restores
 * it from its checkpoint); the recovery point is the log end once open
 * returns. */
log_err_t partition_log_open(const char *dir, const log_config_t *cfg, int64_t recovery_point,
                             bool clean_shutdown, partition_log_t **out);
/* Flushes and closes; frees log. */
void partition_log_close(partition_log_t *log);
/* Closes and removes the directory and all its files; frees log. */
log_err_t partition_log_delete(partition_log_t *log);
void partition_log_set_config(partition_log_t *log, const log_config_t *cfg);
const log_config_t *partition_log_config(const partition_log_t *log);
const char *partition_log_dir(const partition_log_t *log);

typedef struct log_append_info {
    int64_t first_offset;
    int64_t last_offset;
    int64_t max_timestamp;   /* greatest MaxTimestamp appended */
    int64_t log_append_time; /* -1 unless LogAppendTime */
    int32_t batch_count;
    int32_t record_count;
} log_append_info_t;

/* Appends client batches: validates every batch (magic, CRC, lengths,
 * counts, size, no control flag) before writing anything, then rewrites
 * BaseOffset and PartitionLeaderEpoch in place and writes them all
 * (all-or-nothing). Rolls the segment first when segment.bytes or
 * segment.ms says so. */
log_err_t partition_log_append(partition_log_t *log, uint8_t *batches, size_t len,
                               int32_t leader_epoch, int64_t now_ms, log_append_info_t *info);
/* partition_log_append in two steps, for a caller that decides between
 * them from the validated headers (the replica layer's producer checks
 * read only batches the log accepted, as Kafka validates before it looks
 * for duplicates): validate writes nothing; append_validated appends those
 * same bytes, unchanged since. */
typedef struct log_validated {
    size_t len;
    int64_t records;
    int32_t nbatches;
} log_validated_t;
log_err_t partition_log_validate(const partition_log_t *log, const uint8_t *batches, size_t len,
                                 log_validated_t *out);
log_err_t partition_log_append_validated(partition_log_t *log, uint8_t *batches,
                                         const log_validated_t *v, int32_t leader_epoch,
                                         int64_t now_ms, log_append_info_t *info);
/* Appends one broker-built control batch (a transaction marker), stamping
 * its offset and leader epoch like partition_log_append and validating it
 * the same way, the control flag aside. len must be exactly that one batch
 * (LOG_ERR_BAD_LENGTH otherwise); the batch must be a control batch. */
log_err_t partition_log_append_control(partition_log_t *log, uint8_t *batch, size_t len,
                                       int32_t leader_epoch, int64_t now_ms,
                                       log_append_info_t *info);
/* Appends batches whose offsets are already assigned (a follower copying
 * its leader), control batches included. The first batch must start
 * exactly at the log end. */
log_err_t partition_log_append_replica(partition_log_t *log, const uint8_t *batches, size_t len,
                                       log_append_info_t *info);

/* A read: file ranges to send with sendfile(). Each range's fd is a dup()
 * owned by the caller (so a segment deleted meanwhile stays readable);
 * partition_log_read_release() closes whatever the caller did not take. */
#define LOG_READ_MAX_RANGES 8
typedef struct log_file_range {
    int fd;
    int64_t position;
    int64_t length;
} log_file_range_t;

typedef struct log_read {
    log_file_range_t ranges[LOG_READ_MAX_RANGES];
    int nranges;
    int64_t total_bytes;
    int64_t first_offset; /* base offset of the first batch returned */
    int64_t next_offset;  /* offset after the last batch returned */
} log_read_t;

/* Reads whole batches starting at the batch that contains `offset`, up to
 * max_bytes, but at least one whole batch (when one is below max_offset)
 * even if it is larger. Only batches whose last offset is below max_offset
 * (exclusive; pass the high watermark or the log end) are returned.
 * offset == log end returns zero ranges and LOG_OK; an offset outside
 * [log start, log end] returns LOG_ERR_OUT_OF_RANGE. */
log_err_t partition_log_read(partition_log_t *log, int64_t offset, int64_t max_bytes,
                             int64_t max_offset, log_read_t *out);
void partition_log_read_release(log_read_t *rd);
/* partition_log_read's batches copied into one buffer, for readers that
 * parse the records rather than send them (a leader answering a follower's
 * ReplicaFetch, the group coordinator replaying __consumer_offsets). *out
 * is xmalloc'd and the caller's (NULL with *out_len 0 when there is
 * nothing below max_offset); *next_offset is the offset after the last
 * batch copied. LOG_ERR_IO when a file could not be read whole. */
log_err_t partition_log_read_copy(partition_log_t *log, int64_t offset, int64_t max_bytes,
                                  int64_t max_offset, uint8_t **out, size_t *out_len,
                                  int64_t *next_offset);

int64_t partition_log_start_offset(const partition_log_t *log);
int64_t partition_log_end_offset(const partition_log_t *log); /* next offset to assign */
int64_t partition_log_high_watermark(const partition_log_t *log);
/* Set by the replica layer; clamped to [start, end]. */
void partition_log_set_high_watermark(partition_log_t *log, int64_t hw);
int64_t partition_log_recovery_point(const partition_log_t *log);
/* -1 when the log was opened after a clean shutdown; else the recovery
 * point the open re-validated from: what lies above it had not been
 * fsync'd, so files derived from it (the replica layer's producer
 * snapshots) may describe bytes the crash lost. */
int64_t partition_log_unclean_from(const partition_log_t *log);
/* Bytes of all segments (for retention.bytes and DescribeLogDirs). */
int64_t partition_log_size_bytes(const partition_log_t *log);

/* First offset whose timestamp is >= ts (found through the time index), with
 * that record's timestamp; for compressed or LogAppendTime batches, the
 * batch's base offset and max timestamp. *offset = -1 when no such batch
 * exists. */
log_err_t partition_log_offset_for_time(partition_log_t *log, int64_t ts, int64_t *offset,
                                        int64_t *timestamp);

/* Leader epochs (leader-epoch-checkpoint): the largest epoch <= `epoch`
 * and the offset where the next epoch starts (or the log end for the
 * latest). *end_offset = -1 when the log has no epoch <= `epoch`. */
void partition_log_epoch_end_offset(const partition_log_t *log, int32_t epoch, int32_t *found_epoch,
                                    int64_t *end_offset);
int32_t partition_log_latest_epoch(const partition_log_t *log); /* -1 if none */

/* ---- Aborted transactions (the segments' .txnindex files) ---- */

typedef struct log_aborted_txn {
    int64_t producer_id;
    int64_t first_offset;
    int64_t last_offset; /* the abort marker's offset */
    int64_t last_stable_offset;
} log_aborted_txn_t;

/* An aborted transaction's range, as the leader or a follower appends its
 * abort marker at last_offset (the marker's offset). The entry goes to the
 * index of the segment holding last_offset: the active one for a marker
 * just appended (an earlier one when the replica layer replays producer
 * state). Entries arrive in last_offset order. LOG_ERR_OUT_OF_RANGE, and
 * nothing written, when last_offset is outside [log start, log end), is not
 * above every recorded entry's, or is below first_offset. */
log_err_t partition_log_add_aborted_txn(partition_log_t *log, int64_t producer_id,
                                        int64_t first_offset, int64_t last_offset,
                                        int64_t last_stable_offset);
/* The aborted transactions a read_committed fetch from fetch_offset up to
 * upper_bound (exclusive: the offset after the last batch returned) must
 * report: every entry with last_offset >= fetch_offset and first_offset <
 * upper_bound, from the segment holding fetch_offset onwards (Kafka's
 * collectAbortedTransactions), in last_offset order. Fills at most max
 * entries into out and sets *n; *n == max means the list may be cut there.
 * Returns LOG_OK, or LOG_ERR_IO when an index could not be read.
 * Work: a binary search in the first segment's index, then entries read
 * in order in 4 KiB chunks until one whose last_stable_offset >= upper_bound
 * (Kafka's stop: every transaction open below upper_bound had ended by
 * then, so no later entry can match) or out is full; memory is O(1). So it
 * reads the aborts written while a transaction open at upper_bound stayed
 * open, a span transaction.max.timeout.ms bounds. */
log_err_t partition_log_collect_aborted_txns(partition_log_t *log, int64_t fetch_offset,
                                             int64_t upper_bound, log_aborted_txn_t *out,
                                             size_t max, size_t *n);
/* Drops entries with last_offset >= offset (for the replica layer's replay
 * of producer state after an unclean stop, which re-adds them). */
log_err_t partition_log_drop_aborted_txns_from(partition_log_t *log, int64_t offset);

/* The active segment's base offset: where the last roll started it (the
 * replica layer snapshots producer state when the log rolls). */
int64_t partition_log_active_segment_base(const partition_log_t *log);

/* Removes every batch at or above offset (offset must be >= log start), and
 * the aborted-transaction entries whose last_offset is >= offset. */
log_err_t partition_log_truncate_to(partition_log_t *log, int64_t offset);
/* Removes everything, aborted-transaction entries included; the log
 * restarts empty at `offset`. */
log_err_t partition_log_truncate_fully(partition_log_t *log, int64_t offset);

/* fsync every dirty segment, its indexes and the directory, now, on the
 * calling thread; advances the recovery point. For start-up recovery,
 * close and tests: the running broker's flushes (flush.messages, flush.ms)
 * go to the worker pool when the log has one, and advance the recovery
 * point when the fsync completes. */
log_err_t partition_log_flush(partition_log_t *log);
/* True once an fsync of this log's data failed (here, on close, or in a
 * flush on the worker pool). Linux reports a writeback error once and may
 * drop the failed pages, so nothing is retried: from then on appends,
 * reads and flushes answer LOG_ERR_IO, the recovery point stays where it
 * was, and the log manager writes no clean-shutdown marker, so the next
 * start re-validates the log from there. The replica layer takes the
 * partition offline. */
bool partition_log_failed(const partition_log_t *log);
/* Periodic work: time-based roll (segment.ms), flush.ms, retention by
 * retention.ms and retention.bytes (whole segments, never the active one,
 * never above the high watermark). Returns the segments deleted. */
int partition_log_tick(partition_log_t *log, int64_t now_ms);

#endif
