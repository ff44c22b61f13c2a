"""Destination names (contract §6) and the keys that reject a job."""

from __future__ import annotations

import pytest

from iproduction.errors import RejectedError
from iproduction.layout import plan_files

JOB = "88c6ca184c0e432bbf5b665e2a150000"


def names(keys: list[str], prefix: str = "iproduction/") -> list[str]:
    return [p.dest_key for p in plan_files("src", keys, prefix, JOB)]


def test_relative_to_the_deepest_shared_directory() -> None:
    assert names(["iproduction/test-result.jpg", "iproduction/test-origin.jpg"]) == [
        f"iproduction/{JOB}/test-result.jpg", f"iproduction/{JOB}/test-origin.jpg"]
    assert names(["a/b/c/x.jpg", "a/b/d/y.jpg", "a/b/z.jpg"]) == [
        f"iproduction/{JOB}/c/x.jpg", f"iproduction/{JOB}/d/y.jpg", f"iproduction/{JOB}/z.jpg"]
    assert names(["x.jpg", "d/y.jpg"], prefix="") == [f"{JOB}/x.jpg", f"{JOB}/d/y.jpg"]
    assert names(["only/one/file.srt"]) == [f"iproduction/{JOB}/file.srt"]
    assert names(["dir/a b+c%2F.jpg", "dir/ä.jpg"]) == [f"iproduction/{JOB}/a b+c%2F.jpg", f"iproduction/{JOB}/ä.jpg"]
    assert plan_files("src", ["k/x"], "p/", JOB)[0].source_url == "oss://src/k/x"


@pytest.mark.parametrize("keys", [
    ["a/../b.jpg", "a/c.jpg"], ["/abs.jpg"], ["a//b.jpg", "a/c.jpg"], ["a/b\n.jpg"], ["a/\x00.jpg"],
    ["a/\x1f.jpg"], ["a/\x7f.jpg"], [""],
    ["a/" + "x" * 1100], ["a/" + "é" * 500 + ".jpg"], ["d/manifest.json"], ["a/./b.jpg"], ["dir/"],
    # C1 controls and bidirectional formatting characters (a key that shows in another order than stored)
    ["a/\x80.jpg"], ["a/\x9f.jpg"], ["a/x\u200e.jpg"], ["a/x\u200f.jpg"], ["a/\u202agpj.exe"], ["a/\u202e.jpg"],
    ["a/\u2066x.jpg"], ["a/\u2069x.jpg"],
    # a result file named like the commit marker, at any depth under the job's prefix
    ["d/x.jpg", "d/sub/manifest.json"], ["a/b/manifest.json", "a/c/x.jpg"],
])
def test_unsafe_keys_reject_the_whole_job(keys: list[str]) -> None:
    with pytest.raises(RejectedError):
        plan_files("src", keys, "iproduction/", JOB)


def test_printable_keys_beyond_ascii_are_kept() -> None:
    keys = ["a/\xa1é 字 ~!.jpg", "a/tab-free\u00a0.jpg", "a/x-manifest.json", "a/manifest.json.bak"]
    assert [p.source_key for p in plan_files("src", keys, "iproduction/", JOB)] == keys


def test_destination_key_length_counts_the_prefix() -> None:
    key = "d/" + "x" * 990
    assert len(key.encode()) <= 1023
    with pytest.raises(RejectedError, match="longer than 1023"):
        plan_files("src", [key], "iproduction/", JOB)
