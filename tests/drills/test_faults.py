"""Drill 1 — faults: transient failures on every kind of request, driven to completion by the
trigger's retries; judged against a fault-free run of the same jobs (reduced size)."""

from __future__ import annotations

import pytest

from drills import faults


@pytest.mark.slow
def test_faults_drill_loses_nothing() -> None:
    report = faults.run("ci")
    assert report.problems == []
    figures = report.figures
    assert figures["committedExactlyOnce"] == figures["jobs"]
    assert figures["redeliveries"] > 0  # outages outlasted the function's retries: the trigger's retries finished
    assert {"503", "500", "reset", "slow", "throttle", "reset_body", "corrupt"} <= set(figures["injected"]["oss"])
    assert {"503", "reset", "slow", "throttle", "throttle_user"} <= set(figures["injected"]["mps"])
    assert {"oss-5xx", "oss-network", "mps-5xx", "mps-network", "mps-throttling"} <= set(figures["retries"])
    assert set(report.lost.values()) == {0}
