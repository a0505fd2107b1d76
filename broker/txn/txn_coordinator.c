/* The transaction protocol (Kafka's TransactionCoordinator): what each
 * request asks of an id's metadata (txn_meta.c decides), the writes that
 * make it durable (txn_store.c), the markers that end a transaction
 * (txn_markers.c), the abort of transactions that outlive their timeout
 * and the expiry of idle ids. See txn_coordinator.h for the contract with
 * broker/api. */
#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator.h"
#include "kafka_errors.h"
#include "producer_ids.h"
#include "txn_internal.h"
#include "vlog.h"
#include "wall_clock.h"
#include "xalloc.h"

/* Timed-out transactions aborted, and idle ids expired, per timer tick:
 * the rest wait for the next tick, so one tick's writes stay bounded. */
#define TXN_ABORTS_PER_TICK   10000
#define TXN_EXPIRIES_PER_TICK 10000
/* InitProducerId rounds for one request: a new producer id is asked for
 * at most twice (creating the id, then rotating an exhausted epoch). */
#define TXN_INIT_MAX_ROUNDS 3

int64_t txn_now_ms(void)
{
    return wall_clock_ms();
}

/* Ids travel between brokers as protobuf strings (NUL-terminated in
 * protobuf-c), so an id with a NUL byte is refused everywhere alike. */
static bool slice_ok_id(kslice_t id)
{
    return id.ptr != NULL && id.len > 0 && id.len <= TXN_MAX_ID_BYTES &&
           memchr(id.ptr, '\0', (size_t)id.len) == NULL;
}

/* The entry a request names, or the error to answer. */
static int16_t route_entry(txn_coordinator_t *tc, kslice_t id, txn_entry_t **out,
                           int32_t *partition, int32_t *coordinator_epoch)
{
    *out = NULL;
    int16_t error =
        txn_store_route(tc, (const char *)id.ptr, (size_t)id.len, partition, coordinator_epoch);
    if (error == KAFKA_NONE)
        *out = txn_entry_find(tc, (const char *)id.ptr, (size_t)id.len);
    return error;
}

/* Queues a write of t (moved in) for e at coordinator_epoch. */
static void write_transit(txn_coordinator_t *tc, txn_entry_t *e, int32_t coordinator_epoch,
                          txn_transit_t *t, bool fence, txn_write_done_fn done, void *arg)
{
    txn_write_t *w = xcalloc(1, sizeof(*w));
    w->entry = e;
    w->coordinator_epoch = coordinator_epoch;
    w->transit = *t;
    memset(t, 0, sizeof(*t));
    w->fence = fence;
    w->done = done;
    w->arg = arg;
    txn_store_write(tc, w);
}

/* ---- InitProducerId ---- */

typedef struct init_op {
    txn_coordinator_t *tc;
    char *id;
    size_t id_len;
    int32_t timeout_ms;
    int64_t expected_pid;
    int16_t expected_epoch;
    int32_t rounds;
    txn_init_done_fn done;
    void *arg;
} init_op_t;

static void init_answer(init_op_t *op, int16_t error, int64_t producer_id, int16_t epoch)
{
    assert(error != KAFKA_NONE || (producer_id >= 0 && epoch >= 0));
    if (error != KAFKA_NONE)
        VLOG_DEBUG(TXN_MODULE, "InitProducerId for %s: %s", op->id, kafka_error_name(error));
    op->done(op->arg, error, error == KAFKA_NONE ? producer_id : -1,
             error == KAFKA_NONE ? epoch : -1);
    free(op->id);
    free(op);
}

static void init_run(init_op_t *op, int64_t new_pid);

static void init_pid_ready(void *arg, int16_t error, int64_t producer_id)
{
    init_op_t *op = arg;
    if (error != KAFKA_NONE) {
        /* ZooKeeper's trouble, which the client retries. */
        init_answer(op, KAFKA_COORDINATOR_NOT_AVAILABLE, -1, -1);
        return;
    }
    assert(producer_id >= 0);
    init_run(op, producer_id);
}

static void init_need_pid(init_op_t *op)
{
    if (++op->rounds > TXN_INIT_MAX_ROUNDS || op->tc->pids == NULL) {
        init_answer(op, KAFKA_COORDINATOR_NOT_AVAILABLE, -1, -1);
        return;
    }
    producer_id_manager_next(op->tc->pids, init_pid_ready, op);
}

static void init_written(txn_coordinator_t *tc, txn_write_t *w, int16_t error)
{
    (void)tc;
    init_op_t *op = w->arg;
    if (error == KAFKA_NONE)
        VLOG_INFO(TXN_MODULE,
                  "initialized transactional id %s with producer id %" PRId64 " epoch %d on %s-%d",
                  op->id, w->transit.producer_id, w->transit.producer_epoch, TXN_STATE_TOPIC,
                  w->entry->partition);
    init_answer(op, error, w->transit.producer_id, w->transit.producer_epoch);
}

/* The ongoing transaction an InitProducerId fenced is being aborted: the
 * client retries (and then gets the next epoch). */
static void init_fence_written(txn_coordinator_t *tc, txn_write_t *w, int16_t error)
{
    init_op_t *op = w->arg;
    if (error == KAFKA_NONE)
        txn_markers_start(tc, w->entry);
    init_answer(op, error == KAFKA_NONE ? KAFKA_CONCURRENT_TRANSACTIONS : error, -1, -1);
}

/* One round of InitProducerId (handleInitProducerId); new_pid: a producer
 * id obtained for this round, or -1. */
static void init_run(init_op_t *op, int64_t new_pid)
{
    txn_coordinator_t *tc = op->tc;
    kslice_t id = {(const uint8_t *)op->id, (int32_t)op->id_len};
    txn_entry_t *e;
    int32_t partition, coordinator_epoch;
    int16_t error = route_entry(tc, id, &e, &partition, &coordinator_epoch);
    if (error != KAFKA_NONE) {
        init_answer(op, error, -1, -1);
        return;
    }
    const int64_t now = txn_now_ms();
    if (e == NULL) {
        if (new_pid < 0) {
            init_need_pid(op);
            return;
        }
        if (tc->nentries >= TXN_MAX_IDS) {
            VLOG_WARN(TXN_MODULE, "refusing transactional id %s: this broker coordinates %d ids",
                      op->id, TXN_MAX_IDS);
            init_answer(op, KAFKA_COORDINATOR_NOT_AVAILABLE, -1, -1);
            return;
        }
        txn_meta_t m;
        txn_meta_init(&m, new_pid, op->timeout_ms, now);
        e = txn_entry_create(tc, op->id, op->id_len, partition, &m);
        new_pid = -1; /* it is the new id's */
    }
    txn_init_plan_t plan;
    txn_transit_t t;
    error = txn_meta_prepare_init(&e->meta, op->timeout_ms, op->expected_pid, op->expected_epoch,
                                  new_pid, now, &plan, &t);
    if (error != KAFKA_NONE) {
        init_answer(op, error, -1, -1);
        return;
    }
    switch (plan) {
    case TXN_INIT_NEED_PID:
        init_need_pid(op);
        return;
    case TXN_INIT_FENCE:
        VLOG_INFO(TXN_MODULE,
                  "transactional id %s: aborting its ongoing transaction to fence producer %" PRId64
                  " epoch %d",
                  op->id, e->meta.producer_id, e->meta.producer_epoch);
        txn_meta_prepare_fence(&e->meta, now, &t);
        write_transit(tc, e, coordinator_epoch, &t, true, init_fence_written, op);
        return;
    case TXN_INIT_WRITE:
        write_transit(tc, e, coordinator_epoch, &t, false, init_written, op);
        return;
    }
}

void txn_init_producer_id(txn_coordinator_t *tc, kslice_t transactional_id,
                          int32_t transaction_timeout_ms, int64_t expected_pid,
                          int16_t expected_epoch, txn_init_done_fn done, void *arg)
{
    assert(transactional_id.ptr != NULL && done != NULL);
    assert((expected_pid == -1) == (expected_epoch == -1));
    if (!slice_ok_id(transactional_id)) {
        /* Kafka: an empty id is INVALID_REQUEST, as the producer client
         * refuses it too; an id over the bound likewise. */
        done(arg, KAFKA_INVALID_REQUEST, -1, -1);
        return;
    }
    if (transaction_timeout_ms <= 0 || transaction_timeout_ms > tc->cfg.max_timeout_ms) {
        done(arg, KAFKA_INVALID_TRANSACTION_TIMEOUT, -1, -1);
        return;
    }
    init_op_t *op = xcalloc(1, sizeof(*op));
    op->tc = tc;
    op->id = kslice_strdup(transactional_id);
    op->id_len = (size_t)transactional_id.len;
    op->timeout_ms = transaction_timeout_ms;
    op->expected_pid = expected_pid;
    op->expected_epoch = expected_epoch;
    op->done = done;
    op->arg = arg;
    init_run(op, -1);
}

/* ---- AddPartitionsToTxn, EndTxn ---- */

typedef struct simple_op {
    txn_done_fn done;
    void *arg;
} simple_op_t;

static simple_op_t *simple_op(txn_done_fn done, void *arg)
{
    simple_op_t *op = xmalloc(sizeof(*op));
    op->done = done;
    op->arg = arg;
    return op;
}

static void added(txn_coordinator_t *tc, txn_write_t *w, int16_t error)
{
    simple_op_t *op = w->arg;
    (void)tc;
    op->done(op->arg, error);
    free(op);
}

void txn_add_partitions(txn_coordinator_t *tc, kslice_t transactional_id, int64_t producer_id,
                        int16_t producer_epoch, const txn_partition_ref_t *parts, int32_t nparts,
                        txn_done_fn done, void *arg)
{
    assert(nparts >= 0 && (nparts == 0 || parts != NULL));
    if (!slice_ok_id(transactional_id)) {
        done(arg, transactional_id.len > TXN_MAX_ID_BYTES ? KAFKA_INVALID_PRODUCER_ID_MAPPING
                                                          : KAFKA_INVALID_REQUEST);
        return;
    }
    txn_entry_t *e;
    int32_t partition, coordinator_epoch;
    int16_t error = route_entry(tc, transactional_id, &e, &partition, &coordinator_epoch);
    if (error == KAFKA_NONE && e == NULL)
        error = KAFKA_INVALID_PRODUCER_ID_MAPPING;
    if (error != KAFKA_NONE) {
        done(arg, error);
        return;
    }
    txn_tp_view_t *views = xcalloc((size_t)(nparts > 0 ? nparts : 1), sizeof(*views));
    for (int32_t i = 0; i < nparts; i++) {
        assert(parts[i].topic.ptr != NULL && parts[i].topic.len >= 0);
        views[i] = (txn_tp_view_t){(const char *)parts[i].topic.ptr, (size_t)parts[i].topic.len,
                                   parts[i].partition};
    }
    bool write;
    txn_transit_t t;
    error = txn_meta_prepare_add(&e->meta, producer_id, producer_epoch, views, nparts, txn_now_ms(),
                                 &write, &t);
    free(views);
    if (error != KAFKA_NONE || !write) {
        done(arg, error);
        return;
    }
    write_transit(tc, e, coordinator_epoch, &t, false, added, simple_op(done, arg));
}

/* PrepareCommit/PrepareAbort is durable: the client hears NONE, then the
 * markers go out (Kafka answers before sending them too). */
static void end_prepared(txn_coordinator_t *tc, txn_write_t *w, int16_t error)
{
    simple_op_t *op = w->arg;
    op->done(op->arg, error);
    free(op);
    if (error == KAFKA_NONE)
        txn_markers_start(tc, w->entry);
}

void txn_end(txn_coordinator_t *tc, kslice_t transactional_id, int64_t producer_id,
             int16_t producer_epoch, bool commit, txn_done_fn done, void *arg)
{
    if (!slice_ok_id(transactional_id)) {
        done(arg, transactional_id.len > TXN_MAX_ID_BYTES ? KAFKA_INVALID_PRODUCER_ID_MAPPING
                                                          : KAFKA_INVALID_REQUEST);
        return;
    }
    txn_entry_t *e;
    int32_t partition, coordinator_epoch;
    int16_t error = route_entry(tc, transactional_id, &e, &partition, &coordinator_epoch);
    if (error == KAFKA_NONE && e == NULL)
        error = KAFKA_INVALID_PRODUCER_ID_MAPPING;
    if (error != KAFKA_NONE) {
        done(arg, error);
        return;
    }
    bool write;
    txn_transit_t t;
    error = txn_meta_prepare_end(&e->meta, producer_id, producer_epoch, commit, txn_now_ms(),
                                 &write, &t);
    if (error != KAFKA_NONE || !write) {
        done(arg, error);
        return;
    }
    write_transit(tc, e, coordinator_epoch, &t, false, end_prepared, simple_op(done, arg));
}

/* ---- DescribeTransactions, ListTransactions ---- */

void txn_describe(txn_coordinator_t *tc, kslice_t transactional_id, txn_description_t *out)
{
    memset(out, 0, sizeof(*out));
    out->state = "";
    out->producer_id = -1;
    out->producer_epoch = -1;
    out->start_ms = -1;
    if (transactional_id.ptr == NULL || transactional_id.len == 0) {
        out->error = KAFKA_INVALID_REQUEST;
        return;
    }
    txn_entry_t *e;
    int32_t partition, coordinator_epoch;
    out->error = route_entry(tc, transactional_id, &e, &partition, &coordinator_epoch);
    if (out->error != KAFKA_NONE)
        return;
    if (e == NULL || e->meta.pending == TXN_DEAD) {
        out->error = KAFKA_TRANSACTIONAL_ID_NOT_FOUND;
        return;
    }
    const txn_meta_t *m = &e->meta;
    out->state = txn_state_name(m->state);
    out->timeout_ms = m->timeout_ms;
    out->start_ms = m->start_ms;
    out->producer_id = m->producer_id;
    out->producer_epoch = m->producer_epoch;
    const int32_t n = m->partitions.count;
    if (n == 0)
        return;
    size_t names = 0;
    for (int32_t i = 0; i < n; i++)
        names += strlen(m->partitions.items[i].topic);
    out->partitions = xmalloc((size_t)n * sizeof(*out->partitions) + names);
    char *text = (char *)(out->partitions + n);
    for (int32_t i = 0; i < n; i++) {
        size_t len = strlen(m->partitions.items[i].topic);
        memcpy(text, m->partitions.items[i].topic, len);
        out->partitions[i] = (txn_partition_ref_t){{(const uint8_t *)text, (int32_t)len},
                                                   m->partitions.items[i].partition};
        text += len;
    }
    out->npartitions = n;
}

static bool list_includes(const txn_meta_t *m, const txn_list_filter_t *f, const bool *states,
                          int64_t now)
{
    if (f->nproducer_ids > 0) {
        bool found = false;
        for (int32_t i = 0; i < f->nproducer_ids && !found; i++)
            found = f->producer_ids[i] == m->producer_id;
        if (!found)
            return false;
    }
    if (f->nstates > 0 && !states[m->state])
        return false;
    /* Kafka's rule, which an id with no transaction (start -1) passes. */
    if (f->min_duration_ms >= 0 && now - m->start_ms <= f->min_duration_ms)
        return false;
    return m->pending != TXN_DEAD;
}

int16_t txn_list(txn_coordinator_t *tc, const txn_list_filter_t *filter, txn_listing_t **out,
                 int32_t *count, kslice_t **unknown_states, int32_t *nunknown)
{
    *out = NULL;
    *count = 0;
    *unknown_states = NULL;
    *nunknown = 0;
    for (int32_t p = 0; p < tc->store.nparts; p++)
        if (txn_store_partition_state(tc, p) == COORD_LOG_LOADING)
            return KAFKA_COORDINATOR_LOAD_IN_PROGRESS;
    bool states[TXN_STATE_COUNT] = {false};
    for (int32_t i = 0; i < filter->nstates; i++) {
        int s = txn_state_from_name(filter->states[i]);
        if (s >= 0) {
            states[s] = true;
            continue;
        }
        if (*unknown_states == NULL)
            *unknown_states = xcalloc((size_t)filter->nstates, sizeof(**unknown_states));
        (*unknown_states)[(*nunknown)++] = filter->states[i];
    }
    const int64_t now = txn_now_ms();
    int32_t n = 0;
    size_t names = 0;
    for (size_t b = 0; b < tc->nbuckets; b++)
        for (txn_entry_t *e = tc->buckets[b]; e; e = e->hnext)
            if (list_includes(&e->meta, filter, states, now)) {
                n++;
                names += e->id_len + 1;
            }
    if (n == 0)
        return KAFKA_NONE;
    *out = xmalloc((size_t)n * sizeof(**out) + names);
    char *text = (char *)(*out + n);
    int32_t i = 0;
    for (size_t b = 0; b < tc->nbuckets; b++)
        for (txn_entry_t *e = tc->buckets[b]; e; e = e->hnext) {
            if (!list_includes(&e->meta, filter, states, now))
                continue;
            memcpy(text, e->id, e->id_len + 1);
            (*out)[i++] = (txn_listing_t){.transactional_id = text,
                                          .producer_id = e->meta.producer_id,
                                          .state = txn_state_name(e->meta.state)};
            text += e->id_len + 1;
        }
    assert(i == n);
    *count = n;
    return KAFKA_NONE;
}

/* ---- timeouts and expiry ---- */

static void timeout_fenced(txn_coordinator_t *tc, txn_write_t *w, int16_t error)
{
    if (error == KAFKA_NONE) {
        VLOG_INFO(TXN_MODULE, "transactional id %s: aborting its transaction, which timed out",
                  w->entry->id);
        txn_markers_start(tc, w->entry);
    } else {
        VLOG_WARN(TXN_MODULE, "transactional id %s: aborting its timed-out transaction failed: %s",
                  w->entry->id, kafka_error_name(error));
    }
}

/* ---- periodic work and reloads, over the whole table ---- */

/* A decided transaction with nothing under way to finish it: no markers
 * being sent and no state change being written. */
static bool markers_stalled(const txn_entry_t *e)
{
    return (e->meta.state == TXN_PREPARE_COMMIT || e->meta.state == TXN_PREPARE_ABORT) &&
           e->markers == NULL && e->meta.pending == TXN_NO_PENDING;
}

typedef bool (*entry_pick_fn)(const txn_coordinator_t *tc, const txn_entry_t *e, int64_t arg);

/* The entries pick selects, at most max, each with a reference the caller
 * drops (txn_entry_release). Collected before anything is done to them:
 * acting on one may write, complete at once and change the table. */
static txn_entry_t **collect_entries(txn_coordinator_t *tc, int32_t max, entry_pick_fn pick,
                                     int64_t arg, int32_t *n)
{
    assert(max > 0);
    txn_entry_t **found = NULL;
    int32_t cap = 0;
    *n = 0;
    for (size_t b = 0; b < tc->nbuckets && *n < max; b++)
        for (txn_entry_t *e = tc->buckets[b]; e && *n < max; e = e->hnext) {
            if (!pick(tc, e, arg))
                continue;
            if (*n == cap) {
                cap = cap ? cap * 2 : 16;
                found = xrealloc(found, (size_t)cap * sizeof(*found));
            }
            found[(*n)++] = e;
            e->refs++;
        }
    return found;
}

/* Timed out (arg: now), or stalled (see abort_tick), on a loaded partition. */
static bool pick_abortable(const txn_coordinator_t *tc, const txn_entry_t *e, int64_t now)
{
    return txn_store_partition_state(tc, e->partition) == COORD_LOG_ACTIVE &&
           (markers_stalled(e) || txn_meta_timed_out(&e->meta, now));
}

/* abortTimedOutTransactions: a transaction older than its timeout is
 * aborted with the producer fenced (an epoch bump), so a producer that
 * comes back late cannot add to it. The same tick restarts the markers of
 * a decided transaction whose completion write failed while this broker
 * stayed its coordinator (a storage error): nothing else would send them
 * again until the partition reloads (Kafka leaves the same gap). */
static void abort_tick(struct ev_loop *loop, ev_timer *timer, int revents)
{
    txn_coordinator_t *tc = timer->data;
    (void)loop;
    (void)revents;
    const int64_t now = txn_now_ms();
    int32_t n;
    txn_entry_t **found = collect_entries(tc, TXN_ABORTS_PER_TICK, pick_abortable, now, &n);
    for (int32_t i = 0; i < n; i++) {
        txn_entry_t *e = found[i];
        int32_t partition, coordinator_epoch;
        if (!e->removed && markers_stalled(e)) {
            VLOG_WARN(TXN_MODULE, "transactional id %s: %s with no markers under way; sending them",
                      e->id, txn_state_name(e->meta.state));
            txn_markers_start(tc, e);
        } else if (!e->removed &&
                   txn_store_route(tc, e->id, e->id_len, &partition, &coordinator_epoch) ==
                       KAFKA_NONE &&
                   txn_meta_timed_out(&e->meta, now)) {
            txn_transit_t t;
            txn_meta_prepare_fence(&e->meta, now, &t);
            write_transit(tc, e, coordinator_epoch, &t, true, timeout_fenced, NULL);
        }
        txn_entry_release(tc, e);
    }
    free(found);
}

static void expired(txn_coordinator_t *tc, txn_write_t *w, int16_t error)
{
    (void)tc;
    if (error == KAFKA_NONE)
        VLOG_INFO(TXN_MODULE, "transactional id %s expired", w->entry->id);
    else
        VLOG_WARN(TXN_MODULE, "transactional id %s: expiring it failed: %s", w->entry->id,
                  kafka_error_name(error));
}

/* Idle past transactional.id.expiration.ms (arg: now), on a loaded
 * partition. */
static bool pick_expirable(const txn_coordinator_t *tc, const txn_entry_t *e, int64_t now)
{
    return txn_store_partition_state(tc, e->partition) == COORD_LOG_ACTIVE &&
           txn_meta_expirable(&e->meta, now, tc->cfg.id_expiration_ms);
}

/* removeExpiredTransactionalIds: an id idle for
 * transactional.id.expiration.ms is forgotten (a tombstone). */
static void expiry_tick(struct ev_loop *loop, ev_timer *timer, int revents)
{
    txn_coordinator_t *tc = timer->data;
    (void)loop;
    (void)revents;
    const int64_t now = txn_now_ms();
    int32_t n;
    txn_entry_t **found = collect_entries(tc, TXN_EXPIRIES_PER_TICK, pick_expirable, now, &n);
    for (int32_t i = 0; i < n; i++) {
        txn_entry_t *e = found[i];
        int32_t partition, coordinator_epoch;
        if (!e->removed &&
            txn_store_route(tc, e->id, e->id_len, &partition, &coordinator_epoch) == KAFKA_NONE &&
            txn_meta_expirable(&e->meta, now, tc->cfg.id_expiration_ms)) {
            txn_meta_prepare_dead(&e->meta);
            txn_write_t *w = xcalloc(1, sizeof(*w));
            w->entry = e;
            w->coordinator_epoch = coordinator_epoch;
            w->tombstone = true;
            w->done = expired;
            txn_store_write(tc, w);
        }
        txn_entry_release(tc, e);
    }
    free(found);
}

/* ---- lifecycle ---- */

/* A decided transaction of the partition (arg) just loaded. */
static bool pick_prepared_in(const txn_coordinator_t *tc, const txn_entry_t *e, int64_t partition)
{
    (void)tc;
    return e->partition == partition &&
           (e->meta.state == TXN_PREPARE_COMMIT || e->meta.state == TXN_PREPARE_ABORT);
}

void txn_coordinator_loaded(txn_coordinator_t *tc, int32_t partition)
{
    int32_t n;
    txn_entry_t **found = collect_entries(tc, INT32_MAX, pick_prepared_in, partition, &n);
    for (int32_t i = 0; i < n; i++) {
        txn_entry_t *e = found[i];
        if (!e->removed && markers_stalled(e)) {
            VLOG_INFO(TXN_MODULE, "transactional id %s: %s after loading; sending its markers",
                      e->id, txn_state_name(e->meta.state));
            txn_markers_start(tc, e);
        }
        txn_entry_release(tc, e);
    }
    free(found);
}

txn_coordinator_t *txn_coordinator_new(struct ev_loop *loop, const txn_config_t *cfg,
                                       struct replica_manager *replicas, struct coordinator *coord,
                                       struct group_coordinator *groups,
                                       struct producer_id_manager *pids)
{
    assert(cfg->max_timeout_ms >= 1 && cfg->abort_timed_out_interval_ms >= 1);
    assert(cfg->remove_expired_interval_ms >= 1 && cfg->id_expiration_ms >= 1);
    txn_coordinator_t *tc = xcalloc(1, sizeof(*tc));
    tc->loop = loop;
    tc->cfg = *cfg;
    tc->replicas = replicas;
    tc->coord = coord;
    tc->groups = groups;
    tc->pids = pids;
    txn_store_init(tc);
    txn_markers_init(tc);
    txn_verify_init(tc);
    double every = cfg->abort_timed_out_interval_ms / 1000.0;
    ev_timer_init(&tc->abort_timer, abort_tick, every, every);
    tc->abort_timer.data = tc;
    ev_timer_start(loop, &tc->abort_timer);
    every = cfg->remove_expired_interval_ms / 1000.0;
    ev_timer_init(&tc->expiry_timer, expiry_tick, every, every);
    tc->expiry_timer.data = tc;
    ev_timer_start(loop, &tc->expiry_timer);
    /* The periodic timers alone do not keep the loop alive. */
    ev_unref(loop);
    ev_unref(loop);
    /* Partitions this broker already leads (assigned while the coordinator
     * started, before anyone forwarded their events). */
    const cluster_metadata_t *md = coordinator_metadata(coord);
    const md_topic_t *t = cluster_metadata_topic(md, TXN_STATE_TOPIC, strlen(TXN_STATE_TOPIC));
    for (int32_t p = 0; t && p < t->npartitions; p++)
        txn_store_partition_event(tc, p);
    return tc;
}

void txn_coordinator_stop(txn_coordinator_t *tc)
{
    if (tc == NULL)
        return;
    txn_markers_stop(tc);
    /* The producer-id manager goes next (it answers whoever still waits on
     * it); no new request reaches it from here. */
    tc->pids = NULL;
}

void txn_coordinator_free(txn_coordinator_t *tc)
{
    if (tc == NULL)
        return;
    txn_coordinator_stop(tc);
    tc->freeing = true;
    ev_ref(tc->loop);
    ev_ref(tc->loop);
    ev_timer_stop(tc->loop, &tc->abort_timer);
    ev_timer_stop(tc->loop, &tc->expiry_timer);
    txn_store_free(tc);
    txn_markers_free(tc);
    free(tc);
}

void txn_coordinator_partition_event(txn_coordinator_t *tc, const char *topic, int32_t partition)
{
    assert(topic != NULL);
    if (tc->freeing)
        return;
    if (strcmp(topic, TXN_STATE_TOPIC) == 0)
        txn_store_partition_event(tc, partition);
    txn_markers_partition_event(tc, topic, partition);
}
