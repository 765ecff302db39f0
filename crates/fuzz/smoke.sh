#!/usr/bin/env bash
# Fuzz smoke: builds every cargo-fuzz target and runs each briefly from the
# committed corpus. Exits non-zero when a target crashes (or fails to build).
#
#   bash crates/fuzz/smoke.sh            # 5 s per target
#   FUZZ_SMOKE_SECS=60 bash crates/fuzz/smoke.sh
#
# Installs cargo-fuzz (pinned) when missing. The machine has only the stable
# toolchain, so RUSTC_BOOTSTRAP=1 unlocks the -Z flags cargo-fuzz passes;
# the sanitizer is off (-s none: the parsers are safe Rust, and ASan costs a
# 2-4x slower run) and debug assertions with overflow checks are on (-a).
# New inputs go to a temporary directory, never into the committed corpus;
# a crash input is kept under crates/fuzz/artifacts/ and its path printed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
secs="${FUZZ_SMOKE_SECS:-5}"
targets=(sip_message sip_framing digest_header sdp rtp rtcp rtp_receive)
export RUSTC_BOOTSTRAP=1
flags=(--fuzz-dir crates/fuzz -a -s none)

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz smoke: installing cargo-fuzz"
    cargo install --locked --version 0.13.2 cargo-fuzz
fi

echo "fuzz smoke: building ${#targets[@]} targets"
cargo fuzz build "${flags[@]}"

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
mkdir -p crates/fuzz/artifacts
failed=()
for t in "${targets[@]}"; do
    mkdir -p "$scratch/$t" "crates/fuzz/artifacts/$t"
    log="$scratch/$t.log"
    corpus=("$scratch/$t")
    if [[ -d "crates/fuzz/corpus/$t" ]]; then
        corpus+=("crates/fuzz/corpus/$t")
    fi
    if cargo fuzz run "${flags[@]}" "$t" "${corpus[@]}" -- \
        -max_total_time="$secs" -timeout=10 -print_final_stats=1 \
        -artifact_prefix="crates/fuzz/artifacts/$t/" >"$log" 2>&1; then
        runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
        echo "fuzz smoke: $t ok (${runs:-?} runs in ${secs}s)"
    else
        echo "fuzz smoke: $t FAILED; last lines of its log:"
        tail -n 40 "$log"
        failed+=("$t")
    fi
done

if ((${#failed[@]})); then
    echo "fuzz smoke: crashed: ${failed[*]} (inputs under crates/fuzz/artifacts/;" \
        "replay with: RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir crates/fuzz -a -s none TARGET FILE)"
    exit 1
fi
echo "fuzz smoke: all ${#targets[@]} targets ran without a crash"
