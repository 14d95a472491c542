#!/usr/bin/env python3
"""Prints the Markdown results table of Scripts/rrm_tradeoff.sh from the JSON files it leaves.
Usage: rrm_tradeoff_table.py OUT_DIR "mlp resnet20" """
import json
import os
import re
import statistics
import sys


def load(out, name):
    path = os.path.join(out, name + ".json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        text = f.read().strip()
    return json.loads(text) if text else None


def epoch_rate(out, name):
    """Median training images/s over the epochs the run's log reports: unlike the total wall
    time, it barely moves when something else briefly shares the machine."""
    path = os.path.join(out, name + ".log")
    if not os.path.exists(path):
        return None
    rates = [float(m.group(1)) for m in re.finditer(r"^epoch \d+/\d+: .*?, ([0-9.]+) images/s$", open(path).read(), re.M)]
    return statistics.median(rates) if rates else None


def pct(x):
    return "–" if x is None else "%.2f%%" % (100 * x)


def main():
    out, students = sys.argv[1], sys.argv[2].split()
    rows = [("teacher", "PGD-AT (teacher)")]
    for s in students:
        rows += [(s + "-natural", "natural"), (s + "-pgd-at", "PGD-AT"), (s + "-rrm", "RRM from the teacher")]
    print("| model | training | clean | APGD-CE | APGD-T | worst case | training wall time |")
    print("|---|---|--:|--:|--:|--:|--:|")
    times, cascaded = {}, False
    for name, how in rows:
        train, ev = load(out, name), load(out, "eval-" + name)
        attacks = {a["name"]: a["robust_accuracy"] for a in (ev or {}).get("attacks", [])}
        # In a cascade (--cascade) APGD-T attacks only what APGD-CE left: its figure is cumulative.
        cascade = any("cascade" in a.get("settings", {}) for a in (ev or {}).get("attacks", []))
        cascaded |= cascade
        arch = (ev or {}).get("model", {}).get("arch", name.split("-")[0])
        seconds = train.get("seconds") if train else None
        times[name] = seconds
        print("| %s | %s | %s | %s | %s | %s | %s |" % (
            arch, how, pct(ev and ev["clean"]["accuracy"]), pct(attacks.get("apgd-ce")),
            pct(attacks.get("apgd-t")) + (" †" if cascade else ""),
            pct(ev and ev["worst_case"]["robust_accuracy"]), "–" if seconds is None else "%.0f s" % seconds))
    print()
    if cascaded:
        print("† cascade (`--cascade`): APGD-T attacked only the images APGD-CE left correct, so its figure is")
        print("  the accuracy under both attacks, equal to the worst case.")
        print()
    for s in students:
        a, b = times.get(s + "-pgd-at"), times.get(s + "-rrm")
        if a and b:
            line = "- %s: PGD-AT took %.1fx the wall time of RRM (%.0f s vs %.0f s)" % (s, a / b, a, b)
            ra, rb = epoch_rate(out, s + "-pgd-at"), epoch_rate(out, s + "-rrm")
            if ra and rb:
                line += "; median epoch throughput %.0f vs %.0f images/s, a ratio of %.1fx" % (ra, rb, rb / ra)
            print(line + ".")


if __name__ == "__main__":
    main()
