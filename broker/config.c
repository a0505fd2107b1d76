/* Broker configuration (see config.h): one table of options, each with its
 * Kafka key, type, bounds, default (as text, parsed like any other value)
 * and meaning. Sources apply in order — defaults, the properties file,
 * VLTAVA_* variables, flags — so a later source overrides an earlier one. */
#include "config.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "metrics/metrics.h"
#include "vlog.h"
#include "xalloc.h"

enum option_type {
    OPT_INT16,
    OPT_INT32,
    OPT_INT64,
    OPT_BOOL,
    OPT_STRING,        /* char *; "" leaves it NULL */
    OPT_ENDPOINTS,     /* NAME://host:port[,...], checked and kept as text; "": NULL */
    OPT_PROTOCOL_MAP,  /* NAME:PROTOCOL[,...], checked and kept as text; "": NULL */
    OPT_LISTENER_NAME, /* a listener name, checked and kept as text; "": NULL */
    OPT_HOST_PORT,     /* host:port into (host, port) */
    OPT_LOG_DIRS,      /* one directory */
    OPT_LOG_LEVEL,
    OPT_LOG, /* a topic default, set through log_config_set(topic_key) */
    /* OPT_HOST_PORT, or "" for none (host NULL, port 0) */
    OPT_HOST_PORT_OR_OFF,
};

typedef struct config_option {
    const char *key;
    enum option_type type;
    size_t offset;  /* field in broker_config_t */
    size_t offset2; /* port field for OPT_HOST_PORT */
    int64_t min, max;
    const char *default_value; /* NULL: no default (required, or unset) */
    const char *topic_key;     /* OPT_LOG */
    const char *help;
} config_option_t;

#define F(field) offsetof(broker_config_t, field)
#define NUM(key, type, field, lo, hi, def, help)                                                   \
    {                                                                                              \
        key, type, F(field), 0, lo, hi, def, NULL, help                                            \
    }

/* A broker-wide default of a topic config, set through log_config_set(topic). */
#define TOPIC_DEFAULT(key, topic, help)                                                            \
    {                                                                                              \
        key, OPT_LOG, 0, 0, 0, 0, NULL, topic, help                                                \
    }

static const config_option_t config_options[] = {
    NUM("broker.id", OPT_INT32, broker_id, 0, INT32_MAX, NULL,
        "this broker's id in the cluster (required)"),
    {"listeners", OPT_ENDPOINTS, F(listener_keys.listeners), 0, 0, 0, "PLAINTEXT://:9092", NULL,
     "the Kafka listeners, NAME://host:port[,NAME://host:port...]: names unique, ports unique "
     "unless 0; empty host: every interface"},
    {"advertised.listeners", OPT_ENDPOINTS, F(listener_keys.advertised), 0, 0, 0, NULL, NULL,
     "what clients are told, NAME://host:port[,...], each NAME a listener. Set, it replaces the "
     "whole list: a listener not named here is not advertised (not registered; Metadata through "
     "it lists no broker without it). Unset: every listener advertises its own address. An "
     "empty host becomes this machine's host name; 0.0.0.0 is refused. Metadata answers with "
     "the endpoints of the listener the request came in on"},
    {"listener.security.protocol.map", OPT_PROTOCOL_MAP, F(listener_keys.protocol_map), 0, 0, 0,
     "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL", NULL,
     "NAME:PROTOCOL[,...], naming every listener; only PLAINTEXT is supported"},
    {"inter.broker.listener.name", OPT_LISTENER_NAME, F(listener_keys.inter_broker_name), 0, 0, 0,
     NULL, NULL,
     "the listener registered as this broker's host:port, which must be advertised; "
     "replication.listener's host defaults to its advertised host. Unset: PLAINTEXT, which "
     "must then be such a listener"},
    {"replication.listener", OPT_HOST_PORT, F(rpc_host), F(rpc_port), 0, 0, ":9093", NULL,
     "inter-broker RPC listener, host:port, its port not a Kafka listener's (empty host: the "
     "inter-broker listener's advertised host)"},
    {"metrics.listener", OPT_HOST_PORT_OR_OFF, F(metrics_host), F(metrics_port), 0, 0, "", NULL,
     "Prometheus endpoint serving GET /metrics, host:port (empty host: every interface; "
     "empty: off)"},
    {"zookeeper.connect", OPT_STRING, F(zookeeper_connect), 0, 0, 0, NULL, NULL,
     "ZooKeeper ensemble host:port[,host:port...][/chroot] (required)"},
    NUM("zookeeper.session.timeout.ms", OPT_INT32, zk_session_timeout_ms, 1000, INT32_MAX, "6000",
        "ZooKeeper session timeout: how long the partitions of a broker killed and not restarted "
        "wait for new leaders (Kafka: 18000, for JVM pauses; bench/README.md)"),
    {"log.dirs", OPT_LOG_DIRS, F(log_dir), 0, 0, 0, "/tmp/kafka-logs", NULL,
     "the data directory (exactly one)"},
    {"log.dir", OPT_LOG_DIRS, F(log_dir), 0, 0, 0, NULL, NULL, "alias of log.dirs"},
    {"broker.rack", OPT_STRING, F(rack), 0, 0, 0, NULL, NULL, "rack of this broker (unset: none)"},
    NUM("num.partitions", OPT_INT32, num_partitions, 1, INT32_MAX, "1",
        "partitions of an auto-created topic"),
    NUM("default.replication.factor", OPT_INT16, default_replication_factor, 1, INT16_MAX, "1",
        "replication factor of an auto-created topic"),
    NUM("auto.create.topics.enable", OPT_BOOL, auto_create_topics, 0, 1, "true",
        "create unknown topics on Metadata requests that allow it"),
    NUM("delete.topic.enable", OPT_BOOL, delete_topic_enable, 0, 1, "true", "allow DeleteTopics"),
    NUM("unclean.leader.election.enable", OPT_BOOL, unclean_leader_election, 0, 1, "false",
        "elect a leader outside the ISR when no ISR member is alive"),
    NUM("auto.leader.rebalance.enable", OPT_BOOL, auto_leader_rebalance, 0, 1, "true",
        "move leadership back to preferred replicas"),
    NUM("leader.imbalance.check.interval.seconds", OPT_INT32, leader_imbalance_check_interval_s, 1,
        86400, "300", "how often the controller checks the leader balance"),
    NUM("leader.imbalance.per.broker.percentage", OPT_INT32, leader_imbalance_per_broker_percentage,
        0, 100, "10",
        "share of a broker's preferred partitions led elsewhere that triggers a rebalance"),
    NUM("controlled.shutdown.enable", OPT_BOOL, controlled_shutdown_enable, 0, 1, "true",
        "on SIGTERM/SIGINT, ask the controller to move this broker's leadership first"),
    NUM("controlled.shutdown.max.retries", OPT_INT32, controlled_shutdown_max_retries, 0, 1000, "3",
        "controlled shutdown attempts before stopping without it (0: none)"),
    NUM("controlled.shutdown.retry.backoff.ms", OPT_INT32, controlled_shutdown_retry_backoff_ms, 0,
        INT32_MAX, "1000", "wait between controlled shutdown attempts"),
    NUM("controlled.shutdown.request.timeout.ms", OPT_INT32, controlled_shutdown_request_timeout_ms,
        1, INT32_MAX, "5000",
        "bound on one controlled shutdown attempt (Kafka bounds it by request.timeout.ms)"),
    NUM("socket.request.max.bytes", OPT_INT32, socket_request_max_bytes, 64, INT32_MAX, "104857600",
        "largest request frame accepted"),
    NUM("max.connections", OPT_INT32, max_connections, 1, INT32_MAX, "2147483647",
        "client connections open at once"),
    NUM("queued.max.requests", OPT_INT32, queued_max_requests, 1, INT32_MAX, "500",
        "requests in flight per connection before it stops reading"),
    NUM("replica.lag.time.max.ms", OPT_INT32, replica_lag_time_max_ms, 1, INT32_MAX, "30000",
        "a follower behind this long leaves the ISR"),
    NUM("producer.id.expiration.ms", OPT_INT64, producer_id_expiration_ms, 1, INT64_MAX, "86400000",
        "an idempotent producer idle this long is forgotten by each partition"),
    NUM("producer.id.expiration.check.interval.ms", OPT_INT32,
        producer_id_expiration_check_interval_ms, 1, INT32_MAX, "600000",
        "how often partitions forget expired producers"),
    NUM("log.retention.check.interval.ms", OPT_INT64, retention_check_interval_ms, 1, INT64_MAX,
        "300000", "how often retention runs"),
    NUM("log.flush.scheduler.interval.ms", OPT_INT64, flush_scheduler_interval_ms, 1, INT64_MAX,
        "9223372036854775807", "how often logs are checked for a time-based flush"),
    NUM("log.max.open.files", OPT_INT32, log_max_open_files, 0, INT32_MAX, "0",
        "segment files (.log) open at once over all partitions, reopened on demand (least "
        "recently used closed first); at least 4. 0: half the open-file limit, the other half "
        "left to sockets"),
    NUM("leader.replication.throttled.rate", OPT_INT64, leader_replication_throttled_rate, 1,
        INT64_MAX, "9223372036854775807",
        "bytes/s a leader sends to the replicas a reassignment adds (the default: unthrottled)"),
    NUM("follower.replication.throttled.rate", OPT_INT64, follower_replication_throttled_rate, 1,
        INT64_MAX, "9223372036854775807",
        "bytes/s a replica a reassignment adds fetches (the default: unthrottled)"),
    {"log.level", OPT_LOG_LEVEL, F(log_level), 0, 0, 0, "info", NULL, "error, warn, info or debug"},
    NUM("offsets.topic.num.partitions", OPT_INT32, groups.offsets_topic_partitions, 1, 1000, "50",
        "partitions of __consumer_offsets (fixed once the topic exists)"),
    NUM("offsets.topic.replication.factor", OPT_INT16, groups.offsets_topic_replication_factor, 1,
        INT16_MAX, "3",
        "replication factor of __consumer_offsets; groups wait until this many brokers are live"),
    NUM("offsets.topic.segment.bytes", OPT_INT32, groups.offsets_topic_segment_bytes, 14, INT32_MAX,
        "104857600", "segment size of __consumer_offsets"),
    NUM("offsets.retention.ms", OPT_INT64, groups.offsets_retention_ms, 1, INT64_MAX, "604800000",
        "committed offsets of an empty group expire this long after it became empty"),
    NUM("offsets.retention.check.interval.ms", OPT_INT64,
        groups.offsets_retention_check_interval_ms, 1, INT64_MAX, "600000",
        "how often expired offsets are removed"),
    NUM("offsets.commit.timeout.ms", OPT_INT32, groups.offsets_commit_timeout_ms, 1, INT32_MAX,
        "5000", "longest wait for a commit to reach every in-sync replica"),
    /* At most INT16_MAX: the offset record stores it as a classic string. */
    NUM("offset.metadata.max.bytes", OPT_INT32, groups.offset_metadata_max_bytes, 0, INT16_MAX,
        "4096", "largest metadata string of a committed offset"),
    NUM("group.initial.rebalance.delay.ms", OPT_INT32, groups.initial_rebalance_delay_ms, 0,
        INT32_MAX, "3000", "how long an empty group's first rebalance waits for more members"),
    NUM("group.min.session.timeout.ms", OPT_INT32, groups.min_session_timeout_ms, 1, INT32_MAX,
        "6000", "smallest session timeout a group member may ask for"),
    NUM("group.max.session.timeout.ms", OPT_INT32, groups.max_session_timeout_ms, 1, INT32_MAX,
        "1800000", "largest session timeout a group member may ask for"),
    NUM("group.max.size", OPT_INT32, groups.max_size, 1, GROUP_MAX_MEMBERS, "1000",
        "members one group may have"),
    NUM("transaction.state.log.num.partitions", OPT_INT32, txns.log_partitions, 1, 1000, "50",
        "partitions of __transaction_state (fixed once the topic exists)"),
    NUM("transaction.state.log.replication.factor", OPT_INT16, txns.log_replication_factor, 1,
        INT16_MAX, "3",
        "replication factor of __transaction_state; transactions wait until this many brokers "
        "are live"),
    NUM("transaction.state.log.min.isr", OPT_INT16, txns.log_min_isr, 1, INT16_MAX, "2",
        "min.insync.replicas of __transaction_state (at most its replication factor)"),
    NUM("transaction.state.log.segment.bytes", OPT_INT32, txns.log_segment_bytes, 14, INT32_MAX,
        "104857600", "segment size of __transaction_state"),
    NUM("transaction.max.timeout.ms", OPT_INT32, txns.max_timeout_ms, 1, INT32_MAX, "900000",
        "largest transaction.timeout.ms a producer may ask for"),
    NUM("transactional.id.expiration.ms", OPT_INT32, txns.id_expiration_ms, 1, INT32_MAX,
        "604800000", "a transactional id idle this long is forgotten"),
    NUM("transaction.abort.timed.out.transaction.cleanup.interval.ms", OPT_INT32,
        txns.abort_timed_out_interval_ms, 1, INT32_MAX, "10000",
        "how often transactions past their timeout are aborted"),
    NUM("transaction.remove.expired.transaction.cleanup.interval.ms", OPT_INT32,
        txns.remove_expired_interval_ms, 1, INT32_MAX, "3600000",
        "how often expired transactional ids are removed"),
    NUM("transaction.partition.verification.enable", OPT_BOOL, txns.partition_verification, 0, 1,
        "true",
        "Produce asks the transaction coordinator before a transaction's first batch in a "
        "partition (KIP-890): a partition not added to the transaction answers INVALID_TXN_STATE"),
    TOPIC_DEFAULT("log.segment.bytes", "segment.bytes", "segment file size"),
    TOPIC_DEFAULT("log.roll.ms", "segment.ms", "age at which a segment rolls"),
    TOPIC_DEFAULT("log.retention.ms", "retention.ms",
                  "age at which segments are deleted (-1: never)"),
    TOPIC_DEFAULT("log.retention.bytes", "retention.bytes",
                  "partition size beyond which old segments are deleted (-1: no limit)"),
    TOPIC_DEFAULT("message.max.bytes", "max.message.bytes", "largest record batch accepted"),
    TOPIC_DEFAULT("log.flush.interval.messages", "flush.messages",
                  "messages appended between fsyncs"),
    TOPIC_DEFAULT("log.flush.interval.ms", "flush.ms", "longest time data stays unflushed"),
    TOPIC_DEFAULT("log.index.interval.bytes", "index.interval.bytes",
                  "bytes between offset index entries"),
    TOPIC_DEFAULT("log.index.size.max.bytes", "segment.index.bytes", "largest offset index file"),
    TOPIC_DEFAULT("log.message.timestamp.type", "message.timestamp.type",
                  "CreateTime or LogAppendTime"),
    TOPIC_DEFAULT("min.insync.replicas", "min.insync.replicas",
                  "in-sync replicas an acks=all produce needs"),
};

#define NOPTIONS (sizeof(config_options) / sizeof(config_options[0]))

static const config_option_t *config_find(const char *key)
{
    for (size_t i = 0; i < NOPTIONS; i++)
        if (strcmp(config_options[i].key, key) == 0)
            return &config_options[i];
    return NULL;
}

static int config_fail(char *err, size_t err_size, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int config_fail(char *err, size_t err_size, const char *key, const char *fmt, ...)
{
    int n = snprintf(err, err_size, "%s: ", key);
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < err_size)
        vsnprintf(err + n, err_size - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static void set_string(broker_config_t *cfg, size_t offset, const char *value, size_t len)
{
    char **field = (char **)((char *)cfg + offset);
    free(*field);
    *field = xstrndup(value, len);
}

/* host:port, host may be empty or a bracketed IPv6 literal, and has at
 * most BROKER_HOST_MAX characters (a registration carries it). */
static int parse_host_port(const char *key, const char *value, char **host, int32_t *port,
                           char *err, size_t err_size)
{
    const char *colon = strrchr(value, ':');
    if (colon == NULL)
        return config_fail(err, err_size, key, "invalid value '%s' (expected host:port)", value);
    const char *h = value;
    size_t hlen = (size_t)(colon - value);
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    } else if (memchr(h, ':', hlen) != NULL) {
        return config_fail(err, err_size, key,
                           "invalid value '%s' (write an IPv6 address as [addr]:port)", value);
    }
    if (hlen > BROKER_HOST_MAX)
        return config_fail(err, err_size, key, "host '%.40s...' is longer than %d characters", h,
                           BROKER_HOST_MAX);
    char *end = NULL;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || errno != 0 || p < 0 || p > 65535)
        return config_fail(err, err_size, key, "invalid port in '%s' (0..65535)", value);
    free(*host);
    *host = xstrndup(h, hlen);
    *port = (int32_t)p;
    return 0;
}

static int parse_int(const char *key, const char *value, int64_t min, int64_t max, int64_t *out,
                     char *err, size_t err_size)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(value, &end, 10);
    if (value[0] == '\0' || *end != '\0' || errno != 0 || v < min || v > max)
        return config_fail(err, err_size, key,
                           "invalid value '%s' (an integer in [%" PRId64 ", %" PRId64 "])", value,
                           min, max);
    *out = v;
    return 0;
}

/* ---- listeners ----
 *
 * listeners, advertised.listeners, listener.security.protocol.map and
 * inter.broker.listener.name depend on each other and may come from
 * different sources, so each is checked on its own when set and kept as
 * text; resolve_listeners() combines the final values into listeners[]. */

/* Kafka's security protocols; only PLAINTEXT is served. */
static const char *const security_protocols[] = {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"};
#define NPROTOCOLS (sizeof(security_protocols) / sizeof(security_protocols[0]))
/* Entries listener.security.protocol.map may have: Kafka's default names
 * four protocols, and each listener needs one. */
#define PROTOCOL_MAP_MAX (BROKER_MAX_LISTENERS + NPROTOCOLS)
/* Longest "NAME://[host]:port" entry. */
#define ENDPOINT_TEXT_MAX (BROKER_LISTENER_NAME_MAX + BROKER_HOST_MAX + 16)

typedef struct endpoint_spec {
    char name[BROKER_LISTENER_NAME_MAX + 1];
    char *host; /* owned by the list */
    int32_t port;
} endpoint_spec_t;

/* A parsed listeners or advertised.listeners value, in the order given. */
typedef struct endpoint_list {
    endpoint_spec_t v[BROKER_MAX_LISTENERS];
    size_t n;
} endpoint_list_t;

typedef struct protocol_map {
    char name[PROTOCOL_MAP_MAX][BROKER_LISTENER_NAME_MAX + 1];
    size_t protocol[PROTOCOL_MAP_MAX]; /* index in security_protocols */
    size_t n;
} protocol_map_t;

static void endpoint_list_free(endpoint_list_t *list)
{
    assert(list->n <= BROKER_MAX_LISTENERS);
    for (size_t i = 0; i < list->n; i++)
        free(list->v[i].host);
    list->n = 0;
}

/* [*s, *s + *len) without its leading and trailing blanks. */
static void trim_span(const char **s, size_t *len)
{
    while (*len > 0 && isspace((unsigned char)**s)) {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 && isspace((unsigned char)(*s)[*len - 1]))
        (*len)--;
}

/* The next comma-separated item of *s with blanks trimmed, empty items
 * skipped as Kafka's list parser does. Returns false after the last. */
static bool next_item(const char **s, const char **item, size_t *len)
{
    while (**s != '\0') {
        const char *p = *s;
        const char *end = p + strcspn(p, ",");
        *s = *end == ',' ? end + 1 : end;
        *item = p;
        *len = (size_t)(end - p);
        trim_span(item, len);
        if (*len > 0)
            return true;
    }
    return false;
}

/* A listener name: 1..BROKER_LISTENER_NAME_MAX of [A-Za-z0-9_-], written
 * upper-cased into out (Kafka normalises listener names so). */
static int parse_listener_name(const char *key, const char *name, size_t len,
                               char out[BROKER_LISTENER_NAME_MAX + 1], char *err, size_t err_size)
{
    if (len == 0 || len > BROKER_LISTENER_NAME_MAX)
        return config_fail(err, err_size, key, "a listener name has 1 to %d characters, got '%.*s'",
                           BROKER_LISTENER_NAME_MAX, (int)len, name);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (!isalnum(ch) && ch != '_' && ch != '-')
            return config_fail(err, err_size, key,
                               "invalid listener name '%.*s' (letters, digits, '_' and '-')",
                               (int)len, name);
        out[i] = (char)toupper(ch);
    }
    out[len] = '\0';
    return 0;
}

/* Parses NAME://host:port[,NAME://host:port...] into list (empty: none).
 * Names must be unique; ports are checked by resolve_listeners. On failure
 * list holds nothing. */
static int parse_endpoints(const char *key, const char *value, endpoint_list_t *list, char *err,
                           size_t err_size)
{
    const char *item;
    size_t len;
    list->n = 0;
    while (next_item(&value, &item, &len)) {
        char text[ENDPOINT_TEXT_MAX + 1];
        if (list->n == BROKER_MAX_LISTENERS) {
            config_fail(err, err_size, key, "more than %d listeners", BROKER_MAX_LISTENERS);
            goto fail;
        }
        if (len > ENDPOINT_TEXT_MAX) {
            config_fail(err, err_size, key, "entry '%.40s...' is longer than %d characters", item,
                        ENDPOINT_TEXT_MAX);
            goto fail;
        }
        memcpy(text, item, len);
        text[len] = '\0';
        const char *scheme = strstr(text, "://");
        if (scheme == NULL) {
            config_fail(err, err_size, key, "invalid entry '%s' (expected NAME://host:port)", text);
            goto fail;
        }
        endpoint_spec_t *e = &list->v[list->n];
        if (parse_listener_name(key, text, (size_t)(scheme - text), e->name, err, err_size) != 0)
            goto fail;
        for (size_t i = 0; i < list->n; i++) {
            if (strcmp(list->v[i].name, e->name) == 0) {
                config_fail(err, err_size, key, "listener %s is named twice", e->name);
                goto fail;
            }
        }
        e->host = NULL;
        if (parse_host_port(key, scheme + 3, &e->host, &e->port, err, err_size) != 0)
            goto fail;
        list->n++;
    }
    return 0;

fail:
    endpoint_list_free(list);
    return -1;
}

/* Parses NAME:PROTOCOL[,NAME:PROTOCOL...] (protocol case-insensitive). */
static int parse_protocol_map(const char *key, const char *value, protocol_map_t *map, char *err,
                              size_t err_size)
{
    const char *item;
    size_t len;
    map->n = 0;
    while (next_item(&value, &item, &len)) {
        if (map->n == PROTOCOL_MAP_MAX)
            return config_fail(err, err_size, key, "more than %d entries", (int)PROTOCOL_MAP_MAX);
        /* Split at the last ':' with blanks around it trimmed, as Kafka's
         * map parser does. */
        size_t nlen = len;
        while (nlen > 0 && item[nlen - 1] != ':')
            nlen--;
        if (nlen == 0)
            return config_fail(err, err_size, key, "invalid entry '%.*s' (expected NAME:PROTOCOL)",
                               (int)len, item);
        const char *proto = item + nlen;
        size_t plen = len - nlen;
        nlen--; /* the ':' */
        trim_span(&item, &nlen);
        trim_span(&proto, &plen);
        if (parse_listener_name(key, item, nlen, map->name[map->n], err, err_size) != 0)
            return -1;
        for (size_t i = 0; i < map->n; i++)
            if (strcmp(map->name[i], map->name[map->n]) == 0)
                return config_fail(err, err_size, key, "listener %s is mapped twice", map->name[i]);
        size_t p = 0;
        while (p < NPROTOCOLS && (strlen(security_protocols[p]) != plen ||
                                  strncasecmp(security_protocols[p], proto, plen) != 0))
            p++;
        if (p == NPROTOCOLS)
            return config_fail(err, err_size, key,
                               "unknown security protocol '%.*s' (PLAINTEXT, SSL, SASL_PLAINTEXT "
                               "or SASL_SSL)",
                               (int)plen, proto);
        map->protocol[map->n++] = p;
    }
    return 0;
}

static const endpoint_spec_t *endpoint_find(const endpoint_list_t *list, const char *name)
{
    for (size_t i = 0; i < list->n; i++)
        if (strcmp(list->v[i].name, name) == 0)
            return &list->v[i];
    return NULL;
}

/* "A, B, C": the names of list, for messages. */
static void endpoint_names(const endpoint_list_t *list, char *out, size_t size)
{
    size_t n = 0;
    assert(size > 0);
    out[0] = '\0';
    for (size_t i = 0; i < list->n && n < size; i++) {
        int w = snprintf(out + n, size - n, "%s%s", i ? ", " : "", list->v[i].name);
        if (w < 0)
            break;
        n += (size_t)w;
    }
}

/* The listener keys' final values, parsed. */
typedef struct listener_specs {
    endpoint_list_t bind; /* listeners (at least one) */
    endpoint_list_t adv;  /* advertised.listeners */
    bool adv_set;         /* advertised.listeners is set: it alone says what is advertised */
    protocol_map_t map;   /* listener.security.protocol.map */
} listener_specs_t;

/* What a listener advertises, as in Kafka: with advertised.listeners set,
 * its entry there (NULL when it has none: the listener is not advertised,
 * not registered, and no Metadata answer names it); unset, its own
 * address. */
static const endpoint_spec_t *advertised_spec(const listener_specs_t *s,
                                              const endpoint_spec_t *listener)
{
    return s->adv_set ? endpoint_find(&s->adv, listener->name) : listener;
}

/* Parses the final values into s. The lists are freed by the caller
 * whatever the result (parse_endpoints leaves a failed one empty). */
static int parse_listener_specs(const broker_config_t *cfg, listener_specs_t *s, char *err,
                                size_t err_size)
{
    const char *bind_text = cfg->listener_keys.listeners;
    const char *adv_text = cfg->listener_keys.advertised;
    const char *map_text = cfg->listener_keys.protocol_map;
    s->bind.n = s->adv.n = s->map.n = 0;
    s->adv_set = adv_text != NULL;
    if (parse_endpoints("listeners", bind_text ? bind_text : "", &s->bind, err, err_size) != 0)
        return -1;
    if (s->bind.n == 0)
        return config_fail(err, err_size, "listeners", "at least one listener is required");
    if (parse_endpoints("advertised.listeners", adv_text ? adv_text : "", &s->adv, err, err_size) !=
        0)
        return -1;
    return parse_protocol_map("listener.security.protocol.map", map_text ? map_text : "", &s->map,
                              err, err_size);
}

/* AF_INET or AF_INET6 when host is an address literal of that family;
 * AF_UNSPEC for a name or "" (every interface). */
static int address_family(const char *host)
{
    unsigned char addr[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, host, addr) == 1)
        return AF_INET;
    if (inet_pton(AF_INET6, host, addr) == 1)
        return AF_INET6;
    return AF_UNSPEC;
}

/* Kafka's port rule: listeners' ports are unique unless 0 (an ephemeral
 * port each), except that exactly two may share one when one binds an IPv4
 * address and the other an IPv6 address (net binds that IPv6 socket IPv6
 * only). replication.listener and metrics.listener, not Kafka listeners,
 * have ports of their own: refused here, before the broker registers,
 * rather than at bind. */
static int check_listener_ports(const broker_config_t *cfg, const endpoint_list_t *bind, char *err,
                                size_t err_size)
{
    for (size_t i = 0; i < bind->n; i++) {
        const endpoint_spec_t *e = &bind->v[i];
        if (e->port == 0)
            continue;
        if (cfg->rpc_port == e->port)
            return config_fail(err, err_size, "replication.listener",
                               "port %d is also the port of listener %s (the replication "
                               "listener needs its own)",
                               cfg->rpc_port, e->name);
        if (cfg->metrics_host != NULL && cfg->metrics_port == e->port)
            return config_fail(err, err_size, "metrics.listener",
                               "port %d is also the port of listener %s", cfg->metrics_port,
                               e->name);
        size_t sharing = 0;
        for (size_t j = 0; j < bind->n; j++)
            sharing += bind->v[j].port == e->port;
        for (size_t j = 0; j < i; j++) {
            if (bind->v[j].port != e->port)
                continue;
            int fi = address_family(e->host), fj = address_family(bind->v[j].host);
            bool v4_v6 = fi != AF_UNSPEC && fj != AF_UNSPEC && fi != fj;
            if (sharing > 2 || !v4_v6)
                return config_fail(err, err_size, "listeners",
                                   "listeners %s and %s both use port %d (only an IPv4 and an "
                                   "IPv6 address may share a port)",
                                   bind->v[j].name, e->name, e->port);
        }
    }
    if (cfg->metrics_host != NULL && cfg->metrics_port != 0 && cfg->metrics_port == cfg->rpc_port)
        return config_fail(err, err_size, "metrics.listener",
                           "port %d is also replication.listener's", cfg->metrics_port);
    return 0;
}

/* Every listener is mapped, to PLAINTEXT (the only protocol served). */
static int check_protocol_map(const endpoint_list_t *bind, const protocol_map_t *map, char *err,
                              size_t err_size)
{
    for (size_t i = 0; i < bind->n; i++) {
        size_t m = 0;
        while (m < map->n && strcmp(map->name[m], bind->v[i].name) != 0)
            m++;
        if (m == map->n)
            return config_fail(err, err_size, "listener.security.protocol.map",
                               "no security protocol for listener %s", bind->v[i].name);
        if (map->protocol[m] != 0)
            return config_fail(err, err_size, "listener.security.protocol.map",
                               "listener %s uses %s; only PLAINTEXT is supported", bind->v[i].name,
                               security_protocols[map->protocol[m]]);
    }
    return 0;
}

/* Every name in advertised.listeners is a listener, and every advertised
 * endpoint has a port and a host clients can use: Kafka refuses the
 * non-routable 0.0.0.0 (an empty host advertises the host name). */
static int check_advertised(const listener_specs_t *s, char *err, size_t err_size)
{
    char names[BROKER_MAX_LISTENERS * (BROKER_LISTENER_NAME_MAX + 2)];
    endpoint_names(&s->bind, names, sizeof(names));
    for (size_t i = 0; i < s->adv.n; i++) {
        if (endpoint_find(&s->bind, s->adv.v[i].name) == NULL)
            return config_fail(err, err_size, "advertised.listeners",
                               "%s is not a listener (listeners: %s)", s->adv.v[i].name, names);
    }
    for (size_t i = 0; i < s->bind.n; i++) {
        const char *name = s->bind.v[i].name;
        const endpoint_spec_t *a = advertised_spec(s, &s->bind.v[i]);
        if (a == NULL)
            continue;
        if (strcmp(a->host, "0.0.0.0") == 0 && s->adv_set)
            return config_fail(err, err_size, "advertised.listeners",
                               "listener %s advertises 0.0.0.0, which is not routable: name an "
                               "address clients can reach (an empty host advertises this "
                               "machine's host name)",
                               name);
        if (strcmp(a->host, "0.0.0.0") == 0)
            return config_fail(err, err_size, "advertised.listeners",
                               "unset, so listener %s advertises its address 0.0.0.0, which is "
                               "not routable: name an address clients can reach here (an empty "
                               "host in listeners binds every interface and advertises this "
                               "machine's host name)",
                               name);
        if (a->port == 0)
            return config_fail(err, err_size, "advertised.listeners",
                               "listener %s needs an advertised port (its port is 0)", name);
    }
    return 0;
}

/* inter.broker.listener.name's index in bind: a listener, advertised
 * (other brokers and tools read its endpoint from the registration). Unset,
 * it is PLAINTEXT, which must then be such a listener: Kafka's default and
 * Kafka's rules. */
static int pick_inter_broker(const broker_config_t *cfg, const listener_specs_t *s, size_t *index,
                             char *err, size_t err_size)
{
    const char *inter = cfg->listener_keys.inter_broker_name;
    const char *dflt = inter == NULL ? " (the default)" : "";
    char name[BROKER_LISTENER_NAME_MAX + 1] = "PLAINTEXT";
    char names[BROKER_MAX_LISTENERS * (BROKER_LISTENER_NAME_MAX + 2)];
    if (inter != NULL && parse_listener_name("inter.broker.listener.name", inter, strlen(inter),
                                             name, err, err_size) != 0)
        return -1;
    const endpoint_spec_t *ep = endpoint_find(&s->bind, name);
    if (ep == NULL) {
        endpoint_names(&s->bind, names, sizeof(names));
        return config_fail(err, err_size, "inter.broker.listener.name",
                           "%s%s is not a listener (listeners: %s)", name, dflt, names);
    }
    if (advertised_spec(s, ep) == NULL) {
        endpoint_names(&s->adv, names, sizeof(names));
        return config_fail(err, err_size, "inter.broker.listener.name",
                           "%s%s is not in advertised.listeners (advertised: %s)", name, dflt,
                           names);
    }
    *index = (size_t)(ep - s->bind.v);
    assert(*index < s->bind.n);
    return 0;
}

/* Fills listeners[] from checked specs; an empty advertised host becomes
 * this machine's host name. */
static void fill_listeners(broker_config_t *cfg, const listener_specs_t *s, size_t inter)
{
    char this_host[BROKER_HOST_MAX + 1];
    assert(cfg->nlisteners == 0 && s->bind.n >= 1 && s->bind.n <= BROKER_MAX_LISTENERS);
    assert(inter < s->bind.n);
    if (gethostname(this_host, sizeof(this_host)) != 0)
        snprintf(this_host, sizeof(this_host), "localhost");
    this_host[sizeof(this_host) - 1] = '\0';
    for (size_t i = 0; i < s->bind.n; i++) {
        const endpoint_spec_t *a = advertised_spec(s, &s->bind.v[i]);
        broker_listener_t *l = &cfg->listeners[cfg->nlisteners++];
        l->name = xstrdup(s->bind.v[i].name);
        l->host = xstrdup(s->bind.v[i].host);
        l->port = s->bind.v[i].port;
        l->advertised_host = NULL;
        l->advertised_port = 0;
        if (a != NULL) {
            l->advertised_host = xstrdup(a->host[0] ? a->host : this_host);
            l->advertised_port = a->port;
            assert(l->advertised_port > 0);
        }
    }
    cfg->inter_broker_listener = inter;
    cfg->advertised_host = cfg->listeners[inter].advertised_host;
    cfg->advertised_port = cfg->listeners[inter].advertised_port;
    assert(cfg->advertised_host != NULL);
}

/* Checks the listener keys' combination and fills listeners[],
 * inter_broker_listener and the advertised views. */
static int resolve_listeners(broker_config_t *cfg, char *err, size_t err_size)
{
    listener_specs_t s;
    size_t inter = 0;
    assert(cfg->nlisteners == 0);
    int rc = parse_listener_specs(cfg, &s, err, err_size);
    if (rc == 0)
        rc = check_listener_ports(cfg, &s.bind, err, err_size);
    if (rc == 0)
        rc = check_protocol_map(&s.bind, &s.map, err, err_size);
    if (rc == 0)
        rc = check_advertised(&s, err, err_size);
    if (rc == 0)
        rc = pick_inter_broker(cfg, &s, &inter, err, err_size);
    if (rc == 0)
        fill_listeners(cfg, &s, inter);
    endpoint_list_free(&s.bind);
    endpoint_list_free(&s.adv);
    return rc;
}

/* Applies one key=value. Returns 0, or -1 with "<key>: <reason>" in err. */
static int config_set(broker_config_t *cfg, const char *key, const char *value, char *err,
                      size_t err_size)
{
    const config_option_t *opt = config_find(key);
    if (opt == NULL)
        return config_fail(err, err_size, key, "unknown configuration key");
    char *base = (char *)cfg;
    int64_t v = 0;
    switch (opt->type) {
    case OPT_INT16:
    case OPT_INT32:
    case OPT_INT64:
        if (parse_int(key, value, opt->min, opt->max, &v, err, err_size) != 0)
            return -1;
        if (opt->type == OPT_INT16)
            *(int16_t *)(base + opt->offset) = (int16_t)v;
        else if (opt->type == OPT_INT32)
            *(int32_t *)(base + opt->offset) = (int32_t)v;
        else
            *(int64_t *)(base + opt->offset) = v;
        return 0;
    case OPT_BOOL:
        if (strcasecmp(value, "true") == 0)
            *(bool *)(base + opt->offset) = true;
        else if (strcasecmp(value, "false") == 0)
            *(bool *)(base + opt->offset) = false;
        else
            return config_fail(err, err_size, key, "invalid value '%s' (true or false)", value);
        return 0;
    case OPT_STRING:
        if (value[0] == '\0') {
            char **field = (char **)(base + opt->offset);
            free(*field);
            *field = NULL;
        } else {
            set_string(cfg, opt->offset, value, strlen(value));
        }
        return 0;
    case OPT_ENDPOINTS:
    case OPT_PROTOCOL_MAP:
    case OPT_LISTENER_NAME: {
        /* Checked alone now, combined with the others by resolve_listeners.
         * Kept trimmed, as Kafka trims string values (environment variables
         * and flags keep the blanks the file loader drops); "": unset. */
        size_t len = strlen(value);
        trim_span(&value, &len);
        char *text = xstrndup(value, len);
        int rc = 0;
        if (opt->type == OPT_ENDPOINTS) {
            endpoint_list_t list;
            rc = parse_endpoints(key, text, &list, err, err_size);
            if (rc == 0)
                endpoint_list_free(&list);
        } else if (opt->type == OPT_PROTOCOL_MAP) {
            protocol_map_t map;
            rc = parse_protocol_map(key, text, &map, err, err_size);
        } else if (len > 0) {
            char name[BROKER_LISTENER_NAME_MAX + 1];
            rc = parse_listener_name(key, text, len, name, err, err_size);
        }
        if (rc != 0 || len == 0) {
            free(text);
            text = NULL;
        }
        if (rc == 0) {
            char **field = (char **)(base + opt->offset);
            free(*field);
            *field = text; /* owned by cfg */
        }
        return rc;
    }
    case OPT_HOST_PORT_OR_OFF:
        if (value[0] == '\0') {
            char **host = (char **)(base + opt->offset);
            free(*host);
            *host = NULL;
            *(int32_t *)(base + opt->offset2) = 0;
            return 0;
        }
        /* fall through */
    case OPT_HOST_PORT:
        return parse_host_port(key, value, (char **)(base + opt->offset),
                               (int32_t *)(base + opt->offset2), err, err_size);
    case OPT_LOG_DIRS:
        if (strchr(value, ',') != NULL)
            return config_fail(err, err_size, key, "only one log directory is supported, got '%s'",
                               value);
        if (value[0] == '\0')
            return config_fail(err, err_size, key, "empty directory");
        set_string(cfg, opt->offset, value, strlen(value));
        return 0;
    case OPT_LOG_LEVEL: {
        int level = vlog_level_parse(value);
        if (level < 0)
            return config_fail(err, err_size, key,
                               "invalid value '%s' (error, warn, info or debug)", value);
        *(int *)(base + opt->offset) = level;
        return 0;
    }
    case OPT_LOG: {
        char why[256];
        if (log_config_set(&cfg->log_defaults, opt->topic_key, value, why, sizeof(why)) == 0)
            return 0;
        /* The log names its own key first; ours is the one the user wrote. */
        const char *reason = why;
        size_t tk = strlen(opt->topic_key);
        if (strncmp(why, opt->topic_key, tk) == 0 && strncmp(why + tk, ": ", 2) == 0)
            reason = why + tk + 2;
        return config_fail(err, err_size, key, "%s", reason);
    }
    }
    assert(0 && "unhandled option type");
    return -1;
}

/* Java-properties subset: "key=value", "key: value" or "key value";
 * '#' and '!' start comments; surrounding blanks are trimmed. */
static int config_load_file(broker_config_t *cfg, const char *path, char *err, size_t err_size)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return config_fail(err, err_size, "--config", "cannot open '%s': %s", path,
                           strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    while (rc == 0 && (n = getline(&line, &cap, f)) >= 0) {
        char *s = line;
        while (*s && isspace((unsigned char)*s))
            s++;
        if (*s == '\0' || *s == '#' || *s == '!')
            continue;
        char *end = s + strlen(s);
        while (end > s && isspace((unsigned char)end[-1]))
            *--end = '\0';
        /* The key ends at the first '=', ':' or blank; then blanks, at most
         * one '=' or ':', and blanks again precede the value. */
        char *sep = s + strcspn(s, "=: \t");
        char *value = sep;
        if (*sep != '\0') {
            bool had_equals = *sep == '=' || *sep == ':';
            *sep = '\0';
            value = sep + 1;
            while (isspace((unsigned char)*value))
                value++;
            if (!had_equals && (*value == '=' || *value == ':')) {
                value++;
                while (isspace((unsigned char)*value))
                    value++;
            }
        }
        rc = config_set(cfg, s, value, err, err_size);
    }
    free(line);
    fclose(f);
    return rc;
}

/* VLTAVA_BROKER_ID for broker.id. Only the variables of known keys are
 * read: other VLTAVA_* variables belong to other tools. */
static int config_load_env(broker_config_t *cfg, char *err, size_t err_size)
{
    for (size_t i = 0; i < NOPTIONS; i++) {
        char name[128] = "VLTAVA_";
        size_t n = strlen(name);
        for (const char *k = config_options[i].key; *k && n + 1 < sizeof(name); k++)
            name[n++] = *k == '.' ? '_' : (char)toupper((unsigned char)*k);
        name[n] = '\0';
        const char *value = getenv(name);
        if (value != NULL && config_set(cfg, config_options[i].key, value, err, err_size) != 0)
            return -1;
    }
    return 0;
}

static void config_defaults(broker_config_t *cfg)
{
    char err[256];
    memset(cfg, 0, sizeof(*cfg));
    cfg->broker_id = -1;
    cfg->log_level = VLOG_INFO;
    log_config_defaults(&cfg->log_defaults);
    for (size_t i = 0; i < NOPTIONS; i++) {
        const config_option_t *opt = &config_options[i];
        if (opt->default_value == NULL)
            continue;
        int rc = config_set(cfg, opt->key, opt->default_value, err, sizeof(err));
        assert(rc == 0 && "a default must parse");
        (void)rc;
    }
}

/* Fills what derives from other keys, then checks what is required. */
static int config_finish(broker_config_t *cfg, char *err, size_t err_size)
{
    if (cfg->broker_id < 0)
        return config_fail(err, err_size, "broker.id", "required (a non-negative integer)");
    if (cfg->zookeeper_connect == NULL)
        return config_fail(err, err_size, "zookeeper.connect", "required (host:port[/chroot])");
    if (resolve_listeners(cfg, err, err_size) != 0)
        return -1;
    if (cfg->rpc_host[0] == '\0') {
        free(cfg->rpc_host);
        cfg->rpc_host = xstrdup(cfg->advertised_host);
    }
    if (cfg->groups.min_session_timeout_ms > cfg->groups.max_session_timeout_ms)
        return config_fail(err, err_size, "group.min.session.timeout.ms",
                           "%d is above group.max.session.timeout.ms (%d)",
                           cfg->groups.min_session_timeout_ms, cfg->groups.max_session_timeout_ms);
    if (cfg->log_max_open_files > 0 && cfg->log_max_open_files < LOG_MIN_OPEN_FILES)
        return config_fail(err, err_size, "log.max.open.files", "%d is below %d (0: derived)",
                           cfg->log_max_open_files, LOG_MIN_OPEN_FILES);
    assert(cfg->nlisteners >= 1 && cfg->inter_broker_listener < cfg->nlisteners);
    assert(cfg->log_dir != NULL);
    return 0;
}

int broker_config_load(broker_config_t *cfg, int argc, char **argv, char *err, size_t err_size)
{
    const char *file = NULL;
    assert(cfg != NULL && err != NULL);

    config_defaults(cfg);
    /* First pass: --help and the file; flags apply after the environment. */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            broker_config_usage(stdout);
            broker_config_free(cfg);
            return 1;
        }
        if (strcmp(a, "--config") == 0) {
            if (i + 1 >= argc) {
                config_fail(err, err_size, "--config", "needs a file name");
                goto fail;
            }
            file = argv[++i];
        } else if (strncmp(a, "--config=", 9) == 0) {
            file = a + 9;
        } else if (strncmp(a, "--", 2) == 0) {
            if (strchr(a, '=') == NULL)
                i++; /* "--key value": skip the value */
        } else if (file == NULL && i == 1) {
            file = a;
        } else {
            config_fail(err, err_size, a, "unexpected argument");
            goto fail;
        }
    }
    if (file != NULL && config_load_file(cfg, file, err, err_size) != 0)
        goto fail;
    if (config_load_env(cfg, err, err_size) != 0)
        goto fail;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || strcmp(a, "--config") == 0) {
            if (strcmp(a, "--config") == 0)
                i++;
            continue;
        }
        if (strncmp(a, "--config=", 9) == 0)
            continue;
        const char *eq = strchr(a + 2, '=');
        char *key;
        const char *value;
        if (eq != NULL) {
            key = xstrndup(a + 2, (size_t)(eq - a - 2));
            value = eq + 1;
        } else {
            key = xstrdup(a + 2);
            if (i + 1 >= argc) {
                config_fail(err, err_size, key, "needs a value");
                free(key);
                goto fail;
            }
            value = argv[++i];
        }
        int rc = config_set(cfg, key, value, err, err_size);
        free(key);
        if (rc != 0)
            goto fail;
    }
    if (config_finish(cfg, err, err_size) != 0)
        goto fail;
    return 0;

fail:
    broker_config_free(cfg);
    return -1;
}

void broker_config_free(broker_config_t *cfg)
{
    assert(cfg->nlisteners <= BROKER_MAX_LISTENERS);
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        free(cfg->listeners[i].name);
        free(cfg->listeners[i].host);
        free(cfg->listeners[i].advertised_host);
    }
    cfg->nlisteners = 0;
    cfg->advertised_host = NULL;
    free(cfg->listener_keys.listeners);
    free(cfg->listener_keys.advertised);
    free(cfg->listener_keys.protocol_map);
    free(cfg->listener_keys.inter_broker_name);
    memset(&cfg->listener_keys, 0, sizeof(cfg->listener_keys));
    free(cfg->rpc_host);
    free(cfg->metrics_host);
    free(cfg->zookeeper_connect);
    free(cfg->log_dir);
    free(cfg->rack);
    cfg->rpc_host = cfg->metrics_host = NULL;
    cfg->zookeeper_connect = cfg->log_dir = cfg->rack = NULL;
}

void broker_config_usage(FILE *out)
{
    log_config_t log_defaults;
    log_config_defaults(&log_defaults);
    fprintf(out, "usage: vltava-broker [--config FILE | FILE] [--KEY=VALUE | --KEY VALUE ...]\n"
                 "\n"
                 "Kafka-compatible broker. Settings come from the properties FILE, then\n"
                 "VLTAVA_* environment variables (broker.id -> VLTAVA_BROKER_ID), then flags;\n"
                 "a later source overrides an earlier one. Unknown keys and bad values stop\n"
                 "the start (exit code 2).\n"
                 "\n"
                 "Options (default in brackets):\n");
    for (size_t i = 0; i < NOPTIONS; i++) {
        const config_option_t *opt = &config_options[i];
        char def[64];
        const char *shown = opt->default_value;
        if (opt->type == OPT_LOG) {
            if (log_config_get(&log_defaults, opt->topic_key, def, sizeof(def)) == 0)
                shown = def;
        }
        fprintf(out, "  --%-34s %s [%s]\n", opt->key, opt->help, shown != NULL ? shown : "none");
    }
    fprintf(out, "\nMetrics (metrics.listener, Prometheus text format 0.0.4):\n%s",
            METRICS_FAMILIES_USAGE);
}
