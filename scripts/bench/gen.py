#!/usr/bin/env python3
"""Traffic generator driver for scripts/bench.sh.

Runs one dpdk-testpmd with two net_virtio_user ports (io forwarding) under a
pty, injects packets with `start tx_first N` so they circulate
generator -> switch -> generator, ramps the injected amount until the rate
plateaus, then measures the forwarded rate over a fixed interval from the
port packet/byte counters.  Prints one JSON object on stdout.
--flows N: instead of tx_first, two net_pcap ports replay N MAC pairs per
direction into the virtio_user ports (swstate.py, start_generator), and the
switch's state is read around the measurement (--probe).
--queues N (multiqueue): both virtio_user ports get N queue pairs and the
pcap ports replay frames on every queue (replay() below, also without
--flows: the port MACs), or with --mq-gen circulate tx_first injects on
every queue; --show reads the switch's rx queue placement.

Noise accounting: CPU time of the busiest thread of the switch process and of
the generator process over the measurement interval (from /proc/PID/task),
and steal time of both CPUs (/proc/stat).  A run is marked "disturbed" when
either busy thread got less than --min-share of the interval or steal is
above --max-steal.
"""
import argparse
import json
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from procstat import proc_times, top_others  # noqa: E402
import swstate  # noqa: E402
import vxlan  # noqa: E402  --vxlan (bench.sh): dir encap / decap

CLK_TCK = os.sysconf("SC_CLK_TCK")
PROMPT = "testpmd> "
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")
MAC0 = "00:00:00:00:00:01"   # MAC of generator port 0 (virtio_user0)
MAC1 = "00:00:00:00:00:02"   # MAC of generator port 1 (virtio_user1)
IMIX = ((64, 7), (570, 4), (1518, 1))   # classic simple IMIX 7:4:1


class Testpmd:
    """dpdk-testpmd -i under a pty; a thread drains its output to a log."""

    def __init__(self, argv, log_path, pidfile=None):
        master, slave = os.openpty()
        self.log = open(log_path, "a", buffering=1)
        self.log.write("# " + " ".join(argv) + "\n")
        self.p = subprocess.Popen(argv, stdin=slave, stdout=slave,
                                  stderr=slave, start_new_session=True,
                                  close_fds=True)
        os.close(slave)
        if pidfile:
            with open(pidfile, "w") as f:
                f.write(f"{self.p.pid}\n")
        self.fd = master
        self.buf = ""
        self.cv = threading.Condition()
        self.eof = False
        threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self):
        while True:
            try:
                r, _, _ = select.select([self.fd], [], [], 0.5)
                if not r:
                    if self.p.poll() is not None:
                        break
                    continue
                data = os.read(self.fd, 65536)
            except OSError:
                break
            if not data:
                break
            text = ANSI.sub("", data.decode("utf-8", "replace"))
            self.log.write(text)
            with self.cv:
                self.buf += text
                self.cv.notify_all()
        with self.cv:
            self.eof = True
            self.cv.notify_all()

    def wait_for(self, needle, timeout):
        """Wait until `needle` shows up in the output; consume up to it."""
        deadline = time.monotonic() + timeout
        with self.cv:
            while True:
                i = self.buf.find(needle)
                if i >= 0:
                    out = self.buf[:i]
                    self.buf = self.buf[i + len(needle):]
                    return out
                left = deadline - time.monotonic()
                if left <= 0 or self.eof:
                    raise RuntimeError(
                        f"testpmd: no {needle!r} within {timeout}s "
                        f"(exited={self.p.poll()}); tail: {self.buf[-600:]!r}")
                self.cv.wait(min(left, 0.5))

    def cmd(self, line, timeout=20):
        self.log.write(f"\n#>>> {line}\n")
        os.write(self.fd, (line + "\n").encode())
        return self.wait_for(PROMPT, timeout)

    def close(self):
        if self.p.poll() is None:
            try:
                os.write(self.fd, b"stop\nquit\n")
            except OSError:
                pass
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.send_signal(signal.SIGTERM)
                try:
                    self.p.wait(5)
                except subprocess.TimeoutExpired:
                    self.p.kill()
                    self.p.wait()
        try:
            os.close(self.fd)
        except OSError:
            pass


STAT_RE = re.compile(
    r"NIC statistics for port (\d+).*?RX-packets:\s*(\d+).*?RX-bytes:\s*(\d+)"
    r".*?TX-packets:\s*(\d+).*?TX-bytes:\s*(\d+)", re.S)


def port_stats(tp):
    out = tp.cmd("show port stats all")
    st = {}
    for m in STAT_RE.finditer(out):
        st[int(m.group(1))] = tuple(int(m.group(i)) for i in range(2, 6))
    if 0 not in st or 1 not in st:
        raise RuntimeError("cannot parse port stats: " + out[-500:])
    return st  # port -> (rx_pkts, rx_bytes, tx_pkts, tx_bytes)


def thread_times(pid):
    """tid -> (utime+stime ticks, last cpu, comm)."""
    res = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return res
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                s = f.read()
        except OSError:
            continue
        comm = s[s.find("(") + 1:s.rfind(")")]
        rest = s[s.rfind(")") + 2:].split()
        res[tid] = (int(rest[11]) + int(rest[12]), int(rest[36]), comm)
    return res


def cpu_times():
    res = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                p = line.split()
                v = [int(x) for x in p[1:]]
                res[int(p[0][3:])] = (sum(v[:8]), v[7])  # total, steal
    return res


def busiest(t0, t1):
    best = (0, None, "")
    for tid, (ticks, cpu, comm) in t1.items():
        d = ticks - t0.get(tid, (0,))[0]
        if d > best[0]:
            best = (d, cpu, comm)
    return best


def perf_cycles_ok(cpu):
    try:
        r = subprocess.run(["perf", "stat", "-x,", "-e", "cycles", "-C",
                            str(cpu), "--", "sleep", "0.1"],
                           capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0 and re.search(r"^\d+,", r.stderr, re.M) is not None


def measure(tp, a, interval):
    perf = None
    if a.perf:
        perf = subprocess.Popen(["perf", "stat", "-x,", "-e", "cycles", "-C",
                                 str(a.sw_cpu), "--", "sleep", str(interval)],
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
    sw0 = thread_times(a.sw_pid) if a.sw_pid else {}
    gen0 = thread_times(tp.p.pid)
    c0 = cpu_times()
    p0 = proc_times()
    s0 = port_stats(tp)
    t0 = time.monotonic()
    time.sleep(interval)
    s1 = port_stats(tp)
    t1 = time.monotonic()
    c1 = cpu_times()
    p1 = proc_times()
    sw1 = thread_times(a.sw_pid) if a.sw_pid else {}
    gen1 = thread_times(tp.p.pid)
    dt = t1 - t0
    pk = sum(s1[p][0] - s0[p][0] for p in (0, 1))
    by = sum(s1[p][1] - s0[p][1] for p in (0, 1))
    r = {
        "dt": round(dt, 3), "pkts": pk, "bytes": by,
        "mpps": pk / dt / 1e6,
        "gbps": by * 8 / dt / 1e9,
        "mean_size": (by / pk) if pk else 0,
        "per_port_rx": [s1[p][0] - s0[p][0] for p in (0, 1)],
        "per_port_tx": [s1[p][2] - s0[p][2] for p in (0, 1)],
    }
    if vx_dir(a):
        # ---- vxlan: what the generator offered (the replaying pcap
        # port's rx), what the switch took of it (the injecting port's tx;
        # the rest its full ring refused) and what came out: taken < 1 is
        # a switch-bound window, taken ~1 a generator-bound one
        src, inj = (2, 0) if a.dir == "encap" else (3, 1)
        far = 1 - inj
        if src in s0 and src in s1:
            off = s1[src][0] - s0[src][0]
            tx = s1[inj][2] - s0[inj][2]
            rx = s1[far][0] - s0[far][0]
            r["offered_mpps"] = off / dt / 1e6
            r["taken"] = round(tx / off, 4) if off else None
            r["delivered"] = round(rx / tx, 4) if tx else None
    d, cpu, comm = busiest(sw0, sw1)
    r["sw_share"] = round(d / CLK_TCK / dt, 3) if a.sw_pid else None
    r["sw_thread"] = f"{comm}@cpu{cpu}" if a.sw_pid else None
    if mq(a) and a.sw_pid:
        # multiqueue: every busy thread of the switch (its lcores / PMDs)
        r["sw_threads"] = busy_threads(sw0, sw1, dt)
    d, cpu, comm = busiest(gen0, gen1)
    r["gen_share"] = round(d / CLK_TCK / dt, 3)
    r["gen_thread"] = f"{comm}@cpu{cpu}"
    steal = {}
    for c in (a.gen_cpu, a.sw_cpu):
        tot = c1[c][0] - c0[c][0]
        steal[c] = round((c1[c][1] - c0[c][1]) / tot, 3) if tot else 0.0
    r["steal"] = steal
    excl = {tp.p.pid, os.getppid()} | ({a.sw_pid} if a.sw_pid else set())
    r["others"] = top_others(p0, p1, dt, exclude=excl)
    sw_ticks = None
    if a.sw_pid:
        sw_ticks = busiest(sw0, sw1)[0]
        if (a.sw_lcores or 1) > 1:
            # several datapath lcores: the CPU time of all the threads
            sw_ticks = sum(t - sw0.get(tid, (0,))[0]
                           for tid, (t, _, _) in sw1.items())
    if perf is not None:
        _, err = perf.communicate()
        m = re.search(r"^(\d+),", err, re.M)
        if m and pk:
            r["cycles_per_pkt"] = int(m.group(1)) / pk
            r["cycles_src"] = "perf"
    if "cycles_per_pkt" not in r and pk and sw_ticks is not None:
        # switch core polls all the time: cycles = freq x CPU time of its
        # datapath thread over the interval
        r["cycles_per_pkt"] = a.freq_mhz * 1e6 * (sw_ticks / CLK_TCK) / pk
        r["cycles_src"] = "freq*cputime"
        if (a.sw_lcores or 1) > 1:
            r["cycles_src"] = "freq*cputime(all threads)"
    return r


# ---- multiqueue (--queues, --sw-lcores)
def mq(a):
    """A multiqueue case: --queues or --sw-lcores given."""
    return (getattr(a, "queues", None) is not None or
            getattr(a, "sw_lcores", None) is not None)


def replay(a):
    """The generator replays pcaps (open loop) instead of circulating
    tx_first's packets: --flows, or --queues with --mq-gen replay (io
    forwarding keeps a packet's queue, so circulating packets end up on
    the queues the switch transmits on: one per switch lcore), or a
    --vxlan direction (vx_dir)."""
    return bool(a.flows) or vx_dir(a) or (
        getattr(a, "queues", None) is not None and
        getattr(a, "mq_gen", "replay") == "replay")


# ---- vxlan (bench.sh --vxlan, issue 15)
def vx_dir(a):
    """A --vxlan case: dir encap (guest -> switch -> tunnel, frames into
    generator port 0, counted on port 1, the underlay) or decap (VXLAN
    frames into port 1, counted on port 0, the guest)."""
    return getattr(a, "dir", "") in ("encap", "decap")


def vx_tunnel(a):
    """The contender tunnels (its name ends in -vxlan): VXLAN frames on the
    underlay side; otherwise (-plain, wire) the same inner frames bare."""
    return a.label.endswith("-vxlan")


def vx_expected_size(a, port):
    """The frame size the generator must receive on PORT (0 guest, 1
    underlay) in a --vxlan case."""
    return int(a.size) + (vxlan.OVERHEAD if port == 1 and vx_tunnel(a)
                          else 0)
# ---- end vxlan


def busy_threads(t0, t1, dt, min_share=0.05):
    """'comm@cpuN share' of the threads that used >= min_share of a CPU."""
    out = []
    for tid, (ticks, cpu, comm) in sorted(t1.items()):
        share = (ticks - t0.get(tid, (ticks,))[0]) / CLK_TCK / dt
        if share >= min_share:
            out.append(f"{comm}@cpu{cpu} {share:.0%}")
    return out


STREAM_RE = re.compile(
    r"Forward Stats for RX Port=\s*(\d+)/Queue=\s*(\d+) -> TX Port=\s*(\d+)"
    r"/Queue=\s*(\d+).*?RX-packets:\s*(\d+)\s+TX-packets:\s*(\d+)", re.S)


def queue_stats(tp, a):
    """--queues: the generator's per-stream counters (show fwd stats all,
    since forwarding started): packets it sent into the switch on each
    virtio_user tx queue (the guest's tx queue, the switch's rx queue) and
    received from it on each rx queue. {"into_switch": {"p0": [per queue]},
    "from_switch": {...}}; the full output is in the generator log."""
    out = tp.cmd("show fwd stats all")
    q = a.queues or 1
    res = {"into_switch": {f"p{p}": [0] * q for p in (0, 1)},
           "from_switch": {f"p{p}": [0] * q for p in (0, 1)}}
    for m in STREAM_RE.finditer(out):
        rxp, rxq, txp, txq, rx, tx = (int(x) for x in m.groups())
        if txp in (0, 1) and txq < q:
            res["into_switch"][f"p{txp}"][txq] += tx
        if rxp in (0, 1) and rxq < q:
            res["from_switch"][f"p{rxp}"][rxq] += rx
    return res


def show_switch(tp, a, label):
    """--show: the switch's rx queue placement and load (swstate.show),
    into the generator log and on stderr."""
    if not getattr(a, "show", ""):
        return
    text = swstate.show(a.show)
    tp.log.write(f"\n# {label}: switch rx queues ({a.show})\n{text}\n")
    print(f"[bench] {label} switch rx queues:\n" +
          "\n".join("    " + l for l in text.splitlines()),
          file=sys.stderr, flush=True)
# ---- end multiqueue


def inject(tp, a, bursts):
    """Inject `bursts` bursts (of 32) on port 0 only (oneway) or both ports.
    --flows: nothing to inject, the pcap ports replay for ever; start
    forwarding once."""
    if replay(a):
        if not getattr(tp, "started", False):
            tp.cmd("start")
            tp.started = True
        return
    if a.size == "imix":
        tot = sum(w for _, w in IMIX)
        parts = [(sz, max(1, round(bursts * w / tot))) for sz, w in IMIX]
    else:
        parts = [(int(a.size), bursts)]
    for sz, n in parts:
        tp.cmd("stop")
        if a.dir == "oneway":
            tp.cmd("set nbport 1")
        tp.cmd(f"set txpkts {sz}")
        tp.cmd(f"start tx_first {n}")
        if a.dir == "oneway":
            tp.cmd("stop")
            tp.cmd("set nbport 2")
            tp.cmd("start")


def levels_of(a):
    """Cumulative injection levels; --flows has one, 0 (nothing injected)."""
    return [0] if replay(a) else [int(x) for x in a.bursts.split(",") if x]


def wait_learned(tp, a):
    """--flows with a probe (learning bridges): once forwarding runs, wait
    (at most a.learn_timeout s) until the switch's MAC table holds every
    A_i and B_i and, for OVS, packets no longer go to the slow path (fewer
    upcalls than 1 % of the packets over the last second: its datapath
    has a flow for each pair, which takes OVS a while, its flow limit
    starting at 10000 and growing by 1000 per revalidation), so the windows
    measure the steady state of known unicast. The time it took goes in
    the result (learn_s, or learn_timeout when it never got there)."""
    if not (a.flows and a.probe):
        return {}
    t0 = time.monotonic()
    want = 2 * a.flows
    prev = {}
    while True:
        p = swstate.probe(a.probe)
        done = (p.get("fdb") or 0) >= want
        if done and "upcalls" in p:
            rx = p.get("rx", 0) - prev.get("rx", 0)
            done = ("upcalls" in prev and rx > 0 and
                    p["upcalls"] - prev["upcalls"] < 0.01 * rx)
        if done:
            return {"learn_s": round(time.monotonic() - t0, 1)}
        if time.monotonic() - t0 > a.learn_timeout:
            return {"learn_timeout": a.learn_timeout,
                    "learned_at_timeout": p.get("fdb")}
        prev = p
        time.sleep(1.0)


def start_generator(a):
    """The generator testpmd for switch sockets a.sock0/a.sock1, pinned to
    a.gen_cpu, with its own file prefix and no hugepage files.
    --flows N: two more ports, net_pcap replaying the frames of
    swstate.write_pcaps for ever (infinite_rx; what is sent to them is
    dropped), io-forwarded into the virtio_user ports: port list 2,0,3,1
    pairs pcap a (port 2) with virtio_user0 (port 0) and pcap b (3) with
    virtio_user1 (1). The replayed frames are held in the mbuf pool, so
    the pool grows by 2N mbufs (default size: smaller ones fail
    virtio_user's rx check against the 1500 B MTU)."""
    srv = ",server=1" if a.server else ""
    extra_eal, extra_app, mem, mbufs = [], [], 512, 32768
    vq = ""
    mac1 = MAC1
    if vx_dir(a):
        # ---- vxlan: port 2 (net_pcap0) feeds the guest port 0, port 3
        # (net_pcap1) the underlay port 1 (--portlist=2,0,3,1): the
        # direction measured replays for ever (infinite_rx), the other
        # side sends its file once (VX_LEARN frames at `start`), so the
        # switch learns the MAC of that side (vhostd cannot take a static
        # FDB entry on a vxlan port) without loading it; what the
        # generator receives is io-forwarded to the pcap ports, which
        # drop it
        size = int(a.size)
        g = vxlan.write_pcap(a.pcap_dir, "encap", size,
                             1 if a.dir == "encap" else vxlan.VX_LEARN)
        u = vxlan.write_pcap(a.pcap_dir,
                             "decap" if vx_tunnel(a) else "plain", size,
                             1 if a.dir == "decap" else vxlan.VX_LEARN)
        inf = (",infinite_rx=1" if a.dir == "encap" else "",
               ",infinite_rx=1" if a.dir == "decap" else "")
        extra_eal = ["--vdev", f"net_pcap0,rx_pcap={g}{inf[0]}",
                     "--vdev", f"net_pcap1,rx_pcap={u}{inf[1]}"]
        # 1518-byte inner frames are 1568 in VXLAN
        extra_app = ["--portlist=2,0,3,1", "--max-pkt-len=1600"]
        mac1 = vxlan.VTEP_MAC
    elif a.flows and getattr(a, "queues", None) is None:
        pa, pb = swstate.write_pcaps(a.pcap_dir, a.flows, int(a.size))
        extra_eal = ["--vdev", f"net_pcap0,rx_pcap={pa},infinite_rx=1",
                     "--vdev", f"net_pcap1,rx_pcap={pb},infinite_rx=1"]
        mbufs += 2 * a.flows
        # ~2.5 KB per default mbuf (2176 B data room, header, pool)
        mem += 2 * a.flows * 2560 // (1 << 20) + 1
        extra_app = ["--portlist=2,0,3,1"]
    elif replay(a):
        # ---- multiqueue: one pcap per queue and port (rx_pcap given N
        # times: N rx queues, and as many tx queues that drop), --rxq and
        # --txq N on every port; the virtio_user rings of N queues
        # (2 ports x N x (rx + tx) x 1024) take more mbufs above 4
        q = a.queues
        la, lb = swstate.write_queue_pcaps(a.pcap_dir, a.flows, int(a.size),
                                           q, MAC0, MAC1)
        extra_eal = ["--vdev", "net_pcap0," + ",".join(
                         f"rx_pcap={p}" for p in la) + ",infinite_rx=1",
                     "--vdev", "net_pcap1," + ",".join(
                         f"rx_pcap={p}" for p in lb) + ",infinite_rx=1"]
        held = 2 * max(a.flows, q)
        mbufs += held + max(0, q - 4) * 4 * 2048
        mem += (mbufs - 32768) * 2560 // (1 << 20) + 1
        extra_app = ["--portlist=2,0,3,1"]
    if getattr(a, "queues", None) is not None and a.queues > 1:
        # --mq-gen circulate: tx_first sends on every queue, io forwarding
        # keeps each packet's queue
        vq = f",queues={a.queues}"
        extra_app += [f"--rxq={a.queues}", f"--txq={a.queues}"]
        if not replay(a) and a.queues > 4:
            mbufs += (a.queues - 4) * 4 * 2048
            mem += (mbufs - 32768) * 2560 // (1 << 20) + 1
        # ---- end multiqueue
    argv = ["taskset", "-c", str(a.gen_cpu), "stdbuf", "-oL", a.testpmd,
            "--lcores", f"(0,1)@{a.gen_cpu}", "--file-prefix", a.prefix,
            "--single-file-segments", "--in-memory", "--no-pci",
            "--no-telemetry", "-m", str(mem),
            "--vdev", f"net_virtio_user0,path={a.sock0},queue_size=1024,"
                      f"mac={MAC0}{srv}{vq}{a.vdev_extra}",
            "--vdev", f"net_virtio_user1,path={a.sock1},queue_size=1024,"
                      f"mac={mac1}{srv}{vq}{a.vdev_extra}",
            *extra_eal,
            "--", "-i", "--nb-cores=1", "--forward-mode=io", "--no-flush-rx",
            "--rxd=1024", "--txd=1024", "--burst=32",
            f"--total-num-mbufs={mbufs}",
            f"--eth-peer=0,{MAC1}", f"--eth-peer=1,{MAC0}", *extra_app]
    return Testpmd(argv, a.log, a.pidfile)


def wait_links(tp, a):
    """Wait for the prompt and both links up, then select io forwarding."""
    tp.wait_for(PROMPT, 90)
    deadline = time.monotonic() + a.link_timeout
    while True:
        ups = [("Link status: up" in tp.cmd(f"show port info {p}"))
               for p in (0, 1)]
        if all(ups):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"generator links not up: {ups}")
        time.sleep(0.5)
    tp.cmd("set fwd io")


def judge(res, a):
    """Mark a measurement disturbed (res["why"] says why): a busy thread
    short of CPU, steal, a failed one-way check or no traffic."""
    why = []
    if res.get("sw_share") is not None and res["sw_share"] < a.min_share:
        why.append(f"switch thread got {res['sw_share']:.1%} of CPU{a.sw_cpu}")
    gen_min = a.min_share
    if getattr(a, "gen_min_share", None) is not None:
        gen_min = a.gen_min_share  # multiqueue: a switch lcore shares its CPU
    if res["gen_share"] < gen_min:
        why.append(f"generator thread got {res['gen_share']:.1%} of CPU{a.gen_cpu}")
    for c, s in res["steal"].items():
        if s > a.max_steal:
            why.append(f"steal {s:.1%} on CPU{c}")
    if a.dir == "oneway":
        # one-way: nothing may come back on generator port 0
        if res["per_port_rx"][0] > 0.01 * max(1, res["per_port_rx"][1]):
            why.append("one-way check failed (rx on port 0)")
    if vx_dir(a):
        # ---- vxlan: everything arrives on the far side, and in frames of
        # the size it must have there (encapsulated: 50 B more)
        far = 1 if a.dir == "encap" else 0
        if res["per_port_rx"][1 - far] > 0.01 * max(1, res["per_port_rx"][far]):
            why.append(f"{a.dir} check failed (rx on port {1 - far})")
        want = vx_expected_size(a, far)
        rx = res["per_port_rx"][far]
        if rx and abs(res["mean_size"] - want) > 1:
            why.append(f"{a.dir} check failed (frames of "
                       f"{res['mean_size']:.1f} B, expected {want})")
        # the guest's frames, whatever crossed the underlay
        res["inner_gbps"] = rx * int(a.size) * 8 / res["dt"] / 1e9
    if a.flows and "flooded_delta" in res and res.get("pkts"):
        # vhostd floods what it has not learned: a learning switch
        # measured here should flood (next to) nothing
        res["flood_frac"] = round(res["flooded_delta"] / res["pkts"], 4)
    if a.flows and "upcalls_delta" in res and res.get("pkts"):
        res["upcall_frac"] = round(res["upcalls_delta"] / res["pkts"], 4)
    if why and res["others"]:
        why.append("busy: " + ", ".join(res["others"]))
    if res["pkts"] == 0:
        why.append("no traffic")
    res["disturbed"] = bool(why)
    res["why"] = why


def add_case_args(ap):
    """The options of the --flows and --idle-ports dimensions (gen.py and
    slices.py)."""
    ap.add_argument("--flows", type=int, default=0,
                    help="replay N MAC pairs per direction from pcaps "
                    "instead of tx_first (0: tx_first, one pair)")
    ap.add_argument("--pcap-dir", default="/tmp",
                    help="--flows: where the pcaps are written")
    ap.add_argument("--idle-ports", type=int, default=None,
                    help="only recorded: idle ports the switch has")
    ap.add_argument("--learn-timeout", type=float, default=120,
                    help="--flows: max wait for the switch to learn 2N MACs")
    ap.add_argument("--probe", default="",
                    help="vhostd=FILE_PREFIX or ovs=UNIXCTL: switch state "
                    "read around each window (swstate.py)")
    # ---- multiqueue
    ap.add_argument("--queues", type=int, default=None,
                    help="queue pairs of each virtio_user port, pcap frames "
                    "replayed on every queue (off: tx_first, one queue)")
    ap.add_argument("--mq-gen", choices=("replay", "circulate"),
                    default="replay",
                    help="--queues: replay pcaps on every queue (open "
                    "loop) or circulate tx_first's packets")
    ap.add_argument("--sw-lcores", type=int, default=None,
                    help="recorded; above 1 the switch's cycles are the CPU "
                    "time of all its threads (no perf)")
    ap.add_argument("--gen-min-share", type=float, default=None,
                    help="the generator's CPU share below which a window "
                    "is disturbed (default --min-share; lower when a "
                    "switch lcore shares its CPU)")
    # ---- end multiqueue


def case_fields(a):
    """The result fields naming the case beyond size and direction (only
    when set, so default runs write what they always did)."""
    r = {}
    if a.flows:
        r["flows"] = a.flows
    if a.idle_ports is not None:
        r["idle_ports"] = a.idle_ports
    if a.queues is not None:
        r["queues"] = a.queues
    if a.sw_lcores is not None:
        r["sw_lcores"] = a.sw_lcores
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--label", required=True)
    ap.add_argument("--sock0", required=True)
    ap.add_argument("--sock1", required=True)
    ap.add_argument("--server", action="store_true",
                    help="virtio_user is the vhost-user server (OVS client ports)")
    ap.add_argument("--prefix", default="vhbgen")
    ap.add_argument("--vdev-extra", default="",
                    help="appended to each net_virtio_user devargs, e.g. "
                    "',packed_vq=1'")
    ap.add_argument("--gen-cpu", type=int, default=0)
    ap.add_argument("--sw-cpu", type=int, default=1)
    ap.add_argument("--sw-pid", type=int, default=0)
    ap.add_argument("--size", default="64", help="frame size (no FCS) or imix")
    ap.add_argument("--dir", default="both",
                    choices=("both", "oneway", "encap", "decap"))
    ap.add_argument("--bursts", default="32,64,128")
    ap.add_argument("--ramp-interval", type=float, default=2.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--interval", type=float, default=5.0)
    ap.add_argument("--pick", choices=("best", "last"), default="best",
                    help="report the best injection level (each measured "
                    "for --interval) or the last one")
    ap.add_argument("--freq-mhz", type=float, default=0)
    ap.add_argument("--min-share", type=float, default=0.97)
    ap.add_argument("--max-steal", type=float, default=0.02)
    ap.add_argument("--link-timeout", type=float, default=30)
    ap.add_argument("--log", default="/dev/null")
    ap.add_argument("--pidfile")
    ap.add_argument("--testpmd", default="dpdk-testpmd")
    ap.add_argument("--rep", type=int, default=0)
    ap.add_argument("--attempt", type=int, default=0)
    ap.add_argument("--show", default="",
                    help="vhostd=VHOSTCTL,CONTROL_SOCKET or ovs=UNIXCTL: "
                    "log the switch's rx queue placement after the ramp")
    add_case_args(ap)
    a = ap.parse_args()
    # perf counts --sw-cpu only: not with several switch lcores
    a.perf = (a.sw_pid and (a.sw_lcores or 1) == 1 and
              perf_cycles_ok(a.sw_cpu))

    res = {"label": a.label, "size": a.size, "dir": a.dir, "rep": a.rep,
           "attempt": a.attempt, "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
           **case_fields(a)}
    tp = start_generator(a)
    try:
        wait_links(tp, a)
        ramp = []
        injected = 0
        levels = levels_of(a)
        best = None
        for i, lvl in enumerate(levels):
            inject(tp, a, lvl - injected)
            injected = lvl
            time.sleep(a.warmup if i == 0 else 1.0)
            if i == 0:
                res.update(wait_learned(tp, a))
                p0 = swstate.probe(a.probe)
            last = (i == len(levels) - 1)
            full = last or a.pick == "best"
            m = measure(tp, a, a.interval if full else a.ramp_interval)
            m["level"] = lvl
            ramp.append((lvl, round(m["mpps"], 3)))
            if a.pick == "best" and (best is None or m["mpps"] > best["mpps"]):
                best = m
        # best: the rate at the injection level where the switch does
        # best (every level measured over the same window); last: at the
        # largest level
        res.update(best if a.pick == "best" else m)
        res["mpps_last"] = m["mpps"]
        res["pick"] = a.pick
        res["ramp"] = ramp
        # plateau: the rate stopped rising; the largest injection must
        # not beat the best rate at the smaller ones by more than 3 %
        prev = max((m_ for _, m_ in ramp[:-1]), default=0)
        res["plateau"] = prev == 0 or ramp[-1][1] / prev < 1.03
        # --flows: over all levels (one), not only the reported one
        swstate.delta(p0, swstate.probe(a.probe), res)
        if mq(a):
            show_switch(tp, a, a.label)
            if (a.queues or 1) > 1:
                res["gen_queues"] = queue_stats(tp, a)
                print(f"[bench] {a.label}: generator packets per queue, "
                      f"into the switch {res['gen_queues']['into_switch']}, "
                      f"from it {res['gen_queues']['from_switch']}",
                      file=sys.stderr, flush=True)
        judge(res, a)
    except Exception as e:  # report, never hang the harness
        res.update({"error": str(e)[:800], "disturbed": True,
                    "why": ["error"]})
    finally:
        tp.close()
    print(json.dumps(res), flush=True)
    return 0 if "error" not in res else 1


if __name__ == "__main__":
    sys.exit(main())
