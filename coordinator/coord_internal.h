/* Coordinator internals shared by its .c files and its unit tests: znode
 * payload codecs, replica assignment and leader election. Everything here is
 * pure (no ZooKeeper, no loop), so it is tested without a cluster. */
#ifndef VLTAVA_COORD_INTERNAL_H
#define VLTAVA_COORD_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coordinator.h"

/* Bounds on what a znode may describe; larger payloads are corrupt. */
#define COORD_MAX_PARTITIONS 100000
/* Partitions a topic may have: creating or deleting a topic is one
 * multi-op with two znodes per partition, and ZooKeeper refuses requests
 * over jute.maxbuffer (1 MiB); with 249-character names this stays under
 * it. */
#define COORD_MAX_TOPIC_PARTITIONS 1000
#define COORD_MAX_REPLICAS         64
#define COORD_MAX_CONFIGS          256
#define COORD_MAX_ZNODE_BYTES      (1024 * 1024)
/* A broker registration: MD_MAX_ENDPOINTS endpoints of 64-character
 * listener names and 255-character hosts fit with room to spare. */
#define COORD_MAX_REGISTRATION_BYTES 16384

/* ---- znode payloads -------------------------------------------------- */

struct ProtobufCMessage;
/* m packed into an xmalloc'd buffer (never NULL) the caller frees; *len is
 * its size. Also packs the inter-broker RPC payloads. */
uint8_t *coord_pack_message(const struct ProtobufCMessage *m, size_t *len);

/* Decoded /brokers/topics/<t>/partitions/<p>/state. isr is owned. */
typedef struct zk_partition_state {
    int32_t leader; /* -1: offline */
    int32_t leader_epoch;
    int32_t controller_epoch;
    int32_t *isr;
    int32_t nisr;
} zk_partition_state_t;

/* Decoded /brokers/topics/<t>: partition i's replicas at replicas[i].
 * adding/removing (per partition, a reassignment in progress) may be NULL
 * arrays in a struct given to the encoder: no reassignment anywhere; the
 * decoder always fills them (empty lists for none). The decoder checks
 * that both are subsets of the replicas, disjoint, and leave a non-empty
 * target (replicas minus removing). */
typedef struct zk_assignment {
    uint8_t topic_id[16];
    int32_t npartitions;
    int32_t **replicas;
    int32_t *nreplicas;
    int32_t **adding;
    int32_t *nadding;
    int32_t **removing;
    int32_t *nremoving;
    int32_t *reassign_epoch; /* per partition; NULL in the encoder: all 0 */
} zk_assignment_t;

/* Encoders return an xmalloc'd buffer the caller frees; *len is its size.
 * Decoders return 0, or -1 with the reason in err for a payload that is not
 * a well-formed message of that kind (never an assert: it came from the
 * network). Decoded values are owned by the out struct. */
uint8_t *znode_encode_broker(const md_broker_t *b, size_t *len);
/* Fills m (initialising it) with b's registration without its endpoints:
 * views into b. znode_encode_broker adds the endpoints; the UpdateMetadata
 * push sends it as is, its receivers reloading the registrations from
 * ZooKeeper. */
struct Vltava__BrokerRegistration;
void coord_fill_broker_registration(struct Vltava__BrokerRegistration *m, const md_broker_t *b);
int znode_decode_broker(const uint8_t *buf, size_t len, md_broker_t *out, char *err,
                        size_t err_size);
void md_broker_clear(md_broker_t *b);
/* e = copies of the strings given; md_endpoints_free frees an array of n. */
void md_endpoint_set(md_endpoint_t *e, const char *listener, const char *host, int32_t port,
                     const char *security_protocol);
void md_endpoints_free(md_endpoint_t *eps, size_t n);

uint8_t *znode_encode_assignment(const zk_assignment_t *a, size_t *len);
int znode_decode_assignment(const uint8_t *buf, size_t len, zk_assignment_t *out, char *err,
                            size_t err_size);
void zk_assignment_clear(zk_assignment_t *a);

uint8_t *znode_encode_partition_state(const zk_partition_state_t *s, size_t *len);
int znode_decode_partition_state(const uint8_t *buf, size_t len, zk_partition_state_t *out,
                                 char *err, size_t err_size);
void zk_partition_state_clear(zk_partition_state_t *s);

uint8_t *znode_encode_controller(int32_t broker_id, int64_t timestamp_ms, size_t *len);
int znode_decode_controller(const uint8_t *buf, size_t len, int32_t *broker_id, char *err,
                            size_t err_size);

uint8_t *znode_encode_controller_epoch(int32_t epoch, size_t *len);
int znode_decode_controller_epoch(const uint8_t *buf, size_t len, int32_t *epoch, char *err,
                                  size_t err_size);

uint8_t *znode_encode_cluster_id(const char *id, size_t *len);
/* *id is xmalloc'd. */
int znode_decode_cluster_id(const uint8_t *buf, size_t len, char **id, char *err, size_t err_size);

uint8_t *znode_encode_topic_config(const char *const *keys, const char *const *values, size_t n,
                                   size_t *len);
/* *keys and *values are xmalloc'd arrays of xmalloc'd strings. */
int znode_decode_topic_config(const uint8_t *buf, size_t len, char ***keys, char ***values,
                              size_t *n, char *err, size_t err_size);

/* One entry of /admin/reassign_partitions. */
typedef struct zk_reassign_target {
    char *topic; /* owned */
    int32_t partition;
    int32_t *replicas; /* owned */
    int32_t nreplicas;
} zk_reassign_target_t;

/* At most this many entries in /admin/reassign_partitions. */
#define COORD_MAX_REASSIGN_ENTRIES 10000

uint8_t *znode_encode_reassign_request(const zk_reassign_target_t *targets, size_t n, size_t *len);
/* Entries are decoded as written (validation is the controller's: an
 * invalid entry is dropped with a log line, not the whole znode); only the
 * bounds (entries, replicas per entry) and a topic name's presence are
 * checked here. *out is an xmalloc'd array freed by zk_reassign_targets_free. */
int znode_decode_reassign_request(const uint8_t *buf, size_t len, zk_reassign_target_t **out,
                                  size_t *n, char *err, size_t err_size);
void zk_reassign_targets_free(zk_reassign_target_t *targets, size_t n);

uint8_t *znode_encode_delete_request(const char *topic, int32_t requested_by, size_t *len);

/* /latest_producer_id_block: [start, end] reserved by broker_id. Decoding
 * refuses a negative start or an end before the start. */
uint8_t *znode_encode_producer_id_block(int32_t broker_id, int64_t start, int64_t end, size_t *len);
int znode_decode_producer_id_block(const uint8_t *buf, size_t len, int64_t *start, int64_t *end,
                                   char *err, size_t err_size);

/* A random cluster id: 16 random bytes in URL-safe base64 without padding
 * (22 characters), as Kafka's. out must hold 23 bytes. */
void coord_random_cluster_id(char out[23]);
/* 16 random bytes (a version-4 UUID) for a topic id. */
void coord_random_topic_id(uint8_t out[16]);

/* ---- replica assignment ------------------------------------------------ */

typedef struct assign_broker {
    int32_t id;
    const char *rack; /* NULL: unset */
} assign_broker_t;

/* Assigns replicas for partitions [first_partition, first_partition +
 * count) over the live brokers (any order; sorted by id inside). Leaders
 * rotate from start_index so that they spread evenly; followers are shifted
 * as Kafka does so that a broker's followers do not all sit on one peer.
 * When any broker has a rack, replicas of a partition go to distinct racks
 * while racks remain. Writes rf ids per partition into out (count * rf).
 * Returns 0, or -1 when rf < 1 or rf > nbrokers (INVALID_REPLICATION_FACTOR). */
int coord_assign_replicas(const assign_broker_t *brokers, size_t nbrokers, int32_t first_partition,
                          int32_t count, int32_t rf, int32_t start_index, int32_t *out);

/* ---- leader election ---------------------------------------------------- */

typedef bool (*broker_live_fn)(void *arg, int32_t broker_id);

/* Chooses a leader for a partition whose leader must be (re)chosen: the first
 * replica, in preferred order, that is live and in the ISR. With none and
 * `unclean`, the first live replica (which then forms the ISR alone). Else
 * -1: offline. *unclean_used tells whether the unclean path chose. */
int32_t coord_elect_leader(const int32_t *replicas, int32_t nreplicas, const int32_t *isr,
                           int32_t nisr, broker_live_fn live, void *live_arg, bool unclean,
                           bool *unclean_used);

/* ---- partition reassignment (reassign.c) ------------------------------- */

/* A partition's replica set while it is reassigned. Arrays xmalloc'd,
 * owned by the struct (coord_replica_set_clear). */
typedef struct coord_replica_set {
    int32_t *full, nfull; /* the replicas written */
    int32_t *adding, nadding;
    int32_t *removing, nremoving;
} coord_replica_set_t;

/* p reassigned to target (ntarget > 0, distinct ids), Kafka's
 * ReplicaAssignment.reassignTo: with original = p's replicas minus its
 * adding ones, full = target ++ original (distinct), adding = full -
 * original, removing = full - target. Reassigning to the original cancels:
 * no adding, no removing. */
void coord_reassign_to(const md_partition_t *p, const int32_t *target, int32_t ntarget,
                       coord_replica_set_t *out);
void coord_replica_set_clear(coord_replica_set_t *s);

/* Kafka's ElectLeaders decision for one partition (the rules above
 * coordinator_elect_leaders): KAFKA_NONE with next->leader, ->leader_epoch
 * (p's + 1) and ->isr (xmalloc'd, the caller's; zk_partition_state_clear)
 * set, next->controller_epoch left to the caller; else
 * KAFKA_ELECTION_NOT_NEEDED, KAFKA_PREFERRED_LEADER_NOT_AVAILABLE or
 * KAFKA_ELIGIBLE_LEADERS_NOT_AVAILABLE with next untouched. */
int16_t coord_decide_election(const md_partition_t *p, coordinator_election_type_t type,
                              broker_live_fn live, void *live_arg, zk_partition_state_t *next);

/* One partition of a cluster_metadata_t: topics[topic].partitions[partition]. */
typedef struct coord_tp {
    size_t topic;
    int32_t partition;
} coord_tp_t;

/* Kafka's automatic leader rebalance check: per broker B, of the partitions
 * whose first replica is B (topics with skip_topic[t] left out; NULL: none),
 * the share led by another (or by none); when it exceeds percentage %, those
 * whose first replica is live and in the ISR are returned (xmalloc'd, the
 * caller's; *n of them, NULL when none) for a PREFERRED election. */
coord_tp_t *coord_rebalance_candidates(const cluster_metadata_t *md, const bool *skip_topic,
                                       int32_t percentage, broker_live_fn live, void *live_arg,
                                       size_t *n);

/* Controlled shutdown (controlled_shutdown.c): partition p's next leader
 * and ISR while the brokers `leaving` says are shutting down. Their ISR
 * places go; a partition one of them leads goes to the first replica in
 * assignment order that is live, not leaving and in the ISR. False (and
 * nothing written) when p stays as it is: nobody leaving leads it or is in
 * its ISR, no replica can take it over, or its leader is offline or dead
 * (the usual election's). isr must have room for p->nisr ids. */
bool coord_shutdown_next_state(const md_partition_t *p, broker_live_fn live, broker_live_fn leaving,
                               void *arg, int32_t *leader, int32_t *isr, int32_t *nisr);

/* True when id is among ids[0..n). */
bool coord_contains(const int32_t *ids, int32_t n, int32_t id);
/* An xmalloc'd copy of ids[0..n), never NULL (even for n == 0). */
int32_t *coord_copy_ids(const int32_t *ids, int32_t n);

/* ---- the session file (zk_session.c) ------------------------------------ */

/* "vltava-zookeeper-session 1 <session id: 16 hex> <password: 32 hex>\n" */
#define COORD_SESSION_LINE_BYTES 77

/* Writes the line (NUL-terminated) into out; returns its length. */
size_t coord_session_line_encode(int64_t session_id, const char passwd[16],
                                 char out[COORD_SESSION_LINE_BYTES + 1]);
/* 0 with the client id, or -1 with the reason in err for anything that is
 * not exactly one such line (wrong size, garbage, session id 0). */
int coord_session_line_decode(const char *buf, size_t len, int64_t *session_id, char passwd[16],
                              char *err, size_t err_size);

#endif
