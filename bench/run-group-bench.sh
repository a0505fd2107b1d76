#!/usr/bin/env bash
# Consumer-group benchmarks on three local brokers: builds Release in
# build-release, starts ZooKeeper + three brokers with deploy/local-cluster.sh
# (bench/lib.sh: a temporary state dir, ZooKeeper and the brokers on free ports,
# group.initial.rebalance.delay.ms=0, zookeeper.session.timeout.ms=6000),
# runs bench/group_bench's four benchmarks, prints a summary, and stops
# everything it started:
#   1. rebalance: the third member joining a settled group of two, and three
#      members subscribing at once (heartbeat.interval.ms 100, and 3000 =
#      librdkafka's default);
#   2. commit: asynchronous one-partition commits, at most 1000 in flight,
#      synchronous ones, and the acks=all produce reference;
#   3. consume: assign() against subscribe() over the same records;
#   4. failover: the coordinator of a group holding 100,000 commits stopped
#      with SIGTERM, then (restarted, another group) killed with SIGKILL.
#
#   bench/run-group-bench.sh
#   ROUNDS=N COMMITS=N RECORDS=N bench/run-group-bench.sh    other sizes
#
# Results go to stdout and to $OUT (default build-release/group-bench-<date>.txt).
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
. "$repo/bench/lib.sh"
rounds="${ROUNDS:-10}"
commits="${COMMITS:-200000}"
records="${RECORDS:-3000000}"
timeout_s=120

bench_setup group-bench group_bench
cluster_config="group.initial.rebalance.delay.ms=0 zookeeper.session.timeout.ms=6000"
cluster up --brokers 3
bootstrap="$(bench_bootstrap 3)"
bench() {
    timeout $((timeout_s * 6)) "$build/bench/group_bench" -b "$bootstrap" --timeout "$timeout_s" "$@"
}

bench_header | tee "$out"

echo "## rebalance: join, heartbeat 100 ms" | tee -a "$out"
bench --rounds "$rounds" --heartbeat-ms 100 rebalance 2>&1 | tee -a "$out"
echo "## rebalance: cold, heartbeat 100 ms" | tee -a "$out"
bench --rounds "$rounds" --heartbeat-ms 100 --cold rebalance 2>&1 | tee -a "$out"
echo "## rebalance: cold, heartbeat 3000 ms" | tee -a "$out"
bench --rounds $(((rounds + 1) / 2)) --heartbeat-ms 3000 --cold rebalance 2>&1 | tee -a "$out"
echo "## commit" | tee -a "$out"
bench --commits "$commits" --inflight 1000 --sync 5000 commit 2>&1 | tee -a "$out"
echo "## consume" | tee -a "$out"
bench --records "$records" --size 100 --partitions 12 --rounds 3 consume 2>&1 | tee -a "$out"
echo "## failover: SIGTERM" | tee -a "$out"
bench --state "$state" --signal TERM --commits 100000 --partitions 100 failover 2>&1 | tee -a "$out"
cluster up --brokers 3 >/dev/null # restarts the stopped broker
echo "## failover: SIGKILL" | tee -a "$out"
bench --state "$state" --signal KILL --commits 100000 --partitions 100 failover 2>&1 | tee -a "$out"

echo
echo "Summary"
grep '^RESULT' "$out" | sed 's/^RESULT //' | tee -a "$out"
echo "full output: $out"
