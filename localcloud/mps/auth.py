"""Server-side verification of V2 (HMAC-SHA1) and V3 (ACS3-HMAC-SHA256) RPC signatures.

Rebuilt from what was received (method, raw path and query, headers, body), independently of the
client signer in :mod:`localcloud.mps.client`. Check order: well-formed → AccessKeyId known →
timestamp in window → STS token → body hash (V3) → signature → nonce not seen before.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import quote

from . import errors

V3_HEADERS = ("x-acs-action", "x-acs-version", "x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256")
V2_PARAMS = ("AccessKeyId", "SignatureMethod", "SignatureVersion", "SignatureNonce", "Timestamp")
_AUTH_RE = re.compile(r"^\s*(\S+)\s+(.*)$", re.S)


@dataclass(frozen=True)
class Credentials:
    """What the emulator accepts: one AccessKey pair, plus an STS token when it emulates STS."""

    access_key_id: str
    access_key_secret: str
    security_token: str | None = None
    v2_window: float = 31 * 60
    v3_window: float = 15 * 60


@dataclass
class Received:
    """The parts of an HTTP request that signing covers."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: Mapping[str, str]  # names lower-cased; repeated headers joined with ","
    body: bytes
    form: list[tuple[str, str]]


@dataclass(frozen=True)
class Verified:
    signature: str  # "v2" | "v3"
    access_key_id: str
    action: str | None
    version: str | None


class NonceCache:
    """Nonces seen per AccessKeyId, each remembered for its signature version's time window."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], float] = {}
        self._next_purge = 0.0

    def add(self, access_key_id: str, nonce: str, ttl: float) -> bool:
        """Record the nonce; False if it was already seen and has not expired."""
        now = time.monotonic()
        with self._lock:
            if now >= self._next_purge:
                self._seen = {k: exp for k, exp in self._seen.items() if exp > now}
                self._next_purge = now + 10
            key = (access_key_id, nonce)
            if self._seen.get(key, 0) > now:
                return False
            self._seen[key] = now + ttl
            return True

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()


def _enc(text: str) -> str:
    return quote(text, safe="~", encoding="utf-8")


def _sorted_query(pairs: list[tuple[str, str]]) -> str:
    """Sorted by raw name (then value), each encoded: what both signature versions sign."""
    return "&".join(f"{_enc(k)}={_enc(v)}" for k, v in sorted(pairs))


def _parse_time(value: str | None, name: str) -> float:
    if not value:
        raise errors.illegal_timestamp(name)
    for fmt in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            continue
    raise errors.illegal_timestamp(name)


def _check_window(stamp: float, window: float) -> None:
    if abs(time.time() - stamp) > window:
        raise errors.timestamp_expired()


def _check_token(creds: Credentials, token: str | None, field_name: str) -> None:
    if creds.security_token is None:
        return  # a token sent to an emulator without STS is signed and otherwise ignored
    if not token:
        raise errors.access_key_not_found(
            f"The AccessKeyId is an STS key: send its security token ({field_name}).")
    if not hmac.compare_digest(token.encode(), creds.security_token.encode()):
        raise errors.token_mismatch()


def _check_key(creds: Credentials, access_key_id: str) -> None:
    if access_key_id != creds.access_key_id:
        raise errors.access_key_not_found()


def verify(request: Received, creds: Credentials, nonces: NonceCache) -> Verified:
    """Verify the request's signature; raise :class:`errors.ApiError` when it is not acceptable."""
    authorization = request.headers.get("authorization")
    params = dict(request.query + request.form)
    if authorization:
        return _verify_v3(request, authorization, creds, nonces)
    if "Signature" in params:
        return _verify_v2(request, params, creds, nonces)
    raise errors.missing_parameter("Signature")


def _verify_v2(request: Received, params: dict[str, str], creds: Credentials, nonces: NonceCache) -> Verified:
    for name in V2_PARAMS:
        if not params.get(name):
            raise errors.missing_parameter(name)
    for name, wanted in (("SignatureMethod", "HMAC-SHA1"), ("SignatureVersion", "1.0")):
        if params[name] != wanted:
            raise errors.incomplete_signature(f'{name} "{params[name]}" is not supported.')
    _check_key(creds, params["AccessKeyId"])
    _check_window(_parse_time(params["Timestamp"], "Timestamp"), creds.v2_window)
    _check_token(creds, params.get("SecurityToken"), "SecurityToken")
    signed = [(k, v) for k, v in request.query + request.form if k != "Signature"]
    string_to_sign = f"{request.method}&%2F&{_enc(_sorted_query(signed))}"
    key = f"{creds.access_key_secret}&".encode()
    expected = base64.b64encode(hmac.new(key, string_to_sign.encode(), hashlib.sha1).digest()).decode()
    if not hmac.compare_digest(expected.encode(), params["Signature"].encode()):
        raise errors.signature_mismatch(string_to_sign)
    if not nonces.add(creds.access_key_id, params["SignatureNonce"], creds.v2_window):
        raise errors.nonce_used()
    return Verified("v2", creds.access_key_id, params.get("Action"), params.get("Version"))


def _parse_authorization(value: str) -> tuple[str, dict[str, str]]:
    match = _AUTH_RE.match(value)
    if not match:
        raise errors.incomplete_signature("The Authorization header is malformed.")
    parts: dict[str, str] = {}
    for item in match.group(2).split(","):
        name, sep, val = item.strip().partition("=")
        if sep:
            parts[name.strip()] = val.strip()
    return match.group(1), parts


def _verify_v3(request: Received, authorization: str, creds: Credentials, nonces: NonceCache) -> Verified:
    algorithm, parts = _parse_authorization(authorization)
    if algorithm != "ACS3-HMAC-SHA256":
        raise errors.incomplete_signature(f'Signature algorithm "{algorithm}" is not supported.')
    for name in ("Credential", "SignedHeaders", "Signature"):
        if not parts.get(name):
            raise errors.incomplete_signature(f"The Authorization header has no {name}.")
    headers = request.headers
    for name in V3_HEADERS:
        if not headers.get(name):
            raise errors.missing_parameter(name)
    signed = parts["SignedHeaders"].split(";")
    if signed != sorted(signed) or any(h != h.lower() for h in signed):
        raise errors.incomplete_signature("SignedHeaders must be lower-case and sorted.")
    unsigned = [h for h in headers if (h == "host" or h.startswith("x-acs-")) and h not in signed]
    if unsigned:
        raise errors.incomplete_signature(f"Header(s) {', '.join(sorted(unsigned))} must be signed.")
    _check_key(creds, parts["Credential"])
    _check_window(_parse_time(headers["x-acs-date"], "x-acs-date"), creds.v3_window)
    _check_token(creds, headers.get("x-acs-security-token"), "x-acs-security-token")
    body_hash = hashlib.sha256(request.body).hexdigest()
    claimed = headers["x-acs-content-sha256"]
    block = "".join(f"{h}:{headers.get(h, '').strip()}\n" for h in signed)
    canonical = "\n".join([request.method, request.path or "/", _sorted_query(request.query), block,
                           parts["SignedHeaders"], body_hash])
    if claimed.lower() != body_hash:
        raise errors.signature_mismatch(f"{canonical} (x-acs-content-sha256 does not match the body)")
    string_to_sign = f"ACS3-HMAC-SHA256\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    expected = hmac.new(creds.access_key_secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), parts["Signature"].lower().encode()):
        raise errors.signature_mismatch(f"{string_to_sign} canonical request is:{canonical}")
    if not nonces.add(creds.access_key_id, headers["x-acs-signature-nonce"], creds.v3_window):
        raise errors.nonce_used()
    return Verified("v3", creds.access_key_id, headers["x-acs-action"], headers["x-acs-version"])
