"""Partition verification for transactional writes (KIP-890 part 1,
transaction.partition.verification.enable, on by default as in Kafka 3.6+),
on raw sockets.

A transactional batch that would begin its producer's transaction in a
partition is appended only once the transactional id's coordinator confirms
the partition was added to the ongoing transaction: a partition never added
answers INVALID_TXN_STATE and nothing is appended (ListOffsets' end does not
move); after AddPartitionsToTxn the batch is appended; later batches of the
transaction there are not verified again (shown with the coordinator paused:
they are appended at once while a first batch elsewhere times out into
NOT_ENOUGH_REPLICAS, Kafka's retriable mapping). Both routes: the coordinator
on the partition's leader (answered in memory) and on another broker (the
VerifyPartitionsInTxn RPC). Kafka's other mappings: a stale epoch is
INVALID_PRODUCER_EPOCH (the coordinator's PRODUCER_FENCED), a transactional
batch without a transactional id TRANSACTIONAL_ID_AUTHORIZATION_FAILED. With
verification disabled, the old behaviour: appended unasked.

Three brokers, a topic of 6 partitions with replication factor 1 (each
broker leads two), __transaction_state of 5 partitions on all three.
"""

import time
import unittest

import txn_helpers as th
import vltava_test as vt
from vltava_test import KafkaConnection, Writer

TOPIC = "tv-topic"
PARTITIONS = 6
NOT_ENOUGH_REPLICAS = 19
TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53


def produce_txn(port, txn_id, topic, partition, batch, acks=-1, version=3, timeout=30):
    """Produce (v3+) of one batch naming txn_id as the transactional id;
    (error, base_offset, seconds until the answer)."""
    body = (Writer().string(txn_id).i16(acks).i32(10000)
            .array([topic], lambda w, t: w.string(t).array(
                [partition], lambda w2, p: w2.i32(p).bytes_(batch)))
            .bytes())
    start = time.monotonic()
    with KafkaConnection(port, timeout=timeout) as conn:
        cid = conn.send(th.PRODUCE, version, body)
        _cid, body = conn.recv(expect_cid=cid)
    err, base = vt.read_produce_response(body)[(topic, partition)]
    return err, base, time.monotonic() - start


def batch(values, pid, epoch, seq):
    return th.txn_batch([(None, v) for v in values], pid, epoch, seq)


class VerifyTest(vt.SharedClusterTest):
    @classmethod
    def setUpClass(cls):
        cls.cluster = vt.Cluster(brokers=3, name="txn-verify", broker_config=th.txn_broker_config(3))
        cls.cluster.create_topic(TOPIC, partitions=PARTITIONS, rf=1)
        parts = cls.cluster.metadata()["topics"][TOPIC]["partitions"]
        cls.leaders = {p: parts[p]["leader"] for p in range(PARTITIONS)}

    def led_by(self, broker):
        return sorted(p for p, leader in self.leaders.items() if leader == broker)

    def txn_id_where(self, prefix, want_local, leader):
        """A transactional id whose coordinator is (want_local) or is not
        the given broker: (txn_id, coordinator id, coordinator port)."""
        for i in range(200):
            txn_id = "%s-%d" % (prefix, i)
            node, port = th.coordinator_of(self.cluster, txn_id)
            if (node == leader) == want_local:
                return txn_id, node, port
        self.fail("no transactional id with the coordinator wanted")

    def init(self, coord_port, txn_id):
        with KafkaConnection(coord_port, timeout=30) as c:
            err, pid, epoch = th.retry(lambda: th.init_producer_id(c, txn_id))
        self.assertEqual(err, th.NONE)
        return pid, epoch

    def add(self, coord_port, txn_id, pid, epoch, partitions):
        def once():
            out = th.add_partitions(c, txn_id, pid, epoch, {TOPIC: partitions})
            return max(out.values()), out

        with KafkaConnection(coord_port, timeout=30) as c:
            _err, out = th.retry(once)
        self.assertEqual(out, {(TOPIC, p): th.NONE for p in partitions})

    def end(self, coord_port, txn_id, pid, epoch, commit=True):
        with KafkaConnection(coord_port, timeout=30) as c:
            err = th.retry(lambda: th.end_txn(c, txn_id, pid, epoch, commit))
        self.assertEqual(err, th.NONE)

    def check_route(self, want_local):
        leader = self.cluster.broker(1).id if want_local else 2
        p, q = self.led_by(leader)[:2]
        port = self.cluster.broker(leader).port
        txn_id, node, coord_port = self.txn_id_where("tv-%s" % ("local" if want_local else "remote"),
                                                     want_local, leader)
        self.assertEqual(node == leader, want_local)
        pid, epoch = self.init(coord_port, txn_id)
        self.add(coord_port, txn_id, pid, epoch, [p])

        end_q = th.raw_list_end(port, TOPIC, q)
        err, base, _t = produce_txn(port, txn_id, TOPIC, q, batch([b"stray"], pid, epoch, 0))
        self.assertEqual((err, base), (th.INVALID_TXN_STATE, -1))
        self.assertEqual(th.raw_list_end(port, TOPIC, q), end_q)

        end_p = th.raw_list_end(port, TOPIC, p)
        self.assertEqual(produce_txn(port, txn_id, TOPIC, p, batch([b"a0", b"a1"], pid, epoch, 0))[:2],
                         (th.NONE, end_p))
        self.assertEqual(produce_txn(port, txn_id, TOPIC, p, batch([b"a2"], pid, epoch, 2))[:2],
                         (th.NONE, end_p + 2))

        self.add(coord_port, txn_id, pid, epoch, [q])
        # The coordinator's PRODUCER_FENCED, as Produce answers it.
        err, _base, _t = produce_txn(port, txn_id, TOPIC, q, batch([b"new"], pid, epoch + 1, 0))
        self.assertEqual(err, th.INVALID_PRODUCER_EPOCH)
        self.assertEqual(th.raw_list_end(port, TOPIC, q), end_q)
        self.assertEqual(produce_txn(port, txn_id, TOPIC, q, batch([b"b0"], pid, epoch, 0))[:2],
                         (th.NONE, end_q))
        self.end(coord_port, txn_id, pid, epoch)
        th.wait_state(self.cluster, txn_id, ("CompleteCommit",))
        # A new transaction: the partition must be added again.
        end_q = th.raw_list_end(port, TOPIC, q)
        err, _base, _t = produce_txn(port, txn_id, TOPIC, q, batch([b"late"], pid, epoch, 1))
        self.assertEqual(err, th.INVALID_TXN_STATE)
        self.assertEqual(th.raw_list_end(port, TOPIC, q), end_q)

    def test_coordinator_on_the_leader(self):
        self.check_route(want_local=True)

    def test_coordinator_on_another_broker(self):
        self.check_route(want_local=False)

    def test_without_transactional_id(self):
        p = self.led_by(3)[0]
        port = self.cluster.broker(3).port
        end = th.raw_list_end(port, TOPIC, p)
        err, _base, _t = produce_txn(port, None, TOPIC, p, batch([b"x"], 777000, 0, 0))
        self.assertEqual(err, TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
        self.assertEqual(th.raw_list_end(port, TOPIC, p), end)

    def test_later_batches_are_not_verified(self):
        """With the (remote) coordinator paused, a batch continuing the
        transaction in a partition is appended at once; a first batch in
        another added partition waits for the verification, which times
        out into NOT_ENOUGH_REPLICAS, then succeeds once the coordinator
        runs again."""
        leader = 1
        p, q = self.led_by(leader)[:2]
        port = self.cluster.broker(leader).port
        txn_id, node, coord_port = self.txn_id_where("tv-paused", False, leader)
        pid, epoch = self.init(coord_port, txn_id)
        self.add(coord_port, txn_id, pid, epoch, [p, q])
        end_p = th.raw_list_end(port, TOPIC, p)
        self.assertEqual(produce_txn(port, txn_id, TOPIC, p, batch([b"c0"], pid, epoch, 0))[:2],
                         (th.NONE, end_p))
        end_q = th.raw_list_end(port, TOPIC, q)
        coordinator = self.cluster.broker(node)
        coordinator.pause()
        try:
            err, base, secs = produce_txn(port, txn_id, TOPIC, p, batch([b"c1"], pid, epoch, 1))
            self.assertEqual((err, base), (th.NONE, end_p + 1))
            self.assertLess(secs, 2.0)
            err, base, secs = produce_txn(port, txn_id, TOPIC, q, batch([b"d0"], pid, epoch, 0))
            self.assertEqual((err, base), (NOT_ENOUGH_REPLICAS, -1))
            self.assertGreater(secs, 4.0)
            self.assertEqual(th.raw_list_end(port, TOPIC, q), end_q)
        finally:
            coordinator.resume()
        err, base, _t = th.retry(
            lambda: produce_txn(port, txn_id, TOPIC, q, batch([b"d0"], pid, epoch, 0)),
            retriable={NOT_ENOUGH_REPLICAS}, what="the verification after the resume")
        self.assertEqual((err, base), (th.NONE, end_q))
        self.end(coord_port, txn_id, pid, epoch)


class VerifyDisabledTest(vt.SharedClusterTest):
    @classmethod
    def setUpClass(cls):
        cfg = th.txn_broker_config(1, **{"transaction.partition.verification.enable": "false"})
        cls.cluster = vt.Cluster(brokers=1, name="txn-verify-off", broker_config=cfg)
        cls.cluster.create_topic(TOPIC, partitions=2, rf=1)
        cls.port = cls.cluster.broker(1).port

    def test_not_added_partition_is_appended(self):
        txn_id = "tv-off"
        th.coordinator_of(self.cluster, txn_id)
        with KafkaConnection(self.port, timeout=30) as c:
            err, pid, epoch = th.retry(lambda: th.init_producer_id(c, txn_id))
            self.assertEqual(err, th.NONE)
        end = th.raw_list_end(self.port, TOPIC, 1)
        err, base, _t = produce_txn(self.port, txn_id, TOPIC, 1, batch([b"old"], pid, epoch, 0))
        self.assertEqual((err, base), (th.NONE, end))
        self.assertEqual(th.raw_list_end(self.port, TOPIC, 1), end + 1)


if __name__ == "__main__":
    unittest.main()
