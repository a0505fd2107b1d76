"""aiokafka group consumer (and producer) as a child process (client
virtualenv). Same arguments and "result" as kp_group.py: --produce N records
"<prefix>-<i>" to partition i % partitions (acks=all, no idempotence), then a
group consumer consumes --expect records, commits, and reports consumed,
committed and end offsets."""

import asyncio
import time

import child
from child import emit

import aiokafka
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition


async def produce(args):
    producer = AIOKafkaProducer(bootstrap_servers=args.bootstrap, acks="all", enable_idempotence=False,
                                linger_ms=5, request_timeout_ms=30000)
    await producer.start()
    try:
        parts = sorted(await producer.partitions_for(args.topic))
        futures = [await producer.send(args.topic, value=("%s-%d" % (args.prefix, i)).encode(),
                                       partition=parts[i % len(parts)])
                   for i in range(args.produce)]
        await asyncio.wait_for(asyncio.gather(*futures), timeout=60)
    finally:
        await producer.stop()
    emit("produced", count=args.produce)


async def consume(args):
    consumer = AIOKafkaConsumer(args.topic, bootstrap_servers=args.bootstrap, group_id=args.group,
                                client_id="aiokafka-%s" % aiokafka.__version__, auto_offset_reset="earliest",
                                enable_auto_commit=False, session_timeout_ms=10000, heartbeat_interval_ms=1000,
                                fetch_max_wait_ms=100, request_timeout_ms=30000)
    await consumer.start()
    emit("started", version=aiokafka.__version__)
    got = []
    deadline = time.monotonic() + args.timeout
    try:
        while len(got) < args.expect:
            if time.monotonic() > deadline:
                raise AssertionError("consumed %d of %d records in %ss" % (len(got), args.expect, args.timeout))
            batches = await consumer.getmany(timeout_ms=500)
            for tp, records in batches.items():
                items = [[r.partition, r.offset, r.value.decode()] for r in records]
                got.extend(items)
                emit("records", items=items)
        await consumer.commit()
        emit("commit_ack")
        parts = sorted(consumer.partitions_for_topic(args.topic))
        tps = [TopicPartition(args.topic, p) for p in parts]
        committed = [[args.topic, tp.partition, await consumer.committed(tp)] for tp in tps]
        ends = await consumer.end_offsets(tps)
        end = [[args.topic, tp.partition, ends[tp]] for tp in tps]
        assignment = sorted([tp.topic, tp.partition] for tp in consumer.assignment())
    finally:
        await consumer.stop()
    emit("result", consumed=got, committed=committed, end=end, assignment=assignment)


async def main(args):
    if args.produce:
        await produce(args)
    await consume(args)


def run():
    asyncio.run(main(child.group_script_args("aiok")))


if __name__ == "__main__":
    child.main(run)
