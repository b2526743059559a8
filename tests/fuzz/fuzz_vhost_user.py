#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The vhost-user protocol fuzzer: a hostile frontend on one of vhostd's
vhost-user ports, with a well-behaved guest pair beside it as a canary.

vhostd runs one learning bridge with four vhost-user server ports: fz
(fuzzed); a and b (the canary: two complete Python guests); fz2, where
the fuzzer keeps one idle connection whose GET_FEATURES answers show that
vhostd's vhost-user thread still goes round (librte_vhost serves every
socket from one thread). One input is one connection to fz: a list of
steps (messages with their fds, raw bytes, writes into the guest memory
the fuzzer shares with vhostd, frames the canary floods towards fz, a
second connection), then a probe: GET_FEATURES must be answered, or the
connection closed, within 10 s. Then the connection is closed and vhostd
must let go of it: its fds back at their baseline, no mapping of the
fuzzer's memory left, every mbuf back in the pool.

Inputs come from generators picked at random:
- replay: a recorded session (tests/fuzz/corpus/*.json, made by record.py
  from testpmd and QEMU) with mutations: messages dropped, duplicated,
  reordered, spliced from another session; payload bytes flipped and
  fields set to edge values; a wrong size in the header (smaller, larger,
  huge); a message cut short and the connection closed; fds added,
  removed or replaced by the wrong kind (a pipe, /dev/null, a socket, a
  directory, a read-only or sealed memfd, an eventfd for memory, a memfd
  smaller than its region); unknown request codes; wrong flags, versions;
- hostile cases written out: SET_MEM_TABLE with 0, 9+, overlapping,
  overflowing, empty or unbacked regions; rings outside guest memory,
  ring sizes that are no power of two, vring indexes out of range, kicks
  before the memory table, features changed under running rings,
  messages after GET_VRING_BASE, SET_LOG_BASE, inflight fds, postcopy,
  IOTLB, config, crypto, status, RESET_OWNER, a second connection, a
  message header whose payload never comes; and the rings of a running
  device: garbage descriptors (loops, addresses outside memory, huge
  lengths), tiny rx buffers, rings smaller than a burst, while the canary
  floods frames at it.

Faults: vhostd exits or hangs, a connection is neither answered nor closed,
vhostd keeps fds, mappings or mbufs of a closed connection, the canary
pair stops passing frames byte for byte, telemetry stops answering. The
first fault stops the run: the inputs that led to it are printed and
saved as JSON (./fuzz-faults/, or FUZZ_OUT) to replay with --replay.
In tests/fuzz/corpus/, regress-*.json files (fixed faults) are replayed
at the start of every run; pending-*.json are known faults not fixed yet
(run them with --replay; rename to regress-* once fixed).

Short pass (meson, default ~45 s):  fuzz_vhost_user.py
Long pass:   FUZZ_SECONDS=3600 fuzz_vhost_user.py   (or --seconds 3600)
Again:       fuzz_vhost_user.py --seed S [--inputs FROM:TO]
             (the same inputs; only those numbered FROM to TO-1)
Replay:      fuzz_vhost_user.py --replay fuzz-faults/FILE.json
Environment: FUZZ_SECONDS, FUZZ_SEED, FUZZ_OUT=DIR, FUZZ_ONLY=gen,gen,
FUZZ_CORPUS=name,name (corpus files to use), FUZZ_CANARY_EVERY=N (inputs
between canary rounds, 20), and FUZZ_SKIP=name,name to leave out a known
fault being fixed: no input whose generator name has one of these parts
(a generator, a case such as inflight_set or rx, a mutation such as
memfd_small), that sends request N if reqN is named (req32: no
SET_INFLIGHT_FD), or an fd of a kind named (memfd_ro), nor, with
alloc_fd_leak, a message that meets librte_vhost's fd leak on a vring
index out of range (worked around: src/ports/vhost_msg_fds.c).
"""
import argparse
import fcntl
import glob
import json
import mmap
import os
import random
import socket
import struct
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)
import vhostuser as vu  # noqa: E402
from vhdtest import fd_targets as vt_fd_targets  # noqa: E402
from vhdtest import (BCAST, VHOSTD, Failure, Vhostd, check,  # noqa: E402
                     frame, run, wait_until)

HDR = struct.Struct("<III")
# sizeof(VhostUserMsg.payload) in librte_vhost 22.11 (its largest member is
# VhostUserCryptoSessionParam): a bigger size field is refused before the
# payload is read.
MAX_PAYLOAD = 632
U = 0x7F0000000000   # the "QEMU virtual address" of guest memory
MEM = 1 << 20        # guest memory of the hand-written sessions
NUM = 256            # their ring size
RING_SPAN = 0x8000   # vring I at I * RING_SPAN: desc, +0x1000 avail,
#                      +0x2000 used; buffers from BUF_BASE
BUF_BASE = 0x80000
FEATURES = (1 << vu.F_VERSION_1) | (1 << vu.F_PROTOCOL_FEATURES) | \
    (1 << vu.F_MRG_RXBUF)
PFEATURES = (1 << vu.PF_MQ) | (1 << vu.PF_REPLY_ACK)
F_IOMMU = 33
F_IN_ORDER = 35
A_MAC, B_MAC = "02:00:00:00:0a:01", "02:00:00:00:0b:01"
FZ_MAC = "02:00:00:00:0f:01"
MARK = b"VHDFUZZ"
ASAN = b"libasan" in subprocess.run(["ldd", VHOSTD], stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL).stdout
SLOW = 2.0 if ASAN else 1.0
HANG = 10.0          # seconds without an answer or a close: a hang
CANARY_EVERY = int(os.environ.get("FUZZ_CANARY_EVERY", "20"))
INTERESTING32 = [0, 1, 2, 3, 7, 8, 0xFF, 0x100, 0x101, 0x7FFF, 0x8000,
                 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE,
                 0xFFFFFFFF]
INTERESTING64 = INTERESTING32 + [0x100000000, 0x7FFFFFFFFFFFFFFF,
                                 0x8000000000000000, 0xFFFFFFFFFFFFF000,
                                 0xFFFFFFFFFFFFFFFF, U, U + MEM, MEM,
                                 MEM - 1, 1 << 47, 1 << 63]
BAD_FDS = ["pipe", "devnull", "socket", "dir", "eventfd", "memfd:0",
           "memfd:4096", "memfd_ro:%d" % MEM, "memfd_sealed:%d" % MEM]


class Fault(Exception):
    """vhostd misbehaved: what it did."""


def u64(v):
    return struct.pack("<Q", v & 0xFFFFFFFFFFFFFFFF)


def u32x2(a, b):
    return struct.pack("<II", a & 0xFFFFFFFF, b & 0xFFFFFFFF)


# ---------------------------------------------------------------- inputs

class Session:
    """An input under construction: a list of steps (JSON-able, replayed
    exactly as written) and the guest memory it shares with vhostd."""

    def __init__(self, rng, gen, mem=MEM):
        self.rng = rng
        self.gen = gen
        self.mem = [mem]
        self.steps = []
        self.features = FEATURES

    def input(self):
        return {"gen": self.gen, "mem": self.mem, "steps": self.steps}

    def msg(self, req, payload=b"", fds=(), flags=vu.VERSION, size=None,
            conn=0):
        s = {"op": "msg", "req": req & 0xFFFFFFFF, "flags": flags & 0xFFFFFFFF,
             "size": (len(payload) if size is None else size) & 0xFFFFFFFF,
             "payload": payload.hex(), "fds": list(fds)}
        if conn:
            s["conn"] = conn
        self.steps.append(s)

    def op(self, op, **kw):
        self.steps.append(dict(op=op, **kw))

    def state(self, req, idx, num, **kw):
        self.msg(req, u32x2(idx, num), **kw)

    def vring_addr(self, idx, desc, used, avail, flags=0, log=0, **kw):
        self.msg(vu.SET_VRING_ADDR, struct.pack(
            "<IIQQQQ", idx & 0xFFFFFFFF, flags & 0xFFFFFFFF,
            desc & (2**64 - 1), used & (2**64 - 1), avail & (2**64 - 1),
            log & (2**64 - 1)), **kw)

    def vring_fd(self, req, idx, kind="eventfd", **kw):
        if kind is None:
            self.msg(req, u64(idx | vu.NOFD), **kw)
        else:
            self.msg(req, u64(idx), [kind], **kw)

    def mem_table(self, regions, fds, nregions=None, **kw):
        p = struct.pack("<II", len(regions) if nregions is None else
                        nregions, 0)
        for r in regions:
            p += struct.pack("<QQQQ", *[x & (2**64 - 1) for x in r])
        self.msg(vu.SET_MEM_TABLE, p, fds, **kw)

    def negotiate(self, features=None, pfeatures=PFEATURES, **kw):
        self.features = FEATURES if features is None else features
        self.msg(vu.GET_FEATURES, **kw)
        self.msg(vu.SET_FEATURES, u64(self.features), **kw)
        self.msg(vu.SET_OWNER, **kw)
        if self.features & (1 << vu.F_PROTOCOL_FEATURES):
            self.msg(vu.GET_PROTOCOL_FEATURES, **kw)
            self.msg(vu.SET_PROTOCOL_FEATURES, u64(pfeatures), **kw)

    def std_mem(self, **kw):
        self.mem_table([(0, self.mem[0], U, 0)], ["mem:0"], **kw)

    @staticmethod
    def ring_addrs(i):
        b = (i % 16) * RING_SPAN
        return U + b, U + b + 0x2000, U + b + 0x1000   # desc, used, avail

    def ring(self, i, num=NUM, enable=True, **kw):
        self.state(vu.SET_VRING_NUM, i, num, **kw)
        self.state(vu.SET_VRING_BASE, i, 0, **kw)
        self.vring_addr(i, *self.ring_addrs(i), **kw)
        self.vring_fd(vu.SET_VRING_KICK, i, **kw)
        self.vring_fd(vu.SET_VRING_CALL, i, **kw)
        if enable and self.features & (1 << vu.F_PROTOCOL_FEATURES):
            self.state(vu.SET_VRING_ENABLE, i, 1, **kw)

    def good(self, nq=1, **kw):
        """A complete session, as vhostuser.Guest negotiates it: the
        device comes up on vhostd (new_device)."""
        self.negotiate(**kw)
        self.std_mem(**kw)
        for i in range(2 * nq):
            self.ring(i, **kw)

    # --- guest memory: rings written from the guest side ---------------
    def poke(self, off, data, mem=0):
        self.op("poke", mem=mem, off=off, hex=bytes(data).hex())

    def desc(self, ring, i, addr, length, flags, nxt):
        self.poke((ring % 16) * RING_SPAN + 16 * i,
                  struct.pack("<QIHH", addr & (2**64 - 1),
                              length & 0xFFFFFFFF, flags & 0xFFFF,
                              nxt & 0xFFFF))

    def avail(self, ring, idx, heads, flags=0, start=0):
        base = (ring % 16) * RING_SPAN + 0x1000
        for k, h in enumerate(heads):
            self.poke(base + 4 + 2 * ((start + k) % NUM),
                      struct.pack("<H", h & 0xFFFF))
        self.poke(base, struct.pack("<HH", flags & 0xFFFF, idx & 0xFFFF))


# ---------------------------------------------------------------- corpus

def load_corpus():
    out = {}
    for path in sorted(glob.glob(os.path.join(HERE, "corpus", "*.json"))):
        name = os.path.basename(path)[:-5]
        # regress-*, pending-*: faults (below); guest-*: fuzz_guest's
        if name.startswith(("regress-", "pending-", "guest-")) or \
                CORPUS and name not in CORPUS:
            continue
        with open(path) as f:
            out[name] = json.load(f)["messages"]
    return out


def regressions():
    out = []
    for path in sorted(glob.glob(os.path.join(HERE, "corpus",
                                              "regress-*.json"))):
        with open(path) as f:
            out.append((path, json.load(f)))
    return out


# ---------------------------------------------------------------- running

class Shared:
    """Guest memory the fuzzer shares with vhostd: a memfd named "fuzz"
    (vhostd's mappings of it are found by that name)."""

    def __init__(self, size):
        self.fd = os.memfd_create("fuzz", os.MFD_CLOEXEC)
        os.ftruncate(self.fd, size)
        self.map = mmap.mmap(self.fd, size) if size else None

    def close(self):
        if self.map is not None:
            self.map.close()
        os.close(self.fd)


class Conn:
    """One connection to a vhost-user socket, frontend side; tracks what
    the backend has sent and whether it has closed."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(HANG * SLOW)
        self.s.connect(path)
        self.sent = bytearray()
        self.rbuf = b""
        self.replies = []
        self.closed = False    # by the backend
        self.mine = False      # closed by us

    def send(self, data, fds=()):
        if self.closed or self.mine:
            return False
        try:
            if fds:
                socket.send_fds(self.s, [data], list(fds))
            else:
                self.s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            self.closed = True
            return False
        except socket.timeout:
            raise Fault("vhostd did not read from the socket in %.0f s" %
                        (HANG * SLOW))
        self.sent += data
        return True

    def drain(self, timeout=0.0):
        """Read what the backend sent (waiting up to TIMEOUT for the
        first bytes); fds it sent are closed. False once it closed."""
        if self.closed or self.mine:
            return not self.closed
        self.s.settimeout(timeout)   # 0: non-blocking
        try:
            while True:
                try:
                    data, fds, _, _ = socket.recv_fds(self.s, 1 << 16, 16)
                except (BlockingIOError, socket.timeout):
                    break
                except ConnectionResetError:
                    data, fds = b"", []
                for f in fds:
                    os.close(f)
                if not data:
                    self.closed = True
                    break
                self.rbuf += data
                while len(self.rbuf) >= HDR.size:
                    req, flags, size = HDR.unpack_from(self.rbuf)
                    if len(self.rbuf) < HDR.size + size:
                        break
                    self.replies.append((req, flags))
                    self.rbuf = self.rbuf[HDR.size + size:]
                self.s.settimeout(0)   # more only if already there
        finally:
            self.s.settimeout(HANG * SLOW)
        return not self.closed

    def pending(self):
        """Bytes the backend still waits for to finish the message we
        sent last, as librte_vhost frames the stream: None if it cannot
        frame it (a cut header, a size it refuses: it closes)."""
        pos, n = 0, len(self.sent)
        while True:
            if n - pos == 0:
                return 0
            if n - pos < HDR.size:
                return None
            size = struct.unpack_from("<I", self.sent, pos + 8)[0]
            if size > MAX_PAYLOAD:
                return None
            if n - pos - HDR.size < size:
                return pos + HDR.size + size - n
            pos += HDR.size + size

    def framed(self):
        """The requests of the whole messages sent, as the backend frames
        the stream."""
        pos, n, out = 0, len(self.sent), []
        while n - pos >= HDR.size:
            req, _, size = HDR.unpack_from(self.sent, pos)
            if size > MAX_PAYLOAD or n - pos - HDR.size < size:
                break
            out.append(req)
            pos += HDR.size + size
        return out

    def probe(self):
        """After the input: the backend answers GET_FEATURES or closes.
        Returns "closed" or "answered"; Fault if it does neither."""
        if self.closed or self.mine:
            return "closed"
        pad = self.pending()
        if pad:
            self.send(bytes(pad))
        self.send(HDR.pack(vu.GET_FEATURES, vu.VERSION, 0))
        want = self.framed().count(vu.GET_FEATURES)
        for attempt in range(2):
            end = time.monotonic() + (HANG if attempt == 0 else 5) * SLOW
            while time.monotonic() < end:
                if not self.drain(0.1):
                    return "closed"
                if sum(1 for r, f in self.replies
                       if r == vu.GET_FEATURES) >= want:
                    return "answered"
            # It may be waiting for bytes we did not count: give it a full
            # payload of zeros (then zero headers, which it refuses).
            self.send(bytes(MAX_PAYLOAD + HDR.size))
            want = 10 ** 9
        raise Fault("the backend neither answered nor closed the "
                    "connection within %.0f s" % ((HANG + 5) * SLOW))

    def close(self):
        if not self.mine:
            self.mine = True
            self.s.close()


class Executor:
    """Runs inputs against one vhostd and checks it after each."""

    def __init__(self, d, canary):
        self.d, self.canary = d, canary
        self.base_fds = None
        self.n = 0
        # A connection to fz2 that stays open: its answers show that
        # vhostd's vhost-user thread goes round (sync()).
        self.pinger = vu.Frontend(d.sockets["other"], timeout=HANG * SLOW)
        self.pinger.get_features()

    def ping(self, why):
        try:
            self.pinger.get_features()
        except socket.timeout:
            raise Fault("vhostd's vhost-user thread is stuck: fz2 got no "
                        "answer to GET_FEATURES in %.0f s (%s)" %
                        (HANG * SLOW, why))
        except (vu.Closed, OSError) as e:
            self.alive()
            raise Fault("fz2's connection is gone: %r" % e)

    def sync(self):
        """Return once vhostd's vhost-user thread has handled everything
        that happened before: the close of a connection of ours included
        (librte_vhost serves every socket from one thread; a request is
        answered in a round of its poll loop, and the round after the one
        that answered the first ping also saw what was ready before)."""
        self.ping("after a connection to fz was closed")
        self.ping("after a connection to fz was closed")

    # --- vhostd's state ---------------------------------------------------
    def nfds(self):
        return len(os.listdir("/proc/%d/fd" % self.d.proc.pid))

    def fd_targets(self):
        return vt_fd_targets(self.d.proc.pid)

    def take_baseline(self):
        """vhostd's fds once two readings a moment apart agree."""
        prev = None
        for _ in range(100):
            fds = self.fd_targets()
            if fds == prev:
                break
            prev = fds
            time.sleep(0.05)
        self.base = fds
        self.base_fds = len(fds)

    def fuzz_maps(self):
        with open("/proc/%d/maps" % self.d.proc.pid) as f:
            return [l.strip() for l in f if "/memfd:fuzz" in l]

    def alive(self):
        rc = self.d.proc.poll()
        if rc is not None:
            raise Fault("vhostd exited (%s)" % (
                "signal %d" % -rc if rc < 0 else "exit code %d" % rc))

    def settle(self, what="the closed connection"):
        """vhostd has let go of the fuzzer's connections: fd count at
        its baseline, no mapping of the fuzzer's memory."""
        self.alive()
        self.sync()
        # what librte_vhost frees, it frees before the event thread goes
        # round again: a little time for a loaded machine only
        end = time.monotonic() + HANG / 2 * SLOW
        while True:
            self.alive()
            try:
                n, maps = self.nfds(), self.fuzz_maps()
            except FileNotFoundError:
                n, maps = None, None
            if n == self.base_fds and not maps:
                return
            if time.monotonic() > end:
                self.alive()
                now = self.fd_targets()
                new = sorted("%s -> %s" % (fd, tg) for fd, tg in now.items()
                             if self.base.get(fd) != tg)
                raise Fault("vhostd still holds %s after %.0f s: %s fds "
                            "(baseline %d; new: %s), mappings of fuzzer "
                            "memory: %s" % (what, HANG / 2 * SLOW, n,
                                            self.base_fds, new,
                                            (maps or [])[:4]))
            time.sleep(0.005)

    # --- one input --------------------------------------------------------
    def make_fd(self, kind, mems, keep):
        """A new fd of KIND to send (closed by the caller), or a shared
        memory's fd (MEMS, not to be closed)."""
        name, _, arg = kind.partition(":")
        if name == "mem":
            return mems[int(arg)].fd, False
        if name in ("memfd", "memfd_ro", "memfd_sealed"):
            fd = os.memfd_create("fuzz", os.MFD_CLOEXEC | (
                os.MFD_ALLOW_SEALING if name == "memfd_sealed" else 0))
            os.ftruncate(fd, int(arg or 0))
            if name == "memfd_sealed":
                fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_WRITE |
                            fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW)
            if name == "memfd_ro":
                ro = os.open("/proc/self/fd/%d" % fd, os.O_RDONLY |
                             os.O_CLOEXEC)
                os.close(fd)
                fd = ro
            return fd, True
        if name == "eventfd":
            return vu.eventfd(), True
        if name == "pipe":
            r, w = os.pipe()
            keep.append(w)
            return r, True
        if name == "socket":
            a, b = socket.socketpair()
            keep.append(b.detach())
            return a.detach(), True
        if name == "dir":
            return os.open("/", os.O_RDONLY | os.O_DIRECTORY |
                           os.O_CLOEXEC), True
        # "devnull" and kinds this fuzzer does not make ("other:...")
        return os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC), True

    def send_step(self, conn, data, kinds, mems, keep):
        fds, mine = [], []
        try:
            for k in kinds:
                fd, close = self.make_fd(k, mems, keep)
                fds.append(fd)
                if close:
                    mine.append(fd)
            conn.send(data, fds)
        finally:
            for fd in mine:
                os.close(fd)

    def run_input(self, inp):
        """Run INP (one connection, maybe a second); Fault if vhostd
        misbehaves. Returns the outcome: "answered" or "closed"."""
        self.n += 1
        mems = [Shared(size) for size in inp.get("mem", [])]
        keep = []
        conns = {}
        outcome = "nothing sent"
        try:
            for st in inp["steps"]:
                c = st.get("conn", 0)
                if c not in conns:
                    conns[c] = Conn(self.d.sockets[c])
                conn = conns[c]
                if conn.closed or conn.mine:
                    if c == 0:
                        break
                    continue
                op = st["op"]
                if op == "msg":
                    data = HDR.pack(st["req"], st["flags"], st["size"]) + \
                        bytes.fromhex(st["payload"])
                    self.send_step(conn, data, st["fds"], mems, keep)
                    conn.drain()
                elif op == "raw":
                    self.send_step(conn, bytes.fromhex(st["hex"]),
                                   st.get("fds", []), mems, keep)
                    conn.drain()
                elif op == "close":
                    conn.close()
                elif op == "sleep":
                    time.sleep(st["ms"] / 1000.0)
                    conn.drain()
                elif op == "wait":
                    # until the backend has handled everything sent so
                    # far (the probe: GET_FEATURES answered), or closed
                    if conn.probe() == "closed":
                        break
                elif op == "poke":
                    m = mems[st["mem"]].map
                    if m is None:
                        continue
                    data = bytes.fromhex(st["hex"])
                    off = st["off"] % max(1, len(m) - len(data))
                    m[off:off + len(data)] = data
                elif op == "flood":
                    self.canary.flood(st["n"])
                elif op == "up":
                    # wait (bounded) for the fuzzed port to come up
                    end = time.monotonic() + 3 * SLOW
                    while time.monotonic() < end and not conn.closed and \
                            self.d.port(self.d.fz)["state"] != "up":
                        conn.drain(0.02)
                elif op == "check_other":
                    self.check_other()
                elif op == "expect_closed":
                    end = time.monotonic() + HANG * SLOW
                    while conn.drain(0.1) and time.monotonic() < end:
                        pass
                    if not conn.closed:
                        raise Fault("a second connection on %s was served "
                                    "while the first was open" %
                                    self.d.fz)
            for c in sorted(conns):
                r = conns[c].probe()
                if c == 0:
                    outcome = r
        except OSError:
            self.alive()   # vhostd gone: that is the fault
            raise
        finally:
            for c in conns.values():
                c.close()
            for m in mems:
                m.close()
            for fd in keep:
                os.close(fd)
        self.alive()
        self.settle()
        self.check_mbufs()
        return outcome

    def check_mbufs(self):
        """With the fuzzed guest gone and the canary idle, every mbuf is
        back: fewer (a leak) or more (a double free: the pool hands the
        same mbuf out twice) is a fault."""
        end = time.monotonic() + HANG * SLOW
        while True:
            n = self.d.mbufs_in_use()
            if n == self.base_mbufs:
                return
            if n > self.d.mbufs_total or time.monotonic() > end:
                raise Fault("mbufs in use: %d, baseline %d%s" % (
                    n, self.base_mbufs, " (more mbufs returned than taken: "
                    "a double free)" if n > self.d.mbufs_total else ""))
            time.sleep(0.01)

    def check_other(self):
        """Another port's socket is served while fz's connection is held
        up (librte_vhost handles every socket in one thread)."""
        self.ping("while fz's connection held a message header without "
                  "its payload: one connection blocks every vhost-user "
                  "socket of vhostd")


# ---------------------------------------------------------------- canary

class Canary:
    """Guests a and b: a sends frames with unique payloads to b, which
    must get every one byte for byte."""

    def __init__(self, d, rng):
        self.d, self.rng = d, rng
        self.a = vu.Guest(d.t.path("a.sock"))
        self.b = vu.Guest(d.t.path("b.sock"))
        d.wait_up("a", "b")
        self.round = 0
        self.trace = []

    def drain(self):
        """Frames b received (a's are dropped); b's last used ring
        entries are kept in .trace for a fault report."""
        self.a.rxq.rx()
        q, out = self.b.rxq, []
        for i, n in q.reap():
            out.append(bytes(q.mem.map[q.bufs[i] + vu.VNET_HDR:
                                       q.bufs[i] + n]))
            self.trace.append((i, n, out[-1][14:29].hex()))
        del self.trace[:-40]
        q.post_rx()
        return out

    def send(self, g, frames):
        for f in frames:
            end = time.monotonic() + 10 * SLOW
            while not g.txq.tx(f):
                check(time.monotonic() < end, "the canary's tx ring stays "
                      "full: vhostd does not take its frames")
                time.sleep(0.01)

    def flood(self, n):
        """N broadcasts from a: they reach fz's rx ring, if it has one."""
        self.drain()
        self.send(self.a, [frame(BCAST, A_MAC, payload=b"FLOOD" + bytes(
            [i]), size=self.rng.randint(60, 1500)) for i in range(n)])

    def counters(self):
        return {p: self.d.port(p) for p in ("a", "b", "fz", "fz2")}

    def check(self, n=12):
        """Raise Fault unless N frames from a reach b intact."""
        self.round += 1
        self.drain()
        self.send(self.b, [frame(BCAST, B_MAC, payload=b"LEARN", size=60)])
        # b is where B is, whatever the fuzzed guest claimed before
        wait_until(lambda: self.d.fdb("br0").get(B_MAC) == "b", 10 * SLOW,
                   "the bridge to learn %s on b" % B_MAC)
        before = self.counters()
        frames = [frame(B_MAC if i else BCAST, A_MAC, payload=MARK +
                        struct.pack("!II", self.round, i) +
                        self.rng.randbytes(self.rng.randint(0, 16)),
                        size=self.rng.randint(60, 1514))
                  for i in range(n)]
        self.send(self.a, frames)
        got = []

        def arrived():
            got.extend(f for f in self.drain()
                       if f[12:14] == b"\x88\xb5" and f[14:21] == MARK and
                       f[6:12] == bytes.fromhex(A_MAC.replace(":", "")))
            return len(got) >= n
        end = time.monotonic() + 15 * SLOW
        while not arrived() and time.monotonic() < end:
            time.sleep(0.01)
        if sorted(got) != sorted(frames):
            after = self.counters()
            delta = {p: {k: v - before[p][k] for k, v in after[p].items()
                         if isinstance(v, int) and v != before[p][k]}
                     for p in after}
            lost = ["%d:%d" % (i, len(f)) for i, f in enumerate(frames)
                    if f not in got]
            bad = [f[:40].hex() for f in got if f not in frames]
            raise Fault("canary round %d: a -> b: %d of %d frames arrived "
                        "intact; lost (index:size) %s; corrupted or foreign "
                        "%s; counters during the round: %s; fdb: %s; b's "
                        "last used entries (id, len, data): %s" %
                        (self.round, len(got) - len(bad), n, lost, bad,
                         delta, self.d.fdb("br0"), self.trace[-16:]))
        try:
            self.d.query("/vhostd/info")
        except (OSError, ValueError) as e:
            raise Fault("telemetry does not answer: %s" % e)

    def close(self):
        self.a.close()
        self.b.close()


# ---------------------------------------------------------------- mutations

def rand_fd_kind(rng, skip=()):
    kinds = BAD_FDS + ["memfd:%d" % rng.choice(
        [1, 4095, 8192, MEM // 2, MEM, 1 << 28])]
    if "memfd_small" in skip:
        kinds = [k for k in kinds if not k.startswith("memfd")] + \
            ["memfd:%d" % (1 << 28)]
    return rng.choice(kinds)


def mutate_message(rng, m, skip):
    """Mutate one message (a step dict, changed in place) in one way;
    returns the name of the mutation (or None if skipped)."""
    p = bytearray(bytes.fromhex(m["payload"]))
    choices = ["flip", "field", "size_small", "size_large", "size_huge",
               "req", "flags", "fd_add", "fd_del", "fd_kind", "grow",
               "shrink"]
    if m["req"] == vu.SET_MEM_TABLE and m["fds"]:
        choices += ["memfd_small"] * 3
    what = rng.choice([c for c in choices if c not in skip] or ["flip"])
    if what == "flip" and p:
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(p))
            if rng.random() < 0.5:
                p[i] ^= 1 << rng.randrange(8)
            else:
                p[i] = rng.randrange(256)
    elif what == "field" and len(p) >= 4:
        if len(p) >= 8 and rng.random() < 0.6:
            off = rng.randrange(len(p) // 8) * 8
            p[off:off + 8] = u64(rng.choice(INTERESTING64))
        else:
            off = rng.randrange(len(p) // 4) * 4
            p[off:off + 4] = struct.pack("<I", rng.choice(INTERESTING32))
    elif what == "size_small":
        m["size"] = rng.randrange(0, max(1, len(p)))
    elif what == "size_large":
        m["size"] = len(p) + rng.choice([1, 4, 8, 32,
                                         max(1, MAX_PAYLOAD - len(p))])
    elif what == "size_huge":
        m["size"] = rng.choice([MAX_PAYLOAD + 1, 0x1000, 0x10000,
                                0x7FFFFFFF, 0xFFFFFFFF])
    elif what == "req":
        m["req"] = rng.choice([0, 23, 33, 34, 35, 36, 37, 38, 41, 42, 255,
                               0x8000, 0xFFFFFFFF, rng.randrange(1 << 32),
                               rng.randrange(1, 41)])
    elif what == "flags":
        m["flags"] = rng.choice([0, 2, 3, 0x1 | vu.REPLY, 0x1 |
                                 vu.NEED_REPLY, 0x1 | 0x10, 0xFFFFFFFF,
                                 rng.randrange(1 << 32)])
    elif what == "fd_add":
        m["fds"] = m["fds"] + [rand_fd_kind(rng, skip)
                               for _ in range(rng.choice([1, 1, 2, 8, 9]))]
    elif what == "fd_del" and m["fds"]:
        del m["fds"][rng.randrange(len(m["fds"]))]
    elif what == "fd_kind" and m["fds"]:
        m["fds"][rng.randrange(len(m["fds"]))] = rand_fd_kind(rng, skip)
    elif what == "memfd_small":
        i = rng.randrange(len(m["fds"]))
        size = int(m["fds"][i].split(":")[1]) if \
            m["fds"][i].startswith("memfd:") else MEM
        m["fds"][i] = "memfd:%d" % rng.choice([0, 4096, size // 2,
                                               max(0, size - 4096)])
    elif what == "grow":
        p += rng.randbytes(rng.randint(1, 64))
    elif what == "shrink" and p:
        del p[rng.randrange(len(p)):]
    else:
        return mutate_message(rng, m, skip | {what})
    if what not in ("size_small", "size_large", "size_huge"):
        if m["size"] == len(bytes.fromhex(m["payload"])):
            m["size"] = len(p)
    m["payload"] = bytes(p).hex()
    return what


def mutate_session(rng, steps, skip, corpus=None, n=None):
    """Apply N (1-4) mutations to a list of steps; returns their names."""
    names = []
    for _ in range(n or rng.choice([1, 1, 1, 2, 2, 3, 4])):
        msgs = [i for i, s in enumerate(steps) if s["op"] == "msg"]
        if not msgs:
            break
        what = rng.choice(["msg"] * 6 + ["drop", "dup", "swap", "move",
                                         "truncate", "splice"])
        if what in skip:
            continue
        i = rng.choice(msgs)
        if what == "msg":
            names.append(mutate_message(rng, steps[i], skip))
            continue
        if what == "drop":
            del steps[i]
        elif what == "dup":
            steps.insert(i, json.loads(json.dumps(steps[i])))
        elif what == "swap":
            j = rng.choice(msgs)
            steps[i], steps[j] = steps[j], steps[i]
        elif what == "move":
            s = steps.pop(i)
            steps.insert(rng.randrange(len(steps) + 1), s)
        elif what == "splice" and corpus:
            src = rng.choice(list(corpus.values()))
            steps.insert(i, step_of(rng.choice(src)))
        elif what == "truncate":
            s = steps[i]
            data = HDR.pack(s["req"], s["flags"], s["size"]) + \
                bytes.fromhex(s["payload"])
            cut = rng.randrange(1, len(data))
            steps[i:] = [{"op": "raw", "hex": data[:cut].hex(),
                          "fds": s["fds"]}, {"op": "close"}]
        names.append(what)
    return names


def step_of(m):
    return {"op": "msg", "req": m["request"], "flags": m["flags"],
            "size": m["size"], "payload": m["payload"],
            "fds": list(m["fds"])}


# ---------------------------------------------------------------- generators

def gen_replay(rng, corpus, skip):
    name = rng.choice(sorted(corpus))
    steps = [step_of(m) for m in corpus[name]]
    # stop somewhere, or not at all
    if rng.random() < 0.3:
        steps = steps[:rng.randint(1, len(steps))]
    muts = mutate_session(rng, steps, skip, corpus)
    if rng.random() < 0.3:
        steps.append({"op": "flood", "n": rng.randint(1, 8)})
    return {"gen": "replay:%s:%s" % (name, ",".join(muts)), "mem": [],
            "steps": steps}


def gen_replay_clean(rng, corpus, skip):
    """A recorded session as it was, cut anywhere: vhostd must serve it
    (the probe is answered) unless cut in the middle of something."""
    name = rng.choice(sorted(corpus))
    steps = [step_of(m) for m in corpus[name]]
    steps = steps[:rng.randint(1, len(steps))]
    return {"gen": "replay_clean:%s" % name, "mem": [], "steps": steps}


def gen_mem_table(rng, skip):
    s = Session(rng, "mem_table")
    s.negotiate()
    case = rng.choice(["zero", "many", "overlap", "overflow", "size0",
                       "nregions_fds", "fd_kind", "gpa_wrap", "uaddr_dup",
                       "remap_running", "offset"])
    s.gen += ":" + case
    M = s.mem[0]
    if case == "zero":
        s.mem_table([], [])
    elif case == "many":
        n = rng.choice([9, 10, 16, 255, 0xFFFFFFFF])
        regs = [(i * M, M, U + i * M, 0) for i in range(min(n, 8))]
        s.mem_table(regs, ["mem:0"] * len(regs) + ["memfd:%d" % M] *
                    rng.choice([0, 1, 2]), nregions=n)
    elif case == "overlap":
        regs = [(0, M, U, 0), (M // 2, M, U + M // 2, 0)]
        if rng.random() < 0.5:
            regs.append((0, M, U, 0))
        s.mem_table(regs, ["mem:0"] * len(regs))
    elif case == "overflow":
        size = rng.choice([2**64 - 4096, 2**63, 2**64 - 1, 1 << 48])
        off = rng.choice([4096, 2**64 - 4096, 2**63, M])
        s.mem_table([(rng.choice([0, 2**64 - 4096]), size,
                      rng.choice([U, 2**64 - 4096]), off)],
                    ["mem:0"])
    elif case == "size0":
        s.mem_table([(0, 0, U, 0)], ["mem:0"])
    elif case == "nregions_fds":
        n = rng.randint(1, 3)
        s.mem_table([(i * M, M, U + i * M, 0) for i in range(n)],
                    ["mem:0"] * rng.choice([0, n - 1, n + 1, 8]))
    elif case == "fd_kind":
        s.mem_table([(0, M, U, 0)], [rng.choice(BAD_FDS)])
    elif case == "gpa_wrap":
        s.mem_table([(2**64 - M // 2, M, U, 0)], ["mem:0"])
    elif case == "uaddr_dup":
        s.mem_table([(0, M // 2, U, 0), (M // 2, M // 2, U, M // 2)],
                    ["mem:0", "mem:0"])
    elif case == "offset":
        # offset and size within the file, or just at its end
        off = rng.choice([0, 4096, M - 4096, 1])
        s.mem_table([(0, M - off - (off % 4096), U, off)], ["mem:0"])
    elif case == "remap_running":
        s.std_mem()
        for i in range(2):
            s.ring(i)
        s.op("up")
        s.op("flood", n=4)
        # the memory moves under running rings
        s.mem.append(M)
        s.mem_table([(0, M, U + rng.choice([0, M, 4096]), 0)],
                    ["mem:1"])
        s.op("flood", n=4)
        s.op("sleep", ms=20)
    if case != "remap_running":
        for i in range(2):
            s.ring(i)
        s.op("flood", n=2)
    return s.input()


def gen_memfd_small(rng, skip):
    """The region is bigger than its file: vhostd's reads of the rings
    or buffers beyond the end of the file must not kill it (SIGBUS)."""
    s = Session(rng, "memfd_small")
    s.negotiate()
    M = s.mem[0]
    size = rng.choice([0, 4096, 0x2000, M // 2])
    s.mem[0] = size
    s.mem_table([(0, M, U, 0)], ["mem:0"])
    for i in range(2):
        s.ring(i)
    s.op("up")
    s.op("flood", n=4)
    s.op("sleep", ms=30)
    return s.input()


def gen_mem_offset_eof(rng, skip):
    """mmap_offset past the end of the file."""
    s = Session(rng, "mem_offset_eof")
    s.negotiate()
    M = s.mem[0]
    s.mem_table([(0, M, U, rng.choice([M, M + 4096, 4 * M]))], ["mem:0"])
    for i in range(2):
        s.ring(i)
    s.op("flood", n=4)
    s.op("sleep", ms=30)
    return s.input()


def gen_vring(rng, skip):
    s = Session(rng, "vring")
    s.negotiate()
    case = rng.choice(["addr_outside", "addr_straddle", "num", "index",
                       "before_mem", "log_addr", "base", "unaligned"])
    s.gen += ":" + case
    if case != "before_mem":
        s.std_mem()
    d, us, a = Session.ring_addrs(0)
    if case == "addr_outside":
        bad = rng.choice([0, 1, U - 4096, U + MEM, U + 2 * MEM, 2**64 - 16,
                          rng.randrange(2**64)])
        which = rng.randrange(3)
        addrs = [d, us, a]
        addrs[which] = bad
        s.state(vu.SET_VRING_NUM, 0, NUM)
        s.vring_addr(0, *addrs)
        s.vring_fd(vu.SET_VRING_KICK, 0)
        s.ring(1)
    elif case == "addr_straddle":
        s.state(vu.SET_VRING_NUM, 0, NUM)
        s.vring_addr(0, U + MEM - 8, U + MEM - 16, U + MEM - 4)
        s.vring_fd(vu.SET_VRING_KICK, 0)
        s.ring(1)
    elif case == "num":
        n = rng.choice([0, 1, 3, 255, 257, 1000, 32768, 32769, 65535,
                        65536, 0x80000000, 0xFFFFFFFF])
        i = rng.randrange(2)
        s.state(vu.SET_VRING_NUM, i, n)
        s.vring_addr(i, *Session.ring_addrs(i))
        s.vring_fd(vu.SET_VRING_KICK, i)
        s.ring(1 - i)
    elif case == "index":
        idx = rng.choice([2, 3, 127, 254, 255, 256, 0x100, 0x101, 0x1FF,
                          0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF])
        req = rng.choice([vu.SET_VRING_NUM, vu.SET_VRING_BASE,
                          vu.GET_VRING_BASE, vu.SET_VRING_ENABLE,
                          vu.SET_VRING_ADDR, vu.SET_VRING_KICK,
                          vu.SET_VRING_CALL, vu.SET_VRING_ERR])
        if req == vu.SET_VRING_ADDR:
            s.vring_addr(idx, d, us, a)
        elif req in (vu.SET_VRING_KICK, vu.SET_VRING_CALL,
                     vu.SET_VRING_ERR):
            if rng.random() < 0.5:
                s.msg(req, u64(idx | vu.NOFD))
            else:
                s.msg(req, u64(idx), ["eventfd"])
        else:
            s.state(req, idx, rng.choice([0, 1, NUM]))
        s.ring(0)
        s.ring(1)
    elif case == "before_mem":
        s.ring(0)
        s.ring(1)
        s.std_mem()
    elif case == "log_addr":
        s.state(vu.SET_VRING_NUM, 0, NUM)
        s.vring_addr(0, d, us, a, flags=1, log=rng.choice(
            [0, 2**64 - 8, MEM + 8, rng.randrange(2**64)]))
        s.ring(1)
    elif case == "base":
        s.state(vu.SET_VRING_NUM, 0, NUM)
        s.state(vu.SET_VRING_BASE, 0, rng.choice([NUM, 0x8000, 0xFFFF,
                                                 0x10000, 0xFFFFFFFF]))
        s.vring_addr(0, d, us, a)
        s.vring_fd(vu.SET_VRING_KICK, 0)
        s.ring(1)
    elif case == "unaligned":
        s.state(vu.SET_VRING_NUM, 0, NUM)
        s.vring_addr(0, d + 1, us + 3, a + 1)
        s.vring_fd(vu.SET_VRING_KICK, 0)
        s.ring(1)
    s.op("flood", n=2)
    s.op("sleep", ms=10)
    return s.input()


def gen_running(rng, skip):
    """A device that came up, then something changes under it."""
    s = Session(rng, "running")
    nq = rng.choice([1, 1, 2])
    s.good(nq)
    s.op("up")
    case = rng.choice(["features", "get_base_more", "reset_owner",
                       "status", "num", "addr", "kick", "disable",
                       "owner", "mem_again", "many_queues", "vring_fd_nofd"])
    s.gen += ":" + case
    if case == "features":
        f = FEATURES ^ (1 << rng.choice([vu.F_MRG_RXBUF, vu.F_VERSION_1,
                                         vu.F_EVENT_IDX, vu.F_RING_PACKED,
                                         vu.F_INDIRECT_DESC, vu.F_LOG_ALL,
                                         F_IOMMU, F_IN_ORDER]))
        s.msg(vu.SET_FEATURES, u64(f))
    elif case == "get_base_more":
        s.state(vu.GET_VRING_BASE, rng.randrange(2 * nq), 0)
        for _ in range(rng.randint(1, 4)):
            s.ring(rng.randrange(2 * nq))
    elif case == "reset_owner":
        s.msg(vu.RESET_OWNER)
        if rng.random() < 0.5:
            s.good(nq)
    elif case == "status":
        s.msg(vu.SET_STATUS, u64(rng.choice([0, 1, 3, 7, 0xF, 0x40, 0x80,
                                             0x8F, 0xFF, 2**64 - 1])))
        s.msg(vu.GET_STATUS)
    elif case == "num":
        s.state(vu.SET_VRING_NUM, 0, rng.choice([0, 1, 3, 65536, 0x8000]))
    elif case == "addr":
        s.vring_addr(rng.randrange(2), U + MEM - 64, U, U)
    elif case == "kick":
        s.vring_fd(vu.SET_VRING_KICK, rng.randrange(2),
                   rng.choice([None, "eventfd", "pipe", "devnull"]))
    elif case == "disable":
        s.state(vu.SET_VRING_ENABLE, rng.randrange(2), 0)
    elif case == "owner":
        s.msg(vu.SET_OWNER)
    elif case == "mem_again":
        s.std_mem()
        s.mem_table([(0, MEM // 2, U, 0)], ["mem:0"])
    elif case == "many_queues":
        top = rng.choice([4, 16, 64, 255])
        for i in range(2 * nq, top + 1, max(1, top // 8)):
            s.ring(i)
    elif case == "vring_fd_nofd":
        s.vring_fd(rng.choice([vu.SET_VRING_CALL, vu.SET_VRING_KICK]),
                   rng.randrange(2), None)
    s.op("flood", n=rng.randint(1, 6))
    s.op("sleep", ms=10)
    return s.input()


def gen_rings_garbage(rng, skip):
    """A running device whose guest writes garbage into its rings: the
    datapath must neither crash, nor leak mbufs, nor stop the canary."""
    s = Session(rng, "rings_garbage")
    s.good(1)
    s.op("up")
    n = rng.randint(1, 32)
    used = set()
    for _ in range(rng.randint(1, 3)):
        ring = rng.choice([0, 1, 1])
        used.add("tx" if ring else "rx")
        for i in range(n):
            addr = rng.choice([BUF_BASE + 2048 * i, 0, MEM - 1, MEM,
                               MEM - 100, 2**64 - 1, rng.randrange(2**64),
                               rng.randrange(MEM)])
            length = rng.choice([0, 1, 11, 12, 60, 1514, 2048, 65535,
                                 0x10000, 0xFFFFFFFF, rng.randrange(4096)])
            flags = rng.choice([0, 1, 2, 3, 4, 5, 6, 7, rng.randrange(65536)])
            nxt = rng.choice([i, (i + 1) % NUM, 0, rng.randrange(NUM),
                              rng.randrange(65536)])
            s.desc(ring, rng.randrange(NUM) if rng.random() < 0.2 else i,
                   addr, length, flags, nxt)
        heads = [rng.choice([rng.randrange(n), rng.randrange(65536)])
                 for _ in range(n)]
        idx = rng.choice([n, n + rng.randrange(NUM), NUM, NUM + 1, 0x8000,
                          0xFFFF, rng.randrange(65536)])
        s.avail(ring, idx, heads, flags=rng.choice([0, 1]))
        if ring == 0:
            s.op("flood", n=rng.randint(1, 8))
        s.op("sleep", ms=rng.choice([5, 20, 50]))
    if rng.random() < 0.5:
        s.msg(vu.GET_VRING_BASE, u32x2(rng.randrange(2), 0))
    s.gen += ":" + ",".join(sorted(used))
    return s.input()


def gen_tiny_rx_buffers(rng, skip):
    """The guest's rx ring offers tiny device-writable buffers and an avail
    index far ahead of the ring: every frame vhostd copies in takes many
    buffers (mergeable rx), a burst more than the ring has."""
    s = Session(rng, "tiny_rx_buffers")
    s.good(1)
    s.op("up")
    n = rng.choice([1, 2, 4, 16])
    for i in range(n):
        s.desc(0, i, BUF_BASE + 64 * i, rng.choice([1, 2, 8, 12, 13, 64]),
               2, 0)
    s.avail(0, rng.choice([NUM, NUM + 1, 0x8000, 0xFFFF]),
            [rng.randrange(n) for _ in range(NUM)])
    s.op("flood", n=rng.randint(1, 16))
    s.op("sleep", ms=rng.choice([5, 30]))
    return s.input()


def gen_small_ring(rng, skip):
    """A ring smaller than a burst (librte_vhost takes up to 32 frames at
    once) whose guest makes more entries available than the ring has."""
    s = Session(rng, "small_ring")
    s.negotiate()
    s.std_mem()
    size = rng.choice([1, 2, 4, 8, 16, 32])
    ring = rng.choice([0, 1])
    s.gen += ":%s" % ("tx" if ring else "rx")
    for i in range(2):
        s.ring(i, num=size if i == ring else NUM)
    s.op("up")
    for i in range(size):
        fr = bytes(vu.VNET_HDR) + frame(BCAST, FZ_MAC, size=60 + i)
        s.poke(BUF_BASE + 2048 * i, fr)
        s.desc(ring, i, BUF_BASE + 2048 * i, 2048 if ring == 0 else len(fr),
               2 if ring == 0 else 0, 0)
    s.avail(ring, rng.choice([size, size + 1, 32, 64, 0x8000]),
            [i % size for i in range(NUM)])
    if ring == 0:
        s.op("flood", n=rng.randint(size, 32))
    s.op("sleep", ms=rng.choice([5, 30]))
    return s.input()


def gen_good_traffic(rng, skip):
    """A well-behaved fuzz guest that sends and receives real frames (so
    the bridge learns it) and then goes away: nothing may be left."""
    s = Session(rng, "good_traffic")
    s.good(1)
    s.op("up")
    for i in range(rng.randint(1, 8)):
        f = bytes(vu.VNET_HDR) + frame(rng.choice([BCAST, A_MAC,
                                                   "02:00:00:00:0e:01"]),
                                       FZ_MAC, size=rng.randint(60, 1514))
        s.poke(BUF_BASE + 2048 * i, f)
        s.desc(1, i, BUF_BASE + 2048 * i, len(f), 0, 0)
    s.avail(1, i + 1, list(range(i + 1)))
    for j in range(32):
        s.desc(0, j, BUF_BASE + 0x10000 + 2048 * j, 2048, 2, 0)
    s.avail(0, 32, list(range(32)))
    s.op("flood", n=rng.randint(1, 8))
    s.op("sleep", ms=rng.choice([5, 30]))
    if rng.random() < 0.5:
        s.msg(vu.GET_VRING_BASE, u32x2(0, 0))
        s.msg(vu.GET_VRING_BASE, u32x2(1, 0))
    return s.input()


def gen_misc(rng, skip):
    """Less common requests, before and after the device is up."""
    s = Session(rng, "misc")
    up = rng.random() < 0.6
    if up:
        s.good(1)
    else:
        s.negotiate()
    case = rng.choice(["log_base", "log_fd", "inflight_get", "inflight_set",
                       "postcopy", "iotlb", "config", "crypto", "rarp",
                       "mtu", "slave", "queue_num", "vring_err", "status"])
    s.gen += ":" + case + (":up" if up else "")
    if case == "log_base":
        size = rng.choice([0, 1, 4096, MEM // 4096 // 8, 1 << 20, 2**64 - 1])
        off = rng.choice([0, 1, 4096, 2**64 - 4096])
        fd = rng.choice(["memfd:%d" % rng.choice([0, 8, 4096]), "eventfd",
                         "devnull", "memfd:%d" % (1 << 20)])
        if fd.startswith("memfd:") and int(fd[6:]) < size + off and \
                "log_small" in skip:
            fd = "memfd:%d" % min(size + off, 1 << 24)
        s.msg(vu.SET_LOG_BASE, struct.pack("<QQ", size & (2**64 - 1),
                                           off & (2**64 - 1)), [fd],
              size=rng.choice([16, 16, 16, 8, 24]))
        if rng.random() < 0.7:
            s.msg(vu.SET_FEATURES, u64(FEATURES | (1 << vu.F_LOG_ALL)))
        s.op("flood", n=4)
        s.op("sleep", ms=20)
    elif case == "log_fd":
        s.msg(vu.SET_LOG_FD, b"", [rng.choice(["eventfd", "pipe", "devnull"])])
    elif case == "inflight_get":
        s.msg(vu.GET_INFLIGHT_FD, struct.pack(
            "<QQHH", 0, 0, rng.choice([0, 1, 2, 255, 256, 0xFFFF]),
            rng.choice([0, 1, 256, 1024, 0x8000, 0xFFFF])),
            size=rng.choice([20, 20, 24, 8]))
    elif case == "inflight_set":
        nqs = rng.choice([0, 1, 2, 4, 256, 257, 0xFFFF])
        qsize = rng.choice([0, 1, 256, 1024, 0xFFFF])
        msize = rng.choice([0, 64, 4096, 1 << 20, 2**64 - 1])
        moff = rng.choice([0, 4096, 2**64 - 4096])
        fd = rng.choice(["memfd:%d" % rng.choice([0, 4096, 1 << 20]),
                         "eventfd", "devnull"])
        if "inflight_small" in skip:
            fd = "memfd:%d" % (1 << 22)
        s.msg(vu.SET_INFLIGHT_FD, struct.pack(
            "<QQHH", msize & (2**64 - 1), moff & (2**64 - 1), nqs, qsize),
            [fd], size=rng.choice([20, 20, 24, 8]))
        s.op("flood", n=2)
    elif case == "postcopy":
        for req in rng.sample([vu.POSTCOPY_ADVISE, vu.POSTCOPY_LISTEN,
                               vu.POSTCOPY_END, vu.SET_MEM_TABLE],
                              rng.randint(1, 4)):
            if req == vu.SET_MEM_TABLE:
                s.std_mem()
            else:
                s.msg(req)
    elif case == "iotlb":
        if rng.random() < 0.7:
            s.msg(vu.SET_FEATURES, u64(FEATURES | (1 << F_IOMMU)))
        for _ in range(rng.randint(1, 6)):
            s.msg(vu.IOTLB_MSG, struct.pack(
                "<QQQBB6x", rng.choice([0, U, 2**64 - 4096,
                                        rng.randrange(2**64)]),
                rng.choice([0, 4096, MEM, 2**64 - 1]),
                rng.choice([U, 0, rng.randrange(2**64)]),
                rng.randrange(8), rng.choice([1, 2, 3, 4, 0, 255])))
        s.op("flood", n=2)
    elif case == "config":
        req = rng.choice([vu.GET_CONFIG, vu.SET_CONFIG])
        size = rng.choice([0, 1, 6, 256, 257, 0xFFFFFFFF])
        body = struct.pack("<III", rng.choice([0, 6, 255, 0xFFFFFFFF]),
                           size, rng.choice([0, 1])) + rng.randbytes(
            rng.choice([0, 6, 256]))
        s.msg(req, body)
    elif case == "crypto":
        s.msg(rng.choice([vu.CRYPTO_CREATE_SESS, vu.CRYPTO_CLOSE_SESS]),
              rng.randbytes(rng.choice([0, 8, 64, 200])))
    elif case == "rarp":
        s.msg(vu.SEND_RARP, bytes.fromhex("020000000f02") + bytes(2))
        s.op("flood", n=1)
    elif case == "mtu":
        s.msg(vu.NET_SET_MTU, u64(rng.choice([0, 67, 68, 1500, 9000, 65535,
                                              65536, 2**64 - 1])))
    elif case == "slave":
        s.msg(vu.SET_SLAVE_REQ_FD, b"", [rng.choice(["socket", "eventfd",
                                                      "devnull", "pipe"])])
        if rng.random() < 0.5:
            s.msg(vu.SET_FEATURES, u64(FEATURES | (1 << F_IOMMU)))
            s.op("flood", n=2)
    elif case == "queue_num":
        s.msg(vu.GET_QUEUE_NUM)
    elif case == "vring_err":
        s.vring_fd(vu.SET_VRING_ERR, rng.randrange(3),
                   rng.choice([None, "eventfd", "devnull"]))
    elif case == "status":
        s.msg(vu.SET_STATUS, u64(rng.randrange(256)))
        s.msg(vu.GET_STATUS)
    if rng.random() < 0.3:
        mutate_session(rng, s.steps, skip, n=1)
    return s.input()


def gen_random(rng, skip):
    """Random requests with random payloads, after a random prefix of a
    good session."""
    s = Session(rng, "random")
    s.good(1)
    k = rng.randint(0, len(s.steps))
    del s.steps[k:]
    for _ in range(rng.randint(1, 12)):
        req = rng.randrange(0, 44)
        size = rng.choice([0, 8, 8, 16, 20, 40, 264, 268, 272, 273,
                           MAX_PAYLOAD])
        p = bytearray(rng.randbytes(size))
        if size >= 8 and rng.random() < 0.5:
            p[0:8] = u64(rng.choice(INTERESTING64))
        kinds = [rand_fd_kind(rng, skip) for _ in range(rng.choice(
            [0, 0, 0, 1, 1, 2, 8]))]
        if "memfd_small" in skip and req == vu.SET_MEM_TABLE:
            kinds = []
        s.msg(req, bytes(p), kinds, flags=rng.choice(
            [vu.VERSION, vu.VERSION, vu.VERSION | vu.NEED_REPLY]))
    return s.input()


def gen_second_conn(rng, skip):
    """A second connection while the first is open is refused; the first
    goes on."""
    s = Session(rng, "second_conn")
    s.good(1)
    s.op("wait")
    s2 = Session(rng, "")
    if rng.random() < 0.5:
        s2.good(1, conn=1)
    else:
        s2.negotiate(conn=1)
    s.steps += s2.steps[:rng.randint(1, len(s2.steps))]
    s.op("expect_closed", conn=1)
    s.msg(vu.GET_FEATURES)
    return s.input()


def gen_framing(rng, skip):
    """Messages cut or joined at odd places: a header split over two
    writes, a payload sent late, bytes after a close."""
    s = Session(rng, "framing")
    s.good(1)
    k = rng.randint(0, len(s.steps))
    del s.steps[k:]
    data = HDR.pack(vu.SET_VRING_NUM, vu.VERSION, 8) + u32x2(0, NUM)
    case = rng.choice(["split_hdr", "late_payload", "zeros", "ones",
                       "cut_close"])
    s.gen += ":" + case
    if case == "split_hdr":
        cut = rng.randint(1, 11)
        s.op("raw", hex=data[:cut].hex())
        s.op("sleep", ms=rng.choice([0, 5]))
        s.op("raw", hex=data[cut:].hex())
    elif case == "late_payload":
        s.op("raw", hex=data[:12].hex())
        s.op("sleep", ms=rng.choice([1, 20]))
        s.op("raw", hex=data[12:].hex())
    elif case == "zeros":
        s.op("raw", hex=bytes(rng.choice([12, 100, 4096])).hex())
    elif case == "ones":
        s.op("raw", hex=(b"\xff" * rng.choice([12, 100])).hex())
    elif case == "cut_close":
        s.op("raw", hex=data[:rng.randint(1, len(data) - 1)].hex(),
             fds=rng.choice([[], ["eventfd"]]))
        s.op("close")
    return s.input()


def gen_stall(rng, skip):
    """A header whose payload never comes, the connection left open:
    vhostd must still serve its other sockets."""
    s = Session(rng, "stall")
    if rng.random() < 0.5:
        s.good(1)
    s.op("raw", hex=HDR.pack(rng.choice([vu.SET_FEATURES, vu.SET_VRING_NUM,
                                         vu.SET_MEM_TABLE]),
                             vu.VERSION, 8).hex())
    s.op("sleep", ms=50)
    s.op("check_other")
    return s.input()


GENERATORS = {
    # name: (weight, function, needs the corpus)
    "replay": (30, gen_replay, True),
    "replay_clean": (3, gen_replay_clean, True),
    "mem_table": (8, gen_mem_table, False),
    "memfd_small": (2, gen_memfd_small, False),
    "mem_offset_eof": (2, gen_mem_offset_eof, False),
    "vring": (10, gen_vring, False),
    "running": (10, gen_running, False),
    "rings_garbage": (8, gen_rings_garbage, False),
    "good_traffic": (4, gen_good_traffic, False),
    "tiny_rx_buffers": (2, gen_tiny_rx_buffers, False),
    "small_ring": (2, gen_small_ring, False),
    "misc": (12, gen_misc, False),
    "random": (8, gen_random, False),
    "second_conn": (2, gen_second_conn, False),
    "framing": (4, gen_framing, False),
    "stall": (1, gen_stall, False),
}


VRING_IDX_U64 = {vu.SET_VRING_KICK, vu.SET_VRING_CALL, vu.SET_VRING_ERR}
VRING_IDX_U32 = {vu.SET_VRING_NUM, vu.SET_VRING_BASE, vu.GET_VRING_BASE,
                 vu.SET_VRING_ENABLE, vu.SET_VRING_ADDR}


def alloc_fd_leak(st):
    """Does message ST meet librte_vhost 22.11's fd leak: a vring index
    >= 256 (VHOST_MAX_VRING) fails vhost_user_check_and_alloc_queue_pair(),
    and vhost_user_msg_handler() returns without closing the message's
    fds (before any external handler sees it)."""
    if st["op"] != "msg" or not st["fds"]:
        return False
    # what librte_vhost reads: SIZE bytes; the rest of its payload buffer
    # is left from earlier messages, anything
    p = bytes.fromhex(st["payload"])[:st["size"]]
    if st["req"] in VRING_IDX_U32:
        return len(p) < 4 or struct.unpack_from("<I", p)[0] >= 256
    if st["req"] == vu.SET_INFLIGHT_FD:
        return len(p) < 18 or \
            (struct.unpack_from("<H", p, 16)[0] - 1) & 0xFFFFFFFF >= 256
    return False


def skipped(inp, skip):
    """Does SKIP name INP: one of the parts of its generator name
    ("misc", "inflight_set", a mutation), "reqN" for a request N it
    sends, a kind of fd it sends ("memfd_ro"), "alloc_fd_leak" for a
    message that meets that known leak?"""
    if not skip:
        return False
    names = set(inp["gen"].replace(",", ":").split(":"))
    for st in inp["steps"]:
        names |= {k.split(":")[0] for k in st.get("fds", [])}
        if st["op"] == "msg":
            names.add("req%d" % st["req"])
            if alloc_fd_leak(st):
                names.add("alloc_fd_leak")
    return bool(names & skip)


def pick(rng, corpus, skip, only):
    names = [n for n in GENERATORS if n not in skip and
             (not only or n in only) and (corpus or not GENERATORS[n][2])]
    check(names, "no generator left to run")
    for _ in range(1000):
        name = rng.choices(names, [GENERATORS[n][0] for n in names])[0]
        _, fn, needs = GENERATORS[name]
        inp = fn(rng, corpus, skip) if needs else fn(rng, skip)
        if not skipped(inp, skip):
            return inp
    raise Failure("FUZZ_SKIP=%s leaves nothing to generate" %
                  ",".join(sorted(skip)))


# ---------------------------------------------------------------- the test

def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    # FUZZ_SECONDS (yours) over FUZZ_DEFAULT_SECONDS (the suite's)
    ap.add_argument("--seconds", type=float, default=float(os.environ.get(
        "FUZZ_SECONDS", os.environ.get("FUZZ_DEFAULT_SECONDS", "45"))))
    ap.add_argument("--seed", type=int, default=int(
        os.environ.get("FUZZ_SEED", str(random.SystemRandom().randrange(
            1 << 32)))))
    ap.add_argument("--replay", nargs="*", default=[],
                    help="run these saved inputs only")
    ap.add_argument("--inputs", default="",
                    help="FROM:TO: only the inputs of --seed numbered "
                    "FROM to TO-1 (to narrow a fault down)")
    ap.add_argument("--out", default=os.environ.get(
        "FUZZ_OUT", os.path.join(os.getcwd(), "fuzz-faults")))
    return ap.parse_args()


ARGS = parse_args()
SKIP = set(x for x in os.environ.get("FUZZ_SKIP", "").split(",") if x)
ONLY = set(x for x in os.environ.get("FUZZ_ONLY", "").split(",") if x)
CORPUS = set(x for x in os.environ.get("FUZZ_CORPUS", "").split(",") if x)


def dumps(doc):
    """A fault file as JSON with one step a line, to read and diff."""
    head = {k: v for k, v in doc.items() if k != "inputs"}
    out = json.dumps(head)[:-1] + ', "inputs": [\n'
    for k, inp in enumerate(doc["inputs"]):
        out += ' {"gen": %s, "mem": %s, "steps": [\n' % (
            json.dumps(inp["gen"]), json.dumps(inp.get("mem", [])))
        out += ",\n".join("  " + json.dumps(st) for st in inp["steps"])
        out += "\n ]}%s\n" % ("," if k + 1 < len(doc["inputs"]) else "")
    return out + "]}\n"


def report(inputs, fault, seed, index):
    """Print and save the inputs that led to FAULT; return the path."""
    os.makedirs(ARGS.out, exist_ok=True)
    path = os.path.join(ARGS.out, "fault-%d-%d.json" % (seed, index))
    doc = {"fault": fault, "seed": seed, "index": index, "inputs": inputs}
    with open(path, "w") as f:
        f.write(dumps(doc))
    print("=" * 72)
    print("FAULT: %s" % fault)
    print("after input %d (seed %d); %d input(s) saved to %s; replay with:"
          % (index, seed, len(inputs), path))
    print("  %s --replay %s" % (os.path.abspath(__file__), path))
    print(json.dumps(doc))
    print("=" * 72)
    return path


def test_fuzz_vhost_user(t):
    seed = ARGS.seed
    print("fuzz-vhost-user: seed %d, %.0f s%s%s" % (
        seed, ARGS.seconds, ", skipping %s" % ",".join(sorted(SKIP))
        if SKIP else "", ", only %s" % ",".join(sorted(ONLY)) if ONLY else
        ""))
    corpus = load_corpus()
    vh = {"type": "vhost-user", "bridge": "br0"}
    d = Vhostd(t, {"br0": {"mode": "learning"}},
               {n: dict(vh, path=t.path(n + ".sock"))
                for n in ("fz", "fz2", "a", "b")}).start()
    d.fz = "fz"
    d.sockets = {0: t.path("fz.sock"), 1: t.path("fz.sock"),
                 "other": t.path("fz2.sock")}
    canary = Canary(d, random.Random(seed ^ 0x5A5A))
    canary.check()
    ex = Executor(d, canary)
    base_mbufs = d.mbufs_in_use()
    ex.base_mbufs = base_mbufs
    d.mbufs_total = d.query("/vhostd/info")["mbufs"]
    ex.take_baseline()
    print("baseline: %d mbufs in use, %d fds; corpus: %s" % (
        base_mbufs, ex.base_fds, ", ".join("%s (%d messages)" % (k, len(v))
                                 for k, v in sorted(corpus.items()))))

    todo = []   # (label, input) to run before generating
    for path in ARGS.replay:
        with open(path) as f:
            doc = json.load(f)
        todo += [("replay %s" % path, i) for i in doc.get("inputs", [doc])]
    if not ARGS.replay:
        for path, doc in regressions():
            todo += [("regression %s" % path, i)
                     for i in doc.get("inputs", [doc])]
    lo, _, hi = ARGS.inputs.partition(":")
    lo, hi = int(lo or 0), int(hi or 0)
    start = time.monotonic()
    count, outcomes, gens = 0, {}, {}
    batch = []
    index = 0
    fault = None
    try:
        while True:
            if todo:
                label, inp = todo.pop(0)
                print("%s: %s" % (label, inp.get("gen")))
            elif ARGS.replay or time.monotonic() - start >= ARGS.seconds:
                break
            else:
                if lo and index < lo - 1:
                    index = lo - 1
                if hi and index >= hi - 1:
                    break
                # each input from its own generator state: --seed S and
                # the input's index name it
                inp = pick(random.Random("%d/%d" % (seed, index)), corpus,
                           SKIP, ONLY)
            index += 1
            batch.append(inp)
            try:
                out = ex.run_input(inp)
            except Fault as e:
                fault = str(e)
                report([inp], fault, seed, index)
                break
            count += 1
            g = inp["gen"].split(":")[0]
            gens[g] = gens.get(g, 0) + 1
            outcomes[out] = outcomes.get(out, 0) + 1
            if count % CANARY_EVERY == 0 or not todo and (
                    ARGS.replay or time.monotonic() - start >=
                    ARGS.seconds):
                try:
                    canary.check()
                    wait_until(lambda: d.mbufs_in_use() == base_mbufs,
                               20 * SLOW, "mbufs in use back at %d" %
                               base_mbufs)
                except (Fault, Failure) as e:
                    fault = "%s (after one of the last %d inputs)" % (
                        e, len(batch))
                    report(batch, fault, seed, index)
                    break
                batch = []
    except Exception:
        if fault is None:
            fault = "the fuzzer failed: %s" % traceback.format_exc(limit=3)
            report(batch[-1:], fault, seed, index)
        raise
    finally:
        elapsed = time.monotonic() - start
        print("by generator: %s" % ", ".join(
            "%s %d" % kv for kv in sorted(gens.items())))
        print("outcomes: %s" % ", ".join("%s %d" % kv
                                         for kv in sorted(outcomes.items())))
        print("fuzz-vhost-user: %d inputs in %.0f s, %d faults, seed %d" %
              (count, elapsed, 1 if fault else 0, seed))
    check(fault is None, "vhost-user fuzzing found a fault: %s" % fault)
    # The end: every fuzz connection is closed (settled after each input);
    # mbufs and fds back at their baselines, then a clean stop.
    wait_until(lambda: ex.nfds() == ex.base_fds, 20 * SLOW,
               "vhostd's fd count back at %d" % ex.base_fds)
    ex.pinger.close()
    canary.close()
    d.stop_clean(base_mbufs)


if __name__ == "__main__":
    run(test_fuzz_vhost_user)
