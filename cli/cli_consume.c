/* vltava consume TOPIC: prints records, kcat style.
 *
 * Uses librdkafka's legacy simple consumer (rd_kafka_consume_start_queue):
 * in 2.0.2 the high-level assign() requires a group.id, and a console
 * consumer has no business joining a group or committing offsets. */
#include "cli.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_output.h"
#include "xalloc.h"

static const char consume_usage[] =
    "Usage: vltava consume TOPIC [-o beginning|end|OFFSET|-N] [-n COUNT]\n"
    "                            [-p PARTITION] [-e] [-f FORMAT]\n"
    "\n"
    "Prints records of every partition (or one) of TOPIC, without a consumer\n"
    "group. Runs until COUNT records, the end of the partitions (-e), or\n"
    "SIGINT/SIGTERM.\n"
    "\n"
    "  -o, --offset WHERE   beginning (default), end, an absolute OFFSET, or -N\n"
    "                       for the last N records of each partition\n"
    "  -n, --count COUNT    stop after COUNT records\n"
    "  -p, --partition N    only partition N\n"
    "  -e, --exit           stop once every partition reached its end\n"
    "  -f, --fmt FORMAT     text output per record (default '%s\\n'):\n"
    "                       %t topic  %p partition  %o offset  %T timestamp (ms)\n"
    "                       %k key  %K key length  %s value  %S value length\n"
    "                       %% percent  \\n newline  \\t tab  \\\\ backslash\n"
    "\n"
    "With --format json each record is one JSON object per line with the keys\n"
    "topic, partition, offset, timestamp, key, value (key and value are null\n"
    "when absent). Exits 4 if the topic or partition is unknown.\n"
    "Global options: see vltava --help.\n";

#define CONSUME_BATCH 512

static volatile sig_atomic_t consume_stop;

static void on_stop_signal(int sig)
{
    (void)sig;
    consume_stop = 1;
}

/* Parses -o; returns false on a bad value. */
static bool parse_start_offset(const char *text, int64_t *offset)
{
    int64_t v;
    if (strcmp(text, "beginning") == 0)
        *offset = RD_KAFKA_OFFSET_BEGINNING;
    else if (strcmp(text, "end") == 0)
        *offset = RD_KAFKA_OFFSET_END;
    else if (text[0] == '-' && cli_parse_int(text + 1, 1, INT32_MAX, &v))
        *offset = RD_KAFKA_OFFSET_TAIL(v);
    else if (text[0] != '-' && cli_parse_int(text, 0, INT64_MAX, &v))
        *offset = v;
    else
        return false;
    return true;
}

struct consume_opts {
    int64_t start;
    int64_t count;     /* 0: unlimited */
    int64_t partition; /* -1: all */
    bool exit_at_end;
    struct record_format fmt;
};

/* The consume loop proper; rk and rkt belong to the caller. */
static int consume_loop(rd_kafka_t *rk, rd_kafka_topic_t *rkt, const char *topic,
                        const int32_t *parts, int nparts, const struct consume_opts *o,
                        const struct cli_globals *g)
{
    assert(nparts > 0);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    int started = 0;
    int code = CLI_EXIT_OK;
    for (; started < nparts; started++) {
        if (rd_kafka_consume_start_queue(rkt, parts[started], o->start, q) < 0) {
            cli_error("cannot start consuming %s [%d]: %s", topic, parts[started],
                      rd_kafka_err2str(rd_kafka_last_error()));
            code = CLI_EXIT_ERROR;
            break;
        }
    }
    bool *at_end = xcalloc((size_t)nparts, sizeof(bool));
    int parts_at_end = 0;
    int64_t printed = 0;
    rd_kafka_message_t *batch[CONSUME_BATCH];
    while (code == CLI_EXIT_OK && !consume_stop && (o->count == 0 || printed < o->count) &&
           !(o->exit_at_end && parts_at_end == nparts)) {
        ssize_t n = rd_kafka_consume_batch_queue(q, 200, batch, CONSUME_BATCH);
        if (n < 0) {
            cli_error("consume: %s", rd_kafka_err2str(rd_kafka_last_error()));
            code = CLI_EXIT_ERROR;
            break;
        }
        for (ssize_t i = 0; i < n; i++) {
            rd_kafka_message_t *m = batch[i];
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                for (int k = 0; k < nparts; k++)
                    if (parts[k] == m->partition && !at_end[k]) {
                        at_end[k] = true;
                        parts_at_end++;
                    }
            } else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
                cli_error("consume %s [%d]: %s", topic, m->partition, rd_kafka_message_errstr(m));
                if (code == CLI_EXIT_OK)
                    code = cli_exit_for_error(m->err) == CLI_EXIT_UNKNOWN_TOPIC
                               ? CLI_EXIT_UNKNOWN_TOPIC
                               : CLI_EXIT_ERROR;
            } else if (code == CLI_EXIT_OK && (o->count == 0 || printed < o->count)) {
                if (g->format == CLI_FORMAT_JSON)
                    record_print_json(stdout, m, topic);
                else
                    record_print_text(stdout, &o->fmt, m, topic);
                printed++;
            }
            rd_kafka_message_destroy(m);
        }
        if (fflush(stdout) != 0) {
            /* EPIPE: the reader went away; that ends a console consumer. */
            if (errno != EPIPE) {
                cli_error("writing stdout: %s", strerror(errno));
                code = CLI_EXIT_ERROR;
            }
            break;
        }
    }
    for (int i = 0; i < started; i++)
        rd_kafka_consume_stop(rkt, parts[i]);
    free(at_end);
    rd_kafka_queue_destroy(q);
    return code;
}

int cli_cmd_consume(int argc, char **argv, struct cli_globals *g)
{
    static const struct option longopts[] = {
        {"offset", required_argument, NULL, 'o'},    {"count", required_argument, NULL, 'n'},
        {"partition", required_argument, NULL, 'p'}, {"exit", no_argument, NULL, 'e'},
        {"fmt", required_argument, NULL, 'f'},       {NULL, 0, NULL, 0},
    };
    struct cli_parser p;
    cli_parser_init(&p, argc, argv, "o:n:p:ef:", longopts, consume_usage, g);
    struct consume_opts o = {.start = RD_KAFKA_OFFSET_BEGINNING, .partition = -1};
    const char *fmt_spec = NULL;
    int opt;
    while ((opt = cli_parser_next(&p)) >= 0) {
        switch (opt) {
        case 'o':
            if (!parse_start_offset(optarg, &o.start)) {
                cli_usage_error(consume_usage,
                                "-o wants beginning, end, an offset >= 0 or -N, got '%s'", optarg);
                return CLI_EXIT_USAGE;
            }
            break;
        case 'n':
            if (!cli_parse_int(optarg, 1, INT64_MAX, &o.count)) {
                cli_usage_error(consume_usage, "-n wants a count > 0, got '%s'", optarg);
                return CLI_EXIT_USAGE;
            }
            break;
        case 'p':
            if (!cli_parse_partition(&p, optarg, &o.partition))
                return CLI_EXIT_USAGE;
            break;
        case 'e':
            o.exit_at_end = true;
            break;
        case 'f':
            fmt_spec = optarg;
            break;
        default:
            return CLI_EXIT_USAGE;
        }
    }
    int code;
    const char *topic = cli_topic_operand(&p, opt, "TOPIC", "", &code);
    if (topic == NULL)
        return code;
    if (fmt_spec != NULL && g->format == CLI_FORMAT_JSON) {
        cli_usage_error(consume_usage, "-f FORMAT and --format json exclude each other");
        return CLI_EXIT_USAGE;
    }
    char fmt_err[128];
    if (!record_format_compile(fmt_spec != NULL ? fmt_spec : "%s\\n", &o.fmt, fmt_err,
                               sizeof(fmt_err))) {
        cli_usage_error(consume_usage, "-f: %s", fmt_err);
        return CLI_EXIT_USAGE;
    }

    code = cli_check_reachable(g);
    if (code != CLI_EXIT_OK) {
        record_format_free(&o.fmt);
        return code;
    }
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk = NULL;
    if (cli_conf_set(conf, "enable.partition.eof", "true"))
        rk = cli_kafka_new(g, RD_KAFKA_CONSUMER, conf);
    else
        rd_kafka_conf_destroy(conf);
    if (rk == NULL) {
        record_format_free(&o.fmt);
        return CLI_EXIT_ERROR;
    }
    const struct rd_kafka_metadata *md = NULL;
    code = cli_fetch_metadata(rk, g, topic, &md);
    if (code != CLI_EXIT_OK) {
        rd_kafka_destroy(rk);
        record_format_free(&o.fmt);
        return code;
    }
    const rd_kafka_metadata_topic_t *mt = &md->topics[0];
    int32_t *parts = xcalloc((size_t)mt->partition_cnt + 1, sizeof(int32_t));
    int nparts = 0;
    for (int i = 0; i < mt->partition_cnt; i++)
        if (o.partition < 0 || mt->partitions[i].id == o.partition)
            parts[nparts++] = mt->partitions[i].id;
    rd_kafka_metadata_destroy(md);
    if (nparts == 0) {
        if (o.partition >= 0)
            cli_error("topic '%s' has no partition %lld", topic, (long long)o.partition);
        else
            cli_error("topic '%s' has no partitions", topic);
        code = CLI_EXIT_UNKNOWN_TOPIC;
    } else {
        consume_stop = 0;
        struct sigaction sa = {.sa_handler = on_stop_signal};
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        assert(rkt != NULL);
        code = consume_loop(rk, rkt, topic, parts, nparts, &o, g);
        rd_kafka_topic_destroy(rkt);
    }
    free(parts);
    record_format_free(&o.fmt);
    rd_kafka_destroy(rk);
    return code;
}
