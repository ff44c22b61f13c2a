"""Plumbing shared by the local emulators.

A threaded HTTP/1.1 server on loopback with:

* runtime knobs (per-request latency, fault injection, emulator-specific settings),
* a request log that tests read to count requests,
* an admin API under ``/_emulator/`` that works the same whether the emulator runs in a
  thread of the test process or in a process of its own.

Admin API (JSON in, JSON out)::

    GET    /_emulator/health   -> {"ok": true, "emulator": "oss"}
    GET    /_emulator/log      -> {"requests": [{"op", "method", "path", "status", ...}, ...]}
    DELETE /_emulator/log      -> clears it
    GET    /_emulator/knobs    -> {"latency", "profile", "seed", "faults": [...], "settings": {...}, "injected": {...}}
    PUT    /_emulator/knobs    -> replaces the knobs given (omitted keys keep their value)

Two latency profiles (knob ``profile``), two models of a server:

* ``arrival`` (the default): the latency counts from a request's arrival and the emulator's own
  work is done within it, as a remote service's is within its round trip; an answer leaves at
  arrival + latency unless the work takes longer.
* ``queueing``: the latency is a wait before the work, on the request's own thread (a thread per
  connection, as in a plain ``http.server.ThreadingHTTPServer`` whose handler sleeps, then works):
  the requests of a wave wake together and their work queues on this process's GIL, so answers
  leave at arrival + latency + the work of those ahead of them.

A fault rule is ``{"op": "CopyObject" | "*", "kind": "503", "rate": 0.2}`` (each matching request
fails with that probability) or ``{"op": ..., "kind": ..., "times": 3, "after": 1}`` (skip one
matching request, then fail the next three), or ``{"op": ..., "sequence": ["503", null, "reset"]}``
(one entry per matching request, ``null`` lets it through). Kinds the base server handles itself:
``reset`` (the connection is dropped without an answer, nothing done), ``reset_after`` (the request is
carried out, then the connection is dropped before its answer leaves: a write stored whose answer never
arrives, the case RFC 9110 §9.2.2 has in mind with "a communication failure ... before the client is able
to read the server's response") and ``slow`` (the answer is held back ``seconds``, default 30, then given
normally). Every other kind (``503``, ``500``, ``throttle``,
``corrupt``...) is turned into an answer by the emulator.
"""

from __future__ import annotations

import contextlib
import functools
import json
import random
import signal
import socket
import struct
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import urlsplit

ADMIN_PREFIX = "/_emulator/"
#: The latency profiles (see the module docstring); the first is the default.
PROFILES = ("arrival", "queueing")


def check_profile(name: str) -> str:
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}: choose from {', '.join(PROFILES)}")
    return name


@dataclass
class FaultRule:
    """One fault-injection rule; see the module docstring."""

    op: str = "*"
    kind: str = "503"
    rate: float | None = None
    times: int | None = None
    after: int = 0
    sequence: list[str | None] | None = None
    seconds: float = 30.0
    seen: int = 0

    def matches(self, op: str) -> bool:
        return self.op in ("*", op)

    def draw(self, rng: random.Random) -> str | None:
        """Count one matching request; return the fault kind to inject, if any."""
        index = self.seen
        self.seen += 1
        if self.sequence is not None:
            return self.sequence[index] if index < len(self.sequence) else None
        if index < self.after:
            return None
        if self.times is not None:
            return self.kind if index - self.after < self.times else None
        if self.rate is not None:
            return self.kind if rng.random() < self.rate else None
        return self.kind

    def public(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class Knobs:
    """Thread-safe runtime settings of one emulator."""

    latency: float = 0.0
    seed: int = 0
    profile: str = PROFILES[0]
    faults: list[FaultRule] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    injected: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        check_profile(self.profile)
        self._lock = threading.Lock()
        self._rng = random.Random(self.seed)

    def configure(self, data: dict[str, Any]) -> None:
        """Apply an admin ``PUT /_emulator/knobs`` document."""
        unknown = set(data) - {"latency", "profile", "seed", "faults", "settings", "reset_counters"}
        if unknown:
            raise ValueError(f"unknown knob(s): {sorted(unknown)}")
        with self._lock:
            if "latency" in data:
                self.latency = float(data["latency"])
            if "profile" in data:
                self.profile = check_profile(data["profile"])
            if "seed" in data:
                self.seed = int(data["seed"])
                self._rng = random.Random(self.seed)
            if "faults" in data:
                self.faults = [FaultRule(**{k: v for k, v in rule.items() if k != "seen"})
                               for rule in data["faults"] or []]
            if "settings" in data:
                unknown = set(data["settings"]) - set(self.settings)
                if unknown:
                    raise ValueError(f"unknown setting(s): {sorted(unknown)}")
                self.settings.update(data["settings"])
            if data.get("reset_counters"):
                self.injected.clear()

    def setting(self, name: str) -> Any:
        with self._lock:
            return self.settings[name]

    def pick_fault(self, op: str) -> FaultRule | None:
        """The rule that fires for this request, if any (rules are tried in order)."""
        with self._lock:
            for rule in self.faults:
                if rule.matches(op):
                    kind = rule.draw(self._rng)
                    if kind is not None:
                        self.injected[kind] += 1
                        return FaultRule(op=op, kind=kind, seconds=rule.seconds)
            return None

    def public(self) -> dict[str, Any]:
        with self._lock:
            return {
                "latency": self.latency,
                "profile": self.profile,
                "seed": self.seed,
                "faults": [rule.public() for rule in self.faults],
                "settings": dict(self.settings),
                "injected": dict(self.injected),
            }


class RequestLog:
    """The handled requests (admin requests are not logged).

    A request is logged when its handler is done, a moment after its answer went out, so
    :meth:`entries` waits (briefly) for the requests still being handled: a client that has its
    answer finds the request in the log.
    """

    def __init__(self, settle: float = 0.5) -> None:
        self._changed = threading.Condition()
        self._entries: list[dict[str, Any]] = []
        self._in_flight = 0
        self._settle = settle

    def begin(self) -> None:
        with self._changed:
            self._in_flight += 1

    def append(self, entry: dict[str, Any]) -> None:
        """Log a request that :meth:`begin` announced."""
        with self._changed:
            self._entries.append(entry)
            self._in_flight -= 1
            self._changed.notify_all()

    def entries(self) -> list[dict[str, Any]]:
        with self._changed:
            self._changed.wait_for(lambda: self._in_flight == 0, timeout=self._settle)
            return list(self._entries)

    def clear(self) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self._in_flight == 0, timeout=self._settle)
            self._entries.clear()


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 emulator: Emulator) -> None:
        self.emulator = emulator
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_all(self) -> None:
        """Drop every open keep-alive connection so handler threads end."""
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class DroppedError(Exception):
    """Raised inside a handler to drop the connection without an answer."""


#: As ``http.client``: longest header line, most header lines.
MAX_LINE = 65536
MAX_HEADERS = 100


class RequestHeaders:
    """A request's headers: the part of ``email.message.Message`` the handlers use, read without the
    email package (whose parser was about a third of an emulator's CPU per request)."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs
        self._by_name: dict[str, list[str]] = {}
        for name, value in pairs:
            self._by_name.setdefault(name.lower(), []).append(value)

    def get(self, name: str, default: Any = None) -> Any:
        values = self._by_name.get(name.lower())
        return values[0] if values else default

    def __getitem__(self, name: str) -> str | None:
        return self.get(name)

    def get_all(self, name: str, failobj: Any = None) -> Any:
        values = self._by_name.get(name.lower())
        return list(values) if values else failobj

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._by_name

    def keys(self) -> list[str]:
        return [name for name, _ in self._pairs]

    def items(self) -> list[tuple[str, str]]:
        return list(self._pairs)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._pairs)

    def __str__(self) -> str:
        return "".join(f"{name}: {value}\n" for name, value in self._pairs) + "\n"


class HeadersTooLarge(Exception):
    """A header line longer than :data:`MAX_LINE`, or more than :data:`MAX_HEADERS` of them."""


def read_headers(rfile: Any) -> RequestHeaders:
    """Header lines up to the blank line, folded continuation lines joined (as ``http.client``)."""
    pairs: list[tuple[str, str]] = []
    while True:
        line = rfile.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise HeadersTooLarge("Line too long")
        if line in (b"\r\n", b"\n", b""):
            return RequestHeaders(pairs)
        text = line.decode("iso-8859-1").rstrip("\r\n")
        if text[:1] in (" ", "\t") and pairs:
            name, value = pairs[-1]
            pairs[-1] = (name, f"{value} {text.strip()}")
            continue
        if len(pairs) >= MAX_HEADERS:
            raise HeadersTooLarge("Too many headers")
        name, _, value = text.partition(":")
        pairs.append((name.strip(), value.strip()))


@functools.lru_cache(maxsize=4096)
def _http_date(second: int) -> str:
    return formatdate(second, usegmt=True)


def http_date(when: float | None = None) -> str:
    """RFC 1123 date of ``when`` (default: now), to the second (formatted once per second seen)."""
    return _http_date(int(time.time() if when is None else when))


class EmulatorHandler(BaseHTTPRequestHandler):
    """Base request handler. Subclasses implement :meth:`dispatch` and :meth:`fault_answer`.

    While handling, a subclass fills ``self.log_fields`` (at least ``op``) and calls
    :meth:`inject` once it knows the operation, which applies latency and faults.
    """

    protocol_version = "HTTP/1.1"
    server: EmulatorHTTPServer
    server_version = "LocalCloud"
    sys_version = ""

    _arrived = 0.0  # when the request being handled arrived (monotonic)
    _due = 0.0  # when its answer may leave (0: now)
    _drop_answer = False  # ``reset_after``: the work is done, then the connection dropped instead of answering

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # -- plumbing ---------------------------------------------------------------------------
    @property
    def emulator(self) -> Emulator:
        return self.server.emulator

    def log_message(self, format: str, *args: Any) -> None:
        if self.emulator.verbose:
            super().log_message(format, *args)

    def send_response(self, code: int, message: str | None = None) -> None:
        self.wait_due()
        if self._drop_answer:
            self.log_fields["unanswered"] = code
            raise DroppedError
        self.log_fields["status"] = code
        super().send_response(code, message)

    def hold(self, seconds: float) -> None:
        """Keep the answer back ``seconds`` more (work the emulated service takes time for)."""
        self._due = (self._due or time.monotonic()) + seconds

    def wait_due(self) -> None:
        """Sleep until the answer may leave (see :meth:`inject`)."""
        due, self._due = self._due, 0.0
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)

    def date_time_string(self, timestamp: float | None = None) -> str:
        return http_date(timestamp)

    def end_headers_with(self, body: bytes) -> None:
        """``end_headers``, the body (if any) going out in the same write."""
        self._headers_buffer.append(b"\r\n")
        if body:
            self._headers_buffer.append(body)
        self.flush_headers()

    def parse_request(self) -> bool:
        """``BaseHTTPRequestHandler.parse_request`` for HTTP/1.x, headers read by :func:`read_headers`."""
        self.command = None  # type: ignore[assignment]
        self.request_version = self.default_request_version
        self.close_connection = True
        requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        self.requestline = requestline
        words = requestline.split()
        if not words:
            return False
        if len(words) != 3 or not words[2].startswith("HTTP/1."):
            self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request syntax ({requestline!r})")
            return False
        self.command, self.path, self.request_version = words
        self.close_connection = self.request_version < "HTTP/1.1"
        if self.path.startswith("//"):
            self.path = "/" + self.path.lstrip("/")
        try:
            self.headers = read_headers(self.rfile)  # type: ignore[assignment]
        except HeadersTooLarge as exc:
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, str(exc))
            return False
        connection = (self.headers.get("Connection") or "").lower()
        if connection == "close":
            self.close_connection = True
        elif connection == "keep-alive":
            self.close_connection = False
        expect = (self.headers.get("Expect") or "").lower()
        if expect == "100-continue" and self.request_version >= "HTTP/1.1":
            return self.handle_expect_100()
        return True

    def handle(self) -> None:
        # A client may reset an idle keep-alive connection: that is not an error worth a traceback.
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            super().handle()

    @property
    def body_pending(self) -> bool:
        """Whether the request still has a body that nobody read."""
        return not self._body_read

    def _handle(self) -> None:
        self.log_fields: dict[str, Any] = {"method": self.command, "path": self.path}
        self._drop_answer = False
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        self._body_read = not chunked and (self.headers.get("Content-Length") or "0").strip() == "0"
        split = urlsplit(self.path)
        if split.path.startswith(ADMIN_PREFIX):
            self._admin(split.path[len(ADMIN_PREFIX):])
            return
        started = self._arrived = time.monotonic()
        self._due = 0.0
        self.emulator.log.begin()
        try:
            self.dispatch()
        except DroppedError:
            self.close_connection = True
            with contextlib.suppress(OSError):
                # RST rather than FIN, like a reset by a middlebox.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.log_fields.setdefault("status", 0)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            self.log_fields.setdefault("status", 0)
        finally:
            if not self._body_read:
                # An unread request body would be taken for the next request on this connection
                # (answers sent before reading it should say "Connection: close").
                self.close_connection = True
            self.log_fields["time"] = time.time()
            self.log_fields["duration"] = round(time.monotonic() - started, 6)
            self.emulator.log.append(self.log_fields)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

    def inject(self, op: str) -> str | None:
        """Record the operation, apply latency and faults.

        Profile ``arrival``: the latency is a time the answer may not leave before, counted from the
        request's arrival (its body's last byte, if it has one; :meth:`wait_due`, at the first status
        line): the emulator's own work is done within it, as a real service's is within its round
        trip, rather than added to it by this machine's CPU. Profile ``queueing``: the request's
        thread sleeps the latency here, before any of the work (see the module docstring).

        Returns the fault kind the emulator must answer with itself (``503``...), or None.
        ``reset`` raises :class:`DroppedError`; ``reset_after`` returns None and drops the connection where
        the answer would start (:meth:`send_response`); ``slow`` sleeps and returns None.
        """
        self.log_fields["op"] = op
        knobs = self.emulator.knobs
        if knobs.latency and knobs.profile == "queueing":
            time.sleep(knobs.latency)
        elif knobs.latency:
            self._due = self._arrived + knobs.latency
        rule = knobs.pick_fault(op)
        if rule is None:
            return None
        self.log_fields["fault"] = rule.kind
        if rule.kind == "reset":
            self.read_body()
            self.wait_due()
            raise DroppedError
        if rule.kind == "slow":
            time.sleep(rule.seconds)
            return None
        if rule.kind == "reset_after":
            self._drop_answer = True
            return None
        return rule.kind

    # -- request bodies ---------------------------------------------------------------------
    def iter_body(self, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """Yield the request body (Content-Length or chunked), once."""
        if self._body_read:
            return
        self._body_read = True
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    self._arrived_whole()
                    return
                remaining = size
                while remaining:
                    data = self.rfile.read(min(chunk_size, remaining))
                    if not data:
                        raise ConnectionResetError("client closed mid-body")
                    remaining -= len(data)
                    yield data
                self.rfile.readline(3)
        else:
            remaining = int(self.headers.get("Content-Length") or 0)
            while remaining:
                data = self.rfile.read(min(chunk_size, remaining))
                if not data:
                    raise ConnectionResetError("client closed mid-body")
                remaining -= len(data)
                yield data
            self._arrived_whole()

    def _arrived_whole(self) -> None:
        """The body's last byte is in: the latency counts from now (a body's upload time is not in it)."""
        if self._due:
            self._due = max(self._due, time.monotonic() + self.emulator.knobs.latency)

    def read_body(self) -> bytes:
        return b"".join(self.iter_body())

    # -- answers ----------------------------------------------------------------------------
    def send_bytes(self, status: int, body: bytes, content_type: str,
                   headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers_with(body if self.command != "HEAD" else b"")

    def send_json(self, status: int, document: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(document, ensure_ascii=False).encode()
        self.send_bytes(status, body, "application/json;charset=utf-8", headers)

    # -- admin ------------------------------------------------------------------------------
    def _admin(self, route: str) -> None:
        self.log_fields["op"] = "admin"
        try:
            body = self.read_body()
            document = json.loads(body) if body else None
            if route == "health" and self.command == "GET":
                self.send_json(200, {"ok": True, "emulator": self.emulator.name})
            elif route == "log" and self.command == "GET":
                self.send_json(200, {"requests": self.emulator.log.entries()})
            elif route == "log" and self.command == "DELETE":
                self.emulator.log.clear()
                self.send_json(200, {"ok": True})
            elif route == "knobs" and self.command == "GET":
                self.send_json(200, self.emulator.knobs.public())
            elif route == "knobs" and self.command == "PUT":
                self.emulator.knobs.configure(document or {})
                self.send_json(200, self.emulator.knobs.public())
            else:
                answer = self.admin(route, document)
                if answer is None:
                    self.send_json(404, {"error": f"no admin route {self.command} /_emulator/{route}"})
                else:
                    self.send_json(200, answer)
        except (ValueError, TypeError, KeyError) as exc:
            self.send_json(400, {"error": f"{type(exc).__name__}: {exc}"})

    # -- for subclasses ---------------------------------------------------------------------
    def dispatch(self) -> None:
        raise NotImplementedError

    def admin(self, route: str, document: Any) -> dict[str, Any] | None:
        """Emulator-specific admin routes; return None for an unknown route."""
        return None


class Emulator:
    """An emulator's state plus its server thread. Use as a context manager or start()/stop()."""

    name: ClassVar[str] = "emulator"
    handler_class: ClassVar[type[EmulatorHandler]] = EmulatorHandler
    default_settings: ClassVar[dict[str, Any]] = {}

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, latency: float = 0.0,
                 profile: str = PROFILES[0], seed: int = 0, verbose: bool = False, **settings: Any) -> None:
        self.host = host
        self.port = port
        self.verbose = verbose
        self.knobs = Knobs(latency=latency, seed=seed, profile=profile, settings=dict(self.default_settings))
        if settings:
            self.knobs.configure({"settings": settings})
        self.log = RequestLog()
        self._server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def bind(self) -> EmulatorHTTPServer:
        self._server = EmulatorHTTPServer((self.host, self.port), self.handler_class, self)
        self.port = self._server.server_address[1]
        return self._server

    def start(self) -> Emulator:
        server = self.bind()
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"{self.name}-emulator", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self, ready: Callable[[str], None] | None = None) -> None:
        """Run in the foreground (the ``python -m`` entry points) until Ctrl-C or SIGTERM.

        ``ready`` is called with the URL once the port is bound (``--port 0`` picks a free one)."""
        server = self.bind()
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        if ready is not None:
            ready(self.url)
        try:
            server.serve_forever(poll_interval=0.2)
        except KeyboardInterrupt:
            pass
        finally:
            server.close_all()
            server.server_close()

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.close_all()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class AdminClient:
    """Drives an emulator's admin API over HTTP (works for in-thread and separate-process ones)."""

    def __init__(self, url: str) -> None:
        import httpx  # the tests' HTTP client; imported here so servers start without it

        self._http = httpx.Client(base_url=url.rstrip("/") + ADMIN_PREFIX, timeout=30)

    def call(self, method: str, route: str, document: Any = None) -> Any:
        response = self._http.request(method, route, json=document)
        if response.status_code != 200:
            raise RuntimeError(f"admin {method} {route}: {response.status_code} {response.text}")
        return response.json()

    def health(self) -> dict[str, Any]:
        return self.call("GET", "health")

    def log(self) -> list[dict[str, Any]]:
        return self.call("GET", "log")["requests"]

    def clear_log(self) -> None:
        self.call("DELETE", "log")

    def knobs(self, **changes: Any) -> dict[str, Any]:
        """``knobs()`` reads; ``knobs(latency=0.02, faults=[...], settings={...})`` changes."""
        if not changes:
            return self.call("GET", "knobs")
        return self.call("PUT", "knobs", changes)

    def close(self) -> None:
        self._http.close()

    def wait_healthy(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.health()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
