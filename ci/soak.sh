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

vmso_prepare

START=$(now)
OUT=$RESULTS/soak-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
netns_setup "vmso-$$"
SOCK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/vmso-soak.XXXXXX")
on_cleanup "rm -rf '$SOCK_DIR'"
SOCK=$SOCK_DIR/vmso.sock
log "netns $NS, $TAP = $HOST_IP/$NET_PREFIX; ${MINUTES} min of TCP + UDP ($UDP_RATE) both ways; logs in $OUT"

ns_counters HOST0

vmso_device_start "$OUT/device.log" "$SOCK" --mac "$VMSO_MAC" --log-level info --once \
    || die "vmso-device did not create its socket (see $OUT/device.log)"
DEV_PID=$VMSO_DEV_PID

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
timeout $((SECS + 60)) iperf3 -J -c $HOST_IP -p 5201 -t $SECS --bidir >/tmp/tcp.json 2>/tmp/tcp.err &
tcp=\$!
timeout $((SECS + 60)) iperf3 -J -c $HOST_IP -p 5202 -u -b $UDP_RATE -l $UDP_LEN -t $SECS --bidir >/tmp/udp.json 2>/tmp/udp.err &
udp=\$!
wait \$tcp
tcp_rc=\$?
wait \$udp
udp_rc=\$?
cat /tmp/tcp.err /tmp/udp.err
# The reports, for the host: tcp_gbps (guest -> host) and tcp_reverse_gbps, udp_loss_pct and
# udp_reverse_loss_pct (ci/lib/iperf-json.py).
iperf_json tcp \$tcp_rc /tmp/tcp.json || rc=1
iperf_json udp \$udp_rc /tmp/udp.json || rc=1
# Let the last frames settle (coalescer timers, TIME_WAIT ACKs), then the counters.
sleep 3
ethtool_stats_results || rc=1
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
boot_guest "$OUT/run.sh" -device "$(vfio_user_device_json "$SOCK")" || ok=0
guest_results >"$OUT/results.env" 2>/dev/null || true
ns_counters HOST1
vmso_device_wait_exit 10
dev_rc=$VMSO_DEV_RC

FAILS=()
check() { # COND_RC MSG
    (( $1 == 0 )) || FAILS+=("$2")
}
res() { guest_result "$1" 2>/dev/null || echo "?"; }
num() { local v; v=$(res "$1"); [[ "$v" =~ ^[0-9]+$ ]] && echo "$v" || echo -1; }
(( ok )) || FAILS+=("guest run failed (console $OUT/console.log)")
[[ "$(res tcp_ok)/$(res udp_ok)" == 1/1 ]] || FAILS+=("iperf3 failed: TCP ok=$(res tcp_ok), UDP ok=$(res udp_ok)")
[[ "$dev_rc" == 0 ]] || FAILS+=("vmso-device exited with status $dev_rc")
grep -q panicked "$OUT/device.log" && FAILS+=("vmso-device panicked")

csum_rise=$(ns_csum_rise HOST0 HOST1)
(( csum_rise == 0 )) || FAILS+=("host InCsumErrors rose by $csum_rise")
[[ "$(res kernel_warnings)" == 0 ]] || FAILS+=("guest kernel warnings: $(res kernel_warnings)")

dev_tx=$(num stat_tx_frames)
dev_rx=$(( $(num stat_rx_packets) + $(num stat_rx_coalesced) + $(num stat_rx_dropped) + $(num stat_rx_vnet_bad) ))
tap_rx=$(ns_counter_delta HOST0 HOST1 tap.rx_packets)
tap_tx=$(ns_counter_delta HOST0 HOST1 tap.tx_packets)
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
    echo "tcp_g2h_gbps=$(res tcp_gbps) tcp_h2g_gbps=$(res tcp_reverse_gbps)"
    echo "udp_g2h_loss_pct=$(res udp_loss_pct) udp_h2g_loss_pct=$(res udp_reverse_loss_pct)"
    echo "device_tx_frames=$dev_tx tap_rx_packets=$tap_rx"
    echo "device_rx_frames=$dev_rx tap_tx_packets=$tap_tx tap_tx_dropped=$(ns_counter_delta HOST0 HOST1 tap.tx_dropped) tap_rx_dropped=$(ns_counter_delta HOST0 HOST1 tap.rx_dropped)"
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
