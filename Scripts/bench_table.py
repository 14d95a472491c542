"""Ratio table of Scripts/bench_vs_pytorch.sh's output directory: rrmd (mean of its two runs,
which bracket the peers in time) against PyTorch NCHW and channels-last, images/s at batch 128,
plus peak resident memory of the ResNet-20 training step. Usage: python3 bench_table.py DIR"""
import json
import os
import sys

from bench_workloads import ROWS

out = sys.argv[1]
rrmd_runs = [json.load(open(os.path.join(out, f))) for f in ("rrmd-1.json", "rrmd-2.json") if os.path.exists(os.path.join(out, f))]
peers = [json.loads(line) for line in open(os.path.join(out, "peers.jsonl")) if line.strip()]


def peer(bench, layout_cl, key):
    for p in peers:
        if p.get("bench") == bench and p.get("channels_last") == layout_cl and key in p:
            v = p[key]
            return v["images_per_s_median"] if isinstance(v, dict) else v
    return None


rows = ROWS
print(f"sgemm 2048^3: " + ", ".join(f"{r['sgemm_gflops']:.0f}" for r in rrmd_runs) + " GFLOP/s (rrmd runs)")
print("| workload | rrmd runs | rrmd mean | PyTorch NCHW | PyTorch channels-last | rrmd / NCHW | rrmd / channels-last |")
print("|---|--:|--:|--:|--:|--:|--:|")
for label, key, bench, pkeys in rows:
    runs = [r[key]["images_per_s"] for r in rrmd_runs if key in r]
    if not runs:
        continue
    mine = sum(runs) / len(runs)
    nchw = max((v for v in (peer(bench, False, k) for k in pkeys) if v), default=None)
    cl = max((v for v in (peer(bench, True, k) for k in pkeys) if v), default=None)
    fmt = lambda v: f"{v:,.1f}" if v else "-"
    ratio = lambda v: f"{mine / v:.2f}" if v else "-"
    print(f"| {label} | {' / '.join(f'{x:,.1f}' for x in runs)} | {mine:,.1f} | {fmt(nchw)} | {fmt(cl)} | {ratio(nchw)} | {ratio(cl)} |")
if rrmd_runs and "resnet20_train" in rrmd_runs[-1]:
    r = rrmd_runs[-1]["resnet20_train"]
    frac = [x["resnet20_train"]["gflops"] / x["sgemm_gflops"] for x in rrmd_runs if "resnet20_train" in x]
    print(f"\nResNet-20 train step: model GFLOP/s over sgemm 2048^3 rate: " + ", ".join(f"{f:.0%}" for f in frac) + " (target >= 70%)")
mem = {p["channels_last"]: p["peak_rss_bytes"] for p in peers if p.get("bench") == "resnet20_train_peak_rss"}
ours = [x["resnet20_train"].get("peak_rss_bytes") for x in rrmd_runs if "resnet20_train" in x]
if mem or ours:
    mib = lambda b: f"{b / 2**20:,.0f} MiB" if b else "-"
    print(f"Peak resident memory, ResNet-20 training at batch 128: rrmd {', '.join(mib(b) for b in ours)}; "
          f"PyTorch NCHW {mib(mem.get(False))}, channels-last {mib(mem.get(True))}")
