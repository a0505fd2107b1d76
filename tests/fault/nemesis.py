"""The nemesis: one fault per round, then heal. Every fault returns the
event that goes into the history: {"k":"fault","kind":..., "variant":...,
"target":..., "t":start, "healed":time the fault was lifted}.

Kinds (run.sh --faults):
  kill        kill -9 of a partition leader or the controller, restarted
              after 1-5 s;
  pause       SIGSTOP of a leader or the controller for longer than the
              ZooKeeper session timeout, then SIGCONT;
  partition   a broker cut off (iptables DROP in its namespace) from the
              other brokers and ZooKeeper ("isolate"), from the brokers only
              ("brokers": replication only, all still reach ZooKeeper), from
              ZooKeeper only ("zk"), or receiving nothing from anyone while
              its own packets still leave ("one-way"), for longer than the
              session timeout;
  zk-restart  ZooKeeper killed (-9) and restarted after 2-10 s;
  rolling     every broker stopped (SIGTERM) and restarted in turn, each
              after the previous one is back in every ISR;
  partition:<variant>  only that variant of partition;
  netem       a broker's link delayed (50 ms +- 20 ms) and lossy (5 %) for
              10 s; only where the kernel has sch_netem.
"""

import time

KINDS = ("kill", "pause", "partition", "zk-restart", "rolling", "netem")
DEFAULT_KINDS = ("kill", "pause", "partition", "zk-restart", "rolling")
PARTITION_VARIANTS = ("isolate", "brokers", "zk", "one-way")


def valid(fault):
    kind, sep, variant = fault.partition(":")
    if sep:
        return kind == "partition" and variant in PARTITION_VARIANTS
    return kind in KINDS


class Nemesis:
    def __init__(self, lab, zk, brokers, view, topics, rng, session_timeout_s, wait_full_isr, log,
                 partition_hold_s=None):
        self.lab = lab
        self.zk = zk
        self.brokers = brokers  # id -> Broker
        self.view = view
        self.topics = topics
        self.rng = rng
        self.session_s = session_timeout_s
        # Longer than the session timeout by more than the time the client
        # library takes to notice (2/3 of it), so sessions do expire.
        self.partition_hold_s = partition_hold_s or session_timeout_s + 8
        self.wait_full_isr = wait_full_isr  # callable(timeout) -> bool
        self.log = log
        self.counts = {}  # kind -> rounds so far, to rotate variants and targets

    def _turn(self, kind):
        n = self.counts.get(kind, 0)
        self.counts[kind] = n + 1
        return n

    def _target(self, turn):
        """A leader of a random workload partition (even turns) or the
        controller (odd turns), as ZooKeeper has them; any broker when
        ZooKeeper cannot say."""
        if turn % 2 == 1:
            c = self.view.controller()
            if c in self.brokers:
                return c, "controller"
        topic = self.rng.choice(self.topics)
        leaders = [b for b in self.view.leaders(topic).values() if b in self.brokers]
        if leaders:
            return self.rng.choice(leaders), "leader"
        return self.rng.choice(sorted(self.brokers)), "any"

    def inject(self, fault):
        """fault: a kind, or "partition:<variant>" for one variant only."""
        kind, _, variant = fault.partition(":")
        turn = self._turn(fault)
        if variant:
            turn = PARTITION_VARIANTS.index(variant) + len(PARTITION_VARIANTS) * turn
        return getattr(self, "_" + kind.replace("-", "_"))(turn)

    def _event(self, kind, variant, target, start, **extra):
        ev = {"k": "fault", "kind": kind, "variant": variant, "target": target, "t": start, "healed": time.time()}
        ev.update(extra)
        return ev

    def _kill(self, turn):
        target, role = self._target(turn)
        b = self.brokers[target]
        session = self.view.session_of(target)
        start = time.time()
        self.log("kill -9 broker %d (%s)" % (target, role))
        b.note("kill -9 (%s)" % role)
        b.kill()
        down = self.rng.uniform(1, 5)
        time.sleep(down)
        b.start()
        # Its old registration outlives it by up to a session timeout: the
        # round is over only once the new process has registered.
        back = self.view.wait_new_session(target, session, 120)
        return self._event("kill", role, target, start, down_s=round(down, 1), registered=bool(back))

    def _pause(self, turn):
        target, role = self._target(turn)
        b = self.brokers[target]
        hold = self.session_s + 2
        start = time.time()
        self.log("SIGSTOP broker %d (%s) for %.0f s" % (target, role, hold))
        b.note("SIGSTOP (%s) for %.0f s" % (role, hold))
        b.pause()
        time.sleep(hold)
        b.resume()
        b.note("SIGCONT")
        return self._event("pause", role, target, start, hold_s=hold)

    def _partition(self, turn):
        variant = PARTITION_VARIANTS[turn % len(PARTITION_VARIANTS)]
        target, role = self._target(turn // len(PARTITION_VARIANTS))
        node = "b%d" % target
        others = ["b%d" % i for i in self.brokers if i != target]
        hold = self.partition_hold_s
        start = time.time()
        self.log("partition %s: broker %d (%s) for %.0f s" % (variant, target, role, hold))
        self.brokers[target].note("partition %s for %.0f s" % (variant, hold))
        if variant == "isolate":
            self.lab.drop(node, others + ["zk"])
        elif variant == "brokers":
            self.lab.drop(node, others)
        elif variant == "zk":
            self.lab.drop(node, ["zk"])
        else:
            self.lab.drop(node, others + ["zk"], incoming=True, outgoing=False)
        time.sleep(hold)
        self.lab.heal(node)
        self.brokers[target].note("partition healed")
        return self._event("partition", variant, target, start, role=role, hold_s=hold)

    def _zk_restart(self, turn):
        down = self.rng.uniform(2, 10)
        start = time.time()
        self.log("kill -9 ZooKeeper, down %.1f s" % down)
        self.zk.note("kill -9")
        self.zk.kill()
        time.sleep(down)
        self.zk.start()
        ok = _wait(self.zk.ok, 60)
        return self._event("zk-restart", "kill", "zk", start, down_s=round(down, 1), zk_back=ok)

    def _rolling(self, turn):
        start = time.time()
        slow_stop, no_isr = [], []
        for i in sorted(self.brokers):
            self.log("rolling: restart broker %d" % i)
            b = self.brokers[i]
            session = self.view.session_of(i)
            b.note("rolling restart: SIGTERM")
            if not b.stop(60):
                b.note("did not exit within 60 s of SIGTERM; killed")
                slow_stop.append(i)
            b.start()
            if not self.view.wait_new_session(i, session, 120) or not self.wait_full_isr(120):
                no_isr.append(i)
        return self._event("rolling", "sigterm", "all", start, slow_stop=slow_stop, no_full_isr=no_isr)

    def _netem(self, turn):
        target, role = self._target(turn)
        hold = 10
        start = time.time()
        self.log("netem: broker %d (%s) delay 50ms+-20ms loss 5%% for %d s" % (target, role, hold))
        self.lab.netem("b%d" % target, ["delay", "50ms", "20ms", "loss", "5%"])
        time.sleep(hold)
        self.lab.heal("b%d" % target)
        return self._event("netem", "delay+loss", target, start, role=role, hold_s=hold)


def _wait(predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False
