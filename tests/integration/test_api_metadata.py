"""Issue 3 §3: Metadata v0, v1, v4 and v8 decoded field by field, auto topic
creation (allowed, refused by the client flag, disabled by the broker), and
ListOffsets v0/v1/v4 earliest, latest and by timestamp, on raw sockets."""

import unittest

import vltava_test as vt
from vltava_test import KafkaConnection, Reader, Writer

INT32_MIN = -(2 ** 31)
UNKNOWN_TOPIC_OR_PARTITION = 3
LEADER_NOT_AVAILABLE = 5
REPLICA_NOT_AVAILABLE = 9
INVALID_TOPIC_EXCEPTION = 17


def metadata_request(version, topics, allow_auto_create=True):
    w = Writer()
    w.array(topics, lambda x, t: x.string(t))
    if version >= 4:
        w.i8(1 if allow_auto_create else 0)
    if version >= 8:
        w.i8(0).i8(0)
    return w.bytes()


def decode_metadata(version, body):
    """The whole Metadata answer as a dict; fails if a byte is left over."""
    r = Reader(body)
    out = {}
    if version >= 3:
        out["throttle"] = r.i32()
    brokers = {}
    for _ in range(r.i32()):
        node, host, port = r.i32(), r.string(), r.i32()
        rack = r.string() if version >= 1 else "absent"
        brokers[node] = (host, port, rack)
    out["brokers"] = brokers
    if version >= 2:
        out["cluster_id"] = r.string()
    if version >= 1:
        out["controller_id"] = r.i32()
    topics = {}
    for _ in range(r.i32()):
        t = {"error": r.i16(), "name": r.string()}
        if version >= 1:
            t["internal"] = r.i8()
        parts = {}
        for _ in range(r.i32()):
            p = {"error": r.i16(), "id": r.i32(), "leader": r.i32()}
            if version >= 7:
                p["leader_epoch"] = r.i32()
            p["replicas"] = r.array(lambda x: x.i32())
            p["isr"] = r.array(lambda x: x.i32())
            if version >= 5:
                p["offline"] = r.array(lambda x: x.i32())
            parts[p["id"]] = p
        t["partitions"] = parts
        if version >= 8:
            t["authorized_ops"] = r.i32()
        topics[t["name"]] = t
    out["topics"] = topics
    if version >= 8:
        out["cluster_authorized_ops"] = r.i32()
    assert r.remaining() == 0, "%d bytes left after Metadata v%d" % (r.remaining(), version)
    return out


def metadata(port, version, topics, allow_auto_create=True):
    with KafkaConnection(port) as conn:
        return decode_metadata(version, conn.request(3, version, metadata_request(version, topics, allow_auto_create)))


class MetadataTest(vt.SharedClusterTest):
    @classmethod
    def setUpClass(cls):
        cls.cluster = vt.Cluster(brokers=1, name="api-metadata")
        cls.port = cls.cluster.brokers[0].port
        cls.cluster.create_topic("md-three", partitions=3, rf=1)

    def check_topic(self, t, version):
        self.assertEqual(t["error"], 0)
        self.assertEqual(sorted(t["partitions"]), [0, 1, 2])
        for pid, p in t["partitions"].items():
            self.assertEqual(p["error"], 0)
            self.assertEqual(p["leader"], 1)
            self.assertEqual(p["replicas"], [1])
            self.assertEqual(p["isr"], [1])
            if version >= 5:
                self.assertEqual(p["offline"], [])
            if version >= 7:
                self.assertGreaterEqual(p["leader_epoch"], 0)
        if version >= 1:
            self.assertEqual(t["internal"], 0)
        if version >= 8:
            self.assertEqual(t["authorized_ops"], INT32_MIN)

    def test_versions_decode(self):
        for version in (0, 1, 4, 8):
            with self.subTest(version=version):
                md = metadata(self.port, version, ["md-three"])
                self.assertEqual(md["brokers"], {1: ("127.0.0.1", self.port, None if version >= 1 else "absent")})
                if version >= 1:
                    self.assertEqual(md["controller_id"], 1)
                if version >= 2:
                    self.assertTrue(md["cluster_id"])
                if version >= 8:
                    self.assertEqual(md["cluster_authorized_ops"], INT32_MIN)
                self.assertEqual(list(md["topics"]), ["md-three"])
                self.check_topic(md["topics"]["md-three"], version)

    def test_all_topics(self):
        # v0: an empty list means every topic; v1+: a null list does.
        for version, topics in ((0, []), (1, None), (8, None)):
            with self.subTest(version=version):
                md = metadata(self.port, version, topics, allow_auto_create=False)
                self.assertIn("md-three", md["topics"])
                self.check_topic(md["topics"]["md-three"], version)
        # v1+: an empty list asks for no topic at all.
        self.assertEqual(metadata(self.port, 1, [])["topics"], {})

    def test_cluster_id_matches_zookeeper(self):
        md = metadata(self.port, 2, [])
        self.assertIsNotNone(self.cluster.zk_get("/cluster/id"))
        self.assertEqual(md["cluster_id"], self.cluster.metadata()["cluster_id"])

    def test_auto_create(self):
        md = metadata(self.port, 4, ["md-auto"])
        self.assertIn(md["topics"]["md-auto"]["error"], (0, LEADER_NOT_AVAILABLE))

        def created():
            t = metadata(self.port, 1, ["md-auto"])["topics"]["md-auto"]
            return t["error"] == 0 and t["partitions"] and all(p["leader"] == 1 for p in t["partitions"].values())

        vt.wait_for(created, timeout=30, what="md-auto to be auto-created with a leader")
        self.assertIsNotNone(self.cluster.zk_get("/brokers/topics/md-auto"))
        # v0 always allows it.
        metadata(self.port, 0, ["md-auto-v0"])
        vt.wait_for(lambda: metadata(self.port, 1, ["md-auto-v0"])["topics"]["md-auto-v0"]["error"] == 0,
                    timeout=30, what="md-auto-v0 to be auto-created")

    def test_auto_create_refused_by_client(self):
        md = metadata(self.port, 4, ["md-no-auto"], allow_auto_create=False)
        self.assertEqual(md["topics"]["md-no-auto"]["error"], UNKNOWN_TOPIC_OR_PARTITION)
        self.assertEqual(md["topics"]["md-no-auto"]["partitions"], {})
        # Nothing was asked of the coordinator.
        self.assertIsNone(self.cluster.zk_get("/brokers/topics/md-no-auto"))

    def test_invalid_name(self):
        for name in ("bad name", "..", "x" * 250):
            with self.subTest(name=name[:20]):
                md = metadata(self.port, 4, [name])
                self.assertEqual(md["topics"][name]["error"], INVALID_TOPIC_EXCEPTION)
        self.assertEqual(self.cluster.zk_children("/brokers/topics").count("bad name"), 0)


class AutoCreateDisabledTest(unittest.TestCase):
    def test_disabled_by_broker(self):
        with vt.Cluster(brokers=1, broker_config={"auto.create.topics.enable": "false"}) as c:
            md = metadata(c.brokers[0].port, 1, ["md-never"])
            self.assertEqual(md["topics"]["md-never"]["error"], UNKNOWN_TOPIC_OR_PARTITION)
            md = metadata(c.brokers[0].port, 0, ["md-never"])
            self.assertEqual(md["topics"]["md-never"]["error"], UNKNOWN_TOPIC_OR_PARTITION)
            self.assertIsNone(c.zk_get("/brokers/topics/md-never"))


class BrokersNotLiveTest(unittest.TestCase):
    def test_leader_and_replicas_not_live(self):
        """Kafka's answers (ZkMetadataCache) for partitions naming a broker
        that is not live: leader -1 with LEADER_NOT_AVAILABLE where the
        leader is gone; from v0 alone, the replica and ISR lists without
        it and REPLICA_NOT_AVAILABLE where the leader is live. The
        controller is frozen (SIGSTOP; its session, 30 s, outlives the
        test) before broker A leaves, so the partition states keep naming
        A while broker B's cache already lacks it."""
        config = {"zookeeper.session.timeout.ms": "30000"}
        with vt.Cluster(brokers=3, name="md-not-live", broker_config=config) as c:
            c.create_topic("md-one", partitions=6, rf=1)
            c.create_topic("md-two", partitions=6, rf=2)
            controller = c.controller_id()
            a, b = [x.id for x in c.brokers if x.id != controller]
            port = c.broker(b).port
            before = metadata(port, 1, ["md-one", "md-two"])["topics"]
            c.broker(controller).pause()
            try:
                self.assertEqual(c.broker(a).stop(), 0)
                vt.wait_for(lambda: a not in metadata(port, 1, [])["brokers"], timeout=30,
                            what="broker %d to leave broker %d's metadata" % (a, b))
                for version in (0, 1, 6):
                    with self.subTest(version=version):
                        topics = metadata(port, version, ["md-one", "md-two"])["topics"]
                        self.check_not_live(version, a, before, topics)
            finally:
                c.broker(controller).resume()

    def check_not_live(self, version, gone, before, topics):
        seen = set()
        for name in ("md-one", "md-two"):
            for pid, p in topics[name]["partitions"].items():
                old = before[name]["partitions"][pid]
                # The controller is frozen: nothing moved.
                self.assertEqual(sorted(p["replicas"]) if version else p["replicas"],
                                 sorted(old["replicas"]) if version else [r for r in old["replicas"] if r != gone])
                if old["leader"] == gone:
                    seen.add("leader gone")
                    self.assertEqual((p["error"], p["leader"]), (LEADER_NOT_AVAILABLE, -1))
                elif gone in old["replicas"]:
                    seen.add("replica gone")
                    self.assertEqual((p["error"], p["leader"]),
                                     (REPLICA_NOT_AVAILABLE if version == 0 else 0, old["leader"]))
                    if version == 0:
                        self.assertNotIn(gone, p["isr"])
                else:
                    self.assertEqual((p["error"], p["leader"]), (0, old["leader"]))
        # Six partitions of rf 1 and six of rf 2 over three brokers: each
        # case occurs.
        self.assertEqual(seen, {"leader gone", "replica gone"})


class FindCoordinatorTest(unittest.TestCase):
    def test_fewer_brokers_than_offsets_replicas(self):
        """offsets.topic.replication.factor is 3 (Kafka's default) and one
        broker is live: __consumer_offsets cannot be created, so every group
        key answers COORDINATOR_NOT_AVAILABLE, node -1, in the layout of each
        version (as Kafka does), and keeps answering so; transaction keys
        answer it too (no transaction coordinator yet). The API stays
        advertised from v0: librdkafka enables lz4 on it (test_clients_kcat
        checks that side)."""
        with vt.Cluster(brokers=1) as c:
            port = c.brokers[0].port
            self.assertEqual(vt.api_versions(port)[10], (0, 4))
            with KafkaConnection(port) as conn:
                for _ in range(3):
                    r = Reader(conn.request(10, 0, Writer().string("group-a").bytes()))
                    self.assertEqual((r.i16(), r.i32(), r.string(), r.i32(), r.remaining()), (15, -1, "", -1, 0))
                for version in (1, 2):
                    for key_type in (0, 1):
                        r = Reader(conn.request(10, version, Writer().string("k").i8(key_type).bytes()))
                        throttle, err, msg = r.i32(), r.i16(), r.string()
                        self.assertEqual((throttle, err), (0, 15))
                        self.assertTrue(msg)
                        self.assertEqual((r.i32(), r.string(), r.i32(), r.remaining()), (-1, "", -1, 0))
            md = vt.raw_metadata(port)
            self.assertNotIn("__consumer_offsets", md["topics"])


def list_offsets_answer(port, version, topic, partition, timestamp, max_num_offsets=1, current_leader_epoch=-1):
    """ListOffsets at `version` for one partition: a dict of its fields."""
    w = Writer().i32(-1)
    if version >= 2:
        w.i8(0)

    def part(x, p):
        x.i32(p)
        if version >= 4:
            x.i32(current_leader_epoch)
        x.i64(timestamp)
        if version == 0:
            x.i32(max_num_offsets)

    w.array([topic], lambda x, t: x.string(t).array([partition], part))
    with KafkaConnection(port) as conn:
        r = Reader(conn.request(2, version, w.bytes()))
    if version >= 2:
        r.i32()
    assert r.i32() == 1
    assert r.string() == topic
    assert r.i32() == 1
    out = {"partition": r.i32(), "error": r.i16()}
    if version == 0:
        out["offsets"] = r.array(lambda x: x.i64())
    else:
        out["timestamp"] = r.i64()
        out["offset"] = r.i64()
        if version >= 4:
            out["leader_epoch"] = r.i32()
    assert r.remaining() == 0
    return out


class ListOffsetsTest(vt.SharedClusterTest):
    @classmethod
    def setUpClass(cls):
        cls.cluster = vt.Cluster(brokers=1, name="api-list-offsets")
        cls.port = cls.cluster.brokers[0].port
        cls.cluster.create_topic("lo", partitions=1, rf=1)
        # Three batches of 2 records at known times: offsets 0-1 @1000,1001;
        # 2-3 @2000,2001; 4-5 @3000,3001.
        with KafkaConnection(cls.port) as conn:
            for base in (1000, 2000, 3000):
                batch = vt.build_record_batch([(b"k", b"v1"), (b"k", b"v2")], base_timestamp=base)
                conn.send(0, 3, Writer().string(None).i16(-1).i32(10000).array(
                    ["lo"], lambda w, t: w.string(t).array([0], lambda w2, p: w2.i32(p).bytes_(batch))).bytes())
                r = Reader(conn.recv()[1])
                r.i32(), r.string(), r.i32()
                r.i32()
                assert r.i16() == 0

    def test_earliest_latest(self):
        for version in (1, 2, 4, 5):
            with self.subTest(version=version):
                a = list_offsets_answer(self.port, version, "lo", 0, -2)
                self.assertEqual((a["error"], a["offset"], a["timestamp"]), (0, 0, -1))
                a = list_offsets_answer(self.port, version, "lo", 0, -1)
                self.assertEqual((a["error"], a["offset"], a["timestamp"]), (0, 6, -1))
                if version >= 4:
                    self.assertGreaterEqual(a["leader_epoch"], 0)

    def test_by_time(self):
        # Batch boundaries only: whether a lookup inside a batch names the
        # batch or the record is the log's choice, both valid for clients.
        cases = [(0, 0, 1000), (1000, 0, 1000), (1500, 2, 2000), (2000, 2, 2000), (2500, 4, 3000),
                 (3000, 4, 3000), (3002, -1, None)]
        for ts, offset, batch_ts in cases:
            with self.subTest(ts=ts):
                for version in (1, 4):
                    a = list_offsets_answer(self.port, version, "lo", 0, ts)
                    self.assertEqual(a["error"], 0)
                    self.assertEqual(a["offset"], offset)
                    if batch_ts is None:
                        self.assertEqual(a["timestamp"], -1)
                    else:
                        self.assertIn(a["timestamp"], (batch_ts, batch_ts + 1))
                        self.assertGreaterEqual(a["timestamp"], ts)

    def test_v0_old_form(self):
        self.assertEqual(list_offsets_answer(self.port, 0, "lo", 0, -1)["offsets"], [6])
        self.assertEqual(list_offsets_answer(self.port, 0, "lo", 0, -2)["offsets"], [0])
        self.assertEqual(list_offsets_answer(self.port, 0, "lo", 0, -1, max_num_offsets=0)["offsets"], [])

    def test_leader_epoch_fencing(self):
        epoch = list_offsets_answer(self.port, 4, "lo", 0, -1)["leader_epoch"]
        self.assertEqual(list_offsets_answer(self.port, 4, "lo", 0, -1, current_leader_epoch=epoch)["error"], 0)
        self.assertEqual(list_offsets_answer(self.port, 4, "lo", 0, -1, current_leader_epoch=epoch + 5)["error"],
                         75)  # UNKNOWN_LEADER_EPOCH
        if epoch > 0:
            self.assertEqual(list_offsets_answer(self.port, 4, "lo", 0, -1, current_leader_epoch=epoch - 1)["error"],
                             74)  # FENCED_LEADER_EPOCH

    def test_unknown(self):
        self.assertEqual(list_offsets_answer(self.port, 1, "lo", 7, -1)["error"], UNKNOWN_TOPIC_OR_PARTITION)
        self.assertEqual(list_offsets_answer(self.port, 1, "no-such-topic", 0, -1)["error"],
                         UNKNOWN_TOPIC_OR_PARTITION)

    def test_kafka_python_offsets_for_times(self):
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=self.cluster.bootstrap, group_id=None, request_timeout_ms=30000)
        try:
            tp = TopicPartition("lo", 0)
            found = consumer.offsets_for_times({tp: 1500})[tp]
            self.assertEqual(found.offset, 2)
            self.assertIn(found.timestamp, (2000, 2001))
            self.assertEqual(consumer.beginning_offsets([tp])[tp], 0)
            self.assertEqual(consumer.end_offsets([tp])[tp], 6)
        finally:
            consumer.close()


if __name__ == "__main__":
    unittest.main()
