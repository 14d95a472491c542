#!/usr/bin/env bash
# Everything docs/rrm-study.md still waits for, in two lanes that share a 2-core machine: the
# paper setting (Fashion-MNIST, then MNIST) on two threads, and the factor and MNIST rows on
# one. Every row resumes where it stopped (Scripts/rrm_study.sh), so after an interruption run
# this again; `--publish` afterwards keeps what finished (and what is half done) in git:
#
#   nohup bash Scripts/rrm_study_queue.sh > study-queue.log 2>&1 &
#   bash Scripts/rrm_study_queue.sh --publish
#
# Rows run from a copy of the release binary (RRMD), so rebuilding meanwhile changes nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
studies=(factors paper-fashion-mnist mnist paper-mnist)
if [ "${1:-}" = "--publish" ]; then
  for s in "${studies[@]}"; do STUDY=$s bash Scripts/rrm_study.sh --publish; done
  exit 0
fi
bash Scripts/setup.sh >&2
swift build -c release --product rrmd >&2
mkdir -p results
bin=results/rrmd-study-bin
cp .build/release/rrmd "$bin.tmp" && mv "$bin.tmp" "$bin"
export RRMD=$bin

paper_lane() {
  STUDY=paper-fashion-mnist THREADS=2 bash Scripts/rrm_study.sh rrm rrm-x05 natural pgd-at rrm-fast free-at-lr05 free-at rrm-paper48
  STUDY=paper-mnist THREADS=2 bash Scripts/rrm_study.sh teacher rrm-x05 natural pgd-at rrm-fast free-at-lr05 rrm rrm-paper48
}
factor_lane() {
  THREADS=1 bash Scripts/rrm_study.sh noise0.05 ep24 img60k ep48 ep96
  STUDY=mnist THREADS=1 bash Scripts/rrm_study.sh t-short ref r4 r4-x05 natural mlp-r4 mlp-r4-x05
  THREADS=1 bash Scripts/rrm_study.sh r4-xent2 free8-ep3
}
paper_lane > results/queue-paper.log 2>&1 &
factor_lane > results/queue-factors.log 2>&1 &
wait
