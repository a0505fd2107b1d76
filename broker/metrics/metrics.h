/* Prometheus metrics: the registry of counters and histograms the request
 * path updates where each event happens, the scrape-time rendering of the
 * gauges that the owning modules' state already holds (partitions, ISR,
 * controller, ZooKeeper session, log sizes, connections, group lag), and
 * the HTTP endpoint (metrics.listener, GET /metrics) that serves both in
 * Prometheus' text exposition format 0.0.4.
 *
 * Locality: the broker's loop thread, like everything in the broker. The
 * endpoint runs libmicrohttpd inside that loop (its epoll fd is watched by
 * an ev_io, its timeouts by an ev_timer), so a scrape reads the state on the
 * thread that owns it, without locks.
 *
 * Bounds: at most METRICS_MAX_TOPICS topics have series of their own in
 * each per-topic family, and at most METRICS_MAX_LAG_SERIES (group, topic)
 * pairs in the lag family; whatever is beyond is summed into one series
 * labelled METRICS_OTHER_LABEL, so totals stay right. The per-topic
 * counters of a topic that left the cluster metadata are dropped at the
 * next scrape. The endpoint's own bounds are in metrics_endpoint_start().
 */
#ifndef VLTAVA_METRICS_H
#define VLTAVA_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct ev_loop;
struct coordinator;
struct replica_manager;
struct group_coordinator;
struct net_server;

/* The families a scrape shows, for the broker's --help (README's "Metrics
 * and health" says what each counts). */
#define METRICS_FAMILIES_USAGE                                                                     \
    "  vltava_requests_total{api}, vltava_request_errors_total{api,error},\n"                      \
    "  vltava_request_duration_seconds{api} (histogram),\n"                                        \
    "  vltava_topic_bytes_in_total{topic}, vltava_topic_records_in_total{topic},\n"                \
    "  vltava_topic_bytes_out_total{topic}, vltava_topic_records_out_total{topic},\n"              \
    "  vltava_partitions{role}, vltava_under_replicated_partitions,\n"                             \
    "  vltava_under_min_isr_partitions, vltava_offline_partitions,\n"                              \
    "  vltava_isr_shrinks_total, vltava_isr_expands_total, vltava_active_controller,\n"            \
    "  vltava_controller_id, vltava_live_brokers, vltava_zookeeper_session_state{state},\n"        \
    "  vltava_log_size_bytes{topic}, vltava_connections,\n"                                        \
    "  vltava_consumer_group_lag{group,topic}\n"

/* API keys the registry has slots for (Kafka's keys are below 100). */
#define METRICS_API_KEYS 128
/* Topics with series of their own per family. */
#define METRICS_MAX_TOPICS 1000
/* (group, topic) series of vltava_consumer_group_lag. */
#define METRICS_MAX_LAG_SERIES 1000
/* The label value of the series that sums everything beyond a cap: never a
 * valid topic name, so it cannot collide with a real topic's series. */
#define METRICS_OTHER_LABEL "(other)"

typedef struct metrics metrics_t;

/* An empty registry; freed (with everything it holds) by metrics_free. */
metrics_t *metrics_new(void);
void metrics_free(metrics_t *m);

/* Monotonic nanoseconds, for request latencies. */
static inline int64_t metrics_clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Every update below takes m == NULL as "not counted" (a broker part run
 * without a registry, as in unit tests). */

/* A request of api_key arrived; api_name is the dispatch table's static
 * string, which labels the key's series from then on. Keys outside
 * [0, METRICS_API_KEYS) are not counted. */
void metrics_request_received(metrics_t *m, int16_t api_key, const char *api_name);
/* A request of api_key was answered (or given up) `seconds` after it was
 * dispatched: one observation of the latency histogram. */
void metrics_request_completed(metrics_t *m, int16_t api_key, double seconds);
/* One error code (not NONE) in an answer to api_key: a partition's or the
 * request's. A code outside Kafka's range counts as UNKNOWN_SERVER_ERROR. */
void metrics_request_error(metrics_t *m, int16_t api_key, int16_t error_code);

/* Records and their bytes that Produce appended to / Fetch returned from a
 * topic (name of len bytes, not NUL-terminated). */
void metrics_topic_in(metrics_t *m, const char *topic, size_t len, int64_t bytes, int64_t records);
void metrics_topic_out(metrics_t *m, const char *topic, size_t len, int64_t bytes, int64_t records);
/* Drops the counters of every topic for which exists() is false (deleted
 * topics), freeing their slots. */
void metrics_forget_topics(metrics_t *m, bool (*exists)(void *arg, const char *topic), void *arg);
/* Topics with series of their own (for tests and bounds checks). */
size_t metrics_topic_count(const metrics_t *m);

/* Where a scrape reads the gauges from; the endpoint keeps a copy. groups
 * and net may be NULL (their families are then left out). */
typedef struct metrics_sources {
    metrics_t *registry;
    struct coordinator *coord;
    struct replica_manager *replicas;
    struct group_coordinator *groups;
    const struct net_server *net;
} metrics_sources_t;

/* The registry's families alone, as exposition text: xmalloc'd, the
 * caller's, NUL-terminated, *len bytes without the NUL. */
char *metrics_render_registry(const metrics_t *m, size_t *len);
/* The whole exposition (registry and scrape-time gauges), as above. */
char *metrics_render(const metrics_sources_t *src, size_t *len);

/* The endpoint. Bounds: METRICS_HTTP_CONNECTIONS connections at once, at
 * most METRICS_HTTP_CONNECTIONS_PER_IP of them from one client address (so
 * that slow clients trickling from one address cannot hold every slot; the
 * extra ones are closed at once), more wait in a listen backlog of METRICS_HTTP_BACKLOG, beyond
 * which the kernel completes no more), METRICS_HTTP_MEMORY_BYTES of request memory each (a larger
 * request line or header gets an error answer and is closed), a connection
 * idle for METRICS_HTTP_IDLE_TIMEOUT_S is closed, a request that carries a
 * body is answered 413 and closed, a rendered exposition is reused for
 * METRICS_HTTP_REUSE_MS (so a flood of scrapes renders at most that often). */
#define METRICS_HTTP_CONNECTIONS        32
#define METRICS_HTTP_CONNECTIONS_PER_IP 8
#define METRICS_HTTP_BACKLOG            64
#define METRICS_HTTP_MEMORY_BYTES       (16 * 1024)
#define METRICS_HTTP_IDLE_TIMEOUT_S     5
#define METRICS_HTTP_REUSE_MS           250
#define METRICS_CONTENT_TYPE            "text/plain; version=0.0.4; charset=utf-8"

typedef struct metrics_endpoint metrics_endpoint_t;

/* Listens on host:port (empty host or "0.0.0.0": every IPv4 address; port
 * 0: an ephemeral one) and serves GET and HEAD /metrics, 503 until
 * metrics_endpoint_set_sources; other paths 404, other methods 405.
 * Returns NULL with the reason (naming metrics.listener) in err. */
metrics_endpoint_t *metrics_endpoint_start(struct ev_loop *loop, const char *host, int32_t port,
                                           char *err, size_t err_size);
/* Where scrapes read from from now on (copied; the pointers must outlive
 * the endpoint). Once only. */
void metrics_endpoint_set_sources(metrics_endpoint_t *ep, const metrics_sources_t *src);
/* The port actually bound. */
int32_t metrics_endpoint_port(const metrics_endpoint_t *ep);
/* Closes every connection and the listener; frees. NULL is ignored. */
void metrics_endpoint_stop(metrics_endpoint_t *ep);

#endif
