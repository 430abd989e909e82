#!/usr/bin/env bash
# Makes the Python virtual environment with the real `openai` and `anthropic` clients that
# tests/server.rs (openai_python_client) and tests/server_agents.rs drive `lanternfish serve` with:
#
#   scripts/openai-venv.sh          # → .cache/openai-venv (git-ignored); a second run is a no-op
#
# LANTERNFISH_OPENAI_VENV chooses another folder (the test then needs LANTERNFISH_OPENAI_PYTHON
# pointing at its bin/python). Needs python3 with the venv module (Debian: python3-venv) and
# access to PyPI.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LANTERNFISH_OPENAI_VENV:-$REPO/.cache/openai-venv}"
PYTHON="${PYTHON:-python3}"
OPENAI_VERSION="3.54.0"
ANTHROPIC_VERSION="2.17.0"

if "$VENV/bin/python" -c "import anthropic, openai, sys; sys.exit(openai.__version__ != '$OPENAI_VERSION' or anthropic.__version__ != '$ANTHROPIC_VERSION')" 2>/dev/null; then
    echo "openai $OPENAI_VERSION and anthropic $ANTHROPIC_VERSION already in $VENV"
    exit 0
fi
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "openai==$OPENAI_VERSION" \
    "anthropic==$ANTHROPIC_VERSION"
echo "openai $OPENAI_VERSION and anthropic $ANTHROPIC_VERSION installed in $VENV"
