"""The express lane (same-region files below the threshold, on one event loop) through the emulators:
what it does itself, what it hands back to the threaded engine, and that the outcomes are the engine's."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from localcloud.fc import FunctionInstance
from tests.functional.harness import DEST, JOB, SOURCE, Cloud, invocation_done, job_id, outcomes, topic_json

MIB = 1 << 20
FILES = {"out/a.jpg": b"a" * 1000, "out/b.jpg": b"b" * 2000, "out/sub/c.jpg": b"c" * 3000}


def lane_counts(instance: FunctionInstance) -> Counter[str]:
    """What the instance's lane did so far (its modules are swapped out between invocations)."""
    app = instance._code.modules["iproduction.app"]
    return app._runtime.processor.engine.lane.counts


def test_small_files_go_through_the_lane_and_the_big_one_in_parts(cloud: Cloud) -> None:
    cloud.seed_job_with_files(JOB, {**FILES, "out/big.mp4": bytes(range(256)) * (3 * MIB // 256)})
    instance = cloud.function(MULTIPART_THRESHOLD_BYTES=str(2 * MIB), PART_SIZE_BYTES=str(MIB), COPY_CONCURRENCY="3")
    assert outcomes(instance.invoke(topic_json(JOB))) == {JOB: "committed"}
    assert lane_counts(instance) == {"copied": 3, "parts": 1}
    assert len(cloud.oss_log("CopyObject")) == 3 and len(cloud.oss_log("UploadPartCopy")) == 3
    for key, data in FILES.items():
        assert cloud.oss_admin.read(DEST, f"iproduction/{JOB}/{key.removeprefix('out/')}") == data
    copy = next(e for e in cloud.oss_log("CopyObject"))
    assert copy["status"] == 200
    # A redelivery after the manifest was lost: the intact files are skipped (the multipart copy's
    # ETag says nothing of its bytes: the engine compares CRC-64s by HEAD).
    cloud.oss_admin.delete_object(DEST, f"iproduction/{JOB}/manifest.json")
    assert outcomes(instance.invoke(topic_json(JOB))) == {JOB: "committed"}
    assert lane_counts(instance) == {"copied": 3, "parts": 1, "skipped": 3, "handed-back": 1}
    assert len(cloud.oss_log("CopyObject")) == 3 and len(cloud.oss_log("UploadPartCopy")) == 3
    assert {f["key"]: f["size"] for f in cloud.manifest(JOB)["files"]}[f"iproduction/{JOB}/big.mp4"] == 3 * MIB


def test_a_transient_answer_hands_the_file_back_and_counts_as_a_retry(cloud: Cloud) -> None:
    cloud.seed_job_with_files(JOB, FILES)
    cloud.oss.knobs.configure({"faults": [{"op": "HeadObject", "kind": "503", "times": 1},
                                          {"op": "CopyObject", "kind": "reset", "after": 1, "times": 1}]})
    instance = cloud.function()
    result = instance.invoke(topic_json(JOB))
    assert outcomes(result) == {JOB: "committed"}
    assert invocation_done(result)["retries"] == {"oss-5xx": 1, "oss-network": 1}
    assert lane_counts(instance) == {"copied": 1, "handed-back": 2}
    assert len(cloud.oss_log("HeadObject")) == 3 + 2  # the two handed back start over


def test_a_refused_copy_is_not_sent_again(cloud: Cloud) -> None:
    cloud.seed_job_with_files(JOB, {"out/a.jpg": b"a"})
    cloud.oss.knobs.configure({"faults": [{"op": "CopyObject", "kind": "403", "times": 1}]})
    instance = cloud.function()
    result = instance.invoke(topic_json(JOB))
    assert outcomes(result) == {JOB: "error"}
    assert "CopyObject" not in str(invocation_done(result)["retries"])
    assert len(cloud.oss_log("CopyObject")) == 1
    assert lane_counts(instance) == {"failed": 1}
    assert cloud.manifest(JOB) is None


def test_a_missing_file_rejects_the_job_and_the_files_not_started_are_not(cloud: Cloud) -> None:
    files = [f"out/f{i}.jpg" for i in range(6)]
    for key in files[1:]:
        cloud.put_source(key, b"x")
    cloud.job(JOB, files)  # the first one was never written
    entry = cloud.invoke(topic_json(JOB), COPY_CONCURRENCY="1").result["jobs"][0]
    assert (entry["outcome"], entry["reason"]) == ("rejected", f"result file missing from OSS: oss://{SOURCE}/out/f0.jpg")
    assert len(cloud.oss_log("HeadObject")) == 1  # the lane cancelled the rest of the job's queue itself
    assert cloud.manifest(JOB) is None


def test_connections_oss_closed_between_invocations_are_replaced(cloud: Cloud) -> None:
    instance = cloud.function()
    for n in (1, 2):
        cloud.seed_job_with_files(job_id(n), {f"out/{n}/a.jpg": b"a", f"out/{n}/b.jpg": b"b"})
    assert outcomes(instance.invoke(topic_json(job_id(1)))) == {job_id(1): "committed"}
    server: Any = cloud.oss._server
    server.close_all()  # OSS drops the idle keep-alive connections
    time.sleep(0.2)
    second = instance.invoke(topic_json(job_id(2)))
    assert outcomes(second) == {job_id(2): "committed"}
    assert invocation_done(second)["retries"] == {}
    assert lane_counts(instance) == {"copied": 4}
