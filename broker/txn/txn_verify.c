/* Partition verification (KIP-890 part 1, Kafka 3.6+ with
 * transaction.partition.verification.enable): before a Produce appends a
 * transaction's first batch to a partition, the partition's leader asks the
 * transactional id's coordinator whether the partition is in that
 * producer's ongoing transaction, so that a producer that never called
 * AddPartitionsToTxn cannot leave a transaction open in a partition the
 * coordinator knows nothing of (a "hanging" transaction no marker ends).
 *
 * Both sides live here: the asking side routes to the leader of the id's
 * __transaction_state partition (this broker: answered from memory at once;
 * another broker: RPC_VERIFY_PARTITIONS_IN_TXN), the answering side is
 * Kafka's TransactionCoordinator.handleVerifyPartitionsInTransaction, which
 * reads the metadata without writing anything. Kafka's
 * AddPartitionsToTxnManager batches these per coordinator node; here one
 * RPC carries one Produce request's partitions (a Produce names one
 * transactional id), bounded by TXN_VERIFY_MAX_INFLIGHT. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator.h"
#include "group_coordinator.h"
#include "kafka_errors.h"
#include "rpc.h"
#include "rpc.pb-c.h"
#include "txn_internal.h"
#include "vlog.h"
#include "xalloc.h"

/* ---- the coordinator's answer ---- */

/* Kafka's handleVerifyPartitionsInTransaction for an id this broker may
 * coordinate: the error for the whole transaction, or NONE with errors[i]
 * for each part. */
static int16_t verify_here(txn_coordinator_t *tc, const char *id, size_t id_len,
                           int64_t producer_id, int16_t producer_epoch,
                           const txn_partition_ref_t *parts, int32_t nparts, int16_t *errors)
{
    assert(nparts >= 1 && nparts <= TXN_VERIFY_MAX_PARTITIONS);
    if (id == NULL || id_len == 0)
        return KAFKA_INVALID_REQUEST;
    if (id_len > TXN_MAX_ID_BYTES)
        return KAFKA_INVALID_PRODUCER_ID_MAPPING; /* never coordinated here */
    int32_t partition, coordinator_epoch;
    int16_t error = txn_store_route(tc, id, id_len, &partition, &coordinator_epoch);
    if (error != KAFKA_NONE)
        return error;
    const txn_entry_t *e = txn_entry_find(tc, id, id_len);
    if (e == NULL || e->meta.producer_id != producer_id)
        return KAFKA_INVALID_PRODUCER_ID_MAPPING;
    if (e->meta.producer_epoch != producer_epoch)
        return KAFKA_PRODUCER_FENCED;
    if (e->meta.state == TXN_PREPARE_COMMIT || e->meta.state == TXN_PREPARE_ABORT)
        return KAFKA_CONCURRENT_TRANSACTIONS;
    /* Kafka checks membership alone: partitions join the set when their
     * AddPartitionsToTxn is durable and leave it with the completion, so
     * only an Ongoing transaction has any. The state is checked too so that
     * this holds whatever the set keeps between transactions. */
    const bool ongoing = e->meta.state == TXN_ONGOING;
    for (int32_t i = 0; i < nparts; i++) {
        const txn_partition_ref_t *p = &parts[i];
        errors[i] = ongoing && txn_tp_set_find(&e->meta.partitions, (const char *)p->topic.ptr,
                                               (size_t)p->topic.len, p->partition) >= 0
                        ? KAFKA_NONE
                        : KAFKA_INVALID_TXN_STATE;
    }
    return KAFKA_NONE;
}

static void answer_all(txn_verify_done_fn done, void *arg, int16_t error, int32_t n)
{
    int16_t *errors = xmalloc((size_t)n * sizeof(*errors));
    for (int32_t i = 0; i < n; i++)
        errors[i] = error;
    done(arg, errors, n);
    free(errors);
}

/* ---- asking a remote coordinator ---- */

typedef struct verify_op {
    txn_coordinator_t *tc;
    int32_t broker_id;
    int32_t nparts;
    txn_verify_done_fn done;
    void *arg;
} verify_op_t;

static void verify_rpc_done(void *arg, rpc_status_t status, int32_t error_code,
                            const uint8_t *payload, size_t len)
{
    verify_op_t *op = arg;
    assert(op->tc->verify_inflight > 0);
    op->tc->verify_inflight--;
    int16_t error = KAFKA_NETWORK_EXCEPTION;
    Vltava__VerifyPartitionsInTxnResponse *resp = NULL;
    if (status == RPC_OK && error_code == KAFKA_UNSUPPORTED_VERSION) {
        /* A broker that cannot verify (no handler for the type): Kafka
         * appends unverified when the coordinator cannot handle verify_only
         * (AddPartitionsToTxnManager's version mismatch). */
        VLOG_WARN(TXN_MODULE,
                  "broker %d cannot verify transactional partitions; appending "
                  "unverified",
                  op->broker_id);
        error = KAFKA_NONE;
    } else if (status == RPC_OK && error_code != KAFKA_NONE) {
        error = (int16_t)error_code;
    } else if (status == RPC_OK) {
        resp = vltava__verify_partitions_in_txn_response__unpack(NULL, len, payload);
        if (resp != NULL && resp->error_code != KAFKA_NONE)
            error = (int16_t)resp->error_code;
        else if (resp != NULL && resp->n_partition_error_codes == (size_t)op->nparts)
            error = KAFKA_NONE;
        else
            VLOG_WARN(TXN_MODULE, "broker %d answered a verification it was not asked",
                      op->broker_id);
    }
    if (resp != NULL && resp->error_code == KAFKA_NONE &&
        resp->n_partition_error_codes == (size_t)op->nparts) {
        int16_t *errors = xmalloc((size_t)op->nparts * sizeof(*errors));
        for (int32_t i = 0; i < op->nparts; i++)
            errors[i] = (int16_t)resp->partition_error_codes[i];
        op->done(op->arg, errors, op->nparts);
        free(errors);
    } else {
        answer_all(op->done, op->arg, error, op->nparts);
    }
    if (resp != NULL)
        vltava__verify_partitions_in_txn_response__free_unpacked(resp, NULL);
    free(op);
}

static void verify_remote(txn_coordinator_t *tc, int32_t broker_id, kslice_t transactional_id,
                          int64_t producer_id, int16_t producer_epoch,
                          const txn_partition_ref_t *parts, int32_t nparts, txn_verify_done_fn done,
                          void *arg)
{
    struct rpc *rpc = tc->stopped ? NULL : coordinator_rpc(tc->coord);
    if (rpc == NULL || tc->verify_inflight >= TXN_VERIFY_MAX_INFLIGHT) {
        answer_all(done, arg, KAFKA_COORDINATOR_NOT_AVAILABLE, nparts);
        return;
    }
    /* The message's strings are copies: protobuf-c wants them terminated. */
    char *id = xmalloc((size_t)transactional_id.len + 1);
    memcpy(id, transactional_id.ptr, (size_t)transactional_id.len);
    id[transactional_id.len] = '\0';
    Vltava__TxnPartition *entries = xcalloc((size_t)nparts, sizeof(*entries));
    Vltava__TxnPartition **ptrs = xcalloc((size_t)nparts, sizeof(*ptrs));
    for (int32_t i = 0; i < nparts; i++) {
        vltava__txn_partition__init(&entries[i]);
        char *topic = xmalloc((size_t)parts[i].topic.len + 1);
        memcpy(topic, parts[i].topic.ptr, (size_t)parts[i].topic.len);
        topic[parts[i].topic.len] = '\0';
        entries[i].topic = topic;
        entries[i].partition = parts[i].partition;
        ptrs[i] = &entries[i];
    }
    Vltava__VerifyPartitionsInTxnRequest m = VLTAVA__VERIFY_PARTITIONS_IN_TXN_REQUEST__INIT;
    m.transactional_id = id;
    m.producer_id = producer_id;
    m.producer_epoch = producer_epoch;
    m.n_partitions = (size_t)nparts;
    m.partitions = ptrs;
    size_t len = vltava__verify_partitions_in_txn_request__get_packed_size(&m);
    uint8_t *buf = xmalloc(len ? len : 1);
    vltava__verify_partitions_in_txn_request__pack(&m, buf);
    for (int32_t i = 0; i < nparts; i++)
        free(entries[i].topic);
    free(ptrs);
    free(entries);
    free(id);

    verify_op_t *op = xmalloc(sizeof(*op));
    *op =
        (verify_op_t){.tc = tc, .broker_id = broker_id, .nparts = nparts, .done = done, .arg = arg};
    int rc = rpc_send(rpc, broker_id, VLTAVA__RPC_TYPE__RPC_VERIFY_PARTITIONS_IN_TXN, buf, len,
                      TXN_VERIFY_TIMEOUT_MS, verify_rpc_done, op);
    free(buf);
    if (rc != 0) {
        free(op);
        answer_all(done, arg, KAFKA_NETWORK_EXCEPTION, nparts);
        return;
    }
    tc->verify_inflight++;
}

void txn_verify_partitions(txn_coordinator_t *tc, kslice_t transactional_id, int64_t producer_id,
                           int16_t producer_epoch, const txn_partition_ref_t *parts, int32_t nparts,
                           txn_verify_done_fn done, void *arg)
{
    assert(tc != NULL && !tc->freeing && done != NULL);
    assert(nparts >= 1 && nparts <= TXN_VERIFY_MAX_PARTITIONS && parts != NULL);
    const cluster_metadata_t *md = coordinator_metadata(tc->coord);
    const md_topic_t *t = cluster_metadata_topic(md, TXN_STATE_TOPIC, strlen(TXN_STATE_TOPIC));
    int32_t leader = -1;
    if (transactional_id.ptr != NULL && transactional_id.len > 0 && t != NULL &&
        t->npartitions > 0) {
        int32_t partition =
            group_partition_for(transactional_id.ptr, (size_t)transactional_id.len, t->npartitions);
        leader = t->partitions[partition].leader;
    }
    if (leader >= 0 && leader != coordinator_broker_id(tc->coord)) {
        verify_remote(tc, leader, transactional_id, producer_id, producer_epoch, parts, nparts,
                      done, arg);
        return;
    }
    if (leader < 0 && transactional_id.ptr != NULL && transactional_id.len > 0) {
        answer_all(done, arg, KAFKA_COORDINATOR_NOT_AVAILABLE, nparts);
        return;
    }
    int16_t *errors = xmalloc((size_t)nparts * sizeof(*errors));
    int16_t error =
        verify_here(tc, (const char *)transactional_id.ptr, (size_t)transactional_id.len,
                    producer_id, producer_epoch, parts, nparts, errors);
    if (error != KAFKA_NONE)
        for (int32_t i = 0; i < nparts; i++)
            errors[i] = error;
    done(arg, errors, nparts);
    free(errors);
}

/* ---- answering as coordinator ---- */

static void respond(rpc_request_t *req, int16_t error, const int16_t *errors, int32_t n)
{
    Vltava__VerifyPartitionsInTxnResponse m = VLTAVA__VERIFY_PARTITIONS_IN_TXN_RESPONSE__INIT;
    int32_t *codes = NULL;
    m.error_code = error;
    if (error == KAFKA_NONE) {
        codes = xcalloc((size_t)(n > 0 ? n : 1), sizeof(*codes));
        for (int32_t i = 0; i < n; i++)
            codes[i] = errors[i];
        m.n_partition_error_codes = (size_t)n;
        m.partition_error_codes = codes;
    }
    size_t len = vltava__verify_partitions_in_txn_response__get_packed_size(&m);
    uint8_t *buf = xmalloc(len ? len : 1);
    vltava__verify_partitions_in_txn_response__pack(&m, buf);
    rpc_respond(req, KAFKA_NONE, buf, len);
    free(buf);
    free(codes);
}

static void on_verify(void *arg, rpc_request_t *req, int32_t sender_id, const uint8_t *payload,
                      size_t len)
{
    txn_coordinator_t *tc = arg;
    Vltava__VerifyPartitionsInTxnRequest *m =
        vltava__verify_partitions_in_txn_request__unpack(NULL, len, payload);
    /* The epoch travels as int32: one outside int16 is no producer's. */
    if (m == NULL || m->n_partitions == 0 || m->n_partitions > TXN_VERIFY_MAX_PARTITIONS ||
        m->producer_epoch < 0 || m->producer_epoch > INT16_MAX) {
        VLOG_WARN(TXN_MODULE, "refusing a VerifyPartitionsInTxn request from broker %d%s",
                  sender_id, m == NULL ? " (undecodable)" : "");
        if (m)
            vltava__verify_partitions_in_txn_request__free_unpacked(m, NULL);
        respond(req, KAFKA_INVALID_REQUEST, NULL, 0);
        return;
    }
    const int32_t n = (int32_t)m->n_partitions;
    txn_partition_ref_t *parts = xcalloc((size_t)n, sizeof(*parts));
    for (int32_t i = 0; i < n; i++) {
        const char *topic = m->partitions[i]->topic ? m->partitions[i]->topic : "";
        parts[i] = (txn_partition_ref_t){{(const uint8_t *)topic, (int32_t)strlen(topic)},
                                         m->partitions[i]->partition};
    }
    int16_t *errors = xcalloc((size_t)n, sizeof(*errors));
    const char *id = m->transactional_id ? m->transactional_id : "";
    int16_t error = verify_here(tc, id, strlen(id), m->producer_id, (int16_t)m->producer_epoch,
                                parts, n, errors);
    respond(req, error, errors, n);
    free(errors);
    free(parts);
    vltava__verify_partitions_in_txn_request__free_unpacked(m, NULL);
}

void txn_verify_init(txn_coordinator_t *tc)
{
    assert(tc != NULL && tc->verify_inflight == 0);
    struct rpc *rpc = coordinator_rpc(tc->coord);
    if (rpc)
        rpc_set_handler(rpc, VLTAVA__RPC_TYPE__RPC_VERIFY_PARTITIONS_IN_TXN, on_verify, tc);
}
