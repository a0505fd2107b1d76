"""Consumer-group APIs on raw sockets, hand-encoded at several versions
(classic and flexible) and decoded field by field, every byte accounted for.

The whole protocol flow: FindCoordinator (v0-v4, v4 batched) -> JoinGroup
(v4+: MEMBER_ID_REQUIRED first, then the join with the id given) -> SyncGroup
as leader -> Heartbeat -> OffsetCommit -> OffsetFetch (v1, v6 all topics, v8
several groups) -> DescribeGroups -> ListGroups (v4 states filter) ->
LeaveGroup -> DeleteGroups; the same flow at JoinGroup v0 to v9; a second
member joining a stable group (deferred JoinGroup and SyncGroup answers) and
a batched LeaveGroup; OffsetDelete. Errors: unknown member id, illegal
generation, session timeout out of range, empty group id, commits to
partitions that do not exist, and protocol metadata over the broker's bound
(refused cleanly while the broker keeps serving others).

One broker, offsets.topic.replication.factor=1, no initial rebalance delay.
"""

import time
import unittest

import vltava_test as vt
from vltava_test import Dec, Enc, KafkaConnection, Reader, Writer

OFFSET_COMMIT = 8
OFFSET_FETCH = 9
FIND_COORDINATOR = 10
JOIN_GROUP = 11
HEARTBEAT = 12
LEAVE_GROUP = 13
SYNC_GROUP = 14
DESCRIBE_GROUPS = 15
LIST_GROUPS = 16
DELETE_GROUPS = 42
OFFSET_DELETE = 47

# First flexible version of each API (Kafka's "flexibleVersions").
FIRST_FLEXIBLE = {OFFSET_COMMIT: 8, OFFSET_FETCH: 6, FIND_COORDINATOR: 3, JOIN_GROUP: 6,
                  HEARTBEAT: 4, LEAVE_GROUP: 4, SYNC_GROUP: 4, DESCRIBE_GROUPS: 5,
                  LIST_GROUPS: 3, DELETE_GROUPS: 2}

NONE = 0
UNKNOWN_TOPIC_OR_PARTITION = 3
COORDINATOR_LOAD_IN_PROGRESS = 14
COORDINATOR_NOT_AVAILABLE = 15
NOT_COORDINATOR = 16
ILLEGAL_GENERATION = 22
INVALID_GROUP_ID = 24
UNKNOWN_MEMBER_ID = 25
INVALID_SESSION_TIMEOUT = 26
REBALANCE_IN_PROGRESS = 27
INVALID_REQUEST = 42
GROUP_ID_NOT_FOUND = 69
MEMBER_ID_REQUIRED = 79
GROUP_MAX_SIZE_REACHED = 81
FENCED_INSTANCE_ID = 82
GROUP_SUBSCRIBED_TO_TOPIC = 86
RETRIABLE = {COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR}

INT32_MIN = -(2 ** 31)
GROUP_OPS = (1 << 3) | (1 << 6) | (1 << 8)  # READ, DELETE, DESCRIBE: no authorizer
MAX_METADATA_BYTES = 1 << 20  # GROUP_MAX_METADATA_BYTES
TOPIC = "gw-topic"
CLIENT_ID = "vltava-test"


# Encoding: vltava_test.Enc / Dec (classic and compact fields in one class)


def flexible(key, version):
    first = FIRST_FLEXIBLE.get(key)
    return first is not None and version >= first


def call(conn, key, version, encode, decode):
    """Sends one request (encode(enc) writes its body but the final tags)
    and decodes the whole answer (decode(dec) returns it; the final tags are
    read here)."""
    fl = flexible(key, version)
    e = Enc(fl)
    encode(e)
    e.tags()
    d = Dec(conn.request(key, version, e.bytes(), flexible=fl), fl)
    out = decode(d)
    d.end("api %d v%d" % (key, version))
    return out


def send_only(conn, key, version, encode):
    """Sends a request whose answer is read later with recv_answer()."""
    fl = flexible(key, version)
    e = Enc(fl)
    encode(e)
    e.tags()
    return conn.send(key, version, e.bytes(), flexible=fl)


def recv_answer(conn, cid, key, version, decode):
    fl = flexible(key, version)
    d = Dec(conn.recv(expect_cid=cid, flexible=fl)[1], fl)
    out = decode(d)
    d.end("api %d v%d" % (key, version))
    return out


# --------------------------------------------------------------------------
# Consumer protocol payloads (what a Java or librdkafka consumer sends)


def subscription(topics):
    """ConsumerProtocolSubscription v0: topics, null user data."""
    return Writer().i16(0).array(topics, lambda w, t: w.string(t)).bytes_(None).bytes()


def assignment(parts):
    """ConsumerProtocolAssignment v0: {topic: [partitions]}, null user data."""
    w = Writer().i16(0)
    w.array(sorted(parts.items()), lambda w, tp: w.string(tp[0]).array(tp[1], lambda x, p: x.i32(p)))
    return w.bytes_(None).bytes()


# --------------------------------------------------------------------------
# The APIs, per version


def find_coordinator(conn, version, key="", key_type=0, keys=None):
    """A list of {key, error, message, node_id, host, port} (one entry
    before v4; key None then)."""

    def enc(e):
        if version <= 3:
            e.str_(key)
        if version >= 1:
            e.i8(key_type)
        if version >= 4:
            e.array(keys, lambda e, k: e.str_(k))

    def coordinator_v4(d):
        c = {"key": d.str_(), "node_id": d.i32(), "host": d.str_(), "port": d.i32(),
             "error": d.i16(), "message": d.str_()}
        d.tags()
        return c

    def dec(d):
        if version >= 1:
            assert d.i32() == 0  # throttle_time_ms
        if version >= 4:
            return d.array(coordinator_v4)
        c = {"key": None, "error": d.i16()}
        c["message"] = d.str_() if version >= 1 else None
        c["node_id"], c["host"], c["port"] = d.i32(), d.str_(), d.i32()
        return [c]

    return call(conn, FIND_COORDINATOR, version, enc, dec)


def join_group(conn, version, group, member_id, metadata, session_ms=10000, rebalance_ms=30000,
               instance_id=None, protocols=None, protocol_type="consumer", send=False):
    protocols = protocols if protocols is not None else [("range", metadata), ("roundrobin", metadata)]

    def enc(e):
        e.str_(group).i32(session_ms)
        if version >= 1:
            e.i32(rebalance_ms)
        e.str_(member_id)
        if version >= 5:
            e.str_(instance_id)
        e.str_(protocol_type)
        e.array(protocols, lambda e, p: e.str_(p[0]).bytes_(p[1]).tags())
        if version >= 8:
            e.str_("wire test")  # reason

    if send:
        return send_only(conn, JOIN_GROUP, version, enc)
    return call(conn, JOIN_GROUP, version, enc, join_decoder(version))


def join_decoder(version):
    def member(d):
        m = {"member_id": d.str_()}
        m["instance_id"] = d.str_() if version >= 5 else None
        m["metadata"] = d.bytes_()
        d.tags()
        return m

    def dec(d):
        if version >= 2:
            assert d.i32() == 0
        out = {"error": d.i16(), "generation": d.i32()}
        out["protocol_type"] = d.str_() if version >= 7 else "absent"
        out["protocol_name"] = d.str_()
        out["leader"] = d.str_()
        out["skip_assignment"] = d.bool_() if version >= 9 else None
        out["member_id"] = d.str_()
        out["members"] = d.array(member)
        return out

    return dec


def sync_group(conn, version, group, generation, member_id, assignments, instance_id=None,
               send=False):
    def enc(e):
        e.str_(group).i32(generation).str_(member_id)
        if version >= 3:
            e.str_(instance_id)
        if version >= 5:
            e.str_("consumer").str_("range")
        e.array(assignments, lambda e, a: e.str_(a[0]).bytes_(a[1]).tags())

    if send:
        return send_only(conn, SYNC_GROUP, version, enc)
    return call(conn, SYNC_GROUP, version, enc, sync_decoder(version))


def sync_decoder(version):
    def dec(d):
        if version >= 1:
            assert d.i32() == 0
        out = {"error": d.i16()}
        if version >= 5:
            out["protocol_type"], out["protocol_name"] = d.str_(), d.str_()
        out["assignment"] = d.bytes_()
        return out

    return dec


def heartbeat(conn, version, group, generation, member_id, instance_id=None):
    def enc(e):
        e.str_(group).i32(generation).str_(member_id)
        if version >= 3:
            e.str_(instance_id)

    def dec(d):
        if version >= 1:
            assert d.i32() == 0
        return d.i16()

    return call(conn, HEARTBEAT, version, enc, dec)


def leave_group(conn, version, group, members):
    """members: [(member_id, instance_id)], one before v3. Returns (error,
    [(member_id, instance_id, error)] or None before v3)."""

    def enc(e):
        e.str_(group)
        if version <= 2:
            assert len(members) == 1
            e.str_(members[0][0])
            return

        def member(e, m):
            e.str_(m[0]).str_(m[1])
            if version >= 5:
                e.str_("done")  # reason
            e.tags()

        e.array(members, member)

    def dec(d):
        if version >= 1:
            assert d.i32() == 0
        error = d.i16()
        if version < 3:
            return error, None

        def member(d):
            m = (d.str_(), d.str_(), d.i16())
            d.tags()
            return m

        return error, d.array(member)

    return call(conn, LEAVE_GROUP, version, enc, dec)


def offset_commit(conn, version, group, generation, member_id, offsets, retention_ms=-1,
                  instance_id=None):
    """offsets: [(topic, partition, offset, leader_epoch, metadata)].
    Returns {(topic, partition): error}, checking topics come back grouped."""
    by_topic = []
    for t, p, off, epoch, md in offsets:
        if not by_topic or by_topic[-1][0] != t:
            by_topic.append((t, []))
        by_topic[-1][1].append((p, off, epoch, md))

    def part(e, p):
        e.i32(p[0]).i64(p[1])
        if version >= 6:
            e.i32(p[2])
        if version == 1:
            e.i64(-1)  # commit_timestamp
        e.str_(p[3]).tags()

    def enc(e):
        e.str_(group)
        if version >= 1:
            e.i32(generation).str_(member_id)
        if version >= 7:
            e.str_(instance_id)
        if 2 <= version <= 4:
            e.i64(retention_ms)
        e.array(by_topic, lambda e, t: e.str_(t[0]).array(t[1], part).tags())

    def dec(d):
        if version >= 3:
            assert d.i32() == 0
        out = {}

        def topic(d):
            name = d.str_()

            def p(d):
                partition = d.i32()  # the key first: Python evaluates the value first
                out[(name, partition)] = d.i16()
                d.tags()

            d.array(p)
            d.tags()
            return name

        names = d.array(topic)
        assert names == [t for t, _ in by_topic], names
        return out

    return call(conn, OFFSET_COMMIT, version, enc, dec)


def fetch_topics_decoder(version):
    """An OffsetFetch topics array as {(topic, partition): (offset, epoch,
    metadata, error)}."""

    def dec(d):
        out = {}

        def topic(d):
            name = d.str_()

            def p(d):
                index, offset = d.i32(), d.i64()
                epoch = d.i32() if version >= 5 else None
                metadata, error = d.str_(), d.i16()
                out[(name, index)] = (offset, epoch, metadata, error)
                d.tags()

            d.array(p)
            d.tags()

        d.array(topic)
        return out

    return dec


def offset_fetch(conn, version, group, topics, require_stable=False):
    """topics: {topic: [partitions]} or None (all, v2+). Returns (error or
    None before v2, offsets)."""

    def enc(e):
        e.str_(group)
        e.array(None if topics is None else sorted(topics.items()),
                lambda e, t: e.str_(t[0]).array(t[1], lambda e, p: e.i32(p)).tags())
        if version >= 7:
            e.bool_(require_stable)

    def dec(d):
        if version >= 3:
            assert d.i32() == 0
        offsets = fetch_topics_decoder(version)(d)
        error = d.i16() if version >= 2 else None
        return error, offsets

    return call(conn, OFFSET_FETCH, version, enc, dec)


def offset_fetch_v8(conn, groups, require_stable=False):
    """groups: [(group, {topic: [partitions]} or None)]. Returns
    [(group, error, offsets)]."""

    def group(e, g):
        e.str_(g[0])
        e.array(None if g[1] is None else sorted(g[1].items()),
                lambda e, t: e.str_(t[0]).array(t[1], lambda e, p: e.i32(p)).tags())
        e.tags()

    def enc(e):
        e.array(groups, group)
        e.bool_(require_stable)

    def dec(d):
        assert d.i32() == 0

        def g(d):
            name = d.str_()
            offsets = fetch_topics_decoder(8)(d)
            error = d.i16()
            d.tags()
            return name, error, offsets

        return d.array(g)

    return call(conn, OFFSET_FETCH, 8, enc, dec)


def list_groups(conn, version, states=None):
    """(error, {group: (protocol_type, state or None)})."""

    def enc(e):
        if version >= 4:
            e.array(states or [], lambda e, s: e.str_(s))

    def dec(d):
        if version >= 1:
            assert d.i32() == 0
        error = d.i16()
        groups = {}

        def g(d):
            gid, ptype = d.str_(), d.str_()
            groups[gid] = (ptype, d.str_() if version >= 4 else None)
            d.tags()

        d.array(g)
        return error, groups

    return call(conn, LIST_GROUPS, version, enc, dec)


def describe_groups(conn, version, groups, include_ops=False):
    """{group: {error, state, protocol_type, protocol, members, ops}}."""

    def enc(e):
        e.array(groups, lambda e, g: e.str_(g))
        if version >= 3:
            e.bool_(include_ops)

    def member(d):
        m = {"member_id": d.str_()}
        m["instance_id"] = d.str_() if version >= 4 else None
        m["client_id"], m["client_host"] = d.str_(), d.str_()
        m["metadata"], m["assignment"] = d.bytes_(), d.bytes_()
        d.tags()
        return m

    def dec(d):
        if version >= 1:
            assert d.i32() == 0
        out = {}

        def g(d):
            error, gid = d.i16(), d.str_()
            desc = {"error": error, "state": d.str_(), "protocol_type": d.str_(),
                    "protocol": d.str_(), "members": d.array(member)}
            desc["ops"] = d.i32() if version >= 3 else None
            d.tags()
            out[gid] = desc

        d.array(g)
        return out

    return call(conn, DESCRIBE_GROUPS, version, enc, dec)


def delete_groups(conn, version, groups):
    """{group: error}."""

    def dec(d):
        assert d.i32() == 0
        out = {}

        def r(d):
            gid = d.str_()
            out[gid] = d.i16()
            d.tags()

        d.array(r)
        return out

    return call(conn, DELETE_GROUPS, version, lambda e: e.array(groups, lambda e, g: e.str_(g)), dec)


def offset_delete(conn, group, topics):
    """topics: {topic: [partitions]}. Returns (error, {(topic, p): error})."""

    def enc(e):
        e.str_(group)
        e.array(sorted(topics.items()), lambda e, t: e.str_(t[0]).array(t[1], lambda e, p: e.i32(p)))

    def dec(d):
        error = d.i16()
        assert d.i32() == 0
        out = {}

        def t(d):
            name = d.str_()

            def p(d):
                partition = d.i32()  # the key first: Python evaluates the value first
                out[(name, partition)] = d.i16()

            d.array(p)

        d.array(t)
        return error, out

    return call(conn, OFFSET_DELETE, 0, enc, dec)


# --------------------------------------------------------------------------


class GroupsWireTest(vt.SharedClusterTest):
    @classmethod
    def setUpClass(cls):
        cls.cluster = vt.Cluster(brokers=1, name="api-groups-wire", broker_config={
            "group.initial.rebalance.delay.ms": 0,
            "offsets.topic.replication.factor": 1,
            "offsets.topic.num.partitions": 4,
            "group.max.size": 3,
        })
        cls.broker = cls.cluster.brokers[0]
        cls.port = cls.broker.port
        try:
            cls.cluster.create_topic(TOPIC, partitions=2, rf=1)
            with KafkaConnection(cls.port, timeout=30, client_id=CLIENT_ID) as conn:
                # The first FindCoordinator creates __consumer_offsets.
                vt.wait_for(lambda: find_coordinator(conn, 0, "gw-any")[0]["error"] == NONE,
                            timeout=60, what="a group coordinator")
            cls.cluster.wait_topic_leaders("__consumer_offsets", 4)
        except BaseException:
            cls.cluster.close(failed=True)
            raise

    def connect(self, timeout=30):
        return KafkaConnection(self.port, timeout=timeout, client_id=CLIENT_ID)

    def until_loaded(self, conn, group):
        """Waits until the group's coordinator has loaded its partition: a
        heartbeat from nobody then gets an answer about the member."""
        vt.wait_for(lambda: heartbeat(conn, 0, group, -1, "nobody") not in RETRIABLE, timeout=60,
                    what="the coordinator of %s to load" % group)

    def wait_state(self, conn, group, state):
        """The group reaches state (the last member's leave ends with a
        rebalance that may complete a moment later)."""
        vt.wait_for(lambda: describe_groups(conn, 0, [group])[group]["state"] == state, timeout=30,
                    what="group %s to be %s" % (group, state))

    def join(self, conn, version, group, metadata, member_id="", **kw):
        """A complete join: at v4+ the MEMBER_ID_REQUIRED round first."""
        if version >= 4 and member_id == "" and kw.get("instance_id") is None:
            first = join_group(conn, version, group, "", metadata, **kw)
            self.assertEqual(first["error"], MEMBER_ID_REQUIRED, first)
            self.assertEqual(first["generation"], -1)
            self.assertTrue(first["member_id"])
            self.assertEqual(first["members"], [])
            member_id = first["member_id"]
        res = join_group(conn, version, group, member_id, metadata, **kw)
        self.assertEqual(res["error"], NONE, res)
        self.assertEqual(res["member_id"], member_id or res["member_id"])
        return res

    # -- FindCoordinator

    def test_find_coordinator_v0_to_v4(self):
        with self.connect() as conn:
            for version in range(0, 4):
                [c] = find_coordinator(conn, version, "gw-find")
                self.assertEqual(c["error"], NONE, c)
                self.assertEqual((c["node_id"], c["host"], c["port"]), (1, "127.0.0.1", self.port))
                if version >= 1:
                    self.assertIsNone(c["message"])
            # v4: a batch, answered per key.
            cs = find_coordinator(conn, 4, key_type=0, keys=["gw-a", "gw-b", ""])
            self.assertEqual([c["key"] for c in cs], ["gw-a", "gw-b", ""])
            for c in cs:
                self.assertEqual((c["error"], c["node_id"], c["port"]), (NONE, 1, self.port), c)
            self.assertEqual(find_coordinator(conn, 4, key_type=0, keys=[]), [])
            # Transactions: no coordinator yet, said clearly; unknown types refused.
            for version, keys in ((1, None), (3, None), (4, ["txn-1", "txn-2"])):
                for c in find_coordinator(conn, version, "txn-1", key_type=1, keys=keys):
                    self.assertEqual((c["error"], c["node_id"]), (COORDINATOR_NOT_AVAILABLE, -1), c)
                    self.assertIn("transaction", c["message"])
            for c in find_coordinator(conn, 4, key_type=7, keys=["x"]):
                self.assertEqual(c["error"], INVALID_REQUEST, c)
            [c] = find_coordinator(conn, 2, "x", key_type=7)
            self.assertEqual(c["error"], INVALID_REQUEST, c)

    # -- the whole flow, flexible versions

    def test_flow_flexible(self):
        group = "gw-flow"
        meta = subscription([TOPIC])
        assign = assignment({TOPIC: [0, 1]})
        with self.connect() as conn:
            [c] = find_coordinator(conn, 3, group)
            self.assertEqual((c["error"], c["node_id"]), (NONE, 1))
            self.until_loaded(conn, group)

            joined = self.join(conn, 6, group, meta)
            member, generation = joined["member_id"], joined["generation"]
            self.assertGreaterEqual(generation, 1)
            self.assertEqual(joined["leader"], member)
            self.assertEqual(joined["protocol_name"], "range")
            self.assertEqual(joined["members"], [{"member_id": member, "instance_id": None, "metadata": meta}])

            synced = sync_group(conn, 4, group, generation, member, [(member, assign)])
            self.assertEqual(synced, {"error": NONE, "assignment": assign})
            self.assertEqual(heartbeat(conn, 4, group, generation, member), NONE)

            # Commits: v8 (flexible, leader epochs), then v2 (retention time).
            errors = offset_commit(conn, 8, group, generation, member,
                                   [(TOPIC, 0, 42, 5, "m0"), (TOPIC, 1, 43, -1, None)])
            self.assertEqual(errors, {(TOPIC, 0): NONE, (TOPIC, 1): NONE})
            errors = offset_commit(conn, 2, group, generation, member, [(TOPIC, 1, 44, -1, "m1")],
                                   retention_ms=-1)
            self.assertEqual(errors, {(TOPIC, 1): NONE})

            # Fetches: v1 (no group error field), v6 every topic, v8 groups.
            error, offsets = offset_fetch(conn, 1, group, {TOPIC: [0, 1]})
            self.assertIsNone(error)
            self.assertEqual(offsets, {(TOPIC, 0): (42, None, "m0", NONE), (TOPIC, 1): (44, None, "m1", NONE)})
            error, offsets = offset_fetch(conn, 6, group, None)
            self.assertEqual(error, NONE)
            self.assertEqual(offsets, {(TOPIC, 0): (42, 5, "m0", NONE), (TOPIC, 1): (44, -1, "m1", NONE)})
            error, offsets = offset_fetch(conn, 7, group, {TOPIC: [0]}, require_stable=True)
            self.assertEqual((error, offsets), (NONE, {(TOPIC, 0): (42, 5, "m0", NONE)}))
            answers = offset_fetch_v8(conn, [(group, {TOPIC: [0]}), ("gw-never", None),
                                             ("gw-never-2", {TOPIC: [1]}), (group, None)])
            self.assertEqual(answers, [
                (group, NONE, {(TOPIC, 0): (42, 5, "m0", NONE)}),
                ("gw-never", NONE, {}),
                ("gw-never-2", NONE, {(TOPIC, 1): (-1, -1, "", NONE)}),
                (group, NONE, {(TOPIC, 0): (42, 5, "m0", NONE), (TOPIC, 1): (44, -1, "m1", NONE)}),
            ])

            described = describe_groups(conn, 5, [group, "gw-never"], include_ops=True)
            d = described[group]
            self.assertEqual((d["error"], d["state"], d["protocol_type"], d["protocol"]),
                             (NONE, "Stable", "consumer", "range"))
            self.assertEqual(d["ops"], GROUP_OPS)
            self.assertEqual(d["members"], [{"member_id": member, "instance_id": None, "client_id": CLIENT_ID,
                                             "client_host": "/127.0.0.1", "metadata": meta,
                                             "assignment": assign}])
            self.assertEqual((described["gw-never"]["error"], described["gw-never"]["state"],
                              described["gw-never"]["members"]), (NONE, "Dead", []))
            d = describe_groups(conn, 3, [group], include_ops=False)[group]
            self.assertEqual(d["ops"], INT32_MIN)

            error, groups = list_groups(conn, 4, ["stable"])  # names match case-insensitively
            self.assertEqual(error, NONE)
            self.assertEqual(groups.get(group), ("consumer", "Stable"))
            error, groups = list_groups(conn, 4, ["Empty"])
            self.assertNotIn(group, groups)
            error, groups = list_groups(conn, 3)
            self.assertEqual(groups.get(group), ("consumer", None))

            error, members = leave_group(conn, 5, group, [(member, None)])
            self.assertEqual((error, members), (NONE, [(member, None, NONE)]))
            self.wait_state(conn, group, "Empty")
            # The offsets outlive the members.
            self.assertEqual(offset_fetch(conn, 6, group, {TOPIC: [0]})[1][(TOPIC, 0)][0], 42)

            self.assertEqual(delete_groups(conn, 2, [group, "gw-never"]),
                             {group: NONE, "gw-never": GROUP_ID_NOT_FOUND})
            self.assertEqual(offset_fetch(conn, 6, group, None), (NONE, {}))
            self.assertEqual(describe_groups(conn, 0, [group])[group]["state"], "Dead")

    # -- the same flow at every JoinGroup version

    def test_flow_every_join_version(self):
        meta = subscription([TOPIC])
        assign = assignment({TOPIC: [0]})
        with self.connect() as conn:
            for version in range(0, 10):
                group = "gw-join-v%d" % version
                self.until_loaded(conn, group)
                joined = self.join(conn, version, group, meta)
                member, generation = joined["member_id"], joined["generation"]
                self.assertTrue(member)
                self.assertEqual(joined["leader"], member)
                self.assertEqual(joined["protocol_name"], "range")
                if version >= 7:
                    self.assertEqual(joined["protocol_type"], "consumer")
                if version >= 9:
                    self.assertFalse(joined["skip_assignment"])
                sv, hv, lv, cv = min(version, 5), min(version, 4), min(version, 5), min(version, 8)
                synced = sync_group(conn, sv, group, generation, member, [(member, assign)])
                self.assertEqual((synced["error"], synced["assignment"]), (NONE, assign))
                if sv >= 5:
                    self.assertEqual((synced["protocol_type"], synced["protocol_name"]), ("consumer", "range"))
                self.assertEqual(heartbeat(conn, hv, group, generation, member), NONE)
                if cv >= 1:
                    errors = offset_commit(conn, cv, group, generation, member, [(TOPIC, 0, version, -1, None)])
                    self.assertEqual(errors, {(TOPIC, 0): NONE})
                error, members = leave_group(conn, lv, group, [(member, None)])
                self.assertEqual(error, NONE)
                if lv >= 3:
                    self.assertEqual(members, [(member, None, NONE)])
                self.wait_state(conn, group, "Empty")
                self.assertEqual(delete_groups(conn, min(version, 2), [group]), {group: NONE})

    # -- two members: deferred answers, batched LeaveGroup

    def test_second_member_and_batched_leave(self):
        group = "gw-two"
        meta_a, meta_b = subscription([TOPIC]), subscription([TOPIC, "other"])
        with self.connect() as a, self.connect() as b:
            self.until_loaded(a, group)
            ja = self.join(a, 5, group, meta_a)
            ma = ja["member_id"]
            self.assertEqual(sync_group(a, 3, group, ja["generation"], ma,
                                        [(ma, assignment({TOPIC: [0, 1]}))])["error"], NONE)

            # B joins: its answer waits for A to rejoin.
            first = join_group(b, 5, group, "", meta_b)
            self.assertEqual(first["error"], MEMBER_ID_REQUIRED)
            mb = first["member_id"]
            cid_b = join_group(b, 5, group, mb, meta_b, send=True)
            vt.wait_for(lambda: heartbeat(a, 3, group, ja["generation"], ma) == REBALANCE_IN_PROGRESS,
                        timeout=30, what="A to be told of the rebalance")
            ja2 = join_group(a, 5, group, ma, meta_a)
            jb = recv_answer(b, cid_b, JOIN_GROUP, 5, join_decoder(5))
            self.assertEqual((ja2["error"], jb["error"]), (NONE, NONE))
            generation = ja2["generation"]
            self.assertEqual(jb["generation"], generation)
            self.assertGreater(generation, ja["generation"])
            leader = ja2["leader"]
            self.assertIn(leader, (ma, mb))
            self.assertEqual(jb["leader"], leader)
            (lconn, lmeta), (fconn, fid) = ((a, ja2), (b, mb)) if leader == ma else ((b, jb), (a, ma))
            self.assertEqual(sorted(m["member_id"] for m in lmeta["members"]), sorted([ma, mb]))
            follower_view = jb if leader == ma else ja2
            self.assertEqual(follower_view["members"], [])

            # The follower's SyncGroup waits for the leader's assignment.
            assigns = {ma: assignment({TOPIC: [0]}), mb: assignment({TOPIC: [1]})}
            cid_f = sync_group(fconn, 3, group, generation, fid, [], send=True)
            sl = sync_group(lconn, 3, group, generation, leader, sorted(assigns.items()))
            sf = recv_answer(fconn, cid_f, SYNC_GROUP, 3, sync_decoder(3))
            self.assertEqual(sl, {"error": NONE, "assignment": assigns[leader]})
            self.assertEqual(sf, {"error": NONE, "assignment": assigns[fid]})

            d = describe_groups(a, 4, [group])[group]
            self.assertEqual(d["state"], "Stable")
            self.assertEqual(sorted(m["member_id"] for m in d["members"]), sorted([ma, mb]))

            # OffsetDelete: refused while a member subscribes to the topic... or
            # answered per partition; either way a clean answer, and one for
            # a partition that does not exist.
            error, parts = offset_delete(a, group, {TOPIC: [0], "gw-no-such-topic": [0]})
            self.assertEqual(error, NONE)
            self.assertEqual(parts[("gw-no-such-topic", 0)], UNKNOWN_TOPIC_OR_PARTITION)
            self.assertIn((TOPIC, 0), parts)

            # v3: a batch; an unknown member is refused alone.
            error, members = leave_group(a, 3, group, [(ma, None), (mb, None), ("gw-nobody", None)])
            self.assertEqual(error, NONE)
            self.assertEqual(members, [(ma, None, NONE), (mb, None, NONE),
                                       ("gw-nobody", None, UNKNOWN_MEMBER_ID)])
            self.wait_state(a, group, "Empty")
            self.assertEqual(delete_groups(a, 1, [group]), {group: NONE})

    # -- errors

    def test_member_and_generation_errors(self):
        group = "gw-errors"
        meta = subscription([TOPIC])
        with self.connect() as conn:
            self.until_loaded(conn, group)
            joined = self.join(conn, 5, group, meta)
            member, generation = joined["member_id"], joined["generation"]
            self.assertEqual(sync_group(conn, 2, group, generation, member, [(member, b"")])["error"], NONE)

            self.assertEqual(heartbeat(conn, 2, group, generation, "gw-nobody"), UNKNOWN_MEMBER_ID)
            self.assertEqual(heartbeat(conn, 4, group, generation + 10, member), ILLEGAL_GENERATION)
            self.assertEqual(sync_group(conn, 4, group, generation + 10, member, [])["error"],
                             ILLEGAL_GENERATION)
            errors = offset_commit(conn, 8, group, generation + 10, member, [(TOPIC, 0, 1, -1, None)])
            self.assertEqual(errors, {(TOPIC, 0): ILLEGAL_GENERATION})
            errors = offset_commit(conn, 6, group, generation, "gw-nobody", [(TOPIC, 0, 1, -1, None)])
            self.assertEqual(errors, {(TOPIC, 0): UNKNOWN_MEMBER_ID})
            # The group is not empty: it cannot be deleted.
            self.assertNotEqual(delete_groups(conn, 2, [group])[group], NONE)
            error, members = leave_group(conn, 4, group, [("gw-nobody", None)])
            self.assertEqual((error, members), (NONE, [("gw-nobody", None, UNKNOWN_MEMBER_ID)]))
            self.assertEqual(leave_group(conn, 1, group, [("gw-nobody", None)]), (UNKNOWN_MEMBER_ID, None))
            self.assertEqual(leave_group(conn, 0, group, [(member, None)]), (NONE, None))
            # Still serving the other requests on the same connection.
            self.assertEqual(heartbeat(conn, 0, group, generation, member), UNKNOWN_MEMBER_ID)

    def test_join_refusals(self):
        meta = subscription([TOPIC])
        with self.connect() as conn:
            self.until_loaded(conn, "gw-timeouts")
            for version in (0, 5, 6):
                for session_ms in (1000, 1800001):  # group.min/max.session.timeout.ms: 6000, 1800000
                    res = join_group(conn, version, "gw-timeouts", "", meta, session_ms=session_ms)
                    self.assertEqual(res["error"], INVALID_SESSION_TIMEOUT, (version, res))
                    self.assertEqual(res["generation"], -1)
                res = join_group(conn, version, "", "", meta)
                self.assertEqual(res["error"], INVALID_GROUP_ID, (version, res))
            # OffsetDelete refuses the empty group id too (Kafka takes it only
            # in OffsetCommit, OffsetFetch, DescribeGroups and DeleteGroups).
            self.assertEqual(offset_delete(conn, "", {TOPIC: [0]}), (INVALID_GROUP_ID, {}))
            # A compact protocol type longer than an int16 length can carry:
            # kept, it could not be written to the group's record nor to a
            # v0 DescribeGroups answer.
            res = join_group(conn, 6, "gw-timeouts", "", meta, protocol_type="c" * 40000)
            self.assertEqual(res["error"], INVALID_REQUEST, res)
            self.assertEqual(describe_groups(conn, 0, ["gw-timeouts"])["gw-timeouts"]["state"], "Dead")

    def test_fenced_static_member(self):
        """KIP-345: a static member's instance id rejoining under a new member
        id fences the old one, whose heartbeats, commits and leaves then get
        FENCED_INSTANCE_ID; the group keeps its generation."""
        group = "gw-static"
        meta = subscription([TOPIC])
        with self.connect() as conn:
            self.until_loaded(conn, group)
            first = self.join(conn, 5, group, meta, instance_id="i1")
            old, generation = first["member_id"], first["generation"]
            self.assertEqual(sync_group(conn, 3, group, generation, old, [(old, assignment({TOPIC: [0, 1]}))],
                                        instance_id="i1")["error"], NONE)
            again = self.join(conn, 5, group, meta, instance_id="i1")
            new = again["member_id"]
            self.assertNotEqual(new, old)
            self.assertEqual(again["generation"], generation)  # a restart is no rebalance
            self.assertEqual(heartbeat(conn, 3, group, generation, old, instance_id="i1"), FENCED_INSTANCE_ID)
            self.assertEqual(offset_commit(conn, 7, group, generation, old, [(TOPIC, 0, 5, -1, None)],
                                           instance_id="i1"), {(TOPIC, 0): FENCED_INSTANCE_ID})
            self.assertEqual(sync_group(conn, 3, group, generation, old, [], instance_id="i1")["error"],
                             FENCED_INSTANCE_ID)
            self.assertEqual(heartbeat(conn, 3, group, generation, new, instance_id="i1"), NONE)
            synced = sync_group(conn, 3, group, generation, new, [], instance_id="i1")
            self.assertEqual((synced["error"], synced["assignment"]), (NONE, assignment({TOPIC: [0, 1]})))
            error, members = leave_group(conn, 3, group, [(old, "i1")])
            self.assertEqual((error, members), (NONE, [(old, "i1", FENCED_INSTANCE_ID)]))
            error, members = leave_group(conn, 3, group, [(new, "i1")])
            self.assertEqual((error, members), (NONE, [(new, "i1", NONE)]))
            self.wait_state(conn, group, "Empty")

    def test_member_that_never_syncs_is_removed(self):
        """A member that joins a generation and keeps heartbeating but never
        sends its SyncGroup is removed once the rebalance timeout passes
        (Kafka's pending-sync members), and the others rebalance without
        it, long before its session would expire."""
        group = "gw-nosync"
        meta = subscription([TOPIC])
        a, b = self.connect(), self.connect()
        try:
            self.until_loaded(a, group)
            first = join_group(a, 3, group, "", meta, rebalance_ms=1500, session_ms=30000)
            self.assertEqual(first["error"], NONE, first)
            ma = first["member_id"]
            self.assertEqual(sync_group(a, 3, group, first["generation"], ma, [(ma, b"")])["error"], NONE)
            cid = join_group(b, 3, group, "", meta, rebalance_ms=1500, session_ms=30000, send=True)
            vt.wait_for(lambda: heartbeat(a, 3, group, first["generation"], ma) == REBALANCE_IN_PROGRESS,
                        timeout=30, what="the rebalance the second member starts")
            ra = join_group(a, 3, group, ma, meta, rebalance_ms=1500, session_ms=30000)
            rb = recv_answer(b, cid, JOIN_GROUP, 3, join_decoder(3))
            self.assertEqual((ra["error"], rb["error"]), (NONE, NONE))
            mb, generation = rb["member_id"], ra["generation"]
            # Only a syncs (as a follower it would wait for the leader: it
            # sends without reading); b heartbeats but never syncs.
            sync_cid = sync_group(a, 3, group, generation, ma,
                                  [(ma, b""), (mb, b"")] if ra["leader"] == ma else [], send=True)

            def b_removed():
                if heartbeat(b, 3, group, generation, mb) == UNKNOWN_MEMBER_ID:
                    return True
                time.sleep(0.2)  # b's heartbeat interval
                return False
            vt.wait_for(b_removed, timeout=25, what="the member that never synced to be removed")
            with self.connect() as c:
                members = describe_groups(c, 0, [group])[group]["members"]
            self.assertNotIn(mb, [m["member_id"] for m in members])
            recv_answer(a, sync_cid, SYNC_GROUP, 3, sync_decoder(3))  # answered, whatever it was
            error, _ = leave_group(a, 3, group, [(ma, None)])
            self.assertEqual(error, NONE)
        finally:
            a.close()
            b.close()

    def test_refused_assignment_does_not_hold_the_followers(self):
        """A leader whose SyncGroup is refused (an assignment over the
        broker's bound) sent no assignment: the sync phase's deadline still
        counts it as late, so its follower, waiting in SyncGroup, is sent
        back to JoinGroup after the rebalance timeout rather than when the
        leader's session expires."""
        group = "gw-bigsync"
        meta = subscription([TOPIC])
        a, b = self.connect(), self.connect()
        try:
            self.until_loaded(a, group)
            first = join_group(a, 3, group, "", meta, rebalance_ms=1500, session_ms=60000)
            self.assertEqual(first["error"], NONE, first)
            ma = first["member_id"]
            self.assertEqual(sync_group(a, 3, group, first["generation"], ma, [(ma, b"")])["error"], NONE)
            cid = join_group(b, 3, group, "", meta, rebalance_ms=1500, session_ms=60000, send=True)
            vt.wait_for(lambda: heartbeat(a, 3, group, first["generation"], ma) == REBALANCE_IN_PROGRESS,
                        timeout=30, what="the rebalance the second member starts")
            ra = join_group(a, 3, group, ma, meta, rebalance_ms=1500, session_ms=60000)
            rb = recv_answer(b, cid, JOIN_GROUP, 3, join_decoder(3))
            self.assertEqual((ra["error"], rb["error"], ra["leader"]), (NONE, NONE, ma))
            mb, generation = rb["member_id"], ra["generation"]
            sync_cid = sync_group(b, 3, group, generation, mb, [], send=True)
            big = b"\x00" * (MAX_METADATA_BYTES + 1)
            res = sync_group(a, 3, group, generation, ma, [(ma, b""), (mb, big)])
            self.assertEqual(res["error"], INVALID_REQUEST, res)
            started = time.monotonic()
            rb = recv_answer(b, sync_cid, SYNC_GROUP, 3, sync_decoder(3))
            self.assertEqual(rb["error"], REBALANCE_IN_PROGRESS, rb)
            self.assertLess(time.monotonic() - started, 20)  # the leader's session: 60 s
            self.assertEqual(heartbeat(a, 3, group, generation, ma), UNKNOWN_MEMBER_ID)
            error, _ = leave_group(b, 3, group, [(mb, None)])
            self.assertEqual(error, NONE)
        finally:
            a.close()
            b.close()

    def test_group_max_size(self):
        """group.max.size (3 here): a fourth member is refused with
        GROUP_MAX_SIZE_REACHED while the three stay in the group."""
        group = "gw-full"
        meta = subscription([TOPIC])
        conns = [self.connect() for _ in range(4)]
        try:
            self.until_loaded(conns[0], group)
            first = join_group(conns[0], 3, group, "", meta)
            self.assertEqual(first["error"], NONE, first)
            # Two more join and wait for the first to rejoin.
            cids = [join_group(conns[i], 3, group, "", meta, send=True) for i in (1, 2)]
            vt.wait_for(lambda: len(describe_groups(conns[3], 0, [group])[group]["members"]) == 3,
                        timeout=30, what="three members")
            refused = join_group(conns[3], 3, group, "", meta)
            self.assertEqual(refused["error"], GROUP_MAX_SIZE_REACHED, refused)
            rejoin = join_group(conns[0], 3, group, first["member_id"], meta)
            self.assertEqual(rejoin["error"], NONE, rejoin)
            others = [recv_answer(conns[i], cids[i - 1], JOIN_GROUP, 3, join_decoder(3)) for i in (1, 2)]
            self.assertEqual([o["error"] for o in others], [NONE, NONE])
            self.assertEqual({o["generation"] for o in others}, {rejoin["generation"]})
            self.assertEqual(len(rejoin["members"]) + sum(len(o["members"]) for o in others), 3)
            error, _ = leave_group(conns[0], 3, group, [(m["member_id"], None) for m in [rejoin] + others])
            self.assertEqual(error, NONE)
            self.wait_state(conns[0], group, "Empty")
        finally:
            for c in conns:
                c.close()

    def test_commit_to_unknown_partitions(self):
        group = "gw-simple"
        with self.connect() as conn:
            self.until_loaded(conn, group)
            # A commit from outside the group protocol (generation -1).
            errors = offset_commit(conn, 2, group, -1, "", [
                (TOPIC, 0, 7, -1, None), (TOPIC, 99, 7, -1, None), ("gw-no-such-topic", 0, 7, -1, None)])
            self.assertEqual(errors, {(TOPIC, 0): NONE, (TOPIC, 99): UNKNOWN_TOPIC_OR_PARTITION,
                                      ("gw-no-such-topic", 0): UNKNOWN_TOPIC_OR_PARTITION})
            errors = offset_commit(conn, 8, group, -1, "", [("gw-no-such-topic", 3, 7, -1, None)])
            self.assertEqual(errors, {("gw-no-such-topic", 3): UNKNOWN_TOPIC_OR_PARTITION})
            error, offsets = offset_fetch(conn, 5, group, {TOPIC: [0, 99]})
            self.assertEqual(error, NONE)
            self.assertEqual(offsets[(TOPIC, 0)][0], 7)
            self.assertEqual(offsets[(TOPIC, 99)][0], -1)
            error, parts = offset_delete(conn, group, {TOPIC: [0]})
            self.assertEqual((error, parts), (NONE, {(TOPIC, 0): NONE}))
            self.assertEqual(offset_fetch(conn, 6, group, None), (NONE, {}))
            self.assertEqual(delete_groups(conn, 0, [group]), {group: NONE})

    def test_offset_delete_before_the_first_generation(self):
        """A consumer group whose members have yet to form its first
        generation: what they subscribe to is not known yet (Kafka's
        subscribedTopics is None), so OffsetDelete keeps every offset
        (GROUP_SUBSCRIBED_TO_TOPIC) rather than one a member may consume."""
        group = "gw-del-early"
        meta = subscription([TOPIC])
        a, b = self.connect(), self.connect()
        try:
            self.until_loaded(a, group)
            self.assertEqual(offset_commit(a, 2, group, -1, "", [(TOPIC, 0, 7, -1, None)]), {(TOPIC, 0): NONE})
            # a's id is pending (MEMBER_ID_REQUIRED): b's join waits for it.
            first = join_group(a, 4, group, "", meta, session_ms=30000)
            self.assertEqual(first["error"], MEMBER_ID_REQUIRED, first)
            cid = join_group(b, 3, group, "", meta, session_ms=30000, send=True)
            self.wait_state(a, group, "PreparingRebalance")
            self.assertEqual(offset_delete(a, group, {TOPIC: [0]}), (NONE, {(TOPIC, 0): GROUP_SUBSCRIBED_TO_TOPIC}))
            self.assertEqual(offset_fetch(a, 5, group, {TOPIC: [0]})[1][(TOPIC, 0)][0], 7)
            ra = join_group(a, 4, group, first["member_id"], meta, session_ms=30000)
            rb = recv_answer(b, cid, JOIN_GROUP, 3, join_decoder(3))
            self.assertEqual((ra["error"], rb["error"]), (NONE, NONE))
            error, _ = leave_group(a, 3, group, [(ra["member_id"], None), (rb["member_id"], None)])
            self.assertEqual(error, NONE)
        finally:
            a.close()
            b.close()

    def test_oversized_protocol_metadata(self):
        """Metadata over the broker's bound: the request (or the connection)
        is refused cleanly, and the broker keeps serving others."""
        big = b"\x00" * (MAX_METADATA_BYTES + 1)
        with self.connect() as other:
            self.until_loaded(other, "gw-big")
            for version in (5, 6):
                bad = self.connect()
                try:
                    try:
                        res = join_group(bad, version, "gw-big", "", big, protocols=[("range", big)])
                    except (ConnectionError, ValueError, OSError):
                        res = None  # the broker closed the connection
                    if res is not None:
                        self.assertNotIn(res["error"], (NONE, MEMBER_ID_REQUIRED), res)
                finally:
                    bad.close()
                [c] = find_coordinator(other, 0, "gw-big")
                self.assertEqual(c["error"], NONE)
            self.assertEqual(list_groups(other, 0)[0], NONE)
            self.assertNotIn("gw-big", list_groups(other, 0)[1])
        with self.connect() as fresh:
            self.assertEqual(find_coordinator(fresh, 1, "gw-big")[0]["error"], NONE)
        self.assertTrue(self.broker.alive())


if __name__ == "__main__":
    unittest.main()
