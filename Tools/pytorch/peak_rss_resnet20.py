"""Peak resident memory of PyTorch's ResNet-20 train step at batch 128: the memory half of
issue 7's comparison with `rrmd bench` (key `peak_rss_bytes` of resnet20_train).

Runs the train step of shared/peers/bench_resnet20.py (same model, batch, optimiser, threads and
layout switch) for a while and prints one JSON line with the process's peak resident bytes and,
for reference, the resident bytes just before the model was built (Python + torch).

Usage: PEERS=../shared/peers python3 Tools/pytorch/peak_rss_resnet20.py [seconds]
       (env as the peers: BENCH_THREADS=2 BENCH_CHANNELS_LAST=0|1)
"""
import json
import os
import resource
import sys
import time

sys.path.insert(0, os.environ.get("PEERS", os.path.join(os.path.dirname(__file__), "../../../shared/peers")))
from common import CHANNELS_LAST, THREADS, prep_model, random_batch, resnet20, setup  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402


def resident_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    setup()
    before = resident_bytes()
    model = prep_model(resnet20())
    x, y = random_batch()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    crit = nn.CrossEntropyLoss()
    model.train()
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or steps < 5:
        opt.zero_grad(set_to_none=True)
        crit(model(x), y).backward()
        opt.step()
        steps += 1
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    print(json.dumps({"bench": "resnet20_train_peak_rss", "channels_last": CHANNELS_LAST, "threads": THREADS,
                      "steps": steps, "peak_rss_bytes": peak, "rss_before_model_bytes": before}))


if __name__ == "__main__":
    main()
