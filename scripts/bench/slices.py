#!/usr/bin/env python3
"""Time-sliced measurement for scripts/bench.sh --sliced.

Every contender's switch is already running, stopped (bench.sh started
them, each with its own sockets and file prefix, and sent SIGSTOP); this
starts one generator per contender, one pair at a time, ramps the injected
load in the same steps for each (a short window at every step, to show the
rate has stopped rising) and stops the pair again. Then it runs the pairs one at a
time: SIGCONT the switch and its generator, let them settle, measure one
window, SIGSTOP them again, next contender. A round gives every contender
one window, in an order rotated each round; the rounds are the
repetitions.

Why: on a shared VM the rate of the same switch drifts by 10-30 % within
seconds (the host, not the switch). Restarting processes puts 10 s or more
between two contenders' windows; slicing puts a few seconds, so the ratio of
windows measured back to back cancels most of that drift.

Prints one JSON object per window (the fields of gen.py's, with "rep" the
round), as soon as it is measured.

--tcp: the generators are vhd-tcpgen (bench/tcp.py: TCP payload
throughput, the ramp in payload in flight), the rest is the same.
"""
import argparse
import json
import os
import signal
import sys
import time
from types import SimpleNamespace

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen import (add_case_args, case_fields, inject,  # noqa: E402
                 judge, levels_of, measure, perf_cycles_ok, start_generator,
                 wait_learned, wait_links)
from gen import mq, queue_stats, show_switch  # noqa: E402  multiqueue
import swstate  # noqa: E402
import tcp  # noqa: E402


def signal_pair(c, sig):
    """Switch and generator together; on SIGSTOP the generator first, so
    the switch does not fill a stopped generator's rings, and the reverse
    on SIGCONT."""
    pids = [c.sw_pid, c.tp.p.pid]
    for pid in (pids[::-1] if sig == signal.SIGSTOP else pids):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


# ---- multiqueue (--sw-lcores)
def check_stopped(pid, label, timeout=2.0):
    """Every thread of the switch (all its lcores / PMDs) in the stopped
    state after SIGSTOP, said on stderr (SIGSTOP stops the whole process;
    this shows it did)."""
    deadline = time.monotonic() + timeout
    while True:
        states = {}
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/stat") as f:
                    st = f.read()
                states[tid] = st[st.rfind(")") + 2]
        except OSError:
            pass
        running = [t for t, s_ in states.items() if s_ not in "Tt"]
        if not running or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    print(f"[bench] {label}: SIGSTOP: {len(states) - len(running)} of "
          f"{len(states)} switch threads stopped"
          + (f", NOT stopped: {running}" if running else ""),
          file=sys.stderr, flush=True)
# ---- end multiqueue


def emit(res):
    print(json.dumps(res), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--contender", action="append", required=True,
                    metavar="LABEL:SWPID:SOCK0:SOCK1:SERVER:PREFIX[:PROBE[:SHOW]]",
                    help="one per contender; SERVER 1 when the generator "
                    "is the vhost-user server; PROBE as gen.py --probe, "
                    "SHOW as gen.py --show")
    ap.add_argument("--size", default="64")
    ap.add_argument("--dir", default="both",
                    choices=("both", "oneway", "encap", "decap"))
    ap.add_argument("--bursts", default="32,64,128",
                    help="cumulative bursts (of 32) injected per port; the "
                    "windows run at the last")
    ap.add_argument("--ramp-interval", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--rep-base", type=int, default=0,
                    help="number the rounds from this + 1")
    ap.add_argument("--window", type=float, default=2.0)
    ap.add_argument("--settle", type=float, default=1.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--gen-cpu", type=int, default=0)
    ap.add_argument("--sw-cpu", type=int, default=1)
    ap.add_argument("--freq-mhz", type=float, default=0)
    ap.add_argument("--min-share", type=float, default=0.97)
    ap.add_argument("--max-steal", type=float, default=0.02)
    ap.add_argument("--link-timeout", type=float, default=30)
    ap.add_argument("--vdev-extra", default="")
    ap.add_argument("--testpmd", default="dpdk-testpmd")
    ap.add_argument("--log-dir", default="/tmp")
    ap.add_argument("--log-tag", default="",
                    help="appended to the generator log names (the case)")
    add_case_args(ap)
    tcp.add_args(ap)
    a = ap.parse_args()
    # perf counts --sw-cpu only: not with several switch lcores
    perf = (a.sw_lcores or 1) == 1 and perf_cycles_ok(a.sw_cpu)
    # ---- tcp: vhd-tcpgen's functions instead of testpmd's (gen.py), and
    # its ramp in payload Gbit/s
    g = SimpleNamespace(start_generator=start_generator,
                        wait_links=wait_links, inject=inject,
                        levels_of=levels_of, wait_learned=wait_learned,
                        measure=measure, judge=judge, probe=swstate.probe,
                        delta=swstate.delta)
    rate = "mpps"
    if a.tcp:
        g = tcp
        rate = "payload_gbps"
    # ---- end tcp

    cs = []
    for spec in a.contender:
        label, swpid, s0, s1, srv, prefix, *pr = spec.split(":")
        c = SimpleNamespace(**vars(a))
        c.probe = pr[0] if pr else ""
        c.show = pr[1] if len(pr) > 1 else ""  # multiqueue
        c.label, c.sw_pid, c.sock0, c.sock1 = label, int(swpid), s0, s1
        c.server, c.prefix, c.perf = srv == "1", prefix, perf
        c.log = os.path.join(a.log_dir,
                             f"{label}-{a.size}-{a.dir}{a.log_tag}.gen.log")
        c.pidfile = os.path.join(os.path.dirname(s0), "gen.pid")
        c.tp, c.learn = None, {}
        cs.append(c)

    levels = g.levels_of(a)
    base = {"size": a.size, "dir": a.dir, "attempt": 0, "pick": "last",
            "level": levels[-1], "sliced": True, **case_fields(a)}
    live = []
    try:
        # bench.sh stopped each switch once it was up. Start, link and load
        # one pair at a time, the others stopped.
        for c in cs:
            os.kill(c.sw_pid, signal.SIGCONT)
            try:
                c.tp = g.start_generator(c)
                g.wait_links(c.tp, c)
                c.ramp, injected = [], 0
                for i, lvl in enumerate(levels):
                    g.inject(c.tp, c, lvl - injected)
                    injected = lvl
                    time.sleep(a.warmup if i == 0 else 1.0)
                    if i == 0:
                        c.learn = g.wait_learned(c.tp, c)
                    m = g.measure(c.tp, c, a.ramp_interval)
                    c.ramp.append((lvl, round(m[rate], 3)))
                # plateau: the last step beats the best earlier one by < 3 %
                prev = max((x for _, x in c.ramp[:-1]), default=0)
                c.plateau = prev == 0 or c.ramp[-1][1] / prev < 1.03
                if mq(a):
                    show_switch(c.tp, c, c.label)  # queues under load
            except Exception as e:  # report it, go on with the others
                emit({**base, "label": c.label, "rep": a.rep_base + 1,
                      "error": str(e)[:800], "disturbed": True,
                      "why": ["error"]})
                if c.tp:
                    c.tp.close()
                signal_pair(c, signal.SIGCONT)
                continue
            signal_pair(c, signal.SIGSTOP)
            if mq(a):
                check_stopped(c.sw_pid, c.label)
            live.append(c)
        for r in range(a.rounds):
            for k in range(len(live)):
                c = live[(k + r) % len(live)]
                signal_pair(c, signal.SIGCONT)
                # --flows: the switch's state around the window (read
                # outside it: the reads use CPU)
                p0 = g.probe(c.probe)
                time.sleep(a.settle)
                res = {**base, "label": c.label, "rep": a.rep_base + r + 1,
                       "time": time.strftime("%Y-%m-%dT%H:%M:%S"), **c.learn}
                try:
                    m = g.measure(c.tp, c, a.window)
                    res.update(m)
                    g.delta(p0, g.probe(c.probe), res)
                    res["ramp"], res["plateau"] = c.ramp, c.plateau
                    res["mpps_last"] = m["mpps"]
                    g.judge(res, c)
                except Exception as e:
                    res.update({"error": str(e)[:800], "disturbed": True,
                                "why": ["error"]})
                signal_pair(c, signal.SIGSTOP)
                emit(res)
    finally:
        for c in cs:
            if c.tp:
                signal_pair(c, signal.SIGCONT)
                if (a.queues or 1) > 1 and c in live:
                    # ---- multiqueue: the generator's per-queue counters
                    # over the session (the full output in its log)
                    try:
                        qs = queue_stats(c.tp, c)
                        print(f"[bench] {c.label}: generator packets per "
                              f"queue, into the switch {qs['into_switch']}, "
                              f"from it {qs['from_switch']}",
                              file=sys.stderr, flush=True)
                    except Exception as e:
                        print(f"[bench] {c.label}: show fwd stats: {e}",
                              file=sys.stderr, flush=True)
                c.tp.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
