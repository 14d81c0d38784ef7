#!/usr/bin/env bash
# ci/bench-mq.sh [REPS] - the multi-queue point: a guest with -smp 2 on vmso-device
# --queues 1 and --queues 2 (a multi-queue TAP), 4 parallel iperf3 streams each way,
# REPS (default 3) boots per configuration, interleaved. Prints the medians and the
# 2-queue / 1-queue ratio of the same run; nothing is asserted.
# Environment: BENCH_MQ_SECS (10) seconds per iperf3 -P 4 run.
# Leaves no netns, TAP or process behind.
set -euo pipefail
# shellcheck source=ci/lib/driver-e2e.sh
source "$(dirname "$0")/lib/driver-e2e.sh"

REPS=${1:-3}
SECS=${BENCH_MQ_SECS:-10}
GUEST_SMP=2
GUEST_TIMEOUT=$((90 + 2 * (SECS + 20)))
OUT=$RESULTS/bench-mq-$(date -u +%Y%m%d-%H%M%S)
need_root
need_tun
need_setup
need_cmd iperf3 make gcc-12
mkdir -p "$OUT"
driver_e2e_build "$OUT"

install_cleanup_trap
TAP_MULTI_QUEUE=1 netns_setup "vmsobmq-$$"

run_one() { # QUEUES REP
    local q=$1 rep=$2 dir sock srv_pid
    dir=$OUT/q$q-rep$rep
    mkdir -p "$dir"
    sock=$dir/vmso.sock
    vmso_device_start "$dir/device.log" "$sock" --queues "$q" --mac 52:54:00:76:6d:01 --once \
        || die "vmso-device did not start (see $dir/device.log)"
    ns_bg "$dir/iperf3-server.log" timeout $((GUEST_TIMEOUT + 30)) iperf3 -s -B "$HOST_IP"
    srv_pid=$BG_PID
    wait_tcp_listen 5201 10 || die "iperf3 server did not start"
    cat >"$dir/run.sh" <<RUN
modprobe vmso || { result modprobe=fail; exit 1; }
net_up $GUEST_IP/$NET_PREFIX || exit 1
ping_check $HOST_IP 3 || exit 1
result queues=\$(ls -d /sys/class/net/\$NIC/queues/tx-* | wc -l)
iperf_run tx -c $HOST_IP -t $SECS -P 4 || exit 1
iperf_run rx -c $HOST_IP -t $SECS -P 4 -R || exit 1
RUN
    GUEST_DIR=$dir
    GUEST_FILES=("$REPO/guest-driver/vmso.ko")
    boot_guest "$dir/run.sh" -device "$(vfio_user_device_json "$sock")" \
        || die "guest with $q queue(s) failed (see $dir/console.log)"
    guest_results >"$dir/results.env"
    bg_stop "$srv_pid"
    vmso_device_wait_exit 10
    local got
    got=$(awk -F= '$1 == "queues" { print $2 }' "$dir/results.env")
    [[ "$got" == "$q" ]] || die "the guest uses $got TX queue(s), expected $q"
    printf '%s %s %s %s\n' "$q" "$rep" "$(awk -F= '$1 == "tx_gbps" { print $2 }' "$dir/results.env")" \
        "$(awk -F= '$1 == "rx_gbps" { print $2 }' "$dir/results.env")" >>"$OUT/points.txt"
    log "queues=$q rep=$rep: $(tail -n 1 "$OUT/points.txt")"
}

for ((rep = 1; rep <= REPS; rep++)); do
    for q in 1 2; do run_one "$q" "$rep"; done
done

python3 - "$OUT/points.txt" <<'PY' | tee "$OUT/bench-mq.md"
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
med = {}
for q in ("1", "2"):
    for i, w in ((2, "tx"), (3, "rx")):
        med[q, w] = statistics.median(float(r[i]) for r in rows if r[0] == q)
print("| queues | TCP guest→host, -P 4 (Gbit/s) | TCP host→guest, -P 4 (Gbit/s) |")
print("|---|---|---|")
for q in ("1", "2"):
    print(f"| {q} | {med[q, 'tx']:.2f} | {med[q, 'rx']:.2f} |")
print(f"| 2 ÷ 1 | {med['2', 'tx'] / med['1', 'tx']:.2f}× | {med['2', 'rx'] / med['1', 'rx']:.2f}× |")
print(f"\nmedians of {len(rows) // 2} boot(s) per configuration, -smp 2 guest, same run")
PY
log "done: $OUT"
