#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Bad input gets a clear error and a non-zero exit, never a crash or a
hang: command line, config files, missing hugepages, socket paths that
cannot be used, an unknown device, and garbage on a vhost-user socket."""
import os
import socket
import struct
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from vhdtest import (BCAST, VHOSTD, Guest, Vhostd, check, frame,  # noqa: E402
                     run, wait_until)


def refuses(argv, want, code=1, pre=None, timeout=60):
    """Run vhostd; it must exit CODE (not die of a signal) saying WANT."""
    if pre:
        argv = ["unshare", "-m", "sh", "-c", pre + '; exec "$0" "$@"'] + argv
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL, timeout=timeout)
    out = p.stdout.decode(errors="replace")
    check(p.returncode == code,
          "%s: exit %d, wanted %d:\n%s" % (argv, p.returncode, code, out))
    for w in want if isinstance(want, list) else [want]:
        check(w in out, "%s: '%s' not in:\n%s" % (argv, w, out))
    print("ok: %s -> %d: %s" % (" ".join(argv[-3:]), code, w))
    return out


def conf(t, name, text):
    path = t.path(name)
    with open(path, "w") as f:
        f.write(text)
    return path


def base(t, prefix, port_text):
    # A control socket of the test's own: the default one is in
    # /run/vhostd, which vhostd creates (and the test would leave behind)
    # before it finds the bad port.
    return ("[vhostd]\nlcores = 1\nfile-prefix = %s\nsocket-mem = 64\n"
            "control = %s\n[bridge br0]\n[port p]\n%sbridge = br0\n" % (
                prefix, t.path("refused.ctl"), port_text))


def test_bad_input(t):
    pre = t.prefix("x")
    # Command line.
    refuses([VHOSTD], "--config FILE is required", code=2)
    refuses([VHOSTD, "--bogus"], "Usage", code=2)
    refuses([VHOSTD, "--config", t.path("nope.conf")],
            ["nope.conf", "No such file"])
    # Config errors name the file, line, section and key.
    c = conf(t, "typo.conf", "[vhostd]\nlcores = 1\nsocket_mem = 64\n")
    refuses([VHOSTD, "--config", c], "typo.conf:3: [vhostd] socket_mem: "
            "unknown key")
    c = conf(t, "dup.conf", "[bridge b]\n[port a]\ntype = vhost-user\n"
             "path = /tmp/x.sock\nbridge = b\n[port c]\ntype = vhost-user\n"
             "path = /tmp/x.sock\nbridge = b\n")
    refuses([VHOSTD, "--config", c], "dup.conf:8: [port c] path: socket "
            "path already used by port 'a'")
    c = conf(t, "bin.conf", "\x00\x01\x02garbage\n")
    refuses([VHOSTD, "--config", c], "bin.conf:1:")

    # No hugepages at all (hugetlbfs unmounted in a private namespace).
    ok = conf(t, "ok.conf", base(t, pre, "type = vhost-user\npath = %s\n" %
                                 t.path("ok.sock")))
    refuses([VHOSTD, "--config", ok], "hugepages",
            pre="for m in $(awk '$3==\"hugetlbfs\"{print $2}' /proc/mounts);"
                " do umount -l $m; done")
    # Socket paths that cannot be used.
    c = conf(t, "nodir.conf", base(t, pre, "type = vhost-user\npath = "
                                   "/nonexistent-vhostd-dir/a.sock\n"))
    refuses([VHOSTD, "--config", c], ["/nonexistent-vhostd-dir",
                                      "No such file or directory"])
    ro = t.path("ro")
    os.mkdir(ro)
    c = conf(t, "ro.conf", base(t, pre, "type = vhost-user\npath = %s/a.sock\n"
                                % ro))
    refuses([VHOSTD, "--config", c], "Read-only file system",
            pre="mount -t tmpfs -o ro tmpfs %s" % ro)
    reg = t.path("regular")
    open(reg, "w").close()
    c = conf(t, "reg.conf", base(t, pre, "type = vhost-user\npath = %s\n" % reg))
    refuses([VHOSTD, "--config", c], "exists and is not a socket")
    # An unknown device.
    c = conf(t, "dev.conf", base(t, pre, "type = ethdev\ndevargs = "
                                 "net_nosuchdriver0\n"))
    refuses([VHOSTD, "--config", c], "EAL")

    # A socket in use by a running vhostd: the second one refuses, the
    # first one is untouched.
    vh = {"type": "vhost-user", "bridge": "br0", "path": t.path("a.sock")}
    d = Vhostd(t, {"br0": {}}, {"a": vh, "b": dict(vh, path=t.path("b.sock"))}
               ).start()
    c = conf(t, "inuse.conf", base(t, t.prefix("y"), "type = vhost-user\n"
                                   "path = %s\n" % t.path("a.sock")))
    refuses([VHOSTD, "--config", c], "%s: in use by another process" %
            t.path("a.sock"))
    check(d.proc.poll() is None, "the first vhostd died")

    # Garbage on a vhost-user socket: vhostd drops that connection and
    # serves the next one.
    for junk in (b"\xff" * 64,
                 struct.pack("<III", 5, 0x1, 0xFFFFFFF0) + b"\x00" * 32,
                 struct.pack("<III", 999, 0x1, 0)):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(t.path("a.sock"))
        s.sendall(junk)
        s.close()
    check(d.proc.poll() is None, "vhostd died of vhost-user garbage")
    fr = [frame(BCAST, "02:00:00:00:00:0a", size=80)]
    gb = Guest(t, "gb", t.path("b.sock")).start()
    d.wait_up("b")
    ga = Guest(t, "ga", t.path("a.sock"), frames=fr).start()
    wait_until(lambda: gb.received() == fr, 30,
               "a frame switched after the garbage")
    # A second guest on a socket that has one is refused; the first stays.
    intruder = Guest(t, "gx", t.path("b.sock")).start(wait=False)
    wait_until(lambda: "refused a second connection" in d.log(), 30,
               "the second connection refused")
    intruder.kill()
    check(d.port("b")["state"] == "up" and d.port("b")["connects"] == 1,
          "the first guest lost its port: %s" % d.port("b"))
    fr2 = [frame(BCAST, "02:00:00:00:00:0a", size=90)]
    ga.stop()
    ga = Guest(t, "ga2", t.path("a.sock"), frames=fr2).start()
    wait_until(lambda: gb.received() == fr + fr2, 30,
               "the first guest still served")
    ga.stop()
    gb.stop()
    check(d.stop() == 0, "vhostd exit code")


if __name__ == "__main__":
    run(test_bad_input)
