/* vltava group list|describe|delete|seek: consumer groups (Kafka's classic
 * group protocol) through the Admin API — ListGroups, DescribeGroups,
 * OffsetFetch, OffsetCommit and DeleteGroups, which librdkafka sends to the
 * group's coordinator after FindCoordinator — and ListOffsets for the log
 * offsets that lag and seek targets are computed from. */
#include "cli.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_output.h"
#include "xalloc.h"

static const char group_usage[] =
    "Usage: vltava group SUBCOMMAND [ARGS] [OPTIONS]\n"
    "\n"
    "Consumer groups. Their members are consumers such as\n"
    "`vltava consume TOPIC -g GROUP` or `kcat -G GROUP TOPIC`.\n"
    "\n"
    "Subcommands:\n"
    "  list\n"
    "  describe GROUP\n"
    "  delete GROUP\n"
    "  seek GROUP --to earliest|latest|OFFSET|@TIMESTAMP [-t TOPIC]\n"
    "\n"
    "See vltava group SUBCOMMAND --help, and vltava --help for the global\n"
    "options and exit codes.\n";

static const char list_usage[] =
    "Usage: vltava group list\n"
    "\n"
    "Lists consumer groups with their state (Empty, Stable, PreparingRebalance,\n"
    "CompletingRebalance, Dead) and type: consumer for groups whose members\n"
    "subscribe, simple for groups that only hold committed offsets.\n"
    "Global options: see vltava --help.\n";

static const char describe_usage[] =
    "Usage: vltava group describe GROUP\n"
    "\n"
    "Shows a group's state, type, partition assignor, coordinator and members\n"
    "(member id, client id, host, assigned partitions), and for every\n"
    "partition the group has committed an offset for or a member is assigned:\n"
    "the committed offset, the log end offset and the lag (log end minus\n"
    "committed; - when nothing is committed).\n"
    "Exits 6 if the group is unknown. Global options: see vltava --help.\n";

static const char delete_usage[] =
    "Usage: vltava group delete GROUP\n"
    "\n"
    "Deletes a group and its committed offsets; only a group without members\n"
    "can be deleted.\n"
    "Exits 6 if the group is unknown, 7 if it has members.\n"
    "Global options: see vltava --help.\n";

static const char seek_usage[] =
    "Usage: vltava group seek GROUP --to WHERE [-t TOPIC]\n"
    "\n"
    "Moves a group's committed offsets (kafka-consumer-groups --reset-offsets\n"
    "--execute). Only while no consumer is in the group: members would\n"
    "overwrite the offsets with their own commits.\n"
    "\n"
    "      --to WHERE     earliest    the log start offset\n"
    "                     latest      the log end offset\n"
    "                     OFFSET      that offset, kept within log start..end\n"
    "                     @TIMESTAMP  the first record at or after TIMESTAMP\n"
    "                                 (ms since the epoch); the log end when\n"
    "                                 there is none\n"
    "  -t, --topic TOPIC  every partition of TOPIC (the group may be new);\n"
    "                     without it, every partition the group has\n"
    "                     committed offsets for\n"
    "\n"
    "Prints the previous and the new offset of each partition. Exits 4 if the\n"
    "topic is unknown, 6 if the group is unknown (without -t), 7 if the group\n"
    "has members. Global options: see vltava --help.\n";

/* ---- Values ---- */

bool cli_group_id_valid(const char *id)
{
    size_t len = strlen(id);
    return len > 0 && len <= CLI_MAX_GROUP_ID_LEN;
}

bool cli_parse_seek_target(const char *text, struct cli_seek_target *target)
{
    int64_t v;
    if (strcmp(text, "earliest") == 0) {
        target->kind = CLI_SEEK_EARLIEST;
        target->value = 0;
    } else if (strcmp(text, "latest") == 0) {
        target->kind = CLI_SEEK_LATEST;
        target->value = 0;
    } else if (text[0] == '@' && text[1] != '-' && text[1] != '+' &&
               cli_parse_int(text + 1, 0, INT64_MAX, &v)) {
        target->kind = CLI_SEEK_TIMESTAMP;
        target->value = v;
    } else if (text[0] != '-' && text[0] != '+' && cli_parse_int(text, 0, INT64_MAX, &v)) {
        target->kind = CLI_SEEK_OFFSET;
        target->value = v;
    } else {
        return false;
    }
    return true;
}

/* ---- Requests ---- */

/* Ends the option parsing of a subcommand whose one operand is a group id,
 * as cli_topic_operand does for topics. */
static const char *group_operand(struct cli_parser *p, int opt, int *exit_code)
{
    const char *group = cli_operand(p, opt, "GROUP", exit_code);
    if (group != NULL && !cli_group_id_valid(group)) {
        cli_usage_error(p->usage, "invalid group id '%.64s': use 1-%d bytes", group,
                        CLI_MAX_GROUP_ID_LEN);
        *exit_code = CLI_EXIT_USAGE;
        return NULL;
    }
    return group;
}

/* Prints a group-level error of `action` on group; returns its exit code. */
static int group_error_exit(const char *group, const char *action, rd_kafka_resp_err_t err,
                            const char *msg)
{
    int code = cli_exit_for_error(err);
    if (code == CLI_EXIT_UNKNOWN_GROUP)
        cli_error("cannot %s group '%s': unknown group", action, group);
    else if (code == CLI_EXIT_GROUP_NOT_EMPTY)
        cli_error("cannot %s group '%s': it has members (stop its consumers first)", action, group);
    else
        cli_error("cannot %s group '%s': %s (%s)", action, group,
                  msg != NULL ? msg : rd_kafka_err2str(err), rd_kafka_err2name(err));
    return code;
}

/* An error meaning the group has members: DeleteGroups says so, and a
 * commit outside any generation (generation -1, no member id) is refused
 * with the member errors unless the group is Empty. */
static bool refused_for_members(rd_kafka_resp_err_t err)
{
    return err == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID ||
           err == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION ||
           err == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS ||
           err == RD_KAFKA_RESP_ERR_NON_EMPTY_GROUP;
}

/* The one group result of an OffsetFetch, OffsetCommit or DeleteGroups
 * answer to `action` on group, when it carries no group-level error;
 * otherwise NULL with *code set after saying why (CLI_EXIT_GROUP_NOT_EMPTY
 * for the errors refused_for_members names). */
static const rd_kafka_group_result_t *group_result(const rd_kafka_group_result_t **res, size_t n,
                                                   const char *request, const char *group,
                                                   const char *action, int *code)
{
    if (n != 1) {
        cli_error("the cluster answered %s with %zu group results", request, n);
        *code = CLI_EXIT_ERROR;
        return NULL;
    }
    const rd_kafka_error_t *error = rd_kafka_group_result_error(res[0]);
    if (error == NULL)
        return res[0];
    rd_kafka_resp_err_t err = rd_kafka_error_code(error);
    *code = refused_for_members(err)
                ? group_error_exit(group, action, RD_KAFKA_RESP_ERR_NON_EMPTY_GROUP, NULL)
                : group_error_exit(group, action, err, rd_kafka_error_string(error));
    return NULL;
}

/* DescribeGroups for one group. On success *ev_out (owned by the caller)
 * holds the answer *desc points into. Kafka describes an unknown group
 * without an error, as Dead with no members; the callers decide. */
static int describe_group(rd_kafka_t *rk, const struct cli_globals *g, const char *group,
                          rd_kafka_event_t **ev_out,
                          const rd_kafka_ConsumerGroupDescription_t **desc)
{
    *ev_out = NULL;
    *desc = NULL;
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opts =
        cli_admin_options(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS, g);
    const char *groups[] = {group};
    rd_kafka_DescribeConsumerGroups(rk, groups, 1, opts, q);
    rd_kafka_AdminOptions_destroy(opts);
    int code = CLI_EXIT_OK;
    rd_kafka_event_t *ev =
        cli_admin_wait(q, RD_KAFKA_EVENT_DESCRIBECONSUMERGROUPS_RESULT, g, &code);
    rd_kafka_queue_destroy(q);
    if (ev == NULL)
        return code;
    size_t n = 0;
    const rd_kafka_ConsumerGroupDescription_t **res = rd_kafka_DescribeConsumerGroups_result_groups(
        rd_kafka_event_DescribeConsumerGroups_result(ev), &n);
    if (n != 1) {
        cli_error("the cluster answered DescribeGroups with %zu groups", n);
        rd_kafka_event_destroy(ev);
        return CLI_EXIT_ERROR;
    }
    const rd_kafka_error_t *err = rd_kafka_ConsumerGroupDescription_error(res[0]);
    if (err != NULL) {
        code = group_error_exit(group, "describe", rd_kafka_error_code(err),
                                rd_kafka_error_string(err));
        rd_kafka_event_destroy(ev);
        return code;
    }
    *ev_out = ev;
    *desc = res[0];
    return CLI_EXIT_OK;
}

/* The group's committed offsets: OffsetFetch for all its partitions. On
 * success *out (owned by the caller) holds every partition with a committed
 * offset, that offset in .offset, sorted by topic and partition. */
static int committed_offsets(rd_kafka_t *rk, const struct cli_globals *g, const char *group,
                             rd_kafka_topic_partition_list_t **out)
{
    *out = NULL;
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opts =
        cli_admin_options(rk, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS, g);
    /* No partitions: the coordinator answers with all of the group's. */
    rd_kafka_ListConsumerGroupOffsets_t *req = rd_kafka_ListConsumerGroupOffsets_new(group, NULL);
    rd_kafka_ListConsumerGroupOffsets(rk, &req, 1, opts, q);
    rd_kafka_ListConsumerGroupOffsets_destroy(req);
    rd_kafka_AdminOptions_destroy(opts);
    int code = CLI_EXIT_OK;
    rd_kafka_event_t *ev =
        cli_admin_wait(q, RD_KAFKA_EVENT_LISTCONSUMERGROUPOFFSETS_RESULT, g, &code);
    rd_kafka_queue_destroy(q);
    if (ev == NULL)
        return code;
    size_t n = 0;
    const rd_kafka_group_result_t **res = rd_kafka_ListConsumerGroupOffsets_result_groups(
        rd_kafka_event_ListConsumerGroupOffsets_result(ev), &n);
    const rd_kafka_group_result_t *gr =
        group_result(res, n, "OffsetFetch", group, "fetch the committed offsets of", &code);
    if (gr != NULL) {
        const rd_kafka_topic_partition_list_t *parts = rd_kafka_group_result_partitions(gr);
        int cnt = parts != NULL ? parts->cnt : 0;
        rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(cnt);
        for (int i = 0; i < cnt; i++) {
            const rd_kafka_topic_partition_t *p = &parts->elems[i];
            if (p->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
                cli_warn("committed offset of %s [%d] unknown: %s", p->topic, p->partition,
                         rd_kafka_err2str(p->err));
                continue;
            }
            if (p->offset >= 0)
                rd_kafka_topic_partition_list_add(list, p->topic, p->partition)->offset = p->offset;
        }
        rd_kafka_topic_partition_list_sort(list, NULL, NULL);
        *out = list;
    }
    rd_kafka_event_destroy(ev);
    return code;
}

/* ---- group list ---- */

static int cmp_listing(const void *a, const void *b)
{
    return strcmp(
        rd_kafka_ConsumerGroupListing_group_id(*(const rd_kafka_ConsumerGroupListing_t *const *)a),
        rd_kafka_ConsumerGroupListing_group_id(*(const rd_kafka_ConsumerGroupListing_t *const *)b));
}

static const char *group_type(bool simple)
{
    return simple ? "simple" : "consumer";
}

/* Whether a ListGroups answer with no groups and nfailed errors (one per
 * broker that failed) came from some broker too: an empty listing, not no
 * listing. */
static bool some_broker_listed(rd_kafka_t *rk, const struct cli_globals *g, size_t nfailed)
{
    assert(nfailed > 0);
    const struct rd_kafka_metadata *md = NULL;
    if (rd_kafka_metadata(rk, 0, NULL, &md, cli_wait_ms(g)) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return false;
    bool listed = md->broker_cnt > 0 && (size_t)md->broker_cnt > nfailed;
    rd_kafka_metadata_destroy(md);
    return listed;
}

static int group_list(int argc, char **argv, struct cli_globals *g)
{
    struct cli_parser p;
    cli_parser_init(&p, argc, argv, "", NULL, list_usage, g);
    int code;
    if (!cli_no_operand(&p, cli_parser_next(&p), &code))
        return code;

    rd_kafka_t *rk = cli_admin_client(g, &code);
    if (rk == NULL)
        return code;
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opts = cli_admin_options(rk, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS, g);
    rd_kafka_ListConsumerGroups(rk, opts, q);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_event_t *ev = cli_admin_wait(q, RD_KAFKA_EVENT_LISTCONSUMERGROUPS_RESULT, g, &code);
    rd_kafka_queue_destroy(q);
    if (ev == NULL) {
        rd_kafka_destroy(rk);
        return code;
    }
    const rd_kafka_ListConsumerGroups_result_t *res = rd_kafka_event_ListConsumerGroups_result(ev);
    size_t n = 0, nerrors = 0;
    const rd_kafka_ConsumerGroupListing_t **valid =
        rd_kafka_ListConsumerGroups_result_valid(res, &n);
    const rd_kafka_error_t **errors = rd_kafka_ListConsumerGroups_result_errors(res, &nerrors);
    /* ListGroups goes to every broker; one that fails leaves its groups out
     * of the listing, which must not pass for complete. When none answered
     * there is no listing at all. */
    if (n == 0 && nerrors > 0 && !some_broker_listed(rk, g, nerrors)) {
        code = CLI_EXIT_UNREACHABLE;
        for (size_t i = 0; i < nerrors; i++) {
            rd_kafka_resp_err_t err = rd_kafka_error_code(errors[i]);
            cli_error("cannot list groups: %s", rd_kafka_error_string(errors[i]));
            if (cli_exit_for_error(err) != CLI_EXIT_UNREACHABLE)
                code = cli_exit_for_error(err);
        }
        rd_kafka_event_destroy(ev);
        rd_kafka_destroy(rk);
        return code;
    }
    for (size_t i = 0; i < nerrors; i++)
        cli_warn("the listing is incomplete: %s", rd_kafka_error_string(errors[i]));
    const rd_kafka_ConsumerGroupListing_t **sorted = xcalloc(n + 1, sizeof(*sorted));
    if (n > 0)
        memcpy(sorted, valid, n * sizeof(*sorted));
    qsort(sorted, n, sizeof(*sorted), cmp_listing);

    if (g->format == CLI_FORMAT_JSON) {
        struct json_writer w;
        json_init(&w, stdout);
        json_begin_array(&w);
        for (size_t i = 0; i < n; i++) {
            json_begin_object(&w);
            json_key(&w, "group");
            json_string(&w, rd_kafka_ConsumerGroupListing_group_id(sorted[i]));
            json_key(&w, "state");
            json_string(&w, rd_kafka_consumer_group_state_name(
                                rd_kafka_ConsumerGroupListing_state(sorted[i])));
            json_key(&w, "type");
            json_string(
                &w, group_type(rd_kafka_ConsumerGroupListing_is_simple_consumer_group(sorted[i])));
            json_end_object(&w);
        }
        json_end_array(&w);
        json_finish(&w);
    } else {
        static const char *const headers[] = {"GROUP", "STATE", "TYPE"};
        struct cli_table *t = table_new(3, headers);
        for (size_t i = 0; i < n; i++) {
            table_row(t);
            table_cell(t, "%s", rd_kafka_ConsumerGroupListing_group_id(sorted[i]));
            table_cell(
                t, "%s",
                rd_kafka_consumer_group_state_name(rd_kafka_ConsumerGroupListing_state(sorted[i])));
            table_cell(
                t, "%s",
                group_type(rd_kafka_ConsumerGroupListing_is_simple_consumer_group(sorted[i])));
        }
        table_print(t, stdout);
        table_free(t);
    }
    free(sorted);
    rd_kafka_event_destroy(ev);
    rd_kafka_destroy(rk);
    return nerrors == 0 ? CLI_EXIT_OK : CLI_EXIT_ERROR;
}

/* ---- group describe ---- */

/* Everything describe prints. rows holds each partition shown, sorted: the
 * committed offset in .offset (-1 when none), the assigned member in
 * .opaque (a MemberDescription, NULL when none); log_end[i] is row i's log
 * end offset (-1 when unknown). */
struct group_view {
    const char *group;
    const rd_kafka_ConsumerGroupDescription_t *desc;
    rd_kafka_topic_partition_list_t *rows;
    int64_t *log_end;
};

static const rd_kafka_topic_partition_list_t *
member_partitions(const rd_kafka_MemberDescription_t *m)
{
    const rd_kafka_MemberAssignment_t *a = rd_kafka_MemberDescription_assignment(m);
    return a != NULL ? rd_kafka_MemberAssignment_partitions(a) : NULL;
}

/* A member's assignment sorted by topic and partition, as both formats
 * print it; owned by the caller. */
static rd_kafka_topic_partition_list_t *sorted_assignment(const rd_kafka_MemberDescription_t *m)
{
    const rd_kafka_topic_partition_list_t *parts = member_partitions(m);
    rd_kafka_topic_partition_list_t *sorted = parts != NULL
                                                  ? rd_kafka_topic_partition_list_copy(parts)
                                                  : rd_kafka_topic_partition_list_new(0);
    rd_kafka_topic_partition_list_sort(sorted, NULL, NULL);
    return sorted;
}

/* "topic[0,1,2] other[0]" for a sorted assignment, truncated with "..."
 * to fit len; "-" when it is empty. */
static void format_assignment(char *buf, size_t len, const rd_kafka_topic_partition_list_t *sorted)
{
    assert(len >= 4);
    if (sorted->cnt == 0) {
        snprintf(buf, len, "-");
        return;
    }
    size_t used = 0;
    for (int i = 0; i < sorted->cnt && used < len; i++) {
        const rd_kafka_topic_partition_t *p = &sorted->elems[i];
        bool same_topic = i > 0 && strcmp(sorted->elems[i - 1].topic, p->topic) == 0;
        bool last_of_topic =
            i + 1 == sorted->cnt || strcmp(sorted->elems[i + 1].topic, p->topic) != 0;
        int w = same_topic ? snprintf(buf + used, len - used, ",%d", p->partition)
                           : snprintf(buf + used, len - used, "%s%s[%d", i > 0 ? " " : "", p->topic,
                                      p->partition);
        if (w < 0)
            break;
        used += (size_t)w;
        if (last_of_topic && used < len)
            used += (size_t)snprintf(buf + used, len - used, "]");
    }
    if (used >= len)
        memcpy(buf + len - 4, "...", 4);
}

/* Row i's lag in *lag; false when its committed or log end offset is
 * unknown. */
static bool lag_of(const struct group_view *v, int i, int64_t *lag)
{
    int64_t committed = v->rows->elems[i].offset;
    if (committed < 0 || v->log_end[i] < 0)
        return false;
    *lag = v->log_end[i] - committed;
    return true;
}

static void print_group_json(const struct group_view *v)
{
    const rd_kafka_ConsumerGroupDescription_t *d = v->desc;
    struct json_writer w;
    json_init(&w, stdout);
    json_begin_object(&w);
    json_key(&w, "group");
    json_string(&w, v->group);
    json_key(&w, "state");
    json_string(&w, rd_kafka_consumer_group_state_name(rd_kafka_ConsumerGroupDescription_state(d)));
    json_key(&w, "type");
    json_string(&w, group_type(rd_kafka_ConsumerGroupDescription_is_simple_consumer_group(d)));
    const char *assignor = rd_kafka_ConsumerGroupDescription_partition_assignor(d);
    json_key(&w, "assignor");
    json_string(&w, assignor != NULL && *assignor != '\0' ? assignor : NULL);
    const rd_kafka_Node_t *coord = rd_kafka_ConsumerGroupDescription_coordinator(d);
    json_key(&w, "coordinator");
    if (coord == NULL) {
        json_null(&w);
    } else {
        json_begin_object(&w);
        json_key(&w, "id");
        json_int(&w, rd_kafka_Node_id(coord));
        json_key(&w, "host");
        json_string(&w, rd_kafka_Node_host(coord));
        json_key(&w, "port");
        json_int(&w, rd_kafka_Node_port(coord));
        json_end_object(&w);
    }
    json_key(&w, "members");
    json_begin_array(&w);
    size_t nmembers = rd_kafka_ConsumerGroupDescription_member_count(d);
    for (size_t i = 0; i < nmembers; i++) {
        const rd_kafka_MemberDescription_t *m = rd_kafka_ConsumerGroupDescription_member(d, i);
        json_begin_object(&w);
        json_key(&w, "member_id");
        json_string(&w, rd_kafka_MemberDescription_consumer_id(m));
        json_key(&w, "group_instance_id");
        json_string(&w, rd_kafka_MemberDescription_group_instance_id(m));
        json_key(&w, "client_id");
        json_string(&w, rd_kafka_MemberDescription_client_id(m));
        json_key(&w, "host");
        json_string(&w, rd_kafka_MemberDescription_host(m));
        json_key(&w, "assignment");
        json_begin_array(&w);
        rd_kafka_topic_partition_list_t *parts = sorted_assignment(m);
        for (int k = 0; k < parts->cnt; k++) {
            json_begin_object(&w);
            json_key(&w, "topic");
            json_string(&w, parts->elems[k].topic);
            json_key(&w, "partition");
            json_int(&w, parts->elems[k].partition);
            json_end_object(&w);
        }
        rd_kafka_topic_partition_list_destroy(parts);
        json_end_array(&w);
        json_end_object(&w);
    }
    json_end_array(&w);
    json_key(&w, "partitions");
    json_begin_array(&w);
    for (int i = 0; i < v->rows->cnt; i++) {
        const rd_kafka_topic_partition_t *r = &v->rows->elems[i];
        const rd_kafka_MemberDescription_t *m = r->opaque;
        json_begin_object(&w);
        json_key(&w, "topic");
        json_string(&w, r->topic);
        json_key(&w, "partition");
        json_int(&w, r->partition);
        json_key(&w, "committed");
        json_offset(&w, r->offset);
        json_key(&w, "log_end");
        json_offset(&w, v->log_end[i]);
        json_key(&w, "lag");
        int64_t lag;
        if (lag_of(v, i, &lag))
            json_int(&w, lag);
        else
            json_null(&w);
        json_key(&w, "member_id");
        json_string(&w, m != NULL ? rd_kafka_MemberDescription_consumer_id(m) : NULL);
        json_end_object(&w);
    }
    json_end_array(&w);
    json_end_object(&w);
    json_finish(&w);
}

static void print_group_text(const struct group_view *v)
{
    const rd_kafka_ConsumerGroupDescription_t *d = v->desc;
    const char *assignor = rd_kafka_ConsumerGroupDescription_partition_assignor(d);
    const rd_kafka_Node_t *coord = rd_kafka_ConsumerGroupDescription_coordinator(d);
    size_t nmembers = rd_kafka_ConsumerGroupDescription_member_count(d);
    printf("GROUP        %s\nSTATE        %s\nTYPE         %s\nASSIGNOR     %s\n", v->group,
           rd_kafka_consumer_group_state_name(rd_kafka_ConsumerGroupDescription_state(d)),
           group_type(rd_kafka_ConsumerGroupDescription_is_simple_consumer_group(d)),
           assignor != NULL && *assignor != '\0' ? assignor : "-");
    if (coord != NULL)
        printf("COORDINATOR  %d (%s:%u)\n", rd_kafka_Node_id(coord), rd_kafka_Node_host(coord),
               (unsigned)rd_kafka_Node_port(coord));
    else
        printf("COORDINATOR  -\n");
    printf("MEMBERS      %zu\n\n", nmembers);

    if (nmembers > 0) {
        printf("MEMBERS\n");
        static const char *const mheaders[] = {"MEMBER-ID", "CLIENT-ID", "HOST", "PARTITIONS"};
        struct cli_table *mt = table_new(4, mheaders);
        for (size_t i = 0; i < nmembers; i++) {
            const rd_kafka_MemberDescription_t *m = rd_kafka_ConsumerGroupDescription_member(d, i);
            char assigned[1024];
            rd_kafka_topic_partition_list_t *parts = sorted_assignment(m);
            format_assignment(assigned, sizeof(assigned), parts);
            rd_kafka_topic_partition_list_destroy(parts);
            table_row(mt);
            table_cell(mt, "%s", rd_kafka_MemberDescription_consumer_id(m));
            table_cell(mt, "%s", rd_kafka_MemberDescription_client_id(m));
            table_cell(mt, "%s", rd_kafka_MemberDescription_host(m));
            table_cell(mt, "%s", assigned);
        }
        table_print(mt, stdout);
        table_free(mt);
        printf("\n");
    }

    printf("PARTITIONS\n");
    static const char *const headers[] = {"TOPIC",   "PARTITION", "COMMITTED",
                                          "LOG-END", "LAG",       "MEMBER-ID"};
    struct cli_table *pt = table_new(6, headers);
    for (int i = 0; i < v->rows->cnt; i++) {
        const rd_kafka_topic_partition_t *r = &v->rows->elems[i];
        const rd_kafka_MemberDescription_t *m = r->opaque;
        table_row(pt);
        table_cell(pt, "%s", r->topic);
        table_cell(pt, "%d", r->partition);
        table_cell_offset(pt, r->offset);
        table_cell_offset(pt, v->log_end[i]);
        int64_t lag;
        if (lag_of(v, i, &lag))
            table_cell(pt, "%lld", (long long)lag);
        else
            table_cell(pt, "-");
        table_cell(pt, "%s", m != NULL ? rd_kafka_MemberDescription_consumer_id(m) : "-");
    }
    table_print(pt, stdout);
    table_free(pt);
}

/* The partitions describe shows: those with a committed offset and those
 * assigned to a member (see struct group_view). Owned by the caller. */
static rd_kafka_topic_partition_list_t *group_rows(const rd_kafka_ConsumerGroupDescription_t *desc,
                                                   const rd_kafka_topic_partition_list_t *committed)
{
    rd_kafka_topic_partition_list_t *rows = rd_kafka_topic_partition_list_new(committed->cnt);
    for (int i = 0; i < committed->cnt; i++)
        rd_kafka_topic_partition_list_add(rows, committed->elems[i].topic,
                                          committed->elems[i].partition)
            ->offset = committed->elems[i].offset;
    size_t nmembers = rd_kafka_ConsumerGroupDescription_member_count(desc);
    for (size_t i = 0; i < nmembers; i++) {
        const rd_kafka_MemberDescription_t *m = rd_kafka_ConsumerGroupDescription_member(desc, i);
        const rd_kafka_topic_partition_list_t *parts = member_partitions(m);
        for (int k = 0; parts != NULL && k < parts->cnt; k++) {
            const rd_kafka_topic_partition_t *p = &parts->elems[k];
            rd_kafka_topic_partition_t *row =
                rd_kafka_topic_partition_list_find(rows, p->topic, p->partition);
            if (row == NULL) {
                row = rd_kafka_topic_partition_list_add(rows, p->topic, p->partition);
                row->offset = -1;
            }
            row->opaque = (void *)m;
        }
    }
    rd_kafka_topic_partition_list_sort(rows, NULL, NULL);
    return rows;
}

/* Fills v->log_end; false (after a warning) when some are unknown. */
static bool fill_log_ends(rd_kafka_t *rk, const struct cli_globals *g, struct group_view *v)
{
    for (int i = 0; i < v->rows->cnt; i++)
        v->log_end[i] = -1;
    if (v->rows->cnt == 0)
        return true;
    rd_kafka_resp_err_t err;
    rd_kafka_topic_partition_list_t *ends =
        cli_list_offsets(rk, v->rows, RD_KAFKA_OFFSET_END, g, &err);
    if (ends == NULL) {
        cli_warn("log end offsets unknown: %s", rd_kafka_err2str(err));
        return false;
    }
    bool all = true;
    for (int i = 0; i < v->rows->cnt; i++) {
        const rd_kafka_topic_partition_t *r = &v->rows->elems[i];
        err = cli_offset_answer(ends, r->topic, r->partition, &v->log_end[i]);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR || v->log_end[i] < 0) {
            cli_warn("log end offset of %s [%d] unknown: %s", r->topic, r->partition,
                     rd_kafka_err2str(err));
            v->log_end[i] = -1;
            all = false;
        }
    }
    rd_kafka_topic_partition_list_destroy(ends);
    return all;
}

/* Whether desc with no committed offsets is how Kafka describes a group it
 * does not know: Dead, no members. */
static bool group_unknown(const rd_kafka_ConsumerGroupDescription_t *desc, int ncommitted)
{
    return rd_kafka_ConsumerGroupDescription_state(desc) == RD_KAFKA_CONSUMER_GROUP_STATE_DEAD &&
           rd_kafka_ConsumerGroupDescription_member_count(desc) == 0 && ncommitted == 0;
}

static int group_describe(int argc, char **argv, struct cli_globals *g)
{
    struct cli_parser p;
    cli_parser_init(&p, argc, argv, "", NULL, describe_usage, g);
    int opt = cli_parser_next(&p);
    int code;
    const char *group = group_operand(&p, opt, &code);
    if (group == NULL)
        return code;

    rd_kafka_t *rk = cli_admin_client(g, &code);
    if (rk == NULL)
        return code;
    rd_kafka_event_t *ev = NULL;
    const rd_kafka_ConsumerGroupDescription_t *desc = NULL;
    code = describe_group(rk, g, group, &ev, &desc);
    rd_kafka_topic_partition_list_t *committed = NULL;
    if (code == CLI_EXIT_OK)
        code = committed_offsets(rk, g, group, &committed);
    if (code == CLI_EXIT_OK && group_unknown(desc, committed->cnt)) {
        cli_error("unknown group '%s'", group);
        code = CLI_EXIT_UNKNOWN_GROUP;
    }
    if (code == CLI_EXIT_OK) {
        struct group_view v = {.group = group, .desc = desc};
        v.rows = group_rows(desc, committed);
        v.log_end = xcalloc((size_t)v.rows->cnt + 1, sizeof(*v.log_end));
        /* The members and committed offsets stand on their own; lag without
         * log end offsets is incomplete, which the exit code says. */
        if (!fill_log_ends(rk, g, &v))
            code = CLI_EXIT_ERROR;
        if (g->format == CLI_FORMAT_JSON)
            print_group_json(&v);
        else
            print_group_text(&v);
        free(v.log_end);
        rd_kafka_topic_partition_list_destroy(v.rows);
    }
    if (committed != NULL)
        rd_kafka_topic_partition_list_destroy(committed);
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    rd_kafka_destroy(rk);
    return code;
}

/* ---- group delete ---- */

static int group_delete(int argc, char **argv, struct cli_globals *g)
{
    struct cli_parser p;
    cli_parser_init(&p, argc, argv, "", NULL, delete_usage, g);
    int opt = cli_parser_next(&p);
    int code;
    const char *group = group_operand(&p, opt, &code);
    if (group == NULL)
        return code;

    rd_kafka_t *rk = cli_admin_client(g, &code);
    if (rk == NULL)
        return code;
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_DeleteGroup_t *dg = rd_kafka_DeleteGroup_new(group);
    rd_kafka_AdminOptions_t *opts = cli_admin_options(rk, RD_KAFKA_ADMIN_OP_DELETEGROUPS, g);
    rd_kafka_DeleteGroups(rk, &dg, 1, opts, q);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_DeleteGroup_destroy(dg);
    rd_kafka_event_t *ev = cli_admin_wait(q, RD_KAFKA_EVENT_DELETEGROUPS_RESULT, g, &code);
    rd_kafka_queue_destroy(q);
    if (ev != NULL) {
        size_t n = 0;
        const rd_kafka_group_result_t **res =
            rd_kafka_DeleteGroups_result_groups(rd_kafka_event_DeleteGroups_result(ev), &n);
        (void)group_result(res, n, "DeleteGroups", group, "delete", &code);
        rd_kafka_event_destroy(ev);
    }
    if (code == CLI_EXIT_OK)
        cli_print_deleted(g, "group", "group", group);
    rd_kafka_destroy(rk);
    return code;
}

/* ---- group seek ---- */

/* The partitions a seek moves: every partition of topic, or (topic NULL)
 * every partition in committed. *out is owned by the caller. */
static int seek_partitions(rd_kafka_t *rk, const struct cli_globals *g, const char *topic,
                           const rd_kafka_topic_partition_list_t *committed,
                           rd_kafka_topic_partition_list_t **out)
{
    *out = NULL;
    if (topic == NULL) {
        *out = rd_kafka_topic_partition_list_copy(committed);
        return CLI_EXIT_OK;
    }
    const struct rd_kafka_metadata *md = NULL;
    int code = cli_fetch_metadata(rk, g, topic, &md);
    if (code != CLI_EXIT_OK)
        return code;
    const rd_kafka_metadata_topic_t *t = &md->topics[0];
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(t->partition_cnt);
    for (int i = 0; i < t->partition_cnt; i++)
        rd_kafka_topic_partition_list_add(list, topic, t->partitions[i].id);
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_partition_list_sort(list, NULL, NULL);
    *out = list;
    return CLI_EXIT_OK;
}

/* Sets each target's .offset to where `to` lands on its partition, from
 * the partitions' log start, log end and (for a timestamp) ListOffsets
 * answers. Returns CLI_EXIT_OK or an exit code after saying why. */
static int resolve_seek(rd_kafka_t *rk, const struct cli_globals *g,
                        rd_kafka_topic_partition_list_t *targets, const struct cli_seek_target *to)
{
    assert(targets->cnt > 0);
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    rd_kafka_topic_partition_list_t *starts = NULL, *ends = NULL, *at_time = NULL;
    bool ok = true;
    if (to->kind == CLI_SEEK_EARLIEST || to->kind == CLI_SEEK_OFFSET) {
        starts = cli_list_offsets(rk, targets, RD_KAFKA_OFFSET_BEGINNING, g, &err);
        ok = starts != NULL;
    }
    if (ok && to->kind != CLI_SEEK_EARLIEST) {
        ends = cli_list_offsets(rk, targets, RD_KAFKA_OFFSET_END, g, &err);
        ok = ends != NULL;
    }
    if (ok && to->kind == CLI_SEEK_TIMESTAMP) {
        at_time = cli_list_offsets(rk, targets, to->value, g, &err);
        ok = at_time != NULL;
    }
    int code = CLI_EXIT_OK;
    if (!ok) {
        cli_error("cannot look up the partitions' offsets: %s", rd_kafka_err2str(err));
        code = cli_exit_for_error(err);
    }
    for (int i = 0; code == CLI_EXIT_OK && i < targets->cnt; i++) {
        rd_kafka_topic_partition_t *t = &targets->elems[i];
        int64_t start = -1, end = -1, found = -1;
        err = RD_KAFKA_RESP_ERR_NO_ERROR;
        if (starts != NULL)
            err = cli_offset_answer(starts, t->topic, t->partition, &start);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR && ends != NULL)
            err = cli_offset_answer(ends, t->topic, t->partition, &end);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR && at_time != NULL)
            err = cli_offset_answer(at_time, t->topic, t->partition, &found);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR &&
            ((starts != NULL && start < 0) || (ends != NULL && end < 0)))
            err = RD_KAFKA_RESP_ERR__NO_OFFSET;
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            cli_error("cannot look up the offsets of %s [%d]: %s", t->topic, t->partition,
                      rd_kafka_err2str(err));
            code = cli_exit_for_error(err);
            break;
        }
        switch (to->kind) {
        case CLI_SEEK_EARLIEST:
            t->offset = start;
            break;
        case CLI_SEEK_LATEST:
            t->offset = end;
            break;
        case CLI_SEEK_TIMESTAMP:
            t->offset = found >= 0 ? found : end;
            break;
        case CLI_SEEK_OFFSET:
            t->offset = to->value < start ? start : to->value > end ? end : to->value;
            if (t->offset != to->value)
                cli_warn("%s [%d]: offset %lld is outside %lld..%lld; using %lld", t->topic,
                         t->partition, (long long)to->value, (long long)start, (long long)end,
                         (long long)t->offset);
            break;
        }
        assert(t->offset >= 0);
    }
    if (starts != NULL)
        rd_kafka_topic_partition_list_destroy(starts);
    if (ends != NULL)
        rd_kafka_topic_partition_list_destroy(ends);
    if (at_time != NULL)
        rd_kafka_topic_partition_list_destroy(at_time);
    return code;
}

/* Commits targets' offsets for the group (OffsetCommit outside any
 * generation). Returns CLI_EXIT_OK or an exit code after saying why. */
static int commit_seek(rd_kafka_t *rk, const struct cli_globals *g, const char *group,
                       const rd_kafka_topic_partition_list_t *targets)
{
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opts =
        cli_admin_options(rk, RD_KAFKA_ADMIN_OP_ALTERCONSUMERGROUPOFFSETS, g);
    rd_kafka_AlterConsumerGroupOffsets_t *req =
        rd_kafka_AlterConsumerGroupOffsets_new(group, targets);
    rd_kafka_AlterConsumerGroupOffsets(rk, &req, 1, opts, q);
    rd_kafka_AlterConsumerGroupOffsets_destroy(req);
    rd_kafka_AdminOptions_destroy(opts);
    int code = CLI_EXIT_OK;
    rd_kafka_event_t *ev =
        cli_admin_wait(q, RD_KAFKA_EVENT_ALTERCONSUMERGROUPOFFSETS_RESULT, g, &code);
    rd_kafka_queue_destroy(q);
    if (ev == NULL)
        return code;
    size_t n = 0;
    const rd_kafka_group_result_t **res = rd_kafka_AlterConsumerGroupOffsets_result_groups(
        rd_kafka_event_AlterConsumerGroupOffsets_result(ev), &n);
    const rd_kafka_group_result_t *gr = group_result(res, n, "OffsetCommit", group, "seek", &code);
    const rd_kafka_topic_partition_list_t *parts =
        gr != NULL ? rd_kafka_group_result_partitions(gr) : NULL;
    if (gr != NULL) {
        for (int i = 0; parts != NULL && i < parts->cnt; i++) {
            const rd_kafka_topic_partition_t *p = &parts->elems[i];
            if (p->err == RD_KAFKA_RESP_ERR_NO_ERROR)
                continue;
            if (refused_for_members(p->err)) {
                /* Joined since describe looked; the members' commits win. */
                code = group_error_exit(group, "seek", RD_KAFKA_RESP_ERR_NON_EMPTY_GROUP, NULL);
                break;
            }
            cli_error("cannot commit the offset of %s [%d]: %s", p->topic, p->partition,
                      rd_kafka_err2str(p->err));
            if (code == CLI_EXIT_OK)
                code = cli_exit_for_error(p->err);
        }
    }
    rd_kafka_event_destroy(ev);
    return code;
}

static void print_seek(const char *group, const rd_kafka_topic_partition_list_t *targets,
                       const rd_kafka_topic_partition_list_t *committed,
                       const struct cli_globals *g)
{
    struct json_writer w;
    struct cli_table *t = NULL;
    if (g->format == CLI_FORMAT_JSON) {
        json_init(&w, stdout);
        json_begin_object(&w);
        json_key(&w, "group");
        json_string(&w, group);
        json_key(&w, "partitions");
        json_begin_array(&w);
    } else {
        static const char *const headers[] = {"TOPIC", "PARTITION", "PREVIOUS", "OFFSET"};
        t = table_new(4, headers);
    }
    for (int i = 0; i < targets->cnt; i++) {
        const rd_kafka_topic_partition_t *p = &targets->elems[i];
        const rd_kafka_topic_partition_t *before = rd_kafka_topic_partition_list_find(
            (rd_kafka_topic_partition_list_t *)committed, p->topic, p->partition);
        int64_t previous = before != NULL ? before->offset : -1;
        if (t == NULL) {
            json_begin_object(&w);
            json_key(&w, "topic");
            json_string(&w, p->topic);
            json_key(&w, "partition");
            json_int(&w, p->partition);
            json_key(&w, "previous");
            json_offset(&w, previous);
            json_key(&w, "offset");
            json_int(&w, p->offset);
            json_end_object(&w);
        } else {
            table_row(t);
            table_cell(t, "%s", p->topic);
            table_cell(t, "%d", p->partition);
            table_cell_offset(t, previous);
            table_cell(t, "%lld", (long long)p->offset);
        }
    }
    if (t == NULL) {
        json_end_array(&w);
        json_end_object(&w);
        json_finish(&w);
    } else {
        table_print(t, stdout);
        table_free(t);
    }
}

/* Refuses (CLI_EXIT_GROUP_NOT_EMPTY, after saying why) a group that has
 * members or is between generations. */
static int check_group_idle(const char *group, const rd_kafka_ConsumerGroupDescription_t *desc)
{
    rd_kafka_consumer_group_state_t state = rd_kafka_ConsumerGroupDescription_state(desc);
    size_t nmembers = rd_kafka_ConsumerGroupDescription_member_count(desc);
    if (nmembers == 0 && (state == RD_KAFKA_CONSUMER_GROUP_STATE_EMPTY ||
                          state == RD_KAFKA_CONSUMER_GROUP_STATE_DEAD))
        return CLI_EXIT_OK;
    cli_error("cannot seek group '%s': it is not empty (state %s, %zu members); stop its "
              "consumers first",
              group, rd_kafka_consumer_group_state_name(state), nmembers);
    return CLI_EXIT_GROUP_NOT_EMPTY;
}

enum { OPT_TO = 0x2000 };

static int group_seek(int argc, char **argv, struct cli_globals *g)
{
    static const struct option longopts[] = {
        {"to", required_argument, NULL, OPT_TO},
        {"topic", required_argument, NULL, 't'},
        {NULL, 0, NULL, 0},
    };
    struct cli_parser p;
    cli_parser_init(&p, argc, argv, "t:", longopts, seek_usage, g);
    struct cli_seek_target to;
    bool have_to = false;
    const char *topic = NULL;
    int opt;
    while ((opt = cli_parser_next(&p)) >= 0) {
        switch (opt) {
        case OPT_TO:
            if (!cli_parse_seek_target(optarg, &to)) {
                cli_usage_error(seek_usage,
                                "--to wants earliest, latest, an offset >= 0 or @TIMESTAMP "
                                "(ms), got '%s'",
                                optarg);
                return CLI_EXIT_USAGE;
            }
            have_to = true;
            break;
        case 't':
            if (!cli_topic_name_valid(optarg)) {
                cli_usage_error(seek_usage, "invalid topic name '%s'", optarg);
                return CLI_EXIT_USAGE;
            }
            topic = optarg;
            break;
        default:
            return CLI_EXIT_USAGE;
        }
    }
    int code;
    const char *group = group_operand(&p, opt, &code);
    if (group == NULL)
        return code;
    if (!have_to) {
        cli_usage_error(seek_usage, "missing --to WHERE");
        return CLI_EXIT_USAGE;
    }

    rd_kafka_t *rk = cli_admin_client(g, &code);
    if (rk == NULL)
        return code;
    rd_kafka_event_t *ev = NULL;
    const rd_kafka_ConsumerGroupDescription_t *desc = NULL;
    rd_kafka_topic_partition_list_t *committed = NULL, *targets = NULL;
    code = describe_group(rk, g, group, &ev, &desc);
    if (code == CLI_EXIT_OK)
        code = check_group_idle(group, desc);
    if (code == CLI_EXIT_OK)
        code = committed_offsets(rk, g, group, &committed);
    /* With a topic, a new group is fine: the commit creates it. */
    if (code == CLI_EXIT_OK && topic == NULL && group_unknown(desc, committed->cnt)) {
        cli_error("unknown group '%s'", group);
        code = CLI_EXIT_UNKNOWN_GROUP;
    }
    if (code == CLI_EXIT_OK)
        code = seek_partitions(rk, g, topic, committed, &targets);
    if (code == CLI_EXIT_OK && targets->cnt == 0) {
        if (topic != NULL)
            cli_error("topic '%s' has no partitions", topic);
        else
            cli_error("group '%s' has no committed offsets to move; name a topic with -t", group);
        code = CLI_EXIT_ERROR;
    }
    if (code == CLI_EXIT_OK)
        code = resolve_seek(rk, g, targets, &to);
    if (code == CLI_EXIT_OK)
        code = commit_seek(rk, g, group, targets);
    if (code == CLI_EXIT_OK)
        print_seek(group, targets, committed, g);
    if (targets != NULL)
        rd_kafka_topic_partition_list_destroy(targets);
    if (committed != NULL)
        rd_kafka_topic_partition_list_destroy(committed);
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    rd_kafka_destroy(rk);
    return code;
}

/* ---- dispatch ---- */

int cli_cmd_group(int argc, char **argv, struct cli_globals *g)
{
    static const struct cli_subcommand subs[] = {
        {"list", group_list},
        {"describe", group_describe},
        {"delete", group_delete},
        {"seek", group_seek},
    };
    return cli_run_subcommand(argc, argv, g, group_usage, subs, sizeof(subs) / sizeof(subs[0]));
}
