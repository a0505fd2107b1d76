/* The bridge between ZooKeeper's client threads and the broker's loop.
 *
 * ZooKeeper (libzookeeper-mt) runs watchers and completions on its own
 * threads. Here they only copy what they were given into a zk_call_t or a
 * zk_watch_event_t, append it to a queue under `mu` and wake the loop with
 * ev_async; zk_drain() then runs the continuation on the loop thread. The
 * only exception is start-up, when coordinator_start() blocks the loop
 * thread and pumps the same queue itself (zk_pump_until). */
#include <assert.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zookeeper/proto.h>

#include "coord_state.h"
#include "vlog.h"
#include "xalloc.h"

/* Work done per wakeup of the loop; the rest waits for the next one. */
#define ZK_DRAIN_MAX 1024

typedef struct zh_context {
    coordinator_t *c;
    uint64_t session_gen;
} zh_context_t;

int64_t coord_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- ZooKeeper's threads ---- */

/* When a connection attempt to ZooKeeper was last refused (coord_now_ms()),
 * 0: never. Process-wide: the library's log callback has no context. */
static _Atomic int64_t zk_refused_ms;
static char zk_refused_needle[64];

static void zk_refused_text(void)
{
    snprintf(zk_refused_needle, sizeof(zk_refused_needle), "errno=%d(%s)", ECONNREFUSED,
             strerror(ECONNREFUSED));
}

int64_t zk_last_refused_ms(void)
{
    return atomic_load(&zk_refused_ms);
}

/* The client library retries a refused connection every few tens of
 * milliseconds and logs each attempt; let one line a second through.
 * Refusals are noted first: the library reports them only here, as
 * errno=<n>(<strerror text>). */
static void zk_client_log(const char *message)
{
    static _Atomic int64_t last_ms;
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, zk_refused_text);
    int64_t now = coord_now_ms();
    if (strstr(message, zk_refused_needle))
        atomic_store(&zk_refused_ms, now);
    int64_t prev = last_ms;
    if (now - prev < 1000 || !atomic_compare_exchange_strong(&last_ms, &prev, now))
        return;
    VLOG_WARN("zookeeper", "%s", message);
}

/* Under mu. */
static void untrack(coordinator_t *c, zk_call_t *call)
{
    if (!call->tracked)
        return;
    if (call->track_prev)
        call->track_prev->track_next = call->track_next;
    else
        c->inflight = call->track_next;
    if (call->track_next)
        call->track_next->track_prev = call->track_prev;
    call->track_prev = call->track_next = NULL;
    call->tracked = false;
}

/* Under mu. */
static void append_call(coordinator_t *c, zk_call_t *call)
{
    untrack(c, call);
    call->next = NULL;
    if (c->calls_tail)
        c->calls_tail->next = call;
    else
        c->calls_head = call;
    c->calls_tail = call;
}

static void enqueue_call(zk_call_t *call)
{
    coordinator_t *c = call->c;
    pthread_mutex_lock(&c->mu);
    append_call(c, call);
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->mu);
    ev_async_send(c->loop, &c->wake);
}

static void watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
    zh_context_t *zc = ctx;
    coordinator_t *c = zc->c;
    zk_watch_event_t *ev = xcalloc(1, sizeof(*ev));
    ev->session_gen = zc->session_gen;
    ev->type = type;
    ev->state = state;
    ev->path = xstrdup(path ? path : "");
    pthread_mutex_lock(&c->mu);
    if (type == ZOO_SESSION_EVENT && zc->session_gen == c->session_gen)
        c->session_state = state;
    if (c->events_tail)
        c->events_tail->next = ev;
    else
        c->events_head = ev;
    c->events_tail = ev;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->mu);
    ev_async_send(c->loop, &c->wake);
}

static void on_data(int rc, const char *value, int value_len, const struct Stat *stat,
                    const void *data)
{
    zk_call_t *call = (zk_call_t *)data;
    call->rc = rc;
    if (rc == ZOK && value && value_len > 0) {
        call->data = xmalloc((size_t)value_len);
        memcpy(call->data, value, (size_t)value_len);
        call->data_len = value_len;
    }
    if (rc == ZOK && stat)
        call->stat = *stat;
    enqueue_call(call);
}

static void on_stat(int rc, const struct Stat *stat, const void *data)
{
    zk_call_t *call = (zk_call_t *)data;
    call->rc = rc;
    if (rc == ZOK && stat)
        call->stat = *stat;
    enqueue_call(call);
}

static void on_strings(int rc, const struct String_vector *strings, const void *data)
{
    zk_call_t *call = (zk_call_t *)data;
    call->rc = rc;
    if (rc == ZOK && strings && strings->count > 0) {
        call->children = xcalloc((size_t)strings->count, sizeof(char *));
        for (int i = 0; i < strings->count; i++)
            call->children[i] = xstrdup(strings->data[i]);
        call->nchildren = strings->count;
    }
    enqueue_call(call);
}

static void on_string(int rc, const char *value, const void *data)
{
    (void)value;
    zk_call_t *call = (zk_call_t *)data;
    call->rc = rc;
    enqueue_call(call);
}

static void on_void(int rc, const void *data)
{
    zk_call_t *call = (zk_call_t *)data;
    call->rc = rc;
    enqueue_call(call);
}

/* ---- the loop thread ---- */

static void call_free(zk_call_t *call)
{
    free(call->path);
    free(call->data);
    for (int i = 0; i < call->nchildren; i++)
        free(call->children[i]);
    free(call->children);
    for (int i = 0; i < call->nbufs; i++)
        free(call->bufs[i]);
    free(call->bufs);
    free(call->ops);
    free(call->results);
    free(call->stats);
    free(call);
}

static void run_call(coordinator_t *c, zk_call_t *call)
{
    if (call->done && (!c->stopping || call->always_complete))
        call->done(c, call);
    call_free(call);
}

void zk_drain(coordinator_t *c)
{
    pthread_mutex_lock(&c->mu);
    zk_watch_event_t *events = c->events_head;
    c->events_head = c->events_tail = NULL;
    pthread_mutex_unlock(&c->mu);
    while (events) {
        zk_watch_event_t *ev = events;
        events = ev->next;
        if (!c->stopping)
            coord_on_watch(c, ev);
        free(ev->path);
        free(ev);
    }
    for (int n = 0; n < ZK_DRAIN_MAX; n++) {
        pthread_mutex_lock(&c->mu);
        zk_call_t *call = c->calls_head;
        if (call) {
            c->calls_head = call->next;
            if (!c->calls_head)
                c->calls_tail = NULL;
        }
        pthread_mutex_unlock(&c->mu);
        if (!call)
            return;
        run_call(c, call);
    }
    /* More than a wakeup's worth: come back after others had their turn. */
    ev_async_send(c->loop, &c->wake);
}

static void on_wake(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)loop;
    (void)revents;
    zk_drain(w->data);
}

int zk_bridge_init(coordinator_t *c)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cond, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&c->mu, NULL);
    ev_async_init(&c->wake, on_wake);
    c->wake.data = c;
    ev_async_start(c->loop, &c->wake);
    /* The ZooKeeper client logs to stderr at its own levels; keep it to
     * errors so our log stays readable. */
    zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
    return 0;
}

void zk_bridge_destroy(coordinator_t *c)
{
    assert(c->zh == NULL);
    c->stopping = true;
    /* ZooKeeper's threads are gone: the queue only shrinks now. Calls are
     * freed, their continuations skipped except for admin requests, which
     * still answer their callers. */
    for (;;) {
        pthread_mutex_lock(&c->mu);
        bool empty = !c->calls_head && !c->events_head;
        pthread_mutex_unlock(&c->mu);
        if (empty)
            break;
        zk_drain(c);
    }
    ev_async_stop(c->loop, &c->wake);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->mu);
}

int zk_open_session(coordinator_t *c, const char *connect)
{
    assert(c->zh == NULL);
    zh_context_t *zc = xcalloc(1, sizeof(*zc));
    pthread_mutex_lock(&c->mu);
    c->session_gen++;
    c->session_state = ZOO_CONNECTING_STATE;
    zc->c = c;
    zc->session_gen = c->session_gen;
    pthread_mutex_unlock(&c->mu);
    c->zh_ctx = zc;
    c->zh =
        zookeeper_init2(connect, watcher, c->cfg.zk_session_timeout_ms, NULL, zc, 0, zk_client_log);
    if (!c->zh) {
        VLOG_ERR("coord", "zookeeper_init(%s) failed: %s", connect, strerror(errno));
        free(zc);
        c->zh_ctx = NULL;
        return -1;
    }
    return 0;
}

void zk_close_session(coordinator_t *c)
{
    if (!c->zh)
        return;
    /* Closing runs pending completions (ZCLOSING) on ZooKeeper's threads,
     * which queue them; they are run or freed by the next drain. */
    zookeeper_close(c->zh);
    c->zh = NULL;
    pthread_mutex_lock(&c->mu);
    c->session_gen++; /* late events of the old handle are now stale */
    /* ZooKeeper's threads are gone: calls it never completed never will.
     * They complete now with ZCLOSING, so every call ends exactly once. */
    while (c->inflight) {
        zk_call_t *call = c->inflight;
        call->rc = ZCLOSING;
        append_call(c, call);
    }
    pthread_mutex_unlock(&c->mu);
    free(c->zh_ctx);
    c->zh_ctx = NULL;
}

int zk_session_state(const coordinator_t *c)
{
    /* Taking the lock changes no state of the coordinator's: the cast only
     * lets a reader lock it. */
    pthread_mutex_t *mu = (pthread_mutex_t *)&c->mu;
    pthread_mutex_lock(mu);
    int state = c->session_state;
    pthread_mutex_unlock(mu);
    return state;
}

static void deadline_to_timespec(int64_t deadline_ms, struct timespec *ts)
{
    ts->tv_sec = deadline_ms / 1000;
    ts->tv_nsec = (deadline_ms % 1000) * 1000000;
}

bool zk_wait_connected(coordinator_t *c, int64_t deadline_ms)
{
    struct timespec ts;
    deadline_to_timespec(deadline_ms, &ts);
    pthread_mutex_lock(&c->mu);
    while (c->session_state != ZOO_CONNECTED_STATE && coord_now_ms() < deadline_ms)
        pthread_cond_timedwait(&c->cond, &c->mu, &ts);
    bool ok = c->session_state == ZOO_CONNECTED_STATE;
    pthread_mutex_unlock(&c->mu);
    return ok;
}

void zk_pump_until(coordinator_t *c, const bool *flag, int64_t deadline_ms)
{
    struct timespec ts;
    deadline_to_timespec(deadline_ms, &ts);
    while (!*flag && coord_now_ms() < deadline_ms) {
        pthread_mutex_lock(&c->mu);
        while (!c->calls_head && !c->events_head && coord_now_ms() < deadline_ms)
            pthread_cond_timedwait(&c->cond, &c->mu, &ts);
        pthread_mutex_unlock(&c->mu);
        zk_drain(c);
    }
}

zk_call_t *zk_call_new(coordinator_t *c, zk_done_fn done, void *arg, const char *path)
{
    zk_call_t *call = xcalloc(1, sizeof(*call));
    call->c = c;
    call->session_gen = c->session_gen;
    call->done = done;
    call->arg = arg;
    call->path = path ? xstrdup(path) : NULL;
    return call;
}

/* A call ZooKeeper refused at once (no session, bad state) completes with
 * that error through the same queue, so callers have one path. */
static void submitted(zk_call_t *call, int rc)
{
    if (rc == ZOK)
        return;
    call->rc = rc;
    enqueue_call(call);
}

/* Records the call as handed to ZooKeeper (before it is: its completion
 * may run at once); returns the handle, or NULL when there is none. */
static zhandle_t *handle(coordinator_t *c, zk_call_t *call)
{
    if (!c->zh)
        return NULL;
    pthread_mutex_lock(&c->mu);
    assert(!call->tracked);
    call->tracked = true;
    call->track_prev = NULL;
    call->track_next = c->inflight;
    if (c->inflight)
        c->inflight->track_prev = call;
    c->inflight = call;
    pthread_mutex_unlock(&c->mu);
    return c->zh;
}

void zk_get(coordinator_t *c, zk_call_t *call, bool watch)
{
    assert(call->path);
    submitted(call,
              handle(c, call) ? zoo_aget(c->zh, call->path, watch, on_data, call) : ZINVALIDSTATE);
}

void zk_exists(coordinator_t *c, zk_call_t *call, bool watch)
{
    assert(call->path);
    submitted(call, handle(c, call) ? zoo_aexists(c->zh, call->path, watch, on_stat, call)
                                    : ZINVALIDSTATE);
}

void zk_children(coordinator_t *c, zk_call_t *call, bool watch)
{
    assert(call->path);
    submitted(call, handle(c, call) ? zoo_aget_children(c->zh, call->path, watch, on_strings, call)
                                    : ZINVALIDSTATE);
}

void zk_create(coordinator_t *c, zk_call_t *call, const uint8_t *data, size_t len, int flags)
{
    assert(call->path && len <= COORD_MAX_ZNODE_BYTES);
    submitted(call, handle(c, call) ? zoo_acreate(c->zh, call->path, (const char *)data, (int)len,
                                                  &ZOO_OPEN_ACL_UNSAFE, flags, on_string, call)
                                    : ZINVALIDSTATE);
}

void zk_delete(coordinator_t *c, zk_call_t *call, int version)
{
    assert(call->path);
    submitted(call, handle(c, call) ? zoo_adelete(c->zh, call->path, version, on_void, call)
                                    : ZINVALIDSTATE);
}

/* A copy owned by the call, NUL-terminated (paths need it; payloads carry
 * their length). */
static char *keep(zk_call_t *call, const void *data, size_t len)
{
    char *copy = xmalloc(len + 1);
    if (len)
        memcpy(copy, data, len);
    copy[len] = '\0';
    call->bufs = xrealloc(call->bufs, (size_t)(call->nbufs + 1) * sizeof(char *));
    call->bufs[call->nbufs++] = copy;
    return copy;
}

static zoo_op_t *next_op(zk_call_t *call)
{
    call->ops = xrealloc(call->ops, (size_t)(call->nops + 1) * sizeof(zoo_op_t));
    zoo_op_t *op = &call->ops[call->nops++];
    memset(op, 0, sizeof(*op));
    return op;
}

void zk_multi_check(zk_call_t *call, const char *path, int version)
{
    zoo_check_op_init(next_op(call), keep(call, path, strlen(path)), version);
}

void zk_multi_create(zk_call_t *call, const char *path, const uint8_t *data, size_t len, int flags)
{
    assert(len <= COORD_MAX_ZNODE_BYTES);
    const char *p = keep(call, path, strlen(path));
    const char *d = keep(call, data, len);
    zoo_create_op_init(next_op(call), p, d, (int)len, &ZOO_OPEN_ACL_UNSAFE, flags, NULL, 0);
}

void zk_multi_set(zk_call_t *call, const char *path, const uint8_t *data, size_t len, int version)
{
    assert(len <= COORD_MAX_ZNODE_BYTES);
    const char *p = keep(call, path, strlen(path));
    const char *d = keep(call, data, len);
    /* The Stat pointer is set at submit, once the array stops moving. */
    zoo_set_op_init(next_op(call), p, d, (int)len, version, NULL);
}

void zk_multi_delete(zk_call_t *call, const char *path, int version)
{
    zoo_delete_op_init(next_op(call), keep(call, path, strlen(path)), version);
}

void zk_multi_submit(coordinator_t *c, zk_call_t *call)
{
    assert(call->nops > 0);
    call->results = xcalloc((size_t)call->nops, sizeof(zoo_op_result_t));
    call->stats = xcalloc((size_t)call->nops, sizeof(struct Stat));
    for (int i = 0; i < call->nops; i++)
        if (call->ops[i].type == ZOO_SETDATA_OP)
            call->ops[i].set_op.stat = &call->stats[i];
    /* libzookeeper's zoo_amulti frees a sub-request's path again when the
     * handle is unrecoverable (an expired session: state < 0), because its
     * request structs keep the previous op's freed pointer when their init
     * fails; with a chroot that is a double free (seen under ASan after a
     * SIGSTOPped broker's session expired). Such a handle only answers
     * ZINVALIDSTATE anyway, so it is not called then. The state can still
     * turn between this check and the call, on the client's I/O thread;
     * the window is that of one function call. */
    bool usable = c->zh != NULL && zoo_state(c->zh) >= 0;
    submitted(call, usable && handle(c, call)
                        ? zoo_amulti(c->zh, call->nops, call->ops, call->results, on_void, call)
                        : ZINVALIDSTATE);
}

int zk_multi_failed_op(const zk_call_t *call)
{
    if (call->rc == ZOK || !call->results)
        return -1;
    for (int i = 0; i < call->nops; i++)
        if (call->results[i].err != ZOK && call->results[i].err != ZRUNTIMEINCONSISTENCY)
            return i;
    return -1;
}
