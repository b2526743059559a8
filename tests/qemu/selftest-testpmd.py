#!/usr/bin/env python3
"""Validate the QEMU guest harness without vhostd.

dpdk-testpmd with two net_vhost vdevs in io forwarding mode is a stand-in
"switch" (a 2-port wire); two guests ping each other across it.

Cases (default: all):
  client   QEMU is vhost-user client (reconnect=1), testpmd is server
  server   QEMU is vhost-user server (server=on,wait=off), testpmd client=1
  jumbo    MTU 9000 on both guests, ping -s 8000 (QEMU client role)
  mq       2 queue pairs (queues=2, mq=on), QEMU client role
  migrate  live-migrate guest A to a new QEMU while B pings it (QEMU client role)

Usage: tests/qemu/selftest-testpmd.py [--cache DIR] [--workdir DIR] [case ...]
Needs root (hugepages).  Every process started is killed at the end and the
sockets and DPDK runtime dirs are removed.
Prints 'N passed, N failed' at the end; exit status 0 only if all passed.
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from guest import Guest, ensure_image, set_pdeathsig  # noqa: E402

TESTPMD = '/usr/bin/dpdk-testpmd'
HUGE_MNT = '/dev/hugepages'
HUGE_MIN = 1024


# IP fragments created + reassembly requests seen by a guest (/proc/net/snmp)
FRAG_COUNT = ("awk '/^Ip:/{n++; for(i=2;i<=NF;i++) if(n==1) k[i]=$i; "
              "else if(k[i]==\"FragCreates\"||k[i]==\"ReasmReqds\") s+=$i} "
              "END{print s+0}' /proc/net/snmp")


def log(msg):
    print('[%7.1f] %s' % (time.monotonic() - T0, msg), flush=True)


def clean_stale_runtime_dirs():
    """Remove /var/run/dpdk/vhdq<pid>_* left by a selftest that was SIGKILLed."""
    base = '/var/run/dpdk'
    try:
        names = os.listdir(base)
    except FileNotFoundError:
        return
    for n in names:
        if n.startswith('vhdq') and '_' in n:
            pid = n[4:].split('_')[0]
            if pid.isdigit() and not os.path.exists('/proc/' + pid):
                shutil.rmtree(os.path.join(base, n), ignore_errors=True)


def ensure_hugepages():
    os.makedirs(HUGE_MNT, exist_ok=True)
    if subprocess.run(['mountpoint', '-q', HUGE_MNT]).returncode != 0:
        subprocess.run(['mount', '-t', 'hugetlbfs', 'nodev', HUGE_MNT], check=True)
    with open('/proc/sys/vm/nr_hugepages') as f:
        n = int(f.read())
    if n < HUGE_MIN:                      # never lower what someone else set
        with open('/proc/sys/vm/nr_hugepages', 'w') as f:
            f.write(str(HUGE_MIN))


class Testpmd:
    """dpdk-testpmd, io forwarding between two net_vhost ports."""

    def __init__(self, workdir, socks, client, queues=1, mtu=1500,
                 cpus='1', mem_mb=512):
        self.workdir = workdir
        self.socks = socks
        self.client = client
        self.prefix = 'vhdq%d_%d' % (os.getpid(), int(time.monotonic() * 1000) % 100000)
        self.log_path = os.path.join(workdir, 'testpmd.log')
        vdevs = []
        for i, s in enumerate(socks):
            v = 'net_vhost%d,iface=%s' % (i, s)
            if client:
                v += ',client=1'
            if queues > 1:
                v += ',queues=%d' % queues
            vdevs += ['--vdev', v]
        # both lcores (main + 1 forwarding) on one physical CPU: leaves the
        # other core to the guests / other work on a 2-core machine
        self.args = [TESTPMD, '--lcores', '0@%s,1@%s' % (cpus, cpus),
                     '--in-memory', '--file-prefix', self.prefix, '--no-pci', '--no-telemetry',
                     '-m', str(mem_mb), '--log-level', 'pmd.net.vhost,info',
                     *vdevs, '--',
                     '--forward-mode=io', '--auto-start', '--stats-period', '1',
                     '--nb-cores=1', '--rxq=%d' % queues, '--txq=%d' % queues]
        if mtu > 1500:
            self.args.append('--max-pkt-len=%d' % (mtu + 18))
        self.proc = None

    def start(self):
        self._logf = open(self.log_path, 'w')
        with open(os.path.join(self.workdir, 'testpmd.cmdline'), 'w') as f:
            f.write(' '.join(self.args) + '\n')
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                     stdout=self._logf, stderr=subprocess.STDOUT,
                                     start_new_session=True, preexec_fn=set_pdeathsig)
        # wait until forwarding started (and, as server, the sockets exist)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError('testpmd exited rc=%s:\n%s' % (self.proc.returncode, self.tail()))
            txt = self.text()
            if 'Start automatic packet forwarding' in txt or 'io packet forwarding' in txt:
                if self.client or all(os.path.exists(s) for s in self.socks):
                    return
            if time.monotonic() > deadline:
                raise RuntimeError('testpmd not ready:\n' + self.tail())
            time.sleep(0.1)

    def text(self):
        try:
            with open(self.log_path, errors='replace') as f:
                return f.read()
        except OSError:
            return ''

    def tail(self, n=3000):
        return self.text()[-n:]

    def wait_log(self, needle, count, timeout):
        deadline = time.monotonic() + timeout
        while self.text().count(needle) < count:
            if time.monotonic() > deadline:
                raise RuntimeError('testpmd: %r not seen %d times:\n%s' % (needle, count, self.tail()))
            if self.proc.poll() is not None:
                raise RuntimeError('testpmd died:\n' + self.tail())
            time.sleep(0.1)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        if getattr(self, '_logf', None):
            self._logf.close()
        shutil.rmtree('/var/run/dpdk/' + self.prefix, ignore_errors=True)
        if not self.client:
            for s in self.socks:
                try:
                    os.unlink(s)
                except FileNotFoundError:
                    pass


def ping_until_ok(g, ip, timeout, size=None):
    """Ping once a second until a reply; return seconds until the first reply."""
    t = time.monotonic()
    s = ' -s %d' % size if size else ''
    n = max(1, int(timeout / 2))
    rc, out = g.run('i=0; until ping -c 1 -W 2%s %s >/dev/null; do i=$((i+1)); '
                    '[ $i -ge %d ] && exit 1; done; echo tries=$i' % (s, ip, n),
                    timeout=timeout + 30)
    if rc != 0:
        raise AssertionError('%s: no ping reply from %s within %ss' % (g.name, ip, timeout))
    return time.monotonic() - t


def run_case(case, args, image):
    wd = os.path.join(args.workdir, case)
    os.makedirs(wd, exist_ok=True)
    role = 'server' if case == 'server' else 'client'
    mtu = 9000 if case == 'jumbo' else 1500
    queues = 2 if case == 'mq' else 1
    socks = [os.path.join(wd, 'vm%d.sock' % i) for i in (1, 2)]
    kernel, initrd = image
    tp = Testpmd(wd, socks, client=(role == 'server'), queues=queues, mtu=mtu,
                 cpus=args.testpmd_cpu)
    guests = []
    res = {}
    try:
        def mk(name, sock, mac, ip, **kw):
            return Guest(name, sock, role=role, mac=mac, ip=ip, mtu=mtu,
                         queues=queues, workdir=wd, kernel=kernel, initrd=initrd,
                         cpus=args.qemu_cpus, **kw)
        a = mk('vmA', socks[0], '52:54:00:00:00:0a', '10.0.0.1/24')
        b = mk('vmB', socks[1], '52:54:00:00:00:0b', '10.0.0.2/24')
        guests += [a, b]
        if role == 'client':
            tp.start()                  # testpmd listens; QEMU connects
            a.start(); b.start()
        else:
            a.start(); b.start()        # QEMU listens; testpmd connects
            deadline = time.monotonic() + 30
            while not all(os.path.exists(s) for s in socks):
                if time.monotonic() > deadline:
                    raise RuntimeError('QEMU did not create its sockets')
                time.sleep(0.05)
            tp.start()
        res['ready_A'] = a.wait_ready(args.boot_timeout)
        res['ready_B'] = b.wait_ready(args.boot_timeout)
        log('%s: guests ready in %.1fs / %.1fs (%s | %s)'
            % (case, res['ready_A'], res['ready_B'], a.ready_line, b.ready_line))
        if queues > 1:
            rc, out = a.run('ethtool -l eth0 | tail -5; cat /proc/interrupts | grep -c virtio', 20)
            log('%s: vmA channels:\n%s' % (case, out.rstrip()))
        size = 8000 if mtu > 1500 else None
        res['first_ping'] = ping_until_ok(a, '10.0.0.2', args.ping_timeout, size)
        res['first_ping_since_start'] = time.monotonic() - a.t_start
        log('%s: first ping reply %.1fs after both ready, %.1fs after QEMU start'
            % (case, res['first_ping'], res['first_ping_since_start']))
        s = ' -s 8000' if size else ''
        rc, out = a.run('ping -c 3 -W 5%s 10.0.0.2' % s, 60)
        log('%s: A->B rc=%d %s' % (case, rc, out.strip().splitlines()[-1] if out.strip() else ''))
        if rc != 0:
            raise AssertionError('A->B ping failed:\n' + out)
        rc, out = b.run('ping -c 3 -W 5%s 10.0.0.1' % s, 60)
        log('%s: B->A rc=%d %s' % (case, rc, out.strip().splitlines()[-1] if out.strip() else ''))
        if rc != 0:
            raise AssertionError('B->A ping failed:\n' + out)
        if mtu > 1500:
            rc, out = a.run('cat /sys/class/net/eth0/mtu', 10)
            assert out.strip() == '9000', out
            # the 8028-byte datagrams must have crossed unfragmented
            for g in (a, b):
                rc, out = g.run(FRAG_COUNT, 10)
                assert rc == 0 and out.strip() == '0', '%s fragmented: %r' % (g.name, out)
        if case == 'migrate':
            migrate_case(a, b, mk, wd, res, args)
        return res
    finally:
        for g in guests:
            try:
                g.kill()
            except Exception:
                traceback.print_exc()
        tp.stop()
        for s in socks:
            if os.path.exists(s):
                os.unlink(s)


def migrate_case(a, b, mk, wd, res, args):
    """Live-migrate A (QEMU client role, testpmd server) to a new QEMU on the same
    vhost-user socket while B pings A continuously."""
    uri = 'unix:' + os.path.join(wd, 'mig.sock')
    a2 = mk('vmA2', a.sock_path, a.mac, a.ip, incoming=uri)
    try:
        # B pings A in the background (output to a file in B's tmpfs)
        b.run('ping -i 0.2 -W 1 10.0.0.1 > /tmp/ping.log 2>&1 & echo $! > /tmp/ping.pid', 10)
        a2.start()
        a2.wait_incoming(60)
        t = time.monotonic()
        st = a.migrate(uri, timeout=300)
        res['migrate_s'] = time.monotonic() - t
        log('migrate: completed in %.1fs, downtime %s ms, total %s ms'
            % (res['migrate_s'], st.get('downtime'), st.get('total-time')))
        a2.wait_running(30)
        a.kill()
        # after migration the shell lives on in a2; A's IP must answer B again
        rc, out = a2.run('ip -o -4 addr show eth0', 30)
        log('migrate: vmA2 says: %s' % out.strip())
        res['first_ping_after_migrate'] = ping_until_ok(b, '10.0.0.1', args.ping_timeout)
        rc, out = b.run('sleep 2; kill -INT $(cat /tmp/ping.pid); sleep 0.5; tail -2 /tmp/ping.log', 10)
        log('migrate: B background ping (5/s across the migration): %s'
            % ' | '.join(out.strip().splitlines()[-2:]))
    finally:
        a2.kill()


def _sigterm(signum, frame):
    raise SystemExit('killed by signal %d' % signum)   # runs the finally blocks


def main():
    global T0
    signal.signal(signal.SIGTERM, _sigterm)
    signal.signal(signal.SIGHUP, _sigterm)
    T0 = time.monotonic()
    ap = argparse.ArgumentParser()
    ap.add_argument('cases', nargs='*', default=['client', 'server', 'jumbo', 'mq', 'migrate'])
    ap.add_argument('--cache', default=os.environ.get('VHD_GUEST_CACHE', '/var/tmp/vhostd-guest-cache'))
    ap.add_argument('--workdir')
    ap.add_argument('--keep', action='store_true', help='keep workdir (logs)')
    ap.add_argument('--testpmd-cpu', default='1')
    ap.add_argument('--qemu-cpus', default=None, help="e.g. '0' (default: unpinned)")
    ap.add_argument('--boot-timeout', type=float, default=240)
    ap.add_argument('--ping-timeout', type=float, default=60)
    args = ap.parse_args()
    for c in args.cases:
        if c not in ('client', 'server', 'jumbo', 'mq', 'migrate'):
            ap.error('unknown case ' + c)
    if os.geteuid() != 0:
        print('selftest-testpmd: needs root (hugepages); skipped')
        print('0 passed, 0 failed, 1 skipped')
        return 0
    tmp = None
    if not args.workdir:
        tmp = args.workdir = tempfile.mkdtemp(prefix='vhd-qemu-selftest.')
    log('workdir %s' % args.workdir)
    t = time.monotonic()
    image = ensure_image(args.cache)
    log('guest image ready in %.2fs: %s' % (time.monotonic() - t, image[1]))
    ensure_hugepages()
    clean_stale_runtime_dirs()
    passed, failed = [], []
    for c in args.cases:
        t = time.monotonic()
        log('=== case %s' % c)
        try:
            res = run_case(c, args, image)
            passed.append(c)
            log('PASS %s (%.1fs) %s' % (c, time.monotonic() - t,
                                         ', '.join('%s=%.1fs' % kv for kv in res.items())))
        except Exception as e:
            failed.append(c)
            log('FAIL %s (%.1fs): %s' % (c, time.monotonic() - t, e))
            traceback.print_exc()
    if tmp and not args.keep and not failed:
        shutil.rmtree(tmp, ignore_errors=True)
    elif tmp:
        log('logs kept in %s' % tmp)
    print('%d passed, %d failed' % (len(passed), len(failed)))
    return 0 if not failed else 1


if __name__ == '__main__':
    sys.exit(main())
