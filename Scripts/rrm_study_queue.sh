#!/usr/bin/env bash
# Everything docs/rrm-study.md still waits for, in two one-thread lanes that share a 2-core
# machine: the paper setting on Fashion-MNIST in one; the last factor row, then the paper setting
# on MNIST, then the MNIST and remaining factor rows in the other. The rows issue 13 asks for
# first (teacher, rrm, natural, pgd-at), then the rows that explain them, then the paper's 48
# epochs and the rest. Every row resumes where it stopped (Scripts/rrm_study.sh), so after an
# interruption run this again; `--publish` afterwards keeps what finished (and what is half
# done) in git:
#
#   nohup nice -n 5 bash Scripts/rrm_study_queue.sh > study-queue.log 2>&1 &
#   bash Scripts/rrm_study_queue.sh --publish
#
# Rows run from a copy of the release binary (RRMD), so rebuilding meanwhile changes nothing.
# Wall times of rows that shared the machine are not timings: the time ratios of the paper's
# setting come from Scripts/rrm_cost.sh, which measures the recipes side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
studies=(factors paper-fashion-mnist mnist paper-mnist)
if [ "${1:-}" = "--publish" ]; then
  for s in "${studies[@]}"; do STUDY=$s bash Scripts/rrm_study.sh --publish; done
  exit 0
fi
bash Scripts/setup.sh >&2
mkdir -p results
bin=results/rrmd-study-bin
# KEEP_BIN=1 goes on with the copy a queue made before (a session in the middle of a change).
if [ "${KEEP_BIN:-0}" != 1 ] || [ ! -x "$bin" ]; then
  swift build -c release --product rrmd >&2
  cp .build/release/rrmd "$bin.tmp" && mv "$bin.tmp" "$bin"
fi
export RRMD=$bin THREADS=1

fashion_lane() {
  STUDY=paper-fashion-mnist bash Scripts/rrm_study.sh rrm rrm-x005-thead natural pgd-at rrm-x005 rrm-5ep free-at-lr05 rrm-paper48 w1-rrm-thead w1-rrm-x05
}
mnist_lane() {
  bash Scripts/rrm_study.sh ep96
  STUDY=paper-mnist bash Scripts/rrm_study.sh teacher rrm natural pgd-at rrm-5ep free-at-lr05 rrm-paper48 rrm-x005 rrm-x005-thead
  STUDY=mnist bash Scripts/rrm_study.sh t-short ref r4 r4-x05 natural mlp-r4 mlp-r4-x05
  bash Scripts/rrm_study.sh noise0.05 ep24 img60k ep48 r4-xent2 free8-ep3
}
fashion_lane > results/queue-paper.log 2>&1 &
mnist_lane > results/queue-factors.log 2>&1 &
wait
