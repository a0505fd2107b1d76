"""Issue 4 §1, §2, §3 and §5: a three-broker cluster coordinated through
ZooKeeper. Leaders spread over the brokers, clients produce and consume
through any bootstrap broker, the controller fails over, a lost broker's
partitions go offline and come back with their data, deleted topics vanish
from every broker's metadata and disk, and a deposed controller can change
nothing (its ZooKeeper writes are fenced, its stale RPCs ignored)."""

import socket
import struct
import time
import unittest

import vltava_test as vt
from vltava_test import KafkaConnection, Reader, Writer

STALE_CONTROLLER_EPOCH = 11
LEADER_NOT_AVAILABLE = 5


# ---------------------------------------------------------------------------
# Metadata v7 on a raw socket: leader epochs and offline replicas included.


def metadata_v7(port, topics=None, timeout=5):
    body = Writer().array(topics, lambda w, t: w.string(t)).i8(0).bytes()
    with KafkaConnection(port, timeout=timeout) as conn:
        r = Reader(conn.request(3, 7, body))
    r.i32()  # throttle
    brokers = {}
    for node, host, bport, rack in r.array(lambda x: (x.i32(), x.string(), x.i32(), x.string())):
        brokers[node] = (host, bport, rack)
    cluster_id = r.string()
    controller = r.i32()

    def partition(x):
        err, pid, leader, epoch = x.i16(), x.i32(), x.i32(), x.i32()
        replicas = x.array(lambda y: y.i32())
        isr = x.array(lambda y: y.i32())
        offline = x.array(lambda y: y.i32())
        return pid, {"error": err, "leader": leader, "leader_epoch": epoch, "replicas": replicas,
                     "isr": isr, "offline": offline}

    def topic(x):
        err, name, _internal = x.i16(), x.string(), x.i8()
        return name, {"error": err, "partitions": dict(x.array(partition))}

    topics_out = dict(r.array(topic))
    return {"brokers": brokers, "cluster_id": cluster_id, "controller_id": controller,
            "topics": topics_out}


# ---------------------------------------------------------------------------
# Just enough protobuf (proto/*.proto) to read znodes and speak the RPC.


def pb_varint(v):
    if v < 0:
        v += 1 << 64
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def pb_field_varint(num, v):
    return pb_varint(num << 3) + pb_varint(v)


def pb_field_bytes(num, b):
    if isinstance(b, str):
        b = b.encode()
    return pb_varint((num << 3) | 2) + pb_varint(len(b)) + b


def pb_read_varint(data, pos):
    """(value, position after it) of the varint at data[pos]."""
    shift = value = 0
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def pb_parse(data):
    """{field: [values]}: varints as ints (int32 sign restored), length-
    delimited as bytes."""
    fields = {}
    pos = 0
    while pos < len(data):
        key, pos = pb_read_varint(data, pos)
        num, wire = key >> 3, key & 7
        if wire == 0:
            v, pos = pb_read_varint(data, pos)
            if v >= 1 << 63:
                v -= 1 << 64
            fields.setdefault(num, []).append(v)
        elif wire == 2:
            n, pos = pb_read_varint(data, pos)
            fields.setdefault(num, []).append(bytes(data[pos:pos + n]))
            pos += n
        else:
            raise ValueError("unexpected wire type %d" % wire)
    return fields


def pb_packed_ints(fields, num):
    """A repeated int32 field, packed or not."""
    out = []
    for v in fields.get(num, []):
        if isinstance(v, bytes):
            out.extend(x for x in pb_parse_packed(v))
        else:
            out.append(v)
    return out


def pb_parse_packed(b):
    pos = 0
    while pos < len(b):
        value, pos = pb_read_varint(b, pos)
        yield value


def wait_controller_change(brokers, old, timeout, what):
    """Waits until every broker in brokers names the same controller, one
    other than old."""
    def changed():
        ids = {metadata_v7(b.port)["controller_id"] for b in brokers}
        return len(ids) == 1 and ids.pop() not in (old, -1)

    vt.wait_for(changed, timeout=timeout, what=what)


def partition_state(cluster, topic, partition):
    """(leader, leader_epoch, isr, controller_epoch, znode version)."""
    data = cluster.zk_get("/brokers/topics/%s/partitions/%d/state" % (topic, partition))
    stat = cluster.zk_stat("/brokers/topics/%s/partitions/%d/state" % (topic, partition))
    f = pb_parse(data)
    return (f.get(1, [0])[0], f.get(2, [0])[0], pb_packed_ints(f, 3), f.get(4, [0])[0],
            stat.version)


def controller_epoch(cluster):
    data = cluster.zk_get("/controller_epoch")
    return pb_parse(data).get(1, [0])[0], cluster.zk_stat("/controller_epoch").version


def topic_id(cluster, topic):
    return pb_parse(cluster.zk_get("/brokers/topics/%s" % topic))[1][0]


def rpc_call(port, msg_type, payload, request_id=77, sender_id=99, timeout=10, host="127.0.0.1"):
    """One request on the inter-broker RPC channel; returns the response
    envelope's fields."""
    env = (pb_field_varint(1, request_id) + pb_field_varint(2, msg_type) +
           pb_field_bytes(5, payload) + pb_field_varint(6, sender_id))
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(struct.pack(">I", len(env)) + env)
        head = b""
        while len(head) < 4:
            chunk = s.recv(4 - len(head))
            if not chunk:
                raise AssertionError("RPC connection closed without an answer")
            head += chunk
        (size,) = struct.unpack(">I", head)
        body = b""
        while len(body) < size:
            chunk = s.recv(size - len(body))
            if not chunk:
                raise AssertionError("RPC connection closed mid-answer")
            body += chunk
    return pb_parse(body)


def leader_and_isr(controller_id, epoch, topic, tid, partition, leader, leader_epoch, replicas):
    isr = b"".join(pb_varint(x) for x in [leader])
    reps = b"".join(pb_varint(x) for x in replicas)
    info = (pb_field_bytes(1, topic) + pb_field_bytes(2, tid) + pb_field_varint(3, partition) +
            pb_field_varint(4, leader) + pb_field_varint(5, leader_epoch) +
            pb_field_bytes(6, isr) + pb_field_bytes(7, reps))
    return pb_field_varint(1, controller_id) + pb_field_varint(2, epoch) + pb_field_bytes(3, info)


# ---------------------------------------------------------------------------
# Clients


def produce(bootstrap, topic, records):
    """records: [(partition, key, value)]; acks=all; raises on any delivery
    error. Returns {partition: [offsets]}."""
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                  "message.timeout.ms": 30000})
    errors, offsets = [], {}

    def report(err, msg):
        if err is not None:
            errors.append(err)
        else:
            offsets.setdefault(msg.partition(), []).append(msg.offset())

    for partition, key, value in records:
        p.produce(topic, value=value, key=key, partition=partition, on_delivery=report)
        p.poll(0)
    remaining = p.flush(60)
    if remaining or errors:
        raise AssertionError("produce to %s: %d undelivered, errors %r" % (topic, remaining, errors[:5]))
    return offsets


def consume_all(bootstrap, topic, partitions, expected, timeout=60):
    """Reads every partition from the beginning until `expected` records
    arrived; returns [(partition, offset, key, value)]."""
    from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "vltava-cluster-test",
                  "enable.auto.commit": False, "enable.partition.eof": False,
                  "fetch.wait.max.ms": 100})
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < expected and time.monotonic() < deadline:
            msg = c.poll(0.5)
            if msg is None or msg.error() is not None:
                continue
            got.append((msg.partition(), msg.offset(), msg.key(), msg.value()))
        return got
    finally:
        c.close()


class ClusterTest(unittest.TestCase):
    def leaders(self, port, topic):
        md = metadata_v7(port, [topic])
        return {p: v["leader"] for p, v in md["topics"][topic]["partitions"].items()}

    def test_leaders_spread_and_clients_use_any_bootstrap(self):
        with vt.Cluster(brokers=3) as c:
            r = vt.run_cli("-b", c.bootstrap, "topic", "create", "t", "-p", "12", "-r", "1", check=True)
            c.wait_topic_leaders("t", 12)
            views = [metadata_v7(b.port) for b in c.brokers]
            cluster_id = c.zk_get("/cluster/id")
            for md in views:
                # every broker: all live brokers with advertised endpoints,
                # the controller, the cluster id, every partition
                self.assertEqual(sorted(md["brokers"]), [1, 2, 3])
                for b in c.brokers:
                    self.assertEqual(md["brokers"][b.id][:2], ("127.0.0.1", b.port))
                self.assertEqual(md["controller_id"], views[0]["controller_id"])
                self.assertIn(md["cluster_id"].encode(), cluster_id)
                parts = md["topics"]["t"]["partitions"]
                self.assertEqual(sorted(parts), list(range(12)))
                for p in parts.values():
                    self.assertEqual(p["error"], 0)
                    self.assertEqual(p["replicas"], [p["leader"]])
                    self.assertEqual(p["isr"], [p["leader"]])
                    self.assertEqual(p["leader_epoch"], 0)
                    self.assertEqual(p["offline"], [])
            counts = {}
            for p in views[0]["topics"]["t"]["partitions"].values():
                counts[p["leader"]] = counts.get(p["leader"], 0) + 1
            self.assertEqual(counts, {1: 4, 2: 4, 3: 4}, r.stdout)

            # Produce to all 12 through each single bootstrap broker in turn:
            # the client must find every leader from Metadata.
            records = []
            for b in c.brokers:
                batch = [(p, b"k%d" % p, b"from-%d-to-%d-%d" % (b.id, p, i))
                         for p in range(12) for i in range(5)]
                produce("127.0.0.1:%d" % b.port, "t", batch)
                records += batch
            got = consume_all("127.0.0.1:%d" % c.brokers[1].port, "t", range(12), len(records))
            self.assertEqual(len(got), len(records))
            self.assertEqual(sorted((p, v) for p, _, _, v in got), sorted((p, v) for p, _, v in records))
            for p in range(12):
                offsets = sorted(o for q, o, _, _ in got if q == p)
                self.assertEqual(offsets, list(range(15)))

            # A broker that does not lead a partition refuses Produce for it.
            md = views[0]["topics"]["t"]["partitions"]
            p0_leader = md[0]["leader"]
            other = next(b for b in c.brokers if b.id != p0_leader)
            batch = vt.build_record_batch([(b"k", b"v")])
            with KafkaConnection(other.port) as conn:
                cid = vt.raw_produce(conn, "t", 0, batch)
                _, body = conn.recv(expect_cid=cid)
            self.assertEqual(vt.read_produce_response(body)[("t", 0)][0], 6)  # NOT_LEADER_OR_FOLLOWER

    def test_controller_failover(self):
        with vt.Cluster(brokers=3) as c:
            old = c.controller_id()
            epoch_before, _ = controller_epoch(c)
            victim = c.broker(old)
            survivors = [b for b in c.brokers if b.id != old]
            t0 = time.monotonic()
            victim.kill()
            wait_controller_change(survivors, old, timeout=30, what="a new controller")
            elapsed = time.monotonic() - t0
            print("\ncontroller failover after kill -9: %.2f s (session timeout 6 s)" % elapsed)
            new = metadata_v7(survivors[0].port)["controller_id"]
            self.assertIn(new, [b.id for b in survivors])
            epoch_after, _ = controller_epoch(c)
            self.assertEqual(epoch_after, epoch_before + 1)
            self.assertEqual(pb_parse(c.zk_get("/controller"))[1][0], new)
            # topic creation still works, through the new controller
            c.create_topic("after-failover", partitions=4, rf=2)
            md = metadata_v7(survivors[0].port, ["after-failover"])
            for p in md["topics"]["after-failover"]["partitions"].values():
                self.assertEqual(sorted(p["replicas"]), sorted(b.id for b in survivors))

    def test_lost_broker_partitions_offline_then_back_with_data(self):
        with vt.Cluster(brokers=3) as c:
            c.create_topic("t", partitions=6, rf=1)
            records = [(p, None, b"before-%d-%d" % (p, i)) for p in range(6) for i in range(10)]
            produce(c.bootstrap, "t", records)
            ctrl = c.controller_id()
            victim = next(b for b in c.brokers if b.id != ctrl)
            led = sorted(p for p, l in self.leaders(victim.port, "t").items() if l == victim.id)
            self.assertEqual(len(led), 2)
            victim.kill()
            live = [b for b in c.brokers if b.id != victim.id]

            # The controller's decision, at a new leader epoch: a Metadata
            # answer shows leader -1 as soon as the leader is not live.
            def offline():
                md = metadata_v7(live[0].port, ["t"])["topics"]["t"]["partitions"]
                return all(md[p]["leader"] == -1 and md[p]["leader_epoch"] == 1 for p in led)

            vt.wait_for(offline, timeout=30, what="the lost broker's partitions to go offline")
            md = metadata_v7(live[0].port, ["t"])
            for p, v in md["topics"]["t"]["partitions"].items():
                if p in led:
                    self.assertEqual(v["error"], LEADER_NOT_AVAILABLE)
                    self.assertEqual(v["leader_epoch"], 1)
                    self.assertEqual(v["offline"], [victim.id])
                else:
                    self.assertNotEqual(v["leader"], victim.id)
                    self.assertEqual(v["leader_epoch"], 0)
            self.assertNotIn(victim.id, md["brokers"])
            # the rest keep serving
            others = [p for p in range(6) if p not in led]
            produce(c.live_bootstrap(), "t", [(p, None, b"during-%d" % p) for p in others])
            got = consume_all(c.live_bootstrap(), "t", others, 11 * len(others))
            self.assertEqual(len(got), 11 * len(others))

            victim.start()
            c.wait_ready()
            vt.wait_for(lambda: all(self.leaders(b.port, "t")[p] == victim.id
                                    for b in c.brokers for p in led),
                        timeout=30, what="the returning broker to lead its partitions again")
            md = metadata_v7(victim.port, ["t"])["topics"]["t"]["partitions"]
            for p in led:
                self.assertEqual(md[p]["leader_epoch"], 2)
                self.assertEqual(partition_state(c, "t", p)[:3], (victim.id, 2, [victim.id]))
            got = consume_all(c.bootstrap, "t", led, 10 * len(led))
            self.assertEqual(sorted(v for _, _, _, v in got),
                             sorted(v for p, _, v in records if p in led))

    def test_delete_topic_everywhere_then_recreate_empty(self):
        with vt.Cluster(brokers=3) as c:
            c.create_topic("gone", partitions=6, rf=2)
            produce(c.bootstrap, "gone", [(p, None, b"x%d" % p) for p in range(6)])
            self.assertEqual(sum(len(vt.topic_dirs(b, "gone")) for b in c.brokers), 12)
            old_id = topic_id(c, "gone")
            admin = c.admin()
            futures = admin.delete_topics(["gone"], operation_timeout=30)
            futures["gone"].result(timeout=60)

            def gone_everywhere():
                for b in c.brokers:
                    if "gone" in metadata_v7(b.port)["topics"] or vt.topic_dirs(b, "gone"):
                        return False
                return True

            vt.wait_for(gone_everywhere, timeout=30, what="the topic to vanish from every broker")
            self.assertIsNone(c.zk_get("/brokers/topics/gone"))
            self.assertIsNone(c.zk_get("/config/topics/gone"))
            self.assertEqual(c.zk_children("/admin/delete_topics"), [])
            c.create_topic("gone", partitions=3, rf=1)
            self.assertNotEqual(topic_id(c, "gone"), old_id)
            leaders = self.leaders(c.brokers[0].port, "gone")
            for p in range(3):
                port = c.broker(leaders[p]).port
                for ts in (-2, -1):  # earliest and latest: empty again
                    err, _, offset = vt.raw_list_offsets(port, "gone", p, ts)
                    self.assertEqual((err, offset), (0, 0))

    def test_deposed_controller_is_fenced(self):
        with vt.Cluster(brokers=3) as c:
            c.create_topic("f", partitions=3, rf=3)
            old = c.controller_id()
            stale = c.broker(old)
            others = [b for b in c.brokers if b.id != old]
            epoch_before, _ = controller_epoch(c)
            stale.pause()
            wait_controller_change(others, old, timeout=40,
                                   what="another broker to take over from the paused one")
            new = metadata_v7(others[0].port)["controller_id"]
            # partitions the paused broker led move away (it left the ISR)
            vt.wait_for(lambda: all(l != old for l in self.leaders(others[0].port, "f").values()),
                        timeout=30, what="leadership to move off the paused broker")
            snapshot_epoch = controller_epoch(c)
            self.assertEqual(snapshot_epoch[0], epoch_before + 1)
            snapshot_states = {p: partition_state(c, "f", p) for p in range(3)}
            controller_owner = c.zk_stat("/controller").ephemeralOwner

            stale.resume()
            # it notices its session expired, re-registers and follows
            vt.wait_for(lambda: metadata_v7(stale.port)["controller_id"] == new, timeout=40,
                        what="the deposed controller to learn of its successor")
            c.wait_ready()
            self.assertEqual(controller_epoch(c), snapshot_epoch)
            self.assertEqual(c.zk_stat("/controller").ephemeralOwner, controller_owner)
            self.assertEqual(pb_parse(c.zk_get("/controller"))[1][0], new)
            for p in range(3):
                # the deposed controller wrote nothing after it came back:
                # the moves were written by the successor, and whatever
                # changed since (the returning replica caught up and
                # rejoined the ISR, its leader wrote that; the successor
                # may give it back its preferred leadership) carries the
                # successor's epoch, never the deposed one's
                if snapshot_states[p][1] > 0:
                    self.assertEqual(snapshot_states[p][3], snapshot_epoch[0])
                now = partition_state(c, "f", p)
                self.assertGreaterEqual(now[1], snapshot_states[p][1])
                if now != snapshot_states[p]:
                    self.assertEqual(now[3], snapshot_epoch[0])
            # it cannot act as controller: admin requests are refused
            from test_api_admin import create_topics
            err, _ = create_topics(stale.port, 1, [("nope", 1, 1, [], {})])["nope"]
            self.assertEqual(err, 41)  # NOT_CONTROLLER
            self.assertIsNone(c.zk_get("/brokers/topics/nope"))

            # A LeaderAndIsr stamped with the old controller epoch is ignored
            # by every broker: answered STALE_CONTROLLER_EPOCH, nothing moves.
            tid = topic_id(c, "f")
            before = {b.id: metadata_v7(b.port, ["f"])["topics"]["f"]["partitions"] for b in c.brokers}
            for b in c.brokers:
                target = 0
                cur = before[b.id][target]
                usurper = next(x for x in cur["replicas"] if x != cur["leader"])
                msg = leader_and_isr(old, epoch_before, "f", tid, target, usurper,
                                     cur["leader_epoch"] + 10, cur["replicas"])
                answer = rpc_call(b.rpc_port, 1, msg)
                self.assertEqual(answer.get(4, [0])[0], STALE_CONTROLLER_EPOCH)
                self.assertEqual(answer.get(1)[0], 77)
            for b in c.brokers:
                self.assertEqual(metadata_v7(b.port, ["f"])["topics"]["f"]["partitions"], before[b.id])
                self.assertIn("ignoring LeaderAndIsr from broker 99: stale controller epoch %d"
                              % epoch_before, b.log_text())
            self.assertEqual(controller_epoch(c), snapshot_epoch)


if __name__ == "__main__":
    unittest.main()
