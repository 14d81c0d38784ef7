# shellcheck shell=sh
# Guest-side helpers (busybox sh), installed as /usr/lib/vmso/ci.sh in the base
# initramfs. /init sources this file before /run.sh, so run scripts can call:
#
#   result k=v [k=v...]         print "RESULT k=v ..." (what the host parses)
#   first_nic [timeout_s]       name of the first PCI-backed netdev (waits for it)
#   net_up ADDR/PREFIX [IFACE]  address + link up + wait for carrier; sets NIC
#   ping_check HOST [COUNT]     RESULT ping=ok|fail ping_avg_ms=...
#   iperf_run NAME ARGS...      iperf3 -f g ARGS (bounded); RESULT NAME_gbps=<receiver>
#                               NAME_sender_gbps=... NAME_retr=... NAME_bytes=<receiver
#                               bytes> NAME_ok=0|1. With IPERF_MARKS=1 it also prints
#                               "BENCH-MARK begin NAME" just before iperf3 starts and
#                               "BENCH-MARK end NAME" as soon as it exits: the host
#                               (ci/lib/bench-cpu.py) samples its CPU counters there.
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

# iperf_run NAME ARGS... ; IPERF_TIMEOUT (default 60 s) bounds the client.
# Interrupts taken so far by every MSI/MSI-X line (in these guests: the NIC's).
msi_irqs() {
    awk '/MSI/ { for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) s += $i } END { print s + 0 }' /proc/interrupts
}

iperf_run() {
    _name=$1
    shift
    _log=/tmp/iperf-$_name.txt
    [ "${IPERF_MARKS:-0}" = 1 ] && echo "BENCH-MARK begin $_name irqs=$(msi_irqs)"
    timeout "${IPERF_TIMEOUT:-60}" iperf3 -f g "$@" >"$_log" 2>&1
    _rc=$?
    [ "${IPERF_MARKS:-0}" = 1 ] && echo "BENCH-MARK end $_name irqs=$(msi_irqs)"
    cat "$_log"
    _parsed=$(awk -v n="$_name" '
        /receiver$/ || /sender$/ {
            for (i = 1; i <= NF; i++) if ($i == "Gbits/sec") break
            if (i > NF) next
            if ($NF == "receiver") {
                rx = $(i - 1)
                # the transfer column: "<value> <unit>" before the rate (units of 1024)
                m = 0
                if ($(i - 2) == "Bytes") m = 1
                else if ($(i - 2) == "KBytes") m = 1024
                else if ($(i - 2) == "MBytes") m = 1048576
                else if ($(i - 2) == "GBytes") m = 1073741824
                else if ($(i - 2) == "TBytes") m = 1099511627776
                if (m) bytes = sprintf("%.0f", $(i - 3) * m)
            }
            else { tx = $(i - 1); if ($(i + 1) ~ /^[0-9]+$/) retr = $(i + 1) }
        }
        END {
            if (rx == "") exit 1
            printf "%s_gbps=%s %s_sender_gbps=%s %s_retr=%s %s_bytes=%s", n, rx, n, tx, n, (retr == "" ? "?" : retr), n, (bytes == "" ? "?" : bytes)
        }' "$_log")
    if [ "$_rc" -eq 0 ] && [ -n "$_parsed" ]; then
        result "$_parsed" "${_name}_ok=1"
        return 0
    fi
    result "${_name}_ok=0" "${_name}_rc=$_rc"
    return 1
}
