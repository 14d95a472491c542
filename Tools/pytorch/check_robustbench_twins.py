"""Checks the PyTorch twins of preactresnet18, resnet50 and wideresnet-D-W (rrmd_models.py)
against RobustBench's own definitions: the same state_dict keys in the same order, the same
shapes, and the same logits for the same weights (eval mode, random BatchNorm statistics).

RobustBench's architecture modules import only torch, so they are loaded by file path from its
wheel, without the package's other dependencies:

    /work/torchvenv/bin/pip download --no-deps robustbench -d /tmp/rb
    (cd /tmp/rb && python3 -m zipfile -e robustbench-*.whl x)
    /work/torchvenv/bin/python Tools/pytorch/check_robustbench_twins.py /tmp/rb/x/robustbench/model_zoo/architectures
"""
import importlib.util
import sys
from pathlib import Path

import torch

import rrmd_models


def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main():
    root = Path(sys.argv[1])
    resnet = load(root / "resnet.py", "rb_resnet")
    wide = load(root / "wide_resnet.py", "rb_wide_resnet")
    torch.manual_seed(0)
    cases = [
        ("preactresnet18", resnet.PreActResNet18()),
        ("resnet50", resnet.ResNet50()),
        ("wideresnet-28-10", wide.WideResNet(depth=28, widen_factor=10)),
        ("wideresnet-34-10", wide.WideResNet(depth=34, widen_factor=10)),
        ("wideresnet-16-2", wide.WideResNet(depth=16, widen_factor=2)),
    ]
    failed = False
    for arch, reference in cases:
        twin = rrmd_models.build(arch, 3, 32, 32, 10)
        for m in reference.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.uniform_(-0.1, 0.1)
        ref_state, twin_state = reference.state_dict(), twin.state_dict()
        keys = list(ref_state) == list(twin_state)
        shapes = keys and all(ref_state[k].shape == twin_state[k].shape for k in ref_state)
        diff = float("nan")
        if shapes:
            twin.load_state_dict(ref_state)
            reference.eval()
            twin.eval()
            x = torch.rand(4, 3, 32, 32)
            with torch.no_grad():
                diff = (reference(x) - twin(x)).abs().max().item()
        ok = keys and shapes and diff < 1e-5
        failed |= not ok
        print(f"{arch:18s} keys in order: {keys}  shapes: {shapes}  max |d logits|: {diff:.2e}  "
              f"{len(ref_state)} entries  {'OK' if ok else 'FAILED'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
