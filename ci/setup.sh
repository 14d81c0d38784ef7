#!/usr/bin/env bash
# ci/setup.sh - install and cache everything the harness needs. Idempotent: when
# everything is in place it only checks, and takes seconds.
#
#  1. host packages (apt-get, only when one is missing);
#  2. the guest kernel ABI (apt-cache depends linux-image-amd64), recorded in
#     $CACHE/kernel-abi, and its headers on the host (KDIR);
#  3. the guest kernel: linux-image-$KVER downloaded (not installed) and dpkg -x'd
#     into $CACHE/guest-kernel;
#  4. QEMU from trixie-backports, fetched by a private apt configuration
#     ($CACHE/qemu-apt) and dpkg -x'd into $CACHE/qemu-sysroot;
#  5. the base guest initramfs $CACHE/initramfs-base.cpio.gz (rebuilt only when an
#     input changed).
#
# Environment: VMSO_REFRESH=1 re-fetches QEMU and the guest kernel even if cached.
set -euo pipefail
# shellcheck source=ci/lib/common.sh
source "$(dirname "$0")/lib/common.sh"
# shellcheck source=ci/lib/initramfs.sh
source "$REPO/ci/lib/initramfs.sh"

need_root
mkdir -p "$CACHE"
export DEBIAN_FRONTEND=noninteractive
REFRESH=${VMSO_REFRESH:-0}
APT_UPDATED=0

apt_update_once() {
    (( APT_UPDATED )) && return 0
    log "apt-get update"
    apt-get update -qq >/dev/null || die "apt-get update failed"
    APT_UPDATED=1
}

pkg_installed() {
    [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

# ------------------------------------------------------------------ kernel ABI
# abi_of image|headers: the ABI (e.g. 6.1.0-56) that metapackage
# linux-{image,headers}-amd64 depends on, per the current apt lists.
abi_of() {
    apt-cache depends "linux-$1-amd64" 2>/dev/null \
        | sed -n "s/^ *Depends: linux-$1-\([0-9][^ ]*\)-amd64\$/\1/p" | head -n1
}

HOST_PKGS=(iproute2 busybox-static iperf3 ethtool cpio kmod tshark gcc-12 make python3 sparse
    gnuplot-nox gzip procps shellcheck)

# The apt lists are refreshed only when something has to be fetched or installed:
# then the ABI below is resolved against fresh lists (stale ones may name a kernel
# the mirror no longer has). When everything is cached, the current lists decide.
if (( REFRESH )) || [[ ! -r "$CACHE/kernel-abi" || ! -r "$GUEST_KERNEL_ROOT/.vmso-stamp" \
    || ! -r "$QEMU_SYSROOT/.vmso-stamp" ]] || ! pkg_installed "linux-headers-$KVER"; then
    apt_update_once
else
    for p in "${HOST_PKGS[@]}"; do
        pkg_installed "$p" || { apt_update_once; break; }
    done
fi

img=$(abi_of image)
hdr=$(abi_of headers)
if [[ -z "$img" ]] && (( ! APT_UPDATED )); then
    apt_update_once
    img=$(abi_of image)
    hdr=$(abi_of headers)
fi
[[ -n "$img" ]] || die "cannot resolve the ABI of linux-image-amd64 with apt-cache depends"
[[ "$img" == "$hdr" ]] || die "linux-image-amd64 wants ABI $img but linux-headers-amd64 wants '$hdr'"
set_kabi "$img"
log "guest kernel ABI $KABI ($KVER)"

# --------------------------------------------------------------- host packages
HOST_PKGS+=("linux-headers-$KVER")
missing=()
for p in "${HOST_PKGS[@]}"; do
    pkg_installed "$p" || missing+=("$p")
done
if (( ${#missing[@]} )); then
    apt_update_once
    # tshark: do not ask whether non-root users may capture (and do not make dumpcap setuid).
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
    log "apt-get install ${missing[*]}"
    apt-get install -y -q --no-install-recommends "${missing[@]}" >"$CACHE/apt-install.log" 2>&1 \
        || die "apt-get install failed (see $CACHE/apt-install.log)"
fi
[[ -f "$KDIR/Makefile" ]] || die "kernel headers not found at KDIR=$KDIR"
printf '%s\n' "$KABI" >"$CACHE/kernel-abi"

# ---------------------------------------------------------------- guest kernel
pkg=linux-image-$KVER
ver=$(apt-cache show --no-all-versions "$pkg" 2>/dev/null | sed -n 's/^Version: //p' | head -n1)
[[ -n "$ver" ]] || die "apt-cache knows no $pkg"
stamp="$pkg $ver"
if (( REFRESH )) || [[ ! -r "$GUEST_KERNEL" || "$(cat "$GUEST_KERNEL_ROOT/.vmso-stamp" 2>/dev/null)" != "$stamp" ]]; then
    log "fetching guest kernel $pkg $ver (apt-get download; not installed on the host)"
    dl=$CACHE/debs/guest-kernel
    rm -rf "$dl" "$GUEST_KERNEL_ROOT.tmp"
    mkdir -p "$dl"
    (cd "$dl" && apt-get download -q -o APT::Sandbox::User=root "$pkg=$ver" >/dev/null) \
        || die "apt-get download $pkg=$ver failed"
    dpkg -x "$dl/${pkg}_"*.deb "$GUEST_KERNEL_ROOT.tmp" || die "dpkg -x of $pkg failed"
    depmod -b "$GUEST_KERNEL_ROOT.tmp" "$KVER" || die "depmod on the guest module tree failed"
    printf '%s\n' "$stamp" >"$GUEST_KERNEL_ROOT.tmp/.vmso-stamp"
    rm -rf "$dl"  # the .deb is not needed once extracted
    rm -rf "$GUEST_KERNEL_ROOT"
    mv "$GUEST_KERNEL_ROOT.tmp" "$GUEST_KERNEL_ROOT"
fi
[[ -r "$GUEST_KERNEL" ]] || die "guest kernel image $GUEST_KERNEL missing after extraction"
# The uncompressed ELF vmlinux (the XZ payload of the bzImage). QEMU boots it through
# its PVH entry point, which skips the ~3 s XZ decompression under TCG.
if [[ ! -s "$GUEST_VMLINUX" ]]; then  # (lives in $GUEST_KERNEL_ROOT: replaced with it)
    log "extracting $GUEST_VMLINUX"
    python3 - "$GUEST_KERNEL" "$GUEST_VMLINUX.tmp" <<'PY' || die "cannot extract vmlinux from $GUEST_KERNEL"
import lzma, sys
data = open(sys.argv[1], "rb").read()
off = data.find(b"\xfd7zXZ\x00")
if off < 0:
    sys.exit("no XZ payload in the bzImage")
elf = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data[off:])
if elf[:4] != b"\x7fELF":
    sys.exit("the XZ payload is not an ELF vmlinux")
open(sys.argv[2], "wb").write(elf)
PY
    mv -f "$GUEST_VMLINUX.tmp" "$GUEST_VMLINUX"
fi

# ---------------------------------------------------------------- QEMU sysroot
# The mirror URI of the machine's own Debian sources (deb822 "URIs:" of the stanza
# whose Suites include bookworm; else a one-line "deb URI bookworm ..." entry).
host_mirror() {
    local f uri
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -r "$f" ]] || continue
        uri=$(awk '
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { if (deb && bw && u != "") { print u; exit } deb = bw = 0; u = ""; next }
            tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
            tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == "bookworm") bw = 1 }
            tolower($1) == "uris:" { u = $2 }
            END { if (deb && bw && u != "") print u }' "$f" | head -n1)
        [[ -n "$uri" ]] && { printf '%s\n' "$uri"; return 0; }
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -r "$f" ]] || continue
        uri=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z+]+:\/\//) { u = $i; s = $(i + 1); break }
                  if (s == "bookworm") { print u; exit } }' "$f")
        [[ -n "$uri" ]] && { printf '%s\n' "$uri"; return 0; }
    done
    return 1
}

# A keyring that holds the trixie archive keys (bookworm's debian-archive-keyring
# 2023.3+deb12u1 and later ships them).
trixie_keyring() {
    local k=/usr/share/keyrings/debian-archive-keyring.gpg
    [[ -r "$k" ]] || return 1
    if command -v gpg >/dev/null \
        && ! gpg --no-default-keyring --keyring "$k" --list-keys 2>/dev/null | grep -q '(13/trixie)'; then
        return 1
    fi
    printf '%s\n' "$k"
}

QA=$CACHE/qemu-apt
APT_PRIV=(apt-get -q
    -o "Dir=$QA"
    -o "Dir::State::status=$QA/var/lib/dpkg/status"
    -o "Dir::Etc=$QA/etc/apt"
    -o "Dir::Cache=$QA/var/cache/apt"
    -o "Dir::State=$QA/var/lib/apt"
    -o APT::Sandbox::User=root
    -o Acquire::Languages=none
    -o APT::Install-Recommends=false
    -o APT::Architecture=amd64)

qemu_ok() {
    local v
    v=$(qemu_cmd -version 2>/dev/null | sed -n 's/^QEMU emulator version \([0-9]*\.[0-9]*\).*/\1/p')
    [[ -n "$v" ]] || return 1
    awk -v v="$v" 'BEGIN { split(v, a, "."); exit !(a[1] > 10 || (a[1] == 10 && a[2] >= 1)) }' || return 1
    qemu_cmd -device vfio-user-pci,help 2>/dev/null | grep -q socket
}

if (( REFRESH )) || [[ ! -r "$QEMU_SYSROOT/.vmso-stamp" ]] || ! qemu_ok; then
    mirror=$(host_mirror) || die "no Debian bookworm mirror URI found in /etc/apt/sources*"
    keyring=$(trixie_keyring) || die "no keyring with the trixie archive keys (update debian-archive-keyring)"
    log "fetching QEMU from trixie-backports (private apt in $QA, keyring $keyring)"
    mkdir -p "$QA/etc/apt/sources.list.d" "$QA/etc/apt/preferences.d" "$QA/etc/apt/apt.conf.d" \
        "$QA/etc/apt/trusted.gpg.d" "$QA/var/lib/dpkg" "$QA/var/lib/apt/lists/partial" \
        "$QA/var/cache/apt/archives/partial"
    : >"$QA/var/lib/dpkg/status"
    : >"$QA/etc/apt/sources.list"
    cat >"$QA/etc/apt/sources.list.d/trixie.sources" <<EOF
Types: deb
URIs: $mirror
Suites: trixie trixie-backports
Components: main
Signed-By: $keyring
EOF
    "${APT_PRIV[@]}" update >"$QA/update.log" 2>&1 \
        || die "private apt-get update for trixie failed (see $QA/update.log)"
    "${APT_PRIV[@]}" clean
    "${APT_PRIV[@]}" install -y --download-only -t trixie-backports \
        qemu-system-x86 qemu-system-data seabios >"$QA/install.log" 2>&1 \
        || die "private apt-get install --download-only qemu-system-x86 failed (see $QA/install.log)"
    rm -rf "$QEMU_SYSROOT.tmp"
    mkdir -p "$QEMU_SYSROOT.tmp"
    n=0
    for deb in "$QA"/var/cache/apt/archives/*.deb; do
        dpkg -x "$deb" "$QEMU_SYSROOT.tmp" || die "dpkg -x $deb failed"
        n=$((n + 1))
    done
    (( n > 0 )) || die "no .deb was downloaded for the QEMU sysroot"
    (cd "$QA/var/cache/apt/archives" && ls -- *.deb) >"$QEMU_SYSROOT.tmp/.vmso-stamp"
    rm -rf "$QEMU_SYSROOT"
    mv "$QEMU_SYSROOT.tmp" "$QEMU_SYSROOT"
    log "QEMU sysroot: $n packages, $(du -sh "$QA/var/cache/apt/archives" | cut -f1) of .debs"
    qemu_ok || die "sysroot QEMU is not >= 10.1 with vfio-user-pci: $(qemu_cmd -version 2>&1 | head -n1)"
fi

# ------------------------------------------------------------- base initramfs
want=$(initramfs_base_inputs_hash)
if (( REFRESH )) || [[ ! -r "$INITRAMFS_BASE" || ! -d "$INITRAMFS_BASE_ROOT" \
    || "$(cat "$INITRAMFS_BASE.inputs" 2>/dev/null)" != "$want" ]]; then
    log "building the base initramfs"
    initramfs_build_base
    printf '%s\n' "$want" >"$INITRAMFS_BASE.inputs"
fi

need_setup
log "ready: $(qemu_cmd -version | head -n1); guest kernel $KVER; KDIR=$KDIR;" \
    "initramfs $(du -h "$INITRAMFS_BASE" | cut -f1)"
