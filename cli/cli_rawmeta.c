/* One Metadata v7 request over a plain socket, read with a small bounded
 * decoder: what librdkafka 2.0.2's metadata API does not expose (broker
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

#include "xalloc.h"

/* A bound on what a misbehaving peer can make us allocate and read: one
 * topic of the CLI's partition limit with a few replicas each fits. */
#define RAW_MAX_RESPONSE   (16 << 20)
#define RAW_MAX_BROKERS    10000
#define RAW_MAX_PARTITIONS 100000
#define RAW_CORRELATION_ID 0x766c7476 /* "vltv" */

/* ---- Bounded reader over one response frame ---- */

struct reader {
    const uint8_t *p;
    size_t left;
};

static bool read_i8(struct reader *r, int8_t *v)
{
    if (r->left < 1)
        return false;
    *v = (int8_t)r->p[0];
    r->p++;
    r->left--;
    return true;
}

static bool read_i16(struct reader *r, int16_t *v)
{
    if (r->left < 2)
        return false;
    *v = (int16_t)((r->p[0] << 8) | r->p[1]);
    r->p += 2;
    r->left -= 2;
    return true;
}

static bool read_i32(struct reader *r, int32_t *v)
{
    if (r->left < 4)
        return false;
    uint32_t u = ((uint32_t)r->p[0] << 24) | ((uint32_t)r->p[1] << 16) | ((uint32_t)r->p[2] << 8) |
                 (uint32_t)r->p[3];
    *v = (int32_t)u;
    r->p += 4;
    r->left -= 4;
    return true;
}

/* Reads a (nullable) string; *out is NULL for null, else a fresh copy
 * owned by the caller. The length is checked against the bytes remaining
 * before anything is allocated. */
static bool read_string(struct reader *r, char **out)
{
    int16_t len;
    *out = NULL;
    if (!read_i16(r, &len) || len < -1)
        return false;
    if (len == -1)
        return true;
    if ((size_t)len > r->left)
        return false;
    *out = xstrndup((const char *)r->p, (size_t)len);
    r->p += len;
    r->left -= (size_t)len;
    return true;
}

/* Reads an int32 array; with out == NULL it is skipped. *out (owned by the
 * caller) stays NULL for a null or empty array. */
static bool read_i32_array(struct reader *r, int32_t **out, int32_t *count)
{
    int32_t n;
    if (out != NULL)
        *out = NULL;
    *count = 0;
    if (!read_i32(r, &n) || n < -1)
        return false;
    if (n <= 0)
        return true;
    if ((size_t)n > r->left / 4)
        return false;
    if (out != NULL) {
        *out = xcalloc((size_t)n, sizeof(int32_t));
        for (int32_t i = 0; i < n; i++)
            read_i32(r, &(*out)[i]); /* cannot fail: length checked above */
    } else {
        r->p += (size_t)n * 4;
        r->left -= (size_t)n * 4;
    }
    *count = n;
    return true;
}

void cli_raw_metadata_free(struct cli_raw_metadata *md)
{
    for (int32_t i = 0; i < md->nbrokers; i++)
        free(md->brokers[i].rack);
    free(md->brokers);
    for (int32_t i = 0; i < md->npartitions; i++)
        free(md->partitions[i].offline);
    free(md->partitions);
    free(md->cluster_id);
    memset(md, 0, sizeof(*md));
}

static bool decode_brokers(struct reader *r, struct cli_raw_metadata *md)
{
    int32_t n;
    if (!read_i32(r, &n) || n < 0 || n > RAW_MAX_BROKERS)
        return false;
    /* Each broker entry is at least 4+2+4+2 bytes: bound n by the frame. */
    if ((size_t)n > r->left / 12)
        return false;
    md->brokers = xcalloc((size_t)n + 1, sizeof(*md->brokers));
    for (int32_t i = 0; i < n; i++) {
        struct cli_raw_broker *b = &md->brokers[i];
        char *host = NULL;
        int32_t port;
        if (!read_i32(r, &b->id))
            return false;
        md->nbrokers = i + 1; /* from here on b->rack is freed on error */
        bool ok = read_string(r, &host) && read_i32(r, &port) && read_string(r, &b->rack);
        free(host);
        if (!ok)
            return false;
    }
    return true;
}

static bool decode_topic(struct reader *r, struct cli_raw_metadata *md)
{
    char *name = NULL;
    int8_t internal;
    int32_t n;
    bool ok = read_i16(r, &md->topic_error) && read_string(r, &name) && read_i8(r, &internal);
    free(name);
    if (!ok || !read_i32(r, &n) || n < 0 || n > RAW_MAX_PARTITIONS)
        return false;
    md->has_topic = true;
    /* A partition entry is at least 2+4+4+4+3*4 bytes. */
    if ((size_t)n > r->left / 26)
        return false;
    md->partitions = xcalloc((size_t)n + 1, sizeof(*md->partitions));
    for (int32_t i = 0; i < n; i++) {
        struct cli_raw_partition *p = &md->partitions[i];
        int32_t skipped;
        md->npartitions = i + 1; /* from here on p->offline is freed on error */
        if (!read_i16(r, &p->error) || !read_i32(r, &p->id) || !read_i32(r, &p->leader) ||
            !read_i32(r, &p->leader_epoch) || !read_i32_array(r, NULL, &skipped) ||
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
    struct reader r = {.p = frame, .left = len};
    int32_t correlation, throttle, ntopics;
    if (!read_i32(&r, &correlation) || correlation != correlation_id || !read_i32(&r, &throttle))
        return false;
    if (!decode_brokers(&r, md) || !read_string(&r, &md->cluster_id) ||
        !read_i32(&r, &md->controller_id) || !read_i32(&r, &ntopics))
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

static void put_i16(uint8_t *buf, size_t *len, int16_t v)
{
    uint16_t u = htons((uint16_t)v);
    memcpy(buf + *len, &u, 2);
    *len += 2;
}

static void put_i32(uint8_t *buf, size_t *len, int32_t v)
{
    uint32_t u = htonl((uint32_t)v);
    memcpy(buf + *len, &u, 4);
    *len += 4;
}

/* Metadata v7 request for one topic or none; returns its length. */
static size_t build_request(uint8_t *req, size_t cap, const char *topic)
{
    static const char client_id[] = "vltava";
    size_t topic_len = topic != NULL ? strlen(topic) : 0;
    assert(topic_len < 250); /* callers validated the name */
    assert(cap >= 4 + 2 + 2 + 4 + 2 + sizeof(client_id) + 4 + 2 + topic_len + 1);
    (void)cap;
    size_t len = 4;        /* size, patched below */
    put_i16(req, &len, 3); /* api key: Metadata */
    put_i16(req, &len, 7); /* api version */
    put_i32(req, &len, RAW_CORRELATION_ID);
    put_i16(req, &len, (int16_t)(sizeof(client_id) - 1));
    memcpy(req + len, client_id, sizeof(client_id) - 1);
    len += sizeof(client_id) - 1;
    /* topics: [topic] or empty (none); null would mean all. */
    put_i32(req, &len, topic != NULL ? 1 : 0);
    if (topic != NULL) {
        put_i16(req, &len, (int16_t)topic_len);
        memcpy(req + len, topic, topic_len);
        len += topic_len;
    }
    req[len++] = 0; /* allow_auto_topic_creation: false */
    size_t body = len - 4;
    len = 0;
    put_i32(req, &len, (int32_t)body);
    return body + 4;
}

bool cli_raw_metadata_fetch(const struct cli_globals *g, const char *topic,
                            struct cli_raw_metadata *md, char *why, size_t whylen)
{
    memset(md, 0, sizeof(*md));
    int fd = cli_connect_bootstrap(g->brokers, cli_now_ms() + g->timeout_ms, why, whylen);
    if (fd < 0)
        return false;
    struct timeval tv = {.tv_sec = g->timeout_ms / 1000, .tv_usec = (g->timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));

    uint8_t req[512];
    size_t len = build_request(req, sizeof(req), topic);
    uint8_t *resp = NULL;
    bool ok = false;
    uint8_t hdr[4];
    errno = 0;
    if (!transfer_all(fd, req, len, true) || !transfer_all(fd, hdr, sizeof(hdr), false)) {
        snprintf(why, whylen, "no Metadata answer: %s",
                 errno != 0 ? strerror(errno) : "connection closed");
        goto out;
    }
    uint32_t size;
    memcpy(&size, hdr, 4);
    size = ntohl(size);
    if (size < 8 || size > RAW_MAX_RESPONSE) {
        snprintf(why, whylen, "Metadata answer of %u bytes is out of bounds", size);
        goto out;
    }
    resp = xmalloc(size);
    if (!transfer_all(fd, resp, size, false)) {
        snprintf(why, whylen, "truncated Metadata answer");
        goto out;
    }
    if (!cli_decode_metadata_v7(resp, size, RAW_CORRELATION_ID, md)) {
        snprintf(why, whylen, "malformed Metadata v7 answer");
        goto out;
    }
    ok = true;
out:
    free(resp);
    close(fd);
    return ok;
}
