"""A local cloud for functional tests: OSS and MPS emulators, the function loaded as FC loads it,
and builders for every event format. Everything is checked from the emulators' side."""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from localcloud.fc import FunctionInstance
from localcloud.fc.context import Credentials
from localcloud.mps import MpsAdmin, MpsEmulator
from localcloud.oss import OssAdmin, OssEmulator

AK = "LTAI5tFunctionalTestKey01"
SECRET = "functional-secret-do-not-log-0123456789"
#: Shaped like an STS SecurityToken: "CAIS" and hundreds of base64 characters ('+', '/', '=' among them).
TOKEN = "CAIS-functional-sts-token/+=" + "".join(f"{n:03d}Ab+cD/eF" for n in range(48)) + "=="
SOURCE = "example-bucket"
DEST = "dest-bucket"
REGION = "cn-hangzhou"
JOB = "88c6ca184c0e432bbf5b665e2a150000"
SECRETS = (AK, SECRET, TOKEN)


def job_id(n: int) -> str:
    return f"{n:032x}"


# -- events in every format the function accepts (contract §4) -------------------------------------
def notification(job: str, key: str = "JobId", state: str = "Success") -> str:
    return json.dumps({"Code": "Success", "Details": [], "FunctionName": "ImageCartoonize", key: job,
                       "Message": "success", "State": state, "Type": "IProduction"})


def topic_stream(job: str) -> bytes:
    return notification(job).encode()


def topic_stream_attrs(job: str) -> bytes:
    return json.dumps({"body": notification(job, key="jobId"), "attrs": {"Extend": "{\"key\":\"value\"}"}}).encode()


def topic_json(job: str, message_id: str = "2F5B3C082B923D4EAC694B76D928AAAA") -> bytes:
    return json.dumps({"TopicOwner": "118620210433", "Message": notification(job), "Subscriber": "118620210433",
                       "PublishTime": 1550216480040, "SubscriptionName": "test-fc-subscribe",
                       "MessageMD5": "BA4BA9B48AC81F0F9C66F6C909C3AAAA", "TopicName": "mps",
                       "MessageId": message_id}).encode()


def cloud_event(body: str, message_id: str = "C6DB60D1574661357FA227277445AAAA") -> dict[str, Any]:
    return {"id": "c2g71017-6f65-fhcf-a814-a396fc8daaaa", "source": "MNS-iproduction-collector-mnsQueue",
            "specversion": "1.0", "type": "mns:Queue:SendMessage",
            "datacontenttype": "application/json; charset=utf-8",
            "subject": "acs:mns:cn-hangzhou:164901546557:queues/mps", "time": "2026-11-25T12:00:00.093Z",
            "aliyunaccountid": "164901546557", "aliyunregionid": REGION,
            "data": {"requestId": "606EA3074344430D4C81AAAA", "messageId": message_id, "messageBody": body}}


def queue_batch(*jobs: str) -> bytes:
    return json.dumps([cloud_event(notification(j), f"msg-{i}") for i, j in enumerate(jobs)]).encode()


def queue_single(job: str) -> bytes:
    return json.dumps(cloud_event(base64.b64encode(notification(job).encode()).decode())).encode()


def timer(*jobs: str) -> bytes:
    payload = json.dumps({"jobIds": list(jobs)}) if jobs else "sweep"
    return json.dumps({"triggerTime": "2026-11-25T12:00:00Z", "triggerName": "sweep", "payload": payload}).encode()


EVENT_FORMATS = {
    "mns-topic-stream": topic_stream,
    "mns-topic-stream-attrs": topic_stream_attrs,
    "mns-topic-json": topic_json,
    "mns-queue-batch": queue_batch,
    "mns-queue-single-base64": queue_single,
    "timer-job-ids": timer,
    "bare-job-id": lambda job: job.encode(),
}


@dataclass
class Cloud:
    """The emulators, their admin clients, and the function's configuration."""

    oss: OssEmulator
    mps: MpsEmulator
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.oss_admin = OssAdmin(self.oss.url)
        self.mps_admin = MpsAdmin(self.mps.url)
        self.oss_admin.create_bucket(SOURCE, REGION)
        self.oss_admin.create_bucket(DEST, REGION)
        self.env = {
            "DEST_BUCKET": DEST, "FC_REGION": REGION, "OSS_ENDPOINT": self.oss.url, "MPS_ENDPOINT": self.mps.url,
            "ALIBABA_CLOUD_ACCESS_KEY_ID": AK, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET,
            "ALIBABA_CLOUD_SECURITY_TOKEN": TOKEN, **self.env,
        }
        self._instances: list[FunctionInstance] = []

    def close(self) -> None:
        for instance in self._instances:
            instance.close()
        self.oss_admin.close()
        self.mps_admin.close()

    # -- the function -------------------------------------------------------------------------------
    def function(self, *, timeout: float = 60, isolated: bool = False, initialization_timeout: float | None = None,
                 **env: str) -> FunctionInstance:
        instance = FunctionInstance(env={**self.env, **env}, timeout=timeout, isolated=isolated, echo_logs=False,
                                    initialization_timeout=initialization_timeout,
                                    credentials=Credentials(AK, SECRET, TOKEN), region=REGION)
        self._instances.append(instance)
        return instance

    def invoke(self, event: bytes | str, **env: str) -> Any:
        """One invocation on a fresh instance; returns the InvokeResult."""
        return self.function(**env).invoke(event)

    # -- seeding ------------------------------------------------------------------------------------
    def put_source(self, key: str, data: bytes | str = b"", *, bucket: str = SOURCE, content_type: str = "image/jpeg",
                   meta: dict[str, str] | None = None, synthetic: tuple[int, int] | None = None) -> dict[str, Any]:
        return self.oss_admin.put_object(bucket, key, data, content_type=content_type, meta=meta, synthetic=synthetic)

    def job(self, job: str, files: list[str], *, state: str = "Success", bucket: str = SOURCE,
            region: str | None = REGION, output: str | None = None, result: Any = None,
            user_data: str = "null") -> None:
        host = f"{bucket}.oss-{region}.aliyuncs.com" if region else bucket
        self.mps_admin.put_job(job, {
            "Type": "IProduction", "State": state, "FunctionName": "ImageCartoonize",
            "PipelineId": "39f8e0bc005e4f309379701645f40000",
            "Input": f"oss://{host}/input/example.mp4",
            "Output": output or f"oss://{host}/iproduction/{{source}}-{{timestamp}}-{{sequenceId}}.jpg",
            "JobParams": "{mode:\"gif\"}", "UserData": user_data,
            "Result": result if result is not None else {
                "Code": "Success" if state != "Fail" else "JobFailed",
                "Message": "Successful." if state != "Fail" else "the algorithm failed",
                "Data": json.dumps({"result": [{"file": f} for f in files]})},
        })

    def seed_job_with_files(self, job: str, files: dict[str, bytes], **kwargs: Any) -> None:
        for key, data in files.items():
            self.put_source(key, data)
        self.job(job, list(files), **kwargs)

    # -- reading the emulators ------------------------------------------------------------------------
    def manifest(self, job: str, prefix: str = "iproduction/") -> dict[str, Any] | None:
        if self.oss_admin.object(DEST, f"{prefix}{job}/manifest.json") is None:
            return None
        return json.loads(self.oss_admin.read(DEST, f"{prefix}{job}/manifest.json"))

    def dest_objects(self, prefix: str = "") -> dict[str, dict[str, Any]]:
        return {o["key"]: o for o in self.oss_admin.objects(DEST, prefix)}

    def oss_log(self, *ops: str) -> list[dict[str, Any]]:
        return [e for e in self.oss.log.entries() if not ops or e.get("op") in ops]

    def mps_calls(self) -> int:
        return sum(1 for e in self.mps.log.entries() if e.get("op") == "QueryIProductionJob")


def invocation_done(result: Any) -> dict[str, Any]:
    """The invocation's ``invocation.done`` log line."""
    return next(line for line in result.json_logs() if line.get("event") == "invocation.done")


def outcomes(result: Any) -> dict[str, str]:
    """{jobId: outcome} from an invocation (the summary is in the logs when the handler raised)."""
    if result.ok:
        return {j.get("jobId", j.get("messageId", "?")): j["outcome"] for j in result.result["jobs"]}
    return {line["jobId"]: line["outcome"] for line in result.json_logs() if line.get("event") == "job.outcome"}


@contextlib.contextmanager
def started_cloud(token: str = TOKEN) -> Iterator[Cloud]:
    """Fresh OSS and MPS emulators (credentials and STS ``token`` checked), stopped afterwards."""
    from localcloud.mps import MpsEmulator
    from localcloud.oss import OssEmulator

    oss = OssEmulator(access_key_id=AK, access_key_secret=SECRET, security_token=token).start()
    mps = MpsEmulator(access_key_id=AK, access_key_secret=SECRET, security_token=token).start()
    env = Cloud(oss, mps, env={"ALIBABA_CLOUD_SECURITY_TOKEN": token})
    try:
        yield env
    finally:
        env.close()
        oss.stop()
        mps.stop()
