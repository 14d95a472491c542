#!/usr/bin/env bash
# The main job on the embedded defaults (Config/checkout.toml, Spool/): installs what is missing,
# builds, makes a small robust teacher if none is present, submits it, runs `rrmd serve --once`
# and prints where the report is. A few minutes on two cores after the build.
#
#   RRMD_TEACHER=path/to/teacher.safetensors.zst bash Scripts/run.sh   # distil your own teacher
set -euo pipefail
cd "$(dirname "$0")/.."
bash Scripts/setup.sh
swift build -c release --product rrmd
rrmd=.build/release/rrmd
config=Config/checkout.toml

teacher=${RRMD_TEACHER:-Spool/teachers/cnn-small-fashion-mnist-pgd.safetensors.zst}
if [ ! -f "$teacher" ]; then
  # A small PGD-AT teacher (L-inf 0.1): 2 epochs on 20,000 images, 3 attack steps. Weak next to
  # a full run, but robust enough for its students to show the transfer.
  mkdir -p "$(dirname "$teacher")"
  echo "run: making a small robust teacher in $teacher" >&2
  "$rrmd" train --arch cnn-small --dataset fashion-mnist --epochs 2 --limit 20000 --adversarial pgd --epsilon 0.1 \
    --attack-steps 3 --out "$teacher"
fi

job=$("$rrmd" submit --config "$config" "$teacher")
echo "run: submitted $teacher as job $job" >&2
"$rrmd" serve --config "$config" --once
if [ -d "Spool/done/$job" ]; then
  echo "run: report in Spool/done/$job/report.md (students in Spool/done/$job/students/)" >&2
  cat "Spool/done/$job/report.md"
elif [ -d "Spool/failed/$job" ] && grep -q '"kind" : "duplicate"' "Spool/failed/$job/error.json"; then
  # The same teacher was distilled by an earlier run: the daemon points at it instead of redoing it.
  original=$(sed -nE 's/.*identical to job ([0-9a-f-]+).*/\1/p' "Spool/failed/$job/error.json" | head -n 1)
  echo "run: this teacher was already distilled as job $original; report in Spool/done/$original/report.md" >&2
  cat "Spool/done/$original/report.md"
elif [ -d "Spool/failed/$job" ]; then
  echo "run: job $job failed; see Spool/failed/$job/error.json" >&2
  cat "Spool/failed/$job/error.json" >&2
  exit 1
else
  echo "run: job $job was not published; rrmd status --config $config shows why" >&2
  "$rrmd" status --config "$config" >&2
  exit 1
fi
