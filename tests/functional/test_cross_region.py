"""Cross-region delivery: streamed multipart with end-to-end CRC, resume, and path choice."""

from __future__ import annotations

import oss2
import pytest

from tests.functional.harness import AK, DEST, JOB, SECRET, SOURCE, TOKEN, Cloud, outcomes, topic_json

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
    first = cloud.function(timeout=2.2, COPY_CONCURRENCY="1", MULTIPART_THRESHOLD_BYTES=str(4 * MIB)).invoke(
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
