"""A confluent-kafka 2.x transactional producer (librdkafka) as a child
process answering commands (client virtualenv only), for the transaction
tests (test_txn_*.py).

Each stdin command {"op": ..., "id": n, ...} gets one {"ev": "reply",
"id": n, ...} event; an operation that raised gets "error" (the KafkaError's
name), "fatal", "abortable" and "retriable" in its reply.

  {"op": "init"}                              init_transactions()
  {"op": "begin"}                             begin_transaction()
  {"op": "produce", "topic": t, "partition": p, "values": [v...]}
                                              produce each value, flush;
                                              offsets: [offset...] (or
                                              "error" of the first failure)
  {"op": "send_offsets", "group": g, "offsets": [[t, p, next_offset]...]}
                                              send_offsets_to_transaction()
  {"op": "commit"} / {"op": "abort"}          commit_/abort_transaction()
  {"op": "stop"} or EOF                       exit 0
"""

import argparse

import child
from child import emit

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition


def error_fields(e):
    if isinstance(e, KafkaException):
        err = e.args[0]
        return {"error": err.name(), "fatal": err.fatal(), "abortable": err.txn_requires_abort(),
                "retriable": err.retriable(), "message": err.str()}
    return {"error": repr(e), "fatal": None, "abortable": None, "retriable": None}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--transactional-id", required=True)
    ap.add_argument("--transaction-timeout-ms", type=int, default=60000)
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per blocking call")
    ap.add_argument("-X", action="append", default=[], help="extra librdkafka property k=v")
    args = ap.parse_args()
    conf = {"bootstrap.servers": args.bootstrap, "transactional.id": args.transactional_id,
            "transaction.timeout.ms": args.transaction_timeout_ms, "linger.ms": 5,
            "error_cb": lambda err: emit("client_error", error=err.name(), message=err.str())}
    conf.update(child.kv_list(args.X))
    producer = Producer(conf)
    emit("started")
    commands = child.Commands()
    consumers = {}

    def group_metadata(group):
        if group not in consumers:
            consumers[group] = Consumer({"bootstrap.servers": args.bootstrap, "group.id": group,
                                        "enable.auto.commit": False})
        return consumers[group].consumer_group_metadata()

    while True:
        cmd = commands.get()
        if cmd is None:
            producer.poll(0.05)
            continue
        op = cmd.get("op")
        if op in ("stop", "eof"):
            break
        reply = {"id": cmd.get("id"), "op": op}
        try:
            if op == "init":
                producer.init_transactions(args.timeout)
            elif op == "begin":
                producer.begin_transaction()
            elif op == "produce":
                delivered = []
                failed = []

                def done(err, msg):
                    if err is not None:
                        failed.append(err.name())
                    else:
                        delivered.append(msg.offset())

                for v in cmd["values"]:
                    producer.produce(cmd["topic"], value=v.encode(), partition=cmd["partition"],
                                     on_delivery=done)
                left = producer.flush(args.timeout)
                reply["offsets"] = delivered
                if failed or left:
                    reply["error"] = failed[0] if failed else "undelivered"
            elif op == "send_offsets":
                offsets = [TopicPartition(t, p, o) for t, p, o in cmd["offsets"]]
                producer.send_offsets_to_transaction(offsets, group_metadata(cmd["group"]), args.timeout)
            elif op == "commit":
                producer.commit_transaction(args.timeout)
            elif op == "abort":
                producer.abort_transaction(args.timeout)
            else:
                reply["error"] = "unknown op"
        except KafkaException as e:
            reply.update(error_fields(e))
        emit("reply", **reply)
    for c in consumers.values():
        c.close()
    emit("closed")


if __name__ == "__main__":
    child.main(main)
