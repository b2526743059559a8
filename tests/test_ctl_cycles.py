#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""A vhost-user port added and deleted over the control socket, again and
again: 1000 times without a guest (vhostd the server, and the client: with
nobody listening, and connected to a listener of the test's), then 12 times (GUEST_CYCLES)
with a testpmd guest that attaches, passes a frame each way, and sees the
disconnect when its port is deleted. Afterwards nothing has grown: vhostd's
open fds and threads are exactly as before, its hugepage heap holds exactly
the same allocations, its RSS is within a small margin, every mbuf is back,
and no socket file is left in the socket directory.

Topology: learning bridge br0 = phy (af_packet on a veth whose far end this
test drives) + the port that comes and goes.
"""
import json
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from vhdtest import (VHOSTD, Failure, Guest, Vhostd, check, fd_targets,  # noqa: E402
                     frame, run, wait_until)

P = "02:00:00:00:00:01"
LCORES = os.environ.get("VHD_LCORES", "1")
CYCLES = 1000
GUEST_CYCLES = int(os.environ.get("GUEST_CYCLES", "12"))  # about 2.5 s each
# RSS may grow a little without a leak: malloc keeps freed memory in its
# arenas and a page touched once stays resident; after the warm-up round
# the same work needs no new memory. 1 MiB is ~1 KiB per cycle of the
# 1000: a leak of a port struct-sized malloc (or of a jansson reply)
# per cycle would exceed it; the heap (rte_malloc) and fds are checked
# exactly.
RSS_MARGIN_KB = 1024

# Under AddressSanitizer freed memory waits in its quarantine (256 MiB)
# before reuse, so RSS grows with every free: checked in the plain build
# only (the rte_malloc heap, fds and mbufs are checked in both).
ASAN = b"libasan" in subprocess.run(["ldd", VHOSTD], stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL).stdout


class Conn:
    """One JSON-RPC connection to vhostd, reused for many requests."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(30)
        self.s.connect(path)
        self.buf = b""
        self.id = 0

    def call(self, method, *params):
        self.id += 1
        self.s.sendall(json.dumps({"jsonrpc": "2.0", "id": self.id,
                                   "method": method,
                                   "params": list(params)}).encode())
        while b"\n" not in self.buf:
            chunk = self.s.recv(1 << 16)
            check(chunk, "vhostd closed the control connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        r = json.loads(line)
        check(r.get("id") == self.id, "reply id %r, sent %d" % (r.get("id"),
                                                               self.id))
        return r

    def ok(self, method, *params):
        r = self.call(method, *params)
        if "error" in r:
            raise Failure("%s %s: %s" % (method, " ".join(params),
                                         r["error"]))
        return r["result"]

    def close(self):
        self.s.close()


class Rpc:
    """A new connection for every request."""

    def __init__(self, d):
        self.d = d

    def ok(self, method, *params):
        return self.d.ctl(method, *params)


class Ctl:
    """vhostctl, a new process for every request."""

    def __init__(self, d):
        self.d = d

    def ok(self, method, *params):
        _, out, _ = self.d.vhostctl("--json", *(method.split("/") +
                                                list(params)))
        return json.loads(out) if out.strip() else None


def fds(pid):
    return sorted(os.listdir("/proc/%d/fd" % pid), key=int)


def status(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def snapshot(d):
    """vhostd's resources once nothing is in flight: fds and threads wait
    for the telemetry thread to have closed the connections that asked."""
    pid = d.proc.pid
    heap = d.query("/eal/heap_info,0")
    mbufs = d.mbufs_in_use()
    prev = [None]

    def stable():
        cur = (len(fds(pid)), status(pid, "Threads"))
        same = cur == prev[0]
        prev[0] = cur
        return same

    wait_until(stable, 10, "fds and threads to settle", interval=0.2)
    return {"fds": len(fds(pid)), "fd_targets": fd_targets(pid),
            "threads": status(pid, "Threads"),
            "rss_kb": status(pid, "VmRSS"),
            "heap_alloc_count": heap["Alloc_count"],
            "heap_alloc_size": heap["Alloc_size"], "mbufs": mbufs}


def compare(base, now, what):
    print("%s: fds %d -> %d, threads %d -> %d, RSS %d -> %d kB (%+d), "
          "heap allocs %d -> %d (%d -> %d bytes), mbufs %d -> %d" % (
              what, base["fds"], now["fds"], base["threads"], now["threads"],
              base["rss_kb"], now["rss_kb"], now["rss_kb"] - base["rss_kb"],
              base["heap_alloc_count"], now["heap_alloc_count"],
              base["heap_alloc_size"], now["heap_alloc_size"], base["mbufs"],
              now["mbufs"]), flush=True)
    if now["fds"] != base["fds"]:
        b, n = base["fd_targets"], now["fd_targets"]
        extra = {k: v for k, v in n.items() if b.get(k) != v}
        gone = {k: v for k, v in b.items() if n.get(k) != v}
        raise Failure("%s: vhostd has %d fds, %d before; new: %s; gone: %s"
                      % (what, now["fds"], base["fds"], extra, gone))
    check(now["threads"] == base["threads"], "%s: threads %d -> %d" % (
        what, base["threads"], now["threads"]))
    check(now["heap_alloc_count"] == base["heap_alloc_count"] and
          now["heap_alloc_size"] == base["heap_alloc_size"],
          "%s: rte_malloc heap grew: %d allocations (%d bytes), %d (%d) "
          "before" % (what, now["heap_alloc_count"], now["heap_alloc_size"],
                      base["heap_alloc_count"], base["heap_alloc_size"]))
    check(ASAN or now["rss_kb"] <= base["rss_kb"] + RSS_MARGIN_KB,
          "%s: RSS %d kB, %d kB before (margin %d kB)" % (
              what, now["rss_kb"], base["rss_kb"], RSS_MARGIN_KB))
    check(now["mbufs"] == base["mbufs"], "%s: mbufs in use %d, %d before" % (
        what, now["mbufs"], base["mbufs"]))


def test_ctl_cycles(t):
    phy = t.veth("%sa" % t.tag[:10], "%sb" % t.tag[:10])
    sockdir = t.path("socks")      # vhostd's sockets (server mode)
    gdir = t.path("guests")        # sockets vhostd connects to (client)
    os.mkdir(sockdir)
    os.mkdir(gdir)
    d = Vhostd(t, {"br0": {"mode": "learning"}},
               {"phy": {"type": "ethdev", "bridge": "br0",
                        "devargs": "net_af_packet_%s,iface=%s" % (
                            t.tag, phy.ifname[:-1] + "a")}},
               lcores=LCORES).start()
    base_mbufs = d.mbufs_in_use()

    accepted = []   # vhostd's connections to the test's listeners

    def cycle(i, c):
        """Port add and delete without a guest: I picks name and mode."""
        name = "c%d" % (i % 7)
        kind = i % 5   # 0-2 server, 3 client (nobody listens), 4 client
        if kind < 3:   # (a listener accepts it)
            path = os.path.join(sockdir, "%s.sock" % name)
            r = c.ok("port/add", name, "bridge=br0", "type=vhost-user",
                     "path=" + path)
            check(os.path.exists(path), "cycle %d: no socket %s" % (i, path))
            check(r["name"] == name and r["mode"] == "server" and
                  not r["connected"], "cycle %d: %s" % (i, r))
            c.ok("port/del", name)
            check(not os.path.exists(path), "cycle %d: socket %s left" % (
                i, path))
            return
        path = os.path.join(gdir, "%s.sock" % name)
        lst = None
        if kind == 4:
            if os.path.exists(path):
                os.unlink(path)
            lst = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            lst.bind(path)
            lst.listen(4)
            lst.settimeout(5)
        try:
            c.ok("port/add", name, "bridge=br0", "type=vhost-user",
                 "path=" + path, "mode=client")
            if lst:
                # vhostd connected at once (the back end waits for the
                # front end's first message).
                a, _ = lst.accept()
                r = c.ok("port/show", name)
                check(r["mode"] == "client" and r["connected"],
                      "cycle %d: %s" % (i, r))
            c.ok("port/del", name)
            if lst:
                # The connection goes with the port: librte_vhost closes
                # it, but its event thread may poll it for up to a
                # second more before the peer sees the end. Checked at
                # the end, for all of them.
                accepted.append((i, a))
        finally:
            if lst:
                lst.close()
                os.unlink(path)

    def guest_cycle(i):
        """Port add, a guest attaches, a frame each way, port del: the
        guest sees the disconnect and stops."""
        gm = "02:00:00:00:%02x:%02x" % (0x10 + i // 256, i % 256)
        client = i % 2 == 1
        out = frame(P, gm, 0x88B5, payload=b"out%d" % i, size=64 + i)
        back = frame(gm, P, 0x88B5, payload=b"back%d" % i, size=64 + i)
        if client:
            path = os.path.join(gdir, "vm%d.sock" % i)
            g = Guest(t, "vm%d" % i, path, frames=[out], mac=gm, server=True)
            g.start(wait=False)
            wait_until(lambda: os.path.exists(path), 30,
                       "guest %d's socket" % i)
            d.ctl("port/add", "vm", "bridge=br0", "type=vhost-user",
                  "path=" + path, "mode=client")
            wait_until(lambda: "Port statistics" in g.log() or
                       not g.alive(), 60, "guest %d to start" % i)
            check(g.alive(), "guest %d died: %s" % (i, g.log()[-2000:]))
        else:
            path = os.path.join(sockdir, "vm.sock")
            d.ctl("port/add", "vm", "bridge=br0", "type=vhost-user",
                  "path=" + path)
            g = Guest(t, "vm%d" % i, path, frames=[out], mac=gm).start()
        d.wait_up("vm")
        got = []
        wait_until(lambda: got.extend(phy.recv_all(0.02)) or out in got, 20,
                   "cycle %d: the guest's frame at phy" % i)
        wait_until(lambda: d.fdb("br0").get(gm) == "vm", 5,
                   "cycle %d: guest MAC learned" % i)
        phy.send([back])
        wait_until(lambda: g.received() == [back], 20,
                   "cycle %d: phy's frame at the guest" % i)
        events = g.log().count("link state change event")
        d.ctl("port/del", "vm")
        check(not os.path.exists(os.path.join(sockdir, "vm.sock")),
              "cycle %d: socket left" % i)
        wait_until(lambda: g.log().count("link state change event") >
                   events, 10, "cycle %d: the guest to see the disconnect"
                   % i)
        check(g.alive(), "guest %d died at the disconnect" % i)
        g.stop()
        check(g.proc.returncode is not None, "guest %d still running" % i)
        check(d.fdb("br0").get(gm) is None, "cycle %d: entry of the "
              "deleted port left: %s" % (i, d.fdb("br0")))

    # Warm-up: whatever librte_vhost, the control server and the libc set
    # up once (the vhost-events and reconnect threads, malloc arenas).
    c = Conn(d.control)
    for i in range(35):
        cycle(i, c)
    c.close()
    for i in range(2):
        guest_cycle(i)
    base = snapshot(d)
    check(base["mbufs"] == base_mbufs, "mbufs in use %d after the "
          "warm-up, %d at start" % (base["mbufs"], base_mbufs))

    # 1000 cycles: half on one connection, then a new connection each,
    # the last ones through vhostctl.
    t0 = time.monotonic()
    c = Conn(d.control)
    for i in range(CYCLES):
        if i == CYCLES // 2:
            c.close()
            c = Rpc(d)
        elif i == CYCLES - 20:
            c = Ctl(d)
        cycle(i, c)
    dt = time.monotonic() - t0
    print("%d add/del cycles in %.1fs (%.1f ms each)" % (
        CYCLES, dt, dt * 1000 / CYCLES), flush=True)
    check(os.listdir(sockdir) == [], "socket dir: %s" % os.listdir(sockdir))
    for i, a in accepted:
        a.settimeout(3)
        check(a.recv(4096) == b"", "cycle %d: vhostd's connection still "
              "open after port del" % i)
        a.close()
    del accepted[:]
    check(d.ctl("port/list") == [p for p in d.ctl("port/list")
                                 if p["name"] == "phy"] and
          d.ctl("bridge/show", "br0")["ports"] == ["phy"],
          "ports left: %s" % d.ctl("port/list"))
    compare(base, snapshot(d), "after %d cycles" % CYCLES)

    t0 = time.monotonic()
    for i in range(2, 2 + GUEST_CYCLES):
        guest_cycle(i)
    print("%d guest cycles in %.1fs" % (GUEST_CYCLES,
                                        time.monotonic() - t0), flush=True)
    check(os.listdir(sockdir) == [], "socket dir: %s" % os.listdir(sockdir))
    wait_until(lambda: d.mbufs_in_use() == base_mbufs, 10,
               "mbufs back at %d" % base_mbufs)
    compare(base, snapshot(d), "after %d guest cycles" % GUEST_CYCLES)
    check(d.proc.poll() is None, "vhostd died")
    d.stop_clean(base_mbufs)


if __name__ == "__main__":
    run(test_ctl_cycles)
