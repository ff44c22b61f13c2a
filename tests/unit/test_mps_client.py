"""The MPS client's use of the rate cap: a call's slot is taken only when it can go out at once."""

from __future__ import annotations

import httpx

from iproduction.budget import Deadline
from iproduction.credentials import Credentials, CredentialsSource
from iproduction.mps import MPSClient
from iproduction.ratelimit import RateLimiter


class RecordingLimiter(RateLimiter):
    """Notes, at every slot handed out, whether the client's connection pool already existed."""

    def __init__(self) -> None:
        super().__init__(1000)
        self.client: MPSClient | None = None
        self.pool_ready: list[bool] = []

    def acquire(self, deadline: Deadline | None = None) -> float:
        assert self.client is not None
        self.pool_ready.append(self.client._client is not None)
        return super().acquire(deadline)


def test_the_pool_is_built_before_the_first_slot_is_taken() -> None:
    """A pool built after the slot delays the call past it: the first calls of a cold instance then
    reach MPS bunched together (the pending-registry drill saw 53 in one second under a cap of 50)."""
    sent: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers["x-acs-action"])
        return httpx.Response(200, json={"RequestId": "r", "State": "Analysing"})

    limiter = RecordingLimiter()
    client = MPSClient("http://mps.example", CredentialsSource(Credentials("ak", "sk", "token")),
                       limiter=limiter, transport=httpx.MockTransport(answer))
    limiter.client = client
    for _ in range(2):
        assert client.call("QueryIProductionJob", {"JobId": "j"})["State"] == "Analysing"
    assert limiter.pool_ready == [True, True]
    assert sent == ["QueryIProductionJob"] * 2
    client.close()
