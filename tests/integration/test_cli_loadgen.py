"""bench/loadgen against a real broker: a small run must produce and consume
every record, report all its figures, and leave exactly N records in the
topic (checked with the vltava CLI). Guards the benchmark tool against rot;
the figures themselves are recorded by bench/run-loadgen.sh."""

import json
import os
import subprocess
import unittest

import vltava_test


def loadgen_bin():
    path = os.path.join(vltava_test.build_dir(), "bench", "loadgen")
    if not os.access(path, os.X_OK):
        raise AssertionError("loadgen not built at %s" % path)
    return path


def result_fields(stdout):
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert len(lines) == 1, stdout
    return dict(item.split("=", 1) for item in lines[0].split()[1:])


class LoadgenTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = vltava_test.Cluster(brokers=1, name="loadgen")

    @classmethod
    def tearDownClass(cls):
        cls.cluster.close()

    def loadgen(self, *args):
        p = subprocess.run([loadgen_bin(), "-b", self.cluster.bootstrap, "--timeout", "120"] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
        out = p.stdout.decode()
        self.assertEqual(p.returncode, 0, "stdout:\n%s\nstderr:\n%s" % (out, p.stderr.decode()))
        return out

    def high_watermarks(self, topic):
        p = subprocess.run([vltava_test.cli_bin(), "-b", self.cluster.bootstrap, "topic", "describe", topic,
                            "--format", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        return [part["high_watermark"] for part in json.loads(p.stdout)["partitions"]]

    def test_flat_out_run(self):
        out = self.loadgen("-t", "lg-flat", "-n", "20000", "-s", "100", "--acks", "all", "-P", "2")
        r = result_fields(out)
        self.assertEqual((r["size"], r["acks"], r["records"], r["rate"]), ("100", "all", "20000", "max"))
        for key in ("produce_rps", "produce_mbps", "consume_rps", "consume_mbps", "loopback_mbps"):
            self.assertGreater(float(r[key]), 0, key)
        p50, p99, p999 = float(r["p50_ms"]), float(r["p99_ms"]), float(r["p999_ms"])
        self.assertTrue(0 <= p50 <= p99 <= p999, r)
        self.assertRegex(out, r"loopback TCP +[0-9.]+ MB/s")
        self.assertEqual(sum(self.high_watermarks("lg-flat")), 20000)

        # A second run on the same topic measures only its own records.
        self.loadgen("-t", "lg-flat", "-n", "5000", "-s", "1024", "--acks", "1", "--no-latency")
        self.assertEqual(sum(self.high_watermarks("lg-flat")), 25000)

    def test_paced_run(self):
        out = self.loadgen("-t", "lg-paced", "-n", "3000", "-s", "64", "--acks", "1", "--rate", "3000",
                           "--compression", "lz4")
        r = result_fields(out)
        self.assertEqual(r["rate"], "3000/s")
        # Pacing holds the producer near the asked rate (3000 records: ~1 s).
        self.assertLess(float(r["produce_rps"]), 3000 * 1.15)
        self.assertGreater(float(r["produce_rps"]), 3000 * 0.5)
        self.assertEqual(self.high_watermarks("lg-paced"), [3000])

    def test_bad_options(self):
        for args in (["-s", "4"], ["-n", "0"], ["--rate", "0"], ["--bogus"]):
            p = subprocess.run([loadgen_bin()] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
            self.assertNotEqual(p.returncode, 0, args)


if __name__ == "__main__":
    unittest.main()
