/* __transaction_state keys and values in Kafka's schemas (see
 * txn_records.h). Field order and the versions each field exists in follow
 * TransactionLogKey.json and TransactionLogValue.json. */
#include "txn_records.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

#define KEY_VERSION                  0
#define VALUE_VERSION_WRITTEN        0
#define VALUE_VERSION_MAX            1
#define VALUE_FIRST_FLEXIBLE_VERSION 1

/* The value's tagged fields (v1+). */
#define TAG_PREVIOUS_PRODUCER_ID 0
#define TAG_NEXT_PRODUCER_ID     1
#define TAG_CLIENT_TXN_VERSION   2

/* The smallest PartitionsSchema any version encodes: v1's, an empty compact
 * topic (a byte), an empty compact array (a byte) and an empty tag section
 * (a byte). v0's is larger (6). */
#define TOPIC_MIN_BYTES 3

static const char *const state_names[TXN_STATE_COUNT] = {
    [TXN_EMPTY] = "Empty",
    [TXN_ONGOING] = "Ongoing",
    [TXN_PREPARE_COMMIT] = "PrepareCommit",
    [TXN_PREPARE_ABORT] = "PrepareAbort",
    [TXN_COMPLETE_COMMIT] = "CompleteCommit",
    [TXN_COMPLETE_ABORT] = "CompleteAbort",
    [TXN_DEAD] = "Dead",
    [TXN_PREPARE_EPOCH_FENCE] = "PrepareEpochFence",
};

const char *txn_state_name(int state)
{
    if (state < 0 || state >= TXN_STATE_COUNT)
        return NULL;
    return state_names[state];
}

int txn_state_from_name(kslice_t name)
{
    if (name.ptr == NULL)
        return -1;
    for (int s = 0; s < TXN_STATE_COUNT; s++)
        if (kslice_eq(name, state_names[s]))
            return s;
    return -1;
}

/* ---- Writers ---- */

void txn_record_write_key(kwriter_t *w, kslice_t transactional_id)
{
    assert(w != NULL);
    assert(transactional_id.ptr != NULL && transactional_id.len >= 0 &&
           transactional_id.len <= INT16_MAX);
    kw_i16(w, KEY_VERSION);
    kw_string_v(w, false, (const char *)transactional_id.ptr, transactional_id.len);
}

static bool same_topic(kslice_t a, kslice_t b)
{
    return a.len == b.len && memcmp(a.ptr, b.ptr, (size_t)a.len) == 0;
}

/* The runs of one topic among v's partitions. */
static int32_t count_topic_runs(const txn_record_value_t *v)
{
    int32_t runs = 0;
    for (int32_t i = 0; i < v->npartitions; i++)
        if (i == 0 || !same_topic(v->partitions[i].topic, v->partitions[i - 1].topic))
            runs++;
    return runs;
}

void txn_record_write_value(kwriter_t *w, const txn_record_value_t *v)
{
    assert(w != NULL && v != NULL);
    assert(v->state >= TXN_EMPTY && v->state < TXN_STATE_COUNT);
    assert(v->npartitions >= 0 && (v->npartitions == 0 || v->partitions != NULL));
    kw_i16(w, VALUE_VERSION_WRITTEN);
    kw_i64(w, v->producer_id);
    kw_i16(w, v->producer_epoch);
    kw_i32(w, v->timeout_ms);
    kw_i8(w, (int8_t)v->state);
    if (v->state == TXN_EMPTY || v->partitions_null) {
        /* Kafka's valueToBytes: an Empty transaction has no partitions. */
        assert(v->npartitions == 0);
        kw_array_v(w, false, -1);
    } else {
        kw_array_v(w, false, count_topic_runs(v));
        for (int32_t i = 0; i < v->npartitions;) {
            kslice_t topic = v->partitions[i].topic;
            assert(topic.ptr != NULL && topic.len >= 0 && topic.len <= INT16_MAX);
            int32_t end = i + 1;
            while (end < v->npartitions && same_topic(v->partitions[end].topic, topic))
                end++;
            kw_string_v(w, false, (const char *)topic.ptr, topic.len);
            kw_array_v(w, false, end - i);
            for (; i < end; i++)
                kw_i32(w, v->partitions[i].partition);
        }
    }
    kw_i64(w, v->last_update_ms);
    kw_i64(w, v->start_ms);
}

/* ---- Readers ---- */

/* The whole input, and nothing but it, decoded. */
static bool read_complete(const kreader_t *r)
{
    return kr_ok(r) && kr_remaining(r) == 0;
}

bool txn_record_read_key(const uint8_t *p, size_t len, kslice_t *transactional_id)
{
    kreader_t r;
    int16_t version;

    assert(transactional_id != NULL);
    kr_init(&r, p, len);
    if (!kr_i16(&r, &version) || version != KEY_VERSION)
        return false;
    kr_string_v(&r, false, transactional_id);
    assert(!kr_ok(&r) || transactional_id->ptr != NULL);
    return read_complete(&r);
}

/* The partitions array: null (count -1), or topics each with their
 * partition ids. With out == NULL only counts the partitions into *total
 * (the first pass, which bounds the allocation); with out, fills it. */
static bool read_partitions(kreader_t *r, bool flexible, txn_record_partition_t *out,
                            int32_t *total, bool *is_null)
{
    int32_t ntopics;
    if (!kr_array_v(r, flexible, flexible ? TOPIC_MIN_BYTES : 6, &ntopics))
        return false;
    *is_null = ntopics < 0;
    int64_t n = 0;
    for (int32_t t = 0; t < ntopics; t++) {
        kslice_t topic;
        int32_t nids;
        if (!kr_string_v(r, flexible, &topic) || !kr_array_v(r, flexible, 4, &nids) || nids < 0)
            return false;
        for (int32_t i = 0; i < nids; i++) {
            int32_t id;
            if (!kr_i32(r, &id))
                return false;
            if (out != NULL) {
                assert(n < *total);
                out[n] = (txn_record_partition_t){.topic = topic, .partition = id};
            }
            n++;
        }
        if (!kr_tags_v(r, flexible))
            return false;
    }
    /* Each id took 4 of the record's bytes, so this fits. */
    assert(n <= INT32_MAX);
    assert(out == NULL || n == *total);
    *total = (int32_t)n;
    return true;
}

/* The value's top-level tag section (v1+): the three known tags, each of
 * exactly its field's size; others are skipped. Tags strictly increase. */
static bool read_value_tags(kreader_t *r, txn_record_value_t *out)
{
    uint32_t ntags;
    int64_t last_tag = -1;

    if (!kr_uvarint(r, &ntags) || ntags > kr_remaining(r) / 2)
        return false;
    for (uint32_t i = 0; i < ntags; i++) {
        uint32_t tag, size;
        if (!kr_uvarint(r, &tag) || !kr_uvarint(r, &size) || (int64_t)tag <= last_tag)
            return false;
        last_tag = tag;
        switch (tag) {
        case TAG_PREVIOUS_PRODUCER_ID:
            if (size != 8 || !kr_i64(r, &out->previous_producer_id))
                return false;
            break;
        case TAG_NEXT_PRODUCER_ID:
            if (size != 8 || !kr_i64(r, &out->next_producer_id))
                return false;
            break;
        case TAG_CLIENT_TXN_VERSION:
            if (size != 2 || !kr_i16(r, &out->client_txn_version))
                return false;
            break;
        default:
            if (!kr_skip(r, size))
                return false;
        }
    }
    return true;
}

bool txn_record_read_value(const uint8_t *p, size_t len, txn_record_value_t *out)
{
    kreader_t r;
    int16_t version;
    int8_t status;

    assert(out != NULL);
    kr_init(&r, p, len);
    out->partitions = NULL;
    out->npartitions = 0;
    out->partitions_null = true;
    out->previous_producer_id = -1;
    out->next_producer_id = -1;
    out->client_txn_version = 0;
    if (!kr_i16(&r, &version) || version < 0 || version > VALUE_VERSION_MAX)
        return false;
    const bool flexible = version >= VALUE_FIRST_FLEXIBLE_VERSION;
    kr_i64(&r, &out->producer_id);
    kr_i16(&r, &out->producer_epoch);
    kr_i32(&r, &out->timeout_ms);
    kr_i8(&r, &status);
    if (!kr_ok(&r) || status < 0 || status >= TXN_STATE_COUNT)
        return false;
    out->state = (txn_state_t)status;
    kreader_t first = r;
    int32_t total = 0;
    bool is_null;
    if (!read_partitions(&first, flexible, NULL, &total, &is_null))
        return false;
    if (total > 0) {
        out->partitions = xcalloc((size_t)total, sizeof(*out->partitions));
        read_partitions(&r, flexible, out->partitions, &total, &is_null);
    } else {
        r = first;
    }
    assert(kr_ok(&r) && r.pos == first.pos);
    out->npartitions = total;
    out->partitions_null = is_null;
    kr_i64(&r, &out->last_update_ms);
    kr_i64(&r, &out->start_ms);
    bool ok = kr_ok(&r) && (!flexible || read_value_tags(&r, out));
    if (ok && read_complete(&r))
        return true;
    free(out->partitions);
    out->partitions = NULL;
    out->npartitions = 0;
    return false;
}
