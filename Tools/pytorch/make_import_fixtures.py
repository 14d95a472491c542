"""Writes the import fixtures of Tests/ModelIOTests (CI never runs Python): models built from
RobustBench's own definitions, saved the way their releases are, imported with
import_checkpoint.py, and RobustBench's logits for a fixed batch. The Swift test loads each
imported teacher and must reproduce those logits.

    /work/torchvenv/bin/pip download --no-deps robustbench -d /tmp/rb
    (cd /tmp/rb && python3 -m zipfile -e robustbench-*.whl x)
    /work/torchvenv/bin/python Tools/pytorch/make_import_fixtures.py \\
        --architectures /tmp/rb/x/robustbench/model_zoo/architectures --rrmd .build/release/rrmd

Cases (random weights: RobustBench downloads its trained ones at run time, which is not possible
here; BatchNorm statistics are randomised so that inference exercises them):
- `import-wrn-16-2`: WideResNet(depth=16, widen_factor=2) inside a wrapper that normalises with
  `mu`/`sigma` buffers (as several zoo entries do), saved as {"state_dict": ...} with the keys
  under `model.`; imported without --mean/--std (found in the file).
- `import-preactresnet18`: PreActResNet18 under DataParallel's `module.`, saved as a bare
  state_dict, no normalisation inside; imported with --mean/--std (CIFAR-10's).
- `import-wrn-16-1-sequential`: WideResNet(depth=16, widen_factor=1) behind a normalising first
  layer, `nn.Sequential(Normalize, model)` (keys `0.mean`, `0.std`, `1.conv1.weight`, ...).
Weights take two values per tensor (±a Kaiming-sized scale, random signs) so that the compressed
fixtures stay small (PreActResNet18 has 11 M of them).
"""
import argparse
import importlib.util
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn as nn

import rrmd_checkpoint as ckpt

CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GREY_MEAN, GREY_STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


class FirstLayerNormalize(nn.Module):
    """A normalising first layer with `mean`/`std` buffers."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def forward(self, x):
        return (x - self.mean) / self.std


class Normalized(nn.Module):
    """A zoo-style wrapper: (x - mu) / sigma, then the network."""

    def __init__(self, model, mean, std):
        super().__init__()
        self.register_buffer("mu", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("sigma", torch.tensor(std).view(1, 3, 1, 1))
        self.model = model

    def forward(self, x):
        return self.model((x - self.mu) / self.sigma)


def randomise_bn(model, g):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
                m.num_batches_tracked.fill_(11)


def two_valued(model, g):
    """Every conv/linear weight becomes ±sqrt(2 / fan_in) with random signs; biases 0.01·sign."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                signs = torch.randint(0, 2, m.weight.shape, generator=g).float() * 2 - 1
                m.weight.copy_(signs * math.sqrt(2.0 / fan_in))
                if m.bias is not None:
                    m.bias.copy_((torch.randint(0, 2, m.bias.shape, generator=g).float() * 2 - 1) * 0.01)


def main():
    root = Path(__file__).resolve().parents[2]
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--architectures", required=True, help="robustbench/model_zoo/architectures")
    ap.add_argument("--rrmd", required=True)
    ap.add_argument("--out", type=Path, default=root / "Tests" / "ModelIOTests" / "Fixtures")
    args = ap.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    arch_dir = Path(args.architectures)
    wide = load(arch_dir / "wide_resnet.py", "rb_wide_resnet")
    resnet = load(arch_dir / "resnet.py", "rb_resnet")
    here = Path(__file__).resolve().parent
    g = torch.Generator().manual_seed(17)
    x = torch.rand(8, 3, 32, 32, generator=g)
    reference = {"input": x}

    with tempfile.TemporaryDirectory() as tmp:
        # WideResNet-16-2 in a normalising wrapper, weights under "state_dict" with `model.` keys.
        torch.manual_seed(3)
        wrn = Normalized(wide.WideResNet(depth=16, widen_factor=2), CIFAR_MEAN, CIFAR_STD)
        two_valued(wrn, g)
        randomise_bn(wrn, g)
        wrn.eval()
        with torch.no_grad():
            reference["import-wrn-16-2.logits"] = wrn(x)
        torch.save({"state_dict": wrn.state_dict(), "epoch": 99}, os.path.join(tmp, "wrn.pt"))
        # PreActResNet18 under DataParallel's `module.`, no normalisation inside.
        torch.manual_seed(4)
        pre = resnet.PreActResNet18()
        two_valued(pre, g)
        randomise_bn(pre, g)
        pre.eval()
        with torch.no_grad():
            normalised = (x - torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1)) / torch.tensor(CIFAR_STD).view(1, 3, 1, 1)
            reference["import-preactresnet18.logits"] = pre(normalised)
        torch.save({"module." + k: v for k, v in pre.state_dict().items()}, os.path.join(tmp, "pre.pt"))
        # WideResNet-16-1 behind a normalising first layer: nn.Sequential(Normalize, model).
        torch.manual_seed(5)
        seq = nn.Sequential(FirstLayerNormalize(GREY_MEAN, GREY_STD), wide.WideResNet(depth=16, widen_factor=1))
        two_valued(seq, g)
        randomise_bn(seq, g)
        seq.eval()
        with torch.no_grad():
            reference["import-wrn-16-1-sequential.logits"] = seq(x)
        torch.save(seq.state_dict(), os.path.join(tmp, "seq.pt"))

        runs = [
            ("import-wrn-16-2", ["--checkpoint", os.path.join(tmp, "wrn.pt")]),
            ("import-preactresnet18", ["--checkpoint", os.path.join(tmp, "pre.pt"),
                                       "--mean", ",".join(map(str, CIFAR_MEAN)),
                                       "--std", ",".join(map(str, CIFAR_STD))]),
            ("import-wrn-16-1-sequential", ["--checkpoint", os.path.join(tmp, "seq.pt")]),
        ]
        for name, extra in runs:
            out = args.out / f"{name}.safetensors.zst"
            run = subprocess.run([sys.executable, str(here / "import_checkpoint.py"), *extra,
                                  "--dataset", "cifar10", "--threat-model", "linf:8/255",
                                  "--rrmd", args.rrmd, "--out", str(out)], capture_output=True, text=True)
            sys.stderr.write(run.stderr)
            if run.returncode != 0:
                sys.exit(f"make_import_fixtures: importing {name} failed")
            print(run.stdout.strip())
    ckpt.write_checkpoint(str(args.out / "import-reference.safetensors"),
                          {k: v.contiguous() for k, v in reference.items()},
                          {"source": "Tools/pytorch/make_import_fixtures.py", "torch": torch.__version__}, False)
    for f in sorted(args.out.iterdir()):
        print(f"{f.name:40s} {f.stat().st_size / 1e6:.3f} MB")


if __name__ == "__main__":
    main()
