/* The vltava CLI's module-internal header: exit codes, global options, the
 * shared argument parser, the librdkafka plumbing every command uses, and the
 * command entry points. Nothing outside cli/ includes it.
 *
 * The CLI is a plain Kafka client: it bootstraps from the brokers given with
 * -b and never talks to ZooKeeper. */
#ifndef VLTAVA_CLI_H
#define VLTAVA_CLI_H

#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdint.h>

/* Exit codes; `vltava --help` documents them and scripts rely on them. */
enum cli_exit {
    CLI_EXIT_OK = 0,
    CLI_EXIT_ERROR = 1,           /* anything else; the message says what */
    CLI_EXIT_USAGE = 2,           /* bad arguments */
    CLI_EXIT_UNREACHABLE = 3,     /* no broker answered within the timeout */
    CLI_EXIT_UNKNOWN_TOPIC = 4,   /* unknown topic or partition */
    CLI_EXIT_TOPIC_EXISTS = 5,    /* topic already exists */
    CLI_EXIT_UNKNOWN_GROUP = 6,   /* unknown consumer group */
    CLI_EXIT_GROUP_NOT_EMPTY = 7, /* the group has members; the operation needs none */
    CLI_EXIT_UNKNOWN_TXN = 8,     /* unknown transactional id */
    CLI_EXIT_UNHEALTHY = 9,       /* cluster health: the cluster (or broker) is not healthy */
};

enum cli_format { CLI_FORMAT_TEXT, CLI_FORMAT_JSON };

#define CLI_DEFAULT_BROKERS    "127.0.0.1:9092"
#define CLI_DEFAULT_TIMEOUT_MS 10000
#define CLI_MAX_TIMEOUT_MS     (3600 * 1000)

/* Options every command accepts, before or after the command words. */
struct cli_globals {
    const char *brokers; /* comma-separated host:port list; not owned */
    int timeout_ms;      /* --timeout: bound on each phase of waiting (cli_phase_begin) */
    enum cli_format format;
    bool verbose; /* pass librdkafka's log through to stderr */
};

/* ---- Argument parsing ---- */

/* A command's parser: its own options merged with the global ones. */
#define CLI_MAX_OPTIONS 24
struct cli_parser {
    int argc;
    char **argv; /* argv[0] is the command's name */
    struct option longopts[CLI_MAX_OPTIONS + 1];
    char shortopts[2 * CLI_MAX_OPTIONS + 2];
    struct cli_globals *globals;
    const char *usage; /* the command's --help text */
};

enum {
    CLI_OPT_DONE = -1,  /* no more options; positionals start at optind */
    CLI_OPT_HELP = -2,  /* --help was printed: return CLI_EXIT_OK */
    CLI_OPT_ERROR = -3, /* a message was printed: return CLI_EXIT_USAGE */
};

/* cmd_short is getopt's short option string for the command's own options;
 * cmd_long its long options (terminated by a zeroed entry), may be NULL. */
void cli_parser_init(struct cli_parser *p, int argc, char **argv, const char *cmd_short,
                     const struct option *cmd_long, const char *usage, struct cli_globals *globals);
/* Returns the next command option's value (as getopt does), or CLI_OPT_*.
 * Global options are consumed here and never returned. */
int cli_parser_next(struct cli_parser *p);
/* Checks that exactly `want` positionals remain; prints a message if not. */
bool cli_expect_positionals(struct cli_parser *p, int want, const char *what);
/* Ends the option parsing of a command that takes one operand; opt is
 * cli_parser_next's last answer and `what` names the operand in messages.
 * Returns the operand, or NULL with *exit_code set: CLI_EXIT_OK after
 * --help, CLI_EXIT_USAGE after printing why the arguments are wrong. */
const char *cli_operand(struct cli_parser *p, int opt, const char *what, int *exit_code);
/* cli_operand for a command that takes no operand: true when it may run. */
bool cli_no_operand(struct cli_parser *p, int opt, int *exit_code);
/* cli_operand for a topic name, which it checks too; `rule` (may be "")
 * follows "invalid topic name '<name>'". */
const char *cli_topic_operand(struct cli_parser *p, int opt, const char *what, const char *rule,
                              int *exit_code);
/* The -p PARTITION value: a partition number >= 0. Prints a usage error and
 * returns false when text is not one. */
bool cli_parse_partition(const struct cli_parser *p, const char *text, int64_t *partition);

/* A command's subcommand: its word and its entry point, which gets the
 * arguments from the subcommand word on. */
struct cli_subcommand {
    const char *name;
    int (*run)(int argc, char **argv, struct cli_globals *g);
};

/* Runs the subcommand argv[1] names among subs (argv[0] is the command
 * word). Prints usage for --help, and a usage error for a missing or
 * unknown subcommand. Returns the exit code. */
int cli_run_subcommand(int argc, char **argv, struct cli_globals *g, const char *usage,
                       const struct cli_subcommand *subs, size_t nsubs);

/* Parses global options that precede the command; returns the index of the
 * command word, or CLI_OPT_HELP / CLI_OPT_ERROR. */
int cli_parse_leading_globals(int argc, char **argv, struct cli_globals *globals);

bool cli_parse_int(const char *text, int64_t min, int64_t max, int64_t *out);
bool cli_parse_timeout(const char *text, int *timeout_ms);
bool cli_parse_format(const char *text, enum cli_format *format);
/* Kafka's rule: 1-249 characters of [a-zA-Z0-9._-], not "." or "..". */
bool cli_topic_name_valid(const char *name);

/* ---- Messages ---- */

void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_usage_error(const char *usage, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A deletion's report: "Deleted <what> <name>", or with --format json
 * {"<key>": "<name>", "deleted": true}. */
void cli_print_deleted(const struct cli_globals *g, const char *what, const char *key,
                       const char *name);

/* ---- Talking to the cluster ---- */

/* Milliseconds on a monotonic clock. */
int64_t cli_now_ms(void);

/* ---- The command's clock ----
 * --timeout bounds every phase in which a command waits for the cluster:
 * for the admin commands the whole command, from its first contact with the
 * cluster to its exit; for produce and consume their start (connect,
 * metadata) and their end (the last deliveries, the commit, leaving the
 * group), not the records the user streams in between. Each wait inside a
 * phase gets what is left of it (cli_wait_ms). A watchdog enforces the
 * bound whatever a library call does: when a phase overruns, the process
 * says so on stderr and exits with CLI_EXIT_UNREACHABLE. One command runs
 * per process, so the clock is the process's. */

/* Starts a phase of g->timeout_ms and arms the watchdog; does nothing while
 * a phase runs. */
void cli_phase_begin(const struct cli_globals *g);
/* Ends the running phase (before streaming) and disarms the watchdog. */
void cli_phase_end(void);
/* When the waits of the running phase must end (cli_now_ms() based): a
 * little before the watchdog, so that the command can say what it was
 * waiting for and clean up. Starts a phase if none runs. */
int64_t cli_wait_deadline_ms(const struct cli_globals *g);
/* Milliseconds left for one wait in the running phase; at least 1 (a
 * library call given 0 may wait without a bound). Starts a phase if none
 * runs. */
int cli_wait_ms(const struct cli_globals *g);

/* Opens a TCP connection to the first bootstrap broker that accepts one
 * before deadline_ms (cli_now_ms() based). Returns the fd (blocking mode,
 * owned by the caller; its reads and writes time out at deadline_ms) or -1
 * with a reason in errbuf. */
int cli_connect_bootstrap(const char *brokers, int64_t deadline_ms, char *errbuf, size_t errlen);

/* Fails fast with CLI_EXIT_UNREACHABLE when no bootstrap broker accepts a
 * TCP connection within the timeout; librdkafka alone would retry until the
 * deadline without saying why. Returns CLI_EXIT_OK or that code. */
int cli_check_reachable(const struct cli_globals *g);

/* A librdkafka handle bootstrapped from g->brokers, with topic
 * auto-creation off (the CLI creates topics only when asked). extra may be
 * NULL; it is consumed either way. Returns NULL after printing why. */
rd_kafka_t *cli_kafka_new(const struct cli_globals *g, rd_kafka_type_t type,
                          rd_kafka_conf_t *extra);
/* Sets one librdkafka property, printing the error; false on failure. */
bool cli_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value);

/* Metadata for one topic (topic != NULL) or all topics. On success *md is
 * owned by the caller (rd_kafka_metadata_destroy). For a single topic an
 * unknown topic is reported as CLI_EXIT_UNKNOWN_TOPIC. */
int cli_fetch_metadata(rd_kafka_t *rk, const struct cli_globals *g, const char *topic,
                       const struct rd_kafka_metadata **md);

/* Maps a Kafka or librdkafka error to an exit code. */
int cli_exit_for_error(rd_kafka_resp_err_t err);

/* ---- Admin API ---- */

/* A handle for admin requests, after checking that the cluster is
 * reachable. NULL with *exit_code set (after a message) on failure. */
rd_kafka_t *cli_admin_client(const struct cli_globals *g, int *exit_code);

/* ListOffsets for each partition of parts at spec (RD_KAFKA_OFFSET_BEGINNING,
 * RD_KAFKA_OFFSET_END or a timestamp in ms), in one call bounded by what is
 * left of the phase (rd_kafka_offsets_for_times: rd_kafka_query_watermark_offsets
 * can hang in librdkafka 2.0.2 after a broker dies). Returns the answers
 * (the caller's; per-partition .err), or NULL with *err set. */
rd_kafka_topic_partition_list_t *cli_list_offsets(rd_kafka_t *rk,
                                                  const rd_kafka_topic_partition_list_t *parts,
                                                  int64_t spec, const struct cli_globals *g,
                                                  rd_kafka_resp_err_t *err);
/* One partition's answer in cli_list_offsets' list: its error, the offset in
 * *offset (-1 when missing: UNKNOWN_PARTITION). */
rd_kafka_resp_err_t cli_offset_answer(const rd_kafka_topic_partition_list_t *answers,
                                      const char *topic, int32_t partition, int64_t *offset);
/* AdminOptions bounding the request (and, for the topic requests, the
 * cluster-side operation) by the --timeout. Owned by the caller. */
rd_kafka_AdminOptions_t *cli_admin_options(rd_kafka_t *rk, rd_kafka_admin_op_t op,
                                           const struct cli_globals *g);
/* Waits for the result of an admin request of type `want` on q. Returns
 * the event (owned by the caller), or NULL with *exit_code set after
 * printing why: no answer in time, or a request-level error. */
rd_kafka_event_t *cli_admin_wait(rd_kafka_queue_t *q, rd_kafka_event_type_t want,
                                 const struct cli_globals *g, int *exit_code);

/* ---- Raw Metadata v7 (cli_rawmeta.c) ----
 * What librdkafka 2.0.2's metadata API does not expose: broker racks,
 * partition leader epochs and offline replicas. */

struct cli_raw_broker {
    int32_t id;
    char *host; /* advertised host of the listener asked; owned */
    int32_t port;
    char *rack; /* NULL when the broker has none; owned */
};

struct cli_raw_partition {
    int32_t id;
    int16_t error;
    int32_t leader;
    int32_t leader_epoch;
    int32_t *offline; /* offline replica ids, noffline of them; owned */
    int32_t noffline;
};

struct cli_raw_metadata {
    struct cli_raw_broker *brokers; /* owned */
    int32_t nbrokers;
    char *cluster_id; /* owned; NULL when the cluster has none */
    int32_t controller_id;
    bool has_topic; /* the answer held the one topic asked for */
    int16_t topic_error;
    struct cli_raw_partition *partitions; /* owned */
    int32_t npartitions;
};

/* Decodes a Metadata v7 response frame (after its size prefix) answering a
 * request with correlation_id for at most one topic. Every count and length
 * is checked against the bytes left before anything is allocated; a
 * malformed frame returns false and leaves md empty. On success md owns
 * what it points to (cli_raw_metadata_free). */
bool cli_decode_metadata_v7(const uint8_t *frame, size_t len, int32_t correlation_id,
                            struct cli_raw_metadata *md);
void cli_raw_metadata_free(struct cli_raw_metadata *md);
/* Asks the first reachable bootstrap broker for the brokers and, when
 * topic != NULL, that topic (never auto-created). False with the reason in
 * why on any failure, within what is left of the phase. */
/* Sends the request frame req (req_len bytes, size prefix included) on fd and reads one
 * answer frame: *resp (xmalloc'd, the caller's) holds the answer after its
 * size field, *len its size, which must lie in [min_size, max_size]. False
 * with the reason in why ("no answer to the <what> request: ...",
 * out of bounds, truncated). The socket's own timeouts bound the waits. */
bool cli_raw_exchange(int fd, const uint8_t *req, size_t req_len, uint32_t min_size,
                      uint32_t max_size, const char *what, uint8_t **resp, size_t *len, char *why,
                      size_t whylen);
bool cli_raw_metadata_fetch(const struct cli_globals *g, const char *topic,
                            struct cli_raw_metadata *md, char *why, size_t whylen);
/* cli_raw_metadata_fetch's request and answer over a connection the
 * caller made (cli_connect_bootstrap), which may carry more requests. */
bool cli_raw_metadata_exchange(int fd, const char *topic, struct cli_raw_metadata *md, char *why,
                               size_t whylen);

/* Sends one request frame (req_len bytes, size prefix included) to the
 * controller and reads its answer: asks a bootstrap broker for Metadata
 * v7, connects to the endpoint the controller advertises there and runs
 * cli_raw_exchange on it, all within what is left of the phase. *resp is
 * the caller's (xmalloc'd; the answer after its size field), *len its size
 * in [min_size, max_size]; *controller_id the broker asked (-1 when none
 * was known). False with the reason in why: no broker reachable, no
 * controller, the controller unreachable or silent. An answer such as
 * NOT_CONTROLLER (the controller moved meanwhile) is the caller's to
 * decode. Used by the admin requests librdkafka 2.0.2 lacks
 * (ElectLeaders, AlterPartitionReassignments). */
bool cli_raw_controller_exchange(const struct cli_globals *g, const uint8_t *req, size_t req_len,
                                 uint32_t min_size, uint32_t max_size, const char *what,
                                 uint8_t **resp, size_t *len, int32_t *controller_id, char *why,
                                 size_t whylen);

/* ---- Cluster health (cli_cluster.c) ---- */

/* A partition with a problem: views into the metadata assessed. */
struct cli_health_partition {
    const char *topic;
    const rd_kafka_metadata_partition_t *p;
};

/* The cluster as one Metadata answer shows it. Healthy when a controller
 * is known, every broker that holds a replica is live, and every partition
 * has a live leader and its whole replica set in sync. */
struct cli_health {
    int32_t controller_id;                         /* -1: none known */
    int32_t *live, nlive;                          /* live brokers, sorted; owned */
    int32_t *down, ndown;                          /* brokers of replicas not live, sorted; owned */
    struct cli_health_partition *leaderless;       /* owned; in the answer's order */
    int32_t nleaderless;                           /* leader none, or not a live broker */
    struct cli_health_partition *under_replicated; /* owned */
    int32_t nunder_replicated;                     /* ISR smaller than the replica set */
};

#define CLI_HEALTH_MAX_REASONS 4
void cli_health_assess(const struct rd_kafka_metadata *md, int32_t controller_id,
                       struct cli_health *h);
void cli_health_free(struct cli_health *h);
/* Why h is unhealthy, in a fixed order: "no_controller", "nodes_down",
 * "leaderless_partitions", "under_replicated_partitions". Returns how many
 * (0: healthy). */
int cli_health_reasons(const struct cli_health *h, const char *reasons[CLI_HEALTH_MAX_REASONS]);

/* Decodes a DescribeConfigs v0 answer (after its size prefix) to BROKER
 * resources named by broker ids: the id of the one answered without an
 * error, which a broker does only for itself (Kafka answers another id
 * INVALID_REQUEST). -1 in *self when none was; false when malformed. */
bool cli_decode_describe_configs_self(const uint8_t *frame, size_t len, int32_t correlation_id,
                                      int32_t *self);

int cli_cmd_cluster_health(int argc, char **argv, struct cli_globals *g);

/* ---- Leader elections (cli_elect.c) ---- */

/* One partition's answer to ElectLeaders. */
struct cli_election_result {
    char *topic; /* owned */
    int32_t partition;
    int16_t error;
    char *message; /* owned; NULL when none */
};

/* Decodes an ElectLeaders v1 answer (after its size prefix) to the request
 * with correlation_id: the top-level error and every partition's result
 * (*results xmalloc'd, the caller's: cli_election_results_free). Counts and
 * lengths are checked against the bytes left before anything is
 * allocated; false (nothing allocated) when malformed. */
bool cli_decode_elect_leaders_v1(const uint8_t *frame, size_t len, int32_t correlation_id,
                                 int16_t *top_error, struct cli_election_result **results,
                                 int32_t *nresults);
void cli_election_results_free(struct cli_election_result *results, int32_t n);

int cli_cmd_cluster_elect_leaders(int argc, char **argv, struct cli_globals *g);

/* ---- Consumer groups (cli_group.c) ---- */

/* Kafka refuses only the empty group id; a protocol string holds at most
 * 32767 bytes. */
#define CLI_MAX_GROUP_ID_LEN 32767
bool cli_group_id_valid(const char *id);

/* Where `vltava group seek --to` moves a group's committed offsets. */
enum cli_seek_kind {
    CLI_SEEK_EARLIEST,  /* the log start offset */
    CLI_SEEK_LATEST,    /* the log end offset */
    CLI_SEEK_OFFSET,    /* value, kept within log start..log end */
    CLI_SEEK_TIMESTAMP, /* the first record at or after value (ms since the epoch) */
};

struct cli_seek_target {
    enum cli_seek_kind kind;
    int64_t value; /* CLI_SEEK_OFFSET and CLI_SEEK_TIMESTAMP only; >= 0 */
};

/* Parses earliest | latest | OFFSET | @TIMESTAMP_MS; false on anything else. */
bool cli_parse_seek_target(const char *text, struct cli_seek_target *target);

/* ---- Partition reassignment (cli_reassign.c) ---- */

/* One partition in a rebalance plan: its replicas, replaced in place by the
 * plan (same count); changed says whether they differ. */
struct cli_plan_partition {
    int32_t *replicas; /* the caller's */
    int32_t nreplicas;
    bool changed;
};

/* Plans replicas over the live brokers (brokers[0..nbrokers), any order):
 * replicas on brokers not in the list move to live ones; then replica
 * counts per broker are made to differ by at most one, moving followers
 * before leaders and never two replicas of a partition onto one broker;
 * then the preferred leaders (first replicas) are spread the same way by
 * reordering replicas. Moves only what must move. Returns the number of
 * partitions changed. Pure. */
int cli_rebalance_plan(const int32_t *brokers, int nbrokers, struct cli_plan_partition *parts,
                       int nparts);

/* ---- Commands (argv[0] is the last command word) ---- */
int cli_cmd_topic_move(int argc, char **argv, struct cli_globals *g);
int cli_cmd_cluster_reassignments(int argc, char **argv, struct cli_globals *g);
int cli_cmd_cluster_rebalance(int argc, char **argv, struct cli_globals *g);

int cli_cmd_topic(int argc, char **argv, struct cli_globals *g);
int cli_cmd_cluster(int argc, char **argv, struct cli_globals *g);
int cli_cmd_produce(int argc, char **argv, struct cli_globals *g);
int cli_cmd_consume(int argc, char **argv, struct cli_globals *g);
int cli_cmd_group(int argc, char **argv, struct cli_globals *g);
int cli_cmd_txn(int argc, char **argv, struct cli_globals *g);

#endif
