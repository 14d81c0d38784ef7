#!/usr/bin/env python3
"""Per-packet costs from a ci/bench.sh run made with BENCH_TRACE=1.

Reads runs/<point>/rep*/summary.env of a bench output directory and prints, per
point, for the UDP workload (per datagram) and TCP guest->host (per 64 KiB sent):
the guest's interrupts (all MSI lines, from /proc/interrupts at the workload's
markers), the NIC register writes and reads that left the guest (QEMU trace
events: e1000e_core_write/read, vfio_region_write/read for vmso, virtio_queue_notify
for virtio-net's kicks) and virtio-net's notifications. Medians over repetitions.
"""
import argparse
import glob
import os
import statistics
import sys

WRITES = ("e1000e_core_write", "vfio_region_write", "virtio_queue_notify")
READS = ("e1000e_core_read", "vfio_region_read")


def read_env(path):
    env = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            k, sep, v = line.rstrip("\n").partition("=")
            if sep:
                env[k] = v
    return env


def per_unit(env, w, unit_bytes):
    try:
        units = int(env[f"{w}_bytes"]) / unit_bytes
    except (KeyError, ValueError):
        return None
    if units <= 0 or f"{w}_guest_irqs" not in env:
        return None
    ev = lambda names: sum(int(env.get(f"{w}_ev_{n}", 0)) for n in names)
    return {
        "irqs": int(env[f"{w}_guest_irqs"]) / units,
        "writes": ev(WRITES) / units,
        "reads": ev(READS) / units,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", help="a ci/bench.sh output directory (results/bench-<ts>)")
    ap.add_argument("--udp-len", type=int, default=1400)
    a = ap.parse_args()
    rows = []
    for point_dir in sorted(glob.glob(os.path.join(a.dir, "runs", "*"))):
        point = os.path.basename(point_dir)
        cols = {}
        for w, unit in (("udp", a.udp_len), ("tcp_tx", 65536)):
            vals = [per_unit(read_env(f), w, unit)
                    for f in glob.glob(os.path.join(point_dir, "rep*", "summary.env"))]
            vals = [v for v in vals if v]
            if vals:
                cols[w] = {k: statistics.median(v[k] for v in vals) for k in vals[0]}
        if cols:
            rows.append((point, cols))
    if not rows:
        print("no per-packet data (run ci/bench.sh with BENCH_TRACE=1)", file=sys.stderr)
        return 1
    print("| point | UDP: guest irqs / datagram | register writes / datagram | register reads / datagram "
          "| TCP g→h: irqs / 64 KiB | writes / 64 KiB | reads / 64 KiB |")
    print("|---|---|---|---|---|---|---|")
    for point, c in rows:
        u, t = c.get("udp", {}), c.get("tcp_tx", {})
        f = lambda d, k: f"{d[k]:.3f}" if k in d else "–"
        print(f"| `{point}` | {f(u, 'irqs')} | {f(u, 'writes')} | {f(u, 'reads')} "
              f"| {f(t, 'irqs')} | {f(t, 'writes')} | {f(t, 'reads')} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
