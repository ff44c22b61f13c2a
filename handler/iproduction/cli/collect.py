"""Process jobs now, exactly as the function does for a timer event naming them (backfills,
replays): look the job up, query MPS, copy, commit, and print each outcome.

With --wait, jobs still pending are checked again every --interval seconds until each is finished
or --timeout has passed. Exit code 1 when a job ends error or rejected, or is still pending when
--wait runs out of time; a pending job without --wait is reported, not an error.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import TYPE_CHECKING, Any

from .output import Context, UsageError, job_ids, size

if TYPE_CHECKING:
    from .core import Outcome

HELP = "process jobs now, as the function would"
FAILED = ("error", "rejected")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job_ids", nargs="+", metavar="JOBID")
    parser.add_argument("--wait", action="store_true", help="check pending jobs again until they finish")
    parser.add_argument("--timeout", type=float, default=300.0, metavar="S",
                        help="time for the whole command (default 300 s, as the function's timeout)")
    parser.add_argument("--interval", type=float, default=15.0, metavar="S",
                        help="with --wait, seconds between checks of a pending job (default 15)")
    parser.add_argument("--json", action="store_true", help='the function\'s {"jobs": [...]} as JSON')


def check(args: argparse.Namespace) -> None:
    args.job_ids = job_ids(args.job_ids)
    if args.timeout <= 0 or args.interval <= 0:
        raise UsageError("--timeout and --interval must be positive")


def line(outcome: Outcome) -> str:
    """One outcome for people."""
    kind = outcome.outcome
    if kind == "committed":
        detail = (f"{outcome.files} file(s), {size(outcome.bytes)} ({outcome.copied} copied, "
                  f"{outcome.skipped} already there) -> {outcome.manifest}")
    elif kind == "already-committed":
        detail = f"manifest exists: {outcome.manifest}"
    elif kind == "job-failed":
        detail = f"{outcome.reason} -> {outcome.manifest}"
    else:
        detail = outcome.reason or ""
    return f"{outcome.job_id or '-'}  {kind:<17}  {detail} ({outcome.seconds:.1f}s)"


def run(args: argparse.Namespace, ctx: Context) -> int:
    end = time.monotonic() + args.timeout
    settled: dict[str, Outcome] = {}
    todo = list(args.job_ids)
    timed_out = False
    with ctx.open_core() as core:
        while True:
            for outcome in core.collect(todo, max(end - time.monotonic(), 0.5)):
                settled[outcome.job_id or ""] = outcome
                if not args.json and (outcome.outcome != "pending" or not args.wait):
                    ctx.out.write(line(outcome) + "\n")
                    ctx.out.flush()
            todo = [job for job in todo if settled[job].outcome == "pending"]
            if not args.wait or not todo:
                break
            if end - time.monotonic() <= args.interval:
                timed_out = True
                break
            ctx.note(f"waiting: {len(todo)} job(s) still pending; next check in {args.interval:g}s")
            time.sleep(args.interval)
    if timed_out and not args.json:
        for job in todo:
            ctx.out.write(line(settled[job]) + "  [--timeout reached]\n")
    outcomes = [settled[job] for job in args.job_ids]
    if args.json:
        document: dict[str, Any] = {"jobs": [o.public() for o in outcomes], "timedOut": timed_out}
        ctx.out.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.outcome] = counts.get(outcome.outcome, 0) + 1
    ctx.note("collect: " + ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())))
    failed = any(o.outcome in FAILED for o in outcomes)
    return 1 if failed or timed_out else 0
