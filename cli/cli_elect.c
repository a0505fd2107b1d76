/* vltava cluster elect-leaders: Kafka's ElectLeaders (v1) sent to the
 * controller over the CLI's raw path (librdkafka 2.0.2 has no
 * ElectLeaders API): preferred elections by default, unclean with
 * --unclean; every partition, one topic's, or one partition.
 *
 * Request v1: election_type i8, topic_partitions nullable [topic str,
 * partitions [i32]], timeout_ms i32. Response v1: correlation_id i32,
 * throttle_time_ms i32, error_code i16, results [topic str, partitions
 * [partition i32, error_code i16, error_message nullable str]]. */
#include "cli.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_output.h"
#include "kafka_codec.h"
#include "kafka_errors.h"
#include "xalloc.h"

#define ELECT_CORRELATION_ID 0x656c6374 /* "elct" */
#define ELECT_MAX_RESPONSE   (64 << 20)
#define ELECT_MAX_RESULTS    1000000
/* Kafka's error codes the command names in its output and exit code. */
#define KAFKA_ERR_NOT_CONTROLLER      41
#define KAFKA_ERR_ELECTION_NOT_NEEDED 84
/* Attempts when the controller moved between the Metadata and the request. */
#define ELECT_ATTEMPTS 3

static const char elect_usage[] =
    "Usage: vltava cluster elect-leaders [--unclean] [--topic TOPIC [--partition P]]\n"
    "\n"
    "Asks the controller to elect leaders (Kafka's ElectLeaders): by default\n"
    "each partition's preferred replica (its first), when it is live and in\n"
    "sync; with --unclean, a leader for partitions that have no live leader,\n"
    "from outside the in-sync replicas if none of those is live (records may\n"
    "be lost). Without --topic, every partition: only those that were elected\n"
    "or failed are listed. Exit code 0 when every partition named was elected\n"
    "or needed no election; 4 when one is unknown; 1 for another failure.\n"
    "\n"
    "Options:\n"
    "      --unclean           unclean elections instead of preferred ones\n"
    "  -t, --topic TOPIC       this topic's partitions only\n"
    "  -p, --partition P       this partition of TOPIC only\n"
    "\n"
    "See vltava --help for the global options and exit codes.\n";

/* Builds the v1 request: topic NULL for every partition; partitions NULL
 * for the npartitions given in order 0..n-1 otherwise. */
static void build_request(kwriter_t *w, bool unclean, const char *topic, const int32_t *partitions,
                          int32_t npartitions, int32_t timeout_ms)
{
    assert(topic == NULL || npartitions >= 0);
    size_t size_at = kw_reserve_i32(w);
    kw_i16(w, 43); /* api key: ElectLeaders */
    kw_i16(w, 1);  /* api version */
    kw_i32(w, ELECT_CORRELATION_ID);
    kw_string_v(w, false, "vltava", -1);
    kw_i8(w, unclean ? 1 : 0);
    if (topic == NULL) {
        kw_array_v(w, false, -1);
    } else {
        kw_array_v(w, false, 1);
        kw_string_v(w, false, topic, -1);
        kw_array_v(w, false, npartitions);
        for (int32_t i = 0; i < npartitions; i++)
            kw_i32(w, partitions ? partitions[i] : i);
    }
    kw_i32(w, timeout_ms);
    kw_patch_i32(w, size_at, (int32_t)(w->len - size_at - 4));
}

bool cli_decode_elect_leaders_v1(const uint8_t *frame, size_t len, int32_t correlation_id,
                                 int16_t *top_error, struct cli_election_result **results,
                                 int32_t *nresults)
{
    assert(frame != NULL || len == 0);
    kreader_t r;
    kr_init(&r, frame, len);
    int32_t correlation, throttle, ntopics;
    struct cli_election_result *out = NULL;
    int32_t n = 0, cap = 0;
    *results = NULL;
    *nresults = 0;
    /* A topic entry is at least 2 + 4 bytes. */
    if (!kr_i32(&r, &correlation) || correlation != correlation_id || !kr_i32(&r, &throttle) ||
        !kr_i16(&r, top_error) || !kr_array_v(&r, false, 6, &ntopics) || ntopics < 0)
        return false;
    for (int32_t t = 0; t < ntopics; t++) {
        kslice_t topic;
        int32_t nparts;
        /* A partition entry is at least 4 + 2 + 2 bytes. */
        if (!kr_string_v(&r, false, &topic) || !kr_array_v(&r, false, 8, &nparts) || nparts < 0 ||
            (int64_t)n + nparts > ELECT_MAX_RESULTS)
            goto err;
        if (n + nparts > cap) {
            cap = n + nparts;
            out = xrealloc(out, (size_t)cap * sizeof(*out));
        }
        for (int32_t i = 0; i < nparts; i++) {
            struct cli_election_result *e = &out[n];
            kslice_t message;
            if (!kr_i32(&r, &e->partition) || !kr_i16(&r, &e->error) ||
                !kr_nullable_string_v(&r, false, &message))
                goto err;
            e->topic = kslice_strdup(topic);
            e->message = message.ptr ? kslice_strdup(message) : NULL;
            n++;
        }
    }
    if (kr_remaining(&r) != 0)
        goto err;
    *results = out;
    *nresults = n;
    return true;
err:
    cli_election_results_free(out, n);
    return false;
}

void cli_election_results_free(struct cli_election_result *results, int32_t n)
{
    for (int32_t i = 0; i < n; i++) {
        free(results[i].topic);
        free(results[i].message);
    }
    free(results);
}

static const char *error_name(int16_t code)
{
    return kafka_error_name(code); /* Kafka's names, not librdkafka's */
}

/* What the command reports for one partition: "elected", "not needed", or
 * Kafka's error name. */
static const char *outcome(int16_t code)
{
    if (code == 0)
        return "elected";
    if (code == KAFKA_ERR_ELECTION_NOT_NEEDED)
        return "not needed";
    return error_name(code);
}

static void print_results(const struct cli_globals *g, int32_t controller,
                          const struct cli_election_result *res, int32_t n)
{
    if (g->format == CLI_FORMAT_JSON) {
        struct json_writer w;
        json_init(&w, stdout);
        json_begin_object(&w);
        json_key(&w, "controller_id");
        json_int(&w, controller);
        json_key(&w, "partitions");
        json_begin_array(&w);
        for (int32_t i = 0; i < n; i++) {
            json_begin_object(&w);
            json_key(&w, "topic");
            json_string(&w, res[i].topic);
            json_key(&w, "partition");
            json_int(&w, res[i].partition);
            json_key(&w, "error");
            json_string(&w, res[i].error == 0 ? NULL : error_name(res[i].error));
            json_key(&w, "message");
            json_string(&w, res[i].message);
            json_end_object(&w);
        }
        json_end_array(&w);
        json_end_object(&w);
        json_finish(&w);
        return;
    }
    static const char *const headers[] = {"TOPIC", "PARTITION", "RESULT", "MESSAGE"};
    struct cli_table *t = table_new(4, headers);
    for (int32_t i = 0; i < n; i++) {
        table_row(t);
        table_cell(t, "%s", res[i].topic);
        table_cell(t, "%d", res[i].partition);
        table_cell(t, "%s", outcome(res[i].error));
        table_cell(t, "%s", res[i].message ? res[i].message : "-");
    }
    table_print(t, stdout);
    table_free(t);
}

/* The exit code for the answers: OK when each was elected or needed no
 * election, else the first failure's (cli_exit_for_error). */
static int exit_for_results(const struct cli_election_result *res, int32_t n)
{
    for (int32_t i = 0; i < n; i++)
        if (res[i].error != 0 && res[i].error != KAFKA_ERR_ELECTION_NOT_NEEDED)
            return cli_exit_for_error((rd_kafka_resp_err_t)res[i].error);
    return CLI_EXIT_OK;
}

static bool all_not_controller(const struct cli_election_result *res, int32_t n)
{
    for (int32_t i = 0; i < n; i++)
        if (res[i].error != KAFKA_ERR_NOT_CONTROLLER)
            return false;
    return n > 0;
}

/* The partitions of topic (0..n-1), or -1 after printing why. */
static int32_t topic_partitions(const struct cli_globals *g, const char *topic, int *code)
{
    struct cli_raw_metadata md;
    char why[512];
    if (!cli_raw_metadata_fetch(g, topic, &md, why, sizeof(why))) {
        cli_error("cannot read the metadata of %s: %s", topic, why);
        *code = CLI_EXIT_UNREACHABLE;
        return -1;
    }
    int32_t n = md.has_topic && md.topic_error == 0 ? md.npartitions : -1;
    cli_raw_metadata_free(&md);
    if (n < 0) {
        cli_error("unknown topic %s", topic);
        *code = CLI_EXIT_UNKNOWN_TOPIC;
    }
    return n;
}

/* The request's TimeoutMs: what is left of the phase, less a margin, so
 * that the controller's answer (REQUEST_TIMED_OUT for what it did not see
 * through) arrives before the connection's own deadline. */
static int32_t server_timeout_ms(const struct cli_globals *g)
{
    int left = cli_wait_ms(g);
    assert(left >= 1);
    return left > 2000 ? left - 1000 : left / 2 + 1;
}

static int elect(const struct cli_globals *g, bool unclean, const char *topic, int64_t partition)
{
    int32_t one = (int32_t)partition, npartitions = 0;
    int code = CLI_EXIT_OK;
    if (topic != NULL && partition < 0) {
        npartitions = topic_partitions(g, topic, &code);
        if (npartitions < 0)
            return code;
    } else if (topic != NULL) {
        npartitions = 1;
    }
    struct cli_election_result *res = NULL;
    int32_t nres = 0, controller = -1;
    for (int attempt = 0; attempt < ELECT_ATTEMPTS; attempt++) {
        cli_election_results_free(res, nres);
        res = NULL;
        nres = 0;
        kwriter_t req;
        kw_init(&req, 64);
        build_request(&req, unclean, topic, partition >= 0 ? &one : NULL, npartitions,
                      server_timeout_ms(g));
        uint8_t *frame = NULL;
        size_t len = 0;
        char why[512];
        bool sent =
            cli_raw_controller_exchange(g, req.buf, req.len, 14, ELECT_MAX_RESPONSE, "ElectLeaders",
                                        &frame, &len, &controller, why, sizeof(why));
        kw_free(&req);
        if (!sent) {
            cli_error("cannot elect leaders: %s", why);
            return CLI_EXIT_UNREACHABLE;
        }
        int16_t top_error = 0;
        bool ok =
            cli_decode_elect_leaders_v1(frame, len, ELECT_CORRELATION_ID, &top_error, &res, &nres);
        free(frame);
        if (!ok) {
            cli_error("malformed ElectLeaders answer from broker %d", controller);
            return CLI_EXIT_ERROR;
        }
        if (top_error != 0) {
            cli_error("the controller refused the election: %s", error_name(top_error));
            cli_election_results_free(res, nres);
            return cli_exit_for_error((rd_kafka_resp_err_t)top_error);
        }
        if (!all_not_controller(res, nres))
            break; /* else the controller moved since the Metadata: ask the new one */
    }
    print_results(g, controller, res, nres);
    code = exit_for_results(res, nres);
    cli_election_results_free(res, nres);
    return code;
}

enum { OPT_UNCLEAN = 0x2200 };

int cli_cmd_cluster_elect_leaders(int argc, char **argv, struct cli_globals *g)
{
    static const struct option longopts[] = {
        {"unclean", no_argument, NULL, OPT_UNCLEAN},
        {"topic", required_argument, NULL, 't'},
        {"partition", required_argument, NULL, 'p'},
        {NULL, 0, NULL, 0},
    };
    struct cli_parser p;
    cli_parser_init(&p, argc, argv, "t:p:", longopts, elect_usage, g);
    bool unclean = false;
    const char *topic = NULL;
    int64_t partition = -1;
    int opt;
    while ((opt = cli_parser_next(&p)) >= 0) {
        switch (opt) {
        case OPT_UNCLEAN:
            unclean = true;
            break;
        case 't':
            topic = optarg;
            break;
        case 'p':
            if (!cli_parse_partition(&p, optarg, &partition))
                return CLI_EXIT_USAGE;
            break;
        default:
            return CLI_EXIT_USAGE;
        }
    }
    int code;
    if (!cli_no_operand(&p, opt, &code))
        return code;
    if (topic != NULL && !cli_topic_name_valid(topic)) {
        cli_usage_error(elect_usage, "invalid topic name '%s'", topic);
        return CLI_EXIT_USAGE;
    }
    if (partition >= 0 && topic == NULL) {
        cli_usage_error(elect_usage, "--partition needs --topic");
        return CLI_EXIT_USAGE;
    }
    return elect(g, unclean, topic, partition);
}
