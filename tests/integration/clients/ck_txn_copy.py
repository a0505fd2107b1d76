"""A confluent-kafka 2.x consume-transform-produce loop as a child process of
a test (tests/integration/test_groups_txn.py): a read_committed group
consumer of --in-topic and a transactional producer (--txn-id) copying each
record to --out-topic, a transaction per batch, the consumer's positions sent
with send_offsets_to_transaction (KIP-447: with the consumer's group
metadata, so TxnOffsetCommit v3 names its member and generation).

Every --abort-every'th transaction (1-based index divisible by it) is
aborted instead of committed; the consumer then rewinds to its committed
offsets and copies the same records again in the next transaction. A
retriable error (a coordinator moving or loading) is retried; one that needs
the transaction aborted aborts it ("forced_abort") and rewinds the same way.

Events (see child.py): "started"; "begin" and "offsets_sent" (a
transaction's progress); "retry" and "abortable" (what failed and why); "txn" (n, outcome "commit" / "abort" / "forced_abort",
offsets [[topic, partition, next offset]] sent, committed: what committed()
answers right after the outcome, with require_stable, as a read_committed
consumer asks); "result" (copied records, transactions committed / aborted,
final committed offsets), last, after the consumer closed.
"""

import argparse
import time

import child
from child import emit

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition


def parse_args():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--in-topic", required=True)
    ap.add_argument("--out-topic", required=True)
    ap.add_argument("--txn-id", required=True)
    ap.add_argument("--count", type=int, required=True, help="records to copy (committed)")
    ap.add_argument("--batch", type=int, default=25)
    ap.add_argument("--abort-every", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--debug", default=None, help="librdkafka debug contexts (to stderr)")
    return ap.parse_args()


def offsets_list(parts):
    return sorted([p.topic, p.partition, p.offset] for p in parts)


# Errors Kafka's clients retry on though librdkafka's committed() does not
# flag them retriable: the group's coordinator moved, is loading, or was
# not reached in time.
COORDINATOR_MOVING = {KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
                      KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError.REQUEST_TIMED_OUT,
                      KafkaError._TIMED_OUT, KafkaError._TRANSPORT}


def retrying(what, fn, deadline):
    """fn() again while it fails with a retriable error (a coordinator moving
    or loading). Errors that need the transaction aborted are raised as
    AbortNeeded; others as they are."""
    while True:
        try:
            return fn()
        except KafkaException as e:
            err = e.args[0]
            if err.txn_requires_abort():
                raise AbortNeeded("%s: %s" % (what, err)) from None
            if not (err.retriable() or err.code() in COORDINATOR_MOVING) or time.monotonic() > deadline:
                raise
            emit("retry", what=what, error=str(err))
            time.sleep(0.2)


class AbortNeeded(Exception):
    pass


def run():
    args = parse_args()
    child.watchdog(args.timeout + 60)
    deadline = time.monotonic() + args.timeout
    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "client.id": "ck-txn-copy-consumer",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "session.timeout.ms": 10000,
        "heartbeat.interval.ms": 500,
        **({"debug": args.debug} if args.debug else {}),
    })
    producer = Producer({
        "bootstrap.servers": args.bootstrap,
        "client.id": "ck-txn-copy-producer",
        "transactional.id": args.txn_id,
        "transaction.timeout.ms": 60000,
        **({"debug": args.debug} if args.debug else {}),
    })
    retrying("init_transactions", lambda: producer.init_transactions(30), deadline)
    consumer.subscribe([args.in_topic])
    emit("started")
    copied = committed_txns = aborted_txns = 0
    n = 0
    while copied < args.count:
        if time.monotonic() > deadline:
            raise AssertionError("copied %d of %d in time" % (copied, args.count))
        msgs = [m for m in consumer.consume(args.batch, 1.0) if m.error() is None]
        if not msgs:
            continue
        n += 1
        emit("begin", n=n, records=len(msgs))
        producer.begin_transaction()
        assignment = consumer.assignment()
        # Partitions not consumed yet have no position to send.
        positions = [p for p in consumer.position(assignment) if p.offset >= 0]
        outcome = "abort" if args.abort_every > 0 and n % args.abort_every == 0 else "commit"
        try:
            for m in msgs:
                producer.produce(args.out_topic, key=m.key(), value=m.value(),
                                 partition=m.partition())
            retrying("send_offsets_to_transaction",
                     lambda: producer.send_offsets_to_transaction(
                         positions, consumer.consumer_group_metadata(), 30), deadline)
            emit("offsets_sent", n=n)
            if outcome == "commit":
                retrying("commit_transaction", lambda: producer.commit_transaction(30), deadline)
        except AbortNeeded as e:
            emit("abortable", error=str(e))
            outcome = "forced_abort"
        if outcome != "commit":
            retrying("abort_transaction", lambda: producer.abort_transaction(30), deadline)
            aborted_txns += 1
        else:
            committed_txns += 1
            copied += len(msgs)
        committed = retrying("committed", lambda: consumer.committed(assignment, timeout=30),
                             deadline)
        emit("txn", n=n, outcome=outcome, records=len(msgs), offsets=offsets_list(positions),
             committed=offsets_list(committed))
        if outcome != "commit":
            # Copy them again: back to what the group last committed.
            for tp in committed:
                consumer.seek(tp if tp.offset >= 0 else TopicPartition(tp.topic, tp.partition, 0))
    parts = consumer.assignment()
    final = retrying("committed", lambda: consumer.committed(parts, timeout=30), deadline)
    consumer.close()
    emit("result", copied=copied, committed_txns=committed_txns, aborted_txns=aborted_txns,
         committed=offsets_list(final))


if __name__ == "__main__":
    child.main(run)
