#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Two real QEMU guests with 16 queue pairs each (-netdev vhost-user,
queues=16 and virtio-net-pci mq=on: what OpenStack gives a 16-vCPU VM
with multiqueue on) on one learning bridge. The bug this guards: vhostd
polled only the first 8 queue pairs, so a guest that transmitted on a
higher one got no traffic through at all.

Checked: both ports have 16 queue pairs, all 16 guest rx queues enabled;
`lcores` lists each port's 16 queues exactly once; each guest's driver
runs 16 combined channels (ethtool -l). Then each guest's XPS sends
everything it transmits on tx queue 15 (no other queue has a CPU), and
pings cross both ways (50 small, 50 of 1400 bytes), none lost: the
guest's own per-queue counters (ethtool -S) show every frame left on
queue 15, vhostd's `lcores` shows it received on the port's queue 15 and
on no other, and vhostd's port counters match frame for frame. No drops;
every mbuf comes back; vhostd stops clean.

Under TCG the NIC uses INTx (vectors=0, see guest.py): Linux's
virtio-pci then shares one interrupt among all 33 virtqueues, which is
all multiqueue needs."""
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)
from vhdtest import check, run, wait_until  # noqa: E402
import guest  # noqa: E402
from qtest import (boot, bridge_vhostd, ping)  # noqa: E402

QUEUES = 16
HIGH = QUEUES - 1               # the queue the guests transmit on (>= 8)
MAC = {1: "52:54:00:00:0b:01", 2: "52:54:00:00:0b:02"}
IP = {i: "10.0.11.%d" % i for i in MAC}
PORTS = ("vm1", "vm2")
COUNTERS = ("rx_packets", "rx_bytes", "tx_packets", "tx_bytes")
# XPS: every CPU (smp 2: mask 3) transmits on tx queue HIGH, none on the
# others; then what XPS says, one line per queue "tx-N MASK"
XPS = ("cd /sys/class/net/eth0/queues && for q in tx-*; do echo 0 > $q/xps_cpus;"
       " done && echo 3 > tx-%d/xps_cpus && for q in tx-*; do"
       " echo $q $(cat $q/xps_cpus); done" % HIGH)


def lcore_queues(d):
    """{(port, queue): [lcore, ...]} and {(port, queue): pps} from
    `lcores`."""
    where, pps = {}, {}
    for lc in d.ctl("lcores"):
        for q in lc["rxqs"]:
            k = (q["port"], q["queue"])
            where.setdefault(k, []).append(lc["lcore"])
            pps[k] = q["pps"]
    return where, pps


def queues_placed(d):
    """True once every queue of both ports is polled by exactly one lcore
    (and nothing else is listed)."""
    where, _ = lcore_queues(d)
    want = {(p, q) for p in PORTS for q in range(QUEUES)}
    return set(where) == want and all(len(v) == 1 for v in where.values())


def queue_counts(g):
    """{"tx"|"rx": {queue: packets}} from the guest driver's per-queue
    counters (ethtool -S)."""
    rc, out = g.run("ethtool -S eth0", 30)
    check(rc == 0, "%s: ethtool -S eth0 failed:\n%s" % (g.name, out))
    c = {"tx": {}, "rx": {}}
    for m in re.finditer(r"^\s*(tx|rx)_queue_(\d+)_packets:\s*(\d+)", out,
                         re.M):
        c[m.group(1)][int(m.group(2))] = int(m.group(3))
    check(all(sorted(v) == list(range(QUEUES)) for v in c.values()),
          "%s: ethtool -S has not %d rx and tx queues:\n%s" %
          (g.name, QUEUES, out))
    return c


def test_qemu_multiqueue(t):
    guest.ensure_image()
    t0 = time.monotonic()
    d = bridge_vhostd(t, {p: "server" for p in PORTS}, **{"mac-aging": 300})
    # 768M: with GUEST_TSO and without mergeable rx buffers (README:
    # Offloads) Linux posts 64 KiB per rx descriptor, 16 x 256 of them.
    g = {i: boot(t, "vm%d" % i, t.path("vm%d.sock" % i), "client", MAC[i],
                 IP[i] + "/24", queues=QUEUES, smp=2, mem="768M")
         for i in MAC}
    print("guests ready in %s s" % ", ".join("%.1f" % g[i].wait_ready(240)
                                             for i in MAC))
    for i in MAC:
        check("ethtool -L failed" not in g[i].output,
              "vm%d: ethtool -L eth0 combined %d failed:\n%s" %
              (i, QUEUES, g[i].output[-2000:]))
    d.wait_up(*PORTS)

    # 1. vhostd: 16 queue pairs per port, the guest enabled all 16 rx
    #    queues; every queue of each port polled by exactly one lcore
    wait_until(lambda: all(d.port(p)["enabled_rxqs"] == QUEUES
                           for p in PORTS), 30, "16 rx queues enabled")
    for p in PORTS:
        s = d.port(p)
        print("%s: queue_pairs %d enabled_rxqs %d enabled_rxq_mask %#x" %
              (p, s["queue_pairs"], s["enabled_rxqs"], s["enabled_rxq_mask"]))
        check(s["queue_pairs"] == QUEUES and s["enabled_rxqs"] == QUEUES and
              s["enabled_rxq_mask"] == (1 << QUEUES) - 1,
              "%s: not %d queue pairs all enabled: %s" % (p, QUEUES, s))
    wait_until(lambda: queues_placed(d), 10, "every queue in one lcore's list")
    where, _ = lcore_queues(d)
    print("lcores: %s" % {lc: sorted(k for k, v in where.items() if lc in v)
                          for lc in sorted({x for v in where.values()
                                            for x in v})})

    # 2. each guest's driver uses 16 channels, and transmits on queue HIGH
    for i in MAC:
        rc, out = g[i].run("ethtool -l eth0", 30)
        cur = out.split("Current hardware settings:")[-1]
        m = re.search(r"Combined:\s*(\d+)", cur)
        check(rc == 0 and m and int(m.group(1)) == QUEUES,
              "vm%d: ethtool -l eth0:\n%s" % (i, out))
        rc, out = g[i].run(XPS, 30)
        xps = dict(l.split() for l in out.splitlines() if l.startswith("tx-"))
        check(rc == 0 and len(xps) == QUEUES and
              all(int(v, 16) == (3 if q == "tx-%d" % HIGH else 0)
                  for q, v in xps.items()),
              "vm%d: XPS not as set:\n%s" % (i, out))
    print("XPS: both CPUs of each guest transmit on tx queue %d" % HIGH)

    # 3. pings both ways, every frame on queue HIGH
    base = {p: d.port(p) for p in PORTS}
    gq0 = {i: queue_counts(g[i]) for i in MAC}
    n_pings = 0
    for src, dst in ((1, 2), (2, 1)):
        for size in (56, 1400):
            tx, rx = ping(g[src], IP[dst], 50, "-i 0.02 -s %d" % size)
            check(tx == 50 and rx == 50, "vm%d -> vm%d -s %d: lost %d of %d"
                  % (src, dst, size, tx - rx, tx))
            n_pings += 50
    # vhostd's window of per-queue pps (5 s): what came in on which queue
    time.sleep(1.1)
    _, pps = lcore_queues(d)
    busy = {k: v for k, v in pps.items() if v}
    print("vhostd rx pps per queue (last 5 s): %s" % busy)
    gq1 = {i: queue_counts(g[i]) for i in MAC}
    now = {p: d.port(p) for p in PORTS}
    dl = {p: {k: now[p][k] - base[p][k] for k in COUNTERS} for p in PORTS}
    print("vhostd deltas: %s" % dl)
    for i in MAC:
        p = "vm%d" % i
        sent, got = ({q: gq1[i][k][q] - gq0[i][k][q] for q in range(QUEUES)}
                     for k in ("tx", "rx"))
        print("%s: guest tx frames per queue: %s, rx: %s" % (
            p, {q: n for q, n in sent.items() if n},
            {q: n for q, n in got.items() if n}))
        # each guest sent 100 requests and 100 replies (plus maybe ARP)
        check(sent[HIGH] >= n_pings and
              all(n == 0 for q, n in sent.items() if q != HIGH),
              "%s: frames not all sent on tx queue %d: %s" % (p, HIGH, sent))
        # ... all of which vhostd received, on that queue, and delivered
        check(dl[p]["rx_packets"] == sent[HIGH],
              "%s: guest sent %d, vhostd received %d" %
              (p, sent[HIGH], dl[p]["rx_packets"]))
        check(pps.get((p, HIGH), 0) > 0 and
              all(v == 0 for (pp, q), v in pps.items()
                  if pp == p and q != HIGH),
              "%s: vhostd did not see the frames on queue %d: %s" %
              (p, HIGH, busy))
        # and what vhostd sent to the guest, the guest got
        check(sum(got.values()) == dl[p]["tx_packets"],
              "%s: vhostd sent %d, guest received %d" %
              (p, dl[p]["tx_packets"], sum(got.values())))
    # what one port received went out of the other, and nothing else
    for a, b in (("vm1", "vm2"), ("vm2", "vm1")):
        check(dl[a]["rx_packets"] == dl[b]["tx_packets"] and
              dl[a]["rx_bytes"] == dl[b]["tx_bytes"],
              "%s rx != %s tx: %s" % (a, b, dl))
    for p in PORTS:
        s = d.port(p)
        drops = {k: v for k, v in s.items() if k.startswith("drop") and v}
        check(not drops, "%s drops: %s" % (p, drops))
    print("traffic done at %.1fs" % (time.monotonic() - t0))
    for line in d.log().splitlines():
        if re.search(r"port vm\d: guest", line):
            print("vhostd: %s" % line)

    for i in MAC:
        g[i].kill()
    check(d.mbufs_in_use() == 0 or wait_until(
        lambda: d.mbufs_in_use() == 0, 10, "mbufs freed"), "mbufs in use")
    d.stop_clean(0)
    print("total %.1fs" % (time.monotonic() - t0))


if __name__ == "__main__":
    run(test_qemu_multiqueue)
