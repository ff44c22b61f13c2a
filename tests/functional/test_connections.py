"""The function's OSS connections: reused across requests, whatever oss2 leaves unread."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tests.functional.harness import JOB, Cloud, outcomes, topic_json

MIB = 1 << 20


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


def test_copies_reuse_connections(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    files = {f"out/f{i:02d}.jpg": bytes([i]) * 1000 for i in range(40)}
    cloud.seed_job_with_files(JOB, files)
    cloud.put_source("out/big.mp4", b"b" * (3 * MIB))
    cloud.job(JOB, [*files, "out/big.mp4"])
    accepted = count_connections(cloud, monkeypatch)
    result = cloud.invoke(topic_json(JOB), COPY_CONCURRENCY="4", MULTIPART_THRESHOLD_BYTES=str(2 * MIB),
                          PART_SIZE_BYTES=str(MIB))
    assert outcomes(result) == {JOB: "committed"}
    copies = cloud.oss_log("CopyObject", "UploadPartCopy", "CompleteMultipartUpload")
    assert len(copies) == 40 + 4 + 1
    # 4 copy workers, the job and lookup threads: a handful of connections, not one per copy.
    assert accepted[0] <= 12
