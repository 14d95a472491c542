#!/usr/bin/env bash
# The RRM trade-off study of docs/rrm-fashion-mnist.md: one PGD-AT teacher, and two student
# architectures different from it, each trained three ways (natural, PGD-AT, RRM from the
# teacher), every model evaluated with APGD-CE + APGD-T on the full test set.
#
#   bash Scripts/rrm_tradeoff.sh            # everything (about 3 hours on 2 cores)
#   OUT=dir EPOCHS=10 STUDENTS="mlp:1 resnet20:0.5" bash Scripts/rrm_tradeoff.sh
#
# STUDENTS lists ARCH[:WIDTH] (width multiplier, default STUDENT_WIDTH). Evaluations cascade
# (APGD-T attacks only what APGD-CE left), AutoAttack's way, and APGD-T tries the 3 most likely
# wrong classes instead of AutoAttack's 9, which keeps the robust ResNet-20 rows within an hour
# on 2 cores (docs/rrm-fashion-mnist.md compares the two on the mlp rows); set EVAL_ARGS to
# change that.
#
# Each step is skipped when its output exists, so an interrupted study continues. Wall times
# come from each command's own --json summary; run nothing else on the machine meanwhile.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-results/rrm-fashion-mnist}
EPOCHS=${EPOCHS:-10}
EPS=${EPS:-0.1}
STEPS=${STEPS:-7}
TEACHER_ARCH=${TEACHER_ARCH:-cnn-small}
STUDENTS=${STUDENTS:-"mlp:1 resnet20:0.5"}
STUDENT_WIDTH=${STUDENT_WIDTH:-1}
XENT=${XENT:-0.005}
EVAL_ARGS=${EVAL_ARGS:-"--attacks apgd-ce,apgd-t --epsilon $EPS --cascade --target-classes 3"}
THREADS=${THREADS:-2}

bash Scripts/setup.sh
swift build -c release --product rrmd >&2
R=.build/release/rrmd
mkdir -p "$OUT"

# run NAME CMD...: runs CMD unless $OUT/NAME.json exists; its stdout (--json) goes there.
run() {
  local name=$1; shift
  if [ -s "$OUT/$name.json" ]; then echo "skip $name (done)" >&2; return; fi
  echo "== $name: $*" >&2
  "$@" > "$OUT/$name.json.part" 2> "$OUT/$name.log"
  mv "$OUT/$name.json.part" "$OUT/$name.json"
}

run teacher $R train --arch "$TEACHER_ARCH" --dataset fashion-mnist --epochs "$EPOCHS" --threads "$THREADS" \
  --adversarial pgd --epsilon "$EPS" --attack-steps "$STEPS" --out "$OUT/teacher.safetensors.zst" --json
NAMES=""
for spec in $STUDENTS; do
  s=${spec%%:*}
  w=$STUDENT_WIDTH
  if [ "$spec" != "$s" ]; then w=${spec#*:}; fi
  NAMES="$NAMES $s"
  run "$s-natural" $R train --arch "$s" --width "$w" --dataset fashion-mnist --epochs "$EPOCHS" --threads "$THREADS" \
    --out "$OUT/$s-natural.safetensors.zst" --json
  run "$s-pgd-at" $R train --arch "$s" --width "$w" --dataset fashion-mnist --epochs "$EPOCHS" --threads "$THREADS" \
    --adversarial pgd --epsilon "$EPS" --attack-steps "$STEPS" --out "$OUT/$s-pgd-at.safetensors.zst" --json
  run "$s-rrm" $R distill --teacher "$OUT/teacher.safetensors.zst" --student "$s" --width "$w" --epochs "$EPOCHS" \
    --threads "$THREADS" --xent-weight "$XENT" --out "$OUT/$s-rrm.safetensors.zst" --no-evaluate --json
done
for m in teacher $(for s in $NAMES; do echo "$s-natural $s-pgd-at $s-rrm"; done); do
  # shellcheck disable=SC2086
  run "eval-$m" $R evaluate --model "$OUT/$m.safetensors.zst" --threads "$THREADS" $EVAL_ARGS --report "$OUT/report-$m" --json
done
python3 Scripts/rrm_tradeoff_table.py "$OUT" "$NAMES"
