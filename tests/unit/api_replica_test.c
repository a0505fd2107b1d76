/* CUnit tests for the replica manager over a real log manager in a
 * temporary directory: logs created on assignment with the topic's config
 * overrides, leadership and leader epochs recorded, older epochs ignored,
 * removal deleting the log, the listener hearing every change, and the
 * high watermark following appends. The coordinator's callbacks are
 * invoked directly, with the metadata structures the coordinator passes. */
#include <CUnit/Basic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "crc32c.h"
#include "kafka_errors.h"
#include "log_manager.h"
#include "record_batch.h"
#include "replica_manager.h"

void api_replica_suite(void);

static char tmpdir[64];
static log_manager_t *logs;
static broker_config_t cfg;
static replica_manager_t *rm;
static coordinator_callbacks_t cb;
static int events;
static char last_event_topic[64];
static int32_t last_event_partition;

static void on_event(void *arg, const char *topic, int32_t partition)
{
    CU_ASSERT_PTR_EQUAL(arg, &events);
    events++;
    snprintf(last_event_topic, sizeof(last_event_topic), "%s", topic);
    last_event_partition = partition;
}

static int setup(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/vltava-api-replica-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    memset(&cfg, 0, sizeof(cfg));
    cfg.broker_id = 1;
    log_config_defaults(&cfg.log_defaults);
    if (log_manager_open(tmpdir, &cfg.log_defaults, &logs) != LOG_OK)
        return -1;
    rm = replica_manager_new(NULL, &cfg, logs);
    cb = replica_manager_callbacks(rm);
    replica_manager_set_listener(rm, on_event, &events);
    return 0;
}

static int teardown(void)
{
    replica_manager_free(rm);
    log_manager_close(logs);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static bool dir_exists(const char *name)
{
    char path[256];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* A topic as the coordinator hands it over: one partition's state. */
typedef struct topic_fixture {
    char *keys[1];
    char *values[1];
    int32_t replicas[1];
    md_partition_t part;
    md_topic_t topic;
} topic_fixture_t;

static void fixture(topic_fixture_t *f, const char *name, int32_t partition, int32_t leader,
                    int32_t epoch)
{
    memset(f, 0, sizeof(*f));
    f->keys[0] = "max.message.bytes";
    f->values[0] = "5000";
    f->replicas[0] = 1;
    f->part = (md_partition_t){.id = partition,
                               .leader = leader,
                               .leader_epoch = epoch,
                               .replicas = f->replicas,
                               .nreplicas = 1,
                               .isr = f->replicas,
                               .nisr = 1};
    f->topic = (md_topic_t){.name = (char *)name,
                            .npartitions = partition + 1,
                            .config_keys = f->keys,
                            .config_values = f->values,
                            .nconfigs = 1};
}

static void test_assignment_and_fencing(void)
{
    topic_fixture_t f;
    events = 0;
    CU_ASSERT_PTR_NULL(replica_manager_get(rm, "orders", 6, 2));

    fixture(&f, "orders", 2, 1, 3);
    cb.partition_changed(cb.arg, &f.topic, &f.part);
    const replica_partition_t *rp = replica_manager_get(rm, "orders", 6, 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rp);
    CU_ASSERT_TRUE(rp->is_leader);
    CU_ASSERT_EQUAL(rp->leader_id, 1);
    CU_ASSERT_EQUAL(rp->leader_epoch, 3);
    CU_ASSERT_PTR_EQUAL(rp->log, log_manager_get(logs, "orders", 2));
    CU_ASSERT_EQUAL(partition_log_config(rp->log)->max_message_bytes, 5000);
    CU_ASSERT_TRUE(dir_exists("orders-2"));
    CU_ASSERT_EQUAL(events, 1);
    CU_ASSERT_STRING_EQUAL(last_event_topic, "orders");
    CU_ASSERT_EQUAL(last_event_partition, 2);
    /* The name is matched by length: a frame's topic is not NUL-terminated. */
    CU_ASSERT_PTR_EQUAL(replica_manager_get(rm, "orders-x", 6, 2), rp);
    CU_ASSERT_PTR_NULL(replica_manager_get(rm, "orders", 5, 2));
    CU_ASSERT_PTR_NULL(replica_manager_get(rm, "orders", 6, 1));

    /* An older leader epoch is a stale instruction: ignored. */
    fixture(&f, "orders", 2, 2, 2);
    cb.partition_changed(cb.arg, &f.topic, &f.part);
    rp = replica_manager_get(rm, "orders", 6, 2);
    CU_ASSERT_TRUE(rp->is_leader);
    CU_ASSERT_EQUAL(rp->leader_epoch, 3);
    CU_ASSERT_EQUAL(events, 1);

    /* A newer one moves leadership away: this broker follows. */
    fixture(&f, "orders", 2, 2, 4);
    cb.partition_changed(cb.arg, &f.topic, &f.part);
    rp = replica_manager_get(rm, "orders", 6, 2);
    CU_ASSERT_FALSE(rp->is_leader);
    CU_ASSERT_EQUAL(rp->leader_id, 2);
    CU_ASSERT_EQUAL(rp->leader_epoch, 4);
    CU_ASSERT_EQUAL(events, 2);

    cb.partition_removed(cb.arg, "orders", 2);
    CU_ASSERT_PTR_NULL(replica_manager_get(rm, "orders", 6, 2));
    CU_ASSERT_PTR_NULL(log_manager_get(logs, "orders", 2));
    CU_ASSERT_FALSE(dir_exists("orders-2"));
    CU_ASSERT_EQUAL(events, 3);
}

/* One uncompressed RecordBatch v2 of `count` empty records, CRC filled. */
static size_t make_batch(uint8_t *buf, int32_t count)
{
    size_t len = 61;
    for (int32_t i = 0; i < count; i++) {
        /* length 6 (zigzag 12): attributes 0, timestamp delta 0, offset
         * delta i, key -1, value -1, no headers; varints zigzag-encoded. */
        uint8_t rec[] = {12, 0, 0, (uint8_t)(i * 2), 1, 1, 0};
        memcpy(buf + len, rec, sizeof(rec));
        len += sizeof(rec);
    }
    memset(buf, 0, 61);
    uint32_t length = (uint32_t)len - 12;
    buf[8] = (uint8_t)(length >> 24);
    buf[9] = (uint8_t)(length >> 16);
    buf[10] = (uint8_t)(length >> 8);
    buf[11] = (uint8_t)length;
    buf[16] = 2;
    int32_t last_delta = count - 1;
    for (int i = 0; i < 4; i++) {
        buf[23 + i] = (uint8_t)(last_delta >> (24 - 8 * i));
        buf[57 + i] = (uint8_t)(count >> (24 - 8 * i));
    }
    memset(buf + 43, 0xff, 14); /* producer id, epoch, base sequence: -1 */
    uint32_t crc = crc32c(0, buf + 21, len - 21);
    for (int i = 0; i < 4; i++)
        buf[17 + i] = (uint8_t)(crc >> (24 - 8 * i));
    return len;
}

static void test_high_watermark_follows_appends(void)
{
    topic_fixture_t f;
    fixture(&f, "hw", 0, 1, 7);
    cb.partition_changed(cb.arg, &f.topic, &f.part);
    const replica_partition_t *rp = replica_manager_get(rm, "hw", 2, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rp);
    CU_ASSERT_EQUAL(partition_log_high_watermark(rp->log), 0);

    uint8_t buf[256];
    size_t len = make_batch(buf, 5);
    replica_append_result_t info;
    CU_ASSERT_EQUAL_FATAL(
        replica_manager_leader_append(rm, rp, REPLICA_APPEND_CLIENT, 1, buf, len, &info),
        KAFKA_NONE);
    CU_ASSERT_EQUAL(info.first_offset, 0);
    CU_ASSERT_EQUAL(info.high_watermark, 5);
    CU_ASSERT_EQUAL(partition_log_high_watermark(rp->log), 5);
    CU_ASSERT_EQUAL(partition_log_latest_epoch(rp->log), 7);
    cb.partition_removed(cb.arg, "hw", 0);
}

/* ---- the idempotent and transactional producer's checks ---- */

/* A producer's batch of `count` records from `seq`, as a client sends it;
 * the caller's buffer must hold it. Returns its length. */
static size_t producer_batch(uint8_t *out, int64_t pid, int16_t epoch, int32_t seq, int32_t count,
                             bool transactional)
{
    record_batch_builder_t b;
    record_batch_begin(&b, 1000);
    record_batch_set_producer(&b, pid, epoch, seq, transactional);
    for (int32_t i = 0; i < count; i++)
        record_batch_add(&b, "k", 1, "v", 1);
    size_t len;
    const uint8_t *bytes = record_batch_finish(&b, &len);
    memcpy(out, bytes, len);
    record_batch_builder_free(&b);
    return len;
}

static int16_t produce(const replica_partition_t *rp, int64_t pid, int16_t epoch, int32_t seq,
                       int32_t count, bool transactional, replica_append_result_t *res)
{
    uint8_t buf[512];
    size_t len = producer_batch(buf, pid, epoch, seq, count, transactional);
    return replica_manager_leader_append(rm, rp, REPLICA_APPEND_CLIENT, -1, buf, len, res);
}

static const replica_partition_t *lead(topic_fixture_t *f, const char *topic)
{
    fixture(f, topic, 0, 1, 1);
    cb.partition_changed(cb.arg, &f->topic, &f->part);
    return replica_manager_get(rm, topic, strlen(topic), 0);
}

/* The manager as after a broker restart over the same logs. */
static void restart_replica_manager(void)
{
    replica_manager_free(rm);
    rm = replica_manager_new(NULL, &cfg, logs);
    cb = replica_manager_callbacks(rm);
    replica_manager_set_listener(rm, on_event, &events);
}

static void test_idempotent_checks(void)
{
    topic_fixture_t f;
    const replica_partition_t *rp = lead(&f, "idem");
    CU_ASSERT_PTR_NOT_NULL_FATAL(rp);
    replica_append_result_t res;
    CU_ASSERT_EQUAL(produce(rp, 7, 0, 0, 5, false, &res), KAFKA_NONE);
    CU_ASSERT_EQUAL(res.first_offset, 0);
    CU_ASSERT_FALSE(res.duplicate);
    CU_ASSERT_EQUAL(produce(rp, 7, 0, 5, 2, false, &res), KAFKA_NONE);
    CU_ASSERT_EQUAL(res.first_offset, 5);
    /* A retry of either batch: the original offsets, nothing appended. */
    CU_ASSERT_EQUAL(produce(rp, 7, 0, 0, 5, false, &res), KAFKA_NONE);
    CU_ASSERT_TRUE(res.duplicate);
    CU_ASSERT_EQUAL(res.first_offset, 0);
    CU_ASSERT_EQUAL(res.last_offset, 4);
    CU_ASSERT_EQUAL(produce(rp, 7, 0, 5, 2, false, &res), KAFKA_NONE);
    CU_ASSERT_TRUE(res.duplicate);
    CU_ASSERT_EQUAL(res.first_offset, 5);
    CU_ASSERT_EQUAL(partition_log_end_offset(rp->log), 7);
    /* A gap, an old epoch, a client batch without sequence: refused. */
    CU_ASSERT_EQUAL(produce(rp, 7, 0, 9, 1, false, &res), KAFKA_OUT_OF_ORDER_SEQUENCE_NUMBER);
    CU_ASSERT_EQUAL(produce(rp, 7, 1, 0, 1, false, &res), KAFKA_NONE);
    CU_ASSERT_EQUAL(produce(rp, 7, 0, 7, 1, false, &res), KAFKA_INVALID_PRODUCER_EPOCH);
    CU_ASSERT_EQUAL(produce(rp, 8, 0, -1, 1, false, &res), KAFKA_INVALID_RECORD);
    CU_ASSERT_EQUAL(partition_log_end_offset(rp->log), 8);
    /* An unknown producer is accepted at any sequence (Kafka 2.5+). */
    CU_ASSERT_EQUAL(produce(rp, 9, 0, 42, 1, false, &res), KAFKA_NONE);
    CU_ASSERT_EQUAL(res.first_offset, 8);

    /* A restart after a clean stop loads the snapshot; the newest batch of
     * each producer is still recognised. */
    restart_replica_manager();
    rp = lead(&f, "idem");
    CU_ASSERT_EQUAL(produce(rp, 9, 0, 42, 1, false, &res), KAFKA_NONE);
    CU_ASSERT_TRUE(res.duplicate);
    CU_ASSERT_EQUAL(res.first_offset, 8);
    CU_ASSERT_EQUAL(produce(rp, 7, 0, 8, 1, false, &res), KAFKA_INVALID_PRODUCER_EPOCH);

    /* After an unclean stop (no snapshot) the log is replayed: every one of
     * the last five batches is recognised again. */
    CU_ASSERT_EQUAL(produce(rp, 7, 1, 1, 3, false, &res), KAFKA_NONE);
    CU_ASSERT_EQUAL(res.first_offset, 9);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -f %s/idem-0/*.snapshot", tmpdir);
    restart_replica_manager();
    CU_ASSERT_EQUAL(system(cmd), 0);
    rp = lead(&f, "idem");
    CU_ASSERT_EQUAL(produce(rp, 7, 1, 0, 1, false, &res), KAFKA_NONE);
    CU_ASSERT_TRUE(res.duplicate);
    CU_ASSERT_EQUAL(res.first_offset, 7);
    CU_ASSERT_EQUAL(produce(rp, 7, 1, 1, 3, false, &res), KAFKA_NONE);
    CU_ASSERT_TRUE(res.duplicate);
    CU_ASSERT_EQUAL(res.first_offset, 9);
    CU_ASSERT_EQUAL(produce(rp, 7, 1, 4, 1, false, &res), KAFKA_NONE);
    CU_ASSERT_FALSE(res.duplicate);
    CU_ASSERT_EQUAL(res.first_offset, 12);
    cb.partition_removed(cb.arg, "idem", 0);
}

static void test_min_insync_refuses_before_append(void)
{
    topic_fixture_t f;
    fixture(&f, "minisr", 0, 1, 1);
    f.keys[0] = "min.insync.replicas";
    f.values[0] = "2";
    cb.partition_changed(cb.arg, &f.topic, &f.part);
    const replica_partition_t *rp = replica_manager_get(rm, "minisr", 6, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rp);
    replica_append_result_t res;
    CU_ASSERT_EQUAL(produce(rp, 1, 0, 0, 1, false, &res), KAFKA_NOT_ENOUGH_REPLICAS);
    CU_ASSERT_EQUAL(partition_log_end_offset(rp->log), 0);
    /* The producer state saw nothing either: sequence 0 is still new. */
    uint8_t buf[512];
    size_t len = producer_batch(buf, 1, 0, 0, 1, false);
    CU_ASSERT_EQUAL(replica_manager_leader_append(rm, rp, REPLICA_APPEND_CLIENT, 1, buf, len, &res),
                    KAFKA_NONE);
    CU_ASSERT_FALSE(res.duplicate);
    cb.partition_removed(cb.arg, "minisr", 0);
}

static void test_transactions_and_last_stable_offset(void)
{
    topic_fixture_t f;
    const replica_partition_t *rp = lead(&f, "txn");
    CU_ASSERT_PTR_NOT_NULL_FATAL(rp);
    replica_append_result_t res;
    int64_t marker;
    CU_ASSERT_EQUAL(produce(rp, 1, 0, 0, 2, false, &res), KAFKA_NONE); /* 0-1 */
    CU_ASSERT_EQUAL(produce(rp, 2, 0, 0, 3, true, &res), KAFKA_NONE);  /* 2-4, open */
    CU_ASSERT_EQUAL(produce(rp, 3, 0, 0, 1, true, &res), KAFKA_NONE);  /* 5, open */
    CU_ASSERT_EQUAL(partition_log_high_watermark(rp->log), 6);
    CU_ASSERT_EQUAL(replica_manager_last_stable_offset(rm, rp), 2);
    /* Inside its transaction a producer may not write outside it. */
    CU_ASSERT_EQUAL(produce(rp, 2, 0, 3, 1, false, &res), KAFKA_INVALID_TXN_STATE);
    CU_ASSERT_EQUAL(replica_manager_write_txn_marker(rm, rp, 2, 0, false, 0, &marker), KAFKA_NONE);
    CU_ASSERT_EQUAL(marker, 6);
    CU_ASSERT_EQUAL(replica_manager_last_stable_offset(rm, rp), 5);
    log_aborted_txn_t aborted[4];
    size_t n = 0;
    CU_ASSERT_EQUAL(partition_log_collect_aborted_txns(rp->log, 0, 7, aborted, 4, &n), LOG_OK);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    CU_ASSERT_EQUAL(aborted[0].producer_id, 2);
    CU_ASSERT_EQUAL(aborted[0].first_offset, 2);
    CU_ASSERT_EQUAL(aborted[0].last_offset, 6);
    CU_ASSERT_EQUAL(aborted[0].last_stable_offset, 5);
    /* Fencing: an older producer epoch or coordinator epoch. */
    CU_ASSERT_EQUAL(produce(rp, 3, 1, 0, 1, true, &res), KAFKA_NONE); /* 7: epoch bumped */
    CU_ASSERT_EQUAL(replica_manager_write_txn_marker(rm, rp, 3, 0, true, 0, &marker),
                    KAFKA_INVALID_PRODUCER_EPOCH);
    CU_ASSERT_EQUAL(replica_manager_write_txn_marker(rm, rp, 3, 1, true, 5, &marker), KAFKA_NONE);
    CU_ASSERT_EQUAL(marker, 8);
    CU_ASSERT_EQUAL(replica_manager_write_txn_marker(rm, rp, 3, 1, true, 4, &marker),
                    KAFKA_TRANSACTION_COORDINATOR_FENCED);
    CU_ASSERT_EQUAL(replica_manager_last_stable_offset(rm, rp), 9);
    CU_ASSERT_EQUAL(partition_log_end_offset(rp->log), 9);

    /* An open transaction survives a restart, clean or not. */
    CU_ASSERT_EQUAL(produce(rp, 4, 0, 0, 2, true, &res), KAFKA_NONE); /* 9-10, open */
    restart_replica_manager();
    rp = lead(&f, "txn");
    CU_ASSERT_EQUAL(replica_manager_last_stable_offset(rm, rp), 9);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -f %s/txn-0/*.snapshot %s/txn-0/*.txnindex", tmpdir, tmpdir);
    restart_replica_manager();
    CU_ASSERT_EQUAL(system(cmd), 0);
    rp = lead(&f, "txn");
    CU_ASSERT_EQUAL(replica_manager_last_stable_offset(rm, rp), 9);
    /* ... and so does the aborted range, rebuilt from the markers. */
    n = 0;
    CU_ASSERT_EQUAL(partition_log_collect_aborted_txns(rp->log, 0, 11, aborted, 4, &n), LOG_OK);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    CU_ASSERT_EQUAL(aborted[0].first_offset, 2);
    CU_ASSERT_EQUAL(aborted[0].last_offset, 6);
    CU_ASSERT_EQUAL(replica_manager_write_txn_marker(rm, rp, 4, 0, true, 0, &marker), KAFKA_NONE);
    CU_ASSERT_EQUAL(replica_manager_last_stable_offset(rm, rp), 12);
    cb.partition_removed(cb.arg, "txn", 0);
}

static void test_remove_unknown_is_harmless(void)
{
    int before = events;
    cb.partition_removed(cb.arg, "never-seen", 0);
    CU_ASSERT_EQUAL(events, before + 1);
}

/* A partition whose log failed to open at start is offline from the
 * moment the replica manager exists, before any partition_changed (so the
 * first report to the controller names it); the first partition_changed
 * tries the open again, and a later epoch once the disk is fixed brings it
 * back. The segment file is a directory, which fails the open for root too. */
static void test_failed_at_start_is_offline_at_once(void)
{
    char dir[64];
    snprintf(dir, sizeof(dir), "/tmp/vltava-api-replica-XXXXXX");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char bad[256], seg[512];
    snprintf(bad, sizeof(bad), "%s/bad-0", dir);
    snprintf(seg, sizeof(seg), "%s/00000000000000000000.log", bad);
    CU_ASSERT_EQUAL_FATAL(mkdir(bad, 0755), 0);
    CU_ASSERT_EQUAL_FATAL(mkdir(seg, 0755), 0);
    log_manager_t *lm;
    CU_ASSERT_EQUAL_FATAL(log_manager_open(dir, &cfg.log_defaults, &lm), LOG_OK);
    CU_ASSERT_PTR_NULL(log_manager_get(lm, "bad", 0));
    replica_manager_t *r = replica_manager_new(NULL, &cfg, lm);
    CU_ASSERT_TRUE(replica_manager_offline(r, "bad", 3, 0));
    CU_ASSERT_FALSE(replica_manager_offline(r, "bad", 3, 1));

    coordinator_callbacks_t c = replica_manager_callbacks(r);
    topic_fixture_t f;
    fixture(&f, "bad", 0, 1, 0);
    c.partition_changed(c.arg, &f.topic, &f.part);
    CU_ASSERT_TRUE(replica_manager_offline(r, "bad", 3, 0));
    CU_ASSERT_PTR_NULL(replica_manager_get(r, "bad", 3, 0));

    CU_ASSERT_EQUAL_FATAL(rmdir(seg), 0);
    fixture(&f, "bad", 0, 1, 1);
    c.partition_changed(c.arg, &f.topic, &f.part);
    CU_ASSERT_FALSE(replica_manager_offline(r, "bad", 3, 0));
    CU_ASSERT_PTR_NOT_NULL(replica_manager_get(r, "bad", 3, 0));

    replica_manager_free(r);
    log_manager_close(lm);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

void api_replica_suite(void)
{
    CU_pSuite s = CU_add_suite("api_replica", setup, teardown);
    CU_add_test(s, "assignment and epoch fencing", test_assignment_and_fencing);
    CU_add_test(s, "high watermark follows appends", test_high_watermark_follows_appends);
    CU_add_test(s, "removing an unknown partition", test_remove_unknown_is_harmless);
    CU_add_test(s, "idempotent producer checks", test_idempotent_checks);
    CU_add_test(s, "min.insync.replicas before the append", test_min_insync_refuses_before_append);
    CU_add_test(s, "transactions and the last stable offset",
                test_transactions_and_last_stable_offset);
    CU_add_test(s, "a log that failed to open at start is offline at once",
                test_failed_at_start_is_offline_at_once);
}
