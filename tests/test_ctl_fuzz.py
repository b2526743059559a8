#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The control socket fed many thousands of malformed and mutated requests:
vhostd never crashes, answers every well-formed request (a request with an
id gets exactly one reply with that id, in order), keeps serving everyone,
and its state is the same at the end (`config show` byte for byte, the
port, bridge and FDB lists, its guest still connected, mbufs in use at the
baseline).

Three kinds of traffic, interleaved over several connections sent in
random-sized pieces:
1. generated streams whose replies are known exactly: every command with
   wrong argument counts and garbage arguments, wrong types for method,
   params and id, huge numbers, deep nesting, NULs, invalid UTF-8, long
   strings, many params, notifications, garbage lines;
2. random mutations of valid requests (bit flips, bytes, insertions,
   deletions, truncations, splices, long strings, nesting), one blob per
   connection, some connections closed mid-request, some clients silent
   with half a request the whole time;
3. a few special cases (over 64 KiB, a byte at a time, a thousand requests
   in one write).

Mutations must not make real changes that would then count as state
changes: every JSON object that the server could parse out of a blob
(Python's parser, which accepts more than jansson, is tried at every '{')
is checked, and a blob that could add a bridge or port, delete a port, add
a static FDB entry, start a capture or save the config outside the test's
directory is not sent (counted as skipped).

VHD_FUZZ_ITERATIONS (default 16000, 30-50 s) sets the number of
mutated blobs sent one per connection; the generated items (a fifth of it)
and the mutated blobs sent back to back (a quarter) scale with it.
VHD_FUZZ_SEED replays a run.
"""
import json
import os
import random
import re
import selectors
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "lib"))
from vhdtest import (Failure, Guest, Vhostd, check, run,  # noqa: E402
                     wait_until)

ITER = int(os.environ.get("VHD_FUZZ_ITERATIONS", "16000"))
SEED = int(os.environ.get("VHD_FUZZ_SEED", str(int(time.time() * 1000) %
                                               1000000007)))
BRIDGES = {"br0"}
PORTS = {"g1", "g2"}
NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,31}\Z")
COMMANDS = {"list-commands": (0, 0), "bridge/add": (1, 4),
            "bridge/del": (1, 1), "bridge/list": (0, 0),
            "bridge/show": (1, 1), "port/add": (1, 8), "port/del": (1, 1),
            "port/list": (0, 0), "port/show": (1, 1), "fdb/show": (0, 1),
            "fdb/add": (3, 3), "fdb/del": (2, 2), "fdb/flush": (0, 1),
            "stats": (0, 1), "stats/clear": (0, 1), "lcores": (0, 0),
            "capture": (2, 5), "config/show": (0, 0),
            "config/save": (0, 1), "info": (0, 0), "log/list": (0, 1),
            "log/set": (1, 2)}
# What vhostd reads as a level (src/log.c): log/set with any of these in
# an argument could succeed (and change config show's log-level).
LEVEL_RE = re.compile(r"(?i)(?:^|[\s:,])(?:[1-8]|emerg|emergency|alert|crit|"
                      r"critical|err|error|warn|warning|notice|info|debug)"
                      r"(?:$|[\s:,])")
MAX_REQ = 64 * 1024
sys.setrecursionlimit(20000)  # json's parser on 3000-deep nesting


# ---------------------------------------------------------------- safety

class Pairs(dict):
    """A JSON object that remembers every value of a repeated key."""

    def __init__(self, pairs):
        super().__init__(pairs)
        self.all = {}
        for k, v in pairs:
            self.all.setdefault(k, []).append(v)


def cstr(s):
    """What C sees of a JSON string: up to its first NUL."""
    return s.split("\0", 1)[0]


class Safety:
    """Could a blob make a real change if the server parsed it?"""

    def __init__(self, savedir, conf):
        self.savedir = savedir
        self.conf = conf
        self.dec = json.JSONDecoder(object_pairs_hook=Pairs, strict=False)

    def objects(self, blob):
        """Every object Python can parse starting at some '{' of BLOB, or
        None if the parser gave up (too deep) somewhere. jansson skips a
        NUL right after a number or literal ({"a":1\\0} is {"a":1}), so
        BLOB without its NULs is tried too."""
        out = []
        for b in {blob, blob.replace(b"\0", b"")}:
            s = b.decode("utf-8", "surrogateescape")
            for i in [m.start() for m in re.finditer(r"\{", s)]:
                try:
                    obj, _ = self.dec.raw_decode(s, i)
                except ValueError:
                    continue
                except RecursionError:
                    return None
                out.append(obj)
        return out

    def request_safe(self, o):
        methods = o.all.get("method", [])
        params_all = o.all.get("params", [None])
        for m in methods:
            if not isinstance(m, str):
                continue
            m = cstr(m)
            for params in params_all:
                if params is None:
                    params = []
                if not isinstance(params, list) or \
                        not all(isinstance(p, str) for p in params):
                    continue
                if not self.command_safe(m, [cstr(p) for p in params]):
                    return False
        return True

    def command_safe(self, m, a):
        n = len(a)
        if m not in COMMANDS:
            return True
        lo, hi = COMMANDS[m]
        if n < lo or n > hi:
            return True
        if m == "bridge/add":
            return a[0] in BRIDGES or not NAME_RE.match(a[0])
        if m == "port/add":
            return a[0] in PORTS or not NAME_RE.match(a[0])
        if m == "port/del":
            return a[0] not in PORTS
        if m == "bridge/del":
            return True  # br0 always has ports: EBUSY
        if m == "fdb/add":
            return a[0] not in BRIDGES or a[2] not in PORTS
        if m == "capture":
            return a[0] not in PORTS
        if m == "log/set":
            return not any(LEVEL_RE.search(x) for x in a)
        if m == "config/save":
            if n == 0:
                return True  # the test's own config file, same text
            p = a[0]
            if not p.startswith("/"):
                return True
            rest = p[len(self.savedir) + 1:]
            return (p.startswith(self.savedir + "/") and rest and
                    "/" not in rest and rest not in (".", ".."))
        # fdb/del, fdb/flush: the FDB is empty (nothing sends); stats/clear:
        # counters are not part of the state compared; the rest read.
        return True

    def blob_safe(self, blob):
        """objects() has every object, nested ones included (each starts
        at its own '{')."""
        objs = self.objects(blob)
        return objs is not None and all(self.request_safe(o) for o in objs)


# ------------------------------------------------ what the server must answer

def no_nan(x):
    raise ValueError("not JSON: %s" % x)


def jansson_ok(v, depth=0):
    """Would jansson accept this value as Python parsed it?"""
    if depth > 2000:
        return False
    if isinstance(v, bool) or v is None:
        return True
    if isinstance(v, int):
        return -2 ** 63 <= v < 2 ** 63
    if isinstance(v, float):
        return v == v and abs(v) != float("inf")
    if isinstance(v, str):
        if "\0" in v:
            return False
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(v, list):
        return all(jansson_ok(x, depth + 1) for x in v)
    if isinstance(v, dict):
        return all(jansson_ok(k, depth + 1) and jansson_ok(x, depth + 1)
                   for k, x in v.items())
    return False


def expect_of(blob):
    """For a blob that is exactly one well-formed JSON value: the reply it
    must get ("id", ID), ("null",) or ("none",); None if unsure."""
    def pairs(kv):
        # jansson checks every member, also one a later duplicate key
        # replaces (Python keeps only the last): unsure if any is bad.
        if not all(jansson_ok(k) and jansson_ok(x) for k, x in kv):
            raise ValueError("a member jansson refuses")
        return dict(kv)
    try:
        v = json.loads(blob.decode("utf-8"), parse_constant=no_nan,
                       object_pairs_hook=pairs)
    except (ValueError, RecursionError):
        return None
    try:
        if not jansson_ok(v) or len(blob) > MAX_REQ:
            return None
    except RecursionError:
        return None
    if not isinstance(v, dict):
        return ("null",)
    has_id = "id" in v
    rid = v.get("id")
    if has_id and (isinstance(rid, bool) or
                   not isinstance(rid, (int, float, str, type(None)))):
        return ("null",)
    m = v.get("method")
    if not isinstance(m, str):
        return ("id", rid) if has_id else ("null",)
    p = v.get("params", [])
    if not isinstance(p, list) or not all(isinstance(x, str) for x in p):
        return ("id", rid) if has_id else ("null",)
    return ("id", rid) if has_id else ("none",)


# ---------------------------------------------------------------- traffic

class Stream:
    def __init__(self, d, out, close_at=None, rst=False):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(d.control)
        self.s.setblocking(False)
        self.out = out
        self.sent = 0
        self.close_at = close_at  # close after this many bytes
        self.rst = rst
        self.inp = b""
        self.wdone = False
        self.eof = False

    def replies(self):
        lines = self.inp.split(b"\n")
        check(lines[-1] == b"", "a reply without its newline: %r" %
              lines[-1][:300])
        out = []
        for ln in lines[:-1]:
            try:
                r = json.loads(ln.decode())
            except (ValueError, UnicodeDecodeError):
                raise Failure("a reply that is not JSON: %r" % ln[:300])
            check(isinstance(r, dict) and r.get("jsonrpc") == "2.0" and
                  "id" in r and (("result" in r) != ("error" in r)),
                  "not a JSON-RPC reply: %r" % ln[:300])
            if "error" in r:
                e = r["error"]
                check(isinstance(e.get("code"), int) and
                      isinstance(e.get("message"), str) and e["message"],
                      "error without code or message: %r" % ln[:300])
            out.append(r)
        return out


def pump(streams, rng, timeout=30):
    """Send every stream's bytes in random pieces, interleaved, reading
    replies meanwhile; then half-close (or close early) and read to EOF."""
    sel = selectors.DefaultSelector()
    for st in streams:
        sel.register(st.s, selectors.EVENT_READ | selectors.EVENT_WRITE, st)
    live = len(streams)
    end = time.monotonic() + timeout
    while live:
        if time.monotonic() > end:
            stuck = [st for st in streams if not st.eof]
            raise Failure("%d connection(s) not answered or not closed "
                          "within %ds; one sent %r, got %r" %
                          (len(stuck), timeout, stuck[0].out[:300],
                           stuck[0].inp[-300:]))
        for key, ev in sel.select(0.5):
            st = key.data
            if ev & selectors.EVENT_READ:
                try:
                    data = st.s.recv(1 << 16)
                except (BlockingIOError, InterruptedError):
                    data = None
                except ConnectionResetError:
                    data = b""
                if data == b"":
                    st.eof = True
                    sel.unregister(st.s)
                    st.s.close()
                    live -= 1
                    continue
                if data:
                    st.inp += data
            if ev & selectors.EVENT_WRITE and not st.wdone:
                stop = len(st.out) if st.close_at is None else st.close_at
                n = min(stop - st.sent, rng.choice((1, 7, 64, 512, 4096,
                                                    1 << 16)))
                try:
                    if n > 0:
                        st.sent += st.s.send(st.out[st.sent:st.sent + n])
                except (BlockingIOError, InterruptedError):
                    pass
                except (BrokenPipeError, ConnectionResetError):
                    st.sent = stop  # closed on us (e.g. too big)
                if st.sent >= stop:
                    st.wdone = True
                    if st.close_at is not None:
                        if st.rst:
                            st.s.setsockopt(socket.SOL_SOCKET,
                                            socket.SO_LINGER,
                                            struct.pack("ii", 1, 0))
                        sel.unregister(st.s)
                        st.s.close()
                        st.eof = True
                        live -= 1
                        continue
                    try:
                        st.s.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    sel.modify(st.s, selectors.EVENT_READ, st)
    sel.close()


def match(st, items):
    """ITEMS' expectations against ST's replies, in order."""
    got = st.replies()
    i = 0
    for blob, exp in items:
        if exp[0] == "none":
            continue
        check(i < len(got), "no reply to %r (expected %s); %d replies" %
              (blob[:300], exp, len(got)))
        r = got[i]
        i += 1
        if exp[0] == "id":
            ok = r["id"] == exp[1] and type(r["id"]) in (
                (int, float) if isinstance(exp[1], (int, float))
                else (type(exp[1]),))
        elif exp[0] == "null":
            ok = r["id"] is None and "error" in r
        else:  # "one": its id, or null for an error found before the id
            ok = r["id"] == exp[1] or (r["id"] is None and "error" in r)
        check(ok, "reply %r to %r, expected %s" % (r, blob[:300], exp))
    check(i == len(got), "%d replies more than requests: %s" %
          (len(got) - i, got[i:i + 3]))
    return len(got)


# ---------------------------------------------------------------- generation

GARBAGE_ARGS = ["", "br0", "g1", "g2", "nosuch", "x" * 300, "=", "a=b",
                "mode=xconnect", "bridge=br0", "type=vhost-user",
                "type=ethdev", "path=/nonexistent-vhd/x.sock",
                "devargs=net_null0", "queues=999999999999", "mac-aging=-1",
                "02:00:00:00:00:01", "ff:ff:ff:ff:ff:ff", "zz", "count=0",
                "dir=up", "duration=1e9", "\u00e9\u00e8", "\u2603" * 50,
                "a\tb", "a;b", " lead", "trail ", "%s%n%s", "../../etc",
                "vhostd.*:", "x[:9", "([,0", ",", ":", "debugx", "9",
                "key=" + "v" * 300, "\u0001", "-1", "0", "18446744073709551616"]


def safe_args(rng, m, n, safety):
    """N garbage arguments for M that cannot succeed at a change."""
    for _ in range(100):
        a = [rng.choice(GARBAGE_ARGS) for _ in range(n)]
        if m in ("bridge/add", "port/add") and n and rng.random() < .5:
            a[0] = rng.choice(sorted(BRIDGES if m == "bridge/add"
                                     else PORTS))
        if m == "config/save" and n == 1 and rng.random() < .3:
            a[0] = safety.savedir + "/f%d.conf" % rng.randrange(4)
        if safety.command_safe(m, a):
            return a
    return ["nosuch"] * n


def rand_id(rng, k):
    return rng.choice([k, -k, "s%d" % k, "\u00e9-%d" % k, k + 0.5,
                       2 ** 63 - 1 - k, -2 ** 63 + k, "", None])


def request(rid, method, params, extra=None, has_id=True):
    o = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        o["params"] = params
    if has_id:
        o["id"] = rid
    if extra:
        o.update(extra)
    return json.dumps(o, ensure_ascii=rand_bool()).encode()


_rng = random.Random(SEED)


def rand_bool():
    return _rng.random() < .5


def gen_items(rng, safety, n):
    """N (bytes, expectation) items: requests one after another on one
    connection (each request ends where its object ends; each garbage item
    ends with a newline)."""
    items = []
    k = 0
    while len(items) < n:
        k += 1
        rid = rand_id(rng, k)
        kind = rng.randrange(12)
        m = rng.choice(sorted(COMMANDS))
        lo, hi = COMMANDS[m]
        if kind <= 3:
            # A command with a random (often wrong) argument count.
            argc = rng.choice([0, 1, 2, 3, lo, hi, hi + 1, hi + 2, 9])
            params = safe_args(rng, m, argc, safety)
            p = None if argc == 0 and rng.random() < .3 else params
            has_id = rng.random() < .85
            blob = request(rid, m, p, has_id=has_id)
            exp = ("id", rid) if has_id else ("none",)
        elif kind == 4:
            # Not a command.
            meth = rng.choice(["", "PORT/LIST", "port", "port/", "/port/list",
                               "port//list", "x" * 5000, "stats\u00e9",
                               "list-commands ", "config/show/x"])
            has_id = rng.random() < .8
            blob = request(rid, meth, [], has_id=has_id)
            exp = ("id", rid) if has_id else ("none",)
        elif kind == 5:
            # Wrong types for method, params, id.
            which = rng.randrange(3)
            bad = rng.choice([5, None, [], {}, True, 1.5, [5], [None],
                              {"a": "b"}, -2 ** 63, ["a", ["b"]]])
            if which == 0:
                has_id = rng.random() < .8
                blob = request(rid, bad, [], has_id=has_id)
                exp = ("id", rid) if has_id else ("null",)
            elif which == 1:
                if bad is None or bad == []:
                    bad = [[]]  # (absent and [] are valid params)
                has_id = rng.random() < .8
                blob = request(rid, m, bad, has_id=has_id)
                exp = ("id", rid) if has_id else ("null",)
            else:
                bad_id = rng.choice([True, False, [], [1], {}, {"id": 1}])
                blob = request(bad_id, m, [])
                exp = ("null",)
        elif kind == 6:
            # Huge numbers, deep nesting: jansson refuses the whole text
            # (parse error, id null) or takes it.
            c = rng.randrange(5)
            if c == 0:
                blob = (b'{"jsonrpc":"2.0","id":%s,"method":"stats"}' %
                        rng.choice([b"1e400", b"-1e400",
                                    b"123456789012345678901234567890",
                                    b"-99999999999999999999"]))
                exp = ("null",)
            elif c == 1:
                d = rng.choice([100, 2500, 5000])
                blob = (b'{"jsonrpc":"2.0","id":%d,"method":"stats",'
                        b'"params":' % k + b"[" * d + b"]" * d + b"}")
                exp = ("id", k) if d < 2000 else ("null",)
            elif c == 2:
                blob = (b'{"jsonrpc":"2.0","id":%d,"method":"stats",'
                        b'"x":' % k + b'{"a":' * 300 + b"1" + b"}" * 300 +
                        b"}")
                exp = ("id", k)
            elif c == 3:
                blob = b'{"jsonrpc":"2.0","id":1e-400,"method":"lcores"}'
                exp = ("one", 0.0)
            else:
                blob = (b'{"jsonrpc":"2.0","id":%d,"method":"stats",'
                        b'"params":[%s]}' % (k, rng.choice(
                            [b"1e999", b"1" * 400, b"-0", b"0.0"])))
                exp = ("one", k)
        elif kind == 7:
            # NULs, invalid UTF-8, lone surrogates: not JSON jansson takes.
            bad = rng.choice([b"\\u0000", b"a\\u0000b", b"\xff", b"\xc3",
                              b"\xed\xa0\x80", b"\\ud800", b"\\udfff",
                              b"\xc0\xaf", b"\xf8\x88\x80\x80\x80", b"\x00",
                              b"\x01", b"\x1f"])
            where = rng.randrange(3)
            if where == 0:
                blob = (b'{"jsonrpc":"2.0","id":%d,"method":"port/show",'
                        b'"params":["g' % k + bad + b'"]}')
            elif where == 1:
                blob = (b'{"jsonrpc":"2.0","id":%d,"method":"stats' % k +
                        bad + b'"}')
            else:
                blob = (b'{"jsonrpc":"2.0","id":"' + bad +
                        b'","method":"stats"}')
            exp = ("null",)
            blob += b"\n"
        elif kind == 8:
            # Long strings, many params.
            c = rng.randrange(3)
            if c == 0:
                blob = request(k, rng.choice(["port/show", "stats",
                                              "bridge/show", "fdb/show"]),
                               ["y" * rng.choice([1000, 30000, 60000])])
            elif c == 1:
                blob = request(k, m, ["a"] * rng.choice([50, 1000, 5000]))
            else:
                blob = request(k, "port/add", ["g1"] + ["k=" + "v" * 250] *
                               rng.randrange(1, 8))
            exp = ("id", k)
        elif kind == 9:
            # Garbage lines: one parse or request error each, id null.
            blob = rng.choice([b"}", b"]", b"nul", b"tru", b"{\"id\":1,,}",
                               b"{\"a\" 1}", b"\"str\"", b"123", b"-",
                               b"[1,2]", b"[]", b"{}", b"\xff\xfe",
                               b"[" * 3000 + b"]" * 3000, b"{]", b"[}",
                               b"{\"method\":\"stats\",\"id\":1]",
                               b"'single'", b"NaN", b"{\"id\":NaN}",
                               b"{\"id\":1,\"method\":\"stats\",}",
                               b"\"\\x\"", b"{\"a\":\"\\u12\"}"]) + b"\n"
            exp = ("null",)
        elif kind == 10:
            # Other members, other jsonrpc versions: still requests.
            extra = rng.choice([{"jsonrpc": "1.0"}, {"jsonrpc": 2},
                                {"x": [1, {"y": None}]}, {"params2": 1},
                                {"method2": "port/del"}])
            blob = request(k, rng.choice(["bridge/list", "port/list",
                                          "stats", "lcores"]), [], extra)
            exp = ("id", k)
        else:
            # Repeated keys: the last one counts, for jansson and Python.
            blob = (b'{"jsonrpc":"2.0","id":%d,"method":"port/show",'
                    b'"method":"bridge/list","params":["g1"],"params":[]}'
                    % k)
            exp = ("id", k)
        check(safety.blob_safe(blob), "generated an unsafe request: %r" %
              blob[:300])
        sep = rng.choice([b"", b"\n", b" ", b"\r\n", b"\t\n "])
        if exp[0] in ("null", "one") and not blob.endswith(b"\n"):
            sep = b"\n"
        items.append((blob + sep, exp))
    return items


INTERESTING = [b'"', b"\\", b"{", b"}", b"[", b"]", b",", b":", b"\x00",
               b"\n", b"\xff", b"\xc3", b"\x80", b"0", b"-", b"e", b" ",
               b"\\u0000", b"\\ud800", b"null", b"true", b"1e400",
               b"99999999999999999999999", b'"x":', b'"params":',
               b'"id":', b'"method":"', b"/", b"=", b"\r"]


def mutate(rng, b, seeds):
    b = bytearray(b)
    for _ in range(rng.randint(1, 4)):
        if not b:
            b += b"{"
        i = rng.randrange(len(b) + 1)
        op = rng.randrange(11)
        if op == 0 and i < len(b):
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1 and i < len(b):
            b[i] = rng.randrange(256)
        elif op in (2, 10):
            b[i:i] = rng.choice(INTERESTING)
        elif op == 3:
            del b[i:i + rng.randint(1, 16)]
        elif op == 4:
            del b[i:]
        elif op == 5:
            b[i:i] = b[i:i + rng.randint(1, 32)] * rng.randint(1, 8)
        elif op == 6:
            b[i:i] = bytes(rng.randrange(256) for _ in
                           range(rng.randint(1, 8)))
        elif op == 7:
            o = rng.choice(seeds)
            b = b[:i] + o[rng.randrange(len(o)):]
        elif op == 8:
            b[i:i] = rng.choice([b"a", b'\\"', b"\xc3\xa9", b"\\u00e9",
                                 b"\\\\"]) * rng.randint(100, 4000)
        elif op == 9:
            n = rng.randint(10, 3000)
            b[i:i] = b"[" * n + (b"]" * n if rng.random() < .5 else b"")
    return bytes(b[:60000])


def seeds_for(rng, safety):
    out = []
    for k in range(200):
        m = rng.choice(sorted(COMMANDS))
        lo, hi = COMMANDS[m]
        argc = rng.randint(lo, hi) if rng.random() < .8 else hi + 1
        args = safe_args(rng, m, argc, safety)
        if m in ("port/show", "stats", "bridge/show", "fdb/show") and \
                argc == 1 and rng.random() < .6:
            args = [rng.choice(sorted(PORTS | BRIDGES))]
        out.append(request(rand_id(rng, k), m, args))
    return out


# ---------------------------------------------------------------- the test

def snapshot(d):
    g1 = d.ctl("port/show", "g1")
    return {"config": d.ctl("config/show")["config"],
            "ports": [(p["name"], p["bridge"], p["type"])
                      for p in d.ctl("port/list")],
            "bridges": d.ctl("bridge/list"),
            "fdb": d.ctl("fdb/show"),
            "g1": (g1["state"], g1["connected"], g1["connects"]),
            "commands": d.ctl("list-commands")}


def alive(d, what):
    if d.proc.poll() is not None:
        raise Failure("vhostd died (rc %s) during %s" % (d.proc.poll(),
                                                         what))
    r = d.rpc("bridge/list", timeout=5)
    check(r.get("result") and r["result"][0]["name"] == "br0",
          "vhostd not serving after %s: %s" % (what, r))


def test_ctl_fuzz(t):
    print("VHD_FUZZ_SEED=%d VHD_FUZZ_ITERATIONS=%d" % (SEED, ITER))
    rng = random.Random(SEED)
    vh = lambda n: {"type": "vhost-user", "bridge": "br0",  # noqa: E731
                    "path": t.path(n + ".sock")}
    d = Vhostd(t, {"br0": {}}, {"g1": vh("g1"), "g2": vh("g2")}).start()
    base = d.mbufs_in_use()
    g1 = Guest(t, "g1", t.path("g1.sock")).start()
    d.wait_up("g1")
    savedir = t.path("save")
    os.mkdir(savedir)
    safety = Safety(savedir, d.conf)
    before = snapshot(d)
    t_start = time.monotonic()
    stats = {"requests": 0, "replies": 0, "mutated": 0, "skipped": 0,
             "checked": 0, "closed_early": 0}

    # Silent clients with half a request, there all along.
    silent = []
    for part in (b'{"jsonrpc":"2.0","id":1,"meth', b"[[[", b'{"a":"',
                 b""):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(d.control)
        s.sendall(part)
        silent.append(s)

    # 0. Known-hard inputs, one connection each, checked one by one (a
    # failure is recorded and the fuzzing goes on).
    bugs = probes(d)

    # 1. Generated streams, exact replies, 6 connections at a time.
    n_items = max(200, ITER // 5)
    per = 150
    done = 0
    while done < n_items:
        batch = []
        for _ in range(6):
            items = gen_items(rng, safety, per)
            batch.append((Stream(d, b"".join(b for b, _ in items)), items))
        pump([s for s, _ in batch], rng)
        for st, items in batch:
            try:
                stats["replies"] += match(st, items)
            except Failure:
                path = "/tmp/vhd-fuzz-stream-%d" % os.getpid()
                with open(path + ".bin", "wb") as f:
                    f.write(st.out)
                with open(path + ".txt", "w") as f:
                    for b, e in items:
                        f.write("%r\n    -> %s\n" % (b[:400], e))
                    f.write("REPLIES:\n" + st.inp.decode(errors="replace"))
                print("the stream: %s.bin, items and replies: %s.txt" %
                      (path, path))
                raise
            stats["requests"] += len(items)
        done += 6 * per
        alive(d, "generated streams")
    print("generated: %d items, %d replies (%.1fs)" %
          (stats["requests"], stats["replies"],
           time.monotonic() - t_start))

    # 2. Mutations, one blob per connection, 8 connections at a time.
    seeds = seeds_for(rng, safety)
    recent = []
    n = 0
    while n < ITER:
        batch = []
        while len(batch) < 8 and n < ITER:
            n += 1
            blob = mutate(rng, rng.choice(seeds), seeds)
            stats["mutated"] += 1
            if not safety.blob_safe(blob):
                stats["skipped"] += 1
                continue
            close_at = None
            if rng.random() < .15 and blob:
                close_at = rng.randrange(len(blob) + 1)
                stats["closed_early"] += 1
            batch.append((Stream(d, blob, close_at, rst=rng.random() < .5),
                          expect_of(blob) if close_at is None else None))
        recent = (recent + [s.out for s, _ in batch])[-64:]
        try:
            pump([s for s, _ in batch], rng)
        except Failure:
            if d.proc.poll() is not None:
                raise Failure("vhostd died (rc %s); last blobs in %s" %
                              (d.proc.poll(), dump(t, recent)))
            raise
        for st, exp in batch:
            if st.close_at is not None:
                continue
            try:
                got = st.replies()
                stats["replies"] += len(got)
                if exp is not None:
                    stats["checked"] += 1
                    match(st, [(st.out, exp)])
            except Failure as e:
                raise Failure("%s\nblob: %r" % (e, st.out[:500]))
        if d.proc.poll() is not None:
            raise Failure("vhostd died (rc %s); last blobs in %s" %
                          (d.proc.poll(), dump(t, recent)))
        if n % 1000 < 8:
            alive(d, "mutations")
    alive(d, "mutations")
    print("mutated: %d blobs, %d skipped as unsafe, %d closed early, %d "
          "well-formed ones checked exactly, %d replies (%.1fs)" %
          (stats["mutated"], stats["skipped"], stats["closed_early"],
           stats["checked"], stats["replies"], time.monotonic() - t_start))

    # 2b. Mutated blobs back to back on one connection (the stream as a
    # whole checked: an object may span two blobs), 8 connections.
    n = 0
    streams = 0
    while n < ITER // 4:
        batch = []
        for _ in range(8):
            out = b""
            for _ in range(rng.randint(1, 30)):
                blob = mutate(rng, rng.choice(seeds), seeds)
                blob += rng.choice([b"", b"\n", b" ", b"\n\n"])
                n += 1
                stats["mutated"] += 1
                if len(out) + len(blob) < 200000 and \
                        safety.blob_safe(out + blob):
                    out += blob
                else:
                    stats["skipped"] += 1
            close_at = None
            if rng.random() < .1 and out:
                close_at = rng.randrange(len(out) + 1)
                stats["closed_early"] += 1
            batch.append(Stream(d, out, close_at, rst=rng.random() < .5))
        streams += len(batch)
        recent = (recent + [st.out for st in batch])[-64:]
        try:
            pump(batch, rng)
        except Failure:
            if d.proc.poll() is not None:
                raise Failure("vhostd died (rc %s); last streams in %s" %
                              (d.proc.poll(), dump(t, recent)))
            raise
        for st in batch:
            if st.close_at is None:
                try:
                    stats["replies"] += len(st.replies())
                except Failure as e:
                    raise Failure("%s\nstream: %r" % (e, st.out[:500]))
        if d.proc.poll() is not None:
            raise Failure("vhostd died (rc %s); last streams in %s" %
                          (d.proc.poll(), dump(t, recent)))
    alive(d, "mutated streams")
    print("mutated streams: %d connections, %d blobs in all, %d skipped, "
          "%d replies in all (%.1fs)" % (streams, stats["mutated"],
                                          stats["skipped"], stats["replies"],
                                          time.monotonic() - t_start))

    # 3. Special cases.
    specials(t, d, rng)
    for s in silent:
        s.close()

    # Nothing changed.
    alive(d, "everything")
    after = snapshot(d)
    for k in before:
        check(after[k] == before[k], "%s changed:\n%s\n---\n%s" %
              (k, before[k], after[k]))
    log = d.log()
    for bad in ("bug:", "cannot encode", "AddressSanitizer", "runtime error",
                "internal error"):
        check(bad not in log, "vhostd log says %r:\n%s" % (bad, log[-3000:]))
    wait_until(lambda: d.mbufs_in_use() == base, 20,
               "mbufs in use back at %d" % base)
    print("ok: state unchanged after %.1fs" % (time.monotonic() - t_start))
    g1.stop()
    d.stop_clean(base)
    check(not bugs, "%d probe(s) failed:\n  %s" % (len(bugs),
                                                   "\n  ".join(bugs)))


# Each: bytes sent (then nothing: the client waits for its reply) and the
# error code its first reply must have; a valid request follows it and must
# be answered too.
PROBES = [
    (b'{"jsonrpc":"2.0","id":1,"method":"stats"\x00}\n', -32700),
    (b"\x00\n", -32700),
    (b"[\x00]\n", -32700),
    (b'{"jsonrpc":"2.0","id":1,"method":"st\x00ats"}\n', -32700),
    (b'{"jsonrpc":"2.0","id":1,"method":"stats"}}\n', None),
    (b'{"jsonrpc":"2.0","id":1,"method":"stats","params":["\\u0000"]}\n',
     -32700),
    (b"\xef\xbb\xbf{}\n", -32700),
]


def probes(d):
    bugs = []
    follow = b'{"jsonrpc":"2.0","id":"next","method":"bridge/list"}\n'
    for blob, code in PROBES:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(d.control)
        s.settimeout(2)
        s.sendall(blob + follow)
        buf = b""
        try:
            while buf.count(b"\n") < (2 if code else 1) or \
                    b'"next"' not in buf:
                chunk = s.recv(1 << 16)
                if not chunk:
                    break
                buf += chunk
        except socket.timeout:
            pass
        s.close()
        replies = [json.loads(x) for x in buf.split(b"\n") if x.strip()]
        ids = [r.get("id") for r in replies]
        first = replies[0] if replies else None
        if code is not None and (not first or first.get("id") is not None or
                                 first.get("error", {}).get("code") != code):
            bugs.append("%r followed by a valid request: first reply %s, "
                        "wanted error %d (id null)" % (blob, first, code))
        elif ids[-1:] != ["next"]:
            bugs.append("%r: the valid request after it was not answered "
                        "within 2 s (replies: %s)" % (blob, replies))
    for b in bugs:
        print("PROBE FAILED: " + b)
    return bugs


def dump(t, blobs):
    path = t.path("last-blobs.json")
    keep = "/tmp/vhd-fuzz-last-blobs-%d.json" % os.getpid()
    data = json.dumps([b.decode("latin-1") for b in blobs])
    for p in (path, keep):
        with open(p, "w") as f:
            f.write(data)
    return keep


def specials(t, d, rng):
    # Over 64 KiB without an end: an error, then the connection closes.
    for blob in (json.dumps({"jsonrpc": "2.0", "id": 1, "method": "stats",
                             "params": ["z" * 70000]}).encode(),
                 b"a" * 70000, b"[" * 100000, b'{"a":"' + b"q" * 70000,
                 b" " * 10 + b'{"id":2,"method":"stats","params":[' +
                 b'"a",' * 20000 + b'"a"]}'):
        st = Stream(d, blob)
        pump([st], rng)
        got = st.replies()
        check(len(got) == 1 and got[0]["error"]["code"] == -32600 and
              "larger than" in got[0]["error"]["message"],
              "over 64 KiB (%r...): %s" % (blob[:40], got))
    # 100 KB of whitespace before a request is not a request.
    st = Stream(d, b" \n\t\r" * 25000 + b'{"jsonrpc":"2.0","id":3,'
                b'"method":"lcores"}')
    pump([st], rng)
    got = st.replies()
    check(len(got) == 1 and got[0]["id"] == 3 and "result" in got[0],
          "after whitespace: %s" % got)
    # A byte at a time.
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(d.control)
    s.settimeout(10)
    req = b'{"jsonrpc":"2.0","id":"slow","method":"port/show",' \
          b'"params":["g1"]}\n'
    for i in range(len(req)):
        s.send(req[i:i + 1])
        time.sleep(0.002)
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = s.recv(1 << 16)
        check(chunk, "EOF before the reply to a request sent a byte at a "
              "time")
        buf += chunk
    r = json.loads(buf)
    check(r["id"] == "slow" and r["result"]["name"] == "g1",
          "byte at a time: %s" % r)
    s.close()
    # A thousand requests in one write, no separators: a thousand replies,
    # in order.
    blob = b"".join(b'{"jsonrpc":"2.0","id":%d,"method":"stats",'
                    b'"params":["g1"]}' % i for i in range(1000))
    st = Stream(d, blob)
    pump([st], rng)
    got = st.replies()
    check([r["id"] for r in got] == list(range(1000)) and
          all("result" in r for r in got), "1000 pipelined: %d replies" %
          len(got))
    print("ok: special cases")


if __name__ == "__main__":
    run(test_ctl_fuzz)
