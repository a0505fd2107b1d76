"""kafka-python with nothing but bootstrap_servers, as a new user writes it:
kafka-python 3.x then is an idempotent producer (acks=all, InitProducerId,
sequence numbers). Produces --count records "<prefix>-<i>" to --topic
(the default partitioner), waits for every acknowledgement, then reads the
topic back from the beginning with a group-less KafkaConsumer and reports
"result": the producer's settings, the acknowledged [partition, offset,
value] and everything read ([partition, offset, value])."""

import argparse
import time

import child
from child import emit

import kafka
from kafka import KafkaConsumer, KafkaProducer, TopicPartition


def run():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--count", type=int, default=500)
    ap.add_argument("--prefix", default="kp")
    ap.add_argument("--timeout", type=float, default=90.0)
    args = ap.parse_args()
    child.watchdog(args.timeout + 60)
    producer = KafkaProducer(bootstrap_servers=args.bootstrap)
    settings = {k: str(producer.config.get(k)) for k in ("enable_idempotence", "acks", "retries")}
    emit("started", version=kafka.__version__, settings=settings)
    futures = [(i, producer.send(args.topic, value=("%s-%d" % (args.prefix, i)).encode()))
               for i in range(args.count)]
    producer.flush(timeout=60)
    acked = []
    for i, f in futures:
        md = f.get(timeout=30)
        acked.append([md.partition, md.offset, "%s-%d" % (args.prefix, i)])
    producer.close(timeout=10)
    emit("produced", count=len(acked))

    consumer = KafkaConsumer(bootstrap_servers=args.bootstrap, enable_auto_commit=False,
                             auto_offset_reset="earliest", fetch_max_wait_ms=100)
    parts = sorted(consumer.partitions_for_topic(args.topic))
    tps = [TopicPartition(args.topic, q) for q in parts]
    consumer.assign(tps)
    consumer.seek_to_beginning()
    ends = consumer.end_offsets(tps)
    got = []
    deadline = time.monotonic() + args.timeout
    try:
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise AssertionError("read %d records of %s in %ss" % (len(got), ends, args.timeout))
            for _tp, records in consumer.poll(timeout_ms=500).items():
                got.extend([r.partition, r.offset, r.value.decode()] for r in records)
    finally:
        consumer.close()
    emit("result", settings=settings, acked=acked, read=got)


if __name__ == "__main__":
    child.main(run)
