/* ElectLeaders v0-2 (Kafka's KIP-183 and KIP-460), run by the controller
 * (coordinator_elect_leaders): v0 elects preferred leaders; v1 adds the
 * election type and a top-level error code; v2 is flexible.
 *
 * As Kafka's ZooKeeper-mode broker answers: a null topic list means every
 * partition in this broker's metadata, and the answer then leaves out the
 * partitions that needed no election; a broker that is not the controller
 * answers NOT_CONTROLLER per partition (the top-level error is NONE); the
 * answer waits until this broker's metadata shows the new leaders, bounded
 * by the request's TimeoutMs. A partition named twice is answered once. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "api_handlers.h"
#include "coordinator.h"
#include "kafka_errors.h"
#include "xalloc.h"

/* One request in flight. Owns the topic names its elections point to. */
typedef struct elect_op {
    kafka_request_t *req;
    kafka_response_t *resp;
    bool all; /* the request's topic list was null */
    coordinator_election_t *elections;
    size_t n;
    char **topics; /* owned, every name once */
    size_t ntopics;
    bool issuing;  /* inside coordinator_elect_leaders */
    bool answered; /* done ran */
} elect_op_t;

static void op_free(elect_op_t *op)
{
    for (size_t i = 0; i < op->ntopics; i++)
        free(op->topics[i]);
    free(op->topics);
    free(op->elections);
    free(op);
}

static int compare_elections(const void *a, const void *b)
{
    const coordinator_election_t *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);
    if (c != 0)
        return c;
    return (x->partition > y->partition) - (x->partition < y->partition);
}

/* Sorts the elections by topic and partition and drops repeated ones. */
static void sort_unique(elect_op_t *op)
{
    if (op->n == 0)
        return;
    qsort(op->elections, op->n, sizeof(*op->elections), compare_elections);
    size_t out = 1;
    for (size_t i = 1; i < op->n; i++)
        if (compare_elections(&op->elections[out - 1], &op->elections[i]) != 0)
            op->elections[out++] = op->elections[i];
    assert(out <= op->n);
    op->n = out;
}

static bool reported(const elect_op_t *op, const coordinator_election_t *e)
{
    return !op->all || e->error != KAFKA_ELECTION_NOT_NEEDED;
}

static void write_response(const elect_op_t *op, int16_t version, kwriter_t *w)
{
    const bool flexible = version >= 2;
    kw_i32(w, 0); /* throttle_time_ms */
    if (version >= 1)
        kw_i16(w, KAFKA_NONE);
    /* The elections are sorted: a topic's are consecutive. */
    int32_t ntopics = 0;
    for (size_t i = 0; i < op->n; i++) {
        bool first = i == 0 || strcmp(op->elections[i - 1].topic, op->elections[i].topic) != 0;
        bool any = false;
        for (size_t k = i; !any && first && k < op->n &&
                           strcmp(op->elections[k].topic, op->elections[i].topic) == 0;
             k++)
            any = reported(op, &op->elections[k]);
        ntopics += first && any;
    }
    kw_array_v(w, flexible, ntopics);
    size_t i = 0;
    while (i < op->n) {
        size_t end = i, count = 0;
        while (end < op->n && strcmp(op->elections[end].topic, op->elections[i].topic) == 0)
            count += reported(op, &op->elections[end++]);
        if (count > 0) {
            kw_string_v(w, flexible, op->elections[i].topic, -1);
            kw_array_v(w, flexible, (int32_t)count);
            for (size_t k = i; k < end; k++) {
                const coordinator_election_t *e = &op->elections[k];
                if (!reported(op, e))
                    continue;
                kw_i32(w, e->partition);
                kw_i16(w, e->error);
                kw_string_v(w, flexible, e->message, -1);
                kw_tags_v(w, flexible);
            }
            kw_tags_v(w, flexible);
        }
        i = end;
    }
    kw_tags_v(w, flexible);
}

static void on_elected(void *arg)
{
    elect_op_t *op = arg;
    assert(!op->answered);
    op->answered = true;
    if (op->issuing)
        return; /* the handler answers */
    write_response(op, op->req->api_version, &op->resp->body);
    kafka_request_t *req = op->req;
    kafka_response_t *resp = op->resp;
    op_free(op);
    api_request_complete(req, resp, API_RESPOND);
}

/* The name's copy owned by op, added when new. Linear: a request names few
 * topics, and every name once costs one compare per name before it. */
static const char *intern_topic(elect_op_t *op, kslice_t name)
{
    for (size_t i = 0; i < op->ntopics; i++)
        if (kslice_eq(name, op->topics[i]))
            return op->topics[i];
    op->topics = xrealloc(op->topics, (op->ntopics + 1) * sizeof(char *));
    op->topics[op->ntopics] = kslice_strdup(name);
    return op->topics[op->ntopics++];
}

static void add_election(elect_op_t *op, size_t *cap, const char *topic, int32_t partition)
{
    if (op->n == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        op->elections = xrealloc(op->elections, *cap * sizeof(*op->elections));
    }
    op->elections[op->n++] = (coordinator_election_t){.topic = topic, .partition = partition};
}

/* Every partition in the metadata (a null topic list). */
/* Every partition of the cluster into op; false (op partly filled) when
 * there are more than the coordinator takes in one request. */
static bool add_all(elect_op_t *op, const cluster_metadata_t *md)
{
    size_t cap = 0;
    op->topics = xcalloc(md->ntopics + 1, sizeof(char *));
    for (size_t t = 0; t < md->ntopics; t++) {
        if (op->n + (size_t)md->topics[t].npartitions > COORDINATOR_MAX_ELECTIONS)
            return false;
        op->topics[op->ntopics++] = xstrdup(md->topics[t].name);
        for (int32_t p = 0; p < md->topics[t].npartitions; p++)
            add_election(op, &cap, op->topics[t], p);
    }
    return true;
}

/* Reads the topic list into op; false when malformed. */
static bool read_topics(kreader_t *r, bool flexible, int32_t ntopics, elect_op_t *op)
{
    size_t cap = 0;
    for (int32_t t = 0; t < ntopics; t++) {
        kslice_t name;
        int32_t nparts;
        if (!kr_string_v(r, flexible, &name) || !kr_array_v(r, flexible, 4, &nparts) || nparts < 0)
            return false;
        /* Bounded by the frame (4 bytes each), but the coordinator takes at
         * most COORDINATOR_MAX_ELECTIONS. */
        if (op->n + (size_t)nparts > COORDINATOR_MAX_ELECTIONS)
            return false;
        const char *topic = intern_topic(op, name);
        for (int32_t i = 0; i < nparts; i++) {
            int32_t partition;
            if (!kr_i32(r, &partition))
                return false;
            add_election(op, &cap, topic, partition);
        }
        if (!kr_tags_v(r, flexible))
            return false;
    }
    return true;
}

api_result_t api_handle_elect_leaders(api_context_t *ctx, kafka_request_t *req,
                                      kafka_response_t *resp)
{
    kreader_t *r = &req->body;
    assert(req->api_version >= 0 && req->api_version <= 2);
    assert(req->flexible == (req->api_version >= 2));
    const bool flexible = req->flexible;
    int8_t type = COORDINATOR_ELECTION_PREFERRED;
    int32_t ntopics, timeout_ms;
    if (req->api_version >= 1 && !kr_i8(r, &type))
        return API_REFUSE(req, "malformed ElectLeaders request");
    if (type != COORDINATOR_ELECTION_PREFERRED && type != COORDINATOR_ELECTION_UNCLEAN)
        return API_REFUSE(req, "ElectLeaders: unknown election type");
    /* A topic entry is at least a name length and a partition count. */
    if (!kr_array_v(r, flexible, flexible ? 2 : 6, &ntopics))
        return API_REFUSE(req, "malformed ElectLeaders request");
    elect_op_t *op = xcalloc(1, sizeof(*op));
    op->all = ntopics < 0;
    if (!read_topics(r, flexible, ntopics, op) || !kr_i32(r, &timeout_ms) ||
        !kr_tags_v(r, flexible)) {
        op_free(op);
        return API_REFUSE(req, "malformed ElectLeaders request");
    }
    if (op->all && !add_all(op, coordinator_metadata(ctx->coord))) {
        op_free(op);
        return API_REFUSE(req, "ElectLeaders for every partition: more than the 1,000,000 "
                               "one request may name; name the topics");
    }
    sort_unique(op);
    op->req = req;
    op->resp = resp;
    op->issuing = true;
    coordinator_elect_leaders(ctx->coord, (coordinator_election_type_t)type, op->elections, op->n,
                              timeout_ms, on_elected, op);
    op->issuing = false;
    if (!op->answered)
        return API_DEFERRED; /* on_elected answers */
    write_response(op, req->api_version, &resp->body);
    op_free(op);
    return API_RESPOND;
}
