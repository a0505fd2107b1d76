/* CUnit tests for the Kafka wire codec: every reader primitive at its
 * boundaries, truncation, negative and huge lengths, varint overflow, and
 * writer -> reader round trips of classic and compact encodings. */
#include <CUnit/Basic.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kafka_codec.h"
#include "kafka_errors.h"

void kafka_codec_suite(void);

/* A reader over a fixed byte list. */
#define READER(r, ...)                                                                             \
    static const uint8_t r##_bytes[] = {__VA_ARGS__};                                              \
    kreader_t r;                                                                                   \
    kr_init(&r, r##_bytes, sizeof(r##_bytes))

static void test_fixed_width(void)
{
    READER(r, 0x7f, 0x80, 0x00, 0xff, 0xfe, 0x12, 0x34, 0x56, 0x78, 0x80, 0, 0, 0, 0, 0, 0, 1);
    int8_t a, b;
    int16_t c;
    int32_t d;
    int64_t e;
    CU_ASSERT_TRUE(kr_i8(&r, &a));
    CU_ASSERT_EQUAL(a, 127);
    CU_ASSERT_TRUE(kr_i8(&r, &b));
    CU_ASSERT_EQUAL(b, -128);
    CU_ASSERT_TRUE(kr_i16(&r, &c));
    CU_ASSERT_EQUAL(c, 0x00ff);
    CU_ASSERT_TRUE(kr_i32(&r, &d));
    CU_ASSERT_EQUAL(d, (int32_t)0xfe123456);
    CU_ASSERT_EQUAL(kr_remaining(&r), 9);
    /* 9 bytes left: a 78 then an int64 starting with 0x80. */
    CU_ASSERT_TRUE(kr_skip(&r, 1));
    CU_ASSERT_TRUE(kr_i64(&r, &e));
    CU_ASSERT_EQUAL(e, INT64_MIN + 1);
    CU_ASSERT_EQUAL(kr_remaining(&r), 0);
    CU_ASSERT_TRUE(kr_ok(&r));
    /* Reading at the exact end fails and sticks. */
    CU_ASSERT_FALSE(kr_i8(&r, &a));
    CU_ASSERT_FALSE(kr_ok(&r));
}

static void test_truncated_is_all_or_nothing(void)
{
    READER(r, 1, 2, 3);
    int32_t v = 42;
    int16_t s;
    CU_ASSERT_FALSE(kr_i32(&r, &v));
    CU_ASSERT_EQUAL(v, 42);
    CU_ASSERT_EQUAL(r.pos, 0);
    /* Sticky: a read that would fit also fails now. */
    CU_ASSERT_FALSE(kr_i16(&r, &s));
    CU_ASSERT_FALSE(kr_skip(&r, 0));
    CU_ASSERT_EQUAL(r.pos, 0);

    kreader_t e;
    kr_init(&e, NULL, 0);
    int64_t l;
    CU_ASSERT_FALSE(kr_i64(&e, &l));
    uint8_t uuid[16];
    READER(u, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    CU_ASSERT_FALSE(kr_uuid(&u, uuid));
    CU_ASSERT_EQUAL(u.pos, 0);
}

static void test_bool_and_uuid(void)
{
    READER(r, 0, 1, 2, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    bool b;
    uint8_t uuid[16];
    CU_ASSERT_TRUE(kr_bool(&r, &b) && !b);
    CU_ASSERT_TRUE(kr_bool(&r, &b) && b);
    CU_ASSERT_TRUE(kr_bool(&r, &b) && b); /* any non-zero is true */
    CU_ASSERT_TRUE(kr_uuid(&r, uuid));
    CU_ASSERT_EQUAL(uuid[0], 0);
    CU_ASSERT_EQUAL(uuid[15], 15);
    CU_ASSERT_EQUAL(kr_remaining(&r), 0);
}

static void test_uvarint_boundaries(void)
{
    uint32_t v;
    {
        READER(r, 0x00);
        CU_ASSERT_TRUE(kr_uvarint(&r, &v) && v == 0);
    }
    {
        READER(r, 0x7f);
        CU_ASSERT_TRUE(kr_uvarint(&r, &v) && v == 127);
    }
    {
        READER(r, 0x80, 0x01);
        CU_ASSERT_TRUE(kr_uvarint(&r, &v) && v == 128);
    }
    {
        READER(r, 0xff, 0xff, 0xff, 0xff, 0x0f);
        CU_ASSERT_TRUE(kr_uvarint(&r, &v) && v == UINT32_MAX);
    }
    {
        /* A fifth byte with bits beyond 32: overflow. */
        READER(r, 0xff, 0xff, 0xff, 0xff, 0x1f);
        CU_ASSERT_FALSE(kr_uvarint(&r, &v));
        CU_ASSERT_EQUAL(r.pos, 0);
    }
    {
        /* Six bytes: a continuation bit on the fifth byte. */
        READER(r, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00);
        CU_ASSERT_FALSE(kr_uvarint(&r, &v));
    }
    {
        /* Truncated: continuation bit on the last byte of the frame. */
        READER(r, 0x80, 0x80);
        CU_ASSERT_FALSE(kr_uvarint(&r, &v));
        CU_ASSERT_EQUAL(r.pos, 0);
    }
}

static void test_varint_zigzag(void)
{
    int32_t v;
    int64_t l;
    {
        READER(r, 0x00, 0x01, 0x02, 0x03, 0xfe, 0xff, 0xff, 0xff, 0x0f, 0xff, 0xff, 0xff, 0xff,
               0x0f);
        CU_ASSERT_TRUE(kr_varint(&r, &v) && v == 0);
        CU_ASSERT_TRUE(kr_varint(&r, &v) && v == -1);
        CU_ASSERT_TRUE(kr_varint(&r, &v) && v == 1);
        CU_ASSERT_TRUE(kr_varint(&r, &v) && v == -2);
        CU_ASSERT_TRUE(kr_varint(&r, &v) && v == INT32_MAX);
        CU_ASSERT_TRUE(kr_varint(&r, &v) && v == INT32_MIN);
    }
    {
        READER(r, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01);
        CU_ASSERT_TRUE(kr_varlong(&r, &l) && l == INT64_MIN);
    }
    {
        /* Ten bytes whose last carries more than the 64th bit. */
        READER(r, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02);
        CU_ASSERT_FALSE(kr_varlong(&r, &l));
    }
    {
        READER(r, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00);
        CU_ASSERT_FALSE(kr_varlong(&r, &l));
    }
}

static void test_classic_strings(void)
{
    kslice_t s;
    {
        READER(r, 0x00, 0x03, 'a', 'b', 'c', 0x00, 0x00, 0xff, 0xff);
        CU_ASSERT_TRUE(kr_string_v(&r, false, &s));
        CU_ASSERT_TRUE(kslice_eq(s, "abc"));
        CU_ASSERT_TRUE(kr_string_v(&r, false, &s));
        CU_ASSERT_PTR_NOT_NULL(s.ptr);
        CU_ASSERT_EQUAL(s.len, 0);
        CU_ASSERT_TRUE(kslice_eq(s, ""));
        /* Null is refused by the non-nullable form, accepted by the other. */
        size_t before = r.pos;
        CU_ASSERT_FALSE(kr_string_v(&r, false, &s));
        CU_ASSERT_EQUAL(r.pos, before);
    }
    {
        READER(r, 0xff, 0xff);
        CU_ASSERT_TRUE(kr_nullable_string_v(&r, false, &s));
        CU_ASSERT_PTR_NULL(s.ptr);
        CU_ASSERT_EQUAL(s.len, -1);
        CU_ASSERT_FALSE(kslice_eq(s, ""));
        CU_ASSERT_PTR_NULL(kslice_strdup(s));
    }
    {
        /* -2 is never valid. */
        READER(r, 0xff, 0xfe, 'x');
        CU_ASSERT_FALSE(kr_nullable_string_v(&r, false, &s));
    }
    {
        /* Length one past the end: nothing consumed. */
        READER(r, 0x00, 0x04, 'a', 'b', 'c');
        CU_ASSERT_FALSE(kr_string_v(&r, false, &s));
        CU_ASSERT_EQUAL(r.pos, 0);
    }
    {
        /* Huge length. */
        READER(r, 0x7f, 0xff, 'a');
        CU_ASSERT_FALSE(kr_string_v(&r, false, &s));
    }
    {
        READER(r, 0x00, 0x02, 'h', 'i');
        CU_ASSERT_TRUE(kr_string_v(&r, false, &s));
        char *c = kslice_strdup(s);
        CU_ASSERT_STRING_EQUAL(c, "hi");
        free(c);
    }
}

static void test_compact_strings_and_bytes(void)
{
    kslice_t s;
    {
        /* compact: 0 null, 1 empty, 4 = three bytes */
        READER(r, 0x04, 'a', 'b', 'c', 0x01, 0x00);
        CU_ASSERT_TRUE(kr_string_v(&r, true, &s) && kslice_eq(s, "abc"));
        CU_ASSERT_TRUE(kr_string_v(&r, true, &s) && s.len == 0 && s.ptr != NULL);
        CU_ASSERT_FALSE(kr_string_v(&r, true, &s));
    }
    {
        READER(r, 0x00);
        CU_ASSERT_TRUE(kr_nullable_string_v(&r, true, &s) && s.ptr == NULL);
    }
    {
        /* compact length UINT32_MAX-1 claims ~4 GiB: refused, not wrapped. */
        READER(r, 0xff, 0xff, 0xff, 0xff, 0x0f, 'a');
        CU_ASSERT_FALSE(kr_bytes_v(&r, true, &s));
        CU_ASSERT_EQUAL(r.pos, 0);
    }
    {
        READER(r, 0x00, 0x00, 0x00, 0x02, 0xde, 0xad, 0xff, 0xff, 0xff, 0xff);
        CU_ASSERT_TRUE(kr_bytes_v(&r, false, &s) && s.len == 2 && s.ptr[0] == 0xde);
        CU_ASSERT_TRUE(kr_bytes_v(&r, false, &s) && s.ptr == NULL && s.len == -1);
    }
    {
        /* Negative int32 byte length other than -1. */
        READER(r, 0x80, 0x00, 0x00, 0x00);
        CU_ASSERT_FALSE(kr_bytes_v(&r, false, &s));
    }
    {
        READER(r, 0x00, 0x00, 0x00, 0x05, 1, 2, 3, 4);
        CU_ASSERT_FALSE(kr_bytes_v(&r, false, &s));
        CU_ASSERT_EQUAL(r.pos, 0);
    }
}

static void test_arrays(void)
{
    int32_t n;
    {
        READER(r, 0x00, 0x00, 0x00, 0x02, 1, 2, 3, 4, 5, 6, 7, 8);
        CU_ASSERT_TRUE(kr_array_v(&r, false, 4, &n) && n == 2);
    }
    {
        /* Two elements of at least 5 bytes cannot fit in 8. */
        READER(r, 0x00, 0x00, 0x00, 0x02, 1, 2, 3, 4, 5, 6, 7, 8);
        CU_ASSERT_FALSE(kr_array_v(&r, false, 5, &n));
        CU_ASSERT_EQUAL(r.pos, 0);
    }
    {
        READER(r, 0xff, 0xff, 0xff, 0xff);
        CU_ASSERT_TRUE(kr_array_v(&r, false, 1, &n) && n == -1);
    }
    {
        READER(r, 0xff, 0xff, 0xff, 0xfe);
        CU_ASSERT_FALSE(kr_array_v(&r, false, 1, &n));
    }
    {
        /* A count of 2^31-1 with minimum size 1 in a tiny frame. */
        READER(r, 0x7f, 0xff, 0xff, 0xff, 0);
        CU_ASSERT_FALSE(kr_array_v(&r, false, 1, &n));
    }
    {
        /* compact: 0 null, 1 empty, 3 = two elements */
        READER(r, 0x00, 0x01, 0x03, 9, 9);
        CU_ASSERT_TRUE(kr_array_v(&r, true, 1, &n) && n == -1);
        CU_ASSERT_TRUE(kr_array_v(&r, true, 1, &n) && n == 0);
        CU_ASSERT_TRUE(kr_array_v(&r, true, 1, &n) && n == 2);
    }
    {
        /* compact count UINT32_MAX: larger than INT32_MAX. */
        READER(r, 0xff, 0xff, 0xff, 0xff, 0x0f);
        CU_ASSERT_FALSE(kr_array_v(&r, true, 1, &n));
    }
    {
        /* min_element_size * count overflowing size_t must not wrap. */
        READER(r, 0x7f, 0xff, 0xff, 0xff, 1, 2, 3);
        CU_ASSERT_FALSE(kr_array_v(&r, false, SIZE_MAX / 2, &n));
    }
}

static void test_tagged_fields(void)
{
    {
        /* Non-flexible: no-op. */
        READER(r, 0x05);
        CU_ASSERT_TRUE(kr_tags_v(&r, false));
        CU_ASSERT_EQUAL(r.pos, 0);
    }
    {
        READER(r, 0x00, 0x42);
        CU_ASSERT_TRUE(kr_tags_v(&r, true));
        CU_ASSERT_EQUAL(r.pos, 1);
    }
    {
        /* Two tags: tag 0 size 2, tag 5 size 0. */
        READER(r, 0x02, 0x00, 0x02, 0xaa, 0xbb, 0x05, 0x00, 0x77);
        CU_ASSERT_TRUE(kr_tags_v(&r, true));
        CU_ASSERT_EQUAL(r.pos, 7);
    }
    {
        /* A tag whose size runs past the frame. */
        READER(r, 0x01, 0x00, 0x05, 0xaa);
        CU_ASSERT_FALSE(kr_tags_v(&r, true));
        CU_ASSERT_EQUAL(r.pos, 0);
    }
    {
        /* A tag count far beyond what the bytes can hold. */
        READER(r, 0xff, 0xff, 0x03, 0x00, 0x00);
        CU_ASSERT_FALSE(kr_tags_v(&r, true));
    }
    {
        /* Tags out of order (5 then 1). */
        READER(r, 0x02, 0x05, 0x00, 0x01, 0x00);
        CU_ASSERT_FALSE(kr_tags_v(&r, true));
    }
    {
        /* Duplicate tags. */
        READER(r, 0x02, 0x01, 0x00, 0x01, 0x00);
        CU_ASSERT_FALSE(kr_tags_v(&r, true));
    }
    {
        /* A tag size with a varint overflow. */
        READER(r, 0x01, 0x00, 0xff, 0xff, 0xff, 0xff, 0x7f);
        CU_ASSERT_FALSE(kr_tags_v(&r, true));
    }
}

static void test_request_header(void)
{
    {
        READER(r, 0x00, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x07, 0x00, 0x02, 'k', 'c', 0x00, 0xaa);
        kafka_request_header_t h;
        CU_ASSERT_TRUE(kafka_request_header_read(&r, &h));
        CU_ASSERT_EQUAL(h.api_key, 18);
        CU_ASSERT_EQUAL(h.api_version, 3);
        CU_ASSERT_EQUAL(h.correlation_id, 7);
        CU_ASSERT_TRUE(kslice_eq(h.client_id, "kc"));
        /* v2 header: tags after the int16 client id. */
        CU_ASSERT_TRUE(kr_tags_v(&r, true));
        CU_ASSERT_EQUAL(kr_remaining(&r), 1);
    }
    {
        READER(r, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0xff, 0xff);
        kafka_request_header_t h;
        CU_ASSERT_TRUE(kafka_request_header_read(&r, &h));
        CU_ASSERT_PTR_NULL(h.client_id.ptr);
    }
    {
        /* Client id longer than the frame. */
        READER(r, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x09, 'a');
        kafka_request_header_t h;
        CU_ASSERT_FALSE(kafka_request_header_read(&r, &h));
    }
    {
        READER(r, 0x00, 0x03, 0x00);
        kafka_request_header_t h;
        CU_ASSERT_FALSE(kafka_request_header_read(&r, &h));
    }
}

static void test_writer_round_trip(void)
{
    for (int flexible = 0; flexible <= 1; flexible++) {
        kwriter_t w;
        kw_init(&w, 1); /* force growth */
        kw_i8(&w, -5);
        kw_i16(&w, -300);
        kw_i32(&w, INT32_MIN);
        kw_i64(&w, INT64_MAX);
        kw_bool(&w, true);
        uint8_t id[16];
        for (int i = 0; i < 16; i++)
            id[i] = (uint8_t)(i * 3);
        kw_uuid(&w, id);
        kw_uvarint(&w, UINT32_MAX);
        kw_varint(&w, INT32_MIN);
        kw_varint(&w, -1);
        kw_varlong(&w, INT64_MAX);
        kw_varlong(&w, INT64_MIN);
        kw_string_v(&w, flexible, "hello", -1);
        kw_string_v(&w, flexible, "xyz", 2);
        kw_string_v(&w, flexible, NULL, 0);
        kw_bytes_v(&w, flexible, "\0\1\2", 3);
        kw_bytes_v(&w, flexible, NULL, -1);
        kw_array_v(&w, flexible, 1);
        kw_i32(&w, 99);
        kw_array_v(&w, flexible, -1);
        kw_array_v(&w, flexible, 0);
        kw_tags_v(&w, flexible);
        size_t at = kw_reserve_i32(&w);
        kw_patch_i32(&w, at, 123456);

        kreader_t r;
        kr_init(&r, w.buf, w.len);
        int8_t a;
        int16_t b;
        int32_t c, n;
        int64_t d;
        bool e;
        uint8_t u[16];
        uint32_t uv;
        kslice_t s;
        CU_ASSERT_TRUE(kr_i8(&r, &a) && a == -5);
        CU_ASSERT_TRUE(kr_i16(&r, &b) && b == -300);
        CU_ASSERT_TRUE(kr_i32(&r, &c) && c == INT32_MIN);
        CU_ASSERT_TRUE(kr_i64(&r, &d) && d == INT64_MAX);
        CU_ASSERT_TRUE(kr_bool(&r, &e) && e);
        CU_ASSERT_TRUE(kr_uuid(&r, u) && memcmp(u, id, 16) == 0);
        CU_ASSERT_TRUE(kr_uvarint(&r, &uv) && uv == UINT32_MAX);
        CU_ASSERT_TRUE(kr_varint(&r, &c) && c == INT32_MIN);
        CU_ASSERT_TRUE(kr_varint(&r, &c) && c == -1);
        CU_ASSERT_TRUE(kr_varlong(&r, &d) && d == INT64_MAX);
        CU_ASSERT_TRUE(kr_varlong(&r, &d) && d == INT64_MIN);
        CU_ASSERT_TRUE(kr_string_v(&r, flexible, &s) && kslice_eq(s, "hello"));
        CU_ASSERT_TRUE(kr_string_v(&r, flexible, &s) && kslice_eq(s, "xy"));
        CU_ASSERT_TRUE(kr_nullable_string_v(&r, flexible, &s) && s.ptr == NULL);
        CU_ASSERT_TRUE(kr_bytes_v(&r, flexible, &s) && s.len == 3 && s.ptr[2] == 2);
        CU_ASSERT_TRUE(kr_bytes_v(&r, flexible, &s) && s.ptr == NULL);
        CU_ASSERT_TRUE(kr_array_v(&r, flexible, 4, &n) && n == 1);
        CU_ASSERT_TRUE(kr_i32(&r, &c) && c == 99);
        CU_ASSERT_TRUE(kr_array_v(&r, flexible, 1, &n) && n == -1);
        CU_ASSERT_TRUE(kr_array_v(&r, flexible, 1, &n) && n == 0);
        CU_ASSERT_TRUE(kr_tags_v(&r, flexible));
        CU_ASSERT_TRUE(kr_i32(&r, &c) && c == 123456);
        CU_ASSERT_EQUAL(kr_remaining(&r), 0);
        CU_ASSERT_TRUE(kr_ok(&r));
        kw_reset(&w);
        CU_ASSERT_EQUAL(w.len, 0);
        kw_free(&w);
    }
}

/* Every varint and varlong value round-trips over a sweep of bit widths. */
static void test_varint_sweep(void)
{
    kwriter_t w;
    kw_init(&w, 16);
    for (int bit = 0; bit < 64; bit++) {
        uint64_t p = UINT64_C(1) << bit;
        int64_t vals[4] = {(int64_t)p, (int64_t)(0 - p), (int64_t)(p - 1), (int64_t)(0 - (p - 1))};
        for (int i = 0; i < 4; i++) {
            kw_reset(&w);
            kw_varlong(&w, vals[i]);
            CU_ASSERT_TRUE(w.len <= 10);
            kreader_t r;
            int64_t got;
            kr_init(&r, w.buf, w.len);
            CU_ASSERT_TRUE(kr_varlong(&r, &got) && got == vals[i] && kr_remaining(&r) == 0);
            if (vals[i] >= INT32_MIN && vals[i] <= INT32_MAX) {
                kw_reset(&w);
                kw_varint(&w, (int32_t)vals[i]);
                CU_ASSERT_TRUE(w.len <= 5);
                int32_t g32;
                kr_init(&r, w.buf, w.len);
                CU_ASSERT_TRUE(kr_varint(&r, &g32) && g32 == vals[i] && kr_remaining(&r) == 0);
                /* Every strict prefix is a truncation. */
                for (size_t cut = 0; cut < w.len; cut++) {
                    kr_init(&r, w.buf, cut);
                    CU_ASSERT_FALSE(kr_varint(&r, &g32));
                }
            }
        }
    }
    kw_free(&w);
}

static void test_response_slices(void)
{
    kafka_response_t resp;
    kafka_response_init(&resp);
    kw_i32(&resp.body, 1);
    int fd = open("/dev/null", O_RDONLY);
    CU_ASSERT_FATAL(fd >= 0);
    kafka_response_add_file(&resp, fd, 100, 4096);
    kw_i16(&resp.body, 2);
    int fd2 = dup(fd);
    kafka_response_add_file(&resp, fd2, 0, 10);
    CU_ASSERT_EQUAL(resp.nslices, 2);
    CU_ASSERT_EQUAL(resp.slices[0].at, 4);
    CU_ASSERT_EQUAL(resp.slices[1].at, 6);
    CU_ASSERT_EQUAL(kafka_response_size(&resp), 6 + 4096 + 10);
    kafka_response_free(&resp);
    /* The response closed both fds. */
    CU_ASSERT_EQUAL(fcntl(fd, F_GETFD), -1);
    CU_ASSERT_EQUAL(fcntl(fd2, F_GETFD), -1);
}

static void test_error_names(void)
{
    CU_ASSERT_STRING_EQUAL(kafka_error_name(KAFKA_NONE), "NONE");
    CU_ASSERT_STRING_EQUAL(kafka_error_name(6), "NOT_LEADER_OR_FOLLOWER");
    CU_ASSERT_STRING_EQUAL(kafka_error_name(35), "UNSUPPORTED_VERSION");
    CU_ASSERT_STRING_EQUAL(kafka_error_name(56), "KAFKA_STORAGE_ERROR");
    CU_ASSERT_STRING_EQUAL(kafka_error_name(-1), "UNKNOWN_SERVER_ERROR");
    CU_ASSERT_STRING_EQUAL(kafka_error_name(12345), "UNKNOWN");
}

void kafka_codec_suite(void)
{
    CU_pSuite s = CU_add_suite("kafka_codec", NULL, NULL);
    CU_add_test(s, "fixed width", test_fixed_width);
    CU_add_test(s, "truncated all-or-nothing", test_truncated_is_all_or_nothing);
    CU_add_test(s, "bool and uuid", test_bool_and_uuid);
    CU_add_test(s, "uvarint boundaries", test_uvarint_boundaries);
    CU_add_test(s, "varint zigzag", test_varint_zigzag);
    CU_add_test(s, "classic strings", test_classic_strings);
    CU_add_test(s, "compact strings and bytes", test_compact_strings_and_bytes);
    CU_add_test(s, "arrays", test_arrays);
    CU_add_test(s, "tagged fields", test_tagged_fields);
    CU_add_test(s, "request header", test_request_header);
    CU_add_test(s, "writer round trip", test_writer_round_trip);
    CU_add_test(s, "varint sweep", test_varint_sweep);
    CU_add_test(s, "response slices", test_response_slices);
    CU_add_test(s, "error names", test_error_names);
}
