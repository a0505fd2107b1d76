/* The partition log: an ordered array of segments, the last one active,
 * plus the offsets the replica layer steers (high watermark) and the ones
 * durability steers (recovery point), and the leader-epoch cache. */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crc32c.h"
#include "kafka_errors.h"
#include "log_internal.h"
#include "vlog.h"
#include "xalloc.h"
#include "wall_clock.h"

#define LEADER_EPOCH_FILE "leader-epoch-checkpoint"
/* Bounds what the epoch checkpoint parser accepts from disk. */
#define LEADER_EPOCH_MAX_ENTRIES 100000

/* Shared by a log and its disk jobs in flight: a job's completion touches
 * the log only while log != NULL (log_free clears it). */
typedef struct log_life {
    partition_log_t *log; /* loop thread only */
    int refs;             /* loop thread only: the log's own while it lives, plus one per job */
    /* The leader-epoch-checkpoint writes: each takes the next sequence
     * number; a queued write finding a newer one issued skips, and the
     * writes themselves hold epoch_mu, so the newest content lands last
     * whichever thread writes it. */
    atomic_uint_fast64_t epoch_seq;
    pthread_mutex_t epoch_mu;
} log_life_t;

typedef struct epoch_entry {
    int32_t epoch;
    int64_t start_offset;
} epoch_entry_t;

struct partition_log {
    char *dir; /* owned */
    log_config_t cfg;
    segment_t **segs; /* owned, sorted by base offset; segs[nsegs - 1] is active */
    int nsegs, segs_cap;
    int64_t start_offset;
    int64_t high_watermark;
    int64_t recovery_point;
    int64_t unclean_from; /* open re-validated from here (-1: a clean open) */
    int64_t unflushed_messages;
    int64_t last_flush_ms; /* -1 until the first tick */
    bool dir_dirty;        /* names created or removed since the last flush */
    epoch_entry_t *epochs; /* owned, epochs and start offsets increasing */
    int nepochs, epochs_cap;
    /* Where the last read stopped: consumers read on from next_offset, so
     * the next read usually starts here without an index lookup or a
     * header scan. Reset by anything that rewrites the middle of the log. */
    int64_t hint_offset; /* -1: none */
    int64_t hint_base;
    int64_t hint_position;
    worker_pool_t *pool;  /* not owned; NULL: disk work runs inline */
    log_life_t *life;     /* owned with the jobs in flight */
    bool flush_in_flight; /* an fsync job of this log is queued or running */
    /* An fsync of this log's data failed. Linux reports a writeback error
     * once and may drop the failed pages or mark them clean, so a retry
     * would "succeed" over lost data: the log is never flushed, written or
     * read again, and its recovery point stays where it was, until a
     * restart re-validates it (Kafka takes the log dir offline). */
    bool sync_failed;
    uint64_t truncate_gen; /* bumped whenever the log end moves back */
};

const char *log_err_str(log_err_t err)
{
    switch (err) {
    case LOG_OK:
        return "ok";
    case LOG_ERR_BAD_MAGIC:
        return "unsupported magic (not RecordBatch v2)";
    case LOG_ERR_BAD_CRC:
        return "CRC-32C mismatch";
    case LOG_ERR_BAD_LENGTH:
        return "length field inconsistent with the data";
    case LOG_ERR_BAD_COUNT:
        return "record count mismatch";
    case LOG_ERR_TOO_LARGE:
        return "batch larger than max.message.bytes";
    case LOG_ERR_CONTROL_BATCH:
        return "control batch from a client";
    case LOG_ERR_GAP:
        return "offset gap";
    case LOG_ERR_OVERLAP:
        return "offset overlap";
    case LOG_ERR_OUT_OF_RANGE:
        return "offset out of range";
    case LOG_ERR_IO:
        return "I/O error";
    case LOG_ERR_LOCKED:
        return "locked by another process";
    }
    return "unknown log error";
}

static inline segment_t *log_active(const partition_log_t *log)
{
    assert(log->nsegs > 0);
    return log->segs[log->nsegs - 1];
}

static void log_check_invariants(const partition_log_t *log)
{
    int64_t end = log_active(log)->next_offset;
    assert(log->start_offset == log->segs[0]->base_offset);
    assert(log->start_offset <= log->high_watermark);
    assert(log->high_watermark <= end);
    assert(log->recovery_point <= end);
    (void)end;
#ifndef NDEBUG
    for (int i = 1; i < log->nsegs; i++)
        assert(log->segs[i - 1]->next_offset == log->segs[i]->base_offset);
#endif
}

/* ---- disk jobs (the worker pool) ---- */

/* Every job of one log carries the same order key, so they run one at a
 * time in the order queued: a later write of a file lands last, and a
 * partition's removal comes after everything queued for it. */
static uint64_t log_order_key(const partition_log_t *log)
{
    return (uint64_t)(uintptr_t)log->life;
}

static void log_life_release(log_life_t *life)
{
    assert(life->refs > 0);
    if (--life->refs == 0) {
        assert(life->log == NULL);
        pthread_mutex_destroy(&life->epoch_mu);
        free(life);
    }
}

/* Queues work/done with a reference on the log's life; false when the log
 * has no pool or the pool refused (then the caller does the work). */
static bool log_submit(partition_log_t *log, worker_work_fn work, worker_done_fn done, void *job)
{
    if (log->pool == NULL)
        return false;
    if (!worker_pool_submit(log->pool, log_order_key(log), work, done, job))
        return false;
    log->life->refs++;
    return true;
}

void partition_log_set_worker_pool(partition_log_t *log, worker_pool_t *pool)
{
    assert(log != NULL);
    assert(log->life != NULL && log->life->log == log);
    log->pool = pool;
}

typedef struct log_epochs_job {
    log_life_t *life; /* one reference */
    char *dir;        /* owned; for the message */
    int dir_fd;       /* owned */
    uint64_t seq;     /* this write's number in life->epoch_seq */
    char *content;    /* owned */
    size_t len;
    int rc;
    char err[512];
} log_epochs_job_t;

static void log_epochs_job_work(void *arg)
{
    log_epochs_job_t *job = arg;
    pthread_mutex_lock(&job->life->epoch_mu);
    /* A newer write was issued since: this content must not land. */
    if (atomic_load(&job->life->epoch_seq) == job->seq)
        job->rc = log_write_file_at(job->dir_fd, LEADER_EPOCH_FILE, job->content, job->len,
                                    job->err, sizeof(job->err));
    pthread_mutex_unlock(&job->life->epoch_mu);
    close(job->dir_fd);
    job->dir_fd = -1;
}

static void log_epochs_job_done(void *arg)
{
    log_epochs_job_t *job = arg;
    if (job->rc != 0)
        log_error("%s: %s", job->dir, job->err);
    log_life_release(job->life);
    free(job->content);
    free(job->dir);
    free(job);
}

/* Queues the write of content as leader-epoch-checkpoint; false when it
 * could not be queued (no pool, pool full). */
static bool log_epochs_write_async(partition_log_t *log, const char *content, size_t len)
{
    if (log->pool == NULL)
        return false;
    int dir_fd = log_open_dir_fd(log->dir);
    if (dir_fd < 0)
        return false;
    log_epochs_job_t *job = xcalloc(1, sizeof(*job));
    job->life = log->life;
    job->dir = xstrdup(log->dir);
    job->dir_fd = dir_fd;
    job->content = xstrndup(content, len);
    job->len = len;
    job->seq = atomic_fetch_add(&log->life->epoch_seq, 1) + 1;
    if (log_submit(log, log_epochs_job_work, log_epochs_job_done, job))
        return true;
    close(dir_fd);
    free(job->content);
    free(job->dir);
    free(job);
    return false;
}

/* Writes content as leader-epoch-checkpoint now, superseding any queued
 * write (which then skips); waits for one being written. */
static void log_epochs_write_now(partition_log_t *log, const char *content, size_t len)
{
    atomic_fetch_add(&log->life->epoch_seq, 1);
    char *path = xasprintf("%s/%s", log->dir, LEADER_EPOCH_FILE);
    char err[512];
    pthread_mutex_lock(&log->life->epoch_mu);
    log_err_t rc = log_write_file_atomic(path, content, len, err, sizeof(err));
    pthread_mutex_unlock(&log->life->epoch_mu);
    if (rc != LOG_OK)
        log_error("%s", err);
    free(path);
}

/* Marks the log failed for good (see sync_failed): nothing of it is
 * flushed again, so no later fsync can report a success over pages the
 * kernel dropped. */
static void log_sync_failed(partition_log_t *log)
{
    log->sync_failed = true;
    for (int i = 0; i < log->nsegs; i++)
        log->segs[i]->dirty = false;
    log->dir_dirty = false;
}

bool partition_log_failed(const partition_log_t *log)
{
    assert(log != NULL);
    return log->sync_failed;
}

typedef struct log_flush_job {
    log_life_t *life; /* one reference */
    char *dir;        /* owned; for the message */
    int dir_fd;       /* owned */
    int64_t *bases;   /* owned: the segments that were dirty */
    int nbases;
    bool sync_dir;
    int64_t target_end;       /* the log end when queued */
    uint64_t truncate_gen;    /* the log's when queued */
    int64_t covered_messages; /* unflushed messages this flush covers */
    int rc;
    char err[512];
} log_flush_job_t;

static void log_flush_job_work(void *arg)
{
    log_flush_job_t *job = arg;
    job->rc = log_sync_segments_at(job->dir_fd, job->bases, job->nbases, job->sync_dir, job->err,
                                   sizeof(job->err));
    close(job->dir_fd);
    job->dir_fd = -1;
}

static void log_flush_job_done(void *arg)
{
    log_flush_job_t *job = arg;
    partition_log_t *log = job->life->log;
    if (job->rc != 0)
        log_error("%s: %s; the partition goes offline until a restart re-validates it", job->dir,
                  job->err);
    if (log != NULL) {
        assert(log->flush_in_flight);
        log->flush_in_flight = false;
        if (job->rc == 0 && !log->sync_failed) {
            /* Bytes above the end of a log truncated meanwhile may be new
             * ones this fsync did not cover. */
            int64_t end = log_active(log)->next_offset;
            int64_t point = job->target_end < end ? job->target_end : end;
            if (job->truncate_gen == log->truncate_gen && point > log->recovery_point)
                log->recovery_point = point;
        } else if (job->rc != 0) {
            log_sync_failed(log);
        }
    }
    log_life_release(job->life);
    free(job->bases);
    free(job->dir);
    free(job);
}

/* The flush policy's fsync: queued to the pool (at most one per log in
 * flight); inline without a pool. */
static log_err_t log_flush_async(partition_log_t *log)
{
    if (log->sync_failed)
        return LOG_ERR_IO;
    if (log->pool == NULL)
        return partition_log_flush(log);
    if (log->flush_in_flight)
        return LOG_OK; /* the unflushed count keeps what the next one covers */
    segment_t *active = log_active(log);
    if (active->active) {
        log_err_t err = segment_write_pending_index(active); /* the page cache only */
        if (err != LOG_OK)
            return err;
    }
    int dir_fd = log_open_dir_fd(log->dir);
    if (dir_fd < 0) {
        log_error("open %s for fsync: %s", log->dir, strerror(errno));
        return LOG_ERR_IO;
    }
    log_flush_job_t *job = xcalloc(1, sizeof(*job));
    job->life = log->life;
    job->dir = xstrdup(log->dir);
    job->dir_fd = dir_fd;
    job->bases = xmalloc((size_t)log->nsegs * sizeof(*job->bases));
    for (int i = 0; i < log->nsegs; i++)
        if (log->segs[i]->dirty)
            job->bases[job->nbases++] = log->segs[i]->base_offset;
    job->sync_dir = log->dir_dirty;
    job->target_end = active->next_offset;
    job->truncate_gen = log->truncate_gen;
    job->covered_messages = log->unflushed_messages;
    if (!log_submit(log, log_flush_job_work, log_flush_job_done, job)) {
        close(dir_fd);
        free(job->bases);
        free(job->dir);
        free(job);
        return LOG_OK; /* the pool is full: the next tick tries again */
    }
    /* Writes from now on set them again. */
    for (int i = 0; i < log->nsegs; i++)
        log->segs[i]->dirty = false;
    log->dir_dirty = false;
    log->unflushed_messages = 0;
    log->flush_in_flight = true;
    return LOG_OK;
}

typedef struct log_unlink_job {
    log_life_t *life; /* one reference */
    int dir_fd;       /* owned */
    int64_t base_offset;
} log_unlink_job_t;

static void log_unlink_job_work(void *arg)
{
    log_unlink_job_t *job = arg;
    log_unlink_retired_at(job->dir_fd, job->base_offset);
    close(job->dir_fd);
}

static void log_unlink_job_done(void *arg)
{
    log_unlink_job_t *job = arg;
    log_life_release(job->life);
    free(job);
}

/* Deletes a segment already out of log->segs: renamed to .deleted and
 * closed here (its descriptor belongs to the loop's cache; a still-linked
 * file closes cheaply), unlinked on the worker, where the blocks are
 * freed; all inline without a pool. */
static void log_discard_segment(partition_log_t *log, segment_t *seg)
{
    assert(seg != NULL);
    log->dir_dirty = true;
    if (log->pool == NULL || log_retire_segment_files(log->dir, seg->base_offset) != 0) {
        segment_delete(log->dir, seg);
        return;
    }
    const int64_t base = seg->base_offset;
    segment_close(seg);
    int dir_fd = log_open_dir_fd(log->dir);
    if (dir_fd < 0)
        return; /* a .deleted leftover is removed by the next open */
    log_unlink_job_t *job = xcalloc(1, sizeof(*job));
    *job = (log_unlink_job_t){log->life, dir_fd, base};
    if (log_submit(log, log_unlink_job_work, log_unlink_job_done, job))
        return;
    log_unlink_retired_at(dir_fd, base);
    close(dir_fd);
    free(job);
}

typedef struct log_rmdir_job {
    log_life_t *life; /* one reference */
    char *dir;        /* owned: the renamed directory */
    int rc;
    char err[512];
} log_rmdir_job_t;

static void log_rmdir_job_work(void *arg)
{
    log_rmdir_job_t *job = arg;
    job->rc = log_remove_dir(job->dir, job->err, sizeof(job->err));
}

static void log_rmdir_job_done(void *arg)
{
    log_rmdir_job_t *job = arg;
    if (job->rc != 0)
        log_error("%s", job->err);
    log_life_release(job->life);
    free(job->dir);
    free(job);
}

/* ---- leader-epoch cache ---- */

/* Kafka's rule (LeaderEpochFileCache): a new epoch is written and fsync'd
 * before the append that starts it is acknowledged (sync), so the file
 * never misses an entry the log holds, even after a crash, and so is a
 * full clear (truncate_fully); truncations of either end only drop
 * entries, and a crash that loses one is repaired by open (it drops
 * entries past the log end and before its start), so they go to the
 * worker pool. */
static void log_write_epochs(partition_log_t *log, bool sync)
{
    size_t cap = 32 + (size_t)log->nepochs * 34;
    char *text = xmalloc(cap);
    size_t len = (size_t)snprintf(text, cap, "0\n%d\n", log->nepochs);
    for (int i = 0; i < log->nepochs; i++)
        len += (size_t)snprintf(text + len, cap - len, "%" PRId32 " %" PRId64 "\n",
                                log->epochs[i].epoch, log->epochs[i].start_offset);
    assert(len < cap);
    if (sync || !log_epochs_write_async(log, text, len))
        log_epochs_write_now(log, text, len);
    free(text);
}

/* Appends one epoch entry to the in-memory cache; the caller keeps the
 * cache ordered (epochs and start offsets ascending). */
static void epochs_push(partition_log_t *log, int32_t epoch, int64_t start_offset)
{
    if (log->nepochs == log->epochs_cap) {
        log->epochs_cap = log->epochs_cap ? log->epochs_cap * 2 : 8;
        log->epochs = xrealloc(log->epochs, (size_t)log->epochs_cap * sizeof(*log->epochs));
    }
    log->epochs[log->nepochs++] = (epoch_entry_t){epoch, start_offset};
}

static void log_load_epochs(partition_log_t *log)
{
    char *path = xasprintf("%s/%s", log->dir, LEADER_EPOCH_FILE);
    FILE *f = fopen(path, "r");
    free(path);
    if (f == NULL)
        return;
    int version = -1, count = -1;
    bool ok = fscanf(f, "%d %d", &version, &count) == 2 && version == 0 && count >= 0 &&
              count <= LEADER_EPOCH_MAX_ENTRIES;
    for (int i = 0; ok && i < count; i++) {
        int32_t epoch;
        int64_t start;
        if (fscanf(f, "%" SCNd32 " %" SCNd64, &epoch, &start) != 2 || epoch < 0 || start < 0 ||
            (log->nepochs > 0 && (log->epochs[log->nepochs - 1].epoch >= epoch ||
                                  log->epochs[log->nepochs - 1].start_offset > start))) {
            ok = false;
            break;
        }
        epochs_push(log, epoch, start);
    }
    fclose(f);
    if (!ok) {
        VLOG_WARN("log", "%s: unreadable %s, starting an empty epoch cache", log->dir,
                  LEADER_EPOCH_FILE);
        log->nepochs = 0;
    }
}

/* Records that `epoch` starts at start_offset, if it is newer than the last. */
static void log_assign_epoch(partition_log_t *log, int32_t epoch, int64_t start_offset)
{
    if (epoch < 0 || (log->nepochs > 0 && log->epochs[log->nepochs - 1].epoch >= epoch))
        return;
    assert(log->nepochs == 0 || log->epochs[log->nepochs - 1].start_offset <= start_offset);
    epochs_push(log, epoch, start_offset);
    log_write_epochs(log, true);
}

/* Drops the epochs that start at or after end_offset. */
static void log_epochs_truncate_end(partition_log_t *log, int64_t end_offset)
{
    int n = log->nepochs;
    while (n > 0 && log->epochs[n - 1].start_offset >= end_offset)
        n--;
    if (n != log->nepochs) {
        log->nepochs = n;
        log_write_epochs(log, false);
    }
}

/* The log now starts at start_offset: the epoch in force there is kept,
 * moved to start there; older ones go. */
static void log_epochs_truncate_start(partition_log_t *log, int64_t start_offset)
{
    int keep = -1;
    for (int i = 0; i < log->nepochs && log->epochs[i].start_offset <= start_offset; i++)
        keep = i;
    if (keep < 0 || (keep == 0 && log->epochs[0].start_offset == start_offset))
        return;
    memmove(log->epochs, log->epochs + keep, (size_t)(log->nepochs - keep) * sizeof(*log->epochs));
    log->nepochs -= keep;
    log->epochs[0].start_offset = start_offset;
    log_write_epochs(log, false);
}

void partition_log_epoch_end_offset(const partition_log_t *log, int32_t epoch, int32_t *found_epoch,
                                    int64_t *end_offset)
{
    assert(found_epoch != NULL && end_offset != NULL);
    *found_epoch = -1;
    *end_offset = -1;
    for (int i = log->nepochs - 1; i >= 0; i--) {
        if (log->epochs[i].epoch <= epoch) {
            *found_epoch = log->epochs[i].epoch;
            *end_offset = i + 1 < log->nepochs ? log->epochs[i + 1].start_offset
                                               : log_active(log)->next_offset;
            return;
        }
    }
}

int32_t partition_log_latest_epoch(const partition_log_t *log)
{
    return log->nepochs > 0 ? log->epochs[log->nepochs - 1].epoch : -1;
}

/* ---- segments array ---- */

static void log_push_segment(partition_log_t *log, segment_t *seg)
{
    assert(log->nsegs == 0 || log_active(log)->next_offset == seg->base_offset);
    if (log->nsegs == log->segs_cap) {
        log->segs_cap = log->segs_cap ? log->segs_cap * 2 : 8;
        log->segs = xrealloc(log->segs, (size_t)log->segs_cap * sizeof(*log->segs));
    }
    log->segs[log->nsegs++] = seg;
}

/* Index of the segment holding offset (the last with base <= offset). */
static int log_find_segment(const partition_log_t *log, int64_t offset)
{
    int lo = 0, hi = log->nsegs;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (log->segs[mid]->base_offset <= offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    assert(lo > 0);
    return lo - 1;
}

/* Deletes segments [from, nsegs). */
static void log_drop_segments_from(partition_log_t *log, int from)
{
    while (log->nsegs > from) {
        log->nsegs--;
        log_discard_segment(log, log->segs[log->nsegs]);
    }
}

static int log_compare_base(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Parses "<20 digits><ext>"; true with *base on a match. */
static bool log_parse_segment_name(const char *name, const char *ext, int64_t *base)
{
    size_t len = strlen(name), ext_len = strlen(ext);
    if (len != 20 + ext_len || strcmp(name + 20, ext) != 0)
        return false;
    int64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9' || v > (INT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (name[i] - '0');
    }
    *base = v;
    return true;
}

/* Lists the .log base offsets, sorted; removes leftovers of interrupted
 * work (temp files, Kafka's .deleted/.cleaned/.swap, indexes without a
 * .log). */
static log_err_t log_list_segments(const char *dir, int64_t **bases_out, int *count_out)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        log_error("opendir %s: %s", dir, strerror(errno));
        return LOG_ERR_IO;
    }
    int64_t *bases = NULL;
    int count = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        int64_t base;
        const char *name = de->d_name;
        const char *dot = strrchr(name, '.');
        if (log_parse_segment_name(name, ".log", &base)) {
            if (count == cap) {
                cap = cap ? cap * 2 : 16;
                bases = xrealloc(bases, (size_t)cap * sizeof(*bases));
            }
            bases[count++] = base;
        } else if (dot != NULL && (strcmp(dot, ".tmp") == 0 || strcmp(dot, ".deleted") == 0 ||
                                   strcmp(dot, ".cleaned") == 0 || strcmp(dot, ".swap") == 0)) {
            char *path = xasprintf("%s/%s", dir, name);
            unlink(path);
            free(path);
        }
    }
    closedir(d);
    if (count > 0)
        qsort(bases, (size_t)count, sizeof(*bases), log_compare_base);
    *bases_out = bases;
    *count_out = count;
    return LOG_OK;
}

static void log_remove_orphan_indexes(const partition_log_t *log)
{
    DIR *d = opendir(log->dir);
    if (d == NULL)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        int64_t base;
        if (!log_parse_segment_name(de->d_name, ".index", &base) &&
            !log_parse_segment_name(de->d_name, ".timeindex", &base) &&
            !log_parse_segment_name(de->d_name, ".txnindex", &base))
            continue;
        bool found = false;
        for (int i = 0; i < log->nsegs && !found; i++)
            found = log->segs[i]->base_offset == base;
        if (!found) {
            char *path = xasprintf("%s/%s", log->dir, de->d_name);
            unlink(path);
            free(path);
        }
    }
    closedir(d);
}

static void log_unlink_segment(const char *dir, int64_t base_offset)
{
    segment_t *seg = xcalloc(1, sizeof(*seg));
    seg->base_offset = base_offset;
    seg->log_fd = -1;
    segment_delete(dir, seg);
}

static void log_free(partition_log_t *log)
{
    assert(log->life->log == log);
    log->life->log = NULL;
    log_life_release(log->life);
    for (int i = 0; i < log->nsegs; i++)
        segment_close(log->segs[i]);
    free(log->segs);
    free(log->epochs);
    free(log->dir);
    free(log);
}

/* ---- open / close ---- */

log_err_t partition_log_open(const char *dir, const log_config_t *cfg, int64_t recovery_point,
                             bool clean_shutdown, partition_log_t **out)
{
    assert(dir != NULL && cfg != NULL && out != NULL);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        log_error("mkdir %s: %s", dir, strerror(errno));
        return LOG_ERR_IO;
    }
    partition_log_t *log = xcalloc(1, sizeof(*log));
    log->dir = xstrdup(dir);
    log->cfg = *cfg;
    log->life = xcalloc(1, sizeof(*log->life));
    log->life->log = log;
    log->life->refs = 1;
    atomic_init(&log->life->epoch_seq, 0);
    pthread_mutex_init(&log->life->epoch_mu, NULL);
    log->last_flush_ms = -1;
    log->hint_offset = -1;
    int64_t *bases = NULL;
    int nbases = 0;
    log_err_t err = log_list_segments(dir, &bases, &nbases);
    if (err != LOG_OK)
        goto fail;

    /* Unclean: segments from the one holding the recovery point on are
     * re-validated; earlier ones were fsync'd before the point moved past
     * them. */
    int recover_from = clean_shutdown ? nbases : 0;
    for (int i = 0; i < nbases && !clean_shutdown; i++)
        if (bases[i] <= recovery_point)
            recover_from = i;
    bool recovered_any = false;
    for (int i = 0; i < nbases; i++) {
        bool recover = i >= recover_from, truncated = false;
        segment_t *seg = NULL;
        if (log->nsegs > 0 && log_active(log)->next_offset != bases[i]) {
            VLOG_WARN("log",
                      "%s: segment %" PRId64 " does not follow offset %" PRId64
                      "; dropping it and later segments",
                      dir, bases[i], log_active(log)->next_offset);
            for (int j = i; j < nbases; j++)
                log_unlink_segment(dir, bases[j]);
            log->dir_dirty = true;
            break;
        }
        err = segment_open(dir, bases[i], log->cfg.index_interval_bytes, recover, &seg, &truncated);
        if (err != LOG_OK)
            goto fail;
        recovered_any = recovered_any || recover || seg->dirty;
        log_push_segment(log, seg);
        if (truncated && i + 1 < nbases) {
            VLOG_WARN("log", "%s: deleting %d segment(s) after the truncated one", dir,
                      nbases - i - 1);
            for (int j = i + 1; j < nbases; j++)
                log_unlink_segment(dir, bases[j]);
            log->dir_dirty = true;
            break;
        }
    }
    free(bases);
    bases = NULL;
    if (log->nsegs == 0) {
        segment_t *seg = NULL;
        err = segment_create(dir, 0, &seg);
        if (err != LOG_OK)
            goto fail;
        log_push_segment(log, seg);
        log->dir_dirty = true;
    }
    /* A non-empty trailing segment may be followed by an empty active one
     * only if it was rolled; never keep an empty segment in the middle. */
    err = segment_activate(dir, log_active(log));
    if (err != LOG_OK)
        goto fail;
    log_remove_orphan_indexes(log);

    int64_t end = log_active(log)->next_offset;
    log->start_offset = log->segs[0]->base_offset;
    log->high_watermark = log->start_offset;
    log->recovery_point = recovery_point < log->start_offset ? log->start_offset : recovery_point;
    if (log->recovery_point > end)
        log->recovery_point = end;
    log->unclean_from = clean_shutdown ? -1 : log->recovery_point;
    if (clean_shutdown || recovered_any) {
        /* Recovered bytes may still sit only in the page cache. */
        err = partition_log_flush(log);
        if (err != LOG_OK)
            goto fail;
    }
    log_load_epochs(log);
    log_epochs_truncate_end(log, end);
    log_epochs_truncate_start(log, log->start_offset);
    log_check_invariants(log);
    *out = log;
    return LOG_OK;
fail:
    free(bases);
    log_free(log);
    return err;
}

void partition_log_close(partition_log_t *log)
{
    if (log == NULL)
        return;
    if (log->sync_failed) {
        log_free(log); /* left for the next start's recovery */
        return;
    }
    if (segment_finish(log_active(log)) != LOG_OK || partition_log_flush(log) != LOG_OK)
        log_error("%s: flush on close failed; recovery will re-validate", log->dir);
    log_free(log);
}

void partition_log_abandon(partition_log_t *log)
{
    log_free(log);
}

/* With a pool: the directory is renamed away at once (Kafka's
 * "<topic>-<partition>.<id>-delete"; a partition created again gets a
 * fresh directory) and removed on the worker after every job queued for
 * it. */
static bool log_delete_async(partition_log_t *log)
{
    if (log->pool == NULL)
        return false;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    char *renamed = xasprintf("%s.%" PRIx64 "%09ld" LOG_DIR_DELETE_SUFFIX, log->dir,
                              (uint64_t)now.tv_sec, now.tv_nsec);
    if (rename(log->dir, renamed) != 0) {
        VLOG_WARN("log", "rename %s to %s: %s; deleting in place", log->dir, renamed,
                  strerror(errno));
        free(renamed);
        return false;
    }
    log_rmdir_job_t *job = xcalloc(1, sizeof(*job));
    job->life = log->life;
    job->dir = renamed;
    if (!log_submit(log, log_rmdir_job_work, log_rmdir_job_done, job)) {
        char err[512];
        if (log_remove_dir(renamed, err, sizeof(err)) != 0)
            log_error("%s", err);
        free(renamed);
        free(job);
    }
    return true;
}

log_err_t partition_log_delete(partition_log_t *log)
{
    assert(log != NULL);
    if (log_delete_async(log)) {
        log_free(log);
        return LOG_OK;
    }
    log_err_t rc = LOG_OK;
    char *dir = xstrdup(log->dir);
    for (int i = 0; i < log->nsegs; i++) {
        segment_delete(dir, log->segs[i]);
        log->segs[i] = NULL;
    }
    log->nsegs = 0;
    DIR *d = opendir(dir);
    if (d != NULL) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            char *path = xasprintf("%s/%s", dir, de->d_name);
            if (unlink(path) != 0)
                VLOG_WARN("log", "unlink %s: %s", path, strerror(errno));
            free(path);
        }
        closedir(d);
    }
    if (rmdir(dir) != 0) {
        log_error("rmdir %s: %s", dir, strerror(errno));
        rc = LOG_ERR_IO;
    }
    free(dir);
    log_free(log);
    return rc;
}

void partition_log_set_config(partition_log_t *log, const log_config_t *cfg)
{
    assert(log != NULL && cfg != NULL);
    log->cfg = *cfg;
}

const log_config_t *partition_log_config(const partition_log_t *log)
{
    return &log->cfg;
}

const char *partition_log_dir(const partition_log_t *log)
{
    return log->dir;
}

int64_t partition_log_start_offset(const partition_log_t *log)
{
    return log->start_offset;
}

int64_t partition_log_end_offset(const partition_log_t *log)
{
    return log_active(log)->next_offset;
}

int64_t partition_log_high_watermark(const partition_log_t *log)
{
    return log->high_watermark;
}

void partition_log_set_high_watermark(partition_log_t *log, int64_t hw)
{
    int64_t end = log_active(log)->next_offset;
    log->high_watermark = hw < log->start_offset ? log->start_offset : hw > end ? end : hw;
    assert(log->high_watermark >= log->start_offset && log->high_watermark <= end);
}

int64_t partition_log_unclean_from(const partition_log_t *log)
{
    assert(log->unclean_from >= -1);
    return log->unclean_from;
}

int64_t partition_log_recovery_point(const partition_log_t *log)
{
    return log->recovery_point;
}

int64_t partition_log_size_bytes(const partition_log_t *log)
{
    int64_t total = 0;
    for (int i = 0; i < log->nsegs; i++)
        total += log->segs[i]->size;
    return total;
}

/* ---- append ---- */

static log_err_t log_roll(partition_log_t *log)
{
    segment_t *old = log_active(log);
    assert(old->size > 0);
    log_err_t err = segment_finish(old);
    if (err != LOG_OK)
        return err;
    segment_t *seg = NULL;
    err = segment_create(log->dir, old->next_offset, &seg);
    if (err != LOG_OK) {
        segment_activate(log->dir, old);
        return err;
    }
    log_push_segment(log, seg);
    log->dir_dirty = true;
    VLOG_DEBUG("log", "%s: rolled to segment %" PRId64, log->dir, seg->base_offset);
    return LOG_OK;
}

/* Rolls before an append of len bytes and `records` offsets if the active
 * segment is full, too old, or could not index the new offsets. */
static log_err_t log_maybe_roll(partition_log_t *log, size_t len, int64_t records, int64_t now_ms)
{
    segment_t *seg = log_active(log);
    if (seg->size == 0)
        return LOG_OK;
    bool full =
        seg->size + (int64_t)len > log->cfg.segment_bytes || seg->size + (int64_t)len > INT32_MAX;
    bool old = seg->roll_base_ms >= 0 && now_ms - seg->roll_base_ms >= log->cfg.segment_ms;
    bool offsets = seg->next_offset + records - 1 - seg->base_offset > INT32_MAX;
    bool index_full =
        (int64_t)seg->index_count >= log->cfg.segment_index_bytes / OFFSET_INDEX_ENTRY_SIZE ||
        (int64_t)seg->time_index_count >= log->cfg.segment_index_bytes / TIME_INDEX_ENTRY_SIZE;
    if (full || old || offsets || index_full)
        return log_roll(log);
    return LOG_OK;
}

/* Writes validated batches to the active segment and indexes them. */
static log_err_t log_write_batches(partition_log_t *log, const uint8_t *batches, size_t len,
                                   int64_t now_ms)
{
    if (log->sync_failed)
        return LOG_ERR_IO;
    segment_t *seg = log_active(log);
    int64_t position = seg->size;
    const uint8_t *p = batches;
    int fd = segment_log_fd(seg); /* reopened if the cache evicted it */
    if (fd < 0)
        return LOG_ERR_IO;
    if (log_pwrite_all(fd, batches, len, (off_t)position) != 0) {
        log_error("%s: write segment %" PRId64 ": %s", log->dir, seg->base_offset, strerror(errno));
        /* All-or-nothing: cut whatever part did land. */
        if (ftruncate(fd, (off_t)position) != 0)
            log_error("%s: truncate after failed write: %s", log->dir, strerror(errno));
        return LOG_ERR_IO;
    }
    while (p < batches + len) {
        batch_header_t h;
        batch_header_decode(p, &h);
        assert(h.base_offset == seg->next_offset);
        segment_index_batch(seg, log->cfg.index_interval_bytes, position, batch_last_offset(&h),
                            h.max_timestamp, batch_size(&h));
        seg->next_offset = batch_last_offset(&h) + 1;
        position += batch_size(&h);
        p += batch_size(&h);
    }
    seg->size = position;
    if (seg->roll_base_ms < 0)
        seg->roll_base_ms = now_ms;
    if (seg->index_count - seg->index_written >= SEGMENT_INDEX_WRITE_CHUNK ||
        seg->time_index_count - seg->time_index_written >= SEGMENT_INDEX_WRITE_CHUNK)
        return segment_write_pending_index(seg);
    return LOG_OK;
}

/* The append result before anything is appended: no offsets, no times. */
static void append_info_reset(log_append_info_t *info)
{
    memset(info, 0, sizeof(*info));
    info->first_offset = info->last_offset = -1;
    info->max_timestamp = -1;
    info->log_append_time = -1;
}

static log_err_t log_after_append(partition_log_t *log, int64_t records)
{
    log->unflushed_messages += records;
    if (log->unflushed_messages >= log->cfg.flush_messages)
        return log_flush_async(log);
    return LOG_OK;
}

/* The leader's append of batches validated by the caller (`records` records
 * in `nbatches` batches): assigns offsets and the leader epoch in place,
 * stamps LogAppendTime when configured, writes. */
static log_err_t log_append_validated(partition_log_t *log, uint8_t *batches, size_t len,
                                      int64_t records, int32_t nbatches, int32_t leader_epoch,
                                      int64_t now_ms, log_append_info_t *info)
{
    assert(len > 0 && len <= INT32_MAX);
    assert(records > 0 && nbatches > 0);
    log_err_t err = log_maybe_roll(log, len, records, now_ms);
    if (err != LOG_OK)
        return err;

    int64_t first = log_active(log)->next_offset, next = first;
    for (size_t pos = 0; pos < len;) {
        uint8_t *p = batches + pos;
        batch_header_t h;
        batch_header_decode(p, &h);
        log_put_be64(p + BATCH_BASE_OFFSET, (uint64_t)next);
        log_put_be32(p + BATCH_LEADER_EPOCH, (uint32_t)leader_epoch);
        if (log->cfg.log_append_time) {
            /* Attributes and MaxTimestamp are under the CRC. */
            uint16_t attrs = (uint16_t)h.attributes | BATCH_ATTR_LOG_APPEND_TIME;
            p[BATCH_ATTRIBUTES] = (uint8_t)(attrs >> 8);
            p[BATCH_ATTRIBUTES + 1] = (uint8_t)attrs;
            log_put_be64(p + BATCH_MAX_TIMESTAMP, (uint64_t)now_ms);
            h.max_timestamp = now_ms;
            log_put_be32(p + BATCH_CRC, crc32c(0, p + BATCH_ATTRIBUTES,
                                               (size_t)batch_size(&h) - BATCH_ATTRIBUTES));
        }
        if (h.max_timestamp > info->max_timestamp)
            info->max_timestamp = h.max_timestamp;
        next += h.records_count;
        pos += (size_t)batch_size(&h);
    }
    err = log_write_batches(log, batches, len, now_ms);
    if (err != LOG_OK)
        return err;
    assert(log_active(log)->next_offset == next);
    log_assign_epoch(log, leader_epoch, first);
    info->first_offset = first;
    info->last_offset = next - 1;
    info->log_append_time = log->cfg.log_append_time ? now_ms : -1;
    info->batch_count = nbatches;
    info->record_count = (int32_t)records;
    log_check_invariants(log);
    return log_after_append(log, records);
}

log_err_t partition_log_validate(const partition_log_t *log, const uint8_t *batches, size_t len,
                                 log_validated_t *out)
{
    assert(log != NULL && out != NULL);
    out->records = 0;
    out->nbatches = 0;
    out->len = len;
    if (len == 0 || len > INT32_MAX)
        return LOG_ERR_BAD_LENGTH;
    for (size_t pos = 0; pos < len;) {
        batch_header_t h;
        size_t size;
        log_err_t err =
            batch_validate(batches + pos, len - pos, log->cfg.max_message_bytes, true, &h, &size);
        if (err != LOG_OK)
            return err;
        out->records += h.records_count;
        out->nbatches++;
        pos += size;
    }
    assert(out->records > 0 && out->nbatches > 0);
    return LOG_OK;
}

log_err_t partition_log_append_validated(partition_log_t *log, uint8_t *batches,
                                         const log_validated_t *v, int32_t leader_epoch,
                                         int64_t now_ms, log_append_info_t *info)
{
    assert(log != NULL && info != NULL && v != NULL);
    assert(v->nbatches > 0 && v->len > 0);
    append_info_reset(info);
    return log_append_validated(log, batches, v->len, v->records, v->nbatches, leader_epoch, now_ms,
                                info);
}

log_err_t partition_log_append(partition_log_t *log, uint8_t *batches, size_t len,
                               int32_t leader_epoch, int64_t now_ms, log_append_info_t *info)
{
    assert(log != NULL && info != NULL);
    append_info_reset(info);
    log_validated_t v;
    log_err_t err = partition_log_validate(log, batches, len, &v);
    if (err != LOG_OK)
        return err;
    return partition_log_append_validated(log, batches, &v, leader_epoch, now_ms, info);
}

log_err_t partition_log_append_control(partition_log_t *log, uint8_t *batch, size_t len,
                                       int32_t leader_epoch, int64_t now_ms,
                                       log_append_info_t *info)
{
    assert(log != NULL && info != NULL);
    append_info_reset(info);
    if (len == 0 || len > INT32_MAX)
        return LOG_ERR_BAD_LENGTH;
    batch_header_t h;
    size_t size;
    log_err_t err = batch_validate(batch, len, log->cfg.max_message_bytes, false, &h, &size);
    if (err != LOG_OK)
        return err;
    if (size != len)
        return LOG_ERR_BAD_LENGTH;
    assert(record_batch_is_control(&h)); /* the broker built it */
    return log_append_validated(log, batch, len, h.records_count, 1, leader_epoch, now_ms, info);
}

log_err_t partition_log_append_replica(partition_log_t *log, const uint8_t *batches, size_t len,
                                       log_append_info_t *info)
{
    assert(log != NULL && info != NULL);
    append_info_reset(info);
    if (len == 0 || len > INT32_MAX)
        return LOG_ERR_BAD_LENGTH;
    int64_t expected = log_active(log)->next_offset, records = 0;
    int32_t nbatches = 0;
    for (size_t pos = 0; pos < len;) {
        batch_header_t h;
        size_t size;
        log_err_t err = batch_validate(batches + pos, len - pos, -1, false, &h, &size);
        if (err != LOG_OK)
            return err;
        if (h.base_offset > expected)
            return LOG_ERR_GAP;
        if (h.base_offset < expected)
            return LOG_ERR_OVERLAP;
        if (h.max_timestamp > info->max_timestamp)
            info->max_timestamp = h.max_timestamp;
        expected = batch_last_offset(&h) + 1;
        records += h.records_count;
        nbatches++;
        pos += size;
    }
    int64_t now_ms = wall_clock_ms();
    log_err_t err = log_maybe_roll(log, len, records, now_ms);
    if (err != LOG_OK)
        return err;
    int64_t first = log_active(log)->next_offset;
    err = log_write_batches(log, batches, len, now_ms);
    if (err != LOG_OK)
        return err;
    for (size_t pos = 0; pos < len;) {
        batch_header_t h;
        batch_header_decode(batches + pos, &h);
        log_assign_epoch(log, h.leader_epoch, h.base_offset);
        pos += (size_t)batch_size(&h);
    }
    info->first_offset = first;
    info->last_offset = expected - 1;
    info->batch_count = nbatches;
    info->record_count = (int32_t)records;
    log_check_invariants(log);
    return log_after_append(log, records);
}

/* ---- read ---- */

/* Where to stop reading seg from position `from` (a batch boundary): before
 * the first batch that would end past from + budget (unless it is the very
 * first one and force_first) or whose last offset is >= max_offset. */
static log_err_t log_segment_cut(segment_t *seg, int64_t from, int64_t budget, int64_t max_offset,
                                 bool force_first, int64_t *cut, int64_t *cut_offset)
{
    int64_t limit = from + (budget > 0 ? budget : 0);
    if (seg->next_offset <= max_offset && seg->size <= limit) {
        *cut = seg->size;
        *cut_offset = seg->next_offset;
        return LOG_OK;
    }
    /* Every batch before either floor satisfies both bounds. */
    int64_t by_bytes = segment_floor_by_position(seg, limit);
    int64_t by_offset = segment_floor_by_offset(seg, max_offset);
    int64_t pos = by_bytes < by_offset ? by_bytes : by_offset;
    if (pos < from)
        pos = from;
    int64_t next = -1;
    while (pos < seg->size) {
        batch_header_t h;
        log_err_t err = segment_read_header(seg, pos, &h);
        if (err != LOG_OK)
            return err;
        if (next < 0)
            next = h.base_offset;
        if (batch_last_offset(&h) >= max_offset)
            break;
        if (pos + batch_size(&h) > limit && !(force_first && pos == from))
            break;
        pos += batch_size(&h);
        next = batch_last_offset(&h) + 1;
        if (pos >= limit)
            break; /* any further batch would pass the byte limit */
    }
    *cut = pos;
    *cut_offset = pos == seg->size ? seg->next_offset : next;
    assert(*cut >= from && *cut <= seg->size);
    return LOG_OK;
}

void partition_log_read_release(log_read_t *rd)
{
    for (int i = 0; i < rd->nranges; i++) {
        if (rd->ranges[i].fd >= 0)
            close(rd->ranges[i].fd);
        rd->ranges[i].fd = -1;
    }
    rd->nranges = 0;
}

log_err_t partition_log_read(partition_log_t *log, int64_t offset, int64_t max_bytes,
                             int64_t max_offset, log_read_t *out)
{
    assert(log != NULL && out != NULL);
    memset(out, 0, sizeof(*out));
    for (int i = 0; i < LOG_READ_MAX_RANGES; i++)
        out->ranges[i].fd = -1;
    out->first_offset = out->next_offset = offset;
    if (log->sync_failed)
        return LOG_ERR_IO; /* the page cache may hold what the disk lost */
    int64_t end = log_active(log)->next_offset;
    if (offset < log->start_offset || offset > end)
        return LOG_ERR_OUT_OF_RANGE;
    if (offset == end || offset >= max_offset)
        return LOG_OK;
    int i = log_find_segment(log, offset);
    int64_t pos;
    log_err_t err = LOG_OK;
    if (offset == log->hint_offset && log->segs[i]->base_offset == log->hint_base) {
        pos = log->hint_position;
        out->first_offset = offset;
    } else {
        batch_header_t h;
        err = segment_find_batch(log->segs[i], offset, &pos, &h);
        if (err != LOG_OK)
            return err;
        out->first_offset = h.base_offset;
    }
    assert(pos < log->segs[i]->size);
    int64_t budget = max_bytes;
    for (; i < log->nsegs && out->nranges < LOG_READ_MAX_RANGES; i++, pos = 0) {
        segment_t *seg = log->segs[i];
        int64_t cut, cut_offset;
        err = log_segment_cut(seg, pos, budget, max_offset, out->nranges == 0, &cut, &cut_offset);
        if (err != LOG_OK)
            break;
        if (cut > pos) {
            /* A dup: the range stays readable whatever the cache closes. */
            int fd = segment_dup_log_fd(seg);
            if (fd < 0) {
                err = LOG_ERR_IO;
                break;
            }
            out->ranges[out->nranges++] = (log_file_range_t){fd, pos, cut - pos};
            out->total_bytes += cut - pos;
            budget -= cut - pos;
            out->next_offset = cut_offset;
            log->hint_offset = cut_offset;
            log->hint_base = seg->base_offset;
            log->hint_position = cut;
        }
        if (cut < seg->size || budget <= 0)
            break;
    }
    if (err != LOG_OK) {
        partition_log_read_release(out);
        out->total_bytes = 0;
        out->next_offset = offset;
        return err;
    }
    assert(out->next_offset <= end && out->next_offset <= (max_offset > end ? end : max_offset));
    return LOG_OK;
}

log_err_t partition_log_read_copy(partition_log_t *log, int64_t offset, int64_t max_bytes,
                                  int64_t max_offset, uint8_t **out, size_t *out_len,
                                  int64_t *next_offset)
{
    assert(out != NULL && out_len != NULL && next_offset != NULL);
    *out = NULL;
    *out_len = 0;
    *next_offset = offset;
    log_read_t rd;
    log_err_t err = partition_log_read(log, offset, max_bytes, max_offset, &rd);
    if (err != LOG_OK)
        return err;
    *next_offset = rd.nranges > 0 ? rd.next_offset : offset;
    uint8_t *buf = rd.total_bytes > 0 ? xmalloc((size_t)rd.total_bytes) : NULL;
    size_t at = 0;
    for (int i = 0; i < rd.nranges && err == LOG_OK; i++) {
        const log_file_range_t *r = &rd.ranges[i];
        if (log_pread_all(r->fd, buf + at, (size_t)r->length, (off_t)r->position) != r->length)
            err = LOG_ERR_IO;
        at += (size_t)r->length;
    }
    partition_log_read_release(&rd);
    if (err != LOG_OK) {
        free(buf);
        *next_offset = offset;
        return err;
    }
    assert(at == (size_t)rd.total_bytes);
    *out = buf;
    *out_len = at;
    return LOG_OK;
}

/* ---- offsets for timestamps ---- */

log_err_t partition_log_offset_for_time(partition_log_t *log, int64_t ts, int64_t *offset,
                                        int64_t *timestamp)
{
    assert(offset != NULL && timestamp != NULL);
    *offset = -1;
    *timestamp = -1;
    for (int i = 0; i < log->nsegs; i++) {
        segment_t *seg = log->segs[i];
        if (seg->size == 0 || seg->max_timestamp < ts)
            continue;
        for (int64_t pos = segment_floor_by_time(seg, ts); pos < seg->size;) {
            batch_header_t h;
            log_err_t err = segment_read_header(seg, pos, &h);
            if (err != LOG_OK)
                return err;
            if (h.max_timestamp < ts) {
                pos += batch_size(&h);
                continue;
            }
            *offset = h.base_offset;
            *timestamp = h.max_timestamp;
            /* CreateTime, uncompressed: the first record at or after ts. */
            if ((h.attributes & (BATCH_ATTR_CODEC_MASK | BATCH_ATTR_LOG_APPEND_TIME)) == 0) {
                size_t size = (size_t)batch_size(&h);
                uint8_t *buf = xmalloc(size);
                int64_t rec_offset, rec_ts;
                int fd = segment_log_fd(seg);
                if (fd >= 0 && log_pread_all(fd, buf, size, (off_t)pos) == (ssize_t)size &&
                    batch_find_timestamp(buf, size, ts, &rec_offset, &rec_ts) == 0) {
                    *offset = rec_offset;
                    *timestamp = rec_ts;
                }
                free(buf);
            }
            assert(*offset >= log->start_offset);
            return LOG_OK;
        }
    }
    return LOG_OK;
}

/* ---- truncation ---- */

/* Drops the aborted-transaction entries with last_offset >= offset from
 * every segment's index (a cheap check for those without any). */
static log_err_t log_drop_txns_from(partition_log_t *log, int64_t offset)
{
    log_err_t first_err = LOG_OK;
    for (int i = 0; i < log->nsegs; i++) {
        log_err_t err = txn_index_truncate(log->segs[i], offset);
        if (first_err == LOG_OK)
            first_err = err;
    }
    return first_err;
}

/* The log end moved back: the epochs and the aborted-transaction entries at
 * or past it go, and the high watermark and recovery point come down to
 * it. */
static log_err_t log_follow_end(partition_log_t *log)
{
    int64_t end = log_active(log)->next_offset;
    log_epochs_truncate_end(log, end);
    if (log->high_watermark > end)
        log->high_watermark = end;
    if (log->recovery_point > end)
        log->recovery_point = end;
    return log_drop_txns_from(log, end);
}

log_err_t partition_log_truncate_to(partition_log_t *log, int64_t offset)
{
    assert(log != NULL);
    if (offset < log->start_offset)
        return LOG_ERR_OUT_OF_RANGE;
    if (offset >= log_active(log)->next_offset)
        return LOG_OK;
    int i = log_find_segment(log, offset);
    segment_t *seg = log->segs[i];
    int64_t pos;
    batch_header_t h;
    log_err_t err = segment_find_batch(seg, offset, &pos, &h);
    if (err != LOG_OK)
        return err;
    log->truncate_gen++;
    /* A batch is kept or dropped whole: truncating inside one drops it. */
    int64_t new_end = pos < seg->size ? h.base_offset : seg->next_offset;
    if (i + 1 < log->nsegs)
        segment_finish(log_active(log));
    log_drop_segments_from(log, i + 1);
    err = segment_activate(log->dir, seg);
    if (err == LOG_OK)
        err = segment_truncate(seg, pos, new_end);
    if (err == LOG_OK)
        err = segment_write_pending_index(seg);
    /* Later segments are gone even when the OS refused the rest: the high
     * watermark, recovery point and epochs follow whatever end the log has
     * now, as truncate_fully does on its failure path. */
    log->hint_offset = -1;
    log_err_t txn_err = log_follow_end(log);
    log_check_invariants(log);
    return err != LOG_OK ? err : txn_err;
}

log_err_t partition_log_truncate_fully(partition_log_t *log, int64_t offset)
{
    assert(log != NULL);
    if (offset < 0)
        return LOG_ERR_OUT_OF_RANGE;
    /* The new segment exists before the last old one goes, so that a
     * refusal by the OS leaves a consistent, if shorter, log. */
    log->hint_offset = -1;
    log->truncate_gen++;
    log_drop_segments_from(log, 1);
    segment_t *old = log->segs[0];
    segment_t *seg = NULL;
    log_err_t err = segment_create(log->dir, offset, &seg);
    if (err != LOG_OK) {
        log_error("%s: cannot start a segment at %" PRId64, log->dir, offset);
        (void)log_follow_end(log); /* err says the log is not what was asked for */
        log_check_invariants(log);
        return err;
    }
    /* Same base: segment_create already emptied these very files. */
    if (old->base_offset == offset)
        segment_close(old);
    else
        log_discard_segment(log, old);
    log->nsegs = 0;
    log_push_segment(log, seg);
    log->dir_dirty = true;
    log->start_offset = log->high_watermark = log->recovery_point = offset;
    log->unflushed_messages = 0;
    log->nepochs = 0;
    log_write_epochs(log, true); /* Kafka's clearAndFlush: synchronous */
    log_check_invariants(log);
    return LOG_OK;
}

/* ---- aborted transactions ---- */

log_err_t partition_log_add_aborted_txn(partition_log_t *log, int64_t producer_id,
                                        int64_t first_offset, int64_t last_offset,
                                        int64_t last_stable_offset)
{
    assert(log != NULL);
    const int64_t end = log_active(log)->next_offset;
    if (last_offset < log->start_offset || last_offset >= end || first_offset > last_offset)
        return LOG_ERR_OUT_OF_RANGE;
    /* Entries are in last_offset order across segments too, so the latest
     * is in the last segment that has any. */
    for (int i = log->nsegs - 1; i >= 0; i--) {
        if (log->segs[i]->txn_entries > 0) {
            if (last_offset <= log->segs[i]->txn_last_offset)
                return LOG_ERR_OUT_OF_RANGE;
            break;
        }
    }
    segment_t *seg = log->segs[log_find_segment(log, last_offset)];
    const log_aborted_txn_t e = {producer_id, first_offset, last_offset, last_stable_offset};
    bool created;
    log_err_t err = txn_index_append(seg, &e, &created);
    if (created)
        log->dir_dirty = true;
    assert(err != LOG_OK || seg->txn_last_offset == last_offset);
    return err;
}

log_err_t partition_log_collect_aborted_txns(partition_log_t *log, int64_t fetch_offset,
                                             int64_t upper_bound, log_aborted_txn_t *out,
                                             size_t max, size_t *n)
{
    assert(log != NULL && n != NULL);
    assert(out != NULL || max == 0);
    *n = 0;
    const int first = fetch_offset <= log->start_offset ? 0 : log_find_segment(log, fetch_offset);
    bool complete = false;
    for (int i = first; i < log->nsegs && !complete && *n < max; i++) {
        if (log->segs[i]->txn_entries == 0)
            continue;
        log_err_t err =
            txn_index_collect(log->segs[i], fetch_offset, upper_bound, out, max, n, &complete);
        if (err != LOG_OK)
            return err;
    }
    assert(*n <= max);
    return LOG_OK;
}

log_err_t partition_log_drop_aborted_txns_from(partition_log_t *log, int64_t offset)
{
    assert(log != NULL);
    return log_drop_txns_from(log, offset);
}

int64_t partition_log_active_segment_base(const partition_log_t *log)
{
    return log_active(log)->base_offset;
}

/* ---- flush, retention, periodic work ---- */

log_err_t partition_log_flush(partition_log_t *log)
{
    assert(log != NULL);
    if (log->sync_failed)
        return LOG_ERR_IO;
    if (log->flush_in_flight) {
        /* Their fsync has not completed: not flushed yet. */
        for (int i = 0; i < log->nsegs; i++)
            log->segs[i]->dirty = true;
        log->dir_dirty = true;
    }
    for (int i = 0; i < log->nsegs; i++) {
        log_err_t err = segment_sync(log->dir, log->segs[i]);
        if (err != LOG_OK) {
            /* segment_sync logged the cause with the path. */
            log_sync_failed(log);
            return err;
        }
    }
    if (log->dir_dirty) {
        if (log_fsync_dir(log->dir) != 0) {
            log_error("fsync %s: %s", log->dir, strerror(errno));
            log_sync_failed(log);
            return LOG_ERR_IO;
        }
        log->dir_dirty = false;
    }
    log->recovery_point = log_active(log)->next_offset;
    log->unflushed_messages = 0;
    return LOG_OK;
}

/* A segment's age for retention.ms: its greatest timestamp, or its file's
 * mtime when no batch carried one. */
static int64_t log_segment_time(const segment_t *seg)
{
    if (seg->max_timestamp >= 0)
        return seg->max_timestamp;
    struct stat st;
    if (stat(seg->log_path, &st) != 0)
        return INT64_MAX;
    return (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
}

static int log_apply_retention(partition_log_t *log, int64_t now_ms)
{
    int drop = 0;
    if (!log->cfg.cleanup_delete)
        return 0; /* compact only: records leave only by compaction */
    int64_t total = partition_log_size_bytes(log);
    /* Whole segments from the front, never the active one, never data the
     * high watermark has not passed. */
    while (drop < log->nsegs - 1 && log->segs[drop]->next_offset <= log->high_watermark) {
        const segment_t *seg = log->segs[drop];
        bool expired =
            log->cfg.retention_ms >= 0 && now_ms - log_segment_time(seg) > log->cfg.retention_ms;
        bool oversize =
            log->cfg.retention_bytes >= 0 && total - seg->size >= log->cfg.retention_bytes;
        if (!expired && !oversize)
            break;
        total -= seg->size;
        drop++;
    }
    if (drop == 0)
        return 0;
    segment_t **dropped = xmalloc((size_t)drop * sizeof(*dropped));
    memcpy(dropped, log->segs, (size_t)drop * sizeof(*log->segs));
    memmove(log->segs, log->segs + drop, (size_t)(log->nsegs - drop) * sizeof(*log->segs));
    log->nsegs -= drop;
    for (int i = 0; i < drop; i++) {
        VLOG_INFO("log", "%s: retention deletes segment %" PRId64, log->dir,
                  dropped[i]->base_offset);
        log_discard_segment(log, dropped[i]);
    }
    free(dropped);
    log->hint_offset = -1;
    log->start_offset = log->segs[0]->base_offset;
    if (log->recovery_point < log->start_offset)
        log->recovery_point = log->start_offset;
    log_epochs_truncate_start(log, log->start_offset);
    log_check_invariants(log);
    return drop;
}

int partition_log_tick(partition_log_t *log, int64_t now_ms)
{
    assert(log != NULL);
    if (log->sync_failed)
        return 0;
    segment_t *active = log_active(log);
    if (active->size > 0 && active->roll_base_ms >= 0 &&
        now_ms - active->roll_base_ms >= log->cfg.segment_ms)
        log_roll(log);
    if (log->last_flush_ms < 0)
        log->last_flush_ms = now_ms;
    if (log->unflushed_messages > 0 && now_ms - log->last_flush_ms >= log->cfg.flush_ms) {
        if (log_flush_async(log) == LOG_OK)
            log->last_flush_ms = now_ms;
    }
    return log_apply_retention(log, now_ms);
}

int16_t log_err_kafka_error(log_err_t err)
{
    switch (err) {
    case LOG_OK:
        return KAFKA_NONE;
    case LOG_ERR_BAD_MAGIC:
        return KAFKA_UNSUPPORTED_FOR_MESSAGE_FORMAT;
    case LOG_ERR_BAD_CRC:
    case LOG_ERR_BAD_LENGTH:
        return KAFKA_CORRUPT_MESSAGE;
    case LOG_ERR_BAD_COUNT:
    case LOG_ERR_CONTROL_BATCH:
        return KAFKA_INVALID_RECORD;
    case LOG_ERR_TOO_LARGE:
        return KAFKA_MESSAGE_TOO_LARGE;
    case LOG_ERR_OUT_OF_RANGE:
        return KAFKA_OFFSET_OUT_OF_RANGE;
    case LOG_ERR_IO:
    case LOG_ERR_LOCKED:
        return KAFKA_KAFKA_STORAGE_ERROR;
    case LOG_ERR_GAP:
    case LOG_ERR_OVERLAP:
        break;
    }
    return KAFKA_UNKNOWN_SERVER_ERROR;
}
