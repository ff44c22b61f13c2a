"""JSON log lines, context ids, and secrets that never get out, even URL-encoded."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
import sys
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from iproduction import logs
from iproduction.outcomes import short

TOKEN = "CAIS-unit/token+=secret"


def capture_text(fn) -> list[str]:  # type: ignore[no-untyped-def]
    buffer, saved = io.StringIO(), sys.stdout
    sys.stdout = buffer
    try:
        fn()
    finally:
        sys.stdout = saved
    return buffer.getvalue().splitlines()


def capture(fn) -> list[dict]:  # type: ignore[no-untyped-def]
    return [json.loads(line) for line in capture_text(fn)]


@pytest.fixture
def pretty() -> Iterator[None]:
    logs.configure("INFO", "pretty")
    try:
        yield
    finally:
        logs.configure()


def test_one_json_line_per_event_with_request_and_job_ids() -> None:
    def run() -> None:
        request = logs.request_id.set("req-1")
        job = logs.job_id.set("a" * 32)
        try:
            logs.info("job.outcome", outcome="committed")

            async def in_a_task() -> None:
                logs.info("in.task")

            async def main() -> None:
                await asyncio.ensure_future(in_a_task())  # a task inherits the caller's context

            asyncio.run(main())
        finally:
            logs.job_id.reset(job)
            logs.request_id.reset(request)

    lines = capture(run)
    assert [(line["event"], line["requestId"], line["jobId"]) for line in lines] == [
        ("job.outcome", "req-1", "a" * 32), ("in.task", "req-1", "a" * 32)]
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


@pytest.mark.usefixtures("pretty")
def test_pretty_lines_read_like_the_fc_console() -> None:
    def run() -> None:
        request = logs.request_id.set("1-6751a2b3-0f1e2d3c4b5a")
        try:
            logs.info("job.outcome", jobId="a" * 32, outcome="committed", files=3, bytes=1024,
                      reason="its manifest exists", retries={"oss": 1})
            logs.debug("not.shown")
            logs.warning("config.unknown_variable", variable="COPYCONCURRENCY", closest=None)
        finally:
            logs.request_id.reset(request)
        logs.error("outside.a.request", path="a=b")

    first, second, third = capture_text(run)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} INFO  \[1-6751a2b3-0f1e2d3c4b5a\] "
                        rf"\[{'a' * 32}\] job\.outcome outcome=committed files=3 bytes=1024 "
                        r'reason="its manifest exists" retries=\{"oss":1\}', first), first
    assert second.endswith(" WARNING [1-6751a2b3-0f1e2d3c4b5a] config.unknown_variable "
                           "variable=COPYCONCURRENCY")
    assert third.endswith(' ERROR [-] outside.a.request path="a=b"')


@pytest.mark.usefixtures("pretty")
def test_secrets_are_scrubbed_in_pretty_lines_too() -> None:
    logs.redact(TOKEN)
    lines = capture_text(lambda: logs.error("mps.refused", message=f"token {TOKEN} and {quote(TOKEN, safe='')}",
                                            token=TOKEN))
    assert len(lines) == 1 and "mps.refused" in lines[0]
    assert TOKEN not in lines[0] and quote(TOKEN, safe="") not in lines[0] and "secret" not in lines[0]


def test_configure_refuses_unknown_names() -> None:
    with pytest.raises(ValueError, match="verbose"):
        logs.configure("verbose", "json")
    with pytest.raises(ValueError, match="text"):
        logs.configure("INFO", "text")


def test_throttle() -> None:
    now = [0.0]
    throttle = logs.Throttle(5.0, clock=lambda: now[0])
    assert not throttle.ready()
    now[0] = 5.0
    assert throttle.ready()
    assert not throttle.ready()


#: As long as STS issues them (hundreds of characters), with the characters that need encoding.
LONG_TOKEN = "CAIS" + "".join(f"{n:03d}q/W+x=Zk" for n in range(45)) + "GAAA=="


@pytest.mark.parametrize("encode", [
    lambda t: t, lambda t: quote(t, safe=""), lambda t: quote(quote(t, safe=""), safe=""),
    lambda t: quote(t, safe="~/"), lambda t: base64.b64encode(t.encode()).decode(),
    lambda t: base64.urlsafe_b64encode(t.encode()).decode(),
])
@pytest.mark.parametrize("cut", [None, 40, 201, 333])
def test_every_form_and_every_piece_of_a_long_secret_is_scrubbed(encode, cut: int | None) -> None:  # type: ignore[no-untyped-def]
    """A message cut short before it reached the scrubber keeps a piece of the secret, not all of it."""
    logs.redact(LONG_TOKEN)
    form = encode(LONG_TOKEN)
    text = f"server string to sign is:POST&%2F&SecurityToken%3D{form}%26x"
    if cut is not None:
        text = text[:cut + 50]
    scrubbed = logs.scrub(text)
    assert scrubbed.startswith("server string to sign is:POST&%2F&SecurityToken%3D")
    for piece in (form[i:i + logs.PIECE] for i in range(len(form) - logs.PIECE + 1)):
        assert piece not in scrubbed
    assert len(LONG_TOKEN) >= 400


def test_text_without_a_secret_is_left_alone() -> None:
    logs.redact(LONG_TOKEN)
    text = "OSS LIST dest-bucket/iproduction/88c6ca184c0e432bbf5b665e2a150000/: SignatureDoesNotMatch (HTTP 403)"
    assert logs.scrub(text) == text


def test_a_piece_of_a_short_secret_at_any_offset_is_scrubbed() -> None:
    """The quick test looks at every eighth offset only: a piece anywhere must still be found."""
    secret = "0123456789abcdefghij"  # 20 characters: pieces start at offsets 0 to 4
    logs.redact(secret)
    for offset in range(5):
        for pad in range(9):
            text = "x" * pad + secret[offset:offset + logs.PIECE] + "y" * 7
            assert secret[offset:offset + logs.PIECE] not in logs.scrub(text), (offset, pad)
