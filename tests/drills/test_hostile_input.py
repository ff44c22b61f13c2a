"""Drill 4 — hostile input: events and MPS answers built to break the function end classified."""

from __future__ import annotations

import pytest

from drills.common import Cloud
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
