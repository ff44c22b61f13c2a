"""Cross-region delivery: ranged GETs from the source streamed into uploads at the destination.

OSS refuses CopyObject and UploadPartCopy across regions (oss.md §1.1), so bytes must pass
through the function. They are never held whole: each part (or small file) is piped from its
GET response into its upload, in the chunks the HTTP client sends, so memory stays bounded by the
number of transfers in flight, not by file sizes. Integrity end to end: the CRC-64 of the bytes
read is computed on the fly; the parts' CRCs combine into the file's, which must equal the
source's ``x-oss-hash-crc64ecma``; each upload's answer CRC must equal what was sent; a
single-part source's ETag (its MD5) must equal the destination's.
"""

from __future__ import annotations

import time
from typing import Any

import oss2
from oss2 import exceptions as oss_errors
from oss2.models import PartInfo

from .budget import CopyTimer, Deadline
from .config import Settings
from .crc64 import combine_all, crc64
from .errors import BudgetExceededError, IntegrityError
from .layout import FilePlan
from .storage import ObjectInfo, Storage


class PartReader:
    """A file-like view of ``length`` bytes of a GET response, computing their CRC-64 as they pass.

    ``__len__`` lets the HTTP client send a Content-Length instead of chunks. A failure or a short
    read of the GET side surfaces as oss2's ``RequestError`` so that the attempt is retried. Once
    the time budget is spent the stream stops (``BudgetExceededError``, not retried): the upload is
    then aborted and the job reported within the reserve, instead of the instance being killed
    mid-transfer at its FC timeout with nothing reported.
    """

    def __init__(self, response: Any, length: int, deadline: Deadline | None = None) -> None:
        self._response = response
        self._length = length
        self._left = length
        self._deadline = deadline
        self.crc = 0

    def __len__(self) -> int:
        return self._length

    def read(self, size: int | None = -1) -> bytes:
        if self._left <= 0:
            return b""
        if self._deadline is not None and self._deadline.expired():
            raise BudgetExceededError(f"time budget exhausted mid-stream, {self._left} of {self._length} bytes "
                                      "still to send")
        want = self._left if size is None or size < 0 else min(size, self._left)
        try:
            data = self._response.read(want)
        except Exception as exc:
            raise oss_errors.RequestError(exc) from None
        if not data:
            raise oss_errors.RequestError(OSError(f"source stream ended {self._left} bytes early"))
        self._left -= len(data)
        self.crc = crc64(data, self.crc)
        return data


def _check_upload(result: oss2.models.PutObjectResult, sent_crc: int) -> None:
    """The destination's CRC of what it stored must be the CRC of what was sent (retried if not)."""
    if result.crc is not None and result.crc != sent_crc:
        raise oss_errors.InconsistentError("destination CRC differs from the bytes sent", result.request_id)


class Streamed:
    """Source region ≠ destination region: GET → PUT / UploadPart, CRC-checked end to end."""

    name = "streamed"

    def __init__(self, storage: Storage, settings: Settings, source_region: str, timer: CopyTimer) -> None:
        self.storage = storage
        self.settings = settings
        self.source_region = source_region
        self.timer = timer
        self.dest = storage.bucket(settings.dest_bucket, settings.dest_region)

    def threshold(self, settings: Settings) -> int:
        """Above one part's size a file goes in parallel parts (one stream is one connection's speed)."""
        return min(settings.multipart_threshold, settings.part_size)

    def _source(self, plan: FilePlan) -> oss2.Bucket:
        return self.storage.bucket(plan.source_bucket, self.source_region)

    def single(self, plan: FilePlan, info: ObjectInfo, deadline: Deadline) -> str:
        deadline.check(self.timer.estimate(info.size), f"stream {plan.source_url}")
        headers = dict(info.carried)

        def attempt() -> tuple[str, int]:
            response = self._source(plan).get_object(plan.source_key,
                                                      headers={"If-Match": f'"{info.etag}"'})
            with response:  # a GET left unread (the upload failed) closes its connection
                reader = PartReader(response, info.size, deadline)
                result = self.dest.put_object(plan.dest_key, reader, headers=headers)
            _check_upload(result, reader.crc)
            return (result.etag or "").upper(), reader.crc

        started = time.monotonic()
        etag, crc = self.storage.call(attempt, f"stream {plan.source_url}", deadline)
        self.timer.observe(info.size, time.monotonic() - started)
        if info.crc64 is not None and crc != info.crc64:
            raise IntegrityError(f"corrupted on transfer: the bytes read from {plan.source_url} do not match "
                                 "its CRC-64")
        if not info.multipart_etag and etag != info.etag:
            raise IntegrityError(f"corrupted on transfer: {plan.source_url} MD5 differs at the destination")
        return etag

    def part(self, plan: FilePlan, info: ObjectInfo, upload_id: str, number: int, byte_range: tuple[int, int],
             deadline: Deadline) -> PartInfo:
        size = byte_range[1] - byte_range[0] + 1
        deadline.check(self.timer.estimate(size), f"stream part {number} of {plan.source_url}")

        def attempt() -> PartInfo:
            response = self._source(plan).get_object(plan.source_key, byte_range=byte_range,
                                                      headers={"If-Match": f'"{info.etag}"'})
            with response:
                if response.status != 206 and size != info.size:
                    raise oss_errors.RequestError(OSError("the source ignored the byte range"))
                reader = PartReader(response, size, deadline)
                result = self.dest.upload_part(plan.dest_key, upload_id, number, reader)
            _check_upload(result, reader.crc)
            return PartInfo(number, result.etag, size=size, part_crc=reader.crc)

        started = time.monotonic()
        part = self.storage.call(attempt, f"stream part {number} of {plan.source_url}", deadline)
        self.timer.observe(size, time.monotonic() - started)
        return part

    def check_parts(self, plan: FilePlan, info: ObjectInfo, parts: list[PartInfo]) -> None:
        if info.crc64 is None:
            return
        combined = combine_all([(part.part_crc, part.size) for part in sorted(parts, key=lambda p: p.part_number)])
        if combined != info.crc64:
            raise IntegrityError(f"corrupted on transfer: the bytes read from {plan.source_url} do not match "
                                 "its CRC-64")
