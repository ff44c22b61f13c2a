"""How big each scenario is: the full suite and a smoke size for CI."""

from __future__ import annotations

from dataclasses import dataclass

from bench.cloud import GIB, KIB, MIB


@dataclass(frozen=True)
class Sizes:
    """Every size, count and repetition the suite uses."""

    name: str
    latency: float = 0.02  # seconds per request, both emulators
    copy_rate: int = 200 * MIB  # bytes/s per CopyObject / UploadPartCopy
    small_file: int = 64 * KIB
    many_files: int = 256  # scenario 1
    scaling: tuple[int, ...] = (16, 64, 256, 1024)  # scenario 6
    repeats: int = 5  # runs of ours per point (median); baselines run once
    big_file: int = 20 * GIB  # scenario 2
    memory_small: int = 5 * GIB  # scenario 5, against big_file
    batch_jobs: int = 200  # scenario 3
    batch_files: int = 4
    batch_qps: int = 100
    cold_runs: int = 7  # scenario 4
    bandwidth: int = 50 * MIB  # cross-region, per connection
    cross_files: int = 256
    cross_file_size: int = 1 * MIB
    cross_big: tuple[int, int] = (1 * GIB, 8 * GIB)
    cross_link_bound: int = 2  # COPY_CONCURRENCY at which cap × connections is below the machine's ceiling
    tune_concurrency: tuple[int, ...] = (16, 32, 64, 128)
    tune_repeats: int = 3
    tune_part_size: tuple[int, ...] = (32 * MIB, 64 * MIB, 128 * MIB, 256 * MIB, 512 * MIB)
    tune_threshold_sizes: tuple[int, ...] = (64 * MIB, 128 * MIB, 256 * MIB, 1 * GIB)
    tune_job_concurrency: tuple[int, ...] = (32, 64, 128, 256)
    peer_concurrency: int = 64  # scenario 1 against the plain peer, and the CPU per copy
    peer_rounds: int = 5  # alternating rounds, ours and the peer
    peer_warm_calls: int = 2  # warm calls per round, after the cold one
    review_files: int = 128  # the review's case against the plain peer
    review_concurrency: int = 16
    review_latency: float = 0.02
    cpu_files: int = 256  # CPU per copy: files per job, jobs per round, rounds
    cpu_jobs: int = 4
    cpu_rounds: int = 3


FULL = Sizes("full")

SMOKE = Sizes(
    "smoke", latency=0.005, small_file=4 * KIB, many_files=8, scaling=(4, 8), repeats=1, big_file=512 * MIB,
    memory_small=256 * MIB, batch_jobs=6, batch_files=2, batch_qps=100, cold_runs=1, bandwidth=200 * MIB,
    tune_repeats=1, cross_files=4, cross_file_size=64 * KIB, cross_big=(8 * MIB, 16 * MIB), tune_concurrency=(8,),
    tune_part_size=(64 * MIB,), tune_threshold_sizes=(16 * MIB,), tune_job_concurrency=(8,),
    peer_concurrency=4, peer_rounds=1, peer_warm_calls=1, review_files=8, review_concurrency=4, review_latency=0.005,
    cpu_files=8, cpu_jobs=1, cpu_rounds=1,
)
