"""The operator's command line, end to end: the OSS and MPS emulators (verifying signatures, with
an STS token), the function committing jobs, and ``iproduction`` run as a separate process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.functional.harness import Cloud, started_cloud

ROOT = Path(__file__).resolve().parents[2]
HANDLER = ROOT / "handler"


@dataclass
class Ran:
    code: int
    out: str
    err: str


@pytest.fixture
def cloud() -> Iterator[Cloud]:
    with started_cloud() as env:
        yield env


def base_env(home: Path) -> dict[str, str]:
    """The machine's environment without any Alibaba Cloud setting, a HOME with no aliyun profile,
    and no metadata-service lookup (this is no ECS instance)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALIBABA_CLOUD_", "DEST_", "MPS_", "OSS_", "FC_"))}
    env.update({"HOME": str(home), "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true", "PYTHONDONTWRITEBYTECODE": "1"})
    return env


@pytest.fixture
def cli(cloud: Cloud, tmp_path: Path) -> Callable[..., Ran]:
    """``cli(*args, env=None, replace_env=False)``: ``python -m iproduction.cli ARGS`` from ``handler/``."""

    def run(*args: str, env: dict[str, str] | None = None, replace_env: bool = False, timeout: float = 120) -> Ran:
        full = base_env(tmp_path) if replace_env else {**base_env(tmp_path), **cloud.env}
        full.update(env or {})
        done = subprocess.run([sys.executable, "-m", "iproduction.cli", *args], cwd=HANDLER, env=full,
                              capture_output=True, text=True, timeout=timeout)
        return Ran(done.returncode, done.stdout, done.stderr)

    return run
