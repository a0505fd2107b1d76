/* AlterPartitionReassignments v0 (key 45) and ListPartitionReassignments v0
 * (key 46), both flexible. Only the controller answers them (others:
 * top-level NOT_CONTROLLER, as Kafka's ZooKeeper-mode controller does);
 * the controller's state machine is coordinator/reassign.c. Alter is
 * answered once the reassignment is written, not when it finishes. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "api_handlers.h"
#include "coordinator.h"
#include "kafka_errors.h"
#include "xalloc.h"

/* Partitions one Alter request may name (Kafka has no bound; ours keeps
 * the per-request work and the ZooKeeper multi-ops bounded). */
#define REASSIGN_MAX_ITEMS 10000

typedef struct alter_op {
    kafka_request_t *req;
    kafka_response_t *resp;
    coordinator_reassign_item_t *items; /* owned, with their topic strings */
    int32_t **replicas;                 /* owned: each item's list, NULL for a cancel */
    int32_t nitems;
    bool issuing; /* the coordinator's call has not returned yet */
    bool answered;
} alter_op_t;

static void alter_op_free(alter_op_t *op)
{
    for (int32_t i = 0; i < op->nitems; i++) {
        free((char *)op->items[i].topic);
        free(op->replicas[i]);
    }
    free(op->items);
    free(op->replicas);
    free(op);
}

static void write_alter_response(const alter_op_t *op, kwriter_t *w, int16_t top_error,
                                 const char *top_message)
{
    kw_i32(w, 0); /* throttle_time_ms */
    kw_i16(w, top_error);
    kw_string_v(w, true, top_message, -1);
    if (top_error != KAFKA_NONE) {
        kw_array_v(w, true, 0);
        kw_tags_v(w, true);
        return;
    }
    /* Items of one topic are consecutive (as read). */
    int32_t ntopics = 0;
    for (int32_t i = 0; i < op->nitems; i++)
        ntopics += i == 0 || strcmp(op->items[i].topic, op->items[i - 1].topic) != 0;
    kw_array_v(w, true, ntopics);
    for (int32_t i = 0; i < op->nitems;) {
        int32_t j = i;
        while (j < op->nitems && strcmp(op->items[j].topic, op->items[i].topic) == 0)
            j++;
        kw_string_v(w, true, op->items[i].topic, -1);
        kw_array_v(w, true, j - i);
        for (int32_t k = i; k < j; k++) {
            const coordinator_reassign_item_t *it = &op->items[k];
            kw_i32(w, it->partition);
            kw_i16(w, it->error);
            kw_string_v(w, true, it->message[0] ? it->message : NULL, -1);
            kw_tags_v(w, true);
        }
        kw_tags_v(w, true);
        i = j;
    }
    kw_tags_v(w, true);
}

static void alter_done(void *arg)
{
    alter_op_t *op = arg;
    assert(!op->answered);
    op->answered = true;
    write_alter_response(op, &op->resp->body, KAFKA_NONE, NULL);
    if (op->issuing)
        return; /* the handler answers and frees */
    kafka_request_t *req = op->req;
    kafka_response_t *resp = op->resp;
    alter_op_free(op);
    api_request_complete(req, resp, API_RESPOND);
}

/* Reads one topic's partitions into op (grown as needed). */
static bool read_alter_topic(kreader_t *r, alter_op_t *op, int32_t *cap)
{
    kslice_t name;
    int32_t nparts;
    if (!kr_string_v(r, true, &name) || !kr_array_v(r, true, 5, &nparts) || nparts < 0)
        return false;
    if (nparts > REASSIGN_MAX_ITEMS - op->nitems)
        return false;
    if (op->nitems + nparts > *cap) {
        *cap = op->nitems + nparts;
        op->items = xrealloc(op->items, (size_t)*cap * sizeof(*op->items));
        op->replicas = xrealloc(op->replicas, (size_t)*cap * sizeof(*op->replicas));
    }
    for (int32_t p = 0; p < nparts; p++) {
        coordinator_reassign_item_t *it = &op->items[op->nitems];
        memset(it, 0, sizeof(*it));
        op->replicas[op->nitems] = NULL;
        it->topic = kslice_strdup(name);
        op->nitems++; /* owned from here, whatever follows */
        int32_t n;
        if (!kr_i32(r, &it->partition) || !kr_array_v(r, true, 4, &n))
            return false;
        if (n >= 0) {
            int32_t *ids = xmalloc((size_t)(n > 0 ? n : 1) * sizeof(int32_t));
            op->replicas[op->nitems - 1] = ids;
            for (int32_t k = 0; k < n; k++)
                if (!kr_i32(r, &ids[k]))
                    return false;
            it->replicas = ids;
            it->nreplicas = n;
        }
        if (!kr_tags_v(r, true))
            return false;
    }
    return kr_tags_v(r, true);
}

api_result_t api_handle_alter_partition_reassignments(api_context_t *ctx, kafka_request_t *req,
                                                      kafka_response_t *resp)
{
    kreader_t *r = &req->body;
    assert(req->api_version == 0 && req->flexible);
    int32_t timeout_ms, ntopics, cap = 0;
    if (!kr_i32(r, &timeout_ms) || !kr_array_v(r, true, 2, &ntopics) || ntopics < 0)
        return API_REFUSE(req, "malformed AlterPartitionReassignments request");
    (void)timeout_ms; /* answered once written, well within any timeout */
    alter_op_t *op = xcalloc(1, sizeof(*op));
    for (int32_t t = 0; t < ntopics; t++) {
        if (!read_alter_topic(r, op, &cap)) {
            alter_op_free(op);
            return API_REFUSE(req, "malformed AlterPartitionReassignments request");
        }
    }
    if (!kr_tags_v(r, true)) {
        alter_op_free(op);
        return API_REFUSE(req, "malformed AlterPartitionReassignments request");
    }
    if (!coordinator_is_controller(ctx->coord)) {
        write_alter_response(op, &resp->body, KAFKA_NOT_CONTROLLER,
                             "This is not the correct controller for this cluster.");
        alter_op_free(op);
        return API_RESPOND;
    }
    op->req = req;
    op->resp = resp;
    op->issuing = true;
    coordinator_alter_reassignments(ctx->coord, op->items, (size_t)op->nitems, alter_done, op);
    op->issuing = false;
    if (op->answered) {
        alter_op_free(op);
        return API_RESPOND;
    }
    return API_DEFERRED;
}

/* ---- ListPartitionReassignments ---- */

static void write_ids(kwriter_t *w, const int32_t *ids, int32_t n)
{
    kw_array_v(w, true, n);
    for (int32_t i = 0; i < n; i++)
        kw_i32(w, ids[i]);
}

/* Writes t's partitions being reassigned among those asked (all when
 * asked is NULL: a reader over the PartitionIndexes array, count n). */
static void write_topic_reassignments(kwriter_t *w, const md_topic_t *t, const kreader_t *asked,
                                      int32_t nasked)
{
    int32_t count = 0;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            if (count == 0)
                return;
            kw_string_v(w, true, t->name, -1);
            kw_array_v(w, true, count);
        }
        for (int32_t q = 0; q < t->npartitions; q++) {
            const md_partition_t *p = &t->partitions[q];
            if (p->nadding == 0 && p->nremoving == 0)
                continue;
            if (asked) {
                kreader_t rr = *asked;
                bool wanted = false;
                for (int32_t k = 0; k < nasked && !wanted; k++) {
                    int32_t idx = -1;
                    kr_i32(&rr, &idx);
                    wanted = idx == q;
                }
                if (!wanted)
                    continue;
            }
            if (pass == 0) {
                count++;
                continue;
            }
            kw_i32(w, q);
            write_ids(w, p->replicas, p->nreplicas);
            write_ids(w, p->adding, p->nadding);
            write_ids(w, p->removing, p->nremoving);
            kw_tags_v(w, true);
        }
    }
    kw_tags_v(w, true);
}

/* The number of topics write_topic_reassignments will write for these. */
static bool topic_has_reassignment(const md_topic_t *t)
{
    for (int32_t q = 0; q < t->npartitions; q++)
        if (t->partitions[q].nadding > 0 || t->partitions[q].nremoving > 0)
            return true;
    return false;
}

api_result_t api_handle_list_partition_reassignments(api_context_t *ctx, kafka_request_t *req,
                                                     kafka_response_t *resp)
{
    kreader_t *r = &req->body;
    kwriter_t *w = &resp->body;
    assert(req->api_version == 0 && req->flexible);
    int32_t timeout_ms, ntopics;
    if (!kr_i32(r, &timeout_ms) || !kr_array_v(r, true, 2, &ntopics))
        return API_REFUSE(req, "malformed ListPartitionReassignments request");
    (void)timeout_ms; /* answered at once from the controller's state */
    /* Validate the whole request before answering anything. */
    const kreader_t topics_at = *r;
    for (int32_t t = 0; t < ntopics; t++) {
        kslice_t name;
        int32_t n;
        if (!kr_string_v(r, true, &name) || !kr_array_v(r, true, 4, &n) || n < 0 ||
            !kr_skip(r, (size_t)n * 4) || !kr_tags_v(r, true))
            return API_REFUSE(req, "malformed ListPartitionReassignments request");
    }
    if (!kr_tags_v(r, true))
        return API_REFUSE(req, "malformed ListPartitionReassignments request");

    kw_i32(w, 0); /* throttle_time_ms */
    if (!coordinator_is_controller(ctx->coord)) {
        kw_i16(w, KAFKA_NOT_CONTROLLER);
        kw_string_v(w, true, "This is not the correct controller for this cluster.", -1);
        kw_array_v(w, true, 0);
        kw_tags_v(w, true);
        return API_RESPOND;
    }
    kw_i16(w, KAFKA_NONE);
    kw_string_v(w, true, NULL, -1);
    const cluster_metadata_t *md = coordinator_metadata(ctx->coord);
    /* The topics array's count is patched once known: it is compact (a
     * uvarint), so the topics go to a scratch writer first. */
    kwriter_t body;
    kw_init(&body, 256);
    int32_t written = 0;
    if (ntopics < 0) {
        for (size_t i = 0; i < md->ntopics; i++) {
            if (!topic_has_reassignment(&md->topics[i]))
                continue;
            write_topic_reassignments(&body, &md->topics[i], NULL, 0);
            written++;
        }
    } else {
        kreader_t rr = topics_at;
        for (int32_t t = 0; t < ntopics; t++) {
            kslice_t name;
            int32_t n;
            kr_string_v(&rr, true, &name); /* checked above */
            kr_array_v(&rr, true, 4, &n);
            const kreader_t idx = rr;
            kr_skip(&rr, (size_t)n * 4);
            kr_tags_v(&rr, true);
            const md_topic_t *mt =
                cluster_metadata_topic(md, (const char *)name.ptr, (size_t)name.len);
            if (!mt)
                continue;
            size_t before = body.len;
            write_topic_reassignments(&body, mt, &idx, n);
            written += body.len != before;
        }
    }
    kw_array_v(w, true, written);
    kw_raw(w, body.buf, body.len);
    kw_free(&body);
    kw_tags_v(w, true);
    return API_RESPOND;
}
