#!/usr/bin/env bash
# Runs each cargo-fuzz target briefly over the committed corpus (fuzz/corpus/<target>) and the
# inputs of past findings (fuzz/regressions/<target>); exits non-zero on a crash, a panic, a
# leak of the allocation limits or a timeout. New inputs go to a scratch folder, so the
# committed corpus is not changed.
#
# Usage: fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
#   SECONDS_PER_TARGET defaults to 20 (env FUZZ_SECONDS also works); TARGETs default to all.
# The toolchain is stable: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its nightly flags.
# Artifacts of a finding are written to fuzz/artifacts/<target>/ (CI can keep them).
set -euo pipefail

cd "$(dirname "$0")"
secs="${1:-${FUZZ_SECONDS:-20}}"
shift || true
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz/run.sh: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

# All the code is safe Rust: no sanitizer, for speed; overflow checks and debug assertions on.
cargo fuzz build --sanitizer none

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
failed=()
for t in "${targets[@]}"; do
    echo "=== fuzz target $t: ${secs}s"
    mkdir -p "$scratch/$t" "regressions/$t"
    if ! cargo fuzz run --sanitizer none "$t" "$scratch/$t" "corpus/$t" "regressions/$t" -- \
        -max_total_time="$secs" -max_len=4096 -timeout=10 \
        -rss_limit_mb=512 -malloc_limit_mb=256 -print_final_stats=1 \
        >"$scratch/$t.log" 2>&1; then
        failed+=("$t")
        tail -n 60 "$scratch/$t.log"
        continue
    fi
    grep -E '^#[0-9]+[[:space:]]+DONE' "$scratch/$t.log" || true
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz/run.sh: findings in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz/run.sh: ${#targets[@]} targets, ${secs}s each, no finding"
