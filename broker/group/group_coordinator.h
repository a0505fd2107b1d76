/* The group coordinator: Kafka's classic consumer-group protocol (JoinGroup,
 * SyncGroup, Heartbeat, LeaveGroup), committed offsets, and the group
 * listing, description and deletion that admin clients use, for the groups
 * whose __consumer_offsets partition this broker leads.
 *
 * Where a group lives: group G belongs to partition
 * group_partition_for(G, offsets.topic.num.partitions) of __consumer_offsets,
 * and its coordinator is that partition's leader. Nothing about groups is in
 * ZooKeeper: offsets and group metadata are records in that partition, in
 * Kafka's own key and value schemas (group_records.h), and a broker that
 * becomes the partition's leader replays it to rebuild its groups
 * (answering COORDINATOR_LOAD_IN_PROGRESS meanwhile); one that loses the
 * leadership drops them (NOT_COORDINATOR).
 *
 * Transactional offset commits (TxnOffsetCommit) are written to the same
 * partition as a producer's transactional batch and stay pending per (group,
 * producer id) until that producer's transaction marker in the partition
 * commits or drops them (group_coordinator_txn_completed, and on replay the
 * marker itself). Of a regular and a transactional commit for one
 * partition, the one appended later wins (Kafka's rule).
 *
 * Durability: a write (a commit, a completed rebalance, a deletion) is
 * acknowledged only when the partition's high watermark passes it
 * (offsets.commit.required.acks=-1), so an acknowledged commit survives the
 * coordinator's death.
 *
 * Calls from broker/api: the kslice_t fields of every *_params struct are
 * views into the request frame; the coordinator copies what it keeps.
 * Results handed to a `done` callback, or filled into an out struct, are
 * views into the coordinator's state, valid until control returns to the
 * loop (copy what you keep). A `done` callback runs exactly once: either
 * before the call that took it returns, or later on the loop; the caller
 * must handle both. group_coordinator_free() completes whatever is still
 * pending with COORDINATOR_NOT_AVAILABLE.
 *
 * Locality: the broker's loop thread, like everything in the broker.
 */
#ifndef VLTAVA_GROUP_COORDINATOR_H
#define VLTAVA_GROUP_COORDINATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kafka_codec.h"

struct ev_loop;
struct coordinator;
struct replica_manager;

#define GROUP_OFFSETS_TOPIC "__consumer_offsets"

/* Hard bounds, whatever the configuration says: each caps memory that a
 * client could otherwise grow without limit. */
#define GROUP_MAX_GROUPS            100000 /* groups one broker coordinates */
#define GROUP_MAX_MEMBERS           10000  /* ceiling of group.max.size */
#define GROUP_MAX_OFFSETS_PER_GROUP 100000 /* committed + pending transactional, per group */
#define GROUP_MAX_ID_BYTES          1024   /* group, member and instance ids */
/* A member's protocol metadata (all protocols together) and an assignment:
 * librdkafka's own limit for a whole JoinGroup response is 100 MB, but a
 * real consumer's subscription is a few KiB. */
#define GROUP_MAX_METADATA_BYTES (1 << 20)

/* Filled by broker/config.c, whose option table holds the defaults named
 * here. */
typedef struct group_config {
    int32_t offsets_topic_partitions;            /* offsets.topic.num.partitions (50) */
    int16_t offsets_topic_replication_factor;    /* offsets.topic.replication.factor (3) */
    int32_t offsets_topic_segment_bytes;         /* offsets.topic.segment.bytes (100 MiB) */
    int64_t offsets_retention_ms;                /* offsets.retention.ms (7 days) */
    int64_t offsets_retention_check_interval_ms; /* offsets.retention.check.interval.ms (10 min) */
    int32_t offsets_commit_timeout_ms;           /* offsets.commit.timeout.ms (5000) */
    int32_t offset_metadata_max_bytes;           /* offset.metadata.max.bytes (4096) */
    int32_t initial_rebalance_delay_ms;          /* group.initial.rebalance.delay.ms (3000) */
    int32_t min_session_timeout_ms;              /* group.min.session.timeout.ms (6000) */
    int32_t max_session_timeout_ms;              /* group.max.session.timeout.ms (1800000) */
    int32_t max_size;                            /* group.max.size (1000; <= GROUP_MAX_MEMBERS) */
} group_config_t;

typedef struct group_coordinator group_coordinator_t;

/* Serves the offsets partitions this broker leads now (those assigned while
 * the coordinator started) and from then on those the events name. */
group_coordinator_t *group_coordinator_new(struct ev_loop *loop, const group_config_t *cfg,
                                           struct replica_manager *replicas,
                                           struct coordinator *coord);
/* Completes every pending operation with COORDINATOR_NOT_AVAILABLE, stops
 * the timers and frees. Call before the replica manager is freed. */
void group_coordinator_free(group_coordinator_t *gc);

/* The replica manager's listener events (role change, high-watermark move,
 * partition removed), forwarded for every partition: the coordinator acts
 * on those of __consumer_offsets (load or unload its groups, acknowledge
 * writes the high watermark now covers) and ignores the rest. */
void group_coordinator_partition_event(group_coordinator_t *gc, const char *topic,
                                       int32_t partition);

/* Kafka's rule: abs(java.lang.String.hashCode(key)) % npartitions, with
 * the UTF-16 code units of the key (Utils.abs: INT32_MIN maps to 0). */
int32_t group_partition_for(const uint8_t *key, size_t len, int32_t npartitions);

/* ---- JoinGroup ---- */

typedef struct group_protocol {
    kslice_t name;
    kslice_t metadata;
} group_protocol_t;

typedef struct group_join_params {
    int16_t version; /* the JoinGroup version (rules differ: v4+ KIP-394, v5+ static) */
    kslice_t group_id;
    int32_t session_timeout_ms;
    int32_t rebalance_timeout_ms; /* v0: the caller passes session_timeout_ms */
    kslice_t member_id;           /* "" for a member that has none yet */
    kslice_t group_instance_id;   /* ptr NULL: a dynamic member */
    kslice_t protocol_type;
    const group_protocol_t *protocols;
    int32_t nprotocols;
    kslice_t client_id;      /* the request header's; nullable */
    const char *client_host; /* "/1.2.3.4", as Kafka reports it */
} group_join_params_t;

typedef struct group_join_member {
    const char *member_id;
    const char *group_instance_id; /* NULL: none */
    const uint8_t *metadata;       /* the chosen protocol's metadata */
    int32_t metadata_len;
} group_join_member_t;

typedef struct group_join_result {
    int16_t error;
    int32_t generation_id;              /* -1 on error */
    const char *protocol_type;          /* NULL: none (write null at v7+) */
    const char *protocol_name;          /* NULL: none */
    const char *leader;                 /* "" on error */
    bool skip_assignment;               /* v9 (KIP-814); always false here */
    const char *member_id;              /* the member's id ("" on most errors) */
    const group_join_member_t *members; /* the leader gets every member */
    int32_t nmembers;
} group_join_result_t;

typedef void (*group_join_done_fn)(void *arg, const group_join_result_t *res);
void group_join(group_coordinator_t *gc, const group_join_params_t *p, group_join_done_fn done,
                void *arg);

/* ---- SyncGroup ---- */

typedef struct group_assignment {
    kslice_t member_id;
    kslice_t assignment;
} group_assignment_t;

typedef struct group_sync_params {
    int16_t version;
    kslice_t group_id;
    int32_t generation_id;
    kslice_t member_id;
    kslice_t group_instance_id;            /* nullable */
    kslice_t protocol_type;                /* v5+; ptr NULL: not sent */
    kslice_t protocol_name;                /* v5+; ptr NULL: not sent */
    const group_assignment_t *assignments; /* only the leader's carries any */
    int32_t nassignments;
} group_sync_params_t;

typedef struct group_sync_result {
    int16_t error;
    const char *protocol_type; /* NULL: none */
    const char *protocol_name; /* NULL: none */
    const uint8_t *assignment; /* len 0 on error */
    int32_t assignment_len;
} group_sync_result_t;

typedef void (*group_sync_done_fn)(void *arg, const group_sync_result_t *res);
void group_sync(group_coordinator_t *gc, const group_sync_params_t *p, group_sync_done_fn done,
                void *arg);

/* ---- Heartbeat, LeaveGroup (answered at once) ---- */

int16_t group_heartbeat(group_coordinator_t *gc, kslice_t group_id, int32_t generation_id,
                        kslice_t member_id, kslice_t group_instance_id);

typedef struct group_leave_member {
    kslice_t member_id;         /* "" with a group_instance_id: find it by that */
    kslice_t group_instance_id; /* nullable */
    int16_t error;              /* out */
} group_leave_member_t;

/* Returns the request-level error (NOT_COORDINATOR, ...); when it is NONE
 * each member's own error is filled in. v0-2 callers pass one member and
 * answer with its error. */
int16_t group_leave(group_coordinator_t *gc, kslice_t group_id, group_leave_member_t *members,
                    int32_t nmembers);

/* ---- OffsetCommit ---- */

typedef struct group_commit_part {
    kslice_t topic;
    int32_t partition;
    int64_t offset;
    int32_t leader_epoch;     /* -1: none */
    int64_t commit_timestamp; /* v1 only; -1: now */
    kslice_t metadata;        /* nullable */
    int16_t error;            /* out */
} group_commit_part_t;

typedef struct group_commit_params {
    int16_t version;
    kslice_t group_id;
    int32_t generation_id; /* -1: a commit from outside the group protocol */
    kslice_t member_id;
    kslice_t group_instance_id; /* nullable */
    int64_t retention_time_ms;  /* v2-4; -1: offsets.retention.ms */
    group_commit_part_t *parts; /* the caller's; kept until done runs */
    int32_t nparts;
} group_commit_params_t;

/* done: every part's error is set (NONE once the high watermark covers the
 * commit). */
typedef void (*group_done_fn)(void *arg);
void group_offset_commit(group_coordinator_t *gc, const group_commit_params_t *p,
                         group_done_fn done, void *arg);

/* ---- TxnOffsetCommit, and the transactions' completion ---- */

typedef struct group_txn_commit_params {
    int16_t version;
    kslice_t group_id;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t generation_id;      /* v3+ (KIP-447); -1 before */
    kslice_t member_id;         /* v3+; "" before */
    kslice_t group_instance_id; /* v3+, nullable; null before */
    group_commit_part_t *parts; /* the caller's; kept until done runs (uses topic, partition,
                                 * offset, leader_epoch, metadata, error) */
    int32_t nparts;
} group_txn_commit_params_t;

/* Kafka's handleTxnCommitOffsets: the offsets are written to the group's
 * __consumer_offsets partition as one transactional batch of producer_id
 * at producer_epoch and stay pending, invisible to OffsetFetch (which
 * answers UNSTABLE_OFFSET_COMMIT for them when asked for stable offsets),
 * until group_coordinator_txn_completed commits or drops them. done: every
 * part's error is set (NONE once the high watermark covers the write). The
 * transaction's membership of the partition (KIP-890's verification) is
 * not checked here. */
void group_txn_offset_commit(group_coordinator_t *gc, const group_txn_commit_params_t *p,
                             group_done_fn done, void *arg);

/* A transaction marker for producer_id was written at marker_offset to
 * __consumer_offsets partition offsets_partition, which this broker leads:
 * its pending offsets become committed (commit) or are dropped (abort),
 * and its writes still in flight below the marker end with it (those
 * above belong to a later transaction). */
void group_coordinator_txn_completed(struct group_coordinator *gc, int32_t offsets_partition,
                                     int64_t producer_id, bool commit, int64_t marker_offset);

/* ---- OffsetFetch ---- */

typedef struct group_topic_partition {
    kslice_t topic;
    int32_t partition;
} group_topic_partition_t;

typedef struct group_committed {
    const char *topic;
    int32_t partition;
    int64_t offset;       /* -1: nothing committed */
    int32_t leader_epoch; /* -1: none */
    const char *metadata; /* "" when none */
    int16_t error;
} group_committed_t;

typedef struct group_offsets {
    int16_t error; /* group-level: NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS, ... */
    group_committed_t *offsets; /* heap, the caller frees; with `wanted`, the topic names
                                 * live in the same allocation */
    int32_t noffsets;
} group_offsets_t;

/* wanted == NULL: every committed offset of the group, grouped by topic
 * (consecutive entries of one topic). Otherwise one entry per wanted
 * partition, in the order asked. require_stable (v7+): a partition with a
 * commit still being written answers UNSTABLE_OFFSET_COMMIT. */
void group_offset_fetch(group_coordinator_t *gc, kslice_t group_id,
                        const group_topic_partition_t *wanted, int32_t nwanted, bool require_stable,
                        group_offsets_t *out);

/* ---- ListGroups, DescribeGroups ---- */

typedef struct group_listing {
    const char *group_id;
    const char *protocol_type; /* "" for a group that only commits */
    const char *state;         /* Kafka's: "Empty", "Stable", ... */
} group_listing_t;

/* The groups this broker coordinates whose state is in `states` (nstates
 * 0: all; names compared case-insensitively, as Kafka does). Returns
 * NONE or COORDINATOR_LOAD_IN_PROGRESS (a partition is still loading; the
 * groups of the others are listed all the same). *out is heap, the caller
 * frees it. */
int16_t group_list(group_coordinator_t *gc, const kslice_t *states, int32_t nstates,
                   group_listing_t **out, int32_t *count);

typedef struct group_member_description {
    const char *member_id;
    const char *group_instance_id; /* NULL: none */
    const char *client_id;
    const char *client_host;
    const uint8_t *metadata; /* the chosen protocol's */
    int32_t metadata_len;
    const uint8_t *assignment;
    int32_t assignment_len;
} group_member_description_t;

typedef struct group_description {
    int16_t error;
    const char *state; /* "Dead" for a group that does not exist */
    const char *protocol_type;
    const char *protocol;                /* "" unless Stable (members' metadata too) */
    group_member_description_t *members; /* heap, the caller frees */
    int32_t nmembers;
} group_description_t;

void group_describe(group_coordinator_t *gc, kslice_t group_id, group_description_t *out);

/* ---- DeleteGroups, OffsetDelete ---- */

typedef struct group_delete_item {
    kslice_t group_id;
    int16_t error; /* out: NONE, NON_EMPTY_GROUP, GROUP_ID_NOT_FOUND, NOT_COORDINATOR, ... */
} group_delete_item_t;

/* Writes the groups' tombstones (and their offsets'); done runs once every
 * item's error is set. items stay the caller's until then. */
void group_delete(group_coordinator_t *gc, group_delete_item_t *items, int32_t nitems,
                  group_done_fn done, void *arg);

/* OffsetDelete v0: the group-level error is passed to done through
 * *group_error (set before done runs); each part's error is set
 * (GROUP_SUBSCRIBED_TO_TOPIC when a member of a consumer group still
 * subscribes to its topic). Uses parts' topic, partition and error only. */
void group_offset_delete(group_coordinator_t *gc, kslice_t group_id, group_commit_part_t *parts,
                         int32_t nparts, int16_t *group_error, group_done_fn done, void *arg);

#endif
