/* Kafka wire codec. Reader: bounded, all-or-nothing, sticky error (see
 * kafka_codec.h). Writer: growable buffer that aborts on OOM. */
#include "kafka_codec.h"

#include <assert.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xalloc.h"

/* ---- Reader ---- */

void kr_init(kreader_t *r, const void *buf, size_t len)
{
    assert(r != NULL);
    assert(buf != NULL || len == 0);
    r->buf = buf;
    r->len = len;
    r->pos = 0;
    r->error = false;
}

/* Marks the reader failed; returns false so callers can `return kr_fail(r)`. */
static bool kr_fail(kreader_t *r)
{
    r->error = true;
    return false;
}

/* True when n more bytes may be read; fails the reader otherwise. */
static bool kr_need(kreader_t *r, size_t n)
{
    assert(r->pos <= r->len);
    if (r->error)
        return false;
    if (n > r->len - r->pos)
        return kr_fail(r);
    return true;
}

static uint64_t kr_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

bool kr_i8(kreader_t *r, int8_t *v)
{
    if (!kr_need(r, 1))
        return false;
    *v = (int8_t)r->buf[r->pos];
    r->pos += 1;
    return true;
}

bool kr_i16(kreader_t *r, int16_t *v)
{
    if (!kr_need(r, 2))
        return false;
    *v = (int16_t)(uint16_t)kr_be(r->buf + r->pos, 2);
    r->pos += 2;
    return true;
}

bool kr_i32(kreader_t *r, int32_t *v)
{
    if (!kr_need(r, 4))
        return false;
    *v = (int32_t)(uint32_t)kr_be(r->buf + r->pos, 4);
    r->pos += 4;
    return true;
}

bool kr_i64(kreader_t *r, int64_t *v)
{
    if (!kr_need(r, 8))
        return false;
    *v = (int64_t)kr_be(r->buf + r->pos, 8);
    r->pos += 8;
    return true;
}

bool kr_bool(kreader_t *r, bool *v)
{
    int8_t b;
    if (!kr_i8(r, &b))
        return false;
    *v = b != 0;
    return true;
}

bool kr_uuid(kreader_t *r, uint8_t out[16])
{
    if (!kr_need(r, 16))
        return false;
    memcpy(out, r->buf + r->pos, 16);
    r->pos += 16;
    return true;
}

/* Unsigned LEB128 of at most max_bytes bytes; the last byte may carry only
 * the bits that still fit in `bits`. Anything longer or wider is an error,
 * never a silent truncation. */
static bool kr_uleb(kreader_t *r, unsigned bits, uint64_t *v)
{
    const unsigned max_bytes = (bits + 6) / 7;
    uint64_t value = 0;
    size_t pos = r->pos;

    assert(bits == 32 || bits == 64);
    if (r->error)
        return false;
    for (unsigned i = 0; i < max_bytes; i++) {
        if (pos >= r->len)
            return kr_fail(r);
        uint8_t b = r->buf[pos++];
        unsigned shift = 7 * i;
        if (i == max_bytes - 1 && (b >> (bits - shift)) != 0)
            return kr_fail(r); /* overflow: bits beyond the type, or a continuation */
        value |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            r->pos = pos;
            *v = value;
            return true;
        }
    }
    return kr_fail(r);
}

bool kr_uvarint(kreader_t *r, uint32_t *v)
{
    uint64_t u;
    if (!kr_uleb(r, 32, &u))
        return false;
    assert(u <= UINT32_MAX);
    *v = (uint32_t)u;
    return true;
}

bool kr_varint(kreader_t *r, int32_t *v)
{
    uint64_t u;
    if (!kr_uleb(r, 32, &u))
        return false;
    uint32_t z = (uint32_t)u;
    *v = (int32_t)((z >> 1) ^ (~(z & 1) + 1));
    return true;
}

bool kr_varlong(kreader_t *r, int64_t *v)
{
    uint64_t z;
    if (!kr_uleb(r, 64, &z))
        return false;
    *v = (int64_t)((z >> 1) ^ (~(z & 1) + 1));
    return true;
}

bool kr_skip(kreader_t *r, size_t n)
{
    if (!kr_need(r, n))
        return false;
    r->pos += n;
    return true;
}

/* Reads a length prefix: classic int16/int32 (wide picks int32) or compact
 * uvarint length+1. *len is -1 for null. Consumes nothing on failure. */
static bool kr_length(kreader_t *r, bool flexible, bool wide, int64_t *len)
{
    size_t start = r->pos;
    if (flexible) {
        uint32_t n;
        if (!kr_uvarint(r, &n))
            return false;
        *len = (int64_t)n - 1;
    } else if (wide) {
        int32_t n;
        if (!kr_i32(r, &n))
            return false;
        *len = n;
    } else {
        int16_t n;
        if (!kr_i16(r, &n))
            return false;
        *len = n;
    }
    if (*len < -1 || *len > INT32_MAX) {
        r->pos = start;
        return kr_fail(r);
    }
    return true;
}

/* A length-prefixed string or byte array; all-or-nothing. */
static bool kr_sized(kreader_t *r, bool flexible, bool wide, bool nullable, kslice_t *s)
{
    size_t start = r->pos;
    int64_t len;
    if (!kr_length(r, flexible, wide, &len))
        return false;
    if (len == -1) {
        if (!nullable) {
            r->pos = start;
            return kr_fail(r);
        }
        s->ptr = NULL;
        s->len = -1;
        return true;
    }
    if ((uint64_t)len > kr_remaining(r)) {
        r->pos = start;
        return kr_fail(r);
    }
    s->ptr = r->buf + r->pos;
    s->len = (int32_t)len;
    r->pos += (size_t)len;
    return true;
}

bool kr_string_v(kreader_t *r, bool flexible, kslice_t *s)
{
    return kr_sized(r, flexible, false, false, s);
}

bool kr_nullable_string_v(kreader_t *r, bool flexible, kslice_t *s)
{
    return kr_sized(r, flexible, false, true, s);
}

bool kr_bytes_v(kreader_t *r, bool flexible, kslice_t *s)
{
    return kr_sized(r, flexible, true, true, s);
}

bool kr_array_v(kreader_t *r, bool flexible, size_t min_element_size, int32_t *count)
{
    size_t start = r->pos;
    int64_t n;

    /* A zero minimum would let a peer announce 2^31 elements in 5 bytes. */
    assert(min_element_size >= 1);
    if (!kr_length(r, flexible, true, &n))
        return false;
    if (n > 0 && (uint64_t)n > kr_remaining(r) / min_element_size) {
        r->pos = start;
        return kr_fail(r);
    }
    *count = (int32_t)n;
    return true;
}

bool kr_tags_v(kreader_t *r, bool flexible)
{
    size_t start = r->pos;
    uint32_t ntags;
    int64_t last_tag = -1;

    if (!flexible)
        return kr_ok(r);
    if (!kr_uvarint(r, &ntags))
        return false;
    /* Each tag takes at least two bytes (tag, size). */
    if (ntags > kr_remaining(r) / 2)
        goto malformed;
    for (uint32_t i = 0; i < ntags; i++) {
        uint32_t tag, size;
        if (!kr_uvarint(r, &tag) || !kr_uvarint(r, &size))
            goto malformed;
        if ((int64_t)tag <= last_tag) /* tags are strictly increasing */
            goto malformed;
        last_tag = tag;
        if (!kr_skip(r, size))
            goto malformed;
    }
    return true;

malformed:
    r->pos = start;
    return kr_fail(r);
}

char *kslice_strdup(kslice_t s)
{
    if (s.ptr == NULL)
        return NULL;
    assert(s.len >= 0);
    return xstrndup((const char *)s.ptr, (size_t)s.len);
}

bool kslice_eq(kslice_t s, const char *cstr)
{
    assert(cstr != NULL);
    if (s.ptr == NULL)
        return false;
    size_t n = strlen(cstr);
    return (size_t)s.len == n && memcmp(s.ptr, cstr, n) == 0;
}

bool kafka_request_header_read(kreader_t *r, kafka_request_header_t *h)
{
    assert(h != NULL);
    kr_i16(r, &h->api_key);
    kr_i16(r, &h->api_version);
    kr_i32(r, &h->correlation_id);
    /* ClientId keeps the classic int16 form even in request header v2. */
    kr_nullable_string_v(r, false, &h->client_id);
    return kr_ok(r);
}

/* ---- Writer ---- */

void kw_init(kwriter_t *w, size_t initial_capacity)
{
    assert(w != NULL);
    w->cap = initial_capacity ? initial_capacity : 64;
    w->buf = xmalloc(w->cap);
    w->len = 0;
}

void kw_free(kwriter_t *w)
{
    free(w->buf);
    w->buf = NULL;
    w->len = 0;
    w->cap = 0;
}

void kw_reset(kwriter_t *w)
{
    w->len = 0;
}

static uint8_t *kw_grow(kwriter_t *w, size_t n)
{
    assert(w->len <= w->cap);
    if (n > w->cap - w->len) {
        size_t cap = w->cap ? w->cap : 64;
        while (cap - w->len < n) {
            assert(cap <= SIZE_MAX / 2);
            cap *= 2;
        }
        w->buf = xrealloc(w->buf, cap);
        w->cap = cap;
    }
    uint8_t *p = w->buf + w->len;
    w->len += n;
    return p;
}

void kw_raw(kwriter_t *w, const void *data, size_t len)
{
    if (len == 0)
        return;
    assert(data != NULL);
    memcpy(kw_grow(w, len), data, len);
}

static void kw_be(kwriter_t *w, uint64_t v, size_t n)
{
    uint8_t *p = kw_grow(w, n);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

void kw_i8(kwriter_t *w, int8_t v)
{
    kw_be(w, (uint8_t)v, 1);
}

void kw_i16(kwriter_t *w, int16_t v)
{
    kw_be(w, (uint16_t)v, 2);
}

void kw_i32(kwriter_t *w, int32_t v)
{
    kw_be(w, (uint32_t)v, 4);
}

void kw_i64(kwriter_t *w, int64_t v)
{
    kw_be(w, (uint64_t)v, 8);
}

void kw_bool(kwriter_t *w, bool v)
{
    kw_i8(w, v ? 1 : 0);
}

void kw_uuid(kwriter_t *w, const uint8_t uuid[16])
{
    kw_raw(w, uuid, 16);
}

static void kw_uleb(kwriter_t *w, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    while (v >= 0x80) {
        tmp[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (uint8_t)v;
    assert(n <= sizeof(tmp));
    kw_raw(w, tmp, n);
}

void kw_uvarint(kwriter_t *w, uint32_t v)
{
    kw_uleb(w, v);
}

void kw_varint(kwriter_t *w, int32_t v)
{
    uint32_t u = (uint32_t)v;
    kw_uleb(w, (u << 1) ^ (uint32_t)(v >> 31));
}

void kw_varlong(kwriter_t *w, int64_t v)
{
    uint64_t u = (uint64_t)v;
    kw_uleb(w, (u << 1) ^ (uint64_t)(v >> 63));
}

/* Writes a length prefix; len -1 is null. */
static void kw_length(kwriter_t *w, bool flexible, bool wide, int32_t len)
{
    assert(len >= -1);
    if (flexible)
        kw_uvarint(w, (uint32_t)(len + 1));
    else if (wide)
        kw_i32(w, len);
    else {
        assert(len <= INT16_MAX);
        kw_i16(w, (int16_t)len);
    }
}

void kw_string_v(kwriter_t *w, bool flexible, const char *s, int32_t len)
{
    if (s == NULL) {
        kw_length(w, flexible, false, -1);
        return;
    }
    if (len < 0) {
        size_t n = strlen(s);
        assert(n <= INT16_MAX);
        len = (int32_t)n;
    }
    kw_length(w, flexible, false, len);
    kw_raw(w, s, (size_t)len);
}

void kw_bytes_v(kwriter_t *w, bool flexible, const void *data, int32_t len)
{
    if (data == NULL || len < 0) {
        kw_length(w, flexible, true, -1);
        return;
    }
    kw_length(w, flexible, true, len);
    kw_raw(w, data, (size_t)len);
}

void kw_array_v(kwriter_t *w, bool flexible, int32_t count)
{
    kw_length(w, flexible, true, count);
}

void kw_tags_v(kwriter_t *w, bool flexible)
{
    if (flexible)
        kw_uvarint(w, 0);
}

size_t kw_reserve_i32(kwriter_t *w)
{
    size_t pos = w->len;
    kw_i32(w, 0);
    return pos;
}

void kw_patch_i32(kwriter_t *w, size_t pos, int32_t v)
{
    assert(pos + 4 <= w->len);
    uint32_t u = (uint32_t)v;
    w->buf[pos] = (uint8_t)(u >> 24);
    w->buf[pos + 1] = (uint8_t)(u >> 16);
    w->buf[pos + 2] = (uint8_t)(u >> 8);
    w->buf[pos + 3] = (uint8_t)u;
}

/* ---- Response ---- */

void kafka_response_init(kafka_response_t *resp)
{
    assert(resp != NULL);
    kw_init(&resp->body, 256);
    resp->slices = NULL;
    resp->nslices = 0;
    resp->cap_slices = 0;
}

void kafka_response_free(kafka_response_t *resp)
{
    for (size_t i = 0; i < resp->nslices; i++) {
        assert(resp->slices[i].fd >= 0);
        close(resp->slices[i].fd);
    }
    free(resp->slices);
    resp->slices = NULL;
    resp->nslices = 0;
    resp->cap_slices = 0;
    kw_free(&resp->body);
}

void kafka_response_add_file(kafka_response_t *resp, int fd, int64_t position, int64_t length)
{
    assert(fd >= 0);
    assert(position >= 0 && length >= 0);
    if (resp->nslices == resp->cap_slices) {
        resp->cap_slices = resp->cap_slices ? resp->cap_slices * 2 : 4;
        resp->slices = xrealloc(resp->slices, resp->cap_slices * sizeof(*resp->slices));
    }
    assert(resp->nslices == 0 || resp->slices[resp->nslices - 1].at <= resp->body.len);
    resp->slices[resp->nslices++] = (kafka_file_slice_t){
        .at = resp->body.len, .fd = fd, .position = position, .length = length};
}

int64_t kafka_response_size(const kafka_response_t *resp)
{
    int64_t size = (int64_t)resp->body.len;
    for (size_t i = 0; i < resp->nslices; i++)
        size += resp->slices[i].length;
    assert(size >= (int64_t)resp->body.len);
    return size;
}
