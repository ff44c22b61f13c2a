"""The copy engine: a job's result files, verified, on one bounded pool.

Per file: HEAD the source → skip when the destination already holds the same object (known
from one listing of the job's destination prefix) → one request below the multipart threshold,
else InitiateMultipartUpload + parts in parallel + Complete (aborted on failure) → verify.
How bytes move is a :class:`Transfer`: server-side copies within a region (:class:`ServerSide`,
nothing passes through the function), or ranged GETs streamed into uploads across regions
(``streamer.Streamed``). Files of every job and parts of every file share one pool of
``COPY_CONCURRENCY`` workers; the orchestrating (job) thread never holds a pool slot while it
waits, so nothing can deadlock.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import oss2
from oss2 import exceptions as oss_errors
from oss2.models import PartInfo

from . import logs
from .budget import CopyTimer, Deadline
from .config import Settings
from .errors import CollectorError, CredentialsError, IntegrityError, RejectedError, TransientError
from .layout import FilePlan
from .retry import INTEGRITY_RETRY
from .storage import Listed, ObjectInfo, Storage, drained

if TYPE_CHECKING:
    from .express import ExpressLane, HandBack

MIN_PART = 100 * 1024
MAX_PARTS = 10_000
PROGRESS_INTERVAL = 5.0
#: A file whose copy does not verify is copied again this many times within the invocation.
FILE_ATTEMPTS = 3


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


class Transfer(Protocol):
    """How the bytes of one file (or one part of it) reach the destination."""

    name: str

    def threshold(self, settings: Settings) -> int:
        """Files this large or larger go in parts."""

    def single(self, plan: FilePlan, info: ObjectInfo, deadline: Deadline) -> str:
        """Transfer a whole file in one request; return the destination ETag (verified)."""

    def part(self, plan: FilePlan, info: ObjectInfo, upload_id: str, number: int, byte_range: tuple[int, int],
             deadline: Deadline) -> PartInfo:
        """Transfer one part (``byte_range`` inclusive)."""

    def check_parts(self, plan: FilePlan, info: ObjectInfo, parts: list[PartInfo]) -> None:
        """Raise :class:`IntegrityError` if the parts do not add up to the source."""


def part_ranges(size: int, part_size: int, concurrency: int) -> list[tuple[int, int]]:
    """Inclusive byte ranges for a multipart transfer.

    At most ``part_size`` each (grown if 10,000 parts would not cover ``size``), then evened out
    so the parts fill whole waves of ``concurrency`` workers: 80 parts on 64 workers would take
    two rounds for 1.25 rounds of work, 128 smaller parts take the same two rounds at full use.
    """
    part_size = max(part_size, MIN_PART, math.ceil(size / MAX_PARTS))
    count = max(1, math.ceil(size / part_size))
    if count > 1:
        waves = math.ceil(count / concurrency)
        count = min(waves * concurrency, MAX_PARTS, max(1, size // MIN_PART))
    step = math.ceil(size / count)
    return [(start, min(start + step, size) - 1) for start in range(0, size, step)]


class Progress:
    """Counts a job's copied files and bytes; logs a line at most every few seconds."""

    def __init__(self, files: int, interval: float = PROGRESS_INTERVAL) -> None:
        self.files_total = files
        self.files_done = 0
        self.bytes_total = 0
        self.bytes_done = 0
        self._lock = threading.Lock()
        self._throttle = logs.Throttle(interval)

    def expect(self, size: int) -> None:
        with self._lock:
            self.bytes_total += size

    def add(self, size: int, files: int = 0) -> None:
        with self._lock:
            self.bytes_done += size
            self.files_done += files
            snapshot = (self.files_done, self.files_total, self.bytes_done, self.bytes_total)
        if self._throttle.ready():
            logs.info("job.progress", filesDone=snapshot[0], filesTotal=snapshot[1],
                      bytesDone=snapshot[2], bytesTotal=snapshot[3])


def _worst(errors: list[Exception]) -> Exception:
    """The error that decides the job's outcome: rejected > credentials > transient."""
    for kind in (RejectedError, CredentialsError, TransientError):
        for exc in errors:
            if isinstance(exc, kind):
                return exc
    return errors[0]


def verify_destination(storage: Storage, plan: FilePlan, info: ObjectInfo, deadline: Deadline) -> str:
    """HEAD the destination: same size, and same CRC-64 where both sides have one. Returns its ETag."""
    dest = storage.head(storage.dest, plan.dest_key, deadline)
    if dest is None:
        raise IntegrityError(f"copy of {plan.source_url} is not at its destination")
    if dest.size != info.size:
        raise IntegrityError(f"corrupted on transfer: {plan.source_url} size {info.size}, destination {dest.size}")
    if info.crc64 is not None and dest.crc64 is not None and dest.crc64 != info.crc64:
        raise IntegrityError(f"corrupted on transfer: {plan.source_url} CRC-64 differs at the destination")
    return dest.etag


class ServerSide:
    """CopyObject / UploadPartCopy: the bytes never leave OSS (same region only)."""

    name = "server-side"

    def __init__(self, storage: Storage, timer: CopyTimer) -> None:
        self.storage = storage
        self.timer = timer

    def threshold(self, settings: Settings) -> int:
        return settings.multipart_threshold

    def single(self, plan: FilePlan, info: ObjectInfo, deadline: Deadline) -> str:
        deadline.check(self.timer.estimate(info.size), f"copy {plan.source_url}")
        started = time.monotonic()
        # if-match: copy exactly the version the HEAD described (412 if it changed meanwhile).
        result = self.storage.call(
            lambda: drained(self.storage.dest.copy_object(
                plan.source_bucket, plan.source_key, plan.dest_key,
                headers={"x-oss-copy-source-if-match": f'"{info.etag}"'})),
            f"copy {plan.source_url}", deadline)
        self.timer.observe(info.size, time.monotonic() - started)
        if info.multipart_etag:
            # OSS keeps a multipart source's `-N` ETag, which says nothing of the bytes: check by HEAD.
            return verify_destination(self.storage, plan, info, deadline)
        etag = (result.etag or "").upper()
        if etag != info.etag:
            # A copy of a single-part object keeps its ETag (the MD5 of its bytes): any other is a wrong copy.
            raise IntegrityError(f"corrupted on transfer: CopyObject of {plan.source_url} returned ETag "
                                 f"{etag or '(none)'}, the source's is {info.etag}")
        return etag

    def part(self, plan: FilePlan, info: ObjectInfo, upload_id: str, number: int, byte_range: tuple[int, int],
             deadline: Deadline) -> PartInfo:
        size = byte_range[1] - byte_range[0] + 1
        deadline.check(self.timer.estimate(size), f"copy part {number} of {plan.source_url}")
        started = time.monotonic()
        result = self.storage.call(
            lambda: drained(self.storage.dest.upload_part_copy(
                plan.source_bucket, plan.source_key, byte_range, plan.dest_key, upload_id, number,
                headers={"x-oss-copy-source-if-match": f'"{info.etag}"'})),
            f"copy part {number} of {plan.source_url}", deadline)
        self.timer.observe(size, time.monotonic() - started)
        return PartInfo(number, result.etag, size=size)

    def check_parts(self, plan: FilePlan, info: ObjectInfo, parts: list[PartInfo]) -> None:
        return None  # the destination HEAD after Complete is the check


@dataclass
class _Run:
    """A multipart transfer under way."""

    plan: FilePlan
    info: ObjectInfo
    transfer: Transfer
    upload_id: str = ""
    futures: list[Future[PartInfo]] | None = None


class CopyEngine:
    """Delivers a job's files; the transfer (server-side or streamed) is chosen per job by region."""

    def __init__(self, storage: Storage, settings: Settings, pool: ThreadPoolExecutor,
                 timer: CopyTimer | None = None, express: bool = False) -> None:
        self.storage = storage
        self.settings = settings
        self.pool = pool
        self.timer = timer or CopyTimer()
        self.server_side = ServerSide(storage, self.timer)
        self.stream_timer = CopyTimer()
        # Same-region files below the threshold go through the express lane (not behind a proxy,
        # where requests sends everything).
        self._express = express and storage.session.transport is not None
        self._lane: ExpressLane | None = None
        self._lane_lock = threading.Lock()

    @property
    def lane(self) -> ExpressLane | None:
        """The express lane, built on first use: importing asyncio (~10 ms) is not paid at cold start."""
        if not self._express:
            return None
        with self._lane_lock:
            if self._lane is None:
                from .express import ExpressLane

                self._lane = ExpressLane(self.storage, self.timer, self.settings.copy_concurrency,
                                         self.settings.multipart_threshold)
            return self._lane

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        if self._lane is not None:
            self._lane.close()

    def transfer_for(self, source_region: str) -> Transfer:
        if source_region == self.settings.dest_region:
            return self.server_side
        from .streamer import Streamed  # only cross-region jobs need it

        return Streamed(self.storage, self.settings, source_region, self.stream_timer)

    def copy_files(self, plans: list[FilePlan], source_region: str, existing: dict[str, Listed],
                   deadline: Deadline) -> list[CopiedFile]:
        """Copy (or skip) every planned file; raises the worst failure after the others finished."""
        if not plans:
            return []
        transfer = self.transfer_for(source_region)
        source = self.storage.bucket(plans[0].source_bucket, source_region)
        progress = Progress(len(plans))
        finished: queue.SimpleQueue[tuple[Future[Any], FilePlan]] = queue.SimpleQueue()
        futures: list[Future[Any]] = []

        def track(future: Future[Any], plan: FilePlan) -> None:
            futures.append(future)
            future.add_done_callback(lambda f: finished.put((f, plan)))

        def by_thread(plan: FilePlan, resume: HandBack | None = None) -> None:
            track(logs.submit(self.pool, self._file, plan, source, transfer, existing, deadline, progress, resume),
                  plan)

        lane = self.lane if transfer is self.server_side else None
        if lane is not None:
            from .express import Item

            items = [Item(plan, source, existing.get(plan.dest_key), deadline) for plan in plans]
            for plan, future in zip(plans, lane.submit(items), strict=True):
                track(future, plan)
        else:
            for plan in plans:
                by_thread(plan)
        done: dict[FilePlan, CopiedFile] = {}
        runs: list[_Run] = []
        errors: list[Exception] = []
        left = len(plans)
        while left:
            future, plan = finished.get()
            try:
                outcome = future.result()
            except Exception as exc:
                left -= 1
                errors.append(exc)
                if isinstance(exc, (RejectedError, CredentialsError)):
                    for pending in futures:
                        pending.cancel()
                continue
            if isinstance(outcome, CopiedFile):
                left -= 1
                done[outcome.plan] = outcome
            elif isinstance(outcome, _Run):
                left -= 1
                runs.append(self._start(outcome, deadline, progress))
            else:  # from the express lane
                from .express import Copied, HandBack

                if isinstance(outcome, HandBack):
                    by_thread(plan, outcome)  # still counted in `left`
                    continue
                left -= 1
                progress.expect(outcome.info.size)
                if isinstance(outcome, Copied):
                    progress.add(outcome.info.size, files=1)
                    info = outcome.info
                    done[plan] = CopiedFile(plan, info.size, info.crc64, outcome.etag, info.content_type,
                                            outcome.action, transfer.name)
                else:  # NeedsParts
                    runs.append(self._start(_Run(plan, outcome.info, transfer), deadline, progress))
        for run in runs:
            try:
                copied = self._finish_with_retries(run, deadline, progress)
                done[copied.plan] = copied
                progress.add(0, files=1)
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise _worst(errors)
        return [done[plan] for plan in plans]

    # -- one file ---------------------------------------------------------------------------
    def _file(self, plan: FilePlan, source: oss2.Bucket, transfer: Transfer, existing: dict[str, Listed],
              deadline: Deadline, progress: Progress, resume: HandBack | None = None) -> CopiedFile | _Run:
        first_attempt = 0
        if resume is not None:  # from the express lane
            if resume.wait:
                deadline.check(resume.wait + 0.1, "wait before copying again")
                time.sleep(resume.wait)
            first_attempt = resume.integrity_failures
        deadline.check(0.1, "start a copy")
        info = self.storage.head(source, plan.source_key, deadline)
        if info is None:
            raise RejectedError(f"result file missing from OSS: {plan.source_url}")
        if (info.object_type or "").lower() == "appendable":
            raise RejectedError(f"result file is an appendable object, which OSS cannot copy: {plan.source_url}")
        progress.expect(info.size)
        listed = existing.get(plan.dest_key)
        if listed is not None and self._identical(info, listed, plan, deadline):
            progress.add(info.size, files=1)
            return CopiedFile(plan, info.size, info.crc64, listed.etag, info.content_type, "skipped", transfer.name)
        if info.size >= transfer.threshold(self.settings):
            return _Run(plan, info, transfer)
        for attempt in range(first_attempt, FILE_ATTEMPTS):
            try:
                etag = transfer.single(plan, info, deadline)
                break
            except IntegrityError as exc:
                self._integrity_failed(plan, exc, attempt)
        else:
            raise AssertionError("unreachable")  # the last attempt's failure is raised
        progress.add(info.size, files=1)
        return CopiedFile(plan, info.size, info.crc64, etag, info.content_type, "copied", transfer.name)

    def _integrity_failed(self, plan: FilePlan, exc: IntegrityError, attempt: int) -> None:
        """Log a copy that did not verify; re-raise after the last attempt, else count the re-copy to come."""
        logs.warning("copy.integrity", file=plan.source_url, error=str(exc), attempt=attempt + 1)
        if attempt + 1 == FILE_ATTEMPTS:
            raise exc
        self.storage.stats.add(INTEGRITY_RETRY)

    def _identical(self, info: ObjectInfo, listed: Listed, plan: FilePlan, deadline: Deadline) -> bool:
        """Whether the destination already holds this source object (then it is not copied again)."""
        if listed.size != info.size:
            return False
        if not info.multipart_etag and listed.etag == info.etag:
            return True  # a single-part ETag is the MD5 of the content
        if info.crc64 is None:
            return False
        dest = self.storage.head(self.storage.dest, plan.dest_key, deadline)
        return dest is not None and dest.size == info.size and dest.crc64 == info.crc64

    # -- multipart --------------------------------------------------------------------------
    def _start(self, run: _Run, deadline: Deadline, progress: Progress) -> _Run:
        plan, info = run.plan, run.info
        deadline.check(self.timer.estimate(min(info.size, self.settings.part_size)), f"copy {plan.source_url}")
        result = self.storage.call(
            lambda: self.storage.dest.init_multipart_upload(plan.dest_key, headers=dict(info.carried)),
            f"initiate multipart upload of {plan.dest_key}", deadline)
        run.upload_id = result.upload_id
        ranges = part_ranges(info.size, self.settings.part_size, self.settings.copy_concurrency)
        run.futures = [logs.submit(self.pool, self._part, run, number, byte_range, deadline, progress)
                       for number, byte_range in enumerate(ranges, start=1)]
        return run

    def _part(self, run: _Run, number: int, byte_range: tuple[int, int], deadline: Deadline,
              progress: Progress) -> PartInfo:
        part = run.transfer.part(run.plan, run.info, run.upload_id, number, byte_range, deadline)
        progress.add(byte_range[1] - byte_range[0] + 1)
        return part

    def _finish_with_retries(self, run: _Run, deadline: Deadline, progress: Progress) -> CopiedFile:
        for attempt in range(FILE_ATTEMPTS):
            try:
                return self._finish(run, deadline)
            except IntegrityError as exc:
                self._integrity_failed(run.plan, exc, attempt)
                run = self._start(_Run(run.plan, run.info, run.transfer), deadline, progress)
        raise AssertionError("unreachable")

    def _finish(self, run: _Run, deadline: Deadline) -> CopiedFile:
        plan, info = run.plan, run.info
        futures = run.futures or []
        try:
            parts = [future.result() for future in futures]
            run.transfer.check_parts(plan, info, parts)
            self.storage.call(lambda: self._complete(plan, run.upload_id, parts),
                              f"complete multipart upload of {plan.dest_key}", deadline)
        except BaseException:
            for future in futures:
                future.cancel()
            wait(futures)  # parts already running finish before the upload is aborted
            self._abort(plan, run.upload_id)
            raise
        etag = verify_destination(self.storage, plan, info, deadline)
        return CopiedFile(plan, info.size, info.crc64, etag, info.content_type, "copied", run.transfer.name)

    def _complete(self, plan: FilePlan, upload_id: str, parts: list[PartInfo]) -> None:
        try:
            drained(self.storage.dest.complete_multipart_upload(plan.dest_key, upload_id, parts))
        except oss_errors.NoSuchUpload:
            # A retry after an answer that got lost: the upload is already complete (verified next).
            return

    def _abort(self, plan: FilePlan, upload_id: str) -> None:
        """Best effort: an upload left open is also cleaned up by the sweep."""
        try:
            self.storage.call(lambda: self._abort_once(plan, upload_id), f"abort upload of {plan.dest_key}", None)
        except CollectorError as exc:
            logs.warning("copy.abort_failed", key=plan.dest_key, error=str(exc))

    def _abort_once(self, plan: FilePlan, upload_id: str) -> None:
        try:
            self.storage.dest.abort_multipart_upload(plan.dest_key, upload_id)
        except oss_errors.NoSuchUpload:
            return


def abort_stale_uploads(storage: Storage, prefix: str, older_than: float, deadline: Deadline) -> int:
    """Abort multipart uploads under ``prefix`` started more than ``older_than`` seconds ago.

    An invocation aborts its own uploads when a copy fails; this catches the ones left by an
    instance that was killed mid-copy (the sweep runs it). Returns how many were aborted.
    """
    bucket = storage.dest
    cutoff = time.time() - older_than
    aborted = 0
    key_marker = upload_marker = ""
    while not deadline.expired():
        page = storage.call(lambda k=key_marker, u=upload_marker: bucket.list_multipart_uploads(
            prefix=prefix, key_marker=k, upload_id_marker=u), f"list uploads under {prefix}", deadline)
        for upload in page.upload_list:
            if upload.initiation_date and upload.initiation_date < cutoff:
                storage.call(lambda u=upload: bucket.abort_multipart_upload(u.key, u.upload_id),
                             f"abort stale upload of {upload.key}", deadline)
                aborted += 1
        if not page.is_truncated:
            break
        key_marker, upload_marker = page.next_key_marker, page.next_upload_id_marker
    return aborted
