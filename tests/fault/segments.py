"""Reads the brokers' partition directories (Kafka's on-disk format:
<log.dir>/<topic>-<p>/<base offset>.log of RecordBatch v2 batches, and the
log dir's replication-offset-checkpoint) and compares the replicas of each
partition batch by batch below the high watermark.

RecordBatch v2 header (shared/reference/kafka-protocol.md):
  baseOffset int64, batchLength int32, partitionLeaderEpoch int32,
  magic int8, crc uint32, attributes int16, lastOffsetDelta int32, ...
batchLength counts the bytes after itself; a batch is 12 + batchLength
bytes. The whole batch is compared (the leader stamps BaseOffset and
PartitionLeaderEpoch, and followers store its bytes as they are)."""

import glob
import os
import struct
import zlib

HEADER = struct.Struct(">qiibI")  # baseOffset, batchLength, leaderEpoch, magic, crc
MAX_BATCH = 64 << 20


def read_checkpoint(path):
    """(topic, partition) -> offset, from a Kafka offset checkpoint file."""
    out = {}
    try:
        with open(path) as f:
            lines = f.read().split("\n")
    except FileNotFoundError:
        return out
    if len(lines) < 2 or lines[0].strip() != "0":
        return out
    for line in lines[2:2 + int(lines[1])]:
        parts = line.split()
        if len(parts) == 3:
            out[(parts[0], int(parts[1]))] = int(parts[2])
    return out


class Batch:
    __slots__ = ("base", "last", "epoch", "crc", "digest", "size")

    def __init__(self, base, last, epoch, crc, digest, size):
        self.base, self.last, self.epoch, self.crc, self.digest, self.size = base, last, epoch, crc, digest, size


def read_batches(partition_dir):
    """The batches of a partition directory's segments in offset order, and
    an error string when a segment has a torn or corrupt tail (recovery
    truncates such tails at start; a cleanly stopped broker has none)."""
    batches, problems = [], []
    for path in sorted(glob.glob(os.path.join(partition_dir, "*.log"))):
        with open(path, "rb") as f:
            data = f.read()
        pos = 0
        while pos < len(data):
            if len(data) - pos < HEADER.size:
                problems.append("%s: %d stray bytes at %d" % (os.path.basename(path), len(data) - pos, pos))
                break
            base, length, epoch, magic, crc = HEADER.unpack_from(data, pos)
            if magic != 2 or length < 49 or length > MAX_BATCH or pos + 12 + length > len(data):
                problems.append("%s: bad batch header at %d" % (os.path.basename(path), pos))
                break
            last_delta = struct.unpack_from(">i", data, pos + 23)[0]
            raw = data[pos:pos + 12 + length]
            batches.append(Batch(base, base + last_delta, epoch, crc, zlib.crc32(raw), len(raw)))
            pos += 12 + length
    return batches, problems


def compare_partition(topic, partition, dirs, high_watermark):
    """Compares the replicas' batches below high_watermark. dirs: broker id
    -> its partition directory. Returns a list of divergence descriptions
    (empty when every replica holds the same batches up to it)."""
    logs = {b: read_batches(d) for b, d in dirs.items()}
    out = []
    for b, (_, problems) in logs.items():
        out.extend("%s-%d broker %d: %s" % (topic, partition, b, p) for p in problems)
    below = {b: [x for x in batches if x.base < high_watermark] for b, (batches, _) in logs.items()}
    ref_id = max(below, key=lambda b: len(below[b]))
    ref = below[ref_id]
    for b, batches in below.items():
        if b == ref_id:
            continue
        for i, (x, y) in enumerate(zip(ref, batches)):
            if (x.base, x.last, x.digest) != (y.base, y.last, y.digest):
                out.append("%s-%d: broker %d and broker %d differ at batch %d (offsets %d-%d epoch %d vs %d-%d "
                           "epoch %d)" % (topic, partition, ref_id, b, i, x.base, x.last, x.epoch, y.base, y.last,
                                          y.epoch))
                break
        else:
            if len(batches) != len(ref):
                end = batches[-1].last + 1 if batches else 0
                out.append("%s-%d: broker %d holds offsets below the high watermark %d only up to %d "
                           "(broker %d has them)" % (topic, partition, b, high_watermark, end, ref_id))
    # Offsets are dense and increasing in each replica.
    for b, batches in below.items():
        expect = None
        for x in batches:
            if expect is not None and x.base != expect:
                out.append("%s-%d broker %d: batch at %d after one ending at %d" %
                           (topic, partition, b, x.base, expect - 1))
                break
            expect = x.last + 1
    return out


def compare_replicas(data_dirs, topics):
    """data_dirs: broker id -> log dir. Compares every partition of the
    topics found on the brokers, up to the greatest high watermark the
    brokers checkpointed (the leader's; every replica in the ISR holds at
    least that much). Returns (divergences, partitions compared, batches
    compared)."""
    hws = {b: read_checkpoint(os.path.join(d, "replication-offset-checkpoint")) for b, d in data_dirs.items()}
    divergences, npart, nbatch = [], 0, 0
    for topic in topics:
        parts = set()
        for d in data_dirs.values():
            for path in glob.glob(os.path.join(d, topic + "-*")):
                suffix = path.rsplit("-", 1)[1]
                if suffix.isdigit():
                    parts.add(int(suffix))
        for p in sorted(parts):
            dirs = {b: os.path.join(d, "%s-%d" % (topic, p)) for b, d in data_dirs.items()
                    if os.path.isdir(os.path.join(d, "%s-%d" % (topic, p)))}
            hw = max((h.get((topic, p), 0) for h in hws.values()), default=0)
            divergences.extend(compare_partition(topic, p, dirs, hw))
            npart += 1
            nbatch += sum(1 for x in read_batches(next(iter(dirs.values())))[0] if x.base < hw)
    return divergences, npart, nbatch
