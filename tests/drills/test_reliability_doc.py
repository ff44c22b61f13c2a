"""docs/reliability.md and the README's reliability table are what the drills write from their committed full
results (drills/results/): a results file changed (or the generator) without rewriting them fails here."""

from __future__ import annotations

import re
from pathlib import Path

from drills import report
from drills.__main__ import DRILLS, RESULTS

ROOT = Path(__file__).resolve().parents[2]


def results() -> dict:
    return report.load(RESULTS["full"])


def test_every_drill_has_committed_full_results() -> None:
    assert RESULTS["full"] == ROOT / "drills" / "results"
    assert set(results()) == set(DRILLS)
    assert all(doc["size"] == "full" and doc["commit"] and doc["machine"] for doc in results().values())


def test_reliability_doc_is_generated_from_the_committed_results() -> None:
    assert (ROOT / report.DOC).read_text() == report.render(results(), list(DRILLS)), "run: python -m drills --docs"


def test_readme_table_is_generated_from_the_committed_results() -> None:
    readme = (ROOT / "README.md").read_text()
    block = report.readme_block(results(), list(DRILLS), report.DOC)
    assert report.replace_block(readme, report.START, report.END, block) == readme, "run: python -m drills --docs"
    assert f"]({report.DOC}#faults)" in block


def test_the_doc_is_dated_with_commit_and_machine() -> None:
    text = (ROOT / report.DOC).read_text()
    doc = results()["faults"]
    commits = re.search(r"commit ([0-9a-f, ]+),", text)  # one or more: each drill's last full run
    assert commits and doc["commit"] in commits.group(1) and f"Python {doc['machine']['python']}" in text
    assert "## How to reproduce" in text


def test_a_failed_drill_shows_in_both(tmp_path: Path) -> None:
    failed = {**results(), "faults": {**results()["faults"], "passed": False, "problems": ["a file differs"]}}
    assert "**Failed:** a file differs" in report.render(failed, list(DRILLS))
    assert "1 problem(s)" in report.readme_block(failed, list(DRILLS), report.DOC)
