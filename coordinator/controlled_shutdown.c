/* Controlled shutdown (Kafka's ControlledShutdown, KafkaController
 * .doControlledShutdown): a broker about to stop asks the controller to move
 * the leadership of every partition it leads to another in-sync replica and
 * to take it out of the ISRs it is in, so that no partition waits for its
 * session to expire or for the replica lag to run out.
 *
 * Controller side. The broker joins the shutting-down set; from then on it
 * is never elected (controlled_shutdown_eligible, which controller.c's
 * elections use too) until its registration leaves /brokers/ids or is
 * replaced by a new one (another czxid: a restart). The decision is the
 * controller's usual idempotent one, made on fresh state after every reload
 * (controlled_shutdown_act, from controller_act) and written with
 * controller_write_partition_state (fenced, versioned, leader epoch + 1):
 *  - a partition the broker leads (replication factor > 1): the first
 *    replica in assignment order that is live, in the ISR and not shutting
 *    down leads; the ISR loses the shutting-down brokers;
 *  - a partition whose ISR holds a shutting-down broker it does not lead:
 *    the ISR loses it (the leader epoch moves, so the leader learns it).
 * A pass that finds nothing to write, with no controller write in flight,
 * answers every waiting request: its writes are done and in the cache (the
 * reload that installed them pushed them to the brokers first). The answer
 * lists the partitions the broker still leads (no eligible replica).
 *
 * Broker side: coordinator_controlled_shutdown, one attempt (main.c retries):
 * an RPC to the controller, or the same logic run locally when this broker
 * is the controller.
 *
 * Locality: the loop thread. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord_state.h"
#include "kafka_errors.h"
#include "rpc.h"
#include "rpc.pb-c.h"
#include "vlog.h"
#include "xalloc.h"

#define CS_MODULE "coord"
/* The controller answers a request within this long, whatever happens:
 * the requester has its own, usually shorter, bound and retries. */
#define CS_SERVE_TIMEOUT_MS 60000
/* Requests waiting at once (one per broker: a newer one replaces an older
 * one of the same broker). */
#define CS_MAX_WAITERS 1024
/* Shutting-down brokers remembered at once (they are live brokers). */
#define CS_MAX_MEMBERS 1024
/* Remaining partitions listed in one answer (the count is always right). */
#define CS_MAX_LISTED 100000

/* A broker in the shutting-down set. */
typedef struct cs_member {
    int32_t id;
    int64_t czxid;       /* of its registration when it asked; -1: not read yet */
    bool check_inflight; /* an exists on its registration is in flight */
} cs_member_t;

/* A request waiting for its writes: from another broker over RPC (req),
 * or this broker's own (local_done). */
typedef struct cs_waiter {
    struct cs_waiter *next;
    int32_t broker_id;
    int64_t broker_epoch; /* its registration czxid; 0: unknown */
    int64_t deadline_ms;
    rpc_request_t *req; /* answered exactly once; NULL for a local one */
    coordinator_shutdown_fn local_done;
    void *local_arg;
    int32_t led_before;
} cs_waiter_t;

/* The module's state, allocated on first use, owned by the coordinator
 * (c->shutdown) and freed by controlled_shutdown_free. */
struct controlled_shutdown {
    coordinator_t *c;
    cs_member_t members[CS_MAX_MEMBERS];
    size_t nmembers;
    bool reload_wanted; /* a member was forgotten: decide again (from the timer) */
    cs_waiter_t *waiters;
    size_t nwaiters;
    ev_timer timer; /* the next pass outside a reload, or the earliest deadline */
};

static controlled_shutdown_t *cs_get(coordinator_t *c);
static void cs_arm_timer(controlled_shutdown_t *cs, double after_s);

/* ---- the shutting-down set ---- */

static cs_member_t *cs_member(controlled_shutdown_t *cs, int32_t id)
{
    for (size_t i = 0; i < cs->nmembers; i++)
        if (cs->members[i].id == id)
            return &cs->members[i];
    return NULL;
}

bool controlled_shutdown_leaving(const coordinator_t *c, int32_t id)
{
    if (!c->shutdown)
        return false;
    assert(c->shutdown->c == c);
    return cs_member(c->shutdown, id) != NULL;
}

bool controlled_shutdown_eligible(void *arg, int32_t id)
{
    coordinator_t *c = arg;
    return coord_broker_live(c, id) && !controlled_shutdown_leaving(c, id);
}

bool controlled_shutdown_electable(void *arg, int32_t id)
{
    const offline_replicas_ctx_t *ctx = arg;
    return offline_replicas_live(arg, id) && controlled_shutdown_eligible(ctx->c, id);
}

static void cs_forget(controlled_shutdown_t *cs, int32_t id, const char *why)
{
    cs_member_t *m = cs_member(cs, id);
    assert(m != NULL);
    assert(cs->nmembers > 0);
    VLOG_INFO(CS_MODULE, "broker %d leaves the shutting-down set: %s", id, why);
    *m = cs->members[--cs->nmembers];
    /* It may lead again: the controller decides again on fresh state, from
     * the timer (this may run inside a reload's completion). */
    cs->reload_wanted = true;
    cs_arm_timer(cs, 0.);
}

static void on_registration_stat(coordinator_t *c, zk_call_t *call)
{
    controlled_shutdown_t *cs = c->shutdown;
    assert(cs != NULL);
    cs_member_t *m = cs_member(cs, call->i1);
    if (!m)
        return;
    m->check_inflight = false;
    if (call->rc == ZNONODE) {
        cs_forget(cs, call->i1, "its registration is gone");
    } else if (call->rc == ZOK && m->czxid < 0) {
        m->czxid = call->stat.czxid;
    } else if (call->rc == ZOK && m->czxid != call->stat.czxid) {
        cs_forget(cs, call->i1, "it registered again (restarted)");
    }
}

/* Reads the member's registration, to learn when it is replaced: a broker
 * restarted between two reloads never looks absent. */
static void cs_check_registration(coordinator_t *c, cs_member_t *m)
{
    if (m->check_inflight || !c->zh)
        return;
    char path[64];
    snprintf(path, sizeof(path), "/brokers/ids/%d", m->id);
    zk_call_t *call = zk_call_new(c, on_registration_stat, NULL, path);
    call->i1 = m->id;
    m->check_inflight = true;
    zk_exists(c, call, false);
}

static void cs_join(controlled_shutdown_t *cs, int32_t id, int64_t broker_epoch)
{
    if (cs_member(cs, id))
        return;
    assert(cs->nmembers < CS_MAX_MEMBERS);
    cs_member_t *m = &cs->members[cs->nmembers++];
    m->id = id;
    m->czxid = broker_epoch > 0 ? broker_epoch : -1; /* else the first read sets it */
    m->check_inflight = false;
    VLOG_INFO(CS_MODULE, "broker %d is shutting down: moving its leadership and ISR places", id);
    cs_check_registration(cs->c, m);
}

/* ---- answers ---- */

/* True when p has a replica other than `me` on a live broker: one that may
 * yet be (or become) in sync and take p over. */
static bool cs_movable(const cluster_metadata_t *md, const md_partition_t *p, int32_t me)
{
    for (int32_t i = 0; i < p->nreplicas; i++)
        if (p->replicas[i] != me && cluster_metadata_broker(md, p->replicas[i]))
            return true;
    return false;
}

/* Partitions `id` leads; *movable: of those, the ones cs_movable. */
static int32_t cs_count_led(const cluster_metadata_t *md, int32_t id, int32_t *movable)
{
    int32_t n = 0, nmov = 0;
    for (size_t i = 0; md && i < md->ntopics; i++) {
        for (int32_t p = 0; p < md->topics[i].npartitions; p++) {
            const md_partition_t *mp = &md->topics[i].partitions[p];
            if (mp->leader != id)
                continue;
            n++;
            nmov += cs_movable(md, mp, id);
        }
    }
    if (movable)
        *movable = nmov;
    assert(nmov <= n);
    return n;
}

static void cs_respond_rpc(coordinator_t *c, cs_waiter_t *w, int16_t error)
{
    assert(w->req != NULL);
    Vltava__ControlledShutdownResponse r = VLTAVA__CONTROLLED_SHUTDOWN_RESPONSE__INIT;
    Vltava__RemainingPartition *parts = NULL;
    Vltava__RemainingPartition **ptrs = NULL;
    size_t n = 0;
    if (error == KAFKA_NONE) {
        int32_t led = cs_count_led(c->md, w->broker_id, NULL);
        size_t cap = (size_t)led < CS_MAX_LISTED ? (size_t)led : CS_MAX_LISTED;
        parts = xcalloc(cap + 1, sizeof(*parts));
        ptrs = xcalloc(cap + 1, sizeof(*ptrs));
        for (size_t i = 0; i < c->md->ntopics && n < cap; i++) {
            const md_topic_t *t = &c->md->topics[i];
            /* Not moved, and going away: not worth another attempt (Kafka
             * leaves out topics queued for deletion too). */
            if (controller_topic_being_deleted(c, t->name))
                continue;
            for (int32_t p = 0; p < t->npartitions && n < cap; p++) {
                if (t->partitions[p].leader != w->broker_id)
                    continue;
                vltava__remaining_partition__init(&parts[n]);
                parts[n].topic = t->name;
                parts[n].partition = p;
                ptrs[n] = &parts[n];
                n++;
            }
        }
    }
    r.remaining_partitions = ptrs;
    r.n_remaining_partitions = n;
    size_t len;
    uint8_t *buf = coord_pack_message(&r.base, &len);
    rpc_respond(w->req, error, buf, len);
    free(buf);
    free(ptrs);
    free(parts);
}

/* Answers w (which the caller has unlinked) and frees it. */
static void cs_answer(coordinator_t *c, cs_waiter_t *w, int16_t error, const char *message)
{
    if (w->req) {
        if (error == KAFKA_NONE)
            VLOG_INFO(CS_MODULE, "controlled shutdown of broker %d: it still leads %d partitions",
                      w->broker_id, cs_count_led(c->md, w->broker_id, NULL));
        cs_respond_rpc(c, w, error);
    } else {
        coordinator_shutdown_result_t res = {
            .error = error,
            .message = message,
            .led_before = w->led_before,
        };
        if (error == KAFKA_NONE)
            res.remaining = cs_count_led(c->md, w->broker_id, &res.remaining_movable);
        w->local_done(w->local_arg, &res);
    }
    free(w);
}

/* Answers every waiter matching: all (broker_id < 0) or one broker's. */
static void cs_answer_all(coordinator_t *c, int32_t broker_id, int16_t error, const char *message)
{
    controlled_shutdown_t *cs = c->shutdown;
    cs_waiter_t *done = NULL, **pp = &cs->waiters;
    while (*pp) {
        cs_waiter_t *w = *pp;
        if (broker_id < 0 || w->broker_id == broker_id) {
            *pp = w->next;
            cs->nwaiters--;
            w->next = done;
            done = w;
        } else {
            pp = &w->next;
        }
    }
    /* Answers run once the list is consistent: a local one may start more. */
    while (done) {
        cs_waiter_t *w = done;
        done = w->next;
        cs_answer(c, w, error, message);
    }
}

static void cs_add_waiter(controlled_shutdown_t *cs, cs_waiter_t *w)
{
    /* A broker asking again gave up on its earlier request. */
    cs_answer_all(cs->c, w->broker_id, KAFKA_REQUEST_TIMED_OUT, "superseded by a newer request");
    assert(cs->nwaiters < CS_MAX_WAITERS);
    assert(w->deadline_ms > 0);
    w->next = cs->waiters;
    cs->waiters = w;
    cs->nwaiters++;
    cs_join(cs, w->broker_id, w->broker_epoch);
    /* Decide now rather than at the next reload: nothing may change. */
    cs_arm_timer(cs, 0.);
}

/* ---- the controller's decision ---- */

bool coord_shutdown_next_state(const md_partition_t *p, broker_live_fn live, broker_live_fn leaving,
                               void *arg, int32_t *leader, int32_t *isr, int32_t *nisr)
{
    assert(p->nisr >= 0 && p->nreplicas >= 0);
    const bool leader_leaving = p->leader >= 0 && leaving(arg, p->leader);
    bool isr_has_member = false;
    for (int32_t i = 0; i < p->nisr; i++)
        isr_has_member = isr_has_member || leaving(arg, p->isr[i]);
    /* An offline partition's ISR is the list of who may lead again; a
     * partition whose leader is gone is the usual election's. */
    if (!leader_leaving && (!isr_has_member || p->leader < 0 || !live(arg, p->leader)))
        return false;
    int32_t new_leader = p->leader;
    if (leader_leaving) {
        new_leader = -1;
        for (int32_t i = 0; i < p->nreplicas && new_leader < 0; i++) {
            int32_t r = p->replicas[i];
            if (live(arg, r) && !leaving(arg, r) && coord_contains(p->isr, p->nisr, r))
                new_leader = r;
        }
        if (new_leader < 0)
            return false; /* it keeps leading: listed as remaining */
    }
    int32_t n = 0;
    for (int32_t i = 0; i < p->nisr; i++)
        if (!leaving(arg, p->isr[i]))
            isr[n++] = p->isr[i];
    if (!coord_contains(isr, n, new_leader))
        return false; /* a leader outside its own ISR: left to the usual election */
    assert(new_leader >= 0 && n >= 1 && n <= p->nisr);
    *leader = new_leader;
    *nisr = n;
    return true;
}

static bool cs_leaving(void *arg, int32_t id)
{
    return controlled_shutdown_leaving(arg, id);
}

/* The partition's next state for the shutting-down set; false when it
 * stays as it is. next->isr is xmalloc'd (the caller clears next). */
static bool cs_next_state(coordinator_t *c, const md_partition_t *p, zk_partition_state_t *next)
{
    int32_t *isr = xmalloc((size_t)(p->nisr + 1) * sizeof(int32_t));
    int32_t leader, nisr;
    if (!coord_shutdown_next_state(p, coord_broker_live, cs_leaving, c, &leader, isr, &nisr)) {
        free(isr);
        return false;
    }
    next->leader = leader;
    next->leader_epoch = p->leader_epoch + 1;
    next->controller_epoch = c->my_controller_epoch;
    next->isr = isr;
    next->nisr = nisr;
    return true;
}

/* Writes every partition's next state; returns how many writes it issued. */
static size_t cs_write_states(coordinator_t *c)
{
    size_t writes = 0;
    for (size_t i = 0; i < c->md->ntopics; i++) {
        const md_topic_t *t = &c->md->topics[i];
        if (controller_topic_being_deleted(c, t->name))
            continue;
        const topic_zk_t *z = controller_topic_zk(c, t);
        for (int32_t p = 0; p < t->npartitions; p++) {
            const md_partition_t *mp = &t->partitions[p];
            zk_partition_state_t next;
            if (z->state_version[p] < 0 || !cs_next_state(c, mp, &next))
                continue;
            VLOG_INFO(CS_MODULE,
                      "%s-%d: controlled shutdown: leader %d -> %d, ISR %d -> %d, "
                      "leader epoch %d",
                      t->name, p, mp->leader, next.leader, mp->nisr, next.nisr, next.leader_epoch);
            controller_write_partition_state(c, t, p, &next);
            zk_partition_state_clear(&next);
            writes++;
        }
    }
    return writes;
}

void controlled_shutdown_act(coordinator_t *c)
{
    controlled_shutdown_t *cs = c->shutdown;
    if (!cs || cs->nmembers == 0 || !c->is_controller || !c->md)
        return;
    assert(c->my_controller_epoch >= 0);
    for (size_t i = 0; i < cs->nmembers;) {
        cs_member_t *m = &cs->members[i];
        if (!coord_broker_live(c, m->id)) {
            cs_forget(cs, m->id, "it left /brokers/ids"); /* moves the last into slot i */
            continue;
        }
        cs_check_registration(c, m);
        i++;
    }
    if (c->controller_writes_inflight > 0)
        return; /* their completion reloads and brings us back here */
    if (cs_write_states(c) > 0)
        return; /* answered once they are done and reloaded */
    if (cs->waiters)
        cs_answer_all(c, -1, KAFKA_NONE, NULL);
}

/* The timer: a pass outside a reload (a new request), then the deadlines. */
static void cs_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    controlled_shutdown_t *cs = w->data;
    coordinator_t *c = cs->c;
    if (cs->reload_wanted) {
        cs->reload_wanted = false;
        coord_request_reload(c);
    }
    if (!c->is_controller) {
        cs_answer_all(c, -1, KAFKA_NOT_CONTROLLER, "this broker is no longer the controller");
        return;
    }
    /* Not waiting for a reload in flight: one that ZooKeeper does not
     * answer would hold up even a broker with nothing to move. */
    if (c->controller_writes_inflight == 0)
        controlled_shutdown_act(c);
    const int64_t now = coord_now_ms();
    int64_t next = INT64_MAX;
    cs_waiter_t *expired = NULL, **pp = &cs->waiters;
    while (*pp) {
        cs_waiter_t *x = *pp;
        if (now >= x->deadline_ms) {
            *pp = x->next;
            cs->nwaiters--;
            x->next = expired;
            expired = x;
        } else {
            if (x->deadline_ms < next)
                next = x->deadline_ms;
            pp = &x->next;
        }
    }
    if (next != INT64_MAX)
        cs_arm_timer(cs, (double)(next - now) / 1000.0);
    while (expired) {
        cs_waiter_t *x = expired;
        expired = x->next;
        cs_answer(c, x, KAFKA_REQUEST_TIMED_OUT, "the leadership changes did not complete in time");
    }
}

static void cs_arm_timer(controlled_shutdown_t *cs, double after_s)
{
    assert(after_s >= 0.);
    ev_timer_stop(cs->c->loop, &cs->timer);
    ev_timer_set(&cs->timer, after_s, 0.);
    ev_timer_start(cs->c->loop, &cs->timer);
}

static controlled_shutdown_t *cs_get(coordinator_t *c)
{
    if (!c->shutdown) {
        controlled_shutdown_t *cs = xcalloc(1, sizeof(*cs));
        cs->c = c;
        ev_timer_init(&cs->timer, cs_timer_cb, 0., 0.);
        cs->timer.data = cs;
        c->shutdown = cs;
    }
    assert(c->shutdown->c == c);
    return c->shutdown;
}

void controlled_shutdown_free(coordinator_t *c)
{
    controlled_shutdown_t *cs = c->shutdown;
    if (!cs)
        return;
    assert(c->stopping);
    ev_timer_stop(c->loop, &cs->timer);
    cs_answer_all(c, -1, KAFKA_REQUEST_TIMED_OUT, "the controller is shutting down");
    assert(cs->waiters == NULL && cs->nwaiters == 0);
    free(cs);
    c->shutdown = NULL;
}

/* ---- serving the request (controller) ---- */

void controlled_shutdown_on_request(void *arg, rpc_request_t *req, int32_t sender,
                                    const uint8_t *payload, size_t len)
{
    coordinator_t *c = arg;
    Vltava__ControlledShutdownRequest *m =
        vltava__controlled_shutdown_request__unpack(NULL, len, payload);
    if (!m) {
        VLOG_WARN(CS_MODULE, "undecodable ControlledShutdown from broker %d", sender);
        rpc_respond(req, KAFKA_INVALID_REQUEST, NULL, 0);
        return;
    }
    int32_t id = m->broker_id;
    int64_t epoch = m->broker_epoch;
    vltava__controlled_shutdown_request__free_unpacked(m, NULL);
    controlled_shutdown_t *cs = cs_get(c);
    int16_t error = KAFKA_NONE;
    if (c->stopping || !c->is_controller || !c->md)
        error = KAFKA_NOT_CONTROLLER;
    else if (id != sender || !coord_broker_live(c, id))
        error = KAFKA_BROKER_NOT_AVAILABLE; /* as Kafka answers an unknown broker */
    else if (epoch > 0 && cluster_metadata_broker(c->md, id)->registration_zxid > 0 &&
             epoch != cluster_metadata_broker(c->md, id)->registration_zxid)
        error = KAFKA_STALE_BROKER_EPOCH; /* an earlier process's, or one not read yet */
    else if (cs->nwaiters >= CS_MAX_WAITERS ||
             (!cs_member(cs, id) && cs->nmembers >= CS_MAX_MEMBERS))
        error = KAFKA_REQUEST_TIMED_OUT;
    if (error != KAFKA_NONE) {
        VLOG_INFO(CS_MODULE, "ControlledShutdown from broker %d (for %d) refused: error %d", sender,
                  id, error);
        rpc_respond(req, error, NULL, 0);
        return;
    }
    VLOG_INFO(CS_MODULE, "broker %d asks for a controlled shutdown", id);
    cs_waiter_t *w = xcalloc(1, sizeof(*w));
    w->broker_id = id;
    w->broker_epoch = epoch;
    w->req = req;
    w->deadline_ms = coord_now_ms() + CS_SERVE_TIMEOUT_MS;
    cs_add_waiter(cs, w);
}

/* ---- asking (any broker) ---- */

typedef struct cs_attempt {
    coordinator_shutdown_fn done;
    void *arg;
    int32_t led_before;
    coordinator_t *c;
} cs_attempt_t;

static void on_shutdown_answer(void *arg, rpc_status_t status, int32_t error_code,
                               const uint8_t *payload, size_t len)
{
    cs_attempt_t *a = arg;
    coordinator_shutdown_result_t res = {.led_before = a->led_before};
    char msg[160];
    if (status != RPC_OK) {
        res.error = status == RPC_TIMEOUT ? KAFKA_REQUEST_TIMED_OUT : KAFKA_NOT_CONTROLLER;
        snprintf(msg, sizeof(msg), "the controller %s",
                 status == RPC_TIMEOUT    ? "did not answer in time"
                 : status == RPC_SHUTDOWN ? "was not reached before the broker stopped"
                                          : "could not be reached (connection failed)");
        res.message = msg;
    } else if (error_code != KAFKA_NONE) {
        res.error = (int16_t)error_code;
        snprintf(msg, sizeof(msg), "the controller answered error %d (%s)", error_code,
                 kafka_error_name((int16_t)error_code));
        res.message = msg;
    } else {
        Vltava__ControlledShutdownResponse *r =
            vltava__controlled_shutdown_response__unpack(NULL, len, payload);
        if (!r) {
            res.error = KAFKA_UNKNOWN_SERVER_ERROR;
            res.message = "undecodable answer from the controller";
        } else {
            res.error = KAFKA_NONE;
            res.remaining = (int32_t)r->n_remaining_partitions;
            for (size_t i = 0; i < r->n_remaining_partitions; i++) {
                const Vltava__RemainingPartition *rp = r->remaining_partitions[i];
                const md_topic_t *t =
                    a->c->md ? cluster_metadata_topic(a->c->md, rp->topic, strlen(rp->topic))
                             : NULL;
                /* Unknown here: counted as movable, so that it is tried again. */
                bool movable =
                    !t || rp->partition < 0 || rp->partition >= t->npartitions ||
                    cs_movable(a->c->md, &t->partitions[rp->partition], a->c->cfg.broker_id);
                res.remaining_movable += movable;
                if (i < 8)
                    VLOG_INFO(CS_MODULE, "controlled shutdown: still leading %s-%d%s", rp->topic,
                              rp->partition, movable ? "" : " (no other live replica)");
            }
            vltava__controlled_shutdown_response__free_unpacked(r, NULL);
        }
    }
    a->done(a->arg, &res);
    free(a);
}

/* The local request of the controller itself, bounded by timeout_ms as
 * the RPC would be. */
static void cs_ask_self(coordinator_t *c, int32_t led_before, int32_t timeout_ms,
                        coordinator_shutdown_fn done, void *arg)
{
    controlled_shutdown_t *cs = cs_get(c);
    VLOG_INFO(CS_MODULE, "broker %d is the controller: controlled shutdown runs locally",
              c->cfg.broker_id);
    cs_waiter_t *w = xcalloc(1, sizeof(*w));
    w->broker_id = c->cfg.broker_id;
    const md_broker_t *self = cluster_metadata_broker(c->md, c->cfg.broker_id);
    w->broker_epoch = self ? self->registration_zxid : 0;
    w->local_done = done;
    w->local_arg = arg;
    w->led_before = led_before;
    w->deadline_ms = coord_now_ms() + timeout_ms;
    cs_add_waiter(cs, w);
}

void coordinator_controlled_shutdown(coordinator_t *c, int32_t timeout_ms,
                                     coordinator_shutdown_fn done, void *arg)
{
    assert(done != NULL);
    assert(timeout_ms > 0);
    const int32_t me = c->cfg.broker_id;
    int32_t led_before = cs_count_led(c->md, me, NULL);
    if (c->is_controller && !c->stopping) {
        cs_ask_self(c, led_before, timeout_ms, done, arg);
        return;
    }
    coordinator_shutdown_result_t res = {.error = KAFKA_NOT_CONTROLLER, .led_before = led_before};
    int32_t controller = c->md ? c->md->controller_id : -1;
    if (!c->rpc || controller < 0 || controller == me ||
        !cluster_metadata_broker(c->md, controller)) {
        res.message = "no controller is known";
        done(arg, &res);
        return;
    }
    Vltava__ControlledShutdownRequest m = VLTAVA__CONTROLLED_SHUTDOWN_REQUEST__INIT;
    m.broker_id = me;
    const md_broker_t *self = cluster_metadata_broker(c->md, me);
    m.broker_epoch = self ? self->registration_zxid : 0;
    size_t len;
    uint8_t *buf = coord_pack_message(&m.base, &len);
    cs_attempt_t *a = xcalloc(1, sizeof(*a));
    a->done = done;
    a->arg = arg;
    a->led_before = led_before;
    a->c = c;
    VLOG_INFO(CS_MODULE, "asking controller %d for a controlled shutdown (%d partitions led here)",
              controller, led_before);
    int rc = rpc_send(c->rpc, controller, VLTAVA__RPC_TYPE__RPC_CONTROLLED_SHUTDOWN, buf, len,
                      timeout_ms, on_shutdown_answer, a);
    free(buf);
    if (rc != 0) {
        free(a);
        res.message = "the request to the controller was refused by the RPC layer";
        done(arg, &res);
    }
}
