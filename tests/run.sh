#!/usr/bin/env bash
# The one test command: installs what is missing, configures and builds the
# sanitizer build in build/, starts one ZooKeeper for the whole run, runs every
# ctest suite (CUnit unit suites and Python integration tests), prints the
# results and exits non-zero on any failure.
#
#   tests/run.sh                 everything
#   tests/run.sh -L unit         extra arguments go to ctest (-L, -R, -E, ...)
#
# Environment: VLTAVA_TEST_JOBS (parallel ctest jobs, default 2),
# VLTAVA_BUILD_JOBS (default 2).
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
build="$repo/build"
jobs="${VLTAVA_TEST_JOBS:-2}"
build_jobs="${VLTAVA_BUILD_JOBS:-2}"
start_time=$(date +%s)

log() { printf 'run.sh: %s\n' "$*" >&2; }

exec </dev/null

log "dependencies"
bash "$repo/deploy/install-deps.sh"

log "configure $build"
cmake -S "$repo" -B "$build" -DVLTAVA_SANITIZE=ON >/dev/null
log "build (-j$build_jobs)"
cmake --build "$build" -j"$build_jobs"

# One ZooKeeper (Debian's package) for the whole run; each test works under
# its own chroot.
. "$repo/deploy/zookeeper-lib.sh"
zk_dir="$(mktemp -d "${TMPDIR:-/tmp}/vltava-run-zk.XXXXXX")"
zk_pid=""
cleanup() {
    local status=$?
    if [ -n "$zk_pid" ] && kill -0 "$zk_pid" 2>/dev/null; then
        kill "$zk_pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$zk_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$zk_pid" 2>/dev/null || true
    fi
    rm -rf "$zk_dir"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

zk_port="$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
# A short tick, so tests may use session timeouts down to 1 s.
zk_write_config "$zk_dir" "$zk_port" 500 1000 60000
log "ZooKeeper on 127.0.0.1:$zk_port (data in $zk_dir)"
# --pdeathsig: ZooKeeper dies with this script even when the trap cannot run.
zk_command "$zk_dir/zoo.cfg" -XX:TieredStopAtLevel=1
setpriv --pdeathsig KILL "${ZK_COMMAND[@]}" >"$zk_dir/zookeeper.log" 2>&1 &
zk_pid=$!

deadline=$(($(date +%s) + 60))
until zk_ok "$zk_port"; do
    if ! kill -0 "$zk_pid" 2>/dev/null; then
        log "ZooKeeper exited:"; cat "$zk_dir/zookeeper.log" >&2; exit 1
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
        log "ZooKeeper did not answer ruok within 60s:"; tail -50 "$zk_dir/zookeeper.log" >&2; exit 1
    fi
    sleep 0.2
done

export VLTAVA_TEST_ZK="127.0.0.1:$zk_port"
export VLTAVA_BUILD_DIR="$build"

log "ctest (-j$jobs) $*"
status=0
(cd "$build" && ctest --output-on-failure --no-tests=error -j"$jobs" "$@") || status=$?

elapsed=$(($(date +%s) - start_time))
if [ "$status" -eq 0 ]; then
    log "ALL TESTS PASSED (${elapsed}s)"
else
    log "FAILED: ctest exit $status (${elapsed}s)"
fi
exit "$status"
