/* Partition reassignment: the controller's half of AlterPartitionReassignments
 * (Kafka's KafkaController.onPartitionReassignment, ZooKeeper mode, KIP-455).
 *
 * For a partition with original replicas RS and target TRS:
 *  (a) the request writes the topic znode: replicas = TRS ++ RS (distinct),
 *      adding = TRS - RS, removing = RS - TRS, and reassign_leader_epoch =
 *      the state's leader epoch + 1. Only the topic znode: a state znode
 *      changed meanwhile by the leader (an ISR change) cannot fail it;
 *  (b) after each reload reassign_act bumps the leader epoch while the
 *      state is below reassign_leader_epoch, so that every replica (the new
 *      ones start following) learns the replica set; ISR = ISR ∩ replicas;
 *  (c)+(d) once every target replica is in the ISR: one multi writes the
 *      topic znode (replicas = TRS, no adding/removing) and the state (the
 *      leader kept when in TRS and live, else the first of TRS in the ISR
 *      and live; ISR ∩ TRS; epoch + 1). One write where Kafka makes two, so
 *      no state is ever seen with a leader outside the replicas. The removed
 *      replicas see themselves gone at their next reload (partition_removed:
 *      they stop and delete their log).
 * The state of a reassignment lives in the topic znode only, so a new
 * controller resumes it after a failover. Cancellation reassigns to the
 * original replicas (replicas minus adding), as Kafka does.
 *
 * Every decision is made on fresh state and written conditionally on the
 * znode versions read; a refused write is decided again after the reload. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord_state.h"
#include "kafka_errors.h"
#include "vlog.h"
#include "xalloc.h"

#define TOPIC_PATH_MAX 700
/* The replicas a leader tracks (REPLICA_MAX_REPLICAS, broker/replica),
 * fewer than a topic znode may list (COORD_MAX_REPLICAS). */
#define REASSIGN_MAX_REPLICAS 16
_Static_assert(REASSIGN_MAX_REPLICAS <= COORD_MAX_REPLICAS, "a replica set must fit a topic znode");

/* ---- the request: validation and the topic znode write ---- */

/* How long a written request waits for this broker's cache to show it
 * before it is answered anyway (the write succeeded). */
#define ALTER_CACHE_WAIT_MS 10000

/* One topic's share of a request: a write in flight, then (once written)
 * in c->reassign_waiting until the cache shows it (the topic znode at the
 * version written), so that the client's next ListPartitionReassignments
 * agrees with the answer. */
typedef struct alter_write {
    struct alter_write *next; /* in c->reassign_waiting */
    uint8_t topic_id[16];     /* the topic written */
    int32_t written_version;  /* its znode's version after the write */
    int64_t deadline_ms;
    coordinator_reassign_item_t *items; /* the request's, not owned */
    size_t *idx;                        /* owned: items of this topic */
    size_t nidx;
    size_t *pending; /* the request's count of writes in flight */
    void (*done)(void *arg);
    void *arg;
} alter_write_t;

static void item_fail(coordinator_reassign_item_t *it, int16_t error, const char *msg)
{
    assert(error != KAFKA_NONE);
    it->error = error;
    snprintf(it->message, sizeof(it->message), "%s", msg);
}

bool reassign_in_progress(const md_partition_t *p)
{
    assert(p->nadding >= 0 && p->nremoving >= 0);
    return p->nadding > 0 || p->nremoving > 0;
}

static bool live_in_isr(coordinator_t *c, const md_partition_t *p, int32_t id)
{
    return coord_broker_live(c, id) && coord_contains(p->isr, p->nisr, id);
}

/* The replica set a request writes for p: to it->replicas, or back to the
 * original replicas (replicas minus adding) for a cancel. */
static void requested_set(const md_partition_t *p, const coordinator_reassign_item_t *it,
                          coord_replica_set_t *s)
{
    if (it->replicas) {
        coord_reassign_to(p, it->replicas, it->nreplicas, s);
        return;
    }
    int32_t *orig = xmalloc((size_t)(p->nreplicas + 1) * sizeof(int32_t));
    int32_t norig = 0;
    for (int32_t i = 0; i < p->nreplicas; i++)
        if (!coord_contains(p->adding, p->nadding, p->replicas[i]))
            orig[norig++] = p->replicas[i];
    coord_reassign_to(p, orig, norig, s);
    free(orig);
}

/* Checks the replica set the request writes: no more replicas than a
 * leader tracks, and (when it replaces one in progress, which drops
 * replicas at once) a live ISR member among them: the replicas dropped
 * delete their logs. */
static void validate_set(coordinator_t *c, const md_partition_t *p, coordinator_reassign_item_t *it)
{
    coord_replica_set_t s;
    requested_set(p, it, &s);
    bool in_sync = false;
    for (int32_t i = 0; i < s.nfull && !in_sync; i++)
        in_sync = live_in_isr(c, p, s.full[i]);
    char msg[160];
    if (s.nfull > REASSIGN_MAX_REPLICAS) {
        snprintf(msg, sizeof(msg),
                 "The new and the original replicas together are %d brokers, more than %d.",
                 s.nfull, REASSIGN_MAX_REPLICAS);
        item_fail(it, KAFKA_INVALID_REPLICA_ASSIGNMENT, msg);
    } else if (reassign_in_progress(p) && !in_sync) {
        item_fail(it, KAFKA_INVALID_REPLICA_ASSIGNMENT,
                  it->replicas ? "No replica kept by the new reassignment is a live in-sync "
                                 "replica: the replicas it drops hold the only copy."
                               : "No original replica is a live in-sync replica: the replicas "
                                 "being added hold the only copy; cancel once one is back.");
    }
    coord_replica_set_clear(&s);
}

/* Kafka's checks, before anything is written. */
static void validate_item(coordinator_t *c, coordinator_reassign_item_t *it,
                          const coordinator_reassign_item_t *earlier, size_t nearlier)
{
    assert(it->topic != NULL);
    assert(it->nreplicas >= 0);
    const md_topic_t *t = cluster_metadata_topic(c->md, it->topic, strlen(it->topic));
    if (!t || controller_topic_being_deleted(c, it->topic) || it->partition < 0 ||
        it->partition >= t->npartitions) {
        item_fail(it, KAFKA_UNKNOWN_TOPIC_OR_PARTITION,
                  t ? "The partition does not exist or its topic is being deleted."
                    : "The topic does not exist.");
        return;
    }
    for (size_t i = 0; i < nearlier; i++) {
        if (earlier[i].partition == it->partition && strcmp(earlier[i].topic, it->topic) == 0) {
            item_fail(it, KAFKA_INVALID_REQUEST, "The partition is listed twice.");
            return;
        }
    }
    const md_partition_t *p = &t->partitions[it->partition];
    if (!it->replicas) {
        if (!reassign_in_progress(p))
            item_fail(it, KAFKA_NO_REASSIGNMENT_IN_PROGRESS,
                      "No reassignment of the partition is in progress.");
        else
            validate_set(c, p, it);
        return;
    }
    if (it->nreplicas == 0 || it->nreplicas > COORD_MAX_REPLICAS) {
        item_fail(it, KAFKA_INVALID_REPLICA_ASSIGNMENT,
                  it->nreplicas == 0 ? "The replica list is empty." : "Too many replicas.");
        return;
    }
    char msg[160];
    for (int32_t i = 0; i < it->nreplicas; i++) {
        int32_t id = it->replicas[i];
        if (coord_contains(it->replicas, i, id)) {
            snprintf(msg, sizeof(msg), "Broker %d is listed twice.", id);
            item_fail(it, KAFKA_INVALID_REPLICA_ASSIGNMENT, msg);
            return;
        }
        if (!cluster_metadata_broker(c->md, id)) {
            snprintf(msg, sizeof(msg), "Broker %d is not a live broker of the cluster.", id);
            item_fail(it, KAFKA_INVALID_REPLICA_ASSIGNMENT, msg);
            return;
        }
    }
    validate_set(c, p, it);
}

/* ids[0..n) without those in minus, into out (room for n); returns the count. */
static int32_t ids_minus(const int32_t *ids, int32_t n, const int32_t *minus, int32_t nminus,
                         int32_t *out)
{
    int32_t k = 0;
    for (int32_t i = 0; i < n; i++)
        if (!coord_contains(minus, nminus, ids[i]))
            out[k++] = ids[i];
    assert(k <= n);
    return k;
}

void coord_reassign_to(const md_partition_t *p, const int32_t *target, int32_t ntarget,
                       coord_replica_set_t *out)
{
    assert(ntarget > 0);
    int32_t *orig = xmalloc((size_t)(p->nreplicas + 1) * sizeof(int32_t));
    int32_t norig = ids_minus(p->replicas, p->nreplicas, p->adding, p->nadding, orig);
    const size_t cap = (size_t)(ntarget + norig + 1);
    out->full = xmalloc(cap * sizeof(int32_t));
    out->nfull = 0;
    for (int32_t i = 0; i < ntarget; i++)
        if (!coord_contains(out->full, out->nfull, target[i]))
            out->full[out->nfull++] = target[i];
    for (int32_t i = 0; i < norig; i++)
        if (!coord_contains(out->full, out->nfull, orig[i]))
            out->full[out->nfull++] = orig[i];
    out->adding = xmalloc(cap * sizeof(int32_t));
    out->nadding = ids_minus(out->full, out->nfull, orig, norig, out->adding);
    out->removing = xmalloc(cap * sizeof(int32_t));
    out->nremoving = ids_minus(out->full, out->nfull, target, ntarget, out->removing);
    assert(out->nfull - out->nremoving == ntarget);
    free(orig);
}

void coord_replica_set_clear(coord_replica_set_t *s)
{
    free(s->full);
    free(s->adding);
    free(s->removing);
    memset(s, 0, sizeof(*s));
}

/* A copy of t's assignment as views into the cache, with every array
 * allocated so that partitions may be replaced; free with view_free. */
static zk_assignment_t view_of(const md_topic_t *t)
{
    const size_t n = (size_t)t->npartitions;
    zk_assignment_t a = {.npartitions = t->npartitions};
    memcpy(a.topic_id, t->id, 16);
    a.replicas = xcalloc(n, sizeof(int32_t *));
    a.nreplicas = xcalloc(n, sizeof(int32_t));
    a.adding = xcalloc(n, sizeof(int32_t *));
    a.nadding = xcalloc(n, sizeof(int32_t));
    a.removing = xcalloc(n, sizeof(int32_t *));
    a.nremoving = xcalloc(n, sizeof(int32_t));
    a.reassign_epoch = xcalloc(n, sizeof(int32_t));
    for (size_t p = 0; p < n; p++) {
        const md_partition_t *mp = &t->partitions[p];
        a.replicas[p] = mp->replicas;
        a.nreplicas[p] = mp->nreplicas;
        a.adding[p] = mp->adding;
        a.nadding[p] = mp->nadding;
        a.removing[p] = mp->removing;
        a.nremoving[p] = mp->nremoving;
        a.reassign_epoch[p] = mp->reassign_epoch;
    }
    return a;
}

/* Frees the arrays of a view (not the ids: views or the caller's). */
static void view_free(zk_assignment_t *a)
{
    free(a->replicas);
    free(a->nreplicas);
    free(a->adding);
    free(a->nadding);
    free(a->removing);
    free(a->nremoving);
    free(a->reassign_epoch);
    memset(a, 0, sizeof(*a));
}

static void alter_write_finish(alter_write_t *w)
{
    assert(*w->pending > 0);
    if (--*w->pending == 0) {
        void (*done)(void *) = w->done;
        void *arg = w->arg;
        free(w->pending);
        done(arg);
    }
    free(w->idx);
    free(w);
}

static void on_alter_written(coordinator_t *c, zk_call_t *call)
{
    alter_write_t *w = call->arg;
    int16_t error = KAFKA_NONE;
    const char *msg = "";
    if (c->stopping) {
        error = KAFKA_REQUEST_TIMED_OUT;
        msg = "The broker is shutting down.";
    } else if (call->rc != ZOK && zk_multi_failed_op(call) == 0) {
        controller_resign(c, "the controller epoch moved on (another broker was elected)");
        error = KAFKA_NOT_CONTROLLER;
        msg = "This broker is no longer the controller.";
    } else if (call->rc != ZOK) {
        error = KAFKA_REQUEST_TIMED_OUT;
        msg = "The topic changed meanwhile or ZooKeeper failed; retry.";
    }
    for (size_t i = 0; i < w->nidx; i++) {
        coordinator_reassign_item_t *it = &w->items[w->idx[i]];
        it->error = error;
        snprintf(it->message, sizeof(it->message), "%s", msg);
    }
    if (c->stopping) {
        alter_write_finish(w);
        return;
    }
    /* A written topic znode fires its watch, which brings it into the
     * cache; a refused one is read again. */
    if (error != KAFKA_NONE) {
        coord_request_topic_reload(c, w->items[w->idx[0]].topic);
        alter_write_finish(w);
        return;
    }
    /* The cache shows the write once it holds the topic znode at the
     * version the set made (op 1; op 0 is the fence): whichever reload
     * reads the topic again (its watch fired). */
    assert(call->nops == 2);
    w->written_version = call->stats[1].version;
    w->deadline_ms = coord_now_ms() + ALTER_CACHE_WAIT_MS;
    w->next = c->reassign_waiting;
    c->reassign_waiting = w;
}

/* True when c's cache shows w's write (or the topic is gone since). */
static bool cache_shows(const coordinator_t *c, const alter_write_t *w)
{
    const char *name = w->items[w->idx[0]].topic;
    const md_topic_t *t = c->md ? cluster_metadata_topic(c->md, name, strlen(name)) : NULL;
    if (!t || memcmp(t->id, w->topic_id, 16) != 0)
        return true;
    return controller_topic_zk(c, t)->assignment_version >= w->written_version;
}

void reassign_check_waiters(coordinator_t *c, bool stopping)
{
    alter_write_t *done = NULL, **pp = &c->reassign_waiting;
    const int64_t now = coord_now_ms();
    while (*pp) {
        alter_write_t *w = *pp;
        if (stopping || now >= w->deadline_ms || cache_shows(c, w)) {
            *pp = w->next;
            w->next = done;
            done = w;
        } else {
            pp = &w->next;
        }
    }
    /* Answered once the list is consistent: an answer may start requests. */
    while (done) {
        alter_write_t *w = done;
        done = w->next;
        assert(w->nidx > 0);
        alter_write_finish(w);
    }
}

/* Writes the topic znode of items[idx[0..nidx)] (all of one topic, valid). */
static void write_topic(coordinator_t *c, const md_topic_t *t, alter_write_t *w)
{
    zk_assignment_t a = view_of(t);
    coord_replica_set_t *sets = xcalloc(w->nidx, sizeof(*sets));
    for (size_t i = 0; i < w->nidx; i++) {
        const coordinator_reassign_item_t *it = &w->items[w->idx[i]];
        const md_partition_t *p = &t->partitions[it->partition];
        coord_replica_set_t *s = &sets[i];
        requested_set(p, it, s);
        const int32_t q = it->partition;
        a.replicas[q] = s->full;
        a.nreplicas[q] = s->nfull;
        a.adding[q] = s->adding;
        a.nadding[q] = s->nadding;
        a.removing[q] = s->removing;
        a.nremoving[q] = s->nremoving;
        a.reassign_epoch[q] = p->leader_epoch + 1;
        VLOG_INFO("coord", "%s-%d: reassignment %s: %d replica(s), adding %d, removing %d", t->name,
                  q, it->replicas ? "to a new replica set" : "cancelled", s->nfull, s->nadding,
                  s->nremoving);
    }
    size_t len;
    uint8_t *buf = znode_encode_assignment(&a, &len);
    char path[TOPIC_PATH_MAX];
    snprintf(path, sizeof(path), "/brokers/topics/%s", t->name);
    memcpy(w->topic_id, t->id, 16);
    zk_call_t *call = controller_fenced_call(c, on_alter_written, w);
    zk_multi_set(call, path, buf, len, controller_topic_zk(c, t)->assignment_version);
    call->always_complete = true;
    free(buf);
    for (size_t i = 0; i < w->nidx; i++)
        coord_replica_set_clear(&sets[i]);
    free(sets);
    view_free(&a);
    zk_multi_submit(c, call);
}

void coordinator_alter_reassignments(coordinator_t *c, coordinator_reassign_item_t *items,
                                     size_t nitems, void (*done)(void *arg), void *arg)
{
    assert(done != NULL);
    assert(nitems == 0 || items != NULL);
    for (size_t i = 0; i < nitems; i++) {
        items[i].error = KAFKA_NONE;
        items[i].message[0] = '\0';
        if (!c->is_controller || !c->md)
            item_fail(&items[i], KAFKA_NOT_CONTROLLER,
                      "This is not the correct controller for this cluster.");
        else
            validate_item(c, &items[i], items, i);
    }
    /* A guard count, so that writes completing at once cannot finish the
     * request while it is still being issued. */
    size_t *pending = xmalloc(sizeof(*pending));
    *pending = 1;
    bool *grouped = xcalloc(nitems + 1, sizeof(bool));
    for (size_t i = 0; i < nitems; i++) {
        if (grouped[i] || items[i].error != KAFKA_NONE)
            continue;
        alter_write_t *w = xcalloc(1, sizeof(*w));
        w->items = items;
        w->idx = xmalloc((nitems - i) * sizeof(size_t));
        for (size_t j = i; j < nitems; j++) {
            if (!grouped[j] && items[j].error == KAFKA_NONE &&
                strcmp(items[j].topic, items[i].topic) == 0) {
                grouped[j] = true;
                w->idx[w->nidx++] = j;
            }
        }
        w->pending = pending;
        w->done = done;
        w->arg = arg;
        ++*pending;
        const md_topic_t *t = cluster_metadata_topic(c->md, items[i].topic, strlen(items[i].topic));
        assert(t != NULL && w->nidx > 0);
        write_topic(c, t, w);
    }
    free(grouped);
    if (--*pending == 0) {
        free(pending);
        done(arg);
    }
}

/* ---- the controller's decisions after each reload ---- */

/* The leader for replica set ids: the current one when it is among them
 * and live, else the first of them live, in the ISR and not shutting down,
 * else -1. */
static int32_t leader_within(coordinator_t *c, const md_partition_t *p, const int32_t *ids,
                             int32_t n)
{
    if (p->leader >= 0 && coord_contains(ids, n, p->leader) && coord_broker_live(c, p->leader))
        return p->leader;
    for (int32_t i = 0; i < n; i++)
        if (live_in_isr(c, p, ids[i]) && controlled_shutdown_eligible(c, ids[i]))
            return ids[i];
    return -1;
}

/* p's next state for replica set ids: leader within them, ISR ∩ ids, a new
 * epoch. next->isr is xmalloc'd. */
static void state_within(coordinator_t *c, const md_partition_t *p, const int32_t *ids, int32_t n,
                         zk_partition_state_t *next)
{
    next->leader = leader_within(c, p, ids, n);
    next->leader_epoch = p->leader_epoch + 1;
    next->controller_epoch = c->my_controller_epoch;
    next->isr = xmalloc((size_t)(p->nisr + 1) * sizeof(int32_t));
    next->nisr = 0;
    for (int32_t i = 0; i < p->nisr; i++)
        if (coord_contains(ids, n, p->isr[i]))
            next->isr[next->nisr++] = p->isr[i];
    if (next->leader >= 0 && !coord_contains(next->isr, next->nisr, next->leader))
        next->isr[next->nisr++] = next->leader; /* a live replica kept as leader */
    if (next->nisr == 0) {
        /* Offline: keep the last ISR, as elect_leaders does, so that its
         * members (and only they) can lead again cleanly; never empty. */
        for (int32_t i = 0; i < p->nisr; i++)
            next->isr[next->nisr++] = p->isr[i];
    }
    assert(next->nisr <= p->nisr + 1);
}

/* The completion of the controller's own reassignment writes (counted in
 * controller_writes_inflight). */
static void on_reassign_write(coordinator_t *c, zk_call_t *call)
{
    assert(c->controller_writes_inflight > 0);
    c->controller_writes_inflight--;
    if (call->rc != ZOK && zk_multi_failed_op(call) == 0)
        controller_resign(c, "the controller epoch moved on (another broker was elected)");
    else if (call->rc != ZOK)
        VLOG_INFO("coord", "reassignment completion refused (%s at op %d); re-reading the state",
                  zerror(call->rc), zk_multi_failed_op(call));
    /* A write that succeeded fires the watches of what it changed; the
     * partial reload only makes the controller decide again (as
     * on_controller_write). */
    if (call->rc == ZOK)
        coord_request_partial_reload(c);
    else
        coord_schedule_retry(c);
}

/* True when the partition's whole target (replicas minus removing) is in
 * the ISR on live brokers. */
static bool target_in_sync(coordinator_t *c, const md_partition_t *p)
{
    for (int32_t i = 0; i < p->nreplicas; i++) {
        int32_t id = p->replicas[i];
        if (!coord_contains(p->removing, p->nremoving, id) && !live_in_isr(c, p, id))
            return false;
    }
    return true;
}

/* Completes the reassignments of t whose target is in sync: one fenced
 * multi with the topic znode and their state znodes. */
static void complete_topic(coordinator_t *c, const md_topic_t *t, const bool *ready)
{
    const topic_zk_t *z = controller_topic_zk(c, t);
    zk_assignment_t a = view_of(t);
    int32_t **targets = xcalloc((size_t)t->npartitions, sizeof(int32_t *));
    for (int32_t q = 0; q < t->npartitions; q++) {
        if (!ready[q])
            continue;
        const md_partition_t *p = &t->partitions[q];
        targets[q] = xmalloc((size_t)p->nreplicas * sizeof(int32_t));
        a.replicas[q] = targets[q];
        a.nreplicas[q] =
            ids_minus(p->replicas, p->nreplicas, p->removing, p->nremoving, targets[q]);
        assert(a.nreplicas[q] > 0);
        a.nadding[q] = a.nremoving[q] = 0;
    }
    /* The topic znode first: brokers get its watch event before the
     * states', so that a reload reading only the first has the new
     * replica set before it sees the new epoch. */
    zk_call_t *call = controller_fenced_call(c, on_reassign_write, NULL);
    char path[TOPIC_PATH_MAX];
    size_t len;
    uint8_t *buf = znode_encode_assignment(&a, &len);
    snprintf(path, sizeof(path), "/brokers/topics/%s", t->name);
    zk_multi_set(call, path, buf, len, z->assignment_version);
    free(buf);
    for (int32_t q = 0; q < t->npartitions; q++) {
        if (!ready[q])
            continue;
        const md_partition_t *p = &t->partitions[q];
        zk_partition_state_t next;
        state_within(c, p, targets[q], a.nreplicas[q], &next);
        buf = znode_encode_partition_state(&next, &len);
        snprintf(path, sizeof(path), "/brokers/topics/%s/partitions/%d/state", t->name, q);
        zk_multi_set(call, path, buf, len, z->state_version[q]);
        free(buf);
        VLOG_INFO("coord", "%s-%d: reassignment complete: %d replica(s), leader %d -> %d, epoch %d",
                  t->name, q, a.nreplicas[q], p->leader, next.leader, next.leader_epoch);
        zk_partition_state_clear(&next);
    }
    for (int32_t q = 0; q < t->npartitions; q++)
        free(targets[q]);
    free(targets);
    view_free(&a);
    controller_submit_write(c, call);
}

/* Decides for one topic; true when it submitted a write. */
static bool act_on_topic(coordinator_t *c, const md_topic_t *t, size_t ti)
{
    const topic_zk_t *z = &c->md_zk[ti];
    bool *ready = NULL;
    bool wrote = false;
    for (int32_t q = 0; q < t->npartitions; q++) {
        const md_partition_t *p = &t->partitions[q];
        if (z->state_version[q] < 0)
            continue; /* elect_leaders recreates it first */
        if (p->leader_epoch < p->reassign_epoch) {
            /* (b) every replica, the new ones too, learns the set. */
            zk_partition_state_t next;
            state_within(c, p, p->replicas, p->nreplicas, &next);
            VLOG_INFO("coord", "%s-%d: new replica set: leader %d, leader epoch %d", t->name, q,
                      next.leader, next.leader_epoch);
            controller_write_partition_state(c, t, q, &next);
            zk_partition_state_clear(&next);
            wrote = true;
            continue;
        }
        if (reassign_in_progress(p) && target_in_sync(c, p)) {
            if (!ready)
                ready = xcalloc((size_t)t->npartitions, sizeof(bool));
            ready[q] = true;
        }
    }
    /* The completion writes states too: not with a bump of the same
     * topic in flight (it would fail on the version). */
    if (ready && !wrote) {
        complete_topic(c, t, ready);
        wrote = true;
    }
    free(ready);
    return wrote;
}

/* ---- /admin/reassign_partitions (Kafka's ZooKeeper-mode request) ---- */

#define REQUEST_PATH "/admin/reassign_partitions"

/* The entries of the request znode being started, as a request of our
 * own: owned here, freed when it is answered. */
typedef struct zk_request_run {
    coordinator_reassign_item_t *items;
    zk_reassign_target_t *targets; /* the items' topics and replicas */
    size_t n;
} zk_request_run_t;

static void zk_request_run_done(void *arg)
{
    zk_request_run_t *run = arg;
    for (size_t i = 0; i < run->n; i++)
        if (run->items[i].error != KAFKA_NONE)
            VLOG_WARN("coord", "%s: %s-%d not started: %s (%s)", REQUEST_PATH, run->items[i].topic,
                      run->items[i].partition, kafka_error_name(run->items[i].error),
                      run->items[i].message);
    zk_reassign_targets_free(run->targets, run->n);
    free(run->items);
    free(run);
}

/* What the controller does with one entry of the request znode. */
typedef enum { ENTRY_DROP, ENTRY_WAIT, ENTRY_START } entry_fate_t;

static entry_fate_t entry_fate(coordinator_t *c, const zk_reassign_target_t *e)
{
    coordinator_reassign_item_t probe = {.topic = e->topic,
                                         .partition = e->partition,
                                         .replicas = e->replicas,
                                         .nreplicas = e->nreplicas};
    validate_item(c, &probe, NULL, 0);
    if (probe.error != KAFKA_NONE) {
        VLOG_WARN("coord", "%s: %s-%d dropped: %s (%s)", REQUEST_PATH, e->topic, e->partition,
                  kafka_error_name(probe.error), probe.message);
        return ENTRY_DROP;
    }
    const md_topic_t *t = cluster_metadata_topic(c->md, e->topic, strlen(e->topic));
    const md_partition_t *p = &t->partitions[e->partition];
    int32_t *target = xmalloc((size_t)p->nreplicas * sizeof(int32_t));
    int32_t n = ids_minus(p->replicas, p->nreplicas, p->removing, p->nremoving, target);
    bool same = n == e->nreplicas && memcmp(target, e->replicas, (size_t)n * sizeof(int32_t)) == 0;
    free(target);
    if (same)
        return reassign_in_progress(p) ? ENTRY_WAIT : ENTRY_DROP; /* dropped: done */
    if (reassign_in_progress(p)) {
        /* Another reassignment of it runs (an API request overrides the
         * znode's, as Kafka's removes the partition from the znode). */
        VLOG_WARN("coord", "%s: %s-%d dropped: another reassignment of it is in progress",
                  REQUEST_PATH, e->topic, e->partition);
        return ENTRY_DROP;
    }
    return ENTRY_START;
}

/* Acts on the request znode's entries on the cache just reloaded: starts
 * the new ones, rewrites the znode without the finished and invalid ones
 * (deletes it once none is left). */
static void act_on_request(coordinator_t *c, zk_reassign_target_t *entries, size_t n,
                           int32_t version)
{
    zk_request_run_t *run = xcalloc(1, sizeof(*run));
    run->items = xcalloc(n + 1, sizeof(*run->items));
    run->targets = xcalloc(n + 1, sizeof(*run->targets));
    zk_reassign_target_t *kept = xcalloc(n + 1, sizeof(*kept));
    size_t nkept = 0;
    for (size_t i = 0; i < n; i++) {
        entry_fate_t fate = entry_fate(c, &entries[i]);
        if (fate != ENTRY_DROP)
            kept[nkept++] = entries[i]; /* views into entries */
        if (fate != ENTRY_START)
            continue;
        zk_reassign_target_t *copy = &run->targets[run->n];
        copy->topic = xstrdup(entries[i].topic);
        copy->partition = entries[i].partition;
        copy->replicas = coord_copy_ids(entries[i].replicas, entries[i].nreplicas);
        copy->nreplicas = entries[i].nreplicas;
        run->items[run->n] = (coordinator_reassign_item_t){.topic = copy->topic,
                                                           .partition = copy->partition,
                                                           .replicas = copy->replicas,
                                                           .nreplicas = copy->nreplicas};
        run->n++;
    }
    if (nkept < n) {
        zk_call_t *call = controller_fenced_call(c, on_reassign_write, NULL);
        if (nkept == 0) {
            zk_multi_delete(call, REQUEST_PATH, version);
        } else {
            size_t len;
            uint8_t *buf = znode_encode_reassign_request(kept, nkept, &len);
            zk_multi_set(call, REQUEST_PATH, buf, len, version);
            free(buf);
        }
        VLOG_INFO("coord", "%s: %zu entr%s left", REQUEST_PATH, nkept, nkept == 1 ? "y" : "ies");
        controller_submit_write(c, call);
    }
    free(kept);
    if (run->n > 0)
        coordinator_alter_reassignments(c, run->items, run->n, zk_request_run_done, run);
    else
        zk_request_run_done(run);
}

static bool request_still_current(const coordinator_t *c, const zk_call_t *call)
{
    return !c->stopping && c->is_controller && c->md && call->session_gen == c->session_gen;
}

static void on_request_data(coordinator_t *c, zk_call_t *call)
{
    assert(c->reassign_reading);
    c->reassign_reading = false;
    if (!request_still_current(c, call) || call->rc != ZOK)
        return; /* gone meanwhile: its watch (or the next election) reloads */
    zk_reassign_target_t *entries;
    size_t n;
    char err[160];
    if (znode_decode_reassign_request((const uint8_t *)call->data, (size_t)call->data_len, &entries,
                                      &n, err, sizeof(err)) != 0) {
        /* Kafka deletes a request it cannot parse; so do we. */
        VLOG_ERR("coord", "%s: %s; request deleted", REQUEST_PATH, err);
        entries = NULL;
        n = 0;
    }
    if (c->controller_writes_inflight == 0)
        act_on_request(c, entries, n, call->stat.version);
    /* else: their completion reloads and reads it again */
    zk_reassign_targets_free(entries, n);
}

static void on_request_exists(coordinator_t *c, zk_call_t *call)
{
    assert(c->reassign_reading);
    if (!request_still_current(c, call) || call->rc != ZOK) {
        c->reassign_reading = false; /* absent: the watch set tells us of its creation */
        return;
    }
    zk_get(c, zk_call_new(c, on_request_data, NULL, REQUEST_PATH), true);
}

void reassign_act(coordinator_t *c)
{
    assert(c->is_controller);
    assert(c->md != NULL);
    if (c->controller_writes_inflight > 0)
        return; /* their completion reloads and brings us back */
    for (size_t i = 0; i < c->md->ntopics; i++) {
        const md_topic_t *t = &c->md->topics[i];
        if (controller_topic_being_deleted(c, t->name))
            continue;
        act_on_topic(c, t, i);
    }
    /* The request znode is read only by the controller, after each reload
     * (its watch brings a reload when it is created or changed). */
    if (!c->reassign_reading && c->controller_writes_inflight == 0) {
        c->reassign_reading = true;
        zk_exists(c, zk_call_new(c, on_request_exists, NULL, REQUEST_PATH), true);
    }
}
