/* CUnit tests for the __consumer_offsets schemas: writer -> reader round
 * trips of every version written, hand-built bytes of the versions only
 * Kafka writes (field order from OffsetCommitValue.json and
 * GroupMetadataValue.json), and every prefix, oversized length and leftover
 * byte refused. */
#include <CUnit/Basic.h>
#include <stdlib.h>
#include <string.h>

#include "group_records.h"

void group_records_suite(void);

#define SLICE(cstr) ((kslice_t){.ptr = (const uint8_t *)(cstr), .len = (int32_t)strlen(cstr)})
#define NULL_SLICE  ((kslice_t){.ptr = NULL, .len = -1})

static void assert_slice(kslice_t s, const char *expect)
{
    if (expect == NULL) {
        CU_ASSERT_PTR_NULL(s.ptr);
        return;
    }
    CU_ASSERT_TRUE(kslice_eq(s, expect));
}

static void assert_written(const kwriter_t *w, const uint8_t *expect, size_t len)
{
    CU_ASSERT_EQUAL_FATAL(w->len, len);
    CU_ASSERT_EQUAL(memcmp(w->buf, expect, len), 0);
}

static void assert_member(const group_member_record_t *m, const char *member_id,
                          const char *instance_id, const char *client_id, const char *client_host,
                          int32_t rebalance_timeout_ms, int32_t session_timeout_ms)
{
    assert_slice(m->member_id, member_id);
    assert_slice(m->group_instance_id, instance_id);
    assert_slice(m->client_id, client_id);
    assert_slice(m->client_host, client_host);
    CU_ASSERT_EQUAL(m->rebalance_timeout_ms, rebalance_timeout_ms);
    CU_ASSERT_EQUAL(m->session_timeout_ms, session_timeout_ms);
}

/* Readers take p[0..len) exactly: a copy in an allocation of that size lets
 * the sanitizer catch any read past it. */
typedef enum { READ_KEY, READ_OFFSET_VALUE, READ_METADATA_VALUE } reader_kind_t;

static bool read_exact(reader_kind_t kind, const uint8_t *p, size_t len)
{
    uint8_t *copy = malloc(len ? len : 1);
    memcpy(copy, p, len);
    bool ok = false;
    if (kind == READ_KEY) {
        group_record_key_t k;
        ok = group_record_read_key(copy, len, &k);
    } else if (kind == READ_OFFSET_VALUE) {
        group_offset_value_t v;
        ok = group_record_read_offset_value(copy, len, &v);
    } else {
        group_metadata_value_t v;
        ok = group_record_read_metadata_value(copy, len, &v);
        if (ok)
            free(v.members);
        else
            CU_ASSERT_PTR_NULL(v.members);
    }
    free(copy);
    return ok;
}

/* The whole record decodes; every proper prefix and the record with one more
 * byte do not. */
static void assert_exact_record(reader_kind_t kind, const uint8_t *p, size_t len)
{
    CU_ASSERT_TRUE(read_exact(kind, p, len));
    for (size_t n = 0; n < len; n++) {
        if (read_exact(kind, p, n)) {
            CU_FAIL("a truncated record decoded");
            break;
        }
    }
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, p, len);
    longer[len] = 0;
    CU_ASSERT_FALSE(read_exact(kind, longer, len + 1));
    free(longer);
}

/* p[0..len) is exactly one offset commit value holding these fields. */
static void assert_offset_value(const uint8_t *p, size_t len, int64_t offset, int32_t leader_epoch,
                                const char *metadata, int64_t commit_timestamp,
                                int64_t expire_timestamp)
{
    group_offset_value_t out;
    CU_ASSERT_TRUE_FATAL(group_record_read_offset_value(p, len, &out));
    CU_ASSERT_EQUAL(out.offset, offset);
    CU_ASSERT_EQUAL(out.leader_epoch, leader_epoch);
    assert_slice(out.metadata, metadata);
    CU_ASSERT_EQUAL(out.commit_timestamp, commit_timestamp);
    CU_ASSERT_EQUAL(out.expire_timestamp, expire_timestamp);
    assert_exact_record(READ_OFFSET_VALUE, p, len);
}

/* ---- Keys ---- */

static void test_offset_key_v1_round_trip(void)
{
    static const uint8_t expect[] = {
        0x00, 0x01,                  /* version 1 */
        0x00, 0x02, 'g',  '1',       /* group */
        0x00, 0x03, 't',  'o',  'p', /* topic */
        0x00, 0x00, 0x00, 0x07,      /* partition */
    };
    kwriter_t w;
    kw_init(&w, 0);
    group_record_write_offset_key(&w, SLICE("g1"), SLICE("top"), 7);
    assert_written(&w, expect, sizeof(expect));

    group_record_key_t k;
    CU_ASSERT_TRUE_FATAL(group_record_read_key(w.buf, w.len, &k));
    CU_ASSERT_EQUAL(k.type, GROUP_RECORD_OFFSET_COMMIT);
    assert_slice(k.group, "g1");
    assert_slice(k.topic, "top");
    CU_ASSERT_EQUAL(k.partition, 7);
    assert_exact_record(READ_KEY, w.buf, w.len);
    kw_free(&w);
}

static void test_offset_key_v0(void)
{
    static const uint8_t v0[] = {
        0x00, 0x00,             /* version 0: the same layout as 1 */
        0x00, 0x01, 'g',        /* group */
        0x00, 0x01, 't',        /* topic */
        0x7f, 0xff, 0xff, 0xff, /* partition */
    };
    group_record_key_t k;
    CU_ASSERT_TRUE_FATAL(group_record_read_key(v0, sizeof(v0), &k));
    CU_ASSERT_EQUAL(k.type, GROUP_RECORD_OFFSET_COMMIT);
    assert_slice(k.group, "g");
    assert_slice(k.topic, "t");
    CU_ASSERT_EQUAL(k.partition, INT32_MAX);
    assert_exact_record(READ_KEY, v0, sizeof(v0));
}

static void test_metadata_key_v2_round_trip(void)
{
    static const uint8_t expect[] = {0x00, 0x02, 0x00, 0x05, 'g', 'r', 'o', 'u', 'p'};
    kwriter_t w;
    kw_init(&w, 0);
    group_record_write_metadata_key(&w, SLICE("group"));
    assert_written(&w, expect, sizeof(expect));

    group_record_key_t k;
    CU_ASSERT_TRUE_FATAL(group_record_read_key(w.buf, w.len, &k));
    CU_ASSERT_EQUAL(k.type, GROUP_RECORD_GROUP_METADATA);
    assert_slice(k.group, "group");
    CU_ASSERT_PTR_NULL(k.topic.ptr);
    CU_ASSERT_EQUAL(k.partition, -1);
    assert_exact_record(READ_KEY, w.buf, w.len);
    kw_free(&w);
}

static void test_key_refusals(void)
{
    group_record_key_t k;
    static const uint8_t v3[] = {0x00, 0x03, 0x00, 0x01, 'g'};
    static const uint8_t negative[] = {0xff, 0xff, 0x00, 0x01, 'g'};
    static const uint8_t null_group[] = {0x00, 0x02, 0xff, 0xff};
    static const uint8_t overlong_group[] = {0x00, 0x02, 0x00, 0x09, 'g'};
    static const uint8_t negative_group[] = {0x00, 0x02, 0xff, 0xfe, 'g'};
    CU_ASSERT_FALSE(group_record_read_key(v3, sizeof(v3), &k));
    CU_ASSERT_FALSE(group_record_read_key(negative, sizeof(negative), &k));
    CU_ASSERT_FALSE(group_record_read_key(null_group, sizeof(null_group), &k));
    CU_ASSERT_FALSE(group_record_read_key(overlong_group, sizeof(overlong_group), &k));
    CU_ASSERT_FALSE(group_record_read_key(negative_group, sizeof(negative_group), &k));
    CU_ASSERT_FALSE(group_record_read_key(NULL, 0, &k));
}

/* ---- Offset commit values ---- */

static void test_offset_value_v3_round_trip(void)
{
    static const uint8_t expect[] = {
        0x00, 0x03,                                     /* version 3 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, /* offset 256 */
        0x00, 0x00, 0x00, 0x05,                         /* leaderEpoch */
        0x00, 0x02, 'm',  'd',                          /* metadata */
        0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, /* commitTimestamp */
    };
    group_offset_value_t in = {.offset = 256,
                               .leader_epoch = 5,
                               .metadata = SLICE("md"),
                               .commit_timestamp = 1700000000000,
                               .expire_timestamp = -1};
    kwriter_t w;
    kw_init(&w, 0);
    group_record_write_offset_value(&w, &in);
    assert_written(&w, expect, sizeof(expect));

    assert_offset_value(w.buf, w.len, 256, 5, "md", 1700000000000, -1);
    kw_free(&w);
}

static void test_offset_value_v1_round_trip(void)
{
    static const uint8_t expect[] = {
        0x00, 0x01,                                     /* version 1 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a, /* offset */
        0x00, 0x00,                                     /* metadata: null written as "" */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x64, /* commitTimestamp */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc8, /* expireTimestamp */
    };
    group_offset_value_t in = {.offset = 42,
                               .leader_epoch = 9, /* v1 has no place for it */
                               .metadata = NULL_SLICE,
                               .commit_timestamp = 100,
                               .expire_timestamp = 200};
    kwriter_t w;
    kw_init(&w, 0);
    group_record_write_offset_value(&w, &in);
    assert_written(&w, expect, sizeof(expect));

    assert_offset_value(w.buf, w.len, 42, -1, "", 100, 200);
    kw_free(&w);
}

static void test_offset_value_v0_v2(void)
{
    /* v0 and v2: offset, metadata, commitTimestamp; no epoch, no expiry. */
    uint8_t bytes[] = {
        0x00, 0x00,                                     /* version (patched to 2 below) */
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* offset -1 */
        0x00, 0x03, 'a',  'b',  'c',                    /* metadata */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xe8, /* commitTimestamp 1000 */
    };
    for (int version = 0; version <= 2; version += 2) {
        bytes[1] = (uint8_t)version;
        assert_offset_value(bytes, sizeof(bytes), -1, -1, "abc", 1000, -1);
    }
    /* v1 has an expireTimestamp more: the v0 bytes are a truncated v1. */
    bytes[1] = 1;
    group_offset_value_t out;
    CU_ASSERT_FALSE(group_record_read_offset_value(bytes, sizeof(bytes), &out));
}

static void test_offset_value_v4_flexible(void)
{
    static const uint8_t v4[] = {
        0x00, 0x04,                                     /* version 4 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, /* offset */
        0x00, 0x00, 0x00, 0x02,                         /* leaderEpoch */
        0x03, 'x',  'y',                                /* metadata: compact, len+1 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20, /* commitTimestamp */
        0x01, 0x05, 0x02, 0xaa, 0xbb,                   /* one unknown tag (5), 2 bytes */
    };
    assert_offset_value(v4, sizeof(v4), 16, 2, "xy", 32, -1);

    /* The same fields with the classic int16 metadata length do not parse. */
    static const uint8_t v4_classic_string[] = {
        0x00, 0x04, 0,   0,   0, 0, 0, 0, 0, 0x10, 0, 0,    0,    2,
        0x00, 0x02, 'x', 'y', 0, 0, 0, 0, 0, 0,    0, 0x20, 0x00,
    };
    CU_ASSERT_FALSE(read_exact(READ_OFFSET_VALUE, v4_classic_string, sizeof(v4_classic_string)));
}

static void test_offset_value_refusals(void)
{
    group_offset_value_t out;
    static const uint8_t v5[] = {0x00, 0x05, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                 0,    0,    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    static const uint8_t null_metadata[] = {0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 1,
                                            0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 2};
    static const uint8_t overlong_metadata[] = {0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 1,
                                                0x7f, 0xff, 0, 0, 0, 0, 0, 0, 0, 2};
    static const uint8_t huge_compact_metadata[] = {
        0x00, 0x04, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f};
    CU_ASSERT_FALSE(group_record_read_offset_value(v5, sizeof(v5), &out));
    CU_ASSERT_FALSE(group_record_read_offset_value(null_metadata, sizeof(null_metadata), &out));
    CU_ASSERT_FALSE(
        group_record_read_offset_value(overlong_metadata, sizeof(overlong_metadata), &out));
    CU_ASSERT_FALSE(
        group_record_read_offset_value(huge_compact_metadata, sizeof(huge_compact_metadata), &out));
}

/* ---- Group metadata values ---- */

static void test_metadata_value_v3_round_trip(void)
{
    static const uint8_t expect[] = {
        0x00, 0x03,                                         /* version 3 */
        0x00, 0x08, 'c', 'o', 'n', 's', 'u', 'm', 'e', 'r', /* protocolType */
        0x00, 0x00, 0x00, 0x04,                             /* generation */
        0x00, 0x05, 'r', 'a', 'n', 'g', 'e',                /* protocol */
        0x00, 0x02, 'm', '1',                               /* leader */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x63,     /* currentStateTimestamp */
        0x00, 0x00, 0x00, 0x02,                             /* members: 2 */
        /* member 0 */
        0x00, 0x02, 'm', '1',               /* memberId */
        0x00, 0x02, 'i', '1',               /* groupInstanceId */
        0x00, 0x01, 'c',                    /* clientId */
        0x00, 0x02, 'h', '1',               /* clientHost */
        0x00, 0x00, 0x75, 0x30,             /* rebalanceTimeout 30000 */
        0x00, 0x00, 0x27, 0x10,             /* sessionTimeout 10000 */
        0x00, 0x00, 0x00, 0x02, 0x01, 0x02, /* subscription */
        0x00, 0x00, 0x00, 0x01, 0x03,       /* assignment */
        /* member 1 */
        0x00, 0x02, 'm', '2',   /* memberId */
        0xff, 0xff,             /* groupInstanceId: null */
        0x00, 0x00,             /* clientId: "" */
        0x00, 0x02, 'h', '2',   /* clientHost */
        0x00, 0x00, 0x00, 0x01, /* rebalanceTimeout */
        0x00, 0x00, 0x00, 0x02, /* sessionTimeout */
        0x00, 0x00, 0x00, 0x00, /* subscription: empty */
        0x00, 0x00, 0x00, 0x00, /* assignment: empty */
    };
    static const uint8_t sub0[] = {1, 2}, asg0[] = {3};
    group_member_record_t members[2] = {
        {.member_id = SLICE("m1"),
         .group_instance_id = SLICE("i1"),
         .client_id = SLICE("c"),
         .client_host = SLICE("h1"),
         .rebalance_timeout_ms = 30000,
         .session_timeout_ms = 10000,
         .subscription = {.ptr = sub0, .len = 2},
         .assignment = {.ptr = asg0, .len = 1}},
        {.member_id = SLICE("m2"),
         .group_instance_id = NULL_SLICE,
         .client_id = SLICE(""),
         .client_host = SLICE("h2"),
         .rebalance_timeout_ms = 1,
         .session_timeout_ms = 2,
         .subscription = SLICE(""),
         .assignment = SLICE("")},
    };
    group_metadata_value_t in = {.protocol_type = SLICE("consumer"),
                                 .generation = 4,
                                 .protocol = SLICE("range"),
                                 .leader = SLICE("m1"),
                                 .current_state_timestamp = 99,
                                 .members = members,
                                 .nmembers = 2};
    kwriter_t w;
    kw_init(&w, 0);
    group_record_write_metadata_value(&w, &in);
    assert_written(&w, expect, sizeof(expect));

    group_metadata_value_t out;
    CU_ASSERT_TRUE_FATAL(group_record_read_metadata_value(w.buf, w.len, &out));
    assert_slice(out.protocol_type, "consumer");
    CU_ASSERT_EQUAL(out.generation, 4);
    assert_slice(out.protocol, "range");
    assert_slice(out.leader, "m1");
    CU_ASSERT_EQUAL(out.current_state_timestamp, 99);
    CU_ASSERT_EQUAL_FATAL(out.nmembers, 2);
    assert_member(&out.members[0], "m1", "i1", "c", "h1", 30000, 10000);
    CU_ASSERT_EQUAL(out.members[0].subscription.len, 2);
    CU_ASSERT_EQUAL(memcmp(out.members[0].subscription.ptr, sub0, 2), 0);
    CU_ASSERT_EQUAL(out.members[0].assignment.len, 1);
    CU_ASSERT_EQUAL(out.members[0].assignment.ptr[0], 3);
    assert_member(&out.members[1], "m2", NULL, "", "h2", 1, 2);
    CU_ASSERT_PTR_NOT_NULL(out.members[1].subscription.ptr);
    CU_ASSERT_EQUAL(out.members[1].subscription.len, 0);
    free(out.members);
    assert_exact_record(READ_METADATA_VALUE, w.buf, w.len);
    kw_free(&w);
}

/* An empty group as Kafka writes it between generations: no protocol, no
 * leader, no members. */
static void test_metadata_value_v3_empty_group(void)
{
    group_metadata_value_t in = {.protocol_type = SLICE(""),
                                 .generation = 0,
                                 .protocol = NULL_SLICE,
                                 .leader = NULL_SLICE,
                                 .current_state_timestamp = -1,
                                 .members = NULL,
                                 .nmembers = 0};
    kwriter_t w;
    kw_init(&w, 0);
    group_record_write_metadata_value(&w, &in);
    CU_ASSERT_EQUAL(w.len, 2 + 2 + 4 + 2 + 2 + 8 + 4);

    group_metadata_value_t out;
    CU_ASSERT_TRUE_FATAL(group_record_read_metadata_value(w.buf, w.len, &out));
    assert_slice(out.protocol_type, "");
    CU_ASSERT_PTR_NULL(out.protocol.ptr);
    CU_ASSERT_PTR_NULL(out.leader.ptr);
    CU_ASSERT_EQUAL(out.current_state_timestamp, -1);
    CU_ASSERT_EQUAL(out.nmembers, 0);
    CU_ASSERT_PTR_NULL(out.members);
    assert_exact_record(READ_METADATA_VALUE, w.buf, w.len);
    kw_free(&w);
}

static void test_metadata_value_v0(void)
{
    static const uint8_t v0[] = {
        0x00, 0x00,                                            /* version 0 */
        0x00, 0x08, 'c',  'o',  'n',  's', 'u', 'm', 'e', 'r', /* protocolType */
        0x00, 0x00, 0x00, 0x01,                                /* generation */
        0x00, 0x02, 'r',  'r',                                 /* protocol */
        0xff, 0xff,                                            /* leader: null */
        0x00, 0x00, 0x00, 0x01,                                /* members: 1 */
        0x00, 0x01, 'm',                                       /* memberId */
        0x00, 0x01, 'c',                                       /* clientId */
        0x00, 0x01, 'h',                                       /* clientHost */
        0x00, 0x00, 0x17, 0x70,                                /* sessionTimeout 6000 */
        0x00, 0x00, 0x00, 0x01, 0x0a,                          /* subscription */
        0x00, 0x00, 0x00, 0x01, 0x0b,                          /* assignment */
    };
    group_metadata_value_t out;
    CU_ASSERT_TRUE_FATAL(group_record_read_metadata_value(v0, sizeof(v0), &out));
    assert_slice(out.protocol_type, "consumer");
    CU_ASSERT_EQUAL(out.generation, 1);
    assert_slice(out.protocol, "rr");
    CU_ASSERT_PTR_NULL(out.leader.ptr);
    CU_ASSERT_EQUAL(out.current_state_timestamp, -1);
    CU_ASSERT_EQUAL_FATAL(out.nmembers, 1);
    assert_member(&out.members[0], "m", NULL, "c", "h", 6000, 6000); /* v0: one timeout */
    CU_ASSERT_EQUAL(out.members[0].subscription.ptr[0], 0x0a);
    CU_ASSERT_EQUAL(out.members[0].assignment.ptr[0], 0x0b);
    free(out.members);
    assert_exact_record(READ_METADATA_VALUE, v0, sizeof(v0));
}

static void test_metadata_value_v1_v2(void)
{
    static const uint8_t v1[] = {
        0x00, 0x01,             /* version 1 */
        0x00, 0x01, 'p',        /* protocolType */
        0x00, 0x00, 0x00, 0x02, /* generation */
        0xff, 0xff,             /* protocol: null */
        0xff, 0xff,             /* leader: null */
        0x00, 0x00, 0x00, 0x01, /* members: 1 */
        0x00, 0x01, 'm',        /* memberId */
        0x00, 0x01, 'c',        /* clientId */
        0x00, 0x01, 'h',        /* clientHost */
        0x00, 0x00, 0x00, 0x07, /* rebalanceTimeout */
        0x00, 0x00, 0x00, 0x03, /* sessionTimeout */
        0x00, 0x00, 0x00, 0x00, /* subscription */
        0x00, 0x00, 0x00, 0x00, /* assignment */
    };
    static const uint8_t v2[] = {
        0x00, 0x02,                                     /* version 2 */
        0x00, 0x01, 'p',                                /* protocolType */
        0x00, 0x00, 0x00, 0x02,                         /* generation */
        0x00, 0x01, 'x',                                /* protocol */
        0x00, 0x01, 'm',                                /* leader */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2b, /* currentStateTimestamp */
        0x00, 0x00, 0x00, 0x01,                         /* members: 1 */
        0x00, 0x01, 'm',                                /* memberId */
        0x00, 0x01, 'c',                                /* clientId */
        0x00, 0x01, 'h',                                /* clientHost */
        0x00, 0x00, 0x00, 0x07,                         /* rebalanceTimeout */
        0x00, 0x00, 0x00, 0x03,                         /* sessionTimeout */
        0x00, 0x00, 0x00, 0x00,                         /* subscription */
        0x00, 0x00, 0x00, 0x00,                         /* assignment */
    };
    group_metadata_value_t out;
    CU_ASSERT_TRUE_FATAL(group_record_read_metadata_value(v1, sizeof(v1), &out));
    CU_ASSERT_PTR_NULL(out.protocol.ptr);
    CU_ASSERT_EQUAL(out.current_state_timestamp, -1);
    CU_ASSERT_EQUAL_FATAL(out.nmembers, 1);
    assert_member(&out.members[0], "m", NULL, "c", "h", 7, 3);
    free(out.members);
    assert_exact_record(READ_METADATA_VALUE, v1, sizeof(v1));

    CU_ASSERT_TRUE_FATAL(group_record_read_metadata_value(v2, sizeof(v2), &out));
    assert_slice(out.protocol, "x");
    assert_slice(out.leader, "m");
    CU_ASSERT_EQUAL(out.current_state_timestamp, 43);
    CU_ASSERT_EQUAL_FATAL(out.nmembers, 1);
    assert_member(&out.members[0], "m", NULL, "c", "h", 7, 3);
    free(out.members);
    assert_exact_record(READ_METADATA_VALUE, v2, sizeof(v2));
}

static void test_metadata_value_v4_flexible(void)
{
    static const uint8_t v4[] = {
        0x00, 0x04,                                     /* version 4 */
        0x09, 'c', 'o', 'n', 's', 'u', 'm', 'e', 'r',   /* protocolType: compact */
        0x00, 0x00, 0x00, 0x05,                         /* generation */
        0x00,                                           /* protocol: null */
        0x03, 'm', '1',                                 /* leader */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, /* currentStateTimestamp */
        0x03,                                           /* members: compact, 2 */
        /* member 0 */
        0x03, 'm', '1',         /* memberId */
        0x03, 'i', '1',         /* groupInstanceId */
        0x02, 'c',              /* clientId */
        0x02, 'h',              /* clientHost */
        0x00, 0x00, 0x00, 0x0b, /* rebalanceTimeout */
        0x00, 0x00, 0x00, 0x0c, /* sessionTimeout */
        0x03, 0xde, 0xad,       /* subscription */
        0x01,                   /* assignment: empty */
        0x01, 0x00, 0x01, 0x99, /* member tags: tag 0, 1 byte */
        /* member 1 */
        0x03, 'm', '2',         /* memberId */
        0x00,                   /* groupInstanceId: null */
        0x01,                   /* clientId: "" */
        0x02, 'h',              /* clientHost */
        0x00, 0x00, 0x00, 0x01, /* rebalanceTimeout */
        0x00, 0x00, 0x00, 0x02, /* sessionTimeout */
        0x01,                   /* subscription: empty */
        0x02, 0xef,             /* assignment */
        0x00,                   /* member tags: none */
        0x00,                   /* value tags: none */
    };
    group_metadata_value_t out;
    CU_ASSERT_TRUE_FATAL(group_record_read_metadata_value(v4, sizeof(v4), &out));
    assert_slice(out.protocol_type, "consumer");
    CU_ASSERT_EQUAL(out.generation, 5);
    CU_ASSERT_PTR_NULL(out.protocol.ptr);
    assert_slice(out.leader, "m1");
    CU_ASSERT_EQUAL(out.current_state_timestamp, 7);
    CU_ASSERT_EQUAL_FATAL(out.nmembers, 2);
    assert_member(&out.members[0], "m1", "i1", "c", "h", 11, 12);
    CU_ASSERT_EQUAL(out.members[0].subscription.len, 2);
    CU_ASSERT_EQUAL(out.members[0].subscription.ptr[1], 0xad);
    CU_ASSERT_EQUAL(out.members[0].assignment.len, 0);
    assert_member(&out.members[1], "m2", NULL, "", "h", 1, 2);
    CU_ASSERT_EQUAL(out.members[1].assignment.len, 1);
    CU_ASSERT_EQUAL(out.members[1].assignment.ptr[0], 0xef);
    free(out.members);
    assert_exact_record(READ_METADATA_VALUE, v4, sizeof(v4));
}

static void test_metadata_value_refusals(void)
{
    group_metadata_value_t out;
    /* Each starts as a v0 (or v4) value with protocolType "", generation 1,
     * a null protocol and leader (and, in v4, currentStateTimestamp 0), then
     * the members array. 2^31-1 members announced in a handful of bytes:
     * refused before any allocation of that size. */
    static const uint8_t huge_count[] = {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
                                         0xff, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff};
    static const uint8_t null_members[] = {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
                                           0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t huge_compact_count[] = {0x00, 0x04, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00,
                                                 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                                 0x00, 0xff, 0xff, 0xff, 0xff, 0x07};
    /* One v0 member whose subscription is null: the schema's bytes are not
     * nullable. */
    static const uint8_t null_subscription[] = {
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xff, 0xff, 0xff, 0xff,
        0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x03, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00};
    /* The same member with an empty subscription decodes. */
    static const uint8_t empty_subscription[] = {
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xff, 0xff, 0xff, 0xff,
        0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    static const uint8_t v5[] = {0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
                                 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00};
    static const uint8_t v0_empty[] = {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
                                       0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00};

    CU_ASSERT_FALSE(group_record_read_metadata_value(huge_count, sizeof(huge_count), &out));
    CU_ASSERT_FALSE(group_record_read_metadata_value(null_members, sizeof(null_members), &out));
    CU_ASSERT_FALSE(
        group_record_read_metadata_value(huge_compact_count, sizeof(huge_compact_count), &out));
    CU_ASSERT_FALSE(
        group_record_read_metadata_value(null_subscription, sizeof(null_subscription), &out));
    CU_ASSERT_PTR_NULL(out.members);
    CU_ASSERT_FALSE(group_record_read_metadata_value(v5, sizeof(v5), &out));
    CU_ASSERT_TRUE(group_record_read_metadata_value(v0_empty, sizeof(v0_empty), &out));
    CU_ASSERT_EQUAL(out.nmembers, 0);
    CU_ASSERT_TRUE_FATAL(
        group_record_read_metadata_value(empty_subscription, sizeof(empty_subscription), &out));
    CU_ASSERT_EQUAL(out.nmembers, 1);
    CU_ASSERT_EQUAL(out.members[0].session_timeout_ms, 3);
    free(out.members);
    assert_exact_record(READ_METADATA_VALUE, empty_subscription, sizeof(empty_subscription));
}

void group_records_suite(void)
{
    CU_pSuite s = CU_add_suite("group_records", NULL, NULL);
    CU_add_test(s, "offset key v1 round trip", test_offset_key_v1_round_trip);
    CU_add_test(s, "offset key v0", test_offset_key_v0);
    CU_add_test(s, "metadata key v2 round trip", test_metadata_key_v2_round_trip);
    CU_add_test(s, "key refusals", test_key_refusals);
    CU_add_test(s, "offset value v3 round trip", test_offset_value_v3_round_trip);
    CU_add_test(s, "offset value v1 round trip", test_offset_value_v1_round_trip);
    CU_add_test(s, "offset value v0 and v2", test_offset_value_v0_v2);
    CU_add_test(s, "offset value v4 flexible", test_offset_value_v4_flexible);
    CU_add_test(s, "offset value refusals", test_offset_value_refusals);
    CU_add_test(s, "metadata value v3 round trip", test_metadata_value_v3_round_trip);
    CU_add_test(s, "metadata value v3 empty group", test_metadata_value_v3_empty_group);
    CU_add_test(s, "metadata value v0", test_metadata_value_v0);
    CU_add_test(s, "metadata value v1 and v2", test_metadata_value_v1_v2);
    CU_add_test(s, "metadata value v4 flexible", test_metadata_value_v4_flexible);
    CU_add_test(s, "metadata value refusals", test_metadata_value_refusals);
}
