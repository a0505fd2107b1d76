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
input partitions' ends. The same across a kill -9 of the broker coordinating
the group, mid-copy. What the output topic holds (read_committed) is the
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

    def check_txns(self, txns):
        """After each committed transaction the group's stable committed
        offsets are the positions it sent; after each aborted one, what they
        were before it."""
        before = {}
        for t in txns:
            after = self.committed_of(t["committed"])
            for tp, offset in self.committed_of(t["offsets"]).items():
                if t["outcome"] == "commit":
                    self.assertEqual(after.get(tp), offset, t)
                else:
                    self.assertEqual(after.get(tp), before.get(tp), t)
            before = after

    def copier(self, group, src, dst, records, batch, name):
        c = self.cluster
        p = vt.ClientProcess("ck_txn_copy.py", [
            "--bootstrap", c.bootstrap, "--group", group, "--in-topic", src, "--out-topic", dst,
            "--txn-id", group + "-copier", "--count", records, "--batch", batch, "--abort-every", 3,
            "--timeout", 240], logdir=self.logdir, name=name)
        self.procs.append(p)
        return p

    def finish(self, p, src, records):
        p.proc.stdin.close()
        code = p.wait_exit(300)
        self.assertEqual(code, 0, p.describe())
        events = p.events()
        self.assertEqual(events[-1]["ev"], "result", p.describe())
        txns = [e for e in events if e["ev"] == "txn"]
        self.assertTrue(any(t["outcome"] == "abort" for t in txns), txns)
        self.check_txns(txns)
        result = events[-1]
        self.assertEqual(result["copied"], records)
        want = {(src, p): records // PARTITIONS for p in range(PARTITIONS)}
        self.assertEqual(self.committed_of(result["committed"]), want)
        return txns

    def test_copy_with_aborts(self):
        c = self.cluster
        src, dst = "gtxn-in", "gtxn-out"
        c.create_topic(src, partitions=PARTITIONS, rf=3)
        c.create_topic(dst, partitions=PARTITIONS, rf=3)
        gh.produce(c.bootstrap, src, "r", 0, RECORDS, PARTITIONS)
        p = self.copier("gtxn-copy", src, dst, RECORDS, 20, "copy")
        self.finish(p, src, RECORDS)

    def test_group_coordinator_killed(self):
        """kill -9 of the broker coordinating the group (the leader of its
        __consumer_offsets partition) mid-copy: the new leader loads the
        pending transactional offsets, the markers reach it, and the copy
        ends with exactly the input's ends committed."""
        c = self.cluster
        group, src, dst = "gtxn-failover", "gtxn-fo-in", "gtxn-fo-out"
        records = 2 * RECORDS
        c.create_topic(src, partitions=PARTITIONS, rf=3)
        c.create_topic(dst, partitions=PARTITIONS, rf=3)
        gh.produce(c.bootstrap, src, "f", 0, records, PARTITIONS)
        p = self.copier(group, src, dst, records, 10, "failover")
        p.wait_event(lambda e: e["ev"] == "txn" and e["n"] >= 6, 120, what="six transactions")
        coordinator = vt.group_coordinator(c, group)
        killed = c.broker(coordinator)
        at_kill = p.mark()
        killed.kill()
        vt.wait_for(lambda: vt.group_coordinator(c, group, timeout=10) != coordinator, timeout=60,
                    what="FindCoordinator to name a broker other than the killed %d" % coordinator)
        # Back at once: librdkafka (up to 2.14 at least) may wait forever
        # for a group coordinator that left the metadata (its issues #5511
        # and #5456: send_offsets_to_transaction hangs past its timeout
        # until some broker changes state).
        killed.start()
        c.wait_ready(timeout=90)
        commits = []
        p.wait_event(lambda e: e["ev"] == "txn" and e["outcome"] == "commit"
                     and commits.append(e) is None and len(commits) >= 3, 120,
                     what="three transactions committed after the kill", start=at_kill)
        self.finish(p, src, records)


if __name__ == "__main__":
    unittest.main()
