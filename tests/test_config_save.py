#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""config save: a switch built at run time (bridges of both modes,
vhost-user ports with vhostd as server and as client, an af_packet ethdev
port, a static FDB entry), saved, and started again from the saved file by
a new vhostd: the same guests attach, the same frames take the same paths,
and config show is the same, except for the static entry, which is not
part of the config. config save without a FILE replaces the file vhostd
started with, atomically; a relative path, a missing directory or a
directory in the way are refused, and nothing is written.

Topology: learning bridge br0 = phy (af_packet on a veth whose far end this
test drives) + g1 (server) + g2 (client) + g3 (server); xconnect bridge
x0 = xa (server) + xb (client). Every guest is testpmd in pcap mode.
"""
import errno
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from vhdtest import (BCAST, Guest, Vhostd, check, frame, run,  # noqa: E402
                     wait_until)

P = "02:00:00:00:00:01"
MACS = {"g1": "02:00:00:00:01:01", "g2": "02:00:00:00:02:02",
        "g3": "02:00:00:00:03:03", "xa": "02:00:00:00:0a:0a",
        "xb": "02:00:00:00:0b:0b"}
S = "02:00:00:00:5a:5a"          # static entry to g3 (first vhostd only)
UNKNOWN = "02:00:00:00:99:99"
BR0 = ("g1", "g2", "g3")
ET_HELLO, ET_PROBE, ET_MARK, ET_X = 0x88B5, 0x88B6, 0x88B7, 0x88B8


def started_from(t, first, conf):
    """A second vhostd on CONF, which names FIRST's control socket and
    file-prefix (FIRST has exited)."""
    d = Vhostd.__new__(Vhostd)
    d.t, d.conf, d.extra_args, d.proc = t, conf, [], None
    d.prefix, d.control = first.prefix, first.control
    t.daemons.append(d)
    return d.start()


def small_guest(g):
    """Five guests at once: 128 MiB of hugepages each is plenty for
    testpmd's 4096 mbufs and leaves room for other tests."""
    if "-m" in g.argv:
        g.argv[g.argv.index("-m") + 1] = "128"


def xframes(src, dst):
    return [frame(MACS[dst], MACS[src], ET_X, payload=b"%s-%d" % (
        src.encode(), i), size=64 + 100 * i) for i in range(5)]


def start_guest(t, name, tag, frames, sockdir, gdir):
    client = name in ("g2", "xb")   # vhostd connects to the guest
    path = os.path.join(gdir if client else sockdir, name + ".sock")
    if client and os.path.exists(path):
        os.unlink(path)
    g = Guest(t, "%s-%s" % (name, tag), path, frames=frames,
              mac=MACS[name], server=client)
    small_guest(g)
    g.start(wait=not client)
    return g


def attach(t, d, run_no, sockdir, gdir):
    """Start the guests of every vhost-user port: each br0 guest says
    hello to P (so br0 learns it); xb sends a few frames to xa once xa is
    up, then xa is started again to send a few back."""
    guests = {}
    for name in ("g1", "g3", "xa", "g2", "xb"):
        if name in BR0:
            frames = [frame(P, MACS[name], ET_HELLO, payload=b"hello %s" %
                            name.encode(), size=64)]
        else:
            frames = xframes(name, "xa") if name == "xb" else []
        guests[name] = start_guest(t, name, run_no, frames, sockdir, gdir)
    for g in guests.values():
        wait_until(lambda g=g: "Port statistics" in g.log() or
                   not g.alive(), 60, "guest %s to start" % g.name)
        check(g.alive(), "guest %s died: %s" % (g.name, g.log()[-2000:]))
    d.wait_up(*guests)
    # xconnect: each side gets exactly what the other sent.
    want = xframes("xb", "xa")
    wait_until(lambda: len(guests["xa"].received()) >= len(want), 20,
               "xconnect frames at xa")
    check(guests["xa"].received() == want, "xconnect: xa got %s" %
          guests["xa"].received())
    guests["xa"].stop()
    wait_until(lambda: d.port("xa")["state"] == "down", 20, "xa down")
    guests["xa"] = start_guest(t, "xa", "%d-2" % run_no, xframes("xa", "xb"),
                               sockdir, gdir)
    want = xframes("xa", "xb")
    wait_until(lambda: len(guests["xb"].received()) >= len(want), 20,
               "xconnect frames at xb")
    check(guests["xb"].received() == want, "xconnect: xb got %s" %
          guests["xb"].received())
    d.wait_up("xa")
    return guests


def paths(d, phy, guests, static_on):
    """Which guests each probe from phy reaches: {probe: [guests]}."""
    wait_until(lambda: all(d.fdb("br0").get(MACS[n]) == n for n in BR0),
               20, "br0 to learn its guests' MACs")
    probes = {"broadcast": BCAST, "unicast g1": MACS["g1"],
              "unicast g2": MACS["g2"], "unicast g3": MACS["g3"],
              "unknown unicast": UNKNOWN, "static S": S}
    if static_on:
        fdb = d.ctl("fdb/show", "br0")
        check({"bridge": "br0", "vlan": 0, "mac": S, "port": "g3",
               "age": None, "static": True} in fdb, "static entry: %s" % fdb)
    out = {}
    for i, (what, dst) in enumerate(sorted(probes.items())):
        f = frame(dst, P, ET_PROBE, payload=b"probe %s" % what.encode(),
                  size=80 + i)
        mark = frame(BCAST, P, ET_MARK, payload=b"mark %d" % i, size=64)
        phy.send([f, mark])
        # Frames from phy reach each guest in order: once the marker is
        # everywhere in br0, the probe is wherever it was going.
        wait_until(lambda: all(mark in guests[n].received() for n in BR0),
                   20, "marker %d at br0's guests" % i)
        out[what] = sorted(n for n, g in guests.items()
                           if f in g.received())
    check(len(guests["xa"].received()) == 0 and
          len(guests["xb"].received()) == 5, "br0's frames reached x0")
    return out


def no_temp_files(d, before):
    now = set(os.listdir(d))
    check(now == before, "files in %s: %s, before %s" % (d, sorted(now),
                                                         sorted(before)))


def test_config_save(t):
    phy = t.veth("%sa" % t.tag[:10], "%sb" % t.tag[:10])
    sockdir, gdir, savedir = t.path("socks"), t.path("guests"), t.path("cf")
    for x in (sockdir, gdir, savedir):
        os.mkdir(x)
    d1 = Vhostd(t, {}, {}).start()
    # The switch, built at run time.
    sp = lambda n: "path=" + os.path.join(sockdir, n + ".sock")  # noqa
    cp = lambda n: "path=" + os.path.join(gdir, n + ".sock")  # noqa
    for cmd in (
            ("bridge/add", "br0", "mode=learning", "mac-aging=120",
             "mac-table-size=2048"),
            ("bridge/add", "x0", "mode=xconnect"),
            ("port/add", "phy", "bridge=br0", "type=ethdev",
             "devargs=net_af_packet_%s,iface=%s" % (t.tag, phy.ifname[:-1] +
                                                    "a")),
            ("port/add", "g1", "bridge=br0", "type=vhost-user", sp("g1")),
            ("port/add", "g2", "bridge=br0", "type=vhost-user", cp("g2"),
             "mode=client"),
            ("port/add", "g3", "bridge=br0", "type=vhost-user", sp("g3"),
             "mode=server"),
            ("port/add", "xa", "bridge=x0", "type=vhost-user", sp("xa")),
            ("port/add", "xb", "bridge=x0", "type=vhost-user", cp("xb"),
             "mode=client"),
            ("fdb/add", "br0", S, "g3")):
        d1.ctl(*cmd)
    base = d1.mbufs_in_use()
    guests = attach(t, d1, 1, sockdir, gdir)
    paths1 = paths(d1, phy, guests, True)
    print("paths: %s" % paths1)
    check(paths1["broadcast"] == list(BR0) and
          paths1["unknown unicast"] == list(BR0) and
          paths1["unicast g2"] == ["g2"] and paths1["static S"] == ["g3"],
          "paths at the first vhostd: %s" % paths1)
    show1 = d1.ctl("config/show")["config"]
    for want in ("[bridge br0]", "[bridge x0]", "mode = xconnect",
                 "[port phy]", "type = ethdev", "iface=" + phy.ifname[:-1],
                 "[port g2]", "mode = client", "[port g3]", "mac-aging = 120",
                 "mac-table-size = 2048"):
        check(want in show1, "config show lacks %r:\n%s" % (want, show1))
    check(S not in show1 and "fdb" not in show1.lower(),
          "a static FDB entry in the config:\n%s" % show1)

    # Saved where the test says: the file is config show, nothing else is
    # left in the directory.
    saved = os.path.join(savedir, "saved.conf")
    r = d1.ctl("config/save", saved)
    check(r == {"file": saved}, "config/save: %s" % r)
    with open(saved) as f:
        check(f.read() == show1, "saved file differs from config show")
    check(os.listdir(savedir) == ["saved.conf"], "files in %s: %s" % (
        savedir, os.listdir(savedir)))
    for g in guests.values():
        g.stop()
    d1.stop_clean(base)

    # A new vhostd from the saved file: same switch, same paths.
    d2 = started_from(t, d1, saved)
    check(d2.ctl("config/show")["config"] == show1,
          "config show differs:\n%s\n--- first:\n%s" % (
              d2.ctl("config/show")["config"], show1))
    b = d2.ctl("bridge/show", "br0")
    check(b["mode"] == "learning" and b["mac_aging"] == 120 and
          b["mac_table_size"] == 2048 and
          b["ports"] == ["phy", "g1", "g2", "g3"], "br0: %s" % b)
    check(d2.ctl("bridge/show", "x0")["ports"] == ["xa", "xb"] and
          d2.ctl("bridge/show", "x0")["mode"] == "xconnect", "x0")
    check(not [e for e in d2.ctl("fdb/show") if e["static"]],
          "static entries after restart: %s" % d2.ctl("fdb/show"))
    for n, mode in (("g1", "server"), ("g2", "client"), ("xb", "client")):
        check(d2.ctl("port/show", n)["mode"] == mode, "%s mode" % n)
    base = d2.mbufs_in_use()
    guests = attach(t, d2, 2, sockdir, gdir)
    paths2 = paths(d2, phy, guests, False)
    print("paths after restart: %s" % paths2)
    # The static entry was not saved: its MAC is unknown now, it floods.
    check(paths2.pop("static S") == list(BR0), "static MAC not flooded")
    paths1.pop("static S")
    check(paths2 == paths1, "paths differ:\n%s\n%s" % (paths1, paths2))

    # config save with no FILE: the file vhostd started with, replaced
    # atomically (a reader of the old file keeps the old text; no
    # temporary file is left).
    d2.ctl("bridge/add", "br9", "mode=xconnect")
    show2 = d2.ctl("config/show")["config"]
    check(show2 != show1 and "[bridge br9]" in show2, "br9 not shown")
    old = open(saved)
    ino = os.stat(saved).st_ino
    before = set(os.listdir(savedir))
    r = d2.ctl("config/save")
    check(r == {"file": saved}, "config/save: %s" % r)
    with open(saved) as f:
        check(f.read() == show2, "file not replaced by config show")
    check(old.read() == show1, "the old file changed in place")
    old.close()
    check(os.stat(saved).st_ino != ino, "not replaced by a rename")
    check(oct(os.stat(saved).st_mode & 0o777) == oct(0o644),
          "mode %o" % os.stat(saved).st_mode)
    no_temp_files(savedir, before)

    # Errors: clear, and nothing written.
    cwd = os.readlink("/proc/%d/cwd" % d2.proc.pid)
    cwd_before = set(os.listdir(cwd))
    r = d2.rpc("config/save", "relative.conf")
    check("error" in r and r["error"]["code"] == -32000 and
          r["error"]["data"]["errno"] == errno.EINVAL and
          "absolute" in r["error"]["message"], "relative path: %s" % r)
    no_temp_files(cwd, cwd_before)
    missing = os.path.join(savedir, "nodir", "x.conf")
    r = d2.rpc("config/save", missing)
    check("error" in r and r["error"]["data"]["errno"] == errno.ENOENT and
          os.path.dirname(missing) in r["error"]["message"] and
          "No such file or directory" in r["error"]["message"],
          "missing directory: %s" % r)
    check(not os.path.exists(os.path.dirname(missing)), "nodir created")
    isdir = os.path.join(savedir, "adir")
    os.mkdir(isdir)
    before = set(os.listdir(savedir))
    r = d2.rpc("config/save", isdir)
    check("error" in r and r["error"]["data"]["errno"] == errno.EISDIR and
          isdir in r["error"]["message"], "a directory in the way: %s" % r)
    no_temp_files(savedir, before)
    check(os.listdir(isdir) == [], "written into %s" % isdir)
    # vhostctl says it too: exit 1, the message on stderr.
    rc, out, err = d2.vhostctl("config", "save", missing, check_rc=1)
    check("nodir" in err and not out, "vhostctl: %r %r" % (out, err))
    with open(saved) as f:
        check(f.read() == show2, "a failed save touched %s" % saved)

    for g in guests.values():
        g.stop()
    d2.stop_clean(base)


if __name__ == "__main__":
    run(test_config_save)
