"""Alibaba Cloud RPC request signing, V3 (``ACS3-HMAC-SHA256``) and V2 (``HMAC-SHA1``): pure functions,
held by the tests to the published vectors (mps.md §4)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from collections.abc import Mapping
from urllib.parse import quote

from .credentials import Credentials

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
V3_ALGORITHM = "ACS3-HMAC-SHA256"


def percent_encode(value: str) -> str:
    """RFC 3986 encoding as Alibaba Cloud wants it: space → %20, ``*`` → %2A, ``~`` kept."""
    return quote(value, safe="~")


def canonical_query(params: Mapping[str, str]) -> str:
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()))


def utc_timestamp(now: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))


# -- V2 ---------------------------------------------------------------------------------------
def v2_string_to_sign(params: Mapping[str, str], method: str) -> str:
    return f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonical_query(params))}"


def v2_signature(params: Mapping[str, str], method: str, secret: str) -> str:
    digest = hmac.new(f"{secret}&".encode(), v2_string_to_sign(params, method).encode(), hashlib.sha1)
    return base64.b64encode(digest.digest()).decode()


def v2_query(action: str, version: str, params: Mapping[str, str], creds: Credentials, *,
             method: str = "POST", timestamp: str | None = None, nonce: str | None = None) -> dict[str, str]:
    """Every query parameter of a signed V2 request, ``Signature`` included."""
    query = {"Action": action, "Version": version, "Format": "JSON", "AccessKeyId": creds.access_key_id,
             "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0", "SignatureNonce": nonce or uuid.uuid4().hex,
             "Timestamp": timestamp or utc_timestamp(), **params}
    if creds.security_token:
        query["SecurityToken"] = creds.security_token
    query["Signature"] = v2_signature(query, method, creds.access_key_secret)
    return query


# -- V3 ---------------------------------------------------------------------------------------
def v3_canonical_request(method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str],
                         payload_hash: str) -> tuple[str, str]:
    """(canonical request, signed header list) over every header given."""
    lowered = sorted((k.lower(), v.strip()) for k, v in headers.items())
    block = "".join(f"{k}:{v}\n" for k, v in lowered)
    signed = ";".join(k for k, _ in lowered)
    return "\n".join([method.upper(), path or "/", canonical_query(query), block, signed, payload_hash]), signed


def v3_authorization(method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str],
                     payload_hash: str, access_key_id: str, secret: str) -> str:
    request, signed = v3_canonical_request(method, path, query, headers, payload_hash)
    to_sign = f"{V3_ALGORITHM}\n{hashlib.sha256(request.encode()).hexdigest()}"
    signature = hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    return f"{V3_ALGORITHM} Credential={access_key_id},SignedHeaders={signed},Signature={signature}"


def v3_headers(action: str, version: str, host: str, query: Mapping[str, str], creds: Credentials, *,
               method: str = "POST", date: str | None = None, nonce: str | None = None) -> dict[str, str]:
    """The headers of a signed V3 RPC request with an empty body (``Authorization`` included)."""
    headers = {"host": host, "x-acs-action": action, "x-acs-version": version, "x-acs-date": date or utc_timestamp(),
               "x-acs-signature-nonce": nonce or uuid.uuid4().hex, "x-acs-content-sha256": EMPTY_SHA256}
    if creds.security_token:
        headers["x-acs-accesskey-id"] = creds.access_key_id
        headers["x-acs-security-token"] = creds.security_token
    headers["Authorization"] = v3_authorization(method, "/", query, headers, EMPTY_SHA256,
                                                creds.access_key_id, creds.access_key_secret)
    return headers
