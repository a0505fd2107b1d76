"""Issue 3 §5: kcat against one broker. 100,000 messages with keys and
headers produced, then consumed byte-identical and in order, once per
compression codec; the batches stay compressed on disk and on the wire with
the codec the client chose. kcat -L shows the broker and the topic."""

import json
import os
import random
import unittest

import vltava_test as vt

COUNT = 100000
HEADERS = [("trace-id", "0af7651916cd43dd"), ("source", "kcat test")]
# Printable, no tab (key delimiter) and no newline (message delimiter).
ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:-_=+*/!?#%&()[]{}<>@$~^|"


def make_messages(seed):
    rnd = random.Random(seed)
    messages = []
    for i in range(COUNT):
        key = "k%06d-%d" % (i, rnd.randrange(1000))
        value = "".join(rnd.choice(ALPHABET) for _ in range(rnd.randrange(1, 120)))
        messages.append((key, value))
    return messages


def segment_batches(datadir, topic, partition=0):
    """Batch headers of the partition's first segment on disk (no CRC check)."""
    path = os.path.join(datadir, "%s-%d" % (topic, partition), "%020d.log" % 0)
    with open(path, "rb") as f:
        return vt.parse_record_batches(f.read(), check_crc=False)


class KcatTest(vt.SharedClusterTest):
    @classmethod
    def setUpClass(cls):
        cls.cluster = vt.Cluster(brokers=1, name="kcat")

    def roundtrip(self, codec):
        topic = "kcat-%s" % codec
        c = self.cluster
        c.create_topic(topic, partitions=1, rf=1)
        messages = make_messages(codec)
        payload = "".join("%s\t%s\n" % kv for kv in messages).encode()
        args = ["-P", "-b", c.bootstrap, "-t", topic, "-p", 0, "-K", "\t", "-z", codec,
                "-X", "linger.ms=20", "-X", "batch.num.messages=2000"]
        for name, value in HEADERS:
            args += ["-H", "%s=%s" % (name, value)]
        produced = vt.run_kcat(args, input=payload, timeout=300)
        self.assertNotIn(b"Delivery failed", produced.stderr)

        consumed = vt.kcat_consume(c.bootstrap, topic, COUNT, timeout=300)
        self.assertEqual(len(consumed), COUNT)
        for i, (msg, (key, value)) in enumerate(zip(consumed, messages)):
            self.assertEqual(msg["offset"], i, "offset of message %d" % i)
            self.assertEqual(msg["key"], key, "key of message %d" % i)
            self.assertEqual(msg["payload"], value, "value of message %d" % i)
            self.assertEqual(vt.kcat_headers(msg), HEADERS, "headers of message %d" % i)

        # The producer compressed (librdkafka silently stops compressing when
        # the broker's Produce range is wrong) and the broker kept the batch
        # as sent: on disk and in a Fetch answer.
        expected_codec = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}[codec]
        on_disk = segment_batches(c.broker(1).datadir, topic)
        self.assertTrue(on_disk)
        self.assertEqual({b["codec"] for b in on_disk}, {expected_codec})
        self.assertEqual(sum(b["count"] for b in on_disk), COUNT)
        self.assertEqual(on_disk[0]["base_offset"], 0)
        for prev, nxt in zip(on_disk, on_disk[1:]):
            self.assertEqual(nxt["base_offset"], prev["last_offset"] + 1)
        fetched = vt.raw_fetch(c.broker(1).port, topic, 0, 0, max_bytes=65536, partition_max_bytes=65536)
        self.assertEqual(fetched["error"], 0)
        self.assertEqual(fetched["high_watermark"], COUNT)
        batches = vt.parse_record_batches(fetched["records"])
        self.assertTrue(batches)
        self.assertTrue(all(b["crc_ok"] for b in batches))
        self.assertEqual(batches[0]["codec"], expected_codec)
        if expected_codec == 0:
            records = vt.decode_records(batches[0])
            self.assertEqual(records[0][2:4], (messages[0][0].encode(), messages[0][1].encode()))
            self.assertEqual(records[0][4], [(k.encode(), v.encode()) for k, v in HEADERS])

    def test_codec_none(self):
        self.roundtrip("none")

    def test_codec_gzip(self):
        self.roundtrip("gzip")

    def test_codec_snappy(self):
        self.roundtrip("snappy")

    def test_codec_lz4(self):
        self.roundtrip("lz4")

    def test_codec_zstd(self):
        self.roundtrip("zstd")

    def test_list_metadata(self):
        c = self.cluster
        c.create_topic("kcat-listed", partitions=3, rf=1)
        text = vt.run_kcat(["-L", "-b", c.bootstrap, "-t", "kcat-listed"], timeout=60).stdout.decode()
        self.assertIn("1 brokers:", text)
        self.assertIn("broker 1 at 127.0.0.1:%d" % c.broker(1).port, text)
        self.assertIn('topic "kcat-listed" with 3 partitions:', text)
        listing = json.loads(vt.run_kcat(["-L", "-J", "-b", c.bootstrap], timeout=60).stdout)
        self.assertEqual([b["id"] for b in listing["brokers"]], [1])
        self.assertEqual(listing["brokers"][0]["name"], "127.0.0.1:%d" % c.broker(1).port)
        topics = {t["topic"]: t for t in listing["topics"]}
        self.assertIn("kcat-listed", topics)
        parts = sorted(topics["kcat-listed"]["partitions"], key=lambda p: p["partition"])
        self.assertEqual([p["partition"] for p in parts], [0, 1, 2])
        self.assertTrue(all(p["leader"] == 1 for p in parts))


class KcatAutoCreateTest(unittest.TestCase):
    def test_produce_auto_creates_through_any_broker(self):
        """kcat -P to a topic that does not exist, bootstrapped from a broker
        that is not the controller: auto.create.topics.enable creates it."""
        with vt.Cluster(brokers=2, name="kcat-autocreate") as c:
            not_controller = [b for b in c.brokers if b.id != c.controller_id()][0]
            bootstrap = "127.0.0.1:%d" % not_controller.port
            vt.run_kcat(["-P", "-b", bootstrap, "-t", "auto-made", "-K", ":", "-X", "message.timeout.ms=30000"],
                        input=b"a:1\nb:2\n", timeout=60)
            msgs = vt.kcat_consume(bootstrap, "auto-made", 2, timeout=60)
            self.assertEqual([(m["key"], m["payload"]) for m in msgs], [("a", "1"), ("b", "2")])
            self.assertIsNotNone(c.zk_get("/brokers/topics/auto-made"))


if __name__ == "__main__":
    unittest.main()
