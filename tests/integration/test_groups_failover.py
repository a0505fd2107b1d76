"""Group coordinator failover: two librdkafka consumers (confluent-kafka 2.x,
clients/ck_consumer.py, asynchronous commits reported through on_commit)
consume a 12-partition, 3-replica topic while a producer keeps writing; the
broker that coordinates their group is killed with -9. The consumers carry
on (a new coordinator takes over the group's __consumer_offsets partition);
afterwards every partition's committed offset, as list_consumer_group_offsets
reports it, is at least the highest commit any consumer saw acknowledged,
before and after the killed broker comes back, and no record covered by an
acknowledged commit was delivered again.

Time: every wait polls against a deadline; ctest's TIMEOUT bounds the file."""

import time
import unittest

import group_helpers as gh
import vltava_test as vt

PARTITIONS = 12


class CoordinatorFailoverTest(gh.GroupTest):
    def test_kill_coordinator_while_committing(self):
        c = self.cluster
        topic, group = "failover", "failover-group"
        c.create_topic(topic, partitions=PARTITIONS, rf=3)
        procs = [self.consumer(group, topic, "failover-c%d" % i, commit="async", session_timeout_ms=10000)
                 for i in (1, 2)]
        bg = gh.BackgroundProducer(c.bootstrap, topic, "v", PARTITIONS, per_second=300)
        try:
            gh.wait_balanced(procs, [6, 6], topic, PARTITIONS, timeout=90)
            for p in procs:
                vt.wait_for(lambda p=p: len(p.events("commit_ack")) >= 5, timeout=60,
                            what="acknowledged commits of %s" % p.name)
            coordinator = vt.group_coordinator(c, group)
            killed = c.broker(coordinator)

            killed_at = time.time()
            killed.kill()
            # Each consumer goes on committing through the new coordinator.
            for p in procs:
                vt.wait_for(lambda p=p: any(e["t"] > killed_at + 1 for e in p.events("commit_ack")),
                            timeout=90, what="%s to have a commit acknowledged after the kill" % p.name)
            # A live broker's metadata may name the killed one a moment
            # longer: wait for an answer that does not.
            vt.wait_for(lambda: vt.group_coordinator(c, group, timeout=10) != coordinator, timeout=60,
                        what="FindCoordinator to name a broker other than the killed %d" % coordinator)
            after_kill = len(bg.acked())
            vt.wait_for(lambda: len(bg.acked()) >= after_kill + 300, timeout=60,
                        what="records produced after the failover")
        finally:
            bg.stop()
        gh.wait_consumed(procs, bg.acked(), timeout=90)
        # Commits acknowledged late are reported late: wait until every
        # consumer's last batch has been acknowledged or refused.
        gh.stop_all(procs)

        acked = gh.max_acked(procs)
        self.assertTrue(acked, "no commit was acknowledged")
        admin = self.admin()
        committed = self.committed_offsets(admin, group, topic, PARTITIONS)
        for (t, p), o in sorted(acked.items()):
            self.assertGreaterEqual(committed[p], o, "committed offset of %s-%d below an acknowledged commit"
                                    % (t, p))

        # A fresh admin client for the restarted cluster: confluent-kafka
        # 2.16's admin process has been seen to exit without a word when a
        # broker it was connected to came back (twice in about 40 runs).
        admin.stop()
        killed.start()
        c.wait_ready(timeout=90)
        vt.group_coordinator(c, group, timeout=60)
        admin = self.admin("admin-after-restart")
        committed_again = vt.wait_for(
            lambda: self.committed_offsets(admin, group, topic, PARTITIONS), timeout=60,
            what="committed offsets after the restart")
        for (t, p), o in sorted(acked.items()):
            self.assertGreaterEqual(committed_again[p], o, "after the restart, %s-%d" % (t, p))
        admin.stop()
        self.assertEqual(gh.redeliveries_of_acked(procs)[:5], [],
                         "records delivered again after their commit was acknowledged")


if __name__ == "__main__":
    unittest.main()
