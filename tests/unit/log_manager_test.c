/* Log manager: partition directories, the three checkpoint files in
 * Kafka's format, the clean-shutdown marker, and recovery without it. */
#include <CUnit/CUnit.h>
#include <dirent.h>
#include <ev.h>
#include <sched.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log_manager.h"
#include "log_test.h"
#include "log_test_util.h"

static char *read_text(const char *dir, const char *name)
{
    char path[8192];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    char *text = calloc(1, 65536);
    size_t n = fread(text, 1, 65535, f);
    text[n] = '\0';
    fclose(f);
    return text;
}

static bool exists(const char *dir, const char *name)
{
    char path[8192];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return test_file_size(path) >= 0;
}

static void append_n(partition_log_t *log, int n)
{
    for (int i = 0; i < n; i++) {
        size_t len;
        uint8_t *b = log_test_batch(2, 50, 100 + i, (uint32_t)i, &len);
        log_append_info_t info;
        CU_ASSERT_EQUAL(partition_log_append(log, b, len, 0, 0, &info), LOG_OK);
        free(b);
    }
}

static void count_visit(void *arg, const char *topic, int32_t partition, partition_log_t *log)
{
    (void)topic;
    (void)partition;
    (void)log;
    (*(int *)arg)++;
}

static void test_manager_lifecycle(void)
{
    char *root = log_test_tmpdir();
    char dir[2048];
    snprintf(dir, sizeof(dir), "%s/data/logs", root); /* created, parents too */
    log_config_t defaults;
    log_config_defaults(&defaults);
    log_manager_t *lm;
    CU_ASSERT_EQUAL_FATAL(log_manager_open(dir, &defaults, &lm), LOG_OK);
    partition_log_t *a, *b, *c, *again;
    CU_ASSERT_EQUAL_FATAL(log_manager_get_or_create(lm, "orders", 0, NULL, &a), LOG_OK);
    CU_ASSERT_EQUAL_FATAL(log_manager_get_or_create(lm, "orders", 1, NULL, &b), LOG_OK);
    log_config_t small = defaults;
    small.segment_bytes = 1000;
    CU_ASSERT_EQUAL_FATAL(log_manager_get_or_create(lm, "my.topic-x", 3, &small, &c), LOG_OK);
    CU_ASSERT_EQUAL(log_manager_get_or_create(lm, "orders", 0, NULL, &again), LOG_OK);
    CU_ASSERT_PTR_EQUAL(again, a);
    CU_ASSERT_PTR_EQUAL(log_manager_get(lm, "my.topic-x", 3), c);
    CU_ASSERT_PTR_NULL(log_manager_get(lm, "orders", 2));
    CU_ASSERT_EQUAL(partition_log_config(c)->segment_bytes, 1000);
    CU_ASSERT_EQUAL(log_manager_get_or_create(lm, "../evil", 0, NULL, &again), LOG_ERR_IO);
    CU_ASSERT_EQUAL(log_manager_get_or_create(lm, "", 0, NULL, &again), LOG_ERR_IO);
    CU_ASSERT(exists(dir, "orders-0"));
    CU_ASSERT(exists(dir, "my.topic-x-3"));
    append_n(a, 5);
    append_n(c, 12);
    partition_log_set_high_watermark(a, 6);
    partition_log_set_high_watermark(c, 24);
    /* Periodic checkpoint. */
    log_manager_tick(lm, 1000);
    CU_ASSERT_FALSE(exists(dir, "replication-offset-checkpoint"));
    log_manager_tick(lm, 7000);
    char *hw = read_text(dir, "replication-offset-checkpoint");
    CU_ASSERT_PTR_NOT_NULL_FATAL(hw);
    CU_ASSERT(strncmp(hw, "0\n3\n", 4) == 0);
    CU_ASSERT(strstr(hw, "\norders 0 6\n") != NULL);
    CU_ASSERT(strstr(hw, "\nmy.topic-x 3 24\n") != NULL);
    CU_ASSERT(strstr(hw, "\norders 1 0\n") != NULL);
    free(hw);
    int n = 0;
    log_manager_foreach(lm, count_visit, &n);
    CU_ASSERT_EQUAL(n, 3);
    log_manager_close(lm);
    CU_ASSERT(exists(dir, ".kafka_cleanshutdown"));
    char *rp = read_text(dir, "recovery-point-offset-checkpoint");
    CU_ASSERT(strstr(rp, "\norders 0 10\n") != NULL);
    CU_ASSERT(strstr(rp, "\nmy.topic-x 3 24\n") != NULL);
    free(rp);
    char *start = read_text(dir, "log-start-offset-checkpoint");
    CU_ASSERT(strstr(start, "\norders 0 0\n") != NULL);
    free(start);

    /* Clean reopen: everything back, high watermarks restored, marker gone. */
    CU_ASSERT_EQUAL_FATAL(log_manager_open(dir, &defaults, &lm), LOG_OK);
    CU_ASSERT_FALSE(exists(dir, ".kafka_cleanshutdown"));
    a = log_manager_get(lm, "orders", 0);
    c = log_manager_get(lm, "my.topic-x", 3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_PTR_NOT_NULL(log_manager_get(lm, "orders", 1));
    CU_ASSERT_EQUAL(partition_log_end_offset(a), 10);
    CU_ASSERT_EQUAL(partition_log_high_watermark(a), 6);
    CU_ASSERT_EQUAL(partition_log_end_offset(c), 24);
    CU_ASSERT_EQUAL(partition_log_high_watermark(c), 24);
    CU_ASSERT_EQUAL(log_manager_delete(lm, "orders", 1), LOG_OK);
    CU_ASSERT_FALSE(exists(dir, "orders-1"));
    CU_ASSERT_PTR_NULL(log_manager_get(lm, "orders", 1));
    log_manager_close(lm);

    /* Unclean: no marker, and a torn tail beyond the recovery point. */
    char marker[8192];
    snprintf(marker, sizeof(marker), "%s/.kafka_cleanshutdown", dir);
    CU_ASSERT_EQUAL(unlink(marker), 0);
    char pdir[8192];
    snprintf(pdir, sizeof(pdir), "%s/orders-0", dir);
    char *seg = test_seg_path(pdir, 0, ".log");
    int64_t size = test_file_size(seg);
    CU_ASSERT_EQUAL(truncate(seg, size - 10), 0);
    CU_ASSERT_EQUAL_FATAL(log_manager_open(dir, &defaults, &lm), LOG_OK);
    a = log_manager_get(lm, "orders", 0);
    CU_ASSERT_EQUAL(partition_log_end_offset(a), 8);
    CU_ASSERT_EQUAL(partition_log_high_watermark(a), 6);
    CU_ASSERT_EQUAL(test_file_size(seg), size - size / 5);
    CU_ASSERT_PTR_NULL(log_manager_get(lm, "orders", 1));
    log_manager_close(lm);
    free(seg);
    log_test_rmrf(root);
    free(root);
}

/* Two openers of one directory: the second is refused while the first
 * has it (flock conflicts between open file descriptions, so this holds
 * within one process too), and the lock file names the holder's pid. */
static void test_manager_lock(void)
{
    char *root = log_test_tmpdir();
    log_config_t defaults;
    log_config_defaults(&defaults);
    log_manager_t *first, *second = NULL;
    CU_ASSERT_EQUAL_FATAL(log_manager_open(root, &defaults, &first), LOG_OK);
    char *pid = read_text(root, ".lock");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pid);
    CU_ASSERT_EQUAL(atol(pid), (long)getpid());
    free(pid);
    CU_ASSERT_EQUAL(log_manager_open(root, &defaults, &second), LOG_ERR_LOCKED);
    log_manager_close(first);
    /* Closed: the lock is free again, and the file stays. */
    CU_ASSERT_TRUE(exists(root, ".lock"));
    CU_ASSERT_EQUAL_FATAL(log_manager_open(root, &defaults, &second), LOG_OK);
    log_manager_close(second);
    log_test_rmrf(root);
    free(root);
}

/* Runs the loop until the pool has nothing pending, or 10 s passed. */
static void drain_pool(struct ev_loop *loop, worker_pool_t *pool)
{
    time_t deadline = time(NULL) + 10;
    while (worker_pool_pending(pool) > 0 && time(NULL) < deadline) {
        ev_run(loop, EVRUN_ONCE | EVRUN_NOWAIT);
        sched_yield();
    }
    CU_ASSERT_EQUAL(worker_pool_pending(pool), 0);
}

static int count_with_suffix(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name), sl = strlen(suffix);
        n += len >= sl && strcmp(de->d_name + len - sl, suffix) == 0;
    }
    closedir(d);
    return n;
}

/* With a worker pool: flush.messages fsyncs complete on the loop and only
 * then move the recovery point; retention renames segments to .deleted and
 * the worker removes them; the periodic checkpoint lands from the worker;
 * a partition deleted with its jobs in flight is gone after them and its
 * completions touch nothing freed (ASan). */
static void test_manager_worker_pool(void)
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
    cfg.flush_messages = 4; /* two appends of two records */
    cfg.segment_bytes = 400;
    cfg.retention_bytes = 800;
    partition_log_t *a, *b;
    CU_ASSERT_EQUAL_FATAL(log_manager_get_or_create(lm, "t", 0, &cfg, &a), LOG_OK);
    CU_ASSERT_EQUAL_FATAL(log_manager_get_or_create(lm, "t", 1, &cfg, &b), LOG_OK);
    append_n(a, 1);
    int64_t before = partition_log_recovery_point(a);
    append_n(a, 1); /* the fourth message queues an fsync */
    CU_ASSERT_EQUAL(partition_log_recovery_point(a), before);
    drain_pool(loop, pool);
    CU_ASSERT_EQUAL(partition_log_recovery_point(a), partition_log_end_offset(a));

    /* Many small segments, then retention down to ~800 bytes. */
    append_n(a, 30);
    drain_pool(loop, pool);
    char pdir[4096];
    snprintf(pdir, sizeof(pdir), "%s/t-0", dir);
    int logs_before = count_with_suffix(pdir, ".log");
    CU_ASSERT(logs_before > 4);
    partition_log_set_high_watermark(a, partition_log_end_offset(a));
    log_manager_tick(lm, 1000);
    CU_ASSERT(partition_log_start_offset(a) > 0);
    drain_pool(loop, pool);
    CU_ASSERT_EQUAL(count_with_suffix(pdir, ".deleted"), 0);
    CU_ASSERT(count_with_suffix(pdir, ".log") < logs_before);

    /* The checkpoint interval passed: written by the worker. */
    log_manager_tick(lm, 7000);
    drain_pool(loop, pool);
    char *start = read_text(dir, "log-start-offset-checkpoint");
    CU_ASSERT_PTR_NOT_NULL_FATAL(start);
    char want[64];
    snprintf(want, sizeof(want), "\nt 0 %lld\n", (long long)partition_log_start_offset(a));
    CU_ASSERT(strstr(start, want) != NULL);
    free(start);

    /* Deleted with an fsync and an epoch write queued behind it. */
    append_n(b, 2);
    log_append_info_t info;
    size_t len;
    uint8_t *batch = log_test_batch(1, 10, 1, 1, &len);
    CU_ASSERT_EQUAL(partition_log_append(b, batch, len, 3, 0, &info), LOG_OK);
    free(batch);
    CU_ASSERT_EQUAL(log_manager_delete(lm, "t", 1), LOG_OK);
    char bdir[4096];
    snprintf(bdir, sizeof(bdir), "%s/t-1", dir);
    CU_ASSERT_FALSE(exists(dir, "t-1"));
    /* Created again at once: a fresh directory the old jobs never touch. */
    CU_ASSERT_EQUAL_FATAL(log_manager_get_or_create(lm, "t", 1, &cfg, &b), LOG_OK);
    drain_pool(loop, pool);
    CU_ASSERT(exists(dir, "t-1"));
    CU_ASSERT_EQUAL(count_with_suffix(dir, "-delete"), 0);
    CU_ASSERT_EQUAL(count_with_suffix(bdir, "leader-epoch-checkpoint"), 0);

    worker_pool_stop(pool);
    log_manager_close(lm);
    worker_pool_free(pool);
    ev_loop_destroy(loop);
    CU_ASSERT(exists(dir, ".kafka_cleanshutdown"));
    log_test_rmrf(root);
    free(root);
}

void log_test_add_manager(void)
{
    CU_pSuite s = CU_add_suite("log_manager", NULL, NULL);
    CU_add_test(s, "lifecycle, checkpoints, marker, recovery", test_manager_lifecycle);
    CU_add_test(s, "one opener per directory (.lock)", test_manager_lock);
    CU_add_test(s, "disk work on a worker pool", test_manager_worker_pool);
}
