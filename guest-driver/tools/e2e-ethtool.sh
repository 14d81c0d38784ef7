#!/usr/bin/env bash
# guest-driver/tools/e2e-ethtool.sh - vmso.ko driven by ethtool, in a QEMU guest
# (TCG) on vmso-device over vfio-user, on a TAP in a private netns. One boot;
# each ethtool command is checked against what the device itself reports:
# its registers, read back through `ethtool -d` (RX_SIZE, TX_SIZE, ITR,
# DRV_FEATURES), its STAT[] counters in `ethtool -S`, and traffic.
#
#   -i   driver vmso, firmware "abi <VERSION>", the PCI bus address
#   -g/-G  defaults; -G rx 512 tx 2048 while up: -g, RX_SIZE/TX_SIZE, the
#        driver's log line, ping and iperf3 both ways on the new rings;
#        bad sizes refused with the rings unchanged; -G while down applied
#        at the next up
#   -c/-C  rx-usecs and tx-usecs are the one ITR; conflicting or unsupported
#        values refused
#   -K   rx-gro-hw toggles DRV_FEATURES.LRO; it stays on with the NIC in a
#        bridge and with IPv4 forwarding on, and superpackets still arrive
#        (the driver's rx_superpackets grow during an iperf3 -R through br0: the
#        host's superpackets and the device's coalesced ones);
#        tx-udp-segmentation: a UDP_SEGMENT socket makes the device do USO
#        (tx_uso_packets), and the host gets every datagram with good
#        checksums (netns Udp NoPorts, InCsumErrors)
#   -l/-L  1 combined channel; -L combined 1 accepted, 2 refused
#   -S   the new counters present; msglvl set and read back
#   rmmod, and no WARN/BUG in dmesg.
#
# Exits non-zero if a check fails; leaves no netns, TAP or process behind.
# Environment: E2E_SECS (3) seconds per iperf3 run; GUEST_TIMEOUT (240);
# VMSO_DEVICE (default: cargo build, target/release/vmso-device);
# OUT ($RESULTS/e2e-ethtool).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=ci/lib/driver-e2e.sh
source "$HERE/../../ci/lib/driver-e2e.sh"

SECS=${E2E_SECS:-3}
GUEST_TIMEOUT=${GUEST_TIMEOUT:-240}
OUT=${OUT:-$RESULTS/e2e-ethtool}
# shellcheck disable=SC2034 # used in the guest script only (guest_vars)
UDP_PORT=9100
UDP_SENDS=200   # 200 sends of 32 datagrams of 1400 bytes
UDP_SEGS=32

driver_e2e_init "$OUT"

# ------------------------------------------------------------------ build
driver_e2e_build "$OUT" udp-gso-send

# The bridge test needs bridge.ko and its dependencies from the guest kernel.
BR_MODS=()
for m in llc stp bridge; do
    f=$(find "$GUEST_MODULES/kernel/net" -name "$m.ko" | head -n 1)
    [[ -n "$f" ]] || die "$m.ko not in $GUEST_MODULES"
    BR_MODS+=("$f")
done

# ------------------------------------------------------------------ host side
driver_e2e_host "vmsoeth-$$"
driver_e2e_iperf_server

ns_counters HOST0

# ------------------------------------------------------------------ guest side
GUEST_FILES=("$REPO/guest-driver/vmso.ko" "${BR_MODS[@]}"
    "$REPO/guest-driver/tools/udp-gso-send:/usr/bin/udp-gso-send")
{
    guest_vars HOST_IP GUEST_IP NET_PREFIX SECS UDP_PORT UDP_SENDS UDP_SEGS
    cat <<'EOF'
rc=0
bad() { echo "CHECK-FAIL: $*"; rc=1; }
# reg OFFSET: a device register, as ethtool -d dumps it (BAR0 0x000..0x3ff)
reg() { ethtool -d "$NIC" raw on | od -An -tu4 -j $(($1)) -N 4 | tr -d ' '; }
# feat NAME: on/off of an ethtool -k feature
feat() { ethtool -k "$NIC" | sed -n "s/^$1: \([a-z]*\).*/\1/p"; }
# cnt NAME: an ethtool -S counter
cnt() { ethtool -S "$NIC" | awk -v k="$1:" '$1 == k { print $2 }'; }
carrier() {
    i=0
    while [ "$(cat "/sys/class/net/$1/carrier" 2>/dev/null)" != 1 ]; do
        i=$((i + 1)); [ "$i" -gt 100 ] && return 1; sleep 0.1
    done
}

modprobe vmso || { result modprobe=fail; exit 1; }
net_up "$GUEST_IP/$NET_PREFIX" || exit 1
ping_check "$HOST_IP" 2 || exit 1

echo "== ethtool -i"
ethtool -i "$NIC" | tee /tmp/i.txt
result drv_name="$(sed -n 's/^driver: //p' /tmp/i.txt)" \
    drv_fw="$(sed -n 's/^firmware-version: //p' /tmp/i.txt | tr ' ' _)" \
    drv_bus="$(sed -n 's/^bus-info: //p' /tmp/i.txt)" \
    drv_bus_sysfs="$(basename "$(readlink "/sys/class/net/$NIC/device")")"
result reg_version="$(reg 0x000)"

echo "== ethtool -g (defaults)"
ethtool -g "$NIC" | tee /tmp/g0.txt
result g0="$(awk '/^RX:/ {v = v $2 "/"} /^TX:/ {v = v $2 "/"} END {print v}' /tmp/g0.txt)"
result reg0_rx_size="$(reg 0x148)" reg0_tx_size="$(reg 0x108)"

echo "== ethtool -G rx 512 tx 2048 (running)"
ethtool -G "$NIC" rx 512 tx 2048 && result G_up=ok || result G_up=fail
ethtool -g "$NIC" | tee /tmp/g1.txt
result g1="$(awk '/^RX:/ {v = v $2 "/"} /^TX:/ {v = v $2 "/"} END {print v}' /tmp/g1.txt)"
result reg1_rx_size="$(reg 0x148)" reg1_tx_size="$(reg 0x108)"
dmesg | grep 'rings: TX' | tail -n 1
result G_log="$(dmesg | sed -n 's/.*rings: TX \([0-9]*\) RX \([0-9]*\) (device TX_SIZE \([0-9]*\) RX_SIZE \([0-9]*\)).*/\1_\2_\3_\4/p' | tail -n 1)"
carrier "$NIC" || bad "no carrier after -G"
ping_check "$HOST_IP" 2 || bad "no ping after -G"
export IPERF_TIMEOUT=$((SECS + 30))
iperf_run G_tx -c "$HOST_IP" -t "$SECS" || bad "iperf3 TX after -G"
c0=$(cnt rx_superpackets)
iperf_run G_rx -c "$HOST_IP" -t "$SECS" -R || bad "iperf3 RX after -G"
result G_rx_superpackets=$(( $(cnt rx_superpackets) - c0 ))

echo "== ethtool -G: refused sizes"
n=0
for a in "rx 500" "rx 32" "rx 8192" "tx 16" "tx 1000"; do
    # shellcheck disable=SC2086 # "rx 500" is two words for ethtool
    if ethtool -G "$NIC" $a 2>&1; then echo "accepted: -G $a"; else n=$((n + 1)); fi
done
result G_refused=$n reg2_rx_size="$(reg 0x148)" reg2_tx_size="$(reg 0x108)"

echo "== ethtool -G while down"
ip link set "$NIC" down
ethtool -G "$NIC" rx 128 tx 1024 && result G_down=ok || result G_down=fail
ip link set "$NIC" up
carrier "$NIC" || bad "no carrier after up"
result reg3_rx_size="$(reg 0x148)" reg3_tx_size="$(reg 0x108)"
ping_check "$HOST_IP" 2 || bad "no ping after down/-G/up"

echo "== ethtool -c/-C"
ethtool -c "$NIC"
ethtool -C "$NIC" rx-usecs 50 || bad "-C rx-usecs 50"
result C_rx50="$(ethtool -c "$NIC" | awk '$1 == "rx-usecs:" {r = $2} $1 == "tx-usecs:" {t = $2} END {print r "/" t}')" reg_itr50="$(reg 0x030)"
ethtool -C "$NIC" tx-usecs 20 || bad "-C tx-usecs 20"
result C_tx20="$(ethtool -c "$NIC" | awk '$1 == "rx-usecs:" {r = $2} $1 == "tx-usecs:" {t = $2} END {print r "/" t}')" reg_itr20="$(reg 0x030)"
n=0
ethtool -C "$NIC" rx-usecs 10 tx-usecs 30 || n=$((n + 1))
ethtool -C "$NIC" rx-frames 8 || n=$((n + 1))
ethtool -C "$NIC" rx-usecs 20000 || n=$((n + 1))
result C_refused=$n reg_itr_after="$(reg 0x030)"
ethtool -C "$NIC" rx-usecs 0 || bad "-C rx-usecs 0"

echo "== ethtool -k/-K"
ethtool -k "$NIC" | grep -E '^(rx-gro-hw|large-receive-offload|tx-udp-segmentation|generic-receive-offload):'
result K0_gro_hw="$(feat rx-gro-hw)" K0_lro="$(feat large-receive-offload)" K0_uso="$(feat tx-udp-segmentation)"
result K0_drvfeat_lro=$(( ($(reg 0x008) >> 11) & 1 ))
ethtool -K "$NIC" rx-gro-hw off || bad "-K rx-gro-hw off"
result K1_gro_hw="$(feat rx-gro-hw)" K1_drvfeat_lro=$(( ($(reg 0x008) >> 11) & 1 ))
ethtool -K "$NIC" rx-gro-hw on || bad "-K rx-gro-hw on"
result K2_gro_hw="$(feat rx-gro-hw)" K2_drvfeat_lro=$(( ($(reg 0x008) >> 11) & 1 ))

echo "== USO from a UDP_SEGMENT socket"
u0=$(cnt tx_uso_packets); p0=$(cnt tx_uso_posted)
udp-gso-send "$HOST_IP" "$UDP_PORT" 1400 $((UDP_SEGS * 1400)) "$UDP_SENDS" || bad "udp-gso-send"
result uso_dev=$(( $(cnt tx_uso_packets) - u0 )) uso_drv=$(( $(cnt tx_uso_posted) - p0 ))

echo "== bridge and forwarding"
modprobe bridge || bad "modprobe bridge"
if ! ip link add br0 type bridge 2>/dev/null; then brctl addbr br0 || bad "no bridge"; fi
echo 0 >/sys/class/net/br0/bridge/forward_delay
ip addr flush dev "$NIC"
if ! ip link set "$NIC" master br0 2>/dev/null; then brctl addif br0 "$NIC" || bad "addif"; fi
ip addr add "$GUEST_IP/$NET_PREFIX" dev br0
ip link set br0 up
echo 1 >/proc/sys/net/ipv4/ip_forward
carrier br0 || bad "br0 has no carrier"
i=0  # port state 3 = forwarding
while [ "$(cat "/sys/class/net/$NIC/brport/state" 2>/dev/null)" != 3 ] && [ "$i" -lt 100 ]; do
    i=$((i + 1)); sleep 0.1
done
ls /sys/class/net/br0/brif/
ethtool -k "$NIC" | grep -E '^(rx-gro-hw|large-receive-offload):'
result br_gro_hw="$(feat rx-gro-hw)" br_drvfeat_lro=$(( ($(reg 0x008) >> 11) & 1 )) \
    br_master="$(basename "$(readlink "/sys/class/net/$NIC/master")")"
ping_check "$HOST_IP" 2 || bad "no ping through br0"
c0=$(cnt rx_superpackets)
iperf_run br_rx -c "$HOST_IP" -t "$SECS" -R || bad "iperf3 RX through br0"
result br_rx_superpackets=$(( $(cnt rx_superpackets) - c0 ))

echo "== ethtool -l/-L"
ethtool -l "$NIC" | tee /tmp/l.txt
result l_combined="$(awk '$1 == "Combined:" {v = v $2 "/"} END {print v}' /tmp/l.txt)"
ethtool -L "$NIC" combined 1 && result L1=ok || result L1=fail
ethtool -L "$NIC" combined 2 && result L2=accepted || result L2=refused

echo "== ethtool -S, msglvl"
ethtool -S "$NIC" >/tmp/S.txt
result S_n="$(grep -c ':' /tmp/S.txt)" \
    S_new="$(grep -cE '^ *(tx_uso_posted|tx_uso_packets|rx_coalesced|rx_superpackets):' /tmp/S.txt)"
ethtool -s "$NIC" msglvl 0x7 || bad "msglvl"
result msglvl="$(ethtool "$NIC" | sed -n 's/.*Current message level: \(0x[0-9a-f]*\).*/\1/p' | head -n 1)"

echo "== ethtool -d"
ethtool -d "$NIC" | head -n 5

ip link set br0 down
ip link del br0 2>/dev/null || brctl delbr br0
unload_check
exit $rc
EOF
} >"$OUT/run.sh"

driver_e2e_boot "$OUT" "$SOCK"
UDP_NOPORTS=$(ns_counter_delta HOST0 HOST1 Udp.NoPorts)
UDP_CSUM=$(ns_counter_delta HOST0 HOST1 Udp.InCsumErrors)
TCP_CSUM=$(ns_counter_delta HOST0 HOST1 Tcp.InCsumErrors)

# ------------------------------------------------------------------ checks

(( GUEST_OK )) || FAILS+=("guest run (console: $OUT/console.log)")
check "-i driver" "$(res drv_name)" vmso
check "-i firmware is the ABI version" "$(res drv_fw)" \
    "abi_$(( $(res reg_version) >> 16 )).$(( $(res reg_version) & 0xffff ))"
check "-i bus-info is the PCI device" "$(res drv_bus)" "$(res drv_bus_sysfs)"
check "-g defaults (max RX/TX, current RX/TX)" "$(res g0)" "4096/4096/256/1024/"
check "device rings at probe (RX_SIZE/TX_SIZE)" "$(res reg0_rx_size)/$(res reg0_tx_size)" 256/1024
check "-G rx 512 tx 2048 while up" "$(res G_up)" ok
check "-g after -G" "$(res g1)" "4096/4096/512/2048/"
check "device RX_SIZE/TX_SIZE after -G" "$(res reg1_rx_size)/$(res reg1_tx_size)" 512/2048
check "driver log after -G (TX RX, device TX_SIZE RX_SIZE)" "$(res G_log)" 2048_512_2048_512
check "iperf3 TX on the new rings" "$(res G_tx_ok)" 1
check "iperf3 RX on the new rings" "$(res G_rx_ok)" 1
check_gt0 "superpackets on the new RX ring" "$(res G_rx_superpackets)"
check "-G rx 500/32/8192, tx 16/1000 refused" "$(res G_refused)" 5
check "rings unchanged after refused -G" "$(res reg2_rx_size)/$(res reg2_tx_size)" 512/2048
check "-G while down" "$(res G_down)" ok
check "device RX_SIZE/TX_SIZE after down/-G/up" "$(res reg3_rx_size)/$(res reg3_tx_size)" 128/1024
check "-C rx-usecs 50: -c rx/tx" "$(res C_rx50)" 50/50
check "-C rx-usecs 50: ITR register" "$(res reg_itr50)" 50
check "-C tx-usecs 20: -c rx/tx" "$(res C_tx20)" 20/20
check "-C tx-usecs 20: ITR register" "$(res reg_itr20)" 20
check "-C conflicting/unsupported/too large refused" "$(res C_refused)" 3
check "ITR unchanged after refused -C" "$(res reg_itr_after)" 20
check "-k rx-gro-hw on by default" "$(res K0_gro_hw)" on
check "-k large-receive-offload off" "$(res K0_lro)" off
check "-k tx-udp-segmentation on" "$(res K0_uso)" on
check "DRV_FEATURES.LRO with rx-gro-hw on" "$(res K0_drvfeat_lro)" 1
check "-K rx-gro-hw off" "$(res K1_gro_hw)/$(res K1_drvfeat_lro)" off/0
check "-K rx-gro-hw on" "$(res K2_gro_hw)/$(res K2_drvfeat_lro)" on/1
check "UDP_SEGMENT sends posted with CMD.USO (driver)" "$(res uso_drv)" "$UDP_SENDS"
check "USO packets done by the device" "$(res uso_dev)" "$UDP_SENDS"
check "host got every USO datagram (netns Udp NoPorts)" "$UDP_NOPORTS" $((UDP_SENDS * UDP_SEGS))
check "host Udp InCsumErrors" "$UDP_CSUM" 0
check "host Tcp InCsumErrors" "$TCP_CSUM" 0
check "NIC enslaved to br0" "$(res br_master)" br0
check "rx-gro-hw stays on in a bridge with forwarding" "$(res br_gro_hw)/$(res br_drvfeat_lro)" on/1
check "iperf3 RX through br0" "$(res br_rx_ok)" 1
check_gt0 "superpackets through br0" "$(res br_rx_superpackets)"
check "-l combined (max/current)" "$(res l_combined)" "1/1/"
check "-L combined 1" "$(res L1)" ok
check "-L combined 2" "$(res L2)" refused
check "-S has the USO/coalescer counters" "$(res S_new)" 4
check "msglvl set and read back" "$(res msglvl)" 0x00000007
check "rmmod" "$(res rmmod)" ok
check "no WARN/BUG in dmesg" "$(res dmesg_clean)" 1

{
    echo "secs=$SECS"
    echo "udp_noports=$UDP_NOPORTS"
    echo "udp_csum_errors=$UDP_CSUM"
    echo "tcp_csum_errors=$TCP_CSUM"
    echo "fails=${#FAILS[@]}"
    cat "$OUT/results.env"
} >"$OUT/summary.env"
if (( ${#FAILS[@]} )); then
    die "${#FAILS[@]} check(s) failed: ${FAILS[*]} (logs in $OUT)"
fi
log "PASS: every ethtool check (logs in $OUT)"
