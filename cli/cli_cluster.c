/* vltava cluster info: brokers with endpoints and racks, controller id and
 * cluster id.
 *
 * librdkafka 2.0.2's metadata API does not expose racks, so this command also
 * sends one Metadata request itself (cli_rawmeta.c). Brokers, cluster id and
 * controller come from librdkafka; the raw answer only contributes racks.
 *
 * vltava cluster health: the cluster's verdict from one Metadata answer
 * (librdkafka's), or with --local one broker's, over one connection to the
 * first --brokers address: Metadata (is it registered, is a controller
 * known) and DescribeConfigs for each live broker id (which one it is: a
 * broker describes only itself, so no host or port has to match what it
 * advertises, which inside a container it does not). */
#include "cli.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_output.h"
#include "kafka_codec.h"
#include "xalloc.h"

static const char info_usage[] =
    "Usage: vltava cluster info\n"
    "\n"
    "Shows the cluster id, the controller id and every live broker with its\n"
    "Kafka endpoint and rack. Global options and exit codes: see vltava --help.\n";

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

/* A handle and the metadata of every topic (both the caller's), after
 * checking that the cluster is reachable. */
static int cluster_metadata(struct cli_globals *g, rd_kafka_t **rk,
                            const struct rd_kafka_metadata **md)
{
    *rk = NULL;
    *md = NULL;
    int code = cli_check_reachable(g);
    if (code != CLI_EXIT_OK)
        return code;
    *rk = cli_kafka_new(g, RD_KAFKA_PRODUCER, NULL);
    if (*rk == NULL)
        return CLI_EXIT_ERROR;
    code = cli_fetch_metadata(*rk, g, NULL, md);
    if (code != CLI_EXIT_OK) {
        rd_kafka_destroy(*rk);
        *rk = NULL;
    }
    return code;
}

int cli_cmd_cluster(int argc, char **argv, struct cli_globals *g)
{
    struct cli_parser p;
    cli_parser_init(&p, argc, argv, "", NULL, info_usage, g);
    int code;
    if (!cli_no_operand(&p, cli_parser_next(&p), &code))
        return code;

    rd_kafka_t *rk;
    const struct rd_kafka_metadata *md;
    code = cluster_metadata(g, &rk, &md);
    if (code != CLI_EXIT_OK)
        return code;
    /* Both are cached from the Metadata answer above. */
    char *cluster_id = rd_kafka_clusterid(rk, cli_wait_ms(g));
    int32_t controller = rd_kafka_controllerid(rk, cli_wait_ms(g));

    struct cli_raw_metadata raw;
    char why[256] = "";
    bool racks_known = cli_raw_metadata_fetch(g, NULL, &raw, why, sizeof(why));
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

/* ---- vltava cluster health ---- */

static const char health_usage[] =
    "Usage: vltava cluster health [--local]\n"
    "\n"
    "Checks the cluster through one Metadata answer: a controller is known,\n"
    "every broker that holds a replica is live, and every partition has a\n"
    "live leader and its whole replica set in sync. Lists what is wrong.\n"
    "\n"
    "  --local   check only the broker at the first --brokers address: it\n"
    "            answers Metadata, lists itself among the live brokers (it is\n"
    "            registered) and knows a controller. For container\n"
    "            healthchecks.\n"
    "\n"
    "Exit codes: 0 healthy, 9 not healthy (the reasons are printed), 3 no\n"
    "answer within the timeout; see vltava --help for the others.\n";

/* Partitions the text output lists in each problem table; JSON lists all. */
#define HEALTH_TEXT_ROWS 50

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static bool contains_i32(const int32_t *ids, int32_t n, int32_t id)
{
    for (int32_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

void cli_health_assess(const struct rd_kafka_metadata *md, int32_t controller_id,
                       struct cli_health *h)
{
    memset(h, 0, sizeof(*h));
    h->controller_id = controller_id;
    h->live = xcalloc((size_t)md->broker_cnt + 1, sizeof(*h->live));
    for (int i = 0; i < md->broker_cnt; i++)
        h->live[h->nlive++] = md->brokers[i].id;
    qsort(h->live, (size_t)h->nlive, sizeof(*h->live), cmp_i32);

    size_t npartitions = 0, nreplicas = 0;
    for (int t = 0; t < md->topic_cnt; t++) {
        npartitions += (size_t)md->topics[t].partition_cnt;
        for (int i = 0; i < md->topics[t].partition_cnt; i++)
            nreplicas += (size_t)md->topics[t].partitions[i].replica_cnt;
    }
    h->leaderless = xcalloc(npartitions + 1, sizeof(*h->leaderless));
    h->under_replicated = xcalloc(npartitions + 1, sizeof(*h->under_replicated));
    h->down = xcalloc(nreplicas + 1, sizeof(*h->down));
    for (int t = 0; t < md->topic_cnt; t++) {
        const rd_kafka_metadata_topic_t *topic = &md->topics[t];
        for (int i = 0; i < topic->partition_cnt; i++) {
            const rd_kafka_metadata_partition_t *p = &topic->partitions[i];
            struct cli_health_partition hp = {topic->topic, p};
            if (p->leader < 0 || !contains_i32(h->live, h->nlive, p->leader))
                h->leaderless[h->nleaderless++] = hp;
            if (p->isr_cnt < p->replica_cnt)
                h->under_replicated[h->nunder_replicated++] = hp;
            for (int r = 0; r < p->replica_cnt; r++)
                if (!contains_i32(h->live, h->nlive, p->replicas[r]) &&
                    !contains_i32(h->down, h->ndown, p->replicas[r]))
                    h->down[h->ndown++] = p->replicas[r];
        }
    }
    qsort(h->down, (size_t)h->ndown, sizeof(*h->down), cmp_i32);
}

void cli_health_free(struct cli_health *h)
{
    free(h->live);
    free(h->down);
    free(h->leaderless);
    free(h->under_replicated);
    memset(h, 0, sizeof(*h));
}

int cli_health_reasons(const struct cli_health *h, const char *reasons[CLI_HEALTH_MAX_REASONS])
{
    int n = 0;
    if (h->controller_id < 0)
        reasons[n++] = "no_controller";
    if (h->ndown > 0)
        reasons[n++] = "nodes_down";
    if (h->nleaderless > 0)
        reasons[n++] = "leaderless_partitions";
    if (h->nunder_replicated > 0)
        reasons[n++] = "under_replicated_partitions";
    assert(n <= CLI_HEALTH_MAX_REASONS);
    return n;
}

static void json_ids(struct json_writer *w, const char *key, const int32_t *ids, int32_t n)
{
    json_key(w, key);
    json_begin_array(w);
    for (int32_t i = 0; i < n; i++)
        json_int(w, ids[i]);
    json_end_array(w);
}

static void json_reasons(struct json_writer *w, const char *const *reasons, int n)
{
    json_key(w, "healthy");
    json_bool(w, n == 0);
    json_key(w, "unhealthy_reasons");
    json_begin_array(w);
    for (int i = 0; i < n; i++)
        json_string(w, reasons[i]);
    json_end_array(w);
}

static void json_partitions(struct json_writer *w, const char *key,
                            const struct cli_health_partition *parts, int32_t n)
{
    json_key(w, key);
    json_begin_array(w);
    for (int32_t i = 0; i < n; i++) {
        const rd_kafka_metadata_partition_t *p = parts[i].p;
        json_begin_object(w);
        json_key(w, "topic");
        json_string(w, parts[i].topic);
        json_key(w, "partition");
        json_int(w, p->id);
        json_key(w, "leader");
        json_int(w, p->leader);
        json_ids(w, "replicas", p->replicas, p->replica_cnt);
        json_ids(w, "isr", p->isrs, p->isr_cnt);
        json_end_object(w);
    }
    json_end_array(w);
}

/* "1 2 3", or "-" for none. */
static void print_ids(const char *label, const int32_t *ids, int32_t n)
{
    printf("%-18s", label);
    if (n == 0)
        printf("-");
    for (int32_t i = 0; i < n; i++)
        printf("%s%d", i ? " " : "", ids[i]);
    printf("\n");
}

static void format_ids(char *buf, size_t size, const int32_t *ids, int32_t n)
{
    size_t at = 0;
    buf[0] = '\0';
    for (int32_t i = 0; i < n && at < size; i++)
        at += (size_t)snprintf(buf + at, size - at, "%s%d", i ? "," : "", ids[i]);
}

static void print_problem_table(const char *title, const struct cli_health_partition *parts,
                                int32_t n)
{
    if (n == 0)
        return;
    printf("\n%s (%d)\n", title, n);
    static const char *const headers[] = {"TOPIC", "PARTITION", "LEADER", "REPLICAS", "ISR"};
    struct cli_table *t = table_new(5, headers);
    for (int32_t i = 0; i < n && i < HEALTH_TEXT_ROWS; i++) {
        const rd_kafka_metadata_partition_t *p = parts[i].p;
        char replicas[256], isr[256];
        format_ids(replicas, sizeof(replicas), p->replicas, p->replica_cnt);
        format_ids(isr, sizeof(isr), p->isrs, p->isr_cnt);
        table_row(t);
        table_cell(t, "%s", parts[i].topic);
        table_cell(t, "%d", p->id);
        if (p->leader >= 0)
            table_cell(t, "%d", p->leader);
        else
            table_cell(t, "-");
        table_cell(t, "%s", replicas[0] ? replicas : "-");
        table_cell(t, "%s", isr[0] ? isr : "-");
    }
    table_print(t, stdout);
    table_free(t);
    if (n > HEALTH_TEXT_ROWS)
        printf("... and %d more (--format json lists them all)\n", n - HEALTH_TEXT_ROWS);
}

static void print_health(const struct cli_globals *g, const struct cli_health *h)
{
    const char *reasons[CLI_HEALTH_MAX_REASONS];
    int nreasons = cli_health_reasons(h, reasons);
    if (g->format == CLI_FORMAT_JSON) {
        struct json_writer w;
        json_init(&w, stdout);
        json_begin_object(&w);
        json_reasons(&w, reasons, nreasons);
        json_key(&w, "controller_id");
        json_int(&w, h->controller_id);
        json_ids(&w, "live_brokers", h->live, h->nlive);
        json_ids(&w, "brokers_down", h->down, h->ndown);
        json_partitions(&w, "leaderless_partitions", h->leaderless, h->nleaderless);
        json_partitions(&w, "under_replicated_partitions", h->under_replicated,
                        h->nunder_replicated);
        json_end_object(&w);
        json_finish(&w);
        return;
    }
    printf("%-18s%s\n", "HEALTHY", nreasons == 0 ? "yes" : "no");
    printf("%-18s", "REASONS");
    for (int i = 0; i < nreasons; i++)
        printf("%s%s", i ? " " : "", reasons[i]);
    printf("%s\n", nreasons == 0 ? "-" : "");
    if (h->controller_id >= 0)
        printf("%-18s%d\n", "CONTROLLER", h->controller_id);
    else
        printf("%-18s-\n", "CONTROLLER");
    print_ids("LIVE BROKERS", h->live, h->nlive);
    print_ids("BROKERS DOWN", h->down, h->ndown);
    printf("%-18s%d\n", "LEADERLESS", h->nleaderless);
    printf("%-18s%d\n", "UNDER-REPLICATED", h->nunder_replicated);
    print_problem_table("LEADERLESS PARTITIONS", h->leaderless, h->nleaderless);
    print_problem_table("UNDER-REPLICATED PARTITIONS", h->under_replicated, h->nunder_replicated);
}

static int health_cluster(struct cli_globals *g)
{
    rd_kafka_t *rk;
    const struct rd_kafka_metadata *md;
    int code = cluster_metadata(g, &rk, &md);
    if (code != CLI_EXIT_OK)
        return code;
    /* Cached from the Metadata answer above. */
    int32_t controller = rd_kafka_controllerid(rk, cli_wait_ms(g));
    struct cli_health h;
    cli_health_assess(md, controller, &h);
    print_health(g, &h);
    const char *reasons[CLI_HEALTH_MAX_REASONS];
    code = cli_health_reasons(&h, reasons) == 0 ? CLI_EXIT_OK : CLI_EXIT_UNHEALTHY;
    cli_health_free(&h);
    rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
    return code;
}

/* ---- --local: one broker, over one connection ---- */

#define HEALTH_CORRELATION_ID 0x766c7464 /* "vltd" */
#define HEALTH_MAX_RESPONSE   (4 << 20)
#define RESOURCE_TYPE_BROKER  4

/* DescribeConfigs v0 for the BROKER resources named by ids, asking for
 * broker.id only; size prefix included. */
static void build_describe_brokers(kwriter_t *w, const struct cli_raw_metadata *md)
{
    size_t size_at = kw_reserve_i32(w);
    kw_i16(w, 32); /* api key: DescribeConfigs */
    kw_i16(w, 0);  /* api version */
    kw_i32(w, HEALTH_CORRELATION_ID);
    kw_string_v(w, false, "vltava", -1);
    kw_array_v(w, false, md->nbrokers);
    for (int32_t i = 0; i < md->nbrokers; i++) {
        char id[16];
        snprintf(id, sizeof(id), "%d", md->brokers[i].id);
        kw_i8(w, RESOURCE_TYPE_BROKER);
        kw_string_v(w, false, id, -1);
        kw_array_v(w, false, 1);
        kw_string_v(w, false, "broker.id", -1);
    }
    kw_patch_i32(w, size_at, (int32_t)(w->len - size_at - 4));
}

bool cli_decode_describe_configs_self(const uint8_t *frame, size_t len, int32_t correlation_id,
                                      int32_t *self)
{
    kreader_t r;
    kr_init(&r, frame, len);
    int32_t correlation, throttle, nresults;
    *self = -1;
    /* A result is at least 2+2+1+2+4 bytes. */
    if (!kr_i32(&r, &correlation) || correlation != correlation_id || !kr_i32(&r, &throttle) ||
        !kr_array_v(&r, false, 11, &nresults))
        return false;
    for (int32_t i = 0; i < nresults; i++) {
        int16_t error;
        int8_t type;
        kslice_t message, name;
        int32_t nconfigs;
        if (!kr_i16(&r, &error) || !kr_nullable_string_v(&r, false, &message) ||
            !kr_i8(&r, &type) || !kr_string_v(&r, false, &name) ||
            !kr_array_v(&r, false, 7, &nconfigs))
            return false;
        for (int32_t c = 0; c < nconfigs; c++) {
            kslice_t key, value;
            /* name, value, read_only, is_default, is_sensitive */
            if (!kr_string_v(&r, false, &key) || !kr_nullable_string_v(&r, false, &value) ||
                !kr_skip(&r, 3))
                return false;
        }
        char id[16];
        int64_t parsed;
        if (error != 0 || type != RESOURCE_TYPE_BROKER || name.len <= 0 ||
            (size_t)name.len >= sizeof(id))
            continue;
        memcpy(id, name.ptr, (size_t)name.len);
        id[name.len] = '\0';
        if (*self < 0 && cli_parse_int(id, 0, INT32_MAX, &parsed))
            *self = (int32_t)parsed;
    }
    return true;
}

/* Which live broker the connection reaches: the one that describes its
 * own configuration. -1 in *self when none does; false (why says it) when
 * the question got no valid answer. */
static bool ask_self(int fd, const struct cli_raw_metadata *md, int32_t *self, char *why,
                     size_t whylen)
{
    *self = -1;
    if (md->nbrokers == 0)
        return true;
    kwriter_t req;
    kw_init(&req, 64);
    build_describe_brokers(&req, md);
    uint8_t *resp = NULL;
    size_t size = 0;
    bool ok = cli_raw_exchange(fd, req.buf, req.len, 8, HEALTH_MAX_RESPONSE, "DescribeConfigs",
                               &resp, &size, why, whylen);
    if (ok && !cli_decode_describe_configs_self(resp, size, HEALTH_CORRELATION_ID, self)) {
        snprintf(why, whylen, "malformed DescribeConfigs answer");
        ok = false;
    }
    kw_free(&req);
    free(resp);
    return ok;
}

static int health_local(struct cli_globals *g)
{
    /* The first address only: a healthcheck is about this broker. */
    char first[512];
    size_t n = strcspn(g->brokers, ",");
    if (n >= sizeof(first)) {
        cli_error("broker address too long: %s", g->brokers);
        return CLI_EXIT_USAGE;
    }
    memcpy(first, g->brokers, n);
    first[n] = '\0';

    char why[512];
    int fd = cli_connect_bootstrap(first, cli_wait_deadline_ms(g), why, sizeof(why));
    if (fd < 0) {
        cli_error("cannot reach the broker at %s (%s)", first, why);
        return CLI_EXIT_UNREACHABLE;
    }
    struct cli_raw_metadata md;
    int32_t self = -1;
    int code = CLI_EXIT_OK;
    if (!cli_raw_metadata_exchange(fd, NULL, &md, why, sizeof(why))) {
        cli_error("the broker at %s did not answer Metadata: %s", first, why);
        close(fd);
        return CLI_EXIT_UNREACHABLE;
    }
    if (!ask_self(fd, &md, &self, why, sizeof(why))) {
        cli_error("the broker at %s did not say which broker it is: %s", first, why);
        code = CLI_EXIT_UNREACHABLE;
        goto out;
    }

    const char *reasons[2];
    int nreasons = 0;
    if (self < 0)
        reasons[nreasons++] = "not_live";
    if (md.controller_id < 0)
        reasons[nreasons++] = "no_controller";
    if (g->format == CLI_FORMAT_JSON) {
        struct json_writer w;
        json_init(&w, stdout);
        json_begin_object(&w);
        json_reasons(&w, reasons, nreasons);
        json_key(&w, "address");
        json_string(&w, first);
        json_key(&w, "broker_id");
        if (self >= 0)
            json_int(&w, self);
        else
            json_null(&w);
        json_key(&w, "live");
        json_bool(&w, self >= 0);
        json_key(&w, "controller_id");
        json_int(&w, md.controller_id);
        json_end_object(&w);
        json_finish(&w);
    } else {
        printf("%-12s%s\n", "HEALTHY", nreasons == 0 ? "yes" : "no");
        printf("%-12s", "REASONS");
        for (int i = 0; i < nreasons; i++)
            printf("%s%s", i ? " " : "", reasons[i]);
        printf("%s\n", nreasons == 0 ? "-" : "");
        printf("%-12s%s\n", "ADDRESS", first);
        if (self >= 0)
            printf("%-12s%d\n", "BROKER", self);
        else
            printf("%-12s-\n", "BROKER");
        printf("%-12s%s\n", "LIVE", self >= 0 ? "yes" : "no");
        if (md.controller_id >= 0)
            printf("%-12s%d\n", "CONTROLLER", md.controller_id);
        else
            printf("%-12s-\n", "CONTROLLER");
    }
    code = nreasons == 0 ? CLI_EXIT_OK : CLI_EXIT_UNHEALTHY;
out:
    cli_raw_metadata_free(&md);
    close(fd);
    return code;
}

enum { OPT_LOCAL = 0x2100 };

int cli_cmd_cluster_health(int argc, char **argv, struct cli_globals *g)
{
    static const struct option longopts[] = {
        {"local", no_argument, NULL, OPT_LOCAL},
        {NULL, 0, NULL, 0},
    };
    struct cli_parser p;
    cli_parser_init(&p, argc, argv, "", longopts, health_usage, g);
    bool local = false;
    int opt;
    while ((opt = cli_parser_next(&p)) >= 0) {
        if (opt != OPT_LOCAL)
            return CLI_EXIT_USAGE;
        local = true;
    }
    int code;
    if (!cli_no_operand(&p, opt, &code))
        return code;
    return local ? health_local(g) : health_cluster(g);
}
