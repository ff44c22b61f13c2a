"""A job's lookups: the listing of its destination prefix and its pending record.

With the express lane, both go from its loop, where a request costs about a third of the CPU of a
threaded oss2 one (the README's Performance section); without it, each is a threaded call.

Only the first try runs on the loop. An answer to retry is counted and waited for as the threaded
call would, then the threaded call (``Storage.list_prefix``, ``PendingRegistry.get``, with its own
retries) takes over; an answer not to retry comes out as the function's own error, as there.
"""

from __future__ import annotations

import contextvars
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from concurrent.futures import Future, InvalidStateError, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote
from xml.etree import ElementTree

import oss2
from oss2 import exceptions as oss_errors
from oss2.utils import iso8601_to_unixtime

from . import logs
from .budget import Deadline
from .errors import TransientError
from .layout import job_prefix, pending_key
from .pending import PendingRecord, PendingRegistry
from .storage import Listed, Storage, check_read, decode_json

if TYPE_CHECKING:  # asyncio is imported with the lane, on first use, not at cold start
    import asyncio

    from .express import ExpressLane

T = TypeVar("T")


@dataclass(frozen=True)
class Started:
    """A job's two lookups, under way."""

    listing: Future[dict[str, Listed]]
    record: Future[PendingRecord | None]


@dataclass(frozen=True)
class _Again:
    """The loop's try failed and is to be retried by the threaded call, after ``wait`` seconds."""

    wait: float


def parse_listing(body: bytes) -> tuple[list[Listed], str | None]:
    """A ListObjectsV2 page, read as oss2 reads it: its objects and, if truncated, the next token."""
    root = ElementTree.fromstring(body)
    encoded = root.findtext("EncodingType") == "url"
    found = []
    for node in root.iterfind("Contents"):
        key = node.findtext("Key") or ""
        found.append(Listed(unquote(key) if encoded else key, int(node.findtext("Size") or 0),
                            (node.findtext("ETag") or "").strip('"').upper(),
                            iso8601_to_unixtime(node.findtext("LastModified") or "")))
    if (root.findtext("IsTruncated") or "").lower() != "true":
        return found, None
    token = root.findtext("NextContinuationToken") or ""
    return found, unquote(token) if encoded else token


def _settle(future: Future[T], value: Any = None, error: BaseException | None = None) -> None:
    """Complete ``future`` unless it is done already."""
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)
    except InvalidStateError:
        pass


class Lookups:
    """Starts jobs' lookups on the lane or, without one, on ``pool`` (which also takes the retries)."""

    def __init__(self, storage: Storage, registry: PendingRegistry, pool: ThreadPoolExecutor,
                 lane: Callable[[], ExpressLane | None]) -> None:
        self.storage = storage
        self.registry = registry
        self.pool = pool
        self._lane = lane  # the engine's lane (built on first use), or None
        self._gate: asyncio.Semaphore | None = None  # on the loop
        #: Lookups by where they ended: ``loop``, ``threaded`` (tests, bench).
        self.counts: Counter[str] = Counter()

    def start(self, job_id: str, deadline: Deadline, now: float) -> Started:
        """Start the job's two lookups."""
        dest = self.storage.dest
        prefix = job_prefix(self.storage.settings.dest_prefix, job_id)

        def listing() -> dict[str, Listed]:
            return self.storage.list_prefix(dest, prefix, deadline)

        def record() -> PendingRecord | None:
            return self.registry.get(job_id, deadline, now)

        lane = self._lane()
        if lane is None:
            return Started(logs.submit(self.pool, listing), logs.submit(self.pool, record))
        key = pending_key(self.storage.settings.dest_prefix, job_id)
        return Started(self._on_loop(lane, self._list(lane, dest, prefix, deadline), listing, lambda found: found),
                       self._on_loop(lane, self._get(lane, dest, key, deadline), record,
                                     lambda data: self.registry.record(job_id, decode_json(data), now)))

    # -- where they run ---------------------------------------------------------------------------
    def _on_loop(self, lane: ExpressLane, coroutine: Coroutine[Any, Any, Any], threaded: Callable[[], T],
                 finish: Callable[[Any], T]) -> Future[T]:
        """``coroutine`` on the loop, its answer through ``finish``; the threaded call if it asks for a retry."""
        outer: Future[T] = Future()
        context = contextvars.copy_context()  # the job's log fields, for the threaded call

        def landed(inner: Future[Any]) -> None:
            error = inner.exception()
            if error is not None:
                _settle(outer, error=error)
            elif isinstance(inner.result(), _Again):
                self.counts["threaded"] += 1
                try:
                    self.pool.submit(context.run, self._again, inner.result().wait, threaded, outer)
                except RuntimeError:  # the pool is shut down
                    _settle(outer, error=TransientError("the instance is shutting down"))
            else:
                self.counts["loop"] += 1
                try:
                    _settle(outer, finish(inner.result()))
                except Exception as exc:  # a bug: the job decides
                    _settle(outer, error=exc)

        lane.run(coroutine).add_done_callback(landed)
        return outer

    @staticmethod
    def _again(wait: float, threaded: Callable[[], T], outer: Future[T]) -> None:
        time.sleep(wait)
        try:
            _settle(outer, threaded())
        except BaseException as exc:
            _settle(outer, error=exc)

    # -- on the loop ------------------------------------------------------------------------------
    def _slot(self, lane: ExpressLane) -> asyncio.Semaphore:
        """At most the lane's concurrency of lookups at once, the copies' connections aside."""
        if self._gate is None:
            import asyncio

            self._gate = asyncio.Semaphore(lane.concurrency)
        return self._gate

    async def _list(self, lane: ExpressLane, bucket: oss2.Bucket, prefix: str,
                    deadline: Deadline) -> dict[str, Listed] | _Again:
        """Every object under ``prefix``, as ``Storage.list_prefix`` finds them."""
        from .express import AnswerError

        what = f"LIST {bucket.bucket_name}/{prefix}"
        found: dict[str, Listed] = {}
        params = {"list-type": "2", "prefix": prefix, "max-keys": "1000", "encoding-type": "url"}
        async with self._slot(lane):
            while True:
                try:
                    answer = await lane.request(bucket, "GET", "", {}, what, params=params)
                    page, token = parse_listing(answer.body)
                except AnswerError as exc:
                    return _Again(lane.retry_wait(exc, deadline))
                except (ElementTree.ParseError, ValueError):
                    return _Again(0.0)  # not a listing: the threaded call sees for itself
                found.update((listed.key, listed) for listed in page)
                if token is None:
                    return found
                params = {**params, "continuation-token": token}

    async def _get(self, lane: ExpressLane, bucket: oss2.Bucket, key: str, deadline: Deadline) -> bytes | _Again | None:
        """A small object's bytes, None if there is none, as ``Storage.get_json`` reads them."""
        from .express import AnswerError

        what = f"GET {bucket.bucket_name}/{key}"
        async with self._slot(lane):
            try:
                answer = await lane.request(bucket, "GET", key, {}, what)
            except AnswerError as exc:
                if isinstance(exc.error, oss_errors.NoSuchKey):
                    return None
                return _Again(lane.retry_wait(exc, deadline))
        crc = answer.headers.get("x-oss-hash-crc64ecma")
        try:
            check_read(answer.body, int(crc) if crc and crc.isdigit() else None, answer.request_id)
        except oss_errors.InconsistentError as damaged:
            return _Again(lane.retry_wait(AnswerError(damaged, what), deadline))
        return answer.body
