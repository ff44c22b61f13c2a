"""A client-side cap on calls per second, shared by every thread of the instance."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from .budget import Deadline
from .errors import BudgetExceededError


class RateLimiter:
    """At most ``max_per_second`` calls in any sliding one-second window.

    A sliding log (not a token bucket, whose burst allows twice the rate across a refill), with
    a small margin so that a server counting arrivals never sees more than the cap.
    """

    def __init__(self, max_per_second: float, margin: float = 0.02,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if max_per_second <= 0:
            raise ValueError("max_per_second must be positive")
        if max_per_second >= 1:
            self._calls, self._period = math.floor(max_per_second), 1.0
        else:
            self._calls, self._period = 1, 1.0 / max_per_second
        self._period += margin
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._sent: deque[float] = deque()

    def acquire(self, deadline: Deadline | None = None) -> float:
        """Block until a call may be made; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                while self._sent and now - self._sent[0] >= self._period:
                    self._sent.popleft()
                if len(self._sent) < self._calls:
                    self._sent.append(now)
                    return waited
                wait = self._sent[0] + self._period - now
            if deadline is not None and deadline.remaining() < wait:
                raise BudgetExceededError("time budget exhausted waiting for the MPS rate cap")
            self._sleep(wait)
            waited += wait
