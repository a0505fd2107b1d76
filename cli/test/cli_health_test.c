/* CUnit suite for `vltava cluster health`'s pure parts: the verdict drawn
 * from a Metadata answer (each reason on its own and together, the order of
 * the reasons, brokers down found through the replica sets), and the
 * DescribeConfigs v0 decoder that tells --local which broker answered
 * (with every truncation). The command itself runs against real brokers in
 * tests/integration/test_cli_health.py. */
#include <CUnit/Basic.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kafka_codec.h"
#include "unit_run.h"

/* ---- a Metadata answer built by hand ---- */

#define MAX_PARTS 8

struct fixture {
    rd_kafka_metadata_broker_t brokers[4];
    rd_kafka_metadata_partition_t parts[MAX_PARTS];
    int32_t replicas[MAX_PARTS][3];
    int32_t isrs[MAX_PARTS][3];
    rd_kafka_metadata_topic_t topics[2];
    struct rd_kafka_metadata md;
};

static void fixture_brokers(struct fixture *f, const int32_t *ids, int n)
{
    memset(f, 0, sizeof(*f));
    for (int i = 0; i < n; i++) {
        f->brokers[i].id = ids[i];
        f->brokers[i].host = (char *)"127.0.0.1";
        f->brokers[i].port = 9091 + ids[i];
    }
    f->md.brokers = f->brokers;
    f->md.broker_cnt = n;
    f->md.topics = f->topics;
}

/* Adds partition `id` of the last topic (a new topic when topic != NULL). */
static void fixture_partition(struct fixture *f, const char *topic, int32_t id, int32_t leader,
                              const int32_t *replicas, int nreplicas, const int32_t *isr, int nisr)
{
    int k = 0;
    for (int t = 0; t < f->md.topic_cnt; t++)
        k += f->topics[t].partition_cnt;
    CU_ASSERT_FATAL(k < MAX_PARTS);
    if (topic != NULL) {
        f->topics[f->md.topic_cnt].topic = (char *)topic;
        f->topics[f->md.topic_cnt].partitions = &f->parts[k];
        f->md.topic_cnt++;
    }
    rd_kafka_metadata_topic_t *t = &f->topics[f->md.topic_cnt - 1];
    memcpy(f->replicas[k], replicas, (size_t)nreplicas * sizeof(int32_t));
    memcpy(f->isrs[k], isr, (size_t)nisr * sizeof(int32_t));
    f->parts[k] = (rd_kafka_metadata_partition_t){
        .id = id,
        .leader = leader,
        .replicas = f->replicas[k],
        .replica_cnt = nreplicas,
        .isrs = f->isrs[k],
        .isr_cnt = nisr,
    };
    t->partition_cnt++;
}

static const int32_t all3[] = {1, 2, 3};

static void test_healthy(void)
{
    struct fixture f;
    const int32_t live[] = {3, 1, 2};
    fixture_brokers(&f, live, 3);
    fixture_partition(&f, "orders", 0, 1, all3, 3, all3, 3);
    fixture_partition(&f, NULL, 1, 2, all3, 3, all3, 3);
    struct cli_health h;
    cli_health_assess(&f.md, 2, &h);
    const char *reasons[CLI_HEALTH_MAX_REASONS];
    CU_ASSERT_EQUAL(cli_health_reasons(&h, reasons), 0);
    CU_ASSERT_EQUAL(h.controller_id, 2);
    CU_ASSERT_EQUAL(h.nlive, 3);
    CU_ASSERT_EQUAL(h.live[0], 1); /* sorted */
    CU_ASSERT_EQUAL(h.live[2], 3);
    CU_ASSERT_EQUAL(h.ndown, 0);
    CU_ASSERT_EQUAL(h.nleaderless, 0);
    CU_ASSERT_EQUAL(h.nunder_replicated, 0);
    cli_health_free(&h);
}

static void test_broker_down(void)
{
    struct fixture f;
    const int32_t live[] = {1, 2};
    const int32_t isr12[] = {1, 2};
    fixture_brokers(&f, live, 2);
    fixture_partition(&f, "orders", 0, 1, all3, 3, isr12, 2);
    fixture_partition(&f, NULL, 1, 2, all3, 3, isr12, 2);
    /* Broker 3 led this one: a leader that is not live is no leader. */
    const int32_t isr3[] = {3};
    fixture_partition(&f, "audit", 0, 3, all3, 3, isr3, 1);
    struct cli_health h;
    cli_health_assess(&f.md, 1, &h);
    const char *reasons[CLI_HEALTH_MAX_REASONS];
    CU_ASSERT_EQUAL_FATAL(cli_health_reasons(&h, reasons), 3);
    CU_ASSERT_STRING_EQUAL(reasons[0], "nodes_down");
    CU_ASSERT_STRING_EQUAL(reasons[1], "leaderless_partitions");
    CU_ASSERT_STRING_EQUAL(reasons[2], "under_replicated_partitions");
    CU_ASSERT_EQUAL_FATAL(h.ndown, 1); /* once, though three partitions name it */
    CU_ASSERT_EQUAL(h.down[0], 3);
    CU_ASSERT_EQUAL_FATAL(h.nleaderless, 1);
    CU_ASSERT_STRING_EQUAL(h.leaderless[0].topic, "audit");
    CU_ASSERT_EQUAL_FATAL(h.nunder_replicated, 3);
    CU_ASSERT_STRING_EQUAL(h.under_replicated[0].topic, "orders");
    CU_ASSERT_EQUAL(h.under_replicated[1].p->id, 1);
    CU_ASSERT_STRING_EQUAL(h.under_replicated[2].topic, "audit");
    cli_health_free(&h);
}

static void test_no_controller_and_offline(void)
{
    struct fixture f;
    const int32_t live[] = {1, 2, 3};
    fixture_brokers(&f, live, 3);
    fixture_partition(&f, "orders", 0, -1, all3, 3, all3, 3); /* offline, ISR kept */
    struct cli_health h;
    cli_health_assess(&f.md, -1, &h);
    const char *reasons[CLI_HEALTH_MAX_REASONS];
    CU_ASSERT_EQUAL_FATAL(cli_health_reasons(&h, reasons), 2);
    CU_ASSERT_STRING_EQUAL(reasons[0], "no_controller");
    CU_ASSERT_STRING_EQUAL(reasons[1], "leaderless_partitions");
    CU_ASSERT_EQUAL(h.nunder_replicated, 0);
    cli_health_free(&h);
}

static void test_empty_cluster(void)
{
    struct fixture f;
    fixture_brokers(&f, NULL, 0);
    struct cli_health h;
    cli_health_assess(&f.md, -1, &h);
    const char *reasons[CLI_HEALTH_MAX_REASONS];
    CU_ASSERT_EQUAL_FATAL(cli_health_reasons(&h, reasons), 1);
    CU_ASSERT_STRING_EQUAL(reasons[0], "no_controller");
    CU_ASSERT_EQUAL(h.nlive, 0);
    cli_health_free(&h);
}

/* ---- DescribeConfigs v0 answers ---- */

#define CID 0x1234

struct result {
    int16_t error;
    int8_t type;
    const char *name;
    bool with_config;
};

static void build_answer(kwriter_t *w, int32_t cid, const struct result *r, int n)
{
    kw_init(w, 128);
    kw_i32(w, cid);
    kw_i32(w, 0); /* throttle */
    kw_array_v(w, false, n);
    for (int i = 0; i < n; i++) {
        kw_i16(w, r[i].error);
        kw_string_v(w, false, r[i].error ? "Broker is not this broker" : NULL, -1);
        kw_i8(w, r[i].type);
        kw_string_v(w, false, r[i].name, -1);
        kw_array_v(w, false, r[i].with_config ? 1 : 0);
        if (r[i].with_config) {
            kw_string_v(w, false, "broker.id", -1);
            kw_string_v(w, false, r[i].name, -1);
            kw_i8(w, 1); /* read_only */
            kw_i8(w, 0); /* is_default */
            kw_i8(w, 0); /* is_sensitive */
        }
    }
}

static void test_describe_self(void)
{
    const struct result rs[] = {
        {42, 4, "1", false},
        {0, 4, "2", true},
        {42, 4, "3", false},
    };
    kwriter_t w;
    build_answer(&w, CID, rs, 3);
    int32_t self = 99;
    CU_ASSERT_TRUE(cli_decode_describe_configs_self(w.buf, w.len, CID, &self));
    CU_ASSERT_EQUAL(self, 2);
    CU_ASSERT_FALSE(cli_decode_describe_configs_self(w.buf, w.len, CID + 1, &self));

    /* Every truncation is refused, never read past. */
    for (size_t len = 0; len < w.len; len++) {
        uint8_t *copy = malloc(len + 1);
        memcpy(copy, w.buf, len);
        CU_ASSERT_FALSE(cli_decode_describe_configs_self(copy, len, CID, &self));
        free(copy);
    }
    kw_free(&w);
}

static void test_describe_nobody(void)
{
    /* Errors everywhere, a topic resource, a name that is no id: none is
     * the broker itself. */
    const struct result rs[] = {
        {42, 4, "1", false},
        {0, 2, "7", true},
        {0, 4, "seven", true},
        {0, 4, "", false},
    };
    kwriter_t w;
    build_answer(&w, CID, rs, 4);
    int32_t self = 99;
    CU_ASSERT_TRUE(cli_decode_describe_configs_self(w.buf, w.len, CID, &self));
    CU_ASSERT_EQUAL(self, -1);
    kw_free(&w);

    build_answer(&w, CID, NULL, 0);
    CU_ASSERT_TRUE(cli_decode_describe_configs_self(w.buf, w.len, CID, &self));
    CU_ASSERT_EQUAL(self, -1);
    kw_free(&w);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return EXIT_FAILURE;
    CU_pSuite s = CU_add_suite("cli_health", NULL, NULL);
    CU_add_test(s, "healthy", test_healthy);
    CU_add_test(s, "broker down", test_broker_down);
    CU_add_test(s, "no controller, offline partition", test_no_controller_and_offline);
    CU_add_test(s, "empty cluster", test_empty_cluster);
    CU_add_test(s, "describe configs: self", test_describe_self);
    CU_add_test(s, "describe configs: nobody", test_describe_nobody);
    return unit_run_registered();
}
