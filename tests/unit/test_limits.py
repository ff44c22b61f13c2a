"""The MPS rate cap, retries with backoff, and the time budget — on a fake clock."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

import pytest

from iproduction import retry
from iproduction.budget import CopyTimer, Deadline
from iproduction.errors import BudgetExceededError
from iproduction.ratelimit import RateLimiter
from localcloud.mps.stats import max_in_window


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def run_calls(limiter: RateLimiter, threads: int, calls: int, hold: Callable[[], None]) -> list[tuple[float, float]]:
    """``calls`` calls from each of ``threads`` threads; (let through, answered) of each, as seen
    inside the slot (so within the limiter's own instants)."""
    spans: list[tuple[float, float]] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(calls):
            with limiter.slot():
                went = time.monotonic()
                hold()
                answered = time.monotonic()
            with lock:
                spans.append((went, answered))

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
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
    lock = threading.Lock()
    rng = random.Random(7)

    def hold() -> None:
        time.sleep(rng.uniform(0, 0.03))
        with lock:
            arrivals.append(time.monotonic())
        time.sleep(rng.uniform(0, 0.03))

    spans = run_calls(limiter, threads=10, calls=4, hold=hold)
    assert len(arrivals) == len(spans) == 40
    assert holding_at(spans, window) <= cap
    assert max_in_window(arrivals, window) <= cap


def test_a_burst_of_the_cap_goes_at_once_and_the_next_call_waits_a_window_after_an_answer() -> None:
    window, cap = 0.3, 5
    limiter = RateLimiter(cap, window=window)
    started = threading.Barrier(cap, timeout=5)
    spans = run_calls(limiter, threads=cap, calls=1, hold=started.wait)  # all five held at once: no pacing
    assert len(spans) == cap
    first_answer = min(answered for _, answered in spans)
    with limiter.slot():
        assert time.monotonic() >= first_answer + window


def test_fractional_rate_and_deadline() -> None:
    clock = FakeClock()
    limiter = RateLimiter(0.5, clock=clock)
    with limiter.slot() as waited:
        assert waited == 0.0
    with pytest.raises(BudgetExceededError):  # the next slot frees 2 s after that answer
        limiter.acquire(Deadline(1.0, clock=clock))
    clock.now = 2.0
    with limiter.slot():
        pass


def test_a_call_in_flight_holds_its_slot_and_the_budget_is_not_overstayed() -> None:
    limiter = RateLimiter(1, window=10.0)
    limiter.acquire()  # never answered yet
    with pytest.raises(BudgetExceededError):  # a slot frees a window after an answer: > 0.5 s away
        limiter.acquire(Deadline(0.5))
    limiter.release()
    with pytest.raises(BudgetExceededError):
        limiter.acquire(Deadline(0.5))


def test_waiting_threads_wake_once_for_their_own_turn() -> None:
    """No thundering herd: only the first waiter waits for the clock; the others sleep until it has
    gone (a herd racing for each slot would delay the winner's call behind the losers on the GIL)."""
    limiter = RateLimiter(4, window=0.05)
    spans = run_calls(limiter, threads=12, calls=2, hold=lambda: time.sleep(0.002))
    assert len(spans) == 24
    assert holding_at(spans, 0.05) <= 4
    assert limiter.wakeups <= 3 * 24  # a few per call that had to wait, not one per waiter per slot


class Flaky(Exception):
    pass


def test_retry_transient_then_succeed_honouring_retry_after() -> None:
    waits: list[float] = []
    calls = iter([Flaky(), Flaky(), "ok"])

    def fn() -> str:
        value = next(calls)
        if isinstance(value, Exception):
            raise value
        return value

    stats = retry.RetryStats()
    result = retry.call(fn, lambda e: retry.Verdict(True, 2.0, "throttling"), deadline=None,
                        policy=retry.RetryPolicy(attempts=5, base=0.01, cap=0.02), stats=stats, sleep=waits.append)
    assert result == "ok" and waits == [2.0, 2.0] and stats.snapshot() == {"throttling": 2}


def test_retry_never_retries_what_is_not_transient_and_stops_at_the_deadline() -> None:
    attempts = []

    def fn() -> None:
        attempts.append(1)
        raise Flaky

    with pytest.raises(Flaky):
        retry.call(fn, lambda e: retry.Verdict(False), deadline=None, policy=retry.RetryPolicy(), sleep=lambda s: None)
    assert len(attempts) == 1
    clock = FakeClock()
    with pytest.raises(Flaky):
        retry.call(fn, lambda e: retry.Verdict(True, 10.0), deadline=Deadline(5, clock=clock),
                   policy=retry.RetryPolicy(), sleep=clock.sleep)
    assert len(attempts) == 2
    with pytest.raises(Flaky):
        retry.call(fn, lambda e: retry.Verdict(True), deadline=None, policy=retry.RetryPolicy(attempts=4, base=0),
                   sleep=lambda s: None)
    assert len(attempts) == 6


def test_full_jitter_bounds() -> None:
    policy = retry.RetryPolicy(base=0.1, cap=1.0)
    assert all(0 <= policy.delay(n) <= min(1.0, 0.1 * 2**n) for n in range(10) for _ in range(20))


def test_deadline_from_context_and_copy_timer() -> None:
    class Function:
        timeout = 60

    class Context:
        function = Function()

    clock = FakeClock()
    deadline = Deadline.from_context(Context(), started=0.0, clock=clock)
    assert deadline.remaining() == pytest.approx(54.0)
    clock.now = 54.5
    with pytest.raises(BudgetExceededError, match="time budget"):
        deadline.check(0.1, "copy")
    timer = CopyTimer(rate=100.0, overhead=1.0)
    assert timer.estimate(100) == pytest.approx(2.0)
    for _ in range(10):
        timer.observe(2**30, 2.0)
    assert timer.estimate(2**30) < 3.0


def test_a_slot_given_back_unused_is_free_at_once() -> None:
    clock = FakeClock()
    limiter = RateLimiter(1, clock=clock)
    limiter.acquire()
    limiter.release(used=False)  # the call was never sent
    assert limiter.acquire(Deadline(0.1, clock=clock)) == 0.0
    limiter.release()
    with pytest.raises(BudgetExceededError):  # that one was sent: its window runs
        limiter.acquire(Deadline(0.5, clock=clock))


def test_try_acquire_takes_a_free_slot_or_says_when_one_frees() -> None:
    clock = FakeClock()
    limiter = RateLimiter(2, clock=clock)
    assert limiter.try_acquire() == 0.0 and limiter.try_acquire() == 0.0
    assert limiter.try_acquire() == pytest.approx(1.0)  # both in flight: a window after an answer at the soonest
    clock.now = 0.25
    limiter.release()
    clock.now = 0.5
    assert limiter.try_acquire() == pytest.approx(0.75)  # that answer's window ends at 1.25
    with pytest.raises(BudgetExceededError):
        limiter.try_acquire(Deadline(0.5, clock=clock))
    clock.now = 1.25
    assert limiter.try_acquire() == 0.0
    limiter.release(used=False)
    assert limiter.try_acquire() == 0.0  # given back unused: free at once


def test_try_acquire_lets_blocked_callers_go_first() -> None:
    clock = FakeClock()
    limiter = RateLimiter(1, window=0.2, clock=clock)
    limiter.acquire()
    limiter.release()  # answered at 0: the slot frees at 0.2
    went = threading.Event()
    waiter = threading.Thread(target=lambda: (limiter.acquire(), went.set()))
    waiter.start()
    while not limiter._queue:
        time.sleep(0.001)
    clock.now = 0.2  # free by the clock, while the waiter still sleeps its 0.2 s
    assert limiter.try_acquire() > 0  # not taken from under it
    assert went.wait(5)
    assert limiter.try_acquire() > 0  # the waiter holds it
