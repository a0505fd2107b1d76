"""Consumer groups with librdkafka (confluent-kafka 2.x from the client
virtualenv), each consumer its own process (clients/ck_consumer.py): three
consumers share a 12-partition topic 4/4/4; one leaves and the other two get
6/6 while records keep arriving; all stop and new ones resume at the
committed offsets. Once with the eager range assignor, once with
cooperative-sticky. Every consumer commits synchronously after each batch,
so no record covered by an acknowledged commit may ever be delivered again,
and when no commit failed no record is delivered twice at all.

Time: every wait polls against a deadline (wait_for / wait_event); ctest's
TIMEOUT bounds the file."""

import collections
import time
import unittest

import group_helpers as gh
import vltava_test as vt

PARTITIONS = 12


class RebalanceTest(gh.GroupTest):
    def rebalance_and_resume(self, strategy, tag):
        c = self.cluster
        topic, group = "rebalance-%s" % tag, "group-%s" % tag
        c.create_topic(topic, partitions=PARTITIONS, rf=3)
        produced = gh.produce(c.bootstrap, topic, "a", 0, 1200, PARTITIONS)

        first = [self.consumer(group, topic, "%s-c%d" % (tag, i), strategy=strategy) for i in (1, 2, 3)]
        gh.wait_balanced(first, [4, 4, 4], topic, PARTITIONS, timeout=90)
        gh.wait_consumed(first, produced, timeout=60)

        # One member leaves (close(): LeaveGroup) while records keep coming.
        bg = gh.BackgroundProducer(c.bootstrap, topic, "b", PARTITIONS, per_second=300)
        try:
            vt.wait_for(lambda: len(bg.acked()) >= 150, timeout=30, what="records produced in the background")
            first[2].stop(timeout=60)
            survivors = first[:2]
            gh.wait_balanced(survivors, [6, 6], topic, PARTITIONS, timeout=60)
            at_balance = len(bg.acked())
            vt.wait_for(lambda: len(bg.acked()) >= at_balance + 300, timeout=30,
                        what="records produced after the rebalance")
        finally:
            bg.stop()
        self.assertEqual(bg.failed(), [])
        produced += bg.acked()
        gh.wait_consumed(first, produced, timeout=90)
        gh.stop_all(survivors)

        # Everything consumed was committed: the group's committed offsets
        # are the partitions' ends (only this test writes to the topic).
        per_partition = collections.Counter(int(v.rsplit("-", 1)[1]) % PARTITIONS for v in produced)
        acked = gh.max_acked(first)
        admin = self.admin()
        committed = self.committed_offsets(admin, group, topic, PARTITIONS)
        for p in range(PARTITIONS):
            self.assertEqual(committed[p], per_partition[p], "committed offset of partition %d" % p)
            self.assertEqual(acked.get((topic, p)), per_partition[p],
                             "highest acknowledged commit of partition %d" % p)
        admin.stop()

        # New members resume at the committed offsets.
        more = gh.produce(c.bootstrap, topic, "c", 0, 600, PARTITIONS)
        second = [self.consumer(group, topic, "%s-r%d" % (tag, i), strategy=strategy) for i in (1, 2)]
        gh.wait_consumed(second, more, timeout=90)
        gh.wait_balanced(second, [6, 6], topic, PARTITIONS, timeout=30)
        gh.stop_all(second)
        resumed = gh.deliveries(second)
        firsts = {}
        for d in resumed:
            firsts[d.partition] = min(firsts.get(d.partition, d.offset), d.offset)
        for p in range(PARTITIONS):
            self.assertEqual(firsts.get(p), per_partition[p], "first offset consumed after the restart, p%d" % p)
        old = set(produced) & {d.value for d in resumed}
        self.assertEqual(old, set(), "records consumed again after the restart")

        everyone = first + second
        missing = (set(produced) | set(more)) - gh.consumed_values(everyone)
        self.assertEqual(missing, set(), "records never consumed")
        self.assertEqual(gh.redeliveries_of_acked(everyone)[:5], [],
                         "records delivered again after their commit was acknowledged")
        failed_commits = [e for p in everyone for e in p.events("commit_failed")]
        if not failed_commits:
            self.assertEqual(gh.duplicates(everyone), {}, "records delivered twice though every commit succeeded")

    def test_range_assignor(self):
        self.rebalance_and_resume("range", "range")

    def test_cooperative_sticky(self):
        self.rebalance_and_resume("cooperative-sticky", "coop")


if __name__ == "__main__":
    unittest.main()
