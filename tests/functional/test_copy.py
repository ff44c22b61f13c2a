"""The copy engine through the emulators: multipart, metadata, resume, duplicates, budget, policy."""

from __future__ import annotations

import json
import threading

import oss2

from localcloud.fc import invoke_concurrently
from tests.functional.harness import (
    AK,
    DEST,
    JOB,
    SECRET,
    SOURCE,
    TOKEN,
    Cloud,
    invocation_done,
    job_id,
    outcomes,
    timer,
    topic_json,
    topic_stream,
)

MIB = 1 << 20
SMALL_MULTIPART = {"MULTIPART_THRESHOLD_BYTES": str(2 * MIB), "PART_SIZE_BYTES": str(MIB),
                   "COPY_CONCURRENCY": "4"}


def manifest_without_commit_fields(cloud: Cloud, job: str = JOB) -> dict:
    manifest = cloud.manifest(job)
    assert manifest is not None
    return {k: v for k, v in manifest.items() if k not in ("committedAt", "mpsRequestId")}


def test_multipart_copy_keeps_bytes_type_and_metadata(cloud: Cloud) -> None:
    big = bytes(range(256)) * (5 * MIB // 256 + 123)  # 5 MiB and a bit: 8 parts on 4 workers
    cloud.put_source("out/big.mp4", big, content_type="video/mp4", meta={"owner": "media-team", "take": "7"})
    cloud.put_source("out/small.srt", b"1\n00:00:01 --> 00:00:02\nhi\n", content_type="application/x-subrip",
                     meta={"lang": "zh"})
    cloud.job(JOB, ["out/big.mp4", "out/small.srt"])
    assert outcomes(cloud.invoke(topic_json(JOB), **SMALL_MULTIPART)) == {JOB: "committed"}
    parts = cloud.oss_log("UploadPartCopy")
    assert len(parts) == 8
    assert len(cloud.oss_log("CopyObject")) == 1
    assert cloud.oss_admin.uploads() == []
    big_dest = cloud.oss_admin.object(DEST, f"iproduction/{JOB}/big.mp4")
    small_dest = cloud.oss_admin.object(DEST, f"iproduction/{JOB}/small.srt")
    assert cloud.oss_admin.read(DEST, f"iproduction/{JOB}/big.mp4") == big
    assert (big_dest["content_type"], big_dest["meta"], big_dest["object_type"]) == (
        "video/mp4", {"owner": "media-team", "take": "7"}, "Multipart")
    assert (small_dest["content_type"], small_dest["meta"]) == ("application/x-subrip", {"lang": "zh"})
    files = {f["key"]: f for f in cloud.manifest(JOB)["files"]}
    assert files[f"iproduction/{JOB}/big.mp4"]["etag"] == big_dest["etag"]
    assert files[f"iproduction/{JOB}/big.mp4"]["etag"].endswith("-8")
    assert files[f"iproduction/{JOB}/big.mp4"]["crc64"] == str(cloud.oss_admin.object(SOURCE, "out/big.mp4")["crc64"])


def test_multi_gib_synthetic_file(cloud: Cloud) -> None:
    cloud.put_source("out/huge.bin", synthetic=(3 * 1024 * MIB + 17, 42), content_type="application/octet-stream")
    cloud.job(JOB, ["out/huge.bin"])
    assert outcomes(cloud.invoke(topic_json(JOB), COPY_CONCURRENCY="16")) == {JOB: "committed"}
    dest = cloud.oss_admin.object(DEST, f"iproduction/{JOB}/huge.bin")
    source = cloud.oss_admin.object(SOURCE, "out/huge.bin")
    assert (dest["size"], dest["crc64"]) == (source["size"], source["crc64"])
    assert len(cloud.oss_log("UploadPartCopy")) == 64  # 3 GiB / 64 MiB = 49 parts, evened to 4 waves of 16


def test_copies_without_destination_crc_are_verified_by_size(cloud: Cloud) -> None:
    cloud.oss.knobs.configure({"settings": {"crc_on_copy": False}})
    cloud.put_source("out/big.mp4", b"v" * (3 * MIB))
    cloud.put_source("out/small.jpg", b"s" * 1000)
    cloud.job(JOB, ["out/big.mp4", "out/small.jpg"])
    assert outcomes(cloud.invoke(topic_json(JOB), **SMALL_MULTIPART)) == {JOB: "committed"}
    assert cloud.oss_admin.object(DEST, f"iproduction/{JOB}/big.mp4")["crc64"] is None
    assert cloud.oss_admin.read(DEST, f"iproduction/{JOB}/big.mp4") == b"v" * (3 * MIB)


def integrity_lines(result) -> list[dict]:
    return [line for line in result.json_logs() if line.get("event") == "copy.integrity"]


def test_a_copy_answering_another_etag_is_copied_again(cloud: Cloud) -> None:
    """Copies carry no CRC (as on OSS): only the ETag CopyObject returns shows the copy is wrong."""
    body = bytes(range(256)) * 40
    cloud.oss.knobs.configure({"settings": {"crc_on_copy": False},
                               "faults": [{"op": "CopyObject", "kind": "corrupt", "times": 1}]})
    cloud.seed_job_with_files(JOB, {"out/a.jpg": body})
    result = cloud.invoke(topic_json(JOB))
    assert outcomes(result) == {JOB: "committed"}
    assert cloud.oss.knobs.public()["injected"] == {"corrupt": 1}
    assert [line["attempt"] for line in integrity_lines(result)] == [1]
    assert "ETag" in integrity_lines(result)[0]["error"]
    assert len(cloud.oss_log("CopyObject")) == 2
    assert cloud.oss_admin.read(DEST, f"iproduction/{JOB}/a.jpg") == body
    assert cloud.manifest(JOB)["files"][0]["etag"] == cloud.oss_admin.object(SOURCE, "out/a.jpg")["etag"]
    assert invocation_done(result)["retries"] == {"copy-integrity": 1}


def test_a_copy_wrong_on_every_attempt_ends_in_error_without_a_manifest(cloud: Cloud) -> None:
    body = b"w" * 5000
    cloud.oss.knobs.configure({"settings": {"crc_on_copy": False},
                               "faults": [{"op": "CopyObject", "kind": "corrupt"}]})
    cloud.seed_job_with_files(JOB, {"out/a.jpg": body})
    result = cloud.invoke(topic_json(JOB))
    assert outcomes(result) == {JOB: "error"}
    assert cloud.manifest(JOB) is None
    assert [line["attempt"] for line in integrity_lines(result)] == [1, 2, 3]
    assert len(cloud.oss_log("CopyObject")) == 3
    assert invocation_done(result)["retries"] == {"copy-integrity": 2}  # the third failure is not retried
    # The wrong copy left behind is not taken for intact: the trigger's retry copies it again.
    cloud.oss.knobs.configure({"faults": []})
    assert outcomes(cloud.invoke(topic_json(JOB))) == {JOB: "committed"}
    assert cloud.oss_admin.read(DEST, f"iproduction/{JOB}/a.jpg") == body


def put_multipart_source(cloud: Cloud, key: str, data: bytes, part: int) -> str:
    """``data`` uploaded in parts of ``part`` bytes: the source gets a multipart ``<hex>-N`` ETag."""
    source = oss2.Bucket(oss2.StsAuth(AK, SECRET, TOKEN), cloud.oss.url, SOURCE)
    upload_id = source.init_multipart_upload(key, headers={"Content-Type": "image/jpeg"}).upload_id
    parts = [oss2.models.PartInfo(n, source.upload_part(key, upload_id, n, data[start:start + part]).etag)
             for n, start in enumerate(range(0, len(data), part), start=1)]
    source.complete_multipart_upload(key, upload_id, parts)
    return cloud.oss_admin.object(SOURCE, key)["etag"]


def test_a_small_source_with_a_multipart_etag_is_verified_by_head_and_skipped_by_crc(cloud: Cloud) -> None:
    data = bytes(range(256)) * 1000  # 250 KiB in 3 parts: under the threshold, so one CopyObject
    etag = put_multipart_source(cloud, "out/mp.jpg", data, 100 * 1024)
    assert etag.endswith("-3")
    cloud.job(JOB, ["out/mp.jpg"])
    cloud.oss.log.clear()
    dest_key = f"iproduction/{JOB}/mp.jpg"
    assert outcomes(cloud.invoke(topic_json(JOB))) == {JOB: "committed"}
    assert [e["key"] for e in cloud.oss_log("CopyObject")] == [dest_key]
    assert not cloud.oss_log("InitiateMultipartUpload", "UploadPartCopy")
    heads = [e for e in cloud.oss_log("HeadObject") if e["bucket"] == DEST]
    assert [e["key"] for e in heads] == [dest_key]  # the -N ETag says nothing of the bytes: checked by HEAD
    assert cloud.oss_admin.read(DEST, dest_key) == data
    assert cloud.manifest(JOB)["files"][0]["etag"] == etag
    cloud.oss.log.clear()
    assert outcomes(cloud.invoke(topic_json(JOB))) == {JOB: "already-committed"}
    assert not cloud.oss_log("CopyObject")
    # Without the manifest, the destination's CRC-64 proves the file intact: not copied again.
    cloud.oss_admin.delete_object(DEST, f"iproduction/{JOB}/manifest.json")
    cloud.oss.log.clear()
    result = cloud.invoke(topic_json(JOB))
    assert outcomes(result) == {JOB: "committed"}
    line = next(line for line in result.json_logs() if line.get("event") == "job.outcome")
    assert (line["copied"], line["skipped"]) == (0, 1)
    assert not cloud.oss_log("CopyObject")
    assert cloud.manifest(JOB)["files"][0]["etag"] == etag


def test_a_multipart_etag_copy_without_crc_cannot_be_proven_and_is_copied_again(cloud: Cloud) -> None:
    cloud.oss.knobs.configure({"settings": {"crc_on_copy": False}})
    data = b"n" * (150 * 1024)
    put_multipart_source(cloud, "out/mp.jpg", data, 100 * 1024)
    cloud.job(JOB, ["out/mp.jpg"])
    assert outcomes(cloud.invoke(topic_json(JOB))) == {JOB: "committed"}
    assert cloud.oss_admin.object(DEST, f"iproduction/{JOB}/mp.jpg")["crc64"] is None
    cloud.oss_admin.delete_object(DEST, f"iproduction/{JOB}/manifest.json")
    cloud.oss.log.clear()
    assert outcomes(cloud.invoke(topic_json(JOB))) == {JOB: "committed"}
    assert len(cloud.oss_log("CopyObject")) == 1  # the README's Limits: copied again
    assert cloud.oss_admin.read(DEST, f"iproduction/{JOB}/mp.jpg") == data


def test_rerun_after_partial_copy_copies_nothing_twice_and_gives_the_same_manifest(cloud: Cloud) -> None:
    files = {f"out/frame-{i:03}.jpg": f"frame {i}".encode() * 100 for i in range(12)}
    files["out/movie.mp4"] = b"m" * (3 * MIB)
    cloud.seed_job_with_files(JOB, files)
    # First run: 5 copies succeed, then every copy fails for good (5xx beyond the retries).
    cloud.oss.knobs.configure({"faults": [{"op": "CopyObject", "kind": "503", "after": 5},
                                          {"op": "UploadPartCopy", "kind": "503", "after": 1}]})
    first = cloud.invoke(topic_json(JOB), COPY_CONCURRENCY="1", **{k: v for k, v in SMALL_MULTIPART.items()
                                                                   if k != "COPY_CONCURRENCY"})
    assert outcomes(first) == {JOB: "error"}
    assert cloud.manifest(JOB) is None
    assert cloud.oss_admin.uploads() == []  # the failed multipart upload was aborted
    copied_before = {e["key"] for e in cloud.oss_log("CopyObject") if e["status"] == 200}
    assert len(copied_before) == 5
    cloud.oss.knobs.configure({"faults": []})
    cloud.oss.log.clear()
    second = cloud.invoke(topic_json(JOB), **SMALL_MULTIPART)
    assert outcomes(second) == {JOB: "committed"}
    copied_after = {e["key"] for e in cloud.oss_log("CopyObject")}
    assert not copied_after & copied_before  # nothing intact was copied again
    assert len(copied_after) == 7
    assert cloud.manifest(JOB)["fileCount"] == 13
    # The same manifest as a run that never failed.
    other = "99c6ca184c0e432bbf5b665e2a150000"
    cloud.job(other, list(files))
    cloud.invoke(topic_json(other), **SMALL_MULTIPART)
    clean = json.loads(json.dumps(manifest_without_commit_fields(cloud, other)).replace(other, JOB))
    assert manifest_without_commit_fields(cloud) == clean


def test_two_concurrent_invocations_give_one_manifest(cloud: Cloud) -> None:
    files = {f"out/f{i}.jpg": bytes([i]) * 5000 for i in range(20)}
    cloud.seed_job_with_files(JOB, files)
    cloud.oss.knobs.configure({"latency": 0.01})
    instances = [cloud.function(isolated=True), cloud.function(isolated=True)]
    results = invoke_concurrently(instances, topic_stream(JOB))
    assert all(r.ok for r in results), [r.error for r in results]
    assert sorted(outcomes(r)[JOB] for r in results) in (["already-committed", "committed"],)
    manifest_puts = [e for e in cloud.oss_log("PutObject") if e["key"].endswith("manifest.json")]
    assert sorted(e["status"] for e in manifest_puts) in ([200], [200, 409])
    for key, data in files.items():
        assert cloud.oss_admin.read(DEST, f"iproduction/{JOB}/{key.split('/')[-1]}") == data


def test_time_budget_stops_new_copies_then_the_retry_resumes(cloud: Cloud) -> None:
    files = {f"out/clip-{i}.mp4": bytes([i]) * (2 * MIB) for i in range(6)}
    cloud.seed_job_with_files(JOB, files)
    cloud.oss.knobs.configure({"settings": {"copy_rate": 4 * MIB}})  # 0.5 s per copy
    short = cloud.function(timeout=3, COPY_CONCURRENCY="1")  # 3 s, 2.5 s of budget after the reserve
    first = short.invoke(topic_json(JOB))
    assert first.error_type == "UnhandledInvocationError"
    assert outcomes(first) == {JOB: "error"}
    reason = next(line["reason"] for line in first.json_logs() if line.get("event") == "job.outcome")
    assert "time budget" in reason
    assert cloud.manifest(JOB) is None
    done_first = {e["key"] for e in cloud.oss_log("CopyObject") if e["status"] == 200}
    assert 1 <= len(done_first) < 6
    cloud.oss.knobs.configure({"settings": {"copy_rate": None}})
    assert outcomes(cloud.invoke(topic_json(JOB))) == {JOB: "committed"}
    again = [e["key"] for e in cloud.oss_log("CopyObject")][len(done_first):]
    assert not set(again) & done_first
    assert cloud.manifest(JOB)["fileCount"] == 6


def test_output_in_a_bucket_outside_source_buckets_is_rejected_untouched(cloud: Cloud) -> None:
    cloud.oss_admin.create_bucket("other-bucket", "cn-hangzhou")
    cloud.put_source("out/a.jpg", b"a", bucket="other-bucket")
    cloud.job(JOB, ["out/a.jpg"], bucket="other-bucket")
    entry = cloud.invoke(topic_json(JOB), SOURCE_BUCKETS=f"{SOURCE}, trusted-bucket").result["jobs"][0]
    assert entry["outcome"] == "rejected"
    assert "not in SOURCE_BUCKETS" in entry["reason"]
    assert not [e for e in cloud.oss_log() if e.get("bucket") == "other-bucket" or e.get("source_bucket")]
    assert not [e for e in cloud.oss_log() if e["method"] in ("PUT", "POST", "DELETE")]


def test_a_result_key_that_would_escape_the_prefix_is_rejected(cloud: Cloud) -> None:
    cloud.put_source("out/ok.jpg", b"ok")
    cloud.job(JOB, ["out/ok.jpg", "out/../../etc/passwd"])
    entry = cloud.invoke(topic_json(JOB)).result["jobs"][0]
    assert entry["outcome"] == "rejected"
    assert "unsafe result key" in entry["reason"]
    assert not [e for e in cloud.oss_log() if e["method"] in ("PUT", "POST", "DELETE")]
    assert not [e for e in cloud.oss_log() if e.get("bucket") == SOURCE]


def test_many_files_in_waves(cloud: Cloud) -> None:
    files = {f"frames/{i:04}.jpg": str(i).encode() * 10 for i in range(300)}
    cloud.seed_job_with_files(JOB, files)
    threads_before = threading.active_count()
    assert outcomes(cloud.invoke(topic_json(JOB))) == {JOB: "committed"}
    assert cloud.manifest(JOB)["fileCount"] == 300
    assert len(cloud.oss_log("ListObjectsV2")) == 1
    assert len(cloud.oss_log("HeadObject")) == 300
    assert threading.active_count() - threads_before < 200


def test_the_sweep_aborts_uploads_a_killed_instance_left(cloud: Cloud) -> None:
    """Uploads older than twice the function's timeout have no live owner; younger ones are kept."""
    dest = oss2.Bucket(oss2.StsAuth(AK, SECRET, TOKEN), cloud.oss.url, DEST)
    orphan = dest.init_multipart_upload(f"iproduction/{JOB}/big.mp4").upload_id
    dest.upload_part(f"iproduction/{JOB}/big.mp4", orphan, 1, b"p" * 200_000)
    live = dest.init_multipart_upload(f"iproduction/{job_id(2)}/other.mp4").upload_id
    outside = oss2.Bucket(oss2.StsAuth(AK, SECRET, TOKEN), cloud.oss.url, DEST).init_multipart_upload(
        "elsewhere/x.bin").upload_id
    for upload in cloud.oss.store.uploads():  # the emulator's clock for these two: 11 minutes ago
        if upload.upload_id in (orphan, outside):
            upload.initiated -= 660
    assert cloud.function(timeout=300).invoke(timer()).ok  # a sweep: orphans are older than 2 × 300 s
    assert {u["upload_id"] for u in cloud.oss_admin.uploads()} == {live, outside}
