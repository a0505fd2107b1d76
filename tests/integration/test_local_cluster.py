"""deploy/local-cluster.sh and the README quickstart, run as written.

The README's Quickstart shell blocks are executed in order with bash; the
only substitutions are the ports (the test moves the cluster to free ports
with VLTAVA_BASE_PORT / VLTAVA_ZK_PORT so it can run beside anything) and
the path of the build directory. ZooKeeper here is the script's own, not
the run's."""

import json
import os
import random
import re
import socket
import subprocess
import unittest

import vltava_test as vt

README = os.path.join(vt.REPO_ROOT, "README.md")
SCRIPT = os.path.join(vt.REPO_ROOT, "deploy", "local-cluster.sh")


def quickstart_blocks():
    with open(README) as f:
        text = f.read()
    # The Quickstart and its Consumer groups part; Docker is not run here.
    section = re.search(r"^## Quickstart\n(.*?)(?=^## |^### With Docker)", text, re.S | re.M)
    assert section, "README has no Quickstart section"
    return re.findall(r"```sh\n(.*?)```", section.group(1), re.S)


def port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def pick_base_port(brokers):
    rnd = random.Random()
    for _ in range(200):
        base = rnd.randrange(20000, 30000)
        ports = [base + i for i in range(1, brokers + 1)] + [base + 10000 + i for i in range(1, brokers + 1)]
        if all(port_free(p) for p in ports):
            return base
    raise AssertionError("no free port range for a local cluster")


class LocalClusterTest(unittest.TestCase):
    def setUp(self):
        self.tmp = vt.tempfile.mkdtemp(prefix="vltava-local-cluster-")
        self.base = pick_base_port(3)
        self.env = dict(os.environ)
        self.env.update({
            "VLTAVA_LOCAL_DIR": os.path.join(self.tmp, "state"),
            "VLTAVA_ZK_PORT": str(vt.free_port()),
            "VLTAVA_BASE_PORT": str(self.base),
            "VLTAVA_BUILD_DIR": vt.build_dir(),
        })
        self.env.pop("VLTAVA_BROKERS", None)

    def tearDown(self):
        down = self.sh("%s down --clean" % SCRIPT, check=False)
        if vt.test_failed(self):
            for i in (1, 2, 3):
                log = os.path.join(self.tmp, "state", "broker-%d" % i, "broker.log")
                if os.path.exists(log):
                    print("---- broker %d log ----\n%s" % (i, vt.tail(log)))
        self.assertEqual(down.returncode, 0, down.stdout + down.stderr)
        vt.shutil.rmtree(self.tmp, ignore_errors=True)

    def localize(self, block):
        for i in (1, 2, 3):
            block = block.replace("127.0.0.1:%d" % (9091 + i), "127.0.0.1:%d" % (self.base + i))
        return block.replace("build/cli/vltava", vt.cli_bin())

    def sh(self, script, check=True, timeout=120):
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=vt.REPO_ROOT, env=self.env,
                              capture_output=True, text=True, timeout=timeout)
        if check:
            self.assertEqual(proc.returncode, 0, "failed:\n%s\nstdout:\n%s\nstderr:\n%s"
                             % (script, proc.stdout, proc.stderr))
        return proc

    def test_readme_quickstart_as_written(self):
        blocks = [self.localize(b) for b in quickstart_blocks()]
        self.assertEqual(len(blocks), 6, "expected up, kcat, CLI, group, transactions and down blocks")
        up, kcat, cli, groups, txns, down = blocks
        self.assertIn("local-cluster.sh up --brokers 3", up)

        out = self.sh(up).stdout
        bootstrap = ",".join("127.0.0.1:%d" % (self.base + i) for i in (1, 2, 3))
        self.assertIn("bootstrap: %s" % bootstrap, out)
        for i in (1, 2, 3):
            self.assertIn("broker %d" % i, out)
            md = vt.raw_metadata(self.base + i, topics=[])
            self.assertEqual(sorted(md["brokers"]), [1, 2, 3])

        out = self.sh(kcat).stdout
        self.assertIn("0 k1 first\n1 k2 second\n2 k3 third\n", out)
        self.assertIn('topic "hello"', out)

        out = self.sh(cli).stdout
        self.assertIn("orders", out)
        self.assertIn("1 apple", out)
        self.assertIn("2 pears", out)

        # The group block goes on in the CLI block's shell: its first two
        # lines (the brokers and $vltava) are what a reader has set.
        setup = "\n".join(cli.splitlines()[:2]) + "\n"
        self.assertIn("vltava=", setup)
        out = self.sh(setup + groups).stdout.splitlines()
        records = [line for line in out if line in ("one", "two", "three", "four")]
        self.assertEqual(sorted(records), ["four", "one", "three", "two"], "the group member and "
                         "kcat -G together read every record once:\n%s" % "\n".join(out))
        described = self.sh(setup + "$vltava group describe billing --format json").stdout
        self.assertEqual(sum(p["committed"] for p in json.loads(described)["partitions"]), 4)

        # The transactions block: read_committed sees the committed record
        # only, read_uncommitted both; the CLI knows the transactional id.
        lines = self.sh(setup + txns, timeout=180).stdout.splitlines()
        self.assertEqual([ln for ln in lines if ln in ("committed", "aborted")],
                         ["committed", "committed", "aborted"], "\n".join(lines))
        self.assertTrue(any(ln.split()[:1] == ["payments-writer"] for ln in lines), "\n".join(lines))
        described = json.loads(self.sh(setup + "$vltava txn describe payments-writer --format json").stdout)
        self.assertEqual(described["state"], "CompleteAbort", described)

        self.sh(down)
        status = self.sh("%s status" % SCRIPT, check=False)
        self.assertNotEqual(status.returncode, 0, status.stdout)
        self.assertIn("zookeeper  stopped", status.stdout)
        for i in (1, 2, 3):
            self.assertTrue(port_free(self.base + i), "broker %d still listening after down" % i)

    def test_up_status_down_single_broker(self):
        out = self.sh("%s up" % SCRIPT).stdout
        self.assertIn("bootstrap: 127.0.0.1:%d" % (self.base + 1), out)
        status = self.sh("%s status" % SCRIPT).stdout
        self.assertIn("broker 1", status)
        self.assertIn("listening", status)
        pidfile = os.path.join(self.tmp, "state", "broker-1", "pid")
        with open(pidfile) as f:
            pid = int(f.read())
        # A second "up" starts nothing new.
        again = self.sh("%s up" % SCRIPT).stdout
        self.assertIn("already running", again)
        with open(pidfile) as f:
            self.assertEqual(int(f.read()), pid)
        self.sh("%s down" % SCRIPT)
        vt.wait_for(lambda: not os.path.exists("/proc/%d" % pid), timeout=30,
                    what="broker pid %d to exit" % pid)


if __name__ == "__main__":
    unittest.main()
