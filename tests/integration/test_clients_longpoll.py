"""Issue 3 §5: Fetch long poll, measured with raw Fetch v4 requests. An empty
fetch returns after about max_wait_ms; a waiting fetch returns promptly when
data arrives; min_bytes holds the answer back until max_wait_ms. The bounds
are loose on purpose: this checks behaviour, not speed."""

import threading
import time
import unittest

import vltava_test as vt


class LongPollTest(vt.SharedClusterTest):
    @classmethod
    def setUpClass(cls):
        cls.cluster = vt.Cluster(brokers=1, name="longpoll")

    @property
    def port(self):
        return self.cluster.broker(1).port

    def timed_fetch(self, topic, offset, **kw):
        start = time.monotonic()
        answer = vt.raw_fetch(self.port, topic, 0, offset, timeout=60, **kw)
        return time.monotonic() - start, answer

    def produce(self, topic, value):
        with vt.KafkaConnection(self.port) as conn:
            cid = vt.raw_produce(conn, topic, 0, vt.build_record_batch([(None, value)]), acks=1)
            _, body = conn.recv(expect_cid=cid)
        err, base = vt.read_produce_response(body)[(topic, 0)]
        self.assertEqual(err, 0)
        return base

    def test_empty_fetch_waits_about_max_wait(self):
        self.cluster.create_topic("lp-empty", partitions=1, rf=1)
        for max_wait in (300, 1500):
            elapsed, answer = self.timed_fetch("lp-empty", 0, max_wait_ms=max_wait, min_bytes=1)
            self.assertEqual(answer["error"], 0)
            self.assertEqual(answer["records"], b"")
            self.assertEqual(answer["high_watermark"], 0)
            self.assertGreaterEqual(elapsed, max_wait / 1000.0 * 0.75, "returned before max_wait_ms=%d" % max_wait)
            self.assertLess(elapsed, max_wait / 1000.0 + 3.0, "held far past max_wait_ms=%d" % max_wait)
        # max_wait_ms=0 answers at once.
        elapsed, answer = self.timed_fetch("lp-empty", 0, max_wait_ms=0, min_bytes=1)
        self.assertEqual(answer["error"], 0)
        self.assertLess(elapsed, 2.0)

    def test_waiting_fetch_is_woken_by_append(self):
        self.cluster.create_topic("lp-wake", partitions=1, rf=1)
        result = {}

        def fetch():
            result["elapsed"], result["answer"] = self.timed_fetch("lp-wake", 0, max_wait_ms=20000, min_bytes=1)
            result["done_at"] = time.monotonic()

        waiter = threading.Thread(target=fetch)
        waiter.start()
        # Let the fetch park; if it has not parked yet it answers at once
        # with the data anyway, which the assertions below also accept.
        time.sleep(1.0)
        self.assertTrue(waiter.is_alive(), "the empty fetch answered before max_wait_ms")
        produced_at = time.monotonic()
        self.assertEqual(self.produce("lp-wake", b"wake up"), 0)
        waiter.join(timeout=30)
        self.assertFalse(waiter.is_alive(), "fetch still waiting after the append")
        answer = result["answer"]
        self.assertEqual(answer["error"], 0)
        self.assertEqual(answer["high_watermark"], 1)
        batches = vt.parse_record_batches(answer["records"])
        self.assertEqual([r[3] for r in vt.decode_records(batches[0])], [b"wake up"])
        self.assertLess(result["done_at"] - produced_at, 2.0, "fetch not woken promptly by the append")
        self.assertLess(result["elapsed"], 10.0)

    def test_min_bytes_holds_until_max_wait(self):
        self.cluster.create_topic("lp-minbytes", partitions=1, rf=1)
        self.produce("lp-minbytes", b"small")
        elapsed, answer = self.timed_fetch("lp-minbytes", 0, max_wait_ms=1500, min_bytes=100000)
        self.assertEqual(answer["error"], 0)
        self.assertGreaterEqual(elapsed, 1.1, "answered before min_bytes or max_wait_ms was reached")
        self.assertLess(elapsed, 4.5)
        self.assertEqual(len(vt.parse_record_batches(answer["records"])), 1)
        # Enough bytes already there: no wait.
        elapsed, answer = self.timed_fetch("lp-minbytes", 0, max_wait_ms=10000, min_bytes=1)
        self.assertLess(elapsed, 2.0)
        self.assertTrue(answer["records"])

    def test_other_clients_are_served_while_a_fetch_waits(self):
        self.cluster.create_topic("lp-busy", partitions=1, rf=1)
        done = threading.Event()

        def park():
            self.timed_fetch("lp-busy", 0, max_wait_ms=5000, min_bytes=1)
            done.set()

        waiter = threading.Thread(target=park)
        waiter.start()
        time.sleep(0.3)
        start = time.monotonic()
        vt.api_versions(self.port)
        vt.raw_metadata(self.port, topics=["lp-busy"])
        self.assertLess(time.monotonic() - start, 2.0, "broker blocked by a waiting fetch")
        self.assertFalse(done.is_set())
        waiter.join(timeout=30)

    def test_fetch_beyond_end_is_out_of_range(self):
        self.cluster.create_topic("lp-range", partitions=1, rf=1)
        self.produce("lp-range", b"one")
        _, answer = self.timed_fetch("lp-range", 5, max_wait_ms=100, min_bytes=1)
        self.assertEqual(answer["error"], 1)  # OFFSET_OUT_OF_RANGE


if __name__ == "__main__":
    unittest.main()
