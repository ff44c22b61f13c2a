"""A small, independent client-side signer for Alibaba Cloud RPC APIs (MPS), for tests and tools.

V2 (HMAC-SHA1, ``SignatureVersion=1.0``, parameters in the query) and V3 (``ACS3-HMAC-SHA256``
``Authorization`` header), both with optional STS token, as described in mps.md §4. The pure
functions reproduce the published vectors; :class:`MpsClient` sends signed requests with httpx.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, urlsplit

API_VERSION = "2014-06-18"
V3_ALGORITHM = "ACS3-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def percent_encode(value: str) -> str:
    """RFC 3986 encoding used by both signature versions (space → %20, ``*`` → %2A, ``~`` kept)."""
    return quote(str(value), safe="~", encoding="utf-8")


def canonical_query(params: Mapping[str, str] | Iterable[tuple[str, str]]) -> str:
    """``k=v`` pairs sorted by name (byte order), names and values percent-encoded."""
    pairs = params.items() if isinstance(params, Mapping) else params
    ordered = sorted((str(k), str(v)) for k, v in pairs if v is not None)
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in ordered)


def utc_timestamp(now: datetime | None = None) -> str:
    """ISO 8601 UTC ``yyyy-MM-ddTHH:mm:ssZ``."""
    return (now or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_nonce() -> str:
    return uuid.uuid4().hex


# -- V2 -------------------------------------------------------------------------------------
def v2_string_to_sign(method: str, params: Mapping[str, str]) -> str:
    """``METHOD&%2F&enc(CanonicalizedQueryString)``; ``Signature`` itself is never signed."""
    signed = {k: v for k, v in params.items() if k != "Signature"}
    return f"{method.upper()}&%2F&{percent_encode(canonical_query(signed))}"


def v2_signature(method: str, params: Mapping[str, str], secret: str) -> str:
    """Base64(HMAC-SHA1(secret + "&", StringToSign))."""
    digest = hmac.new(f"{secret}&".encode(), v2_string_to_sign(method, params).encode(), hashlib.sha1)
    return base64.b64encode(digest.digest()).decode()


def sign_v2(method: str, params: Mapping[str, str], access_key_id: str, secret: str, *,
            action: str | None = None, security_token: str | None = None,
            timestamp: str | None = None, nonce: str | None = None,
            version: str = API_VERSION, fmt: str = "JSON") -> dict[str, str]:
    """All request parameters (common ones added, ``Signature`` included) for a V2 call."""
    signed: dict[str, str] = {
        "Format": fmt, "Version": version, "AccessKeyId": access_key_id,
        "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0",
        "SignatureNonce": nonce or new_nonce(), "Timestamp": timestamp or utc_timestamp(),
    }
    if action:
        signed["Action"] = action
    if security_token:
        signed["SecurityToken"] = security_token
    signed.update({k: str(v) for k, v in params.items() if v is not None})
    signed["Signature"] = v2_signature(method, signed, secret)
    return signed


# -- V3 -------------------------------------------------------------------------------------
def v3_canonical_request(method: str, path: str, query: Mapping[str, str] | Iterable[tuple[str, str]],
                         headers: Mapping[str, str], payload_hash: str,
                         signed_headers: Iterable[str] | None = None) -> tuple[str, str]:
    """(CanonicalRequest, SignedHeaders). Signs every header given unless ``signed_headers`` is set."""
    lowered: dict[str, list[str]] = {}
    for name, value in headers.items():
        lowered.setdefault(name.lower(), []).append(str(value).strip())
    names = sorted({h.lower() for h in signed_headers} if signed_headers is not None else lowered)
    block = "".join(f"{n}:{','.join(sorted(lowered.get(n, [''])))}\n" for n in names)
    signed = ";".join(names)
    request = "\n".join([method.upper(), path or "/", canonical_query(query), block, signed, payload_hash])
    return request, signed


def v3_authorization(method: str, path: str, query: Mapping[str, str] | Iterable[tuple[str, str]],
                     headers: Mapping[str, str], payload_hash: str, access_key_id: str, secret: str,
                     signed_headers: Iterable[str] | None = None) -> str:
    """The ``Authorization`` header value for ACS3-HMAC-SHA256."""
    canonical, signed = v3_canonical_request(method, path, query, headers, payload_hash, signed_headers)
    to_sign = f"{V3_ALGORITHM}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    signature = hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    return f"{V3_ALGORITHM} Credential={access_key_id},SignedHeaders={signed},Signature={signature}"


def sign_v3(method: str, host: str, action: str, query: Mapping[str, str], access_key_id: str,
            secret: str, *, body: bytes = b"", security_token: str | None = None,
            date: str | None = None, nonce: str | None = None, version: str = API_VERSION,
            extra_headers: Mapping[str, str] | None = None) -> dict[str, str]:
    """Headers for a V3 call; signs ``host`` and every ``x-acs-*`` header (like the doc vector)."""
    headers = {
        "host": host, "x-acs-action": action, "x-acs-version": version,
        "x-acs-date": date or utc_timestamp(), "x-acs-signature-nonce": nonce or new_nonce(),
        "x-acs-content-sha256": hashlib.sha256(body).hexdigest(),
    }
    if security_token:
        headers["x-acs-accesskey-id"] = access_key_id
        headers["x-acs-security-token"] = security_token
    headers.update(extra_headers or {})
    signed = [h for h in headers if h == "host" or h.lower().startswith("x-acs-")]
    headers["Authorization"] = v3_authorization(method, "/", query, headers, headers["x-acs-content-sha256"],
                                                access_key_id, secret, signed)
    return headers


# -- client ---------------------------------------------------------------------------------
class MpsClient:
    """Signed MPS RPC calls over httpx: ``MpsClient(url, ak, secret).call("QueryIProductionJob", JobId=...)``.

    ``signature`` is ``"v3"`` (default, like the official SDK) or ``"v2"``. ``body=True`` sends the
    parameters as a form-encoded body instead of the query string.
    """

    def __init__(self, endpoint: str, access_key_id: str, access_key_secret: str, *,
                 security_token: str | None = None, signature: str = "v3", timeout: float = 30) -> None:
        import httpx

        self.endpoint = endpoint.rstrip("/")
        self.host = urlsplit(self.endpoint).netloc
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.security_token = security_token
        self.signature = signature
        self.http = httpx.Client(timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> MpsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, action: str, params: Mapping[str, Any] | None = None, *, method: str = "POST",
                body: bool = False, signature: str | None = None, secret: str | None = None,
                timestamp: str | None = None, nonce: str | None = None) -> Any:
        """Send one call; returns the ``httpx.Response``. ``timestamp``/``nonce``/``secret`` override."""
        params = {k: str(v) for k, v in (params or {}).items() if v is not None}
        secret = self.access_key_secret if secret is None else secret
        if (signature or self.signature) == "v2":
            signed = sign_v2(method, params, self.access_key_id, secret, action=action,
                             security_token=self.security_token, timestamp=timestamp, nonce=nonce)
            if body:
                return self.http.request(method, self.endpoint + "/", content=canonical_query(signed),
                                         headers={"content-type": "application/x-www-form-urlencoded"})
            return self.http.request(method, f"{self.endpoint}/?{canonical_query(signed)}")
        content = canonical_query(params).encode() if body else b""
        query = {} if body else params
        extra = {"content-type": "application/x-www-form-urlencoded"} if body else None
        headers = sign_v3(method, self.host, action, query, self.access_key_id, secret, body=content,
                          security_token=self.security_token, date=timestamp, nonce=nonce)
        headers.update(extra or {})
        url = f"{self.endpoint}/" + (f"?{canonical_query(query)}" if query else "")
        return self.http.request(method, url, content=content, headers=headers)

    def call(self, action: str, **params: Any) -> dict[str, Any]:
        """Send a call and return the JSON body; raises :class:`MpsApiError` on an error answer."""
        response = self.request(action, params)
        document = json.loads(response.content or b"{}")
        if response.status_code >= 400:
            raise MpsApiError(response.status_code, document, dict(response.headers))
        return document

    def query_job(self, job_id: str) -> dict[str, Any]:
        return self.call("QueryIProductionJob", JobId=job_id)

    def submit_job(self, function_name: str, **params: Any) -> dict[str, Any]:
        return self.call("SubmitIProductionJob", FunctionName=function_name, **params)


class MpsApiError(Exception):
    """An error answer: ``status``, ``code``, ``body`` (the documented error document), ``headers``."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
        self.status = status
        self.body = body
        self.headers = headers
        self.code = body.get("Code")
        super().__init__(f"{status} {self.code}: {body.get('Message')}")
