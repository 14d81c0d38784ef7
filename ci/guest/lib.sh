# shellcheck shell=sh
# Guest-side helpers (busybox sh), installed as /usr/lib/vmso/ci.sh in the base
# initramfs. /init sources this file before /run.sh, so run scripts can call:
#
#   result k=v [k=v...]         print "RESULT k=v ..." (what the host parses)
#   first_nic [timeout_s]       name of the first PCI-backed netdev (waits for it)
#   net_up ADDR/PREFIX [IFACE]  address + link up + wait for carrier; sets NIC
#   ping_check HOST [COUNT]     RESULT ping=ok|fail ping_avg_ms=...
#   iperf_run NAME ARGS...      iperf3 -J ARGS (bounded), the report printed with
#                               iperf_json; the host turns it into NAME_gbps=<receiver>
#                               NAME_sender_gbps=... NAME_retr=... NAME_bytes=<receiver
#                               bytes> NAME_ok=0|1 ... (ci/lib/iperf-json.py). With
#                               IPERF_MARKS=1 it also prints "BENCH-MARK begin NAME" just
#                               before iperf3 starts and "BENCH-MARK end NAME" as soon as
#                               it exits: the host (ci/lib/bench-cpu.py) samples its CPU
#                               counters there.
#   iperf_json NAME RC FILE     print an iperf3 -J report as one "IPERF-JSON" line
#   ethtool_stats_results [IF]  every ethtool -S counter as RESULT stat_NAME=VALUE
#   unload_check                $NIC down, rmmod vmso (RESULT rmmod=ok|fail), then RESULT
#                               dmesg_clean=0|1: no WARNING, BUG, Oops, refcount or leak
#                               line in dmesg (the lines found are printed)
#
# All loops are bounded in time.

result() {
    echo "RESULT $*"
}

first_nic() {
    _t=${1:-10}
    _i=0
    while [ "$_i" -lt $((_t * 10)) ]; do
        for _d in /sys/class/net/*; do
            [ -e "$_d/device" ] || continue
            basename "$_d"
            return 0
        done
        sleep 0.1
        _i=$((_i + 1))
    done
    return 1
}

net_up() {
    _addr=$1
    NIC=${2:-}
    if [ -z "$NIC" ]; then
        NIC=$(first_nic 10) || { echo "net_up: no NIC appeared"; result link_up=0; return 1; }
    fi
    ip addr add "$_addr" dev "$NIC" || return 1
    ip link set "$NIC" up || return 1
    _i=0
    while [ "$(cat "/sys/class/net/$NIC/carrier" 2>/dev/null)" != 1 ]; do
        _i=$((_i + 1))
        if [ "$_i" -gt 100 ]; then
            echo "net_up: $NIC has no carrier after 10 s"
            result link_up=0 nic="$NIC"
            return 1
        fi
        sleep 0.1
    done
    result link_up=1 nic="$NIC" driver="$(basename "$(readlink "/sys/class/net/$NIC/device/driver")")"
}

ping_check() {
    _out=$(ping -c "${2:-3}" -W 2 "$1" 2>&1)
    _rc=$?
    echo "$_out"
    if [ "$_rc" -eq 0 ]; then
        _avg=$(echo "$_out" | sed -n 's|.*min/avg/max = [^/]*/\([^/]*\)/.*|\1|p')
        result ping=ok ping_avg_ms="${_avg:-?}"
    else
        result ping=fail
    fi
    return "$_rc"
}

# Interrupts taken so far by every MSI/MSI-X line (in these guests: the NIC's).
msi_irqs() {
    awk '/MSI/ { for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) s += $i } END { print s + 0 }' /proc/interrupts
}

# iperf_json NAME RC FILE: print iperf3's -J report FILE as one console line,
# "IPERF-JSON NAME rc=RC {...}" (newlines removed: JSON strings hold none). The guest
# has no JSON parser: the host reads these lines (ci/lib/iperf-json.py, through
# guest_results) into NAME_gbps, NAME_ok, ... Returns 0 iff RC is 0 and the report has
# the receiver's totals.
iperf_json() {
    echo "IPERF-JSON $1 rc=$2 $(tr -d '\n' <"$3")"
    [ "$2" -eq 0 ] && grep -q '"sum_received"' "$3"
}

# iperf_run NAME ARGS... ; IPERF_TIMEOUT (default 60 s) bounds the client.
iperf_run() {
    _name=$1
    shift
    _log=/tmp/iperf-$_name.json
    [ "${IPERF_MARKS:-0}" = 1 ] && echo "BENCH-MARK begin $_name irqs=$(msi_irqs)"
    timeout "${IPERF_TIMEOUT:-60}" iperf3 -J "$@" >"$_log" 2>"/tmp/iperf-$_name.err"
    _rc=$?
    [ "${IPERF_MARKS:-0}" = 1 ] && echo "BENCH-MARK end $_name irqs=$(msi_irqs)"
    cat "/tmp/iperf-$_name.err"
    iperf_json "$_name" "$_rc" "$_log"
}

# ethtool_stats_results [IFACE]: every ethtool -S counter of IFACE ($NIC) as
# "RESULT stat_NAME=VALUE" (the host reads them with guest_results); fails if ethtool does.
ethtool_stats_results() {
    ethtool -S "${1:-$NIC}" >/tmp/stats.txt || return 1
    awk 'NR > 1 && $1 ~ /:$/ { sub(":$", "", $1); print "RESULT stat_" $1 "=" $2 }' /tmp/stats.txt
}

unload_check() {
    ip link set "$NIC" down
    if rmmod vmso; then result rmmod=ok; else result rmmod=fail; fi
    if dmesg | grep -E 'WARNING|BUG|Oops|refcount|leak'; then result dmesg_clean=0; else result dmesg_clean=1; fi
}
