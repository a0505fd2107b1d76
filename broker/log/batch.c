/* RecordBatch v2 validation: everything a batch must satisfy before any of
 * it reaches a segment. Corrupt input is an error return, never an assert. */
#include <assert.h>

#include "crc32c.h"
#include "log_internal.h"

/* Zigzag varint of at most max_bytes bytes; returns the bytes consumed or 0
 * when the input ends or the encoding is too long. */
static size_t batch_read_varint(const uint8_t *p, size_t avail, int max_bytes, int64_t *out)
{
    uint64_t raw = 0;
    for (int i = 0; i < max_bytes && (size_t)i < avail; i++) {
        raw |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if ((p[i] & 0x80) == 0) {
            *out = (int64_t)(raw >> 1) ^ -(int64_t)(raw & 1);
            return (size_t)i + 1;
        }
    }
    return 0;
}

/* The records of an uncompressed batch must tile its payload exactly. */
static log_err_t batch_check_records(const uint8_t *records, size_t len, int32_t count)
{
    size_t pos = 0;
    for (int32_t i = 0; i < count; i++) {
        int64_t record_len;
        size_t n = batch_read_varint(records + pos, len - pos, 5, &record_len);
        if (n == 0)
            return pos == len ? LOG_ERR_BAD_COUNT : LOG_ERR_BAD_LENGTH;
        pos += n;
        if (record_len <= 0 || (uint64_t)record_len > len - pos)
            return LOG_ERR_BAD_LENGTH;
        pos += (size_t)record_len;
    }
    assert(pos <= len);
    return pos == len ? LOG_OK : LOG_ERR_BAD_COUNT;
}

log_err_t batch_validate(const uint8_t *p, size_t avail, int64_t max_bytes, bool client,
                         batch_header_t *h, size_t *size)
{
    assert(p != NULL && h != NULL && size != NULL);
    if (avail > BATCH_MAGIC && p[BATCH_MAGIC] != BATCH_MAGIC_V2)
        return LOG_ERR_BAD_MAGIC;
    if (avail < BATCH_HEADER_SIZE)
        return LOG_ERR_BAD_LENGTH;
    batch_header_decode(p, h);
    if (h->length < BATCH_HEADER_SIZE - BATCH_LOG_OVERHEAD ||
        (uint64_t)h->length > avail - BATCH_LOG_OVERHEAD)
        return LOG_ERR_BAD_LENGTH;
    size_t total = (size_t)batch_size(h);
    if (max_bytes >= 0 && (int64_t)total > max_bytes)
        return LOG_ERR_TOO_LARGE;
    if (crc32c(0, p + BATCH_ATTRIBUTES, total - BATCH_ATTRIBUTES) != h->crc)
        return LOG_ERR_BAD_CRC;
    if (h->records_count <= 0 || h->last_offset_delta < 0 ||
        (int64_t)h->last_offset_delta + 1 != h->records_count)
        return LOG_ERR_BAD_COUNT;
    if (client && (h->attributes & BATCH_ATTR_CONTROL))
        return LOG_ERR_CONTROL_BATCH;
    if ((h->attributes & BATCH_ATTR_CODEC_MASK) == 0) {
        log_err_t err =
            batch_check_records(p + BATCH_HEADER_SIZE, total - BATCH_HEADER_SIZE, h->records_count);
        if (err != LOG_OK)
            return err;
    }
    *size = total;
    return LOG_OK;
}

int batch_find_timestamp(const uint8_t *batch, size_t size, int64_t ts, int64_t *offset,
                         int64_t *timestamp)
{
    assert(size >= BATCH_HEADER_SIZE);
    batch_header_t h;
    batch_header_decode(batch, &h);
    const uint8_t *p = batch + BATCH_HEADER_SIZE;
    size_t len = size - BATCH_HEADER_SIZE;
    size_t pos = 0;
    for (int32_t i = 0; i < h.records_count; i++) {
        int64_t record_len, ts_delta, offset_delta;
        size_t n = batch_read_varint(p + pos, len - pos, 5, &record_len);
        if (n == 0 || record_len <= 0 || (uint64_t)record_len > len - pos - n)
            return -1;
        size_t rec = pos + n;
        size_t rec_end = rec + (size_t)record_len;
        rec += 1; /* attributes */
        size_t m = rec < rec_end ? batch_read_varint(p + rec, rec_end - rec, 10, &ts_delta) : 0;
        if (m == 0)
            return -1;
        rec += m;
        m = batch_read_varint(p + rec, rec_end - rec, 5, &offset_delta);
        if (m == 0)
            return -1;
        if (h.base_timestamp + ts_delta >= ts) {
            *offset = h.base_offset + offset_delta;
            *timestamp = h.base_timestamp + ts_delta;
            return 0;
        }
        pos = rec_end;
    }
    return -1;
}
