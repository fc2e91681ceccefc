#!/usr/bin/env bash
# The main job on the embedded default: a gateway with a malloc namespace on
# 127.0.0.2:4420 in the same process, the host engine attached over NVMe/TCP,
# a 10-second verified random read/write run, results printed.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p corepath-bench >&2
exec build/release/corepath-bench --rw randrw --bs 4k --iodepth 32 --runtime 10 --verify "$@"
