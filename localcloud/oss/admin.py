"""OSS-specific admin routes (under ``/_emulator/``) and :class:`OssAdmin`, their typed client.

Routes (JSON)::

    GET    buckets                      -> [{"name", "region", "objects", "uploads"}]
    PUT    buckets/<bucket>             {"region"} -> the bucket (created or re-homed)
    GET    objects/<bucket>?prefix=     -> [{"key", "size", "etag", "crc64", "content_type", "meta",
                                             "object_type", "last_modified"}]
    GET    objects/<bucket>/<key>[?body=1] -> one object (+ "base64" of its bytes if body=1, <= 16 MiB)
    PUT    objects/<bucket>/<key>       {"text" | "base64" | "synthetic": {"size", "seed"},
                                         "content_type", "meta", "crc"} -> the object
    DELETE objects/<bucket>/<key>       -> {"ok": true}
    GET    uploads                      -> [{"bucket", "key", "upload_id", "initiated", "parts"}]
    POST   seed                         {"buckets": {...}, "objects": [...]} (or a whole seed file)
    POST   reset                        -> drops every bucket, object and upload

Keys in routes are URL-encoded (``/`` as ``%2F``).
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from localcloud.common import AdminClient

from .core import HandlerCore
from .errors import OssError

MAX_ADMIN_BODY = 16 << 20


class AdminRoutes(HandlerCore):
    def admin(self, route: str, document: Any) -> Any:
        store = self.oss.store
        query = parse_qs(urlsplit(self.path).query)
        head, _, rest = route.partition("/")
        bucket, _, key = rest.partition("/")
        bucket, key = unquote(bucket), unquote(key)
        method = self.command
        try:
            if head == "buckets" and not rest and method == "GET":
                with store.lock:
                    return [b.public() for b in sorted(store.buckets.values(), key=lambda b: b.name)]
            if head == "buckets" and bucket and not key and method == "PUT":
                region = (document or {}).get("region") or self.setting("default_region")
                return store.put_bucket(bucket, region).public()
            if head == "objects" and bucket and not key and method == "GET":
                prefix = query.get("prefix", [""])[0]
                with store.lock:
                    records = store.bucket(bucket).objects
                    return [records[k].public() for k in sorted(records) if k.startswith(prefix)]
            if head == "objects" and key and method == "GET":
                record = store.get(bucket, key)
                answer = record.public()
                if query.get("body", ["0"])[0] not in ("0", "") and record.size <= MAX_ADMIN_BODY:
                    answer["base64"] = base64.b64encode(record.content.read()).decode()
                return answer
            if head == "objects" and key and method == "PUT":
                return self.oss.put_object(bucket, key, document or {}).public()
            if head == "objects" and key and method == "DELETE":
                store.delete(bucket, key)
                return {"ok": True}
            if head == "uploads" and method == "GET":
                return [upload.public() for upload in store.uploads()]
            if head == "seed" and method == "POST":
                return self.oss.seed(document or {})
            if head == "reset" and method == "POST":
                store.clear()
                return {"ok": True}
        except OssError as error:
            raise KeyError(f"{error.code}: {error.message}") from error
        return None


class OssAdmin(AdminClient):
    """Typed helpers for the OSS emulator's admin API (works for in-thread and CLI emulators)."""

    @staticmethod
    def _object_route(bucket: str, key: str) -> str:
        return f"objects/{quote(bucket, safe='')}/{quote(key, safe='')}"

    def buckets(self) -> list[dict[str, Any]]:
        return self.call("GET", "buckets")

    def create_bucket(self, bucket: str, region: str | None = None) -> dict[str, Any]:
        return self.call("PUT", f"buckets/{quote(bucket, safe='')}", {"region": region})

    def put_object(self, bucket: str, key: str, data: bytes | str | None = None, *,
                   synthetic: tuple[int, int | str] | None = None, content_type: str | None = None,
                   meta: dict[str, str] | None = None, crc: bool = True) -> dict[str, Any]:
        """Store an object: ``data`` (bytes or text) or ``synthetic=(size, seed)``."""
        spec: dict[str, Any] = {"content_type": content_type, "meta": meta or {}, "crc": crc}
        if synthetic is not None:
            spec["synthetic"] = {"size": synthetic[0], "seed": synthetic[1]}
        elif isinstance(data, str):
            spec["text"] = data
        else:
            spec["base64"] = base64.b64encode(data or b"").decode()
        return self.call("PUT", self._object_route(bucket, key), spec)

    def objects(self, bucket: str, prefix: str = "") -> list[dict[str, Any]]:
        return self.call("GET", f"objects/{quote(bucket, safe='')}?prefix={quote(prefix, safe='')}")

    def object(self, bucket: str, key: str) -> dict[str, Any] | None:
        """One object's record, or None if the key does not exist."""
        return next((item for item in self.objects(bucket, key) if item["key"] == key), None)

    def read(self, bucket: str, key: str) -> bytes:
        """The object's bytes as the emulator holds them (up to 16 MiB)."""
        answer = self.call("GET", self._object_route(bucket, key) + "?body=1")
        if "base64" not in answer:
            raise ValueError(f"{bucket}/{key} is too big to read through the admin API")
        return base64.b64decode(answer["base64"])

    def delete_object(self, bucket: str, key: str) -> None:
        self.call("DELETE", self._object_route(bucket, key))

    def uploads(self) -> list[dict[str, Any]]:
        """Multipart uploads still open (neither completed nor aborted)."""
        return self.call("GET", "uploads")

    def seed(self, document: dict[str, Any]) -> dict[str, Any]:
        """Load the "oss" section of a seed document (or the section itself)."""
        return self.call("POST", "seed", document)

    def reset(self) -> None:
        self.call("POST", "reset")
