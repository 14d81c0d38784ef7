#!/usr/bin/env python3
"""Read the iperf3 reports a guest printed and print their figures as key=value lines.

The guest has no JSON parser, so its iperf_run (ci/guest/lib.sh) runs `iperf3 -J` and
prints each report on the console as one line, `IPERF-JSON NAME rc=RC {...}`. This reads
those lines from a console log and prints, per report NAME (the last report of a NAME wins):

  NAME_gbps          the receiver's Gbit/s        NAME_sender_gbps  the sender's Gbit/s
  NAME_retr          the sender's retransmissions (TCP; ? otherwise)
  NAME_bytes         the bytes the receiver counted
  NAME_cpu_pct       the client's CPU use, % (iperf3's "local" CPU utilisation)
  NAME_loss_pct      UDP: datagrams lost, % (receiver's count)
  NAME_reverse_gbps, NAME_reverse_loss_pct   with --bidir: the same for the reverse flow
  NAME_ok=1          iperf3 exited 0 and the report has the receiver's totals;
                     otherwise only NAME_ok=0 NAME_rc=RC

The figures are written as iperf3's own text report (`-f g`) writes them, so that they
match what the harness read from that text before: Gbit/s with 3 significant digits
(iperf3's unit_snprintf), the byte count as the text's transfer column ("2.62 GBytes")
times its unit, the loss as "%.2g" and the CPU as "%.1f".

Usage: iperf-json.py CONSOLE_LOG
"""
import argparse
import json
import re
import sys

LINE = re.compile(r"^IPERF-JSON (\S+) rc=(\d+) (.*)$")
BYTE_UNITS = ["Bytes", "KBytes", "MBytes", "GBytes", "TBytes"]


def fmt4(value):
    """iperf3's unit_snprintf number format: three significant digits, four places."""
    if value < 9.995:
        return "%4.2f" % value
    if value < 99.95:
        return "%4.1f" % value
    return "%4.0f" % value


def gbits(bits_per_second):
    """Gbit/s as iperf3 -f g writes them ("0.91", "22.6")."""
    return fmt4(bits_per_second / 1e9).strip()


def text_bytes(count):
    """The byte count the text report's transfer column gives: "2.62 GBytes" (adaptive
    units of 1024) read back as 2.62 * 1024^3, rounded to an integer as the harness's awk
    did ("%.0f")."""
    value, unit = float(count), 0
    while value >= 1024.0 and unit < len(BYTE_UNITS) - 1:
        value /= 1024.0
        unit += 1
    return "%.0f" % (float(fmt4(value)) * 1024.0 ** unit)


def figures(name, rc, doc):
    """The key=value pairs of one report."""
    end = doc.get("end") or {}
    received, sent = end.get("sum_received"), end.get("sum_sent") or {}
    if rc != 0 or not received:
        return [f"{name}_ok=0", f"{name}_rc={rc}"]
    pairs = [
        f"{name}_gbps={gbits(received['bits_per_second'])}",
        f"{name}_sender_gbps={gbits(sent['bits_per_second'])}" if sent else f"{name}_sender_gbps=?",
        f"{name}_retr={sent.get('retransmits', '?')}",
        f"{name}_bytes={text_bytes(received['bytes'])}",
    ]
    cpu = end.get("cpu_utilization_percent")
    if cpu:
        pairs.append(f"{name}_cpu_pct={cpu['host_total']:.1f}")
    if "lost_percent" in received:
        pairs.append(f"{name}_loss_pct={received['lost_percent']:.2g}")
    reverse = end.get("sum_received_bidir_reverse")
    if reverse:
        pairs.append(f"{name}_reverse_gbps={gbits(reverse['bits_per_second'])}")
        if "lost_percent" in reverse:
            pairs.append(f"{name}_reverse_loss_pct={reverse['lost_percent']:.2g}")
    pairs.append(f"{name}_ok=1")
    return pairs


def reports(path):
    """(NAME, RC, document or None) of every IPERF-JSON line in the console log PATH."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = LINE.match(line.replace("\r", "").rstrip("\n"))
            if not m:
                continue
            try:
                doc = json.loads(m.group(3))
            except ValueError:
                doc = None
            yield m.group(1), int(m.group(2)), doc


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("console", help="the guest's console log")
    args = ap.parse_args()
    try:
        for name, rc, doc in reports(args.console):
            pairs = figures(name, rc, doc) if doc is not None else [f"{name}_ok=0", f"{name}_rc={rc}"]
            print("\n".join(pairs))
    except OSError as e:
        sys.exit(f"iperf-json.py: {e}")


if __name__ == "__main__":
    main()
