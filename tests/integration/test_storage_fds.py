"""Bounded file descriptors (issue 10 §4): segment files are opened on
demand through one cache (log.max.open.files), so a broker holding 2,000
partition replicas with a bound of 256 keeps at most 256 segment files open
while every partition accepts a produce and serves it back in a fetch, and
a restart (recovery) stays within the bound too."""

import os
import unittest

import vltava_test as vt
from vltava_test import KafkaConnection, Reader, Writer

TOPICS = ["many-a", "many-b"]  # 1,000 partitions each, a topic's most
PER_TOPIC = 1000
PARTITIONS = PER_TOPIC * len(TOPICS)
BOUND = 256
# Besides the cache, each of the broker's two disk workers opens the file it
# fsyncs for the moment of the fsync (broker/log/log_disk.c).
DISK_WORKERS = 2
LIMIT = BOUND + DISK_WORKERS


def config(_broker_id):
    return {"log.max.open.files": BOUND, "num.partitions": 1, "default.replication.factor": 1}


def open_segment_files(broker):
    """(segment .log files under its data directory, all descriptors) the
    broker has open (its stdout, broker-N.log, is not a segment)."""
    logs = total = 0
    fd_dir = "/proc/%d/fd" % broker.pid
    for name in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, name))
        except OSError:
            continue  # closed meanwhile
        total += 1
        logs += target.startswith(broker.datadir + "/") and target.endswith(".log")
    return logs, total


def produce_all(port, topic, partitions, value):
    """One Produce v3 (acks=1) with one batch per partition: {partition: error}."""
    batches = {p: vt.build_record_batch([(None, value + b"-%d" % p)]) for p in partitions}
    body = (Writer().string(None).i16(1).i32(30000)
            .array([topic], lambda w, t: w.string(t).array(
                partitions, lambda w2, p: w2.i32(p).bytes_(batches[p])))
            .bytes())
    with KafkaConnection(port, timeout=120) as conn:
        r = Reader(conn.request(0, 3, body))
    out = {}
    for _topic in range(r.i32()):
        r.string()
        for _part in range(r.i32()):
            pid, err, _base, _ts = r.i32(), r.i16(), r.i64(), r.i64()
            out[pid] = err
    return out


class StorageFdsTest(unittest.TestCase):
    def test_many_partitions_stay_under_the_bound(self):
        with vt.Cluster(brokers=1, broker_config=config) as c:
            b = c.brokers[0]
            for topic in TOPICS:
                c.create_topic(topic, partitions=PER_TOPIC, rf=1, timeout=300)
            logs, total = open_segment_files(b)
            self.assertLessEqual(logs, LIMIT)
            for topic in TOPICS:
                for chunk in range(0, PER_TOPIC, 500):
                    parts = list(range(chunk, chunk + 500))
                    errors = produce_all(b.port, topic, parts, b"v")
                    self.assertEqual(errors, {p: 0 for p in parts})
                    self.assertLessEqual(open_segment_files(b)[0], LIMIT)
            with KafkaConnection(b.port, timeout=60) as conn:
                for topic in TOPICS:
                    for p in range(PER_TOPIC):
                        f = vt.raw_fetch(b.port, topic, p, 0, conn=conn)
                        self.assertEqual(f["error"], 0)
                        values = [v for batch in vt.parse_record_batches(f["records"])
                                  for _o, _ts, _k, v, _h in vt.decode_records(batch)]
                        self.assertEqual(values, [b"v-%d" % p], "%s-%d" % (topic, p))
                        if p % 250 == 0:
                            self.assertLessEqual(open_segment_files(b)[0], LIMIT)
            logs, total = open_segment_files(b)
            self.assertLessEqual(logs, LIMIT)
            print("broker with %d partitions: %d segment files open (bound %d), %d descriptors"
                  % (PARTITIONS, logs, BOUND, total))
            # A restart opens (and checks) every partition within the bound.
            b.stop()
            b.start()
            b.wait_ready(timeout=300)
            self.assertLessEqual(open_segment_files(b)[0], LIMIT)
            for topic in TOPICS:
                errors = produce_all(b.port, topic, [0, PER_TOPIC - 1], b"w")
                self.assertEqual(errors, {0: 0, PER_TOPIC - 1: 0})


if __name__ == "__main__":
    unittest.main()
