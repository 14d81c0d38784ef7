# shellcheck shell=bash
# Variables are set here for the scripts that source this file:
# shellcheck disable=SC2034
# ci/lib/vmso.sh - one QEMU guest on vmso-device, end to end (used by ci/e2e.sh and
# ci/demo.sh).
#
#   vmso_ensure_setup          run ci/setup.sh unless everything it makes is present
#   vmso_prepare_host          what every vmso script does first: need root and
#                              /dev/net/tun, $RESULTS, vmso_ensure_setup, the host tools,
#                              the cleanup trap
#   vmso_prepare               vmso_prepare_host, then vmso_build
#   vmso_build                 cargo build --release -p vmso-device; vmso.ko built by
#                              guest-driver/Makefile (KDIR, CC=gcc-12) in a private copy
#                              of the sources ($CACHE/build/vmso-ko.XXXXXX, removed by
#                              cleanup: install the trap first), so that neither the source
#                              tree nor another run's build is written or raced with
#   vmso_config CFG            sets CFG_BOOT CFG_CPU CFG_DMA CFG_LEVELS for CFG:
#                                4l    default CPU, PVH boot, 4-level paging, dma_mode=virt
#                                5l    -cpu max, bzImage boot, 5-level paging, dma_mode=virt
#                                phys  default CPU, PVH boot, 4-level paging, dma_mode=phys
#   vmso_run CFG DIR           one guest run in $NS (netns_setup first): a fresh
#                              vmso-device --once on $TAP (socket in a private temp dir),
#                              an iperf3 server, the guest (modprobe vmso dma_mode=...,
#                              ping, iperf3 TX / RX / UDP, ethtool -S, rmmod), a capture on
#                              the TAP during the TX test, then the host-side checks.
#                              The device writes DIR/metrics.json (--metrics) at start and
#                              at exit, and, with the capture on, its own capture of its
#                              wire side to DIR/device.pcapng (--pcap, the first
#                              E2E_CAPTURE_FRAMES frames' worth), judged by tshark too.
#                              Writes DIR/summary.env; returns 1 if any check failed
#                              (each failure is one "FAIL [CFG]: ..." line on stderr).
#   vmso_summary_table ENV...  the compact table of summary.env files (text)
#   vmso_summary_md ENV...     the same as a Markdown table
#   vmso_print_counters ENV    the device counters of one run: their names from the
#                              metrics document next to ENV (metrics.json, docs/metrics.md),
#                              their values as the guest's ethtool -S read them (stat_NAME)
#   vmso_metrics_counters JSON "name=value ..." of the non-zero device counters and
#                              coalescer flush reasons (coalescer.NAME=value) in the
#                              metrics document vmso-device writes at exit (docs/metrics.md)
#
# Environment:
#   E2E_SECS (10)        seconds of each iperf3 TCP test
#   E2E_UDP_SECS (5)     seconds of the UDP test; E2E_UDP_RATE (2G), E2E_UDP_LEN (1400)
#   E2E_CAPTURE (auto)   auto: capture + tshark check when tshark is installed;
#                        1: required; 0: off
#   E2E_SNAPLEN (128)    capture snap length
#   E2E_CAPTURE_FRAMES (300000)  the capture stops after this many frames, ~2-3 s of the
#                        TX test (tshark reads ~45k frames/s here: a whole 10 s test would
#                        take ~30 s per run); 0: no limit
#   E2E_KEEP_PCAP (0)    1: keep the capture file
#   VMSO_PARAMS ()       extra "modprobe vmso" parameters (dma_mode comes from the config)
#   VMSO_DRIVER_SRC (guest-driver)  the driver sources to build vmso.ko from
#   E2E_GUEST_SETUP ()   guest shell commands run after the link is up, before the tests
#                        (\$NIC is the interface), e.g. 'ethtool -K \$NIC rx-gro-hw off'
#   E2E_GUEST_TIMEOUT    QEMU's time limit per run (120 + 3 * E2E_SECS + E2E_UDP_SECS)

# shellcheck source=ci/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# shellcheck source=ci/lib/device.sh
source "$REPO/ci/lib/device.sh"
# shellcheck source=ci/lib/guest.sh
source "$REPO/ci/lib/guest.sh"

VMSO_CONFIGS_ALL=(4l 5l phys lro-off handoff)
VMSO_DRIVER_SRC=${VMSO_DRIVER_SRC:-$REPO/guest-driver}
VMSO_KO_BUILD=
VMSO_KO=
E2E_SECS=${E2E_SECS:-10}
E2E_UDP_SECS=${E2E_UDP_SECS:-5}
E2E_UDP_RATE=${E2E_UDP_RATE:-2G}
E2E_UDP_LEN=${E2E_UDP_LEN:-1400}
E2E_CAPTURE=${E2E_CAPTURE:-auto}
E2E_SNAPLEN=${E2E_SNAPLEN:-128}
E2E_CAPTURE_FRAMES=${E2E_CAPTURE_FRAMES:-300000}
VMSO_MAC=${VMSO_MAC:-52:54:00:76:6d:01}
E2E_KEEP_PCAP=${E2E_KEEP_PCAP:-0}
VMSO_PARAMS=${VMSO_PARAMS:-}
VMSO_RUN_TIMEOUT=$((120 + 3 * E2E_SECS + E2E_UDP_SECS))
# The frame limit of the capture check: MTU 1500 + Ethernet header.
VMSO_MAX_FRAME=1514

for _v in E2E_SECS E2E_UDP_SECS E2E_SNAPLEN; do
    [[ "${!_v}" =~ ^[1-9][0-9]*$ ]] || die "$_v must be a positive integer, not '${!_v}'"
done
unset _v
[[ "$E2E_CAPTURE_FRAMES" =~ ^[0-9]+$ ]] || die "E2E_CAPTURE_FRAMES must be a number, not '$E2E_CAPTURE_FRAMES'"

# ------------------------------------------------------------------ setup, build
_vmso_setup_ok() {
    [[ -n "$KABI" && -r "$GUEST_KERNEL" && -r "$GUEST_VMLINUX" && -d "$GUEST_MODULES" \
        && -r "$INITRAMFS_BASE" && -d "$INITRAMFS_BASE_ROOT" && -x "${QEMU[2]}" && -d "$KDIR" ]] || return 1
    local c
    for c in iperf3 ss timeout tail gcc-12 make tshark python3; do
        command -v "$c" >/dev/null 2>&1 || return 1
    done
}

vmso_ensure_setup() {
    if _vmso_setup_ok; then
        log "setup: everything in place ($KVER, $QEMU_SYSROOT)"
        return 0
    fi
    log "setup: something is missing, running ci/setup.sh"
    "$REPO/ci/setup.sh" || die "ci/setup.sh failed"
    [[ -r "$CACHE/kernel-abi" ]] || die "ci/setup.sh did not record $CACHE/kernel-abi"
    set_kabi "$(<"$CACHE/kernel-abi")"
    need_setup
}

vmso_build() {
    need_cmd cargo make gcc-12
    log "building vmso-device (release)"
    vmso_device_build || die "vmso-device does not build"
    [[ -r "$VMSO_DRIVER_SRC/Makefile" ]] || die "no Makefile in $VMSO_DRIVER_SRC"
    mkdir -p "$CACHE/build"
    VMSO_KO_BUILD=$(mktemp -d "$CACHE/build/vmso-ko.XXXXXX")
    on_cleanup "rm -rf '$VMSO_KO_BUILD'"
    VMSO_KO=$VMSO_KO_BUILD/vmso.ko
    log "building vmso.ko from ${VMSO_DRIVER_SRC#"$REPO"/} against $KDIR (in ${VMSO_KO_BUILD#"$REPO"/})"
    # Sources only: no objects or kbuild state from a build in the source tree.
    tar -C "$VMSO_DRIVER_SRC" --exclude='*.o' --exclude='*.ko' --exclude='*.mod' \
        --exclude='*.mod.c' --exclude='.*.cmd' --exclude='.*.d' --exclude=Module.symvers \
        --exclude=modules.order --exclude='.tmp*' -cf - . | tar -C "$VMSO_KO_BUILD" -xf - \
        || die "copying $VMSO_DRIVER_SRC failed"
    make -C "$VMSO_KO_BUILD" KDIR="$KDIR" CC=gcc-12 >"$VMSO_KO_BUILD/build.log" 2>&1 \
        || { cat "$VMSO_KO_BUILD/build.log" >&2; die "vmso.ko does not build (make -C ${VMSO_DRIVER_SRC#"$REPO"/} KDIR=$KDIR CC=gcc-12)"; }
    [[ -r "$VMSO_KO" ]] || die "$VMSO_KO missing after the build"
}

vmso_prepare_host() {
    need_root
    need_tun
    mkdir -p "$RESULTS"
    vmso_ensure_setup
    need_cmd iperf3 ss timeout tail awk
    install_cleanup_trap
}

vmso_prepare() {
    vmso_prepare_host
    vmso_build
}

# ------------------------------------------------------------------ configurations
vmso_config() {
    CFG_BOOT=pvh CFG_CPU='' CFG_DMA=virt CFG_LEVELS=4 CFG_LRO=on CFG_TXMODE=wire
    case $1 in
        4l) ;;
        5l) CFG_BOOT=bzimage CFG_CPU=max CFG_LEVELS=5 ;;
        phys) CFG_DMA=phys ;;
        lro-off) CFG_LRO=off ;; # receive coalescing (rx-gro-hw) off: every segment delivered
        # TSO/USO superpackets handed to the TAP whole, with their GSO metadata: the
        # captures show superpackets, with partial checksums (as QEMU's NICs' do)
        handoff) CFG_TXMODE=handoff ;;
        *) die "unknown configuration '$1' (known: ${VMSO_CONFIGS_ALL[*]})" ;;
    esac
}

# The capture verdict after _vmso_check_pcap. Wire mode: no bad checksum and no frame
# over VMSO_MAX_FRAME. Hand-off mode: superpackets (frames over the MTU) must be there,
# and the only checksums tshark may call bad are theirs (partial: the host finishes them).
_vmso_check_sizes() { # CFG WHAT
    if [[ "$CFG_TXMODE" == handoff ]]; then
        (( PCAP_BIG > 0 )) || _vmso_fail "$1" "no superpacket (frame over $VMSO_MAX_FRAME bytes) in $2 with --tx-mode handoff"
        (( PCAP_BAD <= PCAP_BIG )) || _vmso_fail "$1" "$PCAP_BAD bad checksum(s) but only $PCAP_BIG superpackets in $2"
    else
        (( PCAP_BAD == 0 )) || _vmso_fail "$1" "$PCAP_BAD bad checksum(s) ($PCAP_BAD_GUEST from the guest) in $2"
        (( PCAP_BIG == 0 )) || _vmso_fail "$1" "$PCAP_BIG frame(s) over $VMSO_MAX_FRAME bytes in $2"
    fi
}

# ------------------------------------------------------------------ host-side helpers
# _vmso_capture_cmd PCAP: sets VMSO_CAPTURE_CMD: tcpdump if installed, else dumpcap (comes with tshark).
# Only the frames vmso puts on the wire (Ethernet source = its MAC), at most
# E2E_CAPTURE_FRAMES of them.
_vmso_capture_cmd() {
    if command -v tcpdump >/dev/null 2>&1; then
        VMSO_CAPTURE_CMD=(tcpdump -q -n -i "$TAP" -s "$E2E_SNAPLEN" -w "$1")
    elif command -v dumpcap >/dev/null 2>&1; then
        VMSO_CAPTURE_CMD=(dumpcap -q -P -i "$TAP" -s "$E2E_SNAPLEN" -w "$1")
    else
        return 1
    fi
    (( E2E_CAPTURE_FRAMES == 0 )) || VMSO_CAPTURE_CMD+=(-c "$E2E_CAPTURE_FRAMES")
    if [[ "${VMSO_CAPTURE_CMD[0]}" == tcpdump ]]; then
        VMSO_CAPTURE_CMD+=("ether src $VMSO_MAC")
    else
        VMSO_CAPTURE_CMD+=(-f "ether src $VMSO_MAC")
    fi
}

# _vmso_capture_watch CONSOLE LOG: follows the guest console; starts the capture
# on "E2E-CAPTURE start", stops it on "E2E-CAPTURE stop" (the host appends one after
# QEMU exits, so the watcher always ends). Runs in the background.
_vmso_capture_watch() {
    local console=$1 caplog=$2 line cpid='' tpid fd
    exec {fd}< <(exec tail -n +1 -F -s 0.2 "$console" 2>/dev/null)
    tpid=$!
    while IFS= read -r -u "$fd" line; do
        case $line in
            *E2E-CAPTURE\ start*)
                [[ -n "$cpid" ]] && continue
                ip netns exec "$NS" timeout $((E2E_SECS + 60)) "${VMSO_CAPTURE_CMD[@]}" \
                    >"$caplog" 2>&1 </dev/null &
                cpid=$!
                ;;
            *E2E-CAPTURE\ stop*) break ;;
        esac
    done
    if [[ -n "$cpid" ]]; then
        sleep 0.3 # let the last frames of the test reach the capture
        kill -TERM "$cpid" 2>/dev/null
        wait "$cpid" 2>/dev/null
    fi
    kill "$tpid" 2>/dev/null
    exec {fd}<&-
    return 0
}

# _vmso_check_pcap PCAP [FILTER]: tshark with checksum validation on, over the frames
# that match the display FILTER (all without). Sets
#   PCAP_FRAMES        frames in the capture
#   PCAP_GUEST_TCP     TCP frames from the guest (made by vmso)
#   PCAP_BAD           frames with a bad IPv4/TCP/UDP checksum
#   PCAP_BAD_GUEST     ... of them from the guest
#   PCAP_BIG           frames over VMSO_MAX_FRAME bytes on the wire
#   PCAP_GOOD_IP       IPv4 header checksums verified good
#   PCAP_GOOD_L4       TCP/UDP checksums verified good (whole segment captured)
#   PCAP_UNVERIFIED_L4 TCP/UDP checksums tshark could not verify (cut by the snap length)
#   PCAP_FFFF          TCP checksums 0xffff where 0x0000 was computed: the same value in
#                      ones' complement (RFC 1624); the host kernel's skb_checksum_help()
#                      writes them (CSUM_MANGLED_0). tshark 4.0 calls them bad; not counted.
# TCP sequence analysis is off: the capture holds one direction only, and tshark then
# slows down 2.5x for nothing (the guest's iperf3 reports its retransmissions).
_vmso_check_pcap() {
    local pcap=$1 filter=() out
    [[ -z "${2:-}" ]] || filter=(-Y "$2")
    out=$(tshark -r "$pcap" -n "${filter[@]}" \
        -o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE -o udp.check_checksum:TRUE \
        -o tcp.analyze_sequence_numbers:FALSE -T fields -E separator=/t -E occurrence=f \
        -e frame.len -e ip.src -e ip.proto -e ip.checksum.status \
        -e tcp.checksum.status -e udp.checksum.status -e tcp.checksum -e tcp.checksum_calculated \
        2>/dev/null | awk -F'\t' -v g="$GUEST_IP" -v max="$VMSO_MAX_FRAME" '
        {
            n++
            guest = ($2 == g)
            if ($1 + 0 > max) big++
            if (guest && $3 == "6") gtcp++
            if ($4 == "0") b = 1; else b = 0
            if ($4 == "1") gip++
            if ($5 == "0") {
                if ($7 == "0xffff" && $8 == "0x0000") ffff++
                else b = 1
            }
            if ($6 == "0") b = 1
            if ($5 == "1" || $6 == "1") gl4++
            if ($5 == "2" || $6 == "2") unv++
            if (b) { bad++; if (guest) bg++ }
        }
        END { printf "%d %d %d %d %d %d %d %d %d\n", n, gtcp, bad, bg, big, gip, gl4, unv, ffff }') || return 1
    read -r PCAP_FRAMES PCAP_GUEST_TCP PCAP_BAD PCAP_BAD_GUEST PCAP_BIG PCAP_GOOD_IP PCAP_GOOD_L4 \
        PCAP_UNVERIFIED_L4 PCAP_FFFF <<<"$out"
    [[ -n "$PCAP_FFFF" ]]
}

# ------------------------------------------------------------------ guest script
_vmso_guest_script() { # CFG: the guest's /run.sh on stdout
    local params="dma_mode=$CFG_DMA${VMSO_PARAMS:+ $VMSO_PARAMS}"
    cat <<EOF
# generated by ci/lib/vmso.sh for configuration $1
rc=0
modprobe vmso $params || { result modprobe=fail; dmesg | tail -n 30; exit 1; }
result modprobe=ok dma_mode=\$(cat /sys/module/vmso/parameters/dma_mode)
dmesg | grep -E 'vmso [0-9a-f]{4}:'
if grep -qw la57 /proc/cpuinfo; then la57=1; else la57=0; fi
drv_levels=\$(dmesg | sed -n 's/.*vmso [0-9a-f]\{4\}:.*, \([45]\)-level paging.*/\1/p' | tail -n 1)
echo "paging: la57 in /proc/cpuinfo flags: \$la57; vmso driver: \${drv_levels:-?}-level"
result la57=\$la57 drv_levels=\${drv_levels:-unknown}
net_up $GUEST_IP/$NET_PREFIX || { dmesg | tail -n 30; exit 1; }
ethtool -K \$NIC rx-gro-hw $CFG_LRO || echo "RESULT lro_set=fail"
${E2E_GUEST_SETUP:-}
ethtool -k "\$NIC" | grep -E '^(scatter-gather|tcp-segmentation-offload|tx-checksumming|rx-checksumming|rx-gro-hw|large-receive-offload):'
ping_check $HOST_IP 3 || { dmesg | tail -n 30; exit 1; }
g_csum0=\$(awk '\$1 == "Tcp:" && \$2 ~ /^[0-9]/ { print \$NF }' /proc/net/snmp)
export IPERF_TIMEOUT=$((E2E_SECS + 30))
echo "E2E-CAPTURE start"
sleep 1
st=/sys/class/net/\$NIC/statistics
rx0=\$(cat \$st/rx_packets) tx0=\$(cat \$st/tx_packets)
iperf_run tx -c $HOST_IP -t $E2E_SECS || rc=1
# Frames the guest took in (the host's ACKs) and handed out during the TX test.
result tx_phase_rx_frames=\$((\$(cat \$st/rx_packets) - rx0)) tx_phase_tx_packets=\$((\$(cat \$st/tx_packets) - tx0))
echo "E2E-CAPTURE stop"
iperf_run rx -c $HOST_IP -t $E2E_SECS -R || rc=1
IPERF_TIMEOUT=$((E2E_UDP_SECS + 30)) iperf_run udp -c $HOST_IP -u -b $E2E_UDP_RATE -l $E2E_UDP_LEN -t $E2E_UDP_SECS || rc=1
g_csum1=\$(awk '\$1 == "Tcp:" && \$2 ~ /^[0-9]/ { print \$NF }' /proc/net/snmp)
result guest_tcp_csum_errors=\$((g_csum1 - g_csum0))
ethtool_stats_results || rc=1
ip link set "\$NIC" down
if rmmod vmso && [ ! -e /sys/module/vmso ]; then
    result rmmod=ok
else
    result rmmod=fail
    rc=1
fi
warns=\$(dmesg | grep -cE 'WARNING:|BUG:|Oops|general protection|Call Trace')
result kernel_warnings=\$warns
[ "\$warns" -eq 0 ] || dmesg | grep -E -A 20 'WARNING:|BUG:|Oops|general protection'
dmesg | grep -iE 'vmso' | tail -n 20
exit \$rc
EOF
}

# ------------------------------------------------------------------ one run
VMSO_FAILS=()
_vmso_fail() { # CFG MSG
    VMSO_FAILS+=("[$1] $2")
    printf 'FAIL [%s]: %s\n' "$1" "$2" >&2
}

vmso_run() {
    (( $# == 2 )) || die "usage: vmso_run CFG DIR"
    local cfg=$1 dir=$2 sock tmp srv_pid watch_pid=0 pcap='' i ok=1 capture=0
    local dev_counters v
    local -A h0 h1
    [[ -n "${NS:-}" && -n "${TAP:-}" ]] || die "vmso_run: no netns/TAP (call netns_setup first)"
    vmso_config "$cfg"
    rm -rf "$dir"
    mkdir -p "$dir"
    local fails0=${#VMSO_FAILS[@]}

    case $E2E_CAPTURE in
        0) ;;
        1) command -v tshark >/dev/null || die "E2E_CAPTURE=1 but tshark is missing (run ci/setup.sh)"
           command -v tcpdump >/dev/null || command -v dumpcap >/dev/null || die "E2E_CAPTURE=1 but neither tcpdump nor dumpcap is installed"
           capture=1 ;;
        auto) if command -v tshark >/dev/null && { command -v tcpdump || command -v dumpcap; } >/dev/null; then capture=1
              else warn "no tshark/capture tool: skipping the capture check"; fi ;;
        *) die "E2E_CAPTURE must be auto, 0 or 1, not '$E2E_CAPTURE'" ;;
    esac

    # The socket lives in a private directory, removed by cleanup on every exit path.
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/vmso-sock.XXXXXX")
    on_cleanup "rm -rf '$tmp'"
    sock=$tmp/vmso.sock

    log "[$cfg] boot=$CFG_BOOT cpu=${CFG_CPU:-default} dma_mode=$CFG_DMA expect ${CFG_LEVELS}-level paging; logs in $dir"
    local dev_args=(--mac "$VMSO_MAC" --log-level info --once
        --metrics "$dir/metrics.json" --metrics-interval 0 --tx-mode "$CFG_TXMODE")
    if (( capture )); then
        # About as many frames as the TAP capture takes (each block: snap + 48 bytes).
        dev_args+=(--pcap "$dir/device.pcapng" --pcap-snaplen "$E2E_SNAPLEN")
        (( E2E_CAPTURE_FRAMES == 0 )) \
            || dev_args+=(--pcap-max-bytes $((E2E_CAPTURE_FRAMES * (E2E_SNAPLEN + 48))))
    fi
    # VMSO_DEVICE_ARGS: extra vmso-device options (word-split), for experiments.
    # shellcheck disable=SC2206 # word-split on purpose
    dev_args+=(${VMSO_DEVICE_ARGS:-})
    if ! vmso_device_start "$dir/device.log" "$sock" "${dev_args[@]}"; then
        _vmso_fail "$cfg" "vmso-device did not create its socket within 10 s (see $dir/device.log)"
        return 1
    fi

    ns_bg "$dir/iperf3-server.log" timeout $((VMSO_RUN_TIMEOUT + 30)) iperf3 -s -B "$HOST_IP" --forceflush
    srv_pid=$BG_PID
    if ! wait_tcp_listen 5201 10; then
        vmso_device_stop
        bg_stop "$srv_pid"
        _vmso_fail "$cfg" "iperf3 server did not start (see $dir/iperf3-server.log)"
        return 1
    fi

    GUEST_DIR=$dir
    GUEST_FILES=("$VMSO_KO")
    GUEST_BOOT=$CFG_BOOT
    GUEST_CPU=$CFG_CPU
    GUEST_SMP=1
    GUEST_TIMEOUT=${E2E_GUEST_TIMEOUT:-$VMSO_RUN_TIMEOUT}
    _vmso_guest_script "$cfg" >"$dir/run.sh"

    if (( capture )); then
        pcap=$dir/tx.pcap
        _vmso_capture_cmd "$pcap"
        _vmso_capture_watch "$dir/console.log" "$dir/capture.log" &
        watch_pid=$!
        bg_track "$watch_pid"
    fi

    ns_counters h0
    boot_guest "$dir/run.sh" -device "$(vfio_user_device_json "$sock")" || ok=0
    ns_counters h1
    guest_results >"$dir/results.env" 2>/dev/null || true
    if (( ! ok )); then
        local why done_rc
        done_rc=$(tr -d '\r' <"$dir/console.log" 2>/dev/null | sed -n 's/^VMSO-DONE rc=\([0-9]*\).*/\1/p' | tail -n 1)
        case ${GUEST_RC:-?} in
            0) why="the guest's run script exited with status ${done_rc:-?}" ;;
            124 | 137) why="QEMU timed out after ${GUEST_TIMEOUT}s" ;;
            *) why="QEMU exited with status $GUEST_RC" ;;
        esac
        _vmso_fail "$cfg" "guest run failed: $why (console $dir/console.log)"
    fi

    # The device serves one connection (--once) and must exit after QEMU goes.
    vmso_device_wait_exit 10
    case $VMSO_DEV_RC in
        0) ;;
        running) _vmso_fail "$cfg" "vmso-device --once still running 10 s after QEMU exited" ;;
        *) _vmso_fail "$cfg" "vmso-device exited with status $VMSO_DEV_RC (see $dir/device.log)" ;;
    esac
    grep -q 'panicked' "$dir/device.log" && _vmso_fail "$cfg" "vmso-device panicked (see $dir/device.log)"
    bg_stop "$srv_pid"
    # The device's counters, from the metrics document it writes at exit.
    if ! dev_counters=$(vmso_metrics_counters "$dir/metrics.json" 2>"$dir/metrics.err"); then
        _vmso_fail "$cfg" "no final metrics document from vmso-device: $(head -n 1 "$dir/metrics.err") (see $dir/metrics.json)"
        dev_counters=
    elif (( ok )); then
        # The device's own account of the run (totals across the driver's resets).
        local m
        for m in tx_tso_segments rx_packets; do
            [[ " $dev_counters " == *" $m="[1-9]* ]] \
                || _vmso_fail "$cfg" "the device's metrics show no $m (see $dir/metrics.json)"
        done
    fi

    if (( capture )); then
        echo "E2E-CAPTURE stop (host: QEMU exited)" >>"$dir/console.log"
        bg_wait "$watch_pid" 100
    fi

    # ---- results and checks
    res() { awk -F= -v k="$1" '$1 == k { v = substr($0, length(k) + 2) } END { print (v == "" ? "?" : v) }' "$dir/results.env"; }
    local tx rx udp va hits misses tso pf ratio levels paging csum_d retr_d c0 c1
    tx=$(res tx_gbps) rx=$(res rx_gbps) udp=$(res udp_gbps)
    va=$(res stat_va_translations) hits=$(res stat_iotlb_hits) misses=$(res stat_iotlb_misses)
    tso=$(res stat_tx_tso_segments) pf=$(res stat_page_faults)
    ratio=$(awk -v h="$hits" -v m="$misses" 'BEGIN { if (h ~ /^[0-9]+$/ && m ~ /^[0-9]+$/ && h + m > 0) printf "%.3f%%", 100 * h / (h + m); else print "-" }')
    levels=$(res drv_levels)
    [[ "$(res la57)" == 1 ]] && paging="5-level(la57)" || paging="${levels}-level"
    csum_d=$(ns_csum_rise h0 h1)
    retr_d=$(ns_counter_delta h0 h1 Tcp.RetransSegs)
    c0=$(ns_csum_errors h0) c1=$(ns_csum_errors h1)

    # Host checksum counters.
    (( csum_d == 0 )) || _vmso_fail "$cfg" "host InCsumErrors rose by $csum_d in $NS (IpExt/Icmp/Tcp/Udp: $c0 -> $c1)"
    # What follows needs the guest's results: after a failed guest run, the missing
    # values would only repeat the failure.
    if (( ok )); then
        [[ "$(res modprobe)" == ok ]] || _vmso_fail "$cfg" "modprobe vmso failed"
        [[ "$(res dma_mode)" == "$CFG_DMA" ]] || _vmso_fail "$cfg" "dma_mode is '$(res dma_mode)', expected $CFG_DMA"
        [[ "$(res ping)" == ok ]] || _vmso_fail "$cfg" "ping $HOST_IP failed"
        for v in tx rx udp; do
            [[ "$(res "${v}_ok")" == 1 ]] || _vmso_fail "$cfg" "iperf3 $v test failed"
        done
        [[ "$(res rmmod)" == ok ]] || _vmso_fail "$cfg" "rmmod vmso failed"
        [[ "$(res kernel_warnings)" == 0 ]] || _vmso_fail "$cfg" "guest kernel logged $(res kernel_warnings) WARNING/BUG line(s) (console $dir/console.log)"
        # Paging mode.
        if [[ "$CFG_LEVELS" == 5 ]]; then
            [[ "$(res la57)" == 1 ]] || _vmso_fail "$cfg" "guest has no la57 in /proc/cpuinfo: not running 5-level paging"
        else
            [[ "$(res la57)" == 0 ]] || _vmso_fail "$cfg" "guest runs 5-level paging (la57), expected 4-level"
        fi
        # The driver's probe line names the paging mode it passes to the device.
        if [[ "$levels" =~ ^[45]$ ]]; then
            [[ "$levels" == "$CFG_LEVELS" ]] || _vmso_fail "$cfg" "vmso driver uses $levels-level paging, expected $CFG_LEVELS-level"
        else
            warn "[$cfg] the vmso probe message names no paging mode: only la57 was checked"
        fi
        log "[$cfg] guest paging: la57 in /proc/cpuinfo=$(res la57), vmso driver: ${levels}-level"
        # Device counters (accumulated by the driver across resets, read with ethtool -S).
        if [[ "$CFG_DMA" == virt ]]; then
            if ! [[ "$va" =~ ^[0-9]+$ ]] || (( va == 0 )); then
                _vmso_fail "$cfg" "va_translations is '$va' in virt mode (expected > 0)"
            fi
        else
            [[ "$va" == 0 ]] || _vmso_fail "$cfg" "va_translations is '$va' in phys mode (expected 0)"
        fi
        if ! [[ "$tso" =~ ^[0-9]+$ ]] || (( tso == 0 )); then
            _vmso_fail "$cfg" "tx_tso_segments is '$tso' (expected > 0)"
        fi
        # The host hands the device whole superpackets through the vnet-header TAP
        # (the -R test); with receive coalescing on they go to the guest whole, and the
        # device's coalescer merges what still comes as MTU frames; with it off, nothing
        # is merged (the device cuts the superpackets into MTU frames).
        local coal gso
        coal=$(res stat_rx_coalesced) gso=$(res stat_rx_gso_packets)
        [[ "$(res lro_set)" != fail ]] || _vmso_fail "$cfg" "ethtool -K rx-gro-hw $CFG_LRO failed in the guest"
        if ! [[ "$gso" =~ ^[0-9]+$ ]] || (( gso == 0 )); then
            _vmso_fail "$cfg" "rx_gso_packets is '$gso' (expected > 0: TUNSETOFFLOAD lets the host send superpackets)"
        fi
        if [[ "$CFG_LRO" != on ]]; then
            [[ "$coal" == 0 ]] || _vmso_fail "$cfg" "rx_coalesced is '$coal' with LRO off (expected 0)"
        fi
        [[ "$pf" == 0 ]] || warn "[$cfg] page_faults=$pf (tx_va_fallbacks=$(res stat_tx_va_fallbacks))"
        [[ "$(res stat_tx_errors)" == 0 ]] || warn "[$cfg] tx_errors=$(res stat_tx_errors)"
        [[ "$(res stat_rx_csum_bad)" == 0 ]] || warn "[$cfg] rx_csum_bad=$(res stat_rx_csum_bad)"
    fi

    # Capture of the TX test.
    local pc="-" pcap_note="off"
    if (( capture )) && { (( ok )) || [[ -s "$pcap" ]]; }; then
        if [[ ! -s "$pcap" ]]; then
            _vmso_fail "$cfg" "no capture of the TX test (see $dir/capture.log)"
        elif ! _vmso_check_pcap "$pcap"; then
            _vmso_fail "$cfg" "tshark could not read $pcap"
        else
            pc="$PCAP_BAD"
            pcap_note="frames=$PCAP_FRAMES guest_tcp=$PCAP_GUEST_TCP bad_csum=$PCAP_BAD(guest:$PCAP_BAD_GUEST) over_${VMSO_MAX_FRAME}=$PCAP_BIG ip_csum_ok=$PCAP_GOOD_IP l4_csum_ok=$PCAP_GOOD_L4 l4_unverified(snaplen)=$PCAP_UNVERIFIED_L4 tcp_ffff_for_0(RFC1624)=$PCAP_FFFF"
            log "[$cfg] capture ($(basename "${VMSO_CAPTURE_CMD[0]}") -s $E2E_SNAPLEN, TX test): $pcap_note"
            _vmso_check_sizes "$cfg" "the TX capture ($pcap)"
            (( PCAP_GUEST_TCP >= 1000 )) || _vmso_fail "$cfg" "only $PCAP_GUEST_TCP guest TCP frames in the TX capture (expected >= 1000)"
            if (( PCAP_BAD || PCAP_BIG )); then
                # Keep the evidence: the capture and the offending frames.
                tshark -r "$pcap" -n -o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE \
                    -o udp.check_checksum:TRUE -Y "ip.checksum.status == 0 || tcp.checksum.status == 0 || udp.checksum.status == 0 || frame.len > $VMSO_MAX_FRAME" \
                    -V 2>/dev/null | head -n 2000 >"$dir/pcap-bad.txt"
                warn "[$cfg] offending frames decoded in $dir/pcap-bad.txt; capture kept"
            elif (( ! E2E_KEEP_PCAP )); then
                rm -f "$pcap"
            fi
        fi
    fi

    # The device's own capture (--pcap): what it sent, judged like the TAP capture.
    local dpcap_note=off
    if (( capture )) && (( ok )); then
        if [[ ! -s "$dir/device.pcapng" ]]; then
            _vmso_fail "$cfg" "no device capture ($dir/device.pcapng)"
        elif ! _vmso_check_pcap "$dir/device.pcapng" "frame.packet_flags_direction == 0x00000002"; then
            _vmso_fail "$cfg" "tshark could not read $dir/device.pcapng"
        else
            dpcap_note="outbound_frames=$PCAP_FRAMES guest_tcp=$PCAP_GUEST_TCP bad_csum=$PCAP_BAD over_${VMSO_MAX_FRAME}=$PCAP_BIG l4_csum_ok=$PCAP_GOOD_L4"
            log "[$cfg] device capture (--pcap -s $E2E_SNAPLEN, outbound): $dpcap_note"
            _vmso_check_sizes "$cfg" "the device's outbound capture ($dir/device.pcapng)"
            (( PCAP_GUEST_TCP >= 1000 )) || _vmso_fail "$cfg" "only $PCAP_GUEST_TCP guest TCP frames in the device capture (expected >= 1000)"
            (( PCAP_BAD || PCAP_BIG || E2E_KEEP_PCAP )) || rm -f "$dir/device.pcapng"
        fi
    fi

    local result=PASS
    (( ${#VMSO_FAILS[@]} == fails0 )) || result=FAIL
    {
        echo "cfg=$cfg"
        echo "result=$result"
        echo "boot=$CFG_BOOT"
        echo "cpu=${CFG_CPU:-default}"
        echo "dma_mode=$CFG_DMA"
        echo "paging=$paging"
        echo "la57=$(res la57)"
        echo "tx_gbps=$tx"
        echo "rx_gbps=$rx"
        echo "udp_gbps=$udp"
        echo "udp_loss_pct=$(res udp_loss_pct)"
        echo "tx_retr=$(res tx_retr)"
        echo "rx_retr=$(res rx_retr)"
        echo "host_tcp_retrans_segs=$retr_d"
        echo "tap_tx_dropped=$(ns_counter_delta h0 h1 tap.tx_dropped)"
        echo "va_translations=$va"
        echo "iotlb_hits=$hits"
        echo "iotlb_misses=$misses"
        echo "iotlb_hit_ratio=$ratio"
        echo "tx_tso_segments=$tso"
        echo "page_faults=$pf"
        echo "host_csum_errors=$csum_d"
        echo "host_csum_errors_detail=IpExt/Icmp/Tcp/Udp $c0 -> $c1"
        echo "guest_tcp_csum_errors=$(res guest_tcp_csum_errors)"
        echo "pcap_bad=$pc"
        echo "pcap=$pcap_note"
        echo "boot_s=${GUEST_BOOT_S:-?}"
        echo "total_s=${GUEST_TOTAL_S:-?}"
        echo "secs=$E2E_SECS udp_secs=$E2E_UDP_SECS"
        echo "device_counters=${dev_counters:-none}"
        echo "device_pcap=$dpcap_note"
        grep '^stat_' "$dir/results.env" || true
    } >"$dir/summary.env"
    unset -f res
    [[ "$result" == PASS ]]
}

# ------------------------------------------------------------------ metrics
# vmso_metrics_counters JSON: "name=value ..." of the non-zero device counters, then the
# non-zero coalescer flush reasons as coalescer.NAME=value, from the metrics document
# (docs/metrics.md); fails (one line on stderr) unless it is the one written at exit.
vmso_metrics_counters() {
    python3 - "$1" <<'EOF'
import json, sys
try:
    with open(sys.argv[1]) as f:
        doc = json.load(f)
except (OSError, ValueError) as e:
    sys.exit(f"cannot read {sys.argv[1]}: {e}")
if doc.get("trigger") != "exit":
    sys.exit(f"the last document is from '{doc.get('trigger')}', not from the exit")
pairs = [f"{k}={v}" for k, v in sorted(doc["device"].items()) if v]
pairs += [f"coalescer.{k}={v}" for k, v in sorted(doc["coalescer"].items()) if v]
print(" ".join(pairs))
EOF
}

# ------------------------------------------------------------------ reports
_vmso_get() { # ENV KEY
    awk -F= -v k="$2" 'index($0, k "=") == 1 { v = substr($0, length(k) + 2) } END { print (v == "" ? "?" : v) }' "$1"
}

_vmso_rows() { # SEP ENV...: one row per run
    local sep=$1 e
    shift
    for e in "$@"; do
        printf '%s\n' "$(_vmso_get "$e" cfg)" "$(_vmso_get "$e" paging)" "$(_vmso_get "$e" dma_mode)" \
            "$(_vmso_get "$e" tx_gbps)" "$(_vmso_get "$e" rx_gbps)" "$(_vmso_get "$e" udp_gbps)" \
            "$(_vmso_get "$e" va_translations)" "$(_vmso_get "$e" iotlb_hit_ratio)" \
            "$(_vmso_get "$e" tx_tso_segments)" "$(_vmso_get "$e" page_faults)" \
            "$(_vmso_get "$e" host_csum_errors)/$(_vmso_get "$e" pcap_bad)" "$(_vmso_get "$e" result)" \
            | paste -sd "$sep"
    done
}

_VMSO_HDR="config|paging|dma|TX Gbit/s|RX Gbit/s|UDP Gbit/s|va_translations|iotlb hit|tso segments|page faults|csum err (snmp/pcap)|result"

vmso_summary_table() {
    if command -v column >/dev/null 2>&1; then
        { tr '|' '\t' <<<"$_VMSO_HDR"; _vmso_rows $'\t' "$@"; } | column -t -s $'\t'
    else
        { tr '|' '\t' <<<"$_VMSO_HDR"; _vmso_rows $'\t' "$@"; }
    fi
}

vmso_summary_md() {
    local sep=${_VMSO_HDR//[^|]/}
    sep=${sep//|/ | --- }
    printf '| %s |\n' "${_VMSO_HDR//|/ | }" "---$sep"
    _vmso_rows '|' "$@" | sed 's/|/ | /g; s/^/| /; s/$/ |/'
}

# vmso_device_counter_names JSON: the device's counters (the keys of "device" in a
# metrics document, docs/metrics.md), one a line.
vmso_device_counter_names() {
    python3 -c 'import json, sys; print("\n".join(json.load(open(sys.argv[1]))["device"]))' "$1"
}

vmso_print_counters() { # ENV: the device's counters of one run, 2 columns
    local e=$1 n names
    if ! names=$(vmso_device_counter_names "$(dirname "$e")/metrics.json" 2>/dev/null); then
        echo "(no metrics document from the device: $(dirname "$e")/metrics.json)"
        return 0
    fi
    for n in $names; do
        printf '%s %s\n' "$n" "$(_vmso_get "$e" "stat_$n")"
    done | awk '{ a[NR] = sprintf("%-20s %12s", $1, $2) }
        END { h = int((NR + 1) / 2); for (i = 1; i <= h; i++) print a[i] "    " a[i + h] }'
}
