"""OSS access on oss2: one Session and one auth per instance, retries, typed results and errors.

oss2 retries nothing by itself (oss.md §1.8); every call here goes through :func:`retry.call`
with :func:`classify`. Errors leave this module as the function's own exceptions.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import oss2
import requests
from oss2 import exceptions as oss_errors

from . import retry
from .budget import Deadline
from .config import Settings
from .crc64 import crc64
from .credentials import CredentialsSource
from .errors import CollectorError, CredentialsError, RejectedError, TransientError
from .ossauth import SigningAuth
from .transport import LeanSession

T = TypeVar("T")
R = TypeVar("R", bound=oss2.models.RequestResult)

#: Headers that describe an object and must follow it through a multipart copy (oss.md §1.4).
CARRIED_HEADERS = ("content-type", "content-encoding", "content-disposition", "cache-control",
                   "expires", "content-language")
AUTH_CODES = ("AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidSecurityToken",
              "SecurityTokenExpired", "InvalidObjectState")


@dataclass(frozen=True)
class ObjectInfo:
    """What a HEAD tells about an object."""

    size: int
    etag: str
    crc64: int | None
    content_type: str | None
    object_type: str | None
    carried: dict[str, str] = field(default_factory=dict)  # Content-* and x-oss-meta-* headers

    @property
    def multipart_etag(self) -> bool:
        return is_multipart_etag(self.etag)


@dataclass(frozen=True)
class Listed:
    key: str
    size: int
    etag: str
    last_modified: int


def is_multipart_etag(etag: str) -> bool:
    return "-" in etag


def object_info(headers: Mapping[str, str]) -> ObjectInfo:
    """What a HEAD's answer headers (looked up in any case) say of the object."""
    carried = {k: v for k, v in headers.items() if k.lower() in CARRIED_HEADERS or k.lower().startswith("x-oss-meta-")}
    crc = headers.get("x-oss-hash-crc64ecma")
    length = headers.get("content-length")
    return ObjectInfo(size=int(length) if length else 0, etag=(headers.get("etag") or "").strip('"').upper(),
                      crc64=int(crc) if crc else None, content_type=headers.get("content-type"),
                      object_type=headers.get("x-oss-object-type"), carried=carried)


def put_checked(bucket: oss2.Bucket, key: str, body: bytes,
                headers: dict[str, str]) -> oss2.models.PutObjectResult:
    """PutObject; the CRC-64 OSS answers for what it stored must be that of ``body`` (else retried)."""
    result = bucket.put_object(key, body, headers=headers)
    if result.crc is not None and result.crc != crc64(body):
        raise oss_errors.InconsistentError("the CRC-64 OSS stored differs from the bytes sent", result.request_id)
    return result


def drained(result: R) -> R:
    """``result`` after reading the rest of its answer.

    oss2 leaves the XML answers of CopyObject, UploadPartCopy and CompleteMultipartUpload unread;
    a connection with an unread answer is not reused, so every copy would open a new one (a TCP and
    TLS handshake on OSS, and the pool churns). Read inside the retried call: a cut answer is retried.
    """
    result.resp.read()
    return result


def check_read(data: bytes, server_crc: int | None, request_id: str) -> None:
    """Raise ``InconsistentError`` (retried) when the bytes read are not those OSS holds: a body
    damaged on the way must be read again, not taken for what it says (or for no record)."""
    if server_crc is not None and crc64(data) != server_crc:
        raise oss_errors.InconsistentError("the CRC-64 of the bytes read differs from OSS's", request_id)


def decode_json(data: bytes | None) -> Any | None:
    """A JSON document, or None for no bytes or bytes that are not JSON."""
    if data is None:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return None


def classify(exc: Exception) -> retry.Verdict:
    """Transient OSS failures: no answer, 5xx, 429, a CRC mismatch on an upload."""
    if isinstance(exc, (oss_errors.RequestError, requests.exceptions.RequestException)):
        # oss2 wraps errors of sending a request, not of reading an answer's body (a reset mid-body).
        return retry.Verdict(True, None, "oss-network")
    if isinstance(exc, oss_errors.InconsistentError):
        return retry.Verdict(True, None, "oss-crc")
    if isinstance(exc, oss_errors.ServerError):
        if exc.status >= 500:
            return retry.Verdict(True, None, "oss-5xx")
        if exc.status == 429 or (exc.status == 409 and exc.code == "ConcurrentUpdateObjectFailed"):
            return retry.Verdict(True, None, "oss-throttling")
    return retry.Verdict(False)


def describe_error(exc: Exception) -> str:
    if isinstance(exc, oss_errors.RequestError):
        return f"no answer ({type(exc.exception).__name__})"
    if isinstance(exc, requests.exceptions.RequestException):
        return f"answer cut short ({type(exc).__name__})"
    if isinstance(exc, oss_errors.OssError):
        return f"{exc.code or 'error'} (HTTP {exc.status})"
    return type(exc).__name__


def translate(exc: Exception, what: str) -> CollectorError:
    """An oss2 exception (after retries) as the function's own error."""
    if isinstance(exc, CollectorError):
        return exc
    text = f"OSS {what}: {describe_error(exc)}"
    if isinstance(exc, oss_errors.ServerError) and (exc.status in (401, 403) or
                                                    (exc.code or "").startswith(AUTH_CODES)):
        return CredentialsError(text)
    return TransientError(text)


class Storage:
    """oss2 buckets by (name, region), sharing one connection pool and one refreshing auth."""

    def __init__(self, settings: Settings, credentials: CredentialsSource,
                 stats: retry.RetryStats | None = None, policy: retry.RetryPolicy | None = None) -> None:
        self.settings = settings
        self.stats = stats or retry.RetryStats()
        self.policy = policy or retry.RetryPolicy()
        pool = settings.copy_concurrency + 2 * settings.job_concurrency + 8
        self.session = LeanSession(pool_size=pool)
        self.auth = SigningAuth(credentials)
        self._buckets: dict[tuple[str, str], oss2.Bucket] = {}
        self._lock = threading.Lock()
        self._versioning: tuple[str | None] | None = None  # the destination's, once read
        self._versioning_lock = threading.Lock()

    def bucket(self, name: str, region: str | None = None) -> oss2.Bucket:
        """A bucket client (cached). oss2's own CRC checks are off: they build a CRC table in Python
        for every GET and PUT; the callers check the CRC-64 of what they send and read with
        :func:`crc64` instead (see :func:`put_checked`)."""
        region = region or self.settings.dest_region
        with self._lock:
            bucket = self._buckets.get((name, region))
            if bucket is None:
                bucket = oss2.Bucket(self.auth, self.settings.oss_endpoint_for(region), name,
                                     session=self.session, connect_timeout=self.settings.oss_timeout,
                                     region=region, app_name="iproduction-collector", enable_crc=False)
                self._buckets[(name, region)] = bucket
            return bucket

    @property
    def dest(self) -> oss2.Bucket:
        return self.bucket(self.settings.dest_bucket, self.settings.dest_region)

    def dest_versioning(self, deadline: Deadline | None) -> str | None:
        """The destination bucket's versioning state (``Enabled``, ``Suspended``, or None: never enabled),
        read on first use and kept for the instance's life; a failed read is read again next time."""
        with self._versioning_lock:
            if self._versioning is None:
                dest = self.dest
                result = self.call(dest.get_bucket_versioning, f"GetBucketVersioning {dest.bucket_name}", deadline)
                self._versioning = (result.status or None,)
            return self._versioning[0]

    def call(self, fn: Callable[[], T], what: str, deadline: Deadline | None) -> T:
        """``fn`` with retries; failures come out translated (see :func:`translate`)."""
        try:
            return retry.call(fn, classify, deadline=deadline, policy=self.policy, stats=self.stats)
        except (oss_errors.OssError, requests.exceptions.RequestException) as exc:
            raise translate(exc, what) from None

    # -- typed helpers ----------------------------------------------------------------------
    def head(self, bucket: oss2.Bucket, key: str, deadline: Deadline | None) -> ObjectInfo | None:
        """HEAD an object; None when it does not exist (a missing bucket is an error)."""
        def attempt() -> ObjectInfo | None:
            try:
                result = bucket.head_object(key)
            except oss_errors.NotFound as exc:
                if isinstance(exc, oss_errors.NoSuchBucket):
                    raise RejectedError(f"bucket {bucket.bucket_name} does not exist") from None
                return None
            return object_info(result.headers)

        return self.call(attempt, f"HEAD {bucket.bucket_name}/{key}", deadline)

    def list_prefix(self, bucket: oss2.Bucket, prefix: str, deadline: Deadline | None) -> dict[str, Listed]:
        """Every object under ``prefix`` (one request per 1000 keys)."""
        found: dict[str, Listed] = {}
        token = ""
        while True:
            page = self.call(lambda t=token: bucket.list_objects_v2(prefix=prefix, continuation_token=t,
                                                                    max_keys=1000),
                             f"LIST {bucket.bucket_name}/{prefix}", deadline)
            for obj in page.object_list:
                found[obj.key] = Listed(obj.key, int(obj.size), (obj.etag or "").upper(),
                                        int(obj.last_modified or 0))
            if not page.is_truncated:
                return found
            token = page.next_continuation_token

    def get_json(self, bucket: oss2.Bucket, key: str, deadline: Deadline | None) -> Any | None:
        """A small JSON object's content, or None when it does not exist or is not JSON."""
        def attempt() -> bytes | None:
            try:
                result = bucket.get_object(key)
            except oss_errors.NoSuchKey:
                return None
            data = result.read()
            check_read(data, result.server_crc, result.request_id)
            return data

        return decode_json(self.call(attempt, f"GET {bucket.bucket_name}/{key}", deadline))

    def put_json(self, bucket: oss2.Bucket, key: str, document: Any, deadline: Deadline | None,
                 headers: dict[str, str] | None = None) -> oss2.models.PutObjectResult:
        body = json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8")
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        return self.call(lambda: put_checked(bucket, key, body, all_headers),
                         f"PUT {bucket.bucket_name}/{key}", deadline)

    def delete(self, bucket: oss2.Bucket, key: str, deadline: Deadline | None) -> None:
        self.call(lambda: bucket.delete_object(key), f"DELETE {bucket.bucket_name}/{key}", deadline)
