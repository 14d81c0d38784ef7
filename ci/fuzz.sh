#!/usr/bin/env bash
# ci/fuzz.sh - builds the cargo-fuzz targets in fuzz/ and runs each of them.
#
# Usage: ci/fuzz.sh [SECONDS_PER_TARGET | --runs N | --smoke] [TARGET...]
#   SECONDS_PER_TARGET  run each target this long (default 60), growing and
#                       then minimising its corpus in fuzz/corpus/<target>/
#                       (commit the result to keep it);
#   --runs N            run each target for N executions instead (same corpus
#                       handling);
#   --smoke             the ci/test.sh step: each target ~20 s, new inputs go
#                       to a scratch folder, the repo's corpora are only read.
#   TARGET...           only these targets (default: all of fuzz/fuzz_targets).
#
# Before fuzzing, every input under fuzz/regressions/<target>/ is replayed:
# those are the crashes found so far, kept so that their fixes stay fixed.
# Crash inputs of this run go to fuzz/artifacts/<target>/ (git-ignored); copy
# one to fuzz/regressions/<target>/ once its fix is in.
#
# A full run (not --smoke) ends with ci/miri.sh (FUZZ_MIRI=0 skips it).
#
# Installs what it needs: the nightly toolchain (rustup) and cargo-fuzz
# (cargo install, cached in $CACHE/cargo-fuzz unless one is already on PATH).
# Prints executions, exec/s, corpus size and crashes per target; exits 1 if
# any target crashed.
#
# Environment: FUZZ_JOBS_NICE=N runs builds and fuzzers under nice -n N.
set -euo pipefail
# shellcheck source=ci/lib/common.sh
source "$(dirname "$0")/lib/common.sh"
cd "$REPO"

MODE=timed
SECS=60
RUNS=0
case "${1:-}" in
--smoke)
    MODE=smoke
    SECS=20
    shift
    ;;
--runs)
    [[ $# -ge 2 && $2 =~ ^[0-9]+$ ]] || die "--runs needs a count"
    MODE=runs
    RUNS=$2
    shift 2
    ;;
'' | -*) [[ -z "${1:-}" ]] || die "unknown option $1 (see the header of $0)" ;;
*)
    [[ $1 =~ ^[0-9]+$ ]] || die "SECONDS_PER_TARGET must be a number, not $1"
    SECS=$1
    shift
    ;;
esac

NICE=()
[[ -n "${FUZZ_JOBS_NICE:-}" ]] && NICE=(nice -n "$FUZZ_JOBS_NICE")

# --- tools -------------------------------------------------------------
if ! rustup toolchain list | grep -q '^nightly'; then
    log "installing the nightly toolchain"
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    export PATH="$CACHE/cargo-fuzz/bin:$PATH"
    if ! cargo fuzz --version >/dev/null 2>&1; then
        log "installing cargo-fuzz into $CACHE/cargo-fuzz"
        mkdir -p "$CACHE"
        "${NICE[@]}" cargo install --locked --root "$CACHE/cargo-fuzz" cargo-fuzz
    fi
fi
log "$(cargo fuzz --version), $(cargo +nightly --version)"

# --- build -------------------------------------------------------------
cd "$REPO/fuzz"
if [[ $# -gt 0 ]]; then
    TARGETS=("$@")
else
    mapfile -t TARGETS < <(cargo +nightly fuzz list)
fi
log "building ${TARGETS[*]} (release, debug assertions and overflow checks on)"
# -a: debug assertions, so an arithmetic overflow is a crash as in `cargo test`.
"${NICE[@]}" cargo +nightly fuzz build -a
BIN="$REPO/fuzz/target/x86_64-unknown-linux-gnu/release"

# --- run ---------------------------------------------------------------
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
failed=0
summary=()
for t in "${TARGETS[@]}"; do
    [[ -x "$BIN/$t" ]] || die "no fuzz target $t (cargo fuzz list)"
    corpus="$REPO/fuzz/corpus/$t"
    regress="$REPO/fuzz/regressions/$t"
    arts="$REPO/fuzz/artifacts/$t"
    mkdir -p "$corpus" "$arts"

    if [[ -d "$regress" ]] && compgen -G "$regress/*" >/dev/null; then
        if ! "$BIN/$t" -runs=1 "$regress"/* >"$SCRATCH/$t.regress.log" 2>&1; then
            tail -n 30 "$SCRATCH/$t.regress.log" >&2
            warn "$t: a regression input crashes again (log above)"
            summary+=("$(printf '%-10s regression input crashes again' "$t")")
            failed=1
            continue
        fi
        log "$t: $(find "$regress" -type f | wc -l) regression inputs pass"
    fi

    args=(-timeout=10 -rss_limit_mb=2048 -print_final_stats=1
        "-artifact_prefix=$arts/")
    if [[ $MODE == runs ]]; then
        args+=("-runs=$RUNS")
    else
        args+=("-max_total_time=$SECS")
    fi
    if [[ $MODE == smoke ]]; then
        # New inputs go to scratch; the repo's corpus is only read.
        mkdir -p "$SCRATCH/new-$t"
        dirs=("$SCRATCH/new-$t" "$corpus")
    else
        dirs=("$corpus")
    fi
    if [[ $MODE == runs ]]; then
        log "$t: fuzzing for $RUNS runs"
    else
        log "$t: fuzzing for $SECS s"
    fi
    rc=0
    t0=$(date +%s)
    "${NICE[@]}" "$BIN/$t" "${args[@]}" "${dirs[@]}" >"$SCRATCH/$t.log" 2>&1 || rc=$?
    dt=$(($(date +%s) - t0))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$SCRATCH/$t.log" | tail -n 1)
    execs=${execs:-?}
    crashes=0
    if [[ $rc -ne 0 ]]; then
        crashes=1
        failed=1
        grep -E "panicked at|^==[0-9]+==ERROR|SUMMARY" "$SCRATCH/$t.log" | head -n 5 >&2 || true
        cp "$SCRATCH/$t.log" "$arts/last-crash.log"
        warn "$t crashed (exit $rc); inputs in $arts/, log in $arts/last-crash.log"
    fi
    if [[ $MODE != smoke && $rc -eq 0 ]]; then
        # Keep the corpus small: merge it into a fresh folder and swap.
        mkdir -p "$SCRATCH/min-$t"
        if "$BIN/$t" -merge=1 -timeout=10 "$SCRATCH/min-$t" "$corpus" >"$SCRATCH/$t.merge.log" 2>&1; then
            rm -rf "$corpus"
            mv "$SCRATCH/min-$t" "$corpus"
        else
            warn "$t: corpus minimisation failed, corpus kept as is"
        fi
    fi
    n=$(find "$corpus" -type f | wc -l)
    rate='?'
    [[ $execs =~ ^[0-9]+$ && $dt -gt 0 ]] && rate=$((execs / dt))
    summary+=("$(printf '%-10s %12s execs %9s exec/s %6s s  corpus %5s  crashes %s' \
        "$t" "$execs" "$rate" "$dt" "$n" "$crashes")")
done

log "summary ($MODE):"
printf '%s\n' "${summary[@]}"
[[ $failed -eq 0 ]] || die "fuzzing found crashes (see above)"
# A full run (not the ci/test.sh smoke pass, which must stay short) also runs Miri
# over the unsafe code of the pure modules.
if [[ $MODE != smoke && ${FUZZ_MIRI:-1} == 1 ]]; then
    "$REPO/ci/miri.sh"
fi
