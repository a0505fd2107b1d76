/* Controlled shutdown's decision (coord_shutdown_next_state): who leads a
 * partition and who stays in its ISR while brokers shut down. */
#include <CUnit/Basic.h>
#include <stdint.h>

#include "coord_internal.h"
#include "coord_test.h"

/* Brokers by id (0..15): bit set = live / leaving. */
typedef struct sets {
    uint32_t live, leaving;
} sets_t;

static bool is_live(void *arg, int32_t id)
{
    return id >= 0 && id < 16 && (((const sets_t *)arg)->live >> id & 1u);
}

static bool is_leaving(void *arg, int32_t id)
{
    return id >= 0 && id < 16 && (((const sets_t *)arg)->leaving >> id & 1u);
}

static md_partition_t partition(int32_t leader, int32_t *replicas, int32_t nreplicas, int32_t *isr,
                                int32_t nisr)
{
    md_partition_t p = {.leader = leader, .leader_epoch = 4};
    p.replicas = replicas;
    p.nreplicas = nreplicas;
    p.isr = isr;
    p.nisr = nisr;
    return p;
}

static void test_leader_moves_to_first_eligible_in_assignment_order(void)
{
    int32_t replicas[] = {1, 3, 2}, isr[] = {2, 1, 3};
    md_partition_t p = partition(1, replicas, 3, isr, 3);
    sets_t s = {.live = 0xe, .leaving = 1u << 1};
    int32_t leader = -9, out[3], n = -9;
    CU_ASSERT_TRUE(coord_shutdown_next_state(&p, is_live, is_leaving, &s, &leader, out, &n));
    CU_ASSERT_EQUAL(leader, 3); /* 3 before 2: assignment order, not ISR order */
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(out[0], 2);
    CU_ASSERT_EQUAL(out[1], 3);
}

static void test_skips_dead_out_of_isr_and_leaving_replicas(void)
{
    int32_t replicas[] = {1, 2, 3, 4}, isr[] = {1, 2, 4};
    md_partition_t p = partition(1, replicas, 4, isr, 3);
    /* 2 leaves too, 3 is live but not in sync, 4 is the one left */
    sets_t s = {.live = 0x1e, .leaving = (1u << 1) | (1u << 2)};
    int32_t leader, out[3], n;
    CU_ASSERT_TRUE(coord_shutdown_next_state(&p, is_live, is_leaving, &s, &leader, out, &n));
    CU_ASSERT_EQUAL(leader, 4);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(out[0], 4);
    /* 4 dead as well: nobody can take it, the leaving broker keeps it */
    s.live = 0x0e;
    leader = -9;
    CU_ASSERT_FALSE(coord_shutdown_next_state(&p, is_live, is_leaving, &s, &leader, out, &n));
    CU_ASSERT_EQUAL(leader, -9);
}

static void test_sole_isr_member_and_rf1_remain(void)
{
    int32_t replicas[] = {1, 2, 3}, isr[] = {1};
    md_partition_t p = partition(1, replicas, 3, isr, 1);
    sets_t s = {.live = 0xe, .leaving = 1u << 1};
    int32_t leader, out[3], n;
    CU_ASSERT_FALSE(coord_shutdown_next_state(&p, is_live, is_leaving, &s, &leader, out, &n));
    int32_t one[] = {1};
    p = partition(1, one, 1, one, 1);
    CU_ASSERT_FALSE(coord_shutdown_next_state(&p, is_live, is_leaving, &s, &leader, out, &n));
}

static void test_follower_leaves_the_isr_leader_stays(void)
{
    int32_t replicas[] = {1, 2, 3}, isr[] = {1, 2, 3};
    md_partition_t p = partition(1, replicas, 3, isr, 3);
    sets_t s = {.live = 0xe, .leaving = 1u << 2};
    int32_t leader, out[3], n;
    CU_ASSERT_TRUE(coord_shutdown_next_state(&p, is_live, is_leaving, &s, &leader, out, &n));
    CU_ASSERT_EQUAL(leader, 1);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(out[0], 1);
    CU_ASSERT_EQUAL(out[1], 3);
}

static void test_nothing_to_do(void)
{
    int32_t replicas[] = {1, 2, 3}, isr[] = {1, 3};
    md_partition_t p = partition(1, replicas, 3, isr, 2);
    /* 2 leaves but is neither leader nor in the ISR */
    sets_t s = {.live = 0xe, .leaving = 1u << 2};
    int32_t leader, out[3], n;
    CU_ASSERT_FALSE(coord_shutdown_next_state(&p, is_live, is_leaving, &s, &leader, out, &n));
    /* offline partition: its ISR is who may lead again, left alone */
    int32_t isr2[] = {2, 3};
    p = partition(-1, replicas, 3, isr2, 2);
    CU_ASSERT_FALSE(coord_shutdown_next_state(&p, is_live, is_leaving, &s, &leader, out, &n));
    /* dead leader: the usual election's */
    p = partition(1, replicas, 3, isr2, 2);
    s.live = 0xc;
    CU_ASSERT_FALSE(coord_shutdown_next_state(&p, is_live, is_leaving, &s, &leader, out, &n));
}

static void test_leader_outside_its_isr_is_left_alone(void)
{
    /* a hand-edited state: leader 2 not in its ISR, 3 leaving */
    int32_t replicas[] = {1, 2, 3}, isr[] = {1, 3};
    md_partition_t p = partition(2, replicas, 3, isr, 2);
    sets_t s = {.live = 0xe, .leaving = 1u << 3};
    int32_t leader, out[3], n;
    CU_ASSERT_FALSE(coord_shutdown_next_state(&p, is_live, is_leaving, &s, &leader, out, &n));
}

void coord_add_shutdown_suite(void)
{
    CU_pSuite s = CU_add_suite("coord_shutdown", NULL, NULL);
    CU_add_test(s, "leader: first eligible in assignment order",
                test_leader_moves_to_first_eligible_in_assignment_order);
    CU_add_test(s, "leader: skips dead, out-of-sync, leaving",
                test_skips_dead_out_of_isr_and_leaving_replicas);
    CU_add_test(s, "remaining: sole ISR member, rf 1", test_sole_isr_member_and_rf1_remain);
    CU_add_test(s, "follower: leaves the ISR", test_follower_leaves_the_isr_leader_stays);
    CU_add_test(s, "nothing to do", test_nothing_to_do);
    CU_add_test(s, "leader outside its ISR", test_leader_outside_its_isr_is_left_alone);
}
