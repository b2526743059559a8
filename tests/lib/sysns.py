# SPDX-License-Identifier: BSD-3-Clause
"""A real systemd for a test, on a machine whose PID 1 is not systemd.

systemd runs as PID 1 of its own PID and mount namespaces (unshare), so
`systemctl start`, Type=notify, Restart=, RuntimeDirectory= and the journal
are systemd's own. What it may touch is fenced in, so that nothing of the
host changes and nothing is left behind:

- /run is a tmpfs of its own (systemd then does not mount one): units,
  sockets, the journal (volatile) and /run/dpdk live and die with it. So
  does a hugetlbfs of its own on /dev/hugepages (hugepage files).
- It loads units only from a directory of ours (SYSTEMD_UNIT_PATH): the
  units a test names, plus the targets and journald. Nothing of sysinit
  (udev, sysctl, modules, tmpfiles, swap, fstab) nor the host's services
  (OVS, libvirt, ...) can start.
- Its cgroups go under a cgroup of ours in the name=systemd and unified
  hierarchies, with every resource accounting off (so it creates none in
  the controllers' hierarchies), removed when it is gone.

Processes that must see its /run (a guest on a socket of a unit) run in
its mount namespace: argv_in() prefixes nsenter.
"""
import os
import signal
import subprocess
import time

SYSTEMD = "/usr/lib/systemd/systemd"
UNIT_DIRS = ("/etc/systemd/system", "/lib/systemd/system",
             "/usr/lib/systemd/system")
# Where systemd keeps its cgroups: the named v1 hierarchy and the unified
# one beside it (hybrid), or the unified one alone.
CGROUP_ROOTS = (("/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified")
                if os.path.isdir("/sys/fs/cgroup/systemd")
                else ("/sys/fs/cgroup",))

# The real units a minimal boot and a clean poweroff need.
BASE_UNITS = (
    "sysinit.target", "basic.target", "local-fs.target", "swap.target",
    "sockets.target", "paths.target", "timers.target", "slices.target",
    "multi-user.target", "shutdown.target", "umount.target", "final.target",
    "poweroff.target", "systemd-poweroff.service", "exit.target",
    "systemd-exit.service",
    "systemd-journald.service", "systemd-journald.socket",
    "systemd-journald-dev-log.socket",
)

BOOT_TARGET = "vhd-test.target"


class SystemdError(Exception):
    pass


def find_unit(name):
    for d in UNIT_DIRS:
        p = os.path.join(d, name)
        if os.path.exists(p):
            return p
    raise SystemdError("unit %s not found in %s" % (name, UNIT_DIRS))


class SystemdNS:
    """systemd as PID 1 of new PID and mount namespaces.

    UNITS: unit names to make loadable (found in the host's unit dirs:
    what a package installed), beside BASE_UNITS; they are linked, not
    copied, so systemd loads the installed file itself. WORKDIR: a
    directory for the console log.
    """

    def __init__(self, workdir, units=(), dropins=None):
        self.workdir = workdir
        self.units = list(units)
        # {unit: text}: a drop-in for UNIT (test.conf in UNIT.d/).
        self.dropins = dict(dropins or {})
        self.name = "vhd-test-%d" % os.getpid()
        self.log = os.path.join(workdir, "systemd-console.log")
        self.proc = None
        self.pid = None  # systemd's pid, as the host sees it
        self.cgroups = []

    # ------------------------------------------------------------ boot

    def _boot_script(self):
        links = {u: find_unit(u) for u in BASE_UNITS + tuple(self.units)}
        ud = "/run/vhd-test-units"
        lines = [
            "set -e",
            # Our cgroup (in the writer's, not the new, PID namespace:
            # hence 0, "this process").
        ] + ["echo 0 > %s/cgroup.procs" % c for c in self.cgroups] + [
            "mount -t tmpfs -o mode=0755,size=64m tmpfs /run",
            "mount -t hugetlbfs -o pagesize=2M nodev /dev/hugepages",
            # PID 1 writes its log to /dev/console: the host's, but for
            # this bind mount of our log file over it.
            "mount --bind %s /dev/console" % self.log,
            "mkdir -p %s /run/systemd/system.conf.d "
            "/run/systemd/journald.conf.d" % ud,
        ]
        for u, path in links.items():
            lines.append("ln -s %s %s/%s" % (path, ud, u))
        # journald logs about itself to the kernel's log by default.
        dropins = {"systemd-journald.service":
                   "[Service]\nEnvironment=SYSTEMD_LOG_TARGET=null\n"}
        dropins.update(self.dropins)
        for u, text in dropins.items():
            lines += ["mkdir -p %s/%s.d" % (ud, u),
                      "cat > %s/%s.d/test.conf <<'EOF'" % (ud, u),
                      text.rstrip("\n"), "EOF"]
        lines += [
            "cat > %s/%s <<'EOF'" % (ud, BOOT_TARGET),
            "[Unit]",
            "Description=vhostd test boot",
            "Requires=basic.target",
            "After=basic.target",
            "Wants=systemd-journald.service",
            "AllowIsolate=yes",
            "EOF",
            # No cgroup of any controller (only name=systemd/unified).
            "cat > /run/systemd/system.conf.d/test.conf <<'EOF'",
            "[Manager]",
            "DefaultCPUAccounting=no",
            "DefaultIOAccounting=no",
            "DefaultBlockIOAccounting=no",
            "DefaultMemoryAccounting=no",
            "DefaultTasksAccounting=no",
            "DefaultIPAccounting=no",
            # A crash a test causes leaves no core file.
            "DefaultLimitCORE=0",
            # Nothing holds a poweroff for long.
            "DefaultTimeoutStopSec=10s",
            "EOF",
            # Not into the host's /var/log/journal.
            "cat > /run/systemd/journald.conf.d/test.conf <<'EOF'",
            "[Journal]",
            "Storage=volatile",
            "ReadKMsg=no",
            "EOF",
            "export SYSTEMD_UNIT_PATH=%s" % ud,
            # Its log in the journal ("journalctl -u UNIT" has what it
            # did with UNIT), on the console until journald runs.
            "exec %s --system --log-target=journal --log-level=info "
            "--log-color=no "
            "--unit=%s" % (SYSTEMD, BOOT_TARGET),
        ]
        return "\n".join(lines) + "\n"

    def boot(self, timeout=60):
        for root in CGROUP_ROOTS:
            if os.path.isdir(root):
                # Those of a test killed before it could remove them.
                for d in os.listdir(root):
                    if (d.startswith("vhd-test-") and
                            not os.path.exists("/proc/" + d[9:])):
                        remove_cgroup(os.path.join(root, d), timeout=1)
                cg = os.path.join(root, self.name)
                os.makedirs(cg, exist_ok=True)
                self.cgroups.append(cg)
        script = os.path.join(self.workdir, "systemd-boot.sh")
        with open(script, "w") as f:
            f.write(self._boot_script())
        logf = open(self.log, "wb")
        # container=: systemd knows it is in a container (no hardware,
        # `systemctl poweroff` ends PID 1 instead of the machine).
        # If the test dies, so does unshare (pdeathsig), and with it the
        # namespace (--kill-child): nothing keeps running.
        self.proc = subprocess.Popen(
            ["setpriv", "--pdeathsig", "KILL", "--",
             "unshare", "--pid", "--fork", "--kill-child", "--mount",
             "--mount-proc", "--propagation", "private",
             "env", "-i", "container=vhostd-test",
             "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "sh", script],
            stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
            start_new_session=True)
        logf.close()
        end = time.monotonic() + timeout
        while self.pid is None:
            self._check_alive()
            with open("/proc/%d/task/%d/children" % (
                    self.proc.pid, self.proc.pid)) as f:
                kids = f.read().split()
            if kids:
                self.pid = int(kids[0])
            elif time.monotonic() > end:
                raise SystemdError("unshare started no child")
            else:
                time.sleep(0.05)
        # Booted: the boot target's job is done (is-system-running says
        # "running", or "degraded" if a unit failed).
        state = ""
        while time.monotonic() < end:
            self._check_alive()
            r = self.run(["systemctl", "is-system-running"])
            state = r.stdout.strip()
            if state in ("running", "degraded"):
                return state
            time.sleep(0.1)
        raise SystemdError("systemd not up after %ds (state %r): %s" % (
            timeout, state, self.console()[-3000:]))

    def _check_alive(self):
        if self.proc.poll() is not None:
            raise SystemdError("systemd exited (%s): %s" % (
                self.proc.returncode, self.console()[-3000:]))

    def console(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    # ------------------------------------------------------------ inside

    def argv_in(self, argv, pid_ns=True):
        """ARGV run inside: its mount namespace, and its PID namespace
        too with PID_NS (pids as systemd sees them)."""
        return (["nsenter", "-t", str(self.pid), "-m"] +
                (["-p"] if pid_ns else []) + ["--"] + list(argv))

    def run(self, argv, timeout=120, pid_ns=True, **kw):
        """ARGV inside, to its end: CompletedProcess with text output."""
        return subprocess.run(self.argv_in(argv, pid_ns), timeout=timeout,
                              stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, **kw)

    def systemctl(self, *args, timeout=120):
        return self.run(["systemctl", "--no-pager"] + list(args),
                        timeout=timeout)

    def show(self, unit, *props):
        """{property: value} of UNIT (systemctl show -p)."""
        r = self.systemctl("show", unit, "-p", ",".join(props))
        out = {}
        for line in r.stdout.splitlines():
            k, _, v = line.partition("=")
            out[k] = v
        return out

    def journal(self, *args):
        """journalctl's output (ARGS: -u UNIT, -o FORMAT, ...): this
        systemd's journal only, not the host's /var/log/journal."""
        return self.run(["journalctl", "--no-pager", "-D", "/run/log/journal"]
                        + list(args)).stdout

    @staticmethod
    def kill_entered(proc):
        """SIGKILL PROC, a Popen of argv_in(): nsenter's child inside
        first, which nsenter then reaps. Killed together, the child is
        left a zombie that holds up systemd's poweroff for its stop
        timeout."""
        if proc.poll() is not None:
            return
        try:
            with open("/proc/%d/task/%d/children" % (proc.pid,
                                                     proc.pid)) as f:
                kids = [int(k) for k in f.read().split()]
        except OSError:
            kids = []
        for k in kids:
            try:
                os.kill(k, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    # ------------------------------------------------------------ end

    def poweroff(self, timeout=60):
        """`systemctl poweroff`: every unit stopped, then PID 1 exits.
        True if it ended so within TIMEOUT."""
        clean = False
        t0 = time.monotonic()
        if self.proc and self.proc.poll() is None:
            try:
                self.systemctl("poweroff", timeout=30)
                self.proc.wait(timeout)
                clean = True
            except (subprocess.TimeoutExpired, OSError):
                pass
            print("sysns: poweroff %s in %.1fs" % (
                "done" if clean else "timed out", time.monotonic() - t0))
        self.kill()
        return clean

    def kill(self):
        """The namespace's processes die with its PID 1; our cgroups go."""
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            if self.pid:
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc.wait()
        for cg in self.cgroups:
            remove_cgroup(cg)
        self.cgroups = []


def remove_cgroup(path, timeout=10):
    """Remove cgroup PATH and those below it, deepest first, once empty."""
    end = time.monotonic() + timeout
    while os.path.isdir(path):
        for d, subdirs, _ in sorted(os.walk(path), key=lambda w: -len(w[0])):
            try:
                os.rmdir(d)
            except OSError:
                pass
        if time.monotonic() > end:
            print("sysns: cgroup %s not removed" % path)
            return
        if os.path.isdir(path):
            time.sleep(0.1)
