"""The local cloud's command lines explain every option, in plain text (no reStructuredText markup)."""

from __future__ import annotations

import argparse

import pytest

from localcloud.fc import __main__ as fc_cli
from localcloud.mps import __main__ as mps_cli
from localcloud.oss import cli as oss_cli


def parsers(top: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """``top`` and its sub-commands' parsers."""
    found = [top]
    for action in top._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += parsers(sub)
    return found


@pytest.mark.parametrize("build", [fc_cli.parser, mps_cli.parser, oss_cli.parser], ids=["fc", "mps", "oss"])
def test_every_option_has_a_help_text_without_markup(build) -> None:  # type: ignore[no-untyped-def]
    for parser in parsers(build()):
        for action in parser._actions:
            assert action.help and action.help.strip(), f"{parser.prog}: {action.option_strings or action.dest}"
        text = parser.format_help()
        assert "`" not in text, f"{parser.prog} --help shows backticks"
        assert parser.description and "`" not in parser.description
