"""The summary table (text) and the PNG timeline of acknowledgements per
partition with the faults marked."""

FAULT_COLOURS = {
    "kill": "#d62728",
    "pause": "#ff7f0e",
    "partition": "#1f77b4",
    "zk-restart": "#9467bd",
    "rolling": "#2ca02c",
    "netem": "#8c564b",
}


def table(rows, headers):
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(headers, widths)).rstrip()]
    for row in rows:
        lines.append("  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip())
    return "\n".join(lines)


def summary(topic_results, kinds, rounds, divergences, deaths, sanitizer, stuck, elapsed_s):
    """The text summary; its last line holds the totals."""
    out = []
    out.append(table([[r["topic"], "yes" if r["idempotent"] else "no", r["acked"], r["lost"], r["dup_acked"],
                       r["dup_unacked"], r["inconsistent"], r["reordered"], r["reads"], r["read_bad"],
                       r["unacked_present"], r["fails"]] for r in topic_results],
                     ["topic", "idempotent", "acked", "lost", "dup-acked", "dup-unacked", "inconsistent",
                      "reordered", "reads", "read-bad", "unacked-present", "failed-sends"]))
    out.append("")
    out.append(table([[k, n, "%.1f" % med, "%.1f" % mx] for k, (n, med, mx) in sorted(kinds.items())],
                     ["fault", "rounds", "unavail-median-s", "unavail-max-s"]))
    out.append("")
    for title, items in (("replica divergence", divergences), ("brokers that died unkilled", deaths),
                         ("sanitizer reports", sanitizer), ("no full ISR after heal", stuck)):
        if items:
            out.append("%s (%d):" % (title, len(items)))
            out.extend("  " + str(x) for x in items[:20])
    for r in topic_results:
        for kind, examples in r["examples"].items():
            allowed = not r["idempotent"] and kind in ("duplicated", "reordered")
            out.append("%s %s%s:" % (r["topic"], kind, " (allowed without idempotence)" if allowed else ""))
            out.extend("  " + x for x in examples)
    acked = sum(r["acked"] for r in topic_results)
    lost = sum(r["lost"] for r in topic_results)
    dup = sum(r["dup_acked"] + r["dup_unacked"] for r in topic_results)
    dup_idem = sum(r["dup_acked"] + r["dup_unacked"] for r in topic_results if r["idempotent"])
    inconsistent = sum(r["inconsistent"] for r in topic_results)
    reordered = sum(r["reordered"] for r in topic_results if r["idempotent"])
    read_bad = sum(r["read_bad"] for r in topic_results)
    violations = (sum(r["violations"] for r in topic_results) + len(divergences) + len(deaths) + len(sanitizer) +
                  len(stuck))
    worst = max((mx for _, _, mx in kinds.values()), default=0.0)
    out.append("")
    out.append("rounds %d  %.0f s" % (len(rounds), elapsed_s))
    out.append("acked %d lost %d duplicated %d (idempotent %d) inconsistent %d reordered %d read-bad %d "
               "divergent %d died %d sanitizer %d stuck %d max-unavailable %.1fs => %s" %
               (acked, lost, dup, dup_idem, inconsistent, reordered, read_bad, len(divergences), len(deaths),
                len(sanitizer), len(stuck), worst, "FAIL" if violations else "PASS"))
    return "\n".join(out), violations


def timeline_png(path, t0, acks_by_row, rounds):
    """acks_by_row: [(label, [ack times])]; rounds: fault events with t, end,
    kind. Returns the path, or None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    end = max([max(ts) for _, ts in acks_by_row if ts] + [r["end"] for r in rounds] + [t0 + 1])
    width = min(40, max(10, (end - t0) / 60))
    fig, ax = plt.subplots(figsize=(width, 1.2 + 0.35 * len(acks_by_row)), dpi=90)
    seen = set()
    for r in rounds:
        label = r["kind"] if r["kind"] not in seen else None
        seen.add(r["kind"])
        ax.axvspan(r["t"] - t0, r["healed"] - t0, color=FAULT_COLOURS.get(r["kind"], "grey"), alpha=0.25, lw=0,
                   label=label)
    for y, (label, times) in enumerate(acks_by_row):
        xs = [t - t0 for t in times]
        ax.plot(xs, [y] * len(xs), "|", color="black", markersize=6, alpha=0.15, rasterized=True)
    ax.set_yticks(range(len(acks_by_row)))
    ax.set_yticklabels([label for label, _ in acks_by_row], fontsize=8)
    ax.set_xlabel("seconds since the workload started (each tick: one acknowledgement; shaded: fault in force)")
    ax.set_xlim(0, end - t0)
    ax.set_ylim(-0.7, len(acks_by_row) - 0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, 1.0 + 0.9 / (1 + len(acks_by_row))), ncol=6, fontsize=8,
              frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
