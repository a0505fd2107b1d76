/* A failed fsync is never retried: the log refuses everything from then
 * on and its recovery point stays put (Linux reports a writeback error
 * once and may drop the failed pages, so a retry would "succeed" over lost
 * data). fdatasync is wrapped at link time (-Wl,--wrap=fdatasync, see
 * log.cmake) so a test can make it fail with EIO. */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <ev.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log_manager.h"
#include "log_test.h"
#include "log_test_util.h"

/* fdatasync calls to fail with EIO from now on (the workers call it too). */
static atomic_int fail_fdatasyncs;

int __real_fdatasync(int fd);
int __wrap_fdatasync(int fd);
int __wrap_fdatasync(int fd)
{
    int left = atomic_load(&fail_fdatasyncs);
    while (left > 0) {
        if (atomic_compare_exchange_weak(&fail_fdatasyncs, &left, left - 1)) {
            errno = EIO;
            return -1;
        }
    }
    return __real_fdatasync(fd);
}

static log_err_t append_one(partition_log_t *log, uint32_t seed)
{
    size_t len;
    uint8_t *b = log_test_batch(2, 50, 100 + seed, seed, &len);
    log_append_info_t info;
    log_err_t err = partition_log_append(log, b, len, 0, 0, &info);
    free(b);
    return err;
}

static bool exists(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

/* Inline flushes (no pool): flush.messages=1 fsyncs on each append. */
static void test_fsync_failure_inline(void)
{
    char *dir = log_test_tmpdir();
    log_config_t cfg;
    log_config_defaults(&cfg);
    cfg.flush_messages = 1;
    partition_log_t *log;
    CU_ASSERT_EQUAL_FATAL(partition_log_open(dir, &cfg, 0, true, &log), LOG_OK);
    CU_ASSERT_EQUAL(append_one(log, 1), LOG_OK);
    int64_t point = partition_log_recovery_point(log);
    CU_ASSERT_EQUAL(point, partition_log_end_offset(log));
    CU_ASSERT_FALSE(partition_log_failed(log));

    atomic_store(&fail_fdatasyncs, 1);
    CU_ASSERT_EQUAL(append_one(log, 2), LOG_ERR_IO);
    CU_ASSERT_EQUAL(atomic_load(&fail_fdatasyncs), 0);
    CU_ASSERT_TRUE(partition_log_failed(log));
    /* The disk "works" again: nothing is retried, nothing advances. */
    CU_ASSERT_EQUAL(append_one(log, 3), LOG_ERR_IO);
    CU_ASSERT_EQUAL(partition_log_flush(log), LOG_ERR_IO);
    CU_ASSERT_EQUAL(partition_log_recovery_point(log), point);
    log_read_t rd;
    CU_ASSERT_EQUAL(partition_log_read(log, 0, 1 << 20, INT64_MAX, &rd), LOG_ERR_IO);
    partition_log_read_release(&rd);
    partition_log_close(log);
    log_test_rmrf(dir);
    free(dir);
}

static void drain_pool(struct ev_loop *loop, worker_pool_t *pool)
{
    time_t deadline = time(NULL) + 10;
    while (worker_pool_pending(pool) > 0 && time(NULL) < deadline) {
        ev_run(loop, EVRUN_ONCE | EVRUN_NOWAIT);
        sched_yield();
    }
    CU_ASSERT_EQUAL(worker_pool_pending(pool), 0);
}

/* Flushes on the worker pool: the failed job's completion marks the log
 * failed; the log manager opens it no more, and writes no clean-shutdown
 * marker, so the next start re-validates it from the recovery point. */
static void test_fsync_failure_pool(void)
{
    char *root = log_test_tmpdir();
    char dir[2048];
    snprintf(dir, sizeof(dir), "%s/logs", root);
    log_config_t defaults;
    log_config_defaults(&defaults);
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    worker_pool_t *pool = worker_pool_create(loop, 2, 64);
    log_manager_t *lm;
    CU_ASSERT_EQUAL_FATAL(log_manager_open(dir, &defaults, &lm), LOG_OK);
    log_manager_set_worker_pool(lm, pool);
    log_config_t cfg = defaults;
    cfg.flush_messages = 1;
    partition_log_t *log, *other;
    CU_ASSERT_EQUAL_FATAL(log_manager_get_or_create(lm, "t", 0, &cfg, &log), LOG_OK);
    CU_ASSERT_EQUAL_FATAL(log_manager_get_or_create(lm, "t", 1, &cfg, &other), LOG_OK);
    CU_ASSERT_EQUAL(append_one(log, 1), LOG_OK);
    drain_pool(loop, pool);
    int64_t point = partition_log_recovery_point(log);
    CU_ASSERT_EQUAL(point, partition_log_end_offset(log));

    atomic_store(&fail_fdatasyncs, 1);
    CU_ASSERT_EQUAL(append_one(log, 2), LOG_OK); /* queues the fsync that fails */
    drain_pool(loop, pool);
    CU_ASSERT_EQUAL(atomic_load(&fail_fdatasyncs), 0);
    CU_ASSERT_TRUE(partition_log_failed(log));
    CU_ASSERT_EQUAL(partition_log_recovery_point(log), point);
    /* Neither a later flush policy fsync nor a tick retries. */
    CU_ASSERT_EQUAL(append_one(log, 3), LOG_ERR_IO);
    log_manager_tick(lm, 1000000);
    drain_pool(loop, pool);
    CU_ASSERT_EQUAL(partition_log_flush(log), LOG_ERR_IO);
    CU_ASSERT_EQUAL(partition_log_recovery_point(log), point);
    partition_log_t *again = NULL;
    CU_ASSERT_EQUAL(log_manager_get_or_create(lm, "t", 0, &cfg, &again), LOG_ERR_IO);
    /* The other partition goes on. */
    CU_ASSERT_EQUAL(append_one(other, 4), LOG_OK);
    drain_pool(loop, pool);
    CU_ASSERT_EQUAL(partition_log_recovery_point(other), partition_log_end_offset(other));

    worker_pool_stop(pool);
    log_manager_close(lm);
    worker_pool_free(pool);
    ev_loop_destroy(loop);
    CU_ASSERT_FALSE(exists(dir, ".kafka_cleanshutdown"));
    log_test_rmrf(root);
    free(root);
}

void log_test_add_fsync(void)
{
    CU_pSuite s = CU_add_suite("log_fsync", NULL, NULL);
    CU_add_test(s, "a failed fsync is not retried (inline)", test_fsync_failure_inline);
    CU_add_test(s, "a failed fsync is not retried (worker pool)", test_fsync_failure_pool);
}
