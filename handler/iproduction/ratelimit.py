"""The MPS rate cap: at most so many calls per window as the server counts them, adapting to throttling
(docs/architecture.md, 'Rate cap')."""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress

from .budget import Deadline
from .errors import BudgetExceededError


class AdaptiveRate:
    """How many calls one instance may make per window now: additive increase, multiplicative decrease
    on ``Throttling`` answers, calls spread at random gaps for ``calm`` seconds after a cut
    (docs/architecture.md, 'Rate cap'). Pure: the caller passes ``now`` and serialises calls."""

    quiet = 1.0  # seconds: the throttled answers of one burst are one signal
    calm = 60.0  # seconds after a cut during which calls are spread

    def __init__(self, max_calls: int, *, increase: float | None = None, decrease: float = 0.7,
                 adaptive: bool = True) -> None:
        increase = max(1.0, max_calls / 20) if increase is None else increase
        if max_calls < 1 or not 0 < decrease < 1 or increase <= 0:
            raise ValueError("max_calls must be at least 1, decrease in (0, 1) and increase positive")
        self.max_calls = max_calls
        self.increase = increase
        self.decrease = decrease
        self.adaptive = adaptive  # False: throttling is ignored, the rate stays at max_calls
        self._base = float(max_calls)  # the rate just after the last cut
        self._cut_at: float | None = None  # when that was (None: never cut)
        self.cuts = 0

    def limit(self, now: float) -> int:
        """The calls allowed per window at ``now``."""
        if self._cut_at is None:
            return self.max_calls
        grown = self._base + self.increase * max(0.0, now - self._cut_at)
        return min(self.max_calls, math.floor(grown))

    def spacing(self, now: float) -> float:
        """The least part of a window between two calls let through: 0 (a burst may go at once)
        unless the rate was cut less than ``calm`` seconds ago, else one call's share of the window."""
        if self._cut_at is None or now - self._cut_at >= self.calm:
            return 0.0
        return 1.0 / self.limit(now)

    def gap(self, now: float, draw: float) -> float:
        """The part of a window the next call must wait after one let through at ``now``: a random gap averaging
        :meth:`spacing` (``draw``: uniform in [0, 1))."""
        return self.spacing(now) * 2.0 * draw

    def throttled(self, now: float) -> bool:
        """A throttled answer came back at ``now``: cut the rate (True), unless cut within ``quiet`` or not adaptive."""
        if not self.adaptive or (self._cut_at is not None and now - self._cut_at < self.quiet):
            return False
        self._base = max(1.0, self.limit(now) * self.decrease)  # never below one call
        self._cut_at = now
        self.cuts += 1
        return True


class RateLimiter:
    """At most ``max_per_second`` calls in any one-second window of the server's, first come first served;
    the cap adapts to what :meth:`throttled` reports (``adaptive=False`` keeps it fixed)."""

    def __init__(self, max_per_second: float, window: float = 1.0,
                 clock: Callable[[], float] = time.monotonic, adaptive: bool = True) -> None:
        if max_per_second <= 0:
            raise ValueError("max_per_second must be positive")
        if max_per_second >= 1:
            calls, self._window = math.floor(max_per_second), window
        else:  # one call per stretched window: already the floor, nothing to adapt
            calls, self._window = 1, window / max_per_second
        self.rate = AdaptiveRate(calls, adaptive=adaptive)
        self._clock = clock
        self._answered: deque[float] = deque()  # when the calls of the last window were answered
        self._in_flight = 0
        self._paced_until = 0.0  # no call before this (after a cut, see _let_through)
        self._random = random.Random()
        self._queue: deque[asyncio.Event] = deque()  # waiting callers, first come first served
        self.wakeups = 0  # times a waiting caller woke up (one per turn, not one per slot per caller)

    @asynccontextmanager
    async def slot(self, deadline: Deadline | None = None) -> AsyncIterator[float]:
        """Hold a slot for one call until the block ends (the answer is in); yields the seconds waited."""
        waited = await self.acquire(deadline)
        try:
            yield waited
        finally:
            self.release()

    async def acquire(self, deadline: Deadline | None = None) -> float:
        """Wait for a slot (or raise ``BudgetExceededError``); returns the seconds waited. Pair with :meth:`release`."""
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
        except BaseException:
            self._queue.remove(me)
            self._wake()
            raise
        self._queue.remove(me)
        self._let_through(self._clock())
        self._wake()
        return self._clock() - started

    def release(self, used: bool = True) -> None:
        """The call's answer is in (or it failed): its slot frees one window from now. ``used=False``:
        the call was never sent, and the slot is free again at once."""
        self._in_flight -= 1
        if used:
            self._answered.append(self._clock())
        self._wake()

    def throttled(self) -> bool:
        """MPS answered a call with ``Throttling``: cut the cap (True if it was cut now)."""
        return self.rate.throttled(self._clock())

    def limit(self) -> int:
        """The cap now (calls per window)."""
        return self.rate.limit(self._clock())

    def _wake(self) -> None:
        """Wake the first waiter, and as many more as there are free slots: woken in order, they all
        go in one turn of the loop, where waking each from the one before would take a turn each."""
        now = self._clock()
        self._free_at(now)  # forgets the answers older than a window
        free = self.rate.limit(now) - len(self._answered) - self._in_flight
        for waiter in itertools.islice(self._queue, max(1, free)):
            waiter.set()

    def _let_through(self, now: float) -> None:
        """A call goes; after a cut, the next waits a random gap (:meth:`AdaptiveRate.gap`)."""
        self._in_flight += 1
        self._paced_until = now + self.rate.gap(now, self._random.random()) * self._window

    def _wait_for_turn(self, me: asyncio.Event, deadline: Deadline | None) -> float | None:
        """0.0 if ``me`` may go now; else how long to wait (None: until woken)."""
        now = self._clock()
        remaining = None if deadline is None else deadline.remaining()
        if self._queue[0] is not me:  # not our turn: the caller ahead of us wakes us
            if remaining is not None and remaining <= 0:
                raise BudgetExceededError("time budget exhausted waiting for the MPS rate cap")
            return remaining
        free_at, known = self._free_at(now)
        if free_at <= now:
            return 0.0
        if remaining is not None and remaining < free_at - now:
            raise BudgetExceededError("time budget exhausted waiting for the MPS rate cap")
        return free_at - now if known else remaining

    def _free_at(self, now: float) -> tuple[float, bool]:
        """When the next call may go (``now`` if it may), and whether that instant is known (False: every slot
        is in flight, and frees no sooner than a window after the next answer)."""
        while self._answered and self._answered[0] + self._window <= now:
            self._answered.popleft()
        paced = max(now, self._paced_until)
        if len(self._answered) + self._in_flight < self.rate.limit(now):
            return paced, True
        if self._answered:
            return max(paced, self._answered[0] + self._window), True
        return max(paced, now + self._window), False
