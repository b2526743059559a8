#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Rx queues placed by measured load, on two datapath lcores.

- a and c (Python guests sending b and e streams as fast as they can) are
  the busy queues; b and e send nothing. Placed at start before anything
  was measured, a and c share an lcore; after `rxq rebalance` they are
  apart, a second rebalance moves nothing, and `lcores` shows each queue
  once with its share, on the CPU its lcore's thread really runs on.
- a sends b a counted stream of unique frames while the queues are
  re-placed again and again (rebalance, a port added and removed, a pin):
  every frame arrives, in order, byte for byte.
- rxq-affinity pins a port's queue to an lcore and rebalance leaves it.
- auto-rebalance (every 5 s here) splits two busy queues that start on
  one lcore, with no frame of either stream lost.
- At the end every mbuf is back.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
import vhdtest as vt  # noqa: E402
import vhostuser as vu  # noqa: E402

A, B, C, E = ("02:00:00:00:00:0a", "02:00:00:00:00:0b", "02:00:00:00:00:0c",
              "02:00:00:00:00:0e")


def threads_cpus(pid, name):
    """The CPUs thread NAME of process PID may run on."""
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
            if f.read().strip() != name:
                continue
        return os.sched_getaffinity(int(tid))
    raise vt.Failure("no thread %s" % name)


def where(d):
    """{(port, queue): lcore} from lcores; each queue listed once."""
    out = {}
    for e in d.ctl("lcores"):
        for q in e["rxqs"]:
            k = (q["port"], q["queue"])
            vt.check(k not in out, "%s polled twice: %s" % (k, d.ctl("lcores")))
            vt.check(0 <= q["share_pct"] <= 100 and q["pps"] >= 0,
                     "lcores entry %s" % q)
            out[k] = e["lcore"]
    return out


class Stream:
    """GA -> GB: unique numbered frames, checked at GB in order."""

    def __init__(self, ga, gb, src=A, dst=B):
        self.ga, self.gb, self.sent, self.got = ga, gb, 0, 0
        self.src, self.dst = src, dst

    def frame(self, k):
        return vt.frame(self.dst, self.src,
                        payload=b"seq %08d " % k + bytes(40))

    def pump(self, n=64):
        for _ in range(n):
            if self.sent - self.got >= 128 or not self.ga.txq.tx(
                    self.frame(self.sent)):
                break
            self.sent += 1
        for f in self.gb.rxq.rx():
            vt.check(f == self.frame(self.got),
                     "b got %r, expected frame %d" % (f[:30], self.got))
            self.got += 1

    def drain(self, timeout=20):
        end = time.time() + timeout
        while self.got < self.sent:
            vt.check(time.time() < end, "%s->%s: %d of %d frames arrived" %
                     (self.src, self.dst, self.got, self.sent))
            self.pump(0)
            time.sleep(0.001)


def four_guests(t, d):
    """Guests a, b, c and e up, b's and e's MACs learned (so that nothing
    floods) and the floods of learning read off."""
    g = {n: vu.Guest(t.path(n + ".sock")) for n in ("a", "b", "c", "e")}
    d.wait_up("a", "b", "c", "e")
    for n, m in (("b", B), ("e", E)):
        g[n].txq.tx(vt.frame(vt.BCAST, m))
        vt.wait_until(lambda m=m: m in [x["mac"] for x in d.ctl("fdb/show")],
                      10, "%s learned" % n)
    for n in ("a", "b", "c", "e"):
        g[n].rxq.rx()
    return g


def run_while(streams, seconds, fn=None):
    if not isinstance(streams, list):
        streams = [streams]
    end = time.time() + seconds
    while time.time() < end:
        for st in streams:
            st.pump()
        if fn and fn():
            return True
        time.sleep(0.0005)
    return False


def test_rxq_sched(t):
    vh = lambda n, **kw: dict({"type": "vhost-user", "bridge": "br0",  # noqa
                               "path": t.path(n + ".sock")}, **kw)
    d = vt.Vhostd(t, {"br0": {}},
                  {n: vh(n) for n in ("a", "b", "c", "e")},
                  lcores="0,1").start()
    base = d.mbufs_in_use()
    g = four_guests(t, d)
    ga, gb = g["a"], g["b"]
    st = Stream(ga, gb)
    st2 = Stream(g["c"], g["e"], C, E)

    # Placed before any load was known: one queue each, in port order.
    vt.wait_until(lambda: len(where(d)) == 4, 10, "4 queues polled")
    w = where(d)
    print("at start: %s" % w)
    vt.check(len(set(w.values())) == 2 and w[("a", 0)] == w[("c", 0)],
             "a and c not together at start: %s" % w)
    # Each lcore's thread runs on the CPU lcores says.
    for e in d.ctl("lcores"):
        aff = threads_cpus(d.proc.pid, "rte-worker-%d" % e["lcore"])
        vt.check(aff == {e["cpu"]}, "lcore %d runs on CPUs %s, lcores says "
                 "%d" % (e["lcore"], aff, e["cpu"]))
    # Five seconds of load, then rebalance: a and c apart.
    run_while([st, st2], 6)
    lc = d.ctl("lcores")
    print("lcores: %s" % lc)
    share = {q["port"]: q["share_pct"] for e in lc for q in e["rxqs"]}
    vt.check(all(share[x] > 0 and share[x] > share["b"] and
                 share[x] > share["e"] for x in ("a", "c")),
             "a and c are not the busy queues: %s" % share)
    r = d.ctl("rxq/rebalance")
    print("rebalance: %s" % r)
    vt.check(r["queues"] == 4 and r["moved"] >= 1 and
             r["improvement_pct"] > 25 and len(r["load_pct_before"]) == 2,
             "rebalance reply %s" % r)
    w = where(d)
    vt.check(w[("a", 0)] != w[("c", 0)], "a and c together after "
             "rebalance: %s" % w)
    # Nothing better now: a second rebalance right away moves nothing.
    r2 = d.ctl("rxq/rebalance")
    vt.check(r2["moved"] == 0 and where(d) == w,
             "second rebalance moved %s" % r2)
    st2.drain()

    # The stream survives re-placement after re-placement.
    n = [0]

    def churn():
        n[0] += 1
        if n[0] % 50 == 0:
            d.ctl("rxq/rebalance")
        if n[0] % 200 == 100:
            d.ctl("port/add", "tmp", "bridge=br0", "type=ethdev",
                  "devargs=net_null0,no-rx=1", "queues=2")
        if n[0] % 200 == 0:
            d.ctl("port/del", "tmp")
    run_while(st, 8, churn)
    st.drain()
    print("stream: %d frames a->b through %d re-placements" %
          (st.got, n[0] // 50 + n[0] // 100))
    vt.check(st.got > 1000, "only %d frames in the stream" % st.got)
    p = d.port("b")
    vt.check(p["drop_tx_full"] == 0 and p["drop_not_ready"] == 0,
             "drops at b: %s" % p)

    # A pin: b's queue on lcore 1's CPU (CPU 1), kept by rebalance.
    d.ctl("port/del", "b")
    gb.close()
    d.ctl("port/add", "b", "bridge=br0", "type=vhost-user",
          "path=" + t.path("b.sock"), "rxq-affinity=0:1")
    gb = vu.Guest(t.path("b.sock"))
    d.wait_up("b")
    vt.wait_until(lambda: ("b", 0) in where(d), 10, "b polled")
    lcore_of_cpu1 = [e["lcore"] for e in d.ctl("lcores") if e["cpu"] == 1][0]
    vt.check(where(d)[("b", 0)] == lcore_of_cpu1, "b not pinned: %s" %
             where(d))
    d.ctl("rxq/rebalance")
    vt.check(where(d)[("b", 0)] == lcore_of_cpu1, "pin lost: %s" %
             where(d))
    vt.check("rxq-affinity = 0:1" in d.ctl("config/show")["config"],
             "config show lacks the pin")
    bad = d.rpc("port/add", "z", "bridge=br0", "type=vhost-user",
                "path=" + t.path("z.sock"), "rxq-affinity=0:7")
    vt.check("error" in bad and "not one of [vhostd] lcores" in
             bad["error"]["message"], "bad pin: %s" % bad)

    for n in ("a", "c", "e"):
        g[n].close()
    gb.close()
    d.stop_clean(base)

    # auto-rebalance: a and c (both busy) start on one lcore.
    d = vt.Vhostd(t, {"br0": {}},
                  {n: vh(n) for n in ("a", "b", "c", "e")}, lcores="0,1",
                  extra_global="auto-rebalance = yes\n"
                  "auto-rebalance-interval = 5\n"
                  "auto-rebalance-load = 0").start()
    base = d.mbufs_in_use()
    g = four_guests(t, d)
    vt.wait_until(lambda: len(where(d)) == 4, 10, "4 queues polled")
    w = where(d)
    vt.check(w[("a", 0)] == w[("c", 0)], "a and c apart at start: %s" % w)
    streams = [Stream(g["a"], g["b"]), Stream(g["c"], g["e"], C, E)]
    moved = run_while(streams, 30,
                      lambda: "auto-rebalance" in d.log() and
                      where(d)[("a", 0)] != where(d)[("c", 0)])
    vt.check(moved, "auto-rebalance did not split a and c: %s, %s" % (
        where(d), d.ctl("lcores")))
    print([l for l in d.log().splitlines() if "auto-rebalance" in l])
    run_while(streams, 1)
    for st in streams:
        st.drain()
        print("%s -> %s: %d frames" % (st.src, st.dst, st.got))
    for n in g:
        g[n].close()
    d.stop_clean(base)


if __name__ == "__main__":
    vt.run(test_rxq_sched)
