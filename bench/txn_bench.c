/* txn_bench: what idempotence and transactions cost a producer, on
 * librdkafka, against the same cluster in the same run.
 *
 * Three kinds of producer each send N records of S bytes to one topic,
 * one producer at a time, flat out, acks=all:
 *   plain        enable.idempotence=false;
 *   idempotent   enable.idempotence=true (InitProducerId, sequences);
 *   transactional  a transactional.id; records sent in transactions of
 *                T records each (begin, T produce calls, commit), one
 *                transaction at a time, as an application committing
 *                every T records does.
 * Each kind runs ROUNDS times, alternated (plain, idempotent, transactional,
 * then the reverse order, ...), on a fresh producer each round; a round's
 * rate is N over the time from its first produce call to its last
 * acknowledgement (for transactions: to its last commit's return). The
 * best round of each kind is reported, with the ratios to plain, and the
 * commit latency (the time rd_kafka_commit_transaction takes: flushing the
 * transaction's records, EndTxn, the markers) over every transaction of
 * every round: p50, p99, max. The reference is plain: the same client,
 * topic and settings without idempotence. */
#include <assert.h>
#include <getopt.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_rdk.h"
#include "xalloc.h"

#define MAX_RECORDS     100000000LL
#define MAX_RECORD_SIZE (1000 * 1000)
#define MAX_ROUNDS      20
#define TXN_TIMEOUT_MS  60000

enum kind { PLAIN, IDEMPOTENT, TRANSACTIONAL, NKINDS };
static const char *const kind_names[NKINDS] = {"plain", "idempotent", "transactional"};

struct options {
    const char *bootstrap;
    char topic[256];
    int64_t records;
    int size;
    int per_txn;
    int rounds;
    int partitions;
    int rf;
    int timeout_s;
};

static const char usage[] =
    "Usage: txn_bench [OPTIONS]\n"
    "  -b, --bootstrap HOST:PORT   brokers (default $VLTAVA_BROKERS or 127.0.0.1:9092)\n"
    "  -t, --topic NAME            topic (default txn-bench-<pid>, created)\n"
    "  -n, --records N             records per round (default 1000000)\n"
    "  -s, --size BYTES            record value size (default 100)\n"
    "  -T, --per-txn N             records per transaction (default 100)\n"
    "  -r, --rounds N              rounds of each kind (default 3)\n"
    "  -P, --partitions N          partitions when creating the topic (default 1)\n"
    "  -R, --replication N         replication factor when creating it (default 1)\n"
    "      --timeout SECONDS       bound on each round (default 300)\n";

static void quiet_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    if (level <= 3)
        fprintf(stderr, "txn_bench: librdkafka %s: %s\n", fac, buf);
}

static int64_t parse_int(const char *s, int64_t min, int64_t max, const char *what)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*end != '\0' || v < min || v > max)
        bench_die("%s wants %" PRId64 "..%" PRId64, what, min, max);
    return v;
}

static void parse_options(int argc, char **argv, struct options *o)
{
    enum { OPT_TIMEOUT = 256 };
    static const struct option longopts[] = {
        {"bootstrap", required_argument, NULL, 'b'},
        {"topic", required_argument, NULL, 't'},
        {"records", required_argument, NULL, 'n'},
        {"size", required_argument, NULL, 's'},
        {"per-txn", required_argument, NULL, 'T'},
        {"rounds", required_argument, NULL, 'r'},
        {"partitions", required_argument, NULL, 'P'},
        {"replication", required_argument, NULL, 'R'},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *env = getenv("VLTAVA_BROKERS");
    *o = (struct options){
        .bootstrap = env != NULL && *env ? env : "127.0.0.1:9092",
        .records = 1000000,
        .size = 100,
        .per_txn = 100,
        .rounds = 3,
        .partitions = 1,
        .rf = 1,
        .timeout_s = 300,
    };
    snprintf(o->topic, sizeof(o->topic), "txn-bench-%d", (int)getpid());
    int c;
    while ((c = getopt_long(argc, argv, "b:t:n:s:T:r:P:R:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'b':
            o->bootstrap = optarg;
            break;
        case 't':
            snprintf(o->topic, sizeof(o->topic), "%s", optarg);
            break;
        case 'n':
            o->records = parse_int(optarg, 1, MAX_RECORDS, "--records");
            break;
        case 's':
            o->size = (int)parse_int(optarg, 1, MAX_RECORD_SIZE, "--size");
            break;
        case 'T':
            o->per_txn = (int)parse_int(optarg, 1, 1000000, "--per-txn");
            break;
        case 'r':
            o->rounds = (int)parse_int(optarg, 1, MAX_ROUNDS, "--rounds");
            break;
        case 'P':
            o->partitions = (int)parse_int(optarg, 1, 1024, "--partitions");
            break;
        case 'R':
            o->rf = (int)parse_int(optarg, 1, 16, "--replication");
            break;
        case OPT_TIMEOUT:
            o->timeout_s = (int)parse_int(optarg, 1, 86400, "--timeout");
            break;
        case 'h':
            fputs(usage, stdout);
            exit(0);
        default:
            fputs(usage, stderr);
            exit(2);
        }
    }
}

static rd_kafka_t *producer_new(const struct options *o, enum kind kind, int round,
                                struct bench_deliveries *dr)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    bench_conf_set(conf, "acks", "all");
    bench_conf_set(conf, "linger.ms", "5");
    bench_conf_set(conf, "batch.num.messages", "10000");
    bench_conf_set(conf, "batch.size", "1000000");
    bench_conf_set(conf, "queue.buffering.max.kbytes", "32768");
    bench_conf_set(conf, "enable.idempotence", kind == PLAIN ? "false" : "true");
    if (kind == TRANSACTIONAL) {
        char id[128];
        snprintf(id, sizeof(id), "txn-bench-%d-%d", (int)getpid(), round);
        bench_conf_set(conf, "transactional.id", id);
        bench_conf_set(conf, "transaction.timeout.ms", "60000");
    }
    rd_kafka_conf_set_dr_msg_cb(conf, bench_on_delivery);
    rd_kafka_conf_set_opaque(conf, dr);
    return bench_client_new(o->bootstrap, kind_names[kind], RD_KAFKA_PRODUCER, conf, quiet_log);
}

static void produce_one(rd_kafka_t *rk, const struct options *o, const char *payload)
{
    for (;;) {
        rd_kafka_resp_err_t err =
            rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(o->topic),
                              RD_KAFKA_V_VALUE((void *)payload, (size_t)o->size), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
            return;
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            bench_die("produce: %s", rd_kafka_err2str(err));
        rd_kafka_poll(rk, 10);
    }
}

static void txn_check(rd_kafka_error_t *error, const char *what)
{
    if (error == NULL)
        return;
    bench_die("%s: %s", what, rd_kafka_error_string(error));
}

/* One round: records/s. Commit latencies (ns) are appended to lat. */
static double run_round(const struct options *o, enum kind kind, int round, int64_t *lat,
                        int64_t *nlat)
{
    struct bench_deliveries dr = {0};
    rd_kafka_t *rk = producer_new(o, kind, round, &dr);
    char *payload = xmalloc((size_t)o->size);
    memset(payload, 'x', (size_t)o->size);
    if (kind == TRANSACTIONAL)
        txn_check(rd_kafka_init_transactions(rk, TXN_TIMEOUT_MS), "init_transactions");
    int64_t start = bench_now_ns();
    int64_t deadline = start + (int64_t)o->timeout_s * 1000000000LL;
    if (kind == TRANSACTIONAL) {
        for (int64_t sent = 0; sent < o->records;) {
            txn_check(rd_kafka_begin_transaction(rk), "begin_transaction");
            for (int i = 0; i < o->per_txn && sent < o->records; i++, sent++)
                produce_one(rk, o, payload);
            int64_t t0 = bench_now_ns();
            txn_check(rd_kafka_commit_transaction(rk, TXN_TIMEOUT_MS), "commit_transaction");
            lat[(*nlat)++] = bench_now_ns() - t0;
            if (bench_now_ns() > deadline)
                bench_die("%s round over %d s", kind_names[kind], o->timeout_s);
        }
    } else {
        for (int64_t sent = 0; sent < o->records; sent++) {
            produce_one(rk, o, payload);
            if ((sent & 1023) == 0)
                rd_kafka_poll(rk, 0);
        }
        while (rd_kafka_flush(rk, 1000) != RD_KAFKA_RESP_ERR_NO_ERROR)
            if (bench_now_ns() > deadline)
                bench_die("%s round over %d s", kind_names[kind], o->timeout_s);
    }
    double seconds = (double)(bench_now_ns() - start) / 1e9;
    rd_kafka_flush(rk, 10000);
    if (atomic_load(&dr.failed) > 0)
        bench_die("%s: %lld deliveries failed: %s", kind_names[kind],
                  (long long)atomic_load(&dr.failed), rd_kafka_err2str(dr.first_error));
    if (atomic_load(&dr.acked) != o->records)
        bench_die("%s: %lld of %" PRId64 " acknowledged", kind_names[kind],
                  (long long)atomic_load(&dr.acked), o->records);
    rd_kafka_destroy(rk);
    free(payload);
    return (double)o->records / seconds;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static double percentile_ms(const int64_t *sorted, int64_t n, double p)
{
    assert(n > 0);
    int64_t i = (int64_t)(p * (double)(n - 1) + 0.5);
    return (double)sorted[i] / 1e6;
}

int main(int argc, char **argv)
{
    struct options o;
    parse_options(argc, argv, &o);
    printf("txn_bench: %s topic %s: %" PRId64 " records x %d bytes per round, %d rounds per kind, "
           "%d records per transaction, acks=all, %d partition(s), RF %d\n",
           o.bootstrap, o.topic, o.records, o.size, o.rounds, o.per_txn, o.partitions, o.rf);
    fflush(stdout);
    {
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_t *admin =
            bench_client_new(o.bootstrap, "txn-bench-admin", RD_KAFKA_PRODUCER, conf, quiet_log);
        bench_topic_create(admin, o.topic, o.partitions, o.rf, true, o.timeout_s);
        rd_kafka_destroy(admin);
    }
    int64_t max_txns = o.rounds * (o.records / o.per_txn + 1);
    int64_t *lat = xmalloc((size_t)max_txns * sizeof(*lat));
    int64_t nlat = 0;
    double best[NKINDS] = {0};
    for (int round = 0; round < o.rounds; round++) {
        for (int k = 0; k < NKINDS; k++) {
            enum kind kind = round % 2 == 0 ? (enum kind)k : (enum kind)(NKINDS - 1 - k);
            double rps = run_round(&o, kind, round, lat, &nlat);
            printf("round %d %-13s %10.0f records/s  %7.1f MB/s\n", round + 1, kind_names[kind],
                   rps, rps * o.size / 1e6);
            fflush(stdout);
            if (rps > best[kind])
                best[kind] = rps;
        }
    }
    assert(nlat > 0 && nlat <= max_txns);
    qsort(lat, (size_t)nlat, sizeof(*lat), cmp_i64);
    double p50 = percentile_ms(lat, nlat, 0.50), p99 = percentile_ms(lat, nlat, 0.99);
    double max = (double)lat[nlat - 1] / 1e6;
    printf(
        "best: plain %.0f/s, idempotent %.0f/s (%.2fx plain), transactional %.0f/s (%.2fx plain)\n",
        best[PLAIN], best[IDEMPOTENT], best[IDEMPOTENT] / best[PLAIN], best[TRANSACTIONAL],
        best[TRANSACTIONAL] / best[PLAIN]);
    printf("commit latency over %" PRId64 " transactions of %d records: p50 %.2f ms, p99 %.2f ms, "
           "max %.2f ms\n",
           nlat, o.per_txn, p50, p99, max);
    printf("RESULT size=%d per_txn=%d plain_rps=%.0f idempotent_rps=%.0f transactional_rps=%.0f "
           "idempotent_ratio=%.3f transactional_ratio=%.3f commit_p50_ms=%.2f commit_p99_ms=%.2f\n",
           o.size, o.per_txn, best[PLAIN], best[IDEMPOTENT], best[TRANSACTIONAL],
           best[IDEMPOTENT] / best[PLAIN], best[TRANSACTIONAL] / best[PLAIN], p50, p99);
    free(lat);
    return 0;
}
