"""The benchmark suite at its smoke size, so that it cannot rot. Nothing here asserts on times."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = {"1", "1a", "1q", "R", "2", "3", "4", "5", "6", "X", "C"}
SWEEPS = {"COPY_CONCURRENCY", "PART_SIZE_BYTES", "MULTIPART_THRESHOLD_BYTES", "JOB_CONCURRENCY"}


@pytest.mark.slow
def test_the_suite_runs_and_writes_its_table(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "bench", "--smoke", "--out", str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    table = (tmp_path / "latest.md").read_text()
    assert "| # | scenario | ours | baselines | floor | ratios | requests |" in table
    assert "| # | files | C | latency | profile | ours cold | peer cold | ours/peer cold |" in table
    assert table in run.stdout
    document = json.loads((tmp_path / "latest.json").read_text())
    assert {s["key"] for s in document["scenarios"]} == SCENARIOS
    assert set(document["tuning"]) == SWEEPS
    assert all(s["targets"] for s in document["scenarios"] if s["key"] not in ("6", "C"))
    assert document["machine"]["cores"] and document["setup"]["size"] == "smoke"
    peer = {s["key"]: s["data"] for s in document["scenarios"] if s["key"] in ("1a", "1q", "R")}
    assert {p["setup"]["profile"] for p in peer.values()} == {"arrival", "queueing"}
    assert all(p[name]["cold"] > 0 and p[name]["warm"] > 0 for p in peer.values() for name in ("ours", "peer"))
    cpu = next(s["data"] for s in document["scenarios"] if s["key"] == "C")
    assert set(cpu["median"]) == {"ours", "plain peer"} and all(v > 0 for v in cpu["median"].values())
