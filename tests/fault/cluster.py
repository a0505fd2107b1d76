"""ZooKeeper and three brokers, each in its own namespace of the Lab, and a
view of the cluster's state read from ZooKeeper (kazoo) with the znode
payloads decoded (proto/znodes.proto).

Every process is the orchestrator's child, started under
`setpriv --pdeathsig KILL`, so none outlives it even when it is killed;
the Lab's cleanup kills what is left by pid as well."""

import os
import signal
import subprocess
import time

CHROOT = "/vltava"
ZK_PORT = 2181
KAFKA_PORT = 9092
RPC_PORT = 19092
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer")


def wait_for(predicate, timeout, interval=0.2):
    """Polls predicate until it returns a true value or timeout seconds
    pass; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


# -- protobuf (only what the znodes use: varints and length-delimited fields)


def _varint(buf, i):
    value = shift = 0
    while True:
        if i >= len(buf) or shift > 63:
            raise ValueError("truncated varint")
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def _int32(v):
    v &= 0xFFFFFFFFFFFFFFFF
    return v - (1 << 64) if v >= 1 << 63 else v


def pb_fields(buf):
    """field number -> list of values (ints for varints, bytes otherwise);
    packed repeated ints come as bytes (see pb_ints)."""
    out, i = {}, 0
    while i < len(buf):
        key, i = _varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
            value = _int32(value)
        elif wire == 2:
            n, i = _varint(buf, i)
            if i + n > len(buf):
                raise ValueError("truncated field")
            value, i = bytes(buf[i:i + n]), i + n
        elif wire == 1:
            value, i = bytes(buf[i:i + 8]), i + 8
        elif wire == 5:
            value, i = bytes(buf[i:i + 4]), i + 4
        else:
            raise ValueError("wire type %d" % wire)
        out.setdefault(field, []).append(value)
    return out


def pb_ints(values):
    """A repeated int32 field, packed or not."""
    out = []
    for v in values or []:
        if isinstance(v, int):
            out.append(v)
            continue
        i = 0
        while i < len(v):
            x, i = _varint(v, i)
            out.append(_int32(x))
    return out


def pb_int(fields, n, default=0):
    return fields.get(n, [default])[-1]


# -- processes


def _spawn(cmd, logfile, env=None):
    log = open(logfile, "ab")
    try:
        return subprocess.Popen(["setpriv", "--pdeathsig", "KILL"] + cmd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    finally:
        log.close()


class Proc:
    """A server process in a namespace: started, killed, paused, and whether
    it died without being told to."""

    def __init__(self, name, node, logfile):
        self.name = name
        self.node = node
        self.logfile = logfile
        self.proc = None
        self.expect_exit = False  # the suite signalled it to stop or die
        self.paused = False
        self.unexpected_exits = []  # (time, returncode) of deaths nobody caused

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def note(self, text):
        with open(self.logfile, "a") as f:
            f.write("==== fault suite %s: %s ====\n" % (time.strftime("%H:%M:%S"), text))

    def check(self):
        """Records an exit the suite did not cause; returns True once."""
        if self.proc is None or self.proc.poll() is None or self.expect_exit:
            return False
        self.unexpected_exits.append((time.time(), self.proc.returncode))
        self.note("exited by itself with status %d" % self.proc.returncode)
        self.proc = None
        return True

    def signal(self, sig):
        if self.alive():
            os.kill(self.proc.pid, sig)

    def kill(self):
        self.expect_exit = True
        if self.paused:
            self.resume()
        self.signal(signal.SIGKILL)
        if self.proc:
            self.proc.wait(30)
        self.proc = None

    def stop(self, timeout=60):
        """SIGTERM and wait; a process that does not exit in time is killed
        and False returned."""
        self.expect_exit = True
        if self.paused:
            self.resume()
        if not self.alive():
            self.proc = None
            return True
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
            ok = True
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.proc.wait(30)
            ok = False
        self.proc = None
        return ok

    def pause(self):
        self.signal(signal.SIGSTOP)
        self.paused = True

    def resume(self):
        self.signal(signal.SIGCONT)
        self.paused = False


class ZooKeeper(Proc):
    def __init__(self, lab, workdir):
        super().__init__("zookeeper", "zk", os.path.join(workdir, "zookeeper.log"))
        self.lab = lab
        self.dir = os.path.join(workdir, "zookeeper")
        self.addr = lab.nodes["zk"]
        # deploy/zookeeper-lib.sh writes the config (a short tick, so
        # sessions down to 1 s) and names the command; the server listens
        # on the namespace's address instead of loopback.
        script = ('. "$1/deploy/zookeeper-lib.sh" && zk_write_config "$2" %d 500 1000 60000 && '
                  'zk_command "$2/zoo.cfg" -XX:TieredStopAtLevel=1 && printf "%%s\\0" "${ZK_COMMAND[@]}"' % ZK_PORT)
        out = subprocess.run(["bash", "-c", script, "_", REPO, self.dir], capture_output=True, check=True).stdout
        self.command = out.decode().split("\0")[:-1]
        cfg = os.path.join(self.dir, "zoo.cfg")
        with open(cfg) as f:
            text = f.read().replace("clientPortAddress=127.0.0.1", "clientPortAddress=" + self.addr)
        with open(cfg, "w") as f:
            f.write(text)

    def start(self):
        assert not self.alive()
        self.note("starting")
        self.expect_exit = False
        self.proc = _spawn(self.lab.exec_prefix("zk") + self.command, self.logfile)

    def ok(self):
        import socket

        try:
            with socket.create_connection((self.addr, ZK_PORT), timeout=2) as s:
                s.sendall(b"ruok")
                return s.recv(16) == b"imok"
        except OSError:
            return False


class Broker(Proc):
    def __init__(self, lab, workdir, broker_id, build_dir, config):
        node = "b%d" % broker_id
        super().__init__("broker-%d" % broker_id, node, os.path.join(workdir, "broker-%d.log" % broker_id))
        self.lab = lab
        self.id = broker_id
        self.addr = lab.nodes[node]
        self.datadir = os.path.join(workdir, "data-%d" % broker_id)
        self.config_file = os.path.join(workdir, "broker-%d.properties" % broker_id)
        self.binary = os.path.join(build_dir, "broker", "vltava-broker")
        own = {
            "broker.id": broker_id,
            "listeners": "PLAINTEXT://%s:%d" % (self.addr, KAFKA_PORT),
            "replication.listener": "%s:%d" % (self.addr, RPC_PORT),
            "zookeeper.connect": "%s:%d%s" % (lab.nodes["zk"], ZK_PORT, CHROOT),
            "log.dirs": self.datadir,
        }
        with open(self.config_file, "w") as f:
            for key, value in list(config.items()) + list(own.items()):
                f.write("%s=%s\n" % (key, value))

    @property
    def bootstrap(self):
        return "%s:%d" % (self.addr, KAFKA_PORT)

    def start(self):
        assert not self.alive()
        self.note("starting")
        self.expect_exit = False
        self.paused = False
        env = dict(os.environ)
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        env.setdefault("LSAN_OPTIONS", "suppressions=" + os.path.join(REPO, "tests/integration/lsan.supp"))
        self.proc = _spawn(self.lab.exec_prefix(self.node) + [self.binary, "--config", self.config_file],
                           self.logfile, env)

    def sanitizer_reports(self):
        """Lines of the log that are sanitizer reports."""
        out = []
        with open(self.logfile, errors="replace") as f:
            for line in f:
                if any(m in line for m in SANITIZER_MARKERS):
                    out.append(line.rstrip())
        return out


class ClusterView:
    """The cluster as ZooKeeper has it (kazoo on the hub's bridge)."""

    def __init__(self, zk_addr):
        import logging

        from kazoo.client import KazooClient

        # kazoo logs every lost connection; ZooKeeper restarts are on purpose.
        logging.getLogger("kazoo").setLevel(logging.CRITICAL)
        self.zk = KazooClient(hosts="%s:%d" % (zk_addr, ZK_PORT), timeout=10, connection_retry={"max_tries": -1})
        self.zk.start(timeout=30)

    def close(self):
        self.zk.stop()
        self.zk.close()

    def _get(self, path):
        from kazoo.exceptions import KazooException, NoNodeError

        try:
            return self.zk.get(CHROOT + path)[0]
        except (NoNodeError, KazooException):
            return None
        except Exception:  # a session in trouble while ZooKeeper restarts
            return None

    def session_of(self, broker_id):
        """The ZooKeeper session that registered the broker, or None."""
        try:
            st = self.zk.exists("%s/brokers/ids/%d" % (CHROOT, broker_id))
        except Exception:
            return None
        return st.ephemeralOwner if st else None

    def wait_new_session(self, broker_id, old_session, timeout):
        """Waits until the broker is registered by a session other than
        old_session (a restarted process has re-registered)."""
        return wait_for(lambda: self.session_of(broker_id) not in (None, old_session), timeout, 0.3)

    def live_brokers(self):
        try:
            return sorted(int(x) for x in self.zk.get_children(CHROOT + "/brokers/ids"))
        except Exception:
            return None

    def controller(self):
        data = self._get("/controller")
        return pb_int(pb_fields(data), 1, -1) if data else -1

    def replicas(self, topic):
        """partition -> replica list."""
        data = self._get("/brokers/topics/" + topic)
        if not data:
            return None
        out = {}
        for part in pb_fields(data).get(2, []):
            f = pb_fields(part)
            out[pb_int(f, 1)] = pb_ints(f.get(2))
        return out

    def state(self, topic, partition):
        """(leader, leader_epoch, isr) or None."""
        data = self._get("/brokers/topics/%s/partitions/%d/state" % (topic, partition))
        if data is None:
            return None
        f = pb_fields(data)
        return pb_int(f, 1, 0), pb_int(f, 2, 0), sorted(pb_ints(f.get(3)))

    def full_isr(self, topics, broker_ids):
        """True when every broker is registered and every partition of the
        topics has a leader and all its replicas in the ISR."""
        if self.live_brokers() != sorted(broker_ids):
            return False
        for topic in topics:
            reps = self.replicas(topic)
            if not reps:
                return False
            for p, replicas in reps.items():
                st = self.state(topic, p)
                if st is None or st[0] < 0 or st[2] != sorted(replicas):
                    return False
        return True

    def leaders(self, topic):
        reps = self.replicas(topic) or {}
        out = {}
        for p in reps:
            st = self.state(topic, p)
            out[p] = st[0] if st else -1
        return out
