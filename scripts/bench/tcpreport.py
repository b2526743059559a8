#!/usr/bin/env python3
"""Summarise scripts/bench.sh --tcp results (one JSON object per line,
bench/tcp.py's windows).

Per contender: median and min-max of the TCP payload Gbit/s over the
clean windows (disturbed ones left out; if none is clean, all of them and
the row is marked '*'), the frames it carried, the switch's cycles per
MSS segment of payload, the generator's load. Then the ratios the issue
asks about, paired: the windows of one round are seconds apart, so the
median over rounds of (this round / the reference's same round) cancels
the machine's drift:
  offloads: each X-tso over X-mtu (vhostd, ovs, wire);
  /ovs-tso: each row over OVS-DPDK with userspace TSO.
Then the two targets of issue 12, and one TCPRESULT line per row.

  tcpreport.py RESULTS.jsonl
"""
import json
import statistics
import sys

ORDER = ["wire-tso", "wire-mtu", "ovs-tso", "ovs-mtu", "vhostd-tso",
         "vhostd-mtu", "alt-tso", "alt-mtu"]


def paired(a, b):
    """(median, min, max) over the rounds both have of a's / b's, or None."""
    rs = [a[k] / b[k] for k in a if k in b and b[k]]
    if not rs:
        return None
    return statistics.median(rs), min(rs), max(rs)


def fmt_p(p):
    return f"{p[0]:5.2f} ({p[1]:.2f}-{p[2]:.2f})" if p else f"{'-':>17}"


def main(path):
    runs = [json.loads(x) for x in open(path) if x.strip().startswith("{")]
    if not runs:
        print("no results")
        return 1
    labels = [c for c in ORDER if any(r["label"] == c for r in runs)]
    labels += sorted({r["label"] for r in runs} - set(labels))
    rows = {}
    for lab in labels:
        mine = [r for r in runs if r["label"] == lab]
        ok = [r for r in mine if "error" not in r]
        clean = [r for r in ok if not r.get("disturbed")]
        if not ok:
            why = next((r.get("error", "") for r in mine), "no runs")
            rows[lab] = {"error": why}
            continue
        use, mark = (clean, "") if clean else (ok, "*")

        def med(k):
            return statistics.median(r.get(k) or 0 for r in use)
        g = [r["payload_gbps"] for r in use]
        cps = [r["cycles_per_seg"] for r in use if r.get("cycles_per_seg")]
        notes = sorted({n for r in use for n in r.get("notes", [])})
        rows[lab] = {
            "gbps": statistics.median(g), "min": min(g), "max": max(g),
            "mpps": med("mpps"), "frame": med("mean_size"),
            "super": med("super_frac"), "acks": med("acks_kpps"),
            "cps": statistics.median(cps) if cps else None,
            "gen_busy": med("gen_busy"), "n": len(use),
            "inflight": med("inflight"),
            "disc": len(ok) - len(clean), "mark": mark,
            "plateau": all(r.get("plateau", True) for r in use),
            "byrep": {r["rep"]: r["payload_gbps"] for r in use},
            "offloads": use[0].get("offloads"), "notes": notes,
            "errors": len(mine) - len(ok),
        }
    ref = rows.get("ovs-tso")
    hdr = (f"{'contender':<11} {'Gbit/s':>7}  {'min-max':>11} "
           f"{'Mpps':>6} {'frame B':>7} {'super':>5} {'cyc/seg':>7} "
           f"{'gen':>4} {'n':>2} {'disc':>4}  {'offloads: -tso/-mtu':>19}  "
           f"{'/ovs-tso (paired)':>17}")
    print(hdr)
    print("-" * len(hdr))
    res = []
    for lab in labels:
        row = rows[lab]
        if "error" in row:
            print(f"{lab:<11} ERROR: {row['error'][:100]}")
            res.append(f"TCPRESULT contender={lab} status=error")
            continue
        gain = None
        if lab.endswith("-tso"):
            mtu = rows.get(lab[:-4] + "-mtu")
            if mtu and "byrep" in mtu:
                gain = paired(row["byrep"], mtu["byrep"])
        vs = (paired(row["byrep"], ref["byrep"])
              if ref and "byrep" in ref and lab != "ovs-tso" else None)
        flag = row["mark"] + ("" if row["plateau"] else "~")
        cps = f"{row['cps']:7.0f}" if row["cps"] else f"{'-':>7}"
        print(f"{lab:<11} {row['gbps']:7.2f}{flag:<2}"
              f"{row['min']:5.2f}-{row['max']:<5.2f} {row['mpps']:6.3f} "
              f"{row['frame']:7.0f} {row['super']:5.0%} {cps} "
              f"{row['gen_busy']:4.0%} {row['n']:>2} {row['disc']:>4}  "
              f"{fmt_p(gain):>19}  {fmt_p(vs):>17}"
              + (f"  [{'; '.join(row['notes'])}]" if row["notes"] else ""))

        def f(p):
            return f"{p[0]:.3f}" if p else "NA"
        res.append(
            f"TCPRESULT contender={lab} payload_gbps_median={row['gbps']:.3f} "
            f"payload_gbps_min={row['min']:.3f} "
            f"payload_gbps_max={row['max']:.3f} "
            f"frames_mpps={row['mpps']:.4f} mean_frame={row['frame']:.0f} "
            f"super_frac={row['super']:.3f} acks_kpps={row['acks']:.1f} "
            f"cycles_per_seg={row['cps'] or 0:.1f} "
            f"gen_busy={row['gen_busy']:.3f} "
            f"inflight_frames={row['inflight']:.0f} n={row['n']} "
            f"discarded={row['disc']} all_disturbed={int(bool(row['mark']))} "
            f"plateau={int(row['plateau'])} offloads={row['offloads']} "
            f"offload_gain_paired={f(gain)} vs_ovs_tso_paired={f(vs)}")
    print()
    print("Gbit/s = TCP payload received by the far endpoint (headers not "
          "counted), median of the clean windows; Mpps = data frames; "
          "frame B = mean frame; super = share of frames with more than "
          "one MSS of payload;")
    print("cyc/seg = the switch's polling-core cycles (MHz x CPU time) per "
          "1448 B of payload; gen = the generator's loop time spent moving "
          "frames (near 100 %: the generator, not the switch, may set the "
          "rate);")
    print("paired = median (min-max) over rounds of the ratio to the same "
          "round of the reference; '*' = every window disturbed; '~' = the "
          "rate still rose at the last ramp step.")
    print()

    def target(name, a, b, goal):
        ra, rb = rows.get(a), rows.get(b)
        if not ra or not rb or "byrep" not in ra or "byrep" not in rb:
            print(f"target ({name}): not measured ({a} or {b} missing)")
            return
        p = paired(ra["byrep"], rb["byrep"])
        if not p:
            print(f"target ({name}): not measured (no round with both)")
            return
        star = " (from disturbed windows)" if ra["mark"] or rb["mark"] else ""
        print(f"target ({name}): {a} / {b} = {p[0]:.2f} paired "
              f"({p[1]:.2f}-{p[2]:.2f}), medians "
              f"{ra['gbps'] / rb['gbps']:.2f}: "
              f"{'met' if p[0] >= goal else 'NOT met'}{star}")

    target("offloads >= 3 x without", "vhostd-tso", "vhostd-mtu", 3.0)
    target(">= OVS-DPDK with TSO", "vhostd-tso", "ovs-tso", 1.0)
    for m in ("tso", "mtu"):
        # --vhostd-alt: this build over the other, paired
        a, b = rows.get(f"vhostd-{m}"), rows.get(f"alt-{m}")
        p = (paired(a["byrep"], b["byrep"])
             if a and b and "byrep" in a and "byrep" in b else None)
        if p:
            print(f"A/B: vhostd-{m} / alt-{m} = {p[0]:.3f} paired "
                  f"({p[1]:.2f}-{p[2]:.2f})")
    print()
    print("\n".join(res))
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
