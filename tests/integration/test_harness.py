"""The harness itself: ZooKeeper, chroots, waits and process cleanup.
Needs no broker, so it guards the test infrastructure on its own."""

import os
import signal
import subprocess
import time
import unittest

import vltava_test as vt


class HarnessTest(unittest.TestCase):
    def test_zookeeper_answers_and_chroots_are_isolated(self):
        self.assertEqual(vt.four_letter_word(int(vt.zookeeper().rsplit(":", 1)[1]), "ruok"), b"imok")
        a = vt.Cluster(brokers=1, start=False)
        b = vt.Cluster(brokers=1, start=False)
        try:
            self.assertNotEqual(a.chroot, b.chroot)
            self.assertTrue(a.zk_connect.startswith(vt.zookeeper() + "/"))
            self.assertIsNone(a.zk_get("/brokers"))
            self.assertIsNone(a.zk_children("/brokers"))
            a.zk().create(a.zk_path("/brokers/ids/7"), b"seven", makepath=True)
            self.assertEqual(a.zk_get("/brokers/ids/7"), b"seven")
            self.assertEqual(a.zk_children("/brokers/ids"), ["7"])
            self.assertIsNone(b.zk_get("/brokers/ids/7"))
        finally:
            a.close()
            b.close()

    def test_ports_and_paths_are_distinct(self):
        c = vt.Cluster(brokers=3, start=False)
        try:
            ports = [p for br in c.brokers for p in (br.port, br.rpc_port)]
            self.assertEqual(len(set(ports)), 6)
            self.assertEqual([br.id for br in c.brokers], [1, 2, 3])
            self.assertEqual(c.bootstrap, ",".join("127.0.0.1:%d" % br.port for br in c.brokers))
            self.assertEqual(c.broker(2).logfile, os.path.join(c.tmpdir, "broker-2.log"))
            self.assertEqual(c.broker(3).datadir, os.path.join(c.tmpdir, "data-3"))
            cfg = c.broker(1).config
            self.assertEqual(cfg["broker.id"], "1")
            self.assertEqual(cfg["listeners"], "PLAINTEXT://127.0.0.1:%d" % c.broker(1).port)
            self.assertEqual(cfg["zookeeper.connect"], c.zk_connect)
        finally:
            c.close()

    def test_wait_for_times_out_naming_what(self):
        start = time.monotonic()
        with self.assertRaisesRegex(AssertionError, "the impossible"):
            vt.wait_for(lambda: False, timeout=0.3, what="the impossible")
        self.assertLess(time.monotonic() - start, 5)
        self.assertEqual(vt.wait_for(lambda: 42, timeout=1), 42)

    def test_spawned_process_is_tracked_and_reaped(self):
        tmp = vt.tempfile.mkdtemp(prefix="vltava-harness-")
        proc = vt._spawn(["sleep", "600"], os.path.join(tmp, "sleep.log"))
        self.assertIn(proc, vt._live_processes)
        os.kill(proc.pid, signal.SIGKILL)
        self.assertEqual(vt._reap(proc, 10), -signal.SIGKILL)
        self.assertNotIn(proc, vt._live_processes)
        vt.shutil.rmtree(tmp, ignore_errors=True)

    def test_child_dies_with_harness_process(self):
        # A python child that spawns a sleeper through the harness, then is
        # killed -9: the sleeper must go with it (PR_SET_PDEATHSIG).
        tmp = vt.tempfile.mkdtemp(prefix="vltava-harness-")
        pidfile = os.path.join(tmp, "pid")
        code = ("import vltava_test as vt, time\n"
                "p = vt._spawn(['sleep', '600'], %r)\n"
                "open(%r, 'w').write(str(p.pid))\n"
                "time.sleep(600)\n" % (os.path.join(tmp, "log"), pidfile))
        parent = subprocess.Popen(["/usr/bin/python3", "-c", code], cwd=os.path.dirname(vt.__file__))
        def read_pid():
            with open(pidfile) as f:
                return int(f.read() or 0)

        try:
            child = vt.wait_for(lambda: os.path.exists(pidfile) and read_pid(), timeout=20, what="pidfile")
            os.kill(child, 0)
        finally:
            parent.kill()
            parent.wait()

        def gone():
            try:
                with open("/proc/%d/stat" % child) as f:
                    return f.read().split()[2] == "Z"
            except FileNotFoundError:
                return True

        vt.wait_for(gone, timeout=10, what="orphaned sleeper %d to die" % child)
        vt.shutil.rmtree(tmp, ignore_errors=True)

    def test_broker_crash_fails_the_test(self):
        """A broker ended by a signal the harness did not send (an abort, a
        segfault) fails the test at close; harness kills and a normal exit
        do not."""
        c = vt.Cluster(brokers=2)
        try:
            c.broker(1).kill()  # the harness's own SIGKILL: expected
            os.kill(c.broker(2).pid, signal.SIGABRT)
            vt.wait_for(lambda: not c.broker(2).alive(), timeout=30, what="broker 2 to die")
        except BaseException:
            c.close(failed=True)
            raise
        with self.assertRaisesRegex(AssertionError, r"broker 2 \(pid \d+\) died of signal 6"):
            c.close()
        vt.shutil.rmtree(c.tmpdir, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
