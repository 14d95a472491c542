#!/usr/bin/env bash
# Issue 7's ratios measured round by round: for each workload, `rrmd bench --only` and its
# PyTorch peer (channels-last, the faster layout) run back to back, ROUNDS times, so each ratio
# compares two measurements seconds apart instead of minutes apart. On the shared VMs this runs
# on, the host's speed drifts by 15-30 % over minutes; `bench_vs_pytorch.sh`'s bracketing then
# moves a ratio by that much, round-by-round ratios much less. Prints every round's ratio and
# their median.
#
#   PY=/path/to/torch-venv/bin/python bash Scripts/bench_interleaved.sh
#
# Env: PY, PEERS (../shared/peers), OUT (results/interleaved-<time>), RRMD (built here by
# default), ROUNDS (3), LAYOUT (1: channels-last; 0: NCHW).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
PEERS=$(cd "${PEERS:-../shared/peers}" && pwd)
OUT=${OUT:-results/interleaved-$(date -u +%Y%m%d-%H%M%S)}
ROUNDS=${ROUNDS:-3}
LAYOUT=${LAYOUT:-1}
if [ -z "${RRMD:-}" ]; then
  swift build -c release --product rrmd >&2
  RRMD=.build/release/rrmd
fi
mkdir -p "$OUT"
# rrmd workloads | the peer script that times them
pairs=("resnet20_train,resnet20_infer|bench_resnet20" "vgg_small_train|bench_vgg" "rrm_step|bench_rrm" "pgd10|bench_pgd")
for round in $(seq 1 "$ROUNDS"); do
  for pair in "${pairs[@]}"; do
    only=${pair%%|*}; script=${pair##*|}
    echo "round $round: rrmd $only, then $script" >&2
    "$RRMD" bench --only "$only" --repeats 3 --json | python3 -c \
      'import json,sys; d=json.load(sys.stdin); d["round"]=int(sys.argv[1]); print(json.dumps(d))' "$round" >> "$OUT/rrmd.jsonl"
    (cd "$PEERS" && BENCH_CHANNELS_LAST=$LAYOUT "$PY" "$script.py") | python3 -c \
      'import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); d["round"]=int(sys.argv[1]); print(json.dumps(d))' "$round" >> "$OUT/peers.jsonl"
  done
done
python3 Scripts/bench_interleaved_table.py "$OUT"
