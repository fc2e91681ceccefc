#!/usr/bin/env bash
# Issue 12: the reactors' idle policy (busy, adaptive, interrupt), side by side
# in one run. corepath-tgt pinned to core 0 (malloc bdev, 1 GiB, 4096-byte
# blocks), corepath-bench pinned to core 1, NVMe/TCP on 127.0.0.2, the SAME
# --idle mode on gateway and bench. The gateway is restarted for every mode
# (only one gateway alive at a time: an idle busy-polling one would steal core
# 0), and the namespace is written once after each start so that reads return
# written blocks.
#
# Part 1, per mode, the modes alternated REPEAT times (busy, adaptive,
# interrupt, busy, ...), medians reported:
#   - idle CPU: the gateway alone with its listener, IDLE_SECS s, % of a core;
#   - 4K randread QD1: IOPS, p50/p99 completion latency;
#   - 4K randread QD32 and QD128: IOPS;
#   - 4K randread QD32 paced at --rate_iops 10000;
#   - CPU per 1,000 IOPS (QD1 and paced): gateway = utime+stime of the
#     corepath-tgt process (/proc/PID/stat before and after the bench), host =
#     user+sys of the corepath-bench process (/usr/bin/time), each divided by
#     the bench's wall time and by IOPS/1000: % of a core per 1K IOPS.
# Part 2, in busy and adaptive: QD1 4K randread p50 with no other connection
# and with 1,000 idle connections held by corepath-idle-conns (500 that never
# send an ICReq, opened again whenever the gateway closes them at its Connect
# deadline, and 500 with an admin queue Connected, the controller enabled, and
# a Keep Alive every 10 s), alternated (none, 1000, none, 1000, ...) REPEAT times.
#
# Usage: perf/idle.sh [RUNTIME_SECS]        (default 10)
#        REPEAT=5 IDLE_SECS=10 PORT=4420 IDLE_SPIN_US=50 perf/idle.sh 10
#        (IDLE_SPIN_US unset: both sides' default --idle-spin-us.)
# Writes perf/results/<UTC date>-idle.md and .json, and prints the tables.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNTIME="${1:-10}"
REPEAT="${REPEAT:-3}"
IDLE_SECS="${IDLE_SECS:-10}"
ADDR=127.0.0.2
PORT="${PORT:-4420}"
NQN=nqn.2021-06.io.spdk:ctc_rbd0
IDLE_CONNS_SILENT=500
IDLE_CONNS_LOGGED_IN=500
PACED_IOPS=10000
OUT_DIR=perf/results
STAMP="$(date -u +%Y-%m-%dT%H%M)"
WORK="$(mktemp -d /tmp/corepath-idle.XXXXXX)"
SOCK="$WORK/tgt.sock"
mkdir -p "$OUT_DIR"
case "$RUNTIME$REPEAT$IDLE_SECS" in *[!0-9]*) echo "RUNTIME, REPEAT and IDLE_SECS must be integers" >&2; exit 2 ;; esac
[ "$REPEAT" -ge 1 ] && [ "$REPEAT" -le 50 ] && [ "$RUNTIME" -ge 1 ] && [ "$RUNTIME" -le 600 ] \
  || { echo "need 1 <= REPEAT <= 50 and 1 <= RUNTIME <= 600" >&2; exit 2; }

cargo build --release -p corepath-perf -p corepath-rpc -p corepath-bench --bins >&2
BIN=target/release
R="$BIN/corepath-rpc -s $SOCK"
TRID="trtype:tcp adrfam:ipv4 traddr:$ADDR trsvcid:$PORT subnqn:$NQN"
SPIN_TGT=(); SPIN_BENCH=()
if [ -n "${IDLE_SPIN_US:-}" ]; then SPIN_TGT=(--idle-spin-us "$IDLE_SPIN_US"); SPIN_BENCH=(--idle_spin_us "$IDLE_SPIN_US"); fi

TGT_PID=
HOLDER_PID=
stop_holder() {
  if [ -n "$HOLDER_PID" ] && kill -0 "$HOLDER_PID" 2>/dev/null; then
    kill "$HOLDER_PID" 2>/dev/null || true
  fi
  [ -z "$HOLDER_PID" ] || wait "$HOLDER_PID" 2>/dev/null || true
  HOLDER_PID=
}
stop_gateway() {
  if [ -n "$TGT_PID" ] && kill -0 "$TGT_PID" 2>/dev/null; then
    kill "$TGT_PID" 2>/dev/null || true
    # Bounded: 10 s for an orderly exit, then SIGKILL.
    for _ in $(seq 100); do kill -0 "$TGT_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$TGT_PID" 2>/dev/null || true
  fi
  [ -z "$TGT_PID" ] || wait "$TGT_PID" 2>/dev/null || true
  TGT_PID=
  rm -f "$SOCK"
}
cleanup() {
  stop_holder
  stop_gateway
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# utime + stime of a process (all its threads), in clock ticks.
cpu_ticks() {
  local s
  s=$(cat "/proc/$1/stat")
  s=${s##*) }
  # shellcheck disable=SC2086
  set -- $s
  echo $(( ${12} + ${13} ))
}
HZ=$(getconf CLK_TCK)
now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.3f\", $1 }"; }  # e.g. calc "(5 - 2) / 100" -> 0.030

start_gateway() { # mode
  local mode=$1
  "$BIN/corepath-tgt" -m 0x1 -r "$SOCK" --idle "$mode" "${SPIN_TGT[@]}" 2>>"$WORK/tgt-$mode.log" &
  TGT_PID=$!
  for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
  [ -S "$SOCK" ] || { echo "corepath-tgt did not start (see $WORK/tgt-$mode.log)" >&2; cat "$WORK/tgt-$mode.log" >&2; exit 1; }
  $R nvmf_create_transport -t TCP -m 64 >/dev/null
  $R bdev_malloc_create -b Malloc0 1024 4096 >/dev/null
  $R nvmf_create_subsystem "$NQN" -a -s SPDK_BDEV_0 -i 1 -I 32760 >/dev/null
  $R nvmf_subsystem_add_ns "$NQN" Malloc0 >/dev/null
  $R nvmf_subsystem_add_listener "$NQN" -t tcp -a "$ADDR" -s "$PORT" >/dev/null
}
fill() { # mode: write the namespace once so that reads return written blocks
  "$BIN/corepath-bench" --cpumask 0x2 --idle "$1" "${SPIN_BENCH[@]}" --trid "$TRID" --rw write --bs 128k \
    --iodepth 16 --size 1g --runtime 30 --output-format json >/dev/null 2>>"$WORK/bench.log" || true
}
# Waits (bounded, 10 s) until the subsystem has no controller left.
wait_no_controllers() {
  local n
  for _ in $(seq 100); do
    n=$($R nvmf_subsystem_get_controllers "$NQN" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
    [ "$n" = 0 ] && return 0
    sleep 0.1
  done
  echo "warning: $n controllers still there after 10 s" >&2
}

JSON_RUNS="$WORK/runs.json"
echo "[" > "$JSON_RUNS"
first=1
emit() { # one JSON object
  [ $first -eq 1 ] || echo "," >> "$JSON_RUNS"
  first=0
  printf '%s\n' "$1" >> "$JSON_RUNS"
}

# One bench run with CPU accounting; emits a record with the bench's JSON.
bench() { # part round mode name conns bench-args...
  local part=$1 round=$2 mode=$3 name=$4 conns=$5
  shift 5
  local g0 g1 j t
  wait_no_controllers
  g0=$(cpu_ticks "$TGT_PID")
  /usr/bin/time -f '%e %U %S' -o "$WORK/time" \
    "$BIN/corepath-bench" --cpumask 0x2 --idle "$mode" "${SPIN_BENCH[@]}" --trid "$TRID" --rw randread --bs 4k \
    --runtime "$RUNTIME" --output-format json "$@" > "$WORK/bench.json" 2>>"$WORK/bench.log" \
    || { echo "corepath-bench failed ($part $mode $name); last of $WORK/bench.log:" >&2; tail -5 "$WORK/bench.log" >&2; exit 1; }
  g1=$(cpu_ticks "$TGT_PID")
  t=$(tail -1 "$WORK/time")
  j=$(cat "$WORK/bench.json")
  emit "$(printf '{"part":"%s","round":%s,"mode":"%s","name":"%s","idle_conns":%s,"wall_s":%s,"host_user_s":%s,"host_sys_s":%s,"gw_cpu_s":%s,"result":%s}' \
    "$part" "$round" "$mode" "$name" "$conns" $t "$(calc "($g1 - $g0) / $HZ")" "$j")"
}

MODES=(busy adaptive interrupt)
# Part 1.
for round in $(seq "$REPEAT"); do
  for mode in "${MODES[@]}"; do
    echo "round $round/$REPEAT: $mode" >&2
    start_gateway "$mode"
    sleep 1
    a0=$(now); c0=$(cpu_ticks "$TGT_PID")
    sleep "$IDLE_SECS"
    a1=$(now); c1=$(cpu_ticks "$TGT_PID")
    reactors=$($R framework_get_reactors)
    emit "$(printf '{"part":"idle_cpu","round":%s,"mode":"%s","secs":%s,"gw_cpu_s":%s,"reactors":%s}' \
      "$round" "$mode" "$(calc "$a1 - $a0")" "$(calc "($c1 - $c0) / $HZ")" "$reactors")"
    fill "$mode"
    bench modes "$round" "$mode" qd1 0 --iodepth 1
    bench modes "$round" "$mode" qd32 0 --iodepth 32
    bench modes "$round" "$mode" qd128 0 --iodepth 128
    bench modes "$round" "$mode" paced 0 --iodepth 32 --rate_iops "$PACED_IOPS"
    stop_gateway
  done
done

# Part 2.
HOLD_SECS=$((RUNTIME + 120))
for mode in busy adaptive; do
  echo "idle connections: $mode" >&2
  start_gateway "$mode"
  fill "$mode"
  for round in $(seq "$REPEAT"); do
    bench idle_conns "$round" "$mode" qd1 0 --iodepth 1
    taskset -c 1 "$BIN/corepath-idle-conns" --traddr "$ADDR" --trsvcid "$PORT" --subnqn "$NQN" \
      --silent "$IDLE_CONNS_SILENT" --logged-in "$IDLE_CONNS_LOGGED_IN" --enable --seconds "$HOLD_SECS" \
      > "$WORK/holder.out" 2>>"$WORK/holder.log" &
    HOLDER_PID=$!
    # Bounded: 60 s for all of them to be open.
    for _ in $(seq 600); do
      grep -q '^holding' "$WORK/holder.out" && break
      kill -0 "$HOLDER_PID" 2>/dev/null || break
      sleep 0.1
    done
    grep -q '^holding' "$WORK/holder.out" \
      || { echo "corepath-idle-conns did not open its connections:" >&2; tail -5 "$WORK/holder.log" >&2; exit 1; }
    sleep 1
    ctrls=$($R nvmf_subsystem_get_controllers "$NQN" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
    # The bench's own controller must not wait for the holder's to go: bench without wait_no_controllers.
    g0=$(cpu_ticks "$TGT_PID")
    /usr/bin/time -f '%e %U %S' -o "$WORK/time" \
      "$BIN/corepath-bench" --cpumask 0x2 --idle "$mode" "${SPIN_BENCH[@]}" --trid "$TRID" --rw randread --bs 4k \
      --runtime "$RUNTIME" --output-format json --iodepth 1 > "$WORK/bench.json" 2>>"$WORK/bench.log" \
      || { echo "corepath-bench failed (idle connections, $mode); last of $WORK/bench.log:" >&2; tail -5 "$WORK/bench.log" >&2; exit 1; }
    g1=$(cpu_ticks "$TGT_PID")
    stop_holder
    held=$(grep '^held' "$WORK/holder.out" || echo "no summary")
    emit "$(printf '{"part":"idle_conns","round":%s,"mode":"%s","name":"qd1","idle_conns":%s,"controllers_during":%s,"holder":"%s","wall_s":%s,"host_user_s":%s,"host_sys_s":%s,"gw_cpu_s":%s,"result":%s}' \
      "$round" "$mode" "$((IDLE_CONNS_SILENT + IDLE_CONNS_LOGGED_IN))" "$ctrls" "$held" $(tail -1 "$WORK/time") \
      "$(calc "($g1 - $g0) / $HZ")" "$(cat "$WORK/bench.json")")"
  done
  stop_gateway
done
echo "]" >> "$JSON_RUNS"

JSON="$OUT_DIR/$STAMP-idle.json"
MD="$OUT_DIR/$STAMP-idle.md"
python3 - "$JSON_RUNS" "$JSON" "$MD" "$RUNTIME" "$REPEAT" "$IDLE_SECS" "$PORT" "${IDLE_SPIN_US:-}" <<'PY'
import json, statistics, sys, platform, subprocess
runs = json.load(open(sys.argv[1])); out_json, out_md = sys.argv[2], sys.argv[3]
runtime, repeat, idle_secs, port, spin = sys.argv[4], int(sys.argv[5]), sys.argv[6], sys.argv[7], sys.argv[8]
MODES = ["busy", "adaptive", "interrupt"]
med = lambda xs: statistics.median(xs) if xs else float("nan")

def rd(r):
    return r["result"]["jobs"][0]["read"]
def iops(r):
    return rd(r)["iops"]
def pct(r, p):
    return rd(r)["clat_ns"]["percentile"][p] / 1000
def cpu_per_kiops(r, who):  # % of a core per 1,000 IOPS
    cpu = r["gw_cpu_s"] if who == "gw" else r["host_user_s"] + r["host_sys_s"]
    return 100 * cpu / r["wall_s"] / (iops(r) / 1000) if iops(r) else float("nan")
def errors(rs):
    return sum(r["result"]["jobs"][0]["error"] for r in rs)
def sel(part, mode, name=None, conns=None):
    return [r for r in runs if r["part"] == part and r["mode"] == mode and (name is None or r["name"] == name)
            and (conns is None or r["idle_conns"] == conns)]

summary = {}
for m in MODES:
    s = {}
    idle = sel("idle_cpu", m)
    s["idle_cpu_pct"] = med([100 * r["gw_cpu_s"] / r["secs"] for r in idle])
    q1 = sel("modes", m, "qd1")
    s["qd1_iops"] = med([iops(r) for r in q1]); s["qd1_p50_us"] = med([pct(r, "50.000000") for r in q1])
    s["qd1_p99_us"] = med([pct(r, "99.000000") for r in q1])
    s["qd1_gw_cpu_pct_per_kiops"] = med([cpu_per_kiops(r, "gw") for r in q1])
    s["qd1_host_cpu_pct_per_kiops"] = med([cpu_per_kiops(r, "host") for r in q1])
    for qd in ("qd32", "qd128"):
        s[f"{qd}_iops"] = med([iops(r) for r in sel("modes", m, qd)])
    pc = sel("modes", m, "paced")
    s["paced_iops"] = med([iops(r) for r in pc])
    s["paced_p50_us"] = med([pct(r, "50.000000") for r in pc])
    s["paced_gw_cpu_pct_per_kiops"] = med([cpu_per_kiops(r, "gw") for r in pc])
    s["paced_host_cpu_pct_per_kiops"] = med([cpu_per_kiops(r, "host") for r in pc])
    s["errors"] = errors(sel("modes", m))
    summary[m] = s
conns = {}
for m in ("busy", "adaptive"):
    rs = sel("idle_conns", m)
    none = [r for r in rs if r["idle_conns"] == 0]; some = [r for r in rs if r["idle_conns"] > 0]
    conns[m] = {"none_p50_us": med([pct(r, "50.000000") for r in none]),
                "none_iops": med([iops(r) for r in none]),
                "with_p50_us": med([pct(r, "50.000000") for r in some]),
                "with_iops": med([iops(r) for r in some]),
                "controllers_during": [r.get("controllers_during") for r in some],
                "holder": [r.get("holder") for r in some],
                "errors": errors(rs)}

def f0(x): return "-" if x != x else f"{x:,.0f}"
def f1(x): return "-" if x != x else f"{x:.1f}"
def f2(x): return "-" if x != x else f"{x:.2f}"
def verdict(ok): return "**met**" if ok else "**missed**"

spin_tgt = f" --idle-spin-us {spin}" if spin else ""
spin_bench = f" --idle_spin_us {spin}" if spin else ""
trid = f"trtype:tcp adrfam:ipv4 traddr:127.0.0.2 trsvcid:{port} subnqn:nqn.2021-06.io.spdk:ctc_rbd0"
bench = f"target/release/corepath-bench --cpumask 0x2 --idle MODE{spin_bench} --trid '{trid}' --rw randread --bs 4k --runtime {runtime} --output-format json"
L = []
L += ["# Reactor idle policy: busy, adaptive, interrupt (issue 12)", "",
      f"corepath-tgt on core 0 (malloc bdev, 1 GiB, 4096-byte blocks, restarted per mode, written once after each start), "
      f"corepath-bench on core 1, NVMe/TCP on 127.0.0.2:{port}, the same `--idle` mode on both sides; "
      f"{runtime} s per run, the modes alternated {repeat} times (busy, adaptive, interrupt, busy, ...), medians shown.",
      f"Machine: {platform.node()} ({subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores), "
      "shared and noisy: compare medians of one run, not across runs.", "",
      f"Command: `{'REPEAT=' + str(repeat) + ' ' if repeat != 3 else ''}{'IDLE_SECS=' + idle_secs + ' ' if idle_secs != '10' else ''}"
      f"{'PORT=' + port + ' ' if port != '4420' else ''}{'IDLE_SPIN_US=' + spin + ' ' if spin else ''}perf/idle.sh {runtime}`", "",
      "## Per mode (medians)", "",
      "CPU per 1K IOPS = CPU time of the process during the bench / the bench's wall time / (IOPS / 1000), in % of a core: "
      "gateway = utime+stime of corepath-tgt from /proc/PID/stat, host = user+sys of corepath-bench from /usr/bin/time. "
      f"Idle CPU: the gateway alone with its listener (no connection) for {idle_secs} s. Paced: QD32 with `--rate_iops {10000}`.", "",
      "| mode | idle CPU % | QD1 IOPS | QD1 p50 us | QD1 p99 us | QD1 CPU/1K IOPS gw % | host % | QD32 IOPS | QD128 IOPS | paced IOPS | paced p50 us | paced CPU/1K IOPS gw % | host % | errors |",
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
for m in MODES:
    s = summary[m]
    L.append(f"| {m} | {f1(s['idle_cpu_pct'])} | {f0(s['qd1_iops'])} | {f1(s['qd1_p50_us'])} | {f1(s['qd1_p99_us'])} | "
             f"{f2(s['qd1_gw_cpu_pct_per_kiops'])} | {f2(s['qd1_host_cpu_pct_per_kiops'])} | {f0(s['qd32_iops'])} | "
             f"{f0(s['qd128_iops'])} | {f0(s['paced_iops'])} | {f1(s['paced_p50_us'])} | "
             f"{f2(s['paced_gw_cpu_pct_per_kiops'])} | {f2(s['paced_host_cpu_pct_per_kiops'])} | {s['errors']} |")
b, a = summary["busy"], summary["adaptive"]
L += ["", "## Goals", "", "| goal | busy | adaptive | adaptive / busy | |", "|---|---|---|---|---|"]
for qd in ("qd32", "qd128"):
    r = a[f"{qd}_iops"] / b[f"{qd}_iops"] if b[f"{qd}_iops"] else float("nan")
    L.append(f"| adaptive {qd.upper()} IOPS within 3% of busy | {f0(b[qd + '_iops'])} | {f0(a[qd + '_iops'])} | {r:.3f} | {verdict(r >= 0.97)} |")
r = a["qd1_p50_us"] / b["qd1_p50_us"] if b["qd1_p50_us"] else float("nan")
L.append(f"| adaptive QD1 p50 within 10% of busy | {f1(b['qd1_p50_us'])} us | {f1(a['qd1_p50_us'])} us | {r:.3f} | {verdict(r <= 1.10)} |")
L += ["", f"## QD1 with 1,000 idle connections ({500} that never send an ICReq, opened again when the gateway closes them, {500} with a Connected admin queue, the controller enabled, and a Keep Alive every 10 s)", "",
      "Per mode one gateway, runs alternated (none, 1000, none, 1000, ...), medians. "
      "Goal: QD1 p50 with 1,000 idle connections within 10% of the figure with none.", "",
      "| mode | p50 us, none | p50 us, 1000 idle | ratio | goal | IOPS none | IOPS 1000 idle | controllers during the runs | errors |",
      "|---|---|---|---|---|---|---|---|---|"]
for m in ("busy", "adaptive"):
    c = conns[m]
    r = c["with_p50_us"] / c["none_p50_us"] if c["none_p50_us"] else float("nan")
    L.append(f"| {m} | {f1(c['none_p50_us'])} | {f1(c['with_p50_us'])} | {r:.3f} | {verdict(r <= 1.10)} | {f0(c['none_iops'])} | "
             f"{f0(c['with_iops'])} | {', '.join(str(x) for x in c['controllers_during'])} | {c['errors']} |")
L += ["", "Holder summaries (corepath-idle-conns, per run with idle connections):", ""]
for m in ("busy", "adaptive"):
    for h in conns[m]["holder"]:
        L.append(f"- {m}: {h}")
L += ["", "## Every run", "", "| part | round | mode | run | idle conns | IOPS | p50 us | p99 us | wall s | gw CPU s | host CPU s |",
      "|---|---|---|---|---|---|---|---|---|---|---|"]
for r in runs:
    if r["part"] == "idle_cpu":
        L.append(f"| idle_cpu | {r['round']} | {r['mode']} | gateway alone | 0 | | | | {r['secs']:.1f} | {r['gw_cpu_s']:.2f} | |")
    else:
        L.append(f"| {r['part']} | {r['round']} | {r['mode']} | {r['name']} | {r['idle_conns']} | {f0(iops(r))} | "
                 f"{f1(pct(r, '50.000000'))} | {f1(pct(r, '99.000000'))} | {r['wall_s']:.2f} | {r['gw_cpu_s']:.2f} | "
                 f"{r['host_user_s'] + r['host_sys_s']:.2f} |")
L += ["", "## Exact commands", "", "```",
      f"target/release/corepath-tgt -m 0x1 -r SOCK --idle MODE{spin_tgt}",
      "corepath-rpc -s SOCK nvmf_create_transport -t TCP -m 64",
      "corepath-rpc -s SOCK bdev_malloc_create -b Malloc0 1024 4096",
      "corepath-rpc -s SOCK nvmf_create_subsystem nqn.2021-06.io.spdk:ctc_rbd0 -a -s SPDK_BDEV_0 -i 1 -I 32760",
      "corepath-rpc -s SOCK nvmf_subsystem_add_ns nqn.2021-06.io.spdk:ctc_rbd0 Malloc0",
      f"corepath-rpc -s SOCK nvmf_subsystem_add_listener nqn.2021-06.io.spdk:ctc_rbd0 -t tcp -a 127.0.0.2 -s {port}",
      f"# idle CPU: sleep {idle_secs}, utime+stime of corepath-tgt before and after",
      f"target/release/corepath-bench --cpumask 0x2 --idle MODE{spin_bench} --trid '{trid}' --rw write --bs 128k --iodepth 16 --size 1g --runtime 30 --output-format json   # fill",
      f"/usr/bin/time -f '%e %U %S' {bench} --iodepth 1",
      f"/usr/bin/time -f '%e %U %S' {bench} --iodepth 32",
      f"/usr/bin/time -f '%e %U %S' {bench} --iodepth 128",
      f"/usr/bin/time -f '%e %U %S' {bench} --iodepth 32 --rate_iops 10000",
      f"taskset -c 1 target/release/corepath-idle-conns --traddr 127.0.0.2 --trsvcid {port} --subnqn nqn.2021-06.io.spdk:ctc_rbd0 --silent 500 --logged-in 500 --enable --seconds {int(runtime) + 120}   # SIGTERM after the QD1 run",
      "```", ""]
text = "\n".join(L)
open(out_md, "w").write(text)
json.dump({"runtime_s": int(runtime), "repeat": repeat, "idle_secs": int(idle_secs), "port": int(port),
           "idle_spin_us": int(spin) if spin else None, "machine": {"node": platform.node(), "nproc": subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()},
           "summary": summary, "idle_conns_summary": conns, "runs": runs}, open(out_json, "w"), indent=1)
print(text)
PY
echo "wrote $MD and $JSON" >&2
