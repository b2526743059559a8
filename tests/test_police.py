#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Ingress policing (ingress-rate-kbps, ingress-burst-kbytes; rte_meter
srTCM): what a policed port lets in, what it drops and counts, and that
one TCP flow keeps to the rate with the default burst.

Bridge br0: vhost-user ports src (policed at FLOOD_KBPS, default burst)
and dst, guests in this process (tests/lib/vhostuser.py); at run time,
`vhostctl port add tiny ... ingress-rate-kbps=8 ingress-burst-kbytes=10`.
Bridge br1: af_packet ethdev ports pa (policed at TCP_KBPS, default
burst, 2 queues) and pb (2 queues) on veth pairs whose far ends are in
two network namespaces, where a Python TCP sender (behind pa) and
receiver (behind pb) run.

  - tiny: its 10-kbyte bucket passes exactly ten 1000-byte frames, the
    eleventh (from a new MAC) is dropped, counted drop_policed, neither
    flooded nor learned; a second later the bucket has room for it again.
  - src: a paced flood of 1000-byte frames at 4x the rate; dst receives
    the rate within 10 % (after the first second: the bucket), every frame
    byte for byte and in order; drop_policed is exactly what src received
    less what dst got.
  - pa -> pb: one TCP flow's goodput is 80-110 % of the rate (from its
    first second on), with the default burst.
  - port show, telemetry and config save say the rate and burst; a policed
    port's rx queues are polled by one lcore (VHD_LCORES=0,1 runs all this
    with two datapath lcores); every mbuf comes back.
"""
import json
import os
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
import vhdtest as vt  # noqa: E402
import vhostuser as vu  # noqa: E402

LCORES = os.environ.get("VHD_LCORES", "1")
FLOOD_KBPS = 4000      # src: 500 kbytes/s, 500 frames/s of 1000 bytes
TCP_KBPS = 20000       # pa: 2.5 Mbytes/s
FRAME = 1000
SRC = "02:00:00:00:01:01"
DST = "02:00:00:00:02:02"
TINY = "02:00:00:00:03:03"
NEW = "02:00:00:00:03:04"   # a MAC tiny shows first in a policed frame
NOBODY = "02:00:00:00:09:09"

# Run in the namespaces with the test's own interpreter: they print one
# JSON line. The stream is a 64 KiB pattern repeated, checked as it comes.
RECEIVER = r"""
import json, socket, sys, time
pat = bytes(range(256)) * 512  # twice the sender's chunk
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(1)
print("listening", flush=True)
s.settimeout(30)
c, _ = s.accept()
c.settimeout(30)
total, t0, nxt, samples, bad = 0, None, 0.0, [], None
while True:
    b = c.recv(65536)
    if not b:
        break
    now = time.monotonic()
    if t0 is None:
        t0 = now
    o = total % 65536
    if bad is None and b != pat[o:o + len(b)]:
        bad = total
    total += len(b)
    if now - t0 >= nxt:
        samples.append((now - t0, total))
        nxt += 0.1
samples.append((time.monotonic() - t0, total))
c.close()
print(json.dumps({"total": total, "samples": samples, "bad": bad}),
      flush=True)
"""
SENDER = r"""
import json, socket, sys, time
buf = bytes(range(256)) * 256
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
end = time.monotonic() + float(sys.argv[3])
sent = 0
while time.monotonic() < end:
    c.sendall(buf)
    sent += len(buf)
c.shutdown(socket.SHUT_WR)
c.recv(1)  # the receiver's close: everything arrived
print(json.dumps({"sent": sent}), flush=True)
"""


def sh(*argv):
    subprocess.check_call(argv, stdout=subprocess.DEVNULL)


def netns_veth(t, ns, root_if, ns_if, addr):
    """A namespace NS holding NS_IF (ADDR/24), the far end of ROOT_IF,
    with GSO and TSO off on both ends: the af_packet PMD takes frames of
    at most its 2048-byte ring slots (README: Offloads). Tx checksum
    offload is off too (vhostd would complete partial checksums, but this
    test is about policing). Removed at cleanup, whatever happens."""
    subprocess.call(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
    subprocess.call(["ip", "link", "del", root_if],
                    stderr=subprocess.DEVNULL)
    sh("ip", "netns", "add", ns)
    t.cleanups.append(lambda: subprocess.call(["ip", "netns", "del", ns]))
    sh("ip", "link", "add", root_if, "type", "veth", "peer", "name", ns_if,
       "netns", ns)
    t.links.append(root_if)
    with open("/proc/sys/net/ipv6/conf/%s/disable_ipv6" % root_if, "w") as f:
        f.write("1")
    sh("ip", "netns", "exec", ns, "sysctl", "-qw",
       "net.ipv6.conf.all.disable_ipv6=1")
    off = ["tx", "off", "tso", "off", "gso", "off", "gro", "off"]
    sh("ethtool", "-K", root_if, *off)
    sh("ip", "netns", "exec", ns, "ethtool", "-K", ns_if, *off)
    sh("ip", "link", "set", root_if, "up")
    sh("ip", "netns", "exec", ns, "ip", "addr", "add", addr + "/24", "dev",
       ns_if)
    sh("ip", "netns", "exec", ns, "ip", "link", "set", ns_if, "up")
    sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")


def tiny_bucket(t, d, dst, src):
    """A port added at run time, policed at 8 kbit/s (1000 bytes/s) with a
    10-kbyte bucket: ten 1000-byte frames pass, the eleventh is dropped
    before the bridge sees it."""
    d.vhostctl("port", "add", "tiny", "bridge=br0", "type=vhost-user",
               "path=" + t.path("tiny.sock"), "ingress-rate-kbps=8",
               "ingress-burst-kbytes=10")
    tiny = vu.Guest(t.path("tiny.sock"))
    d.wait_up("tiny")
    _, out, _ = d.vhostctl("--json", "port", "show", "tiny")
    ps = json.loads(out)
    vt.check(ps["ingress_rate_kbps"] == 8 and
             ps["ingress_burst_kbytes"] == 10, "port show tiny: %s" % ps)
    _, out, _ = d.vhostctl("port", "show", "tiny")
    vt.check("ingress_rate_kbps: 8\n" in out and
             "ingress_burst_kbytes: 10\n" in out,
             "vhostctl port show tiny:\n" + out)

    frames = [vt.frame(NOBODY, TINY, payload=b"tiny %d" % i, size=FRAME)
              for i in range(10)]
    over = vt.frame(NOBODY, NEW, payload=b"over the bucket", size=FRAME)
    for f in frames + [over]:
        vt.check(tiny.txq.tx(f), "tiny's tx ring full")
    vt.wait_until(lambda: d.port("tiny")["rx_packets"] == 11, 10,
                  "vhostd to take tiny's 11 frames")
    got = []

    def arrived(n):
        got.extend(dst.rxq.rx())
        return len(got) >= n
    vt.wait_until(lambda: arrived(10), 10, "tiny's 10 frames at dst")
    time.sleep(0.3)
    arrived(0)
    vt.check(got == frames, "dst got %d frames from tiny, wanted the ten "
             "in the bucket: %r" % (len(got), [g[:24] for g in got]))
    p = d.port("tiny")
    vt.check(p["drop_policed"] == 1 and p["rx_bytes"] == 11 * FRAME,
             "tiny: %s" % p)
    fdb = {e["mac"]: e["port"] for e in d.ctl("fdb/show", "br0")}
    vt.check(fdb.get(TINY) == "tiny" and NEW not in fdb,
             "the policed frame's source was learned: %s" % fdb)
    # 1.2 s later: 1200 bytes of tokens, room for one more frame.
    time.sleep(1.2)
    again = vt.frame(NOBODY, NEW, payload=b"within the rate", size=FRAME)
    vt.check(tiny.txq.tx(again), "tiny's tx ring full")
    vt.wait_until(lambda: arrived(11), 10, "the refilled bucket's frame")
    vt.check(got[10:] == [again], "after the refill: %r" % got[10:])
    fdb = {e["mac"]: e["port"] for e in d.ctl("fdb/show", "br0")}
    vt.check(fdb.get(NEW) == "tiny", "not learned after the refill: %s" %
             fdb)
    vt.check(d.port("tiny")["drop_policed"] == 1, "tiny: %s" %
             d.port("tiny"))
    # src got the floods too; nothing reads its rx ring but this.
    src.rxq.rx()
    print("ok: tiny: 10 frames in its 10-kbyte bucket, the 11th dropped "
          "and not learned, one more after 1.2 s")
    return tiny


def flood(d, src, dst, secs=5.0, warm=1.0, factor=4):
    """SRC sends 1000-byte frames to DST at FACTOR times src's rate for
    SECS; DST must get src's rate within 10 % after WARM seconds (until
    then the bucket adds its 200 kbytes)."""
    rate = FLOOD_KBPS * 1000 / 8  # bytes/s
    base = vt.frame(DST, SRC, payload=bytes(8), size=FRAME)

    def make(seq):
        return base[:14] + struct.pack("!Q", seq) + base[22:]
    before = {n: d.port(n) for n in ("src", "dst")}
    seq, got, last, wrong = 0, [], -1, []
    t0 = time.monotonic()
    while True:
        now = time.monotonic()
        if now - t0 >= secs:
            break
        while seq * FRAME < factor * rate * (now - t0) + FRAME:
            if not src.txq.tx(make(seq)):
                break  # vhostd is behind: offer less for a moment
            seq += 1
        rt = time.monotonic()
        for f in dst.rxq.rx():
            n = struct.unpack("!Q", f[14:22])[0] if len(f) == FRAME else -1
            if f != make(n) or n <= last:
                wrong.append(f[:30])
            last = max(last, n)
            got.append(rt)
        time.sleep(0.0005)
    sent_secs = time.monotonic() - t0
    # What is left in flight.
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        fs = dst.rxq.rx()
        got += [time.monotonic()] * len(fs)
        if fs:
            end = time.monotonic() + 0.5
        time.sleep(0.005)
    vt.check(not wrong, "frames at dst not as src sent them, or out of "
             "order: %r" % wrong[:5])
    offered = seq * FRAME / sent_secs
    vt.check(offered >= 2.5 * rate, "the sender offered only %.0f bytes/s "
             "for a rate of %.0f" % (offered, rate))
    n_win = sum(1 for x in got if t0 + warm <= x < t0 + secs)
    measured = n_win * FRAME / (secs - warm)
    print("flood: offered %.0f kbit/s for %.1f s, dst received %.0f kbit/s "
          "(%.1f %% of %d kbit/s) from %.0f s on; %d of %d frames through" %
          (offered * 8 / 1000, sent_secs, measured * 8 / 1000,
           100 * measured / rate, FLOOD_KBPS, warm, len(got), seq))
    vt.check(abs(measured - rate) <= 0.1 * rate,
             "dst received %.0f bytes/s, policed at %.0f" % (measured, rate))

    # The counters: every frame src sent was received, and either
    # policed or forwarded to dst, which got them all.
    vt.wait_until(lambda: d.port("src")["rx_packets"] -
                  before["src"]["rx_packets"] == seq, 10,
                  "vhostd to take all %d frames" % seq)
    after = {n: d.port(n) for n in ("src", "dst")}
    delta = {n: {k: after[n][k] - before[n][k] for k in after[n]
                 if isinstance(after[n][k], int)} for n in after}
    policed = delta["src"]["drop_policed"]
    vt.check(delta["dst"]["tx_packets"] == len(got) and
             policed == seq - len(got) and
             delta["src"]["rx_bytes"] == seq * FRAME and
             all(v == 0 for n in delta for k, v in delta[n].items()
                 if k.startswith("drop_") and k != "drop_policed"),
             "sent %d, got %d; counters moved by %s" % (seq, len(got),
                                                         delta))
    # What passed: the rate for the time sent, and the bucket.
    passed = (seq - policed) * FRAME
    vt.check(passed <= rate * (sent_secs + 0.2) + 200000 + FRAME,
             "%d bytes passed in %.1f s" % (passed, sent_secs))
    print("ok: flood: drop_policed %d = %d received - %d forwarded" %
          (policed, seq, len(got)))


def tcp(t, d, ns_a, ns_b, secs=6.0, warm=1.0):
    """One TCP flow from behind pa (policed at TCP_KBPS, default burst) to
    behind pb: goodput 80-110 % of the rate."""
    rate = TCP_KBPS * 1000 / 8
    before = d.port("pa")
    rx = t.spawn(["ip", "netns", "exec", ns_b, sys.executable, "-c",
                  RECEIVER, "10.200.0.2", "5001"], t.path("receiver.log"))
    vt.wait_until(lambda: "listening" in open(rx.log).read(), 10,
                  "the receiver to listen")
    tx = t.spawn(["ip", "netns", "exec", ns_a, sys.executable, "-c", SENDER,
                  "10.200.0.2", "5001", str(secs)], t.path("sender.log"))
    try:
        rx.wait(secs + 40)
        tx.wait(10)
    except subprocess.TimeoutExpired:
        raise vt.Failure("the TCP transfer did not end")
    vt.check(rx.returncode == 0 and tx.returncode == 0,
             "receiver %s, sender %s" % (rx.returncode, tx.returncode))
    r = json.loads(open(rx.log).read().splitlines()[-1])
    s = json.loads(open(tx.log).read().splitlines()[-1])
    vt.check(r["total"] == s["sent"] and r["bad"] is None,
             "sent %d, received %d, first wrong byte at %s" %
             (s["sent"], r["total"], r["bad"]))
    w = [x for x in r["samples"] if x[0] >= warm]
    vt.check(len(w) >= 2 and w[-1][0] - w[0][0] >= secs - warm - 0.5,
             "too few samples: %s" % r["samples"])
    goodput = (w[-1][1] - w[0][1]) / (w[-1][0] - w[0][0])
    whole = r["total"] / r["samples"][-1][0]
    # The sender's retransmission timeouts (its namespace is new).
    nstat = subprocess.run(["ip", "netns", "exec", ns_a, "nstat", "-asz",
                            "TcpExtTCPTimeouts", "TcpRetransSegs"],
                           stdout=subprocess.PIPE, text=True).stdout
    tcpstat = {w[0]: int(w[1]) for w in map(str.split, nstat.splitlines())
               if len(w) >= 2 and w[1].isdigit()}
    pa = d.port("pa")
    policed = pa["drop_policed"] - before["drop_policed"]
    print("tcp: goodput %.0f kbit/s from %.0f s to %.1f s (%.1f %% of %d "
          "kbit/s), %.0f kbit/s over the whole %.1f s; %d frames policed, "
          "%d passed; sender: %s" %
          (goodput * 8 / 1000, w[0][0], w[-1][0], 100 * goodput / rate,
           TCP_KBPS, whole * 8 / 1000, r["samples"][-1][0], policed,
           pa["rx_packets"] - before["rx_packets"] - policed, tcpstat))
    vt.check(0.8 * rate <= goodput <= 1.1 * rate,
             "TCP goodput %.0f bytes/s through a port policed at %.0f" %
             (goodput, rate))
    vt.check(policed > 0, "TCP never went over the rate? %s" % pa)


def test_police(t):
    # The Python guests on CPU 0, beside vhostd's control thread, not on
    # its datapath lcore (CPU 1).
    os.sched_setaffinity(0, {0})
    tag = t.tag[:10]
    ns_a, ns_b = t.tag + "a", t.tag + "b"
    netns_veth(t, ns_a, tag + "a", tag + "an", "10.200.0.1")
    netns_veth(t, ns_b, tag + "b", tag + "bn", "10.200.0.2")
    vh = lambda n, **o: dict(type="vhost-user", bridge="br0",  # noqa: E731
                             path=t.path(n + ".sock"), **o)
    eth = lambda n, **o: dict(  # noqa: E731
        type="ethdev", bridge="br1", queues=2,
        devargs="net_af_packet_%s%s,iface=%s%s,qpairs=2" % (t.tag, n, tag,
                                                            n), **o)
    d = vt.Vhostd(t, {"br0": {}, "br1": {}},
                  {"src": vh("src", **{"ingress-rate-kbps": FLOOD_KBPS}),
                   "dst": vh("dst"),
                   "pa": eth("a", **{"ingress-rate-kbps": TCP_KBPS}),
                   "pb": eth("b")}, lcores=LCORES).start()
    src = vu.Guest(t.path("src.sock"))
    # dst's rx ring holds 2 s of the flood's rate: a test process held up
    # for a moment loses nothing.
    dst = vu.Guest(t.path("dst.sock"), num=1024, mem_size=16 << 20)
    d.wait_up("src", "dst", "pa", "pb")
    base = d.mbufs_in_use()

    # What applies: the configured rate, the default burst (400 ms of the
    # rate, at least 64 kbytes).
    for n, rate, burst in (("src", FLOOD_KBPS, 200), ("pa", TCP_KBPS, 1000),
                           ("dst", 0, 0), ("pb", 0, 0)):
        ps = d.ctl("port/show", n)
        tel = d.port(n)
        vt.check((ps["ingress_rate_kbps"], ps["ingress_burst_kbytes"]) ==
                 (rate, burst) and
                 (tel["ingress_rate_kbps"], tel["ingress_burst_kbytes"]) ==
                 (rate, burst) and "drop_policed" in ps["stats"] and
                 "drop_policed" in tel,
                 "%s: port show %s, telemetry %s" % (n, ps, tel))
    # A policed port's rx queues are one lcore's (the others go where
    # there is least load, then fewest queues).
    lc = d.ctl("lcores")
    polled = {}
    for e in lc:
        for q in e["rxqs"]:
            polled.setdefault(q["port"], set()).add(e["lcore"])
    vt.check(len(polled.get("pa", ())) == 1 and
             len(polled.get("pb", ())) >= 1,
             "lcores: pa by %s, pb by %s: %s" % (polled.get("pa"),
                                                 polled.get("pb"), lc))
    qs = [(q["port"], q["queue"]) for e in lc for q in e["rxqs"]]
    vt.check(sorted(x for x in qs if x[0] == "pa") == [("pa", 0), ("pa", 1)],
             "pa's queues: %s" % lc)

    # dst's MAC learned on dst, so that src's frames go to dst alone.
    vt.check(dst.txq.tx(vt.frame(vt.BCAST, DST, payload=b"hello")), "dst tx")
    vt.wait_until(lambda: DST in [e["mac"] for e in d.ctl("fdb/show")], 10,
                  "dst's MAC learned")

    tiny = tiny_bucket(t, d, dst, src)
    d.ctl("config/save", t.path("saved.conf"))
    saved = open(t.path("saved.conf")).read()
    sections = {s.split("]")[0]: s for s in saved.split("\n[")}
    for name, want, unwanted in (
            ("port src", "ingress-rate-kbps = %d\n" % FLOOD_KBPS,
             "ingress-burst-kbytes"),
            ("port pa", "ingress-rate-kbps = %d\n" % TCP_KBPS,
             "ingress-burst-kbytes"),
            ("port tiny", "ingress-rate-kbps = 8\ningress-burst-kbytes = 10\n",
             None),
            ("port dst", None, "ingress-")):
        sec = sections.get(name, "")
        vt.check(sec and (want is None or want in sec) and
                 (unwanted is None or unwanted not in sec),
                 "saved config, [%s]:\n%s" % (name, saved))

    flood(d, src, dst)
    tcp(t, d, ns_a, ns_b)

    for g in (src, dst, tiny):
        g.close()
    d.stop_clean(base)


if __name__ == "__main__":
    vt.run(test_police)
