/* The registry: what the request path counts as it happens.
 *
 * Per API key (a fixed array indexed by key): requests received, error
 * codes answered (a per-code array, allocated at the key's first error),
 * and a latency histogram with fixed bounds. Per topic: bytes and records
 * in (Produce) and out (Fetch), in an open-addressing table of
 * METRICS_TOPIC_SLOTS slots holding at most METRICS_MAX_TOPICS topics
 * (load <= 1/2); a topic that finds the table full counts in `other`.
 * Every update is O(1) apart from hashing the topic name. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fnv1a.h"
#include "kafka_errors.h"
#include "metrics_internal.h"
#include "xalloc.h"

#define METRICS_TOPIC_SLOTS 2048
/* Error code slots: codes -1 .. METRICS_ERROR_SLOTS - 2, at index code + 1. */
#define METRICS_ERROR_SLOTS 256

_Static_assert((METRICS_TOPIC_SLOTS & (METRICS_TOPIC_SLOTS - 1)) == 0, "a power of two");
_Static_assert(METRICS_TOPIC_SLOTS >= 2 * METRICS_MAX_TOPICS, "load at most one half");

/* Request latency bounds in seconds: sub-millisecond answers to long polls
 * and rebalances. */
static const double latency_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                        0.25,   0.5,   1,      2.5,   5,    10,    30};
#define LATENCY_BOUNDS (sizeof(latency_bounds) / sizeof(latency_bounds[0]))

typedef struct metrics_api {
    const char *name; /* static; NULL until the key's first request */
    uint64_t requests;
    uint64_t *errors; /* METRICS_ERROR_SLOTS; NULL until the key's first error */
    uint64_t latency_counts[LATENCY_BOUNDS + 1];
    double latency_sum;
} metrics_api_t;

typedef struct metrics_topic_io {
    char *name; /* owned; NULL: a free slot */
    size_t name_len;
    uint64_t bytes_in, records_in, bytes_out, records_out;
} metrics_topic_io_t;

struct metrics {
    metrics_api_t apis[METRICS_API_KEYS];
    metrics_topic_io_t *topics; /* METRICS_TOPIC_SLOTS */
    size_t ntopics;
    metrics_topic_io_t other; /* topics that found the table full (name NULL) */
};

metrics_t *metrics_new(void)
{
    metrics_t *m = xcalloc(1, sizeof(*m));
    m->topics = xcalloc(METRICS_TOPIC_SLOTS, sizeof(*m->topics));
    return m;
}

void metrics_free(metrics_t *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < METRICS_API_KEYS; i++)
        free(m->apis[i].errors);
    for (size_t i = 0; i < METRICS_TOPIC_SLOTS; i++)
        free(m->topics[i].name);
    free(m->topics);
    free(m);
}

/* ---- requests ---- */

static metrics_api_t *api_slot(metrics_t *m, int16_t api_key)
{
    if (m == NULL || api_key < 0 || api_key >= METRICS_API_KEYS)
        return NULL;
    return &m->apis[api_key];
}

void metrics_request_received(metrics_t *m, int16_t api_key, const char *api_name)
{
    metrics_api_t *a = api_slot(m, api_key);
    if (a == NULL)
        return;
    assert(api_name != NULL);
    assert(a->name == NULL || strcmp(a->name, api_name) == 0);
    a->name = api_name;
    a->requests++;
}

void metrics_request_completed(metrics_t *m, int16_t api_key, double seconds)
{
    metrics_api_t *a = api_slot(m, api_key);
    if (a == NULL)
        return;
    if (seconds < 0)
        seconds = 0; /* the monotonic clock never goes back; a caller's rounding might */
    size_t i = 0;
    while (i < LATENCY_BOUNDS && seconds > latency_bounds[i])
        i++;
    a->latency_counts[i]++;
    a->latency_sum += seconds;
}

void metrics_request_error(metrics_t *m, int16_t api_key, int16_t error_code)
{
    metrics_api_t *a = api_slot(m, api_key);
    if (a == NULL || error_code == KAFKA_NONE)
        return;
    if (a->errors == NULL)
        a->errors = xcalloc(METRICS_ERROR_SLOTS, sizeof(*a->errors));
    int slot = error_code + 1;
    if (slot < 0 || slot >= METRICS_ERROR_SLOTS)
        slot = KAFKA_UNKNOWN_SERVER_ERROR + 1;
    a->errors[slot]++;
}

/* ---- topics ---- */

/* The slot holding the topic, or the free slot where it would go. The
 * table is never full (load <= 1/2), so the probe ends. */
static metrics_topic_io_t *topic_probe(metrics_topic_io_t *table, const char *name, size_t len)
{
    size_t i = fnv1a(FNV1A_BASIS, name, len) & (METRICS_TOPIC_SLOTS - 1);
    for (size_t probes = 0; probes < METRICS_TOPIC_SLOTS; probes++) {
        metrics_topic_io_t *s = &table[i];
        if (s->name == NULL || (s->name_len == len && memcmp(s->name, name, len) == 0))
            return s;
        i = (i + 1) & (METRICS_TOPIC_SLOTS - 1);
    }
    assert(0 && "the topic table is never full");
    return NULL;
}

static metrics_topic_io_t *topic_slot(metrics_t *m, const char *name, size_t len)
{
    assert(name != NULL && len > 0);
    metrics_topic_io_t *s = topic_probe(m->topics, name, len);
    if (s->name != NULL)
        return s;
    if (m->ntopics == METRICS_MAX_TOPICS)
        return &m->other;
    s->name = xstrndup(name, len);
    s->name_len = len;
    m->ntopics++;
    return s;
}

/* Adds to the (bytes, records) pair at *counters within the topic's slot:
 * offsetof(bytes_in) or offsetof(bytes_out), records following bytes. */
static void topic_add(metrics_t *m, const char *topic, size_t len, size_t counters, int64_t bytes,
                      int64_t records)
{
    if (m == NULL)
        return;
    assert(bytes >= 0 && records >= 0);
    uint64_t *pair = (uint64_t *)((char *)topic_slot(m, topic, len) + counters);
    pair[0] += (uint64_t)bytes;
    pair[1] += (uint64_t)records;
}

_Static_assert(offsetof(metrics_topic_io_t, records_in) ==
                   offsetof(metrics_topic_io_t, bytes_in) + sizeof(uint64_t),
               "records follow bytes");
_Static_assert(offsetof(metrics_topic_io_t, records_out) ==
                   offsetof(metrics_topic_io_t, bytes_out) + sizeof(uint64_t),
               "records follow bytes");

void metrics_topic_in(metrics_t *m, const char *topic, size_t len, int64_t bytes, int64_t records)
{
    topic_add(m, topic, len, offsetof(metrics_topic_io_t, bytes_in), bytes, records);
}

void metrics_topic_out(metrics_t *m, const char *topic, size_t len, int64_t bytes, int64_t records)
{
    topic_add(m, topic, len, offsetof(metrics_topic_io_t, bytes_out), bytes, records);
}

void metrics_forget_topics(metrics_t *m, bool (*exists)(void *arg, const char *topic), void *arg)
{
    assert(m != NULL && exists != NULL);
    /* Every render calls this and topics are rarely deleted: the table is
     * rebuilt only once a topic is found gone (exists() is asked once per
     * topic either way). */
    size_t first_gone = 0;
    while (first_gone < METRICS_TOPIC_SLOTS &&
           (m->topics[first_gone].name == NULL || exists(arg, m->topics[first_gone].name)))
        first_gone++;
    if (first_gone == METRICS_TOPIC_SLOTS)
        return;
    /* Open addressing cannot simply empty a slot (a later probe would stop
     * there): the survivors move into a fresh table. */
    metrics_topic_io_t *old = m->topics;
    m->topics = xcalloc(METRICS_TOPIC_SLOTS, sizeof(*m->topics));
    size_t kept = 0;
    for (size_t i = 0; i < METRICS_TOPIC_SLOTS; i++) {
        metrics_topic_io_t *s = &old[i];
        if (s->name == NULL)
            continue;
        if (i == first_gone || (i > first_gone && !exists(arg, s->name))) {
            free(s->name);
            continue;
        }
        metrics_topic_io_t *to = topic_probe(m->topics, s->name, s->name_len);
        assert(to->name == NULL);
        *to = *s;
        kept++;
    }
    assert(kept < m->ntopics);
    m->ntopics = kept;
    free(old);
}

size_t metrics_topic_count(const metrics_t *m)
{
    return m->ntopics;
}

/* ---- rendering ---- */

static int compare_topic_names(const void *a, const void *b)
{
    const metrics_topic_io_t *x = *(const metrics_topic_io_t *const *)a;
    const metrics_topic_io_t *y = *(const metrics_topic_io_t *const *)b;
    return strcmp(x->name, y->name);
}

static bool topic_io_used(const metrics_topic_io_t *s)
{
    return s->bytes_in | s->records_in | s->bytes_out | s->records_out;
}

/* One per-topic family: its value for each topic in name order, then the
 * overflow series once it counted anything. */
static void write_topic_family(mtext_t *t, const metrics_topic_io_t *const *sorted, size_t n,
                               const metrics_topic_io_t *other, const char *name, const char *help,
                               size_t field_offset)
{
    mtext_family(t, name, "counter", help);
    for (size_t i = 0; i <= n; i++) {
        const metrics_topic_io_t *s = i < n ? sorted[i] : other;
        if (i == n && !topic_io_used(s))
            break;
        mlabel_t label = {"topic", i < n ? s->name : METRICS_OTHER_LABEL};
        mtext_sample_u64(t, name, &label, 1, *(const uint64_t *)((const char *)s + field_offset));
    }
}

static void write_topics(const metrics_t *m, mtext_t *t)
{
    const metrics_topic_io_t **sorted = xcalloc(m->ntopics + 1, sizeof(*sorted));
    size_t n = 0;
    for (size_t i = 0; i < METRICS_TOPIC_SLOTS; i++)
        if (m->topics[i].name != NULL)
            sorted[n++] = &m->topics[i];
    assert(n == m->ntopics);
    qsort(sorted, n, sizeof(*sorted), compare_topic_names);
    write_topic_family(t, sorted, n, &m->other, "vltava_topic_bytes_in_total",
                       "Record batch bytes appended by Produce, by topic.",
                       offsetof(metrics_topic_io_t, bytes_in));
    write_topic_family(t, sorted, n, &m->other, "vltava_topic_records_in_total",
                       "Records appended by Produce, by topic.",
                       offsetof(metrics_topic_io_t, records_in));
    write_topic_family(t, sorted, n, &m->other, "vltava_topic_bytes_out_total",
                       "Record batch bytes returned by Fetch, by topic.",
                       offsetof(metrics_topic_io_t, bytes_out));
    write_topic_family(t, sorted, n, &m->other, "vltava_topic_records_out_total",
                       "Offsets Fetch returned past each fetch position (records, "
                       "transaction markers included), by topic.",
                       offsetof(metrics_topic_io_t, records_out));
    free(sorted);
}

/* The label value of an error code: Kafka's name, or the number for a
 * code without one (two codes never share a label). */
static const char *error_label(int code, char *buf, size_t size)
{
    const char *name = kafka_error_name(code);
    if (strcmp(name, "UNKNOWN") != 0)
        return name;
    snprintf(buf, size, "%d", code);
    return buf;
}

static void write_apis(const metrics_t *m, mtext_t *t)
{
    mtext_family(t, "vltava_requests_total", "counter", "Kafka requests received, by API.");
    for (size_t k = 0; k < METRICS_API_KEYS; k++) {
        const metrics_api_t *a = &m->apis[k];
        if (a->name == NULL)
            continue;
        mlabel_t label = {"api", a->name};
        mtext_sample_u64(t, "vltava_requests_total", &label, 1, a->requests);
    }
    mtext_family(t, "vltava_request_errors_total", "counter",
                 "Error codes answered, by API and error: the answer's own error code for the "
                 "APIs that have one (group membership, FindCoordinator v0-3, ApiVersions, "
                 "transactions), each partition's for Produce and Fetch, and for every API the "
                 "requests refused as malformed (INVALID_REQUEST) or of an unsupported version "
                 "(UNSUPPORTED_VERSION).");
    for (size_t k = 0; k < METRICS_API_KEYS; k++) {
        const metrics_api_t *a = &m->apis[k];
        if (a->name == NULL || a->errors == NULL)
            continue;
        for (int slot = 0; slot < METRICS_ERROR_SLOTS; slot++) {
            if (a->errors[slot] == 0)
                continue;
            char num[16];
            mlabel_t labels[2] = {{"api", a->name},
                                  {"error", error_label(slot - 1, num, sizeof(num))}};
            mtext_sample_u64(t, "vltava_request_errors_total", labels, 2, a->errors[slot]);
        }
    }
    mtext_family(t, "vltava_request_duration_seconds", "histogram",
                 "Time from a request's dispatch to its answer being ready (or given up), "
                 "by API.");
    for (size_t k = 0; k < METRICS_API_KEYS; k++) {
        const metrics_api_t *a = &m->apis[k];
        if (a->name == NULL)
            continue;
        mlabel_t label = {"api", a->name};
        mtext_histogram(t, "vltava_request_duration_seconds", &label, 1, latency_bounds,
                        LATENCY_BOUNDS, a->latency_counts, a->latency_sum);
    }
}

void metrics_registry_write(const metrics_t *m, mtext_t *t)
{
    assert(m != NULL && t != NULL);
    write_apis(m, t);
    write_topics(m, t);
}

char *metrics_render_registry(const metrics_t *m, size_t *len)
{
    mtext_t t;
    mtext_init(&t);
    metrics_registry_write(m, &t);
    return mtext_take(&t, len);
}
