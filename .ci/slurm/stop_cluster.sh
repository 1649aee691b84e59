#!/usr/bin/env bash
# Stop the one-node cluster started by start_cluster.sh: cancel jobs, stop the daemons, drop job state.
set -uo pipefail
STATE_DIR=/var/lib/slurm

stop_daemon() {
    local name="$1" pidfile="$2" pid
    pid="$(cat "$pidfile" 2>/dev/null || pgrep -x "$name" | head -n1)"
    [[ -n "$pid" ]] || return 0
    kill "$pid" 2>/dev/null
    for _ in $(seq 1 20); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.5
    done
    kill -9 "$pid" 2>/dev/null
}

command -v scancel >/dev/null && timeout 10 scancel --full --user root 2>/dev/null
stop_daemon slurmd /run/slurmd.pid
stop_daemon slurmctld /run/slurmctld.pid
stop_daemon munged /run/munge/munged.pid
rm -rf "${STATE_DIR:?}/slurmctld/"* "${STATE_DIR:?}/slurmd/"*
echo "stop_cluster.sh: stopped" >&2
