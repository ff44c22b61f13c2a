"""Fixtures for the drills: a fresh local cloud per test (the emulators verify the credentials)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from drills.common import Cloud, local_cloud


@pytest.fixture
def cloud() -> Iterator[Cloud]:
    with local_cloud() as env:
        yield env
