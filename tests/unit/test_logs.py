"""JSON log lines, context ids, and secrets that never get out, even URL-encoded."""

from __future__ import annotations

import io
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pytest

from iproduction import logs
from iproduction.outcomes import short

TOKEN = "CAIS-unit/token+=secret"


def capture(fn) -> list[dict]:  # type: ignore[no-untyped-def]
    buffer, saved = io.StringIO(), sys.stdout
    sys.stdout = buffer
    try:
        fn()
    finally:
        sys.stdout = saved
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_one_json_line_per_event_with_request_and_job_ids() -> None:
    def run() -> None:
        request = logs.request_id.set("req-1")
        job = logs.job_id.set("a" * 32)
        try:
            logs.info("job.outcome", outcome="committed")
            with ThreadPoolExecutor(2) as pool:
                logs.submit(pool, logs.info, "in.thread").result()
        finally:
            logs.job_id.reset(job)
            logs.request_id.reset(request)

    lines = capture(run)
    assert [(line["event"], line["requestId"], line["jobId"]) for line in lines] == [
        ("job.outcome", "req-1", "a" * 32), ("in.thread", "req-1", "a" * 32)]
    assert lines[0]["outcome"] == "committed"
    assert lines[0]["level"] == "INFO"


@pytest.mark.parametrize("form", [TOKEN, quote(TOKEN, safe=""), quote(quote(TOKEN, safe=""), safe=""),
                                  quote(TOKEN, safe="~")])
def test_secrets_are_scrubbed_in_every_encoding(form: str) -> None:
    logs.redact(TOKEN)
    text = f"server string to sign is:POST&%2F&SecurityToken%3D{form}%26x"
    assert TOKEN not in logs.scrub(text)
    assert form not in logs.scrub(text)
    assert form not in short(text)
    lines = capture(lambda: logs.error("mps.refused", message=text))
    assert form not in json.dumps(lines)


def test_throttle() -> None:
    now = [0.0]
    throttle = logs.Throttle(5.0, clock=lambda: now[0])
    assert not throttle.ready()
    now[0] = 5.0
    assert throttle.ready()
    assert not throttle.ready()
