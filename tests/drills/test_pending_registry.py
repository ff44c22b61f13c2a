"""Drill 6 — the pending registry: stuck jobs leave it with a recorded outcome; a sweep over
many pending jobs stays within the MPS QPS cap and the time budget."""

from __future__ import annotations

import json

from drills.common import Cloud
from tests.functional.harness import DEST, JOB, timer


def test_a_corrupted_read_of_a_pending_record_is_retried_not_taken_for_no_record(cloud: Cloud) -> None:
    """A body damaged in transit must not pass for a missing record: the job's clock would restart
    and a stuck job would never expire."""
    cloud.job(JOB, [], state="Analysing")
    old = {"jobId": JOB, "firstSeen": "2026-01-01T00:00:00Z", "lastChecked": "2026-01-01T00:05:00Z",
           "attempts": 7, "lastState": "Analysing"}
    cloud.oss_admin.put_object(DEST, f"iproduction/_pending/{JOB}", json.dumps(old), content_type="application/json")
    cloud.oss.knobs.configure({"faults": [{"op": "GetObject", "kind": "corrupt", "times": 1}]})
    result = cloud.invoke(timer(), PENDING_MAX_AGE_SECONDS="3600")
    assert cloud.oss.knobs.public()["injected"] == {"corrupt": 1}
    assert [(j["jobId"], j["outcome"]) for j in result.result["jobs"]] == [(JOB, "expired")]
    done = next(line for line in result.json_logs() if line.get("event") == "invocation.done")
    assert done["retries"] == {"oss-crc": 1}
    moved = json.loads(cloud.oss_admin.read(DEST, f"iproduction/_expired/{JOB}"))
    assert (moved["firstSeen"], moved["attempts"]) == ("2026-01-01T00:00:00Z", 8)
