/* The transaction index, <20-digit base>.txnindex, Kafka's TransactionIndex
 * and AbortedTxn: one 34-byte entry per aborted transaction (version i16 0,
 * producer id i64, first offset i64, last offset i64 = the abort marker's,
 * last stable offset i64; big-endian), in last-offset order, in the index of
 * the segment that holds the marker. The file is created with its first
 * entry, so only segments with aborted transactions have one.
 *
 * Unlike the offset and time indexes it cannot be rebuilt from the .log
 * alone (an entry needs the producer state at its abort), so its entries
 * stay on disk and are read in chunks: a segment keeps three numbers for it,
 * and memory does not grow with the aborts. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log_internal.h"
#include "vlog.h"

#define TXN_INDEX_VERSION 0
/* Entries read per pread: 4352 bytes, on the stack. */
#define TXN_INDEX_CHUNK 128

static void txn_entry_encode(const log_aborted_txn_t *e, uint8_t *p)
{
    p[0] = 0; /* version, big-endian i16 */
    p[1] = TXN_INDEX_VERSION;
    log_put_be64(p + 2, (uint64_t)e->producer_id);
    log_put_be64(p + 10, (uint64_t)e->first_offset);
    log_put_be64(p + 18, (uint64_t)e->last_offset);
    log_put_be64(p + 26, (uint64_t)e->last_stable_offset);
}

/* False when the entry is not a version-0 entry. */
static bool txn_entry_decode(const uint8_t *p, log_aborted_txn_t *e)
{
    e->producer_id = (int64_t)log_be64(p + 2);
    e->first_offset = (int64_t)log_be64(p + 10);
    e->last_offset = (int64_t)log_be64(p + 18);
    e->last_stable_offset = (int64_t)log_be64(p + 26);
    return p[0] == 0 && p[1] == TXN_INDEX_VERSION;
}

/* Opens the segment's .txnindex for one operation: the file holds no
 * descriptor between uses, so descriptors do not grow with the segments
 * that have aborted transactions. -1 with errno, after logging the path
 * and cause unless it is ENOENT (see txn_index_lost). */
static int txn_index_open(const segment_t *seg, int flags)
{
    char *path = segment_sibling_path(seg, ".txnindex");
    int fd = open(path, flags | O_CLOEXEC, 0644);
    int saved = errno;
    if (fd < 0 && saved != ENOENT)
        log_error("open %s: %s", path, strerror(saved));
    free(path);
    errno = saved;
    return fd;
}

/* The file of a segment that has one vanished (removed behind the broker's
 * back): its entries are lost, the segment has none from now on (the
 * replica layer's replay of producer state adds them again). Then true. */
static bool txn_index_lost(segment_t *seg, int open_errno)
{
    if (open_errno != ENOENT || !seg->has_txn_index)
        return false;
    VLOG_WARN("log", "segment %" PRId64 ": its .txnindex is gone; %" PRIu32 " entries lost",
              seg->base_offset, seg->txn_entries);
    seg->has_txn_index = false;
    seg->txn_entries = 0;
    seg->txn_last_offset = -1;
    return true;
}

/* Reads entries [from, from + count) into buf (count * TXN_INDEX_ENTRY_SIZE
 * bytes). */
static log_err_t txn_index_read(const segment_t *seg, int fd, uint32_t from, uint32_t count,
                                uint8_t *buf)
{
    assert(fd >= 0 && seg->has_txn_index);
    assert(count <= seg->txn_entries && from <= seg->txn_entries - count);
    const size_t len = (size_t)count * TXN_INDEX_ENTRY_SIZE;
    ssize_t n = log_pread_all(fd, buf, len, (off_t)from * TXN_INDEX_ENTRY_SIZE);
    if (n != (ssize_t)len) {
        log_error("segment %" PRId64 ": short read of its .txnindex: %s", seg->base_offset,
                  n < 0 ? strerror(errno) : "end of file");
        return LOG_ERR_IO;
    }
    return LOG_OK;
}

static log_err_t txn_index_read_entry(const segment_t *seg, int fd, uint32_t at,
                                      log_aborted_txn_t *e)
{
    uint8_t buf[TXN_INDEX_ENTRY_SIZE];
    log_err_t err = txn_index_read(seg, fd, at, 1, buf);
    if (err != LOG_OK)
        return err;
    if (!txn_entry_decode(buf, e)) {
        log_error("segment %" PRId64 ": .txnindex entry %" PRIu32 " has version %d",
                  seg->base_offset, at, (buf[0] << 8) | buf[1]);
        return LOG_ERR_IO;
    }
    return LOG_OK;
}

/* The first entry whose last offset is >= offset (txn_entries when none):
 * a binary search, one 34-byte read a step. */
static log_err_t txn_index_lower_bound(const segment_t *seg, int fd, int64_t offset, uint32_t *at)
{
    uint32_t lo = 0, hi = seg->txn_entries;
    if (seg->txn_entries == 0 || seg->txn_last_offset < offset) {
        *at = seg->txn_entries;
        return LOG_OK;
    }
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        log_aborted_txn_t e;
        log_err_t err = txn_index_read_entry(seg, fd, mid, &e);
        if (err != LOG_OK)
            return err;
        if (e.last_offset < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    assert(lo <= seg->txn_entries);
    *at = lo;
    return LOG_OK;
}

/* Cuts the file to its first `keep` entries. */
static log_err_t txn_index_cut(segment_t *seg, int fd, uint32_t keep)
{
    assert(fd >= 0 && keep <= seg->txn_entries);
    if (ftruncate(fd, (off_t)keep * TXN_INDEX_ENTRY_SIZE) != 0) {
        log_error("segment %" PRId64 ": truncate .txnindex: %s", seg->base_offset, strerror(errno));
        return LOG_ERR_IO;
    }
    seg->txn_entries = keep;
    seg->txn_last_offset = -1;
    seg->dirty = true;
    if (keep > 0) {
        log_aborted_txn_t last;
        log_err_t err = txn_index_read_entry(seg, fd, keep - 1, &last);
        if (err != LOG_OK)
            return err;
        seg->txn_last_offset = last.last_offset;
    }
    return LOG_OK;
}

log_err_t txn_index_load(const char *dir, segment_t *seg)
{
    assert(!seg->has_txn_index && seg->txn_entries == 0);
    char *path = segment_path(dir, seg->base_offset, ".txnindex");
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        log_err_t err = LOG_OK;
        if (errno != ENOENT) {
            log_error("open %s: %s", path, strerror(errno));
            err = LOG_ERR_IO;
        }
        free(path);
        return err;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        log_error("stat %s: %s", path, strerror(errno));
        close(fd);
        free(path);
        return LOG_ERR_IO;
    }
    /* Entries have increasing last offsets inside [base, next), so a valid
     * file holds at most next - base of them; whatever lies beyond is cut
     * below, and the count fits the segment's uint32_t. */
    int64_t file_entries = st.st_size / TXN_INDEX_ENTRY_SIZE;
    const int64_t max_entries = seg->next_offset - seg->base_offset;
    if (file_entries > max_entries)
        file_entries = max_entries;
    assert(file_entries >= 0 && file_entries <= UINT32_MAX);
    seg->has_txn_index = true;
    seg->txn_entries = (uint32_t)file_entries;
    seg->txn_last_offset = -1;

    /* Keeps the valid prefix: version 0, first <= last, last offsets
     * increasing and inside this segment (which drops what lies at or past
     * a recovered log end). */
    uint8_t buf[TXN_INDEX_CHUNK * TXN_INDEX_ENTRY_SIZE];
    uint32_t valid = 0;
    bool bad = false;
    while (valid < seg->txn_entries && !bad) {
        uint32_t count = seg->txn_entries - valid;
        if (count > TXN_INDEX_CHUNK)
            count = TXN_INDEX_CHUNK;
        log_err_t err = txn_index_read(seg, fd, valid, count, buf);
        if (err != LOG_OK) {
            close(fd);
            free(path);
            return err;
        }
        for (uint32_t i = 0; i < count && !bad; i++) {
            log_aborted_txn_t e;
            bad = !txn_entry_decode(buf + (size_t)i * TXN_INDEX_ENTRY_SIZE, &e) ||
                  e.first_offset > e.last_offset || e.last_offset < seg->base_offset ||
                  e.last_offset >= seg->next_offset || e.last_offset <= seg->txn_last_offset;
            if (!bad) {
                seg->txn_last_offset = e.last_offset;
                valid++;
            }
        }
    }
    log_err_t err = LOG_OK;
    if ((int64_t)valid * TXN_INDEX_ENTRY_SIZE != st.st_size) {
        VLOG_WARN("log", "%s: keeping %" PRIu32 " of its entries (%" PRId64 " bytes)", path, valid,
                  (int64_t)st.st_size);
        err = txn_index_cut(seg, fd, valid);
    }
    close(fd);
    free(path);
    return err;
}

log_err_t txn_index_append(segment_t *seg, const log_aborted_txn_t *e, bool *created)
{
    assert(e->last_offset >= seg->base_offset && e->last_offset < seg->next_offset);
    assert(e->last_offset > seg->txn_last_offset && seg->txn_entries < UINT32_MAX);
    *created = false;
    int fd = txn_index_open(seg, seg->has_txn_index ? O_RDWR : O_RDWR | O_CREAT | O_TRUNC);
    if (fd < 0 && txn_index_lost(seg, errno))
        fd = txn_index_open(seg, O_RDWR | O_CREAT | O_TRUNC);
    if (fd < 0)
        return LOG_ERR_IO;
    if (!seg->has_txn_index) {
        seg->has_txn_index = true;
        *created = true;
    }
    uint8_t buf[TXN_INDEX_ENTRY_SIZE];
    txn_entry_encode(e, buf);
    const off_t at = (off_t)seg->txn_entries * TXN_INDEX_ENTRY_SIZE;
    if (log_pwrite_all(fd, buf, sizeof(buf), at) != 0) {
        log_error("segment %" PRId64 ": write .txnindex: %s", seg->base_offset, strerror(errno));
        /* All-or-nothing: cut whatever part of the entry did land. */
        if (ftruncate(fd, at) != 0)
            log_error("segment %" PRId64 ": truncate .txnindex after failed write: %s",
                      seg->base_offset, strerror(errno));
        close(fd);
        return LOG_ERR_IO;
    }
    close(fd);
    seg->txn_entries++;
    seg->txn_last_offset = e->last_offset;
    seg->dirty = true;
    return LOG_OK;
}

log_err_t txn_index_truncate(segment_t *seg, int64_t offset)
{
    if (seg->txn_entries == 0 || seg->txn_last_offset < offset)
        return LOG_OK;
    int fd = txn_index_open(seg, O_RDWR);
    if (fd < 0)
        return txn_index_lost(seg, errno) ? LOG_OK : LOG_ERR_IO;
    uint32_t keep;
    log_err_t err = txn_index_lower_bound(seg, fd, offset, &keep);
    if (err == LOG_OK)
        err = txn_index_cut(seg, fd, keep);
    close(fd);
    assert(err != LOG_OK || seg->txn_last_offset < offset);
    return err;
}

static log_err_t txn_index_collect_from(const segment_t *seg, int fd, int64_t fetch_offset,
                                        int64_t upper_bound, log_aborted_txn_t *out, size_t max,
                                        size_t *n, bool *complete);

log_err_t txn_index_collect(const segment_t *seg, int64_t fetch_offset, int64_t upper_bound,
                            log_aborted_txn_t *out, size_t max, size_t *n, bool *complete)
{
    assert(*n <= max);
    *complete = false;
    if (seg->txn_entries == 0 || seg->txn_last_offset < fetch_offset)
        return LOG_OK;
    int fd = txn_index_open(seg, O_RDONLY);
    if (fd < 0) {
        if (errno == ENOENT)
            log_error("segment %" PRId64 ": its .txnindex is gone", seg->base_offset);
        return LOG_ERR_IO;
    }
    log_err_t err =
        txn_index_collect_from(seg, fd, fetch_offset, upper_bound, out, max, n, complete);
    close(fd);
    return err;
}

static log_err_t txn_index_collect_from(const segment_t *seg, int fd, int64_t fetch_offset,
                                        int64_t upper_bound, log_aborted_txn_t *out, size_t max,
                                        size_t *n, bool *complete)
{
    uint32_t at;
    log_err_t err = txn_index_lower_bound(seg, fd, fetch_offset, &at);
    if (err != LOG_OK)
        return err;
    uint8_t buf[TXN_INDEX_CHUNK * TXN_INDEX_ENTRY_SIZE];
    while (at < seg->txn_entries && *n < max) {
        uint32_t count = seg->txn_entries - at;
        if (count > TXN_INDEX_CHUNK)
            count = TXN_INDEX_CHUNK;
        err = txn_index_read(seg, fd, at, count, buf);
        if (err != LOG_OK)
            return err;
        for (uint32_t i = 0; i < count && *n < max; i++) {
            log_aborted_txn_t e;
            if (!txn_entry_decode(buf + (size_t)i * TXN_INDEX_ENTRY_SIZE, &e)) {
                log_error("segment %" PRId64 ": bad .txnindex entry %" PRIu32, seg->base_offset,
                          at + i);
                return LOG_ERR_IO;
            }
            if (e.last_offset >= fetch_offset && e.first_offset < upper_bound)
                out[(*n)++] = e;
            /* Kafka's stop: every transaction open below upper_bound had
             * ended when this abort was written, so no later abort can
             * have begun below it. */
            if (e.last_stable_offset >= upper_bound) {
                *complete = true;
                return LOG_OK;
            }
        }
        at += count;
    }
    return LOG_OK;
}
