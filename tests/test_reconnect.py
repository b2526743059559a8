#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""A guest that disappears under traffic (SIGKILL or a clean stop) and comes
back: vhostd keeps running, counts the frames it could not deliver, serves
the guest again, and every mbuf comes back to the pool."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from vhdtest import Guest, Vhostd, check, run, wait_until  # noqa: E402

V = "02:00:00:00:0e:0e"


def test_reconnect(t):
    vh = lambda n: {"type": "vhost-user", "bridge": "br0",  # noqa: E731
                    "path": t.path(n + ".sock")}
    d = Vhostd(t, {"br0": {}}, {"gen": vh("gen"), "victim": vh("victim")},
               lcores=os.environ.get("VHD_LCORES", "1")).start()
    base = d.mbufs_in_use()
    gen = Guest(t, "gen", t.path("gen.sock"), mode="txonly", peer=V,
                mac="02:00:00:00:0a:0a").start()
    d.wait_up("gen")
    wait_until(lambda: d.port("victim")["drop_not_ready"] > 1000, 30,
               "frames for the absent guest counted as not-ready")
    for i, how in enumerate(("kill", "stop", "kill")):
        victim = Guest(t, "victim%d" % i, t.path("victim.sock"),
                       mode="rxonly", mac=V).start()
        d.wait_up("victim")
        before = d.port("victim")["tx_packets"]
        wait_until(lambda: d.port("victim")["tx_packets"] > before + 10000,
                   30, "traffic reaching the guest (round %d)" % i)
        victim.kill() if how == "kill" else victim.stop()
        wait_until(lambda: d.port("victim")["state"] == "down", 20,
                   "port down after %s" % how)
        check(d.proc.poll() is None, "vhostd died when the guest went")
    check(d.port("victim")["connects"] == 3, "connects: %s" % d.port("victim"))
    check(d.port("gen")["rx_packets"] > 30000, "generator traffic")
    gen.kill()
    wait_until(lambda: d.port("gen")["state"] == "down", 20, "gen down")
    d.stop_clean(base)


if __name__ == "__main__":
    run(test_reconnect)
