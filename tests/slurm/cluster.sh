#!/usr/bin/env bash
# One-node SLURM cluster for CI and local tests, without systemd.
#
#   tests/slurm/cluster.sh up       install (if needed), configure and start munge/slurmctld/slurmd
#   tests/slurm/cluster.sh status   show our daemons, sinfo and squeue; exit 1 if not all running
#   tests/slurm/cluster.sh down     scancel queued jobs, stop ONLY the daemons this script started
#
# Environment:
#   SLURM_CI_DIR            state folder: PID files, daemon output, fake GPU devices (/tmp/slurm-ci)
#   SLURM_CI_FAKE_GPUS      number of fake GPUs declared as gres on the node (2; 0 = none)
#   SLURM_CI_FAKE_GPU_TYPE  optional gres type name (e.g. "fake") so gpu_model requests work
#   SLURM_CI_NO_INSTALL=1   never call apt-get; fail if the binaries are missing
#
# Facts this script respects (see the project's slurm notes): daemons run in the foreground under
# setsid with PID files, processes are identified by PID + /proc/<pid>/comm and never by name,
# jobcomp.log is pre-created for the slurm user, MinJobAge stays at 300 s so that the Snakemake
# plugin's `squeue` status command sees finished jobs, and the node is resumed if it was drained.
# The fake GPUs are copies of /dev/null: they exercise gres scheduling and CUDA_VISIBLE_DEVICES,
# not real GPU work.
set -euo pipefail

STATE_DIR="${SLURM_CI_DIR:-/tmp/slurm-ci}"
FAKE_GPUS="${SLURM_CI_FAKE_GPUS:-2}"
FAKE_GPU_TYPE="${SLURM_CI_FAKE_GPU_TYPE:-}"
CONF_DIR=/etc/slurm
DAEMONS=(munged slurmctld slurmd)   # start order; stopped in reverse

log() { echo "cluster.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- process helpers (PID files only)

pid_file() { echo "$STATE_DIR/$1.pid"; }

# Prints the PID of our daemon $1 if its PID file names a live process whose comm is $1.
our_pid() {
    local name=$1 file pid
    file=$(pid_file "$name")
    [[ -f $file ]] || return 1
    pid=$(<"$file")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ -r /proc/$pid/comm && $(<"/proc/$pid/comm") == "$name" ]] || return 1
    echo "$pid"
}

# PIDs of processes called $1 that this script did not start (read from /proc, no procps needed).
foreign_pids() {
    local name=$1 mine comm_file pid
    mine=$(our_pid "$name" || true)
    for comm_file in /proc/[0-9]*/comm; do
        pid=${comm_file#/proc/}; pid=${pid%/comm}
        [[ $(cat "$comm_file" 2>/dev/null || true) == "$name" && $pid != "$mine" ]] && echo "$pid"
    done
    return 0
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
    local seconds=$1 what=$2; shift 2
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || die "timed out after ${seconds}s waiting for $what"
        sleep 0.2
    done
}

start_daemon() {  # start_daemon NAME COMMAND...
    local name=$1; shift
    if our_pid "$name" >/dev/null; then return 0; fi
    local others
    others=$(foreign_pids "$name")
    [[ -z $others ]] || die "$name is already running (pid $others) but was not started by this script; stop it (e.g. systemctl stop) and retry"
    setsid "$@" >"$STATE_DIR/$name.out" 2>&1 </dev/null &
    echo $! >"$(pid_file "$name")"
    log "started $name (pid $!)"
}

stop_daemon() {
    local name=$1 pid
    pid=$(our_pid "$name") || { rm -f "$(pid_file "$name")"; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 30))
    while [[ -r /proc/$pid/comm && $(cat "/proc/$pid/comm" 2>/dev/null) == "$name" ]]; do
        if ((SECONDS >= deadline)); then kill -KILL "$pid" 2>/dev/null || true; break; fi
        sleep 0.2
    done
    rm -f "$(pid_file "$name")"
    # slurmctld never removes its pid file; a stale one breaks `apt-get remove slurmctld` later.
    if [[ $name == slurmctld && -f /run/slurmctld.pid && $(cat /run/slurmctld.pid) == "$pid" ]]; then
        rm -f /run/slurmctld.pid
    fi
    log "stopped $name (pid $pid)"
}

# ---------------------------------------------------------------- installation and configuration

install_packages() {
    local missing=0 binary
    for binary in munged slurmctld slurmd sbatch squeue; do
        command -v "$binary" >/dev/null || missing=1
    done
    ((missing)) || return 0
    [[ ${SLURM_CI_NO_INSTALL:-0} != 1 ]] || die "SLURM binaries missing and SLURM_CI_NO_INSTALL=1"
    [[ $(id -u) == 0 ]] || die "installing SLURM needs root"
    command -v apt-get >/dev/null || die "SLURM binaries missing and apt-get is not available"
    # Keep package postinst scripts from starting services: we start the daemons ourselves.
    local policy=/usr/sbin/policy-rc.d created_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod 755 "$policy"; created_policy=1
    fi
    log "installing slurmctld slurmd slurm-client munge"
    local status=0
    { DEBIAN_FRONTEND=noninteractive timeout -k 10 300 apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive timeout -k 10 600 apt-get install -y -qq --no-install-recommends \
          slurmctld slurmd slurm-client munge; } >"$STATE_DIR/apt.out" 2>&1 || status=$?
    ((created_policy)) && rm -f "$policy"
    ((status == 0)) || die "apt-get failed (exit $status), see $STATE_DIR/apt.out"
}

prepare_dirs() {
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o slurm -g slurm /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm
    # slurmctld creates this as root and re-opens it as slurm: pre-create it owned by slurm.
    [[ -f /var/log/slurm/jobcomp.log ]] || install -o slurm -g slurm -m 0644 /dev/null /var/log/slurm/jobcomp.log
    if [[ ! -s /etc/munge/munge.key ]]; then
        mungekey --create --keyfile=/etc/munge/munge.key
        chown munge:munge /etc/munge/munge.key; chmod 0400 /etc/munge/munge.key
    fi
}

make_fake_gpus() {
    local i device
    install -d "$STATE_DIR/fakegpu"
    for ((i = 0; i < FAKE_GPUS; i++)); do
        device="$STATE_DIR/fakegpu/gpu$i"
        [[ -c $device ]] || mknod -m 0666 "$device" c 1 3   # a /dev/null twin: gres needs a char device
    done
}

# Writes slurm.conf (and gres.conf) to $1; prints nothing.
write_config() {
    local folder=$1 host topology real_memory gres_node="" gres_type=""
    host=$(hostname -s)
    # Full topology (sockets/cores/threads) from slurmd itself, minus the memory it measured.
    topology=$(slurmd -C | head -1 | tr ' ' '\n' | grep -E '^(CPUs|Boards|SocketsPerBoard|CoresPerSocket|ThreadsPerCore)=' | tr '\n' ' ')
    # 75 % of MemTotal, rounded down to a GiB: stable across runs and below what slurmd detects.
    real_memory=$(awk '/^MemTotal/ {print int($2 / 1024 * 0.75 / 1024) * 1024}' /proc/meminfo)
    if ((FAKE_GPUS > 0)); then
        [[ -n $FAKE_GPU_TYPE ]] && gres_type=":$FAKE_GPU_TYPE"
        gres_node="Gres=gpu${gres_type}:${FAKE_GPUS}"
    fi
    cat >"$folder/slurm.conf" <<EOF
# Written by tests/slurm/cluster.sh: a one-node CI cluster.
ClusterName=ci
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
# >= 3 x the plugin's first status delay, or it falls back to sacct (which needs slurmdbd).
MinJobAge=300
ReturnToService=2
MailProg=/bin/true
${gres_node:+GresTypes=gpu}
NodeName=${host} NodeAddr=127.0.0.1 ${topology}RealMemory=${real_memory} ${gres_node} State=UNKNOWN
PartitionName=debug Nodes=${host} Default=YES MaxTime=INFINITE State=UP
EOF
    : >"$folder/gres.conf"
    if ((FAKE_GPUS > 0)); then
        local last=$((FAKE_GPUS - 1)) type_field=""
        [[ -n $FAKE_GPU_TYPE ]] && type_field="Type=$FAKE_GPU_TYPE "
        echo "NodeName=${host} Name=gpu ${type_field}File=$STATE_DIR/fakegpu/gpu[0-$last]" >"$folder/gres.conf"
    fi
}

# Installs the new config; returns 0 if anything changed.
install_config() {
    local staged changed=1 file
    staged=$(mktemp -d)
    write_config "$staged"
    if [[ -f $CONF_DIR/slurm.conf && -f $CONF_DIR/gres.conf ]] &&
        cmp -s "$staged/slurm.conf" "$CONF_DIR/slurm.conf" && cmp -s "$staged/gres.conf" "$CONF_DIR/gres.conf"; then
        changed=0
    fi
    if ((changed)); then
        install -d "$CONF_DIR"
        for file in slurm.conf gres.conf; do install -m 0644 "$staged/$file" "$CONF_DIR/$file"; done
        log "wrote $CONF_DIR/slurm.conf and gres.conf"
    fi
    rm -rf "$staged"
    ((changed))
}

node_state() { sinfo -h -N -o '%T' 2>/dev/null | head -1; }

wait_node_idle() {
    local host state deadline=$((SECONDS + 60))
    host=$(hostname -s)
    while :; do
        state=$(node_state || true)
        case $state in
            idle|mixed|allocated) return 0 ;;
            *drain*|*down*|*inval*|*fail*)
                scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true ;;
        esac
        ((SECONDS < deadline)) || die "node is '$state' after 60s; see /var/log/slurm/slurmd.log and $STATE_DIR/*.out"
        sleep 0.3
    done
}

# ---------------------------------------------------------------- commands

cmd_up() {
    [[ $(id -u) == 0 ]] || die "must run as root"
    install -d "$STATE_DIR"
    install_packages
    prepare_dirs
    ((FAKE_GPUS == 0)) || make_fake_gpus
    if install_config; then
        # A changed config needs fresh slurm daemons (JobCompType, gres: reconfigure is not enough).
        stop_daemon slurmd; stop_daemon slurmctld
    fi
    start_daemon munged setpriv --reuid=munge --regid=munge --init-groups munged -F
    wait_for 20 "munge" bash -c 'munge -n | unmunge'
    start_daemon slurmctld slurmctld -D
    wait_for 30 "slurmctld (scontrol ping)" bash -c 'scontrol ping | grep -q UP'
    start_daemon slurmd slurmd -D
    wait_node_idle
    log "up: node $(hostname -s) is $(node_state), fake GPUs: $FAKE_GPUS"
}

cmd_down() {
    local job_ids name i
    if command -v squeue >/dev/null && our_pid slurmctld >/dev/null; then
        job_ids=$(squeue -h -o '%i' 2>/dev/null || true)
        [[ -z $job_ids ]] || { log "cancelling jobs: $(echo $job_ids)"; scancel $job_ids || true; }
    fi
    for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do
        stop_daemon "${DAEMONS[i]}"
    done
}

cmd_status() {
    local name pid all=0
    for name in "${DAEMONS[@]}"; do
        if pid=$(our_pid "$name"); then echo "$name: running (pid $pid)"; else echo "$name: not running"; all=1; fi
    done
    if ((all == 0)); then sinfo; squeue; fi
    return $all
}

case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
