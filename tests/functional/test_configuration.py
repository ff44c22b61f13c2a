"""Configuration mistakes as the deployed function meets them: ``initialize`` refuses what it cannot use,
warns about what it would silently ignore, and the log format a person reads on a console."""

from __future__ import annotations

import json
import re

from tests.functional.harness import JOB, SECRETS, Cloud, topic_json

FILES = {"iproduction/a.jpg": b"a" * 1000, "iproduction/b.jpg": b"b" * 700}


def test_an_unknown_log_level_fails_initialize_naming_the_variable(cloud: Cloud) -> None:
    result = cloud.invoke(topic_json(JOB), LOG_LEVEL="verbose")
    assert result.error_type == "InitializationError"
    assert "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR" in result.error_message
    assert "'verbose'" in result.error_message


def test_a_region_that_is_not_one_fails_initialize_naming_it(cloud: Cloud) -> None:
    result = cloud.invoke(topic_json(JOB), DEST_REGION="mars-1")
    assert result.error_type == "InitializationError"
    assert "DEST_REGION=mars-1 does not look like an Alibaba Cloud region id" in result.error_message


def test_a_misspelt_variable_is_named_in_a_warning_without_its_value(cloud: Cloud) -> None:
    cloud.seed_job_with_files(JOB, FILES)
    result = cloud.invoke(topic_json(JOB), COPYCONCURRENCY="8", DEST_BUKET="value-never-logged")
    assert result.ok and result.result["jobs"][0]["outcome"] == "committed"
    warnings = {line["variable"]: line for line in result.json_logs() if line["event"] == "config.unknown_variable"}
    assert set(warnings) == {"COPYCONCURRENCY", "DEST_BUKET"}
    assert (warnings["COPYCONCURRENCY"]["closest"], warnings["DEST_BUKET"]["closest"]) == (
        "COPY_CONCURRENCY", "DEST_BUCKET")
    assert warnings["DEST_BUKET"]["level"] == "WARNING"
    assert "did you mean DEST_BUCKET?" in warnings["DEST_BUKET"]["message"]
    assert not any("value-never-logged" in line for line in result.logs)


def test_pretty_logs_for_a_console(cloud: Cloud) -> None:
    cloud.seed_job_with_files(JOB, FILES)
    result = cloud.invoke(topic_json(JOB), LOG_FORMAT="pretty")
    assert result.ok and result.result["jobs"][0]["outcome"] == "committed"
    lines = [line for line in result.logs if line.strip()]
    assert lines and not any(line.startswith("{") for line in lines)
    outcome = next(line for line in lines if " job.outcome " in line)
    assert re.match(rf"\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{{3}} INFO  \[{re.escape(result.request_id)}\] "
                    rf"\[{JOB}\] job\.outcome outcome=committed ", outcome), outcome
    assert " files=2 " in outcome
    everything = "\n".join(result.logs)
    assert not any(secret in everything for secret in SECRETS)
    json.dumps(result.result)  # the answer itself stays JSON
