"""Issue 10 §3 (first bullet) and §6: preferred leader election through the
CLI (`vltava cluster elect-leaders`), the automatic leader rebalance
(auto.leader.rebalance.enable, leader.imbalance.check.interval.seconds), and
ElectLeaders v0-2 over the wire with Kafka's errors."""

import json
import os
import socket
import struct
import subprocess
import unittest

import vltava_test as vt
from vltava_test import Dec, Enc, KafkaConnection

ELECT_LEADERS = 43
NONE = 0
UNKNOWN_TOPIC_OR_PARTITION = 3
NOT_CONTROLLER = 41
PREFERRED_LEADER_NOT_AVAILABLE = 80
ELIGIBLE_LEADERS_NOT_AVAILABLE = 83
ELECTION_NOT_NEEDED = 84
PREFERRED, UNCLEAN = 0, 1

EXIT_OK, EXIT_UNKNOWN_TOPIC = 0, 4


def elect_leaders(port, version, topics, election_type=PREFERRED, timeout_ms=30000):
    """ElectLeaders at version; topics: {name: [partitions]} or None (every
    partition). Returns (top-level error or None for v0,
    {(topic, partition): (error, message)})."""
    flexible = version >= 2
    e = Enc(flexible)
    if version >= 1:
        e.i8(election_type)
    items = None if topics is None else sorted(topics.items())
    e.array(items, lambda x, t: x.str_(t[0]).array(t[1], lambda y, p: y.i32(p)).tags())
    e.i32(timeout_ms).tags()
    with KafkaConnection(port, timeout=timeout_ms / 1000 + 30) as conn:
        body = conn.request(ELECT_LEADERS, version, e.bytes(), flexible=flexible)
    d = Dec(body, flexible)
    d.i32()  # throttle
    top = d.i16() if version >= 1 else None
    results = {}

    def partition(x, topic):
        pid, err, msg = x.i32(), x.i16(), x.str_()
        x.tags()
        results[(topic, pid)] = (err, msg)

    def topic(x):
        name = x.str_()
        x.array(lambda y: partition(y, name))
        x.tags()

    d.array(topic)
    d.end("ElectLeaders response")
    return top, results


def partitions_of(port, topic):
    return vt.raw_metadata(port, [topic])["topics"][topic]["partitions"]


def vltava(*args, brokers, timeout=60):
    argv = [vt.cli_bin(), "-b", brokers] + [str(a) for a in args]
    env = dict(os.environ)
    env.pop("VLTAVA_BROKERS", None)
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, env=env)


class LeaderElectionTest(unittest.TestCase):
    def assertExit(self, proc, code):
        what = "exit %d\nstdout: %r\nstderr: %r" % (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
        for marker in (b"Sanitizer", b"runtime error:"):
            self.assertNotIn(marker, proc.stderr, what)
        self.assertEqual(proc.returncode, code, what)

    def move_leaders_away(self, c, topic, partitions):
        """Stops a broker that is not the controller and is the preferred
        replica of some partitions, waits for their leaders to move, starts
        it again and waits until it is back in their ISRs. Returns (broker,
        the partitions it is the preferred replica of)."""
        ctrl = c.controller_id()
        md = partitions_of(c.broker(ctrl).port, topic)
        victim = next(b for b in c.brokers if b.id != ctrl and any(p["replicas"][0] == b.id for p in md.values()))
        mine = sorted(p for p, v in md.items() if v["replicas"][0] == victim.id)
        self.assertTrue(all(md[p]["leader"] == victim.id for p in mine), md)
        victim.stop()
        live = [b for b in c.brokers if b.id != victim.id]
        vt.wait_for(lambda: all(partitions_of(b.port, topic)[p]["leader"] not in (-1, victim.id)
                                for b in live for p in mine),
                    timeout=60, what="the leaders of %s to move off broker %d" % (mine, victim.id))
        victim.start()
        c.wait_ready()
        vt.wait_for(lambda: all(victim.id in partitions_of(b.port, topic)[p]["isr"]
                                for b in c.brokers for p in mine),
                    timeout=60, what="broker %d back in the ISRs" % victim.id)
        return victim, mine

    def test_cli_elect_leaders_brings_preferred_leaders_back(self):
        config = {"auto.leader.rebalance.enable": "false", "replica.lag.time.max.ms": 3000}
        with vt.Cluster(brokers=3, broker_config=config) as c:
            c.create_topic("pe", partitions=6, rf=3)
            victim, mine = self.move_leaders_away(c, "pe", 6)
            # auto rebalance off: nothing brings them back by itself
            md = partitions_of(c.broker(c.controller_id()).port, "pe")
            self.assertTrue(all(md[p]["leader"] != victim.id for p in mine), md)

            p = vltava("cluster", "elect-leaders", "--format", "json", brokers=c.bootstrap)
            self.assertExit(p, EXIT_OK)
            doc = json.loads(p.stdout)
            self.assertEqual(doc["controller_id"], c.controller_id())
            # every partition asked: only those elected are listed
            self.assertEqual(sorted((x["topic"], x["partition"], x["error"]) for x in doc["partitions"]),
                             [("pe", q, None) for q in mine])
            # the controller answered once its own metadata showed them
            md = partitions_of(c.broker(c.controller_id()).port, "pe")
            self.assertEqual({q: md[q]["leader"] for q in mine}, {q: victim.id for q in mine})
            vt.wait_for(lambda: all(partitions_of(b.port, "pe")[q]["leader"] == victim.id
                                    for b in c.brokers for q in mine),
                        timeout=30, what="every broker to see the preferred leaders")

            # again: nothing needed, nothing listed
            p = vltava("cluster", "elect-leaders", "--format", "json", brokers=c.bootstrap)
            self.assertExit(p, EXIT_OK)
            self.assertEqual(json.loads(p.stdout)["partitions"], [])
            # one partition named: "not needed" in the table
            p = vltava("cluster", "elect-leaders", "--topic", "pe", "--partition", mine[0], brokers=c.bootstrap)
            self.assertExit(p, EXIT_OK)
            self.assertIn(b"not needed", p.stdout)
            # a topic named: each of its partitions answered
            p = vltava("cluster", "elect-leaders", "--topic", "pe", "--format", "json", brokers=c.bootstrap)
            self.assertExit(p, EXIT_OK)
            errors = {x["partition"]: x["error"] for x in json.loads(p.stdout)["partitions"]}
            self.assertEqual(errors, {q: "ELECTION_NOT_NEEDED" for q in range(6)})
            # unknown topic or partition
            p = vltava("cluster", "elect-leaders", "--topic", "nosuch", brokers=c.bootstrap)
            self.assertExit(p, EXIT_UNKNOWN_TOPIC)
            p = vltava("cluster", "elect-leaders", "--topic", "pe", "--partition", 99, brokers=c.bootstrap)
            self.assertExit(p, EXIT_UNKNOWN_TOPIC)
            self.assertIn(b"UNKNOWN_TOPIC_OR_PARTITION", p.stdout)
            # usage
            p = vltava("cluster", "elect-leaders", "--partition", 1, brokers=c.bootstrap)
            self.assertExit(p, 2)

    def test_automatic_rebalance_brings_preferred_leaders_back(self):
        config = {"auto.leader.rebalance.enable": "true", "leader.imbalance.check.interval.seconds": 1,
                  "replica.lag.time.max.ms": 3000}
        with vt.Cluster(brokers=3, broker_config=config) as c:
            c.create_topic("auto", partitions=6, rf=3)
            victim, mine = self.move_leaders_away(c, "auto", 6)
            vt.wait_for(lambda: all(partitions_of(b.port, "auto")[p]["leader"] == victim.id
                                    for b in c.brokers for p in mine),
                        timeout=60, what="the automatic rebalance to give broker %d its leaders back" % victim.id)
            ctrl = c.broker(c.controller_id())
            self.assertIn("leader rebalance:", ctrl.log_text())


    def test_unclean_election_elects_an_out_of_sync_replica(self):
        config = {"auto.leader.rebalance.enable": "false", "replica.lag.time.max.ms": 1000}
        with vt.Cluster(brokers=2, broker_config=config) as c:
            c.create_topic("u", partitions=1, rf=2)
            md = partitions_of(c.brokers[0].port, "u")[0]
            leader = c.broker(md["leader"])
            follower = next(b for b in c.brokers if b.id != leader.id)
            follower.stop()
            vt.wait_for(lambda: partitions_of(leader.port, "u")[0]["isr"] == [leader.id], timeout=60,
                        what="the ISR to shrink to the leader")
            leader.stop()
            follower.start()
            c.wait_ready()
            # only an out-of-sync replica is live: offline, as unclean
            # elections are off
            vt.wait_for(lambda: vt.raw_metadata(follower.port, [])["controller_id"] == follower.id, timeout=60,
                        what="broker %d to be the controller" % follower.id)
            md = partitions_of(follower.port, "u")[0]
            self.assertEqual((md["leader"], md["isr"]), (-1, [leader.id]))
            top, res = elect_leaders(follower.port, 1, {"u": [0]}, election_type=PREFERRED)
            self.assertEqual(res[("u", 0)][0], PREFERRED_LEADER_NOT_AVAILABLE)
            p = vltava("cluster", "elect-leaders", "--unclean", "--topic", "u", brokers=c.live_bootstrap())
            self.assertExit(p, EXIT_OK)
            self.assertIn(b"elected", p.stdout)
            md = partitions_of(follower.port, "u")[0]
            self.assertEqual((md["leader"], md["isr"]), (follower.id, [follower.id]))
            self.assertIn("unclean election", follower.log_text())

class ElectLeadersWireTest(unittest.TestCase):
    """One cluster, auto rebalance off: a broker that is not the controller
    is stopped, so that partitions whose preferred replica it is are led
    elsewhere (rf 3) or have no live replica at all (rf 1)."""

    @classmethod
    def setUpClass(cls):
        config = {"auto.leader.rebalance.enable": "false"}
        cls.cluster = vt.Cluster(brokers=3, name="elect-wire", broker_config=config)
        c = cls.cluster
        try:
            c.create_topic("w", partitions=3, rf=3)
            c.create_topic("solo", partitions=3, rf=1)
            cls.ctrl = c.broker(c.controller_id())
            cls.down = next(b for b in c.brokers if b.id != cls.ctrl.id)
            cls.other = next(b for b in c.brokers if b.id not in (cls.ctrl.id, cls.down.id))
            md = vt.raw_metadata(cls.ctrl.port, ["w", "solo"])["topics"]
            cls.w_down = [p for p, v in md["w"]["partitions"].items() if v["replicas"][0] == cls.down.id]
            cls.w_up = [p for p, v in md["w"]["partitions"].items() if v["replicas"][0] != cls.down.id]
            cls.solo_down = [p for p, v in md["solo"]["partitions"].items() if v["replicas"] == [cls.down.id]]
            assert cls.w_down and cls.w_up and cls.solo_down, md
            cls.down.stop()
            vt.wait_for(lambda: all(partitions_of(cls.ctrl.port, "w")[p]["leader"] not in (-1, cls.down.id)
                                    for p in cls.w_down), timeout=60, what="w's leaders to move")
        except BaseException:
            c.close(failed=True)
            raise

    @classmethod
    def tearDownClass(cls):
        cls.cluster.close()

    def test_versions_and_errors(self):
        asked = {"w": self.w_down + self.w_up + [7], "solo": self.solo_down, "nosuch": [0]}
        for version in (0, 1, 2):
            top, res = elect_leaders(self.ctrl.port, version, asked)
            self.assertEqual(top, None if version == 0 else NONE)
            for p in self.w_down:
                self.assertEqual(res[("w", p)][0], PREFERRED_LEADER_NOT_AVAILABLE, res)
                self.assertTrue(res[("w", p)][1])
            for p in self.w_up:
                self.assertEqual(res[("w", p)], (ELECTION_NOT_NEEDED, None))
            self.assertEqual(res[("w", 7)][0], UNKNOWN_TOPIC_OR_PARTITION)
            self.assertEqual(res[("nosuch", 0)][0], UNKNOWN_TOPIC_OR_PARTITION)
            for p in self.solo_down:
                self.assertEqual(res[("solo", p)][0], PREFERRED_LEADER_NOT_AVAILABLE)
            self.assertEqual(len(res), len(self.w_down) + len(self.w_up) + 2 + len(self.solo_down))

    def test_unclean_with_every_replica_down(self):
        for version in (1, 2):
            top, res = elect_leaders(self.ctrl.port, version, {"solo": self.solo_down, "w": self.w_up},
                                     election_type=UNCLEAN)
            self.assertEqual(top, NONE)
            for p in self.solo_down:
                self.assertEqual(res[("solo", p)][0], ELIGIBLE_LEADERS_NOT_AVAILABLE, res)
            for p in self.w_up:  # a live leader: nothing to do
                self.assertEqual(res[("w", p)][0], ELECTION_NOT_NEEDED)
            # unchanged
            md = partitions_of(self.ctrl.port, "solo")
            self.assertTrue(all(md[p]["leader"] == -1 for p in self.solo_down), md)

    def test_every_partition_lists_only_what_was_not_needless(self):
        top, res = elect_leaders(self.ctrl.port, 1, None)
        self.assertEqual(top, NONE)
        expected = {("w", p) for p in self.w_down} | {("solo", p) for p in self.solo_down}
        self.assertEqual(set(res), expected)
        self.assertTrue(all(err == PREFERRED_LEADER_NOT_AVAILABLE for err, _ in res.values()), res)

    def test_not_controller(self):
        for version in (0, 2):
            top, res = elect_leaders(self.other.port, version, {"w": self.w_up})
            self.assertEqual(top, None if version == 0 else NONE)
            self.assertEqual({k: e for k, (e, _) in res.items()}, {("w", p): NOT_CONTROLLER for p in self.w_up})

    def test_malformed_request_closes_only_that_connection(self):
        with KafkaConnection(self.ctrl.port) as bystander:
            with KafkaConnection(self.ctrl.port) as bad:
                # v1: election type, then a topic count promising more than is there
                bad.send(ELECT_LEADERS, 1, struct.pack(">bi", 0, 1000))
                try:
                    frame = bad.recv_frame()
                except (ConnectionError, socket.timeout, OSError):
                    frame = None
                self.assertIsNone(frame)
            with KafkaConnection(self.ctrl.port) as bad:
                bad.send(ELECT_LEADERS, 1, struct.pack(">b", 7) + struct.pack(">ii", -1, 1000))
                try:
                    frame = bad.recv_frame()
                except (ConnectionError, socket.timeout, OSError):
                    frame = None
                self.assertIsNone(frame, "an unknown election type is refused")
            self.assertEqual(vt.api_versions(self.ctrl.port)[ELECT_LEADERS], (0, 2))
            # the bystander's connection still serves
            cid = bystander.send(3, 1, vt.Writer().array([], lambda w, t: w.string(t)).bytes())
            self.assertEqual(bystander.recv(expect_cid=cid)[0], cid)

    def test_described_broker_configs(self):
        from test_api_admin import describe_configs

        res = describe_configs(self.ctrl.port, 0, [(4, str(self.ctrl.id), ["leader.imbalance.check.interval.seconds",
                                                                               "leader.imbalance.per.broker.percentage"])])
        entries = res[0][4]
        self.assertEqual(entries["leader.imbalance.check.interval.seconds"]["value"], "300")
        self.assertEqual(entries["leader.imbalance.per.broker.percentage"]["value"], "10")


if __name__ == "__main__":
    unittest.main()
