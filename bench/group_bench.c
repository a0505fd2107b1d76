/* group_bench: consumer-group benchmarks against a Kafka-compatible
 * cluster, on librdkafka. One subcommand per benchmark:
 *
 *   rebalance  three members of one group, each a consumer handle polled on
 *              its own thread; two join and settle, then the time from the
 *              third one's subscribe until all three hold their assignment
 *              of the generation with all three in it (fresh group each
 *              round). "--cold" subscribes all three at once instead.
 *   commit     one consumer handle committing one partition per request:
 *              asynchronous with a bounded number in flight, counted in the
 *              offset_commit_cb, then synchronous one at a time (latency);
 *              as the reference, the same library producing tiny records
 *              with acks=all to a replicated partition, one record per
 *              request with the same bound in flight, and batched.
 *   failover   commits offsets into one group, finds its coordinator,
 *              signals that broker (pid from the local-cluster.sh state
 *              directory), then times how long until rd_kafka_committed()
 *              returns every last offset again, and reads the new leader's
 *              broker log for how long it took to load the partition.
 *   consume    produces N records to a topic, then reads them all with a
 *              consumer of assign()ed partitions (no group membership) and
 *              with a subscribe()d group member with auto commit,
 *              alternated (A B B A ...).
 *
 * Each prints its figures and one RESULT line per figure for scripts. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench_rdk.h"
#include "xalloc.h"

#define MAX_PARTITIONS   1024
#define CONSUME_BATCH    4096
#define MEMBERS          3
#define TINY_RECORD_SIZE 16

struct options {
    const char *bootstrap;
    int timeout_s; /* bound on every wait */
    /* rebalance */
    int rounds;
    int partitions;
    int heartbeat_ms;
    bool cold;
    /* commit, failover */
    int64_t commits;
    int inflight;
    int64_t sync_commits;
    int64_t ref_records;
    /* failover */
    const char *state_dir;
    int signal;
    /* consume */
    int64_t records;
    int size;
};

static const char usage[] =
    "Usage: group_bench [OPTIONS] rebalance|commit|failover|consume\n"
    "  -b, --bootstrap HOST:PORT,...  brokers (default $VLTAVA_BROKERS or 127.0.0.1:9092)\n"
    "      --timeout SECONDS          bound on every wait (default 120)\n"
    "  -P, --partitions N             partitions of the benchmark's topic (rebalance and\n"
    "                                 consume: 12; failover: 100, committed round-robin)\n"
    "rebalance:\n"
    "      --rounds N                 rounds, a fresh group each (default 10)\n"
    "      --heartbeat-ms MS          members' heartbeat.interval.ms (default 3000)\n"
    "      --cold                     all three subscribe at once\n"
    "commit, failover:\n"
    "  -n, --commits N                asynchronous commits (default 200000; failover 100000)\n"
    "      --inflight N               most commits unacknowledged at once (default 1000)\n"
    "      --sync N                   synchronous commits (commit; default 5000)\n"
    "      --ref-records N            reference produce records (commit; default --commits)\n"
    "failover:\n"
    "      --state DIR                deploy/local-cluster.sh state dir (broker-<id>/pid, log)\n"
    "      --signal KILL|TERM         how the coordinator is stopped (default KILL)\n"
    "consume:\n"
    "      --records N                records to produce and read (default 3000000)\n"
    "  -s, --size BYTES               record size (default 100)\n"
    "      --rounds N                 reads per consumer kind, alternated (default 2)\n";

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double ms_of(int64_t ns)
{
    return (double)ns / 1e6;
}

/* Once a broker is stopped on purpose, the clients' complaints about it
 * are expected: quiet_log drops them. */
static atomic_bool broker_stopped;

/* $GROUP_BENCH_DEBUG: librdkafka debug contexts (e.g. "cgrp,protocol")
 * for every client, logged with wall-clock times to compare with the
 * brokers' logs. */
static const char *debug_contexts;

static void quiet_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    if (debug_contexts != NULL) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        fprintf(stderr, "%02d:%02d:%02d.%03ld %s %s: %s\n", tm.tm_hour, tm.tm_min, tm.tm_sec,
                ts.tv_nsec / 1000000, rd_kafka_name(rk), fac, buf);
        return;
    }
    if (level <= 3 && !atomic_load(&broker_stopped))
        fprintf(stderr, "librdkafka %s: %s\n", fac, buf);
}

static rd_kafka_t *client_new(const struct options *o, rd_kafka_type_t type, rd_kafka_conf_t *conf)
{
    if (debug_contexts != NULL)
        bench_conf_set(conf, "debug", debug_contexts);
    return bench_client_new(o->bootstrap, "vltava-group-bench", type, conf, quiet_log);
}

static int64_t deadline_after(const struct options *o)
{
    return bench_now_ns() + (int64_t)o->timeout_s * 1000000000LL;
}

/* A bound on waiting for acknowledgements that resets with each one: a
 * slow run that keeps going is not a failure, one that stops is. */
struct progress_watch {
    long long seen;
    int64_t deadline;
};

static void progress_watch_init(const struct options *o, struct progress_watch *w)
{
    w->seen = 0;
    w->deadline = deadline_after(o);
}

/* Dies (naming `what`) when `acked` has not moved for the timeout. */
static void progress_check(const struct options *o, struct progress_watch *w, long long acked,
                           long long want, const char *what)
{
    if (acked != w->seen) {
        assert(acked > w->seen);
        w->seen = acked;
        w->deadline = deadline_after(o);
    } else if (bench_now_ns() > w->deadline) {
        bench_die("%s: no acknowledgement in %d s (%lld of %lld acknowledged)", what, o->timeout_s,
                  acked, want);
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The q-quantile (0..1) of n sorted samples. */
static int64_t quantile(const int64_t *sorted, int64_t n, double q)
{
    assert(n > 0);
    return sorted[(int64_t)(q * (double)(n - 1) + 0.5)];
}

/* ---- Topics and metadata ---- */

/* Leader of topic/partition in a fresh Metadata answer, -1 if none (or
 * no answer). */
static int32_t partition_leader(rd_kafka_t *rk, const char *topic, int32_t partition,
                                int32_t *partitions)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    int32_t leader = -1;
    if (rd_kafka_metadata(rk, 0, rkt, &md, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            const rd_kafka_metadata_topic_t *t = &md->topics[0];
            if (partitions)
                *partitions = t->partition_cnt;
            for (int i = 0; i < t->partition_cnt; i++)
                if (t->partitions[i].id == partition)
                    leader = t->partitions[i].leader;
        }
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
    return leader;
}

/* Creates the topic (it must not exist) and waits until every partition
 * has a leader. */
static void topic_create(const struct options *o, const char *topic, int partitions, int rf)
{
    rd_kafka_t *rk = client_new(o, RD_KAFKA_PRODUCER, rd_kafka_conf_new());
    (void)bench_topic_create(rk, topic, partitions, rf, false, o->timeout_s);
    rd_kafka_destroy(rk);
}

/* ---- rebalance ---- */

struct member {
    rd_kafka_t *rk;
    pthread_t thread;
    atomic_bool stop;
    atomic_int assigned;    /* partitions of the latest assignment; 0 after a revoke */
    atomic_llong assign_ns; /* when the latest assignment arrived */
    atomic_llong revoke_ns; /* when the latest revoke arrived */
    atomic_int assignments; /* ASSIGN callbacks so far */
    atomic_int errors;
};

static void member_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                             rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct member *m = opaque;
    int64_t now = bench_now_ns();
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        if (rd_kafka_assign(rk, parts) != RD_KAFKA_RESP_ERR_NO_ERROR)
            atomic_fetch_add(&m->errors, 1);
        atomic_store(&m->assign_ns, now);
        atomic_store(&m->assigned, parts->cnt);
        atomic_fetch_add(&m->assignments, 1);
    } else {
        rd_kafka_assign(rk, NULL);
        atomic_store(&m->revoke_ns, now);
        atomic_store(&m->assigned, 0);
        if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
            atomic_fetch_add(&m->errors, 1);
    }
}

static void *member_poll(void *arg)
{
    struct member *m = arg;
    while (!atomic_load(&m->stop)) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(m->rk, 5);
        if (msg)
            rd_kafka_message_destroy(msg);
    }
    return NULL;
}

static void member_start(const struct options *o, struct member *m, const char *group)
{
    memset(m, 0, sizeof(*m));
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char hb[32];
    snprintf(hb, sizeof(hb), "%d", o->heartbeat_ms);
    bench_conf_set(conf, "group.id", group);
    bench_conf_set(conf, "heartbeat.interval.ms", hb);
    bench_conf_set(conf, "session.timeout.ms", "30000");
    bench_conf_set(conf, "partition.assignment.strategy", "range");
    bench_conf_set(conf, "enable.auto.commit", "false");
    rd_kafka_conf_set_rebalance_cb(conf, member_rebalance);
    rd_kafka_conf_set_opaque(conf, m);
    m->rk = client_new(o, RD_KAFKA_CONSUMER, conf);
    rd_kafka_poll_set_consumer(m->rk);
    if (pthread_create(&m->thread, NULL, member_poll, m) != 0)
        bench_die("pthread_create failed");
}

static void member_subscribe(struct member *m, const char *topic)
{
    rd_kafka_topic_partition_list_t *t = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(t, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(m->rk, t);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        bench_die("subscribe: %s", rd_kafka_err2str(err));
    rd_kafka_topic_partition_list_destroy(t);
}

static void member_stop(struct member *m)
{
    atomic_store(&m->stop, true);
    pthread_join(m->thread, NULL);
    rd_kafka_consumer_close(m->rk);
    rd_kafka_destroy(m->rk);
}

/* Waits until members [0, n) each hold `each` partitions from an
 * assignment that arrived after `since`. */
static bool members_settled(struct member *ms, int n, int each, int64_t since, int64_t deadline)
{
    for (;;) {
        bool ok = true;
        for (int i = 0; i < n && ok; i++)
            ok = atomic_load(&ms[i].assigned) == each && atomic_load(&ms[i].assign_ns) > since;
        if (ok)
            return true;
        if (bench_now_ns() > deadline)
            return false;
        usleep(200);
    }
}

static int run_rebalance(const struct options *o)
{
    char topic[128];
    snprintf(topic, sizeof(topic), "rebalance-%d", (int)getpid());
    if (o->partitions % MEMBERS != 0)
        bench_die("rebalance wants partitions divisible by %d", MEMBERS);
    topic_create(o, topic, o->partitions, 3);
    srand((unsigned)getpid());
    printf("rebalance: topic %s (%d partitions, RF 3), %d members, heartbeat.interval.ms=%d, "
           "range assignor, %s\n",
           topic, o->partitions, MEMBERS, o->heartbeat_ms,
           o->cold ? "all three subscribe at once"
                   : "the third joins a settled group of two, at a random heartbeat phase");
    int64_t *total = xcalloc((size_t)o->rounds, sizeof(*total));
    int64_t *rejoin = xcalloc((size_t)o->rounds, sizeof(*rejoin));
    for (int r = 0; r < o->rounds; r++) {
        char group[128];
        snprintf(group, sizeof(group), "rebalance-%d-%s-%d", (int)getpid(),
                 o->cold ? "cold" : "join", r);
        struct member ms[MEMBERS];
        for (int i = 0; i < MEMBERS; i++)
            member_start(o, &ms[i], group);
        /* Let every handle find the cluster (and the coordinator) first:
         * the timing starts at a subscribe, not at a connect. */
        usleep(300 * 1000);
        int64_t deadline = deadline_after(o);
        if (!o->cold) {
            int64_t s0 = bench_now_ns();
            member_subscribe(&ms[0], topic);
            if (!members_settled(ms, 1, o->partitions, s0, deadline))
                bench_die("round %d: the first member got no assignment in %d s", r, o->timeout_s);
            int64_t s1 = bench_now_ns();
            member_subscribe(&ms[1], topic);
            if (!members_settled(ms, 2, o->partitions / 2, s1, deadline))
                bench_die("round %d: two members did not settle in %d s", r, o->timeout_s);
            /* The two members' heartbeat timers restarted when they
             * settled: joining right away would always wait a full
             * interval for them to notice. A random phase instead. */
            usleep((useconds_t)rand() % ((useconds_t)o->heartbeat_ms * 1000));
        }
        int64_t t0 = bench_now_ns();
        for (int i = o->cold ? 0 : MEMBERS - 1; i < MEMBERS; i++)
            member_subscribe(&ms[i], topic);
        if (!members_settled(ms, MEMBERS, o->partitions / MEMBERS, t0, deadline))
            bench_die("round %d: three members did not settle in %d s", r, o->timeout_s);
        int64_t done = 0, noticed = INT64_MAX;
        int errors = 0;
        for (int i = 0; i < MEMBERS; i++) {
            int64_t a = atomic_load(&ms[i].assign_ns), v = atomic_load(&ms[i].revoke_ns);
            done = a > done ? a : done;
            if (i < MEMBERS - 1 && !o->cold && v > t0 && v < noticed)
                noticed = v;
            errors += atomic_load(&ms[i].errors);
        }
        total[r] = done - t0;
        rejoin[r] = noticed != INT64_MAX ? done - noticed : -1;
        printf("  round %2d: %8.1f ms", r, ms_of(total[r]));
        if (rejoin[r] >= 0)
            printf("  (first revoke at +%.1f ms, then %.1f ms to all assigned)",
                   ms_of(noticed - t0), ms_of(rejoin[r]));
        printf("%s\n", errors ? "  (rebalance callback errors)" : "");
        fflush(stdout);
        for (int i = 0; i < MEMBERS; i++)
            member_stop(&ms[i]);
    }
    qsort(total, (size_t)o->rounds, sizeof(*total), cmp_i64);
    printf("rebalance: median %.1f ms, max %.1f ms, min %.1f ms over %d rounds\n",
           ms_of(quantile(total, o->rounds, 0.5)), ms_of(total[o->rounds - 1]), ms_of(total[0]),
           o->rounds);
    printf("RESULT bench=rebalance mode=%s heartbeat_ms=%d rounds=%d median_ms=%.1f max_ms=%.1f "
           "min_ms=%.1f\n",
           o->cold ? "cold" : "join", o->heartbeat_ms, o->rounds,
           ms_of(quantile(total, o->rounds, 0.5)), ms_of(total[o->rounds - 1]), ms_of(total[0]));
    free(total);
    free(rejoin);
    return 0;
}

/* ---- commit ---- */

struct committer {
    rd_kafka_t *rk;
    atomic_llong acked;
    atomic_llong failed;
    rd_kafka_resp_err_t first_error;
};

static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    (void)rk;
    struct committer *c = opaque;
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR && offsets)
        for (int i = 0; i < offsets->cnt && err == RD_KAFKA_RESP_ERR_NO_ERROR; i++)
            err = offsets->elems[i].err;
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (atomic_fetch_add(&c->failed, 1) == 0)
            c->first_error = err;
    }
    atomic_fetch_add(&c->acked, 1);
}

static void committer_init(const struct options *o, struct committer *c, const char *group)
{
    memset(c, 0, sizeof(*c));
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    bench_conf_set(conf, "group.id", group);
    bench_conf_set(conf, "enable.auto.commit", "false");
    rd_kafka_conf_set_offset_commit_cb(conf, on_commit);
    rd_kafka_conf_set_opaque(conf, c);
    c->rk = client_new(o, RD_KAFKA_CONSUMER, conf);
}

static rd_kafka_resp_err_t commit_sync(struct committer *c, const char *topic, int32_t partition,
                                       int64_t offset)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, partition)->offset = offset;
    rd_kafka_resp_err_t err = rd_kafka_commit(c->rk, l, 0);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        err = l->elems[0].err;
    rd_kafka_topic_partition_list_destroy(l);
    return err;
}

/* The first commit finds the coordinator (and may create
 * __consumer_offsets): retried until it succeeds. */
static void commit_warm_up(const struct options *o, struct committer *c, const char *topic)
{
    int64_t deadline = deadline_after(o);
    rd_kafka_resp_err_t err;
    while ((err = commit_sync(c, topic, 0, 0)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (bench_now_ns() > deadline)
            bench_die("first commit: %s after %d s", rd_kafka_err2str(err), o->timeout_s);
        usleep(50 * 1000);
    }
    /* The synchronous commit's acknowledgement also reaches on_commit. */
    while (atomic_load(&c->acked) < 1 && bench_now_ns() < deadline)
        rd_kafka_poll(c->rk, 10);
    atomic_store(&c->acked, 0);
    atomic_store(&c->failed, 0);
}

/* n asynchronous commits, commit i of partition i % partitions at offset
 * i / partitions + 1 (each a request of its own), at most `inflight`
 * unacknowledged; returns the ns from the first to the last
 * acknowledgement. */
static int64_t commit_async_run(const struct options *o, struct committer *c, const char *topic,
                                int partitions, int64_t n)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_add(l, topic, 0);
    struct progress_watch w;
    progress_watch_init(o, &w);
    int64_t start = bench_now_ns();
    for (int64_t i = 0; i < n; i++) {
        while (i - atomic_load(&c->acked) >= o->inflight) {
            rd_kafka_poll(c->rk, 1);
            progress_check(o, &w, atomic_load(&c->acked), n, "commits");
        }
        tp->partition = (int32_t)(i % partitions);
        tp->offset = i / partitions + 1;
        rd_kafka_resp_err_t err = rd_kafka_commit(c->rk, l, 1);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
            bench_die("rd_kafka_commit: %s", rd_kafka_err2str(err));
        if ((i & 63) == 0)
            rd_kafka_poll(c->rk, 0);
    }
    while (atomic_load(&c->acked) < n) {
        rd_kafka_poll(c->rk, 1);
        progress_check(o, &w, atomic_load(&c->acked), n, "commits");
    }
    int64_t elapsed = bench_now_ns() - start;
    rd_kafka_topic_partition_list_destroy(l);
    if (atomic_load(&c->failed) > 0)
        bench_die("%lld commits failed; first error: %s", (long long)atomic_load(&c->failed),
                  rd_kafka_err2str(c->first_error));
    return elapsed;
}

/* Produces n records of TINY_RECORD_SIZE bytes with acks=all to partition
 * 0; one record per request (batch.num.messages=1, at most `inflight`
 * unacknowledged) or batched (linger.ms=5, librdkafka's default batch
 * limits). Returns records/s. */
static double produce_ref_run(const struct options *o, const char *topic, int64_t n, bool single)
{
    struct bench_deliveries st = {0};
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    bench_conf_set(conf, "acks", "all");
    if (single) {
        bench_conf_set(conf, "linger.ms", "0");
        bench_conf_set(conf, "batch.num.messages", "1");
    } else {
        bench_conf_set(conf, "linger.ms", "5");
    }
    rd_kafka_conf_set_dr_msg_cb(conf, bench_on_delivery);
    rd_kafka_conf_set_opaque(conf, &st);
    rd_kafka_t *rk = client_new(o, RD_KAFKA_PRODUCER, conf);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    char payload[TINY_RECORD_SIZE];
    memset(payload, 'c', sizeof(payload));
    int64_t limit = single ? o->inflight : 100000;
    struct progress_watch w;
    progress_watch_init(o, &w);
    int64_t start = bench_now_ns();
    for (int64_t i = 0; i < n; i++) {
        while (i - atomic_load(&st.acked) >= limit) {
            rd_kafka_poll(rk, 1);
            progress_check(o, &w, atomic_load(&st.acked), n, "reference produce");
        }
        if (rd_kafka_produce(rkt, 0, RD_KAFKA_MSG_F_COPY, payload, sizeof(payload), NULL, 0,
                             NULL) != 0)
            bench_die("produce: %s", rd_kafka_err2str(rd_kafka_last_error()));
        if ((i & 63) == 0)
            rd_kafka_poll(rk, 0);
    }
    rd_kafka_resp_err_t err = rd_kafka_flush(rk, o->timeout_s * 1000);
    int64_t elapsed = bench_now_ns() - start;
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        bench_die("flush: %s", rd_kafka_err2str(err));
    if (atomic_load(&st.failed) > 0)
        bench_die("%lld records failed: %s", (long long)atomic_load(&st.failed),
                  rd_kafka_err2str(st.first_error));
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return (double)n / ((double)elapsed / 1e9);
}

static int run_commit(const struct options *o)
{
    char topic[128], ref_topic[128], group[128];
    snprintf(topic, sizeof(topic), "commit-%d", (int)getpid());
    snprintf(ref_topic, sizeof(ref_topic), "commit-ref-%d", (int)getpid());
    snprintf(group, sizeof(group), "commit-%d", (int)getpid());
    topic_create(o, topic, 1, 3);
    topic_create(o, ref_topic, 1, 3);
    printf("commit: group %s, topic %s partition 0; %" PRId64 " asynchronous commits of one "
           "partition each, at most %d in flight; then %" PRId64 " synchronous\n",
           group, topic, o->commits, o->inflight, o->sync_commits);
    fflush(stdout);

    struct committer c;
    committer_init(o, &c, group);
    commit_warm_up(o, &c, topic);
    int64_t elapsed = commit_async_run(o, &c, topic, 1, o->commits);
    double async_rate = (double)o->commits / ((double)elapsed / 1e9);
    printf("async commits    %10.0f commits/s  (%" PRId64 " acknowledged in %.2f s)\n", async_rate,
           o->commits, (double)elapsed / 1e9);
    fflush(stdout);

    int64_t *lat = xcalloc((size_t)o->sync_commits, sizeof(*lat));
    int64_t deadline = deadline_after(o);
    int64_t start = bench_now_ns();
    for (int64_t i = 0; i < o->sync_commits; i++) {
        int64_t t = bench_now_ns();
        rd_kafka_resp_err_t err = commit_sync(&c, topic, 0, o->commits + 1 + i);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
            bench_die("synchronous commit %" PRId64 ": %s", i, rd_kafka_err2str(err));
        lat[i] = bench_now_ns() - t;
        if (bench_now_ns() > deadline)
            bench_die("synchronous commits: %" PRId64 " done in %d s", i, o->timeout_s);
    }
    double sync_rate = (double)o->sync_commits / ((double)(bench_now_ns() - start) / 1e9);
    qsort(lat, (size_t)o->sync_commits, sizeof(*lat), cmp_i64);
    double p50 = ms_of(quantile(lat, o->sync_commits, 0.5));
    double p99 = ms_of(quantile(lat, o->sync_commits, 0.99));
    printf("sync commits     %10.0f commits/s  latency p50 %.2f ms  p99 %.2f ms  max %.2f ms\n",
           sync_rate, p50, p99, ms_of(lat[o->sync_commits - 1]));
    free(lat);
    rd_kafka_poll(c.rk, 0);
    rd_kafka_destroy(c.rk);
    fflush(stdout);

    double single_rate = produce_ref_run(o, ref_topic, o->ref_records, true);
    printf("reference        %10.0f records/s  produce, acks=all, %d-byte records, one per "
           "request, at most %d in flight\n",
           single_rate, TINY_RECORD_SIZE, o->inflight);
    double batched_rate = produce_ref_run(o, ref_topic, 5 * o->ref_records, false);
    printf("                 %10.0f records/s  the same batched (linger.ms=5)\n", batched_rate);
    printf("async commits / one-record produce requests: %.2f\n", async_rate / single_rate);
    printf("RESULT bench=commit commits=%" PRId64 " inflight=%d async_per_s=%.0f sync_per_s=%.0f "
           "sync_p50_ms=%.2f sync_p99_ms=%.2f ref_single_per_s=%.0f ref_batched_per_s=%.0f "
           "ratio=%.2f\n",
           o->commits, o->inflight, async_rate, sync_rate, p50, p99, single_rate, batched_rate,
           async_rate / single_rate);
    return 0;
}

/* ---- failover ---- */

/* Java's String.hashCode of an ASCII string, and Kafka's partition for a
 * group: abs(hash) % partitions, with abs(INT_MIN) = 0. */
static int32_t group_partition(const char *group, int32_t partitions)
{
    uint32_t h = 0;
    for (const char *p = group; *p; p++)
        h = 31 * h + (uint8_t)*p;
    int32_t s = (int32_t)h;
    if (s == INT32_MIN)
        s = 0;
    return (s < 0 ? -s : s) % partitions;
}

/* The coordinator's broker id, as DescribeConsumerGroups reports it. */
static int32_t describe_coordinator(const struct options *o, rd_kafka_t *rk, const char *group)
{
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    const char *groups[1] = {group};
    rd_kafka_DescribeConsumerGroups(rk, groups, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, o->timeout_s * 1000);
    int32_t id = -1;
    if (ev && rd_kafka_event_error(ev) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        size_t n = 0;
        const rd_kafka_ConsumerGroupDescription_t **d =
            rd_kafka_DescribeConsumerGroups_result_groups(
                rd_kafka_event_DescribeConsumerGroups_result(ev), &n);
        if (n == 1 && rd_kafka_ConsumerGroupDescription_error(d[0]) == NULL &&
            rd_kafka_ConsumerGroupDescription_coordinator(d[0]))
            id = rd_kafka_Node_id(rd_kafka_ConsumerGroupDescription_coordinator(d[0]));
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    return id;
}

static pid_t broker_pid(const char *state, int32_t id)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/broker-%d/pid", state, id);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        bench_die("%s: %s", path, strerror(errno));
    long pid = 0;
    if (fscanf(f, "%ld", &pid) != 1 || pid <= 1)
        bench_die("%s: no pid", path);
    fclose(f);
    return (pid_t)pid;
}

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : 0;
}

/* Milliseconds since the epoch of a broker log line's timestamp
 * ("2026-11-21T06:41:00.123Z ..."), -1 if it has none. */
static int64_t log_line_ms(const char *line)
{
    struct tm tm = {0};
    int ms = 0;
    if (sscanf(line, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

struct load_report {
    int64_t leader_ms; /* wall clock of "leader at epoch" */
    int64_t loaded_ms; /* wall clock of "loaded" */
    int64_t load_ms;   /* the figure the broker logged */
    int64_t records;
    int64_t groups;
    int epoch;
};

/* Scans `log` from byte `from` for the loading of __consumer_offsets-P;
 * true once the "loaded" line is there. */
static bool scan_load(const char *log, off_t from, int32_t partition, struct load_report *r)
{
    FILE *f = fopen(log, "r");
    if (f == NULL)
        return false;
    if (fseeko(f, from, SEEK_SET) != 0) {
        fclose(f);
        return false;
    }
    char leader_tag[96], loaded_tag[96];
    snprintf(leader_tag, sizeof(leader_tag), "__consumer_offsets-%d: leader at epoch", partition);
    snprintf(loaded_tag, sizeof(loaded_tag), "__consumer_offsets-%d: loaded ", partition);
    char *line = NULL;
    size_t cap = 0;
    bool found = false;
    while (getline(&line, &cap, f) >= 0) {
        char *at;
        if ((at = strstr(line, leader_tag)) != NULL) {
            r->leader_ms = log_line_ms(line);
        } else if ((at = strstr(line, loaded_tag)) != NULL) {
            long long rec, grp, ms;
            int epoch;
            if (sscanf(at + strlen(loaded_tag),
                       "%lld records, %lld groups in %lld ms (leader epoch %d)", &rec, &grp, &ms,
                       &epoch) == 4) {
                r->loaded_ms = log_line_ms(line);
                r->records = rec;
                r->groups = grp;
                r->load_ms = ms;
                r->epoch = epoch;
                found = true;
            }
        }
    }
    free(line);
    fclose(f);
    return found;
}

/* Asks the coordinator for the committed offsets of every partition;
 * true when each is the expected last one. */
static bool committed_matches(rd_kafka_t *rk, const char *topic, int partitions,
                              const int64_t *expect, int timeout_ms, rd_kafka_resp_err_t *err)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; p++)
        rd_kafka_topic_partition_list_add(l, topic, p);
    *err = rd_kafka_committed(rk, l, timeout_ms);
    bool ok = *err == RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int i = 0; ok && i < l->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &l->elems[i];
        if (tp->err != RD_KAFKA_RESP_ERR_NO_ERROR)
            *err = tp->err;
        ok = tp->err == RD_KAFKA_RESP_ERR_NO_ERROR && tp->offset == expect[tp->partition];
    }
    rd_kafka_topic_partition_list_destroy(l);
    return ok;
}

static int run_failover(const struct options *o)
{
    if (o->state_dir == NULL)
        bench_die("failover wants --state DIR");
    const char *sig = o->signal == SIGKILL ? "KILL" : "TERM";
    char topic[128], group[128];
    snprintf(topic, sizeof(topic), "failover-%d-%s", (int)getpid(), sig);
    snprintf(group, sizeof(group), "failover-%d-%s", (int)getpid(), sig);
    int partitions = o->partitions;
    if (o->commits < partitions)
        bench_die("failover wants at least one commit per partition (--commits >= --partitions)");
    topic_create(o, topic, partitions, 3);
    printf("failover: group %s, %" PRId64 " commits of one partition each, round-robin over the "
           "%d partitions of %s (%" PRId64 " distinct offsets each), at most %d in flight; "
           "coordinator stopped with SIG%s\n",
           group, o->commits, partitions, topic, o->commits / partitions, o->inflight, sig);
    fflush(stdout);

    struct committer c;
    committer_init(o, &c, group);
    commit_warm_up(o, &c, topic);
    int64_t elapsed = commit_async_run(o, &c, topic, partitions, o->commits);
    printf("committed        %10.0f commits/s  (%.2f s)\n",
           (double)o->commits / ((double)elapsed / 1e9), (double)elapsed / 1e9);
    int64_t *expect = xcalloc((size_t)partitions, sizeof(*expect));
    for (int64_t i = 0; i < o->commits; i++)
        expect[i % partitions] = i / partitions + 1;
    rd_kafka_resp_err_t err;
    if (!committed_matches(c.rk, topic, partitions, expect, o->timeout_s * 1000, &err))
        bench_die("before the failover the committed offsets differ (%s)", rd_kafka_err2str(err));

    int32_t nparts = 0;
    int32_t offsets_partition = -1, leader = -1;
    rd_kafka_t *admin = client_new(o, RD_KAFKA_PRODUCER, rd_kafka_conf_new());
    (void)partition_leader(admin, "__consumer_offsets", 0, &nparts);
    if (nparts <= 0)
        bench_die("no metadata for __consumer_offsets");
    offsets_partition = group_partition(group, nparts);
    leader = partition_leader(admin, "__consumer_offsets", offsets_partition, NULL);
    int32_t described = describe_coordinator(o, admin, group);
    printf("coordinator      broker %d: __consumer_offsets-%d of %d (DescribeConsumerGroups: "
           "broker %d)\n",
           leader, offsets_partition, nparts, described);
    if (leader < 0 || (described >= 0 && described != leader))
        bench_die("coordinator unclear: leader %d, described %d", leader, described);

    char logs[8][4096];
    off_t log_from[8];
    for (int b = 1; b < 8; b++) {
        snprintf(logs[b], sizeof(logs[b]), "%s/broker-%d/broker.log", o->state_dir, b);
        log_from[b] = file_size(logs[b]);
    }
    pid_t pid = broker_pid(o->state_dir, leader);
    atomic_store(&broker_stopped, true);
    int64_t kill_wall = wall_ms();
    int64_t kill_ns = bench_now_ns();
    if (kill(pid, o->signal) != 0)
        bench_die("kill %d: %s", (int)pid, strerror(errno));

    /* Client side: the same client asks until the new coordinator answers
     * with every last offset. */
    int64_t deadline = deadline_after(o);
    int attempts = 0;
    int64_t answered_ns = 0;
    rd_kafka_resp_err_t last_err = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (;;) {
        attempts++;
        if (committed_matches(c.rk, topic, partitions, expect, 100, &err)) {
            answered_ns = bench_now_ns();
            break;
        }
        last_err = err;
        if (bench_now_ns() > deadline)
            bench_die(
                "rd_kafka_committed: no answer with the last offsets %d s after the kill (%s)",
                o->timeout_s, rd_kafka_err2str(last_err));
        usleep(5 * 1000);
    }
    printf("client           rd_kafka_committed() answered every last offset %.0f ms after "
           "the kill (%d calls; last error before: %s)\n",
           ms_of(answered_ns - kill_ns), attempts, rd_kafka_err2str(last_err));

    /* Broker side: the new leader's log. */
    int32_t new_leader = -1;
    while ((new_leader = partition_leader(admin, "__consumer_offsets", offsets_partition, NULL)) <
               0 ||
           new_leader == leader) {
        if (bench_now_ns() > deadline)
            bench_die("__consumer_offsets-%d: no new leader %d s after the kill", offsets_partition,
                      o->timeout_s);
        usleep(20 * 1000);
    }
    if (new_leader <= 0 || new_leader >= 8)
        bench_die("new leader %d: its log is not where the script keeps it", new_leader);
    struct load_report r = {.leader_ms = -1, .loaded_ms = -1};
    while (!scan_load(logs[new_leader], log_from[new_leader], offsets_partition, &r)) {
        if (bench_now_ns() > deadline)
            bench_die("%s: no \"loaded\" line for __consumer_offsets-%d", logs[new_leader],
                      offsets_partition);
        usleep(50 * 1000);
    }
    printf("new leader       broker %d: loaded %" PRId64 " records, %" PRId64 " groups in "
           "%" PRId64 " ms (leader epoch %d); leader at +%" PRId64 " ms after the kill, "
           "loaded at +%" PRId64 " ms (log clock, ms)\n",
           new_leader, r.records, r.groups, r.load_ms, r.epoch,
           r.leader_ms >= 0 ? r.leader_ms - kill_wall : -1, r.loaded_ms - kill_wall);
    printf("RESULT bench=failover signal=%s commits=%" PRId64 " partitions=%d load_ms=%" PRId64
           " records=%" PRId64 " leader_after_ms=%" PRId64 " loaded_after_ms=%" PRId64
           " client_ms=%.0f\n",
           sig, o->commits, partitions, r.load_ms, r.records,
           r.leader_ms >= 0 ? r.leader_ms - kill_wall : -1, r.loaded_ms - kill_wall,
           ms_of(answered_ns - kill_ns));
    rd_kafka_destroy(admin);
    rd_kafka_destroy(c.rk);
    free(expect);
    return 0;
}

/* ---- consume ---- */

static void produce_records(const struct options *o, const char *topic)
{
    struct bench_deliveries st = {0};
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    bench_conf_set(conf, "acks", "all"); /* the high watermark covers every record */
    bench_conf_set(conf, "linger.ms", "5");
    bench_conf_set(conf, "batch.size", "1000000");
    bench_conf_set(conf, "batch.num.messages", "10000");
    bench_conf_set(conf, "queue.buffering.max.kbytes", "32768");
    rd_kafka_conf_set_dr_msg_cb(conf, bench_on_delivery);
    rd_kafka_conf_set_opaque(conf, &st);
    rd_kafka_t *rk = client_new(o, RD_KAFKA_PRODUCER, conf);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    char *payload = xcalloc(1, (size_t)o->size);
    memset(payload, 'v', (size_t)o->size);
    int64_t start = bench_now_ns();
    for (int64_t i = 0; i < o->records; i++) {
        while (rd_kafka_produce(rkt, (int32_t)(i % o->partitions), RD_KAFKA_MSG_F_COPY, payload,
                                (size_t)o->size, NULL, 0, NULL) != 0) {
            if (rd_kafka_last_error() != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                bench_die("produce: %s", rd_kafka_err2str(rd_kafka_last_error()));
            rd_kafka_poll(rk, 1);
        }
        if ((i & 1023) == 0)
            rd_kafka_poll(rk, 0);
    }
    rd_kafka_resp_err_t err = rd_kafka_flush(rk, o->timeout_s * 1000);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR || atomic_load(&st.failed) > 0)
        bench_die("produce: %s", rd_kafka_err2str(err ? err : st.first_error));
    printf("produced         %10.0f records/s  (%" PRId64 " x %d B, acks=all, %.2f s)\n",
           (double)o->records / ((double)(bench_now_ns() - start) / 1e9), o->records, o->size,
           (double)(bench_now_ns() - start) / 1e9);
    free(payload);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
}

struct consume_result {
    int64_t got;
    int64_t start_ns, first_ns, last_ns;
};

/* Reads every record of the topic with a fresh consumer: subscribe() as a
 * group member with auto commit, or assign() of every partition from the
 * beginning without joining. */
static void consume_all(const struct options *o, const char *topic, const char *group,
                        bool subscribe, struct consume_result *res)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    bench_conf_set(conf, "group.id", group);
    bench_conf_set(conf, "fetch.wait.max.ms", "10");
    bench_conf_set(conf, "queued.min.messages", "1000000");
    bench_conf_set(conf, "auto.offset.reset", "earliest");
    bench_conf_set(conf, "enable.auto.commit", subscribe ? "true" : "false");
    rd_kafka_t *rk = client_new(o, RD_KAFKA_CONSUMER, conf);
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rk);
    /* Both kinds start with the topic's leaders known: otherwise assign()
     * waits for librdkafka's next metadata refresh (topic.metadata.refresh.
     * fast.interval.ms, about 0.5 s here), a client cost, not a group one. */
    if (partition_leader(rk, topic, 0, NULL) < 0)
        bench_die("no leader for %s [0]", topic);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(o->partitions);
    memset(res, 0, sizeof(*res));
    res->start_ns = bench_now_ns();
    if (subscribe) {
        rd_kafka_topic_partition_list_add(l, topic, RD_KAFKA_PARTITION_UA);
        if (rd_kafka_subscribe(rk, l) != RD_KAFKA_RESP_ERR_NO_ERROR)
            bench_die("subscribe failed");
    } else {
        for (int p = 0; p < o->partitions; p++)
            rd_kafka_topic_partition_list_add(l, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
        if (rd_kafka_assign(rk, l) != RD_KAFKA_RESP_ERR_NO_ERROR)
            bench_die("assign failed");
    }
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_message_t **batch = xcalloc(CONSUME_BATCH, sizeof(*batch));
    int64_t deadline = deadline_after(o);
    int64_t errors = 0;
    while (res->got < o->records) {
        if (bench_now_ns() > deadline)
            bench_die("%s consumer: %" PRId64 " of %" PRId64 " records in %d s",
                      subscribe ? "group" : "assign", res->got, o->records, o->timeout_s);
        ssize_t n = rd_kafka_consume_batch_queue(q, 1, batch, CONSUME_BATCH);
        int64_t now = bench_now_ns();
        for (ssize_t i = 0; i < n; i++) {
            rd_kafka_message_t *m = batch[i];
            if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
                if (res->got++ == 0)
                    res->first_ns = now;
            } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF && errors++ == 0) {
                fprintf(stderr, "group_bench: consume: %s\n", rd_kafka_message_errstr(m));
            }
            rd_kafka_message_destroy(m);
        }
        if (n > 0)
            res->last_ns = now;
    }
    free(batch);
    rd_kafka_queue_destroy(q);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

static int run_consume(const struct options *o)
{
    char topic[128];
    snprintf(topic, sizeof(topic), "consume-%d", (int)getpid());
    topic_create(o, topic, o->partitions, 3);
    printf("consume: topic %s (%d partitions, RF 3), %" PRId64 " records x %d B; each consumer "
           "reads them all, assign() and subscribe() alternated over %d rounds each\n",
           topic, o->partitions, o->records, o->size, o->rounds);
    fflush(stdout);
    produce_records(o, topic);
    double best[2] = {0, 0}, sum[2] = {0, 0};
    for (int r = 0; r < 2 * o->rounds; r++) {
        /* A B B A A B B A ...: neither kind always runs first. */
        bool subscribe = ((r + 1) / 2) % 2 == 1;
        char group[128];
        snprintf(group, sizeof(group), "consume-%d-%s-%d", (int)getpid(),
                 subscribe ? "group" : "assign", r);
        struct consume_result res;
        consume_all(o, topic, group, subscribe, &res);
        double rate = (double)res.got / ((double)(res.last_ns - res.start_ns) / 1e9);
        double rate_first = (double)res.got / ((double)(res.last_ns - res.first_ns) / 1e9);
        printf("  %-9s %10.0f records/s  %7.1f MB/s  (%.2f s; first record after %.0f ms; "
               "%.0f records/s from it)\n",
               subscribe ? "subscribe" : "assign", rate, rate * o->size / 1e6,
               (double)(res.last_ns - res.start_ns) / 1e9, ms_of(res.first_ns - res.start_ns),
               rate_first);
        fflush(stdout);
        best[subscribe] = rate > best[subscribe] ? rate : best[subscribe];
        sum[subscribe] += rate;
    }
    double mean_a = sum[0] / o->rounds, mean_s = sum[1] / o->rounds;
    printf("consume: assign() mean %.0f records/s (best %.0f), subscribe() mean %.0f (best %.0f); "
           "ratio of means %.2f, of bests %.2f\n",
           mean_a, best[0], mean_s, best[1], mean_s / mean_a, best[1] / best[0]);
    printf("RESULT bench=consume records=%" PRId64 " size=%d assign_per_s=%.0f "
           "subscribe_per_s=%.0f ratio=%.2f best_ratio=%.2f\n",
           o->records, o->size, mean_a, mean_s, mean_s / mean_a, best[1] / best[0]);
    return 0;
}

/* ---- main ---- */

static int64_t parse_count(const char *name, const char *arg, int64_t min, int64_t max)
{
    char *end;
    errno = 0;
    long long v = strtoll(arg, &end, 10);
    if (errno || *end != '\0' || v < min || v > max)
        bench_die("%s wants %" PRId64 "..%" PRId64, name, min, max);
    return v;
}

int main(int argc, char **argv)
{
    enum {
        OPT_TIMEOUT = 0x100,
        OPT_ROUNDS,
        OPT_HEARTBEAT,
        OPT_COLD,
        OPT_INFLIGHT,
        OPT_SYNC,
        OPT_REF,
        OPT_STATE,
        OPT_SIGNAL,
        OPT_RECORDS
    };
    static const struct option longopts[] = {
        {"bootstrap", required_argument, NULL, 'b'},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"partitions", required_argument, NULL, 'P'},
        {"rounds", required_argument, NULL, OPT_ROUNDS},
        {"heartbeat-ms", required_argument, NULL, OPT_HEARTBEAT},
        {"cold", no_argument, NULL, OPT_COLD},
        {"commits", required_argument, NULL, 'n'},
        {"inflight", required_argument, NULL, OPT_INFLIGHT},
        {"sync", required_argument, NULL, OPT_SYNC},
        {"ref-records", required_argument, NULL, OPT_REF},
        {"state", required_argument, NULL, OPT_STATE},
        {"signal", required_argument, NULL, OPT_SIGNAL},
        {"records", required_argument, NULL, OPT_RECORDS},
        {"size", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *env = getenv("VLTAVA_BROKERS");
    debug_contexts = getenv("GROUP_BENCH_DEBUG");
    if (debug_contexts != NULL && *debug_contexts == '\0')
        debug_contexts = NULL;
    struct options o = {
        .bootstrap = env != NULL && *env ? env : "127.0.0.1:9092",
        .timeout_s = 120,
        .heartbeat_ms = 3000,
        .inflight = 1000,
        .sync_commits = 5000,
        .records = 3000000,
        .size = 100,
        .signal = SIGKILL,
    };
    int partitions = 0, rounds = 0;
    int64_t commits = 0, ref = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "b:P:n:s:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'b':
            o.bootstrap = optarg;
            break;
        case OPT_TIMEOUT:
            o.timeout_s = (int)parse_count("--timeout", optarg, 1, 86400);
            break;
        case 'P':
            partitions = (int)parse_count("--partitions", optarg, 1, MAX_PARTITIONS);
            break;
        case OPT_ROUNDS:
            rounds = (int)parse_count("--rounds", optarg, 1, 10000);
            break;
        case OPT_HEARTBEAT:
            o.heartbeat_ms = (int)parse_count("--heartbeat-ms", optarg, 1, 600000);
            break;
        case OPT_COLD:
            o.cold = true;
            break;
        case 'n':
            commits = parse_count("--commits", optarg, 1, 100000000);
            break;
        case OPT_INFLIGHT:
            o.inflight = (int)parse_count("--inflight", optarg, 1, 1000000);
            break;
        case OPT_SYNC:
            o.sync_commits = parse_count("--sync", optarg, 1, 100000000);
            break;
        case OPT_REF:
            ref = parse_count("--ref-records", optarg, 1, 100000000);
            break;
        case OPT_STATE:
            o.state_dir = optarg;
            break;
        case OPT_SIGNAL:
            if (strcmp(optarg, "KILL") == 0 || strcmp(optarg, "9") == 0)
                o.signal = SIGKILL;
            else if (strcmp(optarg, "TERM") == 0 || strcmp(optarg, "15") == 0)
                o.signal = SIGTERM;
            else
                bench_die("--signal wants KILL or TERM");
            break;
        case OPT_RECORDS:
            o.records = parse_count("--records", optarg, 1, 100000000);
            break;
        case 's':
            o.size = (int)parse_count("--size", optarg, 1, 1000000);
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if (optind != argc - 1) {
        fputs(usage, stderr);
        return 2;
    }
    const char *cmd = argv[optind];
    bool failover = strcmp(cmd, "failover") == 0;
    o.partitions = partitions ? partitions : failover ? 100 : 12;
    o.rounds = rounds ? rounds : strcmp(cmd, "rebalance") == 0 ? 10 : 2;
    o.commits = commits ? commits : failover ? 100000 : 200000;
    o.ref_records = ref ? ref : o.commits;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(cmd, "rebalance") == 0)
        return run_rebalance(&o);
    if (strcmp(cmd, "commit") == 0)
        return run_commit(&o);
    if (failover)
        return run_failover(&o);
    if (strcmp(cmd, "consume") == 0)
        return run_consume(&o);
    fputs(usage, stderr);
    return 2;
}
