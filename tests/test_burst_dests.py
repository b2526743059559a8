#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""A learning bridge's bursts with many destinations (many flows in one
burst, as from a guest behind which many hosts talk, or the bench's
--flows traffic).

Ports a, b and c are Python guests (tests/lib/vhostuser.py), so a burst
is exactly what one avail index update carries. 32 MACs are learned
behind b, 8 behind c.
1. A burst of 32 frames from a to the 32 MACs behind b: b gets all 32,
   in order, byte for byte (vhostd hands such a burst to b whole).
2. A burst mixing, frame by frame, destinations behind b, behind c,
   unknown ones and a's own MAC: b and c each get theirs and every
   unknown one (flooded), in order; the ones for a's own MAC are dropped
   as drop_no_dest.
Counters match exactly, and every mbuf comes back.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
import vhdtest as vt  # noqa: E402
import vhostuser as vu  # noqa: E402

LCORES = os.environ.get("VHD_LCORES", "1")
A = "02:00:00:00:a0:01"


def macs(tag, n):
    return ["02:00:00:%02x:00:%02x" % (tag, i) for i in range(n)]


def test_burst_dests(t):
    names = ("a", "b", "c")
    d = vt.Vhostd(t, {"br0": {"mode": "learning"}}, {
        n: {"type": "vhost-user", "path": t.path(n + ".sock"),
            "bridge": "br0"} for n in names}, lcores=LCORES).start()
    g = {n: vu.Guest(t.path(n + ".sock")) for n in names}
    d.wait_up(*names)
    base = d.mbufs_in_use()
    behind_b, behind_c, unknown = macs(0xb, 32), macs(0xc, 8), macs(0xe, 4)
    got = {n: [] for n in names}

    def collect(want):
        """Poll every guest until each has WANT[n] frames; what came."""
        def enough():
            for n in names:
                got[n] += g[n].rxq.rx()
            return all(len(got[n]) >= want[n] for n in names)
        vt.wait_until(enough, 20, "frames: want %r" % want)
        out = {n: got[n][:] for n in names}
        for n in names:
            got[n].clear()
        return out

    # Learning: broadcasts from every MAC, one at a time.
    for n, ms in (("b", behind_b), ("c", behind_c), ("a", [A])):
        for m in ms:
            vt.check(g[n].txq.tx(vt.frame(vt.BCAST, m)), "%s's ring" % n)
    collect({"a": 40, "b": 9, "c": 33})
    vt.wait_until(lambda: len(d.fdb("br0")) == 41, 10, "41 MACs learned")
    fdb = d.fdb("br0")
    vt.check(all(fdb[m] == "b" for m in behind_b) and
             all(fdb[m] == "c" for m in behind_c) and fdb[A] == "a",
             "fdb: %r" % fdb)

    def burst(frames):
        """FRAMES from a, in one avail index update: one burst."""
        for f in frames:
            vt.check(g["a"].txq.tx_chain(f, now=False), "a's ring full")
        g["a"].txq.publish_held()

    def counters():
        return {n: d.port(n)["tx_packets"] for n in names}, \
            d.port("a")["drop_no_dest"], d.bridge("br0")["flooded"]

    # 1. 32 destinations, all behind b.
    tx0, _, _ = counters()
    one = [vt.frame(m, A, payload=b"one %02d" % i)
           for i, m in enumerate(behind_b)]
    burst(one)
    r = collect({"a": 0, "b": 32, "c": 0})
    vt.check(r["b"] == one, "b got %d frames, not the burst in order" %
             len(r["b"]))
    tx1, _, _ = counters()
    vt.check(tx1["b"] - tx0["b"] == 32 and tx1["c"] == tx0["c"] and
             tx1["a"] == tx0["a"], "tx counters %r -> %r" % (tx0, tx1))

    # 2. Destinations mixed frame by frame.
    kinds = [(behind_b, "b"), (behind_c, "c"), (unknown, None), ([A], "a")]
    dsts = [(kinds[i % 4][0][i % len(kinds[i % 4][0])], kinds[i % 4][1])
            for i in range(32)]
    mix = [vt.frame(m, A, payload=b"mix %02d" % i)
           for i, (m, _) in enumerate(dsts)]
    want_b = [f for f, (_, to) in zip(mix, dsts) if to in ("b", None)]
    want_c = [f for f, (_, to) in zip(mix, dsts) if to in ("c", None)]
    n_own = sum(1 for _, to in dsts if to == "a")
    n_unknown = sum(1 for _, to in dsts if to is None)
    tx0, nd0, fl0 = counters()
    burst(mix)
    r = collect({"a": 0, "b": len(want_b), "c": len(want_c)})
    vt.check(r["b"] == want_b and r["c"] == want_c and not r["a"],
             "mixed burst: b %d of %d, c %d of %d, a %d" % (
                 len(r["b"]), len(want_b), len(r["c"]), len(want_c),
                 len(r["a"])))
    vt.wait_until(lambda: counters()[1] - nd0 == n_own, 10,
                  "%d drop_no_dest" % n_own)
    tx1, _, fl1 = counters()
    vt.check(tx1["b"] - tx0["b"] == len(want_b) and
             tx1["c"] - tx0["c"] == len(want_c) and tx1["a"] == tx0["a"] and
             fl1 - fl0 == n_unknown,
             "counters %r -> %r, flooded %d -> %d" % (tx0, tx1, fl0, fl1))

    for n in names:
        g[n].close()
    d.stop_clean(base)


if __name__ == "__main__":
    vt.run(test_burst_dests)
