#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Soak: 1000 guest sessions connect to and disconnect from one vhost-user
port while two other guests exchange a counted stream through the same
bridge. The stream loses nothing; vhostd's open fds, RSS, rte_malloc heap
and mbufs in use are back where they were at the end.

Topology: learning bridge br0 = ports a, b (well-behaved guests, the
Python frontend of lib/vhostuser.py, for the whole test) and c (a new
session each cycle). The guests are plain Python, not testpmd: a session
takes milliseconds, so 1000 of them fit in CI.

The stream: a -> b and b -> a, unicast to each other's (learned) MAC, each
frame carrying its direction and sequence number and a size and pattern
that follow from them, so the receiver checks every frame byte for byte,
exactly once and in order. A sender keeps fewer frames in flight (sent,
not yet received) than the receiver's rx ring has buffers, so a lossless
switch never finds it full: any loss is vhostd's. It runs on a thread of
its own (the only one touching a's and b's guest memory), paced, while the
main thread cycles c.

Each cycle on c is one vhost-user session, chosen at random (seeded,
SOAK_SEED): close right after connecting; hang up mid-setup (after any
message of the setup: features, SET_MEM_TABLE, some vrings), sometimes
with frames already in a tx ring that never becomes ready; a full session
that sends a few frames (broadcast, unicast to a or b, unknown unicast)
and waits for vhostd to take them; one that leaves them in its tx ring and
hangs up at once; one that stops its rings as QEMU does at VM shutdown
(SET_VRING_ENABLE 0, GET_VRING_BASE); one that also starts them again
(a guest reboot); with 1 or 2 queue pairs (set up all, then enabled, as
testpmd's virtio-user does, or pair by pair, as QEMU does), with or
without VHOST_USER_F_PROTOCOL_FEATURES. A frame vhostd took from c must
reach exactly the guests its destination says, once; one from a session
that never got ready must reach nobody, and no other frame may reach a or
b. Every session that got ready counts one in port c's "connects".

Between sessions the test waits for vhostd to have seen the hang-up: its
fd count back at the idle count (librte_vhost closes the connection and
every fd the session passed in the one callback, on the thread that also
accepts the next connection, so the next session is never refused as a
second one). So an fd leaked by any kind of session fails the cycle that
leaked it.

SOAK_CYCLES (default 1000: about 10 s) and SOAK_RATE (stream frames a
second in each direction, default 3000) change the run; SOAK_SEED replays
one (the sessions; the stream's timing is not replayed). The long run:
SOAK_CYCLES=100000 python3 tests/test_soak.py (VHOSTD=... for another
build).
"""
import itertools
import os
import random
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
import vhostuser as vu  # noqa: E402
from vhdtest import fd_targets as vt_fd_targets, wait_stable  # noqa: E402
from vhdtest import (BCAST, VHOSTD, Failure, Vhostd, check, mac,  # noqa: E402
                     run, wait_until)

CYCLES = int(os.environ.get("SOAK_CYCLES", "1000"))
RATE = int(os.environ.get("SOAK_RATE", "3000"))
SEED = int(os.environ.get("SOAK_SEED", str(int(time.time() * 1000) %
                                           1000000)))
LCORES = os.environ.get("VHD_LCORES", "1")
# QEMU starts (sets up and enables) one queue pair after the other, so
# librte_vhost starts the device (new_device) with one queue pair and adds
# the next ones while it runs. vhostd once polled only the pairs it saw in
# new_device; sessions in QEMU's order send on every pair to keep it so.

RING = 256          # descriptors in every ring of the test's guests
WINDOW = 64         # stream frames in flight per direction, < RING
BURST = 32          # stream frames sent per direction per pump at most
C_FRAMES = 8        # frames a session on c sends at most (per start)
PRUNE_AFTER = 50    # cycles c's frames are remembered
ET_STREAM = 0x88B5
ET_C = 0x88B6
ET_HELLO = 0x88B7
MA = "02:00:00:00:00:0a"
MB = "02:00:00:00:00:0b"
UNKNOWN = "02:00:00:00:ee:ee"   # nobody sends from it: always flooded
BA, BB, BU, BBC = mac(MA), mac(MB), mac(UNKNOWN), mac(BCAST)
PAT = bytes((i * 131 + 7) & 0xFF for i in range(4096))

# RSS may grow a little without a leak (malloc arenas, pages touched once:
# see test_ctl_cycles.py); a leak of a few hundred bytes a session is more
# than this over 1000 sessions. A session's guest memory (4 MiB, mapped
# by vhostd) leaked even once is more.
RSS_MARGIN_KB = 1024
# Under AddressSanitizer freed memory waits in a quarantine: RSS is
# checked in the plain build only.
ASAN = b"libasan" in subprocess.run(["ldd", VHOSTD], stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL).stdout

# What a cycle does, and how often (weights).
KINDS = [("connect", 5), ("cut", 25), ("send", 25), ("unconsumed", 10),
         ("idle", 10), ("stop", 10), ("reboot", 15)]


def stream_frame(d, seq):
    """Frame SEQ of direction D (0: a -> b, 1: b -> a): size, payload and
    pattern follow from (D, SEQ), so the receiver rebuilds it to compare."""
    src, dst = (BA, BB) if d == 0 else (BB, BA)
    size = 60 + (seq * 37 + d * 500) % 1455
    hdr = dst + src + struct.pack("!H4sBI", ET_STREAM, b"SOAK", d, seq)
    off = (seq + d) % 251
    return hdr + PAT[off:off + size - len(hdr)]


class Stream:
    """The counted stream between guests A and B, on a thread of its own:
    the only code touching their rings once it started. Frames from c that
    reach a or b are checked against C_SENT (frame bytes -> record)."""

    def __init__(self, ga, gb, c_sent):
        self.g = {"a": ga, "b": gb}
        self.c_sent = c_sent
        self.sent = [0, 0]
        self.recv = [0, 0]
        self.from_c = {"a": 0, "b": 0}
        self.pumps = 0
        self.error = None
        self.sending = threading.Event()
        self.quit = threading.Event()
        self.tokens = [0.0, 0.0]
        self.last = time.monotonic()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def start(self):
        self.thread.start()

    def run(self):
        try:
            while not self.quit.is_set():
                self.pump()
                self.pumps += 1
                time.sleep(0.001)
        except Exception as e:  # noqa: BLE001 - reported by the main thread
            self.error = e

    def inflight(self, d):
        return self.sent[d] - self.recv[d]

    def drained(self):
        return self.sent[0] == self.recv[0] and self.sent[1] == self.recv[1]

    def check(self):
        if self.error is not None:
            raise Failure("stream: %s" % self.error)
        check(self.thread.is_alive() or self.quit.is_set(),
              "stream thread died")

    def pump(self):
        now = time.monotonic()
        dt, self.last = now - self.last, now
        for who in ("a", "b"):
            for f in self.g[who].rxq.rx():
                self.got(who, f)
        if not self.sending.is_set():
            return
        for d, src in ((0, "a"), (1, "b")):
            self.tokens[d] = min(self.tokens[d] + RATE * dt, BURST)
            n = min(int(self.tokens[d]), WINDOW - self.inflight(d))
            for _ in range(max(0, n)):
                if not self.g[src].txq.tx(stream_frame(d, self.sent[d])):
                    raise Failure("%s's tx ring full with %d frames in "
                                  "flight" % (src, self.inflight(d)))
                self.sent[d] += 1
                self.tokens[d] -= 1

    def got(self, who, f):
        et = f[12:14]
        if et == struct.pack("!H", ET_STREAM):
            d, seq = struct.unpack_from("!BI", f, 18)
            want_d = 0 if who == "b" else 1
            name = ("a->b", "b->a")[want_d]
            if d != want_d:
                raise Failure("%s got its own direction's frame %d "
                              "(%s)" % (who, seq, ("a->b", "b->a")[d % 2]))
            if seq != self.recv[d]:
                raise Failure("%s: frame %d arrived, expected %d (%s)" % (
                    name, seq, self.recv[d], "lost" if seq > self.recv[d]
                    else "duplicate or reordered"))
            want = stream_frame(d, seq)
            if f != want:
                at = next((i for i in range(min(len(f), len(want)))
                           if f[i] != want[i]), min(len(f), len(want)))
                raise Failure("%s: frame %d differs (len %d, sent %d, first "
                              "difference at byte %d)" % (
                                  name, seq, len(f), len(want), at))
            self.recv[d] += 1
            return
        rec = self.c_sent.get(f) if et == struct.pack("!H", ET_C) else None
        if rec is None:
            raise Failure("%s got a frame nobody sent: %s" % (
                who, f[:40].hex()))
        if who not in rec["to"]:
            raise Failure("%s got c's frame of cycle %d to %s" % (
                who, rec["cycle"], rec["dst"]))
        if rec["taken"] == "never":
            raise Failure("%s got c's frame of cycle %d, from a session "
                          "whose rings never got ready" % (who, rec["cycle"]))
        if who in rec["got"]:
            raise Failure("%s got c's frame of cycle %d twice" % (
                who, rec["cycle"]))
        rec["got"].append(who)
        self.from_c[who] += 1


class Session:
    """One session of the guest on c, built message by message (setup()
    yields after each), so that it can hang up anywhere. QEMU sets up
    and enables one queue pair after the other (QEMU_ORDER); testpmd's
    virtio-user sets up every vring, then enables them."""

    def __init__(self, path, qps=1, proto=True, qemu_order=False):
        self.fe = vu.Frontend(path)
        self.mem = vu.Memory(4 << 20)
        self.qps, self.proto, self.qemu_order = qps, proto, qemu_order
        self.rings = []        # (rx, tx) per queue pair
        self.published = []   # per queue pair: c frames put in its tx ring
        self.features = 0
        self.done = set()
        self.ready = False     # vhostd has started the device (new_device)
        self.ever_ready = False

    def _sent(self, what, i):
        """Note message WHAT for vring I: librte_vhost starts the device
        once the first queue pair is complete (and enabled)."""
        self.done.add((what, i))
        need = {("call", 0), ("call", 1)}
        if self.proto:
            need |= {("enable", 0), ("enable", 1)}
        self.ready = need <= self.done
        self.ever_ready = self.ever_ready or self.ready

    def _vring(self, i, restart, bases):
        if not restart and i % 2 == 0:
            self.rings.append((vu.SplitRing(self.mem, RING),
                               vu.SplitRing(self.mem, RING)))
            self.published.append([])
            self.rings[-1][0].post_rx()
        ring, fe = self.rings[i // 2][i % 2], self.fe
        fe.vring_state(vu.SET_VRING_NUM, i, RING)
        yield
        fe.vring_state(vu.SET_VRING_BASE, i, bases[i] if bases else 0)
        yield
        fe.vring_addr(i, *ring.addrs())
        yield
        fe.vring_fd(vu.SET_VRING_KICK, i, fe.new_eventfd())
        yield
        fe.vring_fd(vu.SET_VRING_CALL, i, fe.new_eventfd())
        self._sent("call", i)
        yield

    def _enable(self, i):
        if self.proto:
            self.fe.vring_state(vu.SET_VRING_ENABLE, i, 1)
            self._sent("enable", i)
            yield

    def setup(self, restart=False, bases=None):
        """The setup messages (RESTART: again, after stop(), from BASES,
        as QEMU does when the VM runs again). Yields after each."""
        fe, n = self.fe, 2 * self.qps
        self.done = set()
        if not restart:
            offered = fe.get_features()
            yield
            want = (1 << vu.F_VERSION_1) | (1 << vu.F_MRG_RXBUF)
            if self.proto:
                want |= 1 << vu.F_PROTOCOL_FEATURES
            self.features = offered & want
        fe.u64(vu.SET_FEATURES, self.features)
        yield
        if not restart:
            fe.request(vu.SET_OWNER)
            yield
            if self.proto:
                pf = fe.get_protocol_features()
                yield
                fe.u64(vu.SET_PROTOCOL_FEATURES,
                       pf & ((1 << vu.PF_REPLY_ACK) | (1 << vu.PF_MQ)))
                yield
                if self.qps > 1:
                    nq = struct.unpack("<Q", fe.request(vu.GET_QUEUE_NUM))[0]
                    check(nq >= self.qps, "vhostd offers %d queue pairs" %
                          nq)
                    yield
        fe.set_mem_table([self.mem.region()], [self.mem.fd])
        yield
        if self.qemu_order:
            for q in range(self.qps):
                for i in (2 * q, 2 * q + 1):
                    yield from self._vring(i, restart, bases)
                for i in (2 * q, 2 * q + 1):
                    yield from self._enable(i)
        else:
            for i in range(n):
                yield from self._vring(i, restart, bases)
            for i in range(n):
                yield from self._enable(i)

    def steps(self):
        """How many messages setup() sends (the first time)."""
        n = 2 * self.qps
        return (3 + (2 + (self.qps > 1) if self.proto else 0) + 1 + 5 * n +
                (n if self.proto else 0))

    def run_setup(self, **kw):
        for _ in self.setup(**kw):
            pass

    def stop(self):
        """What QEMU does at VM stop: disable the vrings, then
        GET_VRING_BASE each. The bases returned."""
        n = 2 * self.qps
        if self.proto:
            for i in range(n):
                self.fe.vring_state(vu.SET_VRING_ENABLE, i, 0)
        self.ready = False
        return [self.fe.get_vring_base(i) for i in range(n)]

    def close(self):
        self.fe.close()
        self.mem.close()


class Soak:
    """The test's state: vhostd, the stream, what c sent."""

    def __init__(self, t, d, stream, c_sent):
        self.t, self.d, self.stream, self.c_sent = t, d, stream, c_sent
        self.path = t.path("c.sock")
        self.pid = d.proc.pid
        self.rng = random.Random(SEED)
        self.kinds = [k for k, w in KINDS for _ in range(w)]
        self.idle_fds = None
        self.by_cycle = {}    # cycle -> its frames in c_sent
        self.idle_targets = {}
        self.reset()

    def reset(self):
        """Count from now on (after the warm-up)."""
        self.ups = 0          # sessions that must have made c "up"
        self.c_frames = 0     # frames c put in its tx rings
        self.c_taken = 0      # ... of which vhostd took
        self.count = {k: 0 for k, _ in KINDS}
        self.mq = 0
        self.qemu_mq = 0
        self.legacy = 0
        self.base_from_c = dict(self.stream.from_c)

    def fds(self):
        return len(os.listdir("/proc/%d/fd" % self.pid))

    def fd_targets(self):
        return vt_fd_targets(self.pid)

    def settle_fds(self):
        """The fd count once stable."""
        return wait_stable(self.fds, "vhostd's fds to settle", interval=0.2)

    def set_idle(self):
        """Take vhostd's fds now (c idle) as those of an idle c."""
        self.settle_fds()
        self.idle_targets = self.fd_targets()
        self.idle_fds = len(self.idle_targets)

    def wait_idle_fds(self, what):
        try:
            wait_until(lambda: self.fds() == self.idle_fds, 20, what,
                       interval=0.001)
        except Failure:
            raise Failure(self.fd_diff(what)) from None

    def fd_diff(self, what):
        now, base = self.fd_targets(), self.idle_targets
        return "%s: vhostd has %d fds, %d when c is idle; new: %s; gone: %s" \
            % (what, len(now), self.idle_fds,
               {k: v for k, v in now.items() if base.get(k) != v},
               {k: v for k, v in base.items() if now.get(k) != v})

    def c_frame(self, i, k, dst, size):
        src = mac("02:00:00:00:0c:%02x" % (i % 16))
        hdr = dst + src + struct.pack("!H3siH", ET_C, b"CYC", i, k)
        off = (i * 8 + k) % 251
        return hdr + PAT[off:off + size - len(hdr)]

    def put_frames(self, s, i, tag, n):
        """Put N frames of c's in S's tx rings (spread over its queue
        pairs), recorded in c_sent before vhostd can see them."""
        qps = len(s.rings)
        for k in range(n):
            q = self.rng.randrange(qps)
            dst, to = self.rng.choice([(BBC, ("a", "b")), (BU, ("a", "b")),
                                       (BA, ("a",)), (BB, ("b",))])
            f = self.c_frame(i, tag * 100 + k, dst,
                             self.rng.choice([60, 64, 128, 1000, 1514,
                                              self.rng.randrange(60, 1515)]))
            self.c_sent[f] = {"cycle": i, "to": to, "dst": dst.hex(":"),
                              "got": [], "taken": None}
            self.by_cycle.setdefault(i, []).append(f)
            check(s.rings[q][1].tx(f), "c's tx ring full")
            s.published[q].append(f)
            self.c_frames += 1

    def taken(self, s):
        """Mark the frames vhostd has taken from S's tx rings (each ring's
        used index counts them: the ring is in order here)."""
        done = True
        for (_, tx), pub in zip(s.rings, s.published):
            tx.reap()
            used = len(pub) - len(tx.in_flight)
            for f in pub[:used]:
                if self.c_sent[f]["taken"] is None:
                    self.c_sent[f]["taken"] = True
                    self.c_taken += 1
            done = done and used == len(pub)
        return done

    def forget(self, i):
        """Drop the frames of cycle I - PRUNE_AFTER from c_sent, so that a
        long run does not keep them all. By then every frame vhostd took
        has long been delivered; one arriving after that is "a frame
        nobody sent", still a failure."""
        for f in self.by_cycle.pop(i - PRUNE_AFTER, []):
            r = self.c_sent.pop(f)
            if r["taken"] is True and set(r["got"]) != set(r["to"]):
                raise Failure("vhostd took c's frame of cycle %d to %s but "
                              "delivered it to %s only, %d cycles later" % (
                                  r["cycle"], r["dst"], r["got"] or "nobody",
                                  PRUNE_AFTER))

    def wait_taken(self, s, what):
        """Wait until vhostd took every frame in S's tx rings."""
        try:
            wait_until(lambda: self.taken(s), 20, "vhostd to take c's frames",
                       interval=0.001)
        except Failure:
            left = ["%d of %d in tx vring %d" % (len(tx.in_flight), len(pub),
                                                 2 * q + 1)
                    for q, ((_, tx), pub) in enumerate(zip(s.rings,
                                                           s.published))
                    if tx.in_flight]
            raise Failure("%s: vhostd did not take c's frames within 20 s "
                          "(%s; %d queue pairs, %s; port c: %s)" % (
                              what, ", ".join(left), s.qps,
                              "set up in QEMU's order" if s.qemu_order
                              else "all set up, then enabled",
                              self.d.port("c"))) from None

    def untaken(self, s):
        """The frames still in S's tx rings at hang-up: vhostd may or may
        not take them (it is racing the hang-up); if the rings never got
        ready (NEVER), it must not."""
        for _, pub in zip(s.rings, s.published):
            for f in pub:
                if self.c_sent[f]["taken"] is None:
                    self.c_sent[f]["taken"] = False if s.ever_ready \
                        else "never"

    def cycle(self, i):
        kind = self.rng.choice(self.kinds)
        self.count[kind] += 1
        if kind == "connect":
            fe = vu.Frontend(self.path)
            # Accepted (the connection's fd is vhostd's) before the
            # hang-up, else the next connect could overtake it.
            wait_until(lambda: self.fds() == self.idle_fds + 1, 20,
                       "cycle %d: vhostd to accept" % i, interval=0.001)
            fe.close()
            return kind
        mq = self.rng.random() < 0.3
        legacy = not mq and self.rng.random() < 0.2
        qemu = mq and self.rng.random() < 0.5
        self.mq += mq
        self.qemu_mq += qemu
        self.legacy += legacy
        s = Session(self.path, qps=2 if mq else 1, proto=not legacy,
                    qemu_order=qemu)
        try:
            if kind == "cut":
                steps = s.steps()
                cut = self.rng.randrange(1, steps)
                for _ in itertools.islice(s.setup(), cut):
                    pass
                # (Started if the cut is after the first queue pair.)
                self.ups += s.ever_ready
                if s.rings and self.rng.random() < 0.5:
                    self.put_frames(s, i, 0, self.rng.randint(1, C_FRAMES))
                return "%s@%d/%d" % (kind, cut, steps)
            s.run_setup()
            self.ups += 1
            if kind == "idle":
                return kind
            self.put_frames(s, i, 0, self.rng.randint(1, C_FRAMES))
            if kind == "unconsumed":
                self.taken(s)
                return kind
            self.wait_taken(s, "cycle %d" % i)
            if kind in ("stop", "reboot"):
                bases = s.stop()
                for q, pub in enumerate(s.published):
                    check(bases[2 * q + 1] == len(pub),
                          "cycle %d: GET_VRING_BASE of tx vring %d is %d, "
                          "%d frames were taken" % (i, 2 * q + 1,
                                                    bases[2 * q + 1],
                                                    len(pub)))
                if kind == "reboot":
                    s.run_setup(restart=True, bases=bases)
                    self.ups += 1
                    self.put_frames(s, i, 1, self.rng.randint(1, C_FRAMES))
                    self.wait_taken(s, "cycle %d, after the restart" % i)
            return kind
        finally:
            self.taken(s)
            self.untaken(s)
            s.close()


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise KeyError("VmRSS")


def heap(d):
    h = d.query("/eal/heap_info,0")
    return h["Alloc_count"], h["Alloc_size"]


def test_soak(t):
    print("soak: %d cycles, seed %d (SOAK_SEED=%d replays), stream %d "
          "frames/s each way%s" % (CYCLES, SEED, SEED, RATE,
                                   ", ASan build" if ASAN else ""),
          flush=True)
    d = Vhostd(t, {"br0": {"mode": "learning"}},
               {n: {"type": "vhost-user", "path": t.path("%s.sock" % n),
                    "bridge": "br0"} for n in ("a", "b", "c")},
               lcores=LCORES).start()
    start_mbufs = d.mbufs_in_use()
    ga, gb = vu.Guest(t.path("a.sock"), num=RING), \
        vu.Guest(t.path("b.sock"), num=RING)
    d.wait_up("a", "b")

    # Learn both MACs: a hello from each, seen by the other.
    for g, other, m in ((ga, gb, BA), (gb, ga, BB)):
        hello = BBC + m + struct.pack("!H", ET_HELLO) + bytes(46)
        check(g.txq.tx(hello), "tx ring full")
        got = []
        wait_until(lambda: got.extend(other.rxq.rx()) or hello in got, 20,
                   "the hello from %s" % m.hex(":"))
        check(got == [hello], "hello: got %s" % got)
    wait_until(lambda: d.fdb("br0") == {MA: "a", MB: "b"}, 10,
               "a's and b's MACs learned")

    c_sent = {}
    stream = Stream(ga, gb, c_sent)
    soak = Soak(t, d, stream, c_sent)
    stream.sending.set()
    stream.start()
    try:
        soak_run(d, soak, stream, c_sent, start_mbufs)
    finally:
        stream.quit.set()
        stream.thread.join(10)
    ga.close()
    gb.close()
    check(d.proc.poll() is None, "vhostd died")
    d.stop_clean(start_mbufs)


def soak_run(d, soak, stream, c_sent, start_mbufs):
    # Warm-up: the stream a while and a few sessions of every kind
    # (one-time allocations of librte_vhost, malloc arenas, the telemetry
    # and vhost-events threads' stacks).
    soak.set_idle()
    for i in range(-int(os.environ.get("SOAK_WARMUP", "60")), 0):
        soak.cycle(i)
        soak.wait_idle_fds("warm-up cycle %d" % i)
        stream.check()

    def pause(what):
        """Stop sending, wait until every frame in flight arrived."""
        stream.sending.clear()
        try:
            wait_until(lambda: stream.check() or stream.drained(), 60,
                       "%s: the stream to drain" % what)
        except Failure:
            stream.check()
            raise Failure("%s: a->b %d/%d, b->a %d/%d: frames lost" % (
                what, stream.recv[0], stream.sent[0], stream.recv[1],
                stream.sent[1]))

    def c_delivered():
        return all(set(r["got"]) == set(r["to"]) for r in c_sent.values()
                   if r["taken"] is True)

    pause("baseline")
    wait_until(c_delivered, 20, "c's frames of the warm-up delivered")
    soak.reset()
    base_connects = d.port("c")["connects"]
    base_mbufs = d.mbufs_in_use()
    check(base_mbufs == start_mbufs, "mbufs in use %d with a and b idle, "
          "%d at start" % (base_mbufs, start_mbufs))
    # Stable: the lcores' poll lists (rte_malloc) follow the guests'
    # queues a control loop pass after c comes or goes.
    base_heap = wait_stable(lambda: heap(d), "vhostd's heap to settle")
    soak.set_idle()
    base_rss = rss_kb(soak.pid)
    base_sent = list(stream.sent)
    stream.sending.set()
    print("baseline: fds %d, RSS %d kB, mbufs in use %d, heap %d allocs "
          "(%d bytes); stream so far a->b %d b->a %d" % (
              soak.idle_fds, base_rss, base_mbufs, base_heap[0],
              base_heap[1], base_sent[0], base_sent[1]), flush=True)

    t0 = time.monotonic()
    for i in range(CYCLES):
        stream.check()
        # The stream thread reaps a's and b's rx rings between two
        # sessions: c's frames and the stream's then never fill them.
        p = stream.pumps
        wait_until(lambda: stream.check() or stream.pumps > p, 20,
                   "the stream thread to run", interval=0.001)
        kind = soak.cycle(i)
        soak.wait_idle_fds("cycle %d (%s)" % (i, kind))
        soak.forget(i)
        if (i + 1) % 100 == 0 or i + 1 == CYCLES:
            # (The telemetry query's fd is gone again before the next
            # cycle: wait_idle_fds below.)
            nfds, rss = soak.fds(), rss_kb(soak.pid)
            print("cycle %d: %.1fs, stream a->b %d/%d b->a %d/%d, c sent "
                  "%d (vhostd took %d), a got %d and b %d of them, c up "
                  "%d times, fds %d, RSS %d kB" % (
                      i + 1, time.monotonic() - t0, stream.recv[0],
                      stream.sent[0], stream.recv[1], stream.sent[1],
                      soak.c_frames, soak.c_taken,
                      stream.from_c["a"] - soak.base_from_c["a"],
                      stream.from_c["b"] - soak.base_from_c["b"],
                      d.port("c")["connects"] -
                      base_connects, nfds, rss),
                  flush=True)
            soak.wait_idle_fds("after the telemetry query of cycle %d" % i)
    dt = time.monotonic() - t0

    pause("end")
    wait_until(lambda: stream.check() or c_delivered(), 20,
               "every frame vhostd took from c delivered")
    stream.quit.set()
    stream.thread.join(10)
    stream.check()
    check(not stream.thread.is_alive(), "the stream thread does not stop")
    kinds = ", ".join("%s %d" % kv for kv in soak.count.items())
    print("sessions: %s; %d with 2 queue pairs (%d set up in QEMU's "
          "order), %d without protocol features" % (
              kinds, soak.mq, soak.qemu_mq, soak.legacy), flush=True)

    bad = [r for r in c_sent.values() if r["taken"] == "never" and r["got"]]
    check(not bad, "frames of a session whose rings never got ready were "
          "delivered: %s" % bad[:3])
    bad = [r for r in c_sent.values() if len(r["got"]) > len(r["to"])]
    check(not bad, "c's frames delivered more than once: %s" % bad[:3])
    connects = d.port("c")["connects"] - base_connects
    check(connects == soak.ups, "c came up %d times, %d sessions got "
          "ready" % (connects, soak.ups))
    for n in ("a", "b"):
        st = d.port(n)
        drops = {k: v for k, v in st.items() if k.startswith("drop_") and v}
        check(not drops, "port %s dropped: %s" % (n, drops))
    check(d.port("c")["state"] == "down", "c still up")

    try:
        wait_until(lambda: d.mbufs_in_use() == base_mbufs, 20,
                   "mbufs in use back at %d" % base_mbufs)
    except Failure:
        pass    # reported below, after the summary
    mbufs = d.mbufs_in_use()
    fds = soak.settle_fds()
    rss = rss_kb(soak.pid)
    hp = wait_stable(lambda: heap(d), "vhostd's heap to settle")
    n0 = stream.sent[0] - base_sent[0]
    n1 = stream.sent[1] - base_sent[1]
    print("soak: %d cycles in %.1f s, stream a->b %d/%d b->a %d/%d, fds "
          "%d->%d, RSS %d->%d kB, mbufs %d->%d" % (
              CYCLES, dt, stream.recv[0] - base_sent[0], n0,
              stream.recv[1] - base_sent[1], n1, soak.idle_fds, fds,
              base_rss, rss, base_mbufs, mbufs), flush=True)
    check(stream.recv == stream.sent, "stream lost frames")
    check(mbufs == base_mbufs, "mbufs in use %d, %d before" % (mbufs,
                                                              base_mbufs))
    check(fds == soak.idle_fds, soak.fd_diff("at the end"))
    check(hp == base_heap, "rte_malloc heap: %d allocations (%d bytes), "
          "%d (%d) before" % (hp + base_heap))
    check(ASAN or rss <= base_rss + RSS_MARGIN_KB,
          "RSS %d kB, %d kB before (margin %d kB)" % (rss, base_rss,
                                                       RSS_MARGIN_KB))


if __name__ == "__main__":
    run(test_soak)
