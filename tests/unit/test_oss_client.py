"""The OSS client against a scripted server: CRC-64 checks of what is sent and read, and request
timeouts capped by the invocation's time left."""

from __future__ import annotations

import asyncio
import datetime
import gc
import json
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from iproduction import retry
from iproduction.budget import Deadline
from iproduction.crc64 import crc64
from iproduction.credentials import Credentials, CredentialsSource
from iproduction.errors import BudgetExceededError, TransientError
from iproduction.oss import OSSClient, new_session
from iproduction.runtime import GC_THRESHOLDS, build_runtime, tls_context
from tests.unit.scripted_server import ScriptedServer, ok

DOCUMENT = {"jobId": "j", "attempts": 1}
BODY = json.dumps(DOCUMENT).encode()


def run(server: ScriptedServer, work: Callable[[OSSClient], Any]) -> tuple[Any, OSSClient]:
    async def main() -> tuple[Any, OSSClient]:
        session = new_session(4, False, False)
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


def test_a_free_connection_slot_goes_to_a_job_s_own_request_before_file_copies(
        serve: Callable[..., ScriptedServer]) -> None:
    """One slot, held; two file copies (the copier's client) wait for it, then a job's lookup: the lookup
    goes next, so that a job's lookup and commit never queue behind the copies of other jobs."""
    server = serve(lambda r: (time.sleep(0.2), ok())[1], ok(), ok(), ok())

    async def main() -> None:
        session = new_session(4, False, False)
        client = OSSClient(session, CredentialsSource(Credentials("ak", "sk")), endpoint_for=lambda region: server.url,
                           slots=1)
        copies = client.yielding()
        assert copies.slots is client.slots and copies.stats is client.stats
        bucket = client.bucket("dest", "cn-hangzhou")
        try:
            held = asyncio.ensure_future(client.head(bucket, "held", None))
            await asyncio.sleep(0.05)
            waiting = [asyncio.ensure_future(copies.head(bucket, f"copy{n}", None)) for n in (1, 2)]
            await asyncio.sleep(0.01)
            await asyncio.gather(held, *waiting, client.head(bucket, "lookup", None))
        finally:
            await session.close()

    asyncio.run(main())
    keys = [r.request_line.split()[1].rsplit("/", 1)[1] for r in server.received]
    assert keys == ["held", "lookup", "copy1", "copy2"]


def test_no_request_outlives_the_time_left(serve: Callable[..., ScriptedServer]) -> None:
    """A server that never answers: the request is cut at the deadline, not at the client's timeout."""
    server = serve(lambda r: (time.sleep(5), None)[1])
    deadline = Deadline(0.5)
    started = time.monotonic()
    with pytest.raises(BudgetExceededError, match="cut at the deadline"):
        run(server, lambda c: c.head(c.bucket("dest", "cn-hangzhou"), "k", deadline))
    assert time.monotonic() - started < 1.5


def test_a_connection_cut_at_the_deadline_is_the_budgets_end() -> None:
    """A stream's GET cut by its own timeout at the deadline breaks the upload it feeds; the timer can also
    fire a tick before the deadline. Either way the job's reason is the time budget, not the network."""
    async def main() -> None:
        session = new_session(1, False, False)
        client = OSSClient(session, CredentialsSource(Credentials("ak", "sk")), endpoint_for=lambda region: "",
                           policy=retry.RetryPolicy(base=0.01))

        async def cut() -> None:
            raise aiohttp.ClientPayloadError("Response payload is not completed")

        try:
            with pytest.raises(BudgetExceededError, match="cut at the deadline"):
                await client.call(cut, "PUT dest/k", Deadline(0.001))
            with pytest.raises(TransientError, match="no answer or a cut one") as failed:
                await client.call(cut, "PUT dest/k", Deadline(60))
            assert not isinstance(failed.value, BudgetExceededError)
        finally:
            await session.close()

    asyncio.run(main())


def test_no_request_starts_without_time_left(serve: Callable[..., ScriptedServer]) -> None:
    server = serve(ok(b""))
    with pytest.raises(BudgetExceededError):
        run(server, lambda c: c.head(c.bucket("dest", "cn-hangzhou"), "k", Deadline(-1)))
    assert server.received == []


def certificate(tmp: Path) -> tuple[Path, Path]:
    """A self-signed certificate for ``localhost`` (its own CA), and its key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp / "cert.pem", tmp / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def test_tls_is_verified_against_the_ca_bundle_and_connections_are_kept(serve: Callable[..., ScriptedServer],
                                                                        tmp_path: Path) -> None:
    cert, key = certificate(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    server = serve(ok(b"", "x-oss-hash-crc64ecma: 0"), ok(b"", "x-oss-hash-crc64ecma: 0"), tls=tls)

    async def twice(context: ssl.SSLContext) -> None:
        session = new_session(2, context, False)
        client = OSSClient(session, CredentialsSource(Credentials("ak", "sk")), endpoint_for=lambda r: server.url,
                           policy=retry.RetryPolicy(attempts=1))
        try:
            for _ in range(2):
                assert await client.head(client.bucket("dest", "cn-hangzhou"), "k", None) is not None
        finally:
            await session.close()

    asyncio.run(twice(tls_context({"SSL_CERT_FILE": str(cert)})))
    assert server.connections == 1
    with pytest.raises(TransientError, match="ClientConnectorCertificateError"):
        asyncio.run(twice(tls_context({})))  # certifi's bundle does not know this certificate


def test_the_instance_freezes_its_start_up_objects_and_collects_the_young_generation_less_often() -> None:
    env = {"DEST_BUCKET": "dest-bucket", "FC_REGION": "cn-hangzhou", "ALIBABA_CLOUD_ACCESS_KEY_ID": "ak",
           "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "sk", "OSS_ENDPOINT": "http://127.0.0.1:1",
           "MPS_ENDPOINT": "http://127.0.0.1:2"}
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    gc.unfreeze()
    runtime = build_runtime(env)
    try:
        assert gc.get_threshold() == GC_THRESHOLDS and GC_THRESHOLDS[0] > 700
        assert gc.get_freeze_count() > 0
    finally:
        runtime.close()
        gc.unfreeze()
        gc.set_threshold(*before)


def test_tls_and_the_environment_s_proxies_are_set_up_once_and_only_where_needed() -> None:
    env = {"DEST_BUCKET": "dest-bucket", "FC_REGION": "cn-hangzhou", "ALIBABA_CLOUD_ACCESS_KEY_ID": "ak",
           "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "sk"}
    local = build_runtime({**env, "OSS_ENDPOINT": "http://127.0.0.1:1", "MPS_ENDPOINT": "http://127.0.0.1:2"})
    cloud = build_runtime(env)
    try:
        assert local.oss.session.connector._ssl is False  # nothing to verify on http://
        assert isinstance(cloud.oss.session.connector._ssl, ssl.SSLContext)
        assert not local.oss.session.trust_env  # no proxy in this environment: not looked up per request
    finally:
        local.close()
        cloud.close()
