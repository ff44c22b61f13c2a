"""The manifest: the job's single commit point, written last with ``x-oss-forbid-overwrite``."""

from __future__ import annotations

import time
from typing import Any

from . import logs
from .budget import Deadline
from .config import Settings
from .copier import CopiedFile
from .errors import TransientError
from .job import Action, Job
from .layout import FilePlan, job_prefix
from .oss import Bucket, Listed, OSSClient

SCHEMA = "iproduction-manifest/1"


def build(job: Job, settings: Settings, files: list[CopiedFile]) -> dict[str, Any]:
    """The contract's document (§6), in its order, plus each file's ``transfer`` (``server-side``, ``streamed``)."""
    entries = [entry(copied) for copied in files]
    return {
        "schema": SCHEMA,
        "jobId": job.job_id,
        "state": "Success" if job.action is Action.COPY else "Fail",
        "functionName": job.function_name,
        "pipelineId": job.pipeline_id,
        "input": job.input,
        "output": job.output,
        "jobParams": job.job_params,
        "userData": job.user_data,
        "result": {"code": job.result.code, "message": job.result.message},
        "mpsRequestId": job.request_id,
        "committedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "destination": {"bucket": settings.dest_bucket, "prefix": job_prefix(settings.dest_prefix, job.job_id)},
        "files": entries,
        "fileCount": len(entries),
        "totalBytes": sum(f.size for f in files),
    }


def entry(copied: CopiedFile) -> dict[str, Any]:
    """A file's entry in the manifest (and in the checkpoint of the job's pending record)."""
    return {"source": copied.plan.source_url, "key": copied.plan.dest_key, "size": copied.size,
            "crc64": None if copied.crc64 is None else str(copied.crc64), "etag": copied.etag.strip('"'),
            "contentType": copied.content_type, "transfer": copied.transfer}


def trusted(entries: list[Any], plans: list[FilePlan], existing: dict[str, Listed]) -> dict[str, CopiedFile]:
    """The files of a checkpoint (entries verified by an earlier invocation) that need no request now, by
    destination key: planned alike, and listed at the destination with the same size and ETag."""
    by_key = {plan.dest_key: plan for plan in plans}
    found: dict[str, CopiedFile] = {}
    for item in entries:
        try:
            plan, listed = by_key.get(item["key"]), existing.get(item["key"])
            if (plan is None or listed is None or plan.source_url != item["source"] or listed.size != item["size"]
                    or listed.etag.strip('"').upper() != str(item["etag"]).upper()):
                continue
            crc = None if item["crc64"] is None else int(item["crc64"])
            found[plan.dest_key] = CopiedFile(plan, listed.size, crc, listed.etag.strip('"'), item["contentType"],
                                              "skipped", item["transfer"])
        except (KeyError, TypeError, ValueError):
            continue  # a damaged entry: the file is checked again
    return found


async def commit(oss: OSSClient, dest: Bucket, key: str, document: dict[str, Any], deadline: Deadline) -> bool:
    """PUT the manifest unless one exists; whether it is ours now (False: another invocation committed
    first). A PUT left without an answer is put once more (docs/architecture.md, 'The commit point')."""
    deadline.check(0.05, "commit the manifest")
    # Once started, the commit may use half the reserve: it is what the copies were for.
    final = deadline.grace()
    try:
        stored = await oss.put_json(dest, key, document, final, forbid_overwrite=True)
    except TransientError as exc:
        logs.warning("manifest.unanswered", error=str(exc), then="put once more, if absent")
        final = deadline.grace(0.75)
        try:
            stored = await oss.put_json(dest, key, document, final, forbid_overwrite=True)
        except TransientError:
            raise exc from None
    if stored is not None:
        return True
    existing = await oss.get_json(dest, key, final)
    return isinstance(existing, dict) and all(
        existing.get(k) == document[k] for k in ("jobId", "mpsRequestId", "committedAt"))
