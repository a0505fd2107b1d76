/* The inter-broker RPC channel: TCP on libev, length-prefixed protobuf
 * frames (a 4-byte big-endian size, then a vltava.RpcEnvelope of exactly
 * that size; the size is checked against max_frame_bytes before anything
 * is allocated). Requests carry ids and a type; a handler table by type
 * serves incoming requests; outgoing requests have a deadline, a bound on
 * in-flight requests per peer, and connections to peers are made on demand
 * and re-made with exponential backoff.
 *
 * The controller uses it for LeaderAndIsr / UpdateMetadata; replication
 * will use it for ReplicaFetch (long-poll friendly: a handler may answer
 * later with rpc_respond()).
 *
 * Locality: the loop thread, for every function and callback.
 */
#ifndef VLTAVA_RPC_H
#define VLTAVA_RPC_H

#include <stddef.h>
#include <stdint.h>

struct ev_loop;

typedef struct rpc rpc_t;
typedef struct rpc_request rpc_request_t;

typedef struct rpc_config {
    const char *host;                 /* listener address; NULL: no listener (client only) */
    int32_t port;                     /* 0: any free port (see rpc_listen_port) */
    int32_t self_id;                  /* stamped on every frame as sender_id */
    uint32_t max_frame_bytes;         /* 0: 64 MiB */
    uint32_t max_inflight_per_peer;   /* 0: 64 */
    int32_t reconnect_backoff_ms;     /* 0: 100; doubles per failure ... */
    int32_t reconnect_backoff_max_ms; /* ... up to this (0: 5000) */
} rpc_config_t;

/* Outcome of an outgoing request, given to its rpc_response_fn. */
typedef enum rpc_status {
    RPC_OK = 0,       /* the peer answered; see error_code and payload */
    RPC_TIMEOUT,      /* no answer before the deadline */
    RPC_DISCONNECTED, /* the connection failed or closed first */
    RPC_SHUTDOWN,     /* rpc_free() ran first */
} rpc_status_t;

/* Called exactly once per accepted rpc_send(). payload is valid during the
 * call only. error_code is the responder's (a Kafka error code, 0: none). */
typedef void (*rpc_response_fn)(void *arg, rpc_status_t status, int32_t error_code,
                                const uint8_t *payload, size_t len);

/* Serves one incoming request. The handler (or whoever it hands req to)
 * calls rpc_respond() exactly once, now or later. payload is valid during
 * the call only. */
typedef void (*rpc_handler_fn)(void *arg, rpc_request_t *req, int32_t sender_id,
                               const uint8_t *payload, size_t len);

/* Binds the listener (when cfg->host is set). NULL with a message in err
 * when it cannot. */
rpc_t *rpc_new(struct ev_loop *loop, const rpc_config_t *cfg, char *err, size_t err_size);
/* Closes every connection; pending requests complete with RPC_SHUTDOWN;
 * requests being served are dropped (their rpc_respond becomes a no-op
 * only if called before rpc_free: callers must not keep requests past it). */
void rpc_free(rpc_t *rpc);
int32_t rpc_listen_port(const rpc_t *rpc);

/* Handlers by message type (vltava.RpcType); type < 64. Unknown types are
 * answered with error_code 35 (UNSUPPORTED_VERSION). */
void rpc_set_handler(rpc_t *rpc, uint32_t type, rpc_handler_fn fn, void *arg);
void rpc_respond(rpc_request_t *req, int32_t error_code, const uint8_t *payload, size_t len);

/* The peer table: where broker `id` listens. Changing the address drops the
 * current connection (its requests fail with RPC_DISCONNECTED). */
void rpc_set_peer(rpc_t *rpc, int32_t id, const char *host, int32_t port);
void rpc_remove_peer(rpc_t *rpc, int32_t id);

/* Sends a request; 0 when accepted (cb will run exactly once, never from
 * inside this call), -1 when refused at once (unknown peer, payload over
 * the frame limit, or max_inflight_per_peer requests already pending). */
int rpc_send(rpc_t *rpc, int32_t peer_id, uint32_t type, const uint8_t *payload, size_t len,
             int32_t timeout_ms, rpc_response_fn cb, void *arg);

#endif
