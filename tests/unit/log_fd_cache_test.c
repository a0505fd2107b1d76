/* The .log descriptor cache: the bound holds with many more segments than
 * slots, an evicted active segment reopens for the next append, reads of
 * evicted segments reopen, ranges handed out before an eviction stay
 * readable, and a read's dup at the process's descriptor limit closes a
 * cached descriptor for it. */
#include <CUnit/CUnit.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "log_internal.h"
#include "log_test.h"
#include "log_test_util.h"

#define FDC_LOGS    6
#define FDC_BATCHES 30
#define FDC_SLOTS   4

/* Descriptors this process has open. */
static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    closedir(d);
    return n - 1; /* opendir's own */
}

typedef struct fdc_log {
    partition_log_t *log;
    uint8_t *bytes; /* every batch appended, as stored (offsets stamped) */
    size_t len;
} fdc_log_t;

static void fdc_append(fdc_log_t *l, uint32_t seed)
{
    size_t len;
    uint8_t *b = log_test_batch(3, 40, 1000 + seed, seed, &len);
    log_append_info_t info;
    CU_ASSERT_EQUAL_FATAL(partition_log_append(l->log, b, len, 0, 1000 + seed, &info), LOG_OK);
    l->bytes = realloc(l->bytes, l->len + len);
    memcpy(l->bytes + l->len, b, len); /* stamped in place by the append */
    l->len += len;
    free(b);
}

/* Reads everything back in small reads and compares with what was
 * appended. */
static void fdc_check(fdc_log_t *l)
{
    size_t at = 0;
    int64_t offset = partition_log_start_offset(l->log);
    while (offset < partition_log_end_offset(l->log)) {
        uint8_t *data;
        size_t len;
        log_read_t rd;
        CU_ASSERT_EQUAL_FATAL(test_read(l->log, offset, 300, INT64_MAX, &data, &len, &rd), LOG_OK);
        CU_ASSERT_FATAL(len > 0 && at + len <= l->len);
        CU_ASSERT(memcmp(data, l->bytes + at, len) == 0);
        at += len;
        offset = rd.next_offset;
        free(data);
        CU_ASSERT_TRUE(partition_log_open_files() <= FDC_SLOTS);
    }
    CU_ASSERT_EQUAL(at, l->len);
}

static void test_bound_and_reopen(void)
{
    char *root = log_test_tmpdir();
    log_config_t cfg;
    log_config_defaults(&cfg);
    cfg.segment_bytes = 600; /* a roll every few batches */
    partition_log_set_max_open_files(FDC_SLOTS);
    int fds_before = open_fds();
    fdc_log_t logs[FDC_LOGS] = {0};
    for (int i = 0; i < FDC_LOGS; i++) {
        char d[4096];
        snprintf(d, sizeof(d), "%s/p-%d", root, i);
        CU_ASSERT_EQUAL_FATAL(partition_log_open(d, &cfg, 0, true, &logs[i].log), LOG_OK);
    }
    /* Interleaved: every append meets an active segment the others
     * evicted since its last one. */
    for (int b = 0; b < FDC_BATCHES; b++) {
        for (int i = 0; i < FDC_LOGS; i++) {
            fdc_append(&logs[i], (uint32_t)(b * FDC_LOGS + i));
            CU_ASSERT_TRUE(partition_log_open_files() <= FDC_SLOTS);
        }
    }
    /* Aborted-transaction entries in several segments of every log: the
     * .txnindex files hold no descriptor either. */
    for (int i = 0; i < FDC_LOGS; i++)
        for (int64_t last = 2; last < 3 * FDC_BATCHES; last += 20)
            CU_ASSERT_EQUAL(partition_log_add_aborted_txn(logs[i].log, 7, last - 1, last, last),
                            LOG_OK);
    CU_ASSERT_TRUE(open_fds() <= fds_before + FDC_SLOTS);
    log_aborted_txn_t txns[16];
    size_t ntxns;
    CU_ASSERT_EQUAL(partition_log_collect_aborted_txns(logs[1].log, 0, INT64_MAX, txns, 16, &ntxns),
                    LOG_OK);
    CU_ASSERT_EQUAL(ntxns, (size_t)((3 * FDC_BATCHES - 2 + 19) / 20));
    int64_t end0 = partition_log_end_offset(logs[0].log);
    CU_ASSERT_EQUAL(end0, 3 * FDC_BATCHES);
    for (int i = 0; i < FDC_LOGS; i++)
        fdc_check(&logs[i]);

    /* A read's ranges stay readable after every slot was reused. */
    log_read_t rd;
    CU_ASSERT_EQUAL_FATAL(partition_log_read(logs[0].log, 0, 1 << 20, INT64_MAX, &rd), LOG_OK);
    CU_ASSERT_TRUE(rd.nranges > 1);
    for (int i = 1; i < FDC_LOGS; i++)
        fdc_check(&logs[i]);
    size_t at = 0;
    for (int r = 0; r < rd.nranges; r++) {
        uint8_t *buf = malloc((size_t)rd.ranges[r].length);
        CU_ASSERT_EQUAL(
            pread(rd.ranges[r].fd, buf, (size_t)rd.ranges[r].length, (off_t)rd.ranges[r].position),
            rd.ranges[r].length);
        CU_ASSERT(memcmp(buf, logs[0].bytes + at, (size_t)rd.ranges[r].length) == 0);
        at += (size_t)rd.ranges[r].length;
        free(buf);
    }
    partition_log_read_release(&rd);

    /* Closed and reopened (a clean start): same ends, same bytes, bound
     * still held while opening. */
    for (int i = 0; i < FDC_LOGS; i++) {
        partition_log_close(logs[i].log);
        char d[4096];
        snprintf(d, sizeof(d), "%s/p-%d", root, i);
        CU_ASSERT_EQUAL_FATAL(partition_log_open(d, &cfg, 0, true, &logs[i].log), LOG_OK);
        CU_ASSERT_TRUE(partition_log_open_files() <= FDC_SLOTS);
    }
    for (int i = 0; i < FDC_LOGS; i++) {
        CU_ASSERT_EQUAL(partition_log_end_offset(logs[i].log), end0);
        fdc_check(&logs[i]);
        fdc_append(&logs[i], 9999);
        fdc_check(&logs[i]);
    }
    for (int i = 0; i < FDC_LOGS; i++) {
        partition_log_close(logs[i].log);
        free(logs[i].bytes);
    }
    CU_ASSERT_EQUAL(partition_log_open_files(), 0);
    CU_ASSERT_EQUAL(open_fds(), fds_before);
    partition_log_set_max_open_files(1024);
    log_test_rmrf(root);
    free(root);
}

static log_err_t append_small(partition_log_t *log, uint32_t seed)
{
    size_t len;
    uint8_t *b = log_test_batch(2, 50, 100 + seed, seed, &len);
    log_append_info_t info;
    log_err_t err = partition_log_append(log, b, len, 0, 0, &info);
    free(b);
    return err;
}

/* With every descriptor of the process in use, a read still gets its dup:
 * one cached .log descriptor (another log's) is closed for it. */
static void test_read_dup_emfile(void)
{
    char *root = log_test_tmpdir();
    char da[2048], db[2048];
    snprintf(da, sizeof(da), "%s/a", root);
    snprintf(db, sizeof(db), "%s/b", root);
    log_config_t cfg;
    log_config_defaults(&cfg);
    partition_log_t *a, *b;
    CU_ASSERT_EQUAL_FATAL(partition_log_open(da, &cfg, 0, true, &a), LOG_OK);
    CU_ASSERT_EQUAL_FATAL(partition_log_open(db, &cfg, 0, true, &b), LOG_OK);
    CU_ASSERT_EQUAL(append_small(a, 1), LOG_OK);
    CU_ASSERT_EQUAL(append_small(b, 2), LOG_OK); /* both .log descriptors cached */
    size_t cached = partition_log_open_files();
    CU_ASSERT(cached >= 2);

    struct rlimit saved;
    CU_ASSERT_EQUAL_FATAL(getrlimit(RLIMIT_NOFILE, &saved), 0);
    int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    CU_ASSERT_FATAL(null_fd >= 0);
    struct rlimit low = saved;
    low.rlim_cur = (rlim_t)null_fd + 64;
    CU_ASSERT_EQUAL_FATAL(setrlimit(RLIMIT_NOFILE, &low), 0);
    int fillers[128];
    int nfill = 0;
    while (nfill < 128) {
        int fd = dup(null_fd);
        if (fd < 0)
            break;
        fillers[nfill++] = fd;
    }
    CU_ASSERT(nfill < 128); /* the limit was reached */
    log_read_t rd;
    log_err_t err = partition_log_read(a, 0, 1 << 20, INT64_MAX, &rd);
    CU_ASSERT_EQUAL(err, LOG_OK);
    CU_ASSERT_EQUAL(rd.nranges, 1);
    CU_ASSERT_EQUAL(partition_log_open_files(), cached - 1);
    partition_log_read_release(&rd);
    for (int i = 0; i < nfill; i++)
        close(fillers[i]);
    close(null_fd);
    CU_ASSERT_EQUAL(setrlimit(RLIMIT_NOFILE, &saved), 0);

    uint8_t *data;
    size_t len;
    CU_ASSERT_EQUAL(test_read(b, 0, 1 << 20, INT64_MAX, &data, &len, &rd), LOG_OK);
    CU_ASSERT(len > 0);
    free(data);
    partition_log_close(a);
    partition_log_close(b);
    log_test_rmrf(root);
    free(root);
}

void log_test_add_fd_cache(void)
{
    CU_pSuite s = CU_add_suite("log_fd_cache", NULL, NULL);
    CU_add_test(s, "bound, evicted active segment, reads", test_bound_and_reopen);
    CU_add_test(s, "a read's dup on EMFILE evicts one descriptor", test_read_dup_emfile);
}
