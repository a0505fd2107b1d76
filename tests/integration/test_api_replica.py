"""The replica manager across a broker restart: a log on disk that no topic
owns is deleted at start, owned logs keep their data and are served at once
(high watermark = log end). And a broker stopped while fetches wait in the
purgatory exits cleanly."""

import os
import shutil
import unittest

import vltava_test as vt
from vltava_test import KafkaConnection, Writer


def produce(port, topic, partition, n):
    batch = vt.build_record_batch([(b"k%d" % i, b"value-%d" % i) for i in range(n)])
    with KafkaConnection(port) as conn:
        body = conn.request(0, 3, Writer().string(None).i16(-1).i32(10000).array(
            [topic], lambda w, t: w.string(t).array([partition], lambda w2, p: w2.i32(p).bytes_(batch))).bytes())
    return vt.read_produce_response(body)[(topic, partition)]


class RestartTest(unittest.TestCase):
    def test_orphans_removed_owned_logs_kept(self):
        with vt.Cluster(brokers=1) as c:
            b = c.brokers[0]
            c.create_topic("kept", partitions=2, rf=1)
            self.assertEqual(produce(b.port, "kept", 0, 7), (0, 0))
            self.assertEqual(produce(b.port, "kept", 1, 3), (0, 0))
            self.assertEqual(b.stop(), 0)
            # A partition directory no topic in ZooKeeper owns, with real
            # segments in it, and a partition beyond the topic's count.
            shutil.copytree(os.path.join(b.datadir, "kept-0"), os.path.join(b.datadir, "ghost-0"))
            shutil.copytree(os.path.join(b.datadir, "kept-1"), os.path.join(b.datadir, "kept-5"))
            b.start()
            c.wait_ready()
            vt.wait_for(lambda: not os.path.exists(os.path.join(b.datadir, "ghost-0"))
                        and not os.path.exists(os.path.join(b.datadir, "kept-5")),
                        timeout=30, what="orphaned logs to be deleted")
            self.assertTrue(os.path.isdir(os.path.join(b.datadir, "kept-0")))
            self.assertIn("ghost-0", b.log_text())
            # The owned logs serve their data at once: the high watermark is
            # the log end again.
            c.wait_topic_leaders("kept", 2)
            self.assertEqual(vt.raw_list_offsets(b.port, "kept", 0, -1), (0, -1, 7))
            self.assertEqual(vt.raw_list_offsets(b.port, "kept", 1, -1), (0, -1, 3))
            got = vt.raw_fetch(b.port, "kept", 0, 0)
            self.assertEqual(got["high_watermark"], 7)
            self.assertEqual(sum(x["count"] for x in vt.parse_record_batches(got["records"])), 7)
            self.assertEqual(produce(b.port, "kept", 0, 1), (0, 7))


class ShutdownTest(unittest.TestCase):
    def test_stop_with_parked_fetches(self):
        """SIGTERM while fetches wait in the purgatory on open connections:
        a clean exit, no sanitizer report (checked by Cluster.close)."""
        with vt.Cluster(brokers=1) as c:
            b = c.brokers[0]
            c.create_topic("parked", partitions=1, rf=1)
            conns = []
            for _ in range(5):
                conn = KafkaConnection(b.port, timeout=30)
                conn.send(1, 4, Writer().i32(-1).i32(120000).i32(1).i32(1 << 20).i8(0).array(
                    ["parked"], lambda w, t: w.string(t).array([0], lambda w2, p: w2.i32(p).i64(0).i32(1 << 20)))
                    .bytes())
                conns.append(conn)
            # Served meanwhile: the fetches are parked, not blocking.
            self.assertEqual(vt.raw_metadata(b.port, topics=["parked"])["topics"]["parked"]["error"], 0)
            try:
                self.assertEqual(b.stop(), 0)
            finally:
                for conn in conns:
                    conn.close()


if __name__ == "__main__":
    unittest.main()
