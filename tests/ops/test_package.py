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
The exporter's unit, installed but not enabled: started, it serves on
127.0.0.1:9477 the counters `vhostctl stats` has, from a root process
without capabilities; vhostd stopped, it stays up and says vhostd_up 0;
a drop-in moves it; the package's prerm stops it. Last, the package is
purged and the machine left as it was.

Needs root, dpkg-buildpackage, lintian, bash-completion, hugepages.
"""
import grp
import json
import os
import re
import shutil
import socket
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
METRICS_UNIT = "/lib/systemd/system/vhostd-metrics.service"
METRICS_URL = "http://127.0.0.1:9477/metrics"
VHOSTD = "/usr/sbin/vhostd"
VHOSTCTL = "/usr/bin/vhostctl"
SOCK1, SOCK2 = "/run/vhostd/vm1.sock", "/run/vhostd/vm2.sock"
CTL = "/run/vhostd/vhostd.ctl"
MAC1, MAC2 = "02:00:00:00:0e:01", "02:00:00:00:0e:02"

# What the package holds (and `meson install` with prefix /usr, but for
# what debhelper adds). Paths below the prefix for `meson install`.
PKG_FILES = {
    "etc/vhostd/vhostd.conf", "lib/systemd/system/vhostd.service",
    "lib/systemd/system/vhostd-metrics.service",
    "usr/bin/vhostctl", "usr/sbin/vhostd", "usr/lib/sysusers.d/vhostd.conf",
    "usr/share/bash-completion/completions/vhostctl",
    "usr/share/man/man5/vhostd.conf.5.gz", "usr/share/man/man8/vhostd.8.gz",
    "usr/share/man/man8/vhostctl.8.gz",
    "usr/share/doc/vhostd/changelog.gz", "usr/share/doc/vhostd/copyright",
    # debian/docs (compressed by dh_compress)
    "usr/share/doc/vhostd/README.md.gz",
    "usr/share/doc/vhostd/OPERATIONS.md.gz", "usr/share/doc/vhostd/QEMU.md.gz",
    "usr/share/doc/vhostd/CONTROL.md.gz",
}
MESON_FILES = {
    "{prefix}/bin/vhostctl", "{prefix}/sbin/vhostd",
    "{prefix}/etc/vhostd/vhostd.conf",
    "{prefix}/share/man/man5/vhostd.conf.5",
    "{prefix}/share/man/man8/vhostd.8", "{prefix}/share/man/man8/vhostctl.8",
    "lib/systemd/system/vhostd.service", "usr/lib/sysusers.d/vhostd.conf",
    "lib/systemd/system/vhostd-metrics.service",
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
    unit = open(os.path.join(
        dest, "lib/systemd/system/vhostd-metrics.service")).read()
    check("ExecStart=/%s/bin/vhostctl " % prefix in unit,
          "the exporter's ExecStart is not below the prefix: %s" % unit)


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
        for p in ("/etc/vhostd", VHOSTD, VHOSTCTL, UNIT, WANTS,
                  METRICS_UNIT):
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
    # The exporter: installed, but no .wants link anywhere.
    links = [os.path.join(r, f) for r, _, fs in os.walk("/etc/systemd")
             for f in fs if f == "vhostd-metrics.service"]
    check(os.path.isfile(METRICS_UNIT) and not links,
          "vhostd-metrics.service: enabled by the package: %s" % links)
    out = sh(["systemd-analyze", "verify", UNIT, METRICS_UNIT])
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


# GET URL from inside the namespace (its net namespace is the host's, but
# that is sysns' detail): "STATUS CONTENT-TYPE" then the body. Retries
# while nothing listens yet (Type=exec: started is not yet bound), up to
# WAIT seconds. No proxy of the environment's.
SCRAPE = r"""
import sys, time, urllib.error, urllib.request
url, wait = sys.argv[1], float(sys.argv[2])
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
end = time.monotonic() + wait
while True:
    try:
        with opener.open(url, timeout=10) as r:
            print(r.status, r.headers.get("Content-Type"))
            sys.stdout.write(r.read().decode())
        break
    except urllib.error.URLError as e:
        if (isinstance(e, urllib.error.HTTPError) or
                not isinstance(e.reason, ConnectionRefusedError) or
                time.monotonic() > end):
            raise
        time.sleep(0.05)
"""


def scrape(ns, url=METRICS_URL):
    """{(name, ((label, value), ...)): value} of URL's metrics."""
    r = ns.run(["python3", "-c", SCRAPE, url, "20"])
    check(r.returncode == 0, "GET %s: %s%s" % (url, r.stdout, r.stderr))
    head, _, body = r.stdout.partition("\n")
    check(head.startswith("200 text/plain; version=0.0.4"),
          "GET %s: %s" % (url, head))
    out = {}
    for ln in body.splitlines():
        if ln.startswith("#") or not ln:
            continue
        m = re.match(r"^([a-z_]+)(?:\{(.*)\})? (\S+)$", ln)
        check(m, "not a sample: %r" % ln)
        labels = tuple(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"',
                                  m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def port_samples(samples):
    """{(name, port[, reason]): value} of the port counters."""
    out = {}
    for (name, labels), v in samples.items():
        lb = dict(labels)
        if name.startswith("vhostd_port_") and name.endswith("_total"):
            reason = (lb["reason"],) if "reason" in lb else ()
            out[(name, lb["port"]) + reason] = v
    return out


def free_port():
    """Free TCP port on 127.0.0.1 (the namespace shares the host's net)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def exporter_start(ns):
    """vhostd-metrics started: on 127.0.0.1:9477, vhostd_up 1 and the port
    counters `vhostctl stats` has; root, no capability at all."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", 9477))
        except OSError as e:
            check(False, "127.0.0.1:9477 is taken on this machine (%s): "
                  "the exporter's default address; free it first" % e)
    r = ns.systemctl("start", "vhostd-metrics")
    check(r.returncode == 0, "systemctl start vhostd-metrics: %s%s\n%s" % (
        r.stdout, r.stderr, ns.journal("-u", "vhostd-metrics")))
    samples = scrape(ns)
    r = ns.run([VHOSTCTL, "--json", "stats"])
    check(r.returncode == 0, "vhostctl stats: %s" % r.stderr)
    stats = json.loads(r.stdout)
    check(samples.get(("vhostd_up", ())) == 1, "vhostd_up: %s" % samples.get(
        ("vhostd_up", ())))
    # The guests are gone: the counters stand still. Every integer counter
    # of `stats`, as its metric, the same value.
    want = {}
    for row in stats:
        for k, v in row.items():
            if not isinstance(v, int) or isinstance(v, bool):
                continue
            want[("vhostd_port_dropped_packets_total", row["port"], k[5:])
                 if k.startswith("drop_") else
                 ("vhostd_port_%s_total" % k, row["port"])] = v
    got = port_samples(samples)
    check({k[1] for k in want} == {"vm1", "vm2"} and
          want[("vhostd_port_rx_packets_total", "vm2")] >= 32 and
          want[("vhostd_port_tx_packets_total", "vm1")] >= 32,
          "stats after the exchange: %s" % stats)
    diff = {k: (v, got.get(k)) for k, v in want.items() if got.get(k) != v}
    check(not diff and set(got) == set(want),
          "metrics vs stats (stats, metrics): %s; only in metrics: %s" % (
              diff, sorted(set(got) - set(want))))
    # Its process: root (it connected to root's 0660 socket, above) with
    # no capability, no new privileges, a seccomp filter.
    pid = int(ns.show("vhostd-metrics", "MainPID")["MainPID"])
    r = ns.run(["cat", "/proc/%d/status" % pid])
    st = dict(ln.split(":", 1) for ln in r.stdout.splitlines() if ":" in ln)
    st = {k: v.split() for k, v in st.items()}
    check(st.get("Uid", [""])[0] == "0" and
          all(int(st.get(c, ["1"])[0], 16) == 0 for c in (
              "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")) and
          st.get("NoNewPrivs") == ["1"] and st.get("Seccomp") == ["2"],
          "the exporter's process: %s" % r.stdout)


def exporter_stop(ns):
    """vhostd is stopped: the exporter stays up (same process) and says
    vhostd_up 0 alone; `systemctl stop` is its clean exit; a drop-in
    moves it to another address; the package's prerm stops it."""
    show = ns.show("vhostd-metrics", "ActiveState", "MainPID", "NRestarts")
    samples = scrape(ns)
    check(samples == {("vhostd_up", ()): 0}, "vhostd stopped: %s" % samples)
    again = ns.show("vhostd-metrics", "ActiveState", "MainPID", "NRestarts")
    check(show == again and again["ActiveState"] == "active" and
          again["NRestarts"] == "0", "exporter: %s, then %s" % (show, again))
    r = ns.systemctl("stop", "vhostd-metrics")
    check(r.returncode == 0, "systemctl stop vhostd-metrics: %s" % r.stderr)
    show = ns.show("vhostd-metrics", "ActiveState", "Result",
                   "ExecMainStatus")
    check(show == {"ActiveState": "inactive", "Result": "success",
                   "ExecMainStatus": "0"}, "after stop: %s" % show)
    log = ns.journal("-u", "vhostd-metrics")
    check("vhostd is down" in log and "stopped (signal 15)" in log,
          "the exporter's journal:\n%s" % log[-3000:])

    # A drop-in (as `systemctl edit` writes) beside the unit the
    # namespace's systemd loaded.
    port = free_port()
    d = os.path.dirname(ns.show("vhostd-metrics",
                                "FragmentPath")["FragmentPath"])
    r = ns.run(["sh", "-c", 'mkdir -p "$1" && printf "%s" "$2" > "$1/l.conf"',
                "sh", d + "/vhostd-metrics.service.d",
                "[Service]\nEnvironment=VHOSTD_METRICS_LISTEN=127.0.0.1:%d\n"
                % port])
    check(r.returncode == 0, "drop-in: %s" % r.stderr)
    for argv in (["daemon-reload"], ["start", "vhostd-metrics"]):
        r = ns.systemctl(*argv)
        check(r.returncode == 0, "systemctl %s: %s" % (argv, r.stderr))
    samples = scrape(ns, "http://127.0.0.1:%d/metrics" % port)
    check(samples == {("vhostd_up", ()): 0}, "drop-in: %s" % samples)

    # The package's prerm (remove) stops it. This machine's policy-rc.d
    # (a container's "exit 101") would refuse: in the namespace's mounts
    # alone, one that allows.
    prerm = "/var/lib/dpkg/info/%s.prerm" % PKG
    r = ns.run(["sh", "-c", '[ ! -e /usr/sbin/policy-rc.d ] || '
                'mount --bind /bin/true /usr/sbin/policy-rc.d; "$0" remove',
                prerm])
    check(r.returncode == 0, "prerm remove: %s%s" % (r.stdout, r.stderr))
    show = ns.show("vhostd-metrics", "ActiveState", "Result")
    check(show == {"ActiveState": "inactive", "Result": "success"},
          "after prerm remove: %s" % show)


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

    ns = SystemdNS(t.dir, units=["vhostd.service", "vhostd-metrics.service"])
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

    exporter_start(ns)
    step("vhostd-metrics: vhostctl stats' counters on :9477")

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

    exporter_stop(ns)
    step("vhostd-metrics: vhostd_up 0, drop-in, stop, prerm")


if __name__ == "__main__":
    run(test_package)
