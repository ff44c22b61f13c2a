"""Credentials: from the FC environment variables, else from ``context.credentials``, read again on every
invocation (FC rotates the role's STS token) and registered with the log redactor."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import logs
from .errors import ConfigError


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"Credentials(access_key_id=***, sts={self.security_token is not None})"

    __str__ = __repr__


def resolve_credentials(env: Mapping[str, str], context: Any = None) -> Credentials:
    """Environment first (``ALIBABA_CLOUD_ACCESS_KEY_ID``, ``_ACCESS_KEY_SECRET``, ``_SECURITY_TOKEN``), then
    ``context.credentials`` (python3.10 runtime)."""
    fields = ("access_key_id", "access_key_secret", "security_token")
    ak, sk, token = ((env.get(f"ALIBABA_CLOUD_{name.upper()}") or "").strip() for name in fields)
    if not (ak and sk):
        creds = getattr(context, "credentials", None)
        ak, sk, token = ((getattr(creds, name, None) or "").strip() for name in fields)
    if not ak:
        raise ConfigError("ALIBABA_CLOUD_ACCESS_KEY_ID is not set and the context has no credentials "
                          "(give the function a role)")
    if not sk:
        raise ConfigError("ALIBABA_CLOUD_ACCESS_KEY_SECRET is not set and the context has no credentials")
    if any(c.isspace() for c in ak + sk + token):
        raise ConfigError("ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET/SECURITY_TOKEN must not contain whitespace")
    return Credentials(ak, sk, token or None)


class CredentialsSource:
    """The current credentials of this instance; swapped atomically when FC rotates them."""

    def __init__(self, credentials: Credentials) -> None:
        self._lock = threading.Lock()
        self._current = credentials
        logs.redact(credentials.access_key_id, credentials.access_key_secret, credentials.security_token)

    def get(self) -> Credentials:
        with self._lock:
            return self._current

    def update(self, credentials: Credentials) -> None:
        with self._lock:
            if credentials == self._current:
                return
            self._current = credentials
        logs.redact(credentials.access_key_id, credentials.access_key_secret, credentials.security_token)
