/* The coordinator's state and the ZooKeeper bridge, shared by
 * coordinator.c (session, registration, metadata loading), controller.c
 * (election and the controller's writes) and zk_bridge.c. Module-internal.
 *
 * Threading: ZooKeeper's threads run zk_bridge.c's watcher and completion
 * functions, which only copy their arguments into a zk_call_t / watch event,
 * append it to the queue under `mu` and ev_async_send() the loop. Every
 * other function here runs on the loop thread. */
#ifndef VLTAVA_COORD_STATE_H
#define VLTAVA_COORD_STATE_H

#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>
#include <zookeeper/zookeeper.h>

#include "coord_internal.h"

struct rpc;

/* One asynchronous ZooKeeper call. Owned by the bridge: created on the loop,
 * handed to ZooKeeper, queued back, given to `done` on the loop and freed by
 * the bridge after `done` returns. */
typedef struct zk_call zk_call_t;
typedef void (*zk_done_fn)(coordinator_t *c, zk_call_t *call);

struct zk_call {
    zk_call_t *next;                    /* queue link */
    zk_call_t *track_prev, *track_next; /* in-flight list (under mu) */
    bool tracked;
    bool always_complete; /* run `done` even while stopping (admin requests) */
    coordinator_t *c;
    uint64_t session_gen; /* the handle it was issued on */
    zk_done_fn done;
    void *arg;
    int32_t i1, i2; /* caller's indices (topic, partition, ...) */
    char *path;     /* owned */
    /* result, filled on ZooKeeper's thread */
    int rc;
    char *data; /* owned copy; NULL when none */
    int data_len;
    struct Stat stat;
    char **children; /* owned */
    int nchildren;
    /* multi */
    int nops;
    zoo_op_t *ops;
    zoo_op_result_t *results;
    struct Stat *stats; /* per op, for set ops */
    char **bufs;        /* owned paths and payloads of the ops */
    int nbufs;
};

/* A watch or session event, queued from ZooKeeper's thread. */
typedef struct zk_watch_event {
    struct zk_watch_event *next;
    uint64_t session_gen;
    int type;
    int state;
    char *path; /* owned */
} zk_watch_event_t;

/* Per-topic ZooKeeper facts the controller needs beside the public
 * metadata: znode versions for conditional writes. */
typedef struct topic_zk {
    int32_t assignment_version;
    int32_t *state_version; /* per partition; -1: state znode missing */
    int64_t *state_mzxid;   /* per partition: the state's last write (mzxid) */
    bool has_config;
} topic_zk_t;

typedef struct loader loader_t;
typedef struct admin_waiter admin_waiter_t;
typedef struct controlled_shutdown controlled_shutdown_t;

/* One partition, by topic name (owned). */
typedef struct partition_ref {
    char *topic;
    int32_t partition;
} partition_ref_t;

/* What a reload reads beyond the znodes every reload reads (/brokers/ids
 * and each registration, /controller, /controller_epoch,
 * /admin/delete_topics: their number does not grow with the partitions).
 * Watch events add to it: a ZooKeeper watch stays armed until it fires, so
 * only what fired needs reading (and re-arming). Entries are appended
 * without deduplication (the loader merges them); past RELOAD_PLAN_MAX
 * entries a plan reads everything instead. */
typedef struct reload_plan {
    bool full;       /* everything (start, new session, a failed reload) */
    bool topic_list; /* the children of /brokers/topics */
    char **topics;   /* re-read whole: assignment, config and every state */
    size_t ntopics;
    char **configs; /* /config/topics/<t> only */
    size_t nconfigs;
    partition_ref_t *states; /* one partition's state znode */
    size_t nstates;
} reload_plan_t;

/* Bounds the memory of a plan and of the controller's pending pushes: a
 * change that big costs about what reading everything costs. */
#define RELOAD_PLAN_MAX  4096
#define PUSH_CHANGES_MAX 16384
/* Reloads in a row after which the controller acts even though more
 * changes are known to be on their way (see reload_finish). */
#define RELOAD_ACT_DEFER_MAX 3

struct coordinator {
    struct ev_loop *loop;
    coordinator_config_t cfg; /* strings owned (copied at start) */
    char *zk_hosts;           /* connect string without the chroot */
    char *chroot;             /* "/vltava", or NULL */
    char *rpc_bind_host;      /* where the RPC listener binds (cfg.rpc_host: where peers connect) */
    coordinator_callbacks_t cb;
    char *cluster_id;

    /* ZooKeeper bridge. Fields under `mu` are the only ones ZooKeeper's
     * threads touch. */
    zhandle_t *zh;
    uint64_t session_gen;
    void *zh_ctx; /* context handed to zookeeper_init, freed on close */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    zk_call_t *calls_head, *calls_tail;          /* under mu */
    zk_call_t *inflight;                         /* under mu: handed to ZooKeeper */
    zk_watch_event_t *events_head, *events_tail; /* under mu */
    int session_state;                           /* under mu */
    ev_async wake;
    ev_timer retry_timer;
    ev_timer tick_timer;
    bool stopping;

    /* session */
    bool registered;
    bool registering;
    int64_t session_id;
    /* When the registered session's connection was lost (coord_now_ms());
     * 0 while connected. ZooKeeper expires a session it has not heard from
     * for the session timeout, but the client library says so only once it
     * reaches the server again: past that long, the session is taken as
     * lost here (see check_session in coordinator.c). */
    int64_t disconnected_since_ms;

    /* metadata: current snapshot, owned; zk parallels md->topics. */
    cluster_metadata_t *md;
    topic_zk_t *md_zk;
    int32_t controller_epoch_seen; /* newest controller epoch seen anywhere */
    char **delete_requests;        /* /admin/delete_topics children */
    size_t ndelete_requests;
    int32_t zk_controller_epoch; /* /controller_epoch as last loaded, -1: none */
    int32_t zk_controller_epoch_version;
    uint64_t reloads_done;

    loader_t *load;     /* the reload in flight, or NULL */
    bool reload_dirty;  /* another reload is due once this one finishes */
    reload_plan_t plan; /* what the next reload reads */
    int acts_deferred;  /* reloads in a row the controller did not act on */
    /* reload_finish is installing a snapshot and acting on it: callbacks
     * run from there may ask for reloads, which only mark reload_dirty
     * (a reload started there would be replaced by reload_finish's). */
    bool reload_installing;

    /* controller */
    bool is_controller;
    bool electing;
    int32_t my_controller_epoch;
    int32_t my_epoch_version; /* /controller_epoch's version after my bump */
    int controller_writes_inflight;
    char **deleting; /* topics whose deletion multi is in flight */
    size_t ndeleting;
    admin_waiter_t *waiters;
    bool push_pending; /* metadata must be pushed to brokers over RPC */
    /* What the next push carries: every partition (a new controller, a
     * broker joined, or too many changes), else the partitions whose
     * state or replicas changed in the reloads since the last push. */
    bool push_full;
    partition_ref_t *push_changes;
    size_t npush_changes;
    bool reassign_reading; /* reassign.c: /admin/reassign_partitions read in flight */
    struct alter_write *reassign_waiting; /* reassign.c: written, waiting for the cache */
    struct leader_elections *elections;   /* leader_election.c's; NULL until first used */

    /* controlled_shutdown.c's state; NULL until first used */
    controlled_shutdown_t *shutdown;

    struct rpc *rpc;

    /* fast restart (zk_session.c) */
    char *session_file;      /* <log dir>/zookeeper-session, NULL: none kept */
    bool session_file_saved; /* it names the current session */
    pthread_t reaper;        /* ends a lost session the server may still hold */
    bool reaper_running;     /* reaper is to be joined */
    _Atomic bool reaper_done;
    clientid_t lost_session;          /* client_id 0: none to end */
    struct offline_replicas *offline; /* offline_replicas.c; NULL until used */
};

/* ---- bridge (zk_bridge.c) ---- */
int zk_bridge_init(coordinator_t *c);
void zk_bridge_destroy(coordinator_t *c);
/* Opens a new session handle (closing any previous one). Non-blocking. */
int zk_open_session(coordinator_t *c, const char *connect);
void zk_close_session(coordinator_t *c);
int zk_session_state(const coordinator_t *c);
/* Start-up only: waits until the session is connected or the deadline. */
bool zk_wait_connected(coordinator_t *c, int64_t deadline_ms);
/* Start-up only: runs queued events on this thread until *flag or the
 * deadline. */
void zk_pump_until(coordinator_t *c, const bool *flag, int64_t deadline_ms);
/* Runs queued events (bounded per call). */
void zk_drain(coordinator_t *c);

zk_call_t *zk_call_new(coordinator_t *c, zk_done_fn done, void *arg, const char *path);
void zk_get(coordinator_t *c, zk_call_t *call, bool watch);
void zk_exists(coordinator_t *c, zk_call_t *call, bool watch);
void zk_children(coordinator_t *c, zk_call_t *call, bool watch);
void zk_create(coordinator_t *c, zk_call_t *call, const uint8_t *data, size_t len, int flags);
void zk_delete(coordinator_t *c, zk_call_t *call, int version);
/* Multi-op builder. Takes copies of paths and data. */
void zk_multi_check(zk_call_t *call, const char *path, int version);
void zk_multi_create(zk_call_t *call, const char *path, const uint8_t *data, size_t len, int flags);
void zk_multi_set(zk_call_t *call, const char *path, const uint8_t *data, size_t len, int version);
void zk_multi_delete(zk_call_t *call, const char *path, int version);
void zk_multi_submit(coordinator_t *c, zk_call_t *call);
/* Index of the first failed op of a finished multi, or -1. */
int zk_multi_failed_op(const zk_call_t *call);

int64_t coord_now_ms(void);
/* When the ZooKeeper client library last logged a refused connection
 * (coord_now_ms()), 0 when never: no server was listening there then. */
int64_t zk_last_refused_ms(void);

/* ---- coordinator.c, called by the bridge and the controller ---- */
void coord_on_watch(coordinator_t *c, const zk_watch_event_t *ev);
/* A reload of everything: for failures and anything not known to be
 * narrower. */
void coord_request_reload(coordinator_t *c);
/* Reloads of what changed: only the always-read znodes, or with one
 * topic (new or changed, read whole and the topic list with it), or one
 * partition's state. */
void coord_request_partial_reload(coordinator_t *c);
void coord_request_topic_reload(coordinator_t *c, const char *topic);
void coord_request_state_reload(coordinator_t *c, const char *topic, int32_t partition);
/* Forgets the pending push changes (they were pushed, or this broker is no
 * longer the controller); push_full stays as it is. */
void coord_push_clear(coordinator_t *c);
/* A reload (or re-registration) after a short delay: for failures that an
 * immediate retry would only repeat. */
void coord_schedule_retry(coordinator_t *c);
bool coord_broker_live(void *arg, int32_t id);
/* True when partition `partition` of t (in c->md) is led by a broker
 * whose current registration is newer than the leadership: a restarted
 * process that never took it, which the controller treats as a leave and
 * a join (the partition gets a new leader, another in-sync replica if
 * any; the restarted broker leaves the ISR). */
bool coord_leader_restarted(const coordinator_t *c, const md_topic_t *t, int32_t partition);
/* Replaces one partition's state in the cache when leader_epoch is newer
 * (or equal with a new ISR); fires partition_changed when it concerns this
 * broker. Used by LeaderAndIsr/UpdateMetadata. False when the cache does
 * not know the partition (a topic this broker has not read yet). */
bool coord_apply_partition(coordinator_t *c, const char *topic, const uint8_t topic_id[16],
                           int32_t partition, int32_t leader, int32_t leader_epoch,
                           const int32_t *isr, int32_t nisr);
/* A state znode the controller wrote, now at version (and mzxid): applied
 * as coord_apply_partition does, its version recorded, and the partition
 * pushed with the controller's next push. */
void coord_apply_written_state(coordinator_t *c, const char *topic, const uint8_t topic_id[16],
                               int32_t partition, const zk_partition_state_t *state,
                               int32_t version, int64_t mzxid);

/* ---- zk_session.c: the previous process's session (fast restart) ---- */
typedef enum zk_prev_session {
    ZK_PREV_SESSION_NONE,    /* no session file */
    ZK_PREV_SESSION_CLOSED,  /* it was alive: its ephemerals deleted, closed */
    ZK_PREV_SESSION_EXPIRED, /* the server reported it expired */
    ZK_PREV_SESSION_UNKNOWN, /* no answer in time, or an unreadable file */
} zk_prev_session_t;
/* dir/zookeeper-session (xmalloc'd), NULL when dir is NULL or empty. */
char *zk_session_file_path(const char *dir);
/* Atomically replaces the file with id (0600); -1 after logging why. */
int zk_session_file_save(const char *path, const clientid_t *id);
void zk_session_file_remove(const char *path);
/* Blocking: resumes session id through connect (with the chroot), waiting
 * for the server's answer until deadline_ms, and when the server accepts
 * it deletes its ephemerals (/brokers/ids/<broker_id>, /controller) and
 * closes it; those two calls run on a connection just made, and the client
 * library fails them if it drops. */
zk_prev_session_t zk_end_session(const char *connect, const clientid_t *id, int timeout_ms,
                                 int32_t broker_id, int64_t deadline_ms);
/* Start-up, blocking (about 2 s at most): ends the session named by the
 * session file, then removes the file unless the outcome is unknown. The
 * caller holds the log directory's lock. */
zk_prev_session_t zk_end_previous_session(coordinator_t *c, const char *connect);
/* Ends a session this broker gave up as lost on a helper thread (joined by
 * zk_reaper_join, in coordinator_free). */
void zk_reap_session(coordinator_t *c, const char *connect, const clientid_t *id);
void zk_reaper_join(coordinator_t *c);

/* ---- rpc_glue.c ---- */
int rpc_glue_start(coordinator_t *c, char *err, size_t err_size);
void rpc_glue_stop(coordinator_t *c);
void rpc_glue_sync_peers(coordinator_t *c, const cluster_metadata_t *old);
/* Sends a topic creation to the controller; done runs with its answer.
 * -1 (done not called) when there is no controller to send it to. */
int rpc_glue_forward_create(coordinator_t *c, const topic_spec_t *spec, coordinator_done_fn done,
                            void *arg);

/* ---- controller.c ---- */
void controller_after_reload(coordinator_t *c, bool controller_exists, int32_t controller_id,
                             int64_t controller_owner);
void controller_resign(coordinator_t *c, const char *why);
void controller_check_waiters(coordinator_t *c, bool stopping);
void controller_push_metadata(coordinator_t *c);
/* The controller's writes. Each is one multi-op whose first op checks
 * /controller_epoch at the version this controller's election produced
 * (a deposed controller writes nothing); controller_fenced_call starts one
 * (c must be the controller) and controller_submit_write sends it, counting
 * it in flight: its completion must call the done given, which for the
 * writes below re-reads the state (or retries shortly after a refusal). */
zk_call_t *controller_fenced_call(coordinator_t *c, zk_done_fn done, void *arg);
void controller_submit_write(coordinator_t *c, zk_call_t *call);
/* Writes partition's next state (leader, leader epoch, ISR): fenced, and
 * conditional on the state znode's version as last read, so a decision
 * made on a stale read fails and is made again after the next reload.
 * next->leader_epoch must be newer than the cached one. */
void controller_write_partition_state(coordinator_t *c, const md_topic_t *t, int32_t partition,
                                      const zk_partition_state_t *next);
/* One decision for controller_write_partition_states; topic points into
 * c->md, next is the caller's. */
typedef struct controller_state_write {
    const md_topic_t *topic;
    int32_t partition;
    zk_partition_state_t next;
} controller_state_write_t;
/* Runs once per multi of controller_write_partition_states with the range
 * [first, first + count) of w it held: written, or refused (fenced: on the
 * controller epoch, this broker no longer being the controller). Not
 * called once the coordinator is stopping. */
typedef void (*controller_batch_done_fn)(coordinator_t *c, void *arg, size_t first, size_t count,
                                         bool written, bool fenced);
/* controller_write_partition_state for many partitions: as few fenced
 * multis as fit well within jute.maxbuffer (at most 1000 writes each), so
 * that electing thousands of leaders is not thousands of round trips.
 * Each multi is all or nothing: one stale version refuses all it holds.
 * A written multi's states go into the cache and the next push as
 * controller_write_partition_state's do; then done (may be NULL) runs.
 * Returns how many multis it sent. */
size_t controller_write_partition_states(coordinator_t *c, const controller_state_write_t *w,
                                         size_t n, controller_batch_done_fn done, void *arg);
/* ---- leader_election.c ---- */
/* Moves ElectLeaders requests on (answers, re-decisions, timeouts) and runs
 * the automatic leader rebalance when due: after every reload and on the
 * tick (from controller_check_waiters). stopping: answers every request
 * REQUEST_TIMED_OUT and frees the state. */
void leader_election_check(coordinator_t *c, bool stopping);

/* t's znode versions; t must point into c->md. */
const topic_zk_t *controller_topic_zk(const coordinator_t *c, const md_topic_t *t);
/* True while /admin/delete_topics/<name> exists. */
bool controller_topic_being_deleted(const coordinator_t *c, const char *name);

/* ---- offline_replicas.c ---- */
/* Serves RPC_OFFLINE_REPLICAS (rpc_glue_start) / frees the state
 * (rpc_glue_stop). */
void offline_replicas_start(coordinator_t *c);
void offline_replicas_stop(coordinator_t *c);
/* The controller's election predicate (controller.c): broker is live and
 * can open (topic, partition)'s log. arg: an offline_replicas_ctx_t. */
typedef struct offline_replicas_ctx {
    coordinator_t *c;
    const char *topic;
    int32_t partition;
} offline_replicas_ctx_t;
bool offline_replicas_live(void *arg, int32_t broker_id);
/* The ISR without the members that cannot open the log (isr: room for
 * p->nisr ids); false, *n untouched, when none is such a member. */
bool offline_replicas_isr_shrink(void *arg, const md_partition_t *p, int32_t *isr, int32_t *n);
/* Appends to p->offline the live replicas that cannot open p's log. */
void offline_replicas_extend(coordinator_t *c, const char *topic, md_partition_t *p);
/* offline_replicas_extend for every partition of md (a reload's snapshot). */
void offline_replicas_extend_md(coordinator_t *c, cluster_metadata_t *md);
/* The storage-offline replicas of (topic, partition) as the controller knows
 * them (UpdateMetadata carries them): *n ids, valid until the next change. */
const int32_t *offline_replicas_of(coordinator_t *c, const char *topic, int32_t partition,
                                   size_t *n);
/* A non-controller's copy, from an UpdateMetadata's partitions: each
 * partition named takes the offline replicas it carries (pushes may carry
 * only the partitions that changed). */
struct Vltava__PartitionStateInfo;
void offline_replicas_learn(coordinator_t *c, struct Vltava__PartitionStateInfo **parts, size_t n);

/* ---- reassign.c ---- */
/* The controller's reassignment decisions on fresh state (after each
 * reload, from controller_act, once no other controller write is in
 * flight): the leader epoch bump of a new replica set, the completion of
 * reassignments whose target is in the ISR. */
void reassign_act(coordinator_t *c);
/* True while p is being reassigned (adding or removing replicas). Kafka's
 * automatic leader rebalance leaves such partitions alone. */
bool reassign_in_progress(const md_partition_t *p);
/* Answers the reassignment requests whose write this broker's cache now
 * shows (every one when stopping); from controller_check_waiters. */
void reassign_check_waiters(coordinator_t *c, bool stopping);

/* ---- controlled_shutdown.c ---- */
struct rpc_request;
/* The RPC_CONTROLLED_SHUTDOWN handler (arg: the coordinator). */
void controlled_shutdown_on_request(void *arg, struct rpc_request *req, int32_t sender,
                                    const uint8_t *payload, size_t len);
/* The controller's pass for the shutting-down brokers, on fresh state:
 * from controller_act, after its own decisions and push. */
void controlled_shutdown_act(coordinator_t *c);
/* A broker_live_fn for every election: live and not shutting down. */
bool controlled_shutdown_eligible(void *arg, int32_t id);
/* The same for the elections that also need the partition's log:
 * offline_replicas_live and not shutting down. arg: an
 * offline_replicas_ctx_t. */
bool controlled_shutdown_electable(void *arg, int32_t id);
/* True while broker id is in the shutting-down set (for elections that
 * combine it with a predicate of their own). */
bool controlled_shutdown_leaving(const coordinator_t *c, int32_t id);
/* Answers what waits (the RPC channel must still exist) and frees. */
void controlled_shutdown_free(coordinator_t *c);

#endif
