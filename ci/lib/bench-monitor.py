#!/usr/bin/env python3
"""ci/lib/bench-monitor.py ROOT_PID OUT [INTERVAL]

Watches the host for work that is not ci/bench.sh's while the benchmark runs: every
INTERVAL seconds (default 1) it appends one line to OUT:

    <unix time> <foreign cores> <total busy cores> <foreign QEMU guests> <top foreign command> <steal>

  foreign cores   CPU time used in the interval by user processes that are not ROOT_PID
                  or its descendants, in cores (1.00 = one core fully busy)
  total busy      the whole machine's busy time (/proc/stat), in cores
  foreign QEMU    processes named qemu-vmso (the harness's guests) that are not ours
  top foreign     the command that used the most foreign CPU in the interval ("-" if none)
  steal           CPU time the hypervisor gave to others (/proc/stat steal), in cores

Kernel threads are not counted (they include the softirq work of our own traffic).
Processes that start and end between two samples are missed. Exits when ROOT_PID is
gone, or on SIGTERM.
"""
import os
import signal
import sys
import time

from procstat import cpu_ticks, processes

PF_KTHREAD = 0x00200000


def snapshot():
    procs = {}
    for pid, (comm, fields) in processes().items():
        try:
            ppid, flags = int(fields[1]), int(fields[6])
            cpu = cpu_ticks(fields)
        except (IndexError, ValueError):
            continue
        procs[pid] = (ppid, cpu, comm, bool(flags & PF_KTHREAD))
    return procs


def busy_jiffies():
    """(busy, total, steal) jiffies of all CPUs since boot"""
    with open("/proc/stat", encoding="utf-8") as f:
        v = [int(x) for x in f.readline().split()[1:]] + [0] * 8
    idle = v[3] + v[4]
    return sum(v[:8]) - idle, sum(v[:8]), v[7]


def ours(pid, procs, root, cache):
    chain = []
    while pid > 1 and pid in procs:
        if pid in cache:
            r = cache[pid]
            break
        if pid == root:
            r = True
            break
        chain.append(pid)
        pid = procs[pid][0]
    else:
        r = False
    for p in chain:
        cache[p] = r
    return r


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    root, out = int(sys.argv[1]), sys.argv[2]
    interval = float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
    hz = os.sysconf("SC_CLK_TCK")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    prev = snapshot()
    pb, pt, ps = busy_jiffies()
    t_prev = time.time()
    with open(out, "a", encoding="utf-8", buffering=1) as f:
        while os.path.exists(f"/proc/{root}"):
            time.sleep(interval)
            cur = snapshot()
            b, t, st = busy_jiffies()
            now = time.time()
            dt = max(now - t_prev, 1e-3)
            cache = {}
            foreign = 0
            top, top_cpu = "-", 0
            qemus = 0
            for pid, (ppid, cpu, comm, kthread) in cur.items():
                if kthread or ours(pid, cur, root, cache):
                    continue
                if comm == "qemu-vmso":
                    qemus += 1
                d = cpu - prev[pid][1] if pid in prev and prev[pid][2] == comm else cpu
                if d > 0:
                    foreign += d
                    if d > top_cpu:
                        top, top_cpu = comm, d
            ncpu = os.cpu_count() or 1
            total = ncpu * (b - pb) / max(t - pt, 1)
            steal = ncpu * (st - ps) / max(t - pt, 1)
            f.write(f"{now:.2f} {foreign / hz / dt:.2f} {total:.2f} {qemus} {top.replace(' ', '_')} {steal:.2f}\n")
            prev, pb, pt, ps, t_prev = cur, b, t, st, now


if __name__ == "__main__":
    main()
