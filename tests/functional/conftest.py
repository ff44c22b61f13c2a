"""Fixtures for functional tests: a fresh local cloud per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.functional.harness import Cloud, started_cloud


@pytest.fixture
def cloud() -> Iterator[Cloud]:
    with started_cloud() as env:
        yield env
