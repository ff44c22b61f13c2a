"""``python -m drills [--full] [--only NAME ...]``: run the reliability drills, print their figures.

Without ``--full`` the drills run at the reduced size CI uses (results in ``build/drills/ci/``). ``--full``
runs them at full size, keeps each drill's results as JSON in ``drills/results/`` and rewrites
docs/reliability.md and the README's reliability table from the last full run of each drill; ``--docs``
only rewrites those two from ``drills/results/``. The whole run is bounded: past ``--time-limit`` seconds it
is stopped (exit status 2). Exit status 1 if a drill found a problem.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable

from . import crashes, duplicates, faults, hostile, pending, quota, report, security
from .common import ROOT, DrillReport

DRILLS: dict[str, Callable[[str], DrillReport]] = {
    "faults": faults.run,
    "crash-points": crashes.run,
    "duplicates": duplicates.run,
    "hostile-input": hostile.run,
    "security": security.run,
    "pending-registry": pending.run,
    "quota": quota.run,
}
TIME_LIMITS = {"ci": 600, "full": 2400}
RESULTS = {"ci": ROOT / "build" / "drills" / "ci", "full": ROOT / "drills" / "results"}


def _watchdog(limit: float, current: list[str]) -> None:
    def fire() -> None:
        print(f"\ndrills: stopped after {limit:.0f} s (time limit) during {current[0]}", file=sys.stderr, flush=True)
        os._exit(2)

    timer = threading.Timer(limit, fire)
    timer.daemon = True
    timer.start()


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m drills", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true",
                        help="full size; results in drills/results/; rewrites docs/reliability.md and the README's "
                        "table")
    parser.add_argument("--only", nargs="+", choices=sorted(DRILLS), metavar="NAME",
                        help=f"run only these drills ({', '.join(DRILLS)})")
    parser.add_argument("--time-limit", type=float, help="seconds before the run is stopped "
                        f"(default {TIME_LIMITS['ci']} reduced, {TIME_LIMITS['full']} full)")
    parser.add_argument("--no-doc", action="store_true",
                        help="with --full: do not rewrite docs/reliability.md and the README's table")
    parser.add_argument("--docs", action="store_true",
                        help="run nothing: rewrite docs/reliability.md and the README's table from drills/results/")
    args = parser.parse_args(argv)
    if args.docs:
        for path in report.write(RESULTS["full"], ROOT, list(DRILLS)):
            print(f"drills: wrote {path.relative_to(ROOT)}", file=sys.stderr)
        return 0
    size = "full" if args.full else "ci"
    names = args.only or list(DRILLS)
    current = ["start-up"]
    _watchdog(args.time_limit or TIME_LIMITS[size], current)
    out = RESULTS[size]
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    failed = []
    for name in names:
        current[0] = name
        print(f"drills: {name} ({size}) …", file=sys.stderr, flush=True)
        begun = time.monotonic()
        try:
            result = DRILLS[name](size)
        except Exception:
            result = DrillReport(name, size, problems=[f"the drill itself failed:\n{traceback.format_exc()}"])
        result.seconds = time.monotonic() - begun
        document = {**result.public(), "commit": _commit(), "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                      time.gmtime()),
                    "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                "system": platform.system()}}
        (out / f"{name}.json").write_text(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n")
        print(report.summary(document), file=sys.stderr, flush=True)
        if not result.passed:
            failed.append(name)
    current[0] = "the report"
    total = time.monotonic() - started
    print(f"drills: {len(names) - len(failed)} of {len(names)} passed in {total:.0f} s "
          f"(results in {out.relative_to(ROOT)})", file=sys.stderr)
    if args.full and not args.no_doc:
        for path in report.write(RESULTS["full"], ROOT, list(DRILLS)):
            print(f"drills: wrote {path.relative_to(ROOT)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
