"""Group consumers of other clients against a 3-broker cluster
(__consumer_offsets with 3 replicas): kafka-python 3.x and aiokafka (client
virtualenv), Debian's kafka-python 2.0.2 and confluent-kafka 1.7
(/usr/bin/python3), and Debian's kcat -G. Each consumes everything with a
group id and commits; the committed offsets are the partitions' ends; a
second run of the group consumes only what was produced since.

Producers: kafka-python 3.x with its default idempotence (clients/kp_group.py).

Time: each client runs as a child process with its own deadline (--timeout,
a watchdog) and a harness timeout; ctest's TIMEOUT bounds the file."""

import subprocess
import unittest

import group_helpers as gh
import vltava_test as vt

PARTITIONS = 6


class GroupClientsTest(gh.GroupTest):
    def check_result(self, result, topic, values, per_partition):
        self.assertEqual(sorted(v for _p, _o, v in result["consumed"]), sorted(values))
        want = [[topic, p, per_partition] for p in range(PARTITIONS)]
        self.assertEqual(sorted(result["committed"]), want, "committed offsets")
        self.assertEqual(sorted(result["end"]), want, "end offsets")

    def python_group(self, script, topic, python=None):
        """Two runs of a kp_group.py-like script in one group: the first
        produces and consumes 600 records, the second 120 more, and must
        consume exactly those."""
        c = self.cluster
        c.create_topic(topic, partitions=PARTITIONS, rf=3)
        group = topic + "-group"
        base = ["--bootstrap", c.bootstrap, "--group", group, "--topic", topic, "--timeout", 90]
        events = vt.run_client(script, base + ["--prefix", "a", "--produce", 600, "--expect", 600], python=python,
                               timeout=180, logdir=self.logdir, name=topic + "-1")
        self.check_result(events[-1], topic, ["a-%d" % i for i in range(600)], 100)
        events = vt.run_client(script, base + ["--prefix", "b", "--produce", 120, "--expect", 120], python=python,
                               timeout=180, logdir=self.logdir, name=topic + "-2")
        result = events[-1]
        self.check_result(result, topic, ["b-%d" % i for i in range(120)], 120)
        self.assertEqual(min(o for _p, o, _v in result["consumed"]), 100)
        return result

    def test_kafka_python_3(self):
        self.python_group("kp_group.py", "kafka-python-3")

    def test_aiokafka(self):
        self.python_group("aiok_group.py", "aiokafka")

    def test_kafka_python_2_debian(self):
        self.python_group("kp_group.py", "kafka-python-2", python=vt.SYSTEM_PYTHON)

    def test_confluent_kafka_1_7_debian(self):
        c = self.cluster
        topic = "confluent-kafka-1-7"
        c.create_topic(topic, partitions=PARTITIONS, rf=3)
        values = gh.produce(c.bootstrap, topic, "a", 0, 600, PARTITIONS)
        events = vt.run_client("ck_consumer.py", ["--bootstrap", c.bootstrap, "--group", topic + "-group",
                                                  "--topic", topic, "--client-id", "ck17", "--count", 600],
                               python=vt.SYSTEM_PYTHON, timeout=150, logdir=self.logdir, name=topic)
        self.assertTrue(events[0]["version"].startswith("1."), events[0])
        consumed = [v for e in events if e["ev"] == "records" for _t, _p, _o, v in e["items"]]
        self.assertEqual(sorted(consumed), sorted(values))
        self.assertEqual(sorted(events[-1]["committed"]), [[topic, p, 100] for p in range(PARTITIONS)])

    def kcat_group(self, group, topic, count, timeout=90):
        """kcat -G consuming count records (-c), then closing the consumer,
        which commits (enable.auto.commit); returns [(partition, offset,
        value)]."""
        argv = ["kcat", "-q", "-b", self.cluster.bootstrap, "-G", group, "-c", str(count),
                "-X", "auto.offset.reset=earliest", "-X", "session.timeout.ms=6000",
                "-X", "heartbeat.interval.ms=500", "-f", "%p %o %s\\n", topic]
        try:
            proc = subprocess.run(argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            lines = (e.stdout or b"").decode().splitlines()
            raise AssertionError("kcat -G read %d of %d records in %ss:\n%s"
                                 % (len(lines), count, timeout, (e.stderr or b"").decode()[-3000:])) from None
        self.assertEqual(proc.returncode, 0, proc.stderr.decode()[-3000:])
        out = []
        for line in proc.stdout.decode().splitlines():
            p, o, v = line.split(" ", 2)
            out.append((int(p), int(o), v))
        return out

    def test_kcat_balanced_consumer(self):
        c = self.cluster
        topic = "kcat-group"
        c.create_topic(topic, partitions=PARTITIONS, rf=3)
        first = gh.produce(c.bootstrap, topic, "a", 0, 600, PARTITIONS)
        got = self.kcat_group("kcat", topic, 600)
        self.assertEqual(sorted(v for _p, _o, v in got), sorted(first))
        second = gh.produce(c.bootstrap, topic, "b", 0, 60, PARTITIONS)
        got = self.kcat_group("kcat", topic, 60)
        self.assertEqual(sorted(v for _p, _o, v in got), sorted(second))
        self.assertEqual(min(o for _p, o, _v in got), 100)


if __name__ == "__main__":
    unittest.main()
