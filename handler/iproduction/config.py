"""Configuration from environment variables, validated once per instance (``initialize``)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from .errors import ConfigError
from .logs import FORMATS, LEVELS

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
REGION_RE = re.compile(r"^[a-z]{2,}(-[a-z0-9]+)+$")
URL_RE = re.compile(r"^https?://[^/\s?#]+/?$")

#: Region ids where OSS runs (https://www.alibabacloud.com/help/en/oss/user-guide/regions-and-endpoints); another
#: is refused unless it is ``FC_REGION`` (FC runs there) or named in ``EXTRA_REGIONS`` (a newer region).
REGIONS = frozenset({
    # Chinese mainland
    "cn-hangzhou", "cn-shanghai", "cn-nanjing", "cn-fuzhou", "cn-wuhan-lr", "cn-qingdao", "cn-beijing",
    "cn-zhangjiakou", "cn-huhehaote", "cn-wulanchabu", "cn-shenzhen", "cn-heyuan", "cn-guangzhou", "cn-chengdu",
    "cn-zhengzhou-jva",
    # Asia Pacific, Europe, Americas, Middle East
    "cn-hongkong", "ap-northeast-1", "ap-northeast-2", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3",
    "ap-southeast-5", "ap-southeast-6", "ap-southeast-7", "ap-southeast-8", "ap-south-1", "us-west-1",
    "us-east-1", "na-south-1", "eu-central-1", "eu-west-1", "me-east-1", "me-central-1",
    # Industry clouds (finance, government)
    "cn-hangzhou-finance", "cn-shanghai-finance-1", "cn-shenzhen-finance-1", "cn-beijing-finance-1",
    "cn-north-2-gov-1",
})

#: Every variable the function reads (FC's own ``FC_*`` and ``ALIBABA_CLOUD_*`` aside).
VARIABLES = frozenset({
    "DEST_BUCKET", "DEST_PREFIX", "DEST_REGION", "MPS_REGION", "MPS_ENDPOINT", "OSS_ENDPOINT", "SOURCE_BUCKETS",
    "COPY_CONCURRENCY", "MULTIPART_THRESHOLD_BYTES", "PART_SIZE_BYTES", "MPS_MAX_QPS", "PENDING_MAX_AGE_SECONDS",
    "MPS_SIGNATURE_VERSION", "MPS_TIMEOUT_SECONDS", "OSS_TIMEOUT_SECONDS", "JOB_CONCURRENCY", "LOG_LEVEL",
    "LOG_FORMAT", "EXTRA_REGIONS", "MPS_ADAPTIVE",
})
#: A variable with one of these prefixes is taken for one of ours (misspelt) when it is not one of them.
OUR_PREFIXES = ("DEST_", "MPS_", "OSS_", "COPY_", "PENDING_", "SOURCE_", "JOB_", "MULTIPART_", "PART_", "LOG_")
#: Never warned about: set by FC, the runtime or the shell.
FOREIGN_PREFIXES = ("FC_", "ALIBABA_CLOUD_", "PYTHON", "LC_", "SSL_", "REQUESTS_", "CURL_")
FOREIGN = frozenset({"PATH", "HOME", "PWD", "OLDPWD", "USER", "LOGNAME", "SHELL", "HOSTNAME", "LANG", "LANGUAGE",
                     "TERM", "TZ", "TMPDIR", "SHLVL", "LD_LIBRARY_PATH", "VIRTUAL_ENV", "HTTP_PROXY",
                     "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "GODEBUG", "MALLOC_ARENA_MAX"})

T = TypeVar("T")


@dataclass(frozen=True)
class Settings:
    """Everything the function is configured with (credentials excepted, see ``credentials``)."""

    dest_bucket: str
    dest_prefix: str
    dest_region: str
    mps_region: str
    mps_endpoint: str
    oss_endpoint: str | None
    source_buckets: frozenset[str]
    copy_concurrency: int
    multipart_threshold: int
    part_size: int
    mps_max_qps: float
    mps_adaptive: bool
    pending_max_age: int
    mps_signature: str
    mps_timeout: float
    oss_timeout: float
    job_concurrency: int

    def oss_endpoint_for(self, region: str) -> str:
        """The endpoint serving buckets of ``region`` (``OSS_ENDPOINT`` overrides all of them)."""
        return self.oss_endpoint or f"https://oss-{region}.aliyuncs.com"

    def source_allowed(self, bucket: str) -> bool:
        return not self.source_buckets or bucket in self.source_buckets


def _get(env: Mapping[str, str], name: str) -> str | None:
    return (env.get(name) or "").strip() or None


def _parse(env: Mapping[str, str], name: str, default: T, convert: Callable[[str], T],
           check: Callable[[T], bool], rule: str) -> T:
    raw = _get(env, name)
    if raw is None:
        return default
    try:
        value = convert(raw)
        if check(value):
            return value
    except ValueError:
        pass
    raise ConfigError(f"{name} must be {rule}, got {raw!r}") from None


def _flag(raw: str) -> bool:
    if raw.lower() not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        raise ValueError(raw)
    return raw.lower() in ("1", "true", "yes", "on")


def _bucket(name: str, value: str) -> str:
    if not BUCKET_RE.match(value):
        raise ConfigError(f"{name} must be an OSS bucket name (3-63 of a-z, 0-9, '-'), got {value!r}")
    return value


def _region(env: Mapping[str, str], name: str) -> str:
    own = _get(env, "FC_REGION")
    value = _get(env, name) or own
    if value is None:
        raise ConfigError(f"{name} is not set and FC_REGION is not set either")
    variable = name if _get(env, name) else "FC_REGION"
    wrong = f"{variable}={value} does not look like an Alibaba Cloud region id (e.g. cn-hangzhou, ap-southeast-1)"
    if not REGION_RE.match(value):
        raise ConfigError(wrong)
    extra = {r.strip() for r in (env.get("EXTRA_REGIONS") or "").split(",") if r.strip()}
    if value not in REGIONS | extra | {own}:
        raise ConfigError(f"{wrong}; a region newer than the function's list can be allowed with "
                          f"EXTRA_REGIONS={value}")
    return value


def log_options(env: Mapping[str, str]) -> tuple[str, str]:
    """``(LOG_LEVEL, LOG_FORMAT)``, validated (any case): ``INFO`` and ``json`` by default."""
    level = (_get(env, "LOG_LEVEL") or "INFO").upper()
    if level not in LEVELS:
        raise ConfigError(f"LOG_LEVEL must be one of {', '.join(LEVELS)} (any case), got {env['LOG_LEVEL']!r}")
    form = (_get(env, "LOG_FORMAT") or "json").lower()
    if form not in FORMATS:
        raise ConfigError(f"LOG_FORMAT must be one of {', '.join(FORMATS)} (any case), got {env['LOG_FORMAT']!r}")
    return level, form


def unknown_variables(env: Mapping[str, str]) -> list[tuple[str, str | None]]:
    """Variables that look like a misspelling of one of ours, each with the closest name we read (or None)."""
    found = []
    for name in sorted(env):
        if name in VARIABLES or name in FOREIGN or name.startswith(FOREIGN_PREFIXES):
            continue
        upper = name.upper()
        match = difflib.get_close_matches(upper, VARIABLES, n=1, cutoff=0.6)  # the best, if any is close
        closest = match[0] if match else None
        near = closest is not None and difflib.SequenceMatcher(None, closest, upper).ratio() >= 0.8
        if near or upper.startswith(OUR_PREFIXES):
            found.append((name, closest))
    return found


def _endpoint(env: Mapping[str, str], name: str) -> str | None:
    value = _get(env, name)
    if value is not None and not URL_RE.match(value):
        raise ConfigError(f"{name} must be an http(s) URL without a path, got {value!r}")
    return value.rstrip("/") if value else None


def _prefix(env: Mapping[str, str]) -> str:
    raw = env.get("DEST_PREFIX")
    value = "iproduction/" if raw is None else raw.strip()
    if value and not value.endswith("/"):
        value += "/"
    if value.startswith("/") or any(s in ("", ".", "..") for s in value.split("/")[:-1]) or \
            any(ord(c) < 32 or ord(c) == 127 for c in value) or len(value.encode()) > 512:
        raise ConfigError(f"DEST_PREFIX must be a relative key prefix such as 'iproduction/', got {raw!r}")
    return value


def load_settings(env: Mapping[str, str]) -> Settings:
    """Read and validate the configuration; raises :class:`ConfigError` naming the variable. The defaults of
    the copy and MPS settings come from the benchmarks (README, "Performance")."""
    dest_bucket = _get(env, "DEST_BUCKET")
    if dest_bucket is None:
        raise ConfigError("DEST_BUCKET is required (the destination bucket)")
    mps_region = _region(env, "MPS_REGION")
    signature = (_get(env, "MPS_SIGNATURE_VERSION") or "v3").lower()
    if signature not in ("v2", "v3"):
        raise ConfigError(f"MPS_SIGNATURE_VERSION must be v3 or v2, got {signature!r}")
    return Settings(
        dest_bucket=_bucket("DEST_BUCKET", dest_bucket),
        dest_prefix=_prefix(env),
        dest_region=_region(env, "DEST_REGION"),
        mps_region=mps_region,
        mps_endpoint=_endpoint(env, "MPS_ENDPOINT") or f"https://mts.{mps_region}.aliyuncs.com",
        oss_endpoint=_endpoint(env, "OSS_ENDPOINT"),
        source_buckets=frozenset(_bucket("SOURCE_BUCKETS", b.strip())
                                 for b in (env.get("SOURCE_BUCKETS") or "").split(",") if b.strip()),
        copy_concurrency=_parse(env, "COPY_CONCURRENCY", 64, int, lambda v: 1 <= v <= 512,
                                "an integer from 1 to 512"),
        multipart_threshold=_parse(env, "MULTIPART_THRESHOLD_BYTES", 256 * MIB, int,
                                   lambda v: 100 * KIB <= v <= GIB,
                                   "an integer from 102400 (100 KiB) to 1073741824 (1 GiB)"),
        part_size=_parse(env, "PART_SIZE_BYTES", 64 * MIB, int, lambda v: 100 * KIB <= v <= 5 * GIB,
                         "an integer from 102400 (100 KiB) to 5 GiB"),
        mps_max_qps=_parse(env, "MPS_MAX_QPS", 50.0, float, lambda v: 0 < v <= 100,
                           "a number above 0 and at most 100"),
        mps_adaptive=_parse(env, "MPS_ADAPTIVE", True, _flag, lambda v: True, "1 or 0 (true or false)"),
        pending_max_age=_parse(env, "PENDING_MAX_AGE_SECONDS", 172_800, int,
                               lambda v: v > 0, "a positive integer"),
        mps_signature=signature,
        mps_timeout=_parse(env, "MPS_TIMEOUT_SECONDS", 10.0, float, lambda v: 0 < v <= 300,
                           "a number of seconds above 0 and at most 300"),
        oss_timeout=_parse(env, "OSS_TIMEOUT_SECONDS", 60.0, float, lambda v: 0 < v <= 3600,
                           "a number of seconds above 0 and at most 3600"),
        job_concurrency=_parse(env, "JOB_CONCURRENCY", 128, int, lambda v: 1 <= v <= 256,
                               "an integer from 1 to 256"),
    )


def describe(settings: Settings) -> dict[str, Any]:
    """The settings as a loggable dict (they hold no secret)."""
    return {**settings.__dict__, "source_buckets": sorted(settings.source_buckets)}
