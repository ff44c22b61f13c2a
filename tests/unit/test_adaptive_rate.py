"""The adaptive MPS rate (AIMD): its fall on throttling, its rise without, and the limiter that keeps it."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from iproduction import retry
from iproduction.budget import Deadline
from iproduction.credentials import Credentials, CredentialsSource
from iproduction.errors import BudgetExceededError
from iproduction.mps import MPSClient, MPSServerError
from iproduction.ratelimit import AdaptiveRate, RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def goes_now(limiter: RateLimiter, clock: FakeClock) -> bool:
    """Whether a call may go at the clock's instant (it then holds its slot)."""
    try:
        asyncio.run(limiter.acquire(Deadline(1e-6, clock=clock)))
    except BudgetExceededError:
        return False
    return True


def test_a_lone_instance_never_throttled_keeps_its_full_rate() -> None:
    rate = AdaptiveRate(50)
    assert {rate.limit(t / 10) for t in range(0, 36_000, 7)} == {50}
    assert rate.cuts == 0


def test_a_throttled_answer_cuts_the_rate_by_thirty_percent() -> None:
    rate = AdaptiveRate(50)
    assert rate.throttled(100.0)
    assert rate.limit(100.0) == 35
    assert rate.cuts == 1
    halving = AdaptiveRate(50, decrease=0.5)
    halving.throttled(100.0)
    assert halving.limit(100.0) == 25


def test_at_most_one_cut_per_second_the_throttled_answers_of_one_burst_are_one_signal() -> None:
    rate = AdaptiveRate(50, increase=1.0)
    assert rate.throttled(100.0)
    assert [rate.throttled(100.0 + dt) for dt in (0.0, 0.01, 0.5, 0.999)] == [False] * 4
    assert rate.limit(100.999) == 35 and rate.cuts == 1
    assert rate.throttled(101.0)  # a second later: a new signal
    assert rate.limit(101.0) == 25  # 70 % of 36 (it had grown by one in that second)
    assert rate.cuts == 2


def test_the_rate_never_falls_below_one_call_a_second() -> None:
    rate = AdaptiveRate(50, increase=0.01)
    for second in range(20):
        rate.throttled(float(second))
        assert rate.limit(float(second)) >= 1
    assert rate.limit(19.0) == 1
    assert rate.throttled(20.0) and rate.limit(20.0) == 1


def test_without_throttling_the_rate_climbs_back_a_twentieth_of_the_maximum_a_second_to_the_maximum() -> None:
    rate = AdaptiveRate(50)
    rate.throttled(100.0)
    assert [rate.limit(100.0 + s) for s in range(0, 8)] == [35, 37, 40, 42, 45, 47, 50, 50]
    assert rate.limit(100.5) == 36  # whole calls only
    assert rate.limit(10_000.0) == 50  # never past the maximum
    slow = AdaptiveRate(10)  # at least one call a second
    slow.throttled(0.0)
    assert [slow.limit(float(s)) for s in range(5)] == [7, 8, 9, 10, 10]


def test_after_a_cut_calls_are_spread_over_the_window_until_a_calm_minute() -> None:
    rate = AdaptiveRate(50)
    assert rate.spacing(0.0) == 0.0  # never throttled: a burst may go at once
    rate.throttled(10.0)
    assert rate.spacing(10.0) == pytest.approx(1 / 35)
    assert rate.spacing(30.0) == pytest.approx(1 / 50)  # back at the maximum, still spread
    assert rate.spacing(70.0) == 0.0  # a minute without throttling: bursts again


def test_the_gap_after_a_call_is_random_and_averages_one_calls_share() -> None:
    rate = AdaptiveRate(50)
    assert rate.gap(0.0, 0.99) == 0.0  # never throttled: no gap
    rate.throttled(10.0)
    assert [rate.gap(10.0, draw) for draw in (0.0, 0.5, 0.75)] == pytest.approx([0.0, 1 / 35, 1.5 / 35])


def test_adaptation_switched_off_ignores_throttling() -> None:
    rate = AdaptiveRate(50, adaptive=False)
    assert not rate.throttled(1.0)
    assert rate.limit(1.0) == 50 and rate.cuts == 0


def test_bad_settings_are_refused() -> None:
    for kwargs in ({"max_calls": 0}, {"max_calls": 5, "decrease": 1.0}, {"max_calls": 5, "increase": 0.0}):
        with pytest.raises(ValueError):
            AdaptiveRate(**kwargs)  # type: ignore[arg-type]


def share_quota(instances: int, max_calls: int, quota: int, seconds: int, adaptive: bool = True
                ) -> tuple[int, int, list[AdaptiveRate]]:
    """Instances sending their whole rate each second to a server that accepts ``quota`` calls a
    second (taken from the instances in turn) and throttles the rest; (accepted, throttled, rates)."""
    rates = [AdaptiveRate(max_calls, adaptive=adaptive) for _ in range(instances)]
    accepted = throttled = 0
    for second in range(seconds):
        now = float(second)
        wanted = [rate.limit(now) for rate in rates]
        room = quota
        refused = [0] * instances
        for turn in range(max(wanted)):  # interleaved, as calls from several instances arrive
            for i in range(instances):
                if turn < wanted[i]:
                    if room:
                        room -= 1
                    else:
                        refused[i] += 1
        accepted += sum(wanted) - sum(refused)
        throttled += sum(refused)
        for rate, count in zip(rates, refused, strict=True):
            if count:
                rate.throttled(now + 0.05)  # the answers come back just after the burst
    return accepted, throttled, rates


def test_instances_sharing_a_quota_converge_under_it_with_few_throttled_calls() -> None:
    """Four instances of 50 calls/s against 100/s for the account: after the first second, each
    cuts its rate and then they swing just under the quota; in a minute few of their calls are throttled,
    and the account's quota is mostly used."""
    accepted, throttled, rates = share_quota(instances=4, max_calls=50, quota=100, seconds=60)
    assert throttled / (accepted + throttled) < 0.10
    assert accepted >= 0.75 * 100 * 60
    assert sum(rate.limit(60.0) for rate in rates) <= 100 + 4
    shares = [rate.limit(60.0) for rate in rates]
    assert max(shares) - min(shares) <= 13  # near-equal shares, whatever the first second did
    # Without adaptation half of all calls are throttled, every second.
    accepted_fixed, throttled_fixed, _ = share_quota(instances=4, max_calls=50, quota=100, seconds=60, adaptive=False)
    assert throttled_fixed / (accepted_fixed + throttled_fixed) == pytest.approx(0.5)


# -- the limiter keeps the adaptive cap --------------------------------------------------------------
def test_the_limiter_lets_through_only_the_cut_rate_spread_over_the_window() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10, clock=clock)
    for _ in range(10):  # never throttled: a burst of the cap at once
        assert goes_now(limiter, clock)
        limiter.release()
    assert limiter.throttled()
    assert not limiter.throttled()  # the same burst
    assert limiter.limit() == 7
    clock.now = 1.0  # the burst's window has ended; the cap has grown back by one
    went = []
    while clock.now < 1.999:
        if goes_now(limiter, clock):
            went.append(clock.now)
        clock.now += 0.001
    assert 2 <= len(went) <= 8  # never more than the cap in the window
    assert went[0] == 1.0 and went[1] > 1.0  # spread out (at random gaps), not a burst
    for _ in went:
        limiter.release()
    clock.now = 10.0
    assert limiter.limit() == 10  # back to the maximum, never past it
    clock.now = 100.0
    assert limiter.limit() == 10


def test_a_limiter_not_adaptive_keeps_its_cap() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10, clock=clock, adaptive=False)
    assert not limiter.throttled()
    assert [goes_now(limiter, clock) for _ in range(10)] == [True] * 10


def test_a_throttling_answer_cuts_the_clients_rate_and_a_server_error_does_not() -> None:
    answers = [httpx.Response(503, json={"Code": "ServiceUnavailable"}),
               httpx.Response(400, json={"Code": "Throttling", "RequestId": "r0"}),
               httpx.Response(400, json={"Code": "Throttling.User", "RequestId": "r1"}),
               httpx.Response(200, json={"RequestId": "r", "JobId": "j", "State": "Analysing"})]
    limiter = RateLimiter(40)
    client = MPSClient("http://mps.example", CredentialsSource(Credentials("ak", "sk", "token")), limiter=limiter,
                       policy=retry.RetryPolicy(attempts=4, base=0.001, cap=0.001),
                       transport=httpx.MockTransport(lambda request: answers.pop(0)))
    assert asyncio.run(client.query_iproduction_job("j")).State == "Analysing"
    assert limiter.limit() == 28  # one cut: two throttled answers within a second are one signal
    assert limiter.rate.cuts == 1
    answers[:] = [httpx.Response(503, json={"Code": "ServiceUnavailable"})] * 4
    with pytest.raises(MPSServerError):
        asyncio.run(client.query_iproduction_job("j"))
    assert limiter.rate.cuts == 1
    asyncio.run(client.close())
