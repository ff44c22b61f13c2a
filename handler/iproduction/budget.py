"""The invocation's time budget, from the function's FC timeout."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .errors import BudgetExceededError

#: How early an event loop's timer may fire (libuv's clock counts milliseconds), with a margin.
TIMER_TICK = 0.005


class Deadline:
    """When this invocation must stop starting work."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic,
                 timeout: float | None = None, reserve: float = 0.0) -> None:
        self._clock = clock
        self._end = clock() + seconds
        self.timeout = seconds if timeout is None else timeout  # the function's whole FC timeout
        self.reserve = reserve  # kept back after the deadline to report outcomes

    @classmethod
    def from_context(cls, context: Any, started: float, clock: Callable[[], float] = time.monotonic) -> Deadline:
        """FC's ``context.function.timeout`` minus a reserve, counted from ``started``."""
        function = getattr(context, "function", None)
        timeout = float(getattr(function, "timeout", None) or 300)
        reserve = min(15.0, max(0.5, timeout * 0.1))  # kept back to report outcomes: 10 %, 0.5–15 s
        return cls(timeout - reserve - (clock() - started), clock, timeout=timeout, reserve=reserve)

    def remaining(self) -> float:
        return self._end - self._clock()

    def cap(self, limit: float, what: str = "send a request") -> float:
        """A request's timeout: ``limit``, capped by the time left (:class:`BudgetExceededError` when none is)."""
        left = self.remaining()
        if left <= 0:
            raise BudgetExceededError(f"time budget exhausted before it could {what}")
        return min(limit, left)

    def grace(self, share: float = 0.5) -> Deadline:
        """The deadline for the steps that end a job once started (the commit, an abort, deleting a pending
        record): ``share`` of the reserve past this one, the rest left to report the outcomes."""
        extended = Deadline(0, self._clock, timeout=self.timeout)
        extended._end = self._end + self.reserve * share
        return extended

    def expired(self) -> bool:
        """Past the deadline, or within a timer tick of it: a request capped by it may be cut that much
        early (libuv, under uvloop, counts its timers in milliseconds)."""
        return self.remaining() <= TIMER_TICK

    def check(self, needed: float = 0.0, what: str = "continue") -> None:
        """Raise :class:`BudgetExceededError` unless ``needed`` seconds are left."""
        left = self.remaining()
        if left < needed or left <= 0:
            raise BudgetExceededError(f"time budget exhausted: {max(left, 0):.1f}s left, "
                                      f"about {needed:.1f}s needed to {what}")


class CopyTimer:
    """Estimates how long a copy request takes, from the ones already done (starting from 50 MiB/s and 0.1 s
    per request: a first guess as long as a short function's whole budget would start no copy, never to learn)."""

    def __init__(self, rate: float = 50 * 2**20, overhead: float = 0.1) -> None:
        self._rate = rate
        self._overhead = overhead
        self._observed = 0

    def estimate(self, size: int) -> float:
        return self._overhead + size / self._rate

    def observe(self, size: int, seconds: float) -> None:
        self._observed += 1
        weight = 0.3 if self._observed > 3 else 0.6
        if size >= 8 * 2**20:
            rate = size / max(seconds - self._overhead, 1e-3)
            self._rate = (1 - weight) * self._rate + weight * rate
        else:
            self._overhead = (1 - weight) * self._overhead + weight * seconds
