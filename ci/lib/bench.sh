# shellcheck shell=bash
# Variables are set here for the scripts that source this file:
# shellcheck disable=SC2034
# ci/lib/bench.sh - one benchmark point of ci/bench.sh: a guest on one NIC (a QEMU peer or
# vmso with one set of knobs) running every workload in a single boot.
#
#   BENCH_POINTS_ALL           the known points, in report order
#   bench_point POINT          sets BP_KIND (peer|vmso), BP_MODEL, BP_DMA, BP_TSO, BP_LRO,
#                              BP_NETDEV (extra -netdev options of a peer), BP_TXMODE (the
#                              vmso-device --tx-mode; empty: its default, wire), BP_TX (what
#                              the TAP gets from the guest: gso = superpackets handed to a
#                              vnet_hdr TAP, wire = real MTU frames) and BP_DESC for POINT:
#                                e1000e, igb, virtio-net   QEMU's own NICs on the TAP as users
#                                                 run them (QEMU's default: a vnet_hdr TAP,
#                                                 GSO hand-off; virtio-net-pci with vhost=off)
#                                e1000e-wire, virtio-net-wire  the same with vnet_hdr=off: QEMU
#                                                 must segment, the TAP gets MTU frames
#                                vmso-virt        dma_mode=virt tso=device, LRO on (default;
#                                                 wire mode: the device segments)
#                                vmso-handoff     the default with --tx-mode handoff (TSO/USO
#                                                 superpackets handed to the TAP in one write)
#                                vmso-hostgro     the default with --host-gro-us 50 (IFF_NAPI TAP:
#                                                 the host coalesces the device's MTU frames)
#                                vmso-1x          the default with vmso.ko mq=0: the ABI 1.x layout
#                                                 (a TX, an RX and a misc vector; for ci/perpacket.sh)
#                                vmso-phys        dma_mode=phys (otherwise the default)
#                                vmso-tso-driver  tso=driver (otherwise the default)
#                                vmso-lro-off     ethtool -K rx-gro-hw off (otherwise the default)
#   bench_tap_reset            TUNSETOFFLOAD 0 on $TAP: bench_run starts every boot with it
#                              (a peer's offloads outlive it; see the comment there)
#   bench_build_tools          builds vmso-zc (static, guest) and vmso-zc-recv (host) in the
#                              private copy vmso_build made (call vmso_build first); sets
#                              BENCH_ZC_TOOL/BENCH_ZC_RECV, or BENCH_ZC_SKIP (the reason)
#   bench_run POINT REP DIR    one boot: device (vmso points), iperf3 server, vmso-zc-recv
#                              (vmso points with the zero-copy tool), the guest; writes
#                              DIR/summary.env (key=value). Returns 1 if the guest could
#                              not run the workloads (boot, driver, link or ping failed);
#                              a single failed workload only leaves its figure out
#                              (<workload>_ok=0 in summary.env).
#   bench_engine OUT           cargo bench -p vmso-device --bench engine > OUT (RESULT lines)
#   bench_monitor_start LOG    start ci/lib/bench-monitor.py (CPU of other processes, other
#                              QEMU guests, every second) for the rest of the run
#   bench_wait_idle MAX_S      wait until no other process is busy (BENCH_BUSY_MAX cores) and
#                              no other QEMU guest runs, at most MAX_S seconds
#   bench_window_stats T0 T1   "mean foreign cores, max foreign guests, top command" in [T0,T1]
#   bench_machine_env          machine facts as key=value lines on stdout
#   bench_irq_time_accounting  y|n|? : CONFIG_IRQ_TIME_ACCOUNTING of the host kernel
#
# Host CPU per workload: ci/lib/bench-cpu.py follows the console for the BENCH-MARK lines the
# guest prints around each iperf3 run and samples /proc there: utime+stime of QEMU, vmso-device
# and the iperf3 server (each a process tree, all threads), softirq and irq time of all CPUs,
# and the TAP's counters; into DIR/cpu.env, merged into summary.env (<workload>_cpu_*_s,
# <workload>_tap_*). What is and is not counted: see the docstring of bench-cpu.py.
#
# Workloads, in this order in each boot (all guest -> host iperf3 client, server in $NS):
#   tcp_tx     iperf3 -c HOST -t BENCH_SECS                       TCP guest -> host
#   tcp_rx     iperf3 -c HOST -t BENCH_SECS -R                    TCP host -> guest
#   udp        iperf3 -c HOST -u -b BENCH_UDP_RATE -l BENCH_UDP_LEN -t BENCH_SECS
#              (receiver throughput, loss %)
#   tcp_tx_z   iperf3 -c HOST -Z -t BENCH_SECS                    sendfile, guest -> host
#   zc / copy  vmso-zc: BENCH_ZC_BYTES through /dev/vmso0 (USO, user VA) and then the
#              same bytes through a UDP socket (send() per datagram); vmso points only
#
# Environment (defaults): BENCH_SECS (10), BENCH_UDP_RATE (10G), BENCH_UDP_LEN (1400),
# BENCH_ZC (auto: run the zero-copy tool if it builds; 0: never), BENCH_ZC_BYTES (256M),
# BENCH_ZC_MSS (1448), BENCH_ZC_CHUNK (64K), BENCH_ZC_WINDOW (8), BENCH_BUSY_MAX (0.2).

# shellcheck source=ci/lib/vmso.sh
source "$(dirname "${BASH_SOURCE[0]}")/vmso.sh"

BENCH_POINTS_ALL=(e1000e igb virtio-net e1000e-wire virtio-net-wire vmso-virt vmso-handoff vmso-hostgro vmso-phys
    vmso-tso-driver vmso-lro-off)
BENCH_WORKLOADS=(tcp_tx tcp_rx udp tcp_tx_z)
BENCH_SECS=${BENCH_SECS:-10}
BENCH_UDP_RATE=${BENCH_UDP_RATE:-10G}
BENCH_UDP_LEN=${BENCH_UDP_LEN:-1400}
# A boot is disturbed when other processes used more than this many host cores on average
# during it, or another QEMU guest ran.
BENCH_BUSY_MAX=${BENCH_BUSY_MAX:-0.2}
BENCH_ZC=${BENCH_ZC:-auto}
BENCH_ZC_BYTES=${BENCH_ZC_BYTES:-256M}
BENCH_ZC_MSS=${BENCH_ZC_MSS:-1448}
BENCH_ZC_CHUNK=${BENCH_ZC_CHUNK:-64K}
BENCH_ZC_WINDOW=${BENCH_ZC_WINDOW:-8}
BENCH_ZC_PORT=9000
BENCH_ZC_SPORT=40000 # vmso-zc: zero-copy flow from this port, copy flow from +1
BENCH_ZC_TOOL=
BENCH_ZC_RECV=
BENCH_ZC_SKIP=
# vmso-zc's own time limit, and the host receiver's
BENCH_ZC_TIMEOUT=${BENCH_ZC_TIMEOUT:-120}

bench_point() {
    BP_KIND=vmso BP_MODEL=vmso BP_DMA=virt BP_TSO=device BP_LRO=on BP_NETDEV='' BP_TXMODE='' BP_TX=wire
    BP_DEVARGS='' BP_MODPARAMS=''
    case $1 in
        e1000e | igb) BP_KIND=peer BP_MODEL=$1 BP_TX=gso ;;
        virtio-net) BP_KIND=peer BP_MODEL=virtio-net-pci BP_TX=gso ;;
        e1000e-wire) BP_KIND=peer BP_MODEL=e1000e BP_NETDEV=vnet_hdr=off ;;
        virtio-net-wire) BP_KIND=peer BP_MODEL=virtio-net-pci BP_NETDEV=vnet_hdr=off ;;
        vmso-virt) ;;
        vmso-handoff) BP_TXMODE=handoff BP_TX=gso ;;
        vmso-hostgro) BP_DEVARGS='--host-gro-us 50' ;;
        vmso-1x) BP_MODPARAMS='mq=0' ;;
        vmso-phys) BP_DMA=phys ;;
        vmso-tso-driver) BP_TSO=driver ;;
        vmso-lro-off) BP_LRO=off ;;
        *) die "unknown benchmark point '$1' (known: ${BENCH_POINTS_ALL[*]})" ;;
    esac
    if [[ $BP_KIND == peer ]]; then
        BP_DMA='' BP_TSO='' BP_LRO=''
        BP_DESC=$(_bench_peer_desc "$BP_MODEL")${BP_NETDEV:+, -netdev tap,...,$BP_NETDEV}
    else
        BP_DESC="vmso dma_mode=$BP_DMA tso=$BP_TSO lro=$BP_LRO${BP_TXMODE:+ --tx-mode $BP_TXMODE}${BP_DEVARGS:+ $BP_DEVARGS}${BP_MODPARAMS:+ vmso.ko $BP_MODPARAMS}"
    fi
}
# The description of a peer: "QEMU e1000e (userspace)", "QEMU virtio-net-pci (userspace, vhost=off)"
_bench_peer_desc() {
    case $1 in
        virtio-net-pci) echo "QEMU virtio-net-pci (userspace, vhost=off)" ;;
        *) echo "QEMU $1 (userspace)" ;;
    esac
}

bench_build_tools() {
    BENCH_ZC_TOOL='' BENCH_ZC_RECV='' BENCH_ZC_SKIP=''
    if [[ "$BENCH_ZC" == 0 ]]; then
        BENCH_ZC_SKIP="switched off (BENCH_ZC=0)"
        return 0
    fi
    [[ -n "$VMSO_KO_BUILD" && -d "$VMSO_KO_BUILD" ]] || die "bench_build_tools: call vmso_build first"
    local d=$VMSO_KO_BUILD/tools
    if [[ ! -r "$d/vmso-zc.c" || ! -r "$d/vmso-zc-recv.c" || ! -r "$d/Makefile" ]]; then
        BENCH_ZC_SKIP="guest-driver/tools has no vmso-zc.c / vmso-zc-recv.c / Makefile"
    elif ! make -B -C "$d" CC=gcc HOSTCC=gcc >"$d/build.log" 2>&1; then
        BENCH_ZC_SKIP="guest-driver/tools does not build (make -C guest-driver/tools; log $d/build.log)"
        sed 's/^/tools| /' "$d/build.log" >&2
    elif [[ ! -x "$d/vmso-zc" || ! -x "$d/vmso-zc-recv" ]]; then
        BENCH_ZC_SKIP="guest-driver/tools built no vmso-zc / vmso-zc-recv"
    else
        BENCH_ZC_TOOL=$d/vmso-zc
        BENCH_ZC_RECV=$d/vmso-zc-recv
    fi
    if [[ -n "$BENCH_ZC_SKIP" ]]; then
        [[ "$BENCH_ZC" == 1 ]] && die "zero-copy tool required (BENCH_ZC=1) but: $BENCH_ZC_SKIP"
        warn "zero-copy workload skipped: $BENCH_ZC_SKIP"
    fi
    return 0
}

# ------------------------------------------------------------------ guest script
_bench_guest_script() { # POINT: the guest's /run.sh on stdout
    local zc=0
    [[ $BP_KIND == vmso && -n "$BENCH_ZC_TOOL" ]] && zc=1
    cat <<EOF
# generated by ci/lib/bench.sh for point $1 ($BP_DESC)
EOF
    if [[ $BP_KIND == peer ]]; then
        cat <<EOF
modprobe -a $PEER_MODULE || { result modprobe=fail; exit 1; }
result modprobe=ok
EOF
    else
        cat <<EOF
modprobe vmso dma_mode=$BP_DMA tso=$BP_TSO $BP_MODPARAMS || { result modprobe=fail; dmesg | tail -n 30; exit 1; }
result modprobe=ok dma_mode=\$(cat /sys/module/vmso/parameters/dma_mode) tso=\$(cat /sys/module/vmso/parameters/tso)
EOF
    fi
    cat <<EOF
net_up $GUEST_IP/$NET_PREFIX || { dmesg | tail -n 30; exit 1; }
EOF
    if [[ $BP_KIND == vmso ]]; then
        cat <<EOF
ethtool -K "\$NIC" rx-gro-hw $BP_LRO || { result lro_set=fail; exit 1; }
EOF
    fi
    cat <<EOF
ethtool -i "\$NIC" | head -n 2
ethtool -k "\$NIC" | grep -E '^(scatter-gather|tcp-segmentation-offload|tx-checksumming|rx-checksumming|generic-receive-offload|rx-gro-hw|large-receive-offload):'
result lro=\$(ethtool -k "\$NIC" | sed -n 's/^rx-gro-hw: \([a-z]*\).*/\1/p') tso_feature=\$(ethtool -k "\$NIC" | sed -n 's/^tcp-segmentation-offload: \([a-z]*\).*/\1/p')
ping_check $HOST_IP 3 || { dmesg | tail -n 30; exit 1; }
export IPERF_TIMEOUT=$((BENCH_SECS + 30)) IPERF_MARKS=1
iperf_run tcp_tx -c $HOST_IP -t $BENCH_SECS
sleep 1
iperf_run tcp_rx -c $HOST_IP -t $BENCH_SECS -R
sleep 1
iperf_run udp -c $HOST_IP -u -b $BENCH_UDP_RATE -l $BENCH_UDP_LEN -t $BENCH_SECS
sleep 1
iperf_run tcp_tx_z -c $HOST_IP -Z -t $BENCH_SECS
EOF
    if [[ $BP_KIND == vmso ]]; then
        # The counters of the iperf3 workloads (before the zero-copy tool adds its own
        # VA translations): the knob checks in ci/bench.sh read them.
        cat <<EOF
ethtool_stats_results
EOF
    fi
    if (( zc )); then
        cat <<EOF
sleep 1
timeout $((BENCH_ZC_TIMEOUT + 10)) vmso-zc --dev /dev/vmso0 --dst $HOST_IP --dst-mac $BENCH_HOST_MAC \\
    --dport $BENCH_ZC_PORT --sport $BENCH_ZC_SPORT --proto udp --bytes $BENCH_ZC_BYTES \\
    --chunk $BENCH_ZC_CHUNK --window $BENCH_ZC_WINDOW --mss $BENCH_ZC_MSS --timeout $BENCH_ZC_TIMEOUT \\
    || result zc_tool_ok=0 zc_tool_rc=\$?
EOF
    fi
    cat <<EOF
warns=\$(dmesg | grep -cE 'WARNING:|BUG:|Oops|general protection|Call Trace')
result kernel_warnings=\$warns
[ "\$warns" -eq 0 ] || dmesg | grep -E -A 20 'WARNING:|BUG:|Oops|general protection'
exit 0
EOF
}

# ------------------------------------------------------------------ the TAP between boots
# A QEMU peer sets the TAP's offloads (TUNSETOFFLOAD) for its vnet_hdr, and they outlive it:
# after e1000e or igb the TAP keeps tx-checksumming on. vmso-device reads the TAP without
# vnet_hdr and does not reset them, so it would get host->guest frames with unfinished
# checksums (CHECKSUM_PARTIAL) and flag them bad (rx_csum_bad): TCP to the guest stalls.
# So every boot starts from a TAP with no offloads, whatever ran before it.
# bench_tap_features: "tx-checksumming=on tcp-segmentation-offload=off ..." of $TAP
bench_tap_features() {
    ns_exec ethtool -k "$TAP" 2>/dev/null | awk -F': ' '/^(tx-checksumming|tcp-segmentation-offload|udp-fragmentation-offload|tx-udp-segmentation):/ { split($2, v, " "); printf "%s%s=%s", (n++ ? "," : ""), $1, v[1] } END { print "" }'
}

# bench_tap_reset: TUNSETOFFLOAD 0 on $TAP (attaches to it for a moment: nothing may hold it)
bench_tap_reset() {
    ns_exec python3 - "$TAP" <<'PY'
import fcntl, os, struct, sys
TUNSETIFF, TUNSETOFFLOAD = 0x400454CA, 0x400454D0
IFF_TAP, IFF_NO_PI = 0x0002, 0x1000
fd = os.open("/dev/net/tun", os.O_RDWR)
try:
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", sys.argv[1].encode(), IFF_TAP | IFF_NO_PI))
    fcntl.ioctl(fd, TUNSETOFFLOAD, 0)
finally:
    os.close(fd)
PY
}

# ------------------------------------------------------------------ one boot
bench_run() {
    (( $# == 3 )) || die "usage: bench_run POINT REP DIR"
    local point=$1 rep=$2 dir=$3 sock='' tmp dev_pid='' srv_pid recv_pid='' i ok=1 zc=0
    local dev_rc=''
    local -A h0 h1
    [[ -n "${NS:-}" && -n "${TAP:-}" ]] || die "bench_run: no netns/TAP (call netns_setup first)"
    bench_point "$point"
    rm -rf "$dir"
    mkdir -p "$dir"
    BENCH_HOST_MAC=$(ns_exec cat "/sys/class/net/$TAP/address")
    local tap_before tap_after
    tap_before=$(bench_tap_features)
    bench_tap_reset || die "could not reset the offloads of $TAP (TUNSETOFFLOAD)"
    tap_after=$(bench_tap_features)
    [[ "$tap_after" != *=on* ]] || die "$TAP still has offloads on after TUNSETOFFLOAD 0: $tap_after"
    [[ $BP_KIND == vmso && -n "$BENCH_ZC_TOOL" ]] && zc=1

    local qemu_args=() dev_args=()
    if [[ $BP_KIND == peer ]]; then
        peer_nic_args "$BP_MODEL" "$BP_NETDEV"
        qemu_args=("${PEER_ARGS[@]}")
        GUEST_FILES=()
    else
        tmp=$(mktemp -d "${TMPDIR:-/tmp}/vmso-bench.XXXXXX")
        on_cleanup "rm -rf '$tmp'"
        sock=$tmp/vmso.sock
        dev_args=(--mac "$VMSO_MAC" --log-level info --once)
        [[ -n "$BP_TXMODE" ]] && dev_args+=(--tx-mode "$BP_TXMODE")
        # shellcheck disable=SC2206 # BP_DEVARGS is a list of options
        [[ -n "$BP_DEVARGS" ]] && dev_args+=($BP_DEVARGS)
        if ! vmso_device_start "$dir/device.log" "$sock" "${dev_args[@]}"; then
            warn "[$point rep $rep] vmso-device did not create its socket (see $dir/device.log)"
            # the device's own reason (e.g. an option this build does not know) for the report
            {
                echo "run_ok=0"
                echo "check=vmso-device ($BP_DESC) did not start: $(grep -m 1 -iE 'error|panicked' "$dir/device.log" | tr -d '\r' | cut -c 1-200)"
            } >"$dir/summary.env"
            return 1
        fi
        dev_pid=$VMSO_DEV_PID
        qemu_args=(-device "$(vfio_user_device_json "$sock")")
        GUEST_FILES=("$VMSO_KO")
        (( zc )) && GUEST_FILES+=("$BENCH_ZC_TOOL:/usr/bin/vmso-zc")
    fi

    local guest_timeout=$((90 + 4 * (BENCH_SECS + 10) + (zc ? BENCH_ZC_TIMEOUT + 20 : 0)))
    ns_bg "$dir/iperf3-server.log" timeout $((guest_timeout + 30)) iperf3 -s -B "$HOST_IP" --forceflush
    srv_pid=$BG_PID
    if ! wait_tcp_listen 5201 10; then
        vmso_device_stop
        bg_stop "$srv_pid"
        warn "[$point rep $rep] iperf3 server did not start (see $dir/iperf3-server.log)"
        echo "run_ok=0" >"$dir/summary.env"
        return 1
    fi
    if (( zc )); then
        ns_bg "$dir/zc-recv.log" "$BENCH_ZC_RECV" --bind "$HOST_IP" --port "$BENCH_ZC_PORT" \
            --timeout $((guest_timeout + 30)) --idle $((guest_timeout + 30))
        recv_pid=$BG_PID
    fi

    GUEST_DIR=$dir
    GUEST_BOOT=pvh
    GUEST_CPU=''
    GUEST_SMP=1
    GUEST_TIMEOUT=$guest_timeout
    _bench_guest_script "$point" >"$dir/run.sh"

    # The CPU sampler (inside the netns, so that it sees the TAP's counters); QEMU's pid comes
    # from the qemu.pid boot_guest writes. vmso-zc-recv is not counted: it idles during the
    # iperf3 workloads, the only ones measured.
    local cpu_pid cpu_roles=(--pid "iperf3=$srv_pid")
    [[ -n "$dev_pid" ]] && cpu_roles+=(--pid "device=$dev_pid")
    rm -f "$dir/qemu.pid" "$dir/cpu.env"
    : >"$dir/console.log"
    # BENCH_TRACE=1: QEMU logs its MMIO writes/reads and notifications per NIC model
    # (the "log" trace backend), counted per workload window: per-packet costs.
    if [[ "${BENCH_TRACE:-0}" == 1 ]]; then
        : >"$dir/trace.log"
        cpu_roles+=(--trace "$dir/trace.log")
        qemu_args+=(-D "$dir/trace.log" -trace "enable=e1000e_core_write" -trace "enable=e1000e_core_read"
            -trace "enable=vfio_region_write" -trace "enable=vfio_region_read"
            -trace "enable=virtio_queue_notify" -trace "enable=virtio_notify")
    fi
    ns_bg "$dir/cpu.log" python3 "$REPO/ci/lib/bench-cpu.py" "$dir/console.log" "$dir/cpu.env" \
        --pidfile "qemu=$dir/qemu.pid" "${cpu_roles[@]}" --tap "$TAP" --timeout $((guest_timeout + 30))
    cpu_pid=$BG_PID

    ns_counters h0
    log "[$point rep $rep] $BP_DESC; logs in ${dir#"$REPO"/}"
    boot_guest "$dir/run.sh" "${qemu_args[@]}" || ok=0
    ns_counters h1
    guest_results >"$dir/results.env" 2>/dev/null || true

    if [[ -n "$dev_pid" ]]; then
        # --once: the device exits after QEMU goes.
        vmso_device_wait_exit 10
        dev_rc=$VMSO_DEV_RC
        [[ "$dev_rc" != running ]] || warn "[$point rep $rep] vmso-device --once still running 10 s after QEMU exited"
        grep -q panicked "$dir/device.log" && dev_rc="$dev_rc,panicked"
        rm -rf "$tmp"
    fi
    bg_wait "$cpu_pid" 20 # it exits on VMSO-DONE or when QEMU is gone
    bg_stop "$srv_pid"
    if [[ -n "$recv_pid" ]]; then
        kill -INT "$recv_pid" 2>/dev/null
        bg_wait "$recv_pid" 50
    fi

    res() { awk -F= -v k="$1" '$1 == k { v = substr($0, length(k) + 2) } END { print (v == "" ? "?" : v) }' "$dir/results.env"; }
    flow() { # SPORT KEY: from vmso-zc-recv's per-flow RESULT line
        awk -v f="$1" -v k="$2" '$1 == "RESULT" {
                fl = ""; for (i = 2; i <= NF; i++) if ($i ~ /^flow=/) fl = substr($i, 6)
                if (fl != f) next
                for (i = 2; i <= NF; i++) if (index($i, k "=") == 1) v = substr($i, length(k) + 2)
            } END { print (v == "" ? "?" : v) }' "$dir/zc-recv.log" 2>/dev/null
    }
    local w checks=() run_ok=1
    [[ "$(res ping)" == ok ]] || run_ok=0
    (( ok )) || run_ok=0
    {
        echo "point=$point"
        echo "rep=$rep"
        echo "kind=$BP_KIND"
        echo "desc=$BP_DESC"
        echo "tx=$BP_TX"
        echo "run_ok=$run_ok"
        echo "guest_rc=${GUEST_RC:-?}"
        echo "boot_s=${GUEST_BOOT_S:-?}"
        echo "total_s=${GUEST_TOTAL_S:-?}"
        echo "driver=$(res driver)"
        for w in "${BENCH_WORKLOADS[@]}"; do
            echo "${w}_ok=$(res "${w}_ok")"
            echo "${w}_gbps=$(res "${w}_gbps")"
            echo "${w}_sender_gbps=$(res "${w}_sender_gbps")"
            echo "${w}_retr=$(res "${w}_retr")"
            echo "${w}_bytes=$(res "${w}_bytes")"
        done
        # host CPU and TAP counters per workload window (ci/lib/bench-cpu.py)
        [[ -r "$dir/cpu.env" ]] && cat "$dir/cpu.env"
        echo "udp_loss_pct=$(res udp_loss_pct)"
        echo "lro=$(res lro)"
        echo "tso_feature=$(res tso_feature)"
        echo "kernel_warnings=$(res kernel_warnings)"
        echo "host_tcp_retrans_segs=$(ns_counter_delta h0 h1 Tcp.RetransSegs)"
        echo "host_csum_errors=$(ns_csum_rise h0 h1)"
        echo "tap_tx_dropped=$(ns_counter_delta h0 h1 tap.tx_dropped)"
        echo "tap_offloads_left_by_previous_boot=$tap_before"
        if [[ $BP_KIND == vmso ]]; then
            echo "dma_mode=$(res dma_mode)"
            echo "tso_param=$(res tso)"
            echo "device_rc=${dev_rc:-?}"
            for w in tx_va_packets tx_phys_packets tx_tso_packets tx_driver_tso_packets rx_coalesced \
                rx_superpackets rx_gso_packets va_translations iotlb_hits iotlb_misses page_faults tx_errors \
                tx_va_fallbacks; do
                echo "stat_$w=$(res "stat_$w")"
            done
        fi
        if (( zc )); then
            echo "zc_ok=$(res zc_tool_ok)"
            echo "zc_gbps=$(res zc_gbps)"
            echo "copy_gbps=$(res copy_gbps)"
            echo "zc_cpu_s_per_gb=$(res zc_cpu_s_per_gb)"
            echo "copy_cpu_s_per_gb=$(res copy_cpu_s_per_gb)"
            echo "zc_bytes=$(res zc_bytes)"
            echo "zc_rx_bytes=$(flow "$BENCH_ZC_SPORT" rx_bytes)"
            echo "zc_rx_lost=$(flow "$BENCH_ZC_SPORT" rx_lost)"
            echo "zc_rx_bad=$(flow "$BENCH_ZC_SPORT" rx_bad)"
            echo "copy_rx_bytes=$(flow $((BENCH_ZC_SPORT + 1)) rx_bytes)"
            echo "copy_rx_lost=$(flow $((BENCH_ZC_SPORT + 1)) rx_lost)"
            echo "copy_rx_bad=$(flow $((BENCH_ZC_SPORT + 1)) rx_bad)"
        fi
    } >"$dir/summary.env"

    # Knob checks: the point measured what it says it measured.
    _bench_get() { awk -F= -v k="$1" '$1 == k { v = substr($0, length(k) + 2) } END { print v }' "$dir/summary.env"; }
    if (( run_ok )) && [[ $BP_KIND == vmso ]]; then
        local n
        [[ "$(_bench_get dma_mode)" == "$BP_DMA" ]] || checks+=("dma_mode is $(_bench_get dma_mode), expected $BP_DMA")
        [[ "$(_bench_get tso_param)" == "$BP_TSO" ]] || checks+=("tso is $(_bench_get tso_param), expected $BP_TSO")
        [[ "$(_bench_get lro)" == "$BP_LRO" ]] || checks+=("rx-gro-hw (the receive coalescer) is $(_bench_get lro), expected $BP_LRO")
        n=$(_bench_get stat_tx_va_packets)
        if [[ $BP_DMA == virt ]]; then
            [[ "$n" =~ ^[1-9][0-9]*$ ]] || checks+=("tx_va_packets is '$n' with dma_mode=virt (expected > 0)")
        else
            [[ "$n" == 0 ]] || checks+=("tx_va_packets is '$n' with dma_mode=phys (expected 0)")
        fi
        n=$(_bench_get stat_tx_driver_tso_packets)
        if [[ $BP_TSO == driver ]]; then
            [[ "$n" =~ ^[1-9][0-9]*$ ]] || checks+=("tx_driver_tso_packets is '$n' with tso=driver (expected > 0)")
        else
            [[ "$n" == 0 ]] || checks+=("tx_driver_tso_packets is '$n' with tso=$BP_TSO (expected 0)")
            n=$(_bench_get stat_tx_tso_packets)
            [[ "$n" =~ ^[1-9][0-9]*$ ]] || checks+=("tx_tso_packets is '$n' with tso=device (expected > 0)")
        fi
        n=$(_bench_get stat_rx_coalesced)
        if [[ $BP_LRO == on ]]; then
            # The host hands superpackets over whole (vnet-header TAP): those are not
            # merged by the device, the MTU frames that still come are.
            local g
            g=$(_bench_get stat_rx_gso_packets)
            [[ "$n$g" =~ ^[0-9]+$ && "$n$g" =~ [1-9] ]] \
                || checks+=("rx_coalesced '$n' and rx_gso_packets '$g' with LRO on (expected one > 0)")
        else
            [[ "$n" == 0 ]] || checks+=("rx_coalesced is '$n' with LRO off (expected 0)")
        fi
        [[ "${dev_rc:-0}" == 0 ]] || checks+=("vmso-device exit: $dev_rc")
        if (( zc )) && [[ "$(_bench_get zc_ok)" == 1 ]]; then
            [[ "$(_bench_get zc_rx_bad)" == 0 && "$(_bench_get copy_rx_bad)" == 0 ]] \
                || checks+=("vmso-zc-recv found bad datagrams (zc $(_bench_get zc_rx_bad), copy $(_bench_get copy_rx_bad))")
        fi
    fi
    if (( run_ok )); then
        # What reached the TAP in TCP guest->host: real frames (mean <= 1514 B) or superpackets
        local mf
        mf=$(awk -F= '$1 == "tcp_tx_tap_rx_bytes" { b = $2 } $1 == "tcp_tx_tap_rx_packets" { n = $2 }
            END { if (n > 0) printf "%.0f", b / n }' "$dir/summary.env")
        if [[ -z "$mf" ]]; then
            checks+=("no TAP counters for tcp_tx (see $dir/cpu.log)")
        elif [[ $BP_TX == wire ]] && (( mf > 1514 )); then
            checks+=("mean frame written to the TAP in tcp_tx is $mf B: superpackets, not real frames")
        elif [[ $BP_TX == gso ]] && (( mf <= 1514 )); then
            checks+=("mean frame written to the TAP in tcp_tx is $mf B: no GSO hand-off")
        fi
        [[ "$(_bench_get kernel_warnings)" == 0 ]] || checks+=("guest kernel logged $(_bench_get kernel_warnings) WARNING/BUG line(s)")
        [[ "$(_bench_get host_csum_errors)" == 0 ]] || checks+=("host InCsumErrors rose by $(_bench_get host_csum_errors)")
        for w in "${BENCH_WORKLOADS[@]}"; do
            [[ "$(_bench_get "${w}_ok")" == 1 ]] || checks+=("workload $w failed (iperf3 rc $(res "${w}_rc"))")
        done
        if (( zc )); then
            [[ "$(_bench_get zc_ok)" == 1 ]] || checks+=("workload zc (vmso-zc) failed (rc $(res zc_tool_rc))")
        fi
    fi
    local c
    {
        echo "checks=${#checks[@]}"
        for c in "${checks[@]}"; do
            echo "check=$c"
        done
    } >>"$dir/summary.env"
    for c in "${checks[@]}"; do
        warn "[$point rep $rep] $c"
    done
    unset -f res flow _bench_get
    (( run_ok )) || { warn "[$point rep $rep] the guest did not run the workloads (console $dir/console.log)"; return 1; }
    return 0
}

# ------------------------------------------------------------------ machine load
# This is a shared 2-core machine: a guest or a build of someone else's during a boot
# changes its figures. ci/lib/bench-monitor.py samples, every second, the CPU used by
# processes that are not this run's (and their QEMU guests) into BENCH_MONITOR_LOG.
BENCH_MONITOR_LOG=
bench_monitor_start() { # LOG
    BENCH_MONITOR_LOG=$1
    : >"$BENCH_MONITOR_LOG"
    python3 "$REPO/ci/lib/bench-monitor.py" "$$" "$BENCH_MONITOR_LOG" 1 >/dev/null 2>&1 </dev/null &
    bg_track "$!"
}

# bench_window_stats T0 T1: "<mean foreign cores> <max foreign QEMU guests> <top foreign
# command> <mean steal cores>" over the monitor samples between T0 and T1 (unix times).
bench_window_stats() {
    awk -v a="$1" -v b="$2" '$1 > a && $1 <= b + 1 {
            n++; s += $2; st += $6; if ($4 > q) q = $4
            if ($2 >= 0.1) c[$5] += $2
        }
        END {
            top = "-"; m = 0
            for (k in c) if (c[k] > m) { m = c[k]; top = k }
            if (n) printf "%.2f %d %s %.2f\n", s / n, q, top, st / n; else print "? 0 - ?"
        }' "$BENCH_MONITOR_LOG"
}

# bench_wait_idle MAX_S: wait (up to MAX_S seconds) until the last 3 monitor samples show
# less than BENCH_BUSY_MAX foreign cores and no foreign QEMU guest. Sets BENCH_WAITED (s).
bench_wait_idle() {
    local max=$1 t0 i last
    BENCH_WAITED=0
    [[ -n "$BENCH_MONITOR_LOG" ]] || return 0
    t0=$(date +%s)
    for ((i = 0; ; i++)); do
        if tail -n 3 "$BENCH_MONITOR_LOG" | awk -v t="$BENCH_BUSY_MAX" \
            'NF >= 4 { n++; if ($2 > t || $4 > 0) busy = 1 } END { exit !(n == 3 && !busy) }'; then
            BENCH_WAITED=$(($(date +%s) - t0))
            return 0
        fi
        BENCH_WAITED=$(($(date +%s) - t0))
        if (( BENCH_WAITED >= max )); then
            warn "the machine is still busy after ${max}s ($(tail -n 1 "$BENCH_MONITOR_LOG" | awk '{ printf "%s foreign cores, %d foreign QEMU guests, top: %s", $2, $4, $5 }')): going on"
            return 1
        fi
        if (( i % 30 == 0 )); then
            last=$(tail -n 1 "$BENCH_MONITOR_LOG" | awk '{ printf "%s foreign cores, %d foreign QEMU guests, top: %s", $2, $4, $5 }')
            log "waiting for the machine to be idle (${last:-no sample yet}; up to ${max}s)"
        fi
        sleep 1
    done
}

# ------------------------------------------------------------------ engine bench, machine
bench_engine() {
    local out=$1
    need_cmd cargo
    log "engine bench: cargo bench -p vmso-device --bench engine"
    (cd "$REPO" && cargo bench -q -p vmso-device --bench engine) >"$out" 2>"$out.stderr"
}

# bench_irq_time_accounting: y if the host kernel has CONFIG_IRQ_TIME_ACCOUNTING, n if not,
# ? if its config cannot be read
bench_irq_time_accounting() {
    local cfg line=''
    cfg=/boot/config-$(uname -r)
    if [[ -r /proc/config.gz ]]; then
        line=$(zcat /proc/config.gz 2>/dev/null | grep -E '^(# )?CONFIG_IRQ_TIME_ACCOUNTING[ =]' || true)
    elif [[ -r "$cfg" ]]; then
        line=$(grep -E '^(# )?CONFIG_IRQ_TIME_ACCOUNTING[ =]' "$cfg" || true)
    fi
    case ${line:-} in
        CONFIG_IRQ_TIME_ACCOUNTING=y) echo y ;;
        "# CONFIG_IRQ_TIME_ACCOUNTING is not set") echo n ;;
        *) echo '?' ;;
    esac
}

bench_machine_env() {
    local cpu
    cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
    echo "host_kernel=$(uname -r)"
    echo "host_cpus=$(nproc)"
    echo "host_cpu_model=${cpu:-?}"
    echo "host_mem_gib=$(awk '$1 == "MemTotal:" { printf "%.1f", $2 / 1048576 }' /proc/meminfo)"
    echo "host_os=$(sed -n 's/^PRETTY_NAME="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' /etc/os-release 2>/dev/null)"
    echo "qemu_version=$("${QEMU[@]}" --version | head -n 1)"
    echo "guest_kernel=$KVER"
    echo "iperf3_version=$(iperf3 --version 2>/dev/null | head -n 1)"
    echo "rustc_version=$(rustc --version 2>/dev/null)"
    echo "accel=tcg"
    echo "guest_smp=1"
    echo "guest_cpu=default (qemu64)"
    echo "guest_mem=$GUEST_MEM"
    echo "guest_boot=pvh (4-level paging)"
}
