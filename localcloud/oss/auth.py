"""Checks the ``Authorization`` header the way OSS does, for oss2's V1, V2 and V4 signatures.

The strings to sign follow ``oss2/auth.py`` (2.19.1). Without configured credentials any well-formed
header is accepted; with them the access key id, the signature and (if configured) the
``x-oss-security-token`` must all match, and a V4 credential scope must name the bucket's region.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from .errors import OssError

# ProviderAuth._subresource_key_set of oss2 2.19.1: the query parameters a V1 signature covers.
V1_SUBRESOURCES = frozenset([
    "response-content-type", "response-content-language", "response-cache-control", "logging",
    "response-content-encoding", "acl", "uploadId", "uploads", "partNumber", "group", "link", "delete",
    "website", "location", "objectInfo", "objectMeta", "response-expires",
    "response-content-disposition", "cors", "lifecycle", "restore", "qos", "referer", "stat",
    "bucketInfo", "append", "position", "security-token", "live", "comp", "status", "vod", "startTime",
    "endTime", "x-oss-process", "symlink", "callback", "callback-var", "tagging", "encryption",
    "versions", "versioning", "versionId", "policy", "requestPayment", "x-oss-traffic-limit", "qosInfo",
    "asyncFetch", "x-oss-request-payer", "sequential", "inventory", "inventoryId", "continuation-token",
    "worm", "wormId", "wormExtend", "replication", "replicationLocation", "replicationProgress",
    "transferAcceleration", "cname", "metaQuery", "x-oss-ac-source-ip", "x-oss-ac-subnet-mask",
    "x-oss-ac-vpc-id", "x-oss-ac-forward-allow", "resourceGroup", "style", "styleName",
    "x-oss-async-process", "regionList", "x-oss-write-get-object-response", "bucketArchiveDirectRead",
    "httpsConfig", "redundancyTransition", "x-oss-target-redundancy-type",
    "x-oss-redundancy-transition-taskid", "accessPoint", "accessPointPolicy", "publicAccessBlock",
    "x-oss-access-point-name", "requesterQosInfo", "qosRequester", "resourcePoolInfo", "resourcePool",
    "resourcePoolBuckets"
])

_V1 = re.compile(r"^OSS ([^:\s]+):(\S+)$")
_V4_CREDENTIAL = re.compile(r"^([^/]+)/(\d{8})/([^/]+)/([^/]+)/aliyun_v4_request$")


@dataclass
class SignedRequest:
    """What a signature covers: method, decoded bucket/key, decoded query, headers (lower-case)."""

    method: str
    bucket: str
    key: str
    params: list[tuple[str, str]]
    headers: dict[str, str]


@dataclass
class Credentials:
    access_key_id: str | None = None
    access_key_secret: str | None = None
    security_token: str | None = None


#: OSS's fine-grained error code for a V4 signing region that is not the bucket's (help.aliyun.com
#: "0002-00000228"); the page gives no Code or status, so 403 SignatureDoesNotMatch is the emulator's choice.
WRONG_REGION_EC = "0002-00000228"


def verify(request: SignedRequest, creds: Credentials, bucket_region: str | None = None) -> str | None:
    """Raise :class:`OssError` unless the request is properly signed; return the V4 region, if any.

    ``bucket_region`` is the region of the (existing) bucket addressed: with credentials configured,
    a V4 signature scoped to another region is refused.
    """
    header = request.headers.get("authorization", "")
    if not header:
        raise OssError("AccessDenied", "AccessDenied: the request carries no Authorization header.")
    if header.startswith("OSS4-HMAC-SHA256 "):
        return _verify_v4(request, creds, header, bucket_region)
    if header.startswith("OSS2 "):
        _verify_v2(request, creds, header)
        return None
    match = _V1.match(header)
    if not match:
        raise OssError("AccessDenied", "Authorization header is invalid.")
    access_key_id, signature = match.groups()
    _check_identity(request, creds, access_key_id)
    if creds.access_key_secret is not None:
        expected = _b64_hmac(creds.access_key_secret, _v1_string_to_sign(request), hashlib.sha1)
        _check_signature(signature, expected, _v1_string_to_sign(request))
    return None


def _check_identity(request: SignedRequest, creds: Credentials, access_key_id: str) -> None:
    if creds.access_key_id is not None and access_key_id != creds.access_key_id:
        raise OssError("InvalidAccessKeyId", OSSAccessKeyId=access_key_id)
    if creds.security_token is not None:
        token = request.headers.get("x-oss-security-token")
        if token != creds.security_token:
            raise OssError("AccessDenied", "The security token you provided is invalid."
                           if token else "A security token is required for these credentials.")


def _check_signature(given: str, expected: str, string_to_sign: bytes) -> None:
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise OssError("SignatureDoesNotMatch",
                       StringToSign=string_to_sign.decode("utf-8", "replace"))


def _b64_hmac(secret: str, data: bytes, digest: Any) -> str:
    return base64.b64encode(hmac.new(secret.encode(), data, digest).digest()).decode()


def _oss_headers(headers: dict[str, str], extra: Iterable[str] = ()) -> list[tuple[str, str]]:
    wanted = set(extra)
    return sorted((k, v) for k, v in headers.items() if k.startswith("x-oss-") or k in wanted)


def _v1_string_to_sign(request: SignedRequest) -> bytes:
    h = request.headers
    date = h.get("x-oss-date") or h.get("date", "")
    canon = "".join(f"{k}:{v}\n" for k, v in _oss_headers(h))
    sub = sorted((k, v) for k, v in request.params if k in V1_SUBRESOURCES)
    query = "&".join(f"{k}={v}" if v else k for k, v in sub)
    resource = f"/{request.bucket}/{request.key}" if request.bucket else "/"
    if query:
        resource += "?" + query
    lines = [request.method, h.get("content-md5", ""), h.get("content-type", ""), date, canon + resource]
    return "\n".join(lines).encode("utf-8")


def _fields(header: str) -> dict[str, str]:
    """``OSS2 A:x,B:y`` or ``OSS4-HMAC-SHA256 A=x, B=y`` -> {A: x, B: y}."""
    separator = ":" if header.startswith("OSS2 ") else "="
    fields = {}
    for item in header.split(" ", 1)[1].split(","):
        name, found, value = item.strip().partition(separator)
        if not found:
            raise OssError("AccessDenied", "Authorization header is invalid.")
        fields[name] = value
    return fields


def _quote(text: str, keep_slash: bool = False) -> str:
    return quote(text.encode("utf-8"), safe="-_.~/" if keep_slash else "-_.~")


def _verify_v2(request: SignedRequest, creds: Credentials, header: str) -> None:
    fields = _fields(header)
    if "AccessKeyId" not in fields or "Signature" not in fields:
        raise OssError("AccessDenied", "Authorization header is invalid.")
    _check_identity(request, creds, fields["AccessKeyId"])
    if creds.access_key_secret is None:
        return
    h = request.headers
    additional = sorted(filter(None, fields.get("AdditionalHeaders", "").split(";")))
    canon = "".join(f"{k}:{v}\n" for k, v in _oss_headers(h, additional))
    resource = _quote(f"/{request.bucket}/{request.key}" if request.bucket else "/")
    encoded = sorted((_quote(k), _quote(v)) for k, v in request.params)
    if encoded:
        resource += "?" + "&".join(f"{k}={v}" if v else k for k, v in encoded)
    text = (f"{request.method}\n{h.get('content-md5', '')}\n{h.get('content-type', '')}\n{h.get('date', '')}\n"
            f"{canon}{';'.join(additional)}\n{resource}").encode()
    _check_signature(fields["Signature"], _b64_hmac(creds.access_key_secret, text, hashlib.sha256), text)


def _verify_v4(request: SignedRequest, creds: Credentials, header: str, bucket_region: str | None) -> str:
    fields = _fields(header)
    match = _V4_CREDENTIAL.match(fields.get("Credential", ""))
    if not match or "Signature" not in fields:
        raise OssError("AccessDenied", "Authorization header is invalid.")
    access_key_id, day, region, product = match.groups()
    _check_identity(request, creds, access_key_id)
    if creds.access_key_secret is None:
        return region
    if bucket_region is not None and region != bucket_region:
        raise OssError("SignatureDoesNotMatch",
                       f"Invalid signing region in Authorization header: the credential scope names region "
                       f"{region}, but bucket {request.bucket} is in region {bucket_region}.",
                       EC=WRONG_REGION_EC)
    h = request.headers
    additional = sorted(filter(None, fields.get("AdditionalHeaders", "").split(";")))
    signed = _oss_headers(h, {"content-type", "content-md5", *additional})
    uri = _quote(f"/{request.bucket}/{request.key}" if request.bucket else "/", keep_slash=True)
    encoded = sorted((_quote(k), _quote(v)) for k, v in request.params)
    query = "&".join(f"{k}={v}" if v else k for k, v in encoded)
    canonical = (f"{request.method}\n{uri}\n{query}\n" + "".join(f"{k}:{v}\n" for k, v in signed)
                 + f"\n{';'.join(additional)}\n{h.get('x-oss-content-sha256', 'UNSIGNED-PAYLOAD')}")
    scope = f"{day}/{region}/{product}/aliyun_v4_request"
    text = (f"OSS4-HMAC-SHA256\n{h.get('x-oss-date', '')}\n{scope}\n"
            + hashlib.sha256(canonical.encode("utf-8")).hexdigest()).encode("utf-8")
    key = ("aliyun_v4" + creds.access_key_secret).encode()
    for part in (day, region, product, "aliyun_v4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    _check_signature(fields["Signature"], hmac.new(key, text, hashlib.sha256).hexdigest(), text)
    return region
