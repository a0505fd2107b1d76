#!/usr/bin/python3
"""Preferred leader elections at scale: three local brokers with the
automatic rebalance off, T topics of P partitions (RF 2; 3 x 1,000 by
default). A broker that is not the controller is stopped (its leaderships
move), started again and waited for in every ISR; then
`vltava cluster elect-leaders` gives it its preferred leaderships back, and
the command's time is printed (the controller answers once its own metadata
shows every new leader), with how long until every broker's Metadata does.

  cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release
  cmake --build build-release -j2
  VLTAVA_BUILD_DIR=build-release /usr/bin/python3 bench/elect_leaders.py

The harness is the integration tests' (tests/integration/vltava_test.py):
its own ZooKeeper, free ports, temporary directories, every process stopped
at the end. Every wait is bounded (--deadline seconds)."""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

import vltava_test as vt  # noqa: E402


def partitions(cluster, broker, topics):
    md = vt.raw_metadata(broker.port, topics=topics, timeout=30)["topics"]
    return {(t, p): v for t in topics for p, v in md[t]["partitions"].items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--topics", type=int, default=3)
    ap.add_argument("--partitions", type=int, default=1000)
    ap.add_argument("--deadline", type=float, default=300)
    args = ap.parse_args()
    topics = ["elect-%d" % i for i in range(args.topics)]
    config = {"auto.leader.rebalance.enable": "false", "log.level": "warn"}
    with vt.Cluster(brokers=3, name="bench-elect", broker_config=config) as c:
        for t in topics:
            c.create_topic(t, partitions=args.partitions, rf=2, timeout=args.deadline)
        ctrl = c.broker(c.controller_id())
        victim = next(b for b in c.brokers if b.id != ctrl.id)
        preferred = {k for k, v in partitions(c, ctrl, topics).items() if v["replicas"][0] == victim.id}
        victim.stop()
        vt.wait_for(lambda: all(v["leader"] != victim.id for v in partitions(c, ctrl, topics).values()),
                    timeout=args.deadline, what="leaders off broker %d" % victim.id)
        victim.start()
        c.wait_ready()
        vt.wait_for(lambda: all(victim.id in v["isr"] for v in partitions(c, ctrl, topics).values()
                                if victim.id in v["replicas"]),
                    timeout=args.deadline, what="broker %d back in every ISR" % victim.id)
        env = dict(os.environ)
        env.pop("VLTAVA_BROKERS", None)
        t0 = time.monotonic()
        proc = subprocess.run([vt.cli_bin(), "-b", c.bootstrap, "--timeout", str(int(args.deadline)),
                               "--format", "json", "cluster", "elect-leaders"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                              timeout=args.deadline + 30)
        elect_s = time.monotonic() - t0
        if proc.returncode != 0:
            sys.exit("elect-leaders failed: %r" % proc.stderr)
        elected = [x for x in json.loads(proc.stdout)["partitions"] if x["error"] is None]
        vt.wait_for(lambda: all(all(v["leader"] == victim.id for k, v in partitions(c, b, topics).items()
                                    if k in preferred) for b in c.brokers),
                    timeout=args.deadline, what="every broker to see the preferred leaders")
        everywhere_s = time.monotonic() - t0
        print("elect-leaders: %d partitions (of %d) back on broker %d in %.2f s; every broker's "
              "Metadata shows them %.2f s after the command started"
              % (len(elected), len(topics) * args.partitions, victim.id, elect_s, everywhere_s))


if __name__ == "__main__":
    main()
