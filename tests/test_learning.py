#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Learning bridge: broadcast and unknown unicast flood to every other port
of the bridge (never back, never to another bridge), learned unicast goes to
one port only, frames arrive byte for byte, counters match exactly, a MAC
that moves is relearned, and runts are dropped and counted. Run with VHD_LCORES=0,1 it does all of
this with two datapath lcores.

Topology: bridge br0 = guests g1, g2, g3 (testpmd) + phy (af_packet on a
veth whose far end this test drives); bridge br1 = guest g4 alone.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from vhdtest import (BCAST, Guest, Vhostd, check, frame, run,  # noqa: E402
                     wait_until)

P = "02:00:00:00:00:01"
G3 = "02:00:00:00:03:03"
G4 = "02:00:00:00:04:04"
LCORES = os.environ.get("VHD_LCORES", "1")


def test_learning(t):
    phy = t.veth("%sa" % t.tag[:10], "%sb" % t.tag[:10])
    vh = lambda n, br="br0": {"type": "vhost-user", "bridge": br,  # noqa
                              "path": t.path(n + ".sock")}
    d = Vhostd(t, {"br0": {"mode": "learning"}, "br1": {}},
               {"g1": vh("g1"), "g2": vh("g2"), "g3": vh("g3"),
                "phy": {"type": "ethdev", "bridge": "br0",
                        "devargs": "net_af_packet_%s,iface=%s" % (
                            t.tag, phy.ifname[:-1] + "a")},
                "g4": vh("g4", "br1")},
               lcores=LCORES).start()
    base = d.mbufs_in_use()
    # One mbuf pool per NUMA node in use (this machine has one node): the
    # per-node counts add up to the total.
    info = d.query("/vhostd/info")
    check(info["mbuf_pool_nodes"] == [0] and
          sum(info["mbuf_pool_in_use"]) == info["mbufs_in_use"],
          "mbuf pools by node: %r" % info)

    g1 = Guest(t, "g1", t.path("g1.sock")).start()
    g2 = Guest(t, "g2", t.path("g2.sock")).start()
    # g4 is alone on br1: its broadcast has nowhere to go; its runt
    # (shorter than an Ethernet header) cannot be switched at all.
    g4 = Guest(t, "g4", t.path("g4.sock"),
               frames=[frame(BCAST, G4, size=100),
                       b"\x02\x00\x00\x00\x00\x09\x02\x00"]).start()
    d.wait_up("g1", "g2", "g4")
    wait_until(lambda: d.port("g4")["drop_no_dest"] == 1 and
               d.port("g4")["drop_invalid"] == 1, 20,
               "g4's broadcast dropped as no-destination, its runt as "
               "invalid")

    # 1. Broadcast from phy floods to g1 and g2 (g3 is not connected yet:
    #    counted as not-ready), not back to phy, not to br1.
    bc = frame(BCAST, P, size=60, payload=b"broadcast")
    phy.send([bc])
    wait_until(lambda: len(g1.received()) == 1 and len(g2.received()) == 1,
               20, "the broadcast at g1 and g2")
    check(g1.received() == [bc] and g2.received() == [bc],
          "broadcast not byte-identical")
    # 2. Unknown unicast floods the same way.
    uu = frame("02:00:00:00:99:99", P, size=1514, payload=b"unknown")
    phy.send([uu])
    wait_until(lambda: len(g1.received()) == 2 and len(g2.received()) == 2,
               20, "the unknown unicast at g1 and g2")
    check(g1.received()[1] == uu and g2.received()[1] == uu,
          "unknown unicast not byte-identical")
    check(d.port("g3")["drop_not_ready"] == 2,
          "frames to the unconnected g3 not counted as not-ready: %s" %
          d.port("g3"))

    # 3. g3 sends to P, which br0 learned on phy: only phy gets it.
    to_p = [frame(P, G3, size=64 + i, payload=b"to-phy-%d" % i)
            for i in range(3)]
    g3 = Guest(t, "g3", t.path("g3.sock"), frames=to_p).start()
    got = []
    wait_until(lambda: got.extend(phy.recv_all(0.05)) or len(got) >= 3, 20,
               "3 frames at phy")
    got += phy.recv_all(0.3)
    check(got == to_p, "phy got %d frames, not the 3 sent" % len(got))
    check(d.port("g1")["tx_packets"] == 2 and
          d.port("g2")["tx_packets"] == 2,
          "learned unicast flooded to g1/g2")
    fdb = d.fdb("br0")
    check(fdb.get(P) == "phy" and fdb.get(G3) == "g3",
          "fdb: %s" % fdb)
    check(G4 not in fdb and P not in d.fdb("br1"), "fdb leaked across bridges")

    # 4. phy answers g3: learned, so only g3 gets it.
    d.wait_up("g3")
    back = [frame(G3, P, size=200 + i) for i in range(5)]
    phy.send(back)
    wait_until(lambda: len(g3.received()) == 5, 20, "5 frames at g3")
    check(g3.received() == back, "g3's frames not byte-identical")
    check(len(g1.received()) == 2 and len(g2.received()) == 2,
          "learned unicast reached g1/g2")
    check(d.port("g1")["tx_packets"] == 2 and
          d.port("g2")["tx_packets"] == 2, "g1/g2 tx counters moved")

    # 5. Counters, exactly: phy received 1+1+5, sent 3 (bytes too).
    p = d.port("phy")
    check(p["rx_packets"] == 7 and
          p["rx_bytes"] == len(bc) + len(uu) + sum(map(len, back)),
          "phy rx: %s" % p)
    check(p["tx_packets"] == 3 and p["tx_bytes"] == sum(map(len, to_p)),
          "phy tx: %s" % p)
    check(d.port("g3")["rx_packets"] == 3 and
          d.port("g3")["tx_packets"] == 5, "g3: %s" % d.port("g3"))
    check(d.port("g4")["tx_packets"] == 0 and not g4.received(),
          "br1 got br0 frames")
    check(all(d.port(n)["drop_tx_full"] == 0 for n in ("g1", "g2", "g3")),
          "tx-full drops")

    # 6. G3's MAC shows up on phy: the entry moves; a frame to G3 from phy
    #    then has nowhere to go (never back out of its ingress port).
    phy.send([frame(BCAST, G3, size=64)])
    wait_until(lambda: d.fdb("br0").get(G3) == "phy", 20, "G3 moved to phy")
    check(d.bridge("br0")["moved"] == 1, "moved counter")
    phy.send([frame(G3, P, size=64)])
    wait_until(lambda: d.port("phy")["drop_no_dest"] == 1, 20,
               "frame for a MAC behind its own ingress port dropped")

    for g in (g1, g2, g3, g4):
        g.stop()
    d.stop_clean(base)


if __name__ == "__main__":
    run(test_learning)
