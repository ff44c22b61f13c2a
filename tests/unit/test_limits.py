"""The MPS rate cap, retries with backoff, and the time budget — on a fake clock."""

from __future__ import annotations

import threading
import time

import pytest

from iproduction import retry
from iproduction.budget import CopyTimer, Deadline
from iproduction.errors import BudgetExceededError
from iproduction.ratelimit import RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def test_never_more_than_the_cap_in_any_one_second_window() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10, margin=0.0, clock=clock, sleep=clock.sleep)
    times = []
    for _ in range(95):
        limiter.acquire()
        times.append(clock.now)
    for i, start in enumerate(times):
        assert sum(start <= t < start + 1.0 for t in times[i:]) <= 10
    assert times[-1] == pytest.approx(9.4)  # paced 0.1 s apart, not let through ten at a time


def test_fractional_rate_and_deadline() -> None:
    clock = FakeClock()
    limiter = RateLimiter(0.5, margin=0.0, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    limiter.acquire()
    assert clock.now == pytest.approx(2.0)
    with pytest.raises(BudgetExceededError):
        limiter.acquire(Deadline(1.0, clock=clock))


def test_rate_cap_is_shared_by_threads() -> None:
    limiter = RateLimiter(20, margin=0.0)
    stamps: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(3):
            limiter.acquire()
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stamps.sort()
    assert len(stamps) == 30
    assert all(sum(s <= t < s + 0.999 for t in stamps) <= 20 for s in stamps)


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


def test_waiting_threads_wake_once_for_their_own_turn() -> None:
    """No thundering herd: with many threads waiting, each wakes for its own slot instead of all of
    them waking at every slot to race for it (the winner then waits for the GIL behind the losers,
    and its call leaves late: bunched calls at the server)."""
    sleeps = []
    lock = threading.Lock()

    def counted_sleep(seconds: float) -> None:
        with lock:
            sleeps.append(seconds)
        time.sleep(seconds)

    limiter = RateLimiter(50, margin=0.0, sleep=counted_sleep)
    threads = [threading.Thread(target=lambda: [limiter.acquire() for _ in range(3)]) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(sleeps) <= 36 + 6  # about one sleep per call that had to wait
