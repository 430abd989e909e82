#!/usr/bin/env bash
# The project's test command: everything CI checks, runnable on a developer machine.
#   scripts/check.sh
# Needs a Vulkan driver: a real GPU's, or Mesa's software one (apt-get install mesa-vulkan-drivers
# libvulkan1). GPU tests fail, never skip, when no adapter exists (REQUIRE_GPU=1 is set here).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}" REQUIRE_GPU=1
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"

step() {
    local name=$1 start=$SECONDS
    shift
    echo "==> $name: $*"
    "$@"
    echo "==> $name: ok in $((SECONDS - start)) s"
}

step fmt cargo fmt --all --check
step clippy cargo clippy --workspace --all-targets --locked -- -D warnings
step fetch-test-models scripts/fetch-test-models.sh
step test cargo test --workspace --locked
step doc env RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked
echo "==> all checks passed"
