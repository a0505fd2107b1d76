"""The checker: what the history says about safety and availability.

Per topic (one producer each, idempotent or not), against the final read
(every partition from the beginning to its high watermark, after the last
heal and a full ISR):
  lost            acknowledged values missing from the final read;
  inconsistent    an acknowledged (partition, offset) holding another value
                  (or the acknowledged value found at another offset);
  dup_acked       acknowledged values present more than once;
  dup_unacked     values never acknowledged present more than once;
  reordered       a producer's values out of send order within a partition;
  read_bad        a value a concurrent consumer read at (partition, offset)
                  that the final read does not hold there (a read of data
                  that was later lost or replaced);
  read_backwards  a consumer's reads of a partition going back (info);
  unacked_present records the client never saw acknowledged, present (info:
                  a timed-out or failed send may still have been written).
Duplicates and reordering are violations for the idempotent producer only:
without idempotence a retried send may be written twice, and with several
requests in flight a retry may land after a later batch (Kafka's own
validator makes the same distinction).

Availability: for each round, the longest time a partition went without
an acknowledgement (the longest over every partition of both topics) from
the fault's start to the round's end (a full ISR and both producers acked
again); per fault kind (partitions per variant) its median and maximum."""

import json
import statistics


def load_jsonl(path):
    out = []
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        out.append({"k": "garbage", "line": line[:200]})
    except FileNotFoundError:
        pass
    return out


def _seq(value):
    return int(value.rsplit("-", 1)[1])


def check_topic(topic, idempotent, produced, reads, final):
    """produced: the producer's events; reads: lists of events, one per
    consumer; final: the final read's events. Returns a dict of counts and
    examples."""
    acks = [e for e in produced if e["k"] == "ack"]
    acked = {}
    for e in acks:
        acked.setdefault(e["v"], []).append((e["p"], e["o"]))
    log = {}  # (p, o) -> value
    where = {}  # value -> [(p, o)]
    for e in final:
        if e["k"] == "read":
            log[(e["p"], e["o"])] = e["v"]
            where.setdefault(e["v"], []).append((e["p"], e["o"]))
    hw = {e["p"]: e["o"] for e in final if e["k"] == "hw"}
    complete = all(e.get("complete", False) for e in final if e["k"] == "hw") and bool(hw)

    r = {"topic": topic, "idempotent": idempotent, "acked": len(acked), "final_records": len(log),
         "final_complete": complete, "examples": {}}

    def example(kind, text):
        r["examples"].setdefault(kind, [])
        if len(r["examples"][kind]) < 5:
            r["examples"][kind].append(text)

    lost = [v for v in acked if v not in where]
    r["lost"] = len(lost)
    for v in lost[:5]:
        example("lost", "%s acknowledged at %s, absent" % (v, acked[v]))
    inconsistent = 0
    # librdkafka may acknowledge a record without its offset (after a
    # leader change, the answer's position lost): its presence is checked
    # (lost, above), its position cannot be.
    r["acked_without_offset"] = 0
    for v, places in acked.items():
        for p, o in places:
            if o is None or o < 0:
                r["acked_without_offset"] += 1
                continue
            held = log.get((p, o))
            if held is not None and held != v:
                inconsistent += 1
                example("inconsistent", "%s-%d offset %d acknowledged as %s holds %s" % (topic, p, o, v, held))
            elif held is None and v in where:
                inconsistent += 1
                example("inconsistent", "%s acknowledged at %d/%d found at %s" % (v, p, o, where[v]))
    r["inconsistent"] = inconsistent
    dups = {v: w for v, w in where.items() if len(w) > 1}
    r["dup_acked"] = sum(1 for v in dups if v in acked)
    r["dup_unacked"] = len(dups) - r["dup_acked"]
    for v, w in list(dups.items())[:5]:
        example("duplicated", "%s at %s%s" % (v, w, "" if v in acked else " (never acknowledged)"))
    r["unacked_present"] = sum(1 for v in where if v not in acked)

    reordered = 0
    last = {}
    for (p, o) in sorted(log):
        s = _seq(log[(p, o)])
        if p in last and s < last[p][0]:
            reordered += 1
            example("reordered", "%s-%d: %s at offset %d after %d at offset %d" % (topic, p, log[(p, o)], o,
                                                                                   last[p][0], last[p][1]))
        if p not in last or s > last[p][0]:
            last[p] = (s, o)
    r["reordered"] = reordered

    read_bad = read_backwards = read_total = 0
    for consumer in reads:
        pos = {}
        for e in consumer:
            if e["k"] != "read":
                continue
            read_total += 1
            p, o = e["p"], e["o"]
            if o < hw.get(p, 0) and log.get((p, o)) != e["v"]:
                read_bad += 1
                example("read_bad", "%s-%d offset %d read as %s, final %s" % (topic, p, o, e["v"], log.get((p, o))))
            if p in pos and o <= pos[p]:
                read_backwards += 1
            pos[p] = o
    r["reads"] = read_total
    r["read_bad"] = read_bad
    r["read_backwards"] = read_backwards
    r["fails"] = sum(1 for e in produced if e["k"] == "fail")
    sent = [e for e in produced if e["k"] == "sent"]
    r["sent"] = sent[-1]["n"] if sent else None

    r["violations"] = r["lost"] + r["inconsistent"] + r["read_bad"] + (0 if complete else 1)
    if idempotent:
        r["violations"] += r["dup_acked"] + r["dup_unacked"] + r["reordered"]
    return r


def longest_gap(ack_times, start, end):
    """The longest time within [start, end] without an acknowledgement
    (ack_times sorted); the window's edges count as its first and last
    points."""
    import bisect

    inside = ack_times[bisect.bisect_right(ack_times, start):bisect.bisect_left(ack_times, end)]
    points = [start] + inside + [end]
    return max(b - a for a, b in zip(points, points[1:]))


def unavailability(rounds, producer_ack_times):
    """rounds: fault events with "t" and "end"; producer_ack_times: sorted
    ack times per partition. Sets round["gap_s"]; returns kind -> (rounds,
    median, max)."""
    per_kind = {}
    for r in rounds:
        gap = max(longest_gap(times, r["t"], r["end"]) for times in producer_ack_times)
        r["gap_s"] = round(gap, 2)
        key = r["kind"] + (":" + r["variant"] if r["kind"] == "partition" else "")
        per_kind.setdefault(key, []).append(gap)
    return {k: (len(v), statistics.median(v), max(v)) for k, v in per_kind.items()}


def split_by_leader(rounds, ack_times):
    """For rounds aimed at one broker: the longest acknowledgement gap of
    the partitions it led when the fault began (gap_led_s) and of the
    others (gap_other_s). ack_times: (topic, partition) -> sorted times."""
    for r in rounds:
        if not isinstance(r.get("target"), int):
            continue
        led, other = [], []
        for (topic, p), times in ack_times.items():
            leader = r.get("leaders", {}).get(topic, {}).get(str(p))
            (led if leader == r["target"] else other).append(longest_gap(times, r["t"], r["end"]))
        if led:
            r["gap_led_s"] = round(max(led), 2)
        if other:
            r["gap_other_s"] = round(max(other), 2)
