/* Module-internal: the group coordinator's state, shared by the protocol
 * (group_coordinator.c) and the store (group_store.c: the __consumer_offsets
 * partitions this broker leads, their loading and the writes waiting on
 * their high watermark). Locality: the broker's loop thread. */
#ifndef VLTAVA_GROUP_INTERNAL_H
#define VLTAVA_GROUP_INTERNAL_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coord_log.h"
#include "group_coordinator.h"

#define GROUP_MODULE "group"

/* ---- a small intrusive hash table (chained, power-of-two buckets) ---- */

typedef struct hnode {
    struct hnode *next;
    uint64_t hash;
} hnode_t;

typedef struct htable {
    hnode_t **buckets;
    size_t nbuckets; /* 0 or a power of two */
    size_t count;
} htable_t;

void htable_insert(htable_t *t, hnode_t *n);
void htable_remove(htable_t *t, hnode_t *n);
/* The chain that may hold `hash`; NULL when the table is empty. */
hnode_t *htable_chain(const htable_t *t, uint64_t hash);
void htable_free(htable_t *t);

/* ---- groups ---- */

typedef enum group_state {
    GROUP_EMPTY,
    GROUP_PREPARING_REBALANCE,
    GROUP_COMPLETING_REBALANCE,
    GROUP_STABLE,
    GROUP_DEAD,
} group_state_t;

typedef struct member_protocol {
    char *name;
    uint8_t *metadata;
    int32_t metadata_len;
} member_protocol_t;

typedef struct group group_t;

typedef struct group_member {
    group_t *group;
    char *member_id;
    char *instance_id; /* NULL: a dynamic member */
    char *client_id;
    char *client_host;
    int32_t session_timeout_ms;
    int32_t rebalance_timeout_ms;
    member_protocol_t *protocols; /* in the member's order of preference */
    int32_t nprotocols;
    uint8_t *assignment;
    int32_t assignment_len;
    /* A JoinGroup (SyncGroup) waiting for the rebalance (the assignment). */
    group_join_done_fn join_done;
    void *join_arg;
    group_sync_done_fn sync_done;
    void *sync_arg;
    ev_timer session_timer; /* session.timeout.ms since the last sign of life */
    int64_t joined_seq;     /* order of joining, for the leader's choice */
    bool synced;            /* sent its SyncGroup for the current generation */
} group_member_t;

/* A dynamic member that got MEMBER_ID_REQUIRED and has yet to rejoin. */
typedef struct pending_member {
    char *member_id;
    int64_t expires_ms;
} pending_member_t;

/* A committed offset, or a transactional one still pending (group_txn_t). */
typedef struct committed_offset {
    hnode_t node; /* keyed by (topic, partition) */
    char *topic;
    int32_t partition;
    int64_t offset;
    int32_t leader_epoch;
    char *metadata;
    int64_t commit_ms;
    int64_t expire_ms; /* -1: by offsets.retention.ms */
    /* The base offset of the batch holding its record in the offsets
     * partition (Kafka's appendedBatchOffset): of a regular and a
     * transactional commit for one partition, the one appended later wins,
     * whatever order they complete in. */
    int64_t log_offset;
} committed_offset_t;

/* One producer's transactional offset commits to one group, written and
 * acknowledged, invisible to OffsetFetch until the producer's transaction
 * marker in the group's offsets partition commits them (or drops them:
 * abort). Kafka's pendingTransactionalOffsetCommits; the ones still being
 * written are the partition's in-flight writes (is_txn_commit). */
typedef struct group_txn {
    hnode_t node; /* in its partition's txns, keyed by producer id */
    int64_t producer_id;
    group_t *group;
    struct group_txn *next; /* the group's other producers' */
    htable_t offsets;       /* committed_offset_t, by (topic, partition) */
} group_txn_t;

struct group {
    hnode_t node; /* in the coordinator's groups, keyed by id */
    char *id;
    int32_t partition; /* of __consumer_offsets */
    group_state_t state;
    int64_t state_ms; /* when it entered its state (KIP-211 expiry from Empty) */
    int32_t generation;
    char *protocol_type; /* NULL: none (a group that only commits) */
    char *protocol;      /* chosen for this generation; NULL: none */
    char *leader_id;     /* NULL: none */
    group_member_t **members;
    int32_t nmembers;
    pending_member_t *pending;
    int32_t npending;
    ev_timer rebalance_timer; /* the join phase's deadline (or the initial delay) */
    ev_timer pending_timer;   /* the first pending member id's expiry, in a join phase */
    bool initial_delay;       /* the timer is group.initial.rebalance.delay.ms */
    bool new_member_added;    /* during the initial delay */
    int32_t delay_remaining_ms;
    htable_t offsets;          /* committed_offset_t */
    group_txn_t *txns;         /* pending transactional offsets, per producer */
    int32_t txn_offsets;       /* entries across txns */
    int32_t txn_in_flight;     /* offsets of TxnOffsetCommit writes not yet acknowledged;
                                * with offsets.count and txn_offsets, at most
                                * GROUP_MAX_OFFSETS_PER_GROUP from live commits */
    int32_t refs;              /* writes in flight that name the group */
    int32_t commits_in_flight; /* OffsetCommit writes not yet acknowledged */
    bool removed;              /* unlinked; freed when refs reaches 0 */
    group_coordinator_t *gc;
};

/* ---- the offsets partitions this broker leads ---- */

struct group_write;
/* Runs once per write: error NONE when the high watermark passed it. */
typedef void (*group_write_done_fn)(group_coordinator_t *gc, struct group_write *w, int16_t error);

typedef struct group_write {
    coord_log_write_t log; /* first: the store's queue, offsets and timeout */
    group_t *group;        /* holds a ref; NULL: none */
    group_write_done_fn done;
    void *arg;          /* done's, which frees it */
    int32_t generation; /* SyncGroup: the generation it stores */
    bool is_commit;     /* OffsetCommit (require_stable asks for these) */
    bool is_txn_commit; /* TxnOffsetCommit (its pending offsets are in group_txn_t) */
    bool is_metadata;   /* a GroupMetadata value (store_group), not tombstones */
} group_write_t;

_Static_assert(offsetof(group_write_t, log) == 0, "the store's queue holds group_write_t");

/* The write whose queue link lw is. */
static inline group_write_t *group_write_of(coord_log_write_t *lw)
{
    return (group_write_t *)lw;
}

typedef struct offsets_partition {
    coord_log_partition_t log; /* first: its state, load and waiting writes */
    htable_t txns;             /* group_txn_t of this partition's groups, by producer id */
} offsets_partition_t;
_Static_assert(offsetof(offsets_partition_t, log) == 0, "the store allocates these");

struct group_coordinator {
    struct ev_loop *loop;
    group_config_t cfg;
    struct replica_manager *replicas;
    struct coordinator *coord;
    htable_t groups;       /* group_t by id */
    coord_log_t store;     /* the offsets partitions (of offsets_partition_t) */
    ev_timer expiry_timer; /* offsets.retention.check.interval.ms */
    int64_t member_seq;
    uint64_t rng; /* member id suffixes */
    bool stopping;
};

/* ---- store (group_store.c) ---- */

/* Sets up gc->store; before the first partition event. */
void group_store_init(group_coordinator_t *gc);
/* Offsets partition id, or NULL when this broker never led it. */
offsets_partition_t *group_store_partition(group_coordinator_t *gc, int32_t id);

/* The partition for a group id (from the metadata's partition count), and
 * the error a request for it gets: NONE when it is loaded here,
 * COORDINATOR_LOAD_IN_PROGRESS while loading, NOT_COORDINATOR otherwise. */
int16_t group_store_route(group_coordinator_t *gc, const uint8_t *id, size_t len,
                          int32_t *partition);

/* Appends `batch` (a record batch built with record_batch.h; still the
 * caller's afterwards) to offsets partition `partition` and queues `w` (its
 * done, arg, group, generation set by the caller) until the high watermark
 * passes it. On a refused append w->done runs at once with the error.
 * Takes a ref on w->group, and w itself: the store frees it once w->done
 * has run. */
void group_store_write(group_coordinator_t *gc, int32_t partition, uint8_t *batch, size_t len,
                       group_write_t *w);

/* The replica event for one offsets partition: load, unload, or complete
 * the writes the high watermark now covers. */
void group_store_partition_event(group_coordinator_t *gc, int32_t partition);
void group_store_free(group_coordinator_t *gc);

/* ---- groups (group_coordinator.c), used by the store while loading ---- */

group_t *group_find(group_coordinator_t *gc, const char *id, size_t len);
group_t *group_create(group_coordinator_t *gc, const char *id, size_t len, int32_t partition);
/* Unlinks g (its members' pending calls answered with `error`); frees it
 * now, or when its last write completes. */
void group_remove(group_coordinator_t *gc, group_t *g, int16_t error);
void group_release(group_t *g);
committed_offset_t *group_offset_find(group_t *g, const char *topic, size_t topic_len,
                                      int32_t partition);
/* Sets (topic, partition)'s committed offset, appended at log_offset,
 * unless the one there was appended later (Kafka's olderThan rule).
 * Returns whether it was set. */
bool group_offset_set(group_t *g, const char *topic, size_t topic_len, int32_t partition,
                      int64_t offset, int32_t leader_epoch, const char *metadata,
                      size_t metadata_len, int64_t commit_ms, int64_t expire_ms,
                      int64_t log_offset);
void group_offset_remove(group_t *g, committed_offset_t *o);

/* ---- pending transactional offsets (group_coordinator.c) ---- */

/* The producer's pending offsets in g; with create, a new empty one when
 * there are none. */
group_txn_t *group_txn_get(group_coordinator_t *gc, group_t *g, int64_t producer_id, bool create);
/* Records (or replaces) a pending offset of txn's producer, written at
 * log_offset. */
void group_txn_offset_set(group_txn_t *txn, const char *topic, size_t topic_len, int32_t partition,
                          int64_t offset, int32_t leader_epoch, const char *metadata,
                          size_t metadata_len, int64_t commit_ms, int64_t log_offset);
/* Drops txn's pending offset for (topic, partition), if any (a tombstone in
 * a transactional batch); txn itself stays, empty or not. */
void group_txn_offset_drop(group_txn_t *txn, const char *topic, size_t topic_len,
                           int32_t partition);
/* Unlinks and frees txn (its offsets dropped). */
void group_txn_free(group_coordinator_t *gc, group_txn_t *txn);
/* The marker for producer_id in offsets partition p: every group's pending
 * offsets of that producer are committed (by the order rule) or dropped;
 * its commits still being written are dropped when acknowledged. */
void group_txns_complete(group_coordinator_t *gc, offsets_partition_t *p, int64_t producer_id,
                         bool commit, int64_t marker_offset);
/* Replaces g's generation state from a GroupMetadataValue record (replay). */
struct group_metadata_value;
void group_apply_metadata(group_coordinator_t *gc, group_t *g,
                          const struct group_metadata_value *v);
/* After a partition's load: loaded groups with members become Stable with
 * their session timers running; the others Empty. */
void group_loaded(group_coordinator_t *gc, group_t *g);
int64_t group_now_ms(void);

#endif
