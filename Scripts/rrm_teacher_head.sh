#!/usr/bin/env bash
# The teacher's-classifier experiment of docs/rrm-study.md: a distilled row's student gets its
# teacher's classifier, scaled onto the student's representation (`rrmd teacher-classifier`),
# and is attacked beside the row's own student and its teacher on the same test images.
#
#   STUDY=factors bash Scripts/rrm_teacher_head.sh free4-ep5 tlong-r4
#   STUDY=paper-mnist bash Scripts/rrm_teacher_head.sh rrm-x005
#   bash Scripts/rrm_teacher_head.sh --publish     # copy the summaries into docs/results/
#
# The rows must be trained (Scripts/rrm_study.sh). Results go to results/thead-$STUDY/: for each
# row NAME, NAME-thead.head.txt (the fit: cosine, scale, clean accuracy of both classifiers) and
# NAME-thead.eval.json, NAME.eval.json, TEACHER.eval.json: APGD-CE then APGD-T on the first
# SAMPLES test images (default 1,000; the factor study's own protocol, a screening for the
# paper setting's whole-test-set rows).
set -euo pipefail
cd "$(dirname "$0")/.."
STUDY=${STUDY:-factors}
SAMPLES=${SAMPLES:-1000}
R=${RRMD:-.build/release/rrmd}
MNIST_DIR=${MNIST_DIR:-../shared/data/mnist}
case "$STUDY" in
  factors) SRC=results/rrm-study; EPS=0.1; TARGETS=9; DATA_ARGS="" ;;
  paper-fashion-mnist) SRC=results/rrm-paper-fashion-mnist; EPS=0.1; TARGETS=3; DATA_ARGS="" ;;
  paper-mnist) SRC=results/rrm-paper-mnist; EPS=0.3; TARGETS=3; DATA_ARGS="--data-dir $MNIST_DIR" ;;
  screen-mnist) SRC=results/rrm-screen-mnist; EPS=0.3; TARGETS=3; DATA_ARGS="--data-dir $MNIST_DIR" ;;
  *) echo "rrm_teacher_head: unknown STUDY '$STUDY' (factors, paper-fashion-mnist, paper-mnist, screen-mnist)" >&2; exit 2 ;;
esac
OUT=results/thead-$STUDY
if [ "${1:-}" = "--publish" ]; then
  for s in factors paper-fashion-mnist paper-mnist screen-mnist; do
    [ -d "results/thead-$s" ] || continue
    mkdir -p "docs/results/thead-$s"
    cp results/thead-$s/*.eval.json results/thead-$s/*.head.txt "docs/results/thead-$s/" 2>/dev/null || true
  done
  exit 0
fi
mkdir -p "$OUT"
[ -x "$R" ] || swift build -c release --product rrmd >&2

# evaluate MODEL NAME: the attack protocol on the first SAMPLES test images (skipped when done).
evaluate() {
  [ -s "$OUT/$2.eval.json" ] && return 0
  # A fresh checkout has what an earlier one published (--publish).
  if [ -s "docs/results/thead-$STUDY/$2.eval.json" ]; then
    cp "docs/results/thead-$STUDY/$2.eval.json" "$OUT/"
    return 0
  fi
  # The factor study and the MNIST screen attacked their rows with this very protocol: their
  # summaries serve as they are.
  if { [ "$STUDY" = factors ] || [ "$STUDY" = screen-mnist ]; } && [ "$SAMPLES" = 1000 ] && [ -s "$SRC/$2.eval.json" ]; then
    cp "$SRC/$2.eval.json" "$OUT/"
    return 0
  fi
  # shellcheck disable=SC2086
  nice "$R" evaluate --model "$1" --samples "$SAMPLES" --epsilon "$EPS" --attacks apgd-ce,apgd-t --cascade \
    --target-classes "$TARGETS" --sweep-samples 0 --check-samples 0 $DATA_ARGS --threads 1 \
    --report "$OUT/report-$2" --json > "$OUT/$2.eval.json.part" 2> "$OUT/$2.eval.log"
  mv "$OUT/$2.eval.json.part" "$OUT/$2.eval.json"
}

for name in "$@"; do
  teacher=$(STUDY=$STUDY bash Scripts/rrm_study.sh --list | awk -v n="$name" '$1 == n && $2 == "distill" {print $3}')
  [ -n "$teacher" ] || { echo "rrm_teacher_head: $name is not a distilled row of $STUDY" >&2; exit 2; }
  if [ ! -s "$SRC/$name.safetensors.zst" ]; then
    echo "rrm_teacher_head: train $name first (Scripts/rrm_study.sh)" >&2
    exit 2
  fi
  if [ ! -s "$OUT/$name-thead.safetensors.zst" ] && [ ! -s "docs/results/thead-$STUDY/$name-thead.eval.json" ]; then
    # shellcheck disable=SC2086
    nice "$R" teacher-classifier --student "$SRC/$name.safetensors.zst" --teacher "$SRC/$teacher.safetensors.zst" \
      $DATA_ARGS --threads 1 --out "$OUT/$name-thead.safetensors.zst" > "$OUT/$name-thead.head.txt"
  fi
  evaluate "$SRC/$teacher.safetensors.zst" "$teacher"
  evaluate "$SRC/$name.safetensors.zst" "$name"
  evaluate "$OUT/$name-thead.safetensors.zst" "$name-thead"
  for n in "$teacher" "$name" "$name-thead"; do
    python3 - "$OUT/$n.eval.json" "$n" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(f"{sys.argv[2]:24} clean {d['clean']['accuracy']:.3f}  "
      + "  ".join(f"{a['name']} {a['robust_accuracy']:.3f}" for a in d["attacks"]))
PY
  done
done
