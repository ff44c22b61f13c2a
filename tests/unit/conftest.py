"""Fixtures of the unit tests: a scripted HTTP server (tests/unit/scripted_server.py)."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator

import pytest

from tests.unit.scripted_server import Received, ScriptedServer


@pytest.fixture
def serve() -> Iterator[Callable[..., ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def make(*replies: bytes | Callable[[Received], bytes | None], tls: ssl.SSLContext | None = None) -> ScriptedServer:
        server = ScriptedServer(list(replies), tls)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()
