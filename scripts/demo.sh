#!/usr/bin/env bash
# Runs the whole flow on the local emulators: a job goes from Analysing to Success, arrives through
# every trigger format, is copied, and its manifest is printed. Usage: bash scripts/demo.sh [--logs]
set -euo pipefail
source "$(dirname "$0")/env.sh"
python -m localcloud.demo "$@"
