/* The log's side of transactions: the .txnindex (Kafka's file name and
 * 34-byte format, created lazily, collected across segments against a
 * brute-force reading of Kafka's rule under a simulated transactional
 * workload, truncated, deleted with its segment, recovered), and control
 * batches (the leader's marker append, a follower copying it, clients still
 * refused). */
#include <CUnit/CUnit.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "log_internal.h"
#include "log_test.h"
#include "log_test_util.h"
#include "record_batch.h"

static char *root;
static log_config_t cfg;

static int setup(void)
{
    root = log_test_tmpdir();
    log_config_defaults(&cfg);
    return 0;
}

static int teardown(void)
{
    log_test_rmrf(root);
    free(root);
    return 0;
}

static char *fresh_dir(const char *name)
{
    char *p = malloc(strlen(root) + strlen(name) + 2);
    sprintf(p, "%s/%s", root, name);
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

static int64_t append_data(partition_log_t *log, int records, uint32_t seed)
{
    size_t len;
    uint8_t *b = log_test_batch(records, 40, 1000 + seed, seed, &len);
    log_append_info_t info;
    CU_ASSERT_EQUAL(partition_log_append(log, b, len, 1, 1000, &info), LOG_OK);
    free(b);
    return info.first_offset;
}

/* Appends an end-transaction marker as the leader; returns its offset. */
static int64_t append_marker(partition_log_t *log, int64_t pid, bool commit)
{
    uint8_t m[RECORD_BATCH_TXN_MARKER_SIZE];
    record_batch_build_txn_marker(m, pid, 0, commit, 4, 2000);
    log_append_info_t info;
    CU_ASSERT_EQUAL(partition_log_append_control(log, m, sizeof(m), 1, 2000, &info), LOG_OK);
    CU_ASSERT_EQUAL(info.first_offset, info.last_offset);
    return info.first_offset;
}

static size_t collect(partition_log_t *log, int64_t fetch, int64_t upper, log_aborted_txn_t *out,
                      size_t max)
{
    size_t n = 99;
    CU_ASSERT_EQUAL(partition_log_collect_aborted_txns(log, fetch, upper, out, max, &n), LOG_OK);
    CU_ASSERT(n <= max);
    return n;
}

static bool txn_eq(const log_aborted_txn_t *a, const log_aborted_txn_t *b)
{
    return a->producer_id == b->producer_id && a->first_offset == b->first_offset &&
           a->last_offset == b->last_offset && a->last_stable_offset == b->last_stable_offset;
}

static uint8_t *read_file(const char *path, int64_t *size)
{
    *size = test_file_size(path);
    if (*size < 0)
        return NULL;
    uint8_t *buf = malloc((size_t)*size + 1);
    int fd = open(path, O_RDONLY);
    ssize_t n = pread(fd, buf, (size_t)*size, 0);
    close(fd);
    CU_ASSERT_EQUAL(n, *size);
    return buf;
}

/* ---- the file ---- */

static void test_file_format(void)
{
    char *d = fresh_dir("format");
    partition_log_t *log;
    CU_ASSERT_EQUAL_FATAL(partition_log_open(d, &cfg, 0, true, &log), LOG_OK);
    append_data(log, 10, 1); /* 0..9 */
    int64_t marker = append_marker(log, 0x0102030405060708LL, false);
    CU_ASSERT_EQUAL(marker, 10);
    char *path = test_seg_path(d, 0, ".txnindex");
    /* Lazily: a segment has no file until its first aborted transaction. */
    CU_ASSERT_EQUAL(test_file_size(path), -1);
    CU_ASSERT_EQUAL(count_files(d, ".txnindex"), 0);

    CU_ASSERT_EQUAL(partition_log_add_aborted_txn(log, 0x0102030405060708LL, 2, 10, 0x0a), LOG_OK);
    int64_t size;
    uint8_t *bytes = read_file(path, &size);
    CU_ASSERT_EQUAL_FATAL(size, 34);
    static const uint8_t expect[34] = {
        0x00, 0x00,                                     /* version 0 */
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, /* producer id */
        0,    0,    0,    0,    0,    0,    0,    2,    /* first offset */
        0,    0,    0,    0,    0,    0,    0,    10,   /* last offset */
        0,    0,    0,    0,    0,    0,    0,    0x0a, /* last stable offset */
    };
    CU_ASSERT_EQUAL(memcmp(bytes, expect, sizeof(expect)), 0);
    free(bytes);

    append_data(log, 3, 2);
    marker = append_marker(log, 77, false);
    CU_ASSERT_EQUAL(partition_log_add_aborted_txn(log, 77, 11, marker, marker + 1), LOG_OK);
    CU_ASSERT_EQUAL(test_file_size(path), 68);
    bytes = read_file(path, &size);
    CU_ASSERT_EQUAL(test_be64(bytes + 34 + 2), 77);
    CU_ASSERT_EQUAL(test_be64(bytes + 34 + 10), 11);
    CU_ASSERT_EQUAL(test_be64(bytes + 34 + 18), 14);
    CU_ASSERT_EQUAL(test_be64(bytes + 34 + 26), 15);
    free(bytes);

    /* Survives close and a clean reopen. */
    partition_log_close(log);
    CU_ASSERT_EQUAL_FATAL(partition_log_open(d, &cfg, 0, true, &log), LOG_OK);
    log_aborted_txn_t out[4];
    CU_ASSERT_EQUAL_FATAL(collect(log, 0, 15, out, 4), 2);
    const log_aborted_txn_t first = {0x0102030405060708LL, 2, 10, 0x0a};
    const log_aborted_txn_t second = {77, 11, 14, 15};
    CU_ASSERT_TRUE(txn_eq(&out[0], &first));
    CU_ASSERT_TRUE(txn_eq(&out[1], &second));
    CU_ASSERT_EQUAL(test_file_size(path), 68);
    partition_log_close(log);
    free(path);
    free(d);
}

static void test_add_refusals(void)
{
    char *d = fresh_dir("refusals");
    partition_log_t *log;
    CU_ASSERT_EQUAL_FATAL(partition_log_open(d, &cfg, 0, true, &log), LOG_OK);
    append_data(log, 5, 1); /* 0..4 */
    char *path = test_seg_path(d, 0, ".txnindex");
    /* At or past the end, first above last: nothing written, no file. */
    CU_ASSERT_EQUAL(partition_log_add_aborted_txn(log, 1, 0, 5, 5), LOG_ERR_OUT_OF_RANGE);
    CU_ASSERT_EQUAL(partition_log_add_aborted_txn(log, 1, 4, 3, 4), LOG_ERR_OUT_OF_RANGE);
    CU_ASSERT_EQUAL(test_file_size(path), -1);
    CU_ASSERT_EQUAL(partition_log_add_aborted_txn(log, 1, 0, 3, 4), LOG_OK);
    /* Not after the last entry. */
    CU_ASSERT_EQUAL(partition_log_add_aborted_txn(log, 2, 0, 3, 4), LOG_ERR_OUT_OF_RANGE);
    CU_ASSERT_EQUAL(partition_log_add_aborted_txn(log, 2, 0, 2, 3), LOG_ERR_OUT_OF_RANGE);
    CU_ASSERT_EQUAL(test_file_size(path), 34);
    CU_ASSERT_EQUAL(partition_log_add_aborted_txn(log, 2, 0, 4, 5), LOG_OK);
    CU_ASSERT_EQUAL(test_file_size(path), 68);
    partition_log_close(log);
    free(path);
    free(d);
}

/* ---- collect ---- */

#define SIM_PRODUCERS 5
#define SIM_STEPS     400
#define SIM_MAX_TXNS  SIM_STEPS

/* A transactional workload through the real log: producers open
 * transactions, write data batches, and end them with a commit or abort
 * marker; every abort is recorded with Kafka's last stable offset (the
 * first offset of the earliest other open transaction, else the marker's
 * offset + 1). Small segments, so the entries spread across many. */
typedef struct sim {
    partition_log_t *log;
    log_aborted_txn_t aborted[SIM_MAX_TXNS];
    size_t naborted;
    int64_t open_first[SIM_PRODUCERS]; /* -1: no open transaction */
} sim_t;

static void sim_end(sim_t *s, int p, bool commit)
{
    int64_t pid = 1000 + p;
    int64_t marker = append_marker(s->log, pid, commit);
    int64_t first = s->open_first[p];
    s->open_first[p] = -1;
    if (commit)
        return;
    int64_t lso = marker + 1;
    for (int q = 0; q < SIM_PRODUCERS; q++)
        if (s->open_first[q] >= 0 && s->open_first[q] < lso)
            lso = s->open_first[q];
    CU_ASSERT_EQUAL(partition_log_add_aborted_txn(s->log, pid, first, marker, lso), LOG_OK);
    s->aborted[s->naborted++] = (log_aborted_txn_t){pid, first, marker, lso};
}

static void sim_run(sim_t *s, const char *d, uint32_t seed)
{
    log_config_t c = cfg;
    c.segment_bytes = 1200;
    CU_ASSERT_EQUAL_FATAL(partition_log_open(d, &c, 0, true, &s->log), LOG_OK);
    s->naborted = 0;
    for (int p = 0; p < SIM_PRODUCERS; p++)
        s->open_first[p] = -1;
    srand(seed);
    for (int step = 0; step < SIM_STEPS; step++) {
        int p = rand() % SIM_PRODUCERS;
        if (s->open_first[p] >= 0 && rand() % 3 == 0) {
            sim_end(s, p, rand() % 2 == 0);
            continue;
        }
        int64_t at = append_data(s->log, 1 + rand() % 3, (uint32_t)step);
        if (s->open_first[p] < 0)
            s->open_first[p] = at;
    }
    for (int p = 0; p < SIM_PRODUCERS; p++)
        if (s->open_first[p] >= 0)
            sim_end(s, p, false);
}

/* By definition, with no stop rule: what must be reported. */
static size_t expected(const sim_t *s, int64_t fetch, int64_t upper, log_aborted_txn_t *out)
{
    size_t n = 0;
    for (size_t i = 0; i < s->naborted; i++)
        if (s->aborted[i].last_offset >= fetch && s->aborted[i].first_offset < upper)
            out[n++] = s->aborted[i];
    return n;
}

static void check_collect_everywhere(sim_t *s)
{
    static log_aborted_txn_t got[SIM_MAX_TXNS], want[SIM_MAX_TXNS];
    const int64_t start = partition_log_start_offset(s->log);
    const int64_t end = partition_log_end_offset(s->log);
    int mismatches = 0;
    for (int64_t fetch = start; fetch < end; fetch++) {
        const int64_t uppers[] = {fetch + 1, fetch + 7, fetch + 40, end};
        for (size_t u = 0; u < sizeof(uppers) / sizeof(uppers[0]); u++) {
            int64_t upper = uppers[u] > end ? end : uppers[u];
            size_t n = collect(s->log, fetch, upper, got, SIM_MAX_TXNS);
            size_t m = expected(s, fetch, upper, want);
            bool same = n == m;
            for (size_t i = 0; same && i < n; i++)
                same = txn_eq(&got[i], &want[i]);
            if (!same && mismatches++ < 5)
                fprintf(stderr, "collect(%lld, %lld): %zu entries, want %zu\n", (long long)fetch,
                        (long long)upper, n, m);
        }
    }
    CU_ASSERT_EQUAL(mismatches, 0);
}

static void test_collect_across_segments(void)
{
    char *d = fresh_dir("collect");
    sim_t *s = calloc(1, sizeof(*s));
    sim_run(s, d, 7);
    CU_ASSERT(count_files(d, ".log") > 10);
    CU_ASSERT(count_files(d, ".txnindex") > 3);
    CU_ASSERT(count_files(d, ".txnindex") < count_files(d, ".log"));
    CU_ASSERT(s->naborted > 20);
    check_collect_everywhere(s);

    /* max cuts the list, keeping last_offset order. */
    log_aborted_txn_t few[3];
    CU_ASSERT_EQUAL(collect(s->log, 0, partition_log_end_offset(s->log), few, 3), 3);
    CU_ASSERT_TRUE(txn_eq(&few[0], &s->aborted[0]));
    CU_ASSERT_TRUE(txn_eq(&few[2], &s->aborted[2]));
    CU_ASSERT_EQUAL(collect(s->log, 0, partition_log_end_offset(s->log), NULL, 0), 0);

    /* The same after a clean reopen. */
    partition_log_close(s->log);
    CU_ASSERT_EQUAL_FATAL(partition_log_open(d, &cfg, 0, true, &s->log), LOG_OK);
    check_collect_everywhere(s);
    partition_log_close(s->log);
    free(s);
    free(d);
}

/* Kafka's stop: an entry whose last stable offset reaches upper_bound ends
 * the search, so what follows it is not reported. The entries are made up
 * so that the stop shows: a real last stable offset never hides a match
 * (the simulation checks that), so no real workload tells the difference. */
static void test_collect_stops_at_last_stable_offset(void)
{
    char *d = fresh_dir("stop");
    partition_log_t *log;
    CU_ASSERT_EQUAL_FATAL(partition_log_open(d, &cfg, 0, true, &log), LOG_OK);
    append_data(log, 20, 1); /* 0..19 */
    CU_ASSERT_EQUAL(partition_log_add_aborted_txn(log, 1, 0, 5, 100), LOG_OK);
    CU_ASSERT_EQUAL(partition_log_add_aborted_txn(log, 2, 1, 7, 1), LOG_OK);
    log_aborted_txn_t out[4];
    CU_ASSERT_EQUAL(collect(log, 0, 50, out, 4), 1);
    CU_ASSERT_EQUAL(out[0].producer_id, 1);
    /* From past the first entry, the second is found. */
    CU_ASSERT_EQUAL(collect(log, 6, 50, out, 4), 1);
    CU_ASSERT_EQUAL(out[0].producer_id, 2);
    partition_log_close(log);
    free(d);
}

/* ---- truncation, retention ---- */

static void test_truncation(void)
{
    char *d = fresh_dir("truncation");
    sim_t *s = calloc(1, sizeof(*s));
    sim_run(s, d, 11);
    partition_log_t *log = s->log;
    const int64_t end = partition_log_end_offset(log);
    int txn_files = count_files(d, ".txnindex");
    CU_ASSERT(txn_files > 3);

    /* Cut at the middle abort marker: it and everything after go. */
    const size_t mid = s->naborted / 2;
    const int64_t cut = s->aborted[mid].last_offset;
    CU_ASSERT_EQUAL(partition_log_truncate_to(log, cut), LOG_OK);
    CU_ASSERT_EQUAL(partition_log_end_offset(log), cut);
    s->naborted = mid;
    check_collect_everywhere(s);
    CU_ASSERT(count_files(d, ".txnindex") < txn_files);
    CU_ASSERT_EQUAL(count_files(d, ".txnindex") > 0, true);
    /* Ordering restarts below the cut: the next abort may reuse offsets. */
    append_data(log, 2, 999);
    int64_t marker = append_marker(log, 1000, false);
    CU_ASSERT_EQUAL(marker, cut + 2);
    CU_ASSERT_EQUAL(partition_log_add_aborted_txn(log, 1000, cut, marker, marker + 1), LOG_OK);
    s->aborted[s->naborted++] = (log_aborted_txn_t){1000, cut, marker, marker + 1};
    check_collect_everywhere(s);
    CU_ASSERT(end > marker);

    /* Fully: every .txnindex goes, and the log takes new entries. */
    CU_ASSERT_EQUAL(partition_log_truncate_fully(log, 500), LOG_OK);
    CU_ASSERT_EQUAL(count_files(d, ".txnindex"), 0);
    log_aborted_txn_t out[2];
    CU_ASSERT_EQUAL(collect(log, 500, 600, out, 2), 0);
    append_data(log, 2, 5);
    marker = append_marker(log, 5, false);
    CU_ASSERT_EQUAL(partition_log_add_aborted_txn(log, 5, 500, marker, marker + 1), LOG_OK);
    CU_ASSERT_EQUAL(collect(log, 500, 600, out, 2), 1);
    partition_log_close(log);
    free(s);
    free(d);
}

/* A stale .txnindex where truncate_fully restarts at the same base. */
static void test_truncate_fully_same_base(void)
{
    char *d = fresh_dir("same-base");
    partition_log_t *log;
    CU_ASSERT_EQUAL_FATAL(partition_log_open(d, &cfg, 0, true, &log), LOG_OK);
    append_data(log, 4, 1);
    CU_ASSERT_EQUAL(partition_log_add_aborted_txn(log, 1, 0, 3, 4), LOG_OK);
    CU_ASSERT_EQUAL(count_files(d, ".txnindex"), 1);
    CU_ASSERT_EQUAL(partition_log_truncate_fully(log, 0), LOG_OK);
    CU_ASSERT_EQUAL(count_files(d, ".txnindex"), 0);
    append_data(log, 4, 2);
    log_aborted_txn_t out[2];
    CU_ASSERT_EQUAL(collect(log, 0, 4, out, 2), 0);
    CU_ASSERT_EQUAL(partition_log_add_aborted_txn(log, 2, 1, 2, 3), LOG_OK);
    CU_ASSERT_EQUAL(collect(log, 0, 4, out, 2), 1);
    CU_ASSERT_EQUAL(out[0].producer_id, 2);
    partition_log_close(log);
    free(d);
}

static void test_retention_deletes_index(void)
{
    char *d = fresh_dir("retention");
    sim_t *s = calloc(1, sizeof(*s));
    sim_run(s, d, 13);
    partition_log_t *log = s->log;
    const int txn_files = count_files(d, ".txnindex");
    log_config_t c = *partition_log_config(log);
    c.retention_bytes = partition_log_size_bytes(log) / 2;
    c.segment_ms = INT64_MAX / 2;
    partition_log_set_config(log, &c);
    partition_log_set_high_watermark(log, partition_log_end_offset(log));
    CU_ASSERT(partition_log_tick(log, 0) > 0);
    const int64_t start = partition_log_start_offset(log);
    CU_ASSERT(start > 0);

    /* Exactly the surviving segments' entries remain on disk. */
    int with_entries = 0;
    DIR *dd = opendir(d);
    struct dirent *de;
    while ((de = readdir(dd)) != NULL) {
        if (strstr(de->d_name, ".txnindex") == NULL)
            continue;
        CU_ASSERT(strtoll(de->d_name, NULL, 10) >= start);
        with_entries++;
    }
    closedir(dd);
    CU_ASSERT(with_entries < txn_files);
    size_t kept = 0;
    for (size_t i = 0; i < s->naborted; i++)
        if (s->aborted[i].last_offset >= start)
            s->aborted[kept++] = s->aborted[i];
    s->naborted = kept;
    CU_ASSERT(kept > 0);
    check_collect_everywhere(s);
    partition_log_close(log);
    free(s);
    free(d);
}

/* ---- recovery ---- */

static void test_recovery(void)
{
    char *d = fresh_dir("recovery");
    sim_t *s = calloc(1, sizeof(*s));
    sim_run(s, d, 17);
    /* The last segment holding entries, and its newest entry. */
    const log_aborted_txn_t last = s->aborted[s->naborted - 1];
    int64_t base = partition_log_active_segment_base(s->log);
    CU_ASSERT(last.last_offset >= base);
    char *txn_path = test_seg_path(d, base, ".txnindex");
    char *log_path = test_seg_path(d, base, ".log");
    const int64_t txn_size = test_file_size(txn_path);
    CU_ASSERT_FATAL(txn_size >= 34);
    partition_log_abandon(s->log); /* a crash */

    /* The .log loses its tail down to the newest marker: the entry for it
     * lies at the recovered end and goes; a torn 10 bytes of index too. */
    int64_t pos = 0;
    {
        /* The marker is the last batch: 78 bytes at the end. */
        pos = test_file_size(log_path) - RECORD_BATCH_TXN_MARKER_SIZE;
        CU_ASSERT_EQUAL_FATAL(truncate(log_path, pos), 0);
    }
    int fd = open(txn_path, O_WRONLY | O_APPEND);
    CU_ASSERT_EQUAL(write(fd, "0123456789", 10), 10);
    close(fd);
    partition_log_t *log;
    CU_ASSERT_EQUAL_FATAL(partition_log_open(d, &cfg, 0, false, &log), LOG_OK);
    s->log = log;
    CU_ASSERT_EQUAL(partition_log_end_offset(log), last.last_offset);
    CU_ASSERT_EQUAL(test_file_size(txn_path), txn_size - 34);
    s->naborted--;
    check_collect_everywhere(s);
    /* The recovered log takes the entry again once the marker is back. */
    int64_t marker = append_marker(log, last.producer_id, false);
    CU_ASSERT_EQUAL(marker, last.last_offset);
    CU_ASSERT_EQUAL(partition_log_add_aborted_txn(log, last.producer_id, last.first_offset,
                                                  last.last_offset, last.last_stable_offset),
                    LOG_OK);
    s->naborted++;
    check_collect_everywhere(s);
    partition_log_close(log);

    /* A torn tail alone, on a clean open. */
    fd = open(txn_path, O_WRONLY | O_APPEND);
    CU_ASSERT_EQUAL(write(fd, "x", 1), 1);
    close(fd);
    CU_ASSERT_EQUAL_FATAL(partition_log_open(d, &cfg, 0, true, &s->log), LOG_OK);
    CU_ASSERT_EQUAL(test_file_size(txn_path), txn_size);
    check_collect_everywhere(s);
    partition_log_close(s->log);

    /* An entry of an unknown version ends what is kept. */
    fd = open(txn_path, O_WRONLY);
    CU_ASSERT_EQUAL(pwrite(fd, "\x00\x01", 2, txn_size - 34), 2);
    close(fd);
    CU_ASSERT_EQUAL_FATAL(partition_log_open(d, &cfg, 0, true, &s->log), LOG_OK);
    CU_ASSERT_EQUAL(test_file_size(txn_path), txn_size - 34);
    s->naborted--;
    check_collect_everywhere(s);
    partition_log_close(s->log);

    /* An orphan .txnindex (no .log) is removed at open. */
    char *orphan = test_seg_path(d, 999999, ".txnindex");
    fd = open(orphan, O_WRONLY | O_CREAT, 0644);
    close(fd);
    CU_ASSERT_EQUAL_FATAL(partition_log_open(d, &cfg, 0, true, &s->log), LOG_OK);
    CU_ASSERT_EQUAL(test_file_size(orphan), -1);
    partition_log_close(s->log);

    free(orphan);
    free(txn_path);
    free(log_path);
    free(s);
    free(d);
}

/* The replica layer's replay: drop from an offset, then re-add; entries go
 * to the segment that holds their marker, not the active one. */
static void test_drop_and_replay(void)
{
    char *d = fresh_dir("replay");
    sim_t *s = calloc(1, sizeof(*s));
    sim_run(s, d, 19);
    partition_log_t *log = s->log;
    const size_t from = s->naborted / 3;
    const int64_t offset = s->aborted[from].last_offset;
    const int64_t active = partition_log_active_segment_base(log);
    CU_ASSERT(offset < active);
    CU_ASSERT_EQUAL(partition_log_drop_aborted_txns_from(log, offset), LOG_OK);
    log_aborted_txn_t out[SIM_MAX_TXNS];
    CU_ASSERT_EQUAL(collect(log, offset, partition_log_end_offset(log), out, SIM_MAX_TXNS), 0);
    CU_ASSERT_EQUAL(count_files(d, ".txnindex") > 0, true);

    /* Re-added in order, they land where they were. */
    for (size_t i = from; i < s->naborted; i++)
        CU_ASSERT_EQUAL(partition_log_add_aborted_txn(
                            log, s->aborted[i].producer_id, s->aborted[i].first_offset,
                            s->aborted[i].last_offset, s->aborted[i].last_stable_offset),
                        LOG_OK);
    check_collect_everywhere(s);
    char *active_path = test_seg_path(d, active, ".txnindex");
    int64_t in_active = 0;
    for (size_t i = 0; i < s->naborted; i++)
        in_active += s->aborted[i].last_offset >= active;
    CU_ASSERT_EQUAL(test_file_size(active_path) < 0 ? 0 : test_file_size(active_path),
                    34 * in_active);
    free(active_path);
    /* Durable: a crash right after a flush keeps them. */
    CU_ASSERT_EQUAL(partition_log_flush(log), LOG_OK);
    partition_log_abandon(log);
    CU_ASSERT_EQUAL_FATAL(partition_log_open(d, &cfg, 0, false, &s->log), LOG_OK);
    check_collect_everywhere(s);
    partition_log_close(s->log);
    free(s);
    free(d);
}

/* ---- control batches ---- */

static void test_control_append(void)
{
    char *d = fresh_dir("control");
    char *f = fresh_dir("control-follower");
    partition_log_t *log, *follower;
    CU_ASSERT_EQUAL_FATAL(partition_log_open(d, &cfg, 0, true, &log), LOG_OK);
    CU_ASSERT_EQUAL_FATAL(partition_log_open(f, &cfg, 0, true, &follower), LOG_OK);
    append_data(log, 3, 1);

    uint8_t m[RECORD_BATCH_TXN_MARKER_SIZE];
    log_append_info_t info;
    /* A client may not send one. */
    record_batch_build_txn_marker(m, 42, 3, true, 9, 5000);
    CU_ASSERT_EQUAL(partition_log_append(log, m, sizeof(m), 6, 5000, &info), LOG_ERR_CONTROL_BATCH);
    CU_ASSERT_EQUAL(partition_log_end_offset(log), 3);
    /* Two batches, or a short one, are not one marker. */
    uint8_t two[2 * RECORD_BATCH_TXN_MARKER_SIZE];
    memcpy(two, m, sizeof(m));
    memcpy(two + sizeof(m), m, sizeof(m));
    CU_ASSERT_EQUAL(partition_log_append_control(log, two, sizeof(two), 6, 5000, &info),
                    LOG_ERR_BAD_LENGTH);
    CU_ASSERT_EQUAL(partition_log_append_control(log, m, sizeof(m) - 1, 6, 5000, &info),
                    LOG_ERR_BAD_LENGTH);
    m[BATCH_CRC] ^= 1;
    CU_ASSERT_EQUAL(partition_log_append_control(log, m, sizeof(m), 6, 5000, &info),
                    LOG_ERR_BAD_CRC);
    m[BATCH_CRC] ^= 1;
    CU_ASSERT_EQUAL(partition_log_end_offset(log), 3);

    CU_ASSERT_EQUAL(partition_log_append_control(log, m, sizeof(m), 6, 5000, &info), LOG_OK);
    CU_ASSERT_EQUAL(info.first_offset, 3);
    CU_ASSERT_EQUAL(info.last_offset, 3);
    CU_ASSERT_EQUAL(info.record_count, 1);
    CU_ASSERT_EQUAL(info.batch_count, 1);
    CU_ASSERT_EQUAL(info.max_timestamp, 5000);
    CU_ASSERT_EQUAL(partition_log_latest_epoch(log), 6);
    append_data(log, 2, 2);

    /* Stored with its offset and epoch stamped, still a valid marker. */
    uint8_t *data;
    size_t len;
    log_read_t rd;
    CU_ASSERT_EQUAL_FATAL(test_read(log, 3, 1, 4, &data, &len, &rd), LOG_OK);
    CU_ASSERT_EQUAL_FATAL(len, RECORD_BATCH_TXN_MARKER_SIZE);
    record_batch_header_t h;
    CU_ASSERT_TRUE(record_batch_read_header(data, len, &h));
    CU_ASSERT_EQUAL(h.base_offset, 3);
    CU_ASSERT_EQUAL(h.leader_epoch, 6);
    CU_ASSERT_TRUE(record_batch_is_control(&h));
    CU_ASSERT_EQUAL(h.producer_id, 42);
    int32_t coordinator_epoch;
    CU_ASSERT_EQUAL(record_batch_parse_txn_marker(data, len, &coordinator_epoch),
                    RECORD_BATCH_MARKER_COMMIT);
    CU_ASSERT_EQUAL(coordinator_epoch, 9);
    free(data);

    /* A follower copies the whole log, the marker included, byte for byte. */
    CU_ASSERT_EQUAL_FATAL(test_read(log, 0, 1 << 20, 6, &data, &len, &rd), LOG_OK);
    CU_ASSERT_EQUAL(partition_log_append_replica(follower, data, len, &info), LOG_OK);
    CU_ASSERT_EQUAL(info.first_offset, 0);
    CU_ASSERT_EQUAL(info.last_offset, 5);
    CU_ASSERT_EQUAL(partition_log_latest_epoch(follower), 6);
    uint8_t *copy;
    size_t copy_len;
    CU_ASSERT_EQUAL_FATAL(test_read(follower, 0, 1 << 20, 6, &copy, &copy_len, &rd), LOG_OK);
    CU_ASSERT_EQUAL_FATAL(copy_len, len);
    CU_ASSERT_EQUAL(memcmp(copy, data, len), 0);
    CU_ASSERT_EQUAL(partition_log_add_aborted_txn(follower, 42, 0, 3, 4), LOG_OK);
    free(copy);
    free(data);

    /* Recovery re-validates control batches like any other. */
    partition_log_abandon(follower);
    CU_ASSERT_EQUAL_FATAL(partition_log_open(f, &cfg, 0, false, &follower), LOG_OK);
    CU_ASSERT_EQUAL(partition_log_end_offset(follower), 6);
    log_aborted_txn_t out[1];
    CU_ASSERT_EQUAL(collect(follower, 0, 6, out, 1), 1);
    partition_log_close(follower);
    partition_log_close(log);
    free(d);
    free(f);
}

static void test_active_segment_base(void)
{
    char *d = fresh_dir("active-base");
    log_config_t c = cfg;
    c.segment_bytes = 600;
    partition_log_t *log;
    CU_ASSERT_EQUAL_FATAL(partition_log_open(d, &c, 0, true, &log), LOG_OK);
    CU_ASSERT_EQUAL(partition_log_active_segment_base(log), 0);
    int64_t last_base = 0;
    for (int i = 0; i < 20; i++) {
        int64_t before = partition_log_end_offset(log);
        int segs = count_files(d, ".log");
        append_data(log, 2, (uint32_t)i);
        if (count_files(d, ".log") > segs)
            last_base = before;
        CU_ASSERT_EQUAL(partition_log_active_segment_base(log), last_base);
    }
    CU_ASSERT(last_base > 0);
    partition_log_close(log);
    free(d);
}

void log_test_add_txn(void)
{
    CU_pSuite s = CU_add_suite("log_txn", setup, teardown);
    CU_add_test(s, ".txnindex file format, lazily created", test_file_format);
    CU_add_test(s, "aborted txn refusals", test_add_refusals);
    CU_add_test(s, "collect across segments", test_collect_across_segments);
    CU_add_test(s, "collect stops at the last stable offset",
                test_collect_stops_at_last_stable_offset);
    CU_add_test(s, "truncation drops entries", test_truncation);
    CU_add_test(s, "truncate fully at the same base", test_truncate_fully_same_base);
    CU_add_test(s, "retention deletes the index", test_retention_deletes_index);
    CU_add_test(s, "recovery: end, torn tail, bad version, orphan", test_recovery);
    CU_add_test(s, "drop and replay", test_drop_and_replay);
    CU_add_test(s, "control append, replica copy", test_control_append);
    CU_add_test(s, "active segment base", test_active_segment_base);
}
