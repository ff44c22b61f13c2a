"""A job's lookups (its destination listing and its pending record) from the express lane's loop,
through the emulators: what the loop reads is what the threaded calls read, and what it must not
take for an answer goes to them, counted as a retry."""

from __future__ import annotations

import json
from collections import Counter

from localcloud.fc import FunctionInstance
from tests.functional.harness import DEST, JOB, Cloud, invocation_done, outcomes, queue_batch, topic_json

FILES = {"out/a.jpg": b"a" * 1000, "out/b b+%.jpg": b"b" * 2000}
RECORD = {"jobId": JOB, "firstSeen": "2026-01-01T00:00:00Z", "lastChecked": "2026-01-01T00:05:00Z",
          "attempts": 3, "lastState": "Analysing"}


def lookup_counts(instance: FunctionInstance) -> Counter[str]:
    app = instance._code.modules["iproduction.app"]
    return app._runtime.processor.lookups.counts


def put_record(cloud: Cloud) -> None:
    cloud.oss_admin.put_object(DEST, f"iproduction/_pending/{JOB}", json.dumps(RECORD), content_type="application/json")


def test_both_lookups_come_from_the_loop_and_the_record_they_found_is_deleted(cloud: Cloud) -> None:
    cloud.seed_job_with_files(JOB, FILES)
    put_record(cloud)
    instance = cloud.function()
    result = instance.invoke(topic_json(JOB))
    assert outcomes(result) == {JOB: "committed"}
    assert lookup_counts(instance) == {"loop": 2}
    assert invocation_done(result)["retries"] == {}
    assert len(cloud.oss_log("ListObjectsV2")) == 1 and len(cloud.oss_log("GetObject")) == 1
    assert cloud.oss_admin.object(DEST, f"iproduction/_pending/{JOB}") is None  # the record was read, then deleted


def test_a_redelivery_finds_the_manifest_and_the_intact_files_from_the_loops_listing(cloud: Cloud) -> None:
    cloud.seed_job_with_files(JOB, FILES)
    instance = cloud.function()
    assert outcomes(instance.invoke(topic_json(JOB))) == {JOB: "committed"}
    assert outcomes(instance.invoke(topic_json(JOB))) == {JOB: "already-committed"}
    # The manifest lost, the files kept: the listing (keys with a space, '+' and '%', URL-encoded on
    # the wire) says they are intact.
    cloud.oss_admin.delete_object(DEST, f"iproduction/{JOB}/manifest.json")
    assert outcomes(instance.invoke(topic_json(JOB))) == {JOB: "committed"}
    assert len(cloud.oss_log("CopyObject")) == 2
    assert {f["key"]: f for f in cloud.manifest(JOB)["files"]}[f"iproduction/{JOB}/b b+%.jpg"]["size"] == 2000


def test_a_listing_of_more_than_one_page_is_read_whole(cloud: Cloud) -> None:
    cloud.seed_job_with_files(JOB, FILES)
    for n in range(1001):
        cloud.oss_admin.put_object(DEST, f"iproduction/{JOB}/earlier/{n:04d}.txt", b"x")
    for key, data in FILES.items():  # already delivered, listed on the second page
        cloud.oss_admin.put_object(DEST, f"iproduction/{JOB}/{key.removeprefix('out/')}", data)
    instance = cloud.function()
    assert outcomes(instance.invoke(topic_json(JOB))) == {JOB: "committed"}
    assert len(cloud.oss_log("ListObjectsV2")) == 2 and lookup_counts(instance) == {"loop": 2}
    assert cloud.oss_log("CopyObject") == []  # both files found intact on the second page


def test_a_transient_answer_goes_to_the_threaded_call_counted_as_a_retry(cloud: Cloud) -> None:
    cloud.seed_job_with_files(JOB, FILES)
    cloud.oss.knobs.configure({"faults": [{"op": "ListObjectsV2", "kind": "503", "times": 1},
                                          {"op": "GetObject", "kind": "reset", "times": 1}]})
    instance = cloud.function()
    result = instance.invoke(topic_json(JOB))
    assert outcomes(result) == {JOB: "committed"}
    assert invocation_done(result)["retries"] == {"oss-5xx": 1, "oss-network": 1}
    assert lookup_counts(instance) == {"threaded": 2}
    assert len(cloud.oss_log("ListObjectsV2")) == 2 and len(cloud.oss_log("GetObject")) == 2


def test_a_damaged_record_read_is_read_again_not_taken_for_no_record(cloud: Cloud) -> None:
    cloud.seed_job_with_files(JOB, FILES)
    put_record(cloud)
    cloud.oss.knobs.configure({"faults": [{"op": "GetObject", "kind": "corrupt", "times": 1}]})
    instance = cloud.function()
    result = instance.invoke(topic_json(JOB))
    assert outcomes(result) == {JOB: "committed"}
    assert invocation_done(result)["retries"] == {"oss-crc": 1}
    assert cloud.oss_admin.object(DEST, f"iproduction/_pending/{JOB}") is None  # read intact the second time


def test_a_refused_listing_is_an_error_and_not_asked_again(cloud: Cloud) -> None:
    cloud.seed_job_with_files(JOB, FILES)
    cloud.oss.knobs.configure({"faults": [{"op": "ListObjectsV2", "kind": "403", "times": 1}]})
    instance = cloud.function()
    result = instance.invoke(topic_json(JOB))
    assert outcomes(result) == {JOB: "error"}
    assert len(cloud.oss_log("ListObjectsV2")) == 1 and lookup_counts(instance)["threaded"] == 0
    assert cloud.oss_log("CopyObject") == []


def test_a_batch_looks_every_job_up_from_the_loop(cloud: Cloud) -> None:
    jobs = [f"{n:032x}" for n in range(1, 6)]
    for n, job in enumerate(jobs):
        cloud.seed_job_with_files(job, {f"out/{n}/a.jpg": b"a" * (n + 1)})
    instance = cloud.function()
    assert outcomes(instance.invoke(queue_batch(*jobs))) == dict.fromkeys(jobs, "committed")
    assert lookup_counts(instance) == {"loop": 10}


def test_without_the_lane_the_lookups_are_threaded(cloud: Cloud) -> None:
    cloud.seed_job_with_files(JOB, FILES)
    instance = cloud.function(HTTPS_PROXY="http://127.0.0.1:9", NO_PROXY="127.0.0.1,localhost")
    assert outcomes(instance.invoke(topic_json(JOB))) == {JOB: "committed"}
    assert lookup_counts(instance) == {}
