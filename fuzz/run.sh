#!/usr/bin/env bash
# Runs each fuzz target for SECONDS (default 600) with the seed corpus in fuzz/corpus/<target>.
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`); not part of CI.
# A crash, hang or out-of-memory is saved by libFuzzer under fuzz/artifacts/<target>/: copy it
# to fuzz/regressions/<target>/ and `cargo test` replays it through the real binary.
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# KAM_FUZZ_TIMEOUT (seconds, default 20) is how long one input may run before libFuzzer calls it
# a hang. It is wall-clock time: a fuzzer at low priority beside a busy machine can be starved
# past it, so raise it when fuzzing in the background (see docs/fuzzing.md).
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-600}"
timeout="${KAM_FUZZ_TIMEOUT:-20}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(import_workbook xlsx_cells rule_pack mapping lua_eval)
fi
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    # Work on a copy so the committed seed corpus stays small; new inputs land in target/.
    work="target/corpus/$t"
    mkdir -p "$work"
    cp -n "corpus/$t"/* "$work"/ 2>/dev/null || true
    echo "== $t for ${secs}s"
    cargo +nightly fuzz run "$t" "$work" "corpus/$t" -- \
        -max_total_time="$secs" -timeout="$timeout" -rss_limit_mb=2048 -max_len=1048576 \
        -artifact_prefix="artifacts/$t/" -print_final_stats=1 2>&1 | tail -25
done
