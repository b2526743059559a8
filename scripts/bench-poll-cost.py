#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""What one datapath lcore's poll loop costs per port and per queue, the
inputs of the scaling model in docs/BENCHMARKS.md ("Scaling past two
cores").

One vhostd, one datapath lcore on --sw-cpu (default CPU 1, the main lcore
on CPU 0), no traffic. The loop's rate (telemetry /vhostd/info: loops and
idle cycles over --window seconds, several windows, the median) gives the
TSC cycles one iteration of the loop costs:
  1. with N more vhost-user server ports that have no guest (--ports),
     added at run time with `vhostctl port add`: an idle port without a
     guest should cost nothing (vhostd polls only enabled queues);
  2. with K Python guests (tests/lib/vhostuser.py: a frontend in this
     process, which negotiates and enables Q queue pairs and then never
     touches its rings, so it costs no CPU) connected to K of those ports
     (--queues: total enabled queues, in guests of --guest-queues pairs):
     each enabled guest tx queue is one empty rte_vhost_dequeue_burst per
     loop.
Per-port and per-queue costs are the slopes (cycles per loop per port or
queue). A guest with traffic costs more per poll; that cost is the
throughput bench's cycles per packet (scripts/bench.sh).

Needs root, hugepages (set up here), build/src/vhostd (or VHOSTD=...).
Prints a table and RESULT lines; nothing is left behind (tests/lib's
cleanup). Run it on an otherwise idle machine.
"""
import argparse
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
import vhdtest as vt  # noqa: E402
import vhostuser as vu  # noqa: E402


def loop_cycles(d, window, windows):
    """Median TSC cycles per loop iteration (and the idle share) over
    WINDOWS windows of WINDOW seconds."""
    per_loop = []
    for _ in range(windows):
        a = d.query("/vhostd/info")
        time.sleep(window)
        b = d.query("/vhostd/info")
        loops = b["loops"] - a["loops"]
        cyc = (b["idle_cycles"] + b["busy_cycles"] -
               a["idle_cycles"] - a["busy_cycles"])
        if loops > 0:
            per_loop.append(cyc / loops)
    return statistics.median(per_loop) if per_loop else float("nan")


def slope(xs, ys):
    """Least-squares slope of YS over XS."""
    mx, my = statistics.mean(xs), statistics.mean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den \
        else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ports", default="0,16,64,256,1000",
                    help="idle ports without a guest (list)")
    ap.add_argument("--queues", default="0,16,64,256",
                    help="enabled guest queues, idle (list)")
    ap.add_argument("--guest-queues", type=int, default=16,
                    help="queue pairs per Python guest (a frontend in "
                    "this process that enables its queues and never "
                    "touches its rings; default 16)")
    ap.add_argument("--window", type=float, default=1.0,
                    help="seconds per measurement window (default 1)")
    ap.add_argument("--windows", type=int, default=5,
                    help="windows per value; the median is reported "
                    "(default 5)")
    ap.add_argument("--sw-cpu", type=int, default=1,
                    help="CPU of the datapath lcore (default 1; the main "
                    "lcore takes the other)")
    a = ap.parse_args()
    ports = sorted(int(x) for x in a.ports.split(","))
    queues = sorted(int(x) for x in a.queues.split(","))
    gq = a.guest_queues
    n_guests = max(queues) // gq + (1 if max(queues) % gq else 0)
    if n_guests > max(ports):
        sys.exit("bench-poll-cost: %d guests of %d queues need at least "
                 "that many ports in --ports" % (n_guests, gq))
    if max(ports) > 1000:
        # librte_vhost 22.11 watches at most 1024 fds (docs/RELIABILITY.md)
        sys.exit("bench-poll-cost: at most 1000 ports with guests beside")

    t = vt.Test("pollcost")
    rows = []
    try:
        vt.setup_hugepages()
        d = vt.Vhostd(t, {"br0": {"mode": "learning"}}, {},
                      lcores=str(a.sw_cpu),
                      main_lcore=0 if a.sw_cpu else 1).start()
        hz = d.query("/vhostd/info")["tsc_hz"]
        have = 0
        for n in ports:
            for i in range(have, n):
                d.ctl("port/add", "idle%d" % i, "type=vhost-user",
                      "bridge=br0", "path=%s" % t.path("i%d.sock" % i))
            have = n
            c = loop_cycles(d, a.window, a.windows)
            rows.append(("ports", n, c))
            print("RESULT kind=idle_ports n=%d cycles_per_loop=%.1f" % (n, c),
                  flush=True)
        guests = []
        for q in queues:
            while len(guests) * gq < q:
                i = len(guests)
                guests.append(vu.Guest(t.path("i%d.sock" % i), queues=gq))
                name = "idle%d" % i
                vt.wait_until(lambda name=name: d.port(name)[
                    "enabled_rxqs"] == gq, 20,
                    "%s with %d queues enabled" % (name, gq))
            # the poll lists follow the guests a loop later
            vt.wait_until(lambda q=q: sum(
                len(lc["rxqs"]) for lc in d.ctl("lcores")) >= q, 20,
                "%d queues polled" % q)
            c = loop_cycles(d, a.window, a.windows)
            rows.append(("queues", q, c))
            print("RESULT kind=idle_queues n=%d ports=%d cycles_per_loop=%.1f"
                  % (q, max(ports), c), flush=True)
        for g in guests:
            g.close()
    finally:
        t.cleanup()

    print()
    print("%-40s %8s %16s %14s" % ("case", "n", "cycles per loop",
                                   "loops/s"))
    for kind, n, c in rows:
        what = ("idle ports, no guest" if kind == "ports" else
                "enabled idle guest queues (%d ports)" % max(ports))
        print("%-40s %8d %16.1f %14.0f" % (what, n, c, hz / c))
    px = [n for k, n, _ in rows if k == "ports"]
    py = [c for k, _, c in rows if k == "ports"]
    qx = [n for k, n, _ in rows if k == "queues"]
    qy = [c for k, _, c in rows if k == "queues"]
    if len(px) > 1:
        print("per idle port without a guest: %.3f cycles per loop" %
              slope(px, py))
    if len(qx) > 1:
        print("per enabled guest queue (an empty poll): %.1f cycles per "
              "loop" % slope(qx, qy))


if __name__ == "__main__":
    main()
