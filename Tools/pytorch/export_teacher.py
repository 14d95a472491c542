"""Exports a PyTorch twin (rrmd_models.py) as an rrmd checkpoint (docs/checkpoints.md).

Examples, from the repository root:

    P=/work/torchvenv/bin/python
    # random teacher (seeded) with metadata, plus a sample input and PyTorch's outputs for it
    $P Tools/pytorch/export_teacher.py --arch resnet20 --in-channels 3 --height 32 --width 32 \\
        --num-classes 10 --seed 1 --out /tmp/t.safetensors --sample-input 8 --sample-out /tmp/s.safetensors
    # trained weights, compressed, with the CIFAR-10 normalisation and threat model
    $P Tools/pytorch/export_teacher.py --arch resnet20 --in-channels 3 --height 32 --width 32 \\
        --num-classes 10 --weights model.pt --mean 0.4914,0.4822,0.4465 --std 0.2470,0.2435,0.2616 \\
        --dataset cifar10 --threat-model linf:8/255 --trained-by pgd-at --zstd --out t.safetensors.zst

Random initialisation (no --weights): torch.manual_seed(--seed), PyTorch's default init, then every
BatchNorm gets weight ~ U(0.5, 1.5), bias ~ N(0, 0.1^2), running_mean ~ N(0, 0.1^2),
running_var ~ U(0.5, 1.5) and num_batches_tracked = 7, so that an inference comparison exercises
the BN statistics (a fresh BN is the identity in eval mode).

--projection P adds a projection head `projection.weight` [P, D] between the body and the classifier
(an RRM student whose width differs from its teacher's has one; written as rrm.projection).

--sample-input N --sample-out FILE writes a safetensors file with `input` [N, C, H, W] ~ U(0, 1)
(from --seed) and the eval-mode `logits` [N, K] and `representation` [N, D] of the exported model,
computed in float32. `rrmd predict` on the same input should reproduce them (load_rrmd.py --compare).
"""
import argparse
import hashlib
import sys

import torch

import rrmd_checkpoint as ckpt
import rrmd_models

DEFAULT_DATASET = {(3, 32, 32): "cifar10", (1, 28, 28): "fashion-mnist", (1, 8, 8): "digits"}


def float_list(text):
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated decimals") from None


def randomize(model, seed):
    """Seeded PyTorch init already happened in build(); make BatchNorm non-trivial too."""
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
                m.num_batches_tracked.fill_(7)


def read_weights(path):
    """A state_dict from .pt/.pth (torch.save of a state_dict, optionally under 'state_dict' or
    'model', DataParallel 'module.' prefixes stripped) or from .safetensors(.zst)."""
    with open(path, "rb") as f:
        magic = f.read(4)
    is_pickle = magic[:2] == b"\x80\x02" or magic[:2] == b"PK"  # legacy pickle or zip archive
    if not is_pickle:
        tensors, _, _ = ckpt.read_checkpoint(path)
        return tensors
    obj = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(torch.is_tensor(v) for v in obj.values()):
        raise ckpt.CheckpointError(f"{path}: expected a state_dict (a dict of tensors); save "
                                   "model.state_dict(), not the module")
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    ap.add_argument("--arch", required=True, type=rrmd_models.arch_name,
                   help="one of " + ", ".join(rrmd_models.ARCHS) + " or wideresnet-<depth>-<widen>")
    ap.add_argument("--in-channels", type=int, required=True)
    ap.add_argument("--height", type=int, required=True)
    ap.add_argument("--width", type=int, required=True)
    ap.add_argument("--num-classes", type=int, required=True)
    ap.add_argument("--width-mult", type=float, default=1.0)
    ap.add_argument("--projection", type=int, metavar="P",
                    help="projection head width (students of RRM; default none)")
    ap.add_argument("--mean", type=float_list, help="per-channel, comma-separated (default 0)")
    ap.add_argument("--std", type=float_list, help="per-channel, comma-separated (default 1)")
    ap.add_argument("--dataset", choices=ckpt.DATASETS,
                    help="default from the input shape: 3x32x32 cifar10, 1x28x28 fashion-mnist, 1x8x8 digits")
    ap.add_argument("--threat-model", default="none", help="none, linf:<eps> or l2:<eps> (eps e.g. 8/255)")
    ap.add_argument("--trained-by", choices=ckpt.TRAINED_BY,
                    help="default: external with --weights, unset for a random teacher")
    ap.add_argument("--weights", help="state_dict to load (.pt/.pth or .safetensors[.zst]); "
                                      "else random init from --seed")
    ap.add_argument("--seed", type=int, help="random init and sample input (default 0); written as rrm.seed")
    ap.add_argument("--zstd", action="store_true", help="wrap in one zstd frame (default if --out ends in .zst)")
    ap.add_argument("--no-metadata", action="store_true",
                    help="write a plain state_dict without any metadata (tests architecture inference)")
    ap.add_argument("--sample-input", type=int, metavar="N", help="also write N sample inputs and outputs")
    ap.add_argument("--sample-out", metavar="FILE", help="where --sample-input goes")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    if (args.sample_input is None) != (args.sample_out is None):
        ap.error("--sample-input and --sample-out go together")
    if args.sample_input is not None and args.sample_input < 1:
        ap.error("--sample-input must be >= 1")
    for name in ("in_channels", "height", "width"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.projection is not None and not 1 <= args.projection <= ckpt.MAX_PROJECTION:
        ap.error(f"--projection must be from 1 to {ckpt.MAX_PROJECTION}")
    shape = (args.in_channels, args.height, args.width)
    dataset = args.dataset or DEFAULT_DATASET.get(shape)
    if dataset is None and not args.no_metadata:
        ap.error(f"--dataset is required for input shape {'x'.join(map(str, shape))}")
    seed = 0 if args.seed is None else args.seed
    trained_by = args.trained_by or ("external" if args.weights else None)
    compress = args.zstd or args.out.endswith(".zst")

    try:
        spec = ckpt.ModelSpec(args.arch, *shape, args.num_classes, args.width_mult,
                              rrmd_models.per_channel(args.mean, 0.0, shape[0]),
                              rrmd_models.per_channel(args.std, 1.0, shape[0]),
                              dataset, args.threat_model, trained_by,
                              seed if (args.weights is None or args.seed is not None) else None,
                              None, f"pytorch {torch.__version__.split('+')[0]}",
                              projection=args.projection)
        meta = None if args.no_metadata else ckpt.spec_metadata(spec)

        torch.manual_seed(seed)
        model = spec.build()
        if args.weights:
            notes = ckpt.load_into(model, read_weights(args.weights))
            for note in notes:
                print(f"note: {note}", file=sys.stderr)
        else:
            randomize(model, seed)
        model.eval()
        state = model.state_dict()
        bad = ckpt.nonfinite_tensors(state)
        if bad:
            raise ckpt.CheckpointError(f"NaN or Inf in {', '.join(bad[:8])}; rrmd refuses such checkpoints")
        data = ckpt.write_checkpoint(args.out, state, meta, compress)
    except (OSError, ValueError, ckpt.CheckpointError) as e:
        print(f"export_teacher: {e}", file=sys.stderr)
        return 2

    nparams = sum(p.numel() for p in model.parameters())
    sha = hashlib.sha256(data).hexdigest()
    head = f", projection {args.projection}" if args.projection is not None else ""
    print(f"wrote {args.out}: {args.arch} width {ckpt.decimal_str(args.width_mult)}{head}, {nparams} parameters, "
          f"{len(state)} tensors, {len(data)} bytes{' (zstd)' if compress else ''}"
          f"{', no metadata' if args.no_metadata else ''}, sha256 {sha}")

    if args.sample_input:
        g = torch.Generator().manual_seed(seed + 2)
        x = torch.rand((args.sample_input, *shape), generator=g)
        with torch.no_grad():
            logits, rep = model(x, return_representation=True)
        sample_meta = {"arch": args.arch, "checkpoint_sha256": sha, "seed": str(seed),
                       "producer": f"pytorch {torch.__version__.split('+')[0]}"}
        ckpt.write_checkpoint(args.sample_out, {"input": x, "logits": logits, "representation": rep},
                              sample_meta)
        print(f"wrote {args.sample_out}: input {list(x.shape)}, logits {list(logits.shape)}, "
              f"representation {list(rep.shape)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
