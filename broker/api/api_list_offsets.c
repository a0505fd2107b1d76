/* ListOffsets v0-5 (non-flexible): earliest (-2), latest (-1) or the first
 * offset whose timestamp is at or after a time. Consumers see offsets up to
 * the high watermark only; a replica (replica_id >= 0) sees the log end.
 * v0 answers in its old form, a list of at most max_num_offsets offsets. */
#include <assert.h>
#include <unistd.h>

#include "api_handlers.h"
#include "kafka_errors.h"

#define LIST_OFFSETS_LATEST   (-1)
#define LIST_OFFSETS_EARLIEST (-2)

typedef struct offset_answer {
    int16_t error;
    int64_t timestamp;
    int64_t offset;
    int32_t leader_epoch;
} offset_answer_t;

/* The PartitionLeaderEpoch stamped into the batch holding `offset`, read
 * from the segment (12 bytes into the batch header); -1 if unreadable. */
static int32_t batch_leader_epoch(partition_log_t *log, int64_t offset, int64_t max_offset)
{
    log_read_t rd;
    int32_t epoch = -1;
    if (partition_log_read(log, offset, 1, max_offset, &rd) != LOG_OK)
        return -1;
    uint8_t be[4];
    if (rd.nranges > 0 && rd.ranges[0].length >= 16 &&
        pread(rd.ranges[0].fd, be, 4, rd.ranges[0].position + 12) == 4)
        epoch =
            (int32_t)((uint32_t)be[0] << 24 | (uint32_t)be[1] << 16 | (uint32_t)be[2] << 8 | be[3]);
    partition_log_read_release(&rd);
    return epoch;
}

static offset_answer_t lookup_offset(api_context_t *ctx, int32_t replica_id, int8_t isolation_level,
                                     kslice_t topic, int32_t partition,
                                     int32_t current_leader_epoch, int64_t timestamp)
{
    offset_answer_t a = {.error = KAFKA_NONE, .timestamp = -1, .offset = -1, .leader_epoch = -1};
    const replica_partition_t *rp;

    a.error = api_leader_replica(ctx, topic, partition, &rp);
    if (a.error == KAFKA_NONE)
        a.error = api_check_leader_epoch(current_leader_epoch, rp->leader_epoch);
    if (a.error != KAFKA_NONE)
        return a;
    partition_log_t *log = rp->log;
    /* read_committed consumers see up to the last stable offset. */
    int64_t visible_end = replica_id >= 0 ? partition_log_end_offset(log)
                          : isolation_level == 1
                              ? replica_manager_last_stable_offset(ctx->replicas, rp)
                              : partition_log_high_watermark(log);

    if (timestamp == LIST_OFFSETS_LATEST) {
        a.offset = visible_end;
        a.leader_epoch = partition_log_latest_epoch(log);
    } else if (timestamp == LIST_OFFSETS_EARLIEST) {
        a.offset = partition_log_start_offset(log);
        a.leader_epoch = batch_leader_epoch(log, a.offset, visible_end);
    } else {
        int64_t found_offset, found_ts;
        log_err_t err = partition_log_offset_for_time(log, timestamp, &found_offset, &found_ts);
        if (err != LOG_OK) {
            a.error = log_err_kafka_error(err);
        } else if (found_offset >= 0 && found_offset < visible_end) {
            a.offset = found_offset;
            a.timestamp = found_ts;
            a.leader_epoch = batch_leader_epoch(log, found_offset, visible_end);
        }
    }
    return a;
}

api_result_t api_handle_list_offsets(api_context_t *ctx, kafka_request_t *req,
                                     kafka_response_t *resp)
{
    kreader_t *r = &req->body;
    kwriter_t *w = &resp->body;
    const int16_t version = req->api_version;
    assert(version >= 0 && version <= 5);
    assert(!req->flexible);

    int32_t replica_id, ntopics;
    int8_t isolation_level = 0;
    if (!kr_i32(r, &replica_id) || (version >= 2 && !kr_i8(r, &isolation_level)) ||
        !kr_array_v(r, false, 6, &ntopics))
        return API_REFUSE(req, "malformed ListOffsets request");

    if (version >= 2)
        kw_i32(w, 0); /* throttle_time_ms */
    kw_array_v(w, false, ntopics < 0 ? 0 : ntopics);
    for (int32_t t = 0; t < ntopics; t++) {
        kslice_t topic;
        int32_t nparts;
        if (!kr_string_v(r, false, &topic) || !kr_array_v(r, false, 12, &nparts))
            return API_REFUSE(req, "malformed ListOffsets request");
        kw_string_v(w, false, (const char *)topic.ptr, topic.len);
        kw_array_v(w, false, nparts < 0 ? 0 : nparts);
        for (int32_t p = 0; p < nparts; p++) {
            int32_t partition, current_leader_epoch = -1, max_num_offsets = 1;
            int64_t timestamp;
            if (!kr_i32(r, &partition) || (version >= 4 && !kr_i32(r, &current_leader_epoch)) ||
                !kr_i64(r, &timestamp) || (version == 0 && !kr_i32(r, &max_num_offsets)))
                return API_REFUSE(req, "malformed ListOffsets request");
            offset_answer_t a = lookup_offset(ctx, replica_id, isolation_level, topic, partition,
                                              current_leader_epoch, timestamp);
            kw_i32(w, partition);
            kw_i16(w, a.error);
            if (version == 0) {
                bool one = a.error == KAFKA_NONE && a.offset >= 0 && max_num_offsets > 0;
                kw_array_v(w, false, one ? 1 : 0);
                if (one)
                    kw_i64(w, a.offset);
                continue;
            }
            kw_i64(w, a.timestamp);
            kw_i64(w, a.offset);
            if (version >= 4)
                kw_i32(w, a.leader_epoch);
        }
    }
    return API_RESPOND;
}
