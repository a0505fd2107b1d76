"""docker-compose.yml and the images of deploy/docker-build.sh, end to end.

Builds the broker and ZooKeeper images, starts the compose cluster under a
project name of its own with free host ports, checks both listeners (the
host's 127.0.0.1 ports and brokerN:29092 on the compose network), stops a
broker while a producer on the host keeps writing (leaders move, the
producer and the network's clients go on, nothing acknowledged is lost),
starts it again (the ISR is full again), and takes everything down with its
volumes.

Run as a program: exits 77 (ctest: skipped) where no Docker engine runs.
The images get tags of this run's own (vltava:<project>) so runs of
several clones never use each other's image; the layers stay in Docker's
cache for the next run. Everything this run starts is removed at exit; what
a run killed before its cleanup left behind (its pid is gone) is removed by
the next run.

Environment: VLTAVA_COMPOSE selects the Compose command ("docker compose"
for v2; default: docker-compose, else docker compose), VLTAVA_BUILD_DIR the
host build whose vltava CLI the host side uses.
"""

import atexit
import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import vltava_test as vt  # noqa: E402

SKIP_EXIT_CODE = 77
COMPOSE_FILE = os.path.join(vt.REPO_ROOT, "docker-compose.yml")
BUILD_SCRIPT = os.path.join(vt.REPO_ROOT, "deploy", "docker-build.sh")
PROJECT_PREFIX = "vltava-test-"
BROKERS = ("broker1", "broker2", "broker3")
# The goal for the runtime image.
IMAGE_SIZE_LIMIT = 150 * 1000 * 1000
INTERNAL_BOOTSTRAP = ",".join("%s:29092" % b for b in BROKERS)
# An application of the kind the compose file's comment describes: it
# waits for healthy brokers, then asks the cluster once, with no retry.
APPLICATION_SERVICE = """version: "2.4"
services:
  app:
    image: ${VLTAVA_IMAGE:-vltava:latest}
    command: ["vltava", "-b", "%s", "--format", "json", "cluster", "info"]
    restart: "no"
    depends_on:
%s""" % (INTERNAL_BOOTSTRAP, "".join("      %s: {condition: service_healthy}\n" % b for b in BROKERS))

# Cleanups of this run, newest first; run once, at the latest at exit.
_cleanups = []


def run_cleanups():
    while _cleanups:
        action = _cleanups.pop()
        try:
            action()
        except Exception as e:  # noqa: BLE001 - report and go on with the rest
            print("cleanup failed: %r" % (e,), file=sys.stderr)


atexit.register(run_cleanups)


def run(argv, timeout, check=True, env=None, input=None):
    """Runs argv with stdin from input (text); returns the CompletedProcess."""
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env,
                          input=input if input is not None else "")
    if check and proc.returncode != 0:
        raise AssertionError("%s exited %d:\nstdout:\n%s\nstderr:\n%s"
                             % (" ".join(argv), proc.returncode, proc.stdout[-4000:], proc.stderr[-4000:]))
    return proc


def docker_time(text):
    """A Docker timestamp (RFC 3339, nanoseconds, any zone) as an aware
    datetime; the fraction is cut to the microseconds datetime holds."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text)
    assert m, "not a Docker timestamp: %r" % text
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    fraction = (m.group(2) or "0")[:6].ljust(6, "0")
    return datetime.datetime.fromisoformat("%s.%s%s" % (m.group(1), fraction, zone))


def docker_engine_problem():
    """Why no Docker engine can be used here, or None when one answers."""
    if shutil.which("docker") is None:
        return "no docker command"
    try:
        proc = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True,
                              text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "docker info did not answer within 30 s"
    if proc.returncode != 0 or not proc.stdout.strip():
        return "no Docker engine answers: %s" % proc.stderr.strip()[-300:]
    return None


def compose_command():
    """The Compose command line: VLTAVA_COMPOSE, else docker-compose (v1),
    else docker compose (v2)."""
    chosen = os.environ.get("VLTAVA_COMPOSE")
    if chosen:
        return chosen.split()
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30).returncode == 0:
        return ["docker", "compose"]
    raise AssertionError("a Docker engine runs but neither docker-compose nor docker compose is installed")


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_runs(compose):
    """Takes down the projects and image tags of earlier runs whose process
    is gone (killed before its cleanup ran). Names carry the run's pid:
    vltava-test-<pid>-<hex>."""
    labels = run(["docker", "ps", "-a", "--format",
                  '{{.Label "com.docker.compose.project"}} {{.Label "vltava-test"}}'], 60).stdout
    volumes = run(["docker", "volume", "ls", "--format", '{{.Label "com.docker.compose.project"}}'], 60).stdout
    tags = run(["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"], 60).stdout
    stale = set()
    for name in (labels + volumes).split() + [t.split(":", 1)[1] for t in tags.split() if ":" in t]:
        m = re.fullmatch(re.escape(PROJECT_PREFIX) + r"(\d+)-[0-9a-f]+", name)
        if m and not pid_alive(int(m.group(1))):
            stale.add(name)
    for project in sorted(stale):
        print("removing the leftovers of an earlier run: %s" % project, file=sys.stderr)
        remove_cli_containers(project)
        run(compose + ["-p", project, "-f", COMPOSE_FILE, "down", "-v", "--remove-orphans", "--timeout", "5"],
            300, check=False)
        for tag in ("vltava:" + project, "vltava-zookeeper:" + project):
            run(["docker", "image", "rm", "--no-prune", tag], 120, check=False)


def remove_cli_containers(project):
    """The containers on_network started for project (label vltava-test)."""
    ids = run(["docker", "ps", "-aq", "--filter", "label=vltava-test=%s" % project], 60).stdout.split()
    if ids:
        run(["docker", "rm", "-f"] + ids, 120, check=False)


class DockerComposeTest(unittest.TestCase):
    # Set when anything failed: the cleanup then prints the services' logs.
    failed = False

    @classmethod
    def setUpClass(cls):
        try:
            cls.start_cluster()
        except BaseException:
            cls.failed = True
            raise

    @classmethod
    def start_cluster(cls):
        cls.compose = compose_command()
        remove_stale_runs(cls.compose)
        cls.project = "%s%d-%s" % (PROJECT_PREFIX, os.getpid(), uuid.uuid4().hex[:8])
        cls.image = "vltava:" + cls.project
        cls.zookeeper_image = "vltava-zookeeper:" + cls.project
        cls.kafka_ports = [vt.free_port() for _ in BROKERS]
        cls.env = dict(os.environ)
        cls.env.update({"VLTAVA_IMAGE": cls.image, "VLTAVA_ZOOKEEPER_IMAGE": cls.zookeeper_image})
        for i, port in enumerate(cls.kafka_ports, 1):
            cls.env["VLTAVA_PORT_BROKER%d" % i] = str(port)
            cls.env["VLTAVA_PORT_METRICS%d" % i] = str(vt.free_port())
        cls.host_bootstrap = ",".join("127.0.0.1:%d" % p for p in cls.kafka_ports)

        # The tags go when the run ends; --no-prune keeps their layers as
        # the next build's cache.
        _cleanups.append(lambda: run(["docker", "image", "rm", "--no-prune", cls.image, cls.zookeeper_image],
                                     120, check=False))
        started = time.monotonic()
        built = run(["bash", BUILD_SCRIPT], 1800, env=cls.env)
        print("%simages built in %.0f s" % (built.stderr, time.monotonic() - started), file=sys.stderr)

        cls.tmpdir = tempfile.mkdtemp(prefix="vltava-docker-test-")
        _cleanups.append(lambda: shutil.rmtree(cls.tmpdir, ignore_errors=True))
        application = os.path.join(cls.tmpdir, "application.yml")
        with open(application, "w") as f:
            f.write(APPLICATION_SERVICE)
        cls.compose_files = [COMPOSE_FILE, application]

        _cleanups.append(cls.compose_down)
        # Runs before the compose down: a CLI container still on the network
        # (its docker run timed out) would keep the network from going.
        _cleanups.append(lambda: remove_cli_containers(cls.project))
        started = time.monotonic()
        cls.compose_run("up", "-d", timeout=600)
        # Now, while the brokers' health logs (Docker keeps the last five
        # checks) still reach back to when the application started.
        cls.states_after_up = {s: cls.state(s) for s in ("app",) + BROKERS}
        vt.wait_for(lambda: cls.all_healthy(), timeout=240, interval=1,
                    what="ZooKeeper and the three brokers to be healthy")
        print("cluster healthy %.0f s after up" % (time.monotonic() - started), file=sys.stderr)

    def tearDown(self):
        if vt.test_failed(self):
            type(self).failed = True

    @classmethod
    def tearDownClass(cls):
        run_cleanups()

    # ---- Compose and Docker helpers

    @classmethod
    def compose_run(cls, *args, timeout=300, check=True):
        files = [arg for f in cls.compose_files for arg in ("-f", f)]
        return run(cls.compose + ["-p", cls.project] + files + list(args), timeout, check=check, env=cls.env)

    @classmethod
    def compose_down(cls):
        if cls.failed:
            print(cls.compose_run("logs", "--no-color", "--tail", "80", timeout=120, check=False).stdout,
                  file=sys.stderr)
        cls.compose_run("down", "-v", "--remove-orphans", "--timeout", "30", timeout=300)

    @classmethod
    def container(cls, service):
        """The id of the service's container, running or not (by its labels:
        Compose v1 and v2 list stopped containers differently)."""
        ids = run(["docker", "ps", "-aq", "--filter", "label=com.docker.compose.project=%s" % cls.project,
                   "--filter", "label=com.docker.compose.service=%s" % service], 60).stdout.split()
        assert len(ids) == 1, "service %s has containers %r" % (service, ids)
        return ids[0]

    @classmethod
    def health(cls, service):
        return run(["docker", "inspect", "-f", "{{.State.Health.Status}}", cls.container(service)], 60).stdout.strip()

    @classmethod
    def all_healthy(cls):
        states = {s: cls.health(s) for s in ("zookeeper",) + BROKERS}
        unhealthy = [s for s, h in states.items() if h == "unhealthy"]
        assert not unhealthy, "unhealthy: %r" % states
        return all(h == "healthy" for h in states.values())

    @classmethod
    def network(cls):
        names = run(["docker", "network", "ls", "--filter", "label=com.docker.compose.project=%s" % cls.project,
                     "--filter", "label=com.docker.compose.network=default", "--format", "{{.Name}}"],
                    60).stdout.split()
        assert len(names) == 1, "project networks: %r" % names
        return names[0]

    def on_network(self, *args, input=None, timeout=120, check=True):
        """The image's vltava CLI in a container of its own on the compose
        network, bootstrapping from the brokers' INTERNAL listeners. A run
        that overstays its timeout has its container removed (killing the
        docker client would leave the container running)."""
        argv = ["docker", "run", "--rm", "-i", "--label", "vltava-test=%s" % self.project,
                "--network", self.network(), self.image,
                "vltava", "-b", INTERNAL_BOOTSTRAP, "--timeout", "30"] + [str(a) for a in args]
        try:
            return run(argv, timeout, check=check, input=input)
        except subprocess.TimeoutExpired:
            remove_cli_containers(self.project)
            raise

    def on_host(self, *args, input=None, timeout=120, check=True):
        """The host build's vltava CLI against the EXTERNAL listeners."""
        argv = [vt.cli_bin(), "-b", self.host_bootstrap, "--timeout", "30"] + [str(a) for a in args]
        return run(argv, timeout, check=check, input=input)

    def describe(self, topic):
        return json.loads(self.on_host("topic", "describe", topic, "--format", "json").stdout)

    def isr_full(self, topic):
        return all(sorted(p["isr"]) == [1, 2, 3] and p["leader"] in (1, 2, 3)
                   for p in self.describe(topic)["partitions"])

    @classmethod
    def state(cls, service):
        return json.loads(run(["docker", "inspect", "-f", "{{json .State}}", cls.container(service)], 60).stdout)

    # ---- depends_on: condition: service_healthy

    def test_application_waits_for_healthy_brokers(self):
        vt.wait_for(lambda: self.state("app")["Status"] == "exited", timeout=120, interval=0.5,
                    what="the application container to finish")
        logs = run(["docker", "logs", self.container("app")], 60)
        self.assertEqual(self.state("app")["ExitCode"], 0, logs.stdout + logs.stderr)
        info = json.loads(logs.stdout)
        self.assertEqual(sorted(b["id"] for b in info["brokers"]), [1, 2, 3], info)
        # It started once every broker was healthy: each broker's health
        # log has a passing check from before the application started.
        started = docker_time(self.states_after_up["app"]["StartedAt"])
        for broker in BROKERS:
            checks = self.states_after_up[broker]["Health"]["Log"]
            self.assertTrue(any(c["ExitCode"] == 0 and docker_time(c["End"]) < started for c in checks),
                            "%s: no passing health check before %s: %r" % (broker, started, checks))

    # ---- The images

    def test_images(self):
        size = int(run(["docker", "image", "inspect", "-f", "{{.Size}}", self.image], 60).stdout)
        print("broker image: %.1f MB" % (size / 1e6), file=sys.stderr)
        self.assertLessEqual(size, IMAGE_SIZE_LIMIT, "the broker image is %.1f MB" % (size / 1e6))

        def in_image(image, script):
            return run(["docker", "run", "--rm", "--entrypoint", "sh", image, "-c", script], 120).stdout

        self.assertEqual(in_image(self.image, "id -un; id -u").split(), ["vltava", "10001"])
        self.assertEqual(in_image(self.zookeeper_image, "id -un").strip(), "zookeeper")
        # Both programs find their libraries; no compiler or development
        # package came along from the build stage.
        out = in_image(self.image, "vltava-broker --help >/dev/null && vltava --help >/dev/null && echo ran; "
                       "command -v cc gcc cmake make || true; dpkg-query -W -f '${Package}\\n' | grep -- '-dev$' || true")
        self.assertEqual(out.split(), ["ran"])

        # EXPOSE names the listeners' container ports; the compose file
        # publishes two of them (v1 prints ports as HOST:CONTAINER/tcp, v2
        # as target: CONTAINER).
        for image, expected in ((self.image, {9092, 29092, 19092, 9644}), (self.zookeeper_image, {2181})):
            exposed = json.loads(run(["docker", "image", "inspect", "-f", "{{json .Config.ExposedPorts}}", image],
                                     60).stdout)
            self.assertEqual({int(p.split("/")[0]) for p in exposed}, expected, image)
        config = self.compose_run("config").stdout
        published = {int(a or b) for a, b in re.findall(r"target: (\d+)|:(\d+)/tcp", config)}
        self.assertEqual(published, {9092, 9644}, config)

    # ---- The cluster

    def test_cluster(self):
        # Both listeners: host clients learn the published 127.0.0.1 ports,
        # containers on the network learn brokerN:29092.
        info = json.loads(self.on_host("cluster", "info", "--format", "json").stdout)
        self.assertEqual(sorted((b["id"], b["host"], b["port"]) for b in info["brokers"]),
                         [(i, "127.0.0.1", p) for i, p in enumerate(self.kafka_ports, 1)], info)
        info = json.loads(self.on_network("cluster", "info", "--format", "json").stdout)
        self.assertEqual(sorted((b["id"], b["host"], b["port"]) for b in info["brokers"]),
                         [(i, "broker%d" % i, 29092) for i in (1, 2, 3)], info)

        # docker-events takes the live producer's records; docker-quiet has
        # no writer in the background, so consume -e can reach its end.
        topic, quiet = "docker-events", "docker-quiet"
        for name in (topic, quiet):
            self.on_host("topic", "create", name, "-p", "3", "-r", "3")
            vt.wait_for(lambda: self.isr_full(name), timeout=60, interval=0.5,
                        what="a full ISR on every partition of %s" % name)

        # Host to network and network to host.
        host_lines = ["host-%d" % i for i in range(100)]
        self.on_host("produce", topic, input="\n".join(host_lines) + "\n")
        got = self.on_network("consume", topic, "-o", "beginning", "-n", len(host_lines)).stdout.split()
        self.assertEqual(sorted(got), sorted(host_lines))
        net_lines = ["net-%d" % i for i in range(100)]
        self.on_network("produce", topic, input="\n".join(net_lines) + "\n")
        got = self.on_host("consume", topic, "-o", "beginning", "-e").stdout.split()
        self.assertEqual(sorted(got), sorted(host_lines + net_lines))

        # A producer on the host writes all along; the leader of partition 0
        # stops.
        producer = LiveProducer(self.host_bootstrap, topic)
        producer.start()
        _cleanups.append(producer.stop)
        vt.wait_for(lambda: producer.acked_count() >= 20, timeout=60, interval=0.2,
                    what="the live producer's first acknowledgements")
        victim = self.describe(topic)["partitions"][0]["leader"]
        service = "broker%d" % victim
        self.compose_run("stop", "--timeout", "30", service, timeout=120)
        acked_at_stop = producer.acked_count()

        def leaders_moved():
            parts = self.describe(topic)["partitions"]
            return all(p["leader"] in (1, 2, 3) and p["leader"] != victim and victim not in p["isr"]
                       for p in parts)

        vt.wait_for(leaders_moved, timeout=90, interval=0.5, what="leaders to move off broker %d" % victim)
        vt.wait_for(lambda: producer.acked_count() >= acked_at_stop + 50, timeout=90, interval=0.2,
                    what="the live producer to go on after broker %d stopped" % victim)
        # Clients on the network go on too, the stopped broker's name unresolvable.
        during = ["during-%d" % i for i in range(30)]
        self.on_network("produce", quiet, input="\n".join(during) + "\n")
        got = self.on_network("consume", quiet, "-o", "beginning", "-e").stdout.split()
        self.assertEqual(sorted(got), sorted(during))

        # Back again: healthy, and in every ISR.
        self.compose_run("start", service, timeout=120)
        vt.wait_for(lambda: self.health(service) == "healthy", timeout=180, interval=1,
                    what="%s to be healthy again" % service)
        vt.wait_for(lambda: self.isr_full(topic), timeout=120, interval=0.5,
                    what="broker %d back in every ISR" % victim)
        vt.wait_for(lambda: self.on_host("cluster", "health", check=False).returncode == 0, timeout=120,
                    interval=1, what="vltava cluster health (no offline or under-replicated partition)")
        acked_before_stop = producer.acked_count()
        vt.wait_for(lambda: producer.acked_count() >= acked_before_stop + 20, timeout=60, interval=0.2,
                    what="the live producer to go on with broker %d back" % victim)

        acked, failed = producer.stop()
        self.assertEqual(failed, [], "deliveries that failed")
        got = self.on_host("consume", topic, "-o", "beginning", "-e").stdout.split()
        live = [v for v in got if v.startswith("live-")]
        self.assertEqual(sorted(live), sorted(acked), "every acknowledged record once, nothing else")
        print("live producer: %d records acknowledged across the stop and start of broker %d"
              % (len(acked), victim), file=sys.stderr)


class LiveProducer:
    """A librdkafka producer (Debian's confluent-kafka) on the host writing
    live-<n> records every 20 ms, idempotent with acks=all, until stopped; at
    most 20,000 records."""

    LIMIT = 20000

    def __init__(self, bootstrap, topic):
        from confluent_kafka import Producer

        self.topic = topic
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                                  "linger.ms": 5, "message.timeout.ms": 120000,
                                  # Only errors: disconnects from the stopped broker are expected.
                                  "log_level": 3})
        self.acked = []
        self.failed = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.done = False

    def _delivered(self, err, msg):
        with self.lock:
            if err is None:
                self.acked.append(msg.value().decode())
            else:
                self.failed.append("%s: %s" % (msg.value().decode(), err))

    def _loop(self):
        for n in range(self.LIMIT):
            if self.stopping.is_set():
                break
            self.producer.produce(self.topic, ("live-%d" % n).encode(), on_delivery=self._delivered)
            self.producer.poll(0.02)
        self.producer.flush(150)

    def start(self):
        self.thread.start()

    def acked_count(self):
        with self.lock:
            return len(self.acked)

    def stop(self):
        """Stops producing, waits for the outstanding deliveries; returns
        (acknowledged values, failures)."""
        if not self.done:
            self.stopping.set()
            self.thread.join(180)
            assert not self.thread.is_alive(), "the live producer did not finish its deliveries"
            self.done = True
        with self.lock:
            return list(self.acked), list(self.failed)


def main():
    problem = docker_engine_problem()
    if problem is not None:
        print("SKIPPED: the Docker test needs a running Docker engine (%s)" % problem)
        return SKIP_EXIT_CODE
    # A SIGTERM or SIGHUP (ctest, a closed terminal) ends the run through
    # the cleanups, as SIGINT does.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda s, _frame: sys.exit(128 + s))
    program = unittest.main(module=__name__, exit=False, verbosity=2)
    run_cleanups()
    return 0 if program.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
