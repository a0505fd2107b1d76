/* test_replica: the pure rules of replication — follower progress and
 * "caught up", the high watermark over the ISR, the ISR the leader wants,
 * and the KIP-279 truncation offset. */
#include <CUnit/Basic.h>
#include <stdlib.h>

#include "replica_logic.h"

void producer_state_suite(void);
void replica_throttle_suite(void);

static void test_progress_caught_up(void)
{
    replica_progress_t p;
    replica_progress_reset(&p, 2, 1000);
    CU_ASSERT_EQUAL(p.leo, -1);
    CU_ASSERT_EQUAL(p.caught_up_ms, 1000);
    /* behind, with no earlier fetch: not caught up */
    replica_progress_on_fetch(&p, 5, 10, 2000);
    CU_ASSERT_EQUAL(p.leo, 5);
    CU_ASSERT_EQUAL(p.caught_up_ms, 1000);
    /* now has all the leader had at its previous fetch: caught up then */
    replica_progress_on_fetch(&p, 10, 15, 2500);
    CU_ASSERT_EQUAL(p.caught_up_ms, 2000);
    /* has everything: caught up now */
    replica_progress_on_fetch(&p, 15, 15, 3000);
    CU_ASSERT_EQUAL(p.caught_up_ms, 3000);
    /* falls behind what the leader had: stays at the last time */
    replica_progress_on_fetch(&p, 15, 40, 3500);
    replica_progress_on_fetch(&p, 20, 60, 9000);
    CU_ASSERT_EQUAL(p.caught_up_ms, 3000);
    CU_ASSERT_EQUAL(p.leo, 20);
}

static void test_high_watermark(void)
{
    replica_progress_t prog[2];
    replica_progress_reset(&prog[0], 2, 0);
    replica_progress_reset(&prog[1], 3, 0);
    int32_t isr[] = {1, 2, 3};
    /* unknown follower log ends hold the high watermark */
    CU_ASSERT_EQUAL(replica_isr_high_watermark(1, 50, isr, 3, prog, 2), -1);
    replica_progress_on_fetch(&prog[0], 40, 50, 1);
    CU_ASSERT_EQUAL(replica_isr_high_watermark(1, 50, isr, 3, prog, 2), -1);
    replica_progress_on_fetch(&prog[1], 30, 50, 1);
    CU_ASSERT_EQUAL(replica_isr_high_watermark(1, 50, isr, 3, prog, 2), 30);
    /* a replica outside the ISR does not count */
    CU_ASSERT_EQUAL(replica_isr_high_watermark(1, 50, isr, 2, prog, 2), 40);
    /* the leader alone: its log end */
    CU_ASSERT_EQUAL(replica_isr_high_watermark(1, 50, isr, 1, prog, 2), 50);
    /* an ISR member without progress (not a tracked replica) holds it */
    int32_t odd[] = {1, 9};
    CU_ASSERT_EQUAL(replica_isr_high_watermark(1, 50, odd, 2, prog, 2), -1);
}

static void test_desired_isr(void)
{
    int32_t replicas[] = {1, 2, 3};
    int32_t isr[] = {1, 2, 3};
    replica_progress_t prog[2];
    replica_progress_reset(&prog[0], 2, 0);
    replica_progress_reset(&prog[1], 3, 0);
    int32_t out[3];
    /* within the lag of the reset: everyone stays */
    CU_ASSERT_EQUAL(replica_desired_isr(1, replicas, 3, isr, 3, prog, 2, 0, 0, 1000, 900, out), 3);
    /* 2 caught up at 1500, 3 never: 3 leaves after the lag */
    replica_progress_on_fetch(&prog[0], 10, 10, 1500);
    int32_t n = replica_desired_isr(1, replicas, 3, isr, 3, prog, 2, 10, 0, 1000, 2001, out);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(out[0], 1);
    CU_ASSERT_EQUAL(out[1], 2);
    /* 3 outside the ISR rejoins only once it reaches the high watermark and
     * the epoch's start, and caught up recently */
    int32_t small[] = {1, 2};
    replica_progress_on_fetch(&prog[1], 5, 10, 2100);
    CU_ASSERT_EQUAL(replica_desired_isr(1, replicas, 3, small, 2, prog, 2, 10, 0, 1000, 2200, out),
                    2);
    replica_progress_on_fetch(&prog[1], 10, 10, 2300);
    CU_ASSERT_EQUAL(replica_desired_isr(1, replicas, 3, small, 2, prog, 2, 10, 12, 1000, 2400, out),
                    2); /* below the epoch start offset 12 */
    CU_ASSERT_EQUAL(replica_desired_isr(1, replicas, 3, small, 2, prog, 2, 10, 0, 1000, 2400, out),
                    3);
    /* the leader itself always stays */
    CU_ASSERT_EQUAL(replica_desired_isr(1, replicas, 3, isr, 3, prog, 2, 10, 0, 1, 99999, out), 1);
    CU_ASSERT_EQUAL(out[0], 1);
}

static void test_same_set(void)
{
    int32_t a[] = {1, 2, 3}, b[] = {3, 1, 2}, c[] = {1, 2};
    CU_ASSERT_TRUE(replica_same_set(a, 3, b, 3));
    CU_ASSERT_FALSE(replica_same_set(a, 3, c, 2));
    CU_ASSERT_FALSE(replica_same_set(c, 2, a, 3));
    int32_t d[] = {1, 4};
    CU_ASSERT_FALSE(replica_same_set(c, 2, d, 2));
}

static void test_truncation_offset(void)
{
    /* same epoch, the leader's ends earlier: cut to the leader's end */
    CU_ASSERT_EQUAL(replica_truncation_offset(3, 100, 3, 120, 120), 100);
    /* the leader has the epoch further than we do: our end of it */
    CU_ASSERT_EQUAL(replica_truncation_offset(3, 150, 3, 120, 130), 120);
    /* we lack the leader's epoch: our largest below it ends earlier */
    CU_ASSERT_EQUAL(replica_truncation_offset(3, 100, 2, 80, 130), 80);
    /* we have no epoch <= the leader's: everything goes */
    CU_ASSERT_EQUAL(replica_truncation_offset(3, 100, -1, -1, 130), 0);
    /* the leader has no epoch <= ours: to its start */
    CU_ASSERT_EQUAL(replica_truncation_offset(-1, 40, -1, -1, 130), 40);
    /* never above our log end */
    CU_ASSERT_EQUAL(replica_truncation_offset(-1, 400, -1, -1, 130), 130);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return EXIT_FAILURE;
    CU_pSuite s = CU_add_suite("replica_logic", NULL, NULL);
    CU_add_test(s, "progress and caught up", test_progress_caught_up);
    CU_add_test(s, "high watermark over the ISR", test_high_watermark);
    CU_add_test(s, "desired ISR", test_desired_isr);
    CU_add_test(s, "same set", test_same_set);
    CU_add_test(s, "KIP-279 truncation offset", test_truncation_offset);
    producer_state_suite();
    replica_throttle_suite();
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
