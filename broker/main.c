/* vltava-broker: wires the modules together on one libev loop, in the order
 * of the design's control flow, and takes them down again on SIGTERM/SIGINT.
 *
 * Start: configuration -> log level -> metrics endpoint (bound first, so
 * that a bad metrics.listener stops the start before the broker registers
 * in ZooKeeper; it answers 503 until its sources are set) -> logs
 * (recovery) -> replica manager -> coordinator (ZooKeeper: register,
 * controller election, metadata) -> API context -> Kafka listeners ->
 * metrics sources -> periodic log work -> run.
 *
 * Controlled shutdown (controlled.shutdown.enable): on the first SIGTERM or
 * SIGINT the loop keeps serving while the controller moves this broker's
 * leadership (coordinator_controlled_shutdown), up to
 * controlled.shutdown.max.retries attempts, each bounded by
 * controlled.shutdown.request.timeout.ms, controlled.shutdown.retry.backoff.ms
 * apart; then the stop below. A second signal skips what remains of it.
 *
 * Stop: close the metrics endpoint (a scrape reads every module's state) ->
 * stop accepting and answer in-flight requests (bounded) -> leave
 * ZooKeeper (ephemeral registration gone at once) -> release what the API
 * layer still holds -> close connections -> stop the disk worker pool (its
 * queued fsyncs, checkpoints and deletions finish) -> flush logs, write
 * checkpoints and the clean-shutdown marker -> exit 0. The coordinator
 * stops before the logs close so that no partition callback can reach a
 * closed log.
 *
 * Exit codes: 0 clean stop or --help, 1 start failed, 2 bad configuration.
 */
#include <assert.h>
#include <ev.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "api.h"
#include "config.h"
#include "coordinator.h"
#include "log_manager.h"
#include "metrics.h"
#include "net.h"
#include "group_coordinator.h"
#include "kafka_errors.h"
#include "producer_ids.h"
#include "replica_manager.h"
#include "txn_coordinator.h"
#include "vlog.h"
#include "wall_clock.h"
#include "worker_pool.h"

#define MAIN_MODULE "broker"
/* Longest wait for in-flight requests at shutdown (long polls, admin). */
#define SHUTDOWN_DRAIN_MS 5000
/* The disk worker pool (fsync, checkpoints, segment deletion): threads, and
 * jobs queued at once (a full queue defers flushes and checkpoints to the
 * next tick; 10,000 partitions each with a flush and a file write in
 * flight fit). */
#define DISK_WORKER_THREADS 2
#define DISK_WORKER_QUEUE   32768
/* After a successful controlled shutdown, how long at most (and how often)
 * the broker waits for its own metadata to show the moves. */
#define SHUTDOWN_SETTLE_MAX_MS  2000
#define SHUTDOWN_SETTLE_POLL_MS 10
/* The periodic log work runs at least this often. */
#define TICK_MAX_MS 1000

/* Every configured listener is registered and bound. */
_Static_assert(BROKER_MAX_LISTENERS <= MD_MAX_ENDPOINTS, "listeners fit a registration");
_Static_assert(BROKER_MAX_LISTENERS <= NET_MAX_LISTENERS, "listeners fit the net server");
_Static_assert(BROKER_LISTENER_NAME_MAX <= MD_LISTENER_NAME_MAX,
               "listener names fit a registration");
_Static_assert(BROKER_HOST_MAX <= MD_HOST_MAX, "hosts fit a registration");

typedef struct broker {
    struct ev_loop *loop;
    broker_config_t cfg;
    log_manager_t *logs;
    worker_pool_t *disk_workers; /* the logs' disk work; stopped before they close */
    replica_manager_t *replicas;
    group_coordinator_t *groups;
    producer_id_manager_t *producer_ids;
    txn_coordinator_t *txns;
    coordinator_t *coord;
    api_context_t api;
    bool api_ready;
    net_server_t *net;
    metrics_t *metrics;                   /* counters the request path updates */
    metrics_endpoint_t *metrics_endpoint; /* NULL: metrics.listener is off */
    ev_timer tick;
    ev_signal sigterm;
    ev_signal sigint;
    int stop_signal;
    /* The controlled shutdown: attempts made, whether one is in flight,
     * whether it is over (the loop is breaking: late answers are ignored),
     * and the wait between attempts. */
    int32_t shutdown_attempts;
    int32_t shutdown_led_before; /* at the first attempt */
    bool shutdown_inflight;
    bool shutdown_over;
    ev_timer shutdown_backoff;
    /* Then the wait for this broker's own metadata: what it may still lead
     * (the controller's answer), until when. */
    int32_t shutdown_remaining;
    double shutdown_settle_since; /* ev_now() */
    ev_timer shutdown_settle;
} broker_t;

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    broker_t *b = w->data;
    assert(b->logs != NULL);
    log_manager_tick(b->logs, wall_clock_ms());
}

/* The controlled shutdown is over (done or given up): stop as before. */
static void shutdown_finish(broker_t *b)
{
    assert(b->stop_signal != 0);
    b->shutdown_over = true;
    ev_timer_stop(b->loop, &b->shutdown_backoff);
    ev_timer_stop(b->loop, &b->shutdown_settle);
    ev_break(b->loop, EVBREAK_ALL);
}

static int32_t partitions_led_here(const broker_t *b)
{
    const cluster_metadata_t *md = coordinator_metadata(b->coord);
    int32_t n = 0;
    for (size_t i = 0; md != NULL && i < md->ntopics; i++)
        for (int32_t p = 0; p < md->topics[i].npartitions; p++)
            n += md->topics[i].partitions[p].leader == b->cfg.broker_id;
    assert(n >= 0);
    return n;
}

/* The controller answers once its own metadata shows the moves; the push
 * that tells this broker may come after the answer. Until it has come,
 * this broker still takes itself for the leader, and a produce request
 * waiting for acks=all on a moved partition would be cut off by the stop
 * (the client cannot tell whether it was written) instead of answered
 * NOT_LEADER_OR_FOLLOWER. So the stop waits for it, a bounded time. */
static void shutdown_settle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    broker_t *b = w->data;
    (void)loop;
    (void)revents;
    assert(!b->shutdown_over);
    int32_t led = partitions_led_here(b);
    int64_t waited_ms = (int64_t)((ev_now(b->loop) - b->shutdown_settle_since) * 1000.0);
    if (led > b->shutdown_remaining && waited_ms < SHUTDOWN_SETTLE_MAX_MS)
        return; /* the repeat timer polls again */
    if (led > b->shutdown_remaining)
        VLOG_WARN(MAIN_MODULE,
                  "controlled shutdown: this broker's metadata still shows %d "
                  "partitions led here after %lld ms; stopping anyway",
                  led, (long long)waited_ms);
    else if (waited_ms >= SHUTDOWN_SETTLE_POLL_MS)
        VLOG_INFO(MAIN_MODULE,
                  "controlled shutdown: this broker's metadata showed the moves %lld ms "
                  "after the answer",
                  (long long)waited_ms);
    shutdown_finish(b);
}

static void shutdown_attempt(broker_t *b);

static void shutdown_answered(void *arg, const coordinator_shutdown_result_t *res)
{
    broker_t *b = arg;
    assert(res != NULL);
    b->shutdown_inflight = false;
    if (b->shutdown_over)
        return; /* a second signal ended it; this is the stop's late answer */
    if (b->shutdown_attempts == 1)
        b->shutdown_led_before = res->led_before;
    const int32_t max = b->cfg.controlled_shutdown_max_retries;
    char why[256];
    if (res->error == KAFKA_NONE && res->remaining_movable == 0) {
        int32_t moved = b->shutdown_led_before - res->remaining;
        VLOG_INFO(MAIN_MODULE, "controlled shutdown: %d partitions moved, %d remain",
                  moved > 0 ? moved : 0, res->remaining);
        /* No longer a follower either: a replica that fetched on would
         * rejoin ISRs the controller just took it out of, and leave them
         * only when the lag runs out after it stops. */
        replica_manager_stop(b->replicas);
        b->shutdown_remaining = res->remaining;
        b->shutdown_settle_since = ev_now(b->loop);
        ev_timer_set(&b->shutdown_settle, 0., SHUTDOWN_SETTLE_POLL_MS / 1000.0);
        ev_timer_start(b->loop, &b->shutdown_settle);
        return;
    }
    if (res->error == KAFKA_NONE)
        snprintf(why, sizeof(why),
                 "%d partitions still led here have no other in-sync replica yet (their other "
                 "replicas are live but out of the ISR)",
                 res->remaining_movable);
    else
        snprintf(why, sizeof(why), "%s (error %d)",
                 res->message ? res->message : kafka_error_name(res->error), res->error);
    if (b->shutdown_attempts >= max) {
        VLOG_WARN(MAIN_MODULE, "controlled shutdown gave up after %d attempts: %s",
                  b->shutdown_attempts, why);
        shutdown_finish(b);
        return;
    }
    VLOG_INFO(MAIN_MODULE, "controlled shutdown attempt %d of %d failed: %s; retrying in %d ms",
              b->shutdown_attempts, max, why, b->cfg.controlled_shutdown_retry_backoff_ms);
    ev_timer_set(&b->shutdown_backoff, b->cfg.controlled_shutdown_retry_backoff_ms / 1000.0, 0.);
    ev_timer_start(b->loop, &b->shutdown_backoff);
}

static void shutdown_attempt(broker_t *b)
{
    assert(!b->shutdown_inflight && !b->shutdown_over);
    assert(b->shutdown_attempts < b->cfg.controlled_shutdown_max_retries);
    b->shutdown_attempts++;
    b->shutdown_inflight = true;
    /* done may run before this returns */
    coordinator_controlled_shutdown(b->coord, b->cfg.controlled_shutdown_request_timeout_ms,
                                    shutdown_answered, b);
}

static void shutdown_backoff_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    broker_t *b = w->data;
    (void)loop;
    (void)revents;
    if (!b->shutdown_over)
        shutdown_attempt(b);
}

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    broker_t *b = w->data;
    if (b->stop_signal != 0) {
        if (!b->shutdown_over)
            VLOG_INFO(MAIN_MODULE, "signal %d again: skipping the rest of the controlled shutdown",
                      w->signum);
        shutdown_finish(b);
        return;
    }
    b->stop_signal = w->signum;
    if (!b->cfg.controlled_shutdown_enable || b->coord == NULL) {
        VLOG_INFO(MAIN_MODULE, "signal %d: shutting down", w->signum);
        shutdown_finish(b);
        return;
    }
    if (b->cfg.controlled_shutdown_max_retries == 0) {
        VLOG_WARN(MAIN_MODULE,
                  "signal %d: controlled shutdown gave up after 0 attempts: "
                  "controlled.shutdown.max.retries is 0",
                  w->signum);
        shutdown_finish(b);
        return;
    }
    VLOG_INFO(MAIN_MODULE, "signal %d: controlled shutdown (a second signal skips it)", w->signum);
    shutdown_attempt(b);
}

/* Every partition replica holds open files (segment, indexes), so the
 * default soft limit of 1024 descriptors ends a broker at a few hundred
 * partitions: take the hard limit, as the soft one is only a default. */
static uint64_t raise_open_file_limit(void)
{
    struct rlimit lim;
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0) {
        VLOG_WARN(MAIN_MODULE, "getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
        return 1024;
    }
    rlim_t soft = lim.rlim_cur;
    if (lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &lim) != 0)
            VLOG_WARN(MAIN_MODULE, "setrlimit(RLIMIT_NOFILE, %llu): %s",
                      (unsigned long long)lim.rlim_max, strerror(errno));
        else
            soft = lim.rlim_cur;
    }
    VLOG_INFO(MAIN_MODULE, "open files: at most %llu (hard limit %llu)", (unsigned long long)soft,
              (unsigned long long)lim.rlim_max);
    return soft == RLIM_INFINITY ? UINT64_MAX : (uint64_t)soft;
}

/* log.max.open.files, or half the open-file limit when 0: segment files
 * never take the descriptors sockets need. */
static void bound_segment_files(const broker_config_t *cfg, uint64_t open_file_limit)
{
    uint64_t max =
        cfg->log_max_open_files > 0 ? (uint64_t)cfg->log_max_open_files : open_file_limit / 2;
    if (max > INT32_MAX)
        max = INT32_MAX;
    if (max < LOG_MIN_OPEN_FILES)
        max = LOG_MIN_OPEN_FILES;
    partition_log_set_max_open_files((size_t)max);
    VLOG_INFO(MAIN_MODULE, "segment files: at most %llu open (log.max.open.files%s)",
              (unsigned long long)max, cfg->log_max_open_files > 0 ? "" : " derived");
}

/* The startup lines, one per listener (a line of vlog holds one listener
 * whatever its host names' lengths): its bound address and what it
 * advertises, the inter-broker one marked. */
static void log_listeners(const broker_t *b)
{
    const broker_config_t *cfg = &b->cfg;
    assert(cfg->nlisteners >= 1 && cfg->nlisteners <= BROKER_MAX_LISTENERS);
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const broker_listener_t *l = &cfg->listeners[i];
        char adv[BROKER_HOST_MAX + 32] = "not advertised";
        if (l->advertised_host != NULL)
            snprintf(adv, sizeof(adv), "advertised %s:%d", l->advertised_host, l->advertised_port);
        VLOG_INFO(MAIN_MODULE, "broker %d serving Kafka listener %s on %s:%d (%s%s)",
                  cfg->broker_id, l->name, l->host[0] ? l->host : "0.0.0.0",
                  net_server_port(b->net, i), adv,
                  i == cfg->inter_broker_listener ? ", inter-broker" : "");
    }
}

/* Starts everything; on failure prints the reason and tears down what did
 * start. Returns 0 or the exit code. */
static int broker_start(broker_t *b)
{
    const broker_config_t *cfg = &b->cfg;
    char err[512];
    /* Views into cfg, for the coordinator (which copies them) and net:
     * every listener is bound, the advertised ones are registered. */
    md_endpoint_t endpoints[BROKER_MAX_LISTENERS];
    net_listener_t listeners[BROKER_MAX_LISTENERS];
    size_t nendpoints = 0, inter_broker_endpoint = SIZE_MAX;
    assert(cfg->nlisteners >= 1 && cfg->nlisteners <= BROKER_MAX_LISTENERS);
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const broker_listener_t *l = &cfg->listeners[i];
        listeners[i] = (net_listener_t){.name = l->name, .host = l->host, .port = l->port};
        if (l->advertised_host == NULL)
            continue;
        if (i == cfg->inter_broker_listener)
            inter_broker_endpoint = nendpoints;
        endpoints[nendpoints++] = (md_endpoint_t){.listener = l->name,
                                                  .host = l->advertised_host,
                                                  .port = l->advertised_port,
                                                  .security_protocol = "PLAINTEXT"};
    }
    assert(inter_broker_endpoint < nendpoints); /* the inter-broker listener is advertised */

    b->metrics = metrics_new();
    if (cfg->metrics_host != NULL) {
        b->metrics_endpoint =
            metrics_endpoint_start(b->loop, cfg->metrics_host, cfg->metrics_port, err, sizeof(err));
        if (b->metrics_endpoint == NULL) {
            VLOG_ERR(MAIN_MODULE, "%s", err);
            return 1;
        }
    }

    log_err_t lerr = log_manager_open(cfg->log_dir, &cfg->log_defaults, &b->logs);
    if (lerr != LOG_OK) {
        VLOG_ERR(MAIN_MODULE, "log.dirs %s: %s", cfg->log_dir, log_err_str(lerr));
        return 1;
    }
    /* After recovery, which stays synchronous: nothing serves before it. */
    b->disk_workers = worker_pool_create(b->loop, DISK_WORKER_THREADS, DISK_WORKER_QUEUE);
    log_manager_set_worker_pool(b->logs, b->disk_workers);
    b->replicas = replica_manager_new(b->loop, cfg, b->logs);

    coordinator_config_t cc = {
        .zk_connect = cfg->zookeeper_connect,
        .zk_session_timeout_ms = cfg->zk_session_timeout_ms,
        .broker_id = cfg->broker_id,
        .endpoints = endpoints,
        .nendpoints = nendpoints,
        .inter_broker_endpoint = inter_broker_endpoint,
        .rpc_host = cfg->rpc_host,
        .rpc_port = cfg->rpc_port,
        .rack = cfg->rack,
        .default_partitions = cfg->num_partitions,
        .default_replication_factor = cfg->default_replication_factor,
        .unclean_leader_election = cfg->unclean_leader_election,
        .auto_leader_rebalance = cfg->auto_leader_rebalance,
        .session_dir = cfg->log_dir, /* locked by log_manager_open above */
        .leader_imbalance_check_interval_s = cfg->leader_imbalance_check_interval_s,
        .leader_imbalance_per_broker_percentage = cfg->leader_imbalance_per_broker_percentage,
    };
    coordinator_callbacks_t cb = replica_manager_callbacks(b->replicas);
    if (coordinator_start(b->loop, &cc, &cb, &b->coord, err, sizeof(err)) != 0) {
        VLOG_ERR(MAIN_MODULE, "could not join the cluster: %s", err);
        b->coord = NULL;
        return 1;
    }
    replica_manager_set_coordinator(b->replicas, b->coord);
    api_context_init(&b->api, b->loop, cfg, b->logs, b->coord, b->replicas);
    b->groups = group_coordinator_new(b->loop, &cfg->groups, b->replicas, b->coord);
    b->api.groups = b->groups;
    b->producer_ids = producer_id_manager_new(b->coord);
    b->api.producer_ids = b->producer_ids;
    b->txns =
        txn_coordinator_new(b->loop, &cfg->txns, b->replicas, b->coord, b->groups, b->producer_ids);
    b->api.txns = b->txns;
    b->api.metrics = b->metrics;
    b->api_ready = true;

    net_config_t nc = {
        .listeners = listeners,
        .nlisteners = cfg->nlisteners,
        .max_request_bytes = cfg->socket_request_max_bytes,
        .max_connections = cfg->max_connections,
        .max_inflight_requests = cfg->queued_max_requests,
        .ctx = &b->api,
        .dispatch = api_dispatch,
        .connection_closed = api_connection_closed,
    };
    b->net = net_server_new(b->loop, &nc, err, sizeof(err));
    if (b->net == NULL) {
        VLOG_ERR(MAIN_MODULE, "%s", err);
        return 1;
    }
    if (b->metrics_endpoint != NULL) {
        metrics_sources_t src = {
            .registry = b->metrics,
            .coord = b->coord,
            .replicas = b->replicas,
            .groups = b->groups,
            .net = b->net,
        };
        metrics_endpoint_set_sources(b->metrics_endpoint, &src);
    }

    int64_t tick_ms = cfg->retention_check_interval_ms;
    if (cfg->flush_scheduler_interval_ms < tick_ms)
        tick_ms = cfg->flush_scheduler_interval_ms;
    if (tick_ms > TICK_MAX_MS)
        tick_ms = TICK_MAX_MS;
    assert(tick_ms >= 1);
    ev_timer_init(&b->tick, tick_cb, (double)tick_ms / 1000.0, (double)tick_ms / 1000.0);
    b->tick.data = b;
    ev_timer_start(b->loop, &b->tick);
    log_listeners(b);
    return 0;
}

/* Takes down whatever broker_start brought up, in the order the header
 * comment gives. */
static void broker_stop(broker_t *b)
{
    metrics_endpoint_stop(b->metrics_endpoint);
    b->metrics_endpoint = NULL;
    if (b->net != NULL) {
        net_server_stop_accepting(b->net);
        net_server_drain(b->net, SHUTDOWN_DRAIN_MS);
    }
    ev_timer_stop(b->loop, &b->tick);
    if (b->replicas != NULL)
        replica_manager_stop(b->replicas); /* needs the coordinator's RPC channel */
    if (b->txns != NULL)
        txn_coordinator_stop(b->txns); /* answers marker writes while the channel exists */
    if (b->producer_ids != NULL) {
        /* Answers the InitProducerId requests still waiting while net can
         * send; a block reservation in flight ends in coordinator_stop. */
        producer_id_manager_free(b->producer_ids);
        b->producer_ids = NULL;
        b->api.producer_ids = NULL;
    }
    if (b->coord != NULL) {
        coordinator_stop(b->coord);
        b->coord = NULL;
    }
    if (b->txns != NULL) {
        /* Answers the transaction requests still waiting while net can
         * send; before the group coordinator, which it calls. */
        txn_coordinator_free(b->txns);
        b->txns = NULL;
        b->api.txns = NULL;
    }
    if (b->groups != NULL) {
        /* Answers the group requests still waiting while net can send. */
        group_coordinator_free(b->groups);
        b->groups = NULL;
        b->api.groups = NULL;
    }
    if (b->api_ready) {
        api_context_destroy(&b->api);
        b->api_ready = false;
    }
    net_server_free(b->net);
    b->net = NULL;
    if (b->replicas != NULL) {
        replica_manager_free(b->replicas);
        b->replicas = NULL;
    }
    if (b->disk_workers != NULL)
        worker_pool_stop(b->disk_workers); /* its completions need the logs */
    if (b->logs != NULL) {
        log_manager_close(b->logs); /* the final flush and checkpoints: inline */
        b->logs = NULL;
    }
    worker_pool_free(b->disk_workers);
    b->disk_workers = NULL;
    /* Last: a request net still held when it was freed reports its latency
     * as its owner completes it. */
    metrics_free(b->metrics);
    b->metrics = NULL;
}

int main(int argc, char **argv)
{
    broker_t b;
    char err[512];

    memset(&b, 0, sizeof(b));
    int rc = broker_config_load(&b.cfg, argc, argv, err, sizeof(err));
    if (rc == 1)
        return 0; /* --help */
    if (rc != 0) {
        fprintf(stderr, "config: %s\n", err);
        return 2;
    }
    vlog_set_level((enum vlog_level)b.cfg.log_level);
    /* A peer that disappears mid-write is an EPIPE error, not a kill. */
    signal(SIGPIPE, SIG_IGN);
    bound_segment_files(&b.cfg, raise_open_file_limit());

    b.loop = ev_default_loop(EVFLAG_AUTO);
    if (b.loop == NULL) {
        fprintf(stderr, "vltava-broker: cannot create the event loop\n");
        broker_config_free(&b.cfg);
        return 1;
    }
    ev_signal_init(&b.sigterm, signal_cb, SIGTERM);
    ev_signal_init(&b.sigint, signal_cb, SIGINT);
    b.sigterm.data = b.sigint.data = &b;
    ev_timer_init(&b.shutdown_backoff, shutdown_backoff_cb, 0., 0.);
    b.shutdown_backoff.data = &b;
    ev_timer_init(&b.shutdown_settle, shutdown_settle_cb, 0., 0.);
    b.shutdown_settle.data = &b;
    ev_signal_start(b.loop, &b.sigterm);
    ev_signal_start(b.loop, &b.sigint);

    int exit_code = broker_start(&b);
    if (exit_code == 0) {
        ev_run(b.loop, 0);
        VLOG_INFO(MAIN_MODULE, "stopping");
    }
    b.shutdown_over = true; /* an attempt still in flight ends in coordinator_stop */
    ev_timer_stop(b.loop, &b.shutdown_backoff);
    ev_timer_stop(b.loop, &b.shutdown_settle);
    broker_stop(&b);
    ev_signal_stop(b.loop, &b.sigterm);
    ev_signal_stop(b.loop, &b.sigint);
    ev_loop_destroy(b.loop);
    if (exit_code == 0)
        VLOG_INFO(MAIN_MODULE, "broker %d stopped cleanly", b.cfg.broker_id);
    broker_config_free(&b.cfg);
    return exit_code;
}
