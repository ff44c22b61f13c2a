"""The emulator's state: buckets, objects (key -> record -> content), versions and multipart uploads.

Versioning follows OSS's documents ("Versioning" overview, PutBucketVersioning, GetBucketVersioning,
ListObjectVersions (GetBucketVersions), DeleteObject, and x-oss-forbid-overwrite in PutObject/CopyObject):
a bucket is unversioned until versioning is first set, then ``Enabled`` or ``Suspended``, never
unversioned again. Objects that exist when it is first enabled keep the version id ``null``. Enabled:
every write adds a version with a new id; Suspended: a write replaces the ``null`` version. In both
states ``x-oss-forbid-overwrite`` has no effect. A DELETE without a version id adds a delete marker (id
``null`` when suspended); with one, it removes that version for good.
"""

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

from .content import BytesContent, Content
from .errors import OssError

MAX_PART_NUMBER = 10000
_EMPTY = BytesContent(b"")


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
    version_id: str | None = None  # None in a bucket that never had versioning
    delete_marker: bool = False

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
                "last_modified": self.last_modified, "version_id": self.version_id}


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
    versioning: str | None = None  # None (never set), "Enabled" or "Suspended"
    #: Every version of every key ever written since versioning was set, oldest first (delete markers too).
    versions: dict[str, list[ObjectRecord]] = field(default_factory=dict)

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

    def settle(self, key: str) -> None:
        """Make the key's newest version its current object (none if that is a delete marker)."""
        history = self.versions.get(key) or []
        if history and not history[-1].delete_marker:
            self.keep(history[-1])
        else:
            self.drop(key)
        if not history:
            self.versions.pop(key, None)

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "region": self.region, "objects": len(self.objects),
                "uploads": len(self.uploads), "versioning": self.versioning}


@dataclass
class VersionListing:
    versions: list[tuple[ObjectRecord, bool]]  # (version or delete marker, is latest), key order, newest first
    prefixes: list[str]
    truncated: bool
    next_key_marker: str
    next_version_id_marker: str


@dataclass
class Listing:
    objects: list[ObjectRecord]
    prefixes: list[str]
    truncated: bool
    next_marker: str  # the last key or common prefix returned ("" if none)


def _new_version_id() -> str:
    return "CAEQ" + uuid.uuid4().hex + uuid.uuid4().hex[:8]


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

    def version(self, bucket: str, key: str, version_id: str) -> ObjectRecord:
        """One version of a key (a delete marker too); 404 ``NoSuchVersion`` if it has none such."""
        with self.lock:
            found = self.bucket(bucket)
            history = found.versions.get(key)
            if history is None and found.versioning is None and version_id == "null" and key in found.objects:
                return found.objects[key]
            for record in history or []:
                if record.version_id == version_id:
                    return record
            raise OssError("NoSuchVersion", Key=key, VersionId=version_id)

    def put(self, bucket: str, record: ObjectRecord, *, forbid_overwrite: bool = False) -> str | None:
        """Store ``record``; returns its version id (None in a bucket that never had versioning)."""
        with self.lock:
            target = self.bucket(bucket)
            if self.refuses_overwrite(bucket, record.key, forbid_overwrite):
                raise OssError("FileAlreadyExists", Key=record.key)
            if target.versioning is None:
                target.keep(record)
                return None
            history = target.versions.setdefault(record.key, [])
            if target.versioning == "Enabled":
                record.version_id = _new_version_id()
            else:  # Suspended: the write replaces the null version
                record.version_id = "null"
                history[:] = [v for v in history if v.version_id != "null"]
            history.append(record)
            target.keep(record)
            return record.version_id

    def refuses_overwrite(self, bucket: str, key: str, forbid_overwrite: bool) -> bool:
        """Whether ``x-oss-forbid-overwrite: true`` refuses a write of ``key``: it exists, and the bucket
        never had versioning (the header has no effect when versioning is enabled or suspended)."""
        with self.lock:
            target = self.bucket(bucket)
            return forbid_overwrite and target.versioning is None and key in target.objects

    def exists(self, bucket: str, key: str) -> bool:
        with self.lock:
            return key in self.bucket(bucket).objects

    def delete(self, bucket: str, key: str, version_id: str | None = None) -> tuple[str | None, bool]:
        """Delete a key (a delete marker where versioning is set) or, with ``version_id``, that version.
        Returns the version id concerned and whether it is a delete marker."""
        with self.lock:
            target = self.bucket(bucket)
            if target.versioning is None:
                if version_id in (None, "null"):
                    target.drop(key)
                return version_id, False
            history = target.versions.setdefault(key, [])
            if version_id is None:
                marker = ObjectRecord(key, _EMPTY, "", delete_marker=True)
                if target.versioning == "Enabled":
                    marker.version_id = _new_version_id()
                else:
                    marker.version_id = "null"
                    history[:] = [v for v in history if v.version_id != "null"]
                history.append(marker)
                target.settle(key)
                return marker.version_id, True
            removed = [v for v in history if v.version_id == version_id]
            history[:] = [v for v in history if v.version_id != version_id]
            target.settle(key)
            return version_id, bool(removed and removed[0].delete_marker)

    def set_versioning(self, bucket: str, status: str) -> None:
        """``Enabled`` or ``Suspended``; objects there before it was first set become ``null`` versions."""
        with self.lock:
            target = self.bucket(bucket)
            if target.versioning is None:
                for key, record in target.objects.items():
                    record.version_id = "null"
                    target.versions[key] = [record]
            target.versioning = status

    def list_versions(self, bucket: str, *, prefix: str = "", delimiter: str = "", key_marker: str = "",
                      version_id_marker: str = "", max_keys: int = 100) -> VersionListing:
        """Every version and delete marker, keys in order and each key's newest first, after the markers."""
        with self.lock:
            found = self.bucket(bucket)
            histories = dict(found.versions)
            for key, record in found.objects.items():  # a bucket that never had versioning: one null version
                histories.setdefault(key, [record])
            entries: list[tuple[ObjectRecord, bool]] = []
            prefixes: list[str] = []
            last_key, last_version = "", ""
            for key in sorted(k for k in histories if k.startswith(prefix) and k >= key_marker):
                group = _group(key, prefix, delimiter)
                if group is not None:
                    if group in prefixes or group <= key_marker:
                        continue
                    if len(entries) + len(prefixes) >= max_keys:
                        return VersionListing(entries, prefixes, True, last_key, last_version)
                    prefixes.append(group)
                    last_key, last_version = group, ""
                    continue
                newest_first = list(reversed(histories[key]))
                skipping = key == key_marker
                for index, record in enumerate(newest_first):
                    if skipping:  # the marker key: only what follows version_id_marker
                        if version_id_marker and record.version_id == version_id_marker:
                            skipping = False
                        continue
                    if len(entries) + len(prefixes) >= max_keys:
                        return VersionListing(entries, prefixes, True, last_key, last_version)
                    entries.append((record, index == 0))
                    last_key, last_version = key, record.version_id or "null"
            return VersionListing(entries, prefixes, False, last_key, last_version)

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
