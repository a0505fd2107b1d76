/* Leader elections on demand (Kafka's ElectLeaders) and the automatic
 * leader rebalance (auto.leader.rebalance.enable), both run by the
 * controller.
 *
 * A request's partitions are decided on the controller's cache and written
 * in batches (controller_write_partition_states); the request is answered
 * once this broker's cache shows every new leader, as Kafka's
 * DelayedElectLeader waits for its metadata cache. A batch refused on a
 * stale version is decided again on the next fresh state (another write
 * came first: an ISR change, a leader lost); a fenced one answers
 * NOT_CONTROLLER. Decisions are never kept across reloads: the controller
 * re-decides on fresh state, as controller_act does.
 *
 * leader_election_check runs after every reload and on the coordinator's
 * 1 s tick (controller_check_waiters): it completes requests, re-decides
 * refused ones, times them out, and runs the rebalance check when due. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord_state.h"
#include "kafka_errors.h"
#include "vlog.h"
#include "xalloc.h"

#define ELECTION_DEFAULT_TIMEOUT_MS 30000
/* Kafka's default interval of the rebalance check, and its first check
 * after a broker becomes the controller. */
#define REBALANCE_DEFAULT_INTERVAL_S 300
#define REBALANCE_DEFAULT_PERCENTAGE 10
#define REBALANCE_FIRST_CHECK_MS     5000
/* After a refused rebalance write: try again soon, not an interval later. */
#define REBALANCE_RETRY_MS 1000

typedef enum item_state {
    ITEM_DONE,    /* error (and message) final */
    ITEM_DECIDE,  /* to decide on the next fresh state */
    ITEM_WRITING, /* its batch is in flight */
    ITEM_WAITING, /* written: waiting for the cache to show expect_leader */
} item_state_t;

typedef struct election_item {
    item_state_t state;
    size_t write_index; /* ITEM_WRITING: its write in the round's batches */
    int32_t expect_leader;
    int32_t expect_epoch;
} election_item_t;

/* One coordinator_elect_leaders call. Answered (done called) once every
 * item is ITEM_DONE or at its deadline; freed once answered and no batch
 * of it is in flight (a batch's completion finds it through its arg). */
typedef struct election_request {
    struct election_request *next;
    coordinator_election_type_t type;
    coordinator_election_t *elections; /* the caller's; not touched once answered */
    election_item_t *items;            /* owned, parallel to elections */
    size_t n;
    int64_t deadline_ms;
    coordinator_elections_done_fn done;
    void *arg;
    bool answered;
    int batches_inflight;
    uint64_t decided_at_reload; /* c->reloads_done when last decided */
} election_request_t;

typedef struct leader_elections {
    election_request_t *requests;
    bool was_controller;
    int64_t next_rebalance_ms;
} leader_elections_t;

/* ---- Pure decisions ---- */

int16_t coord_decide_election(const md_partition_t *p, coordinator_election_type_t type,
                              broker_live_fn live, void *live_arg, zk_partition_state_t *next)
{
    assert(p != NULL && next != NULL);
    assert(type == COORDINATOR_ELECTION_PREFERRED || type == COORDINATOR_ELECTION_UNCLEAN);
    int32_t leader;
    int32_t *isr = xmalloc((size_t)(p->nisr + 1) * sizeof(int32_t));
    int32_t nisr = 0;
    if (type == COORDINATOR_ELECTION_PREFERRED) {
        const int32_t preferred = p->nreplicas > 0 ? p->replicas[0] : -1;
        if (preferred >= 0 && p->leader == preferred) {
            free(isr);
            return KAFKA_ELECTION_NOT_NEEDED;
        }
        if (preferred < 0 || !live(live_arg, preferred) ||
            !coord_contains(p->isr, p->nisr, preferred)) {
            free(isr);
            return KAFKA_PREFERRED_LEADER_NOT_AVAILABLE;
        }
        leader = preferred;
        for (int32_t i = 0; i < p->nisr; i++)
            isr[nisr++] = p->isr[i];
    } else {
        if (p->leader >= 0 && live(live_arg, p->leader)) {
            free(isr);
            return KAFKA_ELECTION_NOT_NEEDED;
        }
        bool unclean_used;
        leader = coord_elect_leader(p->replicas, p->nreplicas, p->isr, p->nisr, live, live_arg,
                                    true, &unclean_used);
        if (leader < 0) {
            free(isr);
            return KAFKA_ELIGIBLE_LEADERS_NOT_AVAILABLE;
        }
        if (unclean_used) {
            isr[nisr++] = leader;
        } else {
            for (int32_t i = 0; i < p->nisr; i++)
                if (p->isr[i] == leader || live(live_arg, p->isr[i]))
                    isr[nisr++] = p->isr[i];
        }
    }
    assert(nisr >= 1 && nisr <= p->nisr + 1);
    assert(coord_contains(isr, nisr, leader));
    next->leader = leader;
    next->leader_epoch = p->leader_epoch + 1;
    next->isr = isr;
    next->nisr = nisr;
    return KAFKA_NONE;
}

/* Per-broker counts of the rebalance check. */
typedef struct broker_share {
    int32_t broker;
    int32_t preferred; /* partitions whose first replica it is */
    int32_t led_by_other;
} broker_share_t;

static broker_share_t *share_of(broker_share_t **shares, size_t *n, size_t *cap, int32_t broker)
{
    for (size_t i = 0; i < *n; i++)
        if ((*shares)[i].broker == broker)
            return &(*shares)[i];
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        *shares = xrealloc(*shares, *cap * sizeof(**shares));
    }
    broker_share_t *s = &(*shares)[(*n)++];
    *s = (broker_share_t){.broker = broker};
    return s;
}

coord_tp_t *coord_rebalance_candidates(const cluster_metadata_t *md, const bool *skip_topic,
                                       int32_t percentage, broker_live_fn live, void *live_arg,
                                       size_t *n)
{
    assert(md != NULL && n != NULL);
    assert(percentage >= 0 && percentage <= 100);
    broker_share_t *shares = NULL;
    size_t nshares = 0, cap = 0;
    for (size_t t = 0; t < md->ntopics; t++) {
        if (skip_topic && skip_topic[t])
            continue;
        for (int32_t p = 0; p < md->topics[t].npartitions; p++) {
            const md_partition_t *mp = &md->topics[t].partitions[p];
            if (mp->nreplicas == 0)
                continue;
            broker_share_t *s = share_of(&shares, &nshares, &cap, mp->replicas[0]);
            s->preferred++;
            s->led_by_other += mp->leader != mp->replicas[0];
        }
    }
    coord_tp_t *out = NULL;
    size_t nout = 0, outcap = 0;
    for (size_t t = 0; t < md->ntopics; t++) {
        if (skip_topic && skip_topic[t])
            continue;
        for (int32_t p = 0; p < md->topics[t].npartitions; p++) {
            const md_partition_t *mp = &md->topics[t].partitions[p];
            if (mp->nreplicas == 0 || mp->leader == mp->replicas[0])
                continue;
            const broker_share_t *s = share_of(&shares, &nshares, &cap, mp->replicas[0]);
            /* Kafka: led_by_other / preferred > percentage / 100. */
            if ((int64_t)s->led_by_other * 100 <= (int64_t)percentage * s->preferred)
                continue;
            if (!live(live_arg, mp->replicas[0]) ||
                !coord_contains(mp->isr, mp->nisr, mp->replicas[0]))
                continue;
            if (nout == outcap) {
                outcap = outcap ? outcap * 2 : 16;
                out = xrealloc(out, outcap * sizeof(*out));
            }
            out[nout++] = (coord_tp_t){.topic = t, .partition = p};
        }
    }
    free(shares);
    *n = nout;
    return out;
}

/* ---- Requests ---- */

static leader_elections_t *elections_of(coordinator_t *c)
{
    if (c->elections == NULL)
        c->elections = xcalloc(1, sizeof(leader_elections_t));
    return c->elections;
}

static void item_finish(election_request_t *r, size_t i, int16_t error, const char *message)
{
    assert(i < r->n && !r->answered);
    r->items[i].state = ITEM_DONE;
    r->elections[i].error = error;
    r->elections[i].message = message;
}

static const char *message_for(int16_t error)
{
    switch (error) {
    case KAFKA_PREFERRED_LEADER_NOT_AVAILABLE:
        return "The preferred replica is not live or not in the ISR";
    case KAFKA_ELIGIBLE_LEADERS_NOT_AVAILABLE:
        return "No live replica can lead the partition";
    default:
        return NULL;
    }
}

static void on_batch_done(coordinator_t *c, void *arg, size_t first, size_t count, bool written,
                          bool fenced)
{
    election_request_t *r = arg;
    assert(r->batches_inflight > 0);
    r->batches_inflight--;
    for (size_t i = 0; i < r->n && !r->answered; i++) {
        election_item_t *it = &r->items[i];
        if (it->state != ITEM_WRITING || it->write_index < first ||
            it->write_index >= first + count)
            continue;
        if (written)
            it->state = ITEM_WAITING;
        else if (fenced)
            item_finish(r, i, KAFKA_NOT_CONTROLLER, "This broker is no longer the controller");
        else
            it->state = ITEM_DECIDE; /* decided on a stale state: decide again */
    }
    leader_election_check(c, false);
}

/* An item to decide, in the order that puts repeats of a partition side
 * by side. */
typedef struct decide_key {
    const char *topic;
    int32_t partition;
    size_t item;
} decide_key_t;

static int compare_keys(const void *a, const void *b)
{
    const decide_key_t *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);
    if (c != 0)
        return c;
    if (x->partition != y->partition)
        return (x->partition > y->partition) - (x->partition < y->partition);
    return (x->item > y->item) - (x->item < y->item);
}

static bool same_partition(const decide_key_t *a, const decide_key_t *b)
{
    return a->partition == b->partition && strcmp(a->topic, b->topic) == 0;
}

static void decide_and_write(coordinator_t *c, election_request_t *r)
{
    assert(c->is_controller);
    assert(r->batches_inflight == 0 && !r->answered);
    decide_key_t *keys = xcalloc(r->n + 1, sizeof(*keys));
    size_t nkeys = 0;
    for (size_t i = 0; i < r->n; i++)
        if (r->items[i].state == ITEM_DECIDE)
            keys[nkeys++] = (decide_key_t){r->elections[i].topic, r->elections[i].partition, i};
    qsort(keys, nkeys, sizeof(*keys), compare_keys);
    controller_state_write_t *w = xcalloc(nkeys + 1, sizeof(*w));
    size_t nw = 0;
    for (size_t k = 0; k < nkeys; k++) {
        const size_t i = keys[k].item;
        election_item_t *it = &r->items[i];
        const coordinator_election_t *e = &r->elections[i];
        const md_topic_t *t = cluster_metadata_topic(c->md, e->topic, strlen(e->topic));
        if (!t || e->partition < 0 || e->partition >= t->npartitions) {
            item_finish(r, i, KAFKA_UNKNOWN_TOPIC_OR_PARTITION, "The partition does not exist.");
            continue;
        }
        if (controller_topic_being_deleted(c, t->name)) {
            item_finish(r, i, KAFKA_INVALID_TOPIC_EXCEPTION, "The topic is being deleted");
            continue;
        }
        if (controller_topic_zk(c, t)->state_version[e->partition] < 0) {
            /* Not read yet (or missing): a version of -1 would write over
             * whatever is there. Decided once a reload has read it. */
            coord_request_state_reload(c, t->name, e->partition);
            continue;
        }
        const bool repeat = k > 0 && same_partition(&keys[k - 1], &keys[k]);
        if (repeat) { /* answered as the first naming of it is */
            const election_item_t *first = &r->items[keys[k - 1].item];
            if (first->state == ITEM_DONE) {
                item_finish(r, i, r->elections[keys[k - 1].item].error,
                            r->elections[keys[k - 1].item].message);
            } else {
                *it = *first;
            }
            continue;
        }
        const md_partition_t *p = &t->partitions[e->partition];
        /* Live: a live broker that can open the partition's log. */
        offline_replicas_ctx_t live = {c, t->name, e->partition};
        zk_partition_state_t next;
        int16_t error =
            coord_decide_election(p, r->type, controlled_shutdown_electable, &live, &next);
        if (error != KAFKA_NONE) {
            item_finish(r, i, error, message_for(error));
            continue;
        }
        next.controller_epoch = c->my_controller_epoch;
        VLOG_INFO("coord", "%s-%d: %s election, leader %d -> %d, leader epoch %d", t->name,
                  e->partition, r->type == COORDINATOR_ELECTION_PREFERRED ? "preferred" : "unclean",
                  p->leader, next.leader, next.leader_epoch);
        it->state = ITEM_WRITING;
        it->write_index = nw;
        it->expect_leader = next.leader;
        it->expect_epoch = next.leader_epoch;
        w[nw++] = (controller_state_write_t){.topic = t, .partition = e->partition, .next = next};
    }
    free(keys);
    r->decided_at_reload = c->reloads_done;
    if (nw > 0)
        r->batches_inflight += (int)controller_write_partition_states(c, w, nw, on_batch_done, r);
    for (size_t k = 0; k < nw; k++)
        zk_partition_state_clear(&w[k].next);
    free(w);
}

static void request_free(election_request_t *r)
{
    free(r->items);
    free(r);
}

/* True when c's cache is the state ZooKeeper holds as far as this broker
 * knows: no reload pending or running, no controller write in flight. */
static bool state_settled(const coordinator_t *c)
{
    return c->md != NULL && c->load == NULL && !c->reload_dirty &&
           c->controller_writes_inflight == 0;
}

/* Moves r's items on; true when every one is ITEM_DONE. */
static bool request_progress(coordinator_t *c, election_request_t *r, int64_t now)
{
    bool all_done = true, to_decide = false;
    for (size_t i = 0; i < r->n; i++) {
        election_item_t *it = &r->items[i];
        if (it->state == ITEM_WAITING) {
            const coordinator_election_t *e = &r->elections[i];
            const md_topic_t *t = cluster_metadata_topic(c->md, e->topic, strlen(e->topic));
            const md_partition_t *p =
                t && e->partition < t->npartitions ? &t->partitions[e->partition] : NULL;
            if (!p)
                item_finish(r, i, KAFKA_UNKNOWN_TOPIC_OR_PARTITION,
                            "The partition does not exist.");
            else if (p->leader == it->expect_leader && p->leader_epoch >= it->expect_epoch)
                item_finish(r, i, KAFKA_NONE, NULL);
        } else if (it->state == ITEM_DECIDE && !c->is_controller) {
            item_finish(r, i, KAFKA_NOT_CONTROLLER, "This broker is no longer the controller");
        }
        to_decide |= it->state == ITEM_DECIDE;
        all_done &= it->state == ITEM_DONE;
    }
    if (!all_done && now >= r->deadline_ms) {
        for (size_t i = 0; i < r->n; i++)
            if (r->items[i].state != ITEM_DONE)
                item_finish(r, i, KAFKA_REQUEST_TIMED_OUT,
                            "The election did not complete within the request's timeout; it may "
                            "still complete");
        return true;
    }
    /* A refused batch is decided again once the state was re-read. */
    if (to_decide && r->batches_inflight == 0 && state_settled(c) && c->is_controller &&
        c->reloads_done > r->decided_at_reload)
        decide_and_write(c, r);
    for (size_t i = 0; i < r->n; i++)
        if (r->items[i].state != ITEM_DONE)
            return false;
    return true;
}

/* ---- Automatic rebalance ---- */

static void on_rebalance_written(coordinator_t *c, void *arg, size_t first, size_t count,
                                 bool written, bool fenced)
{
    leader_elections_t *le = arg;
    (void)first;
    (void)fenced;
    assert(le == c->elections && count > 0);
    if (!written) { /* decided on a stale state: check again soon */
        int64_t soon = coord_now_ms() + REBALANCE_RETRY_MS;
        if (le->next_rebalance_ms > soon)
            le->next_rebalance_ms = soon;
    }
}

static void rebalance(coordinator_t *c, leader_elections_t *le)
{
    assert(c->is_controller && state_settled(c));
    const int32_t pct = c->cfg.leader_imbalance_per_broker_percentage;
    bool *skip = xcalloc(c->md->ntopics + 1, sizeof(bool));
    for (size_t t = 0; t < c->md->ntopics; t++)
        skip[t] = controller_topic_being_deleted(c, c->md->topics[t].name);
    size_t n;
    coord_tp_t *tps =
        coord_rebalance_candidates(c->md, skip, pct, controlled_shutdown_eligible, c, &n);
    free(skip);
    controller_state_write_t *w = xcalloc(n + 1, sizeof(*w));
    size_t nw = 0;
    for (size_t i = 0; i < n; i++) {
        const md_topic_t *t = &c->md->topics[tps[i].topic];
        const md_partition_t *p = &t->partitions[tps[i].partition];
        if (controller_topic_zk(c, t)->state_version[tps[i].partition] < 0)
            continue; /* not read yet: never an unconditional write */
        if (reassign_in_progress(p))
            continue; /* left alone, as Kafka's rebalance does */
        offline_replicas_ctx_t live = {c, t->name, tps[i].partition};
        zk_partition_state_t next;
        if (coord_decide_election(p, COORDINATOR_ELECTION_PREFERRED, controlled_shutdown_electable,
                                  &live, &next) != KAFKA_NONE)
            continue;
        next.controller_epoch = c->my_controller_epoch;
        w[nw++] =
            (controller_state_write_t){.topic = t, .partition = tps[i].partition, .next = next};
    }
    if (nw > 0) {
        VLOG_INFO("coord", "leader rebalance: %zu partition(s) back to their preferred replica",
                  nw);
        controller_write_partition_states(c, w, nw, on_rebalance_written, le);
    }
    for (size_t k = 0; k < nw; k++)
        zk_partition_state_clear(&w[k].next);
    free(w);
    free(tps);
}

static int64_t rebalance_interval_ms(const coordinator_t *c)
{
    int32_t s = c->cfg.leader_imbalance_check_interval_s > 0
                    ? c->cfg.leader_imbalance_check_interval_s
                    : REBALANCE_DEFAULT_INTERVAL_S;
    return (int64_t)s * 1000;
}

static void maybe_rebalance(coordinator_t *c, leader_elections_t *le, int64_t now)
{
    if (c->is_controller && !le->was_controller) {
        int64_t first = rebalance_interval_ms(c);
        le->next_rebalance_ms =
            now + (first < REBALANCE_FIRST_CHECK_MS ? first : REBALANCE_FIRST_CHECK_MS);
    }
    le->was_controller = c->is_controller;
    if (!c->is_controller || !c->cfg.auto_leader_rebalance || now < le->next_rebalance_ms ||
        !state_settled(c))
        return;
    le->next_rebalance_ms = now + rebalance_interval_ms(c);
    rebalance(c, le);
}

/* ---- The coordinator's hooks ---- */

void leader_election_check(coordinator_t *c, bool stopping)
{
    leader_elections_t *le = c->elections;
    if (stopping) {
        if (le == NULL)
            return;
        c->elections = NULL;
        while (le->requests) {
            election_request_t *r = le->requests;
            le->requests = r->next;
            if (!r->answered) {
                for (size_t i = 0; i < r->n; i++)
                    if (r->items[i].state != ITEM_DONE)
                        item_finish(r, i, KAFKA_REQUEST_TIMED_OUT, "The broker is shutting down");
                r->answered = true;
                r->done(r->arg);
            }
            request_free(r);
        }
        free(le);
        return;
    }
    le = elections_of(c);
    const int64_t now = coord_now_ms();
    maybe_rebalance(c, le, now);
    /* Answered requests leave the list first, their callbacks run after:
     * a callback may start another request. */
    election_request_t *answer = NULL, **pp = &le->requests;
    while (*pp) {
        election_request_t *r = *pp;
        if (!r->answered && request_progress(c, r, now)) {
            r->answered = true;
            *pp = r->next;
            r->next = answer;
            answer = r;
        } else if (r->answered && r->batches_inflight == 0) {
            *pp = r->next;
            request_free(r);
        } else {
            pp = &r->next;
        }
    }
    while (answer) {
        election_request_t *r = answer;
        answer = r->next;
        r->done(r->arg);
        if (r->batches_inflight > 0) { /* freed once its batches completed */
            r->next = le->requests;
            le->requests = r;
        } else {
            request_free(r);
        }
    }
}

void coordinator_elect_leaders(coordinator_t *c, coordinator_election_type_t type,
                               coordinator_election_t *elections, size_t n, int32_t timeout_ms,
                               coordinator_elections_done_fn done, void *arg)
{
    assert(elections != NULL || n == 0);
    assert(done != NULL && n <= COORDINATOR_MAX_ELECTIONS);
    for (size_t i = 0; i < n; i++) {
        elections[i].error = KAFKA_NONE;
        elections[i].message = NULL;
    }
    if (!c->is_controller || c->md == NULL) {
        for (size_t i = 0; i < n; i++) {
            elections[i].error = KAFKA_NOT_CONTROLLER;
            elections[i].message = "This is not the correct controller for this cluster";
        }
        done(arg);
        return;
    }
    leader_elections_t *le = elections_of(c);
    election_request_t *r = xcalloc(1, sizeof(*r));
    r->type = type;
    r->elections = elections;
    r->items = xcalloc(n + 1, sizeof(*r->items));
    r->n = n;
    for (size_t i = 0; i < n; i++)
        r->items[i].state = ITEM_DECIDE;
    r->deadline_ms = coord_now_ms() + (timeout_ms > 0 ? timeout_ms : ELECTION_DEFAULT_TIMEOUT_MS);
    r->done = done;
    r->arg = arg;
    decide_and_write(c, r);
    bool all_done = true;
    for (size_t i = 0; i < n; i++)
        all_done &= r->items[i].state == ITEM_DONE;
    if (all_done) {
        assert(r->batches_inflight == 0);
        r->answered = true;
        done(arg);
        request_free(r);
        return;
    }
    r->next = le->requests;
    le->requests = r;
}
