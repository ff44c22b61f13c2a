"""The I/O core through the emulators: the lookups, the copies, their retries and connections, the time
budget that no request outlives, and the fence that keeps a committed file from being overwritten."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.functional.harness import (
    DEST,
    JOB,
    SOURCE,
    Cloud,
    invocation_done,
    job_id,
    outcomes,
    topic_json,
)

MIB = 1 << 20
FILES = {"out/a.jpg": b"a" * 1000, "out/b b+%.jpg": b"b" * 2000, "out/sub/c.jpg": b"c" * 3000}
RECORD = {"jobId": JOB, "firstSeen": "2026-01-01T00:00:00Z", "lastChecked": "2026-01-01T00:05:00Z",
          "attempts": 3, "lastState": "Analysing"}


def put_record(cloud: Cloud) -> None:
    cloud.oss_admin.put_object(DEST, f"iproduction/_pending/{JOB}", json.dumps(RECORD), content_type="application/json")


def count_connections(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A one-item list holding how many TCP connections the OSS emulator has accepted so far."""
    server = cloud.oss._server
    assert server is not None
    accepted = [0]
    lock = threading.Lock()
    original = server.process_request

    def counting(request: Any, client_address: Any) -> None:
        with lock:
            accepted[0] += 1
        original(request, client_address)

    monkeypatch.setattr(server, "process_request", counting)
    return accepted


# -- lookups -----------------------------------------------------------------------------------------
def test_the_record_found_by_the_lookup_is_deleted_after_the_commit(cloud: Cloud) -> None:
    cloud.seed_job_with_files(JOB, FILES)
    put_record(cloud)
    result = cloud.invoke(topic_json(JOB))
    assert outcomes(result) == {JOB: "committed"}
    assert invocation_done(result)["retries"] == {}
    assert len(cloud.oss_log("ListObjectsV2")) == 1 and len(cloud.oss_log("GetObject")) == 1
    assert cloud.oss_admin.object(DEST, f"iproduction/_pending/{JOB}") is None


def test_a_listing_of_more_than_one_page_is_read_whole_and_intact_files_are_not_copied(cloud: Cloud) -> None:
    cloud.seed_job_with_files(JOB, FILES)
    for n in range(1001):
        cloud.oss_admin.put_object(DEST, f"iproduction/{JOB}/earlier/{n:04d}.txt", b"x")
    for key, data in FILES.items():  # already delivered, listed on the second page (keys URL-encoded there)
        cloud.oss_admin.put_object(DEST, f"iproduction/{JOB}/{key.removeprefix('out/')}", data)
    assert outcomes(cloud.invoke(topic_json(JOB))) == {JOB: "committed"}
    assert len(cloud.oss_log("ListObjectsV2")) == 2
    assert cloud.oss_log("CopyObject") == []
    assert {f["key"]: f for f in cloud.manifest(JOB)["files"]}[f"iproduction/{JOB}/b b+%.jpg"]["size"] == 2000


def test_transient_lookup_answers_are_retried_and_counted(cloud: Cloud) -> None:
    cloud.seed_job_with_files(JOB, FILES)
    put_record(cloud)
    cloud.oss.knobs.configure({"faults": [{"op": "ListObjectsV2", "kind": "503", "times": 1},
                                          {"op": "GetObject", "kind": "corrupt", "times": 1}]})
    result = cloud.invoke(topic_json(JOB))
    assert outcomes(result) == {JOB: "committed"}
    assert invocation_done(result)["retries"] == {"oss-5xx": 1, "oss-crc": 1}  # a damaged record is read again
    assert cloud.oss_admin.object(DEST, f"iproduction/_pending/{JOB}") is None


def test_a_refused_listing_is_an_error_and_not_asked_again(cloud: Cloud) -> None:
    cloud.seed_job_with_files(JOB, FILES)
    cloud.oss.knobs.configure({"faults": [{"op": "ListObjectsV2", "kind": "403", "times": 1}]})
    result = cloud.invoke(topic_json(JOB))
    assert outcomes(result) == {JOB: "error"}
    assert len(cloud.oss_log("ListObjectsV2")) == 1 and cloud.mps_calls() == 0
    assert cloud.oss_log("CopyObject") == []


# -- copies ------------------------------------------------------------------------------------------
def test_small_files_are_copied_whole_and_the_big_one_in_parts_and_a_redelivery_copies_nothing(cloud: Cloud) -> None:
    cloud.seed_job_with_files(JOB, {**FILES, "out/big.mp4": bytes(range(256)) * (3 * MIB // 256)})
    instance = cloud.function(MULTIPART_THRESHOLD_BYTES=str(2 * MIB), PART_SIZE_BYTES=str(MIB), COPY_CONCURRENCY="3")
    assert outcomes(instance.invoke(topic_json(JOB))) == {JOB: "committed"}
    assert len(cloud.oss_log("CopyObject")) == 3 and len(cloud.oss_log("UploadPartCopy")) == 3
    for key, data in FILES.items():
        assert cloud.oss_admin.read(DEST, f"iproduction/{JOB}/{key.removeprefix('out/')}") == data
    # The manifest lost, the files kept: every file is intact (the multipart copy's ETag says nothing of its
    # bytes: its CRC-64 is compared by HEAD) and nothing is copied again.
    cloud.oss_admin.delete_object(DEST, f"iproduction/{JOB}/manifest.json")
    assert outcomes(instance.invoke(topic_json(JOB))) == {JOB: "committed"}
    assert len(cloud.oss_log("CopyObject")) == 3 and len(cloud.oss_log("UploadPartCopy")) == 3
    assert {f["key"]: f["size"] for f in cloud.manifest(JOB)["files"]}[f"iproduction/{JOB}/big.mp4"] == 3 * MIB


def test_a_refused_copy_is_not_sent_again(cloud: Cloud) -> None:
    cloud.seed_job_with_files(JOB, {"out/a.jpg": b"a"})
    cloud.oss.knobs.configure({"faults": [{"op": "CopyObject", "kind": "403", "times": 1}]})
    result = cloud.invoke(topic_json(JOB))
    assert outcomes(result) == {JOB: "error"}
    assert invocation_done(result)["retries"] == {}
    assert len(cloud.oss_log("CopyObject")) == 1
    assert cloud.manifest(JOB) is None


def test_a_missing_file_rejects_the_job_and_the_files_not_started_are_not(cloud: Cloud) -> None:
    files = [f"out/f{i}.jpg" for i in range(6)]
    for key in files[1:]:
        cloud.put_source(key, b"x")
    cloud.job(JOB, files)  # the first one was never written
    entry = cloud.invoke(topic_json(JOB), COPY_CONCURRENCY="1").result["jobs"][0]
    assert (entry["outcome"], entry["reason"]) == ("rejected", f"result file missing from OSS: oss://{SOURCE}/out/f0.jpg")
    # The one slot's HEAD, and at most the next one (handed the slot as the first failed); the rest cancelled.
    assert len(cloud.oss_log("HeadObject")) <= 2
    assert cloud.oss_log("CopyObject") == []
    assert cloud.manifest(JOB) is None


def test_copies_reuse_connections(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    files = {f"out/f{i:02d}.jpg": bytes([i]) * 1000 for i in range(40)}
    cloud.seed_job_with_files(JOB, files)
    cloud.put_source("out/big.mp4", b"b" * (3 * MIB))
    cloud.job(JOB, [*files, "out/big.mp4"])
    accepted = count_connections(cloud, monkeypatch)
    result = cloud.invoke(topic_json(JOB), COPY_CONCURRENCY="4", MULTIPART_THRESHOLD_BYTES=str(2 * MIB),
                          PART_SIZE_BYTES=str(MIB))
    assert outcomes(result) == {JOB: "committed"}
    assert len(cloud.oss_log("CopyObject", "UploadPartCopy", "CompleteMultipartUpload")) == 40 + 4 + 1
    assert accepted[0] <= 4  # the session's 4 connections, kept alive: not one per request


def test_connections_oss_closed_between_invocations_are_replaced(cloud: Cloud) -> None:
    instance = cloud.function()
    for n in (1, 2):
        cloud.seed_job_with_files(job_id(n), {f"out/{n}/a.jpg": b"a", f"out/{n}/b.jpg": b"b"})
    assert outcomes(instance.invoke(topic_json(job_id(1)))) == {job_id(1): "committed"}
    server: Any = cloud.oss._server
    server.close_all()  # OSS drops the idle keep-alive connections (as it does after a frozen instance thaws)
    time.sleep(0.2)
    second = instance.invoke(topic_json(job_id(2)))
    assert outcomes(second) == {job_id(2): "committed"}


def test_new_files_are_copied_before_the_ones_already_there_are_checked(cloud: Cloud) -> None:
    """A retried job makes progress even when one invocation cannot look at every file: the files not
    at the destination start first."""
    files = {f"out/f{i:02d}.jpg": bytes([i]) * 100 for i in range(12)}
    cloud.seed_job_with_files(JOB, files)
    for key in list(files)[:8]:  # delivered by an earlier invocation
        cloud.oss_admin.put_object(DEST, f"iproduction/{JOB}/{key.removeprefix('out/')}", files[key])
    assert outcomes(cloud.invoke(topic_json(JOB), COPY_CONCURRENCY="1")) == {JOB: "committed"}
    heads = [e["key"] for e in cloud.oss_log("HeadObject") if e["bucket"] == SOURCE]
    assert heads[:4] == list(files)[8:]  # the four new ones first


# -- the fence -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("meanwhile", ["source-replaced", "copy-corrupted"])
def test_a_late_invocation_never_overwrites_a_file_of_a_committed_manifest(cloud: Cloud, meanwhile: str) -> None:
    """Two instances on one job: A is held back after its listing (its source HEAD answers 3 s late);
    B copies and commits meanwhile; then the source is replaced, or A's copy comes out corrupted. A
    writes with x-oss-forbid-overwrite, finds the object there and not what its source now is, checks
    for the manifest before replacing anything, finds it, and replaces nothing."""
    key = "out/a.jpg"
    original = b"original bytes" * 100
    cloud.seed_job_with_files(JOB, {key: original})
    cloud.oss.knobs.configure({"faults": [{"op": "HeadObject", "kind": "slow", "seconds": 3, "times": 1}]})
    late = cloud.function(isolated=True, initialization_timeout=120)
    running = ThreadPoolExecutor(1).submit(late.invoke, topic_json(JOB))
    until = time.monotonic() + 60
    while not cloud.oss.knobs.public()["injected"].get("slow") and time.monotonic() < until:
        time.sleep(0.02)
    assert outcomes(cloud.invoke(topic_json(JOB))) == {JOB: "committed"}  # B, while A is held back
    committed = cloud.manifest(JOB)
    if meanwhile == "source-replaced":
        cloud.put_source(key, b"replaced, the same size.." * 56)
    else:
        cloud.oss.knobs.configure({"faults": [{"op": "CopyObject", "kind": "corrupt"}]})
    first = running.result(60)
    late.close()
    assert outcomes(first)[JOB] in ("already-committed", "error")
    assert cloud.oss_admin.read(DEST, f"iproduction/{JOB}/a.jpg") == original
    assert cloud.manifest(JOB) == committed
    assert all(e["status"] == 409 for e in cloud.oss_log("CopyObject")[1:])  # A's copy: refused, nothing written
