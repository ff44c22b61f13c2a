"""Credentials for the command line: the standard Alibaba Cloud chain, from the official
``alibabacloud-credentials`` library (``DefaultCredentialsProvider``), in its order:

1. the environment: ``ALIBABA_CLOUD_ACCESS_KEY_ID`` / ``_SECRET`` (/ ``_SECURITY_TOKEN``);
2. an OIDC role (``ALIBABA_CLOUD_ROLE_ARN``, ``ALIBABA_CLOUD_OIDC_PROVIDER_ARN``, ``..._TOKEN_FILE``), when set;
3. the aliyun CLI's profile, ``~/.aliyun/config.json`` (``ALIBABA_CLOUD_PROFILE`` picks one);
4. the profile file ``~/.alibabacloud/credentials.ini`` (or ``ALIBABA_CLOUD_CREDENTIALS_FILE``);
5. the ECS/FC instance's RAM role, from the metadata service (``ALIBABA_CLOUD_ECS_METADATA_DISABLED=true`` skips it);
6. a credentials URI (``ALIBABA_CLOUD_CREDENTIALS_URI``), when set.

The provider caches what it found and refreshes a role's STS token before it expires, so the
getter is asked again before each batch of requests.
"""

from __future__ import annotations

import ast
import logging
import os
from collections.abc import Callable, Mapping

#: What each of the library's providers is, for an error that names what was tried.
PROVIDERS = {
    "EnvironmentVariableCredentialsProvider": "environment variables ALIBABA_CLOUD_ACCESS_KEY_ID/_SECRET",
    "OIDCRoleArnCredentialsProvider": "OIDC role (ALIBABA_CLOUD_ROLE_ARN, ALIBABA_CLOUD_OIDC_*)",
    "CLIProfileCredentialsProvider": "the aliyun CLI profile (~/.aliyun/config.json)",
    "ProfileCredentialsProvider": "the profile file (~/.alibabacloud/credentials.ini)",
    "EcsRamRoleCredentialsProvider": "the ECS/FC instance RAM role (metadata service)",
    "URLCredentialsProvider": "ALIBABA_CLOUD_CREDENTIALS_URI",
}


CHAIN_FAILED = "unable to load credentials from any of the providers in the chain:"


class CredentialsMissingError(Exception):
    """No provider of the chain gave credentials; the message names each one tried and why."""


def explain(message: str, environ: Mapping[str, str]) -> str:
    """The library's chain error (``...in the chain: ['<Provider>: <why>', ...]``), with its
    providers in words, one after the other."""
    _, sep, listed = message.partition(CHAIN_FAILED)
    tried: list[str] = []
    if sep:
        try:
            parsed = ast.literal_eval(listed.strip())
        except (ValueError, SyntaxError):
            parsed = None
        if isinstance(parsed, list):
            tried = [str(item) for item in parsed]
    if not tried:
        tried = [message.strip()]
    for number, item in enumerate(tried):
        for name, words in PROVIDERS.items():
            if item.startswith(f"{name}: "):
                item = f"{words}: {item[len(name) + 2:]}"
        tried[number] = item
    if (environ.get("ALIBABA_CLOUD_ECS_METADATA_DISABLED") or "").lower() == "true":
        tried.append("the ECS/FC instance RAM role: skipped (ALIBABA_CLOUD_ECS_METADATA_DISABLED=true)")
    return "no Alibaba Cloud credentials found; tried " + "; ".join(tried)


def chain() -> Callable[[], tuple[str, str, str | None]]:
    """A getter of the chain's current (access key id, secret, STS token or None)."""
    from alibabacloud_credentials.provider import DefaultCredentialsProvider

    # Its providers log each failure with a traceback on their own stderr handler (logger
    # "credentials"); the error raised below names every provider tried and why, once.
    logging.getLogger("credentials").disabled = True
    provider = DefaultCredentialsProvider()

    def get() -> tuple[str, str, str | None]:
        try:
            found = provider.get_credentials()
        except Exception as exc:  # the library raises CredentialException (or others from a provider)
            raise CredentialsMissingError(explain(str(exc), os.environ)) from None
        return found.get_access_key_id(), found.get_access_key_secret(), found.get_security_token() or None

    return get
