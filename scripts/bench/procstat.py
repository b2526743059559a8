"""/proc sampling helpers shared by gen.py and quiet.py."""
import os
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_times():
    """pid -> (utime+stime ticks of the process, comm)."""
    res = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        rest = s[s.rfind(")") + 2:].split()
        res[int(d)] = (int(rest[11]) + int(rest[12]),
                       s[s.find("(") + 1:s.rfind(")")])
    return res


def top_others(t0, t1, dt, exclude=(), min_share=0.05, n=3):
    """Other processes that used >= min_share of one CPU between t0 and t1."""
    out = []
    for pid, (ticks, comm) in t1.items():
        if pid in exclude or pid == os.getpid():
            continue
        d = ticks - t0.get(pid, (ticks,))[0]
        share = d / CLK_TCK / dt
        if share >= min_share:
            out.append((share, f"{comm}[{pid}]"))
    out.sort(reverse=True)
    return [f"{name} {share:.0%}" for share, name in out[:n]]


def cpu_busy():
    """(busy, total) jiffies summed over all CPUs."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


def wait_quiet(max_wait, threshold):
    """Wait until the machine is idle (busy < threshold of all CPUs over 1 s).
    Returns (quiet, busy_fraction, waited_s, top_processes)."""
    start = time.monotonic()
    while True:
        p0, c0, t0 = proc_times(), cpu_busy(), time.monotonic()
        time.sleep(1.0)
        p1, c1, t1 = proc_times(), cpu_busy(), time.monotonic()
        tot = c1[1] - c0[1]
        busy = (c1[0] - c0[0]) / tot if tot else 0.0
        waited = t1 - start
        if busy < threshold or waited >= max_wait:
            return busy < threshold, busy, waited, top_others(p0, p1, t1 - t0)


if __name__ == "__main__":
    # quiet.py MAX_WAIT THRESHOLD: exit 0 when quiet, 1 on timeout
    q, busy, waited, top = wait_quiet(float(sys.argv[1]), float(sys.argv[2]))
    msg = f"machine busy {busy:.0%}" + (f" ({', '.join(top)})" if top else "")
    if not q:
        print(f"still not quiet after {waited:.0f}s: {msg}", file=sys.stderr)
    elif waited > 1.5:
        print(f"waited {waited:.0f}s for a quiet machine", file=sys.stderr)
    sys.exit(0 if q else 1)
