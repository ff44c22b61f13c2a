"""Benchmarks of the function on the local emulators, with baselines side by side.

Run ``bash scripts/bench.sh [--smoke]``; see ``bench/__main__.py``. Benchmarks are never timed
assertions in tests: CI runs the smoke size only to keep the suite working.
"""

import sys
from pathlib import Path

# The function's own package, for its defaults and settings (appended: bench modules come first).
HANDLER = str(Path(__file__).resolve().parents[1] / "handler")
if HANDLER not in sys.path:
    sys.path.append(HANDLER)
