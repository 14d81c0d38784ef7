#!/usr/bin/env bash
# ci/e2e.sh [CONFIG...] - the QEMU end-to-end run of vmso: vmso-device (release) on a TAP
# in a private netns, QEMU 11 (TCG, -smp 1, shared memfd RAM) with vfio-user-pci, and the
# guest driver vmso.ko. For each configuration:
#   guest: modprobe vmso dma_mode=..., 198.18.0.2/24, ping 198.18.0.1, iperf3 TCP
#          guest->host and host->guest (-R) for E2E_SECS each, UDP (-u -b 2G -l 1400)
#          for E2E_UDP_SECS, ethtool -S as RESULT lines, rmmod vmso;
#   host:  no rise of InCsumErrors (IpExt/Icmp/Tcp/Udp) in the netns; device counters
#          va_translations > 0 (virt) or == 0 (phys), tx_tso_segments > 0; the frames
#          vmso sends during the TX test (the first E2E_CAPTURE_FRAMES of them) captured
#          on the TAP (-s 128) and read by tshark with checksum validation: no bad
#          checksum, no frame over 1514 bytes; the paging mode the guest runs (la57);
#          vmso-device --once exits cleanly after QEMU.
# Configurations (default: all, in this order; also E2E_CONFIGS="4l phys"):
#   4l    default CPU, PVH boot, 4-level paging, dma_mode=virt
#   5l    -cpu max, bzImage boot, 5-level paging (la57), dma_mode=virt
#   phys  default CPU, PVH boot, 4-level paging, dma_mode=phys
# Prints a summary table; writes $RESULTS/e2e-<timestamp>.md and keeps the logs in
# $RESULTS/e2e-<timestamp>/<config>/. Exits non-zero if any check failed.
# Environment: E2E_SECS (10), E2E_UDP_SECS (5), E2E_UDP_RATE (2G), E2E_CAPTURE
# (auto|0|1), E2E_SNAPLEN (128), E2E_CAPTURE_FRAMES (300000), E2E_KEEP_PCAP (0),
# VMSO_PARAMS, E2E_GUEST_SETUP, VMSO_DRIVER_SRC, GUEST_QUIET (0). See ci/lib/vmso.sh.
set -euo pipefail
# shellcheck source=ci/lib/vmso.sh
source "$(dirname "$0")/lib/vmso.sh"

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit "${1:-0}"
}

CONFIGS=()
for a in "$@"; do
    case $a in
        -h | --help) usage 0 ;;
        all) CONFIGS+=("${VMSO_CONFIGS_ALL[@]}") ;;
        *) vmso_config "$a"; CONFIGS+=("$a") ;;
    esac
done
if (( ${#CONFIGS[@]} == 0 )); then
    read -r -a CONFIGS <<<"${E2E_CONFIGS:-${VMSO_CONFIGS_ALL[*]}}"
    for a in "${CONFIGS[@]}"; do vmso_config "$a"; done
fi

START=$(now)
vmso_prepare

STAMP=$(date +%Y%m%d-%H%M%S)
OUT=$RESULTS/e2e-$STAMP
MD=$RESULTS/e2e-$STAMP.md
mkdir -p "$OUT"

netns_setup "vmso-$$"
log "netns $NS, $TAP = $HOST_IP/$NET_PREFIX; configs: ${CONFIGS[*]}; iperf3 ${E2E_SECS}s TCP x2, ${E2E_UDP_SECS}s UDP"

ENVS=()
for cfg in "${CONFIGS[@]}"; do
    vmso_run "$cfg" "$OUT/$cfg" || true
    [[ -r "$OUT/$cfg/summary.env" ]] && ENVS+=("$OUT/$cfg/summary.env")
done
ELAPSED=$(awk -v a="$START" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }')

echo
echo "vmso e2e ($STAMP, ${ELAPSED}s, iperf3 ${E2E_SECS}s TCP / ${E2E_UDP_SECS}s UDP ${E2E_UDP_RATE} -l ${E2E_UDP_LEN}, TCG -smp 1)"
(( ${#ENVS[@]} )) && vmso_summary_table "${ENVS[@]}"
{
    echo "# vmso e2e $STAMP"
    echo
    echo "- host: $(uname -r), $(nproc) CPUs; guest kernel $KVER; QEMU $("${QEMU[@]}" --version | head -n1)"
    echo "- commit: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo ?)$(git -C "$REPO" diff --quiet HEAD -- device guest-driver 2>/dev/null || echo ' (device/ or guest-driver/ modified)')"
    echo "- iperf3: TCP ${E2E_SECS}s each way, UDP ${E2E_UDP_SECS}s -b ${E2E_UDP_RATE} -l ${E2E_UDP_LEN}; TCG, -smp 1"
    echo "- run time: ${ELAPSED}s; logs: ${OUT#"$REPO"/}/"
    echo
    (( ${#ENVS[@]} )) && vmso_summary_md "${ENVS[@]}"
    echo
    echo "csum err = rise of InCsumErrors (IpExt+Icmp+Tcp+Udp) in the host netns / bad checksums"
    echo "tshark found in the capture of the TX test (\`-\` = no capture)."
    for e in "${ENVS[@]}"; do
        echo
        echo "## $(_vmso_get "$e" cfg)"
        echo
        echo '```'
        grep -v '^stat_' "$e"
        echo
        echo "device counters (the device's, named by its metrics document; values from ethtool -S):"
        vmso_print_counters "$e"
        echo '```'
    done
    if (( ${#VMSO_FAILS[@]} )); then
        echo
        echo "## Failures"
        echo
        printf -- '- %s\n' "${VMSO_FAILS[@]}"
    fi
} >"$MD"
echo "report: $MD"

if (( ${#VMSO_FAILS[@]} )); then
    die "${#VMSO_FAILS[@]} check(s) failed: $(IFS=';'; echo "${VMSO_FAILS[*]}")"
fi
log "PASS: ${CONFIGS[*]} in ${ELAPSED}s"
