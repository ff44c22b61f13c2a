"""``--local``: the OSS and MPS emulators in this process, seeded, plus the function's environment."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..mps import MpsEmulator
from .context import Credentials
from .instance import REPO_ROOT

DEFAULT_SEED = REPO_ROOT / "localcloud" / "seed.json"
LOCAL_CREDENTIALS = Credentials("LTAI5tLocalCloudKey0001", "localcloud-secret-not-for-real-use")
LOCAL_REGION = "cn-hangzhou"
DEST_BUCKET = "dest-bucket"


def _default_oss(credentials: Credentials) -> Any:
    from ..oss import OssEmulator

    return OssEmulator(port=0, access_key_id=credentials.access_key_id,
                       access_key_secret=credentials.access_key_secret)


class LocalCloud:
    """Starts MPS and OSS emulators on free ports, seeds them, and gives the function's ``env``.

    ``mps_state`` overrides the ``State`` of every seeded MPS job (e.g. ``Success`` for a demo).
    """

    def __init__(self, seed: str | Path | None = DEFAULT_SEED, *, mps_state: str | None = None,
                 credentials: Credentials = LOCAL_CREDENTIALS,
                 oss_factory: Callable[[Credentials], Any] | None = None) -> None:
        self.seed_path = Path(seed) if seed else None
        self.mps_state = mps_state
        self.credentials = credentials
        self._oss_factory = oss_factory or _default_oss
        self.mps: MpsEmulator | None = None
        self.oss: Any = None

    def start(self) -> LocalCloud:
        document: dict[str, Any] = {}
        if self.seed_path:
            document = json.loads(self.seed_path.read_text(encoding="utf-8"))
        creds = self.credentials
        self.mps = MpsEmulator(access_key_id=creds.access_key_id, access_key_secret=creds.access_key_secret,
                               region=LOCAL_REGION).start()
        try:
            self.oss = self._oss_factory(creds).start()
        except BaseException:
            self.stop()
            raise
        if document.get("mps"):
            self.mps.seed(document)
        if self.mps_state:
            for job_id in self.mps.jobs.all():
                self.mps.set_state(job_id, self.mps_state)
        if document.get("oss"):
            self.oss.seed(document["oss"])
        return self

    def env(self) -> dict[str, str | None]:
        """What the function needs to run against the emulators (credentials go via FC's variables)."""
        assert self.mps is not None and self.oss is not None, "start() first"
        return {"MPS_ENDPOINT": self.mps.url, "OSS_ENDPOINT": self.oss.url, "DEST_BUCKET": DEST_BUCKET,
                "FC_REGION": LOCAL_REGION}

    def stop(self) -> None:
        for emulator in (self.oss, self.mps):
            if emulator is not None:
                emulator.stop()

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
