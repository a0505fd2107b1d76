/* The replica manager: this broker's partitions, keyed by (topic, partition)
 * in a chained hash table. Each entry owns its topic name; the partition
 * logs themselves are owned by the log manager.
 *
 * Fencing: a partition_changed carrying a leader epoch older than the one
 * recorded is ignored, so a late notification from a deposed controller
 * cannot move leadership backwards. */
#include "replica_manager.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "vlog.h"
#include "xalloc.h"

#define RM_MODULE          "replica"
#define RM_INITIAL_BUCKETS 64

typedef struct rm_entry {
    replica_partition_t pub; /* first: replica_manager_get hands out &pub */
    char *topic;             /* owned */
    size_t topic_len;
    int32_t partition;
    uint32_t hash;
    struct rm_entry *next;
} rm_entry_t;

struct replica_manager {
    struct ev_loop *loop;
    const struct broker_config *cfg;
    log_manager_t *logs;
    coordinator_t *coord; /* NULL until set_coordinator */
    rm_entry_t **buckets;
    size_t nbuckets; /* power of two */
    size_t nentries;
    replica_event_fn listener;
    void *listener_arg;
};

static uint32_t rm_hash(const char *topic, size_t len, int32_t partition)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)topic[i];
        h *= 16777619u;
    }
    h ^= (uint32_t)partition;
    h *= 16777619u;
    return h;
}

static rm_entry_t **rm_find_slot(replica_manager_t *rm, const char *topic, size_t len,
                                 int32_t partition)
{
    uint32_t h = rm_hash(topic, len, partition);
    rm_entry_t **slot = &rm->buckets[h & (rm->nbuckets - 1)];
    for (; *slot; slot = &(*slot)->next) {
        rm_entry_t *e = *slot;
        if (e->hash == h && e->partition == partition && e->topic_len == len &&
            memcmp(e->topic, topic, len) == 0)
            return slot;
    }
    return slot;
}

static void rm_grow(replica_manager_t *rm)
{
    size_t n = rm->nbuckets * 2;
    rm_entry_t **b = xcalloc(n, sizeof(*b));
    for (size_t i = 0; i < rm->nbuckets; i++) {
        rm_entry_t *e = rm->buckets[i];
        while (e) {
            rm_entry_t *next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(rm->buckets);
    rm->buckets = b;
    rm->nbuckets = n;
}

replica_manager_t *replica_manager_new(struct ev_loop *loop, const struct broker_config *cfg,
                                       log_manager_t *logs)
{
    assert(cfg != NULL && logs != NULL);
    replica_manager_t *rm = xcalloc(1, sizeof(*rm));
    rm->loop = loop;
    rm->cfg = cfg;
    rm->logs = logs;
    rm->nbuckets = RM_INITIAL_BUCKETS;
    rm->buckets = xcalloc(rm->nbuckets, sizeof(*rm->buckets));
    return rm;
}

void replica_manager_free(replica_manager_t *rm)
{
    if (!rm)
        return;
    for (size_t i = 0; i < rm->nbuckets; i++) {
        rm_entry_t *e = rm->buckets[i];
        while (e) {
            rm_entry_t *next = e->next;
            free(e->topic);
            free(e);
            e = next;
        }
    }
    free(rm->buckets);
    free(rm);
}

void replica_manager_set_listener(replica_manager_t *rm, replica_event_fn fn, void *arg)
{
    rm->listener = fn;
    rm->listener_arg = arg;
}

static void rm_notify(replica_manager_t *rm, const char *topic, int32_t partition)
{
    if (rm->listener)
        rm->listener(rm->listener_arg, topic, partition);
}

static int32_t rm_own_id(const replica_manager_t *rm)
{
    return rm->coord ? coordinator_broker_id(rm->coord) : rm->cfg->broker_id;
}

/* The topic's effective log settings: the broker defaults with the topic's
 * overrides applied. Keys that are not log settings (min.insync.replicas,
 * cleanup.policy, ...) are the API layer's and are skipped here. */
static void rm_topic_log_config(const replica_manager_t *rm, const md_topic_t *topic,
                                log_config_t *cfg)
{
    *cfg = *log_manager_defaults(rm->logs);
    for (size_t i = 0; i < topic->nconfigs; i++) {
        char err[128];
        if (log_config_set(cfg, topic->config_keys[i], topic->config_values[i], err, sizeof(err)) !=
            0)
            VLOG_DEBUG(RM_MODULE, "topic %s: config %s not applied to the log: %s", topic->name,
                       topic->config_keys[i], err);
    }
}

int64_t replica_manager_leader_appended(replica_manager_t *rm, const replica_partition_t *p)
{
    assert(p != NULL && p->log != NULL);
    assert(p->is_leader);
    (void)rm;
    partition_log_set_high_watermark(p->log, partition_log_end_offset(p->log));
    return partition_log_high_watermark(p->log);
}

static void rm_partition_changed(void *arg, const md_topic_t *topic, const md_partition_t *p)
{
    replica_manager_t *rm = arg;
    assert(topic != NULL && p != NULL);
    size_t len = strlen(topic->name);
    rm_entry_t **slot = rm_find_slot(rm, topic->name, len, p->id);
    rm_entry_t *e = *slot;
    log_config_t cfg;
    rm_topic_log_config(rm, topic, &cfg);

    if (e && p->leader_epoch < e->pub.leader_epoch) {
        VLOG_INFO(RM_MODULE, "%s-%d: ignoring leader %d epoch %d older than epoch %d", topic->name,
                  p->id, p->leader, p->leader_epoch, e->pub.leader_epoch);
        return;
    }
    if (!e) {
        partition_log_t *log = NULL;
        log_err_t err = log_manager_get_or_create(rm->logs, topic->name, p->id, &cfg, &log);
        if (err != LOG_OK) {
            VLOG_ERR(RM_MODULE, "%s-%d: cannot open the local log: %s", topic->name, p->id,
                     log_err_str(err));
            return;
        }
        e = xcalloc(1, sizeof(*e));
        e->topic = xstrdup(topic->name);
        e->topic_len = len;
        e->partition = p->id;
        e->hash = rm_hash(topic->name, len, p->id);
        e->pub.log = log;
        *slot = e;
        rm->nentries++;
        if (rm->nentries > rm->nbuckets)
            rm_grow(rm);
    } else {
        partition_log_set_config(e->pub.log, &cfg);
    }

    bool was_leader = e->pub.is_leader;
    e->pub.leader_id = p->leader;
    e->pub.leader_epoch = p->leader_epoch;
    e->pub.is_leader = p->leader == rm_own_id(rm);
    if (e->pub.is_leader)
        replica_manager_leader_appended(rm, &e->pub);
    if (was_leader != e->pub.is_leader)
        VLOG_INFO(RM_MODULE, "%s-%d: %s (leader %d, epoch %d, log end %lld)", topic->name, p->id,
                  e->pub.is_leader ? "leader" : "follower", p->leader, p->leader_epoch,
                  (long long)partition_log_end_offset(e->pub.log));
    rm_notify(rm, topic->name, p->id);
}

static void rm_partition_removed(void *arg, const char *topic, int32_t partition)
{
    replica_manager_t *rm = arg;
    assert(topic != NULL);
    rm_entry_t **slot = rm_find_slot(rm, topic, strlen(topic), partition);
    rm_entry_t *e = *slot;
    if (e) {
        *slot = e->next;
        rm->nentries--;
        free(e->topic);
        free(e);
    }
    /* The log may exist without an entry (a failed open, or an orphan). */
    if (log_manager_get(rm->logs, topic, partition)) {
        log_err_t err = log_manager_delete(rm->logs, topic, partition);
        if (err != LOG_OK)
            VLOG_ERR(RM_MODULE, "%s-%d: cannot delete the local log: %s", topic, partition,
                     log_err_str(err));
        else
            VLOG_INFO(RM_MODULE, "%s-%d: replica removed, log deleted", topic, partition);
    }
    rm_notify(rm, topic, partition);
}

coordinator_callbacks_t replica_manager_callbacks(replica_manager_t *rm)
{
    coordinator_callbacks_t cb = {
        .arg = rm,
        .partition_changed = rm_partition_changed,
        .partition_removed = rm_partition_removed,
    };
    return cb;
}

const replica_partition_t *replica_manager_get(replica_manager_t *rm, const char *topic,
                                               size_t topic_len, int32_t partition)
{
    rm_entry_t *e = *rm_find_slot(rm, topic, topic_len, partition);
    return e ? &e->pub : NULL;
}

/* ---- orphan removal ---- */

typedef struct orphan {
    char *topic; /* owned */
    int32_t partition;
} orphan_t;

typedef struct orphan_scan {
    const cluster_metadata_t *md;
    int32_t own_id;
    orphan_t *found;
    size_t n, cap;
} orphan_scan_t;

static bool md_assigns(const cluster_metadata_t *md, const char *topic, int32_t partition,
                       int32_t broker_id)
{
    const md_topic_t *t = cluster_metadata_topic(md, topic, strlen(topic));
    if (!t || partition < 0 || partition >= t->npartitions)
        return false;
    const md_partition_t *p = &t->partitions[partition];
    for (int32_t i = 0; i < p->nreplicas; i++)
        if (p->replicas[i] == broker_id)
            return true;
    return false;
}

static void orphan_visit(void *arg, const char *topic, int32_t partition, partition_log_t *log)
{
    orphan_scan_t *scan = arg;
    (void)log;
    if (md_assigns(scan->md, topic, partition, scan->own_id))
        return;
    if (scan->n == scan->cap) {
        scan->cap = scan->cap ? scan->cap * 2 : 16;
        scan->found = xrealloc(scan->found, scan->cap * sizeof(*scan->found));
    }
    scan->found[scan->n].topic = xstrdup(topic);
    scan->found[scan->n].partition = partition;
    scan->n++;
}

int replica_manager_remove_orphans(replica_manager_t *rm)
{
    assert(rm->coord != NULL);
    const cluster_metadata_t *md = coordinator_metadata(rm->coord);
    orphan_scan_t scan = {.md = md, .own_id = rm_own_id(rm)};
    /* Collect first: deleting while the log manager iterates is not allowed. */
    log_manager_foreach(rm->logs, orphan_visit, &scan);
    int removed = 0;
    for (size_t i = 0; i < scan.n; i++) {
        orphan_t *o = &scan.found[i];
        if (replica_manager_get(rm, o->topic, strlen(o->topic), o->partition)) {
            VLOG_WARN(RM_MODULE, "%s-%d: held locally but not assigned in the metadata; kept",
                      o->topic, o->partition);
        } else if (log_manager_delete(rm->logs, o->topic, o->partition) == LOG_OK) {
            VLOG_INFO(RM_MODULE, "%s-%d: no topic owns this log any more; deleted", o->topic,
                      o->partition);
            removed++;
        }
        free(o->topic);
    }
    free(scan.found);
    return removed;
}

void replica_manager_set_coordinator(replica_manager_t *rm, coordinator_t *coord)
{
    assert(coord != NULL);
    rm->coord = coord;
    replica_manager_remove_orphans(rm);
}
