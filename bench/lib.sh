# Sourced by bench/run-*.sh: builds Release and runs a throwaway local
# cluster (deploy/local-cluster.sh) on free ports, stopped and deleted when
# the script exits.
#
#   bench_setup NAME TARGET...  installs the dependencies, configures
#                               $build (default <repo>/build-release) if it
#                               has no CMakeCache.txt, builds vltava-broker
#                               and TARGET..., picks the ports, makes the
#                               state dir $state, and names $out (default
#                               $build/NAME-<date>.txt)
#   cluster ARGS...             deploy/local-cluster.sh ARGS on $state, with
#                               ZooKeeper on $zk_port, broker i on
#                               127.0.0.1:$((base_port + i)), and the words of
#                               $cluster_config as VLTAVA_EXTRA_CONFIG
#   bench_bootstrap N           the bootstrap list of brokers 1..N
#   bench_header                the machine, for the top of $out
#
# The caller sets `set -euo pipefail` and $repo before sourcing this file.

build="${VLTAVA_BUILD_DIR:-$repo/build-release}"
cluster_config=""

# ZooKeeper's port, and a base port B with B+1..B+3 (clients) and
# B+10001..B+10003 (replication) free: "ZK B".
bench_free_ports() {
    /usr/bin/python3 - <<'PY'
import random, socket
def free(port):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()
s = socket.socket(); s.bind(("127.0.0.1", 0)); zk = s.getsockname()[1]; s.close()
for _ in range(200):
    base = random.randrange(20000, 29000, 10)
    if all(free(base + d) for d in (1, 2, 3, 10001, 10002, 10003)) and zk not in range(base, base + 10004):
        print(zk, base)
        break
else:
    raise SystemExit("no free ports")
PY
}

cluster() {
    VLTAVA_LOCAL_DIR="$state" VLTAVA_BUILD_DIR="$build" VLTAVA_ZK_PORT="$zk_port" \
        VLTAVA_BASE_PORT="$base_port" VLTAVA_EXTRA_CONFIG="$cluster_config" \
        timeout 180 bash "$repo/deploy/local-cluster.sh" "$@"
}

bench_cleanup() {
    cluster down --clean >/dev/null 2>&1 || true
    rm -rf "$state"
}

bench_setup() {
    local name=$1
    shift
    bash "$repo/deploy/install-deps.sh"
    if [ ! -f "$build/CMakeCache.txt" ]; then
        cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
    fi
    cmake --build "$build" --target vltava-broker "$@" -j2 >/dev/null
    read -r zk_port base_port < <(bench_free_ports) || true
    if [ -z "${base_port:-}" ]; then
        echo "bench: no free ports for the cluster" >&2
        exit 1
    fi
    state="$(mktemp -d "/tmp/vltava-$name.XXXXXX")"
    trap bench_cleanup EXIT
    out="${OUT:-$build/$name-$(date -u +%Y%m%dT%H%M%SZ).txt}"
}

bench_bootstrap() {
    local i list=""
    for i in $(seq 1 "$1"); do
        list="$list${list:+,}127.0.0.1:$((base_port + i))"
    done
    echo "$list"
}

bench_header() {
    echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
}
