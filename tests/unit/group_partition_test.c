/* group_partition_for: Kafka's abs(String.hashCode(id)) % partitions. The
 * expected values are Java's own (java.lang.String.hashCode on a JVM), so a
 * group is coordinated by the same partition on Vltava as on Kafka. */
#include <CUnit/Basic.h>
#include <string.h>

#include "group_coordinator.h"

static int32_t partition_of(const char *id, int32_t n)
{
    return group_partition_for((const uint8_t *)id, strlen(id), n);
}

static void test_java_string_hash(void)
{
    CU_ASSERT_EQUAL(partition_of("my-group", 50), 12); /* hashCode -1906497762 */
    CU_ASSERT_EQUAL(partition_of("g1", 50), 42);       /* 3242 */
    CU_ASSERT_EQUAL(partition_of("", 50), 0);          /* 0 */
    CU_ASSERT_EQUAL(partition_of("console-consumer-12345", 50), 6);
    CU_ASSERT_EQUAL(partition_of("g1", 1), 0);
    CU_ASSERT_EQUAL(partition_of("g1", 7), 3242 % 7);
}

/* Non-ASCII ids hash as UTF-16 code units: two for a code point above
 * U+FFFF (a surrogate pair). */
static void test_utf16_code_units(void)
{
    CU_ASSERT_EQUAL(partition_of("gr\xc3\xbcppe", 50), 12); /* "grüppe": -1233264812 */
    CU_ASSERT_EQUAL(partition_of("\xf0\x9f\x98\x80"
                                 "emoji",
                                 50),
                    27); /* U+1F600: -1233692477 */
}

/* Kafka's Utils.abs maps Integer.MIN_VALUE to 0 (Math.abs would stay
 * negative). */
static void test_int_min_hash(void)
{
    CU_ASSERT_EQUAL(partition_of("polygenelubricants", 50), 0); /* hashCode INT32_MIN */
    CU_ASSERT_EQUAL(partition_of("GydZG_", 7), 0);              /* INT32_MIN too */
}

/* Invalid UTF-8 decodes to U+FFFD per bad byte, as Java's decoder does. */
static void test_invalid_utf8(void)
{
    int32_t bad = partition_of("a\xff"
                               "b",
                               1000003);
    int32_t expect = (int32_t)((31u * (31u * 'a' + 0xfffdu) + 'b') % 1000003u);
    CU_ASSERT_EQUAL(bad, expect);
    CU_ASSERT(partition_of("\xe2\x82", 50) >= 0); /* truncated sequence: no read past the end */
}

void group_partition_suite(void);
void group_partition_suite(void)
{
    CU_pSuite s = CU_add_suite("group_partition", NULL, NULL);
    CU_add_test(s, "Java String.hashCode", test_java_string_hash);
    CU_add_test(s, "UTF-16 code units", test_utf16_code_units);
    CU_add_test(s, "INT32_MIN hash", test_int_min_hash);
    CU_add_test(s, "invalid UTF-8", test_invalid_utf8);
}
