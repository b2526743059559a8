#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Live migration of a real QEMU guest between two vhostd ports: guest A
runs on port m1, a second QEMU waits with -incoming on port m2 (one guest per
port), guest B (port pb) pings A every 0.1 s. A migrates to m2; the ping
goes on across the switchover (loss reported) and vhostd's FDB has A's MAC
on m2 afterwards (QEMU announces the guest: VHOST_USER_SEND_RARP, on which
librte_vhost injects a RARP from A's MAC)."""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)
from vhdtest import check, run, wait_until  # noqa: E402
import guest  # noqa: E402
from qtest import (PingState, bg_ping, bg_ping_stop, boot,  # noqa: E402
                   bridge_vhostd, ping)

MAC_A, MAC_B = "52:54:00:00:06:0a", "52:54:00:00:06:0b"
IP_A, IP_B = "10.0.6.1", "10.0.6.2"
INTERVAL = 0.1


def test_qemu_migrate(t):
    kernel, initrd = guest.ensure_image()
    d = bridge_vhostd(t, {p: "server" for p in ("m1", "m2", "pb")})
    a = boot(t, "vmA", t.path("m1.sock"), "client", MAC_A, IP_A + "/24")
    b = boot(t, "vmB", t.path("pb.sock"), "client", MAC_B, IP_B + "/24")
    print("guests ready in %.1fs / %.1fs" % (a.wait_ready(240),
                                             b.wait_ready(240)))
    d.wait_up("m1", "pb")
    tx, rx = ping(b, IP_A, 3)
    check(rx == tx, "B -> A before migration: lost %d of %d" % (tx - rx, tx))
    fdb = d.fdb("br0")
    check(fdb.get(MAC_A) == "m1", "fdb before migration: %s" % fdb)

    # the destination: same guest config, on port m2, waiting for the state
    uri = "unix:" + t.path("mig.sock")
    a2 = boot(t, "vmA2", t.path("m2.sock"), "client", MAC_A, IP_A + "/24",
              incoming=uri)
    # QEMU connects to m2 before it listens for the migration stream, but
    # starts the device (m2 up) only when the VM runs there
    a2.wait_incoming(120)

    bg_ping(b, IP_A, INTERVAL)
    wait_until(lambda: PingState(b).recv >= 20, 60, "B's pings answered")
    t0 = time.monotonic()
    st = a.migrate(uri, timeout=300)
    t_mig = time.monotonic() - t0
    a2.wait_running(60)
    d.wait_up("m2")
    print("migration: %.1fs, QEMU says downtime %s ms, total %s ms, "
          "%.0f MB sent" % (t_mig, st.get("downtime"), st.get("total-time"),
                            st.get("ram", {}).get("transferred", 0) / 1e6))
    at_switch = PingState(b)
    # the announce (librte_vhost's RARP on VHOST_USER_SEND_RARP) moves A
    wait_until(lambda: d.fdb("br0").get(MAC_A) == "m2", 30,
               "A's MAC learned on m2")
    t_fdb = time.monotonic() - t0
    a.kill()          # the source has handed over: it goes away
    wait_until(lambda: PingState(b).last > at_switch.last + 20, 60,
               "B's pings answered by the migrated A")
    s, summary = bg_ping_stop(b)
    print("B -> A ping -i %s across the migration: %s" % (INTERVAL, summary))
    print("MIGRATION: %d pings lost %s (= %.1fs), max round trip %.2fs; "
          "FDB moved to m2 <= %.1fs after migrate started" %
          (s.lost, s.gaps, s.lost * INTERVAL, s.max_rtt, t_fdb))

    rc, out = a2.run("ip -o -4 addr show eth0", 30)
    check(IP_A in out, "the migrated guest's shell: %r" % out)
    fdb = d.fdb("br0")
    print("fdb after migration: %s" % fdb)
    check(fdb == {MAC_A: "m2", MAC_B: "pb"}, "fdb after migration: %s" % fdb)
    m2 = d.port("m2")
    check(m2["rx_packets"] >= 20 and m2["tx_packets"] >= 20,
          "port m2 carried no traffic: %s" % m2)
    check(s.lost * INTERVAL < 10, "ping lost more than 10s of traffic")
    tx, rx = ping(b, IP_A, 5, "-i 0.2")
    check(rx == tx, "B -> migrated A: lost %d of %d" % (tx - rx, tx))

    a2.kill()
    b.kill()
    d.stop_clean(0)


if __name__ == "__main__":
    run(test_qemu_migrate)
