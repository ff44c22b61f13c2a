"""One job from id to outcome.

    LOOKUP   list <DEST_PREFIX><JobId>/ (manifest? what is already there) ‖ read the pending record
      │  manifest found (no MPS call) ───────────────────────────────→ already-committed
    CHECK    the destination has no versioning (read once per instance) ─ else error
    QUERY    QueryIProductionJob: State → job.next_action
      ├─ WAIT  (also Success whose Result lists no files yet)
      │        record the check; past PENDING_MAX_AGE_SECONDS ───────→ expired, else pending
      ├─ FAIL  commit a failure manifest ────────────────────────────→ job-failed
      └─ COPY  PLAN (source allowed? keys safe?) → COPY → COMMIT ─────→ committed
    CLEANUP  after any commit, delete the pending record

Every step is safe to repeat: keys are derived from the job id, copies of intact files are
skipped, and the manifest is written once (forbid-overwrite), last.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import wait
from typing import TypeVar

from . import logs, manifest
from .budget import Deadline
from .config import Settings
from .copier import CopiedFile, CopyEngine
from .errors import CollectorError, CredentialsError, DestinationRefusedError, RejectedError
from .job import KNOWN_STATES, Action, Job, job_from_answer, parse_output, result_files, result_missing
from .layout import manifest_key, plan_files
from .lookups import Lookups
from .mps import MPSClient
from .outcomes import JobReport, Outcome, outcome_for, short
from .pending import PendingRecord, PendingRegistry, new_record
from .storage import Listed, Storage

T = TypeVar("T")


def _with_region_hint(fn: Callable[[], T], bucket: str, region: str) -> T:
    """``fn()``; a refused OSS signature comes out saying which region it was signed for (a V4 signature
    names the region: a bucket in another one refuses it as ``SignatureDoesNotMatch``)."""
    try:
        return fn()
    except CredentialsError as exc:
        if "SignatureDoesNotMatch" not in str(exc):
            raise
        raise CredentialsError(f"{exc}: the request was signed for region {region}; bucket {bucket} may be "
                               "in another region (check DEST_REGION, or the region in the job's Output)") from None


class JobProcessor:
    def __init__(self, settings: Settings, storage: Storage, mps: MPSClient, engine: CopyEngine,
                 registry: PendingRegistry, lookups: Lookups) -> None:
        self.settings = settings
        self.storage = storage
        self.mps = mps
        self.engine = engine
        self.registry = registry
        self.lookups = lookups

    def process(self, job_id: str, deadline: Deadline, message_id: str | None = None) -> JobReport:
        """Never raises: every failure becomes the job's outcome, logged once."""
        started = time.monotonic()
        token = logs.job_id.set(job_id)
        try:
            try:
                report = self._run(job_id, deadline)
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

    # -- the steps --------------------------------------------------------------------------
    def _run(self, job_id: str, deadline: Deadline) -> JobReport:
        now = time.time()
        deadline.check(0.2, "look the job up")
        key = manifest_key(self.settings.dest_prefix, job_id)
        # LOOKUP first, QUERY after: a job whose manifest is there costs no MPS call (its answer
        # would not be used, and every call comes out of the account's 100 QPS).
        started = self.lookups.start(job_id, deadline, now)
        try:
            existing = _with_region_hint(started.listing.result, self.settings.dest_bucket,
                                         self.settings.dest_region)
        finally:
            wait([started.record])  # no request of this job may outlive its processing
        record = started.record.result()
        if key in existing:
            self._forget(record, deadline)
            return JobReport(job_id, Outcome.ALREADY_COMMITTED, manifest=key)
        self._check_destination(deadline)
        answer = self.mps.query_iproduction_job(job_id, deadline)
        assert answer is not None  # skipped only when asked to
        try:
            job = job_from_answer(job_id, answer)
        except RejectedError:
            self._forget(record, deadline)
            raise
        action = job.action
        if action is Action.COPY and (missing := result_missing(job.result)) is not None:
            logs.warning("job.result_not_ready", state=job.state, reason=missing, mpsRequestId=job.request_id)
            return self._wait(job, record, now, deadline, f"MPS state is {job.state} but {missing}")
        if action is Action.WAIT:
            return self._wait(job, record, now, deadline)
        if action is Action.FAIL:
            report = self._commit(job, [], deadline, Outcome.JOB_FAILED)
            report.reason = short(f"MPS job failed: {job.result.code}: {job.result.message}")
        else:
            try:
                files = self._copy(job, existing, deadline)
            except RejectedError:
                self._forget(record, deadline)
                raise
            report = self._commit(job, files, deadline, Outcome.COMMITTED)
        self._forget(record, deadline)
        return report

    def _check_destination(self, deadline: Deadline) -> None:
        """Refuse a destination with versioning: OSS ignores ``x-oss-forbid-overwrite`` there (oss.md,
        the CopyObject/PutObject docs), so two invocations could both write the manifest."""
        state = self.storage.dest_versioning(deadline)
        if state is not None:
            raise DestinationRefusedError(
                f"destination bucket {self.settings.dest_bucket} has versioning {state}: x-oss-forbid-overwrite "
                "has no effect there, so the commit point cannot hold; use a bucket without versioning")

    def _wait(self, job: Job, record: PendingRecord | None, now: float, deadline: Deadline,
              reason: str | None = None) -> JobReport:
        if job.state not in KNOWN_STATES:
            logs.warning("job.unknown_state", state=job.state)
        current = (record or new_record(job.job_id, now)).checked(job.state, now)
        if current.age(now) > self.settings.pending_max_age:
            self.registry.expire(current, now, deadline)
            return JobReport(job.job_id, Outcome.EXPIRED, state=job.state, reason=short(
                f"still {job.state} {int(current.age(now))}s after it was first seen "
                f"(PENDING_MAX_AGE_SECONDS={self.settings.pending_max_age})"))
        self.registry.save(current, deadline)
        return JobReport(job.job_id, Outcome.PENDING, short(reason or f"MPS state is {job.state}"),
                         state=job.state)

    def _copy(self, job: Job, existing: dict[str, Listed], deadline: Deadline) -> list[CopiedFile]:
        location = parse_output(job.output, self.settings.mps_region)
        if not self.settings.source_allowed(location.bucket):
            raise RejectedError(f"source bucket {location.bucket} is not in SOURCE_BUCKETS")
        plans = plan_files(location.bucket, result_files(job.result), self.settings.dest_prefix, job.job_id)
        return _with_region_hint(lambda: self.engine.copy_files(plans, location.region, existing, deadline),
                                 location.bucket, location.region)

    def _commit(self, job: Job, files: list[CopiedFile], deadline: Deadline, outcome: Outcome) -> JobReport:
        document = manifest.build(job, self.settings, files, manifest.committed_at())
        result = manifest.commit(self.storage, self.settings, document, deadline)
        key = manifest_key(self.settings.dest_prefix, job.job_id)
        if not result.written:
            return JobReport(job.job_id, Outcome.ALREADY_COMMITTED, state=job.state, manifest=key)
        return JobReport(job.job_id, outcome, state=job.state, files=len(files),
                         bytes=sum(f.size for f in files), manifest=key,
                         copied=sum(f.action == "copied" for f in files),
                         skipped=sum(f.action == "skipped" for f in files))

    def _forget(self, record: PendingRecord | None, deadline: Deadline) -> None:
        """Delete the job's pending record, if it has one. A failure here changes no outcome: the
        next sweep finds the manifest and deletes the record then."""
        if record is None:
            return
        try:
            self.registry.delete(record.job_id, deadline)
        except CollectorError as exc:
            logs.warning("pending.delete_failed", error=short(str(exc)))
