"""The OSS V4 signer against oss2's own: the same Authorization for every kind of request."""

from __future__ import annotations

import datetime
import random
from collections.abc import Callable
from urllib.parse import quote

import oss2
import pytest
from hypothesis import given
from hypothesis import strategies as st
from oss2.api import _UrlMaker

from iproduction.credentials import Credentials
from iproduction.oss import object_url
from iproduction.ossauth import sign, uri_quote

NOW = 1796190000.0  # 2026-12-02T05:00:00Z


class Provider:
    def __init__(self, token: str | None) -> None:
        self.credentials = oss2.credentials.Credentials("LTAI-test-id", "secret/with+chars=", token)

    def get_credentials(self) -> oss2.credentials.Credentials:
        return self.credentials


class SigningAuth:
    """``ossauth.sign`` applied to an oss2 request, as oss2's auth applies its own."""

    def __init__(self, provider: Provider, clock: Callable[[], float]) -> None:
        self.provider = provider
        self.clock = clock

    def _sign_request(self, req: oss2.http.Request, bucket: str, key: str) -> None:
        c = self.provider.get_credentials()
        headers = dict(req.headers)
        sign(req.method, bucket, key, req.params, headers, req.region, Credentials(
            c.access_key_id, c.access_key_secret, c.security_token or None), product=req.product, clock=self.clock)
        req.headers.update(headers)


class FrozenDatetime(datetime.datetime):
    @classmethod
    def utcnow(cls) -> FrozenDatetime:  # type: ignore[override]
        return cls.fromtimestamp(NOW, datetime.timezone.utc).replace(tzinfo=None)


REQUESTS = [
    ("HEAD", "src-bucket", "out/88c6/result 1.jpg", {}, {}),
    ("PUT", "dest", "iproduction/job/ü ñ/+%2F%.jpg", {},
     {"x-oss-copy-source": "/src/out%2Fa.jpg", "x-oss-copy-source-if-match": '"ABC"', "Accept-Encoding": None}),
    ("PUT", "dest", "k", {"partNumber": "3", "uploadId": "0004B9894A22E5B1888A1E29F823****"},
     {"x-oss-copy-source-range": "bytes=0-99", "Content-Type": "video/mp4", "X-Oss-Meta-Take": "3"}),
    ("POST", "dest", "k", {"uploads": ""}, {"content-md5": "1B2M2Y8AsgTpgAmY7PhCfg==", "Cache-Control": "no"}),
    ("GET", "dest", "", {"list-type": "2", "prefix": "iproduction/a b/", "max-keys": "1000",
                         "continuation-token": "x/y+z=", "encoding-type": "url"}, {}),
    ("DELETE", "dest", "iproduction/_pending/j", {}, {"x-oss-forbid-overwrite": "true"}),
    ("GET", "", "", {}, {}),
]


@pytest.mark.parametrize("token", [None, "CAIS-sts/token+=="])
@pytest.mark.parametrize(("method", "bucket", "key", "params", "headers"), REQUESTS)
def test_the_same_signature_as_oss2(monkeypatch: pytest.MonkeyPatch, token: str | None, method: str, bucket: str,
                                    key: str, params: dict[str, str], headers: dict[str, str]) -> None:
    monkeypatch.setattr(oss2.auth, "datetime", FrozenDatetime)
    signed = []
    for auth in (oss2.ProviderAuthV4(Provider(token)), SigningAuth(Provider(token), clock=lambda: NOW)):
        req = oss2.http.Request(method, f"http://127.0.0.1/{bucket}/{key}", params=dict(params),
                                headers=dict(headers), region="cn-hangzhou", product="oss")
        auth._sign_request(req, bucket, key)
        signed.append({k.lower(): v for k, v in req.headers.items()})
    assert signed[0] == signed[1]
    assert signed[1]["authorization"].startswith("OSS4-HMAC-SHA256 Credential=LTAI-test-id/20261202/cn-hangzhou/oss/")


def test_random_keys_and_parameters_sign_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(oss2.auth, "datetime", FrozenDatetime)
    rng = random.Random(3)
    alphabet = "aZ09-_.~/ +%&=?#:@!$'()*,;ü漢\t"
    ours = SigningAuth(Provider("t"), clock=lambda: NOW)
    theirs = oss2.ProviderAuthV4(Provider("t"))
    for _ in range(300):
        key = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30)))
        params = {"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6))): rng.choice(["", "v/1", "a b"])
                  for _ in range(rng.randint(0, 3))}
        headers = {"x-oss-meta-" + str(rng.randint(0, 9)): rng.choice(["1", "a b", "ü"]), "Content-Type": "x/y"}
        results = []
        for auth in (theirs, ours):
            req = oss2.http.Request("PUT", "http://h/b/k", params=dict(params), headers=dict(headers),
                                    region="us-east-1", product="oss")
            auth._sign_request(req, "b", key)
            results.append(req.headers["authorization"])
        assert results[0] == results[1], (key, params)


def test_the_signing_key_follows_the_day_and_a_rotated_secret() -> None:
    provider = Provider(None)
    now = [NOW]
    auth = SigningAuth(provider, clock=lambda: now[0])

    def sign() -> str:
        req = oss2.http.Request("GET", "http://h/b/k", region="cn-hangzhou", product="oss")
        auth._sign_request(req, "b", "k")
        return req.headers["authorization"]

    first = sign()
    assert sign() == first
    now[0] += 86400
    assert "/20261203/" in sign()
    now[0] = NOW
    provider.credentials = oss2.credentials.Credentials("LTAI-test-id", "rotated", None)
    assert sign() != first


@given(st.text(alphabet=st.characters(max_codepoint=0x2FFF)), st.sampled_from(["", "/"]))
def test_uri_quote_is_urllib_quote(text: str, safe: str) -> None:
    assert uri_quote(text, safe) == quote(text, safe=safe)


def test_uri_quote_of_keys() -> None:
    assert uri_quote("out/a b+c%~_.-.jpg") == "out%2Fa%20b%2Bc%25~_.-.jpg"
    assert uri_quote("/bucket/out/a b.jpg", safe="/") == "/bucket/out/a%20b.jpg"
    assert uri_quote("out/é.jpg") == "out%2F%C3%A9.jpg"


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:9000", "http://localhost:9000", "https://oss-cn-hangzhou.aliyuncs.com",
                                      "https://oss-cn-hangzhou-internal.aliyuncs.com"])
@pytest.mark.parametrize("key", ["out/a b+c%.jpg", "iproduction/ü/漢.mp4", "", "x"])
def test_object_urls_are_oss2s(endpoint: str, key: str) -> None:
    assert object_url(endpoint, "dest-bucket", key) == _UrlMaker(endpoint, False, False)("dest-bucket", key)
