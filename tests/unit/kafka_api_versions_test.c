/* test_kafka_api: the dispatch table and ApiVersions through the real
 * api_dispatch(): table invariants, unknown keys and unsupported versions
 * refused with a reason, header tag sections skipped for flexible versions,
 * ApiVersions v0-v3 bodies decoded field by field, the KIP-511 answer and
 * the client software name rule. ApiVersions needs no broker state, so the
 * context is empty. */
#include <CUnit/Basic.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "kafka_codec.h"
#include "kafka_errors.h"
#include "unit_run.h"

/* A request as net builds it: header v1 fields already read, `body`
 * positioned after ClientId (header tags, if any, still ahead). */
typedef struct test_request {
    kafka_request_t req;
    kafka_response_t resp;
    kwriter_t frame;
} test_request_t;

static api_context_t ctx;

static void request_init(test_request_t *t, int16_t key, int16_t version, bool header_tags,
                         const void *body, size_t len)
{
    memset(t, 0, sizeof(*t));
    kw_init(&t->frame, 64);
    if (header_tags)
        kw_tags_v(&t->frame, true);
    kw_raw(&t->frame, body, len);
    t->req.api_key = key;
    t->req.api_version = version;
    t->req.correlation_id = 1;
    t->req.frame = t->frame.buf;
    t->req.frame_len = t->frame.len;
    t->req.peer = "test";
    kr_init(&t->req.body, t->frame.buf, t->frame.len);
    kafka_response_init(&t->resp);
}

static void request_free(test_request_t *t)
{
    kafka_response_free(&t->resp);
    kw_free(&t->frame);
}

typedef struct versions {
    int16_t error;
    int32_t count;
    int16_t keys[KAFKA_API_KEY_COUNT], min[KAFKA_API_KEY_COUNT], max[KAFKA_API_KEY_COUNT];
    int32_t throttle;
} versions_t;

/* Decodes an ApiVersions body of `version`; false if malformed or bytes remain. */
static bool decode_versions(const kwriter_t *body, int version, versions_t *v)
{
    bool flexible = version >= 3;
    kreader_t r;
    kr_init(&r, body->buf, body->len);
    memset(v, 0, sizeof(*v));
    v->throttle = -1;
    kr_i16(&r, &v->error);
    if (!kr_array_v(&r, flexible, 6, &v->count) || v->count < 0 || v->count > KAFKA_API_KEY_COUNT)
        return false;
    for (int32_t i = 0; i < v->count; i++) {
        kr_i16(&r, &v->keys[i]);
        kr_i16(&r, &v->min[i]);
        kr_i16(&r, &v->max[i]);
        kr_tags_v(&r, flexible);
    }
    if (version >= 1)
        kr_i32(&r, &v->throttle);
    kr_tags_v(&r, flexible);
    return kr_ok(&r) && kr_remaining(&r) == 0;
}

static void test_table_invariants(void)
{
    int rows = 0;
    for (int16_t key = -1; key <= KAFKA_API_KEY_COUNT; key++) {
        const api_entry_t *e = api_lookup(key);
        if (key < 0 || key >= KAFKA_API_KEY_COUNT) {
            CU_ASSERT_PTR_NULL(e);
            continue;
        }
        if (e == NULL) {
            CU_ASSERT_FALSE(api_is_flexible(key, 0));
            continue;
        }
        rows++;
        CU_ASSERT_TRUE(e->min_version >= 0 && e->min_version <= e->max_version);
        CU_ASSERT_PTR_NOT_NULL(e->handler);
        CU_ASSERT_PTR_NOT_NULL(e->name);
        CU_ASSERT_TRUE(e->first_flexible == -1 || e->first_flexible >= 0);
        for (int16_t v = e->min_version; v <= e->max_version; v++)
            CU_ASSERT_EQUAL(api_is_flexible(key, v),
                            e->first_flexible >= 0 && v >= e->first_flexible);
    }
    CU_ASSERT_TRUE(rows >= 1);
    const api_entry_t *av = api_lookup(KAFKA_API_API_VERSIONS);
    CU_ASSERT_PTR_NOT_NULL_FATAL(av);
    CU_ASSERT_EQUAL(av->min_version, 0);
    CU_ASSERT_EQUAL(av->max_version, 3);
    CU_ASSERT_EQUAL(av->first_flexible, 3);
    /* Reference §8: Produce advertised from 0 (librdkafka's compression
     * check), Fetch covering 4 (its MsgVer2 feature). */
    const api_entry_t *produce = api_lookup(KAFKA_API_PRODUCE);
    const api_entry_t *fetch = api_lookup(KAFKA_API_FETCH);
    if (produce != NULL) {
        CU_ASSERT_EQUAL(produce->min_version, 0);
    }
    if (fetch != NULL) {
        CU_ASSERT_TRUE(fetch->min_version <= 4 && fetch->max_version >= 4);
    }
}

/* The consumer-group rows: the versions served, and the first flexible
 * version as Kafka's message definitions give it ("flexibleVersions"). */
static void test_group_rows(void)
{
    static const struct {
        int16_t key, min, max, first_flexible;
    } rows[] = {
        {KAFKA_API_OFFSET_COMMIT, 0, 8, 8},    {KAFKA_API_OFFSET_FETCH, 0, 8, 6},
        {KAFKA_API_FIND_COORDINATOR, 0, 4, 3}, {KAFKA_API_JOIN_GROUP, 0, 9, 6},
        {KAFKA_API_HEARTBEAT, 0, 4, 4},        {KAFKA_API_LEAVE_GROUP, 0, 5, 4},
        {KAFKA_API_SYNC_GROUP, 0, 5, 4},       {KAFKA_API_DESCRIBE_GROUPS, 0, 5, 5},
        {KAFKA_API_LIST_GROUPS, 0, 4, 3},      {KAFKA_API_DELETE_GROUPS, 0, 2, 2},
        {KAFKA_API_OFFSET_DELETE, 0, 0, -1},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const api_entry_t *e = api_lookup(rows[i].key);
        CU_ASSERT_PTR_NOT_NULL_FATAL(e);
        CU_ASSERT_EQUAL(e->min_version, rows[i].min);
        CU_ASSERT_EQUAL(e->max_version, rows[i].max);
        CU_ASSERT_EQUAL(e->first_flexible, rows[i].first_flexible);
    }
}

static void test_refusals_name_a_reason(void)
{
    test_request_t t;
    request_init(&t, 999, 0, false, NULL, 0);
    CU_ASSERT_EQUAL(api_dispatch(&ctx, &t.req, &t.resp), API_MALFORMED);
    CU_ASSERT_STRING_EQUAL(t.req.malformed_reason, "unknown API key");
    request_free(&t);

    request_init(&t, -1, 0, false, NULL, 0);
    CU_ASSERT_EQUAL(api_dispatch(&ctx, &t.req, &t.resp), API_MALFORMED);
    request_free(&t);

    /* A key in range that the table leaves empty (SaslHandshake). */
    request_init(&t, 17, 1, false, NULL, 0);
    CU_ASSERT_EQUAL(api_dispatch(&ctx, &t.req, &t.resp), API_MALFORMED);
    CU_ASSERT_STRING_EQUAL(t.req.malformed_reason, "unknown API key");
    request_free(&t);

    /* An unsupported version of any API but ApiVersions. */
    for (int16_t key = 0; key < KAFKA_API_KEY_COUNT; key++) {
        const api_entry_t *e = api_lookup(key);
        if (e == NULL || key == KAFKA_API_API_VERSIONS)
            continue;
        request_init(&t, key, (int16_t)(e->max_version + 1), false, NULL, 0);
        CU_ASSERT_EQUAL(api_dispatch(&ctx, &t.req, &t.resp), API_MALFORMED);
        CU_ASSERT_STRING_EQUAL(t.req.malformed_reason, "unsupported version");
        CU_ASSERT_EQUAL(t.resp.body.len, 0);
        request_free(&t);
    }
}

static void test_api_versions_v0_to_v2(void)
{
    for (int version = 0; version <= 2; version++) {
        test_request_t t;
        versions_t v;
        request_init(&t, KAFKA_API_API_VERSIONS, (int16_t)version, false, NULL, 0);
        CU_ASSERT_EQUAL(api_dispatch(&ctx, &t.req, &t.resp), API_RESPOND);
        CU_ASSERT_FALSE(t.req.flexible);
        CU_ASSERT_TRUE_FATAL(decode_versions(&t.resp.body, version, &v));
        CU_ASSERT_EQUAL(v.error, KAFKA_NONE);
        CU_ASSERT_EQUAL(v.throttle, version >= 1 ? 0 : -1);
        /* Exactly the table, in key order. */
        int32_t i = 0;
        for (int16_t key = 0; key < KAFKA_API_KEY_COUNT; key++) {
            const api_entry_t *e = api_lookup(key);
            if (e == NULL)
                continue;
            CU_ASSERT_TRUE_FATAL(i < v.count);
            CU_ASSERT_EQUAL(v.keys[i], key);
            CU_ASSERT_EQUAL(v.min[i], e->min_version);
            CU_ASSERT_EQUAL(v.max[i], e->max_version);
            i++;
        }
        CU_ASSERT_EQUAL(i, v.count);
        request_free(&t);
    }
}

static void api_versions_v3(const char *name, const char *version, bool header_tag,
                            int16_t expect_error)
{
    kwriter_t body;
    kw_init(&body, 64);
    kw_string_v(&body, true, name, -1);
    kw_string_v(&body, true, version, -1);
    kw_tags_v(&body, true);
    test_request_t t;
    versions_t v;
    if (header_tag) {
        /* A header carrying one unknown tagged field (tag 7, 2 bytes). */
        kwriter_t with_tag;
        kw_init(&with_tag, 64);
        kw_uvarint(&with_tag, 1);
        kw_uvarint(&with_tag, 7);
        kw_uvarint(&with_tag, 2);
        kw_i16(&with_tag, 0x4242);
        kw_raw(&with_tag, body.buf, body.len);
        request_init(&t, KAFKA_API_API_VERSIONS, 3, false, with_tag.buf, with_tag.len);
        kw_free(&with_tag);
    } else {
        request_init(&t, KAFKA_API_API_VERSIONS, 3, true, body.buf, body.len);
    }
    kw_free(&body);
    CU_ASSERT_EQUAL(api_dispatch(&ctx, &t.req, &t.resp), API_RESPOND);
    CU_ASSERT_TRUE(t.req.flexible);
    CU_ASSERT_TRUE_FATAL(decode_versions(&t.resp.body, 3, &v));
    CU_ASSERT_EQUAL(v.error, expect_error);
    CU_ASSERT_EQUAL(v.throttle, 0);
    if (expect_error == KAFKA_NONE) {
        CU_ASSERT_TRUE(v.count >= 1);
    } else {
        CU_ASSERT_EQUAL(v.count, 0);
    }
    request_free(&t);
}

static void test_api_versions_v3(void)
{
    api_versions_v3("librdkafka", "2.0.2", false, KAFKA_NONE);
    api_versions_v3("librdkafka", "2.0.2", true, KAFKA_NONE);
    api_versions_v3("a", "1", false, KAFKA_NONE);
    api_versions_v3("kafka-python", "2.0.2-dev.1", false, KAFKA_NONE);
    api_versions_v3("bad name", "1.0", false, KAFKA_INVALID_REQUEST);
    api_versions_v3("-x", "1.0", false, KAFKA_INVALID_REQUEST);
    api_versions_v3("x", "1.0.", false, KAFKA_INVALID_REQUEST);
    api_versions_v3("", "1.0", false, KAFKA_INVALID_REQUEST);
    api_versions_v3("x_y", "1", false, KAFKA_INVALID_REQUEST);

    /* A v3 body cut short is malformed. */
    test_request_t t;
    uint8_t cut[] = {0x00, 0x05, 'a', 'b'};
    request_init(&t, KAFKA_API_API_VERSIONS, 3, false, cut, sizeof(cut));
    CU_ASSERT_EQUAL(api_dispatch(&ctx, &t.req, &t.resp), API_MALFORMED);
    CU_ASSERT_PTR_NOT_NULL(t.req.malformed_reason);
    request_free(&t);
}

static void test_api_versions_kip511(void)
{
    /* v4 and beyond (and negative versions): not parsed, answered in v0
     * format with UNSUPPORTED_VERSION and only ApiVersions listed. */
    int16_t versions[] = {4, 100, INT16_MAX, -1};
    for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
        test_request_t t;
        versions_t v;
        uint8_t junk[] = {0xff, 0xff, 0xff};
        request_init(&t, KAFKA_API_API_VERSIONS, versions[i], true, junk, sizeof(junk));
        CU_ASSERT_EQUAL(api_dispatch(&ctx, &t.req, &t.resp), API_RESPOND);
        CU_ASSERT_FALSE(t.req.flexible); /* so the response header is v0 too */
        CU_ASSERT_TRUE_FATAL(decode_versions(&t.resp.body, 0, &v));
        CU_ASSERT_EQUAL(v.error, KAFKA_UNSUPPORTED_VERSION);
        CU_ASSERT_EQUAL_FATAL(v.count, 1);
        CU_ASSERT_EQUAL(v.keys[0], KAFKA_API_API_VERSIONS);
        CU_ASSERT_EQUAL(v.min[0], 0);
        CU_ASSERT_EQUAL(v.max[0], 3);
        request_free(&t);
    }
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return EXIT_FAILURE;
    CU_pSuite s = CU_add_suite("api_versions", NULL, NULL);
    CU_add_test(s, "table invariants", test_table_invariants);
    CU_add_test(s, "consumer-group rows", test_group_rows);
    CU_add_test(s, "refusals name a reason", test_refusals_name_a_reason);
    CU_add_test(s, "ApiVersions v0-v2", test_api_versions_v0_to_v2);
    CU_add_test(s, "ApiVersions v3", test_api_versions_v3);
    CU_add_test(s, "ApiVersions KIP-511", test_api_versions_kip511);
    return unit_run_registered();
}
