"""Capture of what a function writes to stdout/stderr during an invocation, line by line.

While a capture is active, ``sys.stdout``/``sys.stderr`` are tees: every write (from any thread) is
split into lines for the capture and, when ``echo`` is set, also passed on to the stream that was there
before (so pytest's capsys/capfd and a terminal still see it). Tee objects that outlive the capture
(e.g. a ``logging.StreamHandler`` created by the function's initializer) keep feeding later captures.
"""

from __future__ import annotations

import contextlib
import io
import sys
import threading
from collections.abc import Callable, Iterator
from typing import TextIO

_lock = threading.RLock()
_active: Capture | None = None


class Capture:
    """Lines written during one invocation; ``sink(line)`` is called for each complete line."""

    def __init__(self, echo: bool = True, sink: Callable[[str], None] | None = None) -> None:
        self.echo = echo
        self.sink = sink
        self.lines: list[str] = []
        self._partial: dict[str, str] = {}

    def feed(self, stream: str, text: str) -> None:
        with _lock:
            pending = self._partial.get(stream, "") + text
            *complete, rest = pending.split("\n")
            self._partial[stream] = rest
            for line in complete:
                self._emit(line)

    def finish(self) -> None:
        with _lock:
            for rest in list(self._partial.values()):
                if rest:
                    self._emit(rest)
            self._partial.clear()

    def _emit(self, line: str) -> None:
        self.lines.append(line)
        if self.sink is not None:
            with contextlib.suppress(Exception):
                self.sink(line)


class TeeStream(io.TextIOBase):
    """Stands in for sys.stdout or sys.stderr; see the module docstring."""

    def __init__(self, name: str, target: TextIO) -> None:
        super().__init__()
        self.name = name
        self.target = target

    def write(self, text: str) -> int:
        capture = _active
        if capture is not None:
            capture.feed(self.name, text)
        if capture is None or capture.echo:
            with contextlib.suppress(ValueError, OSError):
                self.target.write(text)
        return len(text)

    def flush(self) -> None:
        with contextlib.suppress(ValueError, OSError):
            self.target.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.target.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.target, "encoding", "utf-8") or "utf-8"


@contextlib.contextmanager
def capture(echo: bool = True, sink: Callable[[str], None] | None = None) -> Iterator[Capture]:
    """Capture stdout/stderr lines for the duration of the block."""
    global _active
    current = Capture(echo, sink)
    saved = sys.stdout, sys.stderr
    with _lock:
        _active = current
        sys.stdout = TeeStream("stdout", saved[0])
        sys.stderr = TeeStream("stderr", saved[1])
    try:
        yield current
    finally:
        with _lock:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            current.finish()
            if _active is current:
                _active = None
            sys.stdout, sys.stderr = saved
