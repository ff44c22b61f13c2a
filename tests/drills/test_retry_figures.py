"""The retry figures the drills report come from the function's ``invocation.done`` lines."""

from __future__ import annotations

from drills.common import Cloud
from tests.functional.harness import job_id, topic_json


def retries(result) -> dict[str, int]:
    return next(line for line in result.json_logs() if line.get("event") == "invocation.done")["retries"]


def test_invocation_done_counts_the_retries_of_that_invocation_only(cloud: Cloud) -> None:
    cloud.seed_job_with_files(job_id(1), {"a/1.jpg": b"1"})
    cloud.seed_job_with_files(job_id(2), {"b/2.jpg": b"2"})
    cloud.oss.knobs.configure({"faults": [{"op": "CopyObject", "kind": "503", "times": 2}]})
    instance = cloud.function()  # one warm instance, two invocations
    first = instance.invoke(topic_json(job_id(1)))
    second = instance.invoke(topic_json(job_id(2)))
    assert first.ok and second.ok
    assert retries(first) == {"oss-5xx": 2}
    assert retries(second) == {}  # not the instance's running total
