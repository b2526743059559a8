#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The hostile-guest ring fuzzer: a guest that sets up a valid vhost-user
session (real shared memory, a memfd, as QEMU does) and then writes its own
virtqueues with hostile contents, in both directions: vring 1 (the guest's
tx ring, which vhostd dequeues from) and vring 0 (its rx ring, which vhostd
writes frames into; they come from a well-behaved guest that sends
broadcasts on the same bridge).

Why: a guest owns its rings and may write anything into them at any time;
librte_vhost must treat every descriptor, index and flag as untrusted, and
vhostd must go on switching for every other guest on the same lcore. What
is written: descriptor loops, chains longer than the ring, next >= num,
indirect tables (outside memory, straddling its end, the ring itself,
pointing at themselves, of length 0, not a multiple of 16, huge, nested),
buffers outside memory or straddling its end, lengths 0, 1, < the
virtio-net header, 0xffffffff, device-writable descriptors on the tx ring
and read-only ones on the rx ring, avail indexes that jump, go back and
wrap, heads >= num, a used ring never read, random bytes over the rings,
buffers that overlap the rings, rings rewritten while vhostd reads them;
split and packed rings (VIRTIO_F_RING_PACKED if offered: wrap counters,
event areas, a base index past the ring), with and without
VIRTIO_NET_F_MRG_RXBUF, INDIRECT_DESC, EVENT_IDX, IN_ORDER.

Topology: learning bridge br0 = h (the hostile guest; a new session every
round) + a, b (well-behaved Python guests, vhostuser.Guest). a sends
numbered broadcasts all the time (they reach b, and h's rx ring); b must
get them, byte for byte.

Each round: connect h, run one to three (strategy, ring) lanes for
0.1-0.3 s (a soak round now and then runs 2.5 s), disconnect. Checked
after every round: vhostd alive, telemetry answers, h's port down again,
every frame a sent during the round reached b unless b's drop counter
says it was dropped (soak rounds, while h runs: never 1.5 s without one
reaching b, unless b's ring overflowed meanwhile); every few rounds a
canary (N unique frames a->b, all in time), mbufs in use and open fds back
at their baseline, the control socket answers. At the end, with h gone:
the same, and vhostd stops cleanly.

A fault is saved as a JSON file (rounds since the last good check: their
seeds, configs, lanes, step counts; a memory snapshot of h's rings when
vhostd died in the round) and printed, and fuzzing goes on with a fresh
vhostd (up to 5 faults). --replay FILE runs those rounds again on a fresh
vhostd (the same lanes and step counts, then the snapshot written back);
it passes only if no fault shows. Timing differs from run to run, so a
replay reproduces most faults, not all, every time.

Run:
    meson test -C build fuzz-guest                              # ~45 s
    FUZZ_SECONDS=3600 meson test -C build -t 0 fuzz-guest       # 1 hour
    VHOSTD=build/src/vhostd python3 tests/fuzz/fuzz_guest.py \
        [--seconds S] [--seed N] [--replay fuzz-guest-fault-N-R.json]
The seed is printed; faults are written to $FUZZ_OUT (default: the
current directory, which for meson test is the build directory).
"""
import argparse
import base64
import json
import os
import random
import select
import struct
import subprocess
import sys
import time
import traceback
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import vhostuser as vu  # noqa: E402
from vhdtest import fd_targets as vt_fd_targets, wait_stable  # noqa: E402
from vhdtest import (BCAST, VHOSTD, Failure, Vhostd, frame,  # noqa: E402
                     mac, run, wait_until)

NAME = "fuzz-guest"
A_MAC = "02:00:00:00:0a:01"
H_MAC = "02:00:00:00:0f:01"
MAGIC = b"VHDFZG"
F_IN_ORDER = 35

ASAN = b"libasan" in subprocess.run(["ldd", VHOSTD], stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL).stdout
SLOW = 2.0 if ASAN else 1.0
CANARY_EVERY = 5        # rounds between canaries (and leak checks)
CANARY_FRAMES = 32
CANARY_TIMEOUT = 10.0 * SLOW
DRAIN_TIMEOUT = 5.0 * SLOW
SOAK_EVERY = 12         # every SOAK_EVERY-th round is a soak round
SOAK_SECONDS = 2.5
STALL_LIMIT = 1.5 * SLOW
MAX_FAULTS = 5          # then stop even with time left

# Descriptor flags (split: next u16 after flags; packed: id u16 before).
NEXT, WRITE, INDIRECT = 1, 2, 4
AVAIL, USED = 1 << 7, 1 << 15
SPARE = 64 << 10        # per guest: indirect tables and scratch


def pow2(n):
    p = 1
    while p < n:
        p <<= 1
    return p


# ------------------------------------------------------------- the canary

class Pair:
    """The well-behaved guests: a sends numbered broadcasts (to b, and to
    whatever rx ring h has), b collects them. Every frame a sent stays in
    PENDING until b got exactly its bytes."""

    def __init__(self, t):
        self.a = vu.Guest(t.path("a.sock"))
        self.b = vu.Guest(t.path("b.sock"))
        self.seq = 0
        self.pending = {}       # frame -> (kind, time sent)
        self.count = {}         # kind -> frames of it pending
        self.others = []        # frames b got that a did not send (h's)
        self.last_rx = time.monotonic()
        self.max_lat = 0.0
        self.dups = self.mangled = 0    # frames b got that look like a's

    @staticmethod
    def build(kind, seq):
        return frame(BCAST, A_MAC, 0x88B5, MAGIC + struct.pack(
            ">BQ", kind, seq), size=60 + (seq * 37) % 1455)

    def make(self, kind):
        self.seq += 1
        return self.build(kind, self.seq)

    def classify(self, f):
        """A frame b got that a is not waiting for: a copy of one of
        a's (h may send those back), a mangled one of a's, or another's."""
        head = mac(BCAST) + mac(A_MAC) + b"\x88\xb5" + MAGIC
        if not f.startswith(head) or len(f) < len(head) + 9:
            return
        kind, seq = struct.unpack_from(">BQ", f, len(head))
        if f == self.build(kind, seq):
            self.dups += 1
        else:
            self.mangled += 1

    def send(self, kind):
        """Queue one new frame on a; False if a's tx ring is full."""
        f = self.make(kind)
        if not self.a.txq.tx(f):
            self.seq -= 1
            return False
        self.pending[f] = (kind, time.monotonic())
        self.count[kind] = self.count.get(kind, 0) + 1
        return True

    def drain(self, keep_others=False):
        """Collect what a and b received; the number of a's frames b
        got now."""
        self.a.rxq.rx()
        got = 0
        now = time.monotonic()
        for f in self.b.rxq.rx():
            sent = self.pending.pop(f, None)
            if sent is None:
                if keep_others:
                    self.others.append(f)
                self.classify(f)
                continue
            got += 1
            self.count[sent[0]] -= 1
            self.max_lat = max(self.max_lat, now - sent[1])
        if got:
            self.last_rx = now
        return got

    def outstanding(self, kind):
        return self.count.get(kind, 0)

    def forget(self, kind):
        for f in [f for f, v in self.pending.items() if v[0] == kind]:
            del self.pending[f]
        self.count[kind] = 0

    def wait(self, kind, timeout):
        """Drain until no frame of KIND is pending; the number still
        pending after TIMEOUT seconds."""
        end = time.monotonic() + timeout
        while self.outstanding(kind) and time.monotonic() < end:
            if not self.drain():
                time.sleep(0.002)
        return self.outstanding(kind)

    def close(self):
        self.a.close()
        self.b.close()


# ------------------------------------------------------------- the guest

def make_config(rng, offered, soak=False):
    """A random hostile session: features, ring kinds and sizes, memory
    layout, SET_VRING_BASE values, lanes, duration."""
    packed = bool(offered >> vu.F_RING_PACKED & 1) and rng.random() < 0.4
    feats = (1 << vu.F_VERSION_1) | (1 << vu.F_PROTOCOL_FEATURES)
    for bit, p in ((vu.F_MRG_RXBUF, 0.5), (vu.F_INDIRECT_DESC, 0.6),
                   (vu.F_EVENT_IDX, 0.3), (F_IN_ORDER, 0.2)):
        if rng.random() < p:
            feats |= 1 << bit
    if packed:
        feats |= 1 << vu.F_RING_PACKED
    feats &= offered
    if packed:
        sizes = [1, 2, 3, 8, 100, 256, 256, 256, 1000, 1024]
    else:
        # vhostd refuses rings below 32 (librte_vhost 22.11 overflows
        # them): mostly sizes it takes, now and then one it must refuse.
        sizes = [32, 64, 128, 256, 256, 256, 512, 1024] * 4 + [2, 8, 16]
    cfg = {"packed": packed, "features": feats,
           "num_rx": rng.choice(sizes), "num_tx": rng.choice(sizes),
           "buf_size": rng.choice([2048, 2048, 1024, 256]),
           "layout": rng.choice(["low"] * 5 + ["high"] * 3 + ["shared"]),
           "base_rx": None, "base_tx": None,
           "end": rng.choice(["close", "close", "get_vring_base"]),
           "seconds": SOAK_SECONDS if soak else rng.choice(
               [0.1, 0.15, 0.2, 0.3]), "soak": soak}
    for d in ("rx", "tx"):
        if rng.random() < 0.12:
            num = cfg["num_" + d]
            if packed:
                idx = rng.choice([num, num + 1, 0x7fff,
                                  rng.randrange(0x8000)])
                cfg["base_" + d] = idx | rng.randrange(2) << 15
            else:
                cfg["base_" + d] = rng.choice([0xfff0, 0xffff,
                                               rng.randrange(0x10000)])
    names = [n for n, (_, kinds) in STRATEGIES.items()
             if ("packed" if packed else "split") in kinds]
    lanes = []
    for _ in range(rng.choice([1, 1, 2, 2, 3])):
        lanes.append([rng.choice(names), rng.choice(["rx", "tx"])])
    cfg["lanes"] = lanes
    return cfg


class Hostile:
    """A guest on h's socket with the session of CFG: a valid setup
    (features, owner, memory, both vrings, enable), rings it then writes
    by hand. Closed escapes if vhostd closes the connection during the
    setup (a rejected session)."""

    def __init__(self, path, cfg, timeout=3.0):
        self.cfg = cfg
        self.packed = cfg["packed"]
        self.fe = self._connect(path, timeout)
        try:
            self._setup()
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _connect(path, timeout):
        # vhostd refuses a connection while it still tears down the last
        # one: try again for a while.
        end = time.monotonic() + timeout
        while True:
            fe = vu.Frontend(path, timeout=timeout)
            try:
                fe.offered = fe.get_features()
                return fe
            except (vu.Closed, OSError):
                fe.close()
                if time.monotonic() > end:
                    raise
                time.sleep(0.02)

    def _setup(self):
        cfg, fe = self.cfg, self.fe
        Ring = vu.PackedRing if self.packed else vu.SplitRing
        nrx, ntx, bs = cfg["num_rx"], cfg["num_tx"], cfg["buf_size"]

        def ring_bytes(n):
            return 16 * n + 16 if self.packed else 16 * n + 6 + 2 * n + \
                6 + 8 * n + 8

        need = (4096 * 6 + ring_bytes(nrx) + ring_bytes(ntx) +
                (nrx + ntx) * (bs + 64) + SPARE)
        if cfg["layout"] == "high":
            need += 8192 + ring_bytes(nrx) + ring_bytes(ntx)
        self.mem = vu.Memory(max(pow2(need), 64 << 10))
        self.size = self.mem.size
        self.rxq = Ring(self.mem, nrx, bs)
        self.txq = Ring(self.mem, ntx, bs)
        self.spare = self.mem.alloc(SPARE, 4096)
        if cfg["layout"] == "high":
            # The rings end where memory ends: an index past the ring is
            # past the memory too.
            top = self.size
            for q in (self.txq, self.rxq):
                top = self._place_high(q, top)
        elif cfg["layout"] == "shared":
            # Both vrings on the same memory (the smaller ring's size).
            small, big = sorted((self.rxq, self.txq), key=lambda q: q.num)
            for a in ("desc", "avail", "used", "driver_event",
                      "device_event"):
                if hasattr(small, a):
                    setattr(big, a, getattr(small, a))
        feats = cfg["features"]
        fe.u64(vu.SET_FEATURES, feats)
        fe.request(vu.SET_OWNER)
        if feats & (1 << vu.F_PROTOCOL_FEATURES):
            pf = fe.get_protocol_features() & (1 << vu.PF_REPLY_ACK)
            fe.u64(vu.SET_PROTOCOL_FEATURES, pf)
        fe.set_mem_table([self.mem.region()], [self.mem.fd])
        for idx, q, base in ((0, self.rxq, cfg["base_rx"]),
                             (1, self.txq, cfg["base_tx"])):
            if base is not None and not self.packed:
                # A split ring's base is where the guest's avail index
                # starts too.
                q.avail_idx = q.used_seen = base
                struct.pack_into("<H", self.mem.map, q.avail + 2, base)
                struct.pack_into("<H", self.mem.map, q.used + 2, base)
            q.setup(fe, idx, base if base is not None or self.packed else 0)
        if feats & (1 << vu.F_PROTOCOL_FEATURES):
            for i in (0, 1):
                fe.vring_state(vu.SET_VRING_ENABLE, i, 1)
        # A reply: every message before it has been handled (the device
        # is started if the session is valid).
        fe.get_features()

    def _place_high(self, q, top):
        if self.packed:
            q.desc = top - 16 * q.num
            return q.desc & ~4095
        q.used = top - (6 + 8 * q.num)
        q.avail = (q.used - (6 + 2 * q.num)) & ~1
        q.desc = (q.avail - 16 * q.num) & ~15
        return q.desc & ~4095

    def closed(self):
        """True once vhostd closed the connection (it never sends
        anything unasked)."""
        try:
            return bool(select.select([self.fe.s], [], [], 0)[0])
        except (OSError, ValueError):
            return True

    def areas(self):
        """Where the rings are: {vring: {area: (offset, length)}}."""
        out = {}
        for name, q in (("rx", self.rxq), ("tx", self.txq)):
            n = q.num
            if self.packed:
                out[name] = {"desc": (q.desc, 16 * n),
                             "driver_event": (q.driver_event, 4),
                             "device_event": (q.device_event, 4)}
            else:
                out[name] = {"desc": (q.desc, 16 * n),
                             "avail": (q.avail, 6 + 2 * n),
                             "used": (q.used, 6 + 8 * n)}
        return out

    def snapshot(self):
        """h's memory now (zlib, base64) and where its rings are in it."""
        try:
            data = bytes(self.mem.map)
        except ValueError:
            return None
        rings = {}
        for v, areas in self.areas().items():
            rings[v] = {k: {"offset": o, "len": n,
                            "hex": data[o:o + n].hex()}
                        for k, (o, n) in areas.items()}
        return {"mem_size": self.size, "rings": rings,
                "mem_zlib_b64": base64.b64encode(
                    zlib.compress(data, 6)).decode()}

    def restore(self, snap):
        data = zlib.decompress(base64.b64decode(snap["mem_zlib_b64"]))
        self.mem.map[:len(data)] = data

    def end(self):
        """As QEMU stops a device: GET_VRING_BASE on each vring."""
        for i in (0, 1):
            try:
                self.fe.get_vring_base(i)
            except (vu.Closed, OSError, ValueError, struct.error):
                return

    def close(self):
        self.fe.close()
        if getattr(self, "mem", None):
            self.mem.close()
            self.mem = None


# ------------------------------------------------------------- lanes

class Lane:
    """One strategy on one of h's vrings ("rx": vring 0, vhostd writes;
    "tx": vring 1, vhostd reads), with the helpers strategies share."""

    def __init__(self, h, name, dirn, rng, spare):
        self.h, self.name, self.dirn, self.rng = h, name, dirn, rng
        self.q = h.rxq if dirn == "rx" else h.txq
        self.other = h.txq if dirn == "rx" else h.rxq
        self.packed = h.packed
        self.num = self.q.num
        self.mem = h.mem.map
        self.size = h.size
        self.spare = spare      # (offset, length) of this lane's scratch
        self.slot = 0           # split: next descriptor for a chain
        self.st = {}            # the strategy's own state

    # --- buffers
    def buf(self):
        """A buffer of this ring (or, now and then, of the other one)."""
        q = self.other if self.rng.random() < 0.1 else self.q
        return self.rng.choice(q.bufs), q.buf_size

    def frame_data(self):
        """A virtio-net header and a frame from h (now and then a runt or
        random bytes)."""
        r = self.rng
        hdr = bytes(vu.VNET_HDR) if r.random() < 0.8 else bytes(
            r.getrandbits(8) for _ in range(vu.VNET_HDR))
        x = r.random()
        if x < 0.05:
            return hdr + bytes(r.getrandbits(8) for _ in range(
                r.randrange(14)))
        if x < 0.15:
            return hdr + r.randbytes(r.randrange(14, 1515))
        dst = r.choice([BCAST, "01:00:5e:00:00:01", "02:00:00:00:0e:%02x" %
                        r.randrange(256)])
        return hdr + frame(dst, H_MAC, 0x88B6,
                           size=r.choice([60, 64, 128, 1514,
                                          r.randrange(14, 1515)]))

    def tx_parts(self, k=1):
        """PARTS, (addr, len, flags), of one frame cut in K or more
        pieces, each in a buffer."""
        data = self.frame_data()
        bs = self.q.buf_size
        k = max(k, -(-len(data) // bs))
        cuts = sorted(self.rng.randrange(len(data) + 1)
                      for _ in range(k - 1))
        parts, prev = [], 0
        for c in cuts + [len(data)]:
            piece = data[prev:c]
            if len(piece) > bs:     # a cut left too much in one piece
                for o in range(0, len(piece), bs):
                    parts.append(self.put(piece[o:o + bs]))
            else:
                parts.append(self.put(piece))
            prev = c
        return parts

    def put(self, piece):
        a = self.rng.choice(self.q.bufs)
        self.mem[a:a + len(piece)] = piece
        return (a, len(piece), 0)

    def rx_parts(self, k=1):
        bs = self.q.buf_size
        return [(self.rng.choice(self.q.bufs), bs, WRITE) for _ in range(k)]

    def good(self, k=1):
        return self.rx_parts(k) if self.dirn == "rx" else self.tx_parts(k)

    def dflag(self):
        """The direction flag a well-behaved guest sets."""
        return WRITE if self.dirn == "rx" else 0

    def bad_addr(self):
        """(addr, len) of a buffer not (all) in guest memory."""
        r, size = self.rng, self.size
        k = r.randrange(1, 64)
        return r.choice([
            (size, 64), (size + r.randrange(1 << 20), 1514),
            (1 << 32, 64), (1 << 47, 64), (1 << 63, 64),
            ((1 << 64) - 1, 2), ((1 << 64) - 16, 64),
            (size - k, k + r.randrange(1, 4096)),
            (size - k, 0xFFFFFFFF), (r.getrandbits(64), r.getrandbits(16)),
            (r.getrandbits(64), 0xFFFFFFFF)])

    # --- descriptors
    def desc(self, i, addr, length, flags=0, nxt=0):
        """Split: descriptor I; packed: descriptor I with id NXT and
        FLAGS as they are (the caller sets AVAIL/USED)."""
        addr &= (1 << 64) - 1
        length &= 0xFFFFFFFF
        if self.packed:
            self.q.write_desc(i % self.num, addr, length, nxt & 0xFFFF,
                              flags & 0xFFFF)
        else:
            self.q.write_desc(i % self.num, addr, length, flags & 0xFFFF,
                              nxt & 0xFFFF)

    def post(self, parts, last_next=False, bid=None):
        """Make PARTS available as one chain: split, from the next slot
        on, linked by next, and publish the head; packed, from the next
        avail slot, with buffer id BID (random by default). LAST_NEXT:
        the last descriptor has NEXT too."""
        if self.packed:
            if bid is None:
                bid = self.rng.randrange(self.num)
            self.q.add(bid, parts)
            if last_next:
                i = (self.q.avail_idx - 1) % self.num
                o = self.q.desc + 16 * i + 14
                fl = struct.unpack_from("<H", self.mem, o)[0]
                struct.pack_into("<H", self.mem, o, fl | NEXT)
            return
        n = self.num
        idx = [(self.slot + j) % n for j in range(len(parts))]
        self.slot = (self.slot + len(parts)) % n
        for j, (addr, length, flags) in enumerate(parts):
            last = j + 1 == len(parts)
            nxt = idx[0] if last else idx[j + 1]
            if not last or last_next:
                flags |= NEXT
            self.desc(idx[j], addr, length, flags, nxt)
        self.q.publish(idx[0])

    def outstanding(self):
        if self.packed:
            return sum(self.q.in_flight.values())
        return (self.q.avail_idx - self.q.used_seen) & 0xFFFF

    def table(self, entries):
        """Write ENTRIES, (addr, len, flags, next_or_id), as a descriptor
        table in this lane's scratch; its offset."""
        off, room = self.spare
        for k, (addr, length, flags, nxt) in enumerate(entries[:room // 16]):
            if self.packed:
                struct.pack_into("<QIHH", self.mem, off + 16 * k,
                                 addr & (1 << 64) - 1, length & 0xFFFFFFFF,
                                 nxt & 0xFFFF, flags & 0xFFFF)
            else:
                struct.pack_into("<QIHH", self.mem, off + 16 * k,
                                 addr & (1 << 64) - 1, length & 0xFFFFFFFF,
                                 flags & 0xFFFF, nxt & 0xFFFF)
        return off


# ------------------------------------------------------------- strategies
#
# Each writes one ring state (or a few) per call and returns how many it
# wrote: the inputs counted.

def s_valid(c):
    """Well-behaved: frames out, buffers in (the baseline, and the
    traffic that makes the other lanes' states matter)."""
    if c.dirn == "rx":
        # Not rx(): vhostd may return ids that were never posted.
        c.q.reap()
        c.q.post_rx()
        return 1
    n = 0
    for _ in range(c.rng.randrange(1, 4)):
        data = c.frame_data()
        if len(data) > c.q.buf_size or not c.q.tx(data[vu.VNET_HDR:]):
            break
        n += 1
    return n


def s_multi(c):
    """Valid frames and buffers cut over several descriptors (a header
    split across two, zero-length pieces)."""
    if c.outstanding() >= c.num:
        c.q.reap()
        return 0
    c.post(c.good(c.rng.randrange(1, 6)))
    return 1


def s_loop(c):
    """A chain whose last next points back into the chain (or at
    itself)."""
    r = c.rng
    k = r.randrange(1, 5)
    idx = [r.randrange(c.num) for _ in range(k)]
    for j, i in enumerate(idx):
        addr, length, flags = c.good()[0]
        nxt = idx[j + 1] if j + 1 < k else r.choice(idx)
        c.desc(i, addr, length, flags | NEXT, nxt)
    c.q.publish(idx[0])
    return 1


def s_long_chain(c):
    """A chain longer than the ring: every descriptor has NEXT (a cycle
    through the whole ring), or as many descriptors as the ring holds
    (and more, packed) with tiny buffers."""
    r = c.rng
    n = c.num
    tiny = r.random() < 0.5
    endless = r.random() < 0.5
    count = n if not c.packed else r.choice([n, n + 1, 2 * n, 300])
    parts = []
    for _ in range(min(count, 2048)):
        a, ln, fl = c.good()[0]
        parts.append((a, r.randrange(1, 17) if tiny else ln, fl))
    c.post(parts, last_next=endless)
    return 1


def s_next_oob(c):
    """NEXT with next >= num (split); packed: buffer ids >= num."""
    r = c.rng
    if c.packed:
        c.post(c.good(r.randrange(1, 3)),
               bid=r.choice([c.num, 0xFFFF, r.randrange(c.num, 0x10000)]))
        return 1
    parts = c.good(r.randrange(1, 3))
    head = r.randrange(c.num)
    i = head
    for j, (a, ln, fl) in enumerate(parts):
        nxt = (i + 1) % c.num
        if j + 1 == len(parts):
            nxt = r.choice([c.num, c.num + 1, 0xFFFF,
                            r.randrange(c.num, 0x10000)])
        c.desc(i, a, ln, fl | NEXT, nxt)
        i = nxt
    c.q.publish(head)
    return 1


def s_indirect(c):
    """An INDIRECT descriptor whose table is good, outside memory,
    straddling its end, the ring itself, points at itself, has length 0,
    not a multiple of 16, is huge, nests, loops, has next >= its size,
    bad entries; or an indirect head that also has NEXT."""
    r = c.rng
    off, room = c.spare
    k = r.randrange(1, 9)
    v = r.choice(["good", "good", "outside", "straddle", "ring", "self",
                  "len0", "len_odd", "huge", "nested", "loop", "next_oob",
                  "bad_entries", "indirect_next", "many"])
    ents = []
    for j in range(k):
        a, ln, fl = c.good()[0]
        ents.append((a, ln, fl | (NEXT if j + 1 < k else 0), j + 1))
    addr, length = off, 16 * k
    if v == "outside":
        addr, length = c.bad_addr()[0], 16 * k
    elif v == "straddle":
        addr = c.size - 16 * r.randrange(1, 4)
        length = 16 * k + 64
    elif v == "ring":
        addr, length = c.q.desc, 16 * c.num
    elif v == "self":
        ents[0] = (off, 16 * k, INDIRECT | NEXT, 1)
    elif v == "len0":
        length = 0
    elif v == "len_odd":
        length = r.choice([1, 8, 15, 16 * k + r.randrange(1, 16)])
    elif v == "huge":
        length = r.choice([0xFFFFFFFF, 0xFFFFFFF0, 16 << 16, c.size,
                           room * 2])
    elif v == "nested":
        inner = off + 16 * k
        ents[r.randrange(k)] = (inner, 16 * k, INDIRECT, 0)
    elif v == "loop" and not c.packed:
        ents[-1] = ents[-1][:2] + (ents[-1][2] | NEXT, r.randrange(k))
    elif v == "next_oob" and not c.packed:
        ents[-1] = ents[-1][:2] + (ents[-1][2] | NEXT,
                                   r.choice([k, 0xFFFF, r.randrange(k,
                                                                    0x10000)]))
    elif v == "bad_entries":
        j = r.randrange(k)
        ba, bl = c.bad_addr()
        ents[j] = (ba, bl, ents[j][2] ^ (WRITE if r.random() < 0.3 else 0),
                   ents[j][3])
    elif v == "many":
        k = room // 16
        ents = [(c.buf()[0], r.randrange(1, 64), c.dflag() | NEXT, j + 1)
                for j in range(k)]
        ents[-1] = ents[-1][:2] + (c.dflag(), 0)
        length = 16 * k
    c.table(ents)
    head = [(addr, length, INDIRECT | (c.dflag() if r.random() < 0.5
                                       else 0))]
    if v == "indirect_next":
        head.append(c.good()[0])
    c.post(head)
    return 1


def s_bad_addr(c):
    """Buffers outside guest memory or straddling its end, alone or in
    a chain with good ones."""
    r = c.rng
    a, ln = c.bad_addr()
    parts = [(a, ln, c.dflag())]
    if r.random() < 0.5:
        parts = c.good() + parts
    if r.random() < 0.3:
        parts += c.good()
    c.post(parts)
    return 1


def s_bad_len(c):
    """Lengths 0, 1, < the virtio-net header, the header alone, huge;
    chains of zero-length or one-byte buffers."""
    r = c.rng
    v = r.random()
    if v < 0.6:
        a, _, fl = c.good()[0]
        ln = r.choice([0, 1, 2, 11, 12, 13, 14, 0xFFFF, 0x10000, 0x7FFFFFFF,
                       0xFFFFFFFF, r.getrandbits(32)])
        parts = [(a, ln, fl)]
        if r.random() < 0.3:
            parts += c.good()
    elif v < 0.8:
        parts = [(c.buf()[0], r.choice([0, 1]), c.dflag())
                 for _ in range(r.randrange(2, 40))]
    else:
        parts = c.good(3)
        j = r.randrange(len(parts))
        parts[j] = (parts[j][0], 0, parts[j][2])
    c.post(parts)
    return 1


def s_wrong_dir(c):
    """Device-writable descriptors on the tx ring, read-only ones on the
    rx ring (all of a chain, or some)."""
    r = c.rng
    parts = c.good(r.randrange(1, 4))
    every = r.random() < 0.5
    parts = [(a, ln, fl ^ WRITE) if every or r.random() < 0.5
             else (a, ln, fl) for a, ln, fl in parts]
    c.post(parts)
    return 1


def s_avail_jump(c):
    """Split: the avail index jumps by more than the ring, goes back,
    wraps (with good buffers in every slot or not)."""
    r, n = c.rng, c.num
    if r.random() < 0.3:
        for _ in range(min(n, 64)):
            c.post(c.good())
    delta = r.choice([n + 1, 2 * n, 0x8000, 0xFFFF, -n, -r.randrange(1, n + 1),
                      r.randrange(0x10000), 0x10000 - 5])
    c.q.set_avail_idx(c.q.avail_idx + delta)
    return 1


def s_head_oob(c):
    """Avail ring entries (heads) >= num; packed: ids >= num."""
    r = c.rng
    if c.packed:
        return s_next_oob(c)
    c.good()
    c.q.publish(r.choice([c.num, c.num + 1, 0xFFFF,
                          r.randrange(c.num, 0x10000)]))
    return 1


def s_used_full(c):
    """Buffers made available again and again, the used ring never
    read: it fills, and the avail index runs past it."""
    c.post(c.good(c.rng.randrange(1, 3)))
    return 1


def s_random(c):
    """Random bytes over the descriptors, the avail ring or driver event
    area, the used ring or device event area, or all of it."""
    r = c.rng
    areas = list(c.h.areas()[c.dirn].values())
    pick = r.choice(["one", "one", "all", "few"])
    todo = areas if pick == "all" else [r.choice(areas)]
    for o, n in todo:
        if pick == "few":
            for _ in range(r.randrange(1, 9)):
                p = o + r.randrange(n)
                c.mem[p] = r.getrandbits(8)
        else:
            c.mem[o:o + n] = r.randbytes(n)
    return 1


def s_flip(c):
    """A descriptor rewritten in a loop while vhostd may be reading it:
    length, address, flags and next (or id) flip between good and
    hostile values, and the avail index (or the AVAIL bit) back and
    forth."""
    r = c.rng
    if "head" not in c.st or r.random() < 0.1:
        c.post(c.good())
        c.st["head"] = ((c.q.avail_idx - 1) % c.num if c.packed else
                        (c.slot - 1) % c.num)
    i = c.st["head"]
    a, ln, fl = c.good()[0]
    ba, bl = c.bad_addr()
    n = 0
    for _ in range(64):
        what = r.randrange(6)
        flags = fl | (c.q.avail_flags() if c.packed else 0)
        if what == 0:
            c.desc(i, a, r.choice([ln, 0, 0xFFFFFFFF]), flags, 0)
        elif what == 1:
            c.desc(i, r.choice([a, ba]), r.choice([ln, bl]), flags, 0)
        elif what == 2:
            c.desc(i, a, ln, flags | r.choice([NEXT, INDIRECT, NEXT |
                                               INDIRECT, WRITE]),
                   r.choice([i, (i + 1) % c.num, 0xFFFF]))
        elif what == 3 and not c.packed:
            v = c.q.avail_idx
            c.q.set_avail_idx(v + r.choice([1, -1, c.num]))
            c.q.set_avail_idx(v)
        elif what == 3:
            c.desc(i, a, ln, fl | (c.q.avail_flags() ^ (AVAIL | USED)), 0)
        else:
            c.desc(i, a, ln, flags, 0)
        n += 1
    return n


def s_overlap(c):
    """Buffers over the rings themselves: vhostd writes frames onto the
    ring it walks (rx), or sends ring bytes as frames (tx)."""
    r = c.rng
    areas = list(c.h.areas()["rx"].values()) + \
        list(c.h.areas()["tx"].values())
    o, n = r.choice(areas)
    start = o + r.randrange(n)
    ln = r.choice([vu.VNET_HDR + 60, 64, 2048, n, r.randrange(1, 4096)])
    parts = [(start, ln, c.dflag())]
    if r.random() < 0.3:
        parts = c.good() + parts
    c.post(parts)
    return 1


def s_used_scribble(c):
    """The guest writes what the device owns: split, the used index and
    entries, the avail flags and used_event; packed, the device event
    area and descriptors vhostd marked used, re-marked available."""
    r = c.rng
    m = c.mem
    if c.packed:
        q = c.q
        struct.pack_into("<HH", m, q.device_event, r.getrandbits(16),
                         r.getrandbits(16))
        struct.pack_into("<HH", m, q.driver_event, r.getrandbits(16),
                         r.choice([0, 1, 2, r.getrandbits(16)]))
        i = r.randrange(c.num)
        a, ln, fl = c.good()[0]
        c.desc(i, a, ln, fl | r.choice([0, AVAIL, USED, AVAIL | USED]),
               r.randrange(c.num))
        return 1
    q = c.q
    v = r.randrange(4)
    if v == 0:
        struct.pack_into("<H", m, q.used + 2, r.getrandbits(16))
    elif v == 1:
        struct.pack_into("<II", m, q.used + 4 + 8 * r.randrange(c.num),
                         r.getrandbits(32), r.getrandbits(32))
    elif v == 2:
        struct.pack_into("<H", m, q.avail, r.getrandbits(16))
    else:
        struct.pack_into("<H", m, q.avail + 4 + 2 * c.num, r.getrandbits(16))
    if r.random() < 0.5:
        c.post(c.good())
    return 1


def s_wrap_chaos(c):
    """Packed: descriptors with every AVAIL/USED combination, the whole
    ring made available with good buffers and then again without
    waiting, wrap counters flipped."""
    r, q = c.rng, c.q
    v = r.randrange(4)
    if v == 0:
        for _ in range(r.randrange(1, 9)):
            a, ln, fl = c.good()[0]
            c.desc(r.randrange(c.num), a, ln,
                   fl | r.choice([0, AVAIL, USED, AVAIL | USED]),
                   r.randrange(c.num))
    elif v == 1:
        for _ in range(min(c.num, 256)):
            q.add(r.randrange(c.num), c.good())
    elif v == 2:
        q.avail_wrap ^= 1
        c.post(c.good())
    else:
        q.avail_idx = r.randrange(c.num)
        c.post(c.good(r.randrange(1, 3)))
    return 1


BOTH, SPLIT, PACKED = ("split", "packed"), ("split",), ("packed",)
STRATEGIES = {
    "valid": (s_valid, BOTH), "multi": (s_multi, BOTH),
    "loop": (s_loop, SPLIT), "long_chain": (s_long_chain, BOTH),
    "next_oob": (s_next_oob, BOTH), "indirect": (s_indirect, BOTH),
    "bad_addr": (s_bad_addr, BOTH), "bad_len": (s_bad_len, BOTH),
    "wrong_dir": (s_wrong_dir, BOTH), "avail_jump": (s_avail_jump, SPLIT),
    "head_oob": (s_head_oob, SPLIT), "used_full": (s_used_full, BOTH),
    "random": (s_random, BOTH), "flip": (s_flip, BOTH),
    "overlap": (s_overlap, BOTH), "used_scribble": (s_used_scribble, BOTH),
    "wrap_chaos": (s_wrap_chaos, PACKED),
}


# ------------------------------------------------------------- the fuzzer

class Fault(Exception):
    pass


class Fuzzer:
    """vhostd, the pair, the rounds, the checks."""

    def __init__(self, t, opts):
        self.t, self.opts = t, opts
        self.inputs = 0
        self.faults = []
        self.rounds = 0
        self.recent = []        # rounds since the last good check
        self.stats = {"rejected": 0, "closed": 0, "lost": 0,
                      "max_gap": 0.0, "soak": 0, "split": 0, "packed": 0,
                      "harness": 0, "harness_last": "", "congested": 0}
        self.d = self.pair = None
        self.max_lat, self.mangled, self.dups = 0.0, 0, 0

    # --- environment
    def keep_pair_stats(self):
        p = self.pair
        self.max_lat = max(self.max_lat, p.max_lat)
        self.mangled += p.mangled
        self.dups += p.dups
        p.max_lat, p.mangled, p.dups = 0.0, 0, 0

    def start(self):
        t = self.t
        ports = {n: {"type": "vhost-user", "path": t.path("%s.sock" % n),
                     "bridge": "br0"} for n in ("h", "a", "b")}
        self.d = Vhostd(t, {"br0": {}}, ports).start()
        self.base_mbufs = self.d.mbufs_in_use()
        fe = vu.Frontend(t.path("h.sock"))
        self.offered = fe.get_features()
        fe.close()
        self.pair = Pair(t)
        self.d.wait_up("a", "b")
        self.wait_h_down()
        self.canary("start")
        self.base_conn_mbufs = self.d.mbufs_in_use()
        self.base_fds = self.fds_settled()
        print("vhostd pid %d, offers %#x, mbufs in use %d (%d with a, b), "
              "%d fds" % (self.d.proc.pid, self.offered, self.base_mbufs,
                          self.base_conn_mbufs, len(self.base_fds)))

    def restart(self):
        """After a fault: a fresh vhostd and pair."""
        if self.pair:
            self.keep_pair_stats()
            self.pair.close()
            self.pair = None
        if self.d.proc.poll() is None:
            try:
                self.d.stop(timeout=10)
            except Failure:
                self.d.stop(sig=9)
        self.t.daemons.remove(self.d)
        self.start()

    def fds(self):
        try:
            return sorted(os.listdir("/proc/%d/fd" % self.d.proc.pid),
                          key=int)
        except OSError:
            return []

    def fds_settled(self):
        return wait_stable(self.fds, "vhostd's fds to settle")

    def fd_targets(self, fds):
        return vt_fd_targets(self.d.proc.pid, fds)

    # --- checks
    def alive(self, what):
        rc = self.d.proc.poll()
        if rc is not None:
            raise Fault("vhostd exited (rc %s) %s" % (rc, what))

    def wait_h_down(self, timeout=10 * SLOW):
        try:
            wait_until(lambda: self.d.port("h")["state"] == "down", timeout,
                       "port h down")
        except Failure as e:
            self.alive("waiting for h to go down")
            raise Fault("h's port still up or telemetry not answering "
                        "%.0f s after h closed: %s" % (timeout, e))

    def canary(self, what):
        """N unique frames a->b, all byte for byte, in time."""
        p = self.pair
        p.forget(1)
        sent = 0
        end = time.monotonic() + CANARY_TIMEOUT
        while sent < CANARY_FRAMES and time.monotonic() < end:
            if p.send(1):
                sent += 1
            p.drain()
        left = p.wait(1, max(0.0, end - time.monotonic()))
        if sent < CANARY_FRAMES or left:
            self.alive("during the canary")
            raise Fault("canary %s: a->b %d of %d frames arrived in %.0f s"
                        " (%d could not be queued; b got %d mangled and %d "
                        "repeated frames of a's so far)" %
                        (what, sent - left, CANARY_FRAMES, CANARY_TIMEOUT,
                         CANARY_FRAMES - sent, p.mangled, p.dups))

    def leaks(self, what):
        """mbufs in use and fds back at their baseline (h gone)."""
        try:
            wait_until(lambda: self.d.mbufs_in_use() == self.base_conn_mbufs,
                       10 * SLOW, "mbufs back at baseline")
        except Failure:
            self.alive("checking mbufs")
            raise Fault("%s: %d mbufs in use, baseline %d" % (
                what, self.d.mbufs_in_use(), self.base_conn_mbufs))
        try:
            wait_until(lambda: self.fds() == self.base_fds, 10 * SLOW,
                       "fds back at baseline")
        except Failure:
            now = self.fds()
            extra = self.fd_targets(set(now) - set(self.base_fds))
            gone = set(self.base_fds) - set(now)
            raise Fault("%s: vhostd has %d fds, baseline %d; new: %s, "
                        "closed: %s" % (what, len(now), len(self.base_fds),
                                        extra, sorted(gone)))
        try:
            self.d.ctl("port/show", "h", timeout=10)
        except Exception as e:  # noqa: BLE001 - any failure is the fault
            raise Fault("%s: control socket: %r" % (what, e))

    # --- one round
    def run_round(self, rnd, snapshot=None):
        """Run one hostile session (dict RND: cfg, round_seed, steps) and
        the checks after it. Raises Fault."""
        cfg = rnd["cfg"]
        p = self.pair
        before = {n: self.d.port(n) for n in ("a", "b")}
        drops0 = before["b"]["drop_tx_full"]
        self.sent_in_round = 0
        p.forget(2)
        mangled0 = p.mangled
        h = None
        self.stats["packed" if cfg["packed"] else "split"] += 1
        try:
            h = Hostile(self.t.path("h.sock"), cfg)
        except (vu.Closed, OSError, ValueError, struct.error) as e:
            self.stats["rejected"] += 1
            self.alive("while h set up its session (%r)" % e)
        if h is not None:
            try:
                self.drive(h, rnd, snapshot)
            finally:
                h.close()
        self.wait_h_down()
        self.alive("after h closed")
        sent = self.sent_in_round
        left = p.wait(2, DRAIN_TIMEOUT)
        if left:
            drops = self.d.port("b")["drop_tx_full"] - drops0
            self.stats["lost"] += left
            if left > drops:
                raise Fault("a->b: %d of the %d frames a sent while h ran "
                            "never reached b, and b counted %d drops (b got "
                            "%d mangled frames of a's); %s" %
                            (left, sent, drops, p.mangled - mangled0,
                             self.explain_loss(before, left)))
        p.forget(2)

    def explain_loss(self, before, left):
        """What vhostd and a's ring say about frames a->b that did not
        arrive: counter changes on a and b during the round, a's tx ring
        indexes, mbufs in use, and whether the frames come late."""
        out = []
        for n in ("a", "b"):
            now = self.d.port(n)
            out.append("%s: %s" % (n, ", ".join(
                "%s +%d" % (k, now[k] - before[n][k]) for k in sorted(now)
                if isinstance(now[k], int) and k in before[n] and
                now[k] != before[n][k])))
            out.append("%s state %s, queue pairs %s, rxq mask %s" % (
                n, now.get("state"), now.get("queue_pairs"),
                now.get("enabled_rxq_mask")))
        q = self.pair.a.txq
        out.append("a's tx ring: avail %d used %d (seen %d)" % (
            q.avail_idx, q.used_idx(), q.used_seen))
        out.append("mbufs in use %d" % self.d.mbufs_in_use())
        late = left - self.pair.wait(2, 20.0)
        out.append("%d of them arrived in 20 s more" % late)
        return "; ".join(out)

    def drive(self, h, rnd, snapshot):
        cfg = rnd["cfg"]
        p = self.pair
        rng = random.Random(rnd["round_seed"] ^ 0x5EED)
        off, room = h.spare, SPARE // len(cfg["lanes"])
        lanes = [Lane(h, n, d, rng, (off + k * room, room))
                 for k, (n, d) in enumerate(cfg["lanes"])]
        # The ring a lane does not own is well-behaved.
        owned = {d for _, d in cfg["lanes"]}
        for d in ("rx", "tx"):
            if d not in owned:
                lanes.append(Lane(h, "valid", d, rng, (off, 0)))
        if "rx" not in owned:
            h.rxq.post_rx()
        self.sent_in_round = 0
        steps, limit = 0, rnd.get("steps")
        start = time.monotonic()
        end = start + (10.0 if limit is not None else cfg["seconds"])
        last_gap_start = start
        b_drops = self.d.port("b")["drop_tx_full"] if cfg["soak"] else 0
        try:
            while time.monotonic() < end and (limit is None or
                                              steps < limit):
                for ln in lanes:
                    try:
                        self.inputs += STRATEGIES[ln.name][0](ln)
                    except (IndexError, KeyError, ValueError,
                            struct.error, OverflowError, MemoryError) as e:
                        # A bug of ours, reading what vhostd wrote: not
                        # a fault of vhostd's; counted and shown once.
                        if not self.stats["harness"]:
                            traceback.print_exc()
                        self.stats["harness"] += 1
                        self.stats["harness_last"] = "%s: %r" % (ln.name, e)
                    if self.d.proc.poll() is not None:
                        break
                steps += 1
                if p.send(2):
                    self.sent_in_round += 1
                if p.drain():
                    self.stats["max_gap"] = max(
                        self.stats["max_gap"],
                        time.monotonic() - last_gap_start)
                    last_gap_start = time.monotonic()
                elif p.outstanding(2) and cfg["soak"] and \
                        time.monotonic() - last_gap_start > STALL_LIMIT:
                    # Nothing from a for a while. If b's ring overflowed
                    # in the meantime (h's frames fill it too: it may send
                    # as fast as it likes) that is congestion; if not, a
                    # was starved.
                    gap = time.monotonic() - last_gap_start
                    drops = self.d.port("b")["drop_tx_full"]
                    if drops == b_drops:
                        self.stats["max_gap"] = max(self.stats["max_gap"],
                                                    gap)
                        raise Fault("a->b starved: nothing for %.1f s "
                                    "while h ran (and b dropped nothing)" %
                                    gap)
                    b_drops = drops
                    self.stats["congested"] += 1
                    last_gap_start = time.monotonic()
                if not p.outstanding(2):
                    last_gap_start = time.monotonic()
                if self.d.proc.poll() is not None:
                    break
                if h.closed():
                    self.stats["closed"] += 1
                    break
            if snapshot is not None and not h.closed():
                h.restore(snapshot)
                self.inputs += 1
                t_end = time.monotonic() + 0.3
                while time.monotonic() < t_end:
                    p.send(2)
                    p.drain()
            rnd["steps"] = steps
            if self.d.proc.poll() is not None:
                rnd["snapshot"] = h.snapshot()
            self.alive("while h's rings were written (%d steps)" % steps)
            if cfg["end"] == "get_vring_base":
                h.end()
            self.alive("after GET_VRING_BASE")
        except Fault:
            rnd["steps"] = steps
            if "snapshot" not in rnd:
                rnd["snapshot"] = h.snapshot()
            raise

    # --- bookkeeping
    def save(self, fault, rounds):
        """Write the fault's input as a JSON file (not when replaying one)
        and print it."""
        out = os.environ.get("FUZZ_OUT") or os.getcwd()
        last = rounds[-1]["round"] if rounds else 0
        path = os.path.join(out, "fuzz-guest-fault-%d-%d.json" % (
            self.opts.seed, last))
        if self.opts.replay:
            path = self.opts.replay
        doc = {"fuzzer": NAME, "seed": self.opts.seed, "fault": fault,
               "vhostd": VHOSTD, "offered": self.offered,
               "rounds": rounds,
               "vhostd_log_tail": "".join(
                   line for line in self.d.log().splitlines(True)
                   if "listening on" not in line and not line.startswith(
                       ("  -chardev", "  -netdev", "  and shared")))[-6000:]}
        if not self.opts.replay:
            os.makedirs(out, exist_ok=True)
            with open(path, "w") as f:
                json.dump(doc, f, indent=1)
        short = json.loads(json.dumps(doc))
        for r in short["rounds"]:
            if r.get("snapshot"):
                r["snapshot"]["mem_zlib_b64"] = "<%d chars, in the file>" % \
                    len(r["snapshot"]["mem_zlib_b64"])
        if self.opts.replay:
            where = "replaying %s" % path
        else:
            where = "saved %s; replay: VHOSTD=%s %s %s --replay %s" % (
                path, VHOSTD, sys.executable, os.path.abspath(__file__),
                path)
        print("FAULT: %s\n%s\n%s" % (fault, where, json.dumps(
            short, indent=1)[:20000]))
        return path

    def fault(self, e):
        """Record fault E; its input is the rounds since the last good
        check."""
        msg = str(e)
        self.faults.append(msg)
        self.save(msg, self.recent)
        self.recent = []

    def new_round(self, rng, soak):
        self.rounds += 1
        rs = rng.getrandbits(63)
        cfg = make_config(random.Random(rs), self.offered, soak)
        return {"round": self.rounds, "round_seed": rs, "cfg": cfg}

    def checkpoint(self, what):
        self.canary(what)
        self.leaks(what)
        self.recent = []


def selfcheck(fz):
    """A well-behaved h, split and packed, with and without mergeable rx
    buffers: its frames reach b and a's broadcasts reach it, byte for
    byte, so the hostile rounds write rings that vhostd really uses."""
    p = fz.pair
    kinds = [False] + ([True] if fz.offered >> vu.F_RING_PACKED & 1 else [])
    for packed in kinds:
        for mrg in (False, True):
            feats = ((1 << vu.F_VERSION_1) | (1 << vu.F_PROTOCOL_FEATURES) |
                     (1 << vu.F_RING_PACKED if packed else 0) |
                     (1 << vu.F_MRG_RXBUF if mrg else 0)) & fz.offered
            cfg = {"packed": packed, "features": feats, "num_rx": 256,
                   "num_tx": 256, "buf_size": 2048, "layout": "low",
                   "base_rx": None, "base_tx": None}
            what = "%s ring, mrg_rxbuf %s" % (
                "packed" if packed else "split", "on" if mrg else "off")
            h = Hostile(fz.t.path("h.sock"), cfg)
            h.rxq.post_rx()
            mine = [frame(BCAST, H_MAC, 0x88B6, payload=b"self%d" % i,
                          size=60 + 100 * i) for i in range(3)]
            for f in mine:
                h.txq.tx(f)
            p.others = []
            got = []

            def h_and_b():
                p.drain(keep_others=True)
                got.extend(h.rxq.rx())
                return all(f in p.others for f in mine)
            wait_until(h_and_b, 10 * SLOW, "b to get h's frames (%s)" % what)
            theirs = [p.make(3) for _ in range(3)]
            for f in theirs:
                p.a.txq.tx(f)
            wait_until(lambda: h_and_b() and all(f in got for f in theirs),
                       10 * SLOW, "h to get a's frames (%s)" % what)
            p.others = []
            h.close()
            fz.wait_h_down()
            print("selfcheck: %s: h->b and a->h pass" % what)


def parse():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # FUZZ_SECONDS (yours) over FUZZ_DEFAULT_SECONDS (the suite's)
    ap.add_argument("--seconds", type=float, default=float(os.environ.get(
        "FUZZ_SECONDS", os.environ.get("FUZZ_DEFAULT_SECONDS", "45"))))
    ap.add_argument("--seed", type=int, default=None,
                    help="random by default; a replay takes its file's")
    ap.add_argument("--replay", metavar="FILE")
    opts = ap.parse_args()
    opts.doc = None
    if opts.replay:
        opts.replay = os.path.abspath(opts.replay)
        with open(opts.replay) as f:
            opts.doc = json.load(f)
        opts.seed = opts.doc.get("seed", opts.seed)
    if opts.seed is None:
        opts.seed = int.from_bytes(os.urandom(4), "little")
    return opts


OPTS = None


def test_fuzz_guest(t):
    opts = OPTS
    fz = Fuzzer(t, opts)
    replay = ", replay " + opts.replay if opts.replay else ""
    asan = " (ASan)" if ASAN else ""
    print("%s: seed %d, %.0f s%s%s" % (NAME, opts.seed, opts.seconds, asan,
                                       replay))
    fz.start()
    t0 = time.monotonic()
    if opts.replay:
        for rnd in opts.doc["rounds"]:
            fz.rounds += 1
            fz.recent.append(rnd)
            try:
                fz.run_round(rnd, (rnd.get("snapshot") or {}) or None)
            except Fault as e:
                fz.fault(e)
                break
    else:
        selfcheck(fz)
        rng = random.Random(opts.seed)
        while time.monotonic() - t0 < opts.seconds and \
                len(fz.faults) < MAX_FAULTS:
            soak = fz.rounds % SOAK_EVERY == SOAK_EVERY - 1
            rnd = fz.new_round(rng, soak)
            fz.recent.append(rnd)
            if soak:
                fz.stats["soak"] += 1
            try:
                fz.run_round(rnd)
                if fz.rounds % CANARY_EVERY == 0:
                    fz.checkpoint("after round %d" % fz.rounds)
            except Fault as e:
                # Whatever it was, the next rounds get a fresh vhostd
                # (and fresh baselines).
                fz.fault(e)
                if len(fz.faults) < MAX_FAULTS:
                    fz.restart()
    elapsed = time.monotonic() - t0
    # The end: h gone, nothing leaked, a->b passes, a clean stop.
    if fz.d.proc.poll() is None and len(fz.faults) < MAX_FAULTS:
        try:
            fz.checkpoint("at the end")
            if not fz.faults:
                fz.pair.close()
                fz.pair = None
                fz.d.stop_clean(fz.base_mbufs)
        except (Fault, Failure) as e:
            fz.fault(Fault("at the end: %s" % e))
    s = fz.stats
    if fz.pair:
        fz.keep_pair_stats()
    print("rounds %d (split %d, packed %d, soak %d), sessions rejected at "
          "setup %d, closed by vhostd while written %d; a->b: frames "
          "dropped %d, worst gap while h ran %.2f s (%d times %.1f s with b "
          "congested), worst latency %.2f s, mangled %d, repeated by h %d" % (
              fz.rounds, s["split"], s["packed"], s["soak"], s["rejected"],
              s["closed"], s["lost"], s["max_gap"], s["congested"],
              STALL_LIMIT, fz.max_lat, fz.mangled, fz.dups))
    if s["harness"]:
        print("errors of the fuzzer's own (not faults): %d, last %s" % (
            s["harness"], s["harness_last"]))
    print("%s: %d inputs in %.0f s, %d faults, seed %d" % (
        NAME, fz.inputs, elapsed, len(fz.faults), opts.seed))
    if fz.faults:
        raise Failure("%d faults: %s" % (len(fz.faults),
                                         "; ".join(fz.faults)))


if __name__ == "__main__":
    OPTS = parse()
    run(test_fuzz_guest)
