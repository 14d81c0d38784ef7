#!/usr/bin/env python3
"""ci/lib/bench-report.py OUT [--readme README.md --chart docs/bench.png]

The report of one ci/bench.sh run. Reads, in OUT:
  meta.env                   key=value: run settings, machine, git commit, date
  points.tsv                 point <TAB> kind (peer|vmso) <TAB> description <TAB> tx, where tx
                             says what the TAP gets from the guest: gso (superpackets handed
                             to a vnet_hdr TAP: the peers as users run them, vmso hand-off
                             mode) or wire (real MTU frames: vnet_hdr=off peers, vmso's
                             default wire mode); missing: guessed from the name
  runs.tsv                   point <TAB> rep <TAB> run directory
  <run directory>/summary.env  key=value figures of one boot (ci/lib/bench.sh)
  engine.txt                 output of the engine bench (RESULT k=v lines), if run
Writes, in OUT:
  bench.json   every raw figure per repetition, the medians (min, max), the two baselines
               and the ratios to them, host CPU-seconds per GB, the engine figures, the
               goals, machine, date and commit
  bench.md     the tables and the goals (met / not met; nothing is asserted)
  bench.png    the chart (gnuplot; bench-*.dat and bench.gp next to it)
  readme-section.md  the "## Performance" section for README.md
With --readme FILE: replaces the generated part of the "## Performance" section of FILE
(between its markers; hand-written text after the end marker, up to the next "## " heading,
is kept; a section without markers is replaced whole) with readme-section.md, or appends
it; --chart is the link it uses for the chart.
Every vmso figure is set against two peers of the same run: the best peer as users run it
(tx=gso: QEMU's default vnet_hdr TAP) and the best peer in the matched configuration (the
peers with the vmso point's own tx). A point whose boots all failed (e.g. vmso-handoff on a
vmso-device without --tx-mode) is shown with no figures.
Exits non-zero only if the inputs are missing or gnuplot fails.
"""
import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys

WORKLOADS = [
    ("tcp_tx", "TCP guest→host", "iperf3 -c HOST -t S"),
    ("tcp_rx", "TCP host→guest", "iperf3 -c HOST -t S -R"),
    ("udp", "UDP 1400 B guest→host", "iperf3 -u -b RATE -l LEN; receiver throughput"),
    ("tcp_tx_z", "TCP -Z (sendfile) guest→host", "iperf3 -c HOST -Z -t S"),
]
# Short labels for the chart's axis.
CHART_LABELS = {"tcp_tx": "TCP guest→host", "tcp_rx": "TCP host→guest", "udp": "UDP 1400 B g→h",
                "tcp_tx_z": "TCP -Z g→h"}
ZC_WORKLOADS = [
    ("zc", "zero-copy tool (/dev/vmso0, USO from user VA)"),
    ("copy", "its copy path (UDP socket, send() per datagram)"),
]
# The point whose figures the goals are judged on (the default configuration), and the others.
GOAL_POINT = "vmso-virt"
GOAL_PHYS = "vmso-phys"
GOAL_HANDOFF = "vmso-handoff"
# What the TAP gets from the guest, per tx (the fourth column of points.tsv).
TX_LABEL = {"gso": "GSO superpackets to a vnet_hdr TAP", "wire": "real MTU frames"}
# Host CPU per workload (ci/lib/bench-cpu.py): the parts of <workload>_cpu_total_s.
CPU_PARTS = [("qemu", "QEMU"), ("device", "vmso-device"), ("iperf3", "host iperf3"), ("kernel", "softirq+irq")]
# Not a part of its own: the share of QEMU's figure spent in its vCPU threads.
CPU_VCPU = ("qemu_vcpu", "of which QEMU's vCPU threads")

COLORS = {
    "e1000e": "#b0b0b0",
    "igb": "#808080",
    "virtio-net": "#4d4d4d",
    "e1000e-wire": "#d9d9d9",
    "virtio-net-wire": "#969696",
    "vmso-virt": "#1f77b4",
    "vmso-handoff": "#17becf",
    "vmso-hostgro": "#9467bd",
    "vmso-phys": "#ff7f0e",
    "vmso-tso-driver": "#2ca02c",
    "vmso-lro-off": "#d62728",
}
EXTRA_COLORS = ["#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#7f7f7f"]


def read_env(path):
    env, checks = {}, []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if "=" not in line:
                continue
            k, v = line.split("=", 1)
            if k == "check":
                checks.append(v)
            else:
                env[k] = v
    return env, checks


def read_tsv(path):
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]


def num(v):
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def summarize(values):
    vals = [v for v in values if v is not None]
    if not vals:
        return {"n": 0, "median": None, "min": None, "max": None, "values": values}
    return {
        "n": len(vals),
        "median": statistics.median(vals),
        "min": min(vals),
        "max": max(vals),
        "values": values,
    }


def fmt(x, nd=2):
    return "–" if x is None else f"{x:.{nd}f}"


def fmt_range(s, nd=2):
    if s is None or s["median"] is None:
        return "–"
    if s["n"] == 1:
        return fmt(s["median"], nd)
    return f"{fmt(s['median'], nd)} ({fmt(s['min'], nd)}–{fmt(s['max'], nd)})"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


class Bench:
    """Everything one report is made of; filled in by the functions below, in order."""

    def __init__(self, out):
        self.out = out
        self.meta = {}
        self.points = []
        self.kind = {}
        self.peers = []
        self.vmsos = []
        self.reps = 1
        self.runs = []
        self.summary = {}
        self.tx = {}
        self.best_peer = {}     # per workload: the best peer as users run it (tx=gso)
        self.best_by_tx = {}    # tx -> workload -> the best peer with that tx
        self.ratios = {}        # vmso point -> workload -> ÷ best_peer
        self.ratios_matched = {}  # vmso point -> workload -> ÷ the best peer with its own tx
        self.cpu_best = {}      # tx -> workload -> the peer with the fewest CPU-s/GB
        self.cpu_best_any = {}  # workload -> the peer with the fewest CPU-s/GB, any tx
        self.cpu_ratios = {}    # vmso point -> workload -> {"users": ÷, "matched": ÷}
        self.zero_copy = {}
        self.engine = {}
        self.goals = []
        self.notes = []
        self.discarded = []
        self.data = {}


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="bench-report.py", description=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", metavar="OUT", help="the results/bench-<timestamp> directory of the run")
    ap.add_argument("--readme", metavar="FILE", help="README whose \"## Performance\" section to replace")
    ap.add_argument("--chart", metavar="LINK", dest="chart_link",
                    help="the chart's link in the README section (default: bench.png)")
    return ap.parse_args(argv)


def load_inputs(b):
    """meta.env, points.tsv, runs.tsv and every run's summary.env."""
    out = b.out
    b.meta, _ = read_env(os.path.join(out, "meta.env"))
    b.points = [{"name": p[0], "kind": p[1], "desc": p[2], "tx": p[3] if len(p) > 3 else guess_tx(p[0], p[1])}
                for p in read_tsv(os.path.join(out, "points.tsv"))]
    b.kind = {p["name"]: p["kind"] for p in b.points}
    b.tx = {p["name"]: p["tx"] for p in b.points}
    b.peers = [p["name"] for p in b.points if p["kind"] == "peer"]
    b.vmsos = [p["name"] for p in b.points if p["kind"] == "vmso"]
    b.reps = int(b.meta.get("reps", "1"))
    for point, rep, rdir in read_tsv(os.path.join(out, "runs.tsv")):
        b.runs.append(read_run(b, point, rep, rdir))


def guess_tx(name, kind):
    """tx of a points.tsv line without that column (a run of an older bench.sh)."""
    if kind == "peer":
        return "wire" if name.endswith("-wire") else "gso"
    return "gso" if name == GOAL_HANDOFF else "wire"


def cpu_figures(env, w, ok):
    """Host CPU-seconds per GB (10^9 bytes of iperf3 payload, as the receiver counted it) of
    workload w, in total and per part, and the TAP's view of its window."""
    f = {}
    gb = num(env.get(f"{w}_bytes"))
    gb = gb / 1e9 if ok and gb else None
    total = num(env.get(f"{w}_cpu_total_s"))
    parts = {"qemu": num(env.get(f"{w}_cpu_qemu_s")) or 0.0, "device": num(env.get(f"{w}_cpu_device_s")) or 0.0,
             "iperf3": num(env.get(f"{w}_cpu_iperf3_s")) or 0.0,
             "kernel": (num(env.get(f"{w}_cpu_softirq_s")) or 0.0) + (num(env.get(f"{w}_cpu_irq_s")) or 0.0)}
    f[f"{w}_cpu_s"] = total if ok else None
    f[f"{w}_cpu_s_per_gb"] = ratio(total, gb)
    for k, _ in CPU_PARTS:
        f[f"{w}_cpu_{k}_s_per_gb"] = ratio(parts[k], gb) if total is not None else None
    f[f"{w}_cpu_{CPU_VCPU[0]}_s_per_gb"] = ratio(num(env.get(f"{w}_cpu_qemu_vcpu_s")), gb)
    f[f"{w}_gb"] = gb
    f[f"{w}_win_s"] = num(env.get(f"{w}_win_s")) if ok else None
    # what the guest's side wrote into the TAP: mean frame size (superpackets or real frames)
    f[f"{w}_tap_mean_frame"] = ratio(num(env.get(f"{w}_tap_rx_bytes")), num(env.get(f"{w}_tap_rx_packets"))) \
        if ok else None
    f[f"{w}_tap_drops"] = num(env.get(f"{w}_tap_tx_dropped")) if ok else None
    return f


def read_run(b, point, rep, rdir):
    path = os.path.join(rdir, "summary.env")
    env, checks = read_env(path) if os.path.exists(path) else ({}, ["no summary.env"])
    run_ok = env.get("run_ok") == "1"
    figures = {}
    for w, _, _ in WORKLOADS:
        ok = run_ok and env.get(f"{w}_ok") == "1"
        figures[w] = num(env.get(f"{w}_gbps")) if ok else None
        figures |= cpu_figures(env, w, ok)
    figures["udp_loss_pct"] = num(env.get("udp_loss_pct")) if figures["udp"] is not None else None
    if b.kind.get(point) == "vmso":
        zc_ok = run_ok and env.get("zc_ok") == "1"
        figures["zc"] = num(env.get("zc_gbps")) if zc_ok else None
        figures["copy"] = num(env.get("copy_gbps")) if zc_ok else None
    return {
        "point": point,
        "rep": int(rep),
        "ok": run_ok,
        "boot_s": num(env.get("boot_s")),
        "total_s": num(env.get("total_s")),
        "attempt": int(env.get("attempt", "1") or 1),
        "waited_idle_s": num(env.get("waited_idle_s")),
        "foreign_cores": num(env.get("foreign_cores")),
        "foreign_qemu": int(env.get("foreign_qemu", "0") or 0),
        "foreign_top": env.get("foreign_top"),
        "steal_cores": num(env.get("steal_cores")),
        "figures": figures,
        "checks": checks,
        "raw": env,
    }


def series(b, point, key):
    """One figure of a point, per repetition (None where missing)."""
    vals = []
    for r in range(1, b.reps + 1):
        run = next((x for x in b.runs if x["point"] == point and x["rep"] == r), None)
        vals.append(None if run is None else run["figures"].get(key))
    return vals


def summarize_all(b):
    """Medians per point, the best peer per workload, the ratios, the zero-copy figures."""
    for p in b.points:
        keys = [w for w, _, _ in WORKLOADS] + ["udp_loss_pct"]
        for w, _, _ in WORKLOADS:
            keys += [f"{w}_cpu_s_per_gb"] + [f"{w}_cpu_{k}_s_per_gb" for k, _ in CPU_PARTS + [CPU_VCPU]] \
                + [f"{w}_tap_mean_frame", f"{w}_tap_drops"]
        if p["kind"] == "vmso":
            keys += ["zc", "copy"]
        b.summary[p["name"]] = {k: summarize(series(b, p["name"], k)) for k in keys}

    def best(peers, key, lowest=False):
        cands = [(b.summary[p][key]["median"], p) for p in peers if b.summary[p][key]["median"] is not None]
        if not cands:
            return {"point": None, "median": None}
        v, p = min(cands) if lowest else max(cands)
        return {"point": p, "median": v}

    txs = sorted(set(b.tx.values()))
    for t in txs:
        group = [p for p in b.peers if b.tx[p] == t]
        b.best_by_tx[t] = {w: best(group, w) for w, _, _ in WORKLOADS}
        b.cpu_best[t] = {w: best(group, f"{w}_cpu_s_per_gb", lowest=True) for w, _, _ in WORKLOADS}
    none = {w: {"point": None, "median": None} for w, _, _ in WORKLOADS}
    b.best_peer = b.best_by_tx.get("gso", none)
    b.cpu_best_any = {w: best(b.peers, f"{w}_cpu_s_per_gb", lowest=True) for w, _, _ in WORKLOADS}

    for p in b.vmsos:
        matched = b.best_by_tx.get(b.tx[p], none)
        b.ratios[p] = {w: ratio(b.summary[p][w]["median"], b.best_peer[w]["median"]) for w, _, _ in WORKLOADS}
        b.ratios_matched[p] = {w: ratio(b.summary[p][w]["median"], matched[w]["median"]) for w, _, _ in WORKLOADS}
        cb_users, cb_matched = b.cpu_best.get("gso", none), b.cpu_best.get(b.tx[p], none)
        b.cpu_ratios[p] = {w: {"users": ratio(b.summary[p][f"{w}_cpu_s_per_gb"]["median"], cb_users[w]["median"]),
                               "matched": ratio(b.summary[p][f"{w}_cpu_s_per_gb"]["median"],
                                                cb_matched[w]["median"])}
                           for w, _, _ in WORKLOADS}

    for p in b.vmsos:
        zc, cp = b.summary[p]["zc"], b.summary[p]["copy"]
        rep_ratios = [ratio(x, y) for x, y in zip(zc["values"], cp["values"])]
        b.zero_copy[p] = {
            "zc": zc,
            "copy": cp,
            "ratio": ratio(zc["median"], cp["median"]),
            "rep_ratios": rep_ratios,
        }


def read_engine(b):
    epath = os.path.join(b.out, "engine.txt")
    if os.path.exists(epath):
        with open(epath, encoding="utf-8") as f:
            for line in f:
                if line.startswith("RESULT "):
                    for kv in line.split()[1:]:
                        if "=" in kv:
                            k, v = kv.split("=", 1)
                            b.engine[k] = num(v)


def judge_goals(b):
    """The goals of issue 8 (and the ones kept from before), reported as met / not met / not
    measured: never asserted."""
    summary, engine, meta = b.summary, b.engine, b.meta
    main_w = [("tcp_tx", "TCP guest→host"), ("tcp_rx", "TCP host→guest"), ("tcp_tx_z", "TCP -Z (sendfile)"),
              ("udp", "UDP 1400 B")]

    def goal(name, target, value, detail, op=">=", unit="×"):
        met = None
        if value is not None:
            met = value >= target if op == ">=" else (value <= target if op == "<=" else value == target)
        b.goals.append({"goal": name, "target": target, "op": op, "unit": unit, "value": value, "met": met,
                        "detail": detail})

    def med(p, k):
        return summary[p][k]["median"] if p in summary else None

    def vs_peer(p, w, bp, what):
        if p not in summary:
            return f"no `{p}` point in this run"
        if med(p, w) is None:
            return f"`{p}` has no {w} figure (its boots failed: see the notes)"
        if bp["point"] is None:
            return f"no {what} in this run"
        return f"`{p}` {fmt(med(p, w))} vs {what} `{bp['point']}` {fmt(bp['median'])} Gbit/s"

    wire = b.best_by_tx.get("wire", {})
    nobody = {"point": None, "median": None}
    # 1. The default (wire mode: segmenting, real frames) against the peers as users run them.
    for w, lab in main_w:
        goal(f"`{GOAL_POINT}` (wire mode) ≥ 1.0× best default peer: {lab}", 1.0,
             ratio(med(GOAL_POINT, w), b.best_peer[w]["median"]), vs_peer(GOAL_POINT, w, b.best_peer[w],
                                                                          "best default peer"))
    # 2. Hand-off mode against the same.
    for w, lab in main_w:
        goal(f"`{GOAL_HANDOFF}` ≥ 1.3× best default peer: {lab}", 1.3,
             ratio(med(GOAL_HANDOFF, w), b.best_peer[w]["median"]), vs_peer(GOAL_HANDOFF, w, b.best_peer[w],
                                                                            "best default peer"))
    # 3. Like for like: the default against the peers that must emit real frames too.
    for w, lab in main_w[:2]:
        bp = wire.get(w, nobody)
        goal(f"`{GOAL_POINT}` ≥ 2.5× best vnet_hdr=off peer: {lab}", 2.5, ratio(med(GOAL_POINT, w), bp["median"]),
             vs_peer(GOAL_POINT, w, bp, "best vnet_hdr=off peer"))
    # 4. Host CPU-seconds per GB: at or below the best (lowest) peer's, any configuration.
    for w, lab in main_w:
        k = f"{w}_cpu_s_per_gb"
        bp = b.cpu_best_any[w]
        v = med(GOAL_POINT, k)
        detail = (f"`{GOAL_POINT}` {fmt(v)} vs `{bp['point']}` {fmt(bp['median'])} host CPU-s/GB"
                  if v is not None and bp["point"] else "not measured")
        goal(f"`{GOAL_POINT}` host CPU-s/GB ≤ 1.0× the best peer's: {lab}", 1.0, ratio(v, bp["median"]), detail,
             op="<=")
    # 5. No TAP drops in host→guest TCP.
    drops = [r["figures"].get("tcp_rx_tap_drops") for r in b.runs if r["point"] == GOAL_POINT]
    drops = [d for d in drops if d is not None]
    goal(f"`{GOAL_POINT}`: 0 TAP drops during TCP host→guest", 0, sum(drops) if drops else None,
         f"TAP tx_dropped in the tcp_rx window, summed over {len(drops)} boot(s)" if drops else "not measured",
         op="==", unit="")
    # 6. Kept from before.
    if GOAL_POINT in summary and GOAL_PHYS in summary:
        va, pa = med(GOAL_POINT, "tcp_tx"), med(GOAL_PHYS, "tcp_tx")
        others = []
        for w, lab, _ in WORKLOADS[1:]:
            r = ratio(med(GOAL_POINT, w), med(GOAL_PHYS, w))
            others.append(f"{lab} {fmt(r)}×")
        goal("VA mode ≥ 0.95× PA mode (TCP guest→host)", 0.95, ratio(va, pa),
             f"dma_mode=virt {fmt(va)} vs dma_mode=phys {fmt(pa)} Gbit/s; other workloads: " + ", ".join(others))
    else:
        goal("VA mode ≥ 0.95× PA mode (TCP guest→host)", 0.95, None, "not measured")
    gp = GOAL_POINT if GOAL_POINT in summary else None
    if gp and gp in b.zero_copy and b.zero_copy[gp]["ratio"] is not None:
        z = b.zero_copy[gp]
        rr = [r for r in z["rep_ratios"] if r is not None]
        goal("zero-copy tool ≥ 10× its copy path", 10.0, z["ratio"],
             f"{gp}: /dev/vmso0 {fmt(z['zc']['median'])} vs send() {fmt(z['copy']['median'])} Gbit/s"
             + (f" (per-boot ratios {fmt(min(rr))}–{fmt(max(rr))})" if len(rr) > 1 else ""))
    else:
        goal("zero-copy tool ≥ 10× its copy path", 10.0, None,
             "not measured: " + (meta.get("zc_skip") or "no vmso-virt run with the tool"))
    ok_runs = [r for r in b.runs if r["point"] == GOAL_POINT and r["ok"]]
    csum = [num(r["raw"].get("host_csum_errors")) for r in ok_runs]
    csum = [c for c in csum if c is not None]
    goal(f"`{GOAL_POINT}`: 0 checksum errors on the host (InCsumErrors)", 0, sum(csum) if csum else None,
         f"summed over {len(csum)} boot(s)" if csum else "not measured", op="==", unit="")
    frames = [r["figures"].get("tcp_tx_tap_mean_frame") for r in ok_runs]
    frames = [f for f in frames if f is not None]
    goal(f"`{GOAL_POINT}` (wire mode): frames of at most 1514 B on the TAP", 1514, max(frames) if frames else None,
         ("mean size of the frames written into the TAP during TCP guest→host, the largest over "
          f"{len(frames)} boot(s); a mean, not a maximum: ci/e2e.sh checks every frame in a capture")
         if frames else "not measured", op="<=", unit=" B")
    # Earlier goals, still reported.
    for which, what in [("cold", "cache-cold, 32 MiB working set"), ("hot", "cache-hot, one 64 KiB packet")]:
        v = engine.get(f"tso_vs_memcpy_{which}")
        detail = (f"{what}: engine {fmt(engine.get(f'tso_{which}_gbps'), 1)} vs memcpy "
                  f"{fmt(engine.get(f'memcpy_{which}_gbps'), 1)} Gbit/s (median of per-round ratios)"
                  if v is not None else "engine bench not run")
        goal(f"TSO engine ≥ 1.0× memcpy ({which})", 1.0, v, detail)


def collect_notes(b):
    """Failed boots, failed checks, disturbed and re-run boots, waiting."""
    out, meta, runs, notes = b.out, b.meta, b.runs, b.notes
    if meta.get("zc_skip"):
        notes.append(f"Zero-copy tool workload skipped: {meta['zc_skip']}.")
    failed = [r for r in runs if not r["ok"]]
    for r in failed:
        notes.append(f"{r['point']} rep {r['rep']}: the guest did not run the workloads "
                     f"(see {os.path.relpath(r['raw'].get('dir', ''), out) if r['raw'].get('dir') else 'its console.log'}); "
                     "its figures are left out.")
    for r in runs:
        for c in r["checks"]:
            notes.append(f"{r['point']} rep {r['rep']}: {c}.")
    busy_max = num(meta.get("busy_max"))
    busy_max = 0.2 if busy_max is None else busy_max
    for r in runs:
        why = []
        if r["foreign_qemu"] > 0:
            why.append(f"{r['foreign_qemu']} other QEMU guest(s)")
        c = r["foreign_cores"]
        if c is not None and c > busy_max:
            why.append(f"other processes used {c:.2f} cores (top: {r['foreign_top']})")
        r["disturbed"] = "; ".join(why)
    busy = [r for r in runs if r["disturbed"]]
    if busy:
        notes.append(f"{len(busy)} of {len(runs)} boots ran on a busy machine ({meta.get('m_host_cpus', '?')} "
                     "cores): their figures are disturbed (" + "; ".join(
                         f"{r['point']} rep {r['rep']}: {r['disturbed']}" for r in busy) + ").")
    # Attempts that were disturbed and run again: kept in runs/<point>/rep<N>-disturbed<K>/.
    for r in runs:
        base = r["raw"].get("dir")
        for k in range(1, r["attempt"]):
            path = f"{base}-disturbed{k}/summary.env" if base else None
            if not path or not os.path.exists(path):
                continue
            env, _ = read_env(path)
            b.discarded.append({
                "point": r["point"], "rep": r["rep"], "attempt": k,
                "foreign_cores": num(env.get("foreign_cores")), "foreign_qemu": int(env.get("foreign_qemu", "0") or 0),
                "foreign_top": env.get("foreign_top"),
                "figures": {w: num(env.get(f"{w}_gbps")) for w, _, _ in WORKLOADS}
                | {"zc": num(env.get("zc_gbps")), "copy": num(env.get("copy_gbps"))},
            })
    if b.discarded:
        notes.append(f"{len(b.discarded)} boot(s) were disturbed by other work on the machine and run again; the "
                     "disturbed attempts are left out of the figures (listed in bench.json, `discarded_runs`): "
                     + "; ".join(f"{d['point']} rep {d['rep']} (other processes {fmt(d['foreign_cores'])} cores, "
                                 f"top {d['foreign_top']}; {d['foreign_qemu']} other QEMU)" for d in b.discarded) + ".")
    if meta.get("engine_disturbed"):
        notes.append(f"The engine bench ran on a busy machine: {meta['engine_disturbed']}.")
    waited = sum(r["waited_idle_s"] or 0 for r in runs)
    if waited:
        notes.append(f"The run waited {waited:.0f} s in all for the machine to be idle before boots.")


def write_json(b):
    meta = b.meta
    b.data = {
        "schema": "vmso-bench/2",
        "stamp": meta.get("stamp"),
        "date": meta.get("date"),
        "git": {"commit": meta.get("git_commit"), "dirty": meta.get("git_dirty")},
        "machine": {k[len("m_"):]: v for k, v in meta.items() if k.startswith("m_")},
        "config": {k: (int(meta[k]) if k in ("reps", "secs", "udp_len", "zc_mss", "zc_window", "wait_idle_s",
                                             "retries")
                       and meta.get(k, "").isdigit() else meta.get(k))
                   for k in ("mode", "reps", "secs", "udp_rate", "udp_len", "zc_bytes", "zc_mss", "zc_chunk",
                             "zc_window", "zc_skip", "order", "busy_max", "wait_idle_s", "retries",
                             "irq_time_accounting", "clk_tck")},
        "elapsed_s": num(meta.get("elapsed_s")),
        "points": b.points,
        "workloads": [{"key": w, "label": lab, "command": cmd} for w, lab, cmd in WORKLOADS]
        + [{"key": w, "label": lab} for w, lab in ZC_WORKLOADS],
        "runs": b.runs,
        "discarded_runs": b.discarded,
        "summary": b.summary,
        "best_peer": b.best_peer,
        "best_peer_by_tx": b.best_by_tx,
        "ratios_to_best_peer": b.ratios,
        "ratios_to_matched_peer": b.ratios_matched,
        "cpu": {
            "unit": "host CPU-seconds per 10^9 bytes of iperf3 payload (receiver's count)",
            "parts": dict(CPU_PARTS + [CPU_VCPU]),
            "best_peer_by_tx": b.cpu_best,
            "best_peer": b.cpu_best_any,
            "ratios": b.cpu_ratios,
        },
        "zero_copy": b.zero_copy,
        "engine": b.engine,
        "goals": b.goals,
        "notes": b.notes,
    }
    with open(os.path.join(b.out, "bench.json"), "w", encoding="utf-8") as f:
        json.dump(b.data, f, indent=1, ensure_ascii=False)
        f.write("\n")


# ---------------------------------------------------------------- Markdown pieces
def n_reps_text(b):
    return f"{b.reps} repetition{'s' if b.reps != 1 else ''}"


def tx_cell(b, name):
    return {"gso": "superpackets", "wire": "MTU frames"}.get(b.tx[name], b.tx[name])


def vs_cell(users, matched):
    """" · **users×** / matched×" after a vmso figure; "" if neither is known."""
    if users is None and matched is None:
        return ""
    return f" · **{fmt(users)}×** / {fmt(matched)}×"


def main_table(b):
    lines = []
    hdr = ["point", "configuration", "TAP gets"] + [lab for _, lab, _ in WORKLOADS] + ["UDP loss %"]
    lines.append("| " + " | ".join(hdr) + " |")
    lines.append("|" + "---|" * len(hdr))
    for p in b.points:
        name = p["name"]
        row = [f"`{name}`", p["desc"], tx_cell(b, name)]
        for w, _, _ in WORKLOADS:
            s = b.summary[name][w]
            cell = fmt_range(s)
            if p["kind"] == "peer" and b.best_by_tx.get(p["tx"], {}).get(w, {}).get("point") == name:
                cell = f"**{cell}**"
            if p["kind"] == "vmso":
                cell += vs_cell(b.ratios[name][w], b.ratios_matched[name][w])
            row.append(cell)
        row.append(fmt_range(b.summary[name]["udp_loss_pct"], 2))
        lines.append("| " + " | ".join(row) + " |")
    return lines


def cpu_table(b):
    """Host CPU-seconds per GB, per point and workload."""
    lines = []
    hdr = ["point", "TAP gets"] + [lab for _, lab, _ in WORKLOADS]
    lines.append("| " + " | ".join(hdr) + " |")
    lines.append("|" + "---|" * len(hdr))
    for p in b.points:
        name = p["name"]
        row = [f"`{name}`", tx_cell(b, name)]
        for w, _, _ in WORKLOADS:
            cell = fmt_range(b.summary[name][f"{w}_cpu_s_per_gb"])
            if p["kind"] == "peer" and b.cpu_best.get(p["tx"], {}).get(w, {}).get("point") == name:
                cell = f"**{cell}**"
            if p["kind"] == "vmso":
                r = b.cpu_ratios[name][w]
                cell += vs_cell(r["users"], r["matched"])
            row.append(cell)
        lines.append("| " + " | ".join(row) + " |")
    return lines


def cpu_parts_table(b):
    """Where the host CPU goes: the parts of the CPU-s/GB figure (medians)."""
    lines = []
    hdr = ["point"] + [lab for _, lab, _ in WORKLOADS]
    lines.append("| " + " | ".join(hdr) + " |")
    lines.append("|" + "---|" * len(hdr))
    for p in b.points:
        name = p["name"]
        row = [f"`{name}`"]
        for w, _, _ in WORKLOADS:
            vals = [b.summary[name][f"{w}_cpu_{k}_s_per_gb"]["median"] for k, _ in CPU_PARTS]
            vcpu = b.summary[name][f"{w}_cpu_{CPU_VCPU[0]}_s_per_gb"]["median"]
            cells = [fmt(v) for v in vals]
            if vcpu is not None:
                cells[0] += f" ({fmt(vcpu)})"
            row.append("–" if all(v is None for v in vals) else " / ".join(cells))
        lines.append("| " + " | ".join(row) + " |")
    return lines


def tap_table(b):
    lines = ["| point | TAP gets | mean frame written into the TAP, TCP guest→host (B) | TAP drops, TCP host→guest |",
             "|---|---|---|---|"]
    for p in b.points:
        name = p["name"]
        lines.append(f"| `{name}` | {tx_cell(b, name)} | {fmt_range(b.summary[name]['tcp_tx_tap_mean_frame'], 0)} | "
                     f"{fmt_range(b.summary[name]['tcp_rx_tap_drops'], 0)} |")
    return lines


def cpu_note(b):
    ita = b.meta.get("irq_time_accounting", "?")
    caveat = {
        "y": "This host kernel has CONFIG_IRQ_TIME_ACCOUNTING: task times exclude softirq time, so nothing is "
             "counted twice.",
        "n": "This host kernel has no CONFIG_IRQ_TIME_ACCOUNTING (tick-based accounting): a tick that lands in a "
             "softirq is charged to the softirq column and also to the task it interrupted, so softirq work done "
             "inside QEMU's, vmso-device's or iperf3's own system calls is counted twice; the total is an upper "
             "bound, high by at most the softirq+irq part.",
    }.get(ita, "Whether this host kernel has CONFIG_IRQ_TIME_ACCOUNTING is unknown: without it softirq time "
               "run inside the counted processes' system calls is counted twice (the total is then an upper "
               "bound, high by at most the softirq+irq part).")
    return (f"Host CPU-seconds per GB moved (10⁹ bytes of iperf3 payload, as its receiver counted them), median "
            f"(min–max), lower is better. Counted over each workload's window (from the guest's `BENCH-MARK "
            f"begin` line, printed just before iperf3 starts, to its `end` line, printed as soon as iperf3 exits; "
            f"`ci/lib/bench-cpu.py`): utime+stime of QEMU (every thread: under TCG that includes the vCPU that "
            f"runs the whole guest), of vmso-device (every thread) and of the host's iperf3 server, plus the "
            f"softirq and irq time of all CPUs from /proc/stat (the host's network receive path, wherever it "
            f"runs). Not counted: the harness, other processes. The softirq part is machine-wide, so network "
            f"work of other users of the machine in the window lands in it. {caveat} **Bold** peer figure: the "
            f"lowest of its configuration; `· **N×** / M×` after a vmso figure: its median ÷ the lowest peer as "
            f"users run them, ÷ the lowest peer in the matched configuration (below 1: cheaper than the peer).")


def zc_table(b):
    lines = ["| point | zero-copy tool Gbit/s | copy path Gbit/s | zero-copy ÷ copy |", "|---|---|---|---|"]
    for p in b.vmsos:
        z = b.zero_copy[p]
        lines.append(f"| `{p}` | {fmt_range(z['zc'])} | {fmt_range(z['copy'])} | {fmt(z['ratio'])}× |")
    return lines


def goals_table(b):
    lines = ["| goal | measured | verdict | figures |", "|---|---|---|---|"]
    for g in b.goals:
        verdict = "not measured" if g["met"] is None else ("**met**" if g["met"] else "**not met**")
        unit = g.get("unit", "×")
        value = "–" if g["value"] is None else f"{fmt(g['value'], 2 if unit == '×' else 0)}{unit}"
        lines.append(f"| {g['goal']} | {value} | {verdict} | {g['detail']} |")
    return lines


def engine_table(b):
    if not b.engine:
        return ["Engine bench not run."]
    e = b.engine.get
    return [
        "| measurement | figure |",
        "|---|---|",
        f"| TSO + checksum, 64 KiB packets at MSS 1448, cache-cold (32 MiB) | {fmt(e('tso_cold_gbps'), 1)} Gbit/s vs memcpy {fmt(e('memcpy_cold_gbps'), 1)} Gbit/s: **{fmt(e('tso_vs_memcpy_cold'))}×** |",
        f"| the same, cache-hot (one 64 KiB packet) | {fmt(e('tso_hot_gbps'), 1)} Gbit/s vs memcpy {fmt(e('memcpy_hot_gbps'), 1)} Gbit/s: **{fmt(e('tso_vs_memcpy_hot'))}×** |",
        f"| page-walk translations, 4-level: IOTLB hits / misses (full walks) | {fmt(e('translate_4l_hits_mps'), 1)} / {fmt(e('translate_4l_misses_mps'), 1)} M/s |",
        f"| page-walk translations, 5-level: IOTLB hits / misses | {fmt(e('translate_5l_hits_mps'), 1)} / {fmt(e('translate_5l_misses_mps'), 1)} M/s |",
    ]


def table_note(b):
    meta = b.meta
    return (f"Gbit/s, median of {n_reps_text(b)} (min–max), {meta.get('secs', '?')} s per iperf3 workload, one boot per point "
            f"and repetition, repetitions interleaved. \"TAP gets\": superpackets = GSO frames handed to a vnet_hdr "
            f"TAP, the host never segments (QEMU's default, as users run the peers; vmso's hand-off mode); MTU "
            f"frames = real frames (`vnet_hdr=off` peers, vmso's default wire mode). **Bold** peer figure: the "
            f"best of its configuration for that workload. `· **N×** / M×` after a vmso figure: its median ÷ the "
            f"best peer as users run them (superpackets), and ÷ the best peer in the matched configuration "
            f"(the same \"TAP gets\"), same run. "
            f"UDP: `-b {meta.get('udp_rate', '?')} -l {meta.get('udp_len', '?')}`, the receiver's "
            f"throughput and loss.")


def write_markdown(b):
    meta, points, runs, notes = b.meta, b.points, b.runs, b.notes
    n_reps = n_reps_text(b)
    secs = meta.get("secs", "?")
    m = b.data["machine"]
    machine_line = (f"{m.get('host_cpus', '?')} cores ({m.get('host_cpu_model', '?')}), "
                    f"{m.get('host_mem_gib', '?')} GiB, host kernel {m.get('host_kernel', '?')}; "
                    f"guest: TCG, -smp 1, default CPU model, {m.get('guest_mem', '?')}, kernel "
                    f"{m.get('guest_kernel', '?')}; {m.get('qemu_version', '?')}; {m.get('iperf3_version', '?')}")

    md = [
        f"# vmso benchmark {meta.get('stamp', '')}",
        "",
        f"- date: {meta.get('date', '?')}; commit {meta.get('git_commit', '?')}"
        + (f" ({meta['git_dirty']})" if meta.get("git_dirty") else ""),
        f"- machine: {machine_line}",
        f"- run: `{meta.get('command', 'ci/bench.sh')}` ({meta.get('mode', '?')}: {n_reps} × {len(points)} "
        f"points, {secs} s per workload), {fmt(num(meta.get('elapsed_s')), 0)} s; every point on the same TAP "
        f"in a private netns, 198.18.0.0/15, its offloads reset (TUNSETOFFLOAD 0) before each boot",
        "",
        "## Throughput",
        "",
        table_note(b),
        "",
        *main_table(b),
        "",
        "## Host CPU per GB moved",
        "",
        cpu_note(b),
        "",
        *cpu_table(b),
        "",
        "Where it goes: CPU-s/GB of " + " / ".join(lab for _, lab in CPU_PARTS) + " (medians); in brackets "
        "after QEMU's, the share of its vCPU threads. Under TCG the vCPU thread runs the whole guest and is busy "
        "whenever the guest is, so QEMU's figure is mostly the inverse of the throughput; it also emulates the "
        "NICs' registers, and e1000e even transmits to the TAP from there, so QEMU minus vCPU is not the cost "
        "of the NIC either.",
        "",
        *cpu_parts_table(b),
        "",
        "## The TAP",
        "",
        "Counters of the TAP (`/sys/class/net/<tap>/statistics`) over the same windows: the mean size of "
        "what QEMU or vmso-device wrote into it (real frames are at most 1514 B) and the frames the TAP "
        "dropped on the way to the guest (median).",
        "",
        *tap_table(b),
        "",
        "## Zero-copy tool (vmso only)",
        "",
        f"`vmso-zc` sends {meta.get('zc_bytes', '?')} through `/dev/vmso0` (USO, payload by user virtual "
        f"address, {meta.get('zc_chunk', '?')} buffers, window {meta.get('zc_window', '?')}, "
        f"{meta.get('zc_mss', '?')}-byte datagrams), then the same bytes through a UDP socket (`send()` per "
        "datagram); sender-side Gbit/s, the host receiver (`vmso-zc-recv`) validates every datagram.",
        "",
        *(zc_table(b) if not meta.get("zc_skip") else [f"Skipped: {meta['zc_skip']}."]),
        "",
        "## Engine bench (`cargo bench -p vmso-device --bench engine`)",
        "",
        *engine_table(b),
        "",
        "## Goals",
        "",
        f"The goals of issue 8, judged on `{GOAL_POINT}` (the default: dma_mode=virt, tso=device, LRO on, wire "
        f"mode) and `{GOAL_HANDOFF}`; \"best default peer\": the best peer as users run it (vnet_hdr TAP); "
        "reported, not asserted.",
        "",
        *goals_table(b),
        "",
        "## Per repetition",
        "",
        "| point | rep | boot s | " + " | ".join(lab for _, lab, _ in WORKLOADS)
        + " | UDP loss % | zero-copy | copy | checks |",
        "|" + "---|" * (len(WORKLOADS) + 7),
    ]
    for r in sorted(runs, key=lambda r: (r["rep"], [p["name"] for p in points].index(r["point"]))):
        f = r["figures"]
        md.append(
            f"| `{r['point']}` | {r['rep']} | {fmt(r['boot_s'], 1)} | "
            + " | ".join(fmt(f.get(w)) for w, _, _ in WORKLOADS)
            + f" | {fmt(f.get('udp_loss_pct'), 2)} | {fmt(f.get('zc'))} | {fmt(f.get('copy'))} | "
            + ("ok" if r["ok"] and not r["checks"] else ("; ".join(r["checks"]) or "guest failed"))
            + (f" (disturbed: {r['disturbed']})" if r["disturbed"] else "")
            + " |"
        )
    md += ["", "## Notes", ""]
    md += [f"- {n}" for n in notes] if notes else ["- none: every boot ran every workload and passed its checks."]
    md += [
        "",
        "Chart: `bench.png`. Raw figures: `bench.json`. Logs: `runs/<point>/rep<N>/` "
        "(console.log, device.log, iperf3-server.log, summary.env).",
        "",
    ]
    with open(os.path.join(b.out, "bench.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(md))


def readme_section(b, chart_link):
    """The "## Performance" section for README.md (also written to readme-section.md)."""
    meta, vmsos, zero_copy, notes = b.meta, b.vmsos, b.zero_copy, b.notes
    m = b.data["machine"]
    link = chart_link or "bench.png"
    sec = [
        "## Performance",
        "",
        f"From `ci/bench.sh` (the side-by-side comparison), run on {meta.get('date', '?')} at commit "
        f"{meta.get('git_commit', '?')}, on this machine: {m.get('host_cpus', '?')} cores "
        f"({m.get('host_cpu_model', '?')}), {m.get('host_mem_gib', '?')} GiB. Every guest runs under TCG "
        f"with `-smp 1` and QEMU's default CPU model, Debian's {m.get('guest_kernel', '?')} kernel, and the "
        "same TAP in a private network namespace; the peers are QEMU 11's own NICs (virtio-net in "
        f"userspace: there is no vhost-net here). These figures change only when `ci/bench.sh` is re-run; "
        "only ratios taken in one run mean anything.",
        "",
        table_note(b),
        "",
        *main_table(b),
        "",
        cpu_note(b),
        "",
        *cpu_table(b),
        "",
    ]
    if not meta.get("zc_skip"):
        sec += [
            f"Zero-copy user sends (`guest-driver/tools/vmso-zc`, {meta.get('zc_bytes', '?')} of UDP, "
            "vmso only): " + "; ".join(
                f"`{p}` {fmt(zero_copy[p]['zc']['median'])} vs {fmt(zero_copy[p]['copy']['median'])} "
                f"Gbit/s through a socket ({fmt(zero_copy[p]['ratio'])}×)" for p in vmsos) + ".",
            "",
        ]
    if notes:
        sec += ["Notes on this run:", ""] + [f"- {n}" for n in notes] + [""]
    sec += [
        f"![throughput per NIC and workload]({link})",
        "",
        f"Goals (issue 8; judged on `{GOAL_POINT}` and `{GOAL_HANDOFF}`, reported, not asserted):",
        "",
        *goals_table(b),
        "",
    ]
    return "\n".join(sec)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    b = Bench(args.out)
    load_inputs(b)
    summarize_all(b)
    read_engine(b)
    judge_goals(b)
    collect_notes(b)
    write_json(b)
    write_markdown(b)
    chart(b)
    section = readme_section(b, args.chart_link)
    with open(os.path.join(b.out, "readme-section.md"), "w", encoding="utf-8") as f:
        f.write(section)
    if args.readme:
        update_readme(args.readme, section)
    return 0


BEGIN_MARK = "<!-- generated by ci/bench.sh --update-readme from its latest full run: do not edit -->"
END_MARK = "<!-- end of the ci/bench.sh output; hand-written notes may follow until the next heading -->"


def update_readme(path, section):
    """Replaces the generated part of README's "## Performance" section. Text between the end
    marker and the next "## " heading is kept; without markers, the whole section goes."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().rstrip("\n").split("\n")
    sec = section.rstrip("\n").split("\n")
    block = sec[:1] + ["", BEGIN_MARK] + sec[1:] + ["", END_MARK]
    start = next((i for i, l in enumerate(lines) if l.strip() == "## Performance"), None)
    if start is None:
        new = lines + [""] + block
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        mark = next((i for i in range(start, end) if lines[i].strip() == END_MARK), None)
        keep = lines[mark + 1:end] if mark is not None else []
        while keep and keep[-1] == "":
            keep.pop()
        rest = lines[end:]
        new = lines[:start] + block + keep + ([""] + rest if rest else [])
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(new) + "\n")


def point_colors(names):
    """A color per point: its own (COLORS), else the next of EXTRA_COLORS, else black."""
    color = {}
    extra = iter(EXTRA_COLORS)
    for n in names:
        color[n] = COLORS.get(n) or next(extra, "#000000")
    return color


def _dat(x):
    return "?" if x is None else f"{x:.4f}"


def write_chart_data(b):
    """The chart's data files: bench-throughput.dat (panel A: median, min, max per point and
    workload), bench-ratios.dat (B: vmso ÷ best default peer), bench-zc.dat (C: zero-copy
    tool vs its copy path per vmso point)."""
    names = [p["name"] for p in b.points]
    with open(os.path.join(b.out, "bench-throughput.dat"), "w", encoding="utf-8") as f:
        f.write("# workload " + " ".join(f"{n}_median {n}_min {n}_max" for n in names) + "\n")
        for w, lab, _ in WORKLOADS:
            cols = []
            for n in names:
                s = b.summary[n][w]
                cols += [_dat(s["median"]), _dat(s["min"]), _dat(s["max"])]
            f.write(f'"{CHART_LABELS[w]}" ' + " ".join(cols) + "\n")
    with open(os.path.join(b.out, "bench-ratios.dat"), "w", encoding="utf-8") as f:
        f.write("# workload " + " ".join(b.vmsos) + "\n")
        for w, lab, _ in WORKLOADS:
            f.write(f'"{CHART_LABELS[w]}" ' + " ".join(_dat(b.ratios[p][w]) for p in b.vmsos) + "\n")
    with open(os.path.join(b.out, "bench-zc.dat"), "w", encoding="utf-8") as f:
        f.write("# point zc_median zc_min zc_max copy_median copy_min copy_max\n")
        for p in b.vmsos:
            z = b.zero_copy[p]
            f.write(f'"{p}" ' + " ".join(_dat(z[k][s]) for k in ("zc", "copy") for s in ("median", "min", "max")) + "\n")


def _top(values, floor=1.0):
    vals = [v for v in values if v is not None]
    return max([floor] + vals) * 1.15  # room for the value labels


def _offset(i, n, gap):
    """x of bar i of n in a clustered histogram (cluster k at x = k)."""
    w = 1.0 / (n + gap)
    return (i - (n - 1) / 2.0) * w


def have_zero_copy(b):
    return any(b.zero_copy[p]["zc"]["median"] is not None for p in b.vmsos)


def chart_throughput(b, color):
    """gnuplot lines of panel A: throughput per workload, one bar per point (median, min-max)."""
    names = [p["name"] for p in b.points]
    n_reps = n_reps_text(b)
    title = (f"vmso vs QEMU NICs, {b.meta.get('date', '')[:10]}, commit {b.meta.get('git_commit', '?')}: "
             f"TCG -smp 1, {b.meta.get('m_host_cpus', '?')}-core host, median of {n_reps}"
             + (", error bars min-max" if n_reps != "1 repetition" else ""))
    tdat = "'" + os.path.join(b.out, "bench-throughput.dat") + "'"
    ymax_a = _top([b.summary[n][w][k] for n in names for w, _, _ in WORKLOADS for k in ("median", "max")])
    gp = [
        "set terminal pngcairo size 1500,1050 font 'DejaVu Sans,11' noenhanced",
        f"set output '{os.path.join(b.out, 'bench.png')}'",
        "set datafile missing '?'",
        "set style fill solid 0.9 border -1",
        "set grid ytics lc rgb '#dddddd'",
        f"set multiplot title '{title}'",
        # panel A: throughput
        "set origin 0,0.5",
        "set size 1,0.47",
        "set title 'iperf3 throughput (Gbit/s; the guest is the iperf3 client)'",
        "set style data histograms",
        "set style histogram errorbars gap 1.5 lw 1",
        f"set xrange [-0.55:{len(WORKLOADS) - 0.45}]",
        f"set yrange [0:{ymax_a:.3f}]",
        "set ylabel 'Gbit/s'",
        "set key outside right top vertical",
    ]
    plots = []
    for i, n in enumerate(names):
        c = 2 + 3 * i
        src = tdat if i == 0 else "''"
        xt = ":xtic(1)" if i == 0 else ""
        plots.append(f"{src} using {c}:{c + 1}:{c + 2}{xt} title '{n}' lc rgb '{color[n]}'")
    for i, n in enumerate(names):
        c = 2 + 3 * i
        # the label above the error bar (the max), showing the median
        plots.append(f"{tdat} using ($0 + {_offset(i, len(names), 1.5):.4f}):(column({c + 2})):"
                     f"(sprintf('%.2f', column({c}))) with labels rotate by 90 left offset 0,0.4 font ',8' notitle")
    gp.append("plot " + ", \\\n     ".join(plots))
    return gp


def chart_ratios(b, color):
    """gnuplot lines of panel B: vmso ÷ best default peer per workload, log scale so that the
    goals and ratios below 1 both show."""
    goals_at = {w: 1.3 for w, _, _ in WORKLOADS}  # hand-off mode; wire mode: 1.0, the grey line
    rdat = "'" + os.path.join(b.out, "bench-ratios.dat") + "'"
    rvals = [b.ratios[p][w] for p in b.vmsos for w, _, _ in WORKLOADS if b.ratios[p][w]]
    rlo = min([0.1] + [v / 1.5 for v in rvals])
    rhi = max([10.0] + [v * 1.5 for v in rvals])
    gp = [
        "set origin 0,0",
        f"set size {0.6 if have_zero_copy(b) else 1},0.48",
        "set title 'vmso ÷ best default peer (vnet_hdr TAP); log scale; 1: wire-mode goal, dashed: hand-off goal'",
        "set style histogram clustered gap 1.5",
        "set logscale y",
        f"set yrange [{rlo:.4g}:{rhi:.4g}]",
        "set ytics (0.1, 0.2, 0.5, 1, 1.3, 2, 2.5, 5, 10)",
        "set ylabel 'ratio'",
        "set key inside left top vertical font ',9'",
        "set xtics font ',10'",
        "unset arrow",
        "unset label",
        "set arrow from graph 0, first 1 to graph 1, first 1 nohead lw 2 lc rgb '#777777' back",
    ]
    for i, (w, _, _) in enumerate(WORKLOADS):
        if w in goals_at:
            gp.append(f"set arrow from {i - 0.42},{goals_at[w]} to {i + 0.42},{goals_at[w]} nohead dt 2 lw 2 lc rgb '#000000' front")
            gp.append(f"set label 'hand-off {goals_at[w]:g}×' at {i},{goals_at[w] * 1.12} center font ',9' front")
    plots = []
    for i, p in enumerate(b.vmsos):
        src = rdat if i == 0 else "''"
        xt = ":xtic(1)" if i == 0 else ""
        plots.append(f"{src} using {i + 2}{xt} title '{p}' lc rgb '{color[p]}'")
    for i, p in enumerate(b.vmsos):
        plots.append(f"{rdat} using ($0 + {_offset(i, len(b.vmsos), 1.5):.4f}):(column({i + 2})):"
                     f"(sprintf('%.2f', column({i + 2}))) with labels rotate by 90 left offset 0,0.4 font ',8' notitle")
    if b.vmsos:
        gp.append("plot " + ", \\\n     ".join(plots))
    gp += ["unset logscale y", "unset arrow", "unset label"]
    return gp


def chart_zero_copy(b):
    """gnuplot lines of panel C: the zero-copy tool vs its copy path (none without figures)."""
    if not have_zero_copy(b):
        return []
    zdat = "'" + os.path.join(b.out, "bench-zc.dat") + "'"
    ymax_c = _top([b.zero_copy[p][t][k] for p in b.vmsos for t in ("zc", "copy") for k in ("median", "max")])
    return [
        "set origin 0.6,0",
        "set size 0.4,0.48",
        "set title 'zero-copy tool vs its copy path (Gbit/s)'",
        "set style histogram errorbars gap 1.5 lw 1",
        f"set xrange [-0.55:{len(b.vmsos) - 0.45}]",
        f"set yrange [0:{ymax_c:.3f}]",
        "set ytics autofreq",
        "set ylabel 'Gbit/s'",
        "set key inside right top vertical font ',9'",
        "set xtics font ',9'",
        f"plot {zdat} using 2:3:4:xtic(1) title '/dev/vmso0 (zero-copy)' lc rgb '#1f77b4', "
        "'' using 5:6:7 title 'send() (copy)' lc rgb '#c7c7c7', "
        f"{zdat} using ($0 + {_offset(0, 2, 1.5):.4f}):4:(sprintf('%.2f', $2)) with labels offset 0,0.7 font ',9' notitle, "
        f"{zdat} using ($0 + {_offset(1, 2, 1.5):.4f}):7:(sprintf('%.2f', $5)) with labels offset 0,0.7 font ',9' notitle",
    ]


def run_gnuplot(gpath):
    r = subprocess.run(["gnuplot", gpath], capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stderr)
        sys.exit("bench-report.py: gnuplot failed (script " + gpath + ")")
    if r.stderr.strip():
        sys.stderr.write("gnuplot: " + r.stderr)


def chart(b):
    """bench.png: its data files, the gnuplot script bench.gp (three panels), gnuplot."""
    color = point_colors([p["name"] for p in b.points])
    write_chart_data(b)
    gp = chart_throughput(b, color) + chart_ratios(b, color) + chart_zero_copy(b) + ["unset multiplot"]
    gpath = os.path.join(b.out, "bench.gp")
    with open(gpath, "w", encoding="utf-8") as f:
        f.write("\n".join(gp) + "\n")
    run_gnuplot(gpath)


if __name__ == "__main__":
    sys.exit(main())
