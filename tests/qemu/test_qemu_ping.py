#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Three real QEMU guests on one learning bridge: vm1 and vm2 ping each
other; vm3 is first reached by flooding (the ARP request reaches vm2 too),
then learned: the FDB has all three MACs on their ports, and unicast to vm3
no longer goes out of vm2's port (vhostd's per-port tx counters)."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)
from vhdtest import check, run  # noqa: E402
import guest  # noqa: E402
from qtest import (boot, bridge_vhostd, ping)  # noqa: E402

MAC = {1: "52:54:00:00:02:01", 2: "52:54:00:00:02:02", 3: "52:54:00:00:02:03"}
IP = {i: "10.0.2.%d" % i for i in MAC}


def delta(d, before):
    now = {p: d.port(p) for p in before}
    return {p: {k: now[p][k] - before[p][k] for k in ("rx_packets",
                                                       "tx_packets")}
            for p in before}


def counters(d):
    return {p: d.port(p) for p in ("vm1", "vm2", "vm3")}


def test_qemu_ping(t):
    guest.ensure_image()
    d = bridge_vhostd(t, {"vm%d" % i: "server" for i in MAC},
                      **{"mac-aging": 300})
    g = {i: boot(t, "vm%d" % i, t.path("vm%d.sock" % i), "client", MAC[i],
                 IP[i] + "/24") for i in MAC}
    print("guests ready in %s s" % ", ".join("%.1f" % g[i].wait_ready(240)
                                             for i in MAC))
    d.wait_up("vm1", "vm2", "vm3")
    fdb = d.fdb("br0")
    check(MAC[3] not in fdb, "vm3 learned before it sent anything: %s" % fdb)

    # 1. vm1 <-> vm2
    tx, rx = ping(g[1], IP[2], 10, "-i 0.2")
    check(tx == 10 and rx == 10, "vm1 -> vm2 lost %d of %d" % (tx - rx, tx))
    tx, rx = ping(g[2], IP[1], 10, "-i 0.2")
    check(tx == 10 and rx == 10, "vm2 -> vm1 lost %d of %d" % (tx - rx, tx))
    fdb = d.fdb("br0")
    check(fdb.get(MAC[1]) == "vm1" and fdb.get(MAC[2]) == "vm2",
          "fdb after vm1 <-> vm2: %s" % fdb)
    check(MAC[3] not in fdb, "vm3 learned without sending: %s" % fdb)

    # 2. vm1 -> vm3, first contact: the ARP request is flooded (vm2 gets it
    #    too), vm3's answer teaches the bridge where vm3 is.
    c0 = counters(d)
    tx, rx = ping(g[1], IP[3], 3, "-i 0.2")
    check(tx == 3 and rx == 3, "vm1 -> vm3 lost %d of %d" % (tx - rx, tx))
    dl = delta(d, c0)
    print("first contact vm1 -> vm3, vhostd deltas: %s" % dl)
    check(dl["vm2"]["tx_packets"] >= 1, "the ARP request was not flooded "
          "to vm2: %s" % dl)
    fdb = d.fdb("br0")
    print("fdb: %s" % fdb)
    check(fdb == {MAC[1]: "vm1", MAC[2]: "vm2", MAC[3]: "vm3"},
          "fdb after vm1 -> vm3: %s" % fdb)

    # 3. learned: unicast to vm3 reaches vm3 only
    c0 = counters(d)
    tx, rx = ping(g[1], IP[3], 20, "-i 0.1")
    check(tx == 20 and rx == 20, "vm1 -> vm3 lost %d of %d" % (tx - rx, tx))
    dl = delta(d, c0)
    print("learned vm1 -> vm3, vhostd deltas: %s" % dl)
    # vm2 may refresh its ARP entry for vm1 meanwhile (a unicast request
    # and its reply), but gets none of the 20 requests for vm3.
    check(dl["vm2"]["tx_packets"] <= dl["vm2"]["rx_packets"],
          "unicast to vm3 flooded to vm2: %s" % dl)
    check(dl["vm3"]["tx_packets"] >= 20 and dl["vm1"]["tx_packets"] >= 20 and
          dl["vm1"]["rx_packets"] >= 20 and dl["vm3"]["rx_packets"] >= 20,
          "counters do not show 20 requests and replies: %s" % dl)
    for i in MAC:
        p = d.port("vm%d" % i)
        drops = {k: v for k, v in p.items() if k.startswith("drop") and v}
        check(not drops, "vm%d drops: %s" % (i, drops))

    for i in MAC:
        g[i].kill()
    d.stop_clean(0)


if __name__ == "__main__":
    run(test_qemu_ping)
