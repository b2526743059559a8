# SPDX-License-Identifier: BSD-3-Clause
"""libvirt for one test: libvirtd in a private mount namespace, virsh
against it, domains built from the XML in docs/QEMU.md, and a domain's
serial console driven like guest.Guest (wait_ready, run).

libvirtd runs as root, as on a real host, so QEMU runs as libvirt's
unprivileged user (Debian: libvirt-qemu). Nothing it does outlives the
test: /etc/libvirt is the test's own directory (its libvirtd.conf and
qemu.conf, no networks to autostart), /run, /var/lib/libvirt and
/var/cache/libvirt are tmpfs, /var/log/libvirt is the test's directory
(QEMU's log of each domain lands there), and /dev/hugepages is a fresh
hugetlbfs (libvirt makes libvirt/qemu in every hugetlbfs it finds). All of
it goes with the namespace when libvirtd and its QEMUs have exited. Only
libvirt's cache of QEMU's capabilities is kept, beside the guest image:
probing QEMU takes about 8 s, and libvirt checks the cache against the QEMU
binary and its own version.
"""
import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import threading
import time
import xml.etree.ElementTree as ET

import guest
from docxml import tagged
from vhdtest import Failure, check, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
QEMU_MD = os.path.join(HERE, "..", "..", "docs", "QEMU.md")
QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"
USER = "libvirt-qemu"          # Debian's libvirt builds run QEMU as this
GROUP = "libvirt-qemu"

# Run by `unshare --mount --propagation private`: the mounts stay in the
# namespace. $1: the test's libvirt directory, $2: the capabilities cache.
NS_SETUP = r"""set -e
mount -t tmpfs -o mode=0755 tmpfs /run
mount --bind "$1/etc" /etc/libvirt
mount -t tmpfs -o mode=0755 tmpfs /var/lib/libvirt
mount -t tmpfs -o mode=0711 tmpfs /var/cache/libvirt
mkdir -p /var/cache/libvirt/qemu/capabilities
mount --bind "$2" /var/cache/libvirt/qemu/capabilities
mount --bind "$1/log" /var/log/libvirt
if mountpoint -q /dev/hugepages; then
    mount -t hugetlbfs nodev /dev/hugepages
fi
exec libvirtd -f "$1/etc/libvirtd.conf" -p "$1/libvirtd.pid"
"""

QEMU_CONF = """# QEMU as libvirt's default unprivileged user (Debian's built-in
# defaults, spelled out).
user = "%s"
group = "%s"
# Test machine only: without systemd (machined) libvirt makes its own
# "machine" group in every cgroup v1 hierarchy and keeps it after it
# exits. On a host with systemd, keep the default.
cgroup_controllers = [ ]
# Test machine only: QEMU logs to /var/log/libvirt/qemu/NAME.log itself,
# no virtlogd to run.
stdio_handler = "file"
""" % (USER, GROUP)


def missing():
    """What this machine lacks to run libvirt domains (None: nothing)."""
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    for prog in ("libvirtd", "virsh", "unshare", "mountpoint"):
        if not shutil.which(prog, path=path):
            return prog
    for d in ("/etc/libvirt", "/var/lib/libvirt", "/var/cache/libvirt",
              "/var/log/libvirt"):
        if not os.path.isdir(d):
            return d
    try:
        pwd.getpwnam(USER)
        grp.getgrnam(GROUP)
    except KeyError:
        return "user/group " + USER
    return None


class Libvirtd:
    """libvirtd for test T (vhdtest.Test); stopped in T's cleanup."""

    def __init__(self, t):
        self.t = t
        self.dir = t.path("libvirt")
        for d in ("etc/qemu", "log", "sock"):
            os.makedirs(os.path.join(self.dir, d))
        os.chmod(os.path.join(self.dir, "sock"), 0o700)
        self.log = os.path.join(self.dir, "libvirtd.log")
        with open(os.path.join(self.dir, "etc", "libvirtd.conf"), "w") as f:
            # Only root reaches the socket (its directory is 0700): no
            # polkit (there is no D-Bus here either).
            f.write('unix_sock_dir = "%s"\nauth_unix_rw = "none"\n'
                    'auth_unix_ro = "none"\nlog_outputs = "3:file:%s"\n'
                    % (os.path.join(self.dir, "sock"), self.log))
        with open(os.path.join(self.dir, "etc", "qemu.conf"), "w") as f:
            f.write(QEMU_CONF)
        self.uri = "qemu:///system?socket=%s" % os.path.join(
            self.dir, "sock", "libvirt-sock")
        # beside the guest image, kept from one run to the next
        self.caps = os.path.join(guest.DEFAULT_CACHE, "libvirt-capabilities")
        os.makedirs(self.caps, 0o700, exist_ok=True)
        self.proc = None
        self.qemu = {}                 # domain name: QEMU's pid
        t.cleanups.append(self._cleanup)

    def start(self, timeout=60):
        self.proc = self.t.spawn(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c",
             NS_SETUP, "ns-setup", self.dir, self.caps],
            os.path.join(self.dir, "libvirtd.out"),
            preexec_fn=guest.set_pdeathsig)

        def up():
            check(self.proc.poll() is None, "libvirtd exited (%s): %s" % (
                self.proc.returncode, self.tail()))
            return self.virsh("version", check_rc=False)[0] == 0
        wait_until(up, timeout, "libvirtd to answer")
        return self

    def virsh(self, *args, check_rc=True, timeout=120):
        """(exit code, stdout+stderr) of virsh ARGS; Failure if it fails
        and CHECK_RC."""
        p = subprocess.run(["virsh", "-q", "-c", self.uri] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL, timeout=timeout,
                           universal_newlines=True)
        if check_rc and p.returncode:
            raise Failure("virsh %s: exit %d:\n%s" % (" ".join(args),
                                                      p.returncode, p.stdout))
        return p.returncode, p.stdout

    def domains(self):
        """Names of every domain libvirtd knows (running or not)."""
        return self.virsh("list", "--all", "--name")[1].split()

    def start_domain(self, name):
        """virsh start NAME; QEMU's pid."""
        self.virsh("start", name)
        return self.qemu_pid(name)

    def start_domain_bg(self, name):
        """virsh start NAME in the background (for a start that blocks);
        (the virsh process, QEMU's pid)."""
        p = self.t.spawn(["virsh", "-q", "-c", self.uri, "start", name],
                         os.path.join(self.dir, "start-%s.log" % name))
        return p, wait_until(lambda: self.qemu_pid(name), 30,
                             "QEMU of %s to start" % name)

    def qemu_pid(self, name):
        """The pid of NAME's QEMU, remembered for the cleanup (None while
        libvirt has not started it)."""
        # libvirtd's /run is the namespace's: reach it through its root.
        try:
            with open("/proc/%d/root/run/libvirt/qemu/%s.pid" %
                      (self.proc.pid, name)) as f:
                self.qemu[name] = int(f.read())
        except (OSError, ValueError):
            return None
        return self.qemu[name]

    def qemu_log(self, name):
        return os.path.join(self.dir, "log", "qemu", "%s.log" % name)

    def tail(self, n=3000):
        out = []
        for p in (os.path.join(self.dir, "libvirtd.out"), self.log):
            try:
                with open(p, errors="replace") as f:
                    out.append("%s:\n%s" % (p, f.read()[-n:]))
            except OSError:
                pass
        return "\n".join(out)

    def stop(self, timeout=60):
        """SIGTERM libvirtd; its exit code. Destroy the domains first:
        libvirtd leaves running domains running when it exits."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise Failure("libvirtd did not exit within %ds of SIGTERM"
                          % timeout)

    def _cleanup(self):
        if self.proc and self.proc.poll() is None:
            try:
                for name in self.domains():
                    self.virsh("destroy", name, check_rc=False, timeout=30)
                    self.virsh("undefine", name, check_rc=False, timeout=30)
                self.stop(30)
            except (Failure, subprocess.TimeoutExpired):
                pass                  # t.cleanup() SIGKILLs libvirtd
        # QEMU is its own session (libvirt daemonizes it): kill what is
        # left by pid, if it is still that domain's QEMU.
        for name, pid in self.qemu.items():
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    mine = b"guest=%s," % name.encode() in f.read()
            except OSError:
                continue
            if mine:
                os.kill(pid, signal.SIGKILL)


def domain_xml(name, role, sock, mac, kernel, initrd, cmdline, console,
               mem_mib=256, cpuset="0", tcg=True):
    """The domain of docs/QEMU.md ("domain" block) with the interface of
    ROLE (vhostd's side: "server" or "client") from the same file, made
    concrete: NAME, MAC, vhost-user socket SOCK, direct kernel boot, the
    serial console on the unix socket CONSOLE (libvirt creates it), all of
    QEMU on CPUSET (vhostd polls CPU 1); under TCG type='qemu' and the
    file's vectors=0 override."""
    blocks = tagged(QEMU_MD)
    ET.register_namespace("qemu", QEMU_NS)
    dom = ET.fromstring(blocks["domain"])
    if tcg:
        dom.set("type", "qemu")
    dom.find("name").text = name
    mem = dom.find("memory")
    mem.set("unit", "MiB")
    mem.text = str(mem_mib)
    vcpu = dom.find("vcpu")
    vcpu.text = "1"
    vcpu.set("cpuset", cpuset)
    os_ = dom.find("os")
    os_.find("kernel").text = kernel
    os_.find("initrd").text = initrd
    os_.find("cmdline").text = cmdline
    devs = dom.find("devices")
    old = devs.find("interface")
    at = list(devs).index(old)
    devs.remove(old)
    iface = ET.fromstring(blocks["iface-vhostd-%s" % role])
    iface.find("mac").set("address", mac)
    iface.find("source").set("path", sock)
    devs.insert(at, iface)
    for tag in ("serial", "console"):
        for e in devs.findall(tag):
            devs.remove(e)
    serial = ET.SubElement(devs, "serial", type="unix")
    ET.SubElement(serial, "source", mode="bind", path=console)
    # Nothing the test needs, less for TCG to emulate.
    ET.SubElement(devs, "controller", type="usb", model="none")
    ET.SubElement(devs, "memballoon", model="none")
    # A guest that panics stops (its /init boots with panic=-1).
    ET.SubElement(dom, "on_reboot").text = "destroy"
    if tcg:
        dom.append(ET.fromstring(blocks["tcg-override"]))
    return ET.tostring(dom, encoding="unicode")


class _Reader:
    """What guest.Guest asks of its QEMU process: poll() is None while the
    console is open."""

    def __init__(self, console):
        self.console = console
        self.returncode = None

    def poll(self):
        if self.console._reader is not None and \
                not self.console._reader.is_alive():
            self.returncode = 0
        return self.returncode


class DomainConsole(guest.Guest):
    """A libvirt domain's serial console (a unix socket) with guest.Guest's
    wait_ready() and run(); stderr_log is QEMU's log of the domain."""

    def __init__(self, name, console_path, qemu_log, workdir):
        super().__init__(name, console_path, workdir=workdir)
        self.console_path = console_path
        self.stderr_log = qemu_log
        self.sock = None

    def attach(self, timeout=30):
        """Connect to the console; call it right after the domain starts
        (QEMU drops what the guest prints while nobody is connected)."""
        self.t_start = time.monotonic()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        wait_until(lambda: s.connect_ex(self.console_path) == 0, timeout,
                   "%s's console %s" % (self.name, self.console_path))
        self.sock = s
        self._logf = open(self.console_log, "w", encoding="utf-8",
                          errors="replace")
        self.proc = _Reader(self)
        self._reader = threading.Thread(target=self._read_loop,
                                        name="console-%s" % self.name,
                                        daemon=True)
        self._reader.start()
        return self

    def _read_chunk(self):           # guest.Guest's loop reads through it
        return self.sock.recv(65536)

    def send(self, text):
        self.sock.sendall(text.encode())

    def close(self):
        if self.sock:
            self.sock.close()
        if self._reader:
            self._reader.join(5)
        if self._logf and not self._logf.closed:
            self._logf.close()

    def kill(self):                   # the domain is libvirt's to kill
        self.close()
