#!/usr/bin/env bash
# ci/miri.sh - runs the unit tests of the modules with unsafe code that Miri
# can run under Miri (cargo +nightly miri test): the checksum's scalar loop
# (csum; its AVX2 build is cfg(not(miri))), the offload engine's streams and
# slices (offload), the gathers that hand out host pointers into guest memory
# (dma, mmu, iotlb) and the descriptor views (ring), plus the pure modules
# built on them (wire, coalesce).
#
# Usage: ci/miri.sh [EXTRA TEST FILTERS...]
# Installs the nightly toolchain and its miri and rust-src components if
# missing. On a busy 2-core machine: about 1 minute of tests, plus a few
# minutes the first time to build the dependencies for Miri (target/miri).
set -euo pipefail
# shellcheck source=ci/lib/common.sh
source "$(dirname "$0")/lib/common.sh"
cd "$REPO"

if ! rustup toolchain list | grep -q '^nightly'; then
    log "installing the nightly toolchain"
    rustup toolchain install nightly --profile minimal
fi
if ! rustup component list --toolchain nightly --installed | grep -q '^miri'; then
    log "installing miri and rust-src for nightly"
    rustup component add --toolchain nightly miri rust-src
fi
cargo +nightly miri setup >/dev/null

MODULES=(csum:: offload:: dma:: ring:: mmu:: iotlb:: wire:: coalesce::)
t0=$(date +%s)
cargo +nightly miri test -p vmso-device --lib -- "${MODULES[@]}" "$@"
log "miri: passed in $(($(date +%s) - t0)) s"
