"""A confluent-kafka (librdkafka) group consumer as a child process of a test.
Runs with confluent-kafka 2.x (the client virtualenv) or Debian's 1.7.

Events (see child.py): "started"; "assign" / "revoke" / "lost" with the
partitions of each rebalance callback, each followed by "assignment" with the
whole current assignment; "records" (items: [topic, partition, offset,
value]) for each batch consumed, emitted BEFORE its offsets are committed;
"commit_ack" (offsets: [topic, partition, next offset]) for each commit the
coordinator acknowledged and "commit_failed" for each that it did not;
"cgrp" with librdkafka's group statistics every 500 ms (--stats); "client_error"
for librdkafka's error callback; "result" and "closed" at the end.

Commits (--commit): "sync" commits the batch's offsets synchronously after
every batch (and, in the revocation callback, whatever a failed commit left
pending), so every record whose commit was acknowledged is never delivered
again; "async" commits asynchronously after every batch and reports through
on_commit; "none" never commits.

Commands on stdin: {"op": "stop"} (or EOF): leave the loop, commit what is
pending ("sync"), close() (which leaves the group) and exit 0;
{"op": "committed"}: emit "committed" with committed() of the assignment;
{"op": "commit"}: a synchronous commit of the current positions.

--count N: consume until N records were consumed, commit, emit "result" with
the committed offsets of every partition of the subscribed topics, close.
"""

import argparse
import json
import sys
import time

import child
from child import emit

import confluent_kafka
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition


def parse_args():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--topic", action="append", required=True)
    ap.add_argument("--client-id", default="ck-consumer")
    ap.add_argument("--strategy", default=None, help="partition.assignment.strategy")
    ap.add_argument("--instance-id", default=None, help="group.instance.id (static membership)")
    ap.add_argument("--session-timeout-ms", type=int, default=6000)
    ap.add_argument("--heartbeat-interval-ms", type=int, default=500)
    ap.add_argument("--commit", choices=["sync", "async", "none"], default="sync")
    ap.add_argument("--count", type=int, default=None)
    ap.add_argument("--count-timeout", type=float, default=90.0)
    ap.add_argument("--stats", action="store_true")
    ap.add_argument("-X", action="append", default=[], help="extra librdkafka property k=v")
    return ap.parse_args()


def tp_list(parts):
    return [[p.topic, p.partition] for p in parts]


def offsets_list(parts):
    return [[p.topic, p.partition, p.offset] for p in parts]


class Runner:
    def __init__(self, args):
        self.args = args
        self.assignment = set()
        self.pending = {}  # (topic, partition) -> next offset not yet acknowledged
        self.consumed = 0
        conf = {
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "client.id": args.client_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": args.session_timeout_ms,
            "heartbeat.interval.ms": args.heartbeat_interval_ms,
            "max.poll.interval.ms": max(args.session_timeout_ms, 30000),
            "topic.metadata.refresh.interval.ms": 5000,
            "fetch.wait.max.ms": 100,
            "error_cb": self.on_error,
        }
        if args.strategy:
            conf["partition.assignment.strategy"] = args.strategy
        if args.instance_id:
            conf["group.instance.id"] = args.instance_id
        if args.commit == "async":
            conf["on_commit"] = self.on_commit
        if args.stats:
            conf["statistics.interval.ms"] = 500
            conf["stats_cb"] = self.on_stats
        conf.update(child.kv_list(args.X))
        self.consumer = Consumer(conf)
        self.cooperative = "cooperative" in (args.strategy or "")

    # -- callbacks (run inside consume()/close())

    def on_error(self, err):
        emit("client_error", code=err.code(), name=err.name(), error=err.str())

    def on_stats(self, stats_json):
        cgrp = json.loads(stats_json).get("cgrp")
        if not cgrp:
            return
        emit("cgrp", state=cgrp.get("state"), join_state=cgrp.get("join_state"),
             rebalance_cnt=cgrp.get("rebalance_cnt"), rebalance_reason=cgrp.get("rebalance_reason"),
             assignment_size=cgrp.get("assignment_size"))

    def on_commit(self, err, partitions):
        self.report_commit(err, partitions or [])

    def on_assign(self, consumer, partitions):
        emit("assign", partitions=tp_list(partitions), member=self.member_id())
        self.assignment |= {(p.topic, p.partition) for p in partitions}
        emit("assignment", partitions=sorted(self.assignment), member=self.member_id())

    def on_revoke(self, consumer, partitions):
        revoked = {(p.topic, p.partition) for p in partitions}
        # Whatever a failed commit left pending: the last chance to commit it.
        if self.args.commit != "none":
            self.commit_sync({k: v for k, v in self.pending.items() if k in revoked})
        for k in revoked:
            self.pending.pop(k, None)
        emit("revoke", partitions=sorted(revoked))
        self.assignment -= revoked
        emit("assignment", partitions=sorted(self.assignment), member=self.member_id())

    def on_lost(self, consumer, partitions):
        lost = {(p.topic, p.partition) for p in partitions}
        for k in lost:
            self.pending.pop(k, None)
        emit("lost", partitions=sorted(lost))
        self.assignment -= lost
        emit("assignment", partitions=sorted(self.assignment), member=self.member_id())

    def member_id(self):
        fn = getattr(self.consumer, "memberid", None)
        try:
            return fn() if fn else None
        except (KafkaException, RuntimeError):
            return None

    # -- commits

    def report_commit(self, err, partitions):
        if err is not None:
            emit("commit_failed", offsets=offsets_list(partitions), error=str(err))
            return
        ok = [p for p in partitions if p.error is None]
        bad = [p for p in partitions if p.error is not None]
        if ok:
            emit("commit_ack", offsets=offsets_list(ok))
        if bad:
            emit("commit_failed", offsets=offsets_list(bad), error=str(bad[0].error))
        return ok

    def commit_sync(self, offsets):
        """Commits {(topic, partition): offset} synchronously; acknowledged
        entries leave self.pending. Returns the acknowledged list."""
        if not offsets:
            return []
        tps = [TopicPartition(t, p, o) for (t, p), o in sorted(offsets.items())]
        try:
            result = self.consumer.commit(offsets=tps, asynchronous=False)
        except KafkaException as e:
            emit("commit_failed", offsets=offsets_list(tps), error=str(e.args[0]))
            return []
        ok = self.report_commit(None, result or []) or []
        for p in ok:
            if self.pending.get((p.topic, p.partition)) == p.offset:
                del self.pending[(p.topic, p.partition)]
        return ok

    # -- the loop

    def handle(self, cmd):
        op = cmd.get("op")
        if op == "eof" and self.args.count is not None:
            return True  # run to the count (vltava_test.run_client closes stdin at once)
        if op in ("stop", "close", "eof"):
            return False
        if op == "committed":
            parts = [TopicPartition(t, p) for t, p in sorted(self.assignment)]
            got = self.consumer.committed(parts, timeout=10) if parts else []
            emit("committed", offsets=offsets_list(got))
        elif op == "commit":
            self.commit_sync(dict(self.pending))
        else:
            emit("bad_command", command=cmd)
        return True

    def run(self):
        args = self.args
        commands = child.Commands()
        self.consumer.subscribe(args.topic, on_assign=self.on_assign, on_revoke=self.on_revoke,
                                on_lost=self.on_lost)
        emit("started", version=confluent_kafka.version()[0], librdkafka=confluent_kafka.libversion()[0],
             client_id=args.client_id, instance_id=args.instance_id)
        deadline = time.monotonic() + args.count_timeout if args.count is not None else None
        running = True
        while running:
            cmd = commands.get()
            while cmd is not None and running:
                running = self.handle(cmd)
                cmd = commands.get() if running else None
            if not running:
                break
            if args.count is not None and self.consumed >= args.count:
                break
            if deadline is not None and time.monotonic() > deadline:
                emit("fatal", error="consumed %d of %d records in %ss" % (self.consumed, args.count,
                                                                        args.count_timeout))
                self.consumer.close()
                sys.exit(3)
            msgs = self.consumer.consume(num_messages=500, timeout=0.2)
            batch = []
            for m in msgs:
                if m.error():
                    if m.error().code() != KafkaError._PARTITION_EOF:
                        emit("consume_error", error=str(m.error()))
                    continue
                value = m.value()
                batch.append([m.topic(), m.partition(), m.offset(),
                              value.decode("utf-8", "replace") if value is not None else None])
            if not batch:
                continue
            self.consumed += len(batch)
            emit("records", items=batch)
            offsets = {}
            for t, p, o, _v in batch:
                offsets[(t, p)] = max(offsets.get((t, p), 0), o + 1)
            if args.commit == "sync":
                self.pending.update(offsets)
                self.commit_sync(dict(self.pending))
            elif args.commit == "async":
                tps = [TopicPartition(t, p, o) for (t, p), o in sorted(offsets.items())]
                try:
                    self.consumer.commit(offsets=tps, asynchronous=True)
                except KafkaException as e:
                    emit("commit_failed", offsets=offsets_list(tps), error=str(e.args[0]))
        if args.commit == "sync":
            self.commit_sync(dict(self.pending))
        result = {"consumed": self.consumed}
        if args.count is not None:
            md = self.consumer.list_topics(timeout=10)
            parts = [TopicPartition(t, p) for t in args.topic for p in sorted(md.topics[t].partitions)]
            result["committed"] = offsets_list(self.consumer.committed(parts, timeout=10))
        self.consumer.close()
        emit("closed")
        emit("result", **result)


if __name__ == "__main__":
    child.main(lambda: Runner(parse_args()).run())
