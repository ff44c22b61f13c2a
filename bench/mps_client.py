"""CPU per MPS call of the ways httpx can send them, at a batch's concurrency: ``python -m bench.mps_client``.

``httpx.AsyncClient`` scans its pool's connections on every request (encode/httpx#3215), so its CPU per
call grows with the pool; the synchronous ``httpx.Client`` on a small executor pays a thread switch per
call instead; on aiohttp's transport (``httpx-aiohttp``, the function's way) neither. Each way sends
``calls`` signed ``QueryIProductionJob`` calls, ``concurrency`` at a time, to the MPS emulator (in its own
process, no rate cap, no latency) and reports the client process's CPU per call (user + system, best of
``rounds``).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from bench.cloud import AK, SECRET, Cloud
from iproduction import signing
from iproduction.credentials import Credentials
from iproduction.mps import HEADERS, VERSION
from iproduction.runtime import new_loop


def signed(host: str, job: str) -> tuple[str, dict[str, str]]:
    query = {"JobId": job}
    headers = signing.v3_headers("QueryIProductionJob", VERSION, host, query, Credentials(AK, SECRET))
    return signing.canonical_query(query), headers


def async_client(url: str, job: str, connections: int, calls: int, concurrency: int, on_aiohttp: bool) -> float:
    host = url.split("://", 1)[1]

    async def main() -> float:
        # On aiohttp: the function's own way (mps.py), a session of ``connections`` under httpx's API.
        transport = AiohttpTransport(client=aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections))) if on_aiohttp else None
        async with httpx.AsyncClient(headers=HEADERS, limits=httpx.Limits(max_connections=connections),
                                     transport=transport) as client:
            gate = asyncio.Semaphore(concurrency)

            async def one() -> None:
                async with gate:
                    query, headers = signed(host, job)
                    (await client.post(f"{url}/?{query}", headers=headers)).raise_for_status()

            await asyncio.gather(*(one() for _ in range(concurrency)))  # warm the pool
            started = time.process_time()
            await asyncio.gather(*(one() for _ in range(calls)))
            return (time.process_time() - started) / calls

    loop = new_loop()
    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


def sync_client(url: str, job: str, threads: int, calls: int) -> float:
    host = url.split("://", 1)[1]
    with httpx.Client(headers=HEADERS, limits=httpx.Limits(max_connections=threads)) as client, \
            ThreadPoolExecutor(threads) as pool:
        def one(_: int) -> None:
            query, headers = signed(host, job)
            client.post(f"{url}/?{query}", headers=headers).raise_for_status()

        list(pool.map(one, range(threads)))
        started = time.process_time()
        list(pool.map(one, range(calls)))
        return (time.process_time() - started) / calls


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.mps_client", description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64, help="calls in flight (a batch's JOB_CONCURRENCY)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with Cloud(latency=0.0) as cloud:
        job = cloud.new_job([("a.jpg", 10)])
        url, calls, concurrency = cloud.mps.url, args.calls, args.concurrency
        ways = {
            "httpx.AsyncClient, 8 connections": lambda: async_client(url, job, 8, calls, concurrency, False),
            "httpx.AsyncClient, 64 connections": lambda: async_client(url, job, 64, calls, concurrency, False),
            "httpx.Client on 8 threads": lambda: sync_client(url, job, 8, calls),
            "httpx.AsyncClient on aiohttp (httpx-aiohttp), 8 connections":
                lambda: async_client(url, job, 8, calls, concurrency, True),
            "httpx.AsyncClient on aiohttp (httpx-aiohttp), 64 connections (the function's)":
                lambda: async_client(url, job, 64, calls, concurrency, True),
        }
        print(f"| client ({args.concurrency} calls in flight) | µs of CPU per call (best of {args.rounds}) |")
        print("| --- | --- |")
        for name, way in ways.items():
            print(f"| {name} | {min(way() for _ in range(args.rounds)) * 1e6:,.0f} |")


if __name__ == "__main__":
    main()
