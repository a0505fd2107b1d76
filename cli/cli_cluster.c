/* vltava cluster info: brokers with endpoints and racks, controller id and
 * cluster id.
 *
 * librdkafka 2.0.2's metadata API does not expose racks, so this command also
 * sends one Metadata v1 request itself over a plain socket (v1 is the first
 * version with racks and the controller id) and reads it with a small
 * bounded decoder. Brokers, cluster id and controller come from librdkafka;
 * the raw answer only contributes racks. */
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

#include "cli_output.h"
#include "xalloc.h"

static const char info_usage[] =
    "Usage: vltava cluster info\n"
    "\n"
    "Shows the cluster id, the controller id and every live broker with its\n"
    "Kafka endpoint and rack. Global options and exit codes: see vltava --help.\n";

/* A Metadata v1 answer with no topics is a few bytes per broker; this
 * bounds what a misbehaving peer can make us allocate and read. */
#define RAW_MAX_RESPONSE   (1 << 20)
#define RAW_MAX_BROKERS    10000
#define RAW_CORRELATION_ID 0x766c7476 /* "vltv" */

/* ---- Bounded reader over one response frame ---- */

struct reader {
    const uint8_t *p;
    size_t left;
};

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

/* Reads a (nullable) int16-length string; *out is NULL for null, else a
 * fresh copy owned by the caller. The length is checked against the bytes
 * remaining before anything is allocated. */
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

void cli_raw_metadata_free(struct cli_raw_metadata *md)
{
    for (int32_t i = 0; i < md->nbrokers; i++)
        free(md->brokers[i].rack);
    free(md->brokers);
    md->brokers = NULL;
    md->nbrokers = 0;
}

/* Decodes a Metadata v1 response body (after the correlation id). Topics
 * are not read: the request asked for none. */
static bool decode_metadata_v1(struct reader *r, struct cli_raw_metadata *md)
{
    int32_t n;
    if (!read_i32(r, &n) || n < 0 || n > RAW_MAX_BROKERS)
        goto err;
    /* Each broker entry is at least 4+2+4+2 bytes: bound n by the frame. */
    if ((size_t)n * 12 > r->left)
        goto err;
    md->brokers = xcalloc((size_t)n + 1, sizeof(*md->brokers));
    for (int32_t i = 0; i < n; i++) {
        struct cli_raw_broker *b = &md->brokers[i];
        char *host = NULL;
        int32_t port;
        if (!read_i32(r, &b->id))
            goto err;
        md->nbrokers = i + 1; /* from here on b->rack is freed on error */
        bool ok = read_string(r, &host) && read_i32(r, &port) && read_string(r, &b->rack);
        free(host);
        if (!ok)
            goto err;
    }
    if (!read_i32(r, &md->controller_id))
        goto err;
    return true;
err:
    cli_raw_metadata_free(md);
    return false;
}

bool cli_decode_metadata_v1(const uint8_t *frame, size_t len, int32_t correlation_id,
                            struct cli_raw_metadata *md)
{
    assert(frame != NULL || len == 0);
    memset(md, 0, sizeof(*md));
    struct reader r = {.p = frame, .left = len};
    int32_t correlation;
    if (!read_i32(&r, &correlation) || correlation != correlation_id)
        return false;
    bool ok = decode_metadata_v1(&r, md);
    assert(ok || (md->brokers == NULL && md->nbrokers == 0));
    return ok;
}

static bool write_all(int fd, const uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        buf += n;
        len -= (size_t)n;
    }
    return true;
}

static bool read_all(int fd, uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = read(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        buf += n;
        len -= (size_t)n;
    }
    return true;
}

/* Sends Metadata v1 with an empty topic list to the first reachable
 * bootstrap broker and decodes the brokers' racks and the controller. */
static bool raw_metadata_fetch(const struct cli_globals *g, struct cli_raw_metadata *md, char *why,
                               size_t whylen)
{
    memset(md, 0, sizeof(*md));
    int fd = cli_connect_bootstrap(g->brokers, cli_now_ms() + g->timeout_ms, why, whylen);
    if (fd < 0)
        return false;
    struct timeval tv = {.tv_sec = g->timeout_ms / 1000, .tv_usec = (g->timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));

    static const char client_id[] = "vltava";
    uint8_t req[64];
    size_t len = 0;
    uint32_t u32;
    uint16_t u16;
    len += 4;       /* size, patched below */
    u16 = htons(3); /* api key: Metadata */
    memcpy(req + len, &u16, 2);
    len += 2;
    u16 = htons(1); /* api version */
    memcpy(req + len, &u16, 2);
    len += 2;
    u32 = htonl(RAW_CORRELATION_ID);
    memcpy(req + len, &u32, 4);
    len += 4;
    u16 = htons((uint16_t)(sizeof(client_id) - 1));
    memcpy(req + len, &u16, 2);
    len += 2;
    memcpy(req + len, client_id, sizeof(client_id) - 1);
    len += sizeof(client_id) - 1;
    u32 = htonl(0); /* topics: empty array = none (null would be all) */
    memcpy(req + len, &u32, 4);
    len += 4;
    assert(len <= sizeof(req));
    u32 = htonl((uint32_t)(len - 4));
    memcpy(req, &u32, 4);

    uint8_t *resp = NULL;
    bool ok = false;
    uint8_t hdr[4];
    errno = 0;
    if (!write_all(fd, req, len) || !read_all(fd, hdr, sizeof(hdr))) {
        snprintf(why, whylen, "no Metadata answer: %s",
                 errno != 0 ? strerror(errno) : "connection closed");
        goto out;
    }
    memcpy(&u32, hdr, 4);
    uint32_t size = ntohl(u32);
    if (size < 4 || size > RAW_MAX_RESPONSE) {
        snprintf(why, whylen, "Metadata answer of %u bytes is out of bounds", size);
        goto out;
    }
    resp = xmalloc(size);
    if (!read_all(fd, resp, size)) {
        snprintf(why, whylen, "truncated Metadata answer");
        goto out;
    }
    if (!cli_decode_metadata_v1(resp, size, RAW_CORRELATION_ID, md)) {
        snprintf(why, whylen, "malformed Metadata v1 answer");
        goto out;
    }
    ok = true;
out:
    free(resp);
    close(fd);
    return ok;
}

/* The rack the raw answer gives for broker id, or NULL. */
static const char *rack_of(const struct cli_raw_metadata *raw, int32_t id)
{
    for (int32_t i = 0; i < raw->nbrokers; i++)
        if (raw->brokers[i].id == id)
            return raw->brokers[i].rack;
    return NULL;
}

static int cmp_broker(const void *a, const void *b)
{
    const rd_kafka_metadata_broker_t *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

int cli_cmd_cluster(int argc, char **argv, struct cli_globals *g)
{
    struct cli_parser p;
    cli_parser_init(&p, argc, argv, "", NULL, info_usage, g);
    int opt = cli_parser_next(&p);
    if (opt == CLI_OPT_HELP)
        return CLI_EXIT_OK;
    if (opt != CLI_OPT_DONE || !cli_expect_positionals(&p, 0, ""))
        return CLI_EXIT_USAGE;

    int code = cli_check_reachable(g);
    if (code != CLI_EXIT_OK)
        return code;
    rd_kafka_t *rk = cli_kafka_new(g, RD_KAFKA_PRODUCER, NULL);
    if (rk == NULL)
        return CLI_EXIT_ERROR;
    const struct rd_kafka_metadata *md = NULL;
    code = cli_fetch_metadata(rk, g, NULL, &md);
    if (code != CLI_EXIT_OK) {
        rd_kafka_destroy(rk);
        return code;
    }
    /* Both are cached from the Metadata answer above. */
    char *cluster_id = rd_kafka_clusterid(rk, g->timeout_ms);
    int32_t controller = rd_kafka_controllerid(rk, g->timeout_ms);

    struct cli_raw_metadata raw;
    char why[256] = "";
    bool racks_known = raw_metadata_fetch(g, &raw, why, sizeof(why));
    if (!racks_known)
        cli_warn("racks unknown: %s", why);

    rd_kafka_metadata_broker_t *brokers = xcalloc((size_t)md->broker_cnt + 1, sizeof(*brokers));
    memcpy(brokers, md->brokers, (size_t)md->broker_cnt * sizeof(*brokers));
    qsort(brokers, (size_t)md->broker_cnt, sizeof(*brokers), cmp_broker);

    if (g->format == CLI_FORMAT_JSON) {
        struct json_writer w;
        json_init(&w, stdout);
        json_begin_object(&w);
        json_key(&w, "cluster_id");
        json_string(&w, cluster_id);
        json_key(&w, "controller_id");
        json_int(&w, controller);
        json_key(&w, "racks_known");
        json_bool(&w, racks_known);
        json_key(&w, "brokers");
        json_begin_array(&w);
        for (int i = 0; i < md->broker_cnt; i++) {
            json_begin_object(&w);
            json_key(&w, "id");
            json_int(&w, brokers[i].id);
            json_key(&w, "host");
            json_string(&w, brokers[i].host);
            json_key(&w, "port");
            json_int(&w, brokers[i].port);
            json_key(&w, "rack");
            json_string(&w, racks_known ? rack_of(&raw, brokers[i].id) : NULL);
            json_key(&w, "controller");
            json_bool(&w, brokers[i].id == controller);
            json_end_object(&w);
        }
        json_end_array(&w);
        json_end_object(&w);
        json_finish(&w);
    } else {
        printf("CLUSTER      %s\nCONTROLLER   %d\n\nBROKERS (* controller)\n",
               cluster_id ? cluster_id : "-", controller);
        static const char *const headers[] = {"ID", "HOST", "PORT", "RACK"};
        struct cli_table *t = table_new(4, headers);
        for (int i = 0; i < md->broker_cnt; i++) {
            const char *rack = racks_known ? rack_of(&raw, brokers[i].id) : "?";
            table_row(t);
            table_cell(t, "%d%s", brokers[i].id, brokers[i].id == controller ? "*" : "");
            table_cell(t, "%s", brokers[i].host);
            table_cell(t, "%d", brokers[i].port);
            table_cell(t, "%s", rack != NULL ? rack : "-");
        }
        table_print(t, stdout);
        table_free(t);
    }

    free(brokers);
    if (racks_known)
        cli_raw_metadata_free(&raw);
    if (cluster_id != NULL)
        rd_kafka_mem_free(rk, cluster_id);
    rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
    return CLI_EXIT_OK;
}
