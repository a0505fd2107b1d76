/* The transaction coordinator: Kafka's transactions (InitProducerId with a
 * transactional id, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn,
 * DescribeTransactions, ListTransactions) for the transactional ids whose
 * __transaction_state partition this broker leads, the transaction markers
 * it has written to every partition of a transaction, and the leader side
 * of those marker writes for the partitions this broker leads.
 *
 * Where an id lives: transactional id T belongs to partition
 * group_partition_for(T, partitions of __transaction_state) (Kafka's
 * abs(String.hashCode) rule), and its coordinator is that partition's
 * leader. Nothing is in ZooKeeper: each id's state is a record in that
 * partition in Kafka's schemas (txn_records.h); a broker that becomes the
 * partition's leader replays it (answering COORDINATOR_LOAD_IN_PROGRESS
 * meanwhile), re-sends the markers of transactions it finds preparing to
 * commit or abort, and lets ongoing ones continue or time out; one that
 * loses the leadership drops them (NOT_COORDINATOR).
 *
 * Durability: a state change is answered only when the partition's high
 * watermark passes its record (acks=-1, as Kafka's TransactionLog).
 *
 * Markers: EndTxn writes PrepareCommit/PrepareAbort, answers the client,
 * then asks each partition's leader (over the inter-broker RPC,
 * RPC_WRITE_TXN_MARKERS, or directly when it is this broker) to append the
 * control batch, retrying on NOT_LEADER_OR_FOLLOWER and leader changes
 * until every partition acknowledged, and then writes
 * CompleteCommit/CompleteAbort. A leader acknowledges once its high
 * watermark passes the marker.
 *
 * Calls from broker/api: kslice_t arguments are views into the request
 * frame; the coordinator copies what it keeps. A `done` callback runs
 * exactly once, either before the call that took it returns or later on
 * the loop; the caller must handle both. txn_coordinator_free() completes
 * whatever is still pending with COORDINATOR_NOT_AVAILABLE.
 *
 * Locality: the broker's loop thread. */
#ifndef VLTAVA_TXN_COORDINATOR_H
#define VLTAVA_TXN_COORDINATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kafka_codec.h"

struct ev_loop;
struct coordinator;
struct replica_manager;
struct group_coordinator;
struct producer_id_manager;

#define TXN_STATE_TOPIC "__transaction_state"

/* Longest transactional id served (INVALID_REQUEST beyond). Kafka has no
 * bound below the record's int16 length; one id is kept per transaction,
 * so this caps what a client can make the coordinator hold. */
#define TXN_MAX_ID_BYTES 1024
/* Transactional ids one broker coordinates: a new id beyond it answers
 * COORDINATOR_NOT_AVAILABLE (each costs a few hundred bytes). */
#define TXN_MAX_IDS 200000

/* Filled by broker/config.c, whose option table holds the defaults named
 * here (Kafka's). */
typedef struct txn_config {
    int32_t log_partitions;              /* transaction.state.log.num.partitions (50) */
    int16_t log_replication_factor;      /* transaction.state.log.replication.factor (3) */
    int16_t log_min_isr;                 /* transaction.state.log.min.isr (2) */
    int32_t log_segment_bytes;           /* transaction.state.log.segment.bytes (100 MiB) */
    int32_t max_timeout_ms;              /* transaction.max.timeout.ms (900000) */
    int32_t id_expiration_ms;            /* transactional.id.expiration.ms (7 days) */
    int32_t abort_timed_out_interval_ms; /* transaction.abort.timed.out.transaction.cleanup
                                          * .interval.ms (10000) */
    int32_t remove_expired_interval_ms;  /* transaction.remove.expired.transaction.cleanup
                                          * .interval.ms (3600000) */
} txn_config_t;

typedef struct txn_coordinator txn_coordinator_t;

/* Serves the __transaction_state partitions this broker leads now and from
 * then on those the events name; registers the RPC_WRITE_TXN_MARKERS
 * handler on the coordinator's RPC channel. groups: the group coordinator,
 * told when a marker completes a transaction in __consumer_offsets (NULL:
 * none). pids: the producer id blocks (broker/txn/producer_ids.h). */
txn_coordinator_t *txn_coordinator_new(struct ev_loop *loop, const txn_config_t *cfg,
                                       struct replica_manager *replicas, struct coordinator *coord,
                                       struct group_coordinator *groups,
                                       struct producer_id_manager *pids);
/* Stops using the RPC channel and the producer ids: answers the marker
 * writes other brokers are waiting on, sends no more markers and asks for
 * no more producer ids (InitProducerId answers COORDINATOR_NOT_AVAILABLE
 * from here). Call before coordinator_stop() (the channel must still
 * exist) and before producer_id_manager_free(); txn_coordinator_free()
 * calls it too. */
void txn_coordinator_stop(txn_coordinator_t *tc);
/* Completes every pending operation with COORDINATOR_NOT_AVAILABLE, stops
 * the timers and frees. Call before the replica manager is freed. */
void txn_coordinator_free(txn_coordinator_t *tc);

/* The replica manager's listener events (role change, high-watermark move,
 * partition removed), forwarded for every partition: the coordinator loads
 * or unloads __transaction_state partitions, acknowledges its writes the
 * high watermark now covers, and answers marker writes waiting on that
 * partition. */
void txn_coordinator_partition_event(txn_coordinator_t *tc, const char *topic, int32_t partition);

/* ---- InitProducerId (with a transactional id) ---- */

/* error NONE with the producer id and epoch to use; otherwise -1/-1 and
 * Kafka's error (PRODUCER_FENCED is the caller's to map for v0-3). */
typedef void (*txn_init_done_fn)(void *arg, int16_t error, int64_t producer_id,
                                 int16_t producer_epoch);
/* expected_pid/expected_epoch: InitProducerId v3+ (KIP-360), -1/-1 when
 * not given; the caller answers INVALID_REQUEST for one without the other. */
void txn_init_producer_id(txn_coordinator_t *tc, kslice_t transactional_id,
                          int32_t transaction_timeout_ms, int64_t expected_pid,
                          int16_t expected_epoch, txn_init_done_fn done, void *arg);

/* ---- AddPartitionsToTxn, AddOffsetsToTxn, EndTxn ---- */

typedef void (*txn_done_fn)(void *arg, int16_t error);

typedef struct txn_partition_ref {
    kslice_t topic;
    int32_t partition;
} txn_partition_ref_t;

/* Adds parts to the producer's transaction (the caller checked that they
 * exist). AddOffsetsToTxn passes the group's __consumer_offsets partition. */
void txn_add_partitions(txn_coordinator_t *tc, kslice_t transactional_id, int64_t producer_id,
                        int16_t producer_epoch, const txn_partition_ref_t *parts, int32_t nparts,
                        txn_done_fn done, void *arg);

void txn_end(txn_coordinator_t *tc, kslice_t transactional_id, int64_t producer_id,
             int16_t producer_epoch, bool commit, txn_done_fn done, void *arg);

/* ---- DescribeTransactions, ListTransactions ---- */

typedef struct txn_description {
    int16_t error;
    const char *state; /* Kafka's name; "" on error */
    int32_t timeout_ms;
    int64_t start_ms;
    int64_t producer_id;
    int16_t producer_epoch;
    /* The transaction's partitions (while preparing: those without their
     * marker yet), sorted by topic then partition: heap, the caller frees
     * `partitions`, which also holds the topic names. */
    txn_partition_ref_t *partitions;
    int32_t npartitions;
} txn_description_t;

void txn_describe(txn_coordinator_t *tc, kslice_t transactional_id, txn_description_t *out);

typedef struct txn_listing {
    const char *transactional_id;
    int64_t producer_id;
    const char *state;
} txn_listing_t;

typedef struct txn_list_filter {
    const kslice_t *states; /* names; none: all */
    int32_t nstates;
    const int64_t *producer_ids; /* none: all */
    int32_t nproducer_ids;
    int64_t min_duration_ms; /* v1: only transactions running longer; -1: all */
} txn_list_filter_t;

/* The ids this broker coordinates that match the filter. Returns NONE or
 * COORDINATOR_LOAD_IN_PROGRESS (a partition is still loading; nothing is
 * listed then, as Kafka). *out is heap, the caller frees it (the strings
 * live in the same allocation). *unknown_states lists the filter's state
 * names that are no state (heap array of views into filter->states, the
 * caller frees it). */
int16_t txn_list(txn_coordinator_t *tc, const txn_list_filter_t *filter, txn_listing_t **out,
                 int32_t *count, kslice_t **unknown_states, int32_t *nunknown);

#endif
