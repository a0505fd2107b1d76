/* Offline replicas: partitions a live broker holds a replica of but cannot
 * open the log of (EIO, EACCES, ENOTDIR, EMFILE...).
 *
 * Broker side: the replica manager hands its whole set to
 * coordinator_report_offline_replicas; it goes to the controller as
 * RPC_OFFLINE_REPLICAS once per controller (a new controller starts with an
 * empty table) and again on each change, retried every second until the
 * current controller acknowledged the current set.
 *
 * Controller side: the table maps (topic, partition) to its storage-offline
 * brokers. A report replaces what the table held for its sender; a change
 * requests a reload, after which the controller's decisions
 * (controller.c's next_partition_state, through offline_replicas_live)
 * drop those brokers from the ISR and elect leaders among the others, and
 * the metadata push carries the table to every broker (PartitionStateInfo
 * offline_replicas), whose Metadata then lists them as offline replicas.
 * A broker that dies leaves the election by not being live; its entries
 * stay until it reports again (it does at start, through the replica
 * manager, even when the set is empty).
 *
 * Locality: the loop thread. */
#include <assert.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord_state.h"
#include "kafka_errors.h"
#include "rpc.h"
#include "rpc.pb-c.h"
#include "vlog.h"
#include "xalloc.h"

#define OR_RESEND_S     1.0
#define OR_TIMEOUT_MS   10000
#define OR_MAX_REPORTED 1000000 /* partitions in one report, both ways */

/* One partition's storage-offline brokers. */
typedef struct or_entry {
    char *topic; /* owned */
    int32_t partition;
    int32_t brokers[COORD_MAX_REPLICAS];
    int32_t nbrokers;
} or_entry_t;

typedef struct offline_replicas {
    coordinator_t *c;
    /* This broker's own set, as last reported by the replica manager. */
    char **mine_topics; /* owned */
    int32_t *mine_partitions;
    size_t nmine;
    bool reported;            /* coordinator_report_offline_replicas was called */
    uint64_t mine_gen;        /* bumped on each change of the set */
    uint64_t acked_gen;       /* the set the controller below acknowledged */
    int32_t acked_controller; /* -1: none yet */
    bool sending;
    ev_timer resend;
    /* The cluster's table, sorted by (topic, partition): the controller's
     * own decisions, or a copy from its last UpdateMetadata. */
    or_entry_t *entries;
    size_t nentries;
} offline_replicas_t;

static offline_replicas_t *or_get(coordinator_t *c)
{
    if (c->offline == NULL) {
        offline_replicas_t *o = xcalloc(1, sizeof(*o));
        o->c = c;
        o->acked_controller = -1;
        c->offline = o;
    }
    return c->offline;
}

static int or_cmp(const char *topic_a, int32_t part_a, const char *topic_b, int32_t part_b)
{
    int r = strcmp(topic_a, topic_b);
    return r != 0 ? r : (part_a > part_b) - (part_a < part_b);
}

/* Index of (topic, partition), or where it would go (*found false). */
static size_t or_find(const offline_replicas_t *o, const char *topic, int32_t partition,
                      bool *found)
{
    size_t lo = 0, hi = o->nentries;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = or_cmp(o->entries[mid].topic, o->entries[mid].partition, topic, partition);
        if (r == 0) {
            *found = true;
            return mid;
        }
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static void or_remove_at(offline_replicas_t *o, size_t i)
{
    assert(i < o->nentries);
    free(o->entries[i].topic);
    memmove(&o->entries[i], &o->entries[i + 1], (o->nentries - i - 1) * sizeof(*o->entries));
    o->nentries--;
}

/* Adds broker to (topic, partition); true when it was not there. */
static bool or_add(offline_replicas_t *o, const char *topic, int32_t partition, int32_t broker)
{
    bool found;
    size_t i = or_find(o, topic, partition, &found);
    if (!found) {
        o->entries = xrealloc(o->entries, (o->nentries + 1) * sizeof(*o->entries));
        memmove(&o->entries[i + 1], &o->entries[i], (o->nentries - i) * sizeof(*o->entries));
        o->entries[i] = (or_entry_t){.topic = xstrdup(topic), .partition = partition};
        o->nentries++;
    }
    or_entry_t *e = &o->entries[i];
    if (coord_contains(e->brokers, e->nbrokers, broker) || e->nbrokers >= COORD_MAX_REPLICAS)
        return false;
    e->brokers[e->nbrokers++] = broker;
    return true;
}

static void or_clear(offline_replicas_t *o)
{
    for (size_t i = 0; i < o->nentries; i++)
        free(o->entries[i].topic);
    free(o->entries);
    o->entries = NULL;
    o->nentries = 0;
}

/* ---- the controller ---- */

/* Replaces broker's entries with the reported set; true when it changed. */
static bool or_replace_broker(offline_replicas_t *o, int32_t broker, Vltava__OfflineReplica **parts,
                              size_t n)
{
    bool changed = false;
    /* Drop the broker where the report no longer names it. */
    for (size_t i = o->nentries; i-- > 0;) {
        or_entry_t *e = &o->entries[i];
        int32_t k = 0;
        while (k < e->nbrokers && e->brokers[k] != broker)
            k++;
        if (k == e->nbrokers)
            continue;
        bool named = false;
        for (size_t j = 0; j < n && !named; j++)
            named = parts[j]->partition == e->partition && strcmp(parts[j]->topic, e->topic) == 0;
        if (named)
            continue;
        e->brokers[k] = e->brokers[--e->nbrokers];
        changed = true;
        if (e->nbrokers == 0)
            or_remove_at(o, i);
    }
    for (size_t j = 0; j < n; j++)
        changed = or_add(o, parts[j]->topic, parts[j]->partition, broker) || changed;
    return changed;
}

static void or_apply_report(coordinator_t *c, int32_t broker, Vltava__OfflineReplica **parts,
                            size_t n)
{
    offline_replicas_t *o = or_get(c);
    if (!or_replace_broker(o, broker, parts, n))
        return;
    VLOG_INFO("coord", "broker %d reports %zu partition(s) it cannot open%s", broker, n,
              n > 0 ? ": moving their leadership and ISR membership" : "");
    for (size_t j = 0; j < n && j < 8; j++)
        VLOG_INFO("coord", "  %s-%d offline on broker %d", parts[j]->topic, parts[j]->partition,
                  broker);
    /* The reload ends in controller_act, which decides again with the
     * table, and in a push that carries it to every broker: a full one,
     * since a partition whose state does not change must carry it too.
     * Nothing in ZooKeeper changed: a partial reload suffices. */
    c->push_pending = true;
    c->push_full = true;
    coord_push_clear(c);
    coord_request_partial_reload(c);
}

static void on_offline_replicas(void *arg, rpc_request_t *req, int32_t sender,
                                const uint8_t *payload, size_t len)
{
    coordinator_t *c = arg;
    Vltava__OfflineReplicasRequest *m =
        vltava__offline_replicas_request__unpack(NULL, len, payload);
    if (m == NULL || m->broker_id != sender || m->n_partitions > OR_MAX_REPORTED) {
        VLOG_WARN("coord", "undecodable or invalid OfflineReplicas from broker %d", sender);
        if (m != NULL)
            vltava__offline_replicas_request__free_unpacked(m, NULL);
        rpc_respond(req, KAFKA_INVALID_REQUEST, NULL, 0);
        return;
    }
    int16_t error = KAFKA_NOT_CONTROLLER;
    if (c->is_controller) {
        or_apply_report(c, sender, m->partitions, m->n_partitions);
        error = KAFKA_NONE;
    }
    vltava__offline_replicas_request__free_unpacked(m, NULL);
    rpc_respond(req, error, NULL, 0);
}

bool offline_replicas_live(void *arg, int32_t broker_id)
{
    const offline_replicas_ctx_t *ctx = arg;
    assert(ctx != NULL && ctx->c != NULL && ctx->topic != NULL);
    if (!coord_broker_live(ctx->c, broker_id))
        return false;
    size_t n;
    const int32_t *off = offline_replicas_of(ctx->c, ctx->topic, ctx->partition, &n);
    return !coord_contains(off, (int32_t)n, broker_id);
}

const int32_t *offline_replicas_of(coordinator_t *c, const char *topic, int32_t partition,
                                   size_t *n)
{
    assert(topic != NULL && n != NULL);
    *n = 0;
    if (c->offline == NULL)
        return NULL;
    bool found;
    size_t i = or_find(c->offline, topic, partition, &found);
    if (!found)
        return NULL;
    *n = (size_t)c->offline->entries[i].nbrokers;
    return c->offline->entries[i].brokers;
}

void offline_replicas_extend(coordinator_t *c, const char *topic, md_partition_t *p)
{
    assert(p != NULL && topic != NULL);
    size_t n;
    const int32_t *off = offline_replicas_of(c, topic, p->id, &n);
    for (size_t i = 0; i < n; i++) {
        if (!coord_contains(p->replicas, p->nreplicas, off[i]) ||
            coord_contains(p->offline, p->noffline, off[i]))
            continue;
        assert(p->noffline < p->nreplicas); /* distinct replicas only */
        p->offline[p->noffline++] = off[i];
    }
}

void offline_replicas_extend_md(coordinator_t *c, cluster_metadata_t *md)
{
    assert(md != NULL);
    if (c->offline == NULL || c->offline->nentries == 0)
        return;
    for (size_t i = 0; i < md->ntopics; i++)
        for (int32_t p = 0; p < md->topics[i].npartitions; p++)
            offline_replicas_extend(c, md->topics[i].name, &md->topics[i].partitions[p]);
}

void offline_replicas_learn(coordinator_t *c, struct Vltava__PartitionStateInfo **parts, size_t n)
{
    if (c->is_controller)
        return; /* the controller's table is the source */
    offline_replicas_t *o = or_get(c);
    for (size_t i = 0; i < n; i++) {
        const struct Vltava__PartitionStateInfo *pi = parts[i];
        bool found;
        size_t at = or_find(o, pi->topic, pi->partition, &found);
        if (found)
            or_remove_at(o, at);
        for (size_t k = 0; k < pi->n_offline_replicas && k < COORD_MAX_REPLICAS; k++)
            or_add(o, pi->topic, pi->partition, pi->offline_replicas[k]);
    }
}

/* ---- the reporting broker ---- */

typedef struct or_send_ctx {
    coordinator_t *c;
    uint64_t gen;
    int32_t controller;
} or_send_ctx_t;

static void or_maybe_send(offline_replicas_t *o);

static void on_report_answer(void *arg, rpc_status_t status, int32_t error_code,
                             const uint8_t *payload, size_t len)
{
    (void)payload;
    (void)len;
    or_send_ctx_t *ctx = arg;
    if (status == RPC_SHUTDOWN) {
        free(ctx); /* the coordinator is going away: touch nothing */
        return;
    }
    offline_replicas_t *o = ctx->c->offline;
    assert(o != NULL && o->sending);
    o->sending = false;
    if (status == RPC_OK && error_code == KAFKA_NONE) {
        o->acked_gen = ctx->gen;
        o->acked_controller = ctx->controller;
    } else {
        VLOG_DEBUG("coord", "offline replicas report to controller %d not taken (%d/%d)",
                   ctx->controller, (int)status, error_code);
    }
    free(ctx);
}

static void or_maybe_send(offline_replicas_t *o)
{
    coordinator_t *c = o->c;
    if (!o->reported || o->sending || c->md == NULL || c->stopping)
        return;
    int32_t controller = c->md->controller_id;
    if (controller < 0 || (controller == o->acked_controller && o->acked_gen == o->mine_gen))
        return;
    Vltava__OfflineReplica *items = xcalloc(o->nmine + 1, sizeof(*items));
    Vltava__OfflineReplica **ptrs = xcalloc(o->nmine + 1, sizeof(*ptrs));
    for (size_t i = 0; i < o->nmine; i++) {
        vltava__offline_replica__init(&items[i]);
        items[i].topic = o->mine_topics[i];
        items[i].partition = o->mine_partitions[i];
        ptrs[i] = &items[i];
    }
    Vltava__OfflineReplicasRequest m = VLTAVA__OFFLINE_REPLICAS_REQUEST__INIT;
    m.broker_id = c->cfg.broker_id;
    m.partitions = ptrs;
    m.n_partitions = o->nmine;
    if (controller == c->cfg.broker_id) {
        if (c->is_controller) {
            or_apply_report(c, c->cfg.broker_id, ptrs, o->nmine);
            o->acked_gen = o->mine_gen;
            o->acked_controller = controller;
        }
    } else if (c->rpc != NULL) {
        size_t len;
        uint8_t *buf = coord_pack_message(&m.base, &len);
        or_send_ctx_t *ctx = xcalloc(1, sizeof(*ctx));
        *ctx = (or_send_ctx_t){c, o->mine_gen, controller};
        o->sending = true;
        if (rpc_send(c->rpc, controller, VLTAVA__RPC_TYPE__RPC_OFFLINE_REPLICAS, buf, len,
                     OR_TIMEOUT_MS, on_report_answer, ctx) != 0) {
            o->sending = false;
            free(ctx);
        }
        free(buf);
    }
    free(ptrs);
    free(items);
}

static void or_resend_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    or_maybe_send(w->data);
}

void coordinator_report_offline_replicas(coordinator_t *c, const coord_offline_partition_t *parts,
                                         size_t n)
{
    assert(c != NULL);
    assert(parts != NULL || n == 0);
    offline_replicas_t *o = or_get(c);
    bool same = o->reported && n == o->nmine;
    for (size_t i = 0; i < n && same; i++)
        same = parts[i].partition == o->mine_partitions[i] &&
               strcmp(parts[i].topic, o->mine_topics[i]) == 0;
    if (same)
        return;
    for (size_t i = 0; i < o->nmine; i++)
        free(o->mine_topics[i]);
    free(o->mine_topics);
    free(o->mine_partitions);
    o->mine_topics = xcalloc(n + 1, sizeof(*o->mine_topics));
    o->mine_partitions = xcalloc(n + 1, sizeof(*o->mine_partitions));
    for (size_t i = 0; i < n; i++) {
        o->mine_topics[i] = xstrdup(parts[i].topic);
        o->mine_partitions[i] = parts[i].partition;
    }
    o->nmine = n;
    o->mine_gen++;
    if (!o->reported) {
        o->reported = true;
        ev_timer_init(&o->resend, or_resend_cb, OR_RESEND_S, OR_RESEND_S);
        o->resend.data = o;
        ev_timer_start(c->loop, &o->resend);
    }
    or_maybe_send(o);
}

void offline_replicas_start(coordinator_t *c)
{
    assert(c != NULL && c->rpc != NULL);
    rpc_set_handler(c->rpc, VLTAVA__RPC_TYPE__RPC_OFFLINE_REPLICAS, on_offline_replicas, c);
}

void offline_replicas_stop(coordinator_t *c)
{
    offline_replicas_t *o = c->offline;
    if (o == NULL)
        return;
    if (o->reported)
        ev_timer_stop(c->loop, &o->resend);
    for (size_t i = 0; i < o->nmine; i++)
        free(o->mine_topics[i]);
    free(o->mine_topics);
    free(o->mine_partitions);
    or_clear(o);
    free(o);
    c->offline = NULL;
}

bool offline_replicas_isr_shrink(void *arg, const md_partition_t *p, int32_t *isr, int32_t *n)
{
    offline_replicas_ctx_t *ctx = arg;
    assert(ctx != NULL && p != NULL && isr != NULL && n != NULL);
    size_t noff;
    const int32_t *off = offline_replicas_of(ctx->c, ctx->topic, ctx->partition, &noff);
    bool any = false;
    for (int32_t i = 0; i < p->nisr && !any; i++)
        any = coord_contains(off, (int32_t)noff, p->isr[i]);
    if (!any)
        return false;
    *n = 0;
    for (int32_t i = 0; i < p->nisr; i++)
        if (!coord_contains(off, (int32_t)noff, p->isr[i]))
            isr[(*n)++] = p->isr[i];
    return true;
}
