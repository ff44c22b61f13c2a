"""Drill 2 — crash points: an invocation stopped at every step; the next one converges (reduced size)."""

from __future__ import annotations

import pytest

from drills import crashes


@pytest.mark.slow
def test_every_crash_point_converges_without_copying_intact_files_again() -> None:
    report = crashes.run("ci")
    assert report.problems == []
    figures = report.figures
    assert figures["crashPoints"] == figures["requestsInAJobRun"] + len(crashes.named_crashes(False))
    assert figures["crashPointsByHow"]["killed"] == 4
    assert figures["intactFilesAtRecovery"] > 0  # the "copied again" check had something to bite on
    assert figures["intactFilesCopiedAgain"] == 0
    assert figures["manifestsWithBadFiles"] == 0
    assert figures["uploadsLeftByKilledInstances"] <= 1
