#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Scale of the run-time tables: 256 bridges and 1024 ports added at run
time (the 257th bridge and the 1025th port refused with a clear error),
while two guests keep exchanging frames that arrive complete; then all of
it deleted, and vhostd's fds and mbufs back where they started.

librte_vhost 22.11 watches at most 1024 fds (listening and connected
sockets together), so the bulk is split between server ports (a listening
socket each) and client ports that have nobody to connect to.
"""
import os
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from vhdtest import (BCAST, Guest, Vhostd, check, frame, run,  # noqa: E402
                     wait_stable, wait_until)

G1 = "02:00:00:00:00:01"
N_SERVER = 800  # listening sockets; the rest of the 1024 are clients


def fds(d):
    """vhostd's open sockets (what a port holds: a listening socket, a
    connection). Other fds vary with the guests (their memory regions and
    vring eventfds) and the EAL (a hugepage file per page it maps)."""
    d_ = "/proc/%d/fd" % d.proc.pid
    n = 0
    for f in os.listdir(d_):
        try:
            n += os.readlink(os.path.join(d_, f)).startswith("socket:")
        except FileNotFoundError:
            pass
    return n


class Conn:
    """One control connection for many requests."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(30)
        self.s.connect(path)
        self.f = self.s.makefile("rb")
        self.id = 0

    def rpc(self, method, *params):
        import json
        self.id += 1
        self.s.sendall(json.dumps({"jsonrpc": "2.0", "id": self.id,
                                   "method": method,
                                   "params": list(params)}).encode() + b"\n")
        r = json.loads(self.f.readline())
        check(r.get("id") == self.id, "reply id %s" % r)
        return r

    def ok(self, method, *params):
        r = self.rpc(method, *params)
        check("result" in r, "%s %s: %s" % (method, params, r))
        return r["result"]

    def close(self):
        self.f.close()
        self.s.close()


def test_ctl_scale(t):
    vh = lambda n: {"type": "vhost-user", "bridge": "br0",  # noqa: E731
                    "path": t.path(n + ".sock")}
    d = Vhostd(t, {"br0": {}}, {"g1": vh("g1"), "g2": vh("g2")}).start()
    base_mbufs = d.mbufs_in_use()
    g1 = Guest(t, "g1", t.path("g1.sock"), mac=G1).start()
    g2 = Guest(t, "g2", t.path("g2.sock")).start()
    d.wait_up("g1", "g2")
    # Stable: a telemetry query's socket (wait_up) closes a little after
    # its reply.
    base_fds = wait_stable(lambda: fds(d), "vhostd's sockets to settle",
                           interval=0.2)
    c = Conn(d.control)

    for b in range(1, 256):
        c.ok("bridge/add", "b%d" % b)
    r = c.rpc("bridge/add", "b256")
    check("more than 256 bridges" in r.get("error", {}).get("message", ""),
          "257th bridge: %s" % r)
    sock = os.path.join(t.dir, "s")
    os.mkdir(sock)
    for i in range(1022):
        mode = "server" if i < N_SERVER else "client"
        c.ok("port/add", "p%d" % i, "bridge=b%d" % (1 + i % 255),
             "type=vhost-user", "path=%s/p%d" % (sock, i), "mode=" + mode)
    r = c.rpc("port/add", "p1022", "bridge=b1", "type=vhost-user",
              "path=%s/p1022" % sock)
    check("more than 1024 ports" in r.get("error", {}).get("message", ""),
          "1025th port: %s" % r)
    ports = c.ok("port/list")
    check(len(ports) == 1024, "%d ports listed" % len(ports))
    check(len(c.ok("bridge/list")) == 256, "bridges listed")
    check(len(os.listdir(sock)) == N_SERVER, "listening sockets")
    lc = c.ok("lcores")
    rxqs = [q for l in lc for q in l["rxqs"]]
    check(sorted(q["port"] for q in rxqs) == ["g1", "g2"],
          "only the connected guests' queues are polled: %s" % rxqs[:5])

    # The switch still switches: a broadcast and unicast from g2 reach g1.
    g2.stop()
    fr = [frame(BCAST, "02:00:00:00:00:02", size=70),
          frame(G1, "02:00:00:00:00:02", size=80)]
    g2 = Guest(t, "g2b", t.path("g2.sock"), frames=fr).start()
    wait_until(lambda: g1.received() == fr, 20,
               "g2's frames at g1 with 1024 ports")

    for i in range(1022):
        c.ok("port/del", "p%d" % i)
    for b in range(1, 256):
        c.ok("bridge/del", "b%d" % b)
    c.close()
    check(os.listdir(sock) == [], "sockets left: %s" % os.listdir(sock)[:5])
    wait_until(lambda: fds(d) == base_fds, 10,
               "fds back at %d (now %d)" % (base_fds, fds(d)))
    for g in (g1, g2):
        g.stop()
    d.stop_clean(base_mbufs)


if __name__ == "__main__":
    run(test_ctl_scale)
