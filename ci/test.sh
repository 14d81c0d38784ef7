#!/usr/bin/env bash
# ci/test.sh - everything: static checks (shellcheck on every shell script, rustfmt,
# clippy, rustdoc, the generated ABI files against abi/vmso-abi.toml), the
# device-level tests (no QEMU), the fuzz smoke,
# the engine bench (figures only, nothing asserted), the guest module build,
# the guest module's lint (checkpatch --strict, sparse), and the QEMU end-to-end runs
# (ci/e2e.sh, guest-driver/tools/e2e-zerocopy-tso.sh, e2e-ethtool.sh, e2e-mq.sh).
# Needs root and /dev/net/tun (for the e2e runs).
#
# Environment: E2E_SECS (iperf3 seconds per direction, default 10),
#              VMSO_SKIP_E2E=1 to stop after the module build.
set -euo pipefail
# shellcheck source=ci/lib/common.sh
source "$(dirname "$0")/lib/common.sh"
cd "$REPO"
need_root
need_tun

T0=$(date +%s)
step() { log "== $* ($(( $(date +%s) - T0 )) s)"; }

step "setup"
"$REPO/ci/setup.sh"
set_kabi "$(<"$CACHE/kernel-abi")"

step "shellcheck (every shell script, sourced files followed)"
need_cmd shellcheck
mapfile -t SCRIPTS < <(git ls-files '*.sh' ci/guest/init 2>/dev/null || find ci guest-driver -name '*.sh')
shellcheck -x "${SCRIPTS[@]}" || die "shellcheck found problems in the scripts above"

step "rustfmt"
cargo fmt --all -- --check || die "cargo fmt --check failed: run cargo fmt"

step "clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "rustdoc (no broken or private intra-doc links)"
RUSTDOCFLAGS="-D warnings" cargo doc -p vmso-device --no-deps -q

step "abi: generated files match abi/vmso-abi.toml"
python3 abi/abigen.py --check || die "run abi/abigen.py (edit abi/vmso-abi.toml, not the generated files)"

step "cargo test (device-level, no QEMU)"
cargo test --workspace

step "fuzz smoke (every target briefly, saved crashes replayed first)"
"$REPO/ci/fuzz.sh" --smoke

step "engine bench"
mkdir -p "$RESULTS"
cargo bench -p vmso-device --bench engine | tee "$RESULTS/engine-bench.txt"

step "guest module"
make -C "$REPO/guest-driver" KDIR="$KDIR" CC=gcc-12 W=1 2>&1 | tee "$RESULTS/module-build.txt"
if grep -q "warning:" "$RESULTS/module-build.txt"; then
    die "vmso.ko builds with warnings (see $RESULTS/module-build.txt)"
fi
[ -f "$REPO/guest-driver/vmso.ko" ] || die "guest-driver/vmso.ko was not built"

step "guest module lint (checkpatch --strict, sparse)"
"$REPO/guest-driver/tools/lint.sh"

if [ "${VMSO_SKIP_E2E:-0}" = 1 ]; then
    step "e2e skipped (VMSO_SKIP_E2E=1)"
    exit 0
fi
step "QEMU end-to-end (4-level, 5-level, dma_mode=phys, rx-gro-hw off, --tx-mode handoff)"
"$REPO/ci/e2e.sh"

step "QEMU end-to-end of zero-copy send (/dev/vmso0) and driver-side TSO (tso=device|driver|off)"
"$REPO/guest-driver/tools/e2e-zerocopy-tso.sh"

step "QEMU end-to-end of ethtool (-G -C -K -L -S -i -d, bridge, USO)"
"$REPO/guest-driver/tools/e2e-ethtool.sh"

step "QEMU end-to-end of multi-queue (2 pairs, -smp 2, RSS, -L/-x/-X, iperf3 -P 4)"
"$REPO/guest-driver/tools/e2e-mq.sh"

step "all passed"
