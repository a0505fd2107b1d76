#!/usr/bin/env bash
# A Vltava cluster of local processes: one ZooKeeper (Debian's package) and N
# brokers, broker i listening for Kafka clients on 127.0.0.1:(9091+i).
#
#   deploy/local-cluster.sh up [--brokers N]   start (default 1 broker)
#   deploy/local-cluster.sh status             what runs, and the bootstrap address
#   deploy/local-cluster.sh down [--clean]     stop what "up" started (--clean: delete data)
#
# Everything lives under $VLTAVA_LOCAL_DIR (default <repo>/.vltava-local/):
# zookeeper/ (zoo.cfg, data, log, pid) and broker-<i>/ (properties, data,
# log, pid). Broker configs are deploy/broker.properties with the per-broker
# keys replaced. Binaries come from $VLTAVA_BUILD_DIR (default <repo>/build),
# built there first if missing. ZooKeeper listens on $VLTAVA_ZK_PORT (2181);
# $VLTAVA_BASE_PORT (9091) moves the brokers: broker i on BASE+i, its
# replication listener on BASE+10000+i. $VLTAVA_METRICS_BASE_PORT (unset:
# none) gives broker i a Prometheus endpoint on 127.0.0.1:(METRICS_BASE+i)
# (VLTAVA_METRICS_BASE_PORT=9643: 9644, 9645, ...). $VLTAVA_EXTRA_CONFIG adds broker
# settings to every broker's properties, as space-separated key=value words
# (VLTAVA_EXTRA_CONFIG="group.initial.rebalance.delay.ms=0 log.level=warn");
# they replace the template's value of the same key, and may not name a
# per-broker key.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
. "$repo/deploy/zookeeper-lib.sh"
state="${VLTAVA_LOCAL_DIR:-$repo/.vltava-local}"
build="${VLTAVA_BUILD_DIR:-$repo/build}"
zk_port="${VLTAVA_ZK_PORT:-2181}"
base_port="${VLTAVA_BASE_PORT:-9091}"
metrics_base="${VLTAVA_METRICS_BASE_PORT:-}"
template="$repo/deploy/broker.properties"
chroot=/vltava

die() { printf 'local-cluster: %s\n' "$*" >&2; exit 1; }
say() { printf '%s\n' "$*"; }

# pid_alive FILE PATTERN: the pid in FILE runs and its command line matches
# PATTERN (so a recycled pid is never signalled).
pid_alive() {
    local pid
    [ -f "$1" ] || return 1
    pid="$(cat "$1")"
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$2"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_until SECONDS WHAT COMMAND...: polls COMMAND until it succeeds.
wait_until() {
    local limit=$1 what=$2
    shift 2
    local deadline=$(($(date +%s) + limit))
    until "$@"; do
        [ "$(date +%s)" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}

broker_bin() {
    local b
    for b in "$build/broker/vltava-broker" "$build/vltava-broker"; do
        [ -x "$b" ] && { echo "$b"; return; }
    done
    return 1
}

ensure_built() {
    if ! broker_bin >/dev/null; then
        say "building vltava-broker and vltava in $build"
        bash "$repo/deploy/install-deps.sh"
        [ -f "$build/CMakeCache.txt" ] || cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
        cmake --build "$build" --target vltava-broker vltava -j2 >/dev/null
    fi
    broker_bin >/dev/null || die "vltava-broker not found in $build"
}

start_zookeeper() {
    local dir="$state/zookeeper"
    if pid_alive "$dir/pid" QuorumPeerMain; then
        say "zookeeper already running (pid $(cat "$dir/pid"))"
        return
    fi
    port_open "$zk_port" && die "port $zk_port is taken; set VLTAVA_ZK_PORT"
    # ZooKeeper's own defaults for a 2 s tick: sessions of 4 s to 40 s.
    zk_write_config "$dir" "$zk_port" 2000 4000 40000
    zk_command "$dir/zoo.cfg"
    setsid "${ZK_COMMAND[@]}" >>"$dir/zookeeper.log" 2>&1 </dev/null &
    echo $! >"$dir/pid"
    wait_until 60 zookeeper zk_ok "$zk_port" || die "zookeeper did not start; see $dir/zookeeper.log"
    say "zookeeper 127.0.0.1:$zk_port (pid $(cat "$dir/pid"))"
}

# write_config I N: the template with broker I's keys replaced, for a
# cluster of N brokers (__consumer_offsets and __transaction_state are
# replicated min(N, 3) times, so groups and transactions work on a cluster
# smaller than Kafka's default of 3).
write_config() {
    local i=$1 n=$2 dir="$state/broker-$1"
    local -A own=(
        [broker.id]="$i"
        [listeners]="PLAINTEXT://127.0.0.1:$((base_port + i))"
        [replication.listener]="127.0.0.1:$((base_port + 10000 + i))"
        [zookeeper.connect]="127.0.0.1:$zk_port$chroot"
        [log.dirs]="$dir/data"
        [offsets.topic.replication.factor]="$((n < 3 ? n : 3))"
        [transaction.state.log.replication.factor]="$((n < 3 ? n : 3))"
    )
    local -a own_keys=(broker.id listeners replication.listener zookeeper.connect log.dirs
        offsets.topic.replication.factor transaction.state.log.replication.factor)
    if [ -n "$metrics_base" ]; then
        own[metrics.listener]="127.0.0.1:$((metrics_base + i))"
        own_keys+=(metrics.listener)
    fi
    local -A extra=()
    local -a extra_keys=() words=()
    local word key
    # Split on white space only: a value such as "*" is no file pattern.
    read -r -a words <<<"${VLTAVA_EXTRA_CONFIG:-}"
    for word in "${words[@]}"; do
        [[ "$word" == ?*=* ]] || die "VLTAVA_EXTRA_CONFIG: '$word' is not key=value"
        key="${word%%=*}"
        [ -z "${own[$key]+x}" ] || die "VLTAVA_EXTRA_CONFIG: $key is set per broker"
        [ -n "${extra[$key]+x}" ] || extra_keys+=("$key")
        extra[$key]="${word#*=}"
    done
    {
        printf '# written by deploy/local-cluster.sh from deploy/broker.properties\n'
        while IFS= read -r line; do
            key="${line%%=*}"
            if [[ "$line" != \#* && "$line" == *=* &&
                (-n "${own[$key]+x}" || -n "${extra[$key]+x}") ]]; then
                continue
            fi
            printf '%s\n' "$line"
        done <"$template"
        for key in "${own_keys[@]}"; do
            printf '%s=%s\n' "$key" "${own[$key]}"
        done
        for key in "${extra_keys[@]}"; do
            printf '%s=%s\n' "$key" "${extra[$key]}"
        done
    } >"$dir/broker.properties"
}

start_broker() {
    local i=$1 n=$2 dir="$state/broker-$1" bin
    bin="$(broker_bin)"
    if pid_alive "$dir/pid" vltava-broker; then
        say "broker $i already running (pid $(cat "$dir/pid"))"
        return
    fi
    port_open $((base_port + i)) && die "port $((base_port + i)) is taken"
    mkdir -p "$dir/data"
    write_config "$i" "$n"
    setsid "$bin" --config "$dir/broker.properties" >>"$dir/broker.log" 2>&1 </dev/null &
    echo $! >"$dir/pid"
}

broker_dirs() {
    local d
    for d in "$state"/broker-*; do
        [ -d "$d" ] && echo "$d"
    done | sort -t- -k2 -n
}

# Metadata as seen by broker PORT lists COUNT brokers.
cluster_formed() {
    PYTHONPATH="$repo/tests/integration" /usr/bin/python3 -c '
import sys, vltava_test as vt
md = vt.raw_metadata(int(sys.argv[1]), topics=[], timeout=2)
sys.exit(0 if len(md["brokers"]) >= int(sys.argv[2]) else 1)' "$1" "$2" 2>/dev/null
}

bootstrap() {
    local d list=""
    for d in $(broker_dirs); do
        pid_alive "$d/pid" vltava-broker || continue
        list="$list${list:+,}127.0.0.1:$((base_port + ${d##*-}))"
    done
    echo "$list"
}

cmd_up() {
    local n=1
    while [ $# -gt 0 ]; do
        case "$1" in
        --brokers) n="${2:?--brokers needs a number}"; shift 2 ;;
        --brokers=*) n="${1#*=}"; shift ;;
        *) die "unknown option $1 (usage: up [--brokers N])" ;;
        esac
    done
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "--brokers must be a positive number"
    [[ "$metrics_base" =~ ^[0-9]*$ ]] || die "VLTAVA_METRICS_BASE_PORT must be a port number"
    ensure_built
    mkdir -p "$state"
    printf 'zk_port=%s\nbase_port=%s\n' "$zk_port" "$base_port" >"$state/ports"
    start_zookeeper
    local i
    for i in $(seq 1 "$n"); do
        start_broker "$i" "$n"
    done
    for i in $(seq 1 "$n"); do
        local dir="$state/broker-$i"
        if ! wait_until 90 "broker $i" cluster_formed $((base_port + i)) "$n"; then
            tail -30 "$dir/broker.log" >&2 || true
            die "broker $i did not join a cluster of $n; see $dir/broker.log"
        fi
        say "broker $i 127.0.0.1:$((base_port + i)) (pid $(cat "$dir/pid"))${metrics_base:+, metrics http://127.0.0.1:$((metrics_base + i))/metrics}"
    done
    say "bootstrap: $(bootstrap)"
}

stop_pid() {
    local file=$1 pattern=$2 what=$3
    if pid_alive "$file" "$pattern"; then
        local pid
        pid="$(cat "$file")"
        kill -TERM "$pid" 2>/dev/null || true
        if ! wait_until 30 "$what" bash -c "! kill -0 $pid 2>/dev/null"; then
            say "$what (pid $pid) ignored SIGTERM; killing"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        say "stopped $what (pid $pid)"
    fi
    rm -f "$file"
}

cmd_down() {
    local clean=0
    [ "${1:-}" = "--clean" ] && clean=1
    [ -d "$state" ] || { say "nothing to stop"; return; }
    local d
    for d in $(broker_dirs); do
        stop_pid "$d/pid" vltava-broker "broker ${d##*-}"
    done
    stop_pid "$state/zookeeper/pid" QuorumPeerMain zookeeper
    if [ "$clean" -eq 1 ]; then
        rm -rf "$state"
        say "removed $state"
    fi
}

cmd_status() {
    local up=0 d
    if pid_alive "$state/zookeeper/pid" QuorumPeerMain; then
        say "zookeeper  127.0.0.1:$zk_port  pid $(cat "$state/zookeeper/pid")  $(zk_ok "$zk_port" && echo ok || echo 'not answering')"
        up=1
    else
        say "zookeeper  stopped"
    fi
    for d in $(broker_dirs); do
        local i=${d##*-}
        if pid_alive "$d/pid" vltava-broker; then
            say "broker $i   127.0.0.1:$((base_port + i))  pid $(cat "$d/pid")  $(port_open $((base_port + i)) && echo listening || echo 'not listening')"
            up=1
        else
            say "broker $i   stopped"
        fi
    done
    [ "$up" -eq 1 ] && say "bootstrap: $(bootstrap)"
    [ "$up" -eq 1 ]
}

# status and down use the ports "up" used.
if [ "${1:-}" != up ] && [ -f "$state/ports" ]; then
    # shellcheck disable=SC1091
    . "$state/ports"
fi

case "${1:-}" in
up) shift; cmd_up "$@" ;;
down) shift; cmd_down "$@" ;;
status) cmd_status ;;
*) die "usage: $0 up [--brokers N] | down [--clean] | status" ;;
esac
