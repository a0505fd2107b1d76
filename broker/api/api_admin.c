/* Admin APIs: CreateTopics v0-4, DeleteTopics v0-3, CreatePartitions v0-1
 * (all through the coordinator, on the controller only) and
 * DescribeConfigs v0-2 (answered locally from the metadata cache).
 *
 * Everything that can be checked here is checked before the coordinator is
 * asked: the controller role, topic names, duplicates, counts, configs. The
 * rest is one coordinator call per topic; the request is deferred until
 * every call has answered or the request's timeout fires, whichever comes
 * first. Topics still pending at the timeout are answered
 * REQUEST_TIMED_OUT; the operation itself stays allocated until the last
 * coordinator callback, which may come later. A coordinator that answers
 * during the call itself is handled too: the request is then answered
 * without being deferred. */
#include <assert.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_handlers.h"
#include "config.h"
#include "coordinator.h"
#include "kafka_errors.h"
#include "vlog.h"
#include "xalloc.h"

#define KAFKA_TOPIC_DELETION_DISABLED 73
/* Used when a client sends timeout_ms <= 0 (Kafka: do not wait for
 * completion); the coordinator's own answer is still awaited, bounded. */
#define ADMIN_DEFAULT_TIMEOUT_MS 30000

typedef enum admin_kind {
    ADMIN_CREATE_TOPICS,
    ADMIN_DELETE_TOPICS,
    ADMIN_CREATE_PARTITIONS,
} admin_kind_t;

typedef struct admin_item {
    struct admin_op *op;
    char *name; /* owned */
    int16_t error;
    char *message; /* owned; NULL: none */
    bool pending;  /* waiting on the coordinator */
    /* CreateTopics */
    int32_t partitions;
    int16_t replication_factor;
    int32_t nassignments;
    char **config_keys; /* owned, with every string */
    char **config_values;
    size_t nconfigs;
    /* CreatePartitions */
    int32_t count;
    bool has_assignments;
} admin_item_t;

struct admin_op {
    struct admin_op *prev, *next; /* in ctx->admin_ops */
    api_context_t *ctx;
    admin_kind_t kind;
    kafka_request_t *req; /* NULL once answered */
    kafka_response_t *resp;
    admin_item_t *items;
    int32_t nitems;
    int32_t npending;
    bool issuing; /* inside the coordinator calls: do not answer yet */
    ev_timer timer;
};

static void item_fail(admin_item_t *it, int16_t error, const char *message)
{
    assert(error != KAFKA_NONE);
    it->error = error;
    free(it->message);
    it->message = message ? xstrdup(message) : NULL;
}

/* Reads the topic array count of a CreateTopics, DeleteTopics or
 * CreatePartitions request (each entry at least min_entry_size bytes) into
 * *n (0 for a null array) and allocates that many zeroed items, owned by the
 * caller (items_free). NULL when the count is malformed. */
static admin_item_t *items_read_count(kreader_t *r, size_t min_entry_size, int32_t *n)
{
    int32_t count;
    if (!kr_array_v(r, false, min_entry_size, &count))
        return NULL;
    *n = count < 0 ? 0 : count;
    return xcalloc((size_t)*n + 1, sizeof(admin_item_t));
}

static void items_free(admin_item_t *items, int32_t n)
{
    for (int32_t i = 0; i < n; i++) {
        admin_item_t *it = &items[i];
        free(it->name);
        free(it->message);
        for (size_t c = 0; c < it->nconfigs; c++) {
            free(it->config_keys[c]);
            free(it->config_values[c]);
        }
        free(it->config_keys);
        free(it->config_values);
    }
    free(items);
}

/* Names that appear twice in one request are refused, every copy. */
static void fail_duplicates(admin_item_t *items, int32_t n)
{
    for (int32_t i = 0; i < n; i++)
        for (int32_t j = i + 1; j < n; j++)
            if (strcmp(items[i].name, items[j].name) == 0) {
                char msg[300];
                snprintf(msg, sizeof(msg), "Topic %s appears more than once in the request",
                         items[i].name);
                item_fail(&items[i], KAFKA_INVALID_REQUEST, msg);
                item_fail(&items[j], KAFKA_INVALID_REQUEST, msg);
            }
}

static void write_response(admin_kind_t kind, int16_t version, const admin_item_t *items, int32_t n,
                           kwriter_t *w)
{
    bool throttle = kind == ADMIN_CREATE_TOPICS   ? version >= 2
                    : kind == ADMIN_DELETE_TOPICS ? version >= 1
                                                  : true;
    bool messages = kind == ADMIN_CREATE_TOPICS ? version >= 1 : kind == ADMIN_CREATE_PARTITIONS;
    if (throttle)
        kw_i32(w, 0);
    kw_array_v(w, false, n);
    for (int32_t i = 0; i < n; i++) {
        kw_string_v(w, false, items[i].name, -1);
        kw_i16(w, items[i].error);
        if (messages)
            kw_string_v(w, false, items[i].message, -1);
    }
}

static void op_unlink_free(struct admin_op *op)
{
    api_context_t *ctx = op->ctx;
    if (op->prev)
        op->prev->next = op->next;
    else
        ctx->admin_ops = op->next;
    if (op->next)
        op->next->prev = op->prev;
    ev_timer_stop(ctx->loop, &op->timer);
    items_free(op->items, op->nitems);
    free(op);
}

/* Answers the request now: pending topics get REQUEST_TIMED_OUT. */
static void op_answer(struct admin_op *op)
{
    assert(op->req != NULL);
    for (int32_t i = 0; i < op->nitems; i++)
        if (op->items[i].pending && op->items[i].error == KAFKA_NONE)
            item_fail(&op->items[i], KAFKA_REQUEST_TIMED_OUT,
                      "The operation did not complete within the request's timeout; it may "
                      "still complete");
    write_response(op->kind, op->req->api_version, op->items, op->nitems, &op->resp->body);
    kafka_request_t *req = op->req;
    kafka_response_t *resp = op->resp;
    op->req = NULL;
    op->resp = NULL;
    ev_timer_stop(op->ctx->loop, &op->timer);
    api_request_complete(req, resp, API_RESPOND);
}

static void op_timeout(struct ev_loop *loop, ev_timer *timer, int revents)
{
    struct admin_op *op = timer->data;
    (void)loop;
    (void)revents;
    op_answer(op);
}

static void op_item_done(void *arg, int16_t error_code, const char *message)
{
    admin_item_t *it = arg;
    struct admin_op *op = it->op;
    assert(it->pending && op->npending > 0);
    it->pending = false;
    op->npending--;
    if (op->req != NULL && error_code != KAFKA_NONE)
        item_fail(it, error_code, message);
    if (op->issuing || op->npending > 0)
        return;
    if (op->req != NULL)
        op_answer(op);
    op_unlink_free(op);
}

static void op_issue(struct admin_op *op, bool validate_only)
{
    coordinator_t *coord = op->ctx->coord;
    for (int32_t i = 0; i < op->nitems; i++) {
        admin_item_t *it = &op->items[i];
        if (!it->pending)
            continue;
        switch (op->kind) {
        case ADMIN_CREATE_TOPICS: {
            topic_spec_t spec = {
                .name = it->name,
                .partitions = it->partitions,
                .replication_factor = it->replication_factor,
                .config_keys = (const char *const *)it->config_keys,
                .config_values = (const char *const *)it->config_values,
                .nconfigs = it->nconfigs,
                .validate_only = validate_only,
            };
            coordinator_create_topic(coord, &spec, op_item_done, it);
            break;
        }
        case ADMIN_DELETE_TOPICS:
            coordinator_delete_topic(coord, it->name, op_item_done, it);
            break;
        case ADMIN_CREATE_PARTITIONS:
            coordinator_create_partitions(coord, it->name, it->count, validate_only, op_item_done,
                                          it);
            break;
        }
    }
}

/* Takes ownership of items. Answers at once when nothing needs the
 * coordinator (or the coordinator answered during the calls); defers
 * otherwise. */
static api_result_t op_run(api_context_t *ctx, kafka_request_t *req, kafka_response_t *resp,
                           admin_kind_t kind, admin_item_t *items, int32_t n, int32_t timeout_ms,
                           bool validate_only)
{
    int32_t npending = 0;
    for (int32_t i = 0; i < n; i++) {
        items[i].pending = items[i].error == KAFKA_NONE;
        npending += items[i].pending;
    }
    if (npending == 0) {
        write_response(kind, req->api_version, items, n, &resp->body);
        items_free(items, n);
        return API_RESPOND;
    }

    struct admin_op *op = xcalloc(1, sizeof(*op));
    op->ctx = ctx;
    op->kind = kind;
    op->req = req;
    op->resp = resp;
    op->items = items;
    op->nitems = n;
    op->npending = npending;
    for (int32_t i = 0; i < n; i++)
        items[i].op = op;
    op->next = ctx->admin_ops;
    if (op->next)
        op->next->prev = op;
    ctx->admin_ops = op;
    ev_timer_init(&op->timer, op_timeout,
                  (timeout_ms > 0 ? timeout_ms : ADMIN_DEFAULT_TIMEOUT_MS) / 1000.0, 0.);
    op->timer.data = op;

    op->issuing = true;
    op_issue(op, validate_only);
    op->issuing = false;
    if (op->npending == 0) {
        write_response(kind, req->api_version, items, n, &resp->body);
        op->req = NULL;
        op_unlink_free(op);
        return API_RESPOND;
    }
    ev_timer_start(ctx->loop, &op->timer);
    return API_DEFERRED;
}

void api_admin_abort_all(api_context_t *ctx)
{
    while (ctx->admin_ops) {
        struct admin_op *op = ctx->admin_ops;
        if (op->req != NULL)
            op_answer(op);
        op_unlink_free(op);
    }
}

/* Checks the name (already in it->name) and the controller role, common
 * to every admin item. Returns false when the item failed. */
static bool item_check_common(api_context_t *ctx, admin_item_t *it)
{
    char msg[400];
    assert(it->name != NULL);
    if (api_validate_topic_name(it->name, strlen(it->name), msg, sizeof(msg)) != KAFKA_NONE) {
        item_fail(it, KAFKA_INVALID_TOPIC_EXCEPTION, msg);
        return false;
    }
    if (!coordinator_is_controller(ctx->coord)) {
        item_fail(it, KAFKA_NOT_CONTROLLER, "This is not the correct controller for this cluster");
        return false;
    }
    return true;
}

/* ---- CreateTopics ---- */

static void create_topic_validate(api_context_t *ctx, admin_item_t *it)
{
    const cluster_metadata_t *md = coordinator_metadata(ctx->coord);
    char msg[400];
    if (cluster_metadata_topic(md, it->name, strlen(it->name))) {
        snprintf(msg, sizeof(msg), "Topic '%s' already exists.", it->name);
        item_fail(it, KAFKA_TOPIC_ALREADY_EXISTS, msg);
        return;
    }
    if (it->nassignments > 0) {
        item_fail(it, KAFKA_INVALID_REPLICA_ASSIGNMENT,
                  "Manual replica assignment is not supported; give partitions and a "
                  "replication factor");
        return;
    }
    if (it->partitions == 0 || it->partitions < -1) {
        item_fail(it, KAFKA_INVALID_PARTITIONS, "Number of partitions must be larger than 0.");
        return;
    }
    if (it->replication_factor == 0 || it->replication_factor < -1) {
        item_fail(it, KAFKA_INVALID_REPLICATION_FACTOR,
                  "Replication factor must be larger than 0.");
        return;
    }
    int32_t rf = it->replication_factor > 0 ? it->replication_factor
                                            : ctx->config->default_replication_factor;
    if (rf > (int32_t)md->nbrokers) {
        snprintf(msg, sizeof(msg), "Replication factor: %d larger than available brokers: %zu.", rf,
                 md->nbrokers);
        item_fail(it, KAFKA_INVALID_REPLICATION_FACTOR, msg);
        return;
    }
    for (size_t c = 0; c < it->nconfigs; c++) {
        int16_t err =
            api_validate_topic_config(it->config_keys[c], it->config_values[c], msg, sizeof(msg));
        if (err != KAFKA_NONE) {
            item_fail(it, err, msg);
            return;
        }
    }
}

api_result_t api_handle_create_topics(api_context_t *ctx, kafka_request_t *req,
                                      kafka_response_t *resp)
{
    kreader_t *r = &req->body;
    assert(req->api_version >= 0 && req->api_version <= 4);
    assert(!req->flexible);
    int32_t n, timeout_ms;
    bool validate_only = false;

    admin_item_t *items = items_read_count(r, 16, &n);
    if (items == NULL)
        return API_REFUSE(req, "malformed CreateTopics request");
    for (int32_t i = 0; i < n; i++) {
        admin_item_t *it = &items[i];
        kslice_t name;
        int32_t nconfigs;
        if (!kr_string_v(r, false, &name) || !kr_i32(r, &it->partitions) ||
            !kr_i16(r, &it->replication_factor) || !kr_array_v(r, false, 8, &it->nassignments))
            goto malformed;
        it->name = kslice_strdup(name);
        for (int32_t a = 0; a < it->nassignments; a++) {
            int32_t partition, nbrokers;
            if (!kr_i32(r, &partition) || !kr_array_v(r, false, 4, &nbrokers) ||
                !kr_skip(r, (size_t)(nbrokers < 0 ? 0 : nbrokers) * 4))
                goto malformed;
        }
        if (!kr_array_v(r, false, 4, &nconfigs))
            goto malformed;
        if (nconfigs > 0) {
            it->config_keys = xcalloc((size_t)nconfigs, sizeof(char *));
            it->config_values = xcalloc((size_t)nconfigs, sizeof(char *));
        }
        for (int32_t c = 0; c < nconfigs; c++) {
            kslice_t key, value;
            if (!kr_string_v(r, false, &key) || !kr_nullable_string_v(r, false, &value))
                goto malformed;
            it->config_keys[c] = kslice_strdup(key);
            it->config_values[c] = value.ptr ? kslice_strdup(value) : NULL;
            it->nconfigs++;
        }
    }
    if (!kr_i32(r, &timeout_ms) || (req->api_version >= 1 && !kr_bool(r, &validate_only)))
        goto malformed;

    for (int32_t i = 0; i < n; i++)
        if (item_check_common(ctx, &items[i]))
            create_topic_validate(ctx, &items[i]);
    fail_duplicates(items, n);
    return op_run(ctx, req, resp, ADMIN_CREATE_TOPICS, items, n, timeout_ms, validate_only);

malformed:
    items_free(items, n);
    return API_REFUSE(req, "malformed CreateTopics request");
}

/* ---- DeleteTopics ---- */

api_result_t api_handle_delete_topics(api_context_t *ctx, kafka_request_t *req,
                                      kafka_response_t *resp)
{
    kreader_t *r = &req->body;
    assert(req->api_version >= 0 && req->api_version <= 3);
    assert(!req->flexible);
    int32_t n, timeout_ms;

    admin_item_t *items = items_read_count(r, 2, &n);
    if (items == NULL)
        return API_REFUSE(req, "malformed DeleteTopics request");
    for (int32_t i = 0; i < n; i++) {
        kslice_t name;
        if (!kr_string_v(r, false, &name))
            goto malformed;
        items[i].name = kslice_strdup(name);
    }
    if (!kr_i32(r, &timeout_ms))
        goto malformed;

    const cluster_metadata_t *md = coordinator_metadata(ctx->coord);
    for (int32_t i = 0; i < n; i++) {
        admin_item_t *it = &items[i];
        if (!item_check_common(ctx, it))
            continue;
        if (!ctx->config->delete_topic_enable)
            item_fail(it, KAFKA_TOPIC_DELETION_DISABLED, "Topic deletion is disabled.");
        else if (!cluster_metadata_topic(md, it->name, strlen(it->name)))
            item_fail(it, KAFKA_UNKNOWN_TOPIC_OR_PARTITION,
                      "This server does not host this topic-partition.");
    }
    fail_duplicates(items, n);
    return op_run(ctx, req, resp, ADMIN_DELETE_TOPICS, items, n, timeout_ms, false);

malformed:
    items_free(items, n);
    return API_REFUSE(req, "malformed DeleteTopics request");
}

/* ---- CreatePartitions ---- */

api_result_t api_handle_create_partitions(api_context_t *ctx, kafka_request_t *req,
                                          kafka_response_t *resp)
{
    kreader_t *r = &req->body;
    assert(req->api_version >= 0 && req->api_version <= 1);
    assert(!req->flexible);
    int32_t n, timeout_ms;
    bool validate_only;

    admin_item_t *items = items_read_count(r, 10, &n);
    if (items == NULL)
        return API_REFUSE(req, "malformed CreatePartitions request");
    for (int32_t i = 0; i < n; i++) {
        kslice_t name;
        int32_t nassign;
        if (!kr_string_v(r, false, &name))
            goto malformed;
        items[i].name = kslice_strdup(name);
        if (!kr_i32(r, &items[i].count) || !kr_array_v(r, false, 4, &nassign))
            goto malformed;
        items[i].has_assignments = nassign >= 0;
        for (int32_t a = 0; a < nassign; a++) {
            int32_t nbrokers;
            if (!kr_array_v(r, false, 4, &nbrokers) ||
                !kr_skip(r, (size_t)(nbrokers < 0 ? 0 : nbrokers) * 4))
                goto malformed;
        }
    }
    if (!kr_i32(r, &timeout_ms) || !kr_bool(r, &validate_only))
        goto malformed;

    const cluster_metadata_t *md = coordinator_metadata(ctx->coord);
    for (int32_t i = 0; i < n; i++) {
        admin_item_t *it = &items[i];
        char msg[300];
        if (!item_check_common(ctx, it))
            continue;
        const md_topic_t *t = cluster_metadata_topic(md, it->name, strlen(it->name));
        if (!t) {
            item_fail(it, KAFKA_UNKNOWN_TOPIC_OR_PARTITION,
                      "This server does not host this topic-partition.");
        } else if (it->has_assignments) {
            item_fail(it, KAFKA_INVALID_REPLICA_ASSIGNMENT,
                      "Manual replica assignment is not supported");
        } else if (it->count < t->npartitions) {
            snprintf(msg, sizeof(msg),
                     "Topic currently has %d partitions, which is higher than the requested %d.",
                     t->npartitions, it->count);
            item_fail(it, KAFKA_INVALID_PARTITIONS, msg);
        } else if (it->count == t->npartitions) {
            snprintf(msg, sizeof(msg), "Topic already has %d partitions.", t->npartitions);
            item_fail(it, KAFKA_INVALID_PARTITIONS, msg);
        }
    }
    fail_duplicates(items, n);
    return op_run(ctx, req, resp, ADMIN_CREATE_PARTITIONS, items, n, timeout_ms, validate_only);

malformed:
    items_free(items, n);
    return API_REFUSE(req, "malformed CreatePartitions request");
}

/* ---- DescribeConfigs ---- */

#define RESOURCE_TOPIC  2
#define RESOURCE_BROKER 4

#define SOURCE_TOPIC_CONFIG         1
#define SOURCE_STATIC_BROKER_CONFIG 4
#define SOURCE_DEFAULT_CONFIG       5

typedef struct config_entry {
    const char *name;
    char value[128];
    bool read_only;
    bool is_default;
    int8_t source;
} config_entry_t;

static bool wanted(kreader_t keys, int32_t nkeys, const char *name)
{
    if (nkeys <= 0)
        return true; /* null or empty: every key, as Kafka answers */
    for (int32_t i = 0; i < nkeys; i++) {
        kslice_t k;
        kr_string_v(&keys, false, &k); /* validated by the caller */
        if (kslice_eq(k, name))
            return true;
    }
    return false;
}

static void write_entry(kwriter_t *w, int16_t version, bool synonyms, const config_entry_t *e)
{
    kw_string_v(w, false, e->name, -1);
    kw_string_v(w, false, e->value, -1);
    kw_bool(w, e->read_only);
    if (version == 0)
        kw_bool(w, e->is_default);
    else
        kw_i8(w, e->source);
    kw_bool(w, false); /* is_sensitive */
    if (version >= 1) {
        kw_array_v(w, false, synonyms ? 1 : 0);
        if (synonyms) {
            kw_string_v(w, false, e->name, -1);
            kw_string_v(w, false, e->value, -1);
            kw_i8(w, e->source);
        }
    }
}

static const char *topic_override(const md_topic_t *t, const char *key)
{
    for (size_t i = 0; i < t->nconfigs; i++)
        if (strcmp(t->config_keys[i], key) == 0)
            return t->config_values[i];
    return NULL;
}

/* One topic's configs: the log's keys with the topic's overrides applied
 * over the broker defaults. */
static void describe_topic(api_context_t *ctx, kwriter_t *w, int16_t version, bool synonyms,
                           const md_topic_t *t, kreader_t keys, int32_t nkeys)
{
    log_config_t cfg;
    replica_manager_topic_config(ctx->replicas, t, &cfg);
    size_t count_at = kw_reserve_i32(w); /* the entries' count, once known */
    int32_t n = 0;
    for (size_t i = 0; log_config_keys[i]; i++) {
        config_entry_t e = {.name = log_config_keys[i]};
        if (!wanted(keys, nkeys, e.name) ||
            log_config_get(&cfg, e.name, e.value, sizeof(e.value)) != 0)
            continue;
        const char *override = topic_override(t, e.name);
        if (override)
            snprintf(e.value, sizeof(e.value), "%s", override);
        e.is_default = override == NULL;
        e.source = override ? SOURCE_TOPIC_CONFIG : SOURCE_DEFAULT_CONFIG;
        write_entry(w, version, synonyms, &e);
        n++;
    }
    kw_patch_i32(w, count_at, n);
}

/* The broker's static configuration, read-only. */
static void describe_broker(api_context_t *ctx, kwriter_t *w, int16_t version, bool synonyms,
                            kreader_t keys, int32_t nkeys)
{
    const broker_config_t *c = ctx->config;
    config_entry_t all[] = {
        {.name = "broker.id"},
        {.name = "num.partitions"},
        {.name = "default.replication.factor"},
        {.name = "min.insync.replicas"},
        {.name = "auto.create.topics.enable"},
        {.name = "delete.topic.enable"},
        {.name = "unclean.leader.election.enable"},
        {.name = "auto.leader.rebalance.enable"},
        {.name = "log.dirs"},
        {.name = "zookeeper.connect"},
        {.name = "broker.rack"},
        {.name = "socket.request.max.bytes"},
        {.name = "message.max.bytes"},
        {.name = "log.segment.bytes"},
        {.name = "log.retention.ms"},
        {.name = "log.retention.bytes"},
        {.name = "leader.imbalance.check.interval.seconds"},
        {.name = "leader.imbalance.per.broker.percentage"},
    };
    const size_t nall = sizeof(all) / sizeof(all[0]);
    snprintf(all[0].value, sizeof(all[0].value), "%d", c->broker_id);
    snprintf(all[1].value, sizeof(all[1].value), "%d", c->num_partitions);
    snprintf(all[2].value, sizeof(all[2].value), "%d", c->default_replication_factor);
    snprintf(all[3].value, sizeof(all[3].value), "%d", c->log_defaults.min_insync_replicas);
    snprintf(all[4].value, sizeof(all[4].value), "%s", c->auto_create_topics ? "true" : "false");
    snprintf(all[5].value, sizeof(all[5].value), "%s", c->delete_topic_enable ? "true" : "false");
    snprintf(all[6].value, sizeof(all[6].value), "%s",
             c->unclean_leader_election ? "true" : "false");
    snprintf(all[7].value, sizeof(all[7].value), "%s", c->auto_leader_rebalance ? "true" : "false");
    snprintf(all[8].value, sizeof(all[8].value), "%s", c->log_dir ? c->log_dir : "");
    snprintf(all[9].value, sizeof(all[9].value), "%s",
             c->zookeeper_connect ? c->zookeeper_connect : "");
    snprintf(all[10].value, sizeof(all[10].value), "%s", c->rack ? c->rack : "");
    snprintf(all[11].value, sizeof(all[11].value), "%d", c->socket_request_max_bytes);
    snprintf(all[12].value, sizeof(all[12].value), "%d", c->log_defaults.max_message_bytes);
    snprintf(all[13].value, sizeof(all[13].value), "%lld",
             (long long)c->log_defaults.segment_bytes);
    snprintf(all[14].value, sizeof(all[14].value), "%lld", (long long)c->log_defaults.retention_ms);
    snprintf(all[15].value, sizeof(all[15].value), "%lld",
             (long long)c->log_defaults.retention_bytes);
    snprintf(all[16].value, sizeof(all[16].value), "%d", c->leader_imbalance_check_interval_s);
    snprintf(all[17].value, sizeof(all[17].value), "%d", c->leader_imbalance_per_broker_percentage);
    size_t count_at = kw_reserve_i32(w); /* the entries' count, once known */
    int32_t n = 0;
    for (size_t i = 0; i < nall; i++) {
        if (!wanted(keys, nkeys, all[i].name))
            continue;
        all[i].read_only = true;
        all[i].source = SOURCE_STATIC_BROKER_CONFIG;
        write_entry(w, version, synonyms, &all[i]);
        n++;
    }
    kw_patch_i32(w, count_at, n);
}

api_result_t api_handle_describe_configs(api_context_t *ctx, kafka_request_t *req,
                                         kafka_response_t *resp)
{
    kreader_t *r = &req->body;
    kwriter_t *w = &resp->body;
    const int16_t version = req->api_version;
    assert(version >= 0 && version <= 2);
    assert(!req->flexible);
    int32_t nresources;

    if (!kr_array_v(r, false, 7, &nresources))
        return API_REFUSE(req, "malformed DescribeConfigs request");
    /* include_synonyms follows the resources: find it first. */
    kreader_t resources_at = *r;
    for (int32_t i = 0; i < nresources; i++) {
        int8_t type;
        kslice_t name, key;
        int32_t nkeys;
        if (!kr_i8(r, &type) || !kr_string_v(r, false, &name) || !kr_array_v(r, false, 2, &nkeys))
            return API_REFUSE(req, "malformed DescribeConfigs request");
        for (int32_t k = 0; k < nkeys; k++)
            if (!kr_string_v(r, false, &key))
                return API_REFUSE(req, "malformed DescribeConfigs request");
    }
    bool synonyms = false;
    if (version >= 1 && !kr_bool(r, &synonyms))
        return API_REFUSE(req, "malformed DescribeConfigs request");

    const cluster_metadata_t *md = coordinator_metadata(ctx->coord);
    kw_i32(w, 0); /* throttle_time_ms */
    kw_array_v(w, false, nresources < 0 ? 0 : nresources);
    for (int32_t i = 0; i < nresources; i++) {
        int8_t type;
        kslice_t name, key;
        int32_t nkeys;
        kr_i8(&resources_at, &type); /* all validated above */
        kr_string_v(&resources_at, false, &name);
        kr_array_v(&resources_at, false, 2, &nkeys);
        kreader_t keys = resources_at;
        for (int32_t k = 0; k < nkeys; k++)
            kr_string_v(&resources_at, false, &key);

        char msg[400];
        int16_t error = KAFKA_NONE;
        const md_topic_t *t = NULL;
        char own_id[16];
        snprintf(own_id, sizeof(own_id), "%d", ctx->config->broker_id);
        if (type == RESOURCE_TOPIC) {
            error =
                api_validate_topic_name((const char *)name.ptr, (size_t)name.len, msg, sizeof(msg));
            if (error == KAFKA_NONE) {
                t = cluster_metadata_topic(md, (const char *)name.ptr, (size_t)name.len);
                if (!t) {
                    error = KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
                    snprintf(msg, sizeof(msg), "Topic %.*s does not exist", (int)name.len,
                             (const char *)name.ptr);
                }
            }
        } else if (type == RESOURCE_BROKER) {
            if (name.len > 0 && !kslice_eq(name, own_id)) {
                error = KAFKA_INVALID_REQUEST;
                snprintf(msg, sizeof(msg), "Broker %.*s is not this broker (%s); ask it directly",
                         (int)name.len, (const char *)name.ptr, own_id);
            }
        } else {
            error = KAFKA_INVALID_REQUEST;
            snprintf(msg, sizeof(msg), "Resource type %d is not supported", type);
        }
        kw_i16(w, error);
        kw_string_v(w, false, error == KAFKA_NONE ? NULL : msg, -1);
        kw_i8(w, type);
        kw_string_v(w, false, (const char *)name.ptr, name.len);
        if (error != KAFKA_NONE)
            kw_array_v(w, false, 0);
        else if (type == RESOURCE_TOPIC)
            describe_topic(ctx, w, version, synonyms, t, keys, nkeys);
        else
            describe_broker(ctx, w, version, synonyms, keys, nkeys);
    }
    return API_RESPOND;
}
