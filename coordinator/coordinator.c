/* The coordinator: ZooKeeper session and registration, the metadata cache
 * and its loading from ZooKeeper, and the callbacks that tell the replica
 * manager about this broker's partitions. The controller's half lives in
 * controller.c; the thread bridge in zk_bridge.c.
 *
 * The cache is rebuilt by a reload: a fan-out of asynchronous reads of
 * /brokers/ids, /brokers/topics/<t> (+ partition states), /config/topics/<t>,
 * /controller, /controller_epoch and /admin/delete_topics, all arming
 * watches. Any watch event asks for another reload; at most one runs at a
 * time, and events during one mark it dirty so it runs again once. */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "coord_state.h"
#include "topic_name.h"
#include "vlog.h"
#include "xalloc.h"

#define RETRY_DELAY_S 0.5

/* ---- metadata snapshots ---- */

/* Room for one more element in an array grown by doubling: n elements of
 * size each are in use. */
static void *grow_for_one(void *array, size_t n, size_t size)
{
    if (n != 0 && (n & (n - 1)) != 0)
        return array; /* not a power of two: there is room */
    return xrealloc(array, (n ? 2 * n : 1) * size);
}

/* One topic of a reload: read whole (its assignment, config and every
 * state), or reused from the cached snapshot with only the state znodes
 * and config the plan names read again. */
typedef struct ltopic {
    char *name;
    bool whole; /* read whole (else reused) */
    bool have_assignment;
    zk_assignment_t a;
    int32_t assignment_version;
    zk_partition_state_t *states; /* per partition, nstates */
    int32_t *state_versions;      /* -1: missing (or, reused, not read) */
    int64_t *state_mzxids;        /* when each state was last written */
    int32_t nstates;
    char **ckeys, **cvalues;
    size_t nconfigs;
    bool has_config;
    /* reused topics */
    uint8_t reuse_id[16];
    bool *state_read; /* per partition: read again in this reload */
    bool config_read; /* /config/topics/<t> read again */
    bool vanished;    /* a znode read again was gone: read it whole next */
} ltopic_t;

struct loader {
    uint64_t session_gen; /* the session it reads through */
    int pending;
    bool failed;
    md_broker_t *brokers;
    size_t nbrokers;
    ltopic_t *topics;
    size_t ntopics;
    bool controller_exists;
    int32_t controller_id;
    int64_t controller_owner;
    int32_t epoch, epoch_version;
    char **deletes;
    size_t ndeletes;
    reload_plan_t plan; /* what it reads beyond the always-read znodes */
};

static void md_partition_free(md_partition_t *p)
{
    free(p->replicas);
    free(p->isr);
    free(p->offline);
    free(p->adding);
    free(p->removing);
}

static void md_topic_free(md_topic_t *t)
{
    for (int32_t i = 0; i < t->npartitions; i++)
        md_partition_free(&t->partitions[i]);
    free(t->partitions);
    for (size_t i = 0; i < t->nconfigs; i++) {
        free(t->config_keys[i]);
        free(t->config_values[i]);
    }
    free(t->config_keys);
    free(t->config_values);
    free(t->name);
}

static void metadata_free(cluster_metadata_t *md, topic_zk_t *zk)
{
    if (!md)
        return;
    for (size_t i = 0; i < md->nbrokers; i++)
        md_broker_clear(&md->brokers[i]);
    free(md->brokers);
    for (size_t i = 0; i < md->ntopics; i++) {
        md_topic_free(&md->topics[i]);
        if (zk) {
            free(zk[i].state_version);
            free(zk[i].state_mzxid);
        }
    }
    free(md->topics);
    free(zk);
    free(md);
}

const md_topic_t *cluster_metadata_topic(const cluster_metadata_t *md, const char *name,
                                         size_t name_len)
{
    size_t lo = 0, hi = md->ntopics;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *t = md->topics[mid].name;
        int cmp = strncmp(t, name, name_len);
        if (cmp == 0)
            cmp = t[name_len] == '\0' ? 0 : 1;
        if (cmp == 0)
            return &md->topics[mid];
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const md_broker_t *cluster_metadata_broker(const cluster_metadata_t *md, int32_t id)
{
    for (size_t i = 0; i < md->nbrokers; i++)
        if (md->brokers[i].id == id)
            return &md->brokers[i];
    return NULL;
}

const md_endpoint_t *md_broker_endpoint(const md_broker_t *b, const char *listener)
{
    assert(listener != NULL);
    assert(b->nendpoints <= MD_MAX_ENDPOINTS);
    for (size_t i = 0; i < b->nendpoints; i++)
        if (strcmp(b->endpoints[i].listener, listener) == 0)
            return &b->endpoints[i];
    return NULL;
}

bool coord_broker_live(void *arg, int32_t id)
{
    const coordinator_t *c = arg;
    return cluster_metadata_broker(c->md, id) != NULL;
}

/* The partition's state was last written before its leader's current
 * registration was created: no process of that registration took the
 * leadership, since a controller elects only registered brokers and a
 * leader writes its ISR through its own session, which ZooKeeper orders
 * before that session's end. So the leader is a restarted process (or a
 * new session of one) whose previous self led: ZooKeeper's order (zxids),
 * not the timing of reloads, says so, whoever is the controller then. */
bool coord_leader_restarted(const coordinator_t *c, const md_topic_t *t, int32_t partition)
{
    assert(partition >= 0 && partition < t->npartitions);
    const md_partition_t *p = &t->partitions[partition];
    if (p->leader < 0)
        return false;
    const md_broker_t *b = cluster_metadata_broker(c->md, p->leader);
    const topic_zk_t *z = controller_topic_zk(c, t);
    assert(z->state_mzxid != NULL);
    return b && z->state_version[partition] >= 0 && z->state_mzxid[partition] > 0 &&
           b->registration_zxid > z->state_mzxid[partition];
}

static void partition_set_offline(md_partition_t *p, const cluster_metadata_t *md)
{
    free(p->offline);
    p->offline = xmalloc((size_t)(p->nreplicas > 0 ? p->nreplicas : 1) * sizeof(int32_t));
    p->noffline = 0;
    for (int32_t r = 0; r < p->nreplicas; r++)
        if (!cluster_metadata_broker(md, p->replicas[r]))
            p->offline[p->noffline++] = p->replicas[r];
    assert(p->noffline <= p->nreplicas);
}

static int cmp_broker(const void *a, const void *b)
{
    const md_broker_t *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

typedef struct topic_pair {
    md_topic_t t;
    topic_zk_t z;
} topic_pair_t;

static int cmp_topic_pair(const void *a, const void *b)
{
    return strcmp(((const topic_pair_t *)a)->t.name, ((const topic_pair_t *)b)->t.name);
}

/* Takes a state read in this reload into mp, and its version and mzxid
 * into z. */
static void take_state(ltopic_t *lt, int32_t p, md_partition_t *mp, topic_zk_t *z)
{
    assert(p >= 0 && p < lt->nstates);
    assert(lt->state_versions[p] >= 0 && lt->states[p].isr);
    mp->leader = lt->states[p].leader;
    mp->leader_epoch = lt->states[p].leader_epoch;
    free(mp->isr);
    mp->isr = lt->states[p].isr;
    mp->nisr = lt->states[p].nisr;
    lt->states[p].isr = NULL;
    z->state_version[p] = lt->state_versions[p];
    z->state_mzxid[p] = lt->state_mzxids[p];
}

/* Takes a topic's config read in this reload (the loader's arrays move). */
static void take_config(ltopic_t *lt, md_topic_t *t, topic_zk_t *z)
{
    t->config_keys = lt->ckeys;
    t->config_values = lt->cvalues;
    t->nconfigs = lt->nconfigs;
    z->has_config = lt->has_config;
    lt->ckeys = lt->cvalues = NULL;
    lt->nconfigs = 0;
}

/* A topic read whole: the loader's findings move into tp. */
static void build_whole_topic(ltopic_t *lt, const cluster_metadata_t *md, topic_pair_t *tp)
{
    assert(lt->have_assignment && lt->nstates == lt->a.npartitions);
    tp->t.name = lt->name;
    lt->name = NULL;
    memcpy(tp->t.id, lt->a.topic_id, 16);
    tp->t.npartitions = lt->a.npartitions;
    tp->t.partitions = xcalloc((size_t)lt->a.npartitions, sizeof(md_partition_t));
    tp->z.assignment_version = lt->assignment_version;
    tp->z.state_version = xcalloc((size_t)lt->a.npartitions, sizeof(int32_t));
    tp->z.state_mzxid = xcalloc((size_t)lt->a.npartitions, sizeof(int64_t));
    for (int32_t p = 0; p < lt->a.npartitions; p++) {
        md_partition_t *mp = &tp->t.partitions[p];
        mp->id = p;
        mp->replicas = lt->a.replicas[p];
        mp->nreplicas = lt->a.nreplicas[p];
        lt->a.replicas[p] = NULL;
        mp->adding = lt->a.adding[p];
        mp->nadding = lt->a.nadding[p];
        lt->a.adding[p] = NULL;
        mp->removing = lt->a.removing[p];
        mp->nremoving = lt->a.nremoving[p];
        lt->a.removing[p] = NULL;
        mp->reassign_epoch = lt->a.reassign_epoch[p];
        tp->z.state_version[p] = -1;
        if (lt->state_versions[p] >= 0) {
            take_state(lt, p, mp, &tp->z);
        } else {
            mp->leader = -1;
            mp->isr = coord_copy_ids(NULL, 0);
        }
        partition_set_offline(mp, md);
    }
    take_config(lt, &tp->t, &tp->z);
}

/* A reused topic: a copy of the cached one (old, with its znode versions
 * oz) with what this reload read again. */
static void build_reused_topic(ltopic_t *lt, const md_topic_t *old, const topic_zk_t *oz,
                               const cluster_metadata_t *md, topic_pair_t *tp)
{
    assert(!lt->whole && old->npartitions == lt->nstates);
    assert(memcmp(old->id, lt->reuse_id, 16) == 0);
    tp->t.name = lt->name;
    lt->name = NULL;
    memcpy(tp->t.id, old->id, 16);
    tp->t.npartitions = old->npartitions;
    tp->t.partitions = xcalloc((size_t)old->npartitions, sizeof(md_partition_t));
    tp->z.assignment_version = oz->assignment_version;
    tp->z.state_version = xcalloc((size_t)old->npartitions, sizeof(int32_t));
    tp->z.state_mzxid = xcalloc((size_t)old->npartitions, sizeof(int64_t));
    for (int32_t p = 0; p < old->npartitions; p++) {
        const md_partition_t *op = &old->partitions[p];
        md_partition_t *mp = &tp->t.partitions[p];
        mp->id = p;
        mp->replicas = coord_copy_ids(op->replicas, op->nreplicas);
        mp->nreplicas = op->nreplicas;
        mp->adding = coord_copy_ids(op->adding, op->nadding);
        mp->nadding = op->nadding;
        mp->removing = coord_copy_ids(op->removing, op->nremoving);
        mp->nremoving = op->nremoving;
        mp->reassign_epoch = op->reassign_epoch;
        mp->leader = op->leader;
        mp->leader_epoch = op->leader_epoch;
        mp->isr = coord_copy_ids(op->isr, op->nisr);
        mp->nisr = op->nisr;
        tp->z.state_version[p] = oz->state_version[p];
        tp->z.state_mzxid[p] = oz->state_mzxid[p];
        if (lt->state_read[p] && lt->state_versions[p] >= 0)
            take_state(lt, p, mp, &tp->z);
        partition_set_offline(mp, md);
    }
    if (lt->config_read) {
        take_config(lt, &tp->t, &tp->z);
        return;
    }
    tp->z.has_config = oz->has_config;
    tp->t.nconfigs = old->nconfigs;
    tp->t.config_keys = xcalloc(old->nconfigs + 1, sizeof(char *));
    tp->t.config_values = xcalloc(old->nconfigs + 1, sizeof(char *));
    for (size_t k = 0; k < old->nconfigs; k++) {
        tp->t.config_keys[k] = xstrdup(old->config_keys[k]);
        tp->t.config_values[k] = xstrdup(old->config_values[k]);
    }
}

/* Moves the loader's findings, and what it reused of the cached snapshot,
 * into a new snapshot. */
static cluster_metadata_t *metadata_build(coordinator_t *c, loader_t *l, topic_zk_t **zk_out)
{
    cluster_metadata_t *md = xcalloc(1, sizeof(*md));
    md->cluster_id = c->cluster_id;
    md->controller_id = l->controller_exists ? l->controller_id : -1;
    md->brokers = l->brokers;
    md->nbrokers = l->nbrokers;
    l->brokers = NULL;
    l->nbrokers = 0;
    if (md->nbrokers)
        qsort(md->brokers, md->nbrokers, sizeof(*md->brokers), cmp_broker);

    topic_pair_t *pairs = xcalloc(l->ntopics + 1, sizeof(*pairs));
    size_t n = 0;
    for (size_t i = 0; i < l->ntopics; i++) {
        ltopic_t *lt = &l->topics[i];
        if (lt->whole) {
            if (lt->have_assignment)
                build_whole_topic(lt, md, &pairs[n++]);
            continue;
        }
        /* The cache changes shape only when a reload installs, one at a
         * time: the topic this reload planned to reuse is still there. */
        const md_topic_t *old = cluster_metadata_topic(c->md, lt->name, strlen(lt->name));
        assert(old && old->npartitions == lt->nstates);
        build_reused_topic(lt, old, controller_topic_zk(c, old), md, &pairs[n++]);
    }
    if (n)
        qsort(pairs, n, sizeof(*pairs), cmp_topic_pair);
    md->topics = xcalloc(n + 1, sizeof(md_topic_t));
    topic_zk_t *zk = xcalloc(n + 1, sizeof(topic_zk_t));
    for (size_t i = 0; i < n; i++) {
        md->topics[i] = pairs[i].t;
        zk[i] = pairs[i].z;
    }
    md->ntopics = n;
    free(pairs);
    *zk_out = zk;
    return md;
}

static bool is_replica(const md_partition_t *p, int32_t id)
{
    return coord_contains(p->replicas, p->nreplicas, id);
}

static const md_topic_t *same_topic(const cluster_metadata_t *md, const md_topic_t *t)
{
    if (!md)
        return NULL;
    const md_topic_t *o = cluster_metadata_topic(md, t->name, strlen(t->name));
    return o && memcmp(o->id, t->id, 16) == 0 ? o : NULL;
}

/* Leader epochs never go back: a reload that read a partition state before
 * a newer one arrived over RPC keeps the newer one until ZooKeeper shows it. */
static void keep_newer_epochs(const cluster_metadata_t *old, const topic_zk_t *old_zk,
                              cluster_metadata_t *md, topic_zk_t *zk)
{
    for (size_t i = 0; i < md->ntopics; i++) {
        md_topic_t *t = &md->topics[i];
        const md_topic_t *o = same_topic(old, t);
        if (!o)
            continue;
        const topic_zk_t *oz = &old_zk[o - old->topics];
        for (int32_t p = 0; p < t->npartitions && p < o->npartitions; p++) {
            md_partition_t *np = &t->partitions[p];
            const md_partition_t *op = &o->partitions[p];
            if (op->leader_epoch <= np->leader_epoch)
                continue;
            np->leader = op->leader;
            np->leader_epoch = op->leader_epoch;
            free(np->isr);
            np->isr = coord_copy_ids(op->isr, op->nisr);
            np->nisr = op->nisr;
            /* The controller's own write (coord_apply_written_state) knew
             * its version: a version is newer exactly when it is larger. */
            if (oz->state_version[p] > zk[i].state_version[p]) {
                zk[i].state_version[p] = oz->state_version[p];
                zk[i].state_mzxid[p] = oz->state_mzxid[p];
            }
        }
    }
}

/* Tells the replica manager what changed for this broker's replicas. */
static void fire_callbacks(coordinator_t *c, const cluster_metadata_t *old,
                           const cluster_metadata_t *md)
{
    const int32_t me = c->cfg.broker_id;
    for (size_t i = 0; old && i < old->ntopics; i++) {
        const md_topic_t *ot = &old->topics[i];
        const md_topic_t *nt = same_topic(md, ot);
        for (int32_t p = 0; p < ot->npartitions; p++) {
            if (!is_replica(&ot->partitions[p], me))
                continue;
            if (!nt || p >= nt->npartitions || !is_replica(&nt->partitions[p], me)) {
                VLOG_INFO("coord", "no longer a replica of %s-%d", ot->name, p);
                if (c->cb.partition_removed)
                    c->cb.partition_removed(c->cb.arg, ot->name, p);
            }
        }
    }
    for (size_t i = 0; i < md->ntopics; i++) {
        const md_topic_t *nt = &md->topics[i];
        const md_topic_t *ot = same_topic(old, nt);
        for (int32_t p = 0; p < nt->npartitions; p++) {
            const md_partition_t *np = &nt->partitions[p];
            if (!is_replica(np, me))
                continue;
            const md_partition_t *op =
                ot && p < ot->npartitions && is_replica(&ot->partitions[p], me) ? &ot->partitions[p]
                                                                                : NULL;
            /* A new replica set at the same epoch (a reassignment's topic
             * znode read after its state) is news to the leader too. */
            if (op && op->leader == np->leader && op->leader_epoch == np->leader_epoch &&
                op->nreplicas == np->nreplicas &&
                memcmp(op->replicas, np->replicas, (size_t)np->nreplicas * sizeof(int32_t)) == 0)
                continue;
            VLOG_INFO("coord", "%s-%d: leader %d, leader epoch %d (%s)", nt->name, p, np->leader,
                      np->leader_epoch, np->leader == me ? "leading" : "following");
            if (c->cb.partition_changed)
                c->cb.partition_changed(c->cb.arg, nt, np);
        }
    }
}

void coord_push_clear(coordinator_t *c)
{
    for (size_t i = 0; i < c->npush_changes; i++)
        free(c->push_changes[i].topic);
    free(c->push_changes);
    c->push_changes = NULL;
    c->npush_changes = 0;
}

static void push_add(coordinator_t *c, const char *topic, int32_t partition)
{
    if (c->push_full)
        return;
    if (c->npush_changes >= PUSH_CHANGES_MAX) {
        coord_push_clear(c);
        c->push_full = true;
        return;
    }
    c->push_changes = grow_for_one(c->push_changes, c->npush_changes, sizeof(partition_ref_t));
    c->push_changes[c->npush_changes].topic = xstrdup(topic);
    c->push_changes[c->npush_changes].partition = partition;
    c->npush_changes++;
}

static bool same_ids(const int32_t *a, int32_t na, const int32_t *b, int32_t nb)
{
    return na == nb && (na == 0 || memcmp(a, b, (size_t)na * sizeof(int32_t)) == 0);
}

/* The controller's next push carries what changed between old and md:
 * every partition when the brokers changed (a broker that joined knows
 * nothing yet), else the partitions whose state or replicas changed. */
static void note_push_changes(coordinator_t *c, const cluster_metadata_t *old,
                              const cluster_metadata_t *md)
{
    if (!old || old->nbrokers != md->nbrokers) {
        c->push_full = true;
    } else {
        for (size_t i = 0; i < md->nbrokers; i++)
            if (old->brokers[i].id != md->brokers[i].id)
                c->push_full = true;
    }
    for (size_t i = 0; i < md->ntopics && !c->push_full; i++) {
        const md_topic_t *t = &md->topics[i];
        const md_topic_t *ot = same_topic(old, t);
        for (int32_t p = 0; p < t->npartitions && !c->push_full; p++) {
            const md_partition_t *np = &t->partitions[p];
            const md_partition_t *op = ot && p < ot->npartitions ? &ot->partitions[p] : NULL;
            if (op && op->leader == np->leader && op->leader_epoch == np->leader_epoch &&
                same_ids(op->isr, op->nisr, np->isr, np->nisr) &&
                same_ids(op->replicas, op->nreplicas, np->replicas, np->nreplicas))
                continue;
            push_add(c, t->name, p);
        }
    }
    if (c->push_full)
        coord_push_clear(c);
}

static void install_metadata(coordinator_t *c, cluster_metadata_t *md, topic_zk_t *zk)
{
    cluster_metadata_t *old = c->md;
    topic_zk_t *old_zk = c->md_zk;
    keep_newer_epochs(old, old_zk, md, zk);
    offline_replicas_extend_md(c, md);
    if (c->is_controller)
        note_push_changes(c, old, md);
    c->md = md;
    c->md_zk = zk;
    rpc_glue_sync_peers(c, old);
    fire_callbacks(c, old, md);
    metadata_free(old, old_zk);
}

bool coord_apply_partition(coordinator_t *c, const char *topic, const uint8_t topic_id[16],
                           int32_t partition, int32_t leader, int32_t leader_epoch,
                           const int32_t *isr, int32_t nisr)
{
    assert(c->md);
    md_topic_t *t = (md_topic_t *)cluster_metadata_topic(c->md, topic, strlen(topic));
    if (!t || memcmp(t->id, topic_id, 16) != 0 || partition < 0 || partition >= t->npartitions)
        return false;
    md_partition_t *p = &t->partitions[partition];
    if (leader_epoch < p->leader_epoch)
        return true;
    bool changed = leader_epoch > p->leader_epoch || leader != p->leader;
    if (leader_epoch == p->leader_epoch && leader != p->leader) {
        VLOG_WARN("coord", "%s-%d: leader %d at epoch %d conflicts with %d; ignored", topic,
                  partition, leader, leader_epoch, p->leader);
        return true;
    }
    p->leader = leader;
    p->leader_epoch = leader_epoch;
    free(p->isr);
    p->isr = coord_copy_ids(isr, nisr);
    p->nisr = nisr;
    partition_set_offline(p, c->md);
    offline_replicas_extend(c, topic, p);
    if (changed && is_replica(p, c->cfg.broker_id) && c->cb.partition_changed) {
        VLOG_INFO("coord", "%s-%d: leader %d, leader epoch %d (from controller)", topic, partition,
                  leader, leader_epoch);
        c->cb.partition_changed(c->cb.arg, t, p);
    }
    return true;
}

void coord_apply_written_state(coordinator_t *c, const char *topic, const uint8_t topic_id[16],
                               int32_t partition, const zk_partition_state_t *state,
                               int32_t version, int64_t mzxid)
{
    assert(c->md && state->nisr >= 0);
    if (!coord_apply_partition(c, topic, topic_id, partition, state->leader, state->leader_epoch,
                               state->isr, state->nisr))
        return;
    const md_topic_t *t = cluster_metadata_topic(c->md, topic, strlen(topic));
    assert(t && partition < t->npartitions);
    topic_zk_t *z = (topic_zk_t *)controller_topic_zk(c, t);
    /* A re-read may have brought a newer write already. */
    if (t->partitions[partition].leader_epoch == state->leader_epoch &&
        version > z->state_version[partition]) {
        z->state_version[partition] = version;
        z->state_mzxid[partition] = mzxid;
    }
    if (c->is_controller)
        push_add(c, topic, partition);
}

/* ---- reload plans ---- */

static void plan_clear(reload_plan_t *p)
{
    for (size_t i = 0; i < p->ntopics; i++)
        free(p->topics[i]);
    free(p->topics);
    for (size_t i = 0; i < p->nconfigs; i++)
        free(p->configs[i]);
    free(p->configs);
    for (size_t i = 0; i < p->nstates; i++)
        free(p->states[i].topic);
    free(p->states);
    memset(p, 0, sizeof(*p));
}

/* True when the plan takes one more entry; past RELOAD_PLAN_MAX it turns
 * into a reload of everything (which needs no entries). */
static bool plan_room(reload_plan_t *p)
{
    if (p->full)
        return false;
    if (p->ntopics + p->nconfigs + p->nstates < RELOAD_PLAN_MAX)
        return true;
    plan_clear(p);
    p->full = true;
    return false;
}

static void plan_add_topic(reload_plan_t *p, const char *topic)
{
    p->topic_list = true; /* a topic read whole may be new, or gone */
    if (!plan_room(p))
        return;
    p->topics = grow_for_one(p->topics, p->ntopics, sizeof(char *));
    p->topics[p->ntopics++] = xstrdup(topic);
}

static void plan_add_config(reload_plan_t *p, const char *topic)
{
    if (!plan_room(p))
        return;
    p->configs = grow_for_one(p->configs, p->nconfigs, sizeof(char *));
    p->configs[p->nconfigs++] = xstrdup(topic);
}

static void plan_add_state(reload_plan_t *p, const char *topic, int32_t partition)
{
    if (!plan_room(p))
        return;
    p->states = grow_for_one(p->states, p->nstates, sizeof(partition_ref_t));
    p->states[p->nstates].topic = xstrdup(topic);
    p->states[p->nstates].partition = partition;
    p->nstates++;
}

/* ---- reload ---- */

static void loader_free(loader_t *l)
{
    for (size_t i = 0; i < l->nbrokers; i++)
        md_broker_clear(&l->brokers[i]);
    free(l->brokers);
    for (size_t i = 0; i < l->ntopics; i++) {
        ltopic_t *t = &l->topics[i];
        free(t->name);
        for (int32_t p = 0; p < t->nstates; p++)
            zk_partition_state_clear(&t->states[p]);
        if (t->have_assignment)
            zk_assignment_clear(&t->a);
        free(t->states);
        free(t->state_versions);
        free(t->state_mzxids);
        free(t->state_read);
        for (size_t k = 0; k < t->nconfigs; k++) {
            free(t->ckeys[k]);
            free(t->cvalues[k]);
        }
        free(t->ckeys);
        free(t->cvalues);
    }
    free(l->topics);
    for (size_t i = 0; i < l->ndeletes; i++)
        free(l->deletes[i]);
    free(l->deletes);
    plan_clear(&l->plan);
    free(l);
}

static void reload_start(coordinator_t *c);

void coord_schedule_retry(coordinator_t *c)
{
    if (c->stopping || ev_is_active(&c->retry_timer))
        return;
    ev_timer_set(&c->retry_timer, RETRY_DELAY_S, 0.);
    ev_timer_start(c->loop, &c->retry_timer);
}

static void reload_finish(coordinator_t *c, loader_t *l)
{
    assert(c->load == l && l->pending == 0);
    c->load = NULL;
    /* Reads of a session since lost may predate the step-down that loss
     * caused (session_lost): installing them would undo it. */
    if (l->session_gen != c->session_gen)
        l->failed = true;
    if (l->failed) {
        loader_free(l);
        VLOG_DEBUG("coord", "metadata reload failed; retrying");
        c->reload_dirty = false; /* the retry reads everything */
        coord_schedule_retry(c);
        return;
    }
    for (size_t i = 0; i < l->ntopics; i++) {
        if (l->topics[i].vanished) {
            plan_add_topic(&c->plan, l->topics[i].name);
            c->reload_dirty = true;
        }
    }
    topic_zk_t *zk;
    cluster_metadata_t *md = metadata_build(c, l, &zk);
    c->zk_controller_epoch = l->epoch;
    c->zk_controller_epoch_version = l->epoch_version;
    if (l->epoch > c->controller_epoch_seen)
        c->controller_epoch_seen = l->epoch;
    for (size_t i = 0; i < c->ndelete_requests; i++)
        free(c->delete_requests[i]);
    free(c->delete_requests);
    c->delete_requests = l->deletes;
    c->ndelete_requests = l->ndeletes;
    l->deletes = NULL;
    l->ndeletes = 0;
    bool exists = l->controller_exists;
    int32_t controller_id = l->controller_id;
    int64_t owner = l->controller_owner;
    loader_free(l);

    assert(!c->reload_installing);
    c->reload_installing = true;
    install_metadata(c, md, zk);
    c->reloads_done++;
    /* Changes already known (watches that fired during this reload, the
     * controller's own writes among them) are not in this snapshot: a
     * decision on it would be made again, and refused, once they are. So
     * the controller acts after the next reload, but not after more than
     * a few in a row, which a steady stream of changes could make. */
    if (c->reload_dirty && c->acts_deferred < RELOAD_ACT_DEFER_MAX) {
        c->acts_deferred++;
    } else {
        c->acts_deferred = 0;
        controller_after_reload(c, exists, controller_id, owner);
    }
    controller_check_waiters(c, false);
    c->reload_installing = false;
    if (c->reload_dirty && !c->load) {
        c->reload_dirty = false;
        reload_start(c);
    }
}

static void load_done_one(coordinator_t *c, loader_t *l)
{
    assert(l->pending > 0);
    if (--l->pending == 0)
        reload_finish(c, l);
}

/* True when rc means "go on"; ZNONODE (a znode that vanished between the
 * listing and the read) is fine: its watch brings another reload. */
static bool load_rc_ok(loader_t *l, const zk_call_t *call)
{
    if (call->rc == ZOK)
        return true;
    if (call->rc != ZNONODE) {
        VLOG_DEBUG("coord", "reading %s: %s", call->path ? call->path : "?", zerror(call->rc));
        l->failed = true;
    }
    return false;
}

/* zk_get, zk_children or zk_exists. */
typedef void (*zk_read_fn)(coordinator_t *c, zk_call_t *call, bool watch);

static void load_issue(coordinator_t *c, loader_t *l, zk_read_fn zk_read, const char *path,
                       zk_done_fn done, int32_t i1, int32_t i2, bool watch)
{
    zk_call_t *call = zk_call_new(c, done, l, path);
    call->i1 = i1;
    call->i2 = i2;
    l->pending++;
    zk_read(c, call, watch);
}

static void on_broker(coordinator_t *c, zk_call_t *call)
{
    loader_t *l = call->arg;
    if (load_rc_ok(l, call)) {
        md_broker_t b;
        char err[160];
        if (znode_decode_broker((const uint8_t *)call->data, (size_t)call->data_len, &b, err,
                                sizeof(err)) == 0) {
            b.registration_zxid = call->stat.czxid;
            l->brokers = xrealloc(l->brokers, (l->nbrokers + 1) * sizeof(*l->brokers));
            l->brokers[l->nbrokers++] = b;
        } else {
            VLOG_ERR("coord", "%s: %s; broker ignored", call->path, err);
        }
    }
    load_done_one(c, l);
}

static void on_broker_ids(coordinator_t *c, zk_call_t *call)
{
    loader_t *l = call->arg;
    if (load_rc_ok(l, call)) {
        for (int i = 0; i < call->nchildren; i++) {
            char path[300];
            snprintf(path, sizeof(path), "/brokers/ids/%s", call->children[i]);
            load_issue(c, l, zk_get, path, on_broker, 0, 0, false);
        }
    }
    load_done_one(c, l);
}

static void on_state_watched(coordinator_t *c, zk_call_t *call)
{
    load_done_one(c, call->arg);
}

static void on_state(coordinator_t *c, zk_call_t *call)
{
    loader_t *l = call->arg;
    ltopic_t *t = &l->topics[call->i1];
    int32_t p = call->i2;
    assert(t->have_assignment && p < t->nstates);
    if (load_rc_ok(l, call)) {
        char err[160];
        if (znode_decode_partition_state((const uint8_t *)call->data, (size_t)call->data_len,
                                         &t->states[p], err, sizeof(err)) == 0) {
            t->state_versions[p] = call->stat.version;
            t->state_mzxids[p] = call->stat.mzxid;
        } else
            VLOG_ERR("coord", "%s: %s; partition treated as offline", call->path, err);
    } else if (call->rc == ZNONODE) {
        /* A read of a missing znode arms no watch: an existence watch
         * brings its creation (the controller recreates it). */
        load_issue(c, l, zk_exists, call->path, on_state_watched, call->i1, p, true);
    }
    load_done_one(c, l);
}

static void on_topic(coordinator_t *c, zk_call_t *call)
{
    loader_t *l = call->arg;
    ltopic_t *t = &l->topics[call->i1];
    if (load_rc_ok(l, call)) {
        char err[160];
        if (znode_decode_assignment((const uint8_t *)call->data, (size_t)call->data_len, &t->a, err,
                                    sizeof(err)) == 0) {
            t->have_assignment = true;
            t->assignment_version = call->stat.version;
            t->nstates = t->a.npartitions;
            t->states = xcalloc((size_t)t->a.npartitions, sizeof(*t->states));
            t->state_versions = xmalloc((size_t)t->a.npartitions * sizeof(int32_t));
            t->state_mzxids = xcalloc((size_t)t->a.npartitions, sizeof(int64_t));
            for (int32_t p = 0; p < t->a.npartitions; p++) {
                char path[600];
                t->state_versions[p] = -1;
                snprintf(path, sizeof(path), "/brokers/topics/%s/partitions/%d/state", t->name, p);
                load_issue(c, l, zk_get, path, on_state, call->i1, p, true);
            }
        } else {
            VLOG_ERR("coord", "%s: %s; topic ignored", call->path, err);
        }
    }
    load_done_one(c, l);
}

/* A /config/topics/<t> read: its overrides into t. */
static void on_topic_config_data(ltopic_t *t, const zk_call_t *call)
{
    assert(call->rc == ZOK && t->ckeys == NULL);
    char err[160];
    t->has_config = true;
    if (znode_decode_topic_config((const uint8_t *)call->data, (size_t)call->data_len, &t->ckeys,
                                  &t->cvalues, &t->nconfigs, err, sizeof(err)) != 0)
        VLOG_ERR("coord", "%s: %s; defaults used", call->path, err);
}

static void on_topic_config(coordinator_t *c, zk_call_t *call)
{
    loader_t *l = call->arg;
    ltopic_t *t = &l->topics[call->i1];
    if (load_rc_ok(l, call))
        on_topic_config_data(t, call);
    load_done_one(c, l);
}

static int cmp_ltopic(const void *a, const void *b)
{
    return strcmp(((const ltopic_t *)a)->name, ((const ltopic_t *)b)->name);
}

static ltopic_t *loader_topic(loader_t *l, const char *name)
{
    ltopic_t key = {.name = (char *)name};
    return l->ntopics ? bsearch(&key, l->topics, l->ntopics, sizeof(*l->topics), cmp_ltopic) : NULL;
}

static void on_reused_state(coordinator_t *c, zk_call_t *call)
{
    loader_t *l = call->arg;
    ltopic_t *t = &l->topics[call->i1];
    int32_t p = call->i2;
    assert(!t->whole && p >= 0 && p < t->nstates);
    if (call->rc == ZNONODE) {
        t->vanished = true; /* the topic is being deleted (or recreated) */
    } else if (load_rc_ok(l, call)) {
        char err[160];
        if (znode_decode_partition_state((const uint8_t *)call->data, (size_t)call->data_len,
                                         &t->states[p], err, sizeof(err)) == 0) {
            t->state_versions[p] = call->stat.version;
            t->state_mzxids[p] = call->stat.mzxid;
        } else {
            VLOG_ERR("coord", "%s: %s; previous state kept", call->path, err);
        }
    }
    load_done_one(c, l);
}

static void on_reused_config(coordinator_t *c, zk_call_t *call)
{
    loader_t *l = call->arg;
    ltopic_t *t = &l->topics[call->i1];
    assert(!t->whole && t->config_read);
    if (call->rc == ZNONODE)
        t->has_config = false; /* overrides removed: the defaults apply */
    else if (load_rc_ok(l, call))
        on_topic_config_data(t, call);
    load_done_one(c, l);
}

/* Sets up the reads of the topics named (the children of /brokers/topics,
 * or the cached topics when the list is not read again): a topic new to
 * the cache, or named whole in the plan, is read whole; every other one is
 * reused with the state znodes and configs the plan names read again. */
static void loader_plan_topics(coordinator_t *c, loader_t *l, char *const *names, size_t n)
{
    assert(l->topics == NULL);
    l->topics = xcalloc(n + 1, sizeof(*l->topics));
    l->ntopics = n;
    for (size_t i = 0; i < n; i++)
        l->topics[i].name = xstrdup(names[i]);
    if (n)
        qsort(l->topics, n, sizeof(*l->topics), cmp_ltopic);
    const reload_plan_t *plan = &l->plan;
    for (size_t i = 0; i < plan->ntopics; i++) {
        ltopic_t *t = loader_topic(l, plan->topics[i]);
        if (t)
            t->whole = true;
    }
    char path[600];
    for (size_t i = 0; i < n; i++) {
        ltopic_t *t = &l->topics[i];
        const md_topic_t *old =
            c->md && !plan->full ? cluster_metadata_topic(c->md, t->name, strlen(t->name)) : NULL;
        if (!old || t->whole) {
            t->whole = true;
            snprintf(path, sizeof(path), "/brokers/topics/%s", t->name);
            load_issue(c, l, zk_get, path, on_topic, (int32_t)i, 0, true);
            snprintf(path, sizeof(path), "/config/topics/%s", t->name);
            load_issue(c, l, zk_get, path, on_topic_config, (int32_t)i, 0, true);
            continue;
        }
        memcpy(t->reuse_id, old->id, 16);
        t->nstates = old->npartitions;
        t->states = xcalloc((size_t)t->nstates + 1, sizeof(*t->states));
        t->state_versions = xmalloc(((size_t)t->nstates + 1) * sizeof(int32_t));
        t->state_mzxids = xcalloc((size_t)t->nstates + 1, sizeof(int64_t));
        t->state_read = xcalloc((size_t)t->nstates + 1, sizeof(bool));
        for (int32_t p = 0; p < t->nstates; p++)
            t->state_versions[p] = -1;
    }
    for (size_t i = 0; i < plan->nconfigs; i++) {
        ltopic_t *t = loader_topic(l, plan->configs[i]);
        if (!t || t->whole || t->config_read)
            continue;
        t->config_read = true;
        snprintf(path, sizeof(path), "/config/topics/%s", t->name);
        load_issue(c, l, zk_get, path, on_reused_config, (int32_t)(t - l->topics), 0, true);
    }
    for (size_t i = 0; i < plan->nstates; i++) {
        const partition_ref_t *r = &plan->states[i];
        ltopic_t *t = loader_topic(l, r->topic);
        if (!t || t->whole || r->partition < 0 || r->partition >= t->nstates ||
            t->state_read[r->partition])
            continue;
        t->state_read[r->partition] = true;
        snprintf(path, sizeof(path), "/brokers/topics/%s/partitions/%d/state", t->name,
                 r->partition);
        load_issue(c, l, zk_get, path, on_reused_state, (int32_t)(t - l->topics), r->partition,
                   true);
    }
}

static void on_topics(coordinator_t *c, zk_call_t *call)
{
    loader_t *l = call->arg;
    if (load_rc_ok(l, call))
        loader_plan_topics(c, l, call->children,
                           (size_t)(call->nchildren > 0 ? call->nchildren : 0));
    load_done_one(c, l);
}

static void on_controller_data(coordinator_t *c, zk_call_t *call)
{
    loader_t *l = call->arg;
    if (load_rc_ok(l, call)) {
        char err[160];
        int32_t id;
        if (znode_decode_controller((const uint8_t *)call->data, (size_t)call->data_len, &id, err,
                                    sizeof(err)) == 0) {
            l->controller_exists = true;
            l->controller_id = id;
            l->controller_owner = call->stat.ephemeralOwner;
        } else {
            VLOG_ERR("coord", "/controller: %s", err);
            /* An unreadable controller znode still holds the office. */
            l->controller_exists = true;
            l->controller_id = -1;
        }
    }
    load_done_one(c, l);
}

static void on_controller_exists(coordinator_t *c, zk_call_t *call)
{
    loader_t *l = call->arg;
    if (load_rc_ok(l, call))
        load_issue(c, l, zk_get, "/controller", on_controller_data, 0, 0, false);
    load_done_one(c, l);
}

static void on_epoch(coordinator_t *c, zk_call_t *call)
{
    loader_t *l = call->arg;
    if (load_rc_ok(l, call)) {
        char err[160];
        int32_t epoch;
        if (znode_decode_controller_epoch((const uint8_t *)call->data, (size_t)call->data_len,
                                          &epoch, err, sizeof(err)) == 0) {
            l->epoch = epoch;
            l->epoch_version = call->stat.version;
        } else {
            VLOG_ERR("coord", "/controller_epoch: %s", err);
        }
    }
    load_done_one(c, l);
}

static void on_deletes(coordinator_t *c, zk_call_t *call)
{
    loader_t *l = call->arg;
    if (load_rc_ok(l, call) && call->nchildren > 0) {
        l->deletes = call->children;
        l->ndeletes = (size_t)call->nchildren;
        call->children = NULL;
        call->nchildren = 0;
    }
    load_done_one(c, l);
}

static void reload_start(coordinator_t *c)
{
    assert(!c->load);
    if (!c->zh || !c->registered)
        return; /* the (re-)registration reloads */
    loader_t *l = xcalloc(1, sizeof(*l));
    l->session_gen = c->session_gen;
    l->controller_id = -1;
    l->epoch = -1;
    l->epoch_version = -1;
    l->plan = c->plan; /* the plan moves into the loader */
    memset(&c->plan, 0, sizeof(c->plan));
    if (!c->md)
        l->plan.full = true;
    c->load = l;
    /* A guard count so that completions cannot finish the load while it
     * is still being issued. */
    l->pending = 1;
    load_issue(c, l, zk_children, "/brokers/ids", on_broker_ids, 0, 0, true);
    if (l->plan.full || l->plan.topic_list) {
        load_issue(c, l, zk_children, "/brokers/topics", on_topics, 0, 0, true);
    } else {
        char **names = xcalloc(c->md->ntopics + 1, sizeof(char *));
        for (size_t i = 0; i < c->md->ntopics; i++)
            names[i] = c->md->topics[i].name;
        loader_plan_topics(c, l, names, c->md->ntopics);
        free(names);
    }
    load_issue(c, l, zk_exists, "/controller", on_controller_exists, 0, 0, true);
    load_issue(c, l, zk_get, "/controller_epoch", on_epoch, 0, 0, false);
    load_issue(c, l, zk_children, "/admin/delete_topics", on_deletes, 0, 0, true);
    load_done_one(c, l);
}

/* Runs the plan now, or once the reload in flight finishes. */
static void reload_kick(coordinator_t *c)
{
    if (c->stopping)
        return;
    if (c->load || c->reload_installing) {
        c->reload_dirty = true;
        return;
    }
    reload_start(c);
}

void coord_request_reload(coordinator_t *c)
{
    if (c->stopping)
        return;
    plan_clear(&c->plan);
    c->plan.full = true;
    reload_kick(c);
}

void coord_request_partial_reload(coordinator_t *c)
{
    reload_kick(c);
}

void coord_request_topic_reload(coordinator_t *c, const char *topic)
{
    if (c->stopping)
        return;
    plan_add_topic(&c->plan, topic);
    reload_kick(c);
}

void coord_request_state_reload(coordinator_t *c, const char *topic, int32_t partition)
{
    if (c->stopping)
        return;
    plan_add_state(&c->plan, topic, partition);
    reload_kick(c);
}

/* A watch fired on path: plan the read that re-arms it and brings the
 * change. Paths are relative to the chroot. */
static void plan_watched_path(coordinator_t *c, const char *path)
{
    static const char topics[] = "/brokers/topics/", configs[] = "/config/topics/";
    if (strcmp(path, "/brokers/topics") == 0) {
        c->plan.topic_list = true;
    } else if (strncmp(path, configs, sizeof(configs) - 1) == 0) {
        plan_add_config(&c->plan, path + sizeof(configs) - 1);
    } else if (strncmp(path, topics, sizeof(topics) - 1) == 0) {
        const char *name = path + sizeof(topics) - 1;
        const char *slash = strchr(name, '/');
        char topic[TOPIC_NAME_MAX + 1];
        int32_t partition;
        int end = 0;
        if (!slash) {
            plan_add_topic(&c->plan, name);
        } else if ((size_t)(slash - name) <= TOPIC_NAME_MAX &&
                   sscanf(slash, "/partitions/%d/state%n", &partition, &end) == 1 &&
                   slash[end] == '\0') {
            memcpy(topic, name, (size_t)(slash - name));
            topic[slash - name] = '\0';
            plan_add_state(&c->plan, topic, partition);
        } else {
            c->plan.full = true; /* not a znode we watch: be safe */
        }
    } else if (strcmp(path, "/brokers/ids") != 0 && strcmp(path, "/controller") != 0 &&
               strcmp(path, "/admin/delete_topics") != 0) {
        c->plan.full = true; /* every reload reads those three */
    }
}

/* ---- registration and session ---- */

/* This broker's inter-broker endpoint: the registration's host:port. */
static const md_endpoint_t *own_endpoint(const coordinator_t *c)
{
    assert(c->cfg.nendpoints >= 1 && c->cfg.nendpoints <= MD_MAX_ENDPOINTS);
    assert(c->cfg.inter_broker_endpoint < c->cfg.nendpoints);
    return &c->cfg.endpoints[c->cfg.inter_broker_endpoint];
}

static void registration_payload(const coordinator_t *c, uint8_t **buf, size_t *len)
{
    md_broker_t me = {
        .id = c->cfg.broker_id,
        .host = own_endpoint(c)->host,
        .rpc_host = (char *)c->cfg.rpc_host,
        .port = own_endpoint(c)->port,
        .rpc_port = c->cfg.rpc_port,
        .rack = (char *)c->cfg.rack,
        .endpoints = (md_endpoint_t *)c->cfg.endpoints,
        .nendpoints = c->cfg.nendpoints,
    };
    *buf = znode_encode_broker(&me, len);
}

/* Keeps the registered session's client id for a fast restart
 * (zk_session.c). A failure only costs that: a restarted process waits for
 * the session to expire. */
static void save_session_file(coordinator_t *c)
{
    assert(c->zh && c->registered);
    if (c->session_file)
        c->session_file_saved = zk_session_file_save(c->session_file, zoo_client_id(c->zh)) == 0;
}

static void on_registered(coordinator_t *c, zk_call_t *call)
{
    c->registering = false;
    if (call->session_gen != c->session_gen)
        return;
    if (call->rc == ZOK) {
        c->registered = true;
        c->session_id = zoo_client_id(c->zh)->client_id;
        save_session_file(c);
        VLOG_INFO("coord", "re-registered broker %d in a new ZooKeeper session 0x%llx",
                  c->cfg.broker_id, (unsigned long long)c->session_id);
        coord_request_reload(c);
        return;
    }
    VLOG_ERR("coord", "re-registering broker %d: %s; retrying", c->cfg.broker_id, zerror(call->rc));
    coord_schedule_retry(c);
}

static void register_async(coordinator_t *c)
{
    if (c->registering || c->registered || !c->zh)
        return;
    char path[64];
    snprintf(path, sizeof(path), "/brokers/ids/%d", c->cfg.broker_id);
    uint8_t *buf;
    size_t len;
    registration_payload(c, &buf, &len);
    c->registering = true;
    zk_create(c, zk_call_new(c, on_registered, NULL, path), buf, len, ZOO_EPHEMERAL);
    free(buf);
}

static char *connect_string(const coordinator_t *c)
{
    return c->chroot ? xasprintf("%s%s", c->zk_hosts, c->chroot) : xstrdup(c->zk_hosts);
}

/* Opens a new session handle; its CONNECTED event registers the broker. */
static void reopen_session(coordinator_t *c)
{
    assert(!c->registered && c->zh == NULL);
    char *connect = connect_string(c);
    if (zk_open_session(c, connect) != 0)
        coord_schedule_retry(c);
    free(connect);
}

static void on_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    coordinator_t *c = w->data;
    if (!c->zh)
        reopen_session(c);
    else if (!c->registered)
        register_async(c);
    else
        coord_request_reload(c);
}

/* This broker stops acting as the leader of its partitions: in the cache
 * each becomes leaderless at its current epoch (Metadata answers
 * LEADER_NOT_AVAILABLE, so clients look elsewhere) and the replica manager
 * hears it (Produce and Fetch answer NOT_LEADER_OR_FOLLOWER). The next
 * reload, once registered again, brings the partitions' real state: a new
 * leader, or this broker again at the same epoch when none was elected. */
static void step_down(coordinator_t *c)
{
    const int32_t me = c->cfg.broker_id;
    int stepped = 0;
    for (size_t i = 0; c->md && i < c->md->ntopics; i++) {
        md_topic_t *t = &c->md->topics[i];
        for (int32_t p = 0; p < t->npartitions; p++) {
            md_partition_t *mp = &t->partitions[p];
            if (mp->leader != me)
                continue;
            mp->leader = -1;
            stepped++;
            if (c->cb.partition_changed)
                c->cb.partition_changed(c->cb.arg, t, mp);
        }
    }
    if (stepped)
        VLOG_WARN("coord", "broker %d steps down as leader of %d partition(s)", me, stepped);
}

/* The session is gone (expired, or disconnected past its timeout, which
 * ZooKeeper will report as expired when it can): its ephemeral znodes,
 * the registration and the controller office, are gone or about to go, and
 * the controller elects other leaders for this broker's partitions. So
 * step down at once rather than keep taking writes for partitions that
 * another broker now leads, then register again with a new session. */
static void session_lost(coordinator_t *c, const char *why, bool server_may_hold)
{
    /* A session declared lost by the client alone may still be alive on
     * the server, its registration blocking ours until it expires: once
     * connected again, it is ended (zk_reap_session). */
    if (server_may_hold && c->zh)
        c->lost_session = *zoo_client_id(c->zh);
    VLOG_WARN("coord",
              "ZooKeeper session 0x%llx lost (%s); stepping down and re-registering in a new "
              "session",
              (unsigned long long)c->session_id, why);
    controller_resign(c, why);
    step_down(c);
    c->registered = false;
    c->registering = false;
    c->disconnected_since_ms = 0;
    zk_close_session(c);
    reopen_session(c);
}

/* Once a second: a registered broker that has been disconnected for
 * longer than the session timeout takes its session as lost. The server
 * expired it by then, since the server last heard from it no later than
 * the disconnection (libzookeeper only reports the expiry when it gets
 * through to the server again, which a partition may delay for long).
 * Apache Curator 3's simulated session expiry is the same rule.
 *
 * Except while ZooKeeper is down: a server that restarts gives every
 * session it restores a new timeout, so a broker would give up a session
 * that is still good, and with every broker stepping down, a ZooKeeper
 * outage would stop the whole cluster. A refused connection says that no
 * server was listening at that moment; with a single server, the timeout
 * then counts from the last refusal. (With an ensemble one member's
 * refusal proves nothing about the others, and a server whose host is
 * down refuses nothing: those are taken as a cut.) */
static void check_session(coordinator_t *c)
{
    if (!c->registered || !c->zh || c->disconnected_since_ms == 0)
        return;
    int timeout_ms = zoo_recv_timeout(c->zh);
    if (timeout_ms <= 0)
        timeout_ms = c->cfg.zk_session_timeout_ms;
    int64_t since_ms = c->disconnected_since_ms;
    int64_t refused_ms = zk_last_refused_ms();
    if (!strchr(c->zk_hosts, ',') && refused_ms > since_ms)
        since_ms = refused_ms;
    int64_t away_ms = coord_now_ms() - since_ms;
    if (away_ms <= timeout_ms)
        return;
    /* The watcher thread may have seen the session come back in an event
     * this loop has not drained yet: a live session is never declared lost. */
    if (zk_session_state(c) == ZOO_CONNECTED_STATE)
        return;
    char why[96];
    snprintf(why, sizeof(why),
             "out of reach of ZooKeeper for %lld ms, past the %d ms session timeout",
             (long long)away_ms, timeout_ms);
    session_lost(c, why, true);
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    coordinator_t *c = w->data;
    check_session(c);
    controller_check_waiters(c, false);
}

void coord_on_watch(coordinator_t *c, const zk_watch_event_t *ev)
{
    if (ev->session_gen != c->session_gen)
        return; /* an event of a handle we closed */
    if (ev->type != ZOO_SESSION_EVENT) {
        if (!c->stopping) {
            plan_watched_path(c, ev->path);
            reload_kick(c);
        }
        return;
    }
    if (ev->state == ZOO_CONNECTED_STATE) {
        VLOG_INFO("coord", "ZooKeeper session connected");
        c->disconnected_since_ms = 0;
        if (c->lost_session.client_id != 0) {
            char *connect = connect_string(c);
            zk_reap_session(c, connect, &c->lost_session);
            free(connect);
            memset(&c->lost_session, 0, sizeof(c->lost_session));
        }
        if (!c->registered)
            register_async(c);
        else
            coord_request_reload(c);
    } else if (ev->state == ZOO_CONNECTING_STATE) {
        VLOG_WARN("coord", "lost the ZooKeeper connection; reconnecting");
        if (c->disconnected_since_ms == 0)
            c->disconnected_since_ms = coord_now_ms();
    } else if (ev->state == ZOO_EXPIRED_SESSION_STATE) {
        session_lost(c, "expired", false);
    }
}

/* ---- start-up (blocking) ---- */

static int sync_create_path(zhandle_t *zh, const char *path, char *err, size_t err_size)
{
    int rc = zoo_create(zh, path, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0);
    if (rc != ZOK && rc != ZNODEEXISTS) {
        snprintf(err, err_size, "cannot create %s in ZooKeeper: %s", path, zerror(rc));
        return -1;
    }
    return 0;
}

static int sync_create_recursive(zhandle_t *zh, const char *path, char *err, size_t err_size)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *s = buf + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (sync_create_path(zh, buf, err, err_size) != 0)
            return -1;
        *s = '/';
    }
    return sync_create_path(zh, buf, err, err_size);
}

static int start_session(coordinator_t *c, const char *connect, int64_t deadline, char *err,
                         size_t err_size)
{
    if (zk_open_session(c, connect) != 0) {
        snprintf(err, err_size, "invalid zookeeper.connect '%s'", c->cfg.zk_connect);
        return -1;
    }
    if (!zk_wait_connected(c, deadline)) {
        snprintf(err, err_size, "ZooKeeper at %s unreachable within %d ms", c->zk_hosts,
                 c->cfg.zk_session_timeout_ms);
        return -1;
    }
    return 0;
}

static int load_cluster_id(coordinator_t *c, char *err, size_t err_size)
{
    for (int attempt = 0; attempt < 3; attempt++) {
        char buf[256];
        int len = sizeof(buf);
        struct Stat st;
        int rc = zoo_get(c->zh, "/cluster/id", 0, buf, &len, &st);
        if (rc == ZOK) {
            char derr[160];
            if (len < 0 || znode_decode_cluster_id((const uint8_t *)buf, (size_t)len,
                                                   &c->cluster_id, derr, sizeof(derr)) != 0) {
                snprintf(err, err_size, "/cluster/id is corrupt: %s", len < 0 ? "empty" : derr);
                return -1;
            }
            return 0;
        }
        if (rc != ZNONODE) {
            snprintf(err, err_size, "reading /cluster/id: %s", zerror(rc));
            return -1;
        }
        char id[23];
        coord_random_cluster_id(id);
        size_t plen;
        uint8_t *payload = znode_encode_cluster_id(id, &plen);
        rc = zoo_create(c->zh, "/cluster/id", (const char *)payload, (int)plen,
                        &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0);
        free(payload);
        if (rc == ZOK)
            VLOG_INFO("coord", "created cluster id %s", id);
        else if (rc != ZNODEEXISTS) {
            snprintf(err, err_size, "creating /cluster/id: %s", zerror(rc));
            return -1;
        }
    }
    snprintf(err, err_size, "/cluster/id keeps disappearing");
    return -1;
}

/* True when something accepts TCP connections at host:port. */
static bool endpoint_accepts(const char *host, int32_t port)
{
    char service[16];
    snprintf(service, sizeof(service), "%d", port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    if (getaddrinfo(host, service, &hints, &ai) != 0 || !ai)
        return false;
    bool ok = false;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (rc == 0) {
            ok = true;
        } else if (errno == EINPROGRESS) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            int soerr = 0;
            socklen_t sl = sizeof(soerr);
            if (poll(&pfd, 1, 500) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 &&
                soerr == 0)
                ok = true;
        }
        close(fd);
    }
    freeaddrinfo(ai);
    return ok;
}

/* Creates /brokers/ids/<id>. A znode left by this broker's previous,
 * killed process is waited out (its session expires within the session
 * timeout); a live broker holding the id is an error. */
static int register_sync(coordinator_t *c, char *err, size_t err_size)
{
    char path[64];
    snprintf(path, sizeof(path), "/brokers/ids/%d", c->cfg.broker_id);
    uint8_t *payload;
    size_t plen;
    registration_payload(c, &payload, &plen);
    if (plen > COORD_MAX_REGISTRATION_BYTES) {
        /* Brokers read registrations up to this size (below). */
        snprintf(err, err_size, "the registration of broker %d is %zu bytes (max %d)",
                 c->cfg.broker_id, plen, COORD_MAX_REGISTRATION_BYTES);
        free(payload);
        return -1;
    }
    char *buf = xmalloc(COORD_MAX_REGISTRATION_BYTES);
    int64_t wait_deadline = -1;
    int result = -1;
    for (;;) {
        int rc = zoo_create(c->zh, path, (const char *)payload, (int)plen, &ZOO_OPEN_ACL_UNSAFE,
                            ZOO_EPHEMERAL, NULL, 0);
        if (rc == ZOK) {
            result = 0;
            break;
        }
        if (rc != ZNODEEXISTS) {
            snprintf(err, err_size, "registering %s: %s", path, zerror(rc));
            break;
        }
        int len = COORD_MAX_REGISTRATION_BYTES;
        struct Stat st;
        rc = zoo_get(c->zh, path, 0, buf, &len, &st);
        if (rc == ZNONODE)
            continue;
        if (rc != ZOK) {
            snprintf(err, err_size, "reading %s: %s", path, zerror(rc));
            break;
        }
        md_broker_t other = {0};
        char derr[160];
        bool decoded = len > 0 && znode_decode_broker((const uint8_t *)buf, (size_t)len, &other,
                                                      derr, sizeof(derr)) == 0;
        char where[300];
        snprintf(where, sizeof(where), "%s:%d", decoded ? other.host : "?",
                 decoded ? other.port : -1);
        /* Our own RPC endpoint is ours now, so an entry naming it is stale;
         * anyone else answering on theirs is alive. */
        bool mine = decoded && c->cfg.rpc_port > 0 && other.rpc_port == c->cfg.rpc_port &&
                    strcmp(other.rpc_host, c->cfg.rpc_host) == 0;
        bool live = decoded && !mine && other.rpc_port > 0 &&
                    endpoint_accepts(other.rpc_host, other.rpc_port);
        md_broker_clear(&other);
        if (live) {
            snprintf(err, err_size, "broker id %d is already registered by a live broker at %s",
                     c->cfg.broker_id, where);
            break;
        }
        if (wait_deadline < 0) {
            int timeout = zoo_recv_timeout(c->zh);
            wait_deadline = coord_now_ms() + (timeout > 0 ? timeout : 6000) * 3 / 2 + 1000;
            VLOG_WARN("coord",
                      "broker id %d is registered by session 0x%llx (%s), probably this broker's "
                      "previous process; waiting up to %lld ms for it to expire",
                      c->cfg.broker_id, (unsigned long long)st.ephemeralOwner, where,
                      (long long)(wait_deadline - coord_now_ms()));
        }
        if (coord_now_ms() >= wait_deadline) {
            snprintf(err, err_size, "broker id %d is already registered by a live broker at %s",
                     c->cfg.broker_id, where);
            break;
        }
        usleep(200 * 1000);
    }
    free(buf);
    free(payload);
    return result;
}

/* Deletes an ephemeral znode of this session now. */
static void delete_own_ephemeral(coordinator_t *c, const char *path)
{
    struct Stat st;
    if (zoo_exists(c->zh, path, 0, &st) == ZOK && st.ephemeralOwner == c->session_id)
        zoo_delete(c->zh, path, st.version);
}

/* Stop: ZooKeeper drops a closed session's ephemeral znodes, but
 * zookeeper_close() returns once the close is sent, and a close stuck
 * behind a long queue may never be: remove ours explicitly first, so that
 * the controller office and the registration are free at once. */
static void deregister(coordinator_t *c)
{
    if (!c->zh || !c->registered || zk_session_state(c) != ZOO_CONNECTED_STATE)
        return;
    if (c->is_controller)
        delete_own_ephemeral(c, "/controller");
    char path[64];
    snprintf(path, sizeof(path), "/brokers/ids/%d", c->cfg.broker_id);
    delete_own_ephemeral(c, path);
}

static void coordinator_free(coordinator_t *c)
{
    c->stopping = true;
    ev_timer_stop(c->loop, &c->retry_timer);
    ev_timer_stop(c->loop, &c->tick_timer);
    controller_check_waiters(c, true);
    controlled_shutdown_free(c);
    rpc_glue_stop(c);
    deregister(c);
    /* zookeeper_close() tells the server only over a live connection;
     * otherwise the session lives on until it expires, and the file lets a
     * restart end it. */
    bool closing_on_server = c->zh && zk_session_state(c) == ZOO_CONNECTED_STATE;
    zk_close_session(c);
    zk_reaper_join(c);
    if (c->session_file_saved && closing_on_server)
        zk_session_file_remove(c->session_file);
    free(c->session_file);
    zk_bridge_destroy(c);
    if (c->load)
        loader_free(c->load);
    plan_clear(&c->plan);
    coord_push_clear(c);
    metadata_free(c->md, c->md_zk);
    for (size_t i = 0; i < c->ndelete_requests; i++)
        free(c->delete_requests[i]);
    free(c->delete_requests);
    for (size_t i = 0; i < c->ndeleting; i++)
        free(c->deleting[i]);
    free(c->deleting);
    free(c->cluster_id);
    free(c->zk_hosts);
    free(c->chroot);
    free((char *)c->cfg.zk_connect);
    md_endpoints_free((md_endpoint_t *)c->cfg.endpoints, c->cfg.nendpoints);
    free((char *)c->cfg.rpc_host);
    free(c->rpc_bind_host);
    free((char *)c->cfg.rack);
    free(c);
}

/* The coordinator with its configuration copied; nothing started. */
static coordinator_t *coordinator_new(struct ev_loop *loop, const coordinator_config_t *cfg,
                                      const coordinator_callbacks_t *cb)
{
    assert(cfg->zk_connect != NULL);
    assert(cfg->nendpoints >= 1 && cfg->nendpoints <= MD_MAX_ENDPOINTS);
    assert(cfg->inter_broker_endpoint < cfg->nendpoints);
    coordinator_t *c = xcalloc(1, sizeof(*c));
    c->loop = loop;
    c->cfg = *cfg;
    c->cfg.zk_connect = xstrdup(cfg->zk_connect);
    /* Owned copies, freed by coordinator_free. */
    md_endpoint_t *eps = xcalloc(cfg->nendpoints, sizeof(*eps));
    for (size_t i = 0; i < cfg->nendpoints; i++)
        md_endpoint_set(&eps[i], cfg->endpoints[i].listener, cfg->endpoints[i].host,
                        cfg->endpoints[i].port, cfg->endpoints[i].security_protocol);
    c->cfg.endpoints = eps;
    /* Peers connect to the RPC listener's host, unless it is a wildcard
     * address, which only the advertised host can stand for. */
    const char *rpc_host = cfg->rpc_host;
    if (!rpc_host || !rpc_host[0] || strcmp(rpc_host, "0.0.0.0") == 0 ||
        strcmp(rpc_host, "::") == 0 || strcmp(rpc_host, "*") == 0)
        rpc_host = own_endpoint(c)->host;
    c->cfg.rpc_host = xstrdup(rpc_host);
    c->rpc_bind_host = xstrdup(cfg->rpc_host && cfg->rpc_host[0] ? cfg->rpc_host : rpc_host);
    c->cfg.rack = cfg->rack && cfg->rack[0] ? xstrdup(cfg->rack) : NULL;
    c->session_file = zk_session_file_path(cfg->session_dir);
    c->cfg.session_dir = NULL; /* a view: session_file is the owned copy */
    if (c->cfg.zk_session_timeout_ms <= 0)
        c->cfg.zk_session_timeout_ms = 6000; /* zookeeper.session.timeout.ms's default */
    if (cb)
        c->cb = *cb;
    c->controller_epoch_seen = -1;
    c->zk_controller_epoch = -1;
    c->my_controller_epoch = -1;
    /* "host:port,host:port/chroot": the chroot starts at the first '/'. */
    const char *slash = strchr(cfg->zk_connect, '/');
    if (slash) {
        c->zk_hosts = xstrndup(cfg->zk_connect, (size_t)(slash - cfg->zk_connect));
        size_t n = strlen(slash);
        while (n > 1 && slash[n - 1] == '/')
            n--;
        c->chroot = n > 1 ? xstrndup(slash, n) : NULL;
    } else {
        c->zk_hosts = xstrdup(cfg->zk_connect);
    }
    ev_timer_init(&c->retry_timer, on_retry, RETRY_DELAY_S, 0.);
    c->retry_timer.data = c;
    ev_timer_init(&c->tick_timer, on_tick, 1., 1.);
    c->tick_timer.data = c;
    zk_bridge_init(c);
    return c;
}

/* Start-up, blocking: the RPC listener, the session (creating the chroot
 * first), the base znodes, the cluster id and the registration. */
static int connect_and_register(coordinator_t *c, char *err, size_t err_size)
{
    const int64_t deadline = coord_now_ms() + c->cfg.zk_session_timeout_ms;
    /* The RPC listener first: the registration names its port, and a
     * stale registration is recognised by it. */
    if (rpc_glue_start(c, err, err_size) != 0)
        return -1;
    if (c->chroot) {
        if (start_session(c, c->zk_hosts, deadline, err, err_size) != 0 ||
            sync_create_recursive(c->zh, c->chroot, err, err_size) != 0)
            return -1;
        zk_close_session(c);
        zk_drain(c);
    }
    char *connect = connect_string(c);
    /* Before this process registers: a registration left by the previous
     * one goes now rather than after its session timeout. */
    zk_end_previous_session(c, connect);
    int rc = start_session(c, connect, deadline, err, err_size);
    free(connect);
    if (rc != 0)
        return -1;
    static const char *const base_paths[] = {
        "/brokers",       "/brokers/ids", "/brokers/topics",      "/config",
        "/config/topics", "/admin",       "/admin/delete_topics", "/cluster",
    };
    for (size_t i = 0; i < sizeof(base_paths) / sizeof(base_paths[0]); i++)
        if (sync_create_path(c->zh, base_paths[i], err, err_size) != 0)
            return -1;
    if (load_cluster_id(c, err, err_size) != 0 || register_sync(c, err, err_size) != 0)
        return -1;
    c->registered = true;
    c->session_id = zoo_client_id(c->zh)->client_id;
    save_session_file(c);
    VLOG_INFO("coord", "registered broker %d (%s:%d, rpc %d) in cluster %s, session 0x%llx",
              c->cfg.broker_id, own_endpoint(c)->host, own_endpoint(c)->port, c->cfg.rpc_port,
              c->cluster_id, (unsigned long long)c->session_id);
    return 0;
}

/* Start-up, blocking: the first metadata load, through the same
 * asynchronous path as every later one, pumped on this thread; then the
 * first election, so that a cluster of one takes admin requests at once. */
static int first_load(coordinator_t *c, char *err, size_t err_size)
{
    assert(c->registered && c->reloads_done == 0);
    coord_request_reload(c);
    const int64_t deadline = coord_now_ms() + c->cfg.zk_session_timeout_ms;
    bool loaded = false;
    while (!loaded && coord_now_ms() < deadline) {
        zk_pump_until(c, &loaded, coord_now_ms() + 50);
        loaded = c->reloads_done > 0;
        if (loaded || c->load)
            continue;
        /* A failed load armed the retry timer, which only the loop runs. */
        if (ev_is_active(&c->retry_timer)) {
            ev_timer_stop(c->loop, &c->retry_timer);
            usleep(100 * 1000);
        }
        coord_request_reload(c);
    }
    if (!loaded) {
        snprintf(err, err_size, "could not load the cluster state from ZooKeeper within %d ms",
                 c->cfg.zk_session_timeout_ms);
        return -1;
    }
    bool never = false;
    while (c->electing && coord_now_ms() < deadline)
        zk_pump_until(c, &never, coord_now_ms() + 50);
    /* The election's outcome reaches the metadata through the reload it
     * requested; waiting for it means a started coordinator reports the
     * controller it knows of (in a cluster of one, itself) instead of the
     * -1 of the first load, which raced callers that asked at once. */
    while ((c->load != NULL || c->reload_dirty) && coord_now_ms() < deadline)
        zk_pump_until(c, &never, coord_now_ms() + 50);
    return 0;
}

int coordinator_start(struct ev_loop *loop, const coordinator_config_t *cfg,
                      const coordinator_callbacks_t *cb, coordinator_t **out, char *err,
                      size_t err_size)
{
    assert(loop && cfg && out);
    *out = NULL;
    coordinator_t *c = coordinator_new(loop, cfg, cb);
    if (connect_and_register(c, err, err_size) != 0 || first_load(c, err, err_size) != 0) {
        coordinator_free(c);
        return -1;
    }
    ev_timer_start(loop, &c->tick_timer);
    *out = c;
    return 0;
}

void coordinator_stop(coordinator_t *c)
{
    if (!c)
        return;
    VLOG_INFO("coord", "closing the ZooKeeper session of broker %d", c->cfg.broker_id);
    coordinator_free(c);
}

const cluster_metadata_t *coordinator_metadata(const coordinator_t *c)
{
    assert(c->md);
    return c->md;
}

int32_t coordinator_broker_id(const coordinator_t *c)
{
    return c->cfg.broker_id;
}

bool coordinator_is_controller(const coordinator_t *c)
{
    return c->is_controller;
}

coordinator_session_t coordinator_session_state(const coordinator_t *c)
{
    if (c->zh == NULL)
        return COORDINATOR_SESSION_CLOSED;
    /* The ZooKeeper constants are variables, not case labels. */
    int state = zk_session_state(c);
    if (state == ZOO_CONNECTED_STATE)
        return COORDINATOR_SESSION_CONNECTED;
    if (state == ZOO_EXPIRED_SESSION_STATE)
        return COORDINATOR_SESSION_EXPIRED;
    if (state == ZOO_AUTH_FAILED_STATE)
        return COORDINATOR_SESSION_CLOSED;
    return COORDINATOR_SESSION_CONNECTING;
}

const char *coordinator_session_name(coordinator_session_t state)
{
    static const char *const names[COORDINATOR_SESSION_STATES] = {
        [COORDINATOR_SESSION_CONNECTED] = "connected",
        [COORDINATOR_SESSION_CONNECTING] = "connecting",
        [COORDINATOR_SESSION_EXPIRED] = "expired",
        [COORDINATOR_SESSION_CLOSED] = "closed",
    };
    assert(state >= 0 && state < COORDINATOR_SESSION_STATES);
    return names[state];
}
