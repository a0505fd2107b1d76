/* The replication token bucket (broker/replica/replica_throttle.c): off by
 * default (Kafka's Long.MAX_VALUE), a second's burst, overdraft paid back
 * in time, refill capped, and the wait until bytes may go again. */
#include <CUnit/Basic.h>
#include <stdint.h>

#include "replica_throttle.h"

void replica_throttle_suite(void);

static void test_unthrottled(void)
{
    replica_throttle_t t;
    replica_throttle_init(&t, INT64_MAX, 0);
    CU_ASSERT_FALSE(replica_throttle_enabled(&t));
    replica_throttle_consume(&t, 1 << 30, 0);
    CU_ASSERT_TRUE(replica_throttle_allows(&t, 0));
    CU_ASSERT_EQUAL(replica_throttle_wait_ms(&t, 0), 0);
    replica_throttle_init(&t, 0, 0);
    CU_ASSERT_FALSE(replica_throttle_enabled(&t));
}

static void test_burst_then_overdraft(void)
{
    replica_throttle_t t;
    replica_throttle_init(&t, 1000, 0); /* 1000 bytes/s, 1000 bytes of burst */
    CU_ASSERT_TRUE(replica_throttle_enabled(&t));
    CU_ASSERT_TRUE(replica_throttle_allows(&t, 0));
    replica_throttle_consume(&t, 999, 0);
    CU_ASSERT_TRUE(replica_throttle_allows(&t, 0)); /* one byte left */
    replica_throttle_consume(&t, 2001, 0);          /* 2000 overdrawn */
    CU_ASSERT_FALSE(replica_throttle_allows(&t, 0));
    CU_ASSERT_FALSE(replica_throttle_allows(&t, 1999));
    int64_t wait = replica_throttle_wait_ms(&t, 1999); /* 1 byte still owed */
    CU_ASSERT(wait >= 2 && wait <= 3);
    CU_ASSERT_FALSE(replica_throttle_allows(&t, 2000)); /* exactly paid back: 0 bytes */
    CU_ASSERT_TRUE(replica_throttle_allows(&t, 2002));
}

static void test_refill_capped(void)
{
    replica_throttle_t t;
    replica_throttle_init(&t, 500, 0);
    replica_throttle_consume(&t, 500, 0);
    /* An hour idle gives one second's worth, not an hour's. */
    CU_ASSERT_TRUE(replica_throttle_allows(&t, 3600 * 1000));
    replica_throttle_consume(&t, 501, 3600 * 1000);
    CU_ASSERT_FALSE(replica_throttle_allows(&t, 3600 * 1000));
    /* Time going backwards (another clock) refills nothing. */
    CU_ASSERT_FALSE(replica_throttle_allows(&t, 0));
}

void replica_throttle_suite(void)
{
    CU_pSuite s = CU_add_suite("replica_throttle", NULL, NULL);
    CU_add_test(s, "unthrottled", test_unthrottled);
    CU_add_test(s, "burst then overdraft", test_burst_then_overdraft);
    CU_add_test(s, "refill capped", test_refill_capped);
}
