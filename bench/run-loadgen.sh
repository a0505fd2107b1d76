#!/usr/bin/env bash
# Producer/consumer load against one local broker: builds Release in
# build-release, starts ZooKeeper + one broker with deploy/local-cluster.sh
# (bench/lib.sh: a temporary state dir, ZooKeeper and the broker on free
# ports), runs loadgen with 100-byte and 1 KiB records at acks=1 and
# acks=all flat out, 100-byte records with the producer alone (no latency
# consumer beside it), 100-byte records paced at RATE records/s (latency
# below saturation), prints a summary table, and stops everything it started.
#
#   bench/run-loadgen.sh                  the standard runs
#   RECORDS_100=N RECORDS_1K=N bench/run-loadgen.sh   other record counts
#   LOADGEN_ARGS="--linger-ms 10" ...     extra loadgen options for every run
#
# Results go to stdout and to $OUT (default build-release/loadgen-<date>.txt).
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
. "$repo/bench/lib.sh"
records_100="${RECORDS_100:-3000000}"
records_1k="${RECORDS_1K:-1000000}"
rate="${RATE:-100000}"
extra_args=(${LOADGEN_ARGS:-})

bench_setup loadgen loadgen
cluster up --brokers 1
bootstrap="$(bench_bootstrap 1)"

bench_header | tee "$out"

for size in 100 1024; do
    records=$records_100
    [ "$size" -eq 1024 ] && records=$records_1k
    for acks in 1 all; do
        echo "## size=$size acks=$acks" | tee -a "$out"
        "$build/bench/loadgen" -b "$bootstrap" -n "$records" -s "$size" --acks "$acks" \
            "${extra_args[@]}" 2>&1 | tee -a "$out"
    done
done
echo "## size=100 acks=1 producer alone (no concurrent latency consumer)" | tee -a "$out"
"$build/bench/loadgen" -b "$bootstrap" -n "$records_100" -s 100 --acks 1 --no-latency \
    "${extra_args[@]}" 2>&1 | tee -a "$out"
echo "## size=100 acks=all paced at $rate records/s" | tee -a "$out"
"$build/bench/loadgen" -b "$bootstrap" -n $((rate * 10)) -s 100 --acks all --rate "$rate" \
    "${extra_args[@]}" 2>&1 | tee -a "$out"

echo
echo "Summary (records/s; MB/s = 10^6 payload bytes/s; latency: concurrent consumer during produce)"
printf '%-6s %-5s %-8s %12s %9s %12s %9s %9s %9s %9s %12s\n' size acks rate produce/s MB/s \
    consume/s MB/s p50_ms p99_ms p99.9_ms loopback_MB/s
grep '^RESULT' "$out" | sed 's/[a-z_0-9]*=//g' | while read -r _ size acks _ prps pmb crps cmb p50 p99 p999 loop prate _idempotent; do
    printf '%-6s %-5s %-8s %12s %9s %12s %9s %9s %9s %9s %12s\n' "$size" "$acks" "$prate" "$prps" \
        "$pmb" "$crps" "$cmb" "$p50" "$p99" "$p999" "$loop"
done | tee -a "$out"
echo "full output: $out"
