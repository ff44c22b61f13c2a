"""The README's demo runs and tells the story it promises."""

from __future__ import annotations

import re

import pytest

from localcloud import demo


def test_demo(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.main([]) == 0
    out = capsys.readouterr().out
    outcomes = re.findall(r"→ \w+: ([a-z-]+)", out)
    assert outcomes == ["pending", "pending", "committed", "already-committed", "already-committed",
                        "already-committed"]
    assert '"schema": "iproduction-manifest/1"' in out
    assert "test-result.jpg" in out
