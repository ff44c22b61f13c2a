#!/usr/bin/env bash
# Runs the benchmark suite on the local emulators: prints the results table and writes
# bench/results/latest.md + latest.json and docs/scaling.png. A full run takes about 6 minutes on 2 cores
# (361 s in the full run of 2026-12-02 at 1292ba3, on a shared 2-core AMD EPYC, load average about 3).
# Usage: bash scripts/bench.sh [--smoke] [--only scaling,big,batch,cold,cross,tune] [--out DIR]
#   --smoke   every scenario at a tiny size, in about a minute (what CI runs, through tests/bench): checks
#             that the suite runs, writes to a new temporary folder (printed) and leaves bench/results and
#             docs/scaling.png as they are; its sizes make the targets meaningless, so they show "n/a".
set -euo pipefail
source "$(dirname "$0")/env.sh"
# matplotlib draws the scaling plot; only the bench needs it, so only the bench installs it.
if ! python -c "import matplotlib" 2>/dev/null; then
  echo "installing requirements-bench.txt" >&2
  pip_install -r requirements-bench.txt
fi
echo "python: $(python --version)"
python -m bench "$@"
