#!/usr/bin/env python3
"""Traffic of scripts/bench.sh --vxlan (issue 15): the frames the generator
replays (net_pcap, infinite_rx) into the switch, and the addresses both
switches are configured with, in one place.

  guest   A = 00:00:00:00:00:01  (generator port 0, the guest's virtio_user)
  remote  B = 02:00:00:00:00:0b  (a VM behind the remote VTEP)
  inner   IPv4/UDP 10.0.0.1:1000 <-> 10.0.0.2:1001, the case's size
  VTEPs   local (the switch) 192.168.100.1, remote 192.168.100.2, VNI 100,
          UDP destination port 4789, source port 49153, no UDP checksum,
          DF, TTL 64 (as vhostd and OVS send)
  underlay MACs: the switch's SW_MAC = 56:48:4f:53:54:00 (vhostd: the
          net_vhost underlay, DPDK port 0; OVS: br-phy's hwaddr, set to
          it), the remote VTEP's (generator port 1) U = 02:00:00:00:00:12

Kinds of pcap (one frame each, replayed for ever):
  encap   A -> B inner frames, into the guest port (encap: guest -> tunnel)
  decap   B -> A inner frames in VXLAN from the remote VTEP to the switch,
          into the underlay port (decap: tunnel -> guest)
  plain   B -> A inner frames without a tunnel, into the underlay port (the
          -plain contenders' decap traffic: the same frames, no tunnel)

  vxlan.py pcap DIR KIND SIZE [N]  write DIR/vx-KIND-SIZE-xN.pcap (N
                                   copies, default 1), print its path
  vxlan.py show KIND SIZE        hex dump of the frame
"""
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from swstate import PCAP_HDR, _csum, frame  # noqa: E402

GUEST_MAC = "00:00:00:00:00:01"
REMOTE_MAC = "02:00:00:00:00:0b"
SW_MAC = "56:48:4f:53:54:00"
VTEP_MAC = "02:00:00:00:00:12"
LOCAL_IP = "192.168.100.1"
REMOTE_IP = "192.168.100.2"
VNI = 100
UDP_PORT = 4789
SPORT = 49153
OVERHEAD = 50
VX_LEARN = 8       # copies of the frame sent once from the other side
GUEST_IP = "10.0.0.1"
REMOTE_VM_IP = "10.0.0.2"


def mac(s):
    return bytes(int(x, 16) for x in s.split(":"))


def ip4(s):
    return bytes(int(x) for x in s.split("."))


def inner(size, to_guest):
    """The inner frame: A -> B (from the guest) or B -> A (to it)."""
    if to_guest:
        return frame(mac(REMOTE_MAC), mac(GUEST_MAC), ip4(REMOTE_VM_IP),
                     ip4(GUEST_IP), size)
    return frame(mac(GUEST_MAC), mac(REMOTE_MAC), ip4(GUEST_IP),
                 ip4(REMOTE_VM_IP), size)


def vxlan(inner_frame):
    """RFC 7348 encapsulation, remote VTEP -> the switch."""
    n = len(inner_frame)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + 8 + 8 + n, 0, 0x4000,
                     64, 17, 0, ip4(REMOTE_IP), ip4(LOCAL_IP))
    ip = ip[:10] + struct.pack("!H", _csum(ip)) + ip[12:]
    udp = struct.pack("!HHHH", SPORT, UDP_PORT, 8 + 8 + n, 0)
    vx = struct.pack("!II", 0x08000000, VNI << 8)
    return mac(SW_MAC) + mac(VTEP_MAC) + b"\x08\x00" + ip + udp + vx + \
        inner_frame


def frame_of(kind, size):
    if kind == "encap":
        return inner(size, False)
    if kind == "decap":
        return vxlan(inner(size, True))
    if kind == "plain":
        return inner(size, True)
    raise ValueError(f"bad kind {kind}")


def write_pcap(d, kind, size, count=1):
    """The path of a pcap of COUNT copies of the frame (written once per
    run): 1 to replay for ever (infinite_rx), VX_LEARN to send once."""
    if not 60 <= size <= 1518:
        raise ValueError(f"bad size {size}")
    os.makedirs(d, exist_ok=True)
    p = os.path.join(d, f"vx-{kind}-{size}-x{count}.pcap")
    if os.path.exists(p):
        return p
    fr = frame_of(kind, size)
    tmp = p + ".tmp"
    with open(tmp, "wb") as f:
        f.write(PCAP_HDR)
        for _ in range(count):
            f.write(struct.pack("<IIII", 0, 0, len(fr), len(fr)) + fr)
    os.replace(tmp, p)
    return p


def main(argv):
    if len(argv) in (4, 5) and argv[0] == "pcap":
        print(write_pcap(argv[1], argv[2], int(argv[3]),
                         int(argv[4]) if len(argv) == 5 else 1))
        return 0
    if len(argv) == 3 and argv[0] == "show":
        fr = frame_of(argv[1], int(argv[2]))
        for i in range(0, len(fr), 16):
            print(f"{i:04x}  " + fr[i:i + 16].hex(" "))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
