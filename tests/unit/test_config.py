"""Configuration: defaults, normalisation, and errors that name the variable."""

from __future__ import annotations

import pytest

from iproduction.config import load_settings
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
    ({**BASE, "MPS_ADAPTIVE": "maybe"}, "MPS_ADAPTIVE"),
])
def test_errors_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        load_settings(env)


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
