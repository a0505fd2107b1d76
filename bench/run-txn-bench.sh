#!/usr/bin/env bash
# Idempotent and transactional produce: builds Release in build-release,
# starts ZooKeeper + BROKERS local brokers (default 1) with
# deploy/local-cluster.sh (bench/lib.sh: a temporary state dir, free ports),
# runs bench/txn_bench (plain, idempotent and transactional producers
# alternated, 100-byte records, 100 records per transaction), and stops
# everything it started.
#
#   bench/run-txn-bench.sh
#   BROKERS=3 RF=3 bench/run-txn-bench.sh        a replicated topic
#   RECORDS=N ROUNDS=N PER_TXN=N bench/run-txn-bench.sh
#
# Results go to stdout and to $OUT (default build-release/txn-bench-<date>.txt).
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
. "$repo/bench/lib.sh"
brokers="${BROKERS:-1}"
rf="${RF:-1}"
records="${RECORDS:-1000000}"
rounds="${ROUNDS:-3}"
per_txn="${PER_TXN:-100}"

bench_setup txn-bench txn_bench
cluster_config=""
cluster up --brokers "$brokers"
bootstrap="$(bench_bootstrap "$brokers")"

bench_header | tee "$out"
timeout 1800 "$build/bench/txn_bench" -b "$bootstrap" -n "$records" -r "$rounds" -T "$per_txn" -p "${PRODUCERS:-1}" \
    -R "$rf" 2>&1 | tee -a "$out"
echo "full output: $out"
