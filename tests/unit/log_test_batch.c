/* RecordBatch v2 construction and temp directories, for the tests and the
 * benchmark. */
#include <ftw.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "crc32c.h"
#include "log_test.h"

static size_t put_varint(uint8_t *p, int64_t v)
{
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    size_t n = 0;
    while (z >= 0x80) {
        p[n++] = (uint8_t)(z | 0x80);
        z >>= 7;
    }
    p[n++] = (uint8_t)z;
    return n;
}

static void put_be(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

void log_test_fix_crc(uint8_t *batch)
{
    uint32_t length = ((uint32_t)batch[8] << 24) | ((uint32_t)batch[9] << 16) |
                      ((uint32_t)batch[10] << 8) | batch[11];
    put_be(batch + 17, crc32c(0, batch + 21, 12 + (size_t)length - 21), 4);
}

size_t log_test_build_batch(uint8_t *out, size_t cap, int records, size_t value_size,
                            int64_t first_ts, uint32_t seed)
{
    /* Upper bound per record: 5 (length) + 1 + 10 + 5 + 5 + 12 (key) + 5 +
     * value + 1. */
    size_t need = 61 + (size_t)records * (44 + value_size);
    if (cap < need || records <= 0)
        return 0;
    uint8_t *p = out + 61;
    uint8_t body[64];
    for (int i = 0; i < records; i++) {
        char key[16];
        int key_len = snprintf(key, sizeof(key), "k%d", i);
        size_t b = 0;
        body[b++] = 0;                /* attributes */
        b += put_varint(body + b, i); /* timestamp delta */
        b += put_varint(body + b, i); /* offset delta */
        b += put_varint(body + b, key_len);
        memcpy(body + b, key, (size_t)key_len);
        b += (size_t)key_len;
        b += put_varint(body + b, (int64_t)value_size);
        size_t record_len = b + value_size + 1;
        p += put_varint(p, (int64_t)record_len);
        memcpy(p, body, b);
        p += b;
        uint32_t x = seed * 2654435761u + (uint32_t)i * 40503u + 1;
        for (size_t j = 0; j < value_size; j++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            p[j] = (uint8_t)x;
        }
        p += value_size;
        *p++ = 0; /* no headers */
    }
    size_t size = (size_t)(p - out);
    put_be(out + 0, 0, 8);                                   /* BaseOffset */
    put_be(out + 8, size - 12, 4);                           /* Length */
    put_be(out + 12, (uint64_t)-1, 4);                       /* PartitionLeaderEpoch */
    out[16] = 2;                                             /* Magic */
    put_be(out + 21, 0, 2);                                  /* Attributes */
    put_be(out + 23, (uint64_t)(records - 1), 4);            /* LastOffsetDelta */
    put_be(out + 27, (uint64_t)first_ts, 8);                 /* BaseTimestamp */
    put_be(out + 35, (uint64_t)(first_ts + records - 1), 8); /* MaxTimestamp */
    put_be(out + 43, (uint64_t)-1, 8);                       /* ProducerId */
    put_be(out + 51, (uint64_t)-1, 2);                       /* ProducerEpoch */
    put_be(out + 53, (uint64_t)-1, 4);                       /* BaseSequence */
    put_be(out + 57, (uint64_t)records, 4);                  /* RecordsCount */
    log_test_fix_crc(out);
    return size;
}

uint8_t *log_test_batch(int records, size_t value_size, int64_t first_ts, uint32_t seed,
                        size_t *len)
{
    size_t cap = 61 + (size_t)records * (44 + value_size);
    uint8_t *buf = malloc(cap);
    if (buf == NULL)
        abort();
    *len = log_test_build_batch(buf, cap, records, value_size, first_ts, seed);
    return buf;
}

char *log_test_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char tmpl[4096];
    snprintf(tmpl, sizeof(tmpl), "%s/vltava-log-test-XXXXXX", base ? base : "/tmp");
    char *dir = mkdtemp(tmpl);
    if (dir == NULL)
        abort();
    char *copy = malloc(strlen(dir) + 1);
    strcpy(copy, dir);
    return copy;
}

static int rmrf_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void log_test_rmrf(const char *path)
{
    nftw(path, rmrf_one, 16, FTW_DEPTH | FTW_PHYS);
}
