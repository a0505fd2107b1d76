/* The Kafka listeners: one listening socket per listener on the broker's
 * libev loop. The server accepts client connections, reads size-prefixed
 * request frames, hands each to the dispatcher (api_dispatch) and writes
 * the responses back strictly in request order, memory parts with writev()
 * and file slices with sendfile(). Every request names the listener its
 * connection came in on (kafka_request_t.listener), so that the API
 * answers with that listener's broker endpoints.
 *
 * Locality: everything runs on the loop thread that created the server.
 *
 * Bounds: socket.request.max.bytes per frame (checked before the body is
 * allocated), queued.max.requests requests in flight per connection (reading
 * stops at the limit), max.connections (over all listeners), requests parsed
 * per wakeup, and the response bytes buffered per connection.
 */
#ifndef VLTAVA_NET_H
#define VLTAVA_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api.h"

struct ev_loop;

typedef struct net_server net_server_t;

/* Runs one request; api_dispatch() in the broker. Tests may pass their own. */
typedef api_result_t (*net_dispatch_fn)(api_context_t *ctx, kafka_request_t *req,
                                        kafka_response_t *resp);
/* Told when a connection's socket closes while requests of it are deferred
 * (api_connection_closed() in the broker). May be NULL. */
typedef void (*net_closed_fn)(api_context_t *ctx, void *conn);

/* Listening sockets one server may have. */
#define NET_MAX_LISTENERS 16

/* One listening socket. */
typedef struct net_listener {
    const char *name; /* for logs (the broker's listener name); NULL: none */
    const char *host; /* address to bind; NULL or "" or "0.0.0.0": every IPv4 address */
    /* 0: an ephemeral port (see net_server_port). Two listeners may share
     * a port when one binds an IPv4 address and the other an IPv6 one
     * (the config checks that): the IPv6 socket then takes IPv6 only. */
    int32_t port;
} net_listener_t;

typedef struct net_config {
    /* Bound in this order; a request's `listener` is its connection's index
     * here. The array and its strings are not kept. */
    const net_listener_t *listeners;
    size_t nlisteners;             /* 1..NET_MAX_LISTENERS */
    int32_t max_request_bytes;     /* socket.request.max.bytes */
    int32_t max_connections;       /* max.connections */
    int32_t max_inflight_requests; /* queued.max.requests, per connection */
    int32_t requests_per_wakeup;   /* 0: NET_REQUESTS_PER_WAKEUP */
    size_t max_output_bytes;       /* 0: NET_OUTPUT_MAX_BYTES */
    api_context_t *ctx;
    net_dispatch_fn dispatch;
    net_closed_fn connection_closed;
} net_config_t;

/* Requests parsed from one connection before yielding to the others. */
#define NET_REQUESTS_PER_WAKEUP 16
/* Response bytes held in memory per connection (file slices not counted)
 * before the connection stops reading requests. */
#define NET_OUTPUT_MAX_BYTES (64u << 20)
/* The smallest frame: a request header v1 with a null client id. */
#define NET_MIN_FRAME_BYTES 10

/* Binds and listens on every listener; returns NULL with the reason (naming
 * the listener) in err, having closed any socket it opened. */
net_server_t *net_server_new(struct ev_loop *loop, const net_config_t *cfg, char *err,
                             size_t err_size);
/* The port actually bound by listener `index` (< nlisteners). */
int32_t net_server_port(const net_server_t *srv, size_t index);
/* Open connections (sockets not yet closed). */
size_t net_server_connections(const net_server_t *srv);

/* Graceful stop, part 1: closes the listening sockets and stops reading new
 * requests; connections close as soon as their in-flight requests are
 * answered. */
void net_server_stop_accepting(net_server_t *srv);
/* Graceful stop, part 2: runs the loop until every connection has answered
 * its in-flight requests and closed, or timeout_ms passes. Returns true when
 * everything finished. Must not be called from a loop callback. */
bool net_server_drain(net_server_t *srv, int64_t timeout_ms);
/* Closes every connection and frees the server. A connection that still has
 * deferred requests stays allocated (socket closed) until their owners
 * complete them with api_request_complete(). */
void net_server_free(net_server_t *srv);

#endif
