#!/usr/bin/env bash
# ci/peer-smoke.sh [MODEL] - end-to-end proof of the harness with one of QEMU's own
# NICs (default e1000e; also igb, virtio-net-pci) on a TAP in a private netns:
#   netns + TAP 198.18.0.1/24 + bounded iperf3 server in the netns;
#   guest (TCG) loads the driver, takes 198.18.0.2/24, pings the host, runs
#   iperf3 -c (guest TX) and -c -R (guest RX) for PEER_SECS seconds each;
#   prints a summary and writes $RESULTS/peer-smoke/<model>/summary.env.
# Exits non-zero if any step fails. Leaves no netns, TAP or process behind.
# Environment: PEER_SECS (5), GUEST_MACHINE (q35), GUEST_TIMEOUT (120), GUEST_QUIET.
set -euo pipefail
# shellcheck source=ci/lib/common.sh
source "$(dirname "$0")/lib/common.sh"
# shellcheck source=ci/lib/netns.sh
source "$REPO/ci/lib/netns.sh"
# shellcheck source=ci/lib/guest.sh
source "$REPO/ci/lib/guest.sh"

MODEL=${1:-e1000e}
SECS=${PEER_SECS:-5}
need_root
need_tun
need_setup
need_cmd iperf3 ss timeout tail

OUT=$RESULTS/peer-smoke/$MODEL
rm -rf "$OUT"
mkdir -p "$OUT"
GUEST_DIR=$OUT

install_cleanup_trap
netns_setup "vmso-$$"
peer_nic_args "$MODEL"
log "netns $NS, $TAP = $HOST_IP/$NET_PREFIX, NIC $MODEL"

# One server for both runs, bounded by time; cleanup kills it in any case.
ns_bg "$OUT/iperf3-server.log" timeout $((GUEST_TIMEOUT + 30)) iperf3 -s -B "$HOST_IP" --forceflush
wait_tcp_listen 5201 10 || die "iperf3 server did not start (see $OUT/iperf3-server.log)"

cat >"$OUT/run.sh" <<EOF
modprobe -a $PEER_MODULE || { result modprobe=fail; exit 1; }
net_up $GUEST_IP/$NET_PREFIX || exit 1
ethtool -i "\$NIC"
ping_check $HOST_IP 3 || exit 1
rc=0
iperf_run tx -c $HOST_IP -t $SECS || rc=1
iperf_run rx -c $HOST_IP -t $SECS -R || rc=1
exit \$rc
EOF

ok=1
boot_guest "$OUT/run.sh" "${PEER_ARGS[@]}" || ok=0
guest_results >"$OUT/results.env" || true
{
    echo "model=$MODEL"
    echo "machine=$GUEST_MACHINE"
    echo "boot_s=${GUEST_BOOT_S:-}"
    echo "total_s=${GUEST_TOTAL_S:-}"
    cat "$OUT/results.env"
} >"$OUT/summary.env"

res() { guest_result "$1" 2>/dev/null || echo "?"; }
[[ "$(res ping)" == ok && "$(res tx_ok)" == 1 && "$(res rx_ok)" == 1 ]] || ok=0
printf 'peer-smoke %-14s machine=%s boot=%ss total=%ss ping=%s(%sms) TX=%s Gbit/s (retr %s) RX=%s Gbit/s\n' \
    "$MODEL" "$GUEST_MACHINE" "${GUEST_BOOT_S:-?}" "${GUEST_TOTAL_S:-?}" "$(res ping)" "$(res ping_avg_ms)" \
    "$(res tx_gbps)" "$(res tx_retr)" "$(res rx_gbps)"
(( ok )) || die "peer smoke test with $MODEL failed (logs in $OUT)"
log "PASS ($OUT/summary.env)"
