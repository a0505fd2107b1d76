/* CUnit tests for the API handlers' pure helpers: Kafka's topic name rule,
 * topic config validation (as the log applies it), the
 * log error -> Kafka error mapping, and leader epoch fencing. */
#include <CUnit/Basic.h>
#include <string.h>

#include "api_handlers.h"
#include "kafka_errors.h"

void api_validate_suite(void);

static int16_t name_check(const char *name)
{
    char msg[512];
    msg[0] = '\0';
    int16_t err = api_validate_topic_name(name, strlen(name), msg, sizeof(msg));
    /* Every refusal says why. */
    CU_ASSERT_TRUE(err == KAFKA_NONE || msg[0] != '\0');
    return err;
}

static void test_topic_names(void)
{
    CU_ASSERT_EQUAL(name_check("orders"), KAFKA_NONE);
    CU_ASSERT_EQUAL(name_check("a.b_c-D9"), KAFKA_NONE);
    CU_ASSERT_EQUAL(name_check("..."), KAFKA_NONE);
    CU_ASSERT_EQUAL(name_check("_x"), KAFKA_NONE);
    CU_ASSERT_EQUAL(name_check(""), KAFKA_INVALID_TOPIC_EXCEPTION);
    CU_ASSERT_EQUAL(name_check("."), KAFKA_INVALID_TOPIC_EXCEPTION);
    CU_ASSERT_EQUAL(name_check(".."), KAFKA_INVALID_TOPIC_EXCEPTION);
    CU_ASSERT_EQUAL(name_check("a b"), KAFKA_INVALID_TOPIC_EXCEPTION);
    CU_ASSERT_EQUAL(name_check("a/b"), KAFKA_INVALID_TOPIC_EXCEPTION);
    CU_ASSERT_EQUAL(name_check("caf\xc3\xa9"), KAFKA_INVALID_TOPIC_EXCEPTION);
    CU_ASSERT_EQUAL(name_check("a:b"), KAFKA_INVALID_TOPIC_EXCEPTION);

    char longest[API_TOPIC_NAME_MAX + 2];
    memset(longest, 'x', sizeof(longest));
    longest[API_TOPIC_NAME_MAX] = '\0';
    CU_ASSERT_EQUAL(name_check(longest), KAFKA_NONE);
    longest[API_TOPIC_NAME_MAX] = 'x';
    longest[API_TOPIC_NAME_MAX + 1] = '\0';
    CU_ASSERT_EQUAL(name_check(longest), KAFKA_INVALID_TOPIC_EXCEPTION);

    /* Only `len` bytes count: a view into a frame is not NUL-terminated. */
    char msg[64];
    CU_ASSERT_EQUAL(api_validate_topic_name("good bad", 4, msg, sizeof(msg)), KAFKA_NONE);
    CU_ASSERT_EQUAL(api_validate_topic_name("..x", 2, msg, sizeof(msg)),
                    KAFKA_INVALID_TOPIC_EXCEPTION);
}

static int16_t config_check(const char *key, const char *value)
{
    char msg[512];
    msg[0] = '\0';
    int16_t err = api_validate_topic_config(key, value, msg, sizeof(msg));
    CU_ASSERT_TRUE(err == KAFKA_NONE || strstr(msg, key) != NULL);
    return err;
}

static void test_topic_configs(void)
{
    CU_ASSERT_EQUAL(config_check("retention.ms", "60000"), KAFKA_NONE);
    CU_ASSERT_EQUAL(config_check("segment.bytes", "1048576"), KAFKA_NONE);
    CU_ASSERT_EQUAL(config_check("max.message.bytes", "2000000"), KAFKA_NONE);
    CU_ASSERT_EQUAL(config_check("min.insync.replicas", "2"), KAFKA_NONE);
    CU_ASSERT_EQUAL(config_check("cleanup.policy", "delete"), KAFKA_NONE);

    CU_ASSERT_EQUAL(config_check("retention.ms", "soon"), KAFKA_INVALID_CONFIG);
    CU_ASSERT_EQUAL(config_check("segment.bytes", "-5"), KAFKA_INVALID_CONFIG);
    CU_ASSERT_EQUAL(config_check("no.such.key", "1"), KAFKA_INVALID_CONFIG);
    CU_ASSERT_EQUAL(config_check("min.insync.replicas", "0"), KAFKA_INVALID_CONFIG);
    CU_ASSERT_EQUAL(config_check("min.insync.replicas", "2x"), KAFKA_INVALID_CONFIG);
    CU_ASSERT_EQUAL(config_check("cleanup.policy", "compact"), KAFKA_INVALID_CONFIG);
    CU_ASSERT_EQUAL(config_check("retention.ms", NULL), KAFKA_INVALID_CONFIG);
}

static void test_log_error_codes(void)
{
    CU_ASSERT_EQUAL(log_err_kafka_error(LOG_OK), KAFKA_NONE);
    CU_ASSERT_EQUAL(log_err_kafka_error(LOG_ERR_BAD_MAGIC), KAFKA_UNSUPPORTED_FOR_MESSAGE_FORMAT);
    CU_ASSERT_EQUAL(log_err_kafka_error(LOG_ERR_BAD_CRC), KAFKA_CORRUPT_MESSAGE);
    CU_ASSERT_EQUAL(log_err_kafka_error(LOG_ERR_BAD_LENGTH), KAFKA_CORRUPT_MESSAGE);
    CU_ASSERT_EQUAL(log_err_kafka_error(LOG_ERR_BAD_COUNT), KAFKA_INVALID_RECORD);
    CU_ASSERT_EQUAL(log_err_kafka_error(LOG_ERR_CONTROL_BATCH), KAFKA_INVALID_RECORD);
    CU_ASSERT_EQUAL(log_err_kafka_error(LOG_ERR_TOO_LARGE), KAFKA_MESSAGE_TOO_LARGE);
    CU_ASSERT_EQUAL(log_err_kafka_error(LOG_ERR_OUT_OF_RANGE), KAFKA_OFFSET_OUT_OF_RANGE);
    CU_ASSERT_EQUAL(log_err_kafka_error(LOG_ERR_IO), KAFKA_KAFKA_STORAGE_ERROR);
    CU_ASSERT_EQUAL(log_err_kafka_error(LOG_ERR_GAP), KAFKA_UNKNOWN_SERVER_ERROR);
}

static void test_leader_epochs(void)
{
    CU_ASSERT_EQUAL(api_check_leader_epoch(-1, 7), KAFKA_NONE);
    CU_ASSERT_EQUAL(api_check_leader_epoch(7, 7), KAFKA_NONE);
    CU_ASSERT_EQUAL(api_check_leader_epoch(6, 7), KAFKA_FENCED_LEADER_EPOCH);
    CU_ASSERT_EQUAL(api_check_leader_epoch(8, 7), KAFKA_UNKNOWN_LEADER_EPOCH);
    CU_ASSERT_EQUAL(api_check_leader_epoch(0, 0), KAFKA_NONE);
}

void api_validate_suite(void)
{
    CU_pSuite s = CU_add_suite("api_validate", NULL, NULL);
    CU_add_test(s, "topic names", test_topic_names);
    CU_add_test(s, "topic configs", test_topic_configs);
    CU_add_test(s, "log error codes", test_log_error_codes);
    CU_add_test(s, "leader epochs", test_leader_epochs);
}
