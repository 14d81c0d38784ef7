#!/usr/bin/env bash
# guest-driver/tools/e2e-zerocopy-tso.sh - driver-side TSO and zero-copy send end to
# end, in a QEMU guest (TCG) whose NIC is vmso-device over vfio-user, on a TAP in a
# private netns:
#
#   TSO by the device or by the driver (TX): iperf3 guest -> host with
#     vmso.ko tso=device, tso=driver, tso=off, tso=driver tso_csum=driver and
#     tso=driver dma_mode=phys;
#   zero-copy send (DMA from user-space virtual addresses): vmso-zc sends through
#     /dev/vmso0 (zero-copy, USO) and through a UDP socket (copy), checked byte by byte by
#     vmso-zc-recv on the host; EFAULT on bad pointers; buffer reuse while in
#     flight; munmap, process exit, ifdown and PCI unbind with submissions in
#     flight; a TCP template (TSO from user VA);
#   rmmod after each phase.
# Independent judges: tshark on a capture of the TAP (IP/TCP/UDP checksums, frame
# sizes, retransmissions) and the host netns's Tcp/Udp InCsumErrors.
#
# Prints RESULT lines and a summary; exits non-zero if a check fails. Leaves no
# netns, TAP, process or pcap behind (ci/lib/netns.sh cleanup trap).
#
# Environment (defaults): E2E_SECS (4) iperf3 seconds per mode; ZC_BYTES (256M),
# ZC_CHUNK (64K), ZC_WINDOW (8), ZC_MSS (1448); REUSE_N (200) reuse-test
# submissions; TCP_ZC_BYTES (8M); CAPTURE (1); KEEP_PCAP (0); VMSO_DEVICE (build
# with cargo and use target/release/vmso-device); GUEST_TIMEOUT (400);
# OUT ($RESULTS/e2e-zerocopy-tso). GUEST_BOOT=bzimage GUEST_CPU=max runs the guest
# with 5-level paging (see ci/README.md).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=ci/lib/driver-e2e.sh
source "$HERE/../../ci/lib/driver-e2e.sh"

SECS=${E2E_SECS:-4}
ZC_BYTES=${ZC_BYTES:-256M}
ZC_CHUNK=${ZC_CHUNK:-64K}
ZC_WINDOW=${ZC_WINDOW:-8}
ZC_MSS=${ZC_MSS:-1448}
REUSE_N=${REUSE_N:-200}
TCP_ZC_BYTES=${TCP_ZC_BYTES:-8M}
CAPTURE=${CAPTURE:-1}
KEEP_PCAP=${KEEP_PCAP:-0}
GUEST_TIMEOUT=${GUEST_TIMEOUT:-400}
OUT=${OUT:-$RESULTS/e2e-zerocopy-tso}
ZC_PORT=9000
ZC_SPORT=40000 # +1 copy, +2 reuse test, +3 munmap test, +4 TCP template
NOCSUM_SPORT=$((ZC_SPORT + 20)) # UDP frames without checksum offload (the tool uses +0..+8)

driver_e2e_init "$OUT"
(( CAPTURE )) && need_cmd dumpcap tshark

# ------------------------------------------------------------------ build
driver_e2e_build "$OUT" all
RECV=$REPO/guest-driver/tools/vmso-zc-recv

# ------------------------------------------------------------------ host side
driver_e2e_host "vmsozc-$$"

# One iperf3 server per TSO mode, so that the capture tells them apart.
MODES="device driver off drvcsum drvphys"
declare -A PORT=([device]=5201 [driver]=5202 [off]=5203 [drvcsum]=5204 [drvphys]=5205)
for m in $MODES; do
    ns_bg "$OUT/iperf3-$m.log" timeout $((GUEST_TIMEOUT + 30)) \
        iperf3 -s -B "$HOST_IP" -p "${PORT[$m]}" --forceflush
done
for m in $MODES; do
    wait_tcp_listen "${PORT[$m]}" 10 || die "iperf3 server on ${PORT[$m]} did not start"
done
ns_bg "$OUT/recv.log" "$RECV" --bind "$HOST_IP" --port "$ZC_PORT" \
    --timeout $((GUEST_TIMEOUT + 30)) --idle $((GUEST_TIMEOUT + 30))
RECV_PID=$BG_PID
PCAP=$OUT/tap.pcap
if (( CAPTURE )); then
    # Whole frames (L4 checksums need the payload), only the flows checked,
    # and only frames whose IP ID is a multiple of 8: a 1-in-8 sample keeps
    # the pcap and tshark's time small (a full capture is ~2 GB).
    ns_bg "$OUT/dumpcap.log" timeout $((GUEST_TIMEOUT + 30)) dumpcap -q -i "$TAP" -s 0 \
        -f "(tcp port ${PORT[driver]} or tcp port ${PORT[drvcsum]} or tcp port ${PORT[drvphys]} or (udp port $ZC_PORT and src port $ZC_SPORT) or tcp port $ZC_PORT) and ip[5] & 7 = 0" \
        -w "$PCAP"
    (( KEEP_PCAP )) || on_cleanup "rm -f '$PCAP'"
    sleep 1
fi
ns_counters HOST0

# ------------------------------------------------------------------ guest side
GUEST_FILES=("$REPO/guest-driver/vmso.ko" "$REPO/guest-driver/tools/vmso-zc:/usr/bin/vmso-zc")
cat >"$OUT/run.sh" <<EOF
rc=0
export IPERF_TIMEOUT=$((SECS + 30))
first=1
for mode in $MODES; do
    case \$mode in
        device) args="tso=device" port=${PORT[device]} ;;
        driver) args="tso=driver" port=${PORT[driver]} ;;
        off) args="tso=off" port=${PORT[off]} ;;
        drvcsum) args="tso=driver tso_csum=driver" port=${PORT[drvcsum]} ;;
        drvphys) args="tso=driver dma_mode=phys" port=${PORT[drvphys]} ;;
    esac
    modprobe vmso \$args || { result modprobe_\$mode=fail; dmesg | tail -20; exit 1; }
    net_up $GUEST_IP/$NET_PREFIX || { dmesg | tail -20; exit 1; }
    if [ \$first = 1 ]; then ping_check $HOST_IP 3 || exit 1; first=0; fi
    ethtool -k "\$NIC" | grep -E "tcp-segmentation-offload|tx-checksumming"
    iperf_run tx_\$mode -c $HOST_IP -p \$port -t $SECS || rc=1
    ethtool -S "\$NIC" | grep -E " (tx_tso_packets|tx_tso_segments|tx_driver_tso_[a-z_]+|tx_errors|page_faults|tx_queue_stops|tx_va_fallbacks):"
    result "\$(ethtool -S "\$NIC" | awk -v m=\$mode '\$1 == "tx_driver_tso_packets:" { p = \$2 } \$1 == "tx_driver_tso_segments:" { s = \$2 } \$1 == "tx_errors:" { e = \$2 } END { printf "%s_drv_tso_packets=%s %s_drv_tso_segments=%s %s_tx_errors=%s", m, p, m, s, m, e }')"
    ip link set "\$NIC" down
    rmmod vmso && result rmmod_\$mode=ok || { result rmmod_\$mode=fail; rc=1; }
done

modprobe vmso || exit 1
net_up $GUEST_IP/$NET_PREFIX || exit 1
ping_check $HOST_IP 2 || exit 1
ls -l /dev/vmso0
vmso-zc --dev /dev/vmso0 --dst $HOST_IP --dport $ZC_PORT --sport $ZC_SPORT --proto udp \\
    --bytes $ZC_BYTES --chunk $ZC_CHUNK --window $ZC_WINDOW --mss $ZC_MSS \\
    --efault-test --reuse-test $REUSE_N --munmap-test --exit-test --ifdown-test --timeout \$(( $GUEST_TIMEOUT / 2 )) || rc=1
# Plain UDP/IPv4 frames without checksum offload: the driver writes each
# IPv4 header checksum (its keys get a nocsum_ prefix)
vmso-zc --dev /dev/vmso0 --dst $HOST_IP --dport $ZC_PORT --sport $NOCSUM_SPORT --proto udp \\
    --mode frames --no-csum --no-copy --bytes 4M --chunk $ZC_CHUNK --window $ZC_WINDOW --mss $ZC_MSS \\
    --timeout 60 >/tmp/nocsum.out || rc=1
sed '/^RESULT /s/ \\([a-z_]*=\\)/ nocsum_\\1/g' /tmp/nocsum.out
vmso-zc --dev /dev/vmso0 --dst $HOST_IP --dport $ZC_PORT --sport $ZC_SPORT --proto tcp \\
    --bytes $TCP_ZC_BYTES --chunk $ZC_CHUNK --window $ZC_WINDOW --mss $ZC_MSS --timeout 60 || rc=1
ethtool -S "\$NIC" | grep -E " (zc_[a-z_]+|tx_uso_packets|tx_tso_packets|iotlb_[a-z]+|page_faults|tx_errors):"
result "\$(ethtool -S "\$NIC" | awk '\$1 ~ /^zc_(submits|completions|faults|errors|invalidate_waits|iotlb_invalidations):\$/ { sub(":", "", \$1); printf "%s=%s ", \$1, \$2 }')"
# PCI unbind while the tool's file has a window in flight, then rebind
vmso-zc --dev /dev/vmso0 --dst $HOST_IP --dport $ZC_PORT --sport $ZC_SPORT --no-zc --no-copy \\
    --chunk $ZC_CHUNK --window $ZC_WINDOW --mss $ZC_MSS --unbind-test --timeout 60 || rc=1
NIC=\$(first_nic 10) && ip link set "\$NIC" up
ls -l /dev/vmso*
ip link set "\$NIC" down
rmmod vmso && result rmmod_zc=ok || { result rmmod_zc=fail; rc=1; }
# Kernel splats, or anything the driver logs as a problem
if dmesg | grep -E "WARNING:|BUG:|Oops|Call Trace|vmso.*([Ee]rror|[Ww]arn|[Ff]ault|still waiting)"; then
    result dmesg_clean=0
    rc=1
else
    result dmesg_clean=1
fi
exit \$rc
EOF

driver_e2e_boot "$OUT" "$SOCK"

# ------------------------------------------------------------------ host checks
kill -INT "$RECV_PID" 2>/dev/null || true
bg_wait "$RECV_PID" 50
sleep 1 # let dumpcap flush
ns_counters HOST1
TCP_CSUM=$(ns_counter_delta HOST0 HOST1 Tcp.InCsumErrors)
UDP_CSUM=$(ns_counter_delta HOST0 HOST1 Udp.InCsumErrors)

# cpu_s_per_gb NAME: the iperf3 client's CPU-seconds per GB sent: its CPU use (%) over
# the sender's Gbit/s
cpu_s_per_gb() {
    awk -v cpu="$(res "${1}_cpu_pct")" -v tx="$(res "${1}_sender_gbps")" \
        'BEGIN { printf "%.3f", (tx > 0 ? cpu / 100 * 8 / tx : 0) }'
}
rx() { # FLOW KEY: from vmso-zc-recv's per-flow RESULT line ("" FLOW: the total line)
    awk -v f="$1" -v k="$2" '$1 == "RESULT" {
            fl = ""; for (i = 2; i <= NF; i++) if ($i ~ /^flow=/) fl = substr($i, 6)
            if (fl != f) next
            for (i = 2; i <= NF; i++) if (index($i, k "=") == 1) v = substr($i, length(k) + 2)
        } END { print (v == "" ? "?" : v) }' "$OUT/recv.log"
}

(( GUEST_OK )) || FAILS+=("guest run (console: $GUEST_LOG)")
for m in $MODES; do
    check "iperf3 TX with $m" "$(res "tx_${m}_ok")" 1
    check "rmmod after $m" "$(res "rmmod_$m")" ok
done
check_gt0 "driver TSO used in tso=driver" "$(res driver_drv_tso_packets)"
check "driver TSO not used in tso=device" "$(res device_drv_tso_packets)" 0
check "vmso-zc UDP run" "$(res zc_tool_ok)" 1
check "EFAULT on bad pointers" "$(res efault)" ok
check "munmap of a buffer in flight" "$(res munmap_status)" 0
check "exit with submissions in flight" "$(res exit_test)" ok
check "ifdown with submissions in flight" "$(res ifdown_test)" ok
check "PCI unbind with a file open" "$(res unbind_test)" ok
check "TCP template run" "$(res tcp_zc_errors)" 0
check "rmmod after zero-copy" "$(res rmmod_zc)" ok
check "no driver warnings in dmesg" "$(res dmesg_clean)" 1
zc_bytes=$(res zc_bytes)
check "receiver got every zero-copy byte" "$(rx $ZC_SPORT rx_bytes)" "$zc_bytes"
check "zero-copy datagrams all valid" "$(rx $ZC_SPORT rx_bad)/$(rx $ZC_SPORT rx_lost)/$(rx $ZC_SPORT rx_new)/$(rx $ZC_SPORT rx_mixed)" "0/0/0/0"
check "UDP frames without checksum offload: receiver got every byte" "$(rx $NOCSUM_SPORT rx_bytes)" "$(res nocsum_zc_bytes)"
check "UDP frames without checksum offload: all valid" "$(rx $NOCSUM_SPORT rx_bad)/$(rx $NOCSUM_SPORT rx_lost)" "0/0"
check "copy-path datagrams valid" "$(rx $((ZC_SPORT + 1)) rx_bad)" 0
check "reuse test: no foreign bytes" "$(rx $((ZC_SPORT + 2)) rx_bad)" 0
check "munmap test datagrams valid" "$(rx $((ZC_SPORT + 3)) rx_bad)/$(rx $((ZC_SPORT + 3)) rx_lost)" "0/0"
check "host TCP InCsumErrors" "$TCP_CSUM" 0

cap_summary=""
if (( CAPTURE )); then
    log "checking the capture with tshark"
    # Sampled frames: sequence analysis (retransmissions) would be noise, and
    # it is the slow part; retransmissions come from the iperf3 reports.
    timeout 600 tshark -r "$PCAP" -o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE -o udp.check_checksum:TRUE \
        -o tcp.analyze_sequence_numbers:FALSE \
        -T fields -e tcp.srcport -e tcp.dstport -e udp.srcport -e ip.checksum.status \
        -e tcp.checksum.status -e udp.checksum.status -e frame.len -e tcp.analysis.retransmission \
        2>"$OUT/tshark.err" >"$OUT/tshark.tsv" || warn "tshark failed (see $OUT/tshark.err)"
    # Columns: flow name, frames, bad IP csum, bad L4 csum, unverified L4, over 1514 B, retransmissions
    awk -F'\t' -v d="${PORT[device]}" -v r="${PORT[driver]}" -v c="${PORT[drvcsum]}" -v ph="${PORT[drvphys]}" \
        -v z="$ZC_PORT" -v zs="$ZC_SPORT" '
        {
            if ($2 == d) f = "tso_device"; else if ($2 == r) f = "tso_driver"
            else if ($2 == c) f = "tso_driver_csum"; else if ($2 == ph) f = "tso_driver_phys"
            else if ($2 == z) f = "zc_tcp_template"
            else if ($3 == zs) f = "zc_udp"; else next
            n[f]++
            if ($4 == 0) ipb[f]++
            if ($5 == 0 || $6 == 0) l4b[f]++
            if (($5 != "" && $5 != 1) || ($6 != "" && $6 != 1)) unv[f]++
            if ($7 > 1514) big[f]++
            if ($8 != "") re[f]++
        }
        END { for (f in n) printf "%s %d %d %d %d %d %d\n", f, n[f], ipb[f], l4b[f], unv[f], big[f], re[f] }' \
        "$OUT/tshark.tsv" | sort >"$OUT/capture.txt"
    while read -r f n ipb l4b unv big re; do
        printf 'RESULT cap_%s_frames=%s cap_%s_bad_ip_csum=%s cap_%s_bad_l4_csum=%s cap_%s_unverified=%s cap_%s_over_mtu=%s cap_%s_retrans=%s\n' \
            "$f" "$n" "$f" "$ipb" "$f" "$l4b" "$f" "$unv" "$f" "$big" "$f" "$re"
        cap_summary+="  $f: $n frames, bad IP csum $ipb, bad L4 csum $l4b, unverified $unv, over MTU $big, retrans $re"$'\n'
        check "capture $f: checksums and sizes" "$ipb/$l4b/$unv/$big" "0/0/0/0"
    done <"$OUT/capture.txt"
    for f in tso_driver tso_driver_csum tso_driver_phys zc_udp zc_tcp_template; do
        check_cmd "capture has $f frames" grep -q "^$f " "$OUT/capture.txt"
    done
fi

# ------------------------------------------------------------------ summary
{
    for m in $MODES; do
        printf 'RESULT tso_%s_gbps=%s tso_%s_cpu_s_per_gb=%s tso_%s_retr=%s\n' \
            "$m" "$(res "tx_${m}_gbps")" "$m" "$(cpu_s_per_gb "tx_$m")" "$m" "$(res "tx_${m}_retr")"
    done
    printf 'RESULT zc_gbps=%s zc_cpu_s_per_gb=%s zc_sys_cpu_s_per_gb=%s copy_gbps=%s copy_cpu_s_per_gb=%s copy_sys_cpu_s_per_gb=%s\n' \
        "$(res zc_gbps)" "$(res zc_cpu_s_per_gb)" "$(res zc_sys_cpu_s_per_gb)" \
        "$(res copy_gbps)" "$(res copy_cpu_s_per_gb)" "$(res copy_sys_cpu_s_per_gb)"
    printf 'RESULT rx_bytes=%s rx_bad=%s zc_rx_bytes=%s zc_rx_lost=%s copy_rx_bytes=%s copy_rx_lost=%s\n' \
        "$(rx "" rx_bytes)" "$(rx "" rx_bad)" "$(rx $ZC_SPORT rx_bytes)" "$(rx $ZC_SPORT rx_lost)" \
        "$(rx $((ZC_SPORT + 1)) rx_bytes)" "$(rx $((ZC_SPORT + 1)) rx_lost)"
    printf 'RESULT reuse_dgrams=%s reuse_new=%s reuse_mixed=%s reuse_bad=%s reuse_lost=%s udp_in_csum_errors=%s tcp_in_csum_errors=%s\n' \
        "$(rx $((ZC_SPORT + 2)) rx_dgrams)" "$(rx $((ZC_SPORT + 2)) rx_new)" "$(rx $((ZC_SPORT + 2)) rx_mixed)" \
        "$(rx $((ZC_SPORT + 2)) rx_bad)" "$(rx $((ZC_SPORT + 2)) rx_lost)" "$UDP_CSUM" "$TCP_CSUM"
    printf 'RESULT munmap_ms=%s efault=%s exit_test=%s ifdown_test=%s ifdown_aborted=%s zc_invalidate_waits=%s zc_iotlb_invalidations=%s\n' \
        "$(res munmap_ms)" "$(res efault)" "$(res exit_test)" "$(res ifdown_test)" "$(res ifdown_aborted)" \
        "$(res zc_invalidate_waits)" "$(res zc_iotlb_invalidations)"
} | tee "$OUT/summary.env"

cat <<EOF

e2e-zerocopy-tso summary (guest TCG, ${SECS}s per iperf3 run, $ZC_BYTES zero-copy; logs in $OUT)
  iperf3 TX Gbit/s (sender CPU s/GB):  tso=device $(res tx_device_gbps) ($(cpu_s_per_gb tx_device))  tso=driver $(res tx_driver_gbps) ($(cpu_s_per_gb tx_driver))  tso=off $(res tx_off_gbps) ($(cpu_s_per_gb tx_off))  tso=driver,tso_csum=driver $(res tx_drvcsum_gbps) ($(cpu_s_per_gb tx_drvcsum))  tso=driver,dma_mode=phys $(res tx_drvphys_gbps) ($(cpu_s_per_gb tx_drvphys))
  UDP send, Gbit/s and process CPU s/GB: zero-copy $(res zc_gbps) / $(res zc_cpu_s_per_gb)   copy (sendto) $(res copy_gbps) / $(res copy_cpu_s_per_gb)
  receiver: zero-copy flow $(rx $ZC_SPORT rx_bytes) bytes, bad $(rx $ZC_SPORT rx_bad), lost $(rx $ZC_SPORT rx_lost); copy flow lost $(rx $((ZC_SPORT + 1)) rx_lost)
  buffer reuse while in flight: $(rx $((ZC_SPORT + 2)) rx_dgrams) datagrams, new $(rx $((ZC_SPORT + 2)) rx_new), mixed $(rx $((ZC_SPORT + 2)) rx_mixed), bad $(rx $((ZC_SPORT + 2)) rx_bad), dropped by checksum $(rx $((ZC_SPORT + 2)) rx_lost) (host Udp InCsumErrors $UDP_CSUM)
$cap_summary
EOF
if (( ${#FAILS[@]} )); then
    printf 'FAILED: %s\n' "${FAILS[@]}" >&2
    die "${#FAILS[@]} check(s) failed (logs in $OUT)"
fi
log "PASS"
