/* Test-local helpers over the partition log (read into memory, file ops). */
#ifndef VLTAVA_LOG_TEST_UTIL_H
#define VLTAVA_LOG_TEST_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "partition_log.h"

/* Reads what partition_log_read returns into a malloc'd buffer (caller
 * frees); returns the error and fills *rd. */
static inline log_err_t test_read(partition_log_t *log, int64_t offset, int64_t max_bytes,
                                  int64_t max_offset, uint8_t **data, size_t *len, log_read_t *rd)
{
    log_err_t err = partition_log_read(log, offset, max_bytes, max_offset, rd);
    *data = NULL;
    *len = 0;
    if (err != LOG_OK)
        return err;
    *data = malloc((size_t)rd->total_bytes + 1);
    size_t at = 0;
    for (int i = 0; i < rd->nranges; i++) {
        ssize_t n = pread(rd->ranges[i].fd, *data + at, (size_t)rd->ranges[i].length,
                          (off_t)rd->ranges[i].position);
        if (n != rd->ranges[i].length)
            abort();
        at += (size_t)n;
    }
    *len = at;
    partition_log_read_release(rd);
    return LOG_OK;
}

static inline int64_t test_file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

static inline char *test_seg_path(const char *dir, int64_t base, const char *ext)
{
    char *p = malloc(strlen(dir) + 64);
    sprintf(p, "%s/%020lld%s", dir, (long long)base, ext);
    return p;
}

static inline int64_t test_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return (int64_t)v;
}

static inline int32_t test_be32(const uint8_t *p)
{
    return (int32_t)(((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) |
                     p[3]);
}

#endif
