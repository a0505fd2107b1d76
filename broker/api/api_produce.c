/* Produce v0-8 (non-flexible). v0-2 carry the old message-set formats,
 * which are refused per partition with UNSUPPORTED_FOR_MESSAGE_FORMAT (the
 * versions are advertised only because librdkafka's compression check asks
 * for Produce v0). From v3 the records are RecordBatch v2, appended in
 * place: the log rewrites BaseOffset and PartitionLeaderEpoch inside the
 * request frame and writes the bytes as they are, compressed or not.
 *
 * acks=1 answers after the leader's append. acks=-1 answers once the high
 * watermark covers the append; the replica manager moves the high
 * watermark, and while the leader's log is the only copy it covers every
 * append at once. */
#include <assert.h>
#include <string.h>

#include "api_handlers.h"
#include "coordinator.h"
#include "kafka_errors.h"
#include "vlog.h"

typedef struct produce_result {
    int16_t error;
    int64_t base_offset;
    int64_t log_append_time;
    int64_t log_start_offset;
} produce_result_t;

static const produce_result_t produce_failed = {
    .error = KAFKA_UNKNOWN_SERVER_ERROR,
    .base_offset = -1,
    .log_append_time = -1,
    .log_start_offset = -1,
};

/* The ISR as the cluster metadata records it; -1 when unknown. */
static int32_t isr_size(api_context_t *ctx, kslice_t topic, int32_t partition)
{
    const cluster_metadata_t *md = coordinator_metadata(ctx->coord);
    const md_topic_t *t = cluster_metadata_topic(md, (const char *)topic.ptr, (size_t)topic.len);
    if (!t || partition < 0 || partition >= t->npartitions)
        return -1;
    return t->partitions[partition].nisr;
}

static produce_result_t produce_partition(api_context_t *ctx, kafka_request_t *req, int16_t acks,
                                          kslice_t topic, int32_t partition, kslice_t records)
{
    produce_result_t res = produce_failed;
    const replica_partition_t *rp;

    res.error = api_leader_replica(ctx, topic, partition, &rp);
    if (res.error != KAFKA_NONE)
        return res;
    if (req->api_version < 3) {
        res.error = KAFKA_UNSUPPORTED_FOR_MESSAGE_FORMAT;
        return res;
    }
    if (records.ptr == NULL || records.len == 0) {
        res.error = KAFKA_INVALID_RECORD;
        return res;
    }
    if (acks == -1) {
        int32_t isr = isr_size(ctx, topic, partition);
        if (isr >= 0 && isr < api_topic_min_insync(ctx, topic)) {
            res.error = KAFKA_NOT_ENOUGH_REPLICAS;
            return res;
        }
    }

    /* The frame is the request's and mutable (api.h): the batches are
     * rewritten where they lie. */
    assert(records.ptr >= req->frame && records.ptr + records.len <= req->frame + req->frame_len);
    uint8_t *batches = req->frame + (records.ptr - req->frame);
    log_append_info_t info;
    log_err_t err = partition_log_append(rp->log, batches, (size_t)records.len, rp->leader_epoch,
                                         api_now_ms(), &info);
    if (err != LOG_OK) {
        res.error = api_log_error_code(err);
        VLOG_DEBUG(API_MODULE, "%s: produce to %.*s-%d refused: %s", req->peer, (int)topic.len,
                   (const char *)topic.ptr, partition, log_err_str(err));
        return res;
    }
    int64_t hw = replica_manager_leader_appended(ctx->replicas, rp);
    assert(hw > info.last_offset);
    (void)hw;
    assert(topic.len <= API_TOPIC_NAME_MAX); /* a local replica's name is valid */
    char name[API_TOPIC_NAME_MAX + 1];
    memcpy(name, topic.ptr, (size_t)topic.len);
    name[topic.len] = '\0';
    api_notify_partition(ctx, name, partition);
    res.error = KAFKA_NONE;
    res.base_offset = info.first_offset;
    res.log_append_time = info.log_append_time;
    res.log_start_offset = partition_log_start_offset(rp->log);
    return res;
}

api_result_t api_handle_produce(api_context_t *ctx, kafka_request_t *req, kafka_response_t *resp)
{
    kreader_t *r = &req->body;
    const int16_t version = req->api_version;
    assert(version >= 0 && version <= 8);
    assert(!req->flexible);

    if (version >= 3) {
        kslice_t transactional_id;
        if (!kr_nullable_string_v(r, false, &transactional_id))
            return API_REFUSE(req, "malformed Produce request");
    }
    int16_t acks;
    int32_t timeout_ms, ntopics;
    if (!kr_i16(r, &acks) || !kr_i32(r, &timeout_ms) || !kr_array_v(r, false, 6, &ntopics))
        return API_REFUSE(req, "malformed Produce request");
    bool acks_valid = acks == 0 || acks == 1 || acks == -1;

    kwriter_t *w = &resp->body;
    kw_array_v(w, false, ntopics < 0 ? 0 : ntopics);
    for (int32_t t = 0; t < ntopics; t++) {
        kslice_t topic;
        int32_t nparts;
        if (!kr_string_v(r, false, &topic) || !kr_array_v(r, false, 8, &nparts))
            return API_REFUSE(req, "malformed Produce request");
        kw_string_v(w, false, (const char *)topic.ptr, topic.len);
        kw_array_v(w, false, nparts < 0 ? 0 : nparts);
        for (int32_t p = 0; p < nparts; p++) {
            int32_t partition;
            kslice_t records;
            if (!kr_i32(r, &partition) || !kr_bytes_v(r, false, &records))
                return API_REFUSE(req, "malformed Produce request");
            produce_result_t res = produce_failed;
            if (acks_valid)
                res = produce_partition(ctx, req, acks, topic, partition, records);
            else
                res.error = KAFKA_INVALID_REQUIRED_ACKS;
            kw_i32(w, partition);
            kw_i16(w, res.error);
            kw_i64(w, res.base_offset);
            if (version >= 2)
                kw_i64(w, res.log_append_time);
            if (version >= 5)
                kw_i64(w, res.log_start_offset);
            if (version >= 8) {
                kw_array_v(w, false, 0); /* record_errors */
                kw_string_v(w, false, NULL, -1);
            }
        }
    }
    if (version >= 1)
        kw_i32(w, 0); /* throttle_time_ms */
    return acks == 0 ? API_NO_RESPONSE : API_RESPOND;
}
