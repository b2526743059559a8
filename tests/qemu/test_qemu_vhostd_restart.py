#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""vhostd restart under traffic, with real QEMU guests: vhostd's ports are
vhost-user clients (QEMU listens, server=on,wait=off). vm1 pings vm2 every
0.1 s; vhostd is SIGKILLed and started again with the same config. Both
ports reconnect and the ping resumes without restarting QEMU; the outage is
measured from the holes in the ping's sequence numbers."""
import os
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)
from vhdtest import check, run, wait_until  # noqa: E402
import guest  # noqa: E402
from qtest import (PingState, bg_ping, bg_ping_stop, boot,  # noqa: E402
                   bridge_vhostd)

MAC1, MAC2 = "52:54:00:00:03:01", "52:54:00:00:03:02"
INTERVAL = 0.1


def test_qemu_vhostd_restart(t):
    guest.ensure_image()
    d = bridge_vhostd(t, {"vm1": "client", "vm2": "client"})
    g1 = boot(t, "vm1", t.path("vm1.sock"), "server", MAC1, "10.0.3.1/24")
    g2 = boot(t, "vm2", t.path("vm2.sock"), "server", MAC2, "10.0.3.2/24")
    print("guests ready in %.1fs / %.1fs" % (g1.wait_ready(240),
                                             g2.wait_ready(240)))
    d.wait_up("vm1", "vm2")
    qemu_pids = (g1.proc.pid, g2.proc.pid)

    bg_ping(g1, "10.0.3.2", INTERVAL)
    wait_until(lambda: PingState(g1).recv >= 20, 60, "20 ping replies")

    # vhostd dies and comes back; QEMU (the socket server) stays
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait()
    t_kill = time.monotonic()
    before = PingState(g1)
    d.start()
    t_started = time.monotonic()
    d.wait_up("vm1", "vm2")
    t_up = time.monotonic()
    wait_until(lambda: PingState(g1).recv >= before.recv + 20, 120,
               "20 ping replies after the vhostd restart")
    t_flow = time.monotonic()
    st, summary = bg_ping_stop(g1)
    print("vm1 -> vm2 ping -i %s: %s" % (INTERVAL, summary))
    print("host: vhostd restarted (ready) %.2fs after SIGKILL, ports up "
          "after %.2fs, new replies seen after <= %.2fs" %
          (t_started - t_kill, t_up - t_kill, t_flow - t_kill))
    # The outage is the longer of the holes in the answered seqs and the
    # largest round trip. With mergeable rx buffers, the requests vm1 sent
    # while vhostd was away waited in the vring and were answered late;
    # without them (not offered since librte_vhost overflows on them from a
    # hostile guest: docs/RELIABILITY.md, fault 11) the two or three sent
    # during the restart are lost. Holes elsewhere fail the test below.
    print("OUTAGE: %.2fs (%d pings lost %s, max round trip %.2fs)" %
          (max(st.lost * INTERVAL, st.max_rtt), st.lost, st.gaps,
           st.max_rtt))
    rc, out = g1.run("cat /sys/class/net/eth0/carrier_changes", 30)
    print("vm1's eth0 carrier changes (link down/up seen by the guest): %s"
          % out.strip())
    check(g1.alive() and g2.alive() and
          (g1.proc.pid, g2.proc.pid) == qemu_pids, "QEMU restarted")
    check(st.recv >= before.recv + 20, "ping did not resume")
    check(all(before.last - 20 <= a <= before.last + 20 for a, _ in st.gaps),
          "pings lost away from the restart (last answered before "
          "SIGKILL: %d): %s" % (before.last, st.gaps))
    check(st.lost * INTERVAL < 30, "outage too long")
    for n in ("vm1", "vm2"):
        p = d.port(n)
        check(p["connects"] == 1 and p["rx_packets"] > 0 and
              p["tx_packets"] > 0, "port %s after restart: %s" % (n, p))
    fdb = d.fdb("br0")
    check(fdb.get(MAC1) == "vm1" and fdb.get(MAC2) == "vm2", "fdb %s" % fdb)

    d.stop_clean(0)
    g1.kill()
    g2.kill()


if __name__ == "__main__":
    run(test_qemu_vhostd_restart)
