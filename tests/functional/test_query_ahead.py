"""The query-ahead through the emulators: a batch's first MPS calls leave from the express lane's loop,
as the rate cap allows, and their failures are the job threads' to retry, as before."""

from __future__ import annotations

import json
import time

import pytest

from localcloud.fc import FunctionInstance
from tests.functional.harness import (
    DEST,
    SECRETS,
    Cloud,
    invocation_done,
    job_id,
    outcomes,
    queue_batch,
    topic_json,
)


def ahead_counts(instance: FunctionInstance) -> dict[str, int] | None:
    app = instance._code.modules["iproduction.app"]
    ahead = app._runtime._ahead
    return None if ahead is None else dict(ahead.counts)


def seed(cloud: Cloud, count: int) -> list[str]:
    jobs = [job_id(n) for n in range(1, count + 1)]
    for n, job in enumerate(jobs):
        cloud.seed_job_with_files(job, {f"out/{n}/a.jpg": b"a" * (n + 1)})
    return jobs


def query_times(cloud: Cloud) -> list[float]:
    return sorted(e["time"] - e["duration"] for e in cloud.mps.log.entries() if e.get("op") == "QueryIProductionJob")


def test_a_batch_queries_each_job_once_from_the_loop(cloud: Cloud) -> None:
    jobs = seed(cloud, 6)
    instance = cloud.function()
    result = instance.invoke(queue_batch(*jobs))
    assert outcomes(result) == dict.fromkeys(jobs, "committed")
    assert cloud.mps_calls() == 6
    assert ahead_counts(instance) == {"sent": 6, "skipped": 0}
    assert invocation_done(result)["retries"] == {}


def test_a_single_job_is_queried_by_its_thread(cloud: Cloud) -> None:
    (job,) = seed(cloud, 1)
    instance = cloud.function()
    assert outcomes(instance.invoke(topic_json(job))) == {job: "committed"}
    assert ahead_counts(instance) is None and cloud.mps_calls() == 1


def test_failed_first_calls_are_retried_by_the_threads_with_their_backoff(cloud: Cloud) -> None:
    jobs = seed(cloud, 4)
    cloud.mps.knobs.configure({"faults": [{"op": "QueryIProductionJob", "sequence": ["throttle", "503", "reset"]}]})
    cloud.mps_admin.settings(retry_after=0)
    instance = cloud.function()
    result = instance.invoke(queue_batch(*jobs))
    assert outcomes(result) == dict.fromkeys(jobs, "committed")
    assert invocation_done(result)["retries"] == {"mps-throttling": 1, "mps-5xx": 1, "mps-network": 1}
    assert cloud.mps_calls() == 4 + 3
    assert ahead_counts(instance) == {"sent": 4, "skipped": 0}


def test_refused_credentials_on_a_first_call_are_an_error_never_echoed(cloud: Cloud) -> None:
    jobs = seed(cloud, 2)
    cloud.mps.knobs.configure({"settings": {"access_key_secret": "the-secret-mps-expects"}})
    result = cloud.function().invoke(queue_batch(*jobs))
    assert outcomes(result) == dict.fromkeys(jobs, "error")
    assert cloud.mps_calls() == 2  # not retried
    everything = "\n".join([*result.logs, result.error_message, json.dumps(result.body)])
    for secret in SECRETS:
        assert secret not in everything


def test_the_cap_holds_and_each_window_leaves_together(cloud: Cloud) -> None:
    jobs = seed(cloud, 7)
    cloud.mps_admin.settings(qps=3)
    cloud.mps_admin.reset_stats()
    result = cloud.function(MPS_MAX_QPS="3").invoke(queue_batch(*jobs))
    assert outcomes(result) == dict.fromkeys(jobs, "committed")
    stats = cloud.mps_admin.stats()
    assert stats["max_calls_per_second"] <= 3 and stats["throttled"] == 0
    times = query_times(cloud)
    windows = [times[0:3], times[3:6], times[6:]]
    for window in windows:
        assert window[-1] - window[0] < 0.5  # together, not one thread at a time
    assert windows[1][0] - windows[0][0] >= 1.0 and windows[2][0] - windows[1][0] >= 1.0


@pytest.mark.parametrize("cap", ["1", "50"])
def test_redelivered_committed_jobs_are_never_queried(cloud: Cloud, cap: str) -> None:
    """A batch's calls are queued only once each job's lookup found no manifest: a redelivery of
    committed jobs costs no MPS call, with calls scarce or not."""
    jobs = seed(cloud, 3)
    for job in jobs:
        cloud.oss_admin.put_object(DEST, f"iproduction/{job}/manifest.json", b"{}", content_type="application/json")
    instance = cloud.function(MPS_MAX_QPS=cap)
    started = time.monotonic()
    result = instance.invoke(queue_batch(*jobs))
    assert outcomes(result) == dict.fromkeys(jobs, "already-committed")
    assert cloud.mps_calls() == 0 and ahead_counts(instance) == {"sent": 0, "skipped": 0}
    assert time.monotonic() - started < 5
    assert all(line.get("event") != "mps.ahead_failed" for line in result.json_logs())


def test_v2_signatures_go_ahead_too(cloud: Cloud) -> None:
    jobs = seed(cloud, 3)
    instance = cloud.function(MPS_SIGNATURE_VERSION="v2")
    assert outcomes(instance.invoke(queue_batch(*jobs))) == dict.fromkeys(jobs, "committed")
    assert ahead_counts(instance) == {"sent": 3, "skipped": 0}
    assert {e.get("signature") for e in cloud.mps.log.entries() if e.get("op") == "QueryIProductionJob"} == {"v2"}
