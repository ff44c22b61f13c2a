"""The batch floor (scenario 3): the cap, then the waves of the jobs it lets through last."""

from __future__ import annotations

import pytest

from bench.same_region import batch_floor, single_wave_floor


def test_the_last_windows_files_take_their_waves_after_the_cap() -> None:
    # 200 jobs at 100 QPS: the last 100 queries leave after 1 s; their 400 files over 64 connections
    # are 7 waves of a HEAD and a copy, between the queries' round trip and the manifests'.
    assert batch_floor(200, 4, 100, 64, 0.02) == pytest.approx(1.0 + (2 + 2 * 7) * 0.02)
    assert single_wave_floor(200, 4, 100, 64, 0.02) == pytest.approx(1.10)
    # A last window that fits in one wave: the two agree but for the lookup's round trip the old one added.
    assert batch_floor(110, 4, 100, 64, 0.02) == pytest.approx(1.0 + 4 * 0.02)
    assert single_wave_floor(110, 4, 100, 64, 0.02) == pytest.approx(1.0 + 5 * 0.02)


def test_within_one_window_only_the_copy_waves_count() -> None:
    # 50 jobs × 4 files: 4 waves, plus the lookup, the query and the manifest (scenario 1's floor).
    assert batch_floor(50, 4, 100, 64, 0.02) == pytest.approx((3 + 2 * 4) * 0.02)
