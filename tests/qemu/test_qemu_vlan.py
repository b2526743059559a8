#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Two real QEMU guests with 802.1Q sub-interfaces on one learning bridge
whose ports have VLAN config (OVS's keys):
  vm1's port: vlan-mode = trunk, trunks = 10,20,30
              vm1 has eth0.10, eth0.20, eth0.30 (10.<vid>.0.1/24)
  vm2's port: vlan-mode = native-untagged, tag = 30, trunks = 10
              vm2 has eth0.10, eth0.20 and, untagged, eth0 (10.30.0.2/24)
They ping each other over VLAN 10 (tagged both sides) and VLAN 30 (tagged
at vm1, untagged at vm2: vhostd pushes and pops the tag), but not over
VLAN 20, which vm2's port does not carry: vm2's VLAN 20 frames are dropped
at its port (drop_vlan) and none of vm1's reach it. A capture of vm1's port
shows every frame tagged with its VLAN's id, a capture of vm2's port none
tagged 20 or 30."""
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
from qtest import boot, ping  # noqa: E402
from vhdtest import Vhostd  # noqa: E402

MAC = {1: "52:54:00:00:0a:01", 2: "52:54:00:00:0a:02"}
SUBNET = {10: "10.10.0.", 20: "10.20.0."}       # VLAN id -> /24
SUBNET[30] = "10.30.0."
# guest -> its VLAN sub-interfaces (vm2 is in VLAN 30 untagged, on eth0)
MEMBERS = {1: (10, 20, 30), 2: (10, 20)}
PORTS = {1: {"vlan-mode": "trunk", "trunks": "10,20,30"},
         2: {"vlan-mode": "native-untagged", "tag": "30", "trunks": "10"}}
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
    d = Vhostd(t, {"br0": {"mode": "learning"}}, {
        "vm%d" % i: dict({"type": "vhost-user", "bridge": "br0",
                          "mode": "server", "path": t.path("vm%d.sock" % i)},
                         **PORTS[i]) for i in MAC}).start()
    g = {i: boot(t, "vm%d" % i, t.path("vm%d.sock" % i), "client", MAC[i],
                 ip(2, 30) + "/24" if i == 2 else None) for i in MAC}
    print("guests ready in %s s" % ", ".join("%.1f" % g[i].wait_ready(240)
                                             for i in MAC))
    d.wait_up(*("vm%d" % i for i in MAC))
    for i, vids in MEMBERS.items():
        for vid in vids:
            dev = g[i].add_vlan(vid, ip(i, vid) + "/24")
            print("vm%d: %s %s/24" % (i, dev, ip(i, vid)))

    cap1 = capture_start(t, d, "vm1")
    cap2 = capture_start(t, d, "vm2")
    for vid in (10, 30):
        for a, b in ((1, 2), (2, 1)):
            tx, rx = ping(g[a], ip(b, vid), COUNT, "-i 0.2")
            check(tx == COUNT and rx == COUNT, "VLAN %d: vm%d -> vm%d lost "
                  "%d of %d" % (vid, a, b, tx - rx, tx))
    drops0 = d.port("vm2")["drop_vlan"]
    for a, b in ((1, 2), (2, 1)):
        tx, rx = ping(g[a], ip(b, 20), 3, "-i 0.2")
        check(tx >= 1 and rx == 0, "VLAN 20: vm%d -> vm%d got %d replies "
              "through a port that does not carry it" % (a, b, rx))
    # vm2's ARP requests for 10.20.0.1, tagged 20, dropped at its port.
    check(d.port("vm2")["drop_vlan"] > drops0, "vm2: no drop_vlan counted")
    cap = capture_stop(*cap1)
    cap_vm2 = capture_stop(*cap2)

    # On the wire at vm1's trunk: every frame tagged, with its VLAN's id.
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
    for vid in (10, 30):
        for a, b in ((1, 2), (2, 1)):
            for typ, src, dst in ((8, a, b), (0, b, a)):
                n = icmp_echoes(cap, vid, ip(src, vid), ip(dst, vid), typ)
                check(n == COUNT, "VLAN %d, ping vm%d -> vm%d: %d echo %s "
                      "%s -> %s captured, wanted %d" % (
                          vid, a, b, n, "requests" if typ else "replies",
                          ip(src, vid), ip(dst, vid), COUNT))
    check(icmp_echoes(cap, 20, ip(2, 20), ip(1, 20), 8) == 0,
          "vm2's VLAN 20 pings reached vm1")
    # At vm2's native-untagged port: VLAN 30 untagged, 10 tagged, and
    # nothing of VLAN 20 given to it ('out').
    seen2 = vids_seen(cap_vm2)
    print("vm2's port, frames by (direction, VID): %s" % sorted(
        seen2.items(), key=str))
    check(not [k for k in seen2 if k[0] == "out" and k[1] not in (None, 10)],
          "vm2's port was given frames of VLANs it does not carry: %s" %
          seen2)
    for p in cap_vm2.packets:
        v, inner, l3 = vlan_of(p.data)
        for a in addrs_of(inner, l3):
            want = SUBNET[30] if v is None else SUBNET.get(v, "?")
            check(a.startswith(want), "vm2: %s frame about %s tagged %s" %
                  (p.direction, a, v))

    fdb = {(e["vlan"], e["mac"]): e["port"] for e in d.ctl("fdb/show")}
    check(fdb.get((10, MAC[1])) == "vm1" and fdb.get((10, MAC[2])) == "vm2"
          and fdb.get((30, MAC[1])) == "vm1" and
          fdb.get((30, MAC[2])) == "vm2" and
          not any(v == 20 and m == MAC[2] for v, m in fdb),
          "fdb: %s" % fdb)
    print("VLAN part: %.1f s" % (time.monotonic() - t0))

    for i in MAC:
        g[i].kill()
    d.stop_clean(0)


if __name__ == "__main__":
    run(test_qemu_vlan)
