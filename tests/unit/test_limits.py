"""The MPS rate cap, OSS connection slots, retries with backoff and the time budget: on a fake clock, or on
a real loop."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable

import pytest

from iproduction import retry
from iproduction.budget import CopyTimer, Deadline
from iproduction.errors import BudgetExceededError
from iproduction.oss import Slots
from iproduction.ratelimit import RateLimiter
from localcloud.mps.stats import max_in_window


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def run_calls(limiter: RateLimiter, tasks: int, calls: int,
              hold: Callable[[], Awaitable[None]]) -> list[tuple[float, float]]:
    """``calls`` calls from each of ``tasks`` tasks; (let through, answered) of each, as seen inside
    the slot (so within the limiter's own instants)."""
    spans: list[tuple[float, float]] = []

    async def worker() -> None:
        for _ in range(calls):
            async with limiter.slot():
                went = time.monotonic()
                await hold()
                answered = time.monotonic()
            spans.append((went, answered))

    async def main() -> None:
        await asyncio.gather(*(worker() for _ in range(tasks)))

    asyncio.run(main())
    return spans


def holding_at(spans: list[tuple[float, float]], window: float) -> int:
    """The most calls any let-through instant saw still holding a slot (answered less than a window ago)."""
    return max(sum(1 for went, answered in spans if went <= instant < answered + window) for instant, _ in spans)


def test_no_server_window_sees_more_than_the_cap_whatever_the_delays() -> None:
    """Each call reaches the 'server' at a random instant between being let through and answered:
    the most arrivals in any window stays at the cap (judged like the MPS emulator judges it)."""
    window, cap = 0.25, 6
    limiter = RateLimiter(cap, window=window)
    arrivals: list[float] = []
    rng = random.Random(7)

    async def hold() -> None:
        await asyncio.sleep(rng.uniform(0, 0.03))
        arrivals.append(time.monotonic())
        await asyncio.sleep(rng.uniform(0, 0.03))

    spans = run_calls(limiter, tasks=10, calls=4, hold=hold)
    assert len(arrivals) == len(spans) == 40
    assert holding_at(spans, window) <= cap
    assert max_in_window(arrivals, window) <= cap


def test_a_burst_of_the_cap_goes_at_once_and_the_next_call_waits_a_window_after_an_answer() -> None:
    window, cap = 0.3, 5

    async def main() -> None:
        limiter = RateLimiter(cap, window=window)
        inside = 0
        all_in = asyncio.Event()
        spans: list[tuple[float, float]] = []

        async def call() -> None:
            nonlocal inside
            async with limiter.slot():
                went = time.monotonic()
                inside += 1
                if inside == cap:
                    all_in.set()
                await asyncio.wait_for(all_in.wait(), 5)  # all five held at once: no pacing
                spans.append((went, time.monotonic()))

        await asyncio.gather(*(call() for _ in range(cap)))
        first_answer = min(answered for _, answered in spans)
        async with limiter.slot():
            assert time.monotonic() >= first_answer + window

    asyncio.run(main())


def test_fractional_rate_and_deadline() -> None:
    async def main() -> None:
        clock = FakeClock()
        limiter = RateLimiter(0.5, clock=clock)
        async with limiter.slot() as waited:
            assert waited == 0.0
        with pytest.raises(BudgetExceededError):  # the next slot frees 2 s after that answer
            await limiter.acquire(Deadline(1.0, clock=clock))
        clock.now = 2.0
        async with limiter.slot():
            pass

    asyncio.run(main())


def test_a_call_in_flight_holds_its_slot_and_the_budget_is_not_overstayed() -> None:
    async def main() -> None:
        limiter = RateLimiter(1, window=10.0)
        await limiter.acquire()  # never answered yet
        with pytest.raises(BudgetExceededError):  # a slot frees a window after an answer: > 0.5 s away
            await limiter.acquire(Deadline(0.5))
        limiter.release()
        with pytest.raises(BudgetExceededError):
            await limiter.acquire(Deadline(0.5))

    asyncio.run(main())


def test_waiting_callers_wake_once_for_their_own_turn() -> None:
    """No thundering herd: only the first waiter waits for the clock; the others sleep until it has gone."""
    limiter = RateLimiter(4, window=0.05)
    spans = run_calls(limiter, tasks=12, calls=2, hold=lambda: asyncio.sleep(0.002))
    assert len(spans) == 24
    assert holding_at(spans, 0.05) <= 4
    assert limiter.wakeups <= 3 * 24  # a few per call that had to wait, not one per waiter per slot


def test_the_calls_a_freed_window_allows_all_go_in_one_turn_of_the_loop() -> None:
    """Waking each waiter from the one before would let one call through per turn of the loop, and a busy
    loop's turn is long: a window's burst would trickle out. The limiter wakes all it lets go at once."""
    cap, window = 20, 0.1

    async def main() -> list[int]:
        limiter = RateLimiter(cap, window=window)
        turns = 0

        def tick() -> None:  # counts the loop's turns
            nonlocal turns
            turns += 1
            loop.call_soon(tick)

        loop = asyncio.get_running_loop()
        loop.call_soon(tick)
        for _ in range(cap):  # a first burst, answered at once: the next window frees all its slots together
            await limiter.acquire()
            limiter.release()
        went: list[int] = []

        async def call() -> None:
            async with limiter.slot():
                went.append(turns)

        await asyncio.gather(*(call() for _ in range(cap)))
        return went

    went = asyncio.run(main())
    assert len(went) == cap
    assert max(went) - min(went) <= 1


def test_a_slot_given_back_unused_is_free_at_once() -> None:
    async def main() -> None:
        clock = FakeClock()
        limiter = RateLimiter(1, clock=clock)
        await limiter.acquire()
        limiter.release(used=False)  # the call was never sent
        assert await limiter.acquire(Deadline(0.1, clock=clock)) == 0.0
        limiter.release()
        with pytest.raises(BudgetExceededError):  # that one was sent: its window runs
            await limiter.acquire(Deadline(0.5, clock=clock))

    asyncio.run(main())


def test_connection_slots_are_handed_out_by_priority_then_in_order() -> None:
    async def main() -> list[str]:
        slots = Slots(1)
        await slots.acquire(0)
        went: list[str] = []

        async def take(name: str, priority: int) -> None:
            await slots.acquire(priority)
            went.append(name)
            await asyncio.sleep(0)
            slots.release()

        tasks = [asyncio.ensure_future(take(name, priority))
                 for name, priority in (("copy1", 1), ("lookup1", 0), ("copy2", 1), ("lookup2", 0))]
        await asyncio.sleep(0)
        slots.release()
        await asyncio.gather(*tasks)
        assert slots.free == 1
        return went

    assert asyncio.run(main()) == ["lookup1", "lookup2", "copy1", "copy2"]


def test_a_slot_handed_to_a_waiter_cancelled_meanwhile_passes_on_and_none_is_lost() -> None:
    async def main() -> None:
        slots = Slots(1)
        await slots.acquire(0)
        first = asyncio.ensure_future(slots.acquire(0))
        second = asyncio.ensure_future(slots.acquire(1))
        gone = asyncio.ensure_future(slots.acquire(1))
        await asyncio.sleep(0)
        gone.cancel()  # cancelled while waiting: it leaves the queue
        await asyncio.sleep(0)
        slots.release()  # handed to ``first``, which is cancelled before it runs: the slot goes on
        first.cancel()
        for _ in range(3):
            await asyncio.sleep(0)
        assert first.cancelled() and second.done() and gone.cancelled()
        slots.release()
        assert slots.free == 1 and not any(slots.queues)
        await asyncio.wait_for(slots.acquire(1), 0.1)  # the fast path again

    asyncio.run(main())


class Flaky(Exception):
    pass


def test_retry_transient_then_succeed_honouring_retry_after() -> None:
    waits: list[float] = []
    calls = iter([Flaky(), Flaky(), "ok"])

    async def fn() -> str:
        value = next(calls)
        if isinstance(value, Exception):
            raise value
        return value

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    stats = retry.RetryStats()
    result = asyncio.run(retry.run(fn, lambda e: retry.Verdict(True, 2.0, "throttling"), deadline=None,
                                   policy=retry.RetryPolicy(attempts=5, base=0.01, cap=0.02), stats=stats,
                                   sleep=sleep))
    assert result == "ok" and waits == [2.0, 2.0] and stats.snapshot() == {"throttling": 2}


def test_retry_never_retries_what_is_not_transient_and_stops_at_the_deadline() -> None:
    attempts = []

    async def fn() -> None:
        attempts.append(1)
        raise Flaky

    async def no_sleep(seconds: float) -> None:
        return None

    with pytest.raises(Flaky):
        asyncio.run(retry.run(fn, lambda e: retry.Verdict(False), deadline=None, policy=retry.RetryPolicy(),
                              sleep=no_sleep))
    assert len(attempts) == 1
    clock = FakeClock()
    with pytest.raises(Flaky):
        asyncio.run(retry.run(fn, lambda e: retry.Verdict(True, 10.0), deadline=Deadline(5, clock=clock),
                              policy=retry.RetryPolicy(), sleep=clock.sleep))
    assert len(attempts) == 2
    with pytest.raises(Flaky):
        asyncio.run(retry.run(fn, lambda e: retry.Verdict(True), deadline=None,
                              policy=retry.RetryPolicy(attempts=4, base=0), sleep=no_sleep))
    assert len(attempts) == 6


def test_full_jitter_bounds() -> None:
    policy = retry.RetryPolicy(base=0.1, cap=1.0)
    assert all(0 <= policy.delay(n) <= min(1.0, 0.1 * 2**n) for n in range(10) for _ in range(20))


def test_deadline_from_context_caps_requests_and_the_copy_timer() -> None:
    class Function:
        timeout = 60

    class Context:
        function = Function()

    clock = FakeClock()
    deadline = Deadline.from_context(Context(), started=0.0, clock=clock)
    assert deadline.remaining() == pytest.approx(54.0)
    assert deadline.cap(10.0) == 10.0
    clock.now = 50.0
    assert deadline.cap(10.0) == pytest.approx(4.0)  # a request's timeout never passes the deadline
    assert deadline.grace().remaining() == pytest.approx(7.0)  # the commit may use half the reserve
    assert deadline.grace(0.75).remaining() == pytest.approx(8.5)  # its check once more, a quarter left
    clock.now = 54.5
    with pytest.raises(BudgetExceededError, match="time budget"):
        deadline.check(0.1, "copy")
    with pytest.raises(BudgetExceededError, match="time budget"):
        deadline.cap(10.0)
    timer = CopyTimer(rate=100.0, overhead=1.0)
    assert timer.estimate(100) == pytest.approx(2.0)
    for _ in range(10):
        timer.observe(2**30, 2.0)
    assert timer.estimate(2**30) < 3.0
