#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""MTU per port: frames longer than the egress port's MTU (plus 14 bytes
of Ethernet header, 18 if tagged) are dropped there and counted drop_mtu,
never counted as sent; shorter ones pass byte for byte.

g1 (vhost-user, mtu 9000) sends; g2 (vhost-user, default 1500), g3
(vhost-user, mtu 9000) and up1 (af_packet on a veth, default 1500: the
issue's uplink) receive. An 8000-byte frame from g1 is drop_mtu at g2 and
up1 (g3's guest posts 2048-byte buffers: it cannot take it either, and
says so as drop_tx_full); a 1600-byte one reaches g3 alone; 1400-byte
frames pass everywhere; a 1518-byte tagged frame (1500 bytes of payload)
passes a 1500-MTU port, a 1515-byte untagged one does not.
"""
import os
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
import vhdtest as vt  # noqa: E402
import vhostuser as vu  # noqa: E402

G1 = "02:00:00:00:71:01"


def test_mtu(t):
    v1 = t.veth("%sa" % t.tag[:10], "%sb" % t.tag[:10])
    d = vt.Vhostd(t, {"br0": {}}, {
        "g1": {"type": "vhost-user", "path": t.path("g1.sock"),
               "bridge": "br0", "mtu": "9000"},
        "g2": {"type": "vhost-user", "path": t.path("g2.sock"),
               "bridge": "br0"},
        "g3": {"type": "vhost-user", "path": t.path("g3.sock"),
               "bridge": "br0", "mtu": "9000"},
        "up1": {"type": "ethdev", "bridge": "br0",
                "devargs": "net_af_packet_%s1,iface=%s" % (
                    t.tag, v1.ifname[:-1] + "a")}}).start()
    g1 = vu.Guest(t.path("g1.sock"))
    g2 = vu.Guest(t.path("g2.sock"))
    g3 = vu.Guest(t.path("g3.sock"))
    d.wait_up("g1", "g2", "g3")
    base = d.mbufs_in_use()
    for n, want in (("g1", 9000), ("g2", 1500), ("g3", 9000),
                    ("up1", 1500)):
        vt.check(d.ctl("port/show", n)["mtu"] == want, "%s's mtu" % n)

    def send_and_see(f, at):
        """G1 broadcasts F; wait for it at every port in AT; what each
        far side got."""
        vt.check(g1.txq.tx_chain(f), "g1's ring full")
        got = {"g2": [], "g3": [], "up1": []}

        def poll():
            got["g2"] += g2.rxq.rx()
            got["g3"] += g3.rxq.rx()
            got["up1"] += v1.recv_all(0.01)
            return all(got[n] for n in at)
        if at:
            vt.wait_until(poll, 10, "%d bytes at %s" % (len(f), at))
        end = time.monotonic() + 0.3
        while time.monotonic() < end:
            poll()
        return got

    drops0 = {n: d.port(n)["drop_mtu"] for n in ("g2", "g3", "up1")}
    tx0 = {n: d.port(n)["tx_packets"] for n in ("g2", "g3", "up1")}

    big = vt.frame(vt.BCAST, G1, payload=b"8000 bytes", size=8000)
    got = send_and_see(big, [])
    vt.wait_until(lambda: d.port("g2")["drop_mtu"] == drops0["g2"] + 1 and
                  d.port("up1")["drop_mtu"] == drops0["up1"] + 1, 10,
                  "drop_mtu at g2 and up1")
    got = send_and_see(vt.frame(vt.BCAST, G1, size=60), ["g2", "g3", "up1"])
    vt.check([len(x) for x in got["g2"] + got["up1"]] == [60, 60],
             "only the 60-byte frame after the 8000-byte one: %r" %
             {n: [len(x) for x in v] for n, v in got.items()})
    vt.check(d.port("g3")["drop_mtu"] == drops0["g3"], "drop_mtu at g3")
    vt.check(d.port("up1")["tx_packets"] == tx0["up1"] + 1 and
             d.port("g2")["tx_packets"] == tx0["g2"] + 1,
             "a dropped frame was counted as sent")

    mid = vt.frame(vt.BCAST, G1, payload=b"1600 bytes", size=1600)
    got = send_and_see(mid, ["g3"])
    vt.check(got == {"g2": [], "g3": [mid], "up1": []},
             "1600 bytes: %r" % {n: [len(x) for x in v]
                                 for n, v in got.items()})
    ok = vt.frame(vt.BCAST, G1, payload=b"1400 bytes", size=1400)
    got = send_and_see(ok, ["g2", "g3", "up1"])
    vt.check(got == {"g2": [ok], "g3": [ok], "up1": [ok]},
             "1400 bytes: %r" % {n: [len(x) for x in v]
                                 for n, v in got.items()})
    # 1514 untagged and 1518 tagged: a full 1500-byte payload each.
    full = vt.frame(vt.BCAST, G1, payload=b"1514", size=1514)
    tagged = full[:12] + struct.pack("!HH", 0x8100, 7) + full[12:]
    for f in (full, tagged):
        got = send_and_see(f, ["g2", "g3", "up1"])
        # The veth's kernel side takes the tag off before the raw socket
        # sees the frame (it is in the packet's auxdata).
        vt.check(got == {"g2": [f], "g3": [f], "up1": [full]},
                 "%d bytes: %r" % (len(f), {n: [len(x) for x in v]
                                            for n, v in got.items()}))
    over = vt.frame(vt.BCAST, G1, payload=b"1515", size=1515)
    got = send_and_see(over, ["g3"])
    vt.check(got == {"g2": [], "g3": [over], "up1": []}, "1515 bytes")

    # A burst of broadcasts, long and short mixed, flooded to every port
    # at once: each port drops its own too-long ones and takes the rest.
    burst = [vt.frame(vt.BCAST, G1, payload=b"mix %d" % i,
                      size=1600 if i % 2 else 200) for i in range(16)]
    d0 = {n: d.port(n)["drop_mtu"] for n in ("g2", "up1")}
    for f in burst:     # one avail index update: vhostd takes one burst
        vt.check(g1.txq.tx_chain(f, now=False), "g1's ring full")
    g1.txq.publish_held()
    got = {"g2": [], "g3": [], "up1": []}

    def all_in():
        got["g2"] += g2.rxq.rx()
        got["g3"] += g3.rxq.rx()
        got["up1"] += v1.recv_all(0.01)
        return len(got["g3"]) >= 16 and len(got["g2"]) >= 8 and \
            len(got["up1"]) >= 8
    vt.wait_until(all_in, 10, "the mixed burst")
    short = [f for f in burst if len(f) == 200]
    vt.check(got["g3"] == burst and got["g2"] == short and
             got["up1"] == short, "mixed burst: %r" %
             {n: [len(x) for x in v] for n, v in got.items()})
    vt.check(d.port("g2")["drop_mtu"] == d0["g2"] + 8 and
             d.port("up1")["drop_mtu"] == d0["up1"] + 8, "drop_mtu of 8 each")

    # The ethdevs' own error counters are in port show.
    st = d.ctl("port/show", "up1")["stats"]
    vt.check("eth_oerrors" in st and st["eth_oerrors"] == 0, "up1: %r" % st)

    # A bad mtu: clear error, at run time too.
    r = d.rpc("port/add", "x", "bridge=br0", "type=vhost-user",
              "path=" + t.path("x.sock"), "mtu=67")
    vt.check("error" in r and "[port x] mtu: '67' is not a number from 68 "
             "to 9600" in r["error"]["message"], "mtu=67: %r" % r)
    for g in (g1, g2, g3):
        g.close()
    d.stop_clean(base)


if __name__ == "__main__":
    vt.run(test_mtu)
