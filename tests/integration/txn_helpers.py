"""Helpers of the transaction integration tests (test_txn_*.py): the
transaction APIs hand-encoded on raw sockets (classic and flexible
versions), finding a transactional id's coordinator, transactional record
batches, and the control batches (markers) a partition holds."""

import struct
import time

import vltava_test as vt
from vltava_test import Dec, Enc, KafkaConnection

PRODUCE = 0
FETCH = 1
FIND_COORDINATOR = 10
INIT_PRODUCER_ID = 22
ADD_PARTITIONS_TO_TXN = 24
ADD_OFFSETS_TO_TXN = 25
END_TXN = 26
DESCRIBE_TRANSACTIONS = 65
LIST_TRANSACTIONS = 66

FIRST_FLEXIBLE = {FIND_COORDINATOR: 3, INIT_PRODUCER_ID: 2, ADD_PARTITIONS_TO_TXN: 3,
                  ADD_OFFSETS_TO_TXN: 3, END_TXN: 3, DESCRIBE_TRANSACTIONS: 0,
                  LIST_TRANSACTIONS: 0}

NONE = 0
UNKNOWN_TOPIC_OR_PARTITION = 3
COORDINATOR_LOAD_IN_PROGRESS = 14
TOPIC_AUTHORIZATION_FAILED = 29
COORDINATOR_NOT_AVAILABLE = 15
NOT_COORDINATOR = 16
INVALID_REQUEST = 42
INVALID_PRODUCER_EPOCH = 47
INVALID_TXN_STATE = 48
INVALID_PRODUCER_ID_MAPPING = 49
INVALID_TRANSACTION_TIMEOUT = 50
CONCURRENT_TRANSACTIONS = 51
OPERATION_NOT_ATTEMPTED = 55
PRODUCER_FENCED = 90
TRANSACTIONAL_ID_NOT_FOUND = 105
RETRIABLE = {COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR}

TXN_STATE_TOPIC = "__transaction_state"
OFFSETS_TOPIC = "__consumer_offsets"

# One to three brokers, a small __transaction_state replicated on all of
# them, timeouts checked often (so a test sees a timed-out transaction
# aborted within a second or two).
def txn_broker_config(brokers, **extra):
    cfg = {
        "transaction.state.log.num.partitions": "5",
        "transaction.state.log.replication.factor": str(brokers),
        "transaction.state.log.min.isr": "1",
        "transaction.abort.timed.out.transaction.cleanup.interval.ms": "200",
        "offsets.topic.num.partitions": "5",
        "offsets.topic.replication.factor": str(brokers),
        "group.initial.rebalance.delay.ms": "0",
    }
    cfg.update({k.replace("_", "."): str(v) for k, v in extra.items()})
    return cfg


def java_hash(s):
    """Java's String.hashCode of s (UTF-16 code units), as a signed int."""
    h = 0
    for unit in struct.unpack(">%dH" % (len(s.encode("utf-16-be")) // 2), s.encode("utf-16-be")):
        h = (31 * h + unit) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def partition_for(key, partitions):
    """Kafka's abs(hashCode) % partitions (Utils.abs: MIN_VALUE -> 0)."""
    h = java_hash(key)
    return (0 if h == -(1 << 31) else abs(h)) % partitions


# --------------------------------------------------------------------------
# Encoding: one class for classic and compact (flexible) fields


def call(conn, key, version, encode, decode):
    """Sends one request (encode(enc) writes its body but the final tags)
    and decodes the whole answer (decode(dec) returns it; the final tags
    are read here and nothing may be left)."""
    fl = version >= FIRST_FLEXIBLE[key]
    e = Enc(fl)
    encode(e)
    e.tags()
    d = Dec(conn.request(key, version, e.bytes(), flexible=fl), fl)
    out = decode(d)
    d.end("api %d v%d" % (key, version))
    return out


# --------------------------------------------------------------------------
# The APIs


def find_coordinator(conn, key, version=1, key_type=1):
    """FindCoordinator v1-v4 for one key: (error, node_id, host, port)."""
    def enc(e):
        if version <= 3:
            e.str_(key)
        e.i8(key_type)
        if version >= 4:
            e.array([key], lambda e2, k: e2.str_(k))

    def dec(d):
        d.i32()  # throttle
        if version <= 3:
            err = d.i16()
            d.str_()  # message
            out = (err, d.i32(), d.str_(), d.i32())
            return out
        (entry,) = d.array(lambda d2: _coordinator_entry(d2))
        return entry

    return call(conn, FIND_COORDINATOR, version, enc, dec)


def _coordinator_entry(d):
    d.str_()  # key
    node, host, port, err = d.i32(), d.str_(), d.i32(), d.i16()
    d.str_()  # message
    d.tags()
    return (err, node, host, port)


def init_producer_id(conn, txn_id, timeout_ms=60000, version=1, producer_id=-1, epoch=-1):
    """InitProducerId v0-v4: (error, producer_id, epoch)."""
    def enc(e):
        e.str_(txn_id).i32(timeout_ms)
        if version >= 3:
            e.i64(producer_id).i16(epoch)

    def dec(d):
        d.i32()
        return d.i16(), d.i64(), d.i16()

    return call(conn, INIT_PRODUCER_ID, version, enc, dec)


def add_partitions(conn, txn_id, producer_id, epoch, topics, version=1):
    """AddPartitionsToTxn v0-v3 with topics {topic: [partition...]}:
    {(topic, partition): error}."""
    def enc(e):
        e.str_(txn_id).i64(producer_id).i16(epoch)
        e.array(sorted(topics.items()),
                lambda e2, tp: e2.str_(tp[0]).array(tp[1], lambda e3, p: e3.i32(p)).tags())

    def dec(d):
        d.i32()
        out = {}

        def topic(d2):
            name = d2.str_()

            def part(d3):
                p, err = d3.i32(), d3.i16()
                d3.tags()
                out[(name, p)] = err

            d2.array(part)
            d2.tags()

        d.array(topic)
        return out

    return call(conn, ADD_PARTITIONS_TO_TXN, version, enc, dec)


def add_offsets(conn, txn_id, producer_id, epoch, group, version=1):
    """AddOffsetsToTxn v0-v3: the error."""
    return call(conn, ADD_OFFSETS_TO_TXN, version,
                lambda e: e.str_(txn_id).i64(producer_id).i16(epoch).str_(group),
                lambda d: (d.i32(), d.i16())[1])


def end_txn(conn, txn_id, producer_id, epoch, commit, version=1):
    """EndTxn v0-v3: the error."""
    return call(conn, END_TXN, version,
                lambda e: e.str_(txn_id).i64(producer_id).i16(epoch).bool_(commit),
                lambda d: (d.i32(), d.i16())[1])


def describe(conn, txn_ids):
    """DescribeTransactions v0: [dict(error, id, state, timeout_ms, start_ms,
    producer_id, epoch, partitions: {topic: [partition...]})]."""
    def state(d):
        out = {"error": d.i16(), "id": d.str_(), "state": d.str_(), "timeout_ms": d.i32(),
               "start_ms": d.i64(), "producer_id": d.i64(), "epoch": d.i16(), "partitions": {}}

        def topic(d2):
            name = d2.str_()
            out["partitions"][name] = d2.array(lambda d3: d3.i32())
            d2.tags()

        d.array(topic)
        d.tags()
        return out

    return call(conn, DESCRIBE_TRANSACTIONS, 0,
                lambda e: e.array(txn_ids, lambda e2, t: e2.str_(t)),
                lambda d: (d.i32(), d.array(state))[1])


def list_transactions(conn, states=(), producer_ids=(), duration_ms=None, version=0):
    """ListTransactions v0-v1: (error, unknown_state_filters,
    [(id, producer_id, state)])."""
    def enc(e):
        e.array(list(states), lambda e2, s: e2.str_(s))
        e.array(list(producer_ids), lambda e2, p: e2.i64(p))
        if version >= 1:
            e.i64(-1 if duration_ms is None else duration_ms)

    def dec(d):
        d.i32()
        err = d.i16()
        unknown = d.array(lambda d2: d2.str_())

        def entry(d2):
            out = (d2.str_(), d2.i64(), d2.str_())
            d2.tags()
            return out

        return err, unknown, d.array(entry)

    return call(conn, LIST_TRANSACTIONS, version, enc, dec)


# --------------------------------------------------------------------------
# Coordinators


def coordinator_of(cluster, txn_id, timeout=60):
    """(node_id, port) of txn_id's coordinator, once a live broker's
    FindCoordinator answers without error (the first asks for
    __transaction_state to be created)."""

    def ask():
        for b in cluster._serving_brokers():
            try:
                with KafkaConnection(b.port, timeout=5) as conn:
                    err, node, _host, port = find_coordinator(conn, txn_id)
            except (OSError, ValueError):
                continue
            if err == NONE and node >= 0:
                return node, port
        return None

    return vt.wait_for(ask, timeout=timeout, what="a transaction coordinator for %s" % txn_id)


def retry(fn, timeout=30, what="a coordinator answer", retriable=RETRIABLE):
    """Calls fn() (which returns an error code first, as a tuple or alone)
    until its error is not retriable; returns its last result."""
    deadline = time.monotonic() + timeout
    while True:
        out = fn()
        err = out[0] if isinstance(out, tuple) else out
        if err not in retriable:
            return out
        if time.monotonic() > deadline:
            raise AssertionError("%s: still %d after %ss" % (what, err, timeout))
        time.sleep(0.1)


def describe_one(port, txn_id):
    with KafkaConnection(port, timeout=10) as conn:
        (d,) = describe(conn, [txn_id])
    return d


def wait_state(cluster, txn_id, states, timeout=30):
    """Describes txn_id at its coordinator (found again on every try) until
    its state is one of states; returns the description."""
    last = {}

    def check():
        try:
            _node, port = coordinator_of(cluster, txn_id, timeout=timeout)
            d = describe_one(port, txn_id)
        except (OSError, ValueError, AssertionError):
            return None
        last["d"] = d
        return d if d["error"] == NONE and d["state"] in states else None

    try:
        return vt.wait_for(check, timeout=timeout, what="%s in %s" % (txn_id, states))
    except AssertionError as e:
        raise AssertionError("%s; last description %s" % (e, last.get("d"))) from None


# --------------------------------------------------------------------------
# Record batches


def txn_batch(records, producer_id, epoch, base_sequence, transactional=True):
    """A RecordBatch v2 of records ((key, value) pairs) from a producer:
    vltava_test's batch with ProducerId, ProducerEpoch, BaseSequence and the
    transactional attribute set, and its CRC recomputed."""
    b = bytearray(vt.build_record_batch(records))
    attrs = struct.unpack_from(">h", b, 21)[0] | (0x10 if transactional else 0)
    struct.pack_into(">h", b, 21, attrs)
    struct.pack_into(">qhi", b, 43, producer_id, epoch, base_sequence)
    struct.pack_into(">I", b, 17, vt.crc32c(bytes(b[21:])))
    return bytes(b)


def produce_batch(port, topic, partition, batch, version=3):
    """Produce (acks=-1) of one batch; (error, base_offset)."""
    with KafkaConnection(port, timeout=30) as conn:
        cid = vt.raw_produce(conn, topic, partition, batch, version=version)
        _cid, body = conn.recv(expect_cid=cid)
    # v3 answer: responses [topic, [partition, error, base_offset, log_append_time]], throttle
    return vt.read_produce_response(body)[(topic, partition)]


def control_markers(port, topic, partition, offset=0):
    """The control batches (transaction markers) in topic-partition from
    offset on, as fetched from its leader at port: [(offset, producer_id,
    producer_epoch, commit, coordinator_epoch)]."""
    out = []
    while True:
        f = vt.raw_fetch(port, topic, partition, offset)
        if f["error"] != NONE:
            raise AssertionError("fetch %s-%d: error %d" % (topic, partition, f["error"]))
        data = f["records"]
        batches = vt.parse_record_batches(data)
        if not batches:
            return out
        pos = 0
        for b in batches:
            pid, pepoch = struct.unpack_from(">qh", data, pos + 43)
            pos += 12 + b["length"]
            if b["attributes"] & 0x20:
                for off, _ts, key, value, _h in vt.decode_records(b):
                    _kv, kind = struct.unpack(">hh", key[:4])
                    _vv, coord_epoch = struct.unpack(">hi", value[:6])
                    out.append((off, pid, pepoch, kind == 1, coord_epoch))
            offset = b["last_offset"] + 1


def raw_list_end(port, topic, partition):
    """The log end offset of topic-partition at its leader (ListOffsets
    latest)."""
    err, _ts, offset = vt.raw_list_offsets(port, topic, partition, -1)
    if err != NONE:
        raise AssertionError("ListOffsets %s-%d: error %d" % (topic, partition, err))
    return offset
