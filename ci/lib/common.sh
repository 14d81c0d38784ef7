# shellcheck shell=bash
# Variables are set here for the scripts that source this file:
# shellcheck disable=SC2034
# ci/lib/common.sh - sourced by every ci/ script.
#
# Provides:
#   REPO, CACHE, RESULTS          repo root, cache dir (git-ignored), results dir (git-ignored)
#   die MSG / log MSG / warn MSG  one-line error (exit 1) / progress line (stderr)
#   need_root, need_tun, need_cmd CMD..., need_setup
#   KABI, KVER                    guest kernel ABI ("6.1.0-56") and release ("6.1.0-56-amd64")
#   GUEST_KERNEL_ROOT             dpkg -x of linux-image-$KVER (not installed on the host)
#   GUEST_KERNEL                  $GUEST_KERNEL_ROOT/boot/vmlinuz-$KVER (bzImage, as packaged)
#   GUEST_VMLINUX                 the same kernel uncompressed (ELF with a PVH entry): QEMU
#                                 boots it ~3 s faster under TCG (no XZ decompression)
#   GUEST_MODULES                 $GUEST_KERNEL_ROOT/lib/modules/$KVER
#   KDIR                          kernel headers for out-of-tree builds (/usr/src/linux-headers-$KVER;
#                                 VMSO_KDIR overrides). make -C "$KDIR" M=... CC=gcc-12
#   INITRAMFS_BASE                $CACHE/initramfs-base.cpio.gz
#   INITRAMFS_BASE_ROOT           the unpacked tree it was made from (used to re-run depmod)
#   QEMU_SYSROOT                  $CACHE/qemu-sysroot (trixie-backports QEMU, dpkg -x'd)
#   QEMU                          array: the sysroot QEMU run through the sysroot's own loader
#   qemu_cmd ARGS...              run that QEMU with ARGS
#   qemu_cmd_print ARGS...        print the command line (shell-quoted) without running it
#   now                           seconds since the epoch with nanoseconds (for timings)
#
# Sourcing it twice is harmless.

[[ -n "${VMSO_COMMON_SH:-}" ]] && return 0
VMSO_COMMON_SH=1

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${VMSO_CACHE:-$REPO/.cache}
RESULTS=${VMSO_RESULTS:-$REPO/results}

die() {
    printf '%s: error: %s\n' "${0##*/}" "$*" >&2
    exit 1
}

warn() {
    printf '%s: warning: %s\n' "${0##*/}" "$*" >&2
}

log() {
    printf '[%s %s] %s\n' "$(date +%T)" "${0##*/}" "$*" >&2
}

now() {
    date +%s.%N
}

need_root() {
    [[ $(id -u) -eq 0 ]] || die "must run as root (netns, TAP and apt need it)"
}

need_tun() {
    [[ -c /dev/net/tun ]] || die "/dev/net/tun is missing: TAP devices cannot be created"
}

need_cmd() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || die "command '$c' not found: run ci/setup.sh"
    done
}

# ---------------------------------------------------------------- guest kernel
# The ABI is resolved by ci/setup.sh (apt-cache depends linux-image-amd64) and
# recorded in $CACHE/kernel-abi so that every later script agrees with it.
# VMSO_KABI in the environment overrides it.
# set_kabi ABI: (re)derive KVER, GUEST_KERNEL, GUEST_MODULES and KDIR from ABI.
set_kabi() {
    KABI=$1
    KVER=${KABI:+$KABI-amd64}
    GUEST_KERNEL=$GUEST_KERNEL_ROOT/boot/vmlinuz-$KVER
    GUEST_VMLINUX=$GUEST_KERNEL_ROOT/boot/vmlinux-$KVER
    GUEST_MODULES=$GUEST_KERNEL_ROOT/lib/modules/$KVER
    KDIR=${VMSO_KDIR:-/usr/src/linux-headers-$KVER}
}
GUEST_KERNEL_ROOT=$CACHE/guest-kernel
KABI=${VMSO_KABI:-}
if [[ -z "$KABI" && -r "$CACHE/kernel-abi" ]]; then
    KABI=$(<"$CACHE/kernel-abi")
fi
set_kabi "$KABI"
INITRAMFS_BASE=$CACHE/initramfs-base.cpio.gz
INITRAMFS_BASE_ROOT=$CACHE/initramfs-base.d

# ---------------------------------------------------------------- QEMU sysroot
QEMU_SYSROOT=$CACHE/qemu-sysroot
QEMU=(
    "$QEMU_SYSROOT/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
    --library-path "$QEMU_SYSROOT/usr/lib/x86_64-linux-gnu"
    "$QEMU_SYSROOT/usr/bin/qemu-system-x86_64"
    -L "$QEMU_SYSROOT/usr/share/qemu"
    -L "$QEMU_SYSROOT/usr/share/seabios"
)
# Debian builds QEMU with loadable modules; point it at the sysroot's copies
# (the compiled-in path would be the host's /usr/lib/x86_64-linux-gnu/qemu).
export QEMU_MODULE_DIR=$QEMU_SYSROOT/usr/lib/x86_64-linux-gnu/qemu

qemu_cmd() {
    "${QEMU[@]}" "$@"
}

qemu_cmd_print() {
    local out
    printf -v out '%q ' "QEMU_MODULE_DIR=$QEMU_MODULE_DIR" "${QEMU[@]}" "$@"
    printf '%s\n' "${out% }"
}

# need_setup: everything ci/setup.sh produces is present.
need_setup() {
    [[ -n "$KABI" ]] || die "guest kernel ABI unknown ($CACHE/kernel-abi missing): run ci/setup.sh"
    [[ -r "$GUEST_KERNEL" ]] || die "guest kernel $GUEST_KERNEL missing: run ci/setup.sh"
    [[ -r "$GUEST_VMLINUX" ]] || die "guest kernel $GUEST_VMLINUX missing: run ci/setup.sh"
    [[ -d "$GUEST_MODULES" ]] || die "guest module tree $GUEST_MODULES missing: run ci/setup.sh"
    [[ -r "$INITRAMFS_BASE" ]] || die "base initramfs $INITRAMFS_BASE missing: run ci/setup.sh"
    [[ -x "${QEMU[2]}" ]] || die "sysroot QEMU ${QEMU[2]} missing: run ci/setup.sh"
}
