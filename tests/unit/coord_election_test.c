/* The pure parts of leader_election.c: Kafka's ElectLeaders decision per
 * partition (coord_decide_election) and the automatic rebalance's choice
 * of partitions (coord_rebalance_candidates). */
#include <CUnit/CUnit.h>
#include <stdlib.h>

#include "coord_internal.h"
#include "coord_test.h"
#include "kafka_errors.h"

static bool live_in(void *arg, int32_t id)
{
    const int32_t *live = arg; /* -1 terminated */
    for (; *live >= 0; live++)
        if (*live == id)
            return true;
    return false;
}

static md_partition_t partition(int32_t leader, int32_t *replicas, int32_t nreplicas, int32_t *isr,
                                int32_t nisr)
{
    return (md_partition_t){.leader = leader,
                            .leader_epoch = 4,
                            .replicas = replicas,
                            .nreplicas = nreplicas,
                            .isr = isr,
                            .nisr = nisr};
}

static void test_preferred_not_needed(void)
{
    int32_t replicas[] = {1, 2, 3}, isr[] = {1, 2, 3}, live[] = {1, 2, 3, -1};
    md_partition_t p = partition(1, replicas, 3, isr, 3);
    zk_partition_state_t next = {.leader = 77};
    CU_ASSERT_EQUAL(coord_decide_election(&p, COORDINATOR_ELECTION_PREFERRED, live_in, live, &next),
                    KAFKA_ELECTION_NOT_NEEDED);
    CU_ASSERT_EQUAL(next.leader, 77); /* untouched */
}

static void test_preferred_elected_keeps_isr(void)
{
    int32_t replicas[] = {1, 2, 3}, isr[] = {2, 3, 1}, live[] = {1, 2, 3, -1};
    md_partition_t p = partition(2, replicas, 3, isr, 3);
    zk_partition_state_t next;
    CU_ASSERT_EQUAL_FATAL(
        coord_decide_election(&p, COORDINATOR_ELECTION_PREFERRED, live_in, live, &next),
        KAFKA_NONE);
    CU_ASSERT_EQUAL(next.leader, 1);
    CU_ASSERT_EQUAL(next.leader_epoch, 5);
    CU_ASSERT_EQUAL_FATAL(next.nisr, 3);
    CU_ASSERT_EQUAL(next.isr[0], 2);
    CU_ASSERT_EQUAL(next.isr[1], 3);
    CU_ASSERT_EQUAL(next.isr[2], 1);
    zk_partition_state_clear(&next);
}

static void test_preferred_not_available(void)
{
    int32_t replicas[] = {1, 2, 3}, isr[] = {2, 3}, live[] = {1, 2, 3, -1};
    md_partition_t p = partition(2, replicas, 3, isr, 2);
    zk_partition_state_t next;
    /* live but out of sync */
    CU_ASSERT_EQUAL(coord_decide_election(&p, COORDINATOR_ELECTION_PREFERRED, live_in, live, &next),
                    KAFKA_PREFERRED_LEADER_NOT_AVAILABLE);
    /* in sync but not live */
    int32_t isr_all[] = {1, 2, 3}, live_23[] = {2, 3, -1};
    p = partition(2, replicas, 3, isr_all, 3);
    CU_ASSERT_EQUAL(
        coord_decide_election(&p, COORDINATOR_ELECTION_PREFERRED, live_in, live_23, &next),
        KAFKA_PREFERRED_LEADER_NOT_AVAILABLE);
    /* an offline partition whose preferred replica is live and in sync */
    p = partition(-1, replicas, 3, isr_all, 3);
    CU_ASSERT_EQUAL_FATAL(
        coord_decide_election(&p, COORDINATOR_ELECTION_PREFERRED, live_in, live, &next),
        KAFKA_NONE);
    CU_ASSERT_EQUAL(next.leader, 1);
    zk_partition_state_clear(&next);
}

static void test_unclean_live_leader_not_needed(void)
{
    int32_t replicas[] = {1, 2}, isr[] = {2}, live[] = {2, -1};
    md_partition_t p = partition(2, replicas, 2, isr, 1);
    zk_partition_state_t next;
    CU_ASSERT_EQUAL(coord_decide_election(&p, COORDINATOR_ELECTION_UNCLEAN, live_in, live, &next),
                    KAFKA_ELECTION_NOT_NEEDED);
}

static void test_unclean_prefers_live_isr(void)
{
    /* leader 1 is gone; 3 is in the ISR and live: a clean choice, the ISR
     * keeps its live members */
    int32_t replicas[] = {1, 2, 3}, isr[] = {1, 3}, live[] = {2, 3, -1};
    md_partition_t p = partition(1, replicas, 3, isr, 2);
    zk_partition_state_t next;
    CU_ASSERT_EQUAL_FATAL(
        coord_decide_election(&p, COORDINATOR_ELECTION_UNCLEAN, live_in, live, &next), KAFKA_NONE);
    CU_ASSERT_EQUAL(next.leader, 3);
    CU_ASSERT_EQUAL(next.leader_epoch, 5);
    CU_ASSERT_EQUAL_FATAL(next.nisr, 1);
    CU_ASSERT_EQUAL(next.isr[0], 3);
    zk_partition_state_clear(&next);
}

static void test_unclean_outside_isr(void)
{
    int32_t replicas[] = {1, 2, 3}, isr[] = {1}, live[] = {3, 2, -1};
    md_partition_t p = partition(-1, replicas, 3, isr, 1);
    zk_partition_state_t next;
    CU_ASSERT_EQUAL_FATAL(
        coord_decide_election(&p, COORDINATOR_ELECTION_UNCLEAN, live_in, live, &next), KAFKA_NONE);
    CU_ASSERT_EQUAL(next.leader, 2); /* the first live replica, in replica order */
    CU_ASSERT_EQUAL_FATAL(next.nisr, 1);
    CU_ASSERT_EQUAL(next.isr[0], 2);
    zk_partition_state_clear(&next);
}

static void test_unclean_no_eligible(void)
{
    int32_t replicas[] = {1}, isr[] = {1}, live[] = {2, 3, -1};
    md_partition_t p = partition(-1, replicas, 1, isr, 1);
    zk_partition_state_t next;
    CU_ASSERT_EQUAL(coord_decide_election(&p, COORDINATOR_ELECTION_UNCLEAN, live_in, live, &next),
                    KAFKA_ELIGIBLE_LEADERS_NOT_AVAILABLE);
}

static void test_rebalance_threshold(void)
{
    /* Broker 1 is the preferred replica of 10 partitions; broker 2 leads
     * k of them. 10 %: 1 of 10 is not above, 2 of 10 is. */
    int32_t replicas[10][2], isr[2] = {1, 2}, live[] = {1, 2, -1};
    md_partition_t parts[10];
    md_topic_t topic = {.name = "t", .partitions = parts, .npartitions = 10};
    cluster_metadata_t md = {.topics = &topic, .ntopics = 1};
    for (int i = 0; i < 10; i++) {
        replicas[i][0] = 1;
        replicas[i][1] = 2;
        parts[i] = partition(1, replicas[i], 2, isr, 2);
        parts[i].id = i;
    }
    size_t n = 99;
    parts[3].leader = 2;
    coord_tp_t *c = coord_rebalance_candidates(&md, NULL, 10, live_in, live, &n);
    CU_ASSERT_EQUAL(n, 0);
    free(c);
    parts[7].leader = 2;
    c = coord_rebalance_candidates(&md, NULL, 10, live_in, live, &n);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_EQUAL(c[0].topic, 0);
    CU_ASSERT_EQUAL(c[0].partition, 3);
    CU_ASSERT_EQUAL(c[1].partition, 7);
    free(c);
    /* 0 %: any partition away from its preferred replica */
    parts[7].leader = 1;
    c = coord_rebalance_candidates(&md, NULL, 0, live_in, live, &n);
    CU_ASSERT_EQUAL(n, 1);
    free(c);
    /* a skipped topic (being deleted) counts for nothing */
    bool skip = true;
    c = coord_rebalance_candidates(&md, &skip, 0, live_in, live, &n);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_PTR_NULL(c);
}

static void test_rebalance_needs_live_in_sync_preferred(void)
{
    int32_t replicas[2][2] = {{1, 2}, {1, 2}}, isr_2[] = {2}, isr_12[] = {1, 2};
    int32_t live[] = {1, 2, -1}, live_2[] = {2, -1};
    md_partition_t parts[2] = {partition(2, replicas[0], 2, isr_2, 1),
                               partition(2, replicas[1], 2, isr_12, 2)};
    md_topic_t topic = {.name = "t", .partitions = parts, .npartitions = 2};
    cluster_metadata_t md = {.topics = &topic, .ntopics = 1};
    size_t n;
    /* partition 0: broker 1 out of sync; partition 1: eligible */
    coord_tp_t *c = coord_rebalance_candidates(&md, NULL, 10, live_in, live, &n);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    CU_ASSERT_EQUAL(c[0].partition, 1);
    free(c);
    /* broker 1 not live: nothing */
    c = coord_rebalance_candidates(&md, NULL, 10, live_in, live_2, &n);
    CU_ASSERT_EQUAL(n, 0);
    free(c);
}

void coord_add_election_suite(void)
{
    CU_pSuite s = CU_add_suite("coord_election", NULL, NULL);
    CU_add_test(s, "preferred: already leading, not needed", test_preferred_not_needed);
    CU_add_test(s, "preferred: elected, ISR kept, epoch + 1", test_preferred_elected_keeps_isr);
    CU_add_test(s, "preferred: not live or not in sync", test_preferred_not_available);
    CU_add_test(s, "unclean: live leader, not needed", test_unclean_live_leader_not_needed);
    CU_add_test(s, "unclean: a live ISR member first", test_unclean_prefers_live_isr);
    CU_add_test(s, "unclean: outside the ISR, ISR of one", test_unclean_outside_isr);
    CU_add_test(s, "unclean: no live replica", test_unclean_no_eligible);
    CU_add_test(s, "rebalance: above the percentage only", test_rebalance_threshold);
    CU_add_test(s, "rebalance: preferred live and in sync",
                test_rebalance_needs_live_in_sync_preferred);
}
