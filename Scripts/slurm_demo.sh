#!/usr/bin/env bash
# Two teachers and three students each, once through the local executor and once through a
# one-node Slurm cluster on this machine (Scripts/slurm_cluster.sh), with the wall time of each
# daemon run and a check that both made the same students. Small settings (2,000 Fashion-MNIST
# images, 2 epochs, 200 attacked images) so the whole comparison takes minutes.
#
#   CPUS=2 bash Scripts/slurm_demo.sh          # one task at a time, each with both threads
#   CPUS=1 bash Scripts/slurm_demo.sh          # two tasks at a time on the 2-CPU node
#
# The students are bit for bit equal when cpus_per_task equals the local daemon's threads (2):
# rrmd's kernels are deterministic for a given thread count, not across thread counts.
set -euo pipefail
cd "$(dirname "$0")/.."
CPUS=${CPUS:-2}
OUT=${OUT:-$(mktemp -d /tmp/rrmd-slurm-demo.XXXXXX)}
bash Scripts/setup.sh --slurm >&2
command -v zstd > /dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq zstd > /dev/null
swift build -c release --product rrmd >&2
R=$(pwd)/.build/release/rrmd
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
export SLURM_TEST_PORT=${SLURM_TEST_PORT:-6900}
eval "$(bash Scripts/slurm_cluster.sh start "$OUT/cluster")"
trap 'bash Scripts/slurm_cluster.sh stop "$OUT/cluster" >/dev/null 2>&1 || true' EXIT

for seed in 0 1; do
  [ -s "$OUT/teacher-$seed.safetensors" ] || "$R" train --arch cnn-small --dataset fashion-mnist --epochs 1 --limit 2000 \
    --adversarial pgd --epsilon 0.1 --attack-steps 3 --seed "$seed" --threads 2 --out "$OUT/teacher-$seed.safetensors" >&2
done

config() { # NAME THREADS EXTRA
  cat > "$OUT/$1.toml" <<EOF
spool = "$OUT/$1"
threads = $2
[students]
architectures = ["mlp", "cnn-small", "resnet20"]
width = 0.5
[rrm]
epochs = 2
limit = 2000
[evaluation]
samples = 200
iterations = 10
target_classes = 3
sweep_samples = 0
check_samples = 0
$3
EOF
}
config local 2 ""
config slurm 2 "[executor]
kind = \"slurm\"
[executor.slurm]
shared_directory = \"$OUT\"
cpus_per_task = $CPUS
poll_seconds = 1
rrmd_path = \"$R\""

declare -A seconds
for kind in local slurm; do
  rm -rf "${OUT:?}/$kind"
  for seed in 0 1; do "$R" submit --config "$OUT/$kind.toml" "$OUT/teacher-$seed.safetensors" > /dev/null; done
  start=$(date +%s%N)
  "$R" serve --config "$OUT/$kind.toml" --once 2> "$OUT/$kind.log"
  seconds[$kind]=$(( ($(date +%s%N) - start) / 1000000 ))
done
# The same teacher's students from both executors: equal tensors (metadata such as paths may differ).
same=yes
for job in "$OUT"/local/done/*/; do
  sha=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['sha256'])" "$job/job.json")
  other=$(dirname "$(grep -l "$sha" "$OUT"/slurm/done/*/job.json | head -1)")
  for arch in mlp cnn-small resnet20; do
    python3 - "$job/students/$arch.safetensors.zst" "$other/students/$arch.safetensors.zst" <<'PY' || same=no
import json, struct, subprocess, sys
def tensors(path):
    raw = subprocess.run(["zstd", "-dc", path], check=True, capture_output=True).stdout
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n]); header.pop("__metadata__", None)
    body = raw[8 + n:]
    return {k: body[v["data_offsets"][0]:v["data_offsets"][1]] for k, v in header.items()}
sys.exit(0 if tensors(sys.argv[1]) == tensors(sys.argv[2]) else 1)
PY
  done
done
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; Slurm cpus_per_task=$CPUS"
echo "local executor: ${seconds[local]} ms; slurm executor: ${seconds[slurm]} ms; same students: $same"
echo "sbatch submissions: $(grep -c 'submitted as Slurm job' "$OUT/slurm.log")"
