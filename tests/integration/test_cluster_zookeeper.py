"""Issue 3 §2 and issue 4 §1: the brokers' ZooKeeper sessions. A ZooKeeper
restart is survived (brokers keep serving from their cache, reconnect,
re-arm their watches and take admin requests again); a session that expires
while the broker is frozen is replaced by a new one, with the broker
registered again; a second broker with a live broker's id is refused with a
clear message, while a restart soon after a kill -9 that lost its session
file waits out its own stale registration; unclean leader election picks a
live out-of-sync replica only when enabled; racks spread replicas."""

import os
import time
import unittest

import vltava_test as vt
from test_cluster import (consume_all, leader_and_isr, metadata_v7, partition_state, pb_parse, produce,
                          rpc_call, topic_id)


class PrivateZooKeeperCluster:
    """A Cluster on a ZooKeeper of its own, which the test may stop."""

    def __init__(self, brokers, **kw):
        self.zk = vt.ZooKeeperServer().start()
        saved = os.environ.get("VLTAVA_TEST_ZK")
        os.environ["VLTAVA_TEST_ZK"] = self.zk.connect
        try:
            self.cluster = vt.Cluster(brokers=brokers, **kw)
        except BaseException:
            self.zk.cleanup()
            raise
        finally:
            if saved is None:
                del os.environ["VLTAVA_TEST_ZK"]
            else:
                os.environ["VLTAVA_TEST_ZK"] = saved

    def __enter__(self):
        return self.cluster, self.zk

    def __exit__(self, exc_type, exc, tb):
        try:
            self.cluster.__exit__(exc_type, exc, tb)
        finally:
            self.zk.cleanup()
        return False


class ZooKeeperSessionTest(unittest.TestCase):
    def test_survives_zookeeper_restart(self):
        with PrivateZooKeeperCluster(2) as (c, zk):
            c.create_topic("z", partitions=2, rf=1)
            produce(c.bootstrap, "z", [(p, None, b"before-%d" % p) for p in range(2)])
            zk.stop()
            # While ZooKeeper is away the brokers serve from their cache.
            vt.wait_for(lambda: all("lost the ZooKeeper connection" in b.log_text() for b in c.brokers),
                        timeout=30, what="the brokers to notice ZooKeeper is gone")
            produce(c.bootstrap, "z", [(p, None, b"during-%d" % p) for p in range(2)])
            md = metadata_v7(c.brokers[0].port, ["z"])
            self.assertEqual(sorted(md["brokers"]), [1, 2])
            self.assertTrue(all(p["leader"] > 0 for p in md["topics"]["z"]["partitions"].values()))
            zk.start()
            # Registrations and watches are back: topic creation through the
            # controller works and every broker learns of the new topic.
            vt.wait_for(lambda: c.zk_children("/brokers/ids") == ["1", "2"], timeout=30,
                        what="both brokers registered after the restart")
            c.create_topic("z2", partitions=4, rf=2)
            got = consume_all(c.bootstrap, "z", [0, 1], 4)
            self.assertEqual(sorted(v for _, _, _, v in got),
                             [b"before-0", b"before-1", b"during-0", b"during-1"])
            for b in c.brokers:
                self.assertIn("ZooKeeper session connected", b.log_text())

    def test_expired_session_reregisters(self):
        with vt.Cluster(brokers=2) as c:
            c.create_topic("s", partitions=2, rf=2)
            frozen = c.broker(2)
            owner = c.zk_stat("/brokers/ids/2").ephemeralOwner
            frozen.pause()
            vt.wait_for(lambda: c.zk_stat("/brokers/ids/2") is None, timeout=30,
                        what="the frozen broker's session to expire")
            vt.wait_for(lambda: sorted(metadata_v7(c.broker(1).port)["brokers"]) == [1], timeout=30,
                        what="broker 1 to drop the frozen broker")
            frozen.resume()
            vt.wait_for(lambda: c.zk_stat("/brokers/ids/2") is not None, timeout=30,
                        what="the broker to register again in a new session")
            self.assertNotEqual(c.zk_stat("/brokers/ids/2").ephemeralOwner, owner)
            self.assertIn("re-registered broker 2 in a new ZooKeeper session", frozen.log_text())
            c.wait_ready()
            c.create_topic("s2", partitions=2, rf=2)

    def test_duplicate_id_refused_but_restart_after_kill_waits(self):
        with vt.Cluster(brokers=1) as c:
            b1 = c.broker(1)
            dup = vt.Broker(1, c.tmpdir, c.zk_connect)
            dup.datadir = os.path.join(c.tmpdir, "data-dup")
            dup.logfile = os.path.join(c.tmpdir, "broker-dup.log")
            dup.config_file = os.path.join(c.tmpdir, "broker-dup.properties")
            dup.config["log.dirs"] = dup.datadir
            dup.start()
            vt.wait_for(lambda: not dup.alive(), timeout=30, what="the duplicate to exit")
            self.assertNotEqual(dup.proc.returncode, 0)
            self.assertIn("broker id 1 is already registered by a live broker at 127.0.0.1:%d" % b1.port,
                          dup.log_text())
            self.assertTrue(b1.alive())
            # kill -9 and restart at once: the old session's ephemeral znode
            # is still there. Without the session file that would end it
            # (test_fast_restart), the broker waits it out instead of failing.
            c.create_topic("k", partitions=1, rf=1)
            produce(c.bootstrap, "k", [(0, None, b"kept")])
            b1.kill()
            os.unlink(os.path.join(b1.datadir, "zookeeper-session"))
            t0 = time.monotonic()
            b1.start()
            c.wait_ready(timeout=60)
            print("\nrestart after kill -9 without its session file served again after %.2f s"
                  % (time.monotonic() - t0))
            self.assertIn("probably this broker's previous process", b1.log_text())
            got = consume_all(c.bootstrap, "k", [0], 1)
            self.assertEqual([v for _, _, _, v in got], [b"kept"])

    def test_unclean_leader_election_only_when_enabled(self):
        for unclean in (False, True):
            with self.subTest(unclean=unclean), \
                    vt.Cluster(brokers=3, broker_config={"unclean.leader.election.enable":
                                                         "true" if unclean else "false"}) as c:
                ctrl = c.controller_id()
                # With 3 brokers and rf 2, one of 3 partitions lives on the
                # two brokers that are not the controller.
                c.create_topic("u", partitions=3, rf=2)
                md = metadata_v7(c.brokers[0].port, ["u"])["topics"]["u"]["partitions"]
                p = next(p for p, v in md.items() if ctrl not in v["replicas"])
                first, second = md[p]["replicas"]
                self.assertEqual(md[p]["leader"], first)
                c.broker(first).kill()  # second leads, the ISR shrinks to it
                vt.wait_for(lambda: partition_state(c, "u", p)[:3] == (second, 1, [second]),
                            timeout=30, what="broker %d to lead u-%d alone" % (second, p))
                # the only ISR member goes too (before first is back: a
                # running first would catch up and rejoin the ISR)
                c.broker(second).kill()
                vt.wait_for(lambda: partition_state(c, "u", p)[:3] == (-1, 2, [second]),
                            timeout=30, what="u-%d offline at epoch 2" % p)
                c.broker(first).start()  # back, but not in the ISR
                c.wait_ready()
                if unclean:
                    vt.wait_for(lambda: partition_state(c, "u", p)[:3] == (first, 3, [first]),
                                timeout=30, what="u-%d led by %d, unclean, at epoch 3" % (p, first))
                else:
                    deadline = time.monotonic() + 2
                    while time.monotonic() < deadline:  # it stays offline
                        self.assertEqual(partition_state(c, "u", p)[:3], (-1, 2, [second]))
                        time.sleep(0.1)
                expected = first if unclean else -1
                vt.wait_for(lambda: metadata_v7(c.broker(first).port, ["u"])["topics"]["u"]
                            ["partitions"][p]["leader"] == expected, timeout=30,
                            what="broker %d's Metadata to show leader %d" % (first, expected))

    def test_replication_listener_host_is_registered(self):
        """Peers reach a broker's RPC listener at its replication.listener
        host, which need not be the advertised Kafka host."""
        def config(i):
            return {"replication.listener": "127.0.0.%d:%d" % (i + 1, vt.free_port())}

        with vt.Cluster(brokers=2, broker_config=config) as c:
            for b in c.brokers:
                host, port = b.config["replication.listener"].split(":")
                reg = pb_parse(c.zk_get("/brokers/ids/%d" % b.id))
                self.assertEqual(reg[2][0], b"127.0.0.1")  # Kafka host (advertised)
                self.assertEqual(reg[5][0], host.encode())  # RPC host
                self.assertEqual(reg[4][0], int(port))
                b.rpc_port = int(port)
                b.rpc_host = host
            c.create_topic("h", partitions=2, rf=2)
            # the RPC listener answers there (a stale epoch, so it is refused)
            tid = topic_id(c, "h")
            for b in c.brokers:
                md = metadata_v7(b.port, ["h"])["topics"]["h"]["partitions"][0]
                answer = rpc_call(b.rpc_port, 1, leader_and_isr(9, 0, "h", tid, 0, md["leader"], 99,
                                                                md["replicas"]), host=b.rpc_host)
                self.assertEqual(answer.get(4, [0])[0], 11)

    def test_racks_spread_replicas(self):
        racks = {1: "r1", 2: "r1", 3: "r2", 4: "r2"}
        with vt.Cluster(brokers=4, broker_config=lambda i: {"broker.rack": racks[i]}) as c:
            c.create_topic("racked", partitions=8, rf=2)
            md = metadata_v7(c.brokers[0].port, ["racked"])
            self.assertEqual({i: v[2] for i, v in md["brokers"].items()}, racks)
            leaders = {}
            for p in md["topics"]["racked"]["partitions"].values():
                self.assertEqual(len({racks[r] for r in p["replicas"]}), 2, p)
                leaders[p["leader"]] = leaders.get(p["leader"], 0) + 1
            self.assertEqual(leaders, {1: 2, 2: 2, 3: 2, 4: 2})


if __name__ == "__main__":
    unittest.main()
