"""A lean HTTP/1.1 transport under oss2: the same requests on the wire at a fraction of the CPU.

oss2 sends every request through ``requests`` and ``urllib3``, which cost about 0.7 ms of CPU per
request before oss2's own work; with many threads sharing one GIL that, not the network, bounds how
fast a wave of small copies goes out (see the README's Performance section). :class:`LeanSession`
keeps oss2 whole (its API, signing, answers and errors) and replaces only the transport below
``oss2.Session.do_request``: one keep-alive pool of plain sockets (TLS verified as requests would),
requests written in one piece, answers framed by Content-Length or chunked encoding, bodies handed
over undecoded (a stored ``Content-Encoding: gzip`` object is copied as stored). With a proxy
configured, requests does the job as before.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import socket
import ssl
import threading
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import oss2
from oss2 import exceptions as oss_errors

#: Bytes read from a request body per send, and asked of an answer's body per read.
CHUNK = 256 * 1024
#: The read buffer of a connection (a body read bigger than this goes straight into its bytes).
BUFFER = 64 * 1024
#: Request bodies up to this size go out in the same send as the headers.
INLINE_BODY = 64 * 1024
MAX_LINE = 65536
MAX_HEADERS = 200
NO_BODY_STATUSES = frozenset({204, 304})
#: Variables naming a proxy: with one set, requests (which understands no_proxy) sends everything.
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")


class Headers(dict[str, str]):
    """An answer's headers by lower-case name, looked up in any case (all that oss2 does with them)."""

    def __getitem__(self, name: str) -> str:
        return dict.__getitem__(self, name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and dict.__contains__(self, name.lower())

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        return dict.get(self, name.lower(), default)


class ProtocolError(OSError):
    """The server's answer is not HTTP/1.x as expected (or ended early)."""


def proxy_configured(environ: Mapping[str, str] | None = None) -> bool:
    names = {name.lower() for name, value in (environ if environ is not None else os.environ).items() if value}
    return any(name in names for name in PROXY_VARIABLES)


def ca_settings(environ: Mapping[str, str] | None = None) -> str:
    """The CA bundle requests would use: ``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``, else certifi's."""
    env = environ if environ is not None else os.environ
    found = env.get("REQUESTS_CA_BUNDLE") or env.get("CURL_CA_BUNDLE")
    if found:
        return found
    import certifi

    return certifi.where()


def tls_context(ca: str | None = None) -> ssl.SSLContext:
    """Server certificates verified against ``ca`` (a bundle file or a hashed directory; default:
    :func:`ca_settings`)."""
    ca = ca or ca_settings()
    return ssl.create_default_context(capath=ca) if os.path.isdir(ca) else ssl.create_default_context(cafile=ca)


def keeps_alive(version: str, headers: Headers) -> bool:
    """Whether the connection stays open after this answer (HTTP/1.1 unless ``close``; 1.0 if asked)."""
    tokens = {t.strip().lower() for t in (headers.get("connection") or "").split(",")}
    return "close" not in tokens and (version == "HTTP/1.1" or "keep-alive" in tokens)


def _target(url: str, params: dict[str, Any] | None) -> tuple[str, str, int, str, str]:
    """(scheme, host, port, Host header, request target) of an oss2 URL and its parameters, the
    parameters encoded as requests encodes them (``None`` dropped, ``''`` kept as ``k=``)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise oss_errors.ClientError(f"unsupported URL scheme {scheme!r}")
    host = parts.hostname or ""
    port = parts.port or (443 if scheme == "https" else 80)
    target = parts.path or "/"
    query = [parts.query] if parts.query else []
    if params:
        pairs = [(k, v) for k, v in params.items() if v is not None]
        if pairs:
            query.append(urlencode(pairs))
    if query:
        target += "?" + "&".join(query)
    return scheme, host, port, parts.netloc, target


_FORBIDDEN_IN_HEADERS = re.compile("[\r\n\0]")
_FORBIDDEN_IN_NAMES = re.compile("[\r\n\0:]")


def _header_block(method: str, target: str, netloc: str, headers: Any, length: int | None) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {netloc}"]
    explicit_length = False
    for name, value in headers.items():
        if value is None or name.lower() == "host":
            continue
        value = str(value)
        if not name or _FORBIDDEN_IN_HEADERS.search(value) or _FORBIDDEN_IN_NAMES.search(name):
            raise oss_errors.ClientError(f"invalid header {name!r}")
        explicit_length = explicit_length or name.lower() == "content-length"
        lines.append(f"{name}: {value}")
    if not explicit_length:
        if length is None:
            lines.append("Transfer-Encoding: chunked")
        elif length or method not in ("GET", "HEAD"):
            lines.append(f"Content-Length: {length}")
    try:
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    except UnicodeEncodeError:
        raise oss_errors.ClientError("a header value is not Latin-1 text") from None


def _body_length(body: Any) -> int | None:
    """Bytes in ``body``, None when unknown (sent chunked)."""
    if body is None:
        return 0
    if isinstance(body, (bytes, bytearray, memoryview)):
        return len(body)
    if hasattr(body, "__len__"):
        return len(body)
    size = getattr(body, "len", None)  # oss2's SizedFileAdapter
    return int(size) if size is not None else None


def _chunks(body: Any) -> Iterator[bytes]:
    """A request body as byte chunks: file-like (``read``) or an iterable of bytes."""
    if hasattr(body, "read"):
        while True:
            data = body.read(CHUNK)
            if not data:
                return
            yield data.encode("utf-8") if isinstance(data, str) else data
    else:
        for data in body:
            if data:
                yield data.encode("utf-8") if isinstance(data, str) else data


class Connection:
    """One keep-alive connection, used by one request at a time."""

    def __init__(self, key: tuple[str, str, int], timeout: float | None, tls: ssl.SSLContext | None) -> None:
        scheme, host, port = key
        self.key = key
        sock = socket.create_connection((host, port), timeout=timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if scheme == "https":
                assert tls is not None
                sock = tls.wrap_socket(sock, server_hostname=host)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self.file = sock.makefile("rb", buffering=BUFFER)

    def dropped(self) -> bool:
        """True if the server closed the idle connection (or sent something unasked)."""
        if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            return True
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def close(self) -> None:
        for closable in (self.file, self.sock):
            with contextlib.suppress(OSError):
                closable.close()


class Pool:
    """Idle connections per (scheme, host, port); at most ``size`` kept per key, none waited for."""

    def __init__(self, size: int, ca: str | None = None) -> None:
        self.size = max(1, size)
        self._ca = ca
        self._tls: ssl.SSLContext | None = None
        self._idle: dict[tuple[str, str, int], list[Connection]] = {}
        self._lock = threading.Lock()

    def _context(self) -> ssl.SSLContext:
        with self._lock:
            if self._tls is None:
                self._tls = tls_context(self._ca)
            return self._tls

    def get(self, key: tuple[str, str, int], timeout: float | None) -> Connection:
        while True:
            with self._lock:
                idle = self._idle.get(key)
                conn = idle.pop() if idle else None
            if conn is None:
                return Connection(key, timeout, self._context() if key[0] == "https" else None)
            if conn.dropped():
                conn.close()
                continue
            conn.sock.settimeout(timeout)
            return conn

    def put(self, conn: Connection) -> None:
        with self._lock:
            idle = self._idle.setdefault(conn.key, [])
            if len(idle) < self.size:
                idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            conns = [conn for idle in self._idle.values() for conn in idle]
            self._idle.clear()
        for conn in conns:
            conn.close()


class LeanResponse:
    """An answer as oss2's ``http.Response`` wants it (``status_code``, ``headers``,
    ``iter_content``, ``close``); the connection goes back to the pool once the body is read."""

    def __init__(self, pool: Pool, conn: Connection, method: str) -> None:
        self._pool, self._conn = pool, conn
        file = conn.file
        while True:
            version, status, _reason = self._status_line(file.readline(MAX_LINE + 1))
            headers = self._headers(file)
            if not 100 <= status < 200:  # interim answers (100 Continue) are skipped
                break
        self.status_code = status
        self.headers = headers
        self._keep = keeps_alive(version, headers)
        self._chunked = False
        self._left: int | None = 0
        if method != "HEAD" and status not in NO_BODY_STATUSES:
            if "chunked" in (headers.get("transfer-encoding") or "").lower():
                self._chunked, self._left = True, None
            elif headers.get("content-length") is not None:
                try:
                    self._left = int(headers["content-length"])
                except ValueError:
                    raise ProtocolError("bad Content-Length") from None
                if self._left < 0:
                    raise ProtocolError("bad Content-Length")
            else:
                self._left, self._keep = None, False  # the body ends when the server closes
        self._chunk_left = 0
        self._done = False
        if self._left == 0 and not self._chunked:
            self._finish()

    @staticmethod
    def _status_line(line: bytes) -> tuple[str, int, str]:
        if not line:
            raise ProtocolError("the server closed the connection without answering")
        if len(line) > MAX_LINE:
            raise ProtocolError("status line too long")
        version, _, rest = line.decode("latin-1").rstrip("\r\n").partition(" ")
        code, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
            raise ProtocolError(f"not an HTTP/1.x status line: {line[:40]!r}")
        return version, int(code), reason

    @staticmethod
    def _headers(file: Any) -> Headers:
        headers = Headers()
        last = None
        for _ in range(MAX_HEADERS + 1):
            line = file.readline(MAX_LINE + 1)
            if len(line) > MAX_LINE:
                raise ProtocolError("header line too long")
            if line in (b"\r\n", b"\n"):
                return headers
            if not line:
                raise ProtocolError("the answer ended inside its headers")
            text = line.decode("latin-1").rstrip("\r\n")
            if text[:1] in (" ", "\t") and last is not None:  # obsolete line folding
                dict.__setitem__(headers, last, f"{dict.__getitem__(headers, last)} {text.strip()}")
                continue
            name, sep, value = text.partition(":")
            if not sep:
                raise ProtocolError(f"bad header line: {text[:40]!r}")
            name, value = name.strip().lower(), value.strip()
            before = dict.get(headers, name)
            dict.__setitem__(headers, name, value if before is None else f"{before}, {value}")
            last = name
        raise ProtocolError("too many headers")

    def _finish(self) -> None:
        if self._done:
            return
        self._done = True
        if self._keep:
            self._pool.put(self._conn)
        else:
            self._conn.close()

    def _read_some(self, amt: int) -> bytes:
        if self._done:
            return b""
        file = self._conn.file
        if self._chunked:
            if self._chunk_left == 0:
                size_line = file.readline(MAX_LINE + 1)
                try:
                    self._chunk_left = int(size_line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise ProtocolError("bad chunk size") from None
                if self._chunk_left == 0:
                    while file.readline(MAX_LINE + 1) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    self._finish()
                    return b""
            data = file.read(min(amt, self._chunk_left))
            if not data:
                raise ProtocolError("the answer ended inside a chunk")
            self._chunk_left -= len(data)
            if self._chunk_left == 0 and file.readline(MAX_LINE + 1) not in (b"\r\n", b"\n"):
                raise ProtocolError("bad chunk ending")
            return data
        if self._left is None:  # until the server closes
            data = file.read1(amt)
            if not data:
                self._finish()
            return data
        data = file.read(min(amt, self._left))
        if not data:
            raise ProtocolError(f"the answer ended {self._left} bytes early")
        self._left -= len(data)
        if self._left == 0:
            self._finish()
        return data

    def read(self, amt: int) -> bytes:
        """Up to ``amt`` bytes of the body (fewer only at its end); ``b''`` once it is all read."""
        try:
            return self._read_some(amt)
        except (OSError, ValueError) as exc:
            self.close()
            raise oss_errors.RequestError(exc) from None

    def iter_content(self, chunk_size: int = CHUNK) -> Iterator[bytes]:
        while True:
            data = self.read(chunk_size)
            if not data:
                return
            yield data

    def close(self) -> None:
        """Give the connection back if the body was read, else close it."""
        if not self._done:
            self._done = True
            self._conn.close()


class Transport:
    """Sends one request on a pooled connection and returns its :class:`LeanResponse`."""

    def __init__(self, pool_size: int, ca: str | None = None) -> None:
        self.pool = Pool(pool_size, ca)

    def request(self, method: str, url: str, *, params: dict[str, Any] | None, headers: Any, data: Any,
                timeout: float | tuple[float, float] | None) -> LeanResponse:
        if isinstance(timeout, tuple):
            timeout = max(t for t in timeout if t is not None) if any(t is not None for t in timeout) else None
        scheme, host, port, netloc, target = _target(url, params)
        length = _body_length(data)
        head = _header_block(method, target, netloc, headers, length)
        try:
            conn = self.pool.get((scheme, host, port), timeout)
        except (OSError, ValueError) as exc:
            raise oss_errors.RequestError(exc) from None
        try:
            self._send(conn, head, data, length)
            return LeanResponse(self.pool, conn, method)
        except (OSError, ValueError) as exc:
            # Not sent again here, as requests would not: the retry policy above decides.
            conn.close()
            raise oss_errors.RequestError(exc) from None
        except BaseException:  # from the request body (its own errors), or oss2's
            conn.close()
            raise

    @staticmethod
    def _send(conn: Connection, head: bytes, data: Any, length: int | None) -> None:
        sock = conn.sock
        if data is None or (length == 0 and not hasattr(data, "read")):
            sock.sendall(head)
        elif isinstance(data, (bytes, bytearray, memoryview)):
            if len(data) <= INLINE_BODY:
                sock.sendall(head + bytes(data))
            else:
                sock.sendall(head)
                sock.sendall(data)
        elif length is not None:
            sock.sendall(head)
            sent = 0
            for chunk in _chunks(data):
                sock.sendall(chunk)
                sent += len(chunk)
            if sent != length:
                raise ProtocolError(f"the request body gave {sent} bytes, {length} announced")
        else:
            sock.sendall(head)
            for chunk in _chunks(data):
                sock.sendall(b"%x\r\n%b\r\n" % (len(chunk), chunk))
            sock.sendall(b"0\r\n\r\n")

    def close(self) -> None:
        self.pool.close()


class Answer:
    """oss2's ``http.Response`` for a :class:`LeanResponse` (without its eager debug formatting)."""

    def __init__(self, response: LeanResponse) -> None:
        self.response = response
        self.status = response.status_code
        self.headers = response.headers
        self.request_id = response.headers.get("x-oss-request-id", "")
        self._all_read = False

    def read(self, amt: int | None = None) -> bytes:
        if self._all_read:
            return b""
        if amt is None:
            content = b"".join(self.response.iter_content(CHUNK))
            self._all_read = True
            return content
        data = self.response.read(amt)
        if not data:
            self._all_read = True
        return data

    def __iter__(self) -> Iterator[bytes]:
        return self.response.iter_content(CHUNK)


class LeanSession(oss2.Session):
    """``oss2.Session`` on :class:`Transport`; requests only when a proxy is configured."""

    def __init__(self, pool_size: int, environ: Mapping[str, str] | None = None) -> None:
        super().__init__(pool_size=pool_size)
        env = environ if environ is not None else os.environ
        self.transport: Transport | None = None
        if not proxy_configured(env):
            self.transport = Transport(pool_size, ca_settings(env))

    def do_request(self, req: oss2.http.Request, timeout: Any) -> Any:
        if self.transport is None or req.proxies:
            return super().do_request(req, timeout)
        return Answer(self.transport.request(req.method, req.url, params=req.params, headers=req.headers,
                                             data=req.data, timeout=timeout))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        self.session.close()


class LeanHTTPXTransport(httpx.BaseTransport):
    """httpx's transport on the same pool: the MPS client keeps httpx's API (requests, answers,
    timeouts, errors) without httpcore and h11 below it, which cost the MPS call most of its CPU."""

    def __init__(self, pool_size: int, ca: str | None = None) -> None:
        self.transport = Transport(pool_size, ca)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = [t for t in request.extensions.get("timeout", {}).values() if t is not None]
        try:
            answer = self.transport.request(request.method, str(request.url), params=None,
                                            headers=request.headers, data=request.read(),
                                            timeout=max(timeouts) if timeouts else None)
            try:
                body = b"".join(answer.iter_content(CHUNK))
            finally:
                answer.close()
        except oss_errors.RequestError as exc:
            raise _httpx_error(exc.exception, request) from None
        return httpx.Response(answer.status_code, headers=list(answer.headers.items()), content=body,
                              request=request)

    def close(self) -> None:
        self.transport.close()


def _httpx_error(cause: Exception, request: httpx.Request) -> httpx.TransportError:
    """The httpx exception for a transport failure (its text: the cause's class, never the URL)."""
    text = type(cause).__name__
    if isinstance(cause, (socket.timeout, TimeoutError)):
        return httpx.ReadTimeout(text, request=request)
    if isinstance(cause, ProtocolError):
        return httpx.RemoteProtocolError(text, request=request)
    return httpx.ConnectError(text, request=request)
