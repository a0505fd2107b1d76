/* A small pool of threads for work that can stall on the disk (fsync,
 * checkpoint writes, unlinking segments), so that the loop thread never
 * waits for it. Each job is a work function run on a worker thread and a
 * completion run back on the loop thread (through an ev_async), both with
 * the job's argument.
 *
 * Locality: worker_pool_create, _submit, _stop and _free are called on the
 * loop thread only; the work function runs on a worker and must touch
 * nothing the loop owns (it gets only what the argument carries); the
 * completion runs on the loop thread.
 *
 * Ordering: jobs start in submission order. Jobs submitted with the same
 * non-zero order key run one at a time, in submission order, and complete
 * in that order (two writes of one file never overtake each other); jobs
 * with different keys, or key 0, may run and complete in any order.
 *
 * Bound: at most queue_max jobs are queued, running or awaiting their
 * completion at once; worker_pool_submit refuses beyond that and the caller
 * decides (retry later, or do the work itself).
 */
#ifndef VLTAVA_WORKER_POOL_H
#define VLTAVA_WORKER_POOL_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct worker_pool worker_pool_t;

/* Runs on a worker thread. */
typedef void (*worker_work_fn)(void *arg);
/* Runs on the loop thread after the work; owns arg from then on. */
typedef void (*worker_done_fn)(void *arg);

#define WORKER_POOL_MAX_THREADS 64

/* threads in [1, WORKER_POOL_MAX_THREADS], queue_max >= 1. Aborts if a
 * thread cannot be started (as on OOM: nothing can run without it). */
worker_pool_t *worker_pool_create(struct ev_loop *loop, int threads, size_t queue_max);
/* Queues a job. false (nothing queued, arg still the caller's) when the
 * pool holds queue_max jobs already or is stopping. done may be NULL. */
bool worker_pool_submit(worker_pool_t *pool, uint64_t order_key, worker_work_fn work,
                        worker_done_fn done, void *arg);
/* Jobs submitted and not yet completed. */
size_t worker_pool_pending(const worker_pool_t *pool);
/* Runs every queued job's work, joins the threads, then runs every pending
 * completion on the calling (loop) thread. Submissions are refused from
 * the moment stop begins, completions included. Idempotent. */
void worker_pool_stop(worker_pool_t *pool);
/* Stops (if not yet) and frees. NULL is a no-op. */
void worker_pool_free(worker_pool_t *pool);

#endif
