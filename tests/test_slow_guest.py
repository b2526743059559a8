#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""A guest that stops reading its rx ring must not stall the others: vhostd
retries a bounded number of times, then drops and counts (drop_tx_full)
while the other guest keeps receiving at full rate; no mbuf is lost."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from vhdtest import BCAST, Guest, Vhostd, check, run, wait_until  # noqa: E402


def test_slow_guest(t):
    vh = lambda n: {"type": "vhost-user", "bridge": "br0",  # noqa: E731
                    "path": t.path(n + ".sock")}
    d = Vhostd(t, {"br0": {}}, {"gen": vh("gen"), "fast": vh("fast"),
                                "slow": vh("slow")},
               lcores=os.environ.get("VHD_LCORES", "1")).start()
    base = d.mbufs_in_use()
    slow = Guest(t, "slow", t.path("slow.sock"), mode="idle").start()
    fast = Guest(t, "fast", t.path("fast.sock"), mode="rxonly").start()
    d.wait_up("slow", "fast")
    # Broadcasts flood to both guests: the slow one's ring fills up.
    gen = Guest(t, "gen", t.path("gen.sock"), mode="txonly", peer=BCAST,
                mac="02:00:00:00:0a:0a").start()
    wait_until(lambda: d.port("slow")["drop_tx_full"] > 10000, 30,
               "drops counted at the slow guest")
    g0, f0 = d.port("gen")["rx_packets"], d.port("fast")["tx_packets"]
    time.sleep(2)  # a measurement window, not a wait for a condition
    g1, f1 = d.port("gen")["rx_packets"], d.port("fast")["tx_packets"]
    print("in 2 s: vhostd rx %d, fast guest got %d" % (g1 - g0, f1 - f0))
    check(g1 - g0 > 1000000, "the lcore stalled: %d frames in 2 s" % (g1 - g0))
    check(f1 > f0, "the fast guest got nothing")
    gen.kill()
    wait_until(lambda: d.port("gen")["state"] == "down", 20, "gen down")
    # Every frame is accounted for, at each guest: delivered or counted.
    g, f, s = d.port("gen"), d.port("fast"), d.port("slow")
    print(g, f, s, sep="\n")
    for p in (f, s):
        check(p["tx_packets"] + p["drop_tx_full"] + p["drop_not_ready"] ==
              g["rx_packets"], "frames unaccounted for: %s" % p)
    check(s["tx_packets"] <= 1024, "the idle guest took %d" % s["tx_packets"])
    slow.kill()
    fast.kill()
    d.stop_clean(base)


if __name__ == "__main__":
    run(test_slow_guest)
