#!/usr/bin/env bash
# Installs what is missing, then runs every test of the workspace.
# Usage: scripts/test.sh            (what CI runs)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
# No module may import a module that imports it back (within each crate).
python3 scripts/module-cycles.py
# The guest of the kernel interop tests: built once (several minutes), then cached.
tests/vmlab/build.sh > /dev/null

# The integration tests start gateways and hosts with pinned reactors; on a
# 2-core machine run test binaries one at a time and keep threads low so
# busy-polling reactors do not starve each other.
export RUST_TEST_THREADS="${RUST_TEST_THREADS:-1}"
cargo build --workspace --all-targets --release
cargo test --workspace --release -- --test-threads="$RUST_TEST_THREADS"
