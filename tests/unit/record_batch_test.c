/* CUnit tests for RecordBatch v2 building and iteration: the builder's
 * batches pass the log's own append validation and read back through the
 * iterator; the iterator also reads the log tests' independently built
 * batches, stops before a partial batch, skips compressed and control
 * batches, and refuses corrupt ones without reading out of bounds. Also the
 * header accessor, and the end-transaction marker: byte for byte, round
 * trip, and malformed ones refused without reading out of bounds. */
#include <CUnit/Basic.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "log_test.h"
#include "log_test_util.h"
#include "partition_log.h"
#include "record_batch.h"

void record_batch_suite(void);

static uint8_t *copy_bytes(const uint8_t *p, size_t len)
{
    uint8_t *copy = malloc(len ? len : 1);
    memcpy(copy, p, len);
    return copy;
}

/* Builds {"k0": "v0", null key: "v1", "k2": tombstone} at timestamp ts;
 * returns a heap copy (caller frees). */
static uint8_t *build_three(int64_t ts, size_t *len)
{
    record_batch_builder_t b;
    record_batch_begin(&b, ts);
    record_batch_add(&b, "k0", 2, "v0", 2);
    record_batch_add(&b, NULL, -1, "v1", 2);
    record_batch_add(&b, "k2", 2, NULL, -1);
    const uint8_t *batch = record_batch_finish(&b, len);
    uint8_t *copy = copy_bytes(batch, *len);
    record_batch_builder_free(&b);
    return copy;
}

static void assert_slice(kslice_t s, const char *expect)
{
    if (expect == NULL) {
        CU_ASSERT_PTR_NULL(s.ptr);
        return;
    }
    CU_ASSERT_TRUE(kslice_eq(s, expect));
}

static void assert_three(record_batch_iter_t *it, int64_t base_offset, int64_t ts)
{
    record_view_t rec;
    CU_ASSERT_EQUAL_FATAL(record_batch_iter_next(it, &rec), 1);
    CU_ASSERT_EQUAL(rec.offset, base_offset);
    CU_ASSERT_EQUAL(rec.timestamp, ts);
    assert_slice(rec.key, "k0");
    assert_slice(rec.value, "v0");
    CU_ASSERT_EQUAL_FATAL(record_batch_iter_next(it, &rec), 1);
    CU_ASSERT_EQUAL(rec.offset, base_offset + 1);
    assert_slice(rec.key, NULL);
    assert_slice(rec.value, "v1");
    CU_ASSERT_EQUAL_FATAL(record_batch_iter_next(it, &rec), 1);
    CU_ASSERT_EQUAL(rec.offset, base_offset + 2);
    CU_ASSERT_EQUAL(rec.timestamp, ts);
    assert_slice(rec.key, "k2");
    assert_slice(rec.value, NULL);
}

static void test_builder_header(void)
{
    size_t len;
    uint8_t *batch = build_three(1234, &len);
    CU_ASSERT_FATAL(len > BATCH_HEADER_SIZE);
    CU_ASSERT_EQUAL(test_be64(batch + 0), 0);                   /* BaseOffset */
    CU_ASSERT_EQUAL(test_be32(batch + 8), (int32_t)(len - 12)); /* Length */
    CU_ASSERT_EQUAL(test_be32(batch + 12), -1);                 /* PartitionLeaderEpoch */
    CU_ASSERT_EQUAL(batch[16], 2);                              /* Magic */
    CU_ASSERT_EQUAL((uint32_t)test_be32(batch + 17), crc32c(0, batch + 21, len - 21));
    CU_ASSERT_EQUAL(batch[21], 0); /* Attributes */
    CU_ASSERT_EQUAL(batch[22], 0);
    CU_ASSERT_EQUAL(test_be32(batch + 23), 2);    /* LastOffsetDelta */
    CU_ASSERT_EQUAL(test_be64(batch + 27), 1234); /* BaseTimestamp */
    CU_ASSERT_EQUAL(test_be64(batch + 35), 1234); /* MaxTimestamp */
    CU_ASSERT_EQUAL(test_be64(batch + 43), -1);   /* ProducerId */
    CU_ASSERT_EQUAL(batch[51], 0xff);             /* ProducerEpoch */
    CU_ASSERT_EQUAL(batch[52], 0xff);
    CU_ASSERT_EQUAL(test_be32(batch + 53), -1); /* BaseSequence */
    CU_ASSERT_EQUAL(test_be32(batch + 57), 3);  /* RecordsCount */
    /* The first record, byte for byte: Length 10 (zigzag 20), Attributes,
     * TimestampDelta 0, OffsetDelta 0, KeyLen 2 (4) "k0", ValueLen 2 (4)
     * "v0", HeadersCount 0. */
    static const uint8_t first_record[] = {0x14, 0x00, 0x00, 0x00, 0x04, 'k',
                                           '0',  0x04, 'v',  '0',  0x00};
    CU_ASSERT_EQUAL(memcmp(batch + 61, first_record, sizeof(first_record)), 0);
    /* The tombstone's ValueLen is -1 (zigzag 1). */
    CU_ASSERT_EQUAL(batch[len - 2], 0x01);
    free(batch);
}

/* A producer's batch: the fields land in the header, the CRC covers them,
 * and the log takes it as a client batch (it is not a control batch). */
static void test_builder_producer_fields(void)
{
    record_batch_builder_t b;
    size_t len;
    record_batch_begin(&b, 77);
    record_batch_set_producer(&b, 0x0102030405060708LL, 0x0a0b, 41, true);
    record_batch_add(&b, "k", 1, "v", 1);
    record_batch_add(&b, "k", 1, "w", 1);
    const uint8_t *batch = record_batch_finish(&b, &len);
    CU_ASSERT_EQUAL(test_be64(batch + BATCH_PRODUCER_ID), 0x0102030405060708LL);
    CU_ASSERT_EQUAL(batch[BATCH_PRODUCER_EPOCH], 0x0a);
    CU_ASSERT_EQUAL(batch[BATCH_PRODUCER_EPOCH + 1], 0x0b);
    CU_ASSERT_EQUAL(test_be32(batch + BATCH_BASE_SEQUENCE), 41);
    CU_ASSERT_EQUAL(batch[BATCH_ATTRIBUTES], 0);
    CU_ASSERT_EQUAL(batch[BATCH_ATTRIBUTES + 1], BATCH_ATTR_TRANSACTIONAL);
    CU_ASSERT_EQUAL((uint32_t)test_be32(batch + BATCH_CRC),
                    crc32c(0, batch + BATCH_ATTRIBUTES, len - BATCH_ATTRIBUTES));
    uint8_t *copy = copy_bytes(batch, len);
    record_batch_builder_free(&b);

    char *dir = log_test_tmpdir();
    log_config_t cfg;
    log_config_defaults(&cfg);
    partition_log_t *log;
    log_append_info_t info;
    CU_ASSERT_EQUAL_FATAL(partition_log_open(dir, &cfg, 0, false, &log), LOG_OK);
    CU_ASSERT_EQUAL(partition_log_append(log, copy, len, 1, 77, &info), LOG_OK);
    CU_ASSERT_EQUAL(info.record_count, 2);
    partition_log_close(log);
    log_test_rmrf(dir);
    free(dir);
    free(copy);

    /* Not transactional (an idempotent batch): the attribute stays clear,
     * also when a second call takes it back. */
    record_batch_begin(&b, 77);
    record_batch_set_producer(&b, 5, 0, 0, true);
    record_batch_set_producer(&b, 5, 1, 0, false);
    record_batch_add(&b, "k", 1, "v", 1);
    batch = record_batch_finish(&b, &len);
    CU_ASSERT_EQUAL(batch[BATCH_ATTRIBUTES + 1], 0);
    CU_ASSERT_EQUAL(test_be64(batch + BATCH_PRODUCER_ID), 5);
    CU_ASSERT_EQUAL(batch[BATCH_PRODUCER_EPOCH + 1], 1);
    CU_ASSERT_EQUAL(test_be32(batch + BATCH_BASE_SEQUENCE), 0);
    record_batch_builder_free(&b);
}

static void test_read_header(void)
{
    record_batch_builder_t b;
    record_batch_header_t h;
    size_t len;
    record_batch_begin(&b, 900);
    record_batch_set_producer(&b, 42, 3, 17, false);
    record_batch_add(&b, "a", 1, "b", 1);
    record_batch_add(&b, "c", 1, "d", 1);
    const uint8_t *batch = record_batch_finish(&b, &len);
    uint8_t *copy = copy_bytes(batch, len);
    record_batch_builder_free(&b);
    copy[BATCH_BASE_OFFSET + 7] = 10; /* as the log would stamp them */
    copy[BATCH_LEADER_EPOCH + 3] = 4;
    copy[BATCH_LEADER_EPOCH] = copy[BATCH_LEADER_EPOCH + 1] = copy[BATCH_LEADER_EPOCH + 2] = 0;

    CU_ASSERT_TRUE_FATAL(record_batch_read_header(copy, len, &h));
    CU_ASSERT_EQUAL(h.base_offset, 10);
    CU_ASSERT_EQUAL(h.length, (int32_t)len - BATCH_LOG_OVERHEAD);
    CU_ASSERT_EQUAL(h.leader_epoch, 4);
    CU_ASSERT_EQUAL(h.magic, 2);
    CU_ASSERT_EQUAL(h.crc, crc32c(0, copy + BATCH_ATTRIBUTES, len - BATCH_ATTRIBUTES));
    CU_ASSERT_EQUAL(h.attributes, 0);
    CU_ASSERT_EQUAL(h.last_offset_delta, 1);
    CU_ASSERT_EQUAL(h.base_timestamp, 900);
    CU_ASSERT_EQUAL(h.max_timestamp, 900);
    CU_ASSERT_EQUAL(h.producer_id, 42);
    CU_ASSERT_EQUAL(h.producer_epoch, 3);
    CU_ASSERT_EQUAL(h.base_sequence, 17);
    CU_ASSERT_EQUAL(h.records_count, 2);
    CU_ASSERT_FALSE(record_batch_is_transactional(&h));
    CU_ASSERT_FALSE(record_batch_is_control(&h));
    CU_ASSERT_EQUAL(record_batch_size(&h), (int64_t)len);
    CU_ASSERT_EQUAL(record_batch_last_offset(&h), 11);
    CU_ASSERT_EQUAL(record_batch_last_sequence(&h), 18);

    /* Only a whole header decodes; the rest is not looked at. */
    CU_ASSERT_TRUE(record_batch_read_header(copy, BATCH_HEADER_SIZE, &h));
    CU_ASSERT_FALSE(record_batch_read_header(copy, BATCH_HEADER_SIZE - 1, &h));
    CU_ASSERT_FALSE(record_batch_read_header(copy, 0, &h));
    free(copy);

    /* Sequences wrap past INT32_MAX to 0 (Kafka's incrementSequence). */
    h.base_sequence = INT32_MAX;
    h.last_offset_delta = 0;
    CU_ASSERT_EQUAL(record_batch_last_sequence(&h), INT32_MAX);
    h.last_offset_delta = 1;
    CU_ASSERT_EQUAL(record_batch_last_sequence(&h), 0);
    h.base_sequence = INT32_MAX - 1;
    h.last_offset_delta = 3;
    CU_ASSERT_EQUAL(record_batch_last_sequence(&h), 1);
    h.base_sequence = -1;
    CU_ASSERT_EQUAL(record_batch_last_sequence(&h), -1);
}

static void test_txn_marker_bytes(void)
{
    uint8_t m[RECORD_BATCH_TXN_MARKER_SIZE];
    record_batch_build_txn_marker(m, 0x0102030405060708LL, 0x0304, true, 0x0a0b0c0d, 5555);
    CU_ASSERT_EQUAL(test_be64(m + BATCH_BASE_OFFSET), 0);
    CU_ASSERT_EQUAL(test_be32(m + BATCH_LENGTH), RECORD_BATCH_TXN_MARKER_SIZE - 12);
    CU_ASSERT_EQUAL(test_be32(m + BATCH_LEADER_EPOCH), -1);
    CU_ASSERT_EQUAL(m[BATCH_MAGIC], 2);
    CU_ASSERT_EQUAL((uint32_t)test_be32(m + BATCH_CRC),
                    crc32c(0, m + BATCH_ATTRIBUTES, sizeof(m) - BATCH_ATTRIBUTES));
    CU_ASSERT_EQUAL(m[BATCH_ATTRIBUTES], 0x00);
    CU_ASSERT_EQUAL(m[BATCH_ATTRIBUTES + 1], 0x30); /* transactional | control */
    CU_ASSERT_EQUAL(test_be32(m + BATCH_LAST_OFFSET_DELTA), 0);
    CU_ASSERT_EQUAL(test_be64(m + BATCH_BASE_TIMESTAMP), 5555);
    CU_ASSERT_EQUAL(test_be64(m + BATCH_MAX_TIMESTAMP), 5555);
    CU_ASSERT_EQUAL(test_be64(m + BATCH_PRODUCER_ID), 0x0102030405060708LL);
    CU_ASSERT_EQUAL(m[BATCH_PRODUCER_EPOCH], 0x03);
    CU_ASSERT_EQUAL(m[BATCH_PRODUCER_EPOCH + 1], 0x04);
    CU_ASSERT_EQUAL(test_be32(m + BATCH_BASE_SEQUENCE), -1);
    CU_ASSERT_EQUAL(test_be32(m + BATCH_RECORDS_COUNT), 1);
    /* The record: Length 16 (zigzag 32), Attributes 0, TimestampDelta 0,
     * OffsetDelta 0, KeyLen 4 (8) key (version 0, type 1 commit), ValueLen
     * 6 (12) value (version 0, coordinator epoch), HeadersCount 0. */
    static const uint8_t record[] = {0x20, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x01,
                                     0x0c, 0x00, 0x00, 0x0a, 0x0b, 0x0c, 0x0d, 0x00};
    CU_ASSERT_EQUAL(sizeof(record), RECORD_BATCH_TXN_MARKER_SIZE - BATCH_HEADER_SIZE);
    CU_ASSERT_EQUAL(memcmp(m + BATCH_HEADER_SIZE, record, sizeof(record)), 0);

    record_batch_build_txn_marker(m, 7, 0, false, 0, 1);
    CU_ASSERT_EQUAL(m[BATCH_HEADER_SIZE + 8], 0x00); /* type 0: abort */
}

static void test_txn_marker_round_trip(void)
{
    uint8_t m[RECORD_BATCH_TXN_MARKER_SIZE + 5];
    int32_t coordinator_epoch = 99;
    record_batch_build_txn_marker(m, 1000, 2, true, 12, 77);
    CU_ASSERT_EQUAL(
        record_batch_parse_txn_marker(m, RECORD_BATCH_TXN_MARKER_SIZE, &coordinator_epoch),
        RECORD_BATCH_MARKER_COMMIT);
    CU_ASSERT_EQUAL(coordinator_epoch, 12);
    record_batch_build_txn_marker(m, 1000, 2, false, INT32_MAX, 77);
    /* Bytes past the batch (the next batch in a log read) are not its. */
    memset(m + RECORD_BATCH_TXN_MARKER_SIZE, 0xee, 5);
    CU_ASSERT_EQUAL(record_batch_parse_txn_marker(m, sizeof(m), &coordinator_epoch),
                    RECORD_BATCH_MARKER_ABORT);
    CU_ASSERT_EQUAL(coordinator_epoch, INT32_MAX);
    record_batch_build_txn_marker(m, 0, 0, true, -1, 0);
    CU_ASSERT_EQUAL(record_batch_parse_txn_marker(m, sizeof(m), &coordinator_epoch),
                    RECORD_BATCH_MARKER_COMMIT);
    CU_ASSERT_EQUAL(coordinator_epoch, -1);

    /* The header accessor sees a transactional control batch. */
    record_batch_header_t h;
    CU_ASSERT_TRUE_FATAL(record_batch_read_header(m, sizeof(m), &h));
    CU_ASSERT_TRUE(record_batch_is_transactional(&h));
    CU_ASSERT_TRUE(record_batch_is_control(&h));
    CU_ASSERT_EQUAL(record_batch_last_sequence(&h), -1);
}

/* A transactional control batch of one record with the given key and value
 * (later versions, other control types): a heap copy, caller frees. */
static uint8_t *build_control(const void *key, int32_t key_len, const void *value,
                              int32_t value_len, size_t *len)
{
    record_batch_builder_t b;
    record_batch_begin(&b, 1);
    record_batch_set_producer(&b, 3, 0, -1, true);
    b.attributes |= BATCH_ATTR_CONTROL;
    record_batch_add(&b, key, key_len, value, value_len);
    const uint8_t *batch = record_batch_finish(&b, len);
    uint8_t *copy = copy_bytes(batch, *len);
    record_batch_builder_free(&b);
    return copy;
}

static void test_txn_marker_malformed(void)
{
    uint8_t good[RECORD_BATCH_TXN_MARKER_SIZE], m[RECORD_BATCH_TXN_MARKER_SIZE];
    int32_t epoch = 5;
    record_batch_build_txn_marker(good, 1, 1, true, 3, 1);

    /* Every cut: not whole. */
    for (size_t cut = 0; cut < sizeof(good); cut++) {
        uint8_t *p = copy_bytes(good, cut);
        CU_ASSERT_EQUAL(record_batch_parse_txn_marker(p, cut, &epoch), -1);
        free(p);
    }
    CU_ASSERT_EQUAL(epoch, 5); /* untouched on failure */

    struct {
        size_t at;
        uint8_t value;
    } edits[] = {
        {BATCH_MAGIC, 1},
        {BATCH_ATTRIBUTES + 1, 0x20},     /* control, not transactional */
        {BATCH_ATTRIBUTES + 1, 0x10},     /* transactional, not control */
        {BATCH_ATTRIBUTES + 1, 0x31},     /* gzip */
        {BATCH_RECORDS_COUNT + 3, 2},     /* two records */
        {BATCH_RECORDS_COUNT + 3, 0},     /* none */
        {BATCH_LAST_OFFSET_DELTA + 3, 1}, /* delta disagrees with one record */
        {BATCH_LENGTH + 3, 0},            /* Length below the header */
        {BATCH_LENGTH + 3, RECORD_BATCH_TXN_MARKER_SIZE - 12 + 1}, /* past len */
        {BATCH_HEADER_SIZE, 0x1e},                                 /* record Length one short */
        {BATCH_HEADER_SIZE + 3, 0x02},                             /* OffsetDelta 1 */
        {BATCH_HEADER_SIZE + 5, 0x80},                             /* key version negative */
        {BATCH_HEADER_SIZE + 8, 0x02},                             /* type 2: LEADER_CHANGE */
        {BATCH_HEADER_SIZE + 7, 0xff},                             /* type -255 */
        {BATCH_HEADER_SIZE + 10, 0x80},                            /* value version negative */
        {BATCH_HEADER_SIZE + 16, 0x02},                            /* one header, no bytes for it */
    };
    for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
        memcpy(m, good, sizeof(m));
        m[edits[i].at] = edits[i].value;
        CU_ASSERT_EQUAL(record_batch_parse_txn_marker(m, sizeof(m), &epoch), -1);
    }

    size_t len;
    uint8_t *p;
    static const uint8_t commit_key[] = {0, 0, 0, 1}, value[] = {0, 0, 0, 0, 0, 9};
    /* Short key, short value, null key, null value. */
    p = build_control(commit_key, 3, value, 6, &len);
    CU_ASSERT_EQUAL(record_batch_parse_txn_marker(p, len, &epoch), -1);
    free(p);
    p = build_control(commit_key, 4, value, 5, &len);
    CU_ASSERT_EQUAL(record_batch_parse_txn_marker(p, len, &epoch), -1);
    free(p);
    p = build_control(NULL, -1, value, 6, &len);
    CU_ASSERT_EQUAL(record_batch_parse_txn_marker(p, len, &epoch), -1);
    free(p);
    p = build_control(commit_key, 4, NULL, -1, &len);
    CU_ASSERT_EQUAL(record_batch_parse_txn_marker(p, len, &epoch), -1);
    free(p);
    /* A later version with longer key and value reads as version 0. */
    static const uint8_t key_v1[] = {0, 1, 0, 1, 0xaa}, value_v1[] = {0, 1, 0, 0, 0, 9, 0xbb};
    p = build_control(key_v1, 5, value_v1, 7, &len);
    CU_ASSERT_EQUAL(record_batch_parse_txn_marker(p, len, &epoch), RECORD_BATCH_MARKER_COMMIT);
    CU_ASSERT_EQUAL(epoch, 9);
    free(p);
    /* A client's ordinary batch is no marker. */
    p = build_three(1, &len);
    CU_ASSERT_EQUAL(record_batch_parse_txn_marker(p, len, &epoch), -1);
    free(p);
}

/* Every single-byte change to a marker: parse reads only the batch (the
 * sanitizer checks) and returns a defined result. */
static void test_txn_marker_survives_every_byte_flip(void)
{
    uint8_t good[RECORD_BATCH_TXN_MARKER_SIZE];
    static const uint8_t patterns[] = {0xff, 0x80, 0x7f, 0x01};
    record_batch_build_txn_marker(good, 1, 1, false, 3, 1);
    for (size_t at = 0; at < sizeof(good); at++) {
        for (size_t k = 0; k < sizeof(patterns); k++) {
            uint8_t *p = copy_bytes(good, sizeof(good));
            int32_t epoch;
            p[at] ^= patterns[k];
            int got = record_batch_parse_txn_marker(p, sizeof(good), &epoch);
            CU_ASSERT(got == -1 || got == RECORD_BATCH_MARKER_ABORT ||
                      got == RECORD_BATCH_MARKER_COMMIT);
            free(p);
        }
    }
}

static void test_builder_appends_and_reads_back(void)
{
    char *dir = log_test_tmpdir();
    log_config_t cfg;
    log_config_defaults(&cfg);
    partition_log_t *log;
    CU_ASSERT_EQUAL_FATAL(partition_log_open(dir, &cfg, 0, false, &log), LOG_OK);

    log_append_info_t info;
    size_t len1, len2;
    uint8_t *batch1 = build_three(1000, &len1);
    uint8_t *batch2 = build_three(2000, &len2);
    CU_ASSERT_EQUAL(partition_log_append(log, batch1, len1, 3, 1000, &info), LOG_OK);
    CU_ASSERT_EQUAL(info.first_offset, 0);
    CU_ASSERT_EQUAL(info.last_offset, 2);
    CU_ASSERT_EQUAL(partition_log_append(log, batch2, len2, 3, 2000, &info), LOG_OK);
    CU_ASSERT_EQUAL(info.first_offset, 3);
    CU_ASSERT_EQUAL(info.record_count, 3);
    CU_ASSERT_EQUAL(partition_log_end_offset(log), 6);

    uint8_t *data;
    size_t data_len;
    log_read_t rd;
    CU_ASSERT_EQUAL_FATAL(test_read(log, 0, 1 << 20, 6, &data, &data_len, &rd), LOG_OK);
    CU_ASSERT_EQUAL(data_len, len1 + len2);

    record_batch_iter_t it;
    record_view_t rec;
    record_batch_iter_init(&it, data, data_len);
    assert_three(&it, 0, 1000);
    assert_three(&it, 3, 2000);
    CU_ASSERT_EQUAL(record_batch_iter_next(&it, &rec), 0);
    CU_ASSERT_EQUAL(record_batch_iter_consumed(&it), data_len);
    CU_ASSERT_EQUAL(it.skipped_batches, 0);

    free(data);
    free(batch1);
    free(batch2);
    partition_log_close(log);
    log_test_rmrf(dir);
    free(dir);
}

/* Batches from the log tests' own builder (timestamps first_ts + i, keys
 * "k<i>"): the iterator agrees with a second, independent encoder. */
static void test_iter_reads_log_test_batches(void)
{
    size_t len;
    uint8_t *batch = log_test_batch(5, 3, 500, 7, &len);
    record_batch_iter_t it;
    record_view_t rec;
    record_batch_iter_init(&it, batch, len);
    for (int i = 0; i < 5; i++) {
        char key[8];
        snprintf(key, sizeof(key), "k%d", i);
        CU_ASSERT_EQUAL_FATAL(record_batch_iter_next(&it, &rec), 1);
        CU_ASSERT_EQUAL(rec.offset, i);
        CU_ASSERT_EQUAL(rec.timestamp, 500 + i);
        assert_slice(rec.key, key);
        CU_ASSERT_EQUAL(rec.value.len, 3);
    }
    CU_ASSERT_EQUAL(record_batch_iter_next(&it, &rec), 0);
    CU_ASSERT_EQUAL(record_batch_iter_consumed(&it), len);

    /* LogAppendTime: every record carries the batch's MaxTimestamp. */
    batch[BATCH_ATTRIBUTES + 1] |= 0x08;
    record_batch_iter_init(&it, batch, len);
    CU_ASSERT_EQUAL_FATAL(record_batch_iter_next(&it, &rec), 1);
    CU_ASSERT_EQUAL(rec.timestamp, 504);
    free(batch);
}

static void test_iter_stops_before_partial_batch(void)
{
    size_t len1, len2;
    uint8_t *batch1 = build_three(10, &len1);
    uint8_t *batch2 = build_three(20, &len2);
    uint8_t *both = malloc(len1 + len2);
    memcpy(both, batch1, len1);
    memcpy(both + len1, batch2, len2);

    /* Every cut inside the second batch: the first reads whole, then the
     * end, with consumed() where the second starts. */
    for (size_t cut = len1; cut < len1 + len2; cut++) {
        uint8_t *buf = copy_bytes(both, cut);
        record_batch_iter_t it;
        record_view_t rec;
        record_batch_iter_init(&it, buf, cut);
        assert_three(&it, 0, 10);
        CU_ASSERT_EQUAL(record_batch_iter_next(&it, &rec), 0);
        CU_ASSERT_EQUAL(record_batch_iter_consumed(&it), len1);
        free(buf);
    }
    /* Every cut inside the first: nothing at all. */
    for (size_t cut = 0; cut < len1; cut++) {
        uint8_t *buf = copy_bytes(both, cut);
        record_batch_iter_t it;
        record_view_t rec;
        record_batch_iter_init(&it, buf, cut);
        CU_ASSERT_EQUAL(record_batch_iter_next(&it, &rec), 0);
        CU_ASSERT_EQUAL(record_batch_iter_consumed(&it), 0);
        free(buf);
    }
    free(both);
    free(batch1);
    free(batch2);
}

static void test_iter_skips_compressed_and_control(void)
{
    size_t len1, len2, len3;
    uint8_t *compressed = build_three(1, &len1);
    uint8_t *plain = build_three(2, &len2);
    uint8_t *control = build_three(3, &len3);
    /* The CRC is not re-checked, so flipping the attributes is enough. */
    compressed[BATCH_ATTRIBUTES + 1] = 0x01; /* gzip */
    control[BATCH_ATTRIBUTES + 1] = 0x20;
    uint8_t *all = malloc(len1 + len2 + len3);
    memcpy(all, compressed, len1);
    memcpy(all + len1, plain, len2);
    memcpy(all + len1 + len2, control, len3);

    record_batch_iter_t it;
    record_view_t rec;
    record_batch_iter_init(&it, all, len1 + len2 + len3);
    assert_three(&it, 0, 2);
    CU_ASSERT_EQUAL(record_batch_iter_consumed(&it), len1 + len2);
    CU_ASSERT_EQUAL(record_batch_iter_next(&it, &rec), 0);
    CU_ASSERT_EQUAL(it.skipped_batches, 2);
    CU_ASSERT_EQUAL(record_batch_iter_consumed(&it), len1 + len2 + len3);
    free(all);
    free(compressed);
    free(plain);
    free(control);
}

/* Iterates a heap copy of exactly len bytes; returns the last next() result
 * and the records seen before it. */
static int iterate_copy(const uint8_t *p, size_t len, int *records, size_t *consumed)
{
    uint8_t *buf = copy_bytes(p, len);
    record_batch_iter_t it;
    record_view_t rec;
    int got;
    *records = 0;
    record_batch_iter_init(&it, buf, len);
    while ((got = record_batch_iter_next(&it, &rec)) == 1)
        (*records)++;
    *consumed = record_batch_iter_consumed(&it);
    if (got == -1)
        CU_ASSERT_EQUAL(record_batch_iter_next(&it, &rec), -1); /* sticky */
    free(buf);
    return got;
}

static void test_iter_refuses_corrupt_batches(void)
{
    size_t len1, len2;
    uint8_t *good = build_three(5, &len1);
    uint8_t *bad = build_three(5, &len2);
    uint8_t *both = malloc(len1 + len2);
    int records;
    size_t consumed;

    /* The first record's Length grows past its batch. */
    bad[BATCH_HEADER_SIZE] = 0x7e;
    memcpy(both, good, len1);
    memcpy(both + len1, bad, len2);
    CU_ASSERT_EQUAL(iterate_copy(both, len1 + len2, &records, &consumed), -1);
    CU_ASSERT_EQUAL(records, 3);
    CU_ASSERT_EQUAL(consumed, len1);

    /* A record Length of zero, and one that is negative. */
    bad[BATCH_HEADER_SIZE] = 0x00;
    CU_ASSERT_EQUAL(iterate_copy(bad, len2, &records, &consumed), -1);
    bad[BATCH_HEADER_SIZE] = 0x01;
    CU_ASSERT_EQUAL(iterate_copy(bad, len2, &records, &consumed), -1);
    CU_ASSERT_EQUAL(consumed, 0);

    /* A record Length one short: its HeadersCount falls into the next record. */
    memcpy(bad, good, len2);
    bad[BATCH_HEADER_SIZE] = 0x12;
    CU_ASSERT_EQUAL(iterate_copy(bad, len2, &records, &consumed), -1);

    /* RecordsCount one too few: the records no longer tile the batch, which
     * shows at what would be its last record. */
    memcpy(bad, good, len2);
    bad[BATCH_RECORDS_COUNT + 3] = 2;
    CU_ASSERT_EQUAL(iterate_copy(bad, len2, &records, &consumed), -1);
    CU_ASSERT_EQUAL(records, 1);
    /* One too many: the payload runs out. */
    bad[BATCH_RECORDS_COUNT + 3] = 4;
    CU_ASSERT_EQUAL(iterate_copy(bad, len2, &records, &consumed), -1);
    CU_ASSERT_EQUAL(records, 3);

    /* Bad magic, even in a batch that is not whole. */
    memcpy(bad, good, len2);
    bad[16] = 1;
    CU_ASSERT_EQUAL(iterate_copy(bad, len2, &records, &consumed), -1);
    CU_ASSERT_EQUAL(iterate_copy(bad, 17, &records, &consumed), -1);

    /* A batch Length shorter than the header. */
    memcpy(bad, good, len2);
    bad[8] = bad[9] = bad[10] = 0;
    bad[11] = 48;
    CU_ASSERT_EQUAL(iterate_copy(bad, len2, &records, &consumed), -1);
    bad[8] = 0x80; /* negative */
    CU_ASSERT_EQUAL(iterate_copy(bad, len2, &records, &consumed), -1);

    free(both);
    free(good);
    free(bad);
}

/* Every single-byte change to a batch: whatever next() says, it reads only
 * the buffer (the sanitizer checks) and returns a defined result. */
static void test_iter_survives_every_byte_flip(void)
{
    size_t len;
    uint8_t *good = build_three(5, &len);
    static const uint8_t patterns[] = {0xff, 0x80, 0x7f, 0x01};
    for (size_t at = 0; at < len; at++) {
        for (size_t k = 0; k < sizeof(patterns); k++) {
            uint8_t *buf = copy_bytes(good, len);
            buf[at] ^= patterns[k];
            int records;
            size_t consumed;
            int got = iterate_copy(buf, len, &records, &consumed);
            CU_ASSERT(got == 0 || got == -1);
            CU_ASSERT(consumed <= len);
            CU_ASSERT(records <= 3);
            free(buf);
        }
    }
    free(good);
}

void record_batch_suite(void)
{
    CU_pSuite s = CU_add_suite("record_batch", NULL, NULL);
    CU_add_test(s, "builder header", test_builder_header);
    CU_add_test(s, "builder producer fields", test_builder_producer_fields);
    CU_add_test(s, "read header", test_read_header);
    CU_add_test(s, "txn marker bytes", test_txn_marker_bytes);
    CU_add_test(s, "txn marker round trip", test_txn_marker_round_trip);
    CU_add_test(s, "txn marker malformed", test_txn_marker_malformed);
    CU_add_test(s, "txn marker survives every byte flip", test_txn_marker_survives_every_byte_flip);
    CU_add_test(s, "builder appends and reads back", test_builder_appends_and_reads_back);
    CU_add_test(s, "iterator reads log test batches", test_iter_reads_log_test_batches);
    CU_add_test(s, "iterator stops before a partial batch", test_iter_stops_before_partial_batch);
    CU_add_test(s, "iterator skips compressed and control", test_iter_skips_compressed_and_control);
    CU_add_test(s, "iterator refuses corrupt batches", test_iter_refuses_corrupt_batches);
    CU_add_test(s, "iterator survives every byte flip", test_iter_survives_every_byte_flip);
}
