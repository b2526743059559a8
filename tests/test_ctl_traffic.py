#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Ports and bridges added and deleted over the control socket while a
counted stream flows: nothing of the stream is lost, duplicated, reordered
or changed, every change takes effect within a second, and every mbuf comes
back. Run with VHD_LCORES=0,1 it does this with two datapath lcores.

Topology: learning bridge br0 = phy (af_packet on a veth whose far end this
test drives) + g1 (testpmd, pcap: the stream's far end) + g2 (testpmd,
pcap: restarted now and then, each time sending a counted burst to phy).
A thread adds and deletes, ROUNDS times: p3 (vhost-user, vhostd the
server) and p4 (vhostd the client), each with a testpmd guest attached
that sends a counted batch to phy; a side bridge with a port of its own.
Meanwhile the main thread sends a paced stream of numbered frames from phy
to g1 (unicast, g1's MAC learned) and collects what phy receives.

Frames are told apart by ethertype:
  0x88B5 stream phy -> g1     0x88B6 g2's bursts -> phy
  0x88B7 p3/p4 batches -> phy 0x88B8 broadcast probes from phy
  0x88B9 g1's hello -> phy    0x88BA unicast probes from phy to a deleted
                                     port's MAC
"""
import errno
import os
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from vhdtest import (BCAST, Failure, Guest, Vhostd, check,  # noqa: E402
                     frame, run, wait_until)

P = "02:00:00:00:00:01"
G1 = "02:00:00:00:01:01"
G2 = "02:00:00:00:02:02"
LCORES = os.environ.get("VHD_LCORES", "1")
ROUNDS = 6
MIN_STREAM = 20000      # frames phy -> g1, at least
RATE = 1000             # stream frames per second
BATCH = 10              # stream frames per send
# A testpmd guest sends its pcap once, as fast as it can, and drops what
# its virtio tx ring cannot take (it may start before vhostd polls it): a
# batch must fit in the ring, which holds queue_size / 2 frames (two
# descriptors each).
BURST = 500             # g2's burst (queue_size 1024)
PORT_BATCH = 120        # p3/p4 guests' batch (queue_size 256)
DEADLINE = 1.0          # seconds for a change to take effect

ET_STREAM, ET_REV, ET_PORT, ET_BC, ET_HELLO, ET_UU = range(0x88B5, 0x88BB)

SOL_PACKET = 263
PACKET_IGNORE_OUTGOING = 23
SO_RCVBUFFORCE = 33


def etype(f):
    return struct.unpack("!H", f[12:14])[0]


class PcapTail:
    """A pcap file that grows (a testpmd guest's tx_pcap): read only what
    was added since the last poll."""

    def __init__(self, path):
        self.path = path
        self.off = 0
        self.frames = []

    def poll(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.off)
                data = f.read()
        except FileNotFoundError:
            return self.frames
        pos = 0
        if self.off == 0:
            if len(data) < 24:
                return self.frames
            pos = 24
        while pos + 16 <= len(data):
            incl = struct.unpack("<IIII", data[pos:pos + 16])[2]
            if pos + 16 + incl > len(data):
                break
            self.frames.append(data[pos + 16:pos + 16 + incl])
            pos += 16 + incl
        self.off += pos
        return self.frames


class Shared:
    """What the main thread and the change thread share."""

    def __init__(self, phy):
        self.phy = phy
        self.lock = threading.Lock()
        self.at_phy = []            # every frame phy received
        self.done = False
        self.error = None
        self.rounds = 0
        self.sent_probes = []       # probes that must reach g1, in order
        self.timings = {}

    def send(self, frames):
        with self.lock:
            for f in frames:
                self.phy.s.send(f)

    def phy_frames(self, et, src=None):
        with self.lock:
            got = list(self.at_phy)
        return [f for f in got if etype(f) == et and
                (src is None or f[6:12] == src)]

    def timing(self, what, dt):
        self.timings.setdefault(what, []).append(dt)


def guest(*args, **kw):
    """A testpmd guest on 128 MiB of hugepages (plenty for its 4096
    mbufs): four run at once, and other tests may be running too."""
    g = Guest(*args, **kw)
    if "-m" in g.argv:
        g.argv[g.argv.index("-m") + 1] = "128"
    return g


def macb(s):
    return bytes(int(x, 16) for x in s.split(":"))


def guest_link_events(g):
    return g.log().count("link state change event")


def changes(t, d, sh, g1tail):
    """The change thread: ROUNDS rounds of adds and deletes."""
    bc_n = [0]
    g2 = None
    g2_sent = []

    def probe_bcast(tails, what):
        """A broadcast from phy reaches every guest of TAILS within the
        deadline."""
        bc_n[0] += 1
        f = frame(BCAST, P, ET_BC, payload=b"BC%06d" % bc_n[0], size=64)
        sh.sent_probes.append(f)
        start = [len(tl.poll()) for tl in tails]
        t0 = time.monotonic()
        sh.send([f])
        for tl, n in zip(tails, start):
            wait_until(lambda tl=tl, n=n: f in tl.poll()[n:], DEADLINE,
                       "broadcast %d at %s (%s)" % (bc_n[0], tl.path, what),
                       interval=0.005)
        sh.timing("bcast to new port", time.monotonic() - t0)

    def timed(what, method, *params):
        t0 = time.monotonic()
        r = d.rpc(method, *params)
        dt = time.monotonic() - t0
        sh.timing(what, dt)
        check(dt < DEADLINE, "%s %s took %.2fs" % (method, params, dt))
        return r

    def ok(r, what):
        check("result" in r, "%s: %s" % (what, r))
        return r["result"]

    def add_port(name, path, mode, k):
        r = ok(timed("port/add", "port/add", name, "bridge=br0",
                     "type=vhost-user", "path=" + path, "mode=" + mode),
               "port/add %s" % name)
        check(r["name"] == name and r["bridge"] == "br0" and
              r["mode"] == mode and r["path"] == path, "port/add: %s" % r)
        # port show answers at once: the port exists; no guest yet for a
        # server port (a client port may have found its guest and even
        # taken frames from it already).
        s = ok(timed("port/show", "port/show", name), "port/show")
        check(s["name"] == name and
              (mode == "client" or (not s["connected"] and
                                    s["stats"]["rx_packets"] == 0)),
              "round %d: new port %s: %s" % (k, name, s))
        check(name in [p["name"] for p in d.ctl("port/list")],
              "%s not in port list" % name)
        if mode == "server":
            check(os.path.exists(path), "no socket %s after port add" %
                  path)

    def del_port(name, path, mode, gmac, guest, tail, k):
        before = guest_link_events(guest)
        ok(timed("port/del", "port/del", name), "port/del %s" % name)
        # Gone at once: show, list, FDB, socket file.
        r = d.rpc("port/show", name)
        check("error" in r and r["error"]["data"]["errno"] == errno.ENOENT,
              "port/show after del: %s" % r)
        check(name not in [p["name"] for p in d.ctl("port/list")],
              "%s still listed" % name)
        fdb = d.ctl("fdb/show", "br0")
        check(not [e for e in fdb if e["port"] == name or
                   e["mac"] == gmac],
              "round %d: fdb entries of deleted %s: %s" % (k, name, fdb))
        check(name not in d.ctl("bridge/show", "br0")["ports"],
              "%s still a member of br0" % name)
        if mode == "server":
            check(not os.path.exists(path), "socket %s left after del" %
                  path)
        # A frame for its MAC does not reach it: unknown now, it floods
        # (g1 gets it within the deadline: no stale entry sent it to the
        # deleted port's slot).
        n_guest = len(tail.poll())
        f = frame(gmac, P, ET_UU, payload=b"UU-%s-%d" % (name.encode(), k),
                  size=64)
        sh.sent_probes.append(f)
        n_g1 = len(g1tail.poll())
        t0 = time.monotonic()
        sh.send([f])
        wait_until(lambda: f in g1tail.poll()[n_g1:], DEADLINE,
                   "frame for deleted %s's MAC flooded to g1" % name,
                   interval=0.005)
        sh.timing("unknown unicast after del", time.monotonic() - t0)
        check(len(tail.poll()) == n_guest and f not in tail.frames,
              "deleted port %s's guest got a frame" % name)
        # The guest sees the disconnect.
        wait_until(lambda: guest_link_events(guest) > before, 10,
                   "guest of %s to see the disconnect" % name)
        guest.stop()
        check(guest.proc.returncode is not None, "guest still running")

    def restart_g2(b):
        nonlocal g2
        if g2:
            g2.stop()
        burst = [frame(P, G2, ET_REV, payload=b"REV" +
                       struct.pack("!HI", b, j), size=60 + (j * 37) % 1455)
                 for j in range(BURST)]
        g2_sent.extend(burst)
        g2 = guest(t, "g2r%d" % b, t.path("g2.sock"), frames=burst,
                   mac=G2, queue_size=1024)
        g2.start()
        # Collected by the main thread while the rounds go on; the next
        # burst waits for this one, so phy sees them in order.
        return len(g2_sent)

    g2_expect = 0
    for k in range(ROUNDS):
        sh.rounds = k
        if k % 3 == 0:
            if g2_expect:
                wait_until(lambda: len(sh.phy_frames(ET_REV)) >= g2_expect,
                           30, "g2's burst at phy")
            g2_expect = restart_g2(k // 3)
        p3path = t.path("p3.sock")
        p4path = t.path("p4-%d.sock" % k)
        g3mac = "02:00:00:00:03:%02x" % k
        g4mac = "02:00:00:00:04:%02x" % k
        batch3 = [frame(P, g3mac, ET_PORT, payload=b"p3-%d-%d" % (k, j),
                        size=64 + j) for j in range(PORT_BATCH)]
        batch4 = [frame(P, g4mac, ET_PORT, payload=b"p4-%d-%d" % (k, j),
                        size=64 + j) for j in range(PORT_BATCH)]
        # p3: vhostd listens; p4: vhostd connects to the guest.
        add_port("p3", p3path, "server", k)
        g3 = guest(t, "p3r%d" % k, p3path, frames=batch3, mac=g3mac)
        g4 = guest(t, "p4r%d" % k, p4path, frames=batch4, mac=g4mac,
                   server=True)
        g4.start(wait=False)
        wait_until(lambda: os.path.exists(p4path), 30,
                   "p4's guest socket")
        add_port("p4", p4path, "client", k)
        g3.start()
        wait_until(lambda: "Port statistics" in g4.log() or
                   not g4.alive(), 60, "p4's guest to start")
        check(g4.alive(), "p4 guest died: %s" % g4.log()[-2000:])
        d.wait_up("p3", "p4")
        t3, t4 = PcapTail(g3.out), PcapTail(g4.out)
        # A broadcast from phy reaches both new guests (and g1).
        probe_bcast([t3, t4, g1tail], "round %d" % k)
        # Their MACs are learned on their ports; their batches reach phy
        # whole and in order.
        wait_until(lambda: {e["mac"]: e["port"] for e in
                            d.ctl("fdb/show", "br0")}.get(g3mac) == "p3"
                   and {e["mac"]: e["port"] for e in
                        d.ctl("fdb/show", "br0")}.get(g4mac) == "p4",
                   DEADLINE * 5, "round %d: p3/p4 MACs learned" % k)
        for name, src, batch in (("p3", g3mac, batch3),
                                 ("p4", g4mac, batch4)):
            wait_until(lambda src=src: len(sh.phy_frames(
                ET_PORT, macb(src))) >= PORT_BATCH, 20,
                "round %d: %s's batch at phy" % (k, name))
            got = sh.phy_frames(ET_PORT, macb(src))
            check(got == batch, "round %d: %s's batch at phy: %d frames, "
                  "not the %d sent in order" % (k, name, len(got),
                                                len(batch)))
        # A bridge on the side, with a port: busy while it has one.
        side = "side%d" % k
        smode = "xconnect" if k % 2 else "learning"
        r = ok(timed("bridge/add", "bridge/add", side, "mode=" + smode),
               "bridge/add")
        check(r["name"] == side and r["mode"] == smode and
              r["ports"] == [], "bridge/add: %s" % r)
        spath = t.path("side%d.sock" % k)
        ok(timed("port/add", "port/add", "sp", "bridge=" + side,
                 "type=vhost-user", "path=" + spath), "side port")
        r = d.rpc("bridge/del", side)
        check("error" in r and r["error"]["data"]["errno"] == errno.EBUSY
              and "sp" in r["error"]["message"],
              "bridge/del with a port: %s" % r)
        # p3 goes first, then the side port and bridge, then p4.
        del_port("p3", p3path, "server", g3mac, g3, t3, k)
        ok(timed("port/del", "port/del", "sp"), "side port del")
        check(not os.path.exists(spath), "side socket left")
        ok(timed("bridge/del", "bridge/del", side), "bridge/del")
        check(side not in [b["name"] for b in d.ctl("bridge/list")],
              "%s still listed" % side)
        probe_bcast([t4, g1tail], "round %d, p3 gone" % k)
        del_port("p4", p4path, "client", g4mac, g4, t4, k)
        check(d.ctl("bridge/show", "br0")["ports"] == ["phy", "g1", "g2"],
              "br0 ports: %s" % d.ctl("bridge/show", "br0")["ports"])
        print("round %d done (stream %d frames at g1)" %
              (k, len([f for f in g1tail.frames
                       if etype(f) == ET_STREAM])), flush=True)
    wait_until(lambda: len(sh.phy_frames(ET_REV)) >= g2_expect, 30,
               "g2's last burst at phy")
    got = sh.phy_frames(ET_REV)
    check(got == g2_sent, "g2's bursts at phy: %d frames, not the %d sent "
          "in order" % (len(got), len(g2_sent)))
    check(not [f for f in g2.received() if etype(f) == ET_STREAM],
          "the stream to g1 reached g2")
    g2.stop()


def test_ctl_traffic(t):
    phy = t.veth("%sa" % t.tag[:10], "%sb" % t.tag[:10])
    phy.s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20)
    phy.s.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    d = Vhostd(t, {"br0": {"mode": "learning"}},
               {"phy": {"type": "ethdev", "bridge": "br0",
                        "devargs": "net_af_packet_%s,iface=%s" % (
                            t.tag, phy.ifname[:-1] + "a")},
                "g1": {"type": "vhost-user", "bridge": "br0",
                       "path": t.path("g1.sock")},
                "g2": {"type": "vhost-user", "bridge": "br0",
                       "path": t.path("g2.sock")}},
               lcores=LCORES).start()
    base = d.mbufs_in_use()
    hello = frame(P, G1, ET_HELLO, payload=b"hello", size=64)
    g1 = guest(t, "g1", t.path("g1.sock"), frames=[hello], mac=G1).start()
    d.wait_up("g1")
    wait_until(lambda: d.fdb("br0").get(G1) == "g1", 20, "G1 learned")
    g1tail = PcapTail(g1.out)
    sh = Shared(phy)

    def thread_main():
        try:
            changes(t, d, sh, g1tail)
        except BaseException as e:  # noqa: BLE001 - re-raised by main
            sh.error = e
        sh.done = True

    th = threading.Thread(target=thread_main, daemon=True)
    stream = []
    t0 = time.monotonic()
    th.start()
    # The paced stream, until the changes are over (and long enough).
    i = 0
    while not sh.done or i < MIN_STREAM:
        fr = [frame(G1, P, ET_STREAM, payload=b"S" + struct.pack("!I", i + j),
                    size=60 + (i + j) % 200) for j in range(BATCH)]
        stream += fr
        sh.send(fr)
        i += BATCH
        while True:
            try:
                data, addr = phy.s.recvfrom(65535)
            except BlockingIOError:
                break
            if addr[2] != socket.PACKET_OUTGOING:
                with sh.lock:
                    sh.at_phy.append(data)
        delay = t0 + i / RATE - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if sh.error:
            break
    th.join(120)
    if sh.error:
        raise sh.error
    check(not th.is_alive(), "change thread stuck")
    print("stream: %d frames in %.1fs, %d rounds" %
          (len(stream), time.monotonic() - t0, ROUNDS))

    # The stream at g1: complete, in order, byte for byte; nothing else
    # reached g1 but the probes (each exactly once, in order) and g1's
    # own nothing.
    wait_until(lambda: len([f for f in g1tail.poll()
                            if etype(f) == ET_STREAM]) >= len(stream), 30,
               "the whole stream at g1")
    got = [f for f in g1tail.poll() if etype(f) == ET_STREAM]
    if got != stream:
        idx = [struct.unpack("!I", f[15:19])[0] for f in got]
        missing = sorted(set(range(len(stream))) - set(idx))
        raise Failure("stream at g1: %d frames, %d sent; %d missing "
                      "(first %s); in order: %s; byte-identical: %s" % (
                          len(got), len(stream), len(missing),
                          missing[:10], idx == sorted(idx),
                          all(stream[n] == f for n, f in zip(idx, got))))
    probes = [f for f in g1tail.frames if etype(f) in (ET_BC, ET_UU)]
    check(probes == sh.sent_probes,
          "probes at g1: %d, sent %d" % (len(probes), len(sh.sent_probes)))
    others = [f for f in g1tail.frames
              if etype(f) not in (ET_STREAM, ET_BC, ET_UU)]
    check(not others, "g1 got %d unexpected frames (ethertypes %s)" % (
        len(others), sorted({etype(f) for f in others})))
    for n in ("phy", "g1"):
        p = d.port(n)
        check(p["drop_tx_full"] == 0, "%s tx-full drops: %s" % (n, p))
    check(d.port("g1")["tx_packets"] == len(g1tail.frames),
          "g1 tx counter %d, frames at g1 %d" % (d.port("g1")["tx_packets"],
                                                 len(g1tail.frames)))
    for what, v in sorted(sh.timings.items()):
        print("%-28s n=%-3d max %.3fs" % (what, len(v), max(v)))
    g1.stop()
    d.stop_clean(base)


if __name__ == "__main__":
    run(test_ctl_traffic)
