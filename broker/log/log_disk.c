/* The disk work that runs on the worker pool: atomic file writes, fsync of
 * segments, unlinking retired segment files, removing a partition
 * directory. Everything here is given names relative to a directory
 * descriptor opened on the loop thread when the job was queued, so a
 * directory renamed or replaced meanwhile (a partition deleted, then
 * created again) is never written by a job queued for the old one.
 *
 * Locality: any thread; these functions touch no loop state. */
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

#include "log_internal.h"
#include "xalloc.h"

static const char *const log_segment_exts[] = {".log", ".index", ".timeindex", ".txnindex"};
#define LOG_SEGMENT_NEXTS (sizeof(log_segment_exts) / sizeof(log_segment_exts[0]))

int log_open_dir_fd(const char *dir)
{
    assert(dir != NULL);
    return open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

int log_write_file_at(int dir_fd, const char *name, const void *content, size_t len, char *err,
                      size_t err_size)
{
    assert(dir_fd >= 0 && name != NULL);
    assert(content != NULL || len == 0);
    char tmp[LOG_NAME_MAX + 8];
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp", name);
    assert(n > 0 && (size_t)n < sizeof(tmp));
    (void)n;
    int fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, err_size, "open %s: %s", tmp, strerror(errno));
        return -1;
    }
    if (log_pwrite_all(fd, content, len, 0) != 0 || fsync(fd) != 0) {
        snprintf(err, err_size, "write %s: %s", tmp, strerror(errno));
        close(fd);
        unlinkat(dir_fd, tmp, 0);
        return -1;
    }
    close(fd);
    if (renameat(dir_fd, tmp, dir_fd, name) != 0) {
        snprintf(err, err_size, "rename %s: %s", tmp, strerror(errno));
        unlinkat(dir_fd, tmp, 0);
        return -1;
    }
    if (fsync(dir_fd) != 0) {
        snprintf(err, err_size, "fsync directory of %s: %s", name, strerror(errno));
        return -1;
    }
    return 0;
}

int log_sync_segments_at(int dir_fd, const int64_t *bases, int nbases, bool sync_dir, char *err,
                         size_t err_size)
{
    assert(dir_fd >= 0);
    assert(bases != NULL || nbases == 0);
    for (int i = 0; i < nbases; i++) {
        for (size_t k = 0; k < LOG_SEGMENT_NEXTS; k++) {
            char name[LOG_NAME_MAX];
            snprintf(name, sizeof(name), "%020" PRId64 "%s", bases[i], log_segment_exts[k]);
            /* Any descriptor of the inode flushes its dirty pages. A file
             * gone meanwhile (retention, truncation) needs no fsync. */
            int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC);
            if (fd < 0) {
                if (errno == ENOENT)
                    continue;
                snprintf(err, err_size, "open %s for fsync: %s", name, strerror(errno));
                return -1;
            }
            int rc = fdatasync(fd);
            int saved = errno;
            close(fd);
            if (rc != 0) {
                snprintf(err, err_size, "fsync %s: %s", name, strerror(saved));
                return -1;
            }
        }
    }
    if (sync_dir && fsync(dir_fd) != 0) {
        snprintf(err, err_size, "fsync directory: %s", strerror(errno));
        return -1;
    }
    return 0;
}

int log_retire_segment_files(const char *dir, int64_t base_offset)
{
    assert(dir != NULL && base_offset >= 0);
    int rc = 0;
    for (size_t k = 0; k < LOG_SEGMENT_NEXTS; k++) {
        char *from = segment_path(dir, base_offset, log_segment_exts[k]);
        char *to = xasprintf("%s" LOG_DELETED_SUFFIX, from);
        if (rename(from, to) != 0 && errno != ENOENT)
            rc = -1;
        free(from);
        free(to);
    }
    return rc;
}

void log_unlink_retired_at(int dir_fd, int64_t base_offset)
{
    assert(dir_fd >= 0 && base_offset >= 0);
    for (size_t k = 0; k < LOG_SEGMENT_NEXTS; k++) {
        char name[LOG_NAME_MAX];
        snprintf(name, sizeof(name), "%020" PRId64 "%s" LOG_DELETED_SUFFIX, base_offset,
                 log_segment_exts[k]);
        /* ENOENT: never existed, or a later retirement of the same base
         * replaced it and its own job removes it. */
        unlinkat(dir_fd, name, 0);
    }
}

int log_remove_dir(const char *dir, char *err, size_t err_size)
{
    assert(dir != NULL);
    DIR *d = opendir(dir);
    if (d == NULL) {
        snprintf(err, err_size, "opendir %s: %s", dir, strerror(errno));
        return -1;
    }
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (unlinkat(dirfd(d), de->d_name, 0) != 0 && errno != ENOENT) {
            snprintf(err, err_size, "unlink %s/%s: %s", dir, de->d_name, strerror(errno));
            rc = -1;
        }
    }
    closedir(d);
    if (rmdir(dir) != 0) {
        snprintf(err, err_size, "rmdir %s: %s", dir, strerror(errno));
        rc = -1;
    }
    return rc;
}
