"""A client-side cap on calls per second, awaited by every job of the instance, exact as the server counts.

The server sees a call at some instant between the moment the client let it go and the moment its
answer came back, and nothing on the client can say which: the request may wait for the GIL, a
connection or the network. So each call holds its slot from the moment it is let through until its
answer has arrived, and for one window after that. If ``n + 1`` calls reached the server inside one
window ``(a, a + w]``, the one let through last left at or before ``a + w``, while each of the others
reached the server after ``a`` and so was answered after it: all ``n`` still held their slots when
the last one was let through, and it could not have been. The cap therefore holds at the server
whatever the delays on the way, without pacing calls or keeping a margin: a burst of the cap goes
out at once, and the next one a window after its answers.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress

from .budget import Deadline
from .errors import BudgetExceededError


class RateLimiter:
    """At most ``max_per_second`` calls in any one-second window of the server's (``window`` seconds
    per ``max_per_second`` calls; below one call per second, one call per ``1 / max_per_second`` s).
    Awaited on the instance's event loop; callers go first come, first served."""

    def __init__(self, max_per_second: float, window: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_per_second <= 0:
            raise ValueError("max_per_second must be positive")
        if max_per_second >= 1:
            self._calls, self._window = math.floor(max_per_second), window
        else:
            self._calls, self._window = 1, window / max_per_second
        self._clock = clock
        self._answered: deque[float] = deque()  # when the calls of the last window were answered
        self._in_flight = 0
        self._queue: deque[asyncio.Event] = deque()  # waiting callers, first come first served
        self.wakeups = 0  # times a waiting caller woke up

    @asynccontextmanager
    async def slot(self, deadline: Deadline | None = None) -> AsyncIterator[float]:
        """Hold a slot for one call, from now until the block ends (the answer is in); yields the
        seconds waited. A block left by an exception before the call went out still counts it."""
        waited = await self.acquire(deadline)
        try:
            yield waited
        finally:
            self.release()

    async def acquire(self, deadline: Deadline | None = None) -> float:
        """Wait until a call may go; returns the seconds waited. Raises ``BudgetExceededError`` when
        the time budget ends first. Pair with :meth:`release` once the call's answer is in."""
        started = self._clock()
        me = asyncio.Event()
        self._queue.append(me)
        try:
            while True:
                wait = self._wait_for_turn(me, deadline)
                if wait == 0.0:
                    break
                me.clear()
                with suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(me.wait(), wait)
                self.wakeups += 1
        finally:
            self._queue.remove(me)
            if self._queue:
                self._queue[0].set()
        self._in_flight += 1
        return self._clock() - started

    def release(self, used: bool = True) -> None:
        """The call's answer is in (or it failed): its slot frees one window from now. ``used=False``:
        the call was never sent, and the slot is free again at once."""
        self._in_flight -= 1
        if used:
            self._answered.append(self._clock())
        if self._queue:
            self._queue[0].set()

    def _wait_for_turn(self, me: asyncio.Event, deadline: Deadline | None) -> float | None:
        """0.0 if ``me`` may go now; else how long to wait (None: until woken)."""
        now = self._clock()
        remaining = None if deadline is None else deadline.remaining()
        if self._queue[0] is not me:  # not our turn: the caller ahead of us wakes us
            if remaining is not None and remaining <= 0:
                raise BudgetExceededError("time budget exhausted waiting for the MPS rate cap")
            return remaining
        free_at = self._free_at(now)
        if free_at <= now:
            return 0.0
        if remaining is not None and remaining < free_at - now:
            raise BudgetExceededError("time budget exhausted waiting for the MPS rate cap")
        return free_at - now if self._answered else remaining

    def _free_at(self, now: float) -> float:
        """When a slot is free: ``now`` if one is; else the earliest it can free, when the oldest
        answer's window ends (a call still in flight frees its slot no sooner than one window from now)."""
        while self._answered and self._answered[0] + self._window <= now:
            self._answered.popleft()
        if len(self._answered) + self._in_flight < self._calls:
            return now
        return self._answered[0] + self._window if self._answered else now + self._window
