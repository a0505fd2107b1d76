"""Issue 3 §5, bad input straight on the socket, and ApiVersions (§3).

Every bad request gets either an error answer or a closed connection
(asserted per case), is logged once at WARN with the peer and the reason,
and a second connection does ApiVersions successfully while the bad one is
open and after it is gone. A restart with a bad configuration key fails
with exit code 2 and names the key. ApiVersions v0-v3 answer from the
dispatch table; v4 gets the KIP-511 answer; librdkafka (kcat) negotiates v3.
"""

import os
import random
import signal
import socket
import struct
import subprocess
import time
import unittest

import vltava_test as vt
from vltava_test import KafkaConnection, Reader, Writer

UNSUPPORTED_VERSION = 35
INVALID_REQUEST = 42
API_VERSIONS = 18
METADATA = 3
MAX_REQUEST_BYTES = 1048576


def frame(api_key, version, body=b"", correlation_id=1, client_id="bad-input", flexible=False):
    """A whole request frame (size included) with request header v1 (v2 when
    flexible)."""
    w = Writer().i16(api_key).i16(version).i32(correlation_id).string(client_id)
    if flexible:
        w.tags()
    data = w.bytes() + body
    return struct.pack(">i", len(data)) + data


def decode_api_versions(body, version):
    """(error, {key: (min, max)}, throttle) of an ApiVersions body; a v3+
    body uses compact arrays and tag sections. Fails on leftover bytes."""
    r = Reader(body)
    error = r.i16()
    flexible = version >= 3
    n = r.uvarint() - 1 if flexible else r.i32()
    keys = {}
    for _ in range(n):
        key, lo, hi = r.i16(), r.i16(), r.i16()
        if flexible:
            assert r.uvarint() == 0
        keys[key] = (lo, hi)
    throttle = r.i32() if version >= 1 else None
    if flexible:
        r.skip_tags()
    assert r.remaining() == 0, "%d bytes left in ApiVersions v%d" % (r.remaining(), version)
    return error, keys, throttle


def api_versions_v3_body(name, version):
    return Writer().compact_string(name).compact_string(version).tags().bytes()


class BadInputTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = vt.Cluster(brokers=1, name="bad_input",
                                 broker_config={"socket.request.max.bytes": MAX_REQUEST_BYTES})
        cls.broker = cls.cluster.brokers[0]
        cls.port = cls.broker.port

    @classmethod
    def tearDownClass(cls):
        cls.cluster.close()

    # -- helpers

    def connect(self):
        return KafkaConnection(self.port, timeout=10)

    def assert_serving(self, conn=None):
        """ApiVersions v0 works (on conn, or on a fresh connection)."""
        if conn is None:
            keys = vt.api_versions(self.port)
        else:
            error, keys, _ = decode_api_versions(conn.request(API_VERSIONS, 0), 0)
            self.assertEqual(error, 0)
        self.assertEqual(keys[API_VERSIONS], (0, 3))

    def assert_closed(self, conn, timeout=10):
        """The broker closes conn without sending anything."""
        conn.sock.settimeout(timeout)
        try:
            data = conn.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        self.assertEqual(data, b"", "expected a closed connection, got %r" % data[:64])

    def assert_nothing_yet(self, conn, seconds=0.3):
        conn.sock.settimeout(seconds)
        with self.assertRaises(socket.timeout):
            conn.sock.recv(1)

    def bad_case(self, data, reason=None, half_close=False, waits=True):
        """Sends data on a fresh connection while a second connection keeps
        working; expects the bad connection closed and, when reason is
        given, one WARN naming the peer and reason. half_close: the client
        then ends its side (after checking, when waits, that the broker is
        still waiting for the rest of the frame)."""
        other = self.connect()
        try:
            self.assert_serving(other)
            bad = self.connect()
            peer_port = bad.sock.getsockname()[1]
            bad.send_raw(data)
            self.assert_serving(other)  # during
            if half_close:
                if waits:
                    self.assert_nothing_yet(bad)
                    self.assert_serving(other)
                try:
                    bad.sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass  # already closed by the broker
            self.assert_closed(bad)
            bad.close()
            self.assert_serving(other)  # after, same connection
            self.assert_serving()  # after, a new connection
        finally:
            other.close()
        if reason is not None:
            peer = "127.0.0.1:%d" % peer_port

            def logged():
                lines = [ln for ln in self.broker.log_text().splitlines()
                         if "WARN" in ln and peer + ":" in ln]
                return lines

            lines = vt.wait_for(logged, timeout=5, what="a WARN line for %s" % peer)
            self.assertEqual(len(lines), 1, lines)
            self.assertIn(reason, lines[0])

    # -- bad frames

    def test_truncated_frame(self):
        whole = frame(METADATA, 1, Writer().array([], None).bytes())
        self.bad_case(whole[:-2], half_close=True)
        # The header itself cut short inside a complete frame.
        self.bad_case(struct.pack(">i", 10) + b"\x00\x03\x00\x01\x00\x00\x00\x01\x00\x09",
                      reason="bad request header")

    def test_frame_over_size_limit(self):
        # Refused from the size field alone: no body byte is ever sent.
        self.bad_case(struct.pack(">i", MAX_REQUEST_BYTES + 1), reason="frame size %d" % (MAX_REQUEST_BYTES + 1))
        self.bad_case(struct.pack(">i", 0x7FFFFFFF), reason="frame size 2147483647")
        self.bad_case(struct.pack(">i", -1), reason="frame size -1")
        self.bad_case(struct.pack(">i", 3) + b"abc", reason="frame size 3")
        # Exactly at the limit is accepted (ApiVersions v0 ignores its body).
        with self.connect() as conn:
            pad = MAX_REQUEST_BYTES - len(frame(API_VERSIONS, 0)) + 4
            conn.send_raw(frame(API_VERSIONS, 0, b"\x00" * pad))
            error, keys, _ = decode_api_versions(conn.recv(expect_cid=1)[1], 0)
            self.assertEqual(error, 0)

    def test_length_past_end_of_frame(self):
        # Metadata v1: one topic whose name claims 1000 bytes; 3 follow.
        body = struct.pack(">i", 1) + struct.pack(">h", 1000) + b"abc"
        self.bad_case(frame(METADATA, 1, body), reason="api_key 3 version 1")
        # An array count far beyond the bytes in the frame.
        body = struct.pack(">i", 0x7FFFFFFF) + b"\x00\x01a"
        self.bad_case(frame(METADATA, 1, body), reason="api_key 3 version 1")
        # A client id longer than the frame.
        data = Writer().i16(METADATA).i16(1).i32(1).i16(500).raw(b"x" * 10).bytes()
        self.bad_case(struct.pack(">i", len(data)) + data, reason="bad request header")
        # A flexible header whose tag section runs past the end.
        data = Writer().i16(API_VERSIONS).i16(3).i32(1).string("c").uvarint(1).uvarint(0).uvarint(50).bytes()
        self.bad_case(struct.pack(">i", len(data)) + data, reason="api_key 18 version 3")

    def test_unknown_api_key(self):
        self.bad_case(frame(999, 0), reason="api_key 999 version 0: unknown API key")
        self.bad_case(frame(-5, 0), reason="api_key -5 version 0: unknown API key")
        # A real Kafka API this broker does not implement (SaslHandshake).
        self.bad_case(frame(17, 1, Writer().string("PLAIN").bytes()), reason="api_key 17")

    def test_unsupported_version(self):
        self.bad_case(frame(METADATA, 99, b""), reason="api_key 3 version 99: unsupported version")
        self.bad_case(frame(METADATA, -1, b""), reason="api_key 3 version -1: unsupported version")

    def test_random_bytes(self):
        rng = random.Random(20261121)
        for _ in range(20):
            data = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 2048)))
            self.bad_case(data, half_close=True, waits=False)
        # Random bytes behind a plausible size: garbage headers and bodies.
        for _ in range(20):
            body = bytes(rng.getrandbits(8) for _ in range(rng.randint(10, 512)))
            self.bad_case(struct.pack(">i", len(body)) + body, half_close=True, waits=False)

    def test_pipelined_good_then_bad(self):
        """Requests before the bad one are answered, in order; then the
        connection closes."""
        with self.connect() as conn:
            data = frame(API_VERSIONS, 0, correlation_id=1) + frame(API_VERSIONS, 1, correlation_id=2)
            data += frame(999, 0, correlation_id=3) + frame(API_VERSIONS, 0, correlation_id=4)
            conn.send_raw(data)
            self.assertEqual(decode_api_versions(conn.recv(expect_cid=1)[1], 0)[0], 0)
            self.assertEqual(decode_api_versions(conn.recv(expect_cid=2)[1], 1)[0], 0)
            self.assert_closed(conn)
        self.assert_serving()

    # -- ApiVersions

    def test_api_versions_v0_to_v3(self):
        with self.connect() as conn:
            tables = []
            for version in range(3):
                error, keys, throttle = decode_api_versions(conn.request(API_VERSIONS, version), version)
                self.assertEqual(error, 0)
                self.assertEqual(throttle, None if version == 0 else 0)
                tables.append(keys)
            body = api_versions_v3_body("vltava-test", "1.0.0")
            error, keys, throttle = decode_api_versions(
                conn.request(API_VERSIONS, 3, body, flexible=True), 3)
            self.assertEqual(error, 0)
            self.assertEqual(throttle, 0)
            tables.append(keys)
        for keys in tables:
            self.assertEqual(keys, tables[0])
        keys = tables[0]
        self.assertEqual(keys[API_VERSIONS], (0, 3))
        # What real clients need (reference §8): Produce from 0, Fetch covering 4.
        self.assertIn(METADATA, keys)
        self.assertEqual(keys[0][0], 0)
        self.assertTrue(keys[1][0] <= 4 <= keys[1][1])
        self.assertNotIn(17, keys)

    def test_api_versions_v4_gets_kip511_answer(self):
        with self.connect() as conn:
            # The body of a version the broker does not know is not parsed.
            body = api_versions_v3_body("future-client", "9.9") + b"\x01\x02\x03"
            cid = conn.send(API_VERSIONS, 4, body, flexible=True)
            _, answer = conn.recv(expect_cid=cid, flexible=False)  # header v0
            error, keys, throttle = decode_api_versions(answer, 0)  # body v0
            self.assertEqual(error, UNSUPPORTED_VERSION)
            self.assertEqual(keys, {API_VERSIONS: (0, 3)})
            # The connection stays usable: the client retries with v3.
            body = api_versions_v3_body("future-client", "9.9")
            error, keys, _ = decode_api_versions(conn.request(API_VERSIONS, 3, body, flexible=True), 3)
            self.assertEqual(error, 0)
            self.assertIn(METADATA, keys)

    def test_api_versions_v3_invalid_client_software(self):
        with self.connect() as conn:
            for name, version in (("bad name", "1.0"), ("-lead", "1.0"), ("ok", "trail."), ("", "1")):
                body = api_versions_v3_body(name, version)
                error, keys, _ = decode_api_versions(conn.request(API_VERSIONS, 3, body, flexible=True), 3)
                self.assertEqual(error, INVALID_REQUEST, (name, version))
                self.assertEqual(keys, {})
            # The rule accepts dots and dashes inside.
            body = api_versions_v3_body("librdkafka", "2.0.2-RC1.x")
            error, _, _ = decode_api_versions(conn.request(API_VERSIONS, 3, body, flexible=True), 3)
            self.assertEqual(error, 0)
        self.assert_serving()

    def test_kcat_negotiates_api_versions_v3(self):
        out = subprocess.run(["kcat", "-b", "127.0.0.1:%d" % self.port, "-L", "-d", "protocol",
                              "-m", "10"], capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr[-2000:])
        self.assertIn("broker 1 at 127.0.0.1:%d" % self.port, out.stdout)
        # librdkafka sends ApiVersions v3 and gets a v3 answer, no fallback.
        self.assertRegex(out.stderr, r"Sent ApiVersionRequest \(v3")
        self.assertRegex(out.stderr, r"Received ApiVersionResponse \(v3")
        self.assertNotIn("retrying", out.stderr.lower())


class GracefulStopTest(unittest.TestCase):
    """SIGTERM/SIGINT: the listener closes at once, requests in flight are
    still answered, the logs get their clean-shutdown marker, the broker
    leaves ZooKeeper, and the exit code is 0."""

    def fetch_body(self, topic, max_wait_ms):
        return (Writer().i32(-1).i32(max_wait_ms).i32(1).i32(1 << 20).i8(0)
                .array([topic], lambda w, t: w.string(t).array(
                    [0], lambda w2, p: w2.i32(p).i64(0).i32(1 << 20)))
                .bytes())

    def stop_with_request_in_flight(self, sig):
        with vt.Cluster(brokers=1, name="graceful_stop") as c:
            b = c.brokers[0]
            c.create_topic("parked", partitions=1, rf=1)
            self.assertIsNotNone(c.zk_get("/brokers/ids/1"))
            conn = KafkaConnection(b.port, timeout=30)
            # An empty long poll: it waits 1.5 s in the broker.
            cid = conn.send(1, 4, self.fetch_body("parked", 1500))
            idle = KafkaConnection(b.port, timeout=30)
            self.assert_version_ok(idle)
            time.sleep(0.3)  # the fetch is parked by now (it waits 1.5 s)
            started = time.monotonic()
            b.proc.send_signal(sig)
            # New connections are refused while the fetch is still waiting.
            vt.wait_for(lambda: self.refused(b.port), timeout=5, what="the listener to close")
            # The idle connection is closed without an answer.
            idle.sock.settimeout(5)
            self.assertEqual(idle.sock.recv(1), b"")
            # The fetch in flight is answered, then its connection closes.
            got_cid, body = conn.recv()
            self.assertEqual(got_cid, cid)
            r = Reader(body)
            r.i32()  # throttle
            self.assertEqual(r.i32(), 1)
            self.assertEqual(r.string(), "parked")
            self.assertEqual(r.i32(), 1)
            self.assertEqual((r.i32(), r.i16()), (0, 0))
            self.assertEqual(conn.recv_frame(), None)
            conn.close()
            idle.close()
            code = vt.wait_for(lambda: b.proc.poll() is not None and b.proc.returncode is not None,
                               timeout=20, what="the broker to exit")
            self.assertTrue(code)
            self.assertEqual(b.stop(), 0)
            self.assertGreater(time.monotonic() - started, 0.5)
            self.assertTrue(os.path.exists(os.path.join(b.datadir, ".kafka_cleanshutdown")))
            self.assertIsNone(c.zk_get("/brokers/ids/1"))
            self.assertIn("stopped cleanly", b.log_text())

    @staticmethod
    def refused(port):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except ConnectionRefusedError:
            return True
        return False

    @staticmethod
    def assert_version_ok(conn):
        error, _, _ = decode_api_versions(conn.request(API_VERSIONS, 0), 0)
        assert error == 0

    def test_sigterm(self):
        self.stop_with_request_in_flight(signal.SIGTERM)

    def test_sigint(self):
        self.stop_with_request_in_flight(signal.SIGINT)


class BadConfigRestartTest(unittest.TestCase):
    def test_bad_config_key_on_restart(self):
        with vt.Cluster(brokers=1, name="bad_config") as cluster:
            b = cluster.brokers[0]
            self.assertEqual(b.stop(), 0)
            cases = [
                ({"no.such.setting": "1"}, "config: no.such.setting: unknown configuration key"),
                ({"socket.request.max.bytes": "lots"},
                 "config: socket.request.max.bytes: invalid value 'lots'"),
                ({"log.dirs": b.datadir + "," + b.datadir + "-2"},
                 "config: log.dirs: only one log directory is supported"),
                ({"listeners": "SSL://127.0.0.1:%d" % b.port},
                 "config: listener.security.protocol.map: listener SSL uses SSL; only PLAINTEXT is supported"),
                # Refused at load, naming the key, not at bind after registering.
                ({"replication.listener": "127.0.0.1:%d" % b.port},
                 "config: replication.listener: port %d is also the port of listener PLAINTEXT" % b.port),
            ]
            good = dict(b.config)
            for extra, message in cases:
                b.config = dict(good, **extra)
                before = len(b.log_text())
                b.start()
                vt.wait_for(lambda: not b.alive(), timeout=30, what="the broker to refuse its config")
                self.assertEqual(b.stop(), 2)
                self.assertIn(message, b.log_text()[before:])
                self.assertIsNone(cluster.zk_get("/brokers/ids/%d" % b.id))
            # A flag names a bad key the same way.
            b.config = good
            before = len(b.log_text())
            b.start(args=["--no.such.flag=1"])
            vt.wait_for(lambda: not b.alive(), timeout=30, what="the broker to refuse its flag")
            self.assertEqual(b.stop(), 2)
            self.assertIn("config: no.such.flag: unknown configuration key", b.log_text()[before:])
            # With the configuration fixed it starts and serves again.
            b.start()
            b.wait_ready()

    def test_second_broker_on_a_locked_log_dir_is_refused(self):
        # Two brokers on one log directory would both recover and write it:
        # the second exits at once, naming the directory and the holder.
        with vt.Cluster(brokers=1, name="dir_lock") as cluster:
            b = cluster.brokers[0]
            config = os.path.join(cluster.tmpdir, "second.properties")
            with open(config, "w") as f:
                for key, value in dict(b.config, **{
                        "broker.id": "2",
                        "listeners": "PLAINTEXT://127.0.0.1:%d" % vt.free_port(),
                        "replication.listener": "127.0.0.1:%d" % vt.free_port()}).items():
                    f.write("%s=%s\n" % (key, value))
            out = subprocess.run([vt.broker_bin(), "--config", config], capture_output=True,
                                 text=True, timeout=60)
            self.assertEqual(out.returncode, 1, out.stderr)
            self.assertIn("log directory %s is in use by another process (pid %d" % (b.datadir, b.pid),
                          out.stderr)
            self.assertIsNone(cluster.zk_get("/brokers/ids/2"))
            # The first broker was not disturbed.
            b.wait_ready()
            self.assertTrue(b.alive())

    def test_help_lists_options(self):
        out = subprocess.run([vt.broker_bin(), "--help"], capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0)
        for key in ("broker.id", "listeners", "zookeeper.connect", "log.dirs",
                    "socket.request.max.bytes", "queued.max.requests", "log.segment.bytes"):
            self.assertIn("--" + key, out.stdout)
        self.assertIn("[104857600]", out.stdout)


if __name__ == "__main__":
    unittest.main()
