#!/usr/bin/env bash
# ci/lifecycle.sh - VMM turnover end to end: ONE vmso-device process (seccomp on)
# serves, on one socket path, in a private netns with a TAP:
#   LIFECYCLE_KILLS (20) QEMU guests, each SIGKILLed LIFECYCLE_KILL_AFTER (1.5) s
#     into an iperf3 run (TCP, alternately guest->host and host->guest);
#   LIFECYCLE_CLEAN (5) guests that run iperf3 both ways for LIFECYCLE_SECS (2) s,
#     rmmod vmso, find no kernel warning and power off cleanly;
#   then a device restart (SIGTERM: the device removes its socket; a new
#     vmso-device on the same path) and one more clean guest on the new process.
# After every guest the device must still run and have logged the disconnect; its
# fd count (/proc/PID/fd) and RSS (VmRSS) are sampled then. The fd count must come
# back to the same value after every guest, and RSS may grow by at most
# LIFECYCLE_RSS_SLACK_KB (2048) between the first and the last sample (guest RAM
# is unmapped by then: a leak of 100 kB per VMM would show).
# Writes results/lifecycle-<stamp>/ (samples.tsv, device logs, one dir per guest)
# and prints the figures. Exits non-zero on any failure; leaves nothing behind.
set -euo pipefail
# shellcheck source=ci/lib/vmso.sh
source "$(dirname "$0")/lib/vmso.sh"

KILLS=${LIFECYCLE_KILLS:-20}
CLEAN=${LIFECYCLE_CLEAN:-5}
KILL_AFTER=${LIFECYCLE_KILL_AFTER:-1.5}
SECS=${LIFECYCLE_SECS:-2}
RSS_SLACK_KB=${LIFECYCLE_RSS_SLACK_KB:-2048}

vmso_prepare

START=$(now)
OUT=$RESULTS/lifecycle-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
SAMPLES=$OUT/samples.tsv
printf 'n\tkind\tdevice_pid\tfds\trss_kb\tguest_s\n' >"$SAMPLES"

netns_setup "vmso-$$"
SOCK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/vmso-life.XXXXXX")
on_cleanup "rm -rf '$SOCK_DIR'"
SOCK=$SOCK_DIR/vmso.sock
log "netns $NS, $TAP = $HOST_IP/$NET_PREFIX; socket $SOCK; $KILLS killed + $CLEAN clean guests, restart, 1 clean guest"

GUEST_QUIET=1
GUEST_FILES=("$VMSO_KO")
DEV_PID=
DEV_LOG=
DISCONNECTS=0

fail() {
    die "lifecycle: $* (logs in $OUT)"
}

# start_device N: a vmso-device on $SOCK, its log $OUT/device-N.log.
start_device() {
    DEV_LOG=$OUT/device-$1.log
    vmso_device_start "$DEV_LOG" "$SOCK" --mac "$VMSO_MAC" --log-level info \
        || fail "vmso-device did not create $SOCK within 10 s"
    DEV_PID=$VMSO_DEV_PID
    DISCONNECTS=0
    grep -q 'seccomp filter installed' "$DEV_LOG" || fail "vmso-device did not install its seccomp filter"
}

# stop_device: SIGTERM; it must exit 0 and remove its socket.
stop_device() {
    kill -TERM "$DEV_PID"
    vmso_device_wait_exit 10
    [[ "$VMSO_DEV_RC" != running ]] || fail "vmso-device still running 10 s after SIGTERM"
    [[ "$VMSO_DEV_RC" == 0 ]] || fail "vmso-device exited with status $VMSO_DEV_RC after SIGTERM"
    [[ ! -e "$SOCK" ]] || fail "vmso-device left its socket behind"
}

# sample N KIND SECS: one line of samples.tsv: the device's fd count and RSS.
sample() {
    local fds rss
    fds=$(find "/proc/$DEV_PID/fd" -mindepth 1 -maxdepth 1 | wc -l)
    rss=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$DEV_PID/status")
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$DEV_PID" "$fds" "$rss" "$3" >>"$SAMPLES"
    log "${2} ${1} (${3}s): device fds=$fds rss=${rss} kB"
}

# after_guest N KIND SECS: the device must still run and have logged one more
# disconnect; then one sample.
after_guest() {
    local i n
    DISCONNECTS=$((DISCONNECTS + 1))
    for ((i = 0; i < 100; i++)); do
        kill -0 "$DEV_PID" 2>/dev/null || fail "vmso-device died after guest $1 (status: see $DEV_LOG)"
        n=$(grep -cE 'VMM disconnected|vfio-user connection ended' "$DEV_LOG" || true)
        (( n >= DISCONNECTS )) && break
        sleep 0.1
    done
    (( n >= DISCONNECTS )) || fail "vmso-device did not log the disconnect of guest $1 within 10 s"
    grep -q 'panicked' "$DEV_LOG" && fail "vmso-device panicked"
    sample "$1" "$2" "$3"
}

# start_server DIR PORT: an iperf3 server for one guest, on a port of its own (a
# killed client leaves its server session behind); stopped after the guest.
SRV_PID=
start_server() {
    ns_bg "$1/iperf3-server.log" timeout 150 iperf3 -s -B "$HOST_IP" -p "$2"
    SRV_PID=$BG_PID
    wait_tcp_listen "$2" 10 || fail "iperf3 server on port $2 did not start"
}

# killed_guest N: boots, starts iperf3, and is SIGKILLed KILL_AFTER s into it.
killed_guest() {
    local n=$1 dir=$OUT/guest-$1 port=$((5300 + $1)) dirn='' boot_pid qpid i t0
    mkdir -p "$dir"
    (( n % 2 )) && dirn=-R
    start_server "$dir" "$port"
    cat >"$dir/run.sh" <<EOF
modprobe vmso || exit 1
net_up $GUEST_IP/$NET_PREFIX || exit 1
echo LIFECYCLE-IPERF
timeout 60 iperf3 -c $HOST_IP -p $port -t 30 $dirn
exit 0
EOF
    t0=$(now)
    GUEST_DIR=$dir GUEST_TIMEOUT=90 boot_guest "$dir/run.sh" -pidfile "$dir/qemu.pid" \
        -device "$(vfio_user_device_json "$SOCK")" >"$dir/boot.log" 2>&1 &
    boot_pid=$!
    bg_track "$boot_pid"
    for ((i = 0; i < 600; i++)); do
        grep -qs LIFECYCLE-IPERF "$dir/console.log" && break
        kill -0 "$boot_pid" 2>/dev/null || break
        sleep 0.1
    done
    grep -qs LIFECYCLE-IPERF "$dir/console.log" || fail "guest $n never started iperf3 (console $dir/console.log)"
    sleep "$KILL_AFTER"
    qpid=$(cat "$dir/qemu.pid" 2>/dev/null || true)
    if ! [[ "$qpid" =~ ^[0-9]+$ ]] || ! grep -qs "$dir/console.log" "/proc/$qpid/cmdline"; then
        fail "guest $n: no QEMU pid in $dir/qemu.pid"
    fi
    kill -KILL "$qpid"
    wait "$boot_pid" 2>/dev/null || true
    bg_untrack "$boot_pid"
    bg_stop "$SRV_PID"
    after_guest "$n" killed "$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')"
}

# clean_guest N: iperf3 both ways, rmmod, no kernel warning, clean power-off.
clean_guest() {
    local n=$1 dir=$OUT/guest-$1 port=$((5300 + $1)) t0
    mkdir -p "$dir"
    start_server "$dir" "$port"
    cat >"$dir/run.sh" <<EOF
rc=0
modprobe vmso || exit 1
net_up $GUEST_IP/$NET_PREFIX || exit 1
ping_check $HOST_IP 2 || exit 1
export IPERF_TIMEOUT=$((SECS + 30))
iperf_run tx -c $HOST_IP -p $port -t $SECS || rc=1
iperf_run rx -c $HOST_IP -p $port -t $SECS -R || rc=1
ip link set "\$NIC" down
rmmod vmso || rc=1
warns=\$(dmesg | grep -cE 'WARNING:|BUG:|Oops|general protection|Call Trace')
result kernel_warnings=\$warns
[ "\$warns" -eq 0 ] || { dmesg | tail -n 40; rc=1; }
exit \$rc
EOF
    t0=$(now)
    GUEST_DIR=$dir GUEST_TIMEOUT=120 boot_guest "$dir/run.sh" -device "$(vfio_user_device_json "$SOCK")" \
        >"$dir/boot.log" 2>&1 &
    local boot_pid=$! rc=0
    bg_track "$boot_pid"
    wait "$boot_pid" || rc=$?
    bg_untrack "$boot_pid"
    bg_stop "$SRV_PID"
    (( rc == 0 )) || fail "clean guest $n failed (console $dir/console.log, $dir/boot.log)"
    after_guest "$n" clean "$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')"
}

start_device 1
sample 0 idle 0
n=0
for ((k = 0; k < KILLS; k++)); do
    n=$((n + 1))
    killed_guest "$n"
done
for ((c = 0; c < CLEAN; c++)); do
    n=$((n + 1))
    clean_guest "$n"
done
FIRST_PID=$DEV_PID
log "restarting vmso-device on $SOCK"
stop_device
start_device 2
n=$((n + 1))
clean_guest "$n"
stop_device

# Figures of the first process: fd count flat, RSS growth bounded.
read -r fd_min fd_max fd_first fd_last rss_first rss_last rss_max < <(awk -F'\t' -v p="$FIRST_PID" '
    NR > 1 && $3 == p {
        if (!c++) { fmin = fmax = f1 = $4; r1 = $5; rmax = $5 }
        if ($4 < fmin) fmin = $4
        if ($4 > fmax) fmax = $4
        if ($5 > rmax) rmax = $5
        fl = $4; rl = $5
    }
    END { print fmin, fmax, f1, fl, r1, rl, rmax }' "$SAMPLES")
ELAPSED=$(awk -v a="$START" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }')
echo
echo "lifecycle: $KILLS killed + $CLEAN clean guests on one vmso-device, restart, 1 clean guest; ${ELAPSED}s"
echo "  device fds (idle, then after each guest): first $fd_first, last $fd_last (min $fd_min, max $fd_max)"
echo "  device RSS (idle, then after each guest): first ${rss_first} kB, last ${rss_last} kB (max ${rss_max} kB, slack ${RSS_SLACK_KB} kB)"
echo "  samples: $SAMPLES"
(( fd_min == fd_max )) || fail "device fd count not flat: $fd_min..$fd_max"
(( rss_last - rss_first <= RSS_SLACK_KB )) || fail "device RSS grew by $((rss_last - rss_first)) kB"
(( rss_max - rss_first <= RSS_SLACK_KB )) || fail "device RSS peaked $((rss_max - rss_first)) kB above the first sample"
log "PASS (${ELAPSED}s)"
