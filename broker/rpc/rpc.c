/* Inter-broker RPC: see rpc.h for the contract.
 *
 * One connection type serves both directions' mechanics (buffers, framing,
 * libev watcher); a connection is either a client connection owned by a
 * peer (sends requests, reads responses) or a server connection accepted
 * by the listener (reads requests, sends responses). Connections are
 * reference-counted only so that a request being served, or a callback
 * running while its connection closes, never sees freed memory. */
#include "rpc.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "rpc.pb-c.h"
#include "vlog.h"
#include "xalloc.h"

#define RPC_MAX_TYPES             64
#define RPC_FRAME_HEADER          4
#define RPC_ENVELOPE_OVERHEAD     64 /* envelope fields around the payload, generously */
#define RPC_READ_CHUNK            65536
#define RPC_FRAMES_PER_WAKEUP     64 /* bound on frames handled per read event */
#define RPC_SWEEP_INTERVAL_S      0.05
#define RPC_MAX_SERVER_CONNS      1024
#define KAFKA_UNSUPPORTED_VERSION 35

typedef struct byte_buf {
    uint8_t *data;
    size_t len; /* bytes held */
    size_t off; /* bytes already consumed (written out, or parsed) */
    size_t cap;
} byte_buf_t;

typedef struct peer peer_t;

typedef struct conn {
    rpc_t *rpc;
    int fd;
    ev_io io;
    int events;
    byte_buf_t in;
    byte_buf_t out;
    int refs; /* the owner's, plus one per request being served / read in progress */
    bool closed;
    bool connecting;
    peer_t *peer;      /* client connection: its peer; NULL: server connection */
    struct conn *next; /* server connections list */
    char name[64];
} conn_t;

typedef struct pending {
    struct pending *next;
    uint64_t id;
    rpc_response_fn cb;
    void *arg;
    int64_t deadline_ms;
} pending_t;

struct peer {
    int32_t id;
    char *host;
    int32_t port;
    bool removed;
    conn_t *conn;       /* NULL: not connected */
    pending_t *pending; /* sent or waiting in backlog, oldest first */
    pending_t **pending_tail;
    uint32_t npending;
    byte_buf_t backlog; /* frames waiting for the connection */
    int32_t backoff_ms;
    int64_t next_attempt_ms;
    ev_timer connect_timer;
    rpc_t *rpc;
};

struct rpc_request {
    conn_t *conn; /* holds a reference */
    uint64_t id;
    uint32_t type;
};

typedef struct handler {
    rpc_handler_fn fn;
    void *arg;
} handler_t;

struct rpc {
    struct ev_loop *loop;
    rpc_config_t cfg;
    int listen_fd;
    int32_t listen_port;
    ev_io accept_io;
    ev_timer sweep;
    peer_t **peers;
    size_t npeers;
    conn_t *server_conns;
    size_t nserver_conns;
    uint64_t next_id;
    handler_t handlers[RPC_MAX_TYPES];
    bool stopping;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- buffers ---- */

static void buf_reserve(byte_buf_t *b, size_t extra)
{
    if (b->off > 0 && b->off == b->len) {
        b->off = b->len = 0;
    }
    if (b->len + extra <= b->cap)
        return;
    if (b->off > 0) { /* compact before growing */
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        if (b->len + extra <= b->cap)
            return;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra)
        cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

static void buf_append(byte_buf_t *b, const uint8_t *data, size_t len)
{
    buf_reserve(b, len);
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

static void buf_free(byte_buf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

/* An envelope framed for the wire, appended to out. */
static void frame_append(byte_buf_t *out, const Vltava__RpcEnvelope *env)
{
    size_t size = vltava__rpc_envelope__get_packed_size(env);
    assert(size <= UINT32_MAX);
    buf_reserve(out, RPC_FRAME_HEADER + size);
    uint32_t be = htonl((uint32_t)size);
    memcpy(out->data + out->len, &be, RPC_FRAME_HEADER);
    size_t packed = vltava__rpc_envelope__pack(env, out->data + out->len + RPC_FRAME_HEADER);
    if (packed != size)
        abort(); /* protobuf-c broke its own size contract */
    out->len += RPC_FRAME_HEADER + size;
}

/* ---- connections ---- */

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents);

static void conn_watch(conn_t *c)
{
    if (c->closed)
        return;
    /* Backpressure: a peer that does not read its answers is not read
     * from until they drain, so its output stays bounded. */
    size_t unsent = c->out.len - c->out.off;
    int events = unsent > 2 * (size_t)c->rpc->cfg.max_frame_bytes ? 0 : EV_READ;
    if (c->connecting || unsent > 0)
        events |= EV_WRITE;
    if (c->connecting)
        events = EV_WRITE;
    if (events == c->events && ev_is_active(&c->io))
        return;
    ev_io_stop(c->rpc->loop, &c->io);
    ev_io_set(&c->io, c->fd, events);
    ev_io_start(c->rpc->loop, &c->io);
    c->events = events;
}

static conn_t *conn_new(rpc_t *rpc, int fd, peer_t *peer)
{
    conn_t *c = xcalloc(1, sizeof(*c));
    c->rpc = rpc;
    c->fd = fd;
    c->peer = peer;
    c->refs = 1;
    ev_io_init(&c->io, conn_io_cb, fd, EV_READ);
    c->io.data = c;
    return c;
}

static void conn_release(conn_t *c)
{
    assert(c->refs > 0);
    if (--c->refs > 0)
        return;
    assert(c->closed);
    buf_free(&c->in);
    buf_free(&c->out);
    free(c);
}

/* Stops the connection; the memory goes with the last reference. */
static void conn_shut(conn_t *c)
{
    if (c->closed)
        return;
    c->closed = true;
    ev_io_stop(c->rpc->loop, &c->io);
    close(c->fd);
    c->fd = -1;
}

static void peer_fail_all(peer_t *p, rpc_status_t status)
{
    pending_t *list = p->pending;
    p->pending = NULL;
    p->pending_tail = &p->pending;
    p->npending = 0;
    p->backlog.len = p->backlog.off = 0;
    /* Callbacks run on a detached list: they may send again. */
    while (list) {
        pending_t *pd = list;
        list = pd->next;
        pd->cb(pd->arg, status, 0, NULL, 0);
        free(pd);
    }
}

static void peer_schedule_connect(peer_t *p);

/* The peer's connection failed or closed: every request on it fails, and
 * the next attempt waits out a growing backoff. */
static void peer_conn_lost(peer_t *p, const char *why)
{
    conn_t *c = p->conn;
    if (!c)
        return;
    p->conn = NULL;
    conn_shut(c);
    conn_release(c);
    int32_t max = p->rpc->cfg.reconnect_backoff_max_ms;
    p->next_attempt_ms = now_ms() + p->backoff_ms;
    VLOG_DEBUG("rpc", "connection to broker %d (%s:%d) lost: %s; next attempt in %d ms", p->id,
               p->host, p->port, why, p->backoff_ms);
    p->backoff_ms = p->backoff_ms * 2 > max ? max : p->backoff_ms * 2;
    peer_fail_all(p, RPC_DISCONNECTED);
}

static void server_conn_remove(rpc_t *rpc, conn_t *c)
{
    for (conn_t **pp = &rpc->server_conns; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            rpc->nserver_conns--;
            break;
        }
    }
    conn_shut(c);
    conn_release(c);
}

static void conn_fail(conn_t *c, const char *why)
{
    if (c->peer)
        peer_conn_lost(c->peer, why);
    else {
        VLOG_DEBUG("rpc", "closing %s: %s", c->name, why);
        server_conn_remove(c->rpc, c);
    }
}

/* Unlinks the request at *pp (a link of p->pending) and returns it. */
static pending_t *peer_unlink_pending(peer_t *p, pending_t **pp)
{
    pending_t *pd = *pp;
    assert(pd && p->npending > 0);
    *pp = pd->next;
    if (p->pending_tail == &pd->next)
        p->pending_tail = pp;
    p->npending--;
    pd->next = NULL;
    return pd;
}

static pending_t *peer_take_pending(peer_t *p, uint64_t id)
{
    for (pending_t **pp = &p->pending; *pp; pp = &(*pp)->next)
        if ((*pp)->id == id)
            return peer_unlink_pending(p, pp);
    return NULL;
}

static void serve_request(conn_t *c, const Vltava__RpcEnvelope *env)
{
    rpc_t *rpc = c->rpc;
    rpc_request_t *req = xcalloc(1, sizeof(*req));
    req->conn = c;
    req->id = env->request_id;
    req->type = (uint32_t)env->type;
    c->refs++;
    const handler_t *h = req->type < RPC_MAX_TYPES ? &rpc->handlers[req->type] : NULL;
    if (!h || !h->fn) {
        VLOG_WARN("rpc", "%s: request type %u has no handler", c->name, req->type);
        rpc_respond(req, KAFKA_UNSUPPORTED_VERSION, NULL, 0);
        return;
    }
    h->fn(h->arg, req, env->sender_id, env->payload.data, env->payload.len);
}

/* Handles one decoded frame. */
static void conn_frame(conn_t *c, const uint8_t *data, size_t len)
{
    Vltava__RpcEnvelope *env = vltava__rpc_envelope__unpack(NULL, len, data);
    if (!env) {
        conn_fail(c, "undecodable frame");
        return;
    }
    if (env->is_response) {
        if (!c->peer) {
            conn_fail(c, "a response on a server connection");
        } else {
            pending_t *pd = peer_take_pending(c->peer, env->request_id);
            if (pd) { /* else: it timed out already */
                pd->cb(pd->arg, RPC_OK, env->error_code, env->payload.data, env->payload.len);
                free(pd);
            }
        }
    } else if (c->peer) {
        conn_fail(c, "a request on a client connection");
    } else {
        serve_request(c, env);
    }
    vltava__rpc_envelope__free_unpacked(env, NULL);
}

static bool frame_complete(const byte_buf_t *in)
{
    size_t avail = in->len - in->off;
    if (avail < RPC_FRAME_HEADER)
        return false;
    uint32_t be;
    memcpy(&be, in->data + in->off, RPC_FRAME_HEADER);
    return avail >= RPC_FRAME_HEADER + (size_t)ntohl(be);
}

static void conn_read(conn_t *c)
{
    const uint32_t max = c->rpc->cfg.max_frame_bytes;
    for (;;) {
        buf_reserve(&c->in, RPC_READ_CHUNK);
        ssize_t n = read(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len);
        if (n == 0) {
            conn_fail(c, "closed by the peer");
            return;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                conn_fail(c, strerror(errno));
            break;
        }
        c->in.len += (size_t)n;
        if ((size_t)n < RPC_READ_CHUNK)
            break;
        /* Bound the memory a fast sender can make us hold: stop reading
         * once a few frames' worth is buffered. */
        if (c->in.len - c->in.off > (size_t)RPC_FRAMES_PER_WAKEUP * RPC_READ_CHUNK)
            break;
    }
    c->refs++; /* callbacks below may close c */
    for (int frames = 0; frames < RPC_FRAMES_PER_WAKEUP && !c->closed; frames++) {
        size_t avail = c->in.len - c->in.off;
        if (avail < RPC_FRAME_HEADER)
            break;
        uint32_t be;
        memcpy(&be, c->in.data + c->in.off, RPC_FRAME_HEADER);
        uint32_t size = ntohl(be);
        if (size > max) {
            char why[96];
            snprintf(why, sizeof(why), "frame of %u bytes exceeds the %u byte limit", size, max);
            VLOG_WARN("rpc", "%s: %s", c->name, why);
            conn_fail(c, why);
            break;
        }
        if (avail < RPC_FRAME_HEADER + (size_t)size)
            break;
        const uint8_t *frame = c->in.data + c->in.off + RPC_FRAME_HEADER;
        c->in.off += RPC_FRAME_HEADER + (size_t)size;
        conn_frame(c, frame, size);
    }
    /* Whole frames left over (the per-wakeup bound was reached) are handled
     * next turn; a partial frame waits for the socket. */
    bool more = !c->closed && frame_complete(&c->in);
    if (!c->closed)
        conn_watch(c);
    if (more)
        ev_feed_event(c->rpc->loop, &c->io, EV_READ); /* the rest next turn */
    conn_release(c);
}

static void conn_flush(conn_t *c)
{
    while (!c->closed && c->out.off < c->out.len) {
        ssize_t n = send(c->fd, c->out.data + c->out.off, c->out.len - c->out.off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                conn_fail(c, strerror(errno));
            break;
        }
        c->out.off += (size_t)n;
    }
    if (!c->closed && c->out.off == c->out.len)
        c->out.off = c->out.len = 0;
    if (!c->closed)
        conn_watch(c);
}

static void conn_connected(conn_t *c)
{
    peer_t *p = c->peer;
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
        conn_fail(c, strerror(soerr ? soerr : errno));
        return;
    }
    c->connecting = false;
    p->backoff_ms = p->rpc->cfg.reconnect_backoff_ms;
    VLOG_DEBUG("rpc", "connected to broker %d (%s:%d)", p->id, p->host, p->port);
    if (p->backlog.len > p->backlog.off) {
        buf_append(&c->out, p->backlog.data + p->backlog.off, p->backlog.len - p->backlog.off);
        p->backlog.len = p->backlog.off = 0;
    }
    conn_flush(c);
}

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    conn_t *c = w->data;
    c->refs++; /* c may close (and lose its owner's reference) below */
    if (c->connecting) {
        conn_connected(c);
    } else {
        if (revents & EV_READ)
            conn_read(c);
        if (!c->closed && (revents & EV_WRITE))
            conn_flush(c);
    }
    conn_release(c);
}

/* ---- client side ---- */

static void peer_connect_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    peer_t *p = w->data;
    if (p->conn || p->removed || p->npending == 0)
        return;
    char service[16];
    snprintf(service, sizeof(service), "%d", p->port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    int rc = getaddrinfo(p->host, service, &hints, &ai);
    int fd = -1;
    if (rc == 0 && ai)
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        if (ai)
            freeaddrinfo(ai);
        VLOG_WARN("rpc", "cannot reach broker %d at %s:%d: %s", p->id, p->host, p->port,
                  rc ? gai_strerror(rc) : strerror(errno));
        p->next_attempt_ms = now_ms() + p->backoff_ms;
        peer_fail_all(p, RPC_DISCONNECTED);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    conn_t *c = conn_new(p->rpc, fd, p);
    snprintf(c->name, sizeof(c->name), "broker %d", p->id);
    p->conn = c;
    c->connecting = true;
    if (rc != 0 && errno != EINPROGRESS) {
        conn_fail(c, strerror(errno));
        return;
    }
    conn_watch(c);
}

static void peer_schedule_connect(peer_t *p)
{
    if (p->conn || ev_is_active(&p->connect_timer))
        return;
    int64_t wait = p->next_attempt_ms - now_ms();
    ev_timer_set(&p->connect_timer, wait > 0 ? (double)wait / 1000.0 : 0., 0.);
    ev_timer_start(p->rpc->loop, &p->connect_timer);
}

static peer_t *find_peer(const rpc_t *rpc, int32_t id)
{
    for (size_t i = 0; i < rpc->npeers; i++)
        if (rpc->peers[i]->id == id)
            return rpc->peers[i];
    return NULL;
}

void rpc_set_peer(rpc_t *rpc, int32_t id, const char *host, int32_t port)
{
    assert(host && port > 0);
    peer_t *p = find_peer(rpc, id);
    if (!p) {
        p = xcalloc(1, sizeof(*p));
        p->id = id;
        p->rpc = rpc;
        p->pending_tail = &p->pending;
        p->backoff_ms = rpc->cfg.reconnect_backoff_ms;
        ev_timer_init(&p->connect_timer, peer_connect_cb, 0., 0.);
        p->connect_timer.data = p;
        rpc->peers = xrealloc(rpc->peers, (rpc->npeers + 1) * sizeof(*rpc->peers));
        rpc->peers[rpc->npeers++] = p;
    } else if (!p->removed && p->port == port && strcmp(p->host, host) == 0) {
        return;
    } else {
        peer_conn_lost(p, "its address changed");
        free(p->host);
        p->backoff_ms = rpc->cfg.reconnect_backoff_ms;
        p->next_attempt_ms = 0;
    }
    p->removed = false;
    p->host = xstrdup(host);
    p->port = port;
    assert(p->npending == 0 || p->conn == NULL || !p->removed);
}

void rpc_remove_peer(rpc_t *rpc, int32_t id)
{
    peer_t *p = find_peer(rpc, id);
    if (!p || p->removed)
        return;
    /* The struct stays (peers are few and may return); only its use ends. */
    p->removed = true;
    ev_timer_stop(rpc->loop, &p->connect_timer);
    if (p->conn)
        peer_conn_lost(p, "peer removed");
    else
        peer_fail_all(p, RPC_DISCONNECTED);
}

int rpc_send(rpc_t *rpc, int32_t peer_id, uint32_t type, const uint8_t *payload, size_t len,
             int32_t timeout_ms, rpc_response_fn cb, void *arg)
{
    assert(cb);
    assert(payload || len == 0);
    peer_t *p = find_peer(rpc, peer_id);
    if (rpc->stopping || !p || p->removed)
        return -1;
    if (len + RPC_ENVELOPE_OVERHEAD > rpc->cfg.max_frame_bytes)
        return -1;
    if (p->npending >= rpc->cfg.max_inflight_per_peer)
        return -1;
    pending_t *pd = xcalloc(1, sizeof(*pd));
    pd->id = ++rpc->next_id;
    pd->cb = cb;
    pd->arg = arg;
    pd->deadline_ms = now_ms() + (timeout_ms > 0 ? timeout_ms : 30000);
    *p->pending_tail = pd;
    p->pending_tail = &pd->next;
    p->npending++;

    Vltava__RpcEnvelope env = VLTAVA__RPC_ENVELOPE__INIT;
    env.request_id = pd->id;
    env.type = (Vltava__RpcType)type;
    env.sender_id = rpc->cfg.self_id;
    env.payload.data = (uint8_t *)payload;
    env.payload.len = len;
    if (p->conn && !p->conn->connecting) {
        frame_append(&p->conn->out, &env);
        conn_watch(p->conn); /* written when writable: never inside this call */
    } else {
        frame_append(&p->backlog, &env);
        peer_schedule_connect(p);
    }
    return 0;
}

/* True when the connection cannot carry anything now: still connecting,
 * or TCP retransmitting data the peer has not acknowledged (a peer that
 * only holds a request back acknowledges it). */
static bool conn_stalled(const conn_t *c)
{
    if (c->connecting)
        return true;
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    if (getsockopt(c->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
        return false;
    return ti.tcpi_retransmits > 0;
}

/* Times out requests past their deadline. A timed-out request's
 * connection stays while it works (a slow answer must not cost the others
 * theirs), but one that is stalled (conn_stalled) is closed: after a
 * network partition heals, TCP resends on such a connection only at its
 * next retransmission timeout, which has doubled all through the
 * partition (14 s of no replication seen after a 14 s partition in the
 * fault suite), while a new connection is up at once. */
static void sweep_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    rpc_t *rpc = w->data;
    const int64_t now = now_ms();
    for (size_t i = 0; i < rpc->npeers; i++) {
        peer_t *p = rpc->peers[i];
        pending_t *expired = NULL, **tail = &expired;
        for (pending_t **pp = &p->pending; *pp;) {
            pending_t *pd = *pp;
            if (pd->deadline_ms > now) {
                pp = &pd->next;
                continue;
            }
            *tail = peer_unlink_pending(p, pp);
            tail = &pd->next;
        }
        /* Before the callbacks, so that their retries go to a new
         * connection; the requests still pending fail as disconnected. */
        if (expired && p->conn && conn_stalled(p->conn))
            peer_conn_lost(p, "stalled past a request's timeout");
        while (expired) {
            pending_t *pd = expired;
            expired = pd->next;
            pd->cb(pd->arg, RPC_TIMEOUT, 0, NULL, 0);
            free(pd);
        }
    }
}

/* ---- server side ---- */

void rpc_set_handler(rpc_t *rpc, uint32_t type, rpc_handler_fn fn, void *arg)
{
    assert(type < RPC_MAX_TYPES);
    rpc->handlers[type].fn = fn;
    rpc->handlers[type].arg = arg;
}

void rpc_respond(rpc_request_t *req, int32_t error_code, const uint8_t *payload, size_t len)
{
    conn_t *c = req->conn;
    assert(c->refs > 0);
    assert(payload || len == 0);
    if (!c->closed) {
        Vltava__RpcEnvelope env = VLTAVA__RPC_ENVELOPE__INIT;
        env.request_id = req->id;
        env.type = (Vltava__RpcType)req->type;
        env.is_response = 1;
        env.error_code = error_code;
        env.sender_id = c->rpc->cfg.self_id;
        env.payload.data = (uint8_t *)payload;
        env.payload.len = len;
        frame_append(&c->out, &env);
        conn_flush(c);
    }
    conn_release(c);
    free(req);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    rpc_t *rpc = w->data;
    for (int i = 0; i < 16; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(rpc->listen_fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        if (rpc->nserver_conns >= RPC_MAX_SERVER_CONNS) {
            VLOG_WARN("rpc", "refusing a connection: %d already open", RPC_MAX_SERVER_CONNS);
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        conn_t *c = conn_new(rpc, fd, NULL);
        char host[INET6_ADDRSTRLEN] = "?";
        int port = 0;
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
            port = ntohs(sin->sin_port);
        }
        snprintf(c->name, sizeof(c->name), "rpc peer %s:%d", host, port);
        c->next = rpc->server_conns;
        rpc->server_conns = c;
        rpc->nserver_conns++;
        conn_watch(c);
    }
}

static int listen_on(rpc_t *rpc, const char *host, int32_t port, char *err, size_t err_size)
{
    char service[16];
    snprintf(service, sizeof(service), "%d", port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai = NULL;
    int rc = getaddrinfo(host, service, &hints, &ai);
    if (rc != 0 || !ai) {
        snprintf(err, err_size, "replication.listener %s:%d: %s", host, port, gai_strerror(rc));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 128) != 0) {
        snprintf(err, err_size, "replication.listener %s:%d: %s", host, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    rpc->listen_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                      : ((struct sockaddr_in *)&ss)->sin_port);
    rpc->listen_fd = fd;
    ev_io_init(&rpc->accept_io, accept_cb, fd, EV_READ);
    rpc->accept_io.data = rpc;
    ev_io_start(rpc->loop, &rpc->accept_io);
    return 0;
}

rpc_t *rpc_new(struct ev_loop *loop, const rpc_config_t *cfg, char *err, size_t err_size)
{
    assert(loop && cfg);
    rpc_t *rpc = xcalloc(1, sizeof(*rpc));
    rpc->loop = loop;
    rpc->cfg = *cfg;
    rpc->cfg.host = NULL; /* not kept */
    if (!rpc->cfg.max_frame_bytes)
        rpc->cfg.max_frame_bytes = 64u << 20;
    if (!rpc->cfg.max_inflight_per_peer)
        rpc->cfg.max_inflight_per_peer = 64;
    if (rpc->cfg.reconnect_backoff_ms <= 0)
        rpc->cfg.reconnect_backoff_ms = 100;
    if (rpc->cfg.reconnect_backoff_max_ms <= 0)
        rpc->cfg.reconnect_backoff_max_ms = 5000;
    rpc->listen_fd = -1;
    if (cfg->host && listen_on(rpc, cfg->host, cfg->port, err, err_size) != 0) {
        free(rpc);
        return NULL;
    }
    ev_timer_init(&rpc->sweep, sweep_cb, RPC_SWEEP_INTERVAL_S, RPC_SWEEP_INTERVAL_S);
    rpc->sweep.data = rpc;
    ev_timer_start(loop, &rpc->sweep);
    return rpc;
}

int32_t rpc_listen_port(const rpc_t *rpc)
{
    return rpc->listen_port;
}

void rpc_free(rpc_t *rpc)
{
    if (!rpc)
        return;
    rpc->stopping = true;
    ev_timer_stop(rpc->loop, &rpc->sweep);
    if (rpc->listen_fd >= 0) {
        ev_io_stop(rpc->loop, &rpc->accept_io);
        close(rpc->listen_fd);
    }
    for (size_t i = 0; i < rpc->npeers; i++) {
        peer_t *p = rpc->peers[i];
        ev_timer_stop(rpc->loop, &p->connect_timer);
        if (p->conn) {
            conn_t *c = p->conn;
            p->conn = NULL;
            conn_shut(c);
            conn_release(c);
        }
        peer_fail_all(p, RPC_SHUTDOWN);
        buf_free(&p->backlog);
        free(p->host);
        free(p);
    }
    free(rpc->peers);
    while (rpc->server_conns) {
        conn_t *c = rpc->server_conns;
        rpc->server_conns = c->next;
        conn_shut(c);
        /* Requests still being served hold references; per the contract
         * none outlive rpc_free, so the owner's reference is the last. */
        c->refs = 1;
        conn_release(c);
    }
    free(rpc);
}
