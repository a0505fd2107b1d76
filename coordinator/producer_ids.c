/* Producer-id blocks, as Kafka's ZooKeeper mode hands them out
 * (ProducerIdManager): /latest_producer_id_block names the last block any
 * broker reserved; a broker that needs ids reads it and writes the next
 * block conditionally on the version it read (or creates the znode when
 * none exists). A broker that loses the race reads again. So two brokers
 * never hand out the same id, without the controller in the way. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <zookeeper/zookeeper.h>

#include "coord_internal.h"
#include "coord_state.h"
#include "kafka_errors.h"
#include "vlog.h"
#include "xalloc.h"

#define PRODUCER_ID_BLOCK_PATH "/latest_producer_id_block"
/* Races lost in a row before giving up: each loss means another broker
 * got a block, so many in a row means ZooKeeper is thrashing. */
#define PRODUCER_ID_BLOCK_ATTEMPTS 20

typedef struct pid_op {
    coordinator_pid_block_fn done;
    void *arg;
    int32_t count;
    int attempts;
    int64_t start, end; /* the block being written */
} pid_op_t;

static void pid_read(coordinator_t *c, pid_op_t *op);

static void pid_finish(pid_op_t *op, int16_t error)
{
    assert(op->done != NULL);
    if (error == KAFKA_NONE)
        op->done(op->arg, KAFKA_NONE, op->start, op->end);
    else
        op->done(op->arg, error, -1, -1);
    free(op);
}

static void on_pid_written(coordinator_t *c, zk_call_t *call)
{
    pid_op_t *op = call->arg;
    if (c->stopping) {
        pid_finish(op, KAFKA_REQUEST_TIMED_OUT);
        return;
    }
    if (call->rc == ZOK) {
        VLOG_INFO("coord", "producer ids [%lld, %lld] reserved", (long long)op->start,
                  (long long)op->end);
        pid_finish(op, KAFKA_NONE);
        return;
    }
    bool lost_race = call->rc == ZBADVERSION || call->rc == ZNODEEXISTS;
    if (lost_race && ++op->attempts < PRODUCER_ID_BLOCK_ATTEMPTS) {
        pid_read(c, op);
        return;
    }
    VLOG_WARN("coord", "reserving producer ids failed: %s",
              lost_race ? "too many races lost" : zerror(call->rc));
    pid_finish(op, KAFKA_REQUEST_TIMED_OUT);
}

static void on_pid_read(coordinator_t *c, zk_call_t *call)
{
    pid_op_t *op = call->arg;
    if (c->stopping) {
        pid_finish(op, KAFKA_REQUEST_TIMED_OUT);
        return;
    }
    if (call->rc != ZOK && call->rc != ZNONODE) {
        VLOG_WARN("coord", "reading %s failed: %s", PRODUCER_ID_BLOCK_PATH, zerror(call->rc));
        pid_finish(op, KAFKA_REQUEST_TIMED_OUT);
        return;
    }
    int64_t last_end = -1;
    if (call->rc == ZOK) {
        int64_t start;
        char err[160];
        if (znode_decode_producer_id_block((const uint8_t *)call->data, (size_t)call->data_len,
                                           &start, &last_end, err, sizeof(err)) != 0) {
            /* Never overwritten: whatever wrote it may know what it meant. */
            VLOG_ERR("coord", "%s: %s", PRODUCER_ID_BLOCK_PATH, err);
            pid_finish(op, KAFKA_UNKNOWN_SERVER_ERROR);
            return;
        }
    }
    if (last_end > INT64_MAX - op->count) {
        VLOG_ERR("coord", "producer ids are exhausted (the last block ends at %lld)",
                 (long long)last_end);
        pid_finish(op, KAFKA_UNKNOWN_SERVER_ERROR);
        return;
    }
    op->start = last_end + 1;
    op->end = last_end + op->count;
    size_t len;
    uint8_t *buf = znode_encode_producer_id_block(c->cfg.broker_id, op->start, op->end, &len);
    zk_call_t *write = zk_call_new(c, on_pid_written, op, PRODUCER_ID_BLOCK_PATH);
    write->always_complete = true;
    if (call->rc == ZNONODE) {
        zk_create(c, write, buf, len, 0);
    } else {
        zk_multi_set(write, PRODUCER_ID_BLOCK_PATH, buf, len, call->stat.version);
        zk_multi_submit(c, write);
    }
    free(buf);
}

static void pid_read(coordinator_t *c, pid_op_t *op)
{
    zk_call_t *call = zk_call_new(c, on_pid_read, op, PRODUCER_ID_BLOCK_PATH);
    call->always_complete = true;
    zk_get(c, call, false);
}

void coordinator_allocate_producer_ids(coordinator_t *c, int32_t count,
                                       coordinator_pid_block_fn done, void *arg)
{
    assert(done != NULL);
    assert(count > 0);
    pid_op_t *op = xcalloc(1, sizeof(*op));
    op->done = done;
    op->arg = arg;
    op->count = count;
    pid_read(c, op);
}
