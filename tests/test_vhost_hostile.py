#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Regression tests: each hostile vhost-user session that once crashed or
stalled vhostd, replayed exactly, on one port (h) while two well-behaved
guests (a, b) on the same bridge and lcore keep exchanging frames.

After each case: vhostd is alive, the hostile session was closed (or its
guest alone lost what it broke), a->b still passes byte for byte, and at the
end every mbuf is back and vhostd exits cleanly.
"""
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
import vhdtest as vt  # noqa: E402
import vhostuser as vu  # noqa: E402

UADDR = 0x7F0000000000
seq = [0]


def canary(d, ga, gb):
    """Eight unique frames a->b arrive byte for byte."""
    frames = []
    for _ in range(8):
        seq[0] += 1
        frames.append(vt.frame("02:00:00:00:00:0b", "02:00:00:00:00:0a",
                               payload=b"canary %d" % seq[0]))
    for f in frames:
        vt.check(ga.txq.tx(f), "a's tx ring is full")
    got = []
    vt.wait_until(lambda: got.extend(gb.rxq.rx()) or len(got) >= 8, 30,
                  "8 canary frames at b (vhostd stalled?)")
    vt.check(got == frames, "canary frames differ: %r" % got[:2])
    vt.check(d.proc.poll() is None, "vhostd exited")


def closed_by_vhostd(fe):
    """vhostd ended the session: the next request finds it closed."""
    try:
        fe.s.settimeout(5)
        fe.get_features()
    except (vu.Closed, OSError):
        return True
    return False


def hostile_prefix(fe, features=1 << vu.F_VERSION_1):
    fe.get_features()
    fe.request(vu.SET_OWNER)
    fe.u64(vu.SET_FEATURES, features)


def case_memfd_smaller_than_region(t, d):
    """The session of issue 13: a 2 MiB region backed by a 4 KiB memfd,
    rings 1 MiB into it. vhostd died of SIGBUS."""
    fe = vu.Frontend(t.path("h.sock"))
    hostile_prefix(fe)
    fd = os.memfd_create("small")
    os.ftruncate(fd, 4096)
    try:
        fe.set_mem_table([(0, 2 << 20, UADDR, 0)], [fd])
        for q in (0, 1):
            fe.vring_state(vu.SET_VRING_NUM, q, 256)
            fe.vring_state(vu.SET_VRING_BASE, q, 0)
            b = UADDR + (1 << 20)
            fe.vring_addr(q, b, b + 0x2000, b + 0x1000)
            fe.vring_fd(vu.SET_VRING_CALL, q, fe.new_eventfd())
            fe.vring_fd(vu.SET_VRING_KICK, q, fe.new_eventfd())
    except OSError:
        pass  # vhostd closed the session: the rest cannot be sent
    vt.check(closed_by_vhostd(fe), "session not closed")
    os.close(fd)
    fe.close()
    return "SET_MEM_TABLE (5): region 0: offset 0x0 + size 0x200000 is " \
        "past the end of its file (4096 bytes)"


def case_offset_past_file(t, d):
    fe = vu.Frontend(t.path("h.sock"))
    hostile_prefix(fe)
    m = vu.Memory(1 << 20)
    fe.set_mem_table([(0, 1 << 20, UADDR, 4096)], [m.fd])
    vt.check(closed_by_vhostd(fe), "session not closed")
    fe.close()
    m.close()
    return "offset 0x1000 + size 0x100000 is past the end"


def case_offset_wraps(t, d):
    fe = vu.Frontend(t.path("h.sock"))
    hostile_prefix(fe)
    m = vu.Memory(1 << 20)
    fe.set_mem_table([(0, 1 << 20, UADDR, 2**64 - 4096)], [m.fd])
    vt.check(closed_by_vhostd(fe), "session not closed")
    fe.close()
    m.close()
    return "offset + size wraps around"


def case_address_wraps(t, d):
    fe = vu.Frontend(t.path("h.sock"))
    hostile_prefix(fe)
    m = vu.Memory(1 << 20)
    fe.set_mem_table([(2**64 - 4096, 1 << 20, UADDR, 0)], [m.fd])
    vt.check(closed_by_vhostd(fe), "session not closed")
    fe.close()
    m.close()
    return "address + size wraps around"


def case_memory_not_a_file(t, d):
    """A pipe as guest memory."""
    fe = vu.Frontend(t.path("h.sock"))
    hostile_prefix(fe)
    r, w = os.pipe()
    fe.set_mem_table([(0, 1 << 20, UADDR, 0)], [r])
    vt.check(closed_by_vhostd(fe), "session not closed")
    fe.close()
    os.close(r)
    os.close(w)
    return "not a regular file"


def case_memory_read_only(t, d):
    """A read-only fd of a memfd: librte_vhost's mmap failed and 22.11
    leaked the fd (it is moved out of the message before mmap, and only
    regions that mapped are closed). Found by fuzz-vhost-user."""
    fe = vu.Frontend(t.path("h.sock"))
    hostile_prefix(fe)
    m = vu.Memory(1 << 20)
    ro = os.open("/proc/self/fd/%d" % m.fd, os.O_RDONLY)
    fe.set_mem_table([(0, 1 << 20, UADDR, 0)], [ro])
    vt.check(closed_by_vhostd(fe), "session not closed")
    fe.close()
    os.close(ro)
    m.close()
    return "cannot be mapped read-write: Permission denied"


def case_log_offset(t, d):
    """A dirty log at an offset: 22.11 maps offset + size and unmaps only
    size when the log is replaced, leaking a mapping each time."""
    fe = vu.Frontend(t.path("h.sock"))
    hostile_prefix(fe, (1 << vu.F_VERSION_1) |
                   (1 << vu.F_PROTOCOL_FEATURES))
    fe.u64(vu.SET_PROTOCOL_FEATURES, 1 << vu.PF_LOG_SHMFD)
    fd = os.memfd_create("log")
    os.ftruncate(fd, 2 << 20)
    fe.send(vu.SET_LOG_BASE, struct.pack("<QQ", 1 << 20, 4096), [fd])
    vt.check(closed_by_vhostd(fe), "session not closed")
    os.close(fd)
    fe.close()
    return "log offset is not 0"


def case_log_smaller_than_file(t, d):
    """A dirty log of 1 MiB backed by a 4 KiB memfd: the first page
    logged during migration would have been a SIGBUS."""
    fe = vu.Frontend(t.path("h.sock"))
    hostile_prefix(fe, (1 << vu.F_VERSION_1) |
                   (1 << vu.F_PROTOCOL_FEATURES))
    fe.u64(vu.SET_PROTOCOL_FEATURES, 1 << vu.PF_LOG_SHMFD)
    fd = os.memfd_create("log")
    os.ftruncate(fd, 4096)
    fe.send(vu.SET_LOG_BASE, struct.pack("<QQ", 1 << 20, 0), [fd])
    vt.check(closed_by_vhostd(fe), "session not closed")
    os.close(fd)
    fe.close()
    return "SET_LOG_BASE (6): offset 0x0 + size 0x100000 is past the end"


def case_log_not_negotiated(t, d):
    fe = vu.Frontend(t.path("h.sock"))
    hostile_prefix(fe)
    fd = os.memfd_create("log")
    os.ftruncate(fd, 1 << 20)
    fe.send(vu.SET_LOG_BASE, struct.pack("<QQ", 1 << 20, 0), [fd])
    vt.check(closed_by_vhostd(fe), "session not closed")
    os.close(fd)
    fe.close()
    return "LOG_SHMFD was not negotiated"


def case_inflight(t, d):
    fe = vu.Frontend(t.path("h.sock"))
    hostile_prefix(fe)
    fd = os.memfd_create("inflight")
    os.ftruncate(fd, 4096)
    fe.send(vu.SET_INFLIGHT_FD, struct.pack("<QQHH", 1 << 20, 0, 2, 256),
            [fd])
    vt.check(closed_by_vhostd(fe), "session not closed")
    os.close(fd)
    fe.close()
    return "SET_INFLIGHT_FD (32): not offered"


def case_small_ring(t, d):
    """A ring of 8 with the avail index 40 ahead: librte_vhost 22.11
    takes up to 32 frames a call into a shadow ring of ring-size entries
    and overflowed the heap (SIGSEGV on the lcore). Found by both
    fuzzers."""
    fe = vu.Frontend(t.path("h.sock"))
    hostile_prefix(fe)
    fe.vring_state(vu.SET_VRING_NUM, 1, 8)
    vt.check(closed_by_vhostd(fe), "session not closed")
    fe.close()
    return "SET_VRING_NUM (8): vring size 8 is below 32"


def case_features_not_offered(t, d):
    """Mergeable rx buffers and packed rings are not offered: librte_vhost
    22.11 overflows its shadow ring on the first (a guest posting tiny
    buffers with its index far ahead) and trusts the ring base and
    indirect lengths of the second."""
    fe = vu.Frontend(t.path("h.sock"))
    f = fe.get_features()
    vt.check(not f & (1 << vu.F_MRG_RXBUF | 1 << vu.F_RING_PACKED),
             "offered features %#x" % f)
    fe.close()
    return None


def case_call_fd_is_a_pipe(t, d):
    """A pipe as call fd: vhostd's lcore would block once it filled."""
    fe = vu.Frontend(t.path("h.sock"))
    hostile_prefix(fe)
    r, w = os.pipe()
    fe.send(vu.SET_VRING_CALL, struct.pack("<Q", 0), [w])
    vt.check(closed_by_vhostd(fe), "session not closed")
    fe.close()
    os.close(r)
    os.close(w)
    return "SET_VRING_CALL (13): fd is not an eventfd"


def case_kick_fd_is_a_socket(t, d):
    fe = vu.Frontend(t.path("h.sock"))
    hostile_prefix(fe)
    a, b = socket.socketpair()
    fe.send(vu.SET_VRING_KICK, struct.pack("<Q", 1), [a.fileno()])
    vt.check(closed_by_vhostd(fe), "session not closed")
    fe.close()
    a.close()
    b.close()
    return "SET_VRING_KICK (12): fd is not an eventfd"


def case_vring_index_out_of_range(t, d):
    """Messages with fds whose vring index is 256 or more (SET_VRING_NUM,
    and SET_INFLIGHT_FD for no queue): librte_vhost 22.11 refuses them
    before any callback of vhostd's and leaves their fds open, one more
    leak a reconnect; vhostd closes them when the session ends."""
    pid = d.proc.pid
    fds0 = vt.fd_baseline(pid)
    for i in range(20):
        fe = vu.Frontend(t.path("h.sock"))
        hostile_prefix(fe)
        efd = vu.eventfd()
        if i % 2:
            fe.send(vu.SET_VRING_NUM, struct.pack("<II", 256 + i, 256),
                    [efd])
        else:
            fe.send(vu.SET_INFLIGHT_FD, bytes(24), [efd])
        vt.check(closed_by_vhostd(fe), "session not closed")
        fe.close()
        os.close(efd)
        vt.wait_until(lambda: d.port("h")["state"] != "up", 10,
                      "h down after round %d" % i)
    vt.wait_fds_back(pid, fds0, what=" after 20 leaky sessions")
    return "closed 1 fds of a vhost-user message librte_vhost refused"


def case_call_eventfd_full(t, d, ga, gb):
    """A blocking call eventfd whose counter is at its maximum: the lcore's
    write to it blocked, and a->b with it. Now the guest alone goes
    without interrupts."""
    orig = vu.eventfd

    def full():
        fd = os.eventfd(0, os.EFD_CLOEXEC)
        os.eventfd_write(fd, 0xFFFFFFFFFFFFFFFE)
        return fd
    vu.eventfd = full
    try:
        g = vu.Guest(t.path("h.sock"))
    finally:
        vu.eventfd = orig
    d.wait_up("h")
    # Broadcasts reach h (its rx ring) and come from it (its tx ring):
    # both make vhostd call it.
    bc = vt.frame("ff:ff:ff:ff:ff:ff", "02:00:00:00:00:0c", payload=b"h")
    for _ in range(4):
        g.txq.tx(bc)
    got = []
    vt.wait_until(lambda: got.extend(gb.rxq.rx()) or len(got) == 4, 10,
                  "h's 4 broadcasts at b")
    ga.rxq.rx()  # and at a
    canary(d, ga, gb)
    g.close()
    return None


def case_memory_shrunk_after_mapping(t, d, ga, gb):
    """A guest truncates its memfd once vhostd mapped it: the next touch
    was a SIGBUS. Now its mapping turns into zero pages."""
    g = vu.Guest(t.path("h.sock"))
    d.wait_up("h")
    g.mem.map.close()
    os.ftruncate(g.mem.fd, 0)
    bc = vt.frame("ff:ff:ff:ff:ff:ff", "02:00:00:00:00:0a", payload=b"x")
    ga.txq.tx(bc)  # flooded to h: vhostd touches h's rx ring
    vt.wait_until(lambda: gb.rxq.rx(), 10, "a's broadcast at b")
    vt.wait_until(lambda: "shrank under vhostd" in d.log(), 10,
                  "the zeroed mapping to be reported")
    g.fe.close()
    os.close(g.mem.fd)
    return "port h: the guest's memory region (4194304 bytes) shrank"


def case_jumbo_flood(t, d, ga, gb):
    """A 4000-byte broadcast (a two-segment mbuf) flooded to two ports:
    the flood set the reference count of the first segment only, so the
    second was freed twice and the pool corrupted (other guests' frames
    lost, repeated or mangled). Found by fuzz-guest."""
    g = vu.Guest(t.path("h.sock"))
    d.wait_up("h")
    q = ga.txq
    tails = {}  # chain head -> its second descriptor, free once used

    def reap():
        for i, _ in q.reap():
            if i in tails:
                q.free.append(tails.pop(i))
    for i in range(50):
        f = vt.frame("ff:ff:ff:ff:ff:ff", "02:00:00:00:00:0a",
                     payload=b"jumbo %d" % i, size=4000)
        data = bytes(vu.VNET_HDR) + f
        reap()
        vt.wait_until(lambda: reap() or len(q.free) >= 2, 10,
                      "a's tx ring to drain")
        j, k = q.free.pop(), q.free.pop()
        q.mem.map[q.bufs[j]:q.bufs[j] + 2048] = data[:2048]
        q.mem.map[q.bufs[k]:q.bufs[k] + len(data) - 2048] = data[2048:]
        q.write_desc(j, q.bufs[j], 2048, 1, k)  # NEXT
        q.write_desc(k, q.bufs[k], len(data) - 2048)
        q.in_flight[j] = True
        tails[j] = k
        q.publish(j)
    vt.wait_until(lambda: d.port("a")["rx_packets"] >= 50, 10,
                  "vhostd to take a's 50 jumbo frames")
    vt.wait_until(lambda: reap() or not tails, 10,
                  "a's jumbo chains back")
    for _ in range(25):  # 200 frames a->b, exact, and the pool intact
        canary(d, ga, gb)
        g.rxq.rx()
    g.close()
    return None


def case_half_a_message(t, d, ga, gb):
    """A header whose payload never comes: librte_vhost's one event
    thread waited in read() for it, and no other guest could connect or
    set up its rings. Now the read times out and the session ends."""
    fe = vu.Frontend(t.path("h.sock"))
    fe.send_raw(vu.HDR.pack(vu.SET_FEATURES, vu.VERSION, 8))
    g = vu.Guest(t.path("c.sock"), timeout=20)
    vt.check(closed_by_vhostd(fe), "session not closed")
    d.wait_up("c")
    g.close()
    fe.close()
    return "vhost read message for VHOST_USER_SET_FEATURES failed"


def case_replies_never_read(t, d, ga, gb):
    """A frontend that asks and never reads the answers: once the
    socket buffers filled, the event thread blocked in sendmsg()."""
    fe = vu.Frontend(t.path("h.sock"))
    fe.s.setblocking(False)
    req = vu.HDR.pack(vu.GET_FEATURES, vu.VERSION, 0) * 256
    end = time.monotonic() + 5
    while time.monotonic() < end:
        try:
            fe.s.send(req)
        except BlockingIOError:
            break
    g = vu.Guest(t.path("c.sock"), timeout=20)
    d.wait_up("c")
    g.close()
    fe.close()
    return None


def test_vhost_hostile(t):
    d = vt.Vhostd(t, {"br0": {}}, {
        n: {"type": "vhost-user", "path": t.path("%s.sock" % n),
            "bridge": "br0"} for n in ("a", "b", "h", "c")}).start()
    ga = vu.Guest(t.path("a.sock"))
    gb = vu.Guest(t.path("b.sock"))
    d.wait_up("a", "b")
    # b learns where a is, a where b is.
    ga.txq.tx(vt.frame("ff:ff:ff:ff:ff:ff", "02:00:00:00:00:0a"))
    gb.txq.tx(vt.frame("ff:ff:ff:ff:ff:ff", "02:00:00:00:00:0b"))
    vt.wait_until(lambda: gb.rxq.rx(), 10, "a's hello at b")
    vt.wait_until(lambda: ga.rxq.rx(), 10, "b's hello at a")
    canary(d, ga, gb)
    base = d.mbufs_in_use()
    pid = d.proc.pid
    fds0 = vt.fd_baseline(pid)

    plain = [case_memfd_smaller_than_region, case_offset_past_file,
             case_offset_wraps, case_address_wraps, case_memory_not_a_file,
             case_memory_read_only, case_log_offset,
             case_log_smaller_than_file, case_log_not_negotiated,
             case_inflight, case_small_ring, case_features_not_offered,
             case_call_fd_is_a_pipe, case_kick_fd_is_a_socket,
             case_vring_index_out_of_range]
    with_guests = [case_jumbo_flood, case_call_eventfd_full,
                   case_memory_shrunk_after_mapping,
                   case_half_a_message, case_replies_never_read]
    for case in plain + with_guests:
        before = len(d.log())
        if case in plain:
            expect = case(t, d)
        else:
            expect = case(t, d, ga, gb)
        if expect:
            vt.wait_until(lambda: expect in d.log()[before:], 10,
                          "%s: vhostd to log %r" % (case.__name__, expect))
        canary(d, ga, gb)
        # h's connection is gone before the next case.
        vt.wait_until(lambda: d.port("h")["state"] != "up", 10,
                      "h down after %s" % case.__name__)
        print("%s: ok" % case.__name__)

    vt.wait_fds_back(pid, fds0)
    ga.close()
    gb.close()
    d.stop_clean(base)


if __name__ == "__main__":
    vt.run(test_vhost_hostile)
