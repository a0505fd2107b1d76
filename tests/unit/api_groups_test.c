/* test_api_groups: the consumer-group handlers (api_group.c, api_offsets.c)
 * against a fake group coordinator defined here, which records what the
 * handlers decoded and answers either during the call or later (the two
 * paths of api_deferred_t), over a fake cluster metadata with topics t1
 * (100 partitions) and t2 (2). Requests are encoded with the codec's writer
 * and answers decoded field by field, per version. Every strict prefix of
 * each request must be refused (API_MALFORMED), which ASan checks for
 * leaks and overreads. */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_handlers.h"
#include "coordinator.h"
#include "group_coordinator.h"
#include "kafka_codec.h"
#include "kafka_errors.h"
#include "unit_run.h"

/* ---- the fake coordinator ---- */

static struct fake {
    bool defer;            /* keep the callback and run it from the test */
    void (*pending)(void); /* the kept callback, as a closure */
    int calls;
    /* what the handlers passed */
    group_join_params_t join;
    group_protocol_t protocols[4];
    char client_host[80];
    group_sync_params_t sync;
    group_assignment_t assignments[4];
    kslice_t group_id, member_id, instance_id;
    int32_t generation_id;
    int32_t nmembers;
    kslice_t leave_ids[4];
    int32_t nstates;
    kslice_t states[4];
    group_commit_params_t commit;
    group_commit_part_t commit_parts[8];
    group_txn_commit_params_t txn_commit;
    bool wanted_all;
    int32_t nwanted;
    group_topic_partition_t wanted[8];
    bool require_stable;
    int32_t ndelete;
    /* what it answers */
    int16_t error;
    group_join_done_fn join_done;
    group_sync_done_fn sync_done;
    group_done_fn done;
    void *arg;
    group_commit_part_t *parts; /* the handler's, for commit and delete */
    int32_t nparts;
    group_delete_item_t *items;
    int16_t *group_error;
    /* api_request_complete */
    int completes;
    api_result_t completed_with;
} fake;

static const group_join_member_t join_members[] = {
    {.member_id = "m-1",
     .group_instance_id = NULL,
     .metadata = (const uint8_t *)"meta1",
     .metadata_len = 5},
    {.member_id = "m-2", .group_instance_id = "i-2", .metadata = NULL, .metadata_len = 0},
};

/* Answers now, or keeps the answer for the test to give (fake.defer). */
static void keep_or_fire(void (*fire)(void))
{
    if (fake.defer)
        fake.pending = fire;
    else
        fire();
}

static void fire_join(void)
{
    group_join_result_t res = {.error = fake.error,
                               .generation_id = 7,
                               .protocol_type = NULL,
                               .protocol_name = "range",
                               .leader = "m-1",
                               .skip_assignment = false,
                               .member_id = "m-1",
                               .members = join_members,
                               .nmembers = 2};
    fake.join_done(fake.arg, &res);
}

void group_join(group_coordinator_t *gc, const group_join_params_t *p, group_join_done_fn done,
                void *arg)
{
    (void)gc;
    fake.calls++;
    fake.join = *p;
    for (int32_t i = 0; i < p->nprotocols && i < 4; i++)
        fake.protocols[i] = p->protocols[i];
    snprintf(fake.client_host, sizeof(fake.client_host), "%s", p->client_host);
    fake.join_done = done;
    fake.arg = arg;
    keep_or_fire(fire_join);
}

static void fire_sync(void)
{
    group_sync_result_t res = {.error = fake.error,
                               .protocol_type = "consumer",
                               .protocol_name = NULL,
                               .assignment = (const uint8_t *)"ASSIGN",
                               .assignment_len = 6};
    if (fake.error != KAFKA_NONE) {
        res.assignment = NULL;
        res.assignment_len = 0;
    }
    fake.sync_done(fake.arg, &res);
}

void group_sync(group_coordinator_t *gc, const group_sync_params_t *p, group_sync_done_fn done,
                void *arg)
{
    (void)gc;
    fake.calls++;
    fake.sync = *p;
    for (int32_t i = 0; i < p->nassignments && i < 4; i++)
        fake.assignments[i] = p->assignments[i];
    fake.sync_done = done;
    fake.arg = arg;
    keep_or_fire(fire_sync);
}

int16_t group_heartbeat(group_coordinator_t *gc, kslice_t group_id, int32_t generation_id,
                        kslice_t member_id, kslice_t group_instance_id)
{
    (void)gc;
    fake.calls++;
    fake.group_id = group_id;
    fake.generation_id = generation_id;
    fake.member_id = member_id;
    fake.instance_id = group_instance_id;
    return fake.error;
}

int16_t group_leave(group_coordinator_t *gc, kslice_t group_id, group_leave_member_t *members,
                    int32_t nmembers)
{
    (void)gc;
    fake.calls++;
    fake.group_id = group_id;
    fake.nmembers = nmembers;
    for (int32_t i = 0; i < nmembers && i < 4; i++) {
        fake.leave_ids[i] = members[i].member_id;
        members[i].error = i == 0 ? KAFKA_NONE : KAFKA_UNKNOWN_MEMBER_ID;
    }
    return fake.error;
}

int16_t group_list(group_coordinator_t *gc, const kslice_t *states, int32_t nstates,
                   group_listing_t **out, int32_t *count)
{
    (void)gc;
    fake.calls++;
    fake.nstates = nstates;
    for (int32_t i = 0; i < nstates && i < 4; i++)
        fake.states[i] = states[i];
    *count = 2;
    *out = calloc(2, sizeof(group_listing_t));
    (*out)[0] = (group_listing_t){.group_id = "g1", .protocol_type = "consumer", .state = "Stable"};
    (*out)[1] = (group_listing_t){.group_id = "g2", .protocol_type = "", .state = "Empty"};
    return fake.error;
}

void group_describe(group_coordinator_t *gc, kslice_t group_id, group_description_t *out)
{
    (void)gc;
    fake.calls++;
    if (kslice_eq(group_id, "missing")) {
        *out = (group_description_t){
            .error = KAFKA_NONE, .state = "Dead", .protocol_type = "", .protocol = ""};
        return;
    }
    *out = (group_description_t){.error = fake.error,
                                 .state = "Stable",
                                 .protocol_type = "consumer",
                                 .protocol = "range",
                                 .nmembers = 1};
    out->members = calloc(1, sizeof(group_member_description_t));
    out->members[0] = (group_member_description_t){.member_id = "m-1",
                                                   .group_instance_id = NULL,
                                                   .client_id = "cid",
                                                   .client_host = "/127.0.0.1",
                                                   .metadata = (const uint8_t *)"md",
                                                   .metadata_len = 2,
                                                   .assignment = (const uint8_t *)"as",
                                                   .assignment_len = 2};
}

static void fire_done(void)
{
    for (int32_t i = 0; fake.parts && i < fake.nparts; i++)
        fake.parts[i].error =
            fake.parts[i].partition == 99 ? KAFKA_UNKNOWN_TOPIC_OR_PARTITION : KAFKA_NONE;
    for (int32_t i = 0; fake.items && i < fake.ndelete; i++)
        fake.items[i].error = i == 0 ? KAFKA_NONE : KAFKA_GROUP_ID_NOT_FOUND;
    if (fake.group_error)
        *fake.group_error = fake.error;
    fake.done(fake.arg);
}

void group_offset_commit(group_coordinator_t *gc, const group_commit_params_t *p,
                         group_done_fn done, void *arg)
{
    (void)gc;
    fake.calls++;
    fake.commit = *p;
    for (int32_t i = 0; i < p->nparts && i < 8; i++)
        fake.commit_parts[i] = p->parts[i];
    fake.parts = p->parts;
    fake.nparts = p->nparts;
    fake.done = done;
    fake.arg = arg;
    keep_or_fire(fire_done);
}

/* TxnOffsetCommit's answer: partition 99 unknown, the others fake.error. */
static void fire_txn_done(void)
{
    for (int32_t i = 0; i < fake.nparts; i++)
        fake.parts[i].error =
            fake.parts[i].partition == 99 ? KAFKA_UNKNOWN_TOPIC_OR_PARTITION : fake.error;
    fake.done(fake.arg);
}

void group_txn_offset_commit(group_coordinator_t *gc, const group_txn_commit_params_t *p,
                             group_done_fn done, void *arg)
{
    (void)gc;
    fake.calls++;
    fake.txn_commit = *p;
    for (int32_t i = 0; i < p->nparts && i < 8; i++)
        fake.commit_parts[i] = p->parts[i];
    fake.parts = p->parts;
    fake.nparts = p->nparts;
    fake.done = done;
    fake.arg = arg;
    keep_or_fire(fire_txn_done);
}

void group_offset_fetch(group_coordinator_t *gc, kslice_t group_id,
                        const group_topic_partition_t *wanted, int32_t nwanted, bool require_stable,
                        group_offsets_t *out)
{
    (void)gc;
    fake.calls++;
    fake.group_id = group_id;
    fake.wanted_all = wanted == NULL;
    fake.nwanted = nwanted;
    fake.require_stable = require_stable;
    for (int32_t i = 0; i < nwanted && i < 8; i++)
        fake.wanted[i] = wanted[i];
    out->error = kslice_eq(group_id, "loading") ? KAFKA_COORDINATOR_LOAD_IN_PROGRESS : fake.error;
    out->offsets = NULL;
    out->noffsets = 0;
    if (out->error != KAFKA_NONE)
        return;
    /* Every committed offset: t1/0, t1/1, t2/0. */
    out->offsets = calloc(3, sizeof(group_committed_t));
    out->offsets[0] = (group_committed_t){"t1", 0, 10, 3, "", KAFKA_NONE};
    out->offsets[1] = (group_committed_t){"t1", 1, 11, -1, "meta", KAFKA_NONE};
    out->offsets[2] = (group_committed_t){"t2", 0, -1, -1, "", KAFKA_NONE};
    out->noffsets = 3;
}

void group_delete(group_coordinator_t *gc, group_delete_item_t *items, int32_t nitems,
                  group_done_fn done, void *arg)
{
    (void)gc;
    fake.calls++;
    fake.items = items;
    fake.ndelete = nitems;
    fake.done = done;
    fake.arg = arg;
    keep_or_fire(fire_done);
}

void group_offset_delete(group_coordinator_t *gc, kslice_t group_id, group_commit_part_t *parts,
                         int32_t nparts, int16_t *group_error, group_done_fn done, void *arg)
{
    (void)gc;
    fake.calls++;
    fake.group_id = group_id;
    fake.parts = parts;
    fake.nparts = nparts;
    fake.group_error = group_error;
    fake.done = done;
    fake.arg = arg;
    keep_or_fire(fire_done);
}

void api_request_complete(kafka_request_t *req, kafka_response_t *resp, api_result_t result)
{
    CU_ASSERT_PTR_NOT_NULL(req);
    CU_ASSERT_PTR_NOT_NULL(resp);
    fake.completes++;
    fake.completed_with = result;
}

/* ---- the fake cluster metadata ---- */

static md_topic_t topics[] = {{.name = "t1", .npartitions = 100}, {.name = "t2", .npartitions = 2}};
static const cluster_metadata_t fake_metadata = {.topics = topics, .ntopics = 2};

const cluster_metadata_t *coordinator_metadata(const coordinator_t *c)
{
    CU_ASSERT_PTR_NULL(c);
    return &fake_metadata;
}

const md_topic_t *cluster_metadata_topic(const cluster_metadata_t *md, const char *name,
                                         size_t name_len)
{
    for (size_t i = 0; i < md->ntopics; i++)
        if (strlen(md->topics[i].name) == name_len &&
            memcmp(md->topics[i].name, name, name_len) == 0)
            return &md->topics[i];
    return NULL;
}

/* ---- requests ---- */

static api_context_t ctx;

typedef struct call {
    kafka_request_t req;
    kafka_response_t resp;
    kreader_t out; /* over resp.body once answered */
    api_result_t result;
} call_t;

static void reset_fake(bool defer, int16_t error)
{
    memset(&fake, 0, sizeof(fake));
    fake.defer = defer;
    fake.error = error;
}

/* Runs handler on body as (key, version); checks that every strict prefix
 * of body is refused first (each with a fresh fake). */
static void run(call_t *c, api_handler_fn handler, int16_t key, int16_t version, bool flexible,
                const kwriter_t *body)
{
    struct fake saved = fake;
    for (size_t cut = 0; cut < body->len; cut++) {
        call_t p;
        memset(&p, 0, sizeof(p));
        p.req = (kafka_request_t){.api_key = key,
                                  .api_version = version,
                                  .flexible = flexible,
                                  .frame = body->buf,
                                  .frame_len = cut,
                                  .peer = "10.1.2.3:5555"};
        kr_init(&p.req.body, body->buf, cut);
        kafka_response_init(&p.resp);
        fake.defer = false;
        api_result_t res = handler(&ctx, &p.req, &p.resp);
        CU_ASSERT_EQUAL(res, API_MALFORMED);
        if (res != API_MALFORMED)
            printf("\nkey %d v%d: prefix of %zu of %zu bytes accepted\n", key, version, cut,
                   body->len);
        CU_ASSERT_PTR_NOT_NULL(p.req.malformed_reason);
        kafka_response_free(&p.resp);
        fake = saved;
    }
    memset(c, 0, sizeof(*c));
    c->req = (kafka_request_t){.api_key = key,
                               .api_version = version,
                               .flexible = flexible,
                               .client_id = {.ptr = (const uint8_t *)"cid", .len = 3},
                               .frame = body->buf,
                               .frame_len = body->len,
                               .peer = "10.1.2.3:5555"};
    kr_init(&c->req.body, body->buf, body->len);
    kafka_response_init(&c->resp);
    c->result = handler(&ctx, &c->req, &c->resp);
    kr_init(&c->out, c->resp.body.buf, c->resp.body.len);
}

static void answer_later(call_t *c)
{
    CU_ASSERT_EQUAL_FATAL(c->result, API_DEFERRED);
    CU_ASSERT_EQUAL(c->resp.body.len, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(fake.pending);
    fake.pending();
    CU_ASSERT_EQUAL(fake.completes, 1);
    CU_ASSERT_EQUAL(fake.completed_with, API_RESPOND);
    kr_init(&c->out, c->resp.body.buf, c->resp.body.len);
}

/* The answer of a call whose coordinator call may have been kept. */
static void answered(call_t *c)
{
    if (fake.pending != NULL)
        answer_later(c);
    else
        CU_ASSERT_EQUAL(c->result, API_RESPOND);
}

static int16_t rd_i16(kreader_t *r)
{
    int16_t v = -999;
    kr_i16(r, &v);
    return v;
}

static int32_t rd_i32(kreader_t *r)
{
    int32_t v = -999;
    kr_i32(r, &v);
    return v;
}

static int64_t rd_i64(kreader_t *r)
{
    int64_t v = -999;
    kr_i64(r, &v);
    return v;
}

static kslice_t rd_str(kreader_t *r, bool flexible)
{
    kslice_t s = {0};
    kr_nullable_string_v(r, flexible, &s);
    return s;
}

static kslice_t rd_bytes(kreader_t *r, bool flexible)
{
    kslice_t s = {0};
    kr_bytes_v(r, flexible, &s);
    return s;
}

static int32_t rd_array(kreader_t *r, bool flexible)
{
    int32_t n = -999;
    kr_array_v(r, flexible, 1, &n);
    return n;
}

static void assert_throttle(kreader_t *r, bool present)
{
    if (present)
        CU_ASSERT_EQUAL(rd_i32(r), 0);
}

/* A topic entry of an answer: its name and the count of its partitions. */
static void assert_topic(kreader_t *r, bool flexible, const char *name, int32_t nparts)
{
    CU_ASSERT_TRUE(kslice_eq(rd_str(r, flexible), name));
    CU_ASSERT_EQUAL(rd_array(r, flexible), nparts);
}

/* One partition of an answer's topics array: index and error. */
static void assert_part_error(kreader_t *r, bool flexible, int32_t partition, int16_t error)
{
    CU_ASSERT_EQUAL(rd_i32(r), partition);
    CU_ASSERT_EQUAL(rd_i16(r), error);
    kr_tags_v(r, flexible);
}

/* The answer's last tags end it; frees the call and its request body. */
static void call_end(call_t *c, kwriter_t *body, bool flexible)
{
    kr_tags_v(&c->out, flexible);
    CU_ASSERT_TRUE(kr_ok(&c->out));
    CU_ASSERT_EQUAL(kr_remaining(&c->out), 0);
    kafka_response_free(&c->resp);
    kw_free(body);
}

/* ---- JoinGroup ---- */

static void join_body(kwriter_t *w, int16_t version, const char *member_id, const char *metadata,
                      int32_t metadata_len)
{
    bool flexible = version >= 6;
    kw_init(w, 128);
    kw_string_v(w, flexible, "group-a", -1);
    kw_i32(w, 10000);
    if (version >= 1)
        kw_i32(w, 30000);
    kw_string_v(w, flexible, member_id, -1);
    if (version >= 5)
        kw_string_v(w, flexible, version >= 7 ? "inst-1" : NULL, -1);
    kw_string_v(w, flexible, "consumer", -1);
    kw_array_v(w, flexible, 2);
    kw_string_v(w, flexible, "range", -1);
    kw_bytes_v(w, flexible, metadata, metadata_len);
    kw_tags_v(w, flexible);
    kw_string_v(w, flexible, "roundrobin", -1);
    kw_bytes_v(w, flexible, "rr", 2);
    kw_tags_v(w, flexible);
    if (version >= 8)
        kw_string_v(w, flexible, "because", -1);
    kw_tags_v(w, flexible);
}

static void test_join_v0(void)
{
    kwriter_t body;
    call_t c;
    reset_fake(false, KAFKA_NONE);
    join_body(&body, 0, "", "abc", 3);
    run(&c, api_handle_join_group, KAFKA_API_JOIN_GROUP, 0, false, &body);
    CU_ASSERT_EQUAL_FATAL(c.result, API_RESPOND);
    CU_ASSERT_EQUAL(fake.calls, 1);
    CU_ASSERT_TRUE(kslice_eq(fake.join.group_id, "group-a"));
    CU_ASSERT_EQUAL(fake.join.session_timeout_ms, 10000);
    CU_ASSERT_EQUAL(fake.join.rebalance_timeout_ms, 10000); /* v0: the session's */
    CU_ASSERT_TRUE(kslice_eq(fake.join.member_id, ""));
    CU_ASSERT_PTR_NULL(fake.join.group_instance_id.ptr);
    CU_ASSERT_TRUE(kslice_eq(fake.join.protocol_type, "consumer"));
    CU_ASSERT_EQUAL(fake.join.nprotocols, 2);
    CU_ASSERT_TRUE(kslice_eq(fake.protocols[1].name, "roundrobin"));
    CU_ASSERT_EQUAL(fake.protocols[0].metadata.len, 3);
    CU_ASSERT_TRUE(kslice_eq(fake.join.client_id, "cid"));
    CU_ASSERT_STRING_EQUAL(fake.client_host, "/10.1.2.3");
    kreader_t *r = &c.out;
    CU_ASSERT_EQUAL(rd_i16(r), KAFKA_NONE);
    CU_ASSERT_EQUAL(rd_i32(r), 7);
    CU_ASSERT_TRUE(kslice_eq(rd_str(r, false), "range"));
    CU_ASSERT_TRUE(kslice_eq(rd_str(r, false), "m-1"));
    CU_ASSERT_TRUE(kslice_eq(rd_str(r, false), "m-1"));
    CU_ASSERT_EQUAL(rd_array(r, false), 2);
    CU_ASSERT_TRUE(kslice_eq(rd_str(r, false), "m-1"));
    CU_ASSERT_TRUE(kslice_eq(rd_bytes(r, false), "meta1"));
    CU_ASSERT_TRUE(kslice_eq(rd_str(r, false), "m-2"));
    kslice_t empty = rd_bytes(r, false);
    CU_ASSERT_TRUE(empty.ptr != NULL && empty.len == 0); /* present, not null */
    call_end(&c, &body, false);
}

static void test_join_flexible_deferred(void)
{
    for (int16_t version = 6; version <= 9; version++) {
        kwriter_t body;
        call_t c;
        reset_fake(true, KAFKA_NONE);
        join_body(&body, version, "m-1", "abc", 3);
        run(&c, api_handle_join_group, KAFKA_API_JOIN_GROUP, version, true, &body);
        CU_ASSERT_EQUAL(fake.join.rebalance_timeout_ms, 30000);
        CU_ASSERT_EQUAL(fake.join.version, version);
        if (version >= 7) {
            CU_ASSERT_TRUE(kslice_eq(fake.join.group_instance_id, "inst-1"));
        } else {
            CU_ASSERT_PTR_NULL(fake.join.group_instance_id.ptr);
        }
        answer_later(&c);
        kreader_t *r = &c.out;
        CU_ASSERT_EQUAL(rd_i32(r), 0); /* throttle */
        CU_ASSERT_EQUAL(rd_i16(r), KAFKA_NONE);
        CU_ASSERT_EQUAL(rd_i32(r), 7);
        if (version >= 7)
            CU_ASSERT_PTR_NULL(rd_str(r, true).ptr); /* protocol_type: null */
        CU_ASSERT_TRUE(kslice_eq(rd_str(r, true), "range"));
        CU_ASSERT_TRUE(kslice_eq(rd_str(r, true), "m-1"));
        if (version >= 9) {
            bool skip = true;
            kr_bool(r, &skip);
            CU_ASSERT_FALSE(skip);
        }
        CU_ASSERT_TRUE(kslice_eq(rd_str(r, true), "m-1"));
        CU_ASSERT_EQUAL(rd_array(r, true), 2);
        CU_ASSERT_TRUE(kslice_eq(rd_str(r, true), "m-1"));
        CU_ASSERT_PTR_NULL(rd_str(r, true).ptr);
        CU_ASSERT_TRUE(kslice_eq(rd_bytes(r, true), "meta1"));
        kr_tags_v(r, true);
        CU_ASSERT_TRUE(kslice_eq(rd_str(r, true), "m-2"));
        CU_ASSERT_TRUE(kslice_eq(rd_str(r, true), "i-2"));
        CU_ASSERT_EQUAL(rd_bytes(r, true).len, 0);
        kr_tags_v(r, true);
        call_end(&c, &body, true);
    }
}

static void test_join_refusals(void)
{
    /* Metadata over GROUP_MAX_METADATA_BYTES is well-formed: it reaches the
     * coordinator, whose bound it is (it answers INVALID_REQUEST). Null
     * metadata is malformed (the field is not nullable). */
    int32_t big = GROUP_MAX_METADATA_BYTES + 1;
    char *meta = calloc(1, (size_t)big);
    kwriter_t body;
    kafka_response_t resp;
    join_body(&body, 6, "", meta, big);
    for (int i = 0; i < 2; i++) {
        kafka_request_t req = {
            .api_key = KAFKA_API_JOIN_GROUP, .api_version = 6, .flexible = true, .peer = "[::1]:9"};
        reset_fake(false, KAFKA_NONE);
        kr_init(&req.body, body.buf, body.len);
        kafka_response_init(&resp);
        api_result_t rc = api_handle_join_group(&ctx, &req, &resp);
        if (i == 0) {
            CU_ASSERT_EQUAL(rc, API_RESPOND);
            CU_ASSERT_EQUAL(fake.calls, 1);
        } else {
            CU_ASSERT_EQUAL(rc, API_MALFORMED);
            CU_ASSERT_PTR_NOT_NULL(req.malformed_reason);
            CU_ASSERT_EQUAL(fake.calls, 0);
        }
        kafka_response_free(&resp);
        kw_free(&body);
        join_body(&body, 6, "", NULL, -1);
    }
    kw_free(&body);
    free(meta);
}

/* ---- SyncGroup, Heartbeat, LeaveGroup ---- */

static void test_sync(void)
{
    for (int16_t version = 0; version <= 5; version++) {
        bool flexible = version >= 4;
        kwriter_t body;
        call_t c;
        kw_init(&body, 64);
        kw_string_v(&body, flexible, "g", -1);
        kw_i32(&body, 7);
        kw_string_v(&body, flexible, "m-1", -1);
        if (version >= 3)
            kw_string_v(&body, flexible, NULL, -1);
        if (version >= 5) {
            kw_string_v(&body, flexible, "consumer", -1);
            kw_string_v(&body, flexible, NULL, -1);
        }
        kw_array_v(&body, flexible, 1);
        kw_string_v(&body, flexible, "m-1", -1);
        kw_bytes_v(&body, flexible, "xyz", 3);
        kw_tags_v(&body, flexible);
        kw_tags_v(&body, flexible);
        reset_fake(version % 2 == 0, version == 2 ? KAFKA_REBALANCE_IN_PROGRESS : KAFKA_NONE);
        run(&c, api_handle_sync_group, KAFKA_API_SYNC_GROUP, version, flexible, &body);
        CU_ASSERT_EQUAL(fake.sync.generation_id, 7);
        CU_ASSERT_EQUAL(fake.sync.nassignments, 1);
        CU_ASSERT_TRUE(kslice_eq(fake.assignments[0].assignment, "xyz"));
        CU_ASSERT_EQUAL(fake.sync.protocol_type.ptr != NULL, version >= 5);
        CU_ASSERT_PTR_NULL(fake.sync.protocol_name.ptr);
        answered(&c);
        kreader_t *r = &c.out;
        assert_throttle(r, version >= 1);
        CU_ASSERT_EQUAL(rd_i16(r), fake.error);
        if (version >= 5) {
            CU_ASSERT_TRUE(kslice_eq(rd_str(r, flexible), "consumer"));
            CU_ASSERT_PTR_NULL(rd_str(r, flexible).ptr);
        }
        kslice_t a = rd_bytes(r, flexible);
        CU_ASSERT_PTR_NOT_NULL(a.ptr);
        CU_ASSERT_EQUAL(a.len, fake.error == KAFKA_NONE ? 6 : 0);
        call_end(&c, &body, flexible);
    }
}

static void test_heartbeat(void)
{
    for (int16_t version = 0; version <= 4; version++) {
        bool flexible = version >= 4;
        kwriter_t body;
        call_t c;
        kw_init(&body, 64);
        kw_string_v(&body, flexible, "g", -1);
        kw_i32(&body, 3);
        kw_string_v(&body, flexible, "m-1", -1);
        if (version >= 3)
            kw_string_v(&body, flexible, "inst", -1);
        kw_tags_v(&body, flexible);
        reset_fake(false, KAFKA_ILLEGAL_GENERATION);
        run(&c, api_handle_heartbeat, KAFKA_API_HEARTBEAT, version, flexible, &body);
        CU_ASSERT_EQUAL_FATAL(c.result, API_RESPOND);
        CU_ASSERT_EQUAL(fake.generation_id, 3);
        CU_ASSERT_TRUE(kslice_eq(fake.member_id, "m-1"));
        CU_ASSERT_EQUAL(fake.instance_id.ptr != NULL, version >= 3);
        assert_throttle(&c.out, version >= 1);
        CU_ASSERT_EQUAL(rd_i16(&c.out), KAFKA_ILLEGAL_GENERATION);
        call_end(&c, &body, flexible);
    }
}

static void test_leave(void)
{
    for (int16_t version = 0; version <= 5; version++) {
        for (int request_error = 0; request_error <= 1; request_error++) {
            bool flexible = version >= 4;
            kwriter_t body;
            call_t c;
            kw_init(&body, 64);
            kw_string_v(&body, flexible, "g", -1);
            if (version <= 2) {
                kw_string_v(&body, flexible, "m-1", -1);
            } else {
                kw_array_v(&body, flexible, 2);
                for (int i = 0; i < 2; i++) {
                    kw_string_v(&body, flexible, i == 0 ? "m-1" : "", -1);
                    kw_string_v(&body, flexible, i == 0 ? NULL : "inst-2", -1);
                    if (version >= 5)
                        kw_string_v(&body, flexible, "bye", -1);
                    kw_tags_v(&body, flexible);
                }
            }
            kw_tags_v(&body, flexible);
            reset_fake(false, request_error ? KAFKA_NOT_COORDINATOR : KAFKA_NONE);
            run(&c, api_handle_leave_group, KAFKA_API_LEAVE_GROUP, version, flexible, &body);
            CU_ASSERT_EQUAL_FATAL(c.result, API_RESPOND);
            CU_ASSERT_EQUAL(fake.nmembers, version <= 2 ? 1 : 2);
            CU_ASSERT_TRUE(kslice_eq(fake.leave_ids[0], "m-1"));
            kreader_t *r = &c.out;
            assert_throttle(r, version >= 1);
            CU_ASSERT_EQUAL(rd_i16(r), fake.error);
            if (version >= 3) {
                int32_t n = rd_array(r, flexible);
                CU_ASSERT_EQUAL(n, request_error ? 0 : 2);
                for (int32_t i = 0; i < n; i++) {
                    CU_ASSERT_TRUE(kslice_eq(rd_str(r, flexible), i == 0 ? "m-1" : ""));
                    kslice_t inst = rd_str(r, flexible);
                    CU_ASSERT_EQUAL(inst.ptr != NULL, i == 1);
                    CU_ASSERT_EQUAL(rd_i16(r), i == 0 ? KAFKA_NONE : KAFKA_UNKNOWN_MEMBER_ID);
                    kr_tags_v(r, flexible);
                }
            }
            call_end(&c, &body, flexible);
        }
    }
}

/* ---- ListGroups, DescribeGroups, DeleteGroups ---- */

static void test_list(void)
{
    for (int16_t version = 0; version <= 4; version++) {
        bool flexible = version >= 3;
        kwriter_t body;
        call_t c;
        kw_init(&body, 16);
        if (version >= 4) {
            kw_array_v(&body, true, 2);
            kw_string_v(&body, true, "Stable", -1);
            kw_string_v(&body, true, "empty", -1);
        }
        kw_tags_v(&body, flexible);
        reset_fake(false, KAFKA_NONE);
        run(&c, api_handle_list_groups, KAFKA_API_LIST_GROUPS, version, flexible, &body);
        CU_ASSERT_EQUAL_FATAL(c.result, API_RESPOND);
        CU_ASSERT_EQUAL(fake.nstates, version >= 4 ? 2 : 0);
        if (version >= 4)
            CU_ASSERT_TRUE(kslice_eq(fake.states[1], "empty"));
        kreader_t *r = &c.out;
        assert_throttle(r, version >= 1);
        CU_ASSERT_EQUAL(rd_i16(r), KAFKA_NONE);
        CU_ASSERT_EQUAL(rd_array(r, flexible), 2);
        for (int i = 0; i < 2; i++) {
            CU_ASSERT_TRUE(kslice_eq(rd_str(r, flexible), i == 0 ? "g1" : "g2"));
            CU_ASSERT_TRUE(kslice_eq(rd_str(r, flexible), i == 0 ? "consumer" : ""));
            if (version >= 4)
                CU_ASSERT_TRUE(kslice_eq(rd_str(r, flexible), i == 0 ? "Stable" : "Empty"));
            kr_tags_v(r, flexible);
        }
        call_end(&c, &body, flexible);
    }
}

static void test_describe(void)
{
    for (int16_t version = 0; version <= 5; version++) {
        bool flexible = version >= 5;
        kwriter_t body;
        call_t c;
        kw_init(&body, 32);
        kw_array_v(&body, flexible, 2);
        kw_string_v(&body, flexible, "g", -1);
        kw_string_v(&body, flexible, "missing", -1);
        if (version >= 3)
            kw_bool(&body, version == 5);
        kw_tags_v(&body, flexible);
        reset_fake(false, KAFKA_NONE);
        run(&c, api_handle_describe_groups, KAFKA_API_DESCRIBE_GROUPS, version, flexible, &body);
        CU_ASSERT_EQUAL_FATAL(c.result, API_RESPOND);
        kreader_t *r = &c.out;
        assert_throttle(r, version >= 1);
        CU_ASSERT_EQUAL(rd_array(r, flexible), 2);
        for (int g = 0; g < 2; g++) {
            CU_ASSERT_EQUAL(rd_i16(r), KAFKA_NONE);
            CU_ASSERT_TRUE(kslice_eq(rd_str(r, flexible), g == 0 ? "g" : "missing"));
            CU_ASSERT_TRUE(kslice_eq(rd_str(r, flexible), g == 0 ? "Stable" : "Dead"));
            CU_ASSERT_TRUE(kslice_eq(rd_str(r, flexible), g == 0 ? "consumer" : ""));
            CU_ASSERT_TRUE(kslice_eq(rd_str(r, flexible), g == 0 ? "range" : ""));
            int32_t n = rd_array(r, flexible);
            CU_ASSERT_EQUAL(n, g == 0 ? 1 : 0);
            for (int32_t i = 0; i < n; i++) {
                CU_ASSERT_TRUE(kslice_eq(rd_str(r, flexible), "m-1"));
                if (version >= 4)
                    CU_ASSERT_PTR_NULL(rd_str(r, flexible).ptr);
                CU_ASSERT_TRUE(kslice_eq(rd_str(r, flexible), "cid"));
                CU_ASSERT_TRUE(kslice_eq(rd_str(r, flexible), "/127.0.0.1"));
                CU_ASSERT_TRUE(kslice_eq(rd_bytes(r, flexible), "md"));
                CU_ASSERT_TRUE(kslice_eq(rd_bytes(r, flexible), "as"));
                kr_tags_v(r, flexible);
            }
            if (version >= 3)
                CU_ASSERT_EQUAL(rd_i32(r), version == 5 ? 328 : API_AUTHORIZED_OPS_OMITTED);
            kr_tags_v(r, flexible);
        }
        call_end(&c, &body, flexible);
    }
}

static void test_delete_groups(void)
{
    for (int16_t version = 0; version <= 2; version++) {
        for (int n = 0; n <= 2; n += 2) {
            bool flexible = version >= 2;
            kwriter_t body;
            call_t c;
            kw_init(&body, 32);
            kw_array_v(&body, flexible, n);
            for (int i = 0; i < n; i++)
                kw_string_v(&body, flexible, i == 0 ? "g" : "h", -1);
            kw_tags_v(&body, flexible);
            reset_fake(version == 1, KAFKA_NONE);
            run(&c, api_handle_delete_groups, KAFKA_API_DELETE_GROUPS, version, flexible, &body);
            CU_ASSERT_EQUAL(fake.calls, n > 0 ? 1 : 0);
            answered(&c);
            kreader_t *r = &c.out;
            CU_ASSERT_EQUAL(rd_i32(r), 0);
            CU_ASSERT_EQUAL(rd_array(r, flexible), n);
            for (int i = 0; i < n; i++) {
                CU_ASSERT_TRUE(kslice_eq(rd_str(r, flexible), i == 0 ? "g" : "h"));
                CU_ASSERT_EQUAL(rd_i16(r), i == 0 ? KAFKA_NONE : KAFKA_GROUP_ID_NOT_FOUND);
                kr_tags_v(r, flexible);
            }
            call_end(&c, &body, flexible);
        }
    }
}

/* ---- OffsetCommit, OffsetFetch, OffsetDelete ---- */

static void test_commit(void)
{
    for (int16_t version = 0; version <= 8; version++) {
        bool flexible = version >= 8;
        kwriter_t body;
        call_t c;
        kw_init(&body, 128);
        kw_string_v(&body, flexible, "g", -1);
        if (version >= 1) {
            kw_i32(&body, 4);
            kw_string_v(&body, flexible, "m-1", -1);
        }
        if (version >= 7)
            kw_string_v(&body, flexible, "inst", -1);
        if (version >= 2 && version <= 4)
            kw_i64(&body, 60000);
        /* t1: partitions 0 and 99 (which the coordinator refuses); t2:
         * partition 1; nope: partition 1 (refused by the handler) */
        kw_array_v(&body, flexible, 3);
        for (int t = 0; t < 3; t++) {
            kw_string_v(&body, flexible, t == 0 ? "t1" : t == 1 ? "t2" : "nope", -1);
            kw_array_v(&body, flexible, t == 0 ? 2 : 1);
            for (int p = 0; p < (t == 0 ? 2 : 1); p++) {
                kw_i32(&body, t == 0 ? (p == 0 ? 0 : 99) : 1);
                kw_i64(&body, 100 + p);
                if (version >= 6)
                    kw_i32(&body, 5);
                if (version == 1)
                    kw_i64(&body, 123456);
                kw_string_v(&body, flexible, p == 0 ? "md" : NULL, -1);
                kw_tags_v(&body, flexible);
            }
            kw_tags_v(&body, flexible);
        }
        kw_tags_v(&body, flexible);
        reset_fake(version % 2 == 1, KAFKA_NONE);
        run(&c, api_handle_offset_commit, KAFKA_API_OFFSET_COMMIT, version, flexible, &body);
        CU_ASSERT_EQUAL_FATAL(fake.commit.nparts, 3);
        CU_ASSERT_EQUAL(fake.commit.generation_id, version >= 1 ? 4 : -1);
        CU_ASSERT_TRUE(kslice_eq(fake.commit.member_id, version >= 1 ? "m-1" : ""));
        CU_ASSERT_EQUAL(fake.commit.group_instance_id.ptr != NULL, version >= 7);
        CU_ASSERT_EQUAL(fake.commit.retention_time_ms, version >= 2 && version <= 4 ? 60000 : -1);
        CU_ASSERT_TRUE(kslice_eq(fake.commit_parts[2].topic, "t2"));
        CU_ASSERT_EQUAL(fake.commit_parts[1].partition, 99);
        CU_ASSERT_EQUAL(fake.commit_parts[1].offset, 101);
        CU_ASSERT_EQUAL(fake.commit_parts[0].leader_epoch, version >= 6 ? 5 : -1);
        CU_ASSERT_EQUAL(fake.commit_parts[0].commit_timestamp, version == 1 ? 123456 : -1);
        CU_ASSERT_TRUE(kslice_eq(fake.commit_parts[0].metadata, "md"));
        CU_ASSERT_PTR_NULL(fake.commit_parts[1].metadata.ptr);
        answered(&c);
        kreader_t *r = &c.out;
        assert_throttle(r, version >= 3);
        CU_ASSERT_EQUAL(rd_array(r, flexible), 3);
        assert_topic(r, flexible, "t1", 2);
        assert_part_error(r, flexible, 0, KAFKA_NONE);
        assert_part_error(r, flexible, 99, KAFKA_UNKNOWN_TOPIC_OR_PARTITION);
        kr_tags_v(r, flexible);
        assert_topic(r, flexible, "t2", 1);
        assert_part_error(r, flexible, 1, KAFKA_NONE);
        kr_tags_v(r, flexible);
        assert_topic(r, flexible, "nope", 1);
        assert_part_error(r, flexible, 1, KAFKA_UNKNOWN_TOPIC_OR_PARTITION);
        kr_tags_v(r, flexible);
        call_end(&c, &body, flexible);
    }
}

/* Only partitions the cluster does not have, or none: answered without
 * the coordinator (Kafka validates nothing about the group then either). */
static void test_commit_nothing_known(void)
{
    for (int nparts = 0; nparts <= 1; nparts++) {
        kwriter_t body;
        call_t c;
        kw_init(&body, 64);
        kw_string_v(&body, false, "g", -1);
        kw_array_v(&body, false, nparts);
        if (nparts == 1) {
            kw_string_v(&body, false, "t2", -1);
            kw_array_v(&body, false, 1);
            kw_i32(&body, 2);
            kw_i64(&body, 5);
            kw_string_v(&body, false, NULL, -1);
        }
        reset_fake(true, KAFKA_NONE);
        run(&c, api_handle_offset_commit, KAFKA_API_OFFSET_COMMIT, 0, false, &body);
        CU_ASSERT_EQUAL(c.result, API_RESPOND);
        CU_ASSERT_EQUAL(fake.calls, 0);
        kreader_t *r = &c.out;
        CU_ASSERT_EQUAL(rd_array(r, false), nparts);
        if (nparts == 1) {
            assert_topic(r, false, "t2", 1);
            assert_part_error(r, false, 2, KAFKA_UNKNOWN_TOPIC_OR_PARTITION);
        }
        call_end(&c, &body, false);
    }
}

/* TxnOffsetCommit v0-3: v2 adds leader epochs, v3 the consumer's
 * generation, member and instance ids and flexible encoding; an answer of
 * COORDINATOR_LOAD_IN_PROGRESS reaches v2+ clients as it is and v0-1 ones
 * as COORDINATOR_NOT_AVAILABLE (Kafka's KAFKA-7296 rule). */
static void test_txn_commit(void)
{
    for (int16_t version = 0; version <= 3; version++) {
        for (int loading = 0; loading <= 1; loading++) {
            bool flexible = version >= 3;
            kwriter_t body;
            call_t c;
            kw_init(&body, 128);
            kw_string_v(&body, flexible, "txn-1", -1);
            kw_string_v(&body, flexible, "g", -1);
            kw_i64(&body, 4242);
            kw_i16(&body, 7);
            if (version >= 3) {
                kw_i32(&body, 4);
                kw_string_v(&body, flexible, "m-1", -1);
                kw_string_v(&body, flexible, "inst", -1);
            }
            /* t1: partitions 0 and 99 (which the coordinator refuses);
             * nope: partition 1 (refused by the handler) */
            kw_array_v(&body, flexible, 2);
            for (int t = 0; t < 2; t++) {
                kw_string_v(&body, flexible, t == 0 ? "t1" : "nope", -1);
                kw_array_v(&body, flexible, t == 0 ? 2 : 1);
                for (int p = 0; p < (t == 0 ? 2 : 1); p++) {
                    kw_i32(&body, t == 0 ? (p == 0 ? 0 : 99) : 1);
                    kw_i64(&body, 100 + p);
                    if (version >= 2)
                        kw_i32(&body, 5);
                    kw_string_v(&body, flexible, p == 0 ? "md" : NULL, -1);
                    kw_tags_v(&body, flexible);
                }
                kw_tags_v(&body, flexible);
            }
            kw_tags_v(&body, flexible);
            int16_t error = loading ? KAFKA_COORDINATOR_LOAD_IN_PROGRESS : KAFKA_NONE;
            reset_fake((version + loading) % 2 == 1, error);
            run(&c, api_handle_txn_offset_commit, KAFKA_API_TXN_OFFSET_COMMIT, version, flexible,
                &body);
            CU_ASSERT_EQUAL(fake.calls, 1);
            CU_ASSERT_EQUAL_FATAL(fake.txn_commit.nparts, 2);
            CU_ASSERT_EQUAL(fake.txn_commit.version, version);
            CU_ASSERT_TRUE(kslice_eq(fake.txn_commit.group_id, "g"));
            CU_ASSERT_EQUAL(fake.txn_commit.producer_id, 4242);
            CU_ASSERT_EQUAL(fake.txn_commit.producer_epoch, 7);
            CU_ASSERT_EQUAL(fake.txn_commit.generation_id, version >= 3 ? 4 : -1);
            CU_ASSERT_TRUE(kslice_eq(fake.txn_commit.member_id, version >= 3 ? "m-1" : ""));
            CU_ASSERT_EQUAL(fake.txn_commit.group_instance_id.ptr != NULL, version >= 3);
            CU_ASSERT_TRUE(kslice_eq(fake.commit_parts[0].topic, "t1"));
            CU_ASSERT_EQUAL(fake.commit_parts[0].offset, 100);
            CU_ASSERT_EQUAL(fake.commit_parts[1].partition, 99);
            CU_ASSERT_EQUAL(fake.commit_parts[1].offset, 101);
            CU_ASSERT_EQUAL(fake.commit_parts[0].leader_epoch, version >= 2 ? 5 : -1);
            CU_ASSERT_TRUE(kslice_eq(fake.commit_parts[0].metadata, "md"));
            CU_ASSERT_PTR_NULL(fake.commit_parts[1].metadata.ptr);
            answered(&c);
            int16_t shown = !loading      ? KAFKA_NONE
                            : version < 2 ? KAFKA_COORDINATOR_NOT_AVAILABLE
                                          : KAFKA_COORDINATOR_LOAD_IN_PROGRESS;
            kreader_t *r = &c.out;
            assert_throttle(r, true);
            CU_ASSERT_EQUAL(rd_array(r, flexible), 2);
            assert_topic(r, flexible, "t1", 2);
            assert_part_error(r, flexible, 0, shown);
            assert_part_error(r, flexible, 99, KAFKA_UNKNOWN_TOPIC_OR_PARTITION);
            kr_tags_v(r, flexible);
            assert_topic(r, flexible, "nope", 1);
            assert_part_error(r, flexible, 1, KAFKA_UNKNOWN_TOPIC_OR_PARTITION);
            kr_tags_v(r, flexible);
            call_end(&c, &body, flexible);
        }
    }
}

/* Only partitions the cluster does not have: answered without the
 * coordinator, as Kafka's KafkaApis does. */
static void test_txn_commit_nothing_known(void)
{
    kwriter_t body;
    call_t c;
    kw_init(&body, 64);
    kw_string_v(&body, false, "txn-1", -1);
    kw_string_v(&body, false, "g", -1);
    kw_i64(&body, 1);
    kw_i16(&body, 0);
    kw_array_v(&body, false, 1);
    kw_string_v(&body, false, "t2", -1);
    kw_array_v(&body, false, 1);
    kw_i32(&body, 2);
    kw_i64(&body, 5);
    kw_string_v(&body, false, NULL, -1);
    reset_fake(true, KAFKA_NONE);
    run(&c, api_handle_txn_offset_commit, KAFKA_API_TXN_OFFSET_COMMIT, 0, false, &body);
    CU_ASSERT_EQUAL(c.result, API_RESPOND);
    CU_ASSERT_EQUAL(fake.calls, 0);
    kreader_t *r = &c.out;
    assert_throttle(r, true);
    CU_ASSERT_EQUAL(rd_array(r, false), 1);
    assert_topic(r, false, "t2", 1);
    assert_part_error(r, false, 2, KAFKA_UNKNOWN_TOPIC_OR_PARTITION);
    call_end(&c, &body, false);
}

/* One group's topics in an OffsetFetch request: t1/[0,1] or null. */
static void fetch_topics(kwriter_t *w, bool flexible, bool null)
{
    if (null) {
        kw_array_v(w, flexible, -1);
        return;
    }
    kw_array_v(w, flexible, 1);
    kw_string_v(w, flexible, "t1", -1);
    kw_array_v(w, flexible, 2);
    kw_i32(w, 0);
    kw_i32(w, 1);
    kw_tags_v(w, flexible);
}

/* One group's answer, the fake's three offsets (t1/0, t1/1, t2/0). */
static void check_fetched(kreader_t *r, int16_t version, bool flexible)
{
    CU_ASSERT_EQUAL(rd_array(r, flexible), 2);
    for (int t = 0; t < 2; t++) {
        CU_ASSERT_TRUE(kslice_eq(rd_str(r, flexible), t == 0 ? "t1" : "t2"));
        int32_t n = rd_array(r, flexible);
        CU_ASSERT_EQUAL(n, t == 0 ? 2 : 1);
        for (int32_t i = 0; i < n; i++) {
            CU_ASSERT_EQUAL(rd_i32(r), i);
            CU_ASSERT_EQUAL(rd_i64(r), t == 1 ? -1 : 10 + i);
            if (version >= 5)
                CU_ASSERT_EQUAL(rd_i32(r), t == 0 && i == 0 ? 3 : -1);
            CU_ASSERT_TRUE(kslice_eq(rd_str(r, flexible), t == 0 && i == 1 ? "meta" : ""));
            CU_ASSERT_EQUAL(rd_i16(r), KAFKA_NONE);
            kr_tags_v(r, flexible);
        }
        kr_tags_v(r, flexible);
    }
}

static void test_fetch_v0_to_v7(void)
{
    for (int16_t version = 0; version <= 7; version++) {
        for (int loading = 0; loading <= 1; loading++) {
            bool flexible = version >= 6;
            bool null_topics = version >= 2 && !loading;
            kwriter_t body;
            call_t c;
            kw_init(&body, 64);
            kw_string_v(&body, flexible, loading ? "loading" : "g", -1);
            fetch_topics(&body, flexible, null_topics);
            if (version >= 7)
                kw_bool(&body, true);
            kw_tags_v(&body, flexible);
            reset_fake(false, KAFKA_NONE);
            run(&c, api_handle_offset_fetch, KAFKA_API_OFFSET_FETCH, version, flexible, &body);
            CU_ASSERT_EQUAL_FATAL(c.result, API_RESPOND);
            CU_ASSERT_EQUAL(fake.wanted_all, null_topics);
            CU_ASSERT_EQUAL(fake.require_stable, version >= 7);
            if (!null_topics) {
                CU_ASSERT_EQUAL(fake.nwanted, 2);
                CU_ASSERT_EQUAL(fake.wanted[1].partition, 1);
            }
            kreader_t *r = &c.out;
            assert_throttle(r, version >= 3);
            if (!loading) {
                check_fetched(r, version, flexible);
            } else if (version <= 1) {
                /* The group's error on every partition asked for. */
                CU_ASSERT_EQUAL(rd_array(r, false), 1);
                assert_topic(r, false, "t1", 2);
                for (int i = 0; i < 2; i++) {
                    CU_ASSERT_EQUAL(rd_i32(r), i);
                    CU_ASSERT_EQUAL(rd_i64(r), -1);
                    CU_ASSERT_TRUE(kslice_eq(rd_str(r, false), ""));
                    CU_ASSERT_EQUAL(rd_i16(r), KAFKA_COORDINATOR_LOAD_IN_PROGRESS);
                }
            } else {
                CU_ASSERT_EQUAL(rd_array(r, flexible), 0);
            }
            if (version >= 2)
                CU_ASSERT_EQUAL(rd_i16(r),
                                loading ? KAFKA_COORDINATOR_LOAD_IN_PROGRESS : KAFKA_NONE);
            call_end(&c, &body, flexible);
        }
    }
}

static void test_fetch_v8_groups(void)
{
    kwriter_t body;
    call_t c;
    kw_init(&body, 64);
    kw_array_v(&body, true, 3);
    const char *ids[] = {"g", "loading", "h"};
    for (int g = 0; g < 3; g++) {
        kw_string_v(&body, true, ids[g], -1);
        fetch_topics(&body, true, g == 2);
        kw_tags_v(&body, true);
    }
    kw_bool(&body, false);
    kw_tags_v(&body, true);
    reset_fake(false, KAFKA_NONE);
    run(&c, api_handle_offset_fetch, KAFKA_API_OFFSET_FETCH, 8, true, &body);
    CU_ASSERT_EQUAL_FATAL(c.result, API_RESPOND);
    CU_ASSERT_EQUAL(fake.calls, 3);
    CU_ASSERT_TRUE(fake.wanted_all); /* the last group's topics were null */
    kreader_t *r = &c.out;
    CU_ASSERT_EQUAL(rd_i32(r), 0);
    CU_ASSERT_EQUAL(rd_array(r, true), 3);
    for (int g = 0; g < 3; g++) {
        CU_ASSERT_TRUE(kslice_eq(rd_str(r, true), ids[g]));
        if (g == 1) {
            CU_ASSERT_EQUAL(rd_array(r, true), 0);
        } else {
            check_fetched(r, 8, true);
        }
        CU_ASSERT_EQUAL(rd_i16(r), g == 1 ? KAFKA_COORDINATOR_LOAD_IN_PROGRESS : KAFKA_NONE);
        kr_tags_v(r, true);
    }
    call_end(&c, &body, true);
}

static void test_offset_delete(void)
{
    for (int group_error = 0; group_error <= 1; group_error++) {
        kwriter_t body;
        call_t c;
        kw_init(&body, 64);
        kw_string_v(&body, false, "g", -1);
        kw_array_v(&body, false, 2);
        kw_string_v(&body, false, "t1", -1);
        kw_array_v(&body, false, 2);
        kw_i32(&body, 0);
        kw_i32(&body, 99);
        kw_string_v(&body, false, "t2", -1);
        kw_array_v(&body, false, 1);
        kw_i32(&body, 5); /* t2 has 2 partitions */
        reset_fake(group_error == 0, group_error ? KAFKA_GROUP_ID_NOT_FOUND : KAFKA_NONE);
        run(&c, api_handle_offset_delete, KAFKA_API_OFFSET_DELETE, 0, false, &body);
        CU_ASSERT_EQUAL(fake.nparts, 2);
        answered(&c);
        kreader_t *r = &c.out;
        CU_ASSERT_EQUAL(rd_i16(r), fake.error);
        CU_ASSERT_EQUAL(rd_i32(r), 0);
        int32_t ntopics = rd_array(r, false);
        CU_ASSERT_EQUAL(ntopics, group_error ? 0 : 2);
        if (ntopics == 2) {
            assert_topic(r, false, "t1", 2);
            assert_part_error(r, false, 0, KAFKA_NONE);
            assert_part_error(r, false, 99, KAFKA_UNKNOWN_TOPIC_OR_PARTITION);
            assert_topic(r, false, "t2", 1);
            assert_part_error(r, false, 5, KAFKA_UNKNOWN_TOPIC_OR_PARTITION);
        }
        call_end(&c, &body, false);
    }
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return EXIT_FAILURE;
    ctx.groups = (struct group_coordinator *)&fake; /* never dereferenced by the handlers */
    CU_pSuite s = CU_add_suite("api_groups", NULL, NULL);
    CU_add_test(s, "JoinGroup v0", test_join_v0);
    CU_add_test(s, "JoinGroup v6-v9 answered later", test_join_flexible_deferred);
    CU_add_test(s, "JoinGroup refusals", test_join_refusals);
    CU_add_test(s, "SyncGroup v0-v5", test_sync);
    CU_add_test(s, "Heartbeat v0-v4", test_heartbeat);
    CU_add_test(s, "LeaveGroup v0-v5", test_leave);
    CU_add_test(s, "ListGroups v0-v4", test_list);
    CU_add_test(s, "DescribeGroups v0-v5", test_describe);
    CU_add_test(s, "DeleteGroups v0-v2", test_delete_groups);
    CU_add_test(s, "OffsetCommit v0-v8", test_commit);
    CU_add_test(s, "OffsetCommit of unknown partitions only", test_commit_nothing_known);
    CU_add_test(s, "TxnOffsetCommit v0-v3", test_txn_commit);
    CU_add_test(s, "TxnOffsetCommit of unknown partitions only", test_txn_commit_nothing_known);
    CU_add_test(s, "OffsetFetch v0-v7", test_fetch_v0_to_v7);
    CU_add_test(s, "OffsetFetch v8 groups", test_fetch_v8_groups);
    CU_add_test(s, "OffsetDelete v0", test_offset_delete);
    return unit_run_registered();
}
