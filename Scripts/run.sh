#!/usr/bin/env bash
# The main job on the embedded defaults. Until the spool service lands (issue 6) this is the
# compute core's job: train the MNIST-scale `cnn-small` on Fashion-MNIST and save a checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
bash Scripts/setup.sh
swift build -c release --product rrmd
out=${RRMD_OUT:-.build/cnn-small-fashion-mnist.safetensors}
.build/release/rrmd train --arch cnn-small --dataset fashion-mnist --epochs "${RRMD_EPOCHS:-2}" --out "$out" --json
echo "checkpoint: $out" >&2
