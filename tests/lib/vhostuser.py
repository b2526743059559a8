# SPDX-License-Identifier: BSD-3-Clause
"""A vhost-user frontend in Python, for tests that play the part of QEMU:
well-behaved sessions, hostile ones, and guests that write their own rings.

It speaks the protocol of QEMU's docs/interop/vhost-user.rst over a unix
socket (SCM_RIGHTS for file descriptors). Guest memory is a memfd shared
with the backend; guest physical address 0 is the start of the memfd and
the "QEMU virtual address" of the region is an arbitrary number (UADDR),
which is what ring addresses are given in.
"""
import collections
import mmap
import os
import socket
import struct

# Requests (frontend to backend).
GET_FEATURES = 1
SET_FEATURES = 2
SET_OWNER = 3
RESET_OWNER = 4
SET_MEM_TABLE = 5
SET_LOG_BASE = 6
SET_LOG_FD = 7
SET_VRING_NUM = 8
SET_VRING_ADDR = 9
SET_VRING_BASE = 10
GET_VRING_BASE = 11
SET_VRING_KICK = 12
SET_VRING_CALL = 13
SET_VRING_ERR = 14
GET_PROTOCOL_FEATURES = 15
SET_PROTOCOL_FEATURES = 16
GET_QUEUE_NUM = 17
SET_VRING_ENABLE = 18
SEND_RARP = 19
NET_SET_MTU = 20
SET_SLAVE_REQ_FD = 21
IOTLB_MSG = 22
GET_CONFIG = 24
SET_CONFIG = 25
CRYPTO_CREATE_SESS = 26
CRYPTO_CLOSE_SESS = 27
POSTCOPY_ADVISE = 28
POSTCOPY_LISTEN = 29
POSTCOPY_END = 30
GET_INFLIGHT_FD = 31
SET_INFLIGHT_FD = 32
SET_STATUS = 39
GET_STATUS = 40

NAMES = {v: k for k, v in dict(globals()).items()
         if k.isupper() and isinstance(v, int)}

VERSION = 0x1
REPLY = 0x4
NEED_REPLY = 0x8
NOFD = 0x100

# Feature bits.
F_CSUM = 0          # VIRTIO_NET_F_CSUM: the guest may send partial checksums
F_GUEST_CSUM = 1    # the guest takes partial checksums
F_GUEST_TSO4 = 7    # the guest takes TCP/IPv4 super-frames
F_GUEST_TSO6 = 8
F_GUEST_ECN = 9
F_GUEST_UFO = 10
F_HOST_TSO4 = 11    # the guest may send TCP/IPv4 super-frames
F_HOST_TSO6 = 12
F_HOST_ECN = 13
F_HOST_UFO = 14
F_MRG_RXBUF = 15
F_INDIRECT_DESC = 28
F_EVENT_IDX = 29
F_PROTOCOL_FEATURES = 30
F_VERSION_1 = 32
F_MQ = 22
F_IOMMU_PLATFORM = 33  # VIRTIO_F_ACCESS_PLATFORM
F_RING_PACKED = 34
F_LOG_ALL = 26

# Protocol feature bits.
PF_MQ = 0
PF_LOG_SHMFD = 1
PF_REPLY_ACK = 3
PF_SLAVE_REQ = 5
PF_INFLIGHT_SHMFD = 12
PF_STATUS = 16

# Backend-to-frontend requests (the backend, "slave", channel).
BACKEND_IOTLB_MSG = 1

# struct vhost_iotlb_msg: iova, size, uaddr, perm, type (32 bytes).
IOTLB = struct.Struct("<QQQBB6x")
IOTLB_MISS, IOTLB_UPDATE, IOTLB_INVALIDATE = 1, 2, 3
IOTLB_RO, IOTLB_WO, IOTLB_RW = 1, 2, 3

HDR = struct.Struct("<III")
MAX_FDS = 8
VNET_HDR = 12  # struct virtio_net_hdr_mrg_rxbuf (VERSION_1)

# What Guest negotiates unless told otherwise (of what the backend offers).
DEFAULT_FEATURES = ((1 << F_VERSION_1) | (1 << F_PROTOCOL_FEATURES) |
                    (1 << F_MRG_RXBUF))
# The checksum and segmentation offloads, by direction.
TX_OFFLOADS = (1 << F_CSUM) | (1 << F_HOST_TSO4) | (1 << F_HOST_TSO6)
RX_OFFLOADS = ((1 << F_GUEST_CSUM) | (1 << F_GUEST_TSO4) |
               (1 << F_GUEST_TSO6))
ALL_OFFLOADS = (TX_OFFLOADS | RX_OFFLOADS | (1 << F_GUEST_ECN) |
                (1 << F_GUEST_UFO) | (1 << F_HOST_ECN) | (1 << F_HOST_UFO))

# struct virtio_net_hdr's flags and gso_type.
HDR_F_NEEDS_CSUM = 1
HDR_F_DATA_VALID = 2
GSO_NONE = 0
GSO_TCPV4 = 1
GSO_UDP = 3
GSO_TCPV6 = 4
GSO_ECN = 0x80

_VNET = struct.Struct("<BBHHHHH")


class VnetHdr(collections.namedtuple(
        "VnetHdr", "flags gso_type hdr_len gso_size csum_start csum_offset "
        "num_buffers", defaults=(0, 0, 0, 0, 0, 0, 0))):
    """struct virtio_net_hdr_mrg_rxbuf (12 bytes, little endian as
    VERSION_1 has it): what a frame on a ring is preceded by."""

    def pack(self):
        return _VNET.pack(*self)

    @classmethod
    def unpack(cls, b):
        return cls(*_VNET.unpack_from(b))


def _hdr_bytes(hdr):
    """The 12 header bytes of HDR: None (all zero), a VnetHdr or bytes."""
    if hdr is None:
        return bytes(VNET_HDR)
    if isinstance(hdr, VnetHdr):
        return hdr.pack()
    if len(hdr) != VNET_HDR:
        raise ValueError("a virtio-net header is %d bytes" % VNET_HDR)
    return bytes(hdr)

# Replies: which requests have one.
WITH_REPLY = {GET_FEATURES, GET_PROTOCOL_FEATURES, GET_VRING_BASE,
              GET_QUEUE_NUM, GET_CONFIG, GET_INFLIGHT_FD, GET_STATUS,
              POSTCOPY_ADVISE}


class Closed(Exception):
    """The backend closed the connection."""


def eventfd():
    return os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)


def load16(m, off):
    """The 16-bit word at even offset OFF of mmap M, read in one load.
    struct.unpack_from and pack_into go byte by byte on an mmap (seen on
    CPython 3.11): a ring index the backend moves from 0x00ff to 0x0100
    can read as 0x01ff or 0x0000, and one it reads while we store it is
    torn the same way, so the two sides disagree about the ring."""
    with memoryview(m) as b, b[off:off + 2] as w, w.cast("H") as h:
        return h[0]


def store16(m, off, v):
    """Store V at even offset OFF of mmap M in one 16-bit store (see
    load16)."""
    with memoryview(m) as b, b[off:off + 2] as w, w.cast("H") as h:
        h[0] = v


def store64(m, off, v):
    """Store V at 8-aligned offset OFF of mmap M in one 64-bit store: a
    descriptor address rewritten byte by byte can be read half old, half
    new, which may be an address the backend can use."""
    with memoryview(m) as b, b[off:off + 8] as w, w.cast("Q") as q:
        q[0] = v


class Memory:
    """Guest memory: a memfd of SIZE bytes mapped here, guest physical
    addresses 0..SIZE, "QEMU virtual" addresses UADDR..UADDR+SIZE."""

    def __init__(self, size=2 << 20, uaddr=0x7f0000000000, file_size=None):
        self.size = size
        self.uaddr = uaddr
        self.fd = os.memfd_create("guest", os.MFD_CLOEXEC)
        os.ftruncate(self.fd, size if file_size is None else file_size)
        self.map = mmap.mmap(self.fd, min(size, file_size or size))
        self.next = 0

    def alloc(self, n, align=64):
        self.next = (self.next + align - 1) & ~(align - 1)
        a = self.next
        self.next += n
        if self.next > self.size:
            raise MemoryError("guest memory full")
        return a

    def region(self, offset=0):
        """(guest_phys_addr, memory_size, userspace_addr, mmap_offset)."""
        return (0, self.size, self.uaddr, offset)

    def close(self):
        try:
            self.map.close()
        except (BufferError, ValueError):
            pass
        os.close(self.fd)


class Frontend:
    """One vhost-user connection, frontend side."""

    def __init__(self, path=None, sock=None, timeout=5.0):
        if sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(path)
        self.s = sock
        self.s.settimeout(timeout)
        self.fds = []  # fds we made for the backend; closed at close()

    # --- wire -----------------------------------------------------------
    def send_raw(self, data, fds=()):
        if fds:
            socket.send_fds(self.s, [data], list(fds))
        else:
            self.s.sendall(data)

    def send(self, req, payload=b"", fds=(), flags=VERSION, size=None):
        hdr = HDR.pack(req, flags, len(payload) if size is None else size)
        self.send_raw(hdr + payload, fds)

    def recv(self):
        """One message from the backend: (request, flags, payload)."""
        hdr = self._recv_exact(HDR.size)
        req, flags, size = HDR.unpack(hdr)
        return req, flags, self._recv_exact(size) if size else b""

    def _recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            try:
                chunk = self.s.recv(n - len(buf))
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise Closed("backend closed the connection")
            buf += chunk
        return buf

    def alive(self, timeout=2.0):
        """True while the backend keeps the connection open (GET_FEATURES
        is answered)."""
        try:
            self.s.settimeout(timeout)
            self.get_features()
            return True
        except (Closed, OSError):
            return False

    def request(self, req, payload=b"", fds=(), ack=False):
        """Send REQ; return the reply's payload if it has one (or an ack
        was asked for), else None."""
        flags = VERSION | (NEED_REPLY if ack else 0)
        self.send(req, payload, fds, flags)
        if req in WITH_REPLY or ack:
            rreq, rflags, payload = self.recv()
            if rreq != req or not rflags & REPLY:
                raise ValueError("reply to %s is %d flags %#x" %
                                 (NAMES.get(req, req), rreq, rflags))
            return payload
        return None

    def u64(self, req, v, ack=False):
        return self.request(req, struct.pack("<Q", v), ack=ack)

    def get_features(self):
        return struct.unpack("<Q", self.request(GET_FEATURES))[0]

    def get_protocol_features(self):
        return struct.unpack("<Q", self.request(GET_PROTOCOL_FEATURES))[0]

    def set_mem_table(self, regions, fds, ack=False):
        """REGIONS: (gpa, size, uaddr, mmap_offset) tuples."""
        p = struct.pack("<II", len(regions), 0)
        for r in regions:
            p += struct.pack("<QQQQ", *r)
        return self.request(SET_MEM_TABLE, p, fds, ack)

    def vring_state(self, req, idx, num, ack=False):
        return self.request(req, struct.pack("<II", idx, num), ack=ack)

    def vring_addr(self, idx, desc, used, avail, flags=0, log=0, ack=False):
        return self.request(SET_VRING_ADDR, struct.pack(
            "<IIQQQQ", idx, flags, desc, used, avail, log), ack=ack)

    def vring_fd(self, req, idx, fd=None):
        if fd is None:
            return self.request(req, struct.pack("<Q", idx | NOFD))
        return self.request(req, struct.pack("<Q", idx), [fd])

    def get_vring_base(self, idx):
        return struct.unpack("<II", self.request(
            GET_VRING_BASE, struct.pack("<II", idx, 0)))[1]

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds = []

    def new_eventfd(self):
        fd = eventfd()
        self.fds.append(fd)
        return fd


class SplitRing:
    """A split virtqueue in guest memory, driven from the guest side."""

    def __init__(self, mem, num=256, buf_size=2048):
        self.mem, self.num = mem, num
        self.desc = mem.alloc(16 * num, 4096)
        self.avail = mem.alloc(6 + 2 * num, 2)
        self.used = mem.alloc(6 + 8 * num, 4096)
        self.bufs = [mem.alloc(buf_size, 64) for _ in range(num)]
        self.buf_size = buf_size
        self.avail_idx = 0
        self.used_seen = 0
        self.free = list(range(num))
        self.in_flight = {}

    def addrs(self, iova=False):
        """Ring addresses as SET_VRING_ADDR gives them: "QEMU virtual", or
        with a vIOMMU, I/O virtual (here the guest physical address)."""
        u = 0 if iova else self.mem.uaddr
        return u + self.desc, u + self.used, u + self.avail

    def setup(self, fe, idx, base=0, iova=False):
        """SET_VRING_NUM/BASE/ADDR/KICK/CALL (and ENABLE) for vring IDX."""
        fe.vring_state(SET_VRING_NUM, idx, self.num)
        fe.vring_state(SET_VRING_BASE, idx, base)
        d, u, a = self.addrs(iova)
        fe.vring_addr(idx, d, u, a)
        fe.vring_fd(SET_VRING_KICK, idx, fe.new_eventfd())
        fe.vring_fd(SET_VRING_CALL, idx, fe.new_eventfd())

    def write_desc(self, i, addr, length, flags=0, nxt=0):
        struct.pack_into("<QIHH", self.mem.map, self.desc + 16 * i, addr,
                         length, flags, nxt)

    def publish(self, head, now=True):
        """Make chain HEAD available; with NOW false, only once
        publish_held() runs (several chains appear at once: one burst)."""
        m = self.mem.map
        struct.pack_into("<H", m, self.avail + 4 + 2 * (self.avail_idx %
                                                        self.num), head)
        self.avail_idx = (self.avail_idx + 1) & 0xFFFF
        if now:
            store16(m, self.avail + 2, self.avail_idx)

    def publish_held(self):
        store16(self.mem.map, self.avail + 2, self.avail_idx)

    def set_avail_idx(self, v):
        self.avail_idx = v & 0xFFFF
        store16(self.mem.map, self.avail + 2, self.avail_idx)

    def used_idx(self):
        return load16(self.mem.map, self.used + 2)

    def reap(self):
        """Used entries since last time: [(id, len)]."""
        out = []
        m = self.mem.map
        while self.used_seen != self.used_idx():
            slot = self.used + 4 + 8 * (self.used_seen % self.num)
            out.append(struct.unpack_from("<II", m, slot))
            self.used_seen = (self.used_seen + 1) & 0xFFFF
        for i, _ in out:
            if i in self.in_flight:
                self.free.append(i)
                tails = self.in_flight.pop(i)
                if isinstance(tails, list):     # tx_chain's
                    self.free += tails
        return out

    def tx(self, frame, hdr=None):
        """Queue FRAME for the backend, behind virtio-net header HDR (a
        VnetHdr or its 12 bytes; None: all zero); False if the ring is
        full."""
        self.reap()
        if not self.free:
            return False
        i = self.free.pop()
        b = self.bufs[i]
        data = _hdr_bytes(hdr) + frame
        self.mem.map[b:b + len(data)] = data
        self.write_desc(i, b, len(data))
        self.in_flight[i] = True
        self.publish(i)
        return True

    def tx_chain(self, frame, now=True, hdr=None):
        """Queue FRAME (behind virtio-net header HDR, as for tx()) as a
        chain of as many buffers as it takes (a jumbo frame or a TSO
        super-frame); False if the ring has not enough free. NOW: as for
        publish()."""
        self.reap()
        data = _hdr_bytes(hdr) + frame
        parts = [data[o:o + self.buf_size]
                 for o in range(0, len(data), self.buf_size)]
        if len(self.free) < len(parts):
            return False
        ids = [self.free.pop() for _ in parts]
        for k, (i, part) in enumerate(zip(ids, parts)):
            b = self.bufs[i]
            self.mem.map[b:b + len(part)] = part
            last = k == len(parts) - 1
            self.write_desc(i, b, len(part), 0 if last else 1,
                            0 if last else ids[k + 1])
        self.in_flight[ids[0]] = ids[1:]
        self.publish(ids[0], now)
        return True

    def post_rx(self):
        """Offer every free buffer to the backend (device-writable)."""
        while self.free:
            i = self.free.pop()
            self.write_desc(i, self.bufs[i], self.buf_size, 2)
            self.in_flight[i] = True
            self.publish(i)

    def rx(self):
        """Frames the backend wrote (header stripped); buffers re-posted."""
        return [f for _, f in self.rx_hdr()]

    def rx_hdr(self):
        """(VnetHdr, frame) for each frame the backend wrote; buffers
        re-posted."""
        out = []
        for i, n in self.reap():
            b = self.bufs[i]
            out.append((VnetHdr.unpack(self.mem.map[b:b + VNET_HDR]),
                        bytes(self.mem.map[b + VNET_HDR:b + n])))
        self.post_rx()
        return out


class PackedRing:
    """A packed virtqueue (VIRTIO_F_RING_PACKED) in guest memory, driven
    from the guest side, with the same methods as SplitRing.

    Layout (virtio 1.1, 2.7): a ring of NUM 16-byte descriptors {addr u64,
    len u32, id u16, flags u16}; a descriptor is available when its AVAIL
    flag (bit 7) equals the driver's wrap counter and its USED flag (bit 15)
    does not, and used when both equal the device's wrap counter. Both wrap
    counters start at 1 and flip each time an index passes the end of the
    ring. The driver and device event suppression areas are 4 bytes each
    {off_wrap u16, flags u16}. In SET_VRING_ADDR the descriptor ring goes in
    "desc", the driver event area in "avail" and the device event area in
    "used"; SET_VRING_BASE carries the next available index in bits 0-14
    and the avail wrap counter in bit 15.

    Buffer ids are the indexes of BUFS; a chain takes consecutive
    descriptors (the head's flags are written last) and the device returns
    it with one used descriptor that carries the id, so reap() remembers how
    many descriptors each id took."""

    F_NEXT = 1
    F_WRITE = 2
    F_INDIRECT = 4
    F_AVAIL = 1 << 7
    F_USED = 1 << 15

    def __init__(self, mem, num=256, buf_size=2048):
        self.mem, self.num = mem, num
        self.desc = mem.alloc(16 * num, 4096)
        self.driver_event = mem.alloc(4, 4)
        self.device_event = mem.alloc(4, 4)
        self.bufs = [mem.alloc(buf_size, 64) for _ in range(num)]
        self.buf_size = buf_size
        self.avail_idx, self.avail_wrap = 0, 1
        self.used_idx, self.used_wrap = 0, 1
        self.free = list(range(num))
        self.in_flight = {}  # buffer id -> descriptors its chain took

    def addrs(self):
        """(desc, used, avail) as SET_VRING_ADDR takes them: the device
        event area is "used", the driver event area "avail"."""
        u = self.mem.uaddr
        return u + self.desc, u + self.device_event, u + self.driver_event

    def base(self):
        """SET_VRING_BASE's num: next avail index and wrap counter."""
        return self.avail_idx | self.avail_wrap << 15

    def setup(self, fe, idx, base=None):
        """SET_VRING_NUM/BASE/ADDR/KICK/CALL for vring IDX."""
        fe.vring_state(SET_VRING_NUM, idx, self.num)
        fe.vring_state(SET_VRING_BASE, idx,
                       self.base() if base is None else base)
        d, u, a = self.addrs()
        fe.vring_addr(idx, d, u, a)
        fe.vring_fd(SET_VRING_KICK, idx, fe.new_eventfd())
        fe.vring_fd(SET_VRING_CALL, idx, fe.new_eventfd())

    def avail_flags(self):
        """The AVAIL/USED bits that make a descriptor available now."""
        return self.F_AVAIL if self.avail_wrap else self.F_USED

    def write_desc(self, i, addr, length, bid=0, flags=0):
        struct.pack_into("<QIHH", self.mem.map, self.desc + 16 * i, addr,
                         length, bid, flags)

    def read_desc(self, i):
        """(addr, len, id, flags) of descriptor I: the flags first, in
        one load (see load16), then the rest."""
        o = self.desc + 16 * i
        flags = load16(self.mem.map, o + 14)
        return struct.unpack_from("<QIH", self.mem.map, o) + (flags,)

    def add(self, bid, parts):
        """Make a chain of PARTS, (addr, len, flags) tuples with F_NEXT
        added between them, available as buffer BID: one descriptor each
        from the next available slot on, the head's flags last."""
        head, head_flags = self.avail_idx, None
        for k, (addr, length, flags) in enumerate(parts):
            if k + 1 < len(parts):
                flags |= self.F_NEXT
            flags |= self.avail_flags()
            if k == 0:
                head_flags = flags
                self.write_desc(self.avail_idx, addr, length, bid, 0)
            else:
                self.write_desc(self.avail_idx, addr, length, bid, flags)
            self.avail_idx += 1
            if self.avail_idx >= self.num:
                self.avail_idx = 0
                self.avail_wrap ^= 1
        store16(self.mem.map, self.desc + 16 * head + 14, head_flags)
        self.in_flight[bid] = len(parts)

    def reap(self):
        """Used buffers since last time: [(id, len)]."""
        out = []
        while True:
            _, length, bid, flags = self.read_desc(self.used_idx)
            avail, used = bool(flags & self.F_AVAIL), bool(flags & self.F_USED)
            if avail != used or used != bool(self.used_wrap):
                break
            out.append((bid, length))
            n = self.in_flight.pop(bid, 1)
            if bid < self.num:
                self.free.append(bid)
            self.used_idx += n
            while self.used_idx >= self.num:  # a chain may be longer
                self.used_idx -= self.num
                self.used_wrap ^= 1
        return out

    def tx(self, frame):
        """Queue FRAME (with a zero virtio-net header) for the backend;
        False if no buffer is free. (librte_vhost returns the used
        descriptors of a packed tx ring in batches, when most of the ring
        is used.)"""
        self.reap()
        if not self.free:
            return False
        i = self.free.pop()
        b = self.bufs[i]
        data = bytes(VNET_HDR) + frame
        self.mem.map[b:b + len(data)] = data
        self.add(i, [(b, len(data), 0)])
        return True

    def post_rx(self):
        """Offer every free buffer to the backend (device-writable)."""
        while self.free:
            i = self.free.pop()
            self.add(i, [(self.bufs[i], self.buf_size, self.F_WRITE)])

    def rx(self):
        """Frames the backend wrote (header stripped); buffers re-posted."""
        frames = []
        for i, n in self.reap():
            if i < self.num:
                b = self.bufs[i]
                frames.append(bytes(self.mem.map[b + VNET_HDR:b + n]))
        self.post_rx()
        return frames


class Guest:
    """A complete, well-behaved guest on a vhost-user socket: one queue
    pair in a memfd, negotiated as QEMU does. Its rings can then be
    written by hand to play a hostile guest.

    IOMMU: negotiate VIRTIO_F_IOMMU_PLATFORM as a guest behind a vIOMMU
    does. Its I/O virtual addresses are its guest physical ones (an
    identity mapping), but the backend learns them only from IOTLB
    updates: serve_iotlb() answers the misses the backend sends on the
    backend channel (self.chan), PAGE bytes at a time."""

    def __init__(self, path, mem_size=4 << 20, num=256, packed=False,
                 features=None, timeout=5.0, iommu=False, page=4096,
                 queues=1, extra_features=0, rx_buf_size=2048):
        """FEATURES: the feature bits to take of what the backend offers
        (default DEFAULT_FEATURES); EXTRA_FEATURES are added to them (e.g.
        TX_OFFLOADS | RX_OFFLOADS). RX_BUF_SIZE: the size of each buffer
        posted for rx, virtio-net header included (a guest that takes TSO
        super-frames without mergeable rx buffers posts 64 KiB ones, as
        Linux's big-packets mode does with page chains)."""
        self.fe = Frontend(path, timeout=timeout)
        # Each ring: descriptors, indexes and NUM buffers (2 KiB for tx,
        # RX_BUF_SIZE for rx).
        self.mem = Memory(max(mem_size, queues * (
            num * (2048 + rx_buf_size + 128) + 2 * 20480)))
        self.iommu, self.page = iommu, page
        self.chan = None
        self.misses = 0
        offered = self.fe.get_features()
        self.offered = offered
        want = (DEFAULT_FEATURES if features is None else features) | \
            extra_features
        if iommu:
            want |= 1 << F_IOMMU_PLATFORM
        if queues > 1:
            want |= 1 << F_MQ
        self.features = offered & want
        self.fe.u64(SET_FEATURES, self.features)
        self.fe.request(SET_OWNER)
        if self.features & (1 << F_PROTOCOL_FEATURES):
            pf = self.fe.get_protocol_features() & (
                (1 << PF_REPLY_ACK) | ((1 << PF_SLAVE_REQ) if iommu else 0) |
                ((1 << PF_MQ) if queues > 1 else 0))
            self.fe.u64(SET_PROTOCOL_FEATURES, pf)
            if iommu:
                # As QEMU: a socket pair, one end to the backend.
                self.chan, theirs = socket.socketpair(socket.AF_UNIX,
                                                      socket.SOCK_STREAM)
                self.fe.request(SET_SLAVE_REQ_FD, b"", [theirs.fileno()])
                theirs.close()
                self.chan.setblocking(False)
        self.fe.set_mem_table([self.mem.region()], [self.mem.fd])
        # Queue pair i: vring 2i backend -> guest, 2i + 1 guest -> backend.
        self.rxqs, self.txqs = [], []
        for i in range(queues):
            rxq = SplitRing(self.mem, num, buf_size=rx_buf_size)
            txq = SplitRing(self.mem, num)
            rxq.post_rx()
            rxq.setup(self.fe, 2 * i, iova=iommu)
            txq.setup(self.fe, 2 * i + 1, iova=iommu)
            self.rxqs.append(rxq)
            self.txqs.append(txq)
        self.rxq, self.txq = self.rxqs[0], self.txqs[0]
        if self.features & (1 << F_PROTOCOL_FEATURES):
            for i in range(2 * queues):
                self.fe.vring_state(SET_VRING_ENABLE, i, 1)

    def iotlb(self, kind, iova, size, perm=IOTLB_RW):
        """Send one IOTLB update or invalidation (identity: uaddr is
        where IOVA is in the memory region)."""
        self.fe.request(IOTLB_MSG, IOTLB.pack(
            iova, size, self.mem.uaddr + iova, perm, kind))

    def read_misses(self):
        """[(iova, perm)] of the misses waiting on the backend channel."""
        out, buf = [], b""
        while True:
            try:
                chunk = self.chan.recv(65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            buf += chunk
        while len(buf) >= HDR.size:
            req, _, size = HDR.unpack_from(buf)
            if len(buf) < HDR.size + size:
                # The rest of a message the backend is still writing.
                self.chan.setblocking(True)
                buf += self.chan.recv(HDR.size + size - len(buf))
                self.chan.setblocking(False)
                continue
            body = buf[HDR.size:HDR.size + size]
            buf = buf[HDR.size + size:]
            if req == BACKEND_IOTLB_MSG and size >= IOTLB.size:
                iova, _, _, perm, kind = IOTLB.unpack_from(body)
                if kind == IOTLB_MISS:
                    out.append((iova, perm))
        return out

    def serve_iotlb(self):
        """Answer every pending miss with an update of the PAGE around it;
        returns how many there were."""
        if self.chan is None:
            return 0
        misses = self.read_misses()
        done = set()
        for iova, _ in misses:
            base = iova & ~(self.page - 1)
            if base in done or base >= self.mem.size:
                continue
            done.add(base)
            self.iotlb(IOTLB_UPDATE, base, self.page)
        self.misses += len(misses)
        return len(misses)

    def close(self):
        if self.chan is not None:
            self.chan.close()
        self.fe.close()
        self.mem.close()
