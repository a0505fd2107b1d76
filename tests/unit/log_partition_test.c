/* Partition log: appends, reads, lookups, retention, truncation, epochs,
 * config, and refusal of bad input with nothing written. */
#include <CUnit/CUnit.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "log_internal.h"
#include "log_test.h"
#include "log_test_util.h"

static char *dir;
static log_config_t cfg;

static int setup(void)
{
    dir = log_test_tmpdir();
    log_config_defaults(&cfg);
    return 0;
}

static int teardown(void)
{
    log_test_rmrf(dir);
    free(dir);
    return 0;
}

static char *fresh_dir(const char *name)
{
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

static int count_files(const char *d, const char *ext)
{
    DIR *dd = opendir(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(dd)) != NULL) {
        size_t l = strlen(de->d_name), e = strlen(ext);
        if (l > e && strcmp(de->d_name + l - e, ext) == 0)
            n++;
    }
    closedir(dd);
    return n;
}

/* Appends one batch and returns its first offset (asserting success). */
static int64_t append_one(partition_log_t *log, int records, size_t value, int64_t ts,
                          uint32_t seed, int32_t epoch, uint8_t **copy, size_t *copy_len)
{
    size_t len;
    uint8_t *b = log_test_batch(records, value, ts, seed, &len);
    log_append_info_t info;
    log_err_t err = partition_log_append(log, b, len, epoch, ts, &info);
    CU_ASSERT_EQUAL(err, LOG_OK);
    CU_ASSERT_EQUAL(info.last_offset - info.first_offset + 1, records);
    if (copy != NULL) {
        *copy = b;
        *copy_len = len;
    } else {
        free(b);
    }
    return info.first_offset;
}

static void test_round_trip_across_rolls(void)
{
    char *d = fresh_dir("roundtrip");
    log_config_t c = cfg;
    c.segment_bytes = 8192;
    c.index_interval_bytes = 1024;
    partition_log_t *log;
    CU_ASSERT_EQUAL_FATAL(partition_log_open(d, &c, 0, true, &log), LOG_OK);
    enum { N = 200 };
    uint8_t *all = malloc(N * 4096);
    size_t all_len = 0;
    int64_t firsts[N];
    int64_t expect = 0;
    for (int i = 0; i < N; i++) {
        uint8_t *b;
        size_t len;
        int records = 1 + i % 5;
        firsts[i] = append_one(log, records, (size_t)(10 + (i * 37) % 400), 1000 + i * 10,
                               (uint32_t)i, 0, &b, &len);
        CU_ASSERT_EQUAL(firsts[i], expect);
        CU_ASSERT_EQUAL(test_be64(b), expect); /* BaseOffset rewritten in place */
        expect += records;
        memcpy(all + all_len, b, len);
        all_len += len;
        free(b);
    }
    CU_ASSERT_EQUAL(partition_log_end_offset(log), expect);
    CU_ASSERT(count_files(d, ".log") > 5);
    CU_ASSERT_EQUAL(partition_log_size_bytes(log), (int64_t)all_len);

    /* Whole log, reading on from next_offset each time. */
    uint8_t *got = malloc(all_len);
    size_t got_len = 0;
    for (int64_t off = 0; off < expect;) {
        uint8_t *data;
        size_t len;
        log_read_t rd;
        CU_ASSERT_EQUAL_FATAL(test_read(log, off, 3000, expect, &data, &len, &rd), LOG_OK);
        CU_ASSERT_FATAL(len > 0);
        CU_ASSERT(rd.next_offset > off);
        memcpy(got + got_len, data, len);
        got_len += len;
        off = rd.next_offset;
        free(data);
    }
    CU_ASSERT_EQUAL(got_len, all_len);
    CU_ASSERT(memcmp(got, all, all_len) == 0);

    /* Every offset starts at the batch containing it; the result is whole
     * batches, and at least one even with max_bytes 1. */
    for (int i = 0; i < N; i += 7) {
        int64_t off = firsts[i] + (i % 5) / 2;
        if (i + 1 < N && off >= firsts[i + 1])
            off = firsts[i];
        uint8_t *data;
        size_t len;
        log_read_t rd;
        CU_ASSERT_EQUAL(test_read(log, off, 1, expect, &data, &len, &rd), LOG_OK);
        CU_ASSERT_EQUAL(rd.first_offset, firsts[i]);
        CU_ASSERT_EQUAL(test_be64(data), firsts[i]);
        CU_ASSERT_EQUAL(len, (size_t)(12 + test_be32(data + 8)));
        free(data);
    }
    free(got);
    free(all);
    partition_log_close(log);

    /* The same after a clean reopen. */
    CU_ASSERT_EQUAL_FATAL(partition_log_open(d, &c, expect, true, &log), LOG_OK);
    CU_ASSERT_EQUAL(partition_log_end_offset(log), expect);
    CU_ASSERT_EQUAL(partition_log_start_offset(log), 0);
    uint8_t *data;
    size_t len;
    log_read_t rd;
    CU_ASSERT_EQUAL(test_read(log, firsts[150], 1, expect, &data, &len, &rd), LOG_OK);
    CU_ASSERT_EQUAL(test_be64(data), firsts[150]);
    free(data);
    partition_log_close(log);
    free(d);
}

static void test_read_bounds(void)
{
    char *d = fresh_dir("bounds");
    partition_log_t *log;
    CU_ASSERT_EQUAL_FATAL(partition_log_open(d, &cfg, 0, true, &log), LOG_OK);
    for (int i = 0; i < 10; i++)
        append_one(log, 2, 100, 5000 + i, (uint32_t)i, 0, NULL, NULL);
    int64_t end = partition_log_end_offset(log);
    CU_ASSERT_EQUAL(end, 20);
    log_read_t rd;
    CU_ASSERT_EQUAL(partition_log_read(log, end + 1, 1000, end, &rd), LOG_ERR_OUT_OF_RANGE);
    CU_ASSERT_EQUAL(partition_log_read(log, -1, 1000, end, &rd), LOG_ERR_OUT_OF_RANGE);
    CU_ASSERT_EQUAL(partition_log_read(log, end, 1000, end, &rd), LOG_OK);
    CU_ASSERT_EQUAL(rd.nranges, 0);
    /* max_offset (the high watermark) excludes the batches reaching it. */
    uint8_t *data;
    size_t len;
    CU_ASSERT_EQUAL(test_read(log, 0, 1 << 20, 5, &data, &len, &rd), LOG_OK);
    CU_ASSERT_EQUAL(rd.next_offset, 4); /* batches [0,1] [2,3]; [4,5] reaches 5 */
    free(data);
    CU_ASSERT_EQUAL(test_read(log, 6, 1 << 20, 6, &data, &len, &rd), LOG_OK);
    CU_ASSERT_EQUAL(len, 0u);
    free(data);
    /* max_bytes cuts at whole batches. */
    size_t one = (size_t)(partition_log_size_bytes(log) / 10);
    CU_ASSERT_EQUAL(test_read(log, 0, (int64_t)(3 * one + one / 2), end, &data, &len, &rd), LOG_OK);
    CU_ASSERT_EQUAL(len, 3 * one);
    CU_ASSERT_EQUAL(rd.next_offset, 6);
    /* partition_log_read_copy: the same bytes and next offset in one buffer. */
    uint8_t *copy;
    size_t copy_len;
    int64_t next;
    CU_ASSERT_EQUAL(
        partition_log_read_copy(log, 0, (int64_t)(3 * one + one / 2), end, &copy, &copy_len, &next),
        LOG_OK);
    CU_ASSERT_EQUAL_FATAL(copy_len, len);
    CU_ASSERT_EQUAL(memcmp(copy, data, len), 0);
    CU_ASSERT_EQUAL(next, 6);
    free(copy);
    free(data);
    CU_ASSERT_EQUAL(partition_log_read_copy(log, end, 1000, end, &copy, &copy_len, &next), LOG_OK);
    CU_ASSERT_PTR_NULL(copy);
    CU_ASSERT_EQUAL(copy_len, 0u);
    CU_ASSERT_EQUAL(next, end);
    CU_ASSERT_EQUAL(partition_log_read_copy(log, end + 1, 1000, end, &copy, &copy_len, &next),
                    LOG_ERR_OUT_OF_RANGE);
    CU_ASSERT_PTR_NULL(copy);
    /* High watermark is clamped to [start, end]. */
    partition_log_set_high_watermark(log, 1000);
    CU_ASSERT_EQUAL(partition_log_high_watermark(log), end);
    partition_log_set_high_watermark(log, -5);
    CU_ASSERT_EQUAL(partition_log_high_watermark(log), 0);
    partition_log_close(log);
    free(d);
}

/* Lookups at, between and beyond index entries, with an index entry on
 * nearly every batch and with none at all. */
static void test_index_and_time_lookups(void)
{
    int32_t intervals[] = {0, 300, 1 << 30};
    for (size_t k = 0; k < 3; k++) {
        char name[32];
        snprintf(name, sizeof(name), "lookup-%zu", k);
        char *d = fresh_dir(name);
        log_config_t c = cfg;
        c.index_interval_bytes = intervals[k];
        c.segment_bytes = 6000;
        partition_log_t *log;
        CU_ASSERT_EQUAL_FATAL(partition_log_open(d, &c, 0, true, &log), LOG_OK);
        /* Batch i has 3 records at offsets 3i..3i+2, timestamps
         * 10000 + 100 i + {0,1,2}. */
        for (int i = 0; i < 60; i++)
            append_one(log, 3, 150, 10000 + 100 * i, (uint32_t)i, 0, NULL, NULL);
        for (int round = 0; round < 2; round++) {
            for (int64_t off = 0; off < 180; off++) {
                uint8_t *data;
                size_t len;
                log_read_t rd;
                CU_ASSERT_EQUAL(test_read(log, off, 1, 180, &data, &len, &rd), LOG_OK);
                CU_ASSERT_EQUAL(test_be64(data), off - off % 3);
                free(data);
            }
            int64_t o, ts;
            /* Exactly at a record, between records' timestamps, before all,
             * after all. */
            CU_ASSERT_EQUAL(partition_log_offset_for_time(log, 10000 + 100 * 17 + 1, &o, &ts),
                            LOG_OK);
            CU_ASSERT_EQUAL(o, 17 * 3 + 1);
            CU_ASSERT_EQUAL(ts, 10000 + 100 * 17 + 1);
            CU_ASSERT_EQUAL(partition_log_offset_for_time(log, 10000 + 100 * 17 + 50, &o, &ts),
                            LOG_OK);
            CU_ASSERT_EQUAL(o, 18 * 3);
            CU_ASSERT_EQUAL(ts, 10000 + 100 * 18);
            CU_ASSERT_EQUAL(partition_log_offset_for_time(log, 0, &o, &ts), LOG_OK);
            CU_ASSERT_EQUAL(o, 0);
            CU_ASSERT_EQUAL(partition_log_offset_for_time(log, 10000 + 100 * 59 + 2, &o, &ts),
                            LOG_OK);
            CU_ASSERT_EQUAL(o, 179);
            CU_ASSERT_EQUAL(partition_log_offset_for_time(log, 10000 + 100 * 59 + 3, &o, &ts),
                            LOG_OK);
            CU_ASSERT_EQUAL(o, -1);
            for (int i = 0; i < 60; i++) {
                CU_ASSERT_EQUAL(partition_log_offset_for_time(log, 10000 + 100 * i - 30, &o, &ts),
                                LOG_OK);
                CU_ASSERT_EQUAL(o, 3 * i);
            }
            /* Again from the files after a clean reopen. */
            partition_log_close(log);
            CU_ASSERT_EQUAL_FATAL(partition_log_open(d, &c, 180, true, &log), LOG_OK);
        }
        if (intervals[k] == 0) {
            char *ip = test_seg_path(d, 0, ".index");
            CU_ASSERT(test_file_size(ip) > 0);
            CU_ASSERT_EQUAL(test_file_size(ip) % 8, 0);
            free(ip);
            char *tp = test_seg_path(d, 0, ".timeindex");
            CU_ASSERT(test_file_size(tp) > 0);
            CU_ASSERT_EQUAL(test_file_size(tp) % 12, 0);
            free(tp);
        }
        partition_log_close(log);
        free(d);
    }
}

/* Each kind of bad input has its own error and leaves the log untouched. */
static void test_bad_input_refused(void)
{
    char *d = fresh_dir("bad");
    log_config_t c = cfg;
    c.max_message_bytes = 4000;
    partition_log_t *log;
    CU_ASSERT_EQUAL_FATAL(partition_log_open(d, &c, 0, true, &log), LOG_OK);
    append_one(log, 2, 50, 1, 1, 0, NULL, NULL);
    char *lp = test_seg_path(d, 0, ".log");
    int64_t size0 = test_file_size(lp), end0 = partition_log_end_offset(log);

    size_t len;
    uint8_t *good = log_test_batch(3, 100, 50, 7, &len);
    uint8_t *b = malloc(2 * len + 16);
    log_append_info_t info;
#define EXPECT_REFUSED(buf, n, code)                                                               \
    do {                                                                                           \
        CU_ASSERT_EQUAL(partition_log_append(log, buf, n, 0, 1, &info), code);                     \
        CU_ASSERT_EQUAL(partition_log_end_offset(log), end0);                                      \
        CU_ASSERT_EQUAL(test_file_size(lp), size0);                                                \
    } while (0)

    memcpy(b, good, len);
    b[16] = 1;
    EXPECT_REFUSED(b, len, LOG_ERR_BAD_MAGIC);

    memcpy(b, good, len);
    b[len - 5] ^= 0x40;
    EXPECT_REFUSED(b, len, LOG_ERR_BAD_CRC);

    memcpy(b, good, len);
    b[8] = 0;
    b[9] = 0x10; /* Length past the buffer */
    EXPECT_REFUSED(b, len, LOG_ERR_BAD_LENGTH);
    EXPECT_REFUSED(good, 40, LOG_ERR_BAD_LENGTH); /* truncated header */
    EXPECT_REFUSED(good, len - 1, LOG_ERR_BAD_LENGTH);

    memcpy(b, good, len);
    b[26] = 5; /* lastOffsetDelta 5 with 3 records */
    log_test_fix_crc(b);
    EXPECT_REFUSED(b, len, LOG_ERR_BAD_COUNT);
    memcpy(b, good, len);
    b[60] = 4; /* recordsCount 4, lastOffsetDelta 3, but only 3 records */
    b[26] = 3;
    log_test_fix_crc(b);
    EXPECT_REFUSED(b, len, LOG_ERR_BAD_COUNT);

    memcpy(b, good, len);
    b[22] |= 0x20; /* control flag */
    log_test_fix_crc(b);
    EXPECT_REFUSED(b, len, LOG_ERR_CONTROL_BATCH);

    size_t big_len;
    uint8_t *big = log_test_batch(4, 1100, 1, 9, &big_len);
    CU_ASSERT(big_len > 4000);
    EXPECT_REFUSED(big, big_len, LOG_ERR_TOO_LARGE);
    free(big);

    /* All-or-nothing: a good batch followed by a bad one writes neither. */
    memcpy(b, good, len);
    memcpy(b + len, good, len);
    b[len + len - 3] ^= 1;
    EXPECT_REFUSED(b, 2 * len, LOG_ERR_BAD_CRC);
    EXPECT_REFUSED(b, 0, LOG_ERR_BAD_LENGTH);

    /* Two good batches in one call get consecutive offsets. */
    memcpy(b, good, len);
    memcpy(b + len, good, len);
    CU_ASSERT_EQUAL(partition_log_append(log, b, 2 * len, 4, 1, &info), LOG_OK);
    CU_ASSERT_EQUAL(info.first_offset, end0);
    CU_ASSERT_EQUAL(info.last_offset, end0 + 5);
    CU_ASSERT_EQUAL(info.batch_count, 2);
    CU_ASSERT_EQUAL(info.record_count, 6);
    CU_ASSERT_EQUAL(test_be64(b + len), end0 + 3);
    CU_ASSERT_EQUAL(test_be32(b + len + 12), 4);
    CU_ASSERT_EQUAL(info.max_timestamp, 52);
#undef EXPECT_REFUSED
    free(good);
    free(b);
    free(lp);
    partition_log_close(log);
    free(d);
}

static void test_replica_append(void)
{
    char *d = fresh_dir("replica");
    partition_log_t *log;
    CU_ASSERT_EQUAL_FATAL(partition_log_open(d, &cfg, 0, true, &log), LOG_OK);
    size_t len;
    uint8_t *b = log_test_batch(4, 20, 100, 3, &len);
    log_append_info_t info;
    CU_ASSERT_EQUAL(partition_log_append_replica(log, b, len, &info), LOG_OK);
    CU_ASSERT_EQUAL(info.first_offset, 0);
    CU_ASSERT_EQUAL(info.last_offset, 3);
    CU_ASSERT_EQUAL(partition_log_append_replica(log, b, len, &info), LOG_ERR_OVERLAP);
    b[7] = 9; /* base offset 9: gap after 4 */
    CU_ASSERT_EQUAL(partition_log_append_replica(log, b, len, &info), LOG_ERR_GAP);
    b[7] = 4;
    b[15] = 7; /* leader epoch 7 (not under the CRC) */
    b[12] = b[13] = b[14] = 0;
    CU_ASSERT_EQUAL(partition_log_append_replica(log, b, len, &info), LOG_OK);
    CU_ASSERT_EQUAL(partition_log_end_offset(log), 8);
    CU_ASSERT_EQUAL(partition_log_latest_epoch(log), 7);
    int32_t e;
    int64_t o;
    partition_log_epoch_end_offset(log, 7, &e, &o);
    CU_ASSERT_EQUAL(e, 7);
    CU_ASSERT_EQUAL(o, 8);
    partition_log_epoch_end_offset(log, 6, &e, &o);
    CU_ASSERT_EQUAL(e, -1);
    CU_ASSERT_EQUAL(o, -1);
    free(b);
    partition_log_close(log);
    free(d);
}

static void test_epochs_and_truncation(void)
{
    char *d = fresh_dir("truncate");
    log_config_t c = cfg;
    c.segment_bytes = 2000;
    c.index_interval_bytes = 200;
    partition_log_t *log;
    CU_ASSERT_EQUAL_FATAL(partition_log_open(d, &c, 0, true, &log), LOG_OK);
    int64_t firsts[40];
    for (int i = 0; i < 40; i++)
        firsts[i] = append_one(log, 2, 150, 100 + i, (uint32_t)i,
                               i < 10   ? 1
                               : i < 25 ? 3
                                        : 5,
                               NULL, NULL);
    int32_t e;
    int64_t o;
    partition_log_epoch_end_offset(log, 1, &e, &o);
    CU_ASSERT_EQUAL(e, 1);
    CU_ASSERT_EQUAL(o, 20);
    partition_log_epoch_end_offset(log, 2, &e, &o); /* largest epoch <= 2 is 1 */
    CU_ASSERT_EQUAL(e, 1);
    CU_ASSERT_EQUAL(o, 20);
    partition_log_epoch_end_offset(log, 9, &e, &o);
    CU_ASSERT_EQUAL(e, 5);
    CU_ASSERT_EQUAL(o, 80);
    partition_log_epoch_end_offset(log, 0, &e, &o);
    CU_ASSERT_EQUAL(e, -1);
    int nsegs = count_files(d, ".log");
    CU_ASSERT(nsegs > 4);
    partition_log_set_high_watermark(log, 80);

    /* Inside a batch: the whole batch goes. */
    CU_ASSERT_EQUAL(partition_log_truncate_to(log, 61), LOG_OK);
    CU_ASSERT_EQUAL(partition_log_end_offset(log), 60);
    CU_ASSERT_EQUAL(partition_log_high_watermark(log), 60);
    CU_ASSERT_EQUAL(partition_log_latest_epoch(log), 5);
    CU_ASSERT(count_files(d, ".log") < nsegs);
    /* Below the epoch-5 start: epoch 5 is forgotten. */
    CU_ASSERT_EQUAL(partition_log_truncate_to(log, 40), LOG_OK);
    CU_ASSERT_EQUAL(partition_log_end_offset(log), 40);
    CU_ASSERT_EQUAL(partition_log_latest_epoch(log), 3);
    /* Appending continues densely after truncation. */
    CU_ASSERT_EQUAL(append_one(log, 3, 10, 999, 1, 6, NULL, NULL), 40);
    uint8_t *data;
    size_t len;
    log_read_t rd;
    CU_ASSERT_EQUAL(test_read(log, 38, 1 << 20, 100, &data, &len, &rd), LOG_OK);
    CU_ASSERT_EQUAL(rd.next_offset, 43);
    free(data);
    CU_ASSERT_EQUAL(partition_log_truncate_to(log, 100), LOG_OK); /* beyond end: no-op */
    CU_ASSERT_EQUAL(partition_log_end_offset(log), 43);
    /* At a segment's base offset. */
    CU_ASSERT_EQUAL(partition_log_truncate_to(log, firsts[0]), LOG_OK);
    CU_ASSERT_EQUAL(partition_log_end_offset(log), 0);
    CU_ASSERT_EQUAL(count_files(d, ".log"), 1);
    CU_ASSERT_EQUAL(partition_log_latest_epoch(log), -1);
    partition_log_close(log);

    /* The epoch file survives a reopen. */
    CU_ASSERT_EQUAL_FATAL(partition_log_open(d, &c, 0, true, &log), LOG_OK);
    append_one(log, 2, 10, 1, 1, 8, NULL, NULL);
    append_one(log, 2, 10, 1, 1, 9, NULL, NULL);
    partition_log_close(log);
    CU_ASSERT_EQUAL_FATAL(partition_log_open(d, &c, 4, true, &log), LOG_OK);
    partition_log_epoch_end_offset(log, 8, &e, &o);
    CU_ASSERT_EQUAL(e, 8);
    CU_ASSERT_EQUAL(o, 2);
    char *ep = malloc(strlen(d) + 40);
    sprintf(ep, "%s/leader-epoch-checkpoint", d);
    FILE *f = fopen(ep, "r");
    CU_ASSERT_FATAL(f != NULL);
    char text[128] = {0};
    CU_ASSERT(fread(text, 1, sizeof(text) - 1, f) > 0);
    fclose(f);
    CU_ASSERT_STRING_EQUAL(text, "0\n2\n8 0\n9 2\n");
    free(ep);

    /* Truncate fully: restarts empty at the given offset. */
    CU_ASSERT_EQUAL(partition_log_truncate_fully(log, 500), LOG_OK);
    CU_ASSERT_EQUAL(partition_log_start_offset(log), 500);
    CU_ASSERT_EQUAL(partition_log_end_offset(log), 500);
    CU_ASSERT_EQUAL(partition_log_latest_epoch(log), -1);
    CU_ASSERT_EQUAL(partition_log_read(log, 499, 100, 600, &rd), LOG_ERR_OUT_OF_RANGE);
    CU_ASSERT_EQUAL(append_one(log, 1, 10, 1, 1, 10, NULL, NULL), 500);
    CU_ASSERT_EQUAL(partition_log_truncate_to(log, 499), LOG_ERR_OUT_OF_RANGE);
    /* Again at the same base offset: the segment file is reused, emptied. */
    CU_ASSERT_EQUAL(partition_log_truncate_fully(log, 500), LOG_OK);
    CU_ASSERT_EQUAL(partition_log_end_offset(log), 500);
    char *seg500 = test_seg_path(d, 500, ".log");
    CU_ASSERT_EQUAL(test_file_size(seg500), 0);
    free(seg500);
    CU_ASSERT_EQUAL(append_one(log, 1, 10, 1, 1, 10, NULL, NULL), 500);
    partition_log_close(log);
    CU_ASSERT_EQUAL_FATAL(partition_log_open(d, &c, 0, false, &log), LOG_OK);
    CU_ASSERT_EQUAL(partition_log_start_offset(log), 500);
    CU_ASSERT_EQUAL(partition_log_end_offset(log), 501);
    partition_log_close(log);
    free(d);
}

static void test_retention(void)
{
    char *d = fresh_dir("retention");
    log_config_t c = cfg;
    c.segment_bytes = 1500;
    c.segment_ms = INT64_MAX / 2; /* no time-based roll of the active segment here */
    partition_log_t *log;
    CU_ASSERT_EQUAL_FATAL(partition_log_open(d, &c, 0, true, &log), LOG_OK);
    /* 30 batches of ~700 bytes: two per segment; timestamps 1000 * i. */
    for (int i = 0; i < 30; i++)
        append_one(log, 1, 600, 1000 * i, (uint32_t)i, 0, NULL, NULL);
    int nsegs = count_files(d, ".log");
    CU_ASSERT_EQUAL(nsegs, 15);

    /* A compact-only log is never trimmed by retention (compaction alone
     * removes records), however old its segments. */
    c.retention_ms = 10;
    c.cleanup_delete = false;
    c.cleanup_compact = true;
    partition_log_set_config(log, &c);
    partition_log_set_high_watermark(log, 30);
    CU_ASSERT_EQUAL(partition_log_tick(log, 1000000), 0);
    CU_ASSERT_EQUAL(count_files(d, ".log"), 15);
    c.cleanup_delete = true;
    c.cleanup_compact = false;

    /* Nothing above the high watermark is deleted. */
    partition_log_set_config(log, &c);
    partition_log_set_high_watermark(log, 0);
    CU_ASSERT_EQUAL(partition_log_tick(log, 1000000), 0);
    partition_log_set_high_watermark(log, 30);

    /* By time: segments whose newest timestamp is older than now - 9500. */
    c.retention_ms = 9500;
    partition_log_set_config(log, &c);
    CU_ASSERT_EQUAL(partition_log_tick(log, 20000), 5); /* max ts 1000..9000 */
    CU_ASSERT_EQUAL(partition_log_start_offset(log), 10);
    CU_ASSERT_EQUAL(count_files(d, ".log"), 10);
    log_read_t rd;
    CU_ASSERT_EQUAL(partition_log_read(log, 9, 100, 30, &rd), LOG_ERR_OUT_OF_RANGE);
    /* Never the active segment, however old. */
    CU_ASSERT_EQUAL(partition_log_tick(log, 1000000000), 9);
    CU_ASSERT_EQUAL(partition_log_start_offset(log), 28);
    CU_ASSERT_EQUAL(count_files(d, ".log"), 1);
    CU_ASSERT_EQUAL(partition_log_end_offset(log), 30);

    /* By size. */
    c.retention_ms = -1;
    partition_log_set_config(log, &c);
    for (int i = 0; i < 20; i++)
        append_one(log, 1, 600, 1000 * i, (uint32_t)i, 0, NULL, NULL);
    partition_log_set_high_watermark(log, partition_log_end_offset(log));
    int64_t seg = partition_log_size_bytes(log) / count_files(d, ".log");
    c.retention_bytes = 4 * seg;
    partition_log_set_config(log, &c);
    int deleted = partition_log_tick(log, 0);
    CU_ASSERT(deleted > 0);
    /* Kafka's rule: drop the oldest while the rest still holds >= 4 segments. */
    CU_ASSERT_EQUAL(deleted, 7);
    CU_ASSERT_EQUAL(partition_log_size_bytes(log), 4 * seg);
    CU_ASSERT_EQUAL(count_files(d, ".log"), 4);
    uint8_t *data;
    size_t len;
    int64_t start = partition_log_start_offset(log);
    CU_ASSERT_EQUAL(test_read(log, start, 1, 100, &data, &len, &rd), LOG_OK);
    CU_ASSERT_EQUAL(test_be64(data), start);
    free(data);
    partition_log_close(log);
    free(d);
}

/* A read's fds stay valid after retention deletes the segment. */
static void test_read_survives_delete(void)
{
    char *d = fresh_dir("dupfd");
    log_config_t c = cfg;
    c.segment_bytes = 1000;
    c.retention_bytes = 0;
    partition_log_t *log;
    CU_ASSERT_EQUAL_FATAL(partition_log_open(d, &c, 0, true, &log), LOG_OK);
    for (int i = 0; i < 4; i++)
        append_one(log, 1, 800, i, (uint32_t)i, 0, NULL, NULL);
    partition_log_set_high_watermark(log, 4);
    log_read_t rd;
    CU_ASSERT_EQUAL(partition_log_read(log, 0, 100, 4, &rd), LOG_OK);
    CU_ASSERT_EQUAL(rd.nranges, 1);
    CU_ASSERT_EQUAL(partition_log_tick(log, 0), 3);
    uint8_t buf[64];
    CU_ASSERT_EQUAL(pread(rd.ranges[0].fd, buf, sizeof(buf), rd.ranges[0].position),
                    (ssize_t)sizeof(buf));
    CU_ASSERT_EQUAL(test_be64(buf), 0);
    partition_log_read_release(&rd);
    CU_ASSERT_EQUAL(rd.nranges, 0);
    partition_log_close(log);
    free(d);
}

static void test_roll_by_time_and_flush(void)
{
    char *d = fresh_dir("rolltime");
    log_config_t c = cfg;
    c.segment_ms = 1000;
    c.flush_messages = 5;
    partition_log_t *log;
    CU_ASSERT_EQUAL_FATAL(partition_log_open(d, &c, 0, true, &log), LOG_OK);
    size_t len;
    uint8_t *b = log_test_batch(2, 10, 0, 1, &len);
    log_append_info_t info;
    CU_ASSERT_EQUAL(partition_log_append(log, b, len, 0, 10000, &info), LOG_OK);
    CU_ASSERT_EQUAL(partition_log_recovery_point(log), 0);
    CU_ASSERT_EQUAL(partition_log_append(log, b, len, 0, 10500, &info), LOG_OK);
    CU_ASSERT_EQUAL(count_files(d, ".log"), 1);
    /* 4 messages unflushed; the fifth triggers flush.messages. */
    CU_ASSERT_EQUAL(partition_log_recovery_point(log), 0);
    CU_ASSERT_EQUAL(partition_log_append(log, b, len, 0, 11000, &info), LOG_OK);
    CU_ASSERT_EQUAL(count_files(d, ".log"), 2); /* segment.ms reached */
    CU_ASSERT_EQUAL(info.first_offset, 4);
    CU_ASSERT_EQUAL(partition_log_recovery_point(log), 6);
    /* tick rolls an aged active segment; flush.ms flushes. */
    c.flush_messages = INT64_MAX;
    c.flush_ms = 100;
    partition_log_set_config(log, &c);
    CU_ASSERT_EQUAL(partition_log_append(log, b, len, 0, 11100, &info), LOG_OK);
    CU_ASSERT_EQUAL(partition_log_recovery_point(log), 6);
    partition_log_tick(log, 11200);
    partition_log_tick(log, 12500);
    CU_ASSERT_EQUAL(count_files(d, ".log"), 3);
    CU_ASSERT_EQUAL(partition_log_recovery_point(log), 8);
    CU_ASSERT_EQUAL(partition_log_flush(log), LOG_OK);
    free(b);
    partition_log_close(log);
    free(d);
}

static void test_log_append_time(void)
{
    char *d = fresh_dir("appendtime");
    log_config_t c = cfg;
    char err[128];
    CU_ASSERT_EQUAL(log_config_set(&c, "message.timestamp.type", "LogAppendTime", err, sizeof(err)),
                    0);
    partition_log_t *log;
    CU_ASSERT_EQUAL_FATAL(partition_log_open(d, &c, 0, true, &log), LOG_OK);
    size_t len;
    uint8_t *b = log_test_batch(2, 10, 5, 1, &len);
    log_append_info_t info;
    CU_ASSERT_EQUAL(partition_log_append(log, b, len, 0, 777777, &info), LOG_OK);
    CU_ASSERT_EQUAL(info.log_append_time, 777777);
    CU_ASSERT_EQUAL(info.max_timestamp, 777777);
    batch_header_t h;
    size_t size;
    CU_ASSERT_EQUAL(batch_validate(b, len, -1, true, &h, &size), LOG_OK); /* CRC still valid */
    CU_ASSERT(h.attributes & BATCH_ATTR_LOG_APPEND_TIME);
    CU_ASSERT_EQUAL(h.max_timestamp, 777777);
    int64_t o, ts;
    CU_ASSERT_EQUAL(partition_log_offset_for_time(log, 700000, &o, &ts), LOG_OK);
    CU_ASSERT_EQUAL(o, 0);
    CU_ASSERT_EQUAL(ts, 777777);
    free(b);
    partition_log_close(log);
    free(d);
}

static void test_config_keys(void)
{
    log_config_t c;
    log_config_defaults(&c);
    char err[256], out[64];
    CU_ASSERT_EQUAL(c.segment_bytes, 1073741824);
    CU_ASSERT_EQUAL(c.max_message_bytes, 1048588);
    CU_ASSERT_EQUAL(c.index_interval_bytes, 4096);
    for (int i = 0; log_config_keys[i] != NULL; i++)
        CU_ASSERT_EQUAL(log_config_get(&c, log_config_keys[i], out, sizeof(out)), 0);
    CU_ASSERT_EQUAL(log_config_set(&c, "retention.ms", "12345", err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(c.retention_ms, 12345);
    CU_ASSERT_EQUAL(log_config_get(&c, "retention.ms", out, sizeof(out)), 0);
    CU_ASSERT_STRING_EQUAL(out, "12345");
    CU_ASSERT_EQUAL(log_config_set(&c, "max.message.bytes", "2000000", err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(c.max_message_bytes, 2000000);
    CU_ASSERT_EQUAL(log_config_set(&c, "min.insync.replicas", "2", err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(c.min_insync_replicas, 2);
    CU_ASSERT_EQUAL(log_config_set(&c, "segment.bytes", "10", err, sizeof(err)), -1);
    CU_ASSERT(strstr(err, "segment.bytes") != NULL);
    CU_ASSERT_EQUAL(log_config_set(&c, "segment.bytes", "12abc", err, sizeof(err)), -1);
    CU_ASSERT_EQUAL(log_config_set(&c, "max.message.bytes", "99999999999", err, sizeof(err)), -1);
    CU_ASSERT_EQUAL(log_config_set(&c, "cleanup.policy", "compact", err, sizeof(err)), 0);
    CU_ASSERT(c.cleanup_compact && !c.cleanup_delete);
    CU_ASSERT_EQUAL(log_config_get(&c, "cleanup.policy", out, sizeof(out)), 0);
    CU_ASSERT_STRING_EQUAL(out, "compact");
    CU_ASSERT_EQUAL(log_config_set(&c, "cleanup.policy", "delete,compact", err, sizeof(err)), 0);
    CU_ASSERT(c.cleanup_compact && c.cleanup_delete);
    CU_ASSERT_EQUAL(log_config_set(&c, "cleanup.policy", "shred", err, sizeof(err)), -1);
    CU_ASSERT(strstr(err, "cleanup.policy") != NULL);
    CU_ASSERT_EQUAL(log_config_set(&c, "cleanup.policy", "delete", err, sizeof(err)), 0);
    CU_ASSERT(!c.cleanup_compact && c.cleanup_delete);
    CU_ASSERT_EQUAL(log_config_set(&c, "no.such.key", "1", err, sizeof(err)), -1);
    CU_ASSERT(strstr(err, "no.such.key") != NULL);
    CU_ASSERT_EQUAL(log_config_get(&c, "no.such.key", out, sizeof(out)), -1);
    CU_ASSERT_EQUAL(log_config_get(&c, "message.timestamp.type", out, sizeof(out)), 0);
    CU_ASSERT_STRING_EQUAL(out, "CreateTime");
}

void log_test_add_partition(void)
{
    CU_pSuite s = CU_add_suite("partition_log", setup, teardown);
    CU_add_test(s, "round trip across segment rolls", test_round_trip_across_rolls);
    CU_add_test(s, "read bounds", test_read_bounds);
    CU_add_test(s, "index and time lookups", test_index_and_time_lookups);
    CU_add_test(s, "bad input refused, nothing written", test_bad_input_refused);
    CU_add_test(s, "replica append", test_replica_append);
    CU_add_test(s, "epochs and truncation", test_epochs_and_truncation);
    CU_add_test(s, "retention by time and size", test_retention);
    CU_add_test(s, "read survives segment deletion", test_read_survives_delete);
    CU_add_test(s, "roll by time, flush policies", test_roll_by_time_and_flush);
    CU_add_test(s, "LogAppendTime", test_log_append_time);
    CU_add_test(s, "config keys", test_config_keys);
}
