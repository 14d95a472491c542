"""The table of Scripts/rrm_cost.sh: median rate per recipe, whole-run training time, ratio to PGD-AT.

Reads the recipe rows (NAME EPOCHS ...) on stdin and the epoch logs in the directory given; writes
the table to stdout and cost.json beside the logs.
"""

import glob
import json
import os
import re
import statistics
import sys

TRAIN_IMAGES = 60000


def rate(path):
    """The images per second of the epoch summary line in one log."""
    with open(path) as f:
        found = re.findall(r"epoch \d+/\d+: .*?([0-9.]+) images/s", f.read())
    if not found:
        sys.exit(f"rrm_cost_table: no epoch summary in {path}")
    return float(found[-1])


def main():
    out, limit, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rows = [line.split()[:2] for line in sys.stdin if line.strip()]
    measured = {}
    for name, _ in rows:
        source = "rrm" if name == "rrm-5ep" else name
        logs = sorted(glob.glob(os.path.join(out, f"{source}.*.log")))
        if logs:
            measured[name] = [rate(p) for p in logs]
    if "pgd-at" not in measured:
        sys.exit("rrm_cost_table: no pgd-at measurement")
    seconds = {n: int(e) * TRAIN_IMAGES / statistics.median(measured[n]) for n, e in rows if n in measured}
    with open(os.path.join(out, "cpu.txt")) as f:
        cpu = f.read().strip()
    print(f"{cpu}, {threads} threads, {limit} images per measured epoch, median of {len(measured['pgd-at'])} rounds")
    print()
    print("| row | epochs | images/s (rounds) | training, 60,000 images | PGD-AT's time / the row's |")
    print("|---|--:|--:|--:|--:|")
    for name, epochs in rows:
        if name not in measured:
            continue
        rates = ", ".join(f"{r:.0f}" for r in measured[name])
        ratio = seconds["pgd-at"] / seconds[name]
        print(f"| `{name}` | {epochs} | {statistics.median(measured[name]):.0f} ({rates}) "
              f"| {seconds[name]:,.0f} s | {ratio:.1f}× |")
    summary = {
        "cpu": cpu, "threads": threads, "images_per_epoch_measured": limit,
        "rows": {n: {"epochs": int(e), "images_per_second": measured[n], "training_seconds": seconds[n],
                     "pgd_at_ratio": seconds["pgd-at"] / seconds[n]} for n, e in rows if n in measured},
    }
    with open(os.path.join(out, "cost.json.part"), "w") as f:
        json.dump(summary, f, indent=1)
    os.replace(os.path.join(out, "cost.json.part"), os.path.join(out, "cost.json"))


if __name__ == "__main__":
    main()
