#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ for a bounded time each.
#
#   scripts/fuzz.sh [-t SECONDS] [TARGET...]      (default: every target, 60 s each)
#
# Installs cargo-fuzz if missing. cargo-fuzz passes nightly-only flags to
# rustc, so this runs it with RUSTC_BOOTSTRAP=1 on the stable toolchain.
# Each target uses fuzz/corpus/<target> as its corpus (new inputs found are
# added there; commit only small, useful ones). Exits non-zero on the first
# crash; the crashing input is left in fuzz/artifacts/<target>/.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
secs=60
while getopts "t:" opt; do
    case "$opt" in
        t) secs="$OPTARG" ;;
        *) echo "usage: $0 [-t SECONDS] [TARGET...]" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))

export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

cd "$root/fuzz"
if [ "$#" -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
else
    targets=("$@")
fi

# Largest input per target: enough for the biggest structure it parses, so
# time is not spent on lengths that only hit the "trailing bytes" path.
max_len_for() {
    case "$1" in
        sgl) echo 64 ;;
        sqe_cqe) echo 256 ;;
        connect_data) echo 2048 ;;
        identify) echo 8192 ;;
        *) echo 16384 ;;
    esac
}

# Only the JSON-RPC target needs the rpc crate (a default feature of
# fuzz/Cargo.toml); the others build without it so an RPC build break never
# stops protocol fuzzing.
features_for() {
    case "$1" in
        jsonrpc_request) echo "" ;;
        *) echo "--no-default-features" ;;
    esac
}

for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    echo "fuzz.sh: $t for ${secs}s" >&2
    # shellcheck disable=SC2046 # the feature flag is one word or none
    if ! cargo fuzz run $(features_for "$t") "$t" "corpus/$t" -- \
        -max_total_time="$secs" -max_len="$(max_len_for "$t")" -print_final_stats=1; then
        echo "fuzz.sh: $t FAILED (build error above, or a crash saved in fuzz/artifacts/$t/)" >&2
        exit 1
    fi
done
echo "fuzz.sh: all targets ran clean" >&2
