"""The fault suite's checker and replica comparison on made-up histories and
segment files: each violation it exists to find is found, and a clean
history passes. Needs no root: ctest runs it as fault.checker."""

import os
import shutil
import struct
import sys
import tempfile
import unittest
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import checker  # noqa: E402
import segments  # noqa: E402


def ack(v, p, o, t=0.0):
    return {"k": "ack", "v": v, "p": p, "o": o, "t": t}


def read(p, o, v, t=0.0):
    return {"k": "read", "p": p, "o": o, "v": v, "t": t}


def final(records, hw):
    return [read(p, o, v) for (p, o), v in sorted(records.items())] + [
        {"k": "hw", "p": p, "o": o, "complete": True} for p, o in hw.items()]


class CheckTopicTest(unittest.TestCase):
    def setUp(self):
        self.log = {(0, 0): "i-0", (0, 1): "i-2", (1, 0): "i-1", (1, 1): "i-3"}
        self.produced = [ack("i-0", 0, 0), ack("i-1", 1, 0), ack("i-2", 0, 1), ack("i-3", 1, 1)]

    def check(self, idempotent=True, produced=None, log=None, reads=()):
        log = self.log if log is None else log
        hw = {}
        for (p, o) in log:
            hw[p] = max(hw.get(p, 0), o + 1)
        return checker.check_topic("t", idempotent, self.produced if produced is None else produced,
                                   [list(reads)], final(log, hw))

    def test_clean_history_passes(self):
        r = self.check(reads=[read(0, 0, "i-0"), read(0, 1, "i-2")])
        self.assertEqual(r["violations"], 0, r)
        self.assertEqual(r["acked"], 4)

    def test_lost_acknowledged_record(self):
        log = dict(self.log)
        del log[(1, 1)]
        r = self.check(log=log)
        self.assertEqual(r["lost"], 1)
        self.assertGreater(r["violations"], 0)

    def test_offset_holding_another_value(self):
        log = dict(self.log)
        log[(1, 1)] = "i-9"
        r = self.check(log=log)
        self.assertEqual(r["inconsistent"], 1)
        self.assertEqual(r["lost"], 1)

    def test_acknowledgement_without_offset(self):
        # Present: fine, its position unchecked; absent: lost.
        produced = self.produced + [ack("i-4", 0, None)]
        log = dict(self.log)
        log[(0, 2)] = "i-4"
        r = self.check(produced=produced, log=log)
        self.assertEqual(r["violations"], 0, r)
        self.assertEqual(r["acked_without_offset"], 1)
        r = self.check(produced=produced)
        self.assertEqual(r["lost"], 1)

    def test_duplicates_count_against_idempotence_only(self):
        log = dict(self.log)
        log[(0, 2)] = "i-2"
        log[(0, 3)] = "i-7"
        log[(0, 4)] = "i-7"
        idem = self.check(log=log)
        self.assertEqual((idem["dup_acked"], idem["dup_unacked"]), (1, 1))
        self.assertGreater(idem["violations"], 0)
        plain = self.check(idempotent=False, log=log)
        self.assertEqual((plain["dup_acked"], plain["dup_unacked"]), (1, 1))
        self.assertEqual(plain["violations"], 0)

    def test_reordering(self):
        log = {(0, 0): "i-2", (0, 1): "i-0", (1, 0): "i-1", (1, 1): "i-3"}
        produced = [ack("i-0", 0, 1), ack("i-1", 1, 0), ack("i-2", 0, 0), ack("i-3", 1, 1)]
        r = self.check(produced=produced, log=log)
        self.assertEqual(r["reordered"], 1)
        self.assertGreater(r["violations"], 0)
        self.assertEqual(self.check(idempotent=False, produced=produced, log=log)["violations"], 0)

    def test_read_of_data_later_replaced(self):
        r = self.check(reads=[read(1, 1, "i-8")])
        self.assertEqual(r["read_bad"], 1)
        self.assertGreater(r["violations"], 0)

    def test_incomplete_final_read(self):
        events = final(self.log, {0: 2, 1: 2})
        events[-1]["complete"] = False
        r = checker.check_topic("t", True, self.produced, [[]], events)
        self.assertFalse(r["final_complete"])
        self.assertGreater(r["violations"], 0)


class UnavailabilityTest(unittest.TestCase):
    def test_longest_gap_counts_the_window_edges(self):
        self.assertEqual(checker.longest_gap([1, 2, 3, 7, 8], 0, 10), 4)
        self.assertEqual(checker.longest_gap([], 0, 5), 5)
        self.assertEqual(checker.longest_gap([1, 9], 2, 8), 6)

    def test_median_and_max_per_kind(self):
        rounds = [{"kind": "kill", "variant": "leader", "t": 0, "end": 10},
                  {"kind": "kill", "variant": "leader", "t": 20, "end": 30},
                  {"kind": "partition", "variant": "zk", "t": 40, "end": 50}]
        times = [[0, 4, 10, 20, 21, 30, 40, 49, 50]]
        kinds = checker.unavailability(rounds, times)
        self.assertEqual(kinds["kill"], (2, 7.5, 9))
        self.assertEqual(kinds["partition:zk"], (1, 9, 9))


def batch(base, count, epoch, payload=b"x"):
    """A RecordBatch v2 header of `count` records (the body is opaque to the
    comparison; only the header's fields are read)."""
    rest = struct.pack(">hiqqqhii", 0, count - 1, 0, 0, -1, -1, -1, count) + payload
    after_length = struct.pack(">ib", epoch, 2) + struct.pack(">I", zlib.crc32(rest)) + rest
    return struct.pack(">qi", base, len(after_length)) + after_length


class ReplicaComparisonTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="vltava-fault-checker-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def write(self, broker, batches, hw, tail=b""):
        logdir = os.path.join(self.dir, "b%d" % broker)
        pdir = os.path.join(logdir, "t-0")
        os.makedirs(pdir, exist_ok=True)
        with open(os.path.join(pdir, "%020d.log" % 0), "wb") as f:
            f.write(b"".join(batches) + tail)
        with open(os.path.join(logdir, "replication-offset-checkpoint"), "w") as f:
            f.write("0\n1\nt 0 %d\n" % hw)
        return logdir

    def compare(self):
        dirs = {b: os.path.join(self.dir, "b%d" % b) for b in (1, 2, 3)}
        return segments.compare_replicas(dirs, ["t"])[0]

    def test_identical_replicas(self):
        good = [batch(0, 2, 0), batch(2, 3, 1)]
        for b in (1, 2, 3):
            self.write(b, good, 5)
        self.assertEqual(self.compare(), [])

    def test_divergent_batch_below_the_high_watermark(self):
        self.write(1, [batch(0, 2, 0), batch(2, 3, 1)], 5)
        self.write(2, [batch(0, 2, 0), batch(2, 3, 1)], 5)
        self.write(3, [batch(0, 2, 0), batch(2, 3, 2, b"y")], 5)
        found = self.compare()
        self.assertEqual(len(found), 1, found)
        self.assertIn("differ at batch 1", found[0])

    def test_divergence_above_the_high_watermark_is_allowed(self):
        self.write(1, [batch(0, 2, 0), batch(2, 3, 1)], 2)
        self.write(2, [batch(0, 2, 0), batch(2, 1, 2, b"y")], 2)
        self.write(3, [batch(0, 2, 0)], 2)
        self.assertEqual(self.compare(), [])

    def test_replica_short_of_the_high_watermark_and_torn_tail(self):
        self.write(1, [batch(0, 2, 0), batch(2, 3, 1)], 5)
        self.write(2, [batch(0, 2, 0), batch(2, 3, 1)], 5)
        self.write(3, [batch(0, 2, 0)], 2, tail=b"\x00\x01\x02")
        found = self.compare()
        self.assertTrue(any("only up to 2" in x for x in found), found)
        self.assertTrue(any("stray bytes" in x for x in found), found)


if __name__ == "__main__":
    unittest.main()
