"""Drill 3 — duplicates: one job delivered several times at once, by processes, threads and
overlapping events through different trigger formats (reduced size)."""

from __future__ import annotations

import pytest

from drills import duplicates


@pytest.mark.slow
def test_duplicates_give_one_manifest_and_no_error() -> None:
    report = duplicates.run("ci")
    assert report.problems == []
    figures = report.figures
    assert figures["duplicatesSent"] >= figures["jobs"]
    assert set(figures["deliveriesByMode"]) == {"processes", "threads", "overlapping"}
    assert figures["outcomes"].get("error", 0) == 0
    assert figures["outcomes"]["committed"] == figures["jobs"]
    assert figures["manifestPutsRefused409"] > 0  # real races on the manifest happened
