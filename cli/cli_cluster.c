/* vltava cluster info: brokers with endpoints and racks, controller id and
 * cluster id.
 *
 * librdkafka 2.0.2's metadata API does not expose racks, so this command also
 * sends one Metadata request itself (cli_rawmeta.c). Brokers, cluster id and
 * controller come from librdkafka; the raw answer only contributes racks. */
#include "cli.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_output.h"
#include "xalloc.h"

static const char info_usage[] =
    "Usage: vltava cluster info\n"
    "\n"
    "Shows the cluster id, the controller id and every live broker with its\n"
    "Kafka endpoint and rack. Global options and exit codes: see vltava --help.\n";

/* The rack the raw answer gives for broker id, or NULL. */
static const char *rack_of(const struct cli_raw_metadata *raw, int32_t id)
{
    for (int32_t i = 0; i < raw->nbrokers; i++)
        if (raw->brokers[i].id == id)
            return raw->brokers[i].rack;
    return NULL;
}

static int cmp_broker(const void *a, const void *b)
{
    const rd_kafka_metadata_broker_t *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

int cli_cmd_cluster(int argc, char **argv, struct cli_globals *g)
{
    struct cli_parser p;
    cli_parser_init(&p, argc, argv, "", NULL, info_usage, g);
    int code;
    if (!cli_no_operand(&p, cli_parser_next(&p), &code))
        return code;

    code = cli_check_reachable(g);
    if (code != CLI_EXIT_OK)
        return code;
    rd_kafka_t *rk = cli_kafka_new(g, RD_KAFKA_PRODUCER, NULL);
    if (rk == NULL)
        return CLI_EXIT_ERROR;
    const struct rd_kafka_metadata *md = NULL;
    code = cli_fetch_metadata(rk, g, NULL, &md);
    if (code != CLI_EXIT_OK) {
        rd_kafka_destroy(rk);
        return code;
    }
    /* Both are cached from the Metadata answer above. */
    char *cluster_id = rd_kafka_clusterid(rk, cli_wait_ms(g));
    int32_t controller = rd_kafka_controllerid(rk, cli_wait_ms(g));

    struct cli_raw_metadata raw;
    char why[256] = "";
    bool racks_known = cli_raw_metadata_fetch(g, NULL, &raw, why, sizeof(why));
    if (!racks_known)
        cli_warn("racks unknown: %s", why);

    rd_kafka_metadata_broker_t *brokers = xcalloc((size_t)md->broker_cnt + 1, sizeof(*brokers));
    memcpy(brokers, md->brokers, (size_t)md->broker_cnt * sizeof(*brokers));
    qsort(brokers, (size_t)md->broker_cnt, sizeof(*brokers), cmp_broker);

    if (g->format == CLI_FORMAT_JSON) {
        struct json_writer w;
        json_init(&w, stdout);
        json_begin_object(&w);
        json_key(&w, "cluster_id");
        json_string(&w, cluster_id);
        json_key(&w, "controller_id");
        json_int(&w, controller);
        json_key(&w, "racks_known");
        json_bool(&w, racks_known);
        json_key(&w, "brokers");
        json_begin_array(&w);
        for (int i = 0; i < md->broker_cnt; i++) {
            json_begin_object(&w);
            json_key(&w, "id");
            json_int(&w, brokers[i].id);
            json_key(&w, "host");
            json_string(&w, brokers[i].host);
            json_key(&w, "port");
            json_int(&w, brokers[i].port);
            json_key(&w, "rack");
            json_string(&w, racks_known ? rack_of(&raw, brokers[i].id) : NULL);
            json_key(&w, "controller");
            json_bool(&w, brokers[i].id == controller);
            json_end_object(&w);
        }
        json_end_array(&w);
        json_end_object(&w);
        json_finish(&w);
    } else {
        printf("CLUSTER      %s\nCONTROLLER   %d\n\nBROKERS (* controller)\n",
               cluster_id ? cluster_id : "-", controller);
        static const char *const headers[] = {"ID", "HOST", "PORT", "RACK"};
        struct cli_table *t = table_new(4, headers);
        for (int i = 0; i < md->broker_cnt; i++) {
            const char *rack = racks_known ? rack_of(&raw, brokers[i].id) : "?";
            table_row(t);
            table_cell(t, "%d%s", brokers[i].id, brokers[i].id == controller ? "*" : "");
            table_cell(t, "%s", brokers[i].host);
            table_cell(t, "%d", brokers[i].port);
            table_cell(t, "%s", rack != NULL ? rack : "-");
        }
        table_print(t, stdout);
        table_free(t);
    }

    free(brokers);
    if (racks_known)
        cli_raw_metadata_free(&raw);
    if (cluster_id != NULL)
        rd_kafka_mem_free(rk, cluster_id);
    rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
    return CLI_EXIT_OK;
}
