#!/usr/bin/env bash
# Runs every check a landing needs: lint, then the whole test suite on the local emulators.
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
source "$(dirname "$0")/env.sh"
echo "python: $(python --version)"
ruff check .
python -m pytest -q "$@"
