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

    def client(self, tmp, name):
        p = vt.ClientProcess("echo.py", python=vt.SYSTEM_PYTHON, logdir=tmp, name=name)
        self.addCleanup(p.close)
        p.wait_event(lambda e: e["ev"] == "started", 30, what="echo.py to start")
        return p

    def test_client_process_events_commands_and_exits(self):
        """ClientProcess: request() gets its reply, a wait for an event that
        never comes ends at its deadline, a "fatal" event and an exit fail
        the wait at once, stop() asserts a clean exit and close() leaves no
        process behind."""
        tmp = vt.tempfile.mkdtemp(prefix="vltava-harness-")
        p = self.client(tmp, "echo-1")
        self.assertEqual(p.request(op="echo", word="hi", timeout=30)["word"], "hi")
        start = time.monotonic()
        with self.assertRaisesRegex(AssertionError, "timed out .* waiting for nothing"):
            p.wait_event(lambda e: False, 0.3, what="nothing")
        self.assertLess(time.monotonic() - start, 10)
        self.assertEqual(p.stop(timeout=30), 0)
        self.assertEqual(p.last("result")["ok"], True)
        self.assertNotIn(p.proc, vt._live_processes)

        p = self.client(tmp, "echo-2")
        at = p.mark()
        p.send(op="fail")
        with self.assertRaisesRegex(AssertionError, "fatal: .*asked to fail"):
            p.wait_event(lambda e: False, 60, start=at)
        self.assertEqual(p.wait_exit(30), 2)

        p = self.client(tmp, "echo-3")
        p.send(op="exit", code=5)
        with self.assertRaisesRegex(AssertionError, "echo-3 exited waiting for a reply"):
            p.wait_event(lambda e: e["ev"] == "reply", 60, what="a reply")
        self.assertEqual(p.wait_exit(30), 5)

        p = self.client(tmp, "echo-4")
        p.pause()
        self.assertEqual(p.close(), -signal.SIGKILL)  # a stopped process too
        self.assertNotIn(p.proc, vt._live_processes)
        vt.shutil.rmtree(tmp, ignore_errors=True)

    def test_run_client_checks_exit_and_result(self):
        tmp = vt.tempfile.mkdtemp(prefix="vltava-harness-")
        events = vt.run_client("echo.py", python=vt.SYSTEM_PYTHON, timeout=30, logdir=tmp, name="run-1")
        self.assertEqual([e["ev"] for e in events], ["started", "result"])
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
