"""What the commands print: tables, sizes, times, and a progress bar on a terminal."""

from __future__ import annotations

import calendar
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, TextIO

from .core import Core, is_job_id

ISO = "%Y-%m-%dT%H:%M:%SZ"
RELATIVE = re.compile(r"^(\d+)([smhd])$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class UsageError(Exception):
    """Bad input on the command line (exit code 2)."""


def job_ids(values: Sequence[str]) -> list[str]:
    """The ids given, checked, in lower case as the function keys them, without repeats (order
    kept); :class:`UsageError` for one that is not a job id."""
    seen: dict[str, None] = {}
    for value in values:
        if not is_job_id(value):
            raise UsageError(f"not a job id: {value!r} (32 hexadecimal characters)")
        seen[value.lower()] = None
    return list(seen)


def parse_time(text: str, now: float | None = None) -> float:
    """A point in time from ``2026-12-01``, ``2026-12-01T08:00:00Z``, ``2026-12-01T10:00+02:00``
    (no offset: UTC), or a time ago: ``90m``, ``36h``, ``7d``. Epoch seconds."""
    value = text.strip()
    relative = RELATIVE.match(value)
    if relative:
        return (time.time() if now is None else now) - int(relative[1]) * UNITS[relative[2]]
    try:
        parsed = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value)
    except ValueError:
        raise UsageError(f"not a date: {text!r} (use 2026-12-01, 2026-12-01T08:00:00Z or 7d, 36h, 90m)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def parse_iso(text: Any) -> float | None:
    """A manifest's or a record's ``YYYY-MM-DDTHH:MM:SSZ`` (None when it is not one)."""
    try:
        return float(calendar.timegm(time.strptime(str(text), ISO)))
    except (TypeError, ValueError):
        return None


def iso(ts: float) -> str:
    return time.strftime(ISO, time.gmtime(ts))


def ago(text: Any, now: float) -> str:
    """How long ago an ISO time was: ``3h12m``."""
    then = parse_iso(text)
    if then is None:
        return "?"
    seconds = int(max(0, now - then))
    delta = timedelta(seconds=seconds)
    if delta.days:
        return f"{delta.days}d{delta.seconds // 3600}h"
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def size(n: int | None) -> str:
    """Bytes for people: ``512 B``, ``1.5 KiB``, ``3.2 GiB``."""
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str], out: TextIO) -> None:
    """Columns padded to their widest cell; numbers right-aligned."""
    cells = [[str(h) for h in headers], *[["-" if c is None else str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [all(isinstance(row[i], (int, float)) for row in rows if row[i] is not None) and bool(rows)
               for i in range(len(headers))]
    for row in cells:
        parts = [cell.rjust(w) if num else cell.ljust(w) for cell, w, num in zip(row, widths, numeric, strict=True)]
        out.write("  ".join(parts).rstrip() + "\n")


class Bar:
    """A minimal progress bar on ``stream`` (a terminal), redrawn at most 10 times a second;
    does nothing when ``enabled`` is false. Thread-safe: workers call :meth:`add`."""

    WIDTH = 30

    def __init__(self, stream: TextIO, label: str, total: int, *, enabled: bool) -> None:
        self.stream = stream
        self.label = label
        self.total = total
        self.enabled = enabled and total > 0
        self.done = 0
        self._lock = threading.Lock()
        self._drawn = 0.0
        self._started = time.monotonic()

    def add(self, n: int = 1) -> None:
        with self._lock:
            self.done += n
            now = time.monotonic()
            if self.enabled and (now - self._drawn >= 0.1 or self.done >= self.total):
                self._drawn = now
                self._draw()

    def _draw(self) -> None:
        filled = int(self.WIDTH * min(self.done, self.total) / self.total)
        rate = self.done / max(time.monotonic() - self._started, 1e-6)
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (self.WIDTH - filled)}] "
                          f"{self.done}/{self.total} ({rate:.0f}/s)")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            with self._lock:
                self.stream.write("\r\x1b[K")
                self.stream.flush()

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class Context:
    """What a command gets: its streams, whether to draw progress, and the core to open."""

    out: TextIO
    err: TextIO
    quiet: bool
    progress: bool
    open_core: Callable[[], Core]

    def note(self, text: str) -> None:
        """A line for the operator on stderr (not with --quiet)."""
        if not self.quiet:
            self.err.write(text + "\n")
            self.err.flush()
