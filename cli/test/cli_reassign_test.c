/* CUnit suite for `vltava cluster rebalance`'s plan (cli_rebalance_plan):
 * a fourth broker gets its share with the fewest moves, the preferred
 * leaders spread, replicas of a broker gone move to live ones, a balanced
 * cluster and a replication factor equal to the broker count move nothing,
 * and no partition ever gets a broker twice. The command itself runs against
 * real brokers in tests/integration/test_reassignment.py. */
#include <CUnit/Basic.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "unit_run.h"

#define MAXP 64

struct plan {
    int32_t replicas[MAXP][3];
    struct cli_plan_partition parts[MAXP];
    int n;
};

/* n partitions of rf replicas over brokers 1..nb, Kafka's round robin. */
static void plan_init(struct plan *pl, int n, int rf, int nb)
{
    memset(pl, 0, sizeof(*pl));
    pl->n = n;
    for (int i = 0; i < n; i++) {
        for (int r = 0; r < rf; r++)
            pl->replicas[i][r] = (i + r) % nb + 1;
        pl->parts[i].replicas = pl->replicas[i];
        pl->parts[i].nreplicas = rf;
    }
}

static void count(const struct plan *pl, int nb, int *replicas, int *leaders)
{
    memset(replicas, 0, sizeof(int) * (size_t)(nb + 1));
    memset(leaders, 0, sizeof(int) * (size_t)(nb + 1));
    for (int i = 0; i < pl->n; i++) {
        const struct cli_plan_partition *p = &pl->parts[i];
        leaders[p->replicas[0]]++;
        for (int r = 0; r < p->nreplicas; r++) {
            CU_ASSERT(p->replicas[r] >= 1 && p->replicas[r] <= nb);
            replicas[p->replicas[r]]++;
            for (int o = 0; o < r; o++)
                CU_ASSERT_NOT_EQUAL(p->replicas[o], p->replicas[r]); /* never twice */
        }
    }
}

static void test_fourth_broker_gets_its_share(void)
{
    struct plan pl;
    plan_init(&pl, 12, 3, 3); /* 36 replicas, 12 per broker */
    const int32_t brokers[] = {1, 2, 3, 4};
    int changed = cli_rebalance_plan(brokers, 4, pl.parts, pl.n);
    int replicas[5], leaders[5];
    count(&pl, 4, replicas, leaders);
    for (int b = 1; b <= 4; b++) {
        CU_ASSERT_EQUAL(replicas[b], 9);
        CU_ASSERT_EQUAL(leaders[b], 3);
    }
    /* 9 replicas must move to broker 4; leaders move by reordering: a
     * partition changes for one or both, never more than 12. */
    int moved = 0;
    for (int i = 0; i < pl.n; i++)
        for (int r = 0; r < 3; r++)
            moved += pl.parts[i].replicas[r] == 4;
    CU_ASSERT_EQUAL(moved, 9);
    CU_ASSERT(changed >= 9 && changed <= 12);
}

static void test_balanced_moves_nothing(void)
{
    struct plan pl;
    plan_init(&pl, 12, 2, 4);
    const int32_t brokers[] = {4, 3, 2, 1}; /* any order */
    CU_ASSERT_EQUAL(cli_rebalance_plan(brokers, 4, pl.parts, pl.n), 0);
    plan_init(&pl, 5, 3, 3); /* rf == brokers: nowhere to go */
    CU_ASSERT_EQUAL(cli_rebalance_plan(brokers + 1, 3, pl.parts, pl.n), 0);
}

static void test_replicas_of_a_gone_broker_move(void)
{
    struct plan pl;
    plan_init(&pl, 8, 2, 4); /* broker 4 holds 4 replicas */
    const int32_t brokers[] = {1, 2, 3};
    int changed = cli_rebalance_plan(brokers, 3, pl.parts, pl.n);
    int replicas[5], leaders[5];
    count(&pl, 4, replicas, leaders);
    CU_ASSERT_EQUAL(replicas[4], 0);
    CU_ASSERT(replicas[1] >= 5 && replicas[1] <= 6);
    CU_ASSERT(replicas[2] >= 5 && replicas[2] <= 6);
    CU_ASSERT(replicas[3] >= 5 && replicas[3] <= 6);
    CU_ASSERT(changed >= 4);
}

static void test_uneven_leaders_reordered_only(void)
{
    /* Replicas balanced but every partition prefers broker 1. */
    struct plan pl;
    memset(&pl, 0, sizeof(pl));
    pl.n = 3;
    for (int i = 0; i < 3; i++) {
        pl.replicas[i][0] = 1;
        pl.replicas[i][1] = 2;
        pl.replicas[i][2] = 3;
        pl.parts[i].replicas = pl.replicas[i];
        pl.parts[i].nreplicas = 3;
    }
    const int32_t brokers[] = {1, 2, 3};
    CU_ASSERT_EQUAL(cli_rebalance_plan(brokers, 3, pl.parts, pl.n), 2);
    int replicas[4], leaders[4];
    count(&pl, 3, replicas, leaders);
    for (int b = 1; b <= 3; b++)
        CU_ASSERT_EQUAL(leaders[b], 1);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return EXIT_FAILURE;
    CU_pSuite s = CU_add_suite("cli_reassign", NULL, NULL);
    CU_add_test(s, "a fourth broker gets its share", test_fourth_broker_gets_its_share);
    CU_add_test(s, "balanced: nothing moves", test_balanced_moves_nothing);
    CU_add_test(s, "replicas of a gone broker move", test_replicas_of_a_gone_broker_move);
    CU_add_test(s, "uneven leaders: reordered only", test_uneven_leaders_reordered_only);
    return unit_run_registered();
}
