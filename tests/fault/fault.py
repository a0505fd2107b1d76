"""The fault suite's orchestrator (run it through tests/fault/run.sh):
ZooKeeper and three brokers in their own network namespaces, an acks=all
workload (an idempotent producer and a plain one, each with a concurrent
consumer), one nemesis fault per round followed by a heal and a wait for a
full ISR, then a final read, a replica comparison and the checker.

Writes into the work directory: history.jsonl (every client event and
every fault, in time order), summary.txt (the table; its last line the
totals), timeline.png, and the brokers' and ZooKeeper's logs and data.
Exit status: 0 when the checker found nothing, 1 on a violation, 2 on a
suite error, 77 when the machine cannot run it (not root, no netns)."""

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import checker  # noqa: E402
import cluster  # noqa: E402
import netlab  # noqa: E402
import nemesis  # noqa: E402
import report  # noqa: E402
import segments  # noqa: E402

SKIP = 77
SESSION_TIMEOUT_MS = 6000
REPLICA_LAG_MS = 5000
TOPICS = (("fault-idem", True), ("fault-plain", False))
FULL_ISR_TIMEOUT_S = 120


def log(msg):
    print("fault: %s %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def broker_config(partitions):
    return {
        "zookeeper.session.timeout.ms": SESSION_TIMEOUT_MS,
        "replica.lag.time.max.ms": REPLICA_LAG_MS,
        "min.insync.replicas": 2,
        "default.replication.factor": 3,
        "num.partitions": partitions,
        "offsets.topic.replication.factor": 3,
        "offsets.topic.num.partitions": 4,
        "transaction.state.log.replication.factor": 3,
        "transaction.state.log.num.partitions": 4,
        "group.initial.rebalance.delay.ms": 0,
        # Leaderships return to restarted brokers between rounds (they did at
        # once before the rebalance check; Kafka's default waits 300 s), so
        # that a round's target is not always one of fewer and fewer leaders.
        "leader.imbalance.check.interval.seconds": 5,
        "log.segment.bytes": 1 << 20,
        "log.level": "info",
    }


class AckTail:
    """Follows a producer's history file (written line by line): how many
    acknowledgements each partition has had so far."""

    def __init__(self, path):
        self.path = path
        self.pos = 0
        self.acks = {}  # partition -> count
        self.partial = b""

    def poll(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.pos)
                data = f.read()
        except FileNotFoundError:
            return self.acks
        self.pos += len(data)
        data = self.partial + data
        lines = data.split(b"\n")
        self.partial = lines.pop()
        for line in lines:
            if b'"k":"ack"' in line:
                p = json.loads(line)["p"]
                self.acks[p] = self.acks.get(p, 0) + 1
        return self.acks


class Suite:
    def __init__(self, args, lab, workdir):
        self.args = args
        self.lab = lab
        self.workdir = workdir
        self.rng = random.Random(args.seed)
        self.zk = None
        self.brokers = {}
        self.view = None
        self.clients = []  # (name, Popen)
        self.deaths = []  # descriptions of brokers that died unkilled
        self.stuck = []  # rounds after which no full ISR came
        self.rounds = []
        self.topics = [t for t, _ in TOPICS]

    def path(self, name):
        return os.path.join(self.workdir, name)

    # -- processes

    def check_processes(self):
        """Notes and restarts any broker (or ZooKeeper) that exited without
        being told to."""
        for p in [self.zk] + list(self.brokers.values()):
            if p is not None and p.check():
                when, code = p.unexpected_exits[-1]
                text = "%s exited by itself with status %d at %s" % (p.name, code, time.strftime(
                    "%H:%M:%S", time.localtime(when)))
                log(text)
                self.deaths.append(text)
                p.start()

    def wait_full_isr(self, timeout):
        def full():
            self.check_processes()
            return self.view.full_isr(self.topics, self.brokers)

        return cluster.wait_for(full, timeout, 0.5)

    def start_cluster(self):
        self.zk = cluster.ZooKeeper(self.lab, self.workdir)
        self.zk.start()
        if not cluster.wait_for(self.zk.ok, 90):
            raise RuntimeError("ZooKeeper did not start; see %s" % self.zk.logfile)
        cfg = broker_config(self.args.partitions)
        for i in (1, 2, 3):
            self.brokers[i] = cluster.Broker(self.lab, self.workdir, i, self.args.build_dir, cfg)
            self.brokers[i].start()
        self.view = cluster.ClusterView(self.zk.addr)
        if not cluster.wait_for(lambda: self.view.live_brokers() == [1, 2, 3], 120, 0.5):
            self.check_processes()
            raise RuntimeError("brokers did not register: live %s; see %s" % (self.view.live_brokers(),
                                                                            self.workdir))
        self.create_topics()
        if not self.wait_full_isr(FULL_ISR_TIMEOUT_S):
            raise RuntimeError("the topics never had a full ISR")

    def bootstrap(self):
        return ",".join(b.bootstrap for b in self.brokers.values())

    def create_topics(self):
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": self.bootstrap()})
        deadline = time.monotonic() + 120
        for topic in self.topics:
            while True:
                new = NewTopic(topic, num_partitions=self.args.partitions, replication_factor=3,
                               config={"min.insync.replicas": "2"})
                try:
                    admin.create_topics([new], operation_timeout=30, request_timeout=30)[topic].result(60)
                    break
                except KafkaException as e:
                    if time.monotonic() > deadline:
                        raise
                    log("creating %s: %s; again" % (topic, e))
                    time.sleep(1)

    def venv_python(self):
        return os.environ.get("VLTAVA_VENV_PYTHON") or os.path.join(
            os.environ.get("VLTAVA_VENV") or "/opt/vltava-venv", "bin", "python")

    def client(self, name, *args):
        cmd = [self.venv_python(), os.path.join(HERE, "workload.py")] + list(args) + [
            "--bootstrap", self.bootstrap(), "--out", self.path(name + ".jsonl")]
        with open(self.path(name + ".stderr"), "ab") as err:
            proc = subprocess.Popen(["setpriv", "--pdeathsig", "KILL"] + cmd, stdin=subprocess.DEVNULL,
                                    stdout=err, stderr=err)
        return proc

    def start_workload(self):
        for topic, idempotent in TOPICS:
            tag = "idem" if idempotent else "plain"
            common = ["--topic", topic, "--partitions", str(self.args.partitions)]
            self.clients.append(("producer-" + tag, self.client(
                "producer-" + tag, "produce", *common, "--id", tag[0], "--idempotent", str(int(idempotent)),
                "--rate", str(self.args.rate))))
            self.clients.append(("consumer-" + tag, self.client("consumer-" + tag, "consume", *common, "--id",
                                                                tag)))
        self.tails = [AckTail(self.path("producer-%s.jsonl" % ("idem" if i else "plain"))) for _, i in TOPICS]
        if not self.acking(90):
            raise RuntimeError("the producers got no acknowledgement within 90 s; see %s" % self.workdir)

    def acking(self, timeout):
        """Waits until every partition of both topics has an
        acknowledgement newer than now."""
        base = [dict(t.poll()) for t in self.tails]

        def moved():
            return all(t.poll().get(p, 0) > b.get(p, 0) for t, b in zip(self.tails, base)
                       for p in range(self.args.partitions))

        return cluster.wait_for(moved, timeout, 0.2)

    def stop_workload(self):
        for name, proc in self.clients:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in self.clients:
            try:
                proc.wait(90)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
                log("%s did not stop within 90 s; killed" % name)

    # -- rounds

    def run_rounds(self):
        nem = nemesis.Nemesis(self.lab, self.zk, self.brokers, self.view, self.topics, self.rng,
                              SESSION_TIMEOUT_MS / 1000, self.wait_full_isr, log, self.args.partition_hold)
        kinds = self.args.faults
        with open(self.path("nemesis.jsonl"), "a") as out:
            for i in range(self.args.rounds):
                kind = kinds[i % len(kinds)]
                self.check_processes()
                leaders = {t: self.view.leaders(t) for t in self.topics}
                ev = nem.inject(kind)
                ev["leaders"] = {t: {str(p): b for p, b in ls.items()} for t, ls in leaders.items()}
                self.lab.heal_all()
                for p in [self.zk] + list(self.brokers.values()):
                    if p.paused:
                        p.resume()
                self.check_processes()
                t_heal = time.monotonic()
                full = self.wait_full_isr(FULL_ISR_TIMEOUT_S)
                isr_s = time.monotonic() - t_heal
                acking = self.acking(60)
                ev["end"] = time.time()
                ev["round"] = i + 1
                ev["full_isr_s"] = round(isr_s, 1) if full else None
                ev["acking"] = acking
                if not full or not acking:
                    self.stuck.append("round %d (%s %s): %s" % (i + 1, kind, ev["variant"],
                                                                "no full ISR within %d s" % FULL_ISR_TIMEOUT_S
                                                                if not full else
                                                                "a partition without acknowledgements for 60 s"))
                out.write(json.dumps(ev) + "\n")
                out.flush()
                self.rounds.append(ev)
                log("round %d/%d %s %s target %s: full ISR %s s after heal" % (
                    i + 1, self.args.rounds, kind, ev["variant"], ev["target"],
                    ev["full_isr_s"] if full else "NOT within %d" % FULL_ISR_TIMEOUT_S))
                time.sleep(self.args.quiet)

    # -- the end

    def final_reads(self):
        for topic, idempotent in TOPICS:
            tag = "idem" if idempotent else "plain"
            proc = self.client("final-" + tag, "final", "--topic", topic, "--partitions", str(self.args.partitions),
                               "--id", tag, "--timeout", "180")
            try:
                proc.wait(240)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)

    def stop_cluster(self):
        for b in self.brokers.values():
            b.check()
        for b in self.brokers.values():
            if b.alive():
                b.note("final stop: SIGTERM")
                proc = b.proc
                ok = b.stop(60)
                if not ok:
                    self.deaths.append("%s did not exit within 60 s of the final SIGTERM" % b.name)
                elif proc.returncode != 0:
                    self.deaths.append("%s exited with status %d on the final SIGTERM" % (b.name, proc.returncode))
        if self.view:
            self.view.close()
            self.view = None
        if self.zk:
            self.zk.stop(30)

    def kill_all(self):
        for _, proc in self.clients:
            if proc.poll() is None:
                proc.kill()
        for p in list(self.brokers.values()) + [self.zk]:
            if p is not None and p.alive():
                p.kill()
        if self.view:
            try:
                self.view.close()
            except Exception:
                pass

    def check(self, t0, elapsed):
        results = []
        for topic, idempotent in TOPICS:
            tag = "idem" if idempotent else "plain"
            results.append(checker.check_topic(
                topic, idempotent, checker.load_jsonl(self.path("producer-%s.jsonl" % tag)),
                [checker.load_jsonl(self.path("consumer-%s.jsonl" % tag))],
                checker.load_jsonl(self.path("final-%s.jsonl" % tag))))
        divergences, nparts, nbatches = segments.compare_replicas(
            {i: b.datadir for i, b in self.brokers.items()}, self.topics)
        log("compared %d partitions' replicas, %d batches below the high watermark" % (nparts, nbatches))
        sanitizer = ["%s: %s" % (b.name, line) for b in self.brokers.values() for line in b.sanitizer_reports()]
        ack_times, rows, by_partition = [], [], {}
        events = []
        for topic, idempotent in TOPICS:
            tag = "idem" if idempotent else "plain"
            produced = checker.load_jsonl(self.path("producer-%s.jsonl" % tag))
            acks = [e for e in produced if e["k"] == "ack"]
            for p in range(self.args.partitions):
                times = sorted(e["t"] for e in acks if e["p"] == p)
                ack_times.append(times)
                by_partition[(topic, p)] = times
                rows.append(("%s-%d" % (topic, p), times))
            for name in ("producer", "consumer", "final"):
                for e in checker.load_jsonl(self.path("%s-%s.jsonl" % (name, tag))):
                    e["src"] = "%s-%s" % (name, tag)
                    events.append(e)
        kinds = checker.unavailability(self.rounds, ack_times)
        checker.split_by_leader(self.rounds, by_partition)
        events.extend(self.rounds)
        events.sort(key=lambda e: e.get("t", 0))
        with open(self.path("history.jsonl"), "w") as f:
            for e in events:
                f.write(json.dumps(e, separators=(",", ":")) + "\n")
        text, violations = report.summary(results, kinds, self.rounds, divergences, self.deaths, sanitizer,
                                          self.stuck, elapsed)
        round_rows = [[r["round"], r["kind"], r["variant"], r["target"], r.get("gap_s"), r.get("gap_led_s", "-"),
                       r.get("gap_other_s", "-"), r.get("full_isr_s")] for r in self.rounds]
        rounds_text = report.table(round_rows, ["round", "fault", "variant", "target", "ack-gap-s", "led-by-target-s",
                                                "others-s", "full-isr-after-heal-s"])
        with open(self.path("rounds.txt"), "w") as f:
            f.write(rounds_text + "\n")
        with open(self.path("summary.txt"), "w") as f:
            f.write(text + "\n")
        png = report.timeline_png(self.path("timeline.png"), t0, rows, self.rounds)
        print(rounds_text)
        print()
        print(text, flush=True)
        log("history %s, timeline %s" % (self.path("history.jsonl"), png or "(no matplotlib)"))
        return violations


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="tests/fault/run.sh", description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--faults", default=",".join(nemesis.DEFAULT_KINDS),
                    help="comma-separated, from %s, or partition:<%s> for one variant (default: all but netem)"
                    % (",".join(nemesis.KINDS), "|".join(nemesis.PARTITION_VARIANTS)))
    ap.add_argument("--partitions", type=int, default=6, help="per topic (default 6)")
    ap.add_argument("--rate", type=float, default=150, help="records/s per producer (default 150)")
    ap.add_argument("--quiet", type=float, default=3, help="seconds between rounds (default 3)")
    ap.add_argument("--partition-hold", type=float, default=None,
                    help="seconds a partition lasts (default: the session timeout + 8 s)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--workdir", default=None,
                    help="default: a new /tmp/vltava-fault-*, deleted after a run that passed unless "
                    "VLTAVA_KEEP_TMP=1")
    ap.add_argument("--build-dir", default=os.environ.get("VLTAVA_BUILD_DIR") or os.path.join(cluster.REPO, "build"))
    ap.add_argument("--run-id", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.faults = [f.strip() for f in args.faults.split(",") if f.strip()]
    bad = [f for f in args.faults if not nemesis.valid(f)]
    if bad or not args.faults:
        ap.error("unknown fault kind(s): %s (known: %s)" % (",".join(bad) or "none", ",".join(nemesis.KINDS)))
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    return args


def main(argv):
    args = parse_args(argv)
    problem = netlab.support_problem()
    if problem:
        print("fault suite SKIPPED: %s" % problem, flush=True)
        return SKIP
    if "netem" in args.faults and not netlab.netem_supported():
        print("fault suite: this kernel has no sch_netem (tc netem); the netem fault is left out", flush=True)
        args.faults = [f for f in args.faults if f != "netem"]
        if not args.faults:
            return SKIP
    binary = os.path.join(args.build_dir, "broker", "vltava-broker")
    if not os.access(binary, os.X_OK):
        print("fault suite: no %s (run tests/fault/run.sh, which builds it)" % binary)
        return 2
    run_id = args.run_id or "%06x" % random.randrange(1 << 24)
    workdir = args.workdir or tempfile.mkdtemp(prefix="vltava-fault-")
    keep = bool(args.workdir) or os.environ.get("VLTAVA_KEEP_TMP") == "1"
    os.makedirs(workdir, exist_ok=True)
    log("run %s: %d rounds of %s, seed %d, work dir %s, build %s" % (run_id, args.rounds, ",".join(args.faults),
                                                                   args.seed, workdir, args.build_dir))

    def on_signal(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    lab = netlab.Lab(run_id, ["zk", "b1", "b2", "b3"])
    suite = None
    status = 2
    try:
        lab.create()
        netlab.enter_namespace(lab.hub)
        suite = Suite(args, lab, workdir)
        started = time.monotonic()
        suite.start_cluster()
        t0 = time.time()
        suite.start_workload()
        suite.run_rounds()
        time.sleep(2)
        log("stopping the workload")
        suite.stop_workload()
        if not suite.wait_full_isr(FULL_ISR_TIMEOUT_S):
            suite.stuck.append("after the last round: no full ISR within %d s" % FULL_ISR_TIMEOUT_S)
        log("final read")
        suite.final_reads()
        suite.stop_cluster()
        violations = suite.check(t0, time.monotonic() - started)
        status = 1 if violations else 0
    except KeyboardInterrupt as e:
        log("interrupted (%s); cleaning up" % (e.args[0] if e.args else "Ctrl-C"))
        status = 130
    except Exception as e:  # a suite error, not a finding: say so and clean up
        import traceback

        traceback.print_exc()
        log("suite error: %s" % e)
        status = 2
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if suite:
            suite.kill_all()
        lab.cleanup()
        if status == 0 and not keep:
            shutil.rmtree(workdir, ignore_errors=True)
            log("namespaces of run %s and work dir %s removed (VLTAVA_KEEP_TMP=1 keeps it)" % (run_id, workdir))
        else:
            log("namespaces of run %s removed; work dir %s kept" % (run_id, workdir))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
