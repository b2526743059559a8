#!/usr/bin/env python3
"""Processing cycles per packet of a switch under test, read from the switch.

TSC cycles spent in polling iterations that moved packets, divided by the
packets received, over the switch's whole run (the same phases for every
contender). Unlike "CPU time x frequency / packets" it leaves out empty
polls, so it is the switch's own cost per packet even when the generator,
not the switch, limits the rate.

  proc_cycles.py vhostd PREFIX   busy_cycles / rx packets (vhostd telemetry)
  proc_cycles.py ovs < pmd-stats-show output      OVS "avg processing cycles per packet"
  proc_cycles.py testpmd < testpmd log            "CPU cycles/packet=" (--record-core-cycles)

Prints the number, or nothing when it cannot be read.
"""
import json
import os
import re
import subprocess
import sys


def vhostd(prefix):
    ctl = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                       "vhostd-ctl")
    q = lambda c: json.loads(subprocess.check_output(
        [sys.executable, ctl, "--prefix", prefix, "--json", c], timeout=10))
    info, ports = q("info"), q("ports")
    rx = sum(p.get("rx_packets", 0) for p in ports.values())
    return info["busy_cycles"] / rx if rx else None


def ovs(text):
    # the pmd thread's block (the main thread has its own, idle one)
    m = re.search(r"pmd thread.*?avg processing cycles per packet:\s*([\d.]+)",
                  text, re.S)
    # ---- multiqueue (--sw-lcores): several PMD threads, their averages
    # weighted by the packets each received
    blocks = []
    for b in text.split("pmd thread")[1:]:
        b = b.split("main thread")[0]
        p = re.search(r"packets received:\s*(\d+)", b)
        c = re.search(r"avg processing cycles per packet:\s*([\d.]+)", b)
        blocks.append((int(p.group(1)) if p else 0,
                       float(c.group(1)) if c else 0.0))
    if len(blocks) > 1:
        n = sum(p for p, c in blocks if c)
        return sum(p * c for p, c in blocks if c) / n if n else None
    # ---- end multiqueue
    return float(m.group(1)) if m else None


def testpmd(text):
    m = re.findall(r"CPU cycles/packet=([\d.]+)", text)
    return float(m[-1]) if m else None


def main():
    try:
        if sys.argv[1] == "vhostd":
            v = vhostd(sys.argv[2])
        elif sys.argv[1] == "ovs":
            v = ovs(sys.stdin.read())
        else:
            v = testpmd(sys.stdin.read())
    except (OSError, ValueError, KeyError, subprocess.SubprocessError):
        v = None
    if v:
        print(f"{v:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
