#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""SIGTERM and SIGINT under traffic: vhostd exits 0 promptly, closes its
ports, removes its server sockets and has every mbuf back; the guests live
on."""
import glob
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from vhdtest import Guest, Vhostd, check, run, wait_until  # noqa: E402


def one(t, sig, tag):
    vh = lambda n: {"type": "vhost-user", "bridge": "br0",  # noqa: E731
                    "path": t.path("%s%s.sock" % (tag, n))}
    # An ethdev too: its data holds hugepages until exit (the files must
    # go then all the same).
    d = Vhostd(t, {"br0": {}}, {"a": vh("a"), "b": vh("b"), "n": {
        "type": "ethdev", "bridge": "br0",
        "devargs": "net_null_%s,no-rx=1" % tag}})
    d.conf_tag = tag
    d.start()
    ga = Guest(t, tag + "a", t.path(tag + "a.sock"), mode="txonly",
               peer="02:00:00:00:00:0b").start()
    gb = Guest(t, tag + "b", t.path(tag + "b.sock"), mode="rxonly",
               mac="02:00:00:00:00:0b").start()
    d.wait_up("a", "b")
    wait_until(lambda: d.port("b")["tx_packets"] > 10000, 30, "traffic")
    t0 = time.monotonic()
    rc = d.stop(sig, timeout=15)
    took = time.monotonic() - t0
    print("%s: exit %d after %.2fs" % (signal.Signals(sig).name, rc, took))
    check(rc == 0, "exit code %d on %s" % (rc, signal.Signals(sig).name))
    log = d.log()
    check("shutting down" in log and "all mbufs returned" in log,
          "unclean shutdown: %s" % log[-2000:])
    for n in ("a", "b"):
        check(not os.path.exists(t.path(tag + n + ".sock")),
              "socket %s left behind" % n)
    left = glob.glob("/dev/hugepages/%smap_*" % d.prefix)
    check(not left, "hugepage files left behind: %s" % left)
    check(ga.alive() and gb.alive(), "a guest died with vhostd")
    ga.kill()
    gb.kill()


def test_shutdown(t):
    one(t, signal.SIGTERM, "t")
    one(t, signal.SIGINT, "i")


if __name__ == "__main__":
    run(test_shutdown)
