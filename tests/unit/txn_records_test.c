/* CUnit tests for the __transaction_state schemas: the bytes the writers
 * produce (key v0, value v0, field order from TransactionLogKey.json and
 * TransactionLogValue.json), writer -> reader round trips, hand-built v1
 * values (compact encodings, known and unknown tagged fields), and every
 * prefix, oversized count, leftover byte, unknown version and unknown state
 * refused. */
#include <CUnit/Basic.h>
#include <stdlib.h>
#include <string.h>

#include "txn_records.h"

void txn_records_suite(void);

#define SLICE(cstr) ((kslice_t){.ptr = (const uint8_t *)(cstr), .len = (int32_t)strlen(cstr)})

static void assert_slice(kslice_t s, const char *expect)
{
    CU_ASSERT_PTR_NOT_NULL_FATAL(s.ptr);
    CU_ASSERT_TRUE(kslice_eq(s, expect));
}

static void assert_written(const kwriter_t *w, const uint8_t *expect, size_t len)
{
    CU_ASSERT_EQUAL_FATAL(w->len, len);
    CU_ASSERT_EQUAL(memcmp(w->buf, expect, len), 0);
}

/* Readers take p[0..len) exactly: a copy in an allocation of that size lets
 * the sanitizer catch any read past it. */
static bool read_exact(bool key, const uint8_t *p, size_t len)
{
    uint8_t *copy = malloc(len ? len : 1);
    memcpy(copy, p, len);
    bool ok;
    if (key) {
        kslice_t id;
        ok = txn_record_read_key(copy, len, &id);
    } else {
        txn_record_value_t v;
        ok = txn_record_read_value(copy, len, &v);
        if (ok)
            free(v.partitions);
        else
            CU_ASSERT_PTR_NULL(v.partitions);
    }
    free(copy);
    return ok;
}

/* The whole record decodes; every proper prefix and the record with one more
 * byte do not. */
static void assert_exact_record(bool key, const uint8_t *p, size_t len)
{
    CU_ASSERT_TRUE(read_exact(key, p, len));
    for (size_t n = 0; n < len; n++) {
        if (read_exact(key, p, n)) {
            CU_FAIL("a truncated record decoded");
            break;
        }
    }
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, p, len);
    longer[len] = 0;
    CU_ASSERT_FALSE(read_exact(key, longer, len + 1));
    free(longer);
}

/* ---- States ---- */

static void test_state_names(void)
{
    static const char *const names[] = {"Empty",        "Ongoing",          "PrepareCommit",
                                        "PrepareAbort", "CompleteCommit",   "CompleteAbort",
                                        "Dead",         "PrepareEpochFence"};
    for (int s = 0; s < TXN_STATE_COUNT; s++) {
        CU_ASSERT_STRING_EQUAL(txn_state_name(s), names[s]);
        CU_ASSERT_EQUAL(txn_state_from_name(SLICE(names[s])), s);
    }
    /* Kafka's numeric codes, which the log stores. */
    CU_ASSERT_EQUAL(TXN_PREPARE_COMMIT, 2);
    CU_ASSERT_EQUAL(TXN_COMPLETE_ABORT, 5);
    CU_ASSERT_EQUAL(TXN_PREPARE_EPOCH_FENCE, 7);
    CU_ASSERT_PTR_NULL(txn_state_name(-1));
    CU_ASSERT_PTR_NULL(txn_state_name(TXN_STATE_COUNT));
    CU_ASSERT_EQUAL(txn_state_from_name(SLICE("ongoing")), -1); /* case-sensitive, as Kafka */
    CU_ASSERT_EQUAL(txn_state_from_name(SLICE("Ongoing ")), -1);
    CU_ASSERT_EQUAL(txn_state_from_name(SLICE("")), -1);
    CU_ASSERT_EQUAL(txn_state_from_name((kslice_t){.ptr = NULL, .len = -1}), -1);
}

/* ---- Keys ---- */

static void test_key_round_trip(void)
{
    static const uint8_t expect[] = {0x00, 0x00, 0x00, 0x04, 't', 'x', 'n', '1'};
    kwriter_t w;
    kw_init(&w, 0);
    txn_record_write_key(&w, SLICE("txn1"));
    assert_written(&w, expect, sizeof(expect));
    kslice_t id;
    CU_ASSERT_TRUE_FATAL(txn_record_read_key(w.buf, w.len, &id));
    assert_slice(id, "txn1");
    assert_exact_record(true, w.buf, w.len);
    kw_free(&w);

    /* An empty id is a string like any other (the coordinator refuses it
     * before anything is written). */
    static const uint8_t empty[] = {0x00, 0x00, 0x00, 0x00};
    CU_ASSERT_TRUE(txn_record_read_key(empty, sizeof(empty), &id));
    CU_ASSERT_EQUAL(id.len, 0);
}

static void test_key_refusals(void)
{
    kslice_t id;
    static const uint8_t v1[] = {0x00, 0x01, 0x00, 0x01, 't'};
    static const uint8_t negative[] = {0xff, 0xff, 0x00, 0x01, 't'};
    static const uint8_t null_id[] = {0x00, 0x00, 0xff, 0xff};
    static const uint8_t overlong[] = {0x00, 0x00, 0x00, 0x09, 't'};
    static const uint8_t negative_len[] = {0x00, 0x00, 0xff, 0xfe, 't'};
    /* A group key of __consumer_offsets (version 2) is not a transaction's. */
    static const uint8_t group_key[] = {0x00, 0x02, 0x00, 0x01, 'g'};
    CU_ASSERT_FALSE(txn_record_read_key(v1, sizeof(v1), &id));
    CU_ASSERT_FALSE(txn_record_read_key(negative, sizeof(negative), &id));
    CU_ASSERT_FALSE(txn_record_read_key(null_id, sizeof(null_id), &id));
    CU_ASSERT_FALSE(txn_record_read_key(overlong, sizeof(overlong), &id));
    CU_ASSERT_FALSE(txn_record_read_key(negative_len, sizeof(negative_len), &id));
    CU_ASSERT_FALSE(txn_record_read_key(group_key, sizeof(group_key), &id));
    CU_ASSERT_FALSE(txn_record_read_key(NULL, 0, &id));
}

/* ---- Values ---- */

/* An Ongoing transaction over t1-0, t1-3 and t2-1, as Kafka's v0. */
static const uint8_t ongoing_v0[] = {
    0x00, 0x00,                                     /* version 0 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xe9, /* ProducerId 1001 */
    0x00, 0x05,                                     /* ProducerEpoch */
    0x00, 0x00, 0xea, 0x60,                         /* TransactionTimeoutMs 60000 */
    0x01,                                           /* TransactionStatus Ongoing */
    0x00, 0x00, 0x00, 0x02,                         /* TransactionPartitions: 2 topics */
    0x00, 0x02, 't',  '1',                          /*   Topic */
    0x00, 0x00, 0x00, 0x02,                         /*   PartitionIds: 2 */
    0x00, 0x00, 0x00, 0x00,                         /*     0 */
    0x00, 0x00, 0x00, 0x03,                         /*     3 */
    0x00, 0x02, 't',  '2',                          /*   Topic */
    0x00, 0x00, 0x00, 0x01,                         /*   PartitionIds: 1 */
    0x00, 0x00, 0x00, 0x01,                         /*     1 */
    0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x64, /* LastUpdateTimestampMs */
    0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, /* StartTimestampMs */
};

static void test_value_v0_written(void)
{
    txn_record_partition_t parts[] = {
        {SLICE("t1"), 0},
        {SLICE("t1"), 3},
        {SLICE("t2"), 1},
    };
    txn_record_value_t in = {
        .producer_id = 1001,
        .previous_producer_id = 77, /* v0 has no room for it */
        .next_producer_id = -1,
        .producer_epoch = 5,
        .timeout_ms = 60000,
        .state = TXN_ONGOING,
        .partitions = parts,
        .npartitions = 3,
        .last_update_ms = 1700000000100,
        .start_ms = 1700000000000,
    };
    kwriter_t w;
    kw_init(&w, 0);
    txn_record_write_value(&w, &in);
    assert_written(&w, ongoing_v0, sizeof(ongoing_v0));
    kw_free(&w);
}

static void test_value_v0_read(void)
{
    txn_record_value_t v;
    CU_ASSERT_TRUE_FATAL(txn_record_read_value(ongoing_v0, sizeof(ongoing_v0), &v));
    CU_ASSERT_EQUAL(v.producer_id, 1001);
    CU_ASSERT_EQUAL(v.previous_producer_id, -1);
    CU_ASSERT_EQUAL(v.next_producer_id, -1);
    CU_ASSERT_EQUAL(v.producer_epoch, 5);
    CU_ASSERT_EQUAL(v.timeout_ms, 60000);
    CU_ASSERT_EQUAL(v.state, TXN_ONGOING);
    CU_ASSERT_FALSE(v.partitions_null);
    CU_ASSERT_EQUAL_FATAL(v.npartitions, 3);
    assert_slice(v.partitions[0].topic, "t1");
    CU_ASSERT_EQUAL(v.partitions[0].partition, 0);
    assert_slice(v.partitions[1].topic, "t1");
    CU_ASSERT_EQUAL(v.partitions[1].partition, 3);
    assert_slice(v.partitions[2].topic, "t2");
    CU_ASSERT_EQUAL(v.partitions[2].partition, 1);
    CU_ASSERT_EQUAL(v.last_update_ms, 1700000000100);
    CU_ASSERT_EQUAL(v.start_ms, 1700000000000);
    CU_ASSERT_EQUAL(v.client_txn_version, 0);
    free(v.partitions);
    assert_exact_record(false, ongoing_v0, sizeof(ongoing_v0));
}

static void test_value_empty_and_complete(void)
{
    static const uint8_t empty_v0[] = {
        0x00, 0x00,                                     /* version 0 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, /* ProducerId 7 */
        0x00, 0x00,                                     /* ProducerEpoch 0 */
        0x00, 0x00, 0x27, 0x10,                         /* TransactionTimeoutMs 10000 */
        0x00,                                           /* Empty */
        0xff, 0xff, 0xff, 0xff,                         /* TransactionPartitions null */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, /* LastUpdateTimestampMs */
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* StartTimestampMs -1 */
    };
    txn_record_value_t in = {.producer_id = 7,
                             .producer_epoch = 0,
                             .timeout_ms = 10000,
                             .state = TXN_EMPTY,
                             .last_update_ms = 10,
                             .start_ms = -1};
    kwriter_t w;
    kw_init(&w, 0);
    txn_record_write_value(&w, &in);
    assert_written(&w, empty_v0, sizeof(empty_v0));
    kw_free(&w);
    txn_record_value_t v;
    CU_ASSERT_TRUE_FATAL(txn_record_read_value(empty_v0, sizeof(empty_v0), &v));
    CU_ASSERT_EQUAL(v.state, TXN_EMPTY);
    CU_ASSERT_TRUE(v.partitions_null);
    CU_ASSERT_EQUAL(v.npartitions, 0);
    CU_ASSERT_PTR_NULL(v.partitions);
    CU_ASSERT_EQUAL(v.start_ms, -1);
    assert_exact_record(false, empty_v0, sizeof(empty_v0));

    /* A completed transaction has an empty, non-null partition array. */
    in.state = TXN_COMPLETE_COMMIT;
    in.start_ms = 5;
    kw_init(&w, 0);
    txn_record_write_value(&w, &in);
    CU_ASSERT_EQUAL(w.len, sizeof(empty_v0));
    CU_ASSERT_EQUAL(w.buf[16], TXN_COMPLETE_COMMIT);
    CU_ASSERT_EQUAL(memcmp(w.buf + 17, "\0\0\0\0", 4), 0);
    CU_ASSERT_TRUE_FATAL(txn_record_read_value(w.buf, w.len, &v));
    CU_ASSERT_EQUAL(v.state, TXN_COMPLETE_COMMIT);
    CU_ASSERT_FALSE(v.partitions_null);
    CU_ASSERT_EQUAL(v.npartitions, 0);
    CU_ASSERT_EQUAL(v.start_ms, 5);
    kw_free(&w);
}

/* Every state round-trips through the writer and reader. */
static void test_value_round_trip_states(void)
{
    txn_record_partition_t parts[] = {{SLICE("a"), 2}, {SLICE("b"), 0}, {SLICE("b"), 9}};
    for (int s = TXN_ONGOING; s < TXN_STATE_COUNT; s++) {
        txn_record_value_t in = {.producer_id = INT64_MAX,
                                 .producer_epoch = INT16_MAX - 1,
                                 .timeout_ms = 900000,
                                 .state = (txn_state_t)s,
                                 .partitions = parts,
                                 .npartitions = 3,
                                 .last_update_ms = 2,
                                 .start_ms = 1};
        kwriter_t w;
        kw_init(&w, 0);
        txn_record_write_value(&w, &in);
        txn_record_value_t v;
        CU_ASSERT_TRUE_FATAL(txn_record_read_value(w.buf, w.len, &v));
        CU_ASSERT_EQUAL(v.state, s);
        CU_ASSERT_EQUAL(v.producer_id, INT64_MAX);
        CU_ASSERT_EQUAL(v.producer_epoch, INT16_MAX - 1);
        CU_ASSERT_EQUAL(v.timeout_ms, 900000);
        CU_ASSERT_EQUAL_FATAL(v.npartitions, 3);
        for (int i = 0; i < 3; i++) {
            CU_ASSERT_TRUE(kslice_eq(v.partitions[i].topic, i == 0 ? "a" : "b"));
            CU_ASSERT_EQUAL(v.partitions[i].partition, parts[i].partition);
        }
        free(v.partitions);
        kw_free(&w);
    }
}

/* A PrepareCommit as Kafka's v1 (transaction.version 2): compact
 * encodings, the three known tags, an unknown tag, and a tag inside the
 * PartitionsSchema. */
static const uint8_t prepare_v1[] = {
    0x00, 0x01,                                                 /* version 1 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a,             /* ProducerId 42 */
    0x00, 0x03,                                                 /* ProducerEpoch */
    0x00, 0x00, 0x03, 0xe8,                                     /* TransactionTimeoutMs 1000 */
    0x02,                                                       /* PrepareCommit */
    0x02,                                                       /* TransactionPartitions: 1 topic */
    0x04, 'a',  'b',  'c',                                      /*   Topic (compact) */
    0x03,                                                       /*   PartitionIds: 2 */
    0x00, 0x00, 0x00, 0x04,                                     /*     4 */
    0x00, 0x00, 0x00, 0x05,                                     /*     5 */
    0x01, 0x64, 0x01, 0x00,                                     /*   tags: 100 -> one byte */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,             /* LastUpdateTimestampMs */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,             /* StartTimestampMs */
    0x04,                                                       /* 4 tags */
    0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x29, /* 0: PreviousProducerId 41 */
    0x01, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2b, /* 1: NextProducerId 43 */
    0x02, 0x02, 0x00, 0x02,                                     /* 2: ClientTransactionVersion */
    0x65, 0x03, 'f',  'o',  'o',                                /* 101: unknown, skipped */
};

static void test_value_v1_read(void)
{
    txn_record_value_t v;
    CU_ASSERT_TRUE_FATAL(txn_record_read_value(prepare_v1, sizeof(prepare_v1), &v));
    CU_ASSERT_EQUAL(v.producer_id, 42);
    CU_ASSERT_EQUAL(v.previous_producer_id, 41);
    CU_ASSERT_EQUAL(v.next_producer_id, 43);
    CU_ASSERT_EQUAL(v.producer_epoch, 3);
    CU_ASSERT_EQUAL(v.timeout_ms, 1000);
    CU_ASSERT_EQUAL(v.state, TXN_PREPARE_COMMIT);
    CU_ASSERT_EQUAL_FATAL(v.npartitions, 2);
    assert_slice(v.partitions[0].topic, "abc");
    CU_ASSERT_EQUAL(v.partitions[0].partition, 4);
    assert_slice(v.partitions[1].topic, "abc");
    CU_ASSERT_EQUAL(v.partitions[1].partition, 5);
    CU_ASSERT_EQUAL(v.last_update_ms, 2);
    CU_ASSERT_EQUAL(v.start_ms, 1);
    CU_ASSERT_EQUAL(v.client_txn_version, 2);
    free(v.partitions);
    assert_exact_record(false, prepare_v1, sizeof(prepare_v1));
}

static void test_value_v1_minimal(void)
{
    /* v1 without tags: the tag fields keep their schema defaults; a null
     * compact array (0). */
    static const uint8_t v1[] = {
        0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, /* ProducerId 9 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x64, 0x00,                   /* epoch, timeout, Empty */
        0x00,                                                       /* partitions null */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,             /* LastUpdate */
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,             /* Start */
        0x00,                                                       /* no tags */
    };
    txn_record_value_t v;
    CU_ASSERT_TRUE_FATAL(txn_record_read_value(v1, sizeof(v1), &v));
    CU_ASSERT_EQUAL(v.producer_id, 9);
    CU_ASSERT_EQUAL(v.previous_producer_id, -1);
    CU_ASSERT_EQUAL(v.next_producer_id, -1);
    CU_ASSERT_EQUAL(v.client_txn_version, 0);
    CU_ASSERT_EQUAL(v.state, TXN_EMPTY);
    CU_ASSERT_TRUE(v.partitions_null);
    assert_exact_record(false, v1, sizeof(v1));
}

/* Copies rec with byte `at` replaced; true when the result decodes. */
static bool decodes_with(const uint8_t *rec, size_t len, size_t at, uint8_t byte)
{
    uint8_t *copy = malloc(len);
    memcpy(copy, rec, len);
    copy[at] = byte;
    bool ok = read_exact(false, copy, len);
    free(copy);
    return ok;
}

static void test_value_refusals(void)
{
    /* Versions: 2 and -1 are unknown. */
    CU_ASSERT_FALSE(decodes_with(ongoing_v0, sizeof(ongoing_v0), 1, 0x02));
    CU_ASSERT_FALSE(decodes_with(ongoing_v0, sizeof(ongoing_v0), 0, 0xff));
    /* TransactionStatus outside Kafka's eight states. */
    CU_ASSERT_TRUE(decodes_with(ongoing_v0, sizeof(ongoing_v0), 16, 7));
    CU_ASSERT_FALSE(decodes_with(ongoing_v0, sizeof(ongoing_v0), 16, 8));
    CU_ASSERT_FALSE(decodes_with(ongoing_v0, sizeof(ongoing_v0), 16, 0xff));
    /* Topic count past the bytes present (before any allocation). */
    CU_ASSERT_FALSE(decodes_with(ongoing_v0, sizeof(ongoing_v0), 17, 0x7f));
    CU_ASSERT_FALSE(decodes_with(ongoing_v0, sizeof(ongoing_v0), 20, 0x03));
    /* A partition count past the bytes present, and a null one. */
    CU_ASSERT_FALSE(decodes_with(ongoing_v0, sizeof(ongoing_v0), 25, 0x7f));
    CU_ASSERT_FALSE(decodes_with(ongoing_v0, sizeof(ongoing_v0), 28, 0x09));
    CU_ASSERT_FALSE(decodes_with(ongoing_v0, sizeof(ongoing_v0), 25, 0xff));
    /* A negative topic name length. */
    CU_ASSERT_FALSE(decodes_with(ongoing_v0, sizeof(ongoing_v0), 21, 0xff));

    /* v1: a known tag of the wrong size, tags out of order, a tag section
     * claiming more tags than bytes. */
    const size_t tags_at = sizeof(prepare_v1) - 30;
    CU_ASSERT_EQUAL_FATAL(prepare_v1[tags_at], 0x04);
    CU_ASSERT_FALSE(decodes_with(prepare_v1, sizeof(prepare_v1), tags_at + 2, 0x07));
    CU_ASSERT_FALSE(decodes_with(prepare_v1, sizeof(prepare_v1), tags_at + 11, 0x00));
    CU_ASSERT_FALSE(decodes_with(prepare_v1, sizeof(prepare_v1), tags_at + 22, 0x01));
    CU_ASSERT_FALSE(decodes_with(prepare_v1, sizeof(prepare_v1), tags_at, 0x7f));
    CU_ASSERT_FALSE(decodes_with(prepare_v1, sizeof(prepare_v1), tags_at, 0x05));
    /* Fewer tags than present leaves bytes over. */
    CU_ASSERT_FALSE(decodes_with(prepare_v1, sizeof(prepare_v1), tags_at, 0x03));
    /* The classic layout under a flexible version number, and the other
     * way round. */
    CU_ASSERT_FALSE(decodes_with(ongoing_v0, sizeof(ongoing_v0), 1, 0x01));
    CU_ASSERT_FALSE(decodes_with(prepare_v1, sizeof(prepare_v1), 1, 0x00));

    txn_record_value_t v;
    CU_ASSERT_FALSE(txn_record_read_value(NULL, 0, &v));
    CU_ASSERT_PTR_NULL(v.partitions);
}

void txn_records_suite(void)
{
    CU_pSuite s = CU_add_suite("txn_records", NULL, NULL);
    CU_add_test(s, "state names and codes", test_state_names);
    CU_add_test(s, "key v0 round trip", test_key_round_trip);
    CU_add_test(s, "key refusals", test_key_refusals);
    CU_add_test(s, "value v0 as Kafka writes it", test_value_v0_written);
    CU_add_test(s, "value v0 read", test_value_v0_read);
    CU_add_test(s, "value Empty (null partitions) and Complete", test_value_empty_and_complete);
    CU_add_test(s, "value round trip, every state", test_value_round_trip_states);
    CU_add_test(s, "value v1 with tagged fields", test_value_v1_read);
    CU_add_test(s, "value v1 without tags", test_value_v1_minimal);
    CU_add_test(s, "value refusals", test_value_refusals);
}
