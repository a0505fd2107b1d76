/* Requests wait in arrival order while a block is being reserved; there is
 * one reservation in flight at a time. The next block is asked for when the
 * current one is 90% used (Kafka's prefetch), so a steady stream of
 * InitProducerId rarely waits on ZooKeeper.
 *
 * The waiters are not bounded here: each is one Kafka request in flight,
 * and net bounds those (max connections times queued requests each). */
#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>

#include "kafka_errors.h"
#include "producer_ids.h"
#include "vlog.h"
#include "xalloc.h"

typedef struct pid_waiter {
    struct pid_waiter *next;
    producer_id_done_fn done;
    void *arg;
} pid_waiter_t;

struct producer_id_manager {
    coordinator_t *coord;
    int64_t next_id; /* next to hand out from the current block */
    int64_t last_id; /* the current block's last id; next_id > last_id: none left */
    int64_t prefetched_first, prefetched_last; /* a block reserved ahead; -1: none */
    bool reserving;
    pid_waiter_t *head, *tail;
    /* Set by producer_id_manager_free while a reservation is in flight: its
     * completion frees the manager instead of touching it. */
    bool orphaned;
};

static void pid_reserve(producer_id_manager_t *m);

producer_id_manager_t *producer_id_manager_new(coordinator_t *coord)
{
    assert(coord != NULL);
    producer_id_manager_t *m = xcalloc(1, sizeof(*m));
    m->coord = coord;
    m->next_id = 0;
    m->last_id = -1;
    m->prefetched_first = m->prefetched_last = -1;
    return m;
}

static void pid_fail_waiters(producer_id_manager_t *m, int16_t error)
{
    assert(error != KAFKA_NONE);
    while (m->head) {
        pid_waiter_t *w = m->head;
        m->head = w->next;
        if (m->head == NULL)
            m->tail = NULL;
        w->done(w->arg, error, -1);
        free(w);
    }
}

void producer_id_manager_free(producer_id_manager_t *m)
{
    if (m == NULL)
        return;
    pid_fail_waiters(m, KAFKA_REQUEST_TIMED_OUT);
    if (m->reserving)
        m->orphaned = true;
    else
        free(m);
}

static bool pid_take(producer_id_manager_t *m, int64_t *id)
{
    if (m->next_id > m->last_id && m->prefetched_first >= 0) {
        m->next_id = m->prefetched_first;
        m->last_id = m->prefetched_last;
        m->prefetched_first = m->prefetched_last = -1;
    }
    if (m->next_id > m->last_id)
        return false;
    *id = m->next_id++;
    assert(*id >= 0);
    return true;
}

/* Asks for the next block when requests wait or the current block is 90%
 * used and none is reserved ahead. Called last by its callers: the
 * reservation may complete during the call. */
static void pid_maybe_reserve(producer_id_manager_t *m)
{
    int64_t left = m->next_id > m->last_id ? 0 : m->last_id - m->next_id + 1;
    if (m->head != NULL || (left <= PRODUCER_ID_BLOCK_SIZE / 10 && m->prefetched_first < 0))
        pid_reserve(m);
}

static void pid_block_reserved(void *arg, int16_t error, int64_t first, int64_t last)
{
    producer_id_manager_t *m = arg;
    assert(m->reserving);
    m->reserving = false;
    if (m->orphaned) {
        free(m);
        return;
    }
    if (error != KAFKA_NONE) {
        VLOG_WARN("txn", "reserving producer ids failed: %s", kafka_error_name(error));
        pid_fail_waiters(m, error);
        return;
    }
    assert(first >= 0 && last >= first);
    if (m->next_id > m->last_id) {
        m->next_id = first;
        m->last_id = last;
    } else {
        m->prefetched_first = first;
        m->prefetched_last = last;
    }
    /* Serve the waiters in order; those the block cannot serve wait for
     * the next one. */
    int64_t id;
    while (m->head && pid_take(m, &id)) {
        pid_waiter_t *w = m->head;
        m->head = w->next;
        if (m->head == NULL)
            m->tail = NULL;
        w->done(w->arg, KAFKA_NONE, id);
        free(w);
    }
    pid_maybe_reserve(m);
}

static void pid_reserve(producer_id_manager_t *m)
{
    if (m->reserving)
        return;
    m->reserving = true;
    /* May complete during the call (the coordinator is stopping). */
    coordinator_allocate_producer_ids(m->coord, PRODUCER_ID_BLOCK_SIZE, pid_block_reserved, m);
}

void producer_id_manager_next(producer_id_manager_t *m, producer_id_done_fn done, void *arg)
{
    assert(m != NULL && !m->orphaned);
    assert(done != NULL);
    int64_t id;
    if (m->head == NULL && pid_take(m, &id)) {
        done(arg, KAFKA_NONE, id);
        pid_maybe_reserve(m);
        return;
    }
    pid_waiter_t *w = xcalloc(1, sizeof(*w));
    w->done = done;
    w->arg = arg;
    if (m->tail)
        m->tail->next = w;
    else
        m->head = w;
    m->tail = w;
    pid_maybe_reserve(m);
}
