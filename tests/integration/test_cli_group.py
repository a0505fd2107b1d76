"""The vltava CLI's consumer-group commands against a real broker.

`vltava consume TOPIC -g GROUP` is a group member that commits what it
printed; `group list`, `describe`, `seek` and `delete` are checked against
what that member committed, against the topic's own offsets (`topic
describe`) and against an independent group member (kcat -G). The
group-specific exit codes are provoked: 6 unknown group, 7 group not empty.

Needs the broker's group coordinator (FindCoordinator, JoinGroup, SyncGroup,
Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch, ListGroups,
DescribeGroups, DeleteGroups).
"""

import contextlib
import json
import os
import signal
import subprocess
import time

import vltava_test
from test_cli import (EXIT_GROUP_NOT_EMPTY, EXIT_OK, EXIT_UNKNOWN_GROUP, EXIT_UNKNOWN_TOPIC, EXIT_USAGE,
                      CliTestCase, vltava)

BROKER_CONFIG = {
    # A lone member is assigned at once, not after Kafka's 3 s default.
    "group.initial.rebalance.delay.ms": "0",
    # __consumer_offsets must fit the one-broker cluster.
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "3",
}

PARTITIONS = 3


class CliGroupTest(vltava_test.SharedClusterTest, CliTestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = vltava_test.Cluster(brokers=1, name="cli-group", broker_config=BROKER_CONFIG)

    # -- helpers

    def run_cli(self, *args, **kw):
        kw.setdefault("brokers", self.cluster.bootstrap)
        return vltava(*args, **kw)

    def ok_json(self, *args, **kw):
        return self.json_of(self.run_cli(*(list(args) + ["--format", "json"]), **kw))

    def create_topic(self, name):
        doc = self.ok_json("topic", "create", name, "-p", PARTITIONS, "-r", 1)
        self.assertTrue(doc["leaders_elected"])

    def produce(self, topic, records):
        """records: (key, value) pairs; returns what the CLI reported."""
        data = "".join("%s:%s\n" % kv for kv in records).encode()
        doc = self.ok_json("produce", topic, "-k", ":", "--acks", "all", stdin=data)
        self.assertEqual(doc["failed"], 0)
        return doc

    def log_ends(self, topic):
        """partition -> high watermark, from topic describe."""
        d = self.ok_json("topic", "describe", topic)
        return {p["partition"]: p["high_watermark"] for p in d["partitions"]}

    def group_json(self, group):
        return self.ok_json("group", "describe", group)

    def committed(self, group, topic):
        """partition -> committed offset (None when none) of group on topic."""
        return {p["partition"]: p["committed"] for p in self.group_json(group)["partitions"]
                if p["topic"] == topic}

    def listed(self, group):
        """group's entry in group list --format json, or None."""
        entries = [e for e in self.ok_json("group", "list") if e["group"] == group]
        self.assertLessEqual(len(entries), 1)
        return entries[0] if entries else None

    def seek(self, group, to, *extra):
        return self.ok_json("group", "seek", group, "--to", to, *extra)

    def consume_group(self, topic, group, count):
        """`vltava consume topic -g group -n count`; returns the records."""
        p = self.run_cli("consume", topic, "-g", group, "-n", count, "--format", "json", timeout=120)
        self.assertExit(p, EXIT_OK)
        return [json.loads(line) for line in p.stdout.decode().splitlines()]

    @contextlib.contextmanager
    def member(self, topic, group):
        """A `vltava consume topic -g group` that keeps running; stopped with
        SIGTERM (exit 0 expected) on the way out."""
        proc = subprocess.Popen([vltava_test.cli_bin(), "-b", self.cluster.bootstrap, "consume", topic,
                                 "-g", group], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            yield proc
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=60)
            self.assertEqual(proc.returncode, 0, err)
            self.assertNotIn(b"Sanitizer", err)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()

    def wait_members(self, group, count):
        """Waits until group is Stable with count members whose assignments
        cover the partitions exactly once; returns the description."""
        def stable():
            d = self.group_json(group)
            if d["state"] != "Stable" or len(d["members"]) != count:
                return None
            assigned = sorted((a["topic"], a["partition"]) for m in d["members"] for a in m["assignment"])
            return d if len(assigned) == PARTITIONS and len(set(assigned)) == PARTITIONS else None

        return vltava_test.wait_for(stable, timeout=60, what="group %s: %d stable members" % (group, count),
                                    interval=0.5)

    def assert_group_idle(self, group):
        vltava_test.wait_for(lambda: self.group_json(group)["state"] == "Empty", timeout=60,
                             what="group %s to be Empty" % group, interval=0.3)

    # -- tests

    def test_consume_describe_seek_delete(self):
        topic, group = "grp-life", "billing"
        self.create_topic(topic)
        first = [("k%d" % i, "a%d" % i) for i in range(30)]
        self.produce(topic, first)
        before_b = self.log_ends(topic)
        self.assertEqual(sum(before_b.values()), 30)

        # A second batch, later than a timestamp taken between the two.
        time.sleep(0.2)
        mid_ms = int(time.time() * 1000)
        time.sleep(0.2)
        second = [("k%d" % i, "b%d" % i) for i in range(12)]
        self.produce(topic, second)
        ends = self.log_ends(topic)
        total = sum(ends.values())
        self.assertEqual(total, 42)

        # A group member reads everything once and commits it.
        got = self.consume_group(topic, group, total)
        self.assertEqual(sorted((r["key"], r["value"]) for r in got), sorted(first + second))
        self.assert_group_idle(group)

        entry = self.listed(group)
        self.assertEqual(entry, {"group": group, "state": "Empty", "type": "consumer"})
        text = self.run_cli("group", "list")
        self.assertExit(text, EXIT_OK)
        self.assertRegex(text.stdout.decode(), r"(?m)^billing\s+Empty\s+consumer\s*$")

        d = self.group_json(group)
        self.assertEqual(sorted(d), ["assignor", "coordinator", "group", "members", "partitions", "state", "type"])
        self.assertEqual((d["group"], d["state"], d["type"], d["members"]), (group, "Empty", "consumer", []))
        self.assertEqual(d["coordinator"]["id"], 1)
        self.assertEqual(d["coordinator"]["port"], self.cluster.broker(1).port)
        self.assertEqual([(p["topic"], p["partition"]) for p in d["partitions"]],
                         [(topic, i) for i in range(PARTITIONS)])
        for p in d["partitions"]:
            self.assertEqual(p["committed"], ends[p["partition"]])
            self.assertEqual(p["log_end"], ends[p["partition"]])
            self.assertEqual(p["lag"], 0)
            self.assertIsNone(p["member_id"])
        text = self.run_cli("group", "describe", group)
        self.assertExit(text, EXIT_OK)
        out = text.stdout.decode()
        self.assertRegex(out, r"(?m)^STATE\s+Empty\s*$")
        for part, end in ends.items():
            self.assertRegex(out, r"(?m)^%s\s+%d\s+%d\s+%d\s+0\s+-\s*$" % (topic, part, end, end))

        # Nothing left for the group.
        p = self.run_cli("consume", topic, "-g", group, "-e", timeout=120)
        self.assertExit(p, EXIT_OK)
        self.assertEqual(p.stdout, b"")

        # earliest: everything is lag again, and the group reads it again.
        doc = self.seek(group, "earliest", "-t", topic)
        self.assertEqual(doc["group"], group)
        self.assertEqual([(x["topic"], x["partition"], x["previous"], x["offset"]) for x in doc["partitions"]],
                         [(topic, i, ends[i], 0) for i in range(PARTITIONS)])
        d = self.group_json(group)
        self.assertEqual({p["partition"]: (p["committed"], p["lag"]) for p in d["partitions"]},
                         {i: (0, ends[i]) for i in range(PARTITIONS)})
        self.assertEqual(sum(p["lag"] for p in d["partitions"]), total)
        text = self.run_cli("group", "describe", group)
        for part, end in ends.items():
            self.assertRegex(text.stdout.decode(), r"(?m)^%s\s+%d\s+0\s+%d\s+%d\s+-\s*$" % (topic, part, end, end))
        again = self.consume_group(topic, group, total)
        self.assertEqual(sorted((r["key"], r["value"]) for r in again), sorted(first + second))
        self.assertEqual(self.committed(group, topic), ends)

        # @TIMESTAMP: the first record at or after it, so the second batch.
        self.seek(group, "@%d" % mid_ms, "-t", topic)
        self.assertEqual(self.committed(group, topic), before_b)
        rest = self.consume_group(topic, group, 12)
        self.assertEqual(sorted((r["key"], r["value"]) for r in rest), sorted(second))
        # A timestamp after every record: the log end. One before all: 0.
        self.seek(group, "@%d" % (int(time.time() * 1000) + 3600 * 1000), "-t", topic)
        self.assertEqual(self.committed(group, topic), ends)
        self.seek(group, "@0", "-t", topic)
        self.assertEqual(self.committed(group, topic), {i: 0 for i in range(PARTITIONS)})

        # latest, then an offset (kept within each partition's log), both
        # without -t: the partitions the group has offsets for.
        doc = self.seek(group, "latest")
        self.assertEqual([x["offset"] for x in doc["partitions"]], [ends[i] for i in range(PARTITIONS)])
        self.assertEqual([p["lag"] for p in self.group_json(group)["partitions"]], [0] * PARTITIONS)
        p = self.run_cli("group", "seek", group, "--to", "5", "--format", "json")
        doc = self.json_of(p)
        want = {i: min(5, ends[i]) for i in range(PARTITIONS)}
        self.assertEqual({x["partition"]: x["offset"] for x in doc["partitions"]}, want)
        self.assertEqual(self.committed(group, topic), want)
        if any(end < 5 for end in ends.values()):
            self.assertIn(b"outside", p.stderr)
        p = self.run_cli("group", "seek", group, "--to", "1000000", "-t", topic)
        self.assertExit(p, EXIT_OK)
        self.assertIn(b"outside", p.stderr)
        self.assertRegex(p.stdout.decode(), r"(?m)^TOPIC\s+PARTITION\s+PREVIOUS\s+OFFSET\s*$")
        self.assertEqual(self.committed(group, topic), ends)

        # While a member is in the group, seek and delete are refused.
        with self.member(topic, group):
            d = self.wait_members(group, 1)
            m = d["members"][0]
            self.assertEqual(m["client_id"], "vltava")
            self.assertTrue(m["member_id"])
            self.assertEqual(d["type"], "consumer")
            self.assertIsNotNone(d["assignor"])
            self.assertEqual({p["member_id"] for p in d["partitions"]}, {m["member_id"]})
            text = self.run_cli("group", "describe", group)
            self.assertExit(text, EXIT_OK)
            self.assertIn(m["member_id"].encode(), text.stdout)
            self.assertRegex(text.stdout.decode(), r"(?m)^STATE\s+Stable\s*$")

            for words in (["seek", group, "--to", "earliest", "-t", topic], ["seek", group, "--to", "latest"]):
                p = self.run_cli("group", *words)
                self.assertExit(p, EXIT_GROUP_NOT_EMPTY)
                self.assertIn(b"not empty", p.stderr)
            p = self.run_cli("group", "delete", group)
            self.assertExit(p, EXIT_GROUP_NOT_EMPTY)
            self.assertIn(group.encode(), p.stderr)
            # Nothing moved.
            self.assertEqual(self.committed(group, topic), ends)
        self.assert_group_idle(group)
        self.assertEqual(self.group_json(group)["members"], [])

        # Deleted: gone from the listing, unknown to every group command.
        self.assertEqual(self.ok_json("group", "delete", group), {"group": group, "deleted": True})
        self.assertIsNone(self.listed(group))
        for words in (["describe", group], ["delete", group], ["seek", group, "--to", "earliest"]):
            p = self.run_cli("group", *words)
            self.assertExit(p, EXIT_UNKNOWN_GROUP)
            self.assertIn(b"unknown group", p.stderr)

    def test_unknown_group_exit_6(self):
        for fmt in ("text", "json"):
            for words in (["describe", "no-such-group"], ["delete", "no-such-group"],
                          ["seek", "no-such-group", "--to", "latest"]):
                p = self.run_cli("group", *words, "--format", fmt)
                self.assertExit(p, EXIT_UNKNOWN_GROUP)
                self.assertIn(b"no-such-group", p.stderr)
                self.assertEqual(p.stdout, b"")
        self.assertIsNone(self.listed("no-such-group"))

    def test_seek_with_topic_creates_a_simple_group(self):
        topic, group = "grp-new", "fresh"
        self.create_topic(topic)
        self.produce(topic, [("k%d" % i, "v%d" % i) for i in range(9)])
        ends = self.log_ends(topic)
        doc = self.seek(group, "latest", "-t", topic)
        self.assertEqual([(x["previous"], x["offset"]) for x in doc["partitions"]],
                         [(None, ends[i]) for i in range(PARTITIONS)])
        d = self.group_json(group)
        self.assertEqual((d["state"], d["type"], d["members"]), ("Empty", "simple", []))
        self.assertEqual(self.committed(group, topic), ends)
        self.assertEqual(self.listed(group), {"group": group, "state": "Empty", "type": "simple"})
        # The committed offsets are where a group member starts: nothing new.
        p = self.run_cli("consume", topic, "-g", group, "-e", timeout=120)
        self.assertExit(p, EXIT_OK)
        self.assertEqual(p.stdout, b"")
        self.assertEqual(self.ok_json("group", "delete", group), {"group": group, "deleted": True})

    def test_seek_unknown_topic_exit_4(self):
        p = self.run_cli("group", "seek", "anyone", "--to", "earliest", "-t", "grp-no-such-topic")
        self.assertExit(p, EXIT_UNKNOWN_TOPIC)
        self.assertIsNone(self.listed("anyone"))

    def test_consume_group_arguments(self):
        for words in (["-p", "0"], ["-o", "3"], ["-o", "-1"], ["-g", ""]):
            p = self.run_cli("consume", "t", "-g", "g", *words)
            self.assertExit(p, EXIT_USAGE)

    def test_two_members_share_the_partitions(self):
        topic, group = "grp-two", "pair"
        self.create_topic(topic)
        with self.member(topic, group), self.member(topic, group):
            d = self.wait_members(group, 2)
            owners = {m["member_id"]: [(a["topic"], a["partition"]) for a in m["assignment"]] for m in d["members"]}
            self.assertEqual(len(owners), 2)
            for assigned in owners.values():
                self.assertTrue(assigned)
            by_partition = {p["partition"]: p["member_id"] for p in d["partitions"]}
            self.assertEqual(sorted(by_partition), list(range(PARTITIONS)))
            for member_id, assigned in owners.items():
                for _, part in assigned:
                    self.assertEqual(by_partition[part], member_id)
            self.assertEqual(self.listed(group)["state"], "Stable")
        self.assert_group_idle(group)

    def test_kcat_group_member(self):
        # An independent client's commits, as the CLI reports them.
        topic, group = "grp-kcat", "kcat-readers"
        self.create_topic(topic)
        self.produce(topic, [("k%d" % i, "v%d" % i) for i in range(20)])
        ends = self.log_ends(topic)
        kc = vltava_test.run_kcat(["-b", self.cluster.bootstrap, "-G", group, "-X", "auto.offset.reset=earliest",
                                   "-e", "-q", "-f", "%s\n", topic], timeout=120)
        self.assertEqual(len(kc.stdout.splitlines()), 20)
        self.assert_group_idle(group)
        d = self.group_json(group)
        self.assertEqual(d["type"], "consumer")
        self.assertEqual(self.committed(group, topic), ends)
        self.assertEqual([p["lag"] for p in d["partitions"]], [0] * PARTITIONS)
        # And the CLI's seek is what kcat resumes from.
        self.seek(group, "earliest", "-t", topic)
        kc = vltava_test.run_kcat(["-b", self.cluster.bootstrap, "-G", group, "-e", "-q", "-f", "%s\n", topic],
                                  timeout=120)
        self.assertEqual(len(kc.stdout.splitlines()), 20)


class CliGroupRebalanceTest(vltava_test.SharedClusterTest, CliTestCase):
    """Three `vltava consume -g` members of one group on a three-broker
    cluster: the partitions are shared out, reshared when a member leaves,
    and restarted members resume where the group's commits say."""

    PARTITIONS = 12

    @classmethod
    def setUpClass(cls):
        cls.cluster = vltava_test.Cluster(brokers=3, name="cli-group-3", broker_config={
            "group.initial.rebalance.delay.ms": "0",
            "offsets.topic.replication.factor": "3",
            "offsets.topic.num.partitions": "3",
        })

    def run_cli(self, *args, **kw):
        kw.setdefault("brokers", self.cluster.bootstrap)
        return vltava(*args, **kw)

    def ok_json(self, *args, **kw):
        return self.json_of(self.run_cli(*(list(args) + ["--format", "json"]), **kw))

    def produce(self, topic, values):
        data = "".join("k%s:%s\n" % (v, v) for v in values).encode()
        doc = self.ok_json("produce", topic, "-k", ":", "--acks", "all", stdin=data)
        self.assertEqual((doc["produced"], doc["failed"]), (len(values), 0))

    def start_member(self, topic, group, name, *extra):
        """A `vltava consume topic -g group --format json` writing to files in
        the cluster's temp dir; stopped by stop_member, or killed by pid when
        the test ends."""
        out = open(os.path.join(self.cluster.tmpdir, name + ".out"), "wb")
        err = open(os.path.join(self.cluster.tmpdir, name + ".err"), "wb")
        with out, err:
            proc = subprocess.Popen([vltava_test.cli_bin(), "-b", self.cluster.bootstrap, "consume", topic,
                                     "-g", group, "--format", "json"] + list(extra),
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        proc.out_path, proc.err_path = out.name, err.name
        self.addCleanup(self.reap, proc)
        return proc

    @staticmethod
    def reap(proc):
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)

    def records(self, proc):
        """The records proc printed so far (whole lines only)."""
        with open(proc.out_path, "rb") as f:
            lines = f.read().split(b"\n")[:-1]
        return [json.loads(line) for line in lines]

    def wait_exit(self, proc, timeout=60):
        """Waits for proc's exit; it must be 0 with no sanitizer report."""
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.fail("member pid %d still running %ds after it was told to stop" % (proc.pid, timeout))
        with open(proc.err_path, "rb") as f:
            err = f.read()
        self.assertEqual(proc.returncode, 0, err)
        for marker in (b"Sanitizer", b"runtime error:"):
            self.assertNotIn(marker, err)

    def stop_member(self, proc):
        """SIGTERM: the member commits what it printed and leaves the group."""
        proc.send_signal(signal.SIGTERM)
        self.wait_exit(proc)

    def wait_assignment(self, group, topic, counts):
        """Waits until group is Stable with len(counts) members holding
        counts partitions of topic each, every partition exactly once;
        returns member id -> its partitions."""
        def shared():
            d = self.ok_json("group", "describe", group)
            if d["state"] != "Stable" or len(d["members"]) != len(counts):
                return None
            owned = {m["member_id"]: sorted(a["partition"] for a in m["assignment"] if a["topic"] == topic)
                     for m in d["members"]}
            every = sorted(p for parts in owned.values() for p in parts)
            if every != list(range(self.PARTITIONS)) or sorted(map(len, owned.values())) != sorted(counts):
                return None
            return owned

        return vltava_test.wait_for(shared, timeout=60, interval=0.5,
                                    what="group %s: members with %s partitions" % (group, counts))

    def wait_printed(self, procs, want):
        """Waits until procs together printed every value in want."""
        def all_there():
            seen = {r["value"] for p in procs for r in self.records(p)}
            return want <= seen

        vltava_test.wait_for(all_there, timeout=60, interval=0.3, what="%d records printed" % len(want))

    def test_members_share_reshare_and_resume(self):
        topic, group = "grp-twelve", "twelve"
        doc = self.ok_json("topic", "create", topic, "-p", self.PARTITIONS, "-r", 3)
        self.assertTrue(doc["leaders_elected"])
        batches = [["%s%03d" % (name, i) for i in range(count)]
                   for name, count in (("a", 240), ("b", 120), ("c", 120), ("d", 60))]
        self.produce(topic, batches[0])

        members = [self.start_member(topic, group, "m%d" % i) for i in range(3)]
        owned = self.wait_assignment(group, topic, [4, 4, 4])
        self.assertEqual(len(owned), 3)

        # One leaves while more records arrive; the other two take over its
        # partitions from its last commit.
        self.stop_member(members[2])
        self.produce(topic, batches[1])
        survivors = self.wait_assignment(group, topic, [6, 6])
        self.assertLessEqual(set(survivors), set(owned))
        self.produce(topic, batches[2])
        self.wait_printed(members, set(batches[0] + batches[1] + batches[2]))
        for m in members[:2]:
            self.stop_member(m)

        # Each member commits only what it printed, and the group's offsets
        # moved to each new owner at every rebalance: every record was
        # printed once.
        printed = [r for m in members for r in self.records(m)]
        values = [r["value"] for r in printed]
        self.assertEqual(sorted(values), sorted(batches[0] + batches[1] + batches[2]))
        self.assertEqual(len({(r["partition"], r["offset"]) for r in printed}), len(printed))
        d = self.ok_json("group", "describe", group)
        self.assertEqual((d["state"], d["members"]), ("Empty", []))
        self.assertEqual(len(d["partitions"]), self.PARTITIONS)
        for p in d["partitions"]:
            self.assertEqual((p["committed"], p["lag"]), (p["log_end"], 0), p)

        # Restarted members start at the committed offsets: only what was
        # produced after the last commit.
        self.produce(topic, batches[3])
        again = [self.start_member(topic, group, "r%d" % i, "-e") for i in range(2)]
        for m in again:
            self.wait_exit(m)
        values = [r["value"] for m in again for r in self.records(m)]
        self.assertEqual(sorted(values), sorted(batches[3]))
        d = self.ok_json("group", "describe", group)
        self.assertEqual([p["lag"] for p in d["partitions"]], [0] * self.PARTITIONS)

if __name__ == "__main__":
    import unittest

    unittest.main()
