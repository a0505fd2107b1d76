#!/usr/bin/env bash
# The fault suite: ZooKeeper and three brokers, each in its own network
# namespace, an acks=all workload and a nemesis, then the checker.
#
#   tests/fault/run.sh --rounds N [--faults kill,pause,partition,zk-restart,rolling,netem]
#                      [--partitions P] [--rate R] [--seed S] [--workdir DIR]
#
# Needs root (namespaces, veth, iptables); exits 77 (skipped) without it.
# Binaries come from $VLTAVA_BUILD_DIR (default <repo>/build), configured
# as the sanitizer build and built there first if vltava-broker is missing
# (so sanitizer reports in the broker logs are checked). Exit status: 0 no
# violation, 1 violation found, 2 suite error, 77 skipped, 130 interrupted.
# See tests/fault/README.md.
set -euo pipefail

repo="$(cd "$(dirname "$0")/../.." && pwd)"
build="${VLTAVA_BUILD_DIR:-$repo/build}"
here="$repo/tests/fault"

if [ "$(id -u)" -ne 0 ]; then
    echo "fault suite SKIPPED: not root (network namespaces, veth and iptables need root)"
    exit 77
fi
if ! command -v ip >/dev/null || ! ip netns list >/dev/null 2>&1; then
    echo "fault suite SKIPPED: no 'ip netns' (iproute2) support here"
    exit 77
fi

case " $* " in
*" -h "* | *" --help "*) exec /usr/bin/python3 "$here/fault.py" --help ;;
esac

bash "$repo/deploy/install-deps.sh"
if [ ! -x "$build/broker/vltava-broker" ]; then
    echo "fault: building vltava-broker in $build (sanitizer build)" >&2
    [ -f "$build/CMakeCache.txt" ] || cmake -S "$repo" -B "$build" -DVLTAVA_SANITIZE=ON >/dev/null
    cmake --build "$build" --target vltava-broker -j"${VLTAVA_BUILD_JOBS:-2}" >/dev/null
fi

# The run's name: every namespace is vf<run id>-*. Whatever happens to the
# orchestrator (even kill -9), this trap removes them and what runs in them.
run_id="$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
cleanup() {
    /usr/bin/python3 "$here/netlab.py" cleanup "vf$run_id" || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

status=0
VLTAVA_BUILD_DIR="$build" /usr/bin/python3 "$here/fault.py" --run-id "$run_id" --build-dir "$build" "$@" || status=$?
exit "$status"
