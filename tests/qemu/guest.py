#!/usr/bin/env python3
"""Start and drive a tiny QEMU test guest attached to a vhost-user socket.

Python 3 standard library only.  The guest image (Debian kernel + busybox
initramfs) comes from tests/qemu/build-guest.sh; see docs/QEMU.md.

    from guest import Guest, ensure_image
    with Guest('vm1', '/run/vhostd/vm1.sock', role='client',
               mac='52:54:00:00:00:01', ip='10.0.0.1/24',
               workdir='/tmp/t') as g:
        g.start()
        g.wait_ready(120)
        rc, out = g.run('ping -c 3 10.0.0.2', timeout=60)

``role`` is QEMU's side of the vhost-user socket:
  role='client': QEMU connects (the switch is the server / listens);
                 QEMU gets  -chardev socket,path=SOCK,reconnect=1
  role='server': QEMU listens (the switch is the client and connects);
                 QEMU gets  -chardev socket,path=SOCK,server=on,wait=off

Facts this relies on (verified with QEMU 7.2 on the project's machines):
  * guest RAM must be shared with the backend (memory-backend-memfd share=on);
    without it no frame ever reaches the backend, silently;
  * under TCG, QEMU 7.2 segfaults when a vhost-user virtio-net device uses
    MSI-X, hence vectors=0 (INTx) when accel='tcg';
  * /dev/kvm on these machines cannot boot the guest: accel defaults to 'tcg'
    (override with accel='kvm' or VHD_QEMU_ACCEL=kvm elsewhere).
"""

import itertools
import json
import os
import random
import re
import signal
import socket
import subprocess
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD_SCRIPT = os.path.join(HERE, 'build-guest.sh')
DEFAULT_CACHE = os.environ.get('VHD_GUEST_CACHE', '/var/tmp/vhostd-guest-cache')
READY_MARKER = 'VHD-GUEST-READY'


class GuestError(Exception):
    pass


class GuestTimeout(GuestError, TimeoutError):
    def __init__(self, msg, output=''):
        super().__init__(msg)
        self.output = output


def ensure_image(cache_dir=None, refresh=False):
    """Build (or reuse) the guest image; return (kernel_path, initrd_path)."""
    cache_dir = cache_dir or DEFAULT_CACHE
    cmd = [BUILD_SCRIPT, cache_dir] + (['--refresh'] if refresh else [])
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE,
                         universal_newlines=True).stdout
    vals = dict(l.split('=', 1) for l in out.splitlines() if '=' in l)
    return vals['KERNEL'], vals['INITRD']


def _mem_bytes(mem):
    m = re.fullmatch(r'(\d+)([KMGT]?)', str(mem).upper())
    if not m:
        raise ValueError('bad mem size %r' % mem)
    return int(m.group(1)) * {'': 1, 'K': 1 << 10, 'M': 1 << 20,
                              'G': 1 << 30, 'T': 1 << 40}[m.group(2)]


class QMP:
    """Minimal synchronous QMP client."""

    def __init__(self, path, timeout=5.0):
        self.path = path
        self.events = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(max(0.1, deadline - time.monotonic()))
                s.connect(path)
                break
            except OSError:
                s.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        s.settimeout(timeout)
        self.sock = s
        self.f = s.makefile('rwb', buffering=0)
        self._readline()                      # greeting
        self.cmd('qmp_capabilities')

    def _readline(self):
        try:
            line = self.f.readline()
        except socket.timeout:
            raise GuestError('QMP %s: no answer' % self.path)
        if not line:
            raise GuestError('QMP connection closed')
        return json.loads(line)

    def cmd(self, name, timeout=30.0, **args):
        msg = {'execute': name}
        if args:
            msg['arguments'] = args
        self.sock.settimeout(timeout)
        self.f.write(json.dumps(msg).encode() + b'\n')
        while True:
            r = self._readline()
            if 'event' in r:
                self.events.append(r)
                continue
            if 'error' in r:
                raise GuestError('QMP %s: %s' % (name, r['error']))
            return r.get('return')

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Guest:
    _ids = itertools.count(1)

    def __init__(self, name, sock_path, role='client', mac=None, ip=None,
                 mtu=1500, mem='256M', queues=1, workdir=None, *,
                 ip6=None, kernel=None, initrd=None, cache_dir=None,
                 incoming=None, cpus=None, smp=1, accel=None, vectors=None,
                 qemu='qemu-system-x86_64', extra_args=(), extra_cmdline='',
                 shared_mem=True, hugepages=None, user=None, groups=(),
                 die_with_parent=None, iommu=False):
        if role not in ('client', 'server'):
            raise ValueError("role must be 'client' or 'server'")
        self.name = name
        self.sock_path = os.path.abspath(sock_path)
        self.role = role
        n = next(Guest._ids)
        self.mac = mac or '52:54:00:%02x:%02x:%02x' % (
            os.getpid() & 0xff, random.randrange(256), n & 0xff)
        self.ip = ip
        self.ip6 = ip6
        self.mtu = int(mtu)
        self.mem = str(mem)
        self.queues = int(queues)
        self.workdir = os.path.abspath(workdir or '.')
        os.makedirs(self.workdir, exist_ok=True)
        self.kernel, self.initrd = kernel, initrd
        self.cache_dir = cache_dir
        self.incoming = incoming
        self.cpus = cpus
        self.smp = int(smp)
        self.accel = accel or os.environ.get('VHD_QEMU_ACCEL', 'tcg')
        self.vectors = vectors
        self.qemu = qemu
        self.extra_args = list(extra_args)
        self.extra_cmdline = extra_cmdline
        # True: memfd share=on (required).  Negative tests only: False = memfd
        # share=off, None = plain anonymous RAM (no memory backend)
        self.shared_mem = shared_mem
        # guest RAM from hugetlbfs (e.g. '/dev/hugepages') instead of memfd
        self.hugepages = hugepages
        self.user = user                  # run QEMU as this user (permission tests)
        self.groups = list(groups)        # with these supplementary gids
        # PR_SET_PDEATHSIG(SIGKILL): QEMU dies if the thread that started it
        # exits (so even a SIGKILLed test leaves no VM).  Default: only when
        # started from the main thread (a worker thread exiting would kill it).
        self.die_with_parent = die_with_parent
        # True: a q35 machine with an Intel vIOMMU (DMA remapping on in the
        # guest: intel_iommu=on) and the NIC behind it (iommu_platform=on):
        # the backend must offer VIRTIO_F_IOMMU_PLATFORM and translate
        # through IOTLB messages.  False: today's 'pc' machine, unchanged.
        self.iommu = bool(iommu)
        self.console_log = os.path.join(self.workdir, '%s.console.log' % name)
        self.stderr_log = os.path.join(self.workdir, '%s.qemu.log' % name)
        self.qmp_path = os.path.join(self.workdir, '%s.qmp' % name)
        self.proc = None
        self._buf = ''
        self._cond = threading.Condition()
        self._reader = None
        self._logf = None
        self._qmp = None
        self._seq = itertools.count(1)
        self.t_start = None
        self.t_ready = None

    # ------------------------------------------------------------------ setup
    def command_line(self):
        if not (self.kernel and self.initrd):
            self.kernel, self.initrd = ensure_image(self.cache_dir)
        size = _mem_bytes(self.mem)
        append = ['console=ttyS0', 'panic=-1', 'quiet', 'loglevel=1',
                  'mitigations=off', 'vhd.name=%s' % self.name,
                  'vhd.mac=%s' % self.mac, 'vhd.mtu=%d' % self.mtu]
        if self.ip:
            append.append('vhd.ip=%s' % self.ip)
        if self.ip6:
            append.append('vhd.ip6=%s' % self.ip6)
        if self.queues > 1:
            append.append('vhd.queues=%d' % self.queues)
        if self.iommu:
            append.append('intel_iommu=on')
        if self.extra_cmdline:
            append.append(self.extra_cmdline)

        if self.role == 'client':
            chardev = 'socket,id=c0,path=%s,reconnect=1' % self.sock_path
        else:
            chardev = 'socket,id=c0,path=%s,server=on,wait=off' % self.sock_path
        netdev = 'vhost-user,id=n0,chardev=c0'
        dev = 'virtio-net-pci,netdev=n0,mac=%s' % self.mac
        if self.queues > 1:
            netdev += ',queues=%d' % self.queues
            dev += ',mq=on'
        vectors = self.vectors
        if vectors is None:
            if self.accel == 'tcg':
                vectors = 0           # QEMU 7.2 TCG + vhost-user + MSI-X segfaults
            elif self.queues > 1:
                vectors = 2 * self.queues + 2
        if vectors is not None:
            dev += ',vectors=%d' % vectors
        if self.mtu > 1500:
            dev += ',host_mtu=%d' % self.mtu
        if self.iommu:
            # behind a PCIe root port (ATS needs one; it also makes the
            # device modern only, as iommu_platform needs), with ATS: the
            # guest then sends device-IOTLB invalidations, which QEMU 7.2
            # turns into the backend's IOTLB invalidations (without them
            # the backend keeps stale translations of reused IOVAs)
            dev += ',bus=rp0,disable-legacy=on,iommu_platform=on,ats=on'

        args = [self.qemu, '-name', self.name,
                '-nodefaults', '-no-user-config', '-display', 'none',
                '-accel', self.accel,
                '-machine', 'q35' if self.iommu else 'pc', '-cpu',
                'max' if self.accel == 'kvm' else 'qemu64',
                '-smp', str(self.smp), '-m', str(size >> 20),
                '-kernel', self.kernel, '-initrd', self.initrd,
                '-append', ' '.join(append)]
        if self.iommu:
            # before any other PCI device (they get their DMA address space
            # when they are realized); no interrupt remapping (needs
            # kernel-irqchip=split with KVM, nothing here uses it);
            # device-iotlb: ATS for the NIC (see above)
            args += ['-device', 'intel-iommu,intremap=off,device-iotlb=on',
                     '-device', 'pcie-root-port,id=rp0,chassis=1']
        args += ['-chardev', 'stdio,id=ser0,signal=off', '-serial', 'chardev:ser0',
                 '-chardev', chardev,
                 '-netdev', netdev,
                 '-device', dev,
                 '-qmp', 'unix:%s,server=on,wait=off' % self.qmp_path,
                 '-no-reboot']
        if self.shared_mem is not None:
            share = 'on' if self.shared_mem else 'off'
            if self.hugepages:
                backend = ('memory-backend-file,id=mem,size=%d,mem-path=%s,share=%s'
                           % (size, self.hugepages, share))
            else:
                backend = 'memory-backend-memfd,id=mem,size=%d,share=%s' % (size, share)
            args += ['-object', backend, '-numa', 'node,memdev=mem']
        if self.incoming:
            args += ['-incoming', self.incoming]
        return args + self.extra_args

    def start(self):
        if self.proc:
            raise GuestError('%s already started' % self.name)
        args = self.command_line()
        for p in (self.qmp_path, self.sock_path):
            if len(p.encode()) > 107:      # sun_path is 108 bytes incl. NUL
                raise GuestError('UNIX socket path too long (%d bytes): %s' % (len(p), p))
        for p in (self.qmp_path,) + ((self.sock_path,) if self.role == 'server' else ()):
            if os.path.exists(p):
                os.unlink(p)
        with open(os.path.join(self.workdir, '%s.cmdline' % self.name), 'w') as f:
            f.write(' '.join(_shq(a) for a in args) + '\n')
        self._logf = open(self.console_log, 'w', encoding='utf-8', errors='replace')
        stderr = open(self.stderr_log, 'w')
        cpus = self.cpus

        uid = gid = None
        groups = self.groups
        if self.user is not None:
            import pwd
            pw = pwd.getpwnam(self.user)
            uid, gid = pw.pw_uid, pw.pw_gid

        pdeath = self.die_with_parent
        if pdeath is None:
            pdeath = threading.current_thread() is threading.main_thread()

        def pre():
            if pdeath:
                set_pdeathsig()
            if cpus is not None:
                os.sched_setaffinity(0, _cpuset(cpus))
            if uid is not None:
                os.setgroups(groups)
                os.setgid(gid)
                os.setuid(uid)

        self.t_start = time.monotonic()
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=stderr,
                                     preexec_fn=pre, start_new_session=True)
        stderr.close()
        self._reader = threading.Thread(target=self._read_loop,
                                        name='console-%s' % self.name, daemon=True)
        self._reader.start()
        return self

    def _read_chunk(self):
        """The console's next bytes (b'' at its end): QEMU's stdout here;
        a subclass may read another console (lvirt.DomainConsole)."""
        return os.read(self.proc.stdout.fileno(), 65536)

    def _read_loop(self):
        while True:
            try:
                data = self._read_chunk()
            except OSError:
                data = b''
            if not data:
                break
            text = data.decode('utf-8', errors='replace').replace('\r', '')
            self._logf.write(text)
            self._logf.flush()
            with self._cond:
                self._buf += text
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    # -------------------------------------------------------------- console
    @property
    def output(self):
        with self._cond:
            return self._buf

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def _tail(self, n=2000):
        err = ''
        try:
            with open(self.stderr_log) as f:
                err = f.read()[-n:]
        except OSError:
            pass
        return 'console tail:\n%s\nqemu stderr:\n%s' % (self.output[-n:], err)

    def wait_for(self, pattern, timeout, start=0):
        """Wait until regex `pattern` matches console output after offset `start`.
        Returns the match object (positions relative to the full buffer)."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                m = rx.search(self._buf, start)
                if m:
                    return m
                if self.proc.poll() is not None and not self._reader.is_alive():
                    raise GuestError('%s: QEMU exited (rc=%s) while waiting for %r\n%s'
                                     % (self.name, self.proc.returncode, pattern,
                                        self._tail()))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise GuestTimeout('%s: timeout waiting for %r\n%s'
                                       % (self.name, pattern, self._tail()),
                                       self._buf[start:])
                self._cond.wait(min(left, 0.5))

    def wait_ready(self, timeout=180):
        """Wait for the guest's /init to report eth0 configured.
        Returns seconds since start()."""
        m = self.wait_for(READY_MARKER + r'.*\n|VHD-GUEST-NO-NIC', timeout)
        if 'NO-NIC' in m.group(0):
            raise GuestError('%s: guest has no NIC\n%s' % (self.name, self._tail()))
        self.t_ready = time.monotonic()
        self.ready_line = m.group(0).strip()
        return self.t_ready - self.t_start

    def send(self, text):
        """Write raw text to the guest's serial console."""
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def run(self, cmd, timeout=60, check=False):
        """Run a shell command in the guest; return (rc, output).
        The command runs in a subshell (so `exit N` is fine, `cd` does not
        persist); stdin is /dev/null; stderr is merged into output.
        On timeout the command is interrupted (^C) and GuestTimeout raised."""
        tok = '%d_%06x' % (next(self._seq), random.randrange(1 << 24))
        begin, end = '__VHD_B_%s__' % tok, '__VHD_E_%s__' % tok
        with self._cond:
            pos = len(self._buf)
        self.send('echo %s; ( %s\n) </dev/null 2>&1; echo %s=$?\n' % (begin, cmd, end))
        try:
            m = self.wait_for(re.escape(end) + r'=(\d+)', timeout, pos)
        except GuestTimeout as e:
            self.send('\x03')
            raise GuestTimeout('%s: command timed out after %ss: %s\n%s'
                               % (self.name, timeout, cmd, e.output), e.output)
        seg = self._buf[pos:m.start()]
        b = seg.find(begin + '\n')
        out = seg[b + len(begin) + 1:] if b >= 0 else seg
        rc = int(m.group(1))
        if check and rc != 0:
            raise GuestError('%s: %r failed rc=%d:\n%s' % (self.name, cmd, rc, out))
        return rc, out

    def add_vlan(self, vid, ip=None, parent='eth0', timeout=30):
        """Add the 802.1Q sub-interface PARENT.VID (frames tagged VID on
        PARENT), bring it up, give it IPv4 address IP ('A.B.C.D/NN') if
        given; return its name.  Every step is synchronous in the guest
        (no DAD for IPv4), so the interface can be used as soon as this
        returns; it checks that the kernel shows it (VLAN VID on PARENT,
        up, the address) and raises GuestError if not."""
        vid = int(vid)
        if not 1 <= vid <= 4094:
            raise ValueError('VLAN id %d not in 1..4094' % vid)
        dev = '%s.%d' % (parent, vid)
        cmd = ('ip link add link %s name %s type vlan id %d && ip link set %s up'
               % (parent, dev, vid, dev))
        if ip:
            cmd += ' && ip addr add %s dev %s' % (ip, dev)
        self.run(cmd, timeout, check=True)
        # /proc/net/vlan/config: "DEV | VID | PARENT"
        rc, out = self.run('cat /proc/net/vlan/config; ip -o link show dev %s;'
                           ' ip -o -4 addr show dev %s' % (dev, dev), timeout)
        ok = (re.search(r'^%s\s*\|\s*%d\s*\|\s*%s\s*$' % (re.escape(dev), vid,
                                                      re.escape(parent)), out, re.M)
              and re.search(r'<[^>]*\bUP\b[^>]*>', out)
              and (not ip or re.search(r'\binet %s\b' % re.escape(ip), out)))
        if not ok:
            raise GuestError('%s: VLAN interface %s (id %d on %s%s) not as '
                             'asked:\n%s' % (self.name, dev, vid, parent,
                                             ', ' + ip if ip else '', out))
        return dev

    # ------------------------------------------------------------------ QMP
    def qmp(self, name, timeout=30.0, **args):
        if self._qmp is None:
            self._qmp = QMP(self.qmp_path)
        return self._qmp.cmd(name, timeout=timeout, **args)

    def wait_incoming(self, timeout=120):
        """Wait until a guest started with incoming=URI listens for the
        migration stream (QMP answers and status is 'inmigrate').  Needed
        because QEMU only opens the incoming socket after its vhost-user
        netdev has connected."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                st = self.qmp('query-status', timeout=2)
                if st.get('status') == 'inmigrate':
                    return st
            except (GuestError, OSError):
                if self._qmp:
                    self._qmp.close()
                self._qmp = None
            if not self.alive():
                raise GuestError('%s: QEMU exited\n%s' % (self.name, self._tail()))
            if time.monotonic() > deadline:
                raise GuestTimeout('%s: not waiting for migration after %ss\n%s'
                                   % (self.name, timeout, self._tail()))
            time.sleep(0.2)

    def wait_running(self, timeout=120):
        """Poll QMP query-status until the VM runs (use on an -incoming guest)."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.qmp('query-status')
            if st.get('running'):
                return st
            if time.monotonic() > deadline:
                raise GuestTimeout('%s: not running after %ss: %s' % (self.name, timeout, st))
            time.sleep(0.2)

    def migrate(self, dest_uri, timeout=300):
        """Live-migrate to a Guest started with incoming=dest_uri.
        Returns the final query-migrate dict; raises on failure."""
        self.qmp('migrate', uri=dest_uri)
        deadline = time.monotonic() + timeout
        while True:
            st = self.qmp('query-migrate')
            status = st.get('status')
            if status == 'completed':
                return st
            if status in ('failed', 'cancelled'):
                raise GuestError('%s: migration %s: %s' % (self.name, status, st))
            if time.monotonic() > deadline:
                try:
                    self.qmp('migrate_cancel')
                except GuestError:
                    pass
                raise GuestTimeout('%s: migration timeout: %s' % (self.name, st))
            time.sleep(0.2)

    # ------------------------------------------------------------ shutdown
    def kill(self):
        """SIGKILL QEMU (simulates a crashed VM)."""
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._reap()

    def stop(self, timeout=15):
        """Graceful: QMP quit, then SIGTERM, then SIGKILL."""
        if self.proc and self.proc.poll() is None:
            try:
                self.qmp('quit', timeout=5)
                self.proc.wait(timeout)
            except Exception:     # QMP not serviced (e.g. still waiting for
                pass              # the vhost-user peer) or quit too slow
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def _reap(self):
        if self.proc:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
            for f in (self.proc.stdin,):
                try:
                    f.close()
                except (OSError, BrokenPipeError):
                    pass
            if self._reader:
                self._reader.join(5)
            try:
                self.proc.stdout.close()
            except OSError:
                pass
        if self._qmp:
            self._qmp.close()
            self._qmp = None
        if self._logf and not self._logf.closed:
            self._logf.close()
        paths = [self.qmp_path] + ([self.sock_path] if self.role == 'server' else [])
        for p in paths:
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()


def set_pdeathsig(sig=signal.SIGKILL):
    """prctl(PR_SET_PDEATHSIG, sig) for use in a Popen preexec_fn."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(sig), 0, 0, 0)       # 1 = PR_SET_PDEATHSIG
    except Exception:
        pass


def _cpuset(cpus):
    if isinstance(cpus, int):
        return {cpus}
    if isinstance(cpus, str):
        s = set()
        for part in cpus.split(','):
            a, _, b = part.partition('-')
            s.update(range(int(a), int(b or a) + 1))
        return s
    return set(cpus)


def _shq(a):
    return a if re.fullmatch(r'[\w@%+=:,./-]+', a) else "'" + a.replace("'", "'\\''") + "'"


if __name__ == '__main__':
    # Manual use: boot one guest and attach a console-like loop.
    import argparse
    import sys
    ap = argparse.ArgumentParser(description='boot a vhost-user test guest')
    ap.add_argument('sock')
    ap.add_argument('--name', default='vm1')
    ap.add_argument('--role', default='client', choices=('client', 'server'))
    ap.add_argument('--ip', default='10.0.0.1/24')
    ap.add_argument('--mac')
    ap.add_argument('--mtu', type=int, default=1500)
    ap.add_argument('--queues', type=int, default=1)
    ap.add_argument('--workdir', default='.')
    ap.add_argument('--print-cmdline', action='store_true')
    a = ap.parse_args()
    g = Guest(a.name, a.sock, role=a.role, mac=a.mac, ip=a.ip, mtu=a.mtu,
              queues=a.queues, workdir=a.workdir)
    if a.print_cmdline:
        print(' '.join(_shq(x) for x in g.command_line()))
        sys.exit(0)
    try:
        g.start()
        print('ready after %.1fs: %s' % (g.wait_ready(), g.ready_line))
        for line in sys.stdin:
            rc, out = g.run(line.strip(), timeout=120)
            sys.stdout.write(out + '[rc=%d]\n' % rc)
    finally:
        g.stop()
