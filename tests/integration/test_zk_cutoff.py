"""Issue 9: a broker cut off from ZooKeeper for longer than its session
timeout takes its session as lost. ZooKeeper expires the session and the
controller moves the broker's leaderships, but libzookeeper reports the
expiry only once it reaches the server again; until then the broker kept
acting as leader, and clients that asked it stayed with it for the whole
cut. Now it steps down once disconnected for longer than the session
timeout (Metadata shows no leadership of its own, Produce answers
NOT_LEADER_OR_FOLLOWER) and re-registers in a new session once it gets
through. The cut is a proxy between that broker and ZooKeeper that drops
everything in both directions (no root needed; tests/fault cuts real links
with iptables)."""

import socket
import threading
import time
import unittest

import vltava_test as vt

NOT_LEADER_OR_FOLLOWER = 6


class BlackholeProxy:
    """A TCP proxy to target; while cut, bytes are dropped both ways and
    closes are not passed on, as on a link that went silent."""

    def __init__(self, target_host, target_port):
        self.target = (target_host, target_port)
        self.cut = False
        self.stopping = False
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.sockets = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopping:
            try:
                client, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src, dst):
        src.settimeout(0.2)
        while not self.stopping:
            try:
                data = src.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            if not data:
                if self.cut:
                    return  # a silent link passes no close either
                break
            if self.cut:
                continue
            try:
                dst.sendall(data)
            except OSError:
                break
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.stopping = True
        self.listener.close()
        for s in self.sockets:
            try:
                s.close()
            except OSError:
                pass


class ZooKeeperCutOffTest(unittest.TestCase):
    def test_cut_off_leader_steps_down_and_reregisters(self):
        zk_host, zk_port = vt.zookeeper().split(":")
        proxy = BlackholeProxy(zk_host, int(zk_port))
        self.addCleanup(proxy.close)

        def config(broker_id):
            # Broker 1 reaches ZooKeeper through the proxy (same chroot).
            return {"replica.lag.time.max.ms": 3000}

        with vt.Cluster(brokers=3, broker_config=config, start=False) as c:
            cut = c.broker(1)
            cut.config["zookeeper.connect"] = "127.0.0.1:%d%s" % (proxy.port, c.chroot)
            for b in c.brokers:
                b.start()
            c.wait_ready()
            c.create_topic("cut", partitions=6, rf=3)
            md = vt.raw_metadata(c.broker(2).port, ["cut"])["topics"]["cut"]["partitions"]
            led = sorted(p for p, x in md.items() if x["leader"] == 1)
            self.assertTrue(led, "broker 1 leads none of %s" % md)
            p = led[0]
            session = c.zk_stat("/brokers/ids/1").ephemeralOwner

            proxy.cut = True
            t0 = time.monotonic()
            # ZooKeeper expires the session (6 s) and the controller moves
            # the leadership; the cut-off broker, disconnected for longer
            # than the session timeout, stops claiming it while still cut.
            vt.wait_for(lambda: vt.raw_metadata(c.broker(2).port, ["cut"])["topics"]["cut"]["partitions"][p]
                        ["leader"] not in (-1, 1), timeout=40, what="another leader for cut-%d" % p)
            vt.wait_for(lambda: vt.raw_metadata(cut.port, ["cut"])["topics"]["cut"]["partitions"][p]["leader"] != 1,
                        timeout=30, what="the cut-off broker to stop claiming cut-%d" % p)
            stepped_down_s = time.monotonic() - t0
            self.assertIn("past the 6000 ms session timeout", cut.log_text())
            self.assertIn("steps down as leader", cut.log_text())
            with vt.KafkaConnection(cut.port) as conn:
                batch = vt.build_record_batch([(None, b"to-a-deposed-leader")])
                cid = vt.raw_produce(conn, "cut", p, batch, acks=-1, timeout_ms=5000)
                answer = vt.read_produce_response(conn.recv(cid)[1])
            self.assertEqual(answer[("cut", p)][0], NOT_LEADER_OR_FOLLOWER)
            self.assertTrue(proxy.cut, "the cut must still be in force")

            proxy.cut = False
            def new_session():
                st = c.zk_stat("/brokers/ids/1")
                return st is not None and st.ephemeralOwner != session

            vt.wait_for(new_session, timeout=40, what="broker 1 registered in a new session")
            # ZooKeeper shows the znode before the broker hears its create
            # answered and says so.
            vt.wait_for(lambda: "re-registered broker 1 in a new ZooKeeper session" in cut.log_text(), timeout=10,
                        what="broker 1 to log its new registration")
            vt.wait_for(lambda: 1 in vt.raw_metadata(c.broker(2).port, ["cut"])["topics"]["cut"]["partitions"][p]
                        ["isr"], timeout=60, what="broker 1 back in the ISR of cut-%d" % p)
            print("stepped down %.1f s into the cut" % stepped_down_s)


if __name__ == "__main__":
    unittest.main()
