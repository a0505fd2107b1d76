/* vltava produce TOPIC: one record per stdin line. */
#include "cli.h"

#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_output.h"

static const char produce_usage[] =
    "Usage: vltava produce TOPIC [-k SEP] [--acks 0|1|all] [-p PARTITION]\n"
    "\n"
    "Produces one record per line read from stdin (the newline is not part of\n"
    "the record) and waits until the cluster acknowledged every one.\n"
    "\n"
    "  -k, --key-separator SEP  split each line at the first SEP into key and\n"
    "                           value; a line without SEP has no key\n"
    "      --acks 0|1|all       acknowledgement the producer waits for\n"
    "                           (default all; -1 means all)\n"
    "  -p, --partition N        produce to partition N (default: by key hash,\n"
    "                           keyless records spread by the client)\n"
    "\n"
    "Prints how many records were produced. Exits 4 if the topic or partition\n"
    "is unknown. Global options: see vltava --help.\n";

/* A stdin line longer than this is refused: Kafka's default
 * max.message.bytes is about 1 MB, and the bound keeps memory finite. */
#define MAX_LINE_BYTES (1000 * 1000)

static volatile sig_atomic_t produce_stop;

static void on_stop_signal(int sig)
{
    (void)sig;
    produce_stop = 1;
}

struct delivery_stats {
    int64_t delivered;
    int64_t failed;
    rd_kafka_resp_err_t first_error;
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    (void)rk;
    struct delivery_stats *st = opaque;
    assert(st != NULL);
    if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        st->delivered++;
        return;
    }
    if (st->failed == 0)
        st->first_error = msg->err;
    st->failed++;
}

/* Hands one record to librdkafka, serving delivery reports while its queue
 * is full. Returns the error librdkafka refused the record with. */
static rd_kafka_resp_err_t produce_one(rd_kafka_t *rk, const char *topic, int32_t partition,
                                       const char *key, size_t keylen, const char *value,
                                       size_t valuelen)
{
    for (;;) {
        rd_kafka_resp_err_t err =
            rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, keylen),
                              RD_KAFKA_V_VALUE((void *)value, valuelen), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            return err;
        rd_kafka_poll(rk, 100);
    }
}

int cli_cmd_produce(int argc, char **argv, struct cli_globals *g)
{
    enum { OPT_ACKS = 0x2000 };
    static const struct option longopts[] = {
        {"key-separator", required_argument, NULL, 'k'},
        {"acks", required_argument, NULL, OPT_ACKS},
        {"partition", required_argument, NULL, 'p'},
        {NULL, 0, NULL, 0},
    };
    struct cli_parser p;
    cli_parser_init(&p, argc, argv, "k:p:", longopts, produce_usage, g);
    const char *key_sep = NULL;
    const char *acks = "all";
    int64_t partition = RD_KAFKA_PARTITION_UA;
    int opt;
    while ((opt = cli_parser_next(&p)) >= 0) {
        switch (opt) {
        case 'k':
            if (*optarg == '\0') {
                cli_usage_error(produce_usage, "-k wants a non-empty separator");
                return CLI_EXIT_USAGE;
            }
            key_sep = optarg;
            break;
        case OPT_ACKS:
            if (strcmp(optarg, "0") == 0 || strcmp(optarg, "1") == 0)
                acks = optarg;
            else if (strcmp(optarg, "all") == 0 || strcmp(optarg, "-1") == 0)
                acks = "all";
            else {
                cli_usage_error(produce_usage, "--acks wants 0, 1 or all, got '%s'", optarg);
                return CLI_EXIT_USAGE;
            }
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
    const char *topic = cli_topic_operand(&p, opt, "TOPIC", "", &code);
    if (topic == NULL)
        return code;

    code = cli_check_reachable(g);
    if (code != CLI_EXIT_OK)
        return code;
    struct delivery_stats stats = {0};
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char timeout[32];
    snprintf(timeout, sizeof(timeout), "%d", g->timeout_ms);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, &stats);
    if (!cli_conf_set(conf, "acks", acks) || !cli_conf_set(conf, "linger.ms", "5") ||
        !cli_conf_set(conf, "message.timeout.ms", timeout)) {
        rd_kafka_conf_destroy(conf);
        return CLI_EXIT_ERROR;
    }
    rd_kafka_t *rk = cli_kafka_new(g, RD_KAFKA_PRODUCER, conf);
    if (rk == NULL)
        return CLI_EXIT_ERROR;

    /* Refuse an unknown topic or partition before reading any input. */
    const struct rd_kafka_metadata *md = NULL;
    code = cli_fetch_metadata(rk, g, topic, &md);
    if (code != CLI_EXIT_OK) {
        rd_kafka_destroy(rk);
        return code;
    }
    int partitions = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    if (partition != RD_KAFKA_PARTITION_UA && partition >= partitions) {
        cli_error("topic '%s' has no partition %lld (it has %d)", topic, (long long)partition,
                  partitions);
        rd_kafka_destroy(rk);
        return CLI_EXIT_UNKNOWN_TOPIC;
    }

    /* Reading stdin takes as long as the user's input does; message.timeout.ms
     * bounds each record's delivery meanwhile. */
    cli_phase_end();
    produce_stop = 0;
    struct sigaction sa = {.sa_handler = on_stop_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    char *line = NULL;
    size_t cap = 0;
    int64_t lines = 0, refused = 0;
    size_t sep_len = key_sep != NULL ? strlen(key_sep) : 0;
    code = CLI_EXIT_OK;
    while (!produce_stop) {
        errno = 0;
        ssize_t n = getline(&line, &cap, stdin);
        if (n < 0) {
            if (errno != 0 && errno != EINTR) {
                cli_error("reading stdin: %s", strerror(errno));
                code = CLI_EXIT_ERROR;
            }
            break;
        }
        lines++;
        size_t len = (size_t)n;
        if (len > 0 && line[len - 1] == '\n')
            len--;
        if (len > MAX_LINE_BYTES) {
            cli_error("line %lld is %zu bytes, over the %d byte limit", (long long)lines, len,
                      MAX_LINE_BYTES);
            code = CLI_EXIT_ERROR;
            break;
        }
        const char *key = NULL, *value = line;
        size_t keylen = 0, valuelen = len;
        if (key_sep != NULL) {
            char *sep = memmem(line, len, key_sep, sep_len);
            if (sep != NULL) {
                key = line;
                keylen = (size_t)(sep - line);
                value = sep + sep_len;
                valuelen = len - keylen - sep_len;
            }
        }
        rd_kafka_resp_err_t err =
            produce_one(rk, topic, (int32_t)partition, key, keylen, value, valuelen);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            cli_error("record on line %lld refused: %s", (long long)lines, rd_kafka_err2str(err));
            refused++;
            code = cli_exit_for_error(err);
            break;
        }
        rd_kafka_poll(rk, 0);
    }
    free(line);

    /* The closing phase: the last deliveries within --timeout. */
    cli_phase_begin(g);
    rd_kafka_resp_err_t ferr = rd_kafka_flush(rk, cli_wait_ms(g));
    int64_t pending = rd_kafka_outq_len(rk);
    if (ferr != RD_KAFKA_RESP_ERR_NO_ERROR && pending > 0) {
        cli_error("%lld records still unacknowledged within --timeout %.1f s", (long long)pending,
                  g->timeout_ms / 1000.0);
        if (code == CLI_EXIT_OK)
            code = CLI_EXIT_UNREACHABLE;
    }
    if (stats.failed > 0) {
        cli_error("%lld of %lld records failed; first error: %s", (long long)stats.failed,
                  (long long)(stats.failed + stats.delivered), rd_kafka_err2str(stats.first_error));
        if (code == CLI_EXIT_OK)
            code = cli_exit_for_error(stats.first_error);
        if (code == CLI_EXIT_OK)
            code = CLI_EXIT_ERROR;
    }

    if (g->format == CLI_FORMAT_JSON) {
        struct json_writer w;
        json_init(&w, stdout);
        json_begin_object(&w);
        json_key(&w, "topic");
        json_string(&w, topic);
        json_key(&w, "produced");
        json_int(&w, stats.delivered);
        json_key(&w, "failed");
        json_int(&w, stats.failed + refused);
        json_end_object(&w);
        json_finish(&w);
    } else {
        printf("Produced %lld records to %s\n", (long long)stats.delivered, topic);
    }
    rd_kafka_destroy(rk);
    return code;
}
