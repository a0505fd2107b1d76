/* Committed offsets: OffsetCommit v0-8, OffsetFetch v0-8 and OffsetDelete
 * v0, decoded here and answered by the group coordinator
 * (broker/group/group_coordinator.h).
 *
 * Every version reads and writes __consumer_offsets, v0 included (Kafka's
 * v0 used ZooKeeper; nothing about groups lives there in Vltava).
 *
 * A request's partitions are decoded into one flat array, the frame read
 * twice: once to validate and count (kr_array_v bounds every count by the
 * bytes left), once to fill the array sized by that count. Answers group
 * consecutive entries of one topic into one topic entry, which gives back
 * the request's own topic structure.
 *
 * OffsetCommit and OffsetDelete wait for their write to be replicated: the
 * op holding the request and its parts is answered by the coordinator's
 * callback (api_deferred_t). */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "api_handlers.h"
#include "group_coordinator.h"
#include "kafka_errors.h"
#include "xalloc.h"

/* Smallest encodings, for kr_array_v's bound: a topic is a name and a
 * partition array (and tags when flexible); a committed partition has at
 * least an index, an offset and a metadata string. */
#define MIN_TOPIC_BYTES(flexible) ((flexible) ? 3 : 6)
#define MIN_COMMIT_PART_BYTES     14

static bool same_slice(kslice_t a, kslice_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, (size_t)a.len) == 0);
}

/* Topic entries of parts: runs of consecutive parts of one topic. */
static int32_t topic_runs(const group_commit_part_t *parts, int32_t n)
{
    int32_t runs = 0;
    for (int32_t i = 0; i < n; i++)
        runs += i == 0 || !same_slice(parts[i].topic, parts[i - 1].topic);
    assert(runs <= n);
    return runs;
}

/* The topics array of an OffsetCommit or OffsetDelete response: each
 * part's index and error under its topic. */
static void write_part_errors(kwriter_t *w, bool flexible, const group_commit_part_t *parts,
                              int32_t n)
{
    assert(n >= 0);
    assert(n == 0 || parts != NULL);
    kw_array_v(w, flexible, topic_runs(parts, n));
    for (int32_t i = 0; i < n;) {
        int32_t end = i + 1;
        while (end < n && same_slice(parts[end].topic, parts[i].topic))
            end++;
        kw_string_v(w, flexible, (const char *)parts[i].topic.ptr, parts[i].topic.len);
        kw_array_v(w, flexible, end - i);
        for (; i < end; i++) {
            kw_i32(w, parts[i].partition);
            kw_i16(w, parts[i].error);
            kw_tags_v(w, flexible);
        }
        kw_tags_v(w, flexible);
    }
}

/* An OffsetCommit or OffsetDelete waiting on the coordinator. */
typedef struct parts_op {
    api_deferred_t d;
    group_commit_part_t *parts; /* every part of the request, in its order */
    int32_t nparts;
    group_commit_part_t *asked; /* copies of the parts the coordinator answers */
    int32_t *asked_at;          /* asked[i] is parts[asked_at[i]] */
    int32_t nasked;
    int16_t group_error; /* OffsetDelete */
} parts_op_t;

static void parts_op_free(parts_op_t *op)
{
    free(op->parts);
    free(op->asked);
    free(op->asked_at);
    free(op);
}

/* Answers the parts of partitions the cluster does not have and copies the
 * others into op->asked, for the coordinator. */
static void parts_split(api_context_t *ctx, parts_op_t *op)
{
    const cluster_metadata_t *md = coordinator_metadata(ctx->coord);
    assert(op->nparts >= 0);
    assert(op->asked == NULL && op->nasked == 0);
    op->asked = xcalloc((size_t)op->nparts + 1, sizeof(group_commit_part_t));
    op->asked_at = xcalloc((size_t)op->nparts + 1, sizeof(int32_t));
    for (int32_t i = 0; i < op->nparts; i++) {
        group_commit_part_t *part = &op->parts[i];
        const md_topic_t *t =
            cluster_metadata_topic(md, (const char *)part->topic.ptr, (size_t)part->topic.len);
        if (t == NULL || part->partition < 0 || part->partition >= t->npartitions) {
            part->error = KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
            continue;
        }
        op->asked[op->nasked] = *part;
        op->asked_at[op->nasked++] = i;
    }
}

/* Copies the coordinator's errors back into the request's parts. */
static void parts_merge(parts_op_t *op)
{
    assert(op->nasked <= op->nparts);
    for (int32_t i = 0; i < op->nasked; i++) {
        assert(op->asked_at[i] >= 0 && op->asked_at[i] < op->nparts);
        op->parts[op->asked_at[i]].error = op->asked[i].error;
    }
}

/* ---- OffsetCommit ---- */

/* Reads the topics array of an OffsetCommit at `version` into parts
 * (NULL: only counts them) and sets *nparts. False when malformed. */
static bool read_commit_topics(kreader_t *r, int16_t version, bool flexible,
                               group_commit_part_t *parts, int32_t *nparts)
{
    int32_t ntopics, n = 0;
    assert(version >= 0 && version <= 8);
    if (!kr_array_v(r, flexible, MIN_TOPIC_BYTES(flexible), &ntopics) || ntopics < 0)
        return false;
    for (int32_t t = 0; t < ntopics; t++) {
        kslice_t topic;
        int32_t np;
        kr_string_v(r, flexible, &topic);
        if (!kr_array_v(r, flexible, MIN_COMMIT_PART_BYTES, &np) || np < 0)
            return false;
        for (int32_t i = 0; i < np; i++, n++) {
            group_commit_part_t part = {.topic = topic, .leader_epoch = -1, .commit_timestamp = -1};
            kr_i32(r, &part.partition);
            kr_i64(r, &part.offset);
            if (version >= 6)
                kr_i32(r, &part.leader_epoch);
            if (version == 1)
                kr_i64(r, &part.commit_timestamp);
            kr_nullable_string_v(r, flexible, &part.metadata);
            kr_tags_v(r, flexible);
            if (parts != NULL)
                parts[n] = part;
        }
        kr_tags_v(r, flexible);
    }
    *nparts = n;
    return kr_ok(r);
}

static void write_commit_response(kwriter_t *w, int16_t version, bool flexible,
                                  const group_commit_part_t *parts, int32_t n)
{
    assert(w->len == 0);
    if (version >= 3)
        kw_i32(w, 0); /* throttle_time_ms */
    write_part_errors(w, flexible, parts, n);
    kw_tags_v(w, flexible);
}

static void commit_done(void *arg)
{
    parts_op_t *op = arg;
    assert(op->nasked > 0);
    parts_merge(op);
    write_commit_response(&op->d.resp->body, op->d.req->api_version, op->d.req->flexible, op->parts,
                          op->nparts);
    if (api_deferred_answer(&op->d))
        parts_op_free(op);
}

api_result_t api_handle_offset_commit(api_context_t *ctx, kafka_request_t *req,
                                      kafka_response_t *resp)
{
    kreader_t *r = &req->body;
    const int16_t version = req->api_version;
    const bool flexible = req->flexible;
    assert(version >= 0 && version <= 8);
    assert(flexible == (version >= 8) && ctx->groups != NULL);

    /* v0 commits from outside the group protocol: no generation, no member. */
    group_commit_params_t p = {.version = version,
                               .generation_id = -1,
                               .member_id = {.ptr = (const uint8_t *)"", .len = 0},
                               .retention_time_ms = -1};
    kr_string_v(r, flexible, &p.group_id);
    if (version >= 1) {
        kr_i32(r, &p.generation_id);
        kr_string_v(r, flexible, &p.member_id);
    }
    if (version >= 7)
        kr_nullable_string_v(r, flexible, &p.group_instance_id);
    if (version >= 2 && version <= 4)
        kr_i64(r, &p.retention_time_ms);
    kreader_t topics_at = *r;
    int32_t n = 0;
    if (!read_commit_topics(r, version, flexible, NULL, &n) || !kr_tags_v(r, flexible))
        return API_REFUSE(req, "malformed OffsetCommit request");

    parts_op_t *op = xcalloc(1, sizeof(*op));
    op->parts = xcalloc((size_t)n + 1, sizeof(group_commit_part_t));
    bool again = read_commit_topics(&topics_at, version, flexible, op->parts, &op->nparts);
    assert(again && op->nparts == n);
    (void)again;
    parts_split(ctx, op);
    if (op->nasked == 0) {
        /* Nothing to write: answered here, as Kafka does. */
        write_commit_response(&resp->body, version, flexible, op->parts, n);
        parts_op_free(op);
        return API_RESPOND;
    }

    p.parts = op->asked;
    p.nparts = op->nasked;
    api_deferred_begin(&op->d, req, resp);
    group_offset_commit(ctx->groups, &p, commit_done, op);
    if (!api_deferred_called(&op->d))
        return API_DEFERRED;
    parts_op_free(op);
    return API_RESPOND;
}

/* ---- OffsetFetch ---- */

typedef struct fetch_group {
    kslice_t group_id;
    bool all;         /* topics null: every committed offset of the group */
    int32_t first, n; /* its partitions in the request's flat array */
} fetch_group_t;

/* Reads the groups of an OffsetFetch (v0-7: the one group, v8: the groups
 * array whose count is ngroups) into groups and wanted (both NULL: only
 * counts the partitions) and sets *nwanted. False when malformed. */
static bool read_fetch_groups(kreader_t *r, int16_t version, bool flexible, int32_t ngroups,
                              fetch_group_t *groups, group_topic_partition_t *wanted,
                              int32_t *nwanted)
{
    int32_t n = 0;
    assert(ngroups >= 0);
    assert((groups == NULL) == (wanted == NULL));
    for (int32_t g = 0; g < ngroups; g++) {
        fetch_group_t fg = {.first = n};
        int32_t ntopics;
        kr_string_v(r, flexible, &fg.group_id);
        if (!kr_array_v(r, flexible, MIN_TOPIC_BYTES(flexible), &ntopics))
            return false;
        if (ntopics < 0 && version < 2)
            return false; /* nullable from v2 only */
        fg.all = ntopics < 0;
        for (int32_t t = 0; t < ntopics; t++) {
            kslice_t topic;
            int32_t np;
            kr_string_v(r, flexible, &topic);
            if (!kr_array_v(r, flexible, 4, &np) || np < 0)
                return false;
            for (int32_t i = 0; i < np; i++, n++) {
                int32_t partition = 0;
                kr_i32(r, &partition);
                if (wanted != NULL)
                    wanted[n] = (group_topic_partition_t){.topic = topic, .partition = partition};
            }
            kr_tags_v(r, flexible);
        }
        if (version >= 8)
            kr_tags_v(r, flexible);
        fg.n = n - fg.first;
        if (groups != NULL)
            groups[g] = fg;
    }
    *nwanted = n;
    return kr_ok(r);
}

/* Topic entries of offsets: runs of consecutive entries of one topic. */
static int32_t committed_runs(const group_committed_t *o, int32_t n)
{
    int32_t runs = 0;
    for (int32_t i = 0; i < n; i++)
        runs += i == 0 || strcmp(o[i].topic, o[i - 1].topic) != 0;
    assert(runs <= n);
    return runs;
}

static void write_committed(kwriter_t *w, int16_t version, bool flexible,
                            const group_committed_t *o, int32_t n)
{
    assert(n >= 0);
    assert(n == 0 || o != NULL);
    kw_array_v(w, flexible, committed_runs(o, n));
    for (int32_t i = 0; i < n;) {
        int32_t end = i + 1;
        while (end < n && strcmp(o[end].topic, o[i].topic) == 0)
            end++;
        kw_string_v(w, flexible, o[i].topic, -1);
        kw_array_v(w, flexible, end - i);
        for (; i < end; i++) {
            kw_i32(w, o[i].partition);
            kw_i64(w, o[i].offset);
            if (version >= 5)
                kw_i32(w, o[i].leader_epoch);
            kw_string_v(w, flexible, o[i].metadata ? o[i].metadata : "", -1);
            kw_i16(w, o[i].error);
            kw_tags_v(w, flexible);
        }
        kw_tags_v(w, flexible);
    }
}

/* v0-1 have no group-level error: every partition asked for carries it
 * (Kafka's answer), with no offset. */
static void write_group_error_v0(kwriter_t *w, const group_topic_partition_t *wanted, int32_t n,
                                 int16_t error)
{
    assert(error != KAFKA_NONE);
    assert(n == 0 || wanted != NULL);
    int32_t runs = 0;
    for (int32_t i = 0; i < n; i++)
        runs += i == 0 || !same_slice(wanted[i].topic, wanted[i - 1].topic);
    kw_array_v(w, false, runs);
    for (int32_t i = 0; i < n;) {
        int32_t end = i + 1;
        while (end < n && same_slice(wanted[end].topic, wanted[i].topic))
            end++;
        kw_string_v(w, false, (const char *)wanted[i].topic.ptr, wanted[i].topic.len);
        kw_array_v(w, false, end - i);
        for (; i < end; i++) {
            kw_i32(w, wanted[i].partition);
            kw_i64(w, -1);
            kw_string_v(w, false, "", 0);
            kw_i16(w, error);
        }
    }
}

/* One group's answer: its topics and, from v2, its error (a group-level
 * error lists no topic, as Kafka answers). */
static void write_fetch_group(api_context_t *ctx, kwriter_t *w, int16_t version, bool flexible,
                              const fetch_group_t *fg, const group_topic_partition_t *wanted,
                              bool require_stable)
{
    group_offsets_t o = {0};
    group_offset_fetch(ctx->groups, fg->group_id, fg->all ? NULL : wanted + fg->first,
                       fg->all ? 0 : fg->n, require_stable, &o);
    assert(o.noffsets >= 0);
    assert(o.noffsets == 0 || o.offsets != NULL);
    if (version >= 8)
        kw_string_v(w, flexible, (const char *)fg->group_id.ptr, fg->group_id.len);
    if (o.error != KAFKA_NONE && version < 2)
        write_group_error_v0(w, wanted + fg->first, fg->n, o.error);
    else
        write_committed(w, version, flexible, o.offsets, o.error == KAFKA_NONE ? o.noffsets : 0);
    if (version >= 2)
        kw_i16(w, o.error);
    if (version >= 8)
        kw_tags_v(w, flexible);
    free(o.offsets);
}

api_result_t api_handle_offset_fetch(api_context_t *ctx, kafka_request_t *req,
                                     kafka_response_t *resp)
{
    kreader_t *r = &req->body;
    kwriter_t *w = &resp->body;
    const int16_t version = req->api_version;
    const bool flexible = req->flexible;
    assert(version >= 0 && version <= 8);
    assert(flexible == (version >= 6) && ctx->groups != NULL);

    int32_t ngroups = 1; /* v0-7: the request is one group's */
    if (version >= 8 && (!kr_array_v(r, flexible, 3, &ngroups) || ngroups < 0))
        return API_REFUSE(req, "malformed OffsetFetch request");
    kreader_t groups_at = *r;
    int32_t nwanted = 0;
    bool require_stable = false;
    read_fetch_groups(r, version, flexible, ngroups, NULL, NULL, &nwanted);
    if (version >= 7)
        kr_bool(r, &require_stable);
    kr_tags_v(r, flexible);
    if (!kr_ok(r))
        return API_REFUSE(req, "malformed OffsetFetch request");

    fetch_group_t *groups = xcalloc((size_t)ngroups + 1, sizeof(*groups));
    group_topic_partition_t *wanted = xcalloc((size_t)nwanted + 1, sizeof(*wanted));
    int32_t again = 0;
    bool ok = read_fetch_groups(&groups_at, version, flexible, ngroups, groups, wanted, &again);
    assert(ok && again == nwanted);
    (void)ok;

    if (version >= 3)
        kw_i32(w, 0); /* throttle_time_ms */
    if (version >= 8)
        kw_array_v(w, flexible, ngroups);
    for (int32_t g = 0; g < ngroups; g++)
        write_fetch_group(ctx, w, version, flexible, &groups[g], wanted, require_stable);
    kw_tags_v(w, flexible);
    free(wanted);
    free(groups);
    return API_RESPOND;
}

/* ---- OffsetDelete ---- */

/* Reads the topics of an OffsetDelete v0 into parts (NULL: only counts
 * them) and sets *nparts. False when malformed. */
static bool read_delete_topics(kreader_t *r, group_commit_part_t *parts, int32_t *nparts)
{
    int32_t ntopics, n = 0;
    assert(nparts != NULL);
    if (!kr_array_v(r, false, MIN_TOPIC_BYTES(false), &ntopics) || ntopics < 0)
        return false;
    for (int32_t t = 0; t < ntopics; t++) {
        kslice_t topic;
        int32_t np;
        kr_string_v(r, false, &topic);
        if (!kr_array_v(r, false, 4, &np) || np < 0)
            return false;
        for (int32_t i = 0; i < np; i++, n++) {
            group_commit_part_t part = {.topic = topic, .leader_epoch = -1};
            kr_i32(r, &part.partition);
            if (parts != NULL)
                parts[n] = part;
        }
    }
    *nparts = n;
    return kr_ok(r);
}

/* A group-level error lists no topic, as Kafka answers. */
static void write_delete_response(kwriter_t *w, int16_t group_error,
                                  const group_commit_part_t *parts, int32_t n)
{
    assert(w->len == 0);
    kw_i16(w, group_error);
    kw_i32(w, 0); /* throttle_time_ms */
    write_part_errors(w, false, parts, group_error == KAFKA_NONE ? n : 0);
}

static void offset_delete_done(void *arg)
{
    parts_op_t *op = arg;
    assert(op->d.req->api_version == 0);
    parts_merge(op);
    write_delete_response(&op->d.resp->body, op->group_error, op->parts, op->nparts);
    if (api_deferred_answer(&op->d))
        parts_op_free(op);
}

api_result_t api_handle_offset_delete(api_context_t *ctx, kafka_request_t *req,
                                      kafka_response_t *resp)
{
    kreader_t *r = &req->body;
    assert(req->api_version == 0 && !req->flexible);
    assert(ctx->groups != NULL);

    kslice_t group_id;
    int32_t n = 0;
    kr_string_v(r, false, &group_id);
    kreader_t topics_at = *r;
    if (!read_delete_topics(r, NULL, &n))
        return API_REFUSE(req, "malformed OffsetDelete request");

    parts_op_t *op = xcalloc(1, sizeof(*op));
    op->parts = xcalloc((size_t)n + 1, sizeof(group_commit_part_t));
    bool again = read_delete_topics(&topics_at, op->parts, &op->nparts);
    assert(again && op->nparts == n);
    (void)again;

    /* The coordinator is asked even when no partition is known: the group
     * itself may be the error. */
    parts_split(ctx, op);
    api_deferred_begin(&op->d, req, resp);
    group_offset_delete(ctx->groups, group_id, op->asked, op->nasked, &op->group_error,
                        offset_delete_done, op);
    if (!api_deferred_called(&op->d))
        return API_DEFERRED;
    parts_op_free(op);
    return API_RESPOND;
}
