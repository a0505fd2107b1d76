/* Broker configuration: a properties file with Kafka's key names where the
 * meaning is the same, overridden by VLTAVA_* environment variables (key
 * upper-cased, '.' -> '_': VLTAVA_BROKER_ID), overridden in turn by
 * command-line flags (--broker.id=1 or --broker.id 1). Unknown keys and bad
 * values stop the start with a message naming the key. */
#ifndef VLTAVA_BROKER_CONFIG_H
#define VLTAVA_BROKER_CONFIG_H

#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>

/* Named relative to this file: modules that include config.h do not all
 * have broker/group or broker/txn on their include path. */
#include "group/group_coordinator.h"
#include "txn/txn_coordinator.h"
#include "partition_log.h"

/* Bounds on the Kafka listeners. Every advertised endpoint goes into the
 * broker's registration znode, so these bound its size too. */
#define BROKER_MAX_LISTENERS     16
#define BROKER_LISTENER_NAME_MAX 64  /* characters of a listener name */
#define BROKER_HOST_MAX          255 /* characters of any host, replication.listener's too */

/* One Kafka listener (listeners, advertised.listeners,
 * listener.security.protocol.map). The security protocol is always
 * PLAINTEXT: the load refuses any other. */
typedef struct broker_listener {
    char *name; /* [A-Z0-9_-]+, unique; Kafka upper-cases listener names */
    char *host; /* address to bind; "": every interface */
    /* Unique among the listeners unless 0 (an ephemeral port), or shared by
     * exactly two, one binding an IPv4 address, the other an IPv6 one. */
    int32_t port;
    /* What clients are told, as in Kafka: with advertised.listeners set,
     * the listener's entry there, NULL/0 when it has none (the listener is
     * served but not advertised: not in the registration, so no Metadata
     * answer names it); unset, host:port. An empty host becomes this
     * machine's host name; 0.0.0.0 is refused; the port is never 0. */
    char *advertised_host;
    int32_t advertised_port;
} broker_listener_t;

typedef struct broker_config {
    int32_t broker_id; /* broker.id */
    /* The Kafka listeners, in the order listeners names them; set by the
     * load from the four listener keys. */
    broker_listener_t listeners[BROKER_MAX_LISTENERS];
    size_t nlisteners; /* at least 1 */
    /* Index in listeners of inter.broker.listener.name: the endpoint
     * registered as the broker's host:port (what tools and older readers of
     * /brokers/ids see) and whose advertised host replication.listener
     * defaults to. Brokers replicate over replication.listener, not over a
     * Kafka listener. */
    size_t inter_broker_listener;
    /* Views of listeners[inter_broker_listener]'s advertised endpoint. */
    const char *advertised_host;
    int32_t advertised_port;
    /* The listener keys as given (each checked when set), combined into
     * listeners[] once every source has been read. */
    struct {
        char *listeners;         /* listeners */
        char *advertised;        /* advertised.listeners (NULL: unset) */
        char *protocol_map;      /* listener.security.protocol.map */
        char *inter_broker_name; /* inter.broker.listener.name (NULL: unset) */
    } listener_keys;
    char *rpc_host; /* replication.listener=host:port (inter-broker RPC) */
    int32_t rpc_port;
    char *metrics_host; /* metrics.listener=host:port (Prometheus); NULL: no endpoint */
    int32_t metrics_port;
    char *zookeeper_connect;            /* zookeeper.connect */
    int32_t zk_session_timeout_ms;      /* zookeeper.session.timeout.ms */
    char *log_dir;                      /* log.dirs (one directory) */
    char *rack;                         /* broker.rack (NULL: unset) */
    int32_t num_partitions;             /* num.partitions */
    int16_t default_replication_factor; /* default.replication.factor */
    bool auto_create_topics;            /* auto.create.topics.enable */
    bool delete_topic_enable;           /* delete.topic.enable */
    bool unclean_leader_election;       /* unclean.leader.election.enable */
    bool auto_leader_rebalance;         /* auto.leader.rebalance.enable */
    int32_t socket_request_max_bytes;   /* socket.request.max.bytes */
    int32_t max_connections;            /* max.connections */
    int32_t log_max_open_files;         /* log.max.open.files (0: half the open-file limit) */
    int32_t queued_max_requests;        /* queued.max.requests: pipelined requests per connection */
    int32_t replica_lag_time_max_ms;    /* replica.lag.time.max.ms */
    int64_t producer_id_expiration_ms;  /* producer.id.expiration.ms */
    int32_t producer_id_expiration_check_interval_ms; /* producer.id.expiration.check.interval.ms */
    int64_t retention_check_interval_ms;              /* log.retention.check.interval.ms */
    int64_t flush_scheduler_interval_ms;              /* log.flush.scheduler.interval.ms */
    /* leader.replication.throttled.rate, follower.replication.throttled.rate:
     * bytes/s copied onto replicas a reassignment adds; INT64_MAX: unthrottled. */
    int64_t leader_replication_throttled_rate;
    int64_t follower_replication_throttled_rate;
    int log_level; /* log.level: error|warn|info|debug (vlog levels) */
    /* controlled.shutdown.enable, .max.retries, .retry.backoff.ms and
     * .request.timeout.ms (see broker/main.c) */
    bool controlled_shutdown_enable;
    int32_t controlled_shutdown_max_retries;
    int32_t controlled_shutdown_retry_backoff_ms;
    int32_t controlled_shutdown_request_timeout_ms;
    /* Topic defaults: log.segment.bytes, log.roll.ms, log.retention.ms,
     * log.retention.bytes, message.max.bytes, log.flush.interval.messages,
     * log.flush.interval.ms, log.index.interval.bytes,
     * log.index.size.max.bytes, log.message.timestamp.type,
     * min.insync.replicas. */
    log_config_t log_defaults;
    group_config_t groups; /* offsets.*, group.* settings */
    txn_config_t txns;     /* transaction.*, transactional.id.* settings */
    /* leader.imbalance.check.interval.seconds (1..86400) and
     * leader.imbalance.per.broker.percentage (0..100): the automatic
     * leader rebalance (auto.leader.rebalance.enable). */
    int32_t leader_imbalance_check_interval_s;
    int32_t leader_imbalance_per_broker_percentage;
} broker_config_t;

/* Fills cfg from defaults, the file named by --config FILE (or a first
 * positional argument), VLTAVA_* variables and flags. Returns 0; 1 when
 * --help was printed; -1 with a message naming the key in err. */
int broker_config_load(broker_config_t *cfg, int argc, char **argv, char *err, size_t err_size);
void broker_config_free(broker_config_t *cfg);
/* Prints every option with its default and meaning. */
void broker_config_usage(FILE *out);

#endif
