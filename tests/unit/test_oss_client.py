"""The OSS client against a scripted server: CRC-64 checks of what is sent and read, and request
timeouts capped by the invocation's time left."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from iproduction import retry
from iproduction.budget import Deadline
from iproduction.crc64 import crc64
from iproduction.credentials import Credentials, CredentialsSource
from iproduction.errors import BudgetExceededError
from iproduction.oss import OSSClient, new_session
from tests.unit.scripted_server import ScriptedServer, ok

DOCUMENT = {"jobId": "j", "attempts": 1}
BODY = json.dumps(DOCUMENT).encode()


def run(server: ScriptedServer, work: Callable[[OSSClient], Any]) -> tuple[Any, OSSClient]:
    async def main() -> tuple[Any, OSSClient]:
        session = new_session(4)
        client = OSSClient(session, CredentialsSource(Credentials("ak", "sk")), endpoint_for=lambda region: server.url,
                           slots=4, policy=retry.RetryPolicy(base=0.01))
        try:
            return await work(client), client
        finally:
            await session.close()

    return asyncio.run(main())


def test_a_put_stored_with_another_crc_is_sent_again(serve: Callable[..., ScriptedServer]) -> None:
    def stored(crc: int) -> bytes:
        return ok(b"", f"x-oss-hash-crc64ecma: {crc}", 'ETag: "E"')

    server = serve(lambda r: stored(crc64(r.body) ^ 1), lambda r: stored(crc64(r.body)))
    _, client = run(server, lambda c: c.put_json(c.bucket("dest", "cn-hangzhou"), "iproduction/_pending/j",
                                                 DOCUMENT, None))
    assert [r.request_line.split()[0] for r in server.received] == ["PUT", "PUT"]
    assert server.received[0].body == server.received[1].body
    assert client.stats.snapshot() == {"oss-crc": 1}


def test_a_read_damaged_on_the_way_is_read_again(serve: Callable[..., ScriptedServer]) -> None:
    damaged = b'{"jobId": "x", "attempts": 1}'
    crc = f"x-oss-hash-crc64ecma: {crc64(BODY)}"
    server = serve(ok(damaged, crc), ok(BODY, crc), ok(BODY))  # the last without a CRC: nothing to check

    async def work(c: OSSClient) -> list[Any]:
        bucket = c.bucket("dest", "cn-hangzhou")
        return [await c.get_json(bucket, "iproduction/_pending/j", None) for _ in range(2)]

    found, client = run(server, work)
    assert found == [DOCUMENT, DOCUMENT]
    assert client.stats.snapshot() == {"oss-crc": 1}


def test_no_request_outlives_the_time_left(serve: Callable[..., ScriptedServer]) -> None:
    """A server that never answers: the request is cut at the deadline, not at the client's timeout."""
    server = serve(lambda r: (time.sleep(5), None)[1])
    deadline = Deadline(0.5)
    started = time.monotonic()
    with pytest.raises(BudgetExceededError, match="cut at the deadline"):
        run(server, lambda c: c.head(c.bucket("dest", "cn-hangzhou"), "k", deadline))
    assert time.monotonic() - started < 1.5


def test_no_request_starts_without_time_left(serve: Callable[..., ScriptedServer]) -> None:
    server = serve(ok(b""))
    with pytest.raises(BudgetExceededError):
        run(server, lambda c: c.head(c.bucket("dest", "cn-hangzhou"), "k", Deadline(-1)))
    assert server.received == []
