#!/usr/bin/env bash
# Runs the benchmark suite on the local emulators (issues 5 and 6, about 10 minutes on 2 cores): prints
# the results table and writes bench/results/latest.md + latest.json and docs/scaling.png.
# Usage: bash scripts/bench.sh [--smoke] [--only scaling,peer,big,batch,cold,cross,cpu,tune] [--out DIR]
#                              [--commit REV] [--at REV]
#   --smoke   every scenario at a tiny size, in seconds (what CI runs, through tests/bench).
#   --commit  the CPU per small copy of handler/ at REV too, side by side; --at: handler/ at REV instead
set -euo pipefail
source "$(dirname "$0")/env.sh"
# matplotlib draws the scaling plot; only the bench needs it, so only the bench installs it.
if ! python -c "import matplotlib" 2>/dev/null; then
  echo "installing requirements-bench.txt" >&2
  pip_install -r requirements-bench.txt
fi
echo "python: $(python --version)"
python -m bench "$@"
