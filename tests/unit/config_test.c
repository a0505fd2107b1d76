/* CUnit tests for the broker configuration: defaults, precedence (file <
 * environment < flags), file syntax, and refusals that name the key. */
#include <CUnit/Basic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "unit_run.h"

static char conf_path[64];

/* Writes the properties file used by load(). */
static void write_conf(const char *text)
{
    FILE *f = fopen(conf_path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
}

/* Loads with argv = {"vltava-broker", args...}; NULL-terminated args. */
static int load(broker_config_t *cfg, char *err, size_t err_size, ...)
{
    char *argv[32] = {"vltava-broker"};
    int argc = 1;
    va_list ap;
    va_start(ap, err_size);
    for (char *a; (a = va_arg(ap, char *)) != NULL && argc < 31;)
        argv[argc++] = a;
    va_end(ap);
    err[0] = '\0';
    return broker_config_load(cfg, argc, argv, err, err_size);
}

/* The error names the key first. */
static void expect_refused(const char *conf, const char *key, const char *reason_part)
{
    broker_config_t cfg;
    char err[512];
    write_conf(conf);
    CU_ASSERT_EQUAL(load(&cfg, err, sizeof(err), "--config", conf_path, NULL), -1);
    size_t n = strlen(key);
    bool named = strncmp(err, key, n) == 0 && err[n] == ':';
    CU_ASSERT_TRUE(named);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, reason_part));
    if (!named || strstr(err, reason_part) == NULL)
        fprintf(stderr, "\n    got '%s' for %s\n", err, key);
}

#define REQUIRED "broker.id=3\nzookeeper.connect=127.0.0.1:2181/vltava\n"

static void test_defaults(void)
{
    broker_config_t cfg;
    char err[256];
    write_conf(REQUIRED);
    CU_ASSERT_EQUAL_FATAL(load(&cfg, err, sizeof(err), conf_path, NULL), 0);
    CU_ASSERT_EQUAL(cfg.broker_id, 3);
    CU_ASSERT_STRING_EQUAL(cfg.zookeeper_connect, "127.0.0.1:2181/vltava");
    CU_ASSERT_EQUAL_FATAL(cfg.nlisteners, 1);
    CU_ASSERT_STRING_EQUAL(cfg.listeners[0].name, "PLAINTEXT");
    CU_ASSERT_STRING_EQUAL(cfg.listeners[0].host, "");
    CU_ASSERT_EQUAL(cfg.listeners[0].port, 9092);
    CU_ASSERT_EQUAL(cfg.inter_broker_listener, 0);
    char host[256];
    gethostname(host, sizeof(host));
    CU_ASSERT_STRING_EQUAL(cfg.listeners[0].advertised_host, host);
    CU_ASSERT_EQUAL(cfg.listeners[0].advertised_port, 9092);
    CU_ASSERT_STRING_EQUAL(cfg.advertised_host, host);
    CU_ASSERT_EQUAL(cfg.advertised_port, 9092);
    CU_ASSERT_STRING_EQUAL(cfg.rpc_host, host);
    CU_ASSERT_EQUAL(cfg.rpc_port, 9093);
    CU_ASSERT_EQUAL(cfg.zk_session_timeout_ms, 6000);
    CU_ASSERT_STRING_EQUAL(cfg.log_dir, "/tmp/kafka-logs");
    CU_ASSERT_PTR_NULL(cfg.rack);
    CU_ASSERT_EQUAL(cfg.num_partitions, 1);
    CU_ASSERT_EQUAL(cfg.default_replication_factor, 1);
    CU_ASSERT_EQUAL(cfg.log_defaults.min_insync_replicas, 1);
    CU_ASSERT_TRUE(cfg.auto_create_topics);
    CU_ASSERT_TRUE(cfg.delete_topic_enable);
    CU_ASSERT_FALSE(cfg.unclean_leader_election);
    CU_ASSERT_TRUE(cfg.auto_leader_rebalance);
    CU_ASSERT_EQUAL(cfg.leader_imbalance_check_interval_s, 300);
    CU_ASSERT_EQUAL(cfg.leader_imbalance_per_broker_percentage, 10);
    CU_ASSERT_TRUE(cfg.controlled_shutdown_enable); /* Kafka's controlled.shutdown.* defaults */
    CU_ASSERT_EQUAL(cfg.controlled_shutdown_max_retries, 3);
    CU_ASSERT_EQUAL(cfg.controlled_shutdown_retry_backoff_ms, 1000);
    CU_ASSERT_EQUAL(cfg.controlled_shutdown_request_timeout_ms, 5000);
    CU_ASSERT_EQUAL(cfg.socket_request_max_bytes, 104857600);
    CU_ASSERT_EQUAL(cfg.max_connections, INT32_MAX);
    CU_ASSERT_EQUAL(cfg.queued_max_requests, 500);
    CU_ASSERT_EQUAL(cfg.replica_lag_time_max_ms, 30000);
    CU_ASSERT_EQUAL(cfg.retention_check_interval_ms, 300000);
    CU_ASSERT_EQUAL(cfg.log_level, 2); /* info */
    CU_ASSERT_EQUAL(cfg.log_defaults.segment_bytes, 1073741824);
    CU_ASSERT_EQUAL(cfg.log_defaults.max_message_bytes, 1048588);
    CU_ASSERT_EQUAL(cfg.log_defaults.retention_ms, 7LL * 24 * 3600 * 1000);
    CU_ASSERT_EQUAL(cfg.log_defaults.retention_bytes, -1);
    /* The group coordinator's, Kafka's defaults (group.max.size aside:
     * Kafka's is unbounded). */
    CU_ASSERT_EQUAL(cfg.groups.offsets_topic_partitions, 50);
    CU_ASSERT_EQUAL(cfg.groups.offsets_topic_replication_factor, 3);
    CU_ASSERT_EQUAL(cfg.groups.offsets_topic_segment_bytes, 104857600);
    CU_ASSERT_EQUAL(cfg.groups.offsets_retention_ms, 7LL * 24 * 3600 * 1000);
    CU_ASSERT_EQUAL(cfg.groups.offsets_retention_check_interval_ms, 600000);
    CU_ASSERT_EQUAL(cfg.groups.offsets_commit_timeout_ms, 5000);
    CU_ASSERT_EQUAL(cfg.groups.offset_metadata_max_bytes, 4096);
    CU_ASSERT_EQUAL(cfg.groups.initial_rebalance_delay_ms, 3000);
    CU_ASSERT_EQUAL(cfg.groups.min_session_timeout_ms, 6000);
    CU_ASSERT_EQUAL(cfg.groups.max_session_timeout_ms, 1800000);
    CU_ASSERT_EQUAL(cfg.groups.max_size, 1000);
    broker_config_free(&cfg);
}

static void test_every_key(void)
{
    broker_config_t cfg;
    char err[256];
    write_conf("# a comment\n"
               "! another comment\n"
               "\n"
               "broker.id = 7\n"
               "listeners=PLAINTEXT://127.0.0.1:19092\n"
               "advertised.listeners=PLAINTEXT://broker7.example:29092\n"
               "listener.security.protocol.map=PLAINTEXT:PLAINTEXT\n"
               "inter.broker.listener.name=PLAINTEXT\n"
               "replication.listener=[::1]:39092\n"
               "zookeeper.connect: zk1:2181,zk2:2181/x\n"
               "zookeeper.session.timeout.ms 6000\n"
               "log.dirs=/data/v\n"
               "broker.rack=r1\n"
               "num.partitions=12\n"
               "default.replication.factor=3\n"
               "min.insync.replicas=2\n"
               "auto.create.topics.enable=FALSE\n"
               "delete.topic.enable=false\n"
               "unclean.leader.election.enable=true\n"
               "auto.leader.rebalance.enable=false\n"
               "socket.request.max.bytes=1000\n"
               "max.connections=10\n"
               "queued.max.requests=4\n"
               "replica.lag.time.max.ms=1234\n"
               "log.retention.check.interval.ms=100\n"
               "log.flush.scheduler.interval.ms=200\n"
               "log.level=debug\n"
               "log.segment.bytes=1048576\n"
               "log.roll.ms=60000\n"
               "log.retention.ms=-1\n"
               "log.retention.bytes=5000000\n"
               "message.max.bytes=2000000\n"
               "log.flush.interval.messages=10\n"
               "log.flush.interval.ms=50\n"
               "log.index.interval.bytes=8192\n"
               "log.index.size.max.bytes=65536\n"
               "log.message.timestamp.type=LogAppendTime\n");
    CU_ASSERT_EQUAL_FATAL(load(&cfg, err, sizeof(err), "--config", conf_path, NULL), 0);
    CU_ASSERT_EQUAL(cfg.broker_id, 7);
    CU_ASSERT_EQUAL_FATAL(cfg.nlisteners, 1);
    CU_ASSERT_STRING_EQUAL(cfg.listeners[0].host, "127.0.0.1");
    CU_ASSERT_EQUAL(cfg.listeners[0].port, 19092);
    CU_ASSERT_STRING_EQUAL(cfg.listeners[0].advertised_host, "broker7.example");
    CU_ASSERT_STRING_EQUAL(cfg.advertised_host, "broker7.example");
    CU_ASSERT_EQUAL(cfg.advertised_port, 29092);
    CU_ASSERT_STRING_EQUAL(cfg.rpc_host, "::1");
    CU_ASSERT_EQUAL(cfg.rpc_port, 39092);
    CU_ASSERT_STRING_EQUAL(cfg.zookeeper_connect, "zk1:2181,zk2:2181/x");
    CU_ASSERT_EQUAL(cfg.zk_session_timeout_ms, 6000);
    CU_ASSERT_STRING_EQUAL(cfg.log_dir, "/data/v");
    CU_ASSERT_STRING_EQUAL(cfg.rack, "r1");
    CU_ASSERT_EQUAL(cfg.num_partitions, 12);
    CU_ASSERT_EQUAL(cfg.default_replication_factor, 3);
    CU_ASSERT_EQUAL(cfg.log_defaults.min_insync_replicas, 2);
    CU_ASSERT_FALSE(cfg.auto_create_topics);
    CU_ASSERT_FALSE(cfg.delete_topic_enable);
    CU_ASSERT_TRUE(cfg.unclean_leader_election);
    CU_ASSERT_FALSE(cfg.auto_leader_rebalance);
    CU_ASSERT_EQUAL(cfg.socket_request_max_bytes, 1000);
    CU_ASSERT_EQUAL(cfg.max_connections, 10);
    CU_ASSERT_EQUAL(cfg.queued_max_requests, 4);
    CU_ASSERT_EQUAL(cfg.replica_lag_time_max_ms, 1234);
    CU_ASSERT_EQUAL(cfg.retention_check_interval_ms, 100);
    CU_ASSERT_EQUAL(cfg.flush_scheduler_interval_ms, 200);
    CU_ASSERT_EQUAL(cfg.log_level, 3);
    CU_ASSERT_EQUAL(cfg.log_defaults.segment_bytes, 1048576);
    CU_ASSERT_EQUAL(cfg.log_defaults.segment_ms, 60000);
    CU_ASSERT_EQUAL(cfg.log_defaults.retention_ms, -1);
    CU_ASSERT_EQUAL(cfg.log_defaults.retention_bytes, 5000000);
    CU_ASSERT_EQUAL(cfg.log_defaults.max_message_bytes, 2000000);
    CU_ASSERT_EQUAL(cfg.log_defaults.flush_messages, 10);
    CU_ASSERT_EQUAL(cfg.log_defaults.flush_ms, 50);
    CU_ASSERT_EQUAL(cfg.log_defaults.index_interval_bytes, 8192);
    CU_ASSERT_EQUAL(cfg.log_defaults.segment_index_bytes, 65536);
    CU_ASSERT_TRUE(cfg.log_defaults.log_append_time);
    broker_config_free(&cfg);
}

static void test_precedence(void)
{
    broker_config_t cfg;
    char err[256];
    write_conf(REQUIRED "num.partitions=2\nlog.level=warn\n");
    CU_ASSERT_EQUAL_FATAL(load(&cfg, err, sizeof(err), conf_path, NULL), 0);
    CU_ASSERT_EQUAL(cfg.num_partitions, 2);
    broker_config_free(&cfg);

    setenv("VLTAVA_NUM_PARTITIONS", "3", 1);
    setenv("VLTAVA_TEST_ZK", "not a broker key: ignored", 1);
    CU_ASSERT_EQUAL_FATAL(load(&cfg, err, sizeof(err), conf_path, NULL), 0);
    CU_ASSERT_EQUAL(cfg.num_partitions, 3);
    CU_ASSERT_EQUAL(cfg.log_level, 1); /* file value where nothing overrides */
    broker_config_free(&cfg);

    CU_ASSERT_EQUAL_FATAL(load(&cfg, err, sizeof(err), conf_path, "--num.partitions=4", NULL), 0);
    CU_ASSERT_EQUAL(cfg.num_partitions, 4);
    broker_config_free(&cfg);
    CU_ASSERT_EQUAL_FATAL(
        load(&cfg, err, sizeof(err), "--num.partitions", "5", "--config", conf_path, NULL), 0);
    CU_ASSERT_EQUAL(cfg.num_partitions, 5);
    broker_config_free(&cfg);

    /* The environment alone can supply everything required. */
    setenv("VLTAVA_BROKER_ID", "9", 1);
    setenv("VLTAVA_ZOOKEEPER_CONNECT", "zk:2181", 1);
    CU_ASSERT_EQUAL_FATAL(load(&cfg, err, sizeof(err), NULL), 0);
    CU_ASSERT_EQUAL(cfg.broker_id, 9);
    CU_ASSERT_EQUAL(cfg.num_partitions, 3);
    broker_config_free(&cfg);
    /* A bad value in the environment is named too. */
    setenv("VLTAVA_MAX_CONNECTIONS", "many", 1);
    CU_ASSERT_EQUAL(load(&cfg, err, sizeof(err), NULL), -1);
    CU_ASSERT_EQUAL(strncmp(err, "max.connections: ", 17), 0);
    unsetenv("VLTAVA_MAX_CONNECTIONS");
    unsetenv("VLTAVA_BROKER_ID");
    unsetenv("VLTAVA_ZOOKEEPER_CONNECT");
    unsetenv("VLTAVA_NUM_PARTITIONS");
    unsetenv("VLTAVA_TEST_ZK");
}

static void test_refusals(void)
{
    expect_refused(REQUIRED "no.such.key=1\n", "no.such.key", "unknown");
    expect_refused(REQUIRED "broker.id=abc\n", "broker.id", "invalid value 'abc'");
    expect_refused("zookeeper.connect=z:1\n", "broker.id", "required");
    expect_refused("broker.id=-1\nzookeeper.connect=z:1\n", "broker.id", "invalid value '-1'");
    expect_refused("broker.id=1\n", "zookeeper.connect", "required");
    expect_refused(REQUIRED "broker.id=99999999999\n", "broker.id", "invalid value");
    expect_refused(REQUIRED "listeners=PLAINTEXT://host:70000\n", "listeners", "invalid port");
    expect_refused(REQUIRED "listeners=PLAINTEXT://host\n", "listeners", "host:port");
    expect_refused(REQUIRED "replication.listener=h:x\n", "replication.listener", "invalid port");
    /* Hosts are registered, and brokers read at most 255 characters. */
    char conf[1024];
    snprintf(conf, sizeof(conf), REQUIRED "replication.listener=%0256d:1\n", 0);
    expect_refused(conf, "replication.listener", "longer than 255 characters");
    snprintf(conf, sizeof(conf), REQUIRED "advertised.listeners=PLAINTEXT://%0256d:1\n", 0);
    expect_refused(conf, "advertised.listeners", "longer than 255 characters");
    expect_refused(REQUIRED "log.dirs=/a,/b\n", "log.dirs", "only one log directory");
    expect_refused(REQUIRED "auto.create.topics.enable=yes\n", "auto.create.topics.enable",
                   "true or false");
    expect_refused(REQUIRED "log.level=loud\n", "log.level", "invalid value 'loud'");
    expect_refused(REQUIRED "log.segment.bytes=5\n", "log.segment.bytes", "invalid value '5'");
    expect_refused(REQUIRED "log.message.timestamp.type=Now\n", "log.message.timestamp.type",
                   "invalid value 'Now'");
    expect_refused(REQUIRED "socket.request.max.bytes=0\n", "socket.request.max.bytes",
                   "invalid value '0'");
    expect_refused(REQUIRED "num.partitions=\n", "num.partitions", "invalid value ''");
    expect_refused(REQUIRED "controlled.shutdown.max.retries=-1\n",
                   "controlled.shutdown.max.retries", "invalid value '-1'");
    expect_refused(REQUIRED "controlled.shutdown.request.timeout.ms=0\n",
                   "controlled.shutdown.request.timeout.ms", "invalid value '0'");
    expect_refused(REQUIRED "group.max.size=10001\n", "group.max.size", "invalid value");
    expect_refused(REQUIRED "leader.imbalance.check.interval.seconds=0\n",
                   "leader.imbalance.check.interval.seconds", "invalid value '0'");
    expect_refused(REQUIRED "leader.imbalance.per.broker.percentage=101\n",
                   "leader.imbalance.per.broker.percentage", "invalid value '101'");
    expect_refused(REQUIRED "offset.metadata.max.bytes=40000\n", "offset.metadata.max.bytes",
                   "invalid value");
    expect_refused(REQUIRED
                   "group.min.session.timeout.ms=9000\ngroup.max.session.timeout.ms=8000\n",
                   "group.min.session.timeout.ms", "above group.max.session.timeout.ms");

    broker_config_t cfg;
    char err[256];
    write_conf(REQUIRED);
    CU_ASSERT_EQUAL(load(&cfg, err, sizeof(err), conf_path, "--bogus=1", NULL), -1);
    CU_ASSERT_EQUAL(strncmp(err, "bogus: unknown", 14), 0);
    CU_ASSERT_EQUAL(load(&cfg, err, sizeof(err), conf_path, "--num.partitions", NULL), -1);
    CU_ASSERT_EQUAL(strncmp(err, "num.partitions: needs a value", 29), 0);
    CU_ASSERT_EQUAL(load(&cfg, err, sizeof(err), "--config", "/nonexistent/x.properties", NULL),
                    -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent/x.properties"));
    CU_ASSERT_EQUAL(load(&cfg, err, sizeof(err), conf_path, "stray", NULL), -1);
    CU_ASSERT_EQUAL(strncmp(err, "stray: ", 7), 0);
}

/* Loads REQUIRED + conf; the caller frees cfg. */
static void load_ok(broker_config_t *cfg, const char *conf)
{
    char err[512];
    char text[2048];
    snprintf(text, sizeof(text), REQUIRED "%s", conf);
    write_conf(text);
    int rc = load(cfg, err, sizeof(err), conf_path, NULL);
    if (rc != 0)
        fprintf(stderr, "\n    refused: %s\n", err);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
}

/* The docker-compose setup: one broker reachable as broker1:29092 on the
 * compose network and as 127.0.0.1:9092 from the host. */
#define DOCKER_LISTENERS                                                                           \
    "listeners=INTERNAL://0.0.0.0:29092,EXTERNAL://0.0.0.0:9092\n"                                 \
    "advertised.listeners=INTERNAL://broker1:29092,EXTERNAL://127.0.0.1:9092\n"                    \
    "listener.security.protocol.map=INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT\n"                       \
    "inter.broker.listener.name=INTERNAL\n"

static void test_named_listeners(void)
{
    broker_config_t cfg;
    load_ok(&cfg, DOCKER_LISTENERS);
    CU_ASSERT_EQUAL_FATAL(cfg.nlisteners, 2);
    const broker_listener_t *in = &cfg.listeners[0], *ex = &cfg.listeners[1];
    CU_ASSERT_STRING_EQUAL(in->name, "INTERNAL");
    CU_ASSERT_STRING_EQUAL(in->host, "0.0.0.0");
    CU_ASSERT_EQUAL(in->port, 29092);
    CU_ASSERT_STRING_EQUAL(in->advertised_host, "broker1");
    CU_ASSERT_EQUAL(in->advertised_port, 29092);
    CU_ASSERT_STRING_EQUAL(ex->name, "EXTERNAL");
    CU_ASSERT_EQUAL(ex->port, 9092);
    CU_ASSERT_STRING_EQUAL(ex->advertised_host, "127.0.0.1");
    CU_ASSERT_EQUAL(ex->advertised_port, 9092);
    CU_ASSERT_EQUAL(cfg.inter_broker_listener, 0);
    CU_ASSERT_STRING_EQUAL(cfg.advertised_host, "broker1");
    CU_ASSERT_EQUAL(cfg.advertised_port, 29092);
    /* replication.listener's empty host: the inter-broker listener's. */
    CU_ASSERT_STRING_EQUAL(cfg.rpc_host, "broker1");
    broker_config_free(&cfg);

    /* The same through the environment, as the containers set it. */
    setenv("VLTAVA_LISTENERS", "INTERNAL://0.0.0.0:29092,EXTERNAL://0.0.0.0:9092", 1);
    setenv("VLTAVA_ADVERTISED_LISTENERS", "INTERNAL://broker1:29092,EXTERNAL://127.0.0.1:9092", 1);
    setenv("VLTAVA_LISTENER_SECURITY_PROTOCOL_MAP", "INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT", 1);
    setenv("VLTAVA_INTER_BROKER_LISTENER_NAME", "EXTERNAL", 1);
    load_ok(&cfg, "");
    CU_ASSERT_EQUAL(cfg.nlisteners, 2);
    CU_ASSERT_EQUAL(cfg.inter_broker_listener, 1);
    CU_ASSERT_STRING_EQUAL(cfg.advertised_host, "127.0.0.1");
    CU_ASSERT_EQUAL(cfg.advertised_port, 9092);
    broker_config_free(&cfg);
    unsetenv("VLTAVA_LISTENERS");
    unsetenv("VLTAVA_ADVERTISED_LISTENERS");
    unsetenv("VLTAVA_LISTENER_SECURITY_PROTOCOL_MAP");
    unsetenv("VLTAVA_INTER_BROKER_LISTENER_NAME");

    /* Names are upper-cased; blanks and empty items are skipped; with
     * advertised.listeners set, a listener it does not name is not
     * advertised (as in Kafka), and an empty advertised host becomes the
     * host name; ports 0 may repeat; the default inter-broker listener is
     * PLAINTEXT. */
    char host[256];
    gethostname(host, sizeof(host));
    load_ok(&cfg, "listeners= internal://127.0.0.1:0 , ,PLAINTEXT://:0,Ext-1://[::1]:9095,\n"
                  "advertised.listeners=INTERNAL://in.example:1,PLAINTEXT://:2\n"
                  "listener.security.protocol.map=internal:plaintext,PLAINTEXT:PLAINTEXT,"
                  "EXT-1:PLAINTEXT,SSL:SSL\n"
                  "replication.listener=:7000\n");
    CU_ASSERT_EQUAL_FATAL(cfg.nlisteners, 3);
    CU_ASSERT_STRING_EQUAL(cfg.listeners[0].name, "INTERNAL");
    CU_ASSERT_STRING_EQUAL(cfg.listeners[0].advertised_host, "in.example");
    CU_ASSERT_STRING_EQUAL(cfg.listeners[1].name, "PLAINTEXT");
    CU_ASSERT_STRING_EQUAL(cfg.listeners[1].advertised_host, host);
    CU_ASSERT_EQUAL(cfg.listeners[1].advertised_port, 2);
    CU_ASSERT_STRING_EQUAL(cfg.listeners[2].name, "EXT-1");
    CU_ASSERT_STRING_EQUAL(cfg.listeners[2].host, "::1");
    CU_ASSERT_EQUAL(cfg.listeners[2].port, 9095);
    CU_ASSERT_PTR_NULL(cfg.listeners[2].advertised_host);
    CU_ASSERT_EQUAL(cfg.listeners[2].advertised_port, 0);
    CU_ASSERT_EQUAL(cfg.inter_broker_listener, 1);
    CU_ASSERT_STRING_EQUAL(cfg.rpc_host, host);
    broker_config_free(&cfg);

    /* advertised.listeners unset: every listener advertises its own
     * address, an empty host the host name. */
    load_ok(&cfg, "listeners=PLAINTEXT://127.0.0.1:5,OTHER://:6\n"
                  "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,OTHER:PLAINTEXT\n");
    CU_ASSERT_EQUAL_FATAL(cfg.nlisteners, 2);
    CU_ASSERT_STRING_EQUAL(cfg.listeners[0].advertised_host, "127.0.0.1");
    CU_ASSERT_EQUAL(cfg.listeners[0].advertised_port, 5);
    CU_ASSERT_STRING_EQUAL(cfg.listeners[1].advertised_host, host);
    CU_ASSERT_EQUAL(cfg.listeners[1].advertised_port, 6);
    broker_config_free(&cfg);

    /* Without PLAINTEXT, inter.broker.listener.name names one (the
     * refusal without it is in test_listener_refusals). */
    load_ok(&cfg,
            "listeners=B://:1,A://:2\nlistener.security.protocol.map=A:PLAINTEXT,B:PLAINTEXT\n"
            "inter.broker.listener.name=A\n");
    CU_ASSERT_EQUAL(cfg.inter_broker_listener, 1);
    CU_ASSERT_EQUAL(cfg.advertised_port, 2);
    broker_config_free(&cfg);

    /* Port 0 (ephemeral) on both sides is no clash. */
    load_ok(&cfg, "listeners=PLAINTEXT://127.0.0.1:0\nadvertised.listeners=PLAINTEXT://h:5\n"
                  "replication.listener=127.0.0.1:0\n");
    CU_ASSERT_EQUAL(cfg.listeners[0].port, 0);
    CU_ASSERT_EQUAL(cfg.rpc_port, 0);
    broker_config_free(&cfg);

    /* Blanks around a map entry's ':' and around inter.broker.listener.name
     * (from the environment or a flag, which keep them) are trimmed, as
     * Kafka trims them. */
    setenv("VLTAVA_INTER_BROKER_LISTENER_NAME", " internal\t", 1);
    load_ok(&cfg, "listeners=INTERNAL://:1,EXTERNAL://:2\n"
                  "listener.security.protocol.map=INTERNAL : PLAINTEXT , EXTERNAL:\tplaintext\n");
    unsetenv("VLTAVA_INTER_BROKER_LISTENER_NAME");
    CU_ASSERT_EQUAL(cfg.nlisteners, 2);
    CU_ASSERT_EQUAL(cfg.inter_broker_listener, 0);
    broker_config_free(&cfg);
    write_conf(REQUIRED "listeners=A://:1,B://:2\n"
                        "listener.security.protocol.map=A:PLAINTEXT,B:PLAINTEXT\n");
    char flag_err[256];
    CU_ASSERT_EQUAL_FATAL(load(&cfg, flag_err, sizeof(flag_err), conf_path,
                               "--inter.broker.listener.name", " b ", NULL),
                          0);
    CU_ASSERT_EQUAL(cfg.inter_broker_listener, 1);
    broker_config_free(&cfg);

    /* Two listeners may share a port when one binds an IPv4 address and
     * the other an IPv6 address (Kafka's exception). */
    load_ok(&cfg, "listeners=PLAINTEXT://127.0.0.1:7,V6://[::1]:7,ANY4://0.0.0.0:8,ANY6://[::]:8\n"
                  "advertised.listeners=PLAINTEXT://h:7\n"
                  "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,V6:PLAINTEXT,"
                  "ANY4:PLAINTEXT,ANY6:PLAINTEXT\n");
    CU_ASSERT_EQUAL(cfg.nlisteners, 4);
    CU_ASSERT_EQUAL(cfg.listeners[1].port, 7);
    broker_config_free(&cfg);

    /* A later source replaces the whole list. */
    write_conf(REQUIRED "listeners=PLAINTEXT://:1,OTHER://:2\n"
                        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,OTHER:PLAINTEXT\n");
    char err[256];
    CU_ASSERT_EQUAL_FATAL(load(&cfg, err, sizeof(err), conf_path, "--listeners=OTHER://127.0.0.1:5",
                               "--inter.broker.listener.name=OTHER", NULL),
                          0);
    CU_ASSERT_EQUAL(cfg.nlisteners, 1);
    CU_ASSERT_STRING_EQUAL(cfg.listeners[0].name, "OTHER");
    CU_ASSERT_EQUAL(cfg.advertised_port, 5);
    broker_config_free(&cfg);
}

static void test_listener_refusals(void)
{
    expect_refused(REQUIRED "listeners=PLAINTEXT://a:1,plaintext://b:2\n", "listeners",
                   "listener PLAINTEXT is named twice");
    /* Sharing a port: not two IPv4 addresses, not a name or an empty host,
     * not three listeners. */
    expect_refused(REQUIRED "listeners=A://127.0.0.1:1,B://127.0.0.2:1\n"
                            "listener.security.protocol.map=A:PLAINTEXT,B:PLAINTEXT\n",
                   "listeners", "listeners A and B both use port 1");
    expect_refused(REQUIRED "listeners=A://localhost:1,B://[::1]:1\n"
                            "listener.security.protocol.map=A:PLAINTEXT,B:PLAINTEXT\n",
                   "listeners", "only an IPv4 and an IPv6 address may share a port");
    expect_refused(REQUIRED "listeners=A://:1,B://[::1]:1\n"
                            "listener.security.protocol.map=A:PLAINTEXT,B:PLAINTEXT\n",
                   "listeners", "listeners A and B both use port 1");
    expect_refused(REQUIRED "listeners=A://127.0.0.1:1,B://[::1]:1,C://[::2]:1\n"
                            "listener.security.protocol.map=A:PLAINTEXT,B:PLAINTEXT,C:PLAINTEXT\n",
                   "listeners", "listeners A and B both use port 1");
    expect_refused(REQUIRED "listeners=A://a:1,B://b:1\n"
                            "listener.security.protocol.map=A:PLAINTEXT,B:PLAINTEXT\n",
                   "listeners", "listeners A and B both use port 1");
    /* Refused at load, before the broker registers, not at bind. */
    expect_refused(REQUIRED "listeners=PLAINTEXT://127.0.0.1:9000\n"
                            "replication.listener=10.0.0.1:9000\n",
                   "replication.listener", "port 9000 is also the port of listener PLAINTEXT");
    expect_refused(REQUIRED "listeners=A://:1,B://:9093\n"
                            "listener.security.protocol.map=A:PLAINTEXT,B:PLAINTEXT\n",
                   "replication.listener", "port 9093 is also the port of listener B");
    expect_refused(REQUIRED "listeners=PLAINTEXT://:1\nadvertised.listeners=OTHER://h:1\n",
                   "advertised.listeners", "OTHER is not a listener");
    expect_refused(REQUIRED "advertised.listeners=PLAINTEXT://h:1,PLAINTEXT://h:2\n",
                   "advertised.listeners", "named twice");
    expect_refused(REQUIRED "listeners=INTERNAL://:1\n", "listener.security.protocol.map",
                   "no security protocol for listener INTERNAL");
    expect_refused(REQUIRED "listeners=SSL://:9095\n", "listener.security.protocol.map",
                   "listener SSL uses SSL; only PLAINTEXT is supported");
    expect_refused(REQUIRED "listeners=IN://:1\nlistener.security.protocol.map=IN:SASL_SSL\n",
                   "listener.security.protocol.map", "only PLAINTEXT is supported");
    expect_refused(REQUIRED "listener.security.protocol.map=PLAINTEXT:TLS\n",
                   "listener.security.protocol.map", "unknown security protocol 'TLS'");
    expect_refused(REQUIRED "listener.security.protocol.map=PLAINTEXT\n",
                   "listener.security.protocol.map", "expected NAME:PROTOCOL");
    expect_refused(REQUIRED "listener.security.protocol.map= :PLAINTEXT\n",
                   "listener.security.protocol.map", "1 to 64 characters");
    expect_refused(REQUIRED "listener.security.protocol.map=A:B:PLAINTEXT\n",
                   "listener.security.protocol.map", "invalid listener name 'A:B'");
    expect_refused(REQUIRED "listener.security.protocol.map=A:PLAINTEXT,a:SSL\n",
                   "listener.security.protocol.map", "listener A is mapped twice");
    expect_refused(REQUIRED "inter.broker.listener.name=INTERNAL\n", "inter.broker.listener.name",
                   "INTERNAL is not a listener");
    /* Unset, it is PLAINTEXT, which must exist (as in Kafka). */
    expect_refused(REQUIRED "listeners=B://:1,A://:2\n"
                            "listener.security.protocol.map=A:PLAINTEXT,B:PLAINTEXT\n",
                   "inter.broker.listener.name",
                   "PLAINTEXT (the default) is not a listener (listeners: B, A)");
    expect_refused(REQUIRED "inter.broker.listener.name=IN TERNAL\n", "inter.broker.listener.name",
                   "invalid listener name");
    expect_refused(REQUIRED "listeners=127.0.0.1:9092\n", "listeners", "NAME://host:port");
    expect_refused(REQUIRED "listeners=PLAIN.TEXT://:1\n", "listeners", "invalid listener name");
    expect_refused(REQUIRED "listeners=://:1\n", "listeners", "1 to 64 characters");
    expect_refused(REQUIRED "listeners=\n", "listeners", "at least one listener");
    expect_refused(REQUIRED "listeners=PLAINTEXT://:0\n", "advertised.listeners",
                   "listener PLAINTEXT needs an advertised port");
    expect_refused(REQUIRED "listeners=PLAINTEXT://:1\nadvertised.listeners=PLAINTEXT://h:0\n",
                   "advertised.listeners", "listener PLAINTEXT needs an advertised port");
    /* Kafka refuses the non-routable 0.0.0.0 as an advertised host, given
     * or inherited from listeners. */
    expect_refused(REQUIRED
                   "listeners=PLAINTEXT://:1\nadvertised.listeners=PLAINTEXT://0.0.0.0:1\n",
                   "advertised.listeners", "listener PLAINTEXT advertises 0.0.0.0");
    expect_refused(REQUIRED "listeners=PLAINTEXT://0.0.0.0:1\n", "advertised.listeners",
                   "unset, so listener PLAINTEXT advertises its address 0.0.0.0");
    /* The inter-broker listener must be advertised (Kafka's rule). */
    expect_refused(REQUIRED "listeners=PLAINTEXT://:1,EXT://:2\n"
                            "advertised.listeners=EXT://h:2\n"
                            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,EXT:PLAINTEXT\n",
                   "inter.broker.listener.name",
                   "PLAINTEXT (the default) is not in advertised.listeners (advertised: EXT)");
    expect_refused(REQUIRED DOCKER_LISTENERS "advertised.listeners=EXTERNAL://127.0.0.1:9092\n",
                   "inter.broker.listener.name",
                   "INTERNAL is not in advertised.listeners (advertised: EXTERNAL)");
    /* A listener that is not advertised may keep port 0. */
    broker_config_t cfg;
    load_ok(&cfg,
            "listeners=PLAINTEXT://:1,EXT://127.0.0.1:0\nadvertised.listeners=PLAINTEXT://h:1\n"
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,EXT:PLAINTEXT\n");
    CU_ASSERT_PTR_NULL(cfg.listeners[1].advertised_host);
    broker_config_free(&cfg);
    expect_refused(REQUIRED "listeners=A://:1,B://:2,C://:3,D://:4,E://:5,F://:6,G://:7,H://:8,"
                            "I://:9,J://:10,K://:11,L://:12,M://:13,N://:14,O://:15,P://:16,"
                            "Q://:17\n",
                   "listeners", "more than 16 listeners");
}

static void test_help_lists_every_key(void)
{
    broker_config_t cfg;
    char err[64];
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    broker_config_usage(out);
    fclose(out);
    const char *keys[] = {"broker.id",
                          "listeners",
                          "advertised.listeners",
                          "listener.security.protocol.map",
                          "inter.broker.listener.name",
                          "replication.listener",
                          "zookeeper.connect",
                          "log.dirs",
                          "socket.request.max.bytes",
                          "queued.max.requests",
                          "max.connections",
                          "log.segment.bytes",
                          "message.max.bytes",
                          "log.level",
                          "log.message.timestamp.type"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        CU_ASSERT_PTR_NOT_NULL(strstr(text, keys[i]));
    /* Defaults are shown, including the log's. */
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "[104857600]"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "[1073741824]"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "[PLAINTEXT://:9092]"));
    free(text);
    /* --help stops the load with 1 (after printing to stdout). */
    FILE *saved = stdout;
    stdout = fopen("/dev/null", "w");
    CU_ASSERT_EQUAL(load(&cfg, err, sizeof(err), "--help", NULL), 1);
    fclose(stdout);
    stdout = saved;
}

int main(void)
{
    snprintf(conf_path, sizeof(conf_path), "/tmp/vltava-config-test-%d.properties", (int)getpid());
    if (CU_initialize_registry() != CUE_SUCCESS)
        return EXIT_FAILURE;
    CU_pSuite s = CU_add_suite("config", NULL, NULL);
    CU_add_test(s, "defaults", test_defaults);
    CU_add_test(s, "every key", test_every_key);
    CU_add_test(s, "precedence file < env < flag", test_precedence);
    CU_add_test(s, "refusals name the key", test_refusals);
    CU_add_test(s, "named listeners", test_named_listeners);
    CU_add_test(s, "listener refusals name the key", test_listener_refusals);
    CU_add_test(s, "--help lists every key", test_help_lists_every_key);
    int status = unit_run_registered();
    unlink(conf_path);
    return status;
}
