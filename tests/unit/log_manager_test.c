/* Log manager: partition directories, the three checkpoint files in
 * Kafka's format, the clean-shutdown marker, and recovery without it. */
#include <CUnit/CUnit.h>
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

void log_test_add_manager(void)
{
    CU_pSuite s = CU_add_suite("log_manager", NULL, NULL);
    CU_add_test(s, "lifecycle, checkpoints, marker, recovery", test_manager_lifecycle);
    CU_add_test(s, "one opener per directory (.lock)", test_manager_lock);
}
