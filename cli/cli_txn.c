/* vltava txn list|describe: transactions, as Kafka's kafka-transactions.sh
 * shows them.
 *
 * librdkafka 2.0.2 (Debian's, which the CLI links) has no admin API for
 * ListTransactions or DescribeTransactions (nor do later librdkafka
 * releases), so the CLI speaks the requests itself over a plain socket,
 * encoded and decoded with the project's codec (broker/kafka/kafka_codec.h,
 * bounded reads): `list` sends ListTransactions v0 to every broker (each
 * lists the transactional ids it coordinates) and merges the answers, as
 * Kafka's admin client does; `describe` finds the id's coordinator with
 * FindCoordinator v1 (key type 1) and asks it DescribeTransactions v0,
 * retrying while the coordinator moves or loads. The broker list comes from
 * librdkafka's metadata. */
#include "cli.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "cli_output.h"
#include "kafka_codec.h"
#include "kafka_errors.h"
#include "xalloc.h"

#define API_FIND_COORDINATOR        10
#define API_DESCRIBE_TRANSACTIONS   65
#define API_LIST_TRANSACTIONS       66
#define COORDINATOR_KEY_TRANSACTION 1
/* What a misbehaving peer can make us allocate: a listing of the most
 * transactional ids one broker coordinates (200,000) at ~1 KiB each fits. */
#define TXN_MAX_RESPONSE (256 << 20)
/* Between retries while a coordinator moves or loads. */
#define TXN_RETRY_MS 100
/* Kafka's transactional ids are protocol strings. */
#define TXN_MAX_ID_LEN 32767

static const char txn_usage[] =
    "Usage: vltava txn SUBCOMMAND [ARGS] [OPTIONS]\n"
    "\n"
    "Transactions of transactional producers (transactional.id).\n"
    "\n"
    "Subcommands:\n"
    "  list\n"
    "  describe TRANSACTIONAL_ID\n"
    "\n"
    "See vltava txn SUBCOMMAND --help, and vltava --help for the global\n"
    "options and exit codes.\n";

static const char list_usage[] =
    "Usage: vltava txn list\n"
    "\n"
    "Lists the transactional ids the cluster knows, with their producer id, their\n"
    "transaction's state (Empty, Ongoing, PrepareCommit, PrepareAbort,\n"
    "CompleteCommit, CompleteAbort) and the broker coordinating them.\n"
    "Global options: see vltava --help.\n";

static const char describe_usage[] =
    "Usage: vltava txn describe TRANSACTIONAL_ID\n"
    "\n"
    "Shows a transactional id's coordinator, state, producer id and epoch,\n"
    "transaction timeout, when its current transaction started and the\n"
    "partitions in it (while it commits or aborts: those still waiting for\n"
    "their marker).\n"
    "Exits 8 if the transactional id is unknown. Global options: see vltava --help.\n";

/* ---- one request over a socket ---- */

/* A connection to host:port, or -1 with the reason in why. */
static int connect_to(const char *host, int port, int64_t deadline_ms, char *why, size_t whylen)
{
    char addr[300];
    snprintf(addr, sizeof(addr), strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    return cli_connect_bootstrap(addr, deadline_ms, why, whylen);
}

/* Sends one request (header v1, or v2 when flexible) with `body` and
 * reads its answer: *resp (heap, the caller frees) holds the response body
 * after the header, *len its size. False with the reason in why. */
static bool call(int fd, int16_t key, int16_t version, bool flexible, const kwriter_t *body,
                 uint8_t **resp, size_t *len, char *why, size_t whylen)
{
    static int32_t correlation = 0x76747800; /* "vtx" */
    const int32_t cid = ++correlation;
    kwriter_t w;
    kw_init(&w, 64 + body->len);
    size_t size_at = kw_reserve_i32(&w);
    kw_i16(&w, key);
    kw_i16(&w, version);
    kw_i32(&w, cid);
    kw_string_v(&w, false, "vltava", -1); /* client id: classic even in header v2 */
    kw_tags_v(&w, flexible);
    kw_raw(&w, body->buf, body->len);
    kw_patch_i32(&w, size_at, (int32_t)(w.len - size_at - 4));
    uint8_t *frame = NULL;
    size_t size = 0;
    bool ok = false;
    if (!cli_raw_exchange(fd, w.buf, w.len, 4, TXN_MAX_RESPONSE, "transaction", &frame, &size, why,
                          whylen))
        goto out;
    kreader_t r;
    kr_init(&r, frame, size);
    int32_t got;
    kr_i32(&r, &got);
    kr_tags_v(&r, flexible);
    if (!kr_ok(&r) || got != cid) {
        snprintf(why, whylen, "malformed answer header");
        goto out;
    }
    *len = kr_remaining(&r);
    *resp = xmalloc(*len ? *len : 1);
    memcpy(*resp, frame + r.pos, *len);
    ok = true;
out:
    free(frame);
    kw_free(&w);
    return ok;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static bool retriable(int16_t error)
{
    return error == KAFKA_COORDINATOR_LOAD_IN_PROGRESS ||
           error == KAFKA_COORDINATOR_NOT_AVAILABLE || error == KAFKA_NOT_COORDINATOR;
}

/* ---- txn list ---- */

struct listing {
    char *id;
    int64_t producer_id;
    char *state;
    int32_t coordinator;
};

static int cmp_listing(const void *a, const void *b)
{
    return strcmp(((const struct listing *)a)->id, ((const struct listing *)b)->id);
}

/* Decodes a ListTransactions v0 body into *out (appended); the error code
 * in *error. False when malformed. */
static bool decode_list(const uint8_t *p, size_t len, int32_t broker, int16_t *error,
                        struct listing **out, size_t *n)
{
    kreader_t r;
    int32_t throttle, nunknown, count;
    kslice_t s;
    kr_init(&r, p, len);
    kr_i32(&r, &throttle);
    kr_i16(&r, error);
    if (!kr_array_v(&r, true, 1, &nunknown) || nunknown < 0)
        return false;
    for (int32_t i = 0; i < nunknown; i++)
        kr_string_v(&r, true, &s);
    /* An entry: two compact strings, an int64 and a tag section. */
    if (!kr_array_v(&r, true, 11, &count) || count < 0)
        return false;
    size_t at = *n;
    *out = xrealloc(*out, (at + (size_t)count + 1) * sizeof(**out));
    for (int32_t i = 0; i < count; i++) {
        kslice_t id, state;
        int64_t pid = -1;
        kr_string_v(&r, true, &id);
        kr_i64(&r, &pid);
        kr_string_v(&r, true, &state);
        kr_tags_v(&r, true);
        if (!kr_ok(&r))
            break;
        (*out)[at++] = (struct listing){.id = kslice_strdup(id),
                                        .producer_id = pid,
                                        .state = kslice_strdup(state),
                                        .coordinator = broker};
    }
    kr_tags_v(&r, true);
    bool ok = kr_ok(&r) && kr_remaining(&r) == 0;
    if (!ok) {
        for (size_t i = *n; i < at; i++) {
            free((*out)[i].id);
            free((*out)[i].state);
        }
        return false;
    }
    *n = at;
    return true;
}

/* Lists what one broker coordinates, retrying while it loads. False with
 * the reason in why. */
static bool list_broker(const struct rd_kafka_metadata_broker *b, int64_t deadline_ms,
                        struct listing **out, size_t *n, char *why, size_t whylen)
{
    kwriter_t body;
    kw_init(&body, 8);
    kw_array_v(&body, true, 0); /* state filters: none */
    kw_array_v(&body, true, 0); /* producer id filters: none */
    kw_tags_v(&body, true);
    bool ok = false;
    for (;;) {
        int fd = connect_to(b->host, b->port, deadline_ms, why, whylen);
        if (fd < 0)
            break;
        uint8_t *resp = NULL;
        size_t len = 0;
        int16_t error = KAFKA_UNKNOWN_SERVER_ERROR;
        bool answered = call(fd, API_LIST_TRANSACTIONS, 0, true, &body, &resp, &len, why, whylen);
        close(fd);
        if (answered && !decode_list(resp, len, b->id, &error, out, n)) {
            snprintf(why, whylen, "malformed ListTransactions answer");
            answered = false;
        }
        free(resp);
        if (!answered)
            break;
        if (error == KAFKA_NONE) {
            ok = true;
            break;
        }
        snprintf(why, whylen, "%s", kafka_error_name(error));
        if (!retriable(error) || cli_now_ms() + TXN_RETRY_MS > deadline_ms)
            break;
        sleep_ms(TXN_RETRY_MS);
    }
    kw_free(&body);
    return ok;
}

static int txn_list_run(int argc, char **argv, struct cli_globals *g)
{
    struct cli_parser p;
    cli_parser_init(&p, argc, argv, "", NULL, list_usage, g);
    int code;
    if (!cli_no_operand(&p, cli_parser_next(&p), &code))
        return code;
    if ((code = cli_check_reachable(g)) != CLI_EXIT_OK)
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
    const int64_t deadline = cli_wait_deadline_ms(g);
    struct listing *all = NULL;
    size_t n = 0;
    int failed = 0;
    for (int i = 0; i < md->broker_cnt; i++) {
        char why[256];
        if (!list_broker(&md->brokers[i], deadline, &all, &n, why, sizeof(why))) {
            cli_warn("the listing is incomplete: broker %d: %s", (int)md->brokers[i].id, why);
            failed++;
        }
    }
    const bool none = md->broker_cnt > 0 && failed == md->broker_cnt;
    rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
    if (none) {
        free(all);
        cli_error("cannot list transactions: no broker answered");
        return CLI_EXIT_UNREACHABLE;
    }
    if (n > 0)
        qsort(all, n, sizeof(*all), cmp_listing);
    if (g->format == CLI_FORMAT_JSON) {
        struct json_writer w;
        json_init(&w, stdout);
        json_begin_array(&w);
        for (size_t i = 0; i < n; i++) {
            json_begin_object(&w);
            json_key(&w, "transactional_id");
            json_string(&w, all[i].id);
            json_key(&w, "producer_id");
            json_int(&w, all[i].producer_id);
            json_key(&w, "state");
            json_string(&w, all[i].state);
            json_key(&w, "coordinator");
            json_int(&w, all[i].coordinator);
            json_end_object(&w);
        }
        json_end_array(&w);
        json_finish(&w);
    } else {
        static const char *const headers[] = {"TRANSACTIONAL ID", "PRODUCER ID", "STATE",
                                              "COORDINATOR"};
        struct cli_table *t = table_new(4, headers);
        for (size_t i = 0; i < n; i++) {
            table_row(t);
            table_cell(t, "%s", all[i].id);
            table_cell(t, "%lld", (long long)all[i].producer_id);
            table_cell(t, "%s", all[i].state);
            table_cell(t, "%d", (int)all[i].coordinator);
        }
        table_print(t, stdout);
        table_free(t);
    }
    for (size_t i = 0; i < n; i++) {
        free(all[i].id);
        free(all[i].state);
    }
    free(all);
    return failed == 0 ? CLI_EXIT_OK : CLI_EXIT_ERROR;
}

/* ---- txn describe ---- */

struct coordinator_node {
    int32_t id;
    char *host;
    int32_t port;
};

/* FindCoordinator v1 for a transactional id through the bootstrap
 * brokers: NONE with *node, or the answer's error (-1: no answer, the
 * reason in why). */
static int16_t find_coordinator(const struct cli_globals *g, const char *id, int64_t deadline_ms,
                                struct coordinator_node *node, char *why, size_t whylen)
{
    int fd = cli_connect_bootstrap(g->brokers, deadline_ms, why, whylen);
    if (fd < 0)
        return -1;
    kwriter_t body;
    kw_init(&body, 32);
    kw_string_v(&body, false, id, -1);
    kw_i8(&body, COORDINATOR_KEY_TRANSACTION);
    uint8_t *resp = NULL;
    size_t len = 0;
    int16_t error = -1;
    if (call(fd, API_FIND_COORDINATOR, 1, false, &body, &resp, &len, why, whylen)) {
        kreader_t r;
        int32_t throttle;
        kslice_t message, host;
        kr_init(&r, resp, len);
        kr_i32(&r, &throttle);
        kr_i16(&r, &error);
        kr_nullable_string_v(&r, false, &message);
        kr_i32(&r, &node->id);
        kr_string_v(&r, false, &host);
        kr_i32(&r, &node->port);
        if (!kr_ok(&r) || kr_remaining(&r) != 0) {
            snprintf(why, whylen, "malformed FindCoordinator answer");
            error = -1;
        } else if (error == KAFKA_NONE) {
            node->host = kslice_strdup(host);
        } else {
            snprintf(why, whylen, "%s", kafka_error_name(error));
        }
    }
    free(resp);
    kw_free(&body);
    close(fd);
    return error;
}

struct txn_partition {
    char *topic;
    int32_t partition;
};

struct description {
    int16_t error;
    char *state;
    int32_t timeout_ms;
    int64_t start_ms;
    int64_t producer_id;
    int16_t producer_epoch;
    struct txn_partition *partitions;
    size_t npartitions;
};

static void description_free(struct description *d)
{
    for (size_t i = 0; i < d->npartitions; i++)
        free(d->partitions[i].topic);
    free(d->partitions);
    free(d->state);
    memset(d, 0, sizeof(*d));
}

/* Decodes a DescribeTransactions v0 body answering for exactly one id. */
static bool decode_describe(const uint8_t *p, size_t len, struct description *d)
{
    kreader_t r;
    int32_t throttle, count, ntopics;
    kslice_t id, state;
    memset(d, 0, sizeof(*d));
    kr_init(&r, p, len);
    kr_i32(&r, &throttle);
    if (!kr_array_v(&r, true, 1, &count) || count != 1)
        return false;
    kr_i16(&r, &d->error);
    kr_string_v(&r, true, &id);
    kr_string_v(&r, true, &state);
    kr_i32(&r, &d->timeout_ms);
    kr_i64(&r, &d->start_ms);
    kr_i64(&r, &d->producer_id);
    kr_i16(&r, &d->producer_epoch);
    /* A topic: a compact string, a compact array and a tag section. */
    if (!kr_array_v(&r, true, 3, &ntopics) || ntopics < 0)
        return false;
    d->state = kslice_strdup(state);
    for (int32_t t = 0; t < ntopics; t++) {
        kslice_t topic;
        int32_t n;
        kr_string_v(&r, true, &topic);
        if (!kr_array_v(&r, true, 4, &n) || n < 0)
            break;
        d->partitions =
            xrealloc(d->partitions, (d->npartitions + (size_t)n + 1) * sizeof(*d->partitions));
        for (int32_t i = 0; i < n; i++) {
            int32_t partition;
            kr_i32(&r, &partition);
            d->partitions[d->npartitions++] =
                (struct txn_partition){.topic = kslice_strdup(topic), .partition = partition};
        }
        kr_tags_v(&r, true);
    }
    kr_tags_v(&r, true); /* the state's */
    kr_tags_v(&r, true); /* the response's */
    if (kr_ok(&r) && kr_remaining(&r) == 0)
        return true;
    description_free(d);
    return false;
}

/* DescribeTransactions v0 for id at node: false with the reason in why when
 * there was no (well-formed) answer. */
static bool describe_at(const struct coordinator_node *node, const char *id, int64_t deadline_ms,
                        struct description *d, char *why, size_t whylen)
{
    int fd = connect_to(node->host, node->port, deadline_ms, why, whylen);
    if (fd < 0)
        return false;
    kwriter_t body;
    kw_init(&body, 32);
    kw_array_v(&body, true, 1);
    kw_string_v(&body, true, id, -1);
    kw_tags_v(&body, true);
    uint8_t *resp = NULL;
    size_t len = 0;
    bool ok = call(fd, API_DESCRIBE_TRANSACTIONS, 0, true, &body, &resp, &len, why, whylen);
    close(fd);
    kw_free(&body);
    if (ok && !decode_describe(resp, len, d)) {
        snprintf(why, whylen, "malformed DescribeTransactions answer");
        ok = false;
    }
    free(resp);
    return ok;
}

static void print_description(const struct cli_globals *g, const char *id,
                              const struct coordinator_node *node, const struct description *d)
{
    if (g->format == CLI_FORMAT_JSON) {
        struct json_writer w;
        json_init(&w, stdout);
        json_begin_object(&w);
        json_key(&w, "transactional_id");
        json_string(&w, id);
        json_key(&w, "coordinator");
        json_begin_object(&w);
        json_key(&w, "id");
        json_int(&w, node->id);
        json_key(&w, "host");
        json_string(&w, node->host);
        json_key(&w, "port");
        json_int(&w, node->port);
        json_end_object(&w);
        json_key(&w, "state");
        json_string(&w, d->state);
        json_key(&w, "producer_id");
        json_int(&w, d->producer_id);
        json_key(&w, "producer_epoch");
        json_int(&w, d->producer_epoch);
        json_key(&w, "timeout_ms");
        json_int(&w, d->timeout_ms);
        json_key(&w, "start_time_ms");
        json_offset(&w, d->start_ms);
        json_key(&w, "partitions");
        json_begin_array(&w);
        for (size_t i = 0; i < d->npartitions; i++) {
            json_begin_object(&w);
            json_key(&w, "topic");
            json_string(&w, d->partitions[i].topic);
            json_key(&w, "partition");
            json_int(&w, d->partitions[i].partition);
            json_end_object(&w);
        }
        json_end_array(&w);
        json_end_object(&w);
        json_finish(&w);
        return;
    }
    printf("TRANSACTIONAL ID  %s\n", id);
    printf("COORDINATOR       %d (%s:%d)\n", (int)node->id, node->host, (int)node->port);
    printf("STATE             %s\n", d->state);
    printf("PRODUCER ID       %lld\n", (long long)d->producer_id);
    printf("PRODUCER EPOCH    %d\n", (int)d->producer_epoch);
    printf("TIMEOUT MS        %d\n", (int)d->timeout_ms);
    if (d->start_ms >= 0)
        printf("STARTED MS        %lld\n", (long long)d->start_ms);
    else
        printf("STARTED MS        -\n");
    printf("PARTITIONS        %zu\n", d->npartitions);
    if (d->npartitions == 0)
        return;
    printf("\n");
    static const char *const headers[] = {"TOPIC", "PARTITION"};
    struct cli_table *t = table_new(2, headers);
    for (size_t i = 0; i < d->npartitions; i++) {
        table_row(t);
        table_cell(t, "%s", d->partitions[i].topic);
        table_cell(t, "%d", (int)d->partitions[i].partition);
    }
    table_print(t, stdout);
    table_free(t);
}

static int txn_describe_run(int argc, char **argv, struct cli_globals *g)
{
    struct cli_parser p;
    cli_parser_init(&p, argc, argv, "", NULL, describe_usage, g);
    int code;
    const char *id = cli_operand(&p, cli_parser_next(&p), "TRANSACTIONAL_ID", &code);
    if (id == NULL)
        return code;
    if (id[0] == '\0' || strlen(id) > TXN_MAX_ID_LEN) {
        cli_usage_error(describe_usage, "invalid transactional id '%s'", id);
        return CLI_EXIT_USAGE;
    }
    if ((code = cli_check_reachable(g)) != CLI_EXIT_OK)
        return code;
    const int64_t deadline = cli_wait_deadline_ms(g);
    char why[256] = "no answer";
    for (;;) {
        struct coordinator_node node = {0};
        int16_t error = find_coordinator(g, id, deadline, &node, why, sizeof(why));
        struct description d = {0};
        if (error == KAFKA_NONE && describe_at(&node, id, deadline, &d, why, sizeof(why))) {
            error = d.error;
            if (error == KAFKA_NONE)
                print_description(g, id, &node, &d);
            else
                snprintf(why, sizeof(why), "%s", kafka_error_name(error));
        } else if (error == KAFKA_NONE) {
            error = -1; /* no answer from the coordinator: find it again */
        }
        description_free(&d);
        free(node.host);
        if (error == KAFKA_NONE)
            return CLI_EXIT_OK;
        if (error == KAFKA_TRANSACTIONAL_ID_NOT_FOUND) {
            cli_error("unknown transactional id '%s'", id);
            return CLI_EXIT_UNKNOWN_TXN;
        }
        if ((error != -1 && !retriable(error)) || cli_now_ms() + TXN_RETRY_MS > deadline) {
            cli_error("cannot describe transactional id '%s': %s", id, why);
            /* -1: no broker answered in time. */
            return error == -1 ? CLI_EXIT_UNREACHABLE : CLI_EXIT_ERROR;
        }
        sleep_ms(TXN_RETRY_MS);
    }
}

int cli_cmd_txn(int argc, char **argv, struct cli_globals *g)
{
    static const struct cli_subcommand subs[] = {
        {"list", txn_list_run},
        {"describe", txn_describe_run},
    };
    return cli_run_subcommand(argc, argv, g, txn_usage, subs, sizeof(subs) / sizeof(subs[0]));
}
