/* What every CLI command shares: argument parsing with global options,
 * messages, reachability, librdkafka handles, metadata and exit codes. */
#include "cli.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "cli_output.h"
#include "xalloc.h"
#include "topic_name.h"

/* ---- Messages ---- */

/* One message line on stderr: prefix, then the formatted text. */
static void report(const char *prefix, const char *fmt, va_list ap)
{
    fputs(prefix, stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report("vltava: error: ", fmt, ap);
    va_end(ap);
}

void cli_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report("vltava: warning: ", fmt, ap);
    va_end(ap);
}

void cli_usage_error(const char *usage, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report("vltava: ", fmt, ap);
    va_end(ap);
    /* The usage's first line, not the whole help: the error stays visible. */
    if (usage != NULL) {
        const char *eol = strchr(usage, '\n');
        int len = eol != NULL ? (int)(eol - usage) : (int)strlen(usage);
        fprintf(stderr, "%.*s\n(--help for more)\n", len, usage);
    }
}

/* ---- Parsing values ---- */

bool cli_parse_int(const char *text, int64_t min, int64_t max, int64_t *out)
{
    assert(min <= max);
    if (text == NULL || *text == '\0')
        return false;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

bool cli_parse_timeout(const char *text, int *timeout_ms)
{
    errno = 0;
    char *end = NULL;
    double seconds = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !isfinite(seconds) || seconds <= 0 ||
        seconds * 1000.0 > CLI_MAX_TIMEOUT_MS)
        return false;
    *timeout_ms = (int)ceil(seconds * 1000.0);
    assert(*timeout_ms > 0);
    return true;
}

bool cli_parse_format(const char *text, enum cli_format *format)
{
    if (strcmp(text, "text") == 0)
        *format = CLI_FORMAT_TEXT;
    else if (strcmp(text, "json") == 0)
        *format = CLI_FORMAT_JSON;
    else
        return false;
    return true;
}

bool cli_topic_name_valid(const char *name)
{
    return topic_name_check(name, strlen(name), NULL) == TOPIC_NAME_OK;
}

/* ---- Argument parsing ----
 * Global options are merged into every command's table so that they may be
 * written anywhere on the line: `vltava -b h:p topic list` and
 * `vltava topic list -b h:p` mean the same. */

enum { OPT_TIMEOUT = 0x1000, OPT_FORMAT };

static const struct option global_longopts[] = {
    {"brokers", required_argument, NULL, 'b'},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"format", required_argument, NULL, OPT_FORMAT},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};
static const char global_shortopts[] = "b:vh";

/* Applies one global option; returns false (after a message) on a bad value. */
static bool apply_global(struct cli_globals *g, int opt, const char *arg, const char *usage)
{
    switch (opt) {
    case 'b':
        if (*arg == '\0') {
            cli_usage_error(usage, "-b needs a host:port list");
            return false;
        }
        g->brokers = arg;
        return true;
    case OPT_TIMEOUT:
        if (!cli_parse_timeout(arg, &g->timeout_ms)) {
            cli_usage_error(usage, "--timeout wants seconds > 0 (at most %d), got '%s'",
                            CLI_MAX_TIMEOUT_MS / 1000, arg);
            return false;
        }
        return true;
    case OPT_FORMAT:
        if (!cli_parse_format(arg, &g->format)) {
            cli_usage_error(usage, "--format wants 'text' or 'json', got '%s'", arg);
            return false;
        }
        return true;
    case 'v':
        g->verbose = true;
        return true;
    default:
        assert(!"not a global option");
        return false;
    }
}

static bool is_global_opt(int opt)
{
    return opt == 'b' || opt == 'v' || opt == OPT_TIMEOUT || opt == OPT_FORMAT;
}

void cli_parser_init(struct cli_parser *p, int argc, char **argv, const char *cmd_short,
                     const struct option *cmd_long, const char *usage, struct cli_globals *globals)
{
    assert(argc >= 1);
    assert(strlen(cmd_short) + sizeof(global_shortopts) + 1 <= sizeof(p->shortopts));
    memset(p, 0, sizeof(*p));
    p->argc = argc;
    p->argv = argv;
    p->usage = usage;
    p->globals = globals;
    /* Leading ':' makes getopt report a missing argument as ':'. */
    snprintf(p->shortopts, sizeof(p->shortopts), ":%s%s", cmd_short, global_shortopts);
    int n = 0;
    for (const struct option *o = cmd_long; o != NULL && o->name != NULL; o++) {
        assert(n < CLI_MAX_OPTIONS);
        p->longopts[n++] = *o;
    }
    for (const struct option *o = global_longopts; o->name != NULL; o++) {
        assert(n < CLI_MAX_OPTIONS);
        p->longopts[n++] = *o;
    }
    /* Zeroed terminator already in place from memset. */
    optind = 0; /* GNU getopt: full re-initialisation for this argv */
    opterr = 0;
}

int cli_parser_next(struct cli_parser *p)
{
    for (;;) {
        int opt = getopt_long(p->argc, p->argv, p->shortopts, p->longopts, NULL);
        if (opt == -1)
            return CLI_OPT_DONE;
        if (opt == 'h') {
            fputs(p->usage, stdout);
            return CLI_OPT_HELP;
        }
        if (opt == '?') {
            if (optopt != 0 && optopt < 0x100)
                cli_usage_error(p->usage, "unknown option -%c", optopt);
            else
                cli_usage_error(p->usage, "unknown option %s", p->argv[optind - 1]);
            return CLI_OPT_ERROR;
        }
        if (opt == ':') {
            cli_usage_error(p->usage, "option %s needs a value", p->argv[optind - 1]);
            return CLI_OPT_ERROR;
        }
        if (is_global_opt(opt)) {
            if (!apply_global(p->globals, opt, optarg, p->usage))
                return CLI_OPT_ERROR;
            continue;
        }
        return opt;
    }
}

bool cli_expect_positionals(struct cli_parser *p, int want, const char *what)
{
    assert(want >= 0);
    int have = p->argc - optind;
    if (have < want) {
        cli_usage_error(p->usage, "missing %s", what);
        return false;
    }
    if (have > want) {
        cli_usage_error(p->usage, "unexpected argument '%s'", p->argv[optind + want]);
        return false;
    }
    return true;
}

/* Whether the options ended (opt) with `want` operands left; otherwise
 * false with *exit_code set, as cli_operand says. */
static bool operands_follow(struct cli_parser *p, int opt, int want, const char *what,
                            int *exit_code)
{
    *exit_code = CLI_EXIT_USAGE;
    if (opt == CLI_OPT_HELP) {
        *exit_code = CLI_EXIT_OK;
        return false;
    }
    if (opt != CLI_OPT_DONE || !cli_expect_positionals(p, want, what))
        return false;
    *exit_code = CLI_EXIT_OK;
    return true;
}

const char *cli_operand(struct cli_parser *p, int opt, const char *what, int *exit_code)
{
    return operands_follow(p, opt, 1, what, exit_code) ? p->argv[optind] : NULL;
}

bool cli_no_operand(struct cli_parser *p, int opt, int *exit_code)
{
    return operands_follow(p, opt, 0, "", exit_code);
}

const char *cli_topic_operand(struct cli_parser *p, int opt, const char *what, const char *rule,
                              int *exit_code)
{
    const char *topic = cli_operand(p, opt, what, exit_code);
    if (topic == NULL)
        return NULL;
    if (!cli_topic_name_valid(topic)) {
        cli_usage_error(p->usage, "invalid topic name '%s'%s", topic, rule);
        *exit_code = CLI_EXIT_USAGE;
        return NULL;
    }
    return topic;
}

bool cli_parse_partition(const struct cli_parser *p, const char *text, int64_t *partition)
{
    if (!cli_parse_int(text, 0, INT32_MAX, partition)) {
        cli_usage_error(p->usage, "-p wants a partition number >= 0, got '%s'", text);
        return false;
    }
    return true;
}

int cli_run_subcommand(int argc, char **argv, struct cli_globals *g, const char *usage,
                       const struct cli_subcommand *subs, size_t nsubs)
{
    assert(argc >= 1);
    assert(nsubs > 0);
    if (argc < 2) {
        cli_usage_error(usage, "missing subcommand");
        return CLI_EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
        fputs(usage, stdout);
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < nsubs; i++)
        if (strcmp(sub, subs[i].name) == 0)
            return subs[i].run(argc - 1, argv + 1, g);
    cli_usage_error(usage, "unknown subcommand '%s %s'", argv[0], sub);
    return CLI_EXIT_USAGE;
}

int cli_parse_leading_globals(int argc, char **argv, struct cli_globals *globals)
{
    char shortopts[sizeof(global_shortopts) + 2];
    snprintf(shortopts, sizeof(shortopts), "+:%s", global_shortopts);
    optind = 0;
    opterr = 0;
    for (;;) {
        int opt = getopt_long(argc, argv, shortopts, global_longopts, NULL);
        if (opt == -1)
            return optind;
        if (opt == 'h')
            return CLI_OPT_HELP;
        if (opt == '?' || opt == ':') {
            cli_usage_error(NULL, "%s %s (see vltava --help)",
                            opt == ':' ? "option needs a value:" : "unknown option",
                            argv[optind - 1]);
            return CLI_OPT_ERROR;
        }
        if (!apply_global(globals, opt, optarg, NULL))
            return CLI_OPT_ERROR;
    }
}

/* ---- Reachability ---- */

int64_t cli_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- The command's clock ---- */

/* The running phase: when it ends (0: none runs) and its length. */
static int64_t phase_deadline_ms;
static int phase_timeout_ms;
/* What the watchdog writes; formatted when the phase starts, because the
 * signal handler may only write(). */
static char watchdog_message[512];
static size_t watchdog_message_len;

/* SIGALRM: the phase overran its --timeout inside some call that did not
 * honour the wait it was given. Nothing here may allocate or lock. */
static void on_watchdog(int sig)
{
    (void)sig;
    ssize_t n = write(STDERR_FILENO, watchdog_message, watchdog_message_len);
    (void)n;
    _exit(CLI_EXIT_UNREACHABLE);
}

static void watchdog_arm(int ms)
{
    struct itimerval timer = {
        .it_value = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000},
    };
    int rc = setitimer(ITIMER_REAL, &timer, NULL);
    assert(rc == 0);
    (void)rc;
}

void cli_phase_begin(const struct cli_globals *g)
{
    assert(g->timeout_ms > 0 && g->timeout_ms <= CLI_MAX_TIMEOUT_MS);
    if (phase_deadline_ms != 0)
        return;
    int n = snprintf(watchdog_message, sizeof(watchdog_message),
                     "vltava: error: no answer from the cluster at %s within --timeout %.1f s\n",
                     g->brokers, g->timeout_ms / 1000.0);
    watchdog_message_len = n < 0                                  ? 0
                           : (size_t)n < sizeof(watchdog_message) ? (size_t)n
                                                                  : sizeof(watchdog_message) - 1;
    struct sigaction sa = {.sa_handler = on_watchdog};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    phase_timeout_ms = g->timeout_ms;
    phase_deadline_ms = cli_now_ms() + g->timeout_ms;
    watchdog_arm(g->timeout_ms);
}

void cli_phase_end(void)
{
    watchdog_arm(0);
    phase_deadline_ms = 0;
    phase_timeout_ms = 0;
}

int64_t cli_wait_deadline_ms(const struct cli_globals *g)
{
    cli_phase_begin(g);
    assert(phase_deadline_ms > 0);
    /* The waits leave a fifth of the phase, at most a second, for saying
     * what failed and for tearing the client down. */
    int reserve_ms = phase_timeout_ms / 5 < 1000 ? phase_timeout_ms / 5 : 1000;
    return phase_deadline_ms - reserve_ms;
}

int cli_wait_ms(const struct cli_globals *g)
{
    int64_t left = cli_wait_deadline_ms(g) - cli_now_ms();
    return left < 1 ? 1 : left > INT32_MAX ? INT32_MAX : (int)left;
}

/* Splits "host:port" (or "[v6]:port"); false if malformed. */
static bool split_host_port(const char *entry, char *host, size_t hostlen, char *port,
                            size_t portlen)
{
    const char *colon = strrchr(entry, ':');
    if (colon == NULL || colon == entry || colon[1] == '\0')
        return false;
    const char *h = entry;
    size_t hl = (size_t)(colon - entry);
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    size_t pl = strlen(colon + 1);
    if (hl == 0 || hl >= hostlen || pl >= portlen)
        return false;
    memcpy(host, h, hl);
    host[hl] = '\0';
    memcpy(port, colon + 1, pl + 1);
    return true;
}

/* Non-blocking connect bounded by deadline_ms; returns a blocking fd or -1. */
static int connect_one(const struct addrinfo *ai, int64_t deadline_ms, int *err)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) {
        *err = errno;
        return -1;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
        *err = errno;
        goto fail;
    }
    for (;;) {
        int64_t left = deadline_ms - cli_now_ms();
        if (left <= 0) {
            *err = ETIMEDOUT;
            goto fail;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int n = poll(&pfd, 1, (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            *err = errno;
            goto fail;
        }
        if (n == 0)
            continue; /* the deadline check above ends the wait */
        int soerr = 0;
        socklen_t len = sizeof(soerr);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
            soerr = errno;
        if (soerr != 0) {
            *err = soerr;
            goto fail;
        }
        break;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
        *err = errno;
        goto fail;
    }
    return fd;
fail:
    close(fd);
    return -1;
}

int cli_connect_bootstrap(const char *brokers, int64_t deadline_ms, char *errbuf, size_t errlen)
{
    assert(brokers != NULL);
    assert(errlen > 0);
    char *list = xstrdup(brokers);
    char *save = NULL;
    int fd = -1;
    snprintf(errbuf, errlen, "no broker address in '%s'", brokers);
    for (char *entry = strtok_r(list, ",", &save); entry != NULL && fd < 0;
         entry = strtok_r(NULL, ",", &save)) {
        while (*entry == ' ')
            entry++;
        char host[256], port[16];
        if (!split_host_port(entry, host, sizeof(host), port, sizeof(port))) {
            snprintf(errbuf, errlen, "'%s' is not host:port", entry);
            continue;
        }
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC};
        struct addrinfo *res = NULL;
        int rc = getaddrinfo(host, port, &hints, &res);
        if (rc != 0) {
            snprintf(errbuf, errlen, "%s: %s", entry, gai_strerror(rc));
            continue;
        }
        for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
            int err = 0;
            fd = connect_one(ai, deadline_ms, &err);
            if (fd < 0)
                snprintf(errbuf, errlen, "%s: %s", entry, strerror(err));
        }
        freeaddrinfo(res);
    }
    free(list);
    if (fd >= 0) {
        /* Reads and writes on the connection end at the deadline too. */
        int64_t left = deadline_ms - cli_now_ms();
        if (left < 1)
            left = 1;
        struct timeval tv = {.tv_sec = left / 1000, .tv_usec = (left % 1000) * 1000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    return fd;
}

int cli_check_reachable(const struct cli_globals *g)
{
    char why[512];
    int fd = cli_connect_bootstrap(g->brokers, cli_wait_deadline_ms(g), why, sizeof(why));
    if (fd < 0) {
        cli_error("cannot reach the cluster at %s (%s)", g->brokers, why);
        return CLI_EXIT_UNREACHABLE;
    }
    close(fd);
    return CLI_EXIT_OK;
}

/* ---- librdkafka handles ---- */

static void quiet_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    (void)level;
    (void)fac;
    (void)buf;
}

static void verbose_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    fprintf(stderr, "librdkafka %d %s: %s\n", level, fac, buf);
}

bool cli_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
    char errstr[512];
    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        cli_error("client setting %s=%s: %s", name, value, errstr);
        return false;
    }
    return true;
}

rd_kafka_t *cli_kafka_new(const struct cli_globals *g, rd_kafka_type_t type, rd_kafka_conf_t *extra)
{
    rd_kafka_conf_t *conf = extra != NULL ? extra : rd_kafka_conf_new();
    char timeout[32];
    /* librdkafka accepts socket.timeout.ms in 10..300000 only. */
    int socket_timeout_ms = g->timeout_ms < 10       ? 10
                            : g->timeout_ms > 300000 ? 300000
                                                     : g->timeout_ms;
    snprintf(timeout, sizeof(timeout), "%d", socket_timeout_ms);
    /* librdkafka's own logging is noise for a CLI user; failures reach the
     * user through the error codes the commands map to messages. */
    rd_kafka_conf_set_log_cb(conf, g->verbose ? verbose_log_cb : quiet_log_cb);
    if (!cli_conf_set(conf, "bootstrap.servers", g->brokers) ||
        !cli_conf_set(conf, "client.id", "vltava") ||
        !cli_conf_set(conf, "allow.auto.create.topics", "false") ||
        !cli_conf_set(conf, "socket.timeout.ms", timeout) ||
        !cli_conf_set(conf, "log.connection.close", "false")) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        cli_error("cannot create the Kafka client: %s", errstr);
        return NULL;
    }
    return rk; /* conf is now owned by rk */
}

int cli_exit_for_error(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
        return CLI_EXIT_OK;
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__RESOLVE:
        return CLI_EXIT_UNREACHABLE;
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
        return CLI_EXIT_UNKNOWN_TOPIC;
    case RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS:
        return CLI_EXIT_TOPIC_EXISTS;
    case RD_KAFKA_RESP_ERR_GROUP_ID_NOT_FOUND:
        return CLI_EXIT_UNKNOWN_GROUP;
    case RD_KAFKA_RESP_ERR_NON_EMPTY_GROUP:
        return CLI_EXIT_GROUP_NOT_EMPTY;
    default:
        return CLI_EXIT_ERROR;
    }
}

int cli_fetch_metadata(rd_kafka_t *rk, const struct cli_globals *g, const char *topic,
                       const struct rd_kafka_metadata **md)
{
    assert(rk != NULL);
    *md = NULL;
    rd_kafka_topic_t *rkt = topic != NULL ? rd_kafka_topic_new(rk, topic, NULL) : NULL;
    if (topic != NULL && rkt == NULL) {
        cli_error("topic '%s': %s", topic, rd_kafka_err2str(rd_kafka_last_error()));
        return CLI_EXIT_ERROR;
    }
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, topic == NULL, rkt, md, cli_wait_ms(g));
    if (rkt != NULL)
        rd_kafka_topic_destroy(rkt);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        *md = NULL;
        cli_error("metadata request to %s failed: %s", g->brokers, rd_kafka_err2str(err));
        return cli_exit_for_error(err);
    }
    if (topic != NULL) {
        assert((*md)->topic_cnt <= 1);
        rd_kafka_resp_err_t terr =
            (*md)->topic_cnt == 1 ? (*md)->topics[0].err : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
        /* LEADER_NOT_AVAILABLE: the topic exists, its leaders are being
         * elected; callers see that per partition. */
        if (terr != RD_KAFKA_RESP_ERR_NO_ERROR && terr != RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE) {
            if (cli_exit_for_error(terr) == CLI_EXIT_UNKNOWN_TOPIC)
                cli_error("unknown topic '%s'", topic);
            else
                cli_error("topic '%s': %s", topic, rd_kafka_err2str(terr));
            rd_kafka_metadata_destroy(*md);
            *md = NULL;
            return cli_exit_for_error(terr);
        }
    }
    return CLI_EXIT_OK;
}

/* ---- Admin API plumbing ---- */

rd_kafka_t *cli_admin_client(const struct cli_globals *g, int *exit_code)
{
    *exit_code = cli_check_reachable(g);
    if (*exit_code != CLI_EXIT_OK)
        return NULL;
    rd_kafka_t *rk = cli_kafka_new(g, RD_KAFKA_PRODUCER, NULL);
    if (rk == NULL)
        *exit_code = CLI_EXIT_ERROR;
    return rk;
}

rd_kafka_AdminOptions_t *cli_admin_options(rd_kafka_t *rk, rd_kafka_admin_op_t op,
                                           const struct cli_globals *g)
{
    rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, op);
    char errstr[256];
    rd_kafka_resp_err_t err =
        rd_kafka_AdminOptions_set_request_timeout(opts, cli_wait_ms(g), errstr, sizeof(errstr));
    assert(err == RD_KAFKA_RESP_ERR_NO_ERROR);
    /* Only these requests carry a cluster-side timeout; librdkafka refuses
     * the option for the others. */
    if (op == RD_KAFKA_ADMIN_OP_CREATETOPICS || op == RD_KAFKA_ADMIN_OP_DELETETOPICS ||
        op == RD_KAFKA_ADMIN_OP_CREATEPARTITIONS) {
        err = rd_kafka_AdminOptions_set_operation_timeout(opts, cli_wait_ms(g), errstr,
                                                          sizeof(errstr));
        assert(err == RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    (void)err;
    return opts;
}

rd_kafka_event_t *cli_admin_wait(rd_kafka_queue_t *q, rd_kafka_event_type_t want,
                                 const struct cli_globals *g, int *exit_code)
{
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, cli_wait_ms(g));
    if (ev == NULL) {
        cli_error("no answer from the cluster within --timeout %.1f s", g->timeout_ms / 1000.0);
        *exit_code = CLI_EXIT_UNREACHABLE;
        return NULL;
    }
    assert(rd_kafka_event_type(ev) == want);
    rd_kafka_resp_err_t err = rd_kafka_event_error(ev);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        cli_error("%s", rd_kafka_event_error_string(ev));
        *exit_code = cli_exit_for_error(err);
        rd_kafka_event_destroy(ev);
        return NULL;
    }
    return ev;
}

void cli_print_deleted(const struct cli_globals *g, const char *what, const char *key,
                       const char *name)
{
    assert(what != NULL && key != NULL && name != NULL);
    if (g->format != CLI_FORMAT_JSON) {
        printf("Deleted %s %s\n", what, name);
        return;
    }
    struct json_writer w;
    json_init(&w, stdout);
    json_begin_object(&w);
    json_key(&w, key);
    json_string(&w, name);
    json_key(&w, "deleted");
    json_bool(&w, true);
    json_end_object(&w);
    json_finish(&w);
}

/* What ListOffsets answers for each partition of parts at `spec`:
 * RD_KAFKA_OFFSET_BEGINNING (the log start offset), RD_KAFKA_OFFSET_END
 * (the log end offset) or a timestamp in ms (the first offset at or after
 * it; -1 when there is none). One call bounded by what is left of the phase:
 * rd_kafka_query_watermark_offsets can hang in librdkafka 2.0.2 after a
 * broker dies, rd_kafka_offsets_for_times gives up at its deadline. Returns
 * the answers (owned by the caller; per-partition .err), or NULL with *err
 * set when the request as a whole failed. */
rd_kafka_topic_partition_list_t *cli_list_offsets(rd_kafka_t *rk,
                                                  const rd_kafka_topic_partition_list_t *parts,
                                                  int64_t spec, const struct cli_globals *g,
                                                  rd_kafka_resp_err_t *err)
{
    assert(parts->cnt > 0);
    assert(spec >= 0 || spec == RD_KAFKA_OFFSET_BEGINNING || spec == RD_KAFKA_OFFSET_END);
    rd_kafka_topic_partition_list_t *answers = rd_kafka_topic_partition_list_copy(parts);
    for (int i = 0; i < answers->cnt; i++) {
        answers->elems[i].offset = spec;
        answers->elems[i].err = RD_KAFKA_RESP_ERR_NO_ERROR;
    }
    *err = rd_kafka_offsets_for_times(rk, answers, cli_wait_ms(g));
    if (*err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_topic_partition_list_destroy(answers);
        return NULL;
    }
    return answers;
}

/* The answer cli_list_offsets got for topic/partition: its error, the offset in
 * *offset. A partition missing from the answer is an unknown partition. */
rd_kafka_resp_err_t cli_offset_answer(const rd_kafka_topic_partition_list_t *answers,
                                      const char *topic, int32_t partition, int64_t *offset)
{
    *offset = -1;
    const rd_kafka_topic_partition_t *a = rd_kafka_topic_partition_list_find(
        (rd_kafka_topic_partition_list_t *)answers, topic, partition);
    if (a == NULL)
        return RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION;
    *offset = a->offset;
    return a->err;
}
