"""The OSS client: every OSS request of the function, over one ``aiohttp.ClientSession``.

One seam to the network (:meth:`OSSClient.send`): a request is addressed as oss2 addresses it
(:func:`object_url`), signed with OSS signature V4 (``ossauth``, held to oss2's own signatures by
the tests), sent with a timeout capped by the invocation's time left, and an error answer becomes
oss2's own exception (``oss2.exceptions.make_exception``: the same classes and XML parsing as oss2).
Every operation retries through :func:`retry.run` with :func:`classify`; failures leave this module
as the function's own errors (:func:`translate`). aiohttp frames HTTP, keeps connections alive,
verifies TLS against the CA bundle and honours the environment's proxies; the session's connection
limit is ``COPY_CONCURRENCY``.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import json
import ssl
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit
from xml.etree import ElementTree

import aiohttp
from oss2 import exceptions as oss_errors
from oss2.utils import is_ip_or_localhost, iso8601_to_unixtime
from yarl import URL

from . import retry
from .budget import Deadline
from .crc64 import crc64
from .credentials import CredentialsSource
from .errors import BudgetExceededError, CollectorError, CredentialsError, RejectedError, TransientError
from .ossauth import sign, uri_quote

#: Headers that describe an object and must follow it through a multipart copy (oss.md §1.4).
CARRIED_HEADERS = ("content-type", "content-encoding", "content-disposition", "cache-control",
                   "expires", "content-language")
AUTH_CODES = ("AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidSecurityToken",
              "SecurityTokenExpired", "InvalidObjectState")
USER_AGENT = "iproduction-collector/2.0"


@dataclass(frozen=True)
class Bucket:
    """A bucket and the region (so the endpoint and the V4 scope) it is served from."""

    name: str
    region: str
    endpoint: str

    @functools.cached_property
    def base(self) -> str:
        """The URL of the bucket's objects, without the key (:func:`object_url`)."""
        return object_url(self.endpoint, self.name, "")


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
        return "-" in self.etag


@dataclass(frozen=True)
class Listed:
    """One object of a listing."""

    key: str
    size: int
    etag: str
    last_modified: int


@dataclass(frozen=True)
class Upload:
    """A multipart upload in progress (ListMultipartUploads)."""

    key: str
    upload_id: str
    initiated: int


@dataclass(frozen=True)
class Reply:
    """An OSS answer, read whole (the body of an error answer is at most a few KiB)."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def request_id(self) -> str:
        return self.headers.get("x-oss-request-id", "")

    def read(self, amt: int | None = None) -> bytes:  # what oss2.exceptions.make_exception reads
        return self.body if amt is None else self.body[:amt]

    @property
    def etag(self) -> str:
        return (self.headers.get("etag") or "").strip('"').upper()

    @property
    def crc(self) -> int | None:
        value = self.headers.get("x-oss-hash-crc64ecma")
        return int(value) if value else None


def object_url(endpoint: str, bucket: str, key: str) -> str:
    """The URL oss2 sends a request on (``oss2.api._UrlMaker``): path style on an IP address or
    ``localhost``, else virtual-hosted; the key percent-encoded with nothing kept (``/`` → ``%2F``)."""
    parts = urlsplit(endpoint)
    quoted = uri_quote(key)
    if is_ip_or_localhost(parts.netloc):
        return f"{parts.scheme}://{parts.netloc}/{bucket}/{quoted}" if bucket else f"{parts.scheme}://{parts.netloc}/"
    return f"{parts.scheme}://{bucket}.{parts.netloc}/{quoted}"


def copy_source(bucket: str, key: str) -> str:
    """``x-oss-copy-source`` as oss2 writes it."""
    return f"/{bucket}/{uri_quote(key)}"


def object_info(reply: Reply) -> ObjectInfo:
    """What a HEAD's answer (its headers looked up in any case) says of the object."""
    headers = reply.headers
    carried = {k: v for k, v in headers.items() if k.lower() in CARRIED_HEADERS or k.lower().startswith("x-oss-meta-")}
    return ObjectInfo(size=int(headers.get("content-length") or 0), etag=reply.etag, crc64=reply.crc,
                      content_type=headers.get("content-type"), object_type=headers.get("x-oss-object-type"),
                      carried=carried)


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


def parse_uploads(body: bytes) -> tuple[list[Upload], tuple[str, str] | None]:
    """A ListMultipartUploads page: the uploads and, if truncated, the next (key, upload id) markers."""
    root = ElementTree.fromstring(body)
    encoded = root.findtext("EncodingType") == "url"

    def text(node: ElementTree.Element, name: str) -> str:
        value = node.findtext(name) or ""
        return unquote(value) if encoded else value

    uploads = [Upload(text(node, "Key"), node.findtext("UploadId") or "",
                      iso8601_to_unixtime(node.findtext("Initiated") or ""))
               for node in root.iterfind("Upload")]
    if (root.findtext("IsTruncated") or "").lower() != "true":
        return uploads, None
    return uploads, (text(root, "NextKeyMarker"), root.findtext("NextUploadIdMarker") or "")


def xml_text(body: bytes, name: str) -> str:
    """The text of the first ``name`` element of an XML answer ('' when there is none)."""
    return ElementTree.fromstring(body).findtext(f".//{name}") or ""


def check_read(data: bytes, server_crc: int | None, request_id: str) -> None:
    """Raise ``InconsistentError`` (retried) when the bytes read are not those OSS holds."""
    if server_crc is not None and crc64(data) != server_crc:
        raise oss_errors.InconsistentError("the CRC-64 of the bytes read differs from OSS's", request_id)


def classify(exc: BaseException) -> retry.Verdict:
    """Transient OSS failures: no answer or a cut one, 5xx, 429, a CRC mismatch."""
    if isinstance(exc, (aiohttp.ClientError, asyncio.TimeoutError)):
        return retry.Verdict(True, None, "oss-network")
    if isinstance(exc, oss_errors.InconsistentError):
        return retry.Verdict(True, None, "oss-crc")
    if isinstance(exc, oss_errors.ServerError):
        if exc.status >= 500:
            return retry.Verdict(True, None, "oss-5xx")
        if exc.status == 429 or (exc.status == 409 and exc.code == "ConcurrentUpdateObjectFailed"):
            return retry.Verdict(True, None, "oss-throttling")
    return retry.Verdict(False)


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "no answer in time (TimeoutError)"
    if isinstance(exc, aiohttp.ClientError):
        return f"no answer or a cut one ({type(exc).__name__})"
    if isinstance(exc, oss_errors.OssError):
        return f"{exc.code or 'error'} (HTTP {exc.status})"
    return type(exc).__name__


def translate(exc: BaseException, what: str, bucket: Bucket | None = None) -> CollectorError:
    """An exception (after retries) as the function's own error. A refused signature names the region
    it was signed for: a V4 signature names one, and a bucket in another refuses it."""
    if isinstance(exc, CollectorError):
        return exc
    text = f"OSS {what}: {describe_error(exc)}"
    if isinstance(exc, oss_errors.ServerError) and (exc.status in (401, 403) or
                                                    (exc.code or "").startswith(AUTH_CODES)):
        if exc.code == "SignatureDoesNotMatch" and bucket is not None:
            text += (f": the request was signed for region {bucket.region}; bucket {bucket.name} may be in another "
                     "region (check DEST_REGION, or the region in the job's Output)")
        return CredentialsError(text)
    return TransientError(text)


def new_session(connections: int, tls: ssl.SSLContext | bool, trust_env: bool) -> aiohttp.ClientSession:
    """The instance's session (on the running loop): at most ``connections`` open connections (twice the
    slots: a stream is a GET holding a slot and the upload it feeds), kept alive; TLS verified with
    ``tls``; proxies from the environment when ``trust_env`` (aiohttp then reads them, and ``.netrc``, on
    every request); bodies left as OSS sends them (an object stored gzip-encoded is not inflated); no
    header added after signing (a Content-Type that aiohttp would add unasked is not in the signature)."""
    connector = aiohttp.TCPConnector(limit=connections, limit_per_host=0, ssl=tls,
                                     ttl_dns_cache=60, enable_cleanup_closed=True)
    return aiohttp.ClientSession(connector=connector, auto_decompress=False, trust_env=trust_env,
                                 headers={"User-Agent": USER_AGENT},
                                 skip_auto_headers=("Accept-Encoding", "Content-Type"))


class Slots:
    """Connection slots, handed out by priority (0 before 1), then in the order asked for."""

    def __init__(self, size: int) -> None:
        self.free = size
        self.queues: tuple[deque[asyncio.Future[None]], ...] = (deque(), deque())

    async def acquire(self, priority: int) -> None:
        if self.free and not any(self.queues):
            self.free -= 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self.queues[priority].append(waiter)
        try:
            await waiter  # a waiter cancelled in the queue stays there: release() passes it by
        except asyncio.CancelledError:
            if not waiter.cancelled():
                self.release()  # handed a slot just as it was cancelled: pass it on
            raise

    def release(self) -> None:
        for queue in self.queues:
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)  # the slot goes straight to the waiter
                    return
        self.free += 1


class OSSClient:
    """Async OSS operations over one session; ``credentials`` are read for every request."""

    def __init__(self, session: aiohttp.ClientSession, credentials: CredentialsSource, *,
                 endpoint_for: Any, slots: int = 64, timeout: float = 60.0, policy: retry.RetryPolicy | None = None,
                 stats: retry.RetryStats | None = None) -> None:
        self.session = session
        self.credentials = credentials
        self.endpoint_for = endpoint_for  # region -> endpoint URL
        self.timeout = timeout
        self.policy = policy or retry.RetryPolicy()
        self.stats = stats or retry.RetryStats()
        # One slot per connection: a request checks the time left once it holds one, not while it queues.
        self.slots = Slots(slots)
        self.priority = 0

    def yielding(self) -> OSSClient:
        """This client, its requests given a free slot only when none of the original's waits (the copier's:
        a job's lookup, pending record and manifest never queue behind the file copies of other jobs)."""
        clone = copy.copy(self)
        clone.priority = 1
        return clone

    def bucket(self, name: str, region: str) -> Bucket:
        return Bucket(name, region, self.endpoint_for(region))

    # -- the one way a request goes out --------------------------------------------------------
    def prepare(self, method: str, bucket: Bucket, key: str, params: Mapping[str, str] | None,
                headers: Mapping[str, str] | None) -> tuple[URL, dict[str, str]]:
        """The request's URL (encoded exactly as signed) and its signed headers."""
        params = params or {}
        signed = dict(headers) if headers else {}
        sign(method, bucket.name, key, params, signed, bucket.region, self.credentials.get())
        url = bucket.base + uri_quote(key)
        if params:
            url += "?" + "&".join(f"{uri_quote(k)}={uri_quote(v)}" if v else uri_quote(k)
                                  for k, v in params.items())
        return URL(url, encoded=True), signed

    def request(self, method: str, bucket: Bucket, key: str, deadline: Deadline | None, *,
                params: Mapping[str, str] | None, headers: Mapping[str, str] | None, body: Any,
                needs: float) -> Any:
        """The request, addressed, signed and timed, for a caller that holds a connection slot: it is
        not sent unless ``needs`` seconds are left, and may not outlive the time left (``deadline``)."""
        limit = self.timeout
        if deadline is not None:
            what = f"{method} {bucket.name}/{key}"
            deadline.check(needs, what)
            limit = deadline.cap(self.timeout, what)
        url, signed = self.prepare(method, bucket, key, params, headers)
        return self.session.request(method, url, headers=signed, data=body, allow_redirects=False,
                                    timeout=aiohttp.ClientTimeout(total=limit))

    async def send(self, method: str, bucket: Bucket, key: str, deadline: Deadline | None, *,
                   params: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None,
                   body: Any = None, needs: float = 0.0, paired: bool = False) -> Reply:
        """One request once a connection slot is free, its answer read whole (an error answer raises
        oss2's exception). ``paired``: the upload fed by a GET that holds a slot already (a stream is
        one slot, two connections)."""
        if not paired:
            await self.slots.acquire(self.priority)
        try:
            async with self.request(method, bucket, key, deadline, params=params, headers=headers, body=body,
                                    needs=needs) as response:
                reply = Reply(response.status, response.headers, b"" if method == "HEAD" else await response.read())
        finally:
            if not paired:
                self.slots.release()
        if reply.status >= 300:
            raise oss_errors.make_exception(reply)
        return reply

    @asynccontextmanager
    async def open(self, method: str, bucket: Bucket, key: str, deadline: Deadline | None, *,
                   headers: Mapping[str, str] | None = None,
                   needs: float = 0.0) -> AsyncIterator[aiohttp.ClientResponse]:
        """:meth:`send`, but yields the answer with its body unread, to be streamed."""
        await self.slots.acquire(self.priority)
        try:
            async with self.request(method, bucket, key, deadline, params=None, headers=headers, body=None,
                                    needs=needs) as response:
                if response.status >= 300:
                    raise oss_errors.make_exception(Reply(response.status, response.headers, await response.read()))
                yield response
        finally:
            self.slots.release()

    async def call(self, attempt: Any, what: str, deadline: Deadline | None, bucket: Bucket | None = None) -> Any:
        """``await attempt()`` with retries; failures come out translated (a request cut at the
        deadline is the time budget's end)."""
        try:
            return await retry.run(attempt, classify, deadline=deadline, policy=self.policy, stats=self.stats)
        except (asyncio.TimeoutError, aiohttp.ClientError, oss_errors.OssError) as exc:
            if deadline is not None and deadline.expired() and not isinstance(exc, oss_errors.OssError):
                # Cut by its own timeout at the deadline, or a stream cut by its partner's.
                raise BudgetExceededError(f"time budget exhausted: OSS {what} was cut at the deadline") from None
            raise translate(exc, what, bucket) from None

    # -- operations --------------------------------------------------------------------------
    async def head(self, bucket: Bucket, key: str, deadline: Deadline | None) -> ObjectInfo | None:
        """HEAD an object; None when it does not exist (a missing bucket is a rejection)."""
        async def attempt() -> ObjectInfo | None:
            try:
                reply = await self.send("HEAD", bucket, key, deadline)
            except oss_errors.NotFound as exc:
                if isinstance(exc, oss_errors.NoSuchBucket):
                    raise RejectedError(f"bucket {bucket.name} does not exist") from None
                return None
            return object_info(reply)

        return await self.call(attempt, f"HEAD {bucket.name}/{key}", deadline, bucket)

    async def list_prefix(self, bucket: Bucket, prefix: str, deadline: Deadline | None) -> dict[str, Listed]:
        """Every object under ``prefix`` (one request per 1000 keys)."""
        found: dict[str, Listed] = {}
        token: str | None = ""
        while token is not None:
            params = {"list-type": "2", "prefix": prefix, "max-keys": "1000", "encoding-type": "url"}
            if token:
                params["continuation-token"] = token

            async def attempt(params: dict[str, str] = params) -> tuple[list[Listed], str | None]:
                reply = await self.send("GET", bucket, "", deadline, params=params)
                return parse_listing(reply.body)

            page, token = await self.call(attempt, f"LIST {bucket.name}/{prefix}", deadline, bucket)
            found.update((item.key, item) for item in page)
        return found

    async def get_bytes(self, bucket: Bucket, key: str, deadline: Deadline | None) -> bytes | None:
        """A small object's content, checked against its CRC-64; None when it does not exist."""
        async def attempt() -> bytes | None:
            try:
                reply = await self.send("GET", bucket, key, deadline)
            except oss_errors.NoSuchKey:
                return None
            check_read(reply.body, reply.crc, reply.request_id)
            return reply.body

        return await self.call(attempt, f"GET {bucket.name}/{key}", deadline, bucket)

    async def get_json(self, bucket: Bucket, key: str, deadline: Deadline | None) -> Any | None:
        """A small JSON object's content, or None when it does not exist or is not JSON."""
        data = await self.get_bytes(bucket, key, deadline)
        if data is None:
            return None
        try:
            return json.loads(data)
        except ValueError:
            return None

    async def put(self, bucket: Bucket, key: str, body: bytes, deadline: Deadline | None, *,
                  headers: Mapping[str, str] | None = None, forbid_overwrite: bool = False) -> Reply | None:
        """PutObject, the CRC-64 OSS stored checked against ``body``. With ``forbid_overwrite``,
        None when the object already exists (409 ``FileAlreadyExists``)."""
        all_headers = {"Content-Type": "application/octet-stream", **(headers or {})}
        if forbid_overwrite:
            all_headers["x-oss-forbid-overwrite"] = "true"

        async def attempt() -> Reply | None:
            try:
                reply = await self.send("PUT", bucket, key, deadline, headers=all_headers, body=body)
            except oss_errors.ServerError as exc:
                if forbid_overwrite and exc.status == 409 and exc.code == "FileAlreadyExists":
                    return None
                raise
            if reply.crc is not None and reply.crc != crc64(body):
                raise oss_errors.InconsistentError("the CRC-64 OSS stored differs from the bytes sent",
                                                   reply.request_id)
            return reply

        return await self.call(attempt, f"PUT {bucket.name}/{key}", deadline, bucket)

    async def put_json(self, bucket: Bucket, key: str, document: Any, deadline: Deadline | None, *,
                       forbid_overwrite: bool = False, indent: int | None = 2) -> Reply | None:
        """PutObject of a JSON document: indented for people (a manifest), or compact (``indent=None``)."""
        body = json.dumps(document, ensure_ascii=False, indent=indent).encode("utf-8")
        return await self.put(bucket, key, body, deadline, headers={"Content-Type": "application/json"},
                              forbid_overwrite=forbid_overwrite)

    async def delete(self, bucket: Bucket, key: str, deadline: Deadline | None) -> None:
        async def attempt() -> None:
            await self.send("DELETE", bucket, key, deadline)

        await self.call(attempt, f"DELETE {bucket.name}/{key}", deadline, bucket)

    async def versioning(self, bucket: Bucket, deadline: Deadline | None) -> str | None:
        """The bucket's versioning state (``Enabled``, ``Suspended``), or None if never enabled."""
        async def attempt() -> str | None:
            reply = await self.send("GET", bucket, "", deadline, params={"versioning": ""})
            return xml_text(reply.body, "Status") or None

        return await self.call(attempt, f"GetBucketVersioning {bucket.name}", deadline, bucket)

    async def list_uploads(self, bucket: Bucket, prefix: str, deadline: Deadline | None) -> list[Upload]:
        """Every multipart upload in progress under ``prefix``."""
        found: list[Upload] = []
        markers: tuple[str, str] | None = ("", "")
        while markers is not None:
            params = {"uploads": "", "prefix": prefix, "encoding-type": "url"}
            if markers[0]:
                params.update({"key-marker": markers[0], "upload-id-marker": markers[1]})

            async def attempt(params: dict[str, str] = params) -> tuple[list[Upload], tuple[str, str] | None]:
                reply = await self.send("GET", bucket, "", deadline, params=params)
                return parse_uploads(reply.body)

            page, markers = await self.call(attempt, f"list uploads under {bucket.name}/{prefix}", deadline,
                                            bucket)
            found.extend(page)
        return found

    async def abort_upload(self, bucket: Bucket, key: str, upload_id: str, deadline: Deadline | None) -> None:
        async def attempt() -> None:
            try:
                await self.send("DELETE", bucket, key, deadline, params={"uploadId": upload_id})
            except oss_errors.NoSuchUpload:
                return

        await self.call(attempt, f"abort upload of {bucket.name}/{key}", deadline, bucket)

