#!/usr/bin/env python3
"""scripts/bench.sh --latency: vhd-latgen's LAT lines into results, and the
table.

  latreport.py add LABEL SIZE REP RESULTS < latgen.log
      the LAT lines of one run as JSON lines appended to RESULTS, one
      progress line each on stderr
  latreport.py summary RESULTS LOADS
      per contender and size: capacity, p50/p99 at each load (medians over
      the reps), p99 relative to wire's at the same load and size; then one
      LATRESULT line per row
"""
import json
import statistics
import sys
import time


def parse_lat(line):
    r = {}
    for kv in line.split()[1:]:
        k, v = kv.split("=", 1)
        try:
            r[k] = float(v) if "." in v else int(v)
        except ValueError:
            r[k] = v
    return r


def add(label, size, rep, out):
    with open(out, "a") as f:
        for line in sys.stdin:
            if not line.startswith("LAT "):
                continue
            r = {"label": label, "size": int(size), "rep": int(rep),
                 **parse_lat(line)}
            f.write(json.dumps(r) + "\n")
            what = ("capacity" if r["mode"] == "capacity"
                    else f"{r['load_pct']:g}%")
            target = (f"target {r['target_pps'] / 1e6:6.3f} "
                      if r["target_pps"] else "")
            print(f"[bench {time.strftime('%H:%M:%S')}] {label:<16} "
                  f"{size:>4}B rep {rep} {what:>8} {target}"
                  f"tx {r['tx_pps'] / 1e6:6.3f} rx {r['rx_pps'] / 1e6:6.3f} "
                  f"Mpps lost {r['lost']} p50 {r['p50_ns'] / 1e3:.2f} "
                  f"p99 {r['p99_ns'] / 1e3:.2f} p99.9 {r['p999_ns'] / 1e3:.2f} "
                  f"max {r['max_ns'] / 1e3:.1f} us; latgen stalls "
                  f"{r['stalls']} (max {r['stall_max_ns'] / 1e3:.0f} us)",
                  file=sys.stderr)


def summary(path, loads_arg):
    rows = [json.loads(x) for x in open(path) if x.strip()]
    loads = [float(x) for x in loads_arg.split(",")]
    order, by = [], {}
    for r in rows:
        key = (r["label"], r["size"])
        if key not in by:
            by[key] = []
            order.append(key)
        by[key].append(r)

    def stat(rs, load, field):
        v = [r[field] for r in rs if r.get("mode") == "load"
             and abs(r["load_pct"] - load) < 1e-9]
        return statistics.median(v) if v else None

    def ok(rs):
        return [r for r in rs if "error" not in r]

    hdr = f"{'contender':<17}{'size':>5}{'cap Mpps':>9}{'n':>3}"
    for lo in loads:
        hdr += f" | {lo:>3g}%:{'p50 us':>9}{'p99 us':>10}{'/wire':>7}"
    print(hdr + f" | {'lost':>6}")
    res = []
    for key in order:
        label, size = key
        rs = ok(by[key])
        errs = len(by[key]) - len(rs)
        wire = ok(by.get(("wire", size), []))
        caps = [r["rx_pps"] for r in rs if r.get("mode") == "capacity"]
        cap = statistics.median(caps) / 1e6 if caps else None
        reps = len({r["rep"] for r in rs})
        line = (f"{label:<17}{size:>5}"
                f"{(f'{cap:.2f}' if cap else 'ERROR'):>9}{reps:>3}")
        f = [f"contender={label}", f"size={size}",
             f"cap_mpps={cap or 0:.3f}", f"n={reps}", f"errors={errs}"]
        for lo in loads:
            p50, p99 = stat(rs, lo, "p50_ns"), stat(rs, lo, "p99_ns")
            w99 = stat(wire, lo, "p99_ns")
            rel = p99 / w99 if p99 and w99 else None
            # widths hold p99s of seconds (a stalled host), columns apart
            line += " | " + " " * 5
            line += f" {p50 / 1e3:8.2f}" if p50 is not None else f"{'-':>9}"
            line += f" {p99 / 1e3:9.2f}" if p99 is not None else f"{'-':>10}"
            # ~: the load was not reached (received < 95 % of the target)
            got = stat(rs, lo, "rx_pps")
            want = stat(rs, lo, "target_pps")
            line += "~" if got and want and got < 0.95 * want else " "
            line += f"{rel:6.2f}" if rel is not None else f"{'-':>6}"
            t = f"{lo:g}"
            f += [f"p50_us_{t}={(p50 or 0) / 1e3:.3f}",
                  f"p99_us_{t}={(p99 or 0) / 1e3:.3f}",
                  f"p999_us_{t}={(stat(rs, lo, 'p999_ns') or 0) / 1e3:.3f}",
                  f"rx_mpps_{t}={(got or 0) / 1e6:.3f}",
                  f"target_mpps_{t}={(want or 0) / 1e6:.3f}",
                  f"p99_vs_wire_{t}=" + (f"{rel:.3f}" if rel else "-")]
        lost = sum(r["lost"] for r in rs if r.get("mode") == "load")
        sent = sum(r["sent"] for r in rs if r.get("mode") == "load")
        line += f" | {(f'{100 * lost / sent:5.2f}%' if sent else '-'):>6}"
        if errs:
            line += f"  ({errs} failed, see the logs)"
        f.append(f"lost_frac={lost / sent if sent else 0:.6f}")
        print(line)
        res.append("LATRESULT " + " ".join(f))
    print()
    print("p50, p99: medians over the reps; /wire: p99 over wire's at the "
          "same load and size; lost: frames sent at the loads and not "
          "received; ~ after p99: the load fell short (received < 95 % of "
          "the target: the generator or the switch could not keep it up)")
    if 50 in loads:
        for (label, size), rs in by.items():
            p99 = stat(ok(rs), 50, "p99_ns")
            w99 = stat(ok(by.get(("wire", size), [])), 50, "p99_ns")
            if label != "wire" and p99 and w99:
                # a load that fell short was not measured at 50 %
                short = any(
                    (stat(ok(x), 50, "rx_pps") or 0) <
                    0.95 * (stat(ok(x), 50, "target_pps") or 0)
                    for x in (rs, by.get(("wire", size), [])))
                verdict = ("not measured: the 50 % load fell short (~), "
                           "the machine or generator was too busy"
                           if short else
                           "met" if p99 <= w99 else "NOT met")
                print(f"target (p99 at 50 % no worse than wire's): {label} "
                      f"{size} B {p99 / w99:.2f} x wire: {verdict}")
    print()
    print("\n".join(res))


def main():
    if len(sys.argv) == 6 and sys.argv[1] == "add":
        add(*sys.argv[2:])
    elif len(sys.argv) == 4 and sys.argv[1] == "summary":
        summary(*sys.argv[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
