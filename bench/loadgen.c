/* loadgen: producer/consumer load against a Kafka-compatible cluster, on
 * librdkafka.
 *
 * One run:
 *   1. creates the topic (if absent) and waits for its leaders;
 *   2. measures the hardware reference: the same number of bytes through a
 *      plain TCP socket pair over 127.0.0.1;
 *   3. produces N records of S bytes as fast as librdkafka takes them, while
 *      a concurrent consumer reads them back and measures end-to-end
 *      latency from the send timestamp each record carries;
 *   4. consumes the N records again from the start with a fresh consumer.
 * It prints records/s and MB/s for both phases (with the ratio to the
 * loopback figure), latency percentiles, and one RESULT line for scripts.
 *
 * MB here is 10^6 bytes; payload bytes only (no keys, no protocol framing). */
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_rdk.h"
#include "xalloc.h"

#define MAX_RECORDS     100000000LL
#define MAX_RECORD_SIZE (1000 * 1000)
#define MIN_RECORD_SIZE 8 /* the send timestamp */
#define MAX_PARTITIONS  1024
#define CONSUME_BATCH   4096
#define LOOPBACK_CHUNK  (64 * 1024)
#define LOOPBACK_ROUNDS 3

struct options {
    const char *bootstrap;
    char topic[256];
    int64_t records;
    int size;
    const char *acks;
    const char *linger_ms;
    const char *batch_size;
    const char *batch_num;
    const char *compression;
    const char *queue_kbytes;   /* queue.buffering.max.kbytes */
    const char *queue_messages; /* queue.buffering.max.messages */
    int64_t rate;               /* records/s to pace the producer at; 0: flat out */
    int partitions;
    int timeout_s;   /* bound on each phase */
    bool latency;    /* run the concurrent latency consumer */
    bool idempotent; /* enable.idempotence (acks=all, sequence numbers) */
};

static const char usage[] =
    "Usage: loadgen [OPTIONS]\n"
    "  -b, --bootstrap HOST:PORT   brokers (default $VLTAVA_BROKERS or 127.0.0.1:9092)\n"
    "  -t, --topic NAME            topic (default loadgen-<pid>-<time>, created)\n"
    "  -n, --records N             records to produce (default 1000000)\n"
    "  -s, --size BYTES            record value size, >= 8 (default 100)\n"
    "      --acks 0|1|all          (default 1)\n"
    "      --linger-ms MS          producer linger.ms (default 5)\n"
    "      --batch-size BYTES      producer batch.size (default 1000000)\n"
    "      --batch-num N           producer batch.num.messages (default 10000)\n"
    "      --compression CODEC     none|gzip|snappy|lz4|zstd (default none)\n"
    "      --queue-kbytes KB       producer buffer, queue.buffering.max.kbytes\n"
    "                              (default 32768: Java's buffer.memory of 32 MB)\n"
    "      --queue-messages N      queue.buffering.max.messages (default 100000)\n"
    "      --rate R                pace the producer at R records/s (default: flat out)\n"
    "  -P, --partitions N          partitions when creating the topic (default 1)\n"
    "      --timeout SECONDS       bound on each phase (default 300)\n"
    "      --no-latency            skip the concurrent latency consumer\n"
    "      --idempotent            enable.idempotence=true (needs --acks all)\n";

static void quiet_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    if (level <= 3) /* errors only: the run's figures are the output */
        fprintf(stderr, "librdkafka %s: %s\n", fac, buf);
}

static rd_kafka_t *client_new(const struct options *o, rd_kafka_type_t type, rd_kafka_conf_t *conf)
{
    return bench_client_new(o->bootstrap, "vltava-loadgen", type, conf, quiet_log);
}

/* ---- Topic setup ---- */

/* Creates the topic unless it exists, then waits until every partition has
 * a leader; returns the partition count. */
static int topic_prepare(const struct options *o)
{
    rd_kafka_t *rk = client_new(o, RD_KAFKA_PRODUCER, rd_kafka_conf_new());
    int partitions = bench_topic_create(rk, o->topic, o->partitions, 1, true, o->timeout_s);
    rd_kafka_destroy(rk);
    if (partitions > MAX_PARTITIONS)
        bench_die("topic %s has %d partitions, more than %d", o->topic, partitions, MAX_PARTITIONS);
    return partitions;
}

/* High watermark of every partition: where this run's records start. */
static void start_offsets(const struct options *o, int partitions, int64_t *offsets)
{
    rd_kafka_t *rk = client_new(o, RD_KAFKA_CONSUMER, rd_kafka_conf_new());
    for (int p = 0; p < partitions; p++) {
        int64_t lo, hi;
        rd_kafka_resp_err_t err =
            rd_kafka_query_watermark_offsets(rk, o->topic, p, &lo, &hi, o->timeout_s * 1000);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
            bench_die("watermarks of %s [%d]: %s", o->topic, p, rd_kafka_err2str(err));
        offsets[p] = hi;
    }
    rd_kafka_destroy(rk);
}

/* ---- Hardware reference: loopback TCP ---- */

struct loopback_sink {
    int listen_fd;
    int64_t expect;
    int64_t received;
};

static void *loopback_sink_run(void *arg)
{
    struct loopback_sink *s = arg;
    int fd = accept(s->listen_fd, NULL, NULL);
    if (fd < 0)
        return NULL;
    char *buf = xcalloc(1, 4 * LOOPBACK_CHUNK);
    while (s->received < s->expect) {
        ssize_t n = read(fd, buf, 4 * LOOPBACK_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        s->received += n;
    }
    free(buf);
    close(fd);
    return NULL;
}

/* Sends total bytes through a TCP connection over 127.0.0.1 to a reader
 * thread; returns MB/s. */
static double loopback_mbps(int64_t total)
{
    assert(total > 0);
    struct loopback_sink sink = {.expect = total};
    sink.listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(addr);
    if (sink.listen_fd < 0 || bind(sink.listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
        listen(sink.listen_fd, 1) < 0 ||
        getsockname(sink.listen_fd, (struct sockaddr *)&addr, &len) < 0)
        bench_die("loopback listener: %s", strerror(errno));
    pthread_t reader;
    if (pthread_create(&reader, NULL, loopback_sink_run, &sink) != 0)
        bench_die("pthread_create failed");
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
        bench_die("loopback connect: %s", strerror(errno));
    char *chunk = xcalloc(1, LOOPBACK_CHUNK);
    memset(chunk, 'x', LOOPBACK_CHUNK);
    int64_t start = bench_now_ns();
    int64_t sent = 0;
    while (sent < total) {
        size_t want = (size_t)(total - sent < LOOPBACK_CHUNK ? total - sent : LOOPBACK_CHUNK);
        ssize_t n = write(fd, chunk, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            bench_die("loopback write: %s", strerror(errno));
        sent += n;
    }
    shutdown(fd, SHUT_WR);
    pthread_join(reader, NULL);
    int64_t elapsed = bench_now_ns() - start;
    close(fd);
    close(sink.listen_fd);
    free(chunk);
    if (sink.received != total)
        bench_die("loopback: received %" PRId64 " of %" PRId64 " bytes", sink.received, total);
    return (double)total / 1e6 / ((double)elapsed / 1e9);
}

/* ---- Consumers ---- */

struct consumer_run {
    const struct options *o;
    int partitions;
    const int64_t *offsets; /* where this run's records start, per partition */
    int64_t want;           /* records to read */
    int64_t deadline_ns;
    /* results */
    int64_t got;
    int64_t bytes;
    int64_t first_ns, last_ns;
    int32_t *latency_us; /* NULL: no latency sampling; else `want` slots */
    int64_t samples;
    int64_t errors;
    atomic_llong progress; /* `got`, published per batch for other threads */
};

static void consumer_run(struct consumer_run *c)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    bench_conf_set(conf, "fetch.wait.max.ms", "10");
    bench_conf_set(conf, "queued.min.messages", "1000000");
    rd_kafka_t *rk = client_new(c->o, RD_KAFKA_CONSUMER, conf);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, c->o->topic, NULL);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    for (int p = 0; p < c->partitions; p++)
        if (rd_kafka_consume_start_queue(rkt, p, c->offsets[p], q) < 0)
            bench_die("consume_start %d: %s", p, rd_kafka_err2str(rd_kafka_last_error()));
    rd_kafka_message_t **batch = xcalloc(CONSUME_BATCH, sizeof(*batch));
    while (c->got < c->want && bench_now_ns() < c->deadline_ns) {
        /* A batch call waits until the batch is full or the timeout ends:
         * 1 ms keeps that wait out of both the latency and the timing. */
        ssize_t n = rd_kafka_consume_batch_queue(q, 1, batch, CONSUME_BATCH);
        int64_t now = bench_now_ns();
        for (ssize_t i = 0; i < n; i++) {
            rd_kafka_message_t *m = batch[i];
            if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
                if (c->got == 0)
                    c->first_ns = now;
                c->got++;
                c->bytes += (int64_t)m->len;
                if (c->latency_us != NULL && m->len >= MIN_RECORD_SIZE && c->samples < c->want) {
                    int64_t sent;
                    memcpy(&sent, m->payload, sizeof(sent));
                    int64_t us = (now - sent) / 1000;
                    c->latency_us[c->samples++] = (int32_t)(us > INT32_MAX ? INT32_MAX : us);
                }
            } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                if (c->errors++ == 0)
                    fprintf(stderr, "loadgen: consume: %s\n", rd_kafka_message_errstr(m));
            }
            rd_kafka_message_destroy(m);
        }
        if (n > 0) {
            c->last_ns = now;
            atomic_store_explicit(&c->progress, c->got, memory_order_relaxed);
        }
    }
    free(batch);
    for (int p = 0; p < c->partitions; p++)
        rd_kafka_consume_stop(rkt, p);
    rd_kafka_queue_destroy(q);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
}

static void *consumer_thread(void *arg)
{
    consumer_run(arg);
    return NULL;
}

/* ---- Producer ---- */

/* Produces o->records records; returns the elapsed ns from the first send
 * to the last acknowledgement. */
static int64_t produce_all(const struct options *o, struct bench_deliveries *st, int64_t *start_ns)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    bench_conf_set(conf, "acks", o->acks);
    bench_conf_set(conf, "enable.idempotence", o->idempotent ? "true" : "false");
    bench_conf_set(conf, "linger.ms", o->linger_ms);
    bench_conf_set(conf, "batch.size", o->batch_size);
    bench_conf_set(conf, "batch.num.messages", o->batch_num);
    bench_conf_set(conf, "compression.codec", o->compression);
    /* The buffer bounds how long a record can wait inside the producer
     * when it outruns the broker, and so the latency measured flat out. */
    bench_conf_set(conf, "queue.buffering.max.messages", o->queue_messages);
    bench_conf_set(conf, "queue.buffering.max.kbytes", o->queue_kbytes);
    rd_kafka_conf_set_dr_msg_cb(conf, bench_on_delivery);
    rd_kafka_conf_set_opaque(conf, st);
    rd_kafka_t *rk = client_new(o, RD_KAFKA_PRODUCER, conf);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, o->topic, NULL);
    char *payload = xcalloc(1, (size_t)o->size);
    memset(payload, 'v', (size_t)o->size);

    int64_t start = bench_now_ns();
    *start_ns = start;
    for (int64_t i = 0; i < o->records; i++) {
        if (o->rate > 0 && (i % 64) == 0) {
            /* Paced: record i is due at start + i / rate. */
            int64_t due = start + (int64_t)((double)i * 1e9 / (double)o->rate);
            while (bench_now_ns() < due) {
                rd_kafka_poll(rk, 0);
                int64_t wait = due - bench_now_ns();
                if (wait > 0) {
                    struct timespec ts = {.tv_sec = wait / 1000000000LL,
                                          .tv_nsec = wait % 1000000000LL};
                    nanosleep(&ts, NULL);
                }
            }
        }
        int64_t sent = bench_now_ns();
        memcpy(payload, &sent, sizeof(sent));
        while (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, payload,
                                (size_t)o->size, NULL, 0, NULL) != 0) {
            rd_kafka_resp_err_t err = rd_kafka_last_error();
            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                bench_die("produce: %s", rd_kafka_err2str(err));
            rd_kafka_poll(rk, 1);
        }
        if ((i & 1023) == 0)
            rd_kafka_poll(rk, 0);
    }
    rd_kafka_resp_err_t err = rd_kafka_flush(rk, o->timeout_s * 1000);
    int64_t elapsed = bench_now_ns() - start;
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        bench_die("flush: %s (%d records unacknowledged)", rd_kafka_err2str(err),
                  rd_kafka_outq_len(rk));
    free(payload);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return elapsed;
}

/* ---- Reporting ---- */

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* The q-quantile (0..1) of sorted samples, in ms. */
static double quantile_ms(const int32_t *sorted, int64_t n, double q)
{
    assert(n > 0);
    int64_t idx = (int64_t)(q * (double)(n - 1) + 0.5);
    return sorted[idx] / 1000.0;
}

static void parse_options(int argc, char **argv, struct options *o)
{
    enum {
        OPT_ACKS = 0x100,
        OPT_LINGER,
        OPT_BATCH,
        OPT_BATCH_NUM,
        OPT_COMPRESSION,
        OPT_TIMEOUT,
        OPT_NO_LATENCY,
        OPT_QUEUE_KB,
        OPT_QUEUE_MSGS,
        OPT_RATE,
        OPT_IDEMPOTENT
    };
    static const struct option longopts[] = {
        {"bootstrap", required_argument, NULL, 'b'},
        {"topic", required_argument, NULL, 't'},
        {"records", required_argument, NULL, 'n'},
        {"size", required_argument, NULL, 's'},
        {"partitions", required_argument, NULL, 'P'},
        {"acks", required_argument, NULL, OPT_ACKS},
        {"linger-ms", required_argument, NULL, OPT_LINGER},
        {"batch-size", required_argument, NULL, OPT_BATCH},
        {"batch-num", required_argument, NULL, OPT_BATCH_NUM},
        {"compression", required_argument, NULL, OPT_COMPRESSION},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"no-latency", no_argument, NULL, OPT_NO_LATENCY},
        {"queue-kbytes", required_argument, NULL, OPT_QUEUE_KB},
        {"queue-messages", required_argument, NULL, OPT_QUEUE_MSGS},
        {"rate", required_argument, NULL, OPT_RATE},
        {"idempotent", no_argument, NULL, OPT_IDEMPOTENT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *env = getenv("VLTAVA_BROKERS");
    *o = (struct options){
        .bootstrap = env != NULL && *env ? env : "127.0.0.1:9092",
        .records = 1000000,
        .size = 100,
        .acks = "1",
        .linger_ms = "5",
        .batch_size = "1000000",
        .batch_num = "10000",
        .compression = "none",
        .queue_kbytes = "32768",
        .queue_messages = "100000",
        .partitions = 1,
        .timeout_s = 300,
        .latency = true,
    };
    snprintf(o->topic, sizeof(o->topic), "loadgen-%d-%lld", (int)getpid(), (long long)time(NULL));
    int opt;
    char *end;
    while ((opt = getopt_long(argc, argv, "b:t:n:s:P:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'b':
            o->bootstrap = optarg;
            break;
        case 't':
            if (snprintf(o->topic, sizeof(o->topic), "%s", optarg) >= (int)sizeof(o->topic))
                bench_die("topic name too long");
            break;
        case 'n':
            o->records = strtoll(optarg, &end, 10);
            if (*end != '\0' || o->records <= 0 || o->records > MAX_RECORDS)
                bench_die("--records wants 1..%lld", MAX_RECORDS);
            break;
        case 's':
            o->size = (int)strtol(optarg, &end, 10);
            if (*end != '\0' || o->size < MIN_RECORD_SIZE || o->size > MAX_RECORD_SIZE)
                bench_die("--size wants %d..%d", MIN_RECORD_SIZE, MAX_RECORD_SIZE);
            break;
        case 'P':
            o->partitions = (int)strtol(optarg, &end, 10);
            if (*end != '\0' || o->partitions < 1 || o->partitions > MAX_PARTITIONS)
                bench_die("--partitions wants 1..%d", MAX_PARTITIONS);
            break;
        case OPT_ACKS:
            o->acks = strcmp(optarg, "-1") == 0 ? "all" : optarg;
            break;
        case OPT_LINGER:
            o->linger_ms = optarg;
            break;
        case OPT_BATCH:
            o->batch_size = optarg;
            break;
        case OPT_BATCH_NUM:
            o->batch_num = optarg;
            break;
        case OPT_COMPRESSION:
            o->compression = optarg;
            break;
        case OPT_TIMEOUT:
            o->timeout_s = (int)strtol(optarg, &end, 10);
            if (*end != '\0' || o->timeout_s < 1 || o->timeout_s > 86400)
                bench_die("--timeout wants 1..86400 seconds");
            break;
        case OPT_NO_LATENCY:
            o->latency = false;
            break;
        case OPT_IDEMPOTENT:
            o->idempotent = true;
            break;
        case OPT_QUEUE_KB:
            o->queue_kbytes = optarg;
            break;
        case OPT_QUEUE_MSGS:
            o->queue_messages = optarg;
            break;
        case OPT_RATE:
            o->rate = strtoll(optarg, &end, 10);
            if (*end != '\0' || o->rate < 1 || o->rate > 100000000)
                bench_die("--rate wants 1..100000000 records/s");
            break;
        case 'h':
            fputs(usage, stdout);
            exit(0);
        default:
            fputs(usage, stderr);
            exit(2);
        }
    }
    if (optind != argc) {
        fputs(usage, stderr);
        exit(2);
    }
}

int main(int argc, char **argv)
{
    struct options o;
    parse_options(argc, argv, &o);
    if (o.idempotent && strcmp(o.acks, "all") != 0)
        bench_die("--idempotent needs --acks all (librdkafka refuses it otherwise)");
    int64_t total_bytes = o.records * o.size;
    char rate_text[32] = "max";
    if (o.rate > 0)
        snprintf(rate_text, sizeof(rate_text), "%" PRId64 "/s", o.rate);
    printf("loadgen: %s topic %s: %" PRId64 " records x %d bytes, acks=%s linger.ms=%s "
           "batch.size=%s batch.num.messages=%s compression=%s queue=%s msgs/%s KB rate=%s%s\n",
           o.bootstrap, o.topic, o.records, o.size, o.acks, o.linger_ms, o.batch_size, o.batch_num,
           o.compression, o.queue_messages, o.queue_kbytes, rate_text,
           o.idempotent ? " idempotent" : "");
    fflush(stdout);

    int partitions = topic_prepare(&o);
    int64_t offsets[MAX_PARTITIONS];
    start_offsets(&o, partitions, offsets);

    /* Best of a few: the reference is what the hardware can do, and on a
     * shared machine single runs swing with whatever else runs. */
    double loop_mbps = 0;
    for (int i = 0; i < LOOPBACK_ROUNDS; i++) {
        double mbps = loopback_mbps(total_bytes);
        if (mbps > loop_mbps)
            loop_mbps = mbps;
    }
    printf("loopback TCP     %10.1f MB/s  (%" PRId64 " bytes through 127.0.0.1, one socket, "
           "best of %d)\n",
           loop_mbps, total_bytes, LOOPBACK_ROUNDS);
    fflush(stdout);

    /* Phase 1: produce, with the latency consumer running alongside. */
    struct consumer_run lat = {
        .o = &o,
        .partitions = partitions,
        .offsets = offsets,
        .want = o.records,
        .deadline_ns = bench_now_ns() + 2LL * o.timeout_s * 1000000000LL,
    };
    pthread_t lat_thread;
    if (o.latency) {
        lat.latency_us = xcalloc((size_t)o.records, sizeof(int32_t));
        if (pthread_create(&lat_thread, NULL, consumer_thread, &lat) != 0)
            bench_die("pthread_create failed");
        /* Let it connect and start fetching before the first record. */
        usleep(500 * 1000);
    }
    struct bench_deliveries st = {0};
    int64_t produce_start_ns = 0;
    int64_t produce_ns = produce_all(&o, &st, &produce_start_ns);
    int64_t lag_read = atomic_load_explicit(&lat.progress, memory_order_relaxed);
    if (o.latency)
        pthread_join(lat_thread, NULL);
    long long failed = atomic_load(&st.failed);
    if (failed > 0)
        bench_die("%lld records failed; first error: %s", failed, rd_kafka_err2str(st.first_error));
    double produce_s = (double)produce_ns / 1e9;
    double produce_rps = (double)o.records / produce_s;
    double produce_mbps = (double)total_bytes / 1e6 / produce_s;
    printf("produce          %10.0f records/s  %8.1f MB/s  (%.2fx loopback)  %.2f s\n", produce_rps,
           produce_mbps, produce_mbps / loop_mbps, produce_s);

    double p50 = -1, p99 = -1, p999 = -1, pmax = -1;
    if (o.latency) {
        if (lat.samples == 0)
            bench_die("the latency consumer saw no records");
        qsort(lat.latency_us, (size_t)lat.samples, sizeof(int32_t), cmp_i32);
        p50 = quantile_ms(lat.latency_us, lat.samples, 0.50);
        p99 = quantile_ms(lat.latency_us, lat.samples, 0.99);
        p999 = quantile_ms(lat.latency_us, lat.samples, 0.999);
        pmax = lat.latency_us[lat.samples - 1] / 1000.0;
        printf("latency e2e      p50 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms  "
               "(%" PRId64 " samples, consumer concurrent with the producer)\n",
               p50, p99, p999, pmax, lat.samples);
        printf("                 the latency consumer had read %.1f%% of the records when the "
               "last one was acknowledged, and all %.2f s after the first was sent\n",
               100.0 * (double)lag_read / (double)o.records,
               (double)(lat.last_ns - produce_start_ns) / 1e9);
        if (lat.got != o.records)
            bench_die("the latency consumer read %" PRId64 " of %" PRId64 " records", lat.got,
                      o.records);
        free(lat.latency_us);
    }
    fflush(stdout);

    /* Phase 2: read everything back with a fresh consumer. */
    struct consumer_run cons = {
        .o = &o,
        .partitions = partitions,
        .offsets = offsets,
        .want = o.records,
        .deadline_ns = bench_now_ns() + (int64_t)o.timeout_s * 1000000000LL,
    };
    int64_t cstart = bench_now_ns();
    consumer_run(&cons);
    if (cons.got != o.records)
        bench_die("consumed %" PRId64 " of %" PRId64 " records within %d s", cons.got, o.records,
                  o.timeout_s);
    double consume_s = (double)(cons.last_ns - cstart) / 1e9;
    double consume_rps = (double)cons.got / consume_s;
    double consume_mbps = (double)cons.bytes / 1e6 / consume_s;
    printf("consume          %10.0f records/s  %8.1f MB/s  (%.2fx loopback)  %.2f s\n", consume_rps,
           consume_mbps, consume_mbps / loop_mbps, consume_s);
    printf("RESULT size=%d acks=%s records=%" PRId64 " produce_rps=%.0f produce_mbps=%.1f "
           "consume_rps=%.0f consume_mbps=%.1f p50_ms=%.2f p99_ms=%.2f p999_ms=%.2f "
           "loopback_mbps=%.1f rate=%s idempotent=%d\n",
           o.size, o.acks, o.records, produce_rps, produce_mbps, consume_rps, consume_mbps, p50,
           p99, p999, loop_mbps, rate_text, o.idempotent ? 1 : 0);
    return 0;
}
