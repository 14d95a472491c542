"""Round-by-round ratio table of Scripts/bench_interleaved.sh's output directory: for every
workload, rrmd's images/s over its PyTorch peer's in the same round, and the median ratio.
Usage: python3 bench_interleaved_table.py DIR"""
import json
import os
import statistics
import sys

from bench_workloads import ROWS

out = sys.argv[1]
mine = [json.loads(l) for l in open(os.path.join(out, "rrmd.jsonl")) if l.strip()]
peers = [json.loads(l) for l in open(os.path.join(out, "peers.jsonl")) if l.strip()]
rounds = sorted({r["round"] for r in mine})
layout = "channels-last" if any(p.get("channels_last") for p in peers) else "NCHW"

rows = ROWS


def rrmd_rate(key, rnd):
    for r in mine:
        if r["round"] == rnd and key in r:
            return r[key]["images_per_s"], r[key]["gflops"] / r["sgemm_gflops"]
    return None, None


def peer_rate(bench, keys, rnd):
    vals = []
    for p in peers:
        if p["round"] == rnd and p.get("bench") == bench:
            vals += [p[k]["images_per_s_median"] for k in keys if k in p]
    return max(vals) if vals else None


print(f"| workload | " + " | ".join(f"round {r}: rrmd / PyTorch {layout}" for r in rounds) + " | median ratio |")
print("|---|" + "--:|" * (len(rounds) + 1))
for label, key, bench, keys in rows:
    cells, ratios = [], []
    for rnd in rounds:
        a, _ = rrmd_rate(key, rnd)
        b = peer_rate(bench, keys, rnd)
        if a and b:
            ratios.append(a / b)
            cells.append(f"{a:,.0f} / {b:,.0f} = {a / b:.2f}")
        else:
            cells.append("-")
    med = f"**{statistics.median(ratios):.2f}**" if ratios else "-"
    print(f"| {label} | " + " | ".join(cells) + f" | {med} |")
fractions = [f for f in (rrmd_rate("resnet20_train", r)[1] for r in rounds) if f]
if fractions:
    print("\nResNet-20 train step, model GFLOP/s over the sgemm 2048^3 rate of the same run: "
          + ", ".join(f"{f:.0%}" for f in fractions) + f" (median {statistics.median(fractions):.0%}; target >= 70%)")
