/* What the librdkafka benchmarks (loadgen, group_bench) share: the clock,
 * fatal errors, configuration, and creating a topic until it has leaders.
 * Every failure ends the process: a benchmark has nothing to recover. */
#ifndef VLTAVA_BENCH_RDK_H
#define VLTAVA_BENCH_RDK_H

#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t bench_now_ns(void);

/* Prints "<program>: <message>" on stderr and exits 1. */
void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* rd_kafka_conf_set(); a refused name or value is fatal. */
void bench_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value);

/* A client of `bootstrap` named client_id, logging through log_cb; takes
 * conf; a refused configuration is fatal. */
rd_kafka_t *bench_client_new(const char *bootstrap, const char *client_id, rd_kafka_type_t type,
                             rd_kafka_conf_t *conf,
                             void (*log_cb)(const rd_kafka_t *rk, int level, const char *fac,
                                            const char *buf));

/* Delivery reports of one producer: bench_on_delivery, registered with
 * rd_kafka_conf_set_dr_msg_cb and the struct as the conf's opaque, counts
 * them (from librdkafka's thread: atomics) and keeps the first error. */
struct bench_deliveries {
    atomic_llong acked; /* reports, failed ones included */
    atomic_llong failed;
    rd_kafka_resp_err_t first_error; /* written once, by the first failure */
};

void bench_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);

/* Creates topic with CreateTopics through rk (an existing topic is fatal
 * unless exists_ok), then polls Metadata until every partition has a
 * leader. Each wait is bounded by timeout_s. Returns the topic's partition
 * count (an existing topic's may differ from `partitions`). */
int bench_topic_create(rd_kafka_t *rk, const char *topic, int partitions, int rf, bool exists_ok,
                       int timeout_s);

#endif
