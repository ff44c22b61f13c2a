"""Drill 7 — instances that share the account's MPS quota without a coordinator: four instances, each
allowed half the quota, collect their jobs together with few throttled calls and in little more than
the quota's time (the reduced size: 1,000 jobs, 25 calls/s each against 50 for the account; the time
allowed is looser than the full size's, on a CI machine shared with the other tests)."""

from __future__ import annotations

from drills import quota
from drills.common import DrillReport, Ledger


def test_instances_over_the_accounts_quota_share_it_with_few_throttled_calls_and_nothing_lost() -> None:
    report = DrillReport("quota", "ci")
    figures = quota.one_run("ci", True, report, Ledger())
    assert report.problems == []
    assert figures["jobsCommitted"] == quota.SIZES["ci"]["jobs"]
    assert figures["throttledShare"] < quota.MAX_THROTTLED_SHARE
    assert figures["seconds"] <= quota.SIZES["ci"]["slowdown"] * figures["idealSeconds"]
    assert figures["mpsMaxAcceptedInOneSecond"] <= quota.SIZES["ci"]["quota"]
