"""The FC entry points behind ``index.initialize`` and ``index.handler``, and the instance's runtime.

``initialize`` validates the configuration and builds the instance's runtime once: an event loop
(uvloop's where available) on a thread of its own, kept across invocations with the OSS session and
the MPS client it owns, so warm invocations reuse their connections. ``handler`` runs the event's
flow (``flow.run``) on that loop, returns ``{"jobs": [...]}``, and raises only at the end, only for
``error`` outcomes. Concurrent invocations of one instance share the loop.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from . import flow, logs
from .budget import Deadline
from .config import Settings, describe, load_settings, log_options, unknown_variables
from .copier import Copier
from .credentials import CredentialsSource, resolve_credentials
from .errors import DestinationRefusedError, InvocationFailedError
from .mps import MPSClient
from .oss import Bucket, OSSClient, new_session
from .outcomes import JobReport, Outcome, short
from .pending import PendingRegistry
from .ratelimit import RateLimiter

T = TypeVar("T")

#: Versioning states in which OSS ignores ``x-oss-forbid-overwrite`` (the commit point cannot hold).
VERSIONED = ("Enabled", "Suspended")


def new_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop (a third less CPU per request than asyncio's), else asyncio's own."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is pinned; a platform without it still works
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class Loop:
    """An event loop running on a daemon thread for the life of the instance."""

    def __init__(self) -> None:
        self.loop = new_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="io-loop", daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coroutine`` on the loop and wait for its result from this (another) thread."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
        if not self.loop.is_running():
            self.loop.close()


@dataclass
class Runtime:
    """Everything an instance keeps between invocations."""

    settings: Settings
    credentials: CredentialsSource
    io: Loop
    oss: OSSClient
    mps: MPSClient
    dest: Bucket
    registry: PendingRegistry
    copier: Copier
    versioning: asyncio.Future[str | None] | None = field(default=None, init=False)

    async def check_destination(self, deadline: Deadline) -> None:
        """Refuse a destination bucket with versioning, where OSS ignores ``x-oss-forbid-overwrite``
        (so no commit point can hold). Its state is read once per instance, on first use; a failure
        to read it is retried by the next job that needs it."""
        if self.versioning is None or (self.versioning.done() and self.versioning.exception() is not None):
            self.versioning = asyncio.ensure_future(self.oss.versioning(self.dest, deadline))
        state = await asyncio.shield(self.versioning)
        if state in VERSIONED:
            raise DestinationRefusedError(
                f"destination bucket {self.dest.name} has versioning {state}: OSS ignores x-oss-forbid-overwrite "
                "there, so the manifest cannot be written once; use a bucket without versioning")

    def retries(self) -> dict[str, int]:
        """Retries by kind made by the instance so far."""
        return {**self.mps.stats.snapshot(), **self.oss.stats.snapshot()}

    def close(self) -> None:
        """Close the instance's connections and stop its loop (the local invoker and drills call this)."""
        async def close_clients() -> None:
            await self.mps.close()
            await self.oss.session.close()

        try:
            self.io.run(close_clients(), timeout=5)
        finally:
            self.io.stop()


def build_runtime(env: Mapping[str, str], context: Any = None) -> Runtime:
    settings = load_settings(env)
    credentials = CredentialsSource(resolve_credentials(env, context))
    io = Loop()

    async def clients() -> tuple[OSSClient, MPSClient]:
        # Made on the loop: an aiohttp session and an httpx.AsyncClient belong to the loop that made them.
        oss = OSSClient(new_session(settings.copy_concurrency), credentials, endpoint_for=settings.oss_endpoint_for,
                        slots=settings.copy_concurrency, timeout=settings.oss_timeout)
        limiter = RateLimiter(settings.mps_max_qps, adaptive=settings.mps_adaptive)
        mps = MPSClient(settings.mps_endpoint, credentials, limiter=limiter, signature=settings.mps_signature,
                        timeout=settings.mps_timeout)
        return oss, mps

    oss, mps = io.run(clients())
    dest = oss.bucket(settings.dest_bucket, settings.dest_region)
    return Runtime(settings, credentials, io, oss, mps, dest, PendingRegistry(oss, dest, settings),
                   Copier(oss, settings))


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def initialize(context: Any) -> None:
    """FC initializer: validate the configuration once per instance (raises naming the variable)."""
    global _runtime
    logs.configure(*log_options(os.environ))
    with _runtime_lock:
        if _runtime is None:
            for name, closest in unknown_variables(os.environ):
                hint = f"; did you mean {closest}?" if closest else ""
                logs.warning("config.unknown_variable", variable=name, closest=closest,
                             message=f"{name} is not a variable this function reads (it is ignored){hint}")
            _runtime = build_runtime(os.environ, context)
            logs.info("instance.initialized", settings=describe(_runtime.settings))


def pre_stop(context: Any) -> None:
    """FC preStop hook: close the instance's connections and stop its loop."""
    global _runtime
    with _runtime_lock:
        if _runtime is not None:
            _runtime.close()
            _runtime = None


def runtime(context: Any = None) -> Runtime:
    if _runtime is None:
        initialize(context)
    assert _runtime is not None
    return _runtime


def handler(event: bytes, context: Any) -> dict[str, Any]:
    """FC handler: ``{"jobs": [...]}``; raises :class:`InvocationFailedError` if a job is ``error``."""
    started = time.monotonic()
    request_id = getattr(context, "request_id", None) or str(uuid.uuid4())
    token = logs.request_id.set(request_id)
    try:
        rt = runtime(context)
        retries_before = rt.retries()
        rt.credentials.update(resolve_credentials(os.environ, context))
        deadline = Deadline.from_context(context, started)
        reports = rt.io.run(invoke(rt, event, deadline, request_id))
        summary = {"jobs": [report.public() for report in reports]}
        counts: dict[str, int] = {}
        for report in reports:
            counts[report.outcome.value] = counts.get(report.outcome.value, 0) + 1
        retries_now = rt.retries()
        logs.info("invocation.done", outcomes=counts, jobs=len(reports),
                  durationMs=round((time.monotonic() - started) * 1000),
                  retries={kind: n - retries_before.get(kind, 0) for kind, n in retries_now.items()
                           if n > retries_before.get(kind, 0)},
                  mpsRate={"limit": rt.mps.limiter.limit(), "cuts": rt.mps.limiter.rate.cuts})
        failed = [r for r in reports if r.outcome is Outcome.ERROR]
        if failed:
            detail = "; ".join(f"{r.job_id or r.message_id}: {r.reason}" for r in failed[:5])
            raise InvocationFailedError(short(f"{len(failed)} of {len(reports)} job(s) ended in error "
                                              f"(the trigger will retry): {detail}", 1000))
        return summary
    finally:
        logs.request_id.reset(token)


async def invoke(rt: Runtime, event: bytes | str, deadline: Deadline, request_id: str) -> list[JobReport]:
    """The flow on the loop, in the invocation's log context."""
    logs.request_id.set(request_id)
    return await flow.run(rt, event, deadline)
