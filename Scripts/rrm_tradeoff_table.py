#!/usr/bin/env python3
"""Prints the Markdown results table of Scripts/rrm_tradeoff.sh from the JSON files it leaves.
Usage: rrm_tradeoff_table.py OUT_DIR "mlp resnet20" """
import json
import os
import sys


def load(out, name):
    path = os.path.join(out, name + ".json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        text = f.read().strip()
    return json.loads(text) if text else None


def pct(x):
    return "–" if x is None else "%.2f%%" % (100 * x)


def main():
    out, students = sys.argv[1], sys.argv[2].split()
    rows = [("teacher", "PGD-AT (teacher)")]
    for s in students:
        rows += [(s + "-natural", "natural"), (s + "-pgd-at", "PGD-AT"), (s + "-rrm", "RRM from the teacher")]
    print("| model | training | clean | APGD-CE | APGD-T | worst case | training wall time |")
    print("|---|---|--:|--:|--:|--:|--:|")
    times = {}
    for name, how in rows:
        train, ev = load(out, name), load(out, "eval-" + name)
        attacks = {a["name"]: a["robust_accuracy"] for a in (ev or {}).get("attacks", [])}
        arch = (ev or {}).get("model", {}).get("arch", name.split("-")[0])
        seconds = train.get("seconds") if train else None
        times[name] = seconds
        print("| %s | %s | %s | %s | %s | %s | %s |" % (
            arch, how, pct(ev and ev["clean"]["accuracy"]), pct(attacks.get("apgd-ce")), pct(attacks.get("apgd-t")),
            pct(ev and ev["worst_case"]["robust_accuracy"]), "–" if seconds is None else "%.0f s" % seconds))
    print()
    for s in students:
        a, b = times.get(s + "-pgd-at"), times.get(s + "-rrm")
        if a and b:
            print("- %s: PGD-AT took %.1fx the wall time of RRM (%.0f s vs %.0f s)." % (s, a / b, a, b))


if __name__ == "__main__":
    main()
