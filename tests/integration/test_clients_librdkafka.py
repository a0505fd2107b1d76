"""Issue 3 §5: a librdkafka C producer (rdkafka_producer.c) with acks=0, 1
and -1, and the crash test: kill -9 the broker while that producer runs with
acks=-1, restart it, and every acknowledged record is there at its
acknowledged offset, with nothing corrupt served."""

import os
import signal
import subprocess
import sys
import time
import unittest

import vltava_test as vt


def record_value(i, size):
    """Mirror of rdkafka_producer.c fill_value()."""
    prefix = "value-%d-" % i
    return prefix + "".join(chr(ord("a") + (pos * 7 + i) % 26) for pos in range(len(prefix), size))


def parse_acks(path):
    """[(partition, offset, index)] from the producer's complete ACK lines,
    and the ERR lines."""
    acks, errors = [], []
    with open(path, "rb") as f:
        data = f.read()
    for line in data.split(b"\n")[:-1]:  # a torn last line is ignored
        parts = line.decode().split()
        if parts and parts[0] == "ACK":
            acks.append((int(parts[1]), int(parts[2]), int(parts[3])))
        elif parts and parts[0] == "ERR":
            errors.append(line.decode())
    return acks, errors


class _ClusterPerTest(unittest.TestCase):
    def setUp(self):
        self.cluster = vt.Cluster(brokers=1)
        self.tmp = self.cluster.tmpdir

    def tearDown(self):
        self.cluster.close(failed=vt.test_failed(self))

    def producer(self, topic, count, acks, size=100, extra=(), tag="producer"):
        out = os.path.join(self.tmp, "%s.out" % tag)
        err = os.path.join(self.tmp, "%s.err" % tag)
        argv = [vt.program_bin("rdkafka_producer"), "-b", self.cluster.bootstrap, "-t", topic, "-p", "0",
                "-n", str(count), "-a", str(acks), "-s", str(size), "-v"] + list(extra)
        with open(out, "wb") as o, open(err, "wb") as e:
            proc = subprocess.Popen(argv, stdout=o, stderr=e, stdin=subprocess.DEVNULL,
                                    preexec_fn=vt._die_with_parent)
        vt._live_processes.add(proc)
        return proc, out, err

    def assert_consumed(self, topic, count, size, acks_by_offset=None):
        msgs = vt.kcat_consume(self.cluster.bootstrap, topic, count, timeout=240)
        self.assertEqual(len(msgs), count)
        for n, m in enumerate(msgs):
            self.assertEqual(m["offset"], n)
            if acks_by_offset is not None:
                i = acks_by_offset[n]
            else:
                i = n
            self.assertEqual(m["key"], "key-%d" % i, "key at offset %d" % n)
            self.assertEqual(m["payload"], record_value(i, size), "value at offset %d" % n)


class LibrdkafkaProducerTest(_ClusterPerTest):
    COUNT = 20000

    def produce_and_check(self, acks):
        topic = "rdkafka-acks%s" % str(acks).replace("-", "m")
        self.cluster.create_topic(topic, partitions=1, rf=1)
        proc, out, err = self.producer(topic, self.COUNT, acks, tag="acks%s" % acks)
        code = vt._reap(proc, 240)
        with open(err) as f:
            stderr = f.read()
        self.assertEqual(code, 0, "rdkafka_producer acks=%s failed:\n%s" % (acks, stderr[-3000:]))
        acked, errors = parse_acks(out)
        self.assertEqual(errors, [])
        self.assertEqual(len(acked), self.COUNT)
        if acks != 0:
            # One partition, no retries: offsets are the send order.
            self.assertEqual(sorted(a[1] for a in acked), list(range(self.COUNT)))
            self.assertTrue(all(off == i for _, off, i in acked), "offset differs from send order")
        # acks=0 sends no answer, so wait for the data rather than the ack.
        port = self.cluster.broker(1).port
        vt.wait_for(lambda: vt.raw_list_offsets(port, topic, 0, -1)[2] == self.COUNT, timeout=60,
                    what="%d records in %s" % (self.COUNT, topic))
        self.assert_consumed(topic, self.COUNT, 100)

    def test_acks_0(self):
        self.produce_and_check(0)

    def test_acks_1(self):
        self.produce_and_check(1)

    def test_acks_all(self):
        self.produce_and_check(-1)

    def test_acks_0_gets_no_response(self):
        """On one connection: Produce acks=0, then ApiVersions. The first
        frame back must be the ApiVersions answer."""
        c = self.cluster
        c.create_topic("raw-acks0", partitions=1, rf=1)
        batch = vt.build_record_batch([(b"k", b"fire and forget")])
        with vt.KafkaConnection(c.broker(1).port) as conn:
            produce_cid = vt.raw_produce(conn, "raw-acks0", 0, batch, acks=0)
            versions_cid = conn.send(18, 0, b"")
            cid, _ = conn.recv()
            self.assertNotEqual(cid, produce_cid, "the broker answered an acks=0 Produce")
            self.assertEqual(cid, versions_cid)
        vt.wait_for(lambda: vt.raw_fetch(c.broker(1).port, "raw-acks0", 0, 0)["high_watermark"] == 1,
                    timeout=20, what="the acks=0 record")
        fetched = vt.raw_fetch(c.broker(1).port, "raw-acks0", 0, 0)
        batches = vt.parse_record_batches(fetched["records"])
        self.assertEqual([r[3] for r in vt.decode_records(batches[0])], [b"fire and forget"])


class CrashTest(_ClusterPerTest):
    SIZE = 100

    def test_kill_9_during_acks_all_keeps_every_acknowledged_record(self):
        c = self.cluster
        broker = c.broker(1)
        c.create_topic("crash", partitions=1, rf=1)
        proc, out, err = self.producer("crash", 10 ** 7, -1, size=self.SIZE, tag="crash",
                                       extra=["-r", "20000", "-X", "message.timeout.ms=60000"])

        def acked_count():
            with open(out, "rb") as f:
                return f.read().count(b"ACK ")

        vt.wait_for(lambda: acked_count() >= 20000, timeout=120, what="20,000 acknowledged records")
        broker.kill(signal.SIGKILL)
        # Give in-flight requests time to fail against the dead broker, then
        # stop the producer; only the ACK lines it printed count.
        time.sleep(1)
        proc.kill()
        vt._reap(proc, 30)
        acked, _ = parse_acks(out)
        self.assertGreaterEqual(len(acked), 20000)
        by_offset = {}
        for partition, offset, index in acked:
            self.assertEqual(partition, 0)
            self.assertNotIn(offset, by_offset, "offset %d acknowledged twice" % offset)
            by_offset[offset] = index
        last_acked = max(by_offset)

        broker.start()
        c.wait_ready()
        c.wait_topic_leaders("crash", 1)

        earliest = vt.raw_list_offsets(broker.port, "crash", 0, -2)
        latest = vt.raw_list_offsets(broker.port, "crash", 0, -1)
        self.assertEqual(earliest[0], 0)
        self.assertEqual(earliest[2], 0)
        self.assertGreater(latest[2], last_acked, "acknowledged offset %d lost" % last_acked)
        end = latest[2]

        # Everything the broker serves is whole, CRC-valid and dense.
        offset = 0
        served = {}
        while offset < end:
            fetched = vt.raw_fetch(broker.port, "crash", 0, offset, max_bytes=1 << 20,
                                   partition_max_bytes=1 << 20)
            self.assertEqual(fetched["error"], 0, "Fetch at %d" % offset)
            batches = vt.parse_record_batches(fetched["records"])
            self.assertTrue(batches, "no whole batch at offset %d (end %d)" % (offset, end))
            for b in batches:
                self.assertTrue(b["crc_ok"], "corrupt batch served at offset %d" % b["base_offset"])
                self.assertEqual(b["magic"], 2)
                for rec_offset, _ts, key, value, _h in vt.decode_records(b):
                    if rec_offset >= offset:
                        served[rec_offset] = (key, value)
                offset = max(offset, b["last_offset"] + 1)
        self.assertEqual(sorted(served), list(range(end)), "offsets not dense after recovery")
        for off, index in by_offset.items():
            key, value = served[off]
            self.assertEqual(key, b"key-%d" % index, "acknowledged record %d moved from offset %d" % (index, off))
            self.assertEqual(value.decode(), record_value(index, self.SIZE))

        print("crash test: %d acknowledged (last offset %d), %d served after restart"
              % (len(by_offset), last_acked, end), file=sys.stderr)

        # A real client agrees (librdkafka checks every CRC).
        msgs = vt.kcat_consume(c.bootstrap, "crash", end, timeout=240)
        self.assertEqual([m["offset"] for m in msgs], list(range(end)))
        for m in msgs:
            if m["offset"] in by_offset:
                self.assertEqual(m["key"], "key-%d" % by_offset[m["offset"]])


if __name__ == "__main__":
    unittest.main()
