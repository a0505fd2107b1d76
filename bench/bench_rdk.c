#include "bench_rdk.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void bench_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", program_invocation_short_name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

void bench_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
    char errstr[512];
    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
        bench_die("%s=%s: %s", name, value, errstr);
}

rd_kafka_t *bench_client_new(const char *bootstrap, const char *client_id, rd_kafka_type_t type,
                             rd_kafka_conf_t *conf,
                             void (*log_cb)(const rd_kafka_t *rk, int level, const char *fac,
                                            const char *buf))
{
    char errstr[512];
    bench_conf_set(conf, "bootstrap.servers", bootstrap);
    bench_conf_set(conf, "client.id", client_id);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
    if (rk == NULL)
        bench_die("rd_kafka_new: %s", errstr);
    return rk;
}

void bench_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    struct bench_deliveries *d = opaque;
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR && atomic_fetch_add(&d->failed, 1) == 0)
        d->first_error = m->err;
    atomic_fetch_add(&d->acked, 1);
}

/* The partition count once every partition of topic has a leader in a
 * fresh Metadata answer; 0 before. */
static int partitions_led(rd_kafka_t *rk, rd_kafka_topic_t *rkt, int timeout_ms)
{
    const struct rd_kafka_metadata *md = NULL;
    if (rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return 0;
    int led = 0;
    if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const rd_kafka_metadata_topic_t *t = &md->topics[0];
        led = t->partition_cnt;
        for (int i = 0; i < t->partition_cnt; i++)
            if (t->partitions[i].leader < 0)
                led = 0;
    }
    rd_kafka_metadata_destroy(md);
    return led;
}

int bench_topic_create(rd_kafka_t *rk, const char *topic, int partitions, int rf, bool exists_ok,
                       int timeout_s)
{
    assert(partitions > 0);
    assert(timeout_s > 0);
    char errstr[512];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, rf, errstr, sizeof(errstr));
    if (nt == NULL)
        bench_die("topic %s: %s", topic, errstr);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_s * 1000);
    if (ev == NULL)
        bench_die("CreateTopics %s: no answer in %d s", topic, timeout_s);
    size_t n = 0;
    const rd_kafka_topic_result_t **res =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    rd_kafka_resp_err_t err = rd_kafka_event_error(ev);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR && n == 1)
        err = rd_kafka_topic_result_error(res[0]);
    if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS && exists_ok)
        err = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        bench_die("CreateTopics %s: %s", topic, rd_kafka_err2str(err));
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);

    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    int64_t deadline = bench_now_ns() + (int64_t)timeout_s * 1000000000LL;
    int led;
    while ((led = partitions_led(rk, rkt, 2000)) == 0) {
        if (bench_now_ns() > deadline)
            bench_die("topic %s: partitions without a leader after %d s", topic, timeout_s);
        usleep(50 * 1000);
    }
    rd_kafka_topic_destroy(rkt);
    assert(led > 0);
    return led;
}
