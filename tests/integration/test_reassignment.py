"""Partition reassignment (issue 10 §3): AlterPartitionReassignments v0 and
ListPartitionReassignments v0 through the controller, over the wire.

- Bad input gets Kafka's errors and changes nothing (the topic znode keeps
  its bytes): unknown broker, a broker twice, an empty list
  (INVALID_REPLICA_ASSIGNMENT), an unknown topic or partition
  (UNKNOWN_TOPIC_OR_PARTITION), a cancel of nothing
  (NO_REASSIGNMENT_IN_PROGRESS), a non-controller (NOT_CONTROLLER); a
  malformed request closes only its connection.
- A reassignment to a paused broker stays in progress (List shows its
  adding and removing replicas); cancelling it restores the original
  replicas.
- A cancel or re-target that would drop every live in-sync replica (the
  adding ones held the only copy) is refused, INVALID_REPLICA_ASSIGNMENT.
- /admin/reassign_partitions (Kafka's ZooKeeper-mode request, a protobuf
  ReassignPartitionsRequest here): the controller starts its entries, drops
  an invalid one, and deletes the znode once every entry is done.
- A reassignment in progress survives a controller failover: its state is
  in the topic znode, and the new controller completes it.
- A partition moved under an acks=all load (confluent_kafka producer): the
  new replica set in Metadata, leadership moved off a removed leader, the
  removed replica's log gone from its disk, every acknowledged record read
  back, the replicas byte-identical.
"""

import json
import os
import signal
import sys
import threading
import time
import unittest

import vltava_test as vt
from vltava_test import Dec, Enc, KafkaConnection

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fault"))
import segments  # noqa: E402  (tests/fault/segments.py: replica comparison)

ALTER = 45
LIST = 46
NONE = 0
UNKNOWN_TOPIC_OR_PARTITION = 3
INVALID_REPLICA_ASSIGNMENT = 39
NOT_CONTROLLER = 41
INVALID_REQUEST = 42
NO_REASSIGNMENT_IN_PROGRESS = 85
REASSIGNMENT_IN_PROGRESS = 60


def alter_body(topics, timeout_ms=60000):
    """topics: [(name, [(partition, replicas or None)])]."""
    e = Enc(True).i32(timeout_ms)

    def partition(e, p):
        e.i32(p[0]).array(p[1], lambda e, r: e.i32(r)).tags()

    e.array(topics, lambda e, t: e.str_(t[0]).array(t[1], partition).tags())
    return e.tags().bytes()


def alter(port, topics):
    """(top error, {(topic, partition): (error, message)})."""
    with KafkaConnection(port, timeout=30) as conn:
        d = Dec(conn.request(ALTER, 0, alter_body(topics), flexible=True), True)
    d.i32()
    top = d.i16()
    d.str_()
    out = {}

    def partition(d, name):
        p, err, msg = d.i32(), d.i16(), d.str_()
        d.tags()
        out[(name, p)] = (err, msg)

    def topic(d):
        name = d.str_()
        d.array(lambda d: partition(d, name))
        d.tags()

    d.array(topic)
    d.end("AlterPartitionReassignments response")
    return top, out


def list_reassignments(port, topics=None):
    """(top error, {(topic, partition): (replicas, adding, removing)}).
    topics: None (all) or [(name, [partitions])]."""
    e = Enc(True).i32(30000)
    e.array(topics, lambda e, t: e.str_(t[0]).array(t[1], lambda e, p: e.i32(p)).tags())
    with KafkaConnection(port, timeout=30) as conn:
        d = Dec(conn.request(LIST, 0, e.tags().bytes(), flexible=True), True)
    d.i32()
    top = d.i16()
    d.str_()
    out = {}

    def ids(d):
        return d.array(lambda d: d.i32())

    def partition(d, name):
        p = d.i32()
        out[(name, p)] = (ids(d), ids(d), ids(d))
        d.tags()

    def topic(d):
        name = d.str_()
        d.array(lambda d: partition(d, name))
        d.tags()

    d.array(topic)
    d.end("ListPartitionReassignments response")
    return top, out


def _varint(v):
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def reassign_request_znode(entries):
    """proto/znodes.proto ReassignPartitionsRequest of [(topic, partition,
    replicas)], hand-encoded (field 1: ReassignmentTarget {1: topic, 2:
    partition, 3: packed replicas})."""
    out = b""
    for topic, partition, replicas in entries:
        packed = b"".join(_varint(r) for r in replicas)
        t = topic.encode()
        msg = b"\x0a" + _varint(len(t)) + t + b"\x10" + _varint(partition) + b"\x1a" + _varint(len(packed)) + packed
        out += b"\x0a" + _varint(len(msg)) + msg
    return out


def partition_md(c, topic, partition, broker=None):
    """{"leader", "replicas", "isr"} from the Metadata of a serving broker."""
    for b in [broker] if broker else c.brokers:
        if not b.alive() or b.paused:
            continue
        try:
            p = vt.raw_metadata(b.port, topics=[topic])["topics"][topic]["partitions"][partition]
            return p
        except (OSError, ValueError, KeyError):
            continue
    raise AssertionError("no broker answered Metadata")


def controller(c):
    return c.broker(c.controller_id())


def everywhere(c, topic, partition, pred):
    """pred holds for the partition in every serving broker's Metadata."""
    return all(pred(partition_md(c, topic, partition, b)) for b in c.brokers if b.alive() and not b.paused)


class BadInputTest(unittest.TestCase):
    def test_bad_input_changes_nothing_and_cancel_restores(self):
        # A long session timeout: a paused broker stays registered (live)
        # for the whole reassignment that waits for it.
        cfg = {"zookeeper.session.timeout.ms": 30000}
        with vt.Cluster(brokers=3, broker_config=cfg) as c:
            c.create_topic("t", partitions=3, rf=2)
            ctl = controller(c)
            before = c.zk_get("/brokers/topics/t")
            # A partition and a broker outside its replicas that is not the
            # controller (the test pauses that broker).
            part, replicas, other = min((q, partition_md(c, "t", q)["replicas"], i)
                                        for q in range(3) for i in (1, 2, 3)
                                        if i != ctl.id and i not in partition_md(c, "t", q)["replicas"])

            cases = [
                ([("t", [(0, [replicas[0], 99])])], ("t", 0), INVALID_REPLICA_ASSIGNMENT),
                ([("t", [(0, [replicas[0], replicas[0]])])], ("t", 0), INVALID_REPLICA_ASSIGNMENT),
                ([("t", [(0, [])])], ("t", 0), INVALID_REPLICA_ASSIGNMENT),
                ([("t", [(7, [1, 2])])], ("t", 7), UNKNOWN_TOPIC_OR_PARTITION),
                ([("nope", [(0, [1, 2])])], ("nope", 0), UNKNOWN_TOPIC_OR_PARTITION),
                ([("t", [(1, None)])], ("t", 1), NO_REASSIGNMENT_IN_PROGRESS),
            ]
            for topics, key, want in cases:
                top, res = alter(ctl.port, topics)
                self.assertEqual(top, NONE)
                self.assertEqual(res[key][0], want, "%r: %r" % (topics, res))
                self.assertTrue(res[key][1], "an error comes with a message")
            # One bad item does not stop a good one's validation, and the
            # same partition twice is refused.
            top, res = alter(ctl.port, [("t", [(0, [replicas[0], 99]), (0, replicas)])])
            self.assertEqual(res[("t", 0)][0], INVALID_REQUEST)
            # A non-controller answers NOT_CONTROLLER, top level (Kafka's).
            non = [b for b in c.brokers if b.id != ctl.id][0]
            top, res = alter(non.port, [("t", [(0, [1, 2, 3])])])
            self.assertEqual((top, res), (NOT_CONTROLLER, {}))
            self.assertEqual(list_reassignments(non.port)[0], NOT_CONTROLLER)
            # Malformed: a partition array longer than the bytes that follow.
            with KafkaConnection(ctl.port) as bad:
                body = Enc(True).i32(1000).bytes() + b"\x02\x02t\x7f\x00"
                bad.send(ALTER, 0, body, flexible=True)
                self.assertIsNone(bad.recv_frame(), "a malformed request closes its connection")
            # The CLI says what the controller answered, with Kafka's exit codes.
            out = vt.run_cli("-b", c.bootstrap, "topic", "move", "t", "-p", "0", "--replicas", "1,99")
            self.assertEqual(out.returncode, 1, out.stderr)
            self.assertIn("INVALID_REPLICA_ASSIGNMENT", out.stderr)
            out = vt.run_cli("-b", c.bootstrap, "topic", "move", "t", "-p", "9", "--replicas", "1,2")
            self.assertEqual(out.returncode, 4, out.stderr)
            out = vt.run_cli("-b", c.bootstrap, "topic", "move", "t", "-p", "0", "--cancel")
            self.assertIn("NO_REASSIGNMENT_IN_PROGRESS", out.stderr)
            self.assertEqual(c.zk_get("/brokers/topics/t"), before, "bad input changed the topic znode")
            self.assertEqual(list_reassignments(ctl.port), (NONE, {}))

            # In progress: the new replica is paused, so it cannot join the ISR.
            target = [other, replicas[1]]
            pb = c.broker(other)
            pb.pause()
            try:
                top, res = alter(ctl.port, [("t", [(part, target)])])
                self.assertEqual((top, res[("t", part)][0]), (NONE, NONE), res)
                want = (target + [replicas[0]], [other], [replicas[0]])
                # Answered once the controller's cache shows it: listed at once.
                self.assertEqual(list_reassignments(ctl.port), (NONE, {("t", part): want}))
                self.assertEqual(list_reassignments(ctl.port, [("t", [(part + 1) % 3])]), (NONE, {}))
                self.assertEqual(partition_md(c, "t", part, ctl)["replicas"], target + [replicas[0]])
                out = vt.run_cli("-b", c.live_bootstrap(), "--format", "json", "cluster", "reassignments",
                                 check=True)
                self.assertEqual(json.loads(out.stdout), [{"topic": "t", "partition": part,
                                                           "replicas": want[0], "adding": want[1],
                                                           "removing": want[2]}])
                out = vt.run_cli("-b", c.live_bootstrap(), "cluster", "reassignments", check=True)
                self.assertIn("ADDING", out.stdout)
                # Adding partitions meanwhile would drop the reassignment: refused, as Kafka.
                from confluent_kafka import KafkaException
                from confluent_kafka.admin import AdminClient, NewPartitions
                admin = AdminClient({"bootstrap.servers": c.live_bootstrap()})
                fut = admin.create_partitions([NewPartitions("t", 4)], request_timeout=20)["t"]
                with self.assertRaises(KafkaException) as refused:
                    fut.result(timeout=30)
                self.assertEqual(refused.exception.args[0].code(), REASSIGNMENT_IN_PROGRESS)
                del admin
                # Cancel: back to the original replicas.
                top, res = alter(ctl.port, [("t", [(part, None)])])
                self.assertEqual((top, res[("t", part)][0]), (NONE, NONE), res)
                self.assertEqual(list_reassignments(ctl.port), (NONE, {}), "the cancelled one still listed")
                # The original set, as Kafka restores it (replicas minus
                # adding, in the order of the reassignment's replica list).
                vt.wait_for(lambda: everywhere(c, "t", part, lambda p: sorted(p["replicas"]) == sorted(replicas)
                                               and p["leader"] in replicas),
                            timeout=30, what="t-%d back on its original replicas" % part)
            finally:
                pb.resume()
            # The resumed broker learns it is no replica and keeps no log of it.
            vt.wait_for(lambda: not os.path.isdir(os.path.join(pb.datadir, "t-%d" % part)), timeout=30,
                        what="the cancelled replica's log removed")


class CancelKeepsTheOnlyCopyTest(unittest.TestCase):
    def test_cancel_refused_when_only_adding_replicas_are_in_sync(self):
        # A partition on broker o moved to [n, p] with p paused: n joins the
        # ISR, then o stops and n leads. A cancel (back to [o]) would drop
        # n and p at once, and with them the only live copy; so would a
        # re-target to [p] (the set [p, o]: n dropped). Both refused,
        # INVALID_REPLICA_ASSIGNMENT, nothing written. The reassignment
        # then completes once p is back.
        cfg = {"zookeeper.session.timeout.ms": 30000}
        with vt.Cluster(brokers=3, broker_config=cfg) as c:
            c.create_topic("k", partitions=3, rf=1)
            ctl = controller(c)
            part, o = min((q, partition_md(c, "k", q)["replicas"][0]) for q in range(3)
                          if partition_md(c, "k", q)["replicas"][0] != ctl.id)
            n = ctl.id
            p = [i for i in (1, 2, 3) if i not in (o, n)][0]
            pb = c.broker(p)
            pb.pause()
            try:
                top, res = alter(ctl.port, [("k", [(part, [n, p])])])
                self.assertEqual((top, res[("k", part)][0]), (NONE, NONE), res)
                vt.wait_for(lambda: n in partition_md(c, "k", part, ctl)["isr"], timeout=30,
                            what="broker %d in k-%d's ISR" % (n, part))
                self.assertEqual(c.broker(o).stop(), 0)
                vt.wait_for(lambda: partition_md(c, "k", part, ctl)["leader"] == n, timeout=30,
                            what="broker %d leading k-%d" % (n, part))
                before = c.zk_get("/brokers/topics/k")
                for replicas in (None, [p]):
                    top, res = alter(ctl.port, [("k", [(part, replicas)])])
                    self.assertEqual((top, res[("k", part)][0]), (NONE, INVALID_REPLICA_ASSIGNMENT),
                                     "%r: %r" % (replicas, res))
                    self.assertIn("in-sync", res[("k", part)][1])
                self.assertEqual(c.zk_get("/brokers/topics/k"), before, "a refused request wrote")
                self.assertTrue(os.path.isdir(os.path.join(c.broker(n).datadir, "k-%d" % part)))
            finally:
                pb.resume()
            vt.wait_for(lambda: partition_md(c, "k", part, ctl)["replicas"] == [n, p], timeout=60,
                        what="k-%d's move completed" % part)


class ControllerFailoverTest(unittest.TestCase):
    def test_new_controller_completes_a_reassignment_in_progress(self):
        cfg = {"zookeeper.session.timeout.ms": 30000}
        with vt.Cluster(brokers=3, broker_config=cfg) as c:
            c.create_topic("f", partitions=1, rf=2)
            ctl = controller(c)
            replicas = partition_md(c, "f", 0)["replicas"]
            added = [i for i in (1, 2, 3) if i not in replicas][0]
            if added == ctl.id:  # the broker paused below must not be the controller
                c.broker(ctl.id).stop()
                c.broker(ctl.id).start()
                vt.wait_for(lambda: c.controller_id() not in (-1, ctl.id), timeout=30, what="a new controller")
                c.wait_ready()
                ctl = controller(c)
            # With three brokers, rf 2 and added not the controller, the
            # controller is a replica: the target drops it.
            self.assertIn(ctl.id, replicas)
            kept = [r for r in replicas if r != ctl.id][0]
            target = [added, kept]
            pb = c.broker(added)
            pb.pause()
            try:
                top, res = alter(ctl.port, [("f", [(0, target)])])
                self.assertEqual((top, res[("f", 0)][0]), (NONE, NONE), res)
                vt.wait_for(lambda: ("f", 0) in list_reassignments(ctl.port)[1], timeout=30,
                            what="f-0 in progress")
                self.assertEqual(ctl.stop(), 0)
                successor = c.broker(kept)
                vt.wait_for(lambda: vt.raw_metadata(successor.port, topics=[])["controller_id"] == kept,
                            timeout=60, what="broker %d elected controller" % kept)
                self.assertIn(("f", 0), list_reassignments(successor.port)[1],
                              "the new controller sees the reassignment in progress")
            finally:
                pb.resume()
            vt.wait_for(lambda: everywhere(c, "f", 0, lambda p: p["replicas"] == target), timeout=60,
                        what="the new controller completing f-0's move")
            self.assertEqual(list_reassignments(c.broker(kept).port), (NONE, {}))
            # The old controller, restarted, keeps no copy of the partition.
            ctl.start()
            c.wait_ready()
            vt.wait_for(lambda: not os.path.isdir(os.path.join(ctl.datadir, "f-0")), timeout=30,
                        what="the removed replica's log deleted after its restart")


class ZooKeeperRequestTest(unittest.TestCase):
    def test_request_znode_is_acted_on_and_deleted(self):
        with vt.Cluster(brokers=3) as c:
            c.create_topic("z", partitions=2, rf=1)
            moves = []
            for q in range(2):
                (r,) = partition_md(c, "z", q)["replicas"]
                moves.append((q, [r % 3 + 1, (r + 1) % 3 + 1]))
            entries = [("z", q, reps) for q, reps in moves] + [("z", 0, [1, 99]), ("nope", 0, [1])]
            # The invalid entries name a partition a valid one names too, and
            # an unknown topic: both are dropped, the valid ones done.
            entries = entries[:2] + entries[3:]
            c.zk().create(c.zk_path("/admin/reassign_partitions"), reassign_request_znode(entries))
            for q, reps in moves:
                vt.wait_for(lambda: everywhere(c, "z", q, lambda p: p["replicas"] == reps
                                               and sorted(p["isr"]) == sorted(reps)),
                            timeout=60, what="z-%d moved to %s" % (q, reps))
            vt.wait_for(lambda: c.zk_get("/admin/reassign_partitions") is None, timeout=30,
                        what="the request znode deleted")
            self.assertEqual(list_reassignments(controller(c).port), (NONE, {}))


THROTTLE_RATE = 400000  # bytes/s, leader and follower side
PRELOAD_BYTES = 4 << 20


class MoveUnderLoadTest(unittest.TestCase):
    def test_move_partition_under_acks_all_load(self):
        """The copy onto the added replica is throttled (400 KB/s each side)
        so that the reassignment is seen in progress; the in-sync follower
        is not, so acks=all keeps being answered meanwhile."""
        from confluent_kafka import Producer

        cfg = {"min.insync.replicas": 2, "replica.lag.time.max.ms": 3000,
               "unclean.leader.election.enable": "false",
               "leader.replication.throttled.rate": THROTTLE_RATE,
               "follower.replication.throttled.rate": THROTTLE_RATE}
        with vt.Cluster(brokers=3, broker_config=cfg) as c:
            c.create_topic("moved", partitions=1, rf=2)
            p0 = partition_md(c, "moved", 0)
            old_leader = p0["leader"]
            kept = [r for r in p0["replicas"] if r != old_leader][0]
            added = [i for i in (1, 2, 3) if i not in p0["replicas"]][0]
            target = [added, kept]  # the leader is removed: leadership must move
            acked, failures = {}, []
            stop = threading.Event()

            def report(err, msg):
                if err is None:
                    acked[msg.offset()] = msg.value()
                else:
                    failures.append(str(err))

            def produce():
                p = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "linger.ms": 2,
                              "message.timeout.ms": 60000, "retry.backoff.ms": 100,
                              "topic.metadata.refresh.interval.ms": 1000, "enable.idempotence": False})
                # A preload the throttled copy takes seconds over, then a
                # load well below the throttle.
                big = b"x" * 1000
                for n in range(PRELOAD_BYTES // len(big)):
                    p.produce("moved", value=b"p-%08d-" % n + big, partition=0, on_delivery=report)
                    p.poll(0)
                n = 0
                while not stop.is_set():
                    p.produce("moved", value=b"v-%08d" % n, partition=0, on_delivery=report)
                    n += 1
                    p.poll(0.005)
                p.flush(120)

            t = threading.Thread(target=produce)
            t.start()
            try:
                vt.wait_for(lambda: len(acked) >= PRELOAD_BYTES // 1000 + 200, timeout=120,
                            what="acknowledgements before the move")
                ctl = controller(c)
                top, res = alter(ctl.port, [("moved", [(0, target)])])
                self.assertEqual((top, res[("moved", 0)][0]), (NONE, NONE), res)
                want = (target + [old_leader], [added], [old_leader])
                vt.wait_for(lambda: list_reassignments(ctl.port)[1].get(("moved", 0)) == want, timeout=30,
                            what="moved-0 listed as in progress")
                during = len(acked)
                vt.wait_for(lambda: len(acked) >= during + 100, timeout=30,
                            what="acks=all answered during the throttled copy")
                vt.wait_for(lambda: everywhere(c, "moved", 0, lambda p: p["replicas"] == target
                                               and p["leader"] in target),
                            timeout=120, what="moved-0 on its new replicas everywhere")
                vt.wait_for(lambda: list_reassignments(controller(c).port) == (NONE, {}), timeout=30,
                            what="no reassignment listed")
                moved_at = len(acked)
                vt.wait_for(lambda: len(acked) >= moved_at + 500, timeout=60,
                            what="acknowledgements after the move")
            finally:
                stop.set()
                t.join(180)
            self.assertFalse(t.is_alive(), "producer did not finish")
            self.assertEqual(failures, [])
            # The removed replica's log is gone from its disk.
            gone = c.broker(old_leader)
            vt.wait_for(lambda: not os.path.isdir(os.path.join(gone.datadir, "moved-0")), timeout=30,
                        what="the removed replica's log deleted")
            # Every acknowledged record is read back at its offset.
            from test_replication import consume_partition, wait_replicas_identical
            records, _hw = consume_partition(c, "moved", 0)
            got = dict(records)
            lost = [o for o, v in acked.items() if got.get(o) != v]
            self.assertEqual(lost[:10], [], "%d acknowledged records lost or changed" % len(lost))
            vt.wait_for(lambda: sorted(partition_md(c, "moved", 0)["isr"]) == sorted(target), timeout=60,
                        what="full ISR on the new replicas")
            wait_replicas_identical(c, "moved", 0, target)


class Load:
    """A confluent_kafka producer (acks=all) sending to every partition of
    topic from a thread until stop(); acked maps (partition, offset) to
    the value acknowledged there."""

    def __init__(self, c, topic, partitions):
        self.c, self.topic, self.partitions = c, topic, partitions
        self.acked, self.failures = {}, []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _report(self, err, msg):
        if err is None:
            self.acked[(msg.partition(), msg.offset())] = msg.value()
        else:
            self.failures.append(str(err))

    def _run(self):
        from confluent_kafka import Producer

        p = Producer({"bootstrap.servers": self.c.bootstrap, "acks": "all", "linger.ms": 2,
                      "message.timeout.ms": 120000, "retry.backoff.ms": 100,
                      "topic.metadata.refresh.interval.ms": 1000, "enable.idempotence": False})
        n = 0
        while not self._stop.is_set():
            p.produce(self.topic, value=b"v-%08d" % n, partition=n % self.partitions, on_delivery=self._report)
            n += 1
            p.poll(0)
            if n % 20 == 0:
                p.poll(0.01)
        self.unflushed = p.flush(180)

    def wait_acked(self, count, what):
        vt.wait_for(lambda: len(self.acked) >= count, timeout=120, what=what)

    def stop(self):
        self._stop.set()
        self.thread.join(240)
        assert not self.thread.is_alive(), "producer did not finish"


def check_no_loss_and_identical(test, c, load, topic, partitions):
    """Every acknowledged record read back at its offset; every partition's
    replicas (as Metadata lists them) byte-identical once in sync, and the
    partition directories on disk exactly those replicas (segments.py
    compares the batches below the high watermark)."""
    from test_replication import consume_partition, wait_replicas_identical

    test.assertEqual(load.failures, [])
    test.assertEqual(load.unflushed, 0)
    for q in range(partitions):
        records, _hw = consume_partition(c, topic, q)
        got = dict(records)
        lost = [o for (pp, o), v in load.acked.items() if pp == q and got.get(o) != v]
        test.assertEqual(lost[:10], [], "%s-%d: %d acknowledged records lost" % (topic, q, len(lost)))
        replicas = partition_md(c, topic, q)["replicas"]
        vt.wait_for(lambda: sorted(partition_md(c, topic, q)["isr"]) == sorted(replicas), timeout=60,
                    what="full ISR of %s-%d" % (topic, q))
        wait_replicas_identical(c, topic, q, replicas)
        vt.wait_for(lambda: sorted(b.id for b in c.brokers
                                   if os.path.isdir(os.path.join(b.datadir, "%s-%d" % (topic, q)))) == sorted(replicas),
                    timeout=30, what="%s-%d on disk exactly on its replicas %s" % (topic, q, replicas))
    divergences, nparts, _nbatches = segments.compare_replicas({b.id: b.datadir for b in c.brokers}, [topic])
    test.assertEqual(divergences, [])
    test.assertEqual(nparts, partitions)


class CliMoveTest(unittest.TestCase):
    def test_topic_move_wait(self):
        with vt.Cluster(brokers=3) as c:
            c.create_topic("m", partitions=1, rf=2)
            replicas = partition_md(c, "m", 0)["replicas"]
            target = [i for i in (1, 2, 3) if i not in replicas] + [replicas[0]]
            load = Load(c, "m", 1)
            try:
                load.wait_acked(1000, "acknowledgements before the move")
                out = vt.run_cli("-b", c.bootstrap, "--timeout", "120", "topic", "move", "m", "-p", "0",
                                 "--replicas", ",".join(map(str, target)), "--wait", check=True)
                self.assertIn("Moved m-0 to replicas %s" % ",".join(map(str, target)), out.stdout)
                # --wait returned: the move is done as every broker sees it.
                vt.wait_for(lambda: everywhere(c, "m", 0, lambda p: p["replicas"] == target), timeout=30,
                            what="m-0 on %s everywhere" % target)
                out = vt.run_cli("-b", c.bootstrap, "cluster", "reassignments", check=True)
                self.assertIn("No partition reassignment in progress", out.stdout)
                load.wait_acked(len(load.acked) + 1000, "acknowledgements after the move")
            finally:
                load.stop()
            check_no_loss_and_identical(self, c, load, "m", 1)


class RebalanceTest(unittest.TestCase):
    PARTITIONS = 8

    def test_fourth_broker_joins_and_rebalance_moves_replicas_onto_it(self):
        cfg = {"min.insync.replicas": 2, "replica.lag.time.max.ms": 5000,
               "unclean.leader.election.enable": "false"}
        c = vt.Cluster(brokers=4, broker_config=cfg, start=False)
        with c:
            for b in c.brokers[:3]:
                b.start()
            c.wait_ready()
            c.create_topic("r", partitions=self.PARTITIONS, rf=3)
            load = Load(c, "r", self.PARTITIONS)
            try:
                load.wait_acked(3000, "acknowledgements before the fourth broker")
                c.brokers[3].start()
                c.wait_ready()
                out = vt.run_cli("-b", c.live_bootstrap(), "cluster", "rebalance", "--dry-run", check=True)
                self.assertIn("Planned", out.stdout)
                self.assertEqual(c.zk_get("/admin/reassign_partitions"), None)
                self.assertTrue(all(4 not in partition_md(c, "r", q)["replicas"] for q in range(self.PARTITIONS)),
                                "--dry-run moved something")
                out = vt.run_cli("-b", c.live_bootstrap(), "--timeout", "180", "cluster", "rebalance", "--wait",
                                 check=True, timeout=240)
                self.assertIn("Done:", out.stdout)
                load.wait_acked(len(load.acked) + 3000, "acknowledgements after the rebalance")
            finally:
                load.stop()
            per_broker = {i: 0 for i in (1, 2, 3, 4)}
            preferred = {i: 0 for i in (1, 2, 3, 4)}
            for q in range(self.PARTITIONS):
                replicas = partition_md(c, "r", q)["replicas"]
                preferred[replicas[0]] += 1
                for r in replicas:
                    per_broker[r] += 1
            # 24 replicas over 4 brokers: 6 each; 8 preferred leaders: 2 each.
            self.assertEqual(per_broker, {1: 6, 2: 6, 3: 6, 4: 6})
            self.assertEqual(preferred, {1: 2, 2: 2, 3: 2, 4: 2})
            check_no_loss_and_identical(self, c, load, "r", self.PARTITIONS)
            out = vt.run_cli("-b", c.live_bootstrap(), "cluster", "rebalance", "--dry-run", check=True)
            self.assertIn("Balanced: nothing to move", out.stdout)


if __name__ == "__main__":
    unittest.main()
