/* The coordinator on the inter-broker RPC channel: the controller pushes
 * LeaderAndIsr and UpdateMetadata to every live broker after each change it
 * sees; every broker serves them, fenced by the controller epoch (an older
 * epoch than one already seen is ignored) and, per partition, by the leader
 * epoch (coord_apply_partition applies only newer ones). ZooKeeper stays
 * the source of truth: a push also triggers a reload from it. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord_state.h"
#include "kafka_errors.h"
#include "rpc.h"
#include "rpc.pb-c.h"
#include "vlog.h"
#include "xalloc.h"

#define PUSH_TIMEOUT_MS 10000

/* ---- serving ---- */

/* True (and the newest epoch noted) when a message of this controller
 * epoch may be applied. */
static bool epoch_current(coordinator_t *c, const char *what, int32_t sender, int32_t epoch)
{
    assert(what);
    if (epoch < c->controller_epoch_seen) {
        VLOG_WARN("coord", "ignoring %s from broker %d: stale controller epoch %d (newest seen %d)",
                  what, sender, epoch, c->controller_epoch_seen);
        return false;
    }
    c->controller_epoch_seen = epoch;
    return true;
}

/* Applies a push's partitions to the cache. This broker's own watches
 * bring the same changes from ZooKeeper, the source of truth; the push only
 * brings them sooner. A topic the cache does not know yet (its creation's
 * watch has not been read) is read whole now. */
static void apply_partitions(coordinator_t *c, Vltava__PartitionStateInfo **parts, size_t n)
{
    const char *requested = NULL; /* the last unknown topic asked for */
    for (size_t i = 0; i < n; i++) {
        const Vltava__PartitionStateInfo *p = parts[i];
        if (p->topic_id.len != 16 || p->leader < -1 || p->leader_epoch < 0 ||
            p->n_isr > COORD_MAX_REPLICAS)
            continue; /* malformed entry: the watches bring the truth */
        if (coord_apply_partition(c, p->topic, p->topic_id.data, p->partition, p->leader,
                                  p->leader_epoch, p->isr, (int32_t)p->n_isr))
            continue;
        if (!requested || strcmp(requested, p->topic) != 0)
            coord_request_topic_reload(c, p->topic);
        requested = p->topic;
    }
}

static void on_leader_and_isr(void *arg, rpc_request_t *req, int32_t sender, const uint8_t *payload,
                              size_t len)
{
    coordinator_t *c = arg;
    Vltava__LeaderAndIsrRequest *m = vltava__leader_and_isr_request__unpack(NULL, len, payload);
    if (!m) {
        VLOG_WARN("coord", "undecodable LeaderAndIsr from broker %d", sender);
        rpc_respond(req, KAFKA_INVALID_REQUEST, NULL, 0);
        return;
    }
    int16_t error = KAFKA_STALE_CONTROLLER_EPOCH;
    if (epoch_current(c, "LeaderAndIsr", sender, m->controller_epoch)) {
        VLOG_DEBUG("coord", "LeaderAndIsr from controller %d (epoch %d): %zu partitions",
                   m->controller_id, m->controller_epoch, m->n_partitions);
        apply_partitions(c, m->partitions, m->n_partitions);
        error = KAFKA_NONE;
    }
    vltava__leader_and_isr_request__free_unpacked(m, NULL);
    rpc_respond(req, error, NULL, 0);
}

static void on_update_metadata(void *arg, rpc_request_t *req, int32_t sender,
                               const uint8_t *payload, size_t len)
{
    coordinator_t *c = arg;
    Vltava__UpdateMetadataRequest *m = vltava__update_metadata_request__unpack(NULL, len, payload);
    if (!m) {
        VLOG_WARN("coord", "undecodable UpdateMetadata from broker %d", sender);
        rpc_respond(req, KAFKA_INVALID_REQUEST, NULL, 0);
        return;
    }
    int16_t error = KAFKA_STALE_CONTROLLER_EPOCH;
    if (epoch_current(c, "UpdateMetadata", sender, m->controller_epoch)) {
        offline_replicas_learn(c, m->partitions, m->n_partitions);
        apply_partitions(c, m->partitions, m->n_partitions);
        error = KAFKA_NONE;
    }
    vltava__update_metadata_request__free_unpacked(m, NULL);
    rpc_respond(req, error, NULL, 0);
}

/* ---- forwarded topic creation ---- */

#define FORWARD_TIMEOUT_MS 30000

static void on_forwarded_create_done(void *arg, int16_t error_code, const char *message)
{
    rpc_request_t *req = arg;
    Vltava__CreateTopicResponse r = VLTAVA__CREATE_TOPIC_RESPONSE__INIT;
    r.message = (char *)(message ? message : "");
    uint8_t buf[512];
    size_t len = 0;
    if (vltava__create_topic_response__get_packed_size(&r) <= sizeof(buf))
        len = vltava__create_topic_response__pack(&r, buf);
    rpc_respond(req, error_code, buf, len);
}

/* The controller's side: the request runs as if it came from a client. */
static void on_create_topic(void *arg, rpc_request_t *req, int32_t sender, const uint8_t *payload,
                            size_t len)
{
    coordinator_t *c = arg;
    Vltava__CreateTopicRequest *m = vltava__create_topic_request__unpack(NULL, len, payload);
    if (!m || m->n_configs > COORD_MAX_CONFIGS || m->replication_factor > INT16_MAX ||
        m->replication_factor < -1) {
        VLOG_WARN("coord", "undecodable or invalid CreateTopic from broker %d", sender);
        if (m)
            vltava__create_topic_request__free_unpacked(m, NULL);
        rpc_respond(req, KAFKA_INVALID_REQUEST, NULL, 0);
        return;
    }
    const char **keys = xcalloc(m->n_configs + 1, sizeof(char *));
    const char **values = xcalloc(m->n_configs + 1, sizeof(char *));
    for (size_t i = 0; i < m->n_configs; i++) {
        keys[i] = m->configs[i]->key;
        values[i] = m->configs[i]->value;
    }
    topic_spec_t spec = {
        .name = m->name,
        .partitions = m->partitions,
        .replication_factor = (int16_t)m->replication_factor,
        .config_keys = keys,
        .config_values = values,
        .nconfigs = m->n_configs,
    };
    VLOG_INFO("coord", "broker %d asks the controller to create topic %s", sender, m->name);
    coordinator_create_topic(c, &spec, on_forwarded_create_done, req);
    free(keys);
    free(values);
    vltava__create_topic_request__free_unpacked(m, NULL);
}

typedef struct forward_ctx {
    coordinator_done_fn done;
    void *arg;
} forward_ctx_t;

static void on_forward_answer(void *arg, rpc_status_t status, int32_t error_code,
                              const uint8_t *payload, size_t len)
{
    forward_ctx_t *f = arg;
    if (status != RPC_OK) {
        f->done(f->arg, status == RPC_TIMEOUT ? KAFKA_REQUEST_TIMED_OUT : KAFKA_NOT_CONTROLLER,
                "the controller could not be reached");
    } else {
        Vltava__CreateTopicResponse *r =
            len ? vltava__create_topic_response__unpack(NULL, len, payload) : NULL;
        const char *message = r && r->message[0] ? r->message : NULL;
        f->done(f->arg, (int16_t)error_code, message);
        if (r)
            vltava__create_topic_response__free_unpacked(r, NULL);
    }
    free(f);
}

int rpc_glue_forward_create(coordinator_t *c, const topic_spec_t *spec, coordinator_done_fn done,
                            void *arg)
{
    assert(spec->name && done);
    int32_t controller = c->md->controller_id;
    if (!c->rpc || controller < 0 || controller == c->cfg.broker_id ||
        spec->nconfigs > COORD_MAX_CONFIGS)
        return -1;
    Vltava__ConfigEntry *entries = xcalloc(spec->nconfigs + 1, sizeof(*entries));
    Vltava__ConfigEntry **ptrs = xcalloc(spec->nconfigs + 1, sizeof(*ptrs));
    for (size_t i = 0; i < spec->nconfigs; i++) {
        vltava__config_entry__init(&entries[i]);
        entries[i].key = (char *)spec->config_keys[i];
        entries[i].value = (char *)(spec->config_values[i] ? spec->config_values[i] : "");
        ptrs[i] = &entries[i];
    }
    Vltava__CreateTopicRequest m = VLTAVA__CREATE_TOPIC_REQUEST__INIT;
    m.name = (char *)spec->name;
    m.partitions = spec->partitions;
    m.replication_factor = spec->replication_factor;
    m.configs = ptrs;
    m.n_configs = spec->nconfigs;
    size_t len;
    uint8_t *buf = coord_pack_message(&m.base, &len);
    forward_ctx_t *f = xcalloc(1, sizeof(*f));
    f->done = done;
    f->arg = arg;
    int rc = rpc_send(c->rpc, controller, VLTAVA__RPC_TYPE__RPC_CREATE_TOPIC, buf, len,
                      FORWARD_TIMEOUT_MS, on_forward_answer, f);
    if (rc != 0)
        free(f);
    free(buf);
    free(ptrs);
    free(entries);
    return rc;
}

int rpc_glue_start(coordinator_t *c, char *err, size_t err_size)
{
    if (c->cfg.rpc_port < 0)
        return 0;
    rpc_config_t rc = {
        .host = c->rpc_bind_host,
        .port = c->cfg.rpc_port,
        .self_id = c->cfg.broker_id,
    };
    c->rpc = rpc_new(c->loop, &rc, err, err_size);
    if (!c->rpc)
        return -1;
    c->cfg.rpc_port = rpc_listen_port(c->rpc);
    rpc_set_handler(c->rpc, VLTAVA__RPC_TYPE__RPC_LEADER_AND_ISR, on_leader_and_isr, c);
    rpc_set_handler(c->rpc, VLTAVA__RPC_TYPE__RPC_UPDATE_METADATA, on_update_metadata, c);
    rpc_set_handler(c->rpc, VLTAVA__RPC_TYPE__RPC_CREATE_TOPIC, on_create_topic, c);
    offline_replicas_start(c);
    rpc_set_handler(c->rpc, VLTAVA__RPC_TYPE__RPC_CONTROLLED_SHUTDOWN,
                    controlled_shutdown_on_request, c);
    return 0;
}

void rpc_glue_stop(coordinator_t *c)
{
    rpc_free(c->rpc);
    c->rpc = NULL;
    offline_replicas_stop(c); /* after rpc_free: no report answer can come */
}

struct rpc *coordinator_rpc(coordinator_t *c)
{
    return c->rpc;
}

/* Keeps the RPC peer table equal to the live brokers. */
void rpc_glue_sync_peers(coordinator_t *c, const cluster_metadata_t *old)
{
    if (!c->rpc)
        return;
    for (size_t i = 0; i < c->md->nbrokers; i++) {
        const md_broker_t *b = &c->md->brokers[i];
        if (b->id != c->cfg.broker_id && b->rpc_port > 0)
            rpc_set_peer(c->rpc, b->id, b->rpc_host, b->rpc_port);
    }
    for (size_t i = 0; old && i < old->nbrokers; i++)
        if (!cluster_metadata_broker(c->md, old->brokers[i].id))
            rpc_remove_peer(c->rpc, old->brokers[i].id);
}

/* ---- pushing (controller) ---- */

typedef struct push_ctx {
    coordinator_t *c;
    int32_t broker_id;
    const char *what;
} push_ctx_t;

static void on_push_answer(void *arg, rpc_status_t status, int32_t error_code,
                           const uint8_t *payload, size_t len)
{
    (void)payload;
    (void)len;
    push_ctx_t *p = arg;
    if (status == RPC_OK && error_code == KAFKA_STALE_CONTROLLER_EPOCH) {
        /* A broker knows a newer controller: we may be deposed. */
        VLOG_WARN("coord", "broker %d refused %s: stale controller epoch", p->broker_id, p->what);
        if (status != RPC_SHUTDOWN)
            coord_request_reload(p->c);
    } else if (status != RPC_OK) {
        VLOG_DEBUG("coord", "%s to broker %d not delivered (status %d)", p->what, p->broker_id,
                   (int)status);
    }
    free(p);
}

static void fill_partition(coordinator_t *c, Vltava__PartitionStateInfo *pi, const md_topic_t *t,
                           const md_partition_t *p)
{
    vltava__partition_state_info__init(pi);
    pi->topic = t->name;
    pi->topic_id.data = (uint8_t *)t->id;
    pi->topic_id.len = 16;
    pi->partition = p->id;
    pi->leader = p->leader;
    pi->leader_epoch = p->leader_epoch;
    pi->isr = p->isr;
    pi->n_isr = (size_t)p->nisr;
    pi->replicas = p->replicas;
    pi->n_replicas = (size_t)p->nreplicas;
    pi->offline_replicas =
        (int32_t *)offline_replicas_of(c, t->name, p->id, &pi->n_offline_replicas);
}

static void send_push(coordinator_t *c, int32_t broker_id, uint32_t type, const char *what,
                      const ProtobufCMessage *m)
{
    size_t len;
    uint8_t *buf = coord_pack_message(m, &len);
    push_ctx_t *p = xcalloc(1, sizeof(*p));
    p->c = c;
    p->broker_id = broker_id;
    p->what = what;
    if (rpc_send(c->rpc, broker_id, type, buf, len, PUSH_TIMEOUT_MS, on_push_answer, p) != 0) {
        VLOG_DEBUG("coord", "%s to broker %d refused by the RPC layer", what, broker_id);
        free(p);
    }
    free(buf);
}

void controller_push_metadata(coordinator_t *c)
{
    if (!c->rpc || !c->is_controller)
        return;
    assert(c->my_controller_epoch >= 0);
    const cluster_metadata_t *md = c->md;
    size_t total = 0;
    if (c->push_full) {
        for (size_t i = 0; i < md->ntopics; i++)
            total += (size_t)md->topics[i].npartitions;
    } else {
        total = c->npush_changes;
    }
    Vltava__PartitionStateInfo *infos = xcalloc(total + 1, sizeof(*infos));
    Vltava__PartitionStateInfo **all = xcalloc(total + 1, sizeof(*all));
    Vltava__PartitionStateInfo **mine = xcalloc(total + 1, sizeof(*mine));
    const md_partition_t **parts = xcalloc(total + 1, sizeof(*parts));
    size_t k = 0;
    if (c->push_full) {
        for (size_t i = 0; i < md->ntopics; i++) {
            for (int32_t p = 0; p < md->topics[i].npartitions; p++) {
                fill_partition(c, &infos[k], &md->topics[i], &md->topics[i].partitions[p]);
                parts[k] = &md->topics[i].partitions[p];
                all[k] = &infos[k];
                k++;
            }
        }
        assert(k == total);
    } else {
        /* The changes since the last push; one gone meanwhile (its topic
         * deleted) is left out, as the receivers' watches tell them. */
        for (size_t i = 0; i < c->npush_changes; i++) {
            const partition_ref_t *r = &c->push_changes[i];
            const md_topic_t *t = cluster_metadata_topic(md, r->topic, strlen(r->topic));
            if (!t || r->partition >= t->npartitions)
                continue;
            fill_partition(c, &infos[k], t, &t->partitions[r->partition]);
            parts[k] = &t->partitions[r->partition];
            all[k] = &infos[k];
            k++;
        }
    }
    c->push_full = false;
    coord_push_clear(c);
    if (k == 0) {
        free(parts);
        free(mine);
        free(all);
        free(infos);
        return;
    }
    Vltava__BrokerRegistration *regs = xcalloc(md->nbrokers + 1, sizeof(*regs));
    Vltava__BrokerRegistration **reg_ptrs = xcalloc(md->nbrokers + 1, sizeof(*reg_ptrs));
    /* Without endpoints: receivers reload the registrations from ZooKeeper. */
    for (size_t i = 0; i < md->nbrokers; i++) {
        coord_fill_broker_registration(&regs[i], &md->brokers[i]);
        reg_ptrs[i] = &regs[i];
    }
    for (size_t b = 0; b < md->nbrokers; b++) {
        int32_t id = md->brokers[b].id;
        if (id == c->cfg.broker_id)
            continue; /* our own cache is what was just loaded */
        Vltava__UpdateMetadataRequest um = VLTAVA__UPDATE_METADATA_REQUEST__INIT;
        um.controller_id = c->cfg.broker_id;
        um.controller_epoch = c->my_controller_epoch;
        um.brokers = reg_ptrs;
        um.n_brokers = md->nbrokers;
        um.partitions = all;
        um.n_partitions = k;
        um.cluster_id = (char *)md->cluster_id;
        send_push(c, id, VLTAVA__RPC_TYPE__RPC_UPDATE_METADATA, "UpdateMetadata", &um.base);
        size_t n = 0;
        for (size_t i = 0; i < k; i++)
            if (coord_contains(parts[i]->replicas, parts[i]->nreplicas, id))
                mine[n++] = all[i];
        if (n == 0)
            continue;
        Vltava__LeaderAndIsrRequest la = VLTAVA__LEADER_AND_ISR_REQUEST__INIT;
        la.controller_id = c->cfg.broker_id;
        la.controller_epoch = c->my_controller_epoch;
        la.partitions = mine;
        la.n_partitions = n;
        send_push(c, id, VLTAVA__RPC_TYPE__RPC_LEADER_AND_ISR, "LeaderAndIsr", &la.base);
    }
    free(regs);
    free(reg_ptrs);
    free(parts);
    free(mine);
    free(all);
    free(infos);
}
