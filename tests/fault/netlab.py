"""The suite's network: one namespace per node (ZooKeeper, each broker), each
joined by a veth pair to a bridge in a hub namespace, where the orchestrator
and the clients live. Nothing is made in the root namespace, so two runs
(a CI clone and a developer's) never collide even on the same subnet; names
carry the run's random suffix, and cleanup() removes by those names and
kills every process left in them by pid.

Faults are made inside a node's namespace: iptables DROP rules (partitions,
one-way too) and tc netem on its veth (delay, loss) where the kernel has it.
"""

import ctypes
import os
import subprocess
import time

SUBNET = "198.18.0"  # RFC 2544's benchmarking range: never routed, only inside the hub
HUB_ADDR = SUBNET + ".1"
CLONE_NEWNET = 0x40000000
NETNS_DIR = "/var/run/netns"


def run(*args, check=True, ns=None, timeout=30):
    """Runs a command (in namespace ns when given); returns its stdout."""
    cmd = (["ip", "netns", "exec", ns] if ns else []) + [str(a) for a in args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise RuntimeError("%s exited %d: %s" % (" ".join(cmd), proc.returncode, proc.stderr.strip()))
    return proc.stdout


def support_problem():
    """None when this process may make namespaces and firewall them, else
    why not (the suite is then skipped)."""
    if os.geteuid() != 0:
        return "not root (network namespaces need CAP_SYS_ADMIN and CAP_NET_ADMIN)"
    for tool in ("ip", "iptables"):
        if subprocess.run(["sh", "-c", "command -v %s" % tool], capture_output=True).returncode != 0:
            return "%s is not installed" % tool
    name = "vfprobe%d" % os.getpid()
    try:
        run("ip", "netns", "add", name)
    except (RuntimeError, OSError) as e:
        return "cannot create a network namespace: %s" % e
    try:
        run("ip", "link", "set", "lo", "up", ns=name)
        run("ip", "link", "add", "vfbr", "type", "bridge", ns=name)
        run("ip", "link", "add", "vfa", "type", "veth", "peer", "name", "vfb", ns=name)
        run("iptables", "-A", "INPUT", "-s", "127.0.0.2", "-j", "DROP", ns=name)
    except RuntimeError as e:
        return "no bridge, veth or iptables in a network namespace: %s" % e
    finally:
        run("ip", "netns", "del", name, check=False)
    return None


def netem_supported():
    """True when the kernel has sch_netem (delayed and lossy links)."""
    name = "vfnetem%d" % os.getpid()
    try:
        run("ip", "netns", "add", name)
        return subprocess.run(["ip", "netns", "exec", name, "tc", "qdisc", "add", "dev", "lo", "root",
                               "netem", "delay", "1ms"], capture_output=True).returncode == 0
    except (RuntimeError, OSError):
        return False
    finally:
        run("ip", "netns", "del", name, check=False)


def enter_namespace(name):
    """Moves this process's (only) thread into namespace `name`: its own
    sockets and every child it starts are then on the hub's bridge. Call
    before starting any thread; threads started later inherit it."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(os.path.join(NETNS_DIR, name), os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, "setns(%s): %s" % (name, os.strerror(err)))
    finally:
        os.close(fd)


class Lab:
    """The namespaces of one run. nodes: names such as "zk", "b1" -> their
    addresses on the bridge."""

    def __init__(self, run_id, node_names):
        assert len(run_id) <= 6 and run_id.isalnum(), run_id
        assert len(node_names) < 200
        self.run_id = run_id
        self.prefix = "vf" + run_id
        self.hub = self.prefix + "-hub"
        self.bridge = self.prefix + "br"
        self.nodes = {n: "%s.%d" % (SUBNET, 10 + i) for i, n in enumerate(node_names)}
        self.created = []  # namespaces made, for cleanup

    def ns(self, node):
        return "%s-%s" % (self.prefix, node)

    def veth(self, node):
        """The hub-side end of node's veth pair (interface names <= 15 chars)."""
        return "%sh%s" % (self.prefix, node)[:15]

    def create(self):
        run("ip", "netns", "add", self.hub)
        self.created.append(self.hub)
        run("ip", "link", "set", "lo", "up", ns=self.hub)
        run("ip", "link", "add", self.bridge, "type", "bridge", ns=self.hub)
        run("ip", "addr", "add", HUB_ADDR + "/24", "dev", self.bridge, ns=self.hub)
        run("ip", "link", "set", self.bridge, "up", ns=self.hub)
        for node, addr in self.nodes.items():
            ns = self.ns(node)
            run("ip", "netns", "add", ns)
            self.created.append(ns)
            run("ip", "link", "set", "lo", "up", ns=ns)
            # Made inside the node's namespace, the pair's far end moved to
            # the hub: nothing touches the root namespace.
            run("ip", "link", "add", "eth0", "type", "veth", "peer", "name", self.veth(node), "netns", self.hub,
                ns=ns)
            run("ip", "addr", "add", addr + "/24", "dev", "eth0", ns=ns)
            run("ip", "link", "set", "eth0", "up", ns=ns)
            run("ip", "link", "set", self.veth(node), "master", self.bridge, ns=self.hub)
            run("ip", "link", "set", self.veth(node), "up", ns=self.hub)

    def exec_prefix(self, node):
        """Command prefix that runs a program in node's namespace."""
        return ["ip", "netns", "exec", self.ns(node)]

    # -- faults

    def drop(self, node, peers, incoming=True, outgoing=True):
        """Cuts node off from peers (node names): packets from them are
        dropped when incoming, packets to them when outgoing."""
        for peer in peers:
            addr = self.nodes.get(peer, peer)
            if incoming:
                run("iptables", "-w", "-A", "INPUT", "-s", addr, "-j", "DROP", ns=self.ns(node))
            if outgoing:
                run("iptables", "-w", "-A", "OUTPUT", "-d", addr, "-j", "DROP", ns=self.ns(node))

    def netem(self, node, spec):
        """tc netem on node's link (spec: e.g. ["delay", "50ms", "20ms", "loss", "5%"])."""
        run("tc", "qdisc", "replace", "dev", "eth0", "root", "netem", *spec, ns=self.ns(node))

    def heal(self, node):
        run("iptables", "-w", "-F", ns=self.ns(node))
        run("tc", "qdisc", "del", "dev", "eth0", "root", check=False, ns=self.ns(node))

    def heal_all(self):
        for node in self.nodes:
            self.heal(node)

    # -- cleanup

    def cleanup(self):
        """Kills every process still in the run's namespaces (by pid) and
        deletes the namespaces (the veth pairs and the bridge go with them)."""
        cleanup_run(self.prefix)


def run_namespaces(prefix):
    out = run("ip", "netns", "list", check=False)
    return [line.split()[0] for line in out.splitlines() if line.split() and line.split()[0].startswith(prefix + "-")]


def cleanup_run(prefix):
    """Removes every namespace named prefix-* and the processes in them.
    Also used by run.sh's exit trap, so it works without the Lab object."""
    names = run_namespaces(prefix)
    for sig in (9,):
        for name in names:
            for pid in run("ip", "netns", "pids", name, check=False).split():
                if int(pid) != os.getpid():
                    try:
                        os.kill(int(pid), sig)
                    except ProcessLookupError:
                        pass
    deadline = time.monotonic() + 10
    for name in names:
        while run("ip", "netns", "pids", name, check=False).split() and time.monotonic() < deadline:
            time.sleep(0.1)
    for name in names:
        run("ip", "netns", "del", name, check=False)


if __name__ == "__main__":
    import sys

    # python3 netlab.py cleanup <prefix>: run.sh's last line of defence.
    if len(sys.argv) == 3 and sys.argv[1] == "cleanup" and sys.argv[2].startswith("vf"):
        cleanup_run(sys.argv[2])
    else:
        sys.exit("usage: netlab.py cleanup vf<run-id>")
