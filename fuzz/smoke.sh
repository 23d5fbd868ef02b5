#!/usr/bin/env bash
# Builds every fuzz target and runs each for N seconds (default 30) on its
# committed seeds, one after another; exits non-zero if any target crashes,
# times out, runs out of memory or fails to build.
#
#   fuzz/smoke.sh [SECONDS]
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`). Stable Rust:
# RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its -Z flags (sanitizer, coverage).
# Environment: CARGO_TARGET_DIR (default ~/.cache/frankly/target-fuzz),
# FUZZ_SANITIZER (address or none; default address).
set -euo pipefail

secs=${1:-30}
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/frankly/target-fuzz}
export RUSTC_BOOTSTRAP=1
sanitizer=${FUZZ_SANITIZER:-address}

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz/smoke.sh: cargo-fuzz is missing; install it with: cargo install cargo-fuzz --locked" >&2
    exit 2
fi

cd "$root"
start=$(date +%s)
nice -n 10 cargo fuzz build --sanitizer "$sanitizer" --debug-assertions
built=$(date +%s)
echo "fuzz/smoke.sh: built in $((built - start)) s" >&2

triple=$(rustc -vV | sed -n 's/^host: //p')
bin="$CARGO_TARGET_DIR/$triple/release"
artifacts="$here/artifacts/smoke"
mkdir -p "$artifacts"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

failed=()
for target in $(cargo fuzz list); do
    mkdir -p "$scratch/$target"
    log="$scratch/$target.log"
    # New inputs go to a scratch corpus; the committed seeds are only read.
    if nice -n 10 "$bin/$target" -max_total_time="$secs" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$artifacts/$target-" "$scratch/$target" "$here/seeds/$target" >"$log" 2>&1; then
        stats=$(grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' "$log" | tr '\n' ' ')
        echo "fuzz/smoke.sh: $target ok: $stats" >&2
    else
        echo "fuzz/smoke.sh: $target FAILED; the end of its log:" >&2
        tail -n 40 "$log" >&2
        failed+=("$target")
    fi
done

echo "fuzz/smoke.sh: $(($(date +%s) - start)) s in all" >&2
if ((${#failed[@]})); then
    echo "fuzz/smoke.sh: crashed: ${failed[*]} (inputs in $artifacts)" >&2
    exit 1
fi
