/* The inter-broker RPC channel (broker/rpc): request/response, deferred
 * answers and timeouts, unknown types, the in-flight bound, the frame size
 * limit, garbage frames, and reconnection with backoff. */
#include <CUnit/CUnit.h>
#include <arpa/inet.h>
#include <ev.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "coord_test.h"
#include "rpc.h"

static struct ev_loop *loop;

typedef struct answer {
    int calls;
    rpc_status_t status;
    int32_t error_code;
    char payload[64];
} answer_t;

static void on_answer(void *arg, rpc_status_t status, int32_t error_code, const uint8_t *payload,
                      size_t len)
{
    answer_t *a = arg;
    a->calls++;
    a->status = status;
    a->error_code = error_code;
    memset(a->payload, 0, sizeof(a->payload));
    if (payload && len < sizeof(a->payload))
        memcpy(a->payload, payload, len);
}

static rpc_request_t *held[4];
static int nheld;
static int served;

/* Type 3 echoes with error 7; type 4 holds the request for later. */
static void echo_handler(void *arg, rpc_request_t *req, int32_t sender, const uint8_t *payload,
                         size_t len)
{
    (void)arg;
    CU_ASSERT_EQUAL(sender, 1);
    served++;
    rpc_respond(req, 7, payload, len);
}

static void hold_handler(void *arg, rpc_request_t *req, int32_t sender, const uint8_t *payload,
                         size_t len)
{
    (void)arg;
    (void)sender;
    (void)payload;
    (void)len;
    if (nheld < 4)
        held[nheld++] = req;
    else
        rpc_respond(req, 0, NULL, 0);
}

static int64_t ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nop(struct ev_loop *l, ev_timer *w, int r)
{
    (void)l;
    (void)w;
    (void)r;
}

static bool spin_until(const int *counter, int target, int timeout_ms)
{
    ev_timer t;
    ev_timer_init(&t, nop, 0.01, 0.01);
    ev_timer_start(loop, &t);
    int64_t deadline = ms() + timeout_ms;
    while (*counter < target && ms() < deadline)
        ev_run(loop, EVRUN_ONCE);
    ev_timer_stop(loop, &t);
    return *counter >= target;
}

static rpc_t *server(int32_t port)
{
    rpc_config_t cfg = {.host = "127.0.0.1", .port = port, .self_id = 2, .max_frame_bytes = 4096};
    char err[200];
    rpc_t *r = rpc_new(loop, &cfg, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    rpc_set_handler(r, 3, echo_handler, NULL);
    rpc_set_handler(r, 4, hold_handler, NULL);
    return r;
}

static rpc_t *client(uint32_t max_inflight)
{
    rpc_config_t cfg = {.self_id = 1,
                        .max_frame_bytes = 4096,
                        .max_inflight_per_peer = max_inflight,
                        .reconnect_backoff_ms = 50,
                        .reconnect_backoff_max_ms = 200};
    char err[200];
    rpc_t *r = rpc_new(loop, &cfg, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    return r;
}

static void test_round_trip_and_errors(void)
{
    rpc_t *s = server(0), *c = client(8);
    rpc_set_peer(c, 2, "127.0.0.1", rpc_listen_port(s));
    answer_t a = {0}, u = {0};
    CU_ASSERT_EQUAL(rpc_send(c, 2, 3, (const uint8_t *)"hello", 5, 2000, on_answer, &a), 0);
    CU_ASSERT_EQUAL(a.calls, 0); /* never inside rpc_send */
    CU_ASSERT_EQUAL(rpc_send(c, 2, 9, (const uint8_t *)"x", 1, 2000, on_answer, &u), 0);
    CU_ASSERT_TRUE(spin_until(&a.calls, 1, 5000));
    CU_ASSERT_EQUAL(a.status, RPC_OK);
    CU_ASSERT_EQUAL(a.error_code, 7);
    CU_ASSERT_STRING_EQUAL(a.payload, "hello");
    CU_ASSERT_TRUE(spin_until(&u.calls, 1, 5000));
    CU_ASSERT_EQUAL(u.status, RPC_OK);
    CU_ASSERT_EQUAL(u.error_code, 35); /* no handler for type 9 */
    /* unknown peer, oversized payload: refused at once */
    CU_ASSERT_EQUAL(rpc_send(c, 77, 3, (const uint8_t *)"x", 1, 2000, on_answer, &a), -1);
    uint8_t big[5000] = {0};
    CU_ASSERT_EQUAL(rpc_send(c, 2, 3, big, sizeof(big), 2000, on_answer, &a), -1);
    CU_ASSERT_EQUAL(a.calls, 1);
    rpc_free(c);
    rpc_free(s);
}

static void test_timeout_inflight_bound_shutdown(void)
{
    rpc_t *s = server(0), *c = client(2);
    rpc_set_peer(c, 2, "127.0.0.1", rpc_listen_port(s));
    answer_t a = {0}, b = {0}, d = {0};
    nheld = 0;
    CU_ASSERT_EQUAL(rpc_send(c, 2, 4, (const uint8_t *)"1", 1, 200, on_answer, &a), 0);
    CU_ASSERT_EQUAL(rpc_send(c, 2, 4, (const uint8_t *)"2", 1, 60000, on_answer, &b), 0);
    CU_ASSERT_EQUAL(rpc_send(c, 2, 4, (const uint8_t *)"3", 1, 60000, on_answer, &d), -1);
    int64_t t0 = ms();
    CU_ASSERT_TRUE(spin_until(&a.calls, 1, 5000));
    CU_ASSERT_EQUAL(a.status, RPC_TIMEOUT);
    CU_ASSERT(ms() - t0 >= 150);
    /* the slot is free again */
    CU_ASSERT_EQUAL(rpc_send(c, 2, 3, (const uint8_t *)"3", 1, 5000, on_answer, &d), 0);
    CU_ASSERT_TRUE(spin_until(&d.calls, 1, 5000));
    CU_ASSERT_EQUAL(d.status, RPC_OK);
    /* a late answer to the timed-out request is dropped, not delivered twice */
    CU_ASSERT_EQUAL_FATAL(nheld, 2);
    rpc_respond(held[0], 0, NULL, 0);
    int never = 0;
    spin_until(&never, 1, 100);
    CU_ASSERT_EQUAL(a.calls, 1);
    CU_ASSERT_EQUAL(b.calls, 0);
    rpc_free(c); /* b is still pending: it completes with RPC_SHUTDOWN */
    CU_ASSERT_EQUAL(b.calls, 1);
    CU_ASSERT_EQUAL(b.status, RPC_SHUTDOWN);
    /* answering after the client went away is harmless */
    spin_until(&never, 1, 50);
    rpc_respond(held[1], 0, NULL, 0);
    nheld = 0;
    rpc_free(s);
}

static int raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CU_ASSERT_EQUAL(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

static bool closed_by_server(int fd)
{
    struct timeval tv = {.tv_sec = 0, .tv_usec = 20000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    for (int i = 0; i < 100; i++) {
        int never = 0;
        spin_until(&never, 1, 20);
        char b;
        ssize_t n = recv(fd, &b, 1, 0);
        if (n == 0)
            return true;
    }
    return false;
}

static void test_bad_frames_close_only_that_connection(void)
{
    rpc_t *s = server(0), *c = client(8);
    int port = rpc_listen_port(s);
    int big = raw_connect(port);
    uint8_t huge[4] = {0xff, 0xff, 0xff, 0xff}; /* 4 GiB frame: over the limit */
    CU_ASSERT_EQUAL(write(big, huge, 4), 4);
    CU_ASSERT_TRUE(closed_by_server(big));
    close(big);
    int junk = raw_connect(port);
    uint8_t garbage[] = {0, 0, 0, 6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    CU_ASSERT_EQUAL(write(junk, garbage, sizeof(garbage)), (ssize_t)sizeof(garbage));
    CU_ASSERT_TRUE(closed_by_server(junk));
    close(junk);
    /* the server keeps serving others */
    rpc_set_peer(c, 2, "127.0.0.1", port);
    answer_t a = {0};
    CU_ASSERT_EQUAL(rpc_send(c, 2, 3, (const uint8_t *)"ok", 2, 2000, on_answer, &a), 0);
    CU_ASSERT_TRUE(spin_until(&a.calls, 1, 5000));
    CU_ASSERT_EQUAL(a.status, RPC_OK);
    rpc_free(c);
    rpc_free(s);
}

static void test_reconnect_with_backoff(void)
{
    /* a port with nobody listening */
    rpc_t *probe = server(0);
    int port = rpc_listen_port(probe);
    rpc_free(probe);
    rpc_t *c = client(8);
    rpc_set_peer(c, 2, "127.0.0.1", port);
    answer_t a = {0};
    CU_ASSERT_EQUAL(rpc_send(c, 2, 3, (const uint8_t *)"a", 1, 2000, on_answer, &a), 0);
    CU_ASSERT_TRUE(spin_until(&a.calls, 1, 5000));
    CU_ASSERT_EQUAL(a.status, RPC_DISCONNECTED);
    /* the broker comes (back) up on that port; the next request gets through
     * once the backoff has passed */
    rpc_t *s = server(port);
    answer_t b = {0};
    served = 0;
    CU_ASSERT_EQUAL(rpc_send(c, 2, 3, (const uint8_t *)"b", 1, 5000, on_answer, &b), 0);
    CU_ASSERT_TRUE(spin_until(&b.calls, 1, 5000));
    CU_ASSERT_EQUAL(b.status, RPC_OK);
    CU_ASSERT_STRING_EQUAL(b.payload, "b");
    /* the server goes away: in-flight requests fail, later ones reconnect */
    rpc_free(s);
    answer_t d = {0};
    CU_ASSERT_EQUAL(rpc_send(c, 2, 3, (const uint8_t *)"d", 1, 2000, on_answer, &d), 0);
    CU_ASSERT_TRUE(spin_until(&d.calls, 1, 5000));
    CU_ASSERT_NOT_EQUAL(d.status, RPC_OK);
    s = server(port);
    answer_t e = {0};
    for (int i = 0; i < 20 && e.status != RPC_OK; i++) {
        memset(&e, 0, sizeof(e));
        CU_ASSERT_EQUAL(rpc_send(c, 2, 3, (const uint8_t *)"e", 1, 2000, on_answer, &e), 0);
        spin_until(&e.calls, 1, 3000);
    }
    CU_ASSERT_EQUAL(e.status, RPC_OK);
    rpc_free(c);
    rpc_free(s);
}

static int64_t cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
}

static void test_partial_and_many_frames(void)
{
    rpc_t *s = server(0), *c = client(256);
    int port = rpc_listen_port(s);
    /* Half a frame: the server waits for the rest without spinning. */
    int raw = raw_connect(port);
    uint8_t head[6] = {0, 0, 0, 100, 0x08, 0x01};
    CU_ASSERT_EQUAL(write(raw, head, sizeof(head)), (ssize_t)sizeof(head));
    int64_t cpu0 = cpu_ms();
    int never = 0;
    spin_until(&never, 1, 300);
    CU_ASSERT(cpu_ms() - cpu0 < 150);
    close(raw);
    /* Many requests at once (more than one wakeup's worth of frames) and a
     * payload near the frame limit: all answered, each once. */
    rpc_set_peer(c, 2, "127.0.0.1", port);
    enum { N = 200 };
    static answer_t answers[N];
    memset(answers, 0, sizeof(answers));
    int total = 0;
    uint8_t big[3000];
    memset(big, 'x', sizeof(big));
    for (int i = 0; i < N; i++) {
        const uint8_t *payload = i == N / 2 ? big : (const uint8_t *)"small";
        size_t len = i == N / 2 ? sizeof(big) : 5;
        CU_ASSERT_EQUAL(rpc_send(c, 2, 3, payload, len, 10000, on_answer, &answers[i]), 0);
    }
    int64_t deadline = ms() + 10000;
    while (total < N && ms() < deadline) {
        spin_until(&never, 1, 20);
        total = 0;
        for (int i = 0; i < N; i++)
            total += answers[i].calls;
    }
    CU_ASSERT_EQUAL(total, N);
    for (int i = 0; i < N; i++) {
        CU_ASSERT_EQUAL(answers[i].calls, 1);
        CU_ASSERT_EQUAL(answers[i].status, RPC_OK);
    }
    rpc_free(c);
    rpc_free(s);
}

static int rpc_suite_init(void)
{
    loop = ev_loop_new(EVFLAG_AUTO);
    return loop ? 0 : -1;
}

static int rpc_suite_clean(void)
{
    ev_loop_destroy(loop);
    return 0;
}

void coord_add_rpc_suite(void)
{
    CU_pSuite s = CU_add_suite("rpc", rpc_suite_init, rpc_suite_clean);
    CU_add_test(s, "round trip, unknown type, refused sends", test_round_trip_and_errors);
    CU_add_test(s, "timeout, in-flight bound, shutdown", test_timeout_inflight_bound_shutdown);
    CU_add_test(s, "bad frames close only that connection",
                test_bad_frames_close_only_that_connection);
    CU_add_test(s, "reconnect with backoff", test_reconnect_with_backoff);
    CU_add_test(s, "partial frames wait, many frames all answered", test_partial_and_many_frames);
}
