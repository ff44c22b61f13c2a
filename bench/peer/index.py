"""A plain implementation of the function's contract: the peer the bench measures the function against.

An FC code root of its own (``index.initialize`` / ``index.handler``), written the way a competent
engineer would write the contract with stock libraries and nothing else: the event's job ids; per job,
a HEAD of its manifest (committed jobs are not queried again), ``QueryIProductionJob`` over stock
``httpx.Client`` signed with the official ``alibabacloud-openapi-util`` V3 signer, and on ``Success``
a ``ThreadPoolExecutor(COPY_CONCURRENCY)`` of oss2 ``head_object`` + ``copy_object`` per file (parts
with ``upload_part_copy`` at or above ``MULTIPART_THRESHOLD_BYTES``) on one ``oss2.Bucket`` whose
``requests`` pool holds ``COPY_CONCURRENCY`` connections, then ``manifest.json`` PUT with
``x-oss-forbid-overwrite``. Every copy is put-if-absent too; a destination found already there is kept
when its size and CRC-64 are the source's.

Left out on purpose (the bench never exercises them): the pending registry and timer sweeps (a job
not finished yet is reported ``pending`` and nothing is recorded), cross-region streaming, and the
versioned-bucket check. It shares no code with ``handler/``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import random
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import oss2
from alibabacloud_openapi_util.client import Client as OpenApiUtil
from oss2.credentials import StaticCredentialsProvider
from oss2.models import PartInfo
from Tea.request import TeaRequest

MPS_VERSION = "2014-06-18"
SIGNATURE_ALGORITHM = "ACS3-HMAC-SHA256"
JOB_ID = re.compile(r"^[0-9a-fA-F]{32}$")
OUTPUT = re.compile(r"^oss://(?P<bucket>[a-z0-9][a-z0-9-]{1,61}[a-z0-9])"
                    r"(?:\.oss-(?P<region>[a-z0-9-]+?)(?:-internal)?\.aliyuncs\.com)?/")
MANIFEST = "manifest.json"
MAX_KEY_BYTES = 1023
MPS_TRIES = 5
RETRIED_MPS_CODES = ("Throttling", "ServiceUnavailable", "InternalError")
FORBID_OVERWRITE = {"x-oss-forbid-overwrite": "true"}
MIB = 1 << 20


class JobRejectedError(Exception):
    """The job cannot be copied as it is (the contract's ``rejected``)."""


class MpsCallError(Exception):
    """MPS answered with an error, or could not be reached."""

    def __init__(self, message: str, code: str = "", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.retry_after = retry_after


@dataclass
class Settings:
    dest_bucket: str
    dest_prefix: str
    dest_region: str
    mps_region: str
    mps_endpoint: str
    oss_endpoint: str | None
    source_buckets: set[str]
    copy_concurrency: int
    multipart_threshold: int
    part_size: int

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        region = env.get("FC_REGION") or env.get("ALIBABA_CLOUD_REGION_ID") or "cn-hangzhou"
        prefix = env.get("DEST_PREFIX", "iproduction/")
        mps_region = env.get("MPS_REGION") or region
        return cls(dest_bucket=env["DEST_BUCKET"], dest_prefix=prefix if not prefix or prefix.endswith("/")
                   else prefix + "/", dest_region=env.get("DEST_REGION") or region, mps_region=mps_region,
                   mps_endpoint=(env.get("MPS_ENDPOINT") or f"https://mts.{mps_region}.aliyuncs.com").rstrip("/"),
                   oss_endpoint=env.get("OSS_ENDPOINT") or None,
                   source_buckets={b.strip() for b in env.get("SOURCE_BUCKETS", "").split(",") if b.strip()},
                   copy_concurrency=int(env.get("COPY_CONCURRENCY", "64")),
                   multipart_threshold=int(env.get("MULTIPART_THRESHOLD_BYTES", str(256 * MIB))),
                   part_size=int(env.get("PART_SIZE_BYTES", str(64 * MIB))))


# -- events ---------------------------------------------------------------------------------------

def job_id_of(body: str) -> str | None:
    """A message body: the MPS notification JSON, a bare job id, or either in base64 (tried once)."""
    for _ in range(2):
        text = body.strip()
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        if isinstance(document, dict):
            found = document.get("JobId", document.get("jobId"))
            return found if isinstance(found, str) else None
        if JOB_ID.match(text):
            return text
        try:
            body = base64.b64decode(text, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
    return None


def bodies(event: Any) -> list[str] | None:
    """The message bodies an event carries; None for a timer without ``jobIds`` (a sweep)."""
    if isinstance(event, list):
        return [body for item in event for body in bodies(item) or []]
    if not isinstance(event, dict):
        return [event if isinstance(event, str) else json.dumps(event)]
    if "triggerTime" in event:
        try:
            payload = json.loads(event.get("payload") or "")
        except ValueError:
            return None
        ids = payload.get("jobIds") if isinstance(payload, dict) else None
        return [str(job) for job in ids] if isinstance(ids, list) else None
    if event.get("type") == "mns:Queue:SendMessage":
        return [str((event.get("data") or {}).get("messageBody", ""))]
    if "Message" in event and ("TopicName" in event or "TopicOwner" in event):
        return [str(event["Message"])]
    if "body" in event:
        return [str(event["body"])]
    return [json.dumps(event)]


def job_ids(raw: bytes) -> tuple[list[str], list[dict[str, Any]]]:
    """Distinct job ids in order, and ``rejected`` entries for bodies that name none."""
    text = raw.decode("utf-8", "replace")
    try:
        event: Any = json.loads(text)
    except ValueError:
        event = text
    found = bodies(event)
    if found is None:
        return [], [{"outcome": "rejected", "reason": "timer sweeps are not implemented by the plain peer"}]
    ids: list[str] = []
    rejected: list[dict[str, Any]] = []
    for body in found:
        job = job_id_of(body)
        if job is None:
            rejected.append({"outcome": "rejected", "reason": "no job id in the message"})
        elif job not in ids:
            ids.append(job)
    return ids, rejected


# -- MPS ------------------------------------------------------------------------------------------

class Mps:
    """``QueryIProductionJob`` with V3 signatures (official signer), retried on throttling and 5xx."""

    def __init__(self, settings: Settings, credentials: oss2.credentials.Credentials) -> None:
        self.endpoint = settings.mps_endpoint
        self.host = urlsplit(self.endpoint).netloc
        self.credentials = credentials
        self.http = httpx.Client(timeout=10, transport=httpx.HTTPTransport(retries=2))

    def signed_headers(self, query: dict[str, str], action: str) -> dict[str, str]:
        payload = hashlib.sha256(b"").hexdigest()
        headers = {"host": self.host, "x-acs-action": action, "x-acs-version": MPS_VERSION,
                   "x-acs-date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                   "x-acs-signature-nonce": uuid.uuid4().hex, "x-acs-content-sha256": payload}
        if self.credentials.security_token:
            headers["x-acs-security-token"] = self.credentials.security_token
        request = TeaRequest()
        request.method, request.pathname, request.query, request.headers = "POST", "/", query, headers
        headers["Authorization"] = OpenApiUtil.get_authorization(
            request, SIGNATURE_ALGORITHM, payload, self.credentials.access_key_id,
            self.credentials.access_key_secret)
        return headers

    def query_job(self, job_id: str) -> dict[str, Any]:
        query = {"JobId": job_id}
        for attempt in range(MPS_TRIES):
            try:
                response = self.http.post(f"{self.endpoint}/", params=query,
                                          headers=self.signed_headers(query, "QueryIProductionJob"))
            except httpx.TransportError as exc:
                error = MpsCallError(f"MPS unreachable: {type(exc).__name__}", "Network")
            else:
                if response.status_code == 200:
                    return response.json()
                body = response.json() if response.headers.get("content-type", "").startswith("application/json") \
                    else {}
                after = response.headers.get("x-acs-retry-after")
                error = MpsCallError(f"MPS {response.status_code} {body.get('Code')}: {body.get('Message')}",
                                     str(body.get("Code") or response.status_code),
                                     float(after) / 1000 if after else None)
                if response.status_code < 500 and not error.code.startswith(RETRIED_MPS_CODES):
                    raise error
            if attempt + 1 < MPS_TRIES:
                time.sleep(error.retry_after or random.uniform(0, 0.2 * 2 ** attempt))
        raise error


def loads_maybe(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) and value.strip() else value


def result_keys(answer: dict[str, Any]) -> list[str] | None:
    """``Result.Data.result[*].file`` (each level a JSON string or an object); None if unreadable."""
    try:
        result = loads_maybe(answer.get("Result"))
        data = loads_maybe(result.get("Data")) if isinstance(result, dict) else None
    except ValueError:
        return None
    entries = data.get("result") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        return None
    keys = [entry["file"] for entry in entries if isinstance(entry, dict) and isinstance(entry.get("file"), str)]
    return list(dict.fromkeys(keys))


# -- OSS ------------------------------------------------------------------------------------------

def destination_names(keys: list[str]) -> list[str]:
    """Each key relative to the deepest directory all keys share; unsafe names reject the job."""
    for key in keys:
        if not key or key.startswith("/") or any(ord(c) < 32 or ord(c) == 127 for c in key) \
                or any(part in ("", ".", "..") for part in key.split("/")):
            raise JobRejectedError(f"unsafe result key {key[:80]!r}")
    common = 0
    directories = [key.split("/")[:-1] for key in keys]
    while directories and all(len(d) > common and d[common] == directories[0][common] for d in directories):
        common += 1
    return ["/".join(key.split("/")[common:]) for key in keys]


class Oss:
    """One ``oss2.Session`` whose pool holds ``COPY_CONCURRENCY`` connections; a Bucket per name."""

    def __init__(self, settings: Settings, credentials: oss2.credentials.Credentials) -> None:
        self.settings = settings
        self.auth = oss2.ProviderAuthV4(StaticCredentialsProvider(
            credentials.access_key_id, credentials.access_key_secret, credentials.security_token))
        self.session = oss2.Session(pool_size=settings.copy_concurrency)
        self.buckets: dict[str, oss2.Bucket] = {}

    def bucket(self, name: str, region: str) -> oss2.Bucket:
        if name not in self.buckets:
            endpoint = self.settings.oss_endpoint or f"https://oss-{region}.aliyuncs.com"
            self.buckets[name] = oss2.Bucket(self.auth, endpoint, name, session=self.session, region=region)
        return self.buckets[name]


@dataclass
class Copied:
    source: str
    key: str
    size: int
    crc64: int | None
    etag: str
    content_type: str | None


def copy_file(oss: Oss, source: oss2.Bucket, dest: oss2.Bucket, key: str, dest_key: str) -> Copied:
    """HEAD the source, then CopyObject (or UploadPartCopy parts) to ``dest_key``, put-if-absent."""
    settings = oss.settings
    try:
        head = source.head_object(key)
    except oss2.exceptions.NotFound:
        raise JobRejectedError(f"result file {key!r} is missing") from None
    size, crc = head.content_length, head.server_crc
    try:
        if size < settings.multipart_threshold:
            copied = dest.copy_object(source.bucket_name, key, dest_key, headers=FORBID_OVERWRITE)
            # oss2 takes the ETag from the headers and leaves the XML body unread, which keeps the
            # connection out of the pool (every file would open a new one): read it.
            copied.resp.read()
            etag = copied.etag
        else:
            etag = copy_in_parts(source, dest, key, dest_key, size, head.headers, settings.part_size)
    except oss2.exceptions.ServerError as exc:
        if exc.status != 409:
            raise
        there = dest.head_object(dest_key)  # FileAlreadyExists: keep it if it is the same bytes
        if there.content_length != size or (crc is not None and there.server_crc != crc):
            raise
        etag = there.etag
    return Copied(f"oss://{source.bucket_name}/{key}", dest_key, size, crc, etag.strip('"'),
                  head.headers.get("Content-Type"))


def copy_in_parts(source: oss2.Bucket, dest: oss2.Bucket, key: str, dest_key: str, size: int,
                  headers: Any, part_size: int) -> str:
    kept = {name: value for name, value in headers.items()
            if name.lower() in ("content-type", "content-disposition", "content-encoding", "cache-control",
                                "expires") or name.lower().startswith("x-oss-meta-")}
    upload = dest.init_multipart_upload(dest_key, headers={**kept, **FORBID_OVERWRITE}).upload_id
    parts = []
    for number, start in enumerate(range(0, size, part_size), start=1):
        end = min(start + part_size, size) - 1
        result = dest.upload_part_copy(source.bucket_name, key, (start, end), dest_key, upload, number)
        result.resp.read()
        parts.append(PartInfo(number, result.etag, size=end - start + 1))
    return dest.complete_multipart_upload(dest_key, upload, parts, headers=FORBID_OVERWRITE).etag


# -- one job ---------------------------------------------------------------------------------------

class Peer:
    def __init__(self, settings: Settings, credentials: oss2.credentials.Credentials) -> None:
        self.settings = settings
        self.mps = Mps(settings, credentials)
        self.oss = Oss(settings, credentials)
        self.pool = ThreadPoolExecutor(settings.copy_concurrency, thread_name_prefix="copy")
        self.dest = self.oss.bucket(settings.dest_bucket, settings.dest_region)

    def process(self, job_id: str) -> dict[str, Any]:
        if not JOB_ID.match(job_id):
            return {"jobId": job_id, "outcome": "rejected", "reason": "not a job id"}
        prefix = f"{self.settings.dest_prefix}{job_id}/"
        if self.dest.object_exists(prefix + MANIFEST):
            return {"jobId": job_id, "outcome": "already-committed"}
        answer = self.mps.query_job(job_id)
        state = answer.get("State")
        if not state:
            return {"jobId": job_id, "outcome": "rejected", "reason": "unknown job"}
        if state == "Fail":
            return self.commit(job_id, prefix, answer, [])
        keys = result_keys(answer) if state == "Success" else None
        if keys is None:
            return {"jobId": job_id, "outcome": "pending", "reason": f"state {state}"}
        output = OUTPUT.match(answer.get("Output") or "")
        if output is None:
            return {"jobId": job_id, "outcome": "rejected", "reason": "Output is not an OSS URL"}
        bucket = output["bucket"]
        if self.settings.source_buckets and bucket not in self.settings.source_buckets:
            return {"jobId": job_id, "outcome": "rejected", "reason": f"source bucket {bucket} not allowed"}
        source = self.oss.bucket(bucket, output["region"] or self.settings.mps_region)
        try:
            dest_keys = [prefix + name for name in destination_names(keys)]
            if any(len(k.encode()) > MAX_KEY_BYTES for k in dest_keys) or prefix + MANIFEST in dest_keys:
                raise JobRejectedError("a destination key is too long or is the manifest's")
            futures = [self.pool.submit(copy_file, self.oss, source, self.dest, key, dest_key)
                       for key, dest_key in zip(keys, dest_keys, strict=True)]
            copied = [future.result() for future in futures]
        except JobRejectedError as exc:
            return {"jobId": job_id, "outcome": "rejected", "reason": str(exc)}
        return self.commit(job_id, prefix, answer, copied)

    def commit(self, job_id: str, prefix: str, answer: dict[str, Any], copied: list[Copied]) -> dict[str, Any]:
        result = loads_maybe(answer.get("Result"))
        result = result if isinstance(result, dict) else {}
        document = {
            "schema": "iproduction-manifest/1", "jobId": job_id, "state": answer["State"],
            "functionName": answer.get("FunctionName"), "pipelineId": answer.get("PipelineId"),
            "input": answer.get("Input"), "output": answer.get("Output"), "jobParams": answer.get("JobParams"),
            "userData": answer.get("UserData"),
            "result": {"code": result.get("Code"), "message": result.get("Message")},
            "mpsRequestId": answer.get("RequestId"),
            "committedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "destination": {"bucket": self.settings.dest_bucket, "prefix": prefix},
            "files": [{"source": c.source, "key": c.key, "size": c.size,
                       "crc64": None if c.crc64 is None else str(c.crc64), "etag": c.etag,
                       "contentType": c.content_type} for c in copied],
            "fileCount": len(copied), "totalBytes": sum(c.size for c in copied)}
        body = json.dumps(document, ensure_ascii=False, indent=2).encode()
        try:
            self.dest.put_object(prefix + MANIFEST, body, headers={"Content-Type": "application/json",
                                                                   **FORBID_OVERWRITE})
        except oss2.exceptions.ServerError as exc:
            if exc.status == 409:
                return {"jobId": job_id, "outcome": "already-committed", "reason": "lost the commit race"}
            raise
        return {"jobId": job_id, "outcome": "committed" if answer["State"] == "Success" else "job-failed",
                **({"reason": "MPS says Fail"} if answer["State"] == "Fail" else {})}


# -- FC entry points -------------------------------------------------------------------------------

PEER: Peer | None = None


def credentials_from(context: Any) -> oss2.credentials.Credentials:
    env = os.environ
    if env.get("ALIBABA_CLOUD_ACCESS_KEY_ID"):
        return oss2.credentials.Credentials(env["ALIBABA_CLOUD_ACCESS_KEY_ID"],
                                            env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"],
                                            env.get("ALIBABA_CLOUD_SECURITY_TOKEN") or None)
    given = context.credentials
    return oss2.credentials.Credentials(given.access_key_id, given.access_key_secret, given.security_token)


def initialize(context: Any) -> None:
    global PEER
    PEER = Peer(Settings.from_env(), credentials_from(context))


def handler(event: bytes, context: Any) -> dict[str, Any]:
    if PEER is None:
        initialize(context)
    assert PEER is not None
    ids, entries = job_ids(event)
    failed = []
    for job_id in ids:
        try:
            entries.append(PEER.process(job_id))
        except (MpsCallError, oss2.exceptions.OssError) as exc:
            failed.append(job_id)
            entries.append({"jobId": job_id, "outcome": "error", "reason": f"{type(exc).__name__}: {exc}"[:300]})
    summary = {"jobs": entries}
    if failed:
        raise RuntimeError(f"{len(failed)} job(s) failed, the trigger retries: {json.dumps(summary)[:2000]}")
    return summary
