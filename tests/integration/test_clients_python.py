"""Issue 3 §5: kafka-python 2.0.2 (Debian's) producer and consumer without a
group, and ListOffsets by timestamp (kafka-python offsets_for_times, checked
against raw ListOffsets v1)."""

import time
import unittest

import vltava_test as vt
from kafka import KafkaConsumer, KafkaProducer, TopicPartition


class KafkaPythonTest(vt.SharedClusterTest):
    @classmethod
    def setUpClass(cls):
        cls.cluster = vt.Cluster(brokers=1, name="kafka-python")

    def producer(self, **kw):
        return KafkaProducer(bootstrap_servers=self.cluster.bootstrap, request_timeout_ms=30000,
                             max_block_ms=30000, **kw)

    def consumer(self):
        return KafkaConsumer(bootstrap_servers=self.cluster.bootstrap, group_id=None,
                             enable_auto_commit=False, auto_offset_reset="earliest",
                             request_timeout_ms=30000, fetch_max_wait_ms=100)

    def consume(self, topic, count, timeout=60):
        consumer = self.consumer()
        try:
            tp = TopicPartition(topic, 0)
            consumer.assign([tp])
            consumer.seek_to_beginning(tp)
            got = []
            deadline = time.monotonic() + timeout
            while len(got) < count and time.monotonic() < deadline:
                for records in consumer.poll(timeout_ms=500).values():
                    got.extend(records)
            return got
        finally:
            consumer.close()

    def roundtrip(self, topic, count, **producer_kw):
        self.cluster.create_topic(topic, partitions=1, rf=1)
        producer = self.producer(acks="all", linger_ms=5, **producer_kw)
        try:
            futures = []
            for i in range(count):
                headers = [("n", str(i).encode()), ("empty", b"")]
                futures.append(producer.send(topic, key=b"key-%d" % i, value=b"value-%d" % i * (1 + i % 7),
                                             headers=headers, partition=0))
            producer.flush(timeout=60)
            offsets = [f.get(timeout=30).offset for f in futures]
        finally:
            producer.close(timeout=10)
        self.assertEqual(offsets, list(range(count)))

        got = self.consume(topic, count)
        self.assertEqual(len(got), count)
        for i, rec in enumerate(got):
            self.assertEqual(rec.offset, i)
            self.assertEqual(rec.key, b"key-%d" % i)
            self.assertEqual(rec.value, b"value-%d" % i * (1 + i % 7))
            self.assertEqual(list(rec.headers), [("n", str(i).encode()), ("empty", b"")])

    def test_produce_consume_without_group(self):
        self.roundtrip("kafka-python", 3000)

    def test_produce_consume_gzip(self):
        self.roundtrip("kafka-python-gzip", 2000, compression_type="gzip")

    def test_offsets_for_times(self):
        topic = "by-time"
        c = self.cluster
        c.create_topic(topic, partitions=1, rf=1)
        base = int(time.time() * 1000) - 3600 * 1000
        count = 300
        producer = self.producer(acks=1, linger_ms=0)
        try:
            # One batch per record (each send waited for), 10 ms apart, ~170
            # bytes each: the partition spans many index.interval.bytes, so
            # the lookup must combine the time index and a scan.
            for i in range(count):
                producer.send(topic, value=b"t" * 100, timestamp_ms=base + 10 * i, partition=0).get(timeout=30)
        finally:
            producer.close(timeout=10)

        consumer = self.consumer()
        try:
            tp = TopicPartition(topic, 0)
            self.assertEqual(consumer.beginning_offsets([tp])[tp], 0)
            self.assertEqual(consumer.end_offsets([tp])[tp], count)
            cases = {
                base - 1000: 0,            # before everything: the first record
                base: 0,                   # exactly the first
                base + 10 * 137: 137,      # exactly a record's timestamp
                base + 10 * 137 + 1: 138,  # between two records: the later one
                base + 10 * (count - 1): count - 1,
            }
            for ts, want in cases.items():
                found = consumer.offsets_for_times({tp: ts})[tp]
                self.assertIsNotNone(found, "no offset for timestamp %d" % ts)
                self.assertEqual(found.offset, want, "offset for timestamp base+%d" % (ts - base))
                self.assertEqual(found.timestamp, base + 10 * want)
            # Later than every record: no offset.
            self.assertIsNone(consumer.offsets_for_times({tp: base + 10 * count})[tp])
        finally:
            consumer.close()

        port = c.broker(1).port
        self.assertEqual(vt.raw_list_offsets(port, topic, 0, base + 10 * 42 + 5), (0, base + 10 * 43, 43))
        self.assertEqual(vt.raw_list_offsets(port, topic, 0, -2)[2], 0)
        self.assertEqual(vt.raw_list_offsets(port, topic, 0, -1)[2], count)
        self.assertEqual(vt.raw_list_offsets(port, topic, 0, base + 10 * count)[1:], (-1, -1))


if __name__ == "__main__":
    unittest.main()
