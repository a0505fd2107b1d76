"""confluent-kafka 2.x AdminClient for consumer groups, as a child process
answering commands (client virtualenv only: 1.7 has no group admin API).

Each stdin command {"op": ..., "id": n, ...} gets one {"ev": "reply", "id": n,
...} event; an operation that raised gets "error" (the KafkaError's name) and
"code" in its reply. Errors are KafkaError names ("GROUP_ID_NOT_FOUND").

  {"op": "list"}                          groups: [[group_id, state, simple]]
  {"op": "describe", "groups": [g...]}    groups: {g: description or {"error"}}
  {"op": "delete", "groups": [g...]}      groups: {g: null or error name}
  {"op": "offsets", "group": g, "partitions": [[t, p]...] or null}
                                          offsets: [[t, p, offset, error]]
  {"op": "alter", "group": g, "offsets": [[t, p, offset]...]}
                                          offsets: [[t, p, offset, error]]
  {"op": "alter_many", "groups": [g...], "offsets": [[t, p, offset]],
   "window": w}                           the same offsets for many groups, w
                                          requests in flight: ok (count),
                                          errors ({g: error}), seconds
  {"op": "stop"} or EOF                   exit 0
"""

import argparse
import time

import child
from child import emit

from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

try:
    from confluent_kafka import ConsumerGroupTopicPartitions
except ImportError:  # older 2.x
    from confluent_kafka.admin import ConsumerGroupTopicPartitions


def error_name(e):
    if isinstance(e, KafkaException):
        return e.args[0].name()
    return repr(e)


def error_code(e):
    if isinstance(e, KafkaException):
        return e.args[0].code()
    return None


def part_error(p):
    return p.error.name() if p.error is not None else None


def enum_name(x):
    return getattr(x, "name", None) or str(x)


class Admin:
    def __init__(self, bootstrap, timeout):
        self.timeout = timeout
        self.admin = AdminClient({"bootstrap.servers": bootstrap, "error_cb": self.on_error})

    def on_error(self, err):
        emit("client_error", code=err.code(), name=err.name(), error=err.str())

    def op_list(self, cmd):
        result = self.admin.list_consumer_groups(request_timeout=self.timeout).result(timeout=self.timeout + 5)
        return {"groups": [[g.group_id, enum_name(g.state), g.is_simple_consumer_group] for g in result.valid],
                "errors": [str(e) for e in result.errors]}

    def op_describe(self, cmd):
        futures = self.admin.describe_consumer_groups(cmd["groups"], request_timeout=self.timeout)
        out = {}
        for g, f in futures.items():
            try:
                d = f.result(timeout=self.timeout + 5)
            except KafkaException as e:
                out[g] = {"error": error_name(e), "code": error_code(e)}
                continue
            out[g] = {
                "state": enum_name(d.state),
                "simple": d.is_simple_consumer_group,
                "assignor": d.partition_assignor,
                "coordinator": d.coordinator.id if d.coordinator is not None else None,
                "members": [{
                    "member_id": m.member_id,
                    "client_id": m.client_id,
                    "host": m.host,
                    "instance_id": m.group_instance_id,
                    "assignment": sorted([tp.topic, tp.partition] for tp in
                                         (m.assignment.topic_partitions if m.assignment else [])),
                } for m in d.members],
            }
        return {"groups": out}

    def op_delete(self, cmd):
        futures = self.admin.delete_consumer_groups(cmd["groups"], request_timeout=self.timeout)
        out = {}
        for g, f in futures.items():
            try:
                f.result(timeout=self.timeout + 5)
                out[g] = None
            except KafkaException as e:
                out[g] = error_name(e)
        return {"groups": out}

    def op_offsets(self, cmd):
        parts = cmd.get("partitions")
        tps = [TopicPartition(t, p) for t, p in parts] if parts else None
        futures = self.admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(cmd["group"], tps)],
                                                         request_timeout=self.timeout)
        res = futures[cmd["group"]].result(timeout=self.timeout + 5)
        return {"offsets": sorted([p.topic, p.partition, p.offset, part_error(p)] for p in res.topic_partitions)}

    def op_alter(self, cmd):
        tps = [TopicPartition(t, p, o) for t, p, o in cmd["offsets"]]
        futures = self.admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(cmd["group"], tps)],
                                                          request_timeout=self.timeout)
        res = futures[cmd["group"]].result(timeout=self.timeout + 5)
        return {"offsets": sorted([p.topic, p.partition, p.offset, part_error(p)] for p in res.topic_partitions)}

    def op_alter_many(self, cmd):
        offsets = cmd["offsets"]
        window = int(cmd.get("window", 200))
        groups = list(cmd["groups"])
        start = time.monotonic()
        in_flight = []
        errors = {}
        ok = 0

        def settle(g, f):
            nonlocal ok
            try:
                res = f.result(timeout=self.timeout + 5)
                bad = [part_error(p) for p in res.topic_partitions if p.error is not None]
                if bad:
                    errors[g] = bad[0]
                else:
                    ok += 1
            except KafkaException as e:
                errors[g] = error_name(e)

        for g in groups:
            if len(in_flight) >= window:
                settle(*in_flight.pop(0))
            tps = [TopicPartition(t, p, o) for t, p, o in offsets]
            f = self.admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(g, tps)],
                                                        request_timeout=self.timeout)[g]
            in_flight.append((g, f))
        for g, f in in_flight:
            settle(g, f)
        return {"ok": ok, "errors": dict(list(errors.items())[:20]), "error_count": len(errors),
                "seconds": time.monotonic() - start}


def run():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--timeout", type=float, default=30.0, help="request_timeout of each operation (s)")
    args = ap.parse_args()
    admin = Admin(args.bootstrap, args.timeout)
    commands = child.Commands()
    emit("started")
    while True:
        cmd = commands.q.get()
        op = cmd.get("op")
        if op in ("stop", "eof"):
            break
        fn = getattr(admin, "op_" + str(op), None)
        reply = {"id": cmd.get("id"), "op": op}
        if fn is None:
            reply["error"] = "unknown op"
        else:
            try:
                reply.update(fn(cmd))
            except KafkaException as e:
                reply.update(error=error_name(e), code=error_code(e))
            except Exception as e:  # noqa: BLE001 - reported to the test
                reply.update(error=repr(e))
        emit("reply", **reply)
    emit("result")


if __name__ == "__main__":
    child.main(run)
