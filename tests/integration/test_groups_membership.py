"""Group membership with librdkafka (confluent-kafka 2.x, one process per
consumer, clients/ck_consumer.py):

- static membership: a member with group.instance.id killed (-9: no
  LeaveGroup) and restarted within session.timeout.ms gets its old
  partitions back without a rebalance: the other member sees no revocation
  or assignment, and librdkafka's rebalance count does not move;
- session timeout: a member that stops heartbeating (SIGSTOP) is removed
  after session.timeout.ms and the others get its partitions.

Time: every wait polls against a deadline; ctest's TIMEOUT bounds the file."""

import time
import unittest

import group_helpers as gh
import vltava_test as vt

PARTITIONS = 12
REBALANCE_EVENTS = ("assign", "revoke", "lost")


class MembershipTest(gh.GroupTest):
    def rebalance_count(self, proc):
        e = proc.last("cgrp")
        return e["rebalance_cnt"] if e else None

    def test_static_member_restart_causes_no_rebalance(self):
        c = self.cluster
        topic, group = "static", "static-group"
        c.create_topic(topic, partitions=PARTITIONS, rf=3)
        session_ms = 30000
        kw = dict(strategy="range", session_timeout_ms=session_ms, stats=True)
        members = {
            "s1": self.consumer(group, topic, "static-s1", instance_id="s1", **kw),
            "s2": self.consumer(group, topic, "static-s2", instance_id="s2", **kw),
        }
        gh.wait_balanced(list(members.values()), [6, 6], topic, PARTITIONS, timeout=90)
        batch = gh.produce(c.bootstrap, topic, "a", 0, 600, PARTITIONS)
        gh.wait_consumed(list(members.values()), batch, timeout=60)
        everyone = list(members.values())

        # Restart each member in turn (the first one to join is likely the
        # group's leader, the second a follower).
        for n, (victim, other) in enumerate((("s1", "s2"), ("s2", "s1")), start=1):
            old = members[victim]
            keeper = members[other]
            before = gh.assignment(old)
            keeper_before = gh.assignment(keeper)
            # Statistics taken after the keeper's last assignment: an older
            # one (they come every 500 ms) still counts the rebalance before.
            assigned_at = keeper.last("assignment")["t"]
            keeper.wait_event(lambda e: e["ev"] == "cgrp" and e["t"] > assigned_at, timeout=10,
                              what="group statistics of %s after its assignment" % keeper.name)
            count_before = self.rebalance_count(keeper)
            mark = keeper.mark()

            killed_at = time.monotonic()
            old.kill()
            new = self.consumer(group, topic, "static-%s-restart%d" % (victim, n), instance_id=victim, **kw)
            members[victim] = new
            everyone.append(new)
            vt.wait_for(lambda: gh.assignment(new) == before, timeout=session_ms / 1000 - 5,
                        what="the restarted static member %s to get %s back" % (victim, sorted(before)))
            self.assertLess(time.monotonic() - killed_at, session_ms / 1000,
                            "the restart took longer than the session timeout: the test proves nothing")

            # Records keep flowing to both members.
            batch = gh.produce(c.bootstrap, topic, "r%d" % n, 0, 600, PARTITIONS)
            gh.wait_consumed([new, keeper], batch, timeout=60)

            # Statistics come every 500 ms: wait for a fresh one.
            stats_at = time.time()
            keeper.wait_event(lambda e: e["ev"] == "cgrp" and e["t"] > stats_at, timeout=10, start=mark,
                              what="statistics after the restart")
            rebalances = [e for e in keeper.events()[mark:] if e["ev"] in REBALANCE_EVENTS]
            self.assertEqual(rebalances, [], "%s saw a rebalance when %s restarted" % (other, victim))
            self.assertEqual(gh.assignment(keeper), keeper_before)
            self.assertEqual(self.rebalance_count(keeper), count_before,
                             "librdkafka's rebalance count of %s moved" % other)

        gh.stop_all(list(members.values()))
        self.assertEqual(gh.redeliveries_of_acked(everyone)[:5], [])

    def test_session_timeout_removes_a_stopped_member(self):
        c = self.cluster
        topic, group = "session", "session-group"
        c.create_topic(topic, partitions=PARTITIONS, rf=3)
        session_ms = 6000
        procs = [self.consumer(group, topic, "session-c%d" % i, session_timeout_ms=session_ms)
                 for i in (1, 2, 3)]
        gh.wait_balanced(procs, [4, 4, 4], topic, PARTITIONS, timeout=90)
        survivors, victim = procs[:2], procs[2]
        orphaned = gh.assignment(victim)

        stopped_at = time.monotonic()
        victim.pause()  # no more heartbeats; its TCP connections stay open
        got = gh.wait_balanced(survivors, [6, 6], topic, PARTITIONS, timeout=session_ms / 1000 + 30)
        elapsed = time.monotonic() - stopped_at
        # Its last heartbeat came heartbeat.interval.ms (500) before the
        # stop, or longer on a loaded machine whose client thread ran late:
        # the broker may not move its partitions much before the session
        # ends. The margin leaves 2.5 s for a late heartbeat; an expiry
        # that ignored the session timeout would still fail.
        self.assertGreaterEqual(elapsed, session_ms / 1000 - 2.5,
                                "partitions moved %.1fs after the member stopped" % elapsed)
        self.assertEqual(set().union(*got.values()) & orphaned, orphaned)
        victim.kill()

        batch = gh.produce(c.bootstrap, topic, "after", 0, 1200, PARTITIONS)
        gh.wait_consumed(survivors, batch, timeout=60)
        gh.stop_all(survivors)
        self.assertEqual(gh.redeliveries_of_acked(procs)[:5], [])


if __name__ == "__main__":
    unittest.main()
