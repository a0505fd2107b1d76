/* One Metadata v7 request over a plain socket, read with kafka_codec's
 * bounded reader: what librdkafka 2.0.2's metadata API does not expose (broker
 * racks, partition leader epochs, offline replicas). v7 is the newest
 * non-flexible version with all three.
 *
 * Response layout read here (all big-endian, strings int16-length):
 *   correlation_id i32, throttle_time_ms i32,
 *   brokers [node_id i32, host str, port i32, rack nullable str],
 *   cluster_id nullable str, controller_id i32,
 *   topics [error i16, name str, is_internal i8,
 *           partitions [error i16, index i32, leader i32, leader_epoch i32,
 *                       replicas [i32], isr [i32], offline_replicas [i32]]] */
#include "cli.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "kafka_codec.h"
#include "xalloc.h"

/* A bound on what a misbehaving peer can make us allocate and read: one
 * topic of the CLI's partition limit with a few replicas each fits. */
#define RAW_MAX_RESPONSE   (16 << 20)
#define RAW_MAX_BROKERS    10000
#define RAW_MAX_PARTITIONS 100000
#define RAW_CORRELATION_ID 0x766c7476 /* "vltv" */

/* ---- Reading the response (kafka_codec's bounded reader) ---- */

/* Reads a nullable string; *out is NULL for null, else a fresh copy owned
 * by the caller. The reader checks the length against the bytes remaining
 * before anything is allocated. */
static bool read_string(kreader_t *r, char **out)
{
    kslice_t s;
    *out = NULL;
    if (!kr_nullable_string_v(r, false, &s))
        return false;
    if (s.ptr != NULL)
        *out = kslice_strdup(s);
    return true;
}

/* Reads an int32 array; with out == NULL it is skipped. *out (owned by the
 * caller) stays NULL for a null or empty array. */
static bool read_i32_array(kreader_t *r, int32_t **out, int32_t *count)
{
    int32_t n;
    if (out != NULL)
        *out = NULL;
    *count = 0;
    if (!kr_array_v(r, false, 4, &n))
        return false;
    if (n <= 0)
        return true;
    /* Neither read below can fail: kr_array_v checked n * 4 bytes remain. */
    if (out != NULL) {
        *out = xcalloc((size_t)n, sizeof(int32_t));
        for (int32_t i = 0; i < n; i++)
            kr_i32(r, &(*out)[i]);
    } else {
        kr_skip(r, (size_t)n * 4);
    }
    *count = n;
    return true;
}

void cli_raw_metadata_free(struct cli_raw_metadata *md)
{
    for (int32_t i = 0; i < md->nbrokers; i++) {
        free(md->brokers[i].host);
        free(md->brokers[i].rack);
    }
    free(md->brokers);
    for (int32_t i = 0; i < md->npartitions; i++)
        free(md->partitions[i].offline);
    free(md->partitions);
    free(md->cluster_id);
    memset(md, 0, sizeof(*md));
}

static bool decode_brokers(kreader_t *r, struct cli_raw_metadata *md)
{
    int32_t n;
    /* Each broker entry is at least 4+2+4+2 bytes: bound n by the frame. */
    if (!kr_array_v(r, false, 12, &n) || n < 0 || n > RAW_MAX_BROKERS)
        return false;
    md->brokers = xcalloc((size_t)n + 1, sizeof(*md->brokers));
    for (int32_t i = 0; i < n; i++) {
        struct cli_raw_broker *b = &md->brokers[i];
        if (!kr_i32(r, &b->id))
            return false;
        md->nbrokers = i + 1; /* from here on b->host and b->rack are freed on error */
        if (!read_string(r, &b->host) || b->host == NULL || !kr_i32(r, &b->port) ||
            !read_string(r, &b->rack))
            return false;
    }
    return true;
}

static bool decode_topic(kreader_t *r, struct cli_raw_metadata *md)
{
    kslice_t name;
    int8_t internal;
    int32_t n;
    /* A partition entry is at least 2+4+4+4+3*4 bytes: bound n by the frame. */
    if (!kr_i16(r, &md->topic_error) || !kr_nullable_string_v(r, false, &name) ||
        !kr_i8(r, &internal) || !kr_array_v(r, false, 26, &n) || n < 0 || n > RAW_MAX_PARTITIONS)
        return false;
    md->has_topic = true;
    md->partitions = xcalloc((size_t)n + 1, sizeof(*md->partitions));
    for (int32_t i = 0; i < n; i++) {
        struct cli_raw_partition *p = &md->partitions[i];
        int32_t skipped;
        md->npartitions = i + 1; /* from here on p->offline is freed on error */
        if (!kr_i16(r, &p->error) || !kr_i32(r, &p->id) || !kr_i32(r, &p->leader) ||
            !kr_i32(r, &p->leader_epoch) || !read_i32_array(r, NULL, &skipped) ||
            !read_i32_array(r, NULL, &skipped) || !read_i32_array(r, &p->offline, &p->noffline))
            return false;
    }
    return true;
}

bool cli_decode_metadata_v7(const uint8_t *frame, size_t len, int32_t correlation_id,
                            struct cli_raw_metadata *md)
{
    assert(frame != NULL || len == 0);
    memset(md, 0, sizeof(*md));
    kreader_t r;
    kr_init(&r, frame, len);
    int32_t correlation, throttle, ntopics;
    if (!kr_i32(&r, &correlation) || correlation != correlation_id || !kr_i32(&r, &throttle))
        return false;
    if (!decode_brokers(&r, md) || !read_string(&r, &md->cluster_id) ||
        !kr_i32(&r, &md->controller_id) || !kr_i32(&r, &ntopics))
        goto err;
    /* The request named at most one topic. */
    if (ntopics < 0 || ntopics > 1)
        goto err;
    if (ntopics == 1 && !decode_topic(&r, md))
        goto err;
    return true;
err:
    cli_raw_metadata_free(md);
    assert(md->brokers == NULL && md->partitions == NULL);
    return false;
}

/* ---- The request ---- */

/* Moves all len bytes through write(2) (writing) or read(2), retrying on
 * EINTR; false on an error or end of file. */
static bool transfer_all(int fd, uint8_t *buf, size_t len, bool writing)
{
    while (len > 0) {
        ssize_t n = writing ? write(fd, buf, len) : read(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        buf += n;
        len -= (size_t)n;
    }
    return true;
}

bool cli_raw_exchange(int fd, const uint8_t *req, size_t req_len, uint32_t min_size,
                      uint32_t max_size, const char *what, uint8_t **resp, size_t *len, char *why,
                      size_t whylen)
{
    assert(req_len > 4 && min_size >= 4 && max_size >= min_size);
    *resp = NULL;
    *len = 0;
    uint8_t hdr[4];
    errno = 0;
    if (!transfer_all(fd, (uint8_t *)req, req_len, true) ||
        !transfer_all(fd, hdr, sizeof(hdr), false)) {
        snprintf(why, whylen, "no answer to the %s request: %s", what,
                 errno != 0 ? strerror(errno) : "connection closed");
        return false;
    }
    uint32_t size;
    memcpy(&size, hdr, 4);
    size = ntohl(size);
    if (size < min_size || size > max_size) {
        snprintf(why, whylen, "the answer to the %s request is %u bytes, out of bounds", what,
                 size);
        return false;
    }
    uint8_t *frame = xmalloc(size);
    if (!transfer_all(fd, frame, size, false)) {
        snprintf(why, whylen, "truncated answer to the %s request", what);
        free(frame);
        return false;
    }
    *resp = frame;
    *len = size;
    return true;
}

/* Appends a Metadata v7 request for one topic or none, size prefix
 * included. */
static void build_request(kwriter_t *w, const char *topic)
{
    assert(topic == NULL || strlen(topic) < 250); /* callers validated the name */
    size_t size_at = kw_reserve_i32(w);
    kw_i16(w, 3); /* api key: Metadata */
    kw_i16(w, 7); /* api version */
    kw_i32(w, RAW_CORRELATION_ID);
    kw_string_v(w, false, "vltava", -1); /* client id */
    /* topics: [topic] or empty (none); null would mean all. */
    kw_array_v(w, false, topic != NULL ? 1 : 0);
    if (topic != NULL)
        kw_string_v(w, false, topic, -1);
    kw_i8(w, 0); /* allow_auto_topic_creation: false */
    kw_patch_i32(w, size_at, (int32_t)(w->len - size_at - 4));
}

bool cli_raw_metadata_exchange(int fd, const char *topic, struct cli_raw_metadata *md, char *why,
                               size_t whylen)
{
    memset(md, 0, sizeof(*md));
    kwriter_t req;
    kw_init(&req, 64);
    build_request(&req, topic);
    uint8_t *resp = NULL;
    size_t size = 0;
    bool ok = false;
    if (!cli_raw_exchange(fd, req.buf, req.len, 8, RAW_MAX_RESPONSE, "Metadata", &resp, &size, why,
                          whylen))
        goto out;
    if (!cli_decode_metadata_v7(resp, size, RAW_CORRELATION_ID, md)) {
        snprintf(why, whylen, "malformed Metadata v7 answer");
        goto out;
    }
    ok = true;
out:
    kw_free(&req);
    free(resp);
    return ok;
}

bool cli_raw_metadata_fetch(const struct cli_globals *g, const char *topic,
                            struct cli_raw_metadata *md, char *why, size_t whylen)
{
    memset(md, 0, sizeof(*md));
    int fd = cli_connect_bootstrap(g->brokers, cli_wait_deadline_ms(g), why, whylen);
    if (fd < 0)
        return false;
    bool ok = cli_raw_metadata_exchange(fd, topic, md, why, whylen);
    close(fd);
    return ok;
}

/* ---- One request to the controller ---- */

/* Connects to broker id's advertised endpoint as md lists it, within what is
 * left of the phase; -1 with the reason in why. */
static int connect_broker(const struct cli_globals *g, const struct cli_raw_metadata *md,
                          int32_t id, char *why, size_t whylen)
{
    for (int32_t i = 0; i < md->nbrokers; i++) {
        const struct cli_raw_broker *b = &md->brokers[i];
        if (b->id != id)
            continue;
        char addr[300];
        /* An IPv6 literal needs brackets before its port. */
        bool v6 = strchr(b->host, ':') != NULL;
        snprintf(addr, sizeof(addr), v6 ? "[%s]:%d" : "%s:%d", b->host, b->port);
        return cli_connect_bootstrap(addr, cli_wait_deadline_ms(g), why, whylen);
    }
    snprintf(why, whylen, "the controller (broker %d) is not among the live brokers", id);
    return -1;
}

bool cli_raw_controller_exchange(const struct cli_globals *g, const uint8_t *req, size_t req_len,
                                 uint32_t min_size, uint32_t max_size, const char *what,
                                 uint8_t **resp, size_t *len, int32_t *controller_id, char *why,
                                 size_t whylen)
{
    assert(req != NULL && req_len > 4);
    assert(resp != NULL && len != NULL);
    *resp = NULL;
    *len = 0;
    *controller_id = -1;
    int fd = cli_connect_bootstrap(g->brokers, cli_wait_deadline_ms(g), why, whylen);
    if (fd < 0)
        return false;
    struct cli_raw_metadata md;
    if (!cli_raw_metadata_exchange(fd, NULL, &md, why, whylen)) {
        close(fd);
        return false;
    }
    bool ok = false;
    if (md.controller_id < 0) {
        snprintf(why, whylen, "the cluster has no controller");
        goto out;
    }
    *controller_id = md.controller_id;
    /* The bootstrap connection serves when it reached the controller, but
     * a broker's own id is not in its Metadata answer: always connect to
     * the endpoint the controller advertises. */
    close(fd);
    fd = connect_broker(g, &md, md.controller_id, why, whylen);
    if (fd < 0)
        goto out;
    ok = cli_raw_exchange(fd, req, req_len, min_size, max_size, what, resp, len, why, whylen);
out:
    if (fd >= 0)
        close(fd);
    cli_raw_metadata_free(&md);
    return ok;
}
