"""The FC 3.0 ``context`` object and environment variables of a Python function (fc.md §2).

``python3.10`` follows the FC 2.0-style field list (``credentials``, ``service``, ``tracing``);
``python3.12`` follows the FC 3.0 class sketch (no ``credentials``, no ``service``; ``log_project`` and
``log_store`` on the context itself).
"""

from __future__ import annotations

import logging
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any

RUNTIMES = ("python3.9", "python3.10", "python3.12")


@dataclass
class Credentials:
    access_key_id: str | None = None
    access_key_secret: str | None = None
    security_token: str | None = None


@dataclass
class FunctionMeta:
    name: str
    handler: str
    memory: int
    timeout: int
    initializer: str | None = None
    initialization_timeout: int | None = None
    version_id: str | None = None
    qualifier: str = "LATEST"


@dataclass
class ServiceMeta:
    """python3.10 only (FC 2.0 field list); FC 3.0 has no services, so ``name`` is the function name."""

    name: str
    log_project: str = ""
    log_store: str = ""
    qualifier: str = "LATEST"
    version_id: str = ""


@dataclass
class Tracing:
    """python3.10 only; the field names inside are UNCONFIRMED (fc.md §2), all empty locally."""

    span_context: str | None = None
    jaeger_endpoint: str | None = None
    span_baggages: dict[str, str] = field(default_factory=dict)
    parent_span_id: str | None = None


@dataclass
class FCContext:
    """``context`` on python3.10 (and 3.9)."""

    request_id: str
    function: FunctionMeta
    service: ServiceMeta
    region: str
    account_id: str
    credentials: Credentials
    logger: logging.Logger
    tracing: Tracing = field(default_factory=Tracing)

    def getLogger(self) -> logging.Logger:
        return self.logger


@dataclass
class FCContext312:
    """``context`` on python3.12: no ``credentials`` (use the ALIBABA_CLOUD_* variables), no ``service``."""

    account_id: str
    request_id: str
    function: FunctionMeta
    logger: logging.Logger
    log_project: str
    log_store: str
    region: str


class _CurrentStdout:
    """A stream that writes to whatever ``sys.stdout`` is at the time (so capture sees it)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


class _RequestIdFilter(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.request_id = ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = self.request_id
        return True


class _UtcFormatter(logging.Formatter):
    converter = time.gmtime

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S", self.converter(record.created)) + f".{int(record.msecs):03d}Z"


def make_logger(name: str) -> tuple[logging.Logger, _RequestIdFilter]:
    """FC-style ``context.logger``: ``<UTC time> <request id> [LEVEL] message`` lines on stdout."""
    logger = logging.getLogger(f"localcloud.fc.{name}")
    logger.handlers.clear()
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = logging.StreamHandler(_CurrentStdout())  # type: ignore[arg-type]
    handler.setFormatter(_UtcFormatter("%(asctime)s %(request_id)s [%(levelname)s] %(message)s"))
    request_filter = _RequestIdFilter()
    handler.addFilter(request_filter)
    logger.addHandler(handler)
    return logger, request_filter


def build_context(config: Any, request_id: str, logger: logging.Logger,
                  credentials: Credentials) -> FCContext | FCContext312:
    """The context for one call of the initializer or the handler; ``config`` is a FunctionConfig."""
    meta = FunctionMeta(config.function_name, config.handler, config.memory, math.ceil(config.timeout),
                        config.initializer, math.ceil(config.init_timeout) if config.initializer else None,
                        config.version_id, config.qualifier)
    if config.runtime == "python3.12":
        return FCContext312(config.account_id, request_id, meta, logger, config.log_project, config.log_store,
                            config.region)
    service = ServiceMeta(config.function_name, config.log_project, config.log_store, config.qualifier,
                          config.version_id or "")
    return FCContext(request_id, meta, service, config.region, config.account_id, credentials, logger)


def fc_environment(config: Any, instance_id: str) -> dict[str, str | None]:
    """FC's variables for the instance, then the credentials, then the function's own ``env``.

    A value of None removes the variable while the function runs.
    """
    env: dict[str, str | None] = {
        "FC_RUNTIME": config.runtime,
        "FC_TIMEOUT": str(math.ceil(config.timeout)),
        "FC_FUNC_CODE_PATH": str(config.code_root).rstrip("/") + "/",
        "FC_FUNCTION_HANDLER": config.handler,
        "FC_FUNCTION_MEMORY_SIZE": str(config.memory),
        "FC_FUNCTION_NAME": config.function_name,
        "FC_REGION": config.region,
        "FC_ACCOUNT_ID": config.account_id,
        "FC_INSTANCE_ID": instance_id,
        "FC_CUSTOM_LISTEN_PORT": "9000",
    }
    env["FC_FUNCTION_VERSION" if config.runtime == "python3.12" else "FC_VER_ID"] = config.version_id or "LATEST"
    if config.initializer:
        env["FC_INITIALIZER_HANDLER"] = config.initializer
        env["FC_INITIALIZATION_TIMEOUT"] = str(math.ceil(config.init_timeout))
    creds = config.credentials
    if creds is not None:
        env["ALIBABA_CLOUD_ACCESS_KEY_ID"] = creds.access_key_id
        env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = creds.access_key_secret
        env["ALIBABA_CLOUD_SECURITY_TOKEN"] = creds.security_token
    env.update(config.env)
    return env
