#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""libvirt for real: libvirtd (run by the test, in a private mount
namespace) defines two domains from the XML in docs/QEMU.md, one on each
vhost-user socket role: vm1 on a vhostd server socket (libvirt
mode='client', QEMU reconnects), vm2 on a socket QEMU makes (libvirt
mode='server', vhostd connects). QEMU runs as libvirt-qemu, so vhostd's
socket-group/socket-mode and the directories' permissions must be right.
The guests ping each other through vhostd (counted at its ports). vm3's
socket is another group's (root): its QEMU gets EACCES, and `virsh start`
blocks with the domain paused until it is destroyed. Then the domains are
destroyed and undefined, libvirtd stops, and nothing is left: no QEMU, no
libvirt state, vhostd's mbufs all back."""
import glob
import grp
import os
import pwd
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)
from vhdtest import Vhostd, check, run, wait_until  # noqa: E402
import guest  # noqa: E402
import lvirt  # noqa: E402
from qtest import ping  # noqa: E402

MAC = {"vm1": "52:54:00:00:0e:01", "vm2": "52:54:00:00:0e:02"}
IP = {"vm1": "10.0.14.1", "vm2": "10.0.14.2"}
ROLE = {"vm1": "server", "vm2": "client"}      # vhostd's side
# What libvirt must not leave on the host (it would make them here if the
# test's isolation failed).
HOST_PATHS = ["/run/libvirt", "/dev/hugepages/libvirt"] + [
    os.path.join(d, "machine") for d in glob.glob("/sys/fs/cgroup/*")]


def qemu_ids(pid):
    """(real uid, real gid) of process PID."""
    ids = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Uid", "Gid"):
                ids[k] = int(v.split()[0])
    return ids["Uid"], ids["Gid"]


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def qemu_cmdline(pid):
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        return f.read().decode(errors="replace").split("\0")


def test_libvirt(t):
    t0 = time.monotonic()
    host_before = {p for p in HOST_PATHS if os.path.exists(p)}
    kernel, initrd = guest.ensure_image()
    uid = pwd.getpwnam(lvirt.USER).pw_uid
    gid = grp.getgrnam(lvirt.GROUP).gr_gid
    # QEMU (libvirt-qemu) must reach everything below t.dir: search only.
    os.chmod(t.dir, 0o711)
    # Copies: libvirt chowns the kernel and initrd to libvirt-qemu while
    # the domain runs; the shared image cache stays as it is.
    img = t.path("img")
    os.makedirs(img, 0o755)
    kernel = shutil.copy(kernel, img)
    initrd = shutil.copy(initrd, img)
    # vhostd's server sockets: vhostd makes them root:libvirt-qemu 0660.
    srv_dir = t.path("vhostd")
    os.makedirs(srv_dir, 0o755)
    # vm2's socket is made by QEMU, as libvirt-qemu: its directory must be
    # writable by that group (and is nobody else's).
    cli_dir = t.path("qemu")
    os.makedirs(cli_dir)
    os.chown(cli_dir, 0, gid)
    os.chmod(cli_dir, 0o770)
    con_dir = t.path("console")
    os.makedirs(con_dir, 0o755)
    sock = {"vm1": os.path.join(srv_dir, "vm1.sock"),
            "vm2": os.path.join(cli_dir, "vm2.sock"),
            "vm3": os.path.join(srv_dir, "vm3.sock")}
    ports = {n: {"type": "vhost-user", "bridge": "br0", "mode": ROLE[n],
                 "path": sock[n]} for n in MAC}
    ports["vm3"] = dict(ports["vm1"], path=sock["vm3"])
    ports["vm3"]["socket-group"] = "root"     # not QEMU's group
    d = Vhostd(t, {"br0": {"mode": "learning"}}, ports,
               extra_global="socket-group = %s\nsocket-mode = 0660" %
               lvirt.GROUP).start()
    st = os.stat(sock["vm1"])
    check((st.st_uid, st.st_gid, st.st_mode & 0o777) == (0, gid, 0o660),
          "vm1.sock: uid %d gid %d mode %o" % (st.st_uid, st.st_gid,
                                               st.st_mode & 0o777))

    t1 = time.monotonic()
    lv = lvirt.Libvirtd(t).start()
    print("vhostd up in %.1fs, libvirtd in %.1fs more" %
          (t1 - t0, time.monotonic() - t1))
    cons, pids = {}, {}
    try:
        for n in list(MAC) + ["vm3"]:
            mac = MAC.get(n, "52:54:00:00:0e:03")
            cmdline = ("console=ttyS0 panic=-1 quiet loglevel=1 "
                       "mitigations=off ipv6.disable=1 vhd.name=%s "
                       "vhd.mac=%s" % (n, mac))
            if n in IP:
                cmdline += " vhd.ip=%s/24" % IP[n]
            xml = lvirt.domain_xml(
                n + "-" + t.tag, ROLE.get(n, "server"), sock[n], mac, kernel,
                initrd, cmdline, os.path.join(con_dir, n + ".sock"))
            path = t.path(n + ".xml")
            with open(path, "w") as f:
                f.write(xml)
            # --validate: libvirt's schema check of what the test made
            lv.virsh("define", "--validate", path)
        for n in MAC:
            dom = n + "-" + t.tag
            cons[n] = lvirt.DomainConsole(n, os.path.join(con_dir,
                                                          n + ".sock"),
                                          lv.qemu_log(dom), t.dir)
            ts = time.monotonic()
            pids[n] = lv.start_domain(dom)
            cons[n].attach()
            print("%s: virsh start took %.1fs (QEMU pid %d)" %
                  (dom, time.monotonic() - ts, pids[n]))
        # vm3: QEMU (libvirt-qemu) may not connect; it retries every
        # second, and the VM never starts (virsh start blocks).
        vm3 = "vm3-" + t.tag
        start3, pids["vm3"] = lv.start_domain_bg(vm3)
        for n in MAC:
            print("%s ready %.1fs after virsh start" %
                  (n, cons[n].wait_ready(240)))

        # QEMU as libvirt's unprivileged user, with what the XML asked.
        for n in MAC:
            check(qemu_ids(pids[n]) == (uid, gid), "%s: QEMU uid/gid %s, "
                  "wanted %d/%d" % (n, qemu_ids(pids[n]), uid, gid))
            cmd = qemu_cmdline(pids[n])
            objs = [a for a in cmd if "memory-backend-memfd" in a]
            check(objs and '"share":true' in objs[0],
                  "%s: no shared memfd RAM: %s" % (n, objs))
            nic = [a for a in cmd if '"driver":"virtio-net-pci"' in a]
            check(nic and '"vectors":0' in nic[0],
                  "%s: NIC without vectors=0: %s" % (n, nic))
            chardev = [a for a in cmd if a.startswith("socket,id=charnet0")]
            want = ("reconnect=1" if ROLE[n] == "server" else "server=on")
            check(chardev and "path=%s" % sock[n] in chardev[0] and
                  want in chardev[0], "%s: chardev %s, wanted %s" %
                  (n, chardev, want))
            for line in read(lv.qemu_log(n + "-" + t.tag)).splitlines():
                if "taint" in line:             # the override: expected
                    print("%s's log: %s" % (n, line))
        # libvirt leaves vhostd's socket alone; QEMU made vm2's.
        st = os.stat(sock["vm1"])
        check((st.st_uid, st.st_gid, st.st_mode & 0o777) == (0, gid, 0o660),
              "vm1.sock changed: uid %d gid %d mode %o" %
              (st.st_uid, st.st_gid, st.st_mode & 0o777))
        check(os.stat(sock["vm2"]).st_uid == uid, "vm2.sock not QEMU's")

        d.wait_up("vm1", "vm2")
        p0 = {n: d.port(n) for n in MAC}
        tx, rx = ping(cons["vm1"], IP["vm2"], 10, "-i 0.2")
        check(tx == 10 and rx == 10, "vm1 -> vm2 lost %d of %d" %
              (tx - rx, tx))
        tx, rx = ping(cons["vm2"], IP["vm1"], 10, "-i 0.2")
        check(tx == 10 and rx == 10, "vm2 -> vm1 lost %d of %d" %
              (tx - rx, tx))
        # 20 echo requests and 20 replies through each port (+ ARP)
        for n in MAC:
            p1 = d.port(n)
            for k in ("rx_packets", "tx_packets"):
                check(p1[k] - p0[n][k] >= 20, "port %s %s: %d -> %d" %
                      (n, k, p0[n][k], p1[k]))
            check(p1["connects"] == 1, "port %s connects %d" %
                  (n, p1["connects"]))
        fdb = d.fdb("br0")
        check(fdb.get(MAC["vm1"]) == "vm1" and fdb.get(MAC["vm2"]) == "vm2",
              "fdb %s" % fdb)

        # vm3, meanwhile: refused, retried, never running.
        log3 = lv.qemu_log(vm3)
        wait_until(lambda: "Permission denied" in read(log3), 60,
                   "vm3's QEMU to report EACCES (%s)" % log3)
        print("vm3: %s" % [line for line in read(log3).splitlines()
                           if "Permission denied" in line][0])
        check(start3.poll() is None, "virsh start vm3 returned")
        state = lv.virsh("domstate", vm3)[1].strip()
        check(state == "paused", "vm3 is %s" % state)
        check(d.port("vm3")["state"] == "down" and
              d.port("vm3")["connects"] == 0, "vm3: %s" % d.port("vm3"))
        lv.virsh("destroy", vm3)
        check(start3.wait(30) != 0, "virsh start vm3: exit 0 after destroy")
        lv.virsh("undefine", vm3)

        for n in MAC:
            cons[n].close()
            lv.virsh("destroy", n + "-" + t.tag)
            lv.virsh("undefine", n + "-" + t.tag)
        check(lv.domains() == [], "domains left: %s" % lv.domains())
        for n in pids:
            wait_until(lambda n=n: not os.path.exists("/proc/%d" % pids[n]),
                       30, "%s's QEMU to exit" % n)
        for n in MAC:
            wait_until(lambda n=n: d.port(n)["state"] == "down", 30,
                       "port %s down" % n)
        check(lv.stop() == 0, "libvirtd exit code")
    except Exception:
        for n, c in cons.items():
            print("----- %s console (%s):\n%s" %
                  (n, c.console_log, c.output[-3000:]))
            try:
                with open(c.stderr_log, errors="replace") as f:
                    print("----- %s: %s" % (c.stderr_log, f.read()[-4000:]))
            except OSError:
                pass
        print(lv.tail())
        raise
    d.stop_clean(0)
    left = {p for p in HOST_PATHS if os.path.exists(p)} - host_before
    check(not left, "libvirt left on the host: %s" % sorted(left))
    print("qemu-libvirt: %.1fs" % (time.monotonic() - t0))


if __name__ == "__main__":
    lack = lvirt.missing()
    if lack:
        print("qemu-libvirt: %s not found (Debian: libvirt-daemon-system, "
              "libvirt-clients); skipped" % lack)
        sys.exit(77)
    run(test_libvirt)
