#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Who may open a server port's socket: [vhostd] socket-group and
socket-mode, overridden per port, in the file and through `port add`.

A process of another user (uid 65534) connects and speaks vhost-user
(GET_FEATURES answered) when it is in the socket's group and the mode lets
the group write; otherwise connect() gets EACCES. Bad values are refused
with the file, line, section and key.
"""
import errno
import grp
import os
import stat
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
import vhdtest as vt  # noqa: E402

GROUP = "users"          # in every Debian install (gid 100)
NOBODY = 65534

# Run as uid 65534: connect to argv[1], ask GET_FEATURES, print the outcome.
PROBE = r"""
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print("errno", e.errno)
    sys.exit(0)
s.sendall(struct.pack("<III", 1, 1, 0))
r = b""
while len(r) < 20:
    c = s.recv(20 - len(r))
    if not c:
        break
    r += c
print("features", struct.unpack_from("<Q", r, 12)[0] if len(r) == 20 else -1)
"""


def probe(path, groups):
    """Connect to PATH as uid/gid 65534 with supplementary GROUPS (gids):
    ("features", N) or ("errno", E)."""
    argv = ["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY]
    argv += ["--groups=%s" % ",".join(map(str, groups))] if groups else \
        ["--clear-groups"]
    out = subprocess.run(argv + [sys.executable, "-c", PROBE, path],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         timeout=30).stdout.decode().split()
    vt.check(len(out) == 2, "probe printed %r" % out)
    return out[0], int(out[1])


def mode_gid(path):
    st = os.stat(path)
    return stat.S_IMODE(st.st_mode), st.st_gid


def test_socket_access(t):
    gid = grp.getgrnam(GROUP).gr_gid
    # uid 65534 must reach the sockets' directory.
    os.chmod(t.dir, 0o711)
    d = vt.Vhostd(t, {"br0": {}}, {
        "open": {"type": "vhost-user", "path": t.path("open.sock"),
                 "bridge": "br0"},
        "mine": {"type": "vhost-user", "path": t.path("mine.sock"),
                 "bridge": "br0", "socket-mode": "0600"},
        "world": {"type": "vhost-user", "path": t.path("world.sock"),
                  "bridge": "br0", "socket-group": "root",
                  "socket-mode": "666"},
    }, extra_global="socket-group = %s" % GROUP).start()
    base = d.mbufs_in_use()

    vt.check(mode_gid(t.path("open.sock")) == (0o660, gid),
             "open.sock: mode, gid %r" % (mode_gid(t.path("open.sock")),))
    vt.check(mode_gid(t.path("mine.sock")) == (0o600, gid),
             "mine.sock: %r" % (mode_gid(t.path("mine.sock")),))
    vt.check(mode_gid(t.path("world.sock")) == (0o666, 0),
             "world.sock: %r" % (mode_gid(t.path("world.sock")),))

    # In the group: connects and is answered; outside it: EACCES.
    kind, feats = probe(t.path("open.sock"), [gid])
    vt.check(kind == "features" and feats > 0,
             "a member of %s: %s %s" % (GROUP, kind, feats))
    vt.check(probe(t.path("open.sock"), []) == ("errno", errno.EACCES),
             "outside %s: not EACCES" % GROUP)
    vt.check(probe(t.path("mine.sock"), [gid]) == ("errno", errno.EACCES),
             "0600: a group member connected")
    kind, _ = probe(t.path("world.sock"), [])
    vt.check(kind == "features", "0666: refused (%s)" % kind)

    # At run time, the same keys.
    d.ctl("port/add", "late", "bridge=br0", "type=vhost-user",
          "path=" + t.path("late.sock"), "socket-mode=0640")
    vt.check(mode_gid(t.path("late.sock")) == (0o640, gid),
             "late.sock: %r" % (mode_gid(t.path("late.sock")),))
    vt.check(probe(t.path("late.sock"), [gid]) == ("errno", errno.EACCES),
             "0640: a group member connected")

    for args, want in (
            (["socket-mode=999"], "[port bad] socket-mode: '999' is not a "
             "file mode in octal such as 0660"),
            (["socket-mode=07777"], "socket-mode: '07777' is not a file "
             "mode"),
            (["socket-group=no-such-group"], "[port bad] socket-group: no "
             "such group on this machine"),
            (["mode=client", "socket-mode=0660"], "[port bad] socket-mode: "
             "only for mode = server")):
        r = d.rpc("port/add", "bad", "bridge=br0", "type=vhost-user",
                  "path=" + t.path("bad.sock"), *args)
        vt.check("error" in r and want in r["error"]["message"],
                 "port add %s: %r" % (args, r))
        vt.check(not os.path.exists(t.path("bad.sock")),
                 "a refused port left its socket")

    # The saved config keeps what differs per port.
    d.ctl("config/save", t.path("saved.conf"))
    saved = open(t.path("saved.conf")).read()
    vt.check("socket-group = %s\nsocket-mode = 0660\n" % GROUP in saved,
             "saved [vhostd]: %s" % saved)
    vt.check("[port mine]" in saved and "socket-mode = 0600" in saved and
             "socket-group = root" in saved, "saved ports: %s" % saved)

    # A bad file: where, and what.
    bad = t.path("bad.conf")
    with open(bad, "w") as f:
        f.write("[vhostd]\nsocket-group = no-such-group\n")
    p = subprocess.run([vt.VHOSTD, "--config", bad, "--check"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = p.stdout.decode()
    vt.check(p.returncode != 0 and "bad.conf:2: [vhostd] socket-group: no "
             "such group on this machine" in out, "--check: %s" % out)
    d.stop_clean(base)


if __name__ == "__main__":
    vt.run(test_socket_access)
