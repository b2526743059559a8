#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Jumbo frames between two real QEMU guests with MTU 9000 (host_mtu=9000):
pings of 8000 and 8972 bytes of payload (8042- and 9014-byte frames, the
largest an MTU of 9000 allows) cross vhostd unfragmented. vhostd's mbufs
have 2 KiB of data room, so librte_vhost chains them; vhostd's byte
counters show whole jumbo frames and every mbuf comes back."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)
from vhdtest import check, run, wait_until  # noqa: E402
import guest  # noqa: E402
from qtest import (boot, bridge_vhostd, ping)  # noqa: E402

MAC1, MAC2 = "52:54:00:00:05:01", "52:54:00:00:05:02"
# IP fragments created + reassembly requests seen by a guest (/proc/net/snmp)
FRAG_COUNT = ("awk '/^Ip:/{n++; for(i=2;i<=NF;i++) if(n==1) k[i]=$i; "
              "else if(k[i]==\"FragCreates\"||k[i]==\"ReasmReqds\") s+=$i} "
              "END{print s+0}' /proc/net/snmp")


def test_qemu_jumbo(t):
    guest.ensure_image()
    d = bridge_vhostd(t, {"vm1": "server", "vm2": "server"},
                      port_opts={"mtu": 9000})
    g1 = boot(t, "vm1", t.path("vm1.sock"), "client", MAC1, "10.0.5.1/24",
              mtu=9000)
    g2 = boot(t, "vm2", t.path("vm2.sock"), "client", MAC2, "10.0.5.2/24",
              mtu=9000)
    print("guests ready in %.1fs / %.1fs" % (g1.wait_ready(240),
                                             g2.wait_ready(240)))
    d.wait_up("vm1", "vm2")
    for g in (g1, g2):
        rc, out = g.run("cat /sys/class/net/eth0/mtu", 30)
        check(out.strip() == "9000", "%s mtu %r" % (g.name, out))
    # resolve ARP first, so that the counted pings are all jumbo frames
    tx, rx = ping(g1, "10.0.5.2", 2)
    check(rx == tx, "small ping lost %d of %d" % (tx - rx, tx))

    # ICMP payload 8000 -> 8042-byte frames; 8972 -> 9014 (a full MTU)
    for size, n in ((8000, 10), (8972, 10)):
        frame = size + 8 + 20 + 14
        for src, dst, ip in ((g1, "vm2", "10.0.5.2"), (g2, "vm1", "10.0.5.1")):
            src_port = "vm1" if dst == "vm2" else "vm2"
            a, b = d.port(src_port), d.port(dst)
            tx, rx = ping(src, ip, n, "-i 0.2 -s %d" % size)
            check(tx == n and rx == n, "%s -> %s -s %d: lost %d of %d" %
                  (src.name, ip, size, tx - rx, tx))
            a2, b2 = d.port(src_port), d.port(dst)
            # requests: into vhostd from src_port, out to dst; replies back
            for what, x, y in (("%s rx" % src_port, a, a2),
                               ("%s tx" % dst, b, b2)):
                k = "rx" if what.endswith("rx") else "tx"
                pk = y[k + "_packets"] - x[k + "_packets"]
                by = y[k + "_bytes"] - x[k + "_bytes"]
                print("  %s: %d frames, %d bytes (%.0f per frame)" %
                      (what, pk, by, by / max(pk, 1)))
                check(pk >= n and by >= n * frame and
                      by <= pk * frame,
                      "%s: %d frames / %d bytes, want %d of %d bytes" %
                      (what, pk, by, n, frame))
    # the datagrams crossed whole: no guest fragmented or reassembled
    for g in (g1, g2):
        rc, out = g.run(FRAG_COUNT, 30)
        check(rc == 0 and out.strip() == "0", "%s fragmented: %r" %
              (g.name, out))
    for n in ("vm1", "vm2"):
        p = d.port(n)
        drops = {k: v for k, v in p.items() if k.startswith("drop") and v}
        check(not drops, "%s drops: %s" % (n, drops))
    check(d.mbufs_in_use() == 0 or wait_until(
        lambda: d.mbufs_in_use() == 0, 10, "chained mbufs freed"),
        "mbufs in use")

    g1.kill()
    g2.kill()
    d.stop_clean(0)


if __name__ == "__main__":
    run(test_qemu_jumbo)
