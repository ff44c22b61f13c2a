"""OSS signature V4 for oss2, computed once per request instead of oss2's way.

``oss2.ProviderAuthV4`` derives the signing key (four HMACs) on every request, percent-encodes the
URI one character at a time in Python, and formats two debug lines eagerly: together a sixth of a
small request's CPU. :class:`SigningAuth` signs exactly the same canonical request (the tests hold
it to oss2's own output), with the key cached per day, region and secret.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import oss2
from oss2 import exceptions as oss_errors

ALGORITHM = "OSS4-HMAC-SHA256"
UNSIGNED = "UNSIGNED-PAYLOAD"
#: Headers signed besides ``x-oss-*`` (oss2's ``DEFAULT_SIGNED_HEADERS``).
SIGNED_HEADERS = frozenset({"content-type", "content-md5"})


_ALWAYS_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


@functools.lru_cache(maxsize=8)
def _quote_table(safe: str) -> dict[int, str]:
    return {i: f"%{i:02X}" for i in range(128) if chr(i) not in _ALWAYS_SAFE and chr(i) not in safe}


def uri_quote(text: Any, safe: str = "") -> str:
    """``urllib.parse.quote(text, safe)``, in one C pass when ``text`` is ASCII (quote works a byte
    at a time in Python for anything that needs encoding, as every key with a ``/`` does)."""
    if isinstance(text, str) and text.isascii():
        return text.translate(_quote_table(safe))
    return quote(text, safe=safe)


def _utf8(value: Any) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def canonical_request(method: str, bucket: str, key: str, params: dict[str, Any], headers: Any) -> bytes:
    """The V4 canonical request, as oss2 builds it (no additional signed headers)."""
    uri = uri_quote(f"/{bucket}/{key}" if bucket else "/", safe="/")
    encoded = sorted((uri_quote(name), uri_quote(value)) for name, value in params.items())
    query = "&".join(f"{name}={value}" if value else name for name, value in encoded)
    signed = sorted(((name.lower(), value) for name, value in headers.items()
                     if name.lower().startswith("x-oss-") or name.lower() in SIGNED_HEADERS), key=lambda h: h[0])
    lines = b"".join(_utf8(name) + b":" + _utf8(value) + b"\n" for name, value in signed)
    payload = headers.get("x-oss-content-sha256") or UNSIGNED
    return f"{method}\n{uri}\n{query}\n".encode() + lines + b"\n\n" + _utf8(payload)


class SigningAuth(oss2.ProviderAuthV4):
    """oss2's V4 auth, faster; anything unusual (additional signed headers) is left to oss2."""

    def __init__(self, credentials_provider: Any, clock: Callable[[], float] = time.time) -> None:
        super().__init__(credentials_provider)
        self._clock = clock
        self._keys: dict[tuple[str, str, str, str], bytes] = {}
        self._lock = threading.Lock()

    def _signing_key(self, secret: str, date: str, region: str, product: str) -> bytes:
        cache = (secret, date, region, product)
        with self._lock:
            found = self._keys.get(cache)
        if found is None:
            found = f"aliyun_v4{secret}".encode()
            for part in (date, region, product, "aliyun_v4_request"):
                found = hmac.new(found, part.encode(), hashlib.sha256).digest()
            with self._lock:
                if len(self._keys) > 16:  # old days, rotated secrets
                    self._keys.clear()
                self._keys[cache] = found
        return found

    def _sign_request(self, req: oss2.http.Request, bucket_name: str, key: str,
                      in_additional_headers: Any = None) -> None:
        if in_additional_headers:
            super()._sign_request(req, bucket_name, key, in_additional_headers)
            return
        if req.region is None:
            raise oss_errors.ClientError("The region should not be None in signature version 4.")
        if any(value is None for value in req.params.values()):
            raise oss_errors.ClientError("a request parameter has no value")
        credentials = self.credentials_provider.get_credentials()
        token = credentials.get_security_token()
        if token:
            req.headers["x-oss-security-token"] = token
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self._clock()))
        req.headers["x-oss-date"] = stamp
        req.headers["x-oss-content-sha256"] = UNSIGNED
        region = req.cloudbox_id or req.region or ""
        scope = f"{stamp[:8]}/{region}/{req.product}/aliyun_v4_request"
        digest = hashlib.sha256(canonical_request(req.method, bucket_name, key, req.params, req.headers)).hexdigest()
        to_sign = f"{ALGORITHM}\n{stamp}\n{scope}\n{digest}".encode()
        signing_key = self._signing_key(credentials.get_access_key_secret(), stamp[:8], region, req.product)
        signature = hmac.new(signing_key, to_sign, hashlib.sha256).hexdigest()
        req.headers["authorization"] = (f"{ALGORITHM} Credential={credentials.get_access_key_id()}/{scope}, "
                                        f"Signature={signature}")
