"""The CRC-64 checks the storage layer makes itself (oss2's own are off: they cost a table per request)."""

from __future__ import annotations

import json
from collections.abc import Callable

from iproduction import retry
from iproduction.config import load_settings
from iproduction.crc64 import crc64
from iproduction.credentials import Credentials, CredentialsSource
from iproduction.storage import Storage
from tests.unit.scripted_server import ScriptedServer, ok

DOCUMENT = {"jobId": "j", "attempts": 1}
BODY = json.dumps(DOCUMENT).encode()


def storage_on(server: ScriptedServer) -> Storage:
    settings = load_settings({"DEST_BUCKET": "dest", "FC_REGION": "cn-hangzhou", "OSS_ENDPOINT": server.url})
    return Storage(settings, CredentialsSource(Credentials("ak", "sk")), policy=retry.RetryPolicy(base=0.01))


def test_a_put_stored_with_another_crc_is_sent_again(serve: Callable[..., ScriptedServer]) -> None:
    def stored(crc: int) -> bytes:
        return ok(b"", f"x-oss-hash-crc64ecma: {crc}", 'ETag: "E"')

    server = serve(lambda r: stored(crc64(r.body) ^ 1), lambda r: stored(crc64(r.body)))
    storage = storage_on(server)
    storage.put_json(storage.dest, "iproduction/_pending/j", DOCUMENT, None)
    assert [r.request_line.split()[0] for r in server.received] == ["PUT", "PUT"]
    assert server.received[0].body == server.received[1].body
    assert storage.stats.snapshot() == {"oss-crc": 1}


def test_a_read_damaged_on_the_way_is_read_again(serve: Callable[..., ScriptedServer]) -> None:
    damaged = b'{"jobId": "x", "attempts": 1}'
    crc = f"x-oss-hash-crc64ecma: {crc64(BODY)}"
    server = serve(ok(damaged, crc), ok(BODY, crc), ok(BODY))  # the last without a CRC: nothing to check
    storage = storage_on(server)
    assert storage.get_json(storage.dest, "iproduction/_pending/j", None) == DOCUMENT
    assert storage.stats.snapshot() == {"oss-crc": 1}
    assert storage.get_json(storage.dest, "iproduction/_pending/j", None) == DOCUMENT
