"""Transactional offset commits on raw sockets: TxnOffsetCommit v0-v3
hand-encoded (v3 flexible) and its answers decoded field by field.

What a transactional producer's send_offsets_to_transaction does, without the
transaction coordinator: TxnOffsetCommit with a producer id and epoch, then
OffsetFetch with require_stable true (UNSTABLE_OFFSET_COMMIT, no offset) and
false (the last committed value, untouched by the pending one) before any
transaction marker; the pending offsets survive a kill -9 of the broker (the
coordinator's load keeps a transactional batch without its marker pending).
v3's consumer fields (KIP-447): unknown member, illegal generation, fenced
static instance. Refusals: empty group id, partitions that do not exist.

Completion by the marker (commit and abort) needs the transaction coordinator
(helper txncoord's WriteTxnMarkers); it is covered in-process by
tests/unit/group_txn_test.c and end to end by test_groups_txn.py.

One broker, offsets.topic.replication.factor=1, no initial rebalance delay.
"""

import unittest

import test_api_groups_wire as gw
import vltava_test as vt
from vltava_test import KafkaConnection

TXN_OFFSET_COMMIT = 28

NONE = 0
UNKNOWN_TOPIC_OR_PARTITION = 3
ILLEGAL_GENERATION = 22
INVALID_GROUP_ID = 24
UNKNOWN_MEMBER_ID = 25
FENCED_INSTANCE_ID = 82
UNSTABLE_OFFSET_COMMIT = 88

TOPIC = "gtx-topic"
CLIENT_ID = "vltava-txn-test"


def txn_offset_commit(conn, version, txn_id, group, producer_id, producer_epoch, offsets,
                      generation=-1, member_id="", instance_id=None):
    """offsets: [(topic, partition, offset, leader_epoch, metadata)], one
    topic's consecutive. Returns {(topic, partition): error}, checking that
    topics come back in the request's order."""
    flexible = version >= 3
    by_topic = []
    for t, p, off, epoch, md in offsets:
        if not by_topic or by_topic[-1][0] != t:
            by_topic.append((t, []))
        by_topic[-1][1].append((p, off, epoch, md))

    def part(e, p):
        e.i32(p[0]).i64(p[1])
        if version >= 2:
            e.i32(p[2])
        e.str_(p[3]).tags()

    e = gw.Enc(flexible)
    e.str_(txn_id).str_(group).i64(producer_id).i16(producer_epoch)
    if version >= 3:
        e.i32(generation).str_(member_id).str_(instance_id)
    e.array(by_topic, lambda e, t: e.str_(t[0]).array(t[1], part).tags())
    e.tags()
    d = gw.Dec(conn.request(TXN_OFFSET_COMMIT, version, e.bytes(), flexible=flexible), flexible)
    assert d.i32() == 0  # throttle_time_ms
    out = {}

    def topic(d):
        name = d.str_()

        def p(d):
            index = d.i32()
            out[(name, index)] = d.i16()
            d.tags()

        d.array(p)
        d.tags()
        return name

    names = d.array(topic)
    assert names == [t for t, _ in by_topic], names
    d.end("TxnOffsetCommit v%d" % version)
    return out


class GroupsTxnWireTest(vt.SharedClusterTest):
    @classmethod
    def setUpClass(cls):
        cls.cluster = vt.Cluster(brokers=1, name="groups-txn-wire", broker_config={
            "group.initial.rebalance.delay.ms": 0,
            "offsets.topic.replication.factor": 1,
            "offsets.topic.num.partitions": 4,
        })
        cls.broker = cls.cluster.brokers[0]
        try:
            cls.cluster.create_topic(TOPIC, partitions=2, rf=1)
            with cls.connect() as conn:
                # The first FindCoordinator creates __consumer_offsets.
                vt.wait_for(lambda: gw.find_coordinator(conn, 0, "gtx-any")[0]["error"] == NONE,
                            timeout=60, what="a group coordinator")
            cls.cluster.wait_topic_leaders("__consumer_offsets", 4)
        except BaseException:
            cls.cluster.close(failed=True)
            raise

    @classmethod
    def connect(cls, timeout=30):
        return KafkaConnection(cls.broker.port, timeout=timeout, client_id=CLIENT_ID)

    def until_loaded(self, conn, group):
        vt.wait_for(lambda: gw.heartbeat(conn, 0, group, -1, "nobody") not in gw.RETRIABLE,
                    timeout=60, what="the coordinator of %s to load" % group)

    def fetch(self, conn, group, require_stable, version=7):
        error, offsets = gw.offset_fetch(conn, version, group, {TOPIC: [0, 1]},
                                         require_stable=require_stable)
        self.assertEqual(error, NONE if version >= 2 else None)
        return offsets

    def test_api_versions(self):
        self.assertEqual(vt.api_versions(self.broker.port).get(TXN_OFFSET_COMMIT), (0, 3))

    def test_pending_until_marker(self):
        """Every version: the offsets are written and acknowledged, then
        invisible to a plain fetch (which shows the last regular commit) and
        unstable to a stable one."""
        with self.connect() as conn:
            for version in range(0, 4):
                group = "gtx-pending-v%d" % version
                self.until_loaded(conn, group)
                # A regular commit first, for partition 1 only.
                errors = gw.offset_commit(conn, 8, group, -1, "", [(TOPIC, 1, 7, -1, "plain")])
                self.assertEqual(errors, {(TOPIC, 1): NONE})
                errors = txn_offset_commit(conn, version, "txn-%d" % version, group, 7000 + version,
                                           0, [(TOPIC, 0, 100 + version, 3, "t0"),
                                               (TOPIC, 1, 200 + version, -1, None)])
                self.assertEqual(errors, {(TOPIC, 0): NONE, (TOPIC, 1): NONE}, version)
                self.assertEqual(self.fetch(conn, group, False), {
                    (TOPIC, 0): (-1, -1, "", NONE),
                    (TOPIC, 1): (7, -1, "plain", NONE),
                })
                self.assertEqual(self.fetch(conn, group, True), {
                    (TOPIC, 0): (-1, -1, "", UNSTABLE_OFFSET_COMMIT),
                    (TOPIC, 1): (-1, -1, "", UNSTABLE_OFFSET_COMMIT),
                })
                self.assertEqual(self.fetch(conn, group, False, version=1), {
                    (TOPIC, 0): (-1, None, "", NONE),
                    (TOPIC, 1): (7, None, "plain", NONE),
                })
                # All of the group's offsets: only committed ones are listed.
                error, offsets = gw.offset_fetch(conn, 7, group, None, require_stable=True)
                self.assertEqual((error, offsets),
                                 (NONE, {(TOPIC, 1): (-1, -1, "", UNSTABLE_OFFSET_COMMIT)}))

    def test_refusals(self):
        with self.connect() as conn:
            self.until_loaded(conn, "gtx-refused")
            for version in range(0, 4):
                errors = txn_offset_commit(conn, version, "txn-r", "", 7100, 0,
                                           [(TOPIC, 0, 1, -1, None)])
                self.assertEqual(errors, {(TOPIC, 0): INVALID_GROUP_ID}, version)
                errors = txn_offset_commit(conn, version, "txn-r", "gtx-refused", 7100, 0,
                                           [(TOPIC, 5, 1, -1, None), ("gtx-nope", 0, 1, -1, None)])
                self.assertEqual(errors, {(TOPIC, 5): UNKNOWN_TOPIC_OR_PARTITION,
                                          ("gtx-nope", 0): UNKNOWN_TOPIC_OR_PARTITION}, version)
            self.assertEqual(self.fetch(conn, "gtx-refused", True), {
                (TOPIC, 0): (-1, -1, "", NONE),
                (TOPIC, 1): (-1, -1, "", NONE),
            })

    def test_v3_member_checks(self):
        """KIP-447: a producer naming its consumer's member, generation and
        instance id is checked against the group as an OffsetCommit would
        be; what it may not commit stays out of the log."""
        group = "gtx-members"
        with self.connect() as conn:
            self.until_loaded(conn, group)
            joined = gw.join_group(conn, 5, group, "", gw.subscription([TOPIC]), instance_id="inst-1")
            self.assertEqual(joined["error"], NONE, joined)
            member, generation = joined["member_id"], joined["generation"]
            synced = gw.sync_group(conn, 3, group, generation, member,
                                   [(member, gw.assignment({TOPIC: [0, 1]}))], instance_id="inst-1")
            self.assertEqual(synced["error"], NONE, synced)

            def commit(**kw):
                errors = txn_offset_commit(conn, 3, "txn-m", group, 7200, 0,
                                           [(TOPIC, 0, 55, -1, None)], **kw)
                return errors[(TOPIC, 0)]

            self.assertEqual(commit(generation=generation, member_id="nobody"), UNKNOWN_MEMBER_ID)
            self.assertEqual(commit(generation=generation + 1, member_id=member, instance_id="inst-1"),
                             ILLEGAL_GENERATION)
            self.assertEqual(commit(generation=generation, member_id="nobody", instance_id="inst-1"),
                             FENCED_INSTANCE_ID)
            self.assertEqual(commit(generation=generation, member_id=member, instance_id="inst-9"),
                             UNKNOWN_MEMBER_ID)
            self.assertEqual(self.fetch(conn, group, True)[(TOPIC, 0)], (-1, -1, "", NONE))
            self.assertEqual(commit(generation=generation, member_id=member, instance_id="inst-1"), NONE)
            self.assertEqual(self.fetch(conn, group, True)[(TOPIC, 0)],
                             (-1, -1, "", UNSTABLE_OFFSET_COMMIT))
            # Before v3 no member is named: a group with members takes it.
            errors = txn_offset_commit(conn, 2, "txn-m2", group, 7201, 0, [(TOPIC, 1, 56, -1, None)])
            self.assertEqual(errors, {(TOPIC, 1): NONE})

    def test_zz_pending_survive_restart(self):
        """Runs last (name order): the coordinator's load after kill -9 keeps
        a transactional batch without its marker pending, next to the
        regular commits it replays."""
        group = "gtx-restart"
        with self.connect() as conn:
            self.until_loaded(conn, group)
            errors = gw.offset_commit(conn, 8, group, -1, "", [(TOPIC, 0, 11, -1, "r")])
            self.assertEqual(errors, {(TOPIC, 0): NONE})
            errors = txn_offset_commit(conn, 3, "txn-x", group, 7300, 0,
                                       [(TOPIC, 0, 12, -1, "x"), (TOPIC, 1, 13, -1, "x")])
            self.assertEqual(errors, {(TOPIC, 0): NONE, (TOPIC, 1): NONE})
        self.broker.kill()
        self.broker.start()
        self.cluster.wait_ready(timeout=90)
        with self.connect() as conn:
            self.until_loaded(conn, group)
            self.assertEqual(self.fetch(conn, group, False), {
                (TOPIC, 0): (11, -1, "r", NONE),
                (TOPIC, 1): (-1, -1, "", NONE),
            })
            self.assertEqual(self.fetch(conn, group, True), {
                (TOPIC, 0): (-1, -1, "", UNSTABLE_OFFSET_COMMIT),
                (TOPIC, 1): (-1, -1, "", UNSTABLE_OFFSET_COMMIT),
            })
            # The other tests' groups came back the same way.
            self.assertEqual(self.fetch(conn, "gtx-pending-v3", True)[(TOPIC, 0)],
                             (-1, -1, "", UNSTABLE_OFFSET_COMMIT))


if __name__ == "__main__":
    unittest.main()
