#!/usr/bin/env bash
# Round trip of every architecture between PyTorch and rrmd (docs/checkpoints.md).
#
#   Tools/pytorch/roundtrip_all.sh                      # PyTorch side only
#   RRMD=.build/release/rrmd Tools/pytorch/roundtrip_all.sh
#
# For each case: export a random teacher with metadata as .safetensors.zst plus a sample input and
# PyTorch's eval-mode outputs, `zstd -d` it to .safetensors, strict-load both with load_rrmd.py,
# and, if $RRMD is set, run `$RRMD predict --model FILE --input IN --out OUT` (alternately on the
# .zst and the plain file) and compare OUT's `logits`/`representation` with PyTorch's. The plain
# file is also read with --ignore-metadata, to check that load_rrmd.py identifies the architecture.
# Prints one JSON line per case. Environment: PYTHON (default /work/torchvenv/bin/python),
# WORKDIR (kept; default a temporary directory, removed at exit), TOLERANCE (default 1e-4),
# SAMPLES (default 8). Exit status 1 if anything failed, including a failed `rrmd predict`.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="${PYTHON:-/work/torchvenv/bin/python}"
tol="${TOLERANCE:-1e-4}"
samples="${SAMPLES:-8}"
if [[ -n "${WORKDIR:-}" ]]; then
    dir="$WORKDIR"; mkdir -p "$dir"
else
    dir="$(mktemp -d)"; trap 'rm -rf "$dir"' EXIT
fi
command -v zstd >/dev/null || { echo "roundtrip: the zstd CLI is required" >&2; exit 2; }

have_rrmd=0
if [[ -n "${RRMD:-}" ]]; then
    if [[ -x "$RRMD" ]] || command -v "$RRMD" >/dev/null; then
        have_rrmd=1
    else
        echo "roundtrip: RRMD=$RRMD is not an executable; checking the PyTorch side only" >&2
    fi
else
    echo "roundtrip: RRMD is not set; checking export and strict loading only" >&2
fi

# name arch C H W width_mult mean std [projection]
cases=(
    "mlp-cifar mlp 3 32 32 0.5 0.4914,0.4822,0.4465 0.247,0.2435,0.2616"
    "cnn-small-cifar cnn-small 3 32 32 0.5 0.4914,0.4822,0.4465 0.247,0.2435,0.2616"
    "resnet20 resnet20 3 32 32 1 0.4914,0.4822,0.4465 0.247,0.2435,0.2616"
    "resnet18 resnet18 3 32 32 0.125 0,0,0 1,1,1"
    "vgg11 vgg11 3 32 32 0.25 0,0,0 1,1,1"
    "mobilenetv2 mobilenetv2 3 32 32 0.25 0.5,0.5,0.5 0.25,0.25,0.25"
    "mlp-fashion mlp 1 28 28 1 0.286 0.353"
    "cnn-small-fashion cnn-small 1 28 28 0.3 0.286 0.353"
    "cnn-small-projection cnn-small 1 28 28 0.3 0.286 0.353 24"
    "preactresnet18 preactresnet18 3 32 32 1 0.4914,0.4822,0.4465 0.247,0.2435,0.2616"
    "resnet50 resnet50 3 32 32 1 0.4914,0.4822,0.4465 0.247,0.2435,0.2616"
    "wideresnet-28-10 wideresnet-28-10 3 32 32 1 0.4914,0.4822,0.4465 0.247,0.2435,0.2616"
    "wideresnet-16-2 wideresnet-16-2 3 32 32 1 0,0,0 1,1,1"
)

failed=0
i=0
for case in "${cases[@]}"; do
    read -r name arch c h w wm mean std proj <<<"$case"
    base="$dir/$name"
    seed=$((100 + i))
    fail() { echo "{\"case\": \"$name\", \"arch\": \"$arch\", \"error\": \"$1\"}"; failed=1; }
    if ! "$py" "$here/export_teacher.py" --arch "$arch" --in-channels "$c" --height "$h" --width "$w" \
            --num-classes 10 --width-mult "$wm" --mean "$mean" --std "$std" --seed "$seed" --zstd \
            ${proj:+--projection "$proj"} \
            --out "$base.safetensors.zst" --sample-input "$samples" --sample-out "$base.sample.safetensors" \
            >"$base.export.log" 2>&1; then
        fail "export failed: $(tail -n 1 "$base.export.log")"; i=$((i + 1)); continue
    fi
    if ! zstd -d -q -f -o "$base.safetensors" "$base.safetensors.zst"; then
        fail "zstd -d failed"; i=$((i + 1)); continue
    fi
    # Strict load of the .zst, and PyTorch against its own sample (0 by construction).
    self=$("$py" "$here/load_rrmd.py" --quiet "$base.safetensors.zst" --input "$base.sample.safetensors" \
           --compare "$base.sample.safetensors" --tolerance 0 2>"$base.self.log") \
        || fail "strict load / self-check of the .zst failed: $(tail -n 1 "$base.self.log")"
    # Strict load of the plain file (decompressed by the CLI), read as a plain state_dict without
    # metadata: load_rrmd.py must identify the architecture and reproduce the outputs.
    if ! "$py" "$here/load_rrmd.py" --ignore-metadata --mean "$mean" --std "$std" "$base.safetensors" \
            --input "$base.sample.safetensors" --compare "$base.sample.safetensors" --tolerance 0 \
            >"$base.load.log" 2>&1 || ! grep -q "^arch $arch " "$base.load.log"; then
        fail "plain file not loaded / not identified as $arch: $(tail -n 1 "$base.load.log")"
    elif [[ -n "$proj" ]] && ! grep -q "^arch $arch .* projection $proj " "$base.load.log"; then
        fail "plain file: projection $proj not recognised from projection.weight"
    fi

    if [[ $have_rrmd == 1 ]]; then
        model="$base.safetensors.zst"; [[ $((i % 2)) == 1 ]] && model="$base.safetensors"
        if "$RRMD" predict --model "$model" --input "$base.sample.safetensors" \
                --out "$base.rrmd.safetensors" >"$base.predict.log" 2>&1; then
            line=$("$py" "$here/load_rrmd.py" --quiet "$model" --input "$base.sample.safetensors" \
                   --compare "$base.rrmd.safetensors" --tolerance "$tol" 2>>"$base.predict.log")
            rc=$?
            [[ -n "$line" ]] && echo "$line" | sed "s/^{/{\"case\": \"$name\", \"model\": \"$(basename "$model")\", /"
            if [[ $rc != 0 ]]; then
                failed=1
                [[ -z "$line" ]] && fail "compare failed: $(tail -n 1 "$base.predict.log")"
            fi
        else
            fail "rrmd predict failed on $(basename "$model"): $(tail -n 3 "$base.predict.log" | tr '\n"' ' \047')"
        fi
    elif [[ -n "$self" ]]; then
        # No rrmd: report the strict loads and PyTorch's self-comparison (0 by construction).
        echo "$self" | sed "s/^{/{\"case\": \"$name\", \"rrmd\": \"not run\", \"strict_load\": \"ok\", /"
    fi
    i=$((i + 1))
done

if [[ -n "${WORKDIR:-}" ]]; then echo "roundtrip: files kept in $dir" >&2; fi
if [[ $failed != 0 ]]; then echo "roundtrip: FAILED" >&2; exit 1; fi
echo "roundtrip: all $i cases OK$([[ $have_rrmd == 1 ]] || echo ' (PyTorch side only; set RRMD to compare with rrmd predict)')" >&2
