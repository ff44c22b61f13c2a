"""The OSS emulator: state, settings, seeding, and the HTTP handler class tying the ops together."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import tempfile
import threading
from typing import Any, ClassVar

from localcloud.common import Emulator

from .admin import AdminRoutes
from .content import BytesContent, Content, SyntheticContent
from .multipart import MultipartOps
from .objects import ObjectOps
from .store import ObjectRecord, Store


class OssHandler(ObjectOps, MultipartOps, AdminRoutes):
    """Speaks the OSS REST protocol (path style ``/<bucket>/<key>``) as oss2 2.19 expects it."""


class OssEmulator(Emulator):
    """Local Alibaba Cloud OSS. Constructor keyword arguments override :attr:`default_settings`."""

    name: ClassVar[str] = "oss"
    handler_class = OssHandler
    default_settings: ClassVar[dict[str, Any]] = {
        "auto_create_buckets": True,  # writes create missing buckets (in default_region)
        "default_region": "cn-hangzhou",
        "access_key_id": None,  # None: any well-formed Authorization header is accepted
        "access_key_secret": None,
        "security_token": None,  # when set, x-oss-security-token must carry it
        "crc_on_copy": True,  # False: CopyObject/UploadPartCopy results have no CRC-64
        "copy_rate": None,  # bytes/s of CopyObject / UploadPartCopy (None: instant)
        "bandwidth": None,  # bytes/s per request for GET and PUT/UploadPart bodies (None: unlimited)
        "copy_object_max_size": 1 << 30,  # bigger CopyObject sources are refused (None: no limit)
        "min_part_size": 100 * 1024,  # every part but the last, checked at Complete
        "data_dir": None,  # where big bodies spill to (None: a temp dir removed on stop)
        "spill_threshold": 8 << 20,  # bodies above this many bytes go to disk
    }

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **kwargs: Any) -> None:
        super().__init__(host, port, **kwargs)
        self.store = Store()
        self._temp_dir: str | None = None
        self._dir_lock = threading.Lock()

    def data_dir(self) -> str:
        """The directory spilled bodies go to (created on first use)."""
        configured = self.knobs.setting("data_dir")
        if configured:
            os.makedirs(configured, exist_ok=True)
            return str(configured)
        with self._dir_lock:
            if self._temp_dir is None:
                self._temp_dir = tempfile.mkdtemp(prefix="localcloud-oss-")
            return self._temp_dir

    def stop(self) -> None:
        super().stop()
        self.remove_temp_dir()

    def remove_temp_dir(self) -> None:
        """Delete the temp dir made for spilled bodies, if any."""
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None

    # -- seeding ----------------------------------------------------------------------------
    def seed(self, document: dict[str, Any]) -> dict[str, Any]:
        """Load ``{"buckets": {name: {"region"}}, "objects": [...]}`` (or a seed file's "oss" part)."""
        if "oss" in document:
            document = document["oss"]
        unknown = set(document) - {"buckets", "objects"}
        if unknown:
            raise ValueError(f"unknown oss seed section(s): {sorted(unknown)}")
        default_region = self.knobs.setting("default_region")
        for name, spec in (document.get("buckets") or {}).items():
            self.store.put_bucket(name, (spec or {}).get("region") or default_region)
        objects = document.get("objects") or []
        for spec in objects:
            spec = dict(spec)
            self.put_object(spec.pop("bucket"), spec.pop("key"), spec)
        return {"buckets": len(self.store.buckets), "objects": len(objects)}

    def put_object(self, bucket: str, key: str, spec: dict[str, Any]) -> ObjectRecord:
        """Store an object from a seed/admin spec (text, base64 or synthetic {size, seed})."""
        unknown = set(spec) - {"text", "base64", "synthetic", "content_type", "meta", "crc", "headers"}
        if unknown:
            raise ValueError(f"unknown object field(s): {sorted(unknown)}")
        content: Content
        if spec.get("synthetic") is not None:
            synthetic = spec["synthetic"]
            content = SyntheticContent(int(synthetic["size"]), synthetic.get("seed", 0))
            etag = hashlib.md5(content.ident.encode()).hexdigest().upper()
        else:
            if spec.get("text") is not None:
                data = str(spec["text"]).encode()
            elif spec.get("base64") is not None:
                data = base64.b64decode(spec["base64"])
            else:
                raise ValueError("an object needs text, base64 or synthetic")
            data_content = BytesContent(data)
            content, etag = data_content, data_content.md5
        record = ObjectRecord(key, content, etag, spec.get("content_type") or "application/octet-stream",
                              {str(k).lower(): str(v) for k, v in (spec.get("meta") or {}).items()},
                              dict(spec.get("headers") or {}), has_crc=bool(spec.get("crc", True)))
        with self.store.lock:
            self.store.bucket(bucket, create_region=self.knobs.setting("default_region"))
            self.store.put(bucket, record)
        return record

    def __enter__(self) -> OssEmulator:
        self.start()
        return self
