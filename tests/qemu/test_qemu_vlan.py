#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Two real QEMU guests on one learning bridge, each with an 802.1Q
sub-interface in VLAN 10 (10.10.0.x/24) and one in VLAN 20 (10.20.0.x/24),
nothing on the untagged eth0: they ping each other over both VLANs, and a
capture of vm1's port (both ways) shows every frame of it tagged with its
VLAN's id on the wire: requests and replies, ARP too, none untagged.

vhostd has no VLAN support yet and forwards tagged frames like any other.
The layout is a table (MEMBERS: which guest is in which VLAN) and
vids_seen() tells which VLANs reached a port, so that VLAN isolation can be
tested here: e.g. a guest in VLAN 10 only, and VID 20 never sent to its
port (vhostd's capture, or the guests' ping failing where untagged ports
get a VLAN from vhostd)."""
import os
import signal
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)
import pcapng  # noqa: E402
from vhdtest import VHOSTCTL, check, run, wait_until  # noqa: E402
import guest  # noqa: E402
from qtest import boot, bridge_vhostd, ping  # noqa: E402

MAC = {1: "52:54:00:00:0a:01", 2: "52:54:00:00:0a:02"}
SUBNET = {10: "10.10.0.", 20: "10.20.0."}       # VLAN id -> /24
MEMBERS = {1: (10, 20), 2: (10, 20)}             # guest -> its VLANs
COUNT = 5


def ip(i, vid):
    return SUBNET[vid] + str(i)


def vlan_of(data):
    """(VID or None if untagged, inner EtherType, L3 payload) of a frame."""
    etype, = struct.unpack("!H", data[12:14])
    if etype == 0x8100:
        tci, inner = struct.unpack("!HH", data[14:18])
        return tci & 0xFFF, inner, data[18:]
    return None, etype, data[14:]


def addrs_of(inner, l3):
    """The IPv4 addresses an IPv4 packet or an ARP message is about."""
    if inner == 0x0800 and len(l3) >= 20:
        return {".".join(map(str, l3[12:16])), ".".join(map(str, l3[16:20]))}
    if inner == 0x0806 and len(l3) >= 28:
        return {".".join(map(str, l3[14:18])), ".".join(map(str, l3[24:28]))}
    return set()


def vids_seen(cap):
    """{(direction, VID or None): frames} of a pcapng capture ('in': the
    guest sent it, 'out': vhostd gave it to the guest)."""
    seen = {}
    for p in cap.packets:
        k = (p.direction, vlan_of(p.data)[0])
        seen[k] = seen.get(k, 0) + 1
    return seen


def icmp_echoes(cap, vid, src, dst, typ):
    """Frames in CAP tagged VID carrying ICMP echo TYP (8 request, 0 reply)
    from SRC to DST."""
    n = 0
    for p in cap.packets:
        v, inner, l3 = vlan_of(p.data)
        if (v == vid and inner == 0x0800 and len(l3) >= 21 and l3[9] == 1
                and ".".join(map(str, l3[12:16])) == src
                and ".".join(map(str, l3[16:20])) == dst
                and l3[(l3[0] & 0xF) * 4] == typ):
            n += 1
    return n


def capture_start(t, d, port):
    """vhostctl capture PORT (both ways) into a file until capture_stop()."""
    path = t.path("%s.pcapng" % port)
    proc = t.spawn([VHOSTCTL, "--socket", d.control, "capture", port, path],
                   t.path("capture-%s.log" % port))
    wait_until(lambda: os.path.exists(path) and os.path.getsize(path) > 0 or
               proc.poll() is not None, 10, "capture of %s started" % port)
    check(proc.poll() is None, "vhostctl capture exited: %s" %
          open(proc.log, errors="replace").read())
    return proc, path


def complete(path):
    """The capture's file, once vhostd has closed it (its Interface
    Statistics Block is written last)."""
    try:
        cap = pcapng.read(path)
    except ValueError:      # still being written
        return None
    return cap if cap.stats else None


def capture_stop(proc, path):
    proc.send_signal(signal.SIGINT)
    check(proc.wait(20) == 0, "vhostctl capture: exit %s: %s" % (
        proc.returncode, open(proc.log, errors="replace").read()))
    cap = wait_until(lambda: complete(path), 20, "%s complete" % path)
    check(cap.stats[0].get("ifdrop", 0) == 0,
          "capture dropped frames: %s" % cap.stats)
    return cap


def test_qemu_vlan(t):
    guest.ensure_image()
    t0 = time.monotonic()
    d = bridge_vhostd(t, {"vm%d" % i: "server" for i in MAC})
    g = {i: boot(t, "vm%d" % i, t.path("vm%d.sock" % i), "client", MAC[i],
                 None) for i in MAC}
    print("guests ready in %s s" % ", ".join("%.1f" % g[i].wait_ready(240)
                                             for i in MAC))
    d.wait_up(*("vm%d" % i for i in MAC))
    for i, vids in MEMBERS.items():
        for vid in vids:
            dev = g[i].add_vlan(vid, ip(i, vid) + "/24")
            print("vm%d: %s %s/24" % (i, dev, ip(i, vid)))

    proc, path = capture_start(t, d, "vm1")
    for vid in sorted(SUBNET):
        for a, b in ((1, 2), (2, 1)):
            tx, rx = ping(g[a], ip(b, vid), COUNT, "-i 0.2")
            check(tx == COUNT and rx == COUNT, "VLAN %d: vm%d -> vm%d lost "
                  "%d of %d" % (vid, a, b, tx - rx, tx))
    cap = capture_stop(proc, path)

    # On the wire (vm1's port): every frame tagged, with its VLAN's id.
    seen = vids_seen(cap)
    print("vm1's port, frames by (direction, VID): %s" % sorted(
        seen.items(), key=str))
    check(not any(v is None for _, v in seen),
          "untagged frames on vm1's port: %s" % seen)
    for p in cap.packets:
        v, inner, l3 = vlan_of(p.data)
        for a in addrs_of(inner, l3):
            check(a.startswith(SUBNET.get(v, "?")),
                  "%s frame about %s tagged %s" % (p.direction, a, v))
    for vid in sorted(SUBNET):
        for a, b in ((1, 2), (2, 1)):
            for typ, src, dst in ((8, a, b), (0, b, a)):
                n = icmp_echoes(cap, vid, ip(src, vid), ip(dst, vid), typ)
                check(n == COUNT, "VLAN %d, ping vm%d -> vm%d: %d echo %s "
                      "%s -> %s captured, wanted %d" % (
                          vid, a, b, n, "requests" if typ else "replies",
                          ip(src, vid), ip(dst, vid), COUNT))

    fdb = d.fdb("br0")
    check(fdb == {MAC[1]: "vm1", MAC[2]: "vm2"}, "fdb: %s" % fdb)
    for i in MAC:
        p = d.port("vm%d" % i)
        drops = {k: v for k, v in p.items() if k.startswith("drop") and v}
        check(not drops, "vm%d drops: %s" % (i, drops))
    print("VLAN part: %.1f s" % (time.monotonic() - t0))

    for i in MAC:
        g[i].kill()
    d.stop_clean(0)


if __name__ == "__main__":
    run(test_qemu_vlan)
