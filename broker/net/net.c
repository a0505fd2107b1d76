/* The Kafka listeners and their connections (see net.h).
 *
 * A connection reads into a fixed input buffer and cuts frames out of it;
 * every frame gets its own allocation, owned by its request, because a
 * deferred request (and Produce's in-place rewrite) needs the bytes after
 * the next read has reused the buffer. A frame larger than what the buffer
 * holds is read straight into its own allocation (CONN_READ_FRAME).
 *
 * Requests sit in a per-connection FIFO from parse to the last byte of their
 * response, so responses leave strictly in request order whatever order the
 * handlers finish in. The head's response goes out as soon as it is ready;
 * ready responses behind a deferred one wait.
 *
 * A connection is freed only when its socket is closed, no request of it is
 * still held by a handler, and no callback is running on it (`busy`).
 */
#include "net.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <ev.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "kafka_codec.h"
#include "vlog.h"
#include "xalloc.h"

#define NET_MODULE "net"
/* Input buffer per connection: frames at most this size are cut from it. */
#define NET_INPUT_BYTES (64u * 1024)
/* Connections accepted per wakeup of the listening socket. */
#define NET_ACCEPTS_PER_WAKEUP 64
/* Pieces gathered into one writev(). */
#define NET_IOV_MAX 64
/* Largest sendfile() call; a bigger slice takes several. */
#define NET_SENDFILE_CHUNK (1 << 30)
/* Pause before accepting again after running out of file descriptors. */
#define NET_ACCEPT_RETRY_S 0.1

enum conn_state {
    CONN_READ_SIZE,  /* between frames: cutting frames from the input buffer, reading more */
    CONN_READ_FRAME, /* reading a large frame's body straight into its own buffer */
    CONN_BLOCKED,    /* not reading: in-flight or output bound reached; resumes as they drain */
    CONN_DRAINING,   /* never reading again: answer what is in flight, then close */
    CONN_CLOSED,     /* socket closed; kept while a handler still holds a request */
    CONN_STATE_MAX
};

static const char *const conn_state_names[CONN_STATE_MAX] = {
    [CONN_READ_SIZE] = "read_size", [CONN_READ_FRAME] = "read_frame", [CONN_BLOCKED] = "blocked",
    [CONN_DRAINING] = "draining",   [CONN_CLOSED] = "closed",
};

enum request_status {
    REQ_PENDING, /* a handler holds it (during dispatch, or deferred) */
    REQ_READY,   /* response built; goes out when it reaches the head */
    REQ_SILENT,  /* no response (acks=0); leaves when it reaches the head */
};

typedef struct net_conn net_conn_t;

typedef struct net_request {
    kafka_request_t req; /* first: api_request_complete() hands us &req */
    kafka_response_t resp;
    net_conn_t *conn;
    struct net_request *prev, *next;
    enum request_status status;
    uint8_t header[9]; /* size, correlation id, empty tag section */
    size_t header_len;
    size_t wire_len; /* header + response body + file slices */
    size_t sent;     /* wire bytes already written */
} net_request_t;

struct net_conn {
    net_server_t *srv; /* NULL once the server is freed */
    struct ev_loop *loop;
    int fd; /* -1 once closed */
    enum conn_state state;
    ev_io read_watcher;
    ev_io write_watcher;
    char peer[64];
    uint8_t *in; /* NET_INPUT_BYTES; bytes [in_pos, in_len) not parsed yet */
    size_t in_pos, in_len;
    uint8_t *frame; /* CONN_READ_FRAME: the frame being read, frame_have of frame_len */
    size_t frame_len, frame_have;
    net_request_t *head, *tail; /* in request order */
    size_t inflight;            /* requests in the queue */
    size_t inflight_frame_bytes;
    size_t output_bytes; /* memory bytes of queued responses */
    int busy;            /* callbacks running on this connection */
    size_t listener;     /* index of the listening socket it came in on */
    net_conn_t *prev, *next;
};

/* One listening socket. */
typedef struct net_socket {
    net_server_t *srv;
    size_t index; /* in srv->sockets and the config's listeners */
    char *name;   /* for logs; owned; NULL: none */
    int fd;       /* -1 once closed */
    int32_t port; /* bound */
    ev_io accept_watcher;
} net_socket_t;

struct net_server {
    struct ev_loop *loop;
    net_config_t cfg; /* listeners not kept: see sockets */
    net_socket_t sockets[NET_MAX_LISTENERS];
    size_t nsockets;
    ev_timer accept_retry; /* resumes every accept watcher after EMFILE and the like */
    net_conn_t *conns;     /* every connection not yet freed, open or held */
    size_t nopen;          /* connections whose socket is open */
    bool stopping;
};

static void conn_close(net_conn_t *c);
static void conn_flush(net_conn_t *c);
static void conn_read_cb(struct ev_loop *loop, ev_io *w, int revents);

/* ---- connection state ---- */

/* The one place a connection changes state. CLOSED is final. */
static void conn_set_state(net_conn_t *c, enum conn_state state)
{
    assert(state >= 0 && state < CONN_STATE_MAX);
    assert(c->state != CONN_CLOSED);
    VLOG_DEBUG(NET_MODULE, "%s: %s -> %s", c->peer, conn_state_names[c->state],
               conn_state_names[state]);
    c->state = state;
}

static bool conn_reading(const net_conn_t *c)
{
    return c->state == CONN_READ_SIZE || c->state == CONN_READ_FRAME;
}

/* Frees the connection once nothing refers to it any more. */
static void conn_maybe_release(net_conn_t *c)
{
    if (c->state != CONN_CLOSED || c->head != NULL || c->busy > 0)
        return;
    assert(c->fd < 0);
    assert(c->inflight == 0);
    net_server_t *srv = c->srv;
    if (srv != NULL) {
        if (c->prev)
            c->prev->next = c->next;
        else
            srv->conns = c->next;
        if (c->next)
            c->next->prev = c->prev;
    }
    free(c->in);
    free(c->frame);
    free(c);
}

/* ---- request queue ---- */

static void request_unlink_free(net_request_t *nr)
{
    net_conn_t *c = nr->conn;
    assert(c->inflight > 0);
    if (nr->prev)
        nr->prev->next = nr->next;
    else
        c->head = nr->next;
    if (nr->next)
        nr->next->prev = nr->prev;
    else
        c->tail = nr->prev;
    c->inflight--;
    assert(c->inflight_frame_bytes >= nr->req.frame_len);
    c->inflight_frame_bytes -= nr->req.frame_len;
    if (nr->status == REQ_READY) {
        size_t mem = nr->header_len + nr->resp.body.len;
        assert(c->output_bytes >= mem);
        c->output_bytes -= mem;
    }
    kafka_response_free(&nr->resp);
    free(nr->req.frame);
    free(nr);
}

/* Marks the response ready to go and fills its header: size, correlation id,
 * and an empty tag section for flexible responses except ApiVersions, whose
 * response header is always v0 (KIP-511). Returns false when the response
 * cannot be framed (larger than an int32 size). */
static bool request_ready(net_request_t *nr)
{
    assert(nr->status == REQ_PENDING);
    bool header_tags = nr->req.flexible && nr->req.api_key != KAFKA_API_API_VERSIONS;
    int64_t size = 4 + (header_tags ? 1 : 0) + kafka_response_size(&nr->resp);
    nr->status = REQ_READY;
    nr->header_len = header_tags ? 9 : 8;
    nr->conn->output_bytes += nr->header_len + nr->resp.body.len;
    if (size > INT32_MAX)
        return false;
    uint32_t s = (uint32_t)size, id = (uint32_t)nr->req.correlation_id;
    for (int i = 0; i < 4; i++) {
        nr->header[i] = (uint8_t)(s >> (24 - 8 * i));
        nr->header[4 + i] = (uint8_t)(id >> (24 - 8 * i));
    }
    nr->header[8] = 0;
    nr->wire_len = 4 + (size_t)size;
    assert(nr->wire_len >= nr->header_len + nr->resp.body.len);
    return true;
}

/* ---- output ---- */

enum pieces_result { PIECES_DONE, PIECES_FULL, PIECES_FILE };

/* Adds the unsent memory pieces of nr to iov, in wire order, until iov is
 * full or a file slice comes. PIECES_FILE reports the slice (and how far into
 * it we are) only when it is the first unsent piece of the whole flush, so
 * the caller sends it with sendfile(); otherwise it stops before it. */
static enum pieces_result request_pieces(net_request_t *nr, struct iovec *iov, int *niov,
                                         const kafka_file_slice_t **file, int64_t *file_off)
{
    size_t skip = nr->sent;
    size_t body_at = 0;
    const kafka_response_t *resp = &nr->resp;

    assert(nr->status == REQ_READY);
    /* Pieces: header, then body[body_at, slice.at) and the slice for every
     * slice, then the rest of the body. */
    for (size_t i = 0; i <= resp->nslices + 1; i++) {
        const uint8_t *mem;
        size_t len;
        const kafka_file_slice_t *fs = NULL;
        if (i == 0) {
            mem = nr->header;
            len = nr->header_len;
        } else {
            size_t end = i - 1 < resp->nslices ? resp->slices[i - 1].at : resp->body.len;
            assert(end >= body_at && end <= resp->body.len);
            mem = resp->body.buf + body_at;
            len = end - body_at;
            body_at = end;
        }
        for (int part = 0; part < 2; part++) {
            if (part == 1) {
                if (i == 0 || i - 1 >= resp->nslices)
                    break;
                fs = &resp->slices[i - 1];
                mem = NULL;
                len = (size_t)fs->length;
            }
            if (skip >= len) {
                skip -= len;
                continue;
            }
            if (fs != NULL) {
                if (*niov > 0)
                    return PIECES_FULL;
                *file = fs;
                *file_off = (int64_t)skip;
                return PIECES_FILE;
            }
            if (*niov == NET_IOV_MAX)
                return PIECES_FULL;
            iov[*niov].iov_base = (void *)(mem + skip);
            iov[*niov].iov_len = len - skip;
            (*niov)++;
            skip = 0;
        }
    }
    return PIECES_DONE;
}

/* Accounts n written bytes against the queue head(s). */
static void conn_advance(net_conn_t *c, size_t n)
{
    while (n > 0) {
        while (c->head != NULL && c->head->status == REQ_SILENT)
            request_unlink_free(c->head);
        net_request_t *nr = c->head;
        assert(nr != NULL && nr->status == REQ_READY);
        size_t left = nr->wire_len - nr->sent;
        if (n < left) {
            nr->sent += n;
            return;
        }
        n -= left;
        request_unlink_free(nr);
    }
}

/* Reading resumes once the in-flight and output bounds allow it again. */
static bool conn_may_read(const net_conn_t *c)
{
    const net_config_t *cfg = &c->srv->cfg;
    return c->inflight < (size_t)cfg->max_inflight_requests &&
           c->inflight_frame_bytes < (size_t)cfg->max_request_bytes &&
           c->output_bytes < cfg->max_output_bytes;
}

/* After responses left: resume a blocked reader, or finish a drain. */
static void conn_after_output(net_conn_t *c)
{
    if (c->state == CONN_BLOCKED && c->srv != NULL && conn_may_read(c)) {
        conn_set_state(c, CONN_READ_SIZE);
        ev_io_start(c->loop, &c->read_watcher);
        /* Frames may already wait in the input buffer; the socket may
         * never become readable again for them. */
        ev_feed_event(c->loop, &c->read_watcher, EV_READ);
    } else if (c->state == CONN_DRAINING && c->head == NULL) {
        conn_close(c);
    }
}

/* Writes ready responses from the head of the queue until the queue reaches
 * a pending request, is empty, or the socket would block (then EV_WRITE is
 * armed). */
static void conn_flush(net_conn_t *c)
{
    struct iovec iov[NET_IOV_MAX];

    assert(c->busy > 0);
    if (c->state == CONN_CLOSED)
        return;
    for (;;) {
        while (c->head != NULL && c->head->status == REQ_SILENT)
            request_unlink_free(c->head);
        if (c->head == NULL || c->head->status != REQ_READY)
            break;
        int niov = 0;
        const kafka_file_slice_t *file = NULL;
        int64_t file_off = 0;
        for (net_request_t *nr = c->head; nr != NULL && nr->status != REQ_PENDING; nr = nr->next) {
            if (nr->status == REQ_SILENT)
                continue;
            if (request_pieces(nr, iov, &niov, &file, &file_off) != PIECES_DONE)
                break;
        }
        ssize_t n;
        if (niov > 0) {
            n = writev(c->fd, iov, niov);
        } else {
            assert(file != NULL);
            off_t off = (off_t)(file->position + file_off);
            int64_t left = file->length - file_off;
            n = sendfile(c->fd, file->fd, &off,
                         (size_t)(left < NET_SENDFILE_CHUNK ? left : NET_SENDFILE_CHUNK));
            if (n == 0) {
                /* The file is shorter than the slice promised: the response
                 * cannot be completed, so the stream is lost. */
                VLOG_ERR(NET_MODULE, "%s: file slice ended early (correlation id %d); closing",
                         c->peer, c->head->req.correlation_id);
                conn_close(c);
                return;
            }
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                ev_io_start(c->loop, &c->write_watcher);
                return;
            }
            VLOG_DEBUG(NET_MODULE, "%s: write: %s", c->peer, strerror(errno));
            conn_close(c);
            return;
        }
        conn_advance(c, (size_t)n);
    }
    ev_io_stop(c->loop, &c->write_watcher);
    conn_after_output(c);
}

static void conn_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    net_conn_t *c = w->data;
    assert(loop == c->loop);
    c->busy++;
    conn_flush(c);
    c->busy--;
    conn_maybe_release(c);
}

/* ---- input ---- */

/* Logs a refused request once, with the header when one was parsed. */
static void conn_refuse(net_conn_t *c, const kafka_request_header_t *h, const char *reason)
{
    if (h == NULL)
        VLOG_WARN(NET_MODULE, "refused request from %s: %s; closing the connection", c->peer,
                  reason);
    else
        VLOG_WARN(NET_MODULE,
                  "refused request from %s: api_key %d version %d: %s; closing the connection",
                  c->peer, h->api_key, h->api_version, reason);
}

/* After a refused request: read nothing more, answer the requests before
 * it (as Kafka would have, reading one at a time), then close. */
static void conn_end(net_conn_t *c)
{
    assert(c->state != CONN_CLOSED);
    if (c->head == NULL) {
        conn_close(c);
        return;
    }
    ev_io_stop(c->loop, &c->read_watcher);
    c->in_pos = c->in_len = 0;
    free(c->frame);
    c->frame = NULL;
    conn_set_state(c, CONN_DRAINING);
}

/* Parses the header of a complete frame (ownership passes here) and runs
 * it. Returns false when the connection was closed. */
static bool conn_handle_frame(net_conn_t *c, uint8_t *frame, size_t len)
{
    net_server_t *srv = c->srv;
    kreader_t r;
    kafka_request_header_t h;

    assert(srv != NULL);
    assert(len >= NET_MIN_FRAME_BYTES && len <= (size_t)srv->cfg.max_request_bytes);
    kr_init(&r, frame, len);
    if (!kafka_request_header_read(&r, &h)) {
        conn_refuse(c, NULL, "bad request header");
        free(frame);
        conn_end(c);
        return false;
    }

    net_request_t *nr = xcalloc(1, sizeof(*nr));
    nr->conn = c;
    nr->status = REQ_PENDING;
    nr->req.api_key = h.api_key;
    nr->req.api_version = h.api_version;
    nr->req.correlation_id = h.correlation_id;
    nr->req.client_id = h.client_id;
    nr->req.body = r;
    nr->req.frame = frame;
    nr->req.frame_len = len;
    nr->req.peer = c->peer;
    nr->req.listener = c->listener;
    nr->req.conn = c;
    kafka_response_init(&nr->resp);
    /* Queued before dispatch: a handler may complete it before returning. */
    nr->prev = c->tail;
    if (c->tail)
        c->tail->next = nr;
    else
        c->head = nr;
    c->tail = nr;
    c->inflight++;
    c->inflight_frame_bytes += len;

    api_result_t result = srv->cfg.dispatch(srv->cfg.ctx, &nr->req, &nr->resp);
    if (c->state == CONN_CLOSED) {
        /* The handler completed an earlier request whose write failed. */
        if (result != API_DEFERRED)
            request_unlink_free(nr);
        return false;
    }
    switch (result) {
    case API_RESPOND:
        if (!request_ready(nr)) {
            conn_refuse(c, &h, "response larger than 2 GiB");
            conn_close(c);
            return false;
        }
        break;
    case API_NO_RESPONSE:
        nr->status = REQ_SILENT;
        break;
    case API_DEFERRED:
        break; /* the handler completes it, perhaps already has */
    case API_MALFORMED:
    default:
        conn_refuse(c, &h,
                    nr->req.malformed_reason ? nr->req.malformed_reason
                                             : "could not decode the request");
        assert(nr == c->tail);
        request_unlink_free(nr); /* net owns it again */
        conn_end(c);
        return false;
    }
    return true;
}

/* Reads into the input buffer. Returns 1 with data, 0 when the socket has
 * nothing now, -1 when the connection ended (closed or draining). */
static int conn_fill(net_conn_t *c, uint8_t *dst, size_t room)
{
    assert(room > 0);
    for (;;) {
        ssize_t n = read(c->fd, dst, room);
        if (n > 0)
            return (int)n;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n < 0)
            VLOG_DEBUG(NET_MODULE, "%s: read: %s", c->peer, strerror(errno));
        return -1;
    }
}

/* The peer closed (or the read failed). Like Kafka, an end of stream closes
 * the connection at once: a peer that half-closes gets no more answers. */
static void conn_eof(net_conn_t *c)
{
    if (c->state == CONN_READ_FRAME || c->in_len > c->in_pos)
        VLOG_DEBUG(NET_MODULE, "%s: closed in the middle of a frame", c->peer);
    conn_close(c);
}

/* Cuts the next frame from the input buffer or reads more. Returns true
 * when a frame was handled and the connection is still reading. */
static bool conn_read_step(net_conn_t *c, bool *would_block)
{
    net_server_t *srv = c->srv;
    *would_block = false;

    if (c->state == CONN_READ_FRAME) {
        int n = conn_fill(c, c->frame + c->frame_have, c->frame_len - c->frame_have);
        if (n <= 0) {
            if (n < 0)
                conn_eof(c);
            *would_block = n == 0;
            return false;
        }
        c->frame_have += (size_t)n;
        if (c->frame_have < c->frame_len)
            return false;
        uint8_t *frame = c->frame;
        c->frame = NULL;
        conn_set_state(c, CONN_READ_SIZE);
        return conn_handle_frame(c, frame, c->frame_len);
    }

    assert(c->state == CONN_READ_SIZE);
    size_t avail = c->in_len - c->in_pos;
    if (avail < 4) {
        if (c->in_pos > 0) {
            memmove(c->in, c->in + c->in_pos, avail);
            c->in_pos = 0;
            c->in_len = avail;
        }
        int n = conn_fill(c, c->in + c->in_len, NET_INPUT_BYTES - c->in_len);
        if (n <= 0) {
            if (n < 0)
                conn_eof(c);
            *would_block = n == 0;
            return false;
        }
        c->in_len += (size_t)n;
        return false;
    }

    const uint8_t *p = c->in + c->in_pos;
    int32_t size = (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
                             (uint32_t)p[3]);
    /* The size is checked before anything is allocated or read. */
    if (size < NET_MIN_FRAME_BYTES || size > srv->cfg.max_request_bytes) {
        char reason[96];
        snprintf(reason, sizeof(reason), "frame size %d outside [%d, %d]", size,
                 NET_MIN_FRAME_BYTES, srv->cfg.max_request_bytes);
        conn_refuse(c, NULL, reason);
        conn_end(c);
        return false;
    }
    size_t len = (size_t)size;
    uint8_t *frame = xmalloc(len);
    if (avail - 4 >= len) {
        memcpy(frame, p + 4, len);
        c->in_pos += 4 + len;
        if (c->in_pos == c->in_len)
            c->in_pos = c->in_len = 0;
        return conn_handle_frame(c, frame, len);
    }
    /* The rest of the frame comes straight from the socket. */
    c->frame_have = avail - 4;
    memcpy(frame, p + 4, c->frame_have);
    c->frame = frame;
    c->frame_len = len;
    c->in_pos = c->in_len = 0;
    conn_set_state(c, CONN_READ_FRAME);
    return false;
}

static void conn_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    net_conn_t *c = w->data;
    assert(loop == c->loop);
    if (!conn_reading(c))
        return; /* a fed event that arrived after the state changed */

    c->busy++;
    int budget = c->srv->cfg.requests_per_wakeup;
    while (conn_reading(c)) {
        bool would_block;
        if (conn_read_step(c, &would_block)) {
            if (c->state == CONN_READ_SIZE && !conn_may_read(c)) {
                ev_io_stop(loop, &c->read_watcher);
                conn_set_state(c, CONN_BLOCKED);
                break;
            }
            if (--budget == 0) {
                /* Yield to other connections; come back next iteration. */
                ev_feed_event(loop, &c->read_watcher, EV_READ);
                break;
            }
        } else if (would_block) {
            break;
        }
    }
    conn_flush(c);
    c->busy--;
    conn_maybe_release(c);
}

/* ---- connection lifetime ---- */

/* Closes the socket and frees every request net owns. Requests a handler
 * still holds stay queued; their completion frees them, and the last one
 * frees the connection. */
static void conn_close(net_conn_t *c)
{
    if (c->state == CONN_CLOSED)
        return;
    c->busy++;
    ev_io_stop(c->loop, &c->read_watcher);
    ev_io_stop(c->loop, &c->write_watcher);
    close(c->fd);
    c->fd = -1;
    conn_set_state(c, CONN_CLOSED);
    VLOG_DEBUG(NET_MODULE, "%s: connection closed", c->peer);
    if (c->srv != NULL) {
        assert(c->srv->nopen > 0);
        c->srv->nopen--;
    }
    bool held = false;
    for (net_request_t *nr = c->head, *next; nr != NULL; nr = next) {
        next = nr->next;
        if (nr->status == REQ_PENDING)
            held = true;
        else
            request_unlink_free(nr);
    }
    if (held && c->srv != NULL && c->srv->cfg.connection_closed != NULL)
        c->srv->cfg.connection_closed(c->srv->cfg.ctx, c);
    c->busy--;
}

static void conn_new(net_socket_t *sock, int fd, const struct sockaddr *sa)
{
    net_server_t *srv = sock->srv;
    net_conn_t *c = xcalloc(1, sizeof(*c));
    c->srv = srv;
    c->loop = srv->loop;
    c->fd = fd;
    c->listener = sock->index;
    c->state = CONN_READ_SIZE;
    c->in = xmalloc(NET_INPUT_BYTES);
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in4->sin_addr, host, sizeof(host));
        port = ntohs(in4->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        port = ntohs(in6->sin6_port);
    }
    snprintf(c->peer, sizeof(c->peer), "%s:%d", host, port);
    ev_io_init(&c->read_watcher, conn_read_cb, fd, EV_READ);
    ev_io_init(&c->write_watcher, conn_write_cb, fd, EV_WRITE);
    c->read_watcher.data = c;
    c->write_watcher.data = c;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->nopen++;
    ev_io_start(srv->loop, &c->read_watcher);
    VLOG_DEBUG(NET_MODULE, "%s: connection accepted on listener %s", c->peer,
               sock->name ? sock->name : "-");
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    net_socket_t *sock = w->data;
    net_server_t *srv = sock->srv;
    assert(loop == srv->loop);
    assert(sock == &srv->sockets[sock->index]);
    for (int i = 0; i < NET_ACCEPTS_PER_WAKEUP; i++) {
        struct sockaddr_storage ss;
        socklen_t sslen = sizeof(ss);
        int fd = accept4(sock->fd, (struct sockaddr *)&ss, &sslen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* Out of a process-wide resource: every listener pauses. */
                VLOG_WARN(NET_MODULE, "accept: %s; pausing new connections", strerror(errno));
                for (size_t k = 0; k < srv->nsockets; k++)
                    ev_io_stop(loop, &srv->sockets[k].accept_watcher);
                ev_timer_set(&srv->accept_retry, NET_ACCEPT_RETRY_S, 0.0);
                ev_timer_start(loop, &srv->accept_retry);
            } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
                VLOG_WARN(NET_MODULE, "accept: %s", strerror(errno));
            }
            return;
        }
        if (srv->nopen >= (size_t)srv->cfg.max_connections) {
            VLOG_WARN(NET_MODULE, "refusing a connection: max.connections (%d) reached",
                      srv->cfg.max_connections);
            close(fd);
            continue;
        }
        int one = 1;
        if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
            VLOG_DEBUG(NET_MODULE, "TCP_NODELAY: %s", strerror(errno));
        conn_new(sock, fd, (struct sockaddr *)&ss);
    }
}

static void accept_retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    net_server_t *srv = w->data;
    if (srv->stopping)
        return;
    for (size_t k = 0; k < srv->nsockets; k++)
        ev_io_start(loop, &srv->sockets[k].accept_watcher);
}

/* ---- server ---- */

/* A listening socket on host:port. v6only: an IPv6 socket takes IPv6
 * only, so that an IPv4 listener can bind the same port (with the default
 * dual stack, [::] would hold the IPv4 side of the port too). */
static int listen_on(const char *host, int32_t port, bool v6only, int32_t *bound_port, char *err,
                     size_t err_size)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    if (host != NULL && (host[0] == '\0' || strcmp(host, "0.0.0.0") == 0))
        host = NULL;
    /* A name binds its IPv4 address unless it is an IPv6 literal, so that
     * "localhost" serves 127.0.0.1 as clients expect. */
    hints.ai_family = host != NULL && strchr(host, ':') != NULL ? AF_INET6 : AF_INET;
    int rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0) {
        snprintf(err, err_size, "listener %s:%d: %s", host ? host : "0.0.0.0", port,
                 gai_strerror(rc));
        return -1;
    }
    int fd = -1, saved = 0;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (v6only && ai->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 1024) == 0)
            break;
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(err, err_size, "listener %s:%d: %s", host ? host : "0.0.0.0", port,
                 strerror(saved));
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &len);
    *bound_port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                           : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

/* Closes every listening socket (stops accepting). */
static void close_sockets(net_server_t *srv)
{
    assert(srv->nsockets <= NET_MAX_LISTENERS);
    for (size_t k = 0; k < srv->nsockets; k++) {
        net_socket_t *sock = &srv->sockets[k];
        ev_io_stop(srv->loop, &sock->accept_watcher);
        if (sock->fd >= 0)
            close(sock->fd);
        sock->fd = -1;
    }
    ev_timer_stop(srv->loop, &srv->accept_retry);
}

static void free_sockets(net_server_t *srv)
{
    close_sockets(srv);
    for (size_t k = 0; k < srv->nsockets; k++)
        free(srv->sockets[k].name);
    srv->nsockets = 0;
}

net_server_t *net_server_new(struct ev_loop *loop, const net_config_t *cfg, char *err,
                             size_t err_size)
{
    assert(loop != NULL && cfg != NULL);
    assert(cfg->dispatch != NULL);
    assert(cfg->nlisteners >= 1 && cfg->nlisteners <= NET_MAX_LISTENERS);
    assert(cfg->max_request_bytes >= NET_MIN_FRAME_BYTES);
    assert(cfg->max_connections > 0 && cfg->max_inflight_requests > 0);

    net_server_t *srv = xcalloc(1, sizeof(*srv));
    srv->loop = loop;
    srv->cfg = *cfg;
    srv->cfg.listeners = NULL; /* not kept: the caller owns them */
    if (srv->cfg.requests_per_wakeup <= 0)
        srv->cfg.requests_per_wakeup = NET_REQUESTS_PER_WAKEUP;
    if (srv->cfg.max_output_bytes == 0)
        srv->cfg.max_output_bytes = NET_OUTPUT_MAX_BYTES;
    ev_timer_init(&srv->accept_retry, accept_retry_cb, NET_ACCEPT_RETRY_S, 0.0);
    srv->accept_retry.data = srv;
    for (size_t k = 0; k < cfg->nlisteners; k++) {
        const net_listener_t *l = &cfg->listeners[k];
        net_socket_t *sock = &srv->sockets[k];
        char why[256];
        sock->srv = srv;
        sock->index = k;
        bool shares_port = false; /* config allows that for an IPv4 and an IPv6 address */
        for (size_t j = 0; j < cfg->nlisteners; j++)
            shares_port |= j != k && l->port != 0 && cfg->listeners[j].port == l->port;
        sock->fd = listen_on(l->host, l->port, shares_port, &sock->port, why, sizeof(why));
        if (sock->fd < 0) {
            snprintf(err, err_size, "%s%s%s", l->name ? l->name : "", l->name ? " " : "", why);
            free_sockets(srv);
            free(srv);
            return NULL;
        }
        sock->name = l->name ? xstrdup(l->name) : NULL;
        srv->nsockets++;
        ev_io_init(&sock->accept_watcher, accept_cb, sock->fd, EV_READ);
        sock->accept_watcher.data = sock;
        ev_io_start(loop, &sock->accept_watcher);
        VLOG_INFO(NET_MODULE, "listening on %s%s%s:%d", l->name ? l->name : "", l->name ? " " : "",
                  l->host && l->host[0] ? l->host : "0.0.0.0", sock->port);
    }
    return srv;
}

int32_t net_server_port(const net_server_t *srv, size_t index)
{
    assert(index < srv->nsockets);
    return srv->sockets[index].port;
}

size_t net_server_connections(const net_server_t *srv)
{
    return srv->nopen;
}

void net_server_stop_accepting(net_server_t *srv)
{
    if (srv->stopping)
        return;
    srv->stopping = true;
    close_sockets(srv);
    for (net_conn_t *c = srv->conns, *next; c != NULL; c = next) {
        next = c->next;
        if (c->state == CONN_CLOSED || c->state == CONN_DRAINING)
            continue;
        c->busy++;
        ev_io_stop(srv->loop, &c->read_watcher);
        conn_set_state(c, CONN_DRAINING);
        if (c->head == NULL)
            conn_close(c);
        c->busy--;
        conn_maybe_release(c);
    }
}

static void drain_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    *(bool *)w->data = true;
}

bool net_server_drain(net_server_t *srv, int64_t timeout_ms)
{
    assert(srv->stopping);
    assert(timeout_ms >= 0);
    bool timed_out = false;
    ev_timer deadline;
    ev_timer_init(&deadline, drain_timeout_cb, (double)timeout_ms / 1000.0, 0.0);
    deadline.data = &timed_out;
    ev_timer_start(srv->loop, &deadline);
    while (srv->nopen > 0 && !timed_out)
        ev_run(srv->loop, EVRUN_ONCE);
    ev_timer_stop(srv->loop, &deadline);
    if (srv->nopen > 0)
        VLOG_WARN(NET_MODULE, "%zu connections still busy after %lld ms; closing them", srv->nopen,
                  (long long)timeout_ms);
    return srv->nopen == 0;
}

void net_server_free(net_server_t *srv)
{
    if (srv == NULL)
        return;
    net_server_stop_accepting(srv);
    for (net_conn_t *c = srv->conns, *next; c != NULL; c = next) {
        next = c->next;
        c->busy++;
        conn_close(c);
        c->busy--;
        /* A request still held keeps the connection alive after us. */
        c->srv = NULL;
        c->prev = c->next = NULL;
        conn_maybe_release(c);
    }
    assert(srv->nopen == 0);
    free_sockets(srv);
    free(srv);
}

/* ---- the deferred-request contract (api.h) ---- */

void api_request_complete(kafka_request_t *req, kafka_response_t *resp, api_result_t result)
{
    net_request_t *nr = (net_request_t *)req;
    net_conn_t *c = nr->conn;

    assert(&nr->resp == resp);
    assert(nr->status == REQ_PENDING);
    assert(result == API_RESPOND || result == API_NO_RESPONSE);
    if (req->on_complete != NULL)
        req->on_complete(req, resp, result); /* the dispatcher's accounting (metrics) */
    c->busy++;
    if (c->state == CONN_CLOSED) {
        request_unlink_free(nr);
    } else if (result == API_NO_RESPONSE) {
        nr->status = REQ_SILENT;
        conn_flush(c);
    } else if (!request_ready(nr)) {
        kafka_request_header_t h = {req->api_key, req->api_version, req->correlation_id,
                                    req->client_id};
        conn_refuse(c, &h, "response larger than 2 GiB");
        conn_close(c);
    } else {
        conn_flush(c);
    }
    c->busy--;
    conn_maybe_release(c);
}
