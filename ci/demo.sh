#!/usr/bin/env bash
# ci/demo.sh [CONFIG] - the main job: set up (ci/setup.sh if needed), build vmso-device
# and vmso.ko, boot one TCG guest on vmso over vfio-user (QEMU 11), run iperf3 both ways
# (and a short UDP test) against the host end of a TAP in a private netns, then print the
# throughput and the device counters.
# CONFIG is one of ci/e2e.sh's: 4l (default: default CPU, 4-level paging, dma_mode=virt),
# 5l (-cpu max, 5-level paging) or phys (dma_mode=phys).
# The checks of ci/e2e.sh run too (the TAP capture only with E2E_CAPTURE=1, so that the
# throughput is not disturbed). Logs go to $RESULTS/demo/<config>/.
# Environment: E2E_SECS (10), E2E_UDP_SECS (5), E2E_CAPTURE (0 here), VMSO_PARAMS,
# GUEST_QUIET (0: stream the guest console).
set -euo pipefail
E2E_CAPTURE=${E2E_CAPTURE:-0}
# shellcheck source=ci/lib/vmso.sh
source "$(dirname "$0")/lib/vmso.sh"

case ${1:-} in
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
esac
CFG=${1:-4l}
vmso_config "$CFG"

vmso_prepare

OUT=$RESULTS/demo/$CFG
netns_setup "vmso-$$"
log "netns $NS, $TAP = $HOST_IP/$NET_PREFIX; guest $GUEST_IP on vmso ($CFG)"
ok=1
vmso_run "$CFG" "$OUT" || ok=0
ENV=$OUT/summary.env
[[ -r "$ENV" ]] || die "no results (logs in $OUT)"
g() { _vmso_get "$ENV" "$1"; }

cat <<EOF

vmso demo: config $CFG: $(g paging) paging, dma_mode=$(g dma_mode), cpu=$(g cpu), boot=$(g boot); guest /init after $(g boot_s) s
  TX  guest -> host  TCP  $(g tx_gbps) Gbit/s   (retransmits $(g tx_retr))
  RX  host -> guest  TCP  $(g rx_gbps) Gbit/s   (retransmits $(g rx_retr); frames the TAP dropped: $(g tap_tx_dropped))
  UDP guest -> host       $(g udp_gbps) Gbit/s   (-b $E2E_UDP_RATE -l $E2E_UDP_LEN, loss $(g udp_loss_pct) %)
  iperf3 ${E2E_SECS} s per TCP direction, ${E2E_UDP_SECS} s UDP; host InCsumErrors rise: $(g host_csum_errors)

device counters (the device's own, named by its metrics document; the values as ethtool -S
reports them at the end of the run):
EOF
vmso_print_counters "$ENV"
echo
echo "IOTLB hit ratio $(g iotlb_hit_ratio); logs: $OUT"
(( ok )) || die "demo run failed: $(IFS=';'; echo "${VMSO_FAILS[*]}")"
log "PASS"
