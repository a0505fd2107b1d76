/* The worker pool: a FIFO of jobs under one mutex, workers that take the
 * first job whose order key is not running, and a list of finished jobs
 * that an ev_async hands back to the loop thread. */
#include "worker_pool.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "vlog.h"
#include "xalloc.h"

typedef struct wp_job {
    uint64_t order_key; /* 0: no ordering */
    worker_work_fn work;
    worker_done_fn done;
    void *arg;
    struct wp_job *next;
} wp_job_t;

typedef struct wp_list {
    wp_job_t *head, *tail;
} wp_list_t;

struct worker_pool {
    struct ev_loop *loop;
    ev_async wake; /* a worker finished a job */
    pthread_mutex_t mu;
    pthread_cond_t ready; /* a job was queued, a key was released, or stop */
    pthread_t threads[WORKER_POOL_MAX_THREADS];
    uint64_t running_key[WORKER_POOL_MAX_THREADS]; /* 0 when idle or keyless */
    int nthreads;
    size_t queue_max;
    size_t pending;   /* submitted, completion not yet run (loop thread only) */
    wp_list_t queued; /* under mu */
    wp_list_t done;   /* under mu */
    bool stopping;    /* under mu */
    bool stopped;     /* loop thread only */
};

typedef struct wp_worker_arg {
    worker_pool_t *pool;
    int index;
} wp_worker_arg_t;

static void wp_list_push(wp_list_t *l, wp_job_t *job)
{
    job->next = NULL;
    if (l->tail != NULL)
        l->tail->next = job;
    else
        l->head = job;
    l->tail = job;
}

static bool wp_key_running(const worker_pool_t *pool, uint64_t key)
{
    if (key == 0)
        return false;
    for (int i = 0; i < pool->nthreads; i++)
        if (pool->running_key[i] == key)
            return true;
    return false;
}

/* Unlinks and returns the first queued job that may start now (its key
 * not running, nor held by an earlier queued job), or NULL. Under mu. */
static wp_job_t *wp_take_runnable(worker_pool_t *pool)
{
    wp_job_t *prev = NULL;
    for (wp_job_t *j = pool->queued.head; j != NULL; prev = j, j = j->next) {
        if (wp_key_running(pool, j->order_key))
            continue;
        bool earlier = false;
        for (wp_job_t *e = pool->queued.head; e != j && !earlier; e = e->next)
            earlier = j->order_key != 0 && e->order_key == j->order_key;
        if (earlier)
            continue;
        if (prev != NULL)
            prev->next = j->next;
        else
            pool->queued.head = j->next;
        if (pool->queued.tail == j)
            pool->queued.tail = prev;
        j->next = NULL;
        return j;
    }
    return NULL;
}

static void *wp_worker_main(void *p)
{
    wp_worker_arg_t *wa = p;
    worker_pool_t *pool = wa->pool;
    const int index = wa->index;
    free(wa);
    pthread_mutex_lock(&pool->mu);
    for (;;) {
        wp_job_t *job = wp_take_runnable(pool);
        if (job == NULL) {
            if (pool->stopping && pool->queued.head == NULL)
                break;
            pthread_cond_wait(&pool->ready, &pool->mu);
            continue;
        }
        assert(pool->running_key[index] == 0);
        pool->running_key[index] = job->order_key;
        pthread_mutex_unlock(&pool->mu);
        job->work(job->arg);
        pthread_mutex_lock(&pool->mu);
        pool->running_key[index] = 0;
        /* Still under mu: a later job of the same key cannot finish first. */
        wp_list_push(&pool->done, job);
        if (job->order_key != 0)
            pthread_cond_broadcast(&pool->ready);
        ev_async_send(pool->loop, &pool->wake);
    }
    pthread_mutex_unlock(&pool->mu);
    return NULL;
}

/* Runs the completions of every finished job, in finishing order. */
static void wp_run_completions(worker_pool_t *pool)
{
    pthread_mutex_lock(&pool->mu);
    wp_job_t *job = pool->done.head;
    pool->done.head = pool->done.tail = NULL;
    pthread_mutex_unlock(&pool->mu);
    while (job != NULL) {
        wp_job_t *next = job->next;
        assert(pool->pending > 0);
        pool->pending--;
        if (job->done != NULL)
            job->done(job->arg);
        free(job);
        job = next;
    }
}

static void wp_wake_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    (void)loop;
    (void)revents;
    wp_run_completions(w->data);
}

worker_pool_t *worker_pool_create(struct ev_loop *loop, int threads, size_t queue_max)
{
    assert(loop != NULL);
    assert(threads >= 1 && threads <= WORKER_POOL_MAX_THREADS && queue_max >= 1);
    worker_pool_t *pool = xcalloc(1, sizeof(*pool));
    pool->loop = loop;
    pool->queue_max = queue_max;
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->ready, NULL);
    ev_async_init(&pool->wake, wp_wake_cb);
    pool->wake.data = pool;
    ev_async_start(loop, &pool->wake);
    /* The async watcher alone must not keep ev_run going. */
    ev_unref(loop);
    for (int i = 0; i < threads; i++) {
        wp_worker_arg_t *wa = xmalloc(sizeof(*wa));
        *wa = (wp_worker_arg_t){pool, i};
        int rc = pthread_create(&pool->threads[i], NULL, wp_worker_main, wa);
        if (rc != 0) {
            VLOG_ERR("worker", "cannot start worker thread %d: %s", i, strerror(rc));
            abort();
        }
        pool->nthreads++;
    }
    return pool;
}

bool worker_pool_submit(worker_pool_t *pool, uint64_t order_key, worker_work_fn work,
                        worker_done_fn done, void *arg)
{
    assert(pool != NULL && work != NULL);
    if (pool->stopped || pool->pending >= pool->queue_max)
        return false;
    wp_job_t *job = xmalloc(sizeof(*job));
    *job = (wp_job_t){order_key, work, done, arg, NULL};
    pthread_mutex_lock(&pool->mu);
    bool stopping = pool->stopping;
    if (!stopping) {
        wp_list_push(&pool->queued, job);
        pthread_cond_signal(&pool->ready);
    }
    pthread_mutex_unlock(&pool->mu);
    if (stopping) {
        free(job);
        return false;
    }
    pool->pending++;
    assert(pool->pending <= pool->queue_max);
    return true;
}

size_t worker_pool_pending(const worker_pool_t *pool)
{
    assert(pool != NULL);
    return pool->pending;
}

void worker_pool_stop(worker_pool_t *pool)
{
    assert(pool != NULL);
    if (pool->stopped)
        return;
    pthread_mutex_lock(&pool->mu);
    pool->stopping = true;
    pthread_cond_broadcast(&pool->ready);
    pthread_mutex_unlock(&pool->mu);
    for (int i = 0; i < pool->nthreads; i++)
        pthread_join(pool->threads[i], NULL);
    pool->stopped = true;
    assert(pool->queued.head == NULL);
    ev_ref(pool->loop);
    ev_async_stop(pool->loop, &pool->wake);
    wp_run_completions(pool);
    assert(pool->pending == 0);
}

void worker_pool_free(worker_pool_t *pool)
{
    if (pool == NULL)
        return;
    worker_pool_stop(pool);
    pthread_mutex_destroy(&pool->mu);
    pthread_cond_destroy(&pool->ready);
    free(pool);
}
