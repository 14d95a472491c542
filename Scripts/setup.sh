#!/usr/bin/env bash
# Installs the Debian packages rrmd builds and runs against, if any are missing.
# Used by test.sh and run.sh so a fresh Debian 12 machine with Swift needs nothing else.
set -euo pipefail

# python3: the main job prints its summary with Scripts/run_summary.py (standard library only).
packages=(libopenblas-dev zlib1g-dev libzstd-dev libinotifytools0-dev libsystemd-dev systemd dataset-fashion-mnist python3
  libturbojpeg0-dev libpng-dev)
# --slurm (the tests): a one-node Slurm cluster for the Slurm executor's tests (Scripts/slurm_cluster.sh).
if [ "${1:-}" = "--slurm" ]; then packages+=(slurmctld slurmd slurm-client munge); fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
