"""Turns a PyTorch model or state_dict into an rrmd teacher (`.safetensors.zst` with complete
`rrm.*` metadata, docs/checkpoints.md), and proves the conversion: `rrmd predict` on the written
file must give the original model's logits, or nothing is written.

Runs in your PyTorch environment (reading a pickle is that environment's business; rrmd itself
never reads one). Examples, from the repository root:

    P=/work/torchvenv/bin/python
    # a RobustBench-style state_dict (keys under `module.`/`model.`, `mu`/`sigma` inside)
    $P Tools/pytorch/import_checkpoint.py --checkpoint Carmon2019Unlabeled.pt \\
        --dataset cifar10 --threat-model linf:8/255 --rrmd .build/release/rrmd --out teacher.safetensors.zst
    # your own model class: build it, load its weights, compare rrmd with *it*
    $P Tools/pytorch/import_checkpoint.py --module my_models.py --class WideResNet \\
        --kwargs '{"depth": 28, "widen_factor": 10}' --checkpoint weights.pt \\
        --dataset cifar10 --threat-model linf:8/255 --rrmd .build/release/rrmd --out teacher.safetensors.zst

What it does:
1. Reads the weights: `torch.load(weights_only=True)` of a .pt/.pth (a state_dict, or a dict
   holding one under `state_dict`, `model_state_dict`, `model`, `net` or `network`), or a
   .safetensors(.zst) file; with --module/--class it instantiates that class and loads them.
2. Strips wrapper prefixes every key shares (`module.` of DataParallel, `model.`, `_orig_mod.`
   of torch.compile, the `1.` of `nn.Sequential(normalise, model)`), and drops `sub_block1.*` (a
   block TRADES' WideResNet builds but never runs).
3. Finds the input normalisation inside the model: per-channel `mu`/`sigma` or `mean`/`std`
   tensors (buffers or plain attributes, at the top level or in a normalising first module),
   records them as rrm.mean/rrm.std and removes them from the weights. If there are none it asks:
   give --mean/--std, or --no-normalization when the model really takes raw [0, 1] pixels.
4. Identifies the registry architecture, width, class count and input channels from the tensor
   names and shapes (--arch checks it; --input-shape gives the image size, default 3,32,32).
   RobustBench's ResNet18 names its classifier `linear`, rrmd's resnet18 `fc`: mapped.
5. Writes the teacher beside --out under a temporary name, runs `rrmd predict` on --samples
   random images in [0, 1], and compares with the original model's logits (your module's own
   forward with --module, else the PyTorch twin's). Within --tolerance (max |Δ| over max(1,
   max |logit|), default 1e-4) the file is renamed to --out; otherwise it is deleted and the
   import fails, printing the disagreement.
"""
import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile

import torch

import rrmd_checkpoint as ckpt
import rrmd_models

CONTAINER_KEYS = ("state_dict", "model_state_dict", "model", "net", "network")
WRAPPER_PREFIXES = ("module.", "model.", "_orig_mod.")
MEAN_NAMES = ("mu", "mean")
STD_NAMES = ("sigma", "std")


class ImportError_(Exception):
    """A problem the user can act on; printed without a traceback."""


def read_state(path):
    """The state_dict in `path` (.pt/.pth pickle, loaded with weights_only=True, or safetensors)."""
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic[:2] in (b"\x80\x02", b"PK"):
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise ImportError_(f"{path}: torch.load(weights_only=True) failed ({e}); save model.state_dict() "
                               "instead of the whole module, or load the module yourself and pass --module") from e
        for key in CONTAINER_KEYS:
            if isinstance(obj, dict) and isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    else:
        obj, _, _ = ckpt.read_checkpoint(path)
    if not isinstance(obj, dict) or not obj or not all(torch.is_tensor(v) for v in obj.values()):
        raise ImportError_(f"{path}: expected a state_dict (a dict of tensors)")
    return dict(obj)


def strip_wrappers(state):
    """Removes prefixes every key shares (DataParallel, wrapper modules), repeatedly."""
    notes = []
    changed = True
    while changed:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            # Normalisation constants may sit beside the wrapped model (`mu`, `model.conv1...`).
            wrapped = [k for k in state if k.startswith(prefix)]
            others = [k for k in state if not k.startswith(prefix)]
            if wrapped and all(_normalisation_key(k) for k in others):
                state = {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state.items()}
                notes.append(f"stripped the prefix '{prefix}'")
                changed = True
    dropped = [k for k in state if k.startswith("sub_block1.")]
    if dropped:
        state = {k: v for k, v in state.items() if not k.startswith("sub_block1.")}
        notes.append(f"dropped {len(dropped)} sub_block1.* tensors (built by TRADES' WideResNet, never used)")
    return state, notes


def strip_sequential_index(state):
    """`nn.Sequential(normalise, model)` leaves the model's keys under `1.`: strips a numeric first
    component every key shares (after the normalisation's own keys were taken out)."""
    firsts = {k.split(".", 1)[0] for k in state}
    if len(firsts) == 1 and next(iter(firsts)).isdigit() and all("." in k for k in state):
        prefix = next(iter(firsts)) + "."
        return {k[len(prefix):]: v for k, v in state.items()}, [f"stripped the prefix '{prefix}' of nn.Sequential"]
    return state, []


def _normalisation_key(key):
    last = key.rsplit(".", 1)[-1]
    return last in MEAN_NAMES + STD_NAMES


def _per_channel(t):
    t = t.detach().to(torch.float64).flatten()
    return [float(v) for v in t]


def take_normalisation(state, model=None):
    """(mean, std, notes) found in the state_dict (or on the module's attributes), removed from
    `state`; (None, None, notes) when there is none."""
    notes = []
    found = {}
    for key in list(state):
        if not _normalisation_key(key):
            continue
        t = state[key]
        if t.dim() not in (1, 4) or t.numel() not in (1, 3) or (t.dim() == 4 and t.shape[1] != t.numel()):
            continue
        # BatchNorm's running_mean is `running_mean`, never `mean`, so this cannot catch one.
        kind = "mean" if key.rsplit(".", 1)[-1] in MEAN_NAMES else "std"
        found.setdefault(kind, (key, _per_channel(t)))
        del state[key]
    if model is not None and len(found) < 2:
        for owner in [model] + [m for _, m in model.named_children()][:1]:
            for kind, names in (("mean", MEAN_NAMES), ("std", STD_NAMES)):
                for name in names:
                    t = getattr(owner, name, None)
                    if kind not in found and torch.is_tensor(t) and t.numel() in (1, 3):
                        found[kind] = (name, _per_channel(t))
    if set(found) == {"mean", "std"}:
        notes.append(f"normalisation inside the model: mean {found['mean'][1]} ({found['mean'][0]}), "
                     f"std {found['std'][1]} ({found['std'][0]})")
        return found["mean"][1], found["std"][1], notes
    if found:
        raise ImportError_(f"found only {', '.join(v[0] for v in found.values())} of a normalisation; "
                           "give --mean and --std")
    return None, None, notes


def floats(text):
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated decimals") from None


def build_user_model(args):
    spec = importlib.util.spec_from_file_location("user_models", args.module)
    if spec is None:
        raise ImportError_(f"{args.module}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cls = getattr(module, args.class_name, None)
    if cls is None:
        raise ImportError_(f"{args.module} defines no {args.class_name}")
    return cls(**json.loads(args.kwargs or "{}"))


def rrmd_logits(rrmd, model_path, x, dataset):
    """`rrmd predict` on `x`; its logits."""
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = os.path.join(tmp, "input.safetensors"), os.path.join(tmp, "out.safetensors")
        ckpt.write_checkpoint(inp, {"input": x.contiguous()}, None, False)
        run = subprocess.run([rrmd, "predict", "--model", model_path, "--input", inp, "--out", out],
                             capture_output=True, text=True)
        if run.returncode != 0:
            raise ImportError_(f"rrmd predict failed on the written file: {run.stderr.strip() or run.stdout.strip()}")
        tensors, _, _ = ckpt.read_checkpoint(out)
        return tensors["logits"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    ap.add_argument("--checkpoint", help="weights: .pt/.pth (a state_dict) or .safetensors[.zst]")
    ap.add_argument("--module", help="a Python file defining the model class (with --class)")
    ap.add_argument("--class", dest="class_name", help="the model class in --module")
    ap.add_argument("--kwargs", help="JSON keyword arguments for --class")
    ap.add_argument("--arch", type=rrmd_models.arch_name, help="the registry architecture it must be (checked)")
    ap.add_argument("--dataset", required=True, choices=ckpt.DATASETS, help="what the teacher was trained on")
    ap.add_argument("--threat-model", required=True, help="what it is robust to: linf:<eps>, l2:<eps> (e.g. "
                                                          "linf:8/255) or none")
    ap.add_argument("--trained-by", default="external", choices=ckpt.TRAINED_BY)
    ap.add_argument("--mean", type=floats, help="per-channel input mean, when the model has none inside")
    ap.add_argument("--std", type=floats, help="per-channel input std, when the model has none inside")
    ap.add_argument("--no-normalization", action="store_true", help="the model takes raw [0, 1] pixels")
    ap.add_argument("--input-shape", default="3,32,32", help="C,H,W of one image (default 3,32,32)")
    ap.add_argument("--rrmd", required=True, help="the rrmd executable that checks the written file")
    ap.add_argument("--samples", type=int, default=16, help="random images compared (default 16)")
    ap.add_argument("--tolerance", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=0, help="seed of the compared images")
    ap.add_argument("--out", required=True, help="the teacher to write (.safetensors.zst)")
    args = ap.parse_args(argv)
    if (args.module is None) != (args.class_name is None):
        ap.error("--module and --class go together")
    if args.module is None and args.checkpoint is None:
        ap.error("give --checkpoint, or --module and --class")
    try:
        shape = tuple(int(v) for v in args.input_shape.split(","))
        assert len(shape) == 3 and all(v > 0 for v in shape)
    except (ValueError, AssertionError):
        ap.error(f"--input-shape {args.input_shape!r}: expected C,H,W")

    try:
        notes = []
        user = None
        if args.module:
            user = build_user_model(args)
            if args.checkpoint:
                weights, more = strip_wrappers(read_state(args.checkpoint))
                notes += more
                missing, unexpected = user.load_state_dict(weights, strict=False)
                if missing or unexpected:
                    raise ImportError_(f"{args.checkpoint} does not fit {args.class_name}: missing "
                                       f"{list(missing)[:6]}, unexpected {list(unexpected)[:6]}")
            user.eval()
            state = dict(user.state_dict())
        else:
            state = read_state(args.checkpoint)
        state, more = strip_wrappers(state)
        notes += more
        mean, std, more = take_normalisation(state, user)
        notes += more
        state, more = strip_sequential_index(state)
        notes += more
        if mean is None:
            if args.mean is not None and args.std is not None:
                mean, std = args.mean, args.std
            elif args.no_normalization:
                mean, std = [0.0], [1.0]
            else:
                raise ImportError_("no input normalisation found in the model (mu/sigma or mean/std); give "
                                   "--mean and --std as it was trained with, or --no-normalization if it takes raw "
                                   "[0, 1] pixels")
        elif args.mean is not None or args.std is not None:
            raise ImportError_("the model carries its own normalisation; drop --mean/--std")
        try:
            inferred = ckpt.infer_spec(state, input_shape=shape)
        except ckpt.CheckpointError:
            # RobustBench's (kuangliu's) CIFAR ResNet18 names its classifier `linear`, rrmd's `fc`.
            if "linear.weight" not in state or "fc.weight" in state or "layer4.1.conv2.weight" not in state:
                raise
            state = {("fc." + k[len("linear."):] if k.startswith("linear.") else k): v for k, v in state.items()}
            inferred = ckpt.infer_spec(state, input_shape=shape)
            notes.append("renamed linear.* to fc.* (rrmd's resnet18 names its classifier fc)")
        if args.arch and inferred.arch != args.arch:
            raise ImportError_(f"the weights are a {inferred.arch}, not a {args.arch}")
        spec = ckpt.ModelSpec(inferred.arch, *shape, inferred.num_classes, inferred.width_mult,
                              rrmd_models.per_channel(mean, 0.0, shape[0]),
                              rrmd_models.per_channel(std, 1.0, shape[0]),
                              args.dataset, args.threat_model, args.trained_by, None, None,
                              f"pytorch {torch.__version__.split('+')[0]}")
        twin = spec.build()
        notes += ckpt.load_into(twin, state)
        twin.eval()
        bad = ckpt.nonfinite_tensors(twin.state_dict())
        if bad:
            raise ImportError_(f"NaN or Inf in {', '.join(bad[:8])}; rrmd refuses such teachers")

        g = torch.Generator().manual_seed(args.seed)
        x = torch.rand((args.samples,) + shape, generator=g)
        with torch.no_grad():
            reference = (user if user is not None else twin)(x)
        directory = os.path.dirname(os.path.abspath(args.out))
        fd, tmp = tempfile.mkstemp(prefix=".import-", suffix=".safetensors.zst", dir=directory)
        os.close(fd)
        try:
            ckpt.write_checkpoint(tmp, twin.state_dict(), ckpt.spec_metadata(spec), True)
            ours = rrmd_logits(args.rrmd, tmp, x, args.dataset)
            scale = max(1.0, reference.abs().max().item())
            diff = (ours - reference).abs().max().item()
            agree = (ours.argmax(1) == reference.argmax(1)).float().mean().item()
            if not diff <= args.tolerance * scale:
                raise ImportError_(f"rrmd's logits differ from the model's by {diff:.3e} (tolerance "
                                   f"{args.tolerance * scale:.3e}; argmax agreement {agree:.3f}); nothing written. "
                                   "Is the architecture's forward the registry's (docs/checkpoints.md)?")
            os.replace(tmp, args.out)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    except ckpt.CheckpointError as e:
        print(f"import_checkpoint: {e}. The registry's architectures and their parameter names are in "
              "docs/checkpoints.md (RobustBench's PreActResNet18, ResNet50 and WideResNet load as they are; "
              "variants such as bn_before_fc=True do not)", file=sys.stderr)
        return 1
    except (ImportError_, OSError, ValueError) as e:
        print(f"import_checkpoint: {e}", file=sys.stderr)
        return 1
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    print(json.dumps({"out": args.out, "arch": spec.arch, "width": spec.width_mult, "num_classes": spec.num_classes,
                      "mean": spec.mean, "std": spec.std, "dataset": args.dataset,
                      "threat_model": args.threat_model, "max_abs_logit_diff": diff, "argmax_agreement": agree,
                      "samples": args.samples}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
