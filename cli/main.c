/* vltava: the admin and console CLI of a Vltava cluster. A Kafka client
 * (librdkafka) in the manner of Redpanda's rpk; it never talks to ZooKeeper.
 *
 *   vltava [global options] COMMAND [SUBCOMMAND] [ARGS] [options] */
#include "cli.h"

#include <assert.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char main_usage[] =
    "Usage: vltava [GLOBAL OPTIONS] COMMAND [ARGS] [OPTIONS]\n"
    "\n"
    "Administer and use a Vltava (Kafka-compatible) cluster through its Kafka\n"
    "protocol. The CLI never talks to ZooKeeper.\n"
    "\n"
    "Commands:\n"
    "  topic create NAME [-p PARTITIONS] [-r REPLICAS] [-c KEY=VALUE]...\n"
    "  topic list\n"
    "  topic describe NAME\n"
    "  topic delete NAME\n"
    "  topic add-partitions NAME -n COUNT\n"
    "  topic move NAME -p PARTITION (--replicas IDS | --cancel) [--wait]\n"
    "  cluster info\n"
    "  cluster health [--local]\n"
    "  cluster reassignments\n"
    "  cluster rebalance [--dry-run] [--wait]\n"
    "  cluster elect-leaders [--unclean] [--topic TOPIC [--partition P]]\n"
    "  produce TOPIC [-k SEP] [--acks 0|1|all] [-p PARTITION]\n"
    "  consume TOPIC [-o beginning|end|OFFSET|-N] [-n COUNT] [-p PARTITION] [-e]\n"
    "                [-f FORMAT] [-g GROUP]\n"
    "  group list\n"
    "  group describe GROUP\n"
    "  group delete GROUP\n"
    "  group seek GROUP --to earliest|latest|OFFSET|@TIMESTAMP [-t TOPIC]\n"
    "  txn list\n"
    "  txn describe TRANSACTIONAL_ID\n"
    "  Each command takes --help.\n"
    "\n"
    "Global options (anywhere on the line):\n"
    "  -b, --brokers HOST:PORT[,...]  bootstrap brokers (default: $VLTAVA_BROKERS,\n"
    "                                 else " CLI_DEFAULT_BROKERS ")\n"
    "      --timeout SECONDS          bound on waiting for the cluster (default 10): the\n"
    "                                 whole command; for produce and consume their\n"
    "                                 start and their end, not the records in between\n"
    "      --format text|json         tables for people (default) or JSON for scripts\n"
    "  -v, --verbose                  show the Kafka client library's log on stderr\n"
    "  -h, --help                     show help\n"
    "\n"
    "Exit codes:\n"
    "  0  success\n"
    "  1  other error (the message on stderr says which)\n"
    "  2  bad arguments\n"
    "  3  cluster unreachable: no broker answered within the timeout\n"
    "  4  unknown topic or partition\n"
    "  5  topic already exists\n"
    "  6  unknown consumer group\n"
    "  7  consumer group not empty: it has members, the command needs none\n"
    "  8  unknown transactional id\n"
    "  9  cluster health: not healthy (the reasons are printed)\n";

static const char cluster_usage[] =
    "Usage: vltava cluster info|health|reassignments|rebalance|elect-leaders\n"
    "       [OPTIONS] [GLOBAL OPTIONS]\n"
    "\n"
    "Subcommands:\n"
    "  info     brokers (id, host, port, rack), controller id and cluster id\n"
    "  health   controller, live brokers, brokers down, leaderless and\n"
    "           under-replicated partitions; exit code 0 only when healthy\n"
    "           (--local: only the broker at the first --brokers address)\n"
    "  reassignments  partition reassignments in progress\n"
    "  rebalance      spread replicas and preferred leaders evenly over the live\n"
    "                 brokers ([--dry-run] [--wait])\n"
    "  elect-leaders  preferred (or --unclean) leader elections by the controller\n"
    "\n"
    "See vltava --help for the global options and exit codes.\n";

int main(int argc, char **argv)
{
    assert(argc >= 1);
    /* A closed stdout pipe (vltava consume ... | head) must end the process
     * quietly through the EPIPE write error, not kill it with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);

    struct cli_globals globals = {
        .brokers = CLI_DEFAULT_BROKERS,
        .timeout_ms = CLI_DEFAULT_TIMEOUT_MS,
        .format = CLI_FORMAT_TEXT,
    };
    const char *env = getenv("VLTAVA_BROKERS");
    if (env != NULL && *env != '\0')
        globals.brokers = env;

    int cmd = cli_parse_leading_globals(argc, argv, &globals);
    if (cmd == CLI_OPT_HELP) {
        fputs(main_usage, stdout);
        return CLI_EXIT_OK;
    }
    if (cmd == CLI_OPT_ERROR)
        return CLI_EXIT_USAGE;
    assert(cmd >= 1 && cmd <= argc);
    if (cmd == argc) {
        cli_usage_error(main_usage, "missing command");
        return CLI_EXIT_USAGE;
    }

    const char *name = argv[cmd];
    int rest_argc = argc - cmd;
    char **rest_argv = argv + cmd;
    if (strcmp(name, "help") == 0) {
        fputs(main_usage, stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(name, "topic") == 0)
        return cli_cmd_topic(rest_argc, rest_argv, &globals);
    if (strcmp(name, "produce") == 0)
        return cli_cmd_produce(rest_argc, rest_argv, &globals);
    if (strcmp(name, "consume") == 0)
        return cli_cmd_consume(rest_argc, rest_argv, &globals);
    if (strcmp(name, "group") == 0)
        return cli_cmd_group(rest_argc, rest_argv, &globals);
    if (strcmp(name, "txn") == 0)
        return cli_cmd_txn(rest_argc, rest_argv, &globals);
    if (strcmp(name, "cluster") == 0) {
        static const struct cli_subcommand subs[] = {
            {"info", cli_cmd_cluster},
            {"health", cli_cmd_cluster_health},
            {"reassignments", cli_cmd_cluster_reassignments},
            {"rebalance", cli_cmd_cluster_rebalance},
            {"elect-leaders", cli_cmd_cluster_elect_leaders}};
        return cli_run_subcommand(rest_argc, rest_argv, &globals, cluster_usage, subs,
                                  sizeof(subs) / sizeof(subs[0]));
    }
    cli_usage_error(main_usage, "unknown command '%s'", name);
    return CLI_EXIT_USAGE;
}
