/* Znode payload codecs: protobuf messages from proto/znodes.proto to the
 * coordinator's structs and back. Decoders treat every payload as untrusted:
 * sizes are bounded before anything is allocated and every field that the
 * rest of the coordinator relies on is range-checked here. */
#include <assert.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "coord_internal.h"
#include "xalloc.h"
#include "znodes.pb-c.h"
#include "wall_clock.h"

uint8_t *coord_pack_message(const ProtobufCMessage *m, size_t *len)
{
    size_t size = protobuf_c_message_get_packed_size(m);
    /* A zero-length znode payload is legal protobuf; keep one byte so the
     * buffer is never NULL. */
    uint8_t *buf = xmalloc(size ? size : 1);
    size_t written = protobuf_c_message_pack(m, buf);
    if (written != size)
        abort(); /* protobuf-c broke its own size contract */
    *len = size;
    return buf;
}

static ProtobufCMessage *unpack_message(const ProtobufCMessageDescriptor *d, const uint8_t *buf,
                                        size_t len, char *err, size_t err_size)
{
    if (len > COORD_MAX_ZNODE_BYTES) {
        snprintf(err, err_size, "%s payload of %zu bytes exceeds %d", d->short_name, len,
                 COORD_MAX_ZNODE_BYTES);
        return NULL;
    }
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, len, buf);
    if (!m)
        snprintf(err, err_size, "%s payload is not a valid protobuf message", d->short_name);
    return m;
}

static bool ids_valid(const int32_t *ids, size_t n, char *err, size_t err_size, const char *what)
{
    if (n > COORD_MAX_REPLICAS) {
        snprintf(err, err_size, "%s lists %zu brokers (max %d)", what, n, COORD_MAX_REPLICAS);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0) {
            snprintf(err, err_size, "%s has negative broker id %d", what, ids[i]);
            return false;
        }
        for (size_t j = 0; j < i; j++) {
            if (ids[j] == ids[i]) {
                snprintf(err, err_size, "%s lists broker %d twice", what, ids[i]);
                return false;
            }
        }
    }
    return true;
}

/* ---- /brokers/ids/<id> ---- */

void coord_fill_broker_registration(Vltava__BrokerRegistration *m, const md_broker_t *b)
{
    assert(b->host && b->id >= 0);
    vltava__broker_registration__init(m);
    m->id = b->id;
    m->host = b->host;
    m->port = b->port;
    m->rpc_port = b->rpc_port;
    m->rpc_host = b->rpc_host ? b->rpc_host : b->host;
    m->rack = b->rack ? b->rack : "";
    assert(m->n_endpoints == 0);
}

uint8_t *znode_encode_broker(const md_broker_t *b, size_t *len)
{
    Vltava__BrokerRegistration m;
    Vltava__BrokerEndpoint eps[MD_MAX_ENDPOINTS];
    Vltava__BrokerEndpoint *ptrs[MD_MAX_ENDPOINTS];
    assert(b->nendpoints <= MD_MAX_ENDPOINTS); /* none: as a broker before named listeners */
    coord_fill_broker_registration(&m, b);
    for (size_t i = 0; i < b->nendpoints; i++) {
        const md_endpoint_t *e = &b->endpoints[i];
        assert(e->listener && e->host && e->security_protocol);
        vltava__broker_endpoint__init(&eps[i]);
        eps[i].listener = e->listener;
        eps[i].host = e->host;
        eps[i].port = e->port;
        eps[i].security_protocol = e->security_protocol;
        ptrs[i] = &eps[i];
    }
    m.endpoints = ptrs;
    m.n_endpoints = b->nendpoints;
    return coord_pack_message(&m.base, len);
}

void md_endpoint_set(md_endpoint_t *e, const char *listener, const char *host, int32_t port,
                     const char *security_protocol)
{
    e->listener = xstrdup(listener);
    e->host = xstrdup(host);
    e->port = port;
    e->security_protocol = xstrdup(security_protocol);
}

/* A listener name as brokers register them: 1..MD_LISTENER_NAME_MAX of
 * [A-Z0-9_-] (the config upper-cases names of [A-Za-z0-9_-]). */
static bool listener_name_valid(const char *name)
{
    size_t len = strnlen(name, MD_LISTENER_NAME_MAX + 1);
    if (len == 0 || len > MD_LISTENER_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        if (!(ch >= 'A' && ch <= 'Z') && !(ch >= '0' && ch <= '9') && ch != '_' && ch != '-')
            return false;
    }
    return true;
}

static bool host_valid(const char *host)
{
    size_t len = strnlen(host, MD_HOST_MAX + 1);
    return len > 0 && len <= MD_HOST_MAX;
}

/* Kafka's security protocols; none named: PLAINTEXT (the only one served). */
static bool security_protocol_valid(const char *p)
{
    static const char *const known[] = {"", "PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strcmp(p, known[i]) == 0)
            return true;
    return false;
}

/* The registration's endpoints into out (at least one). The untrusted
 * strings are checked before any is copied or printed. */
static int decode_endpoints(const Vltava__BrokerRegistration *m, md_broker_t *out, char *err,
                            size_t err_size)
{
    if (m->n_endpoints > MD_MAX_ENDPOINTS) {
        snprintf(err, err_size, "broker registration lists %zu endpoints (max %d)", m->n_endpoints,
                 MD_MAX_ENDPOINTS);
        return -1;
    }
    for (size_t i = 0; i < m->n_endpoints; i++) {
        const Vltava__BrokerEndpoint *e = m->endpoints[i];
        if (!listener_name_valid(e->listener)) {
            snprintf(err, err_size,
                     "broker registration has an invalid listener name (1 to %d of A-Z, 0-9, "
                     "'_' and '-')",
                     MD_LISTENER_NAME_MAX);
            return -1;
        }
        if (!host_valid(e->host) || e->port <= 0 || e->port > 65535 ||
            !security_protocol_valid(e->security_protocol)) {
            snprintf(err, err_size, "broker registration has an invalid endpoint for listener %s",
                     e->listener);
            return -1;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(m->endpoints[j]->listener, e->listener) == 0) {
                snprintf(err, err_size, "broker registration names listener %s twice", e->listener);
                return -1;
            }
        }
    }
    /* A registration without endpoints (a broker from before named
     * listeners): one PLAINTEXT endpoint at host:port. The decoder alone
     * says so; every reader sees at least one endpoint. */
    size_t n = m->n_endpoints ? m->n_endpoints : 1;
    out->endpoints = xcalloc(n, sizeof(*out->endpoints));
    out->nendpoints = n;
    if (m->n_endpoints == 0) {
        md_endpoint_set(&out->endpoints[0], "PLAINTEXT", m->host, m->port, "PLAINTEXT");
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        const Vltava__BrokerEndpoint *e = m->endpoints[i];
        md_endpoint_set(&out->endpoints[i], e->listener, e->host, e->port,
                        e->security_protocol[0] ? e->security_protocol : "PLAINTEXT");
    }
    return 0;
}

int znode_decode_broker(const uint8_t *buf, size_t len, md_broker_t *out, char *err,
                        size_t err_size)
{
    memset(out, 0, sizeof(*out));
    Vltava__BrokerRegistration *m = (Vltava__BrokerRegistration *)unpack_message(
        &vltava__broker_registration__descriptor, buf, len, err, err_size);
    if (!m)
        return -1;
    int rc = -1;
    if (m->id < 0 || !host_valid(m->host) || m->port <= 0 || m->port > 65535 || m->rpc_port < 0 ||
        m->rpc_port > 65535 || (m->rpc_host[0] && !host_valid(m->rpc_host))) {
        snprintf(err, err_size, "broker registration has an invalid id, host or port");
        goto out;
    }
    if (decode_endpoints(m, out, err, err_size) != 0)
        goto out;
    out->id = m->id;
    out->host = xstrdup(m->host);
    out->port = m->port;
    out->rpc_port = m->rpc_port;
    out->rack = m->rack[0] ? xstrdup(m->rack) : NULL;
    out->rpc_host = xstrdup(m->rpc_host[0] ? m->rpc_host : m->host);
    rc = 0;
out:
    protobuf_c_message_free_unpacked(&m->base, NULL);
    return rc;
}

void md_endpoints_free(md_endpoint_t *eps, size_t n)
{
    assert(n <= MD_MAX_ENDPOINTS);
    for (size_t i = 0; i < n; i++) {
        free(eps[i].listener);
        free(eps[i].host);
        free(eps[i].security_protocol);
    }
    free(eps);
}

void md_broker_clear(md_broker_t *b)
{
    md_endpoints_free(b->endpoints, b->nendpoints);
    free(b->host);
    free(b->rack);
    free(b->rpc_host);
    b->host = b->rack = b->rpc_host = NULL;
    b->endpoints = NULL;
    b->nendpoints = 0;
}

/* ---- /brokers/topics/<t> ---- */

uint8_t *znode_encode_assignment(const zk_assignment_t *a, size_t *len)
{
    assert(a->npartitions >= 0 && a->npartitions <= COORD_MAX_PARTITIONS);
    Vltava__TopicAssignment m = VLTAVA__TOPIC_ASSIGNMENT__INIT;
    m.topic_id.data = (uint8_t *)a->topic_id;
    m.topic_id.len = 16;
    Vltava__PartitionReplicas *parts = xcalloc((size_t)a->npartitions + 1, sizeof(*parts));
    Vltava__PartitionReplicas **ptrs = xcalloc((size_t)a->npartitions + 1, sizeof(*ptrs));
    for (int32_t i = 0; i < a->npartitions; i++) {
        vltava__partition_replicas__init(&parts[i]);
        parts[i].partition = i;
        parts[i].n_replicas = (size_t)a->nreplicas[i];
        parts[i].replicas = a->replicas[i];
        if (a->adding) {
            parts[i].n_adding_replicas = (size_t)a->nadding[i];
            parts[i].adding_replicas = a->adding[i];
        }
        if (a->removing) {
            parts[i].n_removing_replicas = (size_t)a->nremoving[i];
            parts[i].removing_replicas = a->removing[i];
        }
        if (a->reassign_epoch)
            parts[i].reassign_leader_epoch = a->reassign_epoch[i];
        ptrs[i] = &parts[i];
    }
    m.n_partitions = (size_t)a->npartitions;
    m.partitions = ptrs;
    uint8_t *buf = coord_pack_message(&m.base, len);
    free(ptrs);
    free(parts);
    return buf;
}

/* A partition's adding and removing replicas (already checked: its
 * replicas are valid ids): each a subset of the replicas, disjoint, and
 * neither the target (replicas minus removing) nor the original replicas
 * (replicas minus adding) empty. */
static bool reassignment_valid(const Vltava__PartitionReplicas *p, char *err, size_t err_size)
{
    if (!ids_valid(p->adding_replicas, p->n_adding_replicas, err, err_size, "adding replicas") ||
        !ids_valid(p->removing_replicas, p->n_removing_replicas, err, err_size,
                   "removing replicas"))
        return false;
    const int32_t nr = (int32_t)p->n_replicas;
    for (size_t i = 0; i < p->n_adding_replicas; i++) {
        if (!coord_contains(p->replicas, nr, p->adding_replicas[i]) ||
            coord_contains(p->removing_replicas, (int32_t)p->n_removing_replicas,
                           p->adding_replicas[i])) {
            snprintf(err, err_size, "partition %d adds broker %d, not a replica or also removed",
                     p->partition, p->adding_replicas[i]);
            return false;
        }
    }
    for (size_t i = 0; i < p->n_removing_replicas; i++) {
        if (!coord_contains(p->replicas, nr, p->removing_replicas[i])) {
            snprintf(err, err_size, "partition %d removes broker %d, not a replica", p->partition,
                     p->removing_replicas[i]);
            return false;
        }
    }
    if (p->reassign_leader_epoch < 0) {
        snprintf(err, err_size, "partition %d has reassignment leader epoch %d", p->partition,
                 p->reassign_leader_epoch);
        return false;
    }
    if (p->n_removing_replicas >= p->n_replicas) {
        snprintf(err, err_size, "partition %d removes every replica", p->partition);
        return false;
    }
    /* Adding ids are distinct replicas: all of them added leaves no
     * original replica, which a cancel would reassign to. */
    if (p->n_adding_replicas >= p->n_replicas) {
        snprintf(err, err_size, "partition %d adds every replica (no original one)", p->partition);
        return false;
    }
    return true;
}

int znode_decode_assignment(const uint8_t *buf, size_t len, zk_assignment_t *out, char *err,
                            size_t err_size)
{
    memset(out, 0, sizeof(*out));
    Vltava__TopicAssignment *m = (Vltava__TopicAssignment *)unpack_message(
        &vltava__topic_assignment__descriptor, buf, len, err, err_size);
    if (!m)
        return -1;
    int rc = -1;
    if (m->topic_id.len != 16) {
        snprintf(err, err_size, "topic id has %zu bytes, not 16", m->topic_id.len);
        goto out;
    }
    if (m->n_partitions == 0 || m->n_partitions > COORD_MAX_PARTITIONS) {
        snprintf(err, err_size, "topic assignment has %zu partitions", m->n_partitions);
        goto out;
    }
    /* Partitions may be listed in any order but must be exactly 0..n-1. */
    size_t n = m->n_partitions;
    int32_t **replicas = xcalloc(n, sizeof(*replicas));
    int32_t *nreplicas = xcalloc(n, sizeof(*nreplicas));
    out->replicas = replicas;
    out->nreplicas = nreplicas;
    out->adding = xcalloc(n, sizeof(*out->adding));
    out->nadding = xcalloc(n, sizeof(*out->nadding));
    out->removing = xcalloc(n, sizeof(*out->removing));
    out->nremoving = xcalloc(n, sizeof(*out->nremoving));
    out->reassign_epoch = xcalloc(n, sizeof(*out->reassign_epoch));
    out->npartitions = (int32_t)n;
    for (size_t i = 0; i < n; i++) {
        const Vltava__PartitionReplicas *p = m->partitions[i];
        if (p->partition < 0 || (size_t)p->partition >= n || replicas[p->partition]) {
            snprintf(err, err_size, "partition %d is out of range or listed twice", p->partition);
            goto fail;
        }
        if (p->n_replicas == 0) {
            snprintf(err, err_size, "partition %d has no replicas", p->partition);
            goto fail;
        }
        if (!ids_valid(p->replicas, p->n_replicas, err, err_size, "replica list"))
            goto fail;
        if (!reassignment_valid(p, err, err_size))
            goto fail;
        replicas[p->partition] = coord_copy_ids(p->replicas, (int32_t)p->n_replicas);
        nreplicas[p->partition] = (int32_t)p->n_replicas;
        out->adding[p->partition] =
            coord_copy_ids(p->adding_replicas, (int32_t)p->n_adding_replicas);
        out->nadding[p->partition] = (int32_t)p->n_adding_replicas;
        out->removing[p->partition] =
            coord_copy_ids(p->removing_replicas, (int32_t)p->n_removing_replicas);
        out->nremoving[p->partition] = (int32_t)p->n_removing_replicas;
        out->reassign_epoch[p->partition] = p->reassign_leader_epoch;
    }
    memcpy(out->topic_id, m->topic_id.data, 16);
    rc = 0;
    goto out;
fail:
    zk_assignment_clear(out);
out:
    protobuf_c_message_free_unpacked(&m->base, NULL);
    return rc;
}

void zk_assignment_clear(zk_assignment_t *a)
{
    for (int32_t i = 0; i < a->npartitions; i++) {
        if (a->replicas)
            free(a->replicas[i]);
        if (a->adding)
            free(a->adding[i]);
        if (a->removing)
            free(a->removing[i]);
    }
    free(a->replicas);
    free(a->nreplicas);
    free(a->adding);
    free(a->nadding);
    free(a->removing);
    free(a->nremoving);
    free(a->reassign_epoch);
    memset(a, 0, sizeof(*a));
}

/* ---- /admin/reassign_partitions ---- */

uint8_t *znode_encode_reassign_request(const zk_reassign_target_t *targets, size_t n, size_t *len)
{
    assert(n <= COORD_MAX_REASSIGN_ENTRIES);
    Vltava__ReassignPartitionsRequest m = VLTAVA__REASSIGN_PARTITIONS_REQUEST__INIT;
    Vltava__ReassignmentTarget *entries = xcalloc(n + 1, sizeof(*entries));
    Vltava__ReassignmentTarget **ptrs = xcalloc(n + 1, sizeof(*ptrs));
    for (size_t i = 0; i < n; i++) {
        assert(targets[i].topic && targets[i].nreplicas >= 0);
        vltava__reassignment_target__init(&entries[i]);
        entries[i].topic = targets[i].topic;
        entries[i].partition = targets[i].partition;
        entries[i].n_replicas = (size_t)targets[i].nreplicas;
        entries[i].replicas = targets[i].replicas;
        ptrs[i] = &entries[i];
    }
    m.n_partitions = n;
    m.partitions = ptrs;
    uint8_t *buf = coord_pack_message(&m.base, len);
    free(ptrs);
    free(entries);
    return buf;
}

int znode_decode_reassign_request(const uint8_t *buf, size_t len, zk_reassign_target_t **out,
                                  size_t *n, char *err, size_t err_size)
{
    *out = NULL;
    *n = 0;
    Vltava__ReassignPartitionsRequest *m = (Vltava__ReassignPartitionsRequest *)unpack_message(
        &vltava__reassign_partitions_request__descriptor, buf, len, err, err_size);
    if (!m)
        return -1;
    int rc = -1;
    if (m->n_partitions > COORD_MAX_REASSIGN_ENTRIES) {
        snprintf(err, err_size, "reassignment request has %zu entries (max %d)", m->n_partitions,
                 COORD_MAX_REASSIGN_ENTRIES);
        goto out;
    }
    for (size_t i = 0; i < m->n_partitions; i++) {
        const Vltava__ReassignmentTarget *t = m->partitions[i];
        if (!t->topic[0] || t->n_replicas > COORD_MAX_REPLICAS) {
            snprintf(err, err_size, "reassignment entry %zu has no topic or over %d replicas", i,
                     COORD_MAX_REPLICAS);
            goto out;
        }
    }
    *out = xcalloc(m->n_partitions + 1, sizeof(**out));
    for (size_t i = 0; i < m->n_partitions; i++) {
        const Vltava__ReassignmentTarget *t = m->partitions[i];
        (*out)[i].topic = xstrdup(t->topic);
        (*out)[i].partition = t->partition;
        (*out)[i].replicas = coord_copy_ids(t->replicas, (int32_t)t->n_replicas);
        (*out)[i].nreplicas = (int32_t)t->n_replicas;
    }
    *n = m->n_partitions;
    rc = 0;
out:
    protobuf_c_message_free_unpacked(&m->base, NULL);
    return rc;
}

void zk_reassign_targets_free(zk_reassign_target_t *targets, size_t n)
{
    assert(n <= COORD_MAX_REASSIGN_ENTRIES);
    for (size_t i = 0; i < n; i++) {
        free(targets[i].topic);
        free(targets[i].replicas);
    }
    free(targets);
}

/* ---- partition state ---- */

uint8_t *znode_encode_partition_state(const zk_partition_state_t *s, size_t *len)
{
    assert(s->leader >= -1 && s->leader_epoch >= 0);
    Vltava__PartitionState m = VLTAVA__PARTITION_STATE__INIT;
    m.leader = s->leader;
    m.leader_epoch = s->leader_epoch;
    m.controller_epoch = s->controller_epoch;
    m.n_isr = (size_t)s->nisr;
    m.isr = s->isr;
    return coord_pack_message(&m.base, len);
}

int znode_decode_partition_state(const uint8_t *buf, size_t len, zk_partition_state_t *out,
                                 char *err, size_t err_size)
{
    memset(out, 0, sizeof(*out));
    Vltava__PartitionState *m = (Vltava__PartitionState *)unpack_message(
        &vltava__partition_state__descriptor, buf, len, err, err_size);
    if (!m)
        return -1;
    int rc = -1;
    if (m->leader < -1 || m->leader_epoch < 0 || m->controller_epoch < 0) {
        snprintf(err, err_size, "partition state has leader %d, leader epoch %d", m->leader,
                 m->leader_epoch);
        goto out;
    }
    if (!ids_valid(m->isr, m->n_isr, err, err_size, "isr"))
        goto out;
    out->leader = m->leader;
    out->leader_epoch = m->leader_epoch;
    out->controller_epoch = m->controller_epoch;
    out->isr = coord_copy_ids(m->isr, (int32_t)m->n_isr);
    out->nisr = (int32_t)m->n_isr;
    rc = 0;
out:
    protobuf_c_message_free_unpacked(&m->base, NULL);
    return rc;
}

void zk_partition_state_clear(zk_partition_state_t *s)
{
    free(s->isr);
    memset(s, 0, sizeof(*s));
}

/* ---- controller, epoch, cluster id ---- */

uint8_t *znode_encode_controller(int32_t broker_id, int64_t timestamp_ms, size_t *len)
{
    assert(broker_id >= 0);
    Vltava__ControllerRegistration m = VLTAVA__CONTROLLER_REGISTRATION__INIT;
    m.broker_id = broker_id;
    m.timestamp_ms = timestamp_ms;
    return coord_pack_message(&m.base, len);
}

int znode_decode_controller(const uint8_t *buf, size_t len, int32_t *broker_id, char *err,
                            size_t err_size)
{
    Vltava__ControllerRegistration *m = (Vltava__ControllerRegistration *)unpack_message(
        &vltava__controller_registration__descriptor, buf, len, err, err_size);
    if (!m)
        return -1;
    int rc = 0;
    if (m->broker_id < 0) {
        snprintf(err, err_size, "controller registration names broker %d", m->broker_id);
        rc = -1;
    }
    *broker_id = m->broker_id;
    protobuf_c_message_free_unpacked(&m->base, NULL);
    return rc;
}

uint8_t *znode_encode_controller_epoch(int32_t epoch, size_t *len)
{
    assert(epoch >= 0);
    Vltava__ControllerEpoch m = VLTAVA__CONTROLLER_EPOCH__INIT;
    m.epoch = epoch;
    return coord_pack_message(&m.base, len);
}

int znode_decode_controller_epoch(const uint8_t *buf, size_t len, int32_t *epoch, char *err,
                                  size_t err_size)
{
    Vltava__ControllerEpoch *m = (Vltava__ControllerEpoch *)unpack_message(
        &vltava__controller_epoch__descriptor, buf, len, err, err_size);
    if (!m)
        return -1;
    int rc = 0;
    if (m->epoch < 0) {
        snprintf(err, err_size, "controller epoch %d is negative", m->epoch);
        rc = -1;
    }
    *epoch = m->epoch;
    protobuf_c_message_free_unpacked(&m->base, NULL);
    return rc;
}

uint8_t *znode_encode_producer_id_block(int32_t broker_id, int64_t start, int64_t end, size_t *len)
{
    assert(start >= 0 && end >= start);
    Vltava__ProducerIdBlock m = VLTAVA__PRODUCER_ID_BLOCK__INIT;
    m.broker_id = broker_id;
    m.block_start = start;
    m.block_end = end;
    return coord_pack_message(&m.base, len);
}

int znode_decode_producer_id_block(const uint8_t *buf, size_t len, int64_t *start, int64_t *end,
                                   char *err, size_t err_size)
{
    Vltava__ProducerIdBlock *m = (Vltava__ProducerIdBlock *)unpack_message(
        &vltava__producer_id_block__descriptor, buf, len, err, err_size);
    if (!m)
        return -1;
    int rc = 0;
    if (m->block_start < 0 || m->block_end < m->block_start) {
        snprintf(err, err_size, "producer id block [%lld, %lld] is not a block",
                 (long long)m->block_start, (long long)m->block_end);
        rc = -1;
    }
    *start = m->block_start;
    *end = m->block_end;
    protobuf_c_message_free_unpacked(&m->base, NULL);
    return rc;
}

uint8_t *znode_encode_cluster_id(const char *id, size_t *len)
{
    assert(id && id[0]);
    Vltava__ClusterId m = VLTAVA__CLUSTER_ID__INIT;
    m.id = (char *)id;
    return coord_pack_message(&m.base, len);
}

int znode_decode_cluster_id(const uint8_t *buf, size_t len, char **id, char *err, size_t err_size)
{
    *id = NULL;
    Vltava__ClusterId *m = (Vltava__ClusterId *)unpack_message(&vltava__cluster_id__descriptor, buf,
                                                               len, err, err_size);
    if (!m)
        return -1;
    int rc = 0;
    if (!m->id[0] || strlen(m->id) > 64) {
        snprintf(err, err_size, "cluster id is empty or longer than 64 characters");
        rc = -1;
    } else {
        *id = xstrdup(m->id);
    }
    protobuf_c_message_free_unpacked(&m->base, NULL);
    return rc;
}

/* ---- topic config, delete request ---- */

uint8_t *znode_encode_topic_config(const char *const *keys, const char *const *values, size_t n,
                                   size_t *len)
{
    assert(n <= COORD_MAX_CONFIGS);
    Vltava__TopicConfig m = VLTAVA__TOPIC_CONFIG__INIT;
    Vltava__ConfigEntry *entries = xcalloc(n + 1, sizeof(*entries));
    Vltava__ConfigEntry **ptrs = xcalloc(n + 1, sizeof(*ptrs));
    for (size_t i = 0; i < n; i++) {
        vltava__config_entry__init(&entries[i]);
        entries[i].key = (char *)keys[i];
        entries[i].value = (char *)values[i];
        ptrs[i] = &entries[i];
    }
    m.n_entries = n;
    m.entries = ptrs;
    uint8_t *buf = coord_pack_message(&m.base, len);
    free(ptrs);
    free(entries);
    return buf;
}

int znode_decode_topic_config(const uint8_t *buf, size_t len, char ***keys, char ***values,
                              size_t *n, char *err, size_t err_size)
{
    *keys = *values = NULL;
    *n = 0;
    Vltava__TopicConfig *m = (Vltava__TopicConfig *)unpack_message(
        &vltava__topic_config__descriptor, buf, len, err, err_size);
    if (!m)
        return -1;
    int rc = -1;
    if (m->n_entries > COORD_MAX_CONFIGS) {
        snprintf(err, err_size, "topic config has %zu entries (max %d)", m->n_entries,
                 COORD_MAX_CONFIGS);
        goto out;
    }
    for (size_t i = 0; i < m->n_entries; i++) {
        if (!m->entries[i]->key[0]) {
            snprintf(err, err_size, "topic config has an empty key");
            goto out;
        }
    }
    *keys = xcalloc(m->n_entries + 1, sizeof(char *));
    *values = xcalloc(m->n_entries + 1, sizeof(char *));
    for (size_t i = 0; i < m->n_entries; i++) {
        (*keys)[i] = xstrdup(m->entries[i]->key);
        (*values)[i] = xstrdup(m->entries[i]->value);
    }
    *n = m->n_entries;
    rc = 0;
out:
    protobuf_c_message_free_unpacked(&m->base, NULL);
    return rc;
}

uint8_t *znode_encode_delete_request(const char *topic, int32_t requested_by, size_t *len)
{
    assert(topic && topic[0]);
    Vltava__DeleteTopicRequest m = VLTAVA__DELETE_TOPIC_REQUEST__INIT;
    m.topic = (char *)topic;
    m.requested_by = requested_by;
    m.requested_at_ms = wall_clock_ms();
    return coord_pack_message(&m.base, len);
}

/* ---- random ids ---- */

static void random_bytes(uint8_t *out, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = getrandom(out + got, n - got, 0);
        if (r > 0)
            got += (size_t)r;
    }
    assert(got == n);
}

void coord_random_topic_id(uint8_t out[16])
{
    random_bytes(out, 16);
    out[6] = (uint8_t)((out[6] & 0x0f) | 0x40); /* version 4 */
    out[8] = (uint8_t)((out[8] & 0x3f) | 0x80); /* IETF variant */
}

void coord_random_cluster_id(char out[23])
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint8_t raw[16];
    coord_random_topic_id(raw);
    /* 128 bits -> 22 six-bit digits; the last digit carries 2 bits. */
    uint32_t acc = 0;
    int bits = 0, o = 0;
    for (int i = 0; i < 16; i++) {
        acc = (acc << 8) | raw[i];
        bits += 8;
        while (bits >= 6) {
            out[o++] = alphabet[(acc >> (bits - 6)) & 63];
            bits -= 6;
        }
    }
    if (bits > 0)
        out[o++] = alphabet[(acc << (6 - bits)) & 63];
    assert(o == 22);
    out[o] = '\0';
}
