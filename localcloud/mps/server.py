"""The MPS (``mts`` 2014-06-18) RPC endpoint: request handling, actions, admin routes."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit
from xml.sax.saxutils import escape

from ..common import DroppedError, Emulator, EmulatorHandler
from . import errors
from .auth import Credentials, NonceCache, Received, verify
from .errors import ApiError
from .stats import CallStats
from .store import FUNCTION_NAMES, JobStore, encode_result, new_job_id, query_answer

API_VERSION = "2014-06-18"
SUBMIT_FIELDS = ("Input", "Output", "JobParams", "PipelineId", "UserData", "NotifyUrl", "ModelId",
                 "ScheduleParams")


def new_request_id() -> str:
    return str(uuid.uuid4()).upper()


def to_xml(name: str, value: Any) -> str:
    """A POP-style XML rendering of a JSON value (lists repeat the element)."""
    if isinstance(value, dict):
        return f"<{name}>{''.join(to_xml(k, v) for k, v in value.items())}</{name}>"
    if isinstance(value, list):
        return "".join(to_xml(name, item) for item in value)
    text = "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    return f"<{name}>{escape(text)}</{name}>"


class MpsHandler(EmulatorHandler):
    """One HTTP request to the emulated MPS endpoint."""

    emulator: MpsEmulator  # type: ignore[assignment]
    do_PATCH = EmulatorHandler._handle

    def dispatch(self) -> None:
        emulator = self.emulator
        arrived = time.monotonic()
        split = urlsplit(self.path)
        body = self.read_body()
        content_type = self.headers.get("Content-Type", "")
        query = parse_qsl(split.query, keep_blank_values=True)
        form = (parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
                if "application/x-www-form-urlencoded" in content_type.lower() else [])
        params = dict(query + form)
        headers = {name.lower(): ",".join(sorted(v.strip() for v in self.headers.get_all(name) or []))
                   for name in set(self.headers.keys())}
        v3 = "authorization" in headers
        action = headers.get("x-acs-action") if v3 else params.get("Action")
        fmt = (params.get("Format") or ("json" if v3 else "xml")).lower()
        request_id = new_request_id()
        self.log_fields.update(request_id=request_id, signature="v3" if v3 else "v2" if "Signature" in params
                               else None, job_id=params.get("JobId"), code=None)
        op = action or "?"
        emulator.stats.arrive(op, arrived)
        try:
            fault = self.inject(op)
            if fault is not None:
                if fault.startswith("throttle"):
                    emulator.stats.throttled(op)
                raise errors.fault_error(fault, emulator.knobs.setting("retry_after"))
            if self.command not in ("GET", "POST"):
                raise errors.unsupported_method()
            received = Received(self.command, split.path, query, headers, body, form)
            verified = verify(received, emulator.credentials(), emulator.nonces)
            if not action:
                raise errors.missing_parameter("Action")
            if not verified.version:
                raise errors.missing_parameter("Version")
            if split.path != "/":
                raise errors.action_not_found()
            if verified.version != API_VERSION:
                raise errors.invalid_version()
            if action not in emulator.actions:
                raise errors.action_not_found()
            if not emulator.stats.admit(op, emulator.knobs.setting("qps")):
                raise errors.throttling(emulator.knobs.setting("retry_after"))
            answer = emulator.actions[action](emulator, params, request_id)
            self._answer(200, answer, f"{action}Response", fmt, request_id)
        except ApiError as error:
            self._fail(error, fmt, request_id)
        except (DroppedError, OSError):
            raise
        except Exception as exc:  # an emulator bug must still give a well-formed answer
            self.log_fields["exception"] = repr(exc)
            self._fail(errors.internal_error(), fmt, request_id)

    def _fail(self, error: ApiError, fmt: str, request_id: str) -> None:
        self.log_fields["code"] = error.code
        self.emulator.stats.error(error.code)
        self._error(error, fmt, request_id)

    def _answer(self, status: int, document: dict[str, Any], root: str, fmt: str, request_id: str,
                extra: dict[str, str] | None = None) -> None:
        headers = {"x-acs-request-id": request_id, **(extra or {})}
        if fmt == "xml":
            body = '<?xml version="1.0" encoding="UTF-8"?>' + to_xml(root, document)
            self.send_bytes(status, body.encode(), "text/xml;charset=utf-8", headers)
        else:
            self.send_json(status, document, headers)

    def _error(self, error: ApiError, fmt: str, request_id: str) -> None:
        emulator = self.emulator
        message = error.message
        secret = emulator.knobs.setting("access_key_secret")
        if secret:
            message = message.replace(secret, "******")
        document = {
            "RequestId": request_id,
            "HostId": emulator.host_id,
            "Code": error.code,
            "Message": message,
            "Recommend": f"https://api.aliyun.com/troubleshoot?q={error.code}&product=Mts"
                         f"&requestId={request_id}",
        }
        self._answer(error.status, document, "Error", fmt, request_id, error.headers)

    def admin(self, route: str, document: Any) -> dict[str, Any] | None:
        emulator, method = self.emulator, self.command
        jobs = emulator.jobs
        if route == "jobs":
            if method == "GET":
                return {"jobs": jobs.all()}
            if method == "DELETE":
                return {"ok": True, "deleted": jobs.clear()}
        elif route.startswith("jobs/"):
            job_id = route[len("jobs/"):]
            if method == "GET":
                job = jobs.get(job_id)
                return None if job is None else {"job": job}
            if method == "PUT":
                return {"job": jobs.put(job_id, document or {})}
            if method == "PATCH":
                return {"job": jobs.update(job_id, document or {})}
            if method == "DELETE":
                return {"ok": True, "deleted": jobs.delete(job_id)}
        elif route == "seed" and method == "POST":
            return {"ok": True, "jobs": jobs.seed(document or {})}
        elif route == "stats":
            if method == "GET":
                return emulator.stats.public()
            if method == "DELETE":
                emulator.stats.reset()
                return {"ok": True}
        return None


def query_iproduction_job(emulator: MpsEmulator, params: dict[str, str], request_id: str) -> dict[str, Any]:
    job_id = params.get("JobId")
    if not job_id:
        raise errors.missing_parameter("JobId")
    job = emulator.jobs.get(job_id)
    if job is None and emulator.knobs.setting("unknown_job") == "error":
        raise errors.invalid_parameter("JobId")
    if job is None or job.get("Type") != "IProduction":
        return {"RequestId": request_id, "JobId": job_id}
    return query_answer(job, request_id, as_object=bool(emulator.knobs.setting("result_as_object")),
                        pending_result=emulator.knobs.setting("pending_result"))


def submit_iproduction_job(emulator: MpsEmulator, params: dict[str, str], request_id: str) -> dict[str, Any]:
    function_name = params.get("FunctionName")
    if not function_name:
        raise errors.missing_parameter("FunctionName")
    if function_name not in FUNCTION_NAMES:
        raise errors.invalid_parameter("FunctionName")
    job_id = new_job_id()
    fields = {k: params[k] for k in SUBMIT_FIELDS if k in params}
    fields.setdefault("UserData", "null")
    emulator.jobs.put(job_id, {"Type": "IProduction", "State": "Queuing", "FunctionName": function_name,
                               **fields})
    result = {"Code": "Success", "Details": [], "FunctionName": function_name, "JobId": job_id,
              "Message": "success", "State": "Queuing", "Type": "IProduction"}
    as_object = bool(emulator.knobs.setting("result_as_object"))
    return {"JobId": job_id, "RequestId": request_id,
            "Result": result if as_object else encode_result(result, False)}


class MpsEmulator(Emulator):
    """Emulated MPS endpoint; see ``localcloud/mps/README.md`` for settings and admin routes."""

    name = "mps"
    handler_class = MpsHandler
    default_settings: ClassVar[dict[str, Any]] = {
        "access_key_id": "testid",
        "access_key_secret": "testsecret",
        "security_token": None,
        "qps": None,
        "retry_after": None,
        "unknown_job": "empty",
        "result_as_object": False,
        "pending_result": "empty",
        "region": "cn-hangzhou",
        "v2_timestamp_window": 31 * 60,
        "v3_date_window": 15 * 60,
    }
    actions: ClassVar[dict[str, Any]] = {
        "QueryIProductionJob": query_iproduction_job,
        "SubmitIProductionJob": submit_iproduction_job,
    }

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **kwargs: Any) -> None:
        super().__init__(host, port, **kwargs)
        self.jobs = JobStore()
        self.stats = CallStats()
        self.nonces = NonceCache()
        self._validate()

    def _validate(self) -> None:
        settings = self.knobs.public()["settings"]
        if settings["unknown_job"] not in ("empty", "error"):
            raise ValueError('unknown_job must be "empty" or "error"')
        if settings["pending_result"] not in ("empty", "seeded"):
            raise ValueError('pending_result must be "empty" or "seeded"')
        if not settings["access_key_id"] or not settings["access_key_secret"]:
            raise ValueError("access_key_id and access_key_secret are required")

    # -- settings -------------------------------------------------------------------------
    def credentials(self) -> Credentials:
        get = self.knobs.setting
        return Credentials(get("access_key_id"), get("access_key_secret"), get("security_token"),
                           float(get("v2_timestamp_window")), float(get("v3_date_window")))

    @property
    def access_key_id(self) -> str:
        return self.knobs.setting("access_key_id")

    @property
    def access_key_secret(self) -> str:
        return self.knobs.setting("access_key_secret")

    @property
    def security_token(self) -> str | None:
        return self.knobs.setting("security_token")

    @property
    def region(self) -> str:
        return self.knobs.setting("region")

    @property
    def host_id(self) -> str:
        return f"mts.{self.region}.aliyuncs.com"

    @property
    def endpoint(self) -> str:
        """What the function takes as ``MPS_ENDPOINT``."""
        return self.url

    # -- in-process seeding -----------------------------------------------------------------
    def seed(self, document: Any) -> int:
        """Add the jobs of a seed document (``{"mps": {"jobs": ...}}``, ``{"jobs": ...}`` or the map)."""
        return self.jobs.seed(document)

    def seed_file(self, path: str | Path) -> int:
        return self.seed(json.loads(Path(path).read_text(encoding="utf-8")))

    def put_job(self, job_id: str, **fields: Any) -> dict[str, Any]:
        return self.jobs.put(job_id, fields)

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        return self.jobs.get(job_id)

    def set_state(self, job_id: str, state: str, result: Any = None) -> dict[str, Any]:
        """Move a job to ``state`` (any string; MPS documents Queuing, Analysing, Success, Fail)."""
        fields = {"State": state} if result is None else {"State": state, "Result": result}
        return self.jobs.update(job_id, fields)
