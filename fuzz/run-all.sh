#!/usr/bin/env bash
# The long runs of docs/fuzzing.md: every target for SECONDS (default 600),
# one after another, one process each (-jobs=1 -workers=1), under nice,
# growing fuzz/corpus/<target>/ (gitignored) from fuzz/seeds/<target>/.
# Logs and final stats go to fuzz/runs/<target>.log (gitignored).
# Run fuzz/smoke.sh (or cargo fuzz build) first.
#
#   fuzz/run-all.sh [SECONDS] [TARGET...]
set -uo pipefail

secs=${1:-600}
shift || true
here=$(cd "$(dirname "$0")" && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/frankly/target-fuzz}
triple=$(rustc -vV | sed -n 's/^host: //p')
bin="$CARGO_TARGET_DIR/$triple/release"
targets=("$@")
if ((${#targets[@]} == 0)); then
    mapfile -t targets < <(cd "$here/.." && RUSTC_BOOTSTRAP=1 cargo fuzz list)
fi
mkdir -p "$here/runs" "$here/artifacts"
for target in "${targets[@]}"; do
    mkdir -p "$here/corpus/$target"
    # -jobs=1 -workers=1: libFuzzer runs one child and writes its log to fuzz-0.log in the cwd.
    work="$here/runs/$target"
    rm -rf "$work" && mkdir -p "$work"
    start=$(date +%s)
    (cd "$work" && nice -n 10 "$bin/$target" -jobs=1 -workers=1 -max_total_time="$secs" -timeout=30 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$here/artifacts/$target-" \
        "$here/corpus/$target" "$here/seeds/$target")
    rc=$?
    end=$(date +%s)
    cp "$work/fuzz-0.log" "$here/runs/$target.log"
    echo "run-all: $target rc=$rc wall=$((end - start))s corpus=$(ls "$here/corpus/$target" | wc -l) files" \
        | tee -a "$here/runs/summary.txt"
done
