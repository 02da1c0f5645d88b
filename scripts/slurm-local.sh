#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for tests and for trying `sae-dsl sweep slurm`.
#
#   scripts/slurm-local.sh start DIR   installs slurm-wlm and munge when missing (Debian/Ubuntu,
#                                      as root), writes DIR/slurm.conf and starts munged,
#                                      slurmctld and slurmd on loopback; prints `export SLURM_CONF=...`
#   scripts/slurm-local.sh stop DIR    stops the daemons started in DIR
#
# The node gets this machine's cores and memory; there are no cgroups (proctrack/linuxproc), so
# it runs in containers too. Exit status 3: the cluster cannot start here (the reason is printed).
set -euo pipefail
cmd="${1:-}"
dir="${2:-}"
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  echo "usage: $0 start|stop DIR" >&2
  exit 2
fi
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"

stop() {
  for p in slurmd slurmctld munged; do
    if [ -f "$dir/$p.pid" ]; then
      kill "$(cat "$dir/$p.pid")" 2>/dev/null || true
      rm -f "$dir/$p.pid"
    fi
  done
  # Daemons whose pid files are gone: found by the paths in their command lines.
  pkill -f "$dir/slurm.conf" 2>/dev/null || true
  pkill -f "$dir/munge/" 2>/dev/null || true
}

if [ "$cmd" = stop ]; then
  stop
  exit 0
fi

cannot() {
  echo "slurm-local: cannot start a cluster here: $*" >&2
  exit 3
}

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  [ "$(id -u)" = 0 ] || cannot "slurm-wlm and munge are not installed and this is not root"
  command -v apt-get >/dev/null || cannot "slurm-wlm and munge are not installed and there is no apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >"$dir/apt.log" 2>&1 \
    || cannot "apt-get install slurm-wlm munge failed (see $dir/apt.log)"
fi

# munge: a key and a daemon with their own folders.
mkdir -p "$dir/munge/etc" "$dir/munge/lib" "$dir/munge/log" "$dir/munge/run"
chmod 700 "$dir/munge/etc" "$dir/munge/lib" "$dir/munge/log"
chmod 755 "$dir/munge/run"
if [ ! -f "$dir/munge/etc/munge.key" ]; then
  dd if=/dev/urandom of="$dir/munge/etc/munge.key" bs=1024 count=1 status=none
  chmod 400 "$dir/munge/etc/munge.key"
fi
socket="$dir/munge/run/munge.socket"
munged --key-file="$dir/munge/etc/munge.key" --socket="$socket" \
  --pid-file="$dir/munged.pid" --log-file="$dir/munge/log/munged.log" \
  --seed-file="$dir/munge/lib/munged.seed" --force 2>"$dir/munged.err" \
  || cannot "munged did not start: $(cat "$dir/munged.err")"

cpus="$(nproc)"
mem_mb="$(awk '/MemTotal/ { print int($2 / 1024 * 0.9) }' /proc/meminfo)"
host="$(hostname -s)"
user="$(id -un)"
mkdir -p "$dir/state" "$dir/spool" "$dir/log"
cat >"$dir/slurm.conf" <<EOF
ClusterName=saelocal
SlurmctldHost=$host(127.0.0.1)
SlurmUser=$user
SlurmdUser=root
SlurmctldPort=$((20000 + RANDOM % 5000))
SlurmdPort=$((25000 + RANDOM % 5000))
AuthType=auth/munge
AuthInfo=socket=$socket
CryptoType=crypto/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$dir/slurm.conf"
slurmctld -c -f "$SLURM_CONF" 2>"$dir/slurmctld.err" || cannot "slurmctld did not start: $(cat "$dir/slurmctld.err")"
slurmd -f "$SLURM_CONF" 2>"$dir/slurmd.err" || { stop; cannot "slurmd did not start: $(cat "$dir/slurmd.err")"; }

# Wait until the node is idle.
for _ in $(seq 1 60); do
  if sinfo -h -o '%T' 2>/dev/null | grep -q idle; then
    echo "export SLURM_CONF=$SLURM_CONF"
    exit 0
  fi
  sleep 0.5
done
state="$(sinfo -h -o '%T %E' 2>&1 || true)"
stop
cannot "the node did not become idle within 30 s (sinfo: $state; logs in $dir/log)"
