"""Structured logs: one line per event on stdout (JSON, or ``pretty`` for a console), with the FC request id
and the job id from context variables; every registered secret (:func:`redact`) is scrubbed from every line,
in every form a server may echo it in and as any piece of :data:`PIECE` characters (a text cut short)."""

from __future__ import annotations

import base64
import contextvars
import functools
import json
import sys
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
job_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("job_id", default=None)

LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40}
FORMATS = ("json", "pretty")
_level = LEVELS["INFO"]
_format = "json"
#: The shortest piece of a secret that is scrubbed where it appears on its own.
PIECE = 16
_secrets: set[str] = set()
_pieces: set[str] = set()  # every PIECE-character piece of every form of every secret
_halves: set[str] = set()  # every PIECE // 2-character piece of the same: a quick test that a text holds none
_secrets_lock = threading.Lock()
_write_lock = threading.Lock()


def configure(level: str = "INFO", form: str = "json") -> None:
    """Set the lowest level written and the line format (``config.log_options`` validates both)."""
    global _level, _format
    if level.upper() not in LEVELS or form.lower() not in FORMATS:
        raise ValueError(f"unknown log level {level!r} or format {form!r}")
    _level, _format = LEVELS[level.upper()], form.lower()


def secret_forms(value: str) -> set[str]:
    """``value`` as a server or library may echo it: raw, percent-encoded once and twice (with the
    safe sets of RFC 3986, of ``urllib`` and of OSS paths) and base64 (standard and URL-safe)."""
    forms = {value}
    for safe in ("", "~", "/", "~/"):
        once = quote(value, safe=safe)
        forms.update({once, quote(once, safe=""), quote(once, safe=safe)})
    raw = value.encode("utf-8")
    forms.update({base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()})
    return forms


def redact(*values: str | None) -> None:
    """Register values that must never appear in a log line, a result or an exception, in any of
    :func:`secret_forms`, whole or as a piece of :data:`PIECE` characters or more."""
    forms = set().union(*(secret_forms(value) for value in values if value and len(value) >= 4))
    pieces = {form[i:i + PIECE] for form in forms for i in range(len(form) - PIECE + 1)}
    halves = {form[i:i + PIECE // 2] for form in forms for i in range(len(form) - PIECE // 2 + 1)}
    with _secrets_lock:
        _secrets.update(forms)
        _pieces.update(pieces)
        _halves.update(halves)


def scrub(text: str) -> str:
    """``text`` with every registered secret, and every piece of one, replaced by ``***``."""
    with _secrets_lock:
        secrets = sorted(_secrets, key=len, reverse=True)
        pieces = _pieces
    for secret in secrets:
        text = text.replace(secret, "***")
    if not pieces or len(text) < PIECE:
        return text
    # A piece at p holds text[q:q + PIECE // 2] for the one multiple q of PIECE // 2 in [p, p + PIECE // 2),
    # itself a piece of half the length: a text with none at those offsets holds no piece (a quick test).
    half, size = PIECE // 2, len(text)
    if _halves.isdisjoint(map(text.__getitem__, map(slice, range(0, size - half + 1, half),
                                                    range(half, size + 1, half)))):
        return text
    # What is left of a secret cut short: mark every character a known piece covers, then blank them.
    covered = [False] * len(text)
    for i in range(len(text) - PIECE + 1):
        if text[i:i + PIECE] in pieces:
            covered[i:i + PIECE] = [True] * PIECE
    if not any(covered):
        return text
    out: list[str] = []
    for i, char in enumerate(text):
        if not covered[i]:
            out.append(char)
        elif i == 0 or not covered[i - 1]:
            out.append("***")
    return "".join(out)


def _utc(now: float, separator: str = "T", zone: str = "Z") -> str:
    return time.strftime(f"%Y-%m-%d{separator}%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}{zone}"


def _plain(value: Any) -> str:
    """A field's value in a pretty line: bare when that cannot be misread, else as JSON."""
    if isinstance(value, str) and value and not any(c.isspace() or c in "\"=[]{}" for c in value):
        return value
    return json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))


def pretty(now: float, level: str, event: str, request: str | None, job: str | None,
           fields: dict[str, Any]) -> str:
    """``2026-12-04 16:00:00.123 INFO  [req-id] [job id] job.outcome outcome=committed files=3``
    (fields without a value left out)."""
    head = f"{_utc(now, ' ', '')} {level:<5} [{request or '-'}]" + (f" [{job}]" if job else "")
    return " ".join([head, event, *(f"{key}={_plain(value)}" for key, value in fields.items() if value is not None)])


def log(event: str, level: str = "INFO", **fields: Any) -> None:
    """Write one line: JSON ``{"time", "level", "event", "requestId", "jobId", ...fields}``, or pretty."""
    if LEVELS.get(level, 20) < _level:
        return
    now = time.time()
    job = fields.pop("jobId", None) or job_id.get()
    if _format == "pretty":
        line = scrub(pretty(now, level, event, request_id.get(), job, fields))
    else:
        record = {"time": _utc(now), "level": level, "event": event, "requestId": request_id.get(),
                  **({"jobId": job} if job else {}), **fields}
        line = scrub(json.dumps(record, ensure_ascii=False, default=str))
    with _write_lock:
        stream = sys.stdout  # looked up each time: the FC runtime (and tests) may swap it
        stream.write(line + "\n")
        stream.flush()


info = functools.partial(log, level="INFO")
warning = functools.partial(log, level="WARNING")
error = functools.partial(log, level="ERROR")
debug = functools.partial(log, level="DEBUG")


class Throttle:
    """Lets an event through at most once every ``interval`` seconds (progress lines)."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._clock = clock
        self._next = clock() + interval

    def ready(self) -> bool:
        now = self._clock()
        if now < self._next:
            return False
        self._next = now + self._interval
        return True
