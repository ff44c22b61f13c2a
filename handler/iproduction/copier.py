"""The copier: a job's result files delivered to the destination, verified, never overwriting a commit
(docs/architecture.md, 'Copying a file')."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from oss2 import exceptions as oss_errors

from . import logs
from .budget import CopyTimer, Deadline
from .config import Settings
from .crc64 import combine_all, crc64
from .errors import (
    BudgetExceededError,
    CollectorError,
    CommittedMeanwhileError,
    CredentialsError,
    IntegrityError,
    RejectedError,
    TransientError,
)
from .layout import FilePlan
from .oss import Bucket, Listed, ObjectInfo, OSSClient, Reply, copy_source, xml_text
from .retry import INTEGRITY_RETRY

T = TypeVar("T")

MIN_PART = 100 * 1024
MAX_PARTS = 10_000
PROGRESS_INTERVAL = 5.0
#: A file whose copy does not verify is copied again this many times within the invocation.
FILE_ATTEMPTS = 3
STREAM_CHUNK = 256 * 1024


@dataclass(frozen=True)
class CopiedFile:
    """A result file that is now intact at its destination."""

    plan: FilePlan
    size: int
    crc64: int | None  # the source's x-oss-hash-crc64ecma
    etag: str  # the destination's ETag
    content_type: str | None
    action: str  # "copied" | "skipped"
    transfer: str = "server-side"


@dataclass(frozen=True)
class Part:
    number: int
    etag: str
    size: int
    crc: int | None = None


class ExistsError(Exception):
    """The destination object exists already (``x-oss-forbid-overwrite`` answered 409)."""


@dataclass
class Strategy:
    """How the bytes of one file (or one part of it) reach the destination."""

    oss: OSSClient
    dest: Bucket
    source: Bucket
    timer: CopyTimer
    name: ClassVar[str] = ""

    def threshold(self, settings: Settings) -> int:
        """Files this large or larger go in parts."""
        return settings.multipart_threshold

    async def whole(self, plan: FilePlan, info: ObjectInfo, overwrite: bool, deadline: Deadline) -> str:
        """Transfer a whole file in one request; return the destination ETag (verified).
        Raises :class:`ExistsError` when the destination exists and ``overwrite`` is false."""
        raise NotImplementedError

    async def part(self, plan: FilePlan, info: ObjectInfo, upload_id: str, number: int,
                   byte_range: tuple[int, int], deadline: Deadline) -> Part:
        """Transfer one part (``byte_range`` inclusive)."""
        raise NotImplementedError

    def check_parts(self, plan: FilePlan, info: ObjectInfo, parts: list[Part]) -> None:
        """Raise :class:`IntegrityError` if the parts do not add up to the source (default: the HEAD after Complete)."""

    async def timed(self, size: int, attempt: Callable[[], Awaitable[T]], what: str, deadline: Deadline,
                    bucket: Bucket) -> T:
        """``oss.call(attempt)``, its time observed by the strategy's timer."""
        started = time.monotonic()
        result = await self.oss.call(attempt, what, deadline, bucket)
        self.timer.observe(size, time.monotonic() - started)
        return result


def part_ranges(size: int, part_size: int, concurrency: int) -> list[tuple[int, int]]:
    """Inclusive byte ranges for a multipart transfer, at most ``part_size`` each, evened out to fill whole
    waves of ``concurrency`` connections (docs/architecture.md, 'Copying a file')."""
    part_size = max(part_size, MIN_PART, math.ceil(size / MAX_PARTS))
    count = max(1, math.ceil(size / part_size))
    if count > 1:  # whole waves
        count = min(math.ceil(count / concurrency) * concurrency, MAX_PARTS, max(1, size // MIN_PART))
    step = math.ceil(size / count)
    return [(start, min(start + step, size) - 1) for start in range(0, size, step)]


def forbid(overwrite: bool) -> dict[str, str]:
    return {} if overwrite else {"x-oss-forbid-overwrite": "true"}


async def fenced(oss: OSSClient, method: str, bucket: Bucket, key: str, deadline: Deadline, **kwargs: Any) -> Reply:
    """``oss.send``, with the fence's answer (409 ``FileAlreadyExists``) raised as :class:`ExistsError`."""
    try:
        return await oss.send(method, bucket, key, deadline, **kwargs)
    except oss_errors.ServerError as exc:
        if exc.status == 409 and exc.code == "FileAlreadyExists":
            raise ExistsError(key) from None
        raise


async def settle(coroutines: Iterable[Awaitable[T]], stop_on: tuple[type[BaseException], ...] = ()) -> list[T]:
    """Run ``coroutines`` at once; their results in order, or the worst error once all have finished (an error
    of a ``stop_on`` kind cancels the others at once). Cancelling this cancels them all."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    errors: list[BaseException] = []
    try:
        pending: set[asyncio.Future[T]] = set(tasks)
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
            errors += [exc for task in done if not task.cancelled() and (exc := task.exception()) is not None]
            if any(isinstance(e, stop_on) for e in errors):
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                break
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    if errors:  # the one that decides the job's outcome: rejected > credentials > committed meanwhile > transient
        kinds = (RejectedError, CredentialsError, CommittedMeanwhileError, TransientError)
        raise next((exc for kind in kinds for exc in errors if isinstance(exc, kind)), errors[0])
    return [task.result() for task in tasks]


class Progress:
    """Counts a job's copied files and bytes; logs a line at most every few seconds."""

    def __init__(self, files: int, interval: float = PROGRESS_INTERVAL) -> None:
        self.files_total = files
        self.files_done = 0
        self.bytes_total = 0
        self.bytes_done = 0
        self._throttle = logs.Throttle(interval)

    def expect(self, size: int) -> None:
        self.bytes_total += size

    def add(self, size: int, files: int = 0) -> None:
        self.bytes_done += size
        self.files_done += files
        if self._throttle.ready():
            logs.info("job.progress", filesDone=self.files_done, filesTotal=self.files_total,
                      bytesDone=self.bytes_done, bytesTotal=self.bytes_total)


class ServerSide(Strategy):
    """CopyObject / UploadPartCopy: the bytes never leave OSS (same region only)."""

    name = "server-side"

    async def whole(self, plan: FilePlan, info: ObjectInfo, overwrite: bool, deadline: Deadline) -> str:
        # if-match: copy exactly the version the HEAD described (412 if it changed meanwhile).
        headers = {"x-oss-copy-source": copy_source(plan.source_bucket, plan.source_key),
                   "x-oss-copy-source-if-match": f'"{info.etag}"', **forbid(overwrite)}

        async def attempt() -> str:
            reply = await fenced(self.oss, "PUT", self.dest, plan.dest_key, deadline, headers=headers,
                                 needs=self.timer.estimate(info.size))
            return reply.etag  # from the ETag header, as oss2 reads it (the XML body says the same)

        etag = await self.timed(info.size, attempt, f"copy {plan.source_url}", deadline, self.dest)
        if info.multipart_etag:
            # OSS keeps a multipart source's `-N` ETag, which says nothing of the bytes: check by HEAD.
            return await verify_destination(self.oss, self.dest, plan, info, deadline)
        if etag != info.etag:
            # A copy of a single-part object keeps its ETag (the MD5 of its bytes): any other is a wrong copy.
            raise IntegrityError(f"corrupted on transfer: CopyObject of {plan.source_url} returned ETag "
                                 f"{etag or '(none)'}, the source's is {info.etag}")
        return etag

    async def part(self, plan: FilePlan, info: ObjectInfo, upload_id: str, number: int,
                   byte_range: tuple[int, int], deadline: Deadline) -> Part:
        size = byte_range[1] - byte_range[0] + 1
        headers = {"x-oss-copy-source": copy_source(plan.source_bucket, plan.source_key),
                   "x-oss-copy-source-range": f"bytes={byte_range[0]}-{byte_range[1]}",
                   "x-oss-copy-source-if-match": f'"{info.etag}"'}

        async def attempt() -> Part:
            reply = await self.oss.send("PUT", self.dest, plan.dest_key, deadline, headers=headers,
                                        params={"partNumber": str(number), "uploadId": upload_id},
                                        needs=self.timer.estimate(size))
            return Part(number, (reply.headers.get("etag") or "").strip('"'), size)

        return await self.timed(size, attempt, f"copy part {number} of {plan.source_url}", deadline, self.dest)


class Streamed(Strategy):
    """Across regions (no CopyObject there, oss.md §1.1): a ranged GET piped into PutObject / UploadPart, CRC-64
    checked end to end; one slot (the GET's) and two connections (the upload it feeds is paired)."""

    name = "streamed"

    def threshold(self, settings: Settings) -> int:
        """Above one part's size a file goes in parallel parts (one stream is one connection's speed)."""
        return min(settings.multipart_threshold, settings.part_size)

    async def pipe(self, plan: FilePlan, info: ObjectInfo, byte_range: tuple[int, int] | None, deadline: Deadline,
                   what: str, params: dict[str, str] | None, headers: dict[str, str]) -> tuple[str, int]:
        """GET (a range of) the source and send it as one upload; returns the upload's ETag and the
        CRC-64 of the bytes sent, which must be the one the destination answers."""
        size = info.size if byte_range is None else byte_range[1] - byte_range[0] + 1
        get_headers = {"If-Match": f'"{info.etag}"'}
        if byte_range is not None:
            get_headers["Range"] = f"bytes={byte_range[0]}-{byte_range[1]}"

        async def attempt() -> tuple[str, int]:
            async with self.oss.open("GET", self.source, plan.source_key, deadline, headers=get_headers,
                                     needs=self.timer.estimate(size)) as response:
                if byte_range is not None and response.status != 206 and size != info.size:
                    raise oss_errors.InconsistentError("the source ignored the byte range", "")
                crc = 0

                async def chunks() -> AsyncIterator[bytes]:
                    nonlocal crc
                    left = size
                    async for data in response.content.iter_chunked(STREAM_CHUNK):
                        if deadline.expired():
                            # The upload is aborted and the job reported within the reserve, instead of
                            # the instance being killed mid-transfer with nothing reported.
                            raise BudgetExceededError(f"time budget exhausted mid-stream, {left} of {size} "
                                                      "bytes still to send")
                        crc = crc64(data, crc)
                        left -= len(data)
                        yield data
                    if left:
                        raise oss_errors.InconsistentError(f"source stream ended {left} bytes early", "")

                reply = await fenced(self.oss, "PUT", self.dest, plan.dest_key, deadline, params=params,
                                     headers={**headers, "Content-Length": str(size)}, body=chunks(), paired=True)
            if reply.crc is not None and reply.crc != crc:
                raise oss_errors.InconsistentError("destination CRC differs from the bytes sent", reply.request_id)
            return reply.etag, crc

        return await self.timed(size, attempt, what, deadline, self.source)

    async def whole(self, plan: FilePlan, info: ObjectInfo, overwrite: bool, deadline: Deadline) -> str:
        headers = {"Content-Type": "application/octet-stream", **info.carried, **forbid(overwrite)}
        etag, crc = await self.pipe(plan, info, None, deadline, f"stream {plan.source_url}", None, headers)
        if info.crc64 is not None and crc != info.crc64:
            raise IntegrityError(f"corrupted on transfer: the bytes read from {plan.source_url} do not match "
                                 "its CRC-64")
        if not info.multipart_etag and etag != info.etag:
            raise IntegrityError(f"corrupted on transfer: {plan.source_url} MD5 differs at the destination")
        return etag

    async def part(self, plan: FilePlan, info: ObjectInfo, upload_id: str, number: int,
                   byte_range: tuple[int, int], deadline: Deadline) -> Part:
        size = byte_range[1] - byte_range[0] + 1
        etag, crc = await self.pipe(plan, info, byte_range, deadline, f"stream part {number} of {plan.source_url}",
                                    {"partNumber": str(number), "uploadId": upload_id},
                                    {"Content-Type": "application/octet-stream"})
        return Part(number, etag, size, crc)

    def check_parts(self, plan: FilePlan, info: ObjectInfo, parts: list[Part]) -> None:
        if info.crc64 is None or any(part.crc is None for part in parts):
            return
        combined = combine_all([(part.crc or 0, part.size) for part in sorted(parts, key=lambda p: p.number)])
        if combined != info.crc64:
            raise IntegrityError(f"corrupted on transfer: the bytes read from {plan.source_url} do not match "
                                 "its CRC-64")


async def verify_destination(oss: OSSClient, dest: Bucket, plan: FilePlan, info: ObjectInfo,
                             deadline: Deadline) -> str:
    """HEAD the destination: same size, and same CRC-64 where both sides have one. Returns its ETag."""
    found = await oss.head(dest, plan.dest_key, deadline)
    if found is None:
        raise IntegrityError(f"copy of {plan.source_url} is not at its destination")
    if found.size != info.size:
        raise IntegrityError(f"corrupted on transfer: {plan.source_url} size {info.size}, destination {found.size}")
    if info.crc64 is not None and found.crc64 is not None and found.crc64 != info.crc64:
        raise IntegrityError(f"corrupted on transfer: {plan.source_url} CRC-64 differs at the destination")
    return found.etag


class Copier:
    """Delivers a job's files (the strategy is chosen per job by region)."""

    def __init__(self, oss: OSSClient, settings: Settings) -> None:
        self.oss = oss.yielding()  # a job's own requests go before file copies
        self.settings = settings
        self.dest = oss.bucket(settings.dest_bucket, settings.dest_region)
        self.timer = CopyTimer()
        self.stream_timer = CopyTimer()

    async def copy_files(self, plans: list[FilePlan], source: Bucket, existing: dict[str, Listed],
                         manifest_key: str, deadline: Deadline, verified: dict[str, CopiedFile]) -> list[CopiedFile]:
        """Copy (or skip) every planned file, at most ``COPY_CONCURRENCY`` at once, files not yet at the destination
        first; raises the worst failure (:func:`settle`). ``verified``: files known intact, by key (kept up to date)."""
        strategy = (ServerSide(self.oss, self.dest, source, self.timer) if source.region == self.settings.dest_region
                    else Streamed(self.oss, self.dest, source, self.stream_timer))
        progress = Progress(len(plans))
        gate = asyncio.Semaphore(self.settings.copy_concurrency)

        async def one(plan: FilePlan) -> None:
            if plan.dest_key not in verified:
                async with gate:
                    verified[plan.dest_key] = await self.deliver(plan, strategy, existing.get(plan.dest_key),
                                                                 manifest_key, deadline, progress)

        await settle([one(plan) for plan in sorted(plans, key=lambda plan: plan.dest_key in existing)],
                     stop_on=(RejectedError, CredentialsError, CommittedMeanwhileError))
        return [verified[plan.dest_key] for plan in plans]

    async def deliver(self, plan: FilePlan, strategy: Strategy, listed: Listed | None, manifest_key: str,
                      deadline: Deadline, progress: Progress) -> CopiedFile:
        """One file, from its HEAD to a verified copy (or the intact one already there)."""
        deadline.check(0.1, "start a copy")
        info = await self.oss.head(strategy.source, plan.source_key, deadline)
        if info is None:
            raise RejectedError(f"result file missing from OSS: {plan.source_url}")
        if (info.object_type or "").lower() == "appendable":
            raise RejectedError(f"result file is an appendable object, which OSS cannot copy: {plan.source_url}")
        progress.expect(info.size)

        def done(etag: str, action: str) -> CopiedFile:
            progress.add(info.size, files=1)
            return CopiedFile(plan, info.size, info.crc64, etag, info.content_type, action, strategy.name)

        overwrite = False
        if listed is not None:
            if await self.intact(info, listed.size, listed.etag, plan, deadline):
                return done(listed.etag, "skipped")
            overwrite = True
        for attempt in range(FILE_ATTEMPTS):
            try:
                if overwrite and await self.oss.head(self.dest, manifest_key, deadline) is not None:
                    # The fence: an object is replaced only while the job's manifest does not exist.
                    raise CommittedMeanwhileError("the job was committed by another invocation while "
                                                  f"{plan.dest_key} was being copied; nothing was replaced")
                if info.size >= strategy.threshold(self.settings):
                    etag = await self.multipart(plan, info, strategy, overwrite, deadline)
                else:
                    etag = await strategy.whole(plan, info, overwrite, deadline)
                break
            except ExistsError:
                # Written since our listing (another invocation of the job): keep it if it is intact.
                found = await self.oss.head(self.dest, plan.dest_key, deadline)
                if found is not None and await self.intact(info, found.size, found.etag, plan, deadline, found.crc64):
                    return done(found.etag, "skipped")
                overwrite = True
            except IntegrityError as exc:
                logs.warning("copy.integrity", file=plan.source_url, error=str(exc), attempt=attempt + 1)
                if attempt + 1 == FILE_ATTEMPTS:
                    raise
                self.oss.stats.add(INTEGRITY_RETRY)
                overwrite = True  # what is there now is the wrong copy
        else:
            raise TransientError(f"copy of {plan.source_url}: its destination kept changing")
        return done(etag, "copied")

    async def intact(self, info: ObjectInfo, size: int, etag: str, plan: FilePlan, deadline: Deadline,
                     crc: int | None = None) -> bool:
        """Whether the destination (``size``, ``etag``, maybe ``crc``) already holds this source object."""
        if size != info.size:
            return False
        if not info.multipart_etag and etag == info.etag:
            return True  # a single-part ETag is the MD5 of the content
        if info.crc64 is None:
            return False
        if crc is None:
            found = await self.oss.head(self.dest, plan.dest_key, deadline)
            crc = None if found is None or found.size != info.size else found.crc64
        return crc == info.crc64

    async def multipart(self, plan: FilePlan, info: ObjectInfo, strategy: Strategy, overwrite: bool,
                        deadline: Deadline) -> str:
        """InitiateMultipartUpload → parts at once → Complete (aborted on any failure) → verify."""
        deadline.check(self.timer.estimate(min(info.size, self.settings.part_size)), f"copy {plan.source_url}")
        init_headers = {"Content-Type": "application/octet-stream", **info.carried, **forbid(overwrite)}

        async def initiate() -> str:
            reply = await fenced(self.oss, "POST", self.dest, plan.dest_key, deadline, params={"uploads": ""},
                                 headers=init_headers)
            return xml_text(reply.body, "UploadId")

        started = asyncio.ensure_future(self.oss.call(initiate, f"initiate multipart upload of {plan.dest_key}",
                                                      deadline, self.dest))
        try:
            upload_id = await asyncio.shield(started)
        except asyncio.CancelledError:
            # Cancelled (another file rejected the job) with the initiation on its way: OSS may have made the
            # upload already. Let the initiation answer, then abort what it made.
            with contextlib.suppress(Exception):
                await self.abort(plan, await started, deadline)
            raise
        try:
            ranges = part_ranges(info.size, self.settings.part_size, self.settings.copy_concurrency)
            parts = await settle([strategy.part(plan, info, upload_id, number, byte_range, deadline)
                                  for number, byte_range in enumerate(ranges, start=1)],
                                 stop_on=(CollectorError, oss_errors.OssError))
            strategy.check_parts(plan, info, parts)
            await self.complete(plan, upload_id, parts, overwrite, deadline)
        except BaseException:
            await self.abort(plan, upload_id, deadline)
            raise
        return await verify_destination(self.oss, self.dest, plan, info, deadline)

    async def complete(self, plan: FilePlan, upload_id: str, parts: list[Part], overwrite: bool,
                       deadline: Deadline) -> None:
        body = ("<CompleteMultipartUpload>" + "".join(
            f"<Part><PartNumber>{p.number}</PartNumber><ETag>\"{p.etag}\"</ETag></Part>"
            for p in sorted(parts, key=lambda p: p.number)) + "</CompleteMultipartUpload>").encode()
        headers = {"Content-Type": "application/xml", **forbid(overwrite)}

        async def attempt() -> None:
            with contextlib.suppress(oss_errors.NoSuchUpload):  # a retry after a lost answer: complete, verified next
                await fenced(self.oss, "POST", self.dest, plan.dest_key, deadline, params={"uploadId": upload_id},
                             headers=headers, body=body)

        await self.oss.call(attempt, f"complete multipart upload of {plan.dest_key}", deadline, self.dest)

    async def abort(self, plan: FilePlan, upload_id: str, deadline: Deadline) -> None:
        """Best effort: an upload left open is also cleaned up by the sweep."""
        try:
            await asyncio.shield(self.oss.abort_upload(self.dest, plan.dest_key, upload_id, deadline.grace()))
        except (CollectorError, asyncio.CancelledError) as exc:
            logs.warning("copy.abort_failed", key=plan.dest_key, error=str(exc) or type(exc).__name__)
