#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Record vhost-user sessions for the protocol fuzzer's corpus.

A recording proxy sits between a real frontend (testpmd's virtio_user,
QEMU) and a real backend (vhostd): it listens on a unix socket, connects
to the backend's socket for every connection it accepts, relays both
directions with their file descriptors (SCM_RIGHTS), and keeps every
frontend->backend message: request, flags, payload and, for each fd it
carried, what kind of file it was ("memfd:<size>" for a regular file,
"eventfd", "socket", "other:<what>"). The fuzzer replays these with fresh
fds of the same kinds (a sparse memfd of the size, an eventfd, ...), so a
corpus file is a few kilobytes whatever the guest's memory size.

Two ways to use it:

    # a proxy on its own, one JSON file per session
    record.py proxy --listen /tmp/p.sock --backend /run/vhostd/vm1.sock \\
        --out /tmp/session

    # rebuild tests/fuzz/corpus: testpmd with 1 and 2 queue pairs, and with
    # --qemu a QEMU guest (TCG, ~1 min) too; VHOSTD as for the tests
    record.py corpus [--qemu] [--outdir DIR]

Messages are forwarded one whole message per sendmsg(), as frontends send
them: librte_vhost reads a payload with a single read().
"""
import argparse
import json
import os
import selectors
import socket
import stat
import struct
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import vhostuser as vu  # noqa: E402

HDR = struct.Struct("<III")
MAX_FDS = 16


def fd_kind(fd):
    """What kind of file FD is, as the corpus spells it."""
    try:
        target = os.readlink("/proc/self/fd/%d" % fd)
    except OSError:
        target = "?"
    if target == "anon_inode:[eventfd]":
        return "eventfd"
    st = os.fstat(fd)
    if stat.S_ISREG(st.st_mode):
        return "memfd:%d" % st.st_size
    if stat.S_ISSOCK(st.st_mode):
        return "socket"
    return "other:%s" % target


def message(req, flags, payload, fds):
    """One corpus entry (fd kinds in FDS)."""
    return {"request": req, "name": vu.NAMES.get(req, "?"), "flags": flags,
            "size": len(payload), "payload": payload.hex(), "fds": fds}


class Session:
    """One relayed connection: frontend FE, backend BE."""

    def __init__(self, fe, be):
        self.fe, self.be = fe, be
        self.buf = b""
        self.pos = 0    # stream offset of buf[0]
        self.fds = []   # [(stream offset of the byte they came with, fds)]
        self.messages = []
        self.start = time.time()

    def from_frontend(self):
        """Relay what the frontend sent, whole messages at a time; False
        once it has closed."""
        try:
            data, fds, _, _ = socket.recv_fds(self.fe, 1 << 16, MAX_FDS)
        except OSError:
            data, fds = b"", []
        if not data:
            for _, fl in self.fds:
                for f in fl:
                    os.close(f)
            self.fds = []
            for f in fds:
                os.close(f)
            return False
        self.buf += data
        # A read stops after the first sendmsg() that carried fds: they
        # came with the message that holds the last byte read.
        if fds:
            self.fds.append((self.pos + len(self.buf) - 1, fds))
        while len(self.buf) >= HDR.size:
            req, flags, size = HDR.unpack_from(self.buf)
            if len(self.buf) < HDR.size + size:
                break
            end = self.pos + HDR.size + size
            raw = self.buf[:HDR.size + size]
            self.buf = self.buf[HDR.size + size:]
            self.pos = end
            fds = [f for at, fl in self.fds if at < end for f in fl]
            self.fds = [(at, fl) for at, fl in self.fds if at >= end]
            self.messages.append(message(req, flags, raw[HDR.size:],
                                         [fd_kind(f) for f in fds]))
            try:
                if fds:
                    socket.send_fds(self.be, [raw], fds)
                else:
                    self.be.sendall(raw)
            except OSError:
                return False
            finally:
                for f in fds:
                    os.close(f)
        return True

    def from_backend(self):
        """Relay what the backend sent as it comes; False once closed."""
        try:
            data, fds, _, _ = socket.recv_fds(self.be, 1 << 16, MAX_FDS)
        except OSError:
            data, fds = b"", []
        try:
            if data:
                if fds:
                    socket.send_fds(self.fe, [data], fds)
                else:
                    self.fe.sendall(data)
        except OSError:
            data = b""
        for f in fds:
            os.close(f)
        return bool(data)

    def close(self):
        for s in (self.fe, self.be):
            try:
                s.close()
            except OSError:
                pass
        for _, fl in self.fds:
            for f in fl:
                os.close(f)
        self.fds = []


class Proxy:
    """A recording proxy on LISTEN for the backend socket BACKEND, in a
    thread; sessions are kept in order in .sessions (message lists) and,
    with OUT, each written to OUT-<n>.json when it ends."""

    def __init__(self, listen, backend, out=None, source=""):
        self.listen, self.backend, self.out = listen, backend, out
        self.source = source
        self.sessions = []
        self.lock = threading.Lock()
        if os.path.exists(listen):
            os.unlink(listen)
        self.ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.ls.bind(listen)
        self.ls.listen(4)
        self.r, self.w = os.pipe()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        sel = selectors.DefaultSelector()
        sel.register(self.ls, selectors.EVENT_READ, "accept")
        sel.register(self.r, selectors.EVENT_READ, "stop")
        live = {}
        while True:
            for key, _ in sel.select():
                what = key.data
                if what == "stop":
                    for s in list(live.values()):
                        self.finish(s)
                    sel.close()
                    return
                if what == "accept":
                    fe, _ = self.ls.accept()
                    be = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    try:
                        be.connect(self.backend)
                    except OSError as e:
                        print("record: backend %s: %s" % (self.backend, e))
                        fe.close()
                        be.close()
                        continue
                    s = Session(fe, be)
                    live[id(s)] = s
                    sel.register(fe, selectors.EVENT_READ, ("fe", s))
                    sel.register(be, selectors.EVENT_READ, ("be", s))
                    continue
                side, s = what
                ok = s.from_frontend() if side == "fe" else s.from_backend()
                if not ok:
                    sel.unregister(s.fe)
                    sel.unregister(s.be)
                    del live[id(s)]
                    self.finish(s)

    def finish(self, s):
        s.close()
        with self.lock:
            n = len(self.sessions)
            self.sessions.append(s.messages)
        if self.out:
            path = "%s-%d.json" % (self.out, n)
            save(path, s.messages, self.source)
            print("record: session %d: %d messages -> %s" %
                  (n, len(s.messages), path))

    def wait_sessions(self, n, timeout=60):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                if len(self.sessions) >= n:
                    return self.sessions[:n]
            time.sleep(0.05)
        raise TimeoutError("%d sessions not recorded in %ds" % (n, timeout))

    def stop(self):
        os.write(self.w, b"x")
        self.thread.join(10)
        self.ls.close()
        os.close(self.r)
        os.close(self.w)
        if os.path.exists(self.listen):
            os.unlink(self.listen)


def save(path, messages, source=""):
    """A corpus file: one message per line, so a diff reads well."""
    with open(path, "w") as f:
        f.write('{"source": %s,\n "messages": [\n' % json.dumps(source))
        f.write(",\n".join("  " + json.dumps(m) for m in messages))
        f.write("\n]}\n")


def load(path):
    with open(path) as f:
        return json.load(f)["messages"]


# ---------------------------------------------------------------- corpus

def make_corpus(outdir, qemu):
    """Record testpmd (1 and 2 queue pairs) and optionally QEMU sessions
    with vhostd as the backend, into OUTDIR."""
    from vhdtest import BCAST, Guest, Vhostd, frame, run, wait_until

    def record_corpus(t):
        vh = {"type": "vhost-user", "bridge": "br0"}
        d = Vhostd(t, {"br0": {}}, {
            "p": dict(vh, path=t.path("p.sock")),
            "q": dict(vh, path=t.path("q.sock"))}).start()
        proxy_sock = t.path("proxy.sock")
        frames = [frame(BCAST, "02:00:00:00:00:01", size=64 + i)
                  for i in range(4)]
        for name, queues in (("testpmd-1q", 1), ("testpmd-2q", 2)):
            px = Proxy(proxy_sock, t.path("p.sock"))
            t.cleanups.append(px.stop)
            # pcap mode has one queue pair: testpmd's pcap port has one
            g = Guest(t, name, proxy_sock, frames=frames, queues=queues,
                      mode="pcap" if queues == 1 else "rxonly").start()
            d.wait_up("p")
            g.stop()
            msgs = px.wait_sessions(1)[0]
            px.stop()
            t.cleanups.remove(px.stop)
            save(os.path.join(outdir, name + ".json"), msgs,
                 "dpdk-testpmd net_virtio_user queues=%d, vhostd backend"
                 % queues)
            print("%s: %d messages" % (name, len(msgs)))
            wait_until(lambda: d.port("p")["state"] == "down", 30,
                       "port p down")
        if qemu:
            sys.path.insert(0, os.path.join(HERE, "..", "qemu"))
            import guest as qguest
            qguest.ensure_image()
            px = Proxy(proxy_sock, t.path("p.sock"))
            t.cleanups.append(px.stop)
            g = qguest.Guest("vm1", proxy_sock, role="client",
                             mac="52:54:00:00:09:01", ip="10.0.9.1/24",
                             workdir=t.dir, cpus="0",
                             extra_cmdline="ipv6.disable=1")
            g.start()
            g.proc.log = g.console_log
            t.procs.append(g.proc)
            t.cleanups.append(g.kill)
            print("qemu guest ready in %.1f s" % g.wait_ready(240))
            d.wait_up("p")
            # quit: QEMU stops the device (GET_VRING_BASE...) and closes
            g.qmp("quit")
            g.proc.wait(60)
            msgs = px.wait_sessions(1)[0]
            px.stop()
            t.cleanups.remove(px.stop)
            save(os.path.join(outdir, "qemu-1q.json"), msgs,
                 "QEMU virtio-net-pci (TCG, vectors=0, memfd share=on), "
                 "vhostd backend")
            print("qemu-1q: %d messages" % len(msgs))
        check_stop = d.stop()
        if check_stop != 0:
            raise RuntimeError("vhostd exit %d" % check_stop)

    run(record_corpus)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("proxy", help="run a recording proxy")
    p.add_argument("--listen", required=True)
    p.add_argument("--backend", required=True)
    p.add_argument("--out", required=True, help="file prefix: OUT-N.json")
    c = sub.add_parser("corpus", help="record the fuzzer's corpus")
    c.add_argument("--outdir", default=os.path.join(HERE, "corpus"))
    c.add_argument("--qemu", action="store_true")
    a = ap.parse_args()
    if a.cmd == "proxy":
        px = Proxy(a.listen, a.backend, a.out, "proxy %s" % a.backend)
        print("record: %s -> %s (^C to stop)" % (a.listen, a.backend))
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            px.stop()
    else:
        os.makedirs(a.outdir, exist_ok=True)
        make_corpus(a.outdir, a.qemu)


if __name__ == "__main__":
    main()
