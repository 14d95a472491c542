#!/usr/bin/env bash
# Gradient-masking checks of a study row whose student beats its teacher (docs/rrm-study.md, "The
# paper's setting"), on the first 500 test images, each resumable by skipping what exists:
#   1. accuracy against epsilon (must fall to 0 at large radii) and APGD-CE with 5-100
#      iterations (more must never help the model): results/masking/<study>-<row>.eval.json;
#   2. APGD-CE, APGD-T (3 targets) and then the gradient-free Square attack (5,000 queries) on
#      what they left: results/masking/<study>-<row>-square.eval.json. Square never reads a
#      gradient, so a model that only hides its gradients falls to it.
# rrmd evaluate flags a failed check in each report; a journal keeps attacked batches, so an
# interrupted run resumes.
#
#   bash Scripts/rrm_masking.sh paper-fashion-mnist rrm-rand teacher
#   bash Scripts/rrm_masking.sh paper-mnist rrm-rand teacher
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: $0 STUDY ROW..." >&2; exit 2; }
study=$1
shift
R=${RRMD:-.build/release/rrmd}
[ -n "${RRMD:-}" ] || swift build -c release --product rrmd >&2
case "$study" in
  *fashion-mnist) eps=0.1 data=() ;;
  *mnist) eps=0.3 data=(--data-dir ../shared/data/mnist) ;;
  *) echo "rrm_masking: unknown study $study" >&2; exit 2 ;;
esac
mkdir -p results/masking
# evaluate NAME MODEL ARGS...: one report, written atomically, skipped when it exists.
evaluate() {
  local name=$1 model=$2
  shift 2
  [ -s "results/masking/$name.eval.json" ] && return 0
  # A fresh checkout has the reports an earlier checkout published (--publish): nothing to redo.
  if [ -s "docs/results/masking/$name.eval.json" ]; then
    cp "docs/results/masking/$name.eval.json" results/masking/
    return 0
  fi
  echo "== $name" >&2
  # A run interrupted in another checkout left its journal in docs/results/masking/ (--publish).
  local kept=docs/results/masking/$name.eval.journal
  [ -s "results/masking/$name.eval.journal" ] || [ ! -s "$kept" ] || cp "$kept" results/masking/
  nice "$R" evaluate --model "$model" --samples 500 --epsilon "$eps" "${data[@]}" "$@" --threads "${THREADS:-1}" \
    --journal "results/masking/$name.eval.journal" --report "results/masking/report-$name" --json \
    > "results/masking/$name.eval.json.part" \
    2> "results/masking/$name.eval.log"
  mv "results/masking/$name.eval.json.part" "results/masking/$name.eval.json"
}
for row in "$@"; do
  model=results/rrm-$study/$row.safetensors.zst
  # A fresh checkout has an unevaluated row's checkpoint in docs/results/ only.
  [ -s "$model" ] || model=docs/results/rrm-$study/$row.safetensors.zst
  [ -s "$model" ] || { echo "rrm_masking: no checkpoint for $study $row" >&2; continue; }
  evaluate "rrm-$study-$row" "$model" --attacks apgd-ce --sweep-samples 500 --check-samples 500
  evaluate "rrm-$study-$row-square" "$model" --attacks apgd-ce,apgd-t,square --cascade --target-classes 3 \
    --square-queries 5000 --sweep-samples 0 --check-samples 0
done
