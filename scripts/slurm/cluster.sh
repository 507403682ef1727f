#!/usr/bin/env bash
# A single-node Slurm cluster (Debian's slurm-wlm and munge) on this machine, as root, with every file in one
# state folder: munged with its own key and socket, slurmctld and slurmd on 127.0.0.1.
#   bash scripts/slurm/cluster.sh start [STATE]   starts the daemons; prints `export SLURM_CONF=...` for clients
#   bash scripts/slurm/cluster.sh stop [STATE]    stops them by their PIDs
#   bash scripts/slurm/cluster.sh status [STATE]  sinfo
# STATE defaults to /tmp/attribution-slurm. Exit 3 (with the reason) when the cluster cannot start here.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
action=${1:-status}
state=${2:-/tmp/attribution-slurm}
export SLURM_CONF="$state/slurm.conf"

cannot() { echo "slurm cluster cannot start: $*" >&2; exit 3; }

stop() {
  for pidfile in "$state/slurmd.pid" "$state/slurmctld.pid" "$state/munge/munged.pid"; do
    if [ -s "$pidfile" ]; then
      pid=$(cat "$pidfile")
      kill "$pid" 2>/dev/null
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null
      rm -f "$pidfile"
    fi
  done
}

start() {
  [ "$(id -u)" = 0 ] || cannot "the daemons run as root here (this user is $(id -un))"
  for program in munged slurmctld slurmd sbatch sinfo; do
    command -v "$program" >/dev/null || [ -x "/usr/sbin/$program" ] || cannot "$program is not installed (apt-get install slurm-wlm munge)"
  done
  stop
  rm -rf "$state"
  mkdir -p "$state/munge" "$state/ctld" "$state/d"
  chmod 700 "$state/munge"
  dd if=/dev/urandom of="$state/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$state/munge/munge.key"
  /usr/sbin/munged --force --key-file="$state/munge/munge.key" --socket="$state/munge/munge.socket" \
    --pid-file="$state/munge/munged.pid" --log-file="$state/munge/munged.log" --seed-file="$state/munge/munged.seed" \
    || cannot "munged did not start (see $state/munge/munged.log)"
  # ports of their own, so that a second cluster (or a system one) on this machine does not collide with this one
  base=$(( 20000 + ($(cksum <<<"$state" | cut -d' ' -f1) % 20000) ))
  sed -e "s|@STATE@|$state|g" -e "s|@CPUS@|$(nproc)|g" -e "s|@CTLD_PORT@|$base|g" -e "s|@D_PORT@|$((base + 1))|g" \
    "$here/slurm.conf.in" > "$SLURM_CONF"
  /usr/sbin/slurmctld -f "$SLURM_CONF" || cannot "slurmctld did not start (see $state/slurmctld.log)"
  /usr/sbin/slurmd -f "$SLURM_CONF" -N localhost || cannot "slurmd did not start (see $state/slurmd.log)"
  for _ in $(seq 100); do
    if sinfo -h -o %t 2>/dev/null | grep -qE '^idle'; then echo "export SLURM_CONF=$SLURM_CONF"; return 0; fi
    sleep 0.2
  done
  stop
  cannot "the node did not become idle in 20 s (see $state/slurmctld.log and $state/slurmd.log)"
}

case "$action" in
  start) start ;;
  stop) stop ;;
  status) sinfo ;;
  *) echo "usage: cluster.sh start|stop|status [STATE]" >&2; exit 2 ;;
esac
