#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The Debian package, built, installed and run as an operator would.

From a copy of this checkout (committed or not): `meson install --destdir`
installs the expected files; dpkg-buildpackage builds the .deb, lintian
finds no error; apt-get installs it (group vhostd, conffile, unit enabled);
systemd-analyze verify passes. Then the INSTALLED vhostd runs under a real
systemd (tests/lib/sysns.py): `systemctl start` returns once vhostd is
ready (the control socket answers at once), the unit's state and status,
the sockets' group, two testpmd guests exchange frames through it
(counted), the journal has its lines with priorities, bash completion
completes from it, a SIGSEGV is followed by a restart that guests use
again, `systemctl stop` is a clean exit with its hugepage files gone.
Last, the package is purged and the machine left as it was.

Needs root, dpkg-buildpackage, lintian, bash-completion, hugepages.
"""
import grp
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from vhdtest import (ROOT, Guest, check, frame, run,  # noqa: E402
                     wait_until)
from sysns import SystemdNS  # noqa: E402

PKG = "vhostd"
GROUP = "vhostd"
CONF = "/etc/vhostd/vhostd.conf"
UNIT = "/lib/systemd/system/vhostd.service"
WANTS = "/etc/systemd/system/multi-user.target.wants/vhostd.service"
VHOSTD = "/usr/sbin/vhostd"
VHOSTCTL = "/usr/bin/vhostctl"
SOCK1, SOCK2 = "/run/vhostd/vm1.sock", "/run/vhostd/vm2.sock"
CTL = "/run/vhostd/vhostd.ctl"
MAC1, MAC2 = "02:00:00:00:0e:01", "02:00:00:00:0e:02"

# What the package holds (and `meson install` with prefix /usr, but for
# what debhelper adds). Paths below the prefix for `meson install`.
PKG_FILES = {
    "etc/vhostd/vhostd.conf", "lib/systemd/system/vhostd.service",
    "usr/bin/vhostctl", "usr/sbin/vhostd", "usr/lib/sysusers.d/vhostd.conf",
    "usr/share/bash-completion/completions/vhostctl",
    "usr/share/man/man5/vhostd.conf.5.gz", "usr/share/man/man8/vhostd.8.gz",
    "usr/share/man/man8/vhostctl.8.gz",
    "usr/share/doc/vhostd/changelog.gz", "usr/share/doc/vhostd/copyright",
}
MESON_FILES = {
    "{prefix}/bin/vhostctl", "{prefix}/sbin/vhostd",
    "{prefix}/etc/vhostd/vhostd.conf",
    "{prefix}/share/man/man5/vhostd.conf.5",
    "{prefix}/share/man/man8/vhostd.8", "{prefix}/share/man/man8/vhostctl.8",
    "lib/systemd/system/vhostd.service", "usr/lib/sysusers.d/vhostd.conf",
    "usr/share/bash-completion/completions/vhostctl",
}


class Step:
    """Prints how long each step took."""

    def __init__(self):
        self.t0 = self.t = time.monotonic()

    def __call__(self, what):
        now = time.monotonic()
        print("[%6.1fs] %s (%.1fs)" % (now - self.t0, what, now - self.t),
              flush=True)
        self.t = now


def sh(argv, ok=(0,), **kw):
    """ARGV to its end; Failure unless its exit code is in OK."""
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, universal_newlines=True,
                       **kw)
    check(p.returncode in ok, "%s: exit %d:\n%s" % (
        " ".join(argv), p.returncode, p.stdout[-4000:]))
    return p.stdout


def installed():
    """The package is on this machine (installed or its conffiles left)."""
    st = subprocess.run(["dpkg-query", "-W", "-f", "${Status}", PKG],
                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                        universal_newlines=True).stdout
    return st.endswith(" installed") or "config-files" in st


def tree(d):
    return {os.path.relpath(os.path.join(r, f), d)
            for r, _, fs in os.walk(d) for f in fs}


def copy_checkout(dst):
    """The checkout's files, committed or not (not ignored ones)."""
    names = subprocess.run(
        ["git", "-C", ROOT, "ls-files", "-z", "--cached", "--others",
         "--exclude-standard"], stdout=subprocess.PIPE,
        check=True).stdout.decode().split("\0")
    for n in names:
        src = os.path.join(ROOT, n)
        if n and os.path.isfile(src):  # a deleted, uncommitted file: not
            os.makedirs(os.path.join(dst, os.path.dirname(n)), exist_ok=True)
            shutil.copy2(src, os.path.join(dst, n))


def meson_install_check(t):
    """`meson install --destdir` of this build installs what it should."""
    build = os.environ.get("VHD_BUILD_ROOT")
    if not build:
        print("VHD_BUILD_ROOT not set: meson install not checked")
        return
    dest = t.path("destdir")
    sh(["meson", "install", "-C", build, "--no-rebuild", "--quiet",
        "--destdir", dest])
    info = json.loads(sh(["meson", "introspect", build, "--buildoptions"]))
    opt = {o["name"]: o["value"] for o in info}
    prefix = opt["prefix"].lstrip("/")
    # sysconfdir: absolute (/etc for prefix /usr) or below the prefix.
    want = {f.format(prefix=prefix) for f in MESON_FILES}
    sysconf = opt["sysconfdir"]
    want = {f.replace(prefix + "/etc/", (
        sysconf.lstrip("/") if sysconf.startswith("/")
        else prefix + "/" + sysconf) + "/") for f in want}
    got = tree(dest)
    check(got == want, "meson install: missing %s, unexpected %s" % (
        sorted(want - got), sorted(got - want)))
    unit = open(os.path.join(dest, "lib/systemd/system/vhostd.service")).read()
    check("ExecStart=/%s/sbin/vhostd --config /" % prefix in unit,
          "the unit's ExecStart is not below the prefix: %s" % unit)


def build_package(t, step):
    src = t.path("src", "vhostd")
    copy_checkout(src)
    step("checkout copied to %s" % src)
    # The source package too (from the clean tree), for lintian's checks
    # of debian/ itself.
    sh(["dpkg-source", "-b", "vhostd"], cwd=t.path("src"))
    env = dict(os.environ, DEB_BUILD_OPTIONS="nocheck noddebs parallel=2")
    # No ccache or compiler settings of ours leak in.
    for k in ("CFLAGS", "LDFLAGS", "CC", "VHOSTD", "VHOSTCTL"):
        env.pop(k, None)
    sh(["dpkg-buildpackage", "-b", "-us", "-uc", "-j2"], cwd=src, env=env)
    step("dpkg-buildpackage")
    debs = [f for f in os.listdir(t.path("src"))
            if f.startswith(PKG + "_") and f.endswith(".deb")]
    check(len(debs) == 1, "one vhostd .deb expected: %s" % debs)
    deb = t.path("src", debs[0])
    got = {f[2:] for f in sh(["dpkg-deb", "-c", deb]).split() if
           f.startswith("./") and not f.endswith("/")}
    check(got == PKG_FILES, "package: missing %s, unexpected %s" % (
        sorted(PKG_FILES - got), sorted(got - PKG_FILES)))
    out = sh(["lintian", "--fail-on", "error", "--tag-display-limit", "0"] +
             [t.path("src", f) for f in sorted(os.listdir(t.path("src")))
              if f.endswith((".changes", ".dsc"))], ok=(0, 1))
    print("lintian: %s" % (out.strip() or "no tags"))
    check(not [ln for ln in out.splitlines() if ln.startswith("E:")],
          "lintian errors:\n%s" % out)
    step("lintian")
    return deb


def install(t, deb, step):
    group_before = GROUP in [g.gr_name for g in grp.getgrall()]

    def purge():
        step("cleanup")
        if installed():
            sh(["apt-get", "purge", "-y", "-q", "-o",
                "DPkg::Lock::Timeout=120", PKG],
               env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        if not group_before and GROUP in [g.gr_name for g in grp.getgrall()]:
            sh(["groupdel", GROUP])
        for p in ("/etc/vhostd", VHOSTD, VHOSTCTL, UNIT, WANTS):
            check(not os.path.lexists(p), "%s left after purge" % p)
        step("purged")
    t.cleanups.append(purge)
    sh(["apt-get", "install", "-y", "-q", "--no-install-recommends", "-o",
        "DPkg::Lock::Timeout=120", deb],
       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    step("apt-get install")
    check(GROUP in [g.gr_name for g in grp.getgrall()],
          "group %s not created" % GROUP)
    conffiles = sh(["dpkg-query", "-W", "-f", "${Conffiles}", PKG])
    check(CONF in conffiles, "%s is not a conffile: %s" % (CONF, conffiles))
    check(os.path.islink(WANTS), "vhostd.service not enabled")
    out = sh(["systemd-analyze", "verify", UNIT])
    check(out.strip() == "", "systemd-analyze verify: %s" % out)
    step("systemd-analyze verify")


def kill_all(t):
    for p in t.procs:
        SystemdNS.kill_entered(p)


def port(ns, name):
    r = ns.run([VHOSTCTL, "--json", "port", "show", name])
    check(r.returncode == 0, "port show %s: %s" % (name, r.stderr))
    return json.loads(r.stdout)


def exchange(t, ns, src, dst, tag):
    """Guests on both sockets: SRC's frames to DST's MAC arrive at DST,
    byte for byte, and vhostd counts them."""
    socks = {"vm1": SOCK1, "vm2": SOCK2}
    macs = {"vm1": MAC1, "vm2": MAC2}
    frames = [frame(macs[dst], macs[src], size=60 + i,
                    payload=b"%s-%d" % (tag.encode(), i)) for i in range(32)]
    before = {p: port(ns, p) for p in (src, dst)}
    rx = Guest(t, "%s%s" % (dst, tag), socks[dst], mac=macs[dst])
    tx = Guest(t, "%s%s" % (src, tag), socks[src], mac=macs[src],
               frames=frames)
    for g in (rx, tx):
        g.argv = ns.argv_in(g.argv)
    rx.start()
    wait_until(lambda: (lambda p: p["state"] == "up" and p["rxq_enabled"]
                        and p["txq_enabled"])(port(ns, dst)), 30,
               "%s up" % dst)
    tx.start()
    wait_until(lambda: len(rx.received()) >= len(frames), 30,
               "%d frames from %s at %s" % (len(frames), src, dst))
    check(rx.received() == frames, "frames %s -> %s differ" % (src, dst))
    a, b = port(ns, src), port(ns, dst)
    rx_n = a["stats"]["rx_packets"] - before[src]["stats"]["rx_packets"]
    tx_n = b["stats"]["tx_packets"] - before[dst]["stats"]["tx_packets"]
    check(rx_n == len(frames) and tx_n == len(frames),
          "counters: %s received %d, %s sent %d, not %d" % (
              src, rx_n, dst, tx_n, len(frames)))
    return rx, tx


def completion_check(ns):
    """vhostctl's bash completion: command words and names from vhostd."""
    script = r'''
source /usr/share/bash-completion/bash_completion
source /usr/share/bash-completion/completions/vhostctl
comp() {
    COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}; COMPREPLY=()
    _vhostctl vhostctl "${COMP_WORDS[-1]}" "${COMP_WORDS[-2]}"
    printf '%s\n' "${COMPREPLY[@]}" | sort -u | tr '\n' ' '; echo
}
comp vhostctl ''
comp vhostctl port ''
comp vhostctl port show ''
comp vhostctl fdb show ''
comp vhostctl port add vm3 bridge=
'''
    r = ns.run(["bash", "-c", script])
    lines = r.stdout.splitlines()
    check(r.returncode == 0 and len(lines) == 5, "completion: %s%s" % (
        r.stdout, r.stderr))
    words = set(lines[0].split())
    check({"port", "bridge", "fdb", "stats", "capture", "config", "top",
           "metrics", "log", "info",
           "list-commands"} <= words, "command words: %s" % lines[0])
    check(set(lines[1].split()) == {"add", "del", "list", "show"},
          "port subcommands: %s" % lines[1])
    check(lines[2].split() == ["vm1", "vm2"], "port names: %s" % lines[2])
    check(lines[3].split() == ["br0"], "bridge names: %s" % lines[3])
    check(lines[4].split() == ["bridge=br0"], "bridge=: %s" % lines[4])


def test_package(t):
    step = Step()
    if os.geteuid() != 0 or not all(shutil.which(p) for p in (
            "dpkg-buildpackage", "lintian", "apt-get", "unshare", "nsenter")):
        print("needs root, dpkg-buildpackage, lintian: skipped")
        sys.exit(77)
    check(not installed() and not os.path.exists("/etc/vhostd"),
          "vhostd is installed on this machine (or /etc/vhostd exists): "
          "the test installs and purges the package; remove it first")
    meson_install_check(t)
    step("meson install --destdir")
    # VHD_PACKAGE_DEB=FILE: that .deb, not one built here (while working
    # on the test itself).
    deb = os.environ.get("VHD_PACKAGE_DEB") or build_package(t, step)
    install(t, deb, step)

    ns = SystemdNS(t.dir, units=["vhostd.service"])
    t.cleanups.append(ns.poweroff)
    # Guests first: they live in its PID namespace.
    t.cleanups.append(lambda: kill_all(t))
    ns.boot()
    step("systemd booted")
    try:
        run_service(t, ns, step)
    except Exception:
        print("----- the journal of the test's systemd")
        print(ns.journal("-n", "150"))
        raise
    check(ns.poweroff(), "systemd did not power off cleanly:\n%s" %
          ns.console()[-3000:])
    step("poweroff")


def run_service(t, ns, step):
    # ExecStartPre (vhostd --check-system): with no hugetlbfs mounted the
    # start fails, before vhostd runs, and the journal names the fix.
    # Every hugetlbfs of this mount namespace (the host's is under ours).
    r = ns.run(["umount", "-a", "-t", "hugetlbfs"])
    check(r.returncode == 0, "umount hugetlbfs: %s" % r.stderr)
    r = ns.systemctl("start", "vhostd")
    log = ns.journal("-u", "vhostd")
    check(r.returncode != 0 and "FAIL" in log and "mount -t hugetlbfs" in log,
          "start without hugetlbfs: rc %d, journal:\n%s" % (r.returncode,
                                                            log[-3000:]))
    check(ns.show("vhostd", "ExecMainPID")["ExecMainPID"] == "0",
          "vhostd ran although its ExecStartPre failed")
    r = ns.run(["mount", "-t", "hugetlbfs", "-o", "pagesize=2M", "nodev",
                "/dev/hugepages"])
    check(r.returncode == 0, "mount hugetlbfs: %s" % r.stderr)
    # Restart=on-failure retries it each second: stop that, and start the
    # restart count (checked after the SIGSEGV below) from 0.
    ns.systemctl("stop", "vhostd")
    ns.systemctl("reset-failed", "vhostd")
    step("ExecStartPre refuses a host without hugetlbfs")

    # Type=notify: start returns once vhostd said READY=1, with every
    # socket open: the control socket answers at once.
    r = ns.systemctl("start", "vhostd")
    check(r.returncode == 0, "systemctl start: %s%s\n%s" % (
        r.stdout, r.stderr, ns.journal("-u", "vhostd")))
    r = ns.run([VHOSTCTL, "port", "list"])
    check(r.returncode == 0 and "vm1" in r.stdout and "vm2" in r.stdout,
          "vhostctl right after start: %d %s%s" % (r.returncode, r.stdout,
                                                   r.stderr))
    step("systemctl start; vhostctl answers")
    show = ns.show("vhostd", "MainPID", "ActiveState", "SubState",
                   "StatusText", "NRestarts")
    check(show["ActiveState"] == "active" and show["SubState"] == "running"
          and int(show["MainPID"]) > 0 and
          show["StatusText"] == "2 port(s), 1 bridge(s)", "show: %s" % show)
    pid1 = int(show["MainPID"])

    # The sockets: the group the package made, 0660; control root's.
    gid = grp.getgrnam(GROUP).gr_gid
    r = ns.run(["stat", "-c", "%n %g %a %F", SOCK1, SOCK2, CTL])
    st = {ln.split()[0]: ln.split()[1:] for ln in r.stdout.splitlines()}
    for s in (SOCK1, SOCK2):
        check(st.get(s, [])[:2] == [str(gid), "660"],
              "%s: %s (want group %d, 0660)" % (s, st.get(s), gid))
    check(st.get(CTL, [])[:2] == ["0", "660"], "control socket: %s" % st)

    completion_check(ns)
    step("state, sockets, completion")

    exchange(t, ns, "vm1", "vm2", "a")
    step("guests exchange frames")

    # The journal: vhostd's lines, each with a priority.
    entries = [json.loads(ln) for ln in
               ns.journal("-u", "vhostd", "-o", "json").splitlines()]
    own = [e for e in entries if e.get("SYSLOG_IDENTIFIER") == "vhostd"]
    check(any("ready:" in str(e.get("MESSAGE")) for e in own) and
          any("control socket" in str(e.get("MESSAGE")) for e in own),
          "vhostd's lines not in the journal: %s" % own[-5:])
    check(all(str(e.get("PRIORITY", "")) in "01234567" and
              "PRIORITY" in e for e in own), "entries without a priority")
    step("journal")

    # A crash: Restart=on-failure brings a new vhostd; guests attach again.
    ns.run(["kill", "-SEGV", str(pid1)])
    wait_until(lambda: ns.show("vhostd", "NRestarts")["NRestarts"] == "1" and
               ns.show("vhostd", "ActiveState")["ActiveState"] == "active",
               60, "vhostd restarted after SIGSEGV")
    pid2 = int(ns.show("vhostd", "MainPID")["MainPID"])
    check(pid2 not in (0, pid1), "MainPID %d after the restart" % pid2)
    step("restarted")
    log = ns.journal("-u", "vhostd")
    check("status=11/SEGV" in log, "no SEGV in the journal:\n%s" % log[-3000:])
    kill_all(t)
    exchange(t, ns, "vm2", "vm1", "b")
    step("SIGSEGV, restart, guests again")
    kill_all(t)

    # Clean stop: exit 0, hugepage files of its prefix gone.
    r = ns.systemctl("stop", "vhostd")
    check(r.returncode == 0, "systemctl stop: %s" % r.stderr)
    show = ns.show("vhostd", "ActiveState", "Result", "ExecMainStatus")
    check(show == {"ActiveState": "inactive", "Result": "success",
                   "ExecMainStatus": "0"}, "after stop: %s" % show)
    log = ns.journal("_SYSTEMD_UNIT=vhostd.service", "_PID=%d" % pid2)
    check("all mbufs returned" in log, "no clean exit:\n%s" % log[-3000:])
    huge = ns.run(["ls", "/dev/hugepages"]).stdout.split()
    check(not [f for f in huge if f.startswith("vhostdmap_")],
          "hugepage files left: %s" % huge)
    check(not os.path.exists("/core"), "a core file in /")
    step("systemctl stop")


if __name__ == "__main__":
    run(test_package)
