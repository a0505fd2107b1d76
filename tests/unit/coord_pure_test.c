/* Pure coordinator logic: replica assignment, leader election, znode
 * payload codecs (round trips and corrupt payloads). */
#include <CUnit/CUnit.h>
#include <stdlib.h>
#include <string.h>

#include "coord_internal.h"
#include "coord_test.h"
#include "xalloc.h"

/* ---- assignment ---- */

static int count_leaders(const int32_t *out, int32_t partitions, int32_t rf, int32_t id)
{
    int n = 0;
    for (int32_t p = 0; p < partitions; p++)
        n += out[p * rf] == id;
    return n;
}

static void test_assign_balanced_rf1(void)
{
    assign_broker_t b[] = {{3, NULL}, {1, NULL}, {2, NULL}};
    int32_t out[12];
    CU_ASSERT_EQUAL(coord_assign_replicas(b, 3, 0, 12, 1, 0, out), 0);
    for (int32_t id = 1; id <= 3; id++)
        CU_ASSERT_EQUAL(count_leaders(out, 12, 1, id), 4);
    /* leaders rotate: consecutive partitions on different brokers */
    for (int p = 1; p < 12; p++)
        CU_ASSERT_NOT_EQUAL(out[p], out[p - 1]);
}

static void test_assign_rf3_distinct_and_balanced(void)
{
    assign_broker_t b[] = {{1, NULL}, {2, NULL}, {3, NULL}, {4, NULL}, {5, NULL}};
    enum { P = 20, RF = 3 };
    int32_t out[P * RF];
    CU_ASSERT_EQUAL(coord_assign_replicas(b, 5, 0, P, RF, 2, out), 0);
    int replicas_on[6] = {0};
    for (int p = 0; p < P; p++) {
        for (int j = 0; j < RF; j++) {
            CU_ASSERT(out[p * RF + j] >= 1 && out[p * RF + j] <= 5);
            replicas_on[out[p * RF + j]]++;
            for (int k = 0; k < j; k++)
                CU_ASSERT_NOT_EQUAL(out[p * RF + j], out[p * RF + k]);
        }
    }
    for (int id = 1; id <= 5; id++) {
        CU_ASSERT_EQUAL(count_leaders(out, P, RF, id), 4);
        CU_ASSERT_EQUAL(replicas_on[id], 12);
    }
}

static void test_assign_rotation_start(void)
{
    assign_broker_t b[] = {{1, NULL}, {2, NULL}, {3, NULL}};
    int32_t a[3], c[3];
    CU_ASSERT_EQUAL(coord_assign_replicas(b, 3, 0, 1, 1, 0, a), 0);
    CU_ASSERT_EQUAL(coord_assign_replicas(b, 3, 0, 1, 1, 1, c), 0);
    CU_ASSERT_EQUAL(a[0], 1);
    CU_ASSERT_EQUAL(c[0], 2);
    /* extending a topic continues the rotation */
    int32_t all[6], tail[3];
    CU_ASSERT_EQUAL(coord_assign_replicas(b, 3, 0, 6, 1, 1, all), 0);
    CU_ASSERT_EQUAL(coord_assign_replicas(b, 3, 3, 3, 1, 1, tail), 0);
    CU_ASSERT_EQUAL(memcmp(all + 3, tail, sizeof(tail)), 0);
}

static void test_assign_rack_aware(void)
{
    assign_broker_t b[] = {{1, "a"}, {2, "a"}, {3, "b"}, {4, "b"}, {5, "c"}, {6, "c"}};
    enum { P = 12, RF = 3 };
    int32_t out[P * RF];
    CU_ASSERT_EQUAL(coord_assign_replicas(b, 6, 0, P, RF, 0, out), 0);
    for (int p = 0; p < P; p++) {
        const char *racks[RF];
        for (int j = 0; j < RF; j++) {
            racks[j] = b[out[p * RF + j] - 1].rack;
            for (int k = 0; k < j; k++)
                CU_ASSERT_STRING_NOT_EQUAL(racks[j], racks[k]);
        }
    }
    for (int id = 1; id <= 6; id++)
        CU_ASSERT_EQUAL(count_leaders(out, P, RF, id), 2);
    /* more replicas than racks: racks repeat only once all are used */
    int32_t two[2 * 2];
    assign_broker_t b2[] = {{1, "a"}, {2, "a"}, {3, "b"}};
    CU_ASSERT_EQUAL(coord_assign_replicas(b2, 3, 0, 2, 2, 0, two), 0);
    for (int p = 0; p < 2; p++)
        CU_ASSERT_STRING_NOT_EQUAL(b2[two[p * 2] - 1].rack, b2[two[p * 2 + 1] - 1].rack);
}

static void test_assign_refuses_bad_rf(void)
{
    assign_broker_t b[] = {{1, NULL}, {2, NULL}};
    int32_t out[8];
    CU_ASSERT_EQUAL(coord_assign_replicas(b, 2, 0, 2, 3, 0, out), -1);
    CU_ASSERT_EQUAL(coord_assign_replicas(b, 2, 0, 2, 0, 0, out), -1);
    CU_ASSERT_EQUAL(coord_assign_replicas(b, 0, 0, 2, 1, 0, out), -1);
    CU_ASSERT_EQUAL(coord_assign_replicas(b, 2, 0, 2, 2, 0, out), 0);
}

/* ---- election ---- */

static bool live_set(void *arg, int32_t id)
{
    const int32_t *live = arg; /* -1 terminated */
    for (; *live >= 0; live++)
        if (*live == id)
            return true;
    return false;
}

static void test_elect_from_live_isr(void)
{
    int32_t replicas[] = {1, 2, 3}, isr[] = {3, 2};
    int32_t live[] = {2, 3, -1};
    bool unclean;
    /* preferred order among live ISR members: 2 before 3 */
    CU_ASSERT_EQUAL(coord_elect_leader(replicas, 3, isr, 2, live_set, live, false, &unclean), 2);
    CU_ASSERT_FALSE(unclean);
    int32_t live1[] = {1, 2, 3, -1};
    CU_ASSERT_EQUAL(coord_elect_leader(replicas, 3, replicas, 3, live_set, live1, false, &unclean),
                    1);
}

static void test_elect_offline_without_unclean(void)
{
    int32_t replicas[] = {1, 2, 3}, isr[] = {1};
    int32_t live[] = {2, 3, -1};
    bool unclean;
    CU_ASSERT_EQUAL(coord_elect_leader(replicas, 3, isr, 1, live_set, live, false, &unclean), -1);
    CU_ASSERT_FALSE(unclean);
}

static void test_elect_unclean_picks_live_replica(void)
{
    int32_t replicas[] = {1, 2, 3}, isr[] = {1};
    int32_t live[] = {3, 9, -1};
    bool unclean;
    CU_ASSERT_EQUAL(coord_elect_leader(replicas, 3, isr, 1, live_set, live, true, &unclean), 3);
    CU_ASSERT_TRUE(unclean);
    int32_t none[] = {9, -1};
    CU_ASSERT_EQUAL(coord_elect_leader(replicas, 3, isr, 1, live_set, none, true, &unclean), -1);
}

/* ---- codecs ---- */

static void test_codec_broker_round_trip(void)
{
    md_broker_t b = {.id = 7, .host = "h.example", .port = 9092, .rpc_port = 9192, .rack = "r1"};
    size_t len;
    uint8_t *buf = znode_encode_broker(&b, &len);
    md_broker_t out;
    char err[160];
    CU_ASSERT_EQUAL_FATAL(znode_decode_broker(buf, len, &out, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(out.id, 7);
    CU_ASSERT_STRING_EQUAL(out.host, "h.example");
    CU_ASSERT_EQUAL(out.port, 9092);
    CU_ASSERT_EQUAL(out.rpc_port, 9192);
    CU_ASSERT_STRING_EQUAL(out.rack, "r1");
    CU_ASSERT_STRING_EQUAL(out.rpc_host, "h.example"); /* unset: the Kafka host */
    md_broker_clear(&out);
    free(buf);
    b.rpc_host = "replication.example";
    buf = znode_encode_broker(&b, &len);
    CU_ASSERT_EQUAL_FATAL(znode_decode_broker(buf, len, &out, err, sizeof(err)), 0);
    CU_ASSERT_STRING_EQUAL(out.host, "h.example");
    CU_ASSERT_STRING_EQUAL(out.rpc_host, "replication.example");
    md_broker_clear(&out);
    free(buf);
    b.rpc_host = NULL;
    b.rack = NULL;
    buf = znode_encode_broker(&b, &len);
    CU_ASSERT_EQUAL_FATAL(znode_decode_broker(buf, len, &out, err, sizeof(err)), 0);
    CU_ASSERT_PTR_NULL(out.rack);
    md_broker_clear(&out);
    /* truncated: every proper prefix that cuts a field is refused */
    int refused = 0;
    for (size_t cut = 1; cut < len; cut++) {
        if (znode_decode_broker(buf, cut, &out, err, sizeof(err)) != 0)
            refused++;
        else
            md_broker_clear(&out); /* a prefix can be a valid, shorter message */
    }
    CU_ASSERT(refused > 0);
    free(buf);
    /* a port out of range */
    md_broker_t bad = {.id = 1, .host = "h", .port = 70000, .rpc_port = 1};
    buf = znode_encode_broker(&bad, &len);
    CU_ASSERT_EQUAL(znode_decode_broker(buf, len, &out, err, sizeof(err)), -1);
    free(buf);
    const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    CU_ASSERT_EQUAL(znode_decode_broker(garbage, sizeof(garbage), &out, err, sizeof(err)), -1);
    CU_ASSERT(strlen(err) > 0);
    /* an empty payload has no host */
    CU_ASSERT_EQUAL(znode_decode_broker(garbage, 0, &out, err, sizeof(err)), -1);
}

/* Named listeners: every endpoint goes through the registration; one
 * without endpoints (an older broker's) reads as a PLAINTEXT endpoint at
 * host:port; duplicate or invalid endpoints are refused. */
static void test_codec_broker_endpoints(void)
{
    md_endpoint_t eps[] = {
        {.listener = "INTERNAL",
         .host = "broker1",
         .port = 29092,
         .security_protocol = "PLAINTEXT"},
        {.listener = "EXTERNAL",
         .host = "127.0.0.1",
         .port = 9092,
         .security_protocol = "PLAINTEXT"},
    };
    md_broker_t b = {.id = 1,
                     .host = "broker1",
                     .port = 29092,
                     .rpc_port = 19092,
                     .endpoints = eps,
                     .nendpoints = 2};
    size_t len;
    uint8_t *buf = znode_encode_broker(&b, &len);
    md_broker_t out;
    char err[160];
    CU_ASSERT_EQUAL_FATAL(znode_decode_broker(buf, len, &out, err, sizeof(err)), 0);
    free(buf);
    CU_ASSERT_STRING_EQUAL(out.host, "broker1");
    CU_ASSERT_EQUAL(out.port, 29092);
    CU_ASSERT_EQUAL_FATAL(out.nendpoints, 2);
    CU_ASSERT_STRING_EQUAL(out.endpoints[1].listener, "EXTERNAL");
    CU_ASSERT_STRING_EQUAL(out.endpoints[1].host, "127.0.0.1");
    CU_ASSERT_EQUAL(out.endpoints[1].port, 9092);
    CU_ASSERT_STRING_EQUAL(out.endpoints[1].security_protocol, "PLAINTEXT");
    const md_endpoint_t *e = md_broker_endpoint(&out, "INTERNAL");
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_STRING_EQUAL(e->host, "broker1");
    CU_ASSERT_EQUAL(e->port, 29092);
    CU_ASSERT_PTR_NULL(md_broker_endpoint(&out, "PLAINTEXT"));
    md_broker_clear(&out);

    b.nendpoints = 0;
    buf = znode_encode_broker(&b, &len);
    CU_ASSERT_EQUAL_FATAL(znode_decode_broker(buf, len, &out, err, sizeof(err)), 0);
    free(buf);
    CU_ASSERT_EQUAL_FATAL(out.nendpoints, 1);
    e = md_broker_endpoint(&out, "PLAINTEXT");
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_STRING_EQUAL(e->host, "broker1");
    CU_ASSERT_EQUAL(e->port, 29092);
    md_broker_clear(&out);

    md_endpoint_t dup[] = {eps[0], eps[0]};
    b.endpoints = dup;
    b.nendpoints = 2;
    buf = znode_encode_broker(&b, &len);
    CU_ASSERT_EQUAL(znode_decode_broker(buf, len, &out, err, sizeof(err)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "INTERNAL twice"));
    free(buf);
    md_endpoint_t bad_port = {.listener = "X", .host = "h", .port = 0, .security_protocol = ""};
    b.endpoints = &bad_port;
    b.nendpoints = 1;
    buf = znode_encode_broker(&b, &len);
    CU_ASSERT_EQUAL(znode_decode_broker(buf, len, &out, err, sizeof(err)), -1);
    free(buf);

    /* Registrations come from other brokers: names are 1..64 of
     * [A-Z0-9_-] (as the config writes them), hosts 1..255 characters,
     * protocols Kafka's. */
    char long_name[66], long_host[257];
    memset(long_name, 'A', 65);
    long_name[65] = '\0';
    memset(long_host, 'h', 256);
    long_host[256] = '\0';
    const struct {
        const char *listener, *host, *protocol, *reason;
    } bad[] = {
        {"", "h", "", "invalid listener name"},
        {"internal", "h", "", "invalid listener name"},
        {"IN TERNAL", "h", "", "invalid listener name"},
        {"IN\nX", "h", "", "invalid listener name"},
        {long_name, "h", "", "invalid listener name"},
        {"X", long_host, "", "invalid endpoint for listener X"},
        {"X", "", "", "invalid endpoint for listener X"},
        {"X", "h", "TLS", "invalid endpoint for listener X"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        md_endpoint_t one = {.listener = (char *)bad[i].listener,
                             .host = (char *)bad[i].host,
                             .port = 1,
                             .security_protocol = (char *)bad[i].protocol};
        b.endpoints = &one;
        buf = znode_encode_broker(&b, &len);
        err[0] = '\0';
        CU_ASSERT_EQUAL(znode_decode_broker(buf, len, &out, err, sizeof(err)), -1);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i].reason));
        free(buf);
    }
    /* The longest name and host pass. */
    long_name[64] = '\0';
    long_host[255] = '\0';
    md_endpoint_t longest = {
        .listener = long_name, .host = long_host, .port = 1, .security_protocol = "SSL"};
    b.endpoints = &longest;
    buf = znode_encode_broker(&b, &len);
    CU_ASSERT_EQUAL_FATAL(znode_decode_broker(buf, len, &out, err, sizeof(err)), 0);
    CU_ASSERT_STRING_EQUAL(out.endpoints[0].listener, long_name);
    md_broker_clear(&out);
    free(buf);
    /* So is the registration's own host. */
    b.nendpoints = 0;
    b.host = long_host;
    long_host[255] = 'h';
    buf = znode_encode_broker(&b, &len);
    CU_ASSERT_EQUAL(znode_decode_broker(buf, len, &out, err, sizeof(err)), -1);
    free(buf);
}

static void test_codec_assignment_round_trip(void)
{
    int32_t r0[] = {1, 2}, r1[] = {2, 3}, r2[] = {3, 1};
    int32_t *reps[] = {r0, r1, r2};
    int32_t nreps[] = {2, 2, 2};
    zk_assignment_t a = {.npartitions = 3, .replicas = reps, .nreplicas = nreps};
    for (int i = 0; i < 16; i++)
        a.topic_id[i] = (uint8_t)(i * 7);
    size_t len;
    uint8_t *buf = znode_encode_assignment(&a, &len);
    zk_assignment_t out;
    char err[160];
    CU_ASSERT_EQUAL_FATAL(znode_decode_assignment(buf, len, &out, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(out.npartitions, 3);
    CU_ASSERT_EQUAL(memcmp(out.topic_id, a.topic_id, 16), 0);
    for (int p = 0; p < 3; p++) {
        CU_ASSERT_EQUAL(out.nreplicas[p], 2);
        CU_ASSERT_EQUAL(memcmp(out.replicas[p], reps[p], 2 * sizeof(int32_t)), 0);
    }
    zk_assignment_clear(&out);
    for (size_t cut = 0; cut < len; cut++) {
        if (znode_decode_assignment(buf, cut, &out, err, sizeof(err)) == 0)
            zk_assignment_clear(&out); /* a prefix may still be a valid (smaller) message */
    }
    free(buf);
    /* duplicate replica */
    int32_t dup[] = {1, 1};
    int32_t *dreps[] = {dup};
    int32_t dn[] = {2};
    zk_assignment_t d = {.npartitions = 1, .replicas = dreps, .nreplicas = dn};
    buf = znode_encode_assignment(&d, &len);
    CU_ASSERT_EQUAL(znode_decode_assignment(buf, len, &out, err, sizeof(err)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "twice"));
    free(buf);
    /* no partitions at all */
    zk_assignment_t e = {.npartitions = 0};
    buf = znode_encode_assignment(&e, &len);
    CU_ASSERT_EQUAL(znode_decode_assignment(buf, len, &out, err, sizeof(err)), -1);
    free(buf);
}

static void test_codec_assignment_rejects_short_topic_id(void)
{
    /* field 1 (bytes) of length 15, then one partition */
    uint8_t buf[64];
    size_t n = 0;
    buf[n++] = 0x0a;
    buf[n++] = 15;
    memset(buf + n, 0xab, 15);
    n += 15;
    buf[n++] = 0x12; /* field 2, length-delimited */
    buf[n++] = 4;
    buf[n++] = 0x08; /* partition = 0 */
    buf[n++] = 0;
    buf[n++] = 0x10; /* replicas (unpacked) = 1 */
    buf[n++] = 1;
    zk_assignment_t out;
    char err[160];
    CU_ASSERT_EQUAL(znode_decode_assignment(buf, n, &out, err, sizeof(err)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "16"));
}

static void test_codec_partition_state(void)
{
    int32_t isr[] = {2, 1};
    zk_partition_state_t s = {
        .leader = 2, .leader_epoch = 5, .controller_epoch = 3, .isr = isr, .nisr = 2};
    size_t len;
    uint8_t *buf = znode_encode_partition_state(&s, &len);
    zk_partition_state_t out;
    char err[160];
    CU_ASSERT_EQUAL_FATAL(znode_decode_partition_state(buf, len, &out, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(out.leader, 2);
    CU_ASSERT_EQUAL(out.leader_epoch, 5);
    CU_ASSERT_EQUAL(out.controller_epoch, 3);
    CU_ASSERT_EQUAL(out.nisr, 2);
    CU_ASSERT_EQUAL(out.isr[0], 2);
    CU_ASSERT_EQUAL(out.isr[1], 1);
    zk_partition_state_clear(&out);
    free(buf);
    /* offline is legal, below -1 is not */
    s.leader = -1;
    buf = znode_encode_partition_state(&s, &len);
    CU_ASSERT_EQUAL(znode_decode_partition_state(buf, len, &out, err, sizeof(err)), 0);
    zk_partition_state_clear(&out);
    free(buf);
    /* hand-made: leader = -5 (varint of a negative int32 is 10 bytes) */
    uint8_t neg[] = {0x08, 0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    CU_ASSERT_EQUAL(znode_decode_partition_state(neg, sizeof(neg), &out, err, sizeof(err)), -1);
    /* wrong wire type for field 1 */
    uint8_t wt[] = {0x0a, 0x01, 0x00};
    CU_ASSERT_EQUAL(znode_decode_partition_state(wt, sizeof(wt), &out, err, sizeof(err)), -1);
}

static void test_codec_small_payloads(void)
{
    char err[160];
    size_t len;
    uint8_t *buf = znode_encode_controller(4, 123, &len);
    int32_t id = -1;
    CU_ASSERT_EQUAL(znode_decode_controller(buf, len, &id, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(id, 4);
    free(buf);
    buf = znode_encode_controller_epoch(9, &len);
    int32_t epoch = -1;
    CU_ASSERT_EQUAL(znode_decode_controller_epoch(buf, len, &epoch, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(epoch, 9);
    free(buf);
    char cid[23];
    coord_random_cluster_id(cid);
    CU_ASSERT_EQUAL(strlen(cid), 22);
    buf = znode_encode_cluster_id(cid, &len);
    char *back = NULL;
    CU_ASSERT_EQUAL(znode_decode_cluster_id(buf, len, &back, err, sizeof(err)), 0);
    CU_ASSERT_STRING_EQUAL(back, cid);
    free(back);
    free(buf);
    CU_ASSERT_EQUAL(znode_decode_cluster_id((const uint8_t *)"", 0, &back, err, sizeof(err)), -1);
    const char *keys[] = {"retention.ms", "segment.bytes"};
    const char *values[] = {"1000", "1048576"};
    buf = znode_encode_topic_config(keys, values, 2, &len);
    char **k, **v;
    size_t n;
    CU_ASSERT_EQUAL_FATAL(znode_decode_topic_config(buf, len, &k, &v, &n, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_STRING_EQUAL(k[1], "segment.bytes");
    CU_ASSERT_STRING_EQUAL(v[0], "1000");
    for (size_t i = 0; i < n; i++) {
        free(k[i]);
        free(v[i]);
    }
    free(k);
    free(v);
    free(buf);
    /* oversized payloads are refused before decoding */
    uint8_t *big = xcalloc(COORD_MAX_ZNODE_BYTES + 1, 1);
    CU_ASSERT_EQUAL(
        znode_decode_controller_epoch(big, COORD_MAX_ZNODE_BYTES + 1, &epoch, err, sizeof(err)),
        -1);
    free(big);
}

static void test_codec_producer_id_block(void)
{
    char err[160];
    size_t len;
    int64_t start = -1, end = -1;
    uint8_t *buf = znode_encode_producer_id_block(3, 1000, 1999, &len);
    CU_ASSERT_EQUAL(znode_decode_producer_id_block(buf, len, &start, &end, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(start, 1000);
    CU_ASSERT_EQUAL(end, 1999);
    free(buf);
    /* Ids beyond 32 bits survive the trip. */
    buf = znode_encode_producer_id_block(1, INT64_C(5000000000), INT64_C(5000000999), &len);
    CU_ASSERT_EQUAL(znode_decode_producer_id_block(buf, len, &start, &end, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(start, INT64_C(5000000000));
    CU_ASSERT_EQUAL(end, INT64_C(5000000999));
    free(buf);
    /* Not a block: an end before the start (a hand-written znode). */
    uint8_t backwards[] = {0x08, 0x01, 0x10, 0x0a, 0x18, 0x05}; /* broker 1, start 10, end 5 */
    CU_ASSERT_EQUAL(znode_decode_producer_id_block(backwards, sizeof(backwards), &start, &end, err,
                                                   sizeof(err)),
                    -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not a block"));
    uint8_t garbage[] = {0xff, 0xff, 0xff};
    CU_ASSERT_EQUAL(
        znode_decode_producer_id_block(garbage, sizeof(garbage), &start, &end, err, sizeof(err)),
        -1);
}

static void test_session_line(void)
{
    char passwd[16], back[16], line[COORD_SESSION_LINE_BYTES + 1], err[96];
    for (int i = 0; i < 16; i++)
        passwd[i] = (char)(i * 37 - 100);
    const int64_t id = 0x100000cb6100004;
    size_t n = coord_session_line_encode(id, passwd, line);
    CU_ASSERT_EQUAL(n, COORD_SESSION_LINE_BYTES);
    CU_ASSERT_EQUAL(strlen(line), n);
    CU_ASSERT_STRING_EQUAL(line, "vltava-zookeeper-session 1 0100000cb6100004 "
                                 "9cc1e60b30557a9fc4e90e33587da2c7\n");
    int64_t got = 0;
    CU_ASSERT_EQUAL_FATAL(coord_session_line_decode(line, n, &got, back, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(got, id);
    CU_ASSERT_EQUAL(memcmp(back, passwd, 16), 0);
    /* Every shorter prefix, a longer buffer, each byte broken: refused. */
    for (size_t cut = 0; cut < n; cut++)
        CU_ASSERT_EQUAL(coord_session_line_decode(line, cut, &got, back, err, sizeof(err)), -1);
    char longer[COORD_SESSION_LINE_BYTES + 2];
    memcpy(longer, line, n);
    longer[n] = '\n';
    CU_ASSERT_EQUAL(coord_session_line_decode(longer, n + 1, &got, back, err, sizeof(err)), -1);
    for (size_t at = 0; at < n; at++) {
        char bad[COORD_SESSION_LINE_BYTES + 1];
        memcpy(bad, line, n);
        bad[at] = '#';
        CU_ASSERT_EQUAL(coord_session_line_decode(bad, n, &got, back, err, sizeof(err)), -1);
    }
    coord_session_line_encode(0, passwd, line);
    CU_ASSERT_EQUAL(coord_session_line_decode(line, n, &got, back, err, sizeof(err)), -1);
    CU_ASSERT_STRING_EQUAL(err, "session id 0");
}

void coord_add_pure_suite(void)
{
    CU_pSuite s = CU_add_suite("coord_pure", NULL, NULL);
    CU_add_test(s, "assignment: rf 1 leaders balanced", test_assign_balanced_rf1);
    CU_add_test(s, "assignment: rf 3 distinct and balanced", test_assign_rf3_distinct_and_balanced);
    CU_add_test(s, "assignment: rotation start", test_assign_rotation_start);
    CU_add_test(s, "assignment: rack aware", test_assign_rack_aware);
    CU_add_test(s, "assignment: refuses rf > brokers", test_assign_refuses_bad_rf);
    CU_add_test(s, "election: live ISR", test_elect_from_live_isr);
    CU_add_test(s, "election: offline without unclean", test_elect_offline_without_unclean);
    CU_add_test(s, "election: unclean picks live replica", test_elect_unclean_picks_live_replica);
    CU_add_test(s, "codec: broker registration", test_codec_broker_round_trip);
    CU_add_test(s, "codec: broker endpoints", test_codec_broker_endpoints);
    CU_add_test(s, "codec: topic assignment", test_codec_assignment_round_trip);
    CU_add_test(s, "codec: short topic id refused", test_codec_assignment_rejects_short_topic_id);
    CU_add_test(s, "codec: partition state", test_codec_partition_state);
    CU_add_test(s, "codec: controller, epoch, cluster id, config", test_codec_small_payloads);
    CU_add_test(s, "codec: producer id block", test_codec_producer_id_block);
    CU_add_test(s, "session file line", test_session_line);
}
