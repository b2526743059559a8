#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""xconnect bridge: every frame from one port leaves on the other, both
ways, byte for byte, whatever its MACs (no lookup, no learning)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from vhdtest import (BCAST, Guest, Vhostd, check, frame, run,  # noqa: E402
                     wait_until)


def test_xconnect(t):
    phy = t.veth("%sa" % t.tag[:10], "%sb" % t.tag[:10])
    d = Vhostd(t, {"x": {"mode": "xconnect"}},
               {"vm": {"type": "vhost-user", "bridge": "x",
                       "path": t.path("vm.sock")},
                "phy": {"type": "ethdev", "bridge": "x",
                        "devargs": "net_af_packet_%s,iface=%s" % (
                            t.tag, phy.ifname[:-1] + "a")}}).start()
    base = d.mbufs_in_use()
    # The guest sends frames of every kind; it never "learns" anything.
    out = [frame(BCAST, "02:00:00:00:00:0a", size=64),
           frame("02:00:00:00:00:0b", "02:00:00:00:00:0a", size=1514),
           frame("01:00:5e:00:00:01", "02:00:00:00:00:0a", size=128),
           frame("02:00:00:00:00:0a", "02:00:00:00:00:0a", size=70)]
    g = Guest(t, "vm", t.path("vm.sock"), frames=out).start()
    got = []
    wait_until(lambda: got.extend(phy.recv_all(0.05)) or len(got) >= 4, 30,
               "4 frames at phy")
    got += phy.recv_all(0.3)
    check(got == out, "phy got %d frames, not the 4 sent byte for byte" %
          len(got))
    d.wait_up("vm")
    back = [frame("02:00:00:00:00:0a", "02:00:00:00:00:0b", size=60 + i * 97)
            for i in range(10)]
    phy.send(back)
    wait_until(lambda: len(g.received()) == 10, 20, "10 frames at the guest")
    check(g.received() == back, "guest frames differ")
    p, v = d.port("phy"), d.port("vm")
    check(v["rx_packets"] == 4 and p["tx_packets"] == 4 and
          p["tx_bytes"] == sum(map(len, out)), "vm->phy counts: %s %s" % (v, p))
    check(p["rx_packets"] == 10 and v["tx_packets"] == 10 and
          v["tx_bytes"] == sum(map(len, back)), "phy->vm counts: %s %s" % (p, v))
    check("fdb_entries" not in d.bridge("x"), "xconnect has an fdb")
    info = d.query("/vhostd/info")
    check(0 < info["busy_loops"] < info["loops"] and
          info["busy_cycles"] > 0 and info["idle_cycles"] > 0 and
          info["tsc_hz"] > 0, "lcore load counters: %s" % info)
    g.stop()
    d.stop_clean(base)


if __name__ == "__main__":
    run(test_xconnect)
