/* The coordinator: this broker's ZooKeeper session, its registration, the
 * controller (election, topic/partition assignment, leader election) and the
 * cluster metadata cache every Kafka API answers from.
 *
 * Locality: all functions are called on the broker's loop thread, and all
 * callbacks run there. ZooKeeper client threads only enqueue and signal the
 * loop (ev_async); they never touch coordinator state.
 *
 * ZooKeeper layout (under the chroot): see ../shared/design.md. Payloads are
 * protobuf messages from proto/.
 */
#ifndef VLTAVA_COORDINATOR_H
#define VLTAVA_COORDINATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ev_loop;

typedef struct coordinator coordinator_t;

/* One advertised Kafka endpoint of a broker: a listener of its
 * listeners, as clients of that listener reach it.
 *
 * Who owns the strings: in the cluster metadata (decoded registrations,
 * freed by md_broker_clear) and in the coordinator's copy of its config,
 * whoever holds the array (md_endpoint_set copies strings in,
 * md_endpoints_free frees them). Endpoints handed to coordinator_start or
 * znode_encode_broker are the caller's views, copied or encoded and never
 * freed there (main.c's point into its config and at the literal
 * "PLAINTEXT"; the fields are not const so that one struct serves both). */
typedef struct md_endpoint {
    char *listener; /* listener name, upper-case, unique per broker */
    char *host;
    int32_t port;
    char *security_protocol; /* "PLAINTEXT" (the only one served) */
} md_endpoint_t;

/* Bounds on what one broker may register; a registration beyond them is
 * corrupt (registrations come from other brokers). */
#define MD_MAX_ENDPOINTS     16
#define MD_LISTENER_NAME_MAX 64  /* characters of [A-Z0-9_-] (listener names are upper-cased) */
#define MD_HOST_MAX          255 /* characters of a host */

typedef struct md_broker {
    int32_t id;
    char *host;       /* the inter-broker listener's advertised endpoint, */
    int32_t port;     /* as older readers of the registration expect it */
    int32_t rpc_port; /* inter-broker RPC listener */
    char *rack;       /* NULL when unset */
    char *rpc_host;   /* host of the RPC listener (other brokers connect there) */
    /* Every advertised listener, 1..MD_MAX_ENDPOINTS. A registration
     * without any (an older broker's) reads as one PLAINTEXT endpoint at
     * host:port (znode_decode_broker says so, nothing else). */
    md_endpoint_t *endpoints;
    size_t nendpoints;
    /* The registration znode's czxid (Kafka's broker epoch): each process,
     * and each new session of one, registers anew with a larger one. 0 when
     * not read from ZooKeeper. */
    int64_t registration_zxid;
} md_broker_t;

typedef struct md_partition {
    int32_t id;
    int32_t leader; /* -1: no leader (offline) */
    int32_t leader_epoch;
    int32_t *replicas;
    int32_t nreplicas;
    int32_t *isr;
    int32_t nisr;
    int32_t *offline; /* replicas not on a live broker */
    int32_t noffline;
    /* A reassignment in progress (both empty when none): replicas being
     * added and being removed, subsets of replicas. Owned like replicas. */
    int32_t *adding;
    int32_t nadding;
    int32_t *removing;
    int32_t nremoving;
    /* The leader epoch the state must reach for the replica set above to
     * be known by every replica (0: none; see proto/znodes.proto). */
    int32_t reassign_epoch;
} md_partition_t;

typedef struct md_topic {
    char *name;
    uint8_t id[16];
    md_partition_t *partitions; /* indexed by partition id */
    int32_t npartitions;
    char **config_keys; /* topic-level overrides from /config/topics/<t> */
    char **config_values;
    size_t nconfigs;
} md_topic_t;

/* The cluster as this broker knows it. Valid until control returns to the
 * loop; copy what you keep. */
typedef struct cluster_metadata {
    const char *cluster_id;
    int32_t controller_id; /* -1 when none is known */
    md_broker_t *brokers;  /* live brokers, sorted by id */
    size_t nbrokers;
    md_topic_t *topics; /* sorted by name */
    size_t ntopics;
} cluster_metadata_t;

const md_topic_t *cluster_metadata_topic(const cluster_metadata_t *md, const char *name,
                                         size_t name_len);
const md_broker_t *cluster_metadata_broker(const cluster_metadata_t *md, int32_t id);
/* b's endpoint of the named listener, or NULL when b has no such listener:
 * Kafka then leaves b out of the answers given on that listener. */
const md_endpoint_t *md_broker_endpoint(const md_broker_t *b, const char *listener);

typedef struct coordinator_config {
    const char *zk_connect; /* "host:port[,host:port...][/chroot]" */
    int32_t zk_session_timeout_ms;
    int32_t broker_id;
    /* Every advertised listener, registered for clients: 1..MD_MAX_ENDPOINTS
     * views, copied. endpoints[inter_broker_endpoint] is the inter-broker
     * listener's: the registration's host and port, and the host peers
     * reach the RPC listener on when rpc_host is a wildcard. */
    const md_endpoint_t *endpoints;
    size_t nendpoints;
    size_t inter_broker_endpoint;
    const char *rpc_host;
    int32_t rpc_port;                   /* 0: any free port; -1: no RPC listener */
    const char *rack;                   /* NULL when unset */
    int32_t default_partitions;         /* num.partitions */
    int16_t default_replication_factor; /* default.replication.factor */
    bool unclean_leader_election;
    bool auto_leader_rebalance;
    /* Where the session file is kept for a fast restart (the log
     * directory, whose lock the caller holds); NULL: none. */
    const char *session_dir;
    /* leader.imbalance.check.interval.seconds (0: Kafka's 300) and
     * leader.imbalance.per.broker.percentage (0..100): see
     * coordinator_elect_leaders. */
    int32_t leader_imbalance_check_interval_s;
    int32_t leader_imbalance_per_broker_percentage;
} coordinator_config_t;

/* What this broker must do for its partitions. Both run on the loop. */
typedef struct coordinator_callbacks {
    void *arg;
    /* This broker is a replica of (topic, partition) and its state is now p
     * (p->leader == own id: lead it; otherwise follow p->leader). Called on
     * assignment and whenever leader or leader epoch changes. */
    void (*partition_changed)(void *arg, const md_topic_t *topic, const md_partition_t *p);
    /* This broker is no longer a replica (the topic was deleted, or the
     * replica moved): drop the local log. */
    void (*partition_removed)(void *arg, const char *topic, int32_t partition);
} coordinator_callbacks_t;

/* Connects (creating the chroot if absent), registers /brokers/ids/<id>,
 * takes part in controller election and loads the metadata; returns once
 * this broker is registered, or fails: -1 with a message in err (ZooKeeper
 * unreachable within the session timeout, or the id already registered by
 * another live broker). Blocks the calling thread only during start. */
int coordinator_start(struct ev_loop *loop, const coordinator_config_t *cfg,
                      const coordinator_callbacks_t *cb, coordinator_t **out, char *err,
                      size_t err_size);
/* Deregisters (closes the session, so ephemeral znodes go at once) and
 * frees. */
void coordinator_stop(coordinator_t *c);

const cluster_metadata_t *coordinator_metadata(const coordinator_t *c);
/* The inter-broker RPC channel (broker/rpc/rpc.h) the coordinator listens
 * on at rpc_host:rpc_port; its peer table follows the live brokers.
 * Replication registers its handlers and sends on it. NULL when
 * rpc_port < 0 (no listener). */
struct rpc *coordinator_rpc(coordinator_t *c);
int32_t coordinator_broker_id(const coordinator_t *c);
bool coordinator_is_controller(const coordinator_t *c);

/* This broker's ZooKeeper session, as the metrics report it. */
typedef enum coordinator_session {
    COORDINATOR_SESSION_CONNECTED,  /* connected (a read-only server counts as connecting) */
    COORDINATOR_SESSION_CONNECTING, /* (re)connecting: the session may still be alive */
    COORDINATOR_SESSION_EXPIRED,    /* expired: a new one is about to be opened */
    COORDINATOR_SESSION_CLOSED,     /* none open: waiting to retry, refused, or stopping */
    COORDINATOR_SESSION_STATES
} coordinator_session_t;

coordinator_session_t coordinator_session_state(const coordinator_t *c);
/* "connected", "connecting", "expired", "closed". */
const char *coordinator_session_name(coordinator_session_t state);

/* Admin requests; only the controller executes them. `done` runs on the
 * loop, exactly once, with a Kafka error code and a message (NULL when
 * none). On a broker that is not the controller, delete and partition
 * addition complete with NOT_CONTROLLER; a topic creation (not
 * validate-only) is forwarded to the controller over the inter-broker RPC
 * and completes with its answer, so that auto topic creation works through
 * any broker (CreateTopics itself answers NOT_CONTROLLER before asking). */
typedef void (*coordinator_done_fn)(void *arg, int16_t error_code, const char *message);

typedef struct topic_spec {
    const char *name;
    int32_t partitions;         /* -1: num.partitions */
    int16_t replication_factor; /* -1: default.replication.factor */
    const char *const *config_keys;
    const char *const *config_values;
    size_t nconfigs;
    bool validate_only;
} topic_spec_t;

void coordinator_create_topic(coordinator_t *c, const topic_spec_t *spec, coordinator_done_fn done,
                              void *arg);
void coordinator_delete_topic(coordinator_t *c, const char *name, coordinator_done_fn done,
                              void *arg);
void coordinator_create_partitions(coordinator_t *c, const char *name, int32_t total_count,
                                   bool validate_only, coordinator_done_fn done, void *arg);

/* The partition leader's ISR change (replication: a follower fell behind
 * for replica.lag.time.max.ms, or caught up): a write of the partition's
 * state znode conditional on its version, so it is valid only while this
 * broker leads the partition at leader_epoch and nobody wrote since. isr
 * must contain this broker and only replicas. done: NONE once written;
 * NOT_LEADER_OR_FOLLOWER when this broker does not lead it;
 * FENCED_LEADER_EPOCH when leader_epoch is not the current one;
 * UNKNOWN_TOPIC_OR_PARTITION; INVALID_REQUEST for a bad ISR;
 * REQUEST_TIMED_OUT when the state moved meanwhile or ZooKeeper failed
 * (re-read the metadata and decide again). */
void coordinator_alter_isr(coordinator_t *c, const char *topic, int32_t partition,
                           int32_t leader_epoch, const int32_t *isr, int32_t nisr,
                           coordinator_done_fn done, void *arg);

/* Reserves the next `count` producer ids for this broker to hand out
 * (InitProducerId): a block after the last one any broker reserved in
 * /latest_producer_id_block, written conditionally on the znode's version
 * and retried when another broker won the race, so no two brokers hand
 * out the same id. done runs on the loop exactly once: NONE with the
 * block [first, last]; REQUEST_TIMED_OUT when ZooKeeper failed or the
 * broker is stopping; UNKNOWN_SERVER_ERROR when the znode is unreadable
 * or the ids are exhausted (first and last are then -1). */
typedef void (*coordinator_pid_block_fn)(void *arg, int16_t error, int64_t first, int64_t last);
void coordinator_allocate_producer_ids(coordinator_t *c, int32_t count,
                                       coordinator_pid_block_fn done, void *arg);

/* ---- offline replicas (offline_replicas.c) ---- */

typedef struct coord_offline_partition {
    const char *topic;
    int32_t partition;
} coord_offline_partition_t;

/* Replaces the set of partitions this broker holds a replica of but cannot
 * open the log of (copied). The controller learns it over RPC (type 8),
 * once per controller and again on each change, removes this broker from
 * those ISRs, moves their leadership elsewhere and lists the broker in their
 * offline replicas. Loop thread. */
void coordinator_report_offline_replicas(coordinator_t *c, const coord_offline_partition_t *parts,
                                         size_t n);

/* ---- partition reassignment (reassign.c) ----
 * AlterPartitionReassignments as Kafka's ZooKeeper-mode controller does it
 * (KIP-455): the topic znode gets replicas = target ++ original (distinct),
 * with the adding and removing replicas; the controller then bumps the
 * leader epoch (every replica learns the set), waits until the whole target
 * is in the ISR, moves leadership into the target if needed and writes
 * replicas = target. */
typedef struct coordinator_reassign_item {
    const char *topic; /* the caller's, valid until done */
    int32_t partition;
    const int32_t *replicas; /* the caller's; NULL: cancel the reassignment */
    int32_t nreplicas;
    int16_t error;     /* out: Kafka error code */
    char message[160]; /* out: "" when none */
} coordinator_reassign_item_t;

/* Starts (or cancels) the items' reassignments. Each item gets its error
 * once the change is written and this broker's cache shows it (not once
 * the reassignment finished, as Kafka answers):
 * NOT_CONTROLLER on a broker that is not the controller;
 * UNKNOWN_TOPIC_OR_PARTITION (also for a topic being deleted);
 * INVALID_REPLICA_ASSIGNMENT for an empty list, a broker twice or a broker
 * not registered; NO_REASSIGNMENT_IN_PROGRESS for a cancel of nothing;
 * INVALID_REQUEST for a partition listed twice; REQUEST_TIMED_OUT when
 * ZooKeeper failed or the topic changed meanwhile. Invalid items change
 * nothing. done(arg) runs exactly once on the loop, possibly before this
 * returns; items must stay valid until then. */
void coordinator_alter_reassignments(coordinator_t *c, coordinator_reassign_item_t *items,
                                     size_t nitems, void (*done)(void *arg), void *arg);

/* ---- Leader elections (leader_election.c) ----
 * Kafka's ElectLeaders, run by the controller. PREFERRED: a partition led
 * by its first replica needs none (ELECTION_NOT_NEEDED); one whose first
 * replica is not live or not in the ISR gets PREFERRED_LEADER_NOT_AVAILABLE;
 * otherwise the first replica leads, the ISR kept, the leader epoch bumped.
 * UNCLEAN: a partition with a live leader needs none; otherwise the first
 * live ISR member leads (the ISR keeps its live members), else the first
 * live replica (the ISR is that replica alone), else
 * ELIGIBLE_LEADERS_NOT_AVAILABLE. Also UNKNOWN_TOPIC_OR_PARTITION,
 * INVALID_TOPIC_EXCEPTION (the topic is being deleted), NOT_CONTROLLER, and
 * REQUEST_TIMED_OUT for an election not seen through in time.
 *
 * With auto.leader.rebalance.enable, the controller also checks every
 * leader.imbalance.check.interval.seconds, per broker, the share of the
 * partitions whose first replica it is that another broker leads: above
 * leader.imbalance.per.broker.percentage it runs PREFERRED elections for
 * those whose first replica is live and in the ISR. */
typedef enum coordinator_election_type {
    COORDINATOR_ELECTION_PREFERRED = 0, /* Kafka's ElectionType values */
    COORDINATOR_ELECTION_UNCLEAN = 1,
} coordinator_election_type_t;

/* One partition to elect a leader for, and its outcome. */
typedef struct coordinator_election {
    const char *topic; /* the caller's */
    int32_t partition;
    int16_t error;       /* set before done runs */
    const char *message; /* set before done runs: a static string, or NULL */
} coordinator_election_t;

typedef void (*coordinator_elections_done_fn)(void *arg);

/* Elects leaders for elections[0..n) (n <= COORDINATOR_MAX_ELECTIONS): the
 * writes, then the wait until this broker's metadata shows each new leader,
 * bounded by timeout_ms (<= 0: 30 s). elections stays the caller's and must
 * live until done, which runs exactly once on the loop, possibly before
 * this returns (nothing to write) and at the latest when the coordinator
 * stops. A partition named twice is elected once and answered in both. */
#define COORDINATOR_MAX_ELECTIONS 1000000
void coordinator_elect_leaders(coordinator_t *c, coordinator_election_type_t type,
                               coordinator_election_t *elections, size_t n, int32_t timeout_ms,
                               coordinator_elections_done_fn done, void *arg);

/* One attempt at a controlled shutdown (Kafka's ControlledShutdown): asks
 * the controller (over the RPC channel; the controller itself runs the
 * same logic locally) to move the leadership of every partition this
 * broker leads to another live in-sync replica and to remove it from the
 * ISRs it is in; the controller answers once those changes are written
 * and in its metadata, and from then on elects this broker nowhere until
 * its registration leaves /brokers/ids. done runs on the loop exactly once
 * (possibly before this returns): error NONE with what this broker still
 * leads; NOT_CONTROLLER (none known, unreachable, or no longer it);
 * REQUEST_TIMED_OUT (no answer within timeout_ms, or the writes did not
 * complete at the controller); BROKER_NOT_AVAILABLE (the controller does
 * not see this broker registered). The caller retries. */
typedef struct coordinator_shutdown_result {
    int16_t error;
    const char *message; /* NULL when none; valid during the call */
    int32_t led_before;  /* partitions this broker led when the attempt started */
    int32_t remaining;   /* partitions it still leads (error NONE) */
    /* Of those, the ones with another replica on a live broker: it may yet
     * join the ISR, so another attempt may move them. */
    int32_t remaining_movable;
} coordinator_shutdown_result_t;
typedef void (*coordinator_shutdown_fn)(void *arg, const coordinator_shutdown_result_t *res);
void coordinator_controlled_shutdown(coordinator_t *c, int32_t timeout_ms,
                                     coordinator_shutdown_fn done, void *arg);

#endif
