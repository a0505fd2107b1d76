/* RecordBatch v2 building and iteration (see record_batch.h). */
#include "record_batch.h"

#include <assert.h>
#include <limits.h>
#include <string.h>

#include "crc32c.h"

/* ---- Header ---- */

bool record_batch_read_header(const uint8_t *p, size_t len, record_batch_header_t *h)
{
    assert(p != NULL || len == 0);
    assert(h != NULL);
    kreader_t r;
    int32_t crc;
    kr_init(&r, p, len < BATCH_HEADER_SIZE ? len : BATCH_HEADER_SIZE);
    kr_i64(&r, &h->base_offset);
    kr_i32(&r, &h->length);
    kr_i32(&r, &h->leader_epoch);
    kr_i8(&r, &h->magic);
    kr_i32(&r, &crc);
    kr_i16(&r, &h->attributes);
    kr_i32(&r, &h->last_offset_delta);
    kr_i64(&r, &h->base_timestamp);
    kr_i64(&r, &h->max_timestamp);
    kr_i64(&r, &h->producer_id);
    kr_i16(&r, &h->producer_epoch);
    kr_i32(&r, &h->base_sequence);
    kr_i32(&r, &h->records_count);
    h->crc = (uint32_t)crc;
    return kr_ok(&r);
}

int32_t record_batch_last_sequence(const record_batch_header_t *h)
{
    if (h->base_sequence < 0)
        return -1;
    /* Unsigned, then folded into [0, INT32_MAX]: Kafka's incrementSequence. */
    const uint32_t next = (uint32_t)h->base_sequence + (uint32_t)h->last_offset_delta;
    const int32_t last = (int32_t)(next & (uint32_t)INT32_MAX);
    assert(last >= 0);
    return last;
}

/* ---- Builder ---- */

/* Bytes kw_varint/kw_varlong write for v (zigzag, then 7 bits a byte). */
static int64_t zigzag_size(int64_t v)
{
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    int64_t n = 1;
    while (z >= 0x80) {
        z >>= 7;
        n++;
    }
    assert(n <= 10);
    return n;
}

static void put_be(uint8_t *p, uint64_t v, size_t n)
{
    assert(n >= 1 && n <= 8);
    for (size_t i = n; i-- > 0;) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

void record_batch_begin(record_batch_builder_t *b, int64_t timestamp_ms)
{
    static const uint8_t header_placeholder[BATCH_HEADER_SIZE];

    assert(b != NULL);
    kw_init(&b->w, 256);
    /* Only its size matters until finish fills it in. */
    kw_raw(&b->w, header_placeholder, sizeof(header_placeholder));
    b->count = 0;
    b->base_timestamp = timestamp_ms;
    b->producer_id = -1;
    b->producer_epoch = -1;
    b->base_sequence = -1;
    b->attributes = 0; /* no compression, CreateTime */
    b->finished = false;
    assert(b->w.len == BATCH_HEADER_SIZE);
}

void record_batch_set_producer(record_batch_builder_t *b, int64_t producer_id, int16_t epoch,
                               int32_t base_sequence, bool transactional)
{
    assert(!b->finished);
    assert(producer_id >= 0 && epoch >= 0 && base_sequence >= -1);
    b->producer_id = producer_id;
    b->producer_epoch = epoch;
    b->base_sequence = base_sequence;
    if (transactional)
        b->attributes |= BATCH_ATTR_TRANSACTIONAL;
    else
        b->attributes &= (int16_t)~BATCH_ATTR_TRANSACTIONAL;
}

void record_batch_add(record_batch_builder_t *b, const void *key, int32_t key_len,
                      const void *value, int32_t value_len)
{
    assert(!b->finished && b->count < INT32_MAX);
    assert((key == NULL) == (key_len == -1) && key_len >= -1);
    assert((value == NULL) == (value_len == -1) && value_len >= -1);

    const int32_t offset_delta = b->count;
    /* The record's Length comes first, so its size is computed up front. */
    int64_t body = 1 + zigzag_size(0) + zigzag_size(offset_delta) + zigzag_size(key_len) +
                   (key_len > 0 ? key_len : 0) + zigzag_size(value_len) +
                   (value_len > 0 ? value_len : 0) + zigzag_size(0);
    assert(body <= INT32_MAX);
    kw_varint(&b->w, (int32_t)body);

    const size_t body_start = b->w.len;
    (void)body_start;     /* read only by the assertion */
    kw_i8(&b->w, 0);      /* Attributes: unused */
    kw_varlong(&b->w, 0); /* TimestampDelta: every record at the batch's time */
    kw_varint(&b->w, offset_delta);
    kw_varint(&b->w, key_len);
    if (key_len > 0)
        kw_raw(&b->w, key, (size_t)key_len);
    kw_varint(&b->w, value_len);
    if (value_len > 0)
        kw_raw(&b->w, value, (size_t)value_len);
    kw_varint(&b->w, 0); /* HeadersCount */
    assert(b->w.len - body_start == (size_t)body);
    b->count++;
}

const uint8_t *record_batch_finish(record_batch_builder_t *b, size_t *len)
{
    assert(!b->finished && b->count > 0);
    assert(b->w.len > BATCH_HEADER_SIZE && b->w.len - BATCH_LOG_OVERHEAD <= (size_t)INT32_MAX);

    uint8_t *h = b->w.buf;
    const uint64_t none = UINT64_MAX; /* -1 in every width put_be writes */
    put_be(h + BATCH_BASE_OFFSET, 0, 8);
    put_be(h + BATCH_LENGTH, b->w.len - BATCH_LOG_OVERHEAD, 4);
    put_be(h + BATCH_LEADER_EPOCH, none, 4);
    h[BATCH_MAGIC] = BATCH_MAGIC_V2;
    put_be(h + BATCH_ATTRIBUTES, (uint16_t)b->attributes, 2);
    put_be(h + BATCH_LAST_OFFSET_DELTA, (uint64_t)(b->count - 1), 4);
    put_be(h + BATCH_BASE_TIMESTAMP, (uint64_t)b->base_timestamp, 8);
    put_be(h + BATCH_MAX_TIMESTAMP, (uint64_t)b->base_timestamp, 8);
    put_be(h + BATCH_PRODUCER_ID, (uint64_t)b->producer_id, 8);
    put_be(h + BATCH_PRODUCER_EPOCH, (uint64_t)b->producer_epoch, 2);
    put_be(h + BATCH_BASE_SEQUENCE, (uint64_t)b->base_sequence, 4);
    put_be(h + BATCH_RECORDS_COUNT, (uint64_t)b->count, 4);
    /* Last: the CRC covers every field from Attributes on. */
    put_be(h + BATCH_CRC, crc32c(0, h + BATCH_ATTRIBUTES, b->w.len - BATCH_ATTRIBUTES), 4);

    b->finished = true;
    *len = b->w.len;
    return b->w.buf;
}

void record_batch_builder_free(record_batch_builder_t *b)
{
    assert(b != NULL);
    kw_free(&b->w);
    b->count = 0;
    b->finished = false;
}

/* ---- Records ---- */

/* A varint length (-1: null) and that many bytes, as a view. */
static bool read_varint_bytes(kreader_t *r, kslice_t *s)
{
    int32_t len;
    if (!kr_varint(r, &len) || len < -1)
        return false;
    if (len == -1) {
        *s = (kslice_t){.ptr = NULL, .len = -1};
        return true;
    }
    s->ptr = r->buf + r->pos;
    s->len = len;
    return kr_skip(r, (size_t)len);
}

typedef struct record_fields {
    int64_t timestamp_delta;
    int32_t offset_delta; /* >= 0 */
    kslice_t key;
    kslice_t value;
} record_fields_t;

/* Reads the record at the front of records (its varint Length first) and
 * consumes it: false when it does not parse or does not fill its Length
 * exactly. The record's own reader bounds every field, so nothing in it can
 * reach the next record. */
static bool read_record(kreader_t *records, record_fields_t *f)
{
    int32_t record_len;
    if (!kr_varint(records, &record_len) || record_len <= 0 ||
        (size_t)record_len > kr_remaining(records))
        return false;
    kreader_t r;
    kr_init(&r, records->buf + records->pos, (size_t)record_len);
    kr_skip(records, (size_t)record_len);

    int8_t attributes;
    int32_t header_count;
    if (!kr_i8(&r, &attributes) || !kr_varlong(&r, &f->timestamp_delta) ||
        !kr_varint(&r, &f->offset_delta) || !read_varint_bytes(&r, &f->key) ||
        !read_varint_bytes(&r, &f->value) || !kr_varint(&r, &header_count))
        return false;
    if (f->offset_delta < 0 || header_count < 0)
        return false;
    /* Headers are not returned; each takes at least two bytes, so the
     * reader running dry bounds the loop. */
    for (int32_t i = 0; i < header_count; i++) {
        kslice_t header_key, header_value;
        if (!read_varint_bytes(&r, &header_key) || header_key.ptr == NULL ||
            !read_varint_bytes(&r, &header_value))
            return false;
    }
    return kr_remaining(&r) == 0;
}

/* ---- Transaction markers ---- */

/* ControlRecordType's key and EndTransactionMarker's value: version 0. */
#define MARKER_KEY_SIZE   4
#define MARKER_VALUE_SIZE 6

void record_batch_build_txn_marker(uint8_t out[RECORD_BATCH_TXN_MARKER_SIZE], int64_t producer_id,
                                   int16_t producer_epoch, bool commit, int32_t coordinator_epoch,
                                   int64_t timestamp_ms)
{
    uint8_t key[MARKER_KEY_SIZE], value[MARKER_VALUE_SIZE];
    put_be(key, 0, 2);
    put_be(key + 2, commit ? RECORD_BATCH_MARKER_COMMIT : RECORD_BATCH_MARKER_ABORT, 2);
    put_be(value, 0, 2);
    put_be(value + 2, (uint32_t)coordinator_epoch, 4);

    record_batch_builder_t b;
    size_t len;
    record_batch_begin(&b, timestamp_ms);
    record_batch_set_producer(&b, producer_id, producer_epoch, -1, true);
    b.attributes |= BATCH_ATTR_CONTROL;
    record_batch_add(&b, key, sizeof(key), value, sizeof(value));
    const uint8_t *batch = record_batch_finish(&b, &len);
    assert(len == RECORD_BATCH_TXN_MARKER_SIZE);
    memcpy(out, batch, RECORD_BATCH_TXN_MARKER_SIZE);
    record_batch_builder_free(&b);
}

int record_batch_parse_txn_marker(const uint8_t *batch, size_t len, int32_t *coordinator_epoch)
{
    const int16_t marker_attributes = BATCH_ATTR_TRANSACTIONAL | BATCH_ATTR_CONTROL;
    record_batch_header_t h;
    record_fields_t f;

    assert(batch != NULL || len == 0);
    assert(coordinator_epoch != NULL);
    if (!record_batch_read_header(batch, len, &h) || h.magic != BATCH_MAGIC_V2 ||
        h.length < BATCH_HEADER_SIZE - BATCH_LOG_OVERHEAD || (uint64_t)record_batch_size(&h) > len)
        return -1;
    if ((h.attributes & marker_attributes) != marker_attributes ||
        (h.attributes & BATCH_ATTR_CODEC_MASK) != 0 || h.records_count != 1 ||
        h.last_offset_delta != 0)
        return -1;
    kreader_t records;
    kr_init(&records, batch + BATCH_HEADER_SIZE, (size_t)record_batch_size(&h) - BATCH_HEADER_SIZE);
    if (!read_record(&records, &f) || kr_remaining(&records) != 0 || f.offset_delta != 0)
        return -1;
    if (f.key.ptr == NULL || f.value.ptr == NULL)
        return -1;
    /* Both are read as version 0, whatever follows (a later version's
     * fields) ignored, as Kafka does. */
    kreader_t key, value;
    int16_t key_version, type, value_version;
    int32_t epoch;
    kr_init(&key, f.key.ptr, (size_t)f.key.len);
    kr_init(&value, f.value.ptr, (size_t)f.value.len);
    if (!kr_i16(&key, &key_version) || !kr_i16(&key, &type) || key_version < 0)
        return -1;
    if (type != RECORD_BATCH_MARKER_ABORT && type != RECORD_BATCH_MARKER_COMMIT)
        return -1;
    if (!kr_i16(&value, &value_version) || !kr_i32(&value, &epoch) || value_version < 0)
        return -1;
    *coordinator_epoch = epoch;
    return type;
}

/* ---- Iterator ---- */

void record_batch_iter_init(record_batch_iter_t *it, const uint8_t *buf, size_t len)
{
    assert(it != NULL);
    assert(buf != NULL || len == 0);
    it->buf = buf;
    it->len = len;
    it->batch_start = 0;
    it->batch_end = 0;
    kr_init(&it->records, buf, 0);
    it->records_left = 0;
    it->base_offset = 0;
    it->base_timestamp = 0;
    it->log_append_time = -1;
    it->skipped_batches = 0;
    it->corrupt = false;
}

/* Marks the iterator failed; returns -1 so callers can `return iter_corrupt(it)`. */
static int iter_corrupt(record_batch_iter_t *it)
{
    it->corrupt = true;
    return -1;
}

/* Opens the batch at batch_end: 1 when it is open (possibly with no records
 * to return, when it is skipped or empty), 0 when no whole batch starts
 * there, -1 when it is corrupt. */
static int iter_open_batch(record_batch_iter_t *it)
{
    const size_t start = it->batch_end;
    const size_t avail = it->len - start;
    kreader_t r;
    int64_t base_offset;
    int32_t length, leader_epoch;
    int8_t magic;

    assert(it->records_left == 0 && start <= it->len);
    /* Where consumed() points should this batch turn out corrupt. */
    it->batch_start = start;
    kr_init(&r, it->buf + start, avail);
    if (!kr_i64(&r, &base_offset) || !kr_i32(&r, &length))
        return 0;
    /* Magic is judged as soon as it is there, so garbage is an error rather
     * than a batch that seems to wait for more bytes forever. */
    if (kr_i32(&r, &leader_epoch) && kr_i8(&r, &magic) && magic != BATCH_MAGIC_V2)
        return iter_corrupt(it);
    if (length < BATCH_HEADER_SIZE - BATCH_LOG_OVERHEAD)
        return iter_corrupt(it);
    const size_t size = BATCH_LOG_OVERHEAD + (size_t)length;
    if (size > avail)
        return 0;

    record_batch_header_t h;
    bool whole = record_batch_read_header(it->buf + start, size, &h);
    assert(whole && h.length == length);
    (void)whole;

    it->batch_end = start + size;
    const uint8_t *payload = it->buf + start + BATCH_HEADER_SIZE;
    const size_t payload_len = size - BATCH_HEADER_SIZE;
    if ((h.attributes & BATCH_ATTR_CODEC_MASK) != 0 || record_batch_is_control(&h)) {
        it->skipped_batches++;
        kr_init(&it->records, payload, 0);
        return 1;
    }
    if (h.records_count < 0 || (h.records_count == 0 && payload_len != 0))
        return iter_corrupt(it);
    kr_init(&it->records, payload, payload_len);
    it->records_left = h.records_count;
    it->base_offset = h.base_offset;
    it->base_timestamp = h.base_timestamp;
    it->log_append_time = (h.attributes & BATCH_ATTR_LOG_APPEND_TIME) ? h.max_timestamp : -1;
    return 1;
}

static int iter_read_record(record_batch_iter_t *it, record_view_t *out)
{
    record_fields_t f;

    assert(it->records_left > 0 && !it->corrupt);
    if (!read_record(&it->records, &f))
        return iter_corrupt(it);
    it->records_left--;
    /* The records must tile the batch exactly. */
    if (it->records_left == 0 && kr_remaining(&it->records) != 0)
        return iter_corrupt(it);

    if (__builtin_add_overflow(it->base_offset, (int64_t)f.offset_delta, &out->offset))
        return iter_corrupt(it);
    if (it->log_append_time >= 0)
        out->timestamp = it->log_append_time;
    else if (__builtin_add_overflow(it->base_timestamp, f.timestamp_delta, &out->timestamp))
        return iter_corrupt(it);
    out->key = f.key;
    out->value = f.value;
    assert(out->offset >= it->base_offset);
    return 1;
}

int record_batch_iter_next(record_batch_iter_t *it, record_view_t *out)
{
    assert(it != NULL && out != NULL);
    if (it->corrupt)
        return -1;
    while (it->records_left == 0) {
        int opened = iter_open_batch(it);
        if (opened <= 0)
            return opened;
    }
    int got = iter_read_record(it, out);
    assert(got == 1 || it->corrupt);
    return got;
}

size_t record_batch_iter_consumed(const record_batch_iter_t *it)
{
    assert(it->batch_start <= it->batch_end && it->batch_end <= it->len);
    if (it->corrupt || it->records_left > 0)
        return it->batch_start;
    return it->batch_end;
}
