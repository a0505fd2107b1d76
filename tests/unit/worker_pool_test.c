/* test_worker_pool: completions run on the loop thread, jobs of one order
 * key run and complete in submission order, stop runs every queued job,
 * and the queue bound refuses. */
#include <CUnit/Basic.h>
#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "unit_run.h"
#include "vlog.h"
#include "worker_pool.h"

#define JOBS 200

typedef struct test_job {
    pthread_t loop_thread;
    pthread_t work_thread;
    int index;
    int *completed_order; /* shared log of completion indexes */
    int *ncompleted;
    atomic_int *started_order_next;
    int started_order; /* when its work started, among its key's jobs */
    bool done_on_loop;
    atomic_bool *release; /* work waits for it, when set */
} test_job_t;

static void job_work(void *arg)
{
    test_job_t *j = arg;
    j->work_thread = pthread_self();
    if (j->started_order_next != NULL)
        j->started_order = atomic_fetch_add(j->started_order_next, 1);
    if (j->release != NULL)
        while (!atomic_load(j->release))
            sched_yield();
    /* A little work, so that jobs overlap. */
    struct timespec ts = {0, 100000 * (j->index % 3)};
    nanosleep(&ts, NULL);
}

static void job_done(void *arg)
{
    test_job_t *j = arg;
    j->done_on_loop = pthread_equal(pthread_self(), j->loop_thread);
    j->completed_order[(*j->ncompleted)++] = j->index;
}

/* Runs the loop until n completions arrived or 10 s passed. */
static void run_until(struct ev_loop *loop, const int *ncompleted, int n)
{
    time_t deadline = time(NULL) + 10;
    while (*ncompleted < n && time(NULL) < deadline)
        ev_run(loop, EVRUN_ONCE | EVRUN_NOWAIT), sched_yield();
}

static void test_completion_on_loop(void)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    worker_pool_t *pool = worker_pool_create(loop, 2, JOBS);
    static test_job_t jobs[JOBS];
    int order[JOBS], n = 0;
    for (int i = 0; i < JOBS; i++) {
        jobs[i] = (test_job_t){
            .loop_thread = pthread_self(), .index = i, .completed_order = order, .ncompleted = &n};
        CU_ASSERT_TRUE_FATAL(worker_pool_submit(pool, 0, job_work, job_done, &jobs[i]));
    }
    run_until(loop, &n, JOBS);
    CU_ASSERT_EQUAL(n, JOBS);
    CU_ASSERT_EQUAL(worker_pool_pending(pool), 0);
    for (int i = 0; i < JOBS; i++) {
        CU_ASSERT_TRUE(jobs[i].done_on_loop);
        CU_ASSERT_FALSE(pthread_equal(jobs[i].work_thread, pthread_self()));
    }
    worker_pool_free(pool);
    ev_loop_destroy(loop);
}

static void test_same_key_in_order(void)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    worker_pool_t *pool = worker_pool_create(loop, 4, JOBS);
    static test_job_t jobs[JOBS];
    int order[JOBS], n = 0;
    atomic_int started[2] = {0, 0};
    /* Two keys interleaved: within a key, start and completion follow
     * submission; keys 7 and 9 may overlap each other. */
    for (int i = 0; i < JOBS; i++) {
        jobs[i] = (test_job_t){.loop_thread = pthread_self(),
                               .index = i,
                               .completed_order = order,
                               .ncompleted = &n,
                               .started_order_next = &started[i % 2]};
        CU_ASSERT_TRUE_FATAL(worker_pool_submit(pool, i % 2 ? 9 : 7, job_work, job_done, &jobs[i]));
    }
    run_until(loop, &n, JOBS);
    CU_ASSERT_EQUAL_FATAL(n, JOBS);
    for (int i = 0; i < JOBS; i++)
        CU_ASSERT_EQUAL(jobs[i].started_order, i / 2);
    int last[2] = {-1, -1};
    for (int k = 0; k < JOBS; k++) {
        int i = order[k];
        CU_ASSERT_TRUE(i > last[i % 2]);
        last[i % 2] = i;
    }
    worker_pool_free(pool);
    ev_loop_destroy(loop);
}

static void test_stop_runs_queued(void)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    worker_pool_t *pool = worker_pool_create(loop, 2, JOBS);
    static test_job_t jobs[JOBS];
    int order[JOBS], n = 0;
    for (int i = 0; i < JOBS; i++) {
        jobs[i] = (test_job_t){
            .loop_thread = pthread_self(), .index = i, .completed_order = order, .ncompleted = &n};
        CU_ASSERT_TRUE_FATAL(worker_pool_submit(pool, 0, job_work, job_done, &jobs[i]));
    }
    /* No loop iteration: stop itself runs the work and the completions. */
    worker_pool_stop(pool);
    CU_ASSERT_EQUAL(n, JOBS);
    CU_ASSERT_EQUAL(worker_pool_pending(pool), 0);
    for (int i = 0; i < JOBS; i++)
        CU_ASSERT_TRUE(jobs[i].done_on_loop);
    CU_ASSERT_FALSE(worker_pool_submit(pool, 0, job_work, job_done, &jobs[0]));
    worker_pool_free(pool);
    ev_loop_destroy(loop);
}

static void test_queue_bound(void)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    worker_pool_t *pool = worker_pool_create(loop, 1, 3);
    static test_job_t jobs[4];
    int order[4], n = 0;
    atomic_bool release = false;
    for (int i = 0; i < 4; i++)
        jobs[i] = (test_job_t){.loop_thread = pthread_self(),
                               .index = i,
                               .completed_order = order,
                               .ncompleted = &n,
                               .release = &release};
    for (int i = 0; i < 3; i++)
        CU_ASSERT_TRUE(worker_pool_submit(pool, 0, job_work, job_done, &jobs[i]));
    CU_ASSERT_EQUAL(worker_pool_pending(pool), 3);
    CU_ASSERT_FALSE(worker_pool_submit(pool, 0, job_work, job_done, &jobs[3]));
    atomic_store(&release, true);
    run_until(loop, &n, 3);
    CU_ASSERT_EQUAL(n, 3);
    /* Room again once the completions ran. */
    CU_ASSERT_TRUE(worker_pool_submit(pool, 0, job_work, job_done, &jobs[3]));
    run_until(loop, &n, 4);
    CU_ASSERT_EQUAL(n, 4);
    worker_pool_free(pool);
    ev_loop_destroy(loop);
}

int main(void)
{
    vlog_set_level(VLOG_ERROR);
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("worker_pool", NULL, NULL);
    CU_add_test(s, "completion on the loop thread", test_completion_on_loop);
    CU_add_test(s, "one order key: start and completion in order", test_same_key_in_order);
    CU_add_test(s, "stop runs queued jobs and their completions", test_stop_runs_queued);
    CU_add_test(s, "queue bound refuses, then admits", test_queue_bound);
    return unit_run_registered();
}
