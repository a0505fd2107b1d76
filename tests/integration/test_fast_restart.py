"""Issue 10 §2: a broker restarted after kill -9 serves at once instead of
waiting for its old ZooKeeper session to expire. The broker keeps its
session's client id in <log.dir>/zookeeper-session; a restarted process
resumes that session, deletes its ephemerals and closes it, so the
controller sees a leave and a join. The bounds below are half the session
timeout (18 s, set explicitly): they check that nothing waits for the
expiry, not a speed.

(A second broker on a locked log directory is refused:
test_bad_input.test_second_broker_on_a_locked_log_dir_is_refused.)"""

import os
import socket
import stat
import time
import unittest

import vltava_test as vt
from test_cluster import consume_all, metadata_v7, partition_state, produce
from test_zk_cutoff import BlackholeProxy

SESSION_TIMEOUT_MS = 18000
# Well before the old session could expire.
BOUND_S = SESSION_TIMEOUT_MS / 1000 / 2
CONFIG = {"zookeeper.session.timeout.ms": str(SESSION_TIMEOUT_MS), "min.insync.replicas": "2"}
LINE_BYTES = 77  # "vltava-zookeeper-session 1 <16 hex> <32 hex>\n"


def session_file(broker):
    return os.path.join(broker.datadir, "zookeeper-session")


def read_session_file(broker):
    with open(session_file(broker), "rb") as f:
        return f.read()


class OneWayProxy(BlackholeProxy):
    """While cut, drops only what ZooKeeper sends: the broker hears
    nothing, but its pings and reconnection attempts keep its session alive
    on the server."""

    def _pump(self, src, dst):
        from_server = src in self.sockets[1::2]
        src.settimeout(0.2)
        while not self.stopping:
            try:
                data = src.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            if not data:
                break
            if self.cut and from_server:
                continue
            try:
                dst.sendall(data)
            except OSError:
                break
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def restore(self):
        """Ends the cut and resets the connections made during it, so that
        the client reconnects at once rather than after the connection
        attempt whose answer was dropped times out (while the session
        it gave up may have expired meanwhile)."""
        self.cut = False
        for sock in list(self.sockets):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class FastRestartTest(unittest.TestCase):
    def test_kill9_leader_restart_moves_leaders_and_serves(self):
        with vt.Cluster(brokers=3, broker_config=CONFIG) as c:
            topic, parts = "fast", 6
            c.create_topic(topic, partitions=parts, rf=3)
            acked = []
            for p in range(parts):
                produce(c.bootstrap, topic, [(p, None, b"before-%d" % p)])
                acked.append(b"before-%d" % p)
            ctrl = c.controller_id()
            victim = next(b for b in c.brokers if b.id != ctrl)
            line = read_session_file(victim)
            self.assertEqual(len(line), LINE_BYTES)
            self.assertEqual(stat.S_IMODE(os.stat(session_file(victim)).st_mode), 0o600)
            led = {p: partition_state(c, topic, p) for p in range(parts)
                   if partition_state(c, topic, p)[0] == victim.id}
            self.assertTrue(led, "broker %d leads none of %s" % (victim.id, topic))

            victim.kill()
            t0 = time.monotonic()
            victim.start()

            def moved():
                for p, (_, epoch, _, _, _) in led.items():
                    leader, new_epoch, isr, _, _ = partition_state(c, topic, p)
                    if new_epoch <= epoch or leader < 0 or leader == victim.id:
                        return False
                return True

            vt.wait_for(moved, timeout=BOUND_S, what="new leaders for %s" % sorted(led))
            moved_s = time.monotonic() - t0
            victim.wait_ready(timeout=BOUND_S, expected_ids=[1, 2, 3])
            ready_s = time.monotonic() - t0
            print("\nkill -9 + restart: registered and serving after %.2f s, its %d partitions "
                  "led elsewhere after %.2f s (session timeout %d ms)"
                  % (ready_s, len(led), moved_s, SESSION_TIMEOUT_MS))
            self.assertLess(ready_s, BOUND_S)
            log = victim.log_text()
            self.assertIn("closed the previous process's ZooKeeper session", log)
            self.assertNotIn("waiting up to", log)
            # A new session, a new file.
            self.assertNotEqual(read_session_file(victim), line)

            # Every broker agrees with ZooKeeper on the leaders (the
            # preferred replica may take its partitions back once in sync),
            # and the restarted broker rejoins the ISR of what it led.
            def agreed():
                states = {p: partition_state(c, topic, p) for p in range(parts)}
                for b in c.brokers:
                    t = metadata_v7(b.port, [topic])["topics"][topic]["partitions"]
                    if any(t[p]["leader"] != states[p][0] or states[p][0] < 0 for p in states):
                        return False
                return all(victim.id in states[p][2] for p in led)

            vt.wait_for(agreed, timeout=60, what="brokers to agree and the ISR to regrow")
            for p in range(parts):
                produce(c.bootstrap, topic, [(p, None, b"after-%d" % p)])
                acked.append(b"after-%d" % p)
            got = consume_all(c.bootstrap, topic, list(range(parts)), len(acked))
            self.assertEqual(sorted(v for _, _, _, v in got), sorted(acked))

    def test_restart_unseen_by_the_controller_is_a_leave_and_a_join(self):
        # The controller is frozen while the victim restarts: it never sees
        # the registration gone. Its next reload finds the victim leading
        # from before its current registration and elects again. (Without
        # the preferred-leader rebalance, which would give the victim its
        # partitions back as soon as it is in sync.)
        with vt.Cluster(brokers=3, broker_config=dict(CONFIG, **{
                "auto.leader.rebalance.enable": "false"})) as c:
            topic, parts = "unseen", 6
            c.create_topic(topic, partitions=parts, rf=3)
            ctrl = c.broker(c.controller_id())
            victim = next(b for b in c.brokers if b.id != ctrl.id)
            led = {p: partition_state(c, topic, p) for p in range(parts)
                   if partition_state(c, topic, p)[0] == victim.id}
            self.assertTrue(led)
            produce(c.bootstrap, topic, [(p, None, b"v%d" % p) for p in range(parts)])
            ctrl.pause()
            try:
                victim.kill()
                victim.start()
                vt.wait_for(lambda: "registered broker %d" % victim.id in
                            victim.log_text().split("starting broker %d" % victim.id)[-1],
                            timeout=BOUND_S, what="the victim to register again")
                # Nobody else elects while the controller is frozen.
                for p, (_, epoch, _, _, _) in led.items():
                    self.assertEqual(partition_state(c, topic, p)[1], epoch)
            finally:
                ctrl.resume()
            t0 = time.monotonic()

            def moved():
                for p, (_, epoch, _, _, _) in led.items():
                    leader, new_epoch, isr, _, _ = partition_state(c, topic, p)
                    if new_epoch <= epoch or leader in (-1, victim.id):
                        return False
                return True

            vt.wait_for(moved, timeout=BOUND_S, what="new leaders for %s" % sorted(led))
            print("\nrestart unseen by the controller: its partitions led elsewhere %.2f s after "
                  "the controller resumed" % (time.monotonic() - t0))
            produce(c.bootstrap, topic, [(p, None, b"w%d" % p) for p in range(parts)])
            got = consume_all(c.bootstrap, topic, list(range(parts)), 2 * parts)
            self.assertEqual(len(got), 2 * parts)

    def test_kill9_controller_restart_elects_at_once(self):
        with vt.Cluster(brokers=3, broker_config=CONFIG) as c:
            c.create_topic("ctl", partitions=3, rf=3)
            ctrl = c.broker(c.controller_id())
            owner = c.zk_stat("/controller").ephemeralOwner
            ctrl.kill()
            t0 = time.monotonic()
            ctrl.start()

            def new_controller():
                st = c.zk_stat("/controller")
                if st is None or st.ephemeralOwner == owner:
                    return False
                ids = {metadata_v7(b.port)["controller_id"] for b in c.brokers if b.id != ctrl.id}
                return len(ids) == 1 and -1 not in ids

            vt.wait_for(new_controller, timeout=BOUND_S, what="a new controller")
            print("\nkill -9 + restart of the controller: a new controller after %.2f s"
                  % (time.monotonic() - t0))
            ctrl.wait_ready(timeout=BOUND_S, expected_ids=[1, 2, 3])
            c.wait_topic_leaders("ctl", 3)
            self.assertLess(time.monotonic() - t0, BOUND_S)

    def test_session_lost_while_the_server_holds_it_is_closed(self):
        # The broker hears nothing from ZooKeeper for longer than its session
        # timeout and gives the session up, while the server, still hearing
        # from it, keeps the session and its registration. Once the link is
        # back, the broker closes that session instead of waiting for it to
        # expire before it can register again.
        zk_host, zk_port = vt.zookeeper().split(":")
        proxy = OneWayProxy(zk_host, int(zk_port))
        self.addCleanup(proxy.close)
        with vt.Cluster(brokers=1, start=False) as c:  # session timeout 6000 ms
            b = c.broker(1)
            b.config["zookeeper.connect"] = "127.0.0.1:%d%s" % (proxy.port, c.chroot)
            b.start()
            c.wait_ready()
            session = c.zk_stat("/brokers/ids/1").ephemeralOwner
            proxy.cut = True
            vt.wait_for(lambda: "past the 6000 ms session timeout" in b.log_text(), timeout=30,
                        what="the broker to give its session up")
            self.assertEqual(c.zk_stat("/brokers/ids/1").ephemeralOwner, session,
                             "the server must still hold the old session")
            proxy.restore()
            t0 = time.monotonic()

            def new_session():
                st = c.zk_stat("/brokers/ids/1")
                return st is not None and st.ephemeralOwner != session

            vt.wait_for(new_session, timeout=BOUND_S, what="broker 1 registered in a new session")
            print("\nre-registered %.2f s after the link came back" % (time.monotonic() - t0))
            vt.wait_for(lambda: "closed the lost ZooKeeper session 0x%x" % session in b.log_text(),
                        timeout=10, what="the broker to close its lost session")
            b.wait_ready()

    def test_bad_and_stale_session_files(self):
        with vt.Cluster(brokers=1, broker_config=CONFIG) as c:
            b = c.broker(1)
            live_line = read_session_file(b)
            # A clean stop closes the session and removes the file.
            self.assertEqual(b.stop(), 0)
            self.assertFalse(os.path.exists(session_file(b)))
            cases = [
                ("garbage", os.urandom(LINE_BYTES), "is unusable"),
                ("wrong size", live_line[:-5], "is unusable (%d bytes, not %d)"
                 % (LINE_BYTES - 5, LINE_BYTES)),
                ("too long", live_line + b"x", "is unusable"),
                # The session it names was closed by the clean stop.
                ("expired", live_line, "had expired"),
            ]
            for what, content, message in cases:
                with self.subTest(what):
                    with open(session_file(b), "wb") as f:
                        f.write(content)
                    before = len(b.log_text())
                    t0 = time.monotonic()
                    b.start()
                    b.wait_ready(timeout=BOUND_S)
                    self.assertLess(time.monotonic() - t0, BOUND_S)
                    log = b.log_text()[before:]
                    self.assertIn(message, log)
                    self.assertNotIn("waiting up to", log)
                    # Registered in a new session, whose id it now keeps.
                    fresh = read_session_file(b)
                    self.assertEqual(len(fresh), LINE_BYTES)
                    self.assertNotEqual(fresh, live_line)
                    self.assertEqual(b.stop(), 0)


if __name__ == "__main__":
    unittest.main()
