"""A destination bucket with versioning is refused: OSS ignores x-oss-forbid-overwrite there (PutObject /
CopyObject docs, error 0026-00000201), so the manifest could not be the job's single commit point."""

from __future__ import annotations

import json

import oss2
import pytest
from oss2.models import BucketVersioningConfig

from tests.functional.harness import AK, DEST, JOB, SECRET, TOKEN, Cloud, job_id, outcomes, topic_json

FILES = {"out/a.jpg": b"a" * 1000, "out/b.jpg": b"b" * 700}


def set_versioning(cloud: Cloud, status: str) -> None:
    oss2.Bucket(oss2.StsAuth(AK, SECRET, TOKEN), cloud.oss.url, DEST).put_bucket_versioning(
        BucketVersioningConfig(status))


def job_outcome(result: object) -> dict[str, object]:
    return next(line for line in result.json_logs() if line.get("event") == "job.outcome")  # type: ignore[attr-defined]


@pytest.mark.parametrize("status", ["Enabled", "Suspended"])
def test_a_versioned_destination_is_refused_with_an_error_naming_it(cloud: Cloud, status: str) -> None:
    cloud.seed_job_with_files(JOB, FILES)
    set_versioning(cloud, status)
    instance = cloud.function()
    for _ in range(2):  # the trigger's retry meets the same refusal
        result = instance.invoke(topic_json(JOB))
        assert result.error_type == "UnhandledInvocationError"  # raised: the trigger keeps the message
        assert outcomes(result) == {JOB: "error"}
        reason = str(job_outcome(result)["reason"])
        assert f"destination bucket {DEST} has versioning {status}" in reason
        assert "x-oss-forbid-overwrite has no effect" in reason and "use a bucket without versioning" in reason
        assert f"versioning {status}" in (result.error_message or "")
    assert cloud.manifest(JOB) is None
    assert cloud.oss_log("CopyObject", "PutObject", "InitiateMultipartUpload") == []  # nothing written
    assert cloud.mps_calls() == 0
    assert len(cloud.oss_log("GetBucketVersioning")) == 1  # once per instance


def test_a_pending_job_is_refused_too_and_no_record_is_written(cloud: Cloud) -> None:
    cloud.seed_job_with_files(JOB, FILES, state="Analysing")
    set_versioning(cloud, "Enabled")
    assert outcomes(cloud.invoke(topic_json(JOB))) == {JOB: "error"}
    assert cloud.dest_objects() == {}


def test_a_job_committed_before_versioning_was_set_is_still_already_committed(cloud: Cloud) -> None:
    cloud.seed_job_with_files(JOB, FILES)
    assert outcomes(cloud.invoke(topic_json(JOB))) == {JOB: "committed"}
    set_versioning(cloud, "Enabled")
    result = cloud.invoke(topic_json(JOB))
    assert result.ok and outcomes(result) == {JOB: "already-committed"}


def test_an_unversioned_destination_is_read_once_per_instance_and_works_as_before(cloud: Cloud) -> None:
    jobs = [job_id(n) for n in (1, 2)]
    for n, job in enumerate(jobs):
        cloud.seed_job_with_files(job, {f"out/{n}/a.jpg": b"a" * (n + 1)})
    instance = cloud.function()
    for job in jobs:
        assert outcomes(instance.invoke(topic_json(job))) == {job: "committed"}
    assert len(cloud.oss_log("GetBucketVersioning")) == 1
    assert json.loads(cloud.oss_admin.read(DEST, f"iproduction/{jobs[1]}/manifest.json"))["fileCount"] == 1


def test_a_failed_read_of_the_versioning_state_is_retried_then_read_again_next_time(cloud: Cloud) -> None:
    cloud.seed_job_with_files(JOB, FILES)
    cloud.oss.knobs.configure({"faults": [{"op": "GetBucketVersioning", "kind": "503", "times": 1}]})
    assert outcomes(cloud.invoke(topic_json(JOB))) == {JOB: "committed"}  # retried within the invocation
    other = job_id(7)
    cloud.seed_job_with_files(other, {"out/c.jpg": b"c"})
    cloud.oss.knobs.configure({"faults": [{"op": "GetBucketVersioning", "kind": "403", "times": 1}]})
    instance = cloud.function()
    first = instance.invoke(topic_json(other))
    assert outcomes(first) == {other: "error"} and "GetBucketVersioning" in str(job_outcome(first)["reason"])
    assert outcomes(instance.invoke(topic_json(other))) == {other: "committed"}  # not kept: read again
