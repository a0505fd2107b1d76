/* The replica manager: this broker's partitions, keyed by (topic, partition)
 * in a chained hash table. Each entry owns its topic name; the partition
 * logs themselves are owned by the log manager.
 *
 * Fencing: a partition_changed carrying a leader epoch older than the one
 * recorded is ignored, so a late notification from a deposed controller
 * cannot move leadership backwards.
 *
 * Replication (design.md, Replication):
 *  - follower: one fetcher per leader broker sends one ReplicaFetch at a
 *    time for every partition it follows from that leader, appends what
 *    comes back with partition_log_append_replica, and truncates only
 *    where the leader says the epoch histories diverge (KIP-101/279);
 *  - leader: each ReplicaFetch updates that follower's progress; the high
 *    watermark is the least log end over the ISR (never moved back); a
 *    fetch with nothing to send is parked until an append or max_wait;
 *    a timer (and every fetch) re-decides the ISR, written through
 *    coordinator_alter_isr, one write in flight per partition. While a
 *    write is in flight the high watermark counts both the old and the
 *    proposed ISR, so it never gets ahead of either. */
#include "replica_manager.h"
#include "fnv1a.h"

#include <assert.h>
#include <ev.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "kafka_errors.h"
#include "partition_producers.h"
#include "record_batch.h"
#include "replica_logic.h"
#include "replica_throttle.h"
#include "rpc.h"
#include "rpc.pb-c.h"
#include "vlog.h"
#include "wall_clock.h"
#include "xalloc.h"

#define RM_FETCH_MAX_WAIT_MS     500
#define RM_FETCH_TIMEOUT_MS      5000
#define RM_FETCH_MAX_BYTES       (8 << 20) /* one answer */
#define RM_FETCH_PARTITION_BYTES (1 << 20)
#define RM_FETCH_MAX_PARTITIONS  4096 /* per request, both ways */
#define RM_MAX_FETCHERS          256  /* leaders followed at once */
#define RM_MAX_PARKED            256  /* parked follower fetches */
#define RM_BACKOFF_MIN_MS        50
#define RM_BACKOFF_MAX_MS        2000
/* After a refused ISR write, how long the leader waits before proposing
 * again: every follower fetch asks, so without it a refusal the leader
 * cannot fix (the coordinator already knows a newer leader, and tells us
 * on the loop's next turn) repeats at the fetch rate. */
#define RM_ISR_RETRY_MS 100

#define RM_MODULE          "replica"
#define RM_INITIAL_BUCKETS 64

typedef struct rm_entry {
    replica_partition_t pub; /* first: replica_manager_get hands out &pub */
    char *topic;             /* owned */
    size_t topic_len;
    int32_t partition;
    uint32_t hash;
    struct rm_entry *next;
    /* Leader state, valid while pub.is_leader (reset on each new epoch). */
    int32_t replicas[REPLICA_MAX_REPLICAS];
    int32_t nreplicas;
    int32_t isr[REPLICA_MAX_REPLICAS]; /* as last written (or assigned) */
    int32_t nisr;
    int32_t pending_isr[REPLICA_MAX_REPLICAS]; /* being written */
    int32_t npending_isr;
    bool isr_write_in_flight;
    int64_t isr_retry_after_ms; /* no ISR proposal before (rm_now_ms) */
    int64_t epoch_start_offset; /* our log end when this leadership began */
    replica_progress_t progress[REPLICA_MAX_REPLICAS];
    int32_t nprogress;
    partition_producers_t producers; /* in step with pub.log, leader or follower */
} rm_entry_t;

/* A partition this broker holds a replica of whose log it cannot open:
 * offline here, never led; its clients get KAFKA_STORAGE_ERROR. The open
 * is tried again only on a newer leader epoch for it (a new LeaderAndIsr),
 * never on a timer: a failing disk is not hammered. */
typedef struct rm_offline {
    char *topic; /* owned */
    int32_t partition;
    int32_t leader_epoch; /* of the partition_changed whose open failed */
} rm_offline_t;

/* A follower's fetcher for one leader broker. Lives until the manager is
 * freed (the RPC callback may hold it). */
typedef struct rm_fetcher {
    replica_manager_t *rm;
    int32_t leader_id;
    bool in_flight;
    int32_t backoff_ms;
    ev_timer backoff;
    /* Where the next request starts its walk of the partition table: a
     * leader may be followed for more partitions than one request names
     * (RM_FETCH_MAX_PARTITIONS), and each must get its turn. */
    size_t next_bucket;
} rm_fetcher_t;

/* A follower's fetch the leader holds until data arrives or max_wait. */
typedef struct rm_parked {
    struct rm_parked *prev, *next;
    replica_manager_t *rm;
    rpc_request_t *req;
    int32_t sender_id;
    Vltava__ReplicaFetchRequest *msg; /* owned (protobuf-c unpacked) */
    ev_timer timer;
} rm_parked_t;

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
    bool stopping;
    rm_fetcher_t *fetchers[RM_MAX_FETCHERS];
    int nfetchers;
    rm_parked_t *parked;
    size_t nparked;
    bool waking;     /* rm_wake_parked runs (answers may re-enter it) */
    bool wake_again; /* ... and was asked again meanwhile */
    ev_timer isr_timer;
    ev_timer expiry_timer; /* producer.id.expiration.check.interval.ms */
    uint64_t isr_shrinks;  /* ISR writes that dropped a replica (metrics) */
    uint64_t isr_expands;  /* ISR writes that added one */
    rm_offline_t *offline; /* owned; reported to the controller */
    size_t noffline;
    /* leader./follower.replication.throttled.rate: the copy onto replicas
     * a reassignment adds (rm_*_throttle below). */
    replica_throttle_t leader_throttle;
    replica_throttle_t follower_throttle;
};

static void rm_fetcher_kick(rm_fetcher_t *f);
static void rm_kick_all(replica_manager_t *rm);
static void rm_wake_parked(replica_manager_t *rm, const int32_t *senders, int32_t nsenders);
static void rm_offline_failed_logs(replica_manager_t *rm);
static bool rm_update_high_watermark(replica_manager_t *rm, rm_entry_t *e);
static void rm_maybe_alter_isr(replica_manager_t *rm, rm_entry_t *e);

static int64_t rm_now_ms(const replica_manager_t *rm)
{
    return rm->loop ? (int64_t)(ev_now(rm->loop) * 1000.0) : 0;
}

static uint32_t rm_hash(const char *topic, size_t len, int32_t partition)
{
    return (uint32_t)fnv1a(fnv1a(FNV1A_BASIS, topic, len), &partition, sizeof(partition));
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

/* Seeds the offline set with a partition whose log failed to open at
 * start. Epoch -1: the first partition_changed for it tries the open again
 * (re-validating it in full). */
static void rm_offline_seed(void *arg, const char *topic, int32_t partition)
{
    replica_manager_t *rm = arg;
    rm->offline = xrealloc(rm->offline, (rm->noffline + 1) * sizeof(*rm->offline));
    rm->offline[rm->noffline++] = (rm_offline_t){xstrdup(topic), partition, -1};
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
    replica_throttle_init(&rm->leader_throttle, cfg->leader_replication_throttled_rate,
                          rm_now_ms(rm));
    replica_throttle_init(&rm->follower_throttle, cfg->follower_replication_throttled_rate,
                          rm_now_ms(rm));
    /* Known offline before any partition_changed: the first report to the
     * controller (set_coordinator) must not clear them, or it could elect
     * this broker until a failing open is reported again. */
    log_manager_foreach_failed(logs, rm_offline_seed, rm);
    return rm;
}

void replica_manager_free(replica_manager_t *rm)
{
    if (!rm)
        return;
    replica_manager_stop(rm);
    for (int i = 0; i < rm->nfetchers; i++)
        free(rm->fetchers[i]);
    for (size_t i = 0; i < rm->nbuckets; i++) {
        rm_entry_t *e = rm->buckets[i];
        while (e) {
            rm_entry_t *next = e->next;
            /* A restart then loads the state instead of replaying. */
            partition_producers_snapshot(&e->producers, e->pub.log);
            partition_producers_destroy(&e->producers);
            free(e->topic);
            free(e);
            e = next;
        }
    }
    free(rm->buckets);
    for (size_t i = 0; i < rm->noffline; i++)
        free(rm->offline[i].topic);
    free(rm->offline);
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

void replica_manager_topic_config(const replica_manager_t *rm, const md_topic_t *topic,
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

/* Kafka's verdicts as its error codes. */
static int16_t rm_verdict_error(producer_state_verdict_t v)
{
    switch (v) {
    case PRODUCER_STATE_OK:
    case PRODUCER_STATE_DUPLICATE:
        return KAFKA_NONE;
    case PRODUCER_STATE_OUT_OF_ORDER_SEQUENCE:
        return KAFKA_OUT_OF_ORDER_SEQUENCE_NUMBER;
    case PRODUCER_STATE_INVALID_PRODUCER_EPOCH:
        return KAFKA_INVALID_PRODUCER_EPOCH;
    case PRODUCER_STATE_INVALID_TXN_STATE:
        return KAFKA_INVALID_TXN_STATE;
    case PRODUCER_STATE_TRANSACTION_COORDINATOR_FENCED:
        return KAFKA_TRANSACTION_COORDINATOR_FENCED;
    }
    return KAFKA_UNKNOWN_SERVER_ERROR;
}

/* Kafka's inSequence, for consecutive batches of one request. */
static bool rm_follows_sequence(int32_t last_seq, int32_t next_seq)
{
    return (int64_t)next_seq == (int64_t)last_seq + 1 || (next_seq == 0 && last_seq == INT32_MAX);
}

/* What the request's earlier batches of one producer did, so that its
 * later batches are checked against them rather than against the state
 * (Kafka's ProducerAppendInfo accumulates a request's batches the same
 * way). */
typedef struct rm_request_producer {
    int64_t producer_id;
    int16_t epoch;
    int32_t last_seq;
    bool in_txn;
} rm_request_producer_t;

/* Producers one request's batches are tracked for; a request of more
 * distinct producers than this in one partition is refused (clients send
 * one producer's batches per partition). */
#define RM_REQUEST_PRODUCERS 16

/* Step 2 of the leader append: every producer batch of the request, already
 * validated by the log, against the partition's producer state and the
 * request's earlier batches. KAFKA_NONE with res->duplicate set when the
 * request retries batches already appended. */
static int16_t rm_check_producers(const rm_entry_t *e, replica_append_origin_t origin,
                                  const uint8_t *p, size_t len, replica_append_result_t *res)
{
    const producer_state_t *state = e->producers.state;
    rm_request_producer_t seen[RM_REQUEST_PRODUCERS];
    int32_t nseen = 0;
    record_batch_header_t h;
    while (len > 0) {
        /* The log validated every batch: whole, and at least a header. */
        bool whole = record_batch_read_header(p, len, &h) && (uint64_t)record_batch_size(&h) <= len;
        assert(whole);
        if (!whole)
            return KAFKA_CORRUPT_MESSAGE;
        size_t size = (size_t)record_batch_size(&h);
        p += size;
        len -= size;
        if (h.producer_id < 0)
            continue;
        if (h.producer_epoch < 0)
            return KAFKA_INVALID_RECORD;
        bool transactional = record_batch_is_transactional(&h);
        if (origin == REPLICA_APPEND_COORDINATOR) {
            int16_t error = rm_verdict_error(
                producer_state_check_epoch(state, h.producer_id, h.producer_epoch));
            if (error != KAFKA_NONE)
                return error;
            continue;
        }
        /* LogValidator: a client's producer batch carries a sequence. */
        if (h.base_sequence < 0)
            return KAFKA_INVALID_RECORD;
        int32_t last_seq = record_batch_last_sequence(&h);
        rm_request_producer_t *rp = NULL;
        for (int32_t i = 0; i < nseen && rp == NULL; i++)
            if (seen[i].producer_id == h.producer_id)
                rp = &seen[i];
        if (rp != NULL) {
            if (h.producer_epoch < rp->epoch)
                return KAFKA_INVALID_PRODUCER_EPOCH;
            if (rp->in_txn && !transactional)
                return KAFKA_INVALID_TXN_STATE;
            if (h.producer_epoch != rp->epoch ? h.base_sequence != 0
                                              : !rm_follows_sequence(rp->last_seq, h.base_sequence))
                return KAFKA_OUT_OF_ORDER_SEQUENCE_NUMBER;
        } else {
            if (nseen == RM_REQUEST_PRODUCERS)
                return KAFKA_INVALID_RECORD;
            producer_state_duplicate_t dup;
            producer_state_verdict_t v =
                producer_state_check(state, h.producer_id, h.producer_epoch, h.base_sequence,
                                     last_seq, transactional, &dup);
            if (v == PRODUCER_STATE_DUPLICATE) {
                /* Kafka answers the first duplicate and appends nothing. */
                res->duplicate = true;
                res->first_offset = dup.first_offset;
                res->last_offset = dup.last_offset;
                return KAFKA_NONE;
            }
            if (v != PRODUCER_STATE_OK)
                return rm_verdict_error(v);
            rp = &seen[nseen++];
            rp->producer_id = h.producer_id;
            rp->in_txn = producer_state_in_txn(state, h.producer_id);
        }
        rp->epoch = h.producer_epoch;
        rp->last_seq = last_seq;
        rp->in_txn = rp->in_txn || transactional;
    }
    return KAFKA_NONE;
}

/* Step 4 of the leader append, for data and markers alike. */
static void rm_after_leader_append(replica_manager_t *rm, rm_entry_t *e)
{
    if (!rm_update_high_watermark(rm, e))
        rm_notify(rm, e->topic, e->partition); /* the log end moved all the same */
    /* Only this partition's followers can have a parked fetch that asks for
     * it (another sender's was answered with an error); copied, as e may go
     * while answers run. */
    int32_t followers[REPLICA_MAX_REPLICAS];
    int32_t nfollowers = e->nprogress;
    for (int32_t i = 0; i < nfollowers; i++)
        followers[i] = e->progress[i].id;
    if (nfollowers > 0)
        rm_wake_parked(rm, followers, nfollowers);
}

int16_t replica_manager_leader_append(replica_manager_t *rm, const replica_partition_t *p,
                                      replica_append_origin_t origin, int16_t required_acks,
                                      uint8_t *batches, size_t len, replica_append_result_t *res)
{
    assert(p != NULL && p->log != NULL);
    assert(p->is_leader && res != NULL);
    rm_entry_t *e = (rm_entry_t *)p; /* pub is the entry's first member */
    memset(res, 0, sizeof(*res));
    res->log_append_time = -1;
    if (required_acks == -1 &&
        replica_manager_isr_size(rm, p) < partition_log_config(p->log)->min_insync_replicas)
        return KAFKA_NOT_ENOUGH_REPLICAS;
    log_validated_t valid;
    log_err_t err = partition_log_validate(p->log, batches, len, &valid);
    if (err != LOG_OK)
        return log_err_kafka_error(err);
    int16_t error = rm_check_producers(e, origin, batches, len, res);
    if (error != KAFKA_NONE || res->duplicate) {
        res->high_watermark = partition_log_high_watermark(p->log);
        return error;
    }
    log_append_info_t info;
    err = partition_log_append_validated(p->log, batches, &valid, p->leader_epoch, wall_clock_ms(),
                                         &info);
    if (err != LOG_OK)
        return log_err_kafka_error(err);
    partition_producers_apply(&e->producers, p->log, batches, len);
    res->first_offset = info.first_offset;
    res->last_offset = info.last_offset;
    res->log_append_time = info.log_append_time;
    /* e stays: the listener and parked fetches do not remove partitions. */
    rm_after_leader_append(rm, e);
    res->high_watermark = partition_log_high_watermark(p->log);
    return KAFKA_NONE;
}

int16_t replica_manager_write_txn_marker(replica_manager_t *rm, const replica_partition_t *p,
                                         int64_t producer_id, int16_t producer_epoch, bool commit,
                                         int32_t coordinator_epoch, int64_t *marker_offset)
{
    assert(p != NULL && p->is_leader);
    assert(producer_id >= 0 && producer_epoch >= 0);
    rm_entry_t *e = (rm_entry_t *)p;
    /* Kafka writes markers with acks=all: below min.insync.replicas the
     * coordinator is told to try again rather than complete the
     * transaction on too few copies. */
    if (replica_manager_isr_size(rm, p) < partition_log_config(p->log)->min_insync_replicas)
        return KAFKA_NOT_ENOUGH_REPLICAS;
    int16_t error = rm_verdict_error(producer_state_check_end_txn(
        e->producers.state, producer_id, producer_epoch, coordinator_epoch));
    if (error != KAFKA_NONE)
        return error;
    uint8_t marker[RECORD_BATCH_TXN_MARKER_SIZE];
    record_batch_build_txn_marker(marker, producer_id, producer_epoch, commit, coordinator_epoch,
                                  wall_clock_ms());
    log_append_info_t info;
    log_err_t err = partition_log_append_control(p->log, marker, sizeof(marker), p->leader_epoch,
                                                 wall_clock_ms(), &info);
    if (err != LOG_OK)
        return log_err_kafka_error(err);
    partition_producers_apply(&e->producers, p->log, marker, sizeof(marker));
    *marker_offset = info.first_offset;
    rm_after_leader_append(rm, e);
    return KAFKA_NONE;
}

bool replica_manager_producer_in_txn(replica_manager_t *rm, const replica_partition_t *p,
                                     int64_t producer_id)
{
    assert(p != NULL && p->log != NULL && producer_id >= 0);
    (void)rm;
    const rm_entry_t *e = (const rm_entry_t *)p;
    return producer_state_in_txn(e->producers.state, producer_id);
}

uint32_t replica_manager_producer_txn_guard(replica_manager_t *rm, const replica_partition_t *p,
                                            int64_t producer_id)
{
    assert(p != NULL && p->log != NULL && producer_id >= 0);
    (void)rm;
    const rm_entry_t *e = (const rm_entry_t *)p;
    return producer_state_markers(e->producers.state, producer_id);
}

int64_t replica_manager_last_stable_offset(replica_manager_t *rm, const replica_partition_t *p)
{
    assert(p != NULL && p->log != NULL);
    (void)rm;
    const rm_entry_t *e = (const rm_entry_t *)p;
    return partition_producers_last_stable_offset(&e->producers, p->log);
}

int32_t replica_manager_isr_size(replica_manager_t *rm, const replica_partition_t *p)
{
    assert(p != NULL && p->is_leader);
    (void)rm;
    const rm_entry_t *e = (const rm_entry_t *)p;
    /* A shrink in flight counts already: acks=all must not rely on a
     * replica the leader is dropping. */
    return e->isr_write_in_flight && e->npending_isr < e->nisr ? e->npending_isr : e->nisr;
}

/* ---- leader: high watermark and ISR ---- */

/* Moves the high watermark up to what the ISR (and a proposed ISR being
 * written) allows; never down. Tells the listener and returns true when it
 * moved. */
static bool rm_update_high_watermark(replica_manager_t *rm, rm_entry_t *e)
{
    assert(e->pub.is_leader);
    partition_log_t *log = e->pub.log;
    int32_t self = rm_own_id(rm);
    int64_t leo = partition_log_end_offset(log);
    int64_t hw = replica_isr_high_watermark(self, leo, e->isr, e->nisr, e->progress, e->nprogress);
    if (e->isr_write_in_flight) {
        int64_t hw2 = replica_isr_high_watermark(self, leo, e->pending_isr, e->npending_isr,
                                                 e->progress, e->nprogress);
        if (hw2 < hw)
            hw = hw2;
    }
    int64_t old = partition_log_high_watermark(log);
    if (hw <= old)
        return false;
    partition_log_set_high_watermark(log, hw);
    producer_state_on_high_watermark(e->producers.state, hw);
    assert(partition_log_high_watermark(log) <= leo);
    rm_notify(rm, e->topic, e->partition);
    return true;
}

static replica_progress_t *rm_progress(rm_entry_t *e, int32_t id)
{
    for (int32_t i = 0; i < e->nprogress; i++)
        if (e->progress[i].id == id)
            return &e->progress[i];
    return NULL;
}

/* Takes up leadership at the epoch just recorded: the ISR as assigned,
 * every follower's progress unknown. The log is not truncated: whatever
 * it holds above the old high watermark is the partition's now. */
static void rm_become_leader(replica_manager_t *rm, rm_entry_t *e, const md_partition_t *p)
{
    int64_t now = rm_now_ms(rm);
    e->nreplicas = 0;
    for (int32_t i = 0; i < p->nreplicas && e->nreplicas < REPLICA_MAX_REPLICAS; i++)
        e->replicas[e->nreplicas++] = p->replicas[i];
    if (p->nreplicas > REPLICA_MAX_REPLICAS)
        VLOG_WARN(RM_MODULE, "%s-%d: %d replicas; only the first %d are tracked", e->topic,
                  e->partition, p->nreplicas, REPLICA_MAX_REPLICAS);
    e->nisr = 0;
    for (int32_t i = 0; i < p->nisr && e->nisr < REPLICA_MAX_REPLICAS; i++)
        e->isr[e->nisr++] = p->isr[i];
    e->nprogress = 0;
    for (int32_t i = 0; i < e->nreplicas; i++)
        if (e->replicas[i] != rm_own_id(rm))
            replica_progress_reset(&e->progress[e->nprogress++], e->replicas[i], now);
    e->isr_write_in_flight = false;
    e->isr_retry_after_ms = 0;
    e->npending_isr = 0;
    e->epoch_start_offset = partition_log_end_offset(e->pub.log);
    rm_update_high_watermark(rm, e);
}

typedef struct rm_isr_op {
    replica_manager_t *rm;
    char *topic; /* owned */
    int32_t partition;
    int32_t leader_epoch;
} rm_isr_op_t;

/* Counts the write of e's pending ISR over its current one: a shrink when
 * a replica leaves, an expand when one joins (both when it does both;
 * neither for a rewrite of the same members, which a duplicate id in a
 * state znode can cause). */
static void rm_count_isr_change(replica_manager_t *rm, const rm_entry_t *e)
{
    bool shrink = false, expand = false;
    for (int32_t i = 0; i < e->nisr; i++)
        shrink = shrink || !replica_contains(e->pending_isr, e->npending_isr, e->isr[i]);
    for (int32_t i = 0; i < e->npending_isr; i++)
        expand = expand || !replica_contains(e->isr, e->nisr, e->pending_isr[i]);
    rm->isr_shrinks += shrink;
    rm->isr_expands += expand;
}

static void rm_isr_written(void *arg, int16_t error_code, const char *message)
{
    rm_isr_op_t *op = arg;
    replica_manager_t *rm = op->rm;
    rm_entry_t *e = *rm_find_slot(rm, op->topic, strlen(op->topic), op->partition);
    if (e && e->pub.is_leader && e->pub.leader_epoch == op->leader_epoch &&
        e->isr_write_in_flight) {
        e->isr_write_in_flight = false;
        if (error_code == KAFKA_NONE) {
            rm_count_isr_change(rm, e);
            memcpy(e->isr, e->pending_isr, (size_t)e->npending_isr * sizeof(e->isr[0]));
            e->nisr = e->npending_isr;
            VLOG_INFO(RM_MODULE, "%s-%d: ISR now %d replica(s)", e->topic, e->partition, e->nisr);
            rm_update_high_watermark(rm, e);
            rm_notify(rm, e->topic, e->partition);
        } else {
            VLOG_INFO(RM_MODULE, "%s-%d: ISR change not written (%d: %s); will decide again",
                      op->topic, op->partition, error_code, message ? message : "");
            e->isr_retry_after_ms = rm_now_ms(rm) + RM_ISR_RETRY_MS;
        }
        e->npending_isr = 0;
    }
    free(op->topic);
    free(op);
}

/* Writes the ISR the leader wants when it differs from the current one. */
static void rm_maybe_alter_isr(replica_manager_t *rm, rm_entry_t *e)
{
    if (!e->pub.is_leader || e->isr_write_in_flight || !rm->coord || rm->stopping ||
        rm_now_ms(rm) < e->isr_retry_after_ms)
        return;
    /* A follower whose broker is gone from the cluster (stopped, or its
     * session expired) is not waited for until the lag runs out: acks=all
     * would stall meanwhile. */
    const cluster_metadata_t *md = coordinator_metadata(rm->coord);
    for (int32_t i = 0; i < e->nprogress; i++)
        if (!cluster_metadata_broker(md, e->progress[i].id))
            e->progress[i].caught_up_ms = INT64_MIN / 2;
    int32_t want[REPLICA_MAX_REPLICAS];
    int64_t hw = partition_log_high_watermark(e->pub.log);
    int32_t n = replica_desired_isr(rm_own_id(rm), e->replicas, e->nreplicas, e->isr, e->nisr,
                                    e->progress, e->nprogress, hw, e->epoch_start_offset,
                                    rm->cfg->replica_lag_time_max_ms, rm_now_ms(rm), want);
    if (replica_same_set(want, n, e->isr, e->nisr))
        return;
    memcpy(e->pending_isr, want, (size_t)n * sizeof(want[0]));
    e->npending_isr = n;
    e->isr_write_in_flight = true;
    VLOG_INFO(RM_MODULE, "%s-%d: ISR %d -> %d replica(s)", e->topic, e->partition, e->nisr, n);
    rm_isr_op_t *op = xcalloc(1, sizeof(*op));
    op->rm = rm;
    op->topic = xstrdup(e->topic);
    op->partition = e->partition;
    op->leader_epoch = e->pub.leader_epoch;
    /* done may run at once; e is looked up again there. */
    coordinator_alter_isr(rm->coord, e->topic, e->partition, e->pub.leader_epoch, want, n,
                          rm_isr_written, op);
}

static void rm_isr_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    replica_manager_t *rm = w->data;
    (void)loop;
    (void)revents;
    rm_offline_failed_logs(rm);
    for (size_t i = 0; i < rm->nbuckets; i++)
        for (rm_entry_t *e = rm->buckets[i]; e; e = e->next)
            if (e->pub.is_leader)
                rm_maybe_alter_isr(rm, e);
}

/* Kafka's removeExpiredProducers, on every partition (leaders and
 * followers alike: each forgets by the batches' own timestamps). */
static void rm_expiry_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    replica_manager_t *rm = w->data;
    (void)loop;
    (void)revents;
    int64_t now = wall_clock_ms();
    int64_t expired = 0;
    for (size_t i = 0; i < rm->nbuckets; i++)
        for (rm_entry_t *e = rm->buckets[i]; e; e = e->next)
            expired +=
                producer_state_expire(e->producers.state, now, rm->cfg->producer_id_expiration_ms);
    if (expired > 0)
        VLOG_DEBUG(RM_MODULE, "forgot %lld expired producer entries", (long long)expired);
}

/* ---- offline partitions ---- */

static size_t rm_offline_find(const replica_manager_t *rm, const char *topic, size_t len,
                              int32_t partition)
{
    for (size_t i = 0; i < rm->noffline; i++)
        if (rm->offline[i].partition == partition && strlen(rm->offline[i].topic) == len &&
            memcmp(rm->offline[i].topic, topic, len) == 0)
            return i;
    return rm->noffline;
}

/* Tells the controller the whole set (coordinator_report_offline_replicas
 * sends only changes, and once to each new controller). */
static void rm_offline_report(replica_manager_t *rm)
{
    if (!rm->coord)
        return; /* set_coordinator reports */
    coord_offline_partition_t *parts = xcalloc(rm->noffline + 1, sizeof(*parts));
    for (size_t i = 0; i < rm->noffline; i++)
        parts[i] = (coord_offline_partition_t){rm->offline[i].topic, rm->offline[i].partition};
    coordinator_report_offline_replicas(rm->coord, parts, rm->noffline);
    free(parts);
}

static void rm_offline_remove(replica_manager_t *rm, size_t i)
{
    assert(i < rm->noffline);
    free(rm->offline[i].topic);
    rm->offline[i] = rm->offline[--rm->noffline];
    rm_offline_report(rm);
}

/* A partition whose log failed an fsync (partition_log_failed) goes
 * offline as one whose open failed does: its entry is dropped (the log
 * stays in the log manager refusing everything, until a restart
 * re-validates it) and the controller learns it, so leadership moves. */
static void rm_offline_failed_logs(replica_manager_t *rm)
{
    bool added = false;
    for (size_t i = 0; i < rm->nbuckets; i++) {
        for (rm_entry_t **slot = &rm->buckets[i]; *slot != NULL;) {
            rm_entry_t *e = *slot;
            if (!partition_log_failed(e->pub.log)) {
                slot = &e->next;
                continue;
            }
            *slot = e->next;
            rm->nentries--;
            VLOG_ERR(RM_MODULE,
                     "%s-%d: offline on this broker (clients get KAFKA_STORAGE_ERROR, the "
                     "controller moves leadership): an fsync of %s failed; a restart "
                     "re-validates it",
                     e->topic, e->partition, partition_log_dir(e->pub.log));
            assert(rm_offline_find(rm, e->topic, e->topic_len, e->partition) == rm->noffline);
            rm->offline = xrealloc(rm->offline, (rm->noffline + 1) * sizeof(*rm->offline));
            /* e->topic moves to the offline entry. */
            rm->offline[rm->noffline++] =
                (rm_offline_t){e->topic, e->partition, e->pub.leader_epoch};
            partition_producers_destroy(&e->producers);
            rm_notify(rm, e->topic, e->partition);
            free(e);
            added = true;
        }
    }
    if (added) {
        rm_offline_report(rm);
        rm_wake_parked(rm, NULL, 0);
    }
}

bool replica_manager_offline(const replica_manager_t *rm, const char *topic, size_t topic_len,
                             int32_t partition)
{
    assert(rm != NULL && topic != NULL);
    return rm_offline_find(rm, topic, topic_len, partition) < rm->noffline;
}

/* The leader learns a new replica set at the same leader epoch (a
 * reassignment's topic znode read after its state): progress is kept for
 * the replicas that stay, starts unknown for the added ones, and the
 * removed ones are forgotten, so that neither the ISR it wants nor the
 * replicas it serves name a broker that is no longer a replica. */
static void rm_refresh_replicas(replica_manager_t *rm, rm_entry_t *e, const md_partition_t *p)
{
    assert(e->pub.is_leader);
    int32_t n = p->nreplicas < REPLICA_MAX_REPLICAS ? p->nreplicas : REPLICA_MAX_REPLICAS;
    if (n == e->nreplicas && memcmp(e->replicas, p->replicas, (size_t)n * sizeof(int32_t)) == 0)
        return;
    replica_progress_t kept[REPLICA_MAX_REPLICAS];
    int32_t nkept = 0;
    const int64_t now = rm_now_ms(rm);
    for (int32_t i = 0; i < n; i++) {
        if (p->replicas[i] == rm_own_id(rm))
            continue;
        const replica_progress_t *old = rm_progress(e, p->replicas[i]);
        if (old)
            kept[nkept] = *old;
        else
            replica_progress_reset(&kept[nkept], p->replicas[i], now);
        nkept++;
    }
    memcpy(e->progress, kept, (size_t)nkept * sizeof(kept[0]));
    e->nprogress = nkept;
    memcpy(e->replicas, p->replicas, (size_t)n * sizeof(int32_t));
    e->nreplicas = n;
    assert(e->nprogress <= e->nreplicas);
    VLOG_INFO(RM_MODULE, "%s-%d: replica set now %d broker(s) at epoch %d", e->topic, e->partition,
              n, e->pub.leader_epoch);
    rm_update_high_watermark(rm, e);
}

static void rm_partition_changed(void *arg, const md_topic_t *topic, const md_partition_t *p)
{
    replica_manager_t *rm = arg;
    assert(topic != NULL && p != NULL);
    size_t len = strlen(topic->name);
    rm_entry_t **slot = rm_find_slot(rm, topic->name, len, p->id);
    rm_entry_t *e = *slot;
    log_config_t cfg;
    replica_manager_topic_config(rm, topic, &cfg);

    if (e && p->leader_epoch < e->pub.leader_epoch) {
        VLOG_INFO(RM_MODULE, "%s-%d: ignoring leader %d epoch %d older than epoch %d", topic->name,
                  p->id, p->leader, p->leader_epoch, e->pub.leader_epoch);
        return;
    }
    size_t off = rm_offline_find(rm, topic->name, len, p->id);
    if (!e && off < rm->noffline && p->leader_epoch <= rm->offline[off].leader_epoch)
        return; /* still offline: tried again only on a newer epoch */
    if (!e) {
        partition_log_t *log = NULL;
        log_err_t err = log_manager_get_or_create(rm->logs, topic->name, p->id, &cfg, &log);
        if (err != LOG_OK) {
            /* The cause (path and strerror) is the log module's last error. */
            VLOG_ERR(RM_MODULE,
                     "%s-%d: offline on this broker (clients get KAFKA_STORAGE_ERROR, the "
                     "controller moves leadership): cannot open the local log: %s",
                     topic->name, p->id, partition_log_last_error());
            if (off == rm->noffline) {
                rm->offline = xrealloc(rm->offline, (rm->noffline + 1) * sizeof(*rm->offline));
                rm->offline[rm->noffline++] =
                    (rm_offline_t){xstrdup(topic->name), p->id, p->leader_epoch};
                rm_offline_report(rm);
            } else {
                rm->offline[off].leader_epoch = p->leader_epoch;
            }
            rm_notify(rm, topic->name, p->id);
            return;
        }
        if (off < rm->noffline) {
            VLOG_INFO(RM_MODULE, "%s-%d: the local log opens again; back online", topic->name,
                      p->id);
            rm_offline_remove(rm, off);
        }
        e = xcalloc(1, sizeof(*e));
        e->topic = xstrdup(topic->name);
        e->topic_len = len;
        e->partition = p->id;
        e->hash = rm_hash(topic->name, len, p->id);
        e->pub.log = log;
        partition_producers_init(&e->producers, log);
        *slot = e;
        rm->nentries++;
        if (rm->nentries > rm->nbuckets)
            rm_grow(rm);
    }
    /* Also for a log found open: the log manager opened it at start with
     * the broker's defaults, before the topic's overrides were known. */
    partition_log_set_config(e->pub.log, &cfg);

    bool was_leader = e->pub.is_leader;
    bool new_epoch = p->leader_epoch != e->pub.leader_epoch || p->leader != e->pub.leader_id;
    if (was_leader && !new_epoch)
        rm_refresh_replicas(rm, e, p);
    e->pub.leader_id = p->leader;
    e->pub.leader_epoch = p->leader_epoch;
    e->pub.is_leader = p->leader == rm_own_id(rm);
    if (e->pub.is_leader && (new_epoch || !was_leader))
        rm_become_leader(rm, e, p);
    if (was_leader != e->pub.is_leader)
        VLOG_INFO(RM_MODULE, "%s-%d: %s (leader %d, epoch %d, log end %lld)", topic->name, p->id,
                  e->pub.is_leader ? "leader" : "follower", p->leader, p->leader_epoch,
                  (long long)partition_log_end_offset(e->pub.log));
    rm_notify(rm, topic->name, p->id);
    rm_wake_parked(rm, NULL, 0);
    rm_kick_all(rm);
}

static void rm_partition_removed(void *arg, const char *topic, int32_t partition)
{
    replica_manager_t *rm = arg;
    assert(topic != NULL);
    rm_entry_t **slot = rm_find_slot(rm, topic, strlen(topic), partition);
    rm_entry_t *e = *slot;
    size_t off = rm_offline_find(rm, topic, strlen(topic), partition);
    if (off < rm->noffline)
        rm_offline_remove(rm, off);
    if (e) {
        *slot = e->next;
        rm->nentries--;
        partition_producers_destroy(&e->producers);
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
    rm_wake_parked(rm, NULL, 0);
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

/* ---- leader: serving ReplicaFetch ---- */

/* ---- replication throttles (partition reassignment) ----
 * Only the copy onto a replica that a reassignment adds and that is not in
 * the ISR is throttled (Kafka: the throttled replicas of a reassignment,
 * ISR members exempt), so acks=all traffic to the in-sync followers never
 * waits on the bucket. */

/* True when `id` is a replica that the partition's reassignment adds and
 * that is not in its ISR, as this broker's metadata shows. */
static bool rm_copy_throttled(const replica_manager_t *rm, const char *topic, int32_t partition,
                              int32_t id)
{
    if (!rm->coord)
        return false;
    const cluster_metadata_t *md = coordinator_metadata(rm->coord);
    const md_topic_t *t = cluster_metadata_topic(md, topic, strlen(topic));
    if (!t || partition < 0 || partition >= t->npartitions)
        return false;
    const md_partition_t *p = &t->partitions[partition];
    return replica_contains(p->adding, p->nadding, id) && !replica_contains(p->isr, p->nisr, id);
}

/* Leader side: false when what e serves to sender must wait for the bucket. */
static bool rm_leader_throttle_allows(replica_manager_t *rm, const rm_entry_t *e, int32_t sender)
{
    if (!replica_throttle_enabled(&rm->leader_throttle) ||
        !rm_copy_throttled(rm, e->topic, e->partition, sender))
        return true;
    return replica_throttle_allows(&rm->leader_throttle, rm_now_ms(rm));
}

static void rm_leader_throttle_record(replica_manager_t *rm, const rm_entry_t *e, int32_t sender,
                                      size_t bytes)
{
    if (replica_throttle_enabled(&rm->leader_throttle) &&
        rm_copy_throttled(rm, e->topic, e->partition, sender))
        replica_throttle_consume(&rm->leader_throttle, (int64_t)bytes, rm_now_ms(rm));
}

/* Follower side: true when e is fetched for this broker as an added
 * replica (throttled) and the bucket is empty: leave it out for now. */
static bool rm_follower_throttle_holds(replica_manager_t *rm, const rm_entry_t *e)
{
    return replica_throttle_enabled(&rm->follower_throttle) &&
           rm_copy_throttled(rm, e->topic, e->partition, rm_own_id(rm)) &&
           !replica_throttle_allows(&rm->follower_throttle, rm_now_ms(rm));
}

static void rm_follower_throttle_record(replica_manager_t *rm, const rm_entry_t *e, size_t bytes)
{
    if (replica_throttle_enabled(&rm->follower_throttle) &&
        rm_copy_throttled(rm, e->topic, e->partition, rm_own_id(rm)))
        replica_throttle_consume(&rm->follower_throttle, (int64_t)bytes, rm_now_ms(rm));
}

/* One partition of a ReplicaFetch. Returns true when the answer for it is
 * worth sending now (data, an error, or a divergence). */
static bool rm_serve_partition(replica_manager_t *rm, int32_t sender,
                               const Vltava__ReplicaFetchPartition *fp,
                               Vltava__ReplicaFetchPartitionData *d, int64_t *budget)
{
    d->topic = fp->topic;
    d->partition = fp->partition;
    d->leader_epoch = fp->leader_epoch;
    d->fetch_offset = fp->fetch_offset;
    d->high_watermark = -1;
    d->log_start_offset = -1;
    d->diverging_epoch = -1;
    d->diverging_end_offset = -1;
    rm_entry_t *e = *rm_find_slot(rm, fp->topic, strlen(fp->topic), fp->partition);
    if (!e) {
        d->error_code = KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
        return true;
    }
    if (!e->pub.is_leader) {
        d->error_code = KAFKA_NOT_LEADER_OR_FOLLOWER;
        return true;
    }
    if (fp->leader_epoch != e->pub.leader_epoch) {
        d->error_code = fp->leader_epoch < e->pub.leader_epoch ? KAFKA_FENCED_LEADER_EPOCH
                                                               : KAFKA_UNKNOWN_LEADER_EPOCH;
        return true;
    }
    replica_progress_t *prog = rm_progress(e, sender);
    if (!prog) {
        d->error_code = KAFKA_NOT_LEADER_OR_FOLLOWER; /* not a replica of it */
        return true;
    }
    partition_log_t *log = e->pub.log;
    int64_t leo = partition_log_end_offset(log);
    d->high_watermark = partition_log_high_watermark(log);
    d->log_start_offset = partition_log_start_offset(log);
    if (fp->last_fetched_epoch >= 0) {
        int32_t found;
        int64_t end;
        partition_log_epoch_end_offset(log, fp->last_fetched_epoch, &found, &end);
        if (found != fp->last_fetched_epoch || end < fp->fetch_offset) {
            d->diverging = true;
            d->diverging_epoch = found;
            d->diverging_end_offset = found < 0 ? d->log_start_offset : end;
            return true;
        }
    }
    if (fp->fetch_offset < d->log_start_offset || fp->fetch_offset > leo) {
        d->error_code = KAFKA_OFFSET_OUT_OF_RANGE;
        return true;
    }
    replica_progress_on_fetch(prog, fp->fetch_offset, leo, rm_now_ms(rm));
    rm_update_high_watermark(rm, e);
    d->high_watermark = partition_log_high_watermark(log);
    rm_maybe_alter_isr(rm, e);
    if (fp->fetch_offset == leo || *budget <= 0 || !rm_leader_throttle_allows(rm, e, sender))
        return false;
    int64_t limit = *budget < RM_FETCH_PARTITION_BYTES ? *budget : RM_FETCH_PARTITION_BYTES;
    uint8_t *buf;
    size_t len;
    int64_t next;
    log_err_t err = partition_log_read_copy(log, fp->fetch_offset, limit, leo, &buf, &len, &next);
    if (err != LOG_OK) {
        VLOG_WARN(RM_MODULE, "%s-%d: replica read at %lld failed: %s", e->topic, e->partition,
                  (long long)fp->fetch_offset, log_err_str(err));
        d->error_code = KAFKA_KAFKA_STORAGE_ERROR;
        return true;
    }
    d->records.data = buf; /* freed by rm_fetch_answer */
    d->records.len = len;
    *budget -= (int64_t)len;
    rm_leader_throttle_record(rm, e, sender, len);
    return len > 0;
}

/* Builds and, when worth it (or `force`), sends the answer to a fetch.
 * Returns true when sent (req answered). */
static bool rm_fetch_answer(replica_manager_t *rm, rpc_request_t *req, int32_t sender,
                            const Vltava__ReplicaFetchRequest *m, bool force)
{
    size_t n = m->n_partitions;
    assert(n <= RM_FETCH_MAX_PARTITIONS);
    Vltava__ReplicaFetchPartitionData *data = xcalloc(n ? n : 1, sizeof(*data));
    Vltava__ReplicaFetchPartitionData **ptrs = xcalloc(n ? n : 1, sizeof(*ptrs));
    int64_t budget =
        m->max_bytes > 0 && m->max_bytes < RM_FETCH_MAX_BYTES ? m->max_bytes : RM_FETCH_MAX_BYTES;
    bool ready = force;
    for (size_t i = 0; i < n; i++) {
        vltava__replica_fetch_partition_data__init(&data[i]);
        ptrs[i] = &data[i];
        if (rm_serve_partition(rm, sender, m->partitions[i], &data[i], &budget))
            ready = true;
    }
    if (ready) {
        Vltava__ReplicaFetchResponse resp = VLTAVA__REPLICA_FETCH_RESPONSE__INIT;
        resp.n_partitions = n;
        resp.partitions = ptrs;
        size_t len = vltava__replica_fetch_response__get_packed_size(&resp);
        uint8_t *buf = xmalloc(len ? len : 1);
        vltava__replica_fetch_response__pack(&resp, buf);
        rpc_respond(req, KAFKA_NONE, buf, len);
        free(buf);
    }
    for (size_t i = 0; i < n; i++)
        free(data[i].records.data);
    free(data);
    free(ptrs);
    return ready;
}

static void rm_parked_unlink(rm_parked_t *pk)
{
    replica_manager_t *rm = pk->rm;
    assert(rm->nparked > 0);
    if (pk->prev)
        pk->prev->next = pk->next;
    else
        rm->parked = pk->next;
    if (pk->next)
        pk->next->prev = pk->prev;
    rm->nparked--;
    ev_timer_stop(rm->loop, &pk->timer);
}

static void rm_parked_free(rm_parked_t *pk)
{
    vltava__replica_fetch_request__free_unpacked(pk->msg, NULL);
    free(pk);
}

static void rm_parked_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    rm_parked_t *pk = w->data;
    (void)loop;
    (void)revents;
    rm_parked_unlink(pk);
    rm_fetch_answer(pk->rm, pk->req, pk->sender_id, pk->msg, true);
    rm_parked_free(pk);
}

/* Re-evaluates the parked fetches (few: one per follower broker) of the
 * brokers in `senders`, or every one when senders is NULL. Answering moves
 * high watermarks, whose listeners may complete requests that append and
 * so call here again: such nested calls only ask for another pass, over
 * every parked fetch. */
static void rm_wake_parked(replica_manager_t *rm, const int32_t *senders, int32_t nsenders)
{
    if (rm->waking) {
        rm->wake_again = true;
        return;
    }
    rm->waking = true;
    do {
        rm->wake_again = false;
        rm_parked_t *pk = rm->parked;
        while (pk) {
            rm_parked_t *next = pk->next;
            bool asked = senders == NULL || replica_contains(senders, nsenders, pk->sender_id);
            if (asked && rm_fetch_answer(rm, pk->req, pk->sender_id, pk->msg, false)) {
                rm_parked_unlink(pk);
                rm_parked_free(pk);
            }
            pk = next;
        }
        senders = NULL;
    } while (rm->wake_again);
    rm->waking = false;
}

static void rm_on_replica_fetch(void *arg, rpc_request_t *req, int32_t sender_id,
                                const uint8_t *payload, size_t len)
{
    replica_manager_t *rm = arg;
    Vltava__ReplicaFetchRequest *m = vltava__replica_fetch_request__unpack(NULL, len, payload);
    if (!m || m->n_partitions > RM_FETCH_MAX_PARTITIONS) {
        VLOG_WARN(RM_MODULE, "undecodable or oversized ReplicaFetch from broker %d", sender_id);
        if (m)
            vltava__replica_fetch_request__free_unpacked(m, NULL);
        rpc_respond(req, KAFKA_INVALID_REQUEST, NULL, 0);
        return;
    }
    bool may_park = !rm->stopping && m->max_wait_ms > 0 && rm->nparked < RM_MAX_PARKED;
    if (rm_fetch_answer(rm, req, sender_id, m, !may_park)) {
        vltava__replica_fetch_request__free_unpacked(m, NULL);
        return;
    }
    rm_parked_t *pk = xcalloc(1, sizeof(*pk));
    pk->rm = rm;
    pk->req = req;
    pk->sender_id = sender_id;
    pk->msg = m;
    int32_t wait_ms = m->max_wait_ms < RM_FETCH_MAX_WAIT_MS ? m->max_wait_ms : RM_FETCH_MAX_WAIT_MS;
    ev_timer_init(&pk->timer, rm_parked_timeout, wait_ms / 1000.0, 0.);
    pk->timer.data = pk;
    ev_timer_start(rm->loop, &pk->timer);
    pk->next = rm->parked;
    if (rm->parked)
        rm->parked->prev = pk;
    rm->parked = pk;
    rm->nparked++;
}

/* ---- follower: the fetchers ---- */

static rm_fetcher_t *rm_fetcher_for(replica_manager_t *rm, int32_t leader_id)
{
    for (int i = 0; i < rm->nfetchers; i++)
        if (rm->fetchers[i]->leader_id == leader_id)
            return rm->fetchers[i];
    if (rm->nfetchers == RM_MAX_FETCHERS) {
        VLOG_ERR(RM_MODULE, "more than %d leaders to follow; not following %d", RM_MAX_FETCHERS,
                 leader_id);
        return NULL;
    }
    rm_fetcher_t *f = xcalloc(1, sizeof(*f));
    f->rm = rm;
    f->leader_id = leader_id;
    f->backoff_ms = RM_BACKOFF_MIN_MS;
    rm->fetchers[rm->nfetchers++] = f;
    return f;
}

static bool rm_follows(const rm_entry_t *e, int32_t leader_id)
{
    return !e->pub.is_leader && e->pub.leader_id == leader_id && leader_id >= 0;
}

static void rm_backoff_fired(struct ev_loop *loop, ev_timer *w, int revents)
{
    rm_fetcher_t *f = w->data;
    (void)loop;
    (void)revents;
    rm_fetcher_kick(f);
}

static void rm_fetcher_back_off(rm_fetcher_t *f)
{
    replica_manager_t *rm = f->rm;
    if (rm->stopping)
        return;
    ev_timer_init(&f->backoff, rm_backoff_fired, f->backoff_ms / 1000.0, 0.);
    f->backoff.data = f;
    ev_timer_start(rm->loop, &f->backoff);
    f->backoff_ms = f->backoff_ms * 2 > RM_BACKOFF_MAX_MS ? RM_BACKOFF_MAX_MS : f->backoff_ms * 2;
}

/* Every partition f would fetch waits for the follower bucket: fetch
 * again once it holds a byte (the back-off timer, not doubled). */
static void rm_fetcher_wait_throttle(rm_fetcher_t *f)
{
    replica_manager_t *rm = f->rm;
    assert(!f->in_flight && !ev_is_active(&f->backoff));
    int64_t wait_ms = replica_throttle_wait_ms(&rm->follower_throttle, rm_now_ms(rm));
    ev_timer_init(&f->backoff, rm_backoff_fired, (double)(wait_ms > 0 ? wait_ms : 1) / 1000.0, 0.);
    f->backoff.data = f;
    ev_timer_start(rm->loop, &f->backoff);
}

/* Applies one partition of the leader's answer. Returns false on an error
 * worth backing off for. */
static bool rm_apply_partition(replica_manager_t *rm, rm_fetcher_t *f,
                               const Vltava__ReplicaFetchPartitionData *d)
{
    rm_entry_t *e = *rm_find_slot(rm, d->topic, strlen(d->topic), d->partition);
    /* A role change or a truncation since the request: the answer is stale. */
    if (!e || !rm_follows(e, f->leader_id) || e->pub.leader_epoch != d->leader_epoch)
        return true;
    partition_log_t *log = e->pub.log;
    int64_t leo = partition_log_end_offset(log);
    if (leo != d->fetch_offset)
        return true;
    if (d->diverging) {
        int32_t local_epoch = -1;
        int64_t local_end = -1;
        if (d->diverging_epoch >= 0)
            partition_log_epoch_end_offset(log, d->diverging_epoch, &local_epoch, &local_end);
        int64_t target = replica_truncation_offset(d->diverging_epoch, d->diverging_end_offset,
                                                   local_epoch, local_end, leo);
        if (target >= leo) {
            VLOG_WARN(RM_MODULE, "%s-%d: leader %d reports divergence at %lld, nothing to cut",
                      e->topic, e->partition, f->leader_id, (long long)target);
            return false;
        }
        bool fully = target < partition_log_start_offset(log);
        log_err_t err = fully ? partition_log_truncate_fully(log, d->log_start_offset)
                              : partition_log_truncate_to(log, target);
        VLOG_INFO(RM_MODULE,
                  "%s-%d: truncated from %lld to %lld (leader %d epoch %d ends at %lld)%s",
                  e->topic, e->partition, (long long)leo, (long long)partition_log_end_offset(log),
                  f->leader_id, d->diverging_epoch, (long long)d->diverging_end_offset,
                  err == LOG_OK ? "" : ": failed");
        if (fully)
            partition_producers_reset(&e->producers, log);
        else
            partition_producers_rebuild(&e->producers, log);
        return err == LOG_OK;
    }
    if (d->error_code == KAFKA_OFFSET_OUT_OF_RANGE && d->log_start_offset > leo) {
        /* The leader deleted what we lack (retention): start at its start. */
        log_err_t err = partition_log_truncate_fully(log, d->log_start_offset);
        VLOG_INFO(RM_MODULE, "%s-%d: behind the leader's log start %lld; log restarted there%s",
                  e->topic, e->partition, (long long)d->log_start_offset,
                  err == LOG_OK ? "" : ": failed");
        partition_producers_reset(&e->producers, log);
        return err == LOG_OK;
    }
    if (d->error_code != KAFKA_NONE) {
        VLOG_DEBUG(RM_MODULE, "%s-%d: leader %d answered error %d", e->topic, e->partition,
                   f->leader_id, d->error_code);
        return false;
    }
    if (d->records.len > 0) {
        log_append_info_t info;
        log_err_t err = partition_log_append_replica(log, d->records.data, d->records.len, &info);
        if (err != LOG_OK) {
            VLOG_WARN(RM_MODULE, "%s-%d: replica append at %lld failed: %s", e->topic, e->partition,
                      (long long)leo, log_err_str(err));
            return false;
        }
        partition_producers_apply(&e->producers, log, d->records.data, d->records.len);
        rm_follower_throttle_record(rm, e, d->records.len);
    }
    /* Never back; the log clamps it to what we hold. */
    if (d->high_watermark > partition_log_high_watermark(log)) {
        partition_log_set_high_watermark(log, d->high_watermark);
        producer_state_on_high_watermark(e->producers.state, partition_log_high_watermark(log));
    }
    return true;
}

static void rm_fetch_done(void *arg, rpc_status_t status, int32_t error_code,
                          const uint8_t *payload, size_t len)
{
    rm_fetcher_t *f = arg;
    replica_manager_t *rm = f->rm;
    assert(f->in_flight);
    f->in_flight = false;
    if (status == RPC_SHUTDOWN || rm->stopping)
        return;
    bool ok = status == RPC_OK && error_code == KAFKA_NONE;
    Vltava__ReplicaFetchResponse *resp =
        ok ? vltava__replica_fetch_response__unpack(NULL, len, payload) : NULL;
    if (ok && !resp)
        VLOG_WARN(RM_MODULE, "undecodable ReplicaFetch answer from broker %d", f->leader_id);
    ok = resp != NULL;
    for (size_t i = 0; resp && i < resp->n_partitions; i++)
        if (!rm_apply_partition(rm, f, resp->partitions[i]))
            ok = false;
    if (resp)
        vltava__replica_fetch_response__free_unpacked(resp, NULL);
    if (!ok) {
        VLOG_DEBUG(RM_MODULE, "fetch from leader %d: status %d error %d; backing off %d ms",
                   f->leader_id, (int)status, error_code, f->backoff_ms);
        rm_fetcher_back_off(f);
        return;
    }
    f->backoff_ms = RM_BACKOFF_MIN_MS;
    rm_fetcher_kick(f);
}

/* Sends the next fetch to f's leader unless one is in flight, a back-off
 * runs, or nothing follows that leader. */
static void rm_fetcher_kick(rm_fetcher_t *f)
{
    replica_manager_t *rm = f->rm;
    if (f->in_flight || rm->stopping || !rm->coord || ev_is_active(&f->backoff))
        return;
    struct rpc *rpc = coordinator_rpc(rm->coord);
    if (!rpc)
        return;
    size_t cap = 16, n = 0, held = 0;
    Vltava__ReplicaFetchPartition *parts = xmalloc(cap * sizeof(*parts));
    const size_t nb = rm->nbuckets;
    size_t b = f->next_bucket < nb ? f->next_bucket : 0;
    for (size_t k = 0; k < nb && n < RM_FETCH_MAX_PARTITIONS; k++, b = (b + 1) % nb) {
        for (rm_entry_t *e = rm->buckets[b]; e && n < RM_FETCH_MAX_PARTITIONS; e = e->next) {
            if (!rm_follows(e, f->leader_id))
                continue;
            if (rm_follower_throttle_holds(rm, e)) {
                held++;
                continue;
            }
            if (n == cap) {
                cap *= 2;
                parts = xrealloc(parts, cap * sizeof(*parts));
            }
            Vltava__ReplicaFetchPartition *p = &parts[n++];
            vltava__replica_fetch_partition__init(p);
            p->topic = e->topic;
            p->partition = e->partition;
            p->leader_epoch = e->pub.leader_epoch;
            p->fetch_offset = partition_log_end_offset(e->pub.log);
            p->last_fetched_epoch = partition_log_latest_epoch(e->pub.log);
        }
    }
    /* Full: the next request starts at the bucket this one stopped in (b
     * moved one past it), so the partitions after the cap are next. */
    if (n >= RM_FETCH_MAX_PARTITIONS)
        f->next_bucket = (b + nb - 1) % nb;
    if (n == 0) {
        free(parts);
        if (held > 0)
            rm_fetcher_wait_throttle(f);
        return;
    }
    Vltava__ReplicaFetchPartition **ptrs = xmalloc(n * sizeof(*ptrs));
    for (size_t i = 0; i < n; i++)
        ptrs[i] = &parts[i];
    Vltava__ReplicaFetchRequest m = VLTAVA__REPLICA_FETCH_REQUEST__INIT;
    m.replica_id = rm_own_id(rm);
    m.max_wait_ms = RM_FETCH_MAX_WAIT_MS;
    m.max_bytes = RM_FETCH_MAX_BYTES;
    m.n_partitions = n;
    m.partitions = ptrs;
    size_t len = vltava__replica_fetch_request__get_packed_size(&m);
    uint8_t *buf = xmalloc(len);
    vltava__replica_fetch_request__pack(&m, buf);
    free(ptrs);
    free(parts);
    f->in_flight = true;
    int rc = rpc_send(rpc, f->leader_id, VLTAVA__RPC_TYPE__RPC_REPLICA_FETCH, buf, len,
                      RM_FETCH_TIMEOUT_MS, rm_fetch_done, f);
    free(buf);
    if (rc != 0) {
        f->in_flight = false;
        rm_fetcher_back_off(f);
    }
}

/* Starts fetchers for every leader this broker follows (idle ones only). */
static void rm_kick_all(replica_manager_t *rm)
{
    if (!rm->coord || rm->stopping)
        return;
    for (size_t i = 0; i < rm->nbuckets; i++)
        for (rm_entry_t *e = rm->buckets[i]; e; e = e->next)
            if (!e->pub.is_leader && e->pub.leader_id >= 0) {
                rm_fetcher_t *f = rm_fetcher_for(rm, e->pub.leader_id);
                if (f)
                    rm_fetcher_kick(f);
            }
}

void replica_manager_set_coordinator(replica_manager_t *rm, coordinator_t *coord)
{
    assert(coord != NULL);
    rm->coord = coord;
    replica_manager_remove_orphans(rm);
    /* Failed opens of partitions no longer assigned here are no concern of
     * the controller's. */
    const cluster_metadata_t *md = coordinator_metadata(coord);
    for (size_t i = rm->noffline; i-- > 0;)
        if (!md_assigns(md, rm->offline[i].topic, rm->offline[i].partition, rm_own_id(rm))) {
            free(rm->offline[i].topic);
            rm->offline[i] = rm->offline[--rm->noffline];
        }
    /* Even when empty: a controller that knew this broker's earlier set
     * learns it is gone. Partitions whose log failed to open at start are
     * in it already (replica_manager_new). */
    rm_offline_report(rm);
    struct rpc *rpc = coordinator_rpc(coord);
    if (rpc)
        rpc_set_handler(rpc, VLTAVA__RPC_TYPE__RPC_REPLICA_FETCH, rm_on_replica_fetch, rm);
    if (rm->loop) {
        double every = rm->cfg->replica_lag_time_max_ms / 4000.0;
        if (every < 0.05)
            every = 0.05;
        if (every > 1.0)
            every = 1.0;
        ev_timer_init(&rm->isr_timer, rm_isr_tick, every, every);
        rm->isr_timer.data = rm;
        ev_timer_start(rm->loop, &rm->isr_timer);
        double expiry_every = rm->cfg->producer_id_expiration_check_interval_ms / 1000.0;
        ev_timer_init(&rm->expiry_timer, rm_expiry_tick, expiry_every, expiry_every);
        rm->expiry_timer.data = rm;
        ev_timer_start(rm->loop, &rm->expiry_timer);
    }
    rm_kick_all(rm);
}

void replica_manager_stop(replica_manager_t *rm)
{
    if (rm->stopping)
        return;
    rm->stopping = true;
    if (rm->loop) {
        ev_timer_stop(rm->loop, &rm->isr_timer);
        ev_timer_stop(rm->loop, &rm->expiry_timer);
        for (int i = 0; i < rm->nfetchers; i++)
            ev_timer_stop(rm->loop, &rm->fetchers[i]->backoff);
    }
    /* Parked fetches are answered now, while the RPC channel exists. */
    while (rm->parked) {
        rm_parked_t *pk = rm->parked;
        rm_parked_unlink(pk);
        rm_fetch_answer(rm, pk->req, pk->sender_id, pk->msg, true);
        rm_parked_free(pk);
    }
}

/* ---- read at scrape time ---- */

void replica_manager_visit(replica_manager_t *rm,
                           void (*fn)(void *arg, const replica_partition_info_t *info), void *arg)
{
    assert(rm != NULL && fn != NULL);
    for (size_t i = 0; i < rm->nbuckets; i++) {
        for (const rm_entry_t *e = rm->buckets[i]; e; e = e->next) {
            replica_partition_info_t info = {
                .topic = e->topic,
                .partition = e->partition,
                .is_leader = e->pub.is_leader,
                .size_bytes = partition_log_size_bytes(e->pub.log),
            };
            if (e->pub.is_leader) {
                info.nreplicas = e->nreplicas;
                info.nisr = e->nisr;
                info.min_insync_replicas = partition_log_config(e->pub.log)->min_insync_replicas;
            }
            fn(arg, &info);
        }
    }
}

void replica_manager_isr_changes(const replica_manager_t *rm, uint64_t *shrinks, uint64_t *expands)
{
    *shrinks = rm->isr_shrinks;
    *expands = rm->isr_expands;
}
