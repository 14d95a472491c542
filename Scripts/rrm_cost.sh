#!/usr/bin/env bash
# The training cost of the paper setting's recipes (docs/rrm-study.md), measured side by side:
# each recipe trains one epoch on the first LIMIT images, in ROUNDS rounds that alternate the
# recipes, so that the CPU's drift within a session falls on all of them alike. The rate is the
# epoch's own images per second (the per-epoch test pass is left out). A whole run's training
# time is then the rate over 60,000 images times the row's epochs; the ratio to `pgd-at` is
# the issue's "times less wall time than the student's own PGD-AT".
#
#   bash Scripts/rrm_cost.sh                       # Fashion-MNIST, 2 threads, 3 rounds
#   PAUSE=1 bash Scripts/rrm_cost.sh               # stop the study lanes meanwhile (SIGSTOP/SIGCONT)
#
# Variables: WIDTH (the student's width multiplier), TEACHER (a cnn-small checkpoint to distil
# from; the cost does not depend on its weights), LIMIT, ROUNDS, THREADS, RRMD, OUT (a directory
# for the logs and cost.json), ONLY (the rows to measure, e.g. "teacher pgd-at"), TEACHER_R20 (a
# resnet20 ×0.5 checkpoint for `rrm-tr20`; by default the one `teacher-r20` writes in the same
# round).
# MNIST has Fashion-MNIST's shapes, so its costs are the same.
set -euo pipefail
cd "$(dirname "$0")/.."
LIMIT=${LIMIT:-3840}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
WIDTH=${WIDTH:-1.25}
OUT=${OUT:-results/rrm-cost-w$WIDTH}
ONLY=${ONLY:-}
TEACHER=${TEACHER:-docs/results/rrm-paper-fashion-mnist/teacher.safetensors.zst}
TEACHER_R20=${TEACHER_R20:-$OUT/teacher-r20.safetensors.zst}
if [ -z "${RRMD:-}" ]; then
  bash Scripts/setup.sh >&2
  swift build -c release --product rrmd >&2
  RRMD=.build/release/rrmd
fi
mkdir -p "$OUT"
if [ "${PAUSE:-0}" = 1 ]; then
  pkill -STOP -f rrmd-study-bin || true
  trap 'pkill -CONT -f rrmd-study-bin || true' EXIT
fi

# NAME EPOCHS-IN-THE-PAPER-ROW COMMAND (one epoch of it): the rows of Scripts/rrm_study.sh's
# paper setting, by what a step costs.
recipes() {
  cat <<ROWS
teacher 10 train --arch cnn-small --epochs 1 --adversarial pgd --epsilon 0.1 --attack-steps 7
pgd-at 10 train --arch resnet20 --width $WIDTH --epochs 1 --adversarial pgd --epsilon 0.1 --attack-steps 7
natural 10 train --arch resnet20 --width $WIDTH --epochs 1
rrm 2 distill --teacher $TEACHER --student resnet20 --width $WIDTH --epochs 1 --replays 4 --no-evaluate
rrm-5ep 5 distill --teacher $TEACHER --student resnet20 --width $WIDTH --epochs 1 --replays 4 --no-evaluate
rrm-paper48 48 distill --teacher $TEACHER --student resnet20 --width $WIDTH --epochs 1 --replays 1 --no-evaluate
free-at 2 train --arch resnet20 --width $WIDTH --epochs 1 --adversarial free --epsilon 0.1 --replays 4
teacher-r20 10 train --arch resnet20 --width 0.5 --epochs 1 --adversarial pgd --epsilon 0.1 --attack-steps 3
rrm-tr20 2 distill --teacher $TEACHER_R20 --student resnet20 --width $WIDTH --epochs 1 --replays 4 --no-evaluate
ROWS
}

for round in $(seq 1 "$ROUNDS"); do
  while read -r name _ args; do
    # rrm-5ep's step is rrm's; measuring it again would only add noise.
    [ "$name" = rrm-5ep ] && continue
    if [ -n "$ONLY" ] && [[ " $ONLY " != *" $name "* ]]; then continue; fi
    log="$OUT/$name.$round.log"
    [ -s "$log" ] && grep -q 'images/s' "$log" && continue
    echo "== round $round: $name" >&2
    # shellcheck disable=SC2086
    "$RRMD" $args --dataset fashion-mnist --limit "$LIMIT" --seed 1 --threads "$THREADS" \
      --out "$OUT/$name.safetensors.zst" 2> "$log.part" > /dev/null
    mv "$log.part" "$log"
  done < <(recipes)
done
rm -f "$OUT"/*.safetensors.zst
lscpu | sed -n 's/^Model name: *//p' > "$OUT/cpu.txt"
recipes | python3 Scripts/rrm_cost_table.py "$OUT" "$LIMIT" "$THREADS"
