"""Transaction coordinator failover: the coordinator of a transactional id
is killed (kill -9) mid-transaction, and the broker that takes over its
__transaction_state partition replays it and finishes the work.

- An ongoing transaction continues on the new coordinator: same producer id
  and epoch, the client commits there, the markers are written.
- An ongoing transaction whose client is gone is aborted by the new
  coordinator when it outlives its timeout (epoch bumped).
- A confluent-kafka producer whose coordinator dies mid-transaction
  commits at the new one.
- A transaction in PrepareCommit whose markers could not be written (the
  data partition's only replica is paused with SIGSTOP) is completed by the
  new coordinator once that replica resumes: it is still PrepareCommit right
  after the takeover, then CompleteCommit, with a commit marker in the data
  partition.

Three brokers; __transaction_state (5 partitions) replicated on all three,
min ISR 1; a follower leaves the ISR after 2 s behind.
"""

import time
import unittest

import txn_helpers as th
import vltava_test as vt
from vltava_test import KafkaConnection

TOPIC = "tf-topic"
PARTITIONS = 6


class TxnFailoverTest(vt.SharedClusterTest):
    @classmethod
    def setUpClass(cls):
        # The rebalance check every second: tearDown waits for the preferred
        # leaders to return.
        cfg = th.txn_broker_config(3, **{"replica.lag.time.max.ms": 2000,
                                         "leader.imbalance.check.interval.seconds": 1})
        cls.cluster = vt.Cluster(brokers=3, name="txn-failover", broker_config=cfg)
        cls.cluster.create_topic(TOPIC, partitions=PARTITIONS, rf=1)

    def tearDown(self):
        super().tearDown()
        # Every broker back, for the next test.
        for b in self.cluster.brokers:
            if b.paused:
                b.resume()
            if not b.alive():
                b.start()
        self.cluster.wait_ready()
        # A restarted broker gets its preferred leaderships back (automatic
        # leader rebalance) once it has caught up: wait for that, so that
        # the next test's coordinator does not move under it.
        vt.wait_for(self.preferred_leaders, timeout=90, what="__transaction_state's preferred leaders back")

    def preferred_leaders(self):
        try:
            parts = self.metadata()["topics"].get("__transaction_state", {}).get("partitions", {})
        except (AssertionError, KeyError):
            return False
        return all(p["replicas"] and p["leader"] == p["replicas"][0] for p in parts.values())

    def txn_partition(self, txn_id):
        return th.partition_for(txn_id, 5)

    def metadata(self):
        for b in self.cluster._serving_brokers():
            try:
                return vt.raw_metadata(b.port)
            except (OSError, ValueError):
                continue
        raise AssertionError("no broker answered Metadata")

    def leader_of(self, topic, partition):
        return self.metadata()["topics"][topic]["partitions"][partition]["leader"]

    def init(self, txn_id, port, timeout_ms=60000):
        with KafkaConnection(port, timeout=30) as c:
            err, pid, epoch = th.retry(lambda: th.init_producer_id(c, txn_id, timeout_ms, 1))
        self.assertEqual(err, th.NONE)
        return pid, epoch

    def new_coordinator(self, txn_id, old):
        """The coordinator after `old` died: (node, port)."""
        return vt.wait_for(lambda: (lambda n: n if n[0] != old else None)(th.coordinator_of(self.cluster, txn_id)),
                           timeout=60, what="a new coordinator for %s" % txn_id)

    def test_ongoing_transaction_continues_on_the_new_coordinator(self):
        txn_id = "tf-continue"
        node, port = th.coordinator_of(self.cluster, txn_id)
        pid, epoch = self.init(txn_id, port)
        data = [p for p in range(PARTITIONS) if self.leader_of(TOPIC, p) != node][:2]
        with KafkaConnection(port, timeout=30) as c:
            got = th.add_partitions(c, txn_id, pid, epoch, {TOPIC: data}, 3)
        self.assertEqual(set(got.values()), {th.NONE})
        self.cluster.broker(node).kill()
        node2, port2 = self.new_coordinator(txn_id, node)
        d = th.retry(lambda: (lambda x: (x["error"], x))(th.describe_one(port2, txn_id)))[1]
        self.assertEqual((d["state"], d["producer_id"], d["epoch"], d["partitions"]),
                         ("Ongoing", pid, epoch, {TOPIC: sorted(data)}))
        with KafkaConnection(port2, timeout=30) as c:
            self.assertEqual(th.retry(lambda: th.end_txn(c, txn_id, pid, epoch, True, 3)), th.NONE)
        d = th.wait_state(self.cluster, txn_id, ("CompleteCommit",))
        self.assertEqual((d["producer_id"], d["epoch"]), (pid, epoch))
        for p in data:
            leader = self.cluster.broker(self.leader_of(TOPIC, p))
            self.assertIn((pid, epoch, True), [m[1:4] for m in th.control_markers(leader.port, TOPIC, p)])

    def test_ongoing_transaction_times_out_on_the_new_coordinator(self):
        txn_id = "tf-timeout"
        node, port = th.coordinator_of(self.cluster, txn_id)
        pid, epoch = self.init(txn_id, port, timeout_ms=4000)
        p = next(p for p in range(PARTITIONS) if self.leader_of(TOPIC, p) != node)
        with KafkaConnection(port, timeout=30) as c:
            self.assertEqual(th.add_partitions(c, txn_id, pid, epoch, {TOPIC: [p]}, 3), {(TOPIC, p): th.NONE})
        self.cluster.broker(node).kill()
        _node2, port2 = self.new_coordinator(txn_id, node)
        d = th.wait_state(self.cluster, txn_id, ("CompleteAbort",), timeout=60)
        self.assertEqual((d["producer_id"], d["epoch"]), (pid, epoch + 1))
        leader = self.cluster.broker(self.leader_of(TOPIC, p))
        self.assertIn((pid, epoch + 1, False), [m[1:4] for m in th.control_markers(leader.port, TOPIC, p)])
        with KafkaConnection(port2, timeout=30) as c:
            self.assertEqual(th.end_txn(c, txn_id, pid, epoch, True, 3), th.PRODUCER_FENCED)

    def test_prepare_commit_completed_by_the_new_coordinator(self):
        txn_id = "tf-prepared"
        node, port = th.coordinator_of(self.cluster, txn_id)
        pid, epoch = self.init(txn_id, port)
        # The data partition's only replica is on a broker that does not
        # coordinate; the third broker takes over the coordination.
        p = next(p for p in range(PARTITIONS) if self.leader_of(TOPIC, p) != node)
        paused_id = self.leader_of(TOPIC, p)
        paused = self.cluster.broker(paused_id)
        with KafkaConnection(port, timeout=30) as c:
            self.assertEqual(th.add_partitions(c, txn_id, pid, epoch, {TOPIC: [p]}, 3), {(TOPIC, p): th.NONE})
        start = th.raw_list_end(paused.port, TOPIC, p)
        paused.pause()
        tp = self.txn_partition(txn_id)
        vt.wait_for(lambda: paused_id not in self.metadata()["topics"][th.TXN_STATE_TOPIC]["partitions"][tp]["isr"],
                    timeout=30, what="broker %d out of the ISR of %s-%d" % (paused_id, th.TXN_STATE_TOPIC, tp))
        with KafkaConnection(port, timeout=30) as c:
            self.assertEqual(th.end_txn(c, txn_id, pid, epoch, True, 3), th.NONE)
        # The markers cannot be written while the partition's leader sleeps.
        time.sleep(0.5)
        d = th.describe_one(port, txn_id)
        self.assertEqual((d["state"], d["partitions"]), ("PrepareCommit", {TOPIC: [p]}))
        self.cluster.broker(node).kill()
        node2, port2 = self.new_coordinator(txn_id, node)
        self.assertNotIn(node2, (node, paused_id))
        # The new coordinator loaded the prepared transaction: still waiting.
        d = th.retry(lambda: (lambda x: (x["error"], x))(th.describe_one(port2, txn_id)))[1]
        self.assertEqual((d["state"], d["producer_id"], d["epoch"], d["partitions"]),
                         ("PrepareCommit", pid, epoch, {TOPIC: [p]}))
        paused.resume()
        d = th.wait_state(self.cluster, txn_id, ("CompleteCommit",), timeout=90)
        self.assertEqual((d["producer_id"], d["epoch"], d["partitions"]), (pid, epoch, {}))
        self.assertIn((pid, epoch, True), [m[1:4] for m in th.control_markers(paused.port, TOPIC, p, start)])

    def test_client_commits_across_a_coordinator_kill(self):
        """confluent-kafka: the producer's commit after its coordinator died
        goes to the new one and succeeds."""
        import tempfile

        txn_id = "tf-client"
        node, _port = th.coordinator_of(self.cluster, txn_id)
        p = next(p for p in range(PARTITIONS) if self.leader_of(TOPIC, p) != node)
        client = vt.ClientProcess("ck_txn.py", ["--bootstrap", self.cluster.bootstrap, "--transactional-id", txn_id],
                                  logdir=tempfile.mkdtemp(prefix="vltava-txn-failover-"), name=txn_id)
        self.addCleanup(client.close)
        client.wait_event(lambda e: e["ev"] == "started", 60, "started")
        for command in ({"op": "init"}, {"op": "begin"},
                        {"op": "produce", "topic": TOPIC, "partition": p, "values": ["f1", "f2", "f3"]}):
            reply = client.request(timeout=90, **command)
            self.assertNotIn("error", reply, reply)
        leader = self.cluster.broker(self.leader_of(TOPIC, p))
        start = th.raw_list_end(leader.port, TOPIC, p) - 3
        self.cluster.broker(node).kill()
        reply = client.request(timeout=120, op="commit")
        self.assertNotIn("error", reply, reply)
        d = th.wait_state(self.cluster, txn_id, ("CompleteCommit",), timeout=60)
        self.assertIn((d["producer_id"], d["epoch"], True),
                      [m[1:4] for m in th.control_markers(leader.port, TOPIC, p, start)])
        client.stop()


if __name__ == "__main__":
    unittest.main()
