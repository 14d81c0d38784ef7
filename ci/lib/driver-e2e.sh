# shellcheck shell=bash
# Variables are set here for the scripts that source this file:
# shellcheck disable=SC2034
# ci/lib/driver-e2e.sh - what the guest driver's end-to-end scripts share
# (guest-driver/tools/e2e-*.sh, ci/bench-mq.sh). Sources common.sh, netns.sh,
# device.sh and guest.sh.
#
#   driver_e2e_init OUT [CMD...]
#                   root, /dev/net/tun, ci/setup.sh's output, the host commands (iperf3,
#                   ss, timeout, tail, make, gcc, gcc-12, CMD...); OUT emptied; GUEST_DIR=OUT
#   driver_e2e_build OUT [TOOL...]
#                   builds vmso.ko in guest-driver/ (KDIR, CC=gcc-12), the named targets
#                   of guest-driver/tools (none: no tools), and vmso-device unless
#                   VMSO_DEVICE was set before this file was sourced; logs to
#                   OUT/build.log; dies on a failure
#   driver_e2e_host NETNS [DEVICE_OPTION...]
#                   the cleanup trap, netns NETNS with its TAP (TAP_MULTI_QUEUE=1: a
#                   multi-queue one), and vmso-device on SOCK=$OUT/vmso.sock
#   driver_e2e_iperf_server
#                   an iperf3 server on $HOST_IP:5201 (bounded by GUEST_TIMEOUT + 30 s)
#   guest_vars VAR...
#                   "VAR=value" lines of host variables, for the top of a guest script
#   driver_e2e_boot OUT SOCK
#                   boots the guest (OUT/run.sh) on vmso-device's socket SOCK, writes its
#                   results to OUT/results.env; sets GUEST_OK (1: the guest ran through);
#                   half a second later (the host's last frames) the host counters into
#                   HOST1 (ns_counters; take HOST0 before the boot)
#   res KEY         the guest's result KEY (guest_result), or ? if it printed none
#   check DESCRIPTION GOT WANT     records a failure in FAILS unless GOT is WANT
#   check_gt0 DESCRIPTION GOT      ... unless GOT is a number > 0
#   check_le DESCRIPTION GOT MAX   ... unless GOT is a number <= MAX
#   check_cmd DESCRIPTION CMD...   ... unless CMD succeeds
#   FAILS                          the descriptions of the failed checks
# Each check logs one line, "ok:   ..." or "FAIL: ...".

# Whether the caller named a device binary (then it is not built), before device.sh
# sets the default.
_DRIVER_E2E_DEVICE_GIVEN=${VMSO_DEVICE:+1}
# shellcheck source=ci/lib/device.sh
source "$(dirname "${BASH_SOURCE[0]}")/device.sh"
# shellcheck source=ci/lib/guest.sh
source "$(dirname "${BASH_SOURCE[0]}")/guest.sh"

FAILS=()

driver_e2e_init() { # OUT [CMD...]
    local out=$1
    shift
    need_root
    need_tun
    need_setup
    need_cmd iperf3 ss timeout tail make gcc gcc-12 "$@"
    rm -rf "$out"
    mkdir -p "$out"
    GUEST_DIR=$out
}

driver_e2e_host() { # NETNS [DEVICE_OPTION...]
    local ns=$1
    shift
    install_cleanup_trap
    netns_setup "$ns"
    log "netns $NS, $TAP = $HOST_IP/$NET_PREFIX"
    SOCK=$OUT/vmso.sock
    vmso_device_start "$OUT/device.log" "$SOCK" "$@" || die "vmso-device did not create $SOCK (see $OUT/device.log)"
}

driver_e2e_iperf_server() {
    ns_bg "$OUT/iperf3-server.log" timeout $((GUEST_TIMEOUT + 30)) iperf3 -s -B "$HOST_IP" --forceflush
    wait_tcp_listen 5201 10 || die "iperf3 server did not start (see $OUT/iperf3-server.log)"
}

guest_vars() { # VAR...
    local v
    for v in "$@"; do
        printf '%s=%q\n' "$v" "${!v}"
    done
}

driver_e2e_build() { # OUT [TOOL...]
    local out=$1
    shift
    log "building vmso.ko ($KDIR)${*:+, $*}${_DRIVER_E2E_DEVICE_GIVEN:- and the device}"
    make -s -C "$REPO/guest-driver" KDIR="$KDIR" CC=gcc-12 >"$out/build.log" 2>&1 \
        || die "vmso.ko build failed (see $out/build.log)"
    if (( $# )); then
        make -s -C "$REPO/guest-driver/tools" "$@" >>"$out/build.log" 2>&1 \
            || die "guest-driver/tools build failed (see $out/build.log)"
    fi
    if [[ -z "$_DRIVER_E2E_DEVICE_GIVEN" ]]; then
        vmso_device_build >>"$out/build.log" 2>&1 || die "cargo build of vmso-device failed (see $out/build.log)"
    fi
    [[ -x "$VMSO_DEVICE" ]] || die "device binary $VMSO_DEVICE missing"
}

driver_e2e_boot() { # OUT SOCK
    GUEST_OK=1
    boot_guest "$1/run.sh" -device "$(vfio_user_device_json "$2")" || GUEST_OK=0
    guest_results >"$1/results.env" || true
    sleep 0.5
    ns_counters HOST1
}

res() { # KEY
    guest_result "$1" 2>/dev/null || echo "?"
}

_check_result() { # OK DESCRIPTION DETAIL_IF_OK DETAIL_IF_FAILED
    if (( $1 )); then
        log "ok:   $2${3:+ ($3)}"
    else
        log "FAIL: $2${4:+: $4}"
        FAILS+=("$2")
    fi
}

check() { # DESCRIPTION GOT WANT
    _check_result "$([[ "$2" == "$3" ]] && echo 1 || echo 0)" "$1" "$2" "got '$2', want '$3'"
}

check_gt0() { # DESCRIPTION GOT
    _check_result "$([[ "$2" =~ ^[1-9][0-9]*$ ]] && echo 1 || echo 0)" "$1" "$2" "got '$2', want > 0"
}

check_le() { # DESCRIPTION GOT MAX
    _check_result "$([[ "$2" =~ ^[0-9]+$ ]] && (( $2 <= $3 )) && echo 1 || echo 0)" "$1" "$2" "got '$2', want <= $3"
}

check_cmd() { # DESCRIPTION CMD...
    local d=$1
    shift
    _check_result "$("$@" >/dev/null 2>&1 && echo 1 || echo 0)" "$d" "" ""
}
