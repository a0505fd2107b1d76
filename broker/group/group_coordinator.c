/* The group protocol: Kafka's classic group state machine (Empty,
 * PreparingRebalance, CompletingRebalance, Stable, Dead), the member
 * lifecycle (KIP-394 member ids, KIP-345 static members), committed
 * offsets and their expiry (KIP-211), and what admin clients list,
 * describe and delete. Durable state goes through the store
 * (group_store.c); see group_coordinator.h for the contract with broker/api.
 *
 * Kafka's rules are followed where a client can tell the difference: the
 * error codes per state, the initial rebalance delay, who leads, which
 * protocol wins, and when a rejoin rebalances. */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#include "fnv1a.h"
#include "coordinator.h"
#include "group_internal.h"
#include "group_records.h"
#include "kafka_errors.h"
#include "record_batch.h"
#include "replica_manager.h"
#include "vlog.h"
#include "wall_clock.h"
#include "xalloc.h"

/* Protocols one member may offer; real consumers offer one to three. */
#define GROUP_MAX_PROTOCOLS 64
/* Dynamic members told MEMBER_ID_REQUIRED and not yet back, per group: a
 * client that never rejoins cannot grow this past the bound. */
#define GROUP_MAX_PENDING_MEMBERS 1000

static const char *const group_state_names[] = {
    [GROUP_EMPTY] = "Empty",
    [GROUP_PREPARING_REBALANCE] = "PreparingRebalance",
    [GROUP_COMPLETING_REBALANCE] = "CompletingRebalance",
    [GROUP_STABLE] = "Stable",
    [GROUP_DEAD] = "Dead",
};

int64_t group_now_ms(void)
{
    return wall_clock_ms();
}

/* ---- Kafka's partition rule ---- */

/* Decodes one UTF-8 sequence as Java does (an invalid byte is U+FFFD);
 * returns the bytes used. */
static size_t utf8_next(const uint8_t *p, size_t len, uint32_t *cp)
{
    uint8_t c = p[0];
    size_t n;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if ((c & 0xe0) == 0xc0) {
        n = 2, v = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        n = 3, v = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        n = 4, v = c & 0x07, min = 0x10000;
    } else {
        *cp = 0xfffd;
        return 1;
    }
    if (n > len) {
        *cp = 0xfffd;
        return 1;
    }
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            *cp = 0xfffd;
            return 1;
        }
        v = (v << 6) | (p[i] & 0x3f);
    }
    *cp = (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) ? 0xfffd : v;
    return n;
}

int32_t group_partition_for(const uint8_t *key, size_t len, int32_t npartitions)
{
    assert(npartitions > 0);
    assert(key != NULL || len == 0);
    uint32_t h = 0; /* Java's int arithmetic, wrapping */
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        i += utf8_next(key + i, len - i, &cp);
        if (cp >= 0x10000) { /* a surrogate pair: two UTF-16 code units */
            cp -= 0x10000;
            h = 31 * h + (0xd800 + (cp >> 10));
            h = 31 * h + (0xdc00 + (cp & 0x3ff));
        } else {
            h = 31 * h + cp;
        }
    }
    int32_t s = (int32_t)h;
    int32_t a = s == INT32_MIN ? 0 : (s < 0 ? -s : s); /* Kafka's Utils.abs */
    return a % npartitions;
}

/* ---- small helpers ---- */

static char *slice_dup(kslice_t s)
{
    return s.ptr ? kslice_strdup(s) : NULL;
}

/* A view of a C string; NULL is a null (length -1). */
static kslice_t cslice(const char *s)
{
    return (kslice_t){(const uint8_t *)s, s ? (int32_t)strlen(s) : -1};
}

static bool slice_is(kslice_t s, const char *cstr)
{
    return cstr != NULL && s.ptr != NULL && kslice_eq(s, cstr);
}

static uint8_t *bytes_dup(kslice_t s)
{
    if (s.ptr == NULL || s.len <= 0)
        return NULL;
    uint8_t *p = xmalloc((size_t)s.len);
    memcpy(p, s.ptr, (size_t)s.len);
    return p;
}

static void set_state(group_t *g, group_state_t state)
{
    assert(state >= GROUP_EMPTY && state <= GROUP_DEAD);
    g->state = state;
    g->state_ms = group_now_ms();
}

static uint64_t group_id_hash(const char *id, size_t len)
{
    return fnv1a(FNV1A_BASIS, id, len);
}

static uint64_t offset_hash(const char *topic, size_t len, int32_t partition)
{
    uint64_t h = fnv1a(FNV1A_BASIS, topic, len);
    return fnv1a(h, &partition, sizeof(partition));
}

/* ---- groups and offsets ---- */

group_t *group_find(group_coordinator_t *gc, const char *id, size_t len)
{
    uint64_t h = group_id_hash(id, len);
    for (hnode_t *n = htable_chain(&gc->groups, h); n; n = n->next) {
        group_t *g = (group_t *)n;
        if (n->hash == h && strlen(g->id) == len && memcmp(g->id, id, len) == 0)
            return g;
    }
    return NULL;
}

static void rebalance_timer_fired(struct ev_loop *loop, ev_timer *timer, int revents);
static void pending_timer_fired(struct ev_loop *loop, ev_timer *timer, int revents);

group_t *group_create(group_coordinator_t *gc, const char *id, size_t len, int32_t partition)
{
    assert(group_find(gc, id, len) == NULL);
    group_t *g = xcalloc(1, sizeof(*g));
    g->gc = gc;
    g->id = xmalloc(len + 1);
    memcpy(g->id, id, len);
    g->id[len] = '\0';
    g->partition = partition;
    set_state(g, GROUP_EMPTY);
    ev_timer_init(&g->rebalance_timer, rebalance_timer_fired, 0., 0.);
    g->rebalance_timer.data = g;
    ev_timer_init(&g->pending_timer, pending_timer_fired, 0., 0.);
    g->pending_timer.data = g;
    g->node.hash = group_id_hash(id, len);
    htable_insert(&gc->groups, &g->node);
    return g;
}

/* ---- offset tables (a group's committed offsets, a producer's pending ones) ---- */

static committed_offset_t *offsets_find(const htable_t *t, const char *topic, size_t topic_len,
                                        int32_t partition)
{
    uint64_t h = offset_hash(topic, topic_len, partition);
    for (hnode_t *n = htable_chain(t, h); n; n = n->next) {
        committed_offset_t *o = (committed_offset_t *)n;
        if (n->hash == h && o->partition == partition && strlen(o->topic) == topic_len &&
            memcmp(o->topic, topic, topic_len) == 0)
            return o;
    }
    return NULL;
}

/* The entry for (topic, partition), new (its fields zero) when t had none. */
static committed_offset_t *offsets_put(htable_t *t, const char *topic, size_t topic_len,
                                       int32_t partition)
{
    assert(topic != NULL || topic_len == 0);
    committed_offset_t *o = offsets_find(t, topic, topic_len, partition);
    if (o != NULL)
        return o;
    o = xcalloc(1, sizeof(*o));
    o->topic = xmalloc(topic_len + 1);
    if (topic_len)
        memcpy(o->topic, topic, topic_len);
    o->topic[topic_len] = '\0';
    o->partition = partition;
    o->node.hash = offset_hash(topic, topic_len, partition);
    htable_insert(t, &o->node);
    return o;
}

static void offset_fill(committed_offset_t *o, int64_t offset, int32_t leader_epoch,
                        const char *metadata, size_t metadata_len, int64_t commit_ms,
                        int64_t expire_ms, int64_t log_offset)
{
    assert(metadata != NULL || metadata_len == 0);
    free(o->metadata);
    o->metadata = xmalloc(metadata_len + 1);
    if (metadata_len)
        memcpy(o->metadata, metadata, metadata_len);
    o->metadata[metadata_len] = '\0';
    o->offset = offset;
    o->leader_epoch = leader_epoch;
    o->commit_ms = commit_ms;
    o->expire_ms = expire_ms;
    o->log_offset = log_offset;
}

static void offset_free(committed_offset_t *o)
{
    free(o->topic);
    free(o->metadata);
    free(o);
}

static void offsets_remove(htable_t *t, committed_offset_t *o)
{
    htable_remove(t, &o->node);
    offset_free(o);
}

static void offsets_free(htable_t *t)
{
    for (size_t b = 0; b < t->nbuckets; b++) {
        hnode_t *n = t->buckets[b];
        while (n) {
            hnode_t *next = n->next;
            offset_free((committed_offset_t *)n);
            n = next;
        }
    }
    htable_free(t);
}

committed_offset_t *group_offset_find(group_t *g, const char *topic, size_t topic_len,
                                      int32_t partition)
{
    return offsets_find(&g->offsets, topic, topic_len, partition);
}

bool group_offset_set(group_t *g, const char *topic, size_t topic_len, int32_t partition,
                      int64_t offset, int32_t leader_epoch, const char *metadata,
                      size_t metadata_len, int64_t commit_ms, int64_t expire_ms, int64_t log_offset)
{
    assert(!g->removed);
    assert(log_offset >= 0);
    const committed_offset_t *old = offsets_find(&g->offsets, topic, topic_len, partition);
    if (old != NULL && old->log_offset > log_offset)
        return false;
    committed_offset_t *o = offsets_put(&g->offsets, topic, topic_len, partition);
    offset_fill(o, offset, leader_epoch, metadata, metadata_len, commit_ms, expire_ms, log_offset);
    return true;
}

void group_offset_remove(group_t *g, committed_offset_t *o)
{
    offsets_remove(&g->offsets, o);
}

/* ---- pending transactional offsets ---- */

static uint64_t producer_hash(int64_t producer_id)
{
    return fnv1a(FNV1A_BASIS, &producer_id, sizeof(producer_id));
}

/* The group's partition, which holds its txns' index. */
static offsets_partition_t *group_part(group_coordinator_t *gc, const group_t *g)
{
    assert(g->partition >= 0);
    return group_store_partition(gc, g->partition);
}

group_txn_t *group_txn_get(group_coordinator_t *gc, group_t *g, int64_t producer_id, bool create)
{
    assert(!g->removed);
    assert(producer_id >= 0);
    for (group_txn_t *t = g->txns; t; t = t->next)
        if (t->producer_id == producer_id)
            return t;
    if (!create)
        return NULL;
    offsets_partition_t *p = group_part(gc, g);
    assert(p != NULL && "a group lives in a partition this broker loaded");
    group_txn_t *t = xcalloc(1, sizeof(*t));
    t->producer_id = producer_id;
    t->group = g;
    t->node.hash = producer_hash(producer_id);
    htable_insert(&p->txns, &t->node);
    t->next = g->txns;
    g->txns = t;
    return t;
}

void group_txn_offset_set(group_txn_t *txn, const char *topic, size_t topic_len, int32_t partition,
                          int64_t offset, int32_t leader_epoch, const char *metadata,
                          size_t metadata_len, int64_t commit_ms, int64_t log_offset)
{
    assert(log_offset >= 0);
    assert(!txn->group->removed);
    size_t before = txn->offsets.count;
    committed_offset_t *o = offsets_put(&txn->offsets, topic, topic_len, partition);
    txn->group->txn_offsets += (int32_t)(txn->offsets.count - before);
    /* Kafka writes no expire timestamp for transactional commits. */
    offset_fill(o, offset, leader_epoch, metadata, metadata_len, commit_ms, -1, log_offset);
}

void group_txn_offset_drop(group_txn_t *txn, const char *topic, size_t topic_len, int32_t partition)
{
    committed_offset_t *o = offsets_find(&txn->offsets, topic, topic_len, partition);
    if (o == NULL)
        return;
    assert(txn->group->txn_offsets > 0);
    offsets_remove(&txn->offsets, o);
    txn->group->txn_offsets--;
}

void group_txn_free(group_coordinator_t *gc, group_txn_t *txn)
{
    group_t *g = txn->group;
    group_txn_t **pp = &g->txns;
    while (*pp != txn) {
        assert(*pp != NULL && "txn not in its group");
        pp = &(*pp)->next;
    }
    *pp = txn->next;
    offsets_partition_t *p = group_part(gc, g);
    assert(p != NULL);
    htable_remove(&p->txns, &txn->node);
    assert(g->txn_offsets >= (int32_t)txn->offsets.count);
    g->txn_offsets -= (int32_t)txn->offsets.count;
    offsets_free(&txn->offsets);
    free(txn);
}

/* Does any producer have a pending offset for (topic, partition) in g? */
static bool txn_pending_for(const group_t *g, const char *topic, size_t topic_len,
                            int32_t partition)
{
    for (const group_txn_t *t = g->txns; t; t = t->next)
        if (offsets_find(&t->offsets, topic, topic_len, partition))
            return true;
    return false;
}

/* Kafka's removeOffsets: a tombstone for (topic, partition) drops the
 * pending transactional offsets for it too. */
static void txn_drop_partition(group_coordinator_t *gc, group_t *g, const char *topic,
                               size_t topic_len, int32_t partition)
{
    group_txn_t *t = g->txns;
    while (t) {
        group_txn_t *next = t->next;
        group_txn_offset_drop(t, topic, topic_len, partition);
        if (t->offsets.count == 0)
            group_txn_free(gc, t);
        t = next;
    }
}

/* Commits txn's offsets into its group (each unless a commit appended later
 * is there) or drops them, then frees txn. */
static void txn_complete(group_coordinator_t *gc, group_txn_t *txn, bool commit)
{
    group_t *g = txn->group;
    assert(!g->removed);
    int32_t applied = 0;
    for (size_t b = 0; commit && b < txn->offsets.nbuckets; b++)
        for (hnode_t *n = txn->offsets.buckets[b]; n; n = n->next) {
            const committed_offset_t *o = (const committed_offset_t *)n;
            applied += group_offset_set(g, o->topic, strlen(o->topic), o->partition, o->offset,
                                        o->leader_epoch, o->metadata, strlen(o->metadata),
                                        o->commit_ms, o->expire_ms, o->log_offset);
        }
    VLOG_DEBUG(GROUP_MODULE, "group %s: producer %" PRId64 "'s transaction %s: %d offsets applied",
               g->id, txn->producer_id, commit ? "committed" : "aborted", applied);
    group_txn_free(gc, txn);
}

static void txn_writes_end(offsets_partition_t *p, int64_t producer_id, int64_t marker_offset);

void group_txns_complete(group_coordinator_t *gc, offsets_partition_t *p, int64_t producer_id,
                         bool commit, int64_t marker_offset)
{
    assert(p->log.state != COORD_LOG_NOT_LEADER);
    assert(marker_offset >= 0);
    txn_writes_end(p, producer_id, marker_offset);
    uint64_t h = producer_hash(producer_id);
    hnode_t *n = htable_chain(&p->txns, h);
    while (n) {
        hnode_t *next = n->next;
        group_txn_t *t = (group_txn_t *)n;
        if (n->hash == h && t->producer_id == producer_id) {
            txn_complete(gc, t, commit);
            /* The table may not shrink, but the chain changed: start over
             * (one producer has at most one entry per group). */
            next = htable_chain(&p->txns, h);
        }
        n = next;
    }
}

void group_coordinator_txn_completed(group_coordinator_t *gc, int32_t offsets_partition,
                                     int64_t producer_id, bool commit, int64_t marker_offset)
{
    assert(offsets_partition >= 0);
    offsets_partition_t *p = group_store_partition(gc, offsets_partition);
    if (gc->stopping || p == NULL)
        return;
    /* Loading: the load replays the marker itself (it reads up to the log
     * end, which the marker is below). Not the leader: nothing is pending
     * here. */
    if (p->log.state != COORD_LOG_ACTIVE)
        return;
    group_txns_complete(gc, p, producer_id, commit, marker_offset);
}

static void member_free_protocols(group_member_t *m)
{
    for (int32_t i = 0; i < m->nprotocols; i++) {
        free(m->protocols[i].name);
        free(m->protocols[i].metadata);
    }
    free(m->protocols);
    m->protocols = NULL;
    m->nprotocols = 0;
}

static const member_protocol_t *member_protocol(const group_member_t *m, const char *name)
{
    for (int32_t i = 0; name && i < m->nprotocols; i++)
        if (strcmp(m->protocols[i].name, name) == 0)
            return &m->protocols[i];
    return NULL;
}

static bool is_leader(const group_t *g, const group_member_t *m)
{
    return g->leader_id != NULL && strcmp(g->leader_id, m->member_id) == 0;
}

/* Does m offer a protocol of this (request's) name? */
static bool member_offers(const group_member_t *m, kslice_t name)
{
    for (int32_t i = 0; i < m->nprotocols; i++)
        if (slice_is(name, m->protocols[i].name))
            return true;
    return false;
}

static void join_answer_error(group_join_done_fn done, void *arg, int16_t error,
                              const char *member_id)
{
    group_join_result_t res = {
        .error = error,
        .generation_id = -1,
        .leader = "",
        .member_id = member_id ? member_id : "",
    };
    done(arg, &res);
}

/* A refused JoinGroup names the member id it was sent with, as Kafka's
 * answers do (the request's id is not NUL-terminated). */
static void join_refuse(group_join_done_fn done, void *arg, int16_t error, kslice_t member_id)
{
    char *id = member_id.ptr ? kslice_strdup(member_id) : NULL;
    join_answer_error(done, arg, error, id);
    free(id);
}

static void sync_answer_error(group_sync_done_fn done, void *arg, int16_t error)
{
    group_sync_result_t res = {.error = error};
    done(arg, &res);
}

/* Answers a member's waiting JoinGroup / SyncGroup with `error`. */
static void member_fail_pending(group_member_t *m, int16_t error)
{
    if (m->join_done) {
        group_join_done_fn done = m->join_done;
        m->join_done = NULL;
        join_answer_error(done, m->join_arg, error, m->member_id);
    }
    if (m->sync_done) {
        group_sync_done_fn done = m->sync_done;
        m->sync_done = NULL;
        sync_answer_error(done, m->sync_arg, error);
    }
}

static void member_free(group_coordinator_t *gc, group_member_t *m)
{
    assert(m->join_done == NULL && m->sync_done == NULL);
    ev_timer_stop(gc->loop, &m->session_timer);
    member_free_protocols(m);
    free(m->member_id);
    free(m->instance_id);
    free(m->client_id);
    free(m->client_host);
    free(m->assignment);
    free(m);
}

static void group_clear_members(group_coordinator_t *gc, group_t *g, int16_t error)
{
    for (int32_t i = 0; i < g->nmembers; i++) {
        member_fail_pending(g->members[i], error);
        member_free(gc, g->members[i]);
    }
    free(g->members);
    g->members = NULL;
    g->nmembers = 0;
    for (int32_t i = 0; i < g->npending; i++)
        free(g->pending[i].member_id);
    free(g->pending);
    g->pending = NULL;
    g->npending = 0;
}

static void group_free(group_t *g)
{
    assert(g->removed && g->refs == 0);
    assert(g->nmembers == 0 && g->txns == NULL);
    offsets_free(&g->offsets);
    free(g->id);
    free(g->protocol_type);
    free(g->protocol);
    free(g->leader_id);
    free(g);
}

void group_remove(group_coordinator_t *gc, group_t *g, int16_t error)
{
    assert(!g->removed);
    assert(g->refs >= 0);
    ev_timer_stop(gc->loop, &g->rebalance_timer);
    ev_timer_stop(gc->loop, &g->pending_timer);
    htable_remove(&gc->groups, &g->node);
    g->removed = true;
    set_state(g, GROUP_DEAD);
    group_clear_members(gc, g, error);
    /* Kafka drops a deleted or unloaded group's pending transactional
     * offsets with it; a reload finds them again in the log. */
    while (g->txns)
        group_txn_free(gc, g->txns);
    if (g->refs == 0)
        group_free(g);
}

void group_release(group_t *g)
{
    assert(g->refs > 0);
    if (--g->refs == 0 && g->removed)
        group_free(g);
}

static group_member_t *group_find_member(const group_t *g, kslice_t member_id)
{
    for (int32_t i = 0; i < g->nmembers; i++)
        if (slice_is(member_id, g->members[i]->member_id))
            return g->members[i];
    return NULL;
}

static group_member_t *group_static_member(const group_t *g, kslice_t instance_id)
{
    for (int32_t i = 0; instance_id.ptr && i < g->nmembers; i++)
        if (slice_is(instance_id, g->members[i]->instance_id))
            return g->members[i];
    return NULL;
}

/* KIP-345: a static member's id must be the one its instance id maps to. */
static bool static_member_fenced(const group_t *g, kslice_t member_id, kslice_t instance_id)
{
    if (instance_id.ptr == NULL)
        return false;
    const group_member_t *m = group_static_member(g, instance_id);
    return m != NULL && !slice_is(member_id, m->member_id);
}

/* ---- session timers ---- */

static void member_remove(group_coordinator_t *gc, group_t *g, group_member_t *m, const char *why);

static void session_expired(struct ev_loop *loop, ev_timer *timer, int revents)
{
    group_member_t *m = timer->data;
    (void)loop;
    (void)revents;
    /* A member waiting in a JoinGroup or SyncGroup is alive: the join
     * phase's own deadline removes it if the rebalance never completes. */
    if (m->join_done || m->sync_done) {
        ev_timer_set(timer, m->session_timeout_ms / 1000.0, 0.);
        ev_timer_start(m->group->gc->loop, timer);
        return;
    }
    member_remove(m->group->gc, m->group, m, "session timeout");
}

static void member_heartbeat(group_coordinator_t *gc, group_member_t *m)
{
    ev_timer_stop(gc->loop, &m->session_timer);
    ev_timer_set(&m->session_timer, m->session_timeout_ms / 1000.0, 0.);
    ev_timer_start(gc->loop, &m->session_timer);
}

/* ---- writes of group metadata ---- */

static void write_members(const group_t *g, group_metadata_value_t *v)
{
    v->protocol_type = cslice(g->protocol_type ? g->protocol_type : "");
    v->generation = g->generation;
    v->protocol = cslice(g->protocol);
    v->leader = cslice(g->leader_id);
    v->current_state_timestamp = g->state_ms;
    v->nmembers = g->nmembers;
    v->members = g->nmembers ? xcalloc((size_t)g->nmembers, sizeof(*v->members)) : NULL;
    for (int32_t i = 0; i < g->nmembers; i++) {
        const group_member_t *m = g->members[i];
        group_member_record_t *r = &v->members[i];
        const member_protocol_t *p = member_protocol(m, g->protocol);
        r->member_id = cslice(m->member_id);
        r->group_instance_id = cslice(m->instance_id);
        r->client_id = cslice(m->client_id);
        r->client_host = cslice(m->client_host);
        r->rebalance_timeout_ms = m->rebalance_timeout_ms;
        r->session_timeout_ms = m->session_timeout_ms;
        r->subscription = (kslice_t){p && p->metadata ? p->metadata : (const uint8_t *)"",
                                     p ? p->metadata_len : 0};
        r->assignment =
            (kslice_t){m->assignment ? m->assignment : (const uint8_t *)"", m->assignment_len};
    }
}

/* Appends g's GroupMetadata record (tombstones go with write_tombstones) and
 * queues w. */
static void store_group(group_coordinator_t *gc, group_t *g, group_write_t *w)
{
    kwriter_t key, value;
    kw_init(&key, 64);
    kw_init(&value, 256);
    kslice_t id = cslice(g->id);
    group_record_write_metadata_key(&key, id);
    group_metadata_value_t v;
    memset(&v, 0, sizeof(v));
    write_members(g, &v);
    group_record_write_metadata_value(&value, &v);
    free(v.members);
    record_batch_builder_t b;
    record_batch_begin(&b, group_now_ms());
    record_batch_add(&b, key.buf, (int32_t)key.len, value.buf, (int32_t)value.len);
    size_t len;
    const uint8_t *batch = record_batch_finish(&b, &len);
    w->group = g;
    w->is_metadata = true;
    group_store_write(gc, g->partition, (uint8_t *)batch, len, w);
    record_batch_builder_free(&b);
    kw_free(&key);
    kw_free(&value);
}

static void empty_group_stored(group_coordinator_t *gc, group_write_t *w, int16_t error)
{
    (void)gc;
    if (error != KAFKA_NONE)
        VLOG_WARN(GROUP_MODULE, "group %s: storing it as empty failed: %s", w->group->id,
                  kafka_error_name(error));
}

/* ---- rebalancing ---- */

static void complete_join(group_coordinator_t *gc, group_t *g);

static bool all_members_joined(const group_t *g)
{
    if (g->npending > 0)
        return false;
    for (int32_t i = 0; i < g->nmembers; i++)
        if (g->members[i]->join_done == NULL)
            return false;
    return true;
}

static int32_t max_rebalance_timeout_ms(const group_t *g)
{
    int32_t t = 0;
    for (int32_t i = 0; i < g->nmembers; i++)
        if (g->members[i]->rebalance_timeout_ms > t)
            t = g->members[i]->rebalance_timeout_ms;
    return t;
}

static void arm_rebalance_timer(group_coordinator_t *gc, group_t *g, int32_t ms)
{
    ev_timer_stop(gc->loop, &g->rebalance_timer);
    ev_timer_set(&g->rebalance_timer, ms / 1000.0, 0.);
    ev_timer_start(gc->loop, &g->rebalance_timer);
}

/* Kafka's resetAndPropagateAssignmentError: the generation's assignment
 * will not be served; members waiting for it get `error`. */
static void reset_assignments(group_t *g, int16_t error)
{
    assert(g->state == GROUP_COMPLETING_REBALANCE);
    assert(error != KAFKA_NONE);
    for (int32_t i = 0; i < g->nmembers; i++) {
        group_member_t *m = g->members[i];
        free(m->assignment);
        m->assignment = NULL;
        m->assignment_len = 0;
        if (m->sync_done) {
            group_sync_done_fn done = m->sync_done;
            m->sync_done = NULL;
            sync_answer_error(done, m->sync_arg, error);
        }
    }
}

static void prepare_rebalance(group_coordinator_t *gc, group_t *g, const char *why)
{
    assert(g->state != GROUP_DEAD && g->state != GROUP_PREPARING_REBALANCE);
    if (g->state == GROUP_COMPLETING_REBALANCE) /* the old generation's assignment never comes */
        reset_assignments(g, KAFKA_REBALANCE_IN_PROGRESS);
    int32_t rebalance_ms = max_rebalance_timeout_ms(g);
    if (g->state == GROUP_EMPTY) {
        /* Kafka's InitialDelayedJoin: wait for more members before the
         * first generation, a delay at a time, within the rebalance
         * timeout. */
        int32_t delay = gc->cfg.initial_rebalance_delay_ms;
        if (delay > rebalance_ms)
            delay = rebalance_ms;
        g->initial_delay = true;
        g->new_member_added = false;
        g->delay_remaining_ms = rebalance_ms - delay > 0 ? rebalance_ms - delay : 0;
        arm_rebalance_timer(gc, g, delay);
    } else {
        g->initial_delay = false;
        arm_rebalance_timer(gc, g, rebalance_ms);
    }
    VLOG_INFO(GROUP_MODULE, "group %s: rebalancing generation %d (%s)", g->id, g->generation, why);
    set_state(g, GROUP_PREPARING_REBALANCE);
}

static void pending_prune(group_t *g, int64_t now);

/* A join that may complete the join phase. */
static void maybe_complete_join(group_coordinator_t *gc, group_t *g)
{
    ev_timer_stop(gc->loop, &g->pending_timer);
    if (g->state != GROUP_PREPARING_REBALANCE || g->initial_delay)
        return;
    int64_t now = group_now_ms();
    pending_prune(g, now);
    if (all_members_joined(g)) {
        complete_join(gc, g);
        return;
    }
    /* A client that died between MEMBER_ID_REQUIRED and its rejoin holds
     * the phase until its id expires (its session timeout, as Kafka's
     * pending-member heartbeat does), not for the whole rebalance timeout. */
    int64_t first = INT64_MAX;
    for (int32_t i = 0; i < g->npending; i++)
        if (g->pending[i].expires_ms < first)
            first = g->pending[i].expires_ms;
    if (g->npending > 0) {
        assert(first > now);
        ev_timer_set(&g->pending_timer, (double)(first - now) / 1000.0, 0.);
        ev_timer_start(gc->loop, &g->pending_timer);
    }
}

static void pending_timer_fired(struct ev_loop *loop, ev_timer *timer, int revents)
{
    group_t *g = timer->data;
    (void)loop;
    (void)revents;
    assert(!g->removed);
    maybe_complete_join(g->gc, g);
}

static bool all_members_synced(const group_t *g)
{
    for (int32_t i = 0; i < g->nmembers; i++)
        if (!g->members[i]->synced)
            return false;
    return true;
}

/* The sync phase's deadline (Kafka's pending-sync members): a member that
 * joined a generation but sent no SyncGroup within the rebalance timeout
 * is out, so that its partitions go to the others instead of waiting for
 * its session to expire while it keeps heartbeating. */
static void sync_deadline_passed(group_coordinator_t *gc, group_t *g)
{
    assert(g->state == GROUP_COMPLETING_REBALANCE || g->state == GROUP_STABLE);
    const int32_t generation = g->generation;
    while (g->generation == generation && !g->removed &&
           (g->state == GROUP_COMPLETING_REBALANCE || g->state == GROUP_STABLE ||
            g->state == GROUP_PREPARING_REBALANCE)) {
        group_member_t *late = NULL;
        for (int32_t i = 0; i < g->nmembers && late == NULL; i++)
            if (!g->members[i]->synced)
                late = g->members[i];
        if (late == NULL)
            return;
        member_remove(gc, g, late, "no SyncGroup within the rebalance timeout");
    }
}

static void rebalance_timer_fired(struct ev_loop *loop, ev_timer *timer, int revents)
{
    group_t *g = timer->data;
    group_coordinator_t *gc = g->gc;
    (void)loop;
    (void)revents;
    if (g->state == GROUP_COMPLETING_REBALANCE || g->state == GROUP_STABLE) {
        sync_deadline_passed(gc, g);
        return;
    }
    if (g->state != GROUP_PREPARING_REBALANCE)
        return;
    if (g->initial_delay) {
        if (g->new_member_added && g->delay_remaining_ms > 0) {
            int32_t delay = gc->cfg.initial_rebalance_delay_ms;
            if (delay > g->delay_remaining_ms)
                delay = g->delay_remaining_ms;
            g->delay_remaining_ms -= delay;
            g->new_member_added = false;
            arm_rebalance_timer(gc, g, delay);
            return;
        }
        /* The delay is over. Members told MEMBER_ID_REQUIRED are on their
         * way back (a round trip): the first generation waits for them,
         * as any join phase does, within the rebalance timeout, rather
         * than forming without them and rebalancing at once. */
        g->initial_delay = false;
        pending_prune(g, group_now_ms());
        if (!all_members_joined(g) && g->delay_remaining_ms > 0) {
            arm_rebalance_timer(gc, g, g->delay_remaining_ms);
            g->delay_remaining_ms = 0;
            maybe_complete_join(gc, g); /* arms the pending ids' expiry */
            return;
        }
    }
    complete_join(gc, g);
}

/* The protocol every member supports that most members prefer (Kafka's
 * vote); ties go to the one the earliest member prefers. */
static const char *choose_protocol(const group_t *g)
{
    const group_member_t *first = NULL;
    for (int32_t i = 0; i < g->nmembers; i++)
        if (!first || g->members[i]->joined_seq < first->joined_seq)
            first = g->members[i];
    if (first == NULL)
        return NULL;
    assert(first->nprotocols <= GROUP_MAX_PROTOCOLS);
    /* The candidates are the protocols every member offers, so all of them
     * are among the first member's; each member then votes for the first
     * candidate in its own order of preference. */
    bool candidate[GROUP_MAX_PROTOCOLS];
    int32_t votes[GROUP_MAX_PROTOCOLS] = {0};
    for (int32_t c = 0; c < first->nprotocols; c++) {
        candidate[c] = true;
        for (int32_t i = 0; i < g->nmembers && candidate[c]; i++)
            candidate[c] = member_protocol(g->members[i], first->protocols[c].name) != NULL;
    }
    for (int32_t i = 0; i < g->nmembers; i++) {
        const group_member_t *m = g->members[i];
        bool voted = false;
        for (int32_t p = 0; p < m->nprotocols && !voted; p++)
            for (int32_t c = 0; c < first->nprotocols && !voted; c++)
                if (candidate[c] && strcmp(m->protocols[p].name, first->protocols[c].name) == 0) {
                    votes[c]++;
                    voted = true;
                }
    }
    int32_t best = -1;
    for (int32_t c = 0; c < first->nprotocols; c++)
        if (candidate[c] && (best < 0 || votes[c] > votes[best]))
            best = c;
    return best < 0 ? NULL : first->protocols[best].name;
}

/* Answers a JoinGroup of m's (done, arg: the waiting one, or one answered
 * at once) with the current generation. leader_shown is the leader the
 * answer names (the group's, or for a static member's rejoin before
 * JoinGroup v9 the old one, so that the member does not assign); the member
 * the answer names as leader gets every member. */
static void answer_join_with(group_t *g, const group_member_t *m, group_join_done_fn done,
                             void *arg, const char *leader_shown, bool skip_assignment)
{
    assert(done != NULL);
    assert(g->state == GROUP_COMPLETING_REBALANCE || g->state == GROUP_STABLE);
    bool leader = leader_shown && strcmp(leader_shown, m->member_id) == 0;
    group_join_member_t *members = NULL;
    if (leader) {
        members = xcalloc((size_t)g->nmembers + 1, sizeof(*members));
        for (int32_t i = 0; i < g->nmembers; i++) {
            const group_member_t *o = g->members[i];
            const member_protocol_t *p = member_protocol(o, g->protocol);
            members[i].member_id = o->member_id;
            members[i].group_instance_id = o->instance_id;
            members[i].metadata = p ? p->metadata : NULL;
            members[i].metadata_len = p ? p->metadata_len : 0;
        }
    }
    group_join_result_t res = {
        .error = KAFKA_NONE,
        .generation_id = g->generation,
        .protocol_type = g->protocol_type,
        .protocol_name = g->protocol,
        .leader = leader_shown ? leader_shown : "",
        .skip_assignment = skip_assignment,
        .member_id = m->member_id,
        .members = members,
        .nmembers = leader ? g->nmembers : 0,
    };
    done(arg, &res);
    free(members);
}

/* Answers m's waiting JoinGroup. */
static void answer_join_as(group_t *g, group_member_t *m, const char *leader_shown,
                           bool skip_assignment)
{
    group_join_done_fn done = m->join_done;
    assert(done != NULL);
    m->join_done = NULL;
    answer_join_with(g, m, done, m->join_arg, leader_shown, skip_assignment);
}

static void answer_join(group_t *g, group_member_t *m)
{
    answer_join_as(g, m, g->leader_id, false);
}

/* The leader of the next generation (Kafka's maybeElectNewJoinedLeader):
 * the current one if it rejoined, else the earliest-joined member that
 * did, so that the member list goes to someone who is listening. NULL when
 * no member rejoined. */
static const group_member_t *joined_leader(const group_t *g)
{
    assert(g->state == GROUP_PREPARING_REBALANCE);
    const group_member_t *lead = NULL;
    for (int32_t i = 0; i < g->nmembers; i++) {
        const group_member_t *m = g->members[i];
        if (m->join_done == NULL)
            continue;
        if (is_leader(g, m))
            return m;
        if (lead == NULL || m->joined_seq < lead->joined_seq)
            lead = m;
    }
    return lead;
}

static void complete_join(group_coordinator_t *gc, group_t *g)
{
    assert(g->state == GROUP_PREPARING_REBALANCE);
    ev_timer_stop(gc->loop, &g->rebalance_timer);
    g->initial_delay = false;
    /* Dynamic members that did not rejoin in time are out; static ones
     * keep their place (KIP-345). */
    for (int32_t i = 0; i < g->nmembers;) {
        group_member_t *m = g->members[i];
        if (m->join_done == NULL && m->instance_id == NULL) {
            VLOG_INFO(GROUP_MODULE, "group %s: member %s did not rejoin in time", g->id,
                      m->member_id);
            g->members[i] = g->members[--g->nmembers];
            member_fail_pending(m, KAFKA_UNKNOWN_MEMBER_ID);
            member_free(gc, m);
            continue;
        }
        i++;
    }
    const group_member_t *lead = joined_leader(g);
    if (lead == NULL && g->nmembers > 0) {
        /* Only static members that did not rejoin are left: Kafka forms no
         * generation nobody would hear of, and waits another rebalance
         * timeout while their session timeouts run out. */
        VLOG_WARN(GROUP_MODULE, "group %s: no member rejoined; waiting another rebalance timeout",
                  g->id);
        arm_rebalance_timer(gc, g, max_rebalance_timeout_ms(g));
        return;
    }
    /* Members told MEMBER_ID_REQUIRED keep their ids (until their session
     * timeout): one that rejoins just after this generation forms is added
     * and rebalances, as on Kafka, instead of being refused. */
    g->generation++;
    free(g->protocol);
    g->protocol = NULL;
    if (g->nmembers == 0) {
        free(g->leader_id);
        g->leader_id = NULL;
        set_state(g, GROUP_EMPTY);
        VLOG_INFO(GROUP_MODULE, "group %s: empty at generation %d", g->id, g->generation);
        group_write_t *w = xcalloc(1, sizeof(*w));
        w->done = empty_group_stored;
        store_group(gc, g, w);
        return;
    }
    const char *proto = choose_protocol(g);
    assert(proto != NULL && "joins are checked for a common protocol");
    g->protocol = xstrdup(proto);
    if (g->leader_id == NULL || strcmp(g->leader_id, lead->member_id) != 0) {
        free(g->leader_id);
        g->leader_id = xstrdup(lead->member_id);
    }
    set_state(g, GROUP_COMPLETING_REBALANCE);
    VLOG_INFO(GROUP_MODULE, "group %s: generation %d with %d members, protocol %s, leader %s",
              g->id, g->generation, g->nmembers, g->protocol, g->leader_id);
    for (int32_t i = 0; i < g->nmembers; i++)
        g->members[i]->synced = false;
    arm_rebalance_timer(gc, g, max_rebalance_timeout_ms(g)); /* the sync phase's deadline */
    for (int32_t i = 0; i < g->nmembers; i++) {
        group_member_t *m = g->members[i];
        if (m->join_done) {
            member_heartbeat(gc, m);
            answer_join(g, m);
        }
    }
}

/* Takes a member out (left, expired, fenced) and rebalances the rest. */
static void member_remove(group_coordinator_t *gc, group_t *g, group_member_t *m, const char *why)
{
    assert(m->group == g);
    assert(!g->removed);
    VLOG_INFO(GROUP_MODULE, "group %s: member %s leaves (%s)", g->id, m->member_id, why);
    for (int32_t i = 0; i < g->nmembers; i++)
        if (g->members[i] == m) {
            g->members[i] = g->members[--g->nmembers];
            break;
        }
    member_fail_pending(m, KAFKA_UNKNOWN_MEMBER_ID);
    bool was_leader = is_leader(g, m);
    member_free(gc, m);
    if (was_leader) {
        free(g->leader_id);
        g->leader_id = NULL;
    }
    switch (g->state) {
    case GROUP_STABLE:
    case GROUP_COMPLETING_REBALANCE:
        prepare_rebalance(gc, g, why);
        if (g->nmembers == 0 && !g->initial_delay)
            complete_join(gc, g);
        break;
    case GROUP_PREPARING_REBALANCE:
        maybe_complete_join(gc, g);
        break;
    default:
        break;
    }
}

/* ---- lifecycle ---- */

static void expiry_tick(struct ev_loop *loop, ev_timer *timer, int revents);

group_coordinator_t *group_coordinator_new(struct ev_loop *loop, const group_config_t *cfg,
                                           struct replica_manager *replicas,
                                           struct coordinator *coord)
{
    assert(cfg->max_size >= 1 && cfg->max_size <= GROUP_MAX_MEMBERS);
    assert(cfg->min_session_timeout_ms <= cfg->max_session_timeout_ms);
    group_coordinator_t *gc = xcalloc(1, sizeof(*gc));
    gc->loop = loop;
    gc->cfg = *cfg;
    gc->replicas = replicas;
    gc->coord = coord;
    group_store_init(gc);
    if (getrandom(&gc->rng, sizeof(gc->rng), 0) != (ssize_t)sizeof(gc->rng))
        gc->rng = (uint64_t)wall_clock_ms() ^ ((uint64_t)getpid() << 32);
    gc->rng |= 1;
    double interval = cfg->offsets_retention_check_interval_ms / 1000.0;
    ev_timer_init(&gc->expiry_timer, expiry_tick, interval, interval);
    gc->expiry_timer.data = gc;
    ev_timer_start(loop, &gc->expiry_timer);
    ev_unref(loop); /* the expiry timer alone does not keep the loop alive */
    /* Offsets partitions this broker already leads (assigned while the
     * coordinator started, before anyone forwarded their events). */
    const cluster_metadata_t *md = coordinator_metadata(coord);
    const md_topic_t *t =
        cluster_metadata_topic(md, GROUP_OFFSETS_TOPIC, strlen(GROUP_OFFSETS_TOPIC));
    for (int32_t p = 0; t && p < t->npartitions; p++)
        group_store_partition_event(gc, p);
    return gc;
}

void group_coordinator_free(group_coordinator_t *gc)
{
    if (gc == NULL)
        return;
    gc->stopping = true;
    ev_ref(gc->loop);
    ev_timer_stop(gc->loop, &gc->expiry_timer);
    group_store_free(gc);
    /* Groups of partitions never led cannot exist; whatever is left (none
     * expected) goes too. */
    for (size_t b = 0; b < gc->groups.nbuckets; b++) {
        hnode_t *n = gc->groups.buckets[b];
        while (n) {
            hnode_t *next = n->next;
            group_remove(gc, (group_t *)n, KAFKA_COORDINATOR_NOT_AVAILABLE);
            n = next;
        }
    }
    assert(gc->groups.count == 0);
    htable_free(&gc->groups);
    free(gc);
}

void group_coordinator_partition_event(group_coordinator_t *gc, const char *topic,
                                       int32_t partition)
{
    assert(topic != NULL);
    if (strcmp(topic, GROUP_OFFSETS_TOPIC) == 0)
        group_store_partition_event(gc, partition);
}

/* The group for a request, or the error to answer with. Kafka takes an
 * empty group id only in OffsetCommit, OffsetFetch, DescribeGroups and
 * DeleteGroups (its isValidGroupId); the membership APIs and OffsetDelete
 * refuse it. */
static int16_t route_id(group_coordinator_t *gc, kslice_t group_id, bool allow_empty, group_t **out,
                        int32_t *partition)
{
    *out = NULL;
    *partition = -1;
    if (group_id.ptr == NULL || (group_id.len == 0 && !allow_empty) ||
        group_id.len > GROUP_MAX_ID_BYTES)
        return KAFKA_INVALID_GROUP_ID;
    int16_t error = group_store_route(gc, group_id.ptr, (size_t)group_id.len, partition);
    if (error == KAFKA_NONE)
        *out = group_find(gc, (const char *)group_id.ptr, (size_t)group_id.len);
    return error;
}

static int16_t route(group_coordinator_t *gc, kslice_t group_id, group_t **out)
{
    int32_t partition;
    return route_id(gc, group_id, false, out, &partition);
}

/* OffsetCommit, OffsetFetch, DescribeGroups, DeleteGroups: an empty
 * group id is a group. */
static int16_t route_any(group_coordinator_t *gc, kslice_t group_id, group_t **out)
{
    int32_t partition;
    return route_id(gc, group_id, true, out, &partition);
}

/* A new group in the partition route_id found for it; NULL, with
 * COORDINATOR_NOT_AVAILABLE in *error, past GROUP_MAX_GROUPS. */
static group_t *create_routed(group_coordinator_t *gc, kslice_t group_id, int32_t partition,
                              int16_t *error)
{
    assert(partition >= 0);
    if (gc->groups.count >= GROUP_MAX_GROUPS) {
        VLOG_WARN(GROUP_MODULE, "refusing group %.*s: this broker coordinates %d groups already",
                  (int)group_id.len, (const char *)group_id.ptr, GROUP_MAX_GROUPS);
        *error = KAFKA_COORDINATOR_NOT_AVAILABLE;
        return NULL;
    }
    return group_create(gc, (const char *)group_id.ptr, (size_t)group_id.len, partition);
}

static group_t *route_create(group_coordinator_t *gc, kslice_t group_id, bool allow_empty,
                             int16_t *error)
{
    group_t *g;
    int32_t partition;
    *error = route_id(gc, group_id, allow_empty, &g, &partition);
    if (*error != KAFKA_NONE || g != NULL)
        return g;
    return create_routed(gc, group_id, partition, error);
}

/* ---- JoinGroup ---- */

/* xorshift64: member ids need to be unique, not secret. */
static uint64_t next_random(group_coordinator_t *gc)
{
    assert(gc->rng != 0);
    gc->rng ^= gc->rng << 13;
    gc->rng ^= gc->rng >> 7;
    gc->rng ^= gc->rng << 17;
    return gc->rng;
}

static char *new_member_id(group_coordinator_t *gc, kslice_t client_id)
{
    uint64_t a = next_random(gc), b = next_random(gc);
    int len = client_id.ptr ? (int)(client_id.len > 255 ? 255 : client_id.len) : 0;
    size_t size = (size_t)len + 40;
    char *id = xmalloc(size);
    snprintf(id, size, "%.*s-%08x-%04x-%04x-%04x-%012" PRIx64, len,
             client_id.ptr ? (const char *)client_id.ptr : "", (unsigned)(a >> 32),
             (unsigned)(a >> 16) & 0xffff, (unsigned)a & 0xffff, (unsigned)(b >> 48),
             (uint64_t)(b & 0xffffffffffffULL));
    return id;
}

static bool protocols_match(const group_member_t *m, const group_join_params_t *p)
{
    if (m->nprotocols != p->nprotocols)
        return false;
    for (int32_t i = 0; i < p->nprotocols; i++) {
        const member_protocol_t *mp = &m->protocols[i];
        const group_protocol_t *jp = &p->protocols[i];
        if (!slice_is(jp->name, mp->name) || jp->metadata.len != mp->metadata_len ||
            (mp->metadata_len > 0 &&
             memcmp(jp->metadata.ptr, mp->metadata, (size_t)mp->metadata_len)))
            return false;
    }
    return true;
}

static void member_update(group_member_t *m, const group_join_params_t *p)
{
    member_free_protocols(m);
    m->protocols = xcalloc((size_t)p->nprotocols, sizeof(*m->protocols));
    m->nprotocols = p->nprotocols;
    for (int32_t i = 0; i < p->nprotocols; i++) {
        m->protocols[i].name = kslice_strdup(p->protocols[i].name);
        m->protocols[i].metadata = bytes_dup(p->protocols[i].metadata);
        m->protocols[i].metadata_len =
            p->protocols[i].metadata.ptr ? p->protocols[i].metadata.len : 0;
    }
    m->session_timeout_ms = p->session_timeout_ms;
    m->rebalance_timeout_ms = p->rebalance_timeout_ms;
    free(m->client_id);
    m->client_id = p->client_id.ptr ? kslice_strdup(p->client_id) : xstrdup("");
    free(m->client_host);
    m->client_host = xstrdup(p->client_host ? p->client_host : "");
}

static group_member_t *member_add(group_coordinator_t *gc, group_t *g, char *member_id,
                                  const group_join_params_t *p)
{
    group_member_t *m = xcalloc(1, sizeof(*m));
    m->group = g;
    m->member_id = member_id;
    m->instance_id = slice_dup(p->group_instance_id);
    m->joined_seq = ++gc->member_seq;
    ev_timer_init(&m->session_timer, session_expired, 0., 0.);
    m->session_timer.data = m;
    member_update(m, p);
    g->members = xrealloc(g->members, (size_t)(g->nmembers + 1) * sizeof(*g->members));
    g->members[g->nmembers++] = m;
    if (g->nmembers == 1) { /* an empty group takes its first member's protocol type */
        free(g->protocol_type);
        g->protocol_type = kslice_strdup(p->protocol_type);
    }
    if (g->leader_id == NULL && g->state != GROUP_STABLE)
        g->leader_id = xstrdup(member_id);
    if (g->state == GROUP_PREPARING_REBALANCE && g->initial_delay)
        g->new_member_added = true;
    return m;
}

/* Joins m to the rebalance; answers through its join callback later. */
static void member_await_join(group_coordinator_t *gc, group_t *g, group_member_t *m,
                              group_join_done_fn done, void *arg, const char *why)
{
    if (m->join_done) /* a second join before the first was answered */
        join_answer_error(m->join_done, m->join_arg, KAFKA_REBALANCE_IN_PROGRESS, m->member_id);
    m->join_done = done;
    m->join_arg = arg;
    if (g->state != GROUP_PREPARING_REBALANCE)
        prepare_rebalance(gc, g, why);
    maybe_complete_join(gc, g);
}

static void pending_prune(group_t *g, int64_t now)
{
    for (int32_t i = 0; i < g->npending;)
        if (g->pending[i].expires_ms <= now) {
            free(g->pending[i].member_id);
            g->pending[i] = g->pending[--g->npending];
        } else {
            i++;
        }
}

static int32_t pending_find(const group_t *g, kslice_t member_id)
{
    for (int32_t i = 0; i < g->npending; i++)
        if (slice_is(member_id, g->pending[i].member_id))
            return i;
    return -1;
}

static int16_t join_validate(group_coordinator_t *gc, const group_join_params_t *p)
{
    if (p->session_timeout_ms < gc->cfg.min_session_timeout_ms ||
        p->session_timeout_ms > gc->cfg.max_session_timeout_ms)
        return KAFKA_INVALID_SESSION_TIMEOUT;
    /* The protocol type is stored, then written as a classic (int16
     * length) string in group records and old responses. */
    if (p->member_id.len > GROUP_MAX_ID_BYTES || p->protocol_type.len > GROUP_MAX_ID_BYTES ||
        (p->group_instance_id.ptr &&
         (p->group_instance_id.len <= 0 || p->group_instance_id.len > GROUP_MAX_ID_BYTES)))
        return KAFKA_INVALID_REQUEST;
    if (p->protocol_type.ptr == NULL || p->protocol_type.len == 0 || p->nprotocols <= 0)
        return KAFKA_INCONSISTENT_GROUP_PROTOCOL;
    if (p->nprotocols > GROUP_MAX_PROTOCOLS)
        return KAFKA_INVALID_REQUEST;
    int64_t total = 0;
    for (int32_t i = 0; i < p->nprotocols; i++) {
        if (p->protocols[i].name.ptr == NULL || p->protocols[i].name.len > GROUP_MAX_ID_BYTES)
            return KAFKA_INVALID_REQUEST;
        total += p->protocols[i].metadata.ptr ? p->protocols[i].metadata.len : 0;
    }
    if (total > GROUP_MAX_METADATA_BYTES)
        return KAFKA_INVALID_REQUEST;
    return KAFKA_NONE;
}

/* Can a member offering these protocols join g as it is? */
static bool join_compatible(const group_t *g, const group_join_params_t *p)
{
    if (g->nmembers == 0)
        return true;
    if (g->protocol_type && !slice_is(p->protocol_type, g->protocol_type))
        return false;
    for (int32_t c = 0; c < p->nprotocols; c++) {
        bool everyone = true;
        for (int32_t i = 0; i < g->nmembers && everyone; i++)
            everyone = member_offers(g->members[i], p->protocols[c].name);
        if (everyone)
            return true;
    }
    return false;
}

/* A static member's rejoin into a Stable group, waiting for its new member
 * id to be stored. */
typedef struct static_rejoin {
    char *instance_id;
    char *old_leader;    /* the leader's old member id when it was the leader */
    bool skip_supported; /* JoinGroup v9+ (KIP-814) */
} static_rejoin_t;

static void static_rejoin_stored(group_coordinator_t *gc, group_write_t *w, int16_t error)
{
    static_rejoin_t *sr = w->arg;
    group_t *g = w->group;
    (void)gc;
    kslice_t instance = cslice(sr->instance_id);
    group_member_t *m = g->removed ? NULL : group_static_member(g, instance);
    if (m && m->join_done && g->state == GROUP_STABLE) {
        if (error != KAFKA_NONE) {
            group_join_done_fn done = m->join_done;
            m->join_done = NULL;
            join_answer_error(done, m->join_arg, error, "");
        } else if (sr->skip_supported) {
            /* v9: the leader learns it leads, and skips the assignment. */
            bool leader = is_leader(g, m);
            answer_join_as(g, m, g->leader_id, leader);
        } else {
            /* Before v9 the old leader id is shown, so that a restarted
             * leader does not assign for a generation that is not new. */
            answer_join_as(g, m, sr->old_leader ? sr->old_leader : g->leader_id, false);
        }
    }
    free(sr->instance_id);
    free(sr->old_leader);
    free(sr);
}

static void join_unknown_member(group_coordinator_t *gc, group_t *g, const group_join_params_t *p,
                                group_join_done_fn done, void *arg)
{
    group_member_t *old = group_static_member(g, p->group_instance_id);
    if (old == NULL && g->nmembers >= gc->cfg.max_size) {
        join_answer_error(done, arg, KAFKA_GROUP_MAX_SIZE_REACHED, "");
        return;
    }
    char *member_id = new_member_id(gc, p->client_id);
    if (old != NULL) {
        /* KIP-345: the instance is back under a new member id; the old id
         * is fenced. A Stable group whose member offers what it did keeps
         * its generation: no rebalance for a restart. */
        VLOG_INFO(GROUP_MODULE, "group %s: static member %s rejoins as %s", g->id, old->instance_id,
                  member_id);
        member_fail_pending(old, KAFKA_FENCED_INSTANCE_ID);
        bool was_leader = is_leader(g, old);
        char *old_id = old->member_id;
        old->member_id = member_id;
        if (was_leader) {
            free(g->leader_id);
            g->leader_id = xstrdup(member_id);
        }
        member_update(old, p);
        member_heartbeat(gc, old);
        old->join_done = done;
        old->join_arg = arg;
        switch (g->state) {
        case GROUP_STABLE: {
            const char *next = choose_protocol(g);
            if (next == NULL || g->protocol == NULL || strcmp(next, g->protocol) != 0) {
                prepare_rebalance(gc, g, "static member rejoined with other protocols");
                break;
            }
            /* Kafka's rule: the group keeps its generation and stores the
             * new member id; the member gets its assignment back. */
            static_rejoin_t *sr = xcalloc(1, sizeof(*sr));
            sr->instance_id = xstrdup(old->instance_id);
            if (was_leader) {
                sr->old_leader = old_id; /* the rejoin's answer names it */
                old_id = NULL;
            }
            sr->skip_supported = p->version >= 9;
            group_write_t *w = xcalloc(1, sizeof(*w));
            w->done = static_rejoin_stored;
            w->arg = sr;
            store_group(gc, g, w);
            break;
        }
        case GROUP_COMPLETING_REBALANCE:
            prepare_rebalance(gc, g, "static member rejoined");
            break;
        default:
            break; /* PreparingRebalance: it is one of the joins awaited */
        }
        free(old_id);
        maybe_complete_join(gc, g);
        return;
    }
    if (p->version >= 4 && p->group_instance_id.ptr == NULL) {
        /* KIP-394: a dynamic member learns its id first and joins with it,
         * so a retried join cannot leave a ghost member behind. */
        int64_t now = group_now_ms();
        pending_prune(g, now);
        if (g->npending >= GROUP_MAX_PENDING_MEMBERS) {
            free(member_id);
            join_answer_error(done, arg, KAFKA_GROUP_MAX_SIZE_REACHED, "");
            return;
        }
        g->pending = xrealloc(g->pending, (size_t)(g->npending + 1) * sizeof(*g->pending));
        g->pending[g->npending].member_id = member_id;
        g->pending[g->npending].expires_ms = now + p->session_timeout_ms;
        g->npending++;
        join_answer_error(done, arg, KAFKA_MEMBER_ID_REQUIRED, member_id);
        return;
    }
    group_member_t *m = member_add(gc, g, member_id, p);
    member_heartbeat(gc, m);
    member_await_join(gc, g, m, done, arg, "new member joined");
}

void group_join(group_coordinator_t *gc, const group_join_params_t *p, group_join_done_fn done,
                void *arg)
{
    assert(done != NULL);
    assert(p->nprotocols >= 0);
    bool unknown = p->member_id.ptr == NULL || p->member_id.len == 0;
    group_t *g;
    /* Checked before a group is created for it, so a refused join leaves
     * nothing behind (as Kafka checks them). */
    int32_t partition;
    int16_t error = route_id(gc, p->group_id, false, &g, &partition);
    if (error == KAFKA_NONE)
        error = join_validate(gc, p);
    if (error == KAFKA_NONE && g == NULL && unknown)
        g = create_routed(gc, p->group_id, partition, &error);
    if (error == KAFKA_NONE && g == NULL)
        error = KAFKA_UNKNOWN_MEMBER_ID;
    if (error == KAFKA_NONE && g->state == GROUP_DEAD)
        error = KAFKA_COORDINATOR_NOT_AVAILABLE;
    if (error == KAFKA_NONE && !join_compatible(g, p))
        error = KAFKA_INCONSISTENT_GROUP_PROTOCOL;
    if (error != KAFKA_NONE) {
        join_refuse(done, arg, error, p->member_id);
        return;
    }
    if (unknown) {
        join_unknown_member(gc, g, p, done, arg);
        return;
    }
    int32_t pending = pending_find(g, p->member_id);
    if (pending >= 0) {
        if (g->nmembers >= gc->cfg.max_size) {
            join_answer_error(done, arg, KAFKA_GROUP_MAX_SIZE_REACHED, "");
            return;
        }
        char *member_id = g->pending[pending].member_id;
        g->pending[pending] = g->pending[--g->npending];
        group_member_t *m = member_add(gc, g, member_id, p);
        member_heartbeat(gc, m);
        member_await_join(gc, g, m, done, arg, "new member joined");
        return;
    }
    if (static_member_fenced(g, p->member_id, p->group_instance_id)) {
        join_refuse(done, arg, KAFKA_FENCED_INSTANCE_ID, p->member_id);
        return;
    }
    /* An instance id the group does not know is as unknown as the member
     * id (Kafka's groupInstanceIdNotFound). */
    group_member_t *m = group_find_member(g, p->member_id);
    if (m == NULL ||
        (p->group_instance_id.ptr && !slice_is(p->group_instance_id, m->instance_id))) {
        join_refuse(done, arg, KAFKA_UNKNOWN_MEMBER_ID, p->member_id);
        return;
    }
    member_heartbeat(gc, m);
    bool leader = is_leader(g, m);
    switch (g->state) {
    case GROUP_PREPARING_REBALANCE:
        member_update(m, p);
        member_await_join(gc, g, m, done, arg, "member rejoined");
        return;
    case GROUP_COMPLETING_REBALANCE:
    case GROUP_STABLE:
        if (protocols_match(m, p) && (g->state == GROUP_COMPLETING_REBALANCE || !leader)) {
            /* Nothing changed: the member lost the answer; it gets the
             * current generation again. Answered here, not through
             * m->join_done: a static member's rejoin may still wait there
             * for its write. */
            answer_join_with(g, m, done, arg, g->leader_id, false);
            return;
        }
        member_update(m, p);
        member_await_join(gc, g, m, done, arg,
                          leader ? "leader rejoined" : "member metadata changed");
        return;
    default:
        join_refuse(done, arg, KAFKA_UNKNOWN_MEMBER_ID, p->member_id);
        return;
    }
}

/* ---- SyncGroup ---- */

static void answer_sync(group_t *g, group_member_t *m)
{
    group_sync_done_fn done = m->sync_done;
    assert(done != NULL);
    m->sync_done = NULL;
    group_sync_result_t res = {
        .error = KAFKA_NONE,
        .protocol_type = g->protocol_type,
        .protocol_name = g->protocol,
        .assignment = m->assignment,
        .assignment_len = m->assignment_len,
    };
    done(m->sync_arg, &res);
}

static void sync_stored(group_coordinator_t *gc, group_write_t *w, int16_t error)
{
    group_t *g = w->group;
    if (g->removed || g->state != GROUP_COMPLETING_REBALANCE || g->generation != w->generation)
        return; /* a rebalance or an unload answered the waiting members */
    if (error != KAFKA_NONE) {
        VLOG_WARN(GROUP_MODULE, "group %s: storing generation %d failed: %s", g->id, g->generation,
                  kafka_error_name(error));
        reset_assignments(g, error);
        prepare_rebalance(gc, g, "storing the assignment failed");
        return;
    }
    set_state(g, GROUP_STABLE);
    if (all_members_synced(g))
        ev_timer_stop(gc->loop, &g->rebalance_timer);
    for (int32_t i = 0; i < g->nmembers; i++)
        if (g->members[i]->sync_done)
            answer_sync(g, g->members[i]);
}

void group_sync(group_coordinator_t *gc, const group_sync_params_t *p, group_sync_done_fn done,
                void *arg)
{
    assert(done != NULL);
    assert(p->nassignments >= 0);
    group_t *g;
    int16_t error = route(gc, p->group_id, &g);
    /* Kafka's answer while loading: the rebalance this sync belongs to is
     * lost, and REBALANCE_IN_PROGRESS sends the member back to JoinGroup
     * without a coordinator lookup (older clients do not expect
     * COORDINATOR_LOAD_IN_PROGRESS here). */
    if (error == KAFKA_COORDINATOR_LOAD_IN_PROGRESS)
        error = KAFKA_REBALANCE_IN_PROGRESS;
    group_member_t *m = NULL;
    if (error == KAFKA_NONE && g == NULL)
        error = KAFKA_UNKNOWN_MEMBER_ID;
    if (error == KAFKA_NONE && g->state == GROUP_DEAD)
        error = KAFKA_COORDINATOR_NOT_AVAILABLE;
    if (error == KAFKA_NONE && static_member_fenced(g, p->member_id, p->group_instance_id))
        error = KAFKA_FENCED_INSTANCE_ID;
    if (error == KAFKA_NONE && (m = group_find_member(g, p->member_id)) == NULL)
        error = KAFKA_UNKNOWN_MEMBER_ID;
    if (error == KAFKA_NONE && p->generation_id != g->generation)
        error = KAFKA_ILLEGAL_GENERATION;
    if (error == KAFKA_NONE &&
        ((p->protocol_type.ptr && !slice_is(p->protocol_type, g->protocol_type)) ||
         (p->protocol_name.ptr && !slice_is(p->protocol_name, g->protocol))))
        error = KAFKA_INCONSISTENT_GROUP_PROTOCOL;
    if (error == KAFKA_NONE && g->state == GROUP_EMPTY)
        error = KAFKA_UNKNOWN_MEMBER_ID;
    if (error == KAFKA_NONE && g->state == GROUP_PREPARING_REBALANCE)
        error = KAFKA_REBALANCE_IN_PROGRESS;
    if (error != KAFKA_NONE) {
        sync_answer_error(done, arg, error);
        return;
    }
    member_heartbeat(gc, m);
    m->synced = true;
    if (g->state == GROUP_STABLE) {
        if (all_members_synced(g))
            ev_timer_stop(gc->loop, &g->rebalance_timer);
        m->sync_done = done;
        m->sync_arg = arg;
        answer_sync(g, m);
        return;
    }
    assert(g->state == GROUP_COMPLETING_REBALANCE);
    if (m->sync_done)
        sync_answer_error(m->sync_done, m->sync_arg, KAFKA_REBALANCE_IN_PROGRESS);
    m->sync_done = done;
    m->sync_arg = arg;
    if (!is_leader(g, m))
        return; /* followers wait for the leader's assignment */
    for (int32_t i = 0; i < p->nassignments; i++)
        if (p->assignments[i].assignment.len > GROUP_MAX_METADATA_BYTES) {
            /* Refused: no assignment comes from this SyncGroup, so the
             * sync phase's deadline still counts the leader as late (the
             * followers waiting for it are not held past it). */
            m->sync_done = NULL;
            m->synced = false;
            sync_answer_error(done, arg, KAFKA_INVALID_REQUEST);
            return;
        }
    for (int32_t i = 0; i < g->nmembers; i++) {
        group_member_t *o = g->members[i];
        free(o->assignment);
        o->assignment = NULL;
        o->assignment_len = 0;
        for (int32_t a = 0; a < p->nassignments; a++)
            if (slice_is(p->assignments[a].member_id, o->member_id)) {
                o->assignment = bytes_dup(p->assignments[a].assignment);
                o->assignment_len =
                    p->assignments[a].assignment.ptr ? p->assignments[a].assignment.len : 0;
                break;
            }
    }
    group_write_t *w = xcalloc(1, sizeof(*w));
    w->done = sync_stored;
    w->generation = g->generation;
    store_group(gc, g, w);
}

/* ---- Heartbeat, LeaveGroup ---- */

int16_t group_heartbeat(group_coordinator_t *gc, kslice_t group_id, int32_t generation_id,
                        kslice_t member_id, kslice_t group_instance_id)
{
    group_t *g;
    int16_t error = route(gc, group_id, &g);
    if (error == KAFKA_COORDINATOR_LOAD_IN_PROGRESS)
        return KAFKA_NONE; /* Kafka answers blindly while loading */
    if (error != KAFKA_NONE)
        return error;
    if (g == NULL)
        return KAFKA_UNKNOWN_MEMBER_ID;
    if (g->state == GROUP_DEAD)
        return KAFKA_COORDINATOR_NOT_AVAILABLE;
    if (static_member_fenced(g, member_id, group_instance_id))
        return KAFKA_FENCED_INSTANCE_ID;
    group_member_t *m = group_find_member(g, member_id);
    if (m == NULL || g->state == GROUP_EMPTY)
        return KAFKA_UNKNOWN_MEMBER_ID;
    if (generation_id != g->generation)
        return KAFKA_ILLEGAL_GENERATION;
    member_heartbeat(gc, m);
    return g->state == GROUP_PREPARING_REBALANCE ? KAFKA_REBALANCE_IN_PROGRESS : KAFKA_NONE;
}

int16_t group_leave(group_coordinator_t *gc, kslice_t group_id, group_leave_member_t *members,
                    int32_t nmembers)
{
    assert(nmembers >= 0);
    group_t *g;
    int16_t error = route(gc, group_id, &g);
    if (error != KAFKA_NONE)
        return error;
    if (g != NULL && g->state == GROUP_DEAD)
        return KAFKA_COORDINATOR_NOT_AVAILABLE;
    for (int32_t i = 0; i < nmembers; i++) {
        group_leave_member_t *lm = &members[i];
        lm->error = KAFKA_UNKNOWN_MEMBER_ID;
        if (g == NULL)
            continue;
        bool by_instance = lm->group_instance_id.ptr != NULL;
        if (!by_instance) {
            int32_t pending = pending_find(g, lm->member_id);
            if (pending >= 0) {
                free(g->pending[pending].member_id);
                g->pending[pending] = g->pending[--g->npending];
                lm->error = KAFKA_NONE;
                maybe_complete_join(gc, g);
                continue;
            }
        }
        group_member_t *m = by_instance ? group_static_member(g, lm->group_instance_id)
                                        : group_find_member(g, lm->member_id);
        if (m == NULL)
            continue;
        if (by_instance && lm->member_id.len > 0 && !slice_is(lm->member_id, m->member_id)) {
            lm->error = KAFKA_FENCED_INSTANCE_ID;
            continue;
        }
        lm->error = KAFKA_NONE;
        member_remove(gc, g, m, "left the group");
    }
    return KAFKA_NONE;
}

/* ---- OffsetCommit ---- */

typedef struct commit_op {
    group_done_fn done;
    void *arg;
    group_commit_part_t *parts;
    int32_t nparts;
    int64_t commit_ms;
    int64_t expire_ms;
    bool *superseded; /* per part: a tombstone was written after it (OffsetDelete) */
} commit_op_t;

/* The parts of g's commits still waiting for the high watermark that name
 * (topic, partition): how many there are and, with `supersede`, marks them
 * as preceding a tombstone being written for it, so that acknowledging
 * them does not bring back in memory what the log then deletes. */
static int32_t pending_commits_of(group_coordinator_t *gc, const group_t *g, const char *topic,
                                  size_t tlen, int32_t partition, bool supersede)
{
    assert(topic != NULL);
    assert(g->commits_in_flight >= 0);
    if (g->commits_in_flight == 0)
        return 0;
    offsets_partition_t *p = group_store_partition(gc, g->partition);
    int32_t n = 0;
    for (coord_log_write_t *lw = p ? p->log.writes_head : NULL; lw; lw = lw->next) {
        group_write_t *w = group_write_of(lw);
        if (!w->is_commit || w->group != g)
            continue;
        commit_op_t *op = w->arg;
        for (int32_t i = 0; i < op->nparts; i++) {
            const group_commit_part_t *part = &op->parts[i];
            if (part->error == KAFKA_NONE && part->partition == partition && part->topic.ptr &&
                (size_t)part->topic.len == tlen && memcmp(part->topic.ptr, topic, tlen) == 0) {
                n++;
                op->superseded[i] |= supersede;
            }
        }
    }
    return n;
}

static void commit_stored(group_coordinator_t *gc, group_write_t *w, int16_t error)
{
    commit_op_t *op = w->arg;
    group_t *g = w->group;
    (void)gc;
    assert(w->is_commit && g != NULL);
    assert(op->nparts > 0);
    for (int32_t i = 0; i < op->nparts; i++) {
        group_commit_part_t *part = &op->parts[i];
        if (part->error != KAFKA_NONE)
            continue;
        if (error != KAFKA_NONE) {
            part->error = error;
            continue;
        }
        if (!g->removed && !op->superseded[i])
            group_offset_set(g, (const char *)part->topic.ptr, (size_t)part->topic.len,
                             part->partition, part->offset, part->leader_epoch,
                             (const char *)part->metadata.ptr,
                             part->metadata.ptr ? (size_t)part->metadata.len : 0,
                             part->commit_timestamp >= 0 ? part->commit_timestamp : op->commit_ms,
                             op->expire_ms, w->log.base_offset);
    }
    op->done(op->arg);
    free(op->superseded);
    free(op);
}

/* GROUP_MAX_OFFSETS_PER_GROUP bounds a group's committed offsets and its
 * transactional ones (pending or being written) together, so that a transaction's commit
 * cannot take the committed ones past it: is there room for part's? */
static bool offset_room(const group_t *g, const group_commit_part_t *part)
{
    assert(g->txn_offsets >= 0 && g->txn_in_flight >= 0);
    if (g->offsets.count + (size_t)g->txn_offsets + (size_t)g->txn_in_flight <
        GROUP_MAX_OFFSETS_PER_GROUP)
        return true;
    return group_offset_find((group_t *)g, (const char *)part->topic.ptr, (size_t)part->topic.len,
                             part->partition) != NULL;
}

static int16_t commit_check_member(group_coordinator_t *gc, group_t *g,
                                   const group_commit_params_t *p)
{
    if (g->state == GROUP_DEAD)
        return KAFKA_COORDINATOR_NOT_AVAILABLE;
    if (static_member_fenced(g, p->member_id, p->group_instance_id))
        return KAFKA_FENCED_INSTANCE_ID;
    if (p->generation_id < 0 && g->state == GROUP_EMPTY)
        return KAFKA_NONE; /* a commit from outside the group protocol */
    if (g->state == GROUP_COMPLETING_REBALANCE)
        return KAFKA_REBALANCE_IN_PROGRESS;
    group_member_t *m = group_find_member(g, p->member_id);
    if (m == NULL)
        return KAFKA_UNKNOWN_MEMBER_ID;
    if (p->generation_id != g->generation)
        return KAFKA_ILLEGAL_GENERATION;
    member_heartbeat(gc, m);
    return KAFKA_NONE;
}

/* Adds one offset-commit record (Kafka's key and value schemas) to b for
 * each part the request did not refuse: committed at commit_ms unless the
 * part names its own time (OffsetCommit v1), expiring at expire_ms (-1:
 * never). OffsetCommit and TxnOffsetCommit write the same records. */
static void add_offset_records(record_batch_builder_t *b, kslice_t group_id,
                               const group_commit_part_t *parts, int32_t nparts, int64_t commit_ms,
                               int64_t expire_ms)
{
    assert(nparts >= 0 && commit_ms >= 0);
    kwriter_t key, value;
    kw_init(&key, 128);
    kw_init(&value, 128);
    for (int32_t i = 0; i < nparts; i++) {
        const group_commit_part_t *part = &parts[i];
        if (part->error != KAFKA_NONE)
            continue;
        kw_reset(&key);
        kw_reset(&value);
        group_record_write_offset_key(&key, group_id, part->topic, part->partition);
        group_offset_value_t v = {
            .offset = part->offset,
            .leader_epoch = part->leader_epoch,
            .metadata = part->metadata.ptr ? part->metadata : cslice(""),
            .commit_timestamp = part->commit_timestamp >= 0 ? part->commit_timestamp : commit_ms,
            .expire_timestamp = expire_ms,
        };
        group_record_write_offset_value(&value, &v);
        record_batch_add(b, key.buf, (int32_t)key.len, value.buf, (int32_t)value.len);
    }
    kw_free(&key);
    kw_free(&value);
}

void group_offset_commit(group_coordinator_t *gc, const group_commit_params_t *p,
                         group_done_fn done, void *arg)
{
    assert(done != NULL);
    assert(p->nparts >= 0);
    int16_t error;
    group_t *g;
    if (p->generation_id < 0)
        g = route_create(gc, p->group_id, true, &error);
    else
        error = route_any(gc, p->group_id, &g);
    if (error == KAFKA_NONE && g == NULL)
        error = KAFKA_ILLEGAL_GENERATION; /* Kafka's answer for an unknown group's member */
    if (error == KAFKA_NONE)
        error = commit_check_member(gc, g, p);
    const cluster_metadata_t *md = coordinator_metadata(gc->coord);
    int32_t nwrite = 0;
    for (int32_t i = 0; i < p->nparts; i++) {
        group_commit_part_t *part = &p->parts[i];
        part->error = error;
        if (error != KAFKA_NONE)
            continue;
        const md_topic_t *t =
            part->topic.ptr
                ? cluster_metadata_topic(md, (const char *)part->topic.ptr, (size_t)part->topic.len)
                : NULL;
        if (t == NULL || part->partition < 0 || part->partition >= t->npartitions)
            part->error = KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
        else if (part->metadata.ptr && part->metadata.len > gc->cfg.offset_metadata_max_bytes)
            part->error = KAFKA_OFFSET_METADATA_TOO_LARGE;
        else if (!offset_room(g, part))
            part->error = KAFKA_INVALID_COMMIT_OFFSET_SIZE;
        else
            nwrite++;
    }
    if (nwrite == 0) {
        done(arg);
        return;
    }
    commit_op_t *op = xcalloc(1, sizeof(*op));
    op->done = done;
    op->arg = arg;
    op->parts = p->parts;
    op->nparts = p->nparts;
    op->superseded = xcalloc((size_t)p->nparts, sizeof(*op->superseded));
    op->commit_ms = group_now_ms();
    op->expire_ms = p->retention_time_ms >= 0 ? op->commit_ms + p->retention_time_ms : -1;
    record_batch_builder_t b;
    record_batch_begin(&b, op->commit_ms);
    add_offset_records(&b, p->group_id, p->parts, p->nparts, op->commit_ms, op->expire_ms);
    size_t len;
    const uint8_t *batch = record_batch_finish(&b, &len);
    group_write_t *w = xcalloc(1, sizeof(*w));
    w->done = commit_stored;
    w->arg = op;
    w->group = g;
    w->is_commit = true;
    group_store_write(gc, g->partition, (uint8_t *)batch, len, w);
    record_batch_builder_free(&b);
}

/* ---- TxnOffsetCommit ---- */

typedef struct txn_commit_op {
    group_done_fn done;
    void *arg;
    group_commit_part_t *parts;
    int32_t nparts;
    int32_t nwrite; /* parts written (error NONE when written) */
    int64_t producer_id;
    int64_t commit_ms;
    bool ended;       /* the producer's marker came while it was being written */
    bool *superseded; /* per part: a tombstone was written after it */
} txn_commit_op_t;

/* The in-flight TxnOffsetCommit writes of g in its partition naming (topic,
 * partition): whether there are any and, with `supersede`, marks them as
 * preceding a tombstone for it (Kafka's removeOffsets drops pending
 * transactional offsets too). */
static bool txn_writes_of(group_coordinator_t *gc, const group_t *g, const char *topic, size_t tlen,
                          int32_t partition, bool supersede)
{
    assert(topic != NULL);
    assert(g->txn_in_flight >= 0);
    if (g->txn_in_flight == 0)
        return false;
    offsets_partition_t *p = group_part(gc, g);
    bool found = false;
    for (coord_log_write_t *lw = p ? p->log.writes_head : NULL; lw; lw = lw->next) {
        group_write_t *w = group_write_of(lw);
        if (!w->is_txn_commit || w->group != g)
            continue;
        txn_commit_op_t *op = w->arg;
        for (int32_t i = 0; i < op->nparts; i++) {
            const group_commit_part_t *part = &op->parts[i];
            if (part->error == KAFKA_NONE && part->partition == partition && part->topic.ptr &&
                (size_t)part->topic.len == tlen && memcmp(part->topic.ptr, topic, tlen) == 0) {
                found = true;
                op->superseded[i] |= supersede;
            }
        }
    }
    return found;
}

/* A marker for producer_id: its commits still being written belong to the
 * transaction it ended, so they must not become pending for the next one.
 * (Its client ended the transaction before they were answered: Kafka
 * refuses that with an IllegalStateException and they are lost.) */
static void txn_writes_end(offsets_partition_t *p, int64_t producer_id, int64_t marker_offset)
{
    for (coord_log_write_t *lw = p->log.writes_head; lw; lw = lw->next) {
        group_write_t *w = group_write_of(lw);
        /* Writes wait in offset order: from the marker on they are later
         * transactions'. */
        if (lw->base_offset > marker_offset)
            break;
        if (!w->is_txn_commit)
            continue;
        txn_commit_op_t *op = w->arg;
        if (op->producer_id == producer_id && !op->ended) {
            op->ended = true;
            VLOG_WARN(GROUP_MODULE,
                      "group %s: producer %" PRId64
                      " ended its transaction before its offsets were written; they are dropped",
                      w->group->id, producer_id);
        }
    }
}

/* Kafka's onTxnOffsetCommitAppend / failPendingTxnOffsetCommit: the
 * acknowledged write's offsets become pending, at the write's offset in the
 * log; a refused one leaves nothing behind. */
static void txn_commit_stored(group_coordinator_t *gc, group_write_t *w, int16_t error)
{
    txn_commit_op_t *op = w->arg;
    group_t *g = w->group;
    assert(w->is_txn_commit && g != NULL);
    assert(g->txn_in_flight >= op->nwrite);
    g->txn_in_flight -= op->nwrite;
    group_txn_t *txn = NULL;
    if (error == KAFKA_NONE && !g->removed && !op->ended)
        txn = group_txn_get(gc, g, op->producer_id, true);
    for (int32_t i = 0; i < op->nparts; i++) {
        group_commit_part_t *part = &op->parts[i];
        if (part->error != KAFKA_NONE)
            continue;
        part->error = error;
        if (txn == NULL || op->superseded[i])
            continue;
        kslice_t metadata = part->metadata.ptr ? part->metadata : cslice("");
        group_txn_offset_set(txn, (const char *)part->topic.ptr, (size_t)part->topic.len,
                             part->partition, part->offset, part->leader_epoch,
                             (const char *)metadata.ptr, (size_t)metadata.len, op->commit_ms,
                             w->log.base_offset);
    }
    if (txn && txn->offsets.count == 0)
        group_txn_free(gc, txn); /* every part superseded */
    op->done(op->arg);
    free(op->superseded);
    free(op);
}

/* Kafka's validateCurrentMember: a static member's instance id must map to
 * the member id given, and the member must be in the group. */
static int16_t txn_check_current_member(const group_t *g, const group_txn_commit_params_t *p)
{
    if (g == NULL)
        return KAFKA_UNKNOWN_MEMBER_ID;
    if (p->group_instance_id.ptr != NULL) {
        const group_member_t *m = group_static_member(g, p->group_instance_id);
        if (m == NULL)
            return KAFKA_UNKNOWN_MEMBER_ID;
        if (!slice_is(p->member_id, m->member_id))
            return KAFKA_FENCED_INSTANCE_ID;
    }
    return group_find_member(g, p->member_id) ? KAFKA_NONE : KAFKA_UNKNOWN_MEMBER_ID;
}

/* Kafka's validateOffsetCommit for a transactional commit (g NULL: a group
 * that does not exist yet, which Kafka creates Empty): v0-2 name no member
 * and commit to any group; from v3 a producer that names its consumer's
 * member and generation is checked against them (KIP-447). No rebalance
 * state is refused and no session is extended: the producer is not the
 * member. */
static int16_t txn_check_member(const group_t *g, const group_txn_commit_params_t *p)
{
    if (g && g->state == GROUP_DEAD)
        return KAFKA_COORDINATOR_NOT_AVAILABLE;
    if (p->generation_id < 0 && (g == NULL || g->state == GROUP_EMPTY))
        return KAFKA_NONE;
    if (p->generation_id >= 0 || p->member_id.len > 0 || p->group_instance_id.ptr != NULL) {
        int16_t error = txn_check_current_member(g, p);
        if (error != KAFKA_NONE)
            return error;
        return p->generation_id != g->generation ? KAFKA_ILLEGAL_GENERATION : KAFKA_NONE;
    }
    return KAFKA_NONE;
}

/* The request-level checks; *g_out is the group, NULL when there is none
 * yet (it is created at *partition once something is to be written). */
static int16_t txn_commit_route(group_coordinator_t *gc, const group_txn_commit_params_t *p,
                                group_t **g_out, int32_t *partition)
{
    int16_t error = route_id(gc, p->group_id, false, g_out, partition);
    if (error != KAFKA_NONE)
        return error;
    /* Kafka's transaction verification would refuse these (the
     * transactional id's producer is someone else); a batch cannot carry
     * them. */
    if (p->producer_id < 0)
        return KAFKA_INVALID_PRODUCER_ID_MAPPING;
    if (p->producer_epoch < 0)
        return KAFKA_INVALID_PRODUCER_EPOCH;
    return txn_check_member(*g_out, p);
}

void group_txn_offset_commit(group_coordinator_t *gc, const group_txn_commit_params_t *p,
                             group_done_fn done, void *arg)
{
    assert(done != NULL);
    assert(p->nparts >= 0);
    group_t *g = NULL;
    int32_t partition;
    int16_t error = txn_commit_route(gc, p, &g, &partition);
    group_txn_t *txn = g ? group_txn_get(gc, g, p->producer_id, false) : NULL;
    const size_t held =
        g ? g->offsets.count + (size_t)g->txn_offsets + (size_t)g->txn_in_flight : 0;
    const cluster_metadata_t *md = coordinator_metadata(gc->coord);
    int32_t nwrite = 0;
    for (int32_t i = 0; i < p->nparts; i++) {
        group_commit_part_t *part = &p->parts[i];
        part->error = error;
        if (error != KAFKA_NONE)
            continue;
        const char *topic = (const char *)part->topic.ptr;
        size_t topic_len = topic ? (size_t)part->topic.len : 0;
        const md_topic_t *t = topic ? cluster_metadata_topic(md, topic, topic_len) : NULL;
        if (t == NULL || part->partition < 0 || part->partition >= t->npartitions)
            part->error = KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
        else if (part->metadata.ptr && part->metadata.len > gc->cfg.offset_metadata_max_bytes)
            part->error = KAFKA_OFFSET_METADATA_TOO_LARGE;
        else if (held + (size_t)nwrite >= GROUP_MAX_OFFSETS_PER_GROUP &&
                 !(txn && offsets_find(&txn->offsets, topic, topic_len, part->partition)))
            /* Replacing the producer's own pending offset adds none; any
             * other would let a transaction's commit grow the committed
             * offsets past the bound. */
            part->error = KAFKA_INVALID_COMMIT_OFFSET_SIZE;
        else
            nwrite++;
    }
    if (nwrite > 0 && g == NULL) {
        g = create_routed(gc, p->group_id, partition, &error);
        for (int32_t i = 0; g == NULL && i < p->nparts; i++)
            p->parts[i].error = error;
    }
    if (nwrite == 0 || g == NULL) {
        done(arg);
        return;
    }
    txn_commit_op_t *op = xcalloc(1, sizeof(*op));
    op->done = done;
    op->arg = arg;
    op->parts = p->parts;
    op->nparts = p->nparts;
    op->nwrite = nwrite;
    op->producer_id = p->producer_id;
    op->superseded = xcalloc((size_t)p->nparts, sizeof(*op->superseded));
    /* Kafka's prepareTxnOffsetCommit: from now a stable OffsetFetch waits
     * for them (txn_writes_of). */
    g->txn_in_flight += nwrite;
    int64_t now = group_now_ms();
    op->commit_ms = now;
    record_batch_builder_t b;
    record_batch_begin(&b, now);
    record_batch_set_producer(&b, p->producer_id, p->producer_epoch, -1, true);
    /* A TxnOffsetCommit names no commit time: every part is committed now,
     * and a transactional commit never expires on its own. */
    add_offset_records(&b, p->group_id, p->parts, p->nparts, now, -1);
    size_t len;
    const uint8_t *batch = record_batch_finish(&b, &len);
    group_write_t *w = xcalloc(1, sizeof(*w));
    w->done = txn_commit_stored;
    w->arg = op;
    w->group = g;
    w->is_txn_commit = true;
    group_store_write(gc, g->partition, (uint8_t *)batch, len, w);
    record_batch_builder_free(&b);
}

/* ---- OffsetFetch ---- */

static int committed_cmp(const void *a, const void *b)
{
    const group_committed_t *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);
    return c ? c : (x->partition > y->partition) - (x->partition < y->partition);
}

/* o NULL: nothing committed. An unstable entry shows no offset, as
 * Kafka's does: the client retries rather than use one about to change. */
static void committed_fill(group_committed_t *out, const committed_offset_t *o, bool unstable)
{
    assert(out->topic != NULL);
    if (o == NULL || unstable) {
        out->offset = -1;
        out->leader_epoch = -1;
        out->metadata = "";
    } else {
        assert(o->partition == out->partition);
        out->offset = o->offset;
        out->leader_epoch = o->leader_epoch;
        out->metadata = o->metadata;
    }
    out->error = unstable ? KAFKA_UNSTABLE_OFFSET_COMMIT : KAFKA_NONE;
}

/* Kafka's hasPendingOffsetCommitsForTopicPartition: a regular commit still
 * being written, or a transactional one waiting for its marker. */
static bool commit_unstable(group_coordinator_t *gc, const group_t *g, const char *topic,
                            size_t topic_len, int32_t partition)
{
    return pending_commits_of(gc, g, topic, topic_len, partition, false) > 0 ||
           txn_pending_for(g, topic, topic_len, partition) ||
           txn_writes_of(gc, g, topic, topic_len, partition, false);
}

void group_offset_fetch(group_coordinator_t *gc, kslice_t group_id,
                        const group_topic_partition_t *wanted, int32_t nwanted, bool require_stable,
                        group_offsets_t *out)
{
    assert(out != NULL);
    assert(nwanted >= 0);
    memset(out, 0, sizeof(*out));
    group_t *g;
    out->error = route_any(gc, group_id, &g);
    if (out->error != KAFKA_NONE)
        return;
    if (wanted == NULL) {
        if (g == NULL || g->offsets.count == 0)
            return;
        out->offsets = xcalloc(g->offsets.count, sizeof(*out->offsets));
        for (size_t b = 0; b < g->offsets.nbuckets; b++)
            for (hnode_t *n = g->offsets.buckets[b]; n; n = n->next) {
                const committed_offset_t *o = (const committed_offset_t *)n;
                group_committed_t *c = &out->offsets[out->noffsets++];
                c->topic = o->topic;
                c->partition = o->partition;
                committed_fill(c, o,
                               require_stable && commit_unstable(gc, g, o->topic, strlen(o->topic),
                                                                 o->partition));
            }
        qsort(out->offsets, (size_t)out->noffsets, sizeof(*out->offsets), committed_cmp);
        return;
    }
    /* One allocation, the caller's to free: the entries, then a copy of
     * each wanted topic name (the request's are not NUL-terminated). */
    size_t names = 0;
    for (int32_t i = 0; i < nwanted; i++)
        names += (wanted[i].topic.ptr ? (size_t)wanted[i].topic.len : 0) + 1;
    size_t head = ((size_t)nwanted + 1) * sizeof(*out->offsets);
    out->offsets = xcalloc(1, head + names);
    char *name = (char *)out->offsets + head;
    out->noffsets = nwanted;
    for (int32_t i = 0; i < nwanted; i++) {
        group_committed_t *c = &out->offsets[i];
        kslice_t topic = wanted[i].topic;
        size_t tlen = topic.ptr ? (size_t)topic.len : 0;
        if (tlen)
            memcpy(name, topic.ptr, tlen);
        name[tlen] = '\0';
        const committed_offset_t *o = g && topic.ptr ? group_offset_find(g, (const char *)topic.ptr,
                                                                         tlen, wanted[i].partition)
                                                     : NULL;
        c->topic = name;
        c->partition = wanted[i].partition;
        /* require_stable (v7+, KIP-447): a partition whose commit is still
         * being written, or has a transaction's commit pending, answers
         * UNSTABLE_OFFSET_COMMIT; the others answer. */
        committed_fill(
            c, o, require_stable && g && commit_unstable(gc, g, name, tlen, wanted[i].partition));
        name += tlen + 1;
    }
}

/* ---- ListGroups, DescribeGroups ---- */

int16_t group_list(group_coordinator_t *gc, const kslice_t *states, int32_t nstates,
                   group_listing_t **out, int32_t *count)
{
    assert(out != NULL && count != NULL);
    int16_t error = KAFKA_NONE;
    for (int32_t i = 0; i < gc->store.nparts; i++)
        if (gc->store.parts[i] && gc->store.parts[i]->state == COORD_LOG_LOADING)
            error = KAFKA_COORDINATOR_LOAD_IN_PROGRESS;
    *out = xcalloc(gc->groups.count + 1, sizeof(**out));
    *count = 0;
    for (size_t b = 0; b < gc->groups.nbuckets; b++)
        for (hnode_t *n = gc->groups.buckets[b]; n; n = n->next) {
            const group_t *g = (const group_t *)n;
            offsets_partition_t *p = group_store_partition(gc, g->partition);
            if (p == NULL || p->log.state != COORD_LOG_ACTIVE)
                continue;
            const char *state = group_state_names[g->state];
            bool wanted = nstates == 0;
            for (int32_t s = 0; s < nstates && !wanted; s++)
                wanted = states[s].ptr && (size_t)states[s].len == strlen(state) &&
                         strncasecmp((const char *)states[s].ptr, state, strlen(state)) == 0;
            if (!wanted)
                continue;
            group_listing_t *l = &(*out)[(*count)++];
            l->group_id = g->id;
            l->protocol_type = g->protocol_type ? g->protocol_type : "";
            l->state = state;
        }
    return error;
}

void group_describe(group_coordinator_t *gc, kslice_t group_id, group_description_t *out)
{
    assert(out != NULL);
    memset(out, 0, sizeof(*out));
    group_t *g;
    out->error = route_any(gc, group_id, &g);
    out->state = group_state_names[GROUP_DEAD];
    out->protocol_type = "";
    out->protocol = "";
    if (out->error != KAFKA_NONE || g == NULL)
        return;
    out->state = group_state_names[g->state];
    out->protocol_type = g->protocol_type ? g->protocol_type : "";
    /* Kafka's summary: the protocol and the members' metadata only once
     * the group is Stable (in CompletingRebalance the assignment is not
     * there yet, and the protocol shows as ""). */
    bool chosen = g->state == GROUP_STABLE;
    out->protocol = chosen && g->protocol ? g->protocol : "";
    out->members = xcalloc((size_t)g->nmembers + 1, sizeof(*out->members));
    out->nmembers = g->nmembers;
    for (int32_t i = 0; i < g->nmembers; i++) {
        const group_member_t *m = g->members[i];
        group_member_description_t *d = &out->members[i];
        const member_protocol_t *p = chosen ? member_protocol(m, g->protocol) : NULL;
        d->member_id = m->member_id;
        d->group_instance_id = m->instance_id;
        d->client_id = m->client_id;
        d->client_host = m->client_host;
        d->metadata = p ? p->metadata : NULL;
        d->metadata_len = p ? p->metadata_len : 0;
        d->assignment = chosen ? m->assignment : NULL;
        d->assignment_len = chosen ? m->assignment_len : 0;
    }
}

/* ---- tombstones: DeleteGroups, OffsetDelete, expiry ---- */

/* Writes tombstones for `offsets` (and, when `group_too`, for the group)
 * and forgets them at once, as Kafka does: a failed write leaves them in
 * the log, where the next load finds them again. */
static void write_tombstones(group_coordinator_t *gc, group_t *g, committed_offset_t **offsets,
                             int32_t noffsets, bool group_too, group_write_t *w)
{
    assert(noffsets > 0 || group_too);
    record_batch_builder_t b;
    record_batch_begin(&b, group_now_ms());
    kwriter_t key;
    kw_init(&key, 128);
    kslice_t id = cslice(g->id);
    for (int32_t i = 0; i < noffsets; i++) {
        kw_reset(&key);
        kslice_t topic = cslice(offsets[i]->topic);
        group_record_write_offset_key(&key, id, topic, offsets[i]->partition);
        record_batch_add(&b, key.buf, (int32_t)key.len, NULL, -1);
        pending_commits_of(gc, g, offsets[i]->topic, strlen(offsets[i]->topic),
                           offsets[i]->partition, true);
        txn_drop_partition(gc, g, offsets[i]->topic, strlen(offsets[i]->topic),
                           offsets[i]->partition);
        txn_writes_of(gc, g, offsets[i]->topic, strlen(offsets[i]->topic), offsets[i]->partition,
                      true);
        group_offset_remove(g, offsets[i]);
    }
    if (group_too) {
        kw_reset(&key);
        group_record_write_metadata_key(&key, id);
        record_batch_add(&b, key.buf, (int32_t)key.len, NULL, -1);
    }
    kw_free(&key);
    size_t len;
    const uint8_t *batch = record_batch_finish(&b, &len);
    w->group = g;
    group_store_write(gc, g->partition, (uint8_t *)batch, len, w);
    record_batch_builder_free(&b);
}

static committed_offset_t **all_offsets(group_t *g, int32_t *n)
{
    committed_offset_t **v = xcalloc(g->offsets.count + 1, sizeof(*v));
    *n = 0;
    for (size_t b = 0; b < g->offsets.nbuckets; b++)
        for (hnode_t *e = g->offsets.buckets[b]; e; e = e->next)
            v[(*n)++] = (committed_offset_t *)e;
    return v;
}

typedef struct delete_op {
    group_done_fn done;
    void *arg;
    int32_t outstanding; /* writes not yet answered, plus one while issuing */
} delete_op_t;

typedef struct delete_write {
    delete_op_t *op;
    group_delete_item_t *item;
} delete_write_t;

static void delete_op_release(delete_op_t *op)
{
    assert(op->outstanding > 0);
    if (--op->outstanding == 0) {
        op->done(op->arg);
        free(op);
    }
}

static void group_deleted(group_coordinator_t *gc, group_write_t *w, int16_t error)
{
    delete_write_t *dw = w->arg;
    (void)gc;
    dw->item->error = error;
    delete_op_release(dw->op);
    free(dw);
}

void group_delete(group_coordinator_t *gc, group_delete_item_t *items, int32_t nitems,
                  group_done_fn done, void *arg)
{
    assert(done != NULL);
    assert(nitems >= 0);
    delete_op_t *op = xcalloc(1, sizeof(*op));
    op->done = done;
    op->arg = arg;
    op->outstanding = 1;
    for (int32_t i = 0; i < nitems; i++) {
        group_delete_item_t *item = &items[i];
        group_t *g;
        item->error = route_any(gc, item->group_id, &g);
        if (item->error != KAFKA_NONE)
            continue;
        if (g == NULL || g->state == GROUP_DEAD) {
            item->error = KAFKA_GROUP_ID_NOT_FOUND;
            continue;
        }
        if (g->state != GROUP_EMPTY) {
            item->error = KAFKA_NON_EMPTY_GROUP;
            continue;
        }
        int32_t n;
        committed_offset_t **offsets = all_offsets(g, &n);
        delete_write_t *dw = xcalloc(1, sizeof(*dw));
        dw->op = op;
        dw->item = item;
        group_write_t *w = xcalloc(1, sizeof(*w));
        w->done = group_deleted;
        w->arg = dw;
        op->outstanding++;
        VLOG_INFO(GROUP_MODULE, "group %s: deleted (%d committed offsets)", g->id, n);
        write_tombstones(gc, g, offsets, n, true, w);
        free(offsets);
        if (!g->removed)
            group_remove(gc, g, KAFKA_COORDINATOR_NOT_AVAILABLE);
    }
    delete_op_release(op);
}

/* The topics a consumer-protocol member subscribes to (its
 * ConsumerProtocolSubscription: version, then topics, the prefix every
 * version shares): is `topic` one? A subscription that cannot be read
 * counts as one to every topic, as Kafka's isSubscribedToTopic does when it
 * cannot tell: OffsetDelete must not drop what a member may consume. */
static bool member_subscribes(const group_member_t *m, const char *protocol, kslice_t topic)
{
    assert(protocol != NULL);
    assert(topic.ptr != NULL && topic.len >= 0);
    const member_protocol_t *p = member_protocol(m, protocol);
    if (p == NULL)
        return false; /* joined since the generation chose `protocol` */
    if (p->metadata == NULL)
        return true;
    kreader_t r;
    kr_init(&r, p->metadata, (size_t)p->metadata_len);
    int16_t version;
    int32_t n;
    if (!kr_i16(&r, &version) || !kr_array_v(&r, false, 2, &n) || n < 0)
        return true;
    for (int32_t i = 0; i < n; i++) {
        kslice_t t;
        if (!kr_string_v(&r, false, &t))
            return true;
        if (t.len == topic.len && memcmp(t.ptr, topic.ptr, (size_t)t.len) == 0)
            return true;
    }
    return false;
}

typedef struct offset_delete_op {
    group_done_fn done;
    void *arg;
    group_commit_part_t *parts;
    int32_t nparts;
} offset_delete_op_t;

static void offsets_deleted(group_coordinator_t *gc, group_write_t *w, int16_t error)
{
    offset_delete_op_t *op = w->arg;
    (void)gc;
    for (int32_t i = 0; i < op->nparts; i++)
        if (op->parts[i].error == KAFKA_NONE)
            op->parts[i].error = error;
    op->done(op->arg);
    free(op);
}

void group_offset_delete(group_coordinator_t *gc, kslice_t group_id, group_commit_part_t *parts,
                         int32_t nparts, int16_t *group_error, group_done_fn done, void *arg)
{
    assert(done != NULL && group_error != NULL);
    assert(nparts >= 0);
    group_t *g;
    *group_error = route(gc, group_id, &g); /* an empty id is INVALID_GROUP_ID here */
    if (*group_error == KAFKA_NONE && (g == NULL || g->state == GROUP_DEAD))
        *group_error = KAFKA_GROUP_ID_NOT_FOUND;
    bool consumer =
        *group_error == KAFKA_NONE && g->protocol_type && strcmp(g->protocol_type, "consumer") == 0;
    if (*group_error == KAFKA_NONE && g->nmembers > 0 && !consumer)
        *group_error = KAFKA_NON_EMPTY_GROUP;
    if (*group_error != KAFKA_NONE) {
        done(arg);
        return;
    }
    committed_offset_t **doomed = xcalloc((size_t)nparts + 1, sizeof(*doomed));
    int32_t ndoomed = 0;
    for (int32_t i = 0; i < nparts; i++) {
        group_commit_part_t *part = &parts[i];
        part->error = KAFKA_NONE;
        /* Members before their group's first generation (no protocol
         * yet) may subscribe to any topic: Kafka cannot tell (its
         * subscribedTopics is None) and keeps every offset. */
        bool subscribed = g->nmembers > 0 && g->protocol == NULL;
        for (int32_t m = 0; m < g->nmembers && !subscribed && part->topic.ptr && g->protocol; m++)
            subscribed = member_subscribes(g->members[m], g->protocol, part->topic);
        if (subscribed) {
            part->error = KAFKA_GROUP_SUBSCRIBED_TO_TOPIC;
            continue;
        }
        committed_offset_t *o = part->topic.ptr
                                    ? group_offset_find(g, (const char *)part->topic.ptr,
                                                        (size_t)part->topic.len, part->partition)
                                    : NULL;
        bool seen = false;
        for (int32_t d = 0; d < ndoomed && !seen; d++)
            seen = doomed[d] == o;
        if (o && !seen)
            doomed[ndoomed++] = o;
    }
    if (ndoomed == 0) {
        free(doomed);
        done(arg);
        return;
    }
    offset_delete_op_t *op = xcalloc(1, sizeof(*op));
    op->done = done;
    op->arg = arg;
    op->parts = parts;
    op->nparts = nparts;
    group_write_t *w = xcalloc(1, sizeof(*w));
    w->done = offsets_deleted;
    w->arg = op;
    write_tombstones(gc, g, doomed, ndoomed, false, w);
    free(doomed);
}

/* ---- expiry (KIP-211) ---- */

static void expiry_stored(group_coordinator_t *gc, group_write_t *w, int16_t error)
{
    (void)gc;
    if (error != KAFKA_NONE)
        VLOG_WARN(GROUP_MODULE, "group %s: writing expired offsets' tombstones failed: %s",
                  w->group->id, kafka_error_name(error));
}

/* An offset expires at its explicit expire time (OffsetCommit v2-4 asked
 * for one), else offsets.retention.ms after the group became empty, or
 * after the commit for a group that never had members. */
static bool offset_expired(const group_coordinator_t *gc, const group_t *g,
                           const committed_offset_t *o, int64_t now)
{
    if (o->expire_ms >= 0)
        return now >= o->expire_ms;
    /* KIP-496: a Stable consumer group's offsets of a topic no member
     * subscribes to count from their commit. */
    int64_t base = g->protocol_type && g->state == GROUP_EMPTY ? g->state_ms : o->commit_ms;
    return now - base >= gc->cfg.offsets_retention_ms;
}

/* Which offsets of g may expire at all: every one of an empty group; of a
 * Stable consumer group, those of topics none of its members subscribes to
 * (KIP-496); none otherwise. */
static bool offset_may_expire(const group_t *g, const committed_offset_t *o)
{
    if (g->state == GROUP_EMPTY)
        return true;
    if (g->state != GROUP_STABLE || g->protocol == NULL || g->protocol_type == NULL ||
        strcmp(g->protocol_type, "consumer") != 0)
        return false;
    kslice_t topic = cslice(o->topic);
    for (int32_t i = 0; i < g->nmembers; i++)
        if (member_subscribes(g->members[i], g->protocol, topic))
            return false;
    return true;
}

static void expire_group(group_coordinator_t *gc, group_t *g, int64_t now)
{
    assert(!g->removed);
    if ((g->state != GROUP_EMPTY && g->state != GROUP_STABLE) || g->refs > 0)
        return;
    committed_offset_t **doomed = xcalloc(g->offsets.count + 1, sizeof(*doomed));
    int32_t n = 0;
    for (size_t b = 0; b < g->offsets.nbuckets; b++)
        for (hnode_t *e = g->offsets.buckets[b]; e; e = e->next)
            if (offset_may_expire(g, (committed_offset_t *)e) &&
                offset_expired(gc, g, (committed_offset_t *)e, now))
                doomed[n++] = (committed_offset_t *)e;
    /* Kafka keeps a group with pending transactional offsets (hasOffsets). */
    bool group_too = g->state == GROUP_EMPTY && (size_t)n == g->offsets.count && g->txns == NULL;
    if (n > 0 || group_too) {
        VLOG_INFO(GROUP_MODULE, "group %s: %d committed offsets expired%s", g->id, n,
                  group_too ? "; the group is removed" : "");
        group_write_t *w = xcalloc(1, sizeof(*w));
        w->done = expiry_stored;
        write_tombstones(gc, g, doomed, n, group_too, w);
        if (group_too && !g->removed)
            group_remove(gc, g, KAFKA_COORDINATOR_NOT_AVAILABLE);
    }
    free(doomed);
}

static void expiry_tick(struct ev_loop *loop, ev_timer *timer, int revents)
{
    group_coordinator_t *gc = timer->data;
    (void)loop;
    (void)revents;
    int64_t now = group_now_ms();
    /* Collected first: expiring removes groups from the table. */
    group_t **all = xcalloc(gc->groups.count + 1, sizeof(*all));
    size_t n = 0;
    for (size_t b = 0; b < gc->groups.nbuckets; b++)
        for (hnode_t *e = gc->groups.buckets[b]; e; e = e->next) {
            group_t *g = (group_t *)e;
            offsets_partition_t *p = group_store_partition(gc, g->partition);
            if (p && p->log.state == COORD_LOG_ACTIVE)
                all[n++] = g;
        }
    for (size_t i = 0; i < n; i++)
        expire_group(gc, all[i], now);
    free(all);
}

/* ---- replay ---- */

void group_apply_metadata(group_coordinator_t *gc, group_t *g, const group_metadata_value_t *v)
{
    assert(!g->removed);
    group_clear_members(gc, g, KAFKA_NOT_COORDINATOR);
    free(g->protocol_type);
    free(g->protocol);
    free(g->leader_id);
    g->protocol_type = v->protocol_type.len > 0 ? slice_dup(v->protocol_type) : NULL;
    g->protocol = slice_dup(v->protocol);
    g->leader_id = slice_dup(v->leader);
    g->generation = v->generation;
    g->state_ms = v->current_state_timestamp >= 0 ? v->current_state_timestamp : group_now_ms();
    for (int32_t i = 0; i < v->nmembers && i < GROUP_MAX_MEMBERS; i++) {
        const group_member_record_t *r = &v->members[i];
        group_member_t *m = xcalloc(1, sizeof(*m));
        m->group = g;
        m->member_id = kslice_strdup(r->member_id);
        m->instance_id = slice_dup(r->group_instance_id);
        m->client_id = kslice_strdup(r->client_id);
        m->client_host = kslice_strdup(r->client_host);
        m->session_timeout_ms = r->session_timeout_ms;
        m->rebalance_timeout_ms =
            r->rebalance_timeout_ms > 0 ? r->rebalance_timeout_ms : r->session_timeout_ms;
        m->joined_seq = ++gc->member_seq;
        m->synced = true; /* it had its assignment: it synced in its generation */
        if (g->protocol) {
            m->protocols = xcalloc(1, sizeof(*m->protocols));
            m->nprotocols = 1;
            m->protocols[0].name = xstrdup(g->protocol);
            m->protocols[0].metadata = bytes_dup(r->subscription);
            m->protocols[0].metadata_len = r->subscription.ptr ? r->subscription.len : 0;
        }
        m->assignment = bytes_dup(r->assignment);
        m->assignment_len = r->assignment.ptr ? r->assignment.len : 0;
        ev_timer_init(&m->session_timer, session_expired, 0., 0.);
        m->session_timer.data = m;
        g->members = xrealloc(g->members, (size_t)(g->nmembers + 1) * sizeof(*g->members));
        g->members[g->nmembers++] = m;
    }
}

void group_loaded(group_coordinator_t *gc, group_t *g)
{
    assert(!g->removed);
    assert(g->state == GROUP_EMPTY && "replay changes no state");
    if (g->nmembers == 0) {
        g->state = GROUP_EMPTY; /* state_ms stays: KIP-211 counts from it */
        return;
    }
    /* The members carry on in their generation: their session timers start
     * now, so ones that died with the old coordinator expire in time. */
    g->state = GROUP_STABLE;
    for (int32_t i = 0; i < g->nmembers; i++)
        member_heartbeat(gc, g->members[i]);
}
