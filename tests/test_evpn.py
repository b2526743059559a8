#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""EVPN (issue 15 step 2): vhostd's VXLAN port with `evpn = vhd100`
against FRR (zebra + bgpd) on both "hosts", exact frames and counts.

Topology (every host a netns; names carry the test's tag):

  host 1 = netns H1: vhostd runs here (ip netns exec), with
      br0 = g1, g2 (vhost-user guests in this process) + vx0 (type vxlan,
            vni 100, local-ip 10.98.0.1, underlay up0, evpn vhd100)
      up0 = net_af_packet on veth u1 (no IP: 10.98.0.1 is vhostd's)
      the control-only kernel objects: br100 = vxlan100 (id 100, local
      10.98.0.1, nolearning) + vhd100 (a dummy, or a veth when the kernel
      has no dummy driver); FRR (zebra + bgpd, pathspace H1); management
      veth m1 10.99.0.1/24; a route to host 2's VTEP 10.98.0.2 via m2 (only
      so that bgpd takes host 2's next hop as valid)
  host 2 = netns H2: a Linux VTEP: u2 10.98.0.2/24 (vhostd's u1 at the
      other end: 10.98.0.1 is on-link), br100 = vxlan100 (id 100, local
      10.98.0.2, nolearning) + e2, whose peer ep0 is in netns EP (the
      endpoint: MAC EP, an AF_PACKET socket, no IP); FRR (pathspace H2);
      m2 10.99.0.2/24
  iBGP (AS 65000) l2vpn evpn, advertise-all-vni, H1 <-> H2 over m1/m2.
  No static `remote` anywhere: vhostd's VTEPs and remote MACs come from
  zebra's kernel entries on vxlan100, its local MACs go to zebra as
  entries on vhd100.

Checked, in order: bad `evpn` configs refused with a clear error and
nothing made (a missing interface, one in no bridge, a bridge without a
VXLAN device, another VNI, another local address, another UDP port, evpn
with remote); a stale vhostd-kind entry on vhd100 deleted when vx0 comes;
BGP up and type-3 both ways, vx0's remote 10.98.0.2 a flood VTEP; guest
MACs written on vhd100 and advertised (host 2's kernel and bgpd); the
endpoint's MAC in vhostd's FDB as evpn through BGP alone (nothing of it
decapsulated); unicast both ways and broadcast both ways byte for byte and
exactly once; MAC mobility to a guest and back (host 2 follows with a
higher sequence; vhostd takes it back as evpn and does not steal it
again); withdrawal when host 2's bgpd stops (no evpn entry, no VTEP);
vhostd's clean stop (its entries gone from vhd100, mbufs back); and no
FRR daemon, netns or FRR run dir left.

Needs FRR (/usr/lib/frr/zebra, bgpd, vtysh; Debian package frr).
"""
import json
import os
import pwd
import shutil
import signal
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
import vhdtest as vt  # noqa: E402
import vhostuser as vu  # noqa: E402
from nstest import (Sock, add_netns, drain_quiet,  # noqa: E402
                    exchange)

FRR = "/usr/lib/frr"
FRR_RUN = "/var/run/frr"
VNI = 100
PORT = 4789
LOCAL, PEER = "10.98.0.1", "10.98.0.2"          # VTEPs
M1, M2 = "10.99.0.1", "10.99.0.2"               # BGP (management)
U1_MAC = "02:98:00:00:00:01"                    # vhostd's underlay (u1)
G1, G2 = "02:00:00:00:01:01", "02:00:00:00:02:01"
EP = "02:0e:00:00:00:02"                        # the endpoint behind host 2
STALE = "02:de:ad:00:00:01"     # a vhostd-kind entry left on vhd100
ETYPE = 0x88B5
ETYPE_B = struct.pack("!H", ETYPE)
ZERO = "00:00:00:00:00:00"
seq = [0]
PROBLEMS = []


def expect(cond, msg):
    """A check whose failure leaves the rest meaningful: noted, the test
    goes on and fails at the end."""
    if not cond:
        PROBLEMS.append(msg)
        print("NOT ok: %s" % msg)
    return cond


def sh(*argv):
    subprocess.check_call(argv, stdin=subprocess.DEVNULL)


def out(*argv, check=True):
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    if check and p.returncode:
        raise vt.Failure("%s: exit %d: %s" % (
            " ".join(argv), p.returncode, p.stderr.decode().strip()))
    return p.stdout.decode()


def frame(dst, src, size=80, tag=b""):
    seq[0] += 1
    return vt.frame(dst, src, ETYPE, b"evpn %d %s" % (seq[0], tag), size)


# ------------------------------------------------------------- netns

# ------------------------------------------------------------- kernel

class Topo:
    def __init__(self, t):
        tag = "evt%d" % (os.getpid() % 100000)
        self.h1, self.h2, self.ep = tag + "h1", tag + "h2", tag + "ep"
        self.t = t
        self.frr_pids = []

    def fdb(self, ns, dev):
        """The kernel's FDB entries on DEV in NS (bridge -j)."""
        return json.loads(out("bridge", "-n", ns, "-j", "fdb", "show", "dev",
                              dev) or "[]")

    def entries(self, ns, dev, mac):
        return [e for e in self.fdb(ns, dev) if e.get("mac") == mac]

    def self_dst(self, ns, mac):
        """MAC's VXLAN (self) entries on NS's vxlan100: their dst IPs."""
        return sorted(e.get("dst") for e in self.entries(ns, "vxlan100", mac)
                      if "self" in e.get("flags", []) and e.get("dst"))

    def master_dev(self, ns, mac):
        """Which port of NS's br100 holds MAC (the bridge's entry)."""
        for e in json.loads(out("bridge", "-n", ns, "-j", "fdb", "show",
                                "br", "br100") or "[]"):
            if e.get("mac") == mac and e.get("master") == "br100":
                return e.get("ifname")
        return None

    def vhd_macs(self):
        """MACs on H1's vhd100 as vhostd writes them (static, not
        permanent: the device's own address is permanent)."""
        return {e["mac"] for e in self.fdb(self.h1, "vhd100")
                if e.get("state") == "static" and
                e.get("master") == "br100"}


def add_vni(ns, local, vni=VNI, br="br100", vx="vxlan100"):
    """A bridge with a VXLAN device as zebra wants it (up and enslaved)."""
    sh("ip", "-n", ns, "link", "add", br, "type", "bridge", "stp_state",
       "0", "mcast_snooping", "0")
    sh("ip", "-n", ns, "link", "set", br, "addrgenmode", "none", "up")
    sh("ip", "-n", ns, "link", "add", vx, "type", "vxlan", "id", str(vni),
       "dstport", str(PORT), "local", local, "nolearning")
    sh("ip", "-n", ns, "link", "set", vx, "addrgenmode", "none", "master",
       br)
    sh("bridge", "-n", ns, "link", "set", "dev", vx, "learning", "off")
    sh("ip", "-n", ns, "link", "set", vx, "up")


def add_stub(ns, name):
    """A port that carries nothing: a dummy, or (no dummy driver in this
    kernel) a veth whose peer stays up outside any bridge."""
    if subprocess.call(["ip", "-n", ns, "link", "add", name, "type",
                        "dummy"], stderr=subprocess.DEVNULL) != 0:
        sh("ip", "-n", ns, "link", "add", name, "type", "veth", "peer",
           "name", name + "p")
        sh("ip", "-n", ns, "link", "set", name + "p", "addrgenmode", "none",
           "up")
    sh("ip", "-n", ns, "link", "set", name, "addrgenmode", "none")


def topology(t):
    tp = Topo(t)
    h1, h2, ep = tp.h1, tp.h2, tp.ep
    for n in (h1, h2, ep):
        add_netns(n)
        t.cleanups.append(lambda n=n: subprocess.call(
            ["ip", "netns", "del", n], stderr=subprocess.DEVNULL))
    # Management link (BGP).
    sh("ip", "link", "add", "m1", "netns", h1, "type", "veth", "peer",
       "name", "m2", "netns", h2)
    # Underlay: u1 is vhostd's (no IP), u2 host 2's VTEP interface.
    sh("ip", "link", "add", "u1", "netns", h1, "type", "veth", "peer",
       "name", "u2", "netns", h2)
    sh("ip", "-n", h1, "addr", "add", M1 + "/24", "dev", "m1")
    sh("ip", "-n", h2, "addr", "add", M2 + "/24", "dev", "m2")
    sh("ip", "-n", h1, "link", "set", "u1", "address", U1_MAC, "mtu",
       "1500", "up")
    sh("ip", "-n", h2, "addr", "add", PEER + "/24", "dev", "u2")
    for ns, dev in ((h1, "m1"), (h2, "m2"), (h2, "u2")):
        sh("ip", "-n", ns, "link", "set", dev, "up")
    # bgpd on host 1 needs a route to host 2's next hop (its VTEP) to take
    # its routes as valid; host 1's kernel sends nothing there.
    sh("ip", "-n", h1, "route", "add", PEER + "/32", "via", M2)
    # Host 1: the control-only objects; vhd100 is where vhostd writes.
    add_vni(h1, LOCAL)
    add_stub(h1, "vhd100")
    sh("ip", "-n", h1, "link", "set", "vhd100", "master", "br100")
    sh("bridge", "-n", h1, "link", "set", "dev", "vhd100", "learning", "off")
    sh("ip", "-n", h1, "link", "set", "vhd100", "up")
    # For the bad configs: a port in no bridge, a bridge without VXLAN.
    add_stub(h1, "lone0")
    sh("ip", "-n", h1, "link", "add", "brx", "type", "bridge")
    add_stub(h1, "vhdx")
    sh("ip", "-n", h1, "link", "set", "vhdx", "master", "brx")
    # Host 2: a Linux VTEP with the endpoint behind it.
    add_vni(h2, PEER)
    sh("ip", "link", "add", "e2", "netns", h2, "type", "veth", "peer",
       "name", "ep0", "netns", ep)
    sh("ip", "-n", h2, "link", "set", "e2", "master", "br100", "up")
    sh("ip", "-n", ep, "link", "set", "ep0", "address", EP, "up")
    return tp


# ------------------------------------------------------------- FRR

ZEBRA_CONF = """frr defaults datacenter
hostname {ns}
log file {run}/zebra.log
"""
BGPD_CONF = """frr defaults datacenter
hostname {ns}
log file {run}/bgpd.log
router bgp 65000
 bgp router-id {me}
 no bgp default ipv4-unicast
 neighbor {peer} remote-as 65000
 neighbor {peer} timers connect 1
 address-family l2vpn evpn
  neighbor {peer} activate
  advertise-all-vni
 exit-address-family
"""


def run_dir(ns):
    return os.path.join(FRR_RUN, ns)


def frr_daemon_pid(ns, daemon):
    try:
        with open(os.path.join(run_dir(ns), daemon + ".pid")) as f:
            pid = int(f.read().strip())
        with open("/proc/%d/comm" % pid) as f:
            return pid if f.read().strip() == daemon else None
    except (OSError, ValueError):
        return None


def frr_start(tp, ns, daemon, me=None, peer=None):
    run = run_dir(ns)
    conf = os.path.join(run, daemon + ".conf")
    with open(conf, "w") as f:
        f.write((ZEBRA_CONF if daemon == "zebra" else BGPD_CONF).format(
            ns=ns, run=run, me=me, peer=peer))
    frr = pwd.getpwnam("frr")
    os.chown(conf, frr.pw_uid, frr.pw_gid)
    p = subprocess.run(["ip", "netns", "exec", ns,
                        os.path.join(FRR, daemon), "-d", "-N", ns, "-f", conf,
                        "-i", os.path.join(run, daemon + ".pid")],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    vt.check(p.returncode == 0, "%s %s: exit %d: %s" % (
        daemon, ns, p.returncode, p.stdout.decode(errors="replace")))
    pid = vt.wait_until(lambda: frr_daemon_pid(ns, daemon), 10,
                        "%s %s's pid file" % (daemon, ns))
    tp.frr_pids.append((ns, daemon, pid))
    sock = "zserv.api" if daemon == "zebra" else "bgpd.vty"
    vt.wait_until(lambda: os.path.exists(os.path.join(run, sock)), 10,
                  "%s %s's %s" % (daemon, ns, sock))
    return pid


def frr_stop(ns, daemon, timeout=10):
    """Stop one FRR daemon by its pid file; True if one was running."""
    pid = frr_daemon_pid(ns, daemon)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    end = time.monotonic() + timeout
    while time.monotonic() < end and os.path.exists("/proc/%d" % pid):
        time.sleep(0.05)
    if os.path.exists("/proc/%d" % pid):
        os.kill(pid, signal.SIGKILL)
    return True


def frr_up(tp):
    for ns in (tp.h1, tp.h2):
        run = run_dir(ns)
        shutil.rmtree(run, ignore_errors=True)
        os.makedirs(run)
        frr = pwd.getpwnam("frr")
        os.chown(run, frr.pw_uid, frr.pw_gid)
        tp.t.cleanups.append(lambda ns=ns: frr_down(ns))
    for ns in (tp.h1, tp.h2):
        frr_start(tp, ns, "zebra")
    for ns, me, peer in ((tp.h1, M1, M2), (tp.h2, M2, M1)):
        frr_start(tp, ns, "bgpd", me, peer)


def frr_down(ns):
    for d in ("bgpd", "zebra"):
        frr_stop(ns, d)
    shutil.rmtree(run_dir(ns), ignore_errors=True)


def vtysh(ns, cmd, js=True, suffix=""):
    s = out("vtysh", "-N", ns, "-c", cmd + (" json" if js else suffix))
    return json.loads(s) if js else s


def frr_logs(tp):
    """FRR's logs and state, for a failure."""
    for ns in (tp.h1, tp.h2):
        for cmd in ("show bgp l2vpn evpn summary", "show bgp l2vpn evpn",
                    "show evpn mac vni all", "show evpn vni detail"):
            try:
                print("----- vtysh -N %s -c '%s'\n%s" % (
                    ns, cmd, vtysh(ns, cmd, js=False)))
            except Exception as e:  # noqa: BLE001 - best effort
                print("----- vtysh -N %s -c '%s': %s" % (ns, cmd, e))
        for dev in ("vxlan100", "vhd100", "e2"):
            print("----- bridge -n %s fdb show dev %s\n%s" % (
                ns, dev, out("bridge", "-n", ns, "fdb", "show", "dev", dev,
                             check=False)))
        for d in ("zebra", "bgpd"):
            try:
                with open(os.path.join(run_dir(ns), d + ".log"),
                          errors="replace") as f:
                    print("----- %s %s.log\n%s" % (ns, d, f.read()[-4000:]))
            except OSError:
                pass


# ------------------------------------------------------------- vhostd

class NsVhostd(vt.Vhostd):
    """vhostd started inside netns NS (ip netns exec execs it: the pid is
    vhostd's own). Its control socket and telemetry are files, reachable
    from here."""

    def __init__(self, t, ns, *a, **kw):
        self.ns = ns
        super().__init__(t, *a, **kw)

    def start(self, wait=True):
        argv = ["ip", "netns", "exec", self.ns, vt.VHOSTD, "--config",
                self.conf]
        if self.extra_args:
            argv += ["--"] + self.extra_args
        self.proc = self.t.spawn(argv, self.t.path("vhostd-%d.log" %
                                                   len(self.t.procs)))
        if wait:
            vt.wait_until(lambda: self.proc.poll() is not None or
                          "ready:" in self.log(), 30, "vhostd to start")
            vt.check(self.proc.poll() is None,
                     "vhostd exited at start: %s" % self.log()[-3000:])
        return self


def fdb_entry(d, mac):
    for e in d.ctl("fdb/show", "br0"):
        if e["mac"] == mac:
            return e
    return None


def remotes(d):
    return {r["ip"]: r for r in d.ctl("port/show", "vx0")["remotes"]}


def is_evpn(d, mac, vtep):
    e = fdb_entry(d, mac)
    return e if e and e["port"] == "vx0" and e.get("vtep") == vtep and \
        e.get("evpn") is True and e.get("static") is False else None


def hold(fn, secs, what):
    """FN() must stay true for SECS seconds (polled)."""
    end = time.monotonic() + secs
    while time.monotonic() < end:
        vt.check(fn(), "no longer true within %.0fs: %s" % (secs, what))
        time.sleep(0.1)


class Net:
    """Every place a frame of the test can arrive: the guests (all they
    get) and the endpoint (the test's ethertype)."""

    def __init__(self, g, ep):
        self.g, self.ep = g, ep

    def poll(self):
        got = {n: x.rxq.rx() for n, x in self.g.items()}
        got["ep"] = self.ep.drain()
        return got

    def drain(self, quiet=0.3):
        drain_quiet(self.poll, quiet)

    def exchange(self, what, send, want, timeout=10):
        """As nstest.exchange, over the guests and the endpoint."""
        exchange(self.poll, list(self.g) + ["ep"], what, send, want,
                 timeout)


def wait(fn, what, timeout=15):
    r = vt.wait_until(fn, timeout, what, interval=0.1)
    print("ok: %s" % what)
    return r


# ------------------------------------------------------------- the test

def bad_configs(d, tp):
    """Each bad evpn port add refused with an error that says what is
    wrong; nothing made (no port, no sub-port, nothing written to or
    deleted from vhd100: the stale entry put there stays)."""
    good = {"bridge": "br0", "type": "vxlan", "vni": str(VNI),
            "local-ip": LOCAL, "underlay": "up0", "evpn": "vhd100"}
    cases = [
        ("a missing interface", {"evpn": "nosuch0"}, "nosuch0"),
        ("an interface in no bridge", {"evpn": "lone0"}, "lone0"),
        ("a bridge without a VXLAN device", {"evpn": "vhdx"}, "brx"),
        ("a bridge whose VXLAN device has another VNI", {"vni": "200"},
         "200"),
        ("a VXLAN device with another local address",
         {"local-ip": "10.98.0.9"}, "10.98.0.9"),
        ("a VXLAN device with another UDP port", {"udp-port": "4790"},
         "4790"),
        ("evpn with remote", {"remote": PEER}, "remote"),
        ("the VXLAN device itself", {"evpn": "vxlan100"}, "dummy"),
        ("the Linux bridge itself", {"evpn": "br100"}, "dummy"),
    ]
    ports0 = sorted(d.query("/vhostd/ports"))
    list0 = d.ctl("port/list")
    vhd0 = tp.vhd_macs()
    for what, change, word in cases:
        kv = dict(good, **change)
        rc, o, e = d.vhostctl("port", "add", "vx0",
                              *["%s=%s" % x for x in kv.items()],
                              check_rc=None)
        msg = (e + o).strip()
        ok = expect(rc == 1, "bad config (%s): vhostctl exit %d, wanted 1: "
                    "%r" % (what, rc, msg))
        ok &= expect("evpn" in msg.lower() and word in msg,
                     "bad config (%s): error %r does not say evpn and %s" %
                     (what, msg, word))
        ok &= expect(sorted(d.query("/vhostd/ports")) == ports0 and
                     d.ctl("port/list") == list0,
                     "bad config (%s): ports changed: %r" % (
                         what, d.query("/vhostd/ports")))
        ok &= expect(tp.vhd_macs() == vhd0, "bad config (%s): vhd100's "
                     "entries changed: %r, were %r" % (
                         what, tp.vhd_macs(), vhd0))
        if ok:
            print("ok: bad config (%s) refused: %s" % (what, msg))
    return ["%s=%s" % x for x in good.items()]


def test_evpn(t):
    for b in ("zebra", "bgpd", "vtysh"):
        vt.check(os.path.exists(os.path.join(FRR, b)) or shutil.which(b),
                 "FRR's %s is not installed (Debian package frr)" % b)
    t0 = time.monotonic()
    tp = topology(t)
    try:
        body(t, tp, t0)
    except BaseException:
        frr_logs(tp)
        raise
    vt.check(not PROBLEMS, "%d problem(s):\n  %s" % (
        len(PROBLEMS), "\n  ".join(PROBLEMS)))


def body(t, tp, t0):
    h1, h2 = tp.h1, tp.h2
    # A vhostd-kind entry (static, on vhd100) vhostd does not have: vhostd
    # must delete it once its evpn port exists, and not before.
    sh("bridge", "-n", h1, "fdb", "add", STALE, "dev", "vhd100", "master",
       "static")
    frr_up(tp)
    vh = lambda n: {"type": "vhost-user", "bridge": "br0",  # noqa: E731
                    "path": t.path(n + ".sock")}
    d = NsVhostd(t, h1, {"br0": {}}, {
        "up0": {"type": "ethdev",
                "devargs": "net_af_packet_%s,iface=u1" % t.tag},
        "g1": vh("g1"), "g2": vh("g2")},
        lcores=os.environ.get("VHD_LCORES", "1"))
    d.start()
    g = {"g1": vu.Guest(t.path("g1.sock")), "g2": vu.Guest(t.path("g2.sock"))}
    d.wait_up("g1", "g2", "up0")
    base = d.mbufs_in_use()
    ep = Sock(tp.ep, "ep0", ETYPE_B)
    net = Net(g, ep)
    br2_mac = json.loads(out("ip", "-n", h2, "-j", "link", "show",
                             "br100"))[0]["address"]

    def ep_learn():
        """A frame from the endpoint to host 2's own bridge: host 2
        learns EP on e2, nothing is flooded (nothing reaches vhostd)."""
        ep.send([frame(br2_mac, EP, tag=b"to host 2")])

    # 8. Bad configs (while BGP comes up).
    args = bad_configs(d, tp)
    vt.check(STALE in tp.vhd_macs(), "the stale entry went before vx0")
    d.vhostctl("port", "add", "vx0", *args)
    print("ok: port add vx0 %s" % " ".join(args))

    # 1. BGP, type-3 both ways, the flood VTEP.
    wait(lambda: vtysh(h1, "show bgp l2vpn evpn summary")["peers"][M2][
        "state"] == "Established", "BGP session established", 30)
    wait(lambda: tp.self_dst(h1, ZERO) == [PEER] and
         tp.self_dst(h2, ZERO) == [LOCAL], "type-3 both ways (kernel flood "
         "entries: host 1 -> %s, host 2 -> %s)" % (PEER, LOCAL))
    for ns, vtep in ((h1, PEER), (h2, LOCAL)):
        r = json.dumps(vtysh(ns, "show bgp l2vpn evpn route type multicast"))
        expect("[3]:[0]:[32]:[%s]" % vtep in r,
               "%s's bgpd has no type-3 of %s: %s" % (ns, vtep, r))

    def flood_vtep():
        js = json.loads(d.vhostctl("port", "show", "vx0", "--json")[1])
        r = {x["ip"]: x for x in js["remotes"]}
        return js if PEER in r and r[PEER].get("flood") is True else None
    js = wait(flood_vtep, "vx0's remote %s with flood true" % PEER)
    ev = js.get("evpn") or {}
    expect({k: ev.get(k) for k in ("interface", "vxlan_device", "bridge",
                                   "flood_vteps")} ==
           {"interface": "vhd100", "vxlan_device": "vxlan100",
            "bridge": "br100", "flood_vteps": 1},
           "vx0's evpn object: %r" % ev)
    expect("remote" not in js or not js.get("remote"),
           "vx0 has a static remote list: %r" % js.get("remote"))
    # The stale entry: deleted with nothing learned yet (an idle switch
    # started again must not keep advertising MACs it no longer has).
    try:
        wait(lambda: STALE not in tp.vhd_macs(),
             "the stale entry on vhd100 deleted (FDB still empty)", 4)
    except vt.Failure as e:
        expect(False, "%s: FDB %r, vx0's evpn %r" % (
            e, d.ctl("fdb/show", "br0"), d.ctl("port/show", "vx0").get(
                "evpn")))

    # 2. Guest MACs written on vhd100 and advertised. Broadcasts from the
    # guests until vhostd has resolved host 2's MAC (ARP; frames for an
    # unresolved VTEP are dropped).
    expect(not tp.self_dst(h2, G1), "host 2 knows G1 before it sent")

    def warm():
        g["g1"].txq.tx(frame(vt.BCAST, G1, tag=b"warm-up"))
        g["g2"].txq.tx(frame(vt.BCAST, G2, tag=b"warm-up"))
        net.poll()
        return remotes(d)[PEER]["mac"]
    mac2 = vt.wait_until(warm, 15, "host 2's underlay MAC resolved",
                         interval=0.3)
    net.drain()
    u2 = json.loads(out("ip", "-n", h2, "-j", "link", "show",
                        "u2"))[0]["address"]
    expect(mac2 == u2, "vx0's next hop for %s: %s, wanted u2's %s" % (
        PEER, mac2, u2))
    wait(lambda: tp.vhd_macs() >= {G1, G2},
         "G1, G2 written on host 1's vhd100 (master static)")
    try:
        wait(lambda: STALE not in tp.vhd_macs(),
             "the stale entry on vhd100 deleted (FDB changed since)", 3)
    except vt.Failure as e:
        expect(False, "%s: vx0's evpn %r" % (
            e, d.ctl("port/show", "vx0").get("evpn")))
    wait(lambda: all(tp.self_dst(h2, m) == [LOCAL] and
                     tp.master_dev(h2, m) == "vxlan100" for m in (G1, G2)),
         "host 2's kernel: G1, G2 dev vxlan100 dst %s self" % LOCAL)
    r = vtysh(h2, "show bgp l2vpn evpn route type macip")
    for m in (G1, G2):
        k = "[2]:[0]:[48]:[%s]" % m
        paths = [p for rd in r.values() if isinstance(rd, dict) and k in rd
                 for ps in rd[k]["paths"] for p in ps]
        expect(any(p.get("bestpath") and
                   p["nexthops"][0]["ip"] == LOCAL for p in paths),
               "host 2's bgpd: no best type-2 of %s via %s: %r" % (
                   m, LOCAL, paths))

    # 3. The endpoint's MAC through BGP alone: nothing of it reaches
    # vhostd's underlay, yet its FDB has it on vx0 as evpn.
    rx0 = d.port("vx0")["rx_packets"]
    ep_learn()
    wait(lambda: is_evpn(d, EP, PEER),
         "EP in vhostd's FDB: vx0, vtep %s, evpn (BGP alone)" % PEER)
    expect(d.port("vx0")["rx_packets"] == rx0,
           "vx0 received frames while EP was only learned on host 2")
    _, txt, _ = d.vhostctl("fdb", "show", "br0")
    expect(any(EP in ln and "vx0" in ln and PEER in ln and "evpn" in ln
               for ln in txt.splitlines()),
           "vhostctl fdb show: no line with %s vx0 %s evpn:\n%s" % (
               EP, PEER, txt))
    ev = d.ctl("port/show", "vx0").get("evpn") or {}
    expect(ev.get("local_macs") == 2 and ev.get("remote_macs") == 1 and
           ev.get("flood_vteps") == 1 and ev.get("netlink_errors") == 0,
           "vx0's evpn counts (wanted 2 local, 1 remote, 1 flood VTEP, no "
           "netlink errors): %r" % ev)

    # 4. Traffic both ways, exactly.
    fs = [frame(vt.BCAST, EP, 90, b"ep bcast")]
    net.exchange("EP broadcast -> g1, g2 once each",
                 lambda: ep.send(fs), {"g1": fs, "g2": fs}, timeout=15)
    expect(is_evpn(d, EP, PEER), "EP's entry after its broadcast came "
           "through vx0: %r" % fdb_entry(d, EP))
    N = 20
    r0 = remotes(d)[PEER]
    fs = [frame(EP, G1, 60 + 23 * i, b"g1 to ep") for i in range(N)]
    net.exchange("g1 -> EP, %d frames" % N,
                 lambda: [g["g1"].txq.tx(f) for f in fs], {"ep": fs})
    fs2 = [frame(G1, EP, 60 + 17 * i, b"ep to g1") for i in range(N)]
    net.exchange("EP -> g1, %d frames" % N, lambda: ep.send(fs2),
                 {"g1": fs2})
    r1 = remotes(d)[PEER]
    expect(r1["tx_packets"] - r0["tx_packets"] == N and
           r1["rx_packets"] - r0["rx_packets"] == N and
           r1["rx_bytes"] - r0["rx_bytes"] == sum(map(len, fs2)),
           "vx0/%s's counters: before %r, after %r" % (PEER, r0, r1))
    fs = [frame(vt.BCAST, G1, 100 + i, b"g1 bcast") for i in range(3)]
    net.exchange("g1 broadcast x3 -> g2, EP once each",
                 lambda: [g["g1"].txq.tx(f) for f in fs],
                 {"g2": fs, "ep": fs})

    # 5. Mobility: EP moves to g2 (g2 sends from it), then back.
    m = vtysh(h2, "show evpn mac vni 100 mac %s" % EP)[EP]
    vt.check(m["type"] == "local", "host 2's zebra: EP not local: %r" % m)
    seq0 = max(m["localSequence"], m["remoteSequence"])
    fs = [frame(G1, EP, 70, b"ep from g2")]
    net.exchange("g2 sends from EP -> g1", lambda: g["g2"].txq.tx(fs[0]),
                 {"g1": fs})
    wait(lambda: (fdb_entry(d, EP) or {}).get("port") == "g2" and
         not fdb_entry(d, EP).get("evpn"),
         "vhostd learned EP on g2 (not evpn)")
    wait(lambda: EP in tp.vhd_macs(), "EP written on host 1's vhd100")

    def moved_to_1():
        x = vtysh(h2, "show evpn mac vni 100 mac %s" % EP)[EP]
        return x if x["type"] == "remote" and \
            x.get("remoteVtep") == LOCAL and x["remoteSequence"] > seq0 and \
            tp.self_dst(h2, EP) == [LOCAL] and \
            tp.master_dev(h2, EP) == "vxlan100" else None
    m = wait(moved_to_1, "host 2 points EP at %s (sequence %d > %d)" % (
        LOCAL, 1 + seq0, seq0))
    seq1 = m["remoteSequence"]
    fs = [frame(EP, G1, 75, b"g1 to moved ep")]
    net.exchange("g1 -> EP (now on g2)",
                 lambda: g["g1"].txq.tx(fs[0]), {"g2": fs})
    ep_learn()

    def back_on_2():
        x = vtysh(h2, "show evpn mac vni 100 mac %s" % EP)[EP]
        return x["type"] == "local" and x["localSequence"] > seq1 and \
            tp.master_dev(h1, EP) == "vxlan100" and is_evpn(d, EP, PEER)
    wait(back_on_2, "EP back behind host 2: host 2 local (sequence > %d), "
         "host 1's bridge on vxlan100, vhostd vx0 vtep %s evpn" % (
             seq1, PEER))
    hold(lambda: is_evpn(d, EP, PEER) and EP not in tp.vhd_macs() and
         tp.master_dev(h1, EP) == "vxlan100", 2,
         "EP stays evpn in vhostd and off vhd100")
    print("ok: EP stayed behind host 2 for 2 s")
    fs = [frame(EP, G1, 80, b"g1 to ep again")]
    net.exchange("g1 -> EP (back behind host 2)",
                 lambda: g["g1"].txq.tx(fs[0]), {"ep": fs})

    # 6. Withdrawal: host 2's bgpd stops.
    vt.check(frr_stop(h2, "bgpd"), "host 2's bgpd was not running")

    def withdrawn():
        js = d.ctl("port/show", "vx0")
        ev = js.get("evpn") or {}
        return not any(e.get("evpn") for e in d.ctl("fdb/show", "br0")) and \
            PEER not in {r["ip"] for r in js["remotes"]} and \
            ev.get("remote_macs") == 0 and ev.get("flood_vteps") == 0
    wait(withdrawn, "host 2's routes withdrawn: no evpn entry, no VTEP %s "
         "in vhostd" % PEER)
    expect(not [e for e in tp.fdb(h1, "vxlan100") if e.get("dst")],
           "host 1's vxlan100 still has: %r" % tp.fdb(h1, "vxlan100"))
    fs = [frame(vt.BCAST, G1, 110, b"g1 bcast, withdrawn")]
    net.exchange("g1 broadcast after the withdrawal: g2 only",
                 lambda: g["g1"].txq.tx(fs[0]), {"g2": fs})

    # 7. Clean stop: vhostd's entries leave vhd100.
    expect(tp.vhd_macs() == {G1, G2}, "host 1's vhd100 before the stop: %r"
           " (wanted G1, G2)" % tp.vhd_macs())
    for x in g.values():
        x.close()
    ep.s.close()
    d.stop_clean(base)
    print("ok: vhostd stopped cleanly, mbufs back")
    left = tp.vhd_macs()
    expect(not left, "vhostd's entries left on vhd100: %r" % left)
    print("ok: vhd100 empty after the stop")

    def zebra_local():
        """Host 1's zebra's local MACs (it prints nothing, not JSON, when
        the VNI has no MAC at all)."""
        s = vtysh(h1, "show evpn mac vni 100", js=False, suffix=" json")
        macs = json.loads(s).get("macs", {}) if s.strip() else {}
        return {k for k, v in macs.items() if v.get("type") == "local"}
    try:
        wait(lambda: not zebra_local(), "host 1's zebra: no local MAC "
             "left (withdrawn)", 5)
    except vt.Failure as e:
        expect(False, "%s: %r" % (e, zebra_local()))

    # Teardown, checked: no FRR daemon, netns or run dir left.
    for ns in (h1, h2):
        frr_down(ns)
    for n in (h1, h2, tp.ep):
        subprocess.call(["ip", "netns", "del", n])
    alive = [x for x in tp.frr_pids if os.path.exists("/proc/%d" % x[2])]
    expect(not alive, "FRR daemons left: %r" % alive)
    nsl = out("ip", "netns", "list")
    expect(not any(n in nsl for n in (h1, h2, tp.ep)), "netns left: %s" % nsl)
    expect(not any(os.path.exists(run_dir(n)) for n in (h1, h2)),
           "FRR run dirs left")
    print("ok: no FRR daemon, netns or run dir left (%.1f s)" % (
        time.monotonic() - t0))


if __name__ == "__main__":
    vt.run(test_evpn)
