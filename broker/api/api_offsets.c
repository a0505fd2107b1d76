/* Committed offsets: OffsetCommit v0-8, TxnOffsetCommit v0-3, OffsetFetch
 * v0-8 and OffsetDelete v0, decoded here and answered by the group coordinator
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
 * OffsetCommit, TxnOffsetCommit and OffsetDelete wait for their write to be replicated: the
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
#define MIN_INDEX_PART_BYTES      4

static bool same_slice(kslice_t a, kslice_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, (size_t)a.len) == 0);
}

/* ---- responses' topics arrays ---- */

/* The flat entries of an answer (a request's parts, a group's offsets),
 * whatever their type, for write_topics. */
typedef struct topic_entries {
    const void *entries;
    int32_t n;
    kslice_t (*topic)(const void *entries, int32_t i);
    /* Writes entry i's fields, its partition index first, at version. */
    void (*write)(kwriter_t *w, const struct topic_entries *e, int32_t i);
    int16_t version;
    bool flexible;
    int16_t error; /* OffsetFetch v0-1's group error, for every entry */
} topic_entries_t;

/* Where the run of entries of i's topic ends. */
static int32_t topic_run_end(const topic_entries_t *e, int32_t i)
{
    assert(i >= 0 && i < e->n);
    const kslice_t topic = e->topic(e->entries, i);
    int32_t end = i + 1;
    while (end < e->n && same_slice(e->topic(e->entries, end), topic))
        end++;
    return end;
}

/* A topics array: one topic entry per run of consecutive entries of one
 * topic, with those entries. */
static void write_topics(kwriter_t *w, const topic_entries_t *e)
{
    int32_t ntopics = 0;
    assert(e->n >= 0);
    assert(e->n == 0 || e->entries != NULL);
    for (int32_t i = 0; i < e->n; i = topic_run_end(e, i))
        ntopics++;
    kw_array_v(w, e->flexible, ntopics);
    for (int32_t i = 0; i < e->n;) {
        const int32_t end = topic_run_end(e, i);
        const kslice_t topic = e->topic(e->entries, i);
        kw_string_v(w, e->flexible, (const char *)topic.ptr, topic.len);
        kw_array_v(w, e->flexible, end - i);
        for (; i < end; i++) {
            e->write(w, e, i);
            kw_tags_v(w, e->flexible);
        }
        kw_tags_v(w, e->flexible);
    }
}

static kslice_t part_topic(const void *entries, int32_t i)
{
    return ((const group_commit_part_t *)entries)[i].topic;
}

/* OffsetCommit's and OffsetDelete's: index and error. */
static void write_part_error(kwriter_t *w, const topic_entries_t *e, int32_t i)
{
    const group_commit_part_t *part = &((const group_commit_part_t *)e->entries)[i];
    kw_i32(w, part->partition);
    kw_i16(w, part->error);
}

static void write_part_errors(kwriter_t *w, bool flexible, const group_commit_part_t *parts,
                              int32_t n)
{
    const topic_entries_t e = {.entries = parts,
                               .n = n,
                               .topic = part_topic,
                               .write = write_part_error,
                               .flexible = flexible};
    write_topics(w, &e);
}

/* ---- requests' topics arrays ---- */

/* What a request's partition entries hold besides their index. */
typedef struct part_layout {
    bool flexible;
    bool index_only;       /* OffsetDelete: nothing but the index */
    bool leader_epoch;     /* OffsetCommit v6+, TxnOffsetCommit v2+ */
    bool commit_timestamp; /* OffsetCommit v1 */
} part_layout_t;

static part_layout_t commit_layout(int16_t version, bool flexible)
{
    assert(version >= 0 && version <= 8);
    return (part_layout_t){
        .flexible = flexible, .leader_epoch = version >= 6, .commit_timestamp = version == 1};
}

/* Reads the topics array of an OffsetCommit, TxnOffsetCommit or
 * OffsetDelete into parts (NULL: only counts them) and sets *nparts. False
 * when malformed. */
static bool read_part_topics(kreader_t *r, const part_layout_t *l, group_commit_part_t *parts,
                             int32_t *nparts)
{
    int32_t ntopics, n = 0;
    const bool flexible = l->flexible;
    assert(!l->index_only || (!flexible && !l->leader_epoch && !l->commit_timestamp));
    if (!kr_array_v(r, flexible, MIN_TOPIC_BYTES(flexible), &ntopics) || ntopics < 0)
        return false;
    const size_t min_part = l->index_only ? MIN_INDEX_PART_BYTES : MIN_COMMIT_PART_BYTES;
    for (int32_t t = 0; t < ntopics; t++) {
        kslice_t topic;
        int32_t np;
        kr_string_v(r, flexible, &topic);
        if (!kr_array_v(r, flexible, min_part, &np) || np < 0)
            return false;
        for (int32_t i = 0; i < np; i++, n++) {
            group_commit_part_t part = {.topic = topic, .leader_epoch = -1, .commit_timestamp = -1};
            kr_i32(r, &part.partition);
            if (!l->index_only) {
                kr_i64(r, &part.offset);
                if (l->leader_epoch)
                    kr_i32(r, &part.leader_epoch);
                if (l->commit_timestamp)
                    kr_i64(r, &part.commit_timestamp);
                kr_nullable_string_v(r, flexible, &part.metadata);
                kr_tags_v(r, flexible);
            }
            if (parts != NULL)
                parts[n] = part;
        }
        kr_tags_v(r, flexible);
    }
    *nparts = n;
    return kr_ok(r);
}

/* ---- OffsetCommit and OffsetDelete: waiting on the coordinator ---- */

typedef struct parts_op {
    api_deferred_t d;
    int32_t nparts;
    int32_t nasked;
    group_commit_part_t *asked;  /* copies of the parts the coordinator answers */
    int32_t *asked_at;           /* asked[i] is parts[asked_at[i]] */
    int16_t group_error;         /* OffsetDelete */
    group_commit_part_t parts[]; /* every part of the request, in its order */
} parts_op_t;

static void parts_op_free(void *arg)
{
    parts_op_t *op = arg;
    free(op->asked);
    free(op->asked_at);
    free(op);
}

/* The op for a request whose topics array starts at topics_at and holds n
 * parts (counted by a first read_part_topics). */
static parts_op_t *parts_op_new(kreader_t topics_at, const part_layout_t *l, int32_t n)
{
    assert(n >= 0);
    parts_op_t *op = xcalloc(1, sizeof(*op) + (size_t)n * sizeof(op->parts[0]));
    bool again = read_part_topics(&topics_at, l, op->parts, &op->nparts);
    assert(again && op->nparts == n);
    (void)again;
    return op;
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
    api_deferred_answer(&op->d);
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
    const kreader_t topics_at = *r;
    const part_layout_t layout = commit_layout(version, flexible);
    int32_t n = 0;
    if (!read_part_topics(r, &layout, NULL, &n) || !kr_tags_v(r, flexible))
        return API_REFUSE(req, "malformed OffsetCommit request");

    parts_op_t *op = parts_op_new(topics_at, &layout, n);
    parts_split(ctx, op);
    if (op->nasked == 0) {
        /* Nothing to write: answered here, as Kafka does. */
        write_commit_response(&resp->body, version, flexible, op->parts, n);
        parts_op_free(op);
        return API_RESPOND;
    }

    p.parts = op->asked;
    p.nparts = op->nasked;
    api_deferred_begin(&op->d, req, resp, parts_op_free, op);
    group_offset_commit(ctx->groups, &p, commit_done, op);
    return api_deferred_end(&op->d);
}

/* ---- TxnOffsetCommit ---- */

static void write_txn_commit_response(kwriter_t *w, int16_t version, bool flexible,
                                      group_commit_part_t *parts, int32_t n)
{
    assert(w->len == 0);
    assert(n >= 0);
    /* Kafka's answer to v0-1 clients (0.11 to 2.0), which KAFKA-7296 saw
     * crash on a loading error: they get one they retry on. */
    for (int32_t i = 0; version < 2 && i < n; i++)
        if (parts[i].error == KAFKA_COORDINATOR_LOAD_IN_PROGRESS)
            parts[i].error = KAFKA_COORDINATOR_NOT_AVAILABLE;
    kw_i32(w, 0); /* throttle_time_ms */
    write_part_errors(w, flexible, parts, n);
    kw_tags_v(w, flexible);
}

static void txn_commit_done(void *arg)
{
    parts_op_t *op = arg;
    assert(op->nasked > 0);
    parts_merge(op);
    write_txn_commit_response(&op->d.resp->body, op->d.req->api_version, op->d.req->flexible,
                              op->parts, op->nparts);
    api_deferred_answer(&op->d);
}

/* TxnOffsetCommit v0-3 (v2: leader epochs; v3: flexible, and the
 * consumer's generation, member id and instance id, KIP-447). */
api_result_t api_handle_txn_offset_commit(api_context_t *ctx, kafka_request_t *req,
                                          kafka_response_t *resp)
{
    kreader_t *r = &req->body;
    const int16_t version = req->api_version;
    const bool flexible = req->flexible;
    assert(version >= 0 && version <= 3);
    assert(flexible == (version >= 3) && ctx->groups != NULL);

    kslice_t transactional_id;
    group_txn_commit_params_t p = {.version = version,
                                   .generation_id = -1,
                                   .member_id = {.ptr = (const uint8_t *)"", .len = 0}};
    kr_string_v(r, flexible, &transactional_id);
    kr_string_v(r, flexible, &p.group_id);
    kr_i64(r, &p.producer_id);
    kr_i16(r, &p.producer_epoch);
    if (version >= 3) {
        kr_i32(r, &p.generation_id);
        kr_string_v(r, flexible, &p.member_id);
        kr_nullable_string_v(r, flexible, &p.group_instance_id);
    }
    const kreader_t topics_at = *r;
    const part_layout_t layout = {.flexible = flexible, .leader_epoch = version >= 2};
    int32_t n = 0;
    if (!read_part_topics(r, &layout, NULL, &n) || !kr_tags_v(r, flexible))
        return API_REFUSE(req, "malformed TxnOffsetCommit request");

    parts_op_t *op = parts_op_new(topics_at, &layout, n);
    parts_split(ctx, op);
    if (op->nasked == 0) {
        write_txn_commit_response(&resp->body, version, flexible, op->parts, n);
        parts_op_free(op);
        return API_RESPOND;
    }
    p.parts = op->asked;
    p.nparts = op->nasked;
    api_deferred_begin(&op->d, req, resp, parts_op_free, op);
    group_txn_offset_commit(ctx->groups, &p, txn_commit_done, op);
    return api_deferred_end(&op->d);
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
            if (!kr_array_v(r, flexible, MIN_INDEX_PART_BYTES, &np) || np < 0)
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

static kslice_t committed_topic(const void *entries, int32_t i)
{
    const char *topic = ((const group_committed_t *)entries)[i].topic;
    return (kslice_t){.ptr = (const uint8_t *)topic, .len = (int32_t)strlen(topic)};
}

static void write_committed(kwriter_t *w, const topic_entries_t *e, int32_t i)
{
    const group_committed_t *o = &((const group_committed_t *)e->entries)[i];
    kw_i32(w, o->partition);
    kw_i64(w, o->offset);
    if (e->version >= 5)
        kw_i32(w, o->leader_epoch);
    kw_string_v(w, e->flexible, o->metadata ? o->metadata : "", -1);
    kw_i16(w, o->error);
}

static kslice_t wanted_topic(const void *entries, int32_t i)
{
    return ((const group_topic_partition_t *)entries)[i].topic;
}

/* v0-1 have no group-level error: every partition asked for carries it
 * (Kafka's answer), with no offset. */
static void write_wanted_error(kwriter_t *w, const topic_entries_t *e, int32_t i)
{
    assert(e->version <= 1 && e->error != KAFKA_NONE);
    kw_i32(w, ((const group_topic_partition_t *)e->entries)[i].partition);
    kw_i64(w, -1);
    kw_string_v(w, false, "", 0);
    kw_i16(w, e->error);
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
    topic_entries_t e = {.entries = o.offsets,
                         .n = o.error == KAFKA_NONE ? o.noffsets : 0,
                         .topic = committed_topic,
                         .write = write_committed,
                         .version = version,
                         .flexible = flexible,
                         .error = o.error};
    if (o.error != KAFKA_NONE && version < 2) {
        e.entries = wanted + fg->first;
        e.n = fg->n;
        e.topic = wanted_topic;
        e.write = write_wanted_error;
    }
    write_topics(w, &e);
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
    api_deferred_answer(&op->d);
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
    const kreader_t topics_at = *r;
    const part_layout_t layout = {.index_only = true};
    if (!read_part_topics(r, &layout, NULL, &n))
        return API_REFUSE(req, "malformed OffsetDelete request");

    /* The coordinator is asked even when no partition is known: the group
     * itself may be the error. */
    parts_op_t *op = parts_op_new(topics_at, &layout, n);
    parts_split(ctx, op);
    api_deferred_begin(&op->d, req, resp, parts_op_free, op);
    group_offset_delete(ctx->groups, group_id, op->asked, op->nasked, &op->group_error,
                        offset_delete_done, op);
    return api_deferred_end(&op->d);
}
