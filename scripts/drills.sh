#!/usr/bin/env bash
# The reliability drills: faults, crash points, duplicates, hostile input, security, pending registry, shared MPS quota.
# Usage: bash scripts/drills.sh [--full] [--only NAME...] [--time-limit SECONDS]
#   (no flag)  the reduced sizes CI runs (tests/drills runs the same code under pytest)
#   --full     full size, bounded in time (stopped after 40 min); rewrites the README's Reliability section
set -euo pipefail
source "$(dirname "$0")/env.sh"
python -m drills "$@"
