"""Issue 3 §3: Produce and Fetch on raw sockets, where client libraries
cannot express the case: every per-partition Produce error (with nothing
appended), acks=0 (no answer, data there), acks validation,
min.insync.replicas, the leader epoch stamped into stored batches,
compressed batches stored as sent; Fetch v4-v11 fields, max_bytes and
partition_max_bytes, one oversized batch still returned, OFFSET_OUT_OF_RANGE,
high watermark and log start offset, long poll (timeout and wake-up by an
append), fetch sessions refused."""

import gzip
import struct
import threading
import time
import unittest

import vltava_test as vt
from vltava_test import KafkaConnection, Reader, Writer

NONE = 0
OFFSET_OUT_OF_RANGE = 1
CORRUPT_MESSAGE = 2
UNKNOWN_TOPIC_OR_PARTITION = 3
MESSAGE_TOO_LARGE = 10
NOT_ENOUGH_REPLICAS = 19
INVALID_REQUIRED_ACKS = 21
UNSUPPORTED_FOR_MESSAGE_FORMAT = 43
INVALID_RECORD = 87
FETCH_SESSION_ID_NOT_FOUND = 70


def produce_body(version, topic, partition, records, acks=-1):
    w = Writer()
    if version >= 3:
        w.string(None)
    w.i16(acks).i32(10000)
    w.array([topic], lambda x, t: x.string(t).array([partition], lambda y, p: y.i32(p).bytes_(records)))
    return w.bytes()


def decode_produce(version, body):
    r = Reader(body)
    out = {}
    for _ in range(r.i32()):
        topic = r.string()
        for _ in range(r.i32()):
            p = {"partition": r.i32(), "error": r.i16(), "base_offset": r.i64()}
            if version >= 2:
                p["log_append_time"] = r.i64()
            if version >= 5:
                p["log_start_offset"] = r.i64()
            if version >= 8:
                p["record_errors"] = r.array(lambda x: (x.i32(), x.string()))
                p["error_message"] = r.string()
            out[(topic, p["partition"])] = p
    if version >= 1:
        out["throttle"] = r.i32()
    assert r.remaining() == 0, "%d bytes left in Produce v%d answer" % (r.remaining(), version)
    return out


def produce(port, topic, partition, records, version=3, acks=-1):
    with KafkaConnection(port) as conn:
        body = conn.request(0, version, produce_body(version, topic, partition, records, acks))
    return decode_produce(version, body)[(topic, partition)]


def fetch_body(version, parts, max_wait_ms=0, min_bytes=1, max_bytes=1 << 20, isolation=0,
               session_id=0, session_epoch=-1, current_leader_epoch=-1):
    """parts: [(topic, partition, offset, partition_max_bytes)]."""
    w = Writer().i32(-1).i32(max_wait_ms).i32(min_bytes).i32(max_bytes).i8(isolation)
    if version >= 7:
        w.i32(session_id).i32(session_epoch)
    topics = []
    for topic, partition, offset, pmax in parts:
        if not topics or topics[-1][0] != topic:
            topics.append((topic, []))
        topics[-1][1].append((partition, offset, pmax))

    def part(x, p):
        x.i32(p[0])
        if version >= 9:
            x.i32(current_leader_epoch)
        x.i64(p[1])
        if version >= 5:
            x.i64(-1)
        x.i32(p[2])

    w.array(topics, lambda x, t: x.string(t[0]).array(t[1], part))
    if version >= 7:
        w.i32(0)  # forgotten topics
    if version >= 11:
        w.string("")
    return w.bytes()


def decode_fetch(version, body):
    r = Reader(body)
    out = {"throttle": r.i32(), "partitions": {}}
    if version >= 7:
        out["error"] = r.i16()
        out["session_id"] = r.i32()
    for _ in range(r.i32()):
        topic = r.string()
        for _ in range(r.i32()):
            p = {"partition": r.i32(), "error": r.i16(), "high_watermark": r.i64(), "last_stable_offset": r.i64()}
            if version >= 5:
                p["log_start_offset"] = r.i64()
            p["aborted"] = r.array(lambda x: (x.i64(), x.i64()))
            if version >= 11:
                p["preferred_read_replica"] = r.i32()
            p["records"] = r.bytes_()
            p["batches"] = vt.parse_record_batches(p["records"] or b"")
            out["partitions"][(topic, p["partition"])] = p
    assert r.remaining() == 0, "%d bytes left in Fetch v%d answer" % (r.remaining(), version)
    return out


def fetch(port, version, parts, conn=None, **kw):
    if conn is not None:
        return decode_fetch(version, conn.request(1, version, fetch_body(version, parts, **kw)))
    with KafkaConnection(port, timeout=60) as c:
        return decode_fetch(version, c.request(1, version, fetch_body(version, parts, **kw)))


def latest_offset(port, topic, partition=0):
    err, _ts, off = vt.raw_list_offsets(port, topic, partition, -1)
    assert err == 0, err
    return off


def batch(n, size=10, ts=None):
    return vt.build_record_batch([(b"k%d" % i, b"v" * size) for i in range(n)], base_timestamp=ts)


def gzip_batch(records):
    """A real gzip-compressed RecordBatch v2 (attributes codec 1)."""
    plain = vt.build_record_batch(records)
    header = bytearray(plain[:61])
    payload = gzip.compress(plain[61:])
    struct.pack_into(">h", header, 21, 1)
    covered = bytes(header[21:]) + payload
    struct.pack_into(">I", header, 17, vt.crc32c(covered))
    struct.pack_into(">i", header, 8, len(header) - 12 + len(payload))
    return bytes(header) + payload


class ProduceTest(vt.SharedClusterTest):
    @classmethod
    def setUpClass(cls):
        cls.cluster = vt.Cluster(brokers=1, name="api-produce")
        cls.port = cls.cluster.brokers[0].port
        cls.cluster.create_topic("p", partitions=2, rf=1)
        cls.cluster.create_topic("p-small", partitions=1, rf=1, config={"max.message.bytes": 1024})
        cls.cluster.create_topic("p-isr2", partitions=1, rf=1, config={"min.insync.replicas": 2})

    def test_versions_and_offsets(self):
        base = latest_offset(self.port, "p", 1)
        for version in (3, 4, 5, 6, 7, 8):
            with self.subTest(version=version):
                p = produce(self.port, "p", 1, batch(3), version=version)
                self.assertEqual(p["error"], NONE)
                self.assertEqual(p["base_offset"], base)
                self.assertEqual(p["log_append_time"], -1)
                if version >= 5:
                    self.assertEqual(p["log_start_offset"], 0)
                if version >= 8:
                    self.assertEqual((p["record_errors"], p["error_message"]), ([], None))
                base += 3
        self.assertEqual(latest_offset(self.port, "p", 1), base)

    def assert_refused(self, topic, partition, records, error, version=3, acks=-1):
        before = latest_offset(self.port, topic, partition)
        p = produce(self.port, topic, partition, records, version=version, acks=acks)
        self.assertEqual(p["error"], error)
        self.assertEqual(p["base_offset"], -1)
        self.assertEqual(latest_offset(self.port, topic, partition), before, "nothing may be appended")

    def test_unknown_topic_or_partition(self):
        for topic, partition in (("no-such-topic", 0), ("p", 2), ("p", -1)):
            with self.subTest(topic=topic, partition=partition):
                p = produce(self.port, topic, partition, batch(1))
                self.assertEqual(p["error"], UNKNOWN_TOPIC_OR_PARTITION)

    def test_corrupt_crc(self):
        b = bytearray(batch(5))
        b[-1] ^= 0x01  # inside the records, under the CRC
        self.assert_refused("p", 0, bytes(b), CORRUPT_MESSAGE)

    def test_bad_length(self):
        b = bytearray(batch(2))
        struct.pack_into(">i", b, 8, len(b))  # claims 12 bytes more than sent
        self.assert_refused("p", 0, bytes(b), CORRUPT_MESSAGE)

    def test_count_mismatch(self):
        b = bytearray(batch(2))
        struct.pack_into(">i", b, 57, 3)  # RecordsCount, under the CRC
        struct.pack_into(">I", b, 17, vt.crc32c(bytes(b[21:])))
        self.assert_refused("p", 0, bytes(b), INVALID_RECORD)

    def test_magic_1(self):
        b = bytearray(batch(2))
        b[16] = 1
        self.assert_refused("p", 0, bytes(b), UNSUPPORTED_FOR_MESSAGE_FORMAT)

    def test_old_versions(self):
        # v0-v2 carry the old message sets: refused per partition, but answered.
        for version in (0, 1, 2):
            with self.subTest(version=version):
                self.assert_refused("p", 0, batch(1), UNSUPPORTED_FOR_MESSAGE_FORMAT, version=version)

    def test_message_too_large(self):
        self.assert_refused("p-small", 0, batch(1, size=2000), MESSAGE_TOO_LARGE)
        self.assertEqual(produce(self.port, "p-small", 0, batch(1, size=100))["error"], NONE)

    def test_empty_records(self):
        self.assert_refused("p", 0, b"", INVALID_RECORD)

    def test_invalid_acks(self):
        for acks in (2, -2, 5):
            with self.subTest(acks=acks):
                self.assert_refused("p", 0, batch(1), INVALID_REQUIRED_ACKS, acks=acks)

    def test_min_insync_replicas(self):
        self.assert_refused("p-isr2", 0, batch(1), NOT_ENOUGH_REPLICAS, acks=-1)
        self.assertEqual(produce(self.port, "p-isr2", 0, batch(1), acks=1)["error"], NONE)

    def test_acks0_no_response(self):
        before = latest_offset(self.port, "p", 0)
        with KafkaConnection(self.port) as conn:
            conn.send(0, 3, produce_body(3, "p", 0, batch(4), acks=0))
            md_cid = conn.send(3, 1, Writer().array([], None).bytes())
            cid, _body = conn.recv()
            # The first answer on the connection is Metadata's: Produce got none.
            self.assertEqual(cid, md_cid)
        self.assertEqual(latest_offset(self.port, "p", 0), before + 4)

    def test_leader_epoch_stamped(self):
        with KafkaConnection(self.port) as conn:
            r = Reader(conn.request(3, 7, Writer().array(["p"], lambda w, t: w.string(t)).i8(0).bytes()))
        r.i32()
        for _ in range(r.i32()):
            r.i32(), r.string(), r.i32(), r.string()
        r.string(), r.i32()
        r.i32(), r.i16(), r.string(), r.i8(), r.i32()
        _err, pid, _leader, epoch = r.i16(), r.i32(), r.i32(), r.i32()
        offset = produce(self.port, "p", pid, batch(1))["base_offset"]
        got = fetch(self.port, 4, [("p", pid, offset, 1 << 20)])["partitions"][("p", pid)]
        first = got["batches"][0]
        self.assertEqual(first["base_offset"], offset)
        self.assertEqual(first["leader_epoch"], epoch)
        self.assertTrue(first["crc_ok"])

    def test_compressed_stored_as_sent(self):
        records = [(b"key-%d" % i, b"gzip value %d " % i * 20) for i in range(50)]
        sent = gzip_batch(records)
        p = produce(self.port, "p", 0, sent)
        self.assertEqual(p["error"], NONE)
        got = fetch(self.port, 4, [("p", 0, p["base_offset"], 1 << 20)])["partitions"][("p", 0)]
        stored = got["records"][:len(sent)]
        # Identical except BaseOffset and PartitionLeaderEpoch (outside the CRC).
        self.assertEqual(stored[16:], sent[16:])
        self.assertEqual(struct.unpack_from(">q", stored)[0], p["base_offset"])
        self.assertEqual(stored[8:12], sent[8:12])
        # And a real client decodes it.
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=self.cluster.bootstrap, group_id=None, request_timeout_ms=30000)
        try:
            tp = TopicPartition("p", 0)
            consumer.assign([tp])
            consumer.seek(tp, p["base_offset"])
            got_records = []
            deadline = time.monotonic() + 30
            while len(got_records) < 50 and time.monotonic() < deadline:
                for recs in consumer.poll(timeout_ms=500).values():
                    got_records.extend(recs)
            self.assertEqual([(r.key, r.value) for r in got_records[:50]], records)
        finally:
            consumer.close()


class FetchTest(vt.SharedClusterTest):
    BATCH_RECORDS = 4
    VALUE = 200

    @classmethod
    def setUpClass(cls):
        cls.cluster = vt.Cluster(brokers=1, name="api-fetch")
        cls.port = cls.cluster.brokers[0].port
        cls.cluster.create_topic("f", partitions=2, rf=1)
        cls.cluster.create_topic("f-big", partitions=1, rf=1)
        cls.cluster.create_topic("f-wait", partitions=1, rf=1)
        cls.batch_len = len(batch(cls.BATCH_RECORDS, size=cls.VALUE))
        for partition in (0, 1):
            for _ in range(5):
                assert produce(cls.port, "f", partition, batch(cls.BATCH_RECORDS, size=cls.VALUE))["error"] == 0
        big = vt.build_record_batch([(b"big", b"x" * 50000)])
        cls.big_len = len(big)
        assert produce(cls.port, "f-big", 0, big)["error"] == 0
        assert produce(cls.port, "f-big", 0, batch(1))["error"] == 0

    def test_versions_decode(self):
        for version in range(4, 12):
            with self.subTest(version=version):
                got = fetch(self.port, version, [("f", 0, 0, 1 << 20)])
                p = got["partitions"][("f", 0)]
                self.assertEqual(p["error"], NONE)
                self.assertEqual(p["high_watermark"], 20)
                self.assertEqual(p["last_stable_offset"], 20)
                self.assertIsNone(p["aborted"])
                if version >= 5:
                    self.assertEqual(p["log_start_offset"], 0)
                if version >= 7:
                    self.assertEqual((got["error"], got["session_id"]), (NONE, 0))
                if version >= 11:
                    self.assertEqual(p["preferred_read_replica"], -1)
                self.assertEqual([b["base_offset"] for b in p["batches"]], [0, 4, 8, 12, 16])
                self.assertTrue(all(b["crc_ok"] for b in p["batches"]))
                self.assertEqual(len(p["records"]), 5 * self.batch_len)

    def test_read_committed_lists_no_aborted(self):
        p = fetch(self.port, 4, [("f", 0, 0, 1 << 20)], isolation=1)["partitions"][("f", 0)]
        self.assertEqual(p["aborted"], [])
        self.assertEqual(len(p["batches"]), 5)

    def test_partition_max_bytes(self):
        p = fetch(self.port, 4, [("f", 0, 0, int(self.batch_len * 2.5))])["partitions"][("f", 0)]
        self.assertEqual([b["base_offset"] for b in p["batches"]], [0, 4])
        self.assertEqual(len(p["records"]), 2 * self.batch_len)
        # From the middle of a batch: the batch holding the offset comes first.
        p = fetch(self.port, 4, [("f", 0, 5, self.batch_len)])["partitions"][("f", 0)]
        self.assertEqual([b["base_offset"] for b in p["batches"]], [4])

    def test_max_bytes_across_partitions(self):
        parts = [("f", 0, 0, 1 << 20), ("f", 1, 0, 1 << 20)]
        got = fetch(self.port, 4, parts, max_bytes=int(self.batch_len * 6.5))["partitions"]
        self.assertEqual(len(got[("f", 0)]["batches"]), 5)
        self.assertEqual(len(got[("f", 1)]["batches"]), 1)
        # Smaller than one batch: the first partition still gets one whole
        # batch; the second nothing.
        got = fetch(self.port, 4, parts, max_bytes=10)["partitions"]
        self.assertEqual(len(got[("f", 0)]["batches"]), 1)
        self.assertEqual(len(got[("f", 0)]["records"]), self.batch_len)
        self.assertEqual(got[("f", 1)]["records"], b"")
        self.assertEqual(got[("f", 1)]["error"], NONE)

    def test_oversized_batch_returned_whole(self):
        p = fetch(self.port, 4, [("f-big", 0, 0, 1000)], max_bytes=1000)["partitions"][("f-big", 0)]
        self.assertEqual(len(p["batches"]), 1)
        self.assertEqual(len(p["records"]), self.big_len)
        self.assertEqual(p["high_watermark"], 2)
        # Not when an earlier partition already returned data.
        got = fetch(self.port, 4, [("f", 0, 0, 1 << 20), ("f-big", 0, 0, 1000)], max_bytes=1 << 20)["partitions"]
        self.assertEqual(len(got[("f", 0)]["batches"]), 5)
        self.assertEqual(got[("f-big", 0)]["records"], b"")

    def test_offset_out_of_range(self):
        for offset in (21, 1000, -1):
            with self.subTest(offset=offset):
                p = fetch(self.port, 5, [("f", 0, offset, 1 << 20)])["partitions"][("f", 0)]
                self.assertEqual(p["error"], OFFSET_OUT_OF_RANGE)
                self.assertEqual(p["records"], b"")
        p = fetch(self.port, 5, [("f", 0, 20, 1 << 20)])["partitions"][("f", 0)]
        self.assertEqual((p["error"], p["records"], p["high_watermark"]), (NONE, b"", 20))

    def test_unknown(self):
        got = fetch(self.port, 4, [("nope", 0, 0, 100), ("f", 9, 0, 100)])["partitions"]
        self.assertEqual(got[("nope", 0)]["error"], UNKNOWN_TOPIC_OR_PARTITION)
        self.assertEqual(got[("f", 9)]["error"], UNKNOWN_TOPIC_OR_PARTITION)

    def test_leader_epoch_checked(self):
        self.assertEqual(fetch(self.port, 9, [("f", 0, 0, 100)], current_leader_epoch=10 ** 6)
                         ["partitions"][("f", 0)]["error"], 75)  # UNKNOWN_LEADER_EPOCH

    def test_session_refused(self):
        got = fetch(self.port, 7, [("f", 0, 0, 100)], session_id=12345, session_epoch=1)
        self.assertEqual(got["error"], FETCH_SESSION_ID_NOT_FOUND)
        self.assertEqual(got["partitions"], {})

    def test_long_poll_times_out(self):
        end = latest_offset(self.port, "f", 0)
        t0 = time.monotonic()
        p = fetch(self.port, 4, [("f", 0, end, 1 << 20)], max_wait_ms=700)["partitions"][("f", 0)]
        elapsed = time.monotonic() - t0
        self.assertEqual((p["error"], p["records"]), (NONE, b""))
        self.assertGreaterEqual(elapsed, 0.6)
        self.assertLess(elapsed, 5)

    def test_long_poll_woken_by_append(self):
        # Every version: the purgatory re-reads each parked request to see
        # which partitions it waits on, and the layout differs by version.
        for version in (4, 5, 7, 9, 11):
            with self.subTest(version=version):
                self.woken_by_append(version)

    def woken_by_append(self, version):
        end = latest_offset(self.port, "f-wait", 0)
        result = {}

        def waiter():
            t0 = time.monotonic()
            # f, which gets no data, comes first: the wake-up must find f-wait.
            result["answer"] = fetch(self.port, version, [("f", 1, 20, 1 << 20), ("f-wait", 0, end, 1 << 20)],
                                     max_wait_ms=20000)
            result["elapsed"] = time.monotonic() - t0

        thread = threading.Thread(target=waiter)
        thread.start()
        time.sleep(0.5)  # let the fetch park; the assertion below does not depend on it
        t_append = time.monotonic()
        self.assertEqual(produce(self.port, "f-wait", 0, batch(2))["error"], NONE)
        thread.join(30)
        self.assertFalse(thread.is_alive())
        p = result["answer"]["partitions"][("f-wait", 0)]
        self.assertEqual([b["base_offset"] for b in p["batches"]], [end])
        self.assertEqual(result["answer"]["partitions"][("f", 1)]["records"], b"")
        # Answered promptly after the append, far before max_wait.
        self.assertLess(result["elapsed"], 10)
        self.assertLess(time.monotonic() - t_append, 5)

    def test_waiting_fetch_answered_when_partition_removed(self):
        self.cluster.create_topic("f-doomed", partitions=1, rf=1)
        result = {}

        def waiter():
            t0 = time.monotonic()
            result["answer"] = fetch(self.port, 4, [("f-doomed", 0, 0, 1 << 20)], max_wait_ms=30000)
            result["elapsed"] = time.monotonic() - t0

        thread = threading.Thread(target=waiter)
        thread.start()
        time.sleep(0.5)
        admin = self.cluster.admin()  # kept alive until its future is done
        fs = admin.delete_topics(["f-doomed"], operation_timeout=30)
        fs["f-doomed"].result(timeout=60)
        thread.join(40)
        self.assertFalse(thread.is_alive())
        p = result["answer"]["partitions"][("f-doomed", 0)]
        self.assertIn(p["error"], (UNKNOWN_TOPIC_OR_PARTITION, 6))  # or NOT_LEADER_OR_FOLLOWER
        self.assertLess(result["elapsed"], 20)

    def test_min_bytes_waits_for_enough(self):
        end = latest_offset(self.port, "f-wait", 0)
        small = batch(1)
        result = {}

        def waiter():
            t0 = time.monotonic()
            result["answer"] = fetch(self.port, 4, [("f-wait", 0, end, 1 << 20)], max_wait_ms=20000,
                                     min_bytes=len(small) * 3)
            result["elapsed"] = time.monotonic() - t0

        thread = threading.Thread(target=waiter)
        thread.start()
        time.sleep(0.5)
        for _ in range(3):
            self.assertEqual(produce(self.port, "f-wait", 0, small)["error"], NONE)
        thread.join(30)
        self.assertFalse(thread.is_alive())
        p = result["answer"]["partitions"][("f-wait", 0)]
        self.assertEqual(len(p["batches"]), 3)
        self.assertLess(result["elapsed"], 15)


if __name__ == "__main__":
    unittest.main()
