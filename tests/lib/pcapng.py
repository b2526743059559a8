# SPDX-License-Identifier: BSD-3-Clause
"""A strict pcapng reader for the tests (draft-tuexen-opsawg-pcapng):
sections, interfaces and their options, Enhanced and Simple Packet Blocks,
Interface Statistics Blocks. Anything malformed (a block cut short, lengths
that disagree, an option running past its block, a packet on an interface
that was never described) raises ValueError, so a test that reads a file
also checks that it is well formed.

    cap = pcapng.read(path)
    cap.interfaces[0].name, cap.interfaces[0].tsresol
    for p in cap.packets: p.data, p.time, p.direction, p.interface.name
"""
import struct

SHB, IDB, SPB, ISB, EPB = 0x0A0D0D0A, 1, 3, 5, 6
BOM = 0x1A2B3C4D

OPT_COMMENT = 1
SHB_OPTS = {2: "hardware", 3: "os", 4: "userappl"}
IF_OPTS = {2: "name", 3: "description", 9: "tsresol"}
EPB_FLAGS, EPB_QUEUE = 2, 6
ISB_OPTS = {2: "starttime", 3: "endtime", 4: "ifrecv", 5: "ifdrop",
            6: "filteraccept", 7: "osdrop", 8: "usrdeliv"}
DIRECTIONS = {0: None, 1: "in", 2: "out"}


class Interface:
    def __init__(self, linktype, snaplen, options, endian):
        self.linktype = linktype
        self.snaplen = snaplen
        self.options = options  # code -> [raw values]
        self.name = _text(options, 2)
        self.description = _text(options, 3)
        raw = options.get(9, [b"\x06"])[0]  # default: microseconds
        check(len(raw) == 1, "if_tsresol of %d bytes" % len(raw))
        v = raw[0]
        # Units per second: 10^v, or 2^v with the top bit set.
        self.tsresol = 2 ** (v & 0x7F) if v & 0x80 else 10 ** v
        self.endian = endian

    def __repr__(self):
        return "Interface(%r, linktype %d)" % (self.name, self.linktype)


class Packet:
    def __init__(self, interface, iface_id, ts, caplen, origlen, data,
                 options, endian):
        self.interface = interface
        self.iface_id = iface_id
        self.ts = ts  # in the interface's units
        self.time = ts / interface.tsresol  # seconds since the epoch
        self.caplen = caplen
        self.origlen = origlen
        self.data = data
        self.options = options
        self.flags = None
        self.queue = None
        if EPB_FLAGS in options:
            check(len(options[EPB_FLAGS][0]) == 4, "epb_flags not 4 bytes")
            self.flags = struct.unpack(endian + "I",
                                       options[EPB_FLAGS][0])[0]
        if EPB_QUEUE in options:
            check(len(options[EPB_QUEUE][0]) == 4, "epb_queue not 4 bytes")
            self.queue = struct.unpack(endian + "I",
                                       options[EPB_QUEUE][0])[0]

    @property
    def direction(self):
        """"in", "out" or None (epb_flags bits 0-1)."""
        return None if self.flags is None else DIRECTIONS.get(self.flags & 3)

    def __repr__(self):
        return "Packet(%d bytes, %s, %s)" % (len(self.data), self.direction,
                                             self.interface.name)


class Capture:
    def __init__(self):
        self.sections = []  # SHB options of each section
        self.interfaces = []  # of every section, in order
        self.packets = []
        self.stats = []  # [{"interface": Interface, "ifdrop": N, ...}]


def check(cond, msg):
    if not cond:
        raise ValueError("pcapng: " + msg)


def _text(options, code):
    v = options.get(code)
    return v[0].decode("utf-8", "replace").rstrip("\0") if v else None


def _options(body, endian, what):
    """TLV options of BODY: {code: [values]}; stops at opt_endofopt."""
    opts, off = {}, 0
    while off < len(body):
        check(off + 4 <= len(body), "%s: option header cut short" % what)
        code, length = struct.unpack_from(endian + "HH", body, off)
        off += 4
        if code == 0:
            check(length == 0, "%s: opt_endofopt with a length" % what)
            break
        check(off + length <= len(body),
              "%s: option %d runs past the block" % (what, code))
        opts.setdefault(code, []).append(bytes(body[off:off + length]))
        off += (length + 3) & ~3
    return opts


def _u64(raw, endian):
    check(len(raw) == 8, "64-bit option of %d bytes" % len(raw))
    return struct.unpack(endian + "Q", raw)[0]


def _ts(raw, endian):
    """A timestamp option: high 32 bits, then low."""
    check(len(raw) == 8, "timestamp option of %d bytes" % len(raw))
    hi, lo = struct.unpack(endian + "II", raw)
    return hi << 32 | lo


def read(path):
    with open(path, "rb") as f:
        return parse(f.read())


def parse(data):
    cap = Capture()
    off, endian, ifaces = 0, None, []
    while off < len(data):
        check(off + 12 <= len(data), "block header cut short at %d" % off)
        if endian is None or data[off:off + 4] == b"\x0a\x0d\x0d\x0a":
            check(data[off:off + 4] == b"\x0a\x0d\x0d\x0a",
                  "file does not start with a Section Header Block")
            bom = data[off + 8:off + 12]
            endian = {b"\x4d\x3c\x2b\x1a": "<",
                      b"\x1a\x2b\x3c\x4d": ">"}.get(bytes(bom))
            check(endian is not None, "bad byte-order magic")
        btype, blen = struct.unpack_from(endian + "II", data, off)
        check(blen >= 12 and blen % 4 == 0,
              "block at %d: length %d" % (off, blen))
        check(off + blen <= len(data),
              "block at %d (type %#x) cut short: %d of %d bytes" %
              (off, btype, len(data) - off, blen))
        check(struct.unpack_from(endian + "I", data, off + blen - 4)[0] ==
              blen, "block at %d: trailing length differs" % off)
        body = memoryview(data)[off + 8:off + blen - 4]
        what = "block %#x at %d" % (btype, off)

        if btype == SHB:
            major, minor = struct.unpack_from(endian + "HH", body, 4)
            check(major == 1, "section version %d.%d" % (major, minor))
            opts = _options(body[16:], endian, what)
            cap.sections.append({n: _text(opts, c)
                                 for c, n in SHB_OPTS.items()
                                 if c in opts})
            ifaces = []  # interface ids are per section
        elif btype == IDB:
            check(len(body) >= 8, "%s: too short" % what)
            linktype, _, snaplen = struct.unpack_from(endian + "HHI", body)
            i = Interface(linktype, snaplen,
                          _options(body[8:], endian, what), endian)
            ifaces.append(i)
            cap.interfaces.append(i)
        elif btype == EPB:
            check(len(body) >= 20, "%s: too short" % what)
            iid, hi, lo, caplen, origlen = struct.unpack_from(
                endian + "IIIII", body)
            check(iid < len(ifaces), "%s: interface %d not described" %
                  (what, iid))
            padded = (caplen + 3) & ~3
            check(20 + padded <= len(body),
                  "%s: %d captured bytes do not fit" % (what, caplen))
            check(caplen <= origlen, "%s: captured %d of %d bytes" %
                  (what, caplen, origlen))
            cap.packets.append(Packet(
                ifaces[iid], iid, hi << 32 | lo, caplen, origlen,
                bytes(body[20:20 + caplen]),
                _options(body[20 + padded:], endian, what), endian))
        elif btype == SPB:
            check(len(ifaces) > 0, "%s: no interface" % what)
            origlen = struct.unpack_from(endian + "I", body)[0]
            n = min(origlen, len(body) - 4)
            p = Packet(ifaces[0], 0, 0, n, origlen, bytes(body[4:4 + n]),
                       {}, endian)
            p.time = None
            cap.packets.append(p)
        elif btype == ISB:
            check(len(body) >= 12, "%s: too short" % what)
            iid, hi, lo = struct.unpack_from(endian + "III", body)
            check(iid < len(ifaces), "%s: interface %d not described" %
                  (what, iid))
            opts = _options(body[12:], endian, what)
            st = {"interface": ifaces[iid], "ts": hi << 32 | lo}
            for c, n in ISB_OPTS.items():
                if c in opts:
                    st[n] = (_ts if c in (2, 3) else _u64)(opts[c][0],
                                                           endian)
            cap.stats.append(st)
        off += blen
    check(cap.sections, "no Section Header Block")
    return cap


if __name__ == "__main__":
    import sys
    for a in sys.argv[1:]:
        c = read(a)
        print("%s: %s, %d interfaces %s, %d packets, stats %s" % (
            a, c.sections, len(c.interfaces), c.interfaces,
            len(c.packets), c.stats))
