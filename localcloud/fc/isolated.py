"""Isolated mode: the function instance runs in its own Python process.

The parent sends ``("invoke", payload, request_id)`` over a socketpair; the child streams ``("phase",
"init"|"invoke")``, ``("log", line)`` and finally ``("result", InvokeResult)``. The parent enforces the
initializer and handler timeouts and kills the process when one is exceeded (the next invocation starts
a fresh process, i.e. a fresh instance). The child's working directory is the code root, like ``/code``.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import socket
import subprocess
import sys
import threading
import time
import weakref
from dataclasses import replace
from multiprocessing.connection import Connection
from typing import Any

from .instance import REPO_ROOT, FunctionConfig, FunctionInstance, InvokeResult

STARTUP_SECONDS = 30.0


def _stop(process: subprocess.Popen[bytes], conn: Connection) -> None:
    with contextlib.suppress(OSError):
        conn.close()
    if process.poll() is None:
        process.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


class IsolatedBackend:
    """The parent side: one child process per instance, started on demand."""

    def __init__(self, config: FunctionConfig) -> None:
        self.config = config
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._finalizer: weakref.finalize | None = None
        self.pid: int | None = None

    def _spawn(self) -> Connection:
        parent, child = socket.socketpair()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
        process = subprocess.Popen(
            # (-c, not -m: runpy warns when the package has already imported the module it is asked to run)
            [self.config.python or sys.executable, "-c",
             "import sys; from localcloud.fc.isolated import worker; worker(int(sys.argv[1]))", str(child.fileno())],
            pass_fds=(child.fileno(),), env=env, cwd=self.config.code_root, stdin=subprocess.DEVNULL)
        child.close()
        conn = Connection(parent.detach())
        conn.send(self.config)
        self._process, self._conn, self.pid = process, conn, process.pid
        self._finalizer = weakref.finalize(self, _stop, process, conn)
        return conn

    def close(self) -> None:
        if self._finalizer is not None:
            self._finalizer()
        self._process = self._conn = self._finalizer = None
        self.pid = None

    def invoke(self, payload: bytes, request_id: str) -> InvokeResult:
        if self._process is None or self._process.poll() is not None:
            self.close()
            self._spawn()
        conn = self._conn
        assert conn is not None
        logs: list[str] = []
        phase, started = "start", time.monotonic()
        deadline = started + STARTUP_SECONDS
        try:
            conn.send(("invoke", payload, request_id))
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not conn.poll(remaining):
                    return self._timed_out(request_id, phase, started, logs)
                message = conn.recv()
                if message[0] == "log":
                    logs.append(message[1])
                elif message[0] == "phase":
                    phase, started = message[1], time.monotonic()
                    limit = self.config.init_timeout if phase == "init" else self.config.timeout
                    deadline = started + limit
                elif message[0] == "result":
                    result: InvokeResult = message[1]
                    result.logs = logs
                    return result
        except (EOFError, OSError):
            return self._crashed(request_id, logs)

    def _timed_out(self, request_id: str, phase: str, started: float, logs: list[str]) -> InvokeResult:
        self.close()
        elapsed = time.monotonic() - started
        if phase == "invoke":
            message = f"Function timed out after {self.config.timeout:g} seconds"
            return InvokeResult(request_id, error_type="FunctionTimeout", error_message=message, logs=logs,
                                duration=elapsed)
        limit = self.config.init_timeout if phase == "init" else STARTUP_SECONDS
        return InvokeResult(request_id, error_type="InitializationError", logs=logs, init_duration=elapsed,
                            error_message=f"Initializer timed out after {limit:g} seconds")

    def _crashed(self, request_id: str, logs: list[str]) -> InvokeResult:
        code = None
        if self._process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = self._process.wait(timeout=5)
        self.close()
        return InvokeResult(request_id, error_type="UnhandledInvocationError", exception_type="InstanceExited",
                            error_message=f"the instance process exited (code {code})", logs=logs)


def invoke_concurrently(instances: list[FunctionInstance], event: Any,
                        request_id: str | None = None) -> list[InvokeResult]:
    """Invoke every instance with the same event at once (one thread each); results in order."""
    results: list[InvokeResult | None] = [None] * len(instances)
    barrier = threading.Barrier(len(instances))

    def run(index: int) -> None:
        barrier.wait()
        results[index] = instances[index].invoke(event, request_id)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(instances))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [r for r in results if r is not None]


def worker(fd: int) -> None:
    """The child side: run invocations sent by the parent until the connection closes."""
    conn = Connection(fd)
    config: FunctionConfig = conn.recv()
    send_lock = threading.Lock()

    def send(message: Any) -> None:
        with send_lock:
            conn.send(message)

    instance = FunctionInstance.from_config(replace(config, enforce_timeout=False))
    instance.phase_hook = lambda phase: send(("phase", phase))
    instance.log_sink = lambda line: send(("log", line))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            instance.close()
            return
        if message[0] != "invoke":
            instance.close()
            return
        result = instance.invoke(message[1], message[2])
        try:
            send(("result", result))
        except (pickle.PicklingError, TypeError, AttributeError):
            result.result = repr(result.result)
            send(("result", result))


if __name__ == "__main__":
    worker(int(sys.argv[1]))
