"""The README is for the person who deploys and runs the function: short, and free of the maintainers' history."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_readme_is_under_250_lines() -> None:
    assert len(README.splitlines()) < 250


def test_readme_has_the_sections_a_user_needs() -> None:
    headings = re.findall(r"^## (.+)$", README, flags=re.M)
    for section in ("Quick start", "Deploy", "Configuration", "Events", "Outcomes", "Manifest", "Operations",
                    "Limits", "Performance", "Reliability", "Dependencies"):
        assert section in headings, section
    assert "```mermaid" in README


def test_readme_refers_to_no_issue_note_or_commit() -> None:
    assert not re.search(r"\bissues? \d|(?<![\w/])#\d+\b|\bthe contract\b", README, flags=re.I)
    examples = {"88c6ca184c0e432bbf5b665e2a150000", "39f8e0bc005e4f309379701645f40000"}
    hashes = {h for h in re.findall(r"\b[0-9a-f]{7,40}\b", README) if re.search(r"[a-f]", h) and re.search(r"\d", h)}
    assert hashes <= examples, hashes - examples


def test_every_local_link_resolves() -> None:
    for target in re.findall(r"\]\(((?!https?:)[^)#]+)", README):
        assert (ROOT / target).exists(), target
