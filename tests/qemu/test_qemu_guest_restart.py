#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""A real QEMU guest crashes (SIGKILL) and boots again under traffic: three
guests on a learning bridge; vm1 pings vm2 and vm3 every 0.1 s throughout.
vm1 <-> vm2 lose nothing, vm3 answers again on the same port after its
reboot, and vhostd's mbufs in use return to their baseline."""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)
from vhdtest import check, run, wait_until  # noqa: E402
import guest  # noqa: E402
from qtest import (PingState, bg_ping, bg_ping_stop, boot,  # noqa: E402
                   bridge_vhostd, summary_counts)

MAC = {1: "52:54:00:00:04:01", 2: "52:54:00:00:04:02", 3: "52:54:00:00:04:03"}
IP = {i: "10.0.4.%d" % i for i in MAC}
INTERVAL = 0.1


def test_qemu_guest_restart(t):
    guest.ensure_image()
    d = bridge_vhostd(t, {"vm%d" % i: "server" for i in MAC})
    m_start = d.mbufs_in_use()
    g = {i: boot(t, "vm%d" % i, t.path("vm%d.sock" % i), "client", MAC[i],
                 IP[i] + "/24") for i in MAC}
    print("guests ready in %s s" % ", ".join("%.1f" % g[i].wait_ready(240)
                                             for i in MAC))
    d.wait_up("vm1", "vm2", "vm3")
    m_idle = d.mbufs_in_use()
    print("mbufs in use: %d before the guests, %d with them up and idle" %
          (m_start, m_idle))

    # vm1 pings vm2 (must lose nothing) and vm3 (the guest that restarts)
    bg_ping(g[1], IP[2], INTERVAL, "p2")
    bg_ping(g[1], IP[3], INTERVAL, "p3")
    wait_until(lambda: PingState(g[1], "p3").recv >= 20, 60,
               "vm3 answering")
    st3 = PingState(g[1], "p3")

    # vm3 crashes under traffic and boots again
    g[3].kill()
    wait_until(lambda: d.port("vm3")["state"] == "down", 30, "vm3 down")
    t0 = time.monotonic()
    g[3] = boot(t, "vm3b", t.path("vm3.sock"), "client", MAC[3],
                IP[3] + "/24")
    print("vm3 booted again in %.1fs" % g[3].wait_ready(240))
    d.wait_up("vm3")
    wait_until(lambda: PingState(g[1], "p3").last > st3.last + 20, 60,
               "the new vm3 answering vm1")
    print("vm3 answered again %.1fs after the new QEMU started" %
          (time.monotonic() - t0))

    s2, sum2 = bg_ping_stop(g[1], "p2")
    s3, sum3 = bg_ping_stop(g[1], "p3")
    print("vm1 -> vm2 (throughout): %s" % sum2)
    print("vm1 -> vm3 (restarted): %s; holes %s" % (sum3, s3.gaps))
    tx, rx = summary_counts(sum2)
    # ping stopped by SIGINT: the last request may still be in flight
    check(not s2.gaps and rx >= tx - 1 and s2.recv == rx and rx > 50,
          "vm1 -> vm2 lost pings: %s, holes %s" % (sum2, s2.gaps))
    p3 = d.port("vm3")
    print("port vm3: %s" % p3)
    check(p3["connects"] == 2, "vm3 connects: %d" % p3["connects"])
    fdb = d.fdb("br0")
    check(fdb == {MAC[i]: "vm%d" % i for i in MAC}, "fdb %s" % fdb)
    for n in ("vm1", "vm2"):
        p = d.port(n)
        drops = {k: v for k, v in p.items() if k.startswith("drop") and v}
        check(not drops, "%s drops: %s" % (n, drops))

    # the guests are idle again: every mbuf is back
    m_end = wait_until(lambda: [m for m in [d.mbufs_in_use()]
                                if m <= m_idle], 30,
                       "mbufs_in_use back to %d (now %d)" %
                       (m_idle, d.mbufs_in_use()))[0]
    print("mbufs in use at the end: %d (baseline %d)" % (m_end, m_idle))

    for i in MAC:
        g[i].kill()
    d.stop_clean(m_start)


if __name__ == "__main__":
    run(test_qemu_guest_restart)
