"""Drill 6 — the pending registry: stuck jobs leave it with a recorded outcome; a sweep over
many pending jobs stays within the MPS QPS cap and the time budget."""

from __future__ import annotations

import json

from drills import pending
from drills.common import Cloud, DrillReport, Ledger
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


def test_every_record_leaves_the_registry_with_a_recorded_outcome() -> None:
    report = DrillReport("pending-registry", "ci")
    figures = pending.outcomes_phase(report, Ledger())
    assert report.problems == []
    assert figures["firstSweep"] == {"expired": 6, "pending": 8, "committed": 3, "job-failed": 2, "rejected": 2,
                                     "already-committed": 2}
    assert figures["strayKeysIgnored"] == figures["strayKeys"]


def test_a_sweep_of_many_pending_jobs_stays_within_the_mps_qps_cap_and_the_timeout() -> None:
    """Judged by the MPS emulator: the most calls it received in any one-second window."""
    report = DrillReport("pending-registry", "ci")
    figures = pending.scale_phase("ci", report, Ledger())
    assert report.problems == []
    assert figures["mpsMaxCallsInOneSecond"] <= figures["mpsMaxQps"]
    assert figures["longestSweepSeconds"] < figures["fcTimeoutSeconds"]
    assert figures["sweeps"] >= 2  # the registry did not fit in one sweep: deferral and resumption were exercised
