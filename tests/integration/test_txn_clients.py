"""Transactions with a real client: confluent-kafka 2.x (librdkafka) as a
transactional producer (clients/ck_txn.py) against one broker.

- init_transactions, then begin / produce / commit and begin / produce /
  abort: read_uncommitted consumers see both transactions' records,
  read_committed consumers only the committed ones, and each partition ends
  every transaction with its marker.
- Fencing: a second producer with the same transactional.id fences the
  first, whose commit fails fatally; the second commits.
- A transaction that outlives transaction.timeout.ms is aborted by the
  coordinator: the producer's commit fails, nothing of it is read committed.
- send_offsets_to_transaction: offsets committed inside a transaction become
  the group's committed offsets with the commit.

The read_committed checks need the lead's Fetch isolation (api_fetch.c)
and the producer-state's transactional appends; send_offsets needs the
group coordinator's TxnOffsetCommit.
"""

import os
import tempfile
import time
import unittest

import txn_helpers as th
import vltava_test as vt

TOPIC = "tc-topic"


class TxnClientsTest(vt.SharedClusterTest):
    @classmethod
    def setUpClass(cls):
        cls.cluster = vt.Cluster(brokers=1, name="txn-clients", broker_config=th.txn_broker_config(1))
        cls.cluster.create_topic(TOPIC, partitions=2, rf=1)
        cls.port = cls.cluster.broker(1).port
        cls.logdir = tempfile.mkdtemp(prefix="vltava-txn-clients-")

    def producer(self, txn_id, *extra):
        p = vt.ClientProcess("ck_txn.py", ["--bootstrap", self.cluster.bootstrap, "--transactional-id", txn_id]
                             + list(extra), logdir=self.logdir, name="%s-%d" % (txn_id, time.monotonic_ns()))
        self.addCleanup(p.close)
        p.wait_event(lambda e: e["ev"] == "started", 60, "started")
        return p

    def ok(self, p, timeout=90, **command):
        reply = p.request(timeout=timeout, **command)
        self.assertNotIn("error", reply, "%s: %s" % (command, reply))
        return reply

    def consume(self, isolation, topic, partition, until_offset, timeout=60):
        """Values of topic-partition from offset 0 to until_offset
        (exclusive) as a confluent-kafka consumer with isolation.level reads
        them (Debian's 1.7 in the harness's python)."""
        from confluent_kafka import Consumer, TopicPartition

        c = Consumer({"bootstrap.servers": self.cluster.bootstrap, "group.id": "tc-reader-%d" % time.monotonic_ns(),
                      "enable.auto.commit": False, "isolation.level": isolation,
                      "enable.partition.eof": True})
        try:
            c.assign([TopicPartition(topic, partition, 0)])
            values = []
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                m = c.poll(0.2)
                if m is None:
                    continue
                if m.error():
                    if m.error().code() == -191:  # _PARTITION_EOF
                        pos = c.position([TopicPartition(topic, partition)])[0].offset
                        if pos >= until_offset:
                            return values
                        continue
                    raise AssertionError("consume: %s" % m.error())
                values.append((m.value() or b"").decode())
            raise AssertionError("consume %s-%d (%s): not at offset %d after %ss; got %s"
                                 % (topic, partition, isolation, until_offset, timeout, values))
        finally:
            c.close()

    def test_commit_and_abort(self):
        p = self.producer("tc-basic")
        self.ok(p, op="init")
        self.ok(p, op="begin")
        self.ok(p, op="produce", topic=TOPIC, partition=0, values=["c%d" % i for i in range(10)])
        self.ok(p, op="commit")
        self.ok(p, op="begin")
        self.ok(p, op="produce", topic=TOPIC, partition=0, values=["a%d" % i for i in range(10)])
        self.ok(p, op="abort")
        self.ok(p, op="begin")
        self.ok(p, op="produce", topic=TOPIC, partition=0, values=["d%d" % i for i in range(3)])
        self.ok(p, op="commit")
        d = th.wait_state(self.cluster, "tc-basic", ("CompleteCommit",))
        self.assertEqual(d["partitions"], {})
        markers = th.control_markers(self.port, TOPIC, 0)
        self.assertEqual([m[3] for m in markers], [True, False, True])
        end = th.raw_list_end(self.port, TOPIC, 0)
        everything = self.consume("read_uncommitted", TOPIC, 0, end)
        self.assertEqual([v for v in everything if v[0] in "cad"],
                         ["c%d" % i for i in range(10)] + ["a%d" % i for i in range(10)]
                         + ["d%d" % i for i in range(3)])
        committed = self.consume("read_committed", TOPIC, 0, end)
        self.assertEqual([v for v in committed if v[0] in "cad"],
                         ["c%d" % i for i in range(10)] + ["d%d" % i for i in range(3)])

    def test_second_producer_fences_the_first(self):
        p1 = self.producer("tc-fence")
        self.ok(p1, op="init")
        self.ok(p1, op="begin")
        self.ok(p1, op="produce", topic=TOPIC, partition=1, values=["old1", "old2"])
        p2 = self.producer("tc-fence")
        self.ok(p2, op="init")  # aborts p1's transaction, then gets the next epoch
        reply = p1.request(timeout=90, op="commit")
        self.assertIn(reply.get("error"), ("_FENCED", "PRODUCER_FENCED", "INVALID_PRODUCER_EPOCH"), reply)
        self.assertTrue(reply["fatal"], reply)
        self.ok(p2, op="begin")
        self.ok(p2, op="produce", topic=TOPIC, partition=1, values=["new1"])
        self.ok(p2, op="commit")
        d = th.wait_state(self.cluster, "tc-fence", ("CompleteCommit",))
        self.assertGreaterEqual(d["epoch"], 2)
        end = th.raw_list_end(self.port, TOPIC, 1)
        committed = self.consume("read_committed", TOPIC, 1, end)
        self.assertIn("new1", committed)
        self.assertNotIn("old1", committed)

    def test_transaction_outliving_its_timeout_is_aborted(self):
        p = self.producer("tc-timeout", "--transaction-timeout-ms", "2000")
        self.ok(p, op="init")
        self.ok(p, op="begin")
        self.ok(p, op="produce", topic=TOPIC, partition=0, values=["late1", "late2"])
        d = th.wait_state(self.cluster, "tc-timeout", ("CompleteAbort",), timeout=30)
        reply = p.request(timeout=90, op="commit")
        self.assertIn("error", reply)
        end = th.raw_list_end(self.port, TOPIC, 0)
        self.assertNotIn("late1", self.consume("read_committed", TOPIC, 0, end))
        self.assertEqual(th.describe_one(self.port, "tc-timeout")["epoch"], d["epoch"])

    def test_send_offsets_to_transaction(self):
        p = self.producer("tc-offsets")
        self.ok(p, op="init")
        self.ok(p, op="begin")
        self.ok(p, op="produce", topic=TOPIC, partition=1, values=["x"])
        self.ok(p, op="send_offsets", group="tc-group", offsets=[[TOPIC, 0, 7], [TOPIC, 1, 3]])
        d = th.describe_one(self.port, "tc-offsets")
        self.assertIn(th.OFFSETS_TOPIC, d["partitions"])
        self.ok(p, op="commit")
        th.wait_state(self.cluster, "tc-offsets", ("CompleteCommit",))
        from confluent_kafka import Consumer, TopicPartition

        c = Consumer({"bootstrap.servers": self.cluster.bootstrap, "group.id": "tc-group",
                      "enable.auto.commit": False})
        try:
            got = vt.wait_for(lambda: (lambda r: r if [x.offset for x in r] == [7, 3] else None)(
                c.committed([TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)], timeout=10)),
                timeout=30, what="the transaction's offsets committed")
            self.assertEqual([x.offset for x in got], [7, 3])
        finally:
            c.close()


if __name__ == "__main__":
    unittest.main()
