/* CUnit tests for the metrics registry and the text exposition writer:
 * every rendering is first checked against the format's grammar (HELP and
 * TYPE before a family's samples, valid names, quoted and escaped label
 * values, a parsable value, no series twice), then for its content:
 * counters, error labels, histogram buckets (cumulative, le inclusive,
 * +Inf equal to _count), label escaping and UTF-8 repair, value
 * formatting, the per-topic series cap and the forgetting of topics. */
#include <CUnit/Basic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka_errors.h"
#include "metrics.h"
#include "metrics_internal.h"
#include "unit_run.h"
#include "vlog.h"

/* ---- an independent reader of the exposition format ---- */

static bool name_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
           (!first && c >= '0' && c <= '9');
}

/* Reads a metric or label name at *p; its length, 0 when none. */
static size_t read_name(const char **p)
{
    const char *s = *p;
    size_t n = 0;
    while (name_char(s[n], n == 0))
        n++;
    *p += n;
    return n;
}

/* A quoted label value: only \\, \" and \n escapes, no raw line feed. */
static bool read_label_value(const char **p)
{
    const char *s = *p;
    if (*s++ != '"')
        return false;
    while (*s != '"') {
        if (*s == '\0' || *s == '\n')
            return false;
        if (*s == '\\') {
            s++;
            if (*s != '\\' && *s != '"' && *s != 'n')
                return false;
        }
        s++;
    }
    *p = s + 1;
    return true;
}

static bool value_valid(const char *s, size_t len)
{
    char buf[64];
    if (len == 0 || len >= sizeof(buf))
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (strcmp(buf, "+Inf") == 0 || strcmp(buf, "-Inf") == 0 || strcmp(buf, "NaN") == 0)
        return true;
    char *end;
    strtod(buf, &end);
    return *end == '\0';
}

#define MAX_SERIES 8192

/* Checks the whole text; returns the number of samples, -1 (after a
 * CUnit failure naming the line) when something is wrong. */
static int check_exposition(const char *text)
{
    static char seen[MAX_SERIES][512];
    int nseen = 0;
    char family[256] = "", typed[256] = "";
    int samples = 0;
    int lineno = 0;
    for (const char *line = text; *line; lineno++) {
        const char *eol = strchr(line, '\n');
        if (eol == NULL) {
            CU_FAIL_FATAL("the last line has no line feed");
            return -1;
        }
        const char *p = line;
        bool ok = true;
        if (strncmp(p, "# HELP ", 7) == 0 || strncmp(p, "# TYPE ", 7) == 0) {
            bool type = p[2] == 'T';
            p += 7;
            const char *name = p;
            size_t n = read_name(&p);
            ok = n > 0 && n < sizeof(family) && *p == ' ';
            if (ok && type) {
                ok = strncmp(p + 1, "counter\n", 8) == 0 || strncmp(p + 1, "gauge\n", 6) == 0 ||
                     strncmp(p + 1, "histogram\n", 10) == 0;
                snprintf(typed, sizeof(typed), "%.*s", (int)n, name);
                ok = ok && strcmp(typed, family) == 0; /* HELP came first */
            } else if (ok) {
                snprintf(family, sizeof(family), "%.*s", (int)n, name);
                typed[0] = '\0';
            }
        } else {
            const char *name = p;
            size_t n = read_name(&p);
            ok = n > 0 && typed[0] != '\0' && strncmp(name, typed, strlen(typed)) == 0;
            if (ok && *p == '{') {
                p++;
                while (ok && *p != '}') {
                    ok = read_name(&p) > 0 && *p++ == '=' && read_label_value(&p);
                    if (ok && *p == ',')
                        p++;
                }
                p++;
            }
            ok = ok && *p == ' ' && value_valid(p + 1, (size_t)(eol - p - 1));
            if (ok) {
                size_t key_len = (size_t)(p - line);
                ok = key_len < sizeof(seen[0]) && nseen < MAX_SERIES;
                for (int i = 0; ok && i < nseen; i++)
                    ok = strlen(seen[i]) != key_len || memcmp(seen[i], line, key_len) != 0;
                if (ok)
                    snprintf(seen[nseen++], sizeof(seen[0]), "%.*s", (int)key_len, line);
            }
            samples++;
        }
        if (!ok) {
            fprintf(stderr, "bad exposition line %d: %.*s\n", lineno + 1, (int)(eol - line), line);
            CU_FAIL("exposition grammar");
            return -1;
        }
        line = eol + 1;
    }
    return samples;
}

/* The registry's text, checked against the grammar; the caller frees. */
static char *render(const metrics_t *m)
{
    size_t len;
    char *text = metrics_render_registry(m, &len);
    CU_ASSERT_EQUAL(strlen(text), len);
    CU_ASSERT_TRUE(check_exposition(text) >= 0);
    return text;
}

static bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return true;
    return false;
}

#define ASSERT_LINE(text, line)                                                                    \
    do {                                                                                           \
        if (!has_line(text, line))                                                                 \
            fprintf(stderr, "missing line: %s\n", line);                                           \
        CU_ASSERT_TRUE(has_line(text, line));                                                      \
    } while (0)

/* ---- tests ---- */

static void test_empty_registry_lists_families(void)
{
    metrics_t *m = metrics_new();
    char *text = render(m);
    ASSERT_LINE(text, "# TYPE vltava_requests_total counter");
    ASSERT_LINE(text, "# TYPE vltava_request_errors_total counter");
    ASSERT_LINE(text, "# TYPE vltava_request_duration_seconds histogram");
    ASSERT_LINE(text, "# TYPE vltava_topic_bytes_in_total counter");
    ASSERT_LINE(text, "# TYPE vltava_topic_records_out_total counter");
    CU_ASSERT_PTR_NULL(strstr(text, "vltava_requests_total{")); /* no API seen yet */
    CU_ASSERT_EQUAL(check_exposition(text), 0);
    free(text);
    metrics_free(m);
}

static void test_requests_and_errors(void)
{
    metrics_t *m = metrics_new();
    for (int i = 0; i < 3; i++)
        metrics_request_received(m, 0, "Produce");
    metrics_request_received(m, 3, "Metadata");
    metrics_request_error(m, 0, KAFKA_NOT_LEADER_OR_FOLLOWER);
    metrics_request_error(m, 0, KAFKA_NOT_LEADER_OR_FOLLOWER);
    metrics_request_error(m, 0, KAFKA_NONE); /* not an error */
    metrics_request_error(m, 3, KAFKA_UNKNOWN_SERVER_ERROR);
    metrics_request_error(m, 3, 30000); /* outside the range: UNKNOWN_SERVER_ERROR */
    metrics_request_error(m, 3, 120);   /* a code without a name: its number */
    metrics_request_received(m, -1, "Bad");
    metrics_request_received(m, METRICS_API_KEYS, "Bad");
    char *text = render(m);
    ASSERT_LINE(text, "vltava_requests_total{api=\"Produce\"} 3");
    ASSERT_LINE(text, "vltava_requests_total{api=\"Metadata\"} 1");
    ASSERT_LINE(text,
                "vltava_request_errors_total{api=\"Produce\",error=\"NOT_LEADER_OR_FOLLOWER\"} 2");
    ASSERT_LINE(text,
                "vltava_request_errors_total{api=\"Metadata\",error=\"UNKNOWN_SERVER_ERROR\"} 2");
    ASSERT_LINE(text, "vltava_request_errors_total{api=\"Metadata\",error=\"120\"} 1");
    CU_ASSERT_PTR_NULL(strstr(text, "error=\"NONE\""));
    CU_ASSERT_PTR_NULL(strstr(text, "Bad"));
    /* API key order: Produce (0) before Metadata (3). */
    CU_ASSERT_TRUE(strstr(text, "{api=\"Produce\"} 3") < strstr(text, "{api=\"Metadata\"} 1"));
    free(text);
    metrics_free(m);
}

static void test_histogram_buckets(void)
{
    metrics_t *m = metrics_new();
    metrics_request_received(m, 1, "Fetch");
    metrics_request_completed(m, 1, 0.0001);
    metrics_request_completed(m, 1, 0.0005); /* on a bound: le is inclusive */
    metrics_request_completed(m, 1, 0.0006);
    metrics_request_completed(m, 1, 0.7);
    metrics_request_completed(m, 1, 100); /* above the last bound */
    metrics_request_completed(m, 1, -1);  /* clamped to 0 */
    char *text = render(m);
    ASSERT_LINE(text, "vltava_request_duration_seconds_bucket{api=\"Fetch\",le=\"0.0005\"} 3");
    ASSERT_LINE(text, "vltava_request_duration_seconds_bucket{api=\"Fetch\",le=\"0.001\"} 4");
    ASSERT_LINE(text, "vltava_request_duration_seconds_bucket{api=\"Fetch\",le=\"0.5\"} 4");
    ASSERT_LINE(text, "vltava_request_duration_seconds_bucket{api=\"Fetch\",le=\"1\"} 5");
    ASSERT_LINE(text, "vltava_request_duration_seconds_bucket{api=\"Fetch\",le=\"30\"} 5");
    ASSERT_LINE(text, "vltava_request_duration_seconds_bucket{api=\"Fetch\",le=\"+Inf\"} 6");
    ASSERT_LINE(text, "vltava_request_duration_seconds_count{api=\"Fetch\"} 6");
    ASSERT_LINE(text, "vltava_request_duration_seconds_sum{api=\"Fetch\"} 100.7012");
    /* The buckets come in increasing order, cumulative counts never fall. */
    const char *p = text;
    long last = -1;
    int buckets = 0;
    while ((p = strstr(p, "vltava_request_duration_seconds_bucket{")) != NULL) {
        p = strchr(p, '}') + 2;
        long v = strtol(p, NULL, 10);
        CU_ASSERT_TRUE(v >= last);
        last = v;
        buckets++;
    }
    CU_ASSERT_EQUAL(buckets, 16); /* 15 bounds and +Inf */
    free(text);
    metrics_free(m);
}

static void test_label_escaping_and_utf8(void)
{
    mtext_t t;
    mtext_init(&t);
    mtext_family(&t, "x_total", "counter", "Help with a \\ backslash\nand a line feed.");
    /* The replacement character U+FFFD, as it is written. */
#define FFFD "\xef\xbf\xbd"
    struct {
        const char *value, *expected;
        bool utf8;
    } cases[] = {
        {"plain", "plain", true},
        {"back\\slash", "back\\\\slash", true},
        {"a \"quote\"", "a \\\"quote\\\"", true},
        {"line\nfeed", "line\\nfeed", true},
        {"\xc5\xbe\xc3\xa1k", "\xc5\xbe\xc3\xa1k", true}, /* two-byte forms */
        {"\xf0\x9f\x99\x82", "\xf0\x9f\x99\x82", true},   /* a four-byte form */
        {"a\xff", "a" FFFD, false},                       /* not a UTF-8 byte */
        {"\xc0\xaf", FFFD FFFD, false},                   /* overlong */
        {"\xed\xa0\x80", FFFD FFFD FFFD, false},          /* a surrogate */
        {"\xe2\x82", FFFD FFFD, false},                   /* cut short at the end */
        {"\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD, false}, /* above U+10FFFF */
        {"\x80", FFFD, false},                            /* a stray continuation */
    };
#undef FFFD
    const size_t ncases = sizeof(cases) / sizeof(cases[0]);
    /* i keeps the series apart: the repair is not one-to-one (two invalid
     * values can come out the same, which is why the lag family keeps
     * group ids that are not UTF-8 out of their own series). */
    for (size_t i = 0; i < ncases; i++) {
        char id[8];
        snprintf(id, sizeof(id), "%zu", i);
        mlabel_t labels[2] = {{"group", cases[i].value}, {"i", id}};
        mtext_sample_u64(&t, "x_total", labels, 2, i);
        CU_ASSERT_EQUAL(mtext_utf8_valid(cases[i].value), cases[i].utf8);
    }
    size_t len;
    char *text = mtext_take(&t, &len);
    CU_ASSERT_EQUAL(check_exposition(text), (int)ncases);
    ASSERT_LINE(text, "# HELP x_total Help with a \\\\ backslash\\nand a line feed.");
    for (size_t i = 0; i < ncases; i++) {
        char line[128];
        snprintf(line, sizeof(line), "x_total{group=\"%s\",i=\"%zu\"} %zu", cases[i].expected, i,
                 i);
        ASSERT_LINE(text, line);
    }
    free(text);
}

static void test_value_formatting(void)
{
    mtext_t t;
    mtext_init(&t);
    mtext_family(&t, "v", "gauge", "Values.");
    const double values[] = {0.1, 0.1 + 0.2, 1.5, 1e-05, 123456789.0, INFINITY, -INFINITY, NAN};
    const char *expected[] = {
        "0.1", "0.30000000000000004", "1.5", "1e-05", "123456789", "+Inf", "-Inf", "NaN"};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        char id[8];
        snprintf(id, sizeof(id), "%zu", i);
        mlabel_t label = {"i", id};
        mtext_sample_double(&t, "v", &label, 1, values[i]);
    }
    mtext_sample_i64(&t, "v", NULL, 0, -5);
    size_t len;
    char *text = mtext_take(&t, &len);
    CU_ASSERT_EQUAL(check_exposition(text), 9);
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        char line[64];
        snprintf(line, sizeof(line), "v{i=\"%zu\"} %s", i, expected[i]);
        ASSERT_LINE(text, line);
    }
    ASSERT_LINE(text, "v -5");
    free(text);
}

static bool keep_even(void *arg, const char *topic)
{
    int *calls = arg;
    (*calls)++;
    return topic[0] == 't' && atoi(topic + 1) % 2 == 0;
}

static bool keep_all(void *arg, const char *topic)
{
    int *calls = arg;
    (*calls)++;
    return topic[0] != '\0';
}

static void test_topic_counters_and_cap(void)
{
    metrics_t *m = metrics_new();
    metrics_topic_in(m, "orders-not-this-part", 6, 100, 3); /* a name of len bytes */
    metrics_topic_out(m, "orders", 6, 40, 1);
    char name[16];
    for (int i = 0; i < METRICS_MAX_TOPICS + 5; i++) {
        int n = snprintf(name, sizeof(name), "t%d", i);
        metrics_topic_in(m, name, (size_t)n, 10, 1);
    }
    CU_ASSERT_EQUAL(metrics_topic_count(m), METRICS_MAX_TOPICS);
    char *text = render(m);
    ASSERT_LINE(text, "vltava_topic_bytes_in_total{topic=\"orders\"} 100");
    ASSERT_LINE(text, "vltava_topic_records_in_total{topic=\"orders\"} 3");
    ASSERT_LINE(text, "vltava_topic_bytes_out_total{topic=\"orders\"} 40");
    ASSERT_LINE(text, "vltava_topic_records_out_total{topic=\"orders\"} 1");
    ASSERT_LINE(text, "vltava_topic_bytes_in_total{topic=\"t0\"} 10");
    /* orders took one slot: t0 .. t998 have theirs, the last six share one. */
    ASSERT_LINE(text, "vltava_topic_bytes_in_total{topic=\"t998\"} 10");
    CU_ASSERT_PTR_NULL(strstr(text, "{topic=\"t999\"}"));
    ASSERT_LINE(text, "vltava_topic_bytes_in_total{topic=\"" METRICS_OTHER_LABEL "\"} 60");
    ASSERT_LINE(text, "vltava_topic_records_in_total{topic=\"" METRICS_OTHER_LABEL "\"} 6");
    ASSERT_LINE(text, "vltava_topic_bytes_out_total{topic=\"" METRICS_OTHER_LABEL "\"} 0");
    /* Sorted by name: t10 before t2. */
    CU_ASSERT_TRUE(strstr(text, "{topic=\"t10\"}") < strstr(text, "{topic=\"t2\"}"));
    free(text);

    /* Forgetting frees slots: orders and every odd tN go. */
    int calls = 0;
    metrics_forget_topics(m, keep_even, &calls);
    CU_ASSERT_EQUAL(calls, METRICS_MAX_TOPICS);
    CU_ASSERT_EQUAL(metrics_topic_count(m), 500);
    metrics_topic_in(m, "t999", 4, 7, 7); /* now it gets its own series */
    metrics_topic_in(m, "t2", 2, 1, 1);   /* a survivor keeps its counts */
    text = render(m);
    ASSERT_LINE(text, "vltava_topic_bytes_in_total{topic=\"t999\"} 7");
    ASSERT_LINE(text, "vltava_topic_bytes_in_total{topic=\"t2\"} 11");
    CU_ASSERT_PTR_NULL(strstr(text, "{topic=\"orders\"}"));
    CU_ASSERT_PTR_NULL(strstr(text, "{topic=\"t3\"}"));
    /* The overflow series stays: counters never go back. */
    ASSERT_LINE(text, "vltava_topic_bytes_in_total{topic=\"" METRICS_OTHER_LABEL "\"} 60");
    free(text);

    /* Nothing gone: each topic asked once, every count kept. */
    calls = 0;
    metrics_forget_topics(m, keep_all, &calls);
    CU_ASSERT_EQUAL(calls, 501);
    CU_ASSERT_EQUAL(metrics_topic_count(m), 501);
    text = render(m);
    ASSERT_LINE(text, "vltava_topic_bytes_in_total{topic=\"t2\"} 11");
    ASSERT_LINE(text, "vltava_topic_bytes_in_total{topic=\"t999\"} 7");
    free(text);
    metrics_free(m);
}

static void test_null_registry_counts_nothing(void)
{
    metrics_request_received(NULL, 0, "Produce");
    metrics_request_completed(NULL, 0, 1.0);
    metrics_request_error(NULL, 0, KAFKA_CORRUPT_MESSAGE);
    metrics_topic_in(NULL, "t", 1, 1, 1);
    metrics_topic_out(NULL, "t", 1, 1, 1);
    metrics_free(NULL);
    CU_PASS("no crash");
}

static void test_histogram_writer_alone(void)
{
    static const double bounds[] = {1, 2};
    const uint64_t counts[] = {1, 0, 2};
    mtext_t t;
    mtext_init(&t);
    mtext_family(&t, "h_seconds", "histogram", "A histogram.");
    mtext_histogram(&t, "h_seconds", NULL, 0, bounds, 2, counts, 7.25);
    size_t len;
    char *text = mtext_take(&t, &len);
    CU_ASSERT_EQUAL(check_exposition(text), 5);
    CU_ASSERT_STRING_EQUAL(text, "# HELP h_seconds A histogram.\n"
                                 "# TYPE h_seconds histogram\n"
                                 "h_seconds_bucket{le=\"1\"} 1\n"
                                 "h_seconds_bucket{le=\"2\"} 1\n"
                                 "h_seconds_bucket{le=\"+Inf\"} 3\n"
                                 "h_seconds_sum 7.25\n"
                                 "h_seconds_count 3\n");
    free(text);
}

int main(void)
{
    vlog_set_level(getenv("VLTAVA_TEST_VERBOSE") ? VLOG_DEBUG : VLOG_ERROR);
    if (CU_initialize_registry() != CUE_SUCCESS)
        return EXIT_FAILURE;
    CU_pSuite s = CU_add_suite("metrics", NULL, NULL);
    CU_add_test(s, "empty registry lists its families", test_empty_registry_lists_families);
    CU_add_test(s, "requests and errors", test_requests_and_errors);
    CU_add_test(s, "histogram buckets", test_histogram_buckets);
    CU_add_test(s, "histogram writer", test_histogram_writer_alone);
    CU_add_test(s, "label escaping and UTF-8", test_label_escaping_and_utf8);
    CU_add_test(s, "value formatting", test_value_formatting);
    CU_add_test(s, "topic counters, cap and forgetting", test_topic_counters_and_cap);
    CU_add_test(s, "NULL registry", test_null_registry_counts_nothing);
    return unit_run_registered();
}
