#!/usr/bin/env bash
# Start a one-node SLURM cluster on this machine (as root, for CI): install slurm-wlm and munge,
# write slurm.conf / cgroup.conf for this host, start munged, slurmctld and slurmd, wait until the node is idle.
# Idempotent: a running, idle cluster is left as it is. Bounded: every step has a timeout.
# Stop it with .ci/slurm/stop_cluster.sh.
set -euo pipefail

PARTITION="${CARA_SLURM_PARTITION:-ci}"
WAIT_SECONDS="${CARA_SLURM_WAIT_SECONDS:-60}"
LOG_DIR=/var/log/slurm
STATE_DIR=/var/lib/slurm

node_state() {
    timeout 10 sinfo --noheader --node "$(hostname -s)" --format %T 2>/dev/null | head -n1 | tr -d '*~#!%$@^-' || true
}

if [[ "$(id -u)" != 0 ]]; then
    echo "start_cluster.sh: must run as root" >&2
    exit 1
fi

if command -v sinfo >/dev/null && [[ "$(node_state)" =~ ^(idle|mixed|allocated)$ ]]; then
    echo "start_cluster.sh: node $(hostname -s) already $(node_state)" >&2
    exit 0
fi

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
    echo "start_cluster.sh: installing slurm-wlm and munge" >&2
    export DEBIAN_FRONTEND=noninteractive
    timeout 300 apt-get update -qq
    timeout 600 apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi

host="$(hostname -s)"
cpus="$(nproc)"
# Leave room for the OS and the Snakemake main process; slurmd drains a node that declares more than it has.
real_memory=$(( $(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo) - 1024 ))

mkdir -p /etc/slurm "$LOG_DIR" "$STATE_DIR/slurmctld" "$STATE_DIR/slurmd"
cat > /etc/slurm/slurm.conf <<CONF
# Written by .ci/slurm/start_cluster.sh: one node, no accounting database, root daemons.
ClusterName=cara-ci
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# squeue keeps finished jobs for 10 minutes: the Snakemake SLURM executor reads their state from it.
MinJobAge=600
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
StateSaveLocation=${STATE_DIR}/slurmctld
SlurmdSpoolDir=${STATE_DIR}/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=${LOG_DIR}/slurmctld.log
SlurmdLogFile=${LOG_DIR}/slurmd.log
SlurmctldTimeout=30
SlurmdTimeout=60
NodeName=${host} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${real_memory} State=UNKNOWN
PartitionName=${PARTITION} Nodes=${host} Default=YES MaxTime=INFINITE State=UP
CONF
cat > /etc/slurm/cgroup.conf <<CONF
CgroupPlugin=cgroup/v1
IgnoreSystemd=yes
CONF

if [[ ! -s /etc/munge/munge.key ]]; then
    mungekey --create --keyfile /etc/munge/munge.key
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
if ! timeout 5 munge -n </dev/null >/dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged
fi

if ! pgrep -x slurmctld >/dev/null; then
    /usr/sbin/slurmctld
fi
if ! pgrep -x slurmd >/dev/null; then
    /usr/sbin/slurmd
fi

deadline=$(( SECONDS + WAIT_SECONDS ))
while (( SECONDS < deadline )); do
    state="$(node_state)"
    case "$state" in
        idle|mixed|allocated)
            echo "start_cluster.sh: node ${host} ${state} (CPUs=${cpus}, RealMemory=${real_memory} MB, partition ${PARTITION})" >&2
            exit 0
            ;;
        down|drained|draining|drain)
            timeout 10 scontrol update NodeName="$host" State=RESUME || true
            ;;
    esac
    sleep 1
done
echo "start_cluster.sh: node ${host} not idle after ${WAIT_SECONDS}s (state '${state:-none}')" >&2
tail -n 20 "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" >&2 || true
exit 1
