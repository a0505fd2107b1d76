"""kafka-python group consumer (and producer) as a child process: runs with
kafka-python 3.x (the client virtualenv) or Debian's 2.0.2 (/usr/bin/python3).

--produce N: first produces N records "<prefix>-<i>" to partition i % the
topic's partitions, acks=all (kafka-python 3 is idempotent by default, so
that runs InitProducerId and the broker's sequence checks). Then a KafkaConsumer in --group
subscribes to --topic, consumes until --expect records arrived, commits
synchronously, and reports "result": consumed ([partition, offset, value]),
committed and end offsets of every partition ([topic, partition, offset]).
"""

import time

import child
from child import emit

import kafka
from kafka import KafkaConsumer, KafkaProducer, TopicPartition


def produce(args):
    kw = dict(bootstrap_servers=args.bootstrap, acks="all", linger_ms=5, request_timeout_ms=30000,
              max_block_ms=30000)
    producer = KafkaProducer(**kw)
    try:
        parts = None
        deadline = time.monotonic() + 30
        while not parts:
            if time.monotonic() > deadline:
                raise AssertionError("no partitions of %s after 30s" % args.topic)
            parts = producer.partitions_for(args.topic)
            if not parts:
                time.sleep(0.1)
        parts = sorted(parts)
        futures = [producer.send(args.topic, value=("%s-%d" % (args.prefix, i)).encode(),
                                 partition=parts[i % len(parts)])
                   for i in range(args.produce)]
        producer.flush(timeout=60)
        for f in futures:
            f.get(timeout=30)
    finally:
        producer.close(timeout=10)
    emit("produced", count=args.produce)


def committed_offset(consumer, tp):
    got = consumer.committed(tp)
    if got is not None and hasattr(got, "offset"):
        got = got.offset
    return got


def consume(args):
    consumer = KafkaConsumer(args.topic, bootstrap_servers=args.bootstrap, group_id=args.group,
                             client_id="kafka-python-%s" % kafka.__version__, auto_offset_reset="earliest",
                             enable_auto_commit=False, session_timeout_ms=10000, heartbeat_interval_ms=1000,
                             fetch_max_wait_ms=100, request_timeout_ms=30000)
    emit("started", version=kafka.__version__)
    got = []
    deadline = time.monotonic() + args.timeout
    try:
        while len(got) < args.expect:
            if time.monotonic() > deadline:
                raise AssertionError("consumed %d of %d records in %ss" % (len(got), args.expect, args.timeout))
            for tp, records in consumer.poll(timeout_ms=500).items():
                items = [[r.partition, r.offset, r.value.decode()] for r in records]
                got.extend(items)
                emit("records", items=items)
        consumer.commit()
        emit("commit_ack")
        parts = sorted(consumer.partitions_for_topic(args.topic))
        tps = [TopicPartition(args.topic, p) for p in parts]
        committed = [[args.topic, tp.partition, committed_offset(consumer, tp)] for tp in tps]
        ends = consumer.end_offsets(tps)
        end = [[args.topic, tp.partition, ends[tp]] for tp in tps]
        assignment = sorted([tp.topic, tp.partition] for tp in consumer.assignment())
    finally:
        consumer.close()
    emit("result", consumed=got, committed=committed, end=end, assignment=assignment)


def run():
    args = child.group_script_args("kp")
    if args.produce:
        produce(args)
    consume(args)


if __name__ == "__main__":
    child.main(run)
