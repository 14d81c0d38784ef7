#!/usr/bin/env python3
"""ci/lib/bench-cpu.py CONSOLE OUT [--pid ROLE=PID]... [--pidfile ROLE=FILE]... [--tap TAP]
                      [--timeout S]

Host CPU of one ci/bench.sh boot, per workload. Follows the guest's serial console (CONSOLE,
the file QEMU writes) for the markers the guest prints around each workload (ci/guest/lib.sh,
iperf_run with IPERF_MARKS=1):
    BENCH-MARK begin NAME      just before the guest starts iperf3
    BENCH-MARK end NAME        as soon as iperf3 has exited
and reads /proc at each marker. For every begin/end pair it appends to OUT (key=value):
    NAME_win_s             the window (host wall seconds between the two samples)
    NAME_cpu_<role>_s      utime+stime of each ROLE: the process tree under its PID, summed
                           over all threads (/proc/PID/stat fields 14-15: the whole thread
                           group, including threads that have exited)
    NAME_cpu_qemu_vcpu_s   the part of NAME_cpu_qemu_s spent in QEMU's vCPU threads (threads
                           named "CPU <n>/...": boot_guest runs QEMU with -name debug-threads=on);
                           under TCG that is the whole guest, and also the emulation of a
                           device's registers (e1000e even transmits from its TDT write there)
    NAME_cpu_softirq_s     /proc/stat softirq, all CPUs
    NAME_cpu_irq_s         /proc/stat irq (hard interrupts), all CPUs
    NAME_cpu_total_s       the sum of the above
    NAME_machine_busy_s    all non-idle time of the machine (user+nice+system+irq+softirq,
                           all CPUs; steal excluded): an upper bound that includes everybody
    NAME_tap_<stat>        deltas of the TAP's counters (/sys/class/net/TAP/statistics; run
                           this inside the netns): rx_* are frames QEMU/vmso-device wrote
                           into the TAP (guest -> host), tx_* frames the host queued for
                           them (host -> guest), tx_dropped those the TAP dropped
It exits when the guest prints VMSO-DONE, when every watched process is gone, or after
--timeout seconds.

What is counted: QEMU (every thread: the TCG vCPU that runs the guest, the main loop that
emulates the peers' NICs and does their TAP I/O, RCU, ...), vmso-device (every thread), the
host-side iperf3 server (its TCP/UDP stack work done in its own syscalls), and the softirq
time of every CPU (the host's network receive path: TAP writes go through netif_rx and are
processed in softirq, in whichever context runs it, ksoftirqd included).
What is not: other processes (the harness, this sampler, other users of the machine);
softirq time that a foreign process's activity causes is counted (it is machine-wide).
Double counting: on a kernel without CONFIG_IRQ_TIME_ACCOUNTING (tick-based accounting), a
tick that lands in a softirq is charged both to /proc/stat softirq and to the stime of the
task it interrupted; so softirq work done inside QEMU's, vmso-device's or iperf3's own
syscalls (e.g. the receive path run at local_bh_enable() after a TAP write) is counted twice.
The total is then an upper bound, high by at most the softirq column. With
CONFIG_IRQ_TIME_ACCOUNTING task times exclude irq/softirq time and the sum is exact (to a
tick). bench.sh records which in meta.env (irq_time_accounting).
"""
import argparse
import os
import re
import sys
import time

from procstat import cpu_ticks, processes, read_stat

TICK = os.sysconf("SC_CLK_TCK")
MARK = re.compile(r"BENCH-MARK (begin|end) ([A-Za-z0-9_]+)(?: irqs=(\d+))?")
# A line of QEMU's "log" trace backend: "event_name args" (with -msg timestamp=on,
# prefixed by "PID@SEC.USEC:").
TRACE_EVENT = re.compile(rb"^(?:\d+@[\d.]+:)?([a-z0-9_]+) ")


class TraceCounter:
    """Counts the events in QEMU's trace log (-D FILE) so far, by name."""

    def __init__(self, path):
        self.path, self.pos, self.partial, self.counts = path, 0, b"", {}

    def poll(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.pos)
                chunk = f.read()
        except OSError:
            return dict(self.counts)
        self.pos += len(chunk)
        lines = (self.partial + chunk).split(b"\n")
        self.partial = lines.pop()
        for line in lines:
            m = TRACE_EVENT.match(line)
            if m:
                k = m.group(1).decode()
                self.counts[k] = self.counts.get(k, 0) + 1
        return dict(self.counts)
TAP_STATS = ("rx_bytes", "rx_packets", "rx_dropped", "tx_bytes", "tx_packets", "tx_dropped")


def proc_table():
    """{pid: (ppid, utime+stime ticks)} of every process."""
    return {pid: (int(fields[1]), cpu_ticks(fields)) for pid, (_, fields) in processes().items()}


def tree(table, root):
    """root and all its descendants (empty if root is gone)."""
    if root not in table:
        return []
    children = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def vcpu_ticks(pids):
    """utime+stime of the threads named "CPU <n>/<accel>" (QEMU with debug-threads=on)."""
    total = 0
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            st = read_stat(f"/proc/{pid}/task/{tid}/stat")
            if st is not None and st[0].startswith("CPU "):
                total += cpu_ticks(st[1])
    return total


def stat_cpu():
    with open("/proc/stat", encoding="ascii") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal guest guest_nice
    return {"irq": v[5], "softirq": v[6], "busy": v[0] + v[1] + v[2] + v[5] + v[6]}


def tap_stats(tap):
    out = {}
    for k in TAP_STATS:
        try:
            with open(f"/sys/class/net/{tap}/statistics/{k}", encoding="ascii") as f:
                out[k] = int(f.read())
        except (OSError, ValueError):
            out[k] = None
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    ap.add_argument("console")
    ap.add_argument("out")
    ap.add_argument("--pid", action="append", default=[], metavar="ROLE=PID")
    ap.add_argument("--pidfile", action="append", default=[], metavar="ROLE=FILE",
                    help="the pid is read from FILE at the first marker (QEMU: boot_guest writes it)")
    ap.add_argument("--tap")
    ap.add_argument("--trace", help="QEMU's trace log: count its events per window")
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--poll", type=float, default=0.05)
    a = ap.parse_args()

    tracer = TraceCounter(a.trace) if a.trace else None
    roles = {}
    for spec in a.pid:
        role, pid = spec.split("=", 1)
        roles[role] = int(pid)
    pidfiles = dict(spec.split("=", 1) for spec in a.pidfile)

    def resolve():
        for role, path in pidfiles.items():
            if roles.get(role) is None:
                try:
                    with open(path, encoding="ascii") as f:
                        roles[role] = int(f.read().strip())
                except (OSError, ValueError):
                    pass

    def sample():
        resolve()
        table = proc_table()
        trees = {r: tree(table, p) for r, p in roles.items() if p is not None}
        return {
            "t": time.monotonic(),
            "roles": {r: sum(table[p][1] for p in t) for r, t in trees.items()},
            "vcpu": vcpu_ticks(trees.get("qemu", [])),
            "stat": stat_cpu(),
            "tap": tap_stats(a.tap) if a.tap else {},
            "events": tracer.poll() if tracer else {},
        }

    def report(name, b, e):
        lines = [f"{name}_win_s={e['t'] - b['t']:.3f}"]
        total = 0
        for r in sorted(set(b["roles"]) | set(e["roles"])):
            d = e["roles"].get(r, 0) - b["roles"].get(r, 0)
            total += d
            lines.append(f"{name}_cpu_{r}_s={d / TICK:.3f}")
        if "qemu" in b["roles"] or "qemu" in e["roles"]:
            lines.append(f"{name}_cpu_qemu_vcpu_s={(e['vcpu'] - b['vcpu']) / TICK:.3f}")
        for k in ("softirq", "irq"):
            d = e["stat"][k] - b["stat"][k]
            total += d
            lines.append(f"{name}_cpu_{k}_s={d / TICK:.3f}")
        lines.append(f"{name}_cpu_total_s={total / TICK:.3f}")
        lines.append(f"{name}_machine_busy_s={(e['stat']['busy'] - b['stat']['busy']) / TICK:.3f}")
        for k in TAP_STATS:
            x, y = b["tap"].get(k), e["tap"].get(k)
            if x is not None and y is not None:
                lines.append(f"{name}_tap_{k}={y - x}")
        for k in sorted(set(b["events"]) | set(e["events"])):
            lines.append(f"{name}_ev_{k}={e['events'].get(k, 0) - b['events'].get(k, 0)}")
        if b.get("irqs") is not None and e.get("irqs") is not None:
            lines.append(f"{name}_guest_irqs={e['irqs'] - b['irqs']}")
        with open(a.out, "a", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")

    open(a.out, "a", encoding="utf-8").close()
    deadline = time.monotonic() + a.timeout
    begun = {}
    pos, partial = 0, b""
    while time.monotonic() < deadline:
        try:
            with open(a.console, "rb") as f:
                f.seek(pos)
                chunk = f.read()
        except OSError:
            chunk = b""
        pos += len(chunk)
        lines = (partial + chunk).split(b"\n")
        partial = lines.pop()
        done = False
        for raw in lines:
            line = raw.decode("utf-8", "replace")
            m = MARK.search(line)
            if m:
                s = sample()
                s["irqs"] = int(m.group(3)) if m.group(3) else None
                if m.group(1) == "begin":
                    begun[m.group(2)] = s
                elif m.group(2) in begun:
                    report(m.group(2), begun.pop(m.group(2)), s)
            if "VMSO-DONE" in line:
                done = True
        if done:
            return 0
        resolve()
        if roles and all(p is not None and not os.path.exists(f"/proc/{p}") for p in roles.values()) \
                and len(roles) >= len(pidfiles):
            return 0
        time.sleep(a.poll)
    return 0


if __name__ == "__main__":
    sys.exit(main())
