"""The Prometheus endpoint (metrics.listener) and `vltava cluster health`
against real brokers (issue 9 part 5).

Every scrape is parsed by an independent reader of the text exposition
format 0.0.4 (HELP and TYPE before a family's samples, names, escapes,
values, no series twice, histogram buckets cumulative with +Inf equal to
_count). MetricsClusterTest (three brokers, each with a metrics listener on
a free port) checks that the values move: bytes and records in and out per
topic, requests and the latency histogram by API, log sizes, connections,
consumer group lag; then kills a broker and sees under-replicated
partitions on the survivors and `vltava cluster health` exit 9 with the
reasons, and restarts it until health is back to 0. MetricsBadInputTest
abuses the endpoint (404, 405, 413, oversized headers, a request that
stalls halfway, many connections) and checks that it stays bounded and
that the Kafka listener answers meanwhile.
"""

import http.client
import json
import math
import os
import re
import socket
import subprocess
import time
import unittest

import group_helpers
import vltava_test as vt

EXIT_OK, EXIT_UNREACHABLE, EXIT_UNHEALTHY = 0, 3, 9
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# broker/metrics/metrics.h
IDLE_TIMEOUT_S = 5
CONNECTION_LIMIT = 32
CONNECTIONS_PER_IP = 8

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"'
_SAMPLE = re.compile(r"^(%s)(?:\{(%s(?:,%s)*)?\})? (\S+)$" % (_NAME, _LABEL, _LABEL))
_HELP = re.compile(r"^# HELP (%s) (.*)$" % _NAME)
_TYPE = re.compile(r"^# TYPE (%s) (counter|gauge|histogram)$" % _NAME)


def _unescape(value):
    return re.sub(r"\\([\\\"n])", lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def parse_exposition(text):
    """{(name, ((label, value), ...)): float} of a scrape, after checking it
    against the format; raises AssertionError naming the first bad line."""
    samples = {}
    types = {}
    family = typed = None
    assert text.endswith("\n"), "the exposition must end with a line feed"
    for lineno, line in enumerate(text[:-1].split("\n"), 1):
        m = _HELP.match(line)
        if m:
            family, typed = m.group(1), None
            assert family not in types, "line %d: family %s twice" % (lineno, family)
            continue
        m = _TYPE.match(line)
        if m:
            assert m.group(1) == family, "line %d: TYPE without its HELP: %r" % (lineno, line)
            typed = m.group(2)
            types[family] = typed
            continue
        m = _SAMPLE.match(line)
        assert m, "line %d: not a sample: %r" % (lineno, line)
        name = m.group(1)
        assert typed is not None, "line %d: a sample before its family's TYPE" % lineno
        allowed = {family}
        if typed == "histogram":
            allowed = {family + "_bucket", family + "_sum", family + "_count"}
        assert name in allowed, "line %d: %s outside family %s" % (lineno, name, family)
        labels = tuple(sorted((k, _unescape(v)) for k, v in re.findall(_LABEL, m.group(2) or "")))
        raw = m.group(m.lastindex)
        value = float(raw.replace("+Inf", "inf").replace("-Inf", "-inf"))
        key = (name, labels)
        assert key not in samples, "line %d: series twice: %r" % (lineno, line)
        samples[key] = value
    _check_histograms(samples, types)
    return samples


def _check_histograms(samples, types):
    for family, kind in types.items():
        if kind != "histogram":
            continue
        series = {}
        for (name, labels), value in samples.items():
            if name == family + "_bucket":
                rest = tuple(l for l in labels if l[0] != "le")
                le = dict(labels)["le"]
                series.setdefault(rest, []).append((math.inf if le == "+Inf" else float(le), value))
        for rest, buckets in series.items():
            buckets.sort()
            counts = [v for _, v in buckets]
            assert counts == sorted(counts), "%s%r: buckets not cumulative" % (family, rest)
            assert buckets[-1][0] == math.inf, "%s%r: no +Inf bucket" % (family, rest)
            assert samples[(family + "_count", rest)] == counts[-1], "%s%r: +Inf != _count" % (family, rest)
            assert (family + "_sum", rest) in samples, "%s%r: no _sum" % (family, rest)


def http_get(port, path="/metrics", method="GET", headers=None, body=None, timeout=10):
    """(status, headers dict with lower-case names, body text)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read().decode("utf-8")
    finally:
        conn.close()


def scrape(port):
    status, headers, text = http_get(port)
    assert status == 200, "scrape of port %d: HTTP %d" % (port, status)
    assert headers.get("content-type") == CONTENT_TYPE, headers
    return parse_exposition(text)


def value(samples, name, **labels):
    """One series' value, 0 when absent."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples, name, **labels):
    """The sum over every series of name whose labels include these."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


def metrics_config(_broker_id):
    return {"metrics.listener": "127.0.0.1:%d" % vt.free_port(), "group.initial.rebalance.delay.ms": "0"}


def metrics_port(broker):
    return int(broker.config["metrics.listener"].rsplit(":", 1)[1])


class MetricsClusterTest(vt.SharedClusterTest):
    @classmethod
    def setUpClass(cls):
        cls.cluster = vt.Cluster(brokers=3, broker_config=metrics_config)

    def scrape_all(self, only=None):
        return {b.id: scrape(metrics_port(b)) for b in self.cluster.brokers
                if b.alive() and (only is None or b.id in only)}

    def cluster_sum(self, scrapes, name, **labels):
        return sum(total(s, name, **labels) for s in scrapes.values())

    def health(self, *extra):
        return vt.run_cli("-b", self.cluster.live_bootstrap(), "--format", "json", "--timeout", "10",
                          "cluster", "health", *extra)

    def test_1_cluster_gauges(self):
        scrapes = self.scrape_all()
        self.assertEqual(self.cluster_sum(scrapes, "vltava_active_controller"), 1)
        controller = self.cluster.controller_id()
        for broker_id, s in scrapes.items():
            self.assertEqual(value(s, "vltava_active_controller"), 1 if broker_id == controller else 0)
            self.assertEqual(value(s, "vltava_controller_id"), controller)
            self.assertEqual(value(s, "vltava_live_brokers"), 3)
            self.assertEqual(value(s, "vltava_zookeeper_session_state", state="connected"), 1)
            self.assertEqual(total(s, "vltava_zookeeper_session_state"), 1)
            self.assertEqual(value(s, "vltava_offline_partitions"), 0)
            self.assertEqual(value(s, "vltava_under_replicated_partitions"), 0)
        # An open Kafka connection shows, on the broker it is open to.
        b = self.cluster.broker(2)
        with vt.KafkaConnection(b.port) as conn:
            conn.request(18, 0)
            vt.wait_for(lambda: value(scrape(metrics_port(b)), "vltava_connections") >= 1, timeout=15,
                        what="an open connection in vltava_connections")

    def test_2_counters_move(self):
        topic, n = "moving", 60
        self.cluster.create_topic(topic, partitions=3, rf=3)
        before = self.scrape_all()
        values = group_helpers.produce(self.cluster.bootstrap, topic, "v", 0, n, 3)
        consumed = vt.run_cli("-b", self.cluster.bootstrap, "consume", topic, "-o", "beginning", "-n", n,
                              timeout=120, check=True)
        self.assertEqual(sorted(consumed.stdout.split()), sorted(values))

        def moved():
            after = self.scrape_all()
            got = {name: self.cluster_sum(after, name, topic=topic) - self.cluster_sum(before, name, topic=topic)
                   for name in ("vltava_topic_records_in_total", "vltava_topic_bytes_in_total",
                                "vltava_topic_records_out_total", "vltava_topic_bytes_out_total")}
            ok = (got["vltava_topic_records_in_total"] == n and got["vltava_topic_bytes_in_total"] > 0
                  and got["vltava_topic_records_out_total"] >= n and got["vltava_topic_bytes_out_total"] > 0)
            return (after, got) if ok else None

        after, got = vt.wait_for(moved, timeout=30, what="per-topic counters to move")
        # Everything that came in went out at least once, by bytes too.
        self.assertGreaterEqual(got["vltava_topic_bytes_out_total"], got["vltava_topic_bytes_in_total"])
        for api in ("Produce", "Fetch", "Metadata"):
            grew = (self.cluster_sum(after, "vltava_requests_total", api=api)
                    - self.cluster_sum(before, "vltava_requests_total", api=api))
            self.assertGreater(grew, 0, api)
            count = "vltava_request_duration_seconds_count"
            self.assertGreater(self.cluster_sum(after, count, api=api) - self.cluster_sum(before, count, api=api), 0,
                               api)
        # Three replicas of each partition: every broker holds log bytes.
        for broker_id, s in after.items():
            self.assertGreater(value(s, "vltava_log_size_bytes", topic=topic), 0, broker_id)

        # Each partition of the cluster has one leader among the brokers.
        def leaders_match():
            partitions = sum(len(t["partitions"]) for t in self.cluster.metadata()["topics"].values())
            leaders = self.cluster_sum(self.scrape_all(), "vltava_partitions", role="leader")
            return partitions == leaders and partitions >= 3

        vt.wait_for(leaders_match, timeout=30, what="vltava_partitions leaders to match the metadata")

    def test_3_group_lag(self):
        topic, group = "lagging", "lag-group"
        self.cluster.create_topic(topic, partitions=1, rf=3)
        group_helpers.produce(self.cluster.bootstrap, topic, "x", 0, 10, 1)
        # Commits the offsets of the 4 records it prints: 6 are left.
        vt.run_cli("-b", self.cluster.bootstrap, "consume", topic, "-g", group, "-n", 4, "-o", "beginning",
                   timeout=120, check=True)
        series = ("vltava_consumer_group_lag", (("group", group), ("topic", topic)))

        def lag_is(expected):
            scrapes = self.scrape_all()
            return scrapes if sum(s.get(series, 0) for s in scrapes.values()) == expected else None

        vt.wait_for(lambda: lag_is(6), timeout=30, what="a lag of 6 for %s" % group)
        group_helpers.produce(self.cluster.bootstrap, topic, "y", 10, 5, 1)
        scrapes = vt.wait_for(lambda: lag_is(11), timeout=30, what="the lag to grow to 11")
        # Reported by the group's coordinator alone.
        reporting = [broker_id for broker_id, s in scrapes.items() if series in s]
        self.assertEqual(reporting, [vt.group_coordinator(self.cluster, group)])

    def test_4_broker_down_and_back(self):
        topic = "replicated"
        self.cluster.create_topic(topic, partitions=3, rf=3)
        self.assertExitHealthy()
        expands_before = self.cluster_sum(self.scrape_all(), "vltava_isr_expands_total")
        victim = self.cluster.broker(3)
        victim.kill()
        survivors = [1, 2]
        vt.wait_for(lambda: self.cluster_sum(self.scrape_all(survivors), "vltava_under_replicated_partitions") > 0,
                    timeout=60, what="under-replicated partitions on the survivors")
        # The survivors drop broker 3 from the ISR of the partitions they
        # lead (those it led get a new leader and a smaller ISR from the
        # controller instead, which may come first).
        vt.wait_for(lambda: self.cluster_sum(self.scrape_all(survivors), "vltava_isr_shrinks_total") > 0,
                    timeout=60, what="an ISR shrink on the survivors")
        vt.wait_for(lambda: all(value(s, "vltava_live_brokers") == 2 for s in self.scrape_all(survivors).values()),
                    timeout=30, what="both survivors to count two live brokers")

        def unhealthy():
            proc = self.health()
            return proc if proc.returncode == EXIT_UNHEALTHY else None

        proc = vt.wait_for(unhealthy, timeout=60, what="cluster health to report the broker down")
        verdict = json.loads(proc.stdout)
        self.assertFalse(verdict["healthy"])
        self.assertIn("nodes_down", verdict["unhealthy_reasons"])
        self.assertIn("under_replicated_partitions", verdict["unhealthy_reasons"])
        self.assertEqual(verdict["brokers_down"], [3])
        text = vt.run_cli("-b", self.cluster.live_bootstrap(), "cluster", "health")
        self.assertEqual(text.returncode, EXIT_UNHEALTHY, text.stderr)
        self.assertRegex(text.stdout, r"HEALTHY\s+no")
        self.assertRegex(text.stdout, r"BROKERS DOWN\s+3")

        victim.start()
        victim.wait_ready(timeout=90, expected_ids=[1, 2, 3])
        vt.wait_for(lambda: self.health().returncode == EXIT_OK, timeout=120, what="cluster health back to 0")
        # A scrape may reuse a rendering of the last quarter second: poll.
        vt.wait_for(lambda: self.cluster_sum(self.scrape_all(), "vltava_under_replicated_partitions") == 0,
                    timeout=30, what="no under-replicated partitions")
        self.assertGreater(self.cluster_sum(self.scrape_all(), "vltava_isr_expands_total"), expands_before)

    def assertExitHealthy(self):
        def healthy():
            proc = self.health()
            return proc if proc.returncode == EXIT_OK else None

        proc = vt.wait_for(healthy, timeout=60, what="a healthy cluster")
        self.assertTrue(json.loads(proc.stdout)["healthy"])


class MetricsBadInputTest(vt.SharedClusterTest):
    @classmethod
    def setUpClass(cls):
        cls.cluster = vt.Cluster(brokers=1, broker_config=metrics_config)
        cls.broker = cls.cluster.broker(1)
        cls.port = metrics_port(cls.broker)

    def kafka_answers(self):
        """ApiVersions on the Kafka listener answers within 5 s."""
        versions = vt.api_versions(self.broker.port, timeout=5)
        self.assertIn(18, versions)

    def raw(self, data, timeout=10):
        """Sends data on a fresh connection; returns all it gets back before
        the server closes it (or the timeout)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            s.sendall(data)
            chunks = []
            try:
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    chunks.append(chunk)
            except (socket.timeout, ConnectionResetError):
                pass
            return b"".join(chunks)

    def test_get_and_head(self):
        status, headers, body = http_get(self.port)
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], CONTENT_TYPE)
        parse_exposition(body)
        status, headers, body = http_get(self.port, path="/metrics?name[]=x")  # a query changes nothing
        self.assertEqual(status, 200)
        status, headers, body = http_get(self.port, method="HEAD")
        self.assertEqual((status, body), (200, ""))

    def test_unknown_path_and_method(self):
        for path in ("/", "/metric", "/metrics/", "/favicon.ico"):
            self.assertEqual(http_get(self.port, path=path)[0], 404, path)
        for method in ("POST", "PUT", "DELETE", "OPTIONS", "BREW"):
            status, headers, _ = http_get(self.port, method=method)
            self.assertEqual(status, 405, method)
            self.assertEqual(headers.get("allow"), "GET, HEAD")

    def test_body_refused(self):
        # A body announced on a GET: 413 before any of it is read, then closed.
        answer = self.raw(b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n" + b"a" * 1000)
        self.assertTrue(answer.startswith(b"HTTP/1.1 413 "), answer[:200])
        answer = self.raw(b"GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        self.assertTrue(answer.startswith(b"HTTP/1.1 413 "), answer[:200])
        self.kafka_answers()

    def test_oversized_request(self):
        # A request line or headers beyond the 16 KiB request memory: MHD's
        # error status, then the connection closes; never a scrape.
        for data, status in ((b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n", 431),
                             (b"GET /metrics?" + b"q" * 40000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414)):
            answer = self.raw(data)
            self.assertTrue(answer.startswith(b"HTTP/1.1 %d " % status), answer[:200])
            self.assertNotIn(b"vltava_", answer)
        self.assertEqual(http_get(self.port)[0], 200)
        self.kafka_answers()

    def test_stalled_request_is_closed(self):
        # Half a request, then nothing: closed after the idle timeout while
        # the Kafka listener keeps answering.
        s = socket.create_connection(("127.0.0.1", self.port), timeout=IDLE_TIMEOUT_S + 20)
        try:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            started = time.monotonic()
            self.kafka_answers()
            self.assertEqual(http_get(self.port)[0], 200)  # others are served meanwhile
            try:
                data = s.recv(4096)
            except ConnectionResetError:
                data = b""
            waited = time.monotonic() - started
            # Closed without an answer, by the idle timeout (not earlier).
            self.assertEqual(data, b"")
            self.assertGreaterEqual(waited, IDLE_TIMEOUT_S - 1)
            self.assertLess(waited, IDLE_TIMEOUT_S + 20)
        finally:
            s.close()

    def test_many_connections(self):
        # Far beyond the connection limit: the extra ones are refused or
        # closed, Kafka answers meanwhile, and once they are gone a scrape
        # works again.
        socks = []
        try:
            for _ in range(CONNECTION_LIMIT * 4):
                try:
                    socks.append(socket.create_connection(("127.0.0.1", self.port), timeout=5))
                except OSError:
                    break
            for s in socks[:CONNECTION_LIMIT]:
                try:
                    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # and stall
                except OSError:
                    pass  # closed: beyond the per-address limit
            self.kafka_answers()
        finally:
            for s in socks:
                s.close()
        self.wait_until_address_free()
        self.kafka_answers()

    def closed_without_answer(self, api_key, version, body):
        with vt.KafkaConnection(self.broker.port) as conn:
            conn.send(api_key, version, body)
            try:
                self.assertIsNone(conn.recv_frame())
            except ConnectionResetError:
                pass

    def test_connections_per_address(self):
        # One address stalls its whole allowance: one more from it is closed
        # without an answer, while another address still gets its scrape.
        socks = []
        try:
            for _ in range(CONNECTIONS_PER_IP):
                s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # and stall
                socks.append(s)
            with socket.create_connection(("127.0.0.1", self.port), timeout=10) as extra:
                try:
                    extra.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
                    self.assertEqual(extra.recv(4096), b"")
                except ConnectionResetError:
                    pass
            with socket.socket() as other:
                other.settimeout(10)
                other.bind(("127.0.0.2", 0))
                other.connect(("127.0.0.1", self.port))
                other.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
                answer = b""
                while True:
                    chunk = other.recv(65536)
                    if not chunk:
                        break
                    answer += chunk
                self.assertTrue(answer.startswith(b"HTTP/1.0 200") or answer.startswith(b"HTTP/1.1 200"),
                                answer[:80])
        finally:
            for s in socks:
                s.close()
        self.wait_until_address_free()

    def wait_until_address_free(self):
        # The broker notices the closes on its next wakeup: until then they
        # still count against 127.0.0.1's allowance, and the next test's
        # scrape would be closed. Wait for a scrape to get through.
        vt.wait_for(lambda: http_get(self.port, timeout=3)[0] == 200, timeout=30,
                    what="the stalled connections to be released")

    def test_errors_by_api(self):
        before = scrape(self.port)
        # Heartbeat v0 of a member of a group nobody knows: an error answer.
        body = vt.Writer().string("no-such-group").i32(1).string("no-such-member").bytes()
        with vt.KafkaConnection(self.broker.port) as conn:
            code = vt.Reader(conn.request(12, 0, body)).i16()
        self.assertNotEqual(code, 0)
        self.closed_without_answer(0, 99, b"")  # Produce v99
        self.closed_without_answer(3, 1, b"\x00\x00\x00\x05")  # Metadata: 5 topics, none there

        def grew(api, error=None):
            def sum_of(samples):
                return sum(v for (n, ls), v in samples.items() if n == "vltava_request_errors_total"
                           and dict(ls)["api"] == api and error in (None, dict(ls)["error"]))
            return sum_of(scrape(self.port)) - sum_of(before)

        vt.wait_for(lambda: (grew("Heartbeat"), grew("Produce", "UNSUPPORTED_VERSION"),
                             grew("Metadata", "INVALID_REQUEST")) == (1, 1, 1),
                    timeout=10, what="one error each for Heartbeat, Produce and Metadata")

    def test_every_family_documented(self):
        # The broker's --help and README list exactly the families a scrape
        # shows.
        _, _, text = http_get(self.port)
        parse_exposition(text)
        typed = set(re.findall(r"(?m)^# TYPE (\S+) ", text))
        self.assertIn("vltava_consumer_group_lag", typed)
        usage = subprocess.run([vt.broker_bin(), "--help"], capture_output=True, text=True, check=True).stdout
        helped = set(re.findall(r"vltava_[a-z_]+", usage))
        self.assertEqual(helped, typed)
        with open(os.path.join(vt.HERE, "..", "..", "README.md")) as f:
            readme = f.read()
        section = readme[readme.index("### Metrics and health"):readme.index("## Limitations")]
        self.assertEqual(set(re.findall(r"`(vltava_[a-z_]+)`", section)), typed)

    def test_scrape_flood_shares_renderings(self):
        # Scrapes back to back: each is complete and parsable.
        for _ in range(50):
            status, _, body = http_get(self.port)
            self.assertEqual(status, 200)
            parse_exposition(body)


class MetricsConfigTest(unittest.TestCase):
    def test_bad_listener_stops_the_start(self):
        for bad in ("9644", "127.0.0.1:99999", "[::1:9644", "host:port"):
            with vt.Cluster(brokers=1, broker_config={"metrics.listener": bad}, start=False) as c:
                b = c.broker(1)
                b.start()
                code = vt.wait_for(lambda: b.proc.poll(), timeout=30, what="the broker to refuse %r" % bad)
                self.assertEqual(code, 2, bad)
                self.assertIn("metrics.listener", b.log_text())

    def test_port_of_another_listener_refused(self):
        with vt.Cluster(brokers=1, start=False) as c:
            b = c.broker(1)
            for port in (b.port, b.rpc_port):
                b.config["metrics.listener"] = "127.0.0.1:%d" % port
                b.start()
                code = vt.wait_for(lambda: b.proc.poll(), timeout=30, what="the broker to refuse it")
                self.assertEqual(code, 2)
                self.assertRegex(b.log_text(), r"metrics\.listener: port %d is also" % port)

    def test_taken_port_fails_the_start(self):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen(1)
            port = taken.getsockname()[1]
            with vt.Cluster(brokers=1, broker_config={"metrics.listener": "127.0.0.1:%d" % port},
                            start=False) as c:
                b = c.broker(1)
                b.start()
                code = vt.wait_for(lambda: b.proc.poll(), timeout=60, what="the broker to fail")
                self.assertEqual(code, 1)
                self.assertRegex(b.log_text(), r"metrics\.listener 127\.0\.0\.1:%d: .*in use" % port)

    def test_unresolvable_host_fails_before_joining_the_cluster(self):
        # The endpoint binds before the broker registers in ZooKeeper: a
        # name that does not resolve stops the start with nothing registered.
        listener = "no-such-host.invalid:%d" % vt.free_port()
        with vt.Cluster(brokers=1, broker_config={"metrics.listener": listener}, start=False) as c:
            b = c.broker(1)
            b.start()
            code = vt.wait_for(lambda: b.proc.poll(), timeout=60, what="the broker to fail")
            self.assertEqual(code, 1)
            log = b.log_text()
            self.assertIn("metrics.listener %s: " % listener, log)
            self.assertNotIn("ZooKeeper session connected", log)
            self.assertNotIn("registered broker", log)

    @unittest.skipUnless(socket.has_ipv6, "no IPv6")
    def test_ipv6_listener_logged_in_brackets(self):
        port = vt.free_port()
        with vt.Cluster(brokers=1, broker_config={"metrics.listener": "[::1]:%d" % port}) as c:
            self.assertIn("serving metrics on http://[::1]:%d/metrics" % port, c.broker(1).log_text())
            with socket.create_connection(("::1", port), timeout=10) as s:
                s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
                self.assertRegex(s.recv(64), rb"^HTTP/1\.[01] 200 ")

    def test_second_broker_on_the_same_listener_fails(self):
        # SO_REUSEPORT would let both bind and the kernel split the scrapes
        # between them: the second broker must refuse to start instead.
        port = vt.free_port()
        with vt.Cluster(brokers=2, broker_config={"metrics.listener": "127.0.0.1:%d" % port},
                        start=False) as c:
            first, second = c.broker(1), c.broker(2)
            first.start()
            first.wait_ready()
            self.assertEqual(http_get(port)[0], 200)
            second.start()
            code = vt.wait_for(lambda: second.proc.poll(), timeout=60, what="broker 2 to fail")
            self.assertEqual(code, 1)
            self.assertRegex(second.log_text(), r"metrics\.listener 127\.0\.0\.1:%d: .*in use" % port)
            self.assertTrue(first.alive())
            self.assertEqual(http_get(port)[0], 200)


if __name__ == "__main__":
    unittest.main()
