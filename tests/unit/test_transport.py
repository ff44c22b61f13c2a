"""The lean HTTP/1.1 transport under oss2, against a scripted server on loopback (raw bytes both ways)."""

from __future__ import annotations

import datetime
import gzip
import io
import ssl
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import oss2
import pytest
import requests
from oss2 import exceptions as oss_errors

from iproduction import retry
from iproduction.transport import LeanHTTPXTransport, LeanSession, Transport
from localcloud.oss import OssEmulator
from tests.unit.scripted_server import CHUNKED, HEAD_ANSWER, Close, ScriptedServer, ok


def fetch(transport: Transport, url: str, method: str = "GET", **kwargs: object) -> tuple[int, bytes]:
    response = transport.request(method, url, params=kwargs.pop("params", None), headers=kwargs.pop("headers", {}),
                                 data=kwargs.pop("data", None), timeout=5)
    return response.status_code, b"".join(response.iter_content(7))


def test_keep_alive_and_framing(serve: Callable[..., ScriptedServer]) -> None:
    server = serve(
        ok(b"hello"),
        CHUNKED,
        HEAD_ANSWER,
        b"HTTP/1.1 204 No Content\r\n\r\n",
        ok(b"last", "Connection: close"),
        ok(b"new connection"),
    )
    transport = Transport(4)
    assert fetch(transport, server.url + "/a") == (200, b"hello")
    assert fetch(transport, server.url + "/b") == (200, b"chunked!")
    head = transport.request("HEAD", server.url + "/c", params=None, headers={}, data=None, timeout=5)
    assert (head.status_code, head.headers["content-length"], head.headers["X-OSS-META-A"]) == (200, "1234", "1, 2")
    assert fetch(transport, server.url + "/d", "DELETE") == (204, b"")
    assert fetch(transport, server.url + "/e") == (200, b"last")
    assert fetch(transport, server.url + "/f") == (200, b"new connection")
    assert [r.connection for r in server.received] == [1, 1, 1, 1, 1, 2]
    assert server.received[3].header("content-length") == "0"  # as requests sends a body-less DELETE
    assert server.received[0].header("content-length") is None
    transport.close()


def test_a_body_framed_by_the_connection_closing(serve: Callable[..., ScriptedServer]) -> None:
    server = serve(Close(b"HTTP/1.1 200 OK\r\n\r\nuntil the end"), ok(b"next"))
    transport = Transport(2)
    assert fetch(transport, server.url + "/") == (200, b"until the end")
    assert fetch(transport, server.url + "/") == (200, b"next")
    assert server.connections == 2  # a body without a length never leaves its connection reusable


def test_request_bodies_of_every_kind(serve: Callable[..., ScriptedServer]) -> None:
    big = bytes(range(256)) * 1024
    server = serve(*[ok()] * 5)
    transport = Transport(2)
    fetch(transport, server.url + "/small", "PUT", data=b"tiny")
    fetch(transport, server.url + "/big", "PUT", data=big)
    fetch(transport, server.url + "/sized", "PUT", data=oss2.utils.SizedFileAdapter(io.BytesIO(b"0123456789"), 4))
    fetch(transport, server.url + "/gen", "PUT", data=(part for part in (b"ab", b"", b"cd")))
    fetch(transport, server.url + "/copy", "PUT", data=None,
          headers={"x-oss-copy-source": "/b/k", "Accept-Encoding": None})
    small, large, sized, generated, copy = server.received
    assert (small.body, small.header("content-length")) == (b"tiny", "4")
    assert (large.body, large.header("content-length")) == (big, str(len(big)))
    assert (sized.body, sized.header("content-length")) == (b"0123", "4")
    assert (generated.body, generated.header("transfer-encoding")) == (b"abcd", "chunked")
    assert (copy.body, copy.header("content-length"), copy.header("accept-encoding")) == (b"", "0", None)
    assert small.header("host") == f"127.0.0.1:{server.port}"


def test_a_short_request_body_is_an_error_not_a_hang(serve: Callable[..., ScriptedServer]) -> None:
    class Short:
        def __len__(self) -> int:
            return 10

        def read(self, size: int = -1) -> bytes:
            data, self.read = b"abc", lambda size=-1: b""  # type: ignore[method-assign]
            return data

    server = serve(ok())
    with pytest.raises(oss_errors.RequestError, match="announced"):
        fetch(Transport(1), server.url + "/", "PUT", data=Short())


def test_query_parameters_are_encoded_as_requests_encodes_them(serve: Callable[..., ScriptedServer]) -> None:
    params = {"uploads": "", "prefix": "a b/ü+%", "continuation-token": None, "max-keys": "1000"}
    url = "/bucket/" + oss2.compat.urlquote("key with/slash ü", safe="")
    server = serve(ok())
    fetch(Transport(1), server.url + url, params=params)
    expected = requests.Request("GET", server.url + url, params=params).prepare().path_url
    assert server.received[0].request_line == f"GET {expected} HTTP/1.1"


def test_failures_are_oss2_request_errors(serve: Callable[..., ScriptedServer]) -> None:
    server = serve(Close(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"), lambda r: None,
                   Close(b"garbage\r\n\r\n"))
    transport = Transport(2)
    response = transport.request("GET", server.url + "/", params=None, headers={}, data=None, timeout=5)
    assert response.read(5) == b"short"
    with pytest.raises(oss_errors.RequestError, match="5 bytes early"):
        response.read(5)
    with pytest.raises(oss_errors.RequestError, match="without answering"):
        fetch(transport, server.url + "/")
    with pytest.raises(oss_errors.RequestError, match=r"not an HTTP/1\.x status line"):
        fetch(transport, server.url + "/")
    with pytest.raises(oss_errors.RequestError):
        fetch(transport, "http://127.0.0.1:1/")
    with pytest.raises(oss_errors.ClientError, match="invalid header"):
        fetch(transport, server.url + "/", headers={"x-oss-meta-a": "1\r\nInjected: yes"})
    assert len(server.received) == 3  # the refused header never reached the wire


def test_a_pooled_connection_the_server_closed_is_not_used(serve: Callable[..., ScriptedServer]) -> None:
    server = serve(Close(ok(b"one")), ok(b"two"))
    transport = Transport(2)
    assert fetch(transport, server.url + "/") == (200, b"one")
    (idle,) = transport.pool._idle[("http", "127.0.0.1", server.port)]
    for _ in range(200):  # the server's FIN is on its way
        if idle.dropped():
            break
        threading.Event().wait(0.01)
    assert fetch(transport, server.url + "/") == (200, b"two")
    assert server.connections == 2


def test_a_connection_dying_mid_request_is_an_error_not_a_silent_resend(
        serve: Callable[..., ScriptedServer]) -> None:
    """The retry policy above the transport decides (and counts) every retry, as with requests."""
    server = serve(ok(b"one"), lambda r: None, ok(b"three"))
    transport = Transport(2)
    assert fetch(transport, server.url + "/") == (200, b"one")
    with pytest.raises(oss_errors.RequestError):
        fetch(transport, server.url + "/", "PUT", data=b"x")
    assert fetch(transport, server.url + "/") == (200, b"three")
    assert [r.connection for r in server.received] == [1, 1, 2]


def _certificate(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp / "cert.pem", tmp / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def test_tls_is_verified_against_the_ca_bundle(serve: Callable[..., ScriptedServer], tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    server = serve(ok(b"secure"), ok(b"again"), tls=tls)
    trusted = Transport(2, ca=str(cert))
    assert fetch(trusted, server.url + "/") == (200, b"secure")
    assert fetch(trusted, server.url + "/") == (200, b"again")
    assert server.connections == 1
    with pytest.raises(oss_errors.RequestError, match="CERTIFICATE_VERIFY_FAILED"):
        fetch(Transport(1), server.url + "/")  # certifi's bundle does not know this certificate


def test_a_proxy_in_the_environment_hands_the_requests_to_requests() -> None:
    assert LeanSession(4, environ={"HTTPS_PROXY": "http://proxy.internal:3128"}).transport is None
    assert LeanSession(4, environ={"NO_PROXY": "*"}).transport is not None


def test_a_gzip_encoded_object_is_read_as_stored(oss_emulator: OssEmulator) -> None:
    """requests would inflate it (and a streamed copy would then fail its CRC); OSS stores bytes."""
    stored = gzip.compress(b"subtitles " * 100)
    bucket = oss2.Bucket(oss2.Auth("ak", "sk"), oss_emulator.url, "gzip-bucket", session=LeanSession(2, environ={}))
    bucket.put_object("subs.vtt", stored, headers={"Content-Encoding": "gzip"})
    result = bucket.get_object("subs.vtt")
    assert result.headers["Content-Encoding"] == "gzip"
    assert result.read() == stored
    assert bucket.get_object("subs.vtt", byte_range=(0, 9)).read() == stored[:10]


def test_httpx_on_the_lean_transport(serve: Callable[..., ScriptedServer]) -> None:
    packed = gzip.compress(b'{"RequestId": "r1"}')
    server = serve(ok(b'{"a": 1}', "Content-Type: application/json"),
                   ok(packed, "Content-Encoding: gzip", "X-Acs-Request-Id: r1", "X-Acs-Request-Id: r2"))
    client = httpx.Client(transport=LeanHTTPXTransport(2), headers={"user-agent": "test/1"}, timeout=5)
    first = client.post(server.url + "/?Action=Query&JobId=j%2F1", content=b"body")
    assert (first.status_code, first.json()) == (200, {"a": 1})
    second = client.get(server.url + "/b")
    assert second.json() == {"RequestId": "r1"}  # httpx decodes what it asked for (accept-encoding)
    assert second.headers["x-acs-request-id"] == "r1, r2"
    sent = server.received[0]
    assert sent.request_line == "POST /?Action=Query&JobId=j%2F1 HTTP/1.1"  # the query as given, not re-encoded
    assert (sent.body, sent.header("content-length"), sent.header("user-agent")) == (b"body", "4", "test/1")
    assert sent.header("host") == f"127.0.0.1:{server.port}"
    assert [r.connection for r in server.received] == [1, 1]  # kept alive
    client.close()


def test_httpx_on_the_lean_transport_fails_as_httpx_does(serve: Callable[..., ScriptedServer]) -> None:
    def late(_: object) -> bytes:
        threading.Event().wait(1.0)
        return ok(b"too late")

    server = serve(lambda r: None, Close(b"garbage\r\n\r\n"), late)
    client = httpx.Client(transport=LeanHTTPXTransport(2), timeout=5)
    with pytest.raises(httpx.RemoteProtocolError) as unanswered:
        client.get(server.url + "/?Signature=secret")
    with pytest.raises(httpx.RemoteProtocolError):
        client.get(server.url + "/")
    with pytest.raises(httpx.ReadTimeout):
        client.get(server.url + "/", timeout=0.2)
    with pytest.raises(httpx.ConnectError) as refused:
        client.get("http://127.0.0.1:1/?Signature=secret")
    for failure in (unanswered.value, refused.value):
        assert "secret" not in str(failure)  # the class of the cause, never the URL
    client.close()


def test_the_mps_client_uses_the_lean_transport_unless_a_proxy_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from iproduction.credentials import Credentials, CredentialsSource
    from iproduction.mps import MPSClient
    from iproduction.ratelimit import RateLimiter

    def transport_of() -> object:
        client = MPSClient("https://mts.cn-hangzhou.aliyuncs.com", CredentialsSource(Credentials("ak", "sk")),
                           limiter=RateLimiter(10))
        try:
            return client._http._transport
        finally:
            client.close()

    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert isinstance(transport_of(), LeanHTTPXTransport)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert isinstance(transport_of(), httpx.HTTPTransport)


def test_the_mps_client_verifies_tls_against_ssl_cert_file(serve: Callable[..., ScriptedServer], tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from iproduction.credentials import Credentials, CredentialsSource
    from iproduction.mps import MPSClient, MPSNetworkError
    from iproduction.ratelimit import RateLimiter

    cert, key = _certificate(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    server = serve(ok(b'{"RequestId": "r1"}', "Content-Type: application/json"), tls=tls)
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)

    def call() -> object:
        client = MPSClient(server.url, CredentialsSource(Credentials("ak", "sk")), limiter=RateLimiter(10),
                           policy=retry.RetryPolicy(attempts=1))
        try:
            return client.call("QueryIProductionJob", {"JobId": "j1"})
        finally:
            client.close()

    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with pytest.raises(MPSNetworkError, match="ConnectError"):  # certifi's bundle does not know it
        call()
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    assert call() == {"RequestId": "r1"}
