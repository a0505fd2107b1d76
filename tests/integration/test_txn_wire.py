"""The transaction coordinator's APIs on raw sockets, hand-encoded at every
version served (classic and flexible) and decoded field by field, every byte
accounted for.

The protocol flow: FindCoordinator key type 1 (v1-v4) -> InitProducerId
(v0-v4) -> AddPartitionsToTxn (v0-v3) / AddOffsetsToTxn (v0-v3) -> EndTxn
(v0-v3), with DescribeTransactions and ListTransactions (v0-v1) watching,
and the markers the commit or abort leaves in each partition. Fencing: a
second InitProducerId aborts the ongoing transaction (CONCURRENT_TRANSACTIONS,
then the next epoch) and the old epoch is refused; KIP-360's producer id and
epoch; a transaction past its timeout is aborted with the epoch bumped; idle
ids expire. Bad input: unknown transactional ids, wrong producer id or epoch
(INVALID_PRODUCER_EPOCH before v2, PRODUCER_FENCED after), EndTxn with
nothing ongoing, partitions that do not exist, timeouts out of range, empty
ids, and malformed requests (the connection closes, the broker serves on).

One broker; __transaction_state of 5 partitions, replication factor 1.
"""

import time
import unittest

import txn_helpers as th
import vltava_test as vt
from vltava_test import KafkaConnection

TOPIC = "tw-topic"
PARTITIONS = 3


class TxnWireTest(vt.SharedClusterTest):
    @classmethod
    def setUpClass(cls):
        cls.cluster = vt.Cluster(brokers=1, name="txn-wire", broker_config=th.txn_broker_config(1))
        cls.cluster.create_topic(TOPIC, partitions=PARTITIONS, rf=1)
        cls.port = cls.cluster.broker(1).port

    def conn(self):
        return KafkaConnection(self.port, timeout=30)

    def init(self, txn_id, timeout_ms=60000, version=1, **kw):
        """InitProducerId until the coordinator is loaded: (pid, epoch)."""
        th.coordinator_of(self.cluster, txn_id)
        with self.conn() as c:
            err, pid, epoch = th.retry(lambda: th.init_producer_id(c, txn_id, timeout_ms, version, **kw))
        self.assertEqual(err, th.NONE)
        return pid, epoch

    def describe(self, txn_id):
        return th.describe_one(self.port, txn_id)

    def wait_state(self, txn_id, *states):
        return th.wait_state(self.cluster, txn_id, states)

    # -- discovery

    def test_api_versions(self):
        v = vt.api_versions(self.port)
        self.assertEqual(v[th.INIT_PRODUCER_ID], (0, 4))
        self.assertEqual(v[th.ADD_PARTITIONS_TO_TXN], (0, 3))
        self.assertEqual(v[th.ADD_OFFSETS_TO_TXN], (0, 3))
        self.assertEqual(v[th.END_TXN], (0, 3))
        self.assertEqual(v[th.DESCRIBE_TRANSACTIONS], (0, 0))
        self.assertEqual(v[th.LIST_TRANSACTIONS], (0, 1))
        self.assertNotIn(27, v)  # WriteTxnMarkers travels over the inter-broker RPC

    def test_find_coordinator_every_version(self):
        th.coordinator_of(self.cluster, "tw-find")
        b = self.cluster.broker(1)
        with self.conn() as c:
            for version in (1, 2, 3, 4):
                err, node, host, port = th.find_coordinator(c, "tw-find", version=version)
                self.assertEqual((err, node, port), (th.NONE, 1, b.port), "v%d" % version)
                self.assertEqual(host, "127.0.0.1")
            err, _node, _host, _port = th.find_coordinator(c, "tw-find", version=1, key_type=2)
            self.assertEqual(err, th.INVALID_REQUEST)
        md = self.cluster.metadata()
        self.assertEqual(len(md["topics"][th.TXN_STATE_TOPIC]["partitions"]), 5)

    # -- InitProducerId

    def test_init_producer_id_every_version(self):
        for version in range(5):
            txn_id = "tw-init-v%d" % version
            pid, epoch = self.init(txn_id, version=version)
            self.assertGreaterEqual(pid, 0)
            self.assertEqual(epoch, 0)
            with self.conn() as c:
                self.assertEqual(th.init_producer_id(c, txn_id, 60000, version), (th.NONE, pid, 1))
            d = self.describe(txn_id)
            self.assertEqual((d["error"], d["state"], d["producer_id"], d["epoch"]),
                             (th.NONE, "Empty", pid, 1))
            self.assertEqual((d["start_ms"], d["partitions"], d["timeout_ms"]), (-1, {}, 60000))

    def test_init_producer_id_refusals(self):
        th.coordinator_of(self.cluster, "tw-bad")
        with self.conn() as c:
            # transaction.max.timeout.ms is 900000; 0 and negative are refused too
            for timeout in (900001, 0, -5):
                self.assertEqual(th.init_producer_id(c, "tw-bad", timeout),
                                 (th.INVALID_TRANSACTION_TIMEOUT, -1, -1))
            self.assertEqual(th.init_producer_id(c, "", 1000), (th.INVALID_REQUEST, -1, -1))
            # v3+: a producer id without an epoch, or the other way round
            self.assertEqual(th.init_producer_id(c, "tw-bad", 1000, version=3, producer_id=5),
                             (th.INVALID_REQUEST, -1, -1))
            self.assertEqual(th.init_producer_id(c, "tw-bad", 1000, version=4, epoch=2),
                             (th.INVALID_REQUEST, -1, -1))
        # nothing was created
        self.assertEqual(self.describe("tw-bad")["error"], th.TRANSACTIONAL_ID_NOT_FOUND)

    def test_kip360_producer_id_and_epoch(self):
        pid, _ = self.init("tw-kip360", version=4)
        with self.conn() as c:
            # the current epoch: bumped, the old one remembered
            self.assertEqual(th.init_producer_id(c, "tw-kip360", 60000, 4, pid, 0), (th.NONE, pid, 1))
            # a retry of that (its answer lost): the same epoch again
            self.assertEqual(th.init_producer_id(c, "tw-kip360", 60000, 4, pid, 0), (th.NONE, pid, 1))
            # an epoch that is neither, or another producer id: fenced
            self.assertEqual(th.init_producer_id(c, "tw-kip360", 60000, 4, pid, 7),
                             (th.PRODUCER_FENCED, -1, -1))
            self.assertEqual(th.init_producer_id(c, "tw-kip360", 60000, 4, pid + 1000, 1),
                             (th.PRODUCER_FENCED, -1, -1))
            # v3 clients do not know PRODUCER_FENCED
            self.assertEqual(th.init_producer_id(c, "tw-kip360", 60000, 3, pid, 7),
                             (th.INVALID_PRODUCER_EPOCH, -1, -1))
        self.assertEqual(self.describe("tw-kip360")["epoch"], 1)

    # -- bad input

    def test_unknown_transactional_id(self):
        th.coordinator_of(self.cluster, "tw-unknown")
        with self.conn() as c:
            for version in range(4):
                self.assertEqual(th.add_partitions(c, "tw-unknown", 1, 0, {TOPIC: [0]}, version),
                                 {(TOPIC, 0): th.INVALID_PRODUCER_ID_MAPPING})
                self.assertEqual(th.add_offsets(c, "tw-unknown", 1, 0, "g", version),
                                 th.INVALID_PRODUCER_ID_MAPPING)
                self.assertEqual(th.end_txn(c, "tw-unknown", 1, 0, True, version),
                                 th.INVALID_PRODUCER_ID_MAPPING)
            (d,) = th.describe(c, ["tw-unknown"])
        self.assertEqual(d["error"], th.TRANSACTIONAL_ID_NOT_FOUND)
        self.assertEqual((d["state"], d["producer_id"], d["epoch"]), ("", -1, -1))

    def test_wrong_producer_id_and_epoch(self):
        pid, epoch = self.init("tw-wrong")
        with self.conn() as c:
            for version in range(4):
                fenced = th.PRODUCER_FENCED if version >= 2 else th.INVALID_PRODUCER_EPOCH
                self.assertEqual(th.add_partitions(c, "tw-wrong", pid + 1, epoch, {TOPIC: [0]}, version),
                                 {(TOPIC, 0): th.INVALID_PRODUCER_ID_MAPPING})
                self.assertEqual(th.add_partitions(c, "tw-wrong", pid, epoch + 1, {TOPIC: [0]}, version),
                                 {(TOPIC, 0): fenced})
                self.assertEqual(th.add_offsets(c, "tw-wrong", pid, epoch + 1, "g", version), fenced)
                self.assertEqual(th.end_txn(c, "tw-wrong", pid, epoch + 1, False, version), fenced)
                self.assertEqual(th.end_txn(c, "tw-wrong", pid + 1, epoch, False, version),
                                 th.INVALID_PRODUCER_ID_MAPPING)
        d = self.describe("tw-wrong")
        self.assertEqual((d["state"], d["epoch"], d["partitions"]), ("Empty", epoch, {}))

    def test_end_txn_with_nothing_ongoing(self):
        pid, epoch = self.init("tw-empty-end")
        with self.conn() as c:
            for version in range(4):
                for commit in (True, False):
                    self.assertEqual(th.end_txn(c, "tw-empty-end", pid, epoch, commit, version),
                                     th.INVALID_TXN_STATE)
        self.assertEqual(self.describe("tw-empty-end")["state"], "Empty")

    def test_unknown_partition_fails_the_whole_add(self):
        pid, epoch = self.init("tw-nopart")
        with self.conn() as c:
            got = th.add_partitions(c, "tw-nopart", pid, epoch,
                                    {TOPIC: [0, PARTITIONS], "tw-no-such-topic": [0]}, version=3)
        self.assertEqual(got, {(TOPIC, 0): th.OPERATION_NOT_ATTEMPTED,
                               (TOPIC, PARTITIONS): th.UNKNOWN_TOPIC_OR_PARTITION,
                               ("tw-no-such-topic", 0): th.UNKNOWN_TOPIC_OR_PARTITION})
        # internal topics are not the client's to write (AddOffsetsToTxn is)
        with self.conn() as c:
            got = th.add_partitions(c, "tw-nopart", pid, epoch,
                                    {TOPIC: [1], th.OFFSETS_TOPIC: [0], th.TXN_STATE_TOPIC: [0]}, version=1)
        self.assertEqual(got, {(TOPIC, 1): th.OPERATION_NOT_ATTEMPTED,
                               (th.OFFSETS_TOPIC, 0): th.TOPIC_AUTHORIZATION_FAILED,
                               (th.TXN_STATE_TOPIC, 0): th.TOPIC_AUTHORIZATION_FAILED})
        d = self.describe("tw-nopart")
        self.assertEqual((d["state"], d["partitions"]), ("Empty", {}))

    def test_malformed_requests_close_only_their_connection(self):
        th.coordinator_of(self.cluster, "tw-malformed")
        for key, version, body in ((th.ADD_PARTITIONS_TO_TXN, 1, vt.Writer().string("x").i64(1).bytes()),
                                   (th.END_TXN, 0, vt.Writer().string("x").i64(1).i16(0).bytes()),
                                   (th.ADD_OFFSETS_TO_TXN, 2, vt.Writer().string("x").bytes()),
                                   (th.ADD_PARTITIONS_TO_TXN, 0,
                                    vt.Writer().string("x").i64(1).i16(0).i32(1 << 30).bytes())):
            with self.conn() as c:
                c.send(key, version, body)
                self.assertIsNone(c.recv_frame(), "api %d v%d answered a malformed body" % (key, version))
        # the broker still serves
        pid, epoch = self.init("tw-malformed")
        self.assertEqual(epoch, 0)
        self.assertGreaterEqual(pid, 0)

    # -- transactions end to end

    def run_transaction(self, txn_id, commit, version):
        pid, epoch = self.init(txn_id, version=min(version + 1, 4))
        with self.conn() as c:
            got = th.add_partitions(c, txn_id, pid, epoch, {TOPIC: [0, 2]}, version)
            self.assertEqual(got, {(TOPIC, 0): th.NONE, (TOPIC, 2): th.NONE})
            # adding what is there already is answered at once
            self.assertEqual(th.add_partitions(c, txn_id, pid, epoch, {TOPIC: [2]}, version),
                             {(TOPIC, 2): th.NONE})
            d = self.describe(txn_id)
            self.assertEqual((d["state"], d["partitions"]), ("Ongoing", {TOPIC: [0, 2]}))
            self.assertGreater(d["start_ms"], 0)
            ends = {p: th.raw_list_end(self.port, TOPIC, p) for p in (0, 1, 2)}
            self.assertEqual(th.end_txn(c, txn_id, pid, epoch, commit, version), th.NONE)
        done = "CompleteCommit" if commit else "CompleteAbort"
        d = self.wait_state(txn_id, done)
        self.assertEqual((d["producer_id"], d["epoch"], d["partitions"]), (pid, epoch, {}))
        # one marker in each partition of the transaction, none in the other
        for p in (0, 2):
            markers = th.control_markers(self.port, TOPIC, p, ends[p])
            self.assertEqual([(m[1], m[2], m[3]) for m in markers], [(pid, epoch, commit)],
                             "partition %d" % p)
        self.assertEqual(th.control_markers(self.port, TOPIC, 1, ends[1]), [])
        with self.conn() as c:
            # a retried end is answered NONE; the other end is the wrong state
            self.assertEqual(th.end_txn(c, txn_id, pid, epoch, commit, version), th.NONE)
            self.assertEqual(th.end_txn(c, txn_id, pid, epoch, not commit, version), th.INVALID_TXN_STATE)
        return pid, epoch

    def test_commit_every_version(self):
        for version in range(4):
            self.run_transaction("tw-commit-v%d" % version, True, version)

    def test_abort_every_version(self):
        for version in range(4):
            self.run_transaction("tw-abort-v%d" % version, False, version)

    def test_transactions_follow_one_another(self):
        pid, epoch = self.run_transaction("tw-seq", True, 3)
        with self.conn() as c:
            self.assertEqual(th.add_partitions(c, "tw-seq", pid, epoch, {TOPIC: [1]}, 3),
                             {(TOPIC, 1): th.NONE})
            d = self.describe("tw-seq")
            self.assertEqual((d["state"], d["partitions"]), ("Ongoing", {TOPIC: [1]}))
            self.assertEqual(th.end_txn(c, "tw-seq", pid, epoch, False, 3), th.NONE)
        self.wait_state("tw-seq", "CompleteAbort")

    def test_add_offsets_adds_the_groups_offsets_partition(self):
        pid, epoch = self.init("tw-offsets")
        with self.conn() as c:
            for version in range(4):
                self.assertEqual(th.add_offsets(c, "tw-offsets", pid, epoch, "tw-group", version), th.NONE)
        d = self.describe("tw-offsets")
        # offsets.topic.num.partitions (5) sizes it before the topic exists
        self.assertEqual((d["state"], d["partitions"]),
                         ("Ongoing", {th.OFFSETS_TOPIC: [th.partition_for("tw-group", 5)]}))
        with self.conn() as c:
            self.assertEqual(th.end_txn(c, "tw-offsets", pid, epoch, False, 3), th.NONE)
        self.wait_state("tw-offsets", "CompleteAbort")

    def test_fencing_aborts_the_ongoing_transaction(self):
        pid, epoch = self.init("tw-fence")
        with self.conn() as c:
            self.assertEqual(th.add_partitions(c, "tw-fence", pid, epoch, {TOPIC: [1]}, 3),
                             {(TOPIC, 1): th.NONE})
            start = th.raw_list_end(self.port, TOPIC, 1)
            # a second producer: the ongoing transaction is aborted first
            self.assertEqual(th.init_producer_id(c, "tw-fence", 60000, 1), (th.CONCURRENT_TRANSACTIONS, -1, -1))
        d = self.wait_state("tw-fence", "CompleteAbort")
        self.assertEqual(d["epoch"], epoch + 1)  # the fence's bump, which no client holds
        self.assertEqual([(m[1], m[2], m[3]) for m in th.control_markers(self.port, TOPIC, 1, start)],
                         [(pid, epoch + 1, False)])
        with self.conn() as c:
            err, pid2, epoch2 = th.retry(lambda: th.init_producer_id(c, "tw-fence", 60000, 1),
                                         retriable={th.CONCURRENT_TRANSACTIONS})
            self.assertEqual((err, pid2, epoch2), (th.NONE, pid, epoch + 2))
            # the old producer is fenced
            self.assertEqual(th.add_partitions(c, "tw-fence", pid, epoch, {TOPIC: [1]}, 3),
                             {(TOPIC, 1): th.PRODUCER_FENCED})
            self.assertEqual(th.end_txn(c, "tw-fence", pid, epoch, True, 1), th.INVALID_PRODUCER_EPOCH)
            # the new one works
            self.assertEqual(th.add_partitions(c, "tw-fence", pid, epoch + 2, {TOPIC: [1]}, 3),
                             {(TOPIC, 1): th.NONE})
            self.assertEqual(th.end_txn(c, "tw-fence", pid, epoch + 2, True, 3), th.NONE)
        self.wait_state("tw-fence", "CompleteCommit")

    def test_transaction_past_its_timeout_is_aborted(self):
        pid, epoch = self.init("tw-timeout", timeout_ms=1000)
        with self.conn() as c:
            self.assertEqual(th.add_partitions(c, "tw-timeout", pid, epoch, {TOPIC: [0]}, 3),
                             {(TOPIC, 0): th.NONE})
        t0 = time.monotonic()
        start = th.raw_list_end(self.port, TOPIC, 0)
        d = self.wait_state("tw-timeout", "CompleteAbort")
        self.assertGreaterEqual(time.monotonic() - t0, 0.5)
        self.assertEqual((d["producer_id"], d["epoch"]), (pid, epoch + 1))
        self.assertIn((pid, epoch + 1, False), [m[1:4] for m in th.control_markers(self.port, TOPIC, 0, start)])
        with self.conn() as c:
            # the producer that let it time out is fenced
            self.assertEqual(th.end_txn(c, "tw-timeout", pid, epoch, True, 3), th.PRODUCER_FENCED)

    def test_describe_and_list(self):
        pid_a, epoch_a = self.init("tw-list-a")
        pid_b, _ = self.init("tw-list-b")
        with self.conn() as c:
            self.assertEqual(th.add_partitions(c, "tw-list-a", pid_a, epoch_a, {TOPIC: [2, 0]}, 3),
                             {(TOPIC, 0): th.NONE, (TOPIC, 2): th.NONE})
            a, b, missing, empty = th.describe(c, ["tw-list-a", "tw-list-b", "tw-list-none", ""])
            self.assertEqual((a["error"], a["id"], a["state"], a["producer_id"], a["epoch"], a["timeout_ms"]),
                             (th.NONE, "tw-list-a", "Ongoing", pid_a, epoch_a, 60000))
            self.assertEqual(a["partitions"], {TOPIC: [0, 2]})
            self.assertEqual((b["state"], b["producer_id"], b["start_ms"]), ("Empty", pid_b, -1))
            self.assertEqual(missing["error"], th.TRANSACTIONAL_ID_NOT_FOUND)
            self.assertEqual(empty["error"], th.INVALID_REQUEST)

            err, unknown, listed = th.list_transactions(c)
            self.assertEqual((err, unknown), (th.NONE, []))
            self.assertIn(("tw-list-a", pid_a, "Ongoing"), listed)
            self.assertIn(("tw-list-b", pid_b, "Empty"), listed)
            err, unknown, listed = th.list_transactions(c, states=["Ongoing", "Bogus", "ongoing"])
            self.assertEqual((err, unknown), (th.NONE, ["Bogus", "ongoing"]))
            self.assertIn(("tw-list-a", pid_a, "Ongoing"), listed)
            self.assertTrue(all(s == "Ongoing" for _i, _p, s in listed))
            self.assertEqual(th.list_transactions(c, producer_ids=[pid_b])[2], [("tw-list-b", pid_b, "Empty")])
            self.assertEqual(th.list_transactions(c, states=["Bogus"])[2], [])
            # v1: only transactions running longer than the duration
            time.sleep(0.05)
            self.assertNotIn("tw-list-a", [i for i, _p, _s in
                                           th.list_transactions(c, duration_ms=3600000, version=1)[2]])
            self.assertIn("tw-list-a", [i for i, _p, _s in
                                        th.list_transactions(c, duration_ms=0, version=1)[2]])
            self.assertEqual(th.end_txn(c, "tw-list-a", pid_a, epoch_a, False, 3), th.NONE)


class TxnExpiryTest(vt.SharedClusterTest):
    """transactional.id.expiration.ms: an idle id is forgotten."""

    @classmethod
    def setUpClass(cls):
        cfg = th.txn_broker_config(1, **{"transactional.id.expiration.ms": 2000,
                                         "transaction.remove.expired.transaction.cleanup.interval.ms": 200})
        cls.cluster = vt.Cluster(brokers=1, name="txn-expiry", broker_config=cfg)
        cls.cluster.create_topic(TOPIC, partitions=1, rf=1)
        cls.port = cls.cluster.broker(1).port

    def test_idle_id_expires_ongoing_does_not(self):
        th.coordinator_of(self.cluster, "te-idle")
        th.coordinator_of(self.cluster, "te-busy")
        with KafkaConnection(self.port, timeout=30) as c:
            _e, pid, epoch = th.retry(lambda: th.init_producer_id(c, "te-idle", 60000))
            _e, pid2, epoch2 = th.retry(lambda: th.init_producer_id(c, "te-busy", 60000))
            self.assertEqual(th.add_partitions(c, "te-busy", pid2, epoch2, {TOPIC: [0]}, 3),
                             {(TOPIC, 0): th.NONE})
        vt.wait_for(lambda: th.describe_one(self.port, "te-idle")["error"] == th.TRANSACTIONAL_ID_NOT_FOUND,
                    timeout=30, what="te-idle to expire")
        # an ongoing transaction is never expired (it times out instead)
        self.assertEqual(th.describe_one(self.port, "te-busy")["state"], "Ongoing")
        with KafkaConnection(self.port, timeout=30) as c:
            self.assertEqual(th.end_txn(c, "te-idle", pid, epoch, True, 3), th.INVALID_PRODUCER_ID_MAPPING)
            # the id starts afresh, with a new producer id
            err, pid3, epoch3 = th.init_producer_id(c, "te-idle", 60000)
            self.assertEqual((err, epoch3), (th.NONE, 0))
            self.assertNotEqual(pid3, pid)
            self.assertEqual(th.end_txn(c, "te-busy", pid2, epoch2, False, 3), th.NONE)


if __name__ == "__main__":
    unittest.main()
