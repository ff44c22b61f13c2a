"""The command line's pure parts, and the rule that only its adapter module touches the core."""

from __future__ import annotations

import argparse
import ast
import calendar
from pathlib import Path

import pytest

from iproduction.cli.core import Stored
from iproduction.cli.main import LOCAL_DEFAULTS, build_parser, environment
from iproduction.cli.output import UsageError, job_ids, parse_time
from iproduction.cli.report import rollup
from iproduction.cli.verify import compare

CLI = Path(__file__).resolve().parents[2] / "handler" / "iproduction" / "cli"
#: Modules that talk HTTP, and the core's modules: only ``core.py`` may import the core.
FORBIDDEN = {"oss2", "httpx", "requests", "aiohttp", "urllib3", "iproduction"}


@pytest.mark.parametrize("path", sorted(p.name for p in CLI.glob("*.py") if p.name != "core.py"))
def test_only_the_adapter_module_touches_the_core(path: str) -> None:
    tree = ast.parse((CLI / path).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert not {alias.name.split(".")[0] for alias in node.names} & FORBIDDEN, (path, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            assert node.level <= 1, f"{path}:{node.lineno} imports the core directly (from ..)"
            assert node.level == 1 or (node.module or "").split(".")[0] not in FORBIDDEN, (path, node.lineno)


def test_job_ids_are_checked_lowered_and_deduplicated() -> None:
    assert job_ids(["A" * 32, "a" * 32, "b" * 32]) == ["a" * 32, "b" * 32]
    for bad in ("a" * 31, "a" * 33, "g" * 32, "a" * 32 + "\n", ""):
        with pytest.raises(UsageError):
            job_ids([bad])


DEC1 = float(calendar.timegm((2026, 12, 1, 0, 0, 0)))


def test_times_parse_as_dates_instants_and_durations_ago() -> None:
    assert parse_time("2026-12-01") == DEC1
    assert parse_time("2026-12-01T08:00:00Z") == DEC1 + 8 * 3600
    assert parse_time("2026-12-01T10:00+02:00") == DEC1 + 8 * 3600
    assert parse_time("36h", now=DEC1) == DEC1 - 36 * 3600
    assert parse_time("7d", now=DEC1) == DEC1 - 7 * 86400
    for bad in ("yesterday", "2026-13-01", "7w", "", "-1d"):
        with pytest.raises(UsageError):
            parse_time(bad)


def args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["status", *argv])


def test_flags_override_the_environment_and_local_fills_what_it_leaves_unset() -> None:
    env = environment(args("--local", "--dest-prefix", "out/", "--set", "PENDING_MAX_AGE_SECONDS=60"),
                      {"OSS_ENDPOINT": "http://127.0.0.1:1234", "DEST_PREFIX": "in/"})
    assert env["OSS_ENDPOINT"] == "http://127.0.0.1:1234"  # the environment's, not --local's
    assert env["MPS_ENDPOINT"] == LOCAL_DEFAULTS["MPS_ENDPOINT"] and env["DEST_BUCKET"] == "dest-bucket"
    assert env["DEST_PREFIX"] == "out/" and env["PENDING_MAX_AGE_SECONDS"] == "60"
    assert "DEST_BUCKET" not in environment(args(), {})
    with pytest.raises(UsageError):
        environment(args("--set", "NOVALUE"), {})


def test_compare_checks_size_etag_and_crc64_where_recorded() -> None:
    entry = {"key": "k", "size": 3, "etag": "abc", "crc64": "42"}
    assert compare(entry, Stored("k", 3, "ABC", 0, 42)) is None
    assert compare({**entry, "crc64": None}, Stored("k", 3, "ABC", 0, 7)) is None
    assert compare(entry, Stored("k", 3, "ABC", 0, None)) is None  # OSS gave none: nothing to compare
    assert compare(entry, Stored("k", 4, "ABC", 0, 42)) == "size 4, manifest 3"
    assert compare(entry, Stored("k", 3, "ABD", 0, 42)) == "ETag ABD, manifest ABC"
    assert compare(entry, Stored("k", 3, "ABC", 0, 43)) == "CRC-64 43, manifest 42"


def test_rollup_groups_by_state_and_function() -> None:
    docs = [{"jobId": "1", "state": "Success", "functionName": "F", "fileCount": 2, "totalBytes": 10,
             "committedAt": "2026-12-01T00:00:00Z"},
            {"jobId": "2", "state": "Fail", "functionName": "G", "fileCount": 0, "totalBytes": 0,
             "result": {"code": "E1", "message": "m"}, "committedAt": "2026-12-01T00:00:01Z"}]
    doc = rollup(docs, 0, 1, 3, 4, {"bucket": "b", "prefix": "p/"})
    assert doc["byState"] == {"Success": {"jobs": 1, "files": 2, "bytes": 10},
                              "Fail": {"jobs": 1, "files": 0, "bytes": 0}}
    assert doc["byFunction"]["G"] == {"jobs": 1, "files": 0, "bytes": 0}
    assert doc["failed"] == [{"jobId": "2", "functionName": "G", "code": "E1", "message": "m",
                              "committedAt": "2026-12-01T00:00:01Z"}]
    assert (doc["jobs"], doc["files"], doc["bytes"], doc["pendingNow"], doc["expiredNow"]) == (2, 2, 10, 3, 4)
