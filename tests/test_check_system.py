#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""vhostd --check-system: on this machine as it is, exit 0 with the
expected ok and warn lines; then each fault made real without touching the
host, in a mount namespace (unshare -m) with files bind-mounted over the
sysfs and procfs files it reads, or by a config naming what is not there:
no hugepages, too few, no hugetlbfs mount, huge-dir not a hugetlbfs, an
lcore's CPU offline, isolated or not, a PCI port that does not exist or is
bound to a kernel driver, no IOMMU and no vfio-pci, a socket directory
missing or not searchable by the socket's group, a socket path too long,
an unknown socket-group. Each gives its FAIL or warn line, the fix, and
the exit status (1 only for a FAIL). Nothing is started: no DPDK runtime
directory, no hugepage file appears."""
import glob
import grp
import os
import re
import shlex
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
import vhdtest as vt  # noqa: E402

GROUP = "users"          # in every Debian install (gid 100)
HP = "/sys/kernel/mm/hugepages"
CPU = "/sys/devices/system/cpu"
NODE0 = "/sys/devices/system/node/node0"


def default_kb():
    with open("/proc/meminfo") as f:
        return int(re.search(r"Hugepagesize:\s+(\d+) kB", f.read()).group(1))


class Checker:
    def __init__(self, t):
        self.t = t
        self.n = 0
        self.prefix = t.prefix("cs")

    def conf(self, extra_global="", ports=""):
        """A config file: one datapath lcore on CPU 1, 64 MiB, the
        control socket in the test's directory, then PORTS."""
        self.n += 1
        path = self.t.path("c%d.conf" % self.n)
        with open(path, "w") as f:
            f.write("[vhostd]\nlcores = 1\nmain-lcore = 0\nsocket-mem = 64\n"
                    "file-prefix = %s\ncontrol = %s\n%s\n[bridge br0]\n%s"
                    % (self.prefix, self.t.path("ctl.sock"), extra_global,
                       ports))
        return path

    def fake(self, path, text):
        """A file whose content is TEXT, to bind-mount over PATH."""
        self.n += 1
        f = self.t.path("fake%d" % self.n)
        with open(f, "w") as o:
            o.write(text)
        return "mount --bind %s %s" % (f, shlex.quote(path))

    def run(self, conf, code, pre=None, user=None, what=""):
        """vhostd --check-system [--config CONF], in a mount namespace
        after the shell commands PRE, as USER (uid) if given: it must exit
        CODE (never die of a signal); its output."""
        argv = [vt.VHOSTD, "--check-system"]
        if conf:
            argv += ["--config", conf]
        if user is not None:
            argv = ["setpriv", "--reuid=%d" % user, "--regid=%d" % user,
                    "--clear-groups"] + argv
        if pre:
            argv = ["unshare", "-m", "sh", "-ec",
                    "; ".join(pre) + '; exec "$0" "$@"'] + argv
        p = subprocess.run(argv, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                           timeout=60)
        out = p.stdout.decode(errors="replace")
        vt.check(p.returncode == code, "%s: exit %d, wanted %d:\n%s"
                 % (what, p.returncode, code, out))
        # Every line is a verdict, a fix under one, or the summary.
        for ln in out.splitlines():
            vt.check(re.match(r"(ok  |warn|FAIL)  \S| {6}(fix: | {5})\S|"
                              r"\d+ ok, \d+ warn, \d+ FAIL: ", ln),
                     "%s: stray line %r in:\n%s" % (what, ln, out))
        n_fail = len(re.findall(r"^FAIL  ", out, re.M))
        vt.check(re.search(r"^\d+ ok, \d+ warn, %d FAIL: " % n_fail, out,
                           re.M), "%s: summary wrong:\n%s" % (what, out))
        vt.check((n_fail > 0) == (code == 1), "%s: %d FAIL, exit %d"
                 % (what, n_fail, code))
        print("ok: %s -> %d" % (what, code))
        return out


def has(out, level, text, fix=None):
    """OUT has a LEVEL line containing TEXT, followed by a fix containing
    FIX (each of a list) if given."""
    lines = out.splitlines()
    for i, ln in enumerate(lines):
        if ln.startswith(level.ljust(4) + "  ") and text in ln:
            fixes = []
            for f in lines[i + 1:]:
                if not f.startswith("      "):
                    break
                fixes.append(f.strip())
            for want in ([] if fix is None else
                         fix if isinstance(fix, list) else [fix]):
                vt.check(any(want in f for f in fixes),
                         "fix %r not under %r in:\n%s" % (want, ln, out))
            return ln
    raise vt.Failure("no '%s ... %s' line in:\n%s" % (level, text, out))


def lacks(out, level, text):
    for ln in out.splitlines():
        vt.check(not (ln.startswith(level.ljust(4) + "  ") and text in ln),
                 "unexpected %r in:\n%s" % (ln, out))


def both_on_node0():
    """CPUs 0 and 1 (main-lcore and lcores of the test's configs) are on
    NUMA node 0."""
    return all(os.path.exists("%s/cpu%d/node0" % (CPU, i)) for i in (0, 1))


def host_pci_bound():
    """A PCI device of this machine bound to an ordinary kernel driver
    (address, driver), or None: only looked at, never rebound."""
    for d in sorted(glob.glob("/sys/bus/pci/devices/*")):
        try:
            drv = os.path.basename(os.readlink(d + "/driver"))
        except OSError:
            continue
        if drv not in ("vfio-pci", "mlx5_core", "mlx4_core") and \
                "uio" not in drv:
            return os.path.basename(d), drv
    return None


def test_check_system(t):
    c = Checker(t)
    kb = default_kb()
    os.chmod(t.dir, 0o711)       # the socket group must get through it
    for d, mode in (("open", 0o750), ("closed", 0o700), ("cl", 0o755)):
        os.mkdir(t.path(d), mode)
        os.chmod(t.path(d), mode)
    os.chown(t.path("open"), -1, grp.getgrnam(GROUP).gr_gid)
    good_ports = ("[port vm1]\ntype = vhost-user\npath = %s\nbridge = br0\n"
                  "socket-group = %s\n"
                  "[port vm2]\ntype = vhost-user\npath = %s\nbridge = br0\n"
                  "mode = client\n"
                  % (t.path("open", "vm1.sock"), GROUP, t.path("vm2.sock")))
    good = c.conf("huge-dir = /dev/hugepages", good_ports)

    # ---- this machine as it is: hugepages reserved, no PCI port.
    out = c.run(good, 0, what="host")
    has(out, "ok", "config %s: 1 bridge(s), 2 port(s), 1 datapath lcore(s), "
        "socket-mem 64 MiB" % good)
    has(out, "ok", "dpdk: DPDK 22.11")
    has(out, "ok", "privileges: running as root")
    has(out, "ok", "open files: hard limit")
    has(out, "ok", "huge-dir /dev/hugepages: hugetlbfs of %dkB pages" % kb)
    has(out, "ok", "hugepages %dkB: " % kb)
    has(out, "ok", "hugepage memory: ")
    if both_on_node0():
        has(out, "ok", "hugepages on node 0 (cpus 0,1): ")
    has(out, "ok", "cpus: main-lcore 0 and lcores 1 online")
    with open(CPU + "/isolated") as f:
        iso = f.read().strip()
    if iso == "":
        has(out, "warn", "cpu isolation: lcores cpu(s) 1 not isolated",
            "add isolcpus=1 nohz_full=1 rcu_nocbs=1 to GRUB_CMDLINE_LINUX "
            "in /etc/default/grub")
    has(out, "ok", "control socket %s: directory %s ready"
        % (t.path("ctl.sock"), t.dir))
    has(out, "ok", "port vm1 socket %s: directory %s ready, reachable by "
        "group %s" % (t.path("open", "vm1.sock"), t.path("open"), GROUP))
    has(out, "ok", "port vm2 (client) socket %s: directory %s ready"
        % (t.path("vm2.sock"), t.dir))
    has(out, "ok", "pci: no PCI ports in the config")
    # It looked and took nothing: no EAL runtime dir, no hugepage file,
    # no socket.
    vt.check(not os.path.exists(os.path.join(vt.RUNTIME, c.prefix)),
             "a DPDK runtime directory appeared")
    vt.check(not glob.glob("/dev/hugepages/%s*" % c.prefix),
             "hugepage files appeared")
    vt.check(not os.path.exists(t.path("ctl.sock")) and
             not os.path.exists(t.path("open", "vm1.sock")),
             "a socket appeared")

    # ---- no config: /etc/vhostd/vhostd.conf hidden if installed.
    pre = ["[ ! -d /etc/vhostd ] || mount -t tmpfs none /etc/vhostd"]
    out = c.run(None, 0, pre, what="no config")
    has(out, "ok", "config: none (no --config, no /etc/vhostd/vhostd.conf)")
    has(out, "ok", "hugepages %dkB: " % kb)
    lacks(out, "ok", "cpus:")
    # ... and the default config, where vhostd is installed.
    if os.path.isdir("/etc/vhostd"):
        out = c.run(None, 0, ["mount -t tmpfs none /etc/vhostd",
                              "cp %s /etc/vhostd/vhostd.conf" % good],
                    what="default config")
        has(out, "ok", "config /etc/vhostd/vhostd.conf: 1 bridge(s), 2 "
            "port(s)")
        has(out, "ok", "port vm1 socket %s" % t.path("open", "vm1.sock"))

    # ---- no hugepages reserved (every size, in total and per node).
    zero = [c.fake(f, "0\n") for f in
            glob.glob(HP + "/*/nr_hugepages") +
            glob.glob(HP + "/*/free_hugepages") +
            glob.glob("/sys/devices/system/node/node*/hugepages/*/"
                      "nr_hugepages") +
            glob.glob("/sys/devices/system/node/node*/hugepages/*/"
                      "free_hugepages")]
    out = c.run(good, 1, zero, what="no hugepages")
    pages = 64 * 1024 // kb
    has(out, "FAIL", "hugepages: none reserved",
        ["echo %d > %s/hugepages-%dkB/nr_hugepages" % (pages, HP, kb),
         "echo 'vm.nr_hugepages = %d' > /etc/sysctl.d/80-vhostd.conf"
         % pages])
    has(out, "FAIL", "hugepage memory: 0 MiB free where DPDK looks, "
        "socket-mem needs 64 MiB")
    if both_on_node0():
        has(out, "FAIL", "hugepages on node 0 (cpus 0,1): none free",
            "%s/hugepages/hugepages-%dkB/nr_hugepages" % (NODE0, kb))

    # ---- too few: 10 free pages (20 MiB), none promised.
    with open("%s/hugepages-%dkB/nr_hugepages" % (HP, kb)) as f:
        nr = int(f.read())
    n_free = 10 if kb == 2048 else 0
    few = [c.fake("%s/hugepages-%dkB/free_hugepages" % (HP, kb),
                  "%d\n" % n_free),
           c.fake("%s/hugepages-%dkB/resv_hugepages" % (HP, kb), "0\n")]
    out = c.run(good, 1, few, what="too few hugepages")
    free_mib = n_free * kb // 1024
    has(out, "FAIL", "hugepage memory: %d MiB free where DPDK looks, "
        "socket-mem needs 64 MiB" % free_mib,
        "echo %d > %s/hugepages-%dkB/nr_hugepages"
        % (nr + -(-(64 - free_mib) * 1024 // kb), HP, kb))

    # ---- no hugetlbfs mounted (every one unmounted in the namespace).
    umount = ["awk '$3 == \"hugetlbfs\" {print $2}' /proc/mounts | "
              "xargs -r -n1 umount -l"]
    nohuge = c.conf("", good_ports)
    out = c.run(nohuge, 1, umount, what="no hugetlbfs")
    has(out, "FAIL", "hugetlbfs: none mounted for the reserved sizes",
        ["mkdir -p /dev/hugepages && mount -t hugetlbfs -o pagesize=%dM "
         "nodev /dev/hugepages" % (kb // 1024),
         "/etc/fstab: nodev /dev/hugepages hugetlbfs pagesize=%dM 0 0"
         % (kb // 1024)])
    has(out, "ok", "(unused: not mounted)")
    lacks(out, "ok", "hugepage memory")
    # ... and huge-dir on the same unmounted /dev/hugepages.
    out = c.run(good, 1, umount, what="huge-dir unmounted")
    has(out, "FAIL", "huge-dir /dev/hugepages: not a hugetlbfs mount",
        "mount -t hugetlbfs -o pagesize=%dM nodev /dev/hugepages"
        % (kb // 1024))
    # ... and huge-dir an ordinary directory.
    out = c.run(c.conf("huge-dir = %s" % t.dir, good_ports), 1,
                what="huge-dir not hugetlbfs")
    has(out, "FAIL", "huge-dir %s: not a hugetlbfs mount" % t.dir)

    # ---- CPUs: isolated (bind the lcore list over isolated, nohz_full).
    iso = [c.fake(CPU + "/isolated", "1\n")]
    if os.path.exists(CPU + "/nohz_full"):
        iso.append(c.fake(CPU + "/nohz_full", "1\n"))
    out = c.run(good, 0, iso, what="isolated")
    has(out, "ok", "cpu isolation: lcores cpu(s) 1 isolated")
    lacks(out, "warn", "cpu isolation")
    # not isolated: a warning only.
    out = c.run(good, 0, [c.fake(CPU + "/isolated", "\n")],
                what="not isolated")
    has(out, "warn", "cpu isolation: lcores cpu(s) 1 not isolated",
        "isolcpus=1 nohz_full=1 rcu_nocbs=1")
    # the lcore's CPU offline: EAL would refuse it.
    out = c.run(good, 1, [c.fake(CPU + "/online", "0\n")], what="offline")
    has(out, "FAIL", "cpu 1 (lcores): offline",
        "echo 1 > /sys/devices/system/cpu/cpu1/online")
    lacks(out, "FAIL", "cpu 0")

    # ---- PCI: a device that is not there, one bound to a kernel driver;
    # no IOMMU groups and no vfio-pci (empty directories over them).
    absent = next(a for a in ("0000:7f:1f.7", "0000:7e:1e.6")
                  if not os.path.exists("/sys/bus/pci/devices/" + a))
    ports = good_ports + ("[port nic]\ntype = ethdev\ndevargs = %s\n"
                          "bridge = br0\n" % absent)
    bound = host_pci_bound()
    if bound:
        ports += ("[port nic2]\ntype = ethdev\ndevargs = %s\nbridge = br0\n"
                  % bound[0])
    pci = c.conf("", ports)
    nopci = ["mount -t tmpfs none /sys/kernel/iommu_groups",
             "mount -t tmpfs none /sys/bus/pci/drivers"]
    out = c.run(pci, 1, nopci, what="pci")
    has(out, "FAIL", "port nic: PCI device %s: not on this machine" % absent,
        "lspci -D")
    has(out, "FAIL", "iommu: no IOMMU groups", "iommu=pt")
    has(out, "FAIL", "vfio-pci: module not loaded",
        ["modprobe vfio-pci", "/etc/modules-load.d/vfio-pci.conf"])
    if bound:
        has(out, "FAIL", "port nic2: PCI device %s: bound to %s"
            % bound, "dpdk-devbind.py --bind=vfio-pci %s" % bound[0])
    else:
        print("note: no PCI device bound to a kernel driver here")

    # ---- sockets.
    # a directory that does not exist (vhostd makes none but /run/vhostd).
    out = c.run(c.conf("", "[port a]\ntype = vhost-user\npath = %s\n"
                       "bridge = br0\nsocket-group = %s\n"
                       % (t.path("nodir", "a.sock"), GROUP)), 1,
                what="socket dir missing")
    has(out, "FAIL", "port a socket %s: directory %s: No such file or "
        "directory" % (t.path("nodir", "a.sock"), t.path("nodir")),
        "install -d -m 0750 -g %s %s" % (GROUP, t.path("nodir")))
    # a directory the socket's group cannot search: a warning only.
    out = c.run(c.conf("socket-group = %s" % GROUP,
                       "[port b]\ntype = vhost-user\npath = %s\n"
                       "bridge = br0\n" % t.path("closed", "b.sock")), 0,
                what="socket dir closed")
    has(out, "warn", "port b socket %s: group %s cannot search %s (mode 0700"
        % (t.path("closed", "b.sock"), GROUP, t.path("closed")),
        "chgrp %s %s && chmod g+x %s" % (GROUP, t.path("closed"),
                                         t.path("closed")))
    # ... an ancestor of it: the fix is the ancestor's.
    os.chmod(t.dir, 0o700)
    try:
        out = c.run(c.conf("", good_ports), 0, what="socket dir's parent")
    finally:
        os.chmod(t.dir, 0o711)
    has(out, "warn", "port vm1 socket %s: group %s cannot search %s (mode "
        "0700" % (t.path("open", "vm1.sock"), GROUP, t.dir),
        "chmod o+x %s" % t.dir)
    # a client port whose directory QEMU (in the group) cannot write.
    out = c.run(c.conf("socket-group = %s" % GROUP,
                       "[port q]\ntype = vhost-user\npath = %s\n"
                       "bridge = br0\nmode = client\n"
                       % t.path("cl", "q.sock")), 0, what="client dir")
    has(out, "warn", "port q (client) socket %s: group %s cannot create "
        "files in %s (mode 0755)" % (t.path("cl", "q.sock"), GROUP,
                                     t.path("cl")),
        "chgrp %s %s && chmod g+wx %s" % (GROUP, t.path("cl"),
                                          t.path("cl")))
    # a mode the group cannot connect with, and a file in the way.
    open(t.path("file.sock"), "w").close()
    out = c.run(c.conf("", "[port m]\ntype = vhost-user\npath = %s\n"
                       "bridge = br0\nsocket-group = %s\nsocket-mode = 0640\n"
                       "[port f]\ntype = vhost-user\npath = %s\nbridge = br0\n"
                       % (t.path("open", "m.sock"), GROUP,
                          t.path("file.sock"))), 1, what="mode, file")
    has(out, "warn", "port m socket %s: mode 0640: group %s cannot connect"
        % (t.path("open", "m.sock"), GROUP), "socket-mode = 0660")
    has(out, "FAIL", "port f socket %s: a file that is not a socket is "
        "there" % t.path("file.sock"), "rm %s" % t.path("file.sock"))
    # a path too long for a unix socket: the config is refused, and why.
    long_path = t.path("x" * (108 - len(t.dir)) + ".sock")
    conf = c.conf("", "[port l]\ntype = vhost-user\npath = %s\n"
                  "bridge = br0\n" % long_path)
    out = c.run(conf, 1, what="path too long")
    has(out, "FAIL", "config: %s:" % conf)
    has(out, "FAIL", "[port l] path %s: path too long (%d bytes, at most "
        "107)" % (long_path, len(long_path)), "a path of at most 107 bytes")
    # an unknown socket group (refused with the config) ...
    conf = c.conf("", "[port g]\ntype = vhost-user\npath = %s\n"
                  "bridge = br0\nsocket-group = vhdnosuchgroup\n"
                  % t.path("g.sock"))
    out = c.run(conf, 1, what="unknown socket-group")
    has(out, "FAIL", "config: %s:" % conf, "edit %s" % conf)
    has(out, "FAIL", "[port g] socket-group: no group 'vhdnosuchgroup'",
        "groupadd --system vhdnosuchgroup")
    # ... and an unknown control group (which only fails at start).
    out = c.run(c.conf("control-group = vhdnosuchgroup", good_ports), 1,
                what="unknown control-group")
    has(out, "FAIL", "control socket %s: no group 'vhdnosuchgroup'"
        % t.path("ctl.sock"), "groupadd --system vhdnosuchgroup")

    # ---- a config that is not there.
    out = c.run(t.path("none.conf"), 1, what="no such config")
    has(out, "FAIL", "config: %s: cannot open" % t.path("none.conf"),
        "/etc/vhostd/vhostd.conf")

    # ---- vhostd already running (the check run by hand): the hugepages
    # it holds are not missing and its live socket is not in the way.
    d = vt.Vhostd(t, {"br0": {}}, {"vm1": {
        "type": "vhost-user", "path": t.path("run1.sock"),
        "bridge": "br0"}}).start()
    out = c.run(d.conf, 0, few, what="vhostd running")
    has(out, "ok", "running: pid %d holds file-prefix %s"
        % (d.proc.pid, d.prefix))
    has(out, "ok", "hugepage memory: %d MiB free besides what the running "
        "vhostd holds" % free_mib)
    has(out, "ok", "port vm1 socket %s: directory %s ready"
        % (t.path("run1.sock"), t.dir))
    vt.check(d.proc.poll() is None, "vhostd died:\n%s" % d.log())
    vt.check(d.stop() == 0, "vhostd's exit status")

    # None of these runs took anything either.
    vt.check(not os.path.exists(os.path.join(vt.RUNTIME, c.prefix)) and
             not glob.glob("/dev/hugepages/%s*" % c.prefix),
             "a DPDK runtime directory or hugepage file appeared")

    # ---- not root: as uid 65534 (who may not create the sockets either).
    if subprocess.call(["setpriv", "--reuid=65534", "--regid=65534",
                        "--clear-groups", "test", "-x", vt.VHOSTD]) != 0:
        print("note: uid 65534 cannot run %s: not-root case left out"
              % vt.VHOSTD)
        return
    os.chmod(good, 0o644)
    os.chmod(nohuge, 0o644)
    out = c.run(good, 1, user=65534, what="not root")
    has(out, "warn", "privileges: uid 65534, without CAP_IPC_LOCK "
        "CAP_NET_ADMIN CAP_NET_RAW",
        "AmbientCapabilities=CAP_IPC_LOCK CAP_NET_ADMIN CAP_NET_RAW")
    has(out, "FAIL", "huge-dir /dev/hugepages: uid 65534 cannot create "
        "files there")
    has(out, "FAIL", "control socket %s: uid 65534 cannot create files in %s"
        % (t.path("ctl.sock"), t.dir))
    lacks(out, "warn", "locked memory")      # no PCI port: vfio maps none
    out = c.run(nohuge, 1, user=65534, what="not root, hugetlbfs")
    has(out, "FAIL", "hugetlbfs: %dkB pages at /dev/hugepages: uid 65534 "
        "cannot create files there" % kb, "chown 65534 /dev/hugepages")


if __name__ == "__main__":
    vt.run(test_check_system)
