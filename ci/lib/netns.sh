# shellcheck shell=bash
# Variables are set here for the scripts that source this file (SC2034), and netns_setup
# and tap_create take optional arguments that callers may leave out (SC2120):
# shellcheck disable=SC2034,SC2120
# ci/lib/netns.sh - a private network namespace with a TAP for one test run, and
# teardown of everything on every exit path.
#
# Usage:
#   source ci/lib/netns.sh
#   trap cleanup EXIT INT TERM        # or: install_cleanup_trap (keeps 130/143 exit codes)
#   netns_setup                       # NS + TAP with HOST_IP/NET_PREFIX, up
#   ns_bg "$dir/iperf3.log" iperf3 -s -B "$HOST_IP"
#   ...
#
# Variables:
#   NS         netns name, unique per script: vmso-<pid> (set by netns_create)
#   TAP        TAP name inside $NS (default vmsotap0; set by tap_create)
#   HOST_IP    198.18.0.1   the host end, on $TAP
#   GUEST_IP   198.18.0.2   what the guest should use
#   NET_PREFIX 24
#   BG_PIDS    pids that cleanup kills (append with bg_track)
# Functions:
#   netns_create [NAME]        ip netns add, lo up, IPv6 off inside (clean captures)
#   tap_create [NAME] [ADDR]   ip tuntap add mode tap user root in $NS, ADDR (HOST_IP/24), up;
#                              multi_queue too with TAP_MULTI_QUEUE=1 (vmso-device --queues N>1)
#   netns_setup [NS [TAP [ADDR]]]  netns_create && tap_create
#   ns_exec CMD...             run CMD inside $NS
#   ns_bg LOG CMD...           start CMD inside $NS in the background, output to LOG;
#                              sets BG_PID and tracks it
#   bg_track PID...            have cleanup kill PID
#   bg_untrack PID             forget a pid that has been reaped (cleanup must not kill a
#                              reused pid)
#   bg_stop PID...             TERM, grace, KILL, reap, untrack
#   bg_wait PID TENTHS         give PID up to TENTHS tenths of a second to exit, then bg_stop
#   on_cleanup CMD...          run CMD (eval'd string) during cleanup, before the netns goes
#   wait_tcp_listen PORT [S]   wait until something listens on PORT inside $NS
#   ns_counters NAME           snapshot of the host counters in $NS into the associative
#                              array NAME (global unless declared first): PROTO.FIELD from
#                              /proc/net/snmp and /proc/net/netstat (Tcp.InCsumErrors,
#                              Tcp.RetransSegs, Udp.NoPorts, IpExt.InCsumErrors, ...) and
#                              tap.STAT from /sys/class/net/$TAP/statistics (tap.tx_dropped)
#   ns_counter_delta A B KEY   B[KEY] - A[KEY] of two snapshots (a missing key counts 0)
#   ns_csum_errors NAME        "IpExt Icmp Tcp Udp" InCsumErrors of a snapshot
#   ns_csum_rise A B           the rise of InCsumErrors (IpExt+Icmp+Tcp+Udp) from A to B
#   cleanup [RC]               kill tracked pids, then every process left in $NS, delete
#                              TAP and netns, run hooks, exit RC (default: $?). Idempotent.
#
# Only 198.18.0.0/15 addresses are ever configured.

# shellcheck source=ci/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

NS=${NS:-}
TAP=${TAP:-}
HOST_IP=198.18.0.1
GUEST_IP=198.18.0.2
NET_PREFIX=24
BG_PIDS=()
BG_PID=
CLEANUP_HOOKS=()
_NS_OWNED=0
_CLEANUP_DONE=0

netns_create() {
    local name=${1:-vmso-$$}
    need_root
    ip netns add "$name" || die "ip netns add $name failed"
    NS=$name
    _NS_OWNED=1
    ip -n "$NS" link set lo up || die "lo up in $NS failed"
    # No IPv6 in the namespace: no router/neighbour solicitations in captures.
    ns_exec sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 \
        >/dev/null 2>&1 || true
}

tap_create() {
    local name=${1:-vmsotap0} addr=${2:-$HOST_IP/$NET_PREFIX}
    need_tun
    [[ -n "$NS" ]] || die "tap_create: no netns (call netns_create first)"
    case $addr in
        198.18.* | 198.19.*) ;;
        *) die "tap_create: $addr is outside 198.18.0.0/15" ;;
    esac
    local mq=()
    [[ "${TAP_MULTI_QUEUE:-0}" == 1 ]] && mq=(multi_queue)
    ip -n "$NS" tuntap add dev "$name" mode tap user root "${mq[@]}" || die "ip tuntap add $name ${mq[*]} in $NS failed"
    TAP=$name
    ip -n "$NS" addr add "$addr" dev "$TAP" || die "address $addr on $TAP failed"
    ip -n "$NS" link set "$TAP" up || die "link up $TAP failed"
}

netns_setup() { # [NS_NAME [TAP_NAME [ADDR]]]
    netns_create "${1:-}"
    tap_create "${2:-}" "${3:-}"
}

ns_exec() {
    [[ -n "$NS" ]] || die "ns_exec: no netns"
    ip netns exec "$NS" "$@"
}

bg_track() {
    BG_PIDS+=("$@")
}

ns_bg() {
    local out=$1
    shift
    [[ -n "$NS" ]] || die "ns_bg: no netns"
    ip netns exec "$NS" "$@" >"$out" 2>&1 </dev/null &
    BG_PID=$!
    bg_track "$BG_PID"
}

on_cleanup() {
    CLEANUP_HOOKS+=("$*")
}

wait_tcp_listen() {
    local port=$1 secs=${2:-10} i
    for ((i = 0; i < secs * 10; i++)); do
        ns_exec ss -Hltn "sport = :$port" 2>/dev/null | grep -q . && return 0
        sleep 0.1
    done
    return 1
}

ns_counters() { # NAME
    # a global associative array unless the caller declared NAME (e.g. local -A)
    [[ "$(declare -p "$1" 2>/dev/null)" == "declare -A"* ]] || declare -gA "$1"
    local -n _nc=$1
    local k v
    _nc=()
    while read -r k v; do
        _nc["$k"]=$v
    done < <(
        ns_exec cat /proc/net/snmp /proc/net/netstat | awk '$1 ~ /:$/ {
                p = substr($1, 1, length($1) - 1)
                if (!(p in h)) { h[p] = $0; next }
                n = split(h[p], f)
                for (i = 2; i <= n; i++) print p "." f[i], $i
                delete h[p]
            }'
        if [[ -n "${TAP:-}" ]]; then
            # shellcheck disable=SC2016 # $1 is the inner sh's
            ns_exec sh -c 'cd "$1" && grep . ./*' sh "/sys/class/net/$TAP/statistics" 2>/dev/null \
                | sed 's|^\./\([^:]*\):|tap.\1 |'
        fi
    )
}

ns_counter_delta() { # A B KEY
    local -n _a=$1 _b=$2
    echo $(( ${_b[$3]:-0} - ${_a[$3]:-0} ))
}

ns_csum_errors() { # NAME
    local -n _s=$1
    echo "${_s[IpExt.InCsumErrors]:-0} ${_s[Icmp.InCsumErrors]:-0} ${_s[Tcp.InCsumErrors]:-0} ${_s[Udp.InCsumErrors]:-0}"
}

ns_csum_rise() { # A B
    local p n=0
    for p in IpExt Icmp Tcp Udp; do
        n=$(( n + $(ns_counter_delta "$1" "$2" "$p.InCsumErrors") ))
    done
    echo "$n"
}

bg_untrack() { # PID
    local p keep=()
    for p in "${BG_PIDS[@]}"; do
        [[ "$p" == "$1" ]] || keep+=("$p")
    done
    BG_PIDS=("${keep[@]}")
}

bg_stop() { # PID...
    local p
    _kill_pids "$@"
    for p in "$@"; do
        bg_untrack "$p"
    done
}

bg_wait() { # PID TENTHS
    local i
    for ((i = 0; i < $2; i++)); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    bg_stop "$1"
}

# _kill_pids PID...: TERM, up to 5 s grace, then KILL.
_kill_pids() {
    local p alive i
    (( $# )) || return 0
    kill -TERM "$@" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        alive=0
        for p in "$@"; do
            kill -0 "$p" 2>/dev/null && alive=1
        done
        (( alive )) || break
        sleep 0.1
    done
    for p in "$@"; do
        kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
    done
    for p in "$@"; do
        wait "$p" 2>/dev/null || true
    done
    return 0
}

cleanup() {
    local rc=${1:-$?} h pids=()
    (( _CLEANUP_DONE )) && return 0
    _CLEANUP_DONE=1
    trap - EXIT INT TERM
    set +e
    _kill_pids "${BG_PIDS[@]}"
    for h in "${CLEANUP_HOOKS[@]}"; do
        eval "$h"
    done
    if (( _NS_OWNED )) && [[ -n "$NS" ]]; then
        # Anything still running in our namespace was started by this run.
        mapfile -t pids < <(ip netns pids "$NS" 2>/dev/null)
        _kill_pids "${pids[@]}"
        [[ -n "$TAP" ]] && ip -n "$NS" link del "$TAP" 2>/dev/null
        ip netns del "$NS" 2>/dev/null || warn "ip netns del $NS failed"
    fi
    exit "$rc"
}

# install_cleanup_trap: like "trap cleanup EXIT INT TERM", keeping 130/143 on signals.
install_cleanup_trap() {
    trap 'cleanup' EXIT
    trap 'cleanup 130' INT
    trap 'cleanup 143' TERM
}
