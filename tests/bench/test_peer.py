"""The bench's plain peer (bench/peer) keeps the contract on the paths the bench measures: every event
format, the manifest's fields, a committed job not queried again, a failed job, a re-run after a
partial copy. Run as FC runs it, against the emulators (signatures and STS token checked)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from localcloud.fc import FunctionInstance
from localcloud.fc.context import Credentials
from tests.functional.harness import AK, DEST, EVENT_FORMATS, JOB, REGION, SECRET, SOURCE, TOKEN, Cloud, started_cloud

PEER = Path(__file__).resolve().parents[2] / "bench" / "peer"
FILES = {"iproduction/out/a.jpg": b"first image", "iproduction/out/sub/b.jpg": b"second, deeper"}


@pytest.fixture
def cloud() -> Iterator[Cloud]:
    with started_cloud() as env:
        yield env


def peer(cloud: Cloud, **env: str) -> FunctionInstance:
    return FunctionInstance(PEER, env={**cloud.env, **env}, echo_logs=False, region=REGION,
                            credentials=Credentials(AK, SECRET, TOKEN))


def outcomes(result: Any) -> list[str]:
    assert result.ok, result.error
    return [job["outcome"] for job in result.result["jobs"]]


@pytest.mark.parametrize("make", list(EVENT_FORMATS.values()), ids=list(EVENT_FORMATS))
def test_every_event_format_commits(cloud: Cloud, make: Callable[[str], bytes]) -> None:
    cloud.seed_job_with_files(JOB, FILES)
    assert outcomes(peer(cloud).invoke(make(JOB))) == ["committed"]
    assert set(cloud.dest_objects(f"iproduction/{JOB}/")) == {
        f"iproduction/{JOB}/a.jpg", f"iproduction/{JOB}/sub/b.jpg", f"iproduction/{JOB}/manifest.json"}


def test_manifest_fields_and_a_second_delivery(cloud: Cloud) -> None:
    cloud.seed_job_with_files(JOB, FILES)
    assert outcomes(peer(cloud).invoke(JOB)) == ["committed"]
    manifest = cloud.manifest(JOB)
    assert manifest is not None
    sources = {o["key"]: o for o in cloud.oss_admin.objects(SOURCE, "iproduction/out/")}
    copies = cloud.dest_objects(f"iproduction/{JOB}/")
    assert manifest["schema"] == "iproduction-manifest/1" and manifest["state"] == "Success"
    assert manifest["destination"] == {"bucket": DEST, "prefix": f"iproduction/{JOB}/"}
    assert manifest["result"] == {"code": "Success", "message": "Successful."} and manifest["userData"] == "null"
    assert manifest["fileCount"] == 2 and manifest["totalBytes"] == sum(map(len, FILES.values()))
    for entry, (key, data) in zip(manifest["files"], FILES.items(), strict=True):
        dest = entry["key"]
        assert entry["source"] == f"oss://{SOURCE}/{key}" and entry["size"] == len(data)
        assert entry["crc64"] == sources[key]["crc64"] and entry["etag"] == copies[dest]["etag"].strip('"')
        assert entry["contentType"] == "image/jpeg" == copies[dest]["content_type"]
    calls = cloud.mps_calls()
    assert outcomes(peer(cloud).invoke(JOB)) == ["already-committed"] and cloud.mps_calls() == calls


def test_failed_job_and_a_rerun_after_a_partial_copy(cloud: Cloud) -> None:
    failed = "0" * 31 + "f"
    cloud.job(failed, [], state="Fail")
    assert outcomes(peer(cloud).invoke(failed)) == ["job-failed"]
    manifest = cloud.manifest(failed)
    assert manifest is not None and manifest["state"] == "Fail" and manifest["files"] == []
    cloud.seed_job_with_files(JOB, FILES)
    cloud.oss_admin.put_object(DEST, f"iproduction/{JOB}/a.jpg", FILES["iproduction/out/a.jpg"])  # copied before
    assert outcomes(peer(cloud, COPY_CONCURRENCY="1").invoke(JOB)) == ["committed"]
    assert [e["status"] for e in cloud.oss_log("CopyObject")] == [409, 200]
