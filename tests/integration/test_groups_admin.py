"""Consumer-group administration through confluent-kafka 2.x's AdminClient
(client virtualenv, clients/ck_admin.py): list_consumer_groups,
describe_consumer_groups, delete_consumer_groups,
list_consumer_group_offsets and alter_consumer_group_offsets on a live and
an empty group; OffsetDelete v0 in raw protocol; and 10,000 groups, each with
one offset committed outside group management (generation -1), all listed
afterwards by one broker-healthy cluster.

Time: every wait polls against a deadline; the 10,000 commits run with 500
in flight from one process, bounded by its request timeout; ctest's TIMEOUT
bounds the file."""

import unittest

import group_helpers as gh
import vltava_test as vt

# Kafka error codes
NONE = 0
GROUP_ID_NOT_FOUND = 69
GROUP_SUBSCRIBED_TO_TOPIC = 86


def raw_offset_delete(port, group, topic, partitions, timeout=10):
    """OffsetDelete v0: (error, {partition: error})."""
    body = (vt.Writer().string(group)
            .array([topic], lambda w, t: w.string(t).array(partitions, lambda w2, p: w2.i32(p))).bytes())
    with vt.KafkaConnection(port, timeout=timeout) as conn:
        r = vt.Reader(conn.request(47, 0, body))
    error = r.i16()
    r.i32()  # throttle
    out = {}
    for _name, parts in r.array(lambda x: (x.string(), x.array(lambda y: (y.i32(), y.i16())))):
        out.update(dict(parts))
    return error, out


class GroupAdminTest(gh.GroupTest):
    def group_listing(self, admin):
        """{group_id: (state, simple)} from list_consumer_groups."""
        reply = self.admin_call(admin, op="list")
        self.assertEqual(reply["errors"], [])
        return {g: (state, simple) for g, state, simple in reply["groups"]}

    def describe(self, admin, group):
        return self.admin_call(admin, op="describe", groups=[group])["groups"][group]

    def test_group_lifecycle(self):
        c = self.cluster
        topic, group, partitions = "admin-topic", "admin-group", 6
        c.create_topic(topic, partitions=partitions, rf=3)
        produced = gh.produce(c.bootstrap, topic, "a", 0, 600, partitions)
        members = [self.consumer(group, topic, "admin-c%d" % i, strategy="range") for i in (1, 2)]
        gh.wait_balanced(members, [3, 3], topic, partitions, timeout=90)
        gh.wait_consumed(members, produced, timeout=60)
        vt.wait_for(lambda: gh.max_acked(members) == {(topic, p): 100 for p in range(partitions)}, timeout=30,
                    what="every record's commit to be acknowledged")
        admin = self.admin()

        # A live group.
        self.assertEqual(self.group_listing(admin).get(group), ("STABLE", False))
        d = self.describe(admin, group)
        self.assertNotIn("error", d)
        self.assertEqual(d["state"], "STABLE")
        self.assertFalse(d["simple"])
        self.assertEqual(d["assignor"], "range")
        self.assertEqual(d["coordinator"], vt.group_coordinator(c, group))
        self.assertEqual(sorted(m["client_id"] for m in d["members"]), ["admin-c1", "admin-c2"])
        by_client = {m["client_id"]: {tuple(tp) for tp in m["assignment"]} for m in d["members"]}
        for p in members:
            self.assertEqual(by_client[p.name], gh.assignment(p))
        self.assertEqual(self.committed_offsets(admin, group, topic, partitions),
                         {p: 100 for p in range(partitions)})
        # Offsets of a group with members cannot be set from outside it
        # (generation -1, no member id: UNKNOWN_MEMBER_ID), nor can it be
        # deleted.
        reply = admin.request(op="alter", group=group, offsets=[[topic, 0, 5]])
        errors = [reply.get("error")] if reply.get("error") else [o[3] for o in reply["offsets"]]
        self.assertEqual(errors, ["UNKNOWN_MEMBER_ID"], reply)
        self.assertEqual(self.admin_call(admin, op="delete", groups=[group])["groups"][group], "NON_EMPTY_GROUP")
        # OffsetDelete of a topic the group consumes.
        port = c.broker(vt.group_coordinator(c, group)).port
        self.assertEqual(raw_offset_delete(port, group, topic, [0]), (NONE, {0: GROUP_SUBSCRIBED_TO_TOPIC}))

        # The members leave: the group is empty and keeps its offsets.
        gh.stop_all(members)
        vt.wait_for(lambda: self.describe(admin, group)["state"] == "EMPTY", timeout=30,
                    what="the group to be empty")
        self.assertEqual(self.describe(admin, group)["members"], [])
        self.assertEqual(self.group_listing(admin).get(group), ("EMPTY", False))

        # Offsets of an empty group can be set; a new member starts there.
        altered = self.admin_call(admin, op="alter", group=group,
                                  offsets=[[topic, p, 10 * (p + 1)] for p in range(partitions)])
        self.assertEqual(altered["offsets"], [[topic, p, 10 * (p + 1), None] for p in range(partitions)])
        self.assertEqual(self.committed_offsets(admin, group, topic, partitions),
                         {p: 10 * (p + 1) for p in range(partitions)})
        expect = sum(100 - 10 * (p + 1) for p in range(partitions))
        events = vt.run_client("ck_consumer.py", ["--bootstrap", c.bootstrap, "--group", group, "--topic", topic,
                                                  "--client-id", "admin-resume", "--count", expect],
                               timeout=120, logdir=self.logdir, name="admin-resume")
        firsts = {}
        for e in events:
            if e["ev"] == "records":
                for _t, p, o, _v in e["items"]:
                    firsts[p] = min(firsts.get(p, o), o)
        self.assertEqual(firsts, {p: 10 * (p + 1) for p in range(partitions)})
        self.assertEqual(sorted(tuple(x) for x in events[-1]["committed"]),
                         [(topic, p, 100) for p in range(partitions)])

        # Deletion.
        self.assertEqual(self.admin_call(admin, op="delete", groups=[group])["groups"][group], None)
        self.assertNotIn(group, self.group_listing(admin))
        self.assertEqual(self.describe(admin, group).get("state"), "DEAD")
        offsets = self.committed_offsets(admin, group, topic, partitions)
        self.assertTrue(all(o < 0 for o in offsets.values()), offsets)
        self.assertEqual(self.admin_call(admin, op="delete", groups=[group])["groups"][group],
                         "GROUP_ID_NOT_FOUND")
        admin.stop()

    def test_offset_delete(self):
        c = self.cluster
        topic, group = "offset-delete", "offset-delete-group"
        c.create_topic(topic, partitions=2, rf=3)
        admin = self.admin()
        self.admin_call(admin, op="alter", group=group, offsets=[[topic, 0, 7], [topic, 1, 9]])
        self.assertEqual(self.committed_offsets(admin, group, topic, 2), {0: 7, 1: 9})
        port = c.broker(vt.group_coordinator(c, group)).port
        self.assertEqual(raw_offset_delete(port, group, topic, [0]), (NONE, {0: NONE}))
        offsets = self.committed_offsets(admin, group, topic, 2)
        self.assertLess(offsets[0], 0)
        self.assertEqual(offsets[1], 9)
        missing = "no-such-group"
        port = c.broker(vt.group_coordinator(c, missing)).port
        self.assertEqual(raw_offset_delete(port, missing, topic, [0])[0], GROUP_ID_NOT_FOUND)
        admin.stop()

    def test_ten_thousand_groups(self):
        c = self.cluster
        topic, count = "many-groups", 10000
        c.create_topic(topic, partitions=1, rf=3)
        gh.produce(c.bootstrap, topic, "x", 0, 10, 1)
        groups = ["many-%05d" % i for i in range(count)]
        admin = self.admin()
        reply = self.admin_call(admin, timeout=240, op="alter_many", groups=groups, offsets=[[topic, 0, 3]],
                                window=500)
        self.assertEqual((reply["ok"], reply["error_count"]), (count, 0), reply)
        listing = vt.wait_for(lambda: self.group_listing(admin), timeout=60, what="the group listing")
        listed = {g for g in listing if g.startswith("many-")}
        self.assertEqual(len(listed), count)
        self.assertEqual(listed, set(groups))
        self.assertEqual({listing[g] for g in groups}, {("EMPTY", True)})

        # Every broker still serves, and the groups answer.
        for b in c.brokers:
            self.assertTrue(b.serving([x.id for x in c.brokers]))
        for g in (groups[0], groups[4321], groups[-1]):
            self.assertEqual(self.committed_offsets(admin, g, topic, 1), {0: 3})
            self.assertEqual(self.describe(admin, g)["state"], "EMPTY")
        admin.stop()


if __name__ == "__main__":
    unittest.main()
