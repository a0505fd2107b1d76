/* Segments: one .log file of whole batches plus its sparse .index and
 * .timeindex (Kafka's formats). The .log is the truth; the indexes are
 * hints that recovery rebuilds whenever it cannot trust them. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "log_internal.h"
#include "vlog.h"
#include "xalloc.h"

/* Read-ahead of the recovery scan. */
#define SEGMENT_SCAN_BUFFER (1 << 20)

char *segment_path(const char *dir, int64_t base_offset, const char *ext)
{
    assert(dir != NULL && ext != NULL);
    assert(base_offset >= 0);
    return xasprintf("%s/%020" PRId64 "%s", dir, base_offset, ext);
}

static log_err_t segment_io_error(const char *what, const char *path)
{
    log_error("%s %s: %s", what, path, strerror(errno));
    return LOG_ERR_IO;
}

int log_pwrite_all(int fd, const void *buf, size_t len, off_t offset)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, offset);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
        offset += n;
    }
    return 0;
}

ssize_t log_pread_all(int fd, void *buf, size_t len, off_t offset)
{
    uint8_t *p = buf;
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd, p + done, len - done, offset + (off_t)done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0)
            break;
        done += (size_t)n;
    }
    return (ssize_t)done;
}

static char log_last_error[512];

void log_error(const char *fmt, ...)
{
    assert(fmt != NULL);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(log_last_error, sizeof(log_last_error), fmt, ap);
    va_end(ap);
    VLOG_ERR("log", "%s", log_last_error);
}

const char *partition_log_last_error(void)
{
    return log_last_error;
}

/* ---- the .log descriptor cache ---- */

#define LOG_FD_CACHE_DEFAULT 1024

/* Every segment whose .log is open, least recently used first. One per
 * process, loop thread only. */
static struct {
    segment_t *head, *tail;
    size_t count;
    size_t capacity;
} log_fds = {NULL, NULL, 0, LOG_FD_CACHE_DEFAULT};

static void lru_unlink(segment_t *seg)
{
    assert(seg->log_fd >= 0 && log_fds.count > 0);
    if (seg->lru_prev != NULL)
        seg->lru_prev->lru_next = seg->lru_next;
    else
        log_fds.head = seg->lru_next;
    if (seg->lru_next != NULL)
        seg->lru_next->lru_prev = seg->lru_prev;
    else
        log_fds.tail = seg->lru_prev;
    seg->lru_prev = seg->lru_next = NULL;
    log_fds.count--;
}

static void lru_push(segment_t *seg)
{
    assert(seg->log_fd >= 0 && seg->lru_prev == NULL && seg->lru_next == NULL);
    seg->lru_prev = log_fds.tail;
    if (log_fds.tail != NULL)
        log_fds.tail->lru_next = seg;
    else
        log_fds.head = seg;
    log_fds.tail = seg;
    log_fds.count++;
}

static void segment_drop_fd(segment_t *seg)
{
    if (seg->log_fd < 0)
        return;
    lru_unlink(seg);
    close(seg->log_fd);
    seg->log_fd = -1;
}

/* Closes least recently used descriptors until `room` more fit. */
static void lru_make_room(size_t room)
{
    while (log_fds.count > 0 && log_fds.count + room > log_fds.capacity)
        segment_drop_fd(log_fds.head);
}

/* Opens path, making room in the cache first when the descriptor is to
 * join it (cached); on EMFILE/ENFILE closes one cached descriptor and
 * retries, since sockets share the limit. */
static int lru_open(const char *path, int flags, bool cached)
{
    if (cached)
        lru_make_room(1);
    int fd = open(path, flags | O_CLOEXEC, 0644);
    if (fd < 0 && (errno == EMFILE || errno == ENFILE) && log_fds.count > 0) {
        segment_drop_fd(log_fds.head);
        fd = open(path, flags | O_CLOEXEC, 0644);
    }
    return fd;
}

static void segment_adopt_fd(segment_t *seg, int fd)
{
    assert(seg->log_fd < 0 && fd >= 0);
    seg->log_fd = fd;
    lru_push(seg);
    assert(log_fds.count <= log_fds.capacity);
}

int segment_log_fd(segment_t *seg)
{
    assert(seg != NULL && seg->log_path != NULL);
    if (seg->log_fd >= 0) {
        if (log_fds.tail != seg) {
            lru_unlink(seg);
            lru_push(seg);
        }
        return seg->log_fd;
    }
    int fd = lru_open(seg->log_path, O_RDWR, true);
    if (fd < 0) {
        log_error("open %s: %s", seg->log_path, strerror(errno));
        return -1;
    }
    segment_adopt_fd(seg, fd);
    return fd;
}

int segment_dup_log_fd(segment_t *seg)
{
    int cached = segment_log_fd(seg);
    if (cached < 0)
        return -1;
    int fd = fcntl(cached, F_DUPFD_CLOEXEC, 0);
    /* segment_log_fd made seg the most recently used: the head is another
     * segment's whenever the cache holds two or more. */
    if (fd < 0 && (errno == EMFILE || errno == ENFILE) && log_fds.count > 1) {
        assert(log_fds.head != seg);
        segment_drop_fd(log_fds.head);
        fd = fcntl(cached, F_DUPFD_CLOEXEC, 0);
    }
    if (fd < 0)
        log_error("dup %s: %s", seg->log_path, strerror(errno));
    return fd;
}

size_t segment_open_log_fds(void)
{
    return log_fds.count;
}

size_t segment_max_log_fds(void)
{
    return log_fds.capacity;
}

void partition_log_set_max_open_files(size_t max)
{
    assert(max >= LOG_MIN_OPEN_FILES);
    log_fds.capacity = max;
    lru_make_room(0);
    assert(log_fds.count <= log_fds.capacity);
}

size_t partition_log_open_files(void)
{
    return log_fds.count;
}

/* "<dir>/<base><ext>" from the segment's .log path; caller frees. */
char *segment_sibling_path(const segment_t *seg, const char *ext)
{
    size_t len = strlen(seg->log_path);
    assert(len > 4 && strcmp(seg->log_path + len - 4, ".log") == 0);
    return xasprintf("%.*s%s", (int)(len - 4), seg->log_path, ext);
}

static segment_t *segment_alloc(const char *dir, int64_t base_offset)
{
    segment_t *seg = xcalloc(1, sizeof(*seg));
    seg->base_offset = base_offset;
    seg->next_offset = base_offset;
    seg->log_path = segment_path(dir, base_offset, ".log");
    seg->log_fd = -1;
    seg->max_timestamp = -1;
    seg->max_timestamp_offset = -1;
    seg->roll_base_ms = -1;
    seg->txn_last_offset = -1;
    return seg;
}

static void segment_reset_indexes(segment_t *seg)
{
    seg->index_count = 0;
    seg->index_written = 0;
    seg->time_index_count = 0;
    seg->time_index_written = 0;
    seg->bytes_since_index = 0;
    seg->max_timestamp = -1;
    seg->max_timestamp_offset = -1;
}

static void segment_push_index(segment_t *seg, uint32_t rel_offset, uint32_t position)
{
    assert(seg->index_count == 0 || seg->index[seg->index_count - 1].rel_offset < rel_offset);
    assert(seg->index_count == 0 || seg->index[seg->index_count - 1].position < position);
    if (seg->index_count == seg->index_cap) {
        seg->index_cap = seg->index_cap ? seg->index_cap * 2 : 64;
        seg->index = xrealloc(seg->index, seg->index_cap * sizeof(*seg->index));
    }
    seg->index[seg->index_count++] = (offset_index_entry_t){rel_offset, position};
}

static void segment_push_time_index(segment_t *seg, int64_t timestamp, uint32_t rel_offset)
{
    assert(seg->time_index_count == 0 ||
           seg->time_index[seg->time_index_count - 1].timestamp < timestamp);
    assert(seg->time_index_count == 0 ||
           seg->time_index[seg->time_index_count - 1].rel_offset <= rel_offset);
    if (seg->time_index_count == seg->time_index_cap) {
        seg->time_index_cap = seg->time_index_cap ? seg->time_index_cap * 2 : 64;
        seg->time_index = xrealloc(seg->time_index, seg->time_index_cap * sizeof(*seg->time_index));
    }
    seg->time_index[seg->time_index_count++] = (time_index_entry_t){timestamp, rel_offset};
}

/* Kafka's LogSegment.append rule: an entry once more than index.interval
 * bytes were appended since the last one, mapping this batch's last offset
 * to its position; the time index gets the max timestamp so far whenever
 * it has grown. */
void segment_index_batch(segment_t *seg, int32_t index_interval, int64_t position,
                         int64_t last_offset, int64_t max_timestamp, int64_t size)
{
    assert(last_offset >= seg->base_offset && last_offset - seg->base_offset <= UINT32_MAX);
    assert(position >= 0 && position <= UINT32_MAX);
    if (max_timestamp > seg->max_timestamp) {
        seg->max_timestamp = max_timestamp;
        seg->max_timestamp_offset = last_offset;
    }
    if (seg->bytes_since_index > index_interval) {
        segment_push_index(seg, (uint32_t)(last_offset - seg->base_offset), (uint32_t)position);
        if (seg->max_timestamp >= 0 &&
            (seg->time_index_count == 0 ||
             seg->time_index[seg->time_index_count - 1].timestamp < seg->max_timestamp))
            segment_push_time_index(seg, seg->max_timestamp,
                                    (uint32_t)(seg->max_timestamp_offset - seg->base_offset));
        seg->bytes_since_index = 0;
    }
    seg->bytes_since_index += size;
    seg->dirty = true;
}

static void segment_encode_index(const segment_t *seg, uint32_t from, uint32_t to, uint8_t *out)
{
    for (uint32_t i = from; i < to; i++, out += OFFSET_INDEX_ENTRY_SIZE) {
        log_put_be32(out, seg->index[i].rel_offset);
        log_put_be32(out + 4, seg->index[i].position);
    }
}

static void segment_encode_time_index(const segment_t *seg, uint32_t from, uint32_t to,
                                      uint8_t *out)
{
    for (uint32_t i = from; i < to; i++, out += TIME_INDEX_ENTRY_SIZE) {
        log_put_be64(out, (uint64_t)seg->time_index[i].timestamp);
        log_put_be32(out + 8, seg->time_index[i].rel_offset);
    }
}

/* Brings one index file in line with the entries: cuts what it holds
 * beyond *written, then appends entries [*written, count) encoded into buf
 * by the caller. The file is opened for this write only: index files hold
 * no descriptor between writes. */
static log_err_t segment_sync_index_file(const segment_t *seg, const char *ext, size_t entry_size,
                                         uint32_t *file_entries, uint32_t *written, uint32_t count,
                                         const uint8_t *buf)
{
    assert(*written <= count);
    if (*file_entries <= *written && count == *written)
        return LOG_OK;
    char *path = segment_sibling_path(seg, ext);
    log_err_t err = LOG_OK;
    int fd = lru_open(path, O_RDWR | O_CREAT, false); /* closed below */
    if (fd < 0) {
        err = segment_io_error("open", path);
        goto out;
    }
    if (*file_entries > *written) {
        if (ftruncate(fd, (off_t)*written * (off_t)entry_size) != 0) {
            err = segment_io_error("truncate", path);
            goto out;
        }
        *file_entries = *written;
    }
    if (count > *written) {
        if (log_pwrite_all(fd, buf, (size_t)(count - *written) * entry_size,
                           (off_t)*written * (off_t)entry_size) != 0) {
            err = segment_io_error("write", path);
            goto out;
        }
        *written = count;
        *file_entries = count;
    }
out:
    if (fd >= 0)
        close(fd);
    free(path);
    return err;
}

log_err_t segment_write_pending_index(segment_t *seg)
{
    assert(seg->active);
    assert(seg->index_written <= seg->index_count);
    uint32_t n = seg->index_count - seg->index_written;
    uint8_t *buf = n > 0 ? xmalloc((size_t)n * OFFSET_INDEX_ENTRY_SIZE) : NULL;
    if (n > 0)
        segment_encode_index(seg, seg->index_written, seg->index_count, buf);
    log_err_t err =
        segment_sync_index_file(seg, ".index", OFFSET_INDEX_ENTRY_SIZE, &seg->index_file_entries,
                                &seg->index_written, seg->index_count, buf);
    free(buf);
    if (err != LOG_OK)
        return err;
    n = seg->time_index_count - seg->time_index_written;
    buf = n > 0 ? xmalloc((size_t)n * TIME_INDEX_ENTRY_SIZE) : NULL;
    if (n > 0)
        segment_encode_time_index(seg, seg->time_index_written, seg->time_index_count, buf);
    err = segment_sync_index_file(seg, ".timeindex", TIME_INDEX_ENTRY_SIZE,
                                  &seg->time_index_file_entries, &seg->time_index_written,
                                  seg->time_index_count, buf);
    free(buf);
    seg->dirty = true;
    return err;
}

static int segment_open_file(const char *dir, int64_t base, const char *ext, int flags)
{
    char *path = segment_path(dir, base, ext);
    int fd = open(path, flags | O_CLOEXEC, 0644);
    if (fd < 0 && errno != ENOENT)
        log_error("open %s: %s", path, strerror(errno));
    free(path);
    return fd;
}

log_err_t segment_activate(const char *dir, segment_t *seg)
{
    assert(seg->log_path != NULL && dir != NULL);
    if (seg->active)
        return LOG_OK;
    struct stat st_index = {0}, st_time = {0};
    char *index_path = segment_sibling_path(seg, ".index");
    char *time_path = segment_sibling_path(seg, ".timeindex");
    bool ok = (stat(index_path, &st_index) == 0 || errno == ENOENT) &&
              (stat(time_path, &st_time) == 0 || errno == ENOENT);
    if (!ok)
        log_error("stat index of %s: %s", seg->log_path, strerror(errno));
    free(index_path);
    free(time_path);
    if (!ok)
        return LOG_ERR_IO;
    seg->active = true;
    /* Whatever the files hold beyond the written entries is cut on the
     * next write. */
    seg->index_file_entries =
        (uint32_t)((st_index.st_size + OFFSET_INDEX_ENTRY_SIZE - 1) / OFFSET_INDEX_ENTRY_SIZE);
    seg->time_index_file_entries =
        (uint32_t)((st_time.st_size + TIME_INDEX_ENTRY_SIZE - 1) / TIME_INDEX_ENTRY_SIZE);
    if (seg->index_file_entries < seg->index_written)
        seg->index_written = 0;
    if (seg->time_index_file_entries < seg->time_index_written)
        seg->time_index_written = 0;
    if (seg->index_file_entries > seg->index_written ||
        seg->time_index_file_entries > seg->time_index_written)
        return segment_write_pending_index(seg);
    return LOG_OK;
}

log_err_t segment_create(const char *dir, int64_t base_offset, segment_t **out)
{
    assert(dir != NULL && out != NULL);
    assert(base_offset >= 0);
    segment_t *seg = segment_alloc(dir, base_offset);
    int fd = lru_open(seg->log_path, O_RDWR | O_CREAT | O_TRUNC, true);
    if (fd < 0) {
        segment_io_error("create", seg->log_path);
        segment_close(seg);
        return LOG_ERR_IO;
    }
    segment_adopt_fd(seg, fd);
    static const char *const stale[] = {".index", ".timeindex", ".txnindex"};
    for (size_t i = 0; i < sizeof(stale) / sizeof(stale[0]); i++) {
        char *path = segment_path(dir, base_offset, stale[i]);
        unlink(path);
        free(path);
    }
    /* Empty index files: a segment without them is rebuilt at open. */
    log_err_t err = LOG_OK;
    static const char *const indexes[] = {".index", ".timeindex"};
    for (size_t i = 0; i < 2 && err == LOG_OK; i++) {
        char *path = segment_sibling_path(seg, indexes[i]);
        int index_fd = lru_open(path, O_WRONLY | O_CREAT | O_TRUNC, false);
        if (index_fd < 0)
            err = segment_io_error("create", path);
        else
            close(index_fd);
        free(path);
    }
    if (err == LOG_OK)
        err = segment_activate(dir, seg);
    if (err != LOG_OK) {
        segment_close(seg);
        return err;
    }
    seg->dirty = true;
    *out = seg;
    return LOG_OK;
}

log_err_t segment_read_header(segment_t *seg, int64_t position, batch_header_t *h)
{
    assert(position >= 0 && position < seg->size);
    uint8_t buf[BATCH_HEADER_SIZE];
    if (seg->size - position < BATCH_HEADER_SIZE) {
        log_error("segment %" PRId64 ": partial batch header at %" PRId64, seg->base_offset,
                  position);
        return LOG_ERR_IO;
    }
    int fd = segment_log_fd(seg);
    if (fd < 0)
        return LOG_ERR_IO;
    ssize_t n = log_pread_all(fd, buf, sizeof(buf), (off_t)position);
    if (n != (ssize_t)sizeof(buf)) {
        log_error("segment %" PRId64 ": short read at %" PRId64 ": %s", seg->base_offset, position,
                  n < 0 ? strerror(errno) : "end of file");
        return LOG_ERR_IO;
    }
    batch_header_decode(buf, h);
    if (h->magic != 2 || h->length < BATCH_HEADER_SIZE - BATCH_LOG_OVERHEAD ||
        batch_size(h) > seg->size - position || h->last_offset_delta < 0 ||
        h->base_offset < seg->base_offset) {
        log_error("segment %" PRId64 ": bad batch header at %" PRId64, seg->base_offset, position);
        return LOG_ERR_IO;
    }
    return LOG_OK;
}

int64_t segment_floor_by_offset(const segment_t *seg, int64_t offset)
{
    if (offset < seg->base_offset || seg->index_count == 0)
        return 0;
    int64_t rel = offset - seg->base_offset;
    if (rel > UINT32_MAX)
        rel = UINT32_MAX;
    uint32_t lo = 0, hi = seg->index_count; /* first entry with rel_offset > rel */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (seg->index[mid].rel_offset <= (uint32_t)rel)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == 0 ? 0 : seg->index[lo - 1].position;
}

int64_t segment_floor_by_position(const segment_t *seg, int64_t position)
{
    if (position <= 0 || seg->index_count == 0)
        return 0;
    if (position > UINT32_MAX)
        position = UINT32_MAX;
    uint32_t lo = 0, hi = seg->index_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (seg->index[mid].position <= (uint32_t)position)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == 0 ? 0 : seg->index[lo - 1].position;
}

int64_t segment_floor_by_time(const segment_t *seg, int64_t ts)
{
    uint32_t lo = 0, hi = seg->time_index_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (seg->time_index[mid].timestamp <= ts)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return 0;
    return segment_floor_by_offset(seg, seg->base_offset + seg->time_index[lo - 1].rel_offset);
}

log_err_t segment_find_batch(segment_t *seg, int64_t offset, int64_t *position, batch_header_t *h)
{
    assert(offset >= seg->base_offset);
    if (offset >= seg->next_offset) {
        *position = seg->size;
        return LOG_OK;
    }
    int64_t pos = segment_floor_by_offset(seg, offset);
    while (pos < seg->size) {
        log_err_t err = segment_read_header(seg, pos, h);
        if (err != LOG_OK)
            return err;
        if (batch_last_offset(h) >= offset) {
            *position = pos;
            return LOG_OK;
        }
        pos += batch_size(h);
    }
    log_error("segment %" PRId64 ": offset %" PRId64 " not found below %" PRId64, seg->base_offset,
              offset, seg->next_offset);
    return LOG_ERR_IO;
}

/* Sequential reader over the .log with read-ahead, for recovery. */
typedef struct segment_scanner {
    int fd;
    int64_t file_size;
    uint8_t *buf;
    size_t cap;
    int64_t buf_pos; /* file position of buf[0] */
    size_t buf_len;
} segment_scanner_t;

/* Makes file[pos, pos+len) available in the buffer; returns a pointer to
 * it, or NULL if the file is shorter or the read fails. */
static const uint8_t *segment_scanner_get(segment_scanner_t *sc, int64_t pos, size_t len)
{
    if (pos < 0 || (int64_t)len > sc->file_size - pos)
        return NULL;
    if (pos >= sc->buf_pos && pos + (int64_t)len <= sc->buf_pos + (int64_t)sc->buf_len)
        return sc->buf + (pos - sc->buf_pos);
    if (len > sc->cap) {
        sc->cap = len;
        sc->buf = xrealloc(sc->buf, sc->cap);
    }
    size_t want = sc->cap;
    if ((int64_t)want > sc->file_size - pos)
        want = (size_t)(sc->file_size - pos);
    ssize_t n = log_pread_all(sc->fd, sc->buf, want, (off_t)pos);
    if (n < (ssize_t)len)
        return NULL;
    sc->buf_pos = pos;
    sc->buf_len = (size_t)n;
    return sc->buf;
}

/* Re-validates every batch, rebuilding the indexes; truncates the .log at
 * the first batch that is torn, corrupt or out of sequence. */
static log_err_t segment_recover(segment_t *seg, int32_t index_interval, bool *truncated)
{
    struct stat st;
    /* The scan opens no other segment: fd stays valid throughout. */
    int fd = segment_log_fd(seg);
    if (fd < 0)
        return LOG_ERR_IO;
    if (fstat(fd, &st) != 0)
        return segment_io_error("stat", seg->log_path);
    segment_reset_indexes(seg);
    segment_scanner_t sc = {.fd = fd, .file_size = st.st_size, .cap = SEGMENT_SCAN_BUFFER};
    sc.buf = xmalloc(sc.cap);
    int64_t pos = 0, next = seg->base_offset;
    log_err_t why = LOG_OK;
    while (pos < st.st_size) {
        const uint8_t *p = segment_scanner_get(&sc, pos, BATCH_HEADER_SIZE);
        if (p == NULL) {
            why = LOG_ERR_BAD_LENGTH;
            break;
        }
        batch_header_t h;
        batch_header_decode(p, &h);
        if (h.magic != 2) {
            why = LOG_ERR_BAD_MAGIC;
            break;
        }
        if (h.length < BATCH_HEADER_SIZE - BATCH_LOG_OVERHEAD ||
            batch_size(&h) > st.st_size - pos || pos + batch_size(&h) > UINT32_MAX) {
            why = LOG_ERR_BAD_LENGTH;
            break;
        }
        p = segment_scanner_get(&sc, pos, (size_t)batch_size(&h));
        size_t size;
        if (p == NULL) {
            why = LOG_ERR_IO;
            break;
        }
        why = batch_validate(p, (size_t)batch_size(&h), -1, false, &h, &size);
        if (why != LOG_OK)
            break;
        if (h.base_offset != next || batch_last_offset(&h) - seg->base_offset > UINT32_MAX) {
            why = LOG_ERR_GAP;
            break;
        }
        segment_index_batch(seg, index_interval, pos, batch_last_offset(&h), h.max_timestamp,
                            (int64_t)size);
        pos += (int64_t)size;
        next = batch_last_offset(&h) + 1;
    }
    free(sc.buf);
    *truncated = false;
    if (pos < st.st_size) {
        VLOG_WARN("log",
                  "segment %" PRId64 ": truncating %" PRId64 " bytes at position %" PRId64 " (%s)",
                  seg->base_offset, (int64_t)st.st_size - pos, pos, log_err_str(why));
        if (ftruncate(fd, (off_t)pos) != 0)
            return segment_io_error("truncate", seg->log_path);
        *truncated = true;
    }
    seg->size = pos;
    seg->next_offset = next;
    seg->dirty = true;
    /* The rebuilt indexes replace the files wholesale. */
    seg->index_written = 0;
    seg->time_index_written = 0;
    return LOG_OK;
}

/* Loads an index file; returns its entries count or -1 if it is missing or
 * its size is not a whole number of entries. A zero-filled tail (a
 * preallocated file, or pages lost in a crash) is trimmed: no real entry
 * is all zeros, since the first batch of a segment is never indexed. */
static int64_t segment_load_file(const char *dir, int64_t base, const char *ext, size_t entry_size,
                                 uint8_t **data)
{
    int fd = segment_open_file(dir, base, ext, O_RDONLY);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size % (off_t)entry_size != 0 || st.st_size > INT32_MAX) {
        close(fd);
        return -1;
    }
    *data = xmalloc((size_t)st.st_size + 1);
    ssize_t n = log_pread_all(fd, *data, (size_t)st.st_size, 0);
    close(fd);
    if (n != st.st_size) {
        free(*data);
        *data = NULL;
        return -1;
    }
    int64_t count = st.st_size / (off_t)entry_size;
    while (count > 0) {
        const uint8_t *e = *data + (count - 1) * entry_size;
        bool zero = true;
        for (size_t i = 0; i < entry_size && zero; i++)
            zero = e[i] == 0;
        if (!zero)
            break;
        count--;
    }
    if (count < st.st_size / (off_t)entry_size) {
        char *path = segment_path(dir, base, ext);
        if (truncate(path, (off_t)(count * (int64_t)entry_size)) != 0)
            VLOG_WARN("log", "trim zero tail of %s: %s", path, strerror(errno));
        free(path);
    }
    return count;
}

/* Loads both index files and checks them against the .log size; false when
 * either is missing or inconsistent (then the caller rebuilds). */
static bool segment_load_indexes(const char *dir, segment_t *seg)
{
    segment_reset_indexes(seg);
    uint8_t *data = NULL;
    int64_t n = segment_load_file(dir, seg->base_offset, ".index", OFFSET_INDEX_ENTRY_SIZE, &data);
    if (n < 0)
        return false;
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *e = data + i * OFFSET_INDEX_ENTRY_SIZE;
        uint32_t rel = log_be32(e), pos = log_be32(e + 4);
        if ((int64_t)pos >= seg->size ||
            (seg->index_count > 0 && (seg->index[seg->index_count - 1].rel_offset >= rel ||
                                      seg->index[seg->index_count - 1].position >= pos))) {
            free(data);
            return false;
        }
        segment_push_index(seg, rel, pos);
    }
    free(data);
    data = NULL;
    n = segment_load_file(dir, seg->base_offset, ".timeindex", TIME_INDEX_ENTRY_SIZE, &data);
    if (n < 0)
        return false;
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *e = data + i * TIME_INDEX_ENTRY_SIZE;
        int64_t ts = (int64_t)log_be64(e);
        uint32_t rel = log_be32(e + 8);
        if (ts < 0 || (seg->time_index_count > 0 &&
                       (seg->time_index[seg->time_index_count - 1].timestamp >= ts ||
                        seg->time_index[seg->time_index_count - 1].rel_offset > rel))) {
            free(data);
            return false;
        }
        segment_push_time_index(seg, ts, rel);
    }
    free(data);
    seg->index_written = seg->index_count;
    seg->time_index_written = seg->time_index_count;
    if (seg->time_index_count > 0) {
        const time_index_entry_t *last = &seg->time_index[seg->time_index_count - 1];
        seg->max_timestamp = last->timestamp;
        seg->max_timestamp_offset = seg->base_offset + last->rel_offset;
    }
    return true;
}

/* From the last offset-index entry to the end: the next offset, the max
 * timestamp of the unindexed tail, and header sanity. Short, since an entry
 * exists every index.interval bytes. */
static log_err_t segment_scan_tail(segment_t *seg)
{
    int64_t pos = seg->index_count ? seg->index[seg->index_count - 1].position : 0;
    seg->next_offset = seg->base_offset;
    seg->bytes_since_index = 0;
    bool first = true;
    while (pos < seg->size) {
        batch_header_t h;
        log_err_t err = segment_read_header(seg, pos, &h);
        if (err != LOG_OK)
            return err;
        if (first && pos == 0 && h.base_offset != seg->base_offset)
            return LOG_ERR_IO;
        if (!first && h.base_offset != seg->next_offset)
            return LOG_ERR_IO;
        if (h.max_timestamp > seg->max_timestamp) {
            seg->max_timestamp = h.max_timestamp;
            seg->max_timestamp_offset = batch_last_offset(&h);
        }
        seg->next_offset = batch_last_offset(&h) + 1;
        seg->bytes_since_index += batch_size(&h);
        pos += batch_size(&h);
        first = false;
    }
    if (seg->index_count > 0 &&
        seg->next_offset <= seg->base_offset + (int64_t)seg->index[seg->index_count - 1].rel_offset)
        return LOG_ERR_IO;
    if (seg->time_index_count > 0 &&
        seg->next_offset <=
            seg->base_offset + (int64_t)seg->time_index[seg->time_index_count - 1].rel_offset)
        return LOG_ERR_IO;
    return LOG_OK;
}

log_err_t segment_open(const char *dir, int64_t base_offset, int32_t index_interval, bool recover,
                       segment_t **out, bool *truncated)
{
    assert(dir != NULL && out != NULL && truncated != NULL);
    segment_t *seg = segment_alloc(dir, base_offset);
    *truncated = false;
    int fd = segment_log_fd(seg);
    if (fd < 0) {
        segment_close(seg);
        return LOG_ERR_IO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        segment_io_error("stat", seg->log_path);
        segment_close(seg);
        return LOG_ERR_IO;
    }
    seg->size = st.st_size;
    bool rebuild = recover;
    if (!rebuild && !segment_load_indexes(dir, seg)) {
        VLOG_WARN("log", "%s: segment %" PRId64 ": missing or corrupt index, rebuilding", dir,
                  base_offset);
        rebuild = true;
    }
    if (!rebuild && segment_scan_tail(seg) != LOG_OK) {
        VLOG_WARN("log", "%s: segment %" PRId64 ": inconsistent tail, re-validating", dir,
                  base_offset);
        rebuild = true;
    }
    if (rebuild) {
        log_err_t err = segment_recover(seg, index_interval, truncated);
        if (err == LOG_OK) {
            /* Rewrite the index files from the rebuilt entries. */
            err = segment_activate(dir, seg);
            if (err == LOG_OK)
                err = segment_finish(seg);
        }
        if (err != LOG_OK) {
            segment_close(seg);
            return err;
        }
    }
    log_err_t err = txn_index_load(dir, seg);
    if (err != LOG_OK) {
        segment_close(seg);
        return err;
    }
    assert(seg->next_offset >= seg->base_offset);
    *out = seg;
    return LOG_OK;
}

log_err_t segment_finish(segment_t *seg)
{
    assert(seg != NULL);
    if (!seg->active)
        return LOG_OK;
    if (seg->max_timestamp >= 0 &&
        (seg->time_index_count == 0 ||
         seg->time_index[seg->time_index_count - 1].timestamp < seg->max_timestamp))
        segment_push_time_index(seg, seg->max_timestamp,
                                (uint32_t)(seg->max_timestamp_offset - seg->base_offset));
    log_err_t err = segment_write_pending_index(seg);
    seg->active = false;
    return err;
}

static int segment_fsync_path(const char *dir, int64_t base, const char *ext)
{
    int fd = segment_open_file(dir, base, ext, O_RDONLY);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

log_err_t segment_sync(const char *dir, segment_t *seg)
{
    assert(seg->log_path != NULL);
    if (!seg->dirty)
        return LOG_OK;
    if (seg->active) {
        log_err_t err = segment_write_pending_index(seg);
        if (err != LOG_OK)
            return err;
    }
    if (segment_fsync_path(dir, seg->base_offset, ".index") != 0 ||
        segment_fsync_path(dir, seg->base_offset, ".timeindex") != 0)
        return segment_io_error("fsync index in", dir);
    if (seg->has_txn_index && segment_fsync_path(dir, seg->base_offset, ".txnindex") != 0)
        return segment_io_error("fsync transaction index in", dir);
    int fd = segment_log_fd(seg);
    if (fd < 0)
        return LOG_ERR_IO;
    if (fdatasync(fd) != 0)
        return segment_io_error("fsync", seg->log_path);
    seg->dirty = false;
    return LOG_OK;
}

log_err_t segment_truncate(segment_t *seg, int64_t position, int64_t offset)
{
    assert(position >= 0 && position <= seg->size);
    assert(offset >= seg->base_offset && offset <= seg->next_offset);
    int fd = segment_log_fd(seg);
    if (fd < 0)
        return LOG_ERR_IO;
    if (ftruncate(fd, (off_t)position) != 0)
        return segment_io_error("truncate", seg->log_path);
    seg->size = position;
    seg->next_offset = offset;
    while (seg->index_count > 0 && seg->index[seg->index_count - 1].position >= position)
        seg->index_count--;
    while (seg->time_index_count > 0 &&
           seg->base_offset + seg->time_index[seg->time_index_count - 1].rel_offset >= offset)
        seg->time_index_count--;
    if (seg->index_written > seg->index_count)
        seg->index_written = seg->index_count;
    if (seg->time_index_written > seg->time_index_count)
        seg->time_index_written = seg->time_index_count;
    /* The max timestamp: the last surviving time entry covers every batch
     * before its own; the batches from there on are re-read. */
    seg->max_timestamp = -1;
    seg->max_timestamp_offset = -1;
    int64_t pos = 0;
    if (seg->time_index_count > 0) {
        const time_index_entry_t *last = &seg->time_index[seg->time_index_count - 1];
        seg->max_timestamp = last->timestamp;
        seg->max_timestamp_offset = seg->base_offset + last->rel_offset;
        pos = segment_floor_by_offset(seg, seg->max_timestamp_offset);
    }
    while (pos < seg->size) {
        batch_header_t h;
        log_err_t err = segment_read_header(seg, pos, &h);
        if (err != LOG_OK)
            return err;
        if (h.max_timestamp > seg->max_timestamp) {
            seg->max_timestamp = h.max_timestamp;
            seg->max_timestamp_offset = batch_last_offset(&h);
        }
        pos += batch_size(&h);
    }
    seg->bytes_since_index = 0;
    seg->dirty = true;
    return LOG_OK;
}

void segment_close(segment_t *seg)
{
    if (seg == NULL)
        return;
    segment_drop_fd(seg);
    free(seg->log_path);
    free(seg->index);
    free(seg->time_index);
    free(seg);
}

void segment_delete(const char *dir, segment_t *seg)
{
    static const char *const exts[] = {".log", ".index", ".timeindex", ".txnindex"};
    for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
        char *path = segment_path(dir, seg->base_offset, exts[i]);
        if (unlink(path) != 0 && errno != ENOENT)
            VLOG_WARN("log", "unlink %s: %s", path, strerror(errno));
        free(path);
    }
    segment_close(seg);
}

int log_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

log_err_t log_write_file_atomic(const char *path, const char *content, size_t len, char *err,
                                size_t err_size)
{
    assert(path != NULL && content != NULL);
    char *tmp = xasprintf("%s.tmp", path);
    log_err_t rc = LOG_ERR_IO;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, err_size, "open %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (log_pwrite_all(fd, content, len, 0) != 0 || fsync(fd) != 0) {
        snprintf(err, err_size, "write %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        goto out;
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        snprintf(err, err_size, "rename %s: %s", tmp, strerror(errno));
        unlink(tmp);
        goto out;
    }
    char *slash = strrchr(path, '/');
    if (slash != NULL) {
        char *dir = xstrndup(path, (size_t)(slash - path));
        log_fsync_dir(dir);
        free(dir);
    }
    rc = LOG_OK;
out:
    free(tmp);
    return rc;
}
