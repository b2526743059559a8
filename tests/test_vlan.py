#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""VLANs with OVS's keys (vlan-mode, tag, trunks), exact frames out of
every port.

Guests (vhost-user frontends in this process) on one bridge:
  a10, b10  access, tag 10        a20  access, tag 20
  tr        trunk 10,20           nat  native-untagged, tag 10, trunks 20
  all       no VLAN keys: a trunk of every VLAN
Each step sends one frame and checks every other port: the frame arrives,
byte for byte, tagged or not as that port's mode says, at exactly the
ports in its VLAN; frames of a VLAN a port does not carry are counted
drop_vlan; the same MAC in two VLANs is two FDB entries. At the end every
mbuf is back.
"""
import os
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
import vhdtest as vt  # noqa: E402
import vhostuser as vu  # noqa: E402

PORTS = {
    "a10": {"tag": "10"},
    "b10": {"tag": "10", "vlan-mode": "access"},
    "a20": {"tag": "20"},
    "tr": {"vlan-mode": "trunk", "trunks": "10,20"},
    "nat": {"vlan-mode": "native-untagged", "tag": "10", "trunks": "20"},
    "all": {},
}
MAC = {n: "02:00:00:00:%02x:01" % i for i, n in enumerate(PORTS, 1)}
seq = [0]


def untagged(dst, src):
    seq[0] += 1
    return vt.frame(dst, src, 0x88B5, payload=b"vlan test %d" % seq[0])


def tag(f, vid):
    """F with an 802.1Q tag for VID (priority 0) after its MACs."""
    return f[:12] + struct.pack("!HH", 0x8100, vid) + f[12:]


def untag(f):
    return f[:12] + f[16:]


def exchange(g, d, src, f, want):
    """SRC's guest sends F; WANT maps each port that must get it to the
    exact bytes. Every other port gets nothing."""
    vt.check(g[src].txq.tx(f), "%s's tx ring full" % src)
    got = {n: [] for n in g if n != src}

    def arrived():
        for n in got:
            got[n] += g[n].rxq.rx()
        return all(got[n] for n in want)
    vt.wait_until(arrived, 10, "%r from %s at %s" % (f[:20], src,
                                                     sorted(want)))
    # Every port's copy is sent in the same lcore pass as the ones that
    # arrived: a short look for strays.
    end = time.monotonic() + 0.3
    while time.monotonic() < end:
        arrived()
    for n in got:
        exp = [want[n]] if n in want else []
        vt.check(got[n] == exp, "%s got %r, wanted %r" % (n, got[n], exp))


def drops(d, name):
    return d.port(name)["drop_vlan"]


def test_vlan(t):
    ports = {n: dict(type="vhost-user", path=t.path(n + ".sock"),
                     bridge="br0", **o) for n, o in PORTS.items()}
    d = vt.Vhostd(t, {"br0": {}}, ports).start()
    g = {n: vu.Guest(t.path(n + ".sock")) for n in PORTS}
    d.wait_up(*PORTS)
    base = d.mbufs_in_use()
    B = vt.BCAST

    # A broadcast from an access port stays in VLAN 10: untagged to the
    # other access port and to nat (VLAN 10 is its native VLAN), tagged to
    # the trunks; a20 never sees it.
    f = untagged(B, MAC["a10"])
    exchange(g, d, "a10", f, {"b10": f, "nat": f, "tr": tag(f, 10),
                              "all": tag(f, 10)})
    f = untagged(B, MAC["a20"])
    exchange(g, d, "a20", f, {"tr": tag(f, 20), "nat": tag(f, 20),
                              "all": tag(f, 20)})
    # Priority-tagged (VID 0) from an access port: in its VLAN, untagged.
    f = untagged(B, MAC["a10"])
    exchange(g, d, "a10", tag(f, 0), {"b10": f, "nat": f, "tr": tag(f, 10),
                                      "all": tag(f, 10)})
    # Untagged from the native port: VLAN 10.
    f = untagged(B, MAC["nat"])
    exchange(g, d, "nat", f, {"a10": f, "b10": f, "tr": tag(f, 10),
                              "all": tag(f, 10)})
    # Tagged 20 from the trunk: untagged at a20, tagged at nat and all.
    f = tag(untagged(B, MAC["tr"]), 20)
    exchange(g, d, "tr", f, {"a20": untag(f), "nat": f, "all": f})
    # Untagged on the default port: VLAN 0, which no other port carries.
    f = untagged(B, MAC["all"])
    exchange(g, d, "all", f, {})

    # Unicast, learned per VLAN: a10 -> a20's MAC is unknown in VLAN 10
    # (a20 is in 20) and floods VLAN 10 only.
    f = untagged(MAC["a20"], MAC["a10"])
    exchange(g, d, "a10", f, {"b10": f, "nat": f, "tr": tag(f, 10),
                              "all": tag(f, 10)})
    # tr -> a20 in VLAN 20: learned, to a20 alone, untagged.
    f = tag(untagged(MAC["a20"], MAC["tr"]), 20)
    exchange(g, d, "tr", f, {"a20": untag(f)})
    # a20 -> tr's MAC in VLAN 20: to tr alone, tagged.
    f = untagged(MAC["tr"], MAC["a20"])
    exchange(g, d, "a20", f, {"tr": tag(f, 20)})
    # nat -> b10 (learned in VLAN 10 above? b10 has not sent: floods).
    f = untagged(B, MAC["b10"])
    exchange(g, d, "b10", f, {"a10": f, "nat": f, "tr": tag(f, 10),
                              "all": tag(f, 10)})
    f = untagged(MAC["b10"], MAC["nat"])
    exchange(g, d, "nat", f, {"b10": f})

    # tr -> a10 in VLAN 10: to a10 alone, untagged.
    f = tag(untagged(MAC["a10"], MAC["tr"]), 10)
    exchange(g, d, "tr", f, {"a10": untag(f)})

    # The same MAC (tr's) in VLANs 10 and 20: two entries, both on tr.
    entries = [e for e in d.ctl("fdb/show", "br0") if e["mac"] == MAC["tr"]]
    vt.check(sorted((e["vlan"], e["port"]) for e in entries) ==
             [(10, "tr"), (20, "tr")], "tr's entries: %r" % entries)

    # Frames a port does not carry: dropped at the door, counted.
    before = {n: drops(d, n) for n in ("tr", "a10", "nat")}
    for src, f in (("tr", tag(untagged(B, MAC["tr"]), 30)),
                   ("tr", untagged(B, MAC["tr"])),        # VLAN 0
                   ("a10", tag(untagged(B, MAC["a10"]), 20)),
                   ("nat", tag(untagged(B, MAC["nat"]), 30))):
        exchange(g, d, src, f, {})
    vt.wait_until(lambda: drops(d, "tr") == before["tr"] + 2 and
                  drops(d, "a10") == before["a10"] + 1 and
                  drops(d, "nat") == before["nat"] + 1, 10,
                  "drop_vlan counted")

    # A static entry needs a VLAN the port carries.
    r = d.rpc("fdb/add", "br0", "02:00:00:00:99:01", "a10", "vlan=20")
    vt.check("error" in r and "does not carry VLAN 20" in
             r["error"]["message"], "fdb add in a foreign VLAN: %r" % r)
    for bad in ("vlan=4095", "vlan=x", "vlan=", "tag=20"):
        r = d.rpc("fdb/add", "br0", "02:00:00:00:99:01", "a20", bad)
        vt.check("error" in r and "expected vlan=N" in r["error"]["message"],
                 "fdb add ... %s: %r" % (bad, r))
    d.ctl("fdb/add", "br0", "02:00:00:00:99:01", "a20", "vlan=20")
    f = tag(untagged("02:00:00:00:99:01", MAC["tr"]), 20)
    exchange(g, d, "tr", f, {"a20": untag(f)})

    # port show: the VLAN keys as configured.
    for n, mode, tg, tr in (("a10", "access", 10, None),
                            ("tr", "trunk", None, "10,20"),
                            ("nat", "native-untagged", 10, "20"),
                            ("all", "trunk", None, "all")):
        ps = d.ctl("port/show", n)
        vt.check((ps["vlan_mode"], ps["tag"], ps["trunks"]) == (mode, tg, tr),
                 "port show %s: %r" % (n, (ps["vlan_mode"], ps["tag"],
                                          ps["trunks"])))

    # The saved config says the same.
    d.ctl("config/save", t.path("saved.conf"))
    saved = open(t.path("saved.conf")).read()
    for want in ("vlan-mode = access\ntag = 10\n",
                 "vlan-mode = trunk\ntrunks = 10,20\n",
                 "vlan-mode = native-untagged\ntag = 10\ntrunks = 20\n"):
        vt.check(want in saved, "saved config lacks %r:\n%s" % (want, saved))

    for x in g.values():
        x.close()
    d.stop_clean(base)


if __name__ == "__main__":
    vt.run(test_vlan)
