"""MPS (``mts`` 2014-06-18) RPC client on httpx: signing, typed errors, retries, rate cap.

One client per FC instance, shared by every job, as is its :class:`~iproduction.ratelimit.RateLimiter`:
an ``httpx.AsyncClient`` on the instance's event loop, whose transport is aiohttp's (``httpx-aiohttp``):
at a batch's concurrency it costs about half the CPU per call of the synchronous ``httpx.Client`` on
threads, and a third of httpx's own async pool, which is scanned on every request (encode/httpx#3215;
``python -m bench.mps_client`` measures the three). Every ``Throttling`` answer slows the limiter down:
the account's quota is shared with other instances and callers.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from . import logs, retry, signing
from .budget import Deadline
from .credentials import CredentialsSource
from .errors import BudgetExceededError, CredentialsError, RejectedError, TransientError
from .ratelimit import RateLimiter

if TYPE_CHECKING:
    from .models import QueryJobAnswer

VERSION = "2014-06-18"
AUTH_CODES = ("SignatureDoesNotMatch", "InvalidAccessKeyId", "Forbidden", "AccessDenied",
              "InvalidIdentity.ServiceDisabled", "InvalidSecurityToken", "IncompleteSignature",
              "IllegalTimestamp", "SignatureNonceUsed", "NoPermission")
RETRYABLE_CODES = ("ServiceUnavailable", "InternalError", "UnknownError", "Rejected.Throttling")
#: Sent with every call.
HEADERS = {"accept": "application/json", "user-agent": "iproduction-collector/1.0"}


class MPSError(Exception):
    """An error answer from MPS (or no answer at all)."""

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 request_id: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.request_id = request_id
        self.retry_after = retry_after


class MPSThrottledError(MPSError, TransientError):
    """``Throttling*``: retried, honouring ``x-acs-retry-after`` (milliseconds)."""


class MPSServerError(MPSError, TransientError):
    """5xx, ``ServiceUnavailable``, ``InternalError``, an unreadable answer: retried."""


class MPSNetworkError(MPSError, TransientError):
    """No answer (connection refused or reset, timeout): retried."""


class MPSWrongJobError(MPSError, TransientError):
    """An answer about another job than the one asked: a fault on the way, retried like a 5xx."""


class MPSAuthError(MPSError, CredentialsError):
    """Credentials or permissions refused: not retried, but the job is ``error`` (trigger retries)."""


class MPSInvalidParameterError(MPSError, RejectedError):
    """``InvalidParameter*`` / ``MissingParameter``: the job is ``rejected``."""


class MPSClientError(MPSError, TransientError):
    """Any other 4xx: not retried here; ``error`` so that the message is kept, not dropped."""


#: Where an error message starts echoing what the server signed (``SignatureDoesNotMatch``: "server string
#: to sign is:...", which holds the SecurityToken, percent-encoded, or the canonical request's headers).
_ECHO_RE = re.compile(r"\s*(?:server\s+)?(?:string\s*to\s*sign|canonical\s+request)", re.IGNORECASE)
MESSAGE_LIMIT = 300


def message_text(message: object) -> str:
    """An error answer's message as it may leave the function: without anything the server says it
    signed, every secret scrubbed from the whole text *before* it is cut to :data:`MESSAGE_LIMIT`."""
    text = str(message)
    echo = _ECHO_RE.search(text)
    if echo is not None:
        text = text[:echo.start()].rstrip(" :.,;") + " (what the server signed is not shown)"
    text = logs.scrub(text)
    return text if len(text) <= MESSAGE_LIMIT else text[:MESSAGE_LIMIT - 1] + "…"


def error_from_response(response: httpx.Response) -> MPSError:
    """Map an error answer to the typed exception (never echoing anything but the answer's text, and
    never what the server says it signed)."""
    code = message = request_id = None
    try:
        body = response.json()
        if isinstance(body, dict):
            code = body.get("Code") or body.get("code")
            message = body.get("Message") or body.get("message")
            request_id = body.get("RequestId") or body.get("requestId")
    except ValueError:
        pass
    retry_after: float | None = None
    raw_after = response.headers.get("x-acs-retry-after")
    if raw_after:
        try:  # milliseconds, as the official SDK reads it (its delays and sleeps are in ms)
            retry_after = max(0.0, float(raw_after)) / 1000
        except ValueError:
            retry_after = None
    status = response.status_code
    code = str(code) if code else None
    text = f"MPS {code or 'error'} (HTTP {status})" + (f": {message_text(message)}" if message else "")
    kwargs: dict[str, Any] = {"code": code, "status": status, "request_id": request_id,
                              "retry_after": retry_after}
    if (code and code.startswith("Throttling")) or code == "Rejected.Throttling" or status == 429:
        return MPSThrottledError(text, **kwargs)
    if code and code.startswith(AUTH_CODES):
        return MPSAuthError(text, **kwargs)
    if code and code.startswith(("InvalidParameter", "MissingParameter")):
        return MPSInvalidParameterError(text, **kwargs)
    if code in RETRYABLE_CODES or status >= 500:
        return MPSServerError(text, **kwargs)
    if status in (401, 403):
        return MPSAuthError(text, **kwargs)
    return MPSClientError(text, **kwargs)


def classify(exc: Exception) -> retry.Verdict:
    if isinstance(exc, MPSThrottledError):
        return retry.Verdict(True, exc.retry_after, "mps-throttling")
    if isinstance(exc, MPSServerError):
        return retry.Verdict(True, exc.retry_after, "mps-5xx")
    if isinstance(exc, MPSNetworkError):
        return retry.Verdict(True, None, "mps-network")
    if isinstance(exc, MPSWrongJobError):
        return retry.Verdict(True, None, "mps-wrong-job")
    return retry.Verdict(False)


class MPSClient:
    """Calls MPS RPC actions; ``query_iproduction_job`` is the one the function needs."""

    def __init__(self, endpoint: str, credentials: CredentialsSource, *, limiter: RateLimiter,
                 signature: str = "v3", timeout: float = 10.0, policy: retry.RetryPolicy | None = None,
                 stats: retry.RetryStats | None = None, transport: httpx.AsyncBaseTransport | None = None,
                 tls: ssl.SSLContext | bool = True, trust_env: bool = True) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.host = urlsplit(self.endpoint).netloc
        self.credentials = credentials
        self.limiter = limiter
        self.signature = signature
        self.policy = policy or retry.RetryPolicy()
        self.stats = stats or retry.RetryStats()
        self.timeout = timeout
        if transport is None:
            # The session is made on the loop, at the first call. At most the cap's calls are ever in
            # flight (ratelimit.py), so a window's calls all go at once. aiohttp reads the proxies.
            connections = limiter.rate.max_calls
            # verify=tls: the transport makes an SSL context of its own (unused: the session has ours) from
            # it, which for True would be loading the CA bundle again.
            transport = AiohttpTransport(verify=tls, client=lambda: aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=connections, ssl=tls), trust_env=trust_env))
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(timeout), headers=HEADERS, transport=transport,
                                      trust_env=False)

    async def close(self) -> None:
        await self.http.aclose()

    async def call(self, action: str, params: dict[str, str], deadline: Deadline | None = None,
                   check: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """One RPC action with retries; returns the decoded JSON answer. ``check`` reads each answer and
        raises (a retried error, or not) when it is not usable."""
        async def attempt() -> dict[str, Any]:
            try:
                body = await self.attempt(action, params, deadline)
            except MPSThrottledError:
                self.limiter.throttled()  # the instance's share of the account's quota is smaller
                raise
            if check is not None:
                check(body)
            return body

        return await retry.run(attempt, classify, deadline=deadline, policy=self.policy, stats=self.stats)

    async def query_iproduction_job(self, job_id: str, deadline: Deadline | None = None) -> QueryJobAnswer:
        """The job's answer (``QueryIProductionJob``)."""
        from .models import QueryJobAnswer

        answers: list[QueryJobAnswer] = []

        def same_job(body: dict[str, Any]) -> None:
            answer = QueryJobAnswer.model_validate(body)
            if answer.JobId and answer.JobId.lower() != job_id.lower():
                raise MPSWrongJobError(f"MPS answered for another job ({answer.JobId[:40]!r}) than the one asked",
                                       request_id=body.get("RequestId"))
            answers.append(answer)

        await self.call("QueryIProductionJob", {"JobId": job_id}, deadline, check=same_job)
        return answers[-1]

    def signed(self, action: str, params: dict[str, str]) -> tuple[str, dict[str, str]]:
        """The query string (encoded exactly as it was signed, RFC 3986) and the headers of one try:
        a fresh nonce, timestamp and credentials every time."""
        creds = self.credentials.get()
        if self.signature == "v2":
            return signing.canonical_query(signing.v2_query(action, VERSION, params, creds)), {}
        query = dict(params)
        headers = signing.v3_headers(action, VERSION, self.host, query, creds)
        return signing.canonical_query(query), headers

    async def attempt(self, action: str, params: dict[str, str], deadline: Deadline | None) -> dict[str, Any]:
        """One try: a rate-cap slot held until the answer is in (MPS saw the call somewhere in between)."""
        async with self.limiter.slot(deadline):
            query, headers = self.signed(action, params)
            timeout = self.timeout if deadline is None else deadline.cap(self.timeout, f"call MPS {action}")
            send = self.http.post(f"{self.endpoint}/?{query}", headers=headers, timeout=timeout)
            try:  # the whole call within ``timeout``: aiohttp's read timeout is per read
                response = await asyncio.wait_for(send, timeout)
            except (httpx.TransportError, aiohttp.ClientError, asyncio.TimeoutError) as exc:
                if deadline is not None and deadline.expired():
                    raise BudgetExceededError(f"time budget exhausted: MPS {action} was cut at the deadline") from None
                # The exception text may hold the URL, and a V2 URL holds the AccessKeyId and the STS
                # token: keep only the class name (aiohttp's, which httpx-aiohttp maps to httpx's).
                raise MPSNetworkError(f"MPS unreachable: {type(exc.__cause__ or exc).__name__}") from None
        return read_answer(response)


def read_answer(response: httpx.Response) -> dict[str, Any]:
    """The decoded JSON object of an answer, or the typed error it means."""
    if response.status_code >= 400:
        raise error_from_response(response)
    try:
        body = response.json()
    except (ValueError, json.JSONDecodeError):
        raise MPSServerError(f"MPS answered HTTP {response.status_code} with a body that is not JSON",
                             status=response.status_code) from None
    if not isinstance(body, dict):
        raise MPSServerError("MPS answered with JSON that is not an object", status=response.status_code)
    return body
