#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for the Slurm executor's tests (and for trying the
# executor by hand): munged with a generated key, slurmctld and slurmd in the foreground, no
# accounting, no cgroups, no systemd. Everything lives in DIR; nothing outside it is touched
# (the Debian packages are installed once by Scripts/setup.sh).
#
#   bash Scripts/slurm_cluster.sh start DIR      # prints "export SLURM_CONF=DIR/slurm.conf"
#   bash Scripts/slurm_cluster.sh stop DIR       # stops every daemon it started, by pid
#   bash Scripts/slurm_cluster.sh stop-controller DIR / start-controller DIR
#
# Ports: SLURM_TEST_PORT (default 6817) for slurmctld and the next one for slurmd.
set -euo pipefail
action=${1:?usage: slurm_cluster.sh start|stop|stop-controller|start-controller DIR}
dir=${2:?usage: slurm_cluster.sh ACTION DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
export SLURM_CONF=$dir/slurm.conf

stop_pid() {
  local file=$1 pid
  [ -s "$file" ] || return 0
  pid=$(cat "$file")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

start_controller() {
  slurmctld -D -f "$SLURM_CONF" >> "$dir/slurmctld.out" 2>&1 &
  echo $! > "$dir/slurmctld.pid.own"
  for _ in $(seq 1 100); do
    scontrol ping 2>/dev/null | grep -q 'is UP' && return 0
    sleep 0.1
  done
  echo "slurm_cluster: slurmctld did not come up; see $dir/slurmctld.log" >&2
  return 1
}

case "$action" in
  start)
    for p in munged slurmctld slurmd sbatch; do
      command -v "$p" > /dev/null || { echo "slurm_cluster: $p is missing (bash Scripts/setup.sh installs it)" >&2; exit 1; }
    done
    "$0" stop "$dir" 2>/dev/null || true
    port=${SLURM_TEST_PORT:-6817}
    host=$(hostname -s)
    mem=$(awk '/MemTotal/ {print int($2 / 1024 / 2)}' /proc/meminfo)
    cpus=$(nproc)
    mkdir -p "$dir/state" "$dir/slurmd" "$dir/munge"
    chmod 700 "$dir/munge"
    [ -s "$dir/munge/munge.key" ] || { head -c 1024 /dev/urandom > "$dir/munge/munge.key"; chmod 600 "$dir/munge/munge.key"; }
    cat > "$SLURM_CONF" <<EOF
ClusterName=rrmdtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/slurmd
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/builtin
MpiDefault=none
ReturnToService=2
KillWait=10
MinJobAge=300
SlurmdTimeout=30
SlurmctldTimeout=10
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    munged -F --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
      --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munge.seed" \
      > "$dir/munged.out" 2>&1 &
    echo $! > "$dir/munged.pid.own"
    for _ in $(seq 1 50); do [ -S "$dir/munge/munge.socket" ] && break; sleep 0.1; done
    start_controller
    slurmd -D -f "$SLURM_CONF" >> "$dir/slurmd.out" 2>&1 &
    echo $! > "$dir/slurmd.pid.own"
    for _ in $(seq 1 150); do
      state=$(sinfo -h -o %T 2>/dev/null | head -1)
      [ "$state" = idle ] && { echo "export SLURM_CONF=$SLURM_CONF"; exit 0; }
      sleep 0.2
    done
    echo "slurm_cluster: the node did not become idle (state '${state:-}'); see $dir/*.log" >&2
    exit 1
    ;;
  stop)
    stop_pid "$dir/slurmd.pid.own"
    stop_pid "$dir/slurmctld.pid.own"
    stop_pid "$dir/munged.pid.own"
    ;;
  stop-controller) stop_pid "$dir/slurmctld.pid.own" ;;
  start-controller) start_controller ;;
  *) echo "slurm_cluster: unknown action '$action'" >&2; exit 2 ;;
esac
