"""The whole flow, event to outcomes: read this file first.

    EVENT    parse → job ids (deduplicated) and unusable messages (rejected), or a sweep of the
             pending registry; the jobs run at once, at most JOB_CONCURRENCY together (a sweep's: at
             most a window of the MPS cap), and at most a window's between their LOOKUP and QUERY
    LOOKUP   list <DEST_PREFIX><JobId>/
      │  manifest.json found ───────────────────────────────────────→ already-committed (no MPS call)
    CHECK    the destination bucket has no versioning (read once per instance)
    QUERY    QueryIProductionJob (rate-capped) → State → job.next_action ‖ read the pending record
      ├─ WAIT  (also Success whose Result lists no files yet)
      │        record the check; past PENDING_MAX_AGE_SECONDS ───────→ expired, else pending
      ├─ FAIL  commit a failure manifest ────────────────────────────→ job-failed
      └─ COPY  PLAN (source allowed? keys safe?) → COPY → COMMIT ─────→ committed
    CLEANUP  after any commit, delete the pending record

Every step is safe to repeat: keys are derived from the job id, copies of intact files are
skipped, every write is put-if-absent, and the manifest is written once, last. A failure becomes
the job's outcome (``outcomes.outcome_for``); the handler raises after the others if any is ``error``.
Each OSS call is in ``oss.py``, each MPS call in ``mps.py``, each copy in ``copier.py``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from dataclasses import replace
from typing import TypeVar

from . import logs, manifest
from .budget import Deadline
from .copier import CopiedFile, settle
from .errors import CollectorError, CommittedMeanwhileError, RejectedError, TransientError
from .events import parse_event
from .job import KNOWN_STATES, Action, Job, job_from_answer, parse_output, result_files, result_missing
from .layout import job_prefix, manifest_key, plan_files
from .oss import Listed
from .outcomes import JobReport, Outcome, outcome_for, short
from .pending import PendingRecord, new_record
from .runtime import Runtime

T = TypeVar("T")

#: A sweep does not start a job with less time than this left (the rest wait for the next sweep).
SWEEP_MIN_SECONDS = 2.0


async def run(rt: Runtime, event: bytes | str, deadline: Deadline) -> list[JobReport]:
    """Process an event; one report per distinct job id and per unusable message."""
    parsed = parse_event(event)
    reports: list[JobReport] = []
    for message in parsed.rejected:
        logs.warning("event.rejected", reason=message.reason, messageId=message.message_id, source=parsed.source)
        reports.append(JobReport(None, Outcome.REJECTED, short(message.reason), message_id=message.message_id))
    if parsed.sweep:
        return reports + await sweep(rt, deadline)
    gate = asyncio.Semaphore(rt.settings.job_concurrency)
    jobs = [bounded(gate, process(rt, ref.job_id, deadline, ref.message_id)) for ref in parsed.refs]
    return reports + list(await asyncio.gather(*jobs))


async def sweep(rt: Runtime, deadline: Deadline) -> list[JobReport]:
    """Look at every job of the pending registry again (least recently checked first)."""
    try:
        job_ids = await rt.registry.job_ids(deadline)
    except CollectorError as exc:
        return [JobReport(None, Outcome.ERROR, short(f"sweep could not list the pending registry: {exc}"))]
    logs.info("sweep.start", pending=len(job_ids))
    # No more jobs at once than a window of the cap: a job started with SWEEP_MIN_SECONDS left can query.
    gate = asyncio.Semaphore(min(rt.settings.job_concurrency, rt.mps.limiter.limit()))

    async def one(job_id: str) -> JobReport | None:
        return None if deadline.remaining() < SWEEP_MIN_SECONDS else await process(rt, job_id, deadline)

    swept = await asyncio.gather(*(bounded(gate, one(job_id)) for job_id in job_ids))
    skipped = sum(report is None for report in swept)
    if skipped:
        logs.info("sweep.deferred", jobs=skipped, reason="time budget; left for the next sweep")
    await clean_uploads(rt, deadline)
    return [report for report in swept if report is not None]


async def process(rt: Runtime, job_id: str, deadline: Deadline, message_id: str | None = None) -> JobReport:
    """One job from id to outcome. Never raises: every failure becomes the job's outcome, logged once."""
    started = time.monotonic()
    token = logs.job_id.set(job_id)
    try:
        try:
            report = await collect(rt, job_id, deadline)
        except CommittedMeanwhileError as exc:
            report = JobReport(job_id, Outcome.ALREADY_COMMITTED, short(str(exc)),
                               manifest=manifest_key(rt.settings.dest_prefix, job_id))
        except CollectorError as exc:
            report = JobReport(job_id, outcome_for(exc), short(str(exc)))
        except Exception as exc:  # a bug or an unexpected library error: keep the batch going
            logs.error("job.unexpected", error=f"{type(exc).__name__}: {exc}")
            report = JobReport(job_id, Outcome.ERROR, short(f"unexpected {type(exc).__name__}: {exc}"))
        report.message_id = message_id
        report.duration = time.monotonic() - started
        logs.log("job.outcome", "WARNING" if report.outcome is Outcome.ERROR else "INFO",
                 outcome=report.outcome.value, reason=report.reason, state=report.state,
                 files=report.files, bytes=report.bytes, copied=report.copied, skipped=report.skipped,
                 durationMs=round(report.duration * 1000), messageId=message_id)
        return report
    finally:
        logs.job_id.reset(token)


async def collect(rt: Runtime, job_id: str, deadline: Deadline) -> JobReport:
    """LOOKUP → CHECK → QUERY → WAIT | FAIL | COPY → COMMIT → CLEANUP (the module's diagram)."""
    now = time.time()
    deadline.check(0.2, "look the job up")
    key = manifest_key(rt.settings.dest_prefix, job_id)
    async with rt.queries:  # at most one window of the MPS cap's jobs between their lookup and their query
        existing = await rt.oss.list_prefix(rt.dest, job_prefix(rt.settings.dest_prefix, job_id), deadline)
        if key in existing:
            record = await rt.registry.get(job_id, deadline, now)
        else:  # the pending record is read while the query waits for the cap and goes
            await rt.check_destination(deadline)
            answer, record = await settle([rt.mps.query_iproduction_job(job_id, deadline),
                                           rt.registry.get(job_id, deadline, now)])
    if key in existing:
        await forget(rt, record, deadline)
        return JobReport(job_id, Outcome.ALREADY_COMMITTED, manifest=key)
    try:
        job = job_from_answer(job_id, answer)
        if job.action is Action.COPY and (missing := result_missing(job.result)) is not None:
            # MPS does not promise that Result lists the files the moment State turns Success.
            logs.warning("job.result_not_ready", state=job.state, reason=missing, mpsRequestId=job.request_id)
            return await wait(rt, job, record, now, deadline, f"MPS state is {job.state} but {missing}")
        if job.action is Action.WAIT:
            return await wait(rt, job, record, now, deadline)
        if job.action is Action.FAIL:
            report = await commit(rt, job, [], deadline, Outcome.JOB_FAILED)
            report.reason = short(f"MPS job failed: {job.result.code}: {job.result.message}")
        else:
            files = await copy(rt, job, existing, key, record, deadline)
            report = await commit(rt, job, files, deadline, Outcome.COMMITTED)
    except RejectedError:  # a rejected job (unknown, or its files refused) is not looked at again
        await forget(rt, record, deadline)
        raise
    await forget(rt, record, deadline)
    return report


async def wait(rt: Runtime, job: Job, record: PendingRecord | None, now: float, deadline: Deadline,
               reason: str | None = None) -> JobReport:
    """The job is not finished: record the check, or expire it past ``PENDING_MAX_AGE_SECONDS``."""
    if job.state not in KNOWN_STATES:
        logs.warning("job.unknown_state", state=job.state)
    current = (record or new_record(job.job_id, now)).checked(job.state, now)
    if current.age(now) > rt.settings.pending_max_age:
        await rt.registry.expire(current, now, deadline)
        return JobReport(job.job_id, Outcome.EXPIRED, state=job.state, reason=short(
            f"still {job.state} {int(current.age(now))}s after it was first seen "
            f"(PENDING_MAX_AGE_SECONDS={rt.settings.pending_max_age})"))
    await rt.registry.save(current, deadline)
    return JobReport(job.job_id, Outcome.PENDING, short(reason or f"MPS state is {job.state}"), state=job.state)


async def copy(rt: Runtime, job: Job, existing: dict[str, Listed], key: str, record: PendingRecord | None,
               deadline: Deadline) -> list[CopiedFile]:
    """PLAN (source allowed, keys safe: else the whole job is rejected) → COPY every file, but the ones
    the pending record's checkpoint vouches for; out of time, record the files now intact there."""
    location = parse_output(job.output, rt.settings.mps_region)
    if not rt.settings.source_allowed(location.bucket):
        raise RejectedError(f"source bucket {location.bucket} is not in SOURCE_BUCKETS")
    plans = plan_files(location.bucket, result_files(job.result), rt.settings.dest_prefix, job.job_id)
    source = rt.oss.bucket(location.bucket, location.region)
    verified = manifest.trusted(list(record.verified) if record else [], plans, existing)
    known = len(verified)
    try:
        return await rt.copier.copy_files(plans, source, existing, key, deadline, verified)
    except TransientError:
        if len(verified) > known:
            await checkpoint(rt, job, record, list(verified.values()), deadline)
        raise


async def checkpoint(rt: Runtime, job: Job, record: PendingRecord | None, files: list[CopiedFile],
                     deadline: Deadline) -> None:
    """Save the files verified so far in the job's pending record (within the reserve). A failure here
    changes no outcome: the next invocation checks those files again."""
    now = time.time()
    current = replace((record or new_record(job.job_id, now)).checked(job.state, now),
                      verified=tuple(manifest.entry(f) for f in files))
    try:
        await rt.registry.save(current, deadline.grace())
    except CollectorError as exc:
        logs.warning("pending.checkpoint_failed", error=short(str(exc)))
    else:
        logs.info("pending.checkpoint", files=len(files))


async def commit(rt: Runtime, job: Job, files: list[CopiedFile], deadline: Deadline, outcome: Outcome) -> JobReport:
    """Write the manifest, last and once; a race lost to another invocation is ``already-committed``."""
    key = manifest_key(rt.settings.dest_prefix, job.job_id)
    if not await manifest.commit(rt.oss, rt.dest, key, manifest.build(job, rt.settings, files), deadline):
        return JobReport(job.job_id, Outcome.ALREADY_COMMITTED, state=job.state, manifest=key)
    return JobReport(job.job_id, outcome, state=job.state, files=len(files), bytes=sum(f.size for f in files),
                     manifest=key, copied=sum(f.action == "copied" for f in files),
                     skipped=sum(f.action == "skipped" for f in files))


async def forget(rt: Runtime, record: PendingRecord | None, deadline: Deadline) -> None:
    """Delete the job's pending record, if it has one. A failure here changes no outcome: the next
    sweep finds the manifest and deletes the record then."""
    if record is None:
        return
    try:
        await rt.registry.delete(record.job_id, deadline.grace())
    except CollectorError as exc:
        logs.warning("pending.delete_failed", error=short(str(exc)))


async def clean_uploads(rt: Runtime, deadline: Deadline) -> None:
    """Abort multipart uploads that no live invocation can still own: older than twice the function's
    timeout (an invocation is killed at its timeout, so its uploads are then orphans)."""
    if deadline.remaining() < SWEEP_MIN_SECONDS:
        return
    cutoff = time.time() - 2 * deadline.timeout
    try:
        uploads = await rt.oss.list_uploads(rt.dest, rt.settings.dest_prefix, deadline)
        stale = [upload for upload in uploads if upload.initiated and upload.initiated < cutoff]
        await settle([rt.oss.abort_upload(rt.dest, u.key, u.upload_id, deadline) for u in stale])
    except CollectorError as exc:
        logs.warning("sweep.uploads_not_cleaned", error=short(str(exc)))
        return
    if stale:
        logs.info("sweep.uploads_aborted", uploads=len(stale))


async def bounded(gate: asyncio.Semaphore, work: Awaitable[T]) -> T:
    async with gate:
        return await work
