#!/usr/bin/env bash
# How a study row's robustness depends on the attack's strength, on its first training images
# (docs/rrm-study.md, "The defaults' collapse"): PGD-10 and APGD-CE at 10 / 20 / 50 / 100 / 300
# iterations on 512 images, then APGD-CE and the gradient-free Square attack (2,000 queries) on
# 200. A healthy model levels off within a few tens of iterations and Square does not beat APGD;
# a model that masks its gradients keeps falling and Square beats APGD. One thread; a report
# that exists is kept, so a stopped run continues where it stopped.
#
#   STUDY=paper-fashion-mnist bash Scripts/rrm_attack_ladder.sh rrm-5ep-tpgd rrm-5ep-tr20
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: STUDY=... $0 ROW..." >&2; exit 2; }
study=${STUDY:-paper-fashion-mnist}
case "$study" in
  *fashion-mnist) data=() ;;
  *mnist) data=(--data-dir ../shared/data/mnist) ;;
  *) echo "rrm_attack_ladder: unknown study $study" >&2; exit 2 ;;
esac
R=${RRMD:-.build/release/rrmd}
[ -n "${RRMD:-}" ] || swift build -c release --product rrmd >&2
out=docs/results/masking/ladder
mkdir -p "$out"
# run ROW NAME ARGS...: one report, written through a temp file, skipped when it exists.
run() {
  local row=$1 name=$2
  shift 2
  local json=$out/$study-$row-$name.json
  [ -s "$json" ] && return 0
  echo "== $row $name" >&2
  local tmp
  tmp=$(mktemp -d)
  nice -n 5 "$R" evaluate --model "results/rrm-$study/$row.safetensors.zst" "${data[@]}" --split train \
    --sweep-samples 0 --check-samples 0 --threads 1 --report "$tmp" --json "$@" > "$tmp/out.json"
  mv "$tmp/out.json" "$json"
  rm -rf "$tmp"
}
for row in "$@"; do
  run "$row" pgd10 --samples 512 --attacks pgd --iterations 10
  for it in 10 20 50 100 300; do run "$row" apgd$it --samples 512 --attacks apgd-ce --iterations "$it"; done
  run "$row" square --samples 200 --attacks apgd-ce,square --square-queries 2000 --iterations 100
done
# The table: row, attack, robust accuracy (the first training images).
for row in "$@"; do
  for f in "$out/$study-$row"-*.json; do
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
print("\t".join([sys.argv[2], sys.argv[1].split("-")[-1][:-5]] + ["%s %.1f%%" % (a["name"], 100 * a["robust_accuracy"]) for a in d["attacks"]]))' "$f" "$row"
  done
done
