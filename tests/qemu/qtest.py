# SPDX-License-Identifier: BSD-3-Clause
"""What the QEMU guest tests share: booting a guest the harness cleans up,
pings in the foreground and in the background, and reading their results;
a Linux endpoint's TCP transfer in a namespace and a guest's listener."""
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from vhdtest import Failure, Vhostd, check, wait_until  # noqa: E402
import guest  # noqa: E402

# Guests boot with ipv6.disable=1: they send nothing but the ARP and ICMP
# the test makes them send, so vhostd's FDB and counters are exact.

def bridge_vhostd(t, ports, port_opts=None, opts_of=None, **bridge):
    """Start vhostd with one learning bridge br0 (options BRIDGE) and a
    vhost-user port NAME, socket t.path("NAME.sock"), for each NAME: MODE
    (server or client) of PORTS, each with the keys of PORT_OPTS too, and
    port NAME with those of OPTS_OF[NAME] (if any) on top."""
    return Vhostd(t, {"br0": dict({"mode": "learning"}, **bridge)},
                  {n: dict({"type": "vhost-user", "bridge": "br0", "mode": m,
                            "path": t.path(n + ".sock")}, **dict(
                                port_opts or {}, **(opts_of or {}).get(n, {})))
                   for n, m in ports.items()}).start()


def boot(t, name, sock, role, mac, ip, **kw):
    """Start a QEMU guest (on CPU 0; vhostd polls CPU 1). Its console log
    is dumped on failure and QEMU is killed in cleanup, like t.spawn()."""
    kw.setdefault("workdir", t.dir)
    g = guest.Guest(name, sock, role=role, mac=mac, ip=ip, cpus="0",
                    extra_cmdline="ipv6.disable=1", **kw)
    g.start()
    g.proc.log = g.console_log
    t.procs.append(g.proc)
    t.cleanups.append(g.kill)
    return g


def ping(g, ip, count, extra=""):
    """ping from guest G; return (transmitted, received)."""
    rc, out = g.run("ping -c %d -W 5 %s %s" % (count, extra, ip),
                    timeout=count + 60)
    m = re.search(r"(\d+) packets transmitted, (\d+) packets received", out)
    check(m, "%s: no ping summary (rc %d):\n%s" % (g.name, rc, out))
    print("%s -> %s: %s" % (g.name, ip, out.strip().splitlines()[-2]))
    return int(m.group(1)), int(m.group(2))


# answered seqs: "gap A B" for every hole, then "recv N last S rtt MAX"
# (DUPs ignored; MAX in ms)
PING_AWK = ("awk -F'seq=' '/seq=/ && !/DUP/ {split($2, a, \" \"); s = a[1] + 0;"
            " if (n && s != last + 1) print \"gap\", last, s; last = s; n++;"
            " sub(/.*time=/, \"\"); if ($0 + 0 > mx) mx = $0 + 0}"
            " END {print \"recv\", n + 0, \"last\", (n ? last : -1),"
            " \"rtt\", mx + 0}' /tmp/%s.log")


def bg_ping(g, ip, interval, tag="ping"):
    """Start a ping in G's background (output in G's /tmp/TAG.log)."""
    g.run("ping -i %s -W 2 %s > /tmp/%s.log 2>&1 & echo $! > /tmp/%s.pid" %
          (interval, ip, tag, tag), timeout=30, check=True)


class PingState:
    def __init__(self, g, tag="ping"):
        rc, out = g.run(PING_AWK % tag, timeout=30, check=True)
        # holes in the answered seqs: (last answered, next answered)
        self.gaps = [tuple(int(x) for x in l.split()[1:])
                     for l in out.splitlines() if l.startswith("gap ")]
        m = re.search(r"recv (\d+) last (-?\d+) rtt ([\d.]+)", out)
        check(m, "%s: ping log unreadable: %r" % (g.name, out))
        self.recv, self.last = int(m.group(1)), int(m.group(2))
        self.max_rtt = float(m.group(3)) / 1000.0
        self.lost = sum(b - a - 1 for a, b in self.gaps)


def bg_ping_stop(g, tag="ping"):
    """Stop the background ping; return (PingState, ping's summary)."""
    g.run("kill -INT $(cat /tmp/%s.pid); sleep 1" % tag, timeout=30)
    rc, out = g.run("tail -2 /tmp/%s.log" % tag, timeout=30)
    return PingState(g, tag), out.strip().replace("\n", " | ")


def summary_counts(summary):
    m = re.search(r"(\d+) packets transmitted, (\d+) packets received",
                  summary)
    check(m, "no ping summary: %r" % summary)
    return int(m.group(1)), int(m.group(2))


# Runs in the namespace: the Linux endpoint of one transfer.
#   recv ADDR PORT: listens, reads one connection to its end;
#   send ADDR PORT: connects, sends SIZE bytes from a seeded PRNG, shuts
#   its side down and waits for the peer to close.
# Prints one JSON line: bytes, md5, seconds.
ENDPOINT = r"""
import hashlib, json, random, socket, sys, time
mode, addr, port, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), \
    int(sys.argv[4])
h, n = hashlib.md5(), 0
if mode == "recv":
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, port))
    ls.listen(1)
    print("listening", flush=True)
    ls.settimeout(120)
    c, _ = ls.accept()
    c.settimeout(120)
    t0 = time.monotonic()
    while True:
        b = c.recv(1 << 20)
        if not b:
            break
        h.update(b)
        n += len(b)
    c.close()
else:
    data = random.Random(12).randbytes(size)
    h.update(data)
    c = socket.create_connection((addr, port), timeout=120)
    t0 = time.monotonic()
    c.sendall(data)
    n = len(data)
    c.shutdown(socket.SHUT_WR)
    c.recv(1)            # the receiver's close: it has everything
    c.close()
print(json.dumps({"bytes": n, "md5": h.hexdigest(),
                  "secs": time.monotonic() - t0}), flush=True)
"""


def ns_spawn(t, ns, script, args, log):
    return t.spawn(["ip", "netns", "exec", ns, sys.executable, "-c", script]
                   + [str(a) for a in args], t.path(log))


def result(p, timeout, what):
    """The JSON line a namespace script printed last, once it exited 0."""
    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        raise Failure("%s did not end within %ds" % (what, timeout))
    with open(p.log) as f:
        out = f.read()
    check(p.returncode == 0, "%s exited %s:\n%s" % (what, p.returncode,
                                                    out[-3000:]))
    return json.loads(out.splitlines()[-1])


def guest_listen(g, port):
    """G listens on PORT and writes the MD5 of what it receives to
    /tmp/sum.PORT. nc's stdin is a pipe that stays open: busybox nc shuts
    its sending side down at stdin's EOF, and the sender's nc would quit
    at that FIN before it sent everything. md5sum writes its one line
    when its input ends."""
    g.run("sleep 600 | nc -l -p %d | md5sum > /tmp/sum.%d &" % (port, port),
          30, check=True)
    wait_until(lambda: ":%04X " % port in g.run("cat /proc/net/tcp", 30)[1],
               30, "%s to listen on %d" % (g.name, port))


def guest_sum(g, port, timeout):
    """The MD5 G's listener on PORT computed, once the transfer ended."""
    m = wait_until(lambda: re.match(r"[0-9a-f]{32} ", g.run(
        "cat /tmp/sum.%d 2>/dev/null" % port, 30)[1]), timeout,
        "%s's transfer on port %d to end" % (g.name, port), interval=1)
    g.run("kill $(pidof sleep) 2>/dev/null", 30)
    return m.group(0).strip()
