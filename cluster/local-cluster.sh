#!/usr/bin/env bash
# A Slurm cluster in a box: N nodes on one Linux machine, as root, without systemd.
#
#   cluster/local-cluster.sh up N [--rate RATE] [--delay D]   N nodes node1..nodeN
#   cluster/local-cluster.sh exec K CMD...                     run CMD inside node K
#   cluster/local-cluster.sh limit K RATE|none                 rate-limit node K's link now
#   cluster/local-cluster.sh mpiexec [mpiexec args] CMD...     MPICH across the nodes, no Slurm
#   cluster/local-cluster.sh status                            nodes, links, daemons
#   cluster/local-cluster.sh down                              stop and remove everything
#
# Each node is a network namespace (its own interfaces: eth0 at 10.77.0.K), a UTS
# namespace (hostname nodeK) and a mount namespace (its own /dev/shm, so MPICH's
# shared-memory segments of two "nodes" never meet; an /etc/hosts naming every node).
# The nodes hang off a bridge (dbp-br0, 10.77.0.254 on this machine) by veth pairs
# (dbp-vK here, eth0 inside); --rate limits each link in both directions with tc's tbf.
# munged and slurmctld run on this machine, one `slurmd -N nodeK` inside each node.
# Requires: iproute2 (ip, tc), util-linux (unshare, nsenter), slurm-wlm, munge.
# Everything lives in $DISTBP_CLUSTER_DIR (default /run/distbp-cluster); see cluster/README.md.
set -euo pipefail

STATE=${DISTBP_CLUSTER_DIR:-/run/distbp-cluster}
BRIDGE=dbp-br0
SUBNET=10.77.0
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

die() { echo "local-cluster.sh: $*" >&2; exit 2; }
node_pid() { cat "$STATE/node$1.pid" 2>/dev/null || die "node$1 is not up (cluster/local-cluster.sh up N)"; }
in_node() { local pid; pid=$(node_pid "$1"); shift; nsenter -t "$pid" -n -u -m --wd="$PWD" -- "$@"; }
alive() {  # a running process (a zombie left for init to reap does not count)
    [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null && [ "$(ps -o stat= -p "$1" | cut -c1)" != Z ]
}

wait_until() {  # wait_until SECONDS WHAT CMD...: poll CMD until it succeeds
    local seconds=$1 what=$2; shift 2
    for _ in $(seq $((seconds * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
    die "timed out after ${seconds}s waiting for $what (logs in $STATE)"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("",0)); print(s.getsockname()[1])'; }

limit_link() {  # limit_link RUN_PREFIX DEV RATE DELAY
    local prefix=$1 dev=$2 rate=$3 delay=$4
    if [ -n "$delay" ]; then
        $prefix tc qdisc add dev "$dev" root netem delay "$delay" ${rate:+rate "$rate"} 2>/dev/null \
            || die "--delay needs tc's netem qdisc, which this kernel lacks (modprobe sch_netem); --rate (tbf) works without it"
    elif [ -n "$rate" ]; then
        # burst: at least one 64 KB TSO segment, and 1 ms worth of the rate
        $prefix tc qdisc replace dev "$dev" root tbf rate "$rate" burst 256kb latency 50ms \
            || die "tc cannot limit $dev to '$rate' (a tc rate, e.g. 1gbit or 100mbit)"
    fi
}

cmd_up() {
    local n=${1:-} rate="" delay=""
    [[ "$n" =~ ^[1-9][0-9]?$ ]] || die "up N: N must be a node count from 1 to 99, got '${n}'"
    shift
    while [ $# -gt 0 ]; do
        case $1 in
            --rate) rate=${2:?--rate needs a value, e.g. 1gbit}; shift 2 ;;
            --delay) delay=${2:?--delay needs a value, e.g. 1ms}; shift 2 ;;
            *) die "up: unknown option '$1' (--rate RATE, --delay D)" ;;
        esac
    done
    [ "$(id -u)" = 0 ] || die "needs root (network namespaces, slurmd)"
    for tool in ip tc unshare nsenter slurmctld slurmd munged sinfo python3; do
        command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] \
            || die "'$tool' is missing (apt-get install iproute2 util-linux slurm-wlm munge)"
    done
    [ ! -e "$STATE/nodes" ] || die "a cluster is already up ($STATE); run 'down' first"
    trap 'echo "local-cluster.sh: up failed; cleaning up" >&2; cmd_down >/dev/null 2>&1' ERR
    mkdir -p "$STATE/spool" "$STATE/state"
    : > "$STATE/started"
    ip link add "$BRIDGE" type bridge
    ip addr add "$SUBNET.254/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
    local head; head=$(hostname -s)
    { echo "127.0.0.1 localhost"; echo "$SUBNET.254 $head"
      for k in $(seq "$n"); do echo "$SUBNET.$k node$k"; done; } > "$STATE/hosts"
    for k in $(seq "$n"); do
        ip netns add "dbp-node$k"
        ip link add "dbp-v$k" type veth peer name eth0 netns "dbp-node$k"
        ip link set "dbp-v$k" master "$BRIDGE" up
        ip -n "dbp-node$k" addr add "$SUBNET.$k/24" dev eth0
        ip -n "dbp-node$k" link set eth0 up
        ip -n "dbp-node$k" link set lo up
        ip -n "dbp-node$k" route add default via "$SUBNET.254"
        limit_link "ip netns exec dbp-node$k" eth0 "$rate" "$delay"   # node -> bridge
        limit_link "" "dbp-v$k" "$rate" "$delay"                        # bridge -> node
        # The holder: a process that keeps node K's UTS and mount namespaces alive.
        nsenter --net="/run/netns/dbp-node$k" unshare --uts --mount --propagation private \
            sh -c "hostname node$k && mount -t tmpfs -o size=50% tmpfs /dev/shm \
                   && mount --bind '$STATE/hosts' /etc/hosts && exec sleep infinity" \
            </dev/null >/dev/null 2>&1 &
        echo $! > "$STATE/node$k.pid"
    done
    for k in $(seq "$n"); do wait_until 10 "node$k" in_node "$k" sh -c "[ \"\$(hostname)\" = node$k ]"; done

    if ! echo | munge 2>/dev/null | unmunge >/dev/null 2>&1; then
        mkdir -p /run/munge && chown munge:munge /run/munge
        runuser -u munge -- munged
        wait_until 10 munged sh -c 'echo | munge | unmunge'
        echo munged >> "$STATE/started"
    fi
    local cpus; cpus=$(nproc)
    sed -e "s|@HEAD@|$head|g; s|@SUBNET@|$SUBNET|g; s|@STATE@|$STATE|g; s|@N@|$n|g" \
        -e "s|@CPUS@|$cpus|g; s|@PORT@|$(free_port)|g; s|@SPORT@|$(free_port)|g" \
        -e "s|@FIRSTJOB@|$(( (RANDOM * 32768 + RANDOM) % 50000000 + 1000000 ))|g" \
        "$HERE/local-cluster.conf.in" > "$STATE/slurm.conf"
    export SLURM_CONF="$STATE/slurm.conf"
    setsid slurmctld -D -f "$SLURM_CONF" </dev/null >"$STATE/slurmctld.out" 2>&1 &
    echo $! > "$STATE/slurmctld.pid.own"
    for k in $(seq "$n"); do
        mkdir -p "$STATE/spool/node$k"
        setsid nsenter -t "$(node_pid "$k")" -n -u -m -- slurmd -D -N "node$k" -f "$SLURM_CONF" \
            </dev/null >"$STATE/slurmd.node$k.out" 2>&1 &
        echo $! > "$STATE/slurmd.node$k.pid.own"
    done
    wait_until 60 "$n idle nodes" sh -c "[ \"\$(sinfo -h -N -t idle -o %N | sort -u | wc -l)\" = $n ]"
    echo "$(seq -f 'node%g' -s ' ' "$n")" > "$STATE/nodes"
    cat > "$STATE/env" <<EOF
export SLURM_CONF=$STATE/slurm.conf
# MPICH between nodes over TCP through the veths (its default UCX netmod would use shared memory)
export MPIR_CVAR_CH4_NETMOD=ofi FI_PROVIDER=tcp FI_TCP_IFACE=eth0
EOF
    trap - ERR
    echo "up: $n node(s) node1..node$n on $BRIDGE ($SUBNET.0/24)${rate:+, links limited to $rate}${delay:+, delay $delay}"
    echo "use it:  . $STATE/env   (or: export SLURM_CONF=$STATE/slurm.conf)"
}

cmd_exec() {
    local k=${1:-}
    [[ "$k" =~ ^[0-9]+$ ]] && [ $# -ge 2 ] || die "usage: exec K CMD..."
    shift
    in_node "$k" "$@"
}

cmd_limit() {
    local k=${1:-} rate=${2:-}
    [[ "$k" =~ ^[0-9]+$ ]] && [ -n "$rate" ] || die "usage: limit K RATE|none (e.g. limit 2 100mbit)"
    node_pid "$k" >/dev/null
    if [ "$rate" = none ]; then
        ip netns exec "dbp-node$k" tc qdisc del dev eth0 root 2>/dev/null || true
        tc qdisc del dev "dbp-v$k" root 2>/dev/null || true
    else
        limit_link "ip netns exec dbp-node$k" eth0 "$rate" ""
        limit_link "" "dbp-v$k" "$rate" ""
    fi
    echo "node$k: link $rate"
}

cmd_mpiexec() {
    [ -e "$STATE/nodes" ] || die "no cluster is up (cluster/local-cluster.sh up N)"
    exec python3 "$HERE/local_mpiexec.py" "$STATE" "$@"
}

cmd_status() {
    [ -e "$STATE/nodes" ] || { echo "down"; return 0; }
    echo "nodes: $(cat "$STATE/nodes")"
    SLURM_CONF="$STATE/slurm.conf" sinfo -N -o "%N %t %c" 2>/dev/null || true
    for dev in $(ls /sys/class/net | grep '^dbp-v'); do
        echo "$dev: tx $(cat "/sys/class/net/$dev/statistics/tx_bytes") rx $(cat "/sys/class/net/$dev/statistics/rx_bytes") bytes; $(tc qdisc show dev "$dev" | head -1)"
    done
}

stop_pidfile() {  # stop the process in PIDFILE (TERM, then KILL after 5 s)
    local pid; pid=$(cat "$1" 2>/dev/null) || return 0
    alive "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 25); do alive "$pid" || return 0; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
}

cmd_down() {
    if [ -e "$STATE/slurm.conf" ]; then
        SLURM_CONF="$STATE/slurm.conf" timeout 10 scancel --user root >/dev/null 2>&1 || true
    fi
    for f in "$STATE"/slurmd.node*.pid.own "$STATE"/slurmctld.pid.own; do
        [ -e "$f" ] && stop_pidfile "$f"
    done
    # Anything still running inside a node (ranks, proxies, job steps) goes with it.
    for f in "$STATE"/node*.pid; do
        [ -e "$f" ] || continue
        local pid; pid=$(cat "$f")
        if alive "$pid"; then
            for other in $(ip netns pids "dbp-$(basename "$f" .pid)" 2>/dev/null); do
                [ "$other" = "$pid" ] || kill -KILL "$other" 2>/dev/null || true
            done
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    if grep -qx munged "$STATE/started" 2>/dev/null; then
        pkill -TERM -x munged 2>/dev/null || true
    fi
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^dbp-node' || true); do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || true
    done
    ip link del "$BRIDGE" 2>/dev/null || true
    for dev in $(ls /sys/class/net | grep '^dbp-v' || true); do ip link del "$dev" 2>/dev/null || true; done
    rm -rf "$STATE"
    echo "down"
}

verb=${1:-}
[ $# -gt 0 ] && shift
case $verb in
    up) cmd_up "$@" ;;
    exec) cmd_exec "$@" ;;
    limit) cmd_limit "$@" ;;
    mpiexec) cmd_mpiexec "$@" ;;
    status) cmd_status ;;
    down) cmd_down ;;
    *) die "usage: local-cluster.sh up N [--rate RATE] [--delay D] | exec K CMD... | limit K RATE|none | mpiexec ARGS... | status | down" ;;
esac
