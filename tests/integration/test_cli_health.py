"""`vltava cluster health` and `vltava cluster health --local` against real
brokers: text and JSON output, each exit code (0 healthy, 9 not healthy, 3
no answer, 2 bad arguments), --local naming the broker it reached by its id
whatever address was used, looking at the first address only, and a broker
that answers but is no longer registered. A broker going down and coming
back is in test_metrics.py."""

import json
import unittest

import vltava_test as vt

EXIT_OK, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_UNHEALTHY = 0, 2, 3, 9


def describe(proc):
    return "exit %d\nstdout: %r\nstderr: %r" % (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])


class HealthTestCase(vt.SharedClusterTest):
    def health(self, brokers, *args, code=EXIT_OK):
        proc = vt.run_cli("-b", brokers, "cluster", "health", *args, timeout=60)
        for marker in ("Sanitizer", "runtime error:"):
            self.assertNotIn(marker, proc.stderr, describe(proc))
        self.assertEqual(proc.returncode, code, describe(proc))
        return proc

    def health_json(self, brokers, *args, code=EXIT_OK):
        proc = self.health(brokers, "--format", "json", *args, code=code)
        return json.loads(proc.stdout)


class ClusterHealthTest(HealthTestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = vt.Cluster(brokers=3)
        cls.cluster.create_topic("health", partitions=3, rf=3)

    def test_healthy_json(self):
        verdict = self.health_json(self.cluster.bootstrap)
        self.assertEqual(verdict, {
            "healthy": True,
            "unhealthy_reasons": [],
            "controller_id": self.cluster.controller_id(),
            "live_brokers": [1, 2, 3],
            "brokers_down": [],
            "leaderless_partitions": [],
            "under_replicated_partitions": [],
        })

    def test_healthy_text(self):
        out = self.health(self.cluster.bootstrap).stdout
        self.assertRegex(out, r"(?m)^HEALTHY\s+yes$")
        self.assertRegex(out, r"(?m)^REASONS\s+-$")
        self.assertRegex(out, r"(?m)^CONTROLLER\s+%d$" % self.cluster.controller_id())
        self.assertRegex(out, r"(?m)^LIVE BROKERS\s+1 2 3$")
        self.assertRegex(out, r"(?m)^BROKERS DOWN\s+-$")
        self.assertRegex(out, r"(?m)^UNDER-REPLICATED\s+0$")

    def test_local_names_each_broker(self):
        controller = self.cluster.controller_id()
        for b in self.cluster.brokers:
            # "localhost" is not what the brokers advertise (127.0.0.1): the
            # broker is found by its id, not by its address.
            for host in ("127.0.0.1", "localhost"):
                verdict = self.health_json("%s:%d" % (host, b.port), "--local")
                self.assertEqual(verdict, {"healthy": True, "unhealthy_reasons": [],
                                           "address": "%s:%d" % (host, b.port), "broker_id": b.id,
                                           "live": True, "controller_id": controller})
        out = self.health("127.0.0.1:%d" % self.cluster.broker(2).port, "--local").stdout
        self.assertRegex(out, r"(?m)^HEALTHY\s+yes$")
        self.assertRegex(out, r"(?m)^BROKER\s+2$")
        self.assertRegex(out, r"(?m)^LIVE\s+yes$")
        self.assertRegex(out, r"(?m)^CONTROLLER\s+%d$" % controller)

    def test_local_asks_the_first_address_only(self):
        dead = "127.0.0.1:%d" % vt.free_port()
        alive = "127.0.0.1:%d" % self.cluster.broker(1).port
        proc = self.health("%s,%s" % (dead, alive), "--local", "--timeout", "3", code=EXIT_UNREACHABLE)
        self.assertIn(dead, proc.stderr)
        # The whole cluster's check uses any address that answers.
        self.assertTrue(self.health_json("%s,%s" % (dead, alive))["healthy"])

    def test_unreachable(self):
        dead = "127.0.0.1:%d" % vt.free_port()
        self.health(dead, "--timeout", "3", code=EXIT_UNREACHABLE)
        self.health(dead, "--local", "--timeout", "3", code=EXIT_UNREACHABLE)

    def test_paused_broker_gives_no_answer(self):
        # The socket accepts (the kernel does), nothing answers: exit 3
        # within the timeout, not a hang.
        b = self.cluster.broker(3)
        b.pause()
        try:
            proc = self.health("127.0.0.1:%d" % b.port, "--local", "--timeout", "2", code=EXIT_UNREACHABLE)
            self.assertRegex(proc.stderr, r"did not answer Metadata")
        finally:
            b.resume()

    def test_arguments(self):
        bootstrap = self.cluster.bootstrap
        self.health(bootstrap, "--bogus", code=EXIT_USAGE)
        self.health(bootstrap, "extra", code=EXIT_USAGE)
        out = self.health(bootstrap, "--help").stdout
        self.assertIn("--local", out)
        self.assertRegex(out, r"0 healthy, 9 not healthy")
        top = vt.run_cli("--help").stdout
        self.assertIn("cluster health [--local]", top)
        self.assertRegex(top, r"(?m)^\s+9\s+cluster health: not healthy")


class UnregisteredBrokerTest(HealthTestCase):
    """A broker that answers but whose registration is gone (as after a
    session expiry it has not recovered from): --local says not_live."""

    @classmethod
    def setUpClass(cls):
        cls.cluster = vt.Cluster(brokers=1)

    def test_not_live(self):
        b = self.cluster.broker(1)
        address = "127.0.0.1:%d" % b.port
        self.assertTrue(self.health_json(address, "--local")["live"])
        self.cluster.zk().delete(self.cluster.zk_path("/brokers/ids/1"))
        vt.wait_for(lambda: not vt.raw_metadata(b.port, topics=[])["brokers"], timeout=30,
                    what="the broker to drop itself from its live brokers")
        verdict = self.health_json(address, "--local", code=EXIT_UNHEALTHY)
        self.assertFalse(verdict["healthy"])
        self.assertEqual(verdict["unhealthy_reasons"], ["not_live"])
        self.assertIsNone(verdict["broker_id"])
        self.assertFalse(verdict["live"])
        out = self.health(address, "--local", code=EXIT_UNHEALTHY).stdout
        self.assertRegex(out, r"(?m)^HEALTHY\s+no$")
        self.assertRegex(out, r"(?m)^REASONS\s+not_live$")
        self.assertRegex(out, r"(?m)^LIVE\s+no$")


if __name__ == "__main__":
    unittest.main()
