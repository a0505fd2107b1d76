/* txn_bench: what idempotence and transactions cost a producer, on
 * librdkafka, against the same cluster in the same run.
 *
 * Four kinds of producer each send N records of S bytes to one topic,
 * acks=all:
 *   plain          enable.idempotence=false, flat out;
 *   idempotent     enable.idempotence=true (InitProducerId, sequences),
 *                  flat out;
 *   flushed        idempotent, waiting for every T records to be
 *                  acknowledged (rd_kafka_flush) before sending more: the
 *                  loop of an application that commits every T records,
 *                  without the transaction;
 *   transactional  a transactional.id, records sent in transactions of T
 *                  records each (begin, T produce calls, commit), one
 *                  transaction at a time per producer.
 * flushed and transactional run --producers producers at once (each on its
 * own thread, with its own share of N), as an application with that many
 * tasks does; plain and idempotent use one producer.
 * Each kind runs ROUNDS times, alternated (in order, then the reverse
 * order, ...), on fresh producers each round; a round's rate is N over the
 * time from its first produce call to its last acknowledgement (or last
 * commit's return). The best round of each kind is reported, with the
 * ratios, and the commit latency (the time rd_kafka_commit_transaction
 * takes: flushing the transaction's records, EndTxn) over every
 * transaction of every round: p50, p99, max. */
#include <assert.h>
#include <getopt.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
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

#define MAX_PRODUCERS 64

enum kind { PLAIN, IDEMPOTENT, FLUSHED, TRANSACTIONAL, NKINDS };
static const char *const kind_names[NKINDS] = {"plain", "idempotent", "flushed", "transactional"};

struct options {
    const char *bootstrap;
    char topic[256];
    int64_t records;
    int size;
    int per_txn;
    int rounds;
    int partitions;
    int rf;
    int producers;
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
    "  -p, --producers N           flushed and transactional producers at once (default 1)\n"
    "      --timeout SECONDS       bound on each round (default 300)\n";

/* Errors only, unless TXN_BENCH_DEBUG asked for librdkafka's debug log. */
static void quiet_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    const char *debug = getenv("TXN_BENCH_DEBUG");
    if (level <= 3 || (debug != NULL && *debug))
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
        {"producers", required_argument, NULL, 'p'},
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
        .producers = 1,
        .timeout_s = 300,
    };
    snprintf(o->topic, sizeof(o->topic), "txn-bench-%d", (int)getpid());
    int c;
    while ((c = getopt_long(argc, argv, "b:t:n:s:T:r:P:R:p:h", longopts, NULL)) != -1) {
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
        case 'p':
            o->producers = (int)parse_int(optarg, 1, MAX_PRODUCERS, "--producers");
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

static rd_kafka_t *producer_new(const struct options *o, enum kind kind, int round, int index,
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
        snprintf(id, sizeof(id), "txn-bench-%d-%d-%d", (int)getpid(), round, index);
        bench_conf_set(conf, "transactional.id", id);
        bench_conf_set(conf, "transaction.timeout.ms", "60000");
    }
    const char *debug = getenv("TXN_BENCH_DEBUG"); /* e.g. eos,protocol: librdkafka's contexts */
    if (debug != NULL && *debug)
        bench_conf_set(conf, "debug", debug);
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

/* One producer's share of a round, on its own thread for the kinds that
 * run several. */
struct worker {
    pthread_t thread;
    const struct options *o;
    enum kind kind;
    int round, index;
    int64_t records;
    int64_t *lat; /* commit latencies (ns), room for records / per_txn + 1 */
    int64_t nlat;
    rd_kafka_t *rk;
    struct bench_deliveries dr;
};

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    const struct options *o = w->o;
    char *payload = xmalloc((size_t)o->size);
    memset(payload, 'x', (size_t)o->size);
    int64_t deadline = bench_now_ns() + (int64_t)o->timeout_s * 1000000000LL;
    if (w->kind == TRANSACTIONAL || w->kind == FLUSHED) {
        for (int64_t sent = 0; sent < w->records;) {
            bool txn = w->kind == TRANSACTIONAL;
            if (txn)
                txn_check(rd_kafka_begin_transaction(w->rk), "begin_transaction");
            for (int i = 0; i < o->per_txn && sent < w->records; i++, sent++)
                produce_one(w->rk, o, payload);
            int64_t t0 = bench_now_ns();
            if (txn)
                txn_check(rd_kafka_commit_transaction(w->rk, TXN_TIMEOUT_MS), "commit_transaction");
            else if (rd_kafka_flush(w->rk, TXN_TIMEOUT_MS) != RD_KAFKA_RESP_ERR_NO_ERROR)
                bench_die("flush: timed out");
            w->lat[w->nlat++] = bench_now_ns() - t0;
            if (bench_now_ns() > deadline)
                bench_die("%s round over %d s", kind_names[w->kind], o->timeout_s);
        }
    } else {
        for (int64_t sent = 0; sent < w->records; sent++) {
            produce_one(w->rk, o, payload);
            if ((sent & 1023) == 0)
                rd_kafka_poll(w->rk, 0);
        }
        while (rd_kafka_flush(w->rk, 1000) != RD_KAFKA_RESP_ERR_NO_ERROR)
            if (bench_now_ns() > deadline)
                bench_die("%s round over %d s", kind_names[w->kind], o->timeout_s);
    }
    free(payload);
    return NULL;
}

/* One round: records/s. Transactions' commit latencies (ns) are appended
 * to lat. */
static double run_round(const struct options *o, enum kind kind, int round, int64_t *lat,
                        int64_t *nlat)
{
    int n = kind == FLUSHED || kind == TRANSACTIONAL ? o->producers : 1;
    struct worker *workers = xcalloc((size_t)n, sizeof(*workers));
    for (int i = 0; i < n; i++) {
        struct worker *w = &workers[i];
        w->o = o;
        w->kind = kind;
        w->round = round;
        w->index = i;
        w->records = o->records / n + (i < o->records % n ? 1 : 0);
        w->lat = xmalloc((size_t)(w->records / o->per_txn + 1) * sizeof(*w->lat));
        w->rk = producer_new(o, kind, round, i, &w->dr);
        if (kind == TRANSACTIONAL)
            txn_check(rd_kafka_init_transactions(w->rk, TXN_TIMEOUT_MS), "init_transactions");
    }
    int64_t start = bench_now_ns();
    for (int i = 0; i < n; i++)
        if (pthread_create(&workers[i].thread, NULL, worker_run, &workers[i]) != 0)
            bench_die("pthread_create failed");
    for (int i = 0; i < n; i++)
        pthread_join(workers[i].thread, NULL);
    double seconds = (double)(bench_now_ns() - start) / 1e9;
    for (int i = 0; i < n; i++) {
        struct worker *w = &workers[i];
        rd_kafka_flush(w->rk, 10000);
        if (atomic_load(&w->dr.failed) > 0)
            bench_die("%s: %lld deliveries failed: %s", kind_names[kind],
                      (long long)atomic_load(&w->dr.failed), rd_kafka_err2str(w->dr.first_error));
        if (atomic_load(&w->dr.acked) != w->records)
            bench_die("%s: %lld of %" PRId64 " acknowledged", kind_names[kind],
                      (long long)atomic_load(&w->dr.acked), w->records);
        if (kind == TRANSACTIONAL) {
            memcpy(lat + *nlat, w->lat, (size_t)w->nlat * sizeof(*lat));
            *nlat += w->nlat;
        }
        rd_kafka_destroy(w->rk);
        free(w->lat);
    }
    free(workers);
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
    int64_t max_txns = o.rounds * (o.records / o.per_txn + o.producers);
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
    printf("best: plain %.0f/s, idempotent %.0f/s (%.2fx plain); with %d producer(s) committing "
           "every %d records: flushed %.0f/s, transactional %.0f/s (%.2fx flushed, %.2fx plain)\n",
           best[PLAIN], best[IDEMPOTENT], best[IDEMPOTENT] / best[PLAIN], o.producers, o.per_txn,
           best[FLUSHED], best[TRANSACTIONAL], best[TRANSACTIONAL] / best[FLUSHED],
           best[TRANSACTIONAL] / best[PLAIN]);
    printf("commit latency over %" PRId64 " transactions of %d records: p50 %.2f ms, p99 %.2f ms, "
           "max %.2f ms\n",
           nlat, o.per_txn, p50, p99, max);
    printf("RESULT size=%d per_txn=%d producers=%d plain_rps=%.0f idempotent_rps=%.0f "
           "flushed_rps=%.0f transactional_rps=%.0f idempotent_ratio=%.3f "
           "transactional_to_flushed=%.3f transactional_to_plain=%.3f commit_p50_ms=%.2f "
           "commit_p99_ms=%.2f\n",
           o.size, o.per_txn, o.producers, best[PLAIN], best[IDEMPOTENT], best[FLUSHED],
           best[TRANSACTIONAL], best[IDEMPOTENT] / best[PLAIN], best[TRANSACTIONAL] / best[FLUSHED],
           best[TRANSACTIONAL] / best[PLAIN], p50, p99);
    free(lat);
    return 0;
}
