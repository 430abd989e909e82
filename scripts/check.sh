#!/usr/bin/env bash
# The project's test command, the same steps CI runs (.ci/run calls this after installing lavapipe):
#
#   scripts/check.sh
#
# Steps: formatting, clippy with warnings as errors, the test models (if scripts/fetch-test-models.sh
# exists), the `openai` and `anthropic` Python clients for the server tests (scripts/openai-venv.sh),
# all tests, the
# README's first command (scripts/start.sh, one question piped in, the answer checked), the
# desktop app's smoke test under Xvfb (scripts/app-smoke.sh; needs xvfb, xdotool, imagemagick), and
# docs with warnings as errors. Each step prints its duration, and a summary follows at the end.
# The first failing step stops the run with its name.
#
# Needs a Vulkan driver: a real GPU's, or Mesa's software one (Debian/Ubuntu: apt-get install
# mesa-vulkan-drivers libvulkan1). GPU tests fail, never skip, when no adapter exists (REQUIRE_GPU=1
# is set here). For the faster Mesa 25 lavapipe: eval "$(scripts/lavapipe-mesa25.sh /tmp/mesa25)"
# Cargo runs with --locked, so a Cargo.lock that needs changes fails instead of being rewritten.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}" REQUIRE_GPU=1
# One build, never rebuilt: incremental caches would only take disk (several GB over ~35 test binaries).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
export XDG_RUNTIME_DIR

SUMMARY=()
CURRENT=""

on_exit() {
    local status=$?
    if [ ${#SUMMARY[@]} -gt 0 ]; then
        echo
        echo "== summary"
        printf '%s\n' "${SUMMARY[@]}"
    fi
    if [ "$status" -ne 0 ] && [ -n "$CURRENT" ]; then
        echo "check.sh: step '$CURRENT' failed with status $status" >&2
    fi
}
trap on_exit EXIT

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f s", b - a }'; }

# Runs one named step and records how long it took.
step() {
    local name=$1
    shift
    CURRENT=$name
    echo
    echo "== $name: $*"
    local start
    start=$(now)
    "$@"
    local line
    line=$(printf '%-10s %10s' "$name" "$(elapsed "$start" "$(now)")")
    echo "== $line"
    SUMMARY+=("$line")
    CURRENT=""
}

show_device() {
    if command -v vulkaninfo > /dev/null; then
        # The Vulkan devices and drivers the GPU tests can use; .ci/run prints the full summary.
        vulkaninfo --summary 2>&1 | grep -E 'deviceName|deviceType|driverInfo' ||
            echo "vulkaninfo found no Vulkan device"
    else
        echo "vulkaninfo not installed (apt-get install vulkan-tools); wgpu will pick its own adapter"
    fi
    echo "REQUIRE_GPU=${REQUIRE_GPU:-unset} LANTERNFISH_ADAPTER=${LANTERNFISH_ADAPTER:-unset}"
}

# Free disk where the build goes, and what the build took: a full disk fails the link step.
show_disk() {
    df -h . | tail -n 1 | awk '{print "disk: " $4 " free of " $2}'
    [ ! -d target ] || du -sh target | awk '{print "target/: " $1}'
}

# The README's first command end to end: the default model fetched, the binary built (debug here:
# the tests built it), one question piped in, the greedy answer checked.
start_smoke() {
    local out
    if ! out=$(printf 'What is the capital of France?\n' |
        LANTERNFISH_START_PROFILE=debug scripts/start.sh -n 24 --temp 0 2>&1); then
        printf '%s\n' "$out"
        return 1
    fi
    printf '%s\n' "$out" | tail -n 4
    if ! grep -q Paris <<<"$out"; then
        echo "start.sh: the answer does not mention Paris" >&2
        return 1
    fi
}

TOTAL_START=$(now)
show_device
show_disk
step fmt cargo fmt --all --check
step clippy cargo clippy --workspace --all-targets --locked -- -D warnings
if [ -f scripts/fetch-test-models.sh ]; then
    step models bash scripts/fetch-test-models.sh
fi
if [ -f scripts/openai-venv.sh ]; then
    step openai bash scripts/openai-venv.sh
fi
step test cargo test --workspace --locked
show_disk
step start start_smoke
step app-smoke bash scripts/app-smoke.sh
step doc env RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace --locked
SUMMARY+=("$(printf '%-10s %10s' total "$(elapsed "$TOTAL_START" "$(now)")")" "all checks passed")
