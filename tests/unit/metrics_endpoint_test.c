/* CUnit tests for the metrics endpoint's loop glue, on a real socket: an
 * endpoint without sources (as before the broker has joined the cluster)
 * answers 503, and an endpoint that cannot accept for want of descriptors
 * does not spin the loop. Each runs in a child process: the second lowers
 * the descriptor limit, which must not outlive it. */
#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "metrics.h"
#include "unit_run.h"
#include "vlog.h"

/* Descriptors the child keeps its limit at: a few above what it has open. */
#define CHILD_FD_LIMIT 64
/* How long the loop runs with every descriptor taken. */
#define STARVED_S 1.0
/* Loop iterations allowed meanwhile: a paused endpoint wakes about every
 * 100 ms; one that spins wakes as fast as the CPU allows. */
#define STARVED_ITERATIONS_MAX 100
#define ANSWER_DEADLINE_NS     (10 * 1000000000LL)

enum child_failure {
    CHILD_OK,
    CHILD_START,
    CHILD_CONNECT,
    CHILD_RLIMIT,
    CHILD_FILL,
    CHILD_SPIN,
    CHILD_SEND,
    CHILD_NO_ANSWER,
};

static void break_loop(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

static void tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
}

static int connect_to(int32_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends a GET on client and runs the loop until the status line is in;
 * whether it is `status`. */
static bool answered(struct ev_loop *loop, int client, const char *status)
{
    static const char request[] = "GET /metrics HTTP/1.0\r\n\r\n";
    if (send(client, request, sizeof(request) - 1, 0) != (ssize_t)(sizeof(request) - 1))
        return false;
    ev_timer wake; /* so that EVRUN_ONCE returns even if nothing stirs */
    ev_timer_init(&wake, tick, 0.05, 0.05);
    ev_timer_start(loop, &wake);
    char buf[256];
    size_t len = 0;
    int64_t deadline = metrics_clock_ns() + ANSWER_DEADLINE_NS;
    while (len < sizeof(buf) - 1 && metrics_clock_ns() < deadline) {
        ev_run(loop, EVRUN_ONCE);
        ssize_t n = recv(client, buf + len, sizeof(buf) - 1 - len, MSG_DONTWAIT);
        if (n == 0)
            break;
        if (n > 0)
            len += (size_t)n;
        buf[len] = '\0';
        if (strstr(buf, "\r\n") != NULL)
            break;
    }
    ev_timer_stop(loop, &wake);
    buf[len] = '\0';
    return strncmp(buf, "HTTP/1.", 7) == 0 && strstr(buf, status) == buf + 9;
}

static int run_child(bool starve)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    char err[256];
    metrics_endpoint_t *ep = metrics_endpoint_start(loop, "127.0.0.1", 0, err, sizeof(err));
    if (ep == NULL)
        return CHILD_START;
    int client = connect_to(metrics_endpoint_port(ep)); /* completes in the backlog */
    if (client < 0)
        return CHILD_CONNECT;
    if (starve) {
        struct rlimit lim;
        if (getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_max < CHILD_FD_LIMIT)
            return CHILD_RLIMIT;
        lim.rlim_cur = CHILD_FD_LIMIT;
        if (setrlimit(RLIMIT_NOFILE, &lim) != 0)
            return CHILD_RLIMIT;
        int fillers[CHILD_FD_LIMIT];
        size_t nfillers = 0;
        while (nfillers < CHILD_FD_LIMIT && (fillers[nfillers] = dup(client)) >= 0)
            nfillers++;
        if (nfillers == CHILD_FD_LIMIT || errno != EMFILE)
            return CHILD_FILL;
        ev_timer stop;
        ev_timer_init(&stop, break_loop, STARVED_S, 0.);
        ev_timer_start(loop, &stop);
        unsigned int before = ev_iteration(loop);
        ev_run(loop, 0);
        unsigned int iterations = ev_iteration(loop) - before;
        for (size_t i = 0; i < nfillers; i++)
            close(fillers[i]);
        if (iterations > STARVED_ITERATIONS_MAX) {
            fprintf(stderr, "%u loop iterations in %.1f s with accept failing\n", iterations,
                    STARVED_S);
            return CHILD_SPIN;
        }
    }
    /* Descriptors back (or never short): the waiting connection is served. */
    if (!answered(loop, client, "503"))
        return CHILD_NO_ANSWER;
    close(client);
    metrics_endpoint_stop(ep);
    ev_loop_destroy(loop);
    return CHILD_OK;
}

static void in_child(bool starve)
{
    fflush(NULL);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0)
        _exit(run_child(starve)); /* _exit: no leak check with the descriptors taken */
    int status = 0;
    CU_ASSERT_FATAL(waitpid(pid, &status, 0) == pid);
    CU_ASSERT_TRUE(WIFEXITED(status));
    CU_ASSERT_EQUAL(WEXITSTATUS(status), CHILD_OK);
}

static void test_no_sources_answers_503(void)
{
    in_child(false);
}

static void test_accept_failing_does_not_spin(void)
{
    in_child(true);
}

int main(void)
{
    vlog_set_level(getenv("VLTAVA_TEST_VERBOSE") ? VLOG_DEBUG : VLOG_ERROR);
    if (CU_initialize_registry() != CUE_SUCCESS)
        return EXIT_FAILURE;
    CU_pSuite s = CU_add_suite("metrics endpoint", NULL, NULL);
    CU_add_test(s, "503 before the sources are set", test_no_sources_answers_503);
    CU_add_test(s, "accept failing for want of descriptors does not spin the loop",
                test_accept_failing_does_not_spin);
    return unit_run_registered();
}
