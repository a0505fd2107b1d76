/* Transaction markers, both ends (Kafka's TransactionMarkerChannelManager,
 * its completion handler, and KafkaApis.handleWriteTxnMarkersRequest).
 *
 * Coordinator side: a transaction that is PrepareCommit/PrepareAbort gets
 * a job: one item per partition of the transaction, queued per leader
 * broker (from the metadata). Once per loop iteration each destination
 * with queued items and no request in flight sends up to
 * TXN_MARKER_BATCH_MAX of them, to itself directly or to another broker as
 * RPC_WRITE_TXN_MARKERS. An acknowledged partition leaves the transaction's
 * partition set; a retriable failure (leadership moving, the leader's
 * replicas lagging, the RPC failing) sends the item round again after
 * TXN_MARKER_RETRY_MS, to whoever leads the partition then. When the last
 * partition is acknowledged the job writes CompleteCommit/CompleteAbort,
 * retrying while the log answers COORDINATOR_NOT_AVAILABLE.
 *
 * Leader side: each marker is appended through the replica layer
 * (replica_manager_write_txn_marker) and answered once the partition's high
 * watermark passes it (waiters parked by partition, answered from the
 * replica events), NOT_LEADER_OR_FOLLOWER when the leadership goes first,
 * REQUEST_TIMED_OUT after TXN_MARKER_WRITE_TIMEOUT_MS. A marker completing
 * a transaction in __consumer_offsets is handed to the group coordinator
 * once replicated, which then commits or drops the transaction's offsets. */
#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "fnv1a.h"
#include "coordinator.h"
#include "group_coordinator.h"
#include "kafka_errors.h"
#include "replica_manager.h"
#include "rpc.h"
#include "rpc.pb-c.h"
#include "txn_internal.h"
#include "vlog.h"
#include "xalloc.h"

/* Markers per request: each is ~40 bytes plus its topic, so a request
 * stays well under the RPC frame limit and one slow partition delays at
 * most this many others. */
#define TXN_MARKER_BATCH_MAX 1000
/* Most markers a leader accepts in one request (INVALID_REQUEST beyond):
 * the sender's batch with room to spare, bounding what one peer parks. */
#define TXN_MARKER_REQUEST_MAX 10000
/* A leader's wait for its high watermark to pass a marker: Kafka's
 * request.timeout.ms, which bounds its marker appends. */
#define TXN_MARKER_WRITE_TIMEOUT_MS 30000
/* The RPC deadline covers the leader's wait and the trip. */
#define TXN_MARKER_RPC_TIMEOUT_MS (TXN_MARKER_WRITE_TIMEOUT_MS + 5000)
/* Before an item is sent again after a failure, or a completion written
 * again: leadership moves take the controller at least this long. */
#define TXN_MARKER_RETRY_MS 100
/* Chains of parked leader-side waiters, by (topic, partition). */
#define TXN_WAITER_BUCKETS 256

/* ---- coordinator side: state ---- */

typedef struct txn_marker_job {
    txn_entry_t *entry; /* holds a ref */
    int32_t coordinator_epoch;
    int64_t producer_id;
    int16_t producer_epoch;
    bool commit;
    txn_transit_t complete; /* the CompleteCommit/CompleteAbort to write */
    int32_t outstanding;    /* partitions not acknowledged yet */
    int32_t refs;           /* items alive, a completion write, and the entry's link */
    bool cancelled;
    ev_timer retry_complete; /* a completion write answered COORDINATOR_NOT_AVAILABLE */
    txn_coordinator_t *tc;
} txn_marker_job_t;

typedef struct txn_marker_item {
    struct txn_marker_item *next; /* in a destination queue, a request, or the retry list */
    txn_marker_job_t *job;
    char *topic;
    int32_t partition;
} txn_marker_item_t;

typedef struct txn_marker_dest {
    txn_coordinator_t *tc;
    int32_t broker_id;
    txn_marker_item_t *head, *tail; /* queued */
    txn_marker_item_t *sent;        /* the request in flight, in request order */
    int32_t nsent;
    bool busy;
} txn_marker_dest_t;

/* ---- leader side: state ---- */

/* One marker a leader writes. */
typedef struct txn_marker_spec {
    const char *topic;
    int32_t partition;
    int64_t producer_id;
    int16_t producer_epoch;
    bool commit;
    int32_t coordinator_epoch;
} txn_marker_spec_t;

typedef void (*leader_done_fn)(void *arg, const int16_t *errors, int32_t n);

typedef struct txn_leader_waiter {
    struct txn_leader_waiter *next; /* bucket chain, or a detached list */
    struct txn_leader_batch *batch;
    int32_t index;
    char *topic;
    int32_t partition;
    int32_t leader_epoch;
    int64_t marker_offset;
    int64_t producer_id;
    bool commit;
    bool parked; /* in a bucket chain */
} txn_leader_waiter_t;

typedef struct txn_leader_batch {
    struct txn_leader_batch *next, *prev; /* tc->batches */
    txn_coordinator_t *tc;
    int32_t n;
    int32_t left; /* markers not answered yet */
    int16_t *errors;
    txn_leader_waiter_t *waiters;
    leader_done_fn done;
    void *arg;
    ev_timer timer;
    bool linked;
} txn_leader_batch_t;

static void leader_write(txn_coordinator_t *tc, const txn_marker_spec_t *specs, int32_t n,
                         leader_done_fn done, void *arg);

/* ---- coordinator side ---- */

static void send_soon(txn_coordinator_t *tc)
{
    if (!tc->stopped && !ev_is_active(&tc->send_timer))
        ev_timer_start(tc->loop, &tc->send_timer);
}

/* Drops `n` references at once: callers dropping two say so in one call
 * (the job must not be touched after a release that may free it). */
static void job_release_n(txn_marker_job_t *job, int32_t n)
{
    assert(n > 0 && job->refs >= n);
    job->refs -= n;
    if (job->refs > 0)
        return;
    txn_coordinator_t *tc = job->tc;
    ev_timer_stop(tc->loop, &job->retry_complete);
    txn_transit_free(&job->complete);
    txn_entry_release(tc, job->entry);
    free(job);
}

static void job_release(txn_marker_job_t *job)
{
    job_release_n(job, 1);
}

static void item_free(txn_marker_item_t *item)
{
    txn_marker_job_t *job = item->job;
    free(item->topic);
    free(item);
    job_release(job);
}

static txn_marker_dest_t *dest_for(txn_coordinator_t *tc, int32_t broker_id)
{
    for (int32_t i = 0; i < tc->ndests; i++)
        if (tc->dests[i]->broker_id == broker_id)
            return tc->dests[i];
    txn_marker_dest_t *d = xcalloc(1, sizeof(*d));
    d->tc = tc;
    d->broker_id = broker_id;
    tc->dests = xrealloc(tc->dests, (size_t)(tc->ndests + 1) * sizeof(*tc->dests));
    tc->dests[tc->ndests++] = d;
    return d;
}

static void retry_later(txn_coordinator_t *tc, txn_marker_item_t *item)
{
    item->next = NULL;
    if (tc->retry_tail)
        tc->retry_tail->next = item;
    else
        tc->retry_head = item;
    tc->retry_tail = item;
    if (!tc->stopped && !ev_is_active(&tc->retry_timer))
        ev_timer_start(tc->loop, &tc->retry_timer);
}

static void job_write_completion(txn_coordinator_t *tc, txn_marker_job_t *job);

/* item's partition has its marker (or never needs one): it leaves the
 * transaction; the last one completes it. Frees item. */
static void item_acknowledged(txn_coordinator_t *tc, txn_marker_item_t *item)
{
    txn_marker_job_t *job = item->job;
    assert(!job->cancelled && job->outstanding > 0);
    txn_tp_set_remove(&job->entry->meta.partitions, item->topic, strlen(item->topic),
                      item->partition);
    job->outstanding--;
    const bool last = job->outstanding == 0;
    if (last)
        job->refs++; /* for the completion write, across item_free */
    item_free(item);
    if (last) {
        job_write_completion(tc, job);
        job_release(job);
    }
}

/* Queues item for its partition's leader, or for a retry while the
 * partition has none; a partition the metadata no longer has is
 * acknowledged (Kafka: its topic was deleted, nothing to mark). */
static void item_route(txn_coordinator_t *tc, txn_marker_item_t *item)
{
    const cluster_metadata_t *md = coordinator_metadata(tc->coord);
    const md_topic_t *t = cluster_metadata_topic(md, item->topic, strlen(item->topic));
    if (t == NULL || item->partition >= t->npartitions) {
        VLOG_INFO(TXN_MODULE,
                  "transactional id %s: %s-%d no longer exists; no marker to write there",
                  item->job->entry->id, item->topic, item->partition);
        item_acknowledged(tc, item);
        return;
    }
    const md_partition_t *p = &t->partitions[item->partition];
    if (p->leader < 0 || cluster_metadata_broker(md, p->leader) == NULL) {
        retry_later(tc, item);
        return;
    }
    txn_marker_dest_t *d = dest_for(tc, p->leader);
    item->next = NULL;
    if (d->tail)
        d->tail->next = item;
    else
        d->head = item;
    d->tail = item;
    send_soon(tc);
}

/* The leader's answer for one item (Kafka's
 * TransactionMarkerRequestCompletionHandler). */
static void item_answered(txn_coordinator_t *tc, txn_marker_item_t *item, int16_t error)
{
    txn_marker_job_t *job = item->job;
    if (job->cancelled || tc->stopped) {
        item_free(item);
        return;
    }
    switch (error) {
    case KAFKA_NONE:
        item_acknowledged(tc, item);
        return;
    case KAFKA_UNSUPPORTED_FOR_MESSAGE_FORMAT:
    case KAFKA_UNSUPPORTED_VERSION:
        /* The producer could not have written there either. */
        item_acknowledged(tc, item);
        return;
    case KAFKA_INVALID_PRODUCER_EPOCH:
        /* The partition already holds a newer epoch of this producer, which
         * ended this transaction there. Kafka stops sending this
         * transaction's markers, leaving it preparing until its partition
         * moves; counting the partition as done completes it instead. */
        VLOG_WARN(TXN_MODULE,
                  "transactional id %s: %s-%d has a newer epoch than %d; no marker needed",
                  job->entry->id, item->topic, item->partition, job->producer_epoch);
        item_acknowledged(tc, item);
        return;
    case KAFKA_TRANSACTION_COORDINATOR_FENCED: {
        /* A newer coordinator of this id wrote there: it owns the
         * transaction now, and this broker is about to lose the partition. */
        VLOG_INFO(TXN_MODULE,
                  "transactional id %s: fenced by a newer coordinator at %s-%d; stopping its "
                  "markers",
                  job->entry->id, item->topic, item->partition);
        txn_entry_t *e = job->entry; /* the job's link keeps both */
        item_free(item);
        txn_markers_cancel(tc, e);
        return;
    }
    default:
        VLOG_DEBUG(TXN_MODULE, "transactional id %s: marker for %s-%d failed: %s; retrying",
                   job->entry->id, item->topic, item->partition, kafka_error_name(error));
        retry_later(tc, item);
    }
}

/* A request's answers (errors NULL: it failed as a whole, every item is
 * retried). */
static void dest_answered(txn_marker_dest_t *d, const int16_t *errors, int32_t n)
{
    txn_coordinator_t *tc = d->tc;
    assert(d->busy);
    txn_marker_item_t *item = d->sent;
    const int32_t nsent = d->nsent;
    d->sent = NULL;
    d->nsent = 0;
    d->busy = false;
    if (errors != NULL && n != nsent) {
        VLOG_WARN(TXN_MODULE, "broker %d answered %d markers of %d; retrying them", d->broker_id, n,
                  nsent);
        errors = NULL;
    }
    for (int32_t i = 0; item; i++) {
        txn_marker_item_t *next = item->next;
        item->next = NULL;
        item_answered(tc, item, errors ? errors[i] : KAFKA_REQUEST_TIMED_OUT);
        item = next;
    }
    if (d->head)
        send_soon(tc);
}

static void dest_local_done(void *arg, const int16_t *errors, int32_t n)
{
    dest_answered(arg, errors, n);
}

static void dest_rpc_done(void *arg, rpc_status_t status, int32_t error_code,
                          const uint8_t *payload, size_t len)
{
    txn_marker_dest_t *d = arg;
    Vltava__WriteTxnMarkersResponse *resp = NULL;
    if (status == RPC_OK && error_code == KAFKA_NONE)
        resp = vltava__write_txn_markers_response__unpack(NULL, len, payload);
    if (resp == NULL) {
        if (status != RPC_SHUTDOWN)
            VLOG_DEBUG(TXN_MODULE, "markers to broker %d: status %d error %d; retrying",
                       d->broker_id, (int)status, error_code);
        dest_answered(d, NULL, 0);
        return;
    }
    int32_t n = resp->n_error_codes <= TXN_MARKER_REQUEST_MAX ? (int32_t)resp->n_error_codes : -1;
    int16_t *errors = xmalloc((size_t)(n > 0 ? n : 1) * sizeof(*errors));
    for (int32_t i = 0; i < n; i++)
        errors[i] = (int16_t)resp->error_codes[i];
    vltava__write_txn_markers_response__free_unpacked(resp, NULL);
    dest_answered(d, errors, n);
    free(errors);
}

/* Frees the queued items of cancelled jobs in *head (a list with tail). */
static void drop_cancelled(txn_marker_item_t **head, txn_marker_item_t **tail)
{
    txn_marker_item_t **pp = head;
    *tail = NULL;
    while (*pp) {
        txn_marker_item_t *item = *pp;
        if (item->job->cancelled) {
            *pp = item->next;
            item_free(item);
        } else {
            *tail = item;
            pp = &item->next;
        }
    }
}

/* Sends d's queued items, up to a batch, unless a request is in flight. */
static void dest_send(txn_coordinator_t *tc, txn_marker_dest_t *d)
{
    if (d->busy || d->head == NULL)
        return;
    /* Items of cancelled jobs go here rather than at the cancel, which
     * would scan every queue once per transaction of an unloaded
     * partition. */
    drop_cancelled(&d->head, &d->tail);
    if (d->head == NULL)
        return;
    txn_marker_item_t *last = d->head;
    int32_t n = 1;
    while (last->next && n < TXN_MARKER_BATCH_MAX) {
        last = last->next;
        n++;
    }
    d->sent = d->head;
    d->head = last->next;
    if (d->head == NULL)
        d->tail = NULL;
    last->next = NULL;
    d->nsent = n;
    d->busy = true;

    txn_marker_spec_t *specs = xcalloc((size_t)n, sizeof(*specs));
    int32_t i = 0;
    for (txn_marker_item_t *item = d->sent; item; item = item->next, i++) {
        const txn_marker_job_t *job = item->job;
        specs[i] = (txn_marker_spec_t){.topic = item->topic,
                                       .partition = item->partition,
                                       .producer_id = job->producer_id,
                                       .producer_epoch = job->producer_epoch,
                                       .commit = job->commit,
                                       .coordinator_epoch = job->coordinator_epoch};
    }
    assert(i == n);
    if (d->broker_id == coordinator_broker_id(tc->coord)) {
        leader_write(tc, specs, n, dest_local_done, d);
        free(specs);
        return;
    }
    Vltava__TxnMarkerEntry *entries = xcalloc((size_t)n, sizeof(*entries));
    Vltava__TxnMarkerEntry **ptrs = xcalloc((size_t)n, sizeof(*ptrs));
    for (i = 0; i < n; i++) {
        vltava__txn_marker_entry__init(&entries[i]);
        entries[i].topic = (char *)specs[i].topic;
        entries[i].partition = specs[i].partition;
        entries[i].producer_id = specs[i].producer_id;
        entries[i].producer_epoch = specs[i].producer_epoch;
        entries[i].committed = specs[i].commit;
        entries[i].coordinator_epoch = specs[i].coordinator_epoch;
        ptrs[i] = &entries[i];
    }
    Vltava__WriteTxnMarkersRequest m = VLTAVA__WRITE_TXN_MARKERS_REQUEST__INIT;
    m.n_markers = (size_t)n;
    m.markers = ptrs;
    size_t len = vltava__write_txn_markers_request__get_packed_size(&m);
    uint8_t *buf = xmalloc(len);
    vltava__write_txn_markers_request__pack(&m, buf);
    free(ptrs);
    free(entries);
    free(specs);
    struct rpc *rpc = coordinator_rpc(tc->coord);
    int rc = rpc ? rpc_send(rpc, d->broker_id, VLTAVA__RPC_TYPE__RPC_WRITE_TXN_MARKERS, buf, len,
                            TXN_MARKER_RPC_TIMEOUT_MS, dest_rpc_done, d)
                 : -1;
    free(buf);
    if (rc != 0) {
        VLOG_DEBUG(TXN_MODULE, "markers to broker %d not sent; retrying", d->broker_id);
        dest_answered(d, NULL, 0);
    }
}

static void send_tick(struct ev_loop *loop, ev_timer *timer, int revents)
{
    txn_coordinator_t *tc = timer->data;
    (void)loop;
    (void)revents;
    if (tc->stopped)
        return;
    /* A local request may answer at once and queue again: each
     * destination sends at most once per tick. */
    for (int32_t i = 0; i < tc->ndests; i++)
        dest_send(tc, tc->dests[i]);
}

static void retry_tick(struct ev_loop *loop, ev_timer *timer, int revents)
{
    txn_coordinator_t *tc = timer->data;
    (void)loop;
    (void)revents;
    txn_marker_item_t *item = tc->retry_head;
    tc->retry_head = tc->retry_tail = NULL;
    while (item) {
        txn_marker_item_t *next = item->next;
        item->next = NULL;
        if (item->job->cancelled || tc->stopped)
            item_free(item);
        else
            item_route(tc, item);
        item = next;
    }
}

static void completion_written(txn_coordinator_t *tc, txn_write_t *w, int16_t error)
{
    txn_marker_job_t *job = w->arg;
    assert(job->refs > 0);
    const bool retry =
        error == KAFKA_COORDINATOR_NOT_AVAILABLE && !job->cancelled && !tc->stopped && !tc->freeing;
    if (retry) {
        /* Kafka's txnLogAppendRetryQueue: the pending completion stays. */
        VLOG_INFO(TXN_MODULE, "transactional id %s: completing failed: %s; retrying",
                  job->entry->id, kafka_error_name(error));
        job->refs++; /* the timer's */
        ev_timer_start(tc->loop, &job->retry_complete);
    } else {
        if (error != KAFKA_NONE)
            VLOG_INFO(TXN_MODULE, "transactional id %s: completing failed: %s", job->entry->id,
                      kafka_error_name(error));
        if (!job->cancelled) {
            job->cancelled = true;
            assert(job->entry->markers == job);
            job->entry->markers = NULL;
            job_release_n(job, 2); /* the entry's link and the write's */
            return;
        }
    }
    job_release(job); /* the write's */
}

/* Every partition is acknowledged: write the completion. */
static void job_write_completion(txn_coordinator_t *tc, txn_marker_job_t *job)
{
    if (job->cancelled || tc->stopped || tc->freeing)
        return;
    txn_write_t *w = xcalloc(1, sizeof(*w));
    w->entry = job->entry;
    w->coordinator_epoch = job->coordinator_epoch;
    txn_transit_t *t = &w->transit;
    *t = job->complete;
    txn_tp_set_copy(&t->partitions, &job->complete.partitions);
    w->keep_pending_on_unavailable = true;
    w->done = completion_written;
    w->arg = job;
    job->refs++;
    txn_store_write(tc, w);
}

static void retry_complete_tick(struct ev_loop *loop, ev_timer *timer, int revents)
{
    txn_marker_job_t *job = timer->data;
    (void)loop;
    (void)revents;
    job_write_completion(job->tc, job);
    job_release(job); /* the timer's */
}

void txn_markers_start(txn_coordinator_t *tc, txn_entry_t *e)
{
    txn_meta_t *m = &e->meta;
    assert(m->state == TXN_PREPARE_COMMIT || m->state == TXN_PREPARE_ABORT);
    assert(m->pending == TXN_NO_PENDING && e->markers == NULL);
    int32_t partition, coordinator_epoch;
    if (txn_store_route(tc, e->id, e->id_len, &partition, &coordinator_epoch) != KAFKA_NONE)
        return; /* the partition's next load starts them */
    txn_marker_job_t *job = xcalloc(1, sizeof(*job));
    job->tc = tc;
    job->entry = e;
    e->refs++;
    job->coordinator_epoch = coordinator_epoch;
    job->producer_id = m->producer_id;
    job->producer_epoch = m->producer_epoch;
    job->commit = m->state == TXN_PREPARE_COMMIT;
    job->refs = 1; /* the entry's link */
    ev_timer_init(&job->retry_complete, retry_complete_tick, TXN_MARKER_RETRY_MS / 1000.0, 0.);
    job->retry_complete.data = job;
    txn_meta_prepare_complete(m, txn_now_ms(), &job->complete);
    e->markers = job;
    VLOG_DEBUG(TXN_MODULE, "transactional id %s: %s markers to %d partitions", e->id,
               job->commit ? "commit" : "abort", m->partitions.count);
    /* Items for a copy of the set: acknowledgements shrink the original. */
    txn_tp_set_t parts;
    txn_tp_set_copy(&parts, &m->partitions);
    job->outstanding = parts.count;
    job->refs++; /* held across routing, which may acknowledge every item */
    for (int32_t i = 0; i < parts.count && !job->cancelled; i++) {
        txn_marker_item_t *item = xcalloc(1, sizeof(*item));
        item->job = job;
        item->topic = xstrdup(parts.items[i].topic);
        item->partition = parts.items[i].partition;
        job->refs++;
        item_route(tc, item);
    }
    const int32_t nparts = parts.count;
    txn_tp_set_free(&parts);
    if (nparts == 0)
        job_write_completion(tc, job); /* nothing to mark (Kafka writes it at once too) */
    job_release(job);
}

void txn_markers_cancel(txn_coordinator_t *tc, txn_entry_t *e)
{
    txn_marker_job_t *job = e->markers;
    if (job == NULL)
        return;
    e->markers = NULL;
    assert(!job->cancelled);
    job->cancelled = true;
    /* Its items are freed where they are next taken: by their answers (in
     * flight), the next send of their destination, or the retry tick. */
    int32_t refs = 1; /* the entry's link */
    if (ev_is_active(&job->retry_complete)) {
        ev_timer_stop(tc->loop, &job->retry_complete);
        refs++; /* the timer's */
    }
    job_release_n(job, refs);
    send_soon(tc); /* the next tick frees the queued ones */
}

/* ---- leader side ---- */

static size_t waiter_bucket(const char *topic, int32_t partition)
{
    uint64_t h = fnv1a(fnv1a(FNV1A_BASIS, topic, strlen(topic)), &partition, sizeof(partition));
    return (size_t)(h % TXN_WAITER_BUCKETS);
}

static void waiter_unpark(txn_coordinator_t *tc, txn_leader_waiter_t *w)
{
    assert(w->parked);
    txn_leader_waiter_t **pp = &tc->waiters[waiter_bucket(w->topic, w->partition)];
    while (*pp != w) {
        assert(*pp != NULL);
        pp = &(*pp)->next;
    }
    *pp = w->next;
    w->next = NULL;
    w->parked = false;
}

static void batch_finish(txn_leader_batch_t *b)
{
    txn_coordinator_t *tc = b->tc;
    assert(b->left == 0);
    ev_timer_stop(tc->loop, &b->timer);
    if (b->linked) {
        if (b->prev)
            b->prev->next = b->next;
        else
            tc->batches = b->next;
        if (b->next)
            b->next->prev = b->prev;
    }
    b->done(b->arg, b->errors, b->n);
    for (int32_t i = 0; i < b->n; i++)
        free(b->waiters[i].topic);
    free(b->waiters);
    free(b->errors);
    free(b);
}

/* Answers one marker of its batch (w is not parked). */
static void waiter_resolve(txn_coordinator_t *tc, txn_leader_waiter_t *w, int16_t error)
{
    txn_leader_batch_t *b = w->batch;
    assert(!w->parked && b->left > 0);
    b->errors[w->index] = error;
    if (error == KAFKA_NONE && tc->groups != NULL && strcmp(w->topic, GROUP_OFFSETS_TOPIC) == 0) {
        /* Replicated: the group's transactional offsets become committed
         * or are dropped (Kafka's onTransactionCompleted). */
        group_coordinator_txn_completed(tc->groups, w->partition, w->producer_id, w->commit,
                                        w->marker_offset);
    }
    if (--b->left == 0)
        batch_finish(b);
}

/* Whether a written marker is replicated (NONE), lost with the leadership
 * (NOT_LEADER_OR_FOLLOWER), or still waiting (-2). */
#define MARKER_WAITING (-2)
static int marker_status(txn_coordinator_t *tc, const txn_leader_waiter_t *w)
{
    const replica_partition_t *rp =
        replica_manager_get(tc->replicas, w->topic, strlen(w->topic), w->partition);
    if (rp == NULL || !rp->is_leader || rp->leader_epoch != w->leader_epoch)
        return KAFKA_NOT_LEADER_OR_FOLLOWER;
    return partition_log_high_watermark(rp->log) > w->marker_offset ? KAFKA_NONE : MARKER_WAITING;
}

static void batch_timeout(struct ev_loop *loop, ev_timer *timer, int revents)
{
    txn_leader_batch_t *b = timer->data;
    txn_coordinator_t *tc = b->tc;
    (void)loop;
    (void)revents;
    /* Detach first: answering may finish the batch. */
    txn_leader_waiter_t *list = NULL;
    for (int32_t i = 0; i < b->n; i++) {
        txn_leader_waiter_t *w = &b->waiters[i];
        if (w->parked) {
            waiter_unpark(tc, w);
            w->next = list;
            list = w;
        }
    }
    while (list) {
        txn_leader_waiter_t *next = list->next;
        list->next = NULL;
        waiter_resolve(tc, list, KAFKA_REQUEST_TIMED_OUT);
        list = next;
    }
}

void txn_markers_partition_event(txn_coordinator_t *tc, const char *topic, int32_t partition)
{
    size_t at = waiter_bucket(topic, partition);
    /* Detach the answered ones first: answering runs callbacks that may
     * append, which sends more events into this table. */
    txn_leader_waiter_t *answered = NULL;
    txn_leader_waiter_t **pp = &tc->waiters[at];
    while (*pp) {
        txn_leader_waiter_t *w = *pp;
        int status = w->partition == partition && strcmp(w->topic, topic) == 0
                         ? marker_status(tc, w)
                         : MARKER_WAITING;
        if (status == MARKER_WAITING) {
            pp = &w->next;
            continue;
        }
        *pp = w->next;
        w->parked = false;
        w->batch->errors[w->index] = (int16_t)status;
        w->next = answered;
        answered = w;
    }
    while (answered) {
        txn_leader_waiter_t *next = answered->next;
        answered->next = NULL;
        waiter_resolve(tc, answered, answered->batch->errors[answered->index]);
        answered = next;
    }
}

/* Appends the markers and answers done once each is replicated or failed
 * (during the call when none has to wait). specs are views, valid during
 * the call only. */
static void leader_write(txn_coordinator_t *tc, const txn_marker_spec_t *specs, int32_t n,
                         leader_done_fn done, void *arg)
{
    assert(n >= 1 && n <= TXN_MARKER_REQUEST_MAX);
    txn_leader_batch_t *b = xcalloc(1, sizeof(*b));
    b->tc = tc;
    b->n = n;
    b->left = n;
    b->errors = xcalloc((size_t)n, sizeof(*b->errors));
    b->waiters = xcalloc((size_t)n, sizeof(*b->waiters));
    b->done = done;
    b->arg = arg;
    ev_timer_init(&b->timer, batch_timeout, TXN_MARKER_WRITE_TIMEOUT_MS / 1000.0, 0.);
    b->timer.data = b;
    /* Linked while writing: an append's events may answer earlier markers,
     * and the batch must not finish before its last marker is written. */
    b->next = tc->batches;
    if (tc->batches)
        tc->batches->prev = b;
    tc->batches = b;
    b->linked = true;
    ev_timer_start(tc->loop, &b->timer);
    b->left++; /* held until every marker is written */
    for (int32_t i = 0; i < n; i++) {
        const txn_marker_spec_t *s = &specs[i];
        txn_leader_waiter_t *w = &b->waiters[i];
        *w = (txn_leader_waiter_t){.batch = b,
                                   .index = i,
                                   .topic = xstrdup(s->topic),
                                   .partition = s->partition,
                                   .producer_id = s->producer_id,
                                   .commit = s->commit};
        const replica_partition_t *rp =
            replica_manager_get(tc->replicas, s->topic, strlen(s->topic), s->partition);
        int16_t error = KAFKA_NONE;
        if (rp == NULL)
            error = KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
        else if (!rp->is_leader)
            error = KAFKA_NOT_LEADER_OR_FOLLOWER;
        else if (s->producer_id < 0 || s->producer_epoch < 0)
            error = KAFKA_INVALID_REQUEST;
        if (error == KAFKA_NONE) {
            w->leader_epoch = rp->leader_epoch;
            error = replica_manager_write_txn_marker(tc->replicas, rp, s->producer_id,
                                                     s->producer_epoch, s->commit,
                                                     s->coordinator_epoch, &w->marker_offset);
        }
        if (error == KAFKA_NONE) {
            int status = marker_status(tc, w);
            if (status == MARKER_WAITING) {
                size_t at = waiter_bucket(w->topic, w->partition);
                w->next = tc->waiters[at];
                tc->waiters[at] = w;
                w->parked = true;
                continue;
            }
            error = (int16_t)status;
        } else {
            VLOG_DEBUG(TXN_MODULE, "marker for producer %" PRId64 " on %s-%d refused: %s",
                       s->producer_id, s->topic, s->partition, kafka_error_name(error));
        }
        waiter_resolve(tc, w, error);
    }
    assert(b->left >= 1);
    if (--b->left == 0)
        batch_finish(b);
}

/* ---- leader side: the RPC ---- */

static void rpc_answer(void *arg, const int16_t *errors, int32_t n)
{
    rpc_request_t *req = arg;
    Vltava__WriteTxnMarkersResponse m = VLTAVA__WRITE_TXN_MARKERS_RESPONSE__INIT;
    int32_t *codes = xcalloc((size_t)n, sizeof(*codes));
    for (int32_t i = 0; i < n; i++)
        codes[i] = errors[i];
    m.n_error_codes = (size_t)n;
    m.error_codes = codes;
    size_t len = vltava__write_txn_markers_response__get_packed_size(&m);
    uint8_t *buf = xmalloc(len ? len : 1);
    vltava__write_txn_markers_response__pack(&m, buf);
    rpc_respond(req, KAFKA_NONE, buf, len);
    free(buf);
    free(codes);
}

static void on_write_txn_markers(void *arg, rpc_request_t *req, int32_t sender_id,
                                 const uint8_t *payload, size_t len)
{
    txn_coordinator_t *tc = arg;
    Vltava__WriteTxnMarkersRequest *m =
        vltava__write_txn_markers_request__unpack(NULL, len, payload);
    if (m == NULL || m->n_markers == 0 || m->n_markers > TXN_MARKER_REQUEST_MAX || tc->stopped) {
        VLOG_WARN(TXN_MODULE, "refusing a WriteTxnMarkers request from broker %d%s", sender_id,
                  m == NULL ? " (undecodable)" : "");
        if (m)
            vltava__write_txn_markers_request__free_unpacked(m, NULL);
        rpc_respond(req, tc->stopped ? KAFKA_NOT_LEADER_OR_FOLLOWER : KAFKA_INVALID_REQUEST, NULL,
                    0);
        return;
    }
    const int32_t n = (int32_t)m->n_markers;
    txn_marker_spec_t *specs = xcalloc((size_t)n, sizeof(*specs));
    for (int32_t i = 0; i < n; i++) {
        const Vltava__TxnMarkerEntry *e = m->markers[i];
        /* An epoch outside int16 is no producer's: refused per marker. */
        const bool epoch_ok = e->producer_epoch >= 0 && e->producer_epoch <= INT16_MAX;
        specs[i] = (txn_marker_spec_t){.topic = e->topic ? e->topic : "",
                                       .partition = e->partition,
                                       .producer_id = e->producer_id,
                                       .producer_epoch = epoch_ok ? (int16_t)e->producer_epoch : -1,
                                       .commit = e->committed,
                                       .coordinator_epoch = e->coordinator_epoch};
    }
    leader_write(tc, specs, n, rpc_answer, req);
    free(specs);
    vltava__write_txn_markers_request__free_unpacked(m, NULL);
}

/* ---- lifecycle ---- */

void txn_markers_init(txn_coordinator_t *tc)
{
    tc->waiters = xcalloc(TXN_WAITER_BUCKETS, sizeof(*tc->waiters));
    ev_timer_init(&tc->send_timer, send_tick, 0., 0.);
    tc->send_timer.data = tc;
    ev_timer_init(&tc->retry_timer, retry_tick, TXN_MARKER_RETRY_MS / 1000.0, 0.);
    tc->retry_timer.data = tc;
    struct rpc *rpc = coordinator_rpc(tc->coord);
    if (rpc)
        rpc_set_handler(rpc, VLTAVA__RPC_TYPE__RPC_WRITE_TXN_MARKERS, on_write_txn_markers, tc);
}

void txn_markers_stop(txn_coordinator_t *tc)
{
    if (tc->stopped)
        return;
    tc->stopped = true;
    ev_timer_stop(tc->loop, &tc->send_timer);
    ev_timer_stop(tc->loop, &tc->retry_timer);
    /* Parked leader-side writes answer now: their RPC requests must not
     * outlive the channel. Outside leader_write every unanswered marker is
     * parked, so answering a batch's parked ones finishes it. */
    while (tc->batches) {
        txn_leader_batch_t *b = tc->batches;
        txn_leader_waiter_t *list = NULL;
        for (int32_t i = 0; i < b->n; i++) {
            txn_leader_waiter_t *w = &b->waiters[i];
            if (w->parked) {
                waiter_unpark(tc, w);
                w->next = list;
                list = w;
            }
        }
        assert(list != NULL);
        while (list) {
            txn_leader_waiter_t *next = list->next;
            list->next = NULL;
            waiter_resolve(tc, list, KAFKA_REQUEST_TIMED_OUT);
            list = next;
        }
        assert(tc->batches != b);
    }
}

static void free_list(txn_marker_item_t *item)
{
    while (item) {
        txn_marker_item_t *next = item->next;
        item_free(item);
        item = next;
    }
}

void txn_markers_free(txn_coordinator_t *tc)
{
    assert(tc->stopped && tc->batches == NULL);
    for (int32_t i = 0; i < tc->ndests; i++) {
        txn_marker_dest_t *d = tc->dests[i];
        /* An RPC in flight ended with the channel (RPC_SHUTDOWN); a local
         * one with txn_markers_stop. */
        assert(!d->busy);
        free_list(d->head);
        free(d);
    }
    free(tc->dests);
    tc->dests = NULL;
    tc->ndests = 0;
    free_list(tc->retry_head);
    tc->retry_head = tc->retry_tail = NULL;
    free(tc->waiters);
    tc->waiters = NULL;
}
