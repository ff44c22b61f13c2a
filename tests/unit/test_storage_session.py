"""How the OSS session treats the environment (requests would re-read it on every request)."""

from __future__ import annotations

import pytest
import requests

from iproduction.storage import settle_environment

PROXIES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in (*PROXIES, "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_without_a_proxy_the_environment_is_read_once(clean_env: pytest.MonkeyPatch) -> None:
    session = requests.Session()
    settle_environment(session)
    assert (session.trust_env, session.verify) == (False, True)


def test_a_ca_bundle_is_kept_as_requests_would_take_it(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("CURL_CA_BUNDLE", "/etc/curl.pem")
    clean_env.setenv("REQUESTS_CA_BUNDLE", "/etc/requests.pem")
    session = requests.Session()
    settle_environment(session)
    assert (session.trust_env, session.verify) == (False, "/etc/requests.pem")


@pytest.mark.parametrize("name", ["HTTPS_PROXY", "http_proxy", "ALL_PROXY"])
def test_with_a_proxy_requests_keeps_reading_the_environment(clean_env: pytest.MonkeyPatch, name: str) -> None:
    clean_env.setenv(name, "http://proxy.internal:3128")
    session = requests.Session()
    settle_environment(session)
    assert (session.trust_env, session.verify) == (True, True)
