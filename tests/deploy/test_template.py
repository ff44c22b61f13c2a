"""template.yml: Serverless Devs 3 + fc3, validated against the component's own JSON Schema."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from iproduction.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT.parent / "shared" / "vendor" / "fc3" / "schema.json").read_text()) \
    if (ROOT.parent / "shared" / "vendor" / "fc3" / "schema.json").exists() else None
VENDORED_SCHEMA = ROOT / "deploy" / "fc3-schema.json"
CONTRACT_VARIABLES = {"DEST_BUCKET", "DEST_PREFIX", "DEST_REGION", "MPS_REGION", "MPS_ENDPOINT", "OSS_ENDPOINT",
                      "SOURCE_BUCKETS", "COPY_CONCURRENCY", "MULTIPART_THRESHOLD_BYTES", "PART_SIZE_BYTES",
                      "MPS_MAX_QPS", "PENDING_MAX_AGE_SECONDS", "LOG_LEVEL"}
DEPLOY_ENV = {"DEST_BUCKET": "dest-bucket", "REGION": "cn-shanghai", "SOURCE_BUCKETS": "example-bucket"}
VARIABLE = re.compile(r"\$\{\s*(?:vars\.(\w+)|env\('(\w+)'(?:,\s*'([^']*)')?\)|config\('(\w+)'\))\s*\}")


def schema() -> dict[str, Any]:
    return json.loads(VENDORED_SCHEMA.read_text())


def resolve(value: Any, variables: dict[str, str]) -> Any:
    """Serverless Devs variable substitution for the forms the template uses."""
    if isinstance(value, dict):
        return {k: resolve(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, variables) for v in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        var, env, default, config = match.groups()
        if var:
            return str(resolve(variables[var], variables))
        if env:
            if env in DEPLOY_ENV:
                return DEPLOY_ENV[env]
            assert default is not None, f"${{env('{env}')}} has no default and is not set"
            return default
        return {"AccountID": "1234567890123456"}[config]

    return VARIABLE.sub(one, value)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    raw = yaml.safe_load((ROOT / "template.yml").read_text())
    return resolve(raw, raw["vars"])


def test_vendored_schema_is_the_component_schema() -> None:
    if SCHEMA is not None:
        assert schema() == SCHEMA


def test_props_validate_against_the_fc3_schema(template: dict[str, Any]) -> None:
    assert template["edition"] == "3.0.0"
    resource = template["resources"]["collector"]
    assert resource["component"] == "fc3"
    errors = list(jsonschema.Draft7Validator(schema()).iter_errors(resource["props"]))
    assert errors == []


def test_each_trigger_config_validates_against_its_own_definition(template: dict[str, Any]) -> None:
    """The schema lets any object pass as a triggerConfig; check each against its real shape."""
    definitions = {"timer": "ITimerTriggerConfig", "mns_topic": "IMnsTriggerConfig", "eventbridge": "IEventBridge"}
    triggers = template["resources"]["collector"]["props"]["triggers"]
    assert sorted(t["triggerType"] for t in triggers) == ["eventbridge", "mns_topic", "timer"]
    for trigger in triggers:
        sub = {"$ref": f"#/definitions/{definitions[trigger['triggerType']]}", "definitions": schema()["definitions"]}
        assert list(jsonschema.Draft7Validator(sub).iter_errors(trigger["triggerConfig"])) == []
    queue = next(t for t in triggers if t["triggerType"] == "eventbridge")["triggerConfig"]
    assert queue["eventSourceConfig"]["eventSourceType"] == "MNS"
    assert queue["eventSourceConfig"]["eventSourceParameters"]["sourceMNSParameters"]["QueueName"]
    assert queue["runOptions"]["deadLetterQueue"]["Arn"].startswith("acs:mns:cn-shanghai:")
    timer = next(t for t in triggers if t["triggerType"] == "timer")["triggerConfig"]
    assert "jobIds" not in timer["payload"]  # a sweep


def test_function_shape_matches_the_contract(template: dict[str, Any]) -> None:
    props = template["resources"]["collector"]["props"]
    assert props["runtime"] == "python3.10"
    assert props["handler"] == "index.handler"
    assert props["instanceLifecycleConfig"]["initializer"]["handler"] == "index.initialize"
    assert props["code"] == "./build/code"
    assert props["role"].startswith("acs:ram::1234567890123456:role/")
    assert props["logConfig"] == "auto"
    assert template["resources"]["collector"]["actions"]["pre-deploy"][0]["run"] == "bash deploy/build.sh"
    env = props["environmentVariables"]
    assert set(env) <= CONTRACT_VARIABLES
    settings = load_settings({**env, "FC_REGION": props["region"]})  # the deployed settings are valid
    assert settings.dest_bucket == "dest-bucket"
    assert settings.source_buckets == {"example-bucket"}


#: MPS allows QueryIProductionJob 100 calls a second per account (all callers together); the share of it
#: the deployment may take, the rest left to the jobs' submitters (README, "Sizing MPS_MAX_QPS").
ACCOUNT_QPS, FUNCTION_SHARE = 100, 0.60


def test_mps_max_qps_times_the_most_instances_stays_within_the_functions_share_of_the_quota(
        template: dict[str, Any]) -> None:
    props = template["resources"]["collector"]["props"]
    # Provisioned and on-demand instances together; an instance takes one request or more at once, so
    # there are never more instances than that.
    instances = props["concurrencyConfig"]["reservedConcurrency"]
    settings = load_settings({**props["environmentVariables"], "FC_REGION": props["region"]})
    assert isinstance(instances, int) and instances >= 1
    assert settings.mps_max_qps * instances <= FUNCTION_SHARE * ACCOUNT_QPS
    assert settings.mps_adaptive  # above that, the instances share what is left by themselves


def test_ram_policy_is_least_privilege() -> None:
    policy = json.loads((ROOT / "deploy" / "ram-policy.json").read_text())
    actions = {a for s in policy["Statement"] for a in s["Action"]}
    assert actions == {"mts:QueryIProductionJob", "oss:GetObject", "oss:PutObject", "oss:DeleteObject",
                       "oss:AbortMultipartUpload", "oss:ListParts", "oss:ListObjects", "oss:ListMultipartUploads",
                       "oss:GetBucketVersioning", "mns:SendMessage"}
    for statement in policy["Statement"]:
        assert not any(a.endswith("*") for a in statement["Action"])
        if any(a in ("oss:PutObject", "oss:DeleteObject") for a in statement["Action"]):
            assert statement["Resource"] == ["acs:oss:*:*:dest-bucket/iproduction/*"]
        if "mns:SendMessage" in statement["Action"]:  # only to the queue failed async invocations go to
            assert statement["Resource"] == ["acs:mns:*:*:/queues/mps-iproduction-dlq/messages"]
