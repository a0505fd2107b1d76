/* CUnit suite for the CLI's pure parts: the JSON writer and table, the
 * consume -f record format, the raw Metadata v7 decoder (with every
 * truncation and bad length), and the argument value parsers, group ids and
 * group seek targets among them. The commands themselves run against real
 * brokers in tests/integration/test_cli.py and test_cli_group.py. */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_output.h"

/* ---- helpers ---- */

struct capture {
    FILE *f;
    char *buf;
    size_t len;
};

static void capture_open(struct capture *c)
{
    c->buf = NULL;
    c->len = 0;
    c->f = open_memstream(&c->buf, &c->len);
    CU_ASSERT_FATAL(c->f != NULL);
}

/* Closes the stream; returns its text (owned by c until capture_free). */
static const char *capture_text(struct capture *c)
{
    fclose(c->f);
    c->f = NULL;
    return c->buf;
}

static void capture_free(struct capture *c)
{
    free(c->buf);
}

/* ---- JSON ---- */

static void test_json_structure(void)
{
    struct capture c;
    capture_open(&c);
    struct json_writer w;
    json_init(&w, c.f);
    json_begin_object(&w);
    json_key(&w, "a");
    json_int(&w, -5);
    json_key(&w, "list");
    json_begin_array(&w);
    json_bool(&w, true);
    json_null(&w);
    json_string(&w, NULL);
    json_begin_object(&w);
    json_end_object(&w);
    json_begin_array(&w);
    json_end_array(&w);
    json_end_array(&w);
    json_key(&w, "s");
    json_string(&w, "x");
    json_end_object(&w);
    json_finish(&w);
    CU_ASSERT_STRING_EQUAL(capture_text(&c),
                           "{\"a\":-5,\"list\":[true,null,null,{},[]],\"s\":\"x\"}\n");
    capture_free(&c);
}

static void test_json_escapes(void)
{
    static const struct {
        const char *in;
        size_t len;
        const char *out;
    } cases[] = {
        {"plain", 5, "plain"},
        {"q\"b\\", 4, "q\\\"b\\\\"},
        {"\n\t\r\x01\x1f\x7f", 6, "\\n\\t\\r\\u0001\\u001f\\u007f"},
        {"\0", 1, "\\u0000"},
        {"\xc3\xa9", 2, "\xc3\xa9"},                             /* é passes through */
        {"\xe2\x82\xac", 3, "\xe2\x82\xac"},                     /* € */
        {"\xf0\x9f\x98\x80", 4, "\xf0\x9f\x98\x80"},             /* 4-byte sequence */
        {"\xff", 1, "\\u00ff"},                                  /* never valid */
        {"a\xc3", 2, "a\\u00c3"},                                /* truncated at the end */
        {"\xc3(", 2, "\\u00c3("},                                /* bad continuation */
        {"\xc0\x80", 2, "\\u00c0\\u0080"},                       /* overlong NUL */
        {"\xed\xa0\x80", 3, "\\u00ed\\u00a0\\u0080"},            /* surrogate */
        {"\xf4\x90\x80\x80", 4, "\\u00f4\\u0090\\u0080\\u0080"}, /* > U+10FFFF */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct capture c;
        capture_open(&c);
        json_write_escaped(c.f, cases[i].in, cases[i].len);
        const char *got = capture_text(&c);
        CU_ASSERT_STRING_EQUAL(got, cases[i].out);
        if (strcmp(got, cases[i].out) != 0)
            fprintf(stderr, "case %zu: got '%s'\n", i, got);
        capture_free(&c);
    }
}

/* ---- table ---- */

static void test_table_alignment(void)
{
    static const char *const headers[] = {"ID", "NAME", "X"};
    struct cli_table *t = table_new(3, headers);
    table_row(t);
    table_cell(t, "%d", 1);
    table_cell(t, "%s", "longer-name");
    table_cell(t, "a");
    table_row(t);
    table_cell(t, "%d", 100);
    table_cell(t, "n");
    table_cell(t, "b");
    struct capture c;
    capture_open(&c);
    table_print(t, c.f);
    CU_ASSERT_STRING_EQUAL(capture_text(&c), "ID   NAME         X\n"
                                             "1    longer-name  a\n"
                                             "100  n            b\n");
    capture_free(&c);
    table_free(t);

    /* No rows: the header alone. */
    t = table_new(3, headers);
    capture_open(&c);
    table_print(t, c.f);
    CU_ASSERT_STRING_EQUAL(capture_text(&c), "ID  NAME  X\n");
    capture_free(&c);
    table_free(t);
}

/* ---- record format ---- */

static void test_record_format(void)
{
    struct record_format f;
    char err[128];
    CU_ASSERT_FATAL(
        record_format_compile("%t %p/%o %K %k=%s|%S %%\\n\\t\\\\", &f, err, sizeof(err)));
    char key[] = "key", value[] = "value\nwith newline";
    rd_kafka_message_t m = {
        .partition = 3,
        .offset = 42,
        .key = key,
        .key_len = 3,
        .payload = value,
        .len = strlen(value),
    };
    struct capture c;
    capture_open(&c);
    record_print_text(c.f, &f, &m, "topic");
    CU_ASSERT_STRING_EQUAL(capture_text(&c), "topic 3/42 3 key=value\nwith newline|18 %\n\t\\");
    capture_free(&c);

    /* A record without key or value. */
    rd_kafka_message_t empty = {.partition = 0, .offset = 0};
    capture_open(&c);
    record_print_text(c.f, &f, &empty, "t");
    CU_ASSERT_STRING_EQUAL(capture_text(&c), "t 0/0 -1 =|-1 %\n\t\\");
    capture_free(&c);
    record_format_free(&f);
    CU_ASSERT_EQUAL(f.count, 0);
}

static void test_record_format_errors(void)
{
    struct record_format f;
    char err[128];
    CU_ASSERT_FALSE(record_format_compile("%q", &f, err, sizeof(err)));
    CU_ASSERT_STRING_EQUAL(err, "unknown placeholder %q");
    CU_ASSERT_EQUAL(f.count, 0);
    CU_ASSERT_FALSE(record_format_compile("ab\\x", &f, err, sizeof(err)));
    CU_ASSERT_STRING_EQUAL(err, "unknown escape \\x");
    CU_ASSERT_FALSE(record_format_compile("abc%", &f, err, sizeof(err)));
    CU_ASSERT_STRING_EQUAL(err, "lone % at the end");

    char many[3 * MAX_FORMAT_PIECES + 1];
    size_t n = 0;
    for (int i = 0; i < MAX_FORMAT_PIECES; i++) {
        many[n++] = 'x';
        many[n++] = '%';
        many[n++] = 's';
    }
    many[n] = '\0';
    CU_ASSERT_FALSE(record_format_compile(many, &f, err, sizeof(err)));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "more than"));
    CU_ASSERT_EQUAL(f.count, 0);

    /* Exactly the limit is fine; a trailing lone backslash is literal. */
    CU_ASSERT_TRUE(record_format_compile(many + 3 * (MAX_FORMAT_PIECES / 2), &f, err, sizeof(err)));
    CU_ASSERT_EQUAL(f.count, MAX_FORMAT_PIECES);
    record_format_free(&f);
    CU_ASSERT_TRUE(record_format_compile("a\\", &f, err, sizeof(err)));
    CU_ASSERT_EQUAL(f.count, 1);
    CU_ASSERT_EQUAL(f.pieces[0].len, 2);
    record_format_free(&f);
}

/* ---- raw Metadata v1 decoder ---- */

struct frame {
    uint8_t b[512];
    size_t len;
};

static void put_i32(struct frame *f, int32_t v)
{
    uint32_t u = (uint32_t)v;
    f->b[f->len++] = (uint8_t)(u >> 24);
    f->b[f->len++] = (uint8_t)(u >> 16);
    f->b[f->len++] = (uint8_t)(u >> 8);
    f->b[f->len++] = (uint8_t)u;
}

static void put_i16(struct frame *f, int16_t v)
{
    uint16_t u = (uint16_t)v;
    f->b[f->len++] = (uint8_t)(u >> 8);
    f->b[f->len++] = (uint8_t)u;
}

static void put_str(struct frame *f, const char *s)
{
    if (s == NULL) {
        put_i16(f, -1);
        return;
    }
    put_i16(f, (int16_t)strlen(s));
    memcpy(f->b + f->len, s, strlen(s));
    f->len += strlen(s);
}

#define CID 77

/* Frame head up to the broker count: correlation id and throttle time. */
static void head(struct frame *f, int32_t nbrokers)
{
    f->len = 0;
    put_i32(f, CID);
    put_i32(f, 0);
    put_i32(f, nbrokers);
}

static void broker(struct frame *f, int32_t id, const char *rack)
{
    put_i32(f, id);
    put_str(f, "host");
    put_i32(f, 9092);
    put_str(f, rack);
}

static void partition(struct frame *f, int32_t id, int32_t leader, int32_t epoch, int32_t noffline)
{
    put_i16(f, 0);
    put_i32(f, id);
    put_i32(f, leader);
    put_i32(f, epoch);
    put_i32(f, 2); /* replicas */
    put_i32(f, 1);
    put_i32(f, 2);
    put_i32(f, 1); /* isr */
    put_i32(f, leader);
    put_i32(f, noffline);
    for (int32_t i = 0; i < noffline; i++)
        put_i32(f, 2);
}

/* A valid answer: brokers 1 (rack r1) and 2 (no rack), cluster "cid",
 * controller 2, topic "t" with partitions 1 (leader 1, epoch 5) and 0
 * (leader 2, epoch 7, broker 2 offline). */
static void valid_frame(struct frame *f)
{
    head(f, 2);
    broker(f, 1, "r1");
    broker(f, 2, NULL);
    put_str(f, "cid");
    put_i32(f, 2);
    put_i32(f, 1); /* topics */
    put_i16(f, 0);
    put_str(f, "t");
    f->b[f->len++] = 0; /* is_internal */
    put_i32(f, 2);
    partition(f, 1, 1, 5, 0);
    partition(f, 0, 2, 7, 1);
}

static void test_metadata_valid(void)
{
    struct frame f;
    valid_frame(&f);
    struct cli_raw_metadata md;
    CU_ASSERT_FATAL(cli_decode_metadata_v7(f.b, f.len, CID, &md));
    CU_ASSERT_EQUAL(md.nbrokers, 2);
    CU_ASSERT_EQUAL(md.controller_id, 2);
    CU_ASSERT_STRING_EQUAL(md.cluster_id, "cid");
    CU_ASSERT_EQUAL(md.brokers[0].id, 1);
    CU_ASSERT_STRING_EQUAL(md.brokers[0].rack, "r1");
    CU_ASSERT_EQUAL(md.brokers[1].id, 2);
    CU_ASSERT_PTR_NULL(md.brokers[1].rack);
    CU_ASSERT_TRUE(md.has_topic);
    CU_ASSERT_EQUAL(md.topic_error, 0);
    CU_ASSERT_EQUAL_FATAL(md.npartitions, 2);
    CU_ASSERT_EQUAL(md.partitions[0].id, 1);
    CU_ASSERT_EQUAL(md.partitions[0].leader_epoch, 5);
    CU_ASSERT_EQUAL(md.partitions[0].noffline, 0);
    CU_ASSERT_PTR_NULL(md.partitions[0].offline);
    CU_ASSERT_EQUAL(md.partitions[1].id, 0);
    CU_ASSERT_EQUAL(md.partitions[1].leader, 2);
    CU_ASSERT_EQUAL(md.partitions[1].leader_epoch, 7);
    CU_ASSERT_EQUAL_FATAL(md.partitions[1].noffline, 1);
    CU_ASSERT_EQUAL(md.partitions[1].offline[0], 2);
    cli_raw_metadata_free(&md);
    CU_ASSERT_EQUAL(md.nbrokers, 0);
    CU_ASSERT_PTR_NULL(md.brokers);
    CU_ASSERT_PTR_NULL(md.partitions);

    /* No topic asked, none answered. */
    head(&f, 1);
    broker(&f, 3, NULL);
    put_str(&f, NULL);
    put_i32(&f, -1);
    put_i32(&f, 0);
    CU_ASSERT_FATAL(cli_decode_metadata_v7(f.b, f.len, CID, &md));
    CU_ASSERT_FALSE(md.has_topic);
    CU_ASSERT_PTR_NULL(md.cluster_id);
    CU_ASSERT_EQUAL(md.controller_id, -1);
    cli_raw_metadata_free(&md);
}

static void test_metadata_every_truncation(void)
{
    struct frame f;
    valid_frame(&f);
    for (size_t len = 0; len < f.len; len++) {
        /* A heap copy of exactly len bytes, so ASan sees any over-read. */
        uint8_t *copy = malloc(len ? len : 1);
        memcpy(copy, f.b, len);
        struct cli_raw_metadata md;
        CU_ASSERT_FALSE(cli_decode_metadata_v7(copy, len, CID, &md));
        CU_ASSERT_EQUAL(md.nbrokers, 0);
        CU_ASSERT_PTR_NULL(md.brokers);
        CU_ASSERT_PTR_NULL(md.partitions);
        CU_ASSERT_PTR_NULL(md.cluster_id);
        free(copy);
    }
}

/* An ElectLeaders v1 answer: topic "t" with partition 0 elected and
 * partition 2 PREFERRED_LEADER_NOT_AVAILABLE (80) with a message. */
static void elect_frame(struct frame *f)
{
    f->len = 0;
    put_i32(f, CID);
    put_i32(f, 0); /* throttle */
    put_i16(f, 0); /* top-level error */
    put_i32(f, 1);
    put_str(f, "t");
    put_i32(f, 2);
    put_i32(f, 0);
    put_i16(f, 0);
    put_str(f, NULL);
    put_i32(f, 2);
    put_i16(f, 80);
    put_str(f, "down");
}

static void test_elect_leaders_decode(void)
{
    struct frame f;
    elect_frame(&f);
    int16_t top = -1;
    struct cli_election_result *res = NULL;
    int32_t n = -1;
    CU_ASSERT_FATAL(cli_decode_elect_leaders_v1(f.b, f.len, CID, &top, &res, &n));
    CU_ASSERT_EQUAL(top, 0);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_STRING_EQUAL(res[0].topic, "t");
    CU_ASSERT_EQUAL(res[0].partition, 0);
    CU_ASSERT_EQUAL(res[0].error, 0);
    CU_ASSERT_PTR_NULL(res[0].message);
    CU_ASSERT_EQUAL(res[1].partition, 2);
    CU_ASSERT_EQUAL(res[1].error, 80);
    CU_ASSERT_STRING_EQUAL(res[1].message, "down");
    cli_election_results_free(res, n);
    CU_ASSERT_FALSE(cli_decode_elect_leaders_v1(f.b, f.len, CID + 1, &top, &res, &n));
    /* every truncation is refused, with nothing left allocated (ASan) */
    for (size_t len = 0; len < f.len; len++) {
        uint8_t *copy = malloc(len ? len : 1);
        memcpy(copy, f.b, len);
        CU_ASSERT_FALSE(cli_decode_elect_leaders_v1(copy, len, CID, &top, &res, &n));
        CU_ASSERT_PTR_NULL(res);
        free(copy);
    }
    /* a partition count beyond the frame, and trailing bytes */
    elect_frame(&f);
    f.len -= 4 + 8 + 12; /* back before the partition count */
    put_i32(&f, 1000000);
    CU_ASSERT_FALSE(cli_decode_elect_leaders_v1(f.b, f.len, CID, &top, &res, &n));
    elect_frame(&f);
    put_i16(&f, 0);
    CU_ASSERT_FALSE(cli_decode_elect_leaders_v1(f.b, f.len, CID, &top, &res, &n));
}

/* Every frame here must be refused, and nothing may leak (ASan checks). */
static void refuse(struct frame *f, const char *what)
{
    struct cli_raw_metadata md;
    bool ok = cli_decode_metadata_v7(f->b, f->len, CID, &md);
    CU_ASSERT_FALSE(ok);
    if (ok) {
        fprintf(stderr, "accepted: %s\n", what);
        cli_raw_metadata_free(&md);
    }
    CU_ASSERT_PTR_NULL(md.brokers);
    CU_ASSERT_PTR_NULL(md.partitions);
}

static void test_metadata_bad_fields(void)
{
    struct cli_raw_metadata md;
    struct frame f;

    valid_frame(&f);
    CU_ASSERT_FALSE(cli_decode_metadata_v7(f.b, f.len, CID + 1, &md));

    head(&f, -1);
    put_str(&f, NULL);
    put_i32(&f, 0);
    put_i32(&f, 0);
    refuse(&f, "negative broker count");

    head(&f, 1000000);
    put_str(&f, NULL);
    put_i32(&f, 0);
    put_i32(&f, 0);
    refuse(&f, "broker count beyond the frame");

    head(&f, 1);
    put_i32(&f, 1);
    put_i16(&f, 300); /* host length past the end */
    put_i32(&f, 9092);
    put_i16(&f, -1);
    put_str(&f, NULL);
    put_i32(&f, 1);
    put_i32(&f, 0);
    refuse(&f, "host past the end");

    head(&f, 1);
    put_i32(&f, 1);
    put_str(&f, "h");
    put_i32(&f, 9092);
    put_i16(&f, -2); /* below -1 */
    put_str(&f, NULL);
    put_i32(&f, 1);
    put_i32(&f, 0);
    refuse(&f, "string length -2");

    /* The second broker's rack runs past the end: the first broker's rack,
     * already allocated, is freed on the error path. */
    head(&f, 2);
    broker(&f, 1, "rack-one");
    put_i32(&f, 2);
    put_str(&f, "h");
    put_i32(&f, 2);
    put_i16(&f, 50);
    refuse(&f, "second rack past the end");

    /* Two topics although at most one was asked for. */
    head(&f, 0);
    put_str(&f, "cid");
    put_i32(&f, 1);
    put_i32(&f, 2);
    for (int i = 0; i < 2; i++) {
        put_i16(&f, 0);
        put_str(&f, "t");
        f.b[f.len++] = 0;
        put_i32(&f, 0);
    }
    refuse(&f, "two topics");

    /* Partition count beyond the frame; negative partition count. */
    for (int32_t n = 0; n < 2; n++) {
        head(&f, 0);
        put_str(&f, "cid");
        put_i32(&f, 1);
        put_i32(&f, 1);
        put_i16(&f, 0);
        put_str(&f, "t");
        f.b[f.len++] = 0;
        put_i32(&f, n == 0 ? 100000 : -1);
        partition(&f, 0, 1, 1, 0);
        refuse(&f, "partition count");
    }

    /* Offline replica count past the end, after a good partition whose
     * offline list was allocated. */
    head(&f, 0);
    put_str(&f, "cid");
    put_i32(&f, 1);
    put_i32(&f, 1);
    put_i16(&f, 0);
    put_str(&f, "t");
    f.b[f.len++] = 0;
    put_i32(&f, 2);
    partition(&f, 0, 1, 1, 1);
    put_i16(&f, 0);
    put_i32(&f, 1);
    put_i32(&f, 1);
    put_i32(&f, 1);
    put_i32(&f, 0);
    put_i32(&f, 0);
    put_i32(&f, 1000); /* offline count */
    put_i32(&f, 2);
    refuse(&f, "offline replicas past the end");

    /* A replica array with a count below -1. */
    head(&f, 0);
    put_str(&f, "cid");
    put_i32(&f, 1);
    put_i32(&f, 1);
    put_i16(&f, 0);
    put_str(&f, "t");
    f.b[f.len++] = 0;
    put_i32(&f, 1);
    put_i16(&f, 0);
    put_i32(&f, 0);
    put_i32(&f, 1);
    put_i32(&f, 1);
    put_i32(&f, -5);
    put_i32(&f, 0);
    put_i32(&f, 0);
    refuse(&f, "replica count -5");
}

/* ---- value parsers ---- */

static void test_parsers(void)
{
    int64_t v;
    CU_ASSERT_TRUE(cli_parse_int("12", 1, 12, &v));
    CU_ASSERT_EQUAL(v, 12);
    CU_ASSERT_FALSE(cli_parse_int("13", 1, 12, &v));
    CU_ASSERT_FALSE(cli_parse_int("0", 1, 12, &v));
    CU_ASSERT_FALSE(cli_parse_int("", 1, 12, &v));
    CU_ASSERT_FALSE(cli_parse_int("3x", 1, 12, &v));
    CU_ASSERT_FALSE(cli_parse_int("99999999999999999999", 0, INT64_MAX, &v));

    int ms;
    CU_ASSERT_TRUE(cli_parse_timeout("0.5", &ms));
    CU_ASSERT_EQUAL(ms, 500);
    CU_ASSERT_TRUE(cli_parse_timeout("10", &ms));
    CU_ASSERT_EQUAL(ms, 10000);
    CU_ASSERT_TRUE(cli_parse_timeout("0.0001", &ms));
    CU_ASSERT_EQUAL(ms, 1);
    CU_ASSERT_FALSE(cli_parse_timeout("0", &ms));
    CU_ASSERT_FALSE(cli_parse_timeout("-1", &ms));
    CU_ASSERT_FALSE(cli_parse_timeout("soon", &ms));
    CU_ASSERT_FALSE(cli_parse_timeout("1e9", &ms));
    CU_ASSERT_FALSE(cli_parse_timeout("nan", &ms));

    enum cli_format fmt;
    CU_ASSERT_TRUE(cli_parse_format("json", &fmt));
    CU_ASSERT_EQUAL(fmt, CLI_FORMAT_JSON);
    CU_ASSERT_FALSE(cli_parse_format("JSON", &fmt));

    CU_ASSERT_TRUE(cli_topic_name_valid("orders.v1_x-2"));
    CU_ASSERT_FALSE(cli_topic_name_valid(""));
    CU_ASSERT_FALSE(cli_topic_name_valid("."));
    CU_ASSERT_FALSE(cli_topic_name_valid(".."));
    CU_ASSERT_FALSE(cli_topic_name_valid("a b"));
    CU_ASSERT_FALSE(cli_topic_name_valid("a/b"));
    char name[251];
    memset(name, 'a', 250);
    name[250] = '\0';
    CU_ASSERT_FALSE(cli_topic_name_valid(name));
    name[249] = '\0';
    CU_ASSERT_TRUE(cli_topic_name_valid(name));
}

/* ---- consumer groups ---- */

static void test_group_values(void)
{
    CU_ASSERT_TRUE(cli_group_id_valid("billing"));
    CU_ASSERT_TRUE(cli_group_id_valid("a group/with:any chars"));
    CU_ASSERT_FALSE(cli_group_id_valid(""));
    char *id = malloc(CLI_MAX_GROUP_ID_LEN + 2);
    CU_ASSERT_FATAL(id != NULL);
    memset(id, 'g', CLI_MAX_GROUP_ID_LEN + 1);
    id[CLI_MAX_GROUP_ID_LEN + 1] = '\0';
    CU_ASSERT_FALSE(cli_group_id_valid(id));
    id[CLI_MAX_GROUP_ID_LEN] = '\0';
    CU_ASSERT_TRUE(cli_group_id_valid(id));
    free(id);

    struct cli_seek_target t;
    CU_ASSERT_TRUE(cli_parse_seek_target("earliest", &t));
    CU_ASSERT_EQUAL(t.kind, CLI_SEEK_EARLIEST);
    CU_ASSERT_TRUE(cli_parse_seek_target("latest", &t));
    CU_ASSERT_EQUAL(t.kind, CLI_SEEK_LATEST);
    CU_ASSERT_TRUE(cli_parse_seek_target("0", &t));
    CU_ASSERT_EQUAL(t.kind, CLI_SEEK_OFFSET);
    CU_ASSERT_EQUAL(t.value, 0);
    CU_ASSERT_TRUE(cli_parse_seek_target("42", &t));
    CU_ASSERT_EQUAL(t.kind, CLI_SEEK_OFFSET);
    CU_ASSERT_EQUAL(t.value, 42);
    CU_ASSERT_TRUE(cli_parse_seek_target("@1700000000000", &t));
    CU_ASSERT_EQUAL(t.kind, CLI_SEEK_TIMESTAMP);
    CU_ASSERT_EQUAL(t.value, 1700000000000LL);
    CU_ASSERT_TRUE(cli_parse_seek_target("@0", &t));
    CU_ASSERT_EQUAL(t.kind, CLI_SEEK_TIMESTAMP);
    CU_ASSERT_EQUAL(t.value, 0);
    static const char *const bad[] = {
        "",
        "Earliest",
        "beginning",
        "end",
        "-1",
        "+5",
        "5x",
        "@",
        "@-1",
        "@+1",
        "@x",
        "@1.5",
        "99999999999999999999",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CU_ASSERT_FALSE(cli_parse_seek_target(bad[i], &t));
        if (cli_parse_seek_target(bad[i], &t))
            fprintf(stderr, "accepted '%s'\n", bad[i]);
    }
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("cli", NULL, NULL);
    CU_add_test(s, "json structure", test_json_structure);
    CU_add_test(s, "json escapes and UTF-8", test_json_escapes);
    CU_add_test(s, "table alignment", test_table_alignment);
    CU_add_test(s, "record format", test_record_format);
    CU_add_test(s, "record format errors", test_record_format_errors);
    CU_add_test(s, "metadata v7 valid", test_metadata_valid);
    CU_add_test(s, "metadata v7 every truncation", test_metadata_every_truncation);
    CU_add_test(s, "metadata v7 bad fields", test_metadata_bad_fields);
    CU_add_test(s, "ElectLeaders v1 answers", test_elect_leaders_decode);
    CU_add_test(s, "value parsers", test_parsers);
    CU_add_test(s, "group ids and seek targets", test_group_values);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures();
    CU_cleanup_registry();
    return failed == 0 ? 0 : 1;
}
