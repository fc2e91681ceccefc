#!/usr/bin/env bash
# The main job on the embedded default: two gateways in the same process,
# A on 127.0.0.2:4420 and B on 127.0.0.3:4420 (same NQN, serial and namespace
# UUID; controller IDs 1-32760 and 32761-65519), both serving ONE shared file
# through bdev_aio_create; the host attaches both as Nvme0 in multipath mode
# (-x multipath -l -1 -o 1), runs a 10-second verified 4K random read/write at
# queue depth 32 on Nvme0n1, and gateway A is killed halfway (its reactors are
# stopped and its sockets closed, as SIGKILL would). The report ends with the
# per-path IO counts and the failover report: each path event, the longest
# completion gap and highest latency around it, and the IO errors (0).
#
# scripts/demo.sh --gateways 1     the old single-gateway demo (malloc namespace)
# scripts/demo.sh --kill-a-after 0 two gateways, nobody killed
# Any other corepath-bench option can be added (see corepath-bench --help).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p corepath-bench >&2
# The shared file lives on the build directory's disk (O_DIRECT does not work
# on tmpfs) and is deleted when the demo ends, however it ends.
file="target/demo-shared-$$.img"
trap 'rm -f "$file"' EXIT
target/release/corepath-bench --rw randrw --bs 4k --iodepth 32 --runtime 10 --verify \
  --embedded-file "$file" "$@"
