"""The FC entry points behind ``index.initialize`` and ``index.handler``.

``initialize`` validates the configuration and builds the instance's clients and thread pools
once; ``handler`` parses the event, processes every job it names (or sweeps the pending
registry), returns ``{"jobs": [...]}``, and raises only at the end, only for ``error`` outcomes.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import logs
from .budget import Deadline
from .config import Settings, describe, load_settings
from .copier import CopyEngine, abort_stale_uploads
from .credentials import CredentialsSource, resolve_credentials
from .errors import CollectorError, InvocationFailedError
from .events import BadMessage, parse_event
from .lookups import Lookups
from .mps import MPSClient
from .outcomes import JobReport, Outcome, short
from .pending import PendingRegistry
from .processor import JobProcessor
from .ratelimit import RateLimiter
from .storage import Storage

if TYPE_CHECKING:
    from .ahead import QueryAhead

#: A sweep does not start a job with less time than this left (the rest wait for the next sweep).
SWEEP_MIN_SECONDS = 2.0


@dataclass
class Runtime:
    """Everything an instance keeps between invocations."""

    settings: Settings
    credentials: CredentialsSource
    mps: MPSClient
    storage: Storage
    registry: PendingRegistry
    processor: JobProcessor
    job_pool: ThreadPoolExecutor
    _ahead: QueryAhead | None = field(default=None, init=False)
    _ahead_lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def query_ahead(self) -> QueryAhead | None:
        """The batches' first MPS calls from the express lane's loop, built on first use; None where
        there is no lane or MPS is not on the lean pool (a proxy, a test's transport)."""
        with self._ahead_lock:
            if self._ahead is None and self.mps.lean:
                lane = self.processor.engine.lane
                if lane is not None:
                    from .ahead import QueryAhead

                    self._ahead = QueryAhead(self.mps, lane)
                    self.mps.ahead = self._ahead
            return self._ahead

    def close(self) -> None:
        """Stop the instance's pools and its MPS connections (the local invoker and drills call this)."""
        self.job_pool.shutdown(wait=False, cancel_futures=True)
        self.processor.lookups.pool.shutdown(wait=False, cancel_futures=True)
        self.processor.engine.close()
        self.mps.close()


def build_runtime(env: Mapping[str, str], context: Any = None) -> Runtime:
    settings = load_settings(env)
    credentials = CredentialsSource(resolve_credentials(env, context))
    limiter = RateLimiter(settings.mps_max_qps, adaptive=settings.mps_adaptive)
    mps = MPSClient(settings.mps_endpoint, credentials, limiter=limiter,
                    signature=settings.mps_signature, timeout=settings.mps_timeout,
                    pool_size=settings.job_concurrency)
    storage = Storage(settings, credentials)
    copy_pool = ThreadPoolExecutor(settings.copy_concurrency, thread_name_prefix="copy")
    # Two lookups per job in flight (the destination listing and the pending record), where there is
    # no express lane, or when the lane's try is to be retried.
    lookup_pool = ThreadPoolExecutor(2 * settings.job_concurrency, thread_name_prefix="lookup")
    registry = PendingRegistry(storage, settings)
    engine = CopyEngine(storage, settings, copy_pool, express=True)
    lookups = Lookups(storage, registry, lookup_pool, lambda: engine.lane)
    processor = JobProcessor(settings, storage, mps, engine, registry, lookups)
    job_pool = ThreadPoolExecutor(settings.job_concurrency, thread_name_prefix="job")
    return Runtime(settings, credentials, mps, storage, registry, processor, job_pool)


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def initialize(context: Any) -> None:
    """FC initializer: validate the configuration once per instance (raises naming the variable)."""
    global _runtime
    logs.set_level(os.environ.get("LOG_LEVEL"))
    with _runtime_lock:
        if _runtime is None:
            _runtime = build_runtime(os.environ, context)
            logs.info("instance.initialized", settings=describe(_runtime.settings))


def runtime(context: Any = None) -> Runtime:
    if _runtime is None:
        initialize(context)
    assert _runtime is not None
    return _runtime


def handler(event: bytes, context: Any) -> dict[str, Any]:
    """FC handler: ``{"jobs": [...]}``; raises :class:`InvocationFailedError` if a job is ``error``."""
    started = time.monotonic()
    token = logs.request_id.set(getattr(context, "request_id", None) or str(uuid.uuid4()))
    try:
        rt = runtime(context)
        retries_before = _retries(rt)
        rt.credentials.update(resolve_credentials(os.environ, context))
        deadline = Deadline.from_context(context, started)
        reports = run(rt, event, deadline)
        summary = {"jobs": [report.public() for report in reports]}
        counts: dict[str, int] = {}
        for report in reports:
            counts[report.outcome.value] = counts.get(report.outcome.value, 0) + 1
        logs.info("invocation.done", outcomes=counts, jobs=len(reports),
                  durationMs=round((time.monotonic() - started) * 1000),
                  retries=_retries(rt, since=retries_before),
                  mpsRate={"limit": rt.mps.limiter.limit(), "cuts": rt.mps.limiter.rate.cuts})
        failed = [r for r in reports if r.outcome is Outcome.ERROR]
        if failed:
            detail = "; ".join(f"{r.job_id or r.message_id}: {r.reason}" for r in failed[:5])
            raise InvocationFailedError(short(f"{len(failed)} of {len(reports)} job(s) ended in error "
                                              f"(the trigger will retry): {detail}", 1000))
        return summary
    finally:
        logs.request_id.reset(token)


def _retries(rt: Runtime, since: dict[str, int] | None = None) -> dict[str, int]:
    """Retries by kind made by the instance, or (``since`` a previous value) by this invocation."""
    now = {**rt.mps.stats.snapshot(), **rt.storage.stats.snapshot()}
    if since is None:
        return now
    return {kind: count - since.get(kind, 0) for kind, count in now.items() if count > since.get(kind, 0)}


def run(rt: Runtime, event: bytes | str, deadline: Deadline) -> list[JobReport]:
    """Process an event; one report per distinct job id and per unusable message."""
    parsed = parse_event(event)
    reports = [_bad(message) for message in parsed.rejected]
    for message in parsed.rejected:
        logs.warning("event.rejected", reason=message.reason, messageId=message.message_id,
                     source=parsed.source)
    if parsed.sweep:
        try:
            job_ids = rt.registry.job_ids(deadline)
        except CollectorError as exc:
            return [*reports, JobReport(None, Outcome.ERROR, short(f"sweep could not list the pending "
                                                                   f"registry: {exc}"))]
        logs.info("sweep.start", pending=len(job_ids))
        futures = [logs.submit(rt.job_pool, _sweep_one, rt, job_id, deadline) for job_id in job_ids]
        swept = [future.result() for future in futures]
        skipped = sum(report is None for report in swept)
        if skipped:
            logs.info("sweep.deferred", jobs=skipped, reason="time budget; left for the next sweep")
        _clean_uploads(rt, deadline)
        return [*reports, *(report for report in swept if report is not None)]
    ahead = rt.query_ahead() if len(parsed.refs) > 1 else None
    ids = [ref.job_id for ref in parsed.refs]
    if ahead is not None:
        ahead.offer(ids, deadline)
    try:
        futures = [logs.submit(rt.job_pool, rt.processor.process, ref.job_id, deadline, ref.message_id)
                   for ref in parsed.refs]
        return [*reports, *(future.result() for future in futures)]
    finally:
        if ahead is not None:
            ahead.forget(ids)


def _clean_uploads(rt: Runtime, deadline: Deadline) -> None:
    """Abort multipart uploads that no live invocation can still own: older than twice the
    function's timeout (an invocation is killed at its timeout, so its uploads are then orphans)."""
    if deadline.remaining() < SWEEP_MIN_SECONDS:
        return
    try:
        aborted = abort_stale_uploads(rt.storage, rt.settings.dest_prefix, 2 * deadline.timeout, deadline)
    except CollectorError as exc:
        logs.warning("sweep.uploads_not_cleaned", error=short(str(exc)))
        return
    if aborted:
        logs.info("sweep.uploads_aborted", uploads=aborted)


def _sweep_one(rt: Runtime, job_id: str, deadline: Deadline) -> JobReport | None:
    if deadline.remaining() < SWEEP_MIN_SECONDS:
        return None
    return rt.processor.process(job_id, deadline)


def _bad(message: BadMessage) -> JobReport:
    return JobReport(None, Outcome.REJECTED, short(message.reason), message_id=message.message_id)
