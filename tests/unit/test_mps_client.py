"""The MPS client: its use of the rate cap, the mapping of error answers, retries and fresh signatures."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import time
import traceback
from typing import Any
from urllib.parse import parse_qsl, quote

import httpx
import pytest

from iproduction import retry
from iproduction.budget import Deadline
from iproduction.credentials import Credentials, CredentialsSource
from iproduction.errors import BudgetExceededError, RejectedError, TransientError
from iproduction.mps import (
    MPSAuthError,
    MPSClient,
    MPSClientError,
    MPSError,
    MPSInvalidParameterError,
    MPSNetworkError,
    MPSServerError,
    MPSThrottledError,
    MPSWrongJobError,
    classify,
    error_from_response,
)
from iproduction.ratelimit import RateLimiter
from localcloud.mps.auth import Credentials as AuthCredentials
from localcloud.mps.auth import NonceCache, Received, verify

# -- error mapping ------------------------------------------------------------------------------
ERROR_CASES = [
    # (HTTP status, Code, exception class, retried)
    (400, "Throttling", MPSThrottledError, True),
    (400, "Throttling.User", MPSThrottledError, True),
    (400, "Rejected.Throttling", MPSThrottledError, True),
    (429, None, MPSThrottledError, True),
    (503, "ServiceUnavailable", MPSServerError, True),
    (500, "InternalError", MPSServerError, True),
    (502, None, MPSServerError, True),
    (403, "SignatureDoesNotMatch", MPSAuthError, False),
    (400, "SignatureDoesNotMatch", MPSAuthError, False),  # 400 on some product pages (mps.md §5.2)
    (404, "InvalidAccessKeyId.NotFound", MPSAuthError, False),
    (403, "Forbidden.RAM", MPSAuthError, False),
    (403, "AccessDenied", MPSAuthError, False),
    (403, "InvalidIdentity.ServiceDisabled", MPSAuthError, False),
    (400, "InvalidSecurityToken.Expired", MPSAuthError, False),
    (400, "InvalidParameter.JobId", MPSInvalidParameterError, False),
    (400, "MissingParameter", MPSInvalidParameterError, False),
    (404, "InvalidAction.NotFound", MPSClientError, False),
]


@pytest.mark.parametrize(("status", "code", "kind", "retried"), ERROR_CASES,
                         ids=[f"{status}-{code}" for status, code, *_ in ERROR_CASES])
def test_error_mapping(status: int, code: str | None, kind: type[MPSError], retried: bool) -> None:
    body = {"RequestId": "R-1", "HostId": "mts.cn-hangzhou.aliyuncs.com", "Message": "the message"}
    if code:
        body["Code"] = code
    response = httpx.Response(status, json=body, headers={"x-acs-retry-after": "2000"})
    error = error_from_response(response)
    assert type(error) is kind
    assert (error.code, error.status, error.request_id, error.retry_after) == (code, status, "R-1", 2.0)
    assert f"HTTP {status}" in str(error) and "the message" in str(error)
    verdict = classify(error)
    assert verdict.retry is retried
    assert verdict.retry_after == (2.0 if retried else None)


@pytest.mark.parametrize(("status", "kind", "retried"), [(503, MPSServerError, True), (400, MPSClientError, False)])
def test_error_mapping_of_a_body_that_is_not_json(status: int, kind: type[MPSError], retried: bool) -> None:
    error = error_from_response(httpx.Response(status, text="<html>gateway</html>"))
    assert type(error) is kind and error.code is None and error.request_id is None
    assert str(error) == f"MPS error (HTTP {status})"
    assert classify(error).retry is retried


@pytest.mark.parametrize(("header", "parsed"), [("300", 0.3), ("3000", 3.0), ("1", 0.001), ("-1", 0.0), ("soon", None),
                                                ("", None)])
def test_retry_after_header(header: str, parsed: float | None) -> None:
    error = error_from_response(httpx.Response(400, json={"Code": "Throttling"}, headers={"x-acs-retry-after": header}))
    assert error.retry_after == parsed and classify(error).retry_after == parsed
    assert error_from_response(httpx.Response(400, json={"Code": "Throttling"})).retry_after is None


# -- retries through the client ---------------------------------------------------------------------
AK, SK, TOKEN = "LTAI-unit-key-id", "unit-secret-value", "CAIS-unit-token/+="
CREDS = Credentials(AK, SK, TOKEN)
OK = {"RequestId": "r", "JobId": "j", "State": "Analysing"}


def scripted(*answers: httpx.Response | Exception) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """A transport giving ``answers`` in turn (an exception is raised instead), recording each request."""
    sent: list[httpx.Request] = []
    queue = list(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.MockTransport(handle), sent


def mps_client(transport: httpx.MockTransport, **options: Any) -> MPSClient:
    return MPSClient("http://mps.example", CredentialsSource(CREDS), limiter=RateLimiter(1000),
                     policy=retry.RetryPolicy(attempts=4, base=0.001, cap=0.001), transport=transport, **options)


def received(request: httpx.Request) -> Received:
    return Received(request.method, request.url.path, parse_qsl(request.url.query.decode(), keep_blank_values=True),
                    {name.lower(): value for name, value in request.headers.items()}, request.content, [])


def test_throttling_waits_the_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    """``x-acs-retry-after: 300`` (ms, as the official SDK reads it) is the wait before the next try
    (longer than the backoff's jitter)."""
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(retry, "run", functools.partial(retry.run, sleep=sleep))
    transport, sent = scripted(
        httpx.Response(400, json={"Code": "Throttling", "RequestId": "r0"}, headers={"x-acs-retry-after": "300"}),
        httpx.Response(200, json=OK))
    client = mps_client(transport)
    assert asyncio.run(client.query_iproduction_job("j")).State == "Analysing"
    assert waits == [0.3] and len(sent) == 2
    assert client.stats.snapshot() == {"mps-throttling": 1}
    asyncio.run(client.close())


def test_every_attempt_is_signed_afresh() -> None:
    """503, 503, 200: three requests, each with its own nonce, and each verified by the emulator's
    independent checker (signature over that request's own ``x-acs-date``, date in the window, nonce unseen)."""
    transport, sent = scripted(httpx.Response(503, json={"Code": "ServiceUnavailable"}),
                               httpx.Response(503, json={"Code": "ServiceUnavailable"}), httpx.Response(200, json=OK))
    client = mps_client(transport)
    assert asyncio.run(client.call("QueryIProductionJob", {"JobId": "j"})) == OK
    assert len(sent) == 3
    assert len({request.headers["x-acs-signature-nonce"] for request in sent}) == 3
    assert len({request.headers["authorization"] for request in sent}) == 3
    nonces, creds = NonceCache(), AuthCredentials(AK, SK, TOKEN)
    for request in sent:
        assert verify(received(request), creds, nonces).action == "QueryIProductionJob"
        assert request.headers["x-acs-security-token"] == TOKEN
    asyncio.run(client.close())


@pytest.mark.parametrize("status", [400, 403])
def test_signature_does_not_match_is_not_retried(status: int) -> None:
    transport, sent = scripted(httpx.Response(status, json={"Code": "SignatureDoesNotMatch", "Message": "no"}))
    client = mps_client(transport)
    with pytest.raises(MPSAuthError, match="SignatureDoesNotMatch"):
        asyncio.run(client.call("QueryIProductionJob", {"JobId": "j"}))
    assert len(sent) == 1 and client.stats.snapshot() == {}
    asyncio.run(client.close())


def test_transport_errors_are_retried_and_their_text_holds_no_credentials() -> None:
    """V2 puts AccessKeyId and SecurityToken in the URL, which httpx quotes in its own exception texts."""
    def refused(request: httpx.Request) -> httpx.ConnectError:
        return httpx.ConnectError(f"connection refused: {request.url}", request=request)

    sent: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        raise refused(request)

    client = mps_client(httpx.MockTransport(handle), signature="v2")
    with pytest.raises(MPSNetworkError) as failed:
        asyncio.run(client.call("QueryIProductionJob", {"JobId": "j"}))
    assert len(sent) == 4  # every attempt of the policy
    assert client.stats.snapshot() == {"mps-network": 3}
    query = sent[0].url.query.decode()
    assert f"AccessKeyId={AK}" in query and "SecurityToken=" in query  # the premise: V2 credentials in the URL
    # what a log line or an uncaught-exception report would show: text, repr, the formatted traceback
    text = "|".join([str(failed.value), repr(failed.value), *traceback.format_exception(failed.value)])
    for secret in (AK, SK, TOKEN, quote(TOKEN, safe="~"), query):
        assert secret not in text
    assert classify(failed.value).retry
    # one failure then an answer: the call succeeds
    transport, sent = scripted(httpx.ConnectError("refused"), httpx.Response(200, json=OK))
    retried = mps_client(transport, signature="v2")
    assert asyncio.run(retried.call("QueryIProductionJob", {"JobId": "j"})) == OK and len(sent) == 2
    assert sent[0].url.params["SignatureNonce"] != sent[1].url.params["SignatureNonce"]
    asyncio.run(client.close())
    asyncio.run(retried.close())


def real_client(endpoint: str, timeout: float = 10.0) -> MPSClient:
    """The client as the function makes it: httpx over aiohttp's transport (no MockTransport)."""
    return MPSClient(endpoint, CredentialsSource(CREDS), limiter=RateLimiter(1000), signature="v2", timeout=timeout,
                     policy=retry.RetryPolicy(attempts=2, base=0.001, cap=0.001))


def test_the_real_transport_names_aiohttps_error_and_never_the_url() -> None:
    """A refused connection through aiohttp: retried, named by aiohttp's class, no credential in the text."""
    async def main() -> MPSNetworkError:
        server = await asyncio.start_server(lambda reader, writer: writer.close(), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()  # nothing listens on the port any more
        client = real_client(f"http://127.0.0.1:{port}")
        try:
            with pytest.raises(MPSNetworkError) as failed:
                await client.query_iproduction_job("j")
        finally:
            await client.close()
        assert client.stats.snapshot() == {"mps-network": 1}
        return failed.value

    error = asyncio.run(main())
    assert str(error) == "MPS unreachable: ClientConnectorError"
    text = "|".join([str(error), repr(error), *traceback.format_exception(error)])
    for secret in (AK, SK, TOKEN):
        assert secret not in text


def test_a_dripping_server_cannot_hold_a_call_past_the_deadline() -> None:
    """aiohttp's read timeout counts per read, and a server that sends a byte at a time never trips it:
    the client caps the whole call at the time left."""
    async def main() -> float:
        held: list[asyncio.StreamWriter] = []

        async def drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            held.append(writer)
            writer.write(b"HTTP/1.1 200 OK\r\n")
            with contextlib.suppress(ConnectionError):
                while True:  # a header that never ends, a byte every 50 ms
                    writer.write(b"x")
                    await writer.drain()
                    await asyncio.sleep(0.05)

        server = await asyncio.start_server(drip, "127.0.0.1", 0)
        client = real_client(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", timeout=30.0)
        started = time.monotonic()
        try:
            with pytest.raises(BudgetExceededError, match="cut at the deadline"):
                await client.query_iproduction_job("j", Deadline(0.3))
        finally:
            await client.close()
            for writer in held:
                writer.close()
            server.close()
        return time.monotonic() - started

    assert asyncio.run(main()) < 1.0


def test_the_environments_proxy_carries_the_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """aiohttp reads the proxy from the environment (``trust_env``); httpx must not route around it."""
    async def main() -> list[bytes]:
        seen: list[bytes] = []

        async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            seen.append((await reader.readuntil(b"\r\n\r\n")).split(b"\r\n", 1)[0])
            body = json.dumps(OK).encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                         % (len(body), body))
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(proxy, "127.0.0.1", 0)
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
        client = MPSClient("http://mps.example", CredentialsSource(CREDS), limiter=RateLimiter(10), trust_env=True)
        try:
            assert (await client.query_iproduction_job("j")).State == "Analysing"
        finally:
            await client.close()
            server.close()
        return seen

    seen = asyncio.run(main())
    assert len(seen) == 1 and seen[0].startswith(b"POST http://mps.example/?")  # the proxy's absolute form


def test_an_answer_about_another_job_is_retried_then_an_error() -> None:
    """A fault on the way (a proxy, a cache): retried like a 5xx; never taken for the job asked about."""
    other = {**OK, "JobId": "k"}
    transport, sent = scripted(httpx.Response(200, json=other), httpx.Response(200, json=OK))
    client = mps_client(transport)
    assert asyncio.run(client.query_iproduction_job("J")).JobId == "j"  # job ids compare case-insensitively
    assert len(sent) == 2 and client.stats.snapshot() == {"mps-wrong-job": 1}
    transport, sent = scripted(*[httpx.Response(200, json=other)] * 4)
    always = mps_client(transport)
    with pytest.raises(MPSWrongJobError, match="another job") as failed:
        asyncio.run(always.query_iproduction_job("j"))
    assert len(sent) == 4
    # a fault on the way, not bad input: the job is an error (retried), never dropped with its pending record
    assert isinstance(failed.value, TransientError) and not isinstance(failed.value, RejectedError)
    asyncio.run(client.close())
    asyncio.run(always.close())


@pytest.mark.parametrize("signature", ["v2", "v3"])
def test_a_signature_refusal_never_echoes_what_the_server_signed(signature: str) -> None:
    """MPS's SignatureDoesNotMatch quotes its string to sign, which holds the STS token (V2: in the
    query, percent-encoded twice; V3: the canonical request's x-acs-security-token header)."""
    token = "CAIS" + "Zm9vYmFyYmF6cXV4" * 30 + "/+=="  # as long as STS issues them (hundreds of characters)
    from iproduction import logs

    logs.redact(token)
    if signature == "v2":
        signed = f"POST&%2F&AccessKeyId%3D{AK}%26SecurityToken%3D{quote(quote(token, safe=''), safe='')}"
    else:
        signed = f"ACS3-HMAC-SHA256\nabc canonical request is:POST\n/\n\nx-acs-security-token:{token}\n"
    message = f"Specified signature is not matched with our calculation. server string to sign is:{signed}"
    error = error_from_response(httpx.Response(403, json={"Code": "SignatureDoesNotMatch", "Message": message}))
    assert isinstance(error, MPSAuthError)
    assert str(error) == ("MPS SignatureDoesNotMatch (HTTP 403): Specified signature is not matched with our "
                          "calculation (what the server signed is not shown)")
