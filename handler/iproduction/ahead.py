"""Query ahead: the first MPS call of each job of a batch, sent from the express lane's loop.

A batch (one MNS queue event) needs one ``QueryIProductionJob`` per job, at most ``MPS_MAX_QPS`` a
second. From the job threads, a window's calls leave as each thread gets the GIL and reaches its
call: spread over most of the window, and the next window, whose slots open one window after each
answer, is spread the same way. From one event loop, the calls a window allows leave together, and
the next window opens for all of them at once (the README's Performance section has the figures).

Only each job's first try goes this way. Its answer, or its failure, is handed to the job's thread
as that try's outcome: :meth:`MPSClient.call <iproduction.mps.MPSClient.call>` reads and classifies
it as its own, and retries, with their backoff, are the thread's. A call is queued only when the
job's thread claims it, which it does after its lookup found no manifest: a committed job is never
queried.
"""

from __future__ import annotations

import asyncio
import contextvars
import ssl
import threading
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from . import logs
from .budget import Deadline
from .errors import BudgetExceededError
from .express import ExpressLane
from .mps import HEADERS, MPSClient, MPSNetworkError, Reply, ca_bundle
from .transport import _header_block, tls_context

ACTION = "QueryIProductionJob"


@dataclass
class _Call:
    job_id: str
    deadline: Deadline
    future: Future[Reply | None] = field(default_factory=Future)
    skip_if: Callable[[], bool] | None = None
    context: contextvars.Context = field(default_factory=contextvars.copy_context)  # the request id


class QueryAhead:
    """Queues jobs' first calls (:meth:`offer`); a job's thread takes its call's outcome (:meth:`claim`)."""

    def __init__(self, mps: MPSClient, lane: ExpressLane) -> None:
        parts = urlsplit(mps.endpoint)
        scheme = parts.scheme.lower()
        self._key = (scheme, parts.hostname or "", parts.port or (443 if scheme == "https" else 80))
        self._netloc = parts.netloc
        self._path = (parts.path.rstrip("/") or "") + "/"
        self._mps = mps
        self._lane = lane
        self._tls: ssl.SSLContext | None = None
        self._lock = threading.Lock()
        self._calls: dict[str, _Call] = {}  # offered, not claimed yet
        self._queue: deque[_Call] = deque()  # on the loop: not sent yet, first come first served
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        #: Calls by what came of them: ``sent``, ``skipped`` (tests, bench).
        self.counts: dict[str, int] = {"sent": 0, "skipped": 0}

    # -- from the job threads -------------------------------------------------------------------
    def offer(self, job_ids: Iterable[str], deadline: Deadline) -> None:
        """Let these jobs' first calls go from the loop once claimed (a job offered twice keeps its first)."""
        with self._lock:
            for job_id in job_ids:
                self._calls.setdefault(job_id, _Call(job_id, deadline))

    def claim(self, job_id: str, skip_if: Callable[[], bool] | None = None) -> Future[Reply | None] | None:
        """Queue the job's first call, sent as the rate cap allows; its future (the answer, None if
        skipped, or the error it met), or None if it was not offered. ``skip_if`` is asked when a slot
        is free."""
        with self._lock:
            call = self._calls.pop(job_id, None)
        if call is None:
            return None
        call.skip_if = skip_if
        self._lane.schedule(lambda: self._enqueue([call]))
        return call.future

    def forget(self, job_ids: Iterable[str]) -> None:
        """Drop the calls nobody claimed (a job that stopped before its query); unsent ones are not sent."""
        with self._lock:
            dropped = [call for job_id in job_ids if (call := self._calls.pop(job_id, None)) is not None]
        for call in dropped:
            call.future.cancel()

    # -- on the loop ------------------------------------------------------------------------------
    def _enqueue(self, calls: list[_Call]) -> None:
        self._queue.extend(calls)
        self._pump()

    def _pump(self) -> None:
        """Send every call a slot is free for; come back when the next slot frees."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        limiter = self._mps.limiter
        while self._queue:
            call = self._queue[0]
            if call.future.done():  # forgotten
                self._queue.popleft()
                continue
            try:
                wait = limiter.try_acquire(call.deadline)
            except BudgetExceededError as exc:
                self._queue.popleft()
                if call.future.set_running_or_notify_cancel():
                    call.future.set_exception(exc)
                continue
            if wait:
                self._timer = asyncio.get_running_loop().call_later(wait, self._pump)
                return
            self._queue.popleft()
            if not call.future.set_running_or_notify_cancel():
                limiter.release(used=False)
                continue
            try:
                skip = call.skip_if is not None and call.skip_if()
            except Exception as exc:  # what the thread's own call would have raised
                limiter.release(used=False)
                call.future.set_exception(exc)
                continue
            if skip:
                limiter.release(used=False)
                self.counts["skipped"] += 1
                call.future.set_result(None)
                continue
            task = asyncio.ensure_future(self._send(call))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, call: _Call) -> None:
        try:
            query, signed = self._mps.signed(ACTION, {"JobId": call.job_id})
            data = _header_block("POST", f"{self._path}?{query}", self._netloc, {**HEADERS, **signed}, 0)
        except Exception as exc:  # credentials that cannot be read: the thread's call would raise the same
            self._mps.limiter.release(used=False)
            call.future.set_exception(exc)
            return
        self.counts["sent"] += 1
        timeout = max(0.1, min(self._mps.timeout, call.deadline.remaining()))
        try:
            answer = await self._lane.exchange(self._key, data, timeout=timeout, tls=self._context())
        except BaseException as exc:  # no answer, a bug, or the loop shutting down: the thread retries it
            self._mps.limiter.release(used=True)
            # As the thread's call: the class name only (a V2 URL holds the AccessKeyId and the token).
            call.context.run(logs.debug, "mps.ahead_failed", jobId=call.job_id, error=type(exc).__name__)
            call.future.set_exception(MPSNetworkError(f"MPS unreachable: {type(exc).__name__}"))
            if not isinstance(exc, Exception):
                raise
            return
        self._mps.limiter.release(used=True)  # before the thread reads it: a retry may want the slot
        call.future.set_result(Reply(answer.status, list(answer.headers.items()), answer.body))

    def _context(self) -> ssl.SSLContext | None:
        if self._key[0] != "https":
            return None
        if self._tls is None:
            self._tls = tls_context(ca_bundle())
        return self._tls
