# SPDX-License-Identifier: BSD-3-Clause
"""Network namespaces as the tests' other hosts: making one as the VXLAN
and EVPN tests want it, and packet sockets on its interfaces."""
import ctypes
import os
import socket
import subprocess
import time

import vhdtest as vt

_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000


class netns:
    """A context in which sockets are made in netns NAME (setns on this
    thread; a socket keeps the netns it was made in)."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        self.home = os.open("/proc/self/ns/net", os.O_RDONLY)
        fd = os.open("/run/netns/" + self.name, os.O_RDONLY)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns " + self.name)
        finally:
            os.close(fd)

    def __exit__(self, *exc):
        try:
            if _libc.setns(self.home, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
        finally:
            os.close(self.home)


class Sock(vt.RawSocket):
    """A packet socket on IFNAME in netns NS; drain() keeps the frames of
    ethertype ETYPE (bytes, e.g. b"\\x88\\xb5"; None: every frame)."""

    def __init__(self, ns, ifname, etype=None):
        with netns(ns):
            super().__init__(ifname)
        self.etype = etype
        self.s.setsockopt(socket.SOL_SOCKET, 33, 4 << 20)  # SO_RCVBUFFORCE

    def drain(self):
        """Frames queued now (not waiting for more)."""
        got = []
        while True:
            try:
                data, addr = self.s.recvfrom(65535)
            except BlockingIOError:
                return got
            if addr[2] != socket.PACKET_OUTGOING and (
                    self.etype is None or data[12:14] == self.etype):
                got.append(data)


def add_netns(name, t=None):
    """A fresh netns NAME (an old one of that name goes first), removed at
    T's cleanup if T is given: lo up, no IPv6 (no ND, MLD or router
    solicitations on wires whose every frame is counted), no br_netfilter
    on its Linux bridges (built in here and on in every new netns, it
    would check, defragment or drop bad input before it reaches vhostd;
    sysctl -e: a kernel without it has no net.bridge keys)."""
    subprocess.call(["ip", "netns", "del", name], stderr=subprocess.DEVNULL)
    subprocess.check_call(["ip", "netns", "add", name])
    if t is not None:
        t.cleanups.append(lambda: subprocess.call(["ip", "netns", "del",
                                                   name]))
    subprocess.check_call(
        ["ip", "netns", "exec", name, "sysctl", "-eqw",
         "net.ipv6.conf.all.disable_ipv6=1",
         "net.ipv6.conf.default.disable_ipv6=1",
         "net.bridge.bridge-nf-call-iptables=0",
         "net.bridge.bridge-nf-call-ip6tables=0",
         "net.bridge.bridge-nf-call-arptables=0"],
        stdin=subprocess.DEVNULL)
    subprocess.check_call(["ip", "-n", name, "link", "set", "lo", "up"])


def exchange(poll, places, what, send, want, timeout=10):
    """SEND(); WANT maps a place to the exact frames it must get, in
    order; every other place of PLACES gets nothing (a short look for
    strays once the wanted ones are in). POLL() returns what arrived
    since its last call, {place: [frames]}."""
    send()
    got = {n: [] for n in places}

    def arrived():
        for n, fs in poll().items():
            got[n] += fs
        return all(len(got[n]) >= len(want[n]) for n in want)
    vt.wait_until(arrived, timeout, what)
    end = time.monotonic() + 0.3
    while time.monotonic() < end:
        arrived()
        time.sleep(0.01)
    for n in got:
        exp = want.get(n, [])
        vt.check(got[n] == exp, "%s: %s got %d frames %r, wanted %d %r" %
                 (what, n, len(got[n]), [f[:24] for f in got[n]],
                  len(exp), [f[:24] for f in exp]))
    print("ok: %s" % what)


def drain_quiet(poll, quiet=0.3):
    """Call POLL() until nothing has arrived for QUIET seconds (what is
    still on its way from an earlier step goes)."""
    end = time.monotonic() + quiet
    while time.monotonic() < end:
        if any(poll().values()):
            end = time.monotonic() + quiet
        time.sleep(0.01)
