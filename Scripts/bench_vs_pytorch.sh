#!/usr/bin/env bash
# Issue 7's side-by-side measurement: `rrmd bench`, then every PyTorch peer of ../shared/peers in
# both memory layouts and PyTorch's ResNet-20 training peak memory, then `rrmd bench` again, all
# in one session on one machine; prints the ratio table of docs/performance.md.
#
#   PY=/path/to/torch-venv/bin/python bash Scripts/bench_vs_pytorch.sh
#
# Env: PY (a Python with torch and torchattacks, see ../shared/peers/README.md), PEERS
# (../shared/peers), OUT (results/bench-<time>), RRMD (the binary; built here by default).
# Run nothing else meanwhile: each figure records `other_cores`, the load from other processes.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
PEERS=$(cd "${PEERS:-../shared/peers}" && pwd)
OUT=${OUT:-results/bench-$(date -u +%Y%m%d-%H%M%S)}
if [ -z "${RRMD:-}" ]; then
  swift build -c release --product rrmd >&2
  RRMD=.build/release/rrmd
fi
mkdir -p "$OUT"
echo "rrmd bench (1/2)" >&2
"$RRMD" bench --json > "$OUT/rrmd-1.json"
for s in bench_resnet20 bench_vgg bench_rrm bench_pgd; do
  for cl in 0 1; do
    echo "$s channels_last=$cl" >&2
    (cd "$PEERS" && BENCH_CHANNELS_LAST=$cl "$PY" "$s.py") >> "$OUT/peers.jsonl"
  done
done
for cl in 0 1; do
  echo "PyTorch ResNet-20 training peak memory, channels_last=$cl" >&2
  PEERS=$PEERS BENCH_CHANNELS_LAST=$cl "$PY" Tools/pytorch/peak_rss_resnet20.py >> "$OUT/peers.jsonl"
done
echo "rrmd bench (2/2)" >&2
"$RRMD" bench --json > "$OUT/rrmd-2.json"
python3 Scripts/bench_table.py "$OUT"
