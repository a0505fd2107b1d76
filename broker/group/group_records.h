/* The record keys and values of __consumer_offsets, in Kafka's own schemas
 * (OffsetCommitKey/Value, GroupMetadataKey/Value), so that a partition
 * written by Kafka can be replayed here and the other way round.
 *
 * Every key and value starts with an int16 version. Writers produce what
 * Kafka 3.x writes: offset commit key v1 (group, topic, partition), offset
 * commit value v3 (v1 when an expire timestamp is given), group metadata key
 * v2 (group) and group metadata value v3. Readers accept every version Kafka
 * has written: keys 0-2 (0 and 1: an offset commit, 2: group metadata) and
 * values 0-4 (4 is flexible: compact strings, bytes and arrays, and tagged
 * fields, which are skipped). A field a version lacks reads as its schema's
 * default. An unknown version, a truncated record or bytes left over after
 * the last field is a decode error (false).
 *
 * A null value (a tombstone) deletes what its key names; that is the
 * caller's business, these functions only see non-null values.
 *
 * Decoded slices are views into the bytes given, valid as long as they are.
 */
#ifndef VLTAVA_GROUP_RECORDS_H
#define VLTAVA_GROUP_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kafka_codec.h"

typedef enum group_record_type {
    GROUP_RECORD_OFFSET_COMMIT,
    GROUP_RECORD_GROUP_METADATA,
} group_record_type_t;

typedef struct group_record_key {
    group_record_type_t type;
    kslice_t group;
    kslice_t topic;    /* offset commit only; null for group metadata */
    int32_t partition; /* offset commit only; -1 for group metadata */
} group_record_key_t;

typedef struct group_offset_value {
    int64_t offset;
    int32_t leader_epoch; /* -1: unknown (and always before v3) */
    kslice_t metadata;    /* written as empty when null, as Kafka does */
    int64_t commit_timestamp;
    int64_t expire_timestamp; /* -1: none (only v1 carries one) */
} group_offset_value_t;

typedef struct group_member_record {
    kslice_t member_id;
    kslice_t group_instance_id; /* nullable; null before v3 */
    kslice_t client_id;
    kslice_t client_host;
    /* Before v1 there was one timeout: v0 reads it into both, as Kafka does. */
    int32_t rebalance_timeout_ms;
    int32_t session_timeout_ms;
    kslice_t subscription; /* the protocol's metadata, opaque here */
    kslice_t assignment;
} group_member_record_t;

typedef struct group_metadata_value {
    kslice_t protocol_type;
    int32_t generation;
    kslice_t protocol;               /* nullable */
    kslice_t leader;                 /* nullable */
    int64_t current_state_timestamp; /* -1 before v2 */
    group_member_record_t *members;  /* decoded: heap (xcalloc), caller frees; NULL when none */
    int32_t nmembers;
} group_metadata_value_t;

/* Writers append one key or value to w. Non-nullable strings must not be
 * null, and every string must fit an int16 length. */
void group_record_write_offset_key(kwriter_t *w, kslice_t group, kslice_t topic, int32_t partition);
/* v3, or v1 when expire_timestamp >= 0 (v1 has no leader epoch). */
void group_record_write_offset_value(kwriter_t *w, const group_offset_value_t *v);
void group_record_write_metadata_key(kwriter_t *w, kslice_t group);
/* v3. */
void group_record_write_metadata_value(kwriter_t *w, const group_metadata_value_t *v);

/* Readers decode exactly one key or value from p[0..len). On false, *out is
 * unspecified and nothing is left allocated. */
bool group_record_read_key(const uint8_t *p, size_t len, group_record_key_t *out);
bool group_record_read_offset_value(const uint8_t *p, size_t len, group_offset_value_t *out);
/* The member count is bounded by the bytes present before anything is
 * allocated. */
bool group_record_read_metadata_value(const uint8_t *p, size_t len, group_metadata_value_t *out);

#endif
