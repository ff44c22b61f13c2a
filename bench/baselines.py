"""The baselines, written the way their references do it, with oss2 in the bench's own process.

* ``sequential``: HEAD + CopyObject per file in a loop, as the public FC samples copy objects.
* ``parallel``: the same per file, three files at a time (ossutil ``cp``'s default ``--jobs 3``).
* ``bare``: the same per file, ``COPY_CONCURRENCY`` at once, on the function's own OSS client (aiohttp on
  uvloop, ``iproduction.oss``), with none of the function around it: the best this machine's client side
  can do.
* ``copier``: the alibabacloud-oss-v2 Copier's defaults (reference oss.md §4) implemented with
  oss2: HEAD; CopyObject up to 200 MiB; else InitiateMultipartUpload with the source's headers,
  64 MiB parts (grown below 10,000 parts) on 3 threads, Complete, then a HEAD to compare CRC-64.

Each returns the wall time; requests are counted from the emulator's log by the caller.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import oss2
from oss2.credentials import StaticCredentialsProvider
from oss2.models import PartInfo

from bench.cloud import AK, DEST, MIB, REGION, SECRET, SOURCE, Cloud

T = TypeVar("T")

COPIER_PART_SIZE = 64 * MIB
COPIER_PARALLEL = 3
COPIER_THRESHOLD = 200 * MIB
OSSUTIL_JOBS = 3
CARRIED = ("content-type", "content-encoding", "content-disposition", "cache-control", "expires",
           "content-language")


class Client:
    """oss2 buckets for the baselines (V4 signing, like the function; a pool per thread count)."""

    def __init__(self, cloud: Cloud, threads: int = 1) -> None:
        session = oss2.Session(pool_size=max(threads, 1) + 2)
        auth = oss2.ProviderAuthV4(StaticCredentialsProvider(AK, SECRET))
        self.source = oss2.Bucket(auth, cloud.oss.url, SOURCE, session=session, region=REGION)
        self.dest = oss2.Bucket(auth, cloud.oss.url, DEST, session=session, region=REGION)

    def copy_file(self, key: str, dest_key: str) -> None:
        self.source.head_object(key)
        self.dest.copy_object(SOURCE, key, dest_key)


def sequential(cloud: Cloud, keys: list[str], prefix: str) -> float:
    client = Client(cloud)
    client.source.head_object(keys[0])  # a warm connection, like the function's
    cloud.clear_logs()
    started = time.perf_counter()
    for key in keys:
        client.copy_file(key, prefix + key.rsplit("/", 1)[-1])
    return time.perf_counter() - started


def parallel(cloud: Cloud, keys: list[str], prefix: str, jobs: int = OSSUTIL_JOBS) -> float:
    client = Client(cloud, jobs)
    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(lambda key: client.source.head_object(key), keys[:jobs]))
        cloud.clear_logs()
        started = time.perf_counter()
        list(pool.map(lambda key: client.copy_file(key, prefix + key.rsplit("/", 1)[-1]), keys))
        return time.perf_counter() - started


def on_function_client(cloud: Cloud, connections: int, work: Callable[[Any], Awaitable[T]]) -> T:
    """``work(client)`` on the function's own OSS client (``iproduction.oss``), on a uvloop loop of its own."""
    from iproduction.credentials import Credentials, CredentialsSource
    from iproduction.oss import OSSClient, new_session
    from iproduction.runtime import new_loop

    async def main() -> T:
        session = new_session(connections, False, False)
        client = OSSClient(session, CredentialsSource(Credentials(AK, SECRET)),
                           endpoint_for=lambda region: cloud.oss.url, slots=connections)
        try:
            return await work(client)
        finally:
            await session.close()

    loop = new_loop()
    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


def bare(cloud: Cloud, keys: list[str], prefix: str, concurrency: int) -> float:
    """The function's requests without the function: HEAD + CopyObject per file, ``concurrency`` at once,
    on the function's own OSS client. What the client side of this machine can do at best."""
    async def work(client: Any) -> float:
        from iproduction.oss import copy_source

        source, dest = client.bucket(SOURCE, REGION), client.bucket(DEST, REGION)

        async def copy(key: str) -> None:
            await client.head(source, key, None)
            await client.send("PUT", dest, prefix + key.rsplit("/", 1)[-1], None,
                              headers={"x-oss-copy-source": copy_source(SOURCE, key)})

        await asyncio.gather(*(client.head(source, key, None) for key in keys[:concurrency]))  # warm connections
        cloud.clear_logs()
        started = time.perf_counter()
        await asyncio.gather(*(copy(key) for key in keys))
        return time.perf_counter() - started

    return on_function_client(cloud, concurrency, work)


def copier(cloud: Cloud, key: str, dest_key: str, part_size: int = COPIER_PART_SIZE,
           parallel_num: int = COPIER_PARALLEL, threshold: int = COPIER_THRESHOLD) -> float:
    client = Client(cloud, parallel_num)
    client.source.head_object(key)
    cloud.clear_logs()
    started = time.perf_counter()
    head = client.source.head_object(key)
    size = head.content_length
    if size <= threshold:
        client.dest.copy_object(SOURCE, key, dest_key)
        return time.perf_counter() - started
    while size / part_size >= 10_000:
        part_size *= 2
    headers = {k: v for k, v in head.headers.items() if k.lower() in CARRIED or k.lower().startswith("x-oss-meta-")}
    upload_id = client.dest.init_multipart_upload(dest_key, headers=headers).upload_id
    ranges = [(start, min(start + part_size, size) - 1) for start in range(0, size, part_size)]

    def part(numbered: tuple[int, tuple[int, int]]) -> PartInfo:
        number, byte_range = numbered
        result = client.dest.upload_part_copy(SOURCE, key, byte_range, dest_key, upload_id, number)
        return PartInfo(number, result.etag, size=byte_range[1] - byte_range[0] + 1)

    with ThreadPoolExecutor(parallel_num) as pool:
        parts = list(pool.map(part, enumerate(ranges, start=1)))
    client.dest.complete_multipart_upload(dest_key, upload_id, parts)
    copied = client.dest.head_object(dest_key)
    if copied.server_crc != head.server_crc:
        raise RuntimeError("the Copier baseline's CRC-64 check failed")
    return time.perf_counter() - started


def cpu_per_request(cloud: Cloud, keys: list[str], *, lean: bool, rounds: int = 200, tries: int = 3) -> float:
    """CPU seconds per HEAD (one at a time, no waiting, best of ``tries``) of oss2 as shipped (on
    requests), or of the function's own OSS client (``lean``: aiohttp on uvloop, ``iproduction.oss``)."""
    latency = cloud.latency
    cloud.configure(latency=0.0)
    try:
        if lean:
            async def measure(client: Any) -> float:
                source = client.bucket(SOURCE, REGION)
                await client.head(source, keys[0], None)
                best = float("inf")
                for _ in range(tries):
                    started = time.process_time()
                    for i in range(rounds):
                        await client.head(source, keys[i % len(keys)], None)
                    best = min(best, (time.process_time() - started) / rounds)
                return best

            return on_function_client(cloud, 2, measure)
        client = Client(cloud)
        client.source.head_object(keys[0])
        best = float("inf")
        for _ in range(tries):
            started = time.process_time()
            for i in range(rounds):
                client.source.head_object(keys[i % len(keys)])
            best = min(best, (time.process_time() - started) / rounds)
        return best
    finally:
        cloud.configure(latency=latency)
