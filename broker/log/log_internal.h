/* Module-internal: RecordBatch v2 header access and the segment (a .log
 * file with its .index and .timeindex). Only broker/log and its unit tests
 * include this.
 *
 * Locality: whoever owns the partition_log_t (one loop thread). */
#ifndef VLTAVA_LOG_INTERNAL_H
#define VLTAVA_LOG_INTERNAL_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "partition_log.h"
#include "record_batch.h" /* the RecordBatch v2 layout */
#include "worker_pool.h"

#define OFFSET_INDEX_ENTRY_SIZE 8
#define TIME_INDEX_ENTRY_SIZE   12
#define TXN_INDEX_ENTRY_SIZE    34
/* Pending index entries are written once this many accumulate, so an
 * append costs one write to the .log and only occasionally one more. */
#define SEGMENT_INDEX_WRITE_CHUNK 128

static inline uint32_t log_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline uint64_t log_be64(const uint8_t *p)
{
    return ((uint64_t)log_be32(p) << 32) | log_be32(p + 4);
}

static inline void log_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void log_put_be64(uint8_t *p, uint64_t v)
{
    log_put_be32(p, (uint32_t)(v >> 32));
    log_put_be32(p + 4, (uint32_t)v);
}

/* The header as record_batch.h decodes it: one decoder for every module. */
typedef record_batch_header_t batch_header_t;

/* Decodes the fixed 61-byte header; p must hold BATCH_HEADER_SIZE bytes. */
static inline void batch_header_decode(const uint8_t *p, batch_header_t *h)
{
    bool whole = record_batch_read_header(p, BATCH_HEADER_SIZE, h);
    assert(whole);
    (void)whole;
}

static inline int64_t batch_size(const batch_header_t *h)
{
    return record_batch_size(h);
}

static inline int64_t batch_last_offset(const batch_header_t *h)
{
    return record_batch_last_offset(h);
}

/* Checks one batch at the front of p[0..avail): header present, magic 2,
 * Length consistent with avail, size within max_bytes (max_bytes < 0: no
 * limit), CRC-32C, lastOffsetDelta + 1 == recordsCount > 0, and, when
 * uncompressed, that the records' own lengths tile the payload exactly and
 * number recordsCount. A client batch must not be a control batch. On
 * LOG_OK fills *h and returns the batch size in *size. */
log_err_t batch_validate(const uint8_t *p, size_t avail, int64_t max_bytes, bool client,
                         batch_header_t *h, size_t *size);

/* Walks an uncompressed batch's records for the first one whose timestamp is
 * >= ts; returns its offset and timestamp, or -1 if the payload does not
 * parse. */
int batch_find_timestamp(const uint8_t *batch, size_t size, int64_t ts, int64_t *offset,
                         int64_t *timestamp);

typedef struct offset_index_entry {
    uint32_t rel_offset; /* the last offset of the batch at `position`, minus the base */
    uint32_t position;
} offset_index_entry_t;

typedef struct time_index_entry {
    int64_t timestamp;   /* greatest batch MaxTimestamp so far in the segment */
    uint32_t rel_offset; /* last offset of the batch that first reached it, minus the base */
} time_index_entry_t;

/* One segment. The index entries live in memory (at most
 * segment.index.bytes worth) and reach the files in chunks: the files are
 * hints, rebuilt whenever recovery cannot trust them. The transaction
 * index is the exception (txn_index.c): on disk only, and never rebuilt. */
typedef struct segment {
    int64_t base_offset;
    int64_t next_offset; /* offset after the last batch; == base when empty */
    int64_t size;        /* bytes of valid batches in the .log */
    char *log_path;      /* owned: <dir>/<base>.log; the index paths derive from it */
    /* The .log's descriptor while the process-wide descriptor cache holds
     * it, else -1: use segment_log_fd(), never this field. */
    int log_fd;
    struct segment *lru_prev, *lru_next; /* the cache's order while log_fd >= 0 */
    bool active;                         /* the index files are appended (segment_activate) */

    offset_index_entry_t *index;
    uint32_t index_count, index_cap, index_written;
    time_index_entry_t *time_index;
    uint32_t time_index_count, time_index_cap, time_index_written;
    /* Truncating below what a file holds needs an ftruncate before the next
     * write; these say how many entries the files really hold. */
    uint32_t index_file_entries, time_index_file_entries;

    int64_t bytes_since_index;
    int64_t max_timestamp;        /* greatest batch MaxTimestamp, -1 when none */
    int64_t max_timestamp_offset; /* last offset of the batch that first reached it */
    int64_t roll_base_ms;         /* when the first append landed; -1: unknown */
    bool dirty;                   /* bytes or index entries not yet fsync'd */

    bool has_txn_index;      /* the .txnindex exists (opened for each use, never kept) */
    uint32_t txn_entries;    /* whole entries in it (the file's exact size / 34) */
    int64_t txn_last_offset; /* the last entry's last offset; -1 when none */
} segment_t;

/* "<dir>/<20-digit base><ext>", caller frees. */
char *segment_path(const char *dir, int64_t base_offset, const char *ext);

/* Creates an empty active segment (truncating any stale files). */
log_err_t segment_create(const char *dir, int64_t base_offset, segment_t **out);
/* Opens an existing segment. recover: re-validate every batch, truncate at
 * the first torn or corrupt one (*truncated set) and rebuild the indexes;
 * otherwise trust the .log, load the index files and rebuild them only if
 * missing or inconsistent. */
log_err_t segment_open(const char *dir, int64_t base_offset, int32_t index_interval, bool recover,
                       segment_t **out, bool *truncated);
/* The .log's descriptor, opened (evicting the least recently used one when
 * the cache is full) if the cache does not hold it; -1 after logging the
 * path and strerror. Valid until the next segment_log_fd or segment_close
 * call: use it at once, dup() it to keep it. Loop thread only. */
int segment_log_fd(segment_t *seg);
/* A dup of the .log's descriptor that the caller owns (CLOEXEC), for a
 * read whose range must stay readable whatever the cache closes; on
 * EMFILE/ENFILE closes one other cached descriptor and retries once, as
 * opening does. -1 after logging the path and strerror. */
int segment_dup_log_fd(segment_t *seg);
/* "<dir>/<base><ext>" from the segment's .log path; caller frees. */
char *segment_sibling_path(const segment_t *seg, const char *ext);
/* Descriptors the cache holds now, and its bound. */
size_t segment_open_log_fds(void);
size_t segment_max_log_fds(void);

/* Makes seg the active segment: index entries are appended to its index
 * files from now on (opened for each write, not kept open). */
log_err_t segment_activate(const char *dir, segment_t *seg);
/* Ends the segment's active life: adds the closing time-index entry (so
 * the last entry carries the segment's max timestamp) and writes out
 * pending index entries. */
log_err_t segment_finish(segment_t *seg);
log_err_t segment_write_pending_index(segment_t *seg);
/* fsync the .log and (through their paths if closed) the index files. */
log_err_t segment_sync(const char *dir, segment_t *seg);
void segment_close(segment_t *seg);
/* Closes and unlinks the segment's files. */
void segment_delete(const char *dir, segment_t *seg);

/* Records the index entries Kafka's rule asks for after a batch of `size`
 * bytes at `position` was appended. */
void segment_index_batch(segment_t *seg, int32_t index_interval, int64_t position,
                         int64_t last_offset, int64_t max_timestamp, int64_t size);

/* Reads and sanity-checks the batch header at position (which must be a
 * batch boundary below seg->size). */
log_err_t segment_read_header(segment_t *seg, int64_t position, batch_header_t *h);
/* Position of the batch containing offset (base <= offset < next), or
 * seg->size if offset >= next_offset. */
log_err_t segment_find_batch(segment_t *seg, int64_t offset, int64_t *position, batch_header_t *h);
/* Largest index position whose entry's offset is <= offset (0 if none). */
int64_t segment_floor_by_offset(const segment_t *seg, int64_t offset);
/* Largest index position <= position (0 if none). */
int64_t segment_floor_by_position(const segment_t *seg, int64_t position);
/* Largest indexed position for time <= ts (0 if none). */
int64_t segment_floor_by_time(const segment_t *seg, int64_t ts);
/* Cuts the segment at position (a batch boundary) whose first offset is
 * offset; drops index entries at or beyond it and recomputes the max
 * timestamp. */
log_err_t segment_truncate(segment_t *seg, int64_t position, int64_t offset);

/* ---- Transaction index (txn_index.c) ---- */

/* Opens the segment's .txnindex if there is one (its next_offset known) and
 * keeps the longest valid prefix: whole version-0 entries with first <=
 * last and last offsets increasing inside [base, next_offset). A torn
 * tail, and entries at or past a recovered log end, are cut from the file. */
log_err_t txn_index_load(const char *dir, segment_t *seg);
/* Appends an entry whose last offset lies in the segment and after its last
 * entry's, creating the file first if needed (*created then). */
log_err_t txn_index_append(segment_t *seg, const log_aborted_txn_t *e, bool *created);
/* Drops the entries whose last offset is >= offset. */
log_err_t txn_index_truncate(segment_t *seg, int64_t offset);
/* Adds to out[*n..max) the entries with last_offset >= fetch_offset and
 * first_offset < upper_bound, reading from the first entry with last_offset
 * >= fetch_offset (a binary search) in chunks; *complete when an entry's
 * last stable offset reached upper_bound (Kafka's stop: no later entry can
 * match). Stops when out is full. */
log_err_t txn_index_collect(const segment_t *seg, int64_t fetch_offset, int64_t upper_bound,
                            log_aborted_txn_t *out, size_t max, size_t *n, bool *complete);

/* pwrite/pread the whole range, retrying on EINTR and short transfers.
 * pwrite: 0, or -1 with errno. pread: the bytes read (fewer only at end of
 * file), or -1 with errno. */
int log_pwrite_all(int fd, const void *buf, size_t len, off_t offset);
ssize_t log_pread_all(int fd, void *buf, size_t len, off_t offset);

/* Writes content to path atomically: temp file, fsync, rename, fsync dir. */
log_err_t log_write_file_atomic(const char *path, const char *content, size_t len, char *err,
                                size_t err_size);
/* fsync a directory so that created, renamed or unlinked names persist. */
int log_fsync_dir(const char *dir);

/* Logs an error of the log module and keeps its text as the module's last
 * error (partition_log_last_error). Loop thread only. */
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- Disk work off the loop (log_disk.c: any thread) ---- */

/* Bounds the names the jobs build: "<20 digits>.timeindex.deleted",
 * "leader-epoch-checkpoint", "<20 digits>.snapshot". */
#define LOG_NAME_MAX       64
#define LOG_DELETED_SUFFIX ".deleted"
/* A partition directory being removed: "<dir>.<id>-delete" (Kafka's). */
#define LOG_DIR_DELETE_SUFFIX "-delete"

/* O_DIRECTORY descriptor of dir for a job's *at() calls, or -1 with errno. */
int log_open_dir_fd(const char *dir);
/* Writes name in dir_fd atomically: temp file, fsync, rename, fsync the
 * directory. 0, or -1 with the failing step and strerror in err. */
int log_write_file_at(int dir_fd, const char *name, const void *content, size_t len, char *err,
                      size_t err_size);
/* fdatasync of each segment's files that exist (.log and indexes) and, if
 * sync_dir, of the directory. 0, or -1 with the cause in err. */
int log_sync_segments_at(int dir_fd, const int64_t *bases, int nbases, bool sync_dir, char *err,
                         size_t err_size);
/* Renames the segment's files to <name>.deleted (a cheap metadata step on
 * the loop; Kafka's way): a segment created again at the same base never
 * meets a pending unlink. 0, or -1 with errno (the caller then unlinks). */
int log_retire_segment_files(const char *dir, int64_t base_offset);
/* Unlinks the .deleted files of one retired segment. */
void log_unlink_retired_at(int dir_fd, int64_t base_offset);
/* Unlinks everything in dir, then dir. 0, or -1 with the cause in err. */
int log_remove_dir(const char *dir, char *err, size_t err_size);

/* Gives the log the pool for its fsyncs, checkpoint writes and segment
 * deletions (NULL: all synchronous, as at start-up). */
void partition_log_set_worker_pool(partition_log_t *log, worker_pool_t *pool);

/* Simulates a crash for tests: releases everything without flushing,
 * finishing indexes or writing anything. */
void partition_log_abandon(partition_log_t *log);

#endif
