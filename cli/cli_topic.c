/* vltava topic create|list|describe|delete|add-partitions, through the Kafka
 * Admin API (CreateTopics, DeleteTopics, CreatePartitions, DescribeConfigs)
 * and Metadata. librdkafka sends admin requests to the controller. */
#include "cli.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_output.h"
#include "xalloc.h"

#define MAX_CONFIGS 64
/* Kafka's limit on partitions per topic request is far higher; this bound
 * keeps one command's work and output finite. */
#define MAX_PARTITIONS 100000

static const char topic_usage[] =
    "Usage: vltava topic SUBCOMMAND [ARGS] [OPTIONS]\n"
    "\n"
    "Subcommands:\n"
    "  create NAME [-p PARTITIONS] [-r REPLICAS] [-c KEY=VALUE]...\n"
    "  list\n"
    "  describe NAME\n"
    "  delete NAME\n"
    "  add-partitions NAME -n COUNT\n"
    "  move NAME -p PARTITION (--replicas IDS | --cancel) [--wait]\n"
    "\n"
    "See vltava topic SUBCOMMAND --help, and vltava --help for the global\n"
    "options and exit codes.\n";

static const char create_usage[] =
    "Usage: vltava topic create NAME [-p PARTITIONS] [-r REPLICAS] [-c KEY=VALUE]...\n"
    "\n"
    "Creates a topic and waits (up to --timeout) until every partition has a\n"
    "leader.\n"
    "\n"
    "  -p, --partitions N     number of partitions (default: the broker's\n"
    "                         num.partitions)\n"
    "  -r, --replicas N       replication factor (default: the broker's\n"
    "                         default.replication.factor)\n"
    "  -c, --config KEY=VALUE topic config override; repeatable (at most 64)\n"
    "\n"
    "Exits 5 if the topic exists. Global options: see vltava --help.\n";

static const char list_usage[] = "Usage: vltava topic list\n"
                                 "\n"
                                 "Lists topics with their partition count and replication\n"
                                 "factor. Global options: see vltava --help.\n";

static const char describe_usage[] =
    "Usage: vltava topic describe NAME\n"
    "\n"
    "Shows a topic's configuration (DescribeConfigs) and its partitions: leader,\n"
    "leader epoch, replicas, in-sync replicas, offline replicas, log start and\n"
    "high watermark offsets.\n"
    "Exits 4 if the topic is unknown. Global options: see vltava --help.\n";

static const char delete_usage[] = "Usage: vltava topic delete NAME\n"
                                   "\n"
                                   "Deletes a topic. Exits 4 if the topic is unknown.\n"
                                   "Global options: see vltava --help.\n";

static const char add_partitions_usage[] =
    "Usage: vltava topic add-partitions NAME -n COUNT\n"
    "\n"
    "Adds COUNT partitions to a topic (the total becomes current + COUNT).\n"
    "\n"
    "  -n, --num COUNT   partitions to add (required, > 0)\n"
    "\n"
    "Exits 4 if the topic is unknown. Global options: see vltava --help.\n";

/* Maps one topic's admin result; prints the error. */
static int topic_result_exit(const rd_kafka_topic_result_t *res, const char *action)
{
    rd_kafka_resp_err_t err = rd_kafka_topic_result_error(res);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        return CLI_EXIT_OK;
    const char *name = rd_kafka_topic_result_name(res);
    const char *msg = rd_kafka_topic_result_error_string(res);
    int code = cli_exit_for_error(err);
    if (code == CLI_EXIT_UNKNOWN_TOPIC)
        cli_error("cannot %s topic '%s': unknown topic", action, name);
    else if (code == CLI_EXIT_TOPIC_EXISTS)
        cli_error("cannot %s topic '%s': it already exists", action, name);
    else
        cli_error("cannot %s topic '%s': %s (%s)", action, name,
                  msg != NULL ? msg : rd_kafka_err2str(err), rd_kafka_err2name(err));
    return code;
}

/* Waits for the answer to a CreateTopics, DeleteTopics or CreatePartitions
 * request about one topic; returns its exit code after printing any error. */
static int admin_topic_result(rd_kafka_queue_t *q, rd_kafka_event_type_t want,
                              const struct cli_globals *g, const char *action)
{
    int code;
    rd_kafka_event_t *ev = cli_admin_wait(q, want, g, &code);
    if (ev == NULL)
        return code;
    size_t n = 0;
    const rd_kafka_topic_result_t **res;
    const char *request;
    switch (want) {
    case RD_KAFKA_EVENT_CREATETOPICS_RESULT:
        res = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
        request = "CreateTopics";
        break;
    case RD_KAFKA_EVENT_DELETETOPICS_RESULT:
        res = rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &n);
        request = "DeleteTopics";
        break;
    default:
        assert(want == RD_KAFKA_EVENT_CREATEPARTITIONS_RESULT);
        res =
            rd_kafka_CreatePartitions_result_topics(rd_kafka_event_CreatePartitions_result(ev), &n);
        request = "CreatePartitions";
        break;
    }
    code = n == 1 ? topic_result_exit(res[0], action) : CLI_EXIT_ERROR;
    if (n != 1)
        cli_error("the cluster answered %s with %zu results", request, n);
    rd_kafka_event_destroy(ev);
    return code;
}

/* Follows "invalid topic name '<name>'" in the topic commands' messages. */
static const char name_rule[] = ": use 1-249 characters of [a-zA-Z0-9._-], not '.' or '..'";

static int cmp_partition(const void *a, const void *b)
{
    const rd_kafka_metadata_partition_t *pa = *(const rd_kafka_metadata_partition_t *const *)a;
    const rd_kafka_metadata_partition_t *pb = *(const rd_kafka_metadata_partition_t *const *)b;
    return (pa->id > pb->id) - (pa->id < pb->id);
}

static int cmp_topic(const void *a, const void *b)
{
    const rd_kafka_metadata_topic_t *ta = *(const rd_kafka_metadata_topic_t *const *)a;
    const rd_kafka_metadata_topic_t *tb = *(const rd_kafka_metadata_topic_t *const *)b;
    return strcmp(ta->topic, tb->topic);
}

/* Partitions of t sorted by id; the array is owned by the caller. */
static const rd_kafka_metadata_partition_t **sorted_partitions(const rd_kafka_metadata_topic_t *t)
{
    const rd_kafka_metadata_partition_t **parts =
        xcalloc((size_t)t->partition_cnt + 1, sizeof(*parts));
    for (int i = 0; i < t->partition_cnt; i++)
        parts[i] = &t->partitions[i];
    qsort(parts, (size_t)t->partition_cnt, sizeof(*parts), cmp_partition);
    return parts;
}

static int replication_factor(const rd_kafka_metadata_topic_t *t)
{
    return t->partition_cnt > 0 ? t->partitions[0].replica_cnt : 0;
}

static bool all_partitions_led(const rd_kafka_metadata_topic_t *t)
{
    if (t->partition_cnt == 0)
        return false;
    for (int i = 0; i < t->partition_cnt; i++)
        if (t->partitions[i].leader < 0)
            return false;
    return true;
}

/* Polls Metadata until the topic has want_partitions (or any, if 0)
 * partitions, each with a leader, or the deadline passes. Returns the
 * partition count seen last. */
static int wait_for_leaders(rd_kafka_t *rk, const struct cli_globals *g, const char *topic,
                            int want_partitions, bool *led)
{
    int64_t deadline = cli_wait_deadline_ms(g);
    int seen = 0;
    *led = false;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    assert(rkt != NULL);
    for (;;) {
        const struct rd_kafka_metadata *md = NULL;
        int64_t left = deadline - cli_now_ms();
        if (left <= 0)
            break;
        rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, (int)left);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (md->topic_cnt == 1) {
                const rd_kafka_metadata_topic_t *t = &md->topics[0];
                seen = t->partition_cnt;
                *led = all_partitions_led(t) &&
                       (want_partitions == 0 || t->partition_cnt >= want_partitions);
            }
            rd_kafka_metadata_destroy(md);
        }
        if (*led || cli_now_ms() >= deadline)
            break;
        struct timespec pause = {.tv_sec = 0, .tv_nsec = 100 * 1000000};
        nanosleep(&pause, NULL);
    }
    rd_kafka_topic_destroy(rkt);
    return seen;
}

/* ---- topic create ---- */

static int topic_create(int argc, char **argv, struct cli_globals *g)
{
    static const struct option longopts[] = {
        {"partitions", required_argument, NULL, 'p'},
        {"replicas", required_argument, NULL, 'r'},
        {"replication-factor", required_argument, NULL, 'r'},
        {"config", required_argument, NULL, 'c'},
        {NULL, 0, NULL, 0},
    };
    struct cli_parser p;
    cli_parser_init(&p, argc, argv, "p:r:c:", longopts, create_usage, g);
    int64_t partitions = -1, replicas = -1;
    const char *configs[MAX_CONFIGS];
    int nconfigs = 0;
    int opt;
    while ((opt = cli_parser_next(&p)) >= 0) {
        switch (opt) {
        case 'p':
            if (!cli_parse_int(optarg, 1, MAX_PARTITIONS, &partitions)) {
                cli_usage_error(create_usage, "-p wants a partition count 1..%d, got '%s'",
                                MAX_PARTITIONS, optarg);
                return CLI_EXIT_USAGE;
            }
            break;
        case 'r':
            if (!cli_parse_int(optarg, 1, 32767, &replicas)) {
                cli_usage_error(create_usage, "-r wants a replication factor 1..32767, got '%s'",
                                optarg);
                return CLI_EXIT_USAGE;
            }
            break;
        case 'c': {
            const char *eq = strchr(optarg, '=');
            if (eq == NULL || eq == optarg) {
                cli_usage_error(create_usage, "-c wants KEY=VALUE, got '%s'", optarg);
                return CLI_EXIT_USAGE;
            }
            if (nconfigs == MAX_CONFIGS) {
                cli_usage_error(create_usage, "at most %d -c options", MAX_CONFIGS);
                return CLI_EXIT_USAGE;
            }
            configs[nconfigs++] = optarg;
            break;
        }
        default:
            return CLI_EXIT_USAGE;
        }
    }
    int code;
    const char *name = cli_topic_operand(&p, opt, "topic NAME", name_rule, &code);
    if (name == NULL)
        return code;

    char errstr[512];
    rd_kafka_NewTopic_t *nt =
        rd_kafka_NewTopic_new(name, (int)partitions, (int)replicas, errstr, sizeof(errstr));
    if (nt == NULL) {
        cli_usage_error(create_usage, "%s", errstr);
        return CLI_EXIT_USAGE;
    }
    for (int i = 0; i < nconfigs; i++) {
        const char *eq = strchr(configs[i], '=');
        char *key = xstrndup(configs[i], (size_t)(eq - configs[i]));
        rd_kafka_resp_err_t err = rd_kafka_NewTopic_set_config(nt, key, eq + 1);
        free(key);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rd_kafka_NewTopic_destroy(nt);
            cli_usage_error(create_usage, "-c %s: %s", configs[i], rd_kafka_err2str(err));
            return CLI_EXIT_USAGE;
        }
    }

    rd_kafka_t *rk = cli_admin_client(g, &code);
    if (rk == NULL) {
        rd_kafka_NewTopic_destroy(nt);
        return code;
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opts = cli_admin_options(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS, g);
    rd_kafka_CreateTopics(rk, &nt, 1, opts, q);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_NewTopic_destroy(nt);

    code = admin_topic_result(q, RD_KAFKA_EVENT_CREATETOPICS_RESULT, g, "create");
    if (code == CLI_EXIT_OK) {
        bool led = false;
        int count = wait_for_leaders(rk, g, name, (int)partitions > 0 ? (int)partitions : 0, &led);
        if (!led)
            cli_warn("topic '%s' was created but not every partition had a leader within "
                     "--timeout",
                     name);
        if (g->format == CLI_FORMAT_JSON) {
            struct json_writer w;
            json_init(&w, stdout);
            json_begin_object(&w);
            json_key(&w, "name");
            json_string(&w, name);
            json_key(&w, "created");
            json_bool(&w, true);
            json_key(&w, "partitions");
            json_int(&w, count);
            json_key(&w, "leaders_elected");
            json_bool(&w, led);
            json_end_object(&w);
            json_finish(&w);
        } else {
            printf("Created topic %s (%d partitions)\n", name, count);
        }
    }
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return code;
}

/* ---- topic list ---- */

static int topic_list(int argc, char **argv, struct cli_globals *g)
{
    struct cli_parser p;
    cli_parser_init(&p, argc, argv, "", NULL, list_usage, g);
    int code;
    if (!cli_no_operand(&p, cli_parser_next(&p), &code))
        return code;

    rd_kafka_t *rk = cli_admin_client(g, &code);
    if (rk == NULL)
        return code;
    const struct rd_kafka_metadata *md = NULL;
    code = cli_fetch_metadata(rk, g, NULL, &md);
    if (code != CLI_EXIT_OK) {
        rd_kafka_destroy(rk);
        return code;
    }
    const rd_kafka_metadata_topic_t **topics = xcalloc((size_t)md->topic_cnt + 1, sizeof(*topics));
    for (int i = 0; i < md->topic_cnt; i++)
        topics[i] = &md->topics[i];
    qsort(topics, (size_t)md->topic_cnt, sizeof(*topics), cmp_topic);

    if (g->format == CLI_FORMAT_JSON) {
        struct json_writer w;
        json_init(&w, stdout);
        json_begin_array(&w);
        for (int i = 0; i < md->topic_cnt; i++) {
            json_begin_object(&w);
            json_key(&w, "name");
            json_string(&w, topics[i]->topic);
            json_key(&w, "partitions");
            json_int(&w, topics[i]->partition_cnt);
            json_key(&w, "replication_factor");
            json_int(&w, replication_factor(topics[i]));
            json_end_object(&w);
        }
        json_end_array(&w);
        json_finish(&w);
    } else {
        static const char *const headers[] = {"NAME", "PARTITIONS", "REPLICAS"};
        struct cli_table *t = table_new(3, headers);
        for (int i = 0; i < md->topic_cnt; i++) {
            table_row(t);
            table_cell(t, "%s", topics[i]->topic);
            table_cell(t, "%d", topics[i]->partition_cnt);
            table_cell(t, "%d", replication_factor(topics[i]));
        }
        table_print(t, stdout);
        table_free(t);
    }
    free(topics);
    rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
    return CLI_EXIT_OK;
}

/* ---- topic describe ---- */

static void format_id_list(char *buf, size_t len, const int32_t *ids, int n)
{
    assert(len > 0);
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && used < len; i++) {
        int w = snprintf(buf + used, len - used, "%s%d", i ? "," : "", ids[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

static void json_id_list(struct json_writer *w, const int32_t *ids, int n)
{
    json_begin_array(w);
    for (int i = 0; i < n; i++)
        json_int(w, ids[i]);
    json_end_array(w);
}

/* The topic's configuration via DescribeConfigs. On success *ev_out holds
 * the result event (owned by the caller) and *entries points into it. */
static bool describe_configs(rd_kafka_t *rk, const struct cli_globals *g, const char *topic,
                             rd_kafka_event_t **ev_out, const rd_kafka_ConfigEntry_t ***entries,
                             size_t *n_entries)
{
    *ev_out = NULL;
    *n_entries = 0;
    rd_kafka_ConfigResource_t *res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opts = cli_admin_options(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS, g);
    rd_kafka_DescribeConfigs(rk, &res, 1, opts, q);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_ConfigResource_destroy(res);
    int code;
    rd_kafka_event_t *ev = cli_admin_wait(q, RD_KAFKA_EVENT_DESCRIBECONFIGS_RESULT, g, &code);
    rd_kafka_queue_destroy(q);
    if (ev == NULL)
        return false;
    size_t nres = 0;
    const rd_kafka_ConfigResource_t **rres =
        rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev), &nres);
    if (nres != 1 || rd_kafka_ConfigResource_error(rres[0]) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        cli_error("DescribeConfigs for '%s': %s", topic,
                  nres == 1 ? rd_kafka_ConfigResource_error_string(rres[0]) : "no result");
        rd_kafka_event_destroy(ev);
        return false;
    }
    *entries = rd_kafka_ConfigResource_configs(rres[0], n_entries);
    *ev_out = ev;
    return true;
}

static int cmp_config_entry(const void *a, const void *b)
{
    return strcmp(rd_kafka_ConfigEntry_name(*(const rd_kafka_ConfigEntry_t *const *)a),
                  rd_kafka_ConfigEntry_name(*(const rd_kafka_ConfigEntry_t *const *)b));
}

/* What describe shows beyond librdkafka's metadata, per partition. */
struct partition_extra {
    int64_t low, high;                   /* -1 when the query failed */
    const struct cli_raw_partition *raw; /* epoch, offline; NULL if unknown */
};

static const struct cli_raw_partition *raw_partition(const struct cli_raw_metadata *raw, int32_t id)
{
    for (int32_t i = 0; i < raw->npartitions; i++)
        if (raw->partitions[i].id == id)
            return &raw->partitions[i];
    return NULL;
}

static void print_describe_json(const rd_kafka_metadata_topic_t *t,
                                const rd_kafka_metadata_partition_t **parts,
                                const struct partition_extra *wm,
                                const rd_kafka_ConfigEntry_t **cfg, size_t ncfg, bool have_cfg)
{
    struct json_writer w;
    json_init(&w, stdout);
    json_begin_object(&w);
    json_key(&w, "name");
    json_string(&w, t->topic);
    json_key(&w, "replication_factor");
    json_int(&w, replication_factor(t));
    json_key(&w, "partitions");
    json_begin_array(&w);
    for (int i = 0; i < t->partition_cnt; i++) {
        const rd_kafka_metadata_partition_t *pm = parts[i];
        json_begin_object(&w);
        json_key(&w, "partition");
        json_int(&w, pm->id);
        json_key(&w, "leader");
        json_int(&w, pm->leader);
        json_key(&w, "replicas");
        json_id_list(&w, pm->replicas, pm->replica_cnt);
        json_key(&w, "leader_epoch");
        if (wm[i].raw == NULL)
            json_null(&w);
        else
            json_int(&w, wm[i].raw->leader_epoch);
        json_key(&w, "isr");
        json_id_list(&w, pm->isrs, pm->isr_cnt);
        json_key(&w, "offline_replicas");
        if (wm[i].raw == NULL)
            json_null(&w);
        else
            json_id_list(&w, wm[i].raw->offline, wm[i].raw->noffline);
        json_key(&w, "error");
        if (pm->err == RD_KAFKA_RESP_ERR_NO_ERROR)
            json_null(&w);
        else
            json_string(&w, rd_kafka_err2name(pm->err));
        json_key(&w, "log_start_offset");
        json_offset(&w, wm[i].low);
        json_key(&w, "high_watermark");
        json_offset(&w, wm[i].high);
        json_end_object(&w);
    }
    json_end_array(&w);
    json_key(&w, "configs");
    if (!have_cfg) {
        json_null(&w);
    } else {
        json_begin_array(&w);
        for (size_t i = 0; i < ncfg; i++) {
            json_begin_object(&w);
            json_key(&w, "name");
            json_string(&w, rd_kafka_ConfigEntry_name(cfg[i]));
            json_key(&w, "value");
            json_string(&w, rd_kafka_ConfigEntry_value(cfg[i]));
            json_key(&w, "source");
            json_string(&w, rd_kafka_ConfigSource_name(rd_kafka_ConfigEntry_source(cfg[i])));
            json_key(&w, "default");
            json_bool(&w, rd_kafka_ConfigEntry_is_default(cfg[i]));
            json_key(&w, "read_only");
            json_bool(&w, rd_kafka_ConfigEntry_is_read_only(cfg[i]));
            json_key(&w, "sensitive");
            json_bool(&w, rd_kafka_ConfigEntry_is_sensitive(cfg[i]));
            json_end_object(&w);
        }
        json_end_array(&w);
    }
    json_end_object(&w);
    json_finish(&w);
}

static void print_describe_text(const rd_kafka_metadata_topic_t *t,
                                const rd_kafka_metadata_partition_t **parts,
                                const struct partition_extra *wm,
                                const rd_kafka_ConfigEntry_t **cfg, size_t ncfg, bool have_cfg)
{
    printf("NAME         %s\nPARTITIONS   %d\nREPLICAS     %d\n\n", t->topic, t->partition_cnt,
           replication_factor(t));
    if (have_cfg) {
        printf("CONFIGS\n");
        static const char *const cfg_headers[] = {"KEY", "VALUE", "SOURCE"};
        struct cli_table *ct = table_new(3, cfg_headers);
        for (size_t i = 0; i < ncfg; i++) {
            const char *value = rd_kafka_ConfigEntry_value(cfg[i]);
            table_row(ct);
            table_cell(ct, "%s", rd_kafka_ConfigEntry_name(cfg[i]));
            table_cell(ct, "%s", value != NULL ? value : "-");
            table_cell(ct, "%s", rd_kafka_ConfigSource_name(rd_kafka_ConfigEntry_source(cfg[i])));
        }
        table_print(ct, stdout);
        table_free(ct);
        printf("\n");
    }
    printf("PARTITIONS\n");
    static const char *const headers[] = {"PARTITION", "LEADER",  "EPOCH",     "REPLICAS",
                                          "ISR",       "OFFLINE", "LOG-START", "HIGH-WATERMARK",
                                          "ERROR"};
    struct cli_table *pt = table_new(9, headers);
    for (int i = 0; i < t->partition_cnt; i++) {
        const rd_kafka_metadata_partition_t *pm = parts[i];
        char replicas[512], isr[512], offline[512] = "?";
        format_id_list(replicas, sizeof(replicas), pm->replicas, pm->replica_cnt);
        format_id_list(isr, sizeof(isr), pm->isrs, pm->isr_cnt);
        if (wm[i].raw != NULL)
            format_id_list(offline, sizeof(offline), wm[i].raw->offline, wm[i].raw->noffline);
        table_row(pt);
        table_cell(pt, "%d", pm->id);
        if (pm->leader < 0)
            table_cell(pt, "none");
        else
            table_cell(pt, "%d", pm->leader);
        if (wm[i].raw == NULL)
            table_cell(pt, "?");
        else
            table_cell(pt, "%d", wm[i].raw->leader_epoch);
        table_cell(pt, "[%s]", replicas);
        table_cell(pt, "[%s]", isr);
        table_cell(pt, "[%s]", offline);
        table_cell_offset(pt, wm[i].low);
        table_cell_offset(pt, wm[i].high);
        table_cell(pt, "%s",
                   pm->err == RD_KAFKA_RESP_ERR_NO_ERROR ? "-" : rd_kafka_err2name(pm->err));
    }
    table_print(pt, stdout);
    table_free(pt);
}

static int topic_describe(int argc, char **argv, struct cli_globals *g)
{
    struct cli_parser p;
    cli_parser_init(&p, argc, argv, "", NULL, describe_usage, g);
    int opt = cli_parser_next(&p);
    int code;
    const char *name = cli_topic_operand(&p, opt, "topic NAME", name_rule, &code);
    if (name == NULL)
        return code;

    rd_kafka_t *rk = cli_admin_client(g, &code);
    if (rk == NULL)
        return code;
    const struct rd_kafka_metadata *md = NULL;
    code = cli_fetch_metadata(rk, g, name, &md);
    if (code != CLI_EXIT_OK) {
        rd_kafka_destroy(rk);
        return code;
    }
    const rd_kafka_metadata_topic_t *t = &md->topics[0];
    const rd_kafka_metadata_partition_t **parts = sorted_partitions(t);

    /* Offsets are informative; a partition without a leader has none. Two
     * calls, each bounded by the timeout, for all partitions at once. */
    struct partition_extra *wm = xcalloc((size_t)t->partition_cnt + 1, sizeof(*wm));
    rd_kafka_topic_partition_list_t *led = rd_kafka_topic_partition_list_new(t->partition_cnt);
    for (int i = 0; i < t->partition_cnt; i++) {
        wm[i].low = wm[i].high = -1;
        if (parts[i]->leader >= 0)
            rd_kafka_topic_partition_list_add(led, name, parts[i]->id);
    }
    if (led->cnt > 0) {
        rd_kafka_resp_err_t err;
        rd_kafka_topic_partition_list_t *starts =
            cli_list_offsets(rk, led, RD_KAFKA_OFFSET_BEGINNING, g, &err);
        rd_kafka_topic_partition_list_t *ends =
            starts ? cli_list_offsets(rk, led, RD_KAFKA_OFFSET_END, g, &err) : NULL;
        for (int i = 0; ends != NULL && i < t->partition_cnt; i++) {
            int64_t lo, hi;
            if (cli_offset_answer(starts, name, parts[i]->id, &lo) == RD_KAFKA_RESP_ERR_NO_ERROR &&
                cli_offset_answer(ends, name, parts[i]->id, &hi) == RD_KAFKA_RESP_ERR_NO_ERROR) {
                wm[i].low = lo;
                wm[i].high = hi;
            }
        }
        if (starts)
            rd_kafka_topic_partition_list_destroy(starts);
        if (ends)
            rd_kafka_topic_partition_list_destroy(ends);
    }
    rd_kafka_topic_partition_list_destroy(led);

    /* Leader epochs and offline replicas: informative too. */
    struct cli_raw_metadata raw;
    char why[256] = "";
    if (cli_raw_metadata_fetch(g, name, &raw, why, sizeof(why)) && raw.has_topic) {
        for (int i = 0; i < t->partition_cnt; i++)
            wm[i].raw = raw_partition(&raw, parts[i]->id);
    } else {
        cli_warn("leader epochs and offline replicas unknown: %s",
                 why[0] != '\0' ? why : "the topic is missing from the answer");
    }

    rd_kafka_event_t *cfg_ev = NULL;
    const rd_kafka_ConfigEntry_t **entries = NULL;
    size_t nentries = 0;
    bool have_cfg = describe_configs(rk, g, name, &cfg_ev, &entries, &nentries);
    const rd_kafka_ConfigEntry_t **sorted = xcalloc(nentries + 1, sizeof(*sorted));
    if (have_cfg) {
        memcpy(sorted, entries, nentries * sizeof(*sorted));
        qsort(sorted, nentries, sizeof(*sorted), cmp_config_entry);
    }

    if (g->format == CLI_FORMAT_JSON)
        print_describe_json(t, parts, wm, sorted, nentries, have_cfg);
    else
        print_describe_text(t, parts, wm, sorted, nentries, have_cfg);

    free(sorted);
    if (cfg_ev != NULL)
        rd_kafka_event_destroy(cfg_ev);
    free(wm);
    cli_raw_metadata_free(&raw);
    free(parts);
    rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
    /* The partition view stands on its own, but a caller asked for configs:
     * say the command did not fully succeed. */
    return have_cfg ? CLI_EXIT_OK : CLI_EXIT_ERROR;
}

/* ---- topic delete ---- */

static int topic_delete(int argc, char **argv, struct cli_globals *g)
{
    struct cli_parser p;
    cli_parser_init(&p, argc, argv, "", NULL, delete_usage, g);
    int opt = cli_parser_next(&p);
    int code;
    const char *name = cli_topic_operand(&p, opt, "topic NAME", name_rule, &code);
    if (name == NULL)
        return code;

    rd_kafka_t *rk = cli_admin_client(g, &code);
    if (rk == NULL)
        return code;
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_DeleteTopic_t *dt = rd_kafka_DeleteTopic_new(name);
    rd_kafka_AdminOptions_t *opts = cli_admin_options(rk, RD_KAFKA_ADMIN_OP_DELETETOPICS, g);
    rd_kafka_DeleteTopics(rk, &dt, 1, opts, q);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_DeleteTopic_destroy(dt);
    code = admin_topic_result(q, RD_KAFKA_EVENT_DELETETOPICS_RESULT, g, "delete");
    if (code == CLI_EXIT_OK)
        cli_print_deleted(g, "topic", "name", name);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return code;
}

/* ---- topic add-partitions ---- */

static int topic_add_partitions(int argc, char **argv, struct cli_globals *g)
{
    static const struct option longopts[] = {
        {"num", required_argument, NULL, 'n'},
        {NULL, 0, NULL, 0},
    };
    struct cli_parser p;
    cli_parser_init(&p, argc, argv, "n:", longopts, add_partitions_usage, g);
    int64_t add = 0;
    int opt;
    while ((opt = cli_parser_next(&p)) >= 0) {
        if (opt != 'n')
            return CLI_EXIT_USAGE;
        if (!cli_parse_int(optarg, 1, MAX_PARTITIONS, &add)) {
            cli_usage_error(add_partitions_usage, "-n wants a count 1..%d, got '%s'",
                            MAX_PARTITIONS, optarg);
            return CLI_EXIT_USAGE;
        }
    }
    int code;
    const char *name = cli_topic_operand(&p, opt, "topic NAME", name_rule, &code);
    if (name == NULL)
        return code;
    if (add == 0) {
        cli_usage_error(add_partitions_usage, "missing -n COUNT");
        return CLI_EXIT_USAGE;
    }

    rd_kafka_t *rk = cli_admin_client(g, &code);
    if (rk == NULL)
        return code;
    const struct rd_kafka_metadata *md = NULL;
    code = cli_fetch_metadata(rk, g, name, &md);
    if (code != CLI_EXIT_OK) {
        rd_kafka_destroy(rk);
        return code;
    }
    int before = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    if (before + add > MAX_PARTITIONS) {
        rd_kafka_destroy(rk);
        cli_usage_error(add_partitions_usage, "%d + %lld partitions is over the limit of %d",
                        before, (long long)add, MAX_PARTITIONS);
        return CLI_EXIT_USAGE;
    }
    int after = before + (int)add;

    char errstr[512];
    rd_kafka_NewPartitions_t *np =
        rd_kafka_NewPartitions_new(name, (size_t)after, errstr, sizeof(errstr));
    assert(np != NULL);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opts = cli_admin_options(rk, RD_KAFKA_ADMIN_OP_CREATEPARTITIONS, g);
    rd_kafka_CreatePartitions(rk, &np, 1, opts, q);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_NewPartitions_destroy(np);
    code = admin_topic_result(q, RD_KAFKA_EVENT_CREATEPARTITIONS_RESULT, g, "add partitions to");
    if (code == CLI_EXIT_OK) {
        bool led = false;
        int seen = wait_for_leaders(rk, g, name, after, &led);
        if (!led)
            cli_warn("topic '%s' has %d partitions, not all with a leader within --timeout", name,
                     seen);
        if (g->format == CLI_FORMAT_JSON) {
            struct json_writer w;
            json_init(&w, stdout);
            json_begin_object(&w);
            json_key(&w, "name");
            json_string(&w, name);
            json_key(&w, "partitions_before");
            json_int(&w, before);
            json_key(&w, "partitions");
            json_int(&w, after);
            json_key(&w, "leaders_elected");
            json_bool(&w, led);
            json_end_object(&w);
            json_finish(&w);
        } else {
            printf("Topic %s: %d -> %d partitions\n", name, before, after);
        }
    }
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return code;
}

/* ---- dispatch ---- */

int cli_cmd_topic(int argc, char **argv, struct cli_globals *g)
{
    static const struct cli_subcommand subs[] = {
        {"create", topic_create},
        {"list", topic_list},
        {"describe", topic_describe},
        {"delete", topic_delete},
        {"add-partitions", topic_add_partitions},
        {"move", cli_cmd_topic_move},
    };
    return cli_run_subcommand(argc, argv, g, topic_usage, subs, sizeof(subs) / sizeof(subs[0]));
}
