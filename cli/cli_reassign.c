/* Partition reassignment from the CLI: `vltava topic move`, `vltava cluster
 * reassignments` and `vltava cluster rebalance`.
 *
 * librdkafka 2.0.2 has no reassignment API, so AlterPartitionReassignments
 * v0 and ListPartitionReassignments v0 (both flexible: request header v2,
 * response header v1) go to the controller as raw frames: a Metadata v1
 * answer from a bootstrap broker names the controller and its endpoint.
 * An answer of NOT_CONTROLLER (the controller moved meanwhile) is retried
 * on the new controller within the phase.
 *
 * The rebalance plan (cli_rebalance_plan) is pure: unit-tested in
 * cli/test/cli_reassign_test.c. */
#include "cli.h"
#include "cli_output.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kafka_codec.h"
#include "xalloc.h"

#define API_ALTER_REASSIGN   45
#define API_LIST_REASSIGN    46
#define KAFKA_NOT_CONTROLLER 41
#define RAW_CORRELATION_ID   0x72617373 /* "rass" */
#define RAW_MAX_RESPONSE     (16 << 20)
#define MAX_REPLICAS         64
/* Partitions one AlterPartitionReassignments may name (the broker's bound). */
#define MAX_ALTER_ITEMS  10000
#define POLL_INTERVAL_MS 200

/* ---- Requests to the controller ---- */

static void put_header(kwriter_t *w, int16_t api_key)
{
    kw_i16(w, api_key);
    kw_i16(w, 0); /* both APIs exist in v0 only */
    kw_i32(w, RAW_CORRELATION_ID);
    kw_string_v(w, false, "vltava", -1); /* client id: classic even in header v2 */
    kw_tags_v(w, true);
}

/* Sends body (after a header v2 of api_key) to the controller; *resp is
 * the answer after its size field and response header v1 (xmalloc'd in
 * *frame, the caller's). */
static bool controller_exchange(const struct cli_globals *g, int16_t api_key, const kwriter_t *body,
                                const char *what, uint8_t **frame, kreader_t *resp, char *why,
                                size_t whylen)
{
    assert(api_key == API_ALTER_REASSIGN || api_key == API_LIST_REASSIGN);
    *frame = NULL;
    kwriter_t req;
    kw_init(&req, 256 + body->len);
    size_t size_at = kw_reserve_i32(&req);
    put_header(&req, api_key);
    kw_raw(&req, body->buf, body->len);
    kw_patch_i32(&req, size_at, (int32_t)(req.len - size_at - 4));
    size_t len = 0;
    int32_t controller = -1;
    bool ok = cli_raw_controller_exchange(g, req.buf, req.len, 5, RAW_MAX_RESPONSE, what, frame,
                                          &len, &controller, why, whylen);
    kw_free(&req);
    if (!ok)
        return false;
    kr_init(resp, *frame, len);
    int32_t correlation;
    if (!kr_i32(resp, &correlation) || correlation != RAW_CORRELATION_ID ||
        !kr_tags_v(resp, true)) {
        snprintf(why, whylen, "malformed answer to the %s request from broker %d", what,
                 controller);
        free(*frame);
        *frame = NULL;
        return false;
    }
    return true;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- ListPartitionReassignments ---- */

struct reassignment {
    char *topic; /* owned */
    int32_t partition;
    int32_t *replicas, *adding, *removing; /* owned */
    int32_t nreplicas, nadding, nremoving;
};

static void reassignments_free(struct reassignment *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(r[i].topic);
        free(r[i].replicas);
        free(r[i].adding);
        free(r[i].removing);
    }
    free(r);
}

static bool read_ids(kreader_t *r, int32_t **out, int32_t *n)
{
    *out = NULL;
    *n = 0;
    int32_t count;
    if (!kr_array_v(r, true, 4, &count) || count < 0 || count > MAX_REPLICAS)
        return false;
    *out = xcalloc((size_t)count + 1, sizeof(int32_t));
    for (int32_t i = 0; i < count; i++)
        kr_i32(r, &(*out)[i]); /* kr_array_v checked the bytes */
    *n = count;
    return true;
}

/* Decodes a ListPartitionReassignments v0 body. */
static bool decode_list(kreader_t *r, int16_t *error, struct reassignment **out, size_t *nout)
{
    int32_t throttle, ntopics;
    kslice_t message;
    *out = NULL;
    *nout = 0;
    if (!kr_i32(r, &throttle) || !kr_i16(r, error) || !kr_nullable_string_v(r, true, &message) ||
        !kr_array_v(r, true, 3, &ntopics) || ntopics < 0)
        return false;
    size_t cap = 0;
    for (int32_t t = 0; t < ntopics; t++) {
        kslice_t name;
        int32_t nparts;
        if (!kr_string_v(r, true, &name) || !kr_array_v(r, true, 8, &nparts) || nparts < 0)
            return false;
        if (*nout + (size_t)nparts > cap) {
            cap = *nout + (size_t)nparts;
            *out = xrealloc(*out, (cap + 1) * sizeof(**out));
        }
        for (int32_t p = 0; p < nparts; p++) {
            struct reassignment *x = &(*out)[*nout];
            memset(x, 0, sizeof(*x));
            x->topic = kslice_strdup(name);
            ++*nout; /* owned from here */
            if (!kr_i32(r, &x->partition) || !read_ids(r, &x->replicas, &x->nreplicas) ||
                !read_ids(r, &x->adding, &x->nadding) ||
                !read_ids(r, &x->removing, &x->nremoving) || !kr_tags_v(r, true))
                return false;
        }
        if (!kr_tags_v(r, true))
            return false;
    }
    return kr_tags_v(r, true);
}

/* Every reassignment in progress (retrying NOT_CONTROLLER within the
 * phase). Returns CLI_EXIT_OK or an exit code after a message. */
static int list_reassignments(const struct cli_globals *g, struct reassignment **out, size_t *n)
{
    for (;;) {
        kwriter_t body;
        kw_init(&body, 16);
        kw_i32(&body, g->timeout_ms);
        kw_array_v(&body, true, -1); /* every topic */
        kw_tags_v(&body, true);
        uint8_t *frame;
        kreader_t r;
        char why[300];
        bool ok = controller_exchange(g, API_LIST_REASSIGN, &body, "ListPartitionReassignments",
                                      &frame, &r, why, sizeof(why));
        kw_free(&body);
        if (!ok) {
            cli_error("%s", why);
            return CLI_EXIT_UNREACHABLE;
        }
        int16_t error = 0;
        ok = decode_list(&r, &error, out, n);
        free(frame);
        if (!ok) {
            reassignments_free(*out, *n);
            cli_error("malformed ListPartitionReassignments answer");
            return CLI_EXIT_ERROR;
        }
        if (error == KAFKA_NOT_CONTROLLER &&
            cli_now_ms() + POLL_INTERVAL_MS < cli_wait_deadline_ms(g)) {
            reassignments_free(*out, *n);
            sleep_ms(POLL_INTERVAL_MS);
            continue;
        }
        if (error != 0) {
            reassignments_free(*out, *n);
            cli_error("listing reassignments: %s", rd_kafka_err2str((rd_kafka_resp_err_t)error));
            return cli_exit_for_error((rd_kafka_resp_err_t)error);
        }
        return CLI_EXIT_OK;
    }
}

static void print_ids(char *buf, size_t size, const int32_t *ids, int32_t n)
{
    size_t at = 0;
    buf[0] = '\0';
    for (int32_t i = 0; i < n && at < size; i++)
        at += (size_t)snprintf(buf + at, size - at, "%s%d", i ? "," : "", ids[i]);
}

static void json_ids(struct json_writer *w, const char *key, const int32_t *ids, int32_t n)
{
    json_key(w, key);
    json_begin_array(w);
    for (int32_t i = 0; i < n; i++)
        json_int(w, ids[i]);
    json_end_array(w);
}

static const char reassignments_usage[] =
    "Usage: vltava cluster reassignments [GLOBAL OPTIONS]\n"
    "\n"
    "The partition reassignments in progress: topic, partition, the replica\n"
    "set being written, the replicas being added and those being removed.\n";

int cli_cmd_cluster_reassignments(int argc, char **argv, struct cli_globals *g)
{
    struct cli_parser p;
    cli_parser_init(&p, argc, argv, "", NULL, reassignments_usage, g);
    int code, opt = cli_parser_next(&p);
    if (!cli_no_operand(&p, opt, &code))
        return code;
    cli_phase_begin(g);
    struct reassignment *r;
    size_t n;
    code = list_reassignments(g, &r, &n);
    if (code != CLI_EXIT_OK)
        return code;
    if (g->format == CLI_FORMAT_JSON) {
        struct json_writer w;
        json_init(&w, stdout);
        json_begin_array(&w);
        for (size_t i = 0; i < n; i++) {
            json_begin_object(&w);
            json_key(&w, "topic");
            json_string(&w, r[i].topic);
            json_key(&w, "partition");
            json_int(&w, r[i].partition);
            json_ids(&w, "replicas", r[i].replicas, r[i].nreplicas);
            json_ids(&w, "adding", r[i].adding, r[i].nadding);
            json_ids(&w, "removing", r[i].removing, r[i].nremoving);
            json_end_object(&w);
        }
        json_end_array(&w);
        json_finish(&w);
    } else if (n == 0) {
        printf("No partition reassignment in progress\n");
    } else {
        static const char *const headers[] = {"TOPIC", "PARTITION", "REPLICAS", "ADDING",
                                              "REMOVING"};
        struct cli_table *t = table_new(5, headers);
        char a[800], b[800], c[800];
        for (size_t i = 0; i < n; i++) {
            print_ids(a, sizeof(a), r[i].replicas, r[i].nreplicas);
            print_ids(b, sizeof(b), r[i].adding, r[i].nadding);
            print_ids(c, sizeof(c), r[i].removing, r[i].nremoving);
            table_row(t);
            table_cell(t, "%s", r[i].topic);
            table_cell(t, "%d", r[i].partition);
            table_cell(t, "%s", a);
            table_cell(t, "%s", b[0] ? b : "-");
            table_cell(t, "%s", c[0] ? c : "-");
        }
        table_print(t, stdout);
        table_free(t);
    }
    reassignments_free(r, n);
    return CLI_EXIT_OK;
}

/* ---- AlterPartitionReassignments ---- */

/* One partition to reassign: target replicas, or NULL to cancel. */
struct move {
    const char *topic; /* not owned */
    int32_t partition;
    const int32_t *replicas; /* not owned; NULL: cancel */
    int32_t nreplicas;
    int16_t error; /* the controller's answer */
    char message[200];
};

/* Sends the moves (at most MAX_ALTER_ITEMS, consecutive per topic) and
 * records each answer in them. Retries NOT_CONTROLLER within the phase.
 * Returns CLI_EXIT_OK when every move was answered (each with its own
 * error), else an exit code after a message. */
static int alter_reassignments(const struct cli_globals *g, struct move *moves, size_t n)
{
    assert(n <= MAX_ALTER_ITEMS);
    for (;;) {
        kwriter_t body;
        kw_init(&body, 64 + n * 32);
        kw_i32(&body, g->timeout_ms);
        size_t ntopics = 0;
        for (size_t i = 0; i < n; i++)
            ntopics += i == 0 || strcmp(moves[i].topic, moves[i - 1].topic) != 0;
        kw_array_v(&body, true, (int32_t)ntopics);
        for (size_t i = 0; i < n;) {
            size_t j = i;
            while (j < n && strcmp(moves[j].topic, moves[i].topic) == 0)
                j++;
            kw_string_v(&body, true, moves[i].topic, -1);
            kw_array_v(&body, true, (int32_t)(j - i));
            for (size_t k = i; k < j; k++) {
                kw_i32(&body, moves[k].partition);
                kw_array_v(&body, true, moves[k].replicas ? moves[k].nreplicas : -1);
                for (int32_t x = 0; moves[k].replicas && x < moves[k].nreplicas; x++)
                    kw_i32(&body, moves[k].replicas[x]);
                kw_tags_v(&body, true);
            }
            kw_tags_v(&body, true);
            i = j;
        }
        kw_tags_v(&body, true);
        uint8_t *frame;
        kreader_t r;
        char why[300];
        bool ok = controller_exchange(g, API_ALTER_REASSIGN, &body, "AlterPartitionReassignments",
                                      &frame, &r, why, sizeof(why));
        kw_free(&body);
        if (!ok) {
            cli_error("%s", why);
            return CLI_EXIT_UNREACHABLE;
        }
        int32_t throttle, nt;
        int16_t error = 0;
        kslice_t message;
        ok = kr_i32(&r, &throttle) && kr_i16(&r, &error) &&
             kr_nullable_string_v(&r, true, &message) && kr_array_v(&r, true, 3, &nt) && nt >= 0;
        for (int32_t t = 0; ok && t < nt; t++) {
            kslice_t name;
            int32_t np;
            ok = kr_string_v(&r, true, &name) && kr_array_v(&r, true, 8, &np) && np >= 0;
            for (int32_t q = 0; ok && q < np; q++) {
                int32_t partition;
                int16_t perr;
                kslice_t pmsg;
                ok = kr_i32(&r, &partition) && kr_i16(&r, &perr) &&
                     kr_nullable_string_v(&r, true, &pmsg) && kr_tags_v(&r, true);
                for (size_t i = 0; ok && i < n; i++) {
                    if (moves[i].partition != partition || !kslice_eq(name, moves[i].topic))
                        continue;
                    moves[i].error = perr;
                    snprintf(moves[i].message, sizeof(moves[i].message), "%.*s",
                             pmsg.ptr ? (int)pmsg.len : 0, pmsg.ptr ? (const char *)pmsg.ptr : "");
                }
            }
            ok = ok && kr_tags_v(&r, true);
        }
        ok = ok && kr_tags_v(&r, true);
        free(frame);
        if (!ok) {
            cli_error("malformed AlterPartitionReassignments answer");
            return CLI_EXIT_ERROR;
        }
        if (error == KAFKA_NOT_CONTROLLER &&
            cli_now_ms() + POLL_INTERVAL_MS < cli_wait_deadline_ms(g)) {
            sleep_ms(POLL_INTERVAL_MS);
            continue;
        }
        if (error != 0) {
            cli_error("reassigning partitions: %s", rd_kafka_err2str((rd_kafka_resp_err_t)error));
            return cli_exit_for_error((rd_kafka_resp_err_t)error);
        }
        return CLI_EXIT_OK;
    }
}

/* True when the cluster shows every move done: none listed as in progress,
 * and each partition's replicas (Metadata) are its target, in order. A
 * cancel is done once it is no longer listed. */
static bool moves_done(rd_kafka_t *rk, const struct cli_globals *g, const struct move *moves,
                       size_t n, int *code)
{
    struct reassignment *r;
    size_t nr;
    *code = list_reassignments(g, &r, &nr);
    if (*code != CLI_EXIT_OK)
        return false;
    bool done = true;
    for (size_t i = 0; i < n && done; i++)
        for (size_t k = 0; k < nr && done; k++)
            done =
                !(r[k].partition == moves[i].partition && strcmp(r[k].topic, moves[i].topic) == 0);
    reassignments_free(r, nr);
    if (!done)
        return false;
    const struct rd_kafka_metadata *md = NULL;
    *code = cli_fetch_metadata(rk, g, NULL, &md);
    if (*code != CLI_EXIT_OK)
        return false;
    for (size_t i = 0; i < n && done; i++) {
        if (!moves[i].replicas || moves[i].error != 0)
            continue;
        bool found = false;
        for (int t = 0; t < md->topic_cnt && !found; t++) {
            const rd_kafka_metadata_topic_t *mt = &md->topics[t];
            if (strcmp(mt->topic, moves[i].topic) != 0)
                continue;
            for (int q = 0; q < mt->partition_cnt && !found; q++) {
                const rd_kafka_metadata_partition_t *mp = &mt->partitions[q];
                if (mp->id != moves[i].partition)
                    continue;
                found = mp->replica_cnt == moves[i].nreplicas &&
                        memcmp(mp->replicas, moves[i].replicas,
                               (size_t)moves[i].nreplicas * sizeof(int32_t)) == 0;
            }
        }
        done = found;
    }
    rd_kafka_metadata_destroy(md);
    return done;
}

/* Polls until the moves are done or the phase ends. */
static int wait_moves(const struct cli_globals *g, const struct move *moves, size_t n)
{
    int code;
    rd_kafka_t *rk = cli_admin_client(g, &code);
    if (rk == NULL)
        return code;
    while (!moves_done(rk, g, moves, n, &code)) {
        if (code != CLI_EXIT_OK)
            break;
        if (cli_now_ms() + POLL_INTERVAL_MS >= cli_wait_deadline_ms(g)) {
            cli_error("the reassignment did not finish within the timeout (still in progress; "
                      "see vltava cluster reassignments)");
            code = CLI_EXIT_ERROR;
            break;
        }
        sleep_ms(POLL_INTERVAL_MS);
    }
    rd_kafka_destroy(rk);
    return code;
}

/* The first failed move's exit code after printing every failure. */
static int report_failures(const struct move *moves, size_t n)
{
    int code = CLI_EXIT_OK;
    for (size_t i = 0; i < n; i++) {
        if (moves[i].error == 0)
            continue;
        cli_error("%s-%d: %s%s%s", moves[i].topic, moves[i].partition,
                  rd_kafka_err2name((rd_kafka_resp_err_t)moves[i].error),
                  moves[i].message[0] ? ": " : "", moves[i].message);
        if (code == CLI_EXIT_OK)
            code = cli_exit_for_error((rd_kafka_resp_err_t)moves[i].error);
    }
    return code;
}

/* "1,2,4" -> ids (1..MAX_REPLICAS of them, each 0..INT32_MAX). */
static bool parse_replica_list(const char *text, int32_t *ids, int32_t *n)
{
    *n = 0;
    const char *at = text;
    while (*at) {
        const char *comma = strchr(at, ',');
        size_t len = comma ? (size_t)(comma - at) : strlen(at);
        char item[16];
        int64_t v;
        if (len == 0 || len >= sizeof(item) || *n >= MAX_REPLICAS)
            return false;
        memcpy(item, at, len);
        item[len] = '\0';
        if (!cli_parse_int(item, 0, INT32_MAX, &v))
            return false;
        ids[(*n)++] = (int32_t)v;
        if (!comma)
            break;
        at = comma + 1;
        if (*at == '\0')
            return false;
    }
    return *n > 0;
}

static const char move_usage[] =
    "Usage: vltava topic move NAME -p PARTITION (--replicas IDS | --cancel) [--wait]\n"
    "                         [GLOBAL OPTIONS]\n"
    "\n"
    "Moves a partition to a new replica set (AlterPartitionReassignments through\n"
    "the controller): the new replicas copy the log, join the ISR, leadership\n"
    "moves into the set if needed, then the replicas left out are removed.\n"
    "\n"
    "Options:\n"
    "  -p, --partition P     the partition\n"
    "      --replicas IDS    the new replicas, comma-separated broker ids; the\n"
    "                        first is the preferred leader\n"
    "      --cancel          cancel the partition's reassignment in progress\n"
    "                        (back to its original replicas)\n"
    "      --wait            wait until the move is done (bounded by --timeout)\n";

int cli_cmd_topic_move(int argc, char **argv, struct cli_globals *g)
{
    static const struct option longopts[] = {
        {"partition", required_argument, NULL, 'p'},
        {"replicas", required_argument, NULL, 'R'},
        {"cancel", no_argument, NULL, 'C'},
        {"wait", no_argument, NULL, 'W'},
        {NULL, 0, NULL, 0},
    };
    struct cli_parser p;
    cli_parser_init(&p, argc, argv, "p:", longopts, move_usage, g);
    int64_t partition = -1;
    int32_t ids[MAX_REPLICAS];
    int32_t nids = 0;
    bool cancel = false, wait = false;
    int opt;
    while ((opt = cli_parser_next(&p)) >= 0) {
        switch (opt) {
        case 'p':
            if (!cli_parse_partition(&p, optarg, &partition))
                return CLI_EXIT_USAGE;
            break;
        case 'R':
            if (!parse_replica_list(optarg, ids, &nids)) {
                cli_usage_error(move_usage,
                                "--replicas wants 1 to %d comma-separated broker ids, got '%s'",
                                MAX_REPLICAS, optarg);
                return CLI_EXIT_USAGE;
            }
            break;
        case 'C':
            cancel = true;
            break;
        case 'W':
            wait = true;
            break;
        default:
            return CLI_EXIT_USAGE;
        }
    }
    int code;
    const char *name = cli_topic_operand(&p, opt, "topic NAME", "", &code);
    if (name == NULL)
        return code;
    if (partition < 0 || (nids == 0) == !cancel) {
        cli_usage_error(move_usage, partition < 0 ? "missing -p PARTITION"
                                                  : "give exactly one of --replicas and --cancel");
        return CLI_EXIT_USAGE;
    }
    cli_phase_begin(g);
    struct move m = {.topic = name,
                     .partition = (int32_t)partition,
                     .replicas = cancel ? NULL : ids,
                     .nreplicas = nids};
    code = alter_reassignments(g, &m, 1);
    if (code == CLI_EXIT_OK)
        code = report_failures(&m, 1);
    if (code != CLI_EXIT_OK)
        return code;
    if (wait)
        code = wait_moves(g, &m, 1);
    if (code != CLI_EXIT_OK)
        return code;
    char list[800];
    print_ids(list, sizeof(list), ids, nids);
    if (g->format == CLI_FORMAT_JSON) {
        struct json_writer w;
        json_init(&w, stdout);
        json_begin_object(&w);
        json_key(&w, "topic");
        json_string(&w, name);
        json_key(&w, "partition");
        json_int(&w, partition);
        if (cancel) {
            json_key(&w, "cancelled");
            json_bool(&w, true);
        } else {
            json_ids(&w, "replicas", ids, nids);
        }
        json_key(&w, "done");
        json_bool(&w, wait);
        json_end_object(&w);
        json_finish(&w);
    } else if (cancel) {
        printf("Cancelled the reassignment of %s-%lld\n", name, (long long)partition);
    } else {
        printf("%s %s-%lld to replicas %s\n", wait ? "Moved" : "Moving", name, (long long)partition,
               list);
    }
    return CLI_EXIT_OK;
}

/* ---- cluster rebalance ---- */

static int32_t index_of(const int32_t *ids, int32_t n, int32_t id)
{
    for (int32_t i = 0; i < n; i++)
        if (ids[i] == id)
            return i;
    return -1;
}

/* The live broker (index into brokers) with the lowest count that does not
 * hold partition p and whose count is below limit; -1 when none. */
static int least_loaded_without(const int32_t *brokers, int nbrokers, const int64_t *count,
                                const struct cli_plan_partition *p, int64_t limit)
{
    int best = -1;
    for (int b = 0; b < nbrokers; b++) {
        if (index_of(p->replicas, p->nreplicas, brokers[b]) >= 0 || count[b] >= limit)
            continue;
        if (best < 0 || count[b] < count[best])
            best = b;
    }
    return best;
}

/* Moves one replica from broker index src to a less loaded broker (count
 * at most count[src] - 2), a follower before a leader. True when moved. */
static bool move_one_replica(const int32_t *brokers, int nbrokers, int64_t *count, int src,
                             struct cli_plan_partition *parts, int nparts)
{
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < nparts; i++) {
            struct cli_plan_partition *p = &parts[i];
            int32_t at = index_of(p->replicas, p->nreplicas, brokers[src]);
            if (at < 0 || (pass == 0 && at == 0))
                continue;
            int dst = least_loaded_without(brokers, nbrokers, count, p, count[src] - 1);
            if (dst < 0)
                continue;
            p->replicas[at] = brokers[dst];
            count[src]--;
            count[dst]++;
            return true;
        }
    }
    return false;
}

int cli_rebalance_plan(const int32_t *brokers, int nbrokers, struct cli_plan_partition *parts,
                       int nparts)
{
    assert(nbrokers > 0 && nparts >= 0);
    int64_t *count = xcalloc((size_t)nbrokers, sizeof(int64_t));
    int32_t **before = xcalloc((size_t)nparts + 1, sizeof(int32_t *));
    for (int i = 0; i < nparts; i++) {
        struct cli_plan_partition *p = &parts[i];
        assert(p->nreplicas > 0 && p->nreplicas <= MAX_REPLICAS);
        before[i] = xmalloc((size_t)p->nreplicas * sizeof(int32_t));
        memcpy(before[i], p->replicas, (size_t)p->nreplicas * sizeof(int32_t));
        for (int32_t r = 0; r < p->nreplicas; r++) {
            int32_t b = index_of(brokers, nbrokers, p->replicas[r]);
            if (b >= 0)
                count[b]++;
        }
    }
    /* 1. Replicas on brokers that are not live go to the least loaded
     * live broker without the partition. */
    for (int i = 0; i < nparts; i++) {
        struct cli_plan_partition *p = &parts[i];
        for (int32_t r = 0; r < p->nreplicas; r++) {
            if (index_of(brokers, nbrokers, p->replicas[r]) >= 0)
                continue;
            int dst = least_loaded_without(brokers, nbrokers, count, p, INT64_MAX);
            if (dst < 0)
                continue; /* more replicas than live brokers: left as they are */
            p->replicas[r] = brokers[dst];
            count[dst]++;
        }
    }
    /* 2. Replica counts within one of each other: the most loaded broker
     * gives one to a broker with at least two fewer, as long as one can.
     * Each move lowers the sum of squared counts, so this ends; the bound
     * is a second guard. */
    int64_t total = 0;
    for (int b = 0; b < nbrokers; b++)
        total += count[b];
    for (int64_t step = 0; step <= total * nbrokers; step++) {
        bool moved = false;
        for (int k = 0; k < nbrokers && !moved; k++) {
            /* sources from the most loaded down */
            int src = -1;
            for (int b = 0; b < nbrokers; b++) {
                int rank = 0;
                for (int o = 0; o < nbrokers; o++)
                    rank += count[o] > count[b] || (count[o] == count[b] && o < b);
                if (rank == k)
                    src = b;
            }
            moved = move_one_replica(brokers, nbrokers, count, src, parts, nparts);
        }
        if (!moved)
            break;
    }
    /* 3. Preferred leaders (first replicas) within one of each other: a
     * partition led by the broker with the most gets a replica of a broker
     * with at least two fewer as its first. */
    int64_t *leads = xcalloc((size_t)nbrokers, sizeof(int64_t));
    for (int i = 0; i < nparts; i++) {
        int32_t b = index_of(brokers, nbrokers, parts[i].replicas[0]);
        if (b >= 0)
            leads[b]++;
    }
    for (int step = 0; step <= nparts * nbrokers; step++) {
        bool swapped = false;
        for (int i = 0; i < nparts && !swapped; i++) {
            struct cli_plan_partition *p = &parts[i];
            int src = index_of(brokers, nbrokers, p->replicas[0]);
            if (src < 0)
                continue;
            int best_r = -1, best_b = -1;
            for (int32_t r = 1; r < p->nreplicas; r++) {
                int b = index_of(brokers, nbrokers, p->replicas[r]);
                if (b >= 0 && leads[b] + 1 < leads[src] &&
                    (best_b < 0 || leads[b] < leads[best_b])) {
                    best_b = b;
                    best_r = r;
                }
            }
            if (best_r < 0)
                continue;
            int32_t first = p->replicas[0];
            p->replicas[0] = p->replicas[best_r];
            p->replicas[best_r] = first;
            leads[src]--;
            leads[best_b]++;
            swapped = true;
        }
        if (!swapped)
            break;
    }
    int changed = 0;
    for (int i = 0; i < nparts; i++) {
        parts[i].changed =
            memcmp(before[i], parts[i].replicas, (size_t)parts[i].nreplicas * sizeof(int32_t)) != 0;
        changed += parts[i].changed;
        free(before[i]);
    }
    free(before);
    free(count);
    free(leads);
    return changed;
}

static const char rebalance_usage[] =
    "Usage: vltava cluster rebalance [--dry-run] [--wait] [GLOBAL OPTIONS]\n"
    "\n"
    "Spreads every partition's replicas evenly over the live brokers (after a\n"
    "broker joins, say) with few moves, and the preferred leaders (first\n"
    "replicas) evenly, then submits the plan as partition reassignments.\n"
    "Leadership follows the preferred replicas through the automatic leader\n"
    "rebalance or vltava cluster elect-leaders.\n"
    "\n"
    "Options:\n"
    "      --dry-run   print the plan, submit nothing\n"
    "      --wait      wait until every reassignment is done (bounded by --timeout)\n";

int cli_cmd_cluster_rebalance(int argc, char **argv, struct cli_globals *g)
{
    static const struct option longopts[] = {
        {"dry-run", no_argument, NULL, 'D'},
        {"wait", no_argument, NULL, 'W'},
        {NULL, 0, NULL, 0},
    };
    struct cli_parser p;
    cli_parser_init(&p, argc, argv, "", longopts, rebalance_usage, g);
    bool dry_run = false, wait = false;
    int opt;
    while ((opt = cli_parser_next(&p)) >= 0) {
        if (opt == 'D')
            dry_run = true;
        else if (opt == 'W')
            wait = true;
        else
            return CLI_EXIT_USAGE;
    }
    int code;
    if (!cli_no_operand(&p, opt, &code))
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
    int nparts = 0;
    for (int t = 0; t < md->topic_cnt; t++)
        nparts += md->topics[t].partition_cnt;
    int32_t *brokers = xcalloc((size_t)md->broker_cnt + 1, sizeof(int32_t));
    for (int b = 0; b < md->broker_cnt; b++)
        brokers[b] = md->brokers[b].id;
    struct cli_plan_partition *parts = xcalloc((size_t)nparts + 1, sizeof(*parts));
    struct move *moves = xcalloc((size_t)nparts + 1, sizeof(*moves));
    int k = 0;
    for (int t = 0; t < md->topic_cnt; t++) {
        for (int q = 0; q < md->topics[t].partition_cnt; q++) {
            const rd_kafka_metadata_partition_t *mp = &md->topics[t].partitions[q];
            if (mp->replica_cnt <= 0 || mp->replica_cnt > MAX_REPLICAS)
                continue;
            parts[k].replicas = xmalloc((size_t)mp->replica_cnt * sizeof(int32_t));
            memcpy(parts[k].replicas, mp->replicas, (size_t)mp->replica_cnt * sizeof(int32_t));
            parts[k].nreplicas = mp->replica_cnt;
            moves[k].topic = md->topics[t].topic;
            moves[k].partition = mp->id;
            k++;
        }
    }
    nparts = k;
    if (md->broker_cnt > 0) /* no broker: nothing to spread over */
        cli_rebalance_plan(brokers, md->broker_cnt, parts, nparts);
    /* The moves: the changed partitions, consecutive per topic (metadata order). */
    size_t nmoves = 0;
    for (int i = 0; i < nparts; i++) {
        if (!parts[i].changed)
            continue;
        moves[nmoves] = moves[i];
        moves[nmoves].replicas = parts[i].replicas;
        moves[nmoves].nreplicas = parts[i].nreplicas;
        nmoves++;
    }
    if (nmoves > MAX_ALTER_ITEMS) {
        cli_error("the plan moves %zu partitions; at most %d per run", nmoves, MAX_ALTER_ITEMS);
        code = CLI_EXIT_ERROR;
    }
    if (code == CLI_EXIT_OK && !dry_run && nmoves > 0)
        code = alter_reassignments(g, moves, nmoves);
    if (code == CLI_EXIT_OK && !dry_run)
        code = report_failures(moves, nmoves);
    if (code == CLI_EXIT_OK && !dry_run && wait && nmoves > 0)
        code = wait_moves(g, moves, nmoves);
    if (code == CLI_EXIT_OK) {
        if (g->format == CLI_FORMAT_JSON) {
            struct json_writer w;
            json_init(&w, stdout);
            json_begin_object(&w);
            json_key(&w, "submitted");
            json_bool(&w, !dry_run && nmoves > 0);
            json_key(&w, "moves");
            json_begin_array(&w);
            for (size_t i = 0; i < nmoves; i++) {
                json_begin_object(&w);
                json_key(&w, "topic");
                json_string(&w, moves[i].topic);
                json_key(&w, "partition");
                json_int(&w, moves[i].partition);
                json_ids(&w, "replicas", moves[i].replicas, moves[i].nreplicas);
                json_end_object(&w);
            }
            json_end_array(&w);
            json_end_object(&w);
            json_finish(&w);
        } else if (nmoves == 0) {
            printf("Balanced: nothing to move\n");
        } else {
            static const char *const headers[] = {"TOPIC", "PARTITION", "REPLICAS"};
            struct cli_table *t = table_new(3, headers);
            char list[800];
            for (size_t i = 0; i < nmoves; i++) {
                print_ids(list, sizeof(list), moves[i].replicas, moves[i].nreplicas);
                table_row(t);
                table_cell(t, "%s", moves[i].topic);
                table_cell(t, "%d", moves[i].partition);
                table_cell(t, "%s", list);
            }
            table_print(t, stdout);
            table_free(t);
            printf("%s %zu partition reassignment(s)\n",
                   dry_run ? "Planned"
                   : wait  ? "Done:"
                           : "Submitted",
                   nmoves);
        }
    }
    for (int i = 0; i < nparts; i++)
        free(parts[i].replicas);
    free(parts);
    free(moves);
    free(brokers);
    rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
    return code;
}
