"""Cross-region delivery: streamed multipart with end-to-end CRC, resume, and path choice."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import oss2
import pytest

from localcloud.fc import FunctionInstance
from tests.functional.harness import AK, DEST, JOB, SECRET, SOURCE, TOKEN, Cloud, outcomes, timer, topic_json

MIB = 1 << 20
REMOTE = "sh-results"
STREAM = {"MULTIPART_THRESHOLD_BYTES": str(4 * MIB), "PART_SIZE_BYTES": str(MIB), "COPY_CONCURRENCY": "4"}


def seed_remote(cloud: Cloud, files: dict[str, bytes]) -> None:
    cloud.oss_admin.create_bucket(REMOTE, "cn-shanghai")
    for key, data in files.items():
        cloud.put_source(key, data, bucket=REMOTE, content_type="video/mp4", meta={"take": "3"})
    cloud.job(JOB, list(files), bucket=REMOTE, region="cn-shanghai")


def test_the_emulator_refuses_server_side_copies_across_regions(cloud: Cloud) -> None:
    cloud.oss_admin.create_bucket(REMOTE, "cn-shanghai")
    cloud.put_source("a.bin", b"a", bucket=REMOTE)
    dest = oss2.Bucket(oss2.StsAuth(AK, SECRET, TOKEN), cloud.oss.url, DEST)
    with pytest.raises(oss2.exceptions.ServerError) as refused:
        dest.copy_object(REMOTE, "a.bin", "copied.bin")
    assert refused.value.status == 400


def test_cross_region_job_is_streamed_and_byte_identical(cloud: Cloud) -> None:
    big = bytes((i * 7) % 251 for i in range(256)) * (5 * MIB // 256 + 99)
    files = {"out/big.mp4": big, "out/small.mp4": b"small" * 999, "out/empty.txt": b""}
    seed_remote(cloud, files)
    assert outcomes(cloud.invoke(topic_json(JOB), **STREAM)) == {JOB: "committed"}
    for key, data in files.items():
        name = key.split("/")[-1]
        assert cloud.oss_admin.read(DEST, f"iproduction/{JOB}/{name}") == data
        dest = cloud.oss_admin.object(DEST, f"iproduction/{JOB}/{name}")
        assert (dest["content_type"], dest["meta"]) == ("video/mp4", {"take": "3"})
    manifest = cloud.manifest(JOB)
    assert {f["transfer"] for f in manifest["files"]} == {"streamed"}
    assert {f["source"] for f in manifest["files"]} == {f"oss://{REMOTE}/{key}" for key in files}
    assert not cloud.oss_log("CopyObject", "UploadPartCopy")
    assert len(cloud.oss_log("UploadPart")) == 8  # 5 MiB in 1 MiB parts, evened to 2 waves of 4
    assert cloud.oss_admin.uploads() == []


def test_a_corrupted_byte_is_caught_by_crc_and_healed_by_retry(cloud: Cloud) -> None:
    big = b"\x01\x02\x03" * (2 * MIB)
    seed_remote(cloud, {"out/big.mp4": big})
    cloud.oss.knobs.configure({"faults": [{"op": "GetObject", "kind": "corrupt", "after": 2, "times": 1}]})
    result = cloud.invoke(topic_json(JOB), **STREAM)
    assert outcomes(result) == {JOB: "committed"}
    assert cloud.oss.knobs.public()["injected"] == {"corrupt": 1}
    assert any(line.get("event") == "copy.integrity" for line in result.json_logs())
    assert cloud.oss_admin.read(DEST, f"iproduction/{JOB}/big.mp4") == big
    assert cloud.oss_admin.uploads() == []


def test_a_time_out_mid_stream_resumes_with_only_what_is_missing(cloud: Cloud) -> None:
    files = {f"out/clip-{i}.mp4": bytes([i]) * MIB for i in range(6)}
    seed_remote(cloud, files)
    cloud.oss.knobs.configure({"settings": {"bandwidth": 2 * MIB}})  # 0.5 s per file per connection
    first = cloud.function(timeout=3, COPY_CONCURRENCY="1", MULTIPART_THRESHOLD_BYTES=str(4 * MIB)).invoke(
        topic_json(JOB))
    assert outcomes(first) == {JOB: "error"}
    assert cloud.manifest(JOB) is None
    sent_first = {e["key"] for e in cloud.oss_log("PutObject") if e["status"] == 200}
    assert 1 <= len(sent_first) < 6
    cloud.oss.knobs.configure({"settings": {"bandwidth": None}})
    cloud.oss.log.clear()
    assert outcomes(cloud.invoke(topic_json(JOB), **STREAM)) == {JOB: "committed"}
    read_again = {e["key"] for e in cloud.oss_log("GetObject") if e["bucket"] == REMOTE}
    assert read_again == {k for k in files if f"iproduction/{JOB}/{k.split('/')[-1]}" not in sent_first}
    assert cloud.manifest(JOB)["fileCount"] == 6


def test_a_same_region_job_never_reads_the_content(cloud: Cloud) -> None:
    cloud.put_source("out/big.mp4", b"b" * (5 * MIB))
    cloud.put_source("out/small.mp4", b"s" * 100)
    cloud.job(JOB, ["out/big.mp4", "out/small.mp4"])
    assert outcomes(cloud.invoke(topic_json(JOB), **STREAM)) == {JOB: "committed"}
    assert not [e for e in cloud.oss_log("GetObject") if e.get("bucket") == SOURCE]
    assert {f["transfer"] for f in cloud.manifest(JOB)["files"]} == {"server-side"}
    assert cloud.oss_log("UploadPartCopy")


def test_a_gzip_encoded_object_crosses_regions_as_stored(cloud: Cloud) -> None:
    """An HTTP client that inflates ``Content-Encoding: gzip`` bodies (requests does) would deliver other
    bytes than the source's, and fail the CRC check for ever."""
    import gzip

    stored = gzip.compress(b"WEBVTT\n\n00:00.000 --> 00:01.000\nhello\n" * 50)
    cloud.oss_admin.create_bucket(REMOTE, "cn-shanghai")
    remote = oss2.Bucket(oss2.StsAuth(AK, SECRET, TOKEN), cloud.oss.url, REMOTE)
    remote.put_object("out/subs.vtt", stored, headers={"Content-Encoding": "gzip", "Content-Type": "text/vtt"})
    cloud.job(JOB, ["out/subs.vtt"], bucket=REMOTE, region="cn-shanghai")
    assert outcomes(cloud.invoke(topic_json(JOB), **STREAM)) == {JOB: "committed"}
    key = f"iproduction/{JOB}/subs.vtt"
    assert cloud.oss_admin.read(DEST, key) == stored
    head = oss2.Bucket(oss2.StsAuth(AK, SECRET, TOKEN), cloud.oss.url, DEST).head_object(key)
    assert (head.headers["Content-Encoding"], head.content_type) == ("gzip", "text/vtt")
    assert cloud.manifest(JOB)["files"][0]["transfer"] == "streamed"


# -- an invocation killed mid-stream ------------------------------------------------------------------
KIB = 1 << 10
#: FC timeout of the function in the kill test (the sweep's "twice the timeout" follows from it).
KILL_TIMEOUT = 4.0
CUT = {"MULTIPART_THRESHOLD_BYTES": str(2 * MIB), "PART_SIZE_BYTES": str(2 * MIB), "COPY_CONCURRENCY": "4"}


def pattern(seed: int, size: int) -> bytes:
    """``size`` bytes that differ from file to file and from part to part."""
    block = bytes((seed * 31 + i * 7) % 251 for i in range(4093))
    return (block * (size // len(block) + 1))[:size]


def instance(cloud: Cloud, *, timeout: float = KILL_TIMEOUT, isolated: bool = False, **env: str) -> FunctionInstance:
    """``cloud.function`` with the initializer under its own (long) limit: a cold process's imports on a
    busy machine must not count against the short FC timeout under test."""
    return cloud.function(timeout=timeout, isolated=isolated, initialization_timeout=120, **{**CUT, **env})


def dest_key(source_key: str) -> str:
    return f"iproduction/{JOB}/{source_key.split('/')[-1]}"


def test_an_instance_killed_mid_stream_resumes_with_only_what_is_missing(cloud: Cloud) -> None:
    """An instance killed *mid-stream* (FC recycles it, the machine fails): a streamed PutObject and
    the parts of a multipart upload are cut while their bytes are in flight. The resumed run re-sends
    only those; the upload the killed instance could not abort is left to the sweep, which aborts it
    once it is older than twice the function's timeout."""
    small = {f"out/s-{i}.mp4": pattern(i, 16 * KIB) for i in range(3)}
    cut = {"out/mid.mp4": pattern(7, MIB), "out/big.mp4": pattern(8, 6 * MIB)}  # one PUT; 4 parts of 1.5 MiB
    files = {**small, **cut}
    seed_remote(cloud, files)
    cloud.oss.knobs.configure({"settings": {"bandwidth": 128 * KIB}})  # 0.125 s a small file, 8 s+ the big ones

    killed = instance(cloud, isolated=True)
    running = ThreadPoolExecutor(1).submit(killed.invoke, topic_json(JOB))
    until = time.monotonic() + 30
    while time.monotonic() < until and not (
            len([e for e in cloud.oss_log("PutObject") if e["status"] == 200]) == len(small)
            and cloud.oss_admin.uploads()):
        time.sleep(0.05)
    time.sleep(0.5)  # the cut files' bytes are on their way (8 s and more each at this bandwidth)
    assert killed.pid is not None
    os.kill(killed.pid, signal.SIGKILL)
    first = running.result(30)
    assert first.exception_type == "InstanceExited"  # killed: no outcome reported, nothing cleaned up
    cloud.oss.knobs.configure({"settings": {"bandwidth": None}})
    log = cloud.oss_log()
    sent = {e["key"] for e in log if e["op"] in ("PutObject", "UploadPart") and e["status"] == 200}
    assert sent == {dest_key(k) for k in small}
    cut_reads = [e for e in log if e["op"] == "GetObject" and e["key"] in cut]
    assert {e["key"] for e in cut_reads} == set(cut)
    assert all(e.get("bytes", 0) < len(cut[e["key"]]) for e in cut_reads)  # every read was cut short...
    cut_sends = [e for e in log if e["op"] in ("PutObject", "UploadPart") and e["status"] != 200]
    assert {(e["op"], e["key"]) for e in cut_sends} == {("PutObject", dest_key("out/mid.mp4")),
                                                       ("UploadPart", dest_key("out/big.mp4"))}
    assert all(e["status"] == 0 for e in cut_sends)  # ...and so was every upload fed by one
    assert set(cloud.dest_objects(f"iproduction/{JOB}/")) == {dest_key(k) for k in small}
    assert cloud.manifest(JOB) is None
    [orphan] = cloud.oss_admin.uploads()
    assert (orphan["key"], orphan["parts"]) == (dest_key("out/big.mp4"), [])

    cloud.oss.log.clear()
    resumed = instance(cloud).invoke(topic_json(JOB))
    assert outcomes(resumed) == {JOB: "committed"}
    [done] = [line for line in resumed.json_logs() if line.get("event") == "job.outcome"]
    assert (done["copied"], done["skipped"]) == (2, 3)
    log = cloud.oss_log()
    assert {e["key"] for e in log if e["op"] == "GetObject" and e["bucket"] == REMOTE} == set(cut)
    sent_again = {e["key"] for e in log if e["op"] in ("PutObject", "UploadPart")}
    assert sent_again == {dest_key(k) for k in cut} | {dest_key("manifest.json")}
    for key, data in files.items():
        assert cloud.oss_admin.read(DEST, dest_key(key)) == data
    assert cloud.manifest(JOB)["fileCount"] == 5
    assert [u["upload_id"] for u in cloud.oss_admin.uploads()] == [orphan["upload_id"]]

    # A sweep never aborts an upload a live invocation may still own (younger than twice the timeout)...
    assert instance(cloud, timeout=60).invoke(timer()).ok
    assert [u["upload_id"] for u in cloud.oss_admin.uploads()] == [orphan["upload_id"]]
    # ...and aborts it once it is older than that.
    time.sleep(max(0.0, orphan["initiated"] + 2 * KILL_TIMEOUT + 1.5 - time.time()))
    swept = instance(cloud).invoke(timer())
    assert swept.ok
    assert [line["uploads"] for line in swept.json_logs() if line.get("event") == "sweep.uploads_aborted"] == [1]
    assert cloud.oss_admin.uploads() == []
    assert [(e["op"], e["key"]) for e in cloud.oss_log("AbortMultipartUpload")] == [
        ("AbortMultipartUpload", dest_key("out/big.mp4"))]


def test_a_budget_spent_mid_stream_stops_the_stream_and_reports(cloud: Cloud) -> None:
    """In the instance's own time, a stream that outlives the budget (started on the cautious first
    guess of the speed) stops at its next chunk: its upload is aborted and the job reported ``error``
    within the reserve, before FC would kill the instance; the retry then delivers everything."""
    files = {"out/one.mp4": pattern(1, 12 * MIB), "out/big.mp4": pattern(2, 32 * MIB)}  # a PUT; parts
    seed_remote(cloud, files)
    cloud.oss.knobs.configure({"settings": {"bandwidth": 2 * MIB}})  # 6 s for one.mp4, 4 s a part
    big_parts = {"MULTIPART_THRESHOLD_BYTES": str(16 * MIB), "PART_SIZE_BYTES": str(16 * MIB)}
    started = time.monotonic()
    first = instance(cloud, **big_parts).invoke(topic_json(JOB))
    assert first.error_type == "UnhandledInvocationError" and first.exception_type == "InvocationFailedError"
    assert time.monotonic() - started < KILL_TIMEOUT + 1  # not killed at the timeout: it stopped itself
    [report] = first.body["jobs"] if isinstance(first.body, dict) and "jobs" in first.body else [
        line for line in first.json_logs() if line.get("event") == "job.outcome"]
    assert report["outcome"] == "error" and "time budget" in report["reason"]
    assert cloud.manifest(JOB) is None
    assert not cloud.dest_objects(f"iproduction/{JOB}/")  # no half-written object
    assert cloud.oss_admin.uploads() == []  # the multipart upload was aborted
    assert [e["status"] for e in cloud.oss_log("AbortMultipartUpload")] == [204]

    cloud.oss.knobs.configure({"settings": {"bandwidth": None}})
    assert outcomes(instance(cloud, **big_parts).invoke(topic_json(JOB))) == {JOB: "committed"}
    dest = oss2.Bucket(oss2.StsAuth(AK, SECRET, TOKEN), cloud.oss.url, DEST)
    for key, data in files.items():
        assert dest.get_object(dest_key(key)).read() == data
