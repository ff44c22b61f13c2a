"""A job too big for one invocation: each retry skips what an earlier one verified (the checkpoint in
the job's pending record), so the job commits after a bounded number of invocations."""

from __future__ import annotations

import json

from tests.functional.harness import DEST, JOB, SOURCE, Cloud, outcomes, topic_json

PREFIX = f"iproduction/{JOB}/"
RECORD = f"iproduction/_pending/{JOB}"


def record(cloud: Cloud) -> dict | None:
    return json.loads(cloud.oss_admin.read(DEST, RECORD)) if cloud.oss_admin.object(DEST, RECORD) else None


def test_a_job_no_invocation_can_verify_whole_commits_in_steps(cloud: Cloud) -> None:
    files = {f"out/f{i:02d}.jpg": f"file {i:02d} ".encode() * 40 for i in range(30)}
    cloud.seed_job_with_files(JOB, files)
    for key, data in list(files.items())[:20]:  # copied by earlier invocations that then ran out of time
        cloud.oss_admin.put_object(DEST, PREFIX + key[4:], data, content_type="image/jpeg")
    # 50 ms per request on 2 connections: 30 source HEADs alone take 0.75 s, the budget of a 1 s
    # function is 0.5 s (its reserve kept back).
    cloud.oss.knobs.configure({"latency": 0.05})
    short = cloud.function(timeout=1, COPY_CONCURRENCY="2")
    verified = [0]
    for _ in range(12):
        result = short.invoke(topic_json(JOB))
        if outcomes(result) == {JOB: "committed"}:
            break
        assert outcomes(result) == {JOB: "error"}
        saved = record(cloud)
        assert saved is not None and len(saved["verified"]) > verified[-1]  # every invocation makes progress
        verified.append(len(saved["verified"]))
    else:
        raise AssertionError(f"not committed after 12 invocations (verified: {verified})")
    assert len(verified) > 2  # it took more than one invocation
    manifest = cloud.manifest(JOB)
    assert manifest is not None and manifest["fileCount"] == 30
    assert manifest["totalBytes"] == sum(len(data) for data in files.values())
    for entry in manifest["files"]:
        source_key = "out/" + entry["key"][len(PREFIX):]
        source, dest = cloud.oss_admin.object(SOURCE, source_key), cloud.oss_admin.object(DEST, entry["key"])
        assert entry["source"] == f"oss://{SOURCE}/{source_key}"
        assert (entry["size"], entry["etag"], entry["crc64"], entry["contentType"]) == (
            source["size"], dest["etag"], str(source["crc64"]), "image/jpeg")
        assert cloud.oss_admin.read(DEST, entry["key"]) == files[source_key]
    assert sorted(e["key"][len(PREFIX):] for e in manifest["files"]) == sorted(k[4:] for k in files)
    assert record(cloud) is None  # the checkpoint went with the pending record after the commit


def test_a_checkpoint_entry_whose_destination_changed_is_checked_again(cloud: Cloud) -> None:
    files = {f"out/f{i}.jpg": f"file {i} ".encode() * 40 for i in range(3)}
    cloud.seed_job_with_files(JOB, files)
    entries = []
    for key, data in files.items():
        dest = cloud.oss_admin.put_object(DEST, PREFIX + key[4:], data, content_type="image/jpeg")
        entries.append({"source": f"oss://{SOURCE}/{key}", "key": PREFIX + key[4:], "size": len(data),
                        "crc64": str(dest["crc64"]), "etag": dest["etag"], "contentType": "image/jpeg",
                        "transfer": "server-side"})
    cloud.oss_admin.put_object(DEST, RECORD, json.dumps({
        "jobId": JOB, "firstSeen": "2026-11-25T12:00:00Z", "lastChecked": "2026-11-25T12:00:00Z",
        "attempts": 1, "lastState": "Success", "verified": entries}))
    # Written over since the checkpoint: same size, other bytes.
    changed = cloud.oss_admin.put_object(DEST, PREFIX + "f0.jpg", b"X" * len(files["out/f0.jpg"]))
    assert changed["etag"] != entries[0]["etag"]

    assert outcomes(cloud.invoke(topic_json(JOB))) == {JOB: "committed"}
    assert [e["key"] for e in cloud.oss_log("HeadObject") if e.get("bucket") == SOURCE] == ["out/f0.jpg"]
    assert [e["key"] for e in cloud.oss_log("CopyObject")] == [PREFIX + "f0.jpg"]
    assert cloud.oss_admin.read(DEST, PREFIX + "f0.jpg") == files["out/f0.jpg"]
    by_key = {e["key"]: e for e in cloud.manifest(JOB)["files"]}
    assert by_key[PREFIX + "f0.jpg"]["etag"] == cloud.oss_admin.object(DEST, PREFIX + "f0.jpg")["etag"]
    assert by_key[PREFIX + "f1.jpg"]["etag"] == entries[1]["etag"]
    assert record(cloud) is None


def test_a_short_invocation_finishes_files_from_the_start(cloud: Cloud) -> None:
    # 40 files, 50 ms per request on 2 connections: were every HEAD sent before any copy, the copies
    # would start after 1 s, past the 0.5 s budget of a 1 s function.
    files = {f"out/f{i:02d}.jpg": f"file {i:02d} ".encode() * 40 for i in range(40)}
    cloud.seed_job_with_files(JOB, files)
    cloud.oss.knobs.configure({"latency": 0.05})
    result = cloud.function(timeout=1, COPY_CONCURRENCY="2").invoke(topic_json(JOB))
    assert outcomes(result) == {JOB: "error"}
    copied = [e["key"] for e in cloud.oss_log("CopyObject") if e["status"] == 200]
    assert copied
    assert len(record(cloud)["verified"]) == len(copied)
