#!/usr/bin/env bash
# ci/soak.sh [MINUTES] - a long run of one guest on vmso-device (default 30 minutes):
# TCP and UDP at once, each both ways (iperf3 --bidir), in a private netns with a TAP.
# Checks at the end:
#   - the host's InCsumErrors (IpExt, Icmp, Tcp, Udp in the netns) did not rise;
#   - frames the device counts equal frames the host TAP counts, both ways:
#       device tx_frames                                   == TAP rx_packets
#       device rx_packets + rx_coalesced + rx_dropped + rx_vnet_bad == TAP tx_packets
#     (device counters: ethtool -S in the guest once traffic has stopped; the TAP's
#     from /sys/class/net/TAP/statistics; rx_coalesced counts the frames merged into
#     a superpacket beyond its first, so every frame read is counted once);
#   - no kernel warning in the guest; both iperf3 runs completed;
#   - device memory flat: RssAnon (its own memory; VmRSS also counts the guest RAM
#     it has touched) sampled every SOAK_SAMPLE_S (30) s; the last sample may exceed
#     the first taken after SOAK_WARMUP_S (60) s by at most SOAK_RSS_SLACK_KB (4096);
#     the fd count stays equal.
# Environment: SOAK_UDP_RATE (100M per direction), SOAK_UDP_LEN (1400).
# Writes results/soak-<stamp>/ (rss.tsv, summary.env, logs). Exits non-zero on any
# failure; leaves nothing behind.
set -euo pipefail
# shellcheck source=ci/lib/vmso.sh
source "$(dirname "$0")/lib/vmso.sh"

MINUTES=${1:-30}
if ! [[ "$MINUTES" =~ ^[0-9]+$ ]] || (( MINUTES < 1 || MINUTES > 24 * 60 )); then
    die "usage: ci/soak.sh [MINUTES] (1..1440)"
fi
SECS=$((MINUTES * 60))
SAMPLE_S=${SOAK_SAMPLE_S:-30}
WARMUP_S=${SOAK_WARMUP_S:-60}
RSS_SLACK_KB=${SOAK_RSS_SLACK_KB:-4096}
UDP_RATE=${SOAK_UDP_RATE:-100M}
UDP_LEN=${SOAK_UDP_LEN:-1400}

need_root
need_tun
vmso_ensure_setup
need_cmd iperf3 ss timeout awk
install_cleanup_trap
vmso_build

START=$(now)
OUT=$RESULTS/soak-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
netns_setup "vmso-$$"
SOCK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/vmso-soak.XXXXXX")
on_cleanup "rm -rf '$SOCK_DIR'"
SOCK=$SOCK_DIR/vmso.sock
log "netns $NS, $TAP = $HOST_IP/$NET_PREFIX; ${MINUTES} min of TCP + UDP ($UDP_RATE) both ways; logs in $OUT"

tap_stat() { vmso_tap_stat "$1"; }
declare -A TAP0
for s in rx_packets tx_packets rx_dropped tx_dropped rx_errors tx_errors; do
    TAP0[$s]=$(tap_stat "$s")
done
read -r -a CSUM0 <<<"$(vmso_csum_errors)"

ns_bg "$OUT/device.log" "$VMSO_DEVICE" --socket "$SOCK" --tap "$TAP" --mac "$VMSO_MAC" --log-level info --once
DEV_PID=$BG_PID
for ((i = 0; i < 100; i++)); do
    [[ -S "$SOCK" ]] && break
    kill -0 "$DEV_PID" 2>/dev/null || break
    sleep 0.1
done
[[ -S "$SOCK" ]] || die "vmso-device did not create its socket (see $OUT/device.log)"

# Two servers, bounded by time: TCP on 5201, UDP on 5202.
for port in 5201 5202; do
    ns_bg "$OUT/iperf3-server-$port.log" timeout $((SECS + 300)) iperf3 -s -B "$HOST_IP" -p "$port"
    wait_tcp_listen "$port" 10 || die "iperf3 server on port $port did not start"
done

# Memory and fd sampler, bounded in count (and by the device's life). VmRSS
# includes the guest RAM pages the device has touched (RssShmem, the shared memfd),
# which grows with the guest's buffers; the device's own memory is RssAnon.
sampler() {
    local t0 i n=$((SECS / SAMPLE_S + 40)) mem fds
    t0=$(now)
    printf 't_s\tanon_kb\trss_kb\tshmem_kb\tfds\n'
    for ((i = 0; i < n; i++)); do
        mem=$(awk '$1 == "RssAnon:" { a = $2 } $1 == "VmRSS:" { r = $2 } $1 == "RssShmem:" { s = $2 }
            END { if (r != "") printf "%s\t%s\t%s", a, r, s }' "/proc/$DEV_PID/status" 2>/dev/null) || break
        [[ -n "$mem" ]] || break
        fds=$(find "/proc/$DEV_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
        printf '%.0f\t%s\t%s\n' "$(awk -v a="$t0" -v b="$(now)" 'BEGIN { print b - a }')" "$mem" "$fds"
        sleep "$SAMPLE_S"
    done
}
sampler >"$OUT/rss.tsv" &
bg_track $!

cat >"$OUT/run.sh" <<EOF
rc=0
modprobe vmso || { result modprobe=fail; exit 1; }
net_up $GUEST_IP/$NET_PREFIX || exit 1
ping_check $HOST_IP 3 || exit 1
timeout $((SECS + 60)) iperf3 -f g -c $HOST_IP -p 5201 -t $SECS --bidir >/tmp/tcp.txt 2>&1 &
tcp=\$!
timeout $((SECS + 60)) iperf3 -f g -c $HOST_IP -p 5202 -u -b $UDP_RATE -l $UDP_LEN -t $SECS --bidir >/tmp/udp.txt 2>&1 &
udp=\$!
wait \$tcp || { result tcp_ok=0; rc=1; }
wait \$udp || { result udp_ok=0; rc=1; }
tail -n 8 /tmp/tcp.txt
tail -n 8 /tmp/udp.txt
# [TX-C]/[RX-C] receiver lines: Gbit/s of each direction.
awk '/receiver\$/ { for (i = 1; i <= NF; i++) if (\$i == "Gbits/sec") v = \$(i - 1); if (\$0 ~ /TX-C/) t = v; else if (\$0 ~ /RX-C/) r = v }
     END { printf "RESULT tcp_g2h_gbps=%s tcp_h2g_gbps=%s\n", t, r }' /tmp/tcp.txt
awk '/receiver\$/ { l = \$0; sub(/.*\(/, "", l); sub(/%\).*/, "", l); if (\$0 ~ /TX-C/) t = l; else if (\$0 ~ /RX-C/) r = l }
     END { printf "RESULT udp_g2h_loss_pct=%s udp_h2g_loss_pct=%s\n", t, r }' /tmp/udp.txt
# Let the last frames settle (coalescer timers, TIME_WAIT ACKs), then the counters.
sleep 3
ethtool -S "\$NIC" >/tmp/stats.txt || rc=1
awk 'NR > 1 && \$1 ~ /:\$/ { sub(":\$", "", \$1); print "RESULT stat_" \$1 "=" \$2 }' /tmp/stats.txt
warns=\$(dmesg | grep -cE 'WARNING:|BUG:|Oops|general protection|Call Trace|soft lockup|hung task')
result kernel_warnings=\$warns
[ "\$warns" -eq 0 ] || { dmesg | grep -E -A 20 'WARNING:|BUG:|Oops|general protection|soft lockup|hung task'; rc=1; }
exit \$rc
EOF

GUEST_DIR=$OUT
GUEST_FILES=("$VMSO_KO")
GUEST_QUIET=1
GUEST_TIMEOUT=$((SECS + 240))
ok=1
boot_guest "$OUT/run.sh" -device "{\"driver\":\"vfio-user-pci\",\"socket\":{\"path\":\"$SOCK\",\"type\":\"unix\"}}" || ok=0
guest_results >"$OUT/results.env" 2>/dev/null || true
read -r -a CSUM1 <<<"$(vmso_csum_errors)"
declare -A TAP1
for s in "${!TAP0[@]}"; do
    TAP1[$s]=$(tap_stat "$s")
done
for ((i = 0; i < 100; i++)); do
    kill -0 "$DEV_PID" 2>/dev/null || break
    sleep 0.1
done
dev_rc=0
if kill -0 "$DEV_PID" 2>/dev/null; then
    dev_rc=timeout
    _vmso_stop "$DEV_PID"
else
    wait "$DEV_PID" || dev_rc=$?
    _vmso_untrack "$DEV_PID"
fi

FAILS=()
check() { # COND_RC MSG
    (( $1 == 0 )) || FAILS+=("$2")
}
res() { guest_result "$1" 2>/dev/null || echo "?"; }
num() { local v; v=$(res "$1"); [[ "$v" =~ ^[0-9]+$ ]] && echo "$v" || echo -1; }
(( ok )) || FAILS+=("guest run failed (console $OUT/console.log)")
[[ "$dev_rc" == 0 ]] || FAILS+=("vmso-device exited with status $dev_rc")
grep -q panicked "$OUT/device.log" && FAILS+=("vmso-device panicked")

csum_rise=0
for i in 0 1 2 3; do
    csum_rise=$((csum_rise + CSUM1[i] - CSUM0[i]))
done
(( csum_rise == 0 )) || FAILS+=("host InCsumErrors rose by $csum_rise")
[[ "$(res kernel_warnings)" == 0 ]] || FAILS+=("guest kernel warnings: $(res kernel_warnings)")

dev_tx=$(num stat_tx_frames)
dev_rx=$(( $(num stat_rx_packets) + $(num stat_rx_coalesced) + $(num stat_rx_dropped) + $(num stat_rx_vnet_bad) ))
tap_rx=$(( TAP1[rx_packets] - TAP0[rx_packets] ))
tap_tx=$(( TAP1[tx_packets] - TAP0[tx_packets] ))
(( dev_tx == tap_rx )) || FAILS+=("guest->host: device tx_frames $dev_tx != TAP rx_packets $tap_rx")
(( dev_rx == tap_tx )) || FAILS+=("host->guest: device frames read $dev_rx != TAP tx_packets $tap_tx")
(( dev_tx > 0 && dev_rx > 0 )) || FAILS+=("no traffic counted")

# RSS: first sample after the warm-up against the last one.
read -r rss_first rss_last rss_max nsamp fds_first fds_last vm_last < <(awk -F'\t' -v w="$WARMUP_S" '
    NR > 1 && $1 >= w { if (!c++) { f = $2; ff = $5 } if ($2 > m) m = $2; l = $2; fl = $5; v = $3 }
    END { print (c ? f : 0), (c ? l : 0), m + 0, c + 0, (c ? ff : 0), (c ? fl : 0), v + 0 }' "$OUT/rss.tsv")
if (( nsamp >= 2 )); then
    (( rss_last - rss_first <= RSS_SLACK_KB )) || FAILS+=("device RssAnon grew by $((rss_last - rss_first)) kB")
    (( fds_first == fds_last )) || FAILS+=("device fd count changed: $fds_first -> $fds_last")
else
    FAILS+=("fewer than 2 RSS samples after the warm-up (run longer or lower SOAK_WARMUP_S)")
fi

ELAPSED=$(awk -v a="$START" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }')
{
    echo "minutes=$MINUTES"
    echo "elapsed_s=$ELAPSED"
    echo "tcp_g2h_gbps=$(res tcp_g2h_gbps) tcp_h2g_gbps=$(res tcp_h2g_gbps)"
    echo "udp_g2h_loss_pct=$(res udp_g2h_loss_pct) udp_h2g_loss_pct=$(res udp_h2g_loss_pct)"
    echo "device_tx_frames=$dev_tx tap_rx_packets=$tap_rx"
    echo "device_rx_frames=$dev_rx tap_tx_packets=$tap_tx tap_tx_dropped=$(( TAP1[tx_dropped] - TAP0[tx_dropped] )) tap_rx_dropped=$(( TAP1[rx_dropped] - TAP0[rx_dropped] ))"
    echo "host_incsumerrors_rise=$csum_rise guest_kernel_warnings=$(res kernel_warnings)"
    echo "anon_kb_first=$rss_first anon_kb_last=$rss_last anon_kb_max=$rss_max vmrss_kb_last=$vm_last samples=$nsamp fds=$fds_first->$fds_last"
} >"$OUT/summary.env"
echo
echo "soak (${MINUTES} min, ${ELAPSED}s in all):"
sed 's/^/  /' "$OUT/summary.env"
if (( ${#FAILS[@]} )); then
    printf 'FAIL: %s\n' "${FAILS[@]}" >&2
    die "soak failed (logs in $OUT)"
fi
log "PASS ($OUT/summary.env)"
