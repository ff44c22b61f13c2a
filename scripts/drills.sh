#!/usr/bin/env bash
# The reliability drills: faults, crash points, duplicates, hostile input, security, pending registry, shared MPS quota.
# Usage: bash scripts/drills.sh [--full] [--only NAME...] [--time-limit SECONDS] [--docs]
#   (no flag)  the reduced sizes CI runs (tests/drills runs the same code under pytest)
#   --full     full size, bounded in time (stopped after 40 min): results in drills/results/, rewrites
#              docs/reliability.md and the README's reliability table
#   --docs     runs nothing: rewrites docs/reliability.md and the README's table from drills/results/
set -euo pipefail
source "$(dirname "$0")/env.sh"
python -m drills "$@"
