# Sourced by tests/run.sh and deploy/local-cluster.sh: how to run Debian's
# ZooKeeper package as a standalone server on loopback. Callers own the
# process (its lifetime, pid file and log); this file only knows ZooKeeper.

# zk_write_config DIR PORT TICK_MS MIN_SESSION_MS MAX_SESSION_MS
# Writes DIR/zoo.cfg with its data under DIR/data.
zk_write_config() {
    local dir=$1 port=$2 tick=$3 min_session=$4 max_session=$5
    mkdir -p "$dir/data"
    cat >"$dir/zoo.cfg" <<CFG
tickTime=$tick
dataDir=$dir/data
clientPort=$port
clientPortAddress=127.0.0.1
admin.enableServer=false
maxClientCnxns=0
minSessionTimeout=$min_session
maxSessionTimeout=$max_session
4lw.commands.whitelist=ruok,srvr,stat,mntr
CFG
}

# zk_command CFG [JVM_OPTION ...]: sets the array ZK_COMMAND to the server's
# command line. zookeeper.jar's manifest Class-Path names its dependencies
# (jute, netty, jetty, metrics, slf4j-api); slf4j-simple is its logger.
zk_command() {
    local cfg=$1
    shift
    ZK_COMMAND=(java -Xmx256m -XX:+UseSerialGC "$@" -Dorg.slf4j.simpleLogger.defaultLogLevel=warn
        -cp /usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar
        org.apache.zookeeper.server.quorum.QuorumPeerMain "$cfg")
}

# zk_ok PORT: true when the server on 127.0.0.1:PORT answers ruok.
zk_ok() {
    local reply
    reply="$(timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1 && printf ruok >&3 && cat <&3" 2>/dev/null)" || return 1
    [ "$reply" = imok ]
}
