#!/usr/bin/python3
"""Rolling restart under an acks=all load (issue 10 §1): three local brokers
(ZooKeeper and brokers started by the integration harness: temp dirs, free
ports; Debian's python3, which has confluent_kafka), a topic of PARTITIONS partitions with replication factor 3 and
min.insync.replicas 2, an idempotent confluent_kafka producer (acks=all) at
a steady rate; each broker in turn gets SIGTERM, is restarted once it has
exited and the next one waits until it is back in every ISR. Metadata is
sampled from the two other brokers all the while.

Prints, per stopped broker and overall: how long the stop took, the longest
produce stall (a record's wait from produce() to its acknowledgement), the
99th percentile wait, and the Metadata samples that showed a partition
without a leader. Every acknowledged record is read back (exact set).

    cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release
    cmake --build build-release -j2
    VLTAVA_BUILD_DIR=build-release /usr/bin/python3 bench/rolling_restart.py [--rounds N]
        [--rate R] [--partitions P] [--no-controlled-shutdown]

--no-controlled-shutdown sets controlled.shutdown.enable=false: the stop as
it was before controlled shutdown, for comparison."""

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

import vltava_test as vt  # noqa: E402
import test_controlled_shutdown as cs  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2, help="rolling restarts of all three brokers")
    ap.add_argument("--rate", type=int, default=1000, help="records per second")
    ap.add_argument("--partitions", type=int, default=12)
    ap.add_argument("--no-controlled-shutdown", action="store_true")
    ap.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                    help="an extra broker property (repeatable)")
    ap.add_argument("--client-config", action="append", default=[], metavar="KEY=VALUE",
                    help="an extra librdkafka property of the producer (repeatable)")
    args = ap.parse_args()
    cs.PARTITIONS = args.partitions
    controlled = not args.no_controlled_shutdown

    def config(i):
        d = cs.config(i)
        d["controlled.shutdown.enable"] = "true" if controlled else "false"
        d["log.level"] = os.environ.get("BENCH_LOG_LEVEL", "warn")
        d.update(kv.split("=", 1) for kv in args.config)
        return d

    ids = [1, 2, 3]
    print("rolling restart: %d round(s) of 3 brokers, %d partitions (RF 3, min.insync.replicas 2),"
          " %d records/s acks=all, controlled shutdown %s %s; broker %s"
          % (args.rounds, args.partitions, args.rate, "on" if controlled else "off",
             " ".join(args.config + args.client_config), vt.broker_bin()))
    with vt.Cluster(brokers=3, name="bench-rolling-restart", broker_config=config) as c:
        c.create_topic(cs.TOPIC, partitions=args.partitions, rf=3)
        vt.wait_for(lambda: all(sorted(s["isr"]) == ids
                                for s in cs.partitions_state(c, ids).values()),
                    timeout=60, what="every partition's full ISR")
        load = cs.LoadProducer(c.bootstrap, rate=args.rate,
                               client_config=dict(kv.split("=", 1) for kv in args.client_config))
        waits = []  # (sent_at, waited, partition)
        report = load._report

        def timed_report(sent_at):
            inner = report(sent_at)

            def r(err, msg):
                inner(err, msg)
                waits.append((sent_at, time.monotonic() - sent_at, msg.partition()))
            return r
        load._report = timed_report
        load.start()
        vt.wait_for(lambda: len(load.acked) >= 2 * args.rate, timeout=60, what="warm-up")
        steady_from = time.monotonic()
        vt.wait_for(lambda: time.monotonic() >= steady_from + 2.0, timeout=5, what="2 s of load")
        total_leaderless = total_samples = 0
        rows = []
        first_stop = time.monotonic()
        for rnd in range(args.rounds):
            for victim in ids:
                others = [i for i in ids if i != victim]
                b = c.broker(victim)
                t0 = time.monotonic()
                if os.environ.get("BENCH_VERBOSE"):
                    print("  SIGTERM broker %d at +%.3f s" % (victim, t0 - first_stop))
                with cs.LeaderSampler(c, others) as sampler:
                    code = b.stop(timeout=120)
                    stop_s = time.monotonic() - t0
                    b.start()
                    b.wait_ready(timeout=90, expected_ids=ids)
                    vt.wait_for(lambda: all(victim in s["isr"]
                                            for s in cs.partitions_state(c, ids).values()),
                                timeout=120, what="broker %d back in every ISR" % victim)
                # the records sent during this broker's restart, and 1 s after
                t1 = time.monotonic() + 1.0
                vt.wait_for(lambda: time.monotonic() >= t1, timeout=5, what="1 s of load")
                rows.append([rnd + 1, victim, code, stop_s, t1 - 1.0 - t0, t0, t1,
                             len(sampler.leaderless), sampler.samples])
                total_leaderless += len(sampler.leaderless)
                total_samples += sampler.samples
        load.stop()
        for row in rows:  # every record has its answer now
            t0, t1 = row[5], row[6]
            mine = sorted(w for s, w, _p in waits if t0 <= s <= t1)
            row[5] = mine[-1] if mine else 0.0
            row[6] = mine[int(len(mine) * 0.99)] if mine else 0.0
        print("%-5s %-6s %-4s %7s %10s %11s %7s %s" % (
            "round", "broker", "exit", "stop s", "back in s", "max wait s", "p99 s",
            "leaderless/samples"))
        for rnd, victim, code, stop_s, back_s, mx, p99, nl, ns in rows:
            print("%-5d %-6d %-4d %7.2f %10.2f %11.3f %7.3f %d/%d" % (
                rnd, victim, code, stop_s, back_s, mx, p99, nl, ns))
        # from the first SIGTERM on (the warm-up's first records wait for
        # the producer id and the first Metadata)
        all_waits = sorted(w for s, w, _p in waits if s >= first_stop)
        steady = sorted(w for s, w, _p in waits if steady_from <= s < first_stop)
        print("without restarts (2 s before the first SIGTERM): longest wait %.3f s, p99 %.3f s"
              % (steady[-1], steady[int(len(steady) * 0.99)]))
        if os.environ.get("BENCH_VERBOSE"):
            for s, w, p in sorted((x for x in waits if x[0] >= first_stop), key=lambda x: -x[1])[:5]:
                print("  wait %.3f s: sent at +%.3f s (%.3f), partition %d"
                      % (w, s - first_stop, time.time() - (time.monotonic() - s), p))
        read = {}
        for p in range(args.partitions):
            leader = cs.partitions_state(c, ids)[p]["leader"]
            for off, value in cs.read_partition(c.broker(leader).port, p):
                read[value] = (p, off)
        lost = [v for v, at in load.acked.items() if v not in read or not cs.same_place(at, read[v])]
        print("records acknowledged %d, failed %d, lost %d; longest produce stall %.3f s; "
              "p99 wait %.3f s; leaderless Metadata samples %d of %d"
              % (len(load.acked), len(load.failures), len(lost), all_waits[-1],
                 all_waits[int(len(all_waits) * 0.99)], total_leaderless, total_samples))
        return 1 if lost or load.failures else 0


if __name__ == "__main__":
    sys.exit(main())
