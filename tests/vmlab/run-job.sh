#!/usr/bin/env bash
# Runs one job in a fresh guest, by hand: builds the guest if needed, boots
# it with JOB as /mnt/host/job.sh, waits up to TIMEOUT seconds, prints the
# job's output and the serial console, and kills the QEMU it started (by PID)
# on every exit path. Exit status: the job's, or 124 on timeout.
#
# Usage: tests/vmlab/run-job.sh JOB.sh [TIMEOUT_S] [HOST_PORT] [FILE...]
#   FILEs are copied next to the job (e.g. target/release/corepath-tgt).
#   Leaves the share directory (logs) in $VMLAB_SHARE or a new /tmp dir.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
job="$1"; timeout_s="${2:-600}"; port="${3:-}"; shift $(( $# < 3 ? $# : 3 ))
guest="$("$here/build.sh" | tail -1)"
share="${VMLAB_SHARE:-$(mktemp -d /tmp/corepath-vmlab.XXXXXX)}"
mkdir -p "$share"
cp "$job" "$share/job.sh"
for f in "$@"; do cp "$f" "$share/"; done
rm -f "$share/job.rc" "$share/job.log"
t0=$(date +%s)
"$here/boot.sh" "$guest" "$share" $port > "$share/qemu.log" 2>&1 &
qemu_pid=$!
trap 'kill "$qemu_pid" 2>/dev/null || true' EXIT
rc=124
while [ $(( $(date +%s) - t0 )) -lt "$timeout_s" ]; do
  if ! kill -0 "$qemu_pid" 2>/dev/null; then
    wait "$qemu_pid" || true
    rc=$(cat "$share/job.rc" 2>/dev/null || echo 125)
    break
  fi
  sleep 1
done
echo "=== job output ($share/job.log)"; cat "$share/job.log" 2>/dev/null || true
echo "=== serial console"; cat "$share/console.log" 2>/dev/null || true
echo "=== qemu"; cat "$share/qemu.log"
echo "vmlab: job rc=$rc after $(( $(date +%s) - t0 )) s; logs in $share"
exit "$rc"
