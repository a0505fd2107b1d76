/* InitProducerId v0-4 (flexible from v2).
 *
 * Without a transactional id (an idempotent producer) the answer is a
 * fresh producer id at epoch 0 from this broker's producer-id blocks,
 * whatever producer id and epoch a v3+ request names: Kafka does the same
 * (KIP-360's epoch bump is for transactional ids; an idempotent producer
 * that lost its sequence state simply starts over with a new id). Any
 * broker answers it, as clients send it to the least loaded one.
 *
 * With a transactional id the request goes to the transaction
 * coordinator (broker/txn/txn_coordinator.h): the id's producer id with
 * its epoch bumped (fencing older producers), KIP-360's producer id and
 * epoch from v3 on. Kafka refuses a v3+ request naming one of the two
 * without the other (INVALID_REQUEST), and answers clients before v4,
 * which do not know PRODUCER_FENCED, with INVALID_PRODUCER_EPOCH. */
#include <assert.h>
#include <stdlib.h>

#include "api_handlers.h"
#include "kafka_errors.h"
#include "producer_ids.h"
#include "txn_coordinator.h"
#include "xalloc.h"

typedef struct init_pid_op {
    api_deferred_t d;
} init_pid_op_t;

static void init_pid_write(kafka_response_t *resp, bool flexible, int16_t error,
                           int64_t producer_id, int16_t epoch)
{
    kwriter_t *w = &resp->body;
    assert(w->len == 0);
    kw_i32(w, 0); /* throttle_time_ms */
    kw_i16(w, error);
    kw_i64(w, producer_id);
    kw_i16(w, epoch);
    kw_tags_v(w, flexible);
}

static void init_pid_done(void *arg, int16_t error, int64_t producer_id)
{
    init_pid_op_t *op = arg;
    assert(error != KAFKA_NONE || producer_id >= 0);
    /* The reservation's errors are ZooKeeper's trouble, which the client
     * should retry: Kafka maps a failed block request the same way. */
    if (error != KAFKA_NONE)
        error = KAFKA_COORDINATOR_NOT_AVAILABLE;
    init_pid_write(op->d.resp, op->d.req->flexible, error, error == KAFKA_NONE ? producer_id : -1,
                   error == KAFKA_NONE ? 0 : -1);
    api_deferred_answer(&op->d);
}

/* The first version whose clients know PRODUCER_FENCED (KIP-588). */
#define FIRST_VERSION_PRODUCER_FENCED 4

static void init_txn_done(void *arg, int16_t error, int64_t producer_id, int16_t epoch)
{
    init_pid_op_t *op = arg;
    if (error == KAFKA_PRODUCER_FENCED && op->d.req->api_version < FIRST_VERSION_PRODUCER_FENCED)
        error = KAFKA_INVALID_PRODUCER_EPOCH;
    init_pid_write(op->d.resp, op->d.req->flexible, error, producer_id, epoch);
    api_deferred_answer(&op->d);
}

api_result_t api_handle_init_producer_id(api_context_t *ctx, kafka_request_t *req,
                                         kafka_response_t *resp)
{
    kreader_t *r = &req->body;
    const int16_t version = req->api_version;
    const bool flexible = req->flexible;
    assert(version >= 0 && version <= 4);
    assert(flexible == (version >= 2));

    kslice_t transactional_id;
    int32_t transaction_timeout_ms;
    int64_t producer_id = -1;
    int16_t producer_epoch = -1;
    kr_nullable_string_v(r, flexible, &transactional_id);
    kr_i32(r, &transaction_timeout_ms);
    if (version >= 3) {
        kr_i64(r, &producer_id);
        kr_i16(r, &producer_epoch);
    }
    kr_tags_v(r, flexible);
    if (!kr_ok(r))
        return API_REFUSE(req, "malformed InitProducerId request");

    /* Kafka refuses a producer id without its epoch (or the other way
     * round) with or without a transactional id. */
    if ((producer_id == -1) != (producer_epoch == -1)) {
        init_pid_write(resp, flexible, KAFKA_INVALID_REQUEST, -1, -1);
        return API_RESPOND;
    }
    if (transactional_id.ptr != NULL) {
        if (ctx->txns == NULL) {
            init_pid_write(resp, flexible, KAFKA_COORDINATOR_NOT_AVAILABLE, -1, -1);
            return API_RESPOND;
        }
        init_pid_op_t *op = xcalloc(1, sizeof(*op));
        api_deferred_begin(&op->d, req, resp, free, op);
        txn_init_producer_id(ctx->txns, transactional_id, transaction_timeout_ms, producer_id,
                             producer_epoch, init_txn_done, op);
        return api_deferred_end(&op->d);
    }
    if (ctx->producer_ids == NULL) {
        init_pid_write(resp, flexible, KAFKA_COORDINATOR_NOT_AVAILABLE, -1, -1);
        return API_RESPOND;
    }
    init_pid_op_t *op = xcalloc(1, sizeof(*op));
    api_deferred_begin(&op->d, req, resp, free, op);
    producer_id_manager_next(ctx->producer_ids, init_pid_done, op);
    return api_deferred_end(&op->d);
}
