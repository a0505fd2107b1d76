/* Recovery on open: torn tails, corrupt batches, missing indexes, zero
 * tails, the recovery point, and the clean-shutdown fast path. */
#include <CUnit/CUnit.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "log_internal.h"
#include "log_test.h"
#include "log_test_util.h"

static char *root;
static log_config_t cfg;
static int case_no;

static int setup(void)
{
    root = log_test_tmpdir();
    log_config_defaults(&cfg);
    cfg.segment_bytes = 4000;
    cfg.index_interval_bytes = 500;
    return 0;
}

static int teardown(void)
{
    log_test_rmrf(root);
    free(root);
    return 0;
}

#define NBATCH 30

/* A log of NBATCH batches of 2 records (~340 bytes each, 11 per segment),
 * abandoned without flushing or finishing its indexes, like a crash. Fills
 * the position of every batch within its segment. */
typedef struct fixture {
    char *dir;
    int64_t pos[NBATCH];
    int64_t seg_base[NBATCH];
    int64_t size[NBATCH];
} fixture_t;

static void fixture_make(fixture_t *fx, bool crash)
{
    fx->dir = malloc(strlen(root) + 32);
    sprintf(fx->dir, "%s/case-%d", root, case_no++);
    partition_log_t *log;
    CU_ASSERT_EQUAL_FATAL(partition_log_open(fx->dir, &cfg, 0, true, &log), LOG_OK);
    int64_t seg = -1, pos = 0;
    for (int i = 0; i < NBATCH; i++) {
        size_t len;
        uint8_t *b = log_test_batch(2, 120, 1000 + 10 * i, (uint32_t)i, &len);
        log_append_info_t info;
        CU_ASSERT_EQUAL_FATAL(partition_log_append(log, b, len, 1, 0, &info), LOG_OK);
        char *p = test_seg_path(fx->dir, info.first_offset, ".log");
        if (test_file_size(p) == (int64_t)len) { /* a new segment starts here */
            seg = info.first_offset;
            pos = 0;
        }
        free(p);
        fx->seg_base[i] = seg;
        fx->pos[i] = pos;
        fx->size[i] = (int64_t)len;
        pos += (int64_t)len;
        free(b);
    }
    CU_ASSERT(fx->seg_base[NBATCH - 1] > 0);
    if (crash)
        partition_log_abandon(log);
    else
        partition_log_close(log);
}

static void fixture_free(fixture_t *fx)
{
    free(fx->dir);
}

static void chop(const char *dir, int64_t base, int64_t size)
{
    char *p = test_seg_path(dir, base, ".log");
    CU_ASSERT_EQUAL(truncate(p, size), 0);
    free(p);
}

static void poke(const char *dir, int64_t base, const char *ext, int64_t at, uint8_t xor_mask)
{
    char *p = test_seg_path(dir, base, ext);
    int fd = open(p, O_RDWR);
    CU_ASSERT_FATAL(fd >= 0);
    uint8_t c;
    CU_ASSERT_EQUAL(pread(fd, &c, 1, at), 1);
    c ^= xor_mask;
    CU_ASSERT_EQUAL(pwrite(fd, &c, 1, at), 1);
    close(fd);
    free(p);
}

/* Every offset below the end reads back as a whole valid batch. */
static void check_readable(partition_log_t *log)
{
    int64_t end = partition_log_end_offset(log);
    for (int64_t off = partition_log_start_offset(log); off < end;) {
        uint8_t *data;
        size_t len;
        log_read_t rd;
        CU_ASSERT_EQUAL_FATAL(test_read(log, off, 1, end, &data, &len, &rd), LOG_OK);
        batch_header_t h;
        size_t size;
        CU_ASSERT_EQUAL(batch_validate(data, len, -1, false, &h, &size), LOG_OK);
        CU_ASSERT_EQUAL(size, len);
        CU_ASSERT_EQUAL(h.base_offset, off);
        off = rd.next_offset;
        free(data);
    }
}

/* Reopens uncleanly from recovery point 0 and expects the log to end just
 * before batch `first_lost`, with later segments gone. */
static void expect_recovered_to(fixture_t *fx, int first_lost)
{
    partition_log_t *log;
    CU_ASSERT_EQUAL_FATAL(partition_log_open(fx->dir, &cfg, 0, false, &log), LOG_OK);
    CU_ASSERT_EQUAL(partition_log_end_offset(log), 2 * first_lost);
    CU_ASSERT_EQUAL(partition_log_recovery_point(log), 2 * first_lost);
    char *p;
    if (first_lost < NBATCH) {
        p = test_seg_path(fx->dir, fx->seg_base[first_lost], ".log");
        CU_ASSERT_EQUAL(test_file_size(p), fx->pos[first_lost]);
        free(p);
    }
    for (int i = first_lost; i < NBATCH; i++) {
        if (fx->seg_base[i] == fx->seg_base[first_lost])
            continue;
        p = test_seg_path(fx->dir, fx->seg_base[i], ".log");
        CU_ASSERT_EQUAL(test_file_size(p), -1);
        free(p);
    }
    check_readable(log);
    /* And the log goes on from there. */
    size_t len;
    uint8_t *b = log_test_batch(1, 10, 1, 1, &len);
    log_append_info_t info;
    CU_ASSERT_EQUAL(partition_log_append(log, b, len, 1, 0, &info), LOG_OK);
    CU_ASSERT_EQUAL(info.first_offset, 2 * first_lost);
    free(b);
    partition_log_close(log);
}

static void test_torn_header(void)
{
    fixture_t fx;
    fixture_make(&fx, true);
    int last = NBATCH - 1;
    chop(fx.dir, fx.seg_base[last], fx.pos[last] + 30);
    expect_recovered_to(&fx, last);
    fixture_free(&fx);
}

static void test_torn_payload(void)
{
    fixture_t fx;
    fixture_make(&fx, true);
    int last = NBATCH - 1;
    chop(fx.dir, fx.seg_base[last], fx.pos[last] + fx.size[last] - 7);
    expect_recovered_to(&fx, last);
    fixture_free(&fx);
}

/* A flipped byte under the CRC in an early segment: the log is cut there
 * and every later segment is dropped. */
static void test_flipped_byte(void)
{
    fixture_t fx;
    fixture_make(&fx, true);
    int victim = 5;
    CU_ASSERT(fx.seg_base[victim] != fx.seg_base[NBATCH - 1]);
    poke(fx.dir, fx.seg_base[victim], ".log", fx.pos[victim] + 100, 0x04);
    expect_recovered_to(&fx, victim);
    fixture_free(&fx);
}

/* Unreasonable Length in a header (past the file end): cut there. */
static void test_bad_length_field(void)
{
    fixture_t fx;
    fixture_make(&fx, true);
    int victim = 14;
    poke(fx.dir, fx.seg_base[victim], ".log", fx.pos[victim] + 9, 0x7f);
    expect_recovered_to(&fx, victim);
    fixture_free(&fx);
}

static void test_zero_tail(void)
{
    fixture_t fx;
    fixture_make(&fx, true);
    char *p = test_seg_path(fx.dir, fx.seg_base[NBATCH - 1], ".log");
    int64_t size = test_file_size(p);
    CU_ASSERT_EQUAL(truncate(p, size + 8192), 0); /* a zero-filled tail */
    expect_recovered_to(&fx, NBATCH);
    size_t appended;
    free(log_test_batch(1, 10, 1, 1, &appended));
    CU_ASSERT_EQUAL(test_file_size(p), size + (int64_t)appended); /* the batch appended after */
    free(p);
    fixture_free(&fx);
}

/* Missing or garbage index files are rebuilt, even after a clean shutdown;
 * a zero tail in an index file is trimmed. */
static void test_index_rebuild(void)
{
    fixture_t fx;
    fixture_make(&fx, false);
    char *ip = test_seg_path(fx.dir, 0, ".index");
    char *tp = test_seg_path(fx.dir, 0, ".timeindex");
    int64_t isize = test_file_size(ip), tsize = test_file_size(tp);
    CU_ASSERT(isize >= 8);
    CU_ASSERT(tsize >= 12);
    CU_ASSERT_EQUAL(unlink(ip), 0);
    CU_ASSERT_EQUAL(truncate(tp, tsize - 5), 0); /* not a whole entry */
    char *ip2 = test_seg_path(fx.dir, fx.seg_base[15], ".index");
    int64_t isize2 = test_file_size(ip2);
    CU_ASSERT_EQUAL(truncate(ip2, isize2 + 800), 0); /* preallocated-style zero tail */
    partition_log_t *log;
    CU_ASSERT_EQUAL_FATAL(partition_log_open(fx.dir, &cfg, 2 * NBATCH, true, &log), LOG_OK);
    CU_ASSERT_EQUAL(partition_log_end_offset(log), 2 * NBATCH);
    CU_ASSERT_EQUAL(test_file_size(ip), isize);
    CU_ASSERT_EQUAL(test_file_size(tp), tsize);
    check_readable(log);
    int64_t o, ts;
    CU_ASSERT_EQUAL(partition_log_offset_for_time(log, 1000 + 10 * 7 + 1, &o, &ts), LOG_OK);
    CU_ASSERT_EQUAL(o, 15);
    partition_log_close(log);
    CU_ASSERT_EQUAL(test_file_size(ip2), isize2);
    /* An index entry pointing past the .log is corrupt: rebuilt. */
    poke(fx.dir, fx.seg_base[15], ".index", 4, 0x70);
    CU_ASSERT_EQUAL_FATAL(partition_log_open(fx.dir, &cfg, 2 * NBATCH, true, &log), LOG_OK);
    check_readable(log);
    partition_log_close(log);
    free(ip);
    free(tp);
    free(ip2);
    fixture_free(&fx);
}

/* After a clean shutdown nothing is re-validated: a corrupt byte in a
 * batch is not noticed. (That is what the marker promises.) */
static void test_clean_open_does_not_scan(void)
{
    fixture_t fx;
    fixture_make(&fx, false);
    poke(fx.dir, fx.seg_base[3], ".log", fx.pos[3] + 100, 0x01);
    partition_log_t *log;
    CU_ASSERT_EQUAL_FATAL(partition_log_open(fx.dir, &cfg, 2 * NBATCH, true, &log), LOG_OK);
    CU_ASSERT_EQUAL(partition_log_end_offset(log), 2 * NBATCH);
    partition_log_close(log);
    fixture_free(&fx);
}

/* Unclean: segments wholly below the recovery point's segment are trusted;
 * from that segment on, everything is re-validated. */
static void test_recovery_point(void)
{
    fixture_t fx;
    fixture_make(&fx, true);
    int late = NBATCH - 2;
    poke(fx.dir, fx.seg_base[1], ".log", fx.pos[1] + 100, 0x01);      /* trusted */
    poke(fx.dir, fx.seg_base[late], ".log", fx.pos[late] + 80, 0x01); /* re-validated */
    partition_log_t *log;
    CU_ASSERT_EQUAL_FATAL(partition_log_open(fx.dir, &cfg, fx.seg_base[late] + 1, false, &log),
                          LOG_OK);
    CU_ASSERT_EQUAL(partition_log_end_offset(log), 2 * late);
    partition_log_close(log);
    fixture_free(&fx);
}

/* Stray files of interrupted work are removed; a segment that does not
 * follow its predecessor is dropped with everything after it. */
static void test_strays_and_gaps(void)
{
    fixture_t fx;
    fixture_make(&fx, false);
    char *stray = malloc(strlen(fx.dir) + 64);
    sprintf(stray, "%s/00000000000000000000.log.deleted", fx.dir);
    FILE *f = fopen(stray, "w");
    fclose(f);
    char *orphan = test_seg_path(fx.dir, 99999, ".index");
    f = fopen(orphan, "w");
    fclose(f);
    /* Remove a middle segment: a gap. */
    int mid = 15;
    char *p = test_seg_path(fx.dir, fx.seg_base[mid], ".log");
    CU_ASSERT_EQUAL(unlink(p), 0);
    free(p);
    partition_log_t *log;
    CU_ASSERT_EQUAL_FATAL(partition_log_open(fx.dir, &cfg, 0, false, &log), LOG_OK);
    CU_ASSERT_EQUAL(partition_log_end_offset(log), fx.seg_base[mid]);
    CU_ASSERT_EQUAL(test_file_size(stray), -1);
    CU_ASSERT_EQUAL(test_file_size(orphan), -1);
    p = test_seg_path(fx.dir, fx.seg_base[NBATCH - 1], ".log");
    CU_ASSERT_EQUAL(test_file_size(p), -1);
    free(p);
    check_readable(log);
    partition_log_close(log);
    free(stray);
    free(orphan);
    fixture_free(&fx);
}

void log_test_add_recovery(void)
{
    CU_pSuite s = CU_add_suite("recovery", setup, teardown);
    CU_add_test(s, "torn tail inside a batch header", test_torn_header);
    CU_add_test(s, "torn tail inside a payload", test_torn_payload);
    CU_add_test(s, "flipped byte under the CRC", test_flipped_byte);
    CU_add_test(s, "length field past the file", test_bad_length_field);
    CU_add_test(s, "zero-filled tail", test_zero_tail);
    CU_add_test(s, "missing and corrupt indexes rebuilt", test_index_rebuild);
    CU_add_test(s, "clean open does not scan", test_clean_open_does_not_scan);
    CU_add_test(s, "recovery point", test_recovery_point);
    CU_add_test(s, "stray files and gaps", test_strays_and_gaps);
}
