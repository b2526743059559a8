#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Guests behind a vIOMMU (iommu-support = yes), played by Python
frontends, on one bridge and one datapath lcore with two ordinary guests.

- A well-behaved IOMMU guest (i) exchanges frames of every size with an
  ordinary one (a), byte for byte, while vhostd learns every translation
  from IOTLB misses that i answers a page at a time; after i invalidates
  its whole IOTLB, traffic goes on through fresh misses.
- A hostile IOMMU guest (h) never reads its backend channel and rewrites a
  descriptor's address as fast as it can, so that the lcore sends a miss
  on nearly every poll: the lcore must not block (frames a->b keep
  passing), vhostd says the channel is full, and when h goes its relay
  is gone with it.
- An IOMMU guest that closes its end of the channel: the same.
- A port without iommu-support does not offer VIRTIO_F_IOMMU_PLATFORM.
At the end vhostd's fds and mbufs are back where they were.
"""
import fcntl
import os
import random
import struct
import sys
import termios
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
import vhdtest as vt  # noqa: E402
import vhostuser as vu  # noqa: E402

MAC_A, MAC_B, MAC_I = ("02:00:00:00:00:0a", "02:00:00:00:00:0b",
                       "02:00:00:00:00:01")
seq = [0]


def pump(*guests):
    """Answer the IOMMU guests' misses; True (for wait_until's loop)."""
    for g in guests:
        g.serve_iotlb()
    return False


def exchange(src, dst, frames, serve=()):
    """FRAMES from guest SRC arrive at DST, in order, byte for byte."""
    got, sent = [], 0
    deadline = time.time() + 60
    while len(got) < len(frames):
        vt.check(time.time() < deadline, "%d of %d frames arrived" %
                 (len(got), len(frames)))
        # No more in flight than DST has buffers: vhostd drops what a
        # guest has no room for.
        while (sent < len(frames) and sent - len(got) < dst.rxq.num // 2
               and src.txq.tx_chain(frames[sent])):
            sent += 1
        pump(*serve)
        got += dst.rxq.rx()
        time.sleep(0.001)
    vt.check(got == frames, "frames differ: first at %d" % next(
        (k for k, (x, y) in enumerate(zip(got, frames)) if x != y), -1))


def canary(d, ga, gb):
    """Eight unique frames a->b arrive byte for byte."""
    frames = []
    for _ in range(8):
        seq[0] += 1
        frames.append(vt.frame(MAC_B, MAC_A, payload=b"canary %d" % seq[0]))
    exchange(ga, gb, frames)
    vt.check(d.proc.poll() is None, "vhostd exited")


def sizes_frames(dst, src, n, tag):
    out = []
    for k in range(n):
        size = random.choice((60, 64, 128, 600, 1000, 1500, 1514))
        body = (b"%s %d " % (tag, k)) * 400
        out.append(vt.frame(dst, src, payload=body[:size - 14], size=size))
    return out


def case_well_behaved(t, d, ga, gb):
    gi = vu.Guest(t.path("i.sock"), iommu=True)
    vt.check(gi.features & (1 << vu.F_IOMMU_PLATFORM),
             "IOMMU_PLATFORM not negotiated on i: %#x" % gi.features)
    vt.wait_until(lambda: pump(gi) or d.port("i")["state"] == "up", 20,
                  "i up")
    show = d.ctl("port/show", "i")
    vt.check(show["iommu_support"] is True and
             "VIRTIO_F_ACCESS_PLATFORM" in show["features"],
             "port show i: %s" % show)
    # i and a learn each other (i's transmit side: a miss only delays).
    hello = vt.frame("ff:ff:ff:ff:ff:ff", MAC_I)
    exchange(gi, ga, [hello], [gi])
    exchange(gi, gb, [], [gi])  # the flood reached b too
    vt.wait_until(lambda: gb.rxq.rx() == [hello], 10, "i's hello at b")
    for rnd in range(2):
        # A frame for a receive buffer vhostd has no translation for is
        # lost (as with QEMU: librte_vhost asks and drops it), so first
        # each of i's buffers takes a frame: a->i until i's ring is full.
        m0 = gi.misses
        used0, n = gi.rxq.used_idx(), 0
        while (gi.rxq.used_idx() - used0) & 0xFFFF < gi.rxq.num:
            vt.check(n < 40 * gi.rxq.num, "a->i: %d of %d warm-up frames "
                     "arrived" % ((gi.rxq.used_idx() - used0) & 0xFFFF, n))
            ga.txq.tx(vt.frame(MAC_I, MAC_A, payload=b"warm-up"))
            n += 1
            time.sleep(0.0005)
            pump(gi)
        gi.rxq.rx()
        warm = gi.rxq.num
        p0 = d.port("i")
        exchange(ga, gi, sizes_frames(MAC_I, MAC_A, 300, b"a%d" % rnd), [gi])
        exchange(gi, ga, sizes_frames(MAC_A, MAC_I, 300, b"i%d" % rnd), [gi])
        p1 = d.port("i")
        print("round %d: %d IOTLB misses answered, %d warm-up frames sent "
              "for %d" % (rnd, gi.misses - m0, n, warm))
        vt.check(gi.misses > m0, "no IOTLB miss in round %d" % rnd)
        drops = {k: p1[k] - p0[k] for k in p1
                 if k.startswith("drop") and p1[k] != p0[k]}
        vt.check(not drops, "drops on i: %s" % drops)
        # Forget every translation: the next round needs misses again.
        gi.iotlb(vu.IOTLB_INVALIDATE, 0, gi.mem.size)
    gi.close()


def case_never_reads(t, d, ga, gb):
    gh = vu.Guest(t.path("h.sock"), iommu=True)
    vt.wait_until(lambda: pump(gh) or d.port("h")["state"] == "up", 20,
                  "h up")
    # Rings translated (their misses answered); from now on h never reads
    # its channel. One descriptor goes out, and its address keeps changing
    # to pages h never maps: a new miss for nearly every poll.
    t_end = time.time() + 0.5
    vt.wait_until(lambda: pump(gh) or time.time() > t_end, 5, "settle")
    vt.check(gh.txq.tx(vt.frame(MAC_A, "02:00:00:00:00:0c")), "h's tx")
    stop = threading.Event()
    head = next(iter(gh.txq.in_flight))
    rewrites = [0]

    def rewrite():
        r = random.Random(1)
        while not stop.is_set():
            for _ in range(1000):
                vu.store64(gh.mem.map, gh.txq.desc + 16 * head,
                           gh.mem.size + 4096 * r.randrange(1 << 24))
            rewrites[0] += 1000

    th = threading.Thread(target=rewrite)
    th.start()
    try:
        # h's end fills up (a second without a byte more), and the lcore
        # that serves a and b goes on.
        queued = vt.wait_stable(
            lambda: struct.unpack("i", fcntl.ioctl(
                gh.chan, termios.FIONREAD, b"\0" * 4))[0],
            "h's backend channel to fill", timeout=60, interval=1.0)
        print("h's channel: %d bytes of misses unread" % queued)
        vt.check(queued > 0, "no IOTLB miss reached h")
        for _ in range(3):
            canary(d, ga, gb)
        vt.wait_until(lambda: "backend channel is full" in d.log(), 10,
                      "vhostd to drop misses on h's full channel")
    finally:
        stop.set()
        th.join()
    print("h: %d descriptor rewrites" % rewrites[0])
    gh.close()
    vt.wait_until(lambda: d.port("h")["state"] != "up", 10, "h down")
    vt.wait_until(lambda: "IOTLB miss message(s) dropped" in d.log(), 10,
                  "vhostd to count the dropped misses when h went")
    canary(d, ga, gb)


def case_channel_closed(t, d, ga, gb):
    gh = vu.Guest(t.path("h.sock"), iommu=True)
    # Rings translated first (their misses were sent while the channel
    # was open, and stay pending until answered): then the frame's buffer
    # is a new miss, on a channel that is gone.
    vt.wait_until(lambda: pump(gh) or d.port("h")["state"] == "up", 20,
                  "h up")
    gh.chan.close()
    gh.chan = None
    vt.check(gh.txq.tx(vt.frame(MAC_A, "02:00:00:00:00:0c")), "h's tx")
    vt.wait_until(
        lambda: "cannot send on the frontend's backend channel" in d.log(),
        20, "vhostd to notice h's channel is gone")
    canary(d, ga, gb)
    gh.close()
    vt.wait_until(lambda: d.port("h")["state"] != "up", 10, "h down")


def case_not_offered(t, d):
    g = vu.Guest(t.path("a2.sock"), iommu=True)
    vt.check(not g.features & (1 << vu.F_IOMMU_PLATFORM),
             "IOMMU_PLATFORM offered without iommu-support")
    g.close()


def test_vhost_iommu(t):
    ports = {n: {"type": "vhost-user", "path": t.path("%s.sock" % n),
                 "bridge": "br0"} for n in ("a", "b", "a2")}
    for n in ("i", "h"):
        ports[n] = {"type": "vhost-user", "path": t.path("%s.sock" % n),
                    "bridge": "br0", "iommu-support": "yes"}
    d = vt.Vhostd(t, {"br0": {}}, ports).start()
    ga = vu.Guest(t.path("a.sock"))
    gb = vu.Guest(t.path("b.sock"))
    d.wait_up("a", "b")
    exchange(ga, gb, [vt.frame("ff:ff:ff:ff:ff:ff", MAC_A)])
    exchange(gb, ga, [vt.frame(MAC_A, MAC_B)])
    canary(d, ga, gb)
    base = d.mbufs_in_use()
    pid = d.proc.pid
    fds0 = vt.fd_baseline(pid)

    case_not_offered(t, d)
    print("not offered: ok")
    case_well_behaved(t, d, ga, gb)
    print("well-behaved IOMMU guest: ok")
    case_never_reads(t, d, ga, gb)
    print("backend channel never read: ok")
    case_channel_closed(t, d, ga, gb)
    print("backend channel closed: ok")

    vt.wait_fds_back(pid, fds0)
    ga.close()
    gb.close()
    d.stop_clean(base)


if __name__ == "__main__":
    vt.run(test_vhost_iommu)
