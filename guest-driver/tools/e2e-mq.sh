#!/usr/bin/env bash
# guest-driver/tools/e2e-mq.sh - vmso.ko with several queue pairs (ABI 2.0, MQ
# and RSS), end to end: a QEMU guest (TCG, -smp 2) on `vmso-device --queues 2`
# over vfio-user, on a multi-queue TAP in a private netns. One boot.
#
# What is checked, and against what:
#   probe      2 of 2 queue pairs, RSS on (driver log); ethtool -l max/current
#              2/2; the device's QUEUES register (ethtool -d) is 2; one MSI-X
#              vector per pair (/proc/interrupts) with its affinity hint on
#              its own CPU; XPS maps CPU 0 to tx-0 and CPU 1 to tx-1
#   RSS        ethtool -x shows the 40-byte key and a 128-entry table over
#              queues 0 and 1
#   traffic    iperf3 -P 4 guest->host, then host->guest (-R). Both pairs
#              carry traffic in both directions: the driver's per-queue
#              counters (q<N>_tx_completed, q<N>_rx_delivered) and the
#              device's own per-queue counters (QSTAT, as q<N>_dev_* in
#              ethtool -S and straight from the registers in ethtool -d);
#              received frames carry the device's hash (rx_hashed)
#   -X         `ethtool -X equal 1` steers every flow to pair 0: an iperf3 -R
#              then arrives on pair 0 only (what still reaches pair 1's TAP queue
#              is handed over: device rx_steered, reported); `-X default`
#              restores spreading
#   -L         combined 1 while up: QUEUES 1, traffic flows; -L 2 while down,
#              then up: QUEUES 2; -L 3 refused
#   judges     host Tcp InCsumErrors 0; a capture of the guest's frames on the
#              TAP (tshark, checksum validation on): no bad IPv4/TCP
#              checksum, none over the MTU; rmmod; no WARN/BUG in dmesg
#
# Exits non-zero if a check fails; leaves no netns, TAP or process behind.
# Environment: E2E_SECS (4) seconds per iperf3 -P 4 run; GUEST_TIMEOUT (300);
# CAPTURE (1); VMSO_DEVICE (default: cargo build, target/release/vmso-device);
# OUT ($RESULTS/e2e-mq).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=ci/lib/driver-e2e.sh
source "$HERE/../../ci/lib/driver-e2e.sh"

QUEUES=2
SECS=${E2E_SECS:-4}
CAPTURE=${CAPTURE:-1}
GUEST_TIMEOUT=${GUEST_TIMEOUT:-300}
GUEST_SMP=2
OUT=${OUT:-$RESULTS/e2e-mq}

driver_e2e_init "$OUT"
(( CAPTURE )) && need_cmd dumpcap tshark

# ------------------------------------------------------------------ build
driver_e2e_build "$OUT"

# ------------------------------------------------------------------ host side
TAP_MULTI_QUEUE=1 driver_e2e_host "vmsomq-$$" --queues "$QUEUES" # a multi-queue TAP
driver_e2e_iperf_server

PCAP=$OUT/tap.pcap
if (( CAPTURE )); then
    # Whole frames (the TCP checksum needs the payload) sent by the guest,
    # 1 in 8 by IPv4 ID to keep the file and tshark's time small.
    ns_bg "$OUT/dumpcap.log" timeout $((GUEST_TIMEOUT + 30)) dumpcap -q -i "$TAP" -s 0 \
        -f "src host $GUEST_IP and tcp and ip[5] & 7 = 0" -w "$PCAP"
    on_cleanup "rm -f '$PCAP'"
    sleep 1
fi

ns_counters HOST0

# ------------------------------------------------------------------ guest side
GUEST_FILES=("$REPO/guest-driver/vmso.ko")
{
    guest_vars HOST_IP GUEST_IP NET_PREFIX SECS
    cat <<'EOF'
rc=0
bad() { echo "CHECK-FAIL: $*"; rc=1; }
# regs: dump the device's registers (ethtool -d, BAR0 0x000..0x1fff) once;
# reg OFFSET: one 32-bit register of the last dump
regs() { ethtool -d "$NIC" raw on >/tmp/regs.bin; }
reg() { od -An -tu4 -j $(($1)) -N 4 /tmp/regs.bin | tr -d ' '; }
# snap NAME: ethtool -S into /tmp/S-NAME.txt; cnt NAME KEY: one counter of it
snap() { ethtool -S "$NIC" >"/tmp/S-$1.txt"; }
cnt() { awk -v k="$2:" '$1 == k { print $2 }' "/tmp/S-$1.txt"; }
# tcpext NAME: a TcpExt counter of the guest (/proc/net/netstat)
tcpext() { awk -v f="$1" '$1 == "TcpExt:" { if (!h) { for (i = 2; i <= NF; i++) n[$i] = i; h = 1 } else print $n[f] }' /proc/net/netstat; }
# delta A B KEY: KEY in snapshot B minus snapshot A
delta() { echo $(( $(cnt "$2" "$3") - $(cnt "$1" "$3") )); }
# qstat_tx Q / qstat_rx Q: QSTAT[Q] tx_packets / rx_packets (low words)
qstat_tx() { reg $((0x1000 + 0x100 * $1)); }
qstat_rx() { reg $((0x1000 + 0x100 * $1 + 8 * 16)); }
carrier() {
    i=0
    while [ "$(cat "/sys/class/net/$NIC/carrier" 2>/dev/null)" != 1 ]; do
        i=$((i + 1)); [ "$i" -gt 100 ] && return 1; sleep 0.1
    done
}
# mask FILE: a CPU mask file (hex, comma-grouped) without leading zeros
mask() { tr -d ',\n' <"$1" 2>/dev/null | sed 's/^0*//'; }
# rxfh_queues: distinct queues in the ethtool -x table (rows "   N:  q q ...")
rxfh_queues() { awk '/^ +[0-9]+:/ { for (i = 2; i <= NF; i++) s[$i] = 1 } END { for (q in s) n++; print n }'; }
combined() { ethtool -l "$NIC" | awk '$1 == "Combined:" {v = v $2 "/"} END {print v}'; }
export IPERF_TIMEOUT=$((SECS + 40))

result cpus="$(grep -c ^processor /proc/cpuinfo)"
modprobe vmso || { result modprobe=fail; exit 1; }
net_up "$GUEST_IP/$NET_PREFIX" || exit 1
ping_check "$HOST_IP" 2 || exit 1

echo "== probe"
dmesg | grep -E 'vmso|queue pair' | tail -n 5
result probe_log="$(dmesg | sed -n 's/.* \([0-9]*\) of \([0-9]*\) queue pair(s).*RSS \([a-z]*\).*/\1_\2_rss_\3/p' | tail -n 1)"
ethtool -l "$NIC"
result l0="$(combined)"
regs
result reg_queues0="$(reg 0x04C)" reg_num_queues="$(reg 0x034)" \
    drvfeat_mq_rss=$(( ($(reg 0x008) >> 13) & 3 ))
grep vmso /proc/interrupts
n=0; hints=""
for q in 0 1; do
    irq=$(awk -v n="-q$q" '$NF ~ n"$" { sub(":", "", $1); print $1 }' /proc/interrupts)
    [ -n "$irq" ] && n=$((n + 1))
    hints="$hints$(mask "/proc/irq/$irq/affinity_hint")/"
done
result qp_vectors=$n qp_hints="$hints" \
    misc_vector="$(grep -c 'vmso-.*-misc' /proc/interrupts)"
result xps="$(mask "/sys/class/net/$NIC/queues/tx-0/xps_cpus")/$(mask "/sys/class/net/$NIC/queues/tx-1/xps_cpus")"

echo "== ethtool -x"
ethtool -x "$NIC" | tee /tmp/x.txt
result x_key_bytes="$(sed -n '/RSS hash key:/{n;p}' /tmp/x.txt | tr ':' '\n' | grep -c .)" \
    x_queues="$(rxfh_queues </tmp/x.txt)" \
    x_entries="$(awk '/^ +[0-9]+:/ { n += NF - 1 } END { print n }' /tmp/x.txt)"

echo "== iperf3 -P 4, guest -> host, then host -> guest"
snap 0
iperf_run mq_tx -c "$HOST_IP" -t "$SECS" -P 4 || bad "iperf3 -P 4 TX"
snap 1
ofo0=$(tcpext TCPOFOQueue)
iperf_run mq_rx -c "$HOST_IP" -t "$SECS" -P 4 -R || bad "iperf3 -P 4 RX"
snap 2
# Segments the guest received out of order (reordering or loss upstream)
result mq_rx_ofo=$(( $(tcpext TCPOFOQueue) - ofo0 ))
regs
for q in 0 1; do
    result "tx_q${q}_tx=$(delta 0 1 "q${q}_tx_completed")" \
        "tx_q${q}_rx=$(delta 0 1 "q${q}_rx_delivered")" \
        "rx_q${q}_tx=$(delta 1 2 "q${q}_tx_completed")" \
        "rx_q${q}_rx=$(delta 1 2 "q${q}_rx_delivered")" \
        "q${q}_tx=$(delta 0 2 "q${q}_tx_completed")" \
        "q${q}_rx=$(delta 0 2 "q${q}_rx_delivered")" \
        "q${q}_dev_tx=$(delta 0 2 "q${q}_dev_tx_packets")" \
        "q${q}_dev_rx=$(delta 0 2 "q${q}_dev_rx_packets")" \
        "q${q}_dev_irqs=$(delta 0 2 "q${q}_dev_interrupts")" \
        "q${q}_qstat_tx=$(qstat_tx $q)" "q${q}_qstat_rx=$(qstat_rx $q)"
done
result rx_hashed="$(delta 0 2 rx_hashed)" rx_delivered="$(delta 0 2 rx_delivered)" \
    dev_tx_packets="$(delta 0 2 tx_packets)" dev_rx_packets="$(delta 0 2 rx_packets)" \
    dev_tx_errors="$(delta 0 2 tx_errors)" rx_csum_err="$(delta 0 2 rx_csum_err_flagged)"
grep -E '^ *q[0-9]+_' /tmp/S-2.txt

echo "== ethtool -X equal 1 (every flow on pair 0)"
ethtool -X "$NIC" equal 1 || bad "-X equal 1"
ethtool -x "$NIC" | sed -n '/table/,/key/p' | head -n 4
snap 3
iperf_run eq1_rx -c "$HOST_IP" -t 2 -P 4 -R || bad "iperf3 -R with -X equal 1"
snap 4
result eq1_q0_rx="$(delta 3 4 q0_rx_delivered)" eq1_q1_rx="$(delta 3 4 q1_rx_delivered)" \
    eq1_steered="$(delta 3 4 rx_steered)"
ethtool -X "$NIC" default || bad "-X default"
result x_default_queues="$(ethtool -x "$NIC" | rxfh_queues)"

echo "== ethtool -L"
ethtool -L "$NIC" combined 1 && result L1_up=ok || result L1_up=fail
carrier || bad "no carrier after -L 1"
regs
result l1="$(combined)" reg_queues1="$(reg 0x04C)" \
    real_txq="$(ls -d "/sys/class/net/$NIC/queues/tx-"* | wc -l)"
dmesg | grep 'channels:' | tail -n 1
ping_check "$HOST_IP" 2 || bad "no ping after -L 1"
iperf_run L1_tx -c "$HOST_IP" -t 2 -P 4 || bad "iperf3 after -L 1"
ip link set "$NIC" down
ethtool -L "$NIC" combined 2 && result L2_down=ok || result L2_down=fail
ip link set "$NIC" up
carrier || bad "no carrier after up"
regs
result l2="$(combined)" reg_queues2="$(reg 0x04C)"
ping_check "$HOST_IP" 2 || bad "no ping after -L 2 while down"
ethtool -L "$NIC" combined 3 2>&1 && result L3=accepted || result L3=refused

unload_check
exit $rc
EOF
} >"$OUT/run.sh"

# The end of the guest script and the boot have the shape of e2e-ethtool.sh's (and
# duplicates lists them): what is shared is in driver_e2e_boot and unload_check, the
# checks and counters around them are each script's own.
driver_e2e_boot "$OUT" "$SOCK"
TCP_CSUM=$(ns_counter_delta HOST0 HOST1 Tcp.InCsumErrors)
# Frames the host could not queue to the device (a TAP queue's ring was full)
TAP_DROP=$(ns_counter_delta HOST0 HOST1 tap.tx_dropped)

# ------------------------------------------------------------------ checks

(( GUEST_OK )) || FAILS+=("guest run (console: $OUT/console.log)")
check "guest CPUs" "$(res cpus)" 2
check "driver: queue pairs in use/max, RSS" "$(res probe_log)" 2_2_rss_on
check "-l combined (max/current)" "$(res l0)" 2/2/
check "device QUEUES / NUM_QUEUES" "$(res reg_queues0)/$(res reg_num_queues)" "2/$(( 2 | 2 << 16 ))"
check "DRV_FEATURES MQ and RSS" "$(res drvfeat_mq_rss)" 3
check "one vector per pair, plus misc" "$(res qp_vectors)/$(res misc_vector)" 2/1
check "affinity hints of q0/q1 (CPU masks)" "$(res qp_hints)" 1/2/
check "XPS: tx-0/tx-1 CPU masks" "$(res xps)" 1/2
check "-x: key bytes, table entries, queues used" \
    "$(res x_key_bytes)/$(res x_entries)/$(res x_queues)" 40/128/2
check "iperf3 -P 4 guest->host" "$(res mq_tx_ok)" 1
check "iperf3 -P 4 host->guest" "$(res mq_rx_ok)" 1
for q in 0 1; do
    check_gt0 "pair $q: TX completions (driver)" "$(res "q${q}_tx")"
    check_gt0 "pair $q: RX frames delivered (driver)" "$(res "q${q}_rx")"
    check_gt0 "pair $q: device tx_packets (QSTAT via -S)" "$(res "q${q}_dev_tx")"
    check_gt0 "pair $q: device rx_packets (QSTAT via -S)" "$(res "q${q}_dev_rx")"
    check_gt0 "pair $q: device interrupts (QSTAT via -S)" "$(res "q${q}_dev_irqs")"
    check_gt0 "pair $q: QSTAT tx_packets register (-d)" "$(res "q${q}_qstat_tx")"
    check_gt0 "pair $q: QSTAT rx_packets register (-d)" "$(res "q${q}_qstat_rx")"
done
check_gt0 "frames with the device's RSS hash (rx_hashed)" "$(res rx_hashed)"
check_le "frames without a hash (non-IP: ARP)" "$(( $(res rx_delivered) - $(res rx_hashed) ))" 4
check "device TX errors / RX CSUM_ERR flags" "$(res dev_tx_errors)/$(res rx_csum_err)" 0/0
check "-X equal 1: iperf3 -R" "$(res eq1_rx_ok)" 1
check "-X equal 1: nothing delivered on pair 1" "$(res eq1_q1_rx)" 0
check_gt0 "-X equal 1: frames on pair 0" "$(res eq1_q0_rx)"
# Not checked: how many reads pair 1's worker hands over. The device sends each flow
# on the TAP queue of the pair RSS picks for its replies, so the host mostly answers
# on pair 0's queue already and few (often no) frames need steering.
log "-X equal 1: device rx_steered $(res eq1_steered)"
check "-X default: table over 2 queues again" "$(res x_default_queues)" 2
check "-L combined 1 while up" "$(res L1_up)" ok
check "-l after -L 1" "$(res l1)" 2/1/
check "device QUEUES after -L 1" "$(res reg_queues1)" 1
check "netdev TX queues after -L 1" "$(res real_txq)" 1
check "iperf3 on one pair" "$(res L1_tx_ok)" 1
check "-L combined 2 while down" "$(res L2_down)" ok
check "-l and device QUEUES after up" "$(res l2)$(res reg_queues2)" 2/2/2
check "-L combined 3 (over the max)" "$(res L3)" refused
check "host Tcp InCsumErrors" "$TCP_CSUM" 0
check "rmmod" "$(res rmmod)" ok
check "no WARN/BUG in dmesg" "$(res dmesg_clean)" 1

cap_summary="capture off"
if (( CAPTURE )); then
    log "checking the capture with tshark"
    sleep 0.5
    timeout 300 tshark -r "$PCAP" -n -o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE \
        -o tcp.analyze_sequence_numbers:FALSE -T fields \
        -e frame.len -e ip.checksum.status -e tcp.checksum.status \
        2>"$OUT/tshark.err" >"$OUT/tshark.tsv" || warn "tshark failed (see $OUT/tshark.err)"
    # frames, bad IPv4 csum, bad TCP csum, TCP csum unverified, over 1514 B
    read -r cn cip ctcp cunv cbig < <(awk -F'\t' '
        { n++; if ($2 == "0") ip++; if ($3 == "0") t++; if ($3 != "1") u++; if ($1 > 1514) b++ }
        END { printf "%d %d %d %d %d\n", n, ip, t, u, b }' "$OUT/tshark.tsv")
    cap_summary="capture (guest TCP, 1 in 8): $cn frames, bad IP csum $cip, bad TCP csum $ctcp, unverified $cunv, over MTU $cbig"
    check_gt0 "capture: guest TCP frames" "$cn"
    check "capture: bad IP/TCP csum, unverified, over MTU" "$cip/$ctcp/$cunv/$cbig" 0/0/0/0
fi

{
    echo "secs=$SECS"
    echo "tcp_csum_errors=$TCP_CSUM"
    echo "tap_tx_dropped=$TAP_DROP"
    echo "capture=\"$cap_summary\""
    echo "fails=${#FAILS[@]}"
    cat "$OUT/results.env"
} >"$OUT/summary.env"
log "iperf3 -P 4: guest->host $(res mq_tx_gbps) Gbit/s, host->guest $(res mq_rx_gbps) Gbit/s"
log "per pair (driver TX completions / RX frames): q0 $(res q0_tx)/$(res q0_rx), q1 $(res q1_tx)/$(res q1_rx)"
log "host->guest: sender retransmissions $(res mq_rx_retr), guest out-of-order segments $(res mq_rx_ofo), host TAP tx_dropped (whole run) $TAP_DROP"
log "$cap_summary"
if (( ${#FAILS[@]} )); then
    die "${#FAILS[@]} check(s) failed: ${FAILS[*]} (logs in $OUT)"
fi
log "PASS: multi-queue end to end (logs in $OUT)"
