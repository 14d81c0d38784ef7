# shellcheck shell=bash
# Variables are set here for the scripts that source this file:
# shellcheck disable=SC2034
# ci/lib/initramfs.sh - guest initramfs: the cached base and per-run overlays.
#
#   make_initramfs OUT RUN_SH [SRC[:DEST]]...
#       OUT = $INITRAMFS_BASE + a small appended gzip'd newc cpio holding
#       /run.sh (from RUN_SH, a file; "-" reads stdin), this tree's ci/guest/lib.sh
#       (as /usr/lib/vmso/ci.sh) and the extra files.
#       DEST defaults to /usr/lib/modules/$KVER/extra/<name> for *.ko (then depmod'd
#       together with the base modules, so "modprobe vmso" works) and to
#       /root/<name> otherwise. A *.ko whose vermagic is not $KVER is refused.
#       Linux unpacks concatenated archives in order, later files win.
#
#   initramfs_build_base            (used by ci/setup.sh) rebuild $INITRAMFS_BASE
#   initramfs_base_inputs_hash      hash of everything the base is made from
#   GUEST_BASE_MODULES              modules (with their deps) put in the base
#
# The guest is merged-/usr like bookworm: /bin /sbin /lib /lib64 are symlinks into
# /usr. Overlay paths under those are rewritten to /usr/..., because the kernel's
# unpacker would replace a symlink by a directory of the same name.

# shellcheck source=ci/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

GUEST_BASE_MODULES=(e1000e igb virtio_net virtio_pci)
GUEST_BASE_BINARIES=(/usr/bin/iperf3 /usr/sbin/ethtool)

_cpio_gz() { # DIR OUT [MINDEPTH]; MINDEPTH 0 archives "." too (sets the mode of /)
    (cd "$1" && find . -mindepth "${3:-1}" | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) \
        | gzip -6 -n >"$2"
}

_usr_path() { # /lib/x -> /usr/lib/x, etc.
    case $1 in
        /bin/* | /sbin/* | /lib/* | /lib64/*) printf '/usr%s\n' "$1" ;;
        /*) printf '%s\n' "$1" ;;
        *) printf '/%s\n' "$1" ;;
    esac
}

# Copy an ELF binary and every shared library it needs (per ldd) into ROOT.
_copy_elf() { # ROOT BIN
    local root=$1 bin=$2 lib
    [[ -x "$bin" ]] || die "$bin not found: run ci/setup.sh (host package missing?)"
    install -D -m 0755 "$bin" "$root$(_usr_path "$bin")"
    while read -r lib; do
        [[ -e "$root$(_usr_path "$lib")" ]] && continue
        install -D -m 0755 "$(readlink -f "$lib")" "$root$(_usr_path "$lib")"
    done < <(ldd "$bin" | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }')
}

initramfs_base_inputs_hash() {
    local here
    here=$(dirname "${BASH_SOURCE[0]}")
    {
        echo "kver=$KVER"
        cat "$GUEST_KERNEL_ROOT/.vmso-stamp" 2>/dev/null || true
        echo "modules=${GUEST_BASE_MODULES[*]}"
        dpkg-query -W busybox-static iperf3 libiperf0 ethtool 2>/dev/null || true
        sha256sum /usr/bin/busybox "${GUEST_BASE_BINARIES[@]}" \
            "$here/initramfs.sh" "$here/../guest/init" "$here/../guest/lib.sh"
    } | sha256sum | cut -d' ' -f1
}

initramfs_build_base() {
    local root=$INITRAMFS_BASE_ROOT.tmp here a m rel
    here=$(dirname "${BASH_SOURCE[0]}")
    [[ -d "$GUEST_MODULES" ]] || die "guest module tree $GUEST_MODULES missing"
    [[ -x /usr/bin/busybox ]] || die "/usr/bin/busybox missing: install busybox-static"
    ldd /usr/bin/busybox >/dev/null 2>&1 && die "/usr/bin/busybox is dynamic: install busybox-static"
    umask 022
    rm -rf "$root"
    mkdir -p "$root"/usr/{bin,sbin,lib64,lib/vmso} "$root"/{proc,sys,dev,tmp,run,root,etc,mnt,var}
    ln -s usr/bin "$root/bin"
    ln -s usr/sbin "$root/sbin"
    ln -s usr/lib "$root/lib"
    ln -s usr/lib64 "$root/lib64"
    chmod 1777 "$root/tmp"

    install -m 0755 /usr/bin/busybox "$root/usr/bin/busybox"
    for a in $(/usr/bin/busybox --list-full); do
        [[ -e "$root/$a" || -L "$root/$a" ]] || ln -s /usr/bin/busybox "$root/$a"
    done
    for a in "${GUEST_BASE_BINARIES[@]}"; do
        rm -f "$root$(_usr_path "$a")"
        _copy_elf "$root" "$a"
    done

    # Kernel modules and their dependencies, then depmod inside the tree.
    for m in "${GUEST_BASE_MODULES[@]}"; do
        modprobe -d "$GUEST_KERNEL_ROOT" -S "$KVER" --show-depends "$m" >"$root/.deps" \
            || die "modprobe --show-depends $m failed for $KVER"
        while read -r a; do
            rel=${a#"$GUEST_KERNEL_ROOT"}
            install -D -m 0644 "$a" "$root$(_usr_path "$rel")"
        done < <(awk '$1 == "insmod" { print $2 }' "$root/.deps")
    done
    rm -f "$root/.deps"
    for a in modules.order modules.builtin modules.builtin.modinfo; do
        [[ -e "$GUEST_MODULES/$a" ]] && install -m 0644 "$GUEST_MODULES/$a" "$root/usr/lib/modules/$KVER/$a"
    done
    depmod -b "$root" "$KVER" || die "depmod -b failed on the initramfs tree"

    install -m 0755 "$here/../guest/init" "$root/init"
    install -m 0644 "$here/../guest/lib.sh" "$root/usr/lib/vmso/ci.sh"
    printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
    printf 'root:x:0:\n' >"$root/etc/group"
    printf '127.0.0.1 localhost\n' >"$root/etc/hosts"
    # The kernel opens /dev/console before /init runs and before devtmpfs is mounted.
    mknod -m 0600 "$root/dev/console" c 5 1
    mknod -m 0666 "$root/dev/null" c 1 3

    chmod 0755 "$root"
    _cpio_gz "$root" "$INITRAMFS_BASE.tmp" 0 || die "cpio of the base initramfs failed"
    mv -f "$INITRAMFS_BASE.tmp" "$INITRAMFS_BASE"
    rm -rf "$INITRAMFS_BASE_ROOT"
    mv "$root" "$INITRAMFS_BASE_ROOT"
}

make_initramfs() {
    (( $# >= 2 )) || die "usage: make_initramfs OUT RUN_SH [SRC[:DEST]]..."
    local out=$1 run=$2 spec src dest t mdir has_ko=0 vm rc=0 errexit=$-
    shift 2
    [[ -r "$INITRAMFS_BASE" && -d "$INITRAMFS_BASE_ROOT" ]] \
        || die "base initramfs missing: run ci/setup.sh"
    t=$(mktemp -d "${TMPDIR:-/tmp}/vmso-initrd.XXXXXX")
    # The work runs in a subshell with errexit on; its status is collected so
    # that the temporary files go on every path.
    set +e
    (
        umask 022
        set -e
        if [[ "$run" == - ]]; then
            cat >"$t/run.sh"
        else
            [[ -r "$run" ]] || die "run script $run not found"
            cp "$run" "$t/run.sh"
        fi
        chmod 0755 "$t/run.sh"
        # This tree's guest helpers over the ones in the cached base, which ci/setup.sh
        # may have built from another tree (the host parses what they print).
        install -D -m 0644 "$(dirname "${BASH_SOURCE[0]}")/../guest/lib.sh" "$t/usr/lib/vmso/ci.sh"
        for spec in "$@"; do
            src=${spec%%:*}
            if [[ "$spec" == *:* ]]; then
                dest=${spec#*:}
            elif [[ "$src" == *.ko ]]; then
                dest=/usr/lib/modules/$KVER/extra/${src##*/}
            else
                dest=/root/${src##*/}
            fi
            dest=$(_usr_path "$dest")
            [[ -e "$src" ]] || die "extra initramfs file $src not found"
            if [[ "$dest" == *.ko ]]; then
                vm=$(modinfo -F vermagic "$src" 2>/dev/null | awk '{ print $1 }') || vm=
                [[ "$vm" == "$KVER" ]] || die "$src is built for '$vm', the guest runs $KVER (KDIR=$KDIR)"
                [[ "$dest" == /usr/lib/modules/"$KVER"/* ]] && has_ko=1
            fi
            mkdir -p "$t$(dirname "$dest")"
            cp -L --preserve=mode "$src" "$t$dest"
        done
        if (( has_ko )); then
            # Regenerate modules.dep & co. over base + extra modules.
            mdir=$t.mods
            mkdir -p "$mdir/lib/modules"
            cp -a "$INITRAMFS_BASE_ROOT/usr/lib/modules/$KVER" "$mdir/lib/modules/"
            cp -a "$t/usr/lib/modules/$KVER/." "$mdir/lib/modules/$KVER/"
            depmod -b "$mdir" "$KVER" || die "depmod over the extra modules failed"
            cp "$mdir/lib/modules/$KVER"/modules.* "$t/usr/lib/modules/$KVER/"
            rm -rf "$mdir"
        fi
        _cpio_gz "$t" "$t.cpio.gz" || die "cpio of the overlay failed"
        cat "$INITRAMFS_BASE" "$t.cpio.gz" >"$out.tmp"
        mv -f "$out.tmp" "$out"
    )
    rc=$?
    [[ "$errexit" == *e* ]] && set -e
    rm -rf "$t" "$t.mods" "$t.cpio.gz"
    return "$rc"
}
