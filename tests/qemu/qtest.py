# SPDX-License-Identifier: BSD-3-Clause
"""What the QEMU guest tests share: booting a guest the harness cleans up,
pings in the foreground and in the background, and reading their results."""
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from vhdtest import Vhostd, check  # noqa: E402
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
