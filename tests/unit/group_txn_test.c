/* test_group_txn: transactional offset commits in the group coordinator,
 * one real broker in this process: a ZooKeeper (VLTAVA_TEST_ZK when
 * tests/run.sh exported one, else its own, as test_coord does), the
 * coordinator, a log manager in a temporary directory, the replica manager
 * and the group coordinator on one libev loop, configured by broker/config.c
 * from a properties file. __consumer_offsets has one partition, so every
 * group shares it and its log holds every write in order.
 *
 * Transaction markers are written through the replica layer
 * (replica_manager_write_txn_marker) and reported with
 * group_coordinator_txn_completed, as the transaction coordinator's marker
 * writer does. The load is checked by starting a second
 * group coordinator over the same log: it must rebuild exactly what the
 * first one served (Kafka's order rule included). */
#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <inttypes.h>
#include <ev.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "coordinator.h"
#include "group_coordinator.h"
#include "kafka_errors.h"
#include "log_manager.h"
#include "replica_manager.h"
#include "unit_run.h"
#include "vlog.h"

#define TOPIC   "t" /* the consumed topic whose offsets the tests commit */
#define WAIT_MS 15000

static struct ev_loop *loop;
static pid_t zk_pid = -1;
static char zk_dir[64];
static char zk_hosts[64];
static char log_dir[64];
static broker_config_t cfg;
static log_manager_t *logs;
static replica_manager_t *rm;
static coordinator_t *coord;
static group_coordinator_t *gc;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void tick(struct ev_loop *l, ev_timer *w, int revents)
{
    (void)l;
    (void)w;
    (void)revents;
}

/* Runs the loop until pred(arg) holds or WAIT_MS pass; returns pred. */
static bool run_until(bool (*pred)(void *), void *arg)
{
    ev_timer t;
    ev_timer_init(&t, tick, 0.01, 0.01);
    ev_timer_start(loop, &t);
    int64_t deadline = now_ms() + WAIT_MS;
    bool ok = pred(arg);
    while (!ok && now_ms() < deadline) {
        ev_run(loop, EVRUN_ONCE);
        ok = pred(arg);
    }
    ev_timer_stop(loop, &t);
    return ok;
}

static bool flag_set(void *arg)
{
    return *(bool *)arg;
}

/* ---- ZooKeeper ---- */

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof(a);
    bind(fd, (struct sockaddr *)&a, sizeof(a));
    getsockname(fd, (struct sockaddr *)&a, &l);
    close(fd);
    return ntohs(a.sin_port);
}

static bool zk_ruok(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = false;
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && write(fd, "ruok", 4) == 4) {
        char buf[8] = {0};
        ok = read(fd, buf, 4) == 4 && memcmp(buf, "imok", 4) == 0;
    }
    close(fd);
    return ok;
}

static int zk_start(void)
{
    const char *env = getenv("VLTAVA_TEST_ZK");
    if (env && env[0]) {
        snprintf(zk_hosts, sizeof(zk_hosts), "%s", env);
        return 0;
    }
    snprintf(zk_dir, sizeof(zk_dir), "/tmp/vltava-group-zk.XXXXXX");
    if (!mkdtemp(zk_dir))
        return -1;
    int port = free_port();
    char path[128];
    snprintf(path, sizeof(path), "%s/zoo.cfg", zk_dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f,
            "tickTime=500\ndataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\n"
            "admin.enableServer=false\nmaxClientCnxns=0\nminSessionTimeout=1000\n"
            "4lw.commands.whitelist=ruok\n",
            zk_dir, port);
    fclose(f);
    zk_pid = fork();
    if (zk_pid == 0) {
        char logpath[128];
        snprintf(logpath, sizeof(logpath), "%s/zk.log", zk_dir);
        if (!freopen(logpath, "w", stdout) || !freopen(logpath, "w", stderr))
            _exit(127);
        execlp("java", "java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
               "-Dzookeeper.admin.enableServer=false", "-cp",
               "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar",
               "org.apache.zookeeper.server.quorum.QuorumPeerMain", path, (char *)NULL);
        _exit(127);
    }
    snprintf(zk_hosts, sizeof(zk_hosts), "127.0.0.1:%d", port);
    for (int i = 0; i < 300; i++) {
        if (zk_ruok(port))
            return 0;
        usleep(100 * 1000);
    }
    fprintf(stderr, "ZooKeeper did not start (see %s/zk.log)\n", zk_dir);
    return -1;
}

/* ---- the broker ---- */

static void on_replica_event(void *arg, const char *topic, int32_t partition)
{
    (void)arg;
    if (gc != NULL)
        group_coordinator_partition_event(gc, topic, partition);
}

typedef struct created {
    bool done;
    int16_t error;
} created_t;

static void topic_created(void *arg, int16_t error, const char *message)
{
    created_t *c = arg;
    (void)message;
    c->done = true;
    c->error = error;
}

static int16_t create_topic(const char *name, int32_t partitions, const char *key,
                            const char *value)
{
    const char *keys[] = {key}, *values[] = {value};
    topic_spec_t spec = {.name = name,
                         .partitions = partitions,
                         .replication_factor = 1,
                         .config_keys = keys,
                         .config_values = values,
                         .nconfigs = key ? 1 : 0};
    created_t c = {0};
    coordinator_create_topic(coord, &spec, topic_created, &c);
    if (!run_until(flag_set, &c.done))
        return -1;
    return c.error;
}

/* Does the coordinator serve group "probe" (its partition loaded)? */
static bool groups_served(void *arg)
{
    (void)arg;
    group_offsets_t o;
    kslice_t id = {(const uint8_t *)"probe", 5};
    group_offset_fetch(gc, id, NULL, 0, false, &o);
    free(o.offsets);
    return o.error == KAFKA_NONE;
}

static int suite_init(void)
{
    loop = ev_loop_new(EVFLAG_AUTO);
    if (zk_start() != 0)
        return -1;
    snprintf(log_dir, sizeof(log_dir), "/tmp/vltava-group-txn.XXXXXX");
    if (!mkdtemp(log_dir))
        return -1;
    char conf[128];
    snprintf(conf, sizeof(conf), "%s.properties", log_dir);
    FILE *f = fopen(conf, "w");
    if (!f)
        return -1;
    fprintf(f,
            "broker.id=1\nzookeeper.connect=%s/group-txn-%d/vltava\nlog.dirs=%s\n"
            "replication.listener=127.0.0.1:%d\nadvertised.listeners=PLAINTEXT://127.0.0.1:19"
            "092\nzookeeper.session.timeout.ms=6000\noffsets.topic.num.partitions=1\n"
            "offsets.topic.replication.factor=1\ngroup.initial.rebalance.delay.ms=0\n",
            zk_hosts, (int)getpid(), log_dir, free_port());
    fclose(f);
    char *argv[] = {"vltava-broker", conf, NULL};
    char err[512];
    if (broker_config_load(&cfg, 2, argv, err, sizeof(err)) != 0) {
        fprintf(stderr, "config: %s\n", err);
        return -1;
    }
    unlink(conf);
    if (log_manager_open(cfg.log_dir, &cfg.log_defaults, &logs) != LOG_OK)
        return -1;
    rm = replica_manager_new(loop, &cfg, logs);
    const md_endpoint_t endpoint = {.listener = "PLAINTEXT",
                                    .host = (char *)cfg.advertised_host,
                                    .port = cfg.advertised_port,
                                    .security_protocol = "PLAINTEXT"};
    coordinator_config_t cc = {
        .zk_connect = cfg.zookeeper_connect,
        .zk_session_timeout_ms = cfg.zk_session_timeout_ms,
        .broker_id = cfg.broker_id,
        .endpoints = &endpoint,
        .nendpoints = 1,
        .rpc_host = cfg.rpc_host,
        .rpc_port = cfg.rpc_port,
        .default_partitions = 1,
        .default_replication_factor = 1,
    };
    coordinator_callbacks_t cb = replica_manager_callbacks(rm);
    if (coordinator_start(loop, &cc, &cb, &coord, err, sizeof(err)) != 0) {
        fprintf(stderr, "coordinator: %s\n", err);
        return -1;
    }
    replica_manager_set_coordinator(rm, coord);
    replica_manager_set_listener(rm, on_replica_event, NULL);
    gc = group_coordinator_new(loop, &cfg.groups, rm, coord);
    if (create_topic(GROUP_OFFSETS_TOPIC, 1, "cleanup.policy", "compact") != KAFKA_NONE ||
        create_topic(TOPIC, 8, NULL, NULL) != KAFKA_NONE)
        return -1;
    return run_until(groups_served, NULL) ? 0 : -1;
}

static int suite_clean(void)
{
    if (rm)
        replica_manager_stop(rm);
    if (coord)
        coordinator_stop(coord);
    group_coordinator_free(gc);
    gc = NULL;
    if (rm)
        replica_manager_free(rm);
    if (logs)
        log_manager_close(logs);
    broker_config_free(&cfg);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", log_dir);
    int rc = system(cmd);
    if (zk_pid > 0) {
        kill(zk_pid, SIGTERM);
        waitpid(zk_pid, NULL, 0);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", zk_dir);
        rc |= system(cmd);
    }
    ev_loop_destroy(loop);
    return rc == 0 ? 0 : -1;
}

/* ---- requests ---- */

static kslice_t sl(const char *s)
{
    return (kslice_t){(const uint8_t *)s, s ? (int32_t)strlen(s) : -1};
}

static void set_flag(void *arg)
{
    *(bool *)arg = true;
}

/* A transactional commit of TOPIC/partition = offset by producer pid at
 * epoch for group gid, as a v3 request naming gen / member / instance (pass -1,
 * "", NULL for v0-2's). Returns the part's error once answered. */
static int16_t txn_commit_epoch(const char *gid, int64_t pid, int16_t epoch, int32_t gen,
                                const char *member, const char *instance, int32_t partition,
                                int64_t offset)
{
    group_commit_part_t part = {.topic = sl(TOPIC),
                                .partition = partition,
                                .offset = offset,
                                .leader_epoch = 4,
                                .metadata = sl("txn"),
                                .error = -999};
    group_txn_commit_params_t p = {.version = 3,
                                   .group_id = sl(gid),
                                   .producer_id = pid,
                                   .producer_epoch = epoch,
                                   .generation_id = gen,
                                   .member_id = sl(member),
                                   .group_instance_id = sl(instance),
                                   .parts = &part,
                                   .nparts = 1};
    bool done = false;
    group_txn_offset_commit(gc, &p, set_flag, &done);
    CU_ASSERT_TRUE(run_until(flag_set, &done));
    return part.error;
}

static int16_t txn_commit_as(const char *gid, int64_t pid, int32_t gen, const char *member,
                             const char *instance, int32_t partition, int64_t offset)
{
    return txn_commit_epoch(gid, pid, 0, gen, member, instance, partition, offset);
}

static int16_t txn_commit(const char *gid, int64_t pid, int32_t partition, int64_t offset)
{
    return txn_commit_as(gid, pid, -1, "", NULL, partition, offset);
}

/* A regular commit from outside the group protocol (generation -1). */
static int16_t commit(const char *gid, int32_t partition, int64_t offset)
{
    group_commit_part_t part = {.topic = sl(TOPIC),
                                .partition = partition,
                                .offset = offset,
                                .leader_epoch = -1,
                                .commit_timestamp = -1,
                                .metadata = sl(""),
                                .error = -999};
    group_commit_params_t p = {.version = 8,
                               .group_id = sl(gid),
                               .generation_id = -1,
                               .member_id = sl(""),
                               .retention_time_ms = -1,
                               .parts = &part,
                               .nparts = 1};
    bool done = false;
    group_offset_commit(gc, &p, set_flag, &done);
    CU_ASSERT_TRUE(run_until(flag_set, &done));
    return part.error;
}

typedef struct fetched {
    int16_t group_error;
    int16_t error;
    int64_t offset;
} fetched_t;

static fetched_t fetch(const char *gid, int32_t partition, bool require_stable)
{
    group_topic_partition_t want = {.topic = sl(TOPIC), .partition = partition};
    group_offsets_t o;
    group_offset_fetch(gc, sl(gid), &want, 1, require_stable, &o);
    fetched_t f = {.group_error = o.error, .error = -999, .offset = -999};
    if (o.error == KAFKA_NONE && o.noffsets == 1) {
        f.error = o.offsets[0].error;
        f.offset = o.offsets[0].offset;
    }
    free(o.offsets);
    return f;
}

/* The committed offset (-1: none) a plain OffsetFetch answers. */
static int64_t committed(const char *gid, int32_t partition)
{
    fetched_t f = fetch(gid, partition, false);
    CU_ASSERT_EQUAL(f.group_error, KAFKA_NONE);
    CU_ASSERT_EQUAL(f.error, KAFKA_NONE);
    return f.offset;
}

/* What a stable OffsetFetch (require_stable) answers for the partition. */
static int16_t stable_error(const char *gid, int32_t partition)
{
    fetched_t f = fetch(gid, partition, true);
    CU_ASSERT_EQUAL(f.group_error, KAFKA_NONE);
    if (f.error == KAFKA_UNSTABLE_OFFSET_COMMIT)
        CU_ASSERT_EQUAL(f.offset, -1); /* no offset about to change */
    return f.error;
}

/* ---- transaction markers ---- */

/* Writes pid's marker (at epoch) to the offsets partition through the
 * replica layer and tells the group coordinator, as the transaction
 * coordinator's marker writer does. */
static void marker_at(int64_t pid, int16_t epoch, bool commit_it)
{
    const replica_partition_t *rp =
        replica_manager_get(rm, GROUP_OFFSETS_TOPIC, strlen(GROUP_OFFSETS_TOPIC), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rp);
    int64_t at = -1;
    int16_t error = replica_manager_write_txn_marker(rm, rp, pid, epoch, commit_it, 0, &at);
    CU_ASSERT_EQUAL_FATAL(error, KAFKA_NONE);
    CU_ASSERT(at >= 0);
    group_coordinator_txn_completed(gc, 0, pid, commit_it, at);
}

static void marker(int64_t pid, bool commit_it)
{
    marker_at(pid, 0, commit_it);
}

/* ---- tests ---- */

/* Pending until the marker: invisible to a plain fetch, unstable to a
 * stable one; the commit marker makes it the committed offset. */
static void test_pending_then_committed(void)
{
    CU_ASSERT_EQUAL(txn_commit("g-commit", 1000, 0, 5), KAFKA_NONE);
    CU_ASSERT_EQUAL(committed("g-commit", 0), -1);
    CU_ASSERT_EQUAL(stable_error("g-commit", 0), KAFKA_UNSTABLE_OFFSET_COMMIT);
    CU_ASSERT_EQUAL(stable_error("g-commit", 1), KAFKA_NONE); /* only its partition */
    /* A marker of another producer, or in another partition, changes nothing. */
    marker(999, true);
    group_coordinator_txn_completed(gc, 7, 1000, true, 0);
    CU_ASSERT_EQUAL(stable_error("g-commit", 0), KAFKA_UNSTABLE_OFFSET_COMMIT);
    marker(1000, true);
    CU_ASSERT_EQUAL(committed("g-commit", 0), 5);
    CU_ASSERT_EQUAL(stable_error("g-commit", 0), KAFKA_NONE);
    /* The producer's next transaction: pending over the committed value. */
    CU_ASSERT_EQUAL(txn_commit("g-commit", 1000, 0, 9), KAFKA_NONE);
    CU_ASSERT_EQUAL(committed("g-commit", 0), 5);
    CU_ASSERT_EQUAL(stable_error("g-commit", 0), KAFKA_UNSTABLE_OFFSET_COMMIT);
    marker(1000, true);
    CU_ASSERT_EQUAL(committed("g-commit", 0), 9);
}

static void test_abort_drops(void)
{
    CU_ASSERT_EQUAL(commit("g-abort", 1, 3), KAFKA_NONE);
    CU_ASSERT_EQUAL(txn_commit("g-abort", 1001, 1, 7), KAFKA_NONE);
    CU_ASSERT_EQUAL(txn_commit("g-abort", 1001, 2, 8), KAFKA_NONE);
    CU_ASSERT_EQUAL(stable_error("g-abort", 1), KAFKA_UNSTABLE_OFFSET_COMMIT);
    marker(1001, false);
    CU_ASSERT_EQUAL(committed("g-abort", 1), 3);
    CU_ASSERT_EQUAL(committed("g-abort", 2), -1);
    CU_ASSERT_EQUAL(stable_error("g-abort", 1), KAFKA_NONE);
    CU_ASSERT_EQUAL(stable_error("g-abort", 2), KAFKA_NONE);
}

/* Kafka's order rule: of a regular and a transactional commit for one
 * partition, the one appended later wins, whenever the marker comes. */
static void test_order_rule(void)
{
    /* transactional first, regular after it, then the commit marker */
    CU_ASSERT_EQUAL(txn_commit("g-order", 1002, 0, 20), KAFKA_NONE);
    CU_ASSERT_EQUAL(commit("g-order", 0, 10), KAFKA_NONE);
    CU_ASSERT_EQUAL(committed("g-order", 0), 10);
    marker(1002, true);
    CU_ASSERT_EQUAL(committed("g-order", 0), 10);
    /* regular first, transactional after it */
    CU_ASSERT_EQUAL(commit("g-order", 1, 30), KAFKA_NONE);
    CU_ASSERT_EQUAL(txn_commit("g-order", 1003, 1, 40), KAFKA_NONE);
    CU_ASSERT_EQUAL(committed("g-order", 1), 30);
    marker(1003, true);
    CU_ASSERT_EQUAL(committed("g-order", 1), 40);
    /* a regular commit between the transactional one and an abort stays */
    CU_ASSERT_EQUAL(txn_commit("g-order", 1004, 2, 60), KAFKA_NONE);
    CU_ASSERT_EQUAL(commit("g-order", 2, 50), KAFKA_NONE);
    marker(1004, false);
    CU_ASSERT_EQUAL(committed("g-order", 2), 50);
}

/* One producer's transaction spans groups: its marker completes them all;
 * another producer's pending offsets for the same partition stay. */
static void test_producers_and_groups(void)
{
    CU_ASSERT_EQUAL(txn_commit("g-a", 1005, 3, 70), KAFKA_NONE);
    CU_ASSERT_EQUAL(txn_commit("g-b", 1005, 3, 71), KAFKA_NONE);
    CU_ASSERT_EQUAL(txn_commit("g-a", 1006, 3, 72), KAFKA_NONE);
    marker(1005, true);
    CU_ASSERT_EQUAL(committed("g-a", 3), 70);
    CU_ASSERT_EQUAL(committed("g-b", 3), 71);
    CU_ASSERT_EQUAL(stable_error("g-a", 3), KAFKA_UNSTABLE_OFFSET_COMMIT); /* 1006's */
    CU_ASSERT_EQUAL(stable_error("g-b", 3), KAFKA_NONE);
    marker(1006, true);
    CU_ASSERT_EQUAL(committed("g-a", 3), 72);
}

/* Request-level refusals, before anything is written. */
static void test_refusals(void)
{
    CU_ASSERT_EQUAL(txn_commit("", 1007, 0, 1), KAFKA_INVALID_GROUP_ID);
    CU_ASSERT_EQUAL(txn_commit("g-refused", -1, 0, 1), KAFKA_INVALID_PRODUCER_ID_MAPPING);
    CU_ASSERT_EQUAL(txn_commit("g-refused", 1007, 99, 1), KAFKA_UNKNOWN_TOPIC_OR_PARTITION);
    /* a member of a group that does not exist: refused, and no group made */
    CU_ASSERT_EQUAL(txn_commit_as("g-none", 1007, 1, "m", NULL, 0, 1), KAFKA_UNKNOWN_MEMBER_ID);
    group_description_t d;
    group_describe(gc, sl("g-none"), &d);
    CU_ASSERT_EQUAL(d.error, KAFKA_NONE);
    CU_ASSERT_STRING_EQUAL(d.state, "Dead");
    free(d.members);
    CU_ASSERT_EQUAL(stable_error("g-refused", 0), KAFKA_NONE);
}

/* The replica layer checks the producer's epoch on the coordinator's
 * transactional batch: a fenced (older) producer's commit is refused with
 * INVALID_PRODUCER_EPOCH and nothing of it is pending. */
static void test_stale_epoch(void)
{
    CU_ASSERT_EQUAL(txn_commit_epoch("g-epoch", 1011, 3, -1, "", NULL, 7, 90), KAFKA_NONE);
    CU_ASSERT_EQUAL(txn_commit_epoch("g-epoch", 1011, 2, -1, "", NULL, 7, 91),
                    KAFKA_INVALID_PRODUCER_EPOCH);
    CU_ASSERT_EQUAL(stable_error("g-epoch", 7), KAFKA_UNSTABLE_OFFSET_COMMIT);
    marker_at(1011, 3, true);
    CU_ASSERT_EQUAL(committed("g-epoch", 7), 90);
    CU_ASSERT_EQUAL(stable_error("g-epoch", 7), KAFKA_NONE);
}

typedef struct joined {
    bool done;
    int16_t error;
    int32_t generation;
    char member_id[128];
} joined_t;

static void join_done(void *arg, const group_join_result_t *res)
{
    joined_t *j = arg;
    j->done = true;
    j->error = res->error;
    j->generation = res->generation_id;
    snprintf(j->member_id, sizeof(j->member_id), "%s", res->member_id);
}

static void sync_done(void *arg, const group_sync_result_t *res)
{
    joined_t *j = arg;
    j->done = true;
    j->error = res->error;
}

/* KIP-447 (v3): a producer naming its consumer's member and generation is
 * checked against them as Kafka's validateOffsetCommit does; v0-2's (no
 * member) commit to a group with members all the same. */
static void test_v3_member_checks(void)
{
    const char *gid = "g-members";
    group_protocol_t proto = {sl("range"), sl("sub")};
    group_join_params_t jp = {.version = 5,
                              .group_id = sl(gid),
                              .session_timeout_ms = 10000,
                              .rebalance_timeout_ms = 10000,
                              .member_id = sl(""),
                              .group_instance_id = sl("i1"),
                              .protocol_type = sl("consumer"),
                              .protocols = &proto,
                              .nprotocols = 1,
                              .client_id = sl("c"),
                              .client_host = "/127.0.0.1"};
    joined_t j = {0};
    group_join(gc, &jp, join_done, &j);
    CU_ASSERT_TRUE_FATAL(run_until(flag_set, &j.done));
    CU_ASSERT_EQUAL_FATAL(j.error, KAFKA_NONE);
    group_assignment_t as = {sl(j.member_id), sl("A")};
    group_sync_params_t sp = {.version = 3,
                              .group_id = sl(gid),
                              .generation_id = j.generation,
                              .member_id = sl(j.member_id),
                              .group_instance_id = sl("i1"),
                              .assignments = &as,
                              .nassignments = 1};
    joined_t s = {0};
    group_sync(gc, &sp, sync_done, &s);
    CU_ASSERT_TRUE_FATAL(run_until(flag_set, &s.done));
    CU_ASSERT_EQUAL_FATAL(s.error, KAFKA_NONE);

    const int32_t gen = j.generation;
    const char *m = j.member_id;
    CU_ASSERT_EQUAL(txn_commit_as(gid, 1008, gen + 1, m, "i1", 4, 1), KAFKA_ILLEGAL_GENERATION);
    CU_ASSERT_EQUAL(txn_commit_as(gid, 1008, gen, "nobody", NULL, 4, 1), KAFKA_UNKNOWN_MEMBER_ID);
    CU_ASSERT_EQUAL(txn_commit_as(gid, 1008, gen, "nobody", "i1", 4, 1), KAFKA_FENCED_INSTANCE_ID);
    CU_ASSERT_EQUAL(txn_commit_as(gid, 1008, gen, m, "i9", 4, 1), KAFKA_UNKNOWN_MEMBER_ID);
    CU_ASSERT_EQUAL(txn_commit_as(gid, 1008, -1, m, NULL, 4, 1), KAFKA_ILLEGAL_GENERATION);
    CU_ASSERT_EQUAL(stable_error(gid, 4), KAFKA_NONE); /* nothing pending from those */
    CU_ASSERT_EQUAL(txn_commit_as(gid, 1008, gen, m, "i1", 4, 11), KAFKA_NONE);
    CU_ASSERT_EQUAL(txn_commit(gid, 1009, 5, 12), KAFKA_NONE); /* v0-2: no member named */
    marker(1008, true);
    marker(1009, true);
    CU_ASSERT_EQUAL(committed(gid, 4), 11);
    CU_ASSERT_EQUAL(committed(gid, 5), 12);
}

/* A producer left pending for the reload: its marker comes after it. */
static void test_left_pending(void)
{
    CU_ASSERT_EQUAL(commit("g-later", 6, 80), KAFKA_NONE);
    CU_ASSERT_EQUAL(txn_commit("g-later", 1010, 6, 81), KAFKA_NONE);
    CU_ASSERT_EQUAL(txn_commit("g-only-pending", 1010, 6, 82), KAFKA_NONE);
    CU_ASSERT_EQUAL(committed("g-later", 6), 80);
    CU_ASSERT_EQUAL(stable_error("g-later", 6), KAFKA_UNSTABLE_OFFSET_COMMIT);
}

/* Everything the tests above left, as seen now. */
typedef struct snapshot {
    int64_t offsets[16];
    int16_t stable[16];
} snapshot_t;

static const struct {
    const char *group;
    int32_t partition;
} watched[] = {{"g-commit", 0},  {"g-abort", 1},   {"g-abort", 2}, {"g-order", 0},
               {"g-order", 1},   {"g-order", 2},   {"g-a", 3},     {"g-b", 3},
               {"g-members", 4}, {"g-members", 5}, {"g-later", 6}, {"g-only-pending", 6},
               {"g-refused", 0}, {"g-epoch", 7}};
#define NWATCHED (sizeof(watched) / sizeof(watched[0]))

static void take(snapshot_t *s)
{
    for (size_t i = 0; i < NWATCHED; i++) {
        s->offsets[i] = committed(watched[i].group, watched[i].partition);
        s->stable[i] = stable_error(watched[i].group, watched[i].partition);
    }
}

/* A new coordinator replays the partition (the failover of the offsets
 * partition's leadership, in one process): committed, aborted, ordered and
 * pending offsets come back as they were served, and a marker written after
 * the load completes the pending ones. */
static void test_reload(void)
{
    snapshot_t before, after;
    take(&before);
    CU_ASSERT_EQUAL(before.offsets[0], 9);
    CU_ASSERT_EQUAL(before.offsets[3], 10);
    CU_ASSERT_EQUAL(before.offsets[4], 40);
    CU_ASSERT_EQUAL(before.stable[10], KAFKA_UNSTABLE_OFFSET_COMMIT);
    group_coordinator_free(gc);
    gc = group_coordinator_new(loop, &cfg.groups, rm, coord);
    CU_ASSERT_TRUE_FATAL(run_until(groups_served, NULL));
    take(&after);
    for (size_t i = 0; i < NWATCHED; i++) {
        CU_ASSERT_EQUAL(after.offsets[i], before.offsets[i]);
        CU_ASSERT_EQUAL(after.stable[i], before.stable[i]);
        if (after.offsets[i] != before.offsets[i] || after.stable[i] != before.stable[i])
            printf("\n    %s/%d: %" PRId64 " (%d) after the load, %" PRId64 " (%d) before",
                   watched[i].group, watched[i].partition, after.offsets[i], after.stable[i],
                   before.offsets[i], before.stable[i]);
    }
    marker(1010, true);
    CU_ASSERT_EQUAL(committed("g-later", 6), 81);
    CU_ASSERT_EQUAL(committed("g-only-pending", 6), 82);
    CU_ASSERT_EQUAL(stable_error("g-later", 6), KAFKA_NONE);
}

int main(void)
{
    vlog_set_level(getenv("VLTAVA_TEST_VERBOSE") ? VLOG_DEBUG : VLOG_ERROR);
    if (CU_initialize_registry() != CUE_SUCCESS)
        return EXIT_FAILURE;
    CU_pSuite s = CU_add_suite("group_txn", suite_init, suite_clean);
    CU_add_test(s, "pending until the commit marker", test_pending_then_committed);
    CU_add_test(s, "the abort marker drops them", test_abort_drops);
    CU_add_test(s, "regular and transactional: the later appended wins", test_order_rule);
    CU_add_test(s, "one producer, several groups", test_producers_and_groups);
    CU_add_test(s, "refusals", test_refusals);
    CU_add_test(s, "a fenced producer's epoch", test_stale_epoch);
    CU_add_test(s, "v3 member, generation and instance checks", test_v3_member_checks);
    CU_add_test(s, "left pending", test_left_pending);
    CU_add_test(s, "a reload rebuilds the same state", test_reload);
    return unit_run_registered();
}
