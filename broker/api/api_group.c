/* Consumer-group membership and administration: JoinGroup v0-9,
 * SyncGroup v0-5, Heartbeat v0-4, LeaveGroup v0-5, ListGroups v0-4,
 * DescribeGroups v0-5 and DeleteGroups v0-2, decoded here and answered by
 * the group coordinator (broker/group/group_coordinator.h).
 *
 * JoinGroup, SyncGroup and DeleteGroups may wait: for the other members,
 * for the leader's assignment, for a write to be replicated. Such a
 * request lives in an op holding the request, its response and the
 * decoded arrays (views into the frame, valid while the request lives);
 * the coordinator's callback writes the answer (see api_deferred_t).
 *
 * Sizes: ids, protocol metadata and assignments are the coordinator's to
 * bound (GROUP_MAX_ID_BYTES, GROUP_MAX_METADATA_BYTES): a request over them
 * is well-formed, so it gets an error code (INVALID_REQUEST), not a closed
 * connection; the frame itself is bounded by socket.request.max.bytes. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_handlers.h"
#include "group_coordinator.h"
#include "kafka_errors.h"
#include "xalloc.h"

/* What Kafka reports for a group when include_authorized_operations is set
 * and no authorizer is configured: every operation a group supports
 * (AclOperation READ 3, DELETE 6, DESCRIBE 8, as a bit field). */
#define GROUP_AUTHORIZED_OPS ((1 << 3) | (1 << 6) | (1 << 8))

static const uint8_t empty_bytes[1];

/* ---- answers that may come during the coordinator call or later ---- */

void api_deferred_begin(api_deferred_t *d, kafka_request_t *req, kafka_response_t *resp,
                        void (*free_op)(void *op), void *op)
{
    assert(req != NULL && resp != NULL && free_op != NULL && op != NULL);
    assert(resp->body.len == 0);
    *d = (api_deferred_t){.req = req, .resp = resp, .free_op = free_op, .op = op, .in_call = true};
}

api_result_t api_deferred_end(api_deferred_t *d)
{
    assert(d->in_call);
    if (!d->answered) {
        d->in_call = false;
        return API_DEFERRED;
    }
    assert(d->resp->body.len > 0);
    d->free_op(d->op);
    return API_RESPOND;
}

void api_deferred_answer(api_deferred_t *d)
{
    assert(!d->answered);
    assert(d->resp->body.len > 0);
    d->answered = true;
    if (d->in_call)
        return; /* api_deferred_end() returns the answer and frees */
    api_request_complete(d->req, d->resp, API_RESPOND);
    d->free_op(d->op);
}

/* "/ip" from net's "ip:port" (IPv6 addresses unbracketed; "[ip]:port" is
 * accepted too), as Kafka reports a member's client_host. */
static void client_host_of(const char *peer, char *out, size_t size)
{
    assert(out != NULL && size > 2);
    if (peer == NULL)
        peer = "";
    const char *colon = strrchr(peer, ':');
    size_t n = colon ? (size_t)(colon - peer) : strlen(peer);
    const char *ip = peer;
    if (n >= 2 && ip[0] == '[' && ip[n - 1] == ']') {
        ip++;
        n -= 2;
    }
    snprintf(out, size, "/%.*s", (int)n, ip);
}

/* A byte view the writer writes as present (a NULL pointer is null). */
static const uint8_t *nonnull_bytes(const uint8_t *p)
{
    return p ? p : empty_bytes;
}

static const char *nonnull(const char *s)
{
    return s ? s : "";
}

/* JoinGroup's protocols and SyncGroup's assignments: entries of a string and
 * bytes (and tags when flexible), the smallest of which takes this many
 * bytes. */
#define NAMED_BYTES_MIN(flexible) ((flexible) ? 3 : 6)

/* One such entry. False when malformed: the schemas' bytes are not
 * nullable. */
static bool read_named_bytes(kreader_t *r, bool flexible, kslice_t *name, kslice_t *bytes)
{
    kr_string_v(r, flexible, name);
    kr_bytes_v(r, flexible, bytes);
    kr_tags_v(r, flexible);
    return kr_ok(r) && bytes->ptr != NULL;
}

/* ---- JoinGroup ---- */

typedef struct join_op {
    api_deferred_t d;
    char client_host[80];
    group_protocol_t protocols[]; /* views into the frame */
} join_op_t;

static void join_done(void *arg, const group_join_result_t *res)
{
    join_op_t *op = arg;
    kwriter_t *w = &op->d.resp->body;
    const int16_t version = op->d.req->api_version;
    const bool flexible = op->d.req->flexible;
    assert(res != NULL && res->nmembers >= 0);
    assert(w->len == 0);

    if (version >= 2)
        kw_i32(w, 0); /* throttle_time_ms */
    kw_i16(w, res->error);
    kw_i32(w, res->generation_id);
    if (version >= 7)
        kw_string_v(w, flexible, res->protocol_type, -1);
    /* Nullable from v7; before, "" stands for none. */
    kw_string_v(w, flexible, version >= 7 ? res->protocol_name : nonnull(res->protocol_name), -1);
    kw_string_v(w, flexible, nonnull(res->leader), -1);
    if (version >= 9)
        kw_bool(w, res->skip_assignment);
    kw_string_v(w, flexible, nonnull(res->member_id), -1);
    kw_array_v(w, flexible, res->nmembers);
    for (int32_t i = 0; i < res->nmembers; i++) {
        const group_join_member_t *m = &res->members[i];
        kw_string_v(w, flexible, nonnull(m->member_id), -1);
        if (version >= 5)
            kw_string_v(w, flexible, m->group_instance_id, -1);
        kw_bytes_v(w, flexible, nonnull_bytes(m->metadata), m->metadata_len);
        kw_tags_v(w, flexible);
    }
    kw_tags_v(w, flexible);
    api_deferred_answer(&op->d);
}

api_result_t api_handle_join_group(api_context_t *ctx, kafka_request_t *req, kafka_response_t *resp)
{
    kreader_t *r = &req->body;
    const int16_t version = req->api_version;
    const bool flexible = req->flexible;
    assert(version >= 0 && version <= 9);
    assert(flexible == (version >= 6) && ctx->groups != NULL);

    group_join_params_t p = {.version = version, .client_id = req->client_id};
    int32_t n = 0;
    kr_string_v(r, flexible, &p.group_id);
    kr_i32(r, &p.session_timeout_ms);
    p.rebalance_timeout_ms = p.session_timeout_ms; /* v0 has none: Kafka uses the session's */
    if (version >= 1)
        kr_i32(r, &p.rebalance_timeout_ms);
    kr_string_v(r, flexible, &p.member_id);
    if (version >= 5)
        kr_nullable_string_v(r, flexible, &p.group_instance_id);
    kr_string_v(r, flexible, &p.protocol_type);
    kr_array_v(r, flexible, NAMED_BYTES_MIN(flexible), &n);
    if (!kr_ok(r) || n < 0)
        return API_REFUSE(req, "malformed JoinGroup request");

    join_op_t *op = xcalloc(1, sizeof(*op) + (size_t)n * sizeof(op->protocols[0]));
    bool ok = true;
    for (int32_t i = 0; ok && i < n; i++)
        ok = read_named_bytes(r, flexible, &op->protocols[i].name, &op->protocols[i].metadata);
    kslice_t reason; /* v8+: for the coordinator's log in Kafka; unused */
    if (version >= 8)
        kr_nullable_string_v(r, flexible, &reason);
    kr_tags_v(r, flexible);
    if (!ok || !kr_ok(r)) {
        free(op);
        return API_REFUSE(req, "malformed JoinGroup request");
    }

    client_host_of(req->peer, op->client_host, sizeof(op->client_host));
    p.protocols = op->protocols;
    p.nprotocols = n;
    p.client_host = op->client_host;
    api_deferred_begin(&op->d, req, resp, free, op);
    group_join(ctx->groups, &p, join_done, op);
    return api_deferred_end(&op->d);
}

/* ---- SyncGroup ---- */

typedef struct sync_op {
    api_deferred_t d;
    group_assignment_t assignments[]; /* views into the frame */
} sync_op_t;

static void sync_done(void *arg, const group_sync_result_t *res)
{
    sync_op_t *op = arg;
    kwriter_t *w = &op->d.resp->body;
    const int16_t version = op->d.req->api_version;
    const bool flexible = op->d.req->flexible;
    assert(res != NULL && res->assignment_len >= 0);
    assert(w->len == 0);

    if (version >= 1)
        kw_i32(w, 0); /* throttle_time_ms */
    kw_i16(w, res->error);
    if (version >= 5) {
        kw_string_v(w, flexible, res->protocol_type, -1);
        kw_string_v(w, flexible, res->protocol_name, -1);
    }
    kw_bytes_v(w, flexible, nonnull_bytes(res->assignment), res->assignment_len);
    kw_tags_v(w, flexible);
    api_deferred_answer(&op->d);
}

api_result_t api_handle_sync_group(api_context_t *ctx, kafka_request_t *req, kafka_response_t *resp)
{
    kreader_t *r = &req->body;
    const int16_t version = req->api_version;
    const bool flexible = req->flexible;
    assert(version >= 0 && version <= 5);
    assert(flexible == (version >= 4) && ctx->groups != NULL);

    group_sync_params_t p = {.version = version};
    int32_t n = 0;
    kr_string_v(r, flexible, &p.group_id);
    kr_i32(r, &p.generation_id);
    kr_string_v(r, flexible, &p.member_id);
    if (version >= 3)
        kr_nullable_string_v(r, flexible, &p.group_instance_id);
    if (version >= 5) {
        kr_nullable_string_v(r, flexible, &p.protocol_type);
        kr_nullable_string_v(r, flexible, &p.protocol_name);
    }
    kr_array_v(r, flexible, NAMED_BYTES_MIN(flexible), &n);
    if (!kr_ok(r) || n < 0)
        return API_REFUSE(req, "malformed SyncGroup request");

    sync_op_t *op = xcalloc(1, sizeof(*op) + (size_t)n * sizeof(op->assignments[0]));
    bool ok = true;
    for (int32_t i = 0; ok && i < n; i++)
        ok = read_named_bytes(r, flexible, &op->assignments[i].member_id,
                              &op->assignments[i].assignment);
    kr_tags_v(r, flexible);
    if (!ok || !kr_ok(r)) {
        free(op);
        return API_REFUSE(req, "malformed SyncGroup request");
    }

    p.assignments = op->assignments;
    p.nassignments = n;
    api_deferred_begin(&op->d, req, resp, free, op);
    group_sync(ctx->groups, &p, sync_done, op);
    return api_deferred_end(&op->d);
}

/* ---- Heartbeat ---- */

api_result_t api_handle_heartbeat(api_context_t *ctx, kafka_request_t *req, kafka_response_t *resp)
{
    kreader_t *r = &req->body;
    kwriter_t *w = &resp->body;
    const int16_t version = req->api_version;
    const bool flexible = req->flexible;
    assert(version >= 0 && version <= 4);
    assert(flexible == (version >= 4) && ctx->groups != NULL);

    kslice_t group_id, member_id, instance_id = {0};
    int32_t generation_id;
    kr_string_v(r, flexible, &group_id);
    kr_i32(r, &generation_id);
    kr_string_v(r, flexible, &member_id);
    if (version >= 3)
        kr_nullable_string_v(r, flexible, &instance_id);
    kr_tags_v(r, flexible);
    if (!kr_ok(r))
        return API_REFUSE(req, "malformed Heartbeat request");

    int16_t error = group_heartbeat(ctx->groups, group_id, generation_id, member_id, instance_id);
    if (version >= 1)
        kw_i32(w, 0); /* throttle_time_ms */
    kw_i16(w, error);
    kw_tags_v(w, flexible);
    return API_RESPOND;
}

/* ---- LeaveGroup ---- */

api_result_t api_handle_leave_group(api_context_t *ctx, kafka_request_t *req,
                                    kafka_response_t *resp)
{
    kreader_t *r = &req->body;
    kwriter_t *w = &resp->body;
    const int16_t version = req->api_version;
    const bool flexible = req->flexible;
    assert(version >= 0 && version <= 5);
    assert(flexible == (version >= 4) && ctx->groups != NULL);

    kslice_t group_id;
    int32_t n = 1; /* v0-2: the one member_id of the request */
    kr_string_v(r, flexible, &group_id);
    if (version >= 3)
        kr_array_v(r, flexible, flexible ? 3 : 4, &n);
    if (!kr_ok(r) || n < 0)
        return API_REFUSE(req, "malformed LeaveGroup request");
    group_leave_member_t *members = xcalloc((size_t)n + 1, sizeof(*members));
    if (version <= 2)
        kr_string_v(r, flexible, &members[0].member_id);
    for (int32_t i = 0; version >= 3 && i < n; i++) {
        kslice_t reason; /* v5+: for the coordinator's log in Kafka; unused */
        kr_string_v(r, flexible, &members[i].member_id);
        kr_nullable_string_v(r, flexible, &members[i].group_instance_id);
        if (version >= 5)
            kr_nullable_string_v(r, flexible, &reason);
        kr_tags_v(r, flexible);
    }
    kr_tags_v(r, flexible);
    if (!kr_ok(r)) {
        free(members);
        return API_REFUSE(req, "malformed LeaveGroup request");
    }

    int16_t error = group_leave(ctx->groups, group_id, members, n);
    if (version >= 1)
        kw_i32(w, 0); /* throttle_time_ms */
    if (version <= 2) {
        /* One member, whose own error is the answer. */
        kw_i16(w, error != KAFKA_NONE ? error : members[0].error);
    } else {
        /* A request-level error lists no member (as Kafka answers). */
        kw_i16(w, error);
        int32_t listed = error == KAFKA_NONE ? n : 0;
        kw_array_v(w, flexible, listed);
        for (int32_t i = 0; i < listed; i++) {
            const group_leave_member_t *m = &members[i];
            kw_string_v(w, flexible, (const char *)m->member_id.ptr, m->member_id.len);
            kw_string_v(w, flexible, (const char *)m->group_instance_id.ptr,
                        m->group_instance_id.len);
            kw_i16(w, m->error);
            kw_tags_v(w, flexible);
        }
    }
    kw_tags_v(w, flexible);
    free(members);
    return API_RESPOND;
}

/* ---- ListGroups ---- */

api_result_t api_handle_list_groups(api_context_t *ctx, kafka_request_t *req,
                                    kafka_response_t *resp)
{
    kreader_t *r = &req->body;
    kwriter_t *w = &resp->body;
    const int16_t version = req->api_version;
    const bool flexible = req->flexible;
    assert(version >= 0 && version <= 4);
    assert(flexible == (version >= 3) && ctx->groups != NULL);

    int32_t nstates = 0;
    if (version >= 4 && (!kr_array_v(r, flexible, 1, &nstates) || nstates < 0))
        return API_REFUSE(req, "malformed ListGroups request");
    kslice_t *states = xcalloc((size_t)nstates + 1, sizeof(*states));
    for (int32_t i = 0; i < nstates; i++)
        kr_string_v(r, flexible, &states[i]);
    kr_tags_v(r, flexible);
    if (!kr_ok(r)) {
        free(states);
        return API_REFUSE(req, "malformed ListGroups request");
    }

    group_listing_t *groups = NULL;
    int32_t count = 0;
    int16_t error = group_list(ctx->groups, states, nstates, &groups, &count);
    assert(count >= 0);
    if (version >= 1)
        kw_i32(w, 0); /* throttle_time_ms */
    kw_i16(w, error);
    kw_array_v(w, flexible, count);
    for (int32_t i = 0; i < count; i++) {
        kw_string_v(w, flexible, groups[i].group_id, -1);
        kw_string_v(w, flexible, nonnull(groups[i].protocol_type), -1);
        if (version >= 4)
            kw_string_v(w, flexible, nonnull(groups[i].state), -1);
        kw_tags_v(w, flexible);
    }
    kw_tags_v(w, flexible);
    free(groups);
    free(states);
    return API_RESPOND;
}

/* ---- DescribeGroups ---- */

static void write_description(kwriter_t *w, int16_t version, bool flexible, kslice_t group_id,
                              const group_description_t *d, bool include_authorized_ops)
{
    assert(d->nmembers >= 0);
    assert(group_id.ptr != NULL);
    kw_i16(w, d->error);
    kw_string_v(w, flexible, (const char *)group_id.ptr, group_id.len);
    kw_string_v(w, flexible, nonnull(d->state), -1);
    kw_string_v(w, flexible, nonnull(d->protocol_type), -1);
    kw_string_v(w, flexible, nonnull(d->protocol), -1);
    kw_array_v(w, flexible, d->nmembers);
    for (int32_t i = 0; i < d->nmembers; i++) {
        const group_member_description_t *m = &d->members[i];
        kw_string_v(w, flexible, nonnull(m->member_id), -1);
        if (version >= 4)
            kw_string_v(w, flexible, m->group_instance_id, -1);
        kw_string_v(w, flexible, nonnull(m->client_id), -1);
        kw_string_v(w, flexible, nonnull(m->client_host), -1);
        kw_bytes_v(w, flexible, nonnull_bytes(m->metadata), m->metadata_len);
        kw_bytes_v(w, flexible, nonnull_bytes(m->assignment), m->assignment_len);
        kw_tags_v(w, flexible);
    }
    /* Kafka computes the operations only for a group it described. */
    if (version >= 3)
        kw_i32(w, include_authorized_ops && d->error == KAFKA_NONE ? GROUP_AUTHORIZED_OPS
                                                                   : API_AUTHORIZED_OPS_OMITTED);
    kw_tags_v(w, flexible);
}

api_result_t api_handle_describe_groups(api_context_t *ctx, kafka_request_t *req,
                                        kafka_response_t *resp)
{
    kreader_t *r = &req->body;
    kwriter_t *w = &resp->body;
    const int16_t version = req->api_version;
    const bool flexible = req->flexible;
    assert(version >= 0 && version <= 5);
    assert(flexible == (version >= 5) && ctx->groups != NULL);

    int32_t n = 0;
    kslice_t group_id;
    bool include_authorized_ops = false;
    kr_array_v(r, flexible, flexible ? 1 : 2, &n);
    kreader_t groups_at = *r; /* read twice: validated first, then answered */
    for (int32_t i = 0; i < n; i++)
        kr_string_v(r, flexible, &group_id);
    if (version >= 3)
        kr_bool(r, &include_authorized_ops);
    kr_tags_v(r, flexible);
    if (!kr_ok(r) || n < 0)
        return API_REFUSE(req, "malformed DescribeGroups request");

    if (version >= 1)
        kw_i32(w, 0); /* throttle_time_ms */
    kw_array_v(w, flexible, n);
    for (int32_t i = 0; i < n; i++) {
        group_description_t d = {0};
        kr_string_v(&groups_at, flexible, &group_id); /* validated above */
        group_describe(ctx->groups, group_id, &d);
        write_description(w, version, flexible, group_id, &d, include_authorized_ops);
        free(d.members);
    }
    kw_tags_v(w, flexible);
    return API_RESPOND;
}

/* ---- DeleteGroups ---- */

typedef struct delete_op {
    api_deferred_t d;
    int32_t nitems;
    group_delete_item_t items[]; /* group ids: views into the frame */
} delete_op_t;

static void write_delete_results(kwriter_t *w, bool flexible, const group_delete_item_t *items,
                                 int32_t n)
{
    assert(n >= 0);
    assert(w->len == 0);
    kw_i32(w, 0); /* throttle_time_ms */
    kw_array_v(w, flexible, n);
    for (int32_t i = 0; i < n; i++) {
        kw_string_v(w, flexible, (const char *)items[i].group_id.ptr, items[i].group_id.len);
        kw_i16(w, items[i].error);
        kw_tags_v(w, flexible);
    }
    kw_tags_v(w, flexible);
}

static void delete_done(void *arg)
{
    delete_op_t *op = arg;
    assert(op->nitems > 0);
    write_delete_results(&op->d.resp->body, op->d.req->flexible, op->items, op->nitems);
    api_deferred_answer(&op->d);
}

api_result_t api_handle_delete_groups(api_context_t *ctx, kafka_request_t *req,
                                      kafka_response_t *resp)
{
    kreader_t *r = &req->body;
    const bool flexible = req->flexible; /* the versions differ in nothing else */
    assert(req->api_version >= 0 && req->api_version <= 2);
    assert(flexible == (req->api_version >= 2) && ctx->groups != NULL);

    int32_t n = 0;
    if (!kr_array_v(r, flexible, flexible ? 1 : 2, &n) || n < 0)
        return API_REFUSE(req, "malformed DeleteGroups request");
    delete_op_t *op = xcalloc(1, sizeof(*op) + (size_t)n * sizeof(op->items[0]));
    op->nitems = n;
    for (int32_t i = 0; i < n; i++)
        kr_string_v(r, flexible, &op->items[i].group_id);
    kr_tags_v(r, flexible);
    if (!kr_ok(r)) {
        free(op);
        return API_REFUSE(req, "malformed DeleteGroups request");
    }
    if (n == 0) { /* nothing to delete: answered without the coordinator */
        write_delete_results(&resp->body, flexible, op->items, 0);
        free(op);
        return API_RESPOND;
    }

    api_deferred_begin(&op->d, req, resp, free, op);
    group_delete(ctx->groups, op->items, n, delete_done, op);
    return api_deferred_end(&op->d);
}
