"""Committed offsets expire (KIP-211), and what expires stays gone.

- A group that only commits (no members ever, e.g. an assign() consumer):
  its offsets expire offsets.retention.ms after their commit; the group then
  leaves ListGroups. The tombstones are in __consumer_offsets: after a
  restart, which replays the partition, nothing comes back.
- A consumer group: its offsets do not expire while it has members, however
  old the commit; once it is empty they expire offsets.retention.ms later.
- KIP-496: while a consumer group is Stable, its offsets of a topic no
  member subscribes to expire offsets.retention.ms after their commit.

Clients: Debian's confluent-kafka (librdkafka 2.0.2). Every wait polls
against a deadline."""

import time
import unittest

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

import vltava_test as vt

RETENTION_MS = 3000
NO_OFFSET = -1001  # librdkafka's OFFSET_INVALID: nothing committed


class OffsetExpiryTest(unittest.TestCase):
    def setUp(self):
        self.cluster = vt.Cluster(brokers=1, broker_config={
            "offsets.topic.replication.factor": 1,
            "offsets.topic.num.partitions": 4,
            "group.initial.rebalance.delay.ms": 0,
            "offsets.retention.ms": RETENTION_MS,
            "offsets.retention.check.interval.ms": 200,
        })
        self.addCleanup(self.cluster.close)
        self.bootstrap = self.cluster.bootstrap
        self.cluster.create_topic("expiring", partitions=2, rf=1)
        self.cluster.create_topic("unsubscribed", partitions=1, rf=1)
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.close()

    def consumer(self, group, **extra):
        conf = {"bootstrap.servers": self.bootstrap, "group.id": group, "enable.auto.commit": False,
                "auto.offset.reset": "earliest", "session.timeout.ms": 6000}
        conf.update(extra)
        c = Consumer(conf)
        self.clients.append(c)
        return c

    def committed(self, group):
        """{partition: committed offset} as a fresh non-member sees it."""
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": group})
        try:
            parts = c.committed([TopicPartition("expiring", p) for p in (0, 1)], timeout=20)
            return {tp.partition: tp.offset for tp in parts}
        finally:
            c.close()

    def committed_of(self, group, topic):
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": group})
        try:
            return c.committed([TopicPartition(topic, 0)], timeout=20)[0].offset
        finally:
            c.close()

    def listed(self, group):
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        return group in {g.id for g in admin.list_groups(timeout=10)}

    def test_simple_group_offsets_expire_and_stay_gone(self):
        group = "expiry-simple"
        c = self.consumer(group)
        c.commit(offsets=[TopicPartition("expiring", 0, 5), TopicPartition("expiring", 1, 7)],
                 asynchronous=False)
        self.assertEqual(self.committed(group), {0: 5, 1: 7})
        self.assertTrue(self.listed(group))
        vt.wait_for(lambda: self.committed(group) == {0: NO_OFFSET, 1: NO_OFFSET},
                    timeout=RETENTION_MS / 1000 + 30, what="the offsets to expire")
        vt.wait_for(lambda: not self.listed(group), timeout=30, what="the group to leave ListGroups")

        # The expiry was written (tombstones): a restart replays the
        # partition and finds nothing.
        broker = self.cluster.brokers[0]
        broker.stop()
        broker.start()
        self.cluster.wait_ready()
        vt.wait_for(lambda: self.committed(group) == {0: NO_OFFSET, 1: NO_OFFSET}, timeout=60,
                    what="the coordinator to load, with the offsets still gone")
        self.assertFalse(self.listed(group))

    def test_member_keeps_offsets_until_the_group_is_empty(self):
        group = "expiry-live"
        producer_values = [b"v%d" % i for i in range(10)]
        vt_produce(self.bootstrap, "expiring", producer_values)
        member = self.consumer(group)
        member.subscribe(["expiring"])
        got = 0
        deadline = time.monotonic() + 60
        while got < len(producer_values):
            self.assertLess(time.monotonic(), deadline, "consumed only %d records" % got)
            m = member.poll(0.2)
            if m is not None and not m.error():
                got += 1
        member.commit(asynchronous=False)
        # A commit for a topic the group does not subscribe to (a member may
        # commit any offsets).
        member.commit(offsets=[TopicPartition("unsubscribed", 0, 4)], asynchronous=False)
        self.assertEqual(self.committed_of(group, "unsubscribed"), 4)
        committed = self.committed(group)
        self.assertEqual(sum(committed.values()), len(producer_values))

        # Twice the retention with the member alive: nothing expires (the
        # member polls, so it stays in the group).
        until = time.monotonic() + 2 * RETENTION_MS / 1000
        while time.monotonic() < until:
            member.poll(0.2)
        self.assertEqual(self.committed(group), committed)
        vt.wait_for(lambda: self.committed_of(group, "unsubscribed") == NO_OFFSET, timeout=30,
                    what="the unsubscribed topic's offset to expire while the group is Stable")
        self.assertEqual(self.committed(group), committed)

        # Empty: the offsets go retention.ms after it became empty.
        member.close()
        self.clients.remove(member)
        left_at = time.monotonic()
        vt.wait_for(lambda: self.committed(group) == {0: NO_OFFSET, 1: NO_OFFSET},
                    timeout=RETENTION_MS / 1000 + 30, what="the empty group's offsets to expire")
        self.assertGreaterEqual(time.monotonic() - left_at, RETENTION_MS / 1000 * 0.9,
                                "the offsets expired before offsets.retention.ms had passed")


def vt_produce(bootstrap, topic, values):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for i, v in enumerate(values):
        p.produce(topic, value=v, partition=i % 2)
    left = p.flush(30)
    assert left == 0, "%d records not acknowledged" % left


if __name__ == "__main__":
    unittest.main()
