/* The controller: election, and every write the controller makes to
 * ZooKeeper (topic creation and deletion, partition addition, leader
 * election on broker loss and return).
 *
 * Fencing: each controller write is one multi-op whose first op checks the
 * version of /controller_epoch that this controller's election produced. A
 * deposed controller (another won and bumped the epoch) fails that check
 * and writes nothing. Partition state writes also carry the state znode's
 * version, so a decision made on a stale read fails and is made again after
 * the next reload. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord_state.h"
#include "kafka_errors.h"
#include "partition_log.h"
#include "vlog.h"
#include "xalloc.h"
#include "wall_clock.h"
#include "topic_name.h"

#define ADMIN_TIMEOUT_MS 30000

typedef enum { WAIT_TOPIC_PRESENT, WAIT_TOPIC_GONE } wait_kind_t;

/* An admin request: first the argument of its ZooKeeper write; once that
 * succeeded, in c->waiters until this broker's cache shows the result (so
 * that the client's next Metadata, sent to us, agrees with the answer). */
struct admin_waiter {
    admin_waiter_t *next;
    wait_kind_t kind;
    char *name;
    uint8_t topic_id[16];
    int32_t npartitions;
    int64_t deadline_ms; /* set when it starts waiting */
    coordinator_done_fn done;
    void *arg;
};

static admin_waiter_t *admin_waiter_new(wait_kind_t kind, const char *name, const uint8_t id[16],
                                        int32_t npartitions, coordinator_done_fn done, void *arg)
{
    admin_waiter_t *w = xcalloc(1, sizeof(*w));
    w->kind = kind;
    w->name = xstrdup(name);
    memcpy(w->topic_id, id, 16);
    w->npartitions = npartitions;
    w->done = done;
    w->arg = arg;
    return w;
}

static void admin_waiter_free(admin_waiter_t *w)
{
    free(w->name);
    free(w);
}

/* The write succeeded: w waits for the metadata (c->waiters owns it). */
static void start_waiting(coordinator_t *c, admin_waiter_t *w)
{
    w->deadline_ms = coord_now_ms() + ADMIN_TIMEOUT_MS;
    w->next = c->waiters;
    c->waiters = w;
}

static bool waiter_satisfied(const coordinator_t *c, const admin_waiter_t *w)
{
    const md_topic_t *t = cluster_metadata_topic(c->md, w->name, strlen(w->name));
    bool same = t && memcmp(t->id, w->topic_id, 16) == 0;
    if (w->kind == WAIT_TOPIC_GONE)
        return !same;
    if (!same || t->npartitions < w->npartitions)
        return false;
    return true;
}

void controller_check_waiters(coordinator_t *c, bool stopping)
{
    admin_waiter_t *finished = NULL, **pp = &c->waiters;
    const int64_t now = coord_now_ms();
    while (*pp) {
        admin_waiter_t *w = *pp;
        bool ok = !stopping && c->md && waiter_satisfied(c, w);
        if (ok || stopping || now >= w->deadline_ms) {
            *pp = w->next;
            w->npartitions = ok ? 0 : -1; /* reused as the outcome */
            w->next = finished;
            finished = w;
        } else {
            pp = &w->next;
        }
    }
    /* Callbacks run after the list is consistent: they may add waiters. */
    while (finished) {
        admin_waiter_t *w = finished;
        finished = w->next;
        if (w->npartitions == 0)
            w->done(w->arg, KAFKA_NONE, NULL);
        else
            w->done(w->arg, KAFKA_REQUEST_TIMED_OUT,
                    stopping ? "the broker is shutting down"
                             : "timed out waiting for the change to reach the metadata");
        admin_waiter_free(w);
    }
    reassign_check_waiters(c, stopping);
    leader_election_check(c, stopping);
}

/* ---- election ---- */

void controller_resign(coordinator_t *c, const char *why)
{
    if (!c->is_controller)
        return;
    VLOG_WARN("coord", "broker %d is no longer the controller (epoch %d): %s", c->cfg.broker_id,
              c->my_controller_epoch, why);
    c->is_controller = false;
    c->my_controller_epoch = -1;
    c->my_epoch_version = -1;
    c->push_full = false;
    coord_push_clear(c);
}

static void on_election(coordinator_t *c, zk_call_t *call)
{
    c->electing = false;
    if (call->rc == ZOK && call->session_gen == c->session_gen) {
        c->is_controller = true;
        c->my_controller_epoch = call->i1;
        c->my_epoch_version = call->stats[1].version;
        if (call->i1 > c->controller_epoch_seen)
            c->controller_epoch_seen = call->i1;
        c->push_pending = true;
        c->push_full = true; /* a new controller tells every broker everything once */
        VLOG_INFO("coord", "broker %d is now the controller (controller epoch %d)",
                  c->cfg.broker_id, c->my_controller_epoch);
    } else {
        int op = zk_multi_failed_op(call);
        VLOG_DEBUG("coord", "election lost (%s at op %d)", zerror(call->rc), op);
    }
    /* The cache is current but for what the election changed (/controller
     * and /controller_epoch, which every reload reads): a new controller
     * decides on it at once, without re-reading every partition. A
     * decision on a stale entry is refused by its version check and made
     * again after a full reload. */
    coord_request_partial_reload(c);
}

static void on_epoch_created(coordinator_t *c, zk_call_t *call)
{
    c->electing = false;
    if (call->rc != ZOK && call->rc != ZNODEEXISTS)
        VLOG_WARN("coord", "creating /controller_epoch: %s", zerror(call->rc));
    coord_request_partial_reload(c);
}

static void start_election(coordinator_t *c)
{
    if (c->electing || !c->registered)
        return;
    c->electing = true;
    if (c->zk_controller_epoch < 0) {
        /* First controller of this cluster: the epoch znode comes first. */
        size_t len;
        uint8_t *buf = znode_encode_controller_epoch(0, &len);
        zk_create(c, zk_call_new(c, on_epoch_created, NULL, "/controller_epoch"), buf, len,
                  ZOO_PERSISTENT);
        free(buf);
        return;
    }
    int32_t epoch = c->zk_controller_epoch + 1;
    VLOG_INFO("coord", "broker %d runs for controller (epoch %d)", c->cfg.broker_id, epoch);
    zk_call_t *call = zk_call_new(c, on_election, NULL, NULL);
    call->i1 = epoch;
    size_t len;
    uint8_t *buf = znode_encode_controller(c->cfg.broker_id, wall_clock_ms(), &len);
    zk_multi_create(call, "/controller", buf, len, ZOO_EPHEMERAL);
    free(buf);
    buf = znode_encode_controller_epoch(epoch, &len);
    zk_multi_set(call, "/controller_epoch", buf, len, c->zk_controller_epoch_version);
    free(buf);
    zk_multi_submit(c, call);
}

/* ---- fenced writes ---- */

zk_call_t *controller_fenced_call(coordinator_t *c, zk_done_fn done, void *arg)
{
    assert(c->is_controller && c->my_epoch_version >= 0);
    zk_call_t *call = zk_call_new(c, done, arg, NULL);
    zk_multi_check(call, "/controller_epoch", c->my_epoch_version);
    return call;
}

/* True when a fenced multi failed on its epoch check: we were deposed. */
static bool fenced_out(coordinator_t *c, const zk_call_t *call)
{
    if (call->rc == ZOK || zk_multi_failed_op(call) != 0)
        return false;
    controller_resign(c, "the controller epoch moved on (another broker was elected)");
    return true;
}

static void on_controller_write(coordinator_t *c, zk_call_t *call)
{
    assert(c->controller_writes_inflight > 0);
    c->controller_writes_inflight--;
    if (call->rc != ZOK && !fenced_out(c, call)) {
        int op = zk_multi_failed_op(call);
        VLOG_INFO("coord", "controller write refused (%s at op %d); re-reading the state",
                  zerror(call->rc), op);
    }
    if (call->path) { /* a deletion: forget it is in flight */
        for (size_t i = 0; i < c->ndeleting; i++) {
            if (strcmp(c->deleting[i], call->path) == 0) {
                free(c->deleting[i]);
                c->deleting[i] = c->deleting[--c->ndeleting];
                break;
            }
        }
        if (call->rc == ZOK)
            VLOG_INFO("coord", "deleted topic %s", call->path);
    }
    /* A write that succeeded fires the watches of what it changed, which
     * bring it into the cache; the partial reload only makes the
     * controller decide again once they are in. A refused write is
     * decided again on fresh state, but not at once: a write that keeps
     * failing must not spin against ZooKeeper. */
    if (call->rc == ZOK)
        coord_request_partial_reload(c);
    else
        coord_schedule_retry(c);
}

void controller_submit_write(coordinator_t *c, zk_call_t *call)
{
    c->controller_writes_inflight++;
    zk_multi_submit(c, call);
}

const topic_zk_t *controller_topic_zk(const coordinator_t *c, const md_topic_t *t)
{
    size_t i = (size_t)(t - c->md->topics);
    assert(i < c->md->ntopics);
    return &c->md_zk[i];
}

bool controller_topic_being_deleted(const coordinator_t *c, const char *name)
{
    for (size_t i = 0; i < c->ndelete_requests; i++)
        if (strcmp(c->delete_requests[i], name) == 0)
            return true;
    return false;
}

/* A partition state the controller is writing. */
typedef struct state_write {
    char *topic; /* owned */
    uint8_t topic_id[16];
    int32_t partition;
    zk_partition_state_t state; /* isr owned */
} state_write_t;

/* Once ZooKeeper took it, the state is the controller's own to apply and
 * push: waiting for its watch and a re-read would add a round trip to
 * every failover. */
static void on_state_written(coordinator_t *c, zk_call_t *call)
{
    state_write_t *w = call->arg;
    assert(w != NULL && call->nops == 2);
    if (call->rc == ZOK && !c->stopping)
        coord_apply_written_state(c, w->topic, w->topic_id, w->partition, &w->state,
                                  call->stats[1].version, call->stats[1].mzxid);
    free(w->topic);
    zk_partition_state_clear(&w->state);
    free(w);
    call->arg = NULL;
    on_controller_write(c, call);
}

void controller_write_partition_state(coordinator_t *c, const md_topic_t *t, int32_t partition,
                                      const zk_partition_state_t *next)
{
    assert(partition >= 0 && partition < t->npartitions);
    assert(next->leader_epoch > t->partitions[partition].leader_epoch);
    const topic_zk_t *z = controller_topic_zk(c, t);
    char path[700];
    snprintf(path, sizeof(path), "/brokers/topics/%s/partitions/%d/state", t->name, partition);
    size_t len;
    uint8_t *buf = znode_encode_partition_state(next, &len);
    state_write_t *w = xcalloc(1, sizeof(*w));
    w->topic = xstrdup(t->name);
    memcpy(w->topic_id, t->id, 16);
    w->partition = partition;
    w->state = *next;
    w->state.isr = coord_copy_ids(next->isr, next->nisr);
    zk_call_t *call = controller_fenced_call(c, on_state_written, w);
    call->always_complete = true; /* w is freed there, even when stopping */
    zk_multi_set(call, path, buf, len, z->state_version[partition]);
    free(buf);
    controller_submit_write(c, call);
}

/* One multi of controller_write_partition_states. Owned by its call. */
typedef struct state_batch {
    controller_batch_done_fn done;
    void *arg;
    size_t first, count;
    state_write_t *writes; /* count of them, owned: op k + 1 writes writes[k] */
} state_batch_t;

/* As on_state_written, for every state of the multi. */
static void on_partition_states_written(coordinator_t *c, zk_call_t *call)
{
    state_batch_t *b = call->arg;
    assert(b != NULL && call->nops == (int)b->count + 1);
    call->arg = NULL;
    const bool written = call->rc == ZOK;
    const bool fenced = !written && zk_multi_failed_op(call) == 0;
    for (size_t k = 0; k < b->count; k++) {
        state_write_t *w = &b->writes[k];
        if (written && !c->stopping)
            coord_apply_written_state(c, w->topic, w->topic_id, w->partition, &w->state,
                                      call->stats[k + 1].version, call->stats[k + 1].mzxid);
        free(w->topic);
        zk_partition_state_clear(&w->state);
    }
    free(b->writes);
    if (!c->stopping) { /* the accounting and the reload end with the coordinator */
        on_controller_write(c, call);
        if (b->done)
            b->done(c, b->arg, b->first, b->count, written, fenced);
    }
    free(b);
}

/* Bounds on one multi of controller_write_partition_states: well within
 * jute.maxbuffer (1 MiB) whatever the names, and a stale version refuses
 * at most this many decisions at once. */
#define STATE_BATCH_MAX_OPS   1000
#define STATE_BATCH_MAX_BYTES (512 * 1024)

size_t controller_write_partition_states(coordinator_t *c, const controller_state_write_t *w,
                                         size_t n, controller_batch_done_fn done, void *arg)
{
    size_t multis = 0;
    assert(c->is_controller);
    assert(w != NULL || n == 0);
    size_t i = 0;
    while (i < n) {
        state_batch_t *b = xcalloc(1, sizeof(*b));
        b->done = done;
        b->arg = arg;
        b->first = i;
        zk_call_t *call = controller_fenced_call(c, on_partition_states_written, b);
        call->always_complete = true; /* frees b even while stopping */
        const size_t most = n - i < STATE_BATCH_MAX_OPS ? n - i : STATE_BATCH_MAX_OPS;
        b->writes = xcalloc(most, sizeof(*b->writes));
        size_t bytes = 0;
        while (b->count < most && bytes < STATE_BATCH_MAX_BYTES) {
            const md_topic_t *t = w[i].topic;
            const int32_t p = w[i].partition;
            assert(p >= 0 && p < t->npartitions);
            assert(w[i].next.leader_epoch > t->partitions[p].leader_epoch);
            assert(controller_topic_zk(c, t)->state_version[p] >= 0); /* -1 writes over anything */
            char path[700];
            int plen =
                snprintf(path, sizeof(path), "/brokers/topics/%s/partitions/%d/state", t->name, p);
            size_t len;
            uint8_t *buf = znode_encode_partition_state(&w[i].next, &len);
            zk_multi_set(call, path, buf, len, controller_topic_zk(c, t)->state_version[p]);
            free(buf);
            bytes += (size_t)plen + len + 64; /* 64: the op's own framing, generously */
            state_write_t *copy = &b->writes[b->count];
            copy->topic = xstrdup(t->name);
            memcpy(copy->topic_id, t->id, 16);
            copy->partition = p;
            copy->state = w[i].next;
            copy->state.isr = coord_copy_ids(w[i].next.isr, w[i].next.nisr);
            b->count++;
            i++;
        }
        controller_submit_write(c, call);
        multis++;
    }
    return multis;
}

static void delete_topic_znodes(coordinator_t *c, const char *name)
{
    for (size_t i = 0; i < c->ndeleting; i++)
        if (strcmp(c->deleting[i], name) == 0)
            return; /* in flight */
    zk_call_t *call = controller_fenced_call(c, on_controller_write, NULL);
    call->path = xstrdup(name);
    char path[700];
    const md_topic_t *t = cluster_metadata_topic(c->md, name, strlen(name));
    if (t) {
        const topic_zk_t *z = controller_topic_zk(c, t);
        for (int32_t p = 0; p < t->npartitions; p++) {
            if (z->state_version[p] >= 0) {
                snprintf(path, sizeof(path), "/brokers/topics/%s/partitions/%d/state", name, p);
                zk_multi_delete(call, path, -1);
            }
            snprintf(path, sizeof(path), "/brokers/topics/%s/partitions/%d", name, p);
            zk_multi_delete(call, path, -1);
        }
        snprintf(path, sizeof(path), "/brokers/topics/%s/partitions", name);
        zk_multi_delete(call, path, -1);
        snprintf(path, sizeof(path), "/brokers/topics/%s", name);
        zk_multi_delete(call, path, -1);
        if (z->has_config) {
            snprintf(path, sizeof(path), "/config/topics/%s", name);
            zk_multi_delete(call, path, -1);
        }
    }
    snprintf(path, sizeof(path), "/admin/delete_topics/%s", name);
    zk_multi_delete(call, path, -1);
    c->deleting = xrealloc(c->deleting, (c->ndeleting + 1) * sizeof(char *));
    c->deleting[c->ndeleting++] = xstrdup(name);
    VLOG_INFO("coord", "controller deletes topic %s", name);
    controller_submit_write(c, call);
}

/* The election predicate after a restarted leader: offline_replicas_live
 * (a live broker that can open the log), except the restarted leader. */
typedef struct live_other {
    offline_replicas_ctx_t *live;
    int32_t except;
} live_other_t;

static bool live_other_replica(void *arg, int32_t id)
{
    const live_other_t *o = arg;
    return id != o->except && controlled_shutdown_electable(o->live, id);
}

/* Decides the partition's next state; false when it stays as it is.
 * "Live" here is offline_replicas_live: a live broker that can open the
 * partition's log (offline_replicas.c). */
static bool next_partition_state(coordinator_t *c, const md_topic_t *t, int32_t partition,
                                 zk_partition_state_t *next)
{
    const md_partition_t *p = &t->partitions[partition];
    const int32_t leader = p->leader;
    /* A restarted leader is a leave and a join (zk_session.c). */
    const bool restarted = coord_leader_restarted(c, t, partition);
    offline_replicas_ctx_t live_ctx = {c, t->name, p->id};
    bool leader_ok = !restarted && leader >= 0 && offline_replicas_live(&live_ctx, leader) &&
                     coord_contains(p->replicas, p->nreplicas, leader);
    int32_t new_leader;
    int32_t *isr = xmalloc((size_t)(p->nreplicas + 1) * sizeof(int32_t));
    int32_t nisr = 0;
    if (!leader_ok) {
        bool unclean = false;
        live_other_t others = {.live = &live_ctx, .except = leader};
        new_leader = restarted ? coord_elect_leader(p->replicas, p->nreplicas, p->isr, p->nisr,
                                                    live_other_replica, &others, false, &unclean)
                               : -1;
        if (new_leader < 0)
            new_leader = coord_elect_leader(p->replicas, p->nreplicas, p->isr, p->nisr,
                                            controlled_shutdown_electable, &live_ctx,
                                            c->cfg.unclean_leader_election, &unclean);
        if (new_leader == leader && !restarted) {
            free(isr);
            return false; /* still offline */
        }
        if (new_leader < 0) {
            /* Offline: keep the last ISR, so that its members (and only
             * they) can lead again cleanly when they return. */
            for (int32_t i = 0; i < p->nisr; i++)
                isr[nisr++] = p->isr[i];
        } else if (unclean) {
            VLOG_WARN("coord", "unclean leader election: broker %d was not in the ISR", new_leader);
            isr[nisr++] = new_leader;
        } else {
            for (int32_t i = 0; i < p->nisr; i++)
                if (p->isr[i] == new_leader || (offline_replicas_live(&live_ctx, p->isr[i]) &&
                                                !(restarted && p->isr[i] == leader)))
                    isr[nisr++] = p->isr[i];
        }
    } else if (offline_replicas_isr_shrink(&live_ctx, p, isr, &nisr)) {
        new_leader = leader; /* a follower that cannot open its log leaves the ISR */
    } else {
        /* A live leader stays: moving leadership back to the preferred
         * replica is the rebalance's (leader_election.c), on its interval. */
        free(isr);
        return false;
    }
    assert(nisr <= p->nreplicas + 1);
    next->leader = new_leader;
    next->leader_epoch = p->leader_epoch + 1;
    next->controller_epoch = c->my_controller_epoch;
    next->isr = isr;
    next->nisr = nisr;
    return true;
}

static void elect_leaders(coordinator_t *c)
{
    for (size_t i = 0; i < c->md->ntopics; i++) {
        const md_topic_t *t = &c->md->topics[i];
        const topic_zk_t *z = &c->md_zk[i];
        if (controller_topic_being_deleted(c, t->name))
            continue;
        for (int32_t p = 0; p < t->npartitions; p++) {
            const md_partition_t *mp = &t->partitions[p];
            zk_partition_state_t next;
            char path[700];
            snprintf(path, sizeof(path), "/brokers/topics/%s/partitions/%d/state", t->name, p);
            zk_call_t *call;
            size_t len;
            uint8_t *buf;
            if (z->state_version[p] < 0) {
                /* A state znode lost to a partial write: recreate it,
                 * the ISR the original replicas only (those a
                 * reassignment adds may have no log yet). */
                int32_t *orig = xmalloc((size_t)(mp->nreplicas + 1) * sizeof(int32_t));
                int32_t norig = 0;
                for (int32_t r = 0; r < mp->nreplicas; r++)
                    if (!coord_contains(mp->adding, mp->nadding, mp->replicas[r]))
                        orig[norig++] = mp->replicas[r];
                bool unclean;
                next.leader = coord_elect_leader(orig, norig, orig, norig,
                                                 controlled_shutdown_eligible, c, false, &unclean);
                /* Past the cached epoch, so that brokers apply it over
                 * what they hold (the cache's 0 for a missing state). */
                next.leader_epoch = mp->leader_epoch + 1;
                next.controller_epoch = c->my_controller_epoch;
                next.isr = orig;
                next.nisr = norig;
                buf = znode_encode_partition_state(&next, &len);
                free(orig);
                call = controller_fenced_call(c, on_controller_write, NULL);
                zk_multi_create(call, path, buf, len, ZOO_PERSISTENT);
                free(buf);
                controller_submit_write(c, call);
                continue;
            }
            if (!next_partition_state(c, t, p, &next))
                continue;
            VLOG_INFO("coord", "%s-%d: leader %d -> %d, leader epoch %d", t->name, p, mp->leader,
                      next.leader, next.leader_epoch);
            controller_write_partition_state(c, t, p, &next);
            zk_partition_state_clear(&next);
        }
    }
}

static void controller_act(coordinator_t *c)
{
    assert(c->is_controller);
    if (c->controller_writes_inflight > 0)
        return; /* their completion reloads and brings us back here */
    for (size_t i = 0; i < c->ndelete_requests; i++)
        delete_topic_znodes(c, c->delete_requests[i]);
    elect_leaders(c);
    reassign_act(c); /* once elections wrote nothing (same state znodes) */
    if (c->push_pending) {
        c->push_pending = false;
        controller_push_metadata(c);
    }
    controlled_shutdown_act(c);
}

void controller_after_reload(coordinator_t *c, bool controller_exists, int32_t controller_id,
                             int64_t controller_owner)
{
    if (!controller_exists) {
        controller_resign(c, "/controller is gone");
        start_election(c);
        return;
    }
    bool mine = controller_id == c->cfg.broker_id && controller_owner == c->session_id;
    if (mine && !c->is_controller && !c->electing && c->zk_controller_epoch >= 0) {
        /* Our election multi succeeded but its answer was lost (connection
         * loss). Holding /controller, nobody else can have bumped the epoch
         * since, so the epoch just read is ours. */
        c->is_controller = true;
        c->my_controller_epoch = c->zk_controller_epoch;
        c->my_epoch_version = c->zk_controller_epoch_version;
        c->push_full = true;
        VLOG_INFO("coord", "broker %d holds /controller: controller with epoch %d",
                  c->cfg.broker_id, c->my_controller_epoch);
    }
    if (!mine) {
        controller_resign(c, "another broker holds /controller");
    } else if (c->is_controller) {
        c->push_pending = true; /* every reload follows a change: tell the brokers */
        controller_act(c);
    }
}

/* ---- admin requests ---- */

static bool topic_name_valid(const char *name, char *why, size_t why_size)
{
    size_t bad_at = 0;
    switch (topic_name_check(name, strlen(name), &bad_at)) {
    case TOPIC_NAME_OK:
        return true;
    case TOPIC_NAME_EMPTY:
    case TOPIC_NAME_TOO_LONG:
        snprintf(why, why_size, "topic name must have 1 to %d characters", TOPIC_NAME_MAX);
        break;
    case TOPIC_NAME_DOTS:
        snprintf(why, why_size, "topic name cannot be '.' or '..'");
        break;
    case TOPIC_NAME_ILLEGAL_CHAR:
        snprintf(why, why_size,
                 "topic name has an illegal character '%c' (legal: a-z A-Z 0-9 . _ -)",
                 name[bad_at]);
        break;
    }
    return false;
}

static assign_broker_t *live_brokers(const coordinator_t *c, size_t *n)
{
    *n = c->md->nbrokers;
    assign_broker_t *out = xcalloc(*n + 1, sizeof(*out));
    for (size_t i = 0; i < *n; i++) {
        out[i].id = c->md->brokers[i].id;
        out[i].rack = c->md->brokers[i].rack;
    }
    return out;
}

static void on_admin_write(coordinator_t *c, zk_call_t *call)
{
    admin_waiter_t *w = call->arg;
    const int failed_op = zk_multi_failed_op(call);
    const int op_err = failed_op >= 0 ? call->results[failed_op].err : ZOK;
    if (c->stopping) {
        w->done(w->arg, KAFKA_REQUEST_TIMED_OUT, "the broker is shutting down");
    } else if (call->rc == ZOK) {
        start_waiting(c, w);
        coord_request_topic_reload(c, w->name);
        return; /* c->waiters owns w */
    } else if (fenced_out(c, call)) {
        w->done(w->arg, KAFKA_NOT_CONTROLLER, "this broker is no longer the controller");
        coord_request_reload(c);
    } else if (call->rc == ZNODEEXISTS || op_err == ZNODEEXISTS) {
        w->done(w->arg, KAFKA_TOPIC_ALREADY_EXISTS,
                "a topic of that name exists (or is still being deleted)");
    } else if (call->rc == ZBADVERSION || op_err == ZBADVERSION) {
        w->done(w->arg, KAFKA_INVALID_REQUEST, "the topic changed meanwhile; retry");
        coord_request_reload(c);
    } else {
        char msg[200];
        snprintf(msg, sizeof(msg), "ZooKeeper write failed: %s", zerror(call->rc));
        w->done(w->arg, KAFKA_REQUEST_TIMED_OUT, msg);
    }
    admin_waiter_free(w);
}

/* Adds the creation of partitions [from, to) with their state znodes. */
static void add_partition_znodes(coordinator_t *c, zk_call_t *call, const char *name,
                                 const int32_t *replicas, int32_t rf, int32_t from, int32_t to)
{
    char path[700];
    for (int32_t p = from; p < to; p++) {
        const int32_t *r = replicas + (size_t)(p - from) * (size_t)rf;
        zk_partition_state_t st = {
            .leader = r[0],
            .leader_epoch = 0,
            .controller_epoch = c->my_controller_epoch,
            .isr = (int32_t *)r,
            .nisr = rf,
        };
        size_t len;
        uint8_t *buf = znode_encode_partition_state(&st, &len);
        snprintf(path, sizeof(path), "/brokers/topics/%s/partitions/%d", name, p);
        zk_multi_create(call, path, NULL, 0, ZOO_PERSISTENT);
        snprintf(path, sizeof(path), "/brokers/topics/%s/partitions/%d/state", name, p);
        zk_multi_create(call, path, buf, len, ZOO_PERSISTENT);
        free(buf);
    }
}

/* Checks a creation request against the cluster; KAFKA_NONE with the
 * effective partition count and replication factor, or an error code with
 * the reason in msg. */
static int16_t validate_topic_spec(const coordinator_t *c, const topic_spec_t *spec,
                                   int32_t *partitions_out, int32_t *rf_out, char *msg,
                                   size_t msg_size)
{
    if (!topic_name_valid(spec->name, msg, msg_size))
        return KAFKA_INVALID_TOPIC_EXCEPTION;
    if (cluster_metadata_topic(c->md, spec->name, strlen(spec->name)) ||
        controller_topic_being_deleted(c, spec->name)) {
        snprintf(msg, msg_size, "topic '%s' already exists", spec->name);
        return KAFKA_TOPIC_ALREADY_EXISTS;
    }
    int32_t partitions = spec->partitions == -1 ? c->cfg.default_partitions : spec->partitions;
    int32_t rf = spec->replication_factor == -1 ? c->cfg.default_replication_factor
                                                : spec->replication_factor;
    if (partitions <= 0 || partitions > COORD_MAX_TOPIC_PARTITIONS) {
        snprintf(msg, msg_size, "number of partitions must be 1..%d (got %d)",
                 COORD_MAX_TOPIC_PARTITIONS, partitions);
        return KAFKA_INVALID_PARTITIONS;
    }
    if (rf <= 0) {
        snprintf(msg, msg_size, "replication factor must be positive (got %d)", rf);
        return KAFKA_INVALID_REPLICATION_FACTOR;
    }
    if ((size_t)rf > c->md->nbrokers || rf > COORD_MAX_REPLICAS) {
        snprintf(msg, msg_size, "replication factor %d is larger than the %zu live brokers", rf,
                 c->md->nbrokers);
        return KAFKA_INVALID_REPLICATION_FACTOR;
    }
    if (spec->nconfigs > COORD_MAX_CONFIGS) {
        snprintf(msg, msg_size, "%zu configs (at most %d)", spec->nconfigs, COORD_MAX_CONFIGS);
        return KAFKA_INVALID_CONFIG;
    }
    log_config_t lc;
    log_config_defaults(&lc);
    for (size_t i = 0; i < spec->nconfigs; i++) {
        if (!spec->config_values[i]) {
            snprintf(msg, msg_size, "config %s has a null value", spec->config_keys[i]);
            return KAFKA_INVALID_CONFIG;
        }
        if (log_config_set(&lc, spec->config_keys[i], spec->config_values[i], msg, msg_size) != 0)
            return KAFKA_INVALID_CONFIG;
    }
    *partitions_out = partitions;
    *rf_out = rf;
    return KAFKA_NONE;
}

/* The fenced multi creating a topic: its config, assignment and every
 * partition's state, all or nothing. */
static void write_new_topic(coordinator_t *c, const topic_spec_t *spec, const int32_t *replicas,
                            int32_t partitions, int32_t rf, coordinator_done_fn done, void *arg)
{
    assert(partitions > 0 && rf > 0);
    zk_assignment_t a = {.npartitions = partitions};
    coord_random_topic_id(a.topic_id);
    a.replicas = xcalloc((size_t)partitions, sizeof(int32_t *));
    a.nreplicas = xcalloc((size_t)partitions, sizeof(int32_t));
    for (int32_t p = 0; p < partitions; p++) {
        a.replicas[p] = (int32_t *)replicas + (size_t)p * (size_t)rf;
        a.nreplicas[p] = rf;
    }
    zk_call_t *call = controller_fenced_call(c, on_admin_write, NULL);
    char path[700];
    size_t len;
    uint8_t *buf =
        znode_encode_topic_config(spec->config_keys, spec->config_values, spec->nconfigs, &len);
    snprintf(path, sizeof(path), "/config/topics/%s", spec->name);
    zk_multi_create(call, path, buf, len, ZOO_PERSISTENT);
    free(buf);
    buf = znode_encode_assignment(&a, &len);
    snprintf(path, sizeof(path), "/brokers/topics/%s", spec->name);
    zk_multi_create(call, path, buf, len, ZOO_PERSISTENT);
    free(buf);
    snprintf(path, sizeof(path), "/brokers/topics/%s/partitions", spec->name);
    zk_multi_create(call, path, NULL, 0, ZOO_PERSISTENT);
    add_partition_znodes(c, call, spec->name, replicas, rf, 0, partitions);
    call->always_complete = true;
    call->arg = admin_waiter_new(WAIT_TOPIC_PRESENT, spec->name, a.topic_id, partitions, done, arg);
    VLOG_INFO("coord", "controller creates topic %s: %d partitions, replication factor %d",
              spec->name, partitions, rf);
    free(a.replicas);
    free(a.nreplicas);
    zk_multi_submit(c, call);
}

void coordinator_create_topic(coordinator_t *c, const topic_spec_t *spec, coordinator_done_fn done,
                              void *arg)
{
    assert(spec && spec->name && done);
    assert(c->md);
    char msg[300];
    if (!c->is_controller) {
        if (!spec->validate_only && rpc_glue_forward_create(c, spec, done, arg) == 0)
            return;
        done(arg, KAFKA_NOT_CONTROLLER, "this broker is not the controller");
        return;
    }
    int32_t partitions = 0, rf = 0;
    int16_t error = validate_topic_spec(c, spec, &partitions, &rf, msg, sizeof(msg));
    if (error != KAFKA_NONE) {
        done(arg, error, msg);
        return;
    }
    size_t nb;
    assign_broker_t *brokers = live_brokers(c, &nb);
    int32_t *replicas = xmalloc((size_t)partitions * (size_t)rf * sizeof(int32_t));
    /* The start rotates with the topic count, so that the first partitions
     * of successive topics do not all land on the same broker. */
    int rc =
        coord_assign_replicas(brokers, nb, 0, partitions, rf, (int32_t)c->md->ntopics, replicas);
    free(brokers);
    if (rc != 0) /* rf was checked against the same broker list */
        done(arg, KAFKA_INVALID_REPLICATION_FACTOR, "invalid replication factor");
    else if (spec->validate_only)
        done(arg, KAFKA_NONE, NULL);
    else
        write_new_topic(c, spec, replicas, partitions, rf, done, arg);
    free(replicas);
}

void coordinator_delete_topic(coordinator_t *c, const char *name, coordinator_done_fn done,
                              void *arg)
{
    assert(name && done);
    if (!c->is_controller) {
        done(arg, KAFKA_NOT_CONTROLLER, "this broker is not the controller");
        return;
    }
    const md_topic_t *t = cluster_metadata_topic(c->md, name, strlen(name));
    if (!t) {
        done(arg, KAFKA_UNKNOWN_TOPIC_OR_PARTITION, "no such topic");
        return;
    }
    /* The request znode is what the controller (possibly a later one)
     * acts on; the fence only keeps a deposed controller from answering. */
    zk_call_t *call = controller_fenced_call(c, on_admin_write, NULL);
    char path[700];
    size_t len;
    uint8_t *buf = znode_encode_delete_request(name, c->cfg.broker_id, &len);
    snprintf(path, sizeof(path), "/admin/delete_topics/%s", name);
    if (controller_topic_being_deleted(c, name))
        zk_multi_set(call, path, buf, len, -1);
    else
        zk_multi_create(call, path, buf, len, ZOO_PERSISTENT);
    free(buf);
    call->always_complete = true;
    call->arg = admin_waiter_new(WAIT_TOPIC_GONE, name, t->id, 0, done, arg);
    zk_multi_submit(c, call);
}

/* Checks a partition addition; KAFKA_NONE, or an error with msg. */
static int16_t validate_new_partitions(const coordinator_t *c, const char *name,
                                       const md_topic_t *t, int32_t total_count, char *msg,
                                       size_t msg_size)
{
    if (!t || controller_topic_being_deleted(c, name)) {
        snprintf(msg, msg_size, "no such topic");
        return KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
    }
    if (total_count > COORD_MAX_TOPIC_PARTITIONS) {
        snprintf(msg, msg_size, "a topic has at most %d partitions", COORD_MAX_TOPIC_PARTITIONS);
        return KAFKA_INVALID_PARTITIONS;
    }
    if (total_count == t->npartitions) {
        snprintf(msg, msg_size, "topic already has %d partitions", t->npartitions);
        return KAFKA_INVALID_PARTITIONS;
    }
    if (total_count < t->npartitions) {
        snprintf(msg, msg_size,
                 "topic currently has %d partitions, which is higher than the requested %d",
                 t->npartitions, total_count);
        return KAFKA_INVALID_PARTITIONS;
    }
    for (int32_t p = 0; p < t->npartitions; p++) {
        if (reassign_in_progress(&t->partitions[p])) {
            /* The new assignment would drop the reassignment (as Kafka). */
            snprintf(msg, msg_size, "a partition reassignment of the topic is in progress");
            return KAFKA_REASSIGNMENT_IN_PROGRESS;
        }
    }
    int32_t rf = t->partitions[0].nreplicas;
    if ((size_t)rf > c->md->nbrokers) {
        snprintf(msg, msg_size, "replication factor %d is larger than the %zu live brokers", rf,
                 c->md->nbrokers);
        return KAFKA_INVALID_REPLICATION_FACTOR;
    }
    return KAFKA_NONE;
}

void coordinator_create_partitions(coordinator_t *c, const char *name, int32_t total_count,
                                   bool validate_only, coordinator_done_fn done, void *arg)
{
    assert(name && done);
    char msg[300];
    if (!c->is_controller) {
        done(arg, KAFKA_NOT_CONTROLLER, "this broker is not the controller");
        return;
    }
    const md_topic_t *t = cluster_metadata_topic(c->md, name, strlen(name));
    int16_t error = validate_new_partitions(c, name, t, total_count, msg, sizeof(msg));
    if (error != KAFKA_NONE || validate_only) {
        done(arg, error, error != KAFKA_NONE ? msg : NULL);
        return;
    }
    assert(t && total_count > t->npartitions);
    const int32_t rf = t->partitions[0].nreplicas;
    size_t nb;
    assign_broker_t *brokers = live_brokers(c, &nb);
    /* Continue the rotation where partition 0's leader put it. */
    int32_t start = 0;
    for (size_t i = 0; i < nb; i++)
        if (brokers[i].id == t->partitions[0].replicas[0])
            start = (int32_t)i;
    const int32_t add = total_count - t->npartitions;
    int32_t *replicas = xmalloc((size_t)add * (size_t)rf * sizeof(int32_t));
    int rc = coord_assign_replicas(brokers, nb, t->npartitions, add, rf, start, replicas);
    free(brokers);
    if (rc != 0) {
        free(replicas);
        done(arg, KAFKA_INVALID_REPLICATION_FACTOR, "invalid replication factor");
        return;
    }
    zk_assignment_t a = {.npartitions = total_count};
    memcpy(a.topic_id, t->id, 16);
    a.replicas = xcalloc((size_t)total_count, sizeof(int32_t *));
    a.nreplicas = xcalloc((size_t)total_count, sizeof(int32_t));
    for (int32_t p = 0; p < total_count; p++) {
        bool old = p < t->npartitions;
        a.replicas[p] =
            old ? t->partitions[p].replicas : replicas + (size_t)(p - t->npartitions) * (size_t)rf;
        a.nreplicas[p] = old ? t->partitions[p].nreplicas : rf;
    }
    zk_call_t *call = controller_fenced_call(c, on_admin_write, NULL);
    char path[700];
    size_t len;
    uint8_t *buf = znode_encode_assignment(&a, &len);
    snprintf(path, sizeof(path), "/brokers/topics/%s", name);
    zk_multi_set(call, path, buf, len, controller_topic_zk(c, t)->assignment_version);
    free(buf);
    add_partition_znodes(c, call, name, replicas, rf, t->npartitions, total_count);
    call->always_complete = true;
    call->arg = admin_waiter_new(WAIT_TOPIC_PRESENT, name, t->id, total_count, done, arg);
    VLOG_INFO("coord", "controller adds partitions to %s: %d -> %d", name, t->npartitions,
              total_count);
    free(a.replicas);
    free(a.nreplicas);
    free(replicas);
    zk_multi_submit(c, call);
}

/* ---- ISR changes from partition leaders ---- */

typedef struct isr_op {
    coordinator_done_fn done;
    void *arg;
    char *topic; /* owned */
    int32_t partition;
} isr_op_t;

static void on_isr_written(coordinator_t *c, zk_call_t *call)
{
    isr_op_t *op = call->arg;
    if (c->stopping)
        op->done(op->arg, KAFKA_REQUEST_TIMED_OUT, "the broker is shutting down");
    else if (call->rc == ZOK)
        op->done(op->arg, KAFKA_NONE, NULL);
    else
        op->done(op->arg, KAFKA_REQUEST_TIMED_OUT,
                 call->rc == ZBADVERSION ? "the partition state changed meanwhile"
                                         : "ZooKeeper write failed");
    /* Written or not, the state znode is what to read again. */
    if (!c->stopping)
        coord_request_state_reload(c, op->topic, op->partition);
    free(op->topic);
    free(op);
}

void coordinator_alter_isr(coordinator_t *c, const char *topic, int32_t partition,
                           int32_t leader_epoch, const int32_t *isr, int32_t nisr,
                           coordinator_done_fn done, void *arg)
{
    assert(topic && done);
    assert(nisr >= 0);
    const md_topic_t *t = cluster_metadata_topic(c->md, topic, strlen(topic));
    if (!t || partition < 0 || partition >= t->npartitions) {
        done(arg, KAFKA_UNKNOWN_TOPIC_OR_PARTITION, "no such partition");
        return;
    }
    const md_partition_t *p = &t->partitions[partition];
    const int32_t me = c->cfg.broker_id;
    if (p->leader != me) {
        done(arg, KAFKA_NOT_LEADER_OR_FOLLOWER, "this broker does not lead the partition");
        return;
    }
    if (leader_epoch != p->leader_epoch) {
        done(arg, KAFKA_FENCED_LEADER_EPOCH, "the leader epoch is not the current one");
        return;
    }
    bool valid = nisr > 0 && nisr <= p->nreplicas && coord_contains(isr, nisr, me);
    for (int32_t i = 0; valid && i < nisr; i++)
        valid =
            coord_contains(p->replicas, p->nreplicas, isr[i]) && !coord_contains(isr, i, isr[i]);
    if (!valid) {
        done(arg, KAFKA_INVALID_REQUEST, "the ISR must hold the leader and only replicas, once");
        return;
    }
    const topic_zk_t *z = controller_topic_zk(c, t);
    if (z->state_version[partition] < 0) {
        /* A version of -1 would write whatever is there: never unfenced. */
        done(arg, KAFKA_REQUEST_TIMED_OUT, "the partition state has not been read");
        coord_request_state_reload(c, topic, partition);
        return;
    }
    zk_partition_state_t st = {
        .leader = me,
        .leader_epoch = leader_epoch,
        .controller_epoch = c->zk_controller_epoch > 0 ? c->zk_controller_epoch : 0,
        .isr = (int32_t *)isr,
        .nisr = nisr,
    };
    size_t len;
    uint8_t *buf = znode_encode_partition_state(&st, &len);
    char path[700];
    snprintf(path, sizeof(path), "/brokers/topics/%s/partitions/%d/state", topic, partition);
    isr_op_t *op = xcalloc(1, sizeof(*op));
    op->done = done;
    op->arg = arg;
    op->topic = xstrdup(topic);
    op->partition = partition;
    zk_call_t *call = zk_call_new(c, on_isr_written, op, NULL);
    call->always_complete = true;
    /* Not fenced by the controller epoch: the leader writes, fenced by the
     * state znode's version (the controller's writes bump it too). */
    zk_multi_set(call, path, buf, len, z->state_version[partition]);
    free(buf);
    VLOG_INFO("coord", "%s-%d: ISR -> %d broker(s) at leader epoch %d", topic, partition, nisr,
              leader_epoch);
    zk_multi_submit(c, call);
}
