#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Real QEMU guests on both vhost-user socket roles: port "s" is a vhostd
server socket (QEMU connects, reconnect=1), port "c" a vhostd client socket
(QEMU listens, server=on,wait=off). The two guests ping each other across
the learning bridge."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)
from vhdtest import check, run  # noqa: E402
import guest  # noqa: E402
from qtest import (boot, bridge_vhostd, ping)  # noqa: E402

MAC_S, MAC_C = "52:54:00:00:01:01", "52:54:00:00:01:02"


def test_qemu_roles(t):
    guest.ensure_image()
    d = bridge_vhostd(t, {"s": "server", "c": "client"})
    gs = boot(t, "vms", t.path("s.sock"), "client", MAC_S, "10.0.1.1/24")
    gc = boot(t, "vmc", t.path("c.sock"), "server", MAC_C, "10.0.1.2/24")
    print("guests ready in %.1fs / %.1fs" % (gs.wait_ready(240),
                                             gc.wait_ready(240)))
    d.wait_up("s", "c")
    check(d.port("s")["mode"] == "server", "port s: %s" % d.port("s"))
    check(d.port("c")["mode"] == "client", "port c: %s" % d.port("c"))

    s0, c0 = d.port("s"), d.port("c")
    tx, rx = ping(gs, "10.0.1.2", 10, "-i 0.2")
    check(tx == 10 and rx == 10, "s -> c lost %d of %d" % (tx - rx, tx))
    tx, rx = ping(gc, "10.0.1.1", 10, "-i 0.2")
    check(tx == 10 and rx == 10, "c -> s lost %d of %d" % (tx - rx, tx))
    s1, c1 = d.port("s"), d.port("c")
    # 20 echo requests + 20 replies each way (+ ARP)
    for name, a, b in (("s", s0, s1), ("c", c0, c1)):
        for k in ("rx_packets", "tx_packets"):
            check(b[k] - a[k] >= 20, "port %s %s: %d -> %d" %
                  (name, k, a[k], b[k]))
    fdb = d.fdb("br0")
    check(fdb.get(MAC_S) == "s" and fdb.get(MAC_C) == "c", "fdb %s" % fdb)
    check(s1["connects"] == 1 and c1["connects"] == 1,
          "connects s=%d c=%d" % (s1["connects"], c1["connects"]))

    gs.kill()
    gc.kill()
    d.stop_clean(0)


if __name__ == "__main__":
    run(test_qemu_roles)
