#!/usr/bin/python3
"""Hard-kill failover against zookeeper.session.timeout.ms (issue 10 §2).

For each session timeout: three local brokers (RF 3, min.insync.replicas 2)
on a ZooKeeper of their own, an acks=all producer writing to every
partition at a steady rate, then kill -9 of a broker that leads partitions
and is not the controller (not restarted; with --restart, restarted at
once). Measured from the kill:
  leaders: until every partition's state in ZooKeeper names a live leader;
  stall:   the longest gap between two acknowledgements of one partition
           (the produce stall a client sees), and the partition;
and, over the whole run, any session loss or expiry in the logs of the
brokers that were not killed (a false expiry under load). With --restart
also: until the restarted broker serves (Metadata listing every broker),
and until it is back in every partition's ISR.

    cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release
    cmake --build build-release -j2
    VLTAVA_BUILD_DIR=build-release python3 bench/failover.py \\
        --timeouts 18000,6000,2000 --runs 3

Uses the integration harness (tests/integration/vltava_test.py) for
ZooKeeper, ports, processes and clean-up, and confluent_kafka for the load.
"""

import argparse
import os
import re
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

import vltava_test as vt  # noqa: E402
from test_cluster import partition_state  # noqa: E402

TOPIC = "failover"
# session_lost's line, or the client library reporting an expiry.
LOST = re.compile(r"\[coord\] ZooKeeper session 0x[0-9a-f]+ lost|\[zookeeper\].*xpired")


class Load:
    """An acks=all producer sending `rate` records/s spread over the
    partitions; records every acknowledgement's arrival per partition."""

    def __init__(self, bootstrap, partitions, rate, size):
        from confluent_kafka import Producer

        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 2,
                                  "message.timeout.ms": 120000, "retry.backoff.ms": 20,
                                  "topic.metadata.refresh.interval.ms": 1000,
                                  "reconnect.backoff.max.ms": 200})
        self.partitions = partitions
        self.interval = 1.0 / rate
        self.value = b"x" * size
        self.acks = {p: [] for p in range(partitions)}
        self.errors = 0
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _report(self, err, msg):
        if err is not None:
            self.errors += 1
        else:
            self.acks[msg.partition()].append(time.monotonic())

    def _run(self):
        n = 0
        next_at = time.monotonic()
        while not self.stopping:
            self.producer.produce(TOPIC, value=self.value, partition=n % self.partitions,
                                  on_delivery=self._report)
            n += 1
            next_at += self.interval
            delay = next_at - time.monotonic()
            self.producer.poll(max(0.0, delay))
        self.producer.flush(130)

    def start(self):
        self.thread.start()

    def stop(self):
        self.stopping = True
        self.thread.join(150)

    def longest_stall(self, since):
        """(seconds, partition) of the longest gap between acknowledgements
        from `since` on, counting from `since` to the first one."""
        worst = (0.0, -1)
        for p, times in self.acks.items():
            prev = since
            for t in times:
                if t < since:
                    continue
                worst = max(worst, (t - prev, p))
                prev = t
        return worst


def run_once(timeout_ms, partitions, rate, size, after_s, soak_s, restart):
    config = {"zookeeper.session.timeout.ms": str(timeout_ms), "min.insync.replicas": "2",
              "default.replication.factor": "3", "auto.leader.rebalance.enable": "false"}
    with vt.Cluster(brokers=3, name="failover-%d" % timeout_ms, broker_config=config) as c:
        c.create_topic(TOPIC, partitions=partitions, rf=3)
        load = Load(c.bootstrap, partitions, rate, size)
        load.start()
        try:
            vt.wait_for(lambda: all(load.acks[p] for p in range(partitions)), timeout=30,
                        what="acknowledgements on every partition")
            time.sleep(soak_s)  # a steady load before the kill
            ctrl = c.controller_id()
            states = {p: partition_state(c, TOPIC, p) for p in range(partitions)}
            victim = next(b for b in c.brokers
                          if b.id != ctrl and any(s[0] == b.id for s in states.values()))
            led = sorted(p for p, s in states.items() if s[0] == victim.id)
            t_kill = time.monotonic()
            victim.kill()
            serving_s = isr_s = None
            if restart:
                victim.start()
                vt.wait_for(lambda: victim.serving(expected_ids=[b.id for b in c.brokers]),
                            timeout=60, interval=0.01, what="the restarted broker to serve")
                serving_s = time.monotonic() - t_kill

            def moved():
                for p in range(partitions):
                    leader = partition_state(c, TOPIC, p)[0]
                    if leader < 0 or leader == victim.id:
                        return False
                return True

            vt.wait_for(moved, timeout=timeout_ms / 1000 * 3 + 30, interval=0.01,
                        what="new leaders")
            leaders_s = time.monotonic() - t_kill
            if restart:
                vt.wait_for(lambda: all(victim.id in partition_state(c, TOPIC, p)[2]
                                        for p in range(partitions)),
                            timeout=60, interval=0.01, what="the restarted broker back in every ISR")
                isr_s = time.monotonic() - t_kill
            # Until every partition has been acknowledged again for a while.
            vt.wait_for(lambda: all(load.acks[p] and load.acks[p][-1] > t_kill + leaders_s + after_s
                                    for p in range(partitions)),
                        timeout=timeout_ms / 1000 * 3 + 60, what="acknowledgements after failover")
        finally:
            load.stop()
        stall_s, stall_p = load.longest_stall(t_kill)
        false_expiries = []
        for b in c.brokers:
            if b.id == victim.id:
                continue
            false_expiries += ["broker %d: %s" % (b.id, line) for line in b.log_text().splitlines()
                               if LOST.search(line)]
        return {"timeout_ms": timeout_ms, "victim": victim.id, "led": led, "leaders_s": leaders_s,
                "serving_s": serving_s, "isr_s": isr_s,
                "stall_s": stall_s, "stall_partition": stall_p, "errors": load.errors,
                "acks": sum(len(v) for v in load.acks.values()), "false_expiries": false_expiries}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--timeouts", default="18000,6000,2000",
                    help="zookeeper.session.timeout.ms values, comma-separated")
    ap.add_argument("--runs", type=int, default=3, help="runs per timeout")
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--rate", type=float, default=2000, help="records per second")
    ap.add_argument("--size", type=int, default=1024, help="bytes per record")
    ap.add_argument("--restart", action="store_true",
                    help="restart the killed broker at once; also time until it serves and is "
                         "back in every ISR")
    ap.add_argument("--soak", type=float, default=2.0,
                    help="seconds of steady load before the kill (false expiries show here)")
    ap.add_argument("--after", type=float, default=2.0,
                    help="seconds of acknowledgements required after the new leaders")
    args = ap.parse_args()
    if not os.environ.get("VLTAVA_BUILD_DIR"):
        sys.stderr.write("set VLTAVA_BUILD_DIR to a Release build\n")
    rows = []
    try:
        for timeout_ms in [int(t) for t in args.timeouts.split(",")]:
            for i in range(args.runs):
                r = run_once(timeout_ms, args.partitions, args.rate, args.size, args.after, args.soak,
                             args.restart)
                rows.append(r)
                print("timeout %5d ms run %d: broker %d (led %s) killed; new leaders after %.2f s; "
                      "longest produce stall %.2f s (partition %d); %d acks, %d errors; "
                      "false expiries: %d" % (timeout_ms, i + 1, r["victim"], r["led"], r["leaders_s"],
                                              r["stall_s"], r["stall_partition"], r["acks"], r["errors"],
                                              len(r["false_expiries"])), flush=True)
                if args.restart:
                    print("    restarted: serving after %.2f s, back in every ISR after %.2f s"
                          % (r["serving_s"], r["isr_s"]), flush=True)
                for line in r["false_expiries"]:
                    print("    " + line)
    finally:
        if vt._own_zookeeper is not None:
            vt._own_zookeeper.cleanup()
    if args.restart:
        print("\n| zookeeper.session.timeout.ms | restarted broker serving (s) | its partitions led "
              "elsewhere (s) | back in every ISR (s) | longest produce stall (s) |")
        print("|---|---|---|---|---|")
        for timeout_ms in sorted({r["timeout_ms"] for r in rows}, reverse=True):
            rs = [r for r in rows if r["timeout_ms"] == timeout_ms]
            print("| %d | %s |" % (timeout_ms, " | ".join(
                "%.2f (%.2f-%.2f)" % (statistics.median(v), min(v), max(v))
                for v in ([r[k] for r in rs] for k in ("serving_s", "leaders_s", "isr_s", "stall_s")))))
        return
    print("\n| zookeeper.session.timeout.ms | new leaders after kill -9 (s), median (range) "
          "| longest produce stall (s), median (range) | false expiries |")
    print("|---|---|---|---|")
    for timeout_ms in sorted({r["timeout_ms"] for r in rows}, reverse=True):
        rs = [r for r in rows if r["timeout_ms"] == timeout_ms]
        lead = [r["leaders_s"] for r in rs]
        stall = [r["stall_s"] for r in rs]
        print("| %d | %.2f (%.2f-%.2f) | %.2f (%.2f-%.2f) | %d in %d runs |"
              % (timeout_ms, statistics.median(lead), min(lead), max(lead), statistics.median(stall),
                 min(stall), max(stall), sum(len(r["false_expiries"]) for r in rs), len(rs)))


if __name__ == "__main__":
    main()
