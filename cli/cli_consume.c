/* vltava consume TOPIC: prints records, kcat style.
 *
 * Without -g it uses librdkafka's legacy simple consumer
 * (rd_kafka_consume_start_queue): in 2.0.2 the high-level assign() requires
 * a group.id, and a console consumer has no business joining a group or
 * committing offsets unless asked. With -g GROUP it is a group member
 * (subscribe) that commits what it printed. */
#include "cli.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_output.h"
#include "xalloc.h"

static const char consume_usage[] =
    "Usage: vltava consume TOPIC [-o beginning|end|OFFSET|-N] [-n COUNT]\n"
    "                            [-p PARTITION] [-e] [-f FORMAT] [-g GROUP]\n"
    "\n"
    "Prints records of every partition (or one) of TOPIC. Runs until COUNT\n"
    "records, the end of the partitions (-e), or SIGINT/SIGTERM.\n"
    "\n"
    "  -o, --offset WHERE   beginning (default), end, an absolute OFFSET, or -N\n"
    "                       for the last N records of each partition\n"
    "  -n, --count COUNT    stop after COUNT records\n"
    "  -p, --partition N    only partition N\n"
    "  -e, --exit           stop once every partition reached its end\n"
    "  -g, --group GROUP    consume as a member of consumer group GROUP: the\n"
    "                       group assigns the partitions (no -p), each starts\n"
    "                       at the group's committed offset, and the offsets\n"
    "                       of printed records are committed (every 5 s and on\n"
    "                       exit). -o beginning|end only says where to start\n"
    "                       in partitions without a committed offset; -e\n"
    "                       stops once every assigned partition reached its\n"
    "                       end\n"
    "  -f, --fmt FORMAT     text output per record (default '%s\\n'):\n"
    "                       %t topic  %p partition  %o offset  %T timestamp (ms)\n"
    "                       %k key  %K key length  %s value  %S value length\n"
    "                       %% percent  \\n newline  \\t tab  \\\\ backslash\n"
    "\n"
    "With --format json each record is one JSON object per line with the keys\n"
    "topic, partition, offset, timestamp, key, value (key and value are null\n"
    "when absent). Exits 4 if the topic or partition is unknown.\n"
    "Global options: see vltava --help.\n";

#define CONSUME_BATCH 512

static volatile sig_atomic_t consume_stop;

static void on_stop_signal(int sig)
{
    (void)sig;
    consume_stop = 1;
}

/* Parses -o; returns false on a bad value. */
static bool parse_start_offset(const char *text, int64_t *offset)
{
    int64_t v;
    if (strcmp(text, "beginning") == 0)
        *offset = RD_KAFKA_OFFSET_BEGINNING;
    else if (strcmp(text, "end") == 0)
        *offset = RD_KAFKA_OFFSET_END;
    else if (text[0] == '-' && cli_parse_int(text + 1, 1, INT32_MAX, &v))
        *offset = RD_KAFKA_OFFSET_TAIL(v);
    else if (text[0] != '-' && cli_parse_int(text, 0, INT64_MAX, &v))
        *offset = v;
    else
        return false;
    return true;
}

struct consume_opts {
    int64_t start;
    int64_t count;     /* 0: unlimited */
    int64_t partition; /* -1: all */
    bool exit_at_end;
    struct record_format fmt;
};

/* The consume loop proper; rk and rkt belong to the caller. */
static int consume_loop(rd_kafka_t *rk, rd_kafka_topic_t *rkt, const char *topic,
                        const int32_t *parts, int nparts, const struct consume_opts *o,
                        const struct cli_globals *g)
{
    assert(nparts > 0);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    int started = 0;
    int code = CLI_EXIT_OK;
    for (; started < nparts; started++) {
        if (rd_kafka_consume_start_queue(rkt, parts[started], o->start, q) < 0) {
            cli_error("cannot start consuming %s [%d]: %s", topic, parts[started],
                      rd_kafka_err2str(rd_kafka_last_error()));
            code = CLI_EXIT_ERROR;
            break;
        }
    }
    bool *at_end = xcalloc((size_t)nparts, sizeof(bool));
    int parts_at_end = 0;
    int64_t printed = 0;
    rd_kafka_message_t *batch[CONSUME_BATCH];
    while (code == CLI_EXIT_OK && !consume_stop && (o->count == 0 || printed < o->count) &&
           !(o->exit_at_end && parts_at_end == nparts)) {
        /* Client errors (a broker down) wait on the main queue until
         * served; without an error callback serving only logs them. */
        rd_kafka_poll(rk, 0);
        ssize_t n = rd_kafka_consume_batch_queue(q, 200, batch, CONSUME_BATCH);
        if (n < 0) {
            cli_error("consume: %s", rd_kafka_err2str(rd_kafka_last_error()));
            code = CLI_EXIT_ERROR;
            break;
        }
        for (ssize_t i = 0; i < n; i++) {
            rd_kafka_message_t *m = batch[i];
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                for (int k = 0; k < nparts; k++)
                    if (parts[k] == m->partition && !at_end[k]) {
                        at_end[k] = true;
                        parts_at_end++;
                    }
            } else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
                cli_error("consume %s [%d]: %s", topic, m->partition, rd_kafka_message_errstr(m));
                if (code == CLI_EXIT_OK)
                    code = cli_exit_for_error(m->err) == CLI_EXIT_UNKNOWN_TOPIC
                               ? CLI_EXIT_UNKNOWN_TOPIC
                               : CLI_EXIT_ERROR;
            } else if (code == CLI_EXIT_OK && (o->count == 0 || printed < o->count)) {
                if (g->format == CLI_FORMAT_JSON)
                    record_print_json(stdout, m, topic);
                else
                    record_print_text(stdout, &o->fmt, m, topic);
                printed++;
            }
            rd_kafka_message_destroy(m);
        }
        if (fflush(stdout) != 0) {
            /* EPIPE: the reader went away; that ends a console consumer. */
            if (errno != EPIPE) {
                cli_error("writing stdout: %s", strerror(errno));
                code = CLI_EXIT_ERROR;
            }
            break;
        }
    }
    for (int i = 0; i < started; i++)
        rd_kafka_consume_stop(rkt, parts[i]);
    free(at_end);
    rd_kafka_queue_destroy(q);
    return code;
}

/* ---- As a group member (-g) ---- */

/* A group member's state; the rebalance callback's opaque. */
struct group_member {
    const char *group;
    int32_t *assigned; /* the partitions the group gives us; owned */
    bool *at_end;      /* per assigned partition: reached its end (-e); owned */
    int nassigned;
    int nat_end;
    bool ever_assigned;
    /* Per partition, the offset after the last record printed whose offset
     * is not stored yet; owned. Stored only once stdout took the records,
     * so a commit never covers a record the reader did not get. */
    rd_kafka_topic_partition_list_t *printed;
};

/* Flushes stdout, then stores the offsets of what it carried for the next
 * commit. Returns false when stdout failed (errno says how). */
static bool flush_printed(rd_kafka_t *rk, struct group_member *gm)
{
    if (fflush(stdout) != 0)
        return false;
    if (gm->printed->cnt > 0) {
        /* A partition revoked meanwhile refuses the store; its next owner
         * reads those records again (at least once). */
        rd_kafka_offsets_store(rk, gm->printed);
        rd_kafka_topic_partition_list_destroy(gm->printed);
        gm->printed = rd_kafka_topic_partition_list_new(gm->nassigned > 0 ? gm->nassigned : 1);
    }
    return true;
}

static void note_printed(struct group_member *gm, const rd_kafka_message_t *m, const char *topic)
{
    rd_kafka_topic_partition_t *p =
        rd_kafka_topic_partition_list_find(gm->printed, topic, m->partition);
    if (p == NULL)
        p = rd_kafka_topic_partition_list_add(gm->printed, topic, m->partition);
    p->offset = m->offset + 1;
}

/* Eager rebalancing (the default range,roundrobin assignors): the whole
 * assignment is revoked, then a new one given. What was printed is stored
 * first, so the commit librdkafka makes on revocation carries it. */
static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct group_member *gm = opaque;
    assert(strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") != 0);
    if (err != RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
        (void)flush_printed(rk, gm); /* a failed stdout ends the loop anyway */
    free(gm->assigned);
    free(gm->at_end);
    gm->assigned = NULL;
    gm->at_end = NULL;
    gm->nassigned = gm->nat_end = 0;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        gm->assigned = xcalloc((size_t)parts->cnt + 1, sizeof(*gm->assigned));
        gm->at_end = xcalloc((size_t)parts->cnt + 1, sizeof(*gm->at_end));
        for (int i = 0; i < parts->cnt; i++)
            gm->assigned[i] = parts->elems[i].partition;
        gm->nassigned = parts->cnt;
        gm->ever_assigned = true;
        rd_kafka_assign(rk, parts);
    } else {
        rd_kafka_assign(rk, NULL);
    }
}

/* A consumer error's exit code; CLI_EXIT_OK, after a warning, for those
 * librdkafka recovers from by itself (a broker or the coordinator away). */
static int group_consume_error(const rd_kafka_message_t *m, const char *topic)
{
    switch (m->err) {
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__RESOLVE:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
    case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS:
        cli_warn("consume %s: %s (retrying)", topic, rd_kafka_message_errstr(m));
        return CLI_EXIT_OK;
    default:
        cli_error("consume %s: %s", topic, rd_kafka_message_errstr(m));
        return cli_exit_for_error(m->err) == CLI_EXIT_UNKNOWN_TOPIC ? CLI_EXIT_UNKNOWN_TOPIC
                                                                    : CLI_EXIT_ERROR;
    }
}

static void note_partition_end(struct group_member *gm, int32_t partition)
{
    for (int i = 0; i < gm->nassigned; i++)
        if (gm->assigned[i] == partition && !gm->at_end[i]) {
            gm->at_end[i] = true;
            gm->nat_end++;
        }
}

/* Commits the offsets stored for what was printed and waits for the
 * answer, so that the group's offsets cover every printed record when the
 * command returns. rd_kafka_commit() would wait without a bound for a
 * coordinator; this waits what is left of the closing phase. Returns an exit code after saying why.
 */
static int commit_printed(rd_kafka_t *rk, const struct cli_globals *g,
                          const struct group_member *gm)
{
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_resp_err_t err = rd_kafka_commit_queue(rk, NULL, q, NULL, NULL);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, cli_wait_ms(g));
        if (ev == NULL) {
            err = RD_KAFKA_RESP_ERR__TIMED_OUT;
        } else {
            assert(rd_kafka_event_type(ev) == RD_KAFKA_EVENT_OFFSET_COMMIT);
            err = rd_kafka_event_error(ev);
            rd_kafka_event_destroy(ev);
        }
    }
    rd_kafka_queue_destroy(q);
    /* NO_OFFSET: nothing new to commit. */
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR__NO_OFFSET)
        return CLI_EXIT_OK;
    cli_error("cannot commit the offsets of group '%s': %s", gm->group, rd_kafka_err2str(err));
    return cli_exit_for_error(err) == CLI_EXIT_UNREACHABLE ? CLI_EXIT_UNREACHABLE : CLI_EXIT_ERROR;
}

/* Leaves the group: the revocation runs on_rebalance (which stores what
 * was printed for librdkafka's commit on unassign), then LeaveGroup.
 * rd_kafka_consumer_close() would wait without a bound for the
 * coordinator; this serves the close for --timeout at most, after which
 * the group drops the member at its session timeout. The caller destroys
 * rk with RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE. */
static void leave_group(rd_kafka_t *rk, const struct cli_globals *g, struct group_member *gm)
{
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_error_t *error = rd_kafka_consumer_close_queue(rk, q);
    if (error != NULL) {
        cli_warn("leaving group '%s': %s", gm->group, rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        rd_kafka_queue_destroy(q);
        return;
    }
    int64_t deadline_ms = cli_wait_deadline_ms(g);
    while (!rd_kafka_consumer_closed(rk)) {
        int64_t left_ms = deadline_ms - cli_now_ms();
        if (left_ms <= 0) {
            cli_warn("group '%s' not left within --timeout; the group drops this member at its "
                     "session timeout",
                     gm->group);
            break;
        }
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, left_ms < 100 ? (int)left_ms : 100);
        if (ev == NULL)
            continue;
        /* Fetched records still queued are dropped unprinted: their
         * offsets were never stored. */
        if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE)
            on_rebalance(rk, rd_kafka_event_error(ev), rd_kafka_event_topic_partition_list(ev), gm);
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_queue_destroy(q);
}

/* The consume loop of a group member; rk (a consumer with gm as its
 * rebalance opaque) belongs to the caller and is closed here: the final
 * commit, then the group is left. */
static int consume_group_loop(rd_kafka_t *rk, const char *topic, const struct consume_opts *o,
                              const struct cli_globals *g, struct group_member *gm)
{
    rd_kafka_topic_partition_list_t *subscription = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(subscription, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(rk, subscription);
    rd_kafka_topic_partition_list_destroy(subscription);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        cli_error("cannot subscribe to %s: %s", topic, rd_kafka_err2str(err));
        return CLI_EXIT_ERROR;
    }
    int code = CLI_EXIT_OK;
    bool stdout_ok = true;
    int stdout_errno = 0;
    int64_t printed = 0, unflushed = 0;
    int64_t warn_at_ms = cli_now_ms() + g->timeout_ms;
    bool warned = false;
    while (code == CLI_EXIT_OK && !consume_stop && (o->count == 0 || printed < o->count) &&
           !(o->exit_at_end && gm->nassigned > 0 && gm->nat_end == gm->nassigned)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 0);
        /* Output goes out whenever nothing more is ready, or per batch: it
         * shows as records arrive, without a write per record under load. */
        if (unflushed > 0 && (m == NULL || unflushed >= CONSUME_BATCH)) {
            stdout_ok = flush_printed(rk, gm);
            if (!stdout_ok) {
                stdout_errno = errno;
                if (m != NULL)
                    rd_kafka_message_destroy(m);
                break;
            }
            unflushed = 0;
        }
        if (m == NULL)
            m = rd_kafka_consumer_poll(rk, 200);
        if (m == NULL) {
            if (!gm->ever_assigned && !warned && cli_now_ms() >= warn_at_ms) {
                cli_warn("group '%s' assigned no partitions within %d ms; still waiting", gm->group,
                         g->timeout_ms);
                warned = true;
            }
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            note_partition_end(gm, m->partition);
        } else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            code = group_consume_error(m, topic);
        } else {
            if (g->format == CLI_FORMAT_JSON)
                record_print_json(stdout, m, topic);
            else
                record_print_text(stdout, &o->fmt, m, topic);
            note_printed(gm, m, topic);
            printed++;
            unflushed++;
        }
        rd_kafka_message_destroy(m);
    }
    if (stdout_ok) {
        stdout_ok = flush_printed(rk, gm);
        if (!stdout_ok)
            stdout_errno = errno;
    }
    /* EPIPE: the reader went away; that ends a console consumer. */
    if (!stdout_ok && stdout_errno != EPIPE) {
        cli_error("writing stdout: %s", strerror(stdout_errno));
        if (code == CLI_EXIT_OK)
            code = CLI_EXIT_ERROR;
    }
    /* The closing phase: the commit and leaving the group share --timeout. */
    cli_phase_begin(g);
    /* A member that printed nothing has nothing to commit, and may never
     * have found the coordinator to commit to. */
    int commit_code = printed > 0 ? commit_printed(rk, g, gm) : CLI_EXIT_OK;
    if (code == CLI_EXIT_OK)
        code = commit_code;
    leave_group(rk, g, gm);
    return code;
}

/* Consumer settings of a group member; false after printing why. */
static bool group_conf(rd_kafka_conf_t *conf, const char *group, int64_t start,
                       struct group_member *gm)
{
    assert(start == RD_KAFKA_OFFSET_BEGINNING || start == RD_KAFKA_OFFSET_END);
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_opaque(conf, gm);
    return cli_conf_set(conf, "group.id", group) &&
           cli_conf_set(conf, "enable.auto.commit", "true") &&
           /* flush_printed stores offsets, after stdout took the records */
           cli_conf_set(conf, "enable.auto.offset.store", "false") &&
           cli_conf_set(conf, "auto.offset.reset",
                        start == RD_KAFKA_OFFSET_BEGINNING ? "earliest" : "latest");
}

int cli_cmd_consume(int argc, char **argv, struct cli_globals *g)
{
    static const struct option longopts[] = {
        {"offset", required_argument, NULL, 'o'},
        {"count", required_argument, NULL, 'n'},
        {"partition", required_argument, NULL, 'p'},
        {"exit", no_argument, NULL, 'e'},
        {"fmt", required_argument, NULL, 'f'},
        {"group", required_argument, NULL, 'g'},
        {NULL, 0, NULL, 0},
    };
    struct cli_parser p;
    cli_parser_init(&p, argc, argv, "o:n:p:ef:g:", longopts, consume_usage, g);
    struct consume_opts o = {.start = RD_KAFKA_OFFSET_BEGINNING, .partition = -1};
    const char *fmt_spec = NULL;
    const char *group = NULL;
    int opt;
    while ((opt = cli_parser_next(&p)) >= 0) {
        switch (opt) {
        case 'o':
            if (!parse_start_offset(optarg, &o.start)) {
                cli_usage_error(consume_usage,
                                "-o wants beginning, end, an offset >= 0 or -N, got '%s'", optarg);
                return CLI_EXIT_USAGE;
            }
            break;
        case 'n':
            if (!cli_parse_int(optarg, 1, INT64_MAX, &o.count)) {
                cli_usage_error(consume_usage, "-n wants a count > 0, got '%s'", optarg);
                return CLI_EXIT_USAGE;
            }
            break;
        case 'p':
            if (!cli_parse_partition(&p, optarg, &o.partition))
                return CLI_EXIT_USAGE;
            break;
        case 'e':
            o.exit_at_end = true;
            break;
        case 'f':
            fmt_spec = optarg;
            break;
        case 'g':
            if (!cli_group_id_valid(optarg)) {
                cli_usage_error(consume_usage, "-g wants a group id of 1-%d bytes",
                                CLI_MAX_GROUP_ID_LEN);
                return CLI_EXIT_USAGE;
            }
            group = optarg;
            break;
        default:
            return CLI_EXIT_USAGE;
        }
    }
    int code;
    const char *topic = cli_topic_operand(&p, opt, "TOPIC", "", &code);
    if (topic == NULL)
        return code;
    if (group != NULL && o.partition >= 0) {
        cli_usage_error(consume_usage,
                        "-p and -g exclude each other: the group assigns partitions");
        return CLI_EXIT_USAGE;
    }
    if (group != NULL && o.start != RD_KAFKA_OFFSET_BEGINNING && o.start != RD_KAFKA_OFFSET_END) {
        cli_usage_error(consume_usage, "with -g, -o takes beginning or end: where to start in "
                                       "partitions without a committed offset");
        return CLI_EXIT_USAGE;
    }
    if (fmt_spec != NULL && g->format == CLI_FORMAT_JSON) {
        cli_usage_error(consume_usage, "-f FORMAT and --format json exclude each other");
        return CLI_EXIT_USAGE;
    }
    char fmt_err[128];
    if (!record_format_compile(fmt_spec != NULL ? fmt_spec : "%s\\n", &o.fmt, fmt_err,
                               sizeof(fmt_err))) {
        cli_usage_error(consume_usage, "-f: %s", fmt_err);
        return CLI_EXIT_USAGE;
    }

    code = cli_check_reachable(g);
    if (code != CLI_EXIT_OK) {
        record_format_free(&o.fmt);
        return code;
    }
    struct group_member gm = {.group = group};
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk = NULL;
    if (cli_conf_set(conf, "enable.partition.eof", "true") &&
        (group == NULL || group_conf(conf, group, o.start, &gm)))
        rk = cli_kafka_new(g, RD_KAFKA_CONSUMER, conf);
    else
        rd_kafka_conf_destroy(conf);
    if (rk == NULL) {
        record_format_free(&o.fmt);
        return CLI_EXIT_ERROR;
    }
    /* Client errors (a broker down) are queued for the application until
     * served; a group member serves them with its records. */
    if (group != NULL)
        rd_kafka_poll_set_consumer(rk);
    const struct rd_kafka_metadata *md = NULL;
    code = cli_fetch_metadata(rk, g, topic, &md);
    int32_t *parts = NULL;
    int nparts = 0;
    if (code == CLI_EXIT_OK) {
        const rd_kafka_metadata_topic_t *mt = &md->topics[0];
        parts = xcalloc((size_t)mt->partition_cnt + 1, sizeof(int32_t));
        for (int i = 0; i < mt->partition_cnt; i++)
            if (o.partition < 0 || mt->partitions[i].id == o.partition)
                parts[nparts++] = mt->partitions[i].id;
        rd_kafka_metadata_destroy(md);
    }
    if (code == CLI_EXIT_OK && nparts == 0) {
        if (o.partition >= 0)
            cli_error("topic '%s' has no partition %lld", topic, (long long)o.partition);
        else
            cli_error("topic '%s' has no partitions", topic);
        code = CLI_EXIT_UNKNOWN_TOPIC;
    } else if (code == CLI_EXIT_OK) {
        /* The records stream for as long as the user wants them. */
        cli_phase_end();
        consume_stop = 0;
        struct sigaction sa = {.sa_handler = on_stop_signal};
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        if (group != NULL) {
            gm.printed = rd_kafka_topic_partition_list_new(nparts);
            code = consume_group_loop(rk, topic, &o, g, &gm);
        } else {
            rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
            assert(rkt != NULL);
            code = consume_loop(rk, rkt, topic, parts, nparts, &o, g);
            rd_kafka_topic_destroy(rkt);
        }
    }
    cli_phase_begin(g);
    free(parts);
    record_format_free(&o.fmt);
    /* A member has left (or stopped waiting to) in consume_group_loop, and
     * one that never subscribed has no group to leave; rd_kafka_destroy()
     * would close again, without a bound. */
    rd_kafka_destroy_flags(rk, group != NULL ? RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE : 0);
    if (gm.printed != NULL)
        rd_kafka_topic_partition_list_destroy(gm.printed);
    free(gm.assigned);
    free(gm.at_end);
    return code;
}
