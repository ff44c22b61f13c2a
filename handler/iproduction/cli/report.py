"""A rollup of the manifests whose ``committedAt`` is in [--since, --until): jobs by state
(Success/Fail) and by MPS function, files, bytes, each failed job with its MPS code, and the
pending and expired registries' counts as of now. --until defaults to now; a bare date is 00:00 UTC.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .output import Bar, Context, UsageError, iso, parse_iso, parse_time, size, table
from .verify import SKEW

if TYPE_CHECKING:
    from .core import Core

HELP = "a rollup of the jobs committed in a time range"
CSV_COLUMNS = ["kind", "name", "jobs", "files", "bytes", "code", "message", "committedAt"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", required=True, metavar="DATE",
                        help="from DATE on (2026-12-01, 2026-12-01T08:00:00Z, or 7d, 36h, 90m ago)")
    parser.add_argument("--until", metavar="DATE", help="up to DATE, not included (default now)")
    parser.add_argument("--format", choices=["table", "csv", "json"], default="table")
    parser.add_argument("--output", metavar="FILE", help="write the report to FILE instead of stdout")


def check(args: argparse.Namespace) -> None:
    now = time.time()
    args.since_ts = parse_time(args.since, now)
    args.until_ts = parse_time(args.until, now) if args.until is not None else now
    if args.until_ts <= args.since_ts:
        raise UsageError("--until must be later than --since")


def _add(group: dict[str, dict[str, int]], name: str, files: int, nbytes: int) -> None:
    entry = group.setdefault(name, {"jobs": 0, "files": 0, "bytes": 0})
    entry["jobs"] += 1
    entry["files"] += files
    entry["bytes"] += nbytes


def rollup(manifests: list[dict[str, Any]], since: float, until: float, pending: int, expired: int,
           target: dict[str, str]) -> dict[str, Any]:
    """The report's document from the manifests in range."""
    by_state: dict[str, dict[str, int]] = {}
    by_function: dict[str, dict[str, int]] = {}
    failed = []
    files = nbytes = 0
    for doc in sorted(manifests, key=lambda d: (str(d.get("committedAt")), str(d.get("jobId")))):
        count = doc.get("fileCount") if isinstance(doc.get("fileCount"), int) else 0
        total = doc.get("totalBytes") if isinstance(doc.get("totalBytes"), int) else 0
        files += count
        nbytes += total
        state = str(doc.get("state"))
        _add(by_state, state, count, total)
        _add(by_function, str(doc.get("functionName") or "-"), count, total)
        if state != "Success":
            result = doc.get("result") if isinstance(doc.get("result"), dict) else {}
            failed.append({"jobId": doc.get("jobId"), "functionName": doc.get("functionName"),
                           "code": result.get("code"), "message": result.get("message"),
                           "committedAt": doc.get("committedAt")})
    return {"bucket": target["bucket"], "prefix": target["prefix"], "since": iso(since), "until": iso(until),
            "jobs": len(manifests), "files": files, "bytes": nbytes, "byState": by_state,
            "byFunction": by_function, "failed": failed, "pendingNow": pending, "expiredNow": expired}


def write_table(doc: dict[str, Any], out: TextIO) -> None:
    out.write(f"jobs committed in [{doc['since']}, {doc['until']}) under oss://{doc['bucket']}/{doc['prefix']}: "
              f"{doc['jobs']} job(s), {doc['files']} file(s), {size(doc['bytes'])} ({doc['bytes']} bytes)\n\n")
    for title, group in (("STATE", doc["byState"]), ("FUNCTION", doc["byFunction"])):
        rows = [[name, g["jobs"], g["files"], g["bytes"], size(g["bytes"])] for name, g in sorted(group.items())]
        table(rows or [["-", 0, 0, 0, size(0)]], [title, "JOBS", "FILES", "BYTES", "SIZE"], out)
        out.write("\n")
    if doc["failed"]:
        out.write("failed jobs:\n")
        table([[f["jobId"], f["functionName"], f["code"], f["committedAt"], f["message"]] for f in doc["failed"]],
              ["JOB", "FUNCTION", "CODE", "COMMITTED (UTC)", "MESSAGE"], out)
        out.write("\n")
    out.write(f"now: {doc['pendingNow']} pending, {doc['expiredNow']} expired\n")


def write_csv(doc: dict[str, Any], out: TextIO) -> None:
    writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerow({"kind": "total", "name": "", "jobs": doc["jobs"], "files": doc["files"], "bytes": doc["bytes"]})
    for kind, group in (("state", doc["byState"]), ("function", doc["byFunction"])):
        for name, g in sorted(group.items()):
            writer.writerow({"kind": kind, "name": name, **g})
    for f in doc["failed"]:
        writer.writerow({"kind": "failed", "name": f["jobId"], "jobs": 1, "files": 0, "bytes": 0, "code": f["code"],
                         "message": f["message"], "committedAt": f["committedAt"]})
    writer.writerow({"kind": "registry", "name": "pending", "jobs": doc["pendingNow"]})
    writer.writerow({"kind": "registry", "name": "expired", "jobs": doc["expiredNow"]})


def gather(core: Core, since: float, until: float, ctx: Context) -> list[dict[str, Any]]:
    """The manifests committed in [since, until); manifests last modified long before ``since``
    are not read."""
    target = core.target
    ctx.note(f"listing oss://{target.bucket}/{target.prefix} ...")
    scan = core.scan()
    candidates = sorted(job for job, stored in scan.manifests.items() if stored.last_modified >= since - SKEW)
    with Bar(ctx.err, "manifests", len(candidates), enabled=ctx.progress) as bar:
        read = core.read_manifests(candidates, bar.add)
    found = []
    for job in candidates:
        doc = read[job]
        committed = parse_iso(doc.get("committedAt")) if isinstance(doc, dict) else None
        if committed is not None and since <= committed < until:
            found.append(doc)
    return found


def run(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.open_core() as core:
        manifests = gather(core, args.since_ts, args.until_ts, ctx)
        doc = rollup(manifests, args.since_ts, args.until_ts, core.pending_count(), core.expired_count(),
                     {"bucket": core.target.bucket, "prefix": core.target.prefix})
    writer = {"table": write_table, "csv": write_csv,
              "json": lambda d, out: out.write(json.dumps(d, indent=2, ensure_ascii=False) + "\n")}[args.format]
    if args.output:
        try:
            with Path(args.output).open("w", encoding="utf-8", newline="") as out:
                writer(doc, out)
        except OSError as exc:
            ctx.err.write(f"iproduction report: error: cannot write {args.output}: {exc.strerror}\n")
            return 2
        ctx.note(f"report: {doc['jobs']} job(s) written to {args.output}")
    else:
        writer(doc, ctx.out)
    return 0
