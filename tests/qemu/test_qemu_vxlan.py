#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""A real QEMU guest over a VXLAN tunnel (issue 15 step 1) to a Linux
endpoint behind Linux's own VXLAN: pings both ways, a TCP transfer each
way with its MD5 compared at both ends, the FDB, and the tunnel's
counters against the kernel's.

Topology:

  vhostd: br0 = vm1 (QEMU TCG guest, 10.0.15.1/24, MTU 1450) + vx0
          (type vxlan, vni 100, local-ip UL_LOCAL, underlay up0,
          remote UL_REMOTE; no next-hop-mac: vhostd resolves it by ARP)
          up0 = net_af_packet on host veth ROOT_IF (MTU 1500)
  netns V: "wire" (ROOT_IF's peer) UL_REMOTE/24, kernel vxlan "vx" (id 100
          dstport 4789 local UL_REMOTE remote UL_LOCAL dev wire) in Linux
          bridge "kbr" with veth "ebr", whose peer "ep0" is in netns E
  netns E: the endpoint, 10.0.15.100/24 on ep0 (MTU 1450)

Every kernel side has TSO, GSO and GRO off (with them the kernel hands
the af_packet PMD's socket frames of up to 64 KiB that do not fit its
2 KiB ring frames, and "wire" would hand it UDP-tunnel super-frames),
and tx checksum offload on (the default: the endpoint's TCP frames
reach vhostd with partial inner checksums, which vhostd completes or
hands on marked partial). IPv6 is off everywhere, so nothing but what
the test makes crosses the tunnel.

vm1 makes a 16 MiB file of random bytes, then
  A. vm1 -> the endpoint: the guest's TSO super-frames segmented for the
     tunnel (a VTEP has no offloads), encapsulated, decapsulated by Linux;
  B. the endpoint -> vm1 (16 MiB from a seeded PRNG);
each one's MD5 the same at both ends. The remote's counters in `port show
vx0` against Linux's: what vhostd encapsulated to the remote is what
Linux's "vx" took in (rx, plus what it dropped), what Linux's "vx" sent
is what the remote received (plus what up0 missed: eth_imissed, a
datapath lcore held up on this shared machine), packets and bytes.
`fdb show` has the endpoint's MAC on vx0 via UL_REMOTE; nothing is
dropped but for full rings; every mbuf comes back.

About 20-55 s here: the guest boots in 10-40 s (TCG, with the machine's
load), its file takes ~5 s, A and B 1-10 s each.
"""
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)
from vhdtest import (Vhostd, check, run, wait_stable,  # noqa: E402
                     wait_until)
import guest  # noqa: E402
from nstest import add_netns  # noqa: E402
from qtest import (ENDPOINT, boot, guest_listen, guest_sum,  # noqa: E402
                   ns_spawn, ping, result)

SIZE = 16 << 20
VNI = 100
UDP_PORT = 4789
UL_LOCAL, UL_REMOTE = "192.168.15.1", "192.168.15.2"
VM_IP, VM_MAC = "10.0.15.1", "52:54:00:00:0f:01"
EP_IP, EP_MAC = "10.0.15.100", "52:54:00:00:0f:64"
MTU = 1450
ETH_HLEN = 14
REMOTE = "vx0/" + UL_REMOTE
KEYS = ("rx_packets", "rx_bytes", "tx_packets", "tx_bytes",
        "drop_no_neigh")


def sh(*argv):
    subprocess.check_call(argv, stdout=subprocess.DEVNULL,
                          stdin=subprocess.DEVNULL)


def features(ns, ifname):
    out = subprocess.run(["ip", "netns", "exec", ns, "ethtool", "-k",
                          ifname], stdout=subprocess.PIPE, text=True).stdout
    return dict(l.strip().split(": ", 1) for l in out.splitlines()
                if ": " in l)


def no_offloads(ns, ifname):
    """TSO, GSO, GRO (and their UDP-tunnel kinds) off on IFNAME in NS,
    each on its own: a feature the device cannot change fails the whole
    ethtool -K."""
    for f in ("tso", "gso", "gro", "tx-udp_tnl-segmentation",
              "tx-udp_tnl-csum-segmentation"):
        subprocess.call(["ip", "netns", "exec", ns, "ethtool", "-K", ifname,
                         f, "off"], stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL)
    feat = features(ns, ifname)
    for k in ("tcp-segmentation-offload", "generic-segmentation-offload",
              "generic-receive-offload", "tx-udp_tnl-segmentation",
              "tx-udp_tnl-csum-segmentation"):
        check(not feat.get(k, "off").startswith("on"),
              "%s in %s: %s is %s" % (ifname, ns, k, feat.get(k)))


def topology(t, tag):
    """Netns V (Linux's VTEP) and E (the endpoint), removed at cleanup;
    returns the host end of the underlay veth (for up0) and the netns."""
    ns = {"v": t.tag + "v", "e": t.tag + "e"}
    root_if = tag + "u"
    for n in ns.values():
        add_netns(n, t)
    v, e = ns["v"], ns["e"]
    subprocess.call(["ip", "link", "del", root_if], stderr=subprocess.DEVNULL)
    sh("ip", "link", "add", root_if, "mtu", "1500", "type", "veth", "peer",
       "name", "wire", "mtu", "1500", "netns", v)
    t.links.append(root_if)
    with open("/proc/sys/net/ipv6/conf/%s/disable_ipv6" % root_if, "w") as f:
        f.write("1")
    sh("ip", "link", "set", root_if, "up")
    no_offloads(v, "wire")
    sh("ip", "-n", v, "addr", "add", UL_REMOTE + "/24", "dev", "wire")
    sh("ip", "-n", v, "link", "set", "wire", "up")
    # Linux's VXLAN as a peer VTEP is most often set up: one remote (the
    # default fdb entry), learning on, the outer UDP checksum its default.
    sh("ip", "-n", v, "link", "add", "vx", "type", "vxlan", "id", str(VNI),
       "dstport", str(UDP_PORT), "local", UL_REMOTE, "remote", UL_LOCAL,
       "dev", "wire")
    # A plain Linux bridge: no STP (forwarding at once), no snooping (a
    # snooping bridge sends IGMP queries into the tunnel).
    sh("ip", "-n", v, "link", "add", "kbr", "type", "bridge", "stp_state",
       "0", "mcast_snooping", "0")
    sh("ip", "-n", v, "link", "add", "ebr", "mtu", str(MTU), "type", "veth",
       "peer", "name", "ep0", "mtu", str(MTU), "address", EP_MAC, "netns", e)
    no_offloads(v, "ebr")
    for i in ("vx", "ebr"):
        sh("ip", "-n", v, "link", "set", i, "master", "kbr", "up")
    sh("ip", "-n", v, "link", "set", "kbr", "up")
    no_offloads(e, "ep0")
    sh("ip", "-n", e, "addr", "add", EP_IP + "/24", "dev", "ep0")
    sh("ip", "-n", e, "link", "set", "ep0", "up")
    mtu = json.loads(subprocess.check_output(
        ["ip", "-n", v, "-j", "link", "show", "vx"]))[0]["mtu"]
    check(mtu == MTU, "Linux's vx has MTU %d, not %d" % (mtu, MTU))
    check(features(e, "ep0").get("tx-checksumming", "").startswith("on"),
          "ep0's tx checksum offload is off")
    return root_if, ns


def link_stats(ns, ifname):
    """IFNAME's counters in NS (ip -s: packets, bytes, dropped, errors)."""
    j = json.loads(subprocess.check_output(
        ["ip", "-n", ns, "-s", "-j", "link", "show", ifname]))[0]["stats64"]
    return {"%s_%s" % (d, k): j[d][k] for d in ("rx", "tx")
            for k in ("packets", "bytes", "dropped", "errors")}


def remote(d):
    rs = d.ctl("port/show", "vx0")["remotes"]
    check(len(rs) == 1 and rs[0]["ip"] == UL_REMOTE and
          rs[0]["name"] == REMOTE, "vx0's remotes: %r" % rs)
    return rs[0]


def quiet(d, ns):
    """Once the tunnel is quiet (a transfer's last ACKs counted at both
    ends): nothing in flight between vhostd and Linux."""
    wait_stable(lambda: (remote(d), link_stats(ns["v"], "vx")),
                "the tunnel to be quiet", timeout=30, interval=0.5)


class Snap:
    """The counters that must add up: vx0's remote, up0, Linux's vx and
    wire."""

    def __init__(self, d, ns):
        self.c = {"remote": remote(d), "up0": d.port("up0"),
                  "vx0": d.port("vx0"), "vm1": d.port("vm1"),
                  "vx": link_stats(ns["v"], "vx"),
                  "wire": link_stats(ns["v"], "wire")}

    def minus(self, b):
        return {n: {k: v - b.c[n].get(k, 0) for k, v in c.items()
                    if isinstance(v, int) and not isinstance(v, bool)}
                for n, c in self.c.items()}


def add_up(dl, what):
    """vhostd's remote against Linux's vx over a phase."""
    r, up, vx, wire = dl["remote"], dl["up0"], dl["vx"], dl["wire"]
    miss = up.get("eth_imissed", 0)
    print("%s: remote %s; up0 rx %d tx %d eth_imissed %d drop_tx_full %d; "
          "Linux vx %s" % (
              what, " ".join("%s=%d" % (k, r[k]) for k in KEYS),
              up["rx_packets"], up["tx_packets"], miss,
              up.get("drop_tx_full", 0),
              " ".join("%s=%d" % kv for kv in vx.items() if kv[1])))
    # vhostd -> Linux: every frame vhostd encapsulated for the remote
    # reached Linux's vx (a veth drops nothing; the PMD's full tx ring is
    # up0's drop_tx_full, never counted sent). Bytes: vhostd counts the
    # inner frames', Linux's vx the inner frames' less their Ethernet
    # header (after eth_type_trans on rx; from the inner network header,
    # iptunnel_xmit's pkt_len, on tx): 14 bytes a frame.
    check(r["tx_packets"] == vx["rx_packets"] + vx["rx_dropped"] +
          vx["rx_errors"] and r["tx_packets"] > 0,
          "%s: vhostd sent the remote %d frames / %d bytes, Linux's vx took "
          "%d / %d (dropped %d, errors %d)" % (
              what, r["tx_packets"], r["tx_bytes"], vx["rx_packets"],
              vx["rx_bytes"], vx["rx_dropped"], vx["rx_errors"]))
    # Linux -> vhostd: every frame Linux's vx sent was decapsulated as the
    # remote's, but for what up0's PMD missed (its ring full).
    check(r["rx_packets"] <= vx["tx_packets"] <= r["rx_packets"] + miss and
          r["rx_packets"] > 0,
          "%s: Linux's vx sent %d frames / %d bytes, vhostd's remote "
          "received %d / %d (up0 eth_imissed %d)" % (
              what, vx["tx_packets"], vx["tx_bytes"], r["rx_packets"],
              r["rx_bytes"], miss))
    if vx["rx_dropped"] + vx["rx_errors"] == 0:
        check(r["tx_bytes"] == vx["rx_bytes"] + ETH_HLEN * vx["rx_packets"],
              "%s: vhostd sent the remote %d bytes, Linux's vx took %d "
              "(+ %d x %d)" % (what, r["tx_bytes"], vx["rx_bytes"],
                               ETH_HLEN, vx["rx_packets"]))
    if miss == 0:
        check(r["rx_bytes"] == vx["tx_bytes"] + ETH_HLEN * vx["tx_packets"],
              "%s: Linux's vx sent %d bytes (+ %d x %d), vhostd's remote "
              "received %d" % (what, vx["tx_bytes"], ETH_HLEN,
                               vx["tx_packets"], r["rx_bytes"]))
    check(r["drop_no_neigh"] == 0, "%s: drop_no_neigh %d" % (
        what, r["drop_no_neigh"]))
    # The underlay: nothing but the tunnel on it in a phase (the next hops
    # are known both ways), and every frame up0 sent reached "wire".
    check(up["tx_packets"] == r["tx_packets"] == wire["rx_packets"] and
          up["tx_bytes"] == wire["rx_bytes"] and
          up["rx_packets"] == r["rx_packets"] and
          up["rx_packets"] <= wire["tx_packets"] <= up["rx_packets"] + miss,
          "%s: up0 sent %d frames / %d bytes, received %d; Linux's wire "
          "took %d / %d, sent %d" % (
              what, up["tx_packets"], up["tx_bytes"], up["rx_packets"],
              wire["rx_packets"], wire["rx_bytes"], wire["tx_packets"]))


def test_qemu_vxlan(t):
    t_begin = time.monotonic()
    guest.ensure_image()
    tag = "vq%d" % (os.getpid() % 100000)
    root_if, ns = topology(t, tag)
    ep = ["ip", "netns", "exec", ns["e"]]
    d = Vhostd(t, {"br0": {"mode": "learning"}}, {
        "up0": {"type": "ethdev",
                "devargs": "net_af_packet_%s,iface=%s" % (t.tag, root_if)},
        "vm1": {"type": "vhost-user", "bridge": "br0", "mode": "server",
                "path": t.path("vm1.sock")},
        "vx0": {"type": "vxlan", "bridge": "br0", "vni": str(VNI),
                "local-ip": UL_LOCAL, "underlay": "up0",
                "remote": UL_REMOTE, "udp-port": str(UDP_PORT)}}).start()
    g = boot(t, "vm1", t.path("vm1.sock"), "client", VM_MAC, VM_IP + "/24",
             mtu=MTU)
    print("guest ready in %.1f s" % g.wait_ready(240))
    d.wait_up("vm1", "up0")
    base = d.mbufs_in_use()
    rc, out = g.run("cat /sys/class/net/eth0/mtu", 30, check=True)
    check(out.strip() == str(MTU), "vm1's eth0 MTU %r" % out.strip())
    ps = d.ctl("port/show", "vx0")
    check(ps.get("mtu") == MTU and ps.get("vni") == VNI,
          "port show vx0: mtu %r vni %r" % (ps.get("mtu"), ps.get("vni")))
    t_file = time.monotonic()
    g.run("(dd if=/dev/urandom of=/tmp/f bs=1M count=%d && md5sum /tmp/f"
          " > /tmp/f.md5) > /tmp/f.log 2>&1 &" % (SIZE >> 20), 30,
          check=True)

    # Pings both ways. The guest's first ARP finds the remote's next hop
    # unknown: vhostd drops it (drop_no_neigh) and asks; the guest asks
    # again a second later.
    tx, rx = ping(g, EP_IP, 3)
    check(rx >= 1, "vm1 -> %s: no answer" % EP_IP)
    r = remote(d)
    neigh = json.loads(subprocess.check_output(
        ["ip", "-n", ns["v"], "-j", "neigh", "show", UL_LOCAL]))
    wire_mac = open("/sys/class/net/%s/address" % root_if).read().strip()
    vmac = json.loads(subprocess.check_output(
        ["ip", "-n", ns["v"], "-j", "link", "show", "wire"]))[0]["address"]
    check(r["mac"] == vmac, "vx0's remote next hop %r, wanted %s" % (
        r["mac"], vmac))
    check(any(n.get("lladdr") == wire_mac for n in neigh),
          "Linux's neighbour entry for %s: %r (wanted %s)" % (
              UL_LOCAL, neigh, wire_mac))
    tx, rx = ping(g, EP_IP, 3)
    check(tx == rx == 3, "vm1 -> %s: %d of %d answered" % (EP_IP, rx, tx))
    # -w: wait for all 3 replies (without it ping waits twice the largest
    # round trip after the last request, too short for a TCG guest)
    p = subprocess.run(ep + ["ping", "-c", "3", "-i", "0.3", "-w", "20",
                             VM_IP], stdout=subprocess.PIPE, text=True)
    print("endpoint -> %s: %s" % (VM_IP, p.stdout.strip().splitlines()[-2]))
    check(p.returncode == 0 and " 0% packet loss" in p.stdout,
          "endpoint -> vm1:\n%s" % p.stdout)

    # fdb show: the endpoint's MAC on vx0 via its VTEP, vm1's on vm1;
    # Linux's vx learned vm1's MAC behind vhostd's local-ip.
    fdb = {e["mac"]: e for e in d.ctl("fdb/show", "br0")}
    check(EP_MAC in fdb and fdb[EP_MAC]["port"] == "vx0" and
          fdb[EP_MAC].get("vtep") == UL_REMOTE,
          "fdb entry of the endpoint: %r (wanted vx0 via %s)" % (
              fdb.get(EP_MAC), UL_REMOTE))
    check(VM_MAC in fdb and fdb[VM_MAC]["port"] == "vm1",
          "fdb entry of vm1: %r" % fdb.get(VM_MAC))
    _, txt, _ = d.vhostctl("fdb", "show", "br0")
    check(re.search(r"%s\s+vx0\s+%s\s" % (EP_MAC, re.escape(UL_REMOTE)),
                    txt), "vhostctl fdb show lacks %s vx0 %s:\n%s" % (
                        EP_MAC, UL_REMOTE, txt))
    kfdb = subprocess.check_output(["bridge", "-n", ns["v"], "fdb", "show",
                                    "dev", "vx"], text=True)
    check(re.search(r"%s dst %s" % (VM_MAC, re.escape(UL_LOCAL)), kfdb),
          "Linux's vx did not learn %s via %s:\n%s" % (VM_MAC, UL_LOCAL,
                                                       kfdb))
    print("ok: pings both ways; fdb:\n%s" % txt.rstrip())

    md5 = wait_until(lambda: re.match(r"[0-9a-f]{32} ", g.run(
        "cat /tmp/f.md5 2>/dev/null", 30)[1]), 120, "vm1's file",
        interval=0.5).group(0).strip()
    print("vm1: %d MiB file, md5 %s, %.1f s after it began" % (
        SIZE >> 20, md5, time.monotonic() - t_file))

    # A. vm1 -> the endpoint
    quiet(d, ns)
    s0 = Snap(d, ns)
    rxp = ns_spawn(t, ns["e"], ENDPOINT, ["recv", EP_IP, 5001, SIZE],
                   "recv.log")
    wait_until(lambda: "listening" in open(rxp.log).read(), 30,
               "the endpoint to listen")
    t0 = time.monotonic()
    g.run("nc %s 5001 < /tmp/f" % EP_IP, 300, check=True)
    r = result(rxp, 60, "the endpoint's receiver")
    secs_a = time.monotonic() - t0
    print("A. vm1 -> endpoint: %.1f s (endpoint: %.1f s)" % (secs_a,
                                                           r["secs"]))
    check(r["bytes"] == SIZE and r["md5"] == md5,
          "the endpoint received %d bytes, md5 %s; vm1 sent %d, md5 %s" %
          (r["bytes"], r["md5"], SIZE, md5))
    quiet(d, ns)
    dl = Snap(d, ns).minus(s0)
    add_up(dl, "A")
    # vm1's TSO super-frames segmented for the tunnel (the VTEP's tx, no
    # offloads), every segment's checksum completed before encapsulation.
    vm, vx0 = dl["vm1"], dl["vx0"]
    print("A: vm1 rx_tso %d rx_csum_partial %d; vx0 tx_segmented %d "
          "tx_segments %d tx_sw_csum %d" % (
              vm["rx_tso"], vm["rx_csum_partial"], vx0["tx_segmented"],
              vx0["tx_segments"], vx0["tx_sw_csum"]))
    check(vm["rx_tso"] > 0 and vx0["tx_segmented"] == vm["rx_tso"] and
          vx0["tx_segments"] >= 2 * vx0["tx_segmented"] and
          vx0["tx_sw_csum"] == vx0["tx_segments"] + vm["rx_csum_partial"] -
          vm["rx_tso"],
          "A: vm1 -> vx0: offload counters do not add up: vm1 %s, vx0 %s" %
          (vm, vx0))

    # B. the endpoint -> vm1
    s0 = Snap(d, ns)
    guest_listen(g, 5002)
    t0 = time.monotonic()
    txp = ns_spawn(t, ns["e"], ENDPOINT, ["send", VM_IP, 5002, SIZE],
                   "send.log")
    s = result(txp, 300, "the endpoint's sender")
    got = guest_sum(g, 5002, 60)
    secs_b = time.monotonic() - t0
    print("B. endpoint -> vm1: %.1f s (endpoint: %.1f s)" % (secs_b,
                                                           s["secs"]))
    check(got == s["md5"] and s["bytes"] == SIZE,
          "vm1 received md5 %s, the endpoint sent %s (%d bytes)" % (
              got, s["md5"], s["bytes"]))
    quiet(d, ns)
    dl = Snap(d, ns).minus(s0)
    add_up(dl, "B")
    # The endpoint's partial inner checksums (ep0's tx checksum offload)
    # reached vm1 as they were (it takes partial checksums: GUEST_CSUM).
    vm, vx0 = dl["vm1"], dl["vx0"]
    print("B: vx0 rx_csum_partial %d; vm1 tx_packets %d tx_sw_csum %d" % (
        vx0["rx_csum_partial"], vm["tx_packets"], vm["tx_sw_csum"]))
    check(vx0["rx_csum_partial"] >= SIZE // (MTU - 40 - 12) and
          vm["tx_sw_csum"] == 0 and vm["tx_segmented"] == 0 and
          vm["tx_packets"] + vm["drop_tx_full"] == vx0["rx_packets"],
          "B: vx0 -> vm1 not frame for frame, as they were: vx0 %s, vm1 %s"
          % (vx0, vm))

    # No drops but full rings (TCP sends again) and the guest's first ARP
    # (drop_no_neigh, while vhostd resolved the remote).
    for p in ("vm1", "up0", "vx0"):
        drops = {k: v for k, v in d.port(p).items()
                 if k.startswith("drop") and k != "drop_tx_full" and v and
                 not (p == "vx0" and k == "drop_no_neigh")}
        check(not drops, "%s drops: %s" % (p, drops))
    r = remote(d)
    print("vx0's remote: %s" % json.dumps(r, sort_keys=True))
    check(1 <= r["drop_no_neigh"] <= 3, "drop_no_neigh: %r" % r)
    wait_until(lambda: d.mbufs_in_use() == base, 20,
               "mbufs in use back at %d" % base)
    g.kill()
    d.stop_clean(base)
    print("transfers: A %.1f s, B %.1f s; whole test %.1f s" % (
        secs_a, secs_b, time.monotonic() - t_begin))


if __name__ == "__main__":
    run(test_qemu_vxlan)
