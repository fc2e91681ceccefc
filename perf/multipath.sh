#!/usr/bin/env bash
# Multipath benchmarks, side by side in one run, inside a network namespace of
# this script's own (so a gateway can be blackholed with nftables):
#   1. overhead: 4K randread QD32 on one core, single path (raw engine IO) vs
#      two paths in active_passive (IO through MpChannel), alternated, N pairs;
#   2. failover stall after SIGKILL of gateway A (randrw 4K QD32), 5 runs;
#   3. failover stall after a blackhole of A (nftables drop both ways), 5 runs,
#      at the default keep-alive (10 s) and at --keep-alive-ms 800.
# Gateways A (127.0.0.2) and B (127.0.0.3) share core 0 (--idle adaptive: B only
# answers keep-alives while A serves); corepath-bench runs on core 1. The stall
# is the bench's failover report: the longest time without any completion
# around the path's failure event.
#
# Usage: perf/multipath.sh [PAIRS] [RUNTIME_SECS]   (defaults 3 and 10)
#        SKIP_STALLS=1 perf/multipath.sh ...          (the overhead part only)
#        STALLS=sigkill perf/multipath.sh ...         (of the stalls, the SIGKILL runs only)
#        IDLE=busy perf/multipath.sh ...              (the bench's --idle; default adaptive)
#        GW_IDLE=busy perf/multipath.sh ...           (the gateways' --idle; default adaptive)
# Writes perf/results/<UTC date>-multipath.md and .json.
set -euo pipefail
cd "$(dirname "$0")/.."
PAIRS="${1:-3}"
RUNTIME="${2:-10}"
NQN=nqn.2021-06.io.spdk:ctc_rbd0
UUID=070685b9-0b0b-42ec-8ba5-f31a343b9e34
OUT_DIR=perf/results
STAMP="$(date -u +%Y-%m-%dT%H%M)"
WORK="$(mktemp -d /tmp/corepath-mpperf.XXXXXX)"
NS="corepath-perf-$$"
mkdir -p "$OUT_DIR"

cargo build --release -p corepath-rpc -p corepath-bench --bins >&2
BIN="$PWD/target/release"
IDLE="${IDLE:-adaptive}"
GW_IDLE="${GW_IDLE:-adaptive}"
STALLS="${STALLS:-sigkill blackhole}"

PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
ip netns add "$NS"
ip netns exec "$NS" ip link set lo up
X="ip netns exec $NS"

GW_PID=()
start_gateway() { # index addr min max
  local i=$1 addr=$2 min=$3 max=$4 sock="$WORK/gw$1.sock"
  rm -f "$sock"
  $X "$BIN/corepath-tgt" -m 0x1 -r "$sock" --idle "$GW_IDLE" 2>>"$WORK/gw$i.log" &
  GW_PID[$i]=$!
  PIDS+=($!)
  for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
  local R="$BIN/corepath-rpc -s $sock"
  $R nvmf_create_transport -t TCP >/dev/null
  $R bdev_malloc_create -b Malloc0 -u "$UUID" 256 4096 >/dev/null
  $R nvmf_create_subsystem "$NQN" -a -s SPDK_BDEV_0 -i "$min" -I "$max" >/dev/null
  $R nvmf_subsystem_add_ns "$NQN" Malloc0 >/dev/null
  $R nvmf_subsystem_add_listener "$NQN" -t tcp -a "$addr" -s 4420 >/dev/null
}
stop_gateway() { # index
  local p=${GW_PID[$1]:-}
  if [ -n "$p" ]; then kill -CONT "$p" 2>/dev/null || true; kill -KILL "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; fi
  GW_PID[$1]=
}
start_both() { start_gateway 0 127.0.0.2 1 32760; start_gateway 1 127.0.0.3 32761 65519; }
TA="trtype:tcp adrfam:ipv4 traddr:127.0.0.2 trsvcid:4420 subnqn:$NQN"
TB="trtype:tcp adrfam:ipv4 traddr:127.0.0.3 trsvcid:4420 subnqn:$NQN"

JSON="$OUT_DIR/$STAMP-multipath.json"
echo '{"overhead":[' > "$JSON"

# 1. Overhead, alternated so both see the same machine.
start_both
for pair in $(seq "$PAIRS"); do
  for mode in single multipath; do
    if [ "$mode" = single ]; then args=(--trid "$TA"); else args=(--trid "$TA" --trid "$TB" --multipath multipath); fi
    j=$($X "$BIN/corepath-bench" --cpumask 0x2 --idle "$IDLE" "${args[@]}" --rw randread --bs 4k --iodepth 32 \
        --runtime "$RUNTIME" --output-format json 2>>"$WORK/bench.log")
    [ "$pair$mode" = 1single ] || echo "," >> "$JSON"
    printf '{"pair":%s,"mode":"%s","result":%s}\n' "$pair" "$mode" "$j" >> "$JSON"
  done
done
stop_gateway 0; stop_gateway 1
echo '],"stalls":[' >> "$JSON"

# 2 and 3. Failover stalls.
first=1
stall_run() { # fault kato_ms(or "") run
  local fault=$1 kato=$2 run=$3 extra=() j
  [ -n "$kato" ] && extra=(--keep-alive-ms "$kato")
  start_both
  $X "$BIN/corepath-bench" --cpumask 0x2 --idle "$IDLE" --trid "$TA" --trid "$TB" --multipath multipath "${extra[@]}" \
     --rw randrw --bs 4k --iodepth 32 --runtime "$4" --output-format json > "$WORK/stall.json" 2>>"$WORK/bench.log" &
  local bench=$!
  PIDS+=($bench)
  sleep 3
  case $fault in
    sigkill) kill -KILL "${GW_PID[0]}" ;;
    blackhole)
      $X nft add table inet perf
      $X nft 'add chain inet perf input { type filter hook input priority 0 ; }'
      $X nft add rule inet perf input ip daddr 127.0.0.2 drop
      $X nft add rule inet perf input ip saddr 127.0.0.2 drop ;;
  esac
  wait "$bench" || true
  [ "$fault" = blackhole ] && $X nft delete table inet perf
  stop_gateway 0; stop_gateway 1
  j=$(cat "$WORK/stall.json")
  [ $first -eq 1 ] || echo "," >> "$JSON"
  first=0
  printf '{"fault":"%s","kato_ms":"%s","run":%s,"result":%s}\n' "$fault" "${kato:-default}" "$run" "$j" >> "$JSON"
}
if [ "${SKIP_STALLS:-0}" != 1 ]; then
  case " $STALLS " in *" sigkill "*)
    for r in 1 2 3 4 5; do stall_run sigkill "" "$r" 8; done ;; esac
  case " $STALLS " in *" blackhole "*)
    for r in 1 2 3 4 5; do stall_run blackhole 800 "$r" 8; done
    for r in 1 2 3 4 5; do stall_run blackhole "" "$r" 30; done ;; esac
fi
echo ']}' >> "$JSON"

GW_IDLE="$GW_IDLE" IDLE="$IDLE" STALLS="$STALLS" python3 perf/multipath_report.py "$JSON" "$OUT_DIR/$STAMP-multipath.md" "$RUNTIME" "$PAIRS"
