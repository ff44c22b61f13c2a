"""A local Function Compute instance of a Python function (handler loading, initializer, invocation).

In-process mode runs the initializer and each invocation in a worker thread of this process, so a
timeout is reported but the thread **cannot be killed** (it keeps running in the background; the next
invocation starts a fresh instance). In-process invocations are serialized process-wide because the
environment, ``sys.stdout`` and ``sys.modules`` are process-global (an instance's modules are in
``sys.modules`` only while it runs, see :mod:`localcloud.fc.loader`). ``isolated=True`` runs the instance
in its own Python process (see :mod:`localcloud.fc.isolated`): killed at the timeout, truly concurrent.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .capture import capture
from .context import RUNTIMES, Credentials, build_context, fc_environment, make_logger
from .loader import CodeRoot

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CODE_ROOT = REPO_ROOT / "handler"
_PACKAGE_DIR = str(Path(__file__).resolve().parent)
_PROCESS_LOCK = threading.RLock()

Event = bytes | bytearray | str | dict | list


def new_request_id() -> str:
    """An FC-style request id, e.g. ``1-6523a3b1-15c85f4b-8a5e2d4e6a1b``."""
    return f"1-{int(time.time()):08x}-{secrets.token_hex(4)}-{secrets.token_hex(6)}"


def event_bytes(event: Event) -> bytes:
    """The payload as FC hands it to a Python 3 handler: bytes (dicts and lists as JSON)."""
    if isinstance(event, (bytes, bytearray)):
        return bytes(event)
    if isinstance(event, str):
        return event.encode()
    return json.dumps(event, ensure_ascii=False).encode()


@dataclass
class FunctionConfig:
    """Everything that defines a function instance (picklable, shared by both modes)."""

    code_root: str = str(DEFAULT_CODE_ROOT)
    handler: str = "index.handler"
    initializer: str | None = "index.initialize"
    #: The preStop lifecycle hook (``instanceLifecycleConfig.preStop``): run when the instance ends, if the
    #: code root defines it.
    pre_stop: str | None = "index.pre_stop"
    env: dict[str, str | None] = field(default_factory=dict)
    timeout: float = 300
    initialization_timeout: float | None = None
    memory: int = 1024
    runtime: str = "python3.10"
    region: str = "cn-hangzhou"
    account_id: str = "1234567890123456"
    function_name: str = "iproduction-collector"
    qualifier: str = "LATEST"
    version_id: str | None = None
    credentials: Credentials | None = None
    log_project: str = ""
    log_store: str = ""
    echo_logs: bool = True
    enforce_timeout: bool = True  # False in an isolated child: the parent enforces it
    python: str | None = None  # the interpreter of an isolated instance (default: this one's)

    @property
    def init_timeout(self) -> float:
        return self.timeout if self.initialization_timeout is None else self.initialization_timeout


@dataclass
class InvokeResult:
    """What one invocation gave. ``error_type`` is FC's ``X-Fc-Error-Type``: None,
    ``UnhandledInvocationError``, ``InitializationError`` or ``FunctionTimeout``."""

    request_id: str
    result: Any = None
    error_type: str | None = None
    error_message: str | None = None
    exception_type: str | None = None
    stack: list[list[str]] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    duration: float = 0.0
    init_duration: float | None = None
    instance_id: str = ""

    @property
    def ok(self) -> bool:
        return self.error_type is None

    @property
    def error(self) -> dict[str, Any] | None:
        """FC's error body ``{"errorMessage", "errorType", "stackTrace"}``, or None."""
        if self.ok:
            return None
        return {"errorMessage": self.error_message, "errorType": self.exception_type or self.error_type,
                "stackTrace": self.stack}

    @property
    def body(self) -> Any:
        """What FC answers: the handler's return value, or the error body."""
        return self.result if self.ok else self.error

    def json_logs(self) -> list[dict[str, Any]]:
        """The log lines that are JSON objects, parsed."""
        parsed = []
        for line in self.logs:
            with contextlib.suppress(ValueError):
                value = json.loads(line)
                if isinstance(value, dict):
                    parsed.append(value)
        return parsed


def fc_stack(exc: BaseException) -> list[list[str]]:
    """FC's ``stackTrace``: ``[["File \\"/code/index.py\\"", "line 2", "in handler", "raise ..."], ...]``."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith(_PACKAGE_DIR)]
    return [[f'File "{f.filename}"', f"line {f.lineno}", f"in {f.name}", f.line or ""] for f in frames]


@contextlib.contextmanager
def patched_environ(env: dict[str, str | None]) -> Iterator[None]:
    """Set (or, for None, remove) variables for the block, then restore the previous values."""
    saved = {name: os.environ.get(name) for name in env}
    try:
        for name, value in env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def resolve(modules: dict[str, Any], target: str) -> Callable[..., Any]:
    module_name, _, attribute = target.rpartition(".")
    if not module_name:
        raise ValueError(f"handler {target!r} is not of the form module.function")
    function = getattr(modules[module_name], attribute, None)
    if not callable(function):
        raise AttributeError(f"module '{module_name}' has no function '{attribute}'")
    return function


def run_with_timeout(function: Callable[[], Any], timeout: float | None) -> tuple[bool, Any, float]:
    """Run in a daemon thread. Returns (finished, outcome, seconds); outcome is the value or the exception."""
    outcome: list[Any] = []

    def target() -> None:
        try:
            outcome.append((True, function()))
        except BaseException as exc:
            outcome.append((False, exc))

    started = time.monotonic()
    thread = threading.Thread(target=target, name="fc-invocation", daemon=True)
    thread.start()
    thread.join(timeout)
    elapsed = time.monotonic() - started
    if not outcome:
        return False, None, elapsed
    return True, outcome[0], elapsed


class FunctionInstance:
    """One function instance: ``FunctionInstance(code_root, env={...}).invoke(event)``.

    The initializer runs once, on the first invocation. After an initialization failure or a timeout the
    next invocation starts a fresh instance (modules re-imported, initializer run again), like FC.
    """

    def __init__(self, code_root: str | Path | None = None, handler: str = "index.handler",
                 initializer: str | None = "index.initialize", *, env: dict[str, str | None] | None = None,
                 timeout: float = 300, initialization_timeout: float | None = None, memory: int = 1024,
                 runtime: str = "python3.10", region: str = "cn-hangzhou",
                 credentials: Credentials | dict[str, str] | None = None, isolated: bool = False,
                 echo_logs: bool = True, **options: Any) -> None:
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {RUNTIMES}")
        if isinstance(credentials, dict):
            credentials = Credentials(**credentials)
        self.config = FunctionConfig(
            code_root=str(Path(code_root or DEFAULT_CODE_ROOT).resolve()), handler=handler,
            initializer=initializer, env=dict(env or {}), timeout=timeout,
            initialization_timeout=initialization_timeout, memory=memory, runtime=runtime, region=region,
            credentials=credentials, echo_logs=echo_logs, **options)
        self.isolated = isolated
        self._lock = threading.Lock()
        self._backend: Any = None
        if isolated:
            from .isolated import IsolatedBackend

            self._backend = IsolatedBackend(self.config)
        self.phase_hook: Callable[[str], None] | None = None
        self.log_sink: Callable[[str], None] | None = None
        self._handler: Callable[..., Any] | None = None
        self._code: CodeRoot | None = None
        self.instance_id = ""
        self._logger, self._request_filter = make_logger(f"{self.config.function_name}.{id(self):x}")

    @classmethod
    def from_config(cls, config: FunctionConfig, isolated: bool = False) -> FunctionInstance:
        instance = cls(config.code_root, config.handler, config.initializer, runtime=config.runtime)
        instance.config = config
        if isolated:
            from .isolated import IsolatedBackend

            instance.isolated, instance._backend = True, IsolatedBackend(config)
        return instance

    # -- public -------------------------------------------------------------------------------
    def invoke(self, event: Event, request_id: str | None = None) -> InvokeResult:
        """Invoke the handler with ``event`` (bytes as is; str encoded; dict/list as JSON)."""
        payload, request_id = event_bytes(event), request_id or new_request_id()
        with self._lock:
            if self._backend is not None:
                return self._backend.invoke(payload, request_id)
            with _PROCESS_LOCK:
                return self._invoke_here(payload, request_id)

    @property
    def pid(self) -> int | None:
        """The process the instance runs in (None for an isolated instance not started yet)."""
        return self._backend.pid if self._backend is not None else os.getpid()

    def close(self) -> None:
        """End the instance: its preStop hook runs, as on FC (isolated mode: the process ends)."""
        if self._backend is not None:
            self._backend.close()
        elif self._handler is not None:
            with _PROCESS_LOCK:
                self._stop_here()
        self._handler = self._code = None

    def _stop_here(self) -> None:
        """Run the code root's preStop hook, if it has one (a failure is logged, as FC logs it)."""
        config, code = self.config, self._code
        if not config.pre_stop or code is None:
            return
        module_name, _, name = config.pre_stop.rpartition(".")
        with capture(config.echo_logs, self.log_sink), patched_environ(fc_environment(config, self.instance_id)), \
                code.active():
            hook = getattr(code.modules.get(module_name), name, None)
            if hook is None:
                return
            try:
                hook(self._context(new_request_id()))
            except Exception as exc:  # FC logs a failed preStop hook and ends the instance anyway
                self._logger.error("preStop hook failed: %s: %s", type(exc).__name__, exc)

    def __enter__(self) -> FunctionInstance:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- in-process -----------------------------------------------------------------------------
    def _context(self, request_id: str) -> Any:
        creds = self.config.credentials or Credentials(
            os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID"), os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET"),
            os.environ.get("ALIBABA_CLOUD_SECURITY_TOKEN"))
        self._request_filter.request_id = request_id
        return build_context(self.config, request_id, self._logger, creds)

    def _phase(self, name: str) -> None:
        if self.phase_hook is not None:
            self.phase_hook(name)

    def _invoke_here(self, payload: bytes, request_id: str) -> InvokeResult:
        config = self.config
        if self._handler is None or self._code is None:  # a fresh instance
            self.instance_id = f"c-{secrets.token_hex(12)}"
            targets = [config.handler] + ([config.initializer] if config.initializer else [])
            self._code = CodeRoot(config.code_root, [t.rpartition(".")[0] for t in targets])
        result = InvokeResult(request_id, instance_id=self.instance_id)
        with capture(config.echo_logs, self.log_sink) as captured, \
                patched_environ(fc_environment(config, self.instance_id)), self._code.active():
            try:
                if self._handler is None and not self._start(request_id, result):
                    return result
                handler = self._handler
                assert handler is not None
                self._phase("invoke")
                finished, outcome, result.duration = run_with_timeout(
                    lambda: handler(payload, self._context(request_id)),
                    config.timeout if config.enforce_timeout else None)
                if not finished:
                    self._handler = None  # FC recycles a timed-out instance
                    self._fail(result, "FunctionTimeout", f"Function timed out after {config.timeout:g} seconds")
                elif outcome[0]:
                    result.result = outcome[1]
                else:
                    self._fail(result, "UnhandledInvocationError", exc=outcome[1])
            finally:
                result.logs = captured.lines
        return result

    def _start(self, request_id: str, result: InvokeResult) -> bool:
        """Import the handler (and initializer) module and run the initializer; False on failure."""
        config = self.config
        self._phase("init")

        code = self._code
        assert code is not None

        def start() -> Callable[..., Any]:
            modules = code.import_modules()
            handler = resolve(modules, config.handler)
            if config.initializer:
                resolve(modules, config.initializer)(self._context(request_id))
            return handler

        limit = config.init_timeout if config.enforce_timeout else None
        finished, outcome, result.init_duration = run_with_timeout(start, limit)
        if not finished:
            self._fail(result, "InitializationError",
                       f"Initializer timed out after {config.init_timeout:g} seconds")
            return False
        if not outcome[0]:
            self._fail(result, "InitializationError", exc=outcome[1])
            return False
        self._handler = outcome[1]
        return True

    @staticmethod
    def _fail(result: InvokeResult, error_type: str, message: str | None = None,
              exc: BaseException | None = None) -> None:
        result.error_type = error_type
        if exc is not None:
            result.exception_type = type(exc).__name__
            result.error_message = str(exc)
            result.stack = fc_stack(exc)
        else:
            result.error_message = message
