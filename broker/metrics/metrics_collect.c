/* A scrape: the registry's counters, then the gauges read now from the
 * modules that own the state, through their public accessors (nothing is
 * kept here between scrapes):
 *  - partitions: the replica manager's (role, ISR against replicas and
 *    min.insync.replicas on the partitions this broker leads, log sizes)
 *    and its ISR change counters;
 *  - cluster: the coordinator's metadata cache (live brokers, controller,
 *    partitions without a live leader) and its ZooKeeper session;
 *  - connections: the Kafka listener's open connections;
 *  - consumer group lag: the groups this broker coordinates, each
 *    committed offset against the high watermark of the partition's local
 *    replica (a follower's trails its leader's by at most one fetch); a
 *    partition this broker holds no replica of has no lag here.
 * Output is sorted by label so that two scrapes of the same state are the
 * same text. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator.h"
#include "group_coordinator.h"
#include "kafka_errors.h"
#include "metrics_internal.h"
#include "net.h"
#include "partition_log.h"
#include "replica_manager.h"
#include "xalloc.h"

/* ---- partitions ---- */

typedef struct topic_size {
    const char *topic;
    int64_t bytes;
} topic_size_t;

typedef struct partition_tally {
    int64_t leaders, followers;
    int64_t under_replicated, under_min_isr;
    topic_size_t *sizes; /* one per partition until aggregated */
    size_t nsizes, cap;
} partition_tally_t;

static void tally_partition(void *arg, const replica_partition_info_t *p)
{
    partition_tally_t *tally = arg;
    assert(p->topic != NULL && p->size_bytes >= 0);
    if (p->is_leader) {
        tally->leaders++;
        tally->under_replicated += p->nisr < p->nreplicas;
        tally->under_min_isr += p->nisr < p->min_insync_replicas;
    } else {
        tally->followers++;
    }
    if (tally->nsizes == tally->cap) {
        tally->cap = tally->cap ? 2 * tally->cap : 64;
        tally->sizes = xrealloc(tally->sizes, tally->cap * sizeof(*tally->sizes));
    }
    tally->sizes[tally->nsizes++] = (topic_size_t){p->topic, p->size_bytes};
}

static int compare_topic_sizes(const void *a, const void *b)
{
    return strcmp(((const topic_size_t *)a)->topic, ((const topic_size_t *)b)->topic);
}

/* vltava_log_size_bytes: the partitions' sizes summed per topic, in name
 * order, topics beyond METRICS_MAX_TOPICS summed into the overflow series. */
static void write_log_sizes(mtext_t *t, partition_tally_t *tally)
{
    static const char name[] = "vltava_log_size_bytes";
    mtext_family(t, name, "gauge",
                 "Bytes of the local replicas' log segments, by topic (leaders and followers).");
    if (tally->nsizes > 0) /* qsort wants a base even for nothing */
        qsort(tally->sizes, tally->nsizes, sizeof(*tally->sizes), compare_topic_sizes);
    size_t ntopics = 0;
    int64_t other = -1;
    for (size_t i = 0; i < tally->nsizes;) {
        const char *topic = tally->sizes[i].topic;
        int64_t bytes = 0;
        for (; i < tally->nsizes && strcmp(tally->sizes[i].topic, topic) == 0; i++)
            bytes += tally->sizes[i].bytes;
        if (ntopics < METRICS_MAX_TOPICS) {
            mlabel_t label = {"topic", topic};
            mtext_sample_i64(t, name, &label, 1, bytes);
            ntopics++;
        } else {
            other = (other < 0 ? 0 : other) + bytes;
        }
    }
    if (other >= 0) {
        mlabel_t label = {"topic", METRICS_OTHER_LABEL};
        mtext_sample_i64(t, name, &label, 1, other);
    }
}

static void write_partitions(mtext_t *t, struct replica_manager *rm)
{
    partition_tally_t tally = {0};
    replica_manager_visit(rm, tally_partition, &tally);
    assert(tally.nsizes == (size_t)(tally.leaders + tally.followers));

    mtext_family(t, "vltava_partitions", "gauge",
                 "Partitions this broker holds a replica of, by role.");
    mlabel_t role = {"role", "leader"};
    mtext_sample_i64(t, "vltava_partitions", &role, 1, tally.leaders);
    role.value = "follower";
    mtext_sample_i64(t, "vltava_partitions", &role, 1, tally.followers);
    mtext_family(t, "vltava_under_replicated_partitions", "gauge",
                 "Partitions this broker leads whose ISR is smaller than their replica set.");
    mtext_sample_i64(t, "vltava_under_replicated_partitions", NULL, 0, tally.under_replicated);
    mtext_family(t, "vltava_under_min_isr_partitions", "gauge",
                 "Partitions this broker leads whose ISR is smaller than min.insync.replicas "
                 "(acks=all produce is refused).");
    mtext_sample_i64(t, "vltava_under_min_isr_partitions", NULL, 0, tally.under_min_isr);

    uint64_t shrinks, expands;
    replica_manager_isr_changes(rm, &shrinks, &expands);
    mtext_family(t, "vltava_isr_shrinks_total", "counter",
                 "ISR changes this broker wrote as leader that removed a replica.");
    mtext_sample_u64(t, "vltava_isr_shrinks_total", NULL, 0, shrinks);
    mtext_family(t, "vltava_isr_expands_total", "counter",
                 "ISR changes this broker wrote as leader that added a replica.");
    mtext_sample_u64(t, "vltava_isr_expands_total", NULL, 0, expands);

    write_log_sizes(t, &tally);
    free(tally.sizes);
}

/* ---- cluster ---- */

/* Partitions whose leader is none or not a live broker. */
static int64_t offline_partitions(const cluster_metadata_t *md)
{
    int64_t offline = 0;
    for (size_t i = 0; i < md->ntopics; i++) {
        const md_topic_t *topic = &md->topics[i];
        for (int32_t p = 0; p < topic->npartitions; p++) {
            int32_t leader = topic->partitions[p].leader;
            offline += leader < 0 || cluster_metadata_broker(md, leader) == NULL;
        }
    }
    return offline;
}

static void write_cluster(mtext_t *t, struct coordinator *coord)
{
    const cluster_metadata_t *md = coordinator_metadata(coord);
    bool controller = coordinator_is_controller(coord);

    mtext_family(t, "vltava_active_controller", "gauge",
                 "1 on the broker that is the controller, 0 elsewhere.");
    mtext_sample_i64(t, "vltava_active_controller", NULL, 0, controller);
    mtext_family(t, "vltava_controller_id", "gauge",
                 "The controller's broker id in this broker's metadata, -1 when none is known.");
    mtext_sample_i64(t, "vltava_controller_id", NULL, 0, md->controller_id);
    mtext_family(t, "vltava_live_brokers", "gauge",
                 "Brokers registered in ZooKeeper, in this broker's metadata.");
    mtext_sample_i64(t, "vltava_live_brokers", NULL, 0, (int64_t)md->nbrokers);
    /* Kafka's OfflinePartitionsCount: the controller's count, 0 elsewhere,
     * so that a sum over the brokers counts each partition once. */
    mtext_family(t, "vltava_offline_partitions", "gauge",
                 "Partitions without a live leader, reported by the controller (0 on the other "
                 "brokers).");
    mtext_sample_i64(t, "vltava_offline_partitions", NULL, 0,
                     controller ? offline_partitions(md) : 0);

    coordinator_session_t session = coordinator_session_state(coord);
    mtext_family(t, "vltava_zookeeper_session_state", "gauge",
                 "This broker's ZooKeeper session: 1 for its current state, 0 for the others.");
    for (int s = 0; s < COORDINATOR_SESSION_STATES; s++) {
        mlabel_t label = {"state", coordinator_session_name((coordinator_session_t)s)};
        mtext_sample_i64(t, "vltava_zookeeper_session_state", &label, 1, s == (int)session);
    }
}

/* ---- consumer group lag ---- */

static int compare_group_ids(const void *a, const void *b)
{
    return strcmp(((const group_listing_t *)a)->group_id, ((const group_listing_t *)b)->group_id);
}

typedef struct lag_writer {
    mtext_t *t;
    size_t series;
    int64_t other; /* -1: nothing beyond the cap */
} lag_writer_t;

/* A group id that is not valid UTF-8 has no series of its own: the
 * writer's repair could give two such groups the same label. */
static void lag_sample(lag_writer_t *lw, const char *group, const char *topic, int64_t lag)
{
    if (lw->series == METRICS_MAX_LAG_SERIES || !mtext_utf8_valid(group)) {
        lw->other = (lw->other < 0 ? 0 : lw->other) + lag;
        return;
    }
    mlabel_t labels[2] = {{"group", group}, {"topic", topic}};
    mtext_sample_i64(lw->t, "vltava_consumer_group_lag", labels, 2, lag);
    lw->series++;
}

/* One group's committed offsets, which come grouped by topic: a sample
 * per topic with at least one partition held here. */
static void write_one_group_lag(lag_writer_t *lw, struct group_coordinator *gc,
                                struct replica_manager *rm, const char *group)
{
    group_offsets_t out = {0};
    kslice_t id = {(const uint8_t *)group, (int32_t)strlen(group)};
    group_offset_fetch(gc, id, NULL, 0, false, &out);
    if (out.error == KAFKA_NONE) {
        for (int32_t i = 0; i < out.noffsets;) {
            const char *topic = out.offsets[i].topic;
            int64_t lag = 0;
            bool held = false;
            for (; i < out.noffsets && strcmp(out.offsets[i].topic, topic) == 0; i++) {
                const group_committed_t *c = &out.offsets[i];
                if (c->error != KAFKA_NONE || c->offset < 0)
                    continue;
                const replica_partition_t *rp =
                    replica_manager_get(rm, topic, strlen(topic), c->partition);
                if (rp == NULL)
                    continue;
                int64_t hw = partition_log_high_watermark(rp->log);
                lag += hw > c->offset ? hw - c->offset : 0;
                held = true;
            }
            if (held)
                lag_sample(lw, group, topic, lag);
        }
    }
    free(out.offsets);
}

static void write_group_lag(mtext_t *t, struct group_coordinator *gc, struct replica_manager *rm)
{
    mtext_family(t, "vltava_consumer_group_lag", "gauge",
                 "Records between a group's committed offsets and the high watermark, summed "
                 "over a topic's partitions that this broker holds a replica of; reported by the "
                 "group's coordinator. Groups beyond the series cap, and group ids that are not "
                 "UTF-8, are summed in group=\"(other)\",topic=\"(other)\".");
    if (gc == NULL)
        return;
    group_listing_t *groups = NULL;
    int32_t ngroups = 0;
    /* COORDINATOR_LOAD_IN_PROGRESS still lists the loaded partitions' groups. */
    (void)group_list(gc, NULL, 0, &groups, &ngroups);
    if (ngroups > 0)
        qsort(groups, (size_t)ngroups, sizeof(*groups), compare_group_ids);
    lag_writer_t lw = {.t = t, .other = -1};
    for (int32_t g = 0; g < ngroups; g++)
        write_one_group_lag(&lw, gc, rm, groups[g].group_id);
    if (lw.other >= 0) {
        mlabel_t labels[2] = {{"group", METRICS_OTHER_LABEL}, {"topic", METRICS_OTHER_LABEL}};
        mtext_sample_i64(t, "vltava_consumer_group_lag", labels, 2, lw.other);
    }
    free(groups);
}

/* ---- the whole scrape ---- */

static bool topic_in_metadata(void *arg, const char *topic)
{
    return cluster_metadata_topic(arg, topic, strlen(topic)) != NULL;
}

char *metrics_render(const metrics_sources_t *src, size_t *len)
{
    assert(src->registry != NULL && src->coord != NULL && src->replicas != NULL);
    mtext_t t;
    mtext_init(&t);
    const cluster_metadata_t *md = coordinator_metadata(src->coord);
    metrics_forget_topics(src->registry, topic_in_metadata, (void *)md);
    metrics_registry_write(src->registry, &t);
    write_partitions(&t, src->replicas);
    write_cluster(&t, src->coord);
    mtext_family(&t, "vltava_connections", "gauge", "Open Kafka client connections.");
    if (src->net != NULL)
        mtext_sample_u64(&t, "vltava_connections", NULL, 0, net_server_connections(src->net));
    write_group_lag(&t, src->groups, src->replicas);
    return mtext_take(&t, len);
}
