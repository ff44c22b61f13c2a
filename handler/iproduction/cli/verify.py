"""Check that every file a committed manifest lists is still in the destination and matches it
(size, ETag, and CRC-64 where the manifest records one), in the style of ``rclone check``:

    = KEY            matches (shown with -v only)
    * KEY  (why)     differs from the manifest
    - KEY            missing (for a job named without a manifest: its manifest.json)
    + KEY            under the job's prefix but not in its manifest

then a summary on stderr. Exit code 1 on any difference. Scope: the jobs named, or the manifests
committed since --since, or --all of them (one listing of the destination prefix, 1000 keys a
request); the HEADs run --concurrency at a time.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .output import Bar, Context, UsageError, iso, job_ids, parse_iso, parse_time

if TYPE_CHECKING:
    from .core import Core, Stored

HELP = "check delivered files against their manifests"

#: A manifest's ``committedAt`` is taken before its PUT, so it is never later than the object's
#: Last-Modified but for clock skew: listings older than ``since`` by more than this are not read.
SKEW = 3600

MARKS = {"ok": "=", "differs": "*", "missing": "-", "extra": "+"}


@dataclass(frozen=True)
class Finding:
    kind: str  # ok, differs, missing, extra
    job_id: str
    key: str
    detail: str | None = None

    def line(self) -> str:
        return f"{MARKS[self.kind]} {self.key}" + (f"  ({self.detail})" if self.detail else "")

    def public(self) -> dict[str, Any]:
        return {"kind": self.kind, "jobId": self.job_id, "key": self.key,
                **({"detail": self.detail} if self.detail else {})}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job_ids", nargs="*", metavar="JOBID")
    parser.add_argument("--since", metavar="DATE", help="the manifests committed at or after DATE "
                        "(2026-12-01, 2026-12-01T08:00:00Z, or 7d, 36h, 90m ago)")
    parser.add_argument("--all", action="store_true", help="every committed manifest")
    parser.add_argument("-v", "--verbose", action="store_true", help="also print '= KEY' for files that match")
    parser.add_argument("--json", action="store_true", help="the findings and counts as JSON")


def check(args: argparse.Namespace) -> None:
    args.job_ids = job_ids(args.job_ids)
    args.since_ts = parse_time(args.since) if args.since is not None else None
    scopes = sum((bool(args.job_ids), args.since is not None, args.all))
    if scopes != 1:
        raise UsageError("name the jobs, or give --since DATE, or --all (one of them)")


def compare(entry: dict[str, Any], found: Stored) -> str | None:
    """Why the object found is not the file the manifest describes (None: it is)."""
    reasons = []
    if found.size != entry.get("size"):
        reasons.append(f"size {found.size}, manifest {entry.get('size')}")
    etag = str(entry.get("etag") or "").strip('"').upper()
    if etag and found.etag.upper() != etag:
        reasons.append(f"ETag {found.etag}, manifest {etag}")
    crc = entry.get("crc64")
    if crc is not None and found.crc64 is not None and str(found.crc64) != str(crc):
        reasons.append(f"CRC-64 {found.crc64}, manifest {crc}")
    return "; ".join(reasons) or None


def _entries(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    files = manifest.get("files")
    if not isinstance(files, list):
        return []
    return [f for f in files if isinstance(f, dict) and isinstance(f.get("key"), str)]


def _scope(core: Core, args: argparse.Namespace,
           ctx: Context) -> tuple[dict[str, Any], dict[str, dict[str, Stored]], list[Finding]]:
    """The manifests to check, the objects under each job's prefix, and findings already made."""
    findings: list[Finding] = []
    if args.job_ids:
        with Bar(ctx.err, "manifests", len(args.job_ids), enabled=ctx.progress) as bar:
            read = core.read_manifests(args.job_ids, bar.add)
        manifests = {}
        for job in args.job_ids:
            if isinstance(read[job], dict):
                manifests[job] = read[job]
            else:
                findings.append(Finding("missing", job, core.manifest_key(job),
                                        "no manifest: the job is not committed"))
        return manifests, core.list_jobs(manifests), findings
    target = core.target
    ctx.note(f"listing oss://{target.bucket}/{target.prefix} ...")
    scan = core.scan()
    candidates = sorted(job for job, stored in scan.manifests.items()
                        if args.since_ts is None or stored.last_modified >= args.since_ts - SKEW)
    with Bar(ctx.err, "manifests", len(candidates), enabled=ctx.progress) as bar:
        read = core.read_manifests(candidates, bar.add)
    manifests = {}
    for job in candidates:
        doc = read[job]
        if not isinstance(doc, dict):
            findings.append(Finding("differs", job, core.manifest_key(job), "manifest is not readable JSON"))
            continue
        committed = parse_iso(doc.get("committedAt"))
        if args.since_ts is not None and (committed is None or committed < args.since_ts):
            continue
        manifests[job] = doc
    return manifests, scan.objects, findings


def run(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.open_core() as core:
        manifests, listed, findings = _scope(core, args, ctx)
        wanted = {job: _entries(doc) for job, doc in manifests.items()}
        keys = [entry["key"] for entries in wanted.values() for entry in entries]
        with Bar(ctx.err, "files", len(keys), enabled=ctx.progress) as bar:
            heads = core.head_many(keys, bar.add)
        for job, entries in wanted.items():
            for entry in entries:
                found = heads[entry["key"]]
                if found is None:
                    findings.append(Finding("missing", job, entry["key"]))
                else:
                    why = compare(entry, found)
                    findings.append(Finding("differs" if why else "ok", job, entry["key"], why))
            known = {entry["key"] for entry in entries} | {core.manifest_key(job)}
            findings.extend(Finding("extra", job, key) for key in sorted(listed.get(job, {})) if key not in known)
    counts = {kind: sum(f.kind == kind for f in findings) for kind in MARKS}
    differences = len(findings) - counts["ok"]
    if args.json:
        ctx.out.write(json.dumps({
            "jobs": len(manifests), "files": len(keys), **counts, "differences": differences,
            "since": iso(args.since_ts) if args.since_ts is not None else None,
            "findings": [f.public() for f in findings if f.kind != "ok" or args.verbose],
        }, indent=2, ensure_ascii=False) + "\n")
    else:
        for finding in findings:
            if finding.kind != "ok" or args.verbose:
                ctx.out.write(finding.line() + "\n")
    ctx.note(f"verify: {len(manifests)} job(s), {len(keys)} file(s): {counts['ok']} ok, {counts['differs']} differ, "
             f"{counts['missing']} missing, {counts['extra']} extra")
    if differences:
        ctx.note(f"verify: {differences} difference(s) found")
    return 1 if differences else 0
