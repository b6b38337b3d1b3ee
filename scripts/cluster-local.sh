#!/usr/bin/env bash
# A real cluster on this machine, to try (and test) the slurm and ray executors:
#
#   scripts/cluster-local.sh slurm install          only install the Debian packages (root and apt)
#   scripts/cluster-local.sh slurm up|down|status   munge, slurmctld and slurmd on localhost: partition
#                                                   "main" (default, no time limit) and "short" (1 minute),
#                                                   every CPU of this machine; no accounting
#   scripts/cluster-local.sh ray up|down|status     a Ray head and a second node (separate raylets) on
#                                                   loopback; the second node carries the resource "node2"
#   scripts/cluster-local.sh ray lose-node          kill -9 the second node (its raylet and workers)
#
# Idempotent: "up" on a running cluster and "down" on a stopped one do nothing. "up" prints the lines
# to paste into a shell to use it (export SLURM_CONF=...; or the Ray address). Missing Debian packages
# (slurm-wlm, munge) are installed when run as root with apt; otherwise the script says what to install.
# State, configuration and logs live in $SCALINGLAB_CLUSTER_DIR (default /tmp/scalinglab-cluster).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${SCALINGLAB_CLUSTER_DIR:-/tmp/scalinglab-cluster}
RAY=${RAY:-$ROOT/.venv/bin/ray}
RAY_PORT=${SCALINGLAB_RAY_PORT:-6390}
RAY_HEAD=127.0.0.2
SLURM_PORT=${SCALINGLAB_SLURM_PORT:-6817}  # slurmctld; slurmd listens on the next port

die() { echo "cluster-local.sh: $*" >&2; exit 1; }

need_packages() {  # need_packages <command> <debian package>...: install them if missing, or say how
  local missing=()
  while [ $# -gt 1 ]; do
    command -v "$1" >/dev/null 2>&1 || missing+=("$2")
    shift 2
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "cluster-local.sh: installing ${missing[*]}" >&2
    (apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1; }) \
      || die "could not install ${missing[*]}; install them with: apt-get install ${missing[*]}"
  else
    die "missing ${missing[*]}; install them as root with: apt-get install ${missing[*]}"
  fi
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_for() {  # wait_for <seconds> <command...>: until the command succeeds
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.2
  done
}

# ---- SLURM ----------------------------------------------------------------------------------------

slurm_conf() {
  local host cpus
  host=$(hostname -s)
  cpus=$(nproc)
  cat <<EOF
# written by scripts/cluster-local.sh: a one-node cluster on localhost
ClusterName=scalinglab
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$SLURM_PORT
SlurmdPort=$((SLURM_PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/slurm/state
SlurmdSpoolDir=$DIR/slurm/spool
SlurmctldPidFile=$DIR/slurm/slurmctld.pid
SlurmdPidFile=$DIR/slurm/slurmd.pid
SlurmctldLogFile=$DIR/slurm/slurmctld.log
SlurmdLogFile=$DIR/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
# a job past its time limit gets SIGTERM, then SIGKILL KillWait seconds later
KillWait=10
OverTimeLimit=0
MinJobAge=600
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=main Nodes=$host Default=YES MaxTime=INFINITE State=UP
PartitionName=short Nodes=$host MaxTime=1 State=UP
EOF
}

slurm_up() {
  [ "$(id -u)" = 0 ] || die "slurm up needs root (slurmd starts jobs as their user); run it with sudo."
  need_packages slurmctld slurm-wlm slurmd slurm-wlm munged munge
  mkdir -p "$DIR/slurm/state" "$DIR/slurm/spool"
  slurm_conf >"$DIR/slurm/slurm.conf.new"
  if ! cmp -s "$DIR/slurm/slurm.conf.new" "$DIR/slurm/slurm.conf" 2>/dev/null; then
    mv "$DIR/slurm/slurm.conf.new" "$DIR/slurm/slurm.conf"
    slurm_down_daemons  # a changed configuration needs fresh daemons
  else
    rm -f "$DIR/slurm/slurm.conf.new"
  fi
  export SLURM_CONF=$DIR/slurm/slurm.conf
  if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    [ -s /etc/munge/munge.key ] || { mungekey --create >/dev/null 2>&1 || /usr/sbin/create-munge-key -f >/dev/null; }
    mkdir -p /run/munge && chown munge:munge /run/munge
    runuser -u munge -- /usr/sbin/munged
    touch "$DIR/slurm/munged.ours"  # down stops it again
    wait_for 10 sh -c 'munge -n | unmunge' || die "munged did not start; see /var/log/munge/munged.log"
  fi
  alive "$DIR/slurm/slurmctld.pid" || /usr/sbin/slurmctld -f "$SLURM_CONF"
  alive "$DIR/slurm/slurmd.pid" || /usr/sbin/slurmd -f "$SLURM_CONF"
  wait_for 30 sh -c "sinfo -h -o %T -p main | grep -Eq '^(idle|mixed|allocated)'" \
    || die "the node did not come up; see $DIR/slurm/slurmctld.log and $DIR/slurm/slurmd.log"
  echo "export SLURM_CONF=$SLURM_CONF"
}

slurm_down_daemons() {
  local pidfile pid
  for pidfile in "$DIR/slurm/slurmd.pid" "$DIR/slurm/slurmctld.pid"; do
    if alive "$pidfile"; then
      pid=$(cat "$pidfile")  # the daemon removes its pid file as it exits
      kill "$pid"
      wait_for 15 sh -c "! kill -0 $pid" || kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
  done
}

slurm_steps() {  # the slurmstepd processes of this cluster's jobs (their environment names its slurm.conf)
  local pid
  for pid in $(pgrep -x slurmstepd || true); do
    tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "SLURM_CONF=$DIR/slurm/slurm.conf" && echo "$pid"
  done
  return 0
}

slurm_down() {
  if [ -f "$DIR/slurm/slurm.conf" ] && alive "$DIR/slurm/slurmctld.pid"; then
    export SLURM_CONF=$DIR/slurm/slurm.conf
    scancel --quiet --full --user "$(id -un)" 2>/dev/null || true
    # jobs end (their steps report back) before the daemons go, or their slurmstepd would linger
    wait_for 30 sh -c '[ -z "$(squeue --noheader --states=PENDING,RUNNING,COMPLETING,CONFIGURING)" ]' || true
  fi
  slurm_down_daemons
  local steps
  steps=$(slurm_steps)
  if [ -n "$steps" ]; then
    kill $steps 2>/dev/null || true
    sleep 1
    kill -9 $(slurm_steps) 2>/dev/null || true
  fi
  if [ -f "$DIR/slurm/munged.ours" ] && alive /run/munge/munged.pid; then
    kill "$(cat /run/munge/munged.pid)"
  fi
  rm -rf "$DIR/slurm/state" "$DIR/slurm/spool" "$DIR/slurm/munged.ours"  # the next cluster starts afresh
}

slurm_status() {
  alive "$DIR/slurm/slurmctld.pid" || { echo "slurm: down"; return 0; }
  echo "slurm: up (export SLURM_CONF=$DIR/slurm/slurm.conf)"
  SLURM_CONF=$DIR/slurm/slurm.conf sinfo
}

# ---- Ray ------------------------------------------------------------------------------------------
# Both nodes run in Ray's cluster mode, which swaps 127.0.0.1 for the machine's network address, so
# they bind to two other loopback addresses: the head to 127.0.0.2, the second node to 127.0.0.3.
# Each node has its own temp dir, so its processes can be told apart (and the second one killed alone);
# the head's client server, whose arguments name no temp dir, is found by its GCS address. Token
# authentication uses Ray's default token file, which drivers on this machine find by themselves.

ray_env() {
  export RAY_USAGE_STATS_ENABLED=0 RAY_AUTH_MODE=token RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=1
}

ray_pids() {  # ray_pids <temp dir>: every process of the node with that temp dir, and their children
  local pids
  pids=$(pgrep -f -- "$1/" || true)
  [ "$1" != "$DIR/ray/head" ] || pids+=" $(pgrep -f -- "ray.util.client.server --address=$RAY_HEAD:$RAY_PORT" || true)"
  pids=$(echo $pids | tr ' ' '\n')
  [ -n "$pids" ] || return 0
  echo "$pids"
  pgrep -P "$(echo "$pids" | paste -sd,)" || true
}

ray_kill() {  # ray_kill <temp dir> <signal>: end that node's processes
  local pids
  pids=$(ray_pids "$1" | sort -u)
  [ -n "$pids" ] || return 0
  kill "-$2" $pids 2>/dev/null || true
}

ray_node_down() {  # ray_node_down <temp dir>: TERM, then KILL what is left after 5 s
  ray_kill "$1" TERM
  wait_for 5 sh -c "! pgrep -f -- '$1/'" || ray_kill "$1" KILL
}

ray_start() {  # ray_start <node> <ray start args...>: start one node; a second try when a loaded machine
  local node=$1 try  # makes Ray give up on it (its raylet must register within a fixed 30 s)
  shift
  for try in 1 2; do
    "$RAY" start "$@" --disable-usage-stats --temp-dir="$DIR/ray/$node" >"$DIR/ray/$node.log" 2>&1 && return 0
    ray_node_down "$DIR/ray/$node"
  done
  die "ray start ($node) failed: $(grep -v '^\s*$' "$DIR/ray/$node.log" | tail -2 | tr '\n' ' ')"
}

ray_up() {
  [ -x "$RAY" ] || die "no Ray at $RAY; install it with: .venv/bin/pip install 'scalinglab[ray]'"
  ray_env
  mkdir -p "$DIR/ray"
  [ -s "$HOME/.ray/auth_token" ] || "$RAY" get-auth-token --generate >/dev/null
  local cpus=$(($(nproc) > 1 ? $(nproc) / 2 : 1))
  pgrep -f -- "gcs_server.*$DIR/ray/head/" >/dev/null \
    || ray_start head --head --node-ip-address="$RAY_HEAD" --port="$RAY_PORT" --num-cpus="$cpus" \
      --ray-client-server-port=$((RAY_PORT + 1)) --dashboard-port=$((RAY_PORT + 2)) --include-dashboard=false
  pgrep -f -- "raylet.*$DIR/ray/node2/" >/dev/null \
    || ray_start node2 --address="$RAY_HEAD:$RAY_PORT" --node-ip-address=127.0.0.3 --num-cpus="$cpus" \
      --resources='{"node2": 1000}'
  echo "export RAY_AUTH_MODE=token  # then: scalinglab study run STUDY.toml --executor ray --ray-address $RAY_HEAD:$RAY_PORT"
}

ray_down() {
  ray_node_down "$DIR/ray/node2"
  ray_node_down "$DIR/ray/head"
  rm -rf "$DIR/ray"
}

ray_lose_node() {  # kill -9 the second node's raylet and workers: a node lost mid-study
  ray_kill "$DIR/ray/node2" KILL
}

ray_status() {
  pgrep -f -- "gcs_server.*$DIR/ray/head/" >/dev/null || { echo "ray: down"; return 0; }
  local node2=lost
  pgrep -f -- "raylet.*$DIR/ray/node2/" >/dev/null && node2=up
  echo "ray: up at $RAY_HEAD:$RAY_PORT (second node $node2)"
}

case "${1:-} ${2:-}" in
  "slurm install") need_packages slurmctld slurm-wlm slurmd slurm-wlm munged munge ;;
  "slurm up") slurm_up ;;
  "slurm down") slurm_down ;;
  "slurm status") slurm_status ;;
  "ray up") ray_up ;;
  "ray down") ray_down ;;
  "ray status") ray_status ;;
  "ray lose-node") ray_lose_node ;;
  *) die "usage: scripts/cluster-local.sh slurm|ray up|down|status (slurm also: install; ray also: lose-node)" ;;
esac
