#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""A real QEMU guest behind a vIOMMU (q35, intel-iommu with device-iotlb,
the NIC with iommu_platform and ATS, DMA remapping on in the guest) on a
port with iommu-support = yes, and an ordinary guest on a port without
it, on one bridge. VIRTIO_F_ACCESS_PLATFORM is negotiated on the first
port only, the guest really translates its NIC's DMA, and frames cross
both ways: vhostd translates every ring and buffer address through the
IOTLB that QEMU gives it (misses asked for on the backend channel,
invalidations applied).

What is checked per ping burst, at vhostd's ports: every request that
left a guest reached vhostd whole; each was delivered or dropped at the
destination; every delivered one was answered (the guest really got it:
a frame written through a stale translation would vanish); the same for
the replies; and ping saw exactly the replies vhostd delivered.

Known limit (ZERO_LOSS below): librte_vhost 22.11 drops a frame whose
guest rx buffer (or ring) has no IOTLB entry yet: it sends the miss and
the enqueue takes nothing; vhostd counts the frame in drop_tx_full and
does not retry. A Linux guest with DMA remapping maps every buffer anew
and invalidates its whole device IOTLB about every 10 ms (lazy flush), so
a good share of the frames into it are lost. Until vhostd holds frames
across a miss, such drops are allowed on the vIOMMU guest's port only,
each accounted for; every other drop counter must stay 0.

Then a vIOMMU guest on a port without iommu-support: QEMU refuses the
device (the backend does not offer VIRTIO_F_IOMMU_PLATFORM) and exits."""
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)
from vhdtest import check, run, wait_until  # noqa: E402
import guest  # noqa: E402
from qtest import (boot, bridge_vhostd, ping)  # noqa: E402

MAC1, MAC2, MAC3 = "52:54:00:00:0a:01", "52:54:00:00:0a:02", "52:54:00:00:0a:03"
IP1, IP2, IP3 = "10.0.10.1", "10.0.10.2", "10.0.10.3"
ACCESS_PLATFORM = 33          # VIRTIO_F_ACCESS_PLATFORM (IOMMU_PLATFORM)
# True once vhostd no longer drops a frame on an IOTLB miss (see above)
ZERO_LOSS = False


def qemu_stderr(g):
    with open(g.stderr_log, errors="replace") as f:
        return f.read()


def guest_dmar(g):
    """G's kernel translates its NIC's DMA through the vIOMMU and its
    driver accepted VIRTIO_F_ACCESS_PLATFORM."""
    rc, out = g.run("dmesg | grep -e 'DMAR: IOMMU enabled' -e 'iommu: Default';"
                    " d=$(readlink -f /sys/class/net/eth0/device/..);"
                    " echo group=$(readlink $d/iommu_group);"
                    " echo type=$(cat $d/iommu_group/type);"
                    " echo iommus=$(ls /sys/class/iommu);"
                    " echo features=$(cat /sys/class/net/eth0/device/features)",
                    30)
    print("%s:\n%s" % (g.name, out.rstrip()))
    check("DMAR: IOMMU enabled" in out, "%s: no 'DMAR: IOMMU enabled' in "
          "dmesg:\n%s" % (g.name, out))
    check(re.search(r"^group=\S*iommu_groups/\d+$", out, re.M),
          "%s: its NIC is in no IOMMU group:\n%s" % (g.name, out))
    # DMA or DMA-FQ: translated (identity would be passthrough)
    m = re.search(r"^type=(\S+)$", out, re.M)
    check(m and m.group(1).startswith("DMA"),
          "%s: its NIC's IOMMU domain does not translate:\n%s" % (g.name, out))
    check(re.search(r"^iommus=\S", out, re.M),
          "%s: no /sys/class/iommu entry:\n%s" % (g.name, out))
    m = re.search(r"^features=([01]+)$", out, re.M)
    check(m and len(m.group(1)) > ACCESS_PLATFORM and
          m.group(1)[ACCESS_PLATFORM] == "1",
          "%s: driver did not accept ACCESS_PLATFORM:\n%s" % (g.name, out))


def burst(d, src, dst, sp, dp, ip, n, interval, size, lossy):
    """N pings of SIZE bytes from SRC (port SP) to DST's IP (port DP),
    accounted at vhostd's ports (see the module's doc). LOSSY: the ports
    on which drop_tx_full may count frames. Returns replies received."""
    frame = size + 8 + 20 + 14
    keys = ("rx_packets", "rx_bytes", "tx_packets", "tx_bytes",
            "drop_tx_full")
    a = {p: d.port(p) for p in (sp, dp)}
    tx, rx = ping(src, ip, n, "-i %s -s %d" % (interval, size))
    time.sleep(0.2)
    b = {p: d.port(p) for p in (sp, dp)}
    dl = {p: {k: b[p][k] - a[p][k] for k in keys} for p in (sp, dp)}
    s, t = dl[sp], dl[dp]
    print("  %s: %s\n  %s: %s" % (sp, s, dp, t))
    what = "%s -> %s -s %d x %d: %s" % (src.name, dst.name, size, n, dl)
    check(tx == n, "%s: ping sent %d" % (what, tx))
    # requests: all into vhostd, each out to DP or dropped there
    check(s["rx_packets"] == n and s["rx_bytes"] == n * frame,
          "requests into vhostd: %s" % what)
    check(t["tx_packets"] + t["drop_tx_full"] == n and
          t["tx_bytes"] == t["tx_packets"] * frame,
          "requests not all delivered or dropped: %s" % what)
    # every request delivered was answered: DST really got it
    check(t["rx_packets"] == t["tx_packets"] and
          t["rx_bytes"] == t["tx_packets"] * frame,
          "requests delivered but not answered: %s" % what)
    check(s["tx_packets"] + s["drop_tx_full"] == t["rx_packets"] and
          s["tx_bytes"] == s["tx_packets"] * frame,
          "replies not all delivered or dropped: %s" % what)
    # every reply delivered reached ping
    check(rx == s["tx_packets"], "ping got %d replies, vhostd delivered %d: "
          "%s" % (rx, s["tx_packets"], what))
    for p in (sp, dp):
        check(p in lossy or dl[p]["drop_tx_full"] == 0,
              "frames dropped into %s: %s" % (p, what))
    check(not ZERO_LOSS or rx == n, "lost %d of %d: %s" % (n - rx, n, what))
    return rx


def no_drops(d, port, allowed=()):
    p = d.port(port)
    drops = {k: v for k, v in p.items()
             if k.startswith("drop") and v and k not in allowed}
    check(not drops, "%s drops: %s" % (port, drops))
    return p


def test_qemu_iommu(t):
    guest.ensure_image()
    t0 = time.monotonic()
    d = bridge_vhostd(t, {"vm1": "server", "vm2": "server", "vm3": "server"},
                      opts_of={"vm1": {"iommu-support": "yes"}},
                      **{"mac-aging": 300})
    g1 = boot(t, "vm1", t.path("vm1.sock"), "client", MAC1, IP1 + "/24",
              iommu=True)
    g2 = boot(t, "vm2", t.path("vm2.sock"), "client", MAC2, IP2 + "/24")
    print("guests ready in %.1fs / %.1fs" % (g1.wait_ready(240),
                                             g2.wait_ready(240)))
    d.wait_up("vm1", "vm2")
    s1, s2 = d.ctl("port/show", "vm1"), d.ctl("port/show", "vm2")
    print("vm1 features: %s\nvm2 features: %s" % (s1["features"],
                                                  s2["features"]))
    check(s1["iommu_support"] is True and s2["iommu_support"] is False,
          "iommu_support in port show: %s / %s" % (s1["iommu_support"],
                                                   s2["iommu_support"]))
    check("VIRTIO_F_ACCESS_PLATFORM" in s1["features"],
          "vm1: ACCESS_PLATFORM not negotiated: %s" % s1["features"])
    check("VIRTIO_F_ACCESS_PLATFORM" not in s2["features"],
          "vm2: ACCESS_PLATFORM negotiated: %s" % s2["features"])
    guest_dmar(g1)

    # No ARP: an ARP reply lost into vm1 would stall the bursts.
    g1.run("arp -s %s %s" % (IP2, MAC2), 30, check=True)
    g2.run("arp -s %s %s" % (IP1, MAC1), 30, check=True)
    got = {}
    # vm1 first: the bridge learns vm1, then vm2 from its replies.
    for src, dst, sp, dp, ip in ((g1, g2, "vm1", "vm2", IP2),
                                 (g2, g1, "vm2", "vm1", IP1)):
        for size, n in ((56, 50), (1400, 50)):
            got[(sp, size)] = burst(d, src, dst, sp, dp, ip, n, 0.002, size,
                                    lossy=("vm1",))
    print("replies received: %s (of 50 each)" % got)
    for (sp, size), rx in got.items():
        check(rx > 0, "%s: no reply of %d bytes got through" % (sp, size))
    p1 = no_drops(d, "vm1", allowed=("drop_tx_full",))
    no_drops(d, "vm2")
    print("vm1 drop_tx_full (IOTLB misses): %d" % p1["drop_tx_full"])
    # an IOTLB invalidate of vm1's rings did not disable its rx queue
    check(p1["enabled_rxq_mask"] == 1, "vm1 rx queue: %s" % p1)
    print("traffic done at %.1fs" % (time.monotonic() - t0))

    # a vIOMMU guest on a port without iommu-support
    g3 = boot(t, "vm3", t.path("vm3.sock"), "client", MAC3, IP3 + "/24",
              iommu=True)
    wait_until(lambda: not g3.alive(), 30, "vm3: QEMU to refuse the device")
    err = qemu_stderr(g3).strip()
    print("vm3: QEMU exit %s: %s" % (g3.proc.returncode, err))
    check(g3.proc.returncode != 0 and "iommu_platform" in err,
          "vm3: QEMU did not refuse the device: %s" % err)
    g3.kill()

    g1.kill()
    g2.kill()
    log = d.log()
    for l in log.splitlines():
        if re.search(r"IOTLB|backend channel|rejected", l):
            print("vhostd: %s" % l)
    check(not re.search(r"backend channel|IOTLB miss", log),
          "vhostd complained about the backend channel")
    check(d.mbufs_in_use() == 0 or wait_until(
        lambda: d.mbufs_in_use() == 0, 10, "mbufs freed"), "mbufs in use")
    d.stop_clean(0)
    print("total %.1fs" % (time.monotonic() - t0))


if __name__ == "__main__":
    run(test_qemu_iommu)
