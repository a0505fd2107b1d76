/* The metrics endpoint: libmicrohttpd (MHD) parses HTTP, inside the
 * broker's libev loop.
 *
 * MHD runs with MHD_USE_EPOLL and no thread of its own: it keeps every
 * socket in its own epoll set, whose fd an ev_io watches; MHD_run() does
 * whatever is ready without blocking, and MHD_get_timeout() says when it
 * must run again even if no socket stirs (a connection's idle timeout, or
 * work it left for the next round), which an ev_timer keeps. The request
 * handler therefore runs on the loop thread and reads the broker's state
 * directly. A wakeup's work is bounded by the connection limit and by the
 * rendering, which happens at most once per METRICS_HTTP_REUSE_MS: the
 * rendered text is one MHD response, reference-counted by MHD, that every
 * request in that window shares. So a flood of scrapes costs the Kafka
 * listeners little time and bounded memory.
 *
 * Answers: GET or HEAD /metrics 200 (503 until the broker has set the
 * sources: the endpoint binds before the broker joins the cluster, so
 * that a bad metrics.listener stops the start before that); another path
 * 404; another method 405
 * (with Allow); a request that announces a body (Content-Length above 0,
 * or Transfer-Encoding) 413 and the connection closed before the body is
 * read. Request line and headers must fit in METRICS_HTTP_MEMORY_BYTES
 * (MHD answers larger ones itself and closes). */
#include <assert.h>
#include <ev.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "metrics_internal.h"
#include "vlog.h"
#include "xalloc.h"

struct metrics_endpoint {
    struct ev_loop *loop;
    struct MHD_Daemon *daemon;
    metrics_sources_t src; /* registry NULL until metrics_endpoint_set_sources */
    int32_t port;
    ev_io epoll_watcher; /* MHD's epoll fd */
    ev_timer timer;      /* MHD_get_timeout */
    ev_timer retry;      /* resumes epoll_watcher after a wakeup that could do nothing */
    /* The last rendering: our reference (MHD holds its own per request
     * using it); NULL before the first scrape. */
    struct MHD_Response *scrape;
    int64_t scrape_at_ns;
    struct MHD_Response *not_found, *not_allowed, *too_large, *starting; /* static texts */
    char *start_error; /* while starting: MHD's first complaint */
};

static const char not_found_text[] = "Not found: the metrics are at /metrics\n";
static const char not_allowed_text[] = "Method not allowed: use GET or HEAD\n";
static const char too_large_text[] = "A metrics request carries no body\n";
static const char starting_text[] = "The broker is starting: no metrics yet\n";

/* MHD's messages: the first one while starting (the reason a start
 * fails), debug lines afterwards (a client's bad request is not the
 * broker's problem). */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    metrics_endpoint_t *ep = cls;
    char msg[256];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    if (ep->daemon == NULL && ep->start_error == NULL)
        ep->start_error = xstrdup(msg);
    VLOG_DEBUG(METRICS_MODULE, "http: %s", msg);
}

/* ---- requests ---- */

static bool request_has_body(struct MHD_Connection *conn)
{
    const char *length =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (length != NULL && strspn(length, "0 \t") != strlen(length))
        return true;
    return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING) !=
           NULL;
}

/* The rendering to answer with now: the last one while it is fresh. */
static struct MHD_Response *current_scrape(metrics_endpoint_t *ep)
{
    int64_t now = metrics_clock_ns();
    if (ep->scrape != NULL && now - ep->scrape_at_ns < (int64_t)METRICS_HTTP_REUSE_MS * 1000000)
        return ep->scrape;
    size_t len;
    char *text = metrics_render(&ep->src, &len);
    /* MHD frees text with free() once the last request using it is done. */
    struct MHD_Response *r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        free(text);
        return NULL;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, METRICS_CONTENT_TYPE);
    if (ep->scrape != NULL)
        MHD_destroy_response(ep->scrape); /* ours; requests still sending it keep theirs */
    ep->scrape = r;
    ep->scrape_at_ns = now;
    return r;
}

/* Every request is answered at its first call, when its headers are in:
 * nothing here ever reads a body. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    metrics_endpoint_t *ep = cls;
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)con_cls;
    if (strcmp(url, "/metrics") != 0)
        return MHD_queue_response(conn, MHD_HTTP_NOT_FOUND, ep->not_found);
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return MHD_queue_response(conn, MHD_HTTP_METHOD_NOT_ALLOWED, ep->not_allowed);
    if (request_has_body(conn))
        return MHD_queue_response(conn, MHD_HTTP_CONTENT_TOO_LARGE, ep->too_large);
    if (ep->src.registry == NULL)
        return MHD_queue_response(conn, MHD_HTTP_SERVICE_UNAVAILABLE, ep->starting);
    struct MHD_Response *r = current_scrape(ep);
    if (r == NULL)
        return MHD_NO; /* MHD closes the connection */
    return MHD_queue_response(conn, MHD_HTTP_OK, r);
}

/* ---- the loop glue ---- */

static unsigned int open_connections(const metrics_endpoint_t *ep)
{
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(ep->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    return info != NULL ? info->num_connections : 0;
}

/* MHD takes its listening socket out of its epoll set at the connection
 * limit and puts it back only at the start of a run, and MHD_get_timeout()
 * does not ask for that run: after a run that closed connections, the
 * connections queued meanwhile would wait for an event that never comes.
 * So a run that changed the number of connections is followed by another;
 * each needs the one before to have changed something. When every run of
 * the bound changed it, the next wakeup is due at once (a timer at 0), as
 * the last run may have left the listener out of the set. */
#define METRICS_HTTP_RUNS_PER_WAKEUP 8
/* The pause after a wakeup that could do nothing, as net.c pauses its
 * accepts. */
#define METRICS_HTTP_RETRY_S 0.1

static bool epoll_fd_ready(const metrics_endpoint_t *ep)
{
    struct pollfd pfd = {.fd = ep->epoll_watcher.fd, .events = POLLIN};
    return poll(&pfd, 1, 0) > 0;
}

static void run_mhd(metrics_endpoint_t *ep)
{
    unsigned int before = open_connections(ep);
    bool settled = false, idle = false;
    for (int run = 0; run < METRICS_HTTP_RUNS_PER_WAKEUP && !settled; run++) {
        MHD_run(ep->daemon);
        unsigned int after = open_connections(ep);
        assert(after <= METRICS_HTTP_CONNECTIONS);
        settled = after == before;
        idle = settled && run == 0;
        before = after;
    }
    ev_timer_stop(ep->loop, &ep->timer);
    /* A wakeup that changed nothing and left the epoll fd readable is one
     * that will come back at once: MHD keeps its listening socket in its
     * (level-triggered) set when accept fails for want of descriptors with
     * no connection open, so every loop iteration would wake it for
     * nothing. Pause instead. The rule also catches a run that only
     * refused connections (the per-address limit) with more waiting, or
     * data that arrived during the run: a pause delays them, nothing is
     * lost. */
    if (idle && epoll_fd_ready(ep)) {
        ev_io_stop(ep->loop, &ep->epoll_watcher);
        ev_timer_set(&ep->retry, METRICS_HTTP_RETRY_S, 0.);
        ev_timer_start(ep->loop, &ep->retry);
        return;
    }
    MHD_UNSIGNED_LONG_LONG ms = 0;
    if (!settled || MHD_get_timeout(ep->daemon, &ms) == MHD_YES) {
        ev_timer_set(&ep->timer, settled ? (double)ms / 1000.0 : 0., 0.);
        ev_timer_start(ep->loop, &ep->timer);
    }
}

static void on_epoll(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    run_mhd(w->data);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    run_mhd(w->data);
}

static void on_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    metrics_endpoint_t *ep = w->data;
    assert(!ev_is_active(&ep->epoll_watcher));
    ev_io_start(loop, &ep->epoll_watcher);
    run_mhd(ep);
}

/* ---- start and stop ---- */

static struct MHD_Response *static_response(const char *text, const char *allow)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    if (r == NULL)
        xalloc_oom(sizeof(struct MHD_Response *)); /* MHD's allocation failed */
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    if (allow != NULL)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    return r;
}

/* host:port as written in a URL and in messages: an IPv6 literal in
 * brackets, an empty host as 0.0.0.0. */
static void format_host_port(char *buf, size_t size, const char *host, int32_t port)
{
    if (host == NULL || host[0] == '\0')
        host = "0.0.0.0";
    bool ipv6 = strchr(host, ':') != NULL;
    snprintf(buf, size, "%s%s%s:%d", ipv6 ? "[" : "", host, ipv6 ? "]" : "", port);
}

/* host:port as a socket address, by the Kafka listener's rule: an empty
 * host or 0.0.0.0 is every IPv4 address, a name binds its IPv4 address
 * unless it is an IPv6 literal. */
static bool resolve(const char *host, int32_t port, struct sockaddr_storage *ss, char *err,
                    size_t err_size)
{
    char service[16];
    snprintf(service, sizeof(service), "%d", port);
    bool any = host == NULL || host[0] == '\0' || strcmp(host, "0.0.0.0") == 0;
    struct addrinfo hints = {.ai_family = !any && strchr(host, ':') != NULL ? AF_INET6 : AF_INET,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(any ? NULL : host, service, &hints, &res);
    if (rc != 0) {
        char where[300];
        format_host_port(where, sizeof(where), host, port);
        snprintf(err, err_size, "metrics.listener %s: %s", where, gai_strerror(rc));
        return false;
    }
    assert(res->ai_addrlen <= sizeof(*ss));
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return true;
}

metrics_endpoint_t *metrics_endpoint_start(struct ev_loop *loop, const char *host, int32_t port,
                                           char *err, size_t err_size)
{
    assert(loop != NULL);
    assert(port >= 0 && port <= 65535);
    struct sockaddr_storage ss;
    if (!resolve(host, port, &ss, err, err_size))
        return NULL;

    metrics_endpoint_t *ep = xcalloc(1, sizeof(*ep));
    ep->loop = loop;
    unsigned int flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* The logger first: MHD logs the options after it with it. */
    ep->daemon = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_request, ep, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, ep,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned int)METRICS_HTTP_CONNECTIONS, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned int)METRICS_HTTP_CONNECTIONS_PER_IP, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)METRICS_HTTP_IDLE_TIMEOUT_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)METRICS_HTTP_MEMORY_BYTES, MHD_OPTION_LISTEN_BACKLOG_SIZE,
        (unsigned int)METRICS_HTTP_BACKLOG,
        /* main ignores SIGPIPE: MHD need not guard its writes. */
        MHD_OPTION_SIGPIPE_HANDLED_BY_APP, (int)1, MHD_OPTION_END);
    if (ep->daemon == NULL) {
        char where[300];
        format_host_port(where, sizeof(where), host, port);
        snprintf(err, err_size, "metrics.listener %s: %s", where,
                 ep->start_error ? ep->start_error : "cannot start the HTTP server");
        free(ep->start_error);
        free(ep);
        return NULL;
    }
    free(ep->start_error);
    ep->start_error = NULL;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(ep->daemon, MHD_DAEMON_INFO_BIND_PORT);
    ep->port = info != NULL ? info->port : port;
    info = MHD_get_daemon_info(ep->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    assert(info != NULL && info->epoll_fd >= 0);
    ep->not_found = static_response(not_found_text, NULL);
    ep->not_allowed = static_response(not_allowed_text, "GET, HEAD");
    ep->too_large = static_response(too_large_text, NULL);
    ep->starting = static_response(starting_text, NULL);

    ev_io_init(&ep->epoll_watcher, on_epoll, info->epoll_fd, EV_READ);
    ep->epoll_watcher.data = ep;
    ev_io_start(loop, &ep->epoll_watcher);
    ev_timer_init(&ep->timer, on_timer, 0., 0.);
    ep->timer.data = ep;
    ev_timer_init(&ep->retry, on_retry, 0., 0.);
    ep->retry.data = ep;
    run_mhd(ep);
    char where[300];
    format_host_port(where, sizeof(where), host, ep->port);
    VLOG_INFO(METRICS_MODULE, "serving metrics on http://%s/metrics", where);
    return ep;
}

void metrics_endpoint_set_sources(metrics_endpoint_t *ep, const metrics_sources_t *src)
{
    assert(ep != NULL && ep->src.registry == NULL);
    assert(src != NULL && src->registry != NULL && src->coord != NULL && src->replicas != NULL);
    ep->src = *src;
}

int32_t metrics_endpoint_port(const metrics_endpoint_t *ep)
{
    return ep->port;
}

void metrics_endpoint_stop(metrics_endpoint_t *ep)
{
    if (ep == NULL)
        return;
    ev_io_stop(ep->loop, &ep->epoll_watcher);
    ev_timer_stop(ep->loop, &ep->timer);
    ev_timer_stop(ep->loop, &ep->retry);
    MHD_stop_daemon(ep->daemon); /* closes the connections; drops their references */
    if (ep->scrape != NULL)
        MHD_destroy_response(ep->scrape);
    MHD_destroy_response(ep->not_found);
    MHD_destroy_response(ep->not_allowed);
    MHD_destroy_response(ep->too_large);
    MHD_destroy_response(ep->starting);
    free(ep);
}
