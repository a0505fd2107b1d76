#!/usr/bin/python3
"""The control plane at scale: three local brokers, T topics of P partitions
(RF 3; 10 x 1,000 by default), and what issue 10 asks of them:

  create   every topic in one CreateTopics request, until every broker's
           Metadata shows a leader for every partition
  stop     the controller stopped with SIGTERM, until every partition is led
           by a live broker in every live broker's Metadata (then restarted)
  kill     a broker that is not the controller killed with kill -9, until no
           partition names it as leader anywhere (then restarted)
  restart  each broker in turn stopped and started, until it serves and every
           partition is led again
  memory   each broker's RSS and open file descriptors with everything loaded

Run it on a Release build (bench/README.md, "Control plane at scale"):

  cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release
  cmake --build build-release -j2
  VLTAVA_BUILD_DIR=build-release /usr/bin/python3 bench/many_partitions.py

The harness is the integration tests' (tests/integration/vltava_test.py):
its own ZooKeeper, free ports, temporary directories, every process stopped
at the end. Every wait is bounded (--deadline seconds)."""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

import vltava_test as vt  # noqa: E402


def proc_status(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def led_everywhere(cluster, topics, partitions, live_ids):
    """True when every live broker's Metadata shows every partition of
    topics led by a live broker."""
    for b in cluster.brokers:
        if b.id not in live_ids:
            continue
        md = vt.raw_metadata(b.port, topics=topics, timeout=30)
        for name in topics:
            t = md["topics"].get(name)
            if t is None or t["error"] != 0 or len(t["partitions"]) != partitions:
                return False
            if any(p["leader"] not in live_ids for p in t["partitions"].values()):
                return False
    return True


def isr_full(cluster, topics, partitions):
    """True when one broker's Metadata shows every partition with its
    whole replica set in sync."""
    md = vt.raw_metadata(cluster.brokers[0].port, topics=topics, timeout=30)
    for name in topics:
        t = md["topics"].get(name)
        if t is None or len(t["partitions"]) != partitions:
            return False
        if any(len(p["isr"]) != len(p["replicas"]) for p in t["partitions"].values()):
            return False
    return True


def zk_requests():
    """Requests the run's ZooKeeper has received so far (mntr)."""
    port = int(vt.zookeeper().rsplit(":", 1)[1])
    for line in vt.four_letter_word(port, "mntr").decode().splitlines():
        if line.startswith("zk_packets_received"):
            return int(line.split()[1])
    return -1


def timed_wait(what, predicate, deadline_s, interval=0.05):
    start = time.monotonic()
    vt.wait_for(predicate, timeout=deadline_s, what=what, interval=interval)
    return time.monotonic() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--topics", type=int, default=10)
    ap.add_argument("--partitions", type=int, default=1000, help="partitions per topic")
    ap.add_argument("--session-timeout-ms", type=int, default=0,
                    help="zookeeper.session.timeout.ms (0: the broker's default)")
    ap.add_argument("--deadline", type=float, default=300, help="seconds any one wait may take")
    ap.add_argument("--skip", default="", help="comma-separated phases to skip: stop,kill,restart")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    config = {"default.replication.factor": 3, "min.insync.replicas": 2}
    if args.session_timeout_ms:
        config["zookeeper.session.timeout.ms"] = args.session_timeout_ms
    names = ["scale-%02d" % i for i in range(args.topics)]
    total = args.topics * args.partitions
    print("control plane: 3 brokers, %d topics x %d partitions = %d partitions, RF 3 (%d replicas)"
          % (args.topics, args.partitions, total, 3 * total), flush=True)
    with vt.Cluster(brokers=3, name="bench-scale", broker_config=config) as c:
        from confluent_kafka.admin import NewTopic

        all_ids = {b.id for b in c.brokers}
        admin = c.admin()
        zk_before = zk_requests()
        start = time.monotonic()
        futures = admin.create_topics([NewTopic(n, num_partitions=args.partitions, replication_factor=3)
                                       for n in names], operation_timeout=args.deadline,
                                      request_timeout=args.deadline)
        for n in names:
            futures[n].result(timeout=args.deadline)
        answered = time.monotonic() - start
        led = answered + timed_wait("every partition led everywhere",
                                    lambda: led_everywhere(c, names, args.partitions, all_ids),
                                    args.deadline, interval=0.2)
        del admin
        print("create: answered in %.2f s, every partition led everywhere after %.2f s; "
              "%d ZooKeeper requests" % (answered, led, zk_requests() - zk_before), flush=True)
        took = timed_wait("every ISR full", lambda: isr_full(c, names, args.partitions), args.deadline,
                          interval=0.5)
        print("create: every ISR full %.2f s later" % took, flush=True)
        for b in c.brokers:
            print("memory: broker %d RSS %.1f MB, %d open file descriptors"
                  % (b.id, proc_status(b.pid, "VmRSS") / 1024.0, open_fds(b.pid)), flush=True)

        if "stop" not in skip:
            victim = c.broker(c.controller_id())
            zk_before = zk_requests()
            start = time.monotonic()
            victim.kill(vt.signal.SIGTERM)
            live = all_ids - {victim.id}
            took = timed_wait("every partition led by a live broker",
                              lambda: led_everywhere(c, names, args.partitions, live), args.deadline)
            print("stop: controller %d stopped with SIGTERM; every partition led everywhere %.2f s later; "
                  "%d ZooKeeper requests" % (victim.id, took, zk_requests() - zk_before), flush=True)
            vt.wait_for(lambda: not victim.alive(), timeout=args.deadline, what="the broker to exit")
            victim.start()
            victim.wait_ready(timeout=args.deadline)
            timed_wait("every partition led everywhere", lambda: led_everywhere(c, names, args.partitions, all_ids),
                       args.deadline, interval=0.2)
            timed_wait("every ISR full", lambda: isr_full(c, names, args.partitions), args.deadline, interval=0.5)

        if "kill" not in skip:
            # The broker that leads the most partitions, the controller aside.
            md = vt.raw_metadata(c.brokers[0].port, topics=names, timeout=30)
            led = {b.id: 0 for b in c.brokers}
            for t in md["topics"].values():
                for p in t["partitions"].values():
                    led[p["leader"]] = led.get(p["leader"], 0) + 1
            controller = c.controller_id()
            victim = c.broker(max((i for i in all_ids if i != controller), key=lambda i: led[i]))
            print("kill: broker %d leads %d partitions" % (victim.id, led[victim.id]), flush=True)
            zk_before = zk_requests()
            start = time.monotonic()
            victim.kill()
            live = all_ids - {victim.id}
            took = timed_wait("every partition led by a live broker",
                              lambda: led_everywhere(c, names, args.partitions, live), args.deadline)
            print("kill: broker %d killed with kill -9; new leaders everywhere %.2f s later; "
                  "%d ZooKeeper requests" % (victim.id, took, zk_requests() - zk_before), flush=True)
            victim.start()
            victim.wait_ready(timeout=args.deadline)
            timed_wait("every partition led everywhere", lambda: led_everywhere(c, names, args.partitions, all_ids),
                       args.deadline, interval=0.2)
            timed_wait("every ISR full", lambda: isr_full(c, names, args.partitions), args.deadline, interval=0.5)

        if "restart" not in skip:
            for b in c.brokers:
                start = time.monotonic()
                code = b.stop(timeout=args.deadline)
                b.start()
                b.wait_ready(timeout=args.deadline)
                timed_wait("every partition led everywhere",
                           lambda: led_everywhere(c, names, args.partitions, all_ids), args.deadline, interval=0.2)
                print("restart: broker %d (exit %s) stopped, started and every partition led everywhere in %.2f s"
                      % (b.id, code, time.monotonic() - start), flush=True)
        for b in c.brokers:
            print("memory: broker %d RSS %.1f MB, %d open file descriptors (end)"
                  % (b.id, proc_status(b.pid, "VmRSS") / 1024.0, open_fds(b.pid)), flush=True)


if __name__ == "__main__":
    main()
