"""`vltava txn list` and `vltava txn describe ID` against a real broker:
transactions made on raw sockets (InitProducerId, AddPartitionsToTxn,
EndTxn) are listed and described, as text and as JSON, and checked against
DescribeTransactions' own answer; an unknown id exits 8, a bad one 2.

Needs the transaction coordinator (FindCoordinator key type 1,
InitProducerId, AddPartitionsToTxn, EndTxn, DescribeTransactions,
ListTransactions).
"""

import unittest

import txn_helpers as th
import vltava_test
from test_cli import EXIT_OK, EXIT_USAGE, CliTestCase, vltava
from vltava_test import KafkaConnection

EXIT_UNKNOWN_TXN = 8
TOPIC = "tcli-topic"


class CliTxnTest(vltava_test.SharedClusterTest, CliTestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = vltava_test.Cluster(brokers=1, name="cli-txn", broker_config=th.txn_broker_config(1))
        cls.cluster.create_topic(TOPIC, partitions=3, rf=1)
        cls.port = cls.cluster.broker(1).port

    def run_cli(self, *args, **kw):
        kw.setdefault("brokers", self.cluster.bootstrap)
        return vltava(*args, **kw)

    def ok_json(self, *args):
        return self.json_of(self.run_cli(*(list(args) + ["--format", "json"])))

    def begin(self, txn_id, partitions):
        th.coordinator_of(self.cluster, txn_id)
        with KafkaConnection(self.port, timeout=30) as c:
            err, pid, epoch = th.retry(lambda: th.init_producer_id(c, txn_id, 45000))
            self.assertEqual(err, th.NONE)
            if partitions:
                got = th.add_partitions(c, txn_id, pid, epoch, {TOPIC: partitions}, 3)
                self.assertEqual(set(got.values()), {th.NONE})
        return pid, epoch

    def test_list(self):
        pid_a, _ = self.begin("tcli-a", [2, 0])
        pid_b, _ = self.begin("tcli-b", [])
        doc = self.ok_json("txn", "list")
        mine = [e for e in doc if e["transactional_id"] in ("tcli-a", "tcli-b")]
        self.assertEqual(mine, [
            {"transactional_id": "tcli-a", "producer_id": pid_a, "state": "Ongoing", "coordinator": 1},
            {"transactional_id": "tcli-b", "producer_id": pid_b, "state": "Empty", "coordinator": 1},
        ])
        text = self.run_cli("txn", "list")
        self.assertExit(text, EXIT_OK)
        lines = text.stdout.decode().splitlines()
        self.assertEqual(lines[0].split(), ["TRANSACTIONAL", "ID", "PRODUCER", "ID", "STATE", "COORDINATOR"])
        self.assertIn(["tcli-a", str(pid_a), "Ongoing", "1"], [ln.split() for ln in lines[1:]])

    def test_describe(self):
        pid, epoch = self.begin("tcli-d", [1, 0])
        doc = self.ok_json("txn", "describe", "tcli-d")
        raw = th.describe_one(self.port, "tcli-d")
        self.assertEqual(doc["transactional_id"], "tcli-d")
        self.assertEqual(doc["coordinator"]["id"], 1)
        self.assertEqual(doc["coordinator"]["port"], self.port)
        self.assertEqual((doc["state"], doc["producer_id"], doc["producer_epoch"], doc["timeout_ms"]),
                         ("Ongoing", pid, epoch, 45000))
        self.assertEqual(doc["start_time_ms"], raw["start_ms"])
        self.assertEqual(doc["partitions"], [{"topic": TOPIC, "partition": 0}, {"topic": TOPIC, "partition": 1}])
        text = self.run_cli("txn", "describe", "tcli-d")
        self.assertExit(text, EXIT_OK)
        out = text.stdout.decode()
        self.assertIn("STATE             Ongoing", out)
        self.assertIn("PRODUCER ID       %d" % pid, out)
        self.assertIn("PARTITIONS        2", out)
        with KafkaConnection(self.port, timeout=30) as c:
            self.assertEqual(th.end_txn(c, "tcli-d", pid, epoch, True, 3), th.NONE)
        th.wait_state(self.cluster, "tcli-d", ("CompleteCommit",))
        doc = self.ok_json("txn", "describe", "tcli-d")
        self.assertEqual((doc["state"], doc["partitions"]), ("CompleteCommit", []))

    def test_unknown_and_bad_ids(self):
        th.coordinator_of(self.cluster, "tcli-none")
        proc = self.run_cli("txn", "describe", "tcli-none")
        self.assertExit(proc, EXIT_UNKNOWN_TXN)
        self.assertIn(b"unknown transactional id", proc.stderr)
        self.assertExit(self.run_cli("txn", "describe", ""), EXIT_USAGE)
        self.assertExit(self.run_cli("txn", "describe"), EXIT_USAGE)
        self.assertExit(self.run_cli("txn", "list", "extra"), EXIT_USAGE)
        self.assertExit(self.run_cli("txn", "bogus"), EXIT_USAGE)
        self.assertExit(self.run_cli("txn", "--help"), EXIT_OK)


if __name__ == "__main__":
    unittest.main()
