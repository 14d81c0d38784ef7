# shellcheck shell=bash
# Variables are set here for the scripts that source this file:
# shellcheck disable=SC2034
# ci/lib/guest.sh - boot the test guest under TCG and read its results.
#
#   boot_guest RUN_SH [QEMU_ARGS...]
#       Builds a per-run initramfs (base + RUN_SH as /run.sh + GUEST_FILES), boots
#       $GUEST_KERNEL with the sysroot QEMU inside $NS (when NS is set, so that
#       -netdev tap,ifname=$TAP finds the TAP), streams the serial console to
#       stderr ("guest| ..."), and waits for QEMU to exit (bounded by GUEST_TIMEOUT).
#       Returns 0 iff QEMU exited 0 and the guest printed "VMSO-DONE rc=0".
#   guest_result KEY         value of KEY from the last "RESULT ... KEY=value" line (or
#                            from the iperf3 reports: NAME_gbps, NAME_ok, ...)
#   guest_results            every RESULT key=value pair, one per line, then the figures
#                            of the iperf3 -J reports the guest printed ("IPERF-JSON"
#                            lines, read by ci/lib/iperf-json.py)
#   peer_nic_args MODEL [NETDEV_OPTS]
#                            sets PEER_ARGS (array): QEMU's own NIC MODEL on $TAP
#                            (e1000e | igb | virtio-net-pci); NETDEV_OPTS are appended to
#                            the -netdev tap options (e.g. vnet_hdr=off); PEER_MODULE: its
#                            guest module(s), space separated, for "modprobe -a"
#
# Inputs (set before calling; defaults shown):
#   GUEST_DIR=$RESULTS/guest   where console.log, qemu.stderr, initrd.gz go
#   GUEST_FILES=()             extra initramfs files, SRC[:DEST] (see make_initramfs)
#   GUEST_TIMEOUT=120          seconds before QEMU is killed
#   GUEST_MEM=1G GUEST_SMP=1 GUEST_MACHINE=q35 GUEST_CPU= (QEMU default model)
#   GUEST_APPEND="console=ttyS0 panic=-1 ipv6.disable=1 quiet"  + GUEST_APPEND_EXTRA
#   GUEST_BOOT=pvh             pvh: boot $GUEST_VMLINUX through its PVH entry (fast: no XZ
#                              decompression under TCG; the kernel then always runs 4-level
#                              paging). bzimage: boot $GUEST_KERNEL the classic way (with
#                              GUEST_CPU=max the guest then runs 5-level paging).
#   GUEST_QMP=                 if set, a QMP unix socket path
#   GUEST_QUIET=0              1: do not stream the console
# Outputs:
#   GUEST_LOG      console log (raw, may contain \r)
#   GUEST_RC       QEMU's exit status (124: timed out)
#   GUEST_BOOT_S   host wall seconds from QEMU start to the guest's /init ("VMSO-INIT")
#   GUEST_TOTAL_S  host wall seconds from QEMU start to QEMU exit
#   $GUEST_DIR/qemu.pid  the pid boot_guest started (timeout(1), QEMU is its child), written
#                  as soon as it runs (ci/lib/bench-cpu.py reads it)
#
# Guest RAM is a shared memfd (memory-backend-memfd,share=on): vfio-user needs it.
# QEMU runs as process qemu-vmso with named threads (debug-threads=on: the vCPU is "CPU 0/TCG").

# shellcheck source=ci/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# shellcheck source=ci/lib/initramfs.sh
source "$(dirname "${BASH_SOURCE[0]}")/initramfs.sh"

GUEST_DIR=${GUEST_DIR:-$RESULTS/guest}
GUEST_TIMEOUT=${GUEST_TIMEOUT:-120}
GUEST_MEM=${GUEST_MEM:-1G}
GUEST_SMP=${GUEST_SMP:-1}
GUEST_MACHINE=${GUEST_MACHINE:-q35}
GUEST_CPU=${GUEST_CPU:-}
GUEST_APPEND=${GUEST_APPEND:-console=ttyS0 panic=-1 ipv6.disable=1 quiet}
GUEST_APPEND_EXTRA=${GUEST_APPEND_EXTRA:-}
GUEST_BOOT=${GUEST_BOOT:-pvh}
GUEST_QMP=${GUEST_QMP:-}
GUEST_QUIET=${GUEST_QUIET:-0}
if ! declare -p GUEST_FILES >/dev/null 2>&1; then
    GUEST_FILES=()
fi
GUEST_LOG=
GUEST_RC=
GUEST_BOOT_S=
GUEST_TOTAL_S=
PEER_ARGS=()
PEER_MODULE=

peer_nic_args() {
    local model=$1 opts=${2:-} mac=52:54:00:12:34:56 netdev
    [[ -n "${TAP:-}" ]] || die "peer_nic_args: no TAP (call netns_setup first)"
    netdev="tap,id=n0,ifname=$TAP,script=no,downscript=no"
    case $model in
        e1000e) PEER_MODULE=e1000e ;;
        igb) PEER_MODULE=igb ;;
        virtio-net-pci)
            PEER_MODULE="virtio_pci virtio_net" # no udev: the PCI transport is not autoloaded
            netdev+=",vhost=off"
            ;;
        *) die "peer_nic_args: unknown NIC model '$model' (e1000e, igb, virtio-net-pci)" ;;
    esac
    PEER_ARGS=(-netdev "$netdev${opts:+,$opts}" -device "$model,netdev=n0,mac=$mac,romfile=")
}

boot_guest() {
    (( $# >= 1 )) || die "usage: boot_guest RUN_SH [QEMU_ARGS...]"
    local run=$1 start line qpid initrd kernel cmd=()
    shift
    need_setup
    case $GUEST_BOOT in
        pvh) kernel=$GUEST_VMLINUX ;;
        bzimage) kernel=$GUEST_KERNEL ;;
        *) die "GUEST_BOOT must be pvh or bzimage, not '$GUEST_BOOT'" ;;
    esac
    mkdir -p "$GUEST_DIR"
    GUEST_LOG=$GUEST_DIR/console.log
    initrd=$GUEST_DIR/initrd.gz
    make_initramfs "$initrd" "$run" "${GUEST_FILES[@]}" || return 1

    [[ -n "${NS:-}" ]] && cmd=(ip netns exec "$NS")
    cmd+=(timeout -k 10 "$GUEST_TIMEOUT" "${QEMU[@]}"
        -name "vmso-guest,process=qemu-vmso,debug-threads=on"
        -accel tcg -smp "$GUEST_SMP" -m "$GUEST_MEM"
        -object "memory-backend-memfd,id=mem,size=$GUEST_MEM,share=on"
        -machine "$GUEST_MACHINE,memory-backend=mem"
        -nodefaults -no-user-config -display none -no-reboot
        -kernel "$kernel" -initrd "$initrd"
        -append "$GUEST_APPEND${GUEST_APPEND_EXTRA:+ $GUEST_APPEND_EXTRA}"
        -serial "file:$GUEST_LOG")
    [[ -n "$GUEST_CPU" ]] && cmd+=(-cpu "$GUEST_CPU")
    [[ -n "$GUEST_QMP" ]] && cmd+=(-qmp "unix:$GUEST_QMP,server=on,wait=off")
    cmd+=("$@")
    printf '%q ' "${cmd[@]}" >"$GUEST_DIR/qemu.cmdline"
    echo >>"$GUEST_DIR/qemu.cmdline"

    : >"$GUEST_LOG"
    GUEST_BOOT_S=
    start=$(now)
    "${cmd[@]}" >"$GUEST_DIR/qemu.stderr" 2>&1 </dev/null &
    qpid=$!
    echo "$qpid" >"$GUEST_DIR/qemu.pid"
    declare -F bg_track >/dev/null && bg_track "$qpid"
    log "guest booting ($GUEST_MACHINE, $GUEST_BOOT, timeout ${GUEST_TIMEOUT}s, console $GUEST_LOG)"
    while IFS= read -r line || [[ -n "$line" ]]; do
        line=${line//$'\r'/}
        if [[ -z "$GUEST_BOOT_S" && "$line" == *VMSO-INIT* ]]; then
            GUEST_BOOT_S=$(awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')
        fi
        if (( ! GUEST_QUIET )); then
            # an iperf3 -J report is one long line: its figures are what matters
            [[ "$line" == "IPERF-JSON "* ]] && line="${line%% \{*} ($(( ${#line} / 1024 )) KiB of JSON)"
            printf 'guest| %s\n' "$line" >&2
        fi
    done < <(tail -n +1 -F --pid="$qpid" "$GUEST_LOG" 2>/dev/null)
    GUEST_RC=0
    wait "$qpid" || GUEST_RC=$?
    GUEST_TOTAL_S=$(awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')
    if [[ -s "$GUEST_DIR/qemu.stderr" ]]; then
        sed 's/^/qemu| /' "$GUEST_DIR/qemu.stderr" >&2
    fi
    if (( GUEST_RC == 124 || GUEST_RC == 137 )); then
        warn "guest timed out after ${GUEST_TIMEOUT}s (console: $GUEST_LOG)"
        return 1
    fi
    if (( GUEST_RC != 0 )); then
        warn "QEMU exited with status $GUEST_RC (see $GUEST_DIR/qemu.stderr)"
        return 1
    fi
    [[ -n "$GUEST_BOOT_S" ]] || { warn "the guest never reached /init (console: $GUEST_LOG)"; return 1; }
    local done_rc
    done_rc=$(tr -d '\r' <"$GUEST_LOG" | sed -n 's/^VMSO-DONE rc=\([0-9]*\).*/\1/p' | tail -n1)
    if [[ "$done_rc" != 0 ]]; then
        warn "guest run script failed (rc=${done_rc:-none}; console: $GUEST_LOG)"
        return 1
    fi
    log "guest done: /init after ${GUEST_BOOT_S}s, QEMU exited after ${GUEST_TOTAL_S}s"
}

guest_results() {
    [[ -r "$GUEST_LOG" ]] || return 1
    tr -d '\r' <"$GUEST_LOG" | awk '$1 == "RESULT" { for (i = 2; i <= NF; i++) if ($i ~ /^[A-Za-z0-9_.-]+=/) print $i }'
    # the figures of the iperf3 reports (iperf_run prints them as IPERF-JSON lines)
    python3 "$REPO/ci/lib/iperf-json.py" "$GUEST_LOG"
}

guest_result() {
    guest_results | awk -v k="$1" 'index($0, k "=") == 1 { v = substr($0, length(k) + 2); f = 1 }
        END { if (!f) exit 1; print v }'
}
