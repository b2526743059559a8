#!/usr/bin/env python3
"""Summarise scripts/bench.sh results (one JSON object per line).

Per contender and case (size, direction): median and min-max of Mpps over the
clean repetitions (disturbed ones are left out; if a case has no clean run the
disturbed ones are used and the row is marked '*'), median Gbit/s and cycles
per packet, and the ratio of the median to `wire` and to `ovs-normal` on the
same case.  Also the paired ratio: bench.sh measures every contender once per
repetition, back to back, so the median over repetitions of (this rep / the
reference's same rep) cancels the drift of a shared machine between
repetitions.  Prints a table, then one `RESULT key=value ...` line per row.
With --flows / --idle-ports results, the case also has the flow count and
the idle port count (column "case": f1024 = 1024 MAC pairs per direction,
i64 = 64 idle ports), and the rows show the switch's MAC table and, for
vhostd, the frames it flooded per frame forwarded (OVS: upcalls per frame).
With --queues / --sw-lcores (multiqueue) the case also has the queue pairs
per generator port (q4) and the switch's datapath lcores (l2), and each
row its rate over the same contender's with the fewest lcores / queues of
the run in the otherwise same case (x1.85 l1, x1.02 q1).
"""
import json
import statistics
import sys

ORDER = ["wire", "ovs-normal", "ovs-p2p", "vhostd-learning", "vhostd-xconnect",
         "vhostd-vlan",
         "alt-learning", "alt-xconnect"]


def size_key(s):
    return (1, 0) if s == "imix" else (0, int(s))


def case_of(r):
    # multiqueue: queues (4) and sw_lcores (5) after flows and idle ports
    return (r["size"], r["dir"], r.get("flows"), r.get("idle_ports"),
            r.get("queues"), r.get("sw_lcores"))


def case_name(c):
    parts = []
    if c[2] is not None:
        parts.append(f"f{c[2]}")
    if c[3] is not None:
        parts.append(f"i{c[3]}")
    if c[4] is not None:
        parts.append(f"q{c[4]}")
    if c[5] is not None:
        parts.append(f"l{c[5]}")
    return ",".join(parts) or "-"


# ---- multiqueue: a row against the same contender's with the fewest
# lcores (k = 5) or queues (k = 4) of the run, the rest of the case equal
def scaling(rows, lab, case, cases, k):
    if case[k] is None:
        return None
    base = min(c[k] for c in cases if c[k] is not None)
    if base == case[k]:
        return None
    ref = rows.get((lab, case[:k] + (base,) + case[k + 1:]))
    row = rows.get((lab, case))
    if not ref or not ref.get("mpps") or not row or not row.get("mpps"):
        return None
    return base, row["mpps"] / ref["mpps"]
# ---- end multiqueue


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
    cases = sorted({case_of(r) for r in runs},
                   key=lambda c: (c[2] or 0, c[3] or 0, c[4] or 0, c[5] or 0,
                                  size_key(c[0]), c[1] != "both"))
    # the case column only for runs with --flows, --idle-ports, --queues
    # or --sw-lcores
    extra = any(x is not None for c in cases for x in c[2:])
    labels = [c for c in ORDER if any(r["label"] == c for r in runs)]
    labels += sorted({r["label"] for r in runs} - set(labels))
    rows = {}
    for lab in labels:
        for case in cases:
            sel = [r for r in runs if r["label"] == lab and
                   case_of(r) == case and "error" not in r]
            # retries of one repetition: keep the final attempt only
            final = {}
            for r in sel:
                final[r.get("rep", 0)] = r
            reps = list(final.values())
            clean = [r for r in reps if not r["disturbed"]]
            skipped = [r for r in runs if r["label"] == lab and
                       case_of(r) == case and
                       r.get("skipped")]
            errors = [r for r in runs if r["label"] == lab and
                      case_of(r) == case and "error" in r
                      and not r.get("skipped")]
            if skipped and not reps:
                rows[(lab, case)] = {"skipped": skipped[0].get("why", ["?"])[0]}
                continue
            use, mark = (clean, "") if clean else (reps, "*")
            if not use:
                rows[(lab, case)] = {"error": (errors[0]["error"]
                                               if errors else "no runs")}
                continue
            mp = [r["mpps"] for r in use]
            byrep = {r.get("rep", 0): r["mpps"] for r in use}
            cpp = [r["cycles_per_pkt"] for r in use if r.get("cycles_per_pkt")]
            proc = [r["proc_cycles_per_pkt"] for r in use
                    if r.get("proc_cycles_per_pkt")]
            rows[(lab, case)] = {
                "mpps": statistics.median(mp), "min": min(mp), "max": max(mp),
                "gbps": statistics.median(r["gbps"] for r in use),
                "mean_size": statistics.median(r["mean_size"] for r in use),
                "cpp": statistics.median(cpp) if cpp else None,
                "proc": statistics.median(proc) if proc else None,
                "cpp_src": use[0].get("cycles_src", "-"),
                "n": len(use), "discarded": len(reps) - len(clean),
                "retries": len(sel) - len(reps), "mark": mark,
                "plateau": all(r.get("plateau", True) for r in use),
                "byrep": byrep,
                "last": statistics.median(r.get("mpps_last", r["mpps"])
                                          for r in use),
                "levels": sorted(r.get("level", 0) for r in use),
                # --flows: the switch's state (swstate.py), worst window
                "fdb": min((r["fdb_entries"] for r in use
                            if r.get("fdb_entries") is not None),
                           default=None),
                "flood": max((r["flood_frac"] for r in use
                              if "flood_frac" in r), default=None),
                "upcall": max((r["upcall_frac"] for r in use
                               if "upcall_frac" in r), default=None),
            }
    hdr = (f"{'contender':<16} {'size':>5} {'dir':<6} "
           + (f"{'case':<8} " if extra else "") + f"{'Mpps med':>9}  "
           f"{'min-max':>13} {'Gbit/s':>7} {'cyc/pkt':>7} {'proc':>5} {'n':>2} "
           f"{'disc':>4} {'/wire':>6} {'/ovsN':>6} {'paired /wire':>17} "
           f"{'paired /ovsN':>17} {'wire/proc':>9}")
    print(hdr)
    print("-" * len(hdr))
    lines = []
    for case in cases:
        for lab in labels:
            row = rows.get((lab, case))
            if row is None:
                continue
            size, d = case[:2]
            cs = f"{case_name(case):<8} " if extra else ""
            ck = ((f" flows={case[2]}" if case[2] is not None else "") +
                  (f" idle_ports={case[3]}" if case[3] is not None else "") +
                  (f" queues={case[4]}" if case[4] is not None else "") +
                  (f" sw_lcores={case[5]}" if case[5] is not None else ""))
            if "skipped" in row or "error" in row:
                what = row.get("skipped") or "ERROR: " + row["error"][:60]
                print(f"{lab:<16} {size:>5} {d:<6} {cs}{what}")
                lines.append(f"RESULT contender={lab} size={size} dir={d}{ck} "
                             f"status={'skipped' if 'skipped' in row else 'error'}")
                continue
            ratios, paired = [], []
            for ref in ("wire", "ovs-normal"):
                rr = rows.get((ref, case))
                if rr and rr.get("mpps"):
                    ratios.append(row["mpps"] / rr["mpps"])
                    pr = [v / rr["byrep"][k] for k, v in row["byrep"].items()
                          if rr["byrep"].get(k)]
                    paired.append((statistics.median(pr), min(pr), max(pr))
                                  if pr else None)
                else:
                    ratios.append(None)
                    paired.append(None)
            fp = lambda p: (f"{p[0]:5.3f} ({p[1]:.2f}-{p[2]:.2f})"
                            if p else f"{'-':>17}")
            fr = lambda x: f"{x:6.3f}" if x is not None else f"{'-':>6}"
            cpp = f"{row['cpp']:7.0f}" if row["cpp"] else f"{'-':>7}"
            prc = f"{row['proc']:5.0f}" if row["proc"] else f"{'-':>5}"
            rw = rows.get(("wire", case))
            # wire's processing cycles per packet over this contender's:
            # > 1 means cheaper per packet than the raw vhost PMD path
            pr_w = (rw["proc"] / row["proc"]
                    if rw and rw.get("proc") and row["proc"] else None)
            mm = f"{row['min']:.2f}-{row['max']:.2f}"
            flag = row["mark"] + ("" if row["plateau"] else "~")
            sw = ""
            if row.get("fdb") is not None:
                sw = f"  fdb {row['fdb']}"
                if row.get("flood") is not None:
                    sw += f" flooded/pkt {row['flood']:.4f}"
                if row.get("upcall") is not None:
                    sw += f" upcalls/pkt {row['upcall']:.4f}"
            # multiqueue: against the fewest lcores / queues
            scl = {k: scaling(rows, lab, case, cases, k) for k in (5, 4)}
            for k, t in ((5, "l"), (4, "q")):
                if scl[k]:
                    sw += f"  x{scl[k][1]:.2f} {t}{scl[k][0]}"
            print(f"{lab:<16} {size:>5} {d:<6} {cs}{row['mpps']:9.2f}{flag:<2} "
                  f"{mm:>12} {row['gbps']:7.2f} {cpp} {prc} {row['n']:>2} "
                  f"{row['discarded']:>4} {fr(ratios[0])} {fr(ratios[1])} "
                  f"{fp(paired[0]):>17} {fp(paired[1]):>17} "
                  f"{fr(pr_w):>9}{sw}")
            cpps = f"{row['cpp']:.1f}" if row["cpp"] else "NA"
            prcs = f"{row['proc']:.1f}" if row["proc"] else "NA"
            prws = f"{pr_w:.3f}" if pr_w else "NA"
            rat = [f"{x:.3f}" if x is not None else "NA" for x in ratios]
            prat = [f"{p[0]:.3f}" if p else "NA" for p in paired]
            lines.append(
                f"RESULT contender={lab} size={size} dir={d}{ck} "
                f"mpps_median={row['mpps']:.3f} mpps_min={row['min']:.3f} "
                f"mpps_max={row['max']:.3f} gbps_median={row['gbps']:.3f} "
                f"mean_frame={row['mean_size']:.1f} cycles_per_pkt={cpps} "
                f"cycles_src={row['cpp_src']} proc_cycles_per_pkt={prcs} "
                f"wire_proc_over_this={prws} n={row['n']} "
                f"discarded={row['discarded']} "
                f"all_disturbed={int(bool(row['mark']))} "
                f"plateau={int(row['plateau'])} "
                f"mpps_last_level_median={row['last']:.3f} "
                f"levels={','.join(map(str, row['levels']))} "
                f"vs_wire={rat[0]} vs_ovs_normal={rat[1]} "
                f"vs_wire_paired={prat[0]} vs_ovs_normal_paired={prat[1]}"
                + (f" fdb_entries={row['fdb']}" if row.get("fdb") is not None
                   else "")
                + (f" flood_frac={row['flood']:.4f}"
                   if row.get("flood") is not None else "")
                + (f" upcall_frac={row['upcall']:.4f}"
                   if row.get("upcall") is not None else "")
                + "".join(f" vs_{n}{scl[k][0]}={scl[k][1]:.3f}"
                          for k, n in ((5, "sw_lcores"), (4, "queues"))
                          if scl[k]))
        print()
    print("Mpps = packets/s forwarded by the switch, both directions summed; "
          "Gbit/s = frame bytes without FCS;")
    print("'*' = every repetition was disturbed (shown anyway); "
          "'~' = rate still rose at the last injection step; "
          "disc = disturbed reps left out;")
    print("/wire, /ovsN = ratio of the medians; paired = median (min-max) "
          "over repetitions of the ratio to the same repetition of the "
          "reference;")
    print("proc = the switch's own TSC cycles per packet in polling "
          "iterations that moved packets, whole run (vhostd busy_cycles, "
          "OVS pmd-stats-show, testpmd --record-core-cycles); "
          "wire/proc = wire's proc over this row's (> 1: cheaper).")
    if any(c[2] is not None or c[3] is not None for c in cases):
        print("case: fN = N MAC pairs per direction replayed from pcaps "
              "(--flows), iN = N idle vhost-user ports on the bridge "
              "(--idle-ports); fdb = the switch's MAC entries (fewest "
              "of any window), flooded/pkt (vhostd) and upcalls/pkt (OVS) "
              "between the probes around a window over its packets "
              "(most of any window).")
    if any(c[4] is not None or c[5] is not None for c in cases):
        print("case: qN = N queue pairs per generator port, traffic "
              "injected on every queue (--queues; --mq-gen says how: "
              "see the header); lK = K switch datapath lcores "
              "(--sw-lcores); xR lK / qN = this row's median over the same "
              "contender's with K lcores / N queues, the rest of the case "
              "equal (medians; different sessions).")
    print()
    for l in lines:
        print(l)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
