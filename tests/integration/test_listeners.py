"""Issue 9 part 2: named listeners. Three brokers, each with two listeners:
INTERNAL on 127.0.0.1 (the harness's port, advertised as bound, the
inter-broker listener) and EXTERNAL bound on every interface and advertised
as 127.0.0.2, as a Docker broker is reachable both on the compose network
and from the host. Broker 3 has a third listener, EXTRA, that the others
lack; broker 2 has HIDDEN, which advertised.listeners does not name.

Metadata and FindCoordinator (every version) through each listener answer
with that listener's endpoints only, and leave out brokers without it, as
Kafka does; advertised.listeners replaces the whole advertised list, so
HIDDEN is served but registered nowhere and answers through it name no
broker; the registration znode carries every advertised endpoint;
librdkafka clients produce through one listener and consume, in groups,
through either."""

import unittest

import group_helpers
import vltava_test as vt
from test_api_metadata import decode_metadata, metadata_request
from test_cluster import pb_parse

COORDINATOR_NOT_AVAILABLE = 15
LEADER_NOT_AVAILABLE = 5
REPLICA_NOT_AVAILABLE = 9
LISTENER_NOT_FOUND = 72
EXTERNAL_HOST = "127.0.0.2"
TOPIC = "listeners"
PARTITIONS = 6


def metadata(host, port, version, topics):
    with vt.KafkaConnection(port, host=host) as conn:
        return decode_metadata(version, conn.request(3, version, metadata_request(version, topics)))


def find_coordinators(host, port, version, groups):
    """FindCoordinator for groups at one version (v0-3: one request per
    group): {group: (error, node_id, host, port)}."""
    out = {}
    with vt.KafkaConnection(port, host=host) as conn:
        if version >= 4:
            e = vt.Enc(True).i8(0).array(groups, lambda w, g: w.str_(g)).tags()
            d = vt.Dec(conn.request(10, 4, e.bytes(), flexible=True), True)
            d.i32()  # throttle_time_ms

            def one(x):
                key, node, h, p, err = x.str_(), x.i32(), x.str_(), x.i32(), x.i16()
                x.str_()  # error message
                x.tags()
                return key, (err, node, h, p)

            out = dict(d.array(one))
            d.end("FindCoordinator v4")
            return out
        flexible = version >= 3
        for group in groups:
            e = vt.Enc(flexible).str_(group)
            if version >= 1:
                e.i8(0)
            e.tags()
            d = vt.Dec(conn.request(10, version, e.bytes(), flexible=flexible), flexible)
            if version >= 1:
                d.i32()
            err = d.i16()
            if version >= 1:
                d.str_()
            node, h, p = d.i32(), d.str_(), d.i32()
            d.end("FindCoordinator v%d" % version)
            out[group] = (err, node, h, p)
    return out


class ListenersTest(vt.SharedClusterTest):
    @classmethod
    def setUpClass(cls):
        config = dict(vt.GROUP_BROKER_CONFIG)
        config["listener.security.protocol.map"] = (
            "INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT,EXTRA:PLAINTEXT,HIDDEN:PLAINTEXT")
        config["inter.broker.listener.name"] = "INTERNAL"
        cls.cluster = vt.Cluster(brokers=3, name="listeners", broker_config=config, start=False)
        # listener -> {broker id: (host clients connect to, port)}
        cls.endpoints = {"INTERNAL": {}, "EXTERNAL": {}, "EXTRA": {}}
        cls.hidden_port = vt.free_port()  # broker 2's HIDDEN listener
        try:
            for b in cls.cluster.brokers:
                ext, extra = vt.free_port(), vt.free_port()
                listeners = "INTERNAL://127.0.0.1:%d,EXTERNAL://0.0.0.0:%d" % (b.port, ext)
                # Set, advertised.listeners is the whole list: INTERNAL (the
                # inter-broker listener) must be in it.
                advertised = "INTERNAL://127.0.0.1:%d,EXTERNAL://%s:%d" % (b.port, EXTERNAL_HOST, ext)
                if b.id == 3:
                    listeners += ",EXTRA://127.0.0.1:%d" % extra
                    advertised += ",EXTRA://127.0.0.1:%d" % extra
                    cls.endpoints["EXTRA"][b.id] = ("127.0.0.1", extra)
                if b.id == 2:
                    listeners += ",HIDDEN://127.0.0.1:%d" % cls.hidden_port
                b.config["listeners"] = listeners
                b.config["advertised.listeners"] = advertised
                cls.endpoints["INTERNAL"][b.id] = ("127.0.0.1", b.port)
                cls.endpoints["EXTERNAL"][b.id] = (EXTERNAL_HOST, ext)
                b.start()
            cls.cluster.wait_ready()
            cls.cluster.create_topic(TOPIC, partitions=PARTITIONS, rf=3)
        except BaseException:
            cls.cluster.close(failed=True)
            raise

    def leaders(self):
        """{partition: leader} of TOPIC, from INTERNAL metadata."""
        t = metadata("127.0.0.1", self.cluster.brokers[0].port, 1, [TOPIC])["topics"][TOPIC]
        return {p: v["leader"] for p, v in t["partitions"].items()}

    def test_metadata_answers_with_the_listeners_endpoints(self):
        leaders = self.leaders()
        self.assertEqual(set(leaders.values()), {1, 2, 3}, "preferred leaders spread over the brokers")
        for name in ("INTERNAL", "EXTERNAL"):
            for node, (host, port) in self.endpoints[name].items():
                for version in (0, 1, 6, 8):
                    with self.subTest(listener=name, via=node, version=version):
                        md = metadata(host, port, version, [TOPIC])
                        got = {i: (h, p) for i, (h, p, _rack) in md["brokers"].items()}
                        self.assertEqual(got, self.endpoints[name])
                        parts = md["topics"][TOPIC]["partitions"]
                        self.assertEqual({p: v["leader"] for p, v in parts.items()}, leaders)
                        self.assertTrue(all(v["error"] == 0 for v in parts.values()))

    def test_broker_without_the_listener_is_left_out(self):
        leaders = self.leaders()
        host, port = self.endpoints["EXTRA"][3]
        for version in (0, 1, 5, 6, 8):
            with self.subTest(version=version):
                md = metadata(host, port, version, [TOPIC])
                self.assertEqual({i: (h, p) for i, (h, p, _r) in md["brokers"].items()}, self.endpoints["EXTRA"])
                for pid, p in md["topics"][TOPIC]["partitions"].items():
                    if version == 0:
                        # Kafka's v0 lists only the replicas reachable on the
                        # listener, and says so when it dropped some.
                        self.assertEqual((p["replicas"], p["isr"]), ([3], [3]))
                    else:
                        self.assertEqual(sorted(p["replicas"]), [1, 2, 3])
                    if leaders[pid] == 3:
                        self.assertEqual((p["error"], p["leader"]), (REPLICA_NOT_AVAILABLE if version == 0 else 0, 3))
                    else:
                        # Kafka: a live leader without the listener.
                        want = LISTENER_NOT_FOUND if version >= 6 else LEADER_NOT_AVAILABLE
                        self.assertEqual((p["error"], p["leader"]), (want, -1))

    def test_listener_not_advertised_names_no_broker(self):
        """Kafka answers a request on a listener that no broker advertises
        like one on a listener the leaders lack: no brokers, every leader
        -1 (LISTENER_NOT_FOUND from v6, LEADER_NOT_AVAILABLE before)."""
        for version in (1, 5, 6, 8):
            with self.subTest(version=version):
                md = metadata("127.0.0.1", self.hidden_port, version, [TOPIC])
                self.assertEqual(md["brokers"], {})
                want = LISTENER_NOT_FOUND if version >= 6 else LEADER_NOT_AVAILABLE
                parts = md["topics"][TOPIC]["partitions"]
                self.assertEqual(len(parts), PARTITIONS)
                for p in parts.values():
                    self.assertEqual((p["error"], p["leader"]), (want, -1))

    def coordinators(self, groups):
        """{group: coordinator id}, once every group has one (INTERNAL)."""
        port = self.cluster.brokers[0].port

        def ask():
            got = find_coordinators("127.0.0.1", port, 4, groups)
            if all(err == 0 for err, _n, _h, _p in got.values()):
                return {g: node for g, (_e, node, _h, _p) in got.items()}
            return None

        return vt.wait_for(ask, timeout=90, what="coordinators for %d groups" % len(groups))

    def test_find_coordinator_answers_with_the_listeners_endpoint(self):
        groups = ["listener-group-%d" % i for i in range(30)]
        owner = self.coordinators(groups)
        self.assertEqual(set(owner.values()), {1, 2, 3}, "coordinators spread over the brokers")
        for name in ("INTERNAL", "EXTERNAL"):
            for node, (host, port) in self.endpoints[name].items():
                for version in range(5):
                    with self.subTest(listener=name, via=node, version=version):
                        got = find_coordinators(host, port, version, groups)
                        want = {g: (0, owner[g]) + self.endpoints[name][owner[g]] for g in groups}
                        self.assertEqual(got, want)
        # On EXTRA only broker 3 has an endpoint: the other coordinators are
        # not available there.
        host, port = self.endpoints["EXTRA"][3]
        for version in (0, 3, 4):
            with self.subTest(listener="EXTRA", version=version):
                got = find_coordinators(host, port, version, groups)
                for g in groups:
                    if owner[g] == 3:
                        self.assertEqual(got[g], (0, 3) + self.endpoints["EXTRA"][3])
                    else:
                        self.assertEqual(got[g][:2], (COORDINATOR_NOT_AVAILABLE, -1))
        # On HIDDEN no coordinator has an endpoint.
        for version in (0, 3, 4):
            with self.subTest(listener="HIDDEN", version=version):
                got = find_coordinators("127.0.0.1", self.hidden_port, version, groups)
                self.assertEqual({g: v[:2] for g, v in got.items()},
                                 {g: (COORDINATOR_NOT_AVAILABLE, -1) for g in groups})

    def test_registration_carries_every_advertised_endpoint(self):
        for b in self.cluster.brokers:
            with self.subTest(broker=b.id):
                reg = pb_parse(self.cluster.zk_get("/brokers/ids/%d" % b.id))
                # host and port: the inter-broker listener's, INTERNAL.
                self.assertEqual((reg[2][0].decode(), reg[3][0]), self.endpoints["INTERNAL"][b.id])
                endpoints = {}
                for raw in reg[7]:
                    e = pb_parse(raw)
                    endpoints[e[1][0].decode()] = (e[2][0].decode(), e[3][0], e[4][0].decode())
                # HIDDEN (broker 2) is not advertised, so not registered.
                want = {name: eps[b.id] + ("PLAINTEXT",) for name, eps in self.endpoints.items() if b.id in eps}
                self.assertEqual(endpoints, want)

    def test_startup_lines_name_every_listener(self):
        b = self.cluster.broker(3)
        ext = self.endpoints["EXTERNAL"][3][1]
        extra = self.endpoints["EXTRA"][3][1]
        for line in ("INTERNAL on 127.0.0.1:%d (advertised 127.0.0.1:%d, inter-broker)" % (b.port, b.port),
                     "EXTERNAL on 0.0.0.0:%d (advertised %s:%d)" % (ext, EXTERNAL_HOST, ext),
                     "EXTRA on 127.0.0.1:%d (advertised 127.0.0.1:%d)" % (extra, extra)):
            self.assertIn("broker 3 serving Kafka listener " + line + "\n", b.log_text())
        self.assertIn("broker 2 serving Kafka listener HIDDEN on 127.0.0.1:%d (not advertised)\n" % self.hidden_port,
                      self.cluster.broker(2).log_text())

    def test_clients_produce_through_one_listener_and_consume_through_the_other(self):
        external = ",".join("%s:%d" % hp for hp in self.endpoints["EXTERNAL"].values())
        internal = ",".join("%s:%d" % hp for hp in self.endpoints["INTERNAL"].values())
        # What a client bootstrapped on EXTERNAL learns: EXTERNAL addresses.
        from confluent_kafka.admin import AdminClient

        md = AdminClient({"bootstrap.servers": external}).list_topics(timeout=30)
        self.assertEqual({i: (b.host, b.port) for i, b in md.brokers.items()}, self.endpoints["EXTERNAL"])
        values = group_helpers.produce(external, TOPIC, "ext", 0, 300, PARTITIONS)
        for name, bootstrap in (("INTERNAL", internal), ("EXTERNAL", external)):
            with self.subTest(consumer_listener=name):
                events = vt.run_client("ck_consumer.py",
                                       ["--bootstrap", bootstrap, "--group", "listeners-%s" % name.lower(),
                                        "--topic", TOPIC, "--count", len(values), "-X", "auto.offset.reset=earliest"],
                                       logdir=self.cluster.tmpdir, name="consumer-%s" % name.lower(), timeout=180)
                got = [item[3] for e in events if e["ev"] == "records" for item in e["items"]]
                self.assertEqual(sorted(got), sorted(values))


if __name__ == "__main__":
    unittest.main()
