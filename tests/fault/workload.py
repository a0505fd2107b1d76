"""The workload's clients, one process each, run under the client
virtualenv's python (confluent-kafka 2.x, current librdkafka). Each writes
its history as JSON lines to --out:

  produce  an acks=all producer (idempotent or not) sending "<id>-<seq>"
           round-robin over the partitions at --rate records/s:
           {"k":"ack","t":T,"v":V,"p":P,"o":O} for each acknowledgement,
           {"k":"fail","t":T,"v":V,"e":ERR} for each definite failure,
           {"k":"sent","n":N} at the end (records handed to the client);
  consume  a consumer reading every partition from the beginning while the
           producer writes: {"k":"read","t":T,"p":P,"o":O,"v":V};
  final    reads every partition from the beginning up to its high
           watermark and exits: {"k":"read",...}, then {"k":"hw","p":P,"o":HW}.

Runs until SIGTERM (produce, consume); a producer then waits up to 30 s for
what is in flight."""

import argparse
import json
import signal
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

stopping = False


def on_term(signum, frame):
    global stopping
    stopping = True


class Out:
    def __init__(self, path):
        self.f = open(path, "a", buffering=1)  # line by line: the orchestrator follows acks live

    def __call__(self, **event):
        self.f.write(json.dumps(event, separators=(",", ":")) + "\n")

    def close(self):
        self.f.close()


def common_config(args):
    return {
        "bootstrap.servers": args.bootstrap,
        # librdkafka's defaults otherwise (metadata refreshed every 5 min and
        # on errors): a client finds a new leader only when its old one or
        # a request failure sends it looking.
        "log_level": 4,
    }


def produce(args, out):
    seq = 0

    def make():
        cfg = common_config(args)
        cfg.update({
            "acks": "all",
            "enable.idempotence": args.idempotent,
            "linger.ms": 5,
            "compression.type": "none",
            "message.timeout.ms": 60000,
            "error_cb": on_error,
        })
        return Producer(cfg)

    fatal = []

    def on_error(err):
        out(k="error", t=time.time(), e=str(err))
        if err.fatal():
            fatal.append(err)

    def on_delivery(err, msg):
        v = msg.value().decode()
        if err is None:
            out(k="ack", t=time.time(), v=v, p=msg.partition(), o=msg.offset())
        else:
            out(k="fail", t=time.time(), v=v, e=err.name(), retriable=err.retriable())

    producer = make()
    interval = 1.0 / args.rate
    next_send = time.monotonic()
    while not stopping:
        if fatal:
            # An idempotent producer's fatal error: what it had in flight is
            # failed by the client; a new producer (a new producer id) goes on.
            out(k="fatal", t=time.time(), e=str(fatal[0]))
            producer.flush(10)
            fatal.clear()
            producer = make()
        now = time.monotonic()
        if now < next_send or len(producer) >= 20000:
            producer.poll(min(0.05, max(0.001, next_send - now)))
            continue
        value = "%s-%d" % (args.id, seq)
        try:
            producer.produce(args.topic, value=value.encode(), partition=seq % args.partitions,
                             on_delivery=on_delivery)
        except BufferError:
            producer.poll(0.05)
            continue
        seq += 1
        next_send += interval
        if now - next_send > 1.0:  # fell behind (a stall): do not burst
            next_send = now
        producer.poll(0)
    left = producer.flush(30)
    out(k="sent", t=time.time(), n=seq, unresolved=left)


def consumer(args, group):
    cfg = common_config(args)
    cfg.update({
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": True,
        "check.crcs": True,
        "fetch.wait.max.ms": 100,
    })
    c = Consumer(cfg)
    c.assign([TopicPartition(args.topic, p, OFFSET_BEGINNING) for p in range(args.partitions)])
    return c


def record(out, msg):
    out(k="read", t=time.time(), p=msg.partition(), o=msg.offset(), v=msg.value().decode())


def consume(args, out):
    c = consumer(args, "fault-consumer-%s" % args.id)
    while not stopping:
        msg = c.poll(0.2)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() != KafkaError._PARTITION_EOF:
                out(k="error", t=time.time(), e=str(msg.error()))
            continue
        record(out, msg)
    c.close()


def final(args, out):
    """Everything below each partition's high watermark, read once."""
    c = consumer(args, "fault-final-%s" % args.id)
    deadline = time.monotonic() + args.timeout
    hw = {}
    for p in range(args.partitions):
        while p not in hw:
            try:
                hw[p] = c.get_watermark_offsets(TopicPartition(args.topic, p), timeout=5)[1]
            except Exception as e:  # a leader still moving: ask again
                if time.monotonic() > deadline:
                    raise
                out(k="error", t=time.time(), e=str(e))
                time.sleep(0.5)
    done = {p for p in hw if hw[p] == 0}
    while len(done) < args.partitions and time.monotonic() < deadline:
        msg = c.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF and msg.offset() >= hw[msg.partition()]:
                done.add(msg.partition())
            elif msg.error().code() != KafkaError._PARTITION_EOF:
                out(k="error", t=time.time(), e=str(msg.error()))
            continue
        if msg.offset() < hw[msg.partition()]:
            record(out, msg)
        if msg.offset() + 1 >= hw[msg.partition()]:
            done.add(msg.partition())
    for p, o in sorted(hw.items()):
        out(k="hw", t=time.time(), p=p, o=o, complete=p in done)
    c.close()
    return 0 if len(done) == args.partitions else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["produce", "consume", "final"])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--partitions", type=int, required=True)
    ap.add_argument("--id", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--idempotent", type=int, default=1)
    ap.add_argument("--rate", type=float, default=200)
    ap.add_argument("--timeout", type=float, default=120)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    out = Out(args.out)
    try:
        status = {"produce": produce, "consume": consume, "final": final}[args.mode](args, out) or 0
    finally:
        out.close()
    sys.exit(status)


if __name__ == "__main__":
    main()
