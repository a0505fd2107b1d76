"""Partition reassignment benchmark: how long moving one partition takes,
unthrottled and throttled, and what it costs the producers meanwhile.

Per row: three brokers started by the integration harness (release build:
VLTAVA_BUILD_DIR), one partition of replication factor 2 preloaded with
--mb MiB of 1 KiB records (acks=all), then moved with
AlterPartitionReassignments so that one replica is replaced by the third
broker, the leader's included (the leader leaves the set), while a
confluent_kafka producer keeps sending 1,000 records/s with acks=all.
Printed: the copy time (the request accepted to ListPartitionReassignments
empty and Metadata showing the new replicas), the copy rate, and the
producer's acknowledgement latencies during the move (median, 99th
percentile, max) and the number of records acknowledged then.

    VLTAVA_BUILD_DIR=build-release /usr/bin/python3 bench/reassign_bench.py --mb 64 \\
        --rates 0,20000000,5000000
"""

import argparse
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

import vltava_test as vt  # noqa: E402
from test_reassignment import alter, controller, list_reassignments, partition_md  # noqa: E402


def row(mb, rate):
    from confluent_kafka import Producer

    cfg = {"min.insync.replicas": 1, "log.level": "warn"}
    if rate > 0:
        cfg["leader.replication.throttled.rate"] = rate
        cfg["follower.replication.throttled.rate"] = rate
    with vt.Cluster(brokers=3, broker_config=cfg, name="reassign_bench") as c:
        c.create_topic("bench", partitions=1, rf=2)
        p = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "linger.ms": 5,
                      "batch.size": 1 << 20, "queue.buffering.max.kbytes": 1 << 20,
                      "enable.idempotence": False})
        value = b"x" * 1024
        for _ in range(mb * 1024):
            while True:
                try:
                    p.produce("bench", value=value, partition=0)
                    break
                except BufferError:
                    p.poll(0.01)
            p.poll(0)
        assert p.flush(300) == 0, "preload not acknowledged"

        latencies, moving = [], threading.Event()
        stop = threading.Event()

        def load():
            q = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "linger.ms": 0,
                          "enable.idempotence": False})
            while not stop.is_set():
                sent = time.monotonic()
                during = moving.is_set()

                def done(err, _msg, sent=sent, during=during):
                    if err is None and during:
                        latencies.append(time.monotonic() - sent)

                q.produce("bench", value=b"load", partition=0, on_delivery=done)
                q.poll(0.001)
                time.sleep(0.001)
            q.flush(60)

        t = threading.Thread(target=load)
        t.start()
        try:
            time.sleep(1)
            p0 = partition_md(c, "bench", 0)
            kept = [r for r in p0["replicas"] if r != p0["leader"]][0]
            added = [i for i in (1, 2, 3) if i not in p0["replicas"]][0]
            target = [added, kept]
            ctl = controller(c)
            moving.set()
            start = time.monotonic()
            top, res = alter(ctl.port, [("bench", [(0, target)])])
            assert top == 0 and res[("bench", 0)][0] == 0, res
            vt.wait_for(lambda: partition_md(c, "bench", 0, ctl)["replicas"] == target
                        and list_reassignments(ctl.port) == (0, {}),
                        timeout=3600, interval=0.02, what="the move")
            took = time.monotonic() - start
            moving.clear()
        finally:
            stop.set()
            t.join(120)
        lat = sorted(latencies)
        pick = (lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000) if lat else (lambda q: float("nan"))
        print("%-12s %6d MiB  copy %7.2f s  %7.1f MiB/s  acks during: %6d  latency ms p50 %6.1f  p99 %7.1f  "
              "max %7.1f" % ("unthrottled" if rate == 0 else "%d B/s" % rate, mb, took, mb / took,
                             len(lat), pick(0.5), pick(0.99), lat[-1] * 1000 if lat else float("nan")),
              flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=64, help="MiB preloaded into the partition")
    ap.add_argument("--rates", default="0,20000000,5000000",
                    help="comma-separated throttle rates in bytes/s (0: unthrottled)")
    args = ap.parse_args()
    for rate in (int(x) for x in args.rates.split(",")):
        row(args.mb, rate)


if __name__ == "__main__":
    main()
