#!/usr/bin/env python3
"""Summarise scripts/bench.sh --vxlan results (one JSON object per line,
one per window).

Per case (inner frame size, direction encap / decap) and contender: the
median Mpps over the clean windows (disturbed ones left out; '*' when none
was clean and the disturbed ones are shown), min-max, Gbit/s of the inner
(guest) frames, the frame size the generator received (encap with a
tunnel: 50 B more), cycles per packet, then the paired ratios: windows of
the same round (rep) measured seconds apart, the median over rounds of
this window / the reference's, for
  tunnel/plain   the contender with a tunnel over the same switch without
                 (vhostd-vxlan / vhostd-plain, ovs-vxlan / ovs-plain): what
                 the tunnel costs
  /ovs           over OVS-DPDK in the same configuration (vhostd-vxlan /
                 ovs-vxlan, vhostd-plain / ovs-plain)
  /wire          over testpmd between the same sockets (the generator's
                 ceiling: near 1 means generator-bound)
Prints a table, then one `RESULT key=value ...` line per row.
"""
import json
import statistics
import sys

ORDER = ["wire", "ovs-plain", "ovs-vxlan", "vhostd-plain", "vhostd-vxlan",
         "alt-plain", "alt-vxlan"]


def refs(lab):
    """(name, reference label) of the paired ratios of LAB."""
    out = []
    sw, _, kind = lab.rpartition("-")
    if kind == "vxlan":
        out.append(("tunnel/plain", f"{sw}-plain"))
    else:
        out.append(("tunnel/plain", None))
    out.append(("/ovs", f"ovs-{kind}" if sw in ("vhostd", "alt") else None))
    out.append(("/wire", "wire" if lab != "wire" else None))
    return out


def main(path):
    runs = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                runs.append(json.loads(line))
    if not runs:
        print("no results")
        return 1
    cases = sorted({(int(r["size"]), r["dir"]) for r in runs},
                   key=lambda c: (c[1] != "encap", c[0]))
    labels = [c for c in ORDER if any(r["label"] == c for r in runs)]
    labels += sorted({r["label"] for r in runs} - set(labels))
    rows = {}
    for case in cases:
        for lab in labels:
            sel = [r for r in runs if r["label"] == lab and
                   (int(r["size"]), r["dir"]) == case]
            ok = [r for r in sel if "error" not in r]
            clean = [r for r in ok if not r["disturbed"]]
            use, mark = (clean, "") if clean else (ok, "*")
            if not use:
                err = next((r["error"] for r in sel if "error" in r),
                           "no runs")
                rows[(lab, case)] = {"error": err}
                continue
            mp = [r["mpps"] for r in use]
            cpp = [r["cycles_per_pkt"] for r in use if r.get("cycles_per_pkt")]
            rows[(lab, case)] = {
                "mpps": statistics.median(mp), "min": min(mp), "max": max(mp),
                "inner_gbps": statistics.median(r.get("inner_gbps", r["gbps"])
                                                for r in use),
                "frame": statistics.median(r["mean_size"] for r in use),
                "taken": statistics.median(r["taken"] for r in use
                                           if r.get("taken") is not None)
                if any(r.get("taken") is not None for r in use) else None,
                "delivered": statistics.median(
                    r["delivered"] for r in use
                    if r.get("delivered") is not None)
                if any(r.get("delivered") is not None for r in use)
                else None,
                "cpp": statistics.median(cpp) if cpp else None,
                "n": len(use), "disc": len(ok) - len(clean), "mark": mark,
                "errors": len(sel) - len(ok),
                # sessions x rounds: (session's first round, round) is rep
                "byrep": {r.get("rep", 0): r["mpps"] for r in use},
            }
    hdr = (f"{'contender':<14} {'size':>5} {'dir':<6} {'Mpps med':>9} "
           f"{'min-max':>12} {'inner Gb/s':>10} {'frame':>6} {'taken':>5} "
           f"{'deliv':>5} {'cyc/pkt':>7} "
           f"{'n':>3} {'disc':>4} {'tunnel/plain':>19} {'/ovs':>19} "
           f"{'/wire':>19}")
    print(hdr)
    print("-" * len(hdr))
    lines = []
    for case in cases:
        for lab in labels:
            row = rows.get((lab, case))
            if row is None:
                continue
            size, d = case
            if "error" in row:
                print(f"{lab:<14} {size:>5} {d:<6} ERROR: {row['error'][:80]}")
                lines.append(f"RESULT contender={lab} size={size} dir={d} "
                             "status=error")
                continue
            cols, kv = [], []
            for name, ref in refs(lab):
                rr = rows.get((ref, case)) if ref else None
                pr = ([v / rr["byrep"][k] for k, v in row["byrep"].items()
                       if rr["byrep"].get(k)] if rr and "byrep" in rr else [])
                if pr:
                    p = (statistics.median(pr), min(pr), max(pr))
                    cols.append(f"{p[0]:5.3f} ({p[1]:.2f}-{p[2]:.2f})")
                    kv.append(f"{name.strip('/').replace('/', '_over_')}"
                              f"_paired={p[0]:.3f}")
                else:
                    cols.append("-")
            cpp = f"{row['cpp']:7.0f}" if row["cpp"] else f"{'-':>7}"
            mm = f"{row['min']:.2f}-{row['max']:.2f}"
            fx = lambda x: f"{x:5.3f}" if x is not None else f"{'-':>5}"
            print(f"{lab:<14} {size:>5} {d:<6} {row['mpps']:8.2f}{row['mark']:<1} "
                  f"{mm:>12} {row['inner_gbps']:10.2f} {row['frame']:6.0f} "
                  f"{fx(row['taken'])} {fx(row['delivered'])} {cpp} {row['n']:>3} {row['disc']:>4} {cols[0]:>19} "
                  f"{cols[1]:>19} {cols[2]:>19}")
            cpps = f"{row['cpp']:.1f}" if row["cpp"] else "NA"
            lines.append(
                f"RESULT contender={lab} size={size} dir={d} "
                f"mpps_median={row['mpps']:.3f} mpps_min={row['min']:.3f} "
                f"mpps_max={row['max']:.3f} "
                f"inner_gbps_median={row['inner_gbps']:.3f} "
                f"frame_received={row['frame']:.1f} "
                f"taken={row['taken'] if row['taken'] is not None else 'NA'} "
                f"delivered={row['delivered'] if row['delivered'] is not None else 'NA'} "
                f"cycles_per_pkt={cpps} "
                f"n={row['n']} discarded={row['disc']} "
                f"all_disturbed={int(bool(row['mark']))}"
                + "".join(" " + x for x in kv))
        print()
    print("Mpps = frames/s the generator received on the far side (encap: "
          "the underlay port, decap: the guest port), one direction;")
    print("inner Gb/s = the guest's frames (size x rate), frame = mean size "
          "received (encap through a tunnel: inner + 50);")
    print("taken = share of the frames the generator offered (replayed) "
          "that the switch's ring accepted: below 1 the switch is the "
          "bottleneck, ~1 the generator (the rate is then a lower bound); "
          "deliv = received / accepted;")
    print("cyc/pkt = CPU frequency x CPU time of the switch's busiest "
          "thread / frames (a polling thread: per frame only when taken < 1);")
    print("paired = median (min-max) over rounds of this window / the "
          "reference's window of the same round; '*' = every window "
          "disturbed (shown anyway); disc = disturbed windows left out.")
    print()
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
