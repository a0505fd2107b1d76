/* __consumer_offsets keys and values in Kafka's schemas (see
 * group_records.h). Field order and the versions each field exists in follow
 * OffsetCommitKey/Value.json and GroupMetadataKey/Value.json. */
#include "group_records.h"

#include <assert.h>
#include <stdlib.h>

#include "xalloc.h"

#define OFFSET_KEY_VERSION_WRITTEN       1 /* 0 and 1 share one layout */
#define METADATA_KEY_VERSION             2
#define OFFSET_VALUE_VERSION_WRITTEN     3
#define OFFSET_VALUE_VERSION_WITH_EXPIRY 1
#define METADATA_VALUE_VERSION_WRITTEN   3
#define VALUE_VERSION_MAX                4
#define VALUE_FIRST_FLEXIBLE_VERSION     4

/* The smallest member any value version encodes: v4's, with every string
 * and bytes empty (a byte each), a null instance id (a byte), two int32
 * timeouts and an empty tag section. v0's is larger (18). */
#define MEMBER_MIN_BYTES 15

static const kslice_t null_slice = {.ptr = NULL, .len = -1};

/* ---- Writers ---- */

static void write_string(kwriter_t *w, kslice_t s, bool nullable)
{
    assert(nullable || s.ptr != NULL);
    assert(s.ptr == NULL || (s.len >= 0 && s.len <= INT16_MAX));
    kw_string_v(w, false, (const char *)s.ptr, s.ptr != NULL ? s.len : -1);
}

void group_record_write_offset_key(kwriter_t *w, kslice_t group, kslice_t topic, int32_t partition)
{
    assert(w != NULL);
    assert(partition >= 0);
    kw_i16(w, OFFSET_KEY_VERSION_WRITTEN);
    write_string(w, group, false);
    write_string(w, topic, false);
    kw_i32(w, partition);
}

void group_record_write_offset_value(kwriter_t *w, const group_offset_value_t *v)
{
    assert(w != NULL && v != NULL);
    assert(v->expire_timestamp >= -1);
    /* A null metadata commits as empty: the schema's string is not nullable. */
    const kslice_t metadata =
        v->metadata.ptr != NULL ? v->metadata : (kslice_t){.ptr = (const uint8_t *)"", .len = 0};
    if (v->expire_timestamp >= 0) {
        kw_i16(w, OFFSET_VALUE_VERSION_WITH_EXPIRY);
        kw_i64(w, v->offset);
        write_string(w, metadata, false);
        kw_i64(w, v->commit_timestamp);
        kw_i64(w, v->expire_timestamp);
        return;
    }
    kw_i16(w, OFFSET_VALUE_VERSION_WRITTEN);
    kw_i64(w, v->offset);
    kw_i32(w, v->leader_epoch);
    write_string(w, metadata, false);
    kw_i64(w, v->commit_timestamp);
}

void group_record_write_metadata_key(kwriter_t *w, kslice_t group)
{
    assert(w != NULL);
    assert(group.ptr != NULL);
    kw_i16(w, METADATA_KEY_VERSION);
    write_string(w, group, false);
}

void group_record_write_metadata_value(kwriter_t *w, const group_metadata_value_t *v)
{
    assert(w != NULL && v != NULL);
    assert(v->nmembers >= 0 && (v->nmembers == 0 || v->members != NULL));
    kw_i16(w, METADATA_VALUE_VERSION_WRITTEN);
    write_string(w, v->protocol_type, false);
    kw_i32(w, v->generation);
    write_string(w, v->protocol, true);
    write_string(w, v->leader, true);
    kw_i64(w, v->current_state_timestamp);
    kw_array_v(w, false, v->nmembers);
    for (int32_t i = 0; i < v->nmembers; i++) {
        const group_member_record_t *m = &v->members[i];
        /* The schema's bytes are not nullable; a reader refuses null. */
        assert(m->subscription.ptr != NULL && m->assignment.ptr != NULL);
        write_string(w, m->member_id, false);
        write_string(w, m->group_instance_id, true);
        write_string(w, m->client_id, false);
        write_string(w, m->client_host, false);
        kw_i32(w, m->rebalance_timeout_ms);
        kw_i32(w, m->session_timeout_ms);
        kw_bytes_v(w, false, m->subscription.ptr, m->subscription.len);
        kw_bytes_v(w, false, m->assignment.ptr, m->assignment.len);
    }
}

/* ---- Readers ---- */

/* The whole input, and nothing but it, decoded. */
static bool read_complete(const kreader_t *r)
{
    return kr_ok(r) && kr_remaining(r) == 0;
}

bool group_record_read_key(const uint8_t *p, size_t len, group_record_key_t *out)
{
    kreader_t r;
    int16_t version;

    assert(out != NULL);
    kr_init(&r, p, len);
    if (!kr_i16(&r, &version))
        return false;
    switch (version) {
    case 0:
    case OFFSET_KEY_VERSION_WRITTEN:
        out->type = GROUP_RECORD_OFFSET_COMMIT;
        kr_string_v(&r, false, &out->group);
        kr_string_v(&r, false, &out->topic);
        kr_i32(&r, &out->partition);
        break;
    case METADATA_KEY_VERSION:
        out->type = GROUP_RECORD_GROUP_METADATA;
        kr_string_v(&r, false, &out->group);
        out->topic = null_slice;
        out->partition = -1;
        break;
    default:
        return false;
    }
    assert(out->type == GROUP_RECORD_GROUP_METADATA || version <= OFFSET_KEY_VERSION_WRITTEN);
    return read_complete(&r);
}

bool group_record_read_offset_value(const uint8_t *p, size_t len, group_offset_value_t *out)
{
    kreader_t r;
    int16_t version;

    assert(out != NULL);
    kr_init(&r, p, len);
    if (!kr_i16(&r, &version) || version < 0 || version > VALUE_VERSION_MAX)
        return false;
    const bool flexible = version >= VALUE_FIRST_FLEXIBLE_VERSION;
    out->leader_epoch = -1;
    out->expire_timestamp = -1;
    kr_i64(&r, &out->offset);
    if (version >= 3)
        kr_i32(&r, &out->leader_epoch);
    kr_string_v(&r, flexible, &out->metadata);
    kr_i64(&r, &out->commit_timestamp);
    if (version == OFFSET_VALUE_VERSION_WITH_EXPIRY)
        kr_i64(&r, &out->expire_timestamp);
    kr_tags_v(&r, flexible);
    assert(flexible || version <= OFFSET_VALUE_VERSION_WRITTEN);
    return read_complete(&r);
}

static bool read_member(kreader_t *r, int16_t version, group_member_record_t *m)
{
    const bool flexible = version >= VALUE_FIRST_FLEXIBLE_VERSION;

    assert(version >= 0 && version <= VALUE_VERSION_MAX);
    kr_string_v(r, flexible, &m->member_id);
    m->group_instance_id = null_slice;
    if (version >= 3)
        kr_nullable_string_v(r, flexible, &m->group_instance_id);
    kr_string_v(r, flexible, &m->client_id);
    kr_string_v(r, flexible, &m->client_host);
    if (version >= 1)
        kr_i32(r, &m->rebalance_timeout_ms);
    kr_i32(r, &m->session_timeout_ms);
    if (version == 0)
        m->rebalance_timeout_ms = m->session_timeout_ms;
    kr_bytes_v(r, flexible, &m->subscription);
    kr_bytes_v(r, flexible, &m->assignment);
    kr_tags_v(r, flexible);
    if (!kr_ok(r))
        return false;
    assert(m->member_id.ptr != NULL);
    return m->subscription.ptr != NULL && m->assignment.ptr != NULL;
}

bool group_record_read_metadata_value(const uint8_t *p, size_t len, group_metadata_value_t *out)
{
    kreader_t r;
    int16_t version;
    int32_t count;

    assert(out != NULL);
    kr_init(&r, p, len);
    out->members = NULL;
    out->nmembers = 0;
    if (!kr_i16(&r, &version) || version < 0 || version > VALUE_VERSION_MAX)
        return false;
    const bool flexible = version >= VALUE_FIRST_FLEXIBLE_VERSION;
    kr_string_v(&r, flexible, &out->protocol_type);
    kr_i32(&r, &out->generation);
    kr_nullable_string_v(&r, flexible, &out->protocol);
    kr_nullable_string_v(&r, flexible, &out->leader);
    out->current_state_timestamp = -1;
    if (version >= 2)
        kr_i64(&r, &out->current_state_timestamp);
    /* kr_array_v bounds the count by the bytes left, so the allocation is
     * no larger than the input allows; the array itself is not nullable. */
    if (!kr_array_v(&r, flexible, MEMBER_MIN_BYTES, &count) || count < 0)
        return false;
    if (count > 0)
        out->members = xcalloc((size_t)count, sizeof(*out->members));
    out->nmembers = count;
    bool ok = true;
    for (int32_t i = 0; ok && i < count; i++)
        ok = read_member(&r, version, &out->members[i]);
    kr_tags_v(&r, flexible);
    if (ok && read_complete(&r))
        return true;
    free(out->members);
    out->members = NULL;
    out->nmembers = 0;
    return false;
}
