"""The ``job.progress`` log line of long copies: at most once per interval, with the job's counts."""

from __future__ import annotations

import contextlib
import io
import json
import threading
from collections.abc import Callable

from iproduction import logs
from iproduction.copier import PROGRESS_INTERVAL, Progress

FIELDS = ("filesDone", "filesTotal", "bytesDone", "bytesTotal")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def progress_on(clock: FakeClock, files: int, interval: float = 5.0) -> Progress:
    """A :class:`Progress` whose throttle reads ``clock`` (Progress itself takes no clock)."""
    progress = Progress(files, interval=interval)
    progress._throttle = logs.Throttle(interval, clock=clock)
    return progress


def progress_lines(fn: Callable[[], None]) -> list[dict]:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        fn()
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    return [line for line in lines if line["event"] == "job.progress"]


def test_at_most_one_line_per_interval_with_the_counts() -> None:
    clock = FakeClock()
    progress = progress_on(clock, files=3)
    emitted: list[tuple[float, dict]] = []

    def step(at: float, size: int, files: int = 0) -> None:
        clock.now = 1000.0 + at
        emitted.extend((at, line) for line in progress_lines(lambda: progress.add(size, files=files)))

    progress.expect(100)
    progress.expect(300)
    step(0.0, 10)          # the first interval has not passed yet: nothing
    step(4.9, 20)
    step(5.0, 30)          # interval over: one line
    step(5.1, 40, files=1)
    step(9.9, 0)
    step(10.0, 100, files=1)  # the next interval: one line
    step(10.0, 100, files=1)
    step(30.0, 0)          # a long pause gives one line, not one per missed interval
    assert [at for at, _ in emitted] == [5.0, 10.0, 30.0]
    counts = [tuple(line[name] for name in FIELDS) for _, line in emitted]
    assert counts == [(0, 3, 60, 400), (2, 3, 200, 400), (3, 3, 300, 400)]
    assert all(line["level"] == "INFO" for _, line in emitted)


def test_concurrent_adds_within_one_interval_log_once() -> None:
    clock = FakeClock()
    progress = progress_on(clock, files=64)
    progress.expect(64 * 1000)
    clock.now += 5.0

    def run() -> None:
        workers = [threading.Thread(target=progress.add, args=(1000,), kwargs={"files": 1}) for _ in range(64)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    lines = progress_lines(run)
    assert len(lines) == 1
    assert lines[0]["filesTotal"] == 64 and lines[0]["bytesTotal"] == 64 * 1000
    assert 1 <= lines[0]["filesDone"] <= 64 and lines[0]["bytesDone"] == lines[0]["filesDone"] * 1000
    assert (progress.files_done, progress.bytes_done) == (64, 64 * 1000)


def test_the_default_interval_is_a_few_seconds() -> None:
    assert 1.0 <= PROGRESS_INTERVAL <= 10.0
    assert progress_lines(lambda: Progress(1).add(5, files=1)) == []  # a quick copy logs no progress
