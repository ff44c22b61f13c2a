"""MPS (``mts`` 2014-06-18) RPC client on httpx: signing, typed errors, retries, rate cap.

httpx sends through :class:`~iproduction.transport.LeanHTTPXTransport` (the OSS requests' lean
HTTP/1.1 pool) unless a proxy is configured.

One client (one connection pool) per FC instance, created in ``initialize`` and shared by the
threads of the instance, as is its :class:`~iproduction.ratelimit.RateLimiter`.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from . import logs, retry, signing
from .budget import Deadline
from .credentials import CredentialsSource
from .errors import BudgetExceededError, CredentialsError, RejectedError, TransientError
from .ratelimit import RateLimiter
from .transport import LeanHTTPXTransport, ca_settings, proxy_configured

if TYPE_CHECKING:
    from .ahead import QueryAhead
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


def ca_bundle() -> str:
    """What MPS's certificate is verified against: ``SSL_CERT_FILE``, ``SSL_CERT_DIR``, else as requests."""
    return os.environ.get("SSL_CERT_FILE") or os.environ.get("SSL_CERT_DIR") or ca_settings()


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
                 signature: str = "v3", timeout: float = 10.0, pool_size: int = 32,
                 policy: retry.RetryPolicy | None = None, stats: retry.RetryStats | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.endpoint = endpoint.rstrip("/")
        self._host = urlsplit(self.endpoint).netloc
        self._credentials = credentials
        self.limiter = limiter
        self._signature = signature
        self._policy = policy or retry.RetryPolicy()
        self.stats = stats or retry.RetryStats()
        self.timeout = timeout
        self._pool_size = pool_size
        self._transport = transport
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()
        #: Sends a batch's first calls from the express lane's loop (set by the runtime; None: never).
        self.ahead: QueryAhead | None = None

    @property
    def _http(self) -> httpx.Client:
        """The connection pool, made on first use (its TLS setup is a cold-start cost otherwise)."""
        with self._client_lock:
            if self._client is None:
                transport = self._transport
                if transport is None and not proxy_configured():  # with a proxy, httpx's own transport
                    transport = LeanHTTPXTransport(self._pool_size, ca_bundle())
                self._client = httpx.Client(
                    timeout=httpx.Timeout(self.timeout),
                    limits=httpx.Limits(max_connections=self._pool_size, max_keepalive_connections=self._pool_size),
                    transport=transport,
                    headers=HEADERS,
                )
            return self._client

    @property
    def lean(self) -> bool:
        """Whether calls go out on the lean pool (no proxy, no transport given)."""
        return self._transport is None and not proxy_configured()

    def close(self) -> None:
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def call(self, action: str, params: dict[str, str], deadline: Deadline | None = None,
             skip_if: Callable[[], bool] | None = None, first: Future[Reply | None] | None = None,
             check: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any] | None:
        """One RPC action with retries; returns the decoded JSON answer. ``skip_if`` is asked once a
        rate-cap slot is held, before each try: True gives the slot back unused and returns None.
        ``first``: the first try, sent by :class:`~iproduction.ahead.QueryAhead` (None: skipped).
        ``check`` reads each answer and raises (a retried error, or not) when it is not usable."""
        tries = iter([first] if first is not None else [])

        def attempt() -> dict[str, Any] | None:
            ahead = next(tries, None)
            if ahead is None:
                body = self._attempt(action, params, deadline, skip_if)
            else:
                timeout = None if deadline is None else max(0.0, deadline.remaining())
                try:
                    reply = ahead.result(timeout)
                except FutureTimeout:
                    raise BudgetExceededError("time budget exhausted waiting for the MPS call") from None
                body = None if reply is None else self._read(reply.response())
            if body is not None and check is not None:
                check(body)
            return body

        return retry.call(attempt, classify, deadline=deadline, policy=self._policy, stats=self.stats)

    def query_iproduction_job(self, job_id: str, deadline: Deadline | None = None,
                              skip_if: Callable[[], bool] | None = None) -> QueryJobAnswer | None:
        """The job's answer; None if ``skip_if`` said so before the call went out (see :meth:`call`).
        If the query-ahead holds the job's first call, that is the first try."""
        from .models import QueryJobAnswer

        def same_job(body: dict[str, Any]) -> None:
            answered = QueryJobAnswer.model_validate(body).JobId  # as the job model will read it
            if answered and answered.lower() != job_id.lower():
                raise MPSWrongJobError(f"MPS answered for another job ({answered[:40]!r}) than the one asked",
                                       request_id=body.get("RequestId"))

        first = self.ahead.claim(job_id, skip_if) if self.ahead is not None else None
        body = self.call("QueryIProductionJob", {"JobId": job_id}, deadline, skip_if, first, check=same_job)
        return None if body is None else QueryJobAnswer.model_validate(body)

    def signed(self, action: str, params: dict[str, str]) -> tuple[str, dict[str, str]]:
        """The query string (encoded exactly as it was signed, RFC 3986) and the headers of one try:
        a fresh nonce, timestamp and credentials every time."""
        creds = self._credentials.get()
        if self._signature == "v2":
            return signing.canonical_query(signing.v2_query(action, VERSION, params, creds)), {}
        query = dict(params)
        headers = signing.v3_headers(action, VERSION, self._host, query, creds)
        return signing.canonical_query(query), headers

    def _attempt(self, action: str, params: dict[str, str], deadline: Deadline | None,
                 skip_if: Callable[[], bool] | None) -> dict[str, Any] | None:
        # The pool first: built on first use, it would otherwise delay the first calls past their slots
        # (the drills saw the calls of a cold instance's first sweep land 0.25 s late, bunched).
        http = self._http
        # The slot is held until the answer is in: MPS saw the call somewhere in between.
        self.limiter.acquire(deadline)
        sent = False
        try:
            if skip_if is not None and skip_if():
                return None
            query, headers = self.signed(action, params)
            timeout = None
            if deadline is not None:
                timeout = max(0.1, min(self.timeout, deadline.remaining()))
            sent = True
            try:
                response = http.post(f"{self.endpoint}/?{query}", headers=headers,
                                     timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT)
            except httpx.TransportError as exc:
                # The exception text of httpx may hold the URL, and a V2 URL holds the AccessKeyId and
                # the STS token: keep only the class name.
                raise MPSNetworkError(f"MPS unreachable: {type(exc).__name__}") from None
        finally:
            self.limiter.release(used=sent)
        return self._read(response)

    @staticmethod
    def _read(response: httpx.Response) -> dict[str, Any]:
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


@dataclass(frozen=True)
class Reply:
    """An answer that came back outside httpx (the query-ahead's): read as httpx's would be."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def response(self) -> httpx.Response:
        return httpx.Response(self.status, headers=self.headers, content=self.body)
