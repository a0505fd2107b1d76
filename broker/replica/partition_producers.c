#include "partition_producers.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "record_batch.h"
#include "vlog.h"
#include "xalloc.h"

#define PP_MODULE "replica"
/* A replay reads the log in steps of this many bytes. */
#define PP_REPLAY_STEP_BYTES (4 << 20)
/* Snapshot file name: 20 digits and ".snapshot". */
#define PP_SNAPSHOT_SUFFIX ".snapshot"
/* Most snapshot files one directory listing considers. */
#define PP_MAX_SNAPSHOT_FILES 1024
/* Largest snapshot file read: the most producers a state holds. */
#define PP_MAX_SNAPSHOT_BYTES (64 + (size_t)PRODUCER_STATE_HARD_MAX_PRODUCERS * 46)

static void snapshot_path(const partition_log_t *log, int64_t offset, char *out, size_t size)
{
    assert(offset >= 0);
    snprintf(out, size, "%s/%020" PRId64 PP_SNAPSHOT_SUFFIX, partition_log_dir(log), offset);
}

static int cmp_offsets(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The snapshot offsets in the log's directory, ascending; *out is the
 * caller's (xmalloc'd). */
static size_t snapshot_list(const partition_log_t *log, int64_t **out)
{
    *out = NULL;
    DIR *d = opendir(partition_log_dir(log));
    if (d == NULL)
        return 0;
    size_t n = 0, cap = 0;
    int64_t *offsets = NULL;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n < PP_MAX_SNAPSHOT_FILES) {
        size_t len = strlen(de->d_name);
        if (len != 20 + strlen(PP_SNAPSHOT_SUFFIX) ||
            strcmp(de->d_name + 20, PP_SNAPSHOT_SUFFIX) != 0)
            continue;
        char *end;
        long long v = strtoll(de->d_name, &end, 10);
        if (end != de->d_name + 20 || v < 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            offsets = xrealloc(offsets, cap * sizeof(*offsets));
        }
        offsets[n++] = v;
    }
    closedir(d);
    if (n > 1)
        qsort(offsets, n, sizeof(*offsets), cmp_offsets);
    *out = offsets;
    return n;
}

static void snapshot_delete(const partition_log_t *log, int64_t offset)
{
    char path[4096];
    snapshot_path(log, offset, path, sizeof(path));
    if (unlink(path) != 0 && errno != ENOENT)
        VLOG_WARN(PP_MODULE, "cannot delete %s: %s", path, strerror(errno));
}

/* Reads and loads one snapshot: 0, or -1 (the state is then empty). */
static int snapshot_load(producer_state_t *s, const partition_log_t *log, int64_t offset)
{
    char path[4096];
    snapshot_path(log, offset, path, sizeof(path));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    int rc = -1;
    if (fstat(fd, &st) == 0 && st.st_size > 0 && (size_t)st.st_size <= PP_MAX_SNAPSHOT_BYTES) {
        size_t len = (size_t)st.st_size;
        uint8_t *buf = xmalloc(len);
        size_t got = 0;
        while (got < len) {
            ssize_t r = read(fd, buf + got, len - got);
            if (r <= 0 && !(r < 0 && errno == EINTR))
                break;
            if (r > 0)
                got += (size_t)r;
        }
        if (got == len)
            rc = producer_state_snapshot_load(s, buf, len);
        free(buf);
    }
    close(fd);
    if (rc != 0)
        producer_state_clear(s);
    return rc;
}

static void snapshot_write(const producer_state_t *s, const partition_log_t *log, int64_t offset)
{
    char path[4096], tmp[4200];
    snapshot_path(log, offset, path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    size_t len = producer_state_snapshot_size(s);
    uint8_t *buf = xmalloc(len);
    producer_state_snapshot_write(s, buf);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    bool ok = fd >= 0;
    size_t done = 0;
    while (ok && done < len) {
        ssize_t w = write(fd, buf + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        ok = w > 0;
        if (ok)
            done += (size_t)w;
    }
    /* Renamed only once whole on disk: a crash leaves the old files. */
    ok = ok && fsync(fd) == 0;
    if (fd >= 0)
        close(fd);
    ok = ok && rename(tmp, path) == 0;
    if (!ok) {
        VLOG_WARN(PP_MODULE, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
    }
    free(buf);
}

/* Deletes snapshots below the log start and all but the newest kept. */
static void snapshot_trim(const partition_log_t *log)
{
    int64_t *offsets;
    size_t n = snapshot_list(log, &offsets);
    int64_t start = partition_log_start_offset(log);
    for (size_t i = 0; i < n; i++)
        if (offsets[i] < start || i + 1 + PARTITION_PRODUCERS_SNAPSHOTS_KEPT < n)
            snapshot_delete(log, offsets[i]);
    free(offsets);
}

static void apply_batches(partition_producers_t *pp, partition_log_t *log, const uint8_t *p,
                          size_t len)
{
    record_batch_header_t h;
    while (record_batch_read_header(p, len, &h) && h.length >= 0 &&
           (uint64_t)record_batch_size(&h) <= len) {
        size_t size = (size_t)record_batch_size(&h);
        int64_t last = record_batch_last_offset(&h);
        if (h.producer_id >= 0 && h.producer_epoch >= 0 && last >= h.base_offset) {
            if (record_batch_is_control(&h)) {
                int32_t coordinator_epoch;
                int type = record_batch_parse_txn_marker(p, size, &coordinator_epoch);
                producer_state_completed_txn_t done;
                if (type >= 0 &&
                    producer_state_end_txn(pp->state, h.producer_id, h.producer_epoch,
                                           coordinator_epoch, h.base_offset, h.max_timestamp, false,
                                           &done) == PRODUCER_STATE_OK &&
                    type == RECORD_BATCH_MARKER_ABORT && done.first_offset >= 0) {
                    log_err_t err =
                        partition_log_add_aborted_txn(log, h.producer_id, done.first_offset,
                                                      done.last_offset, done.last_stable_offset);
                    if (err != LOG_OK)
                        VLOG_WARN(PP_MODULE, "%s: cannot index the aborted transaction at %lld: %s",
                                  partition_log_dir(log), (long long)done.last_offset,
                                  log_err_str(err));
                }
            } else {
                int32_t first_seq = h.base_sequence;
                int32_t last_seq = first_seq >= 0 ? record_batch_last_sequence(&h) : -1;
                producer_state_update(pp->state, h.producer_id, h.producer_epoch, first_seq,
                                      last_seq, h.base_offset, last, h.max_timestamp,
                                      record_batch_is_transactional(&h));
            }
        }
        p += size;
        len -= size;
    }
}

static void replay(partition_producers_t *pp, partition_log_t *log, int64_t from)
{
    int64_t end = partition_log_end_offset(log);
    int64_t offset = from;
    while (offset < end) {
        uint8_t *buf;
        size_t len;
        int64_t next;
        log_err_t err =
            partition_log_read_copy(log, offset, PP_REPLAY_STEP_BYTES, end, &buf, &len, &next);
        if (err != LOG_OK || len == 0 || next <= offset) {
            free(buf);
            if (err != LOG_OK)
                VLOG_ERR(PP_MODULE, "%s: producer state replay stopped at %lld: %s",
                         partition_log_dir(log), (long long)offset, log_err_str(err));
            break;
        }
        apply_batches(pp, log, buf, len);
        free(buf);
        offset = next;
    }
}

/* Loads the newest usable snapshot at or below `below` (and the log end)
 * and replays the log from it; with no snapshot, replays from
 * `no_snapshot_from` (at least the log start). */
static void rebuild(partition_producers_t *pp, partition_log_t *log, int64_t below,
                    int64_t no_snapshot_from)
{
    assert(pp->state != NULL && log != NULL);
    int64_t end = partition_log_end_offset(log);
    int64_t start = partition_log_start_offset(log);
    if (below > end)
        below = end;
    int64_t *offsets;
    size_t n = snapshot_list(log, &offsets);
    int64_t from = no_snapshot_from > start ? no_snapshot_from : start;
    producer_state_clear(pp->state);
    for (size_t i = n; i-- > 0;) {
        if (offsets[i] > below) {
            /* Beyond the log (it was truncated below it), or describing
             * bytes a crash may have lost. */
            snapshot_delete(log, offsets[i]);
            continue;
        }
        if (offsets[i] < start)
            break;
        if (snapshot_load(pp->state, log, offsets[i]) == 0) {
            from = offsets[i];
            break;
        }
        VLOG_WARN(PP_MODULE, "%s: producer snapshot %lld is corrupt; deleted",
                  partition_log_dir(log), (long long)offsets[i]);
        snapshot_delete(log, offsets[i]);
    }
    free(offsets);
    partition_log_drop_aborted_txns_from(log, from);
    replay(pp, log, from);
    producer_state_on_high_watermark(pp->state, partition_log_high_watermark(log));
    pp->snapshot_segment_base = partition_log_active_segment_base(log);
    assert(producer_state_count(pp->state) >= 0);
}

void partition_producers_rebuild(partition_producers_t *pp, partition_log_t *log)
{
    rebuild(pp, log, INT64_MAX, partition_log_start_offset(log));
}

void partition_producers_reset(partition_producers_t *pp, partition_log_t *log)
{
    if (partition_log_start_offset(log) != partition_log_end_offset(log)) {
        partition_producers_rebuild(pp, log); /* the truncation failed */
        return;
    }
    int64_t *offsets;
    size_t n = snapshot_list(log, &offsets);
    for (size_t i = 0; i < n; i++)
        snapshot_delete(log, offsets[i]);
    free(offsets);
    producer_state_clear(pp->state);
    pp->snapshot_segment_base = partition_log_active_segment_base(log);
}

void partition_producers_init(partition_producers_t *pp, partition_log_t *log)
{
    assert(pp != NULL && log != NULL);
    pp->state = producer_state_new();
    int64_t unclean_from = partition_log_unclean_from(log);
    if (unclean_from >= 0) {
        /* After a crash a snapshot above the recovery point may describe
         * batches (and .txnindex entries) that never reached the disk:
         * replay from at or below it. */
        rebuild(pp, log, unclean_from, partition_log_start_offset(log));
    } else {
        /* A clean stop wrote a snapshot at the log end. Without one (a log
         * from before producer state existed, or a failed write), only the
         * active segment is replayed, as Kafka's recovery assumes for a
         * clean shutdown, so opening a large log stays bounded. */
        rebuild(pp, log, INT64_MAX, partition_log_active_segment_base(log));
    }
}

void partition_producers_destroy(partition_producers_t *pp)
{
    producer_state_free(pp->state);
    pp->state = NULL;
}

void partition_producers_snapshot(partition_producers_t *pp, partition_log_t *log)
{
    assert(pp->state != NULL);
    snapshot_write(pp->state, log, partition_log_end_offset(log));
    snapshot_trim(log);
    pp->snapshot_segment_base = partition_log_active_segment_base(log);
}

void partition_producers_apply(partition_producers_t *pp, partition_log_t *log,
                               const uint8_t *batches, size_t len)
{
    assert(pp->state != NULL && batches != NULL);
    apply_batches(pp, log, batches, len);
    /* Kafka snapshots on every roll, so that a restart replays at most the
     * active segment. */
    if (partition_log_active_segment_base(log) != pp->snapshot_segment_base)
        partition_producers_snapshot(pp, log);
}

int64_t partition_producers_last_stable_offset(const partition_producers_t *pp,
                                               const partition_log_t *log)
{
    int64_t hw = partition_log_high_watermark(log);
    int64_t unstable = producer_state_first_unstable_offset(pp->state);
    if (unstable < 0 || unstable >= hw)
        return hw;
    /* Kafka's maybeIncrementFirstUnstableOffset: never below the log start
     * (retention may have removed a transaction's first records). */
    int64_t start = partition_log_start_offset(log);
    return unstable > start ? unstable : start;
}
