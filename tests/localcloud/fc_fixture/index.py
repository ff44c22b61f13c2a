"""Fixture function for the FC invoker tests: behaviour chosen by the event's "action"."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import helper

INIT_CALLS = 0
INIT_CONTEXT: dict[str, Any] = {}


def initialize(context: Any) -> None:
    global INIT_CALLS
    INIT_CALLS += 1
    INIT_CONTEXT["request_id"] = context.request_id
    print(json.dumps({"msg": "initialize", "calls": INIT_CALLS}))
    if os.environ.get("FIXTURE_INIT_FAIL"):
        raise RuntimeError(f"bad configuration: {os.environ['FIXTURE_INIT_FAIL']}")
    if os.environ.get("FIXTURE_INIT_SLEEP"):
        time.sleep(float(os.environ["FIXTURE_INIT_SLEEP"]))


def _context_fields(context: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "request_id": context.request_id,
        "region": context.region,
        "account_id": context.account_id,
        "function": vars(context.function),
        "has_credentials": hasattr(context, "credentials"),
        "has_service": hasattr(context, "service"),
        "logger": type(context.logger).__name__,
    }
    if hasattr(context, "credentials"):
        fields["credentials"] = vars(context.credentials)
    if hasattr(context, "service"):
        fields["service"] = vars(context.service)
    if hasattr(context, "log_project"):
        fields["log_project"] = context.log_project
    return fields


def handler(event: bytes, context: Any) -> Any:
    request = json.loads(event) if event else {}
    action = request.get("action", "echo") if isinstance(request, dict) else "echo"
    if action == "echo":
        return {
            "event_type": type(event).__name__,
            "event": event.decode(),
            "init_calls": INIT_CALLS,
            "init_request_id": INIT_CONTEXT.get("request_id"),
            "helper": helper.VALUE,
            "pid": os.getpid(),
            "cwd": os.getcwd(),
            "sys_path0": sys.path[0],
            "context": _context_fields(context),
            "env": {k: v for k, v in os.environ.items()
                    if k.startswith(("FC_", "ALIBABA_CLOUD_", "FIXTURE_", "DEST_", "MPS_", "OSS_"))},
        }
    if action == "raise":
        raise ValueError(request.get("message", "something is wrong"))
    if action == "sleep":
        print(json.dumps({"msg": "sleeping", "seconds": request["seconds"]}), flush=True)
        time.sleep(request["seconds"])
        return {"slept": request["seconds"]}
    if action == "log":
        for index in range(request.get("lines", 3)):
            print(json.dumps({"msg": "line", "index": index}))
        print("plain stderr line", file=sys.stderr)
        context.logger.info("via context.logger")
        sys.stdout.write("no newline at the end")
        return {"logged": True}
    if action == "text":
        return "plain text"
    raise KeyError(action)
