/* The log's side of transactions: control batches (the leader's marker
 * append, a follower copying it, clients still refused) and the active
 * segment's base. */
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
    free(copy);
    free(data);

    /* Recovery re-validates control batches like any other. */
    partition_log_abandon(follower);
    CU_ASSERT_EQUAL_FATAL(partition_log_open(f, &cfg, 0, false, &follower), LOG_OK);
    CU_ASSERT_EQUAL(partition_log_end_offset(follower), 6);
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
    CU_add_test(s, "control append, replica copy", test_control_append);
    CU_add_test(s, "active segment base", test_active_segment_base);
}
