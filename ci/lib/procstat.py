"""/proc/PID/stat, read the one way ci/lib/bench-cpu.py and ci/lib/bench-monitor.py need."""
import os


def read_stat(path):
    """(comm, fields) of a /proc/.../stat file, or None if it is gone. fields[0] is field 3
    of proc(5) (state): ppid is fields[1], flags fields[6], utime fields[11], stime
    fields[12]. comm may hold spaces and parentheses: it ends at the last ")"."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            s = f.read()
    except OSError:
        return None
    r = s.rfind(")")
    return s[s.find("(") + 1:r], s[r + 2:].split()


def processes():
    """{pid: (comm, fields)} of every process."""
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = read_stat(f"/proc/{d}/stat")
            if st is not None:
                out[int(d)] = st
    return out


def cpu_ticks(fields):
    """utime + stime, in clock ticks."""
    return int(fields[11]) + int(fields[12])
