/* FindCoordinator v0-2 (non-flexible). Vltava has no group or transaction
 * coordinator yet, so every key is answered COORDINATOR_NOT_AVAILABLE,
 * Kafka's answer while the coordinator's log is not loaded: clients retry
 * and group operations wait. The API is advertised all the same because
 * librdkafka gates features on it (its LZ4 feature requires FindCoordinator
 * v0 in ApiVersions, or lz4 batches are silently sent uncompressed). */
#include <assert.h>

#include "api_handlers.h"
#include "kafka_errors.h"

api_result_t api_handle_find_coordinator(api_context_t *ctx, kafka_request_t *req,
                                         kafka_response_t *resp)
{
    kreader_t *r = &req->body;
    kwriter_t *w = &resp->body;
    const int16_t version = req->api_version;
    assert(version >= 0 && version <= 2);
    assert(!req->flexible);
    (void)ctx;

    kslice_t key;
    int8_t key_type = 0;
    if (!kr_string_v(r, false, &key) || (version >= 1 && !kr_i8(r, &key_type)))
        return API_REFUSE(req, "malformed FindCoordinator request");
    if (version >= 1)
        kw_i32(w, 0); /* throttle_time_ms */
    kw_i16(w, KAFKA_COORDINATOR_NOT_AVAILABLE);
    if (version >= 1)
        kw_string_v(w, false,
                    key_type == 0 ? "This broker has no group coordinator"
                                  : "This broker has no transaction coordinator",
                    -1);
    kw_i32(w, -1); /* node_id */
    kw_string_v(w, false, "", 0);
    kw_i32(w, -1); /* port */
    return API_RESPOND;
}
