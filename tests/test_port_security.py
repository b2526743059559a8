#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Port security: allowed-macs and mac-learn-limit.

Guests on one bridge: s (allowed-macs = its two MACs), l
(mac-learn-limit = 3), o (neither). A frame from s with any other source
is dropped and counted drop_spoof, and never learned; l's sixth MAC is
forwarded but not learned, and the bridge counts learn_port_limit. Port
show reports what is configured and what each port owns in the FDB.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
import vhdtest as vt  # noqa: E402
import vhostuser as vu  # noqa: E402

S1, S2 = "02:00:00:00:51:01", "02:00:00:00:51:02"
SPOOF = "02:00:00:00:66:66"
O = "02:00:00:00:0f:01"


def send(g, src, f):
    """Send F from guest SRC; what every other guest got after it
    arrived where it must (or, when it must not arrive anywhere, after
    a short look)."""
    vt.check(g[src].txq.tx(f), "tx ring full")


def collect(g, names, until, what):
    got = {n: [] for n in names}

    def poll():
        for n in names:
            got[n] += g[n].rxq.rx()
        return until(got)
    vt.wait_until(poll, 10, what)
    end = time.monotonic() + 0.3
    while time.monotonic() < end:
        poll()
    return got


def test_port_security(t):
    d = vt.Vhostd(t, {"br0": {}}, {
        "s": {"type": "vhost-user", "path": t.path("s.sock"),
              "bridge": "br0", "allowed-macs": "%s, %s" % (S1, S2)},
        "l": {"type": "vhost-user", "path": t.path("l.sock"),
              "bridge": "br0", "mac-learn-limit": "3"},
        "o": {"type": "vhost-user", "path": t.path("o.sock"),
              "bridge": "br0"}}).start()
    g = {n: vu.Guest(t.path(n + ".sock")) for n in "slo"}
    d.wait_up("s", "l", "o")
    base = d.mbufs_in_use()

    # From an allowed MAC: everyone gets it, and it is learned.
    f = vt.frame(vt.BCAST, S1, payload=b"allowed")
    send(g, "s", f)
    got = collect(g, "lo", lambda x: x["l"] and x["o"], "s's frame")
    vt.check(got == {"l": [f], "o": [f]}, "allowed frame: %r" % got)
    # Spoofed source, unicast to o and broadcast: nobody, counted.
    for dst in (O, vt.BCAST):
        send(g, "s", vt.frame(dst, SPOOF, payload=b"spoofed"))
    vt.wait_until(lambda: d.port("s")["drop_spoof"] == 2, 10,
                  "drop_spoof 2 (now %d)" % d.port("s")["drop_spoof"])
    # The next allowed frame arrives alone: the spoofed ones never did.
    f = vt.frame(vt.BCAST, S2, payload=b"allowed again")
    send(g, "s", f)
    got = collect(g, "lo", lambda x: x["l"] and x["o"], "s's 2nd frame")
    vt.check(got == {"l": [f], "o": [f]}, "after spoofing: %r" % got)
    fdb = {e["mac"]: e["port"] for e in d.ctl("fdb/show", "br0")}
    vt.check(SPOOF not in fdb and fdb.get(S1) == "s" and fdb.get(S2) == "s",
             "fdb: %r" % fdb)

    # l sends from six MACs: three are learned; all six are forwarded.
    macs = ["02:00:00:00:1e:%02x" % i for i in range(6)]
    frames = [vt.frame(vt.BCAST, m, payload=b"from l") for m in macs]
    for f in frames:
        send(g, "l", f)
    got = collect(g, "so", lambda x: len(x["o"]) >= 6 and len(x["s"]) >= 6,
                  "l's six frames")
    vt.check(got == {"s": frames, "o": frames}, "l's frames: %r" % got)
    fdb = [e for e in d.ctl("fdb/show", "br0") if e["port"] == "l"]
    vt.check(len(fdb) == 3 and {e["mac"] for e in fdb} == set(macs[:3]),
             "l's entries: %r" % fdb)
    show = d.ctl("port/show", "l")
    vt.check(show["mac_learn_limit"] == 3 and show["learned_macs"] == 3,
             "port show l: %r" % show)
    vt.check(d.ctl("bridge/show", "br0")["learn_port_limit"] >= 3,
             "learn_port_limit: %r" % d.ctl("bridge/show", "br0"))
    # A unicast to l's unlearned fifth MAC floods, so l still gets it.
    f = vt.frame(macs[4], O, payload=b"to l's 5th")
    send(g, "o", f)
    got = collect(g, "sl", lambda x: x["l"], "o -> l's fifth MAC")
    vt.check(got["l"] == [f], "l got %r" % got["l"])
    show = d.ctl("port/show", "s")
    vt.check(show["allowed_macs"] == [S1, S2], "port show s: %r" % show)

    # Run time: the same keys, the same checks.
    for args, want in (
            (["allowed-macs=01:00:5e:00:00:01"], "[port x] allowed-macs: "
             "'01:00:5e:00:00:01' is not a unicast MAC address"),
            (["allowed-macs=zz"], "allowed-macs: 'zz' is not a unicast"),
            (["mac-learn-limit=-1"], "[port x] mac-learn-limit: '-1' is "
             "not a number")):
        r = d.rpc("port/add", "x", "bridge=br0", "type=vhost-user",
                  "path=" + t.path("x.sock"), *args)
        vt.check("error" in r and want in r["error"]["message"],
                 "port add %s: %r" % (args, r))
    d.ctl("config/save", t.path("saved.conf"))
    saved = open(t.path("saved.conf")).read()
    vt.check("allowed-macs = %s,%s\n" % (S1, S2) in saved and
             "mac-learn-limit = 3\n" in saved, "saved: %s" % saved)
    for x in g.values():
        x.close()
    d.stop_clean(base)


if __name__ == "__main__":
    vt.run(test_port_security)
