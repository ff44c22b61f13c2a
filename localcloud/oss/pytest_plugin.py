"""pytest fixtures for the OSS emulator (registered in tests/conftest.py).

* ``oss_emulator``: a fresh :class:`OssEmulator` on a free loopback port, stopped after the test.
* ``oss_admin``: an :class:`OssAdmin` bound to it.
* ``oss_emulator_session`` / ``oss_admin_session``: one emulator for the whole session (its state is
  shared: reset it with ``oss_admin_session.reset()`` and ``oss_admin_session.knobs(faults=[])``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from localcloud.oss import OssAdmin, OssEmulator


@pytest.fixture
def oss_emulator() -> Iterator[OssEmulator]:
    emulator = OssEmulator()
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def oss_admin(oss_emulator: OssEmulator) -> Iterator[OssAdmin]:
    admin = OssAdmin(oss_emulator.url)
    try:
        yield admin
    finally:
        admin.close()


@pytest.fixture(scope="session")
def oss_emulator_session() -> Iterator[OssEmulator]:
    emulator = OssEmulator()
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture(scope="session")
def oss_admin_session(oss_emulator_session: OssEmulator) -> Iterator[OssAdmin]:
    admin = OssAdmin(oss_emulator_session.url)
    try:
        yield admin
    finally:
        admin.close()
