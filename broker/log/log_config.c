/* Topic-level log settings: Kafka's key names, defaults and bounds. */
#include "partition_log.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_DAY_MS (24LL * 60 * 60 * 1000)

const char *const log_config_keys[] = {
    "cleanup.policy",
    "flush.messages",
    "flush.ms",
    "index.interval.bytes",
    "max.message.bytes",
    "message.timestamp.type",
    "min.insync.replicas",
    "retention.bytes",
    "retention.ms",
    "segment.bytes",
    "segment.index.bytes",
    "segment.ms",
    NULL,
};

void log_config_defaults(log_config_t *cfg)
{
    assert(cfg != NULL);
    memset(cfg, 0, sizeof(*cfg));
    cfg->segment_bytes = 1073741824;
    cfg->segment_ms = 7 * LOG_DAY_MS;
    cfg->retention_bytes = -1;
    cfg->retention_ms = 7 * LOG_DAY_MS;
    cfg->max_message_bytes = 1048588;
    cfg->flush_messages = INT64_MAX;
    cfg->flush_ms = INT64_MAX;
    cfg->index_interval_bytes = 4096;
    cfg->segment_index_bytes = 10485760;
    cfg->log_append_time = false;
    cfg->min_insync_replicas = 1;
    cfg->cleanup_delete = true;
    cfg->cleanup_compact = false;
}

/* Parses a whole decimal integer within [min, max]. */
static int log_config_parse_int(const char *value, int64_t min, int64_t max, int64_t *out)
{
    if (value == NULL || *value == '\0')
        return -1;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(value, &end, 10);
    if (errno != 0 || end == value || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

typedef struct log_config_int_key {
    const char *key;
    size_t field_offset;
    int field_size; /* 4 or 8 */
    int64_t min, max;
} log_config_int_key_t;

#define LOG_CONFIG_INT(name, field, lo, hi)                                                        \
    {                                                                                              \
        name, offsetof(log_config_t, field), (int)sizeof(((log_config_t *)0)->field), lo, hi       \
    }

/* Bounds follow Kafka's LogConfig validators (segment.bytes at least 14,
 * flush.messages at least 1, ...), with int32 fields capped at INT32_MAX. */
static const log_config_int_key_t log_config_int_keys[] = {
    LOG_CONFIG_INT("segment.bytes", segment_bytes, 14, INT32_MAX),
    LOG_CONFIG_INT("segment.ms", segment_ms, 1, INT64_MAX),
    LOG_CONFIG_INT("retention.bytes", retention_bytes, -1, INT64_MAX),
    LOG_CONFIG_INT("retention.ms", retention_ms, -1, INT64_MAX),
    LOG_CONFIG_INT("max.message.bytes", max_message_bytes, 0, INT32_MAX),
    LOG_CONFIG_INT("flush.messages", flush_messages, 1, INT64_MAX),
    LOG_CONFIG_INT("flush.ms", flush_ms, 0, INT64_MAX),
    LOG_CONFIG_INT("index.interval.bytes", index_interval_bytes, 0, INT32_MAX),
    LOG_CONFIG_INT("segment.index.bytes", segment_index_bytes, 8, INT32_MAX),
    LOG_CONFIG_INT("min.insync.replicas", min_insync_replicas, 1, INT32_MAX),
};

#define LOG_CONFIG_NINT (sizeof(log_config_int_keys) / sizeof(log_config_int_keys[0]))

static const log_config_int_key_t *log_config_find_int(const char *key)
{
    for (size_t i = 0; i < LOG_CONFIG_NINT; i++)
        if (strcmp(log_config_int_keys[i].key, key) == 0)
            return &log_config_int_keys[i];
    return NULL;
}

int log_config_set(log_config_t *cfg, const char *key, const char *value, char *err,
                   size_t err_size)
{
    assert(cfg != NULL && key != NULL);
    if (value == NULL)
        value = "";
    const log_config_int_key_t *ik = log_config_find_int(key);
    if (ik != NULL) {
        int64_t v;
        if (log_config_parse_int(value, ik->min, ik->max, &v) != 0) {
            snprintf(err, err_size,
                     "%s: invalid value '%s' (an integer in [%" PRId64 ", %" PRId64 "])", key,
                     value, ik->min, ik->max);
            return -1;
        }
        unsigned char *field = (unsigned char *)cfg + ik->field_offset;
        if (ik->field_size == 4) {
            int32_t v32 = (int32_t)v;
            memcpy(field, &v32, sizeof(v32));
        } else {
            assert(ik->field_size == 8);
            memcpy(field, &v, sizeof(v));
        }
        return 0;
    }
    if (strcmp(key, "message.timestamp.type") == 0) {
        if (strcmp(value, "CreateTime") == 0) {
            cfg->log_append_time = false;
        } else if (strcmp(value, "LogAppendTime") == 0) {
            cfg->log_append_time = true;
        } else {
            snprintf(err, err_size, "%s: invalid value '%s' (CreateTime or LogAppendTime)", key,
                     value);
            return -1;
        }
        return 0;
    }
    if (strcmp(key, "cleanup.policy") == 0) {
        bool del = strcmp(value, "delete") == 0;
        bool compact = strcmp(value, "compact") == 0;
        if (strcmp(value, "compact,delete") == 0 || strcmp(value, "delete,compact") == 0)
            del = compact = true;
        if (!del && !compact) {
            snprintf(err, err_size, "%s: delete, compact or compact,delete, not '%s'", key, value);
            return -1;
        }
        cfg->cleanup_delete = del;
        cfg->cleanup_compact = compact;
        return 0;
    }
    snprintf(err, err_size, "unknown topic config key '%s'", key);
    return -1;
}

int log_config_get(const log_config_t *cfg, const char *key, char *out, size_t out_size)
{
    assert(cfg != NULL && key != NULL);
    assert(out != NULL && out_size > 0);
    const log_config_int_key_t *ik = log_config_find_int(key);
    if (ik != NULL) {
        const unsigned char *field = (const unsigned char *)cfg + ik->field_offset;
        int64_t v;
        if (ik->field_size == 4) {
            int32_t v32;
            memcpy(&v32, field, sizeof(v32));
            v = v32;
        } else {
            memcpy(&v, field, sizeof(v));
        }
        snprintf(out, out_size, "%" PRId64, v);
        return 0;
    }
    if (strcmp(key, "message.timestamp.type") == 0) {
        snprintf(out, out_size, "%s", cfg->log_append_time ? "LogAppendTime" : "CreateTime");
        return 0;
    }
    if (strcmp(key, "cleanup.policy") == 0) {
        snprintf(out, out_size, "%s",
                 cfg->cleanup_compact ? (cfg->cleanup_delete ? "compact,delete" : "compact")
                                      : "delete");
        return 0;
    }
    return -1;
}
