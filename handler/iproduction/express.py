"""The express lane: same-region files below the multipart threshold, HEAD + CopyObject, on one event loop.

With a thread per request in flight, this function spent most of its CPU on threads rather than on
requests: every answer wakes a thread that must then take the GIL, and on a small FC instance
that costs more than building, signing and parsing the request (the README's Performance section
has the figures). Here one event loop (uvloop's, else asyncio's), on a thread of its own, drives up
to ``COPY_CONCURRENCY`` keep-alive connections: a wave of answers is one wake-up. oss2 still makes
each request's URL and :class:`~iproduction.ossauth.SigningAuth` signs it, so the requests on the
wire are the engine's.

Only the plain path runs here. Anything else hands the file back (:class:`HandBack`) to the
threaded engine (``copier.CopyEngine``), which starts the file over and decides as before: an error
answer (classified and counted like a retry, and waited for with the same backoff), a lost
connection or timeout, a file that needs parts, a destination that needs a closer look, a time
budget too short for the copy. Every step is safe to repeat: the copy carries the HEAD's ETag
(``x-oss-copy-source-if-match``).
"""

from __future__ import annotations

import asyncio
import contextvars
import ssl
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TypeVar, cast
from urllib.parse import urlencode

import oss2
from oss2 import exceptions as oss_errors

from . import logs
from .budget import CopyTimer, Deadline
from .errors import CredentialsError, IntegrityError, RejectedError, TransientError
from .layout import FilePlan
from .ossauth import uri_quote
from .retry import INTEGRITY_RETRY
from .storage import Listed, ObjectInfo, Storage, classify, object_info, translate
from .transport import MAX_HEADERS, MAX_LINE, Headers, _header_block, _target, keeps_alive, tls_context

T = TypeVar("T")

#: Never more than this in one header block (a bigger one is not an OSS answer).
MAX_HEAD = MAX_LINE + 8 * 1024


@dataclass(frozen=True)
class Copied:
    """The file is at its destination, verified (``action``: ``copied`` or ``skipped``)."""

    info: ObjectInfo
    etag: str
    action: str


@dataclass(frozen=True)
class NeedsParts:
    """At or above the multipart threshold: the engine copies it in parts."""

    info: ObjectInfo


@dataclass(frozen=True)
class HandBack:
    """The threaded engine takes the file over: after ``wait`` seconds, with ``integrity_failures``
    copies that did not verify already counted against its attempts."""

    reason: str
    wait: float = 0.0
    integrity_failures: int = 0


Outcome = Copied | NeedsParts | HandBack
_COUNTED = {NeedsParts: "parts", HandBack: "handed-back"}


@dataclass(frozen=True)
class Item:
    """One file for the lane, and what the engine knows of it."""

    plan: FilePlan
    source: oss2.Bucket
    listed: Listed | None
    deadline: Deadline
    context: contextvars.Context = field(default_factory=contextvars.copy_context)  # the job's log fields


@dataclass
class SignedRequest:
    """What :class:`~iproduction.ossauth.SigningAuth` reads and writes of a request (as oss2's
    ``http.Request``, with the headers in a plain dict by lower-case name)."""

    method: str
    url: str
    headers: dict[str, str]
    region: str | None
    product: str
    cloudbox_id: str | None
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Endpoint:
    """Where a bucket's requests go, worked out once from oss2's own URL for it."""

    key: tuple[str, str, int]  # scheme, host, port
    netloc: str
    url: str  # scheme://netloc
    path: str  # the path before the quoted object key, e.g. ``/`` or ``/bucket/``
    user_agent: str

    @classmethod
    def of(cls, bucket: oss2.Bucket) -> Endpoint:
        scheme, host, port, netloc, path = _target(bucket._make_url(bucket.bucket_name, ""), None)
        agent = oss2.http.USER_AGENT + (f"/{bucket.app_name}" if bucket.app_name else "")
        return cls((scheme, host, port), netloc, f"{scheme}://{netloc}", path, agent)


class AnswerError(Exception):
    """An answer that is not what was asked for, or none (the file is handed back)."""

    def __init__(self, error: Exception, what: str) -> None:
        super().__init__(f"{what}: {error}")
        self.error = error  # the oss2 exception the threaded engine would have met
        self.what = what


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Headers
    body: bytes

    # what oss2's exceptions.make_exception reads of a response
    @property
    def request_id(self) -> str:
        return self.headers.get("x-oss-request-id", "")

    def read(self, amt: int | None = None) -> bytes:
        return self.body if amt is None else self.body[:amt]


def new_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop (libuv, in C) where it is installed: a third less CPU per request than
    asyncio's own, which the lane falls back to (the README's Performance section has the figures)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _parse_head(block: bytes) -> tuple[int, Headers, bool]:
    """Status, headers and keep-alive of one answer's header block (without the blank line)."""
    lines = block.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or not code.isdigit():
        raise ConnectionError(f"not an HTTP/1.x answer: {lines[0][:40]!r}")
    if len(lines) > MAX_HEADERS + 1:
        raise ConnectionError("too many headers")
    fields: dict[str, str] = {}
    last = None
    for text in lines[1:]:
        if text[:1] in (" ", "\t") and last is not None:  # obsolete line folding
            fields[last] = f"{fields[last]} {text.strip()}"
            continue
        name, sep, value = text.partition(":")
        if not sep:
            raise ConnectionError(f"bad header line: {text[:40]!r}")
        name, value = name.strip().lower(), value.strip()
        fields[name] = f"{fields[name]}, {value}" if name in fields else value
        last = name
    headers = Headers(fields)
    return int(code), headers, keeps_alive(version, headers)


def _dechunk(data: bytearray) -> tuple[bytes, int] | None:
    """A whole chunked body at the start of ``data``: (body, bytes used), or None if not all there."""
    body, pos = bytearray(), 0
    while True:
        end = data.find(b"\r\n", pos)
        if end < 0:
            return None
        try:
            size = int(bytes(data[pos:end]).split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise ConnectionError("bad chunk size") from None
        pos = end + 2
        if size == 0:
            trailers = data.find(b"\r\n\r\n", pos - 2)
            if trailers < 0:
                return None
            return bytes(body), trailers + 4
        if len(data) < pos + size + 2:
            return None
        body += data[pos:pos + size]
        if data[pos + size:pos + size + 2] != b"\r\n":
            raise ConnectionError("bad chunk ending")
        pos += size + 2


class Wire(asyncio.Protocol):
    """One keep-alive connection, one request at a time; its answer read whole (they are small)."""

    def __init__(self, key: tuple[str, str, int]) -> None:
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._buffer = bytearray()
        self._waiter: asyncio.Future[Answer] | None = None
        self._head_only = False
        self._answer: tuple[int, Headers, bool] | None = None
        self._until_close = False
        self.keep = False

    # -- asyncio callbacks ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not its subclasses

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._waiter is None:
            self.abort()  # nothing was asked: not a connection to trust
            return
        try:
            self._parse()
        except ConnectionError as exc:
            self._fail(exc)

    def eof_received(self) -> bool | None:
        self._closed_by_server()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed_by_server()

    # -- use --------------------------------------------------------------------------------
    @property
    def usable(self) -> bool:
        return (not self.closed and self.transport is not None and not self.transport.is_closing()
                and not self._buffer)

    def send(self, data: bytes, head_only: bool) -> asyncio.Future[Answer]:
        assert self.transport is not None and self._waiter is None
        self._waiter = asyncio.get_running_loop().create_future()
        self._head_only, self._answer, self._until_close, self.keep = head_only, None, False, False
        self.transport.write(data)
        return self._waiter

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _closed_by_server(self) -> None:
        self.closed = True
        if self._waiter is not None and self._until_close:
            self._complete(bytes(self._buffer))  # a body framed by the connection closing
            return
        self._fail(ConnectionError("the connection closed before the answer was complete"))

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.abort()

    def _complete(self, body: bytes) -> None:
        assert self._answer is not None
        status, headers, keep = self._answer
        waiter, self._waiter = self._waiter, None
        self.keep = keep and not self.closed
        if waiter is not None and not waiter.done():
            waiter.set_result(Answer(status, headers, body))

    def _parse(self) -> None:
        while self._answer is None:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_HEAD:
                    raise ConnectionError("header block too long")
                return
            status, headers, keep = _parse_head(bytes(self._buffer[:end]))
            del self._buffer[:end + 4]
            if not 100 <= status < 200:  # interim answers (100 Continue) are skipped
                self._answer = (status, headers, keep)
        status, headers, keep = self._answer
        if self._head_only or status in (204, 304):
            self._complete(b"")
        elif "chunked" in (headers.get("transfer-encoding") or "").lower():
            whole = _dechunk(self._buffer)
            if whole is not None:
                del self._buffer[:whole[1]]
                self._complete(whole[0])
        elif headers.get("content-length") is not None:
            try:
                length = int(headers["content-length"])
            except ValueError:
                raise ConnectionError("bad Content-Length") from None
            if len(self._buffer) >= length:
                body = bytes(self._buffer[:length])
                del self._buffer[:length]
                self._complete(body)
        else:
            self._answer, self._until_close = (status, headers, False), True  # the body ends when the server closes


class ExpressLane:
    """The loop, its connections and the per-file flow; ``submit`` from any thread."""

    def __init__(self, storage: Storage, timer: CopyTimer, concurrency: int, threshold: int,
                 ca: str | None = None) -> None:
        self.storage = storage
        self.timer = timer
        self.concurrency = concurrency
        self.threshold = threshold
        self._ca = ca
        self._tls: ssl.SSLContext | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._queue: deque[tuple[Item, Future[Outcome], list[Future[Outcome]]]] = deque()
        self._workers = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle: dict[tuple[str, str, int], list[Wire]] = {}
        self._endpoints: dict[tuple[str, str, str], Endpoint] = {}
        #: Files by what came of them here: ``copied``, ``skipped``, ``parts``, ``handed-back`` (tests, bench).
        self.counts: Counter[str] = Counter()
        self._busy: set[Wire] = set()
        self._running: set[Future[Outcome]] = set()
        self._calls: dict[asyncio.Task[object], Future[object]] = {}  # from run()

    # -- from the engine's threads -----------------------------------------------------------
    def submit(self, items: list[Item]) -> list[Future[Outcome]]:
        """Queue every item (first come, first served); a future per item. A future cancelled before
        its file started is skipped; a file that rejects the job (or finds the credentials refused)
        cancels the items of its ``submit`` not started yet, here on the loop, before the next one starts."""
        loop = self._running_loop()
        futures: list[Future[Outcome]] = [Future() for _ in items]
        loop.call_soon_threadsafe(self._enqueue, [(item, future, futures) for item, future in
                                                  zip(items, futures, strict=True)])
        return futures

    def close(self) -> None:
        with self._start_lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(self._shutdown)
        thread.join(timeout=5)
        if not thread.is_alive():
            loop.close()

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._start_lock:
            if self._loop is None:
                loop = new_loop()
                ready = threading.Event()
                loop.call_soon(ready.set)
                thread = threading.Thread(target=loop.run_forever, name="express", daemon=True)
                thread.start()
                ready.wait()
                self._loop, self._thread = loop, thread
            return self._loop

    # -- on the loop -------------------------------------------------------------------------
    def _shutdown(self) -> None:
        stopped = TransientError("the instance is shutting down")
        for _, future, _ in self._queue:
            if future.set_running_or_notify_cancel():
                future.set_exception(stopped)
        self._queue.clear()
        for future in self._running:
            if not future.done():
                future.set_exception(stopped)
        for task, call in list(self._calls.items()):
            task.cancel()
            if not call.done():
                call.set_exception(stopped)
        self._calls.clear()
        for wire in [*self._busy, *(w for idle in self._idle.values() for w in idle)]:
            wire.abort()
        self._idle.clear()
        asyncio.get_running_loop().stop()

    def _enqueue(self, work: list[tuple[Item, Future[Outcome], list[Future[Outcome]]]]) -> None:
        self._queue.extend(work)
        while self._workers < min(self.concurrency, len(self._queue)):
            self._workers += 1
            task = asyncio.ensure_future(self._worker())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _worker(self) -> None:
        """One of at most ``concurrency``: takes files off the queue until it is empty."""
        try:
            while self._queue:
                item, future, batch = self._queue.popleft()
                if not future.set_running_or_notify_cancel():
                    continue
                self._running.add(future)
                try:
                    outcome = await self._file(item)
                except Exception as exc:  # what the threaded engine raises too (or a bug): the job decides
                    self.counts["failed"] += 1
                    if isinstance(exc, (RejectedError, CredentialsError)):
                        for other in batch:
                            other.cancel()  # only those not started: the job's outcome is decided
                    future.set_exception(exc)
                else:
                    self.counts[outcome.action if isinstance(outcome, Copied) else _COUNTED[type(outcome)]] += 1
                    future.set_result(outcome)
                finally:
                    self._running.discard(future)
        finally:
            self._workers -= 1

    async def _file(self, item: Item) -> Outcome:
        """The file's outcome; raises what the threaded engine would raise for the same answers."""
        try:
            return await self._flow(item)
        except AnswerError as exc:
            wait = self.retry_wait(exc, item.deadline)
            return HandBack(f"retried: {classify(exc.error).kind}", wait)

    def retry_wait(self, exc: AnswerError, deadline: Deadline) -> float:
        """How long to wait before the threaded engine tries again what failed here (counted as a
        retry); raises the function's own error when it is not to be retried or there is no time."""
        verdict = classify(exc.error)
        wait = self.storage.policy.delay(0)
        if verdict.retry_after is not None:
            wait = max(wait, verdict.retry_after)
        if not verdict.retry or deadline.remaining() < wait + 0.05:
            raise translate(exc.error, exc.what) from None
        self.storage.stats.add(verdict.kind)
        return wait

    async def _flow(self, item: Item) -> Outcome:
        plan, deadline = item.plan, item.deadline
        deadline.check(0.1, "start a copy")
        head = await self.request(item.source, "HEAD", plan.source_key, {}, f"HEAD {plan.source_bucket}/"
                                  f"{plan.source_key}", head_only=True)
        if head.status == 404:
            if isinstance(oss_errors.make_exception(head), oss_errors.NoSuchBucket):
                raise RejectedError(f"bucket {plan.source_bucket} does not exist")
            raise RejectedError(f"result file missing from OSS: {plan.source_url}")
        info = object_info(head.headers)
        if (info.object_type or "").lower() == "appendable":
            raise RejectedError(f"result file is an appendable object, which OSS cannot copy: {plan.source_url}")
        if info.multipart_etag:
            return HandBack("a multipart source: its copy is checked by a HEAD")
        listed = item.listed
        if listed is not None and listed.size == info.size:
            if listed.etag == info.etag:
                return Copied(info, listed.etag, "skipped")  # a single-part ETag is the MD5 of the bytes
            if info.crc64 is not None:
                return HandBack("the destination needs a closer look")
        if info.size >= self.threshold:
            return NeedsParts(info)
        deadline.check(self.timer.estimate(info.size), f"copy {plan.source_url}")
        started = time.monotonic()
        copy_source = f"/{plan.source_bucket}/{uri_quote(plan.source_key)}"
        answer = await self.request(self.storage.dest, "PUT", plan.dest_key,
                                    {"x-oss-copy-source": copy_source,
                                     "x-oss-copy-source-if-match": f'"{info.etag}"'}, f"copy {plan.source_url}")
        self.timer.observe(info.size, time.monotonic() - started)
        etag = (answer.headers.get("etag") or "").strip('"').upper()
        if etag != info.etag:
            # A copy of a single-part object keeps its ETag (the MD5 of its bytes): any other is a wrong copy.
            error = IntegrityError(f"corrupted on transfer: CopyObject of {plan.source_url} returned ETag "
                                   f"{etag or '(none)'}, the source's is {info.etag}")
            item.context.run(logs.warning, "copy.integrity", file=plan.source_url, error=str(error), attempt=1)
            self.storage.stats.add(INTEGRITY_RETRY)
            return HandBack("did not verify", integrity_failures=1)
        return Copied(info, etag, "copied")

    async def request(self, bucket: oss2.Bucket, method: str, key: str, headers: dict[str, str], what: str, *,
                      params: dict[str, str] | None = None, body: bytes = b"", head_only: bool = False) -> Answer:
        """One signed request on a pooled connection (``key`` empty for the bucket itself); any answer
        but a 2xx (or a HEAD's 404) raises :class:`AnswerError` holding the exception oss2 would have raised."""
        where = (bucket.bucket_name, bucket.endpoint, bucket.app_name)
        endpoint = self._endpoints.get(where)
        if endpoint is None:
            endpoint = self._endpoints[where] = Endpoint.of(bucket)
        target = endpoint.path + uri_quote(key)
        if params:
            target += "?" + urlencode(params)
        request = SignedRequest(method, endpoint.url + target, {"user-agent": endpoint.user_agent, **headers},
                                bucket.region, bucket.product, bucket.cloudbox_id, dict(params or {}))
        bucket.auth._sign_request(request, bucket.bucket_name, key)
        data = _header_block(method, target, endpoint.netloc, request.headers, len(body)) + body
        try:
            answer = await self.exchange(endpoint.key, data, head_only=head_only,
                                         timeout=self.storage.settings.oss_timeout)  # as the threaded engine's
        except (OSError, asyncio.TimeoutError) as exc:
            raise AnswerError(oss_errors.RequestError(exc), what) from None
        if answer.status // 100 != 2 and not (head_only and answer.status == 404):
            raise AnswerError(oss_errors.make_exception(answer), what)
        return answer

    async def exchange(self, key: tuple[str, str, int], data: bytes, *, timeout: float, head_only: bool = False,
                       tls: ssl.SSLContext | None = None) -> Answer:
        """Send one request (its whole header block, no body) on a pooled connection to ``key``
        (scheme, host, port) and read its answer; raises ``OSError`` or ``TimeoutError`` when there
        is none. ``tls``: the context for an ``https`` key (default: the lane's own)."""
        wire = self._idle_wire(key)
        if wire is None:
            wire = await asyncio.wait_for(self._connect(key, tls), timeout)
        self._busy.add(wire)
        loop = asyncio.get_running_loop()
        waiter = wire.send(data, head_only)
        timer = loop.call_later(timeout, wire._fail, TimeoutError(f"no answer in {timeout:.1f}s"))
        try:
            answer = await waiter
        except (OSError, asyncio.CancelledError):
            wire.abort()
            raise
        finally:
            timer.cancel()
            self._busy.discard(wire)
        if wire.keep and wire.usable:
            idle = self._idle.setdefault(wire.key, [])
            if len(idle) < self.concurrency:
                idle.append(wire)
            else:
                wire.abort()
        else:
            wire.abort()
        return answer

    def run(self, coroutine: Coroutine[object, object, T]) -> Future[T]:
        """Run ``coroutine`` on the lane's loop (from any thread): its result or exception in the future."""
        future: Future[T] = Future()
        self._running_loop().call_soon_threadsafe(self._start_call, coroutine, future)
        return future

    def _start_call(self, coroutine: Coroutine[object, object, T], future: Future[T]) -> None:
        if not future.set_running_or_notify_cancel():
            coroutine.close()
            return
        task = asyncio.ensure_future(coroutine)
        self._calls[task] = future
        task.add_done_callback(self._call_done)

    def _call_done(self, task: asyncio.Task[object]) -> None:
        future = self._calls.pop(task, None)
        if future is None or future.done():
            return
        if task.cancelled():
            future.set_exception(TransientError("the instance is shutting down"))
        elif task.exception() is not None:
            future.set_exception(task.exception())  # type: ignore[arg-type]
        else:
            future.set_result(task.result())

    def schedule(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` on the lane's loop (from any thread), starting the loop if need be."""
        self._running_loop().call_soon_threadsafe(callback)

    def _idle_wire(self, key: tuple[str, str, int]) -> Wire | None:
        idle = self._idle.get(key)
        while idle:
            wire = idle.pop()
            if wire.usable:
                return wire
            wire.abort()
        return None

    async def _connect(self, key: tuple[str, str, int], tls: ssl.SSLContext | None = None) -> Wire:
        scheme, host, port = key
        tls = (tls or self._context()) if scheme == "https" else None
        _, wire = await asyncio.get_running_loop().create_connection(
            lambda: Wire(key), host, port, ssl=tls, server_hostname=host if tls else None)
        return wire

    def _context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = tls_context(self._ca)
        return self._tls

