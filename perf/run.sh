#!/usr/bin/env bash
# The benchmark table of the NVMe/TCP foundation, side by side in one run:
# corepath-tgt pinned to core 0 (malloc bdev), corepath-bench pinned to core 1,
# NVMe/TCP on 127.0.0.2, and the loopback floor (corepath-floor) with the same
# bytes per IO at the same queue depths.
#
# Usage: perf/run.sh [RUNTIME_SECS]   (default 10)
# Writes perf/results/<UTC date>-tcp-loopback.md and .json, and prints the table.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNTIME="${1:-10}"
ADDR=127.0.0.2
PORT=4420
NQN=nqn.2021-06.io.spdk:ctc_rbd0
SOCK="$(mktemp -u /tmp/corepath-perf.XXXXXX.sock)"
OUT_DIR=perf/results
STAMP="$(date -u +%Y-%m-%dT%H%M)"
mkdir -p "$OUT_DIR"

cargo build --release -p corepath-rpc -p corepath-bench -p corepath-perf --bins >&2
BIN=target/release

TGT_PID=
cleanup() {
  if [ -n "$TGT_PID" ] && kill -0 "$TGT_PID" 2>/dev/null; then
    kill "$TGT_PID"; wait "$TGT_PID" 2>/dev/null || true
  fi
  rm -f "$SOCK"
}
trap cleanup EXIT

"$BIN/corepath-tgt" -m 0x1 -r "$SOCK" 2>/tmp/corepath-perf-tgt.log &
TGT_PID=$!
for _ in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
R="$BIN/corepath-rpc -s $SOCK"
$R nvmf_create_transport -t TCP -m 64 >/dev/null
$R bdev_malloc_create -b Malloc0 1024 4096 >/dev/null
$R nvmf_create_subsystem "$NQN" -a -s SPDK_BDEV_0 -i 1 -I 32760 >/dev/null
$R nvmf_subsystem_add_ns "$NQN" Malloc0 >/dev/null
$R nvmf_subsystem_add_listener "$NQN" -t tcp -a "$ADDR" -s "$PORT" >/dev/null
TRID="trtype:tcp adrfam:ipv4 traddr:$ADDR trsvcid:$PORT subnqn:$NQN"

# Fill the namespace once so reads return real data, not never-written blocks.
"$BIN/corepath-bench" --cpumask 0x2 --trid "$TRID" --rw write --bs 128k --iodepth 16 --runtime 10 \
  --size 1g --output-format json >/dev/null 2>&1 || true

JSON="$OUT_DIR/$STAMP-tcp-loopback.json"
echo "[" > "$JSON"
first=1
row() { # name rw bs iodepth
  local name=$1 rw=$2 bs=$3 qd=$4
  local j
  j=$("$BIN/corepath-bench" --cpumask 0x2 --trid "$TRID" --rw "$rw" --bs "$bs" --iodepth "$qd" \
      --runtime "$RUNTIME" --output-format json 2>/dev/null)
  [ $first -eq 1 ] || echo "," >> "$JSON"
  first=0
  printf '{"name":"%s","rw":"%s","bs":"%s","iodepth":%s,"result":%s}\n' "$name" "$rw" "$bs" "$qd" "$j" >> "$JSON"
}
row randread-4k-qd1 randread 4k 1
row randread-4k-qd32 randread 4k 32
row randread-4k-qd128 randread 4k 128
row randwrite-4k-qd32 randwrite 4k 32
row read-128k-qd16 read 128k 16
echo "]" >> "$JSON"

# The floor at the same depths, right after, on the same cores; the gateway's
# busy-polling reactor must be gone from core 0 first.
cleanup
TGT_PID=
FLOOR="$OUT_DIR/$STAMP-floor.json"
{
  echo "["
  "$BIN/corepath-floor" --addr "$ADDR:0" --sockbuf-bytes 2097152 --iodepth 1 --runtime "$RUNTIME" --json; echo ","
  "$BIN/corepath-floor" --addr "$ADDR:0" --sockbuf-bytes 2097152 --iodepth 32 --runtime "$RUNTIME" --json; echo ","
  "$BIN/corepath-floor" --addr "$ADDR:0" --sockbuf-bytes 2097152 --iodepth 128 --runtime "$RUNTIME" --json; echo ","
  "$BIN/corepath-floor" --addr "$ADDR:0" --sockbuf-bytes 2097152 --iodepth 16 --response-bytes $((131072 + 48)) --runtime "$RUNTIME" --json
  echo "]"
} > "$FLOOR"

python3 - "$JSON" "$FLOOR" "$OUT_DIR/$STAMP-tcp-loopback.md" "$RUNTIME" <<'PY'
import json, sys, platform, subprocess
rows = json.load(open(sys.argv[1])); floor = json.load(open(sys.argv[2])); out = sys.argv[3]; runtime = sys.argv[4]
floor_by = {(f["iodepth"], f["response_bytes"]): f for f in floor}
spdk = {"randread-4k-qd1": "40 K (25 us)", "randread-4k-qd32": "274 K", "randread-4k-qd128": "423 K",
        "randwrite-4k-qd32": "317 K", "read-128k-qd16": "3.9 GB/s"}
lines = ["| workload | IOPS | MiB/s | lat avg us | p50 us | p99 us | p99.9 us | errors | floor IOPS | vs floor | SPDK (same kind of machine) |",
         "|---|---|---|---|---|---|---|---|---|---|---|"]
for r in rows:
    job = r["result"]["jobs"][0]
    d = job["write"] if "write" in r["rw"] else job["read"]
    pct = d["clat_ns"]["percentile"]
    resp = 4144 if r["bs"] == "4k" else 131072 + 48
    fl = floor_by.get((r["iodepth"], resp))
    ratio = f'{d["iops"] / fl["iops"]:.2f}' if fl and fl["iops"] else "-"
    lines.append(f'| {r["name"]} | {d["iops"]:,.0f} | {d["bw_bytes"]/1048576:,.0f} | {d["clat_ns"]["mean"]/1000:.1f} | '
                 f'{pct["50.000000"]/1000:.1f} | {pct["99.000000"]/1000:.1f} | {pct["99.900000"]/1000:.1f} | {job["error"]} | '
                 f'{fl["iops"]:,.0f} | {ratio} | {spdk[r["name"]]} |' if fl else f'| {r["name"]} | {d["iops"]:,.0f} | - |')
text = "\n".join([
    f"# NVMe/TCP loopback benchmark",
    "",
    f"corepath-tgt on core 0 (malloc bdev, 1 GiB, 4096-byte blocks), corepath-bench on core 1, NVMe/TCP on 127.0.0.2:4420,",
    f"{runtime} s per row; floor = corepath-floor (bare request/response loop with the same bytes per IO, the same 2 MiB socket buffers and the same cores) run right after; SPDK column = figures quoted in DEVELOPERS.md for SPDK on this kind of machine, not re-measured in this run.",
    f"Machine: {platform.node()} ({subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores), shared and noisy.",
    "", "Command: `perf/run.sh " + runtime + "`", ""] + lines + [""])
open(out, "w").write(text)
print(text)
PY
