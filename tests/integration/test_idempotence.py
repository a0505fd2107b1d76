"""The idempotent producer (issue 8, part 1): InitProducerId, the leader's
sequence checks, and producer state that survives failover and restarts.

- librdkafka (Debian's confluent_kafka, enable.idempotence=true) producing
  to a replicated topic while the leader is killed -9, and while a leader
  is stopped long enough for requests to time out: every acknowledged
  record is in the log exactly once, at the offset it was acknowledged
  with, in the order it was sent, with no gaps.
- kafka-python 3.x with its default settings (idempotent) produces and
  reads back.
- Raw protocol: a retried batch is answered with its original offsets and
  not appended again, also by a new leader after kill -9 and by a broker
  restarted after kill -9 or a clean stop; sequence gaps, stale epochs and
  sequence-less producer batches get Kafka's error codes and append
  nothing."""

import threading
import time
import unittest

import vltava_test as vt
from test_replication import consume_partition, partition_state
from vltava_test import KafkaConnection, Reader, Writer

NONE = 0
OUT_OF_ORDER_SEQUENCE_NUMBER = 45
INVALID_PRODUCER_EPOCH = 47
INVALID_TXN_STATE = 48
TRANSACTIONAL = 0x10
# NOT_LEADER_OR_FOLLOWER, NOT_ENOUGH_REPLICAS, LEADER_NOT_AVAILABLE
RETRIABLE = (6, 19, 5)
INVALID_RECORD = 87
PARTITIONS = 3


# Verification off: test_open_transaction_holds_the_last_stable_offset
# writes a transactional batch with no transaction coordinator involved
# (test_txn_verify covers verification).
def config(_broker_id):
    return {"replica.lag.time.max.ms": 3000, "min.insync.replicas": 2,
            "default.replication.factor": 3, "unclean.leader.election.enable": "false",
            "transaction.partition.verification.enable": "false"}


def init_producer_id(port, version=4):
    """(error, producer_id, epoch) of InitProducerId without a
    transactional id, at a classic (v1) or flexible (v4) version."""
    w = Writer()
    flexible = version >= 2
    if flexible:
        w.uvarint(0)  # compact nullable string: null
    else:
        w.i16(-1)
    w.i32(60000)
    if version >= 3:
        w.i64(-1).i16(-1)
    if flexible:
        w.tags()
    with KafkaConnection(port) as conn:
        r = Reader(conn.request(22, version, w.bytes(), flexible=flexible))
    r.i32()  # throttle
    return r.i16(), r.i64(), r.i16()


def send_batch(port, topic, partition, pid, epoch, seq, values, acks=-1, attributes=0):
    """(error, base_offset) of a Produce v3 of one idempotent batch."""
    batch = vt.build_record_batch([(None, v) for v in values], producer_id=pid, producer_epoch=epoch,
                                  base_sequence=seq, attributes=attributes)
    with KafkaConnection(port, timeout=30) as conn:
        cid = vt.raw_produce(conn, topic, partition, batch, acks=acks)
        _cid, body = conn.recv(expect_cid=cid)
    return vt.read_produce_response(body)[(topic, partition)]


def log_end(port, topic, partition):
    err, _ts, end = vt.raw_list_offsets(port, topic, partition, -1)
    assert err == 0, err
    return end


class IdempotentProducer:
    """Debian's confluent_kafka with enable.idempotence=true sending
    "<n>" to partition n % PARTITIONS from a thread until stop(); acked maps
    value -> (partition, offset)."""

    def __init__(self, bootstrap, topic, extra=None):
        from confluent_kafka import Producer

        conf = {"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 2,
                "message.timeout.ms": 120000, "topic.metadata.refresh.interval.ms": 1000,
                "retry.backoff.ms": 100}
        conf.update(extra or {})
        self.topic = topic
        self.producer = Producer(conf)
        self.acked = {}
        self.failed = []
        self.sent = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _done(self, err, msg):
        with self._lock:
            if err is not None:
                self.failed.append(str(err))
            elif msg.value() in self.acked:
                self.failed.append("%r acknowledged twice" % msg.value())
            else:
                self.acked[msg.value()] = (msg.partition(), msg.offset())

    def _run(self):
        while not self._stop.is_set():
            try:
                self.producer.produce(self.topic, value=b"%d" % self.sent, partition=self.sent % PARTITIONS,
                                      on_delivery=self._done)
                self.sent += 1
            except BufferError:
                pass
            self.producer.poll(0.002)

    def count(self):
        with self._lock:
            return len(self.acked)

    def wait_acked(self, n, timeout=90):
        vt.wait_for(lambda: self.count() >= n, timeout=timeout, what="%d acknowledgements" % n)

    def stop(self):
        self._stop.set()
        self._thread.join(30)
        left = self.producer.flush(150)
        assert left == 0, "%d records never acknowledged" % left


class IdempotenceTest(vt.SharedClusterTest):
    @classmethod
    def setUpClass(cls):
        cls.cluster = vt.Cluster(brokers=3, name=cls.__name__, broker_config=config)

    def check_exactly_once(self, topic, producer):
        """Every acknowledged record once, at its acknowledged offset; per
        partition the log holds exactly the records sent to it, in order."""
        self.assertEqual(producer.failed, [])
        self.assertEqual(len(producer.acked), producer.sent)
        c = self.cluster
        c.wait_ready()
        for part in range(PARTITIONS):
            records, _hw = consume_partition(c, topic, part)
            values = [int(v) for _o, v in records]
            self.assertEqual(values, list(range(part, producer.sent, PARTITIONS)),
                             "partition %d: duplicates, gaps or reordering" % part)
            for off, v in records:
                self.assertEqual(producer.acked[v], (part, off))

    def disrupt_leader(self, topic, action):
        c = self.cluster
        leader, _isr = partition_state(c, topic, 0)
        action(c.broker(leader))
        return leader

    def test_librdkafka_exactly_once_across_leader_kill(self):
        c = self.cluster
        topic = "idem-kill"
        c.create_topic(topic, partitions=PARTITIONS, rf=3)
        p = IdempotentProducer(c.bootstrap, topic)
        try:
            p.wait_acked(1500)
            old = self.disrupt_leader(topic, lambda b: b.kill())
            vt.wait_for(lambda: partition_state(c, topic, 0)[0] not in (old, -1), timeout=60,
                        what="a new leader for %s-0" % topic)
            p.wait_acked(p.count() + 1500)
            c.broker(old).start()
            c.broker(old).wait_ready()
            p.wait_acked(p.count() + 1000)
        finally:
            p.stop()
        self.check_exactly_once(topic, p)

    def test_librdkafka_exactly_once_across_request_timeouts(self):
        """A stopped leader lets requests time out at the client, which
        retries them; once the leader runs again it sees both the originals
        and the retries, and appends each batch once."""
        c = self.cluster
        topic = "idem-timeouts"
        c.create_topic(topic, partitions=PARTITIONS, rf=3)
        p = IdempotentProducer(c.bootstrap, topic, {"request.timeout.ms": 1000, "socket.timeout.ms": 1000})
        try:
            p.wait_acked(1000)
            for _round in range(2):
                broker = c.broker(self.disrupt_leader(topic, lambda b: b.pause()))
                try:
                    time.sleep(2.5)  # the disruption itself: longer than request.timeout.ms
                finally:
                    broker.resume()
                p.wait_acked(p.count() + 1000)
        finally:
            p.stop()
        self.check_exactly_once(topic, p)

    def test_kafka_python_3_defaults(self):
        c = self.cluster
        topic = "kafka-python-defaults"
        c.create_topic(topic, partitions=PARTITIONS, rf=3)
        events = vt.run_client("kp_default.py", ["--bootstrap", c.bootstrap, "--topic", topic, "--count", 600],
                               timeout=180, logdir=c.tmpdir, name=topic)
        result = events[-1]
        self.assertEqual(result["settings"]["enable_idempotence"], "True", result["settings"])
        self.assertEqual(len(result["acked"]), 600)
        self.assertEqual(sorted(map(tuple, result["read"])), sorted(map(tuple, result["acked"])))

    def test_init_producer_id_gives_distinct_ids(self):
        c = self.cluster
        seen = set()
        for b in c.brokers:
            for version in (0, 1, 2, 3, 4):
                err, pid, epoch = init_producer_id(b.port, version)
                self.assertEqual((err, epoch), (NONE, 0))
                self.assertNotIn(pid, seen)
                seen.add(pid)

    def test_retry_is_a_duplicate_on_a_new_leader_and_bad_sequences_are_refused(self):
        c = self.cluster
        topic = "idem-raw"
        c.create_topic(topic, partitions=1, rf=3)
        err, pid, epoch = init_producer_id(c.brokers[0].port)
        self.assertEqual(err, NONE)
        leader, _ = partition_state(c, topic, 0)
        port = c.broker(leader).port
        self.assertEqual(send_batch(port, topic, 0, pid, epoch, 0, [b"a0", b"a1", b"a2"]), (NONE, 0))
        self.assertEqual(send_batch(port, topic, 0, pid, epoch, 3, [b"b3", b"b4", b"b5"]), (NONE, 3))
        self.assertEqual(send_batch(port, topic, 0, pid, epoch, 0, [b"a0", b"a1", b"a2"]), (NONE, 0))
        self.assertEqual(log_end(port, topic, 0), 6)

        c.broker(leader).kill()
        vt.wait_for(lambda: partition_state(c, topic, 0)[0] not in (leader, -1), timeout=60,
                    what="a new leader for %s-0" % topic)
        new = partition_state(c, topic, 0)[0]
        port = c.broker(new).port
        # The follower rebuilt the producer's state from the replicated batches.
        self.assertEqual(send_batch(port, topic, 0, pid, epoch, 3, [b"b3", b"b4", b"b5"]), (NONE, 3))
        self.assertEqual(send_batch(port, topic, 0, pid, epoch, 0, [b"a0", b"a1", b"a2"]), (NONE, 0))
        self.assertEqual(log_end(port, topic, 0), 6)
        # Bad input: nothing appended.
        self.assertEqual(send_batch(port, topic, 0, pid, epoch, 9, [b"gap"]), (OUT_OF_ORDER_SEQUENCE_NUMBER, -1))
        self.assertEqual(send_batch(port, topic, 0, pid, epoch, -1, [b"noseq"]), (INVALID_RECORD, -1))
        self.assertEqual(send_batch(port, topic, 0, pid, epoch + 1, 0, [b"c0"]), (NONE, 6))
        self.assertEqual(send_batch(port, topic, 0, pid, epoch, 6, [b"stale"]), (INVALID_PRODUCER_EPOCH, -1))
        self.assertEqual(send_batch(port, topic, 0, pid, epoch + 1, 5, [b"old"]), (OUT_OF_ORDER_SEQUENCE_NUMBER, -1))
        self.assertEqual(log_end(port, topic, 0), 7)
        c.broker(leader).start()
        c.broker(leader).wait_ready()
        values = [v for _o, v in consume_partition(c, topic, 0)[0]]
        self.assertEqual(values, [b"a0", b"a1", b"a2", b"b3", b"b4", b"b5", b"c0"])

    def test_open_transaction_holds_the_last_stable_offset(self):
        """A transactional batch without its marker: read_uncommitted reads
        past it, read_committed stops at its first offset (Fetch and
        ListOffsets), and its producer may not write outside it."""
        c = self.cluster
        topic = "lso-open"
        c.create_topic(topic, partitions=1, rf=3)
        leader, _ = partition_state(c, topic, 0)
        port = c.broker(leader).port
        self.assertEqual(send_batch(port, topic, 0, 9001, 0, 0, [b"p0", b"p1", b"p2"]), (NONE, 0))
        self.assertEqual(send_batch(port, topic, 0, 9002, 0, 0, [b"t3", b"t4"], attributes=TRANSACTIONAL),
                         (NONE, 3))
        self.assertEqual(send_batch(port, topic, 0, 9001, 0, 3, [b"p5"]), (NONE, 5))
        self.assertEqual(send_batch(port, topic, 0, 9002, 0, 2, [b"outside"]), (INVALID_TXN_STATE, -1))
        uncommitted = vt.raw_fetch(port, topic, 0, 0)
        self.assertEqual((uncommitted["high_watermark"], uncommitted["last_stable_offset"]), (6, 3))
        self.assertIsNone(uncommitted["aborted"])
        self.assertEqual(vt.parse_record_batches(uncommitted["records"])[-1]["last_offset"], 5)
        committed = vt.raw_fetch(port, topic, 0, 0, isolation_level=1)
        self.assertEqual(committed["last_stable_offset"], 3)
        self.assertEqual(committed["aborted"], [])
        self.assertEqual([b["last_offset"] for b in vt.parse_record_batches(committed["records"])], [2])
        self.assertEqual(vt.raw_list_offsets(port, topic, 0, -1, isolation_level=1)[2], 3)
        self.assertEqual(vt.raw_list_offsets(port, topic, 0, -1, isolation_level=0)[2], 6)

    def test_restart_keeps_producer_state(self):
        """A single-replica partition: after kill -9 (the log is replayed)
        and after a clean stop (the snapshot is loaded) the broker still
        recognises the producer's last batches."""
        c = self.cluster
        topic = "idem-restart"
        c.create_topic(topic, partitions=1, rf=1, config={"min.insync.replicas": 1})
        leader, _ = partition_state(c, topic, 0)
        b = c.broker(leader)
        pid = 424242
        self.assertEqual(send_batch(b.port, topic, 0, pid, 0, 0, [b"x0", b"x1"]), (NONE, 0))
        self.assertEqual(send_batch(b.port, topic, 0, pid, 0, 2, [b"y2"]), (NONE, 2))
        for how in ("kill", "stop"):
            if how == "kill":
                b.kill()
            else:
                self.assertEqual(b.stop(), 0)
            b.start()
            b.wait_ready()
            vt.wait_for(lambda: partition_state(c, topic, 0)[0] == leader, timeout=60,
                        what="broker %d to lead %s-0 again" % (leader, topic))
            # Right after a restart the controller may still move the
            # leadership once more (the old session's expiry arriving after
            # the new registration): retried as a client retries these.
            got = vt.wait_for(lambda: (lambda r: r if r[0] not in RETRIABLE else None)(
                send_batch(b.port, topic, 0, pid, 0, 2, [b"y2"])), timeout=60,
                what="the retried batch answered after the %s" % how)
            self.assertEqual(got, (NONE, 2), how)
            self.assertEqual(log_end(b.port, topic, 0), 3, how)
        # The newest batch is what a snapshot keeps (as Kafka's); the next
        # sequence goes on from it.
        self.assertEqual(send_batch(b.port, topic, 0, pid, 0, 3, [b"z3"]), (NONE, 3))


class ProducerExpiryTest(unittest.TestCase):
    def test_idle_producer_is_forgotten_after_producer_id_expiration_ms(self):
        """Once producer.id.expiration.ms passes without a batch, the
        partition forgets the producer: a retry of its last batch is no
        longer recognised (an unknown producer is accepted at any
        sequence, as Kafka 2.5+), while before the expiry it is."""
        conf = {"producer.id.expiration.ms": 1500, "producer.id.expiration.check.interval.ms": 100}
        with vt.Cluster(brokers=1, broker_config=conf) as c:
            c.create_topic("expiry", partitions=1, rf=1)
            port = c.brokers[0].port
            now_ms = int(time.time() * 1000)
            batch = vt.build_record_batch([(None, b"e0")], base_timestamp=now_ms, producer_id=77,
                                          producer_epoch=0, base_sequence=0)

            def send():
                with KafkaConnection(port, timeout=30) as conn:
                    cid = vt.raw_produce(conn, "expiry", 0, batch)
                    _cid, body = conn.recv(expect_cid=cid)
                return vt.read_produce_response(body)[("expiry", 0)]

            self.assertEqual(send(), (NONE, 0))
            self.assertEqual(send(), (NONE, 0))  # a duplicate while remembered
            vt.wait_for(lambda: send() == (NONE, 1), timeout=30, interval=0.2,
                        what="the producer to expire and its retry to be appended")
            self.assertEqual(log_end(port, "expiry", 0), 2)


if __name__ == "__main__":
    unittest.main()
