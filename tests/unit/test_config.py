"""Configuration: defaults, normalisation, and errors that name the variable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from iproduction.config import VARIABLES, load_settings, log_options, unknown_variables
from iproduction.credentials import Credentials, resolve_credentials
from iproduction.errors import ConfigError

BASE = {"DEST_BUCKET": "dest-bucket", "FC_REGION": "cn-hangzhou"}


def test_defaults() -> None:
    s = load_settings(BASE)
    assert (s.dest_prefix, s.dest_region, s.mps_region) == ("iproduction/", "cn-hangzhou", "cn-hangzhou")
    assert s.mps_endpoint == "https://mts.cn-hangzhou.aliyuncs.com"
    assert s.oss_endpoint_for("cn-shanghai") == "https://oss-cn-shanghai.aliyuncs.com"
    assert s.source_allowed("anything") and s.pending_max_age == 172800
    assert s.multipart_threshold <= 2**30 and s.part_size >= 100 * 1024 and 0 < s.mps_max_qps <= 100


def test_the_mps_rate_adapts_unless_switched_off() -> None:
    assert load_settings(BASE).mps_adaptive
    assert load_settings({**BASE, "MPS_ADAPTIVE": "1"}).mps_adaptive
    assert not load_settings({**BASE, "MPS_ADAPTIVE": "0"}).mps_adaptive
    assert not load_settings({**BASE, "MPS_ADAPTIVE": " False "}).mps_adaptive


def test_normalisation() -> None:
    s = load_settings({**BASE, "DEST_PREFIX": "out", "SOURCE_BUCKETS": " a-bucket, ,b-bucket ,",
                       "OSS_ENDPOINT": "http://127.0.0.1:9000/", "MPS_REGION": "cn-shanghai"})
    assert s.dest_prefix == "out/" and s.source_buckets == {"a-bucket", "b-bucket"}
    assert s.oss_endpoint_for("cn-beijing") == "http://127.0.0.1:9000"
    assert s.mps_endpoint == "https://mts.cn-shanghai.aliyuncs.com"
    assert not s.source_allowed("c-bucket")
    assert load_settings({**BASE, "DEST_PREFIX": ""}).dest_prefix == ""


@pytest.mark.parametrize(("env", "variable"), [
    ({"FC_REGION": "cn-hangzhou"}, "DEST_BUCKET"),
    ({"DEST_BUCKET": "Bad_Bucket", "FC_REGION": "cn-hangzhou"}, "DEST_BUCKET"),
    ({"DEST_BUCKET": "dest-bucket"}, "MPS_REGION"),
    ({**BASE, "DEST_REGION": "hangzhou"}, "DEST_REGION"),
    ({**BASE, "COPY_CONCURRENCY": "many"}, "COPY_CONCURRENCY"),
    ({**BASE, "COPY_CONCURRENCY": "0"}, "COPY_CONCURRENCY"),
    ({**BASE, "MULTIPART_THRESHOLD_BYTES": str(2**31)}, "MULTIPART_THRESHOLD_BYTES"),
    ({**BASE, "PART_SIZE_BYTES": "1000"}, "PART_SIZE_BYTES"),
    ({**BASE, "MPS_MAX_QPS": "500"}, "MPS_MAX_QPS"),
    ({**BASE, "PENDING_MAX_AGE_SECONDS": "-1"}, "PENDING_MAX_AGE_SECONDS"),
    ({**BASE, "MPS_ENDPOINT": "ftp://x"}, "MPS_ENDPOINT"),
    ({**BASE, "OSS_ENDPOINT": "http://x/path"}, "OSS_ENDPOINT"),
    ({**BASE, "SOURCE_BUCKETS": "ok-bucket,NO"}, "SOURCE_BUCKETS"),
    ({**BASE, "DEST_PREFIX": "/abs/"}, "DEST_PREFIX"),
    ({**BASE, "DEST_PREFIX": "a/../b/"}, "DEST_PREFIX"),
    ({**BASE, "MPS_SIGNATURE_VERSION": "v4"}, "MPS_SIGNATURE_VERSION"),
    ({**BASE, "DEST_REGION": "mars-1"}, "DEST_REGION=mars-1 does not look like an Alibaba Cloud region id"),
    ({**BASE, "MPS_REGION": "cn-hangzou"}, "MPS_REGION=cn-hangzou does not look like"),
    ({"DEST_BUCKET": "dest-bucket", "FC_REGION": "Hangzhou"}, "FC_REGION=Hangzhou does not look like"),
    ({**BASE, "MPS_ADAPTIVE": "maybe"}, "MPS_ADAPTIVE"),
])
def test_errors_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        load_settings(env)


@pytest.mark.parametrize("region", ["cn-hangzhou", "ap-southeast-1", "us-west-1", "eu-central-1",
                                    "cn-shanghai-finance-1", "me-central-1", "cn-hongkong"])
def test_documented_regions_are_accepted(region: str) -> None:
    s = load_settings({**BASE, "DEST_REGION": region, "MPS_REGION": region})
    assert (s.dest_region, s.mps_region) == (region, region)


def test_a_region_newer_than_the_list() -> None:
    with pytest.raises(ConfigError, match="EXTRA_REGIONS=xx-newland-1"):
        load_settings({**BASE, "DEST_REGION": "xx-newland-1"})
    assert load_settings({**BASE, "DEST_REGION": "xx-newland-1",
                          "EXTRA_REGIONS": "yy-other-2, xx-newland-1"}).dest_region == "xx-newland-1"
    # FC runs the function in its own region: that one is taken as it is (shape checked)
    s = load_settings({"DEST_BUCKET": "dest-bucket", "FC_REGION": "xx-newland-1"})
    assert (s.dest_region, s.mps_region) == ("xx-newland-1", "xx-newland-1")


@pytest.mark.parametrize(("env", "expected"), [
    ({}, ("INFO", "json")),
    ({"LOG_LEVEL": "debug", "LOG_FORMAT": "Pretty"}, ("DEBUG", "pretty")),
    ({"LOG_LEVEL": " warning ", "LOG_FORMAT": ""}, ("WARNING", "json")),
    ({"LOG_LEVEL": "Error", "LOG_FORMAT": "JSON"}, ("ERROR", "json")),
])
def test_log_options(env: dict[str, str], expected: tuple[str, str]) -> None:
    assert log_options(env) == expected


@pytest.mark.parametrize(("env", "message"), [
    ({"LOG_LEVEL": "verbose"}, "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR (any case), got 'verbose'"),
    ({"LOG_LEVEL": "warn"}, "LOG_LEVEL must be one of"),
    ({"LOG_FORMAT": "text"}, "LOG_FORMAT must be one of json, pretty (any case), got 'text'"),
])
def test_log_options_refuse_what_they_do_not_know(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        log_options(env)
    assert message in str(raised.value)


def test_misspelt_variables_are_found_with_the_closest_name() -> None:
    env = {**BASE, "COPYCONCURRENCY": "8", "DEST_BUKET": "x", "OSS_ACCESS_KEY_ID": "LTAI-not-read",
           "PART_SIZE": "1", "log_level": "debug", "LOG_LEVEL": "INFO", "MPS_MAX_QPS": "10"}
    assert unknown_variables(env) == [("COPYCONCURRENCY", "COPY_CONCURRENCY"), ("DEST_BUKET", "DEST_BUCKET"),
                                      ("OSS_ACCESS_KEY_ID", None), ("PART_SIZE", "PART_SIZE_BYTES"),
                                      ("log_level", "LOG_LEVEL")]


def test_the_runtime_and_shell_variables_are_not_ours() -> None:
    env = {"FC_FUNCTION_NAME": "f", "FC_REGION": "cn-hangzhou", "FC_FUNC_CODE_PATH": "/code/",
           "ALIBABA_CLOUD_ACCESS_KEY_ID": "k", "ALIBABA_CLOUD_SECURITY_TOKEN": "t", "PATH": "/usr/bin",
           "HOME": "/root", "LANG": "C.UTF-8", "PYTHONPATH": "/code", "LD_LIBRARY_PATH": "/code", "TZ": "UTC",
           "HOSTNAME": "fc", "SSL_CERT_FILE": "/etc/ssl/cert.pem", "REQUESTS_CA_BUNDLE": "/x", "HTTPS_PROXY": "",
           **{name: "1" for name in VARIABLES}}
    assert unknown_variables(env) == []


def test_every_variable_the_readme_documents_is_one_the_function_reads() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    documented = re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", readme, re.MULTILINE)
    assert "MPS_ADAPTIVE" in documented
    assert unknown_variables(dict.fromkeys(documented, "1")) == []


def test_the_template_sets_only_variables_the_function_reads() -> None:
    template = yaml.safe_load((Path(__file__).resolve().parents[2] / "template.yml").read_text())
    variables = template["resources"]["collector"]["props"]["environmentVariables"]
    assert variables and unknown_variables(variables) == []


class _Creds:
    access_key_id = "ctx-ak"
    access_key_secret = "ctx-secret"
    security_token = "ctx-token"


class _Context:
    credentials = _Creds()


def test_credentials_env_first_then_context_and_never_printed() -> None:
    env = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "env-ak", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "env-secret"}
    assert resolve_credentials(env, _Context()) == Credentials("env-ak", "env-secret", None)
    creds = resolve_credentials({}, _Context())
    assert creds == Credentials("ctx-ak", "ctx-secret", "ctx-token")
    assert "ctx" not in repr(creds) and "ctx" not in str(creds)
    with pytest.raises(ConfigError, match="ALIBABA_CLOUD_ACCESS_KEY_ID"):
        resolve_credentials({}, object())
