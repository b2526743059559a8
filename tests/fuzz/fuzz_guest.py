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

Offloads (issue 12): in an offload round h negotiates a random subset of
VIRTIO_NET_F_CSUM, GUEST_CSUM, HOST_TSO4/6, GUEST_TSO4/6 and sends, over
valid descriptor chains, TCP/UDP over IPv4/IPv6 (options, extension
headers, VLAN, QinQ), fragments, non-IP, truncated frames and super-frames
up to 64 KiB, whose lengths may lie, behind hostile virtio-net headers
(flags, gso_type, gso_size, hdr_len, csum_start/csum_offset at every
edge): to a (no offloads: segments and completed checksums), to b
(GUEST_CSUM, mostly GUEST_TSO4/6: partial checksums and super-frames as
they are) or flooded. What a and b get from h must be well formed, and in
a clean round exactly what librte_vhost's and vhostd's rules make of what h
sent, with h's offload counters as predicted (see "offloads" below).
FUZZ_OFFLOAD_IGNORE=kind,... counts offload violations of those kinds
instead of failing on them (to look past a known one).

Topology: learning bridge br0 = h (the hostile guest; a new session every
round) + a, b (well-behaved Python guests: a negotiates no offload, b
GUEST_CSUM and mostly GUEST_TSO4/6, a profile drawn from the seed at each
start). a sends numbered broadcasts all the time (they reach b, and h's rx
ring); b must get them, byte for byte.

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
replay reproduces most faults, not all, every time. An offloads fault
also keeps the frames at fault (a round's "offload_frames": virtio-net
header, frame, destination, descriptor chain), and a replay of that round
sends exactly those, again and again: tests/fuzz/corpus/guest-regress-
offload-*.json are such rounds, one frame each, of the offload faults it
found (fixed: each replay passes now and failed before its fix; not in
the suite, which fuzzes anew; "regress-*" names are fuzz_vhost_user's).

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
import collections
import itertools
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

class PeerGuest:
    """A well-behaved guest (as vhostuser.Guest: one queue pair, split
    rings) that negotiates FEATURES & offered, offloads among them, with rx
    buffers of BUF bytes (a guest with GUEST_TSO and no MRG_RXBUF, which
    vhostd does not offer, posts 64 KiB ones)."""

    def __init__(self, path, features, num=256, buf=2048, timeout=5.0):
        self.fe = vu.Frontend(path, timeout=timeout)
        self.features = self.fe.get_features() & features
        self.mem = vu.Memory(pow2(num * buf + 256 * 2048 + (64 << 10)))
        fe = self.fe
        fe.u64(vu.SET_FEATURES, self.features)
        fe.request(vu.SET_OWNER)
        if self.features & (1 << vu.F_PROTOCOL_FEATURES):
            fe.u64(vu.SET_PROTOCOL_FEATURES, fe.get_protocol_features() &
                   (1 << vu.PF_REPLY_ACK))
        fe.set_mem_table([self.mem.region()], [self.mem.fd])
        self.rxq = vu.SplitRing(self.mem, num, buf)
        self.txq = vu.SplitRing(self.mem, 256, 2048)
        self.rxq.post_rx()
        self.rxq.setup(fe, 0)
        self.txq.setup(fe, 1)
        if self.features & (1 << vu.F_PROTOCOL_FEATURES):
            for i in (0, 1):
                fe.vring_state(vu.SET_VRING_ENABLE, i, 1)

    def caps(self):
        """The offloads vhostd may use towards this guest."""
        f = self.features
        if not f >> F_GUEST_CSUM & 1:
            return set()
        return {"csum"} | {n for n, b in (("tso4", F_GUEST_TSO4),
                                          ("tso6", F_GUEST_TSO6))
                           if f >> b & 1}

    def close(self):
        self.fe.close()
        self.mem.close()


def rx_hdr(q):
    """As SplitRing.rx, with each frame's virtio-net header: [(header,
    frame)]."""
    out = []
    m = q.mem.map
    for i, n in q.reap():
        b = q.bufs[i]
        out.append((bytes(m[b:b + vu.VNET_HDR]),
                    bytes(m[b + vu.VNET_HDR:b + n])))
    q.post_rx()
    return out


class Pair:
    """The well-behaved guests: a sends numbered broadcasts (to b, and to
    whatever rx ring h has), b collects them. Every frame a sent stays in
    PENDING until b got exactly its bytes. a negotiates no offload; b those
    of B_FEATURES (64 KiB rx buffers if GUEST_TSO4/6). Frames a and b get
    from h go to CHECK(port, virtio-net header, frame)."""

    def __init__(self, t, b_features=0, check=None):
        self.a = vu.Guest(t.path("a.sock"))
        base = (1 << vu.F_VERSION_1) | (1 << vu.F_PROTOCOL_FEATURES)
        tso = b_features & ((1 << F_GUEST_TSO4) | (1 << F_GUEST_TSO6))
        self.b = PeerGuest(t.path("b.sock"), base | b_features,
                           num=128 if tso else 256,
                           buf=BIG_BUF if tso else 2048)
        self.check = check
        self.from_h = mac(H_MAC)
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

    def hello(self):
        """b makes itself known (the bridge learns B_MAC)."""
        self.b.txq.tx(frame(BCAST, B_MAC, 0x88B7, b"hello from b"))

    def drain(self, keep_others=False):
        """Collect what a and b received; the number of a's frames b
        got now."""
        for hdr, f in rx_hdr(self.a.rxq):
            if self.check and f[6:12] == self.from_h:
                self.check("a", hdr, f)
        got = 0
        now = time.monotonic()
        for hdr, f in rx_hdr(self.b.rxq):
            sent = self.pending.pop(f, None)
            if sent is None:
                if self.check and f[6:12] == self.from_h:
                    self.check("b", hdr, f)
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
             if ("packed" if packed else "split") in kinds and
             n != "offload"]
    lanes = []
    for _ in range(rng.choice([1, 1, 2, 2, 3])):
        lanes.append([rng.choice(names), rng.choice(["rx", "tx"])])
    # Offloads: an offload round (the offload lane on h's tx ring: clean,
    # with at most a few rx-only lanes, or mixed with the others), and
    # now and then the offload features in another round (the other
    # lanes' random virtio-net headers are then read too).
    cfg["offload"] = None
    offl = [b for b in OFFL_BITS if offered >> b & 1]
    if offl and not packed and rng.random() < OFFLOAD_SHARE:
        clean = rng.random() < 0.75
        if clean:
            lanes = [[n, "rx"] for n, _ in lanes
                     if n in SAFE_RX][:rng.choice([0, 0, 1, 2])]
            cfg["features"] &= ~(1 << F_IN_ORDER)
            if cfg["layout"] == "shared":
                cfg["layout"] = "low"
        lanes.insert(rng.randrange(len(lanes) + 1), ["offload", "tx"])
        cfg["offload"] = {"strict": clean}
        cfg["offl_area"] = OFFL_AREA
    if offl and (cfg["offload"] or rng.random() < 0.3):
        for b in offl:
            if rng.random() < 0.75:
                cfg["features"] |= 1 << b
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
                (nrx + ntx) * (bs + 64) + SPARE + cfg.get("offl_area", 0))
        if cfg["layout"] == "high":
            need += 8192 + ring_bytes(nrx) + ring_bytes(ntx)
        self.mem = vu.Memory(max(pow2(need), 64 << 10))
        self.size = self.mem.size
        self.rxq = Ring(self.mem, nrx, bs)
        self.txq = Ring(self.mem, ntx, bs)
        self.spare = self.mem.alloc(SPARE, 4096)
        self.offl = None        # the fuzzer's OffloadCheck
        self.offl_frames = None     # a fault's frames to send again
        self.offl_area = None
        if cfg.get("offl_area"):
            self.offl_area = (self.mem.alloc(cfg["offl_area"], 4096),
                              cfg["offl_area"])
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


# ------------------------------------------------------------- offloads
#
# Checksum and TSO offloads (issue 12). In an offload round h negotiates a
# random subset of VIRTIO_NET_F_CSUM, GUEST_CSUM, HOST_TSO4/6, GUEST_TSO4/6
# and its "offload" lane sends frames over valid descriptor chains (1 to
# 16 descriptors, the virtio-net header cut anywhere) from an area of its
# own: TCP and UDP over IPv4 (options) and IPv6 (extension headers, more
# than 511 bytes of them now and then), untagged, VLAN, QinQ, with lengths
# that lie (IP total/payload length, IHL, TCP data offset, UDP length),
# fragments, other protocols, non-IP, truncated frames, Ethernet padding,
# 14 bytes to 64 KiB; behind virtio-net headers that are honest (what
# Linux sends) or hostile field by field (flags, gso_type with ECN and
# garbage, gso_size 0, 1, tiny, = payload, > frame, 0xffff, at the 256
# segment and MTU edges, hdr_len, csum_start/csum_offset 0, inside, at and
# past the end of the frame, past the first mbuf). To A_MAC (a: no
# offloads: segments and completed checksums), to B_MAC (b: GUEST_CSUM and
# mostly GUEST_TSO4/6, 64 KiB rx buffers: partial checksums and
# super-frames as they are), or flooded to both.
#
# What a and b get from h is checked (OffloadCheck): no offload header to
# a guest that did not negotiate it; without GSO at most MTU + 14 bytes
# (+ 4 tagged); with NEEDS_CSUM a csum_start/csum_offset at the frame's
# TCP/UDP checksum and a seed that completes to a valid checksum; with
# GSO a well-formed super-frame of the right type. In a clean round (the
# offload lane alone on h's tx ring, so h's frames reach vhostd as
# written) each frame is matched (by its IP source address) to what h sent
# and to what librte_vhost 22.11 (compliant offload flags) and vhostd's
# rules (dp/offload.c, notes/offload-spec.md) make of it: unmarked frames
# arrive byte for byte; refused ones (drop_bad_offload) never arrive;
# partial ones arrive with a valid IPv4 header and TCP/UDP checksum (or
# marked partial to b) and otherwise unchanged; segments are well formed,
# carry the right payload bytes, sequence numbers, IPv4 ids and flags. And
# h's counters rx_csum_partial, rx_tso and drop_bad_offload grow by what
# those rules predict for the frames vhostd took from the ring.

F_CSUM, F_GUEST_CSUM, F_GUEST_TSO4, F_GUEST_TSO6 = 0, 1, 7, 8
F_HOST_TSO4, F_HOST_TSO6, F_HOST_ECN, F_HOST_UFO = 11, 12, 13, 14
OFFL_BITS = (F_CSUM, F_GUEST_CSUM, F_HOST_TSO4, F_HOST_TSO6, F_GUEST_TSO4,
             F_GUEST_TSO6)
HOST_OFFL = sum(1 << b for b in (F_CSUM, F_HOST_TSO4, F_HOST_TSO6,
                                 F_HOST_ECN, F_HOST_UFO))
NEEDS_CSUM = 1
GSO_TCPV4, GSO_UDP, GSO_TCPV6, GSO_ECN = 1, 3, 4, 0x80
# struct virtio_net_hdr_mrg_rxbuf: flags, gso_type, hdr_len, gso_size,
# csum_start, csum_offset, num_buffers
VNET = struct.Struct("<BBHHHHH")
B_MAC = "02:00:00:00:0b:01"
MAX_FRAME = 1514        # the ports' MTU (1500, the default) + 14
MBUF_DATA = 2048        # a frame's first mbuf (RTE_MBUF_DEFAULT_DATAROOM)
GSO_MAX_SEGS = 256      # VHD_GSO_MAX_SEGS
BIG_BUF = 65600         # b's rx buffers with GUEST_TSO: 65562 and more
OFFL_AREA = 1 << 20     # h's frames of the offload lane
TCP, UDP = 6, 17
OFFLOAD_SHARE = 0.4     # of the rounds (split rings only)
FIN, PSH, CWR = 0x01, 0x08, 0x80
# On h's rx ring next to a clean offload lane: strategies that write no
# memory but h's rx ring and buffers.
SAFE_RX = ("valid", "multi", "used_full", "random", "flip", "avail_jump",
           "head_oob", "wrong_dir", "long_chain", "next_oob", "loop",
           "used_scribble", "bad_addr")

B_PROFILES = [  # b's offloads (name, features, weight)
    ("csum+tso4+tso6", (F_GUEST_CSUM, F_GUEST_TSO4, F_GUEST_TSO6), 0.6),
    ("csum", (F_GUEST_CSUM,), 0.15),
    ("csum+tso4", (F_GUEST_CSUM, F_GUEST_TSO4), 0.1),
    ("csum+tso6", (F_GUEST_CSUM, F_GUEST_TSO6), 0.05),
    ("tso4+tso6 without csum", (F_GUEST_TSO4, F_GUEST_TSO6), 0.1)]


def be16(f, o):
    return f[o] << 8 | f[o + 1]


def ones(data, s=0):
    """The one's complement sum of DATA as big-endian 16-bit words (an odd
    byte padded with a zero) plus S, folded to 16 bits."""
    data = bytes(data)
    if len(data) & 1:
        data += b"\0"
    t = sum(memoryview(data).cast("H")) if data else 0
    while t >> 16:
        t = (t & 0xFFFF) + (t >> 16)
    t = ((t & 0xFF) << 8) | (t >> 8)    # the words were read little-endian
    t += s
    while t >> 16:
        t = (t & 0xFFFF) + (t >> 16)
    return t


def dpdk_cksum_mbuf(f, off, ln):
    """rte_raw_cksum_mbuf() of DPDK 22.11 over bytes OFF..OFF+LN of frame
    F as librte_vhost copies it into mbufs (MBUF_DATA bytes each), as the
    CPU's 16-bit value: bug for bug (a segment that starts at an odd byte
    of the sum has its sum cut to 16 bits before the byte swap: carries
    lost)."""
    def raw(b):
        b = bytes(b)
        if len(b) & 1:
            b += b"\0"
        return sum(memoryview(b).cast("H")) if b else 0

    def reduce(t):
        t = (t >> 16) + (t & 0xFFFF)
        t = (t >> 16) + (t & 0xFFFF)
        return t & 0xFFFF

    if off + ln <= min(len(f), MBUF_DATA):
        return reduce(raw(f[off:off + ln]))
    total, done, pos = 0, 0, off
    while done < ln:
        seglen = min(MBUF_DATA - pos % MBUF_DATA, ln - done)
        if done == 0 and seglen >= ln:
            return reduce(raw(f[pos:pos + ln]))
        t = raw(f[pos:pos + seglen])
        if done & 1:
            t = ((t & 0xFF) << 8) | ((t >> 8) & 0xFF)
        total += t
        done += seglen
        pos += seglen
    return reduce(total)


def pseudo(f, l2, v6, proto, length):
    """The pseudo-header sum of a TCP/UDP datagram of LENGTH bytes under
    the IP header at L2 of F."""
    if v6:
        return ones(f[l2 + 8:l2 + 40], (length >> 16) + (length & 0xFFFF) +
                    proto)
    return ones(f[l2 + 12:l2 + 20], length + proto)


def dpdk_ptype(f):
    """rte_net_get_ptype's L2-L4 view of F (DPDK 22.11), as librte_vhost
    and vhostd's parse() take it: (l2, l3, l4, kind, v6), kind "tcp",
    "udp", "sctp", "frag" or None; None for a runt."""
    n = len(f)
    if n < 14:
        return None
    et, off = be16(f, 12), 14
    if et == 0x8100:
        if n < off + 4:
            return (off, 0, 0, None, False)
        off += 4
        et = be16(f, off - 2)
    elif et == 0x88A8:
        if n < off + 8:
            return (off, 0, 0, None, False)
        off += 8
        et = be16(f, off - 2)
    l2 = off
    if et == 0x0800:
        if n < off + 20:
            return (l2, 0, 0, None, False)
        l3 = (f[off] & 0xF) * 4
        v6 = False
        if be16(f, off + 6) & 0x3FFF:
            return (l2, l3, 0, "frag", False)
        proto = f[off + 9]
        off += l3
    elif et == 0x86DD:
        if n < off + 40:
            return (l2, 0, 0, None, True)
        v6, frag = True, False
        proto = f[off + 6]
        off += 40
        if proto in (0, 43, 44, 50, 51, 60):    # rte_net_skip_ip6_ext
            for _ in range(5):
                if proto in (0, 43, 60):
                    if n < off + 2:
                        return (l2, 40, 0, None, True)
                    proto, off = f[off], off + (f[off + 1] + 1) * 8
                elif proto == 44:
                    if n < off + 2:
                        return (l2, 40, 0, None, True)
                    proto, off, frag = f[off], off + 8, True
                    break
                elif proto == 59:
                    proto = 0
                    break
                else:
                    break
            else:
                return (l2, 40, 0, None, True)
        l3 = off - l2
        if proto == 0:
            return (l2, l3, 0, None, True)
        if frag:
            return (l2, l3, 0, "frag", True)
    else:
        return (l2, 0, 0, None, False)
    kind = {TCP: "tcp", UDP: "udp", 132: "sctp"}.get(proto)
    l4 = 0
    if kind == "udp":
        l4 = 8
    elif kind == "sctp":
        l4 = 12
    elif kind == "tcp":
        if n < off + 20:
            return (l2, l3, 0, None, v6)
        l4 = (f[off + 12] & 0xF0) >> 2
    return (l2, l3, l4, kind, v6)


def strict_parse(f):
    """F's headers if it is a well-formed TCP/UDP over IPv4/IPv6 frame
    (as a receiver would take it): a dict; else what is wrong, a str
    "code: text"."""
    pt = dpdk_ptype(f)
    if pt is None:
        return "runt: %d bytes" % len(f)
    l2, l3, l4, kind, v6 = pt
    if kind not in ("tcp", "udp"):
        return "not-l4: not TCP/UDP over IP (%s)" % kind
    if v6:
        if f[l2] >> 4 != 6:
            return "version: IPv6 version %d" % (f[l2] >> 4)
        ip_end = l2 + 40 + be16(f, l2 + 4)
    else:
        if f[l2] >> 4 != 4:
            return "version: IPv4 version %d" % (f[l2] >> 4)
        if l3 < 20:
            return "ihl: IPv4 IHL %d < 5" % (l3 // 4)
        ip_end = l2 + be16(f, l2 + 2)
    if ip_end > len(f):
        return "ip-len: IP datagram (to %d) runs past the frame (%d " \
            "bytes)" % (ip_end, len(f))
    if kind == "tcp" and l4 < 20:
        return "doff: TCP data offset %d < 5" % (l4 // 4)
    if l2 + l3 + l4 > ip_end:
        return "l4-past-ip: %s header (%d bytes at %d) past the IP " \
            "datagram's end %d" % (kind, l4, l2 + l3, ip_end)
    return {"l2": l2, "l3": l3, "l4": l4, "tcp": kind == "tcp", "v6": v6,
            "ip_end": ip_end, "hdr": l2 + l3 + l4}


def csum_at(p):
    """Where P's TCP/UDP checksum is."""
    return p["l2"] + p["l3"] + (16 if p["tcp"] else 6)


def l4_valid(f, p):
    s = p["l2"] + p["l3"]
    return ones(f[s:p["ip_end"]], pseudo(f, p["l2"], p["v6"],
                                         TCP if p["tcp"] else UDP,
                                         p["ip_end"] - s)) == 0xFFFF


def ip_valid(f, p):
    return p["v6"] or ones(f[p["l2"]:p["l2"] + p["l3"]]) == 0xFFFF


def deferred(chain):
    """The byte ranges of a frame that librte_vhost 22.11 (desc_to_mbuf)
    may not have copied yet when it reads the frame for its offloads: the
    chunks of 256 bytes or less (MAX_BATCH_LEN) past the first mbuf, which
    it batches until the whole burst is dequeued. CHAIN: the lengths of
    the descriptors of header and frame."""
    vec = [n for n in chain if n]       # no buf_vec entry for length 0
    i, rem = 0, vu.VNET_HDR
    while i < len(vec) and vec[i] <= rem:
        rem -= vec[i]
        i += 1
    if i >= len(vec):
        return []
    out, pos, first = [], 0, True
    buf, mbuf = vec[i] - rem, MBUF_DATA
    while True:
        n = min(buf, mbuf)
        if not first and n <= 256:
            out.append((pos, pos + n))
        pos, buf, mbuf = pos + n, buf - n, mbuf - n
        if buf == 0:
            i += 1
            if i >= len(vec):
                return out
            buf = vec[i]
        if mbuf == 0:
            first, mbuf = False, MBUF_DATA


def predict(hdr, f, feats, chain=None):
    """What librte_vhost 22.11 (compliant offload flags) and vhostd's rx
    (dp/offload.c rx_guest_frame, parse) make of frame F behind virtio-net
    header HDR from a guest with FEATS: (verdict, frame, at, sure) with
    verdict "plain", "partial", "tso", "bad" (drop_bad_offload) or "runt"
    (drop_invalid); the frame as vhostd got it: librte_vhost may have
    written a checksum of its own into it, 2 bytes at AT (else None).
    That checksum may be over stale bytes: librte_vhost computes it before
    it copies the chunks of 256 bytes or less it batches (past the first
    mbuf; deferred(CHAIN), all of them without a CHAIN), and then its
    value is a guess; SURE is False if a wrong guess could change the
    verdict (it lands in the headers) or the headers go past the first
    mbuf. AT is None where the value is certain."""
    flags, gso, _, gsz, cs, co, _ = VNET.unpack(hdr)
    at, sure = None, True
    if len(f) < 14:
        return "runt", f, at, sure
    if not feats & HOST_OFFL or (flags == 0 and gso == 0):
        return "plain", f, at, sure
    l2, l3, l4, kind, _ = dpdk_ptype(f)
    if l2 + l3 + max(l4, 20) > MBUF_DATA:
        sure = False
    marked = lro = False
    if flags & NEEDS_CSUM:
        if cs <= l2 + l3 + l4 and kind in ("tcp", "udp", "sctp"):
            marked = True
        else:
            # "Unknown proto or tunnel, do sw cksum" (no GSO after a
            # csum_start past the frame: CVE-2024-11614's fix returns).
            if cs >= len(f):
                return "plain", f, at, sure
            c = dpdk_cksum_mbuf(f, cs, len(f) - cs)
            if c != 0xFFFF:
                c = ~c & 0xFFFF
            off = (cs + co) & 0xFFFF
            first = min(len(f), MBUF_DATA)
            if first >= off + 1:
                # A 16-bit store at OFF, even at the first mbuf's last
                # byte: then its second byte lands past the mbuf's data
                # room (past its buffer when the mbuf is full).
                f = f[:off] + struct.pack("<H", c)[:first - off] + \
                    f[min(off + 2, first):]
                stale = len(f) > MBUF_DATA if chain is None else any(
                    b > cs and a < len(f) for a, b in deferred(chain))
                if stale:
                    at = off
                    if off < max(l2 + l3 + l4, 64) + 2:
                        sure = False
    if gso and gsz:
        g = gso & ~GSO_ECN
        if g in (GSO_TCPV4, GSO_TCPV6) and kind == "tcp" or \
                g == GSO_UDP and kind == "udp":
            lro = True
    if not marked and not lro:
        return "plain", f, at, sure
    # vhostd parses the frame as librte_vhost left it.
    l2, l3, l4, kind, v6 = dpdk_ptype(f)
    n = len(f)
    if kind not in ("tcp", "udp") or l2 + l3 + l4 > min(n, MBUF_DATA):
        return "bad", f, at, sure
    # An IP version not the ethertype's, an IPv4 IHL or a TCP data
    # offset below 5, headers longer than the mbuf's l2_len (7 bits) and
    # l3_len (9 bits) hold.
    if f[l2] >> 4 != (6 if v6 else 4) or (not v6 and l3 < 20) or \
            (kind == "tcp" and l4 < 20) or l2 > 127 or l3 > 511:
        return "bad", f, at, sure
    ip_end = l2 + (40 + be16(f, l2 + 4) if v6 else be16(f, l2 + 2))
    if ip_end > n or ip_end < l2 + l3 + l4:
        return "bad", f, at, sure
    if lro:
        if kind != "tcp" or gsz > n or ip_end != n:
            return "bad", f, at, sure
        payload = n - (l2 + l3 + l4)
        if payload > gsz:
            if -(-payload // gsz) > GSO_MAX_SEGS:
                return "bad", f, at, sure
            return "tso", f, at, sure
    return "partial", f, at, sure


def gen_offload_frame(r, key, dst):
    """One frame for the offload lane from h to DST, its IP source address
    made of KEY: (frame, spec), SPEC saying what was built and which
    lengths lie."""
    spec = {"lies": []}
    lies = spec["lies"]
    l2b = mac(dst) + mac(H_MAC)
    tags = r.choices([[], [0x8100], [0x88A8, 0x8100], [0x8100, 0x8100],
                      [0x88A8], [0x9100, 0x8100]],
                     [0.7, 0.15, 0.08, 0.03, 0.02, 0.02])[0]
    for t in tags:
        l2b += struct.pack(">HH", t, r.randrange(4096))
    spec["tags"] = ["%#x" % t for t in tags]
    kind = r.choices(["v4", "v6", "other"], [0.5, 0.4, 0.1])[0]
    spec["kind"] = kind
    if kind == "other":
        et = r.choice([0x0806, 0x88B6, 0x8847, 0x0800, 0x86DD])
        spec["ethertype"] = "%#x" % et
        return l2b + struct.pack(">H", et) + r.randbytes(r.choice(
            [0, 1, 10, 19, 39, 46, r.randrange(1500), r.randrange(9000)])), \
            spec
    proto = r.choices([TCP, UDP, r.choice([1, 132, 47, 4, 41, 0, 255])],
                      [0.62, 0.3, 0.08])[0]
    spec["proto"] = proto
    sport, dport = r.getrandbits(16), r.getrandbits(16)
    # L4 header
    if proto == TCP:
        nopt = 0 if r.random() < 0.7 else r.randrange(1, 11)
        doff = 5 + nopt
        doff_f = doff
        if r.random() < 0.12:
            doff_f = r.choice([0, 1, 4, doff + 1, 15, r.randrange(16)])
            lies.append("tcp doff %d (really %d)" % (doff_f, doff))
        tflags = 0x10 | (0x08 if r.random() < 0.5 else 0)
        for bit, pr in ((FIN, 0.15), (0x02, 0.05), (0x04, 0.03),
                        (0x20, 0.05), (0x40, 0.1), (CWR, 0.15)):
            if r.random() < pr:
                tflags |= bit
        l4 = struct.pack(">HHIIBBHHH", sport, dport, r.getrandbits(32),
                         r.getrandbits(32), (doff_f & 0xF) << 4, tflags,
                         r.getrandbits(16), 0, 0) + tcp_opts(r, 4 * nopt)
    elif proto == UDP:
        l4 = struct.pack(">HHHH", sport, dport, 0, 0)
    elif proto == 132:
        l4 = struct.pack(">HHII", sport, dport, r.getrandbits(32), 0)
    else:
        l4 = b""
    # L3 header
    if kind == "v4":
        nopt = 0 if r.random() < 0.75 else r.randrange(1, 11)
        iopts = ip_opts(r, 4 * nopt)
        l3len = 20 + len(iopts)
        ext = b""
    else:
        ext, first = ip6_exts(r, proto, spec)
        l3len = 40 + len(ext)
    hdrs = len(l2b) + 2 + l3len + len(l4)
    room = 65535 - (l3len if kind == "v4" else l3len - 40) - len(l4)
    fill = max(0, MAX_FRAME - hdrs)
    pl = r.choices(
        [0, 1, r.randrange(2, 64), r.randrange(64, 1400), fill, fill + 1,
         r.randrange(1400, 3000), r.randrange(3000, 9000),
         r.randrange(9000, room + 1), room],
        [0.04, 0.03, 0.08, 0.15, 0.1, 0.04, 0.1, 0.1, 0.26, 0.1])[0]
    pl = max(0, min(pl, room))
    spec["payload"] = pl
    payload = r.randbytes(pl)
    if proto == UDP:
        ulen = 8 + pl
        if r.random() < 0.08:
            ulen = r.choice([0, 7, 8, ulen - 1, ulen + 1, 0xFFFF])
            lies.append("udp length %d (really %d)" % (ulen, 8 + pl))
        l4 = l4[:4] + struct.pack(">H", ulen & 0xFFFF) + l4[6:]
    src = struct.pack(">I", key)
    if kind == "v4":
        ihl = l3len // 4
        ihl_f = ihl
        if r.random() < 0.1:
            ihl_f = r.choice([0, 1, 4, ihl + 1, 15, r.randrange(16)])
            lies.append("ihl %d (really %d)" % (ihl_f, ihl))
        ver = 4 if r.random() < 0.97 else r.choice([6, 0, 15])
        if ver != 4:
            lies.append("ip version %d" % ver)
        tot = l3len + len(l4) + pl
        tot_f = tot
        if r.random() < 0.12:
            tot_f = r.choice([0, 1, 20, l3len, tot - 1, tot + 1,
                              r.randrange(tot + 1), tot + r.randrange(3000),
                              0xFFFF]) & 0xFFFF
            lies.append("ip total length %d (really %d)" % (tot_f, tot))
        frag = 0x4000 if r.random() < 0.5 else 0
        if r.random() < 0.05:
            frag = r.choice([0x2000, r.randrange(1, 0x2000),
                             0x2000 | r.randrange(1, 0x2000)])
            spec["fragment"] = frag
        l3 = struct.pack(">BBHHHBBH4s4s", ver << 4 | (ihl_f & 0xF),
                         r.getrandbits(8), tot_f, r.getrandbits(16), frag,
                         64, proto, 0, src, b"\x0a\x01\x02\x03") + iopts
        et = 0x0800
    else:
        plen = len(ext) + len(l4) + pl
        plen_f = plen
        if r.random() < 0.12:
            plen_f = r.choice([0, 1, len(ext), plen - 1, plen + 1,
                               r.randrange(plen + 1), plen + r.randrange(3000),
                               0xFFFF]) & 0xFFFF
            lies.append("ipv6 payload length %d (really %d)" % (plen_f, plen))
        ver = 6 if r.random() < 0.97 else r.choice([4, 0, 15])
        if ver != 6:
            lies.append("ip version %d" % ver)
        l3 = struct.pack(">IHBB16s16s", ver << 28 | r.getrandbits(20), plen_f,
                         first, 64, b"\xfd" + bytes(11) + src,
                         b"\xfd" + bytes(14) + b"\x02") + ext
        et = 0x86DD
    f = bytearray(l2b + struct.pack(">H", et) + l3 + l4 + payload)
    l2 = len(l2b) + 2
    spec["l2"], spec["l4_at"] = l2, l2 + l3len
    # Checksums over what was built: the IPv4 header's over the IHL it
    # claims, the TCP/UDP one valid, partial (Linux's pseudo-header sum),
    # DPDK's (without the length), zero or junk.
    s = l2 + l3len
    if proto in (TCP, UDP):
        at = s + (16 if proto == TCP else 6)
        how = r.choice(["valid", "valid", "pseudo", "pseudo", "pseudo_nolen",
                        "zero", "junk"])
        spec["l4_csum"] = how
        ln = len(l4) + pl
        ps = pseudo(f, l2, kind == "v6", proto, ln)
        if how == "valid":
            c = ~ones(f[s:], ps) & 0xFFFF
        elif how == "pseudo":
            c = ps
        elif how == "pseudo_nolen":
            c = pseudo(f, l2, kind == "v6", proto, 0)
        elif how == "zero":
            c = 0
        else:
            c = r.getrandbits(16)
        f[at:at + 2] = struct.pack(">H", c)
    if kind == "v4":
        n = max(ihl_f, 5) * 4
        c = ~ones(f[l2:l2 + n]) & 0xFFFF
        if r.random() < 0.03:
            c = r.getrandbits(16)
            lies.append("bad ip header checksum")
        f[l2 + 10:l2 + 12] = struct.pack(">H", c)
    f = bytes(f)
    if r.random() < 0.07:
        cut = r.randrange(14, len(f)) if r.random() < 0.5 or len(f) < 15 \
            else r.randrange(14, max(15, min(len(f), s + len(l4) + 8)))
        lies.append("truncated to %d of %d bytes" % (cut, len(f)))
        f = f[:max(cut, 14)]
    elif r.random() < 0.08:
        pad = r.randrange(1, 48)
        lies.append("%d bytes after the IP datagram" % pad)
        f += r.randbytes(pad)
    return f, spec


def tcp_opts(r, n):
    """N bytes of TCP options: real ones (MSS, SACK permitted, window
    scale, timestamps), NOPs, an end, or junk."""
    if r.random() < 0.2:
        return r.randbytes(n)
    out = b""
    while len(out) < n:
        o = r.choice([b"\x02\x04\x05\xb4", b"\x04\x02", b"\x03\x03\x07",
                      b"\x08\x0a" + r.randbytes(8), b"\x01", b"\x00"])
        out += o
    return out[:n]


def ip_opts(r, n):
    """N bytes of IPv4 options: NOPs, router alert, end, or junk."""
    if r.random() < 0.3:
        return r.randbytes(n)
    out = b""
    while len(out) < n:
        out += r.choice([b"\x01", b"\x94\x04\x00\x00", b"\x00"])
    return out[:n]


def ip6_exts(r, proto, spec):
    """A chain of IPv6 extension headers ending in PROTO, now and then
    one longer than 511 bytes (m->l3_len is 9 bits), an AH, ESP, a
    fragment header, no next header, or a length that lies: (bytes, the
    first next-header value)."""
    if r.random() < 0.6:
        return b"", proto
    kinds = [r.choice([0, 43, 60, 60, 0, 44, 51, 50, 59])
             for _ in range(r.choice([1, 1, 1, 2, 3, 5, 6]))]
    spec["ext"] = kinds
    big = r.random() < 0.25
    out = b""
    for i, k in enumerate(kinds):
        nxt = kinds[i + 1] if i + 1 < len(kinds) else proto
        if k in (0, 43, 60):
            hl = r.choice([0, 0, 1, 2, r.randrange(32)])
            if big and i == 0:
                hl = r.randrange(63, 256)
                spec["ext_big"] = (hl + 1) * 8
            body = bytes([nxt, hl]) + (b"\x01\x04\x00\x00\x00\x00"
                                       if r.random() < 0.7 else
                                       r.randbytes(6))
            body += bytes(8 * hl) if r.random() < 0.7 else r.randbytes(8 * hl)
            if r.random() < 0.04:
                body = bytes([nxt, r.getrandbits(8)]) + body[2:]
                spec["lies"].append("ext header length byte")
            out += body
        elif k == 44:
            out += struct.pack(">BBHI", nxt, 0, r.choice(
                [0, 1, 0x8, r.getrandbits(16)]), r.getrandbits(32))
        elif k == 51:
            ln = r.choice([1, 2, 4])
            out += bytes([nxt, ln]) + r.randbytes((ln + 2) * 4 - 2)
        elif k == 50:
            out += r.randbytes(8)
            break
        elif k == 59:
            break
    return out, kinds[0]


def gen_vnet(r, f, spec):
    """A virtio-net header for frame F: honest (what Linux sends: a partial
    checksum at the TCP/UDP checksum, TSO with an MSS) or hostile field by
    field, with the values at librte_vhost's and vhostd's edges."""
    n = len(f)
    pt = dpdk_ptype(f) or (14, 0, 0, None, False)
    l2, l3, l4, kind, v6 = pt
    hdr = l2 + l3 + l4
    pl = max(0, n - hdr)
    tag = 4 if l2 > 14 else 0
    flags = gso = gsz = cs = co = hl = 0
    if r.random() < 0.45:
        spec["vnet"] = "honest"
        if kind in ("tcp", "udp") and r.random() < 0.9:
            flags, cs, co = NEEDS_CSUM, l2 + l3, 16 if kind == "tcp" else 6
            if kind == "tcp" and pl and r.random() < 0.75:
                gso = GSO_TCPV6 if v6 else GSO_TCPV4
                gsz = r.choice([536, 1000, 1200, 1220, 1400, 1440, 1448, 1460,
                                r.randrange(1, 1461),
                                max(1, MAX_FRAME + tag - hdr),
                                max(1, -(-pl // GSO_MAX_SEGS))])
                hl = hdr
                if gsz >= pl and r.random() < 0.7:
                    gso = gsz = hl = 0  # Linux: one segment, no GSO
    else:
        spec["vnet"] = "hostile"
        flags = r.choice([0, 1, 1, 1, 1, 2, 3, 4, 5, 0x81, 0xFF,
                          r.getrandbits(8)])
        gso = r.choice([0, 0, 1, 1, 1, 4, 4, 4, 3, 0x81, 0x84, 0x83, 0x80, 2,
                        5, 0xFF, r.getrandbits(8)])
        gsz = r.choice([0, 0, 1, 2, r.randrange(1, 64), 536, 1448, 1460,
                        MAX_FRAME + tag - hdr, MAX_FRAME + tag - hdr + 1,
                        pl, pl - 1, pl + 1, n, n + 1, 0xFFFF,
                        r.getrandbits(16), -(-pl // GSO_MAX_SEGS),
                        -(-pl // GSO_MAX_SEGS) - 1, pl // 2])
        cs = r.choice([0, l2, l2 + l3, l2 + l3, hdr, hdr + 1,
                       r.randrange(n + 1), n - 1, n - 2, n, n + 1, 0xFFFF,
                       MBUF_DATA - 2, MBUF_DATA - 1, MBUF_DATA,
                       r.getrandbits(16)])
        co = r.choice([16, 16, 6, 6, 0, 1, 2, 17, n - cs - 1, n - cs - 2,
                       n - cs, MBUF_DATA - 1 - cs, MBUF_DATA - 2 - cs, 0xFFFF,
                       0x10000 - cs, r.getrandbits(16)])
        hl = r.choice([0, hdr, 1, 0xFFFF, r.getrandbits(16)])
    nb = r.choice([0, 0, 1, 0xFFFF])
    return VNET.pack(flags & 0xFF, gso & 0xFF, hl & 0xFFFF, gsz & 0xFFFF,
                     cs & 0xFFFF, co & 0xFFFF, nb)


class Area:
    """h's offload area as a ring of byte ranges, handed out in order and
    taken back in order once vhostd returned their chains."""

    def __init__(self, base, size):
        self.base, self.end = base, base + size
        self.live = collections.deque()     # [start, end, done]
        self.head = base

    def alloc(self, n):
        n = (n + 63) & ~63
        while self.live and self.live[0][2]:
            self.live.popleft()
        if not self.live:
            self.head = self.base
        else:
            tail = self.live[0][0]
            if self.head >= tail:
                if self.head + n > self.end:
                    if self.base + n >= tail:
                        return None
                    self.head = self.base
            elif self.head + n >= tail:
                return None
        if self.head + n > self.end:
            return None
        a = [self.head, self.head + n, False]
        self.live.append(a)
        self.head += n
        return a

    def reset(self):
        self.live.clear()
        self.head = self.base


def s_offload(c):
    """Frames with hostile virtio-net headers over valid descriptor
    chains (see "offloads" above); in a clean round vhostd reads them as
    written and what comes of them is checked."""
    r, st, q, h = c.rng, c.st, c.q, c.h
    chk = h.offl
    if not st:
        st.update(area=Area(*h.offl_area), heads={}, posted=0, race=None)
    strict = h.cfg["offload"]["strict"]
    for i, _ in q.reap():
        got = st["heads"].pop(i, None)
        if got is not None:
            got[0][2] = True
            got[1]["dequeued"] = True
    n = 0
    replay = h.offl_frames
    for _ in range(r.choice([1, 1, 1, 2, 3])):
        if replay:
            # A fault's frames again, as they were: header, frame (its
            # source address made this round's key), descriptor chain.
            one = replay[st["posted"] % len(replay)]
            hdr, f = bytes.fromhex(one["vnet_hdr"]), one["frame"]
            spec = dict(one["spec"])
            key = chk.new_key()
            f = rekey(bytes.fromhex(f), spec, key)
            dst = one["to"]
        else:
            dst = r.choices([A_MAC, B_MAC, BCAST, "02:00:00:00:0e:%02x" %
                             r.randrange(256), "33:33:00:00:00:01"],
                            [0.3, 0.3, 0.2, 0.15, 0.05])[0]
            key = chk.new_key()
            f, spec = gen_offload_frame(r, key, dst)
            hdr = gen_vnet(r, f, spec)
        data = hdr + f
        a = st["area"].alloc(len(data))
        if a is None:
            if strict:
                break
            st["area"].reset()      # someone else reaped our chains
            st["heads"].clear()
            a = st["area"].alloc(len(data))
        k = 1 if r.random() < 0.45 else r.randrange(2, 17)
        if replay and spec.get("chain"):
            k = len(spec["chain"])
        if strict:
            k = min(k, len(q.free))
            if not k:
                a[2] = True
                break
            ids = [q.free.pop() for _ in range(k)]
        else:
            ids = [q.free.pop() if q.free else r.randrange(c.num)
                   for _ in range(k)]
        c.mem[a[0]:a[0] + len(data)] = data
        cuts = sorted(r.randrange(len(data) + 1) for _ in range(k - 1))
        if k > 1 and r.random() < 0.3:
            cuts[0] = r.randrange(1, VNET.size)     # the header cut
            cuts.sort()
        if replay and spec.get("chain") and k == len(spec["chain"]):
            cuts = list(itertools.accumulate(spec["chain"]))[:-1]
        prev = 0
        for j, cut in enumerate(cuts + [len(data)]):
            last = j + 1 == k
            c.desc(ids[j], a[0] + prev, cut - prev, 0 if last else NEXT,
                   0 if last else ids[j + 1])
            prev = cut
        q.in_flight[ids[0]] = ids[1:]
        spec["chain"] = [b - a_ for a_, b in zip([0] + cuts, cuts +
                                                 [len(data)])]
        rec = chk.sent(hdr, f, spec, h.cfg["features"], strict, dst)
        st["heads"][ids[0]] = (a, rec)
        q.publish(ids[0])
        st["posted"] += 1
        n += 1
        if not strict and r.random() < 0.05:
            st["race"] = a[0]
    if st["race"] is not None:
        # Not clean: the header rewritten while vhostd may read it
        # (librte_vhost reads it in guest memory, after the frame).
        o = st["race"]
        for _ in range(64):
            v = r.choice([0, 0xFFFF, r.getrandbits(16)])
            struct.pack_into("<H", c.mem, o + r.choice([2, 4, 6, 8]), v)
            c.mem[o + r.choice([0, 1])] = r.getrandbits(8)
        st["race"] = None
        n += 1
    return n


def rekey(f, spec, key):
    """Frame F (built by gen_offload_frame, SPEC) with KEY as its IP
    source address, its checksums kept (the key's change made good in
    the IPv4 header checksum and TCP/UDP checksum, as built)."""
    l2 = spec.get("l2")
    if l2 is None or spec.get("kind") not in ("v4", "v6"):
        return f
    at = l2 + (12 if spec["kind"] == "v4" else 20)
    if len(f) < at + 4:
        return f
    old = f[at:at + 4]
    new = struct.pack(">I", key)
    g = bytearray(f)
    g[at:at + 4] = new

    def adjust(o, complemented=True):
        # RFC 1624: HC' = ~(~HC + ~m + m'); a sum, not its complement
        # (a partial checksum's seed): HC + ~m + m'.
        if o + 2 > len(g):
            return
        hc = be16(g, o)
        t = ((~hc & 0xFFFF) if complemented else hc) + \
            ones(bytes(~b & 0xFF for b in old)) + ones(new)
        while t >> 16:
            t = (t & 0xFFFF) + (t >> 16)
        g[o:o + 2] = struct.pack(">H", (~t & 0xFFFF) if complemented else t)
    if spec["kind"] == "v4":
        adjust(l2 + 10)
    how = spec.get("l4_csum")
    if spec.get("proto") in (TCP, UDP) and "l4_at" in spec and \
            how in ("valid", "pseudo", "pseudo_nolen"):
        adjust(spec["l4_at"] + (16 if spec["proto"] == TCP else 6),
               how == "valid")
    return bytes(g)


def offload_settle(c, pair, timeout):
    """At the end of a clean round: wait (passing frames a->b meanwhile)
    until vhostd returned every chain of the offload lane C, so that which
    frames it took is known. True if it did."""
    end = time.monotonic() + timeout
    st = c.st
    while st.get("heads") and time.monotonic() < end:
        for i, _ in c.q.reap():
            got = st["heads"].pop(i, None)
            if got is not None:
                got[0][2] = True
                got[1]["dequeued"] = True
        pair.drain()
        time.sleep(0.002)
    return not st.get("heads")


def hexcut(b, n=160):
    b = bytes(b)
    return b.hex() if len(b) <= n else "%s...(%d bytes)" % (b[:n].hex(),
                                                             len(b))


class OffloadCheck:
    """What h's offload lane sent (by key: its frames' IP source address)
    and the checks on what a and b receive from h."""

    KEEP_ROUNDS = 3
    MAX_KEPT = 8            # violations kept per round for the report

    def __init__(self, ignore=()):
        self.key = 0x0A000000 | random.getrandbits(20) << 4
        self.recs = {}
        self.round = 0
        self.caps = {"a": set(), "b": set()}
        self.ignore = set(ignore)
        self.violations = []
        self.kinds = {}         # violation kind -> count (all rounds)
        self.stats = collections.Counter()

    def new_key(self):
        self.key = 0x0A000000 | ((self.key + 1) & 0xFFFFFF)
        return self.key

    def begin_round(self, n):
        self.round = n
        for k in [k for k, v in self.recs.items()
                  if v["round"] < n - self.KEEP_ROUNDS]:
            del self.recs[k]

    def sent(self, hdr, f, spec, feats, strict, dst):
        verdict, seen, at, sure = predict(hdr, f, feats, spec.get("chain"))
        rec = {"hdr": hdr, "frame": f, "seen": seen, "spec": spec,
               "feats": feats, "strict": strict and sure,
               "verdict": verdict, "dst": dst, "round": self.round,
               "dequeued": False, "key": self.key, "sw_at": at,
               "sure": sure}
        if not sure:
            self.stats["sent_unsure"] += 1
        flags, _, _, _, cs, co, _ = VNET.unpack(hdr)
        if flags & NEEDS_CSUM and len(f) >= MBUF_DATA and \
                (cs + co) & 0xFFFF == MBUF_DATA - 1 and cs < len(f) and \
                feats & HOST_OFFL:
            # librte_vhost's software checksum (if it makes one) stores a
            # byte past the first mbuf's buffer.
            self.stats["sent_oob_store"] += 1
        self.recs[self.key] = rec
        self.stats["sent"] += 1
        self.stats["sent_" + verdict] += 1
        if strict:
            self.stats["sent_clean"] += 1
        return rec

    def lookup(self, f):
        pt = dpdk_ptype(f)
        if pt is None:
            return None
        l2 = pt[0]
        et = be16(f, l2 - 2)
        if et == 0x0800 and len(f) >= l2 + 16:
            key = struct.unpack_from(">I", f, l2 + 12)[0]
        elif et == 0x86DD and len(f) >= l2 + 24:
            key = struct.unpack_from(">I", f, l2 + 20)[0]
        else:
            return None
        rec = self.recs.get(key)
        # The same L2 header and L4 ports (or first bytes) as what h sent:
        # not a frame whose source address a checksum write changed.
        if rec is None:
            return None
        sf, sp = rec["frame"], rec["spec"]
        n, a = sp.get("l2", 14), sp.get("l4_at", 0)
        if f[:n] != sf[:n] or f[a:a + 4] != sf[a:a + 4]:
            self.stats["key_mismatch"] += 1
            return None
        return rec

    def take(self):
        v, self.violations = self.violations, []
        return v

    def bad(self, kind, port, what, hdr, f, rec):
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        if kind in self.ignore:
            return
        if len(self.violations) >= self.MAX_KEPT:
            self.violations.append(None)
            return
        v = {"kind": kind, "port": port, "what": what,
             "got_vnet_hdr": bytes(hdr).hex(), "got": hexcut(f, 4096),
             "got_len": len(f)}
        if rec is not None:
            v.update({"sent_vnet_hdr": rec["hdr"].hex(),
                      "sent": rec["frame"].hex(),
                      "sent_len": len(rec["frame"]),
                      "sent_spec": rec["spec"], "h_features": rec["feats"],
                      "predicted": rec["verdict"], "to": rec["dst"],
                      "clean": rec["strict"]})
        self.violations.append(v)

    # --- checks
    def check(self, port, hdr, f):
        """Frame F (virtio-net header HDR) that PORT (a or b) got from h."""
        self.stats["got_" + port] += 1
        flags, gso, hl, gsz, cs, co, _ = VNET.unpack(hdr)
        caps = self.caps[port]
        rec = self.lookup(f)

        def bad(kind, what):
            self.bad(kind, port, what, hdr, f, rec)

        if (flags or gso or gsz or cs or co or hl) and "csum" not in caps:
            bad("hdr-to-no-offload", "virtio-net header %s to a guest "
                "without GUEST_CSUM" % hdr.hex())
            return
        if flags & ~NEEDS_CSUM:
            bad("hdr-flags", "flags %#x" % flags)
        tagged = 4 if f[12:14] in (b"\x81\x00", b"\x88\xa8") else 0
        if gso:
            self.stats["got_gso_" + port] += 1
            if rec and rec["strict"] and \
                    isinstance(strict_parse(rec["seen"]), str):
                pass    # against() says what is wrong
            elif not self.gso_ok(f, gso, hl, gsz, flags, cs, co, caps, bad,
                                 rec):
                return
        else:
            if len(f) > MAX_FRAME + tagged:
                bad("too-long", "%d bytes without GSO (MTU 1500)" % len(f))
                return
            if flags & NEEDS_CSUM:
                self.stats["got_partial_" + port] += 1
                p = strict_parse(f)
                if isinstance(p, str):
                    if not (rec and rec["strict"] and
                            isinstance(strict_parse(rec["seen"]), str)):
                        bad("partial-malformed:" + self.cause(p, rec),
                            "NEEDS_CSUM on a frame that is not well formed: "
                            + p)
                        return
                elif cs != p["l2"] + p["l3"] or \
                        co != (16 if p["tcp"] else 6):
                    bad(self.where_kind("partial-where", p, cs),
                        "csum_start %d csum_offset %d, "
                        "the %s checksum is at %d + %d" % (
                            cs, co, "TCP" if p["tcp"] else "UDP",
                            p["l2"] + p["l3"], 16 if p["tcp"] else 6))
                    return
                elif not self.completes(f, p, cs, co):
                    bad("partial-seed", "the checksum completed from "
                        "csum_start %d (seed %04x) is not valid%s" % (
                            cs, be16(f, cs + co), self.ext_note(p)))
        if rec is None:
            return
        self.stats["got_matched_" + port] += 1
        if not rec["strict"]:
            return
        self.against(port, rec, f, flags, gso, bad)

    @staticmethod
    def where_kind(kind, p, cs):
        """KIND, or l3_len-9bit if csum_start is what m->l3_len (9 bits)
        makes of P's L3 header length."""
        if p["l3"] > 511 and cs == p["l2"] + (p["l3"] & 0x1FF):
            return "l3_len-9bit"
        return kind

    @staticmethod
    def ext_note(p):
        if p["v6"] and p["l3"] > 40:
            return " (IPv6 with %d bytes of extension headers)" % (
                p["l3"] - 40)
        return ""

    @staticmethod
    def completes(f, p, cs, co):
        """The checksum a guest completes from F's partial one (virtio:
        the sum from csum_start on, here to the IP datagram's end, stored
        at csum_start + csum_offset) is valid."""
        g = bytearray(f)
        c = ~ones(g[cs:p["ip_end"]]) & 0xFFFF
        g[cs + co:cs + co + 2] = struct.pack(">H", c)
        return l4_valid(g, p)

    @staticmethod
    def cause(p, rec):
        """What is wrong with a frame h sent, for a frame that arrived not
        well formed (P says why): the input's fault, if it is known (REC)
        and malformed, else l3_len-9bit if its L3 headers were longer than
        m->l3_len holds (what librte_vhost then writes lands in them), else
        P's code."""
        if rec is not None:
            sp = strict_parse(rec["seen"])
            if isinstance(sp, str):
                return sp.split(":")[0]
            if sp["l3"] > 511:
                return "l3_len-9bit"
        return p.split(":")[0]

    def gso_ok(self, f, gso, hl, gsz, flags, cs, co, caps, bad, rec):
        want = {GSO_TCPV4: "tso4", GSO_TCPV6: "tso6"}.get(gso)
        if want is None:
            bad("gso-type", "gso_type %#x" % gso)
            return False
        if want not in caps:
            bad("gso-not-negotiated", "gso_type %#x to a guest without "
                "GUEST_%s" % (gso, want.upper()))
            return False
        p = strict_parse(f)
        if isinstance(p, str):
            bad("gso-malformed:" + self.cause(p, rec), "a super-frame that "
                "is not well formed: " + p)
            return False
        probs = []
        if p["v6"] != (gso == GSO_TCPV6) or not p["tcp"]:
            probs.append("gso_type %d on %s/%s" % (
                gso, "IPv6" if p["v6"] else "IPv4",
                "TCP" if p["tcp"] else "UDP"))
        if not flags & NEEDS_CSUM or cs != p["l2"] + p["l3"] or co != 16:
            probs.append("flags %d csum_start %d csum_offset %d (TCP at "
                         "%d)%s" % (flags, cs, co, p["l2"] + p["l3"],
                                    self.ext_note(p)))
        if hl != p["hdr"]:
            probs.append("hdr_len %d, headers %d bytes" % (hl, p["hdr"]))
        if gsz == 0 or len(f) - p["hdr"] <= gsz:
            probs.append("gso_size %d for %d bytes of payload" % (
                gsz, len(f) - p["hdr"]))
        if p["ip_end"] != len(f):
            probs.append("IP datagram ends at %d of %d" % (p["ip_end"],
                                                            len(f)))
        if p["hdr"] + gsz > MAX_FRAME + (4 if p["l2"] > 14 else 0):
            probs.append("segments of %d bytes > MTU" % (p["hdr"] + gsz))
        if probs:
            bad(self.where_kind("gso-hdr", p, cs), "; ".join(probs))
            return False
        return True

    def against(self, port, rec, f, flags, gso, bad):
        """F from clean-round frame REC: what the rules predict."""
        v, seen = rec["verdict"], rec["seen"]
        at = rec["sw_at"]
        mask = set() if at is None else {at, at + 1}
        if v in ("plain", "runt"):
            if v == "runt" or len(f) != len(seen) or (f != seen and any(
                    f[i] != seen[i] and i not in mask
                    for i in range(len(f)))):
                bad("plain-changed", "a frame vhostd had to pass as it was "
                    "(%s) arrived changed" % v)
            return
        if v == "bad":
            bad("bad-delivered", "vhostd should have refused it "
                "(drop_bad_offload), it arrived")
            return
        sp = strict_parse(seen)
        if isinstance(sp, str):
            # vhostd took a malformed frame for a partial checksum or a
            # super-frame: "not parseable" is drop_bad_offload.
            bad("accepted:" + sp.split(":")[0], "vhostd took h's malformed "
                "frame (%s) as %s and sent it on (%d bytes%s)" % (
                    sp, v, len(f), ", a segment" if len(f) != len(seen)
                    else ""))
            return
        p = strict_parse(f)
        if isinstance(p, str):
            bad("malformed:" + p.split(":")[0], "vhostd sent on a frame "
                "that is not well formed (%s, %d bytes): %s" % (
                    v, len(f), p))
            return
        seg = v == "tso" and not gso
        if not p["v6"] and not ip_valid(f, p) and (
                seg or (not isinstance(sp, str) and ip_valid(seen, sp))):
            bad("ip-csum", "IPv4 header checksum not valid")
        if not flags & NEEDS_CSUM and not l4_valid(f, p):
            kind, note = "l4-csum", ""
            if seg and not isinstance(sp, str):
                # Its payload from where in the super-frame's mbufs?
                s4 = sp["l2"] + sp["l3"]
                start = sp["hdr"] + ((struct.unpack_from(">I", f, s4 + 4)[0]
                                      - struct.unpack_from(">I", seen,
                                                           s4 + 4)[0])
                                     & 0xFFFFFFFF)
                end = start + p["ip_end"] - p["hdr"]
                b = (start // MBUF_DATA + 1) * MBUF_DATA
                if b < end and (b - start) & 1:
                    kind = "l4-csum:gso-odd-split"
                    note = ", its payload %d..%d across the super-frame's " \
                        "mbuf boundary at %d, %d bytes before it (odd)" % (
                            start, end, b, b - start)
            bad(kind, "%s checksum not valid (%s%s%s)" % (
                "TCP" if p["tcp"] else "UDP",
                "a segment" if seg else "completed by vhostd",
                self.ext_note(p), note))
        if not seg:
            self.stats["got_whole_" + port] += 1
            if len(f) != len(seen):
                bad("length", "%d bytes, sent %d" % (len(f), len(seen)))
                return
            at = csum_at(p)
            diff = [i for i in range(len(f)) if f[i] != seen[i] and
                    not at <= i < at + 2 and i not in mask] \
                if f != seen else []
            if diff:
                big = not isinstance(sp, str) and sp["l3"] > 511
                bad("l3_len-9bit:content" if big else "content",
                    "%d bytes changed, first at %d (checksum at %d)%s" % (
                        len(diff), diff[0], at, self.ext_note(p)))
            return
        self.stats["got_segment_" + port] += 1
        if isinstance(sp, str):
            return      # malformed input, and that was checked above
        self.segment(rec, sp, p, f, seen, bad, mask)

    def segment(self, rec, sp, p, f, seen, bad, mask):
        mss = VNET.unpack(rec["hdr"])[3]
        hs, hr = sp["hdr"], p["hdr"]
        if hs != hr or sp["l2"] != p["l2"] or sp["l3"] != p["l3"]:
            bad("seg-headers", "headers %d/%d/%d bytes, the super-frame's "
                "%d/%d/%d" % (p["l2"], p["l3"], p["l4"], sp["l2"], sp["l3"],
                              sp["l4"]))
            return
        pay = seen[hs:sp["ip_end"]]
        mine = f[hr:p["ip_end"]]
        s4 = sp["l2"] + sp["l3"]
        off = (struct.unpack_from(">I", f, s4 + 4)[0] -
               struct.unpack_from(">I", seen, s4 + 4)[0]) & 0xFFFFFFFF
        if off % mss or off >= len(pay) or \
                len(mine) != min(mss, len(pay) - off) or \
                any(mine[i] != pay[off + i] and hs + off + i not in mask
                    for i in range(len(mine))):
            bad("seg-payload", "segment at sequence offset %d, %d bytes: "
                "not bytes %d.. of the super-frame's %d (MSS %d)" % (
                    off, len(mine), off, len(pay), mss))
            return
        if len(f) != p["ip_end"]:
            bad("seg-length", "%d bytes after the IP datagram" % (
                len(f) - p["ip_end"]))
        fl = seen[s4 + 13]
        want = fl
        if off + len(mine) < len(pay):
            want &= ~(FIN | PSH)
        if off:
            want &= ~CWR
        got = f[s4 + 13]
        if got != want:
            kind = "seg-cwr" if (got ^ want) == CWR else "seg-flags"
            bad(kind, "TCP flags %#x, want %#x (super-frame %#x, segment "
                "%d of %d)" % (got, want, fl, off // mss,
                               -(-len(pay) // mss)))
        # The rest of the headers as the super-frame's.
        skip = {s4 + 4, s4 + 5, s4 + 6, s4 + 7, s4 + 13, s4 + 16, s4 + 17}
        l2 = sp["l2"]
        if sp["v6"]:
            skip |= {l2 + 4, l2 + 5}
        else:
            skip |= {l2 + 2, l2 + 3, l2 + 4, l2 + 5, l2 + 10, l2 + 11}
            want_id = (be16(seen, l2 + 4) + off // mss) & 0xFFFF
            if be16(f, l2 + 4) != want_id:
                bad("seg-ipid", "IPv4 id %d, want %d" % (be16(f, l2 + 4),
                                                         want_id))
        diff = [i for i in range(hs) if i not in skip and f[i] != seen[i]
                and i not in mask]
        if diff:
            bad("seg-headers", "header bytes %s differ from the "
                "super-frame's" % diff[:8])

    def counters(self, recs, before, after):
        """h's offload counters over a clean round against the rules'
        prediction for the frames vhostd took (RECS): [problems]. A frame
        whose verdict is a guess (not "sure") may count anywhere."""
        want = collections.Counter()
        unsure = 0
        for r in recs:
            if not r["sure"]:
                unsure += 1
                continue
            v = r["verdict"]
            if v in ("partial", "tso"):
                want["rx_csum_partial"] += 1
            if v == "tso":
                want["rx_tso"] += 1
            if v == "bad":
                want["drop_bad_offload"] += 1
        out = []
        for k in ("rx_csum_partial", "rx_tso", "drop_bad_offload"):
            got = after[k] - before[k]
            if not want[k] <= got <= want[k] + unsure:
                out.append("%s +%d, predicted +%d%s" % (
                    k, got, want[k], " to +%d" % (want[k] + unsure)
                    if unsure else ""))
        return out


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
    "wrap_chaos": (s_wrap_chaos, PACKED), "offload": (s_offload, SPLIT),
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
        # FUZZ_OFFLOAD_IGNORE=kind,kind: offload violations of those kinds
        # are counted, not faults (to look past a known one).
        self.offl = OffloadCheck(k for k in os.environ.get(
            "FUZZ_OFFLOAD_IGNORE", "").split(",") if k)
        self.starts = 0
        self.b_features = None
        self.offl_counters = collections.Counter()
        self.offl_ports = {}    # port -> offload counters at the start

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
        self.pick_b()
        self.pair = Pair(t, self.b_features, self.offl.check)
        self.d.wait_up("a", "b")
        self.offl.caps = {"a": set(), "b": self.pair.b.caps()}
        self.pair.hello()
        self.wait_h_down()
        self.canary("start")
        self.base_conn_mbufs = self.d.mbufs_in_use()
        self.base_fds = self.fds_settled()
        print("vhostd pid %d, offers %#x, mbufs in use %d (%d with a, b), "
              "%d fds; b negotiated %#x (offloads towards it: %s)" % (
                  self.d.proc.pid, self.offered, self.base_mbufs,
                  self.base_conn_mbufs, len(self.base_fds),
                  self.pair.b.features,
                  ", ".join(sorted(self.offl.caps["b"])) or "none"))
        self.offl_ports = {n: self.port_offl(n) for n in ("h", "a", "b")}

    def pick_b(self):
        """b's offload features: the replayed file's, else a profile
        drawn from the seed (a fresh one at every restart)."""
        self.starts += 1
        doc = self.opts.doc
        if doc and doc.get("b_features") is not None:
            self.b_features = doc["b_features"]
            return
        r = random.Random(self.opts.seed * 1000003 + self.starts)
        _, bits, _ = r.choices(B_PROFILES, [w for *_, w in B_PROFILES])[0]
        self.b_features = sum(1 << b for b in bits)

    OFFL_COUNTERS = ("rx_tso", "rx_csum_partial", "drop_bad_offload",
                     "tx_segmented", "tx_segments", "tx_sw_csum", "drop_mtu",
                     "drop_invalid")

    def port_offl(self, n):
        st = self.d.port(n)
        return {k: st.get(k, 0) for k in self.OFFL_COUNTERS}

    def keep_offl_counters(self):
        """Add the offload counters since start() to the run's totals."""
        if self.d is None or self.d.proc.poll() is not None:
            return
        try:
            for n, was in self.offl_ports.items():
                now = self.port_offl(n)
                for k in self.OFFL_COUNTERS:
                    self.offl_counters["%s.%s" % (n, k)] += now[k] - was[k]
            self.offl_ports = {}
        except Exception:  # noqa: BLE001 - statistics only
            pass

    def restart(self):
        """After a fault: a fresh vhostd and pair."""
        self.keep_offl_counters()
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
        self.offl.begin_round(rnd["round"])
        p.hello()
        before = {n: self.d.port(n) for n in ("a", "b", "h")}
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
            h.offl = self.offl
            h.offl_frames = rnd.get("offload_frames")
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
        self.offload_verdict(rnd, before["h"])

    def offload_verdict(self, rnd, h0):
        """After a round: what a and b got from h's offload lane
        (OffloadCheck), and in a clean round h's offload counters against
        the prediction. Raises Fault."""
        cfg = rnd["cfg"]
        o = cfg.get("offload")
        probs = []
        if o and o["strict"] and rnd.get("offload_settled"):
            took = [r for r in self.offl.recs.values()
                    if r["round"] == rnd["round"] and r["dequeued"]]
            h1 = self.d.port("h")
            if h1["rx_packets"] - h0["rx_packets"] != len(took):
                # librte_vhost dropped some (no mbuf): which is unknown.
                self.offl.stats["counters_unknown"] += 1
                self.offl.stats["counters_unknown_rx"] += 1
            else:
                self.offl.stats["counters_checked"] += 1
                for msg in self.offl.counters(took, h0, h1):
                    self.offl.kinds["counters"] = \
                        self.offl.kinds.get("counters", 0) + 1
                    if "counters" not in self.offl.ignore:
                        probs.append(msg)
        v = self.offl.take()
        if not v and not probs:
            return
        more = v.count(None)
        v = [x for x in v if x is not None]
        rnd["offload_violations"] = v
        frames, seen_keys = [], set()
        for x in v:
            if "sent" in x and (x["sent_vnet_hdr"], x["sent"]) not in \
                    seen_keys:
                seen_keys.add((x["sent_vnet_hdr"], x["sent"]))
                frames.append({"vnet_hdr": x["sent_vnet_hdr"],
                               "frame": x["sent"], "to": x["to"],
                               "spec": x["sent_spec"]})
        if frames and not rnd.get("offload_frames"):
            # --replay sends exactly these (in a clean round).
            rnd["offload_frames"] = frames
        if probs:
            rnd["offload_counters"] = probs
            # What h sent in the round, for the counter fault.
            rnd["offload_sent"] = [
                {"vnet_hdr": r["hdr"].hex(), "frame": hexcut(r["frame"], 256),
                 "predicted": r["verdict"], "dequeued": r["dequeued"],
                 "spec": r["spec"]} for r in self.offl.recs.values()
                if r["round"] == rnd["round"]][:200]
        first = v[0] if v else None
        raise Fault("offloads: %s%s" % (
            "; ".join(["h's counters in a clean round: " + ", ".join(probs)]
                      if probs else []) + ("; " if probs and v else ""),
            "%d frame(s) from h wrong at a/b%s; first: %s to %s: %s" % (
                len(v) + more, " (kinds %s)" % sorted({x["kind"] for x in v}),
                first["kind"], first["port"], first["what"]) if v else ""))

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
            for ln in lanes:
                if ln.name == "offload" and cfg["offload"]["strict"] and \
                        self.d.proc.poll() is None and not h.closed():
                    rnd["offload_settled"] = offload_settle(ln, p,
                                                            2.0 * SLOW)
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
               "b_features": self.b_features, "rounds": rounds,
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
    fz.keep_offl_counters()
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
    fz.keep_offl_counters()
    o, oc = fz.offl.stats, fz.offl_counters
    print("offloads: h sent %d frames (%d in clean rounds; predicted plain "
          "%d, partial %d, tso %d, refused %d; %d with librte_vhost's "
          "checksum over bytes it had not copied yet in the headers, %d "
          "with its checksum stored a byte past the first mbuf); a got %d "
          "from h (%d segments, %d whole), b got %d (%d super-frames, %d "
          "partial, %d segments); h's counters checked in %d clean rounds "
          "(%d not checkable, %d of them as librte_vhost took frames vhostd "
          "did not get); vhostd counted: h rx_csum_partial %d, rx_tso %d, "
          "drop_bad_offload %d; a tx_segmented %d (%d segments), tx_sw_csum "
          "%d, drop_mtu %d; b tx_segmented %d, tx_sw_csum %d, drop_mtu %d" % (
              o["sent"], o["sent_clean"], o["sent_plain"], o["sent_partial"],
              o["sent_tso"], o["sent_bad"], o["sent_unsure"],
              o["sent_oob_store"], o["got_a"], o["got_segment_a"],
              o["got_whole_a"], o["got_b"], o["got_gso_b"],
              o["got_partial_b"], o["got_segment_b"], o["counters_checked"],
              o["counters_unknown"], o["counters_unknown_rx"],
              oc["h.rx_csum_partial"], oc["h.rx_tso"],
              oc["h.drop_bad_offload"], oc["a.tx_segmented"],
              oc["a.tx_segments"], oc["a.tx_sw_csum"], oc["a.drop_mtu"],
              oc["b.tx_segmented"], oc["b.tx_sw_csum"], oc["b.drop_mtu"]))
    if fz.offl.kinds:
        print("offload violations by kind (ignored: %s): %s" % (
            ",".join(sorted(fz.offl.ignore)) or "none",
            ", ".join("%s %d" % kv for kv in sorted(fz.offl.kinds.items()))))
    print("%s: %d inputs in %.0f s, %d faults, seed %d" % (
        NAME, fz.inputs, elapsed, len(fz.faults), opts.seed))
    if fz.faults:
        raise Failure("%d faults: %s" % (len(fz.faults),
                                         "; ".join(fz.faults)))


if __name__ == "__main__":
    OPTS = parse()
    run(test_fuzz_guest)
