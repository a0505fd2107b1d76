/* Kafka wire codec: a bounded reader over exactly one request frame and a
 * growable writer for responses.
 *
 * Reader contract: every read is all-or-nothing. A read that would pass the
 * end of the frame, or a length/count field larger than the bytes remaining,
 * sets the sticky `error` flag, consumes nothing and returns false; every
 * later read also returns false. Handlers therefore read a whole request and
 * check once (`if (!kr_ok(r)) goto malformed;`) or per read, whichever keeps
 * the code flat. Nothing a reader returns is allocated: strings and bytes are
 * views into the frame, valid as long as the frame is.
 *
 * The `_v` helpers take `flexible` and pick the classic (int16/int32 length)
 * or compact (uvarint length+1) encoding, so one decoder serves all versions.
 */
#ifndef VLTAVA_KAFKA_CODEC_H
#define VLTAVA_KAFKA_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A view of a string or byte array inside a frame. ptr == NULL means null
 * (length -1 on the wire); an empty non-null value has ptr != NULL, len 0. */
typedef struct kslice {
    const uint8_t *ptr;
    int32_t len;
} kslice_t;

typedef struct kreader {
    const uint8_t *buf;
    size_t len;
    size_t pos;
    bool error;
} kreader_t;

void kr_init(kreader_t *r, const void *buf, size_t len);
static inline size_t kr_remaining(const kreader_t *r)
{
    return r->len - r->pos;
}
static inline bool kr_ok(const kreader_t *r)
{
    return !r->error;
}

bool kr_i8(kreader_t *r, int8_t *v);
bool kr_i16(kreader_t *r, int16_t *v);
bool kr_i32(kreader_t *r, int32_t *v);
bool kr_i64(kreader_t *r, int64_t *v);
bool kr_bool(kreader_t *r, bool *v);
bool kr_uuid(kreader_t *r, uint8_t out[16]);
bool kr_uvarint(kreader_t *r, uint32_t *v);
bool kr_varint(kreader_t *r, int32_t *v);  /* zigzag */
bool kr_varlong(kreader_t *r, int64_t *v); /* zigzag */
bool kr_skip(kreader_t *r, size_t n);

/* Strings: classic is int16 length, compact is uvarint length+1.
 * The non-nullable forms fail on a null. */
bool kr_string_v(kreader_t *r, bool flexible, kslice_t *s);
bool kr_nullable_string_v(kreader_t *r, bool flexible, kslice_t *s);
/* Bytes: classic is int32 length, compact is uvarint length+1; nullable. */
bool kr_bytes_v(kreader_t *r, bool flexible, kslice_t *s);
/* Array count: classic int32, compact uvarint count+1. A null array reads
 * as -1. Fails when count * min_element_size exceeds the bytes remaining,
 * so a caller may allocate count elements safely. */
bool kr_array_v(kreader_t *r, bool flexible, size_t min_element_size, int32_t *count);
/* Skips a tagged-field section when flexible; no-op otherwise. */
bool kr_tags_v(kreader_t *r, bool flexible);

/* Heap copy of a slice as a NUL-terminated string (caller frees). */
char *kslice_strdup(kslice_t s);
bool kslice_eq(kslice_t s, const char *cstr);

/* The request header fields every version has (v1: ApiKey, ApiVersion,
 * CorrelationId, ClientId). ClientId is a classic int16 nullable string even
 * in header v2; the v2 tagged-field section that follows it is read by the
 * caller with kr_tags_v() once it knows whether (key, version) is flexible. */
typedef struct kafka_request_header {
    int16_t api_key;
    int16_t api_version;
    int32_t correlation_id;
    kslice_t client_id; /* nullable */
} kafka_request_header_t;

bool kafka_request_header_read(kreader_t *r, kafka_request_header_t *h);

/* Growable output buffer. Aborts on OOM; never fails otherwise. */
typedef struct kwriter {
    uint8_t *buf;
    size_t len;
    size_t cap;
} kwriter_t;

void kw_init(kwriter_t *w, size_t initial_capacity);
void kw_free(kwriter_t *w);
void kw_reset(kwriter_t *w);
void kw_raw(kwriter_t *w, const void *data, size_t len);
void kw_i8(kwriter_t *w, int8_t v);
void kw_i16(kwriter_t *w, int16_t v);
void kw_i32(kwriter_t *w, int32_t v);
void kw_i64(kwriter_t *w, int64_t v);
void kw_bool(kwriter_t *w, bool v);
void kw_uuid(kwriter_t *w, const uint8_t uuid[16]);
void kw_uvarint(kwriter_t *w, uint32_t v);
void kw_varint(kwriter_t *w, int32_t v);
void kw_varlong(kwriter_t *w, int64_t v);
/* s == NULL writes null (nullable string); len < 0 means strlen(s). */
void kw_string_v(kwriter_t *w, bool flexible, const char *s, int32_t len);
void kw_bytes_v(kwriter_t *w, bool flexible, const void *data, int32_t len);
/* count -1 writes a null array. */
void kw_array_v(kwriter_t *w, bool flexible, int32_t count);
/* Writes an empty tagged-field section when flexible. */
void kw_tags_v(kwriter_t *w, bool flexible);
/* Reserve an int32 to fill later (e.g. a length); returns its position. */
size_t kw_reserve_i32(kwriter_t *w);
void kw_patch_i32(kwriter_t *w, size_t pos, int32_t v);

/* A response body: bytes written by the handler, interleaved with file
 * ranges that the network layer sends with sendfile(). A slice sits at
 * body position `at`: the bytes body[0..at) go out before it. Slices are
 * kept in order of `at`. The response owns every slice's fd and closes it
 * in kafka_response_free(). */
typedef struct kafka_file_slice {
    size_t at;
    int fd;
    int64_t position;
    int64_t length;
} kafka_file_slice_t;

typedef struct kafka_response {
    kwriter_t body;
    kafka_file_slice_t *slices;
    size_t nslices;
    size_t cap_slices;
} kafka_response_t;

void kafka_response_init(kafka_response_t *resp);
void kafka_response_free(kafka_response_t *resp);
/* Appends a file range at the current end of the body; takes ownership of fd. */
void kafka_response_add_file(kafka_response_t *resp, int fd, int64_t position, int64_t length);
/* Bytes the body occupies on the wire: body bytes plus every slice. */
int64_t kafka_response_size(const kafka_response_t *resp);

#endif
