# SPDX-License-Identifier: BSD-3-Clause
"""Test harness for vhostd: start vhostd and testpmd "guests", build and
compare frames, read counters over telemetry, wait on conditions.

Every DPDK process gets its own --file-prefix and every test its own
directory, so tests may run side by side. Everything started is stopped and
removed in cleanup(), including hugepage files and /var/run/dpdk dirs.
"""
import glob
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
VHOSTD = os.environ.get("VHOSTD", os.path.join(ROOT, "build", "src", "vhostd"))
VHOSTCTL = os.environ.get("VHOSTCTL", os.path.join(os.path.dirname(VHOSTD),
                                                   "vhostctl"))
TESTPMD = os.environ.get("TESTPMD", "dpdk-testpmd")
RUNTIME = "/var/run/dpdk"


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def wait_until(fn, timeout=20.0, what="condition", interval=0.05):
    """Poll FN until it returns a true value; fail after TIMEOUT seconds."""
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        try:
            last = fn()
        except (OSError, ValueError, KeyError, TypeError) as e:
            last = e
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
    raise Failure("timed out after %.0fs waiting for %s (last: %r)" %
                  (timeout, what, last))


def wait_stable(fn, what, timeout=10.0, interval=0.1):
    """FN()'s value once two calls INTERVAL apart return the same (e.g.
    vhostd's fds: a telemetry query's socket closes a little after the
    reply)."""
    prev = [None]

    def stable():
        cur = fn()
        same = cur == prev[0]
        prev[0] = cur
        return same
    wait_until(stable, timeout, what, interval=interval)
    return fn()


def fd_targets(pid, fds=None):
    """{fd: what it points to} for process PID's fds (all, or FDS); fds
    closed meanwhile are left out."""
    out = {}
    for fd in (os.listdir("/proc/%d/fd" % pid) if fds is None else fds):
        try:
            out[str(fd)] = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            pass
    return out


def fd_baseline(pid):
    """(count, {fd: target}) of process PID's fds once the count is stable
    (a telemetry query's socket closes a little after its reply)."""
    n = wait_stable(lambda: len(os.listdir("/proc/%d/fd" % pid)),
                    "fds of %d to settle" % pid, interval=0.2)
    return n, fd_targets(pid)


def wait_fds_back(pid, base, timeout=10, what=""):
    """Wait until PID has no more fds than at BASE (fd_baseline); the
    failure names the new ones."""
    n0, links0 = base
    try:
        wait_until(lambda: len(os.listdir("/proc/%d/fd" % pid)) <= n0,
                   timeout, "fds back to %d%s" % (n0, what))
    except Failure:
        raise Failure("fds of %d not back to %d%s: new %s" % (
            pid, n0, what, sorted(set(fd_targets(pid).items()) -
                                  set(links0.items())))) from None


def setup_hugepages(pages=1024):
    os.makedirs("/dev/hugepages", exist_ok=True)
    if subprocess.call(["mountpoint", "-q", "/dev/hugepages"]) != 0:
        subprocess.check_call(["mount", "-t", "hugetlbfs", "nodev",
                               "/dev/hugepages"])
    with open("/proc/sys/vm/nr_hugepages") as f:
        have = int(f.read())
    if have < pages:
        with open("/proc/sys/vm/nr_hugepages", "w") as f:
            f.write(str(pages))


# ---------------------------------------------------------------- frames

def mac(s):
    return bytes(int(x, 16) for x in s.split(":"))


def frame(dst, src, ethertype=0x88B5, payload=b"", size=64):
    """An Ethernet frame (no FCS) of SIZE bytes, padded with a pattern."""
    f = mac(dst) + mac(src) + struct.pack("!H", ethertype) + payload
    pad = bytes((i * 7 + 3) & 0xFF for i in range(max(0, size - len(f))))
    return f + pad


BCAST = "ff:ff:ff:ff:ff:ff"


def write_pcap(path, frames):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, fr in enumerate(frames):
            f.write(struct.pack("<IIII", i, 0, len(fr), len(fr)))
            f.write(fr)


def read_pcap(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    if len(data) < 24:
        return []
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    out, off = [], 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        if off + 16 + incl > len(data):
            break
        out.append(data[off + 16:off + 16 + incl])
        off += 16 + incl
    return out


# ---------------------------------------------------------------- processes

class Test:
    """One test: a work dir, a name prefix, and everything to clean up."""

    def __init__(self, name):
        self.name = name
        self.tag = "vt%s%d" % (name.replace("_", "")[:10], os.getpid() % 100000)
        self.dir = tempfile.mkdtemp(prefix="vhostd-%s-" % name)
        self.procs = []
        self.prefixes = []
        self.links = []
        self.cleanups = []
        self.daemons = []

    def path(self, *p):
        return os.path.join(self.dir, *p)

    def prefix(self, what):
        p = "%s%s" % (self.tag, what)
        self.prefixes.append(p)
        return p

    def spawn(self, argv, log, stdin=subprocess.DEVNULL, **kw):
        f = open(log, "wb")
        p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT,
                             stdin=stdin, start_new_session=True, **kw)
        p.log = log
        self.procs.append(p)
        return p

    def veth(self, a, b):
        """A veth pair that sends nothing of its own (no IPv6)."""
        subprocess.call(["ip", "link", "del", a], stderr=subprocess.DEVNULL)
        subprocess.check_call(["ip", "link", "add", a, "type", "veth",
                               "peer", "name", b])
        self.links.append(a)
        for i in (a, b):
            with open("/proc/sys/net/ipv6/conf/%s/disable_ipv6" % i, "w") as f:
                f.write("1")
            subprocess.check_call(["ip", "link", "set", i, "mtu", "9000",
                                   "up"])
        return RawSocket(b)

    def cleanup(self):
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception:  # noqa: BLE001 - cleanup goes on
                traceback.print_exc()
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
        for a in self.links:
            subprocess.call(["ip", "link", "del", a], stderr=subprocess.DEVNULL)
        for pre in self.prefixes:
            for f in glob.glob("/dev/hugepages/%smap_*" % pre):
                os.unlink(f)
            shutil.rmtree(os.path.join(RUNTIME, pre), ignore_errors=True)
        shutil.rmtree(self.dir, ignore_errors=True)

    def dump_logs(self):
        for d in self.daemons:
            try:
                for n in d.query("/vhostd/ports"):
                    print("port %s: %s" % (n, d.port(n)))
            except Exception as e:  # noqa: BLE001 - best effort
                print("no counters from vhostd: %s" % e)
        for p in self.procs:
            print("----- %s (rc %s)" % (p.log, p.poll()))
            try:
                with open(p.log, errors="replace") as f:
                    sys.stdout.write(f.read()[-6000:])
            except OSError:
                pass


def run(fn):
    """Run test function FN(t), print a verdict, exit 0/1."""
    t = Test(fn.__name__.replace("test_", ""))
    ok = False
    try:
        setup_hugepages()
        fn(t)
        ok = True
    except Exception:  # noqa: BLE001 - report every failure
        traceback.print_exc()
        t.dump_logs()
    finally:
        t.cleanup()
    print("%s: %s" % (fn.__name__, "PASS" if ok else "FAIL"))
    sys.exit(0 if ok else 1)


class RawSocket:
    """An AF_PACKET socket on a Linux interface: the far side of a port."""

    def __init__(self, ifname):
        self.ifname = ifname
        # Protocol 0 until bound: ETH_P_ALL from the start would see every
        # interface's frames until bind().
        self.s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        self.s.bind((ifname, 0x0003))  # ETH_P_ALL; Python applies htons
        self.s.setblocking(False)

    def send(self, frames):
        for f in frames:
            self.s.send(f)

    def recv_all(self, timeout=0.2):
        """Frames received until TIMEOUT seconds pass without one."""
        out = []
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                data, addr = self.s.recvfrom(65535)
            except BlockingIOError:
                time.sleep(0.01)
                continue
            if addr[2] != socket.PACKET_OUTGOING:  # not our own sends
                out.append(data)
                end = time.monotonic() + timeout
        return out


class Vhostd:
    """vhostd with a config built from sections."""

    def __init__(self, t, bridges, ports, lcores="1", main_lcore=0,
                 extra_global="", extra_args=(), netns=None):
        self.t = t
        self.prefix = t.prefix("d")
        self.conf = t.path("vhostd.conf")
        self.control = t.path("vhostd.ctl")
        lines = ["[vhostd]", "lcores = %s" % lcores,
                 "control = %s" % self.control,
                 "main-lcore = %d" % main_lcore, "socket-mem = 128",
                 "file-prefix = %s" % self.prefix, extra_global, ""]
        for name, opts in bridges.items():
            lines.append("[bridge %s]" % name)
            lines += ["%s = %s" % kv for kv in opts.items()]
            lines.append("")
        for name, opts in ports.items():
            lines.append("[port %s]" % name)
            lines += ["%s = %s" % kv for kv in opts.items()]
            lines.append("")
        with open(self.conf, "w") as f:
            f.write("\n".join(lines))
        self.extra_args = list(extra_args)
        self.proc = None
        t.daemons.append(self)

    def start(self, wait=True):
        argv = [VHOSTD, "--config", self.conf]
        if self.extra_args:
            argv += ["--"] + self.extra_args
        self.proc = self.t.spawn(argv, self.t.path("vhostd-%d.log" %
                                                   len(self.t.procs)))
        if wait:
            wait_until(lambda: self.proc.poll() is not None or
                       "ready:" in self.log(), 30, "vhostd to start")
            check(self.proc.poll() is None,
                  "vhostd exited at start: %s" % self.log()[-3000:])
        return self

    def log(self):
        with open(self.proc.log, errors="replace") as f:
            return f.read()

    def query(self, cmd):
        path = "%s/%s/dpdk_telemetry.v2" % (RUNTIME, self.prefix)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            s.settimeout(5)
            s.connect(path)
            json.loads(s.recv(16384).decode())
            s.send(cmd.encode())
            reply = json.loads(s.recv(1 << 20).decode())
        finally:
            s.close()
        return reply[cmd.split(",")[0]]

    def port(self, name):
        return self.query("/vhostd/port," + name)

    def rpc(self, method, *params, timeout=30):
        """One JSON-RPC request on the control socket: the reply object
        (with "result" or "error")."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(timeout)
            # With a timeout the socket is non-blocking, and a unix
            # connect to a full listen backlog (a burst of clients just
            # before) fails at once with EAGAIN instead of waiting as a
            # blocking one would: wait for room, within the timeout.
            end = time.monotonic() + timeout
            while True:
                try:
                    s.connect(self.control)
                    break
                except BlockingIOError:
                    if time.monotonic() > end:
                        raise
                    time.sleep(0.01)
            s.sendall(json.dumps({"jsonrpc": "2.0", "id": 1, "method": method,
                                  "params": list(params)}).encode() + b"\n")
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                buf += chunk
        finally:
            s.close()
        return json.loads(buf.decode())

    def ctl(self, method, *params, timeout=30):
        """The result of a control command; Failure if it failed."""
        r = self.rpc(method, *params, timeout=timeout)
        if "error" in r:
            raise Failure("%s %s: %s" % (method, " ".join(params),
                                         r["error"]["message"]))
        return r["result"]

    def vhostctl(self, *args, check_rc=0, timeout=60):
        """Run vhostctl against this vhostd: (exit code, stdout, stderr)."""
        p = subprocess.run([VHOSTCTL, "--socket", self.control] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           stdin=subprocess.DEVNULL, timeout=timeout)
        out, err = p.stdout.decode(), p.stderr.decode()
        if check_rc is not None:
            check(p.returncode == check_rc, "vhostctl %s: exit %d, wanted %d:"
                  "\n%s%s" % (" ".join(args), p.returncode, check_rc, out,
                              err))
        return p.returncode, out, err

    def bridge(self, name):
        return self.query("/vhostd/bridge," + name)

    def fdb(self, name):
        return {e.split()[0]: e.split()[1]
                for e in self.query("/vhostd/fdb," + name)}

    def mbufs_in_use(self):
        return self.query("/vhostd/info")["mbufs_in_use"]

    def wait_up(self, *names, timeout=30):
        for n in names:
            wait_until(lambda n=n: self.port(n)["state"] == "up" and
                       (self.port(n)["type"] != "vhost-user" or
                        self.port(n)["enabled_rxq_mask"]),
                       timeout, "port %s up" % n)

    def stop_clean(self, base):
        """Once the guests are gone: mbufs in use back at BASE, then
        SIGTERM, exit 0 and every mbuf returned."""
        wait_until(lambda: self.mbufs_in_use() == base, 20,
                   "mbufs in use back at baseline %d" % base)
        check(self.stop() == 0, "vhostd exit code")
        check("all mbufs returned" in self.log(), "mbufs leaked at exit")

    def stop(self, sig=signal.SIGTERM, timeout=20):
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise Failure("vhostd did not exit within %ds of signal %d" %
                          (timeout, sig))
        return rc


class Guest:
    """A dpdk-testpmd "guest" on a vhost-user socket through net_virtio_user.

    mode "pcap": testpmd forwards (io mode) between the virtio port and a
    pcap port: FRAMES are sent to the switch once, frames from the switch
    are written to a pcap file (received()).
    mode "rxonly": counts and drops what arrives.
    mode "txonly": sends 64-byte UDP frames to PEER as fast as it can.
    mode "idle": connects, then never polls its rings (testpmd waits at its
    prompt): a guest that has stopped reading.
    """

    def __init__(self, t, name, sock, frames=(), server=False, queues=1,
                 cpu=0, queue_size=256, mtu=None, mode="pcap", mac=None,
                 peer=None):
        self.t = t
        self.name = name
        self.sock = sock
        self.prefix = t.prefix(name)
        self.inp = t.path("%s-in.pcap" % name)
        self.out = t.path("%s-out.pcap" % name)
        write_pcap(self.inp, list(frames))
        if os.path.exists(self.out):
            os.unlink(self.out)
        vu = "net_virtio_user0,path=%s,queues=%d,queue_size=%d" % (
            sock, queues, queue_size)
        if server:
            vu += ",server=1"
        if mac:
            vu += ",mac=%s" % mac
        self.argv = [TESTPMD, "--lcores", "0@%d,1@%d" % (cpu, cpu),
                     "--no-pci", "--in-memory", "--single-file-segments",
                     "-m", "256", "--file-prefix", self.prefix,
                     "--log-level", "pmd.net.virtio.*:error",
                     "--vdev", vu]
        if mode == "pcap":
            self.argv += ["--vdev", "net_pcap0,rx_pcap=%s,tx_pcap=%s" % (
                self.inp, self.out)]
        self.mode = mode
        self.argv += ["--"] + (["-i"] if mode == "idle" else [
            "--forward-mode=%s" % ("io" if mode == "pcap" else mode),
            "--stats-period=1"]) + [
                      "--no-flush-rx", "--nb-cores=1",
                      "--rxq=%d" % queues, "--txq=%d" % queues,
                      "--total-num-mbufs=%d" % max(4096, queues * 1024)]
        if peer:
            self.argv += ["--eth-peer=0,%s" % peer]
        if mtu:
            self.argv += ["--max-pkt-len=%d" % (mtu + 18),
                          "--mbuf-size=%d" % (mtu + 200)]
        self.proc = None

    def start(self, wait=True):
        """Start testpmd; with WAIT, return once it forwards (or, idle,
        shows its prompt): its port is then fully set up."""
        self.proc = self.t.spawn(
            self.argv, self.t.path("%s-%d.log" % (self.name,
                                                  len(self.t.procs))),
            stdin=subprocess.PIPE if self.mode == "idle" else
            subprocess.DEVNULL)
        if wait:
            marker = "testpmd>" if self.mode == "idle" else "Port statistics"
            wait_until(lambda: self.proc.poll() is not None or
                       marker in self.log(), 60,
                       "testpmd %s to start" % self.name)
            check(self.proc.poll() is None, "testpmd %s exited: %s" % (
                self.name, self.log()[-3000:]))
        return self

    def log(self):
        with open(self.proc.log, errors="replace") as f:
            return f.read()

    def received(self):
        return read_pcap(self.out)

    def alive(self):
        return self.proc and self.proc.poll() is None

    def kill(self):
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self):
        if self.alive():
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
