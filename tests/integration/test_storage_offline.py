"""Offline partitions (issue 10 §4): a broker that cannot open a partition's
log (here its directory was replaced by a regular file before a restart)
serves that partition to nobody: Produce, Fetch (v6 on) and ListOffsets
answer KAFKA_STORAGE_ERROR (56), Fetch v4 and v5 NOT_LEADER_OR_FOLLOWER (as
Kafka's maybeDownConvertStorageError: older clients take 56 as fatal), its log names the cause (the path and strerror),
the controller moves leadership to another in-sync replica and drops the
broker from the ISR, and every broker's Metadata (v5) lists it among the
partition's offline replicas. Its other partitions keep working, and a real
client produces and consumes the topic through the new leaders."""

import os
import shutil
import time
import unittest

import vltava_test as vt
from vltava_test import KafkaConnection, Reader, Writer

KAFKA_STORAGE_ERROR = 56
NOT_LEADER_OR_FOLLOWER = 6


def config(_broker_id):
    return {"min.insync.replicas": 2, "default.replication.factor": 3,
            "replica.lag.time.max.ms": 3000, "unclean.leader.election.enable": "false"}


def metadata_v5(port, topic):
    """{partition: {"leader", "replicas", "isr", "offline"}} of Metadata v5."""
    body = Writer().array([topic], lambda w, t: w.string(t)).i8(0).bytes()
    with KafkaConnection(port, timeout=10) as conn:
        r = Reader(conn.request(3, 5, body))
    r.i32()  # throttle
    r.array(lambda x: (x.i32(), x.string(), x.i32(), x.string()))
    r.string()  # cluster id
    r.i32()  # controller

    def partition(x):
        _err, pid, leader, _epoch = x.i16(), x.i32(), x.i32(), None
        replicas = x.array(lambda y: y.i32())
        isr = x.array(lambda y: y.i32())
        offline = x.array(lambda y: y.i32())
        return pid, {"leader": leader, "replicas": replicas, "isr": sorted(isr),
                     "offline": sorted(offline)}

    topics = dict(r.array(lambda x: (x.i16(), x.string(), x.i8(), dict(x.array(partition)))[1::2]))
    return topics[topic]


def produce_error(port, topic, partition, value):
    batch = vt.build_record_batch([(None, value)])
    with KafkaConnection(port, timeout=30) as conn:
        cid = vt.raw_produce(conn, topic, partition, batch, acks=-1, timeout_ms=10000)
        _cid, body = conn.recv(expect_cid=cid)
    return vt.read_produce_response(body)[(topic, partition)][0]


def fetch_error(port, topic, partition, version):
    """The partition's error in a Fetch v4, v5 or v6 answer (from offset 0)."""
    assert 4 <= version <= 6

    def part(w, p):
        w.i32(p).i64(0)
        if version >= 5:
            w.i64(-1)  # log_start_offset
        w.i32(1 << 20)
    body = (Writer().i32(-1).i32(0).i32(1).i32(1 << 20).i8(0)
            .array([topic], lambda w, t: w.string(t).array([partition], part)).bytes())
    with KafkaConnection(port, timeout=30) as conn:
        r = Reader(conn.request(1, version, body))
    r.i32()  # throttle time
    for _topic in range(r.i32()):
        r.string()
        for _part in range(r.i32()):
            pid, err, _hw, _lso = r.i32(), r.i16(), r.i64(), r.i64()
            if version >= 5:
                r.i64()  # log_start_offset
            r.array(lambda x: (x.i64(), x.i64()))
            r.bytes_()
            if pid == partition:
                return err
    raise AssertionError("Fetch answer without %s-%d" % (topic, partition))


class StorageOfflineTest(unittest.TestCase):
    def test_unopenable_partition_is_offline_and_leadership_moves(self):
        with vt.Cluster(brokers=3, broker_config=config) as c:
            c.create_topic("s", partitions=2, rf=3)
            md = metadata_v5(c.brokers[0].port, "s")
            victim = md[0]["leader"]
            vport = c.broker(victim).port
            self.assertEqual(produce_error(vport, "s", 0, b"before"), 0)
            c.broker(victim).stop()
            # The partition's directory becomes a regular file: opendir
            # fails with ENOTDIR, whoever runs the broker (root included).
            pdir = os.path.join(c.broker(victim).datadir, "s-0")
            shutil.rmtree(pdir)
            with open(pdir, "wb") as f:
                f.write(b"not a directory\n")
            c.broker(victim).start()
            c.broker(victim).wait_ready()
            others = [b.id for b in c.brokers if b.id != victim]

            def moved():
                for b in c.brokers:
                    p = metadata_v5(b.port, "s")[0]
                    if p["leader"] not in others or victim in p["isr"] or \
                            victim not in p["offline"]:
                        return False
                return True
            vt.wait_for(moved, timeout=60,
                        what="s-0 led elsewhere, broker %d out of the ISR and listed offline"
                        % victim)

            # The victim answers KAFKA_STORAGE_ERROR for s-0, on every path.
            self.assertEqual(produce_error(vport, "s", 0, b"refused"), KAFKA_STORAGE_ERROR)
            self.assertEqual(fetch_error(vport, "s", 0, 6), KAFKA_STORAGE_ERROR)
            self.assertEqual(fetch_error(vport, "s", 0, 5), NOT_LEADER_OR_FOLLOWER)
            self.assertEqual(vt.raw_fetch(vport, "s", 0, 0)["error"], NOT_LEADER_OR_FOLLOWER)
            self.assertEqual(vt.raw_list_offsets(vport, "s", 0, -1)[0], KAFKA_STORAGE_ERROR)
            log = c.broker(victim).log_text()
            self.assertIn("s-0: offline on this broker", log)
            self.assertIn("%s: Not a directory" % pdir, log)

            # Its other partition works: it is back in s-1's ISR.
            vt.wait_for(lambda: victim in metadata_v5(c.brokers[0].port, "s")[1]["isr"],
                        timeout=60, what="broker %d back in s-1's ISR" % victim)
            self.assertEqual(metadata_v5(vport, "s")[1]["offline"], [])

            # A real client, through the new leaders, acks=all.
            from confluent_kafka import Consumer, Producer
            p = Producer({"bootstrap.servers": c.bootstrap, "acks": "all",
                          "message.timeout.ms": 60000})
            delivered = []
            for i in range(40):
                p.produce("s", value=b"v-%d" % i, partition=i % 2,
                          on_delivery=lambda err, msg: delivered.append(err))
            self.assertEqual(p.flush(60), 0)
            self.assertEqual(delivered, [None] * 40)
            cons = Consumer({"bootstrap.servers": c.bootstrap, "group.id": "g-offline",
                             "auto.offset.reset": "earliest", "enable.auto.commit": False})
            cons.subscribe(["s"])
            got = []
            deadline = time.monotonic() + 60
            while len(got) < 41 and time.monotonic() < deadline:
                m = cons.poll(1.0)
                if m is not None and m.error() is None:
                    got.append(m.value())
            cons.close()
            self.assertEqual(sorted(got), sorted([b"before"] + [b"v-%d" % i for i in range(40)]))

    def test_failed_fsync_takes_the_partition_offline(self):
        """A partition whose fdatasync fails (an LD_PRELOAD shim fails it
        with EIO in a directory holding ".fail-fdatasync") goes offline on
        that broker at once and for good: no retry, KAFKA_STORAGE_ERROR to
        clients, the controller moves leadership and lists the replica
        offline, and the broker's log names the file and the error."""
        shim = vt.program_bin("libpreload_fail_fdatasync.so")
        saved = {k: os.environ.get(k) for k in ("LD_PRELOAD", "ASAN_OPTIONS")}
        os.environ["LD_PRELOAD"] = shim
        # The sanitizer runtime is then not first in the library list.
        os.environ["ASAN_OPTIONS"] = ":".join(
            x for x in (saved["ASAN_OPTIONS"], "verify_asan_link_order=0") if x)

        def flush_each(broker_id):
            return dict(config(broker_id), **{"log.flush.interval.messages": 1})
        try:
            with vt.Cluster(brokers=3, broker_config=flush_each) as c:
                c.create_topic("f", partitions=1, rf=3)
                victim = metadata_v5(c.brokers[0].port, "f")[0]["leader"]
                vport = c.broker(victim).port
                self.assertEqual(produce_error(vport, "f", 0, b"before"), 0)
                pdir = os.path.join(c.broker(victim).datadir, "f-0")
                open(os.path.join(pdir, ".fail-fdatasync"), "wb").close()
                # Its fsync fails; acks=all, so the followers hold it
                # whatever this answer is.
                produce_error(vport, "f", 0, b"during")
                others = [b.id for b in c.brokers if b.id != victim]

                def moved():
                    for b in c.brokers:
                        p = metadata_v5(b.port, "f")[0]
                        if p["leader"] not in others or victim in p["isr"] or \
                                victim not in p["offline"]:
                            return False
                    return True
                vt.wait_for(moved, timeout=60,
                            what="f-0 led elsewhere, broker %d out of the ISR and listed offline"
                            % victim)
                self.assertEqual(produce_error(vport, "f", 0, b"refused"), KAFKA_STORAGE_ERROR)
                self.assertEqual(fetch_error(vport, "f", 0, 6), KAFKA_STORAGE_ERROR)
                self.assertEqual(fetch_error(vport, "f", 0, 4), NOT_LEADER_OR_FOLLOWER)
                # The trigger gone, the partition stays offline here: a
                # retried fsync could "succeed" over pages the kernel dropped.
                os.unlink(os.path.join(pdir, ".fail-fdatasync"))
                self.assertEqual(produce_error(vport, "f", 0, b"still"), KAFKA_STORAGE_ERROR)
                self.assertIn(victim, metadata_v5(c.brokers[0].port, "f")[0]["offline"])
                log = c.broker(victim).log_text()
                self.assertIn("f-0: offline on this broker", log)
                self.assertRegex(log, r"f-0: fsync \S+\.(log|index|timeindex|txnindex): "
                                 r"Input/output error")
                leader = metadata_v5(c.brokers[0].port, "f")[0]["leader"]
                self.assertEqual(produce_error(c.broker(leader).port, "f", 0, b"after"), 0)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


if __name__ == "__main__":
    unittest.main()
