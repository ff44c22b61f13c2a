"""docs/performance.md and the README's performance table are what the bench writes from its committed results:
a results file changed (or the generator) without rewriting them fails here."""

from __future__ import annotations

import json
from pathlib import Path

from bench import report

ROOT = Path(__file__).resolve().parents[2]


def document() -> dict:
    return json.loads((ROOT / report.RESULTS).read_text())


def test_performance_doc_is_generated_from_the_committed_results() -> None:
    expected = report.performance_doc(document(), (ROOT / "bench" / "performance.md.in").read_text())
    assert (ROOT / report.DOC).read_text() == expected, "run: python -m bench --docs"


def test_readme_table_is_generated_from_the_committed_results() -> None:
    readme = (ROOT / "README.md").read_text()
    assert report.replace_block(readme, report.START, report.END, report.readme_block(document())) == readme, \
        "run: python -m bench --docs"


def test_the_doc_is_dated_with_commit_and_machine_and_the_readme_links_it() -> None:
    info = document()["machine"]
    text = (ROOT / report.DOC).read_text()
    assert f"commit {info['commit']}" in text and info["cpu"] in text and info["date"] in text
    assert "## How to reproduce" in text and "<!-- bench:" not in text
    assert f"]({report.DOC})" in report.readme_block(document())


def test_generated_blocks_replace_only_what_lies_between_the_markers() -> None:
    text = f"before\n{report.START}\nold\n{report.END}\nafter\n"
    assert report.replace_block(text, report.START, report.END, "new") == \
        f"before\n{report.START}\nnew\n{report.END}\nafter\n"
