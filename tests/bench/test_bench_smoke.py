"""The benchmark suite at its smoke size, so that it cannot rot. Nothing here asserts on times."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = {"1", "1a", "1q", "R", "2", "3", "4", "5", "6", "X", "C"}
SWEEPS = {"COPY_CONCURRENCY", "PART_SIZE_BYTES", "MULTIPART_THRESHOLD_BYTES", "JOB_CONCURRENCY"}
COMMITTED = [ROOT / "bench" / "results" / "latest.md", ROOT / "bench" / "results" / "latest.json",
             ROOT / "docs" / "scaling.png"]


def fingerprints() -> dict[Path, str | None]:
    return {path: hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None for path in COMMITTED}


@pytest.mark.slow
def test_the_suite_runs_and_writes_its_table_away_from_the_committed_results() -> None:
    before = fingerprints()
    run = subprocess.run([sys.executable, "-m", "bench", "--smoke"], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    said = re.search(r"smoke run: results go to (\S+) ", run.stderr)
    assert said, run.stderr[-3000:]
    out = Path(said.group(1))
    try:
        assert fingerprints() == before, "a smoke run rewrote the committed results"
        assert out.resolve() != (ROOT / "bench" / "results").resolve() and ROOT not in out.resolve().parents
        assert "its sizes make the targets meaningless" in run.stderr
        table = (out / "latest.md").read_text()
        assert f"written {out / 'latest.md'}" in run.stderr
        assert "| # | scenario | ours | baselines | floor | ratios | requests |" in table
        assert table in run.stdout
        targets = [line for line in table.split("## Targets")[1].split("\n## ")[0].splitlines()
                   if line.startswith("| ") and not line.startswith("| # ")]
        assert targets and all("| n/a (smoke size) |" in line for line in targets)
        assert "| yes |" not in table and "**no**" not in table
        document = json.loads((out / "latest.json").read_text())
        assert {s["key"] for s in document["scenarios"]} == SCENARIOS
        assert set(document["tuning"]) == SWEEPS
        assert all(s["targets"] for s in document["scenarios"] if s["key"] not in ("6", "C"))
        assert all(t["met"] is None for s in document["scenarios"] for t in s["targets"])
        assert document["machine"]["cores"] and document["setup"]["size"] == "smoke"
        assert "| # | files | C | latency | profile | ours cold | peer cold | ours/peer cold |" in table
        peer = {s["key"]: s["data"] for s in document["scenarios"] if s["key"] in ("1a", "1q", "R")}
        assert {p["setup"]["profile"] for p in peer.values()} == {"arrival", "queueing"}
        assert all(p[name]["cold"] > 0 and p[name]["warm"] > 0 for p in peer.values() for name in ("ours", "peer"))
        cpu = next(s["data"] for s in document["scenarios"] if s["key"] == "C")
        assert set(cpu["median"]) == {"ours", "plain peer"} and all(v > 0 for v in cpu["median"].values())
    finally:
        shutil.rmtree(out, ignore_errors=True)
