#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Monitoring: `vhostctl metrics` (Prometheus text format, once or served
over HTTP) and the telemetry command /vhostd/port_stats (what Telegraf's
inputs.dpdk reads).

Topology: learning bridge br0 = g1, g2 (testpmd guests, pcap) + "vm-3.x"
(never connected: a name telemetry cannot use as a key); xconnect bridge
br1 = "vm_3_x" (the key "vm-3.x" would take). g1 sends N broadcasts while
g2 is not yet attached (dropped there as not-ready, flooded to vm-3.x,
dropped there too), then g2 sends M unicasts to g1 (learned).

Checked: every counter of `vhostctl metrics` equals `vhostctl stats`, and
the text is valid (a strict parser here, and promtool); /vhostd/port_stats
per port, its paging with 40 more ports of 31-character names (every page
complete and within the telemetry buffer); the HTTP exporter (200 with
the same values, 404, 405, HEAD, IPv6, bad and busy addresses refused); a
real Prometheus scraping it returns the frame counts; with vhostd stopped
the exporter says vhostd_up 0 and keeps running, and once vhostd is back
the values are too; SIGTERM stops it with exit 0; no fd leaks in either
process; every mbuf back.
"""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from vhdtest import (BCAST, RUNTIME, VHOSTCTL, Failure, Guest,  # noqa: E402
                     Vhostd, check, fd_baseline, frame, run, wait_fds_back,
                     wait_until)

G1 = "02:00:00:00:01:01"
G2 = "02:00:00:00:02:02"
N = 100   # g1's broadcasts (a testpmd guest's ring holds 128)
M = 60    # g2's unicasts to g1
EXTRA = 40  # ports added to page /vhostd/port_stats
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
SAMPLE = re.compile(r"^(%s)(?:\{(.*)\})? (\S+)$" % NAME)


def parse(text):
    """Prometheus text format 0.0.4, strictly: {(name, ((label, value),
    ...)): value}. Every family has HELP and TYPE before its samples and
    its samples together; counters end in _total; label values unescaped."""
    out, types, done, cur = {}, {}, set(), None
    check(text.endswith("\n"), "exposition does not end with a newline")
    for line in text[:-1].split("\n"):
        m = re.match(r"^# (HELP|TYPE) (%s) (.+)$" % NAME, line)
        if m:
            kind, name, rest = m.groups()
            if kind == "HELP":
                check(name not in done and name != cur,
                      "HELP of %s again" % name)
                if cur:
                    done.add(cur)
                cur = name
            else:
                check(name == cur and name not in types,
                      "TYPE of %s without its HELP" % name)
                check(rest in ("counter", "gauge"), "type %s" % rest)
                check(rest != "counter" or name.endswith("_total"),
                      "counter %s without _total" % name)
                types[name] = rest
            continue
        m = SAMPLE.match(line)
        check(m, "not a sample line: %r" % line)
        name, labels, value = m.groups()
        check(name == cur and name in types,
              "sample %s outside its family (%s)" % (name, cur))
        pairs = []
        if labels is not None:
            pos = 0
            while pos < len(labels):
                lm = LABEL.match(labels, pos)
                check(lm, "bad labels %r" % labels)
                v = re.sub(r"\\(.)", lambda e: {"n": "\n"}.get(
                    e.group(1), e.group(1)), lm.group(2))
                pairs.append((lm.group(1), v))
                pos = lm.end()
                if pos < len(labels):
                    check(labels[pos] == ",", "bad labels %r" % labels)
                    pos += 1
        key = (name, tuple(pairs))
        check(key not in out, "sample %s twice" % (key,))
        out[key] = float(value)
    return out


def get(m, name, **labels):
    for (n, pairs), v in m.items():
        if n == name and all(dict(pairs).get(k) == lv
                             for k, lv in labels.items()):
            return v
    return None


def check_equals_stats(d, m):
    """Every counter of `vhostctl stats` in M, equal, with its port's
    labels; and no port in M that stats does not have."""
    ports = {p["name"]: p for p in d.ctl("port/list")}
    rows = d.ctl("stats")
    n = 0
    for row in rows:
        p = ports[row["port"]]
        lab = {"port": row["port"], "bridge": p["bridge"], "type": p["type"]}
        for k, v in row.items():
            if k == "port":
                continue
            if k.startswith("drop_"):
                got = get(m, "vhostd_port_dropped_packets_total",
                          reason=k[5:], **lab)
            else:
                got = get(m, "vhostd_port_%s_total" % k, **lab)
            check(got == v, "%s %s: metrics %r, stats %r" % (
                row["port"], k, got, v))
            n += 1
        check(get(m, "vhostd_port_up", **lab) ==
              (1 if p["state"] == "up" else 0), "%s up" % row["port"])
    in_metrics = {dict(pairs)["port"] for (name, pairs) in m
                  if name.startswith("vhostd_port_")}
    check(in_metrics == {r["port"] for r in rows},
          "ports in metrics %s, in stats %s" % (sorted(in_metrics),
                                                 sorted(ports)))
    return n


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def hget(host, port, method="GET", path="/metrics"):
    c = http.client.HTTPConnection(host, port, timeout=30)
    try:
        c.request(method, path)
        r = c.getresponse()
        return r.status, r.getheader("Content-Type"), r.read().decode()
    finally:
        c.close()


def telemetry(d, cmd):
    """(hello, raw reply bytes, the command's value)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        s.settimeout(10)
        s.connect("%s/%s/dpdk_telemetry.v2" % (RUNTIME, d.prefix))
        hello = json.loads(s.recv(16384).decode())
        s.send(cmd.encode())
        raw = s.recv(1 << 20)
    finally:
        s.close()
    return hello, raw, json.loads(raw.decode())[cmd.split(",")[0]]


def check_port_stats(d):
    """/vhostd/port_stats, every page, against stats and port/list."""
    info = d.query("/vhostd/info")
    per, pages = info["port_stats_page_size"], info["port_stats_pages"]
    ports = d.ctl("port/list")
    stats = {r["port"]: r for r in d.ctl("stats")}
    check(info["ports"] == len(ports) and
          pages == (len(ports) + per - 1) // per,
          "info: %d ports, %d per page, %d pages" % (
              info["ports"], per, pages))
    seen = {}
    for page in range(pages + 1):
        hello, raw, reply = telemetry(d, "/vhostd/port_stats,%d" % page)
        check(len(raw) < hello["max_output_len"],
              "page %d: %d bytes" % (page, len(raw)))
        want = ports[page * per:(page + 1) * per]
        check(len(reply) == len(want), "page %d: %d ports, wanted %d" % (
            page, len(reply), len(want)))
        for key, e in reply.items():
            check(re.fullmatch(r"[A-Za-z0-9_]+", key), "key %r" % key)
            name = e.get("name", key)
            check(name not in seen, "port %s on two pages" % name)
            seen[name] = key
            p = [x for x in want if x["name"] == name]
            check(len(p) == 1, "page %d has %s: not its port" % (page, name))
            p = p[0]
            check(e["bridge"] == p["bridge"] and e["type"] == p["type"] and
                  e["up"] == (p["state"] == "up"), "%s: %s" % (name, e))
            # No stats clear in this test: totals equal stats.
            for k, v in stats[name].items():
                if k != "port":
                    check(e[k] == v, "%s %s: telemetry %r, stats %r" % (
                        name, k, e[k], v))
    check(set(seen) == {p["name"] for p in ports}, "ports missing")
    return seen, per, pages


def prometheus_check(t, exporter_port):
    """A real Prometheus scraping the exporter every second: its query API
    returns the frame counts."""
    pdir = tempfile.mkdtemp(prefix="prom-", dir=t.dir)
    with open(os.path.join(pdir, "prometheus.yml"), "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                "scrape_configs:\n  - job_name: vhostd\n"
                "    static_configs:\n"
                "      - targets: ['127.0.0.1:%d']\n" % exporter_port)
    web = free_port()
    prom = t.spawn(["prometheus",
                    "--config.file=" + os.path.join(pdir, "prometheus.yml"),
                    "--storage.tsdb.path=" + os.path.join(pdir, "data"),
                    "--web.listen-address=127.0.0.1:%d" % web],
                   t.path("prometheus.log"))

    def query(q):
        url = "http://127.0.0.1:%d/api/v1/query?query=%s" % (
            web, urllib.parse.quote(q))
        with urllib.request.urlopen(url, timeout=10) as r:
            res = json.loads(r.read().decode())["data"]["result"]
        return float(res[0]["value"][1]) if len(res) == 1 else None

    wait_until(lambda: prom.poll() is not None or
               hget("127.0.0.1", web, path="/-/ready")[0] == 200, 30,
               "Prometheus ready")
    check(prom.poll() is None, "prometheus exited")
    for q, want in (('vhostd_port_rx_packets_total{port="g1"}', N),
                    ('vhostd_port_tx_packets_total{port="g1"}', M),
                    ('vhostd_port_dropped_packets_total'
                     '{port="vm-3.x",reason="not_ready"}', N),
                    ('up{job="vhostd"}', 1), ("vhostd_up", 1)):
        wait_until(lambda q=q, want=want: query(q) == want, 30,
                   "Prometheus: %s == %d" % (q, want))
    prom.send_signal(signal.SIGTERM)
    check(prom.wait(30) == 0, "prometheus exit code")
    shutil.rmtree(pdir)


def test_metrics(t):
    check(shutil.which("promtool") and shutil.which("prometheus"),
          "promtool and prometheus are needed (Debian's prometheus "
          "package; scripts/test.sh installs it)")
    vh = lambda n, br="br0": {"type": "vhost-user", "bridge": br,  # noqa
                              "path": t.path(n + ".sock")}
    d = Vhostd(t, {"br0": {"mode": "learning"}, "br1": {"mode": "xconnect"}},
               {"g1": vh("g1"), "g2": vh("g2"), "vm-3.x": vh("vm3"),
                "vm_3_x": vh("vm3b", "br1")}).start()
    base = d.mbufs_in_use()

    # Traffic with exact counts.
    g1 = Guest(t, "g1", t.path("g1.sock"), mac=G1,
               frames=[frame(BCAST, G1, size=60 + i) for i in range(N)])
    g1.start()
    wait_until(lambda: d.ctl("stats", "g1")[0]["rx_packets"] == N, 30,
               "g1's %d broadcasts at vhostd" % N)
    g2 = Guest(t, "g2", t.path("g2.sock"), mac=G2,
               frames=[frame(G1, G2, size=100 + i) for i in range(M)])
    g2.start()
    wait_until(lambda: d.ctl("stats", "g1")[0]["tx_packets"] == M, 30,
               "g2's %d unicasts at g1" % M)
    wait_until(lambda: len(g1.received()) == M, 30, "g1's pcap")
    s = {r["port"]: r for r in d.ctl("stats")}
    check(s["g1"]["rx_bytes"] == sum(60 + i for i in range(N)) and
          s["g2"]["rx_packets"] == M and s["g2"]["tx_packets"] == 0 and
          s["g2"]["drop_not_ready"] == N and
          s["vm-3.x"]["drop_not_ready"] == N, "stats: %s" % s)

    # 1. vhostctl metrics, once.
    rc, out, err = d.vhostctl("metrics")
    m = parse(out)
    n = check_equals_stats(d, m)
    check(n >= 4 * 19, "only %d counters compared" % n)
    check(get(m, "vhostd_port_rx_packets_total", port="g1") == N and
          get(m, "vhostd_port_tx_packets_total", port="g1") == M and
          get(m, "vhostd_port_dropped_packets_total", port="g2",
              reason="not_ready") == N, "frame counts in metrics")
    info = d.ctl("info")
    check(get(m, "vhostd_up") == 1 and
          get(m, "vhostd_info", version=info["version"],
              dpdk_version=info["dpdk_version"]) == 1,
          "vhostd_up / vhostd_info")
    check(get(m, "vhostd_mbufs") == info["mbufs"] and
          get(m, "vhostd_mbufs_in_use") is not None, "mbuf gauges")
    lc = d.ctl("lcores")
    check(len([k for k in m if k[0] == "vhostd_lcore_busy_ratio"]) ==
          len(lc) and all(0 <= v <= 1 for k, v in m.items()
                          if k[0].endswith("_ratio")), "lcore ratios")
    check(get(m, "vhostd_rxq_rx_packets_per_second", port="g1",
              queue="0") is not None, "rx queue gauges")
    check(get(m, "vhostd_bridge_ports", bridge="br0", mode="learning") == 3
          and get(m, "vhostd_bridge_flooded_packets_total",
                  bridge="br0") == N and
          get(m, "vhostd_bridge_learned_total", bridge="br0") == 2,
          "bridge metrics")
    p = subprocess.run(["promtool", "check", "metrics"], input=out.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    check(p.returncode == 0, "promtool: %s" % p.stdout.decode())

    # 2. The telemetry command, per port; the keys of the two names.
    seen, per, _ = check_port_stats(d)
    check(seen["vm_3_x"] == "vm_3_x" and
          re.fullmatch(r"vm_3_x_\d+", seen["vm-3.x"]),
          "keys: %s" % seen)
    _, _, v = telemetry(d, "/vhostd/port_stats,x")
    check(v is None, "a bad page: %r" % v)
    # Pages: EXTRA more ports of the longest names, each with a '-' (so
    # each entry carries its name too).
    extra = ["p-%s%02d" % ("x" * 27, i) for i in range(EXTRA)]
    for name in extra:
        d.ctl("port/add", name, "bridge=br0", "type=vhost-user",
              "path=" + t.path("e%d.sock" % extra.index(name)))
    seen, per, pages = check_port_stats(d)
    check(pages >= 3, "%d ports in %d pages of %d" % (len(seen), pages, per))
    m = parse(d.vhostctl("metrics")[1])
    check_equals_stats(d, m)
    for name in extra:
        d.ctl("port/del", name)

    # 3. Served over HTTP.
    port = free_port()
    exp = t.spawn([VHOSTCTL, "--socket", d.control, "metrics", "--listen",
                   "127.0.0.1:%d" % port], t.path("exporter.log"))
    wait_until(lambda: exp.poll() is not None or
               "serving" in open(exp.log).read(), 20, "exporter started")
    check(exp.poll() is None, "exporter exited: %s" % open(exp.log).read())
    code, ctype, body = hget("127.0.0.1", port)
    check(code == 200 and ctype == CONTENT_TYPE, "GET: %d %s" % (code, ctype))
    check_equals_stats(d, parse(body))
    check(hget("127.0.0.1", port, path="/")[0] == 404 and
          hget("127.0.0.1", port, path="/metricsx")[0] == 404,
          "other paths are 404")
    check(hget("127.0.0.1", port, "POST")[0] == 405, "POST is 405")
    code, _, body = hget("127.0.0.1", port, "HEAD")
    check(code == 200 and body == "", "HEAD")
    # Scrapes leave no fd behind, in the exporter or in vhostd.
    exp_fds, d_fds = fd_baseline(exp.pid), fd_baseline(d.proc.pid)
    for _ in range(20):
        check(hget("127.0.0.1", port)[0] == 200, "scrape")
    wait_fds_back(exp.pid, exp_fds, what=" (exporter)")
    wait_fds_back(d.proc.pid, d_fds, what=" (vhostd)")

    # Refused: bad addresses (usage, 2) and one in use (1).
    for bad in ("nonsense", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536",
                "127.0.0.1:9x", "::1:9100", "[::1]9100", "300.1.1.1:80",
                "no.such.host.invalid:80"):
        rc, _, err = d.vhostctl("metrics", "--listen", bad, check_rc=2)
        check("bad --listen '%s'" % bad in err, "%s: %s" % (bad, err))
    rc, _, err = d.vhostctl("metrics", "--listen", "127.0.0.1:%d" % port,
                            check_rc=1)
    check("Address already in use" in err, "busy port: %s" % err)
    d.vhostctl("metrics", "extra", check_rc=2)

    # IPv6, where this machine has a loopback for it.
    try:
        port6 = free_port(socket.AF_INET6, "::1")
    except OSError:
        port6 = None
        print("no IPv6 loopback: [::1] not tried")
    if port6:
        exp6 = t.spawn([VHOSTCTL, "--socket", d.control, "metrics",
                        "--listen", "[::1]:%d" % port6],
                       t.path("exporter6.log"))
        wait_until(lambda: exp6.poll() is not None or
                   "serving" in open(exp6.log).read(), 20, "exporter [::1]")
        code, _, body = hget("::1", port6)
        check(code == 200 and get(parse(body), "vhostd_up") == 1, "IPv6")
        exp6.send_signal(signal.SIGINT)
        check(exp6.wait(20) == 0, "exporter [::1] exit code")

    # 4. A real Prometheus.
    prometheus_check(t, port)

    # 5. vhostd stopped: the exporter says so and keeps serving.
    g1.stop()
    g2.stop()
    d.stop_clean(base)
    code, _, body = hget("127.0.0.1", port)
    m = parse(body)
    check(code == 200 and get(m, "vhostd_up") == 0 and
          not [k for k in m if k[0].startswith("vhostd_port")],
          "vhostd down: %d %s" % (code, body))
    check(exp.poll() is None, "the exporter exited with vhostd")
    check("vhostd is down" in open(exp.log).read(), "no note of it")
    rc, out, err = d.vhostctl("metrics", check_rc=3)
    check(get(parse(out), "vhostd_up") == 0 and "cannot connect" in err,
          "vhostctl metrics, vhostd down: %s %s" % (out, err))

    # ... and started again: the values are back.
    d.start()
    wait_until(lambda: get(parse(hget("127.0.0.1", port)[2]),
                           "vhostd_up") == 1, 20, "vhostd_up 1 again")
    m = parse(hget("127.0.0.1", port)[2])
    check(check_equals_stats(d, m) >= 4 * 19 and
          get(m, "vhostd_port_rx_packets_total", port="g1") == 0,
          "values after the restart")
    check("vhostd answers" in open(exp.log).read(), "no note of it")

    # 6. SIGTERM: a clean stop, and the port is free again.
    exp.send_signal(signal.SIGTERM)
    check(exp.wait(20) == 0, "exporter exit code")
    try:
        hget("127.0.0.1", port)
        raise Failure("the exporter's port still answers")
    except ConnectionRefusedError:
        pass
    check(d.stop() == 0, "vhostd exit code")


if __name__ == "__main__":
    run(test_metrics)
