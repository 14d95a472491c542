"""Loads an rrmd checkpoint into its PyTorch twin and optionally compares outputs with rrmd's.

    P=/work/torchvenv/bin/python
    $P Tools/pytorch/load_rrmd.py student.safetensors.zst                   # strict load check
    $P Tools/pytorch/load_rrmd.py t.safetensors --input s.safetensors --compare pred.safetensors
    $P Tools/pytorch/load_rrmd.py t.safetensors --input s.safetensors --out torch_pred.safetensors

The file may be plain safetensors or one zstd frame around it (detected by the magic bytes
28 B5 2F FD, not by name). The twin is built from the rrm.* metadata; a plain state_dict without
rrm.* keys is identified from its tensor names and shapes (--arch/--width-mult/--input-shape/
--num-classes/--mean/--std/--projection override or complete that guess; mean/std default to 0/1;
a `projection.weight` tensor gives the projection width).

--input X: a safetensors file with a tensor `input` [N, C, H, W]; the model runs in eval mode.
--compare Y: a safetensors file with `logits` and `representation` (e.g. from `rrmd predict`);
prints one JSON line {"arch", "max_abs_logit_diff", "max_abs_rep_diff", ...} and exits 1 if either
exceeds --tolerance. Exit 2: the file could not be read or loaded.
"""
import argparse
import json
import sys

import torch

import rrmd_checkpoint as ckpt
import rrmd_models


def parse_shape(text):
    try:
        shape = tuple(int(x) for x in text.replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected C,H,W")
    return shape


def float_list(text):
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated decimals") from None


def read_tensor(path, name):
    tensors, _, _ = ckpt.read_checkpoint(path)
    if name not in tensors:
        raise ckpt.CheckpointError(f"{path}: no tensor {name!r} (has {', '.join(sorted(tensors)) or 'none'})")
    return tensors[name]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    ap.add_argument("file")
    ap.add_argument("--input", help="safetensors with tensor `input` [N, C, H, W]")
    ap.add_argument("--compare", help="safetensors with `logits` and `representation` to compare against")
    ap.add_argument("--out", help="write PyTorch's `logits` and `representation` for --input here")
    ap.add_argument("--tolerance", type=float, default=1e-4, help="max abs difference (default 1e-4)")
    ap.add_argument("--quiet", action="store_true", help="only the JSON line (and errors)")
    g = ap.add_argument_group("for files without rrm.* metadata (override the inferred values)")
    g.add_argument("--ignore-metadata", action="store_true",
                   help="treat the file as a plain state_dict (tests the identification)")
    g.add_argument("--arch", type=rrmd_models.arch_name,
                   help="one of " + ", ".join(rrmd_models.ARCHS) + " or wideresnet-<depth>-<widen>")
    g.add_argument("--width-mult", type=float)
    g.add_argument("--input-shape", type=parse_shape, metavar="C,H,W")
    g.add_argument("--num-classes", type=int)
    g.add_argument("--mean", type=float_list)
    g.add_argument("--std", type=float_list)
    g.add_argument("--projection", type=int, metavar="P", help="projection head width (with --arch)")
    args = ap.parse_args(argv)
    if (args.compare or args.out) and not args.input:
        ap.error("--compare and --out need --input")

    def say(*a):
        if not args.quiet:
            print(*a)

    def warn(msg):
        print(f"warning: {msg}", file=sys.stderr)

    try:
        tensors, meta, info = ckpt.read_checkpoint(args.file)
        z = info["zstd"]
        say(f"file {args.file}: {info['file_bytes']} bytes"
            + (f", zstd frame (content size {z['content_size']}, checksum "
               f"{'yes' if z['checksum'] else 'NO'}, window {z['window']}) -> {info['content_bytes']} bytes"
               if z else ", plain safetensors") + f", {len(tensors)} tensors, sha256 {info['sha256']}")
        if z and (z["content_size"] is None or not z["checksum"]):
            warn("rrmd checkpoints' zstd frames carry the content size and a checksum; this one does not")

        x = read_tensor(args.input, "input") if args.input else None
        if any(k.startswith("rrm.") for k in meta) and not args.ignore_metadata:
            spec, warnings = ckpt.parse_metadata(meta)
            for w in warnings:
                warn(w)
        else:
            shape = args.input_shape or (tuple(x.shape[1:]) if x is not None and x.dim() == 4 else None)
            if args.arch:
                projection = args.projection
                if projection is None and "projection.weight" in tensors and tensors["projection.weight"].dim() == 2:
                    projection = tensors["projection.weight"].shape[0]
                spec = ckpt.ModelSpec(args.arch, *(shape or (3, 32, 32)), args.num_classes or 10,
                                      source="given", projection=projection)
            else:
                spec = ckpt.infer_spec(tensors, shape)
            say(f"no rrm.* metadata: {'given' if args.arch else 'identified from tensor names and shapes'}")
        # Explicit options win (with metadata they override too, with a warning).
        for opt, field in (("width_mult", "width_mult"), ("num_classes", "num_classes"),
                           ("mean", "mean"), ("std", "std"), ("projection", "projection")):
            value = getattr(args, opt)
            if value is not None:
                if spec.source == "metadata":
                    warn(f"--{opt.replace('_', '-')} overrides the metadata")
                setattr(spec, field, value)
        if args.input_shape and spec.source == "metadata":
            warn("--input-shape overrides the metadata")
        if args.input_shape:
            spec.in_channels, spec.height, spec.width = args.input_shape
        say(spec.describe())

        bad = ckpt.nonfinite_tensors(tensors)
        if bad:
            raise ckpt.CheckpointError(f"NaN or Inf in {', '.join(bad[:8])} (rrmd refuses this file)")
        model = spec.build()
        for note in ckpt.load_into(model, tensors):
            warn(note)
        nparams = sum(p.numel() for p in model.parameters())
        say(f"parameters {nparams}  state_dict tensors {len(model.state_dict())}")
        say("strict load OK")
    except (OSError, ValueError, ckpt.CheckpointError) as e:
        print(f"load_rrmd: {e}", file=sys.stderr)
        return 2

    if x is None:
        return 0
    model.eval()
    expected = (spec.in_channels, spec.height, spec.width)
    if x.dim() != 4 or tuple(x.shape[1:]) != expected:
        print(f"load_rrmd: {args.input}: input shape {list(x.shape)}, model expects [N, "
              f"{', '.join(map(str, expected))}]", file=sys.stderr)
        return 2
    with torch.no_grad():
        logits, rep = model(x.float(), return_representation=True)
    say(f"input {list(x.shape)} -> logits {list(logits.shape)}, representation {list(rep.shape)}")
    if args.out:
        ckpt.write_checkpoint(args.out, {"logits": logits, "representation": rep},
                              {"arch": spec.arch, "checkpoint_sha256": info["sha256"]})
        say(f"wrote {args.out}")
    if not args.compare:
        return 0
    try:
        other_logits = read_tensor(args.compare, "logits")
        other_rep = read_tensor(args.compare, "representation")
    except (OSError, ckpt.CheckpointError) as e:
        print(f"load_rrmd: {e}", file=sys.stderr)
        return 2
    for name, ours, theirs in (("logits", logits, other_logits), ("representation", rep, other_rep)):
        if ours.shape != theirs.shape:
            print(json.dumps({"arch": spec.arch, "error": f"{name} shape {list(theirs.shape)} in "
                              f"{args.compare}, PyTorch gives {list(ours.shape)}"}))
            return 1

    def diffs(ours, theirs):
        theirs = theirs.to(torch.float64)
        ours = ours.to(torch.float64)
        if not torch.isfinite(theirs).all():
            return float("inf"), float("inf")
        d = (ours - theirs).abs().max().item()
        return d, d / max(ours.abs().max().item(), 1e-30)

    dl, rl = diffs(logits, other_logits)
    dr, rr = diffs(rep, other_rep)
    ok = dl <= args.tolerance and dr <= args.tolerance
    argmax_agree = (logits.argmax(1) == other_logits.argmax(1)).float().mean().item()
    print(json.dumps({"arch": spec.arch, "max_abs_logit_diff": dl, "max_abs_rep_diff": dr,
                      "max_rel_logit_diff": rl, "max_rel_rep_diff": rr, "argmax_agreement": argmax_agree,
                      "n": x.shape[0], "tolerance": args.tolerance, "ok": ok}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
