#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The control socket against a running vhostd with testpmd guests: every
command and its real effect on the switch, every error path (a JSON-RPC
error a person understands, and nothing changed: `config show` byte for
byte, the port and bridge lists, mbufs in use), the wire protocol's edge
cases (malformed JSON, a request over 64 KiB, a half request, a client gone
before its reply, too many clients), and vhostctl's output and exit codes.

Topology: learning bridge br0 = guests g1, g2 (testpmd, pcap mode) + phy
(af_packet on a veth whose far end this test drives). At run time: a
vhost-user port g3 with its own guest, an af_packet port phy2 on a second
veth, bridges br1 (xconnect) and br2 (mac-aging=1). VHD_LCORES=0,1 runs
it with two datapath lcores. The vhostctl checks run when it is built.
"""
import json
import errno
import os
import socket
import stat
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from vhdtest import (BCAST, VHOSTCTL, VHOSTD, Failure, Guest,  # noqa: E402
                     Vhostd, check, frame, run, wait_until)

P = "02:00:00:00:00:01"    # behind phy
G3 = "02:00:00:00:03:03"   # the run-time guest g3
S = "02:00:00:00:05:05"    # a static entry
Q = "02:00:00:00:06:06"    # behind phy2
L = "02:00:00:00:07:07"    # learned on br2, to age out

LCORES = os.environ.get("VHD_LCORES", "1")
E_PARSE, E_REQUEST, E_METHOD, E_PARAMS, E_FAILED = (-32700, -32600, -32601,
                                                    -32602, -32000)

COMMANDS = ["list-commands", "bridge/add", "bridge/del", "bridge/list",
            "bridge/show", "port/add", "port/del", "port/list", "port/show",
            "fdb/show", "fdb/add", "fdb/del", "fdb/flush", "stats",
            "stats/clear", "lcores", "rxq/rebalance", "capture", "config/show",
            "config/save", "info", "log/list", "log/set"]
STATS_KEYS = {"rx_packets", "rx_bytes", "tx_packets", "tx_bytes",
              "drop_no_dest", "drop_invalid", "drop_not_ready",
              "drop_tx_full", "drop_vlan", "drop_no_mbuf",
              "drop_spoof", "drop_mtu", "drop_policed", "drop_bad_offload",
              "drop_vxlan", "drop_not_vxlan", "drop_no_neigh",
              "rx_tso", "rx_csum_partial", "tx_segmented", "tx_segments",
              "tx_sw_csum"}


# ---------------------------------------------------------------- helpers

class Conn:
    """A raw client connection: send bytes or objects, read replies."""

    def __init__(self, d, timeout=10):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(d.control)  # blocking: waits for room in the backlog
        self.s.settimeout(timeout)
        self.buf = b""

    def send(self, x):
        if not isinstance(x, bytes):
            x = json.dumps(x).encode() + b"\n"
        self.s.sendall(x)

    def reply(self):
        """The next reply (one JSON object and a newline); None at EOF."""
        while b"\n" not in self.buf:
            chunk = self.s.recv(1 << 20)
            if not chunk:
                check(not self.buf, "EOF inside a reply: %r" % self.buf[:200])
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line.decode())

    def eof(self, timeout=5):
        """True if the server closed the connection (nothing more sent)."""
        self.s.settimeout(timeout)
        try:
            data = self.s.recv(4096)
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False
        return data == b"" and not self.buf

    def close(self, rst=False):
        if rst:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                              struct.pack("ii", 1, 0))
        self.s.close()


def req(method, params=None, rid=1):
    r = {"jsonrpc": "2.0", "id": rid, "method": method}
    if params is not None:
        r["params"] = params
    return r


def state(d):
    """What a refused change must leave as it was."""
    return (d.ctl("config/show")["config"],
            [p["name"] for p in d.ctl("port/list")],
            [(b["name"], b["ports"]) for b in d.ctl("bridge/list")])


def refused(d, method, params, code=E_FAILED, errname=None, want=(),
            mbufs=False):
    """METHOD(PARAMS) fails with CODE (and errno ERRNAME), its message
    says every string of WANT, and nothing changes."""
    before = state(d)
    m0 = d.mbufs_in_use() if mbufs else None
    r = d.rpc(method, *params)
    what = "%s %s" % (method, params)
    check("error" in r and "result" not in r, "%s: not refused: %s" %
          (what, r))
    e = r["error"]
    check(r.get("id") == 1 and r.get("jsonrpc") == "2.0",
          "%s: reply envelope: %s" % (what, r))
    check(e.get("code") == code, "%s: code %s, wanted %d: %s" %
          (what, e.get("code"), code, e))
    msg = e.get("message", "")
    check(isinstance(msg, str) and len(msg) > 5, "%s: no message: %s" %
          (what, e))
    for w in (want if isinstance(want, (list, tuple)) else [want]):
        check(w in msg, "%s: message %r lacks %r" % (what, msg, w))
    if code == E_FAILED:
        data = e.get("data") or {}
        check(isinstance(data.get("errno"), int) and data["errno"] > 0,
              "%s: no errno in %s" % (what, e))
        if errname:
            check(data.get("error") == errname,
                  "%s: errno %s (%s), wanted %s: %r" %
                  (what, data.get("errno"), data.get("error"), errname,
                   msg))
    after = state(d)
    check(after[0] == before[0], "%s changed config show:\n%s\n---\n%s" %
          (what, before[0], after[0]))
    check(after[1:] == before[1:], "%s changed ports/bridges: %s -> %s" %
          (what, before[1:], after[1:]))
    if mbufs:
        wait_until(lambda: d.mbufs_in_use() == m0, 10,
                   "%s: mbufs in use back at %d" % (what, m0))
    print("ok: refused %s -> %s %s" % (what, e.get("code"), msg[:100]))
    return e


def frames_at(guest, n, what, timeout=20):
    wait_until(lambda: len(guest.received()) >= n, timeout, what)
    return guest.received()


class Phy:
    """A RawSocket whose received frames accumulate."""

    def __init__(self, raw):
        self.raw = raw
        self.got = []
        # RawSocket's socket sees every interface between socket() and
        # bind(): drop what it may have queued then (another test's
        # traffic).
        raw.recv_all(0.1)

    def send(self, frames):
        self.raw.send(frames)

    def poll(self, t=0.05):
        self.got += self.raw.recv_all(t)
        return self.got


def wait_frames(ph, n, what, timeout=20):
    wait_until(lambda: len(ph.poll()) >= n, timeout, what)
    return ph.got


def lcore_rxqs(d):
    lc = d.ctl("lcores")
    check(isinstance(lc, list) and lc, "lcores: %s" % lc)
    seen = []
    for e in lc:
        check(isinstance(e.get("lcore"), int) and
              isinstance(e.get("cpu"), int), "lcores entry: %s" % e)
        check(isinstance(e.get("busy_pct"), (int, float)) and
              0 <= e["busy_pct"] <= 100, "lcores busy_pct: %s" % e)
        check(isinstance(e.get("pps"), (int, float)) and e["pps"] >= 0,
              "lcores pps: %s" % e)
        seen += [(q["port"], q["queue"]) for q in e["rxqs"]]
    check(len(seen) == len(set(seen)),
          "an rx queue polled by two lcores: %s" % lc)
    return set(seen)


def vhostctl_ok():
    return os.path.exists(VHOSTCTL)


# ---------------------------------------------------------------- the test

def test_ctl(t):
    tag = t.tag[:10]
    phy = Phy(t.veth("%sa" % tag, "%sb" % tag))
    phy2 = Phy(t.veth("%sc" % tag, "%sd" % tag))
    phy_dev = "net_af_packet_%s,iface=%sa" % (t.tag, tag)
    phy2_dev = "net_af_packet_%sx,iface=%sc" % (t.tag, tag)
    vh = lambda n: {"type": "vhost-user", "bridge": "br0",  # noqa: E731
                    "path": t.path(n + ".sock")}
    d = Vhostd(t, {"br0": {"mode": "learning"}},
               {"g1": vh("g1"), "g2": vh("g2"),
                "phy": {"type": "ethdev", "bridge": "br0",
                        "devargs": phy_dev}}, lcores=LCORES).start()
    base = d.mbufs_in_use()
    g1 = Guest(t, "g1", t.path("g1.sock")).start()
    g2 = Guest(t, "g2", t.path("g2.sock")).start()
    d.wait_up("g1", "g2")

    # ------------------------------------------------ read-only commands
    cmds = d.ctl("list-commands")
    names = [c["name"] for c in cmds]
    check(sorted(names) == sorted(COMMANDS) and
          len(names) == len(set(names)), "list-commands: %s" % names)
    check(all(isinstance(c["usage"], str) and c["help"] for c in cmds),
          "list-commands: usage/help: %s" % cmds)

    bl = d.ctl("bridge/list")
    check(bl == [{"name": "br0", "mode": "learning", "ports": 3,
                  "fdb_entries": 0}], "bridge list: %s" % bl)
    bs = d.ctl("bridge/show", "br0")
    check(bs["name"] == "br0" and bs["mode"] == "learning" and
          bs["mac_aging"] == 300 and bs["mac_table_size"] == 8192 and
          sorted(bs["ports"]) == ["g1", "g2", "phy"] and
          bs["fdb_entries"] == 0 and
          all(isinstance(bs[k], int) for k in
              ("learned", "moved", "aged", "learn_table_full", "flooded")),
          "bridge show br0: %s" % bs)

    pl = d.ctl("port/list")
    check([(p["name"], p["bridge"], p["type"], p["state"]) for p in pl] ==
          [("g1", "br0", "vhost-user", "up"), ("g2", "br0", "vhost-user",
                                               "up"),
           ("phy", "br0", "ethdev", "up")], "port list: %s" % pl)
    check(all(isinstance(p[k], int) for p in pl
              for k in ("rx_packets", "tx_packets", "drops")),
          "port list counters: %s" % pl)
    ps = d.ctl("port/show", "g1")
    check(ps["name"] == "g1" and ps["bridge"] == "br0" and
          ps["type"] == "vhost-user" and ps["state"] == "up" and
          ps["path"] == t.path("g1.sock") and ps["mode"] == "server" and
          ps["connected"] is True and ps["queue_pairs"] == 1 and
          ps["rxq_enabled"] == [0] and ps["txq_enabled"] == [0] and
          isinstance(ps["numa_node"], int) and ps["numa_node"] >= 0 and
          ps["connects"] == 1 and ps["last_error"] is None and
          set(ps["stats"]) == STATS_KEYS, "port show g1: %s" % ps)
    check("VIRTIO_F_VERSION_1" in ps["features"] and
          all(isinstance(f, str) and f.startswith(("VIRTIO", "VHOST"))
              for f in ps["features"]),
          "port show g1: features not by name: %s" % ps["features"])
    ps = d.ctl("port/show", "phy")
    check(ps["type"] == "ethdev" and ps["devargs"] == phy_dev and
          isinstance(ps["ethdev_port"], int) and ps["rx_queues"] == 1 and
          ps["tx_queues"] == 1 and isinstance(ps["numa_node"], int) and
          ps["state"] == "up" and ps["last_error"] is None and
          "path" not in ps and set(ps["stats"]) == STATS_KEYS | {
              "eth_oerrors", "eth_ierrors", "eth_imissed", "eth_rx_nombuf"},
          "port show phy: %s" % ps)
    check(d.ctl("fdb/show") == [] and d.ctl("fdb/show", "br0") == [],
          "fdb not empty at start")
    st = d.ctl("stats")
    check([s["port"] for s in st] == ["g1", "g2", "phy"] and
          all(set(s) == STATS_KEYS | {"port"} for s in st),
          "stats: %s" % st)
    check(lcore_rxqs(d) == {("g1", 0), ("g2", 0), ("phy", 0)},
          "lcores: %s" % d.ctl("lcores"))
    conf0 = d.ctl("config/show")["config"]
    for sec in ("[bridge br0]", "[port g1]", "[port g2]", "[port phy]",
                "path = %s" % t.path("g1.sock"), "devargs = %s" % phy_dev):
        check(sec in conf0, "config show lacks %r:\n%s" % (sec, conf0))

    # ------------------------------------------------ refused, unchanged
    errors_protocol(d)
    errors_bridge(d)
    errors_port(t, d, phy_dev)
    errors_fdb_stats_config(t, d)

    # ------------------------------------------------ bridges at run time
    r = d.ctl("bridge/add", "br1", "mode=xconnect")
    check(r["name"] == "br1" and r["mode"] == "xconnect" and
          r["ports"] == [], "bridge add br1: %s" % r)
    r = d.ctl("bridge/add", "br2", "mac-aging=1", "mac-table-size=64")
    check(r["name"] == "br2" and r["mode"] == "learning" and
          r["mac_aging"] == 1 and r["mac_table_size"] == 64 and
          r["ports"] == [] and r["fdb_entries"] == 0,
          "bridge add br2: %s" % r)
    check([b["name"] for b in d.ctl("bridge/list")] == ["br0", "br1", "br2"],
          "bridge list: %s" % d.ctl("bridge/list"))
    c = d.ctl("config/show")["config"]
    check("[bridge br1]\nmode = xconnect" in c and "[bridge br2]" in c and
          "mac-aging = 1\n" in c and "mac-table-size = 64\n" in c,
          "config show lacks the new bridges:\n%s" % c)
    refused(d, "bridge/add", ["br1"], errname="EEXIST", want="br1")
    refused(d, "fdb/add", ["br1", S, "g1"], errname="EINVAL",
            want=["br1", "xconnect"])
    check(d.ctl("fdb/show", "br1") == [], "fdb show of an xconnect")
    refused(d, "fdb/add", ["br2", S, "g1"], errname="EINVAL",
            want=["g1", "not on bridge br2"])
    # xconnect: at most two ports (client mode: no peer needed).
    for n in ("x1", "x2"):
        r = d.ctl("port/add", n, "bridge=br1", "type=vhost-user",
                  "path=" + t.path(n + ".sock"), "mode=client")
        check(r["mode"] == "client" and r["state"] == "down" and
              r["connected"] is False, "port add %s: %s" % (n, r))
        # Nobody listens there: port show says why it is down.
        le = r["last_error"] or {}
        check("cannot connect to " + t.path(n + ".sock") in
              le.get("message", "") and le.get("errno") == errno.ENOENT,
              "port %s's last_error: %s" % (n, le))
    refused(d, "port/add", ["x3", "bridge=br1", "type=vhost-user",
                            "path=" + t.path("x3.sock"), "mode=client"],
            want="[port x3] bridge: xconnect bridge 'br1' has two ports "
                 "already")
    # A second connection to g1's socket is refused: port show says so,
    # with its errno, and g1's guest keeps its port.
    intruder = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    intruder.connect(t.path("g1.sock"))
    le = wait_until(lambda: d.ctl("port/show", "g1")["last_error"], 10,
                    "g1's last_error after a second connection")
    intruder.close()
    check("second connection" in le.get("message", "") and
          le.get("errno") == 16, "last_error: %s" % le)
    ps = d.ctl("port/show", "g1")
    check(ps["state"] == "up" and ps["connected"] and ps["connects"] == 1,
          "g1 after the intruder: %s" % ps)
    refused(d, "bridge/del", ["br1"], errname="EBUSY",
            want=["br1", "x1", "x2"])
    for n in ("x1", "x2"):
        check(d.ctl("port/del", n) is None, "port del %s" % n)
    check(d.ctl("bridge/del", "br1") is None, "bridge del br1")
    check([b["name"] for b in d.ctl("bridge/list")] == ["br0", "br2"],
          "br1 still listed")
    refused(d, "bridge/show", ["br1"], errname="ENOENT", want="br1")

    # ------------------------------------------------ a vhost-user port
    t0 = time.monotonic()
    r = d.ctl("port/add", "g3", "bridge=br0", "type=vhost-user",
              "path=" + t.path("g3.sock"))
    check(r["name"] == "g3" and r["bridge"] == "br0" and
          r["type"] == "vhost-user" and r["state"] == "down" and
          r["path"] == t.path("g3.sock") and r["mode"] == "server" and
          r["connected"] is False, "port add g3: %s" % r)
    wait_until(lambda: stat.S_ISSOCK(os.stat(t.path("g3.sock")).st_mode),
               1.0, "g3's socket within a second")
    check(time.monotonic() - t0 < 2, "port add took %.1fs" %
          (time.monotonic() - t0))
    check("g3" in d.ctl("bridge/show", "br0")["ports"], "g3 not in br0")
    hello = frame(BCAST, G3, size=70, payload=b"hello from g3")
    g3 = Guest(t, "g3", t.path("g3.sock"), frames=[hello]).start()
    d.wait_up("g3")
    ps = d.ctl("port/show", "g3")
    check(ps["state"] == "up" and ps["connected"] is True and
          ps["queue_pairs"] == 1 and ps["rxq_enabled"] == [0] and
          "VIRTIO_F_VERSION_1" in ps["features"], "port show g3: %s" % ps)
    # g3's broadcast floods to g1, g2 and phy.
    check(frames_at(g1, 1, "g3's hello at g1") == [hello] and
          frames_at(g2, 1, "g3's hello at g2") == [hello],
          "g3's hello not byte for byte at g1/g2")
    check(wait_frames(phy, 1, "g3's hello at phy") == [hello],
          "phy: %s" % phy.got)
    fdb = d.ctl("fdb/show", "br0")
    check([(e["mac"], e["port"], e["static"]) for e in fdb] ==
          [(G3, "g3", False)] and isinstance(fdb[0]["age"], int) and
          fdb[0]["bridge"] == "br0", "fdb show br0: %s" % fdb)
    # A broadcast from phy reaches the run-time port, byte for byte.
    bc1 = frame(BCAST, P, size=120, payload=b"to the new port")
    phy.send([bc1])
    check(frames_at(g3, 1, "phy's broadcast at g3") == [bc1],
          "g3 got %s" % g3.received())
    check(frames_at(g1, 2, "bc1 at g1")[1] == bc1 and
          frames_at(g2, 2, "bc1 at g2")[1] == bc1, "bc1 at g1/g2")
    check(lcore_rxqs(d) == {("g1", 0), ("g2", 0), ("phy", 0), ("g3", 0)},
          "lcores with g3: %s" % d.ctl("lcores"))

    # ------------------------------------------------ an ethdev port
    r = d.ctl("port/add", "phy2", "bridge=br0", "type=ethdev",
              "devargs=" + phy2_dev)
    t0 = time.monotonic()
    check(r["name"] == "phy2" and r["type"] == "ethdev" and
          r["devargs"] == phy2_dev and r["rx_queues"] == 1 and
          r["state"] == "up", "port add phy2: %s" % r)
    bc2 = frame(BCAST, P, size=200, payload=b"to phy2")
    phy.send([bc2])
    wait_frames(phy2, 1, "bc2 at phy2 within a second", timeout=1.0)
    check(phy2.got == [bc2], "phy2 got %s" % phy2.got)
    check(time.monotonic() - t0 < 1.0, "phy2 took %.2fs" %
          (time.monotonic() - t0))
    for g, n in ((g1, 3), (g2, 3), (g3, 2)):
        check(frames_at(g, n, "bc2 at %s" % g.name)[-1] == bc2,
              "bc2 at %s" % g.name)
    bc3 = frame(BCAST, Q, size=90, payload=b"from phy2")
    phy2.send([bc3])
    for g, n in ((g1, 4), (g2, 4), (g3, 3)):
        check(frames_at(g, n, "bc3 at %s" % g.name)[-1] == bc3,
              "bc3 at %s" % g.name)
    check(wait_frames(phy, 2, "bc3 at phy")[-1] == bc3, "bc3 at phy")
    check(lcore_rxqs(d) == {("g1", 0), ("g2", 0), ("phy", 0), ("g3", 0),
                            ("phy2", 0)}, "lcores: %s" % d.ctl("lcores"))
    fdb = {e["mac"]: e["port"] for e in d.ctl("fdb/show")}
    check(fdb == {G3: "g3", P: "phy", Q: "phy2"}, "fdb show: %s" % fdb)

    # ------------------------------------------------ port del
    n3 = len(g3.received())
    check(d.ctl("port/del", "g3") is None, "port del g3")
    wait_until(lambda: "link state change" in g3.log() or
               "is down" in g3.log(), 10, "g3's guest to see link down")
    check(not os.path.exists(t.path("g3.sock")), "g3's socket left behind")
    refused(d, "port/show", ["g3"], errname="ENOENT", want="g3")
    fdb = d.ctl("fdb/show")
    check(all(e["port"] != "g3" for e in fdb) and
          G3 not in [e["mac"] for e in fdb], "fdb after port del: %s" % fdb)
    check("g3" not in d.ctl("bridge/show", "br0")["ports"] and
          "g3" not in [p["name"] for p in d.ctl("port/list")] and
          "[port g3]" not in d.ctl("config/show")["config"],
          "g3 still listed")
    check(lcore_rxqs(d) == {("g1", 0), ("g2", 0), ("phy", 0), ("phy2", 0)},
          "lcores after port del: %s" % d.ctl("lcores"))
    bc4 = frame(BCAST, P, size=66, payload=b"after del")
    uc4 = frame(G3, P, size=67, payload=b"to g3's old MAC")
    phy.send([bc4, uc4])
    for g, n in ((g1, 6), (g2, 6)):
        check(frames_at(g, n, "bc4+uc4 at %s" % g.name)[-2:] == [bc4, uc4],
              "bc4/uc4 at %s" % g.name)
    check(wait_frames(phy2, 3, "bc4+uc4 at phy2")[1:] == [bc4, uc4],
          "phy2: %s" % phy2.got)
    time.sleep(0.5)
    check(len(g3.received()) == n3, "the deleted port's guest still gets "
          "frames: %d, had %d" % (len(g3.received()), n3))
    g3.stop()

    # ------------------------------------------------ static FDB entries
    check(d.ctl("fdb/add", "br0", S, "g2") is None, "fdb add")
    fdb = [e for e in d.ctl("fdb/show", "br0") if e["mac"] == S]
    check(fdb == [{"bridge": "br0", "vlan": 0, "mac": S, "port": "g2",
                   "age": None, "static": True}], "static entry: %s" % fdb)
    moved = d.ctl("bridge/show", "br0")["moved"]
    u1 = frame(S, P, size=80, payload=b"to the static MAC")
    phy.send([u1])
    check(frames_at(g2, 7, "u1 at g2")[-1] == u1, "u1 not at g2")
    # S shows up behind phy: learning must not move it.
    bc5 = frame(BCAST, S, size=81, payload=b"S seen on phy")
    phy.send([bc5])
    check(frames_at(g2, 8, "bc5 at g2")[-1] == bc5, "bc5 at g2")
    check(frames_at(g1, 7, "bc5 at g1")[-1] == bc5, "bc5 at g1")
    u2 = frame(S, P, size=82, payload=b"to the static MAC again")
    phy.send([u2])
    check(frames_at(g2, 9, "u2 at g2")[-1] == u2, "u2 not at g2")
    time.sleep(0.3)
    check(len(g1.received()) == 7, "unicast to the static MAC reached g1: "
          "%d frames" % len(g1.received()))
    check(len(wait_frames(phy2, 4, "bc5 at phy2")) == 4,
          "the static MAC's unicast reached phy2: %s" % phy2.got)
    fdb = [e for e in d.ctl("fdb/show", "br0") if e["mac"] == S]
    check(fdb and fdb[0]["port"] == "g2" and fdb[0]["static"],
          "static entry moved by learning: %s" % fdb)
    check(d.ctl("bridge/show", "br0")["moved"] == moved,
          "moved counter went up for a static entry")
    # fdb flush removes the learned entries only.
    learned = [e for e in d.ctl("fdb/show") if not e["static"]]
    check(len(learned) == 2, "learned: %s" % learned)
    r = d.ctl("fdb/flush", "br0")
    check(r == {"flushed": 2}, "fdb flush br0: %s" % r)
    fdb = d.ctl("fdb/show")
    check([(e["mac"], e["port"], e["static"]) for e in fdb] ==
          [(S, "g2", True)], "after flush: %s" % fdb)
    check(d.ctl("fdb/flush") == {"flushed": 0}, "second flush")
    check(d.ctl("bridge/show", "br0")["fdb_entries"] == 1, "fdb_entries")
    check(d.ctl("fdb/del", "br0", S) is None, "fdb del")
    check(d.ctl("fdb/show") == [], "fdb after del: %s" % d.ctl("fdb/show"))
    refused(d, "fdb/del", ["br0", S], errname="ENOENT", want=S)

    # ------------------------------------------------ stats, stats clear
    nports = len(d.ctl("port/list"))
    check(d.ctl("stats/clear") == {"cleared": nports}, "stats clear")
    st = {s["port"]: s for s in d.ctl("stats")}
    check(all(v == 0 for s in st.values() for k, v in s.items()
              if k != "port"), "stats after clear: %s" % st)
    tot_phy = d.port("phy")["rx_packets"]
    burst = [frame(BCAST, P, size=100 + i, payload=b"count") for i in
             range(5)]
    nbytes = sum(map(len, burst))
    phy.send(burst)
    wait_until(lambda: len(g1.received()) == 12 and
               len(g2.received()) == 14, 20, "the burst at g1 and g2")
    wait_frames(phy2, 9, "the burst at phy2")

    want = {"phy": (5, nbytes, 0, 0), "g1": (0, 0, 5, nbytes),
            "g2": (0, 0, 5, nbytes), "phy2": (0, 0, 5, nbytes)}
    last = []

    def stats_ok():
        st = d.ctl("stats")
        last[:] = [st]
        got = {s["port"]: (s["rx_packets"], s["rx_bytes"], s["tx_packets"],
                           s["tx_bytes"]) for s in st}
        return got == want and not any(s[k] for s in st for k in STATS_KEYS
                                       if k.startswith("drop"))
    try:
        wait_until(stats_ok, 10, "stats: exactly the 5 frames")
    except Failure:
        raise Failure("stats since the clear: %s, wanted (rx, rx_bytes, tx, "
                      "tx_bytes) %s and no drops" % (last, want))
    check(d.ctl("stats", "phy") == [s for s in d.ctl("stats")
                                    if s["port"] == "phy"], "stats phy")
    check(d.port("phy")["rx_packets"] == tot_phy + 5,
          "telemetry lost its totals: %s" % d.port("phy"))
    ps = d.ctl("port/show", "phy")
    check(ps["stats"]["rx_packets"] == tot_phy + 5,
          "port show phy has totals: %s" % ps["stats"])
    check(d.ctl("stats/clear", "g1") == {"cleared": 1}, "stats clear g1")
    check(d.ctl("stats", "g1")[0]["tx_packets"] == 0 and
          d.ctl("stats", "g2")[0]["tx_packets"] == 5, "stats clear g1 only")

    # ------------------------------------------------ aging on br2
    check(d.ctl("port/del", "phy2") is None, "port del phy2")
    check(all(e["port"] != "phy2" for e in d.ctl("fdb/show")), "phy2 fdb")
    r = d.ctl("port/add", "phy2", "bridge=br2", "type=ethdev",
              "devargs=" + phy2_dev, "queues=1", "rx-desc=512",
              "tx-desc=256")
    check(r["bridge"] == "br2" and r["state"] == "up",
          "phy2 again, on br2: %s" % r)
    c = d.ctl("config/show")["config"]
    check("[port phy2]\nbridge = br2\ntype = ethdev\ndevargs = %s\nqueues = "
          "1\nrx-desc = 512\ntx-desc = 256\n" % phy2_dev in c,
          "config show of phy2:\n%s" % c)
    check(d.ctl("fdb/add", "br2", S, "phy2") is None, "static on br2")
    # br2 ages entries after a second: one frame's entry can come and go
    # between two looks on a slow (ASan) build, so L sends until seen.
    wait_until(lambda: phy2.send([frame(BCAST, L, size=64)]) or
               L in [e["mac"] for e in d.ctl("fdb/show", "br2")],
               10, "L learned on br2")
    wait_until(lambda: L not in [e["mac"] for e in d.ctl("fdb/show", "br2")],
               15, "L aged out of br2")
    time.sleep(2.5)
    fdb = d.ctl("fdb/show", "br2")
    check([(e["mac"], e["port"], e["static"], e["age"]) for e in fdb] ==
          [(S, "phy2", True, None)], "static entry aged: %s" % fdb)
    check(d.ctl("bridge/show", "br2")["aged"] >= 1, "br2 aged counter")
    check(d.ctl("port/del", "phy2") is None and
          d.ctl("bridge/del", "br2") is None, "br2 and phy2 deleted")
    check([(e["bridge"], e["mac"], e["port"]) for e in d.ctl("fdb/show")]
          == [("br0", P, "phy")], "fdb: %s" % d.ctl("fdb/show"))
    d.ctl("fdb/flush")

    # ------------------------------------------------ lcores, config
    time.sleep(1.5)
    check(lcore_rxqs(d) == {("g1", 0), ("g2", 0), ("phy", 0)},
          "lcores at the end: %s" % d.ctl("lcores"))
    c = d.ctl("config/show")["config"]
    check(c == conf0, "config show after everything was undone:\n%s\n---\n"
          "%s" % (conf0, c))
    saved = t.path("saved.conf")
    check(d.ctl("config/save", saved) == {"file": saved}, "config save")
    with open(saved) as f:
        check(f.read() == c, "saved file is not config show")
    p = subprocess.run([VHOSTD, "--config", saved, "--check"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=60)
    check(p.returncode == 0, "vhostd --check refuses the saved config: %s" %
          p.stdout.decode(errors="replace"))
    check(d.ctl("config/save") == {"file": d.conf}, "config save (default)")
    with open(d.conf) as f:
        check(f.read() == c, "config save did not write %s" % d.conf)

    # ------------------------------------------------ a bad device
    refused(d, "port/add", ["bad", "bridge=br0", "type=ethdev",
                            "devargs=net_nosuchdriver0"],
            want=["port bad", "net_nosuchdriver0"], mbufs=True)
    check("bad" not in [p["name"] for p in d.ctl("port/list")],
          "the bad device's port stayed")

    wire(t, d)
    if vhostctl_ok():
        cli(t, d, phy)
    else:
        print("SKIP: vhostctl checks (%s not built)" % VHOSTCTL)

    check(d.ctl("config/show")["config"] == conf0, "config changed")
    for g in (g1, g2):
        g.stop()
    d.stop_clean(base)


# ---------------------------------------------------------------- errors

def errors_protocol(d):
    refused(d, "bogus", [], code=E_METHOD, want="unknown command 'bogus'")
    refused(d, "port", [], code=E_METHOD, want="port")
    refused(d, "PORT/LIST", [], code=E_METHOD, want="PORT/LIST")
    refused(d, "port/ add", ["x"], code=E_METHOD)
    usage = {"bridge/add": ([], ["a", "b", "c", "d", "e"]),
             "bridge/del": ([], ["a", "b"]),
             "bridge/list": (["a"],),
             "bridge/show": ([], ["a", "b"]),
             "port/add": ([], ["a"] * 28),
             "port/del": ([], ["a", "b"]),
             "port/list": (["a"],),
             "port/show": ([], ["a", "b"]),
             "fdb/show": (["a", "b"],),
             "fdb/add": ([], ["a"], ["a", "b"], ["a", "b", "c", "d", "e"]),
             "fdb/del": ([], ["a"], ["a", "b", "c", "d"]),
             "fdb/flush": (["a", "b"],),
             "stats": (["a", "b"],),
             "stats/clear": (["a", "b"],),
             "lcores": (["a"],),
             "info": (["a"],),
             "rxq/rebalance": (["a"],),
             "capture": ([], ["a"], ["a"] * 6),
             "config/show": (["a"],),
             "config/save": (["a", "b"],),
             "list-commands": (["a"],),
             "log/list": (["a", "b"],),
             "log/set": ([], ["a", "b", "c"])}
    check(sorted(usage) == sorted(COMMANDS), "usage table")
    for m, cases in usage.items():
        for params in cases:
            refused(d, m, params, code=E_PARAMS,
                    want="usage: %s" % m.replace("/", " "))


def errors_bridge(d):
    refused(d, "bridge/add", ["br0"], errname="EEXIST",
            want="bridge br0 exists")
    refused(d, "bridge/add", ["brx", "mode=hub"],
            want="[bridge brx] mode: expected 'learning' or 'xconnect'")
    refused(d, "bridge/add", ["brx", "colour=red"],
            want="[bridge brx] colour: unknown key")
    refused(d, "bridge/add", ["brx", "mac-aging=abc"],
            want="[bridge brx] mac-aging: 'abc' is not a number")
    refused(d, "bridge/add", ["brx", "mac-aging=-1"], want="mac-aging")
    refused(d, "bridge/add", ["brx", "mac-aging=99999999999999999999"],
            want="mac-aging")
    refused(d, "bridge/add", ["brx", "mac-table-size=1"],
            want="[bridge brx] mac-table-size: '1' is not a number from 16")
    refused(d, "bridge/add", ["brx", "mode"], want="key=value")
    refused(d, "bridge/add", ["brx", "=learning"], want="key=value")
    refused(d, "bridge/add", ["brx", "mode="], want="empty value")
    refused(d, "bridge/add", ["brx", "mode=learning", "mode=xconnect"],
            want="given twice")
    refused(d, "bridge/add", ["brx", "mode=learning\nx"], want="mode")
    refused(d, "bridge/add", ["bad name"], want="bridge name 'bad name'")
    refused(d, "bridge/add", ["a/b"], want="bridge name 'a/b'")
    refused(d, "bridge/add", [""], want="bridge name")
    refused(d, "bridge/add", ["b" * 200], want="bridge name")
    refused(d, "bridge/add", ["br\u00e9"], want="bridge name")
    refused(d, "bridge/del", ["nosuch"], errname="ENOENT",
            want="no bridge nosuch")
    e = refused(d, "bridge/del", ["br0"], errname="EBUSY",
                want=["bridge br0", "g1", "g2", "phy"])
    check(e["data"]["errno"] == 16, "EBUSY errno: %s" % e)
    refused(d, "bridge/show", ["nosuch"], errname="ENOENT",
            want="no bridge nosuch")


def errors_port(t, d, phy_dev):
    new = t.path("new.sock")
    vh = ["bridge=br0", "type=vhost-user", "path=" + new]
    eth = ["bridge=br0", "type=ethdev"]
    refused(d, "port/add", ["g1"] + vh, errname="EEXIST",
            want="port g1 exists")
    refused(d, "port/add", ["new", "bridge=nosuch", vh[1], vh[2]],
            want="[port new] bridge: no such bridge")
    refused(d, "port/add", ["new", vh[0], "type=tap", vh[2]],
            want="[port new] type: expected 'vhost-user' or 'ethdev'")
    refused(d, "port/add", ["new"] + vh + ["colour=red"],
            want="[port new] colour: unknown key")
    refused(d, "port/add", ["new"] + vh + ["devargs=net_null0"],
            want="[port new] devargs: unknown key")
    refused(d, "port/add", ["new"] + eth + ["devargs=net_null0",
                                            "path=" + new],
            want="[port new] path: unknown key")
    refused(d, "port/add", ["new", vh[0], vh[1]],
            want="[port new] path: missing required key")
    refused(d, "port/add", ["new", vh[0], vh[2]],
            want="[port new] type: missing required key")
    refused(d, "port/add", ["new", vh[1], vh[2]],
            want="[port new] bridge: missing required key")
    refused(d, "port/add", ["new"], want="missing required key")
    refused(d, "port/add", ["new"] + eth,
            want="[port new] devargs: missing required key")
    refused(d, "port/add", ["new", vh[0], vh[1], "path=rel.sock"],
            want="[port new] path: must be an absolute path")
    refused(d, "port/add", ["new"] + vh + ["mode=both"],
            want="[port new] mode: expected 'server' or 'client'")
    refused(d, "port/add", ["new"] + vh + ["path=/tmp/x.sock"],
            want="[port new] path: key given twice")
    refused(d, "port/add", ["new", vh[0], vh[1], "path=" +
                            t.path("g1.sock")],
            want="[port new] path: socket path already used by port 'g1'")
    refused(d, "port/add", ["new", vh[0], vh[1], "path=" +
                            t.path("g1.sock"), "mode=client"],
            want="[port new] path: socket path already used by port 'g1'")
    # The same sockets spelled otherwise: caught before anything connects
    # to them (g1's guest would see a second connection).
    for other in (t.dir + "/./g1.sock", t.dir + "//g1.sock"):
        refused(d, "port/add", ["new", vh[0], vh[1], "path=" + other],
                want="[port new] path: socket path already used by port "
                     "'g1'")
    refused(d, "port/add", ["new", vh[0], vh[1],
                            "path=" + t.dir + "/./vhostd.ctl"],
            want="[port new] path: that is the control socket's path")
    check(d.ctl("port/show", "g1")["last_error"] is None,
          "g1 disturbed by a refused port add: %s" %
          d.ctl("port/show", "g1")["last_error"])
    # 108 bytes: one more than sun_path holds.
    long_path = t.dir + "/" + "l" * (108 - len(t.dir) - 1)
    check(len(long_path) == 108, "long path")
    refused(d, "port/add", ["new", vh[0], vh[1], "path=" + long_path],
            want="[port new] path: too long for a unix socket")
    refused(d, "port/add", ["new", vh[0], vh[1],
                            "path=/nonexistent-vhd-dir/a.sock"],
            errname="ENOENT", want=["/nonexistent-vhd-dir",
                                    "No such file or directory"])
    regular = t.path("regular")
    open(regular, "w").close()
    refused(d, "port/add", ["new", vh[0], vh[1], "path=" + regular],
            errname="EEXIST", want="exists and is not a socket")
    check(os.path.isfile(regular), "the regular file was removed")
    # A socket another process listens on.
    busy = t.path("busy.sock")
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ls.bind(busy)
    ls.listen(4)
    refused(d, "port/add", ["new", vh[0], vh[1], "path=" + busy],
            errname="EADDRINUSE", want=[busy, "in use by another process"])
    cs = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    cs.settimeout(5)
    cs.connect(busy)  # still ours, still listening
    cs.close()
    ls.close()
    os.unlink(busy)
    # 107 bytes fits.
    ok_path = long_path[:-1]
    r = d.ctl("port/add", "longp", vh[0], vh[1], "path=" + ok_path)
    check(r["path"] == ok_path and os.path.exists(ok_path),
          "107-byte path: %s" % r)
    check(d.ctl("port/del", "longp") is None and
          not os.path.exists(ok_path), "port del longp")
    # Port names.
    for bad in ("a b", "a/b", "", "p" * 100, "x;y", "\u00fcber"):
        refused(d, "port/add", [bad] + vh, want="port name")
    # ethdev values.
    eth_ok = eth + ["devargs=net_null_vhd0"]
    for kv, w in (("queues=0", "[port new] queues: '0' is not a number"),
                  ("queues=abc", "[port new] queues: 'abc'"),
                  ("queues=1000", "queues"),
                  ("rx-desc=10", "[port new] rx-desc: '10' is not a number"),
                  ("tx-desc=99999", "[port new] tx-desc"),
                  ("rx-desc=", "[port new] rx-desc: empty value"),
                  ("queues=1 ", "queues")):
        refused(d, "port/add", ["new"] + eth_ok + [kv], want=w)
    refused(d, "port/add", ["new"] + eth + ["devargs=" + phy_dev],
            want="[port new] devargs: device already used by port 'phy'")
    refused(d, "port/del", ["nosuch"], errname="ENOENT",
            want="no port nosuch")
    refused(d, "port/show", ["nosuch"], errname="ENOENT",
            want="no port nosuch")
    check(not os.path.exists(new), "a refused port left its socket")


def errors_fdb_stats_config(t, d):
    refused(d, "fdb/show", ["nosuch"], errname="ENOENT", want="nosuch")
    refused(d, "fdb/add", ["nosuch", S, "g1"], errname="ENOENT",
            want="no bridge nosuch")
    refused(d, "fdb/add", ["br0", "zz:zz:zz:zz:zz:zz", "g1"],
            errname="EINVAL", want="'zz:zz:zz:zz:zz:zz' is not a MAC")
    refused(d, "fdb/add", ["br0", "02:00:00:00:05", "g1"], errname="EINVAL",
            want="not a MAC")
    refused(d, "fdb/add", ["br0", "", "g1"], errname="EINVAL",
            want="not a MAC")
    refused(d, "fdb/add", ["br0", "01:00:5e:00:00:01", "g1"],
            errname="EINVAL", want="not a unicast MAC")
    refused(d, "fdb/add", ["br0", BCAST, "g1"], errname="EINVAL",
            want="not a unicast MAC")
    refused(d, "fdb/add", ["br0", "00:00:00:00:00:00", "g1"],
            errname="EINVAL", want="not a unicast MAC")
    refused(d, "fdb/add", ["br0", S, "nosuch"], errname="ENOENT",
            want="no port nosuch")
    refused(d, "fdb/del", ["nosuch", S], errname="ENOENT", want="nosuch")
    refused(d, "fdb/del", ["br0", "garbage"], errname="EINVAL",
            want="not a MAC")
    refused(d, "fdb/del", ["br0", S], errname="ENOENT",
            want=["br0", "no entry", S])
    refused(d, "fdb/flush", ["nosuch"], errname="ENOENT", want="nosuch")
    refused(d, "stats", ["nosuch"], errname="ENOENT", want="no port nosuch")
    refused(d, "stats/clear", ["nosuch"], errname="ENOENT",
            want="no port nosuch")
    refused(d, "config/save", ["relative.conf"], errname="EINVAL",
            want="absolute path")
    refused(d, "config/save", ["/nonexistent-vhd-dir/x.conf"],
            errname="ENOENT", want="/nonexistent-vhd-dir")
    os.mkdir(t.path("adir"))
    refused(d, "config/save", [t.path("adir")], want=t.path("adir"))
    check(os.listdir(t.path("adir")) == [] and
          sorted(f for f in os.listdir(t.dir) if ".conf." in f) == [],
          "config save left a temporary file")


# ---------------------------------------------------------------- the wire

def wire(t, d):
    conf = d.ctl("config/show")["config"]
    # Requests back to back on one connection, with and without newlines,
    # and a notification in between: one reply per id, in order.
    c = Conn(d)
    c.send(b"".join(json.dumps(req("bridge/list", [], i)).encode()
                    for i in (10, 11)) +
           json.dumps({"jsonrpc": "2.0", "method": "port/list"}).encode() +
           b"\n\n" + json.dumps(req("stats", ["phy"], "s")).encode() + b" ")
    got = [c.reply() for _ in range(3)]
    check([r["id"] for r in got] == [10, 11, "s"] and
          all("result" in r for r in got), "pipelined: %s" % got)
    # Not JSON: -32700, id null; the connection goes on after the newline.
    c.send(b'{"jsonrpc": "2.0", "id": 1, "method": }\n')
    r = c.reply()
    check(r["error"]["code"] == E_PARSE and r["id"] is None and
          "parse error" in r["error"]["message"], "not JSON: %s" % r)
    c.send(b"\xff\xfe\x00garbage\n")
    r = c.reply()
    check(r["error"]["code"] == E_PARSE, "binary garbage: %s" % r)
    c.send(b'["batch"]\n')
    r = c.reply()
    check(r["error"]["code"] == E_REQUEST and "batch" in
          r["error"]["message"], "batch: %s" % r)
    for bad, w in (({"jsonrpc": "2.0", "id": 3, "params": []}, "method"),
                   ({"jsonrpc": "2.0", "id": 3, "method": 5}, "method"),
                   ({"jsonrpc": "2.0", "id": 3, "method": "stats",
                     "params": [1]}, "params"),
                   ({"jsonrpc": "2.0", "id": 3, "method": "stats",
                     "params": "phy"}, "params"),
                   ({"jsonrpc": "2.0", "id": [3], "method": "stats"}, "id")):
        c.send(bad)
        r = c.reply()
        check(r["error"]["code"] == E_REQUEST and w in
              r["error"]["message"], "%s: %s" % (bad, r))
    c.send(req("port/show", ["g1"], 12))
    r = c.reply()
    check(r["id"] == 12 and r["result"]["name"] == "g1",
          "served after errors: %s" % r)
    c.close()

    # A request over 64 KiB: -32600, then the connection is closed.
    c = Conn(d)
    big = json.dumps(req("port/show", ["x" * 70000], 5)).encode()
    try:
        c.send(big)
    except OSError:
        pass  # the server may close before it has read everything
    r = c.reply()
    check(r is not None and r["error"]["code"] == E_REQUEST and
          "65536" in r["error"]["message"], "big request: %s" % r)
    check(c.eof(), "connection left open after a too-big request")
    c.close()
    # Just under the limit is served.
    c = Conn(d)
    name = "y" * 60000
    c.send(req("port/show", [name], 6))
    r = c.reply()
    check(r["id"] == 6 and r["error"]["code"] == E_FAILED and
          "no port" in r["error"]["message"], "60 KB request: %s" % r)
    c.close()

    # A half request and a silent client do not hold anyone up; the half
    # request is answered once it is complete.
    half = json.dumps(req("bridge/show", ["br0"], 77)).encode()
    slow = Conn(d)
    slow.send(half[:25])
    silent = Conn(d)
    t0 = time.monotonic()
    for _ in range(10):
        d.ctl("port/list", timeout=2)
    check(time.monotonic() - t0 < 2, "others slowed down by a half request")
    slow.send(half[25:])
    r = slow.reply()
    check(r["id"] == 77 and r["result"]["name"] == "br0",
          "the completed half request: %s" % r)
    slow.close()
    silent.close()

    # Clients gone before their replies (some with a reset), with big
    # replies and requests left unread.
    for i in range(30):
        c = Conn(d)
        c.send(b"".join(json.dumps(req(m, [], i)).encode()
                        for m in ("config/show", "list-commands",
                                  "port/list", "lcores")))
        c.close(rst=i % 2 == 1)
    for i in range(5):
        c = Conn(d)
        c.send(json.dumps(req("port/show", ["g1"], i)).encode()[:-5])
        c.close(rst=True)
    check(d.proc.poll() is None, "vhostd died of clients that went away")
    check(d.ctl("config/show", timeout=5)["config"] == conf,
          "config changed by clients that went away")

    # More clients than it serves: the extra one is told so and closed;
    # everyone else is still served.
    time.sleep(0.5)  # the clients above are gone
    conns = [Conn(d) for _ in range(64)]
    time.sleep(0.3)
    extra = Conn(d)
    r = extra.reply()
    check(r is not None and "too many" in r["error"]["message"] and
          r["error"]["data"]["error"] == "EBUSY", "65th client: %s" % r)
    check(extra.eof(), "65th client not closed")
    extra.close()
    conns[10].send(req("bridge/list", [], 1))
    check(conns[10].reply()["result"][0]["name"] == "br0",
          "a client among 64 not served")
    for c in conns:
        c.close()
    wait_until(lambda: "result" in d.rpc("port/list", timeout=2), 5,
               "served once the 64 clients left")
    check(d.proc.poll() is None, "vhostd died")
    print("ok: wire protocol edge cases")


# ---------------------------------------------------------------- vhostctl

def cli(t, d, phy):
    conf = d.ctl("config/show")["config"]
    # --json prints the result as the server sent it.
    for args, method, params in (
            (["port", "show", "g1"], "port/show", ["g1"]),
            (["bridge", "show", "br0"], "bridge/show", ["br0"]),
            (["bridge", "list"], "bridge/list", []),
            (["config", "show"], "config/show", []),
            (["list-commands"], "list-commands", []),
            (["fdb", "show"], "fdb/show", [])):
        _, out, _ = d.vhostctl("--json", *args)
        want = d.ctl(method, *params)
        got = json.loads(out)
        if method == "port/show":  # counters may move between the two
            got.pop("stats")
            want.pop("stats")
        check(got == want, "vhostctl --json %s: %s, wanted %s" %
              (" ".join(args), got, want))
    # Human output: the names are there.
    _, out, _ = d.vhostctl("port", "list")
    check(all(n in out for n in ("g1", "g2", "phy")), "port list:\n" + out)
    _, out, _ = d.vhostctl("port", "show", "g1")
    check("g1" in out and "VIRTIO_F_VERSION_1" in out, "port show:\n" + out)
    _, out, _ = d.vhostctl("bridge", "list")
    check("br0" in out and "learning" in out, "bridge list:\n" + out)
    _, out, _ = d.vhostctl("lcores")
    check("g1" in out and "phy" in out, "lcores:\n" + out)
    _, out, _ = d.vhostctl("stats")
    check("g1" in out and "phy" in out, "stats:\n" + out)
    _, out, _ = d.vhostctl("list-commands")
    check("port/add" in out or "port add" in out, "list-commands:\n" + out)
    _, out, _ = d.vhostctl("config", "show")
    check("[port g1]" in out, "config show:\n" + out)
    # Changes through vhostctl.
    d.vhostctl("bridge", "add", "brc", "mode=learning")
    d.vhostctl("port", "add", "pc", "bridge=brc", "type=vhost-user",
               "path=" + t.path("pc.sock"))
    check("pc" in [p["name"] for p in d.ctl("port/list")], "vhostctl port add")
    d.vhostctl("fdb", "add", "brc", S, "pc")
    _, out, _ = d.vhostctl("--json", "fdb", "flush")
    check(json.loads(out) == {"flushed": 0}, "vhostctl fdb flush: " + out)
    d.vhostctl("fdb", "del", "brc", S)
    d.vhostctl("stats", "clear", "pc")
    d.vhostctl("port", "del", "pc")
    d.vhostctl("bridge", "del", "brc")
    saved = t.path("cli.conf")
    d.vhostctl("config", "save", saved)
    with open(saved) as f:
        check(f.read() == conf, "vhostctl config save")
    # Errors: the server's message on stderr, nothing on stdout.
    for args, rc, w in ((["port", "show", "nosuch"], 1, "no port nosuch"),
                        (["bridge", "del", "br0"], 1, "br0"),
                        (["port", "add", "new", "bridge=br0",
                          "type=vhost-user", "path=" + t.path("g1.sock")], 1,
                         "socket path already used by port 'g1'"),
                        (["bogus"], 2, "bogus"),
                        (["port", "lst"], 2,
                         "unknown command 'port lst': port add, del, list, "
                         "show"),
                        (["fdb"], 2, "'fdb' needs a subcommand"),
                        (["port", "show"], 2, "usage"),
                        (["stats", "a", "b"], 2, "usage")):
        code, out, err = d.vhostctl(*args, check_rc=rc)
        check(w in err and not out.strip(), "vhostctl %s: stdout %r stderr "
              "%r" % (" ".join(args), out, err))
        code, out, err = d.vhostctl("--json", *args, check_rc=rc)
        check(w in err, "vhostctl --json %s: %r" % (" ".join(args), err))
    code, out, err = d.vhostctl(check_rc=2)
    check((out + err).strip(), "vhostctl without a command: no usage")
    p = subprocess.run([VHOSTCTL, "--socket", t.path("nope.ctl"), "stats"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30)
    check(p.returncode == 3 and p.stderr.strip(),
          "vhostctl on no socket: %d %r" % (p.returncode, p.stderr))
    code, out, err = d.vhostctl("bridge", "list", "--json")
    check(json.loads(out)[0]["name"] == "br0", "--json after the command")
    env = dict(os.environ, VHOSTCTL_SOCKET=d.control)
    p = subprocess.run([VHOSTCTL, "bridge", "list"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30, env=env)
    check(p.returncode == 0 and b"br0" in p.stdout,
          "VHOSTCTL_SOCKET: %d %r" % (p.returncode, p.stderr))
    # top: refreshes with every port and its rates; with frames flowing
    # from phy (about 200/s) phy's rx rate and g1's tx rate show them.
    stop = []

    def traffic():
        f = frame(BCAST, P, size=64, payload=b"top")
        while not stop:
            phy.send([f])
            time.sleep(0.005)
    th = threading.Thread(target=traffic)
    th.start()
    try:
        code, out, err = d.vhostctl("top", "--count", "3", timeout=30)
    finally:
        stop.append(1)
        th.join()
    check(all(n in out for n in ("g1", "g2", "phy")) and
          any(w in out.lower() for w in ("pps", "/s", "bps")),
          "vhostctl top:\n%s%s" % (out, err))
    rates = {}
    cols = None
    for ln in out.splitlines():
        w = ln.split()
        if w and w[0] == "PORT":
            cols = w
        elif cols and len(w) == len(cols) and w[0] in ("phy", "g1"):
            rates.setdefault(w[0], []).append(
                dict(zip(cols[1:], map(float, w[1:]))))
    check(any(r.get("RX_PPS", 0) > 20 for r in rates.get("phy", [])) and
          any(r.get("TX_PPS", 0) > 20 for r in rates.get("g1", [])),
          "vhostctl top shows no rate for frames flowing from phy to g1 "
          "(%s):\n%s" % (rates, out))
    code, out, err = d.vhostctl("--count", "2", "top", timeout=30)
    check("g1" in out, "vhostctl --count 2 top:\n" + out)
    check(d.ctl("config/show")["config"] == conf, "vhostctl changed config")
    print("ok: vhostctl")


if __name__ == "__main__":
    run(test_ctl)
