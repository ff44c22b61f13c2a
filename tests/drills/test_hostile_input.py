"""Drill 4 — hostile input: events and MPS answers built to break the function end classified."""

from __future__ import annotations

from collections import Counter

import pytest

from drills import hostile
from drills.common import Cloud, Ledger
from tests.functional.harness import JOB, outcomes, topic_json


@pytest.mark.parametrize("result", [[{"file": "out/a.jpg"}], 42, True])
def test_an_mps_result_of_the_wrong_json_type_is_rejected_with_a_reason(cloud: Cloud, result: object) -> None:
    """``Result`` is documented as a string or an object; any other JSON type is a hostile answer
    of that job (it will not change on a retry): rejected, not an unexpected error."""
    cloud.put_source("out/a.jpg", b"a")
    cloud.mps_admin.settings(result_as_object=True)  # the emulator answers Result as stored, not as a string
    cloud.job(JOB, ["out/a.jpg"], result=result)
    run = cloud.invoke(topic_json(JOB))
    assert outcomes(run) == {JOB: "rejected"}
    assert "Result is not a JSON object" in run.result["jobs"][0]["reason"]
    assert not [line for line in run.json_logs() if line.get("event") == "job.unexpected"]
    assert cloud.manifest(JOB) is None


def test_hostile_events_always_end_classified() -> None:
    """Random bytes, deep and huge JSON, wrong types, look-alike ids, odd encodings: no exception,
    only valid job ids let through, every rejection with a short printable reason."""
    tally: Counter[str] = Counter()
    hostile.events_property(hostile.SIZES["ci"]["events"], tally)
    assert tally["inputs"] >= hostile.SIZES["ci"]["events"] // 2
    assert tally["rejected"] > 0


def test_hostile_items_never_block_a_batch() -> None:
    tally: Counter[str] = Counter()
    hostile.batches_property(hostile.SIZES["ci"]["batches"], tally)
    assert tally["inputs"] > 0


def test_hostile_mps_answers_give_a_job_or_a_classified_refusal() -> None:
    tally: Counter[str] = Counter()
    hostile.answers_property(hostile.SIZES["ci"]["answers"], tally)
    assert tally["rejected"] > 0 and tally["job-copy"] > 0 and tally["files"] > 0


@pytest.mark.slow
def test_hostile_events_on_the_function_never_make_it_raise() -> None:
    assert hostile.end_to_end_property(hostile.SIZES["ci"]["end_to_end"], Counter(), Ledger()) == []


@pytest.mark.slow
def test_hostile_mps_answers_through_the_emulators_in_one_batch() -> None:
    seen, problems = hostile.hostile_answers(hostile.SIZES["ci"]["many_files"], Ledger())
    assert problems == []
    assert seen["good"]["outcome"] == "committed"
    assert seen["thousands-of-files"]["files"] == hostile.SIZES["ci"]["many_files"]
    assert all(v["reason"] for v in seen.values() if v["outcome"] == "rejected")
