#!/usr/bin/env bash
# Producer/consumer load against one local broker: builds Release in
# build-release, starts ZooKeeper + one broker with deploy/local-cluster.sh
# (in a temporary state dir, ZooKeeper on a free port, the broker on
# 127.0.0.1:9092), runs loadgen with 100-byte and 1 KiB records at acks=1 and
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
build="${VLTAVA_BUILD_DIR:-$repo/build-release}"
records_100="${RECORDS_100:-3000000}"
records_1k="${RECORDS_1K:-1000000}"
rate="${RATE:-100000}"
extra_args=(${LOADGEN_ARGS:-})

bash "$repo/deploy/install-deps.sh"
if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$build" --target vltava-broker loadgen -j2 >/dev/null

state="$(mktemp -d /tmp/vltava-loadgen.XXXXXX)"
zk_port="$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
out="${OUT:-$build/loadgen-$(date -u +%Y%m%dT%H%M%SZ).txt}"

cluster() {
    VLTAVA_LOCAL_DIR="$state" VLTAVA_BUILD_DIR="$build" VLTAVA_ZK_PORT="$zk_port" \
        bash "$repo/deploy/local-cluster.sh" "$@"
}
cleanup() {
    cluster down --clean >/dev/null 2>&1 || true
    rm -rf "$state"
}
trap cleanup EXIT

cluster up --brokers 1
bootstrap=127.0.0.1:9092

{
    echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -r)"
    echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
} | tee "$out"

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
grep '^RESULT' "$out" | sed 's/[a-z_0-9]*=//g' | while read -r _ size acks _ prps pmb crps cmb p50 p99 p999 loop prate; do
    printf '%-6s %-5s %-8s %12s %9s %12s %9s %9s %9s %9s %12s\n' "$size" "$acks" "$prate" "$prps" \
        "$pmb" "$crps" "$cmb" "$p50" "$p99" "$p999" "$loop"
done | tee -a "$out"
echo "full output: $out"
