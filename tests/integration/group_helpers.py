"""Helpers of the consumer-group integration tests (test_groups_*.py):
producing numbered records, driving clients/ck_consumer.py processes, and
checking what they consumed and committed."""

import collections
import threading
import time

import vltava_test as vt


def produce(bootstrap, topic, prefix, start, count, partitions, timeout=60):
    """Produces "<prefix>-<i>" for i in [start, start+count) to partition
    i % partitions with Debian's confluent_kafka (acks=all) and waits for
    every delivery; returns the values."""
    from confluent_kafka import Producer

    values = ["%s-%d" % (prefix, i) for i in range(start, start + count)]
    errors = []
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                         "message.timeout.ms": int(timeout * 1000)})

    def done(err, _msg):
        if err is not None:
            errors.append(err)

    deadline = time.monotonic() + timeout
    for i, v in zip(range(start, start + count), values):
        while True:
            try:
                producer.produce(topic, value=v.encode(), partition=i % partitions, on_delivery=done)
                break
            except BufferError:
                if time.monotonic() > deadline:
                    raise AssertionError("produce to %s: queue still full after %ss" % (topic, timeout)) from None
                producer.poll(0.1)
    left = producer.flush(max(deadline - time.monotonic(), 1))
    if left or errors:
        raise AssertionError("produce to %s: %d undelivered, errors %s" % (topic, left, errors[:5]))
    return values


class BackgroundProducer:
    """Produces "<prefix>-<i>", i = 0, 1, ..., to partition i % partitions
    from a thread until stop(), every delivery acknowledged (acks=all) or
    failed; rate: about per_second records. Broker failures are allowed:
    only acknowledged values count (acked())."""

    def __init__(self, bootstrap, topic, prefix, partitions, per_second=200):
        from confluent_kafka import Producer

        self.topic, self.prefix, self.partitions = topic, prefix, partitions
        self.per_second = per_second
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                                  "message.timeout.ms": 60000, "retries": 1000000})
        self._acked = []
        self._failed = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.sent = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _done(self, err, msg):
        with self._lock:
            (self._failed if err is not None else self._acked).append(msg.value().decode())

    def _run(self):
        start = time.monotonic()
        i = 0
        while not self._stop.is_set():
            due = int((time.monotonic() - start) * self.per_second) + 1
            while i < due and not self._stop.is_set():
                try:
                    self.producer.produce(self.topic, value=("%s-%d" % (self.prefix, i)).encode(),
                                          partition=i % self.partitions, on_delivery=self._done)
                    i += 1
                except BufferError:
                    break
            self.sent = i
            self.producer.poll(0.05)

    def stop(self, flush_timeout=90):
        """Stops producing and waits for the outstanding deliveries."""
        self._stop.set()
        self.thread.join(timeout=30)
        left = self.producer.flush(flush_timeout)
        if left:
            raise AssertionError("%d records neither acknowledged nor failed after %ss" % (left, flush_timeout))

    def acked(self):
        with self._lock:
            return list(self._acked)

    def failed(self):
        with self._lock:
            return list(self._failed)


def consumer(cluster, group, topic, name, logdir, strategy=None, instance_id=None, session_timeout_ms=6000,
             commit="sync", stats=False, extra=(), python=None, bootstrap=None):
    """A clients/ck_consumer.py process (confluent-kafka 2.x unless python
    says otherwise), started; wait for its "started" event."""
    args = ["--bootstrap", bootstrap or cluster.bootstrap, "--group", group, "--topic", topic,
            "--client-id", name, "--session-timeout-ms", session_timeout_ms, "--commit", commit]
    if strategy:
        args += ["--strategy", strategy]
    if instance_id:
        args += ["--instance-id", instance_id]
    if stats:
        args.append("--stats")
    for kv in extra:
        args += ["-X", kv]
    p = vt.ClientProcess("ck_consumer.py", args, python=python, logdir=logdir, name=name)
    p.wait_event(lambda e: e["ev"] == "started", 30, what="the consumer to start")
    return p


def assignment(proc):
    """The consumer's current assignment: a set of (topic, partition)."""
    e = proc.last("assignment")
    return {tuple(x) for x in e["partitions"]} if e else set()


def wait_balanced(procs, sizes, topic, partitions, timeout=90):
    """Waits until the consumers' assignments are disjoint, cover every
    partition of topic, and have the sizes given (sorted, e.g. [4, 4, 4]);
    returns {proc.name: set of partitions}."""
    want = {(topic, p) for p in range(partitions)}

    def balanced():
        for p in procs:
            if not p.alive():
                raise AssertionError("consumer exited: %s" % p.describe())
        got = {p.name: assignment(p) for p in procs}
        union = set().union(*got.values())
        if sorted(len(a) for a in got.values()) != sorted(sizes):
            return None
        if union != want or sum(len(a) for a in got.values()) != len(want):
            return None
        return got

    try:
        return vt.wait_for(balanced, timeout=timeout, what="assignments of sizes %s" % (sizes,))
    except AssertionError as e:
        detail = "; ".join("%s: %s" % (p.name, sorted(assignment(p))) for p in procs)
        raise AssertionError("%s\nassignments: %s" % (e, detail)) from None


Delivery = collections.namedtuple("Delivery", "consumer topic partition offset value t")


def deliveries(procs):
    """Every record every consumer process delivered, in event order."""
    out = []
    for p in procs:
        for e in p.events("records"):
            for topic, partition, offset, value in e["items"]:
                out.append(Delivery(p.name, topic, partition, offset, value, e["t"]))
    return out


def consumed_values(procs):
    return {d.value for d in deliveries(procs)}


def wait_consumed(procs, values, timeout=90):
    """Waits until every value was delivered to one of procs (a consumer
    the test stopped or killed counts with what it consumed; one that exited
    by itself fails the wait)."""
    want = set(values)

    def missing():
        for p in procs:
            if not p.alive() and not p.ended_on_purpose:
                raise AssertionError("consumer exited: %s" % p.describe())
        return want - consumed_values(procs)

    try:
        vt.wait_for(lambda: not missing(), timeout=timeout, what="%d records to be consumed" % len(want))
    except AssertionError as e:
        left = sorted(missing())
        raise AssertionError("%s; %d missing, e.g. %s" % (e, len(left), left[:10])) from None


def acked_commits(procs):
    """[(consumer, topic, partition, offset, t)] of every acknowledged commit."""
    out = []
    for p in procs:
        for e in p.events("commit_ack"):
            for topic, partition, offset in e.get("offsets") or []:
                out.append((p.name, topic, partition, offset, e["t"]))
    return out


def max_acked(procs):
    """{(topic, partition): highest acknowledged committed offset}."""
    best = {}
    for _c, t, p, o, _t in acked_commits(procs):
        best[(t, p)] = max(best.get((t, p), -1), o)
    return best


def redeliveries_of_acked(procs):
    """Records delivered again after a commit that covered them had been
    acknowledged to the consumer that first delivered them: what Kafka's
    committed offsets promise never happens. Returns a list of
    (first delivery, later delivery, acknowledged commit)."""
    acks = collections.defaultdict(list)  # (consumer, topic, partition) -> [(t, offset)]
    for c, t, p, o, at in acked_commits(procs):
        acks[(c, t, p)].append((at, o))
    by_record = collections.defaultdict(list)
    for d in deliveries(procs):
        by_record[(d.topic, d.partition, d.offset)].append(d)
    bad = []
    for key, ds in by_record.items():
        if len(ds) < 2:
            continue
        ds.sort(key=lambda d: d.t)
        for i, first in enumerate(ds[:-1]):
            later = ds[i + 1]
            for at, o in acks[(first.consumer, first.topic, first.partition)]:
                if o > first.offset and at <= later.t:
                    bad.append((first, later, (at, o)))
                    break
    return bad


def duplicates(procs):
    """{(topic, partition, offset): times delivered} for records delivered
    more than once."""
    count = collections.Counter((d.topic, d.partition, d.offset) for d in deliveries(procs))
    return {k: n for k, n in count.items() if n > 1}


def stop_all(procs, timeout=60):
    for p in procs:
        if p.alive():
            p.send(op="stop")
    for p in procs:
        p.stop(timeout=timeout)


def kill_all(procs):
    for p in procs:
        p.close()


class GroupTest(vt.SharedClusterTest):
    """Base of the group test classes: one cluster of `brokers` brokers per
    class with vt.GROUP_BROKER_CONFIG (plus extra_config); the client
    processes a test starts are killed in its tearDown, their logs kept in
    the cluster's temp dir (kept when a test fails)."""

    brokers = 3
    extra_config = {}

    @classmethod
    def setUpClass(cls):
        config = dict(vt.GROUP_BROKER_CONFIG)
        config.update(cls.extra_config)
        cls.cluster = vt.Cluster(brokers=cls.brokers, name=cls.__name__, broker_config=config)

    def setUp(self):
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            p.close()
        super().tearDown()

    @property
    def logdir(self):
        return self.cluster.tmpdir

    def consumer(self, group, topic, name, **kw):
        p = consumer(self.cluster, group, topic, name, self.logdir, **kw)
        self.procs.append(p)
        return p

    def admin(self, name="admin"):
        p = vt.ClientProcess("ck_admin.py", ["--bootstrap", self.cluster.bootstrap], logdir=self.logdir,
                             name="%s-%s" % (name, self._testMethodName))
        self.procs.append(p)
        p.wait_event(lambda e: e["ev"] == "started", 30, what="the admin client to start")
        return p

    def admin_call(self, admin, timeout=60, **command):
        """admin.request(), failing on an operation-level error."""
        reply = admin.request(timeout=timeout, **command)
        if reply.get("error"):
            raise AssertionError("admin %s failed: %s" % (command.get("op"), reply))
        return reply

    def committed_offsets(self, admin, group, topic, partitions):
        """{partition: committed offset} from list_consumer_group_offsets
        (negative: none)."""
        reply = self.admin_call(admin, op="offsets", group=group,
                                partitions=[[topic, p] for p in range(partitions)])
        out = {}
        for t, p, o, err in reply["offsets"]:
            self.assertIsNone(err, "offset of %s-%d: %s" % (t, p, err))
            out[p] = o
        return out
