#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""vhostd as a system service, without systemd itself: what systemd sees of
it is played by this test.

1. Readiness (Type=notify): NOTIFY_SOCKET is a datagram socket of ours.
   When READY=1 arrives, the control socket and every vhost-user socket of
   the config exist and vhostctl is answered; SIGTERM brings STOPPING=1,
   exit status 0 and every mbuf back.
2. In the foreground, every log line (vhostd's and DPDK's) is on stderr,
   one line each as "LEVEL logtype: message"; stdout has only the attach
   hints and the ready line.
3. Log levels at run time: log set vhostd.port debug makes a guest's vring
   lines (DEBUG) appear, log set vhostd.port info makes them stop (while
   the guest's INFO lines go on); log list shows each level; config show
   keeps the change, and vhostd --check takes the saved file. Bad levels,
   patterns that match nothing, bad regexes and a setting too many for
   the config's log-level are refused and change nothing.
4. Under systemd (JOURNAL_STREAM names vhostd's stderr): vhostd runs in a
   private mount namespace where our datagram socket is
   /run/systemd/journal/socket. Every line arrives there as an entry with
   MESSAGE (no newline), PRIORITY (from the DPDK level), SYSLOG_IDENTIFIER
   =vhostd and VHOSTD_LOGTYPE; the config's log-level list applies
   (lib.eal:notice hides EAL's INFO lines, vhostd.ctl:debug shows a
   DEBUG line as PRIORITY=7); nothing is written to stderr.
"""
import array
import json
import os
import re
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
import vhdtest as vt  # noqa: E402
import vhostuser as vu  # noqa: E402

LINE = re.compile(r"^(EMERG|ALERT|CRIT|ERR|WARNING|NOTICE|INFO|DEBUG) "
                  r"[a-z0-9_.]+: \S")


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def spawn(t, argv, tag, env=None):
    """ARGV with stdout and stderr in files of their own (Test.spawn
    merges them); the process is killed at cleanup. Returns (process,
    stdout path); process.log is the stderr file."""
    out, err = t.path(tag + ".out"), t.path(tag + ".err")
    with open(out, "wb") as fo, open(err, "wb") as fe:
        p = subprocess.Popen(argv, stdout=fo, stderr=fe,
                             stdin=subprocess.DEVNULL, env=env,
                             start_new_session=True)
    p.log = err
    t.procs.append(p)
    return p, out


def notify_messages(sock, want, timeout, got):
    """Datagrams from SOCK appended to GOT until one holds line WANT."""
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0:
            raise vt.Failure("no %s from vhostd within %ds (got %r)" %
                             (want, timeout, got))
        sock.settimeout(left)
        try:
            msg = sock.recv(4096).decode()
        except socket.timeout:
            continue
        got.append(msg)
        if want in msg.split("\n"):
            return msg


def levels(d, pattern="vhostd.*"):
    _, out, _ = d.vhostctl("--json", "log", "list", pattern)
    return {r["logtype"]: r["level"] for r in json.loads(out)}


def conf_log_level(d):
    _, out, _ = d.vhostctl("config", "show")
    m = re.search(r"^log-level = (.*)$", out, re.M)
    return m.group(1) if m else None


def refused(d, args, words):
    """vhostctl ARGS fails (exit 1 or 2) saying WORDS."""
    rc, out, err = d.vhostctl(*args, check_rc=None)
    vt.check(rc in (1, 2) and words in err,
             "vhostctl %s: exit %d, %r%r (wanted a refusal saying %r)" %
             (" ".join(args), rc, out, err, words))


def test_foreground(t):
    names = ("a", "b")
    d = vt.Vhostd(t, {"br0": {}}, {
        n: {"type": "vhost-user", "bridge": "br0",
            "path": t.path(n + ".sock")} for n in names})
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    t.cleanups.append(ns.close)
    ns.bind(t.path("notify.sock"))
    env = dict(os.environ, NOTIFY_SOCKET=t.path("notify.sock"))
    env.pop("JOURNAL_STREAM", None)
    t0 = time.monotonic()
    d.proc, out = spawn(t, [vt.VHOSTD, "--config", d.conf], "fg", env)

    # 1. READY=1: everything is there at that moment.
    got = []
    ready = notify_messages(ns, "READY=1", 60, got)
    vt.check(stat.S_ISSOCK(os.stat(d.control).st_mode),
             "READY=1 before the control socket exists")
    for n in names:
        vt.check(stat.S_ISSOCK(os.stat(t.path(n + ".sock")).st_mode),
                 "READY=1 before socket %s exists" % n)
    _, ports, _ = d.vhostctl("--json", "port", "list")
    vt.check(sorted(p["name"] for p in json.loads(ports)) == list(names),
             "port list right after READY=1: %s" % ports)
    vt.check("STATUS=2 port(s), 1 bridge(s)" in ready.split("\n"),
             "no STATUS with READY=1: %r" % ready)
    print("READY=1 after %.2fs: %r" % (time.monotonic() - t0, got))
    base = d.mbufs_in_use()

    # 3. Log levels at run time.
    before = levels(d)
    vt.check(before.get("vhostd.port") == "info" and
             before.get("vhostd.main") == "info",
             "levels at start: %s" % before)
    vt.check(conf_log_level(d) is None, "log-level in config show at start")
    _, o, _ = d.vhostctl("log", "set", "vhostd.port", "debug")
    vt.check(re.search(r"^vhostd\.port\s+debug$", o, re.M),
             "log set's answer: %r" % o)
    now = levels(d)
    vt.check(now == dict(before, **{"vhostd.port": "debug"}),
             "after log set vhostd.port debug: %s" % now)
    vt.check(conf_log_level(d) == "vhostd.port:debug",
             "config show's log-level: %r" % conf_log_level(d))
    ga = vu.Guest(t.path("a.sock"))
    vt.wait_until(lambda: re.search(
        r"^DEBUG vhostd\.port: port a: vring \d+ enabled$",
        read(d.proc.log), re.M), 30, "a DEBUG line of port a on stderr")
    d.vhostctl("log", "set", "vhostd.port", "info")
    vt.check(levels(d) == before, "levels not back: %s" % levels(d))
    # The earlier setting is overridden: only the new one is kept.
    vt.check(conf_log_level(d) == "vhostd.port:info",
             "config show's log-level: %r" % conf_log_level(d))
    mark = len(read(d.proc.log))
    gb = vu.Guest(t.path("b.sock"))
    # The vring lines come before "guest up" (one thread, in order).
    vt.wait_until(lambda: "INFO vhostd.port: port b: guest up" in
                  read(d.proc.log)[mark:], 30, "port b's guest up line")
    later = read(d.proc.log)[mark:]
    vt.check("DEBUG" not in later, "DEBUG lines at level info: %r" % later)
    d.wait_up(*names)

    # Bad input: refused, nothing changed.
    conf = conf_log_level(d)
    refused(d, ["log", "set", "vhostd.port", "loud"], "not a log level")
    refused(d, ["log", "set", "9"], "not a log level")
    refused(d, ["log", "set", "nosuch.*", "debug"], "no logtype matches")
    refused(d, ["log", "set", "nosuch.*:debug"], "no logtype matches")
    refused(d, ["log", "set", r"vhostd\.\(,debug"],
            "not a regular expression")
    refused(d, ["log", "set", "vhostd.port:", "debug"], "no ','")
    refused(d, ["log", "set", "a", "b", "c"], "usage")
    refused(d, ["log", "list", "nosuch*"], "no logtype matches")
    refused(d, ["log", "set", "x" * 300, "debug"], "too long")
    vt.check(levels(d) == before, "levels changed by bad input: %s" %
             levels(d))
    vt.check(conf_log_level(d) == conf, "config changed by bad input")
    # The DPDK forms: a regex and the whole-setting glob.
    d.vhostctl("log", "set", "vhostd.ctl,debug")
    d.vhostctl("log", "set", "vhostd.b*:notice")
    now = levels(d)
    vt.check(now == dict(before, **{"vhostd.ctl": "debug",
                                    "vhostd.bridge": "notice"}),
             "after the regex and glob forms: %s" % now)
    d.vhostctl("log", "set", "info")
    vt.check(levels(d) == before, "log set info: %s" % levels(d))
    vt.check(conf_log_level(d) == "vhostd.*:info",
             "config show's log-level after log set info: %r" %
             conf_log_level(d))
    saved = t.path("saved.conf")
    d.vhostctl("config", "save", saved)
    chk = subprocess.run([vt.VHOSTD, "--config", saved, "--check"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         timeout=60)
    vt.check(chk.returncode == 0 and
             b"log-level = vhostd.*:info" in chk.stdout,
             "vhostd --check on the saved config: %r" % chk.stdout)

    # The config's log-level has room for 255 bytes of settings: one too
    # many is refused, and its level stays.
    libs = sorted(n for n, lv in levels(d, "lib.*").items() if lv != "err")
    for i, n in enumerate(libs):
        rc, _, e = d.vhostctl("log", "set", n, "err", check_rc=None)
        if rc != 0:
            break
    vt.check(rc == 1 and "longer than 255 bytes" in e and
             levels(d, n)[n] != "err" and len(conf_log_level(d)) <= 255,
             "the config's log-level overflowing: %d %r" % (rc, e))
    print("log-level full after %d settings: %s" % (i, conf_log_level(d)))

    # SIGTERM: STOPPING=1, exit 0, mbufs whole.
    ga.close()
    gb.close()
    vt.wait_until(lambda: d.mbufs_in_use() == base, 20,
                  "mbufs in use back at %d" % base)
    d.proc.send_signal(signal.SIGTERM)
    notify_messages(ns, "STOPPING=1", 30, got)
    rc = d.proc.wait(30)
    vt.check(rc == 0, "exit status %d" % rc)
    err = read(d.proc.log)
    vt.check("INFO vhostd.main: all mbufs returned" in err,
             "mbufs not all returned: %s" % err[-2000:])

    # 2. stderr: log lines only, one each with level and logtype; stdout:
    # none of them.
    bad = [line for line in err.splitlines() if not LINE.match(line)]
    vt.check(not bad, "stderr lines not 'LEVEL logtype: message': %r" %
             bad[:10])
    for want in ("INFO lib.eal: EAL: ", "INFO vhostd.port: port a: "
                 "vhost-user server socket", "INFO vhostd.main: log level "
                 "of vhostd.port set to debug"):
        vt.check(want in err, "%r not on stderr" % want)
    stdout = read(out)
    vt.check("ready:" in stdout, "no ready line on stdout")
    vt.check(not [line for line in stdout.splitlines()
                  if LINE.match(line) or "EAL" in line],
             "log lines on stdout: %r" % stdout)
    print("foreground run, log levels and readiness: %.1fs" %
          (time.monotonic() - t0))


# ------------------------------------------------------------ the journal

def journal_fields(data):
    """A native journal protocol datagram as {field: value}: "KEY=value\\n"
    or "KEY\\n" + 64-bit little-endian size + value + "\\n"."""
    out, i = {}, 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1)
            i = nl + 1
        else:
            k = line
            (size,) = struct.unpack_from("<Q", data, nl + 1)
            v = data[nl + 9:nl + 9 + size]
            vt.check(data[nl + 9 + size:nl + 10 + size] == b"\n",
                     "bad binary field in %r" % data)
            i = nl + 10 + size
        out[k.decode()] = v.decode(errors="replace")
    return out


class Journal:
    """A datagram socket in DIR/socket, read by a thread of its own (a
    full socket would stop vhostd's logging threads)."""

    def __init__(self, t, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.s.bind(path)
        self.s.settimeout(0.1)
        self.entries, self.errors = [], []
        self.stop = False
        self.th = threading.Thread(target=self.run, daemon=True)
        self.th.start()
        t.cleanups.append(self.close)

    def run(self):
        fds = array.array("i")
        while not self.stop:
            try:
                data, anc, _, _ = self.s.recvmsg(
                    1 << 20, socket.CMSG_SPACE(4 * fds.itemsize))
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                for level, kind, cdata in anc:
                    # A big entry comes as a memfd (sd_journal_sendv).
                    if level == socket.SOL_SOCKET and \
                            kind == socket.SCM_RIGHTS:
                        got = array.array("i")
                        got.frombytes(cdata[:len(cdata) - len(cdata) %
                                            got.itemsize])
                        for fd in got:
                            data += os.pread(fd, os.fstat(fd).st_size, 0)
                            os.close(fd)
                self.entries.append(journal_fields(data))
            except Exception as e:  # noqa: BLE001 - reported by the test
                self.errors.append("%r: %r" % (e, data))

    def find(self, **want):
        return [e for e in list(self.entries)
                if all(e.get(k) == v for k, v in want.items())]

    def close(self):
        self.stop = True
        self.th.join(5)
        self.s.close()


# In a mount namespace of vhostd's own: our directory is
# /run/systemd/journal (over a tmpfs on /run/systemd when the machine has
# no journal directory).
NS_SCRIPT = """set -e
if [ -d /run/systemd/journal ]; then
    mount --bind "$JDIR" /run/systemd/journal
else
    mount -t tmpfs -o mode=0755 tmpfs /run/systemd
    mkdir /run/systemd/journal
    mount --bind "$JDIR" /run/systemd/journal
fi
exec "$@"
"""


def test_journal(t):
    d = vt.Vhostd(t, {"br0": {}}, {
        "j": {"type": "vhost-user", "bridge": "br0",
              "path": t.path("j.sock")}},
        extra_global="log-level = lib.eal:notice vhostd.ctl:debug")
    jdir = t.path("journal")
    os.mkdir(jdir)
    j = Journal(t, os.path.join(jdir, "socket"))
    err_path = t.path("journal.err")
    open(err_path, "wb").close()
    st = os.stat(err_path)
    env = dict(os.environ, JDIR=jdir,
               JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino))
    env.pop("NOTIFY_SOCKET", None)
    t0 = time.monotonic()
    d.proc, out = spawn(t, ["unshare", "--mount", "--propagation", "private",
                            "sh", "-c", NS_SCRIPT, "sh", vt.VHOSTD,
                            "--config", d.conf], "journal", env)
    vt.check(d.proc.log == err_path, "stderr file")
    vt.wait_until(lambda: d.proc.poll() is not None or
                  "ready:" in read(out), 60, "vhostd to start")
    vt.check(d.proc.poll() is None, "vhostd exited: %s%s" %
             (read(out)[-2000:], read(err_path)[-2000:]))
    base = d.mbufs_in_use()
    d.vhostctl("port", "list")
    vt.wait_until(lambda: [e for e in j.find(VHOSTD_LOGTYPE="vhostd.ctl")
                           if e["MESSAGE"].endswith(": port/list")], 20,
                  "the DEBUG line of port list in the journal")
    vt.wait_until(lambda: d.mbufs_in_use() == base, 20, "mbufs at base")
    rc = d.stop(timeout=30)
    vt.check(rc == 0, "exit status %d" % rc)
    vt.wait_until(lambda: j.find(MESSAGE="all mbufs returned"), 10,
                  "the last line in the journal")
    vt.check(not j.errors, "unreadable entries: %r" % j.errors)
    entries = list(j.entries)
    print("%d journal entries, e.g. %r" % (len(entries), entries[:2]))
    for e in entries:
        vt.check(e.get("SYSLOG_IDENTIFIER") == "vhostd" and
                 re.fullmatch(r"[0-7]", e.get("PRIORITY", "")) and
                 e.get("VHOSTD_LOGTYPE") and e.get("MESSAGE") and
                 "\n" not in e["MESSAGE"], "bad entry %r" % e)
    for want in ({"MESSAGE": "port j: vhost-user server socket %s" %
                  t.path("j.sock"), "PRIORITY": "6",
                  "VHOSTD_LOGTYPE": "vhostd.port"},
                 {"MESSAGE": "shutting down", "PRIORITY": "6",
                  "VHOSTD_LOGTYPE": "vhostd.main"}):
        vt.check(j.find(**want), "no entry %r" % want)
    ctl = [e for e in j.find(VHOSTD_LOGTYPE="vhostd.ctl")
           if e["MESSAGE"].endswith(": port/list")]
    vt.check(ctl and ctl[0]["PRIORITY"] == "7",
             "port list's DEBUG line: %r" % ctl)
    # lib.eal at notice: its INFO lines ("EAL: Detected CPU lcores") gone.
    eal = j.find(VHOSTD_LOGTYPE="lib.eal", PRIORITY="6")
    vt.check(not eal, "lib.eal INFO entries despite lib.eal:notice: %r" %
             eal[:3])
    vt.check(os.path.getsize(err_path) == 0,
             "stderr under the journal: %r" % read(err_path)[:2000])
    vt.check("ready:" in read(out), "no ready line on stdout")
    print("journal run: %.1fs" % (time.monotonic() - t0))


def test_service(t):
    test_foreground(t)
    test_journal(t)


if __name__ == "__main__":
    vt.run(test_service)
