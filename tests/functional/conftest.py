"""Fixtures for functional tests: a fresh local cloud per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from localcloud.mps import MpsEmulator
from localcloud.oss import OssEmulator
from tests.functional.harness import AK, SECRET, TOKEN, Cloud


@pytest.fixture
def cloud() -> Iterator[Cloud]:
    oss = OssEmulator(access_key_id=AK, access_key_secret=SECRET, security_token=TOKEN).start()
    mps = MpsEmulator(access_key_id=AK, access_key_secret=SECRET, security_token=TOKEN).start()
    env = Cloud(oss, mps)
    try:
        yield env
    finally:
        env.close()
        oss.stop()
        mps.stop()
