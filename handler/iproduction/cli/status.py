"""Where each job stands: committed (with its manifest's time, files and bytes), pending (since when,
last state, attempts), expired, or unknown. Without job ids: the pending registry.

Exit code 1 when a job named is not committed with state Success (Fail, pending, expired, unknown).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import TYPE_CHECKING, Any

from .output import Bar, Context, ago, job_ids, size, table

if TYPE_CHECKING:
    from .core import Core, Pending

HELP = "where jobs stand (or the pending registry)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job_ids", nargs="*", metavar="JOBID")
    parser.add_argument("--json", action="store_true", help="JSON for scripts")


def check(args: argparse.Namespace) -> None:
    args.job_ids = job_ids(args.job_ids)


def run(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.open_core() as core:
        if args.job_ids:
            return _jobs(core, args.job_ids, args, ctx)
        return _registry(core, args, ctx)


def _pending(record: Pending) -> dict[str, Any]:
    return {"firstSeen": record.first_seen, "lastChecked": record.last_checked, "lastState": record.last_state,
            "attempts": record.attempts}


def describe(job_id: str, manifest: Any, record: Pending | None, expired: Any, manifest_key: str) -> dict[str, Any]:
    """One job's status document (what ``--json`` prints for it)."""
    if isinstance(manifest, dict):
        result = manifest.get("result") if isinstance(manifest.get("result"), dict) else {}
        return {"jobId": job_id, "status": "committed", "state": manifest.get("state"),
                "committedAt": manifest.get("committedAt"), "functionName": manifest.get("functionName"),
                "files": manifest.get("fileCount"), "bytes": manifest.get("totalBytes"),
                "code": result.get("code"), "manifest": manifest_key}
    if record is not None:
        return {"jobId": job_id, "status": "pending", **_pending(record)}
    if isinstance(expired, dict):
        return {"jobId": job_id, "status": "expired", "expiredAt": expired.get("expiredAt"),
                "firstSeen": expired.get("firstSeen"), "lastState": expired.get("lastState"),
                "attempts": expired.get("attempts")}
    return {"jobId": job_id, "status": "unknown"}


def _row(doc: dict[str, Any], now: float) -> list[Any]:
    kind = doc["status"]
    if kind == "committed":
        detail = doc.get("functionName") or ""
        if doc.get("state") != "Success":
            detail = f"{detail} code {doc.get('code')}".strip()
        return [doc["jobId"], kind, doc.get("state"), doc.get("committedAt"), doc.get("files"),
                size(doc.get("bytes")), detail]
    if kind == "pending":
        return [doc["jobId"], kind, doc.get("lastState"), doc.get("firstSeen"), None, None,
                f"checked {doc['attempts']}x, last {ago(doc.get('lastChecked'), now)} ago"]
    if kind == "expired":
        return [doc["jobId"], kind, doc.get("lastState"), doc.get("expiredAt"), None, None,
                f"checked {doc.get('attempts')}x, first seen {doc.get('firstSeen')}"]
    return [doc["jobId"], kind, None, None, None, None, "no manifest, no pending or expired record"]


def _jobs(core: Core, ids: list[str], args: argparse.Namespace, ctx: Context) -> int:
    with Bar(ctx.err, "status", len(ids), enabled=ctx.progress) as bar:
        manifests = core.read_manifests(ids, bar.add)
    rest = [job for job in ids if not isinstance(manifests[job], dict)]
    records = core.pending_records(rest) if rest else {}
    rest = [job for job in rest if records.get(job) is None]
    expired = core.expired_records(rest) if rest else {}
    docs = [describe(job, manifests[job], records.get(job), expired.get(job), core.manifest_key(job)) for job in ids]
    if args.json:
        ctx.out.write(json.dumps({"jobs": docs}, indent=2, ensure_ascii=False) + "\n")
    else:
        now = time.time()
        table([_row(doc, now) for doc in docs], ["JOB", "STATUS", "STATE", "TIME (UTC)", "FILES", "SIZE", "DETAIL"],
              ctx.out)
    good = all(doc["status"] == "committed" and doc.get("state") == "Success" for doc in docs)
    return 0 if good else 1


def _registry(core: Core, args: argparse.Namespace, ctx: Context) -> int:
    ids = core.pending_ids()
    with Bar(ctx.err, "pending", len(ids), enabled=ctx.progress) as bar:
        records = core.pending_records(ids, bar.add)
    expired = core.expired_ids()
    found = [(job, records[job]) for job in ids if records[job] is not None]
    target = core.target
    if args.json:
        ctx.out.write(json.dumps({
            "bucket": target.bucket, "prefix": target.prefix, "pendingMaxAgeSeconds": target.pending_max_age,
            "pending": [{"jobId": job, **_pending(record)} for job, record in found if record is not None],
            "pendingCount": len(found), "expired": expired, "expiredCount": len(expired),
        }, indent=2, ensure_ascii=False) + "\n")
        return 0
    now = time.time()
    rows = [[job, record.first_seen, ago(record.first_seen, now), record.last_state, record.attempts,
             f"{ago(record.last_checked, now)} ago"] for job, record in found if record is not None]
    if rows:
        table(rows, ["JOB", "FIRST SEEN (UTC)", "AGE", "LAST STATE", "CHECKS", "LAST CHECKED"], ctx.out)
    ctx.out.write(f"{len(rows)} pending, {len(expired)} expired in oss://{target.bucket}/{target.prefix} "
                  f"(PENDING_MAX_AGE_SECONDS={target.pending_max_age})\n")
    return 0
