#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""QEMU as an unprivileged user (uid 65534, as libvirt-qemu or KubeVirt
run it) attaches to vhostd server sockets made for its group
(socket-group = users, socket-mode = 0660): vm1 (unprivileged, in the
group) pings vm2. vm3, the same user outside the group, gets EACCES:
QEMU says "Permission denied" and its port never comes up."""
import grp
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)
from vhdtest import Vhostd, check, run, wait_until  # noqa: E402
import guest  # noqa: E402
from qtest import boot, ping  # noqa: E402

MAC = {1: "52:54:00:00:0c:01", 2: "52:54:00:00:0c:02",
       3: "52:54:00:00:0c:03"}
GROUP = "users"


def test_qemu_socket_group(t):
    guest.ensure_image()
    gid = grp.getgrnam(GROUP).gr_gid
    os.chmod(t.dir, 0o711)          # QEMU's user reaches the sockets
    d = Vhostd(t, {"br0": {"mode": "learning"}}, {
        "vm%d" % i: {"type": "vhost-user", "bridge": "br0", "mode": "server",
                     "path": t.path("vm%d.sock" % i)} for i in MAC},
        extra_global="socket-group = %s\nsocket-mode = 0660" % GROUP).start()
    for i in MAC:
        st = os.stat(t.path("vm%d.sock" % i))
        check(st.st_gid == gid and st.st_mode & 0o777 == 0o660,
              "vm%d.sock: gid %d mode %o" % (i, st.st_gid, st.st_mode))
    # QEMU as nobody writes its QMP socket in a directory of its own.
    wd = {}
    for i in (1, 3):
        wd[i] = t.path("q%d" % i)
        os.makedirs(wd[i])
        os.chmod(wd[i], 0o777)
    g1 = boot(t, "vm1", t.path("vm1.sock"), "client", MAC[1], "10.0.7.1/24",
              user="nobody", groups=[gid], workdir=wd[1])
    g2 = boot(t, "vm2", t.path("vm2.sock"), "client", MAC[2], "10.0.7.2/24")
    g3 = boot(t, "vm3", t.path("vm3.sock"), "client", MAC[3], "10.0.7.3/24",
              user="nobody", groups=[], workdir=wd[3])
    print("guests ready in %.1f / %.1f s" % (g1.wait_ready(240),
                                             g2.wait_ready(240)))
    d.wait_up("vm1", "vm2")
    tx, rx = ping(g1, "10.0.7.2", 5, "-i 0.2")
    check(tx == 5 and rx == 5, "vm1 (uid 65534, group %s) -> vm2: %d of %d"
          % (GROUP, rx, tx))
    # vm3's QEMU: connect() refused, retried, the VM does not start.
    wait_until(lambda: "Permission denied" in open(g3.stderr_log).read(), 60,
               "vm3's QEMU to report EACCES (%s)" % g3.stderr_log)
    check(d.port("vm3")["state"] == "down" and
          d.port("vm3")["connects"] == 0, "vm3 connected: %s" % d.port("vm3"))
    print("vm3: %s" % open(g3.stderr_log).read().strip().splitlines()[-1])
    for g in (g1, g2, g3):
        g.kill()
    d.stop_clean(0)


if __name__ == "__main__":
    run(test_qemu_socket_group)
