/* The handlers' pure helpers: error mapping, topic name and topic config
 * validation, leader epoch checks. No broker state; unit-tested alone. */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "api_handlers.h"
#include "kafka_errors.h"
#include "topic_name.h"

int16_t api_validate_topic_name(const char *name, size_t len, char *msg, size_t msg_size)
{
    switch (topic_name_check(name, len, NULL)) {
    case TOPIC_NAME_OK:
        return KAFKA_NONE;
    case TOPIC_NAME_EMPTY:
        snprintf(msg, msg_size, "Topic name is illegal, it can't be empty");
        break;
    case TOPIC_NAME_DOTS:
        snprintf(msg, msg_size, "Topic name cannot be \".\" or \"..\"");
        break;
    case TOPIC_NAME_TOO_LONG:
        snprintf(msg, msg_size, "Topic name is illegal, it can't be longer than %d characters",
                 TOPIC_NAME_MAX);
        break;
    case TOPIC_NAME_ILLEGAL_CHAR:
        snprintf(msg, msg_size,
                 "Topic name \"%.*s\" is illegal, it contains a character other than ASCII "
                 "alphanumerics, '.', '_' and '-'",
                 (int)len, name);
        break;
    }
    return KAFKA_INVALID_TOPIC_EXCEPTION;
}

int16_t api_validate_topic_config(const char *key, const char *value, char *msg, size_t msg_size)
{
    assert(key != NULL);
    if (value == NULL) {
        snprintf(msg, msg_size, "Null value not supported for topic config %s", key);
        return KAFKA_INVALID_CONFIG;
    }
    /* The log keeps a compact policy (the broker's own __consumer_offsets
     * has it) but does not compact yet: a user asking for it would get a
     * log that only grows, so it is refused rather than ignored. */
    if (strcmp(key, "cleanup.policy") == 0 && strstr(value, "compact") != NULL) {
        snprintf(msg, msg_size, "Invalid config %s=%s: log compaction is not supported yet", key,
                 value);
        return KAFKA_INVALID_CONFIG;
    }
    log_config_t scratch;
    log_config_defaults(&scratch);
    char err[160];
    if (log_config_set(&scratch, key, value, err, sizeof(err)) != 0) {
        snprintf(msg, msg_size, "Invalid config %s=%s: %s", key, value, err);
        return KAFKA_INVALID_CONFIG;
    }
    return KAFKA_NONE;
}

int16_t api_check_leader_epoch(int32_t requested, int32_t current)
{
    if (requested < 0 || requested == current)
        return KAFKA_NONE;
    return requested < current ? KAFKA_FENCED_LEADER_EPOCH : KAFKA_UNKNOWN_LEADER_EPOCH;
}
