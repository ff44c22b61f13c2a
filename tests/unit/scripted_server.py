"""A scripted HTTP/1.1 server on loopback: raw bytes both ways, every request recorded."""

from __future__ import annotations

import contextlib
import io
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Received:
    connection: int
    head: str
    body: bytes

    @property
    def request_line(self) -> str:
        return self.head.split("\r\n", 1)[0]

    def header(self, name: str) -> str | None:
        for line in self.head.split("\r\n")[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None


def _read_request(file: io.BufferedReader) -> tuple[str, bytes] | None:
    lines = []
    while True:
        line = file.readline()
        if not line:
            return None
        if line == b"\r\n":
            break
        lines.append(line.decode("latin-1").rstrip("\r\n"))
    head = "\r\n".join(lines)
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            size = int(file.readline().strip(), 16)
            if size == 0:
                file.readline()
                break
            body += file.read(size)
            file.readline()
    else:
        body = file.read(int(headers.get("content-length", "0")))
    return head, body


class Close(bytes):
    """A scripted reply after which the server closes the connection."""


@dataclass
class ScriptedServer:
    """Answers each request with the next scripted reply: raw bytes (:class:`Close` bytes: then the
    connection is closed), or a callable of the request returning them (``None``: closed unanswered)."""

    replies: list[bytes | Callable[[Received], bytes | None]]
    tls: ssl.SSLContext | None = None
    received: list[Received] = field(default_factory=list)
    connections: int = 0

    def __post_init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"{'https' if self.tls else 'http'}://{'localhost' if self.tls else '127.0.0.1'}:{self.port}"
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                number = self.connections
            threading.Thread(target=self._serve, args=(conn, number), daemon=True).start()

    def _serve(self, conn: socket.socket, number: int) -> None:
        with contextlib.suppress(OSError, ssl.SSLError):
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            file = conn.makefile("rb")
            while True:
                request = _read_request(file)
                if request is None:
                    break
                received = Received(number, *request)
                with self._lock:
                    self.received.append(received)
                    reply = self.replies.pop(0)
                data = reply(received) if callable(reply) else reply
                if data is None:
                    break
                conn.sendall(data)
                if isinstance(data, Close):
                    break
        conn.close()

    def close(self) -> None:
        self.sock.close()


#: A chunked answer (with a chunk extension and a trailer) whose body is ``chunked!``.
CHUNKED = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"5;ext=1\r\nchunk\r\n3\r\ned!\r\n0\r\nTrailer: x\r\n\r\n")
#: A HEAD's answer: a Content-Length of 1234 and no body; one header sent twice in two cases.
HEAD_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nx-oss-meta-a: 1\r\nX-Oss-Meta-A: 2\r\n\r\n"


def ok(body: bytes = b"", *extra: str) -> bytes:
    head = "\r\n".join(["HTTP/1.1 200 OK", f"Content-Length: {len(body)}", *extra])
    return head.encode() + b"\r\n\r\n" + body
