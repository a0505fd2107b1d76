/* rdkafka_producer: a librdkafka producer driven by the integration tests.
 *
 * Produces COUNT records to one topic; record i has key "key-<i>" and value
 * "value-<i>-" padded with a pattern derived from i to SIZE bytes, so a test
 * can recompute every record from its index. With -v each delivery report
 * becomes one stdout line, flushed at once so that a killed run still leaves
 * every acknowledgement it printed:
 *
 *   ACK <partition> <offset> <i>      delivered (offset -1 with acks=0)
 *   ERR <i> <error name>              failed
 *
 * A summary line goes to stderr. Exit 0 when every record was delivered,
 * 1 when any failed or the flush timed out, 2 on bad arguments. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#define MAX_RECORD_SIZE (1 << 20)

typedef struct producer_stats {
    int64_t delivered;
    int64_t failed;
    int verbose;
} producer_stats_t;

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: rdkafka_producer -b BROKERS -t TOPIC [-n COUNT] [-a ACKS] [-s SIZE]\n"
                 "                        [-p PARTITION] [-z CODEC] [-T FLUSH_SECONDS] [-r "
                 "PER_SECOND] [-v]\n"
                 "                        [-X key=value ...]\n");
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    producer_stats_t *stats = opaque;
    int64_t index = (int64_t)(intptr_t)msg->_private;
    (void)rk;
    if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        stats->delivered++;
        if (stats->verbose)
            printf("ACK %" PRId32 " %" PRId64 " %" PRId64 "\n", msg->partition, msg->offset, index);
    } else {
        stats->failed++;
        if (stats->verbose)
            printf("ERR %" PRId64 " %s\n", index, rd_kafka_err2name(msg->err));
    }
}

/* Record i's value: a prefix naming i, then bytes that depend on i and the
 * position, so that a misplaced or corrupted byte is detected. */
static size_t fill_value(char *buf, size_t size, int64_t i)
{
    int n = snprintf(buf, size + 1, "value-%" PRId64 "-", i);
    size_t len = (size_t)n < size ? size : (size_t)n;
    for (size_t pos = (size_t)n; pos < len; pos++)
        buf[pos] = (char)('a' + (pos * 7 + (size_t)i) % 26);
    return len;
}

static int set_conf(rd_kafka_conf_t *conf, const char *key, const char *value)
{
    char err[256];
    if (rd_kafka_conf_set(conf, key, value, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "rdkafka_producer: %s=%s: %s\n", key, value, err);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *brokers = NULL, *topic = NULL;
    int64_t count = 1000;
    size_t size = 100;
    int32_t partition = RD_KAFKA_PARTITION_UA;
    int flush_seconds = 120;
    long rate = 0; /* records per second; 0: as fast as possible */
    producer_stats_t stats = {0};
    char err[512];
    int opt;

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (set_conf(conf, "acks", "-1") || set_conf(conf, "linger.ms", "5"))
        goto bad_args;
    while ((opt = getopt(argc, argv, "b:t:n:a:s:p:z:T:r:X:vh")) != -1) {
        switch (opt) {
        case 'b':
            brokers = optarg;
            break;
        case 't':
            topic = optarg;
            break;
        case 'n':
            count = strtoll(optarg, NULL, 10);
            break;
        case 'a':
            if (set_conf(conf, "acks", optarg))
                goto bad_args;
            break;
        case 's':
            size = strtoull(optarg, NULL, 10);
            break;
        case 'p':
            partition = (int32_t)strtol(optarg, NULL, 10);
            break;
        case 'z':
            if (set_conf(conf, "compression.codec", optarg))
                goto bad_args;
            break;
        case 'r':
            rate = strtol(optarg, NULL, 10);
            break;
        case 'T':
            flush_seconds = atoi(optarg);
            break;
        case 'X': {
            char *eq = strchr(optarg, '=');
            if (eq == NULL) {
                usage(stderr);
                goto bad_args;
            }
            *eq = '\0';
            if (set_conf(conf, optarg, eq + 1))
                goto bad_args;
            break;
        }
        case 'v':
            stats.verbose = 1;
            break;
        case 'h':
            usage(stdout);
            rd_kafka_conf_destroy(conf);
            return 0;
        default:
            usage(stderr);
            goto bad_args;
        }
    }
    if (brokers == NULL || topic == NULL || count < 0 || size > MAX_RECORD_SIZE) {
        usage(stderr);
        goto bad_args;
    }
    if (set_conf(conf, "bootstrap.servers", brokers))
        goto bad_args;
    rd_kafka_conf_set_opaque(conf, &stats);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    /* Line-buffered: a line is on disk before the next delivery report. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);

    /* rd_kafka_new takes conf only when it succeeds. */
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (rk == NULL) {
        fprintf(stderr, "rdkafka_producer: %s\n", err);
        goto bad_args;
    }
    char *value = malloc(size + 64);
    if (value == NULL)
        abort();

    int64_t produced = 0;
    for (int64_t i = 0; i < count && !stop_requested; i++) {
        char key[32];
        int key_len = snprintf(key, sizeof(key), "key-%" PRId64, i);
        size_t value_len = fill_value(value, size, i);
        for (;;) {
            rd_kafka_resp_err_t e = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, (size_t)key_len),
                RD_KAFKA_V_VALUE(value, value_len), RD_KAFKA_V_OPAQUE((void *)(intptr_t)i),
                RD_KAFKA_V_END);
            if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
                break;
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                fprintf(stderr, "rdkafka_producer: produce %" PRId64 ": %s\n", i,
                        rd_kafka_err2str(e));
                stats.failed++;
                break;
            }
            rd_kafka_poll(rk, 100); /* queue full: serve delivery reports */
            if (stop_requested)
                break;
        }
        produced++;
        rd_kafka_poll(rk, 0);
        if (rate > 0 && produced % 100 == 0) {
            long long ns = 100 * 1000000000LL / rate;
            struct timespec pause = {(time_t)(ns / 1000000000LL), (long)(ns % 1000000000LL)};
            nanosleep(&pause, NULL);
        }
    }

    rd_kafka_resp_err_t flush_err = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int waited = 0; waited < flush_seconds * 10 && !stop_requested; waited++) {
        flush_err = rd_kafka_flush(rk, 100);
        if (flush_err == RD_KAFKA_RESP_ERR_NO_ERROR)
            break;
    }
    int outstanding = rd_kafka_outq_len(rk);
    fprintf(stderr,
            "rdkafka_producer: produced=%" PRId64 " delivered=%" PRId64 " failed=%" PRId64
            " outstanding=%d\n",
            produced, stats.delivered, stats.failed, outstanding);
    free(value);
    rd_kafka_destroy(rk);
    return (stats.failed == 0 && stats.delivered == count &&
            flush_err == RD_KAFKA_RESP_ERR_NO_ERROR)
               ? 0
               : 1;

bad_args:
    rd_kafka_conf_destroy(conf);
    return 2;
}
