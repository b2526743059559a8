#!/usr/bin/env python3
"""vhd-tcpgen (bench/tcpgen.c) for scripts/bench.sh --tcp, through
bench/slices.py --tcp: the same time-sliced turns as the packet-rate
contenders, with a TCP generator instead of testpmd.

One vhd-tcpgen per contender, pinned to --gen-cpu, its two
net_virtio_user ports on the switch's two sockets (mrg_rxbuf=0: one
receive buffer per frame, as vhostd offers no mergeable buffers, the same
for every switch). The contender's label says the mode: "-tso" (the
endpoints negotiate checksum and TSO offloads and send 44 x 1448-byte
super-frames) or "-mtu" (no offloads: 1514-byte segments with complete
checksums). Its counters and its one control word (the payload in flight
to inject, in MSS segments) are a small shared file in /dev/shm (the
names are in the file, tcpgen.c writes them), so reading them costs the
generator nothing; the functions below are slices.py's start_generator /
wait_links / inject / levels_of / wait_learned / measure / judge.

  tcp.py smoke SHM   print a shared file's counters (debugging)
"""
import json
import mmap
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen import CLK_TCK, busiest, cpu_times, thread_times  # noqa: E402
from procstat import proc_times, top_others  # noqa: E402

SHM_SIZE = 8192
NAMES_OFF = 2048
MAC0 = "00:00:00:00:00:01"
MAC1 = "00:00:00:00:00:02"
ST_READY, ST_ERROR, ST_EXITED = 2, 3, 4
MB = 1 << 20
# hugepage MB per generator (-m): tso's 2047 data buffers of 64 KiB are
# 134 MB, mtu's 65535 of 2 KiB 155 MB (tcpgen.c: NB_BIG_*), and 10 MB for
# the ACKs'
MEM = {"tso": 192, "mtu": 224}


def mode_of(label):
    """'tso' or 'mtu' from a contender's label (vhostd-tso, ovs-mtu...)."""
    return "tso" if label.endswith("-tso") else "mtu"


class TcpGen:
    """One vhd-tcpgen process and its shared counters (.p is the Popen,
    as gen.Testpmd's, for slices.signal_pair)."""

    def __init__(self, a):
        self.mode = mode_of(a.label)
        self.shm = f"/dev/shm/vhbtcp-{a.prefix}-{os.getpid()}"
        with open(self.shm, "wb") as f:
            f.write(bytes(SHM_SIZE))
        self.f = open(self.shm, "r+b")
        self.m = mmap.mmap(self.f.fileno(), SHM_SIZE)
        self.names = None
        self.target = 0
        srv = ",server=1" if a.server else ""
        vdev = f"queue_size=1024,mrg_rxbuf=0{srv}{a.vdev_extra}"
        argv = ["taskset", "-c", str(a.gen_cpu), a.tcpgen,
                "--lcores", f"0@{a.gen_cpu}", "--file-prefix", a.prefix,
                "--single-file-segments", "--in-memory", "--no-pci",
                "--no-telemetry", "-m", str(MEM[self.mode]),
                "--vdev", f"net_virtio_user0,path={a.sock0},mac={MAC0},"
                          f"{vdev}",
                "--vdev", f"net_virtio_user1,path={a.sock1},mac={MAC1},"
                          f"{vdev}",
                "--", "--mode", self.mode, "--shm", self.shm,
                "--mss", str(a.tcp_mss), "--segs", str(a.tcp_segs),
                "--ack-bytes", str(a.tcp_ack_bytes),
                "--link-timeout", str(int(a.link_timeout))]
        if a.tcp_check:
            argv.append("--check")
        self.log_path = a.log
        self.log = open(a.log, "a", buffering=1)
        self.log.write("# " + " ".join(argv) + "\n")
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                  stdout=self.log, stderr=subprocess.STDOUT,
                                  start_new_session=True, close_fds=True)
        if a.pidfile:
            with open(a.pidfile, "w") as f:
                f.write(f"{self.p.pid}\n")

    def read(self):
        """The counters now: {name: value}; {} before the names are in."""
        if self.names is None:
            raw = self.m[NAMES_OFF:SHM_SIZE].split(b"\0")[0].decode()
            if not raw:
                return {}
            self.names = raw.split()
        return dict(zip(self.names, struct.unpack_from(
            f"<{len(self.names)}Q", self.m, 0)))

    def set_target(self, segs):
        self.target = segs
        struct.pack_into("<Q", self.m, 8 * self.names.index("target_segs"),
                         segs)

    def tail(self, n=600):
        """What the generator said (its own lines, else the log's end)."""
        try:
            with open(self.log_path) as f:
                text = f.read()
        except OSError:
            return ""
        own = [ln for ln in text.splitlines() if ln.startswith("tcpgen:")]
        return " | ".join(own[-3:])[-n:] if own else text[-n:]

    def close(self):
        if self.m.closed:
            return
        if self.p.poll() is None:
            try:
                os.kill(self.p.pid, signal.SIGCONT)
                self.p.send_signal(signal.SIGTERM)
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
            except ProcessLookupError:
                pass
        self.log.write(f"# exit status {self.p.returncode}; counters "
                       f"{self.read()}\n")
        self.m.close()
        self.f.close()
        try:
            os.unlink(self.shm)
        except OSError:
            pass
        self.log.close()


# ---------------------------------------------------------------- slices.py
def start_generator(a):
    return TcpGen(a)


def wait_links(tp, a):
    """Until the generator says ready: links up and both directions
    learnt (vhd-tcpgen's learn()); EAL init, and in server mode (OVS) the
    switch's connection, come first."""
    deadline = time.monotonic() + a.link_timeout + 90
    while True:
        st = tp.read().get("state")
        if st == ST_READY:
            return
        if st in (ST_ERROR, ST_EXITED) or tp.p.poll() is not None:
            raise RuntimeError(f"tcpgen not ready (state {st}, exit "
                               f"{tp.p.poll()}): {tp.tail()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"tcpgen not ready after "
                               f"{a.link_timeout + 90:.0f}s (state {st}): "
                               f"{tp.tail()}")
        time.sleep(0.2)


def inject(tp, a, segs):
    """segs more MSS segments' worth of payload in flight (tcpgen injects
    whole frames: super-frames of --segs segments in tso mode)."""
    tp.set_target(tp.target + segs)


def levels_of(a):
    return [int(x) for x in a.tcp_levels.split(",") if x]


def wait_learned(tp, a):
    return {}


def measure(tp, a, interval):
    """One window: payload Gbit/s at the receiving port, and the rest."""
    sw0 = thread_times(a.sw_pid) if a.sw_pid else {}
    gen0 = thread_times(tp.p.pid)
    c0 = cpu_times()
    p0 = proc_times()
    s0 = tp.read()
    t0 = time.monotonic()
    time.sleep(interval)
    s1 = tp.read()
    t1 = time.monotonic()
    c1 = cpu_times()
    p1 = proc_times()
    sw1 = thread_times(a.sw_pid) if a.sw_pid else {}
    gen1 = thread_times(tp.p.pid)
    dt = t1 - t0
    d = {k: s1[k] - s0[k] for k in s1}
    fr = d["rx_frames"]
    cyc = d["busy_cycles"] + d["idle_cycles"]
    r = {
        "mode": tp.mode, "dt": round(dt, 3),
        "payload_gbps": d["rx_payload"] * 8 / dt / 1e9,
        "gbps": d["rx_bytes"] * 8 / dt / 1e9,  # frame bytes, as gen.py's
        "mpps": fr / dt / 1e6,                 # data frames received
        "segs_mpps": d["rx_segs"] / dt / 1e6,  # in MSS segments
        "pkts": fr, "payload_bytes": d["rx_payload"],
        "mean_size": d["rx_bytes"] / fr if fr else 0,
        "super_frac": round(d["rx_super"] / fr, 4) if fr else 0,
        "lro_frac": round(d["rx_lro"] / fr, 4) if fr else 0,
        "partial_frac": round(d["rx_csum_partial"] / fr, 4) if fr else 0,
        "acks_kpps": d["ack_rx"] / dt / 1e3,
        # loops that took over 100 us (preempted) are in neither
        "gen_busy": round(d["busy_cycles"] / cyc, 3) if cyc else None,
        "gen_stalls": d["stalls"],
        # the generator's loop time in iterations that moved frames, per
        # data frame: an upper bound of what a frame costs it
        "gen_cycles_per_pkt": d["busy_cycles"] / fr if fr else None,
        "tx_fail": d["tx_fail"] + d["ack_tx_fail"],
        "rx_other": d["rx_other"] + d["ack_rx_other"],
        "rx_bad": (d["rx_bad_ip_csum"] + d["rx_bad_tcp_csum"] +
                   d["rx_bad_len"]),
        "inj_frames": s1["inj_frames"], "inj_fail": s1["inj_fail"],
        # frames going round now (injected, less those a full ring
        # refused; the switch's own drops are in "switch")
        "inflight": s1["inj_frames"] - s1["inj_fail"] - s1["tx_fail"],
        "offloads": hex(s1["offloads"]),
    }
    if a.tcp_check:
        r.update({k: d[k] for k in ("rx_bad_ip_csum", "rx_bad_tcp_csum",
                                    "rx_bad_len")})
    dsw, cpu, comm = busiest(sw0, sw1)
    r["sw_share"] = round(dsw / CLK_TCK / dt, 3) if a.sw_pid else None
    r["sw_thread"] = f"{comm}@cpu{cpu}" if a.sw_pid else None
    dg, cpu, comm = busiest(gen0, gen1)
    r["gen_share"] = round(dg / CLK_TCK / dt, 3)
    r["gen_thread"] = f"{comm}@cpu{cpu}"
    steal = {}
    for c in (a.gen_cpu, a.sw_cpu):
        tot = c1[c][0] - c0[c][0]
        steal[c] = round((c1[c][1] - c0[c][1]) / tot, 3) if tot else 0.0
    r["steal"] = steal
    excl = {tp.p.pid, os.getppid()} | ({a.sw_pid} if a.sw_pid else set())
    r["others"] = top_others(p0, p1, dt, exclude=excl)
    if a.sw_pid and d["rx_segs"]:
        # the switch's polling core: MHz x its CPU time, per MSS segment of
        # payload (and per frame: cycles_per_pkt, as gen.py's)
        sw_cyc = a.freq_mhz * 1e6 * dsw / CLK_TCK
        r["cycles_per_seg"] = sw_cyc / d["rx_segs"]
        r["cycles_per_pkt"] = sw_cyc / fr
        r["cycles_src"] = "freq*cputime"
    return r


# ---------------------------------------------------------------- switch
# What the switch did with the offloads, read around each window as
# swstate.probe (outside it): "vhostd=FILE_PREFIX" (telemetry
# /vhostd/port,p0 and p1: the offloads in effect, super-frames received,
# super-frames it had to segment, checksums it completed, drops) or
# "ovs=OVS_DIR" (dpctl/show -s: each port's packets, errors, drops).
VHD_KEYS = ("rx_packets", "tx_packets", "rx_tso", "rx_csum_partial",
            "tx_segmented", "tx_segments", "tx_sw_csum")


def _telemetry(prefix, cmds):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    out = {}
    try:
        s.settimeout(5)
        s.connect(f"/var/run/dpdk/{prefix}/dpdk_telemetry.v2")
        s.recv(16384)  # greeting
        for c in cmds:
            s.send(c.encode())
            out[c] = json.loads(s.recv(1 << 20).decode())
    finally:
        s.close()
    return out


def probe(spec):
    """{} when there is no spec or the switch does not answer."""
    if not spec:
        return {}
    kind, _, arg = spec.partition("=")
    r = {}
    try:
        if kind == "vhostd":
            t = _telemetry(arg, ["/vhostd/port,p0", "/vhostd/port,p1"])
            for p in ("p0", "p1"):
                d = t[f"/vhostd/port,{p}"]["/vhostd/port"]
                for k, v in d.items():
                    if k in VHD_KEYS or k.startswith("drop_"):
                        r[f"{p}_{k}"] = v
                r[f"{p}_offloads_active"] = d.get("offloads_active", "")
        elif kind == "ovs":
            # the datapath's ports, read live (the Interface table's
            # statistics are refreshed every 5 s only)
            out = subprocess.run(
                ["ovs-appctl", "-t", f"{arg}/ovs-vswitchd.ctl", "dpctl/show",
                 "-s"], capture_output=True, text=True, timeout=15).stdout
            port = None
            for line in out.splitlines():
                m = re.match(r"\s*port \d+: (\S+)", line)
                if m:
                    port = m.group(1)
                    continue
                # errors: "?" on vhost ports
                m = re.match(r"\s*([RT]X) packets:(\d+) errors:(\S+) "
                             r"dropped:(\d+)", line)
                if m and port in ("p0", "p1"):
                    d = m.group(1).lower()
                    r[f"{port}_{d}_packets"] = int(m.group(2))
                    r[f"{port}_{d}_dropped"] = int(m.group(4))
                    if m.group(3).isdigit():
                        r[f"{port}_{d}_errors"] = int(m.group(3))
    except (OSError, ValueError, KeyError, subprocess.SubprocessError):
        return r
    return r


def delta(p0, p1, res):
    """The window's counters of the switch (res["switch"]: only those that
    moved) and, vhostd, the offloads in effect on each port."""
    if not p1:
        return
    sw = {k: p1[k] - p0[k] for k in p1
          if isinstance(p1[k], int) and isinstance(p0.get(k), int) and
          p1[k] != p0[k]}
    res["switch"] = sw
    for p in ("p0", "p1"):
        if f"{p}_offloads_active" in p1:
            res[f"{p}_offloads_active"] = p1[f"{p}_offloads_active"]


def judge(res, a):
    """Disturbed (left out) when a polling thread was short of CPU, steal,
    bad frames or no traffic; notes (not disturbed) when the generator
    was the busier side or a tso contender's frames came back cut."""
    why = []
    if res.get("sw_share") is not None and res["sw_share"] < a.min_share:
        why.append(f"switch thread got {res['sw_share']:.1%} of CPU{a.sw_cpu}")
    if res["gen_share"] < a.min_share:
        why.append(f"generator thread got {res['gen_share']:.1%} of "
                   f"CPU{a.gen_cpu}")
    for c, s in res["steal"].items():
        if s > a.max_steal:
            why.append(f"steal {s:.1%} on CPU{c}")
    if res["rx_bad"]:
        why.append(f"{res['rx_bad']} bad frames (--tcp-check)")
    if why and res["others"]:
        why.append("busy: " + ", ".join(res["others"]))
    if res["pkts"] == 0:
        why.append("no traffic")
    notes = []
    if res.get("gen_busy") is not None and res["gen_busy"] > 0.9:
        # the generator found frames to move in > 90 % of its loop time:
        # it, not the switch, may set the rate
        notes.append(f"generator busy {res['gen_busy']:.0%}")
    if res["mode"] == "tso" and res["pkts"] and res["super_frac"] < 0.9:
        notes.append(f"only {res['super_frac']:.0%} of the frames "
                     f"arrived as super-frames")
    sw = res.get("switch", {})
    work = {k: v for k, v in sw.items()
            if k.endswith(("tx_segmented", "tx_sw_csum")) or
            "drop" in k or "dropped" in k}
    if work:
        notes.append("switch: " + ", ".join(f"{k} {v}"
                                            for k, v in sorted(work.items())))
    res["notes"] = notes
    res["disturbed"] = bool(why)
    res["why"] = why


def add_args(ap):
    """slices.py's --tcp options."""
    ap.add_argument("--tcp", action="store_true",
                    help="TCP payload throughput with vhd-tcpgen (the "
                    "contender's label ends in -tso or -mtu)")
    ap.add_argument("--tcpgen", default="vhd-tcpgen")
    ap.add_argument("--tcp-levels", default="256,512,1024",
                    help="cumulative payload in flight, in MSS segments")
    ap.add_argument("--tcp-mss", type=int, default=1448)
    ap.add_argument("--tcp-segs", type=int, default=44,
                    help="segments per super-frame (tso)")
    ap.add_argument("--tcp-ack-bytes", type=int, default=65536,
                    help="one ACK per this much payload received (0: none)")
    ap.add_argument("--tcp-check", action="store_true",
                    help="verify every received frame (functional runs)")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "smoke":
        with open(sys.argv[2], "rb") as f:
            m = f.read()
        names = m[NAMES_OFF:].split(b"\0")[0].decode().split()
        print(dict(zip(names, struct.unpack_from(f"<{len(names)}Q", m, 0))))
        return 0
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main())
