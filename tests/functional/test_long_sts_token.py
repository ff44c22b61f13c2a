"""An STS token as long as STS issues them never gets out, whole or in pieces, in any encoding: not when
MPS refuses a signature and its SignatureDoesNotMatch message echoes what it signed (which holds the
token: V2 in the query, percent-encoded twice; V3 in the canonical request's headers)."""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from tests.functional.harness import JOB, SECRET, Cloud, outcomes, started_cloud, topic_json

#: Shaped like an STS SecurityToken: "CAIS", then base64 of a few hundred bytes (with '+', '/' and '=').
LONG_TOKEN = "CAIS" + base64.b64encode(random.Random(7).randbytes(420)).decode()
PIECE = 16


@pytest.fixture
def sts_cloud() -> Iterator[Cloud]:
    with started_cloud(LONG_TOKEN) as env:
        yield env


def forms(secret: str) -> list[str]:
    once = quote(secret, safe="")
    return [secret, once, quote(once, safe=""), quote(secret, safe="~"), base64.b64encode(secret.encode()).decode(),
            base64.urlsafe_b64encode(secret.encode()).decode()]


def leaked_pieces(text: str, secret: str) -> list[str]:
    return [form[i:i + PIECE] for form in forms(secret) for i in range(len(form) - PIECE + 1)
            if form[i:i + PIECE] in text]


@pytest.mark.parametrize("signature", ["v2", "v3"])
def test_a_refused_mps_signature_leaks_no_piece_of_a_long_token(sts_cloud: Cloud, signature: str) -> None:
    assert len(LONG_TOKEN) >= 400
    sts_cloud.seed_job_with_files(JOB, {"out/a.jpg": b"a"})
    sts_cloud.mps.knobs.configure({"settings": {"access_key_secret": "the-secret-mps-expects"}})
    result = sts_cloud.invoke(topic_json(JOB), MPS_SIGNATURE_VERSION=signature)
    assert outcomes(result) == {JOB: "error"}
    assert sts_cloud.mps.log.entries()[-1].get("code") == "SignatureDoesNotMatch"  # the premise: MPS echoed it
    outcome = next(line for line in result.json_logs() if line.get("event") == "job.outcome")
    reason, error = outcome["reason"], result.error_message or ""
    assert "SignatureDoesNotMatch" in reason and "SignatureDoesNotMatch" in error
    everything = "\n".join([*result.logs, error, json.dumps(result.body)])
    assert leaked_pieces(everything, LONG_TOKEN) == []
    assert leaked_pieces(everything, SECRET) == []
    assert "string to sign" not in reason and "string to sign" not in error
