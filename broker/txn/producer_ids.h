/* This broker's producer ids: a cache of the blocks reserved in ZooKeeper
 * (coordinator_allocate_producer_ids), handed out one at a time to
 * InitProducerId, as Kafka's ProducerIdManager does in ZooKeeper mode.
 *
 * Locality: the broker's loop thread. */
#ifndef VLTAVA_PRODUCER_IDS_H
#define VLTAVA_PRODUCER_IDS_H

#include <stdint.h>

#include "coordinator.h"

/* Ids reserved per ZooKeeper write: Kafka's block size. */
#define PRODUCER_ID_BLOCK_SIZE 1000

typedef struct producer_id_manager producer_id_manager_t;

producer_id_manager_t *producer_id_manager_new(coordinator_t *coord);
/* Answers every waiting request with REQUEST_TIMED_OUT, then frees. */
void producer_id_manager_free(producer_id_manager_t *m);

/* done runs exactly once: during the call when the current block has an id
 * left, else on the loop once the next block is reserved. error is NONE
 * with a fresh id, or the reservation's error (REQUEST_TIMED_OUT,
 * UNKNOWN_SERVER_ERROR; see coordinator_allocate_producer_ids) with -1.
 * No two calls, on any broker, get the same id. */
typedef void (*producer_id_done_fn)(void *arg, int16_t error, int64_t producer_id);
void producer_id_manager_next(producer_id_manager_t *m, producer_id_done_fn done, void *arg);

#endif
