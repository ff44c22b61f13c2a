"""The bench's local cloud: the OSS and MPS emulators, each in a process of its own.

The machine has two cores. An emulator in a thread of the bench (or of the function) would share a
GIL with the client it serves and charge its own CPU to the client's wall time, so each emulator runs
as ``python -m localcloud.oss|mps`` in its own process; the function runs isolated (FC-like, its own
process) and the baselines run in the bench process. The emulators verify no OSS signature (their CPU
stands in for OSS's, not ours); MPS checks its V3 signatures as usual.
"""

from __future__ import annotations

import base64
import functools
import io
import os
import random
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localcloud.fc import FunctionInstance
from localcloud.fc.context import Credentials
from localcloud.mps import MpsAdmin
from localcloud.oss import OssAdmin

ROOT = Path(__file__).resolve().parents[1]
AK = "LTAI5tBenchmarkKey000001"
SECRET = "bench-secret-0123456789abcdef"
REGION = "cn-hangzhou"
REMOTE_REGION = "cn-shanghai"
SOURCE = "mps-results"
REMOTE = "mps-results-sh"
DEST = "dest-bucket"
KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30
SEED_BATCH = 500


@dataclass
class Process:
    """An emulator started as ``python -m <module>``; its output goes to a temp file."""

    module: str
    args: list[str]
    url: str = ""
    popen: subprocess.Popen[bytes] | None = None
    output: Path | None = None

    def start(self) -> Process:
        handle, name = tempfile.mkstemp(prefix=f"bench-{self.module.rsplit('.', 1)[-1]}-", suffix=".log")
        self.output = Path(name)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        self.popen = subprocess.Popen([sys.executable, "-m", self.module, "--port", "0", *self.args],
                                      stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      cwd=ROOT, env=env)
        os.close(handle)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            found = re.search(r"http://127\.0\.0\.1:\d+", self.output.read_text(errors="replace"))
            if found:
                self.url = found.group(0)
                return self
            if self.popen.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.module} did not start")

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        if self.output is not None:
            self.output.unlink(missing_ok=True)


def snapshot(revision: str, into: Path) -> Path:
    """``handler/`` as committed at ``revision``, extracted under ``into`` (other engineers may be
    editing the working tree while a long run loads fresh instances from it)."""
    archive = subprocess.run(["git", "archive", "--format=tar", revision, "handler"], cwd=ROOT, check=True,
                             capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        if hasattr(tarfile, "data_filter"):  # Python 3.10.12+: extract plain files only
            tar.extractall(into, filter="data")
        else:
            tar.extractall(into)
    return into / "handler"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss(pid: int) -> int:
    """The process's peak resident set size (``VmHWM``) in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


def job_id(n: int) -> str:
    return f"be{n:030x}"


def synthetic(size: int) -> dict[str, Any]:
    """Bytes generated on read. One seed for all: the emulator builds a 1 MiB random block per seed,
    which would otherwise cost it ~2.5 ms of CPU on the first HEAD of every object."""
    return {"synthetic": {"size": size, "seed": "bench"}}


@functools.lru_cache(maxsize=8)
def payload(size: int) -> dict[str, Any]:
    """Real (pseudo-random) bytes, base64 for the admin API; the same for every file of a size."""
    return {"base64": base64.b64encode(random.Random(size).randbytes(size)).decode()}


@dataclass
class Cloud:
    """Both emulators plus what the function and the baselines need to reach them."""

    latency: float = 0.02
    code_root: Path = ROOT / "handler"
    copy_rate: float | None = 200 * MIB
    bandwidth: float | None = None
    qps: int | None = None
    profile: str = "arrival"  # the emulators' latency profile (localcloud/common.py)
    oss: Process = field(init=False)
    mps: Process = field(init=False)
    jobs_made: int = 0

    def __post_init__(self) -> None:
        self.oss = Process("localcloud.oss", []).start()
        self.mps = Process("localcloud.mps", ["--access-key-id", AK, "--access-key-secret", SECRET]).start()
        self.oss_admin = OssAdmin(self.oss.url)
        self.mps_admin = MpsAdmin(self.mps.url)
        self.oss_admin.wait_healthy()
        self.mps_admin.wait_healthy()
        self.oss_admin.create_bucket(SOURCE, REGION)
        self.oss_admin.create_bucket(DEST, REGION)
        self.oss_admin.create_bucket(REMOTE, REMOTE_REGION)
        self.configure()

    def close(self) -> None:
        self.oss_admin.close()
        self.mps_admin.close()
        self.oss.stop()
        self.mps.stop()

    def __enter__(self) -> Cloud:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- settings ---------------------------------------------------------------------------------
    def configure(self, **changes: Any) -> None:
        """Change ``latency`` and its ``profile`` (both emulators), ``copy_rate`` and ``bandwidth`` (OSS,
        bytes/s, None: no limit) or ``qps`` (the MPS cap, None: none); the others keep their values."""
        unknown = set(changes) - {"latency", "profile", "copy_rate", "bandwidth", "qps"}
        if unknown:
            raise ValueError(f"unknown setting(s) {sorted(unknown)}")
        for name, value in changes.items():
            setattr(self, name, value)
        self.oss_admin.knobs(latency=self.latency, profile=self.profile,
                             settings={"copy_rate": self.copy_rate, "bandwidth": self.bandwidth})
        self.mps_admin.knobs(latency=self.latency, profile=self.profile, settings={"qps": self.qps})

    # -- seeding ----------------------------------------------------------------------------------
    def new_job(self, files: list[tuple[str, int]], *, bucket: str = SOURCE, region: str = REGION,
                real: bool = False) -> str:
        """Seed result files ``(key, size)`` and a finished MPS job listing them. Synthetic files cost
        nothing but their ETag is not their MD5: ``real`` bytes where a transfer checks the MD5."""
        self.jobs_made += 1
        job = job_id(self.jobs_made)
        self.seed_objects(bucket, [(f"out/{job}/{key}", size) for key, size in files], real=real)
        self.mps_admin.seed({"jobs": {job: self._job(job, [f"out/{job}/{key}" for key, _ in files], bucket, region)}})
        return job

    def new_jobs(self, count: int, files: list[tuple[str, int]]) -> list[str]:
        """Many jobs of the same shape, seeded in bulk."""
        jobs = [job_id(self.jobs_made + i + 1) for i in range(count)]
        self.jobs_made += count
        self.seed_objects(SOURCE, [(f"out/{job}/{key}", size) for job in jobs for key, size in files])
        self.mps_admin.seed({"jobs": {job: self._job(job, [f"out/{job}/{key}" for key, _ in files], SOURCE, REGION)
                                      for job in jobs}})
        return jobs

    def seed_objects(self, bucket: str, objects: list[tuple[str, int]], real: bool = False) -> None:
        batch = max(1, min(SEED_BATCH, (16 * MIB) // max(size for _, size in objects))) if real else SEED_BATCH
        for start in range(0, len(objects), batch):
            self.oss_admin.seed({"objects": [
                {"bucket": bucket, "key": key, "content_type": "image/jpeg", "meta": {"bench": "1"},
                 **(payload(size) if real else synthetic(size))} for key, size in objects[start:start + batch]]})

    @staticmethod
    def _job(job: str, keys: list[str], bucket: str, region: str) -> dict[str, Any]:
        host = f"{bucket}.oss-{region}.aliyuncs.com"
        return {"Type": "IProduction", "State": "Success", "FunctionName": "ImageCartoonize",
                "PipelineId": "39f8e0bc005e4f309379701645f40000", "Input": f"oss://{host}/input/{job}.mp4",
                "Output": f"oss://{host}/out/{job}/{{source}}-{{sequenceId}}.jpg", "JobParams": "{}",
                "UserData": "null",
                "Result": {"Code": "Success", "Message": "Successful.",
                           "Data": {"result": [{"file": key} for key in keys]}}}

    # -- the function -----------------------------------------------------------------------------
    def env(self, **overrides: str) -> dict[str, str]:
        return {"DEST_BUCKET": DEST, "FC_REGION": REGION, "OSS_ENDPOINT": self.oss.url, "MPS_ENDPOINT": self.mps.url,
                "ALIBABA_CLOUD_ACCESS_KEY_ID": AK, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET,
                "LOG_LEVEL": "WARNING", **overrides}

    def function(self, timeout: float = 300, *, code_root: Path | None = None, python: str | None = None,
                 **overrides: str) -> FunctionInstance:
        """A fresh function instance in a process of its own (``.pid``), like an FC instance: of
        ``code_root`` (default ours, ``handler/``), on ``python`` (default the bench's interpreter)."""
        return FunctionInstance(code_root or self.code_root, env=dict(self.env(**overrides)), timeout=timeout,
                                isolated=True, echo_logs=False, credentials=Credentials(AK, SECRET), region=REGION,
                                python=python)

    # -- reading the emulators --------------------------------------------------------------------
    def clear_logs(self) -> None:
        """Start counting afresh. An emulator logs a request just after answering it: wait a moment so
        that the answer a client just got is not counted as the next request."""
        time.sleep(0.05)
        self.oss_admin.clear_log()
        self.mps_admin.clear_log()
        self.mps_admin.reset_stats()

    def drop_outputs(self, job: str) -> None:
        """Delete what the function wrote for ``job`` (streamed bodies take disk space in the emulator)."""
        for item in self.oss_admin.objects(DEST, f"iproduction/{job}/"):
            self.oss_admin.delete_object(DEST, item["key"])

    def requests(self) -> Counter[str]:
        """Requests per operation (OSS and MPS) since the last :meth:`clear_logs`."""
        ops = Counter(entry.get("op", "?") for entry in self.oss_admin.log())
        ops.update(entry.get("op", "?") for entry in self.mps_admin.log())
        return ops
