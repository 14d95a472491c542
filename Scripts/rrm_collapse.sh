#!/usr/bin/env bash
# How often a replaying student collapses (docs/rrm-study.md, "A random start is not yet rrmd's
# default"): the main job's recipe (cnn-small from the factor study's teacher t-short, 5 epochs of
# 4 replays at weight 0.5 on the first 20,000 Fashion-MNIST images) started once per seed and
# start, and stopped after its first epoch, whose test accuracy tells a student that learns
# (60-70 %) from one that collapsed (10 %, a constant prediction). The schedule is the 5-epoch
# run's, so the first epoch is the one the collapse happened in.
#
#   bash Scripts/rrm_collapse.sh                  # every start x seed x thread count below
#   SEEDS="0 1 2" STARTS="clean random" bash Scripts/rrm_collapse.sh
#
# One line per run in results/rrm-collapse/summary.tsv (start, ramp, seed, threads, first-epoch
# test accuracy); runs already there are skipped, so it resumes after an interruption.
set -euo pipefail
cd "$(dirname "$0")/.."
R=${RRMD:-.build/release/rrmd}
[ -n "${RRMD:-}" ] || swift build -c release --product rrmd >&2
OUT=results/rrm-collapse
mkdir -p "$OUT"
teacher=results/rrm-study/t-short.safetensors.zst
[ -s "$teacher" ] || { mkdir -p results/rrm-study; cp docs/results/rrm-study/t-short.safetensors.zst "$teacher"; }
SEEDS=${SEEDS:-"0 1 2 3 4 5"}
# A start is clean, random, or random-ramp (random with --epsilon-ramp 1).
STARTS=${STARTS:-"clean random random-ramp"}
THREAD_COUNTS=${THREAD_COUNTS:-"1 2"}
# A fresh checkout starts from the runs an earlier checkout published (rrm_study_queue.sh --publish).
[ -s "$OUT/summary.tsv" ] || [ ! -s docs/results/rrm-collapse/summary.tsv ] || cp docs/results/rrm-collapse/summary.tsv "$OUT/"
touch "$OUT/summary.tsv"
for threads in $THREAD_COUNTS; do
  for seed in $SEEDS; do
    for start in $STARTS; do
      ramp=0
      flag=$start
      if [ "$start" = random-ramp ]; then ramp=1; flag=random; fi
      if awk -v s="$flag" -v r="$ramp" -v d="$seed" -v t="$threads" \
        '$1 == s && $2 == r && $3 == d && $4 == t { found = 1 } END { exit !found }' "$OUT/summary.tsv"; then
        continue
      fi
      name="$start-s$seed-t$threads"
      rm -f "$OUT/$name".*
      : > "$OUT/$name.log"
      nice "$R" distill --teacher "$teacher" --student cnn-small --epochs 5 --limit 20000 --seed "$seed" \
        --replays 4 --xent-weight 0.5 --replay-start "$flag" --epsilon-ramp "$ramp" --threads "$threads" \
        --no-evaluate --out "$OUT/$name.safetensors.zst" > /dev/null 2> "$OUT/$name.log" &
      pid=$!
      # The progress lines end in carriage returns; the epoch summary is a line of its own.
      until tr '\r' '\n' < "$OUT/$name.log" | grep -q '^epoch 1/5:'; do
        kill -0 "$pid" 2> /dev/null || break
        sleep 2
      done
      kill -TERM "$pid" 2> /dev/null || true
      wait "$pid" 2> /dev/null || true
      accuracy=$(tr '\r' '\n' < "$OUT/$name.log" | sed -n 's/^epoch 1\/5:.*test accuracy \([0-9.]*\)%.*/\1/p')
      [ -n "$accuracy" ] || { echo "rrm_collapse: $name ended before its first epoch (see $OUT/$name.log)" >&2; exit 1; }
      printf '%s\t%s\t%s\t%s\t%s\n' "$flag" "$ramp" "$seed" "$threads" "$accuracy" >> "$OUT/summary.tsv"
      rm -f "$OUT/$name".safetensors.zst*
      echo "$name: first-epoch test accuracy $accuracy %" >&2
    done
  done
done
column -t "$OUT/summary.tsv"
