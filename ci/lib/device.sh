# shellcheck shell=bash
# Variables are set here for the scripts that source this file:
# shellcheck disable=SC2034
# ci/lib/device.sh - the vmso-device process of a test run, and how QEMU attaches to it.
# Every script that serves a guest from vmso-device uses these (ci/lib/vmso.sh,
# ci/lib/bench.sh, ci/lifecycle.sh, ci/soak.sh, ci/bench-mq.sh, guest-driver/tools/e2e-*.sh).
#
#   vmso_device_build          cargo build --release -q -p vmso-device (output to stdout/
#                              stderr: redirect it); fails if $VMSO_DEVICE is not there after
#   vmso_device_start LOG SOCK [OPTION...]
#                              starts "$VMSO_DEVICE --socket-path SOCK --tap $TAP OPTION..."
#                              in $NS (netns_setup first), output to LOG, and waits up to 10 s
#                              for its socket. Sets VMSO_DEV_PID. The pid is not among the
#                              ones cleanup kills first: a cleanup hook stops the device after
#                              them, so after QEMU, which aborts (assertion in error_setv) if
#                              its vfio-user server vanishes under it. Returns 1, with the
#                              device's log on stderr ("device| ..."), if no socket came
#                              (the device is stopped then).
#   vmso_device_wait_exit [S]  waits up to S (10) seconds for the device to exit (it serves
#                              one VMM with --once; or after a SIGTERM) and reaps it. Sets
#                              VMSO_DEV_RC: its exit status, or "running" (then it is
#                              stopped: TERM, grace, KILL). Clears VMSO_DEV_PID.
#   vmso_device_stop           stops the device now (TERM, grace, KILL); clears VMSO_DEV_PID
#   vfio_user_device_json SOCK the -device argument for QEMU's vfio-user-pci on SOCK
#
# Environment: VMSO_DEVICE (target/release/vmso-device): a wrapper (strace, gdb) may
# stand in.

# shellcheck source=ci/lib/netns.sh
source "$(dirname "${BASH_SOURCE[0]}")/netns.sh"

VMSO_DEVICE=${VMSO_DEVICE:-$REPO/target/release/vmso-device}
VMSO_DEV_PID=
VMSO_DEV_RC=
_VMSO_DEV_HOOK=0

vmso_device_build() {
    need_cmd cargo
    (cd "$REPO" && cargo build --release -q -p vmso-device) || { warn "cargo build --release -p vmso-device failed"; return 1; }
    [[ -x "$VMSO_DEVICE" ]] || { warn "$VMSO_DEVICE missing after the build"; return 1; }
}

vmso_device_start() { # LOG SOCK [OPTION...]
    local log=$1 sock=$2 i
    shift 2
    [[ -n "${NS:-}" && -n "${TAP:-}" ]] || die "vmso_device_start: no netns/TAP (call netns_setup first)"
    ns_bg "$log" "$VMSO_DEVICE" --socket-path "$sock" --tap "$TAP" "$@"
    VMSO_DEV_PID=$BG_PID
    bg_untrack "$VMSO_DEV_PID"
    if (( ! _VMSO_DEV_HOOK )); then
        # shellcheck disable=SC2016 # expanded when cleanup runs
        on_cleanup '[[ -n "$VMSO_DEV_PID" ]] && _kill_pids "$VMSO_DEV_PID"'
        _VMSO_DEV_HOOK=1
    fi
    for ((i = 0; i < 100; i++)); do
        [[ -S "$sock" ]] && return 0
        kill -0 "$VMSO_DEV_PID" 2>/dev/null || break
        sleep 0.1
    done
    [[ -S "$sock" ]] && return 0
    sed 's/^/device| /' "$log" >&2
    vmso_device_stop
    return 1
}

vmso_device_wait_exit() { # [SECS]
    local i
    VMSO_DEV_RC=
    [[ -n "$VMSO_DEV_PID" ]] || return 0
    for ((i = 0; i < ${1:-10} * 10; i++)); do
        kill -0 "$VMSO_DEV_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$VMSO_DEV_PID" 2>/dev/null; then
        VMSO_DEV_RC=running
        vmso_device_stop
        return 0
    fi
    VMSO_DEV_RC=0
    wait "$VMSO_DEV_PID" || VMSO_DEV_RC=$?
    VMSO_DEV_PID=
}

vmso_device_stop() {
    [[ -n "$VMSO_DEV_PID" ]] && _kill_pids "$VMSO_DEV_PID"
    VMSO_DEV_PID=
}

vfio_user_device_json() { # SOCK
    printf '{"driver":"vfio-user-pci","socket":{"path":"%s","type":"unix"}}\n' "$1"
}
