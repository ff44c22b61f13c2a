"""The emulator's state: buckets, objects (key -> record -> content) and multipart uploads."""

from __future__ import annotations

import base64
import bisect
import hashlib
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .content import Content
from .errors import OssError

MAX_PART_NUMBER = 10000


@dataclass
class ObjectRecord:
    """One key's current version. Contents are shared between records (copies are free)."""

    key: str
    content: Content
    etag: str  # upper-case hex, without quotes
    content_type: str = "application/octet-stream"
    meta: dict[str, str] = field(default_factory=dict)  # x-oss-meta-* without the prefix, lower-case
    headers: dict[str, str] = field(default_factory=dict)  # Cache-Control, Content-Disposition...
    object_type: str = "Normal"
    has_crc: bool = True
    last_modified: float = field(default_factory=lambda: float(int(time.time())))

    @property
    def size(self) -> int:
        return self.content.size

    @property
    def crc(self) -> int | None:
        return self.content.crc if self.has_crc else None

    def public(self) -> dict[str, Any]:
        crc = self.crc
        return {"key": self.key, "size": self.size, "etag": self.etag,
                "crc64": None if crc is None else str(crc), "content_type": self.content_type,
                "meta": dict(self.meta), "object_type": self.object_type,
                "last_modified": self.last_modified}


@dataclass
class Part:
    number: int
    content: Content
    etag: str
    has_crc: bool
    last_modified: float = field(default_factory=lambda: float(int(time.time())))


@dataclass
class Upload:
    upload_id: str
    bucket: str
    key: str
    content_type: str
    meta: dict[str, str]
    headers: dict[str, str]
    initiated: float = field(default_factory=time.time)
    parts: dict[int, Part] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "key": self.key, "upload_id": self.upload_id,
                "initiated": self.initiated, "parts": sorted(self.parts)}


@dataclass
class Bucket:
    name: str
    region: str
    created: float = field(default_factory=time.time)
    objects: dict[str, ObjectRecord] = field(default_factory=dict)
    uploads: dict[str, Upload] = field(default_factory=dict)
    #: The object keys in order, so that a listing reads its prefix's range, not every key (as OSS does).
    keys: list[str] = field(default_factory=list)

    def keep(self, record: ObjectRecord) -> None:
        if record.key not in self.objects:
            bisect.insort(self.keys, record.key)
        self.objects[record.key] = record

    def drop(self, key: str) -> None:
        if self.objects.pop(key, None) is not None:
            del self.keys[bisect.bisect_left(self.keys, key)]

    def keys_after(self, prefix: str, after: str) -> Iterator[str]:
        """The keys starting with ``prefix`` and above ``after``, in order."""
        keys = self.keys
        at = bisect.bisect_right(keys, after) if after >= prefix else bisect.bisect_left(keys, prefix)
        while at < len(keys) and keys[at].startswith(prefix):
            yield keys[at]
            at += 1

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "region": self.region, "objects": len(self.objects),
                "uploads": len(self.uploads)}


@dataclass
class Listing:
    objects: list[ObjectRecord]
    prefixes: list[str]
    truncated: bool
    next_marker: str  # the last key or common prefix returned ("" if none)


def multipart_etag(part_etags: list[str]) -> str:
    """``<HEX>-N``: MD5 over the parts' binary MD5s, like S3/OSS multipart ETags."""
    digest = hashlib.md5(b"".join(bytes.fromhex(etag) for etag in part_etags))
    return f"{digest.hexdigest().upper()}-{len(part_etags)}"


def encode_token(marker: str) -> str:
    return base64.urlsafe_b64encode(marker.encode()).decode()


def decode_token(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except ValueError as exc:
        raise OssError("InvalidArgument", "The continuation token is invalid.",
                       ArgumentName="continuation-token", ArgumentValue=token) from exc


class Store:
    """All buckets; one lock guards the maps (contents are immutable and need none)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.buckets: dict[str, Bucket] = {}

    # -- buckets --------------------------------------------------------------------------------
    def bucket(self, name: str, *, create_region: str | None = None) -> Bucket:
        """The bucket; created in ``create_region`` if missing and a region is given."""
        with self.lock:
            bucket = self.buckets.get(name)
            if bucket is None:
                if create_region is None:
                    raise OssError("NoSuchBucket", BucketName=name)
                bucket = self.buckets[name] = Bucket(name, create_region)
            return bucket

    def put_bucket(self, name: str, region: str) -> Bucket:
        with self.lock:
            bucket = self.buckets.get(name)
            if bucket is None:
                bucket = self.buckets[name] = Bucket(name, region)
            else:
                bucket.region = region
            return bucket

    def clear(self) -> None:
        with self.lock:
            self.buckets.clear()

    # -- objects --------------------------------------------------------------------------------
    def get(self, bucket: str, key: str) -> ObjectRecord:
        with self.lock:
            record = self.bucket(bucket).objects.get(key)
            if record is None:
                raise OssError("NoSuchKey", Key=key)
            return record

    def put(self, bucket: str, record: ObjectRecord, *, forbid_overwrite: bool = False) -> None:
        with self.lock:
            target = self.bucket(bucket)
            if forbid_overwrite and record.key in target.objects:
                raise OssError("FileAlreadyExists", Key=record.key)
            target.keep(record)

    def exists(self, bucket: str, key: str) -> bool:
        with self.lock:
            return key in self.bucket(bucket).objects

    def delete(self, bucket: str, key: str) -> None:
        with self.lock:
            self.bucket(bucket).drop(key)

    def list(self, bucket: str, *, prefix: str = "", delimiter: str = "", after: str = "",
             max_keys: int = 100) -> Listing:
        """Keys in UTF-8 (= code point) order after ``after``, grouped by ``delimiter``."""
        with self.lock:
            found = self.bucket(bucket)
            records = found.objects
            keys = found.keys_after(prefix, after)
            objects: list[ObjectRecord] = []
            prefixes: list[str] = []
            last = ""
            for key in keys:
                group = _group(key, prefix, delimiter)
                if group is not None and (group in (after, last)):
                    continue  # inside a common prefix already returned
                if len(objects) + len(prefixes) >= max_keys:
                    return Listing(objects, prefixes, True, last)
                if group is None:
                    objects.append(records[key])
                    last = key
                else:
                    prefixes.append(group)
                    last = group
            return Listing(objects, prefixes, False, last)

    # -- multipart ------------------------------------------------------------------------------
    def create_upload(self, bucket: str, key: str, content_type: str, meta: dict[str, str],
                      headers: dict[str, str]) -> Upload:
        upload = Upload(uuid.uuid4().hex.upper(), bucket, key, content_type, meta, headers)
        with self.lock:
            self.bucket(bucket).uploads[upload.upload_id] = upload
        return upload

    def upload(self, bucket: str, key: str, upload_id: str) -> Upload:
        with self.lock:
            upload = self.bucket(bucket).uploads.get(upload_id)
            if upload is None or upload.key != key:
                raise OssError("NoSuchUpload", UploadId=upload_id)
            return upload

    def put_part(self, bucket: str, key: str, upload_id: str, part: Part) -> None:
        with self.lock:
            self.upload(bucket, key, upload_id).parts[part.number] = part

    def finish_upload(self, bucket: str, key: str, upload_id: str) -> None:
        with self.lock:
            self.upload(bucket, key, upload_id)
            del self.bucket(bucket).uploads[upload_id]

    def uploads(self) -> list[Upload]:
        with self.lock:
            return [upload for bucket in self.buckets.values() for upload in bucket.uploads.values()]


def _group(key: str, prefix: str, delimiter: str) -> str | None:
    if not delimiter:
        return None
    index = key.find(delimiter, len(prefix))
    return None if index < 0 else key[:index + len(delimiter)]
