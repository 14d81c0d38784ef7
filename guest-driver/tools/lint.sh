#!/usr/bin/env bash
# guest-driver/tools/lint.sh - the kernel's own linters over vmso.ko.
#
#   guest-driver/tools/lint.sh          # checkpatch --strict, then sparse + W=1
#
# 1. scripts/checkpatch.pl --strict over the module sources (SOURCES below:
#    every .c and .h of vmso.ko, and uapi/vmso_zc.h). Debian's linux-headers and
#    linux-kbuild packages do not ship checkpatch.pl, so it is looked for in
#    $CHECKPATCH, the headers, the kbuild tree and .cache/lint; if it is in
#    none of them it is taken (once, cached) from the linux-source-<series>
#    package of the guest kernel's series (apt-get download, ~140 MB, ~15 s).
#    LINT_FETCH=0 forbids that: then a missing checkpatch.pl is an error.
# 2. sparse: the module built with `make C=2 W=1` (sparse on every file, and
#    gcc's extra warnings), in a scratch copy so the tree keeps its objects.
#
# Any checkpatch message (error, warning or check) or any sparse/compiler
# warning fails the script (exit 1). Needs: perl, sparse, gcc-12, the headers
# (ci/setup.sh installs them all).
set -euo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=ci/lib/common.sh
source "$HERE/../ci/lib/common.sh"

SOURCES=(main.c params.c hw.c irq.c qp.c notify.c va_dma.c tx.c rx.c zc.c
         ethtool.c vmso.h vmso_hw.h uapi/vmso_zc.h)
LINT_CACHE=$CACHE/lint
fail=0

# The headers to build with: the guest kernel's (ci/setup.sh), else the newest.
if [[ -z "${KDIR:-}" || ! -f "$KDIR/Makefile" ]]; then
    # shellcheck disable=SC2012 # the names are /usr/src/linux-headers-<release>-amd64
    KDIR=$(ls -d /usr/src/linux-headers-*-amd64 2>/dev/null | sort -V | tail -n 1)
fi
[[ -n "$KDIR" && -f "$KDIR/Makefile" ]] || die "no kernel headers under /usr/src: run ci/setup.sh"
release=${KDIR##*/linux-headers-}            # 6.1.0-57-amd64
series=$(cut -d. -f1,2 <<<"$release")        # 6.1

find_checkpatch() {
    local c
    for c in "${CHECKPATCH:-}" "$KDIR/scripts/checkpatch.pl" \
        /usr/src/linux-headers-*/scripts/checkpatch.pl \
        /usr/lib/linux-kbuild-*/scripts/checkpatch.pl \
        /usr/src/linux-kbuild-*/scripts/checkpatch.pl \
        "$LINT_CACHE/linux-source-$series/scripts/checkpatch.pl"; do
        [[ -n "$c" && -f "$c" ]] && { printf '%s\n' "$c"; return 0; }
    done
    return 1
}

# Extracts scripts/checkpatch.pl and its data files from linux-source-$series.
fetch_checkpatch() {
    local tmp deb
    tmp=$(mktemp -d)
    # shellcheck disable=SC2064 # $tmp is expanded now, on purpose: it is local
    trap "rm -rf '$tmp'" RETURN
    log "checkpatch.pl is not in $KDIR nor in the kbuild tree: taking it from linux-source-$series"
    (cd "$tmp" && apt-get download -q "linux-source-$series" >"$tmp/download.log" 2>&1) \
        || die "apt-get download linux-source-$series failed (see apt-get update; LINT_FETCH=0 to skip)"
    deb=$(ls "$tmp"/linux-source-"$series"_*.deb)
    mkdir -p "$LINT_CACHE"
    dpkg-deb --fsys-tarfile "$deb" \
        | tar -xO "./usr/src/linux-source-$series.tar.xz" \
        | tar -xJ -C "$LINT_CACHE" \
            "linux-source-$series/scripts/checkpatch.pl" \
            "linux-source-$series/scripts/spelling.txt" \
            "linux-source-$series/scripts/const_structs.checkpatch" \
        || die "cannot extract checkpatch.pl from $deb"
}

# report FINDINGS WHEN_FOUND WHEN_CLEAN: prints the findings and sets fail, or logs clean
report() {
    if [[ -n "$1" ]]; then
        printf '%s\n' "$1"
        warn "$2"
        fail=1
    else
        log "$3"
    fi
}

# ------------------------------------------------------------------ checkpatch
if ! cp=$(find_checkpatch); then
    if [[ "${LINT_FETCH:-1}" == 0 ]]; then
        die "checkpatch.pl is absent: not in \$CHECKPATCH, $KDIR/scripts, the kbuild tree or $LINT_CACHE (LINT_FETCH=0)"
    fi
    fetch_checkpatch
    cp=$(find_checkpatch) || die "checkpatch.pl still missing after the fetch"
fi
log "checkpatch: $cp --strict"
out=$(cd "$HERE" && perl "$cp" --strict --no-tree --terse --show-types -f "${SOURCES[@]}" 2>&1) \
    || true
report "$out" "checkpatch --strict: $(grep -c ': \(ERROR\|WARNING\|CHECK\):' <<<"$out") finding(s)" \
    "checkpatch --strict: clean (${#SOURCES[@]} files)"

# ---------------------------------------------------------------------- sparse
command -v sparse >/dev/null || die "sparse is not installed (apt-get install sparse; ci/setup.sh does)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$HERE/Kbuild" "$HERE"/*.c "$HERE"/*.h "$HERE/uapi" "$work/"
log "sparse: make -C $KDIR M=... C=2 W=1 CC=gcc-12"
if ! make -C "$KDIR" M="$work" C=2 W=1 CC=gcc-12 modules >"$work/build.log" 2>&1; then
    cat "$work/build.log"
    die "the module does not build"
fi
checked=$(grep -c '^  CHECK ' "$work/build.log" || true)
(( checked > 0 )) || { cat "$work/build.log"; die "sparse did not run (no CHECK lines)"; }
findings=$(grep -E '(warning|error):' "$work/build.log" | sed "s|$work/||" || true)
report "$findings" "sparse/W=1: $(wc -l <<<"$findings") finding(s)" "sparse + W=1: clean ($checked files checked)"

(( fail == 0 )) || die "lint findings above"
log "lint: clean"
