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
# its own chroot. zookeeper.jar's manifest Class-Path names its dependencies
# (jute, netty, jetty, metrics, slf4j-api); slf4j-simple is its logger.
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
mkdir -p "$zk_dir/data"
cat >"$zk_dir/zoo.cfg" <<EOF
tickTime=500
initLimit=10
syncLimit=5
dataDir=$zk_dir/data
clientPort=$zk_port
clientPortAddress=127.0.0.1
admin.enableServer=false
maxClientCnxns=0
minSessionTimeout=1000
maxSessionTimeout=60000
4lw.commands.whitelist=ruok,srvr,stat,mntr
EOF
log "ZooKeeper on 127.0.0.1:$zk_port (data in $zk_dir)"
# --pdeathsig: ZooKeeper dies with this script even when the trap cannot run.
setpriv --pdeathsig KILL java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -Dzookeeper.admin.enableServer=false \
    -cp /usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar \
    org.apache.zookeeper.server.quorum.QuorumPeerMain "$zk_dir/zoo.cfg" \
    >"$zk_dir/zookeeper.log" 2>&1 &
zk_pid=$!

zk_ok() {
    local reply
    reply="$(timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$zk_port && printf ruok >&3 && cat <&3" 2>/dev/null)" || return 1
    [ "$reply" = imok ]
}
deadline=$(($(date +%s) + 60))
until zk_ok; do
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
