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
    short = cloud.function(timeout=2.2, COPY_CONCURRENCY="1")  # 2 s of budget, minus the reserve
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
