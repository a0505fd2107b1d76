/* A coordinator's state log: the partitions of an internal compacted topic
 * (__consumer_offsets, __transaction_state) that this broker leads, as the
 * coordinator owning them sees them. The rules both coordinators follow
 * live here once: a partition is NOT_LEADER, LOADING (its leader replays
 * every record, a bounded chunk per loop iteration) or ACTIVE (serving);
 * writes are leader appends that wait, in offset order, until the high
 * watermark passes them (or their timeout); losing the leadership, or a new
 * leader epoch, fails the waiting writes with NOT_COORDINATOR and drops what
 * the partition's load built. What a record means, what a write carries and
 * how a refusal maps to a coordinator's error are the owner's callbacks.
 *
 * It lives in broker/replica because it is the leader-side view of a replica
 * partition: it needs only the replica manager, the partition log and the
 * loop, which both coordinator libraries already link through
 * vltava_replica. Locality: the broker's loop thread. */
#ifndef VLTAVA_COORD_LOG_H
#define VLTAVA_COORD_LOG_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct replica_manager;

/* Bytes replayed per loop iteration while loading: large enough that a
 * partition of 100,000 records loads in well under a second, small enough
 * that the loop keeps serving other partitions and clients in between. */
#define COORD_LOG_LOAD_CHUNK_BYTES (4 << 20)

typedef enum coord_log_state {
    COORD_LOG_NOT_LEADER,
    COORD_LOG_LOADING,
    COORD_LOG_ACTIVE,
} coord_log_state_t;

/* The part of a write the log keeps; the first member of the owner's write
 * (group_write_t, txn_write_t), which the owner allocates and the log hands
 * back to the owner's write_done exactly once. */
typedef struct coord_log_write {
    struct coord_log_write *next;     /* FIFO in its partition, by offset */
    struct coord_log_partition *part; /* NULL: refused before any append */
    int64_t base_offset;              /* of its batch, once appended */
    int64_t last_offset;
    ev_timer timer; /* the owner's timeout, from the append on */
} coord_log_write_t;

/* One partition; the first member of the owner's partition type (sized by
 * coord_log_init's part_size). */
typedef struct coord_log_partition {
    struct coord_log *log;
    int32_t id;
    coord_log_state_t state;
    int32_t leader_epoch; /* the epoch it was loaded at (the coordinator epoch) */
    int64_t load_offset;  /* LOADING: the next offset to replay */
    int64_t load_started_ms;
    int64_t loaded_records; /* counted by the owner's replay_batch */
    ev_timer load_timer;    /* one bounded chunk per loop iteration (not ev_idle: a busy loop
                             * would starve it) */
    coord_log_write_t *writes_head, *writes_tail;
} coord_log_partition_t;

typedef struct coord_log_ops {
    /* Replays one whole batch (len bytes, its header readable) of p while
     * it loads; records below p->load_offset were replayed already. Counts
     * p->loaded_records. */
    void (*replay_batch)(void *owner, coord_log_partition_t *p, const uint8_t *batch, size_t len);
    /* p is ACTIVE now: what its load built goes live. Returns how many
     * entities (groups, ids) it holds, for the log line. */
    int64_t (*loaded)(void *owner, coord_log_partition_t *p);
    /* p is NOT_LEADER and its writes were failed: drops what its load built
     * (pending calls answered with error). Returns how many it dropped. */
    int32_t (*unloaded)(void *owner, coord_log_partition_t *p, int16_t error);
    /* Ends w (out of its queue; its timer stopped): applies the outcome,
     * runs the owner's done and frees w. */
    void (*write_done)(void *owner, coord_log_write_t *w, int16_t error);
    /* The error of a write whose timeout passed. */
    int16_t (*timed_out_error)(const coord_log_write_t *w);
    /* The coordinator's answer for an append the replica manager refused. */
    int16_t (*append_error)(const coord_log_write_t *w, int16_t error);
} coord_log_ops_t;

/* Names in the log lines: "%s-%d: leader at epoch %d, loading <loading>
 * from offset", "loaded N records, N <entities> in N ms (<epoch> %d)",
 * "no longer leader; dropped N <entities>". */
typedef struct coord_log_names {
    const char *module; /* vlog module */
    const char *topic;
    const char *loading;
    const char *entities;
    const char *epoch;
} coord_log_names_t;

typedef struct coord_log {
    struct ev_loop *loop;
    struct replica_manager *replicas;
    const coord_log_ops_t *ops;
    const coord_log_names_t *names;
    void *owner;
    size_t part_size;              /* of the owner's partition type */
    coord_log_partition_t **parts; /* indexed by partition id; NULL: never led */
    int32_t nparts;
} coord_log_t;

/* ops and names outlive log; part_size >= sizeof(coord_log_partition_t). */
void coord_log_init(coord_log_t *log, struct ev_loop *loop, struct replica_manager *replicas,
                    const coord_log_ops_t *ops, const coord_log_names_t *names, void *owner,
                    size_t part_size);

/* Partition id, or NULL when this broker never led it. */
coord_log_partition_t *coord_log_partition(const coord_log_t *log, int32_t id);

/* The answer for a request routed to partition id (-1: the topic does not
 * exist): NONE when ACTIVE, COORDINATOR_LOAD_IN_PROGRESS while LOADING,
 * NOT_COORDINATOR otherwise. */
int16_t coord_log_route(const coord_log_t *log, int32_t id);

/* Partition id if it is ACTIVE and this broker still leads it at the epoch
 * it was loaded at; NULL otherwise (a write there gets NOT_COORDINATOR). */
coord_log_partition_t *coord_log_writable(coord_log_t *log, int32_t id);

/* Appends batch (still the caller's afterwards) to p (from
 * coord_log_writable, in this loop iteration) and queues w until the high
 * watermark passes it or timeout_ms does. The log owns w from here: on a
 * refused append, a timeout, completion or an unload the owner's
 * write_done runs once with the error. */
void coord_log_append(coord_log_t *log, coord_log_partition_t *p, uint8_t *batch, size_t len,
                      coord_log_write_t *w, int32_t timeout_ms);

/* The replica event for partition id: loads it (this broker leads it),
 * unloads it (it does not, or at a new epoch: then reloads), or completes
 * the writes the high watermark now covers. */
void coord_log_partition_event(coord_log_t *log, int32_t id);

/* Unloads every partition (writes failed with COORDINATOR_NOT_AVAILABLE);
 * free_part, if set, runs on each before it is freed. */
void coord_log_free(coord_log_t *log, void (*free_part)(coord_log_partition_t *p));

#endif
