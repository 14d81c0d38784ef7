#!/usr/bin/env bash
# ci/perpacket.sh [POINTS] - what one packet costs the guest, per NIC: a short ci/bench.sh
# run (one repetition, 5 s per workload, no zero-copy tool, no engine bench) with QEMU's
# trace events on (BENCH_TRACE=1), then ci/lib/perpacket-report.py: guest interrupts,
# register writes (MMIO exits) and reads per UDP datagram and per 64 KiB of TCP sent.
# Counts, not times: a busy machine slows them less than it slows throughput, but they
# still depend on the packet rate (NAPI polls and doorbell suppression batch more when
# packets come faster), so compare points of one run.
# Default POINTS: "e1000e virtio-net vmso-virt". Output: the table on stdout, and the
# bench directory (results/bench-<ts>) for the details.
set -euo pipefail
points=${1:-"e1000e virtio-net vmso-virt"}
repo=$(cd "$(dirname "$0")/.." && pwd)
BENCH_TRACE=1 BENCH_WAIT_IDLE=${BENCH_WAIT_IDLE:-0} "$repo/ci/bench.sh" --quick --no-engine --no-zc --points "$points"
python3 "$repo/ci/lib/perpacket-report.py" "$(readlink -f "$repo/results/bench-latest")"
