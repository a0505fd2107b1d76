/* The reassignment znode payloads: a topic assignment's adding/removing
 * replicas and reassignment epoch (with older payloads, which have none,
 * still decodable), and /admin/reassign_partitions. */
#include <CUnit/Basic.h>
#include <stdlib.h>
#include <string.h>

#include "coord_internal.h"
#include "coord_test.h"

/* One partition with the given lists, encoded. */
static uint8_t *encode_one(int32_t *replicas, int32_t n, int32_t *adding, int32_t nadding,
                           int32_t *removing, int32_t nremoving, int32_t epoch, size_t *len)
{
    int32_t *reps[] = {replicas}, *adds[] = {adding}, *rems[] = {removing};
    int32_t nreps[] = {n}, nadds[] = {nadding}, nrems[] = {nremoving}, epochs[] = {epoch};
    zk_assignment_t a = {.npartitions = 1,
                         .replicas = reps,
                         .nreplicas = nreps,
                         .adding = adds,
                         .nadding = nadds,
                         .removing = rems,
                         .nremoving = nrems,
                         .reassign_epoch = epochs};
    memset(a.topic_id, 0x5a, 16);
    return znode_encode_assignment(&a, len);
}

static void test_assignment_reassignment_round_trip(void)
{
    int32_t replicas[] = {4, 2, 1}, adding[] = {4}, removing[] = {1};
    size_t len;
    uint8_t *buf = encode_one(replicas, 3, adding, 1, removing, 1, 7, &len);
    zk_assignment_t out;
    char err[160];
    CU_ASSERT_EQUAL_FATAL(znode_decode_assignment(buf, len, &out, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(out.nreplicas[0], 3);
    CU_ASSERT_EQUAL(out.nadding[0], 1);
    CU_ASSERT_EQUAL(out.adding[0][0], 4);
    CU_ASSERT_EQUAL(out.nremoving[0], 1);
    CU_ASSERT_EQUAL(out.removing[0][0], 1);
    CU_ASSERT_EQUAL(out.reassign_epoch[0], 7);
    zk_assignment_clear(&out);
    free(buf);
}

static void test_assignment_without_reassignment_fields(void)
{
    /* An encoder given no adding/removing arrays writes what a broker from
     * before reassignment wrote; it decodes to empty lists. */
    int32_t r0[] = {1, 2};
    int32_t *reps[] = {r0};
    int32_t nreps[] = {2};
    zk_assignment_t a = {.npartitions = 1, .replicas = reps, .nreplicas = nreps};
    size_t len;
    uint8_t *buf = znode_encode_assignment(&a, &len);
    zk_assignment_t out;
    char err[160];
    CU_ASSERT_EQUAL_FATAL(znode_decode_assignment(buf, len, &out, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(out.nadding[0], 0);
    CU_ASSERT_EQUAL(out.nremoving[0], 0);
    CU_ASSERT_EQUAL(out.reassign_epoch[0], 0);
    CU_ASSERT_PTR_NOT_NULL(out.adding[0]);
    zk_assignment_clear(&out);
    free(buf);
}

static void expect_refused(uint8_t *buf, const size_t *len, const char *why)
{
    zk_assignment_t out;
    char err[160] = "";
    CU_ASSERT_EQUAL(znode_decode_assignment(buf, *len, &out, err, sizeof(err)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, why));
    free(buf);
}

static void test_assignment_refuses_inconsistent_reassignment(void)
{
    int32_t replicas[] = {1, 2, 3}, outsider[] = {9}, both[] = {2}, all[] = {1, 2, 3},
            dup[] = {3, 3};
    size_t len;
    expect_refused(encode_one(replicas, 3, outsider, 1, NULL, 0, 0, &len), &len, "not a replica");
    expect_refused(encode_one(replicas, 3, NULL, 0, outsider, 1, 0, &len), &len, "not a replica");
    expect_refused(encode_one(replicas, 3, both, 1, both, 1, 0, &len), &len, "also removed");
    expect_refused(encode_one(replicas, 3, NULL, 0, all, 3, 0, &len), &len, "every replica");
    expect_refused(encode_one(replicas, 3, all, 3, NULL, 0, 0, &len), &len, "no original");
    expect_refused(encode_one(replicas, 3, dup, 2, NULL, 0, 0, &len), &len, "twice");
    expect_refused(encode_one(replicas, 3, NULL, 0, NULL, 0, -1, &len), &len, "epoch");
}

static void test_reassign_request_round_trip(void)
{
    int32_t r0[] = {1, 2, 4}, r1[] = {3};
    zk_reassign_target_t in[] = {{.topic = "a", .partition = 0, .replicas = r0, .nreplicas = 3},
                                 {.topic = "b", .partition = 5, .replicas = r1, .nreplicas = 1}};
    size_t len, n;
    uint8_t *buf = znode_encode_reassign_request(in, 2, &len);
    zk_reassign_target_t *out;
    char err[160];
    CU_ASSERT_EQUAL_FATAL(znode_decode_reassign_request(buf, len, &out, &n, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_STRING_EQUAL(out[0].topic, "a");
    CU_ASSERT_EQUAL(out[0].nreplicas, 3);
    CU_ASSERT_EQUAL(out[0].replicas[2], 4);
    CU_ASSERT_STRING_EQUAL(out[1].topic, "b");
    CU_ASSERT_EQUAL(out[1].partition, 5);
    zk_reassign_targets_free(out, n);
    for (size_t cut = 0; cut < len; cut++)
        if (znode_decode_reassign_request(buf, cut, &out, &n, err, sizeof(err)) == 0)
            zk_reassign_targets_free(out, n);
    free(buf);
    /* An entry without a topic is refused. */
    zk_reassign_target_t bad[] = {{.topic = "", .partition = 0, .replicas = r1, .nreplicas = 1}};
    buf = znode_encode_reassign_request(bad, 1, &len);
    CU_ASSERT_EQUAL(znode_decode_reassign_request(buf, len, &out, &n, err, sizeof(err)), -1);
    CU_ASSERT_PTR_NULL(out);
    free(buf);
    /* Garbage is not a message. */
    uint8_t junk[] = {0xff, 0xff, 0xff};
    CU_ASSERT_EQUAL(znode_decode_reassign_request(junk, sizeof(junk), &out, &n, err, sizeof(err)),
                    -1);
}

/* ---- Kafka's ReplicaAssignment.reassignTo ---- */

static void expect_ids(const int32_t *got, int32_t n, const int32_t *want, int32_t nwant)
{
    CU_ASSERT_EQUAL_FATAL(n, nwant);
    for (int32_t i = 0; i < n; i++)
        CU_ASSERT_EQUAL(got[i], want[i]);
}

static void test_reassign_to(void)
{
    /* Start: [1,2,3] to [4,5,1]. */
    int32_t r[] = {1, 2, 3}, t1[] = {4, 5, 1};
    md_partition_t p = {.replicas = r, .nreplicas = 3};
    coord_replica_set_t s;
    coord_reassign_to(&p, t1, 3, &s);
    expect_ids(s.full, s.nfull, (int32_t[]){4, 5, 1, 2, 3}, 5);
    expect_ids(s.adding, s.nadding, (int32_t[]){4, 5}, 2);
    expect_ids(s.removing, s.nremoving, (int32_t[]){2, 3}, 2);
    /* Re-targeted while in progress: the original stays [1,2,3]. */
    md_partition_t q = {.replicas = s.full,
                        .nreplicas = s.nfull,
                        .adding = s.adding,
                        .nadding = s.nadding,
                        .removing = s.removing,
                        .nremoving = s.nremoving};
    int32_t t2[] = {6, 1};
    coord_replica_set_t s2;
    coord_reassign_to(&q, t2, 2, &s2);
    expect_ids(s2.full, s2.nfull, (int32_t[]){6, 1, 2, 3}, 4);
    expect_ids(s2.adding, s2.nadding, (int32_t[]){6}, 1);
    expect_ids(s2.removing, s2.nremoving, (int32_t[]){2, 3}, 2);
    coord_replica_set_clear(&s2);
    /* Cancelled: back to the original set, nothing added or removed (in
     * the order of the replica list, as Kafka's). */
    int32_t orig[] = {1, 2, 3};
    coord_reassign_to(&q, orig, 3, &s2);
    expect_ids(s2.full, s2.nfull, orig, 3);
    CU_ASSERT_EQUAL(s2.nadding, 0);
    CU_ASSERT_EQUAL(s2.nremoving, 0);
    coord_replica_set_clear(&s2);
    coord_replica_set_clear(&s);
    /* A reorder only: nothing added or removed. */
    int32_t t3[] = {3, 1, 2};
    coord_reassign_to(&p, t3, 3, &s);
    expect_ids(s.full, s.nfull, t3, 3);
    CU_ASSERT_EQUAL(s.nadding + s.nremoving, 0);
    coord_replica_set_clear(&s);
}

void coord_add_reassign_suite(void)
{
    CU_add_test(CU_add_suite("coord_reassign_to", NULL, NULL), "Kafka's reassignTo",
                test_reassign_to);
    CU_pSuite s = CU_add_suite("coord_reassign", NULL, NULL);
    CU_add_test(s, "assignment reassignment round trip", test_assignment_reassignment_round_trip);
    CU_add_test(s, "assignment without reassignment fields",
                test_assignment_without_reassignment_fields);
    CU_add_test(s, "assignment refuses inconsistent reassignment",
                test_assignment_refuses_inconsistent_reassignment);
    CU_add_test(s, "reassign request round trip", test_reassign_request_round_trip);
}
