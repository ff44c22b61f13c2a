"""The express lane's HTTP/1.1 on its event loop, against a scripted server on loopback (raw bytes both ways)."""

from __future__ import annotations

import asyncio
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import oss2
import pytest
from oss2 import exceptions as oss_errors

from iproduction import express
from iproduction.budget import CopyTimer
from iproduction.config import load_settings
from iproduction.credentials import Credentials, CredentialsSource
from iproduction.errors import TransientError
from iproduction.express import Answer, AnswerError, ExpressLane, _dechunk, _parse_head
from iproduction.storage import Storage
from tests.unit.scripted_server import CHUNKED, HEAD_ANSWER, Close, ScriptedServer, ok
from tests.unit.test_transport import _certificate


@pytest.fixture(params=["uvloop", "asyncio"])
def lane(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[ExpressLane]:
    """A lane on uvloop's loop (as deployed) and on asyncio's own (its fallback)."""
    if request.param == "asyncio":
        monkeypatch.setattr(express, "new_loop", asyncio.new_event_loop)
    settings = load_settings({"DEST_BUCKET": "dest", "FC_REGION": "cn-hangzhou", "OSS_TIMEOUT_SECONDS": "1"})
    storage = Storage(settings, CredentialsSource(Credentials("ak", "sk", None)))
    made = ExpressLane(storage, CopyTimer(), concurrency=4, threshold=1 << 30)
    yield made
    made.close()


def fetch(lane: ExpressLane, server: ScriptedServer, method: str = "GET", key: str = "k",
          headers: dict[str, str] | None = None, head_only: bool = False) -> Answer:
    bucket = oss2.Bucket(lane.storage.auth, server.url, "bkt", session=lane.storage.session, region="cn-hangzhou")
    call = lane.request(bucket, method, key, headers or {}, f"{method} bkt/{key}", head_only=head_only)
    return asyncio.run_coroutine_threadsafe(call, lane._running_loop()).result(timeout=10)


def test_keep_alive_and_framing(lane: ExpressLane, serve: Any) -> None:
    server = serve(
        ok(b"hello"),
        CHUNKED,
        HEAD_ANSWER,
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
        ok(b"last", "Connection: close"),
        ok(b"new connection"),
    )
    assert fetch(lane, server).body == b"hello"
    assert fetch(lane, server).body == b"chunked!"
    head = fetch(lane, server, "HEAD", head_only=True)
    assert (head.status, head.headers["content-length"], head.headers["X-OSS-META-A"]) == (200, "1234", "1, 2")
    assert fetch(lane, server, "DELETE").status == 204
    assert fetch(lane, server).body == b"last"
    assert fetch(lane, server).body == b"new connection"
    assert [r.connection for r in server.received] == [1, 1, 1, 1, 1, 2]
    first = server.received[0]
    assert first.request_line == "GET /bkt/k HTTP/1.1"
    assert first.header("authorization").startswith("OSS4-HMAC-SHA256 Credential=ak/")
    assert first.header("user-agent").startswith("aliyun-sdk-python/")
    assert server.received[3].header("content-length") == "0"  # as oss2 (requests) sends a body-less DELETE


def test_a_body_framed_by_the_connection_closing(lane: ExpressLane, serve: Any) -> None:
    server = serve(Close(b"HTTP/1.1 200 OK\r\n\r\nuntil the end"), ok(b"next"))
    assert fetch(lane, server).body == b"until the end"
    assert fetch(lane, server).body == b"next"
    assert server.connections == 2


def test_a_pooled_connection_the_server_closed_is_not_used(lane: ExpressLane, serve: Any) -> None:
    server = serve(Close(ok(b"one")), ok(b"two"))
    assert fetch(lane, server).body == b"one"
    time.sleep(0.2)  # the server's FIN reaches the loop, which drops the connection
    assert fetch(lane, server).body == b"two"
    assert server.connections == 2


def test_a_connection_dying_mid_request_is_an_error_not_a_silent_resend(lane: ExpressLane, serve: Any) -> None:
    server = serve(ok(b"one"), lambda r: None, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", ok(b"four"))
    assert fetch(lane, server).body == b"one"
    for _ in range(2):  # closed unanswered; closed mid-body
        with pytest.raises(AnswerError) as caught:
            fetch(lane, server, "PUT")
        assert isinstance(caught.value.error, oss_errors.RequestError)
    assert fetch(lane, server).body == b"four"
    assert [r.connection for r in server.received] == [1, 1, 2, 3]


def test_an_answer_that_never_comes_times_out(lane: ExpressLane, serve: Any) -> None:
    gate = threading.Event()
    server = serve(lambda r: (gate.wait(5), ok(b"late"))[1], ok(b"next"))
    started = time.monotonic()
    with pytest.raises(AnswerError, match=r"no answer in 1\.0s"):
        fetch(lane, server)  # OSS_TIMEOUT_SECONDS=1
    assert 0.9 < time.monotonic() - started < 3
    gate.set()
    assert fetch(lane, server).body == b"next"  # on a new connection: the late answer is never read as this one's
    assert server.connections == 2


def test_error_answers_become_oss2_exceptions(lane: ExpressLane, serve: Any) -> None:
    error = (b"<?xml version=\"1.0\"?><Error><Code>SlowDown</Code><Message>slow down</Message>"
             b"<RequestId>R1</RequestId></Error>")
    server = serve(ok(error).replace(b"200 OK", b"503 Service Unavailable")
                   + b"", b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nx-oss-request-id: R2\r\n\r\n",
                   b"not http at all\r\n\r\n")
    with pytest.raises(AnswerError) as caught:
        fetch(lane, server)
    assert isinstance(caught.value.error, oss_errors.ServerError)
    assert (caught.value.error.status, caught.value.error.code) == (503, "SlowDown")
    assert fetch(lane, server, "HEAD", head_only=True).status == 404  # a HEAD's 404 is an answer
    with pytest.raises(AnswerError) as caught:
        fetch(lane, server)
    assert isinstance(caught.value.error, oss_errors.RequestError)


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_tls_is_verified_against_the_ca_bundle(serve: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               loop: str) -> None:
    if loop == "asyncio":
        monkeypatch.setattr(express, "new_loop", asyncio.new_event_loop)
    cert, key = _certificate(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    server = serve(ok(b"secure"), ok(b"again"), tls=tls)
    settings = load_settings({"DEST_BUCKET": "dest", "FC_REGION": "cn-hangzhou"})
    storage = Storage(settings, CredentialsSource(Credentials("ak", "sk", None)))
    trusted = ExpressLane(storage, CopyTimer(), 2, 1 << 30, ca=str(cert))
    untrusted = ExpressLane(storage, CopyTimer(), 2, 1 << 30)
    try:
        assert fetch(trusted, server).body == b"secure"
        assert fetch(trusted, server).body == b"again"
        assert server.connections == 1
        with pytest.raises(AnswerError, match="CERTIFICATE_VERIFY_FAILED"):
            fetch(untrusted, server)  # certifi's bundle does not know this certificate
    finally:
        trusted.close()
        untrusted.close()


def test_parsing_helpers() -> None:
    status, headers, keep = _parse_head(b"HTTP/1.0 200 OK\r\nETag: \"E\"\r\nX-Long: a\r\n b")
    assert (status, headers["etag"], headers["x-long"], keep) == (200, '"E"', "a b", False)
    assert _parse_head(b"HTTP/1.0 200 OK\r\nConnection: keep-alive")[2] is True
    with pytest.raises(ConnectionError):
        _parse_head(b"HTTP/1.1 200 OK\r\nno colon here")
    data = bytearray(b"3\r\nabc\r\n0\r\n\r\nNEXT")
    assert _dechunk(data) == (b"abc", len(data) - 4)
    assert _dechunk(bytearray(b"3\r\nab")) is None
    with pytest.raises(ConnectionError):
        _dechunk(bytearray(b"zz\r\n"))


def test_a_request_with_parameters_and_a_body_is_signed_over_both(lane: ExpressLane, serve: Any) -> None:
    server = serve(ok(b"stored"))
    bucket = oss2.Bucket(lane.storage.auth, server.url, "bkt", session=lane.storage.session, region="cn-hangzhou")
    call = lane.request(bucket, "PUT", "a b", {"content-type": "application/json"}, "PUT bkt/a b",
                        params={"list-type": "2", "prefix": "x/y z"}, body=b'{"k": 1}')
    assert lane.run(call).result(timeout=10).body == b"stored"
    (received,) = server.received
    assert received.request_line == "PUT /bkt/a%20b?list-type=2&prefix=x%2Fy+z HTTP/1.1"
    assert received.header("content-length") == "8" and received.body == b'{"k": 1}'
    # oss2 signs the same request the same way (its parameters decoded, as the server reads them).
    headers = {"content-type": "application/json", "x-oss-date": received.header("x-oss-date"),
               "x-oss-content-sha256": "UNSIGNED-PAYLOAD"}
    request = oss2.http.Request("PUT", "http://x/bkt/a%20b", params={"list-type": "2", "prefix": "x/y z"},
                                headers=headers, region="cn-hangzhou", product="oss")
    oss2.ProviderAuthV4(lane.storage.auth.credentials_provider)._sign_request(request, "bkt", "a b")
    assert received.header("authorization") == request.headers["authorization"]


def test_a_call_still_running_when_the_lane_closes_ends_in_a_transient_error(lane: ExpressLane) -> None:
    started = threading.Event()

    async def forever() -> None:
        started.set()
        await asyncio.sleep(3600)

    call = lane.run(forever())
    assert started.wait(5)
    lane.close()
    with pytest.raises(TransientError, match="shutting down"):
        call.result(timeout=5)
    assert lane.run(asyncio.sleep(0, result="a new loop")).result(timeout=5) == "a new loop"


def test_the_loop_is_uvloops_where_installed_else_asyncios(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvloop

    loop = express.new_loop()
    assert isinstance(loop, uvloop.Loop)
    loop.close()
    monkeypatch.setitem(sys.modules, "uvloop", None)  # not installed
    loop = express.new_loop()
    assert type(loop) is type(asyncio.new_event_loop()) and not isinstance(loop, uvloop.Loop)
    loop.close()
