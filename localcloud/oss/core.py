"""Request plumbing of the OSS handler: routing, faults, signatures and answers."""

from __future__ import annotations

import base64
import contextlib
import random
import re
import time
import traceback
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from localcloud.common import DroppedError, EmulatorHandler, http_date

from . import xmlio
from .auth import V1_SUBRESOURCES, Credentials, SignedRequest, verify
from .content import CHUNK, Content, ContentWriter
from .errors import OssError, invalid_argument
from .store import Bucket, ObjectRecord

if TYPE_CHECKING:
    from .emulator import OssEmulator

STANDARD_HEADERS = ("Cache-Control", "Content-Disposition", "Content-Encoding", "Content-Language", "Expires")
META_PREFIX = "x-oss-meta-"
FAULT_ERRORS = {
    "503": ("ServiceUnavailable", None),
    "500": ("InternalError", None),
    "throttle": ("ServiceUnavailable", "Please reduce your request rate."),
}
DRAIN_LIMIT = 64 << 20
# Subresources (other than the ones emulated) that make a request an unsupported operation.
_UNSUPPORTED = {name for name in V1_SUBRESOURCES if not name.startswith("response-")} - {
    "uploadId", "partNumber", "uploads", "objectMeta", "location", "versionId", "security-token",
    "continuation-token", "versioning", "versions"}


def pick_op(method: str, bucket: str, key: str, params: dict[str, str], copy: bool) -> str:
    """The OSS operation name of a request (``Unsupported`` for anything not emulated)."""
    if not bucket:
        return "ListBuckets" if method == "GET" else "Unsupported"
    if set(params) & _UNSUPPORTED:
        return "Unsupported"
    multipart = "uploadId" in params
    if not key:
        if "versioning" in params:
            return {"GET": "GetBucketVersioning", "PUT": "PutBucketVersioning"}.get(method, "Unsupported")
        if method == "GET":
            if "versions" in params:
                return "ListObjectVersions"
            if "uploads" in params:
                return "ListMultipartUploads"
            if "location" in params:
                return "GetBucketLocation"
            return "ListObjectsV2" if params.get("list-type") == "2" else "ListObjects"
        return "PutBucket" if method == "PUT" and not params else "Unsupported"
    if method == "PUT":
        if multipart:
            return "UploadPartCopy" if copy else "UploadPart"
        return "CopyObject" if copy else "PutObject"
    if method == "GET":
        return "ListParts" if multipart else "GetObject"
    if method == "HEAD":
        return "GetObjectMeta" if "objectMeta" in params else "HeadObject"
    if method == "DELETE":
        return "AbortMultipartUpload" if multipart else "DeleteObject"
    if method == "POST" and "uploads" in params:
        return "InitiateMultipartUpload"
    if method == "POST" and multipart:
        return "CompleteMultipartUpload"
    return "Unsupported"


class Throttle:
    """Holds a transfer back to ``rate`` bytes per second (no limit when rate is falsy)."""

    def __init__(self, rate: float | None) -> None:
        self.rate = float(rate or 0)
        self.started = time.monotonic()
        self.done = 0

    def account(self, count: int) -> None:
        if self.rate <= 0:
            return
        self.done += count
        wait = self.done / self.rate - (time.monotonic() - self.started)
        if wait > 0:
            time.sleep(wait)

    @property
    def chunk(self) -> int:
        return CHUNK if self.rate <= 0 else max(4096, min(CHUNK, int(self.rate / 20)))


class HandlerCore(EmulatorHandler):
    """Parses the request, applies latency/faults and the signature check, then runs the op."""

    server_version = "AliyunOSS"
    bucket_name: str
    key: str
    params: dict[str, str]
    lower_headers: dict[str, str]
    request_id: str
    fault: str | None
    sign_region: str | None

    @property
    def oss(self) -> OssEmulator:
        return self.server.emulator  # type: ignore[return-value]

    def setting(self, name: str) -> Any:
        return self.oss.knobs.setting(name)

    # -- dispatch ---------------------------------------------------------------------------
    def handle(self) -> None:
        # A client may reset an idle keep-alive connection (e.g. one whose body it never read).
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            super().handle()

    def dispatch(self) -> None:
        self.request_id = f"{random.getrandbits(96):024X}"
        self.log_fields["request_id"] = self.request_id
        self.fault = None
        self.sign_region = None
        try:
            split = urlsplit(self.path)
            bucket, _, key = split.path.lstrip("/").partition("/")
            self.bucket_name, self.key = unquote(bucket), unquote(key)
            query = parse_qsl(split.query, keep_blank_values=True)
            self.params = dict(query)
            self.lower_headers = {name.lower(): value for name, value in self.headers.items()}
            if "transfer-encoding" not in self.lower_headers and self.header("content-length", "0") == "0":
                self.read_body()  # nothing to read: marks the connection reusable
            op = pick_op(self.command, self.bucket_name, self.key, self.params,
                         "x-oss-copy-source" in self.lower_headers)
            self.log_fields.update(bucket=self.bucket_name or None, key=self.key or None)
            self.fault = self.inject(op)
            self.raise_fault(op)
            self.check_signature(query)
            getattr(self, "op_" + op)()
        except OssError as error:
            self.answer_error(error)
        except (DroppedError, BrokenPipeError, ConnectionResetError):
            raise
        except Exception as exc:
            if self.oss.verbose:
                traceback.print_exc()
            if "status" in self.log_fields:  # already answering: all we can do is drop the line
                raise DroppedError from exc
            self.answer_error(OssError("InternalError", f"InternalError: {type(exc).__name__}: {exc}"))

    def op_Unsupported(self) -> None:
        raise OssError("NotImplemented", f"{self.command} {urlsplit(self.path).path} with "
                       f"{sorted(self.params)} is not supported by the local OSS emulator.")

    def raise_fault(self, op: str) -> None:
        kind = self.fault
        if kind is None or (kind in ("corrupt", "reset_body") and op == "GetObject"):
            return
        if kind == "reset_body":
            self.read_body()
            raise DroppedError
        if kind == "corrupt":
            return  # applied by GetObject (the body) and CopyObject (what is stored); no effect elsewhere
        if kind in FAULT_ERRORS:
            code, message = FAULT_ERRORS[kind]
            raise OssError(code, message)
        if kind.isdigit():
            raise OssError("InjectedError", f"Fault {kind} injected by the local OSS emulator.",
                           status=int(kind))
        raise OssError("InternalError", f"Unknown fault kind {kind!r} injected.")

    def check_signature(self, query: list[tuple[str, str]]) -> None:
        creds = Credentials(self.setting("access_key_id"), self.setting("access_key_secret"),
                            self.setting("security_token"))
        request = SignedRequest(self.command, self.bucket_name, self.key, query, self.lower_headers)
        with self.oss.store.lock:
            bucket = self.oss.store.buckets.get(self.bucket_name) if self.bucket_name else None
        self.sign_region = verify(request, creds, bucket.region if bucket else None)

    # -- helpers for operations -------------------------------------------------------------
    def header(self, name: str, default: str = "") -> str:
        return self.lower_headers.get(name.lower(), default)

    def flag(self, name: str) -> bool:
        return self.header(name).strip().lower() == "true"

    def int_param(self, name: str, default: int, high: int) -> int:
        value = self.params.get(name, "")
        if value == "":
            return default
        if not value.isdigit() or not 1 <= int(value) <= high:
            raise invalid_argument(name, value, f"{name} must be an integer between 1 and {high}.")
        return int(value)

    def encoder(self) -> Callable[[str], str]:
        if self.params.get("encoding-type") == "url":
            return lambda text: quote(text, safe="")
        return lambda text: text

    def read_bucket(self, name: str | None = None) -> Bucket:
        return self.oss.store.bucket(self.bucket_name if name is None else name)

    def write_bucket(self) -> Bucket:
        """The target bucket of a write, created on demand if ``auto_create_buckets``."""
        region = None
        if self.setting("auto_create_buckets"):
            region = self.sign_region or self.setting("default_region")
        return self.oss.store.bucket(self.bucket_name, create_region=region)

    def request_metadata(self) -> tuple[str, dict[str, str], dict[str, str]]:
        """Content-Type, x-oss-meta-* (prefix removed) and standard headers of the request."""
        meta = {name[len(META_PREFIX):]: value for name, value in self.lower_headers.items()
                if name.startswith(META_PREFIX)}
        standard = {name: self.lower_headers[name.lower()] for name in STANDARD_HEADERS
                    if name.lower() in self.lower_headers}
        return self.header("content-type") or "application/octet-stream", meta, standard

    def receive_body(self) -> tuple[Content, str]:
        """Stream the request body into a content (spilled to disk when big), at ``bandwidth``.

        Returns the content and its upper-case hex MD5.
        """
        throttle = Throttle(self.setting("bandwidth"))
        writer = ContentWriter(self.oss.data_dir, int(self.setting("spill_threshold")))
        try:
            for data in self.iter_body(throttle.chunk):
                writer.write(data)
                throttle.account(len(data))
        except BaseException:
            writer.abort()
            raise
        self.log_fields["bytes"] = writer.size
        expected = self.header("content-md5")
        if expected and expected != base64.b64encode(bytes.fromhex(writer.md5)).decode():
            writer.abort()
            raise OssError("InvalidDigest")
        return writer.finish(), writer.md5

    def check_conditions(self, record: ObjectRecord, prefix: str = "") -> None:
        """If-Match / If-None-Match / If-(Un)Modified-Since (``prefix`` x-oss-copy-source-)."""
        match = self.header(prefix + "if-match")
        if match and not _etag_in(record.etag, match):
            raise OssError("PreconditionFailed", Condition=prefix + "If-Match")
        unmodified = _http_time(self.header(prefix + "if-unmodified-since"))
        if unmodified is not None and record.last_modified > unmodified:
            raise OssError("PreconditionFailed", Condition=prefix + "If-Unmodified-Since")
        none_match = self.header(prefix + "if-none-match")
        if none_match and _etag_in(record.etag, none_match):
            raise OssError("NotModified")
        modified = _http_time(self.header(prefix + "if-modified-since"))
        if modified is not None and record.last_modified <= modified:
            raise OssError("NotModified")

    def parse_copy_source(self) -> tuple[str, str, str | None]:
        """``/bucket/%-encoded-key[?versionId=...]`` -> (bucket, key, version id or None)."""
        value = self.header("x-oss-copy-source")
        path, _, query = value.partition("?")
        version_id = dict(parse_qsl(query)).get("versionId") if query else None
        bucket, _, key = path[1:].partition("/")
        if not value.startswith("/") or not bucket or not key:
            raise invalid_argument("x-oss-copy-source", value, "Copy Source must mention the source bucket "
                                   "and key: /sourcebucket/sourcekey.")
        self.log_fields.update(source_bucket=bucket, source_key=unquote(key))
        return bucket, unquote(key), version_id

    def copy_source(self, target: Bucket) -> ObjectRecord:
        """The record ``x-oss-copy-source`` names, after the region and condition checks."""
        bucket_name, key, version_id = self.parse_copy_source()
        source_bucket = self.read_bucket(bucket_name)
        if source_bucket.region != target.region:
            raise invalid_argument(
                "x-oss-copy-source", self.header("x-oss-copy-source"),
                f"The source bucket {bucket_name} is in region {source_bucket.region} but the target "
                f"bucket {target.name} is in region {target.region}: server-side copy only works within "
                "one region.")
        if version_id is None:
            record = self.oss.store.get(bucket_name, key)
        else:
            record = self.oss.store.version(bucket_name, key, version_id)
            if record.delete_marker:
                raise invalid_argument("x-oss-copy-source", self.header("x-oss-copy-source"),
                                       "The source version is a delete marker.")
        self.check_conditions(record, "x-oss-copy-source-")
        return record

    def copy_delay(self, size: int) -> None:
        rate = self.setting("copy_rate")
        if rate:
            self.hold(size / float(rate))

    def object_headers(self, record: ObjectRecord) -> dict[str, str]:
        headers = {"ETag": f'"{record.etag}"', "Last-Modified": http_date(record.last_modified),
                   "x-oss-object-type": record.object_type, "x-oss-storage-class": "Standard",
                   "Accept-Ranges": "bytes"}
        crc = record.crc
        if crc is not None:
            headers["x-oss-hash-crc64ecma"] = str(crc)
        headers.update(record.headers)
        headers.update({META_PREFIX + name: value for name, value in record.meta.items()})
        return headers

    # -- answers ----------------------------------------------------------------------------
    def answer(self, status: int, headers: dict[str, str] | None = None, body: bytes = b"",
               content_type: str | None = "application/xml", length: int | None = None) -> None:
        """Send status and headers, then ``body`` (never for HEAD). ``length`` overrides the size."""
        self.send_response(status)
        self.send_header("x-oss-request-id", self.request_id)
        if not self._body_read:  # an unread request body: the base server closes the connection
            self.send_header("Connection", "close")
            self.close_connection = True
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers_with(body if self.command != "HEAD" else b"")

    def answer_error(self, error: OssError) -> None:
        self.log_fields["error"] = error.code
        self.drain()
        host = f"{self.bucket_name}.oss-{self.setting('default_region')}.aliyuncs.com" \
            if self.bucket_name else "oss.aliyuncs.com"
        details = dict(error.details)
        if self.bucket_name and error.code == "NoSuchBucket":
            details.setdefault("BucketName", self.bucket_name)
        body = xmlio.error_body(error.code, error.message, self.request_id, host, details)
        if error.status == 304:  # like OSS: no body and no x-oss-err (oss2 then raises NotModified)
            self.answer(304, content_type=None, length=0)
        elif self.command == "HEAD":
            self.answer(error.status, {"x-oss-err": base64.b64encode(body).decode()}, content_type=None,
                        length=0)
        else:
            self.answer(error.status, body=body)

    def drain(self) -> None:
        """Read an unread request body (up to a limit) so the connection can be reused."""
        if self._body_read:
            return
        size = self.header("content-length")
        if (size.isdigit() and int(size) <= DRAIN_LIMIT) or "chunked" in self.header("transfer-encoding"):
            for _ in self.iter_body():
                pass


def _etag_in(etag: str, header: str) -> bool:
    wanted = {item.strip().strip('"').upper() for item in header.split(",")}
    return "*" in wanted or etag.upper() in wanted


def _http_time(value: str) -> float | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_get_range(value: str, size: int) -> tuple[int, int] | None:
    """A GET ``Range`` as an inclusive (start, end); None (whole object) when invalid, like OSS."""
    match = RANGE.match(value.strip()) if value else None
    if not match or match.group(1) == match.group(2) == "":
        return None
    first, last = match.groups()
    if first == "":
        count = int(last)
        if count == 0:
            return None
        return max(0, size - count), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        raise OssError("InvalidRange", status=416, RangeRequested=value, ActualObjectSize=str(size))
    return start, min(end, size - 1)


def parse_copy_range(value: str, size: int) -> tuple[int, int]:
    """``x-oss-copy-source-range: bytes=a-b`` (inclusive) or ``bytes=a-``; whole object if absent."""
    if not value:
        return 0, size - 1
    match = RANGE.match(value.strip())
    if not match or match.group(1) == "":
        raise invalid_argument("x-oss-copy-source-range", value, "The copy source range is invalid.")
    start = int(match.group(1))
    end = int(match.group(2)) if match.group(2) else size - 1
    if end < start or end >= size:
        raise invalid_argument("x-oss-copy-source-range", value,
                               f"The copy source range is outside the source object of {size} bytes.")
    return start, end
