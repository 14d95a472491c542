#!/usr/bin/env bash
# The main job on the embedded defaults (Config/checkout.toml, Spool/): installs what is missing,
# builds, makes a small robust teacher if none is present, submits it, runs `rrmd serve --once`
# (which attacks the teacher, distils and attacks each student) and prints the report, then
# compares the students with a naturally trained network of the teacher's architecture, attacked
# the same way. About eight minutes on two cores after the build.
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
  # A small PGD-AT teacher (L-inf 0.1): 2 epochs on 20,000 images, 3 attack steps, about 45 s.
  # Weak next to a full run (about 52 % robust on the first 1,000 test images), and exactly the
  # teacher of docs/rrm-study.md's reference rows.
  mkdir -p "$(dirname "$teacher")"
  echo "run: making a small robust teacher in $teacher" >&2
  "$rrmd" train --arch cnn-small --dataset fashion-mnist --epochs 2 --limit 20000 --adversarial pgd --epsilon 0.1 \
    --attack-steps 3 --out "$teacher"
fi

job=$("$rrmd" submit --config "$config" "$teacher")
echo "run: submitted $teacher as job $job" >&2
"$rrmd" serve --config "$config" --once
if [ -d "Spool/done/$job" ]; then
  done_dir=Spool/done/$job
  echo "run: report in $done_dir/report.md (students in $done_dir/students/)" >&2
elif [ -d "Spool/failed/$job" ] && grep -q '"kind" : "duplicate"' "Spool/failed/$job/error.json"; then
  # The same teacher was distilled by an earlier run: the daemon points at it instead of redoing it.
  original=$(sed -nE 's/.*identical to job ([0-9a-f-]+).*/\1/p' "Spool/failed/$job/error.json" | head -n 1)
  done_dir=Spool/done/$original
  echo "run: this teacher was already distilled as job $original; report in $done_dir/report.md" >&2
elif [ -d "Spool/failed/$job" ]; then
  echo "run: job $job failed; see Spool/failed/$job/error.json" >&2
  cat "Spool/failed/$job/error.json" >&2
  exit 1
else
  echo "run: job $job was not published; rrmd status --config $config shows why" >&2
  "$rrmd" status --config "$config" >&2
  exit 1
fi
cat "$done_dir/report.md"

# The control: the teacher's architecture trained naturally with the students' budget (same
# images, epochs), attacked exactly like them. Whatever robustness the students show above it
# came from the teacher.
# The teacher's architecture and dataset, and the radius its students were attacked at.
read -r arch dataset epsilon < <(python3 -c 'import json, sys
t = json.load(open(sys.argv[1]))
print(t["model"]["arch"], t["model"]["dataset"], t["threat"]["epsilon_text"])' "$done_dir/reports/teacher/report.json")
natural=Spool/reference/$arch-$dataset-natural.safetensors.zst
if [ ! -f "$natural" ]; then
  mkdir -p Spool/reference
  echo "run: training a natural $arch on $dataset for comparison in $natural" >&2
  "$rrmd" train --arch "$arch" --dataset "$dataset" --epochs 5 --limit 20000 --seed 1 --out "$natural"
fi
if [ ! -f "$natural.report/report.json" ]; then
  # The [evaluation] settings of Config/checkout.toml and the teacher's epsilon, as the daemon
  # attacks its students (run_summary.py checks that the two protocols agree).
  "$rrmd" evaluate --model "$natural" --epsilon "$epsilon" --samples 500 --iterations 20 --target-classes 3 \
    --sweep-samples 200 --check-samples 200 --report "$natural.report" >/dev/null
fi
python3 Scripts/run_summary.py "$done_dir/report.json" "$natural.report/report.json"
