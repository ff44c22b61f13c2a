"""pytest fixtures for the MPS emulator: ``mps_emulator`` and ``mps_admin``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .admin import MpsAdmin
from .server import MpsEmulator

TEST_ACCESS_KEY_ID = "LTAI5tLocalTestKeyId0001"
TEST_ACCESS_KEY_SECRET = "local-test-secret-do-not-echo"
TEST_REGION = "cn-hangzhou"


@pytest.fixture
def mps_emulator() -> Iterator[MpsEmulator]:
    """A fresh MPS emulator on a free loopback port (``.url``, ``.access_key_id``, ``.access_key_secret``)."""
    emulator = MpsEmulator(access_key_id=TEST_ACCESS_KEY_ID, access_key_secret=TEST_ACCESS_KEY_SECRET,
                           region=TEST_REGION)
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def mps_admin(mps_emulator: MpsEmulator) -> Iterator[MpsAdmin]:
    """Admin client of ``mps_emulator``."""
    admin = MpsAdmin(mps_emulator.url)
    try:
        yield admin
    finally:
        admin.close()
