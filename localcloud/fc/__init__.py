"""Local Function Compute (FC 3.0) invoker for Python functions: load a code root like the FC runtime,
run the initializer once per instance and invoke ``handler(event: bytes, context)``."""

from .context import Credentials, FCContext, FCContext312, FunctionMeta, ServiceMeta, Tracing
from .instance import DEFAULT_CODE_ROOT, FunctionConfig, FunctionInstance, InvokeResult, event_bytes
from .isolated import invoke_concurrently

__all__ = [
    "DEFAULT_CODE_ROOT",
    "Credentials",
    "FCContext",
    "FCContext312",
    "FunctionConfig",
    "FunctionInstance",
    "FunctionMeta",
    "InvokeResult",
    "ServiceMeta",
    "Tracing",
    "event_bytes",
    "invoke_concurrently",
]
