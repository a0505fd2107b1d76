/* CUnit tests for broker/net over real sockets on a real libev loop. The
 * loop runs on the test thread: the client side writes with blocking sockets
 * and reads while pumping the loop. The dispatcher is the test's own, so
 * each test decides which requests respond, stay silent, are deferred (and
 * completed in any order later) or are malformed:
 *   key 0 echo: the response body is the request body
 *   key 1 defer: kept in `deferred[]`; the test completes it
 *   key 2 silent: no response (like acks=0)
 *   key 3 malformed
 *   key 4 file: body "<", a slice of the test file, ">"
 *   key 18 echo, with the ApiVersions rule (header v0 even when flexible)
 * Versions >= 5 are flexible (request header v2, response header v1).
 * The server has two listeners on 127.0.0.1; clients use the first unless a
 * test says otherwise. */
#include <CUnit/Basic.h>
#include <dirent.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "kafka_codec.h"
#include "net.h"
#include "xalloc.h"

void kafka_net_suite(void);

/* ---- the test dispatcher ---- */

#define MAX_DEFERRED 64

typedef struct deferred {
    kafka_request_t *req;
    kafka_response_t *resp;
} deferred_t;

static struct {
    deferred_t deferred[MAX_DEFERRED];
    int ndeferred;
    int dispatched;
    size_t last_listener; /* of the last request dispatched */
    int closed_calls;
    void *closed_conn;
    int file_fd; /* a test file; responses get dup()s of it */
    int64_t file_len;
} T;

static api_result_t test_dispatch(api_context_t *ctx, kafka_request_t *req, kafka_response_t *resp)
{
    T.dispatched++;
    T.last_listener = req->listener;
    req->flexible = req->api_version >= 5;
    if (!kr_tags_v(&req->body, req->flexible))
        return API_MALFORMED;
    switch (req->api_key) {
    case 0:
    case 18:
        kw_raw(&resp->body, req->body.buf + req->body.pos, kr_remaining(&req->body));
        return API_RESPOND;
    case 1:
        CU_ASSERT_FATAL(T.ndeferred < MAX_DEFERRED);
        T.deferred[T.ndeferred++] = (deferred_t){req, resp};
        return API_DEFERRED;
    case 2:
        return API_NO_RESPONSE;
    case 4:
        kw_raw(&resp->body, "<", 1);
        kafka_response_add_file(resp, dup(T.file_fd), 0, T.file_len);
        kw_raw(&resp->body, ">", 1);
        return API_RESPOND;
    default:
        req->malformed_reason = "test: malformed";
        return API_MALFORMED;
    }
}

static void test_closed(api_context_t *ctx, void *conn)
{
    T.closed_calls++;
    T.closed_conn = conn;
}

/* Completes deferred request i with its own body echoed back. */
static void complete(int i, api_result_t result)
{
    deferred_t d = T.deferred[i];
    CU_ASSERT_PTR_NOT_NULL_FATAL(d.req);
    T.deferred[i].req = NULL;
    kw_raw(&d.resp->body, d.req->body.buf + d.req->body.pos, kr_remaining(&d.req->body));
    api_request_complete(d.req, d.resp, result);
}

/* ---- harness ---- */

static struct ev_loop *loop;
static net_server_t *srv;

static void server_start(int32_t max_request_bytes, int32_t max_connections, int32_t max_inflight,
                         int32_t per_wakeup)
{
    memset(&T, 0, sizeof(T));
    T.file_fd = -1;
    loop = ev_loop_new(EVFLAG_AUTO);
    static const net_listener_t listeners[] = {{.name = "TEST", .host = "127.0.0.1", .port = 0},
                                               {.name = "OTHER", .host = "127.0.0.1", .port = 0}};
    net_config_t cfg = {.listeners = listeners,
                        .nlisteners = 2,
                        .max_request_bytes = max_request_bytes,
                        .max_connections = max_connections,
                        .max_inflight_requests = max_inflight,
                        .requests_per_wakeup = per_wakeup,
                        .dispatch = test_dispatch,
                        .connection_closed = test_closed};
    char err[256];
    srv = net_server_new(loop, &cfg, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(srv);
    CU_ASSERT_TRUE(net_server_port(srv, 0) > 0);
    CU_ASSERT_TRUE(net_server_port(srv, 1) > 0);
    CU_ASSERT_NOT_EQUAL(net_server_port(srv, 0), net_server_port(srv, 1));
}

static void server_stop(void)
{
    net_server_free(srv);
    srv = NULL;
    ev_loop_destroy(loop);
    if (T.file_fd >= 0)
        close(T.file_fd);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pump(int ms)
{
    int64_t end = now_ms() + ms;
    do {
        ev_run(loop, EVRUN_NOWAIT);
        usleep(1000);
    } while (now_ms() < end);
}

/* Pumps the loop until cond holds or 5 s pass. */
#define PUMP_UNTIL(cond)                                                                           \
    do {                                                                                           \
        int64_t end_ = now_ms() + 5000;                                                            \
        while (!(cond) && now_ms() < end_)                                                         \
            pump(1);                                                                               \
    } while (0)

/* Connects to the server's listener `listener`. */
static int client_connect_to(size_t listener)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CU_ASSERT_FATAL(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons(net_server_port(srv, listener))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CU_ASSERT_FATAL(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    pump(5); /* let the server accept */
    return fd;
}

static int client_connect(void)
{
    return client_connect_to(0);
}

/* Writes all of buf while pumping the loop (the server may need to read
 * before the socket buffer has room). */
static void send_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0) {
            CU_ASSERT_FATAL(errno == EAGAIN || errno == EWOULDBLOCK);
            ev_run(loop, EVRUN_NOWAIT);
            continue;
        }
        p += n;
        len -= (size_t)n;
    }
}

static void frame_request(kwriter_t *w, int16_t key, int16_t version, int32_t corr,
                          const void *body, size_t len)
{
    size_t at = kw_reserve_i32(w);
    kw_i16(w, key);
    kw_i16(w, version);
    kw_i32(w, corr);
    kw_string_v(w, false, "test", -1);
    kw_tags_v(w, version >= 5);
    kw_raw(w, body, len);
    kw_patch_i32(w, at, (int32_t)(w->len - at - 4));
}

static void send_request(int fd, int16_t key, int16_t version, int32_t corr, const void *body,
                         size_t len)
{
    kwriter_t w;
    kw_init(&w, 64 + len);
    frame_request(&w, key, version, corr, body, len);
    send_all(fd, w.buf, w.len);
    kw_free(&w);
}

/* Reads exactly len bytes while pumping; false on EOF/error/timeout. */
static bool recv_exact(int fd, void *buf, size_t len, int timeout_ms)
{
    uint8_t *p = buf;
    int64_t end = now_ms() + timeout_ms;
    while (len > 0) {
        ssize_t n = recv(fd, p, len, MSG_DONTWAIT);
        if (n == 0)
            return false;
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                return false;
            if (now_ms() > end)
                return false;
            ev_run(loop, EVRUN_NOWAIT);
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            poll(&pfd, 1, 1);
            continue;
        }
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* Receives one response: returns its body (caller frees) and fills the
 * correlation id; when `tagged`, expects and strips the header tag byte. */
static uint8_t *recv_response(int fd, bool tagged, int32_t *corr, size_t *body_len)
{
    uint8_t hdr[8];
    if (!recv_exact(fd, hdr, 8, 5000))
        return NULL;
    uint32_t size = (uint32_t)hdr[0] << 24 | hdr[1] << 16 | hdr[2] << 8 | hdr[3];
    *corr = (int32_t)((uint32_t)hdr[4] << 24 | hdr[5] << 16 | hdr[6] << 8 | hdr[7]);
    CU_ASSERT_FATAL(size >= 4);
    size_t len = size - 4;
    uint8_t *body = xmalloc(len + 1);
    if (!recv_exact(fd, body, len, 10000)) {
        free(body);
        return NULL;
    }
    if (tagged) {
        CU_ASSERT_FATAL(len >= 1);
        CU_ASSERT_EQUAL(body[0], 0);
        memmove(body, body + 1, len - 1);
        len--;
    }
    *body_len = len;
    return body;
}

/* Expects one response with correlation id `corr` and body `expect`. */
static void expect_response(int fd, bool tagged, int32_t corr, const char *expect)
{
    int32_t got_corr = -1;
    size_t len = 0;
    uint8_t *body = recv_response(fd, tagged, &got_corr, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    CU_ASSERT_EQUAL(got_corr, corr);
    CU_ASSERT_EQUAL(len, strlen(expect));
    CU_ASSERT_TRUE(len == strlen(expect) && memcmp(body, expect, len) == 0);
    free(body);
}

/* True when the server closed fd (EOF or reset) within timeout_ms. */
static bool wait_closed(int fd, int timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;
    while (now_ms() < end) {
        uint8_t b[256];
        ssize_t n = recv(fd, b, sizeof(b), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            return true;
        ev_run(loop, EVRUN_NOWAIT);
        usleep(1000);
    }
    return false;
}

/* No bytes arrive within ms. */
static bool silent_for(int fd, int ms)
{
    pump(ms);
    uint8_t b;
    ssize_t n = recv(fd, &b, 1, MSG_DONTWAIT | MSG_PEEK);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

static void check_still_serving(void)
{
    int fd = client_connect();
    send_request(fd, 0, 0, 4242, "alive", 5);
    expect_response(fd, false, 4242, "alive");
    close(fd);
}

/* ---- tests ---- */

static void test_echo_and_headers(void)
{
    server_start(1 << 20, 100, 100, 0);
    int fd = client_connect();
    send_request(fd, 0, 0, 7, "hello", 5);
    expect_response(fd, false, 7, "hello");
    /* Flexible: response header v1 carries an empty tag section. */
    send_request(fd, 0, 5, 8, "flex", 4);
    expect_response(fd, true, 8, "flex");
    /* ApiVersions keeps response header v0 even when flexible. */
    send_request(fd, 18, 5, 9, "av", 2);
    expect_response(fd, false, 9, "av");
    /* Empty body. */
    send_request(fd, 0, 0, 10, "", 0);
    expect_response(fd, false, 10, "");
    close(fd);
    server_stop();
}

static void test_pipelined_in_order(void)
{
    /* Two requests per wakeup forces many yields. */
    server_start(1 << 20, 100, 1000, 2);
    int fd = client_connect();
    kwriter_t w;
    kw_init(&w, 4096);
    for (int i = 0; i < 200; i++) {
        char body[16];
        int n = snprintf(body, sizeof(body), "r%d", i);
        frame_request(&w, i % 7 == 3 ? 2 : 0, (int16_t)(i % 2 ? 5 : 0), i, body, (size_t)n);
    }
    send_all(fd, w.buf, w.len);
    kw_free(&w);
    for (int i = 0; i < 200; i++) {
        if (i % 7 == 3)
            continue; /* silent */
        char body[16];
        snprintf(body, sizeof(body), "r%d", i);
        expect_response(fd, i % 2 == 1, i, body);
    }
    CU_ASSERT_EQUAL(T.dispatched, 200);
    CU_ASSERT_TRUE(silent_for(fd, 20));
    close(fd);
    server_stop();
}

static void test_deferred_order(void)
{
    server_start(1 << 20, 100, 100, 0);
    int fd = client_connect();
    send_request(fd, 1, 0, 1, "d1", 2);
    send_request(fd, 0, 0, 2, "e2", 2);
    send_request(fd, 1, 0, 3, "d3", 2);
    send_request(fd, 2, 0, 4, "s4", 2);
    send_request(fd, 0, 0, 5, "e5", 2);
    PUMP_UNTIL(T.dispatched == 5);
    CU_ASSERT_EQUAL(T.dispatched, 5);
    CU_ASSERT_EQUAL(T.ndeferred, 2);
    /* Nothing may leave before the first request is answered. */
    CU_ASSERT_TRUE(silent_for(fd, 20));
    complete(1, API_RESPOND); /* d3 first */
    CU_ASSERT_TRUE(silent_for(fd, 20));
    complete(0, API_RESPOND);
    expect_response(fd, false, 1, "d1");
    expect_response(fd, false, 2, "e2");
    expect_response(fd, false, 3, "d3");
    expect_response(fd, false, 5, "e5");
    /* A deferred request that ends up with no response. */
    send_request(fd, 1, 0, 6, "d6", 2);
    send_request(fd, 0, 0, 7, "e7", 2);
    PUMP_UNTIL(T.dispatched == 7);
    complete(2, API_NO_RESPONSE);
    expect_response(fd, false, 7, "e7");
    close(fd);
    server_stop();
}

static void test_inflight_bound(void)
{
    server_start(1 << 20, 100, 2, 0);
    int fd = client_connect();
    send_request(fd, 1, 0, 1, "a", 1);
    send_request(fd, 1, 0, 2, "b", 1);
    send_request(fd, 1, 0, 3, "c", 1);
    PUMP_UNTIL(T.dispatched == 2);
    pump(30);
    /* Reading stopped at two requests in flight. */
    CU_ASSERT_EQUAL(T.dispatched, 2);
    complete(0, API_RESPOND);
    expect_response(fd, false, 1, "a");
    PUMP_UNTIL(T.dispatched == 3);
    CU_ASSERT_EQUAL(T.dispatched, 3);
    complete(1, API_RESPOND);
    complete(2, API_RESPOND);
    expect_response(fd, false, 2, "b");
    expect_response(fd, false, 3, "c");
    close(fd);
    server_stop();
}

static void test_frame_size_limits(void)
{
    server_start(1000, 100, 100, 0);
    /* Over the limit: closed before any body byte is sent. */
    int fd = client_connect();
    uint8_t big[4] = {0, 0, 0x03, 0xe9}; /* 1001 */
    send_all(fd, big, 4);
    CU_ASSERT_TRUE(wait_closed(fd, 2000));
    CU_ASSERT_EQUAL(T.dispatched, 0);
    close(fd);
    /* Negative size. */
    fd = client_connect();
    uint8_t neg[4] = {0xff, 0xff, 0xff, 0xfe};
    send_all(fd, neg, 4);
    CU_ASSERT_TRUE(wait_closed(fd, 2000));
    close(fd);
    /* Below the smallest header. */
    fd = client_connect();
    uint8_t tiny[7] = {0, 0, 0, 3, 0, 0, 0};
    send_all(fd, tiny, sizeof(tiny));
    CU_ASSERT_TRUE(wait_closed(fd, 2000));
    close(fd);
    /* Exactly at the limit is fine. */
    fd = client_connect();
    size_t body = 1000 - 14; /* header: 2+2+4+2+4 ("test") */
    char *payload = xmalloc(body + 1);
    memset(payload, 'x', body);
    payload[body] = 0;
    send_request(fd, 0, 0, 1, payload, body);
    expect_response(fd, false, 1, payload);
    free(payload);
    close(fd);
    PUMP_UNTIL(net_server_connections(srv) == 0);
    CU_ASSERT_EQUAL(net_server_connections(srv), 0);
    check_still_serving();
    server_stop();
}

static void test_malformed_closes_only_that_connection(void)
{
    server_start(1 << 20, 100, 100, 0);
    int other = client_connect();
    int fd = client_connect();
    send_request(fd, 0, 0, 1, "ok", 2);
    expect_response(fd, false, 1, "ok");
    send_request(fd, 3, 0, 2, "bad", 3);
    CU_ASSERT_TRUE(wait_closed(fd, 2000));
    close(fd);
    /* Pipelined: the requests before the bad one are answered, in order,
     * then the connection closes; nothing after it is dispatched. */
    fd = client_connect();
    kwriter_t w;
    kw_init(&w, 128);
    frame_request(&w, 0, 0, 10, "p1", 2);
    frame_request(&w, 1, 0, 11, "p2", 2);
    frame_request(&w, 3, 0, 12, "bad", 3);
    frame_request(&w, 0, 0, 13, "never", 5);
    int before = T.dispatched;
    send_all(fd, w.buf, w.len);
    kw_free(&w);
    PUMP_UNTIL(T.ndeferred == 1);
    complete(0, API_RESPOND);
    expect_response(fd, false, 10, "p1");
    expect_response(fd, false, 11, "p2");
    CU_ASSERT_TRUE(wait_closed(fd, 2000));
    CU_ASSERT_EQUAL(T.dispatched - before, 3);
    close(fd);
    /* A header whose client id runs past the frame. */
    fd = client_connect();
    uint8_t bad_hdr[] = {0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 1, 0, 9};
    send_all(fd, bad_hdr, sizeof(bad_hdr));
    CU_ASSERT_TRUE(wait_closed(fd, 2000));
    close(fd);
    /* Flexible header with a bad tag section. */
    fd = client_connect();
    uint8_t bad_tags[] = {0, 0, 0, 13, 0, 0, 0, 5, 0, 0, 0, 1, 0, 1, 'x', 0x05, 0x01};
    send_all(fd, bad_tags, sizeof(bad_tags));
    CU_ASSERT_TRUE(wait_closed(fd, 2000));
    close(fd);
    /* Random bytes. */
    fd = client_connect();
    uint8_t junk[64];
    srand(7);
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)rand();
    junk[0] = 0x40; /* a size far over the limit */
    send_all(fd, junk, sizeof(junk));
    CU_ASSERT_TRUE(wait_closed(fd, 2000));
    close(fd);
    /* The first connection never noticed. */
    send_request(other, 0, 0, 3, "still", 5);
    expect_response(other, false, 3, "still");
    close(other);
    server_stop();
}

static void test_truncated_frame(void)
{
    server_start(1 << 20, 100, 100, 0);
    int fd = client_connect();
    kwriter_t w;
    kw_init(&w, 64);
    frame_request(&w, 0, 0, 1, "truncated", 9);
    send_all(fd, w.buf, w.len - 3);
    kw_free(&w);
    CU_ASSERT_TRUE(silent_for(fd, 30));
    shutdown(fd, SHUT_WR);
    CU_ASSERT_TRUE(wait_closed(fd, 2000));
    CU_ASSERT_EQUAL(T.dispatched, 0);
    close(fd);
    /* A half-close between frames ends the connection too (as in Kafka). */
    fd = client_connect();
    send_request(fd, 0, 0, 2, "bye", 3);
    expect_response(fd, false, 2, "bye");
    shutdown(fd, SHUT_WR);
    CU_ASSERT_TRUE(wait_closed(fd, 2000));
    close(fd);
    server_stop();
}

static void test_max_connections(void)
{
    server_start(1 << 20, 2, 100, 0);
    int a = client_connect();
    int b = client_connect();
    int c = client_connect();
    CU_ASSERT_TRUE(wait_closed(c, 2000));
    close(c);
    CU_ASSERT_EQUAL(net_server_connections(srv), 2);
    send_request(a, 0, 0, 1, "a", 1);
    expect_response(a, false, 1, "a");
    close(b);
    PUMP_UNTIL(net_server_connections(srv) == 1);
    CU_ASSERT_EQUAL(net_server_connections(srv), 1);
    c = client_connect();
    send_request(c, 0, 0, 2, "c", 1);
    expect_response(c, false, 2, "c");
    close(a);
    close(c);
    server_stop();
}

static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    int n = 0;
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

/* Every request names the listener its connection came in on, and
 * max.connections counts the connections of all listeners. */
static void test_listeners(void)
{
    server_start(1 << 20, 2, 100, 0);
    int a = client_connect_to(1);
    send_request(a, 0, 0, 1, "one", 3);
    expect_response(a, false, 1, "one");
    CU_ASSERT_EQUAL(T.last_listener, 1);
    int b = client_connect_to(0);
    send_request(b, 0, 0, 2, "zero", 4);
    expect_response(b, false, 2, "zero");
    CU_ASSERT_EQUAL(T.last_listener, 0);
    send_request(a, 0, 0, 3, "one again", 9);
    expect_response(a, false, 3, "one again");
    CU_ASSERT_EQUAL(T.last_listener, 1);
    CU_ASSERT_EQUAL(T.dispatched, 3);
    int c = client_connect_to(1);
    CU_ASSERT_TRUE(wait_closed(c, 2000));
    close(c);
    CU_ASSERT_EQUAL(net_server_connections(srv), 2);
    close(a);
    close(b);
    server_stop();

    /* A listener that cannot bind fails the start, naming it; nothing of
     * the listeners bound before it stays open. */
    struct ev_loop *l2 = ev_loop_new(EVFLAG_AUTO);
    server_start(1 << 20, 2, 100, 0);
    const net_listener_t clash[] = {
        {.name = "FREE", .host = "127.0.0.1", .port = 0},
        {.name = "TAKEN", .host = "127.0.0.1", .port = net_server_port(srv, 0)}};
    net_config_t cfg = {.listeners = clash,
                        .nlisteners = 2,
                        .max_request_bytes = 1 << 20,
                        .max_connections = 2,
                        .max_inflight_requests = 10,
                        .dispatch = test_dispatch};
    char err[256] = "";
    int fds = open_fds();
    CU_ASSERT_PTR_NULL(net_server_new(l2, &cfg, err, sizeof(err)));
    CU_ASSERT_EQUAL(strncmp(err, "TAKEN listener 127.0.0.1:", 25), 0);
    CU_ASSERT_EQUAL(open_fds(), fds);
    server_stop();
    ev_loop_destroy(l2);
}

/* A port free on IPv4 and IPv6 when probed (a dual-stack [::]:0 bind). */
static int32_t free_dual_stack_port(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    CU_ASSERT_FATAL(fd >= 0);
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT};
    CU_ASSERT_FATAL(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    socklen_t len = sizeof(sa);
    CU_ASSERT_FATAL(getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
    close(fd);
    return ntohs(sa.sin6_port);
}

/* An IPv4 and an IPv6 listener on one port, as Kafka allows: both bind,
 * even as wildcards ([::] would otherwise hold the IPv4 side too), and
 * each request names the one its connection came in on. */
static void test_ipv4_and_ipv6_share_a_port(void)
{
    memset(&T, 0, sizeof(T));
    T.file_fd = -1;
    loop = ev_loop_new(EVFLAG_AUTO);
    int32_t port = free_dual_stack_port();
    const net_listener_t pair[] = {{.name = "V4", .host = "0.0.0.0", .port = port},
                                   {.name = "V6", .host = "::", .port = port}};
    net_config_t cfg = {.listeners = pair,
                        .nlisteners = 2,
                        .max_request_bytes = 1 << 20,
                        .max_connections = 10,
                        .max_inflight_requests = 10,
                        .dispatch = test_dispatch};
    char err[256] = "";
    srv = net_server_new(loop, &cfg, err, sizeof(err));
    if (srv == NULL)
        fprintf(stderr, "\n    %s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(srv);
    CU_ASSERT_EQUAL(net_server_port(srv, 0), port);
    CU_ASSERT_EQUAL(net_server_port(srv, 1), port);

    int v4 = client_connect_to(0);
    send_request(v4, 0, 0, 1, "four", 4);
    expect_response(v4, false, 1, "four");
    CU_ASSERT_EQUAL(T.last_listener, 0);

    int v6 = socket(AF_INET6, SOCK_STREAM, 0);
    CU_ASSERT_FATAL(v6 >= 0);
    struct sockaddr_in6 sa = {
        .sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    CU_ASSERT_FATAL(connect(v6, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    send_request(v6, 0, 0, 2, "six", 3);
    expect_response(v6, false, 2, "six");
    CU_ASSERT_EQUAL(T.last_listener, 1);
    close(v4);
    close(v6);
    server_stop();
}

static void test_closed_with_deferred(void)
{
    server_start(1 << 20, 100, 100, 0);
    int fd = client_connect();
    send_request(fd, 1, 0, 1, "x", 1);
    send_request(fd, 0, 0, 2, "y", 1);
    PUMP_UNTIL(T.dispatched == 2);
    CU_ASSERT_EQUAL(T.ndeferred, 1);
    close(fd);
    PUMP_UNTIL(net_server_connections(srv) == 0);
    CU_ASSERT_EQUAL(net_server_connections(srv), 0);
    CU_ASSERT_EQUAL(T.closed_calls, 1);
    CU_ASSERT_PTR_EQUAL(T.closed_conn, T.deferred[0].req->conn);
    /* The request (and its connection) stay valid until completed; ASan
     * reports any use after free or leak here. */
    CU_ASSERT_EQUAL(T.deferred[0].req->correlation_id, 1);
    complete(0, API_RESPOND);
    check_still_serving();
    server_stop();
}

static void test_large_frames_and_backpressure(void)
{
    server_start(8 << 20, 100, 100, 0);
    int fd = client_connect();
    /* 3 MiB frames: read past the input buffer, and responses larger than
     * the socket buffers so writes hit EAGAIN until the client reads. */
    size_t len = 3u << 20;
    char *payload = xmalloc(len + 1);
    for (size_t i = 0; i < len; i++)
        payload[i] = (char)('a' + i % 26);
    payload[len] = 0;
    send_request(fd, 0, 0, 1, payload, len);
    send_request(fd, 0, 5, 2, payload, len);
    pump(50);
    expect_response(fd, false, 1, payload);
    expect_response(fd, true, 2, payload);
    free(payload);
    close(fd);
    server_stop();
}

static void test_sendfile_slices(void)
{
    server_start(1 << 20, 100, 100, 0);
    char path[] = "/tmp/vltava-net-test-XXXXXX";
    T.file_fd = mkstemp(path);
    CU_ASSERT_FATAL(T.file_fd >= 0);
    unlink(path);
    T.file_len = 5 << 20;
    char *data = xmalloc((size_t)T.file_len + 3);
    data[0] = '<';
    for (int64_t i = 0; i < T.file_len; i++)
        data[1 + i] = (char)('A' + i % 23);
    data[1 + T.file_len] = '>';
    data[2 + T.file_len] = 0;
    CU_ASSERT_FATAL(write(T.file_fd, data + 1, (size_t)T.file_len) == T.file_len);
    int fd = client_connect();
    send_request(fd, 4, 0, 1, "", 0);
    send_request(fd, 0, 0, 2, "after", 5);
    pump(30);
    expect_response(fd, false, 1, data);
    expect_response(fd, false, 2, "after");
    free(data);
    close(fd);
    server_stop();
}

static void complete_first_cb(struct ev_loop *l, ev_timer *w, int revents)
{
    complete(0, API_RESPOND);
}

static void test_graceful_stop(void)
{
    server_start(1 << 20, 100, 100, 0);
    int busy = client_connect();
    int idle = client_connect();
    send_request(busy, 1, 0, 1, "late", 4);
    PUMP_UNTIL(T.ndeferred == 1);
    CU_ASSERT_EQUAL(T.ndeferred, 1);
    net_server_stop_accepting(srv);
    /* The idle connection closes at once; the busy one waits. */
    CU_ASSERT_TRUE(wait_closed(idle, 2000));
    CU_ASSERT_EQUAL(net_server_connections(srv), 1);
    /* No new connections. */
    int fresh = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(net_server_port(srv, 0))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CU_ASSERT_NOT_EQUAL(connect(fresh, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(fresh);
    /* The deferred request completes during the drain. */
    ev_timer t;
    ev_timer_init(&t, complete_first_cb, 0.05, 0.0);
    ev_timer_start(loop, &t);
    CU_ASSERT_TRUE(net_server_drain(srv, 5000));
    expect_response(busy, false, 1, "late");
    CU_ASSERT_TRUE(wait_closed(busy, 1000));
    close(busy);
    close(idle);
    server_stop();
}

static void test_drain_timeout_then_late_completion(void)
{
    server_start(1 << 20, 100, 100, 0);
    int fd = client_connect();
    send_request(fd, 1, 0, 1, "never", 5);
    PUMP_UNTIL(T.ndeferred == 1);
    net_server_stop_accepting(srv);
    int64_t t0 = now_ms();
    CU_ASSERT_FALSE(net_server_drain(srv, 100));
    CU_ASSERT_TRUE(now_ms() - t0 >= 90);
    net_server_free(srv);
    srv = NULL;
    /* The handler still completes it after the server is gone. */
    complete(0, API_RESPOND);
    CU_ASSERT_TRUE(wait_closed(fd, 100));
    close(fd);
    ev_loop_destroy(loop);
}

void kafka_net_suite(void)
{
    signal(SIGPIPE, SIG_IGN);
    CU_pSuite s = CU_add_suite("net", NULL, NULL);
    CU_add_test(s, "echo and response headers", test_echo_and_headers);
    CU_add_test(s, "pipelined in order", test_pipelined_in_order);
    CU_add_test(s, "deferred responses keep order", test_deferred_order);
    CU_add_test(s, "in-flight bound", test_inflight_bound);
    CU_add_test(s, "frame size limits", test_frame_size_limits);
    CU_add_test(s, "malformed closes only that connection",
                test_malformed_closes_only_that_connection);
    CU_add_test(s, "truncated frame", test_truncated_frame);
    CU_add_test(s, "max connections", test_max_connections);
    CU_add_test(s, "listeners", test_listeners);
    CU_add_test(s, "an IPv4 and an IPv6 listener share a port", test_ipv4_and_ipv6_share_a_port);
    CU_add_test(s, "closed with deferred", test_closed_with_deferred);
    CU_add_test(s, "large frames and backpressure", test_large_frames_and_backpressure);
    CU_add_test(s, "sendfile slices", test_sendfile_slices);
    CU_add_test(s, "graceful stop", test_graceful_stop);
    CU_add_test(s, "drain timeout, late completion", test_drain_timeout_then_late_completion);
}
