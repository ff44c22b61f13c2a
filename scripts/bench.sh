#!/usr/bin/env bash
# Runs the benchmark suite on the local emulators (about 6 minutes on 2 cores) and prints the results table.
# A full run of the whole suite writes bench/results/latest.md + latest.json and docs/scaling.png, and
# rewrites docs/performance.md and the README's performance table from them.
# Usage: bash scripts/bench.sh [--smoke] [--only scaling,peer,big,batch,cold,cross,cpu,tune] [--out DIR]
#                              [--commit REV] [--at REV]
#   --smoke   every scenario at a tiny size, in seconds (what CI runs, through tests/bench), into a temporary
#             folder (or --out): at these sizes the times say nothing about the targets ("n/a").
#   --only    part of the suite, into a temporary folder (or --out).
#   --commit  the CPU per small copy of handler/ at REV too, side by side; --at: handler/ at REV instead.
#   --docs    runs nothing: rewrites docs/performance.md and the README's table from bench/results/latest.json.
set -euo pipefail
source "$(dirname "$0")/env.sh"
# matplotlib draws the scaling plot; only the bench needs it, so only the bench installs it.
if ! python -c "import matplotlib" 2>/dev/null; then
  echo "installing requirements-bench.txt" >&2
  pip_install -r requirements-bench.txt
fi
echo "python: $(python --version)"
python -m bench "$@"
