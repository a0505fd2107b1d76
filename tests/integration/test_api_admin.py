"""Issue 3 §3 and issue 4 §1/§3: CreateTopics, DeleteTopics,
CreatePartitions and DescribeConfigs through confluent_kafka's AdminClient
and kafka-python's KafkaAdminClient, every refusal (with its message) on raw
sockets, validate-only, and in a three-broker cluster NOT_CONTROLLER from a
non-controller and NOT_LEADER_OR_FOLLOWER from a non-leader."""

import unittest

import vltava_test as vt
from vltava_test import KafkaConnection, Reader, Writer

NONE = 0
UNKNOWN_TOPIC_OR_PARTITION = 3
NOT_LEADER_OR_FOLLOWER = 6
INVALID_TOPIC_EXCEPTION = 17
TOPIC_ALREADY_EXISTS = 36
INVALID_PARTITIONS = 37
INVALID_REPLICATION_FACTOR = 38
INVALID_REPLICA_ASSIGNMENT = 39
INVALID_CONFIG = 40
NOT_CONTROLLER = 41
INVALID_REQUEST = 42


def create_topics(port, version, topics, timeout_ms=30000, validate_only=False):
    """topics: [(name, partitions, rf, assignments, {config})]. Returns
    {name: (error, message)}."""
    def topic(w, t):
        name, partitions, rf, assignments, configs = t
        w.string(name).i32(partitions).i16(rf)
        w.array(assignments, lambda x, a: x.i32(a[0]).array(a[1], lambda y, b: y.i32(b)))
        w.array(sorted(configs.items()), lambda x, kv: x.string(kv[0]).string(kv[1]))

    w = Writer().array(topics, topic).i32(timeout_ms)
    if version >= 1:
        w.i8(1 if validate_only else 0)
    with KafkaConnection(port, timeout=60) as conn:
        r = Reader(conn.request(19, version, w.bytes()))
    if version >= 2:
        r.i32()
    out = {}
    for _ in range(r.i32()):
        name, err = r.string(), r.i16()
        out[name] = (err, r.string() if version >= 1 else None)
    assert r.remaining() == 0
    return out


def delete_topics(port, version, names, timeout_ms=30000):
    with KafkaConnection(port, timeout=60) as conn:
        r = Reader(conn.request(20, version, Writer().array(names, lambda w, n: w.string(n)).i32(timeout_ms).bytes()))
    if version >= 1:
        r.i32()
    out = dict(r.array(lambda x: (x.string(), x.i16())))
    assert r.remaining() == 0
    return out


def create_partitions(port, version, items, timeout_ms=30000, validate_only=False):
    """items: [(name, count, assignments or None)] -> {name: (error, message)}."""
    w = Writer().array(items, lambda x, t: x.string(t[0]).i32(t[1]).array(
        t[2], lambda y, a: y.array(a, lambda z, b: z.i32(b))))
    w.i32(timeout_ms).i8(1 if validate_only else 0)
    with KafkaConnection(port, timeout=60) as conn:
        r = Reader(conn.request(37, version, w.bytes()))
    r.i32()
    out = {}
    for _ in range(r.i32()):
        name, err, msg = r.string(), r.i16(), r.string()
        out[name] = (err, msg)
    assert r.remaining() == 0
    return out


def describe_configs(port, version, resources, synonyms=False):
    """resources: [(type, name, keys or None)] -> [(error, message, type,
    name, {key: entry})]."""
    w = Writer().array(resources, lambda x, r: x.i8(r[0]).string(r[1]).array(r[2], lambda y, k: y.string(k)))
    if version >= 1:
        w.i8(1 if synonyms else 0)
    with KafkaConnection(port, timeout=30) as conn:
        r = Reader(conn.request(32, version, w.bytes()))
    r.i32()

    def entry(x):
        e = {"name": x.string(), "value": x.string(), "read_only": x.i8()}
        if version == 0:
            e["is_default"] = x.i8()
        else:
            e["source"] = x.i8()
        e["sensitive"] = x.i8()
        if version >= 1:
            e["synonyms"] = x.array(lambda y: (y.string(), y.string(), y.i8()))
        return e

    out = []
    for _ in range(r.i32()):
        err, msg, rtype, name = r.i16(), r.string(), r.i8(), r.string()
        out.append((err, msg, rtype, name, {e["name"]: e for e in r.array(entry)}))
    assert r.remaining() == 0
    return out


class AdminTest(vt.SharedClusterTest):
    @classmethod
    def setUpClass(cls):
        cls.cluster = vt.Cluster(brokers=1, name="api-admin")
        cls.broker = cls.cluster.brokers[0]
        cls.port = cls.broker.port

    def wait_gone(self, name):
        vt.wait_for(lambda: name not in vt.raw_metadata(self.port, topics=None)["topics"]
                    and not vt.topic_dirs(self.broker, name), timeout=30,
                    what="%s gone from Metadata and from disk" % name)

    def test_confluent_lifecycle(self):
        from confluent_kafka.admin import ConfigResource, NewPartitions, NewTopic

        admin = self.cluster.admin()
        fs = admin.create_topics([NewTopic("adm-c", num_partitions=3, replication_factor=1,
                                           config={"retention.ms": "3600000"})], operation_timeout=30)
        fs["adm-c"].result(timeout=60)
        self.cluster.wait_topic_leaders("adm-c", 3)
        self.assertEqual(vt.topic_dirs(self.broker, "adm-c"), ["adm-c-0", "adm-c-1", "adm-c-2"])

        res = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, "adm-c")])
        configs = list(res.values())[0].result(timeout=30)
        self.assertEqual(configs["retention.ms"].value, "3600000")
        self.assertFalse(configs["retention.ms"].is_default)
        self.assertTrue(configs["segment.bytes"].is_default)
        self.assertIn("max.message.bytes", configs)

        fs = admin.create_partitions([NewPartitions("adm-c", 5)], operation_timeout=30)
        fs["adm-c"].result(timeout=60)
        self.cluster.wait_topic_leaders("adm-c", 5)

        fs = admin.delete_topics(["adm-c"], operation_timeout=30)
        fs["adm-c"].result(timeout=60)
        self.wait_gone("adm-c")
        # The name can be used again, empty.
        self.cluster.create_topic("adm-c", partitions=1, rf=1)
        self.assertEqual(vt.raw_list_offsets(self.port, "adm-c", 0, -1), (0, -1, 0))

    def test_confluent_errors(self):
        from confluent_kafka.admin import NewTopic

        admin = self.cluster.admin()
        self.cluster.create_topic("adm-exists", partitions=1, rf=1)
        cases = [(NewTopic("adm-exists", 1, 1), TOPIC_ALREADY_EXISTS),
                 (NewTopic("adm bad", 1, 1), INVALID_TOPIC_EXCEPTION),
                 (NewTopic("adm-badcfg", 1, 1, config={"retention.ms": "soon"}), INVALID_CONFIG),
                 (NewTopic("adm-rf", 1, 3), INVALID_REPLICATION_FACTOR)]
        for topic, code in cases:
            with self.subTest(topic=topic.topic):
                fs = admin.create_topics([topic], operation_timeout=30)
                with self.assertRaises(Exception) as cm:
                    fs[topic.topic].result(timeout=60)
                self.assertEqual(cm.exception.args[0].code(), code)

    def test_kafka_python_admin(self):
        from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewPartitions, NewTopic

        admin = KafkaAdminClient(bootstrap_servers=self.cluster.bootstrap, request_timeout_ms=30000)
        try:
            resp = admin.create_topics([NewTopic("adm-kp", 2, 1, topic_configs={"segment.bytes": "1048576"})],
                                       timeout_ms=30000)
            self.assertEqual([(t[0], t[1]) for t in resp.topic_errors], [("adm-kp", 0)])
            self.cluster.wait_topic_leaders("adm-kp", 2)
            resp = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "adm-kp")])
            entries = {e[0]: e[1] for e in resp[0].resources[0][4]}
            self.assertEqual(entries["segment.bytes"], "1048576")
            resp = admin.create_partitions({"adm-kp": NewPartitions(4)}, timeout_ms=30000)
            self.assertEqual([(t[0], t[1]) for t in resp.topic_errors], [("adm-kp", 0)])
            self.cluster.wait_topic_leaders("adm-kp", 4)
            resp = admin.delete_topics(["adm-kp"], timeout_ms=30000)
            self.assertEqual([(t[0], t[1]) for t in resp.topic_error_codes], [("adm-kp", 0)])
            self.wait_gone("adm-kp")
        finally:
            admin.close()

    def test_create_refusals_with_messages(self):
        self.cluster.create_topic("adm-there", partitions=1, rf=1)
        cases = {
            "adm there": ("adm there", 1, 1, [], {}, INVALID_TOPIC_EXCEPTION),
            "..": ("..", 1, 1, [], {}, INVALID_TOPIC_EXCEPTION),
            "adm-there": ("adm-there", 1, 1, [], {}, TOPIC_ALREADY_EXISTS),
            "adm-p0": ("adm-p0", 0, 1, [], {}, INVALID_PARTITIONS),
            "adm-pneg": ("adm-pneg", -5, 1, [], {}, INVALID_PARTITIONS),
            "adm-rf0": ("adm-rf0", 1, 0, [], {}, INVALID_REPLICATION_FACTOR),
            "adm-rf9": ("adm-rf9", 1, 9, [], {}, INVALID_REPLICATION_FACTOR),
            "adm-assign": ("adm-assign", -1, -1, [(0, [1])], {}, INVALID_REPLICA_ASSIGNMENT),
            "adm-cfg": ("adm-cfg", 1, 1, [], {"no.such.key": "1"}, INVALID_CONFIG),
            "adm-cfg2": ("adm-cfg2", 1, 1, [], {"cleanup.policy": "compact"}, INVALID_CONFIG),
        }
        topics = [c[:5] for c in cases.values()]
        for version in (0, 1, 4):
            with self.subTest(version=version):
                got = create_topics(self.port, version, topics)
                for name, case in cases.items():
                    err, msg = got[name]
                    self.assertEqual(err, case[5], name)
                    if version >= 1:
                        self.assertTrue(msg, "no message for %s" % name)
        for name in cases:
            if name not in ("adm-there", ".."):
                self.assertIsNone(self.cluster.zk_get("/brokers/topics/" + name))
        # The same name twice in one request: both refused.
        got = create_topics(self.port, 4, [("adm-dup", 1, 1, [], {})] * 2)
        self.assertEqual(got["adm-dup"][0], INVALID_REQUEST)
        self.assertIsNone(self.cluster.zk_get("/brokers/topics/adm-dup"))

    def test_validate_only(self):
        got = create_topics(self.port, 4, [("adm-dry", 2, 1, [], {"retention.ms": "1000"})], validate_only=True)
        self.assertEqual(got["adm-dry"][0], NONE)
        self.assertIsNone(self.cluster.zk_get("/brokers/topics/adm-dry"))
        self.assertNotIn("adm-dry", vt.raw_metadata(self.port, topics=None)["topics"])

    def test_delete_refusals(self):
        got = delete_topics(self.port, 3, ["adm-never", "bad name"])
        self.assertEqual(got, {"adm-never": UNKNOWN_TOPIC_OR_PARTITION, "bad name": INVALID_TOPIC_EXCEPTION})
        self.cluster.create_topic("adm-del0", partitions=1, rf=1)
        self.assertEqual(delete_topics(self.port, 0, ["adm-del0"]), {"adm-del0": NONE})
        self.wait_gone("adm-del0")

    def test_create_partitions_refusals(self):
        self.cluster.create_topic("adm-cp", partitions=3, rf=1)
        got = create_partitions(self.port, 1, [("adm-cp", 2, None)])
        self.assertEqual(got["adm-cp"][0], INVALID_PARTITIONS)
        self.assertIn("3", got["adm-cp"][1])
        self.assertEqual(create_partitions(self.port, 1, [("adm-cp", 3, None)])["adm-cp"][0], INVALID_PARTITIONS)
        self.assertEqual(create_partitions(self.port, 1, [("adm-cp", 4, [[1]])])["adm-cp"][0],
                         INVALID_REPLICA_ASSIGNMENT)
        self.assertEqual(create_partitions(self.port, 0, [("adm-none", 4, None)])["adm-none"][0],
                         UNKNOWN_TOPIC_OR_PARTITION)
        self.assertEqual(create_partitions(self.port, 1, [("adm-cp", 6, None)], validate_only=True)["adm-cp"][0],
                         NONE)
        self.assertEqual(len(vt.raw_metadata(self.port, topics=["adm-cp"])["topics"]["adm-cp"]["partitions"]), 3)
        self.assertEqual(create_partitions(self.port, 1, [("adm-cp", 6, None)])["adm-cp"][0], NONE)
        self.cluster.wait_topic_leaders("adm-cp", 6)

    def test_describe_configs_raw(self):
        self.cluster.create_topic("adm-dc", partitions=1, rf=1, config={"max.message.bytes": "5000"})
        for version in (0, 1, 2):
            with self.subTest(version=version):
                [(err, msg, rtype, name, entries)] = describe_configs(self.port, version, [(2, "adm-dc", None)], True)
                self.assertEqual((err, msg, rtype, name), (NONE, None, 2, "adm-dc"))
                e = entries["max.message.bytes"]
                self.assertEqual(e["value"], "5000")
                if version == 0:
                    self.assertEqual(e["is_default"], 0)
                    self.assertEqual(entries["retention.ms"]["is_default"], 1)
                else:
                    self.assertEqual(e["source"], 1)  # DYNAMIC_TOPIC_CONFIG
                    self.assertEqual(e["synonyms"], [("max.message.bytes", "5000", 1)])
        # Only the keys asked for.
        [(err, _m, _t, _n, entries)] = describe_configs(self.port, 1, [(2, "adm-dc", ["retention.ms"])])
        self.assertEqual((err, list(entries)), (NONE, ["retention.ms"]))
        # Unknown topic, bad name, unsupported resource type: per-resource errors.
        got = describe_configs(self.port, 1, [(2, "adm-nope", None), (2, "bad name", None), (3, "x", None)])
        self.assertEqual([g[0] for g in got], [UNKNOWN_TOPIC_OR_PARTITION, INVALID_TOPIC_EXCEPTION, INVALID_REQUEST])
        self.assertTrue(all(g[1] for g in got))

    def test_describe_broker_config(self):
        [(err, _msg, rtype, name, entries)] = describe_configs(self.port, 2, [(4, "1", None)])
        self.assertEqual((err, rtype, name), (NONE, 4, "1"))
        self.assertEqual(entries["broker.id"]["value"], "1")
        self.assertEqual(entries["log.dirs"]["value"], self.broker.datadir)
        self.assertTrue(entries["broker.id"]["read_only"])
        self.assertEqual(describe_configs(self.port, 2, [(4, "7", None)])[0][0], INVALID_REQUEST)


def produce_error(port, topic, partition):
    body = (Writer().string(None).i16(1).i32(10000).array(
        [topic], lambda w, t: w.string(t).array(
            [partition], lambda w2, p: w2.i32(p).bytes_(vt.build_record_batch([(b"k", b"v")])))).bytes())
    with KafkaConnection(port) as conn:
        r = Reader(conn.request(0, 3, body))
    r.i32(), r.string(), r.i32(), r.i32()
    return r.i16()


def fetch_error(port, topic, partition):
    body = (Writer().i32(-1).i32(0).i32(1).i32(1 << 20).i8(0).array(
        [topic], lambda w, t: w.string(t).array([partition], lambda w2, p: w2.i32(p).i64(0).i32(1 << 20))).bytes())
    with KafkaConnection(port) as conn:
        r = Reader(conn.request(1, 4, body))
    r.i32(), r.i32(), r.string(), r.i32(), r.i32()
    return r.i16()


class ClusterRoutingTest(vt.SharedClusterTest):
    @classmethod
    def setUpClass(cls):
        cls.cluster = vt.Cluster(brokers=3, name="api-routing")

    def test_not_controller(self):
        controller = self.cluster.controller_id()
        self.assertIn(controller, (1, 2, 3))
        for b in self.cluster.brokers:
            if b.id == controller:
                continue
            with self.subTest(broker=b.id):
                self.assertEqual(create_topics(b.port, 4, [("rt-nc", 1, 1, [], {})])["rt-nc"][0], NOT_CONTROLLER)
                self.assertEqual(delete_topics(b.port, 3, ["rt-nc"]), {"rt-nc": NOT_CONTROLLER})
                self.assertEqual(create_partitions(b.port, 1, [("rt-nc", 2, None)])["rt-nc"][0], NOT_CONTROLLER)
        self.assertIsNone(self.cluster.zk_get("/brokers/topics/rt-nc"))
        # The controller itself creates it.
        port = self.cluster.broker(controller).port
        self.assertEqual(create_topics(port, 4, [("rt-nc", 1, 1, [], {})])["rt-nc"][0], NONE)
        self.cluster.wait_topic_leaders("rt-nc", 1)

    def test_not_leader(self):
        self.cluster.create_topic("rt-lead", partitions=6, rf=1)
        md = vt.raw_metadata(self.cluster.brokers[0].port, topics=["rt-lead"])["topics"]["rt-lead"]
        for pid, p in md["partitions"].items():
            for b in self.cluster.brokers:
                with self.subTest(partition=pid, broker=b.id):
                    expect = NONE if b.id == p["leader"] else NOT_LEADER_OR_FOLLOWER
                    self.assertEqual(produce_error(b.port, "rt-lead", pid), expect)
                    self.assertEqual(fetch_error(b.port, "rt-lead", pid), expect)
                    err, _ts, _off = vt.raw_list_offsets(b.port, "rt-lead", pid, -1)
                    self.assertEqual(err, expect)

    def test_metadata_from_every_broker(self):
        self.cluster.create_topic("rt-md", partitions=3, rf=1)
        answers = [vt.raw_metadata(b.port, topics=["rt-md"]) for b in self.cluster.brokers]
        for md in answers:
            self.assertEqual(sorted(md["brokers"]), [1, 2, 3])
            self.assertEqual(md["controller_id"], answers[0]["controller_id"])
            self.assertEqual(md["topics"], answers[0]["topics"])
        leaders = sorted(p["leader"] for p in answers[0]["topics"]["rt-md"]["partitions"].values())
        self.assertEqual(leaders, [1, 2, 3])


if __name__ == "__main__":
    unittest.main()
