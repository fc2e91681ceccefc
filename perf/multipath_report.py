"""Renders perf/multipath.sh's JSON as the markdown table (also re-runnable on a saved JSON)."""
import json, os, statistics, sys
data = json.load(open(sys.argv[1]))
out = []
def job_sum(r, key):
    return sum(j[key]["iops"] for j in r["jobs"])
def lat(r, pct):
    j = r["jobs"][0]["read"]["clat_ns"]["percentile"]
    return j.get(pct, 0) / 1000
out.append(f"# Multipath benchmarks ({sys.argv[3]} s runs, {sys.argv[4]} alternated pairs)\n")
gw_idle, bench_idle = os.environ.get("GW_IDLE", "adaptive"), os.environ.get("IDLE", "adaptive")
stalls = os.environ.get("STALLS", "sigkill blackhole")
out.append(f"Gateways A and B on core 0 (malloc, --idle {gw_idle}), corepath-bench on core 1 (--idle {bench_idle}),")
out.append("NVMe/TCP in a private network namespace. Command: `GW_IDLE=" + gw_idle + " IDLE=" + bench_idle
           + " STALLS='" + stalls + "' perf/multipath.sh " + sys.argv[4] + " " + sys.argv[3] + "`.\n")
out.append("## Overhead: 4K randread, iodepth 32\n")
out.append("| pair | single path IOPS | p99 us | multipath (2 paths, active_passive) IOPS | p99 us | ratio |")
out.append("|---|---|---|---|---|---|")
singles, multis = [], []
by_pair = {}
for row in data["overhead"]:
    by_pair.setdefault(row["pair"], {})[row["mode"]] = row["result"]
for p in sorted(by_pair):
    s, m = by_pair[p]["single"], by_pair[p]["multipath"]
    si, mi = job_sum(s, "read"), job_sum(m, "read")
    singles.append(si); multis.append(mi)
    out.append(f"| {p} | {si:,.0f} | {lat(s,'99.000000'):.1f} | {mi:,.0f} | {lat(m,'99.000000'):.1f} | {mi/si:.3f} |")
ms, mm = statistics.mean(singles), statistics.mean(multis)
ratios = [m / s for s, m in zip(singles, multis)]
out.append(f"| mean | {ms:,.0f} | | {mm:,.0f} | | {mm/ms:.3f} |")
out.append(f"| median of the pair ratios | | | | | {statistics.median(ratios):.3f} |")
out.append(f"\nMultipath overhead: {100*(1-statistics.median(ratios)):.1f}% by the median pair, "
           f"{100*(1-mm/ms):.1f}% by the means (negative = multipath faster). The machine is shared: one noisy")
out.append("pair moves the mean by several percent; the median of back-to-back pairs is the robust figure.\n")
if not data["stalls"]:
    text = "\n".join(out) + "\nFailover stalls: not run in this run (SKIP_STALLS=1).\n"
    open(sys.argv[2], "w").write(text)
    print(text)
    sys.exit(0)
out.append("## Failover stall (randrw 4K QD32, gateway A faulted 3 s into the run)\n")
out.append("Longest completion gap: the longest time with no completion at all (reads resume on B at once after")
out.append("detection). Max latency: the slowest IO in the event's window, i.e. the writes held until A's old")
out.append("association is certainly dead (up to two keep-alive timeouts, docs/multipath.md). Settings: -l -1 -o 1.\n")
out.append("| fault | keep-alive | runs: longest completion gap ms | median ms | max latency ms (median) | IO errors |")
out.append("|---|---|---|---|---|---|")
groups = {}
for row in data["stalls"]:
    groups.setdefault((row["fault"], row["kato_ms"]), []).append(row["result"])
for (fault, kato), results in groups.items():
    gaps, lats, errs = [], [], 0
    for r in results:
        mp = r.get("multipath", {})
        ev = [e for e in mp.get("events", []) if e["path"].startswith("127.0.0.2") and e["what"].startswith("failed")]
        errs += mp.get("io_errors", 0)
        if ev:
            gaps.append(ev[0]["longest_gap_ms"]); lats.append(ev[0]["max_latency_ms"])
        else:
            gaps.append(float("nan")); lats.append(float("nan"))
    med = statistics.median(gaps)
    medl = statistics.median(lats)
    kato_s = "10 s (default)" if kato == "default" else f"{kato} ms"
    out.append(f"| {fault} | {kato_s} | {', '.join(f'{g:.0f}' for g in gaps)} | {med:.0f} | {medl:.0f} | {errs} |")
text = "\n".join(out) + "\n"
open(sys.argv[2], "w").write(text)
print(text)
