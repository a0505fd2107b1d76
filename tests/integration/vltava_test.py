"""Integration-test harness: real ZooKeeper, real vltava-broker processes.

Every test gets its own ZooKeeper chroot, free ports and a temporary
directory, so test files can run in parallel. tests/run.sh starts one
ZooKeeper for the whole run and exports VLTAVA_TEST_ZK=host:port; without it
the harness starts its own (once per process) and stops it at exit.

Everything started here is stopped by pid: in Cluster.__exit__/close(), at
interpreter exit (atexit), and by the kernel if this process dies first
(PR_SET_PDEATHSIG), so a killed test run leaves no broker behind.

Waits poll with a deadline (wait_for); nothing sleeps and hopes.
"""

import atexit
import ctypes
import itertools
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))

# Processes started by this module and not yet reaped: killed at exit.
_live_processes = set()
_own_zookeeper = None


# --------------------------------------------------------------------------
# Paths and small utilities


def build_dir():
    return os.environ.get("VLTAVA_BUILD_DIR") or os.path.join(REPO_ROOT, "build")


def _find_binary(candidates, what):
    for rel in candidates:
        path = os.path.join(build_dir(), rel)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise AssertionError("%s not built: looked for %s under %s" % (what, ", ".join(candidates), build_dir()))


def broker_bin():
    return _find_binary(["broker/vltava-broker", "vltava-broker", "bin/vltava-broker"], "vltava-broker")


def cli_bin():
    return _find_binary(["cli/vltava", "vltava", "bin/vltava"], "vltava")


_ports_given = set()


def free_port():
    """A TCP port that was free on 127.0.0.1 a moment ago, and never one this
    process handed out before: the kernel may return a port it just freed, and
    a cluster's ports are picked before any broker binds them (two brokers
    given one port would race for it)."""
    for _ in range(1000):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _ports_given:
            _ports_given.add(port)
            return port
    raise AssertionError("no unused free port after 1000 tries")


def wait_for(predicate, timeout=10, what="condition", interval=0.05):
    """Polls predicate() until it returns a true value, which is returned.
    Exceptions from predicate count as 'not yet'; the last one is named in
    the AssertionError raised at the deadline."""
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as e:  # noqa: BLE001 - any failure means "not yet"
            last_error = e
        if time.monotonic() >= deadline:
            detail = " (last error: %r)" % (last_error,) if last_error is not None else ""
            raise AssertionError("timed out after %.1fs waiting for %s%s" % (timeout, what, detail))
        time.sleep(interval)


def _die_with_parent():
    """preexec_fn: the child gets SIGKILL when this process exits."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _spawn(argv, logfile, env=None, cwd=None):
    log = open(logfile, "ab")
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                                cwd=cwd, preexec_fn=_die_with_parent)
    finally:
        log.close()
    _live_processes.add(proc)
    return proc


def _reap(proc, timeout):
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    _live_processes.discard(proc)
    return code


def _kill_now(proc):
    """SIGKILL, unless it already exited (SIGCONT first: a stopped process
    would not be reaped until continued)."""
    if proc.poll() is None:
        try:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
        except ProcessLookupError:
            pass


class _Pausable:
    """pause() and resume() of self.proc: SIGSTOP and SIGCONT."""

    def pause(self):
        os.kill(self.proc.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self):
        os.kill(self.proc.pid, signal.SIGCONT)
        self.paused = False


@atexit.register
def _kill_everything():
    for proc in list(_live_processes):
        _kill_now(proc)
        _reap(proc, 10)
    if _own_zookeeper is not None:
        _own_zookeeper.cleanup()


def tail(path, lines=60):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return "<cannot read %s: %s>" % (path, e)
    text = data.decode("utf-8", "replace").splitlines()
    return "\n".join(text[-lines:])


# --------------------------------------------------------------------------
# ZooKeeper

ZOOKEEPER_CLASSPATH = [
    # zookeeper.jar's manifest Class-Path names its dependencies (jute,
    # netty, jetty, metrics, slf4j-api, ...); slf4j-simple gives it a logger.
    "/usr/share/java/zookeeper.jar",
    "/usr/share/java/slf4j-simple.jar",
]


class ZooKeeperServer:
    """A standalone ZooKeeper from Debian's package, data in a temp dir."""

    def __init__(self, port=None, datadir=None):
        self.port = port or free_port()
        self.tmpdir = datadir or tempfile.mkdtemp(prefix="vltava-zk-")
        self.proc = None

    @property
    def connect(self):
        return "127.0.0.1:%d" % self.port

    def start(self, timeout=60):
        data = os.path.join(self.tmpdir, "data")
        os.makedirs(data, exist_ok=True)
        cfg = os.path.join(self.tmpdir, "zoo.cfg")
        with open(cfg, "w") as f:
            f.write("tickTime=500\ninitLimit=10\nsyncLimit=5\n"
                    "dataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\n"
                    "admin.enableServer=false\nmaxClientCnxns=0\n"
                    "minSessionTimeout=1000\nmaxSessionTimeout=60000\n"
                    "4lw.commands.whitelist=ruok,srvr,stat,mntr\n" % (data, self.port))
        argv = ["java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                "-Dzookeeper.admin.enableServer=false",
                "-cp", ":".join(ZOOKEEPER_CLASSPATH),
                "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg]
        self.logfile = os.path.join(self.tmpdir, "zookeeper.log")
        self.proc = _spawn(argv, self.logfile)
        wait_for(lambda: self._check_running() and four_letter_word(self.port, "ruok") == b"imok",
                 timeout=timeout, what="ZooKeeper on port %d to answer ruok" % self.port)
        return self

    def _check_running(self):
        if self.proc.poll() is not None:
            raise AssertionError("ZooKeeper exited with %s:\n%s" % (self.proc.returncode, tail(self.logfile)))
        return True

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            if _reap(self.proc, 15) is None:
                self.proc.kill()
                _reap(self.proc, 15)

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.tmpdir, ignore_errors=True)


def four_letter_word(port, word, timeout=2):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(word.encode())
        chunks = []
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def zookeeper():
    """host:port of the run's ZooKeeper, starting one for this process if
    tests/run.sh did not export VLTAVA_TEST_ZK."""
    global _own_zookeeper
    zk = os.environ.get("VLTAVA_TEST_ZK")
    if zk:
        return zk
    if _own_zookeeper is None:
        _own_zookeeper = ZooKeeperServer().start()
        os.environ["VLTAVA_TEST_ZK"] = _own_zookeeper.connect
    return _own_zookeeper.connect


def zk_client(connect):
    """A started kazoo client; connect may carry a chroot. Caller stops it."""
    from kazoo.client import KazooClient

    client = KazooClient(hosts=connect, timeout=10)
    client.start(timeout=15)
    return client


# --------------------------------------------------------------------------
# Raw Kafka protocol, for tests that need exact control of the bytes.


class Writer:
    """Big-endian Kafka primitive encoder."""

    def __init__(self):
        self.buf = bytearray()

    def i8(self, v):
        self.buf += struct.pack(">b", v)
        return self

    def i16(self, v):
        self.buf += struct.pack(">h", v)
        return self

    def i32(self, v):
        self.buf += struct.pack(">i", v)
        return self

    def i64(self, v):
        self.buf += struct.pack(">q", v)
        return self

    def uvarint(self, v):
        while v >= 0x80:
            self.buf.append((v & 0x7F) | 0x80)
            v >>= 7
        self.buf.append(v)
        return self

    def string(self, s):
        if s is None:
            return self.i16(-1)
        b = s.encode() if isinstance(s, str) else s
        return self.i16(len(b)).raw(b)

    def bytes_(self, b):
        if b is None:
            return self.i32(-1)
        return self.i32(len(b)).raw(b)

    def compact_string(self, s):
        if s is None:
            return self.uvarint(0)
        b = s.encode() if isinstance(s, str) else s
        return self.uvarint(len(b) + 1).raw(b)

    def array(self, items, encode_item):
        if items is None:
            return self.i32(-1)
        self.i32(len(items))
        for item in items:
            encode_item(self, item)
        return self

    def tags(self):
        return self.uvarint(0)

    def raw(self, b):
        self.buf += b
        return self

    def bytes(self):
        return bytes(self.buf)


class Reader:
    """Big-endian Kafka primitive decoder; raises ValueError past the end."""

    def __init__(self, data):
        self.data = data
        self.pos = 0

    def _take(self, n):
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError("read of %d bytes at %d past end %d" % (n, self.pos, len(self.data)))
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def i8(self):
        return struct.unpack(">b", self._take(1))[0]

    def i16(self):
        return struct.unpack(">h", self._take(2))[0]

    def i32(self):
        return struct.unpack(">i", self._take(4))[0]

    def i64(self):
        return struct.unpack(">q", self._take(8))[0]

    def uvarint(self):
        shift = value = 0
        while True:
            b = self._take(1)[0]
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7

    def string(self):
        n = self.i16()
        return None if n < 0 else self._take(n).decode()

    def bytes_(self):
        n = self.i32()
        return None if n < 0 else self._take(n)

    def array(self, decode_item):
        n = self.i32()
        return None if n < 0 else [decode_item(self) for _ in range(n)]

    def skip_tags(self):
        """Skips a flexible-version tagged-field section."""
        for _ in range(self.uvarint()):
            self.uvarint()
            self._take(self.uvarint())

    def remaining(self):
        return len(self.data) - self.pos


class KafkaConnection:
    """One TCP connection speaking Kafka frames (request header v1, or v2
    when flexible=True)."""

    def __init__(self, port, host="127.0.0.1", timeout=10, client_id="vltava-test"):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.client_id = client_id
        self._correlation = itertools.count(1)

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, api_key, version, body, flexible=False):
        """Sends one request; returns its correlation id."""
        cid = next(self._correlation)
        w = Writer().i16(api_key).i16(version).i32(cid).string(self.client_id)
        if flexible:
            w.tags()
        frame = w.bytes() + body
        self.sock.sendall(struct.pack(">i", len(frame)) + frame)
        return cid

    def send_raw(self, data):
        self.sock.sendall(data)

    def recv_frame(self):
        """One response frame (without its length), or None on EOF."""
        head = self._recv_exact(4)
        if head is None:
            return None
        (n,) = struct.unpack(">i", head)
        if n < 4 or n > 256 * 1024 * 1024:
            raise ValueError("bad response frame length %d" % n)
        frame = self._recv_exact(n)
        if frame is None:
            raise ValueError("connection closed inside a response frame")
        return frame

    def recv(self, expect_cid=None, flexible=False):
        """(correlation id, response body) of the next response."""
        frame = self.recv_frame()
        if frame is None:
            raise ConnectionError("connection closed by the broker")
        r = Reader(frame)
        cid = r.i32()
        if flexible:
            r.skip_tags()
        if expect_cid is not None and cid != expect_cid:
            raise ValueError("correlation id %d, expected %d" % (cid, expect_cid))
        return cid, frame[r.pos:]

    def request(self, api_key, version, body=b"", flexible=False):
        """Sends a request and returns the response body. ApiVersions (key 18)
        always answers with a v0 response header."""
        cid = self.send(api_key, version, body, flexible=flexible)
        return self.recv(expect_cid=cid, flexible=flexible and api_key != 18)[1]

    def _recv_exact(self, n):
        chunks = []
        while n > 0:
            chunk = self.sock.recv(n)
            if not chunk:
                if chunks:
                    raise ValueError("connection closed mid-frame")
                return None
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)


# Encoding for tests that speak an API at several versions: one class for
# classic and compact (flexible) fields.

class Enc:
    def __init__(self, flexible):
        self.w = Writer()
        self.flexible = flexible

    def i8(self, v):
        self.w.i8(v)
        return self

    def i16(self, v):
        self.w.i16(v)
        return self

    def i32(self, v):
        self.w.i32(v)
        return self

    def i64(self, v):
        self.w.i64(v)
        return self

    def bool_(self, v):
        return self.i8(1 if v else 0)

    def str_(self, s):
        if self.flexible:
            self.w.compact_string(s)
        else:
            self.w.string(s)
        return self

    def bytes_(self, b):
        if not self.flexible:
            self.w.bytes_(b)
        elif b is None:
            self.w.uvarint(0)
        else:
            self.w.uvarint(len(b) + 1).raw(b)
        return self

    def array(self, items, encode_item):
        if items is None:
            if self.flexible:
                self.w.uvarint(0)
            else:
                self.w.i32(-1)
            return self
        if self.flexible:
            self.w.uvarint(len(items) + 1)
        else:
            self.w.i32(len(items))
        for item in items:
            encode_item(self, item)
        return self

    def tags(self):
        if self.flexible:
            self.w.tags()
        return self

    def bytes(self):
        return self.w.bytes()


class Dec:
    def __init__(self, data, flexible):
        self.r = Reader(data)
        self.flexible = flexible

    def i8(self):
        return self.r.i8()

    def i16(self):
        return self.r.i16()

    def i32(self):
        return self.r.i32()

    def i64(self):
        return self.r.i64()

    def bool_(self):
        return self.r.i8() != 0

    def _length(self):
        return self.r.uvarint() - 1

    def str_(self):
        if not self.flexible:
            return self.r.string()
        n = self._length()
        return None if n < 0 else self.r._take(n).decode()

    def bytes_(self):
        if not self.flexible:
            return self.r.bytes_()
        n = self._length()
        return None if n < 0 else self.r._take(n)

    def array(self, decode_item):
        n = self._length() if self.flexible else self.r.i32()
        return None if n < 0 else [decode_item(self) for _ in range(n)]

    def tags(self):
        if self.flexible:
            self.r.skip_tags()

    def end(self, what):
        self.tags()
        assert self.r.remaining() == 0, "%d bytes left in %s" % (self.r.remaining(), what)


def api_versions(port, timeout=5):
    """ApiVersions v0 on a fresh connection: {api_key: (min, max)}."""
    with KafkaConnection(port, timeout=timeout) as conn:
        r = Reader(conn.request(18, 0))
        error = r.i16()
        if error != 0:
            raise AssertionError("ApiVersions error %d" % error)
        return {k: (lo, hi) for k, lo, hi in r.array(lambda x: (x.i16(), x.i16(), x.i16()))}


def raw_metadata(port, topics=None, timeout=5):
    """Metadata v1 on a fresh connection (topics=None: all topics).
    Returns {"brokers": {id: (host, port, rack)}, "controller_id": int,
    "topics": {name: {"error": int, "partitions": {p: {"error", "leader",
    "replicas", "isr"}}}}}."""
    body = Writer().array(topics, lambda w, t: w.string(t)).bytes()
    with KafkaConnection(port, timeout=timeout) as conn:
        r = Reader(conn.request(3, 1, body))
    brokers = {}
    for node, host, bport, rack in r.array(lambda x: (x.i32(), x.string(), x.i32(), x.string())):
        brokers[node] = (host, bport, rack)
    controller = r.i32()

    def partition(x):
        err, pid, leader = x.i16(), x.i32(), x.i32()
        replicas = x.array(lambda y: y.i32())
        isr = x.array(lambda y: y.i32())
        return pid, {"error": err, "leader": leader, "replicas": replicas, "isr": isr}

    def topic(x):
        err, name, _internal = x.i16(), x.string(), x.i8()
        return name, {"error": err, "partitions": dict(x.array(partition))}

    return {"brokers": brokers, "controller_id": controller, "topics": dict(r.array(topic))}


def _crc32c_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C_TABLE = _crc32c_table()


def crc32c(data, crc=0):
    """CRC-32C (Castagnoli), as RecordBatch v2 uses. Slow: for test data only."""
    crc ^= 0xFFFFFFFF
    table = _CRC32C_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _zigzag(w, v):
    return w.uvarint((v << 1) ^ (v >> 63))


def _read_zigzag(r):
    v = r.uvarint()
    return (v >> 1) ^ -(v & 1)


def build_record_batch(records, base_timestamp=None, attributes=0, producer_id=-1, producer_epoch=-1,
                       base_sequence=-1):
    """An uncompressed RecordBatch v2 (BaseOffset 0) holding records, each
    (key, value) or (key, value, [(header_key, header_value), ...]); bytes or
    None. Timestamps are base_timestamp + index (ms). An idempotent
    producer's batch names its producer id, epoch and first sequence;
    attributes 0x10 marks it transactional."""
    if base_timestamp is None:
        base_timestamp = int(time.time() * 1000)
    body = Writer()
    for i, rec in enumerate(records):
        key, value = rec[0], rec[1]
        headers = rec[2] if len(rec) > 2 else []
        r = Writer().i8(0)
        _zigzag(r, i)  # timestamp delta
        _zigzag(r, i)  # offset delta
        for field in (key, value):
            if field is None:
                _zigzag(r, -1)
            else:
                _zigzag(r, len(field)).raw(field)
        _zigzag(r, len(headers))
        for hk, hv in headers:
            hk = hk.encode() if isinstance(hk, str) else hk
            _zigzag(r, len(hk)).raw(hk)
            if hv is None:
                _zigzag(r, -1)
            else:
                _zigzag(r, len(hv)).raw(hv)
        _zigzag(body, len(r.buf)).raw(bytes(r.buf))
    n = len(records)
    covered = (Writer().i16(attributes).i32(n - 1).i64(base_timestamp).i64(base_timestamp + n - 1)
               .i64(producer_id).i16(producer_epoch).i32(base_sequence).i32(n).raw(body.bytes()).bytes())
    after_length = Writer().i32(0).i8(2).raw(struct.pack(">I", crc32c(covered))).raw(covered).bytes()
    return Writer().i64(0).i32(len(after_length)).raw(after_length).bytes()


def parse_record_batches(data, check_crc=True):
    """The RecordBatch v2 headers in data, a list of dicts (base_offset,
    last_offset, length, leader_epoch, magic, crc, crc_ok, attributes, codec,
    base_timestamp, max_timestamp, count, payload). A partial batch at the
    end (allowed in Fetch answers) is dropped and reported as 'partial' in
    the last dict's place only if nothing else was whole."""
    batches = []
    pos = 0
    while pos + 12 <= len(data):
        base_offset, length = struct.unpack_from(">qi", data, pos)
        if length < 49 or pos + 12 + length > len(data):
            break
        end = pos + 12 + length
        epoch, magic = struct.unpack_from(">ib", data, pos + 12)
        (crc,) = struct.unpack_from(">I", data, pos + 17)
        attrs, last_delta, base_ts, max_ts, _pid, _pepoch, _seq, count = struct.unpack_from(
            ">hiqqqhii", data, pos + 21)
        batches.append({
            "base_offset": base_offset, "last_offset": base_offset + last_delta, "length": length,
            "leader_epoch": epoch, "magic": magic, "crc": crc,
            "crc_ok": (crc32c(data[pos + 21:end]) == crc) if check_crc else None,
            "attributes": attrs, "codec": attrs & 7, "base_timestamp": base_ts,
            "max_timestamp": max_ts, "count": count, "payload": data[pos + 61:end],
        })
        pos = end
    return batches


def decode_records(batch):
    """[(offset, timestamp, key, value, headers)] of an uncompressed batch."""
    if batch["codec"] != 0:
        raise ValueError("compressed batch (codec %d)" % batch["codec"])
    r = Reader(batch["payload"])
    out = []
    for _ in range(batch["count"]):
        length = _read_zigzag(r)
        rec = Reader(r._take(length))
        rec.i8()
        ts_delta = _read_zigzag(rec)
        off_delta = _read_zigzag(rec)

        def field():
            n = _read_zigzag(rec)
            return None if n < 0 else rec._take(n)

        key, value = field(), field()
        headers = [(field(), field()) for _ in range(_read_zigzag(rec))]
        out.append((batch["base_offset"] + off_delta, batch["base_timestamp"] + ts_delta, key, value, headers))
    return out


def raw_produce(conn, topic, partition, batch, acks=-1, timeout_ms=10000, version=3):
    """Sends Produce (v3..v8) with one batch; returns the correlation id.
    Read the answer with read_produce_response (none comes for acks=0)."""
    body = (Writer().string(None).i16(acks).i32(timeout_ms)
            .array([topic], lambda w, t: w.string(t).array([partition], lambda w2, p: w2.i32(p).bytes_(batch)))
            .bytes())
    return conn.send(0, version, body)


def read_produce_response(body):
    """{(topic, partition): (error, base_offset)} of a Produce v3..v4 answer."""
    r = Reader(body)
    out = {}
    for topic, parts in r.array(lambda x: (x.string(), x.array(lambda y: (y.i32(), y.i16(), y.i64(), y.i64())))):
        for pid, err, base, _ts in parts:
            out[(topic, pid)] = (err, base)
    return out


def raw_fetch(port, topic, partition, offset, max_wait_ms=0, min_bytes=1, max_bytes=1 << 20,
              partition_max_bytes=1 << 20, timeout=30, conn=None, isolation_level=0):
    """One Fetch v4; returns {"error", "high_watermark", "last_stable_offset",
    "aborted" ([(producer_id, first_offset)] or None), "records" (bytes)}
    for the partition. isolation_level 1: read_committed."""
    body = (Writer().i32(-1).i32(max_wait_ms).i32(min_bytes).i32(max_bytes).i8(isolation_level)
            .array([topic], lambda w, t: w.string(t).array(
                [partition], lambda w2, p: w2.i32(p).i64(offset).i32(partition_max_bytes)))
            .bytes())
    own = conn is None
    if own:
        conn = KafkaConnection(port, timeout=timeout)
    try:
        r = Reader(conn.request(1, 4, body))
    finally:
        if own:
            conn.close()
    r.i32()  # throttle time
    for _topic in range(r.i32()):
        r.string()
        for _part in range(r.i32()):
            pid, err, hw, lso = r.i32(), r.i16(), r.i64(), r.i64()
            aborted = r.array(lambda x: (x.i64(), x.i64()))
            records = r.bytes_() or b""
            if pid == partition:
                return {"error": err, "high_watermark": hw, "last_stable_offset": lso, "aborted": aborted,
                        "records": records}
    raise AssertionError("Fetch answer without %s-%d" % (topic, partition))


def read_below_high_watermark(port, topic, partition):
    """(every (offset, value) below the high watermark, the high watermark),
    read with Fetch from the broker at port; OSError on a Fetch error."""
    out, offset = [], 0
    while True:
        f = raw_fetch(port, topic, partition, offset, max_bytes=4 << 20, partition_max_bytes=4 << 20)
        if f["error"] != 0:
            raise OSError("fetch error %d" % f["error"])
        batches = parse_record_batches(f["records"])
        for b in batches:
            for off, _ts, _key, value, _h in decode_records(b):
                if off >= offset:
                    out.append((off, value))
            offset = b["last_offset"] + 1
        if offset >= f["high_watermark"] or not batches:
            return out, f["high_watermark"]


def raw_list_offsets(port, topic, partition, timestamp, timeout=10, isolation_level=None):
    """ListOffsets v1 (v2 when isolation_level is given): (error, timestamp,
    offset). timestamp -2 = earliest, -1 = latest."""
    w = Writer().i32(-1)
    if isolation_level is not None:
        w.i8(isolation_level)
    body = (w.array([topic], lambda w, t: w.string(t).array(
        [partition], lambda w2, p: w2.i32(p).i64(timestamp))).bytes())
    with KafkaConnection(port, timeout=timeout) as conn:
        r = Reader(conn.request(2, 1 if isolation_level is None else 2, body))
        if isolation_level is not None:
            r.i32()  # throttle time
    for _topic in range(r.i32()):
        r.string()
        for _part in range(r.i32()):
            pid, err, ts, off = r.i32(), r.i16(), r.i64(), r.i64()
            if pid == partition:
                return err, ts, off
    raise AssertionError("ListOffsets answer without %s-%d" % (topic, partition))


# --------------------------------------------------------------------------
# Brokers and clusters

_SANITIZER_MARKERS = (b"ERROR: AddressSanitizer", b"runtime error:", b"ERROR: LeakSanitizer")


class Broker(_Pausable):
    """One vltava-broker process. config is the dict written to its
    properties file on every start(); edit it before start() to change it."""

    def __init__(self, broker_id, tmpdir, zk_connect, extra_config=None):
        self.id = broker_id
        self.port = free_port()
        self.rpc_port = free_port()
        self.datadir = os.path.join(tmpdir, "data-%d" % broker_id)
        self.logfile = os.path.join(tmpdir, "broker-%d.log" % broker_id)
        self.config_file = os.path.join(tmpdir, "broker-%d.properties" % broker_id)
        self.config = {
            "broker.id": str(broker_id),
            "listeners": "PLAINTEXT://127.0.0.1:%d" % self.port,
            "replication.listener": "127.0.0.1:%d" % self.rpc_port,
            "zookeeper.connect": zk_connect,
            "log.dirs": self.datadir,
            "zookeeper.session.timeout.ms": "6000",
        }
        self.config.update({k: str(v) for k, v in (extra_config or {}).items()})
        self.proc = None
        self.paused = False
        self.exit_codes = []  # every exit observed, in order
        self._signalled = False  # the harness sent the current process a signal
        self.crashes = []  # (pid, signal) of processes killed by a signal the harness did not send

    @property
    def pid(self):
        return self.proc.pid if self.proc is not None else None

    def write_config(self):
        with open(self.config_file, "w") as f:
            for key, value in self.config.items():
                f.write("%s=%s\n" % (key, value))

    def start(self, args=()):
        """Starts the process (does not wait for it to serve)."""
        assert not self.alive(), "broker %d already running" % self.id
        self.check_crash()
        self.write_config()
        with open(self.logfile, "ab") as f:
            f.write(b"==== harness: starting broker %d ====\n" % self.id)
        env = dict(os.environ)
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        env.setdefault("LSAN_OPTIONS", "suppressions=%s" % os.path.join(HERE, "lsan.supp"))
        self.proc = _spawn([broker_bin(), "--config", self.config_file] + list(args), self.logfile, env=env)
        self.paused = False
        self._signalled = False
        return self

    def check_crash(self):
        """Records the current process if a signal the harness did not send
        ended it (abort, segfault): Cluster.close() fails the test for it.
        A plain non-zero exit (a refused config, say) is not a crash."""
        if self.proc is None or self.proc.poll() is None or self._signalled:
            return
        if self.proc.returncode < 0 and (self.proc.pid, self.proc.returncode) not in self.crashes:
            self.crashes.append((self.proc.pid, self.proc.returncode))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def _note_exit(self, code):
        if code is not None:
            self.exit_codes.append(code)
        return code

    def stop(self, timeout=30):
        """SIGTERM, waits for the exit, returns the exit code. A broker that
        does not exit in time is killed and an AssertionError raised."""
        if self.proc is None:
            return None
        if self.proc.poll() is not None:
            _reap(self.proc, 0)
            return self.proc.returncode
        if self.paused:
            self.resume()
        self._signalled = True
        self.proc.terminate()
        code = _reap(self.proc, timeout)
        if code is None:
            self.proc.kill()
            _reap(self.proc, 10)
            raise AssertionError("broker %d ignored SIGTERM for %ss:\n%s" % (self.id, timeout, tail(self.logfile)))
        return self._note_exit(code)

    def kill(self, sig=signal.SIGKILL):
        """Sends sig; for SIGKILL also waits for the process to be gone."""
        if not self.alive():
            return None
        self._signalled = True
        os.kill(self.proc.pid, sig)
        if sig == signal.SIGKILL:
            return self._note_exit(_reap(self.proc, 30))
        return None

    def log_text(self):
        with open(self.logfile, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def serving(self, expected_ids=None):
        """True when it answers ApiVersions and Metadata (listing every id in
        expected_ids)."""
        if not self.alive():
            raise AssertionError("broker %d exited with %s:\n%s"
                                 % (self.id, self.proc.returncode if self.proc else None, tail(self.logfile)))
        api_versions(self.port, timeout=2)
        md = raw_metadata(self.port, topics=[], timeout=2)
        return expected_ids is None or set(expected_ids) <= set(md["brokers"])

    def wait_ready(self, timeout=60, expected_ids=None):
        wait_for(lambda: self.serving(expected_ids), timeout=timeout,
                 what="broker %d to serve on port %d" % (self.id, self.port))

    def sanitizer_report(self):
        try:
            with open(self.logfile, "rb") as f:
                data = f.read()
        except OSError:
            return None
        for marker in _SANITIZER_MARKERS:
            at = data.find(marker)
            if at >= 0:
                return data[max(0, at - 200):at + 4000].decode("utf-8", "replace")
        return None


_cluster_counter = itertools.count(1)


class Cluster:
    """brokers vltava-broker processes sharing one fresh ZooKeeper chroot.

    broker_config: extra properties for every broker (a dict), or a function
    broker_id -> dict. With start=True the brokers are started and
    wait_ready() has returned when the constructor returns.
    """

    def __init__(self, brokers=1, name=None, broker_config=None, start=True, ready_timeout=90):
        self.name = re.sub(r"[^A-Za-z0-9_.-]", "_", name or _caller_test_name())
        self.tmpdir = tempfile.mkdtemp(prefix="vltava-%s-" % self.name[:40])
        self.chroot = "/vltava-%s-%d-%d-%s" % (self.name[:60], os.getpid(), next(_cluster_counter), uuid.uuid4().hex[:8])
        self.zk_root = zookeeper()
        self.zk_connect = self.zk_root + self.chroot
        self._zk = None
        self._closed = False
        self.brokers = []
        for i in range(1, brokers + 1):
            extra = broker_config(i) if callable(broker_config) else broker_config
            self.brokers.append(Broker(i, self.tmpdir, self.zk_connect, extra))
        if start:
            try:
                for b in self.brokers:
                    b.start()
                self.wait_ready(timeout=ready_timeout)
            except BaseException:
                self.close(failed=True)
                raise

    # -- lifecycle

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close(failed=exc_type is not None)
        return False

    def close(self, failed=False):
        """Stops every broker by pid. On failure prints each broker log's tail
        and keeps the temp dir; a sanitizer report in any broker log fails
        the test."""
        if self._closed:
            return
        self._closed = True
        problems = []
        for b in self.brokers:
            b.check_crash()
            for pid, code in b.crashes:
                problems.append("broker %d (pid %d) died of signal %d" % (b.id, pid, -code))
            try:
                if b.alive():
                    b.stop(timeout=20)
            except AssertionError as e:
                problems.append(str(e))
            finally:
                if b.alive():
                    b.kill()
        if self._zk is not None:
            try:
                self._zk.stop()
                self._zk.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass
        reports = [(b.id, b.sanitizer_report()) for b in self.brokers]
        reports = [(i, r) for i, r in reports if r]
        if failed or problems or reports:
            self.print_logs()
            sys.stderr.write("vltava_test: kept %s\n" % self.tmpdir)
        elif not os.environ.get("VLTAVA_KEEP_TMP"):
            shutil.rmtree(self.tmpdir, ignore_errors=True)
        if not failed:
            if reports:
                raise AssertionError("sanitizer report in broker %d log:\n%s" % reports[0])
            if problems:
                raise AssertionError("; ".join(problems))

    def print_logs(self, lines=80):
        for b in self.brokers:
            sys.stderr.write("\n---- tail of broker %d log (%s) ----\n%s\n" % (b.id, b.logfile, tail(b.logfile, lines)))
        sys.stderr.flush()

    # -- brokers

    def broker(self, broker_id):
        for b in self.brokers:
            if b.id == broker_id:
                return b
        raise KeyError("no broker %d" % broker_id)

    @property
    def bootstrap(self):
        return ",".join("127.0.0.1:%d" % b.port for b in self.brokers)

    def live_bootstrap(self):
        return ",".join("127.0.0.1:%d" % b.port for b in self.brokers if b.alive() and not b.paused)

    def _serving_brokers(self):
        return [b for b in self.brokers if b.alive() and not b.paused]

    def wait_ready(self, timeout=90):
        """Every started broker answers ApiVersions and Metadata, and its
        Metadata lists every started broker."""
        expected = [b.id for b in self._serving_brokers()]
        for b in self._serving_brokers():
            b.wait_ready(timeout=timeout, expected_ids=expected)

    def controller_id(self, broker_id=None):
        """The controller id from Metadata (of broker_id, or any live one)."""
        candidates = [self.broker(broker_id)] if broker_id else self._serving_brokers()
        last = None
        for b in candidates:
            try:
                return raw_metadata(b.port, topics=[])["controller_id"]
            except (OSError, ValueError) as e:
                last = e
        raise AssertionError("no broker answered Metadata: %r" % (last,))

    def admin(self):
        from confluent_kafka.admin import AdminClient

        return AdminClient({"bootstrap.servers": self.live_bootstrap() or self.bootstrap})

    def metadata(self, timeout=10):
        """list_topics() through a confluent_kafka AdminClient, as a dict:
        {"cluster_id", "controller_id", "brokers": {id: (host, port)},
         "topics": {name: {"error": code or None,
                           "partitions": {p: {"leader", "replicas", "isr", "error"}}}}}"""
        admin = self.admin()
        md = admin.list_topics(timeout=timeout)
        topics = {}
        for name, t in md.topics.items():
            parts = {}
            for pid, p in t.partitions.items():
                parts[pid] = {"leader": p.leader, "replicas": list(p.replicas), "isr": list(p.isrs),
                              "error": p.error.code() if p.error is not None else None}
            topics[name] = {"error": t.error.code() if t.error is not None else None, "partitions": parts}
        return {"cluster_id": md.cluster_id, "controller_id": md.controller_id,
                "brokers": {i: (b.host, b.port) for i, b in md.brokers.items()}, "topics": topics}

    def create_topic(self, name, partitions=1, rf=1, config=None, timeout=60):
        """Creates the topic through a confluent_kafka AdminClient and waits
        until every live broker's Metadata shows a leader for every partition."""
        from confluent_kafka.admin import NewTopic

        topic = NewTopic(name, num_partitions=partitions, replication_factor=rf,
                         config={k: str(v) for k, v in (config or {}).items()})
        from confluent_kafka import KafkaError, KafkaException

        # NOT_CONTROLLER means the controller moved under us (an election
        # after a session expiry): like Kafka's own AdminClient, find the new
        # controller and try again, within the deadline. A fenced write
        # changed nothing, so the retry cannot find the topic half made.
        deadline = time.monotonic() + timeout
        while True:
            admin = self.admin()  # must outlive the future: destroying it fails the request
            futures = admin.create_topics([topic], operation_timeout=30, request_timeout=30)
            try:
                futures[name].result(timeout=max(1, deadline - time.monotonic()))
                break
            except KafkaException as e:
                if e.args[0].code() != KafkaError.NOT_CONTROLLER or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
            finally:
                del admin
        self.wait_topic_leaders(name, partitions, timeout=max(1, deadline - time.monotonic()))

    def wait_topic_leaders(self, name, partitions, timeout=60):
        def led_everywhere():
            for b in self._serving_brokers():
                t = raw_metadata(b.port, topics=[name], timeout=5)["topics"].get(name)
                if t is None or t["error"] != 0 or len(t["partitions"]) != partitions:
                    return False
                if any(p["leader"] < 0 for p in t["partitions"].values()):
                    return False
            return True

        wait_for(led_everywhere, timeout=timeout, what="every partition of %s to have a leader" % name)

    # -- ZooKeeper (under the cluster's chroot)

    def zk(self):
        """A kazoo client on the ZooKeeper root (not chrooted: the chroot may
        not exist yet); use zk_path() to name a node under the chroot."""
        if self._zk is None:
            self._zk = zk_client(self.zk_root)
        return self._zk

    def zk_path(self, path):
        return self.chroot if path in ("", "/") else self.chroot + "/" + path.lstrip("/")

    def zk_get(self, path):
        """The znode's data (bytes), or None when it does not exist."""
        from kazoo.exceptions import NoNodeError

        try:
            return self.zk().get(self.zk_path(path))[0]
        except NoNodeError:
            return None

    def zk_children(self, path):
        """Sorted child names, or None when the znode does not exist."""
        from kazoo.exceptions import NoNodeError

        try:
            return sorted(self.zk().get_children(self.zk_path(path)))
        except NoNodeError:
            return None

    def zk_stat(self, path):
        """kazoo ZnodeStat (version, czxid, ephemeralOwner, ...) or None."""
        return self.zk().exists(self.zk_path(path))


def _caller_test_name():
    """The running unittest method's name, for readable temp dirs."""
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_name
        if name.startswith("test") or name in ("setUp", "setUpClass"):
            return name
        frame = frame.f_back
    return "cluster"


def run_cli(*args, timeout=60, input=None, check=False, env=None):
    """Runs the vltava CLI; returns the CompletedProcess (text mode)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.run([cli_bin()] + [str(a) for a in args], input=input, capture_output=True,
                          text=True, timeout=timeout, env=full_env)
    if check and proc.returncode != 0:
        raise AssertionError("vltava %s exited %d:\n%s%s" % (" ".join(map(str, args)), proc.returncode,
                                                            proc.stdout, proc.stderr))
    return proc


# --------------------------------------------------------------------------
# Client programs


def program_bin(name):
    """A C client program built from tests/integration/<name>.c."""
    return _find_binary(["tests/integration/" + name], name)


def run_kcat(args, input=None, timeout=120, check=True):
    """Runs kcat (stdin from input bytes); returns the CompletedProcess."""
    proc = subprocess.run(["kcat"] + [str(a) for a in args], input=input if input is not None else b"",
                          capture_output=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError("kcat %s exited %d:\n%s" % (" ".join(map(str, args)), proc.returncode,
                                                          proc.stderr.decode("utf-8", "replace")[-4000:]))
    return proc


def kcat_consume(bootstrap, topic, count, partition=0, offset="beginning", timeout=180, extra=()):
    """Consumes exactly count messages with kcat -J (CRCs checked by
    librdkafka); returns the decoded JSON objects in order."""
    import json

    args = ["-C", "-b", bootstrap, "-t", topic, "-p", partition, "-o", offset, "-c", count, "-e", "-J",
            "-X", "check.crcs=true", "-X", "fetch.wait.max.ms=100"] + list(extra)
    proc = run_kcat(args, timeout=timeout)
    lines = [line for line in proc.stdout.split(b"\n") if line.strip()]
    return [json.loads(line) for line in lines]


def kcat_headers(message):
    """kcat -J headers as a list of (name, value) pairs."""
    h = message.get("headers") or []
    if h and not isinstance(h[0], (list, tuple, dict)):
        return list(zip(h[0::2], h[1::2]))
    if h and isinstance(h[0], dict):
        return [(k, v) for d in h for k, v in d.items()]
    return [tuple(x) for x in h]


# --------------------------------------------------------------------------
# Client scripts (tests/integration/clients/), each its own process.
#
# The harness runs in Debian's /usr/bin/python3 (kazoo, kafka-python 2.0.2,
# confluent_kafka 1.7). Current clients (confluent-kafka 2.x, kafka-python
# 3.x, aiokafka) are in the virtualenv deploy/install-deps.sh makes; a test
# runs them as scripts under that python. Each consumer is then its own
# process, which a test can stop (SIGSTOP), kill or restart.
#
# Protocol of a client script: every line it prints on stdout is one JSON
# object (an event; clients/child.py writes them, each with "ev" and "t", the
# wall-clock time); every line it reads on stdin is one JSON command. stderr
# goes to a log file.


def venv_python():
    """The client virtualenv's python (VLTAVA_VENV_PYTHON, set by ctest)."""
    path = (os.environ.get("VLTAVA_VENV_PYTHON")
            or os.path.join(os.environ.get("VLTAVA_VENV") or "/opt/vltava-venv", "bin", "python"))
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise AssertionError("no client virtualenv python at %s: run deploy/install-deps.sh" % path)
    return path


SYSTEM_PYTHON = "/usr/bin/python3"


def client_script(name):
    return os.path.join(HERE, "clients", name)


_client_counter = itertools.count(1)


class ClientProcess(_Pausable):
    """One client script as a child process, stdout read as JSON events by a
    thread. python=None runs it in the virtualenv; SYSTEM_PYTHON runs it with
    Debian's clients. logdir gets <name>.stderr.

        p = ClientProcess("ck_consumer.py", ["--group", "g", ...], logdir=tmp, name="c1")
        p.wait_event(lambda e: e["ev"] == "assignment" and len(e["partitions"]) == 4, 60)
    """

    def __init__(self, script, args=(), python=None, logdir=None, name=None, env=None):
        import threading

        self.name = name or "%s-%d" % (os.path.splitext(script)[0], next(_client_counter))
        self.logdir = logdir or tempfile.gettempdir()
        self.stderr_path = os.path.join(self.logdir, "%s.stderr" % self.name)
        self.stdout_path = os.path.join(self.logdir, "%s.stdout" % self.name)
        self.argv = [python or venv_python(), "-u", client_script(script)] + [str(a) for a in args]
        full_env = dict(os.environ)
        full_env.pop("PYTHONPATH", None)
        full_env.update(env or {})
        self._cond = threading.Condition()
        self._events = []
        self._eof = False
        self.paused = False
        self.ended_on_purpose = False  # stop() or kill(): its exit is no failure
        with open(self.stderr_path, "ab") as err:
            err.write(("==== harness: %s ====\n" % " ".join(self.argv)).encode())
            err.flush()
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                                         env=full_env, cwd=os.path.join(HERE, "clients"),
                                         preexec_fn=_die_with_parent)
        _live_processes.add(self.proc)
        self._reader = threading.Thread(target=self._read, name="client-%s" % self.name, daemon=True)
        self._reader.start()

    def _read(self):
        import json

        with open(self.stdout_path, "ab") as copy:
            for line in self.proc.stdout:
                copy.write(line)
                copy.flush()
                try:
                    event = json.loads(line)
                except ValueError:
                    event = {"ev": "garbage", "line": line.decode("utf-8", "replace")}
                with self._cond:
                    self._events.append(event)
                    self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def events(self, ev=None):
        """A copy of the events so far (those named ev)."""
        with self._cond:
            return [e for e in self._events if ev is None or e.get("ev") == ev]

    def last(self, ev):
        found = self.events(ev)
        return found[-1] if found else None

    def stderr_tail(self, lines=40):
        return tail(self.stderr_path, lines)

    def describe(self):
        return "client %s (pid %d, exit %s); stderr:\n%s" % (self.name, self.proc.pid, self.proc.poll(),
                                                           self.stderr_tail())

    def wait_event(self, predicate, timeout, what="event", start=0):
        """The first event (from index start on) for which predicate is true;
        AssertionError at the deadline or when the process exits without it.
        An event {"ev": "fatal"} from the script fails at once."""
        deadline = time.monotonic() + timeout
        with self._cond:
            i = start
            while True:
                while i < len(self._events):
                    e = self._events[i]
                    i += 1
                    if e.get("ev") == "fatal":
                        raise AssertionError("%s: fatal: %s\n%s" % (self.name, e, self.describe()))
                    if predicate(e):
                        return e
                if self._eof:
                    raise AssertionError("%s exited waiting for %s\n%s" % (self.name, what, self.describe()))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("timed out after %.1fs: %s waiting for %s\n%s"
                                         % (timeout, self.name, what, self.describe()))
                self._cond.wait(min(left, 0.5))

    def mark(self):
        """An index for wait_event(start=...): only events after now."""
        with self._cond:
            return len(self._events)

    def send(self, **command):
        import json

        self.proc.stdin.write((json.dumps(command) + "\n").encode())
        self.proc.stdin.flush()

    def request(self, timeout=60, **command):
        """For a script that answers commands (clients/ck_admin.py): sends
        command with a fresh "id" and returns its {"ev": "reply"} event."""
        command["id"] = rid = next(_client_counter)
        at = self.mark()
        self.send(**command)
        return self.wait_event(lambda e: e.get("ev") == "reply" and e.get("id") == rid, timeout,
                               what="the reply to %s" % (command,), start=at)

    def kill(self):
        self.ended_on_purpose = True
        _kill_now(self.proc)
        _reap(self.proc, 30)
        self._join_reader()
        return self.proc.returncode

    def _join_reader(self):
        """After the exit: the reader thread reads to EOF, then stdout closes."""
        self._reader.join(timeout=10)
        if not self._reader.is_alive():
            self.proc.stdout.close()

    def wait_exit(self, timeout):
        """The exit code; AssertionError (after killing it) past timeout."""
        code = _reap(self.proc, timeout)
        if code is None:
            self.kill()
            raise AssertionError("%s did not exit within %ss\n%s" % (self.name, timeout, self.describe()))
        self._join_reader()
        return code

    def stop(self, timeout=60, **command):
        """Sends command (default {"op": "stop"}), closes stdin and waits for
        a clean exit (code 0), which is asserted."""
        self.ended_on_purpose = True
        try:
            self.send(**(command or {"op": "stop"}))
            self.proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        code = self.wait_exit(timeout)
        if code != 0:
            raise AssertionError("%s exited %s\n%s" % (self.name, code, self.describe()))
        return code

    def close(self):
        """For cleanup: kills the process if it is still running."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        return self.kill()


def run_client(script, args=(), timeout=120, python=None, logdir=None, name=None, check=True, env=None):
    """Runs a client script to its end; returns its events (a list). The
    script's last event is normally {"ev": "result", ...}. check: a non-zero
    exit or a missing result fails."""
    p = ClientProcess(script, args, python=python, logdir=logdir, name=name, env=env)
    try:
        p.proc.stdin.close()
        code = p.wait_exit(timeout)
    finally:
        p.close()
    events = p.events()
    if check:
        if code != 0:
            raise AssertionError("%s exited %s\n%s" % (p.name, code, p.describe()))
        if not events or events[-1].get("ev") != "result":
            raise AssertionError("%s printed no result\n%s" % (p.name, p.describe()))
    return events


# --------------------------------------------------------------------------
# Consumer groups

# Broker config for group tests: __consumer_offsets replicated on all three
# brokers, no initial rebalance delay, and session timeouts allowed down to
# 1 s so a test can expire a member quickly.
GROUP_BROKER_CONFIG = {
    "offsets.topic.num.partitions": "10",
    "offsets.topic.replication.factor": "3",
    "group.initial.rebalance.delay.ms": "0",
    "group.min.session.timeout.ms": "1000",
}


def raw_find_coordinator(port, group, timeout=5):
    """FindCoordinator v0 for a group: (error, node_id, host, port)."""
    with KafkaConnection(port, timeout=timeout) as conn:
        r = Reader(conn.request(10, 0, Writer().string(group).bytes()))
    return r.i16(), r.i32(), r.string(), r.i32()


def group_coordinator(cluster, group, timeout=60):
    """The id of the broker that coordinates group, as some live broker's
    FindCoordinator answers once it answers without error."""

    def ask():
        for b in cluster._serving_brokers():
            try:
                err, node, _host, _port = raw_find_coordinator(b.port, group)
            except (OSError, ValueError):
                continue
            if err == 0 and node >= 0:
                return node
        return None

    return wait_for(ask, timeout=timeout, what="a coordinator for group %s" % group)


def test_failed(testcase):
    """In tearDown: whether the test method failed or errored (Python 3.11+
    unittest records it in the outcome)."""
    result = getattr(getattr(testcase, "_outcome", None), "result", None)
    if result is None:
        return False
    return any(test is testcase for test, _ in list(result.errors) + list(result.failures))


test_failed.__test__ = False


def topic_dirs(broker, topic):
    """The partition directories of topic in broker's data dir, sorted."""
    if not os.path.isdir(broker.datadir):
        return []
    return sorted(d for d in os.listdir(broker.datadir) if d.rsplit("-", 1)[0] == topic)


class SharedClusterTest(unittest.TestCase):
    """Base of a test class whose tests share one Cluster: its setUpClass
    sets cls.cluster. After the last test the cluster is closed, keeping its
    temp dir and printing the broker logs if any test of the class failed."""

    _failed = False

    @classmethod
    def tearDownClass(cls):
        cls.cluster.close(failed=cls._failed)

    def tearDown(self):
        if test_failed(self):
            type(self)._failed = True
