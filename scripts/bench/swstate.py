#!/usr/bin/env python3
"""Many-flow traffic and switch state for scripts/bench.sh --flows.

write_pcaps(): two pcap files of N frames each, replayed by the generator
(net_pcap, infinite_rx=1): frame i of the first carries src A_i dst B_i and
goes out of generator port 0 into switch port p0; frame i of the second
carries src B_i dst A_i into p1. A learning bridge thus learns every A_i on
p0 and every B_i on p1 within the first pass of either file, and forwards
the rest as known unicast.
  A_i = 02:0a:00:ii:ii:ii, B_i = 02:0b:00:ii:ii:ii (i < 2^24, locally
  administered unicast), IPv4/UDP 10.10.x.y -> 10.11.x.y, port 1000 -> 1001.

probe(): the state of a running switch that shows whether it forwards
known unicast: vhostd's bridge br0 over telemetry (fdb_entries, flooded,
learn_table_full), OVS's fdb/stats-show and pmd-stats-show (MAC entries,
upcalls). Spec "vhostd=FILE_PREFIX" or "ovs=UNIXCTL_PATH".

write_queue_pcaps() (--queues Q): the same frames spread over Q files
per side, one per generator queue; show(): the switch's rx queue placement
(vhostd's `vhostctl lcores`, OVS's pmd-rxq-show).

  swstate.py pcaps DIR N SIZE     write DIR/flows-N-SIZE-{a,b}.pcap, print paths
  swstate.py probe SPEC           print the probe as JSON
  swstate.py show SPEC            print the switch's rx queue placement
"""
import json
import os
import re
import socket
import struct
import subprocess
import sys

PCAP_HDR = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)


def _csum(b):
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def frame(src_mac, dst_mac, src_ip, dst_ip, size):
    """An Ethernet/IPv4/UDP frame of SIZE bytes without FCS."""
    udp_len = size - 14 - 20
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, size - 14, 0, 0, 64, 17, 0,
                     src_ip, dst_ip)
    ip = ip[:10] + struct.pack("!H", _csum(ip)) + ip[12:]
    udp = struct.pack("!HHHH", 1000, 1001, udp_len, 0)
    pad = bytes(udp_len - 8)
    return dst_mac + src_mac + b"\x08\x00" + ip + udp + pad


def macs(i):
    t = i.to_bytes(3, "big")
    return b"\x02\x0a\x00" + t, b"\x02\x0b\x00" + t


def pair_frame(i, side, size):
    """Pair I's frame into p0 (SIDE 0: A_i -> B_i) or p1 (SIDE 1: back)."""
    a, b = macs(i)
    t = i.to_bytes(3, "big")
    ipa, ipb = b"\x0a\x0a" + t[1:], b"\x0a\x0b" + t[1:]
    return (frame(a, b, ipa, ipb, size) if side == 0 else
            frame(b, a, ipb, ipa, size))


def write_pcaps(d, n, size):
    """Paths of the two files (written once, reused by every contender)."""
    if not 60 <= size <= 1518 or not 1 <= n < 1 << 24:
        raise ValueError(f"bad flows {n} / size {size}")
    os.makedirs(d, exist_ok=True)
    paths = [os.path.join(d, f"flows-{n}-{size}-{x}.pcap") for x in "ab"]
    if all(os.path.exists(p) for p in paths):
        return paths
    rec = struct.pack("<IIII", 0, 0, size, size)
    for k, p in enumerate(paths):
        tmp = p + ".tmp"
        with open(tmp, "wb") as f:
            f.write(PCAP_HDR)
            for i in range(n):
                f.write(rec + pair_frame(i, k, size))
        os.replace(tmp, p)
    return paths


# ---- multiqueue (--queues)
def _mac(s):
    return bytes(int(x, 16) for x in s.split(":"))


def write_queue_pcaps(d, n, size, q, mac0, mac1):
    """--queues Q: two lists of Q pcap paths, file k replayed on generator
    queue k. N MAC pairs (--flows): pair i on queue i % Q (with N < Q,
    queue k replays pair k % N), frames as write_pcaps'. N = 0 (no
    --flows): the generator ports' MACs MAC0 -> MAC1 into p0 and back into
    p1, as tx_first sends, one UDP flow per queue (source port 1000 + k):
    one guest MAC on all its queues."""
    if not 60 <= size <= 1518 or not 0 <= n < 1 << 24 or not 1 <= q <= 1024:
        raise ValueError(f"bad flows {n} / size {size} / queues {q}")
    os.makedirs(d, exist_ok=True)
    rec = struct.pack("<IIII", 0, 0, size, size)
    paths = ([], [])
    for k in range(q):
        for x, side in enumerate("ab"):
            p = os.path.join(d, f"mq-{n}-{size}-{side}-q{k}of{q}.pcap")
            paths[x].append(p)
            if os.path.exists(p):
                continue
            tmp = p + ".tmp"
            with open(tmp, "wb") as f:
                f.write(PCAP_HDR)
                if n == 0:
                    ips = (b"\x0a\x0a\x00" + bytes([k % 256]),
                           b"\x0a\x0b\x00" + bytes([k % 256]))
                    fr = (frame(_mac(mac0), _mac(mac1), ips[0], ips[1], size)
                          if x == 0 else
                          frame(_mac(mac1), _mac(mac0), ips[1], ips[0], size))
                    # UDP source port 1000 + k: one flow per queue
                    off = 14 + 20
                    fr = fr[:off] + struct.pack("!H", 1000 + k) + fr[off + 2:]
                    f.write(rec + fr)
                for i in ((range(k, n, q) if k < n else [k % n]) if n
                          else ()):
                    f.write(rec + pair_frame(i, x, size))
            os.replace(tmp, p)
    return paths


def show(spec):
    """The switch's rx queues, which lcore / PMD polls each and its load,
    and its port counters (drops):
    "vhostd=VHOSTCTL,CONTROL_SOCKET" (vhostctl lcores, each port's queue
    pairs, vhostctl stats) or "ovs=UNIXCTL" (dpif-netdev/pmd-rxq-show,
    dpctl/show -s). Text; the error when it cannot be read."""
    kind, _, arg = spec.partition("=")
    if kind == "vhostd":
        ctl, _, sock = arg.partition(",")
        cmds = [[ctl, "-s", sock, "lcores"]] + [
            [ctl, "-s", sock, "port", "show", p] for p in ("p0", "p1")] + [
            [ctl, "-s", sock, "stats"]]
    elif kind == "ovs":
        cmds = [["ovs-appctl", "-t", arg, "dpif-netdev/pmd-rxq-show"],
                ["ovs-appctl", "-t", arg, "dpctl/show", "-s"]]
    else:
        return f"unknown spec {spec}"
    out = []
    for c in cmds:
        try:
            r = subprocess.run(c, capture_output=True, text=True, timeout=10)
            text = r.stdout + r.stderr
        except (OSError, subprocess.SubprocessError) as e:
            text = f"{' '.join(c)}: {e}"
        if c[-2:-1] == ["show"]:
            # a port's queues only
            text = " ".join(l.strip() for l in text.splitlines()
                            if l.split(":")[0] in ("name", "queue_pairs",
                                                   "rxq_enabled",
                                                   "txq_enabled"))
        out.append(text.rstrip())
    return "\n".join(out)
# ---- end multiqueue


def _vhostd(prefix):
    path = f"/var/run/dpdk/{prefix}/dpdk_telemetry.v2"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        s.settimeout(5)
        s.connect(path)
        s.recv(16384)  # greeting
        s.send(b"/vhostd/bridge,br0")
        b = json.loads(s.recv(1 << 20).decode())["/vhostd/bridge"]
    finally:
        s.close()
    return {"fdb": b.get("fdb_entries"), "flooded": b.get("flooded"),
            "learn_full": b.get("learn_table_full")}


def _ovs(ctl):
    run = lambda *c: subprocess.run(["ovs-appctl", "-t", ctl, *c],
                                    capture_output=True, text=True,
                                    timeout=10).stdout
    r = {}
    m = re.search(r"Current/maximum MAC entries in the table:\s*(\d+)/(\d+)",
                  run("fdb/stats-show", "vhbbr0"))
    if m:
        r["fdb"], r["fdb_max"] = int(m.group(1)), int(m.group(2))
    st = run("dpif-netdev/pmd-stats-show")
    # the pmd thread's block (the main thread has its own); --sw-lcores:
    # the pmd threads' blocks, summed
    blks = [b.split("main thread")[0] for b in st.split("pmd thread")[1:]]
    for key, name in (("upcalls", r"miss with success upcall"),
                      ("upcalls_failed", r"miss with failed upcall"),
                      ("rx", r"packets received")):
        m = [int(x.group(1)) for x in
             (re.search(name + r":\s*(\d+)", b) for b in blks) if x]
        if m:
            r[key] = sum(m)
    m = re.search(r"flows:\s*(\d+)", run("dpctl/show"))
    if m:
        r["dp_flows"] = int(m.group(1))
    return r


def probe(spec):
    """{} when the spec is empty or the switch does not answer."""
    if not spec:
        return {}
    kind, _, arg = spec.partition("=")
    try:
        return _vhostd(arg) if kind == "vhostd" else _ovs(arg)
    except (OSError, ValueError, KeyError, subprocess.SubprocessError):
        return {}


def delta(p0, p1, res):
    """Fields of a window's result from the probes around it."""
    if not p1:
        return
    res["fdb_entries"] = p1.get("fdb")
    for k in ("flooded", "learn_full", "upcalls", "upcalls_failed"):
        if p0.get(k) is not None and p1.get(k) is not None:
            res[k + "_delta"] = p1[k] - p0[k]
    if "dp_flows" in p1:
        res["dp_flows"] = p1["dp_flows"]


def main():
    if sys.argv[1] == "pcaps":
        print("\n".join(write_pcaps(sys.argv[2], int(sys.argv[3]),
                                    int(sys.argv[4]))))
    elif sys.argv[1] == "show":
        print(show(sys.argv[2]))
    else:
        print(json.dumps(probe(sys.argv[2])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
