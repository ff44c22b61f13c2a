"""The FC entry points behind ``index.initialize``, ``index.handler`` and ``index.pre_stop``: the instance's
runtime is built once (``runtime.py``), each event runs ``flow.run`` on its loop, and the handler raises only
at the end, only for ``error`` outcomes."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import Counter
from typing import Any

from . import flow, logs
from .budget import Deadline
from .config import describe, log_options, unknown_variables
from .credentials import resolve_credentials
from .errors import InvocationFailedError
from .outcomes import JobReport, Outcome, short
from .runtime import Runtime, build_runtime

_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def initialize(context: Any) -> None:
    """FC initializer: validate the configuration once per instance (raises naming the variable)."""
    global _runtime
    logs.configure(*log_options(os.environ))
    with _runtime_lock:
        if _runtime is None:
            for name, closest in unknown_variables(os.environ):
                hint = f"; did you mean {closest}?" if closest else ""
                logs.warning("config.unknown_variable", variable=name, closest=closest,
                             message=f"{name} is not a variable this function reads (it is ignored){hint}")
            _runtime = build_runtime(os.environ, context)
            logs.info("instance.initialized", settings=describe(_runtime.settings))


def pre_stop(context: Any) -> None:
    """FC preStop hook: close the instance's connections and stop its loop."""
    global _runtime
    with _runtime_lock:
        if _runtime is not None:
            _runtime.close()
            _runtime = None


def handler(event: bytes, context: Any) -> dict[str, Any]:
    """FC handler: ``{"jobs": [...]}``; raises :class:`InvocationFailedError` if a job is ``error``."""
    started = time.monotonic()
    request_id = getattr(context, "request_id", None) or str(uuid.uuid4())
    token = logs.request_id.set(request_id)
    try:
        if _runtime is None:  # no initializer ran (none configured): the first invocation builds the runtime
            initialize(context)
        rt = _runtime
        assert rt is not None
        retries_before = rt.retries()
        rt.credentials.update(resolve_credentials(os.environ, context))
        deadline = Deadline.from_context(context, started)
        reports = rt.io.run(invoke(rt, event, deadline, request_id))
        logs.info("invocation.done", outcomes=Counter(report.outcome.value for report in reports), jobs=len(reports),
                  durationMs=round((time.monotonic() - started) * 1000),
                  retries=dict(Counter(rt.retries()) - Counter(retries_before)),  # the ones made by this invocation
                  mpsRate={"limit": rt.mps.limiter.limit(), "cuts": rt.mps.limiter.rate.cuts})
        failed = [r for r in reports if r.outcome is Outcome.ERROR]
        if failed:
            detail = "; ".join(f"{r.job_id or r.message_id}: {r.reason}" for r in failed[:5])
            raise InvocationFailedError(short(f"{len(failed)} of {len(reports)} job(s) ended in error "
                                              f"(the trigger will retry): {detail}", 1000))
        return {"jobs": [report.public() for report in reports]}
    finally:
        logs.request_id.reset(token)


async def invoke(rt: Runtime, event: bytes | str, deadline: Deadline, request_id: str) -> list[JobReport]:
    """The flow on the loop, in the invocation's log context."""
    logs.request_id.set(request_id)
    return await flow.run(rt, event, deadline)
