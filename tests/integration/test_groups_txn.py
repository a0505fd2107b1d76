"""Transactional offset commits end to end: confluent-kafka 2.x's
consume-transform-produce loop (clients/ck_txn_copy.py) with
send_offsets_to_transaction against a 3-broker cluster (__consumer_offsets and
__transaction_state replicated 3 times).

Waits on the transaction coordinator (helper txncoord: FindCoordinator key
type 1, InitProducerId with a transactional id, AddOffsetsToTxn, EndTxn and
the markers that call group_coordinator_txn_completed): skipped, saying so,
while the broker does not advertise EndTxn.

Checked on the group side: after each committed transaction the group's
committed offsets (OffsetFetch with require_stable, as a read_committed
consumer asks) are exactly the positions the transaction sent; after each
aborted one they are what they were before it; at the end they are the
input partitions' ends. What the output topic holds (read_committed) is the
transaction tests' business (test_txn_*.py)."""

import unittest

import group_helpers as gh
import vltava_test as vt

END_TXN = 26
PARTITIONS = 4
RECORDS = 200


class GroupsTxnTest(gh.GroupTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if END_TXN not in vt.api_versions(cls.cluster.brokers[0].port):
            cls.cluster.close()
            raise unittest.SkipTest("waits on the transaction coordinator (EndTxn not advertised)")

    def committed_of(self, offsets):
        """{(topic, partition): offset}, without the "nothing committed" ones."""
        return {(t, p): o for t, p, o in offsets if o >= 0}

    def test_copy_with_aborts(self):
        c = self.cluster
        src, dst = "gtxn-in", "gtxn-out"
        c.create_topic(src, partitions=PARTITIONS, rf=3)
        c.create_topic(dst, partitions=PARTITIONS, rf=3)
        gh.produce(c.bootstrap, src, "r", 0, RECORDS, PARTITIONS)
        events = vt.run_client("ck_txn_copy.py", [
            "--bootstrap", c.bootstrap, "--group", "gtxn-copy", "--in-topic", src,
            "--out-topic", dst, "--txn-id", "gtxn-copier", "--count", RECORDS, "--batch", 20,
            "--abort-every", 3, "--timeout", 240], timeout=330, logdir=self.logdir, name="copy")
        txns = [e for e in events if e["ev"] == "txn"]
        self.assertTrue(any(t["outcome"] == "abort" for t in txns), txns)
        before = {}
        for t in txns:
            after = self.committed_of(t["committed"])
            for tp, offset in self.committed_of(t["offsets"]).items():
                if t["outcome"] == "commit":
                    self.assertEqual(after.get(tp), offset, t)
                else:
                    self.assertEqual(after.get(tp), before.get(tp), t)
            before = after
        result = events[-1]
        self.assertEqual(result["copied"], RECORDS)
        want = {(src, p): RECORDS // PARTITIONS for p in range(PARTITIONS)}
        self.assertEqual(self.committed_of(result["committed"]), want)


if __name__ == "__main__":
    unittest.main()
