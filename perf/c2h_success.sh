#!/usr/bin/env bash
# Read IOPS with and without the C2HData SUCCESS optimisation
# (`nvmf_create_transport` c2h_success, on by default; `corepath-rpc
# nvmf_create_transport -o` turns it off), side by side in one run:
# corepath-tgt pinned to core 0 (malloc bdev), corepath-bench pinned to core 1,
# NVMe/TCP on 127.0.0.2, 4K random reads at QD32 and QD128, the two settings
# alternated ROUNDS times so that the machine's drift hits both alike. The
# gateway is restarted for each run (one transport per type), with the same
# data written first.
#
# Usage: perf/c2h_success.sh [RUNTIME_SECS] [ROUNDS]   (default 5, 3)
# Writes perf/results/<UTC date>-c2h-success.md and .json, and prints the table.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNTIME="${1:-5}"
ROUNDS="${2:-3}"
ADDR=127.0.0.2
PORT=4420
NQN=nqn.2021-06.io.spdk:ctc_rbd0
SOCK="$(mktemp -u /tmp/corepath-c2h.XXXXXX.sock)"
OUT_DIR=perf/results
STAMP="$(date -u +%Y-%m-%dT%H%M)"
mkdir -p "$OUT_DIR"

cargo build --release -p corepath-rpc -p corepath-bench --bins >&2
BIN=target/release
TRID="trtype:tcp adrfam:ipv4 traddr:$ADDR trsvcid:$PORT subnqn:$NQN"

TGT_PID=
stop_gateway() {
  if [ -n "$TGT_PID" ] && kill -0 "$TGT_PID" 2>/dev/null; then
    kill "$TGT_PID"; wait "$TGT_PID" 2>/dev/null || true
  fi
  TGT_PID=
  rm -f "$SOCK"
}
trap stop_gateway EXIT

start_gateway() { # on|off
  "$BIN/corepath-tgt" -m 0x1 -r "$SOCK" 2>>/tmp/corepath-c2h-tgt.log &
  TGT_PID=$!
  for _ in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
  local R="$BIN/corepath-rpc -s $SOCK"
  if [ "$1" = on ]; then
    $R nvmf_create_transport -t TCP -m 64 >/dev/null
  else
    $R nvmf_create_transport -t TCP -m 64 -o >/dev/null
  fi
  $R bdev_malloc_create -b Malloc0 256 4096 >/dev/null
  $R nvmf_create_subsystem "$NQN" -a -s SPDK_BDEV_0 -i 1 -I 32760 >/dev/null
  $R nvmf_subsystem_add_ns "$NQN" Malloc0 >/dev/null
  $R nvmf_subsystem_add_listener "$NQN" -t tcp -a "$ADDR" -s "$PORT" >/dev/null
  # Reads of written blocks, not of never-written ones.
  "$BIN/corepath-bench" --cpumask 0x2 --trid "$TRID" --rw write --bs 128k --iodepth 16 --size 256m \
    --runtime 2 --output-format json >/dev/null 2>&1 || true
}

JSON="$OUT_DIR/$STAMP-c2h-success.json"
echo "[" > "$JSON"
first=1
for round in $(seq "$ROUNDS"); do
  for qd in 32 128; do
    for c2h in on off; do
      start_gateway "$c2h"
      j=$("$BIN/corepath-bench" --cpumask 0x2 --trid "$TRID" --rw randread --bs 4k --iodepth "$qd" \
          --size 256m --runtime "$RUNTIME" --output-format json 2>/dev/null)
      stop_gateway
      [ $first -eq 1 ] || echo "," >> "$JSON"
      first=0
      printf '{"round":%s,"iodepth":%s,"c2h_success":"%s","result":%s}\n' "$round" "$qd" "$c2h" "$j" >> "$JSON"
    done
  done
done
echo "]" >> "$JSON"

python3 - "$JSON" "$OUT_DIR/$STAMP-c2h-success.md" "$RUNTIME" "$ROUNDS" <<'PY'
import json, statistics, sys, platform, subprocess
rows = json.load(open(sys.argv[1])); out = sys.argv[2]; runtime = sys.argv[3]; rounds = sys.argv[4]
def cell(r):
    job = r["result"]["jobs"][0]; d = job["read"]; pct = d["clat_ns"]["percentile"]
    return d["iops"], d["clat_ns"]["mean"] / 1000, pct["50.000000"] / 1000, pct["99.000000"] / 1000, job["error"]
lines = ["| round | QD | c2h_success | IOPS | lat avg us | p50 us | p99 us | errors |",
         "|---|---|---|---|---|---|---|---|"]
for r in rows:
    iops, avg, p50, p99, err = cell(r)
    lines.append(f'| {r["round"]} | {r["iodepth"]} | {r["c2h_success"]} | {iops:,.0f} | {avg:.1f} | {p50:.1f} | {p99:.1f} | {err} |')
summary = ["", "| QD | median IOPS on | median IOPS off | on / off |", "|---|---|---|---|"]
for qd in (32, 128):
    on = [cell(r)[0] for r in rows if r["iodepth"] == qd and r["c2h_success"] == "on"]
    off = [cell(r)[0] for r in rows if r["iodepth"] == qd and r["c2h_success"] == "off"]
    m_on, m_off = statistics.median(on), statistics.median(off)
    summary.append(f"| {qd} | {m_on:,.0f} | {m_off:,.0f} | {m_on / m_off:.3f} |")
text = "\n".join([
    "# C2HData SUCCESS (c2h_success) on and off",
    "",
    "corepath-tgt on core 0 (malloc bdev, 256 MiB, 4096-byte blocks, restarted per run), corepath-bench on core 1,",
    f"NVMe/TCP on 127.0.0.2:4420, 4K random read, {runtime} s per run, {rounds} rounds alternating on/off.",
    "With c2h_success on (and the host's Connect disabling SQ flow control, as corepath's host always does) a read",
    "is one C2HData PDU with SUCCESS; off, a C2HData PDU then a response capsule. CPU: both sides busy-poll, one",
    "full core each, in every run.",
    f"Machine: {platform.node()} ({subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores), shared and noisy.",
    "", f"Command: `perf/c2h_success.sh {runtime} {rounds}`", ""] + lines + summary + [""])
open(out, "w").write(text)
print(text)
PY
