/* The coordinator against a real ZooKeeper: several coordinators (brokers)
 * in one process on one libev loop. Uses VLTAVA_TEST_ZK when tests/run.sh
 * exported it, else starts its own ZooKeeper (Debian's package). */
#include <CUnit/CUnit.h>
#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>
#include <zookeeper/zookeeper.h>

#include "coord_state.h"
#include "coord_test.h"
#include "kafka_errors.h"
#include "rpc.h"
#include "rpc.pb-c.h"
#include "xalloc.h"

static struct ev_loop *loop;
static char zk_hosts[64];
static pid_t zk_pid = -1;
static char zk_dir[256];
static int chroot_seq;

/* ---- ZooKeeper for the suite ---- */

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

static int suite_init(void)
{
    loop = ev_loop_new(EVFLAG_AUTO);
    const char *env = getenv("VLTAVA_TEST_ZK");
    if (env && env[0]) {
        snprintf(zk_hosts, sizeof(zk_hosts), "%s", env);
        return 0;
    }
    snprintf(zk_dir, sizeof(zk_dir), "/tmp/vltava-coord-zk.XXXXXX");
    if (!mkdtemp(zk_dir))
        return -1;
    int port = free_port();
    char path[300];
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
        char logpath[300];
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

static int suite_clean(void)
{
    if (zk_pid > 0) {
        kill(zk_pid, SIGTERM);
        waitpid(zk_pid, NULL, 0);
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", zk_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", zk_dir);
    }
    ev_loop_destroy(loop);
    return 0;
}

/* ---- helpers ---- */

typedef struct broker_rec {
    int changed, removed;
    int32_t last_leader;
    /* When set, the next partition_changed asks it for two reloads, as
     * an offline replicas report or an ISR change from a callback does
     * (install_metadata runs the callbacks). */
    coordinator_t *reload_from_callback;
} broker_rec_t;

static void on_changed(void *arg, const md_topic_t *t, const md_partition_t *p)
{
    (void)t;
    broker_rec_t *r = arg;
    r->changed++;
    r->last_leader = p->leader;
    if (r->reload_from_callback) {
        coord_request_reload(r->reload_from_callback);
        coord_request_partial_reload(r->reload_from_callback);
        r->reload_from_callback = NULL;
    }
}

static void on_removed(void *arg, const char *topic, int32_t partition)
{
    (void)topic;
    (void)partition;
    ((broker_rec_t *)arg)->removed++;
}

static void new_chroot(char *out, size_t size)
{
    snprintf(out, size, "%s/coordtest-%d-%d/vltava", zk_hosts, (int)getpid(), ++chroot_seq);
}

/* auto.leader.rebalance.enable of the brokers start_broker starts. */
static bool start_with_rebalance = true;

static coordinator_t *start_broker(const char *connect, int32_t id, broker_rec_t *rec, char *err,
                                   size_t err_size)
{
    const md_endpoint_t endpoint = {.listener = "PLAINTEXT",
                                    .host = "127.0.0.1",
                                    .port = 19000 + id,
                                    .security_protocol = "PLAINTEXT"};
    coordinator_config_t cfg = {
        .zk_connect = connect,
        .zk_session_timeout_ms = 2000,
        .broker_id = id,
        .endpoints = &endpoint,
        .nendpoints = 1,
        .rpc_host = "127.0.0.1",
        .rpc_port = free_port(),
        .default_partitions = 1,
        .default_replication_factor = 1,
        .auto_leader_rebalance = start_with_rebalance,
        .leader_imbalance_check_interval_s =
            1, /* the preferred leader back within the test's waits */
    };
    coordinator_callbacks_t cb = {
        .arg = rec, .partition_changed = on_changed, .partition_removed = on_removed};
    coordinator_t *c = NULL;
    if (coordinator_start(loop, &cfg, &cb, &c, err, err_size) != 0)
        return NULL;
    return c;
}

static void tick_cb(struct ev_loop *l, ev_timer *w, int revents)
{
    (void)l;
    (void)w;
    (void)revents;
}

typedef bool (*pred_fn)(void *arg);

static bool run_until(pred_fn pred, void *arg, int timeout_ms)
{
    ev_timer t;
    ev_timer_init(&t, tick_cb, 0.01, 0.01);
    ev_timer_start(loop, &t);
    int64_t deadline = coord_now_ms() + timeout_ms;
    bool ok = pred(arg);
    while (!ok && coord_now_ms() < deadline) {
        ev_run(loop, EVRUN_ONCE);
        ok = pred(arg);
    }
    ev_timer_stop(loop, &t);
    return ok;
}

typedef struct admin_result {
    bool done;
    int16_t code;
    char msg[256];
} admin_result_t;

static void admin_done(void *arg, int16_t code, const char *message)
{
    admin_result_t *r = arg;
    CU_ASSERT_FALSE(r->done); /* exactly once */
    r->done = true;
    r->code = code;
    snprintf(r->msg, sizeof(r->msg), "%s", message ? message : "");
}

static bool admin_finished(void *arg)
{
    return ((admin_result_t *)arg)->done;
}

static int16_t create_topic(coordinator_t *c, const char *name, int32_t partitions, int16_t rf,
                            const char *key, const char *value, bool validate_only)
{
    const char *keys[] = {key}, *values[] = {value};
    topic_spec_t spec = {.name = name,
                         .partitions = partitions,
                         .replication_factor = rf,
                         .config_keys = keys,
                         .config_values = values,
                         .nconfigs = key ? 1 : 0,
                         .validate_only = validate_only};
    admin_result_t r = {0};
    coordinator_create_topic(c, &spec, admin_done, &r);
    CU_ASSERT_TRUE(run_until(admin_finished, &r, 10000));
    return r.code;
}

static int16_t delete_topic(coordinator_t *c, const char *name)
{
    admin_result_t r = {0};
    coordinator_delete_topic(c, name, admin_done, &r);
    CU_ASSERT_TRUE(run_until(admin_finished, &r, 10000));
    return r.code;
}

static int16_t add_partitions(coordinator_t *c, const char *name, int32_t total)
{
    admin_result_t r = {0};
    coordinator_create_partitions(c, name, total, false, admin_done, &r);
    CU_ASSERT_TRUE(run_until(admin_finished, &r, 10000));
    return r.code;
}

static const md_topic_t *topic(coordinator_t *c, const char *name)
{
    return cluster_metadata_topic(coordinator_metadata(c), name, strlen(name));
}

typedef struct wait_topic {
    coordinator_t *c;
    const char *name;
    int32_t npartitions; /* 0: wait for absence */
} wait_topic_t;

static bool topic_as_expected(void *arg)
{
    wait_topic_t *w = arg;
    const md_topic_t *t = topic(w->c, w->name);
    return w->npartitions == 0 ? t == NULL : (t && t->npartitions == w->npartitions);
}

static bool is_controller(void *arg)
{
    return coordinator_is_controller(arg);
}

static bool t1_t3_led_anew(void *arg)
{
    const md_topic_t *t1 = topic(arg, "t1"), *t3 = topic(arg, "t3");
    return t1 && t3 && t1->partitions[0].leader_epoch == 1 && t1->partitions[1].leader_epoch == 1 &&
           t3->partitions[0].leader_epoch == 1 && t1->partitions[0].leader == 1 &&
           t3->partitions[0].leader == 1;
}

/* A plain synchronous ZooKeeper client for checks and interference. */
static zhandle_t *raw_client(const char *connect)
{
    zhandle_t *zh = zookeeper_init(connect, NULL, 5000, NULL, NULL, 0);
    for (int i = 0; i < 100 && zoo_state(zh) != ZOO_CONNECTED_STATE; i++)
        usleep(50 * 1000);
    return zh;
}

/* ---- tests ---- */

static void test_single_broker_topics(void)
{
    char connect[256], err[256];
    new_chroot(connect, sizeof(connect));
    broker_rec_t rec = {0};
    coordinator_t *c = start_broker(connect, 1, &rec, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_TRUE(coordinator_is_controller(c));
    const cluster_metadata_t *md = coordinator_metadata(c);
    CU_ASSERT_EQUAL(md->controller_id, 1);
    CU_ASSERT_EQUAL(md->nbrokers, 1);
    CU_ASSERT_EQUAL(strlen(md->cluster_id), 22);
    char cluster_id[64];
    snprintf(cluster_id, sizeof(cluster_id), "%s", md->cluster_id);

    CU_ASSERT_EQUAL(create_topic(c, "t1", 3, 1, "retention.ms", "60000", false), KAFKA_NONE);
    const md_topic_t *t = topic(c, "t1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_EQUAL(t->npartitions, 3);
    for (int p = 0; p < 3; p++) {
        CU_ASSERT_EQUAL(t->partitions[p].leader, 1);
        CU_ASSERT_EQUAL(t->partitions[p].leader_epoch, 0);
        CU_ASSERT_EQUAL(t->partitions[p].nisr, 1);
    }
    CU_ASSERT_EQUAL(t->nconfigs, 1);
    CU_ASSERT_STRING_EQUAL(t->config_keys[0], "retention.ms");
    CU_ASSERT_EQUAL(rec.changed, 3);
    uint8_t first_id[16];
    memcpy(first_id, t->id, 16);

    CU_ASSERT_EQUAL(create_topic(c, "t1", 3, 1, NULL, NULL, false), KAFKA_TOPIC_ALREADY_EXISTS);
    CU_ASSERT_EQUAL(create_topic(c, "t2", 3, 2, NULL, NULL, false),
                    KAFKA_INVALID_REPLICATION_FACTOR);
    CU_ASSERT_EQUAL(create_topic(c, "t2", 0, 1, NULL, NULL, false), KAFKA_INVALID_PARTITIONS);
    CU_ASSERT_EQUAL(create_topic(c, "t2", 1, 1, "retention.ms", "soon", false),
                    KAFKA_INVALID_CONFIG);
    CU_ASSERT_EQUAL(create_topic(c, "t2", 1, 1, "no.such.key", "1", false), KAFKA_INVALID_CONFIG);
    CU_ASSERT_EQUAL(create_topic(c, "bad/name", 1, 1, NULL, NULL, false),
                    KAFKA_INVALID_TOPIC_EXCEPTION);
    CU_ASSERT_EQUAL(create_topic(c, "t2", 2, 1, NULL, NULL, true), KAFKA_NONE);
    CU_ASSERT_PTR_NULL(topic(c, "t2"));
    /* defaults: -1 partitions and rf take num.partitions / default rf */
    CU_ASSERT_EQUAL(create_topic(c, "t3", -1, -1, NULL, NULL, false), KAFKA_NONE);
    CU_ASSERT_EQUAL(topic(c, "t3")->npartitions, 1);

    CU_ASSERT_EQUAL(add_partitions(c, "t1", 5), KAFKA_NONE);
    CU_ASSERT_EQUAL(topic(c, "t1")->npartitions, 5);
    CU_ASSERT_EQUAL(topic(c, "t1")->partitions[4].leader, 1);
    CU_ASSERT_EQUAL(rec.changed, 6);
    CU_ASSERT_EQUAL(add_partitions(c, "t1", 5), KAFKA_INVALID_PARTITIONS);
    CU_ASSERT_EQUAL(add_partitions(c, "nope", 5), KAFKA_UNKNOWN_TOPIC_OR_PARTITION);

    /* The znodes as the design's table has them. */
    zhandle_t *zh = raw_client(connect);
    struct Stat st;
    CU_ASSERT_EQUAL(zoo_exists(zh, "/brokers/topics/t1/partitions/4/state", 0, &st), ZOK);
    CU_ASSERT_EQUAL(zoo_exists(zh, "/config/topics/t1", 0, &st), ZOK);
    CU_ASSERT_EQUAL(zoo_exists(zh, "/brokers/ids/1", 0, &st), ZOK);
    CU_ASSERT_NOT_EQUAL(st.ephemeralOwner, 0);
    CU_ASSERT_EQUAL(zoo_exists(zh, "/controller", 0, &st), ZOK);
    CU_ASSERT_NOT_EQUAL(st.ephemeralOwner, 0);

    CU_ASSERT_EQUAL(delete_topic(c, "t1"), KAFKA_NONE);
    CU_ASSERT_PTR_NULL(topic(c, "t1"));
    CU_ASSERT_EQUAL(rec.removed, 5);
    CU_ASSERT_EQUAL(zoo_exists(zh, "/brokers/topics/t1", 0, &st), ZNONODE);
    CU_ASSERT_EQUAL(zoo_exists(zh, "/config/topics/t1", 0, &st), ZNONODE);
    CU_ASSERT_EQUAL(zoo_exists(zh, "/admin/delete_topics/t1", 0, &st), ZNONODE);
    CU_ASSERT_EQUAL(delete_topic(c, "t1"), KAFKA_UNKNOWN_TOPIC_OR_PARTITION);
    CU_ASSERT_EQUAL(create_topic(c, "t1", 2, 1, NULL, NULL, false), KAFKA_NONE);
    CU_ASSERT_EQUAL(topic(c, "t1")->npartitions, 2);
    CU_ASSERT_NOT_EQUAL(memcmp(topic(c, "t1")->id, first_id, 16), 0);
    CU_ASSERT_EQUAL(topic(c, "t1")->nconfigs, 0);

    /* The largest topic (with a long name) fits in one ZooKeeper multi to
     * create and to delete; one more partition is refused. */
    char big[230];
    memset(big, 'b', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    CU_ASSERT_EQUAL(create_topic(c, big, COORD_MAX_TOPIC_PARTITIONS + 1, 1, NULL, NULL, false),
                    KAFKA_INVALID_PARTITIONS);
    CU_ASSERT_EQUAL(create_topic(c, big, COORD_MAX_TOPIC_PARTITIONS, 1, NULL, NULL, false),
                    KAFKA_NONE);
    CU_ASSERT_EQUAL(topic(c, big)->npartitions, COORD_MAX_TOPIC_PARTITIONS);
    CU_ASSERT_EQUAL(add_partitions(c, big, COORD_MAX_TOPIC_PARTITIONS + 1),
                    KAFKA_INVALID_PARTITIONS);
    CU_ASSERT_EQUAL(delete_topic(c, big), KAFKA_NONE);
    CU_ASSERT_PTR_NULL(topic(c, big));
    rec.changed -= COORD_MAX_TOPIC_PARTITIONS;
    rec.removed -= COORD_MAX_TOPIC_PARTITIONS;

    /* Restart: the same cluster id, the topics loaded from ZooKeeper. */
    coordinator_stop(c);
    /* zookeeper_close() waits until the close is sent, not answered: the
     * ephemeral znode goes a moment later. */
    int rc = ZOK;
    for (int i = 0; i < 100 && (rc = zoo_exists(zh, "/brokers/ids/1", 0, &st)) == ZOK; i++)
        usleep(20 * 1000);
    CU_ASSERT_EQUAL(rc, ZNONODE);
    memset(&rec, 0, sizeof(rec));
    c = start_broker(connect, 1, &rec, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_STRING_EQUAL(coordinator_metadata(c)->cluster_id, cluster_id);
    CU_ASSERT_TRUE(rec.changed >= 3); /* t1's two partitions and t3's one */
    CU_ASSERT_TRUE(run_until(is_controller, c, 5000));
    /* Its previous process led them: the restart is a leave and a join, so
     * it leads them again at a new leader epoch. */
    CU_ASSERT_TRUE(run_until(t1_t3_led_anew, c, 5000));
    coordinator_stop(c);
    zookeeper_close(zh);
}

typedef struct leaders_of {
    coordinator_t *c;
    const char *name;
    int32_t leader_of_all; /* every partition led by this id (-1: offline) */
    int32_t only_for;      /* ... among partitions whose first replica is this */
} leaders_of_t;

static bool leaders_as_expected(void *arg)
{
    leaders_of_t *w = arg;
    const md_topic_t *t = topic(w->c, w->name);
    if (!t)
        return false;
    for (int32_t p = 0; p < t->npartitions; p++)
        if (t->partitions[p].replicas[0] == w->only_for &&
            t->partitions[p].leader != w->leader_of_all)
            return false;
    return true;
}

static void test_two_brokers_failover(void)
{
    char connect[256], err[256];
    new_chroot(connect, sizeof(connect));
    broker_rec_t r1 = {0}, r2 = {0};
    coordinator_t *c1 = start_broker(connect, 1, &r1, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c1);
    coordinator_t *c2 = start_broker(connect, 2, &r2, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c2);
    CU_ASSERT_TRUE(coordinator_is_controller(c1));
    CU_ASSERT_FALSE(coordinator_is_controller(c2));
    CU_ASSERT_EQUAL(coordinator_metadata(c2)->controller_id, 1);

    /* c1 must see c2 before it can spread replicas over both. */
    wait_topic_t none = {c1, "x", 0};
    (void)none;
    CU_ASSERT_EQUAL(create_topic(c2, "t", 4, 1, NULL, NULL, true), KAFKA_NOT_CONTROLLER);
    admin_result_t dr = {0};
    coordinator_delete_topic(c2, "t", admin_done, &dr);
    CU_ASSERT_TRUE(dr.done && dr.code == KAFKA_NOT_CONTROLLER);
    for (int i = 0; i < 100 && coordinator_metadata(c1)->nbrokers < 2; i++)
        run_until(is_controller, c2, 20); /* just turns the loop */
    CU_ASSERT_EQUAL_FATAL(coordinator_metadata(c1)->nbrokers, 2);
    CU_ASSERT_EQUAL(create_topic(c1, "t", 4, 1, NULL, NULL, false), KAFKA_NONE);
    CU_ASSERT_EQUAL(create_topic(c1, "r", 2, 2, NULL, NULL, false), KAFKA_NONE);
    wait_topic_t seen = {c2, "t", 4};
    CU_ASSERT_TRUE_FATAL(run_until(topic_as_expected, &seen, 5000));
    const md_topic_t *t = topic(c2, "t");
    int led[3] = {0};
    for (int p = 0; p < 4; p++)
        led[t->partitions[p].leader]++;
    CU_ASSERT_EQUAL(led[1], 2);
    CU_ASSERT_EQUAL(led[2], 2);
    wait_topic_t seen_r = {c2, "r", 2};
    CU_ASSERT_TRUE_FATAL(run_until(topic_as_expected, &seen_r, 5000));
    CU_ASSERT_EQUAL(r2.changed, 2 + 2); /* 2 of t, both of r */

    /* Auto-creation style: a non-controller forwards to the controller. */
    topic_spec_t fw = {
        .name = "fw", .partitions = 3, .replication_factor = 1, .validate_only = false};
    admin_result_t fr = {0};
    coordinator_create_topic(c2, &fw, admin_done, &fr);
    CU_ASSERT_TRUE(run_until(admin_finished, &fr, 10000));
    CU_ASSERT_EQUAL(fr.code, KAFKA_NONE);
    wait_topic_t seen_fw = {c2, "fw", 3};
    CU_ASSERT_TRUE(run_until(topic_as_expected, &seen_fw, 5000));
    memset(&fr, 0, sizeof(fr));
    coordinator_create_topic(c2, &fw, admin_done, &fr);
    CU_ASSERT_TRUE(run_until(admin_finished, &fr, 10000));
    CU_ASSERT_EQUAL(fr.code, KAFKA_TOPIC_ALREADY_EXISTS);
    CU_ASSERT_PTR_NOT_NULL(strstr(fr.msg, "already exists"));
    fw.name = "fw-bad";
    fw.replication_factor = 5;
    memset(&fr, 0, sizeof(fr));
    coordinator_create_topic(c2, &fw, admin_done, &fr);
    CU_ASSERT_TRUE(run_until(admin_finished, &fr, 10000));
    CU_ASSERT_EQUAL(fr.code, KAFKA_INVALID_REPLICATION_FACTOR);

    /* The controller leaves: c2 takes over; 1's rf-1 partitions go offline
     * with a new epoch; r's partitions move to 2 (it is in their ISR). */
    int64_t t0 = coord_now_ms();
    coordinator_stop(c1);
    CU_ASSERT_TRUE_FATAL(run_until(is_controller, c2, 10000));
    printf("\n    controller failover took %lld ms\n", (long long)(coord_now_ms() - t0));
    leaders_of_t off = {c2, "t", -1, 1};
    CU_ASSERT_TRUE(run_until(leaders_as_expected, &off, 5000));
    leaders_of_t r_on_2 = {c2, "r", 2, 1};
    CU_ASSERT_TRUE(run_until(leaders_as_expected, &r_on_2, 5000));
    t = topic(c2, "t");
    for (int p = 0; p < 4; p++) {
        const md_partition_t *mp = &t->partitions[p];
        if (mp->replicas[0] == 1) {
            CU_ASSERT_EQUAL(mp->leader_epoch, 1);
            CU_ASSERT_EQUAL(mp->noffline, 1);
        } else {
            CU_ASSERT_EQUAL(mp->leader, 2);
            CU_ASSERT_EQUAL(mp->leader_epoch, 0);
        }
    }
    /* Creating topics still works with the new controller. */
    CU_ASSERT_EQUAL(create_topic(c2, "after", 2, 1, NULL, NULL, false), KAFKA_NONE);

    /* Broker 1 returns: it leads its offline partitions again (epoch 2).
     * r-1 stays on 2: broker 1 left its ISR and an out-of-sync replica
     * must not lead. */
    memset(&r1, 0, sizeof(r1));
    c1 = start_broker(connect, 1, &r1, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c1);
    leaders_of_t back = {c2, "t", 1, 1};
    CU_ASSERT_TRUE(run_until(leaders_as_expected, &back, 10000));
    const md_topic_t *r = topic(c2, "r");
    int32_t rp = r->partitions[0].replicas[0] == 1 ? 0 : 1;
    CU_ASSERT_EQUAL(r->partitions[rp].leader, 2);
    CU_ASSERT_EQUAL(r->partitions[rp].nisr, 1);
    /* Once 1 is back in the ISR (the leader's job after it caught up;
     * written here as the leader would), the controller restores the
     * preferred leader. */
    zhandle_t *zh = raw_client(connect);
    char path[128], buf[256];
    snprintf(path, sizeof(path), "/brokers/topics/r/partitions/%d/state", rp);
    int len = sizeof(buf);
    struct Stat st;
    CU_ASSERT_EQUAL_FATAL(zoo_get(zh, path, 0, buf, &len, &st), ZOK);
    zk_partition_state_t ps;
    char derr[100];
    CU_ASSERT_EQUAL_FATAL(
        znode_decode_partition_state((uint8_t *)buf, (size_t)len, &ps, derr, sizeof(derr)), 0);
    int32_t isr[] = {2, 1};
    zk_partition_state_t grown = {.leader = ps.leader,
                                  .leader_epoch = ps.leader_epoch,
                                  .controller_epoch = ps.controller_epoch,
                                  .isr = isr,
                                  .nisr = 2};
    size_t glen;
    uint8_t *g = znode_encode_partition_state(&grown, &glen);
    CU_ASSERT_EQUAL(zoo_set(zh, path, (char *)g, (int)glen, st.version), ZOK);
    free(g);
    leaders_of_t r_back = {c2, "r", 1, 1};
    CU_ASSERT_TRUE(run_until(leaders_as_expected, &r_back, 10000));
    CU_ASSERT_EQUAL(topic(c2, "r")->partitions[rp].leader_epoch, ps.leader_epoch + 1);
    zk_partition_state_clear(&ps);
    zookeeper_close(zh);
    leaders_of_t back_c1 = {c1, "t", 1, 1};
    CU_ASSERT_TRUE(run_until(leaders_as_expected, &back_c1, 10000));
    t = topic(c1, "t");
    for (int p = 0; p < 4; p++)
        if (t->partitions[p].replicas[0] == 1)
            CU_ASSERT_EQUAL(t->partitions[p].leader_epoch, 2);
    CU_ASSERT_FALSE(coordinator_is_controller(c1));
    CU_ASSERT(r1.changed >= 2);
    coordinator_stop(c1);
    coordinator_stop(c2);
}

static void test_deposed_controller_cannot_write(void)
{
    char connect[256], err[256];
    new_chroot(connect, sizeof(connect));
    broker_rec_t r1 = {0};
    coordinator_t *c1 = start_broker(connect, 1, &r1, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c1);
    CU_ASSERT_TRUE_FATAL(coordinator_is_controller(c1));
    /* Someone else bumps the epoch (as a newly elected controller would). */
    zhandle_t *zh = raw_client(connect);
    char buf[64];
    int len = sizeof(buf);
    struct Stat st;
    CU_ASSERT_EQUAL_FATAL(zoo_get(zh, "/controller_epoch", 0, buf, &len, &st), ZOK);
    char derr[100];
    int32_t epoch;
    CU_ASSERT_EQUAL(
        znode_decode_controller_epoch((uint8_t *)buf, (size_t)len, &epoch, derr, sizeof(derr)), 0);
    size_t elen;
    uint8_t *e = znode_encode_controller_epoch(epoch + 1, &elen);
    CU_ASSERT_EQUAL(zoo_set(zh, "/controller_epoch", (char *)e, (int)elen, st.version), ZOK);
    free(e);
    CU_ASSERT_EQUAL(create_topic(c1, "fenced", 1, 1, NULL, NULL, false), KAFKA_NOT_CONTROLLER);
    CU_ASSERT_FALSE(coordinator_is_controller(c1));
    CU_ASSERT_EQUAL(zoo_exists(zh, "/brokers/topics/fenced", 0, &st), ZNONODE);
    CU_ASSERT_EQUAL(zoo_exists(zh, "/config/topics/fenced", 0, &st), ZNONODE);
    /* The stale /controller goes; the broker is elected again, one epoch on. */
    CU_ASSERT_EQUAL(zoo_delete(zh, "/controller", -1), ZOK);
    CU_ASSERT_TRUE(run_until(is_controller, c1, 10000));
    len = sizeof(buf);
    CU_ASSERT_EQUAL(zoo_get(zh, "/controller_epoch", 0, buf, &len, &st), ZOK);
    int32_t now_epoch;
    znode_decode_controller_epoch((uint8_t *)buf, (size_t)len, &now_epoch, derr, sizeof(derr));
    CU_ASSERT_EQUAL(now_epoch, epoch + 2);
    CU_ASSERT_EQUAL(create_topic(c1, "fenced", 1, 1, NULL, NULL, false), KAFKA_NONE);
    zookeeper_close(zh);
    coordinator_stop(c1);
}

static void test_duplicate_broker_id_refused(void)
{
    char connect[256], err[256] = "";
    new_chroot(connect, sizeof(connect));
    broker_rec_t r1 = {0}, r2 = {0};
    coordinator_t *c1 = start_broker(connect, 1, &r1, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c1);
    coordinator_t *dup = start_broker(connect, 1, &r2, err, sizeof(err));
    CU_ASSERT_PTR_NULL(dup);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "broker id 1 is already registered by a live broker at "
                                       "127.0.0.1:19001"));
    if (dup)
        coordinator_stop(dup);
    coordinator_stop(c1);
}

static void test_unreachable_zookeeper(void)
{
    char connect[64], err[256] = "";
    snprintf(connect, sizeof(connect), "127.0.0.1:%d/x", free_port());
    broker_rec_t r = {0};
    int64_t t0 = coord_now_ms();
    coordinator_t *c = start_broker(connect, 1, &r, err, sizeof(err));
    CU_ASSERT_PTR_NULL(c);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "unreachable"));
    CU_ASSERT(coord_now_ms() - t0 < 5000);
}

typedef struct rpc_answer {
    int calls;
    rpc_status_t status;
    int32_t error_code;
} rpc_answer_t;

static void on_rpc_answer(void *arg, rpc_status_t status, int32_t error_code,
                          const uint8_t *payload, size_t len)
{
    (void)payload;
    (void)len;
    rpc_answer_t *a = arg;
    a->calls++;
    a->status = status;
    a->error_code = error_code;
}

static bool answered(void *arg)
{
    return ((rpc_answer_t *)arg)->calls > 0;
}

/* Sends a LeaderAndIsr for (topic, partition) as controller `epoch`. */
static rpc_answer_t send_leader_and_isr(rpc_t *client, const md_topic_t *t, int32_t partition,
                                        int32_t epoch, int32_t leader, int32_t leader_epoch)
{
    Vltava__PartitionStateInfo pi = VLTAVA__PARTITION_STATE_INFO__INIT;
    pi.topic = t->name;
    pi.topic_id.data = (uint8_t *)t->id;
    pi.topic_id.len = 16;
    pi.partition = partition;
    pi.leader = leader;
    pi.leader_epoch = leader_epoch;
    pi.isr = &leader;
    pi.n_isr = 1;
    pi.replicas = t->partitions[partition].replicas;
    pi.n_replicas = (size_t)t->partitions[partition].nreplicas;
    Vltava__PartitionStateInfo *pp = &pi;
    Vltava__LeaderAndIsrRequest m = VLTAVA__LEADER_AND_ISR_REQUEST__INIT;
    m.controller_id = 9;
    m.controller_epoch = epoch;
    m.partitions = &pp;
    m.n_partitions = 1;
    uint8_t buf[512];
    size_t len = vltava__leader_and_isr_request__pack(&m, buf);
    rpc_answer_t a = {0};
    CU_ASSERT_EQUAL(rpc_send(client, 2, VLTAVA__RPC_TYPE__RPC_LEADER_AND_ISR, buf, len, 5000,
                             on_rpc_answer, &a),
                    0);
    CU_ASSERT_TRUE(run_until(answered, &a, 5000));
    return a;
}

/* Brokers 1 (the controller) and 2 in a fresh chroot, once broker 1 sees
 * both, with topic `name` (replication factor 2) created and known to
 * broker 2. The records stay the caller's: the callbacks write to them. */
static void start_pair_with_topic(const char *name, int32_t partitions, broker_rec_t *r1,
                                  coordinator_t **c1, broker_rec_t *r2, coordinator_t **c2)
{
    char connect[256], err[256];
    new_chroot(connect, sizeof(connect));
    *c1 = start_broker(connect, 1, r1, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(*c1);
    *c2 = start_broker(connect, 2, r2, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(*c2);
    for (int i = 0; i < 100 && coordinator_metadata(*c1)->nbrokers < 2; i++)
        run_until(is_controller, *c2, 20);
    CU_ASSERT_EQUAL(create_topic(*c1, name, partitions, 2, NULL, NULL, false), KAFKA_NONE);
    wait_topic_t seen = {*c2, name, partitions};
    CU_ASSERT_TRUE_FATAL(run_until(topic_as_expected, &seen, 5000));
}

static void test_stale_controller_rpcs_ignored(void)
{
    char err[256];
    broker_rec_t r1 = {0}, r2 = {0};
    coordinator_t *c1, *c2;
    start_pair_with_topic("f", 2, &r1, &c1, &r2, &c2);
    /* Controller epochs so far: 1 (c1's election). Pretend a controller of
     * epoch 0 speaks: ignored, partition unchanged. */
    rpc_config_t rc = {.self_id = 9};
    rpc_t *client = rpc_new(loop, &rc, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(client);
    rpc_set_peer(client, 2, "127.0.0.1", c2->cfg.rpc_port);
    const md_topic_t *t = topic(c2, "f");
    int32_t leader = t->partitions[0].leader, epoch0 = t->partitions[0].leader_epoch;
    int32_t other = leader == 1 ? 2 : 1;
    int changed_before = r2.changed;
    rpc_answer_t a = send_leader_and_isr(client, t, 0, 0, other, epoch0 + 5);
    CU_ASSERT_EQUAL(a.status, RPC_OK);
    CU_ASSERT_EQUAL(a.error_code, KAFKA_STALE_CONTROLLER_EPOCH);
    t = topic(c2, "f");
    CU_ASSERT_EQUAL(t->partitions[0].leader, leader);
    CU_ASSERT_EQUAL(t->partitions[0].leader_epoch, epoch0);
    CU_ASSERT_EQUAL(r2.changed, changed_before);
    /* The current controller epoch with an older leader epoch: no change. */
    a = send_leader_and_isr(client, t, 0, 1, other, epoch0 > 0 ? epoch0 - 1 : 0);
    CU_ASSERT_EQUAL(a.error_code, KAFKA_NONE);
    t = topic(c2, "f");
    CU_ASSERT_EQUAL(t->partitions[0].leader, leader);
    CU_ASSERT_EQUAL(r2.changed, changed_before);
    /* The current controller epoch and a newer leader epoch: applied. */
    a = send_leader_and_isr(client, t, 0, 1, other, epoch0 + 1);
    CU_ASSERT_EQUAL(a.error_code, KAFKA_NONE);
    t = topic(c2, "f");
    CU_ASSERT_EQUAL(t->partitions[0].leader, other);
    CU_ASSERT_EQUAL(t->partitions[0].leader_epoch, epoch0 + 1);
    CU_ASSERT_EQUAL(r2.changed, changed_before + 1);
    rpc_free(client);
    coordinator_stop(c2);
    coordinator_stop(c1);
}

static void test_stop_answers_admin_requests_in_flight(void)
{
    char connect[256], err[256];
    new_chroot(connect, sizeof(connect));
    broker_rec_t rec = {0};
    coordinator_t *c = start_broker(connect, 1, &rec, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_TRUE_FATAL(coordinator_is_controller(c));
    CU_ASSERT_EQUAL(create_topic(c, "d", 1, 1, NULL, NULL, false), KAFKA_NONE);
    topic_spec_t spec = {.name = "inflight", .partitions = 2, .replication_factor = 1};
    admin_result_t created = {0}, deleted = {0};
    coordinator_create_topic(c, &spec, admin_done, &created);
    coordinator_delete_topic(c, "d", admin_done, &deleted);
    CU_ASSERT_FALSE(created.done); /* their ZooKeeper writes are in flight */
    CU_ASSERT_FALSE(deleted.done);
    coordinator_stop(c);
    /* exactly once each (admin_done asserts it), success or a timeout */
    CU_ASSERT_TRUE(created.done);
    CU_ASSERT_TRUE(deleted.done);
    CU_ASSERT(created.code == KAFKA_NONE || created.code == KAFKA_REQUEST_TIMED_OUT);
    CU_ASSERT(deleted.code == KAFKA_NONE || deleted.code == KAFKA_REQUEST_TIMED_OUT);
}

typedef struct isr_wait {
    coordinator_t *c;
    int32_t nisr;
} isr_wait_t;

static bool isr_is(void *arg)
{
    isr_wait_t *w = arg;
    const md_topic_t *t = topic(w->c, "i");
    return t && t->partitions[0].nisr == w->nisr;
}

static int16_t alter_isr(coordinator_t *c, int32_t epoch, const int32_t *isr, int32_t n)
{
    admin_result_t r = {0};
    coordinator_alter_isr(c, "i", 0, epoch, isr, n, admin_done, &r);
    CU_ASSERT_TRUE(run_until(admin_finished, &r, 10000));
    return r.code;
}

static void test_leader_alters_isr(void)
{
    broker_rec_t r1 = {0}, r2 = {0};
    coordinator_t *c1, *c2;
    start_pair_with_topic("i", 1, &r1, &c1, &r2, &c2);
    const md_partition_t *p = &topic(c1, "i")->partitions[0];
    coordinator_t *leader = p->leader == 1 ? c1 : c2, *follower = p->leader == 1 ? c2 : c1;
    int32_t lid = p->leader, fid = p->leader == 1 ? 2 : 1, epoch = p->leader_epoch;
    int32_t alone[] = {lid}, both[] = {lid, fid}, without_leader[] = {fid}, twice[] = {lid, lid};
    CU_ASSERT_EQUAL(alter_isr(follower, epoch, alone, 1), KAFKA_NOT_LEADER_OR_FOLLOWER);
    CU_ASSERT_EQUAL(alter_isr(leader, epoch + 1, alone, 1), KAFKA_FENCED_LEADER_EPOCH);
    CU_ASSERT_EQUAL(alter_isr(leader, epoch, without_leader, 1), KAFKA_INVALID_REQUEST);
    CU_ASSERT_EQUAL(alter_isr(leader, epoch, twice, 2), KAFKA_INVALID_REQUEST);
    CU_ASSERT_EQUAL(alter_isr(leader, epoch, alone, 1), KAFKA_NONE);
    isr_wait_t shrunk1 = {c1, 1}, shrunk2 = {c2, 1};
    CU_ASSERT_TRUE(run_until(isr_is, &shrunk1, 5000));
    CU_ASSERT_TRUE(run_until(isr_is, &shrunk2, 5000));
    /* The ISR changes; leadership and its epoch do not. */
    CU_ASSERT_EQUAL(topic(c2, "i")->partitions[0].leader, lid);
    CU_ASSERT_EQUAL(topic(c2, "i")->partitions[0].leader_epoch, epoch);
    CU_ASSERT_EQUAL(alter_isr(leader, epoch, both, 2), KAFKA_NONE);
    isr_wait_t grown = {c2, 2};
    CU_ASSERT_TRUE(run_until(isr_is, &grown, 5000));
    coordinator_stop(c2);
    coordinator_stop(c1);
}

typedef struct elect_wait {
    int done;
} elect_wait_t;

static void elections_done(void *arg)
{
    ((elect_wait_t *)arg)->done++;
}

static bool elected(void *arg)
{
    return ((elect_wait_t *)arg)->done > 0;
}

/* Writes partition p of "e" as led by `leader` (the ISR kept), as if a
 * failover had moved it; returns the leader epoch written. */
static int32_t move_leader(const char *connect, int32_t p, int32_t leader)
{
    zhandle_t *zh = raw_client(connect);
    char path[128], buf[256];
    snprintf(path, sizeof(path), "/brokers/topics/e/partitions/%d/state", p);
    int len = sizeof(buf);
    struct Stat st;
    CU_ASSERT_EQUAL_FATAL(zoo_get(zh, path, 0, buf, &len, &st), ZOK);
    zk_partition_state_t ps;
    char derr[100];
    CU_ASSERT_EQUAL_FATAL(
        znode_decode_partition_state((uint8_t *)buf, (size_t)len, &ps, derr, sizeof(derr)), 0);
    int32_t epoch = ps.leader_epoch + 1;
    ps.leader = leader;
    ps.leader_epoch = epoch;
    size_t glen;
    uint8_t *g = znode_encode_partition_state(&ps, &glen);
    CU_ASSERT_EQUAL(zoo_set(zh, path, (char *)g, (int)glen, st.version), ZOK);
    free(g);
    zk_partition_state_clear(&ps);
    zookeeper_close(zh);
    return epoch;
}

typedef struct leader_wait {
    coordinator_t *c;
    int32_t partition, leader;
} leader_wait_t;

static bool leader_is(void *arg)
{
    leader_wait_t *w = arg;
    const md_topic_t *t = topic(w->c, "e");
    return t && t->partitions[w->partition].leader == w->leader;
}

static void test_elect_leaders(void)
{
    char connect[256], err[256];
    new_chroot(connect, sizeof(connect));
    broker_rec_t r1 = {0}, r2 = {0};
    start_with_rebalance = false; /* only the elections asked for move leaders */
    coordinator_t *c1 = start_broker(connect, 1, &r1, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c1);
    coordinator_t *c2 = start_broker(connect, 2, &r2, err, sizeof(err));
    start_with_rebalance = true;
    CU_ASSERT_PTR_NOT_NULL_FATAL(c2);
    for (int i = 0; i < 100 && coordinator_metadata(c1)->nbrokers < 2; i++)
        run_until(is_controller, c2, 20);
    CU_ASSERT_TRUE_FATAL(coordinator_is_controller(c1));
    CU_ASSERT_EQUAL(create_topic(c1, "e", 2, 2, NULL, NULL, false), KAFKA_NONE);
    wait_topic_t seen = {c2, "e", 2};
    CU_ASSERT_TRUE_FATAL(run_until(topic_as_expected, &seen, 5000));
    const md_partition_t *p0 = &topic(c1, "e")->partitions[0];
    const int32_t preferred = p0->replicas[0], other = p0->replicas[1];
    move_leader(connect, 0, other);
    leader_wait_t moved = {c1, 0, other};
    CU_ASSERT_TRUE_FATAL(run_until(leader_is, &moved, 5000));

    /* Not the controller: NOT_CONTROLLER at once. */
    coordinator_election_t one = {.topic = "e", .partition = 0};
    elect_wait_t w = {0};
    coordinator_elect_leaders(c2, COORDINATOR_ELECTION_PREFERRED, &one, 1, 5000, elections_done,
                              &w);
    CU_ASSERT_EQUAL(w.done, 1);
    CU_ASSERT_EQUAL(one.error, KAFKA_NOT_CONTROLLER);

    /* The controller: partition 0 named twice, answered twice, elected
     * once; the rest answered with Kafka's errors. */
    coordinator_election_t e[] = {{.topic = "e", .partition = 0},
                                  {.topic = "e", .partition = 1},
                                  {.topic = "e", .partition = 9},
                                  {.topic = "no", .partition = 0},
                                  {.topic = "e", .partition = 0}};
    memset(&w, 0, sizeof(w));
    coordinator_elect_leaders(c1, COORDINATOR_ELECTION_PREFERRED, e, 5, 10000, elections_done, &w);
    CU_ASSERT_EQUAL(w.done, 0); /* its write is in flight */
    CU_ASSERT_TRUE_FATAL(run_until(elected, &w, 10000));
    CU_ASSERT_EQUAL(w.done, 1);
    CU_ASSERT_EQUAL(e[0].error, KAFKA_NONE);
    CU_ASSERT_EQUAL(e[1].error, KAFKA_ELECTION_NOT_NEEDED);
    CU_ASSERT_EQUAL(e[2].error, KAFKA_UNKNOWN_TOPIC_OR_PARTITION);
    CU_ASSERT_EQUAL(e[3].error, KAFKA_UNKNOWN_TOPIC_OR_PARTITION);
    CU_ASSERT_EQUAL(e[4].error, KAFKA_NONE);
    /* answered once the controller's own cache shows it */
    CU_ASSERT_EQUAL(topic(c1, "e")->partitions[0].leader, preferred);
    leader_wait_t back = {c2, 0, preferred};
    CU_ASSERT_TRUE(run_until(leader_is, &back, 5000));

    /* Unclean with a live leader: not needed. */
    memset(&w, 0, sizeof(w));
    coordinator_elect_leaders(c1, COORDINATOR_ELECTION_UNCLEAN, &one, 1, 5000, elections_done, &w);
    CU_ASSERT_TRUE(run_until(elected, &w, 5000));
    CU_ASSERT_EQUAL(one.error, KAFKA_ELECTION_NOT_NEEDED);

    /* Stopping answers an election in flight, once. */
    move_leader(connect, 0, other);
    CU_ASSERT_TRUE_FATAL(run_until(leader_is, &moved, 5000));
    memset(&w, 0, sizeof(w));
    coordinator_elect_leaders(c1, COORDINATOR_ELECTION_PREFERRED, &one, 1, 10000, elections_done,
                              &w);
    CU_ASSERT_EQUAL(w.done, 0);
    coordinator_stop(c1);
    CU_ASSERT_EQUAL(w.done, 1);
    CU_ASSERT(one.error == KAFKA_NONE || one.error == KAFKA_REQUEST_TIMED_OUT);
    coordinator_stop(c2);
}

typedef struct pid_result {
    int done;
    int16_t error;
    int64_t first, last;
} pid_result_t;

static void pid_done(void *arg, int16_t error, int64_t first, int64_t last)
{
    pid_result_t *r = arg;
    r->done++;
    r->error = error;
    r->first = first;
    r->last = last;
}

typedef struct pid_wait {
    pid_result_t *results;
    int n;
} pid_wait_t;

static bool pids_done(void *arg)
{
    pid_wait_t *w = arg;
    for (int i = 0; i < w->n; i++)
        if (!w->results[i].done)
            return false;
    return true;
}

static int pid_cmp(const void *a, const void *b)
{
    const pid_result_t *x = a, *y = b;
    return (x->first > y->first) - (x->first < y->first);
}

/* Two brokers reserve producer-id blocks at the same time, each request
 * racing the others on /latest_producer_id_block: every request gets one
 * block, and the blocks tile [0, 12 * 1000) without overlap. A restarted
 * broker continues after the last block. */
static void test_producer_id_blocks(void)
{
    char connect[128], err[256];
    new_chroot(connect, sizeof(connect));
    broker_rec_t r1 = {0}, r2 = {0};
    coordinator_t *c1 = start_broker(connect, 1, &r1, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c1);
    coordinator_t *c2 = start_broker(connect, 2, &r2, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c2);
    enum { N = 12, BLOCK = 1000 };
    pid_result_t res[N];
    memset(res, 0, sizeof(res));
    for (int i = 0; i < N; i++)
        coordinator_allocate_producer_ids(i % 2 ? c2 : c1, BLOCK, pid_done, &res[i]);
    pid_wait_t w = {res, N};
    CU_ASSERT_TRUE_FATAL(run_until(pids_done, &w, 20000));
    qsort(res, N, sizeof(res[0]), pid_cmp);
    for (int i = 0; i < N; i++) {
        CU_ASSERT_EQUAL(res[i].done, 1);
        CU_ASSERT_EQUAL(res[i].error, KAFKA_NONE);
        CU_ASSERT_EQUAL(res[i].first, (int64_t)i * BLOCK);
        CU_ASSERT_EQUAL(res[i].last, (int64_t)i * BLOCK + BLOCK - 1);
    }
    coordinator_stop(c2);
    c2 = start_broker(connect, 2, &r2, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c2);
    pid_result_t next = {0};
    coordinator_allocate_producer_ids(c2, 10, pid_done, &next);
    pid_wait_t one = {&next, 1};
    CU_ASSERT_TRUE_FATAL(run_until(pids_done, &one, 10000));
    CU_ASSERT_EQUAL(next.error, KAFKA_NONE);
    CU_ASSERT_EQUAL(next.first, (int64_t)N * BLOCK);
    CU_ASSERT_EQUAL(next.last, (int64_t)N * BLOCK + 9);
    coordinator_stop(c2);
    coordinator_stop(c1);
}

typedef struct state_wait {
    coordinator_t *c;
    int32_t after_epoch;
} state_wait_t;

static bool state_recreated(void *arg)
{
    state_wait_t *w = arg;
    const md_topic_t *t = topic(w->c, "s");
    return t && t->partitions[0].leader_epoch > w->after_epoch;
}

/* A state znode lost while its partition is reassigned: the controller
 * recreates it with the original replicas only as ISR (an adding replica
 * may have no log). */
static void test_recreated_state_names_original_replicas(void)
{
    char connect[256], err[256];
    new_chroot(connect, sizeof(connect));
    broker_rec_t rec = {0};
    coordinator_t *c = start_broker(connect, 1, &rec, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL_FATAL(create_topic(c, "s", 1, 1, NULL, NULL, false), KAFKA_NONE);
    const int32_t epoch = topic(c, "s")->partitions[0].leader_epoch;

    /* One multi: the topic in a reassignment [1] -> [2] (2 adding), and
     * its state znode gone. */
    zhandle_t *zh = raw_client(connect);
    char buf[1024];
    int len = sizeof(buf);
    struct Stat st;
    CU_ASSERT_EQUAL_FATAL(zoo_get(zh, "/brokers/topics/s", 0, buf, &len, &st), ZOK);
    zk_assignment_t a;
    char derr[160];
    CU_ASSERT_EQUAL_FATAL(
        znode_decode_assignment((uint8_t *)buf, (size_t)len, &a, derr, sizeof(derr)), 0);
    int32_t full[] = {2, 1}, adding[] = {2}, removing[] = {1};
    int32_t *orig_replicas = a.replicas[0], *orig_adding = a.adding[0],
            *orig_removing = a.removing[0];
    int32_t orig_n = a.nreplicas[0];
    a.replicas[0] = full;
    a.nreplicas[0] = 2;
    a.adding[0] = adding;
    a.nadding[0] = 1;
    a.removing[0] = removing;
    a.nremoving[0] = 1;
    size_t elen;
    uint8_t *enc = znode_encode_assignment(&a, &elen);
    a.replicas[0] = orig_replicas;
    a.nreplicas[0] = orig_n;
    a.adding[0] = orig_adding;
    a.removing[0] = orig_removing;
    zk_assignment_clear(&a);
    zoo_op_t ops[2];
    zoo_op_result_t results[2];
    zoo_set_op_init(&ops[0], "/brokers/topics/s", (char *)enc, (int)elen, st.version, NULL);
    zoo_delete_op_init(&ops[1], "/brokers/topics/s/partitions/0/state", -1);
    CU_ASSERT_EQUAL(zoo_multi(zh, 2, ops, results), ZOK);
    free(enc);
    zookeeper_close(zh);

    state_wait_t w = {c, epoch};
    CU_ASSERT_TRUE_FATAL(run_until(state_recreated, &w, 10000));
    const md_partition_t *p = &topic(c, "s")->partitions[0];
    CU_ASSERT_EQUAL(p->leader, 1);
    CU_ASSERT_EQUAL(p->nisr, 1);
    CU_ASSERT_EQUAL(p->isr[0], 1);
    coordinator_stop(c);
}

/* Reloads asked for from a callback of install_metadata run after it, one
 * loader at a time (a reload started inside it made reload_finish start
 * another over it). */
static void test_reload_asked_from_callback(void)
{
    char connect[256], err[256];
    new_chroot(connect, sizeof(connect));
    broker_rec_t rec = {0};
    coordinator_t *c = start_broker(connect, 1, &rec, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    const uint64_t before = c->reloads_done;
    rec.reload_from_callback = c;
    CU_ASSERT_EQUAL(create_topic(c, "cb1", 1, 1, NULL, NULL, false), KAFKA_NONE);
    CU_ASSERT_PTR_NULL(rec.reload_from_callback);
    CU_ASSERT_TRUE(c->reloads_done > before);
    /* Reloads go on: the next topic reaches the cache. */
    CU_ASSERT_EQUAL(create_topic(c, "cb2", 1, 1, NULL, NULL, false), KAFKA_NONE);
    wait_topic_t w = {c, "cb2", 1};
    CU_ASSERT_TRUE(run_until(topic_as_expected, &w, 10000));
    coordinator_stop(c);
}

void coord_add_zk_suite(void)
{
    CU_pSuite s = CU_add_suite("coord_zookeeper", suite_init, suite_clean);
    CU_add_test(s, "single broker: topics, configs, partitions, delete, restart",
                test_single_broker_topics);
    CU_add_test(s, "two brokers: controller failover, offline, return", test_two_brokers_failover);
    CU_add_test(s, "deposed controller cannot write", test_deposed_controller_cannot_write);
    CU_add_test(s, "stale controller RPCs ignored", test_stale_controller_rpcs_ignored);
    CU_add_test(s, "the leader alters the ISR", test_leader_alters_isr);
    CU_add_test(s, "reloads asked for from a callback", test_reload_asked_from_callback);
    CU_add_test(s, "a recreated state names the original replicas",
                test_recreated_state_names_original_replicas);
    CU_add_test(s, "leader elections on demand", test_elect_leaders);
    CU_add_test(s, "producer-id blocks never overlap", test_producer_id_blocks);
    CU_add_test(s, "stop answers admin requests in flight",
                test_stop_answers_admin_requests_in_flight);
    CU_add_test(s, "duplicate broker id refused", test_duplicate_broker_id_refused);
    CU_add_test(s, "unreachable ZooKeeper fails within the session timeout",
                test_unreachable_zookeeper);
}
